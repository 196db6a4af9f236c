//! One client connection's protocol state machine, independent of sockets
//! and threads: bytes in ([`Connection::on_bytes`]), engine decisions in
//! ([`Connection::on_decision`]), response bytes out
//! ([`Connection::output`] / [`Connection::consume_output`]). The io_uring
//! event loop and the epoll fallback both drive this type; neither holds
//! protocol logic of its own.
//!
//! # Ownership
//!
//! A [`Connection`] owns its two byte buffers and the book-keeping of its
//! requests in flight. It does not own the engine: every submission goes
//! through a [`Submit`] sink that the event loop lends for the call, so one
//! engine can serve many connections. The event loop owns the routing of
//! decisions back to connections: its [`Submit`] implementation knows which
//! connection it is submitting for, so it records `ticket -> connection`
//! itself, and hands each polled [`Decision`] to that connection's
//! [`Connection::on_decision`]. A decision for a ticket the connection does
//! not know (or no longer cares about) is ignored.
//!
//! # Buffers and limits
//!
//! - **Read buffer.** Received bytes are appended to it and complete frames
//!   are decoded from its front with [`protocol::decode_frame`]; the bytes
//!   of consumed frames are removed once per [`Connection::on_bytes`] call
//!   (one `memmove` of the partial tail). It never holds more than
//!   [`READ_BUFFER_MAX`] bytes: one maximal frame plus [`READ_SLACK_BYTES`].
//!   Since [`protocol::decode_frame`] never waits for more than a maximal
//!   frame, a connection can always make progress. The buffer grows on
//!   demand and shrinks back to [`READ_BUFFER_KEEP_BYTES`] once a large
//!   frame is gone, so idle connections stay small. Past
//!   [`READ_BUFFER_KEEP_BYTES`] it grows only as far as
//!   [`Connection::set_large_reserved`] allows: a server reserves each
//!   large frame's length from its input budget first
//!   ([`crate::budget`]).
//! - **Write buffer.** Every response frame is appended to it (responses
//!   are coalesced, so one send can carry many); the event loop sends from
//!   [`Connection::output`] and reports what went out with
//!   [`Connection::consume_output`]. Once all of it is sent, it shrinks
//!   back to [`WRITE_BUFFER_KEEP_BYTES`].
//! - **Slow clients.** While [`Connection::output`] holds
//!   [`WRITE_PAUSE_BYTES`] or more, the connection decodes no new frame
//!   and takes no new bytes: what was received stays in the read buffer,
//!   [`Connection::wants_read`] is false and
//!   [`Connection::read_capacity`] is 0 (the event loop stops reading that
//!   socket, so TCP flow control pushes back on the peer, and a client
//!   that never reads holds at most one read's worth of input here), and
//!   the next call to
//!   [`Connection::on_bytes`] (with an empty slice, once output drained)
//!   resumes decoding. Responses to requests already in flight are still
//!   written, so the write buffer is bounded by [`WRITE_BUFFER_MAX`]: the
//!   pause threshold, plus one answer per request in flight, plus the one
//!   frame written when the threshold was crossed.
//! - **In flight.** At most [`limits::IN_FLIGHT_MAX`] score requests are
//!   in flight; one more is answered `too_many_in_flight` at once. A ping
//!   or hello is answered while it is decoded, so it is in flight only for
//!   that moment: it counts towards the limit (a ping arriving when the
//!   limit is reached is refused too), but never holds a slot.
//! - **Tickets.** An OpenRTB request submits one engine request per
//!   impression, so the ticket map holds at most [`TICKETS_MAX`] entries;
//!   a request that would exceed it is answered `overloaded`. A decided
//!   impression is kept (about 700 bytes) until its whole request is
//!   decided, so a connection full of maximal OpenRTB requests holds at
//!   most about 45 MiB of decisions; `score_context` requests, one
//!   impression each, are answered as soon as their decision arrives.
//!
//! # Rules (docs/PROTOCOL.md, "Connection")
//!
//! `hello` is optional and only valid as the first frame (a later one gets
//! `invalid_payload`; no shared version gets `unsupported_version` and the
//! connection closes). A server-only type from the client gets
//! `unknown_message_type`. Recoverable framing and payload errors answer
//! the frame's request id and go on; a fatal one writes one `error` frame
//! (the frame's request id when its magic was right, else 0), sets
//! [`Connection::is_closing`], and ignores all further input. After
//! [`Connection::shutdown`], every new request frame is answered
//! `shutting_down`; requests in flight still complete. Responses are
//! written as decisions arrive, so in any order. A `feedback` message is
//! answered (`feedback_ack`) as soon as it is read, like a ping
//! ([`feedback`]), and so is a `put_features` (`put_features_ack`: its
//! items resolved against the host's feature definitions and written,
//! [`features`]); a score request that asked for decision ids gets them
//! from the [`Respond`]er.
//!
//! # Deadlines and answers
//!
//! The connection has no clock of its own: its [`Submit`] sink says when
//! each score request must be answered by ([`Submit::deadline_ns`]) and
//! what time it is ([`Respond::now_ns`]). A request whose deadline has
//! passed when it arrives, or when its last impression is decided, is
//! answered `timeout`. A `score_openrtb` with the `bid_response` flag is
//! answered with the [`Respond`]er's BidResponse (the one the HTTP bidder
//! sends) and the decisions behind it, at most
//! [`limits::BID_RESPONSES_IN_FLIGHT_MAX`] such requests at once.
//!
//! # Not here
//!
//! - OpenRTB `badv`: the binary `decision` lists the engine's offers as
//!   decided. The engine's advertiser-domain filter
//!   (`cx_engine::openrtb`'s `first_allowed`) is private and needs the
//!   catalog, which the connection does not hold; the client applies
//!   `badv` (or a later change filters offers here with a catalog).
//! - `imp` kinds the engine does not serve are decided like any other, as
//!   `Engine::decide_openrtb` does; only the currency rule skips.

mod buffers;
mod features;
mod feedback;
mod host;
mod imp_lists;
pub(crate) mod requests;

pub use buffers::IoBuffers;
use cx_domain::feedback::Event;
use cx_domain::pipeline::{Decision, Request, Ticket};
use cx_engine::openrtb::ImpPlan;
use cx_wire::openrtb::BidRequest;
use cx_wire::protocol::{
    self, limits, Decoded, ErrorCode, HelloAck, MessageType, SkipReason, VERSION,
};
pub use features::resolve as resolve_feature_item;
pub use feedback::{event_kind, to_event, FeedbackTally, REFUSAL_REASONS};
pub use host::{EngineResponder, Respond, Submit};
pub use imp_lists::ImpLists;

/// Bytes the read buffer may hold beyond one maximal frame, so the event
/// loop can read in large chunks while a big frame is completing.
pub const READ_SLACK_BYTES: usize = 64 * 1024;

/// Most bytes the read buffer holds: one maximal frame plus
/// [`READ_SLACK_BYTES`].
pub const READ_BUFFER_MAX: usize = limits::FRAME_BYTES_MAX + READ_SLACK_BYTES;

/// Capacity the read buffer shrinks back to once it holds no more than this.
pub const READ_BUFFER_KEEP_BYTES: usize = 64 * 1024;

/// Capacity the write buffer shrinks back to once all its output is sent,
/// so that a connection that once held a burst of answers (up to
/// [`WRITE_BUFFER_MAX`]) does not keep that memory.
pub const WRITE_BUFFER_KEEP_BYTES: usize = 64 * 1024;

/// Output size at which the connection stops decoding new frames until
/// the peer reads (see the module docs, "Slow clients").
pub const WRITE_PAUSE_BYTES: usize = 256 * 1024;

/// Largest frame a connection writes as a direct answer to one decoded
/// frame: an error with a full message (hello_ack and pong are smaller).
pub const DIRECT_ANSWER_BYTES_MAX: usize =
    limits::HEADER_BYTES + 4 + limits::ERROR_MESSAGE_BYTES_MAX;

/// Upper bound of the write buffer: the pause threshold, the frame that
/// crossed it, one maximal decision per request in flight, and one
/// maximal `bid_response` per request allowed to ask for one.
pub const WRITE_BUFFER_MAX: usize = WRITE_PAUSE_BYTES
    + DIRECT_ANSWER_BYTES_MAX
    + limits::IN_FLIGHT_MAX * (limits::HEADER_BYTES + limits::DECISION_BYTES_MAX)
    + limits::BID_RESPONSES_IN_FLIGHT_MAX * (limits::HEADER_BYTES + limits::BID_RESPONSE_BYTES_MAX);

/// Spare list strings a connection keeps for decoding `score_context`
/// lists ([`ContextView::write_into_pooled`](protocol::ContextView::write_into_pooled)):
/// enough to refill every list of one request.
pub const SPARE_STRINGS_MAX: usize = 3 * limits::LIST_ITEMS_MAX;

/// The engine could not take a request now ([`ErrorCode::Overloaded`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Overloaded;

/// Whom a submitted request's decision belongs to: impression `imp` of the
/// connection's `seq`-th score request, which sits in slot `slot`. The
/// sink keeps it with the ticket (the worker's one map from tickets to
/// connections) and hands it back with the decision
/// ([`Connection::on_decision`]). A decision whose request was already
/// answered (a later impression of it was refused) finds the slot empty or
/// holding a later request, and is dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    slot: u32,
    imp: u32,
    seq: u64,
}

impl Owner {
    /// Impression `imp` of the request `seq` in slot `slot`.
    pub(crate) fn new(slot: u32, imp: u32, seq: u64) -> Self {
        Self { slot, imp, seq }
    }

    /// Which request of its connection (see [`Owner`]).
    pub(crate) fn seq(self) -> u64 {
        self.seq
    }
}

/// One impression of a request in flight. The states live inline in one
/// `Vec` per request, taken from the lists finished requests left
/// ([`ImpLists`], so a request in steady state allocates none); boxing the decision would
/// add an allocation per impression decided.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum ImpState {
    /// Submitted; waiting for this ticket's decision.
    Waiting(Ticket),
    /// Decided.
    Decided(Decision),
    /// Not submitted.
    Skipped(SkipReason),
}

/// Puts `decision` in the impression of `imps` that `owner` names, one
/// fewer `waiting`: the one step both protocols take for a decision.
///
/// # Panics
/// When that impression is not waiting for this decision's ticket (a
/// decision delivered twice, or to the wrong owner): a broken invariant
/// of the worker's routing.
pub(crate) fn record_decision(
    imps: &mut [(String, ImpState)],
    waiting: &mut usize,
    owner: Owner,
    decision: Decision,
) {
    let state = imps.get_mut(owner.imp as usize).map(|(_, s)| s);
    let waiting_for_it = matches!(&state, Some(ImpState::Waiting(t)) if *t == decision.ticket);
    assert!(
        waiting_for_it,
        "decision for ticket {:?} reached {owner:?}, which is {state:?}",
        decision.ticket
    );
    if let Some(state) = state {
        *state = ImpState::Decided(decision);
        *waiting -= 1;
    }
}

/// A score request in flight.
#[derive(Debug)]
struct Pending {
    /// Which score request of the connection it is (see [`Owner`]).
    seq: u64,
    request_id: u64,
    /// `(imp_id, state)` in request order; one with an empty id for a
    /// `score_context`.
    imps: Vec<(String, ImpState)>,
    /// Impressions still [`ImpState::Waiting`].
    waiting: usize,
    /// When it must be answered by ([`Submit::deadline_ns`]); a decision
    /// later than that is answered `timeout`.
    deadline_ns: Option<u64>,
    /// The parsed request, when it asked for a `bid_response` answer.
    bid_request: Option<Box<BidRequest>>,
    /// Whether it asked for decision ids (`decision_ids`).
    decision_ids: bool,
}

/// What a connection did since the event loop last asked
/// ([`Connection::take_counts`]), for the metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnCounts {
    /// Frames decoded (valid or not).
    pub frames_received: u64,
    /// Frames written (answers, decisions, errors).
    pub frames_sent: u64,
    /// `error` frames written, indexed like [`ErrorCode::ALL`].
    pub errors: [u64; ErrorCode::ALL.len()],
    /// Score requests whose deadline passed before they were decided
    /// (answered `timeout`).
    pub deadline_expired: u64,
    /// Score requests shed at admission (answered `overloaded`) because
    /// the engine's backlog would decide them after their deadline.
    pub deadline_shed: u64,
}

/// The protocol state of one client connection. See the [module docs](self).
#[derive(Debug)]
pub struct Connection {
    io: IoBuffers,
    /// Requests in flight, by slot (at most [`limits::IN_FLIGHT_MAX`] slots).
    slots: Vec<Option<Pending>>,
    free_slots: Vec<usize>,
    /// List items that decoded contexts no longer needed (capacity
    /// [`SPARE_STRINGS_MAX`], never grown).
    spare_strings: Vec<String>,
    in_flight: usize,
    /// Requests in flight that asked for a `bid_response` (at most
    /// [`limits::BID_RESPONSES_IN_FLIGHT_MAX`]).
    bid_responses_in_flight: usize,
    /// The `seq` of the next score request (see [`Owner`]).
    next_seq: u64,
    version: u8,
    frames_seen: u64,
    closing: bool,
    shutting_down: bool,
    counts: ConnCounts,
    /// The events of the `feedback` message being taken (capacity
    /// `EVENT_BATCH_MAX` from the first one on, never grown).
    feedback_events: Vec<Event>,
    /// The writes of the `put_features` message being taken, and its
    /// answer (capacity `PUT_FEATURES_ITEMS_MAX` from the first one on).
    feature_puts: Vec<cx_engine::featurestore::FeaturePut>,
    put_ack: protocol::PutFeaturesAck,
    /// The decision id being written into an answer.
    decision_id: String,
}

impl Default for Connection {
    fn default() -> Self {
        Self::new()
    }
}

impl Connection {
    /// A fresh connection: protocol version 1 until a hello says otherwise,
    /// nothing buffered, nothing in flight.
    pub fn new() -> Self {
        Self {
            io: IoBuffers::new(),
            slots: Vec::new(),
            free_slots: Vec::new(),
            spare_strings: Vec::with_capacity(SPARE_STRINGS_MAX),
            in_flight: 0,
            bid_responses_in_flight: 0,
            next_seq: 0,
            version: VERSION,
            frames_seen: 0,
            closing: false,
            shutting_down: false,
            counts: ConnCounts::default(),
            feedback_events: Vec::new(),
            feature_puts: Vec::new(),
            put_ack: protocol::PutFeaturesAck::default(),
            decision_id: String::new(),
        }
    }

    /// The protocol version in use (negotiated by a hello, else 1).
    pub fn version(&self) -> u8 {
        self.version
    }

    /// Score requests in flight (read, not yet answered).
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Whether a fatal error (or a failed negotiation) ended the
    /// connection: send [`Self::output`], then close. Input is ignored.
    pub fn is_closing(&self) -> bool {
        self.closing
    }

    /// Whether the event loop may close the socket now: the connection is
    /// closing, or shutting down with nothing in flight, and all output was
    /// sent.
    pub fn is_done(&self) -> bool {
        self.output().is_empty() && (self.closing || (self.shutting_down && self.in_flight == 0))
    }

    /// Bytes the read buffer can take now: none while output is paused
    /// (what arrived stays in the socket, where TCP pushes back), else up
    /// to [`READ_BUFFER_MAX`].
    pub fn read_capacity(&self) -> usize {
        self.io.read_capacity()
    }

    /// Bytes past [`READ_BUFFER_KEEP_BYTES`] the frame now arriving needs:
    /// what the event loop must reserve from the server's input budget
    /// ([`crate::budget`]) before this connection reads past what it keeps.
    /// 0 when no frame larger than that is partly held.
    pub fn large_frame_bytes(&self) -> usize {
        self.io.large_frame_bytes()
    }

    /// Lets the read buffer hold `bytes` past [`READ_BUFFER_KEEP_BYTES`]
    /// (what was reserved for the frame now arriving; 0 when none). A new
    /// connection may hold a maximal frame; a server that shares an input
    /// budget sets 0 at open and reserves per frame.
    pub fn set_large_reserved(&mut self, bytes: usize) {
        self.io.set_large_reserved(bytes);
    }

    /// Frames decoded so far (valid or not): it moves whenever a frame was
    /// complete.
    pub fn frames_seen(&self) -> u64 {
        self.frames_seen
    }

    /// Bytes received but not yet decoded (a partial frame, or frames held
    /// back while output is paused).
    pub fn buffered_input(&self) -> usize {
        self.io.read.len()
    }

    /// Whether the write buffer is over the pause threshold
    /// ([`WRITE_PAUSE_BYTES`] unless lowered), so no new frame is decoded
    /// until the peer reads.
    pub fn is_write_paused(&self) -> bool {
        self.io.is_write_paused()
    }

    /// Lowers (or restores) the output size at which decoding pauses,
    /// clamped to `1..=WRITE_PAUSE_BYTES`: the event loop sets 1 while the
    /// server's output budget is spent, so a connection with any output
    /// waiting takes no new request. The write buffer's bound
    /// ([`WRITE_BUFFER_MAX`]) holds for any threshold.
    pub fn set_write_pause_bytes(&mut self, bytes: usize) {
        self.io.set_write_pause_bytes(bytes);
    }

    /// Whether the event loop should read from the socket: not closing, not
    /// paused for a slow client, and room in the read buffer.
    pub fn wants_read(&self) -> bool {
        !self.closing && !self.is_write_paused() && self.read_capacity() > 0
    }

    /// Response bytes not yet sent, in order.
    pub fn output(&self) -> &[u8] {
        self.io.output()
    }

    /// Records that the first `n` bytes of [`Self::output`] were sent
    /// (clamped to its length).
    pub fn consume_output(&mut self, n: usize) {
        self.io.consume_output(n);
    }

    /// What the connection did since the last call; resets the counts.
    pub fn take_counts(&mut self) -> ConnCounts {
        std::mem::take(&mut self.counts)
    }

    /// Stops taking new requests: every new request frame is answered
    /// `shutting_down`; requests in flight are still answered. The
    /// connection [`is_done`](Self::is_done) once they are and the output
    /// was sent.
    pub fn shutdown(&mut self) {
        self.shutting_down = true;
    }

    /// Takes received bytes (at most [`Self::read_capacity`] of them) and
    /// decodes every complete frame, answering or submitting each; returns
    /// how many bytes of `bytes` were taken. Bytes not taken must be
    /// offered again later; an event loop that reads at most
    /// [`Self::read_capacity`] bytes never has any. Call it with an empty
    /// slice to resume decoding after output drained below
    /// [`WRITE_PAUSE_BYTES`]. Once [`Self::is_closing`], input is taken and
    /// dropped.
    pub fn on_bytes(
        &mut self,
        bytes: &[u8],
        sink: &mut impl Submit,
        lists: &mut ImpLists,
    ) -> usize {
        if self.closing {
            return bytes.len();
        }
        let mut taken = 0;
        loop {
            let n = self.io.take_input(bytes.get(taken..).unwrap_or(&[]));
            taken += n;
            self.decode_buffered(sink, lists);
            if self.closing {
                return bytes.len();
            }
            if taken == bytes.len() || n == 0 || self.read_capacity() == 0 {
                return taken;
            }
        }
    }

    /// Echo mode (the benchmark baseline, `cx serve --echo`): appends
    /// received bytes to the output as they are, without decoding; returns
    /// how many were taken (none beyond [`WRITE_BUFFER_MAX`] of output, so
    /// a client that does not read is paused like any other).
    pub fn on_echo_bytes(&mut self, bytes: &[u8]) -> usize {
        let room = WRITE_BUFFER_MAX.saturating_sub(self.output().len());
        let n = bytes.len().min(room);
        self.io
            .write
            .extend_from_slice(bytes.get(..n).unwrap_or(&[]));
        n
    }

    /// Hands the connection the decision for the request `owner` names
    /// (as [`Submit::submit`] was told). When it completes its request, the
    /// `decision` response is written. A decision for a request already
    /// answered is dropped.
    ///
    /// # Panics
    /// When the impression `owner` names is not waiting for this decision's
    /// ticket: a decision delivered twice, or to the wrong owner.
    pub fn on_decision(
        &mut self,
        owner: Owner,
        decision: Decision,
        lists: &mut ImpLists,
        respond: &mut impl Respond,
    ) {
        let slot = owner.slot as usize;
        let Some(Some(pending)) = self.slots.get_mut(slot) else {
            return; // answered already; the slot is free
        };
        if pending.seq != owner.seq {
            return; // answered already; the slot holds a later request
        }
        record_decision(&mut pending.imps, &mut pending.waiting, owner, decision);
        if pending.waiting == 0 {
            self.complete(slot, lists, respond);
        }
    }

    /// Decodes frames from the read buffer until it holds no whole frame,
    /// output is paused, or the connection closes; then drops what was
    /// consumed.
    fn decode_buffered(&mut self, sink: &mut impl Submit, lists: &mut ImpLists) {
        let buf = std::mem::take(&mut self.io.read);
        let mut pos = 0;
        self.io.partial_bytes = 0;
        while !self.closing && !self.is_write_paused() {
            let rest = buf.get(pos..).unwrap_or(&[]);
            if rest.is_empty() {
                break;
            }
            match protocol::decode_frame(rest) {
                Decoded::NeedMore { at_least } => {
                    self.io.partial_bytes = at_least;
                    break;
                }
                Decoded::Invalid {
                    error,
                    consumed,
                    request_id,
                } => {
                    pos += consumed.max(1);
                    self.frames_seen += 1;
                    self.counts.frames_received += 1;
                    let id = request_id.unwrap_or(0);
                    self.error(id, error.code(), &error.to_string());
                    if error.is_fatal() {
                        self.closing = true;
                    }
                }
                Decoded::Frame {
                    header,
                    payload,
                    consumed,
                } => {
                    pos += consumed;
                    let first = self.frames_seen == 0;
                    self.frames_seen += 1;
                    self.counts.frames_received += 1;
                    self.on_frame(
                        header.message_type,
                        header.request_id,
                        payload,
                        first,
                        sink,
                        lists,
                    );
                }
            }
        }
        self.io.restore_read(buf, pos, self.closing);
    }

    /// Answers or submits one frame with a valid header.
    fn on_frame(
        &mut self,
        message_type: MessageType,
        request_id: u64,
        payload: &[u8],
        first: bool,
        sink: &mut impl Submit,
        lists: &mut ImpLists,
    ) {
        if !message_type.is_from_client() {
            let msg = format!("{} is sent by servers only", message_type.label());
            self.error(request_id, ErrorCode::UnknownMessageType, &msg);
            return;
        }
        if self.shutting_down {
            self.error(
                request_id,
                ErrorCode::ShuttingDown,
                "the server is shutting down",
            );
            return;
        }
        if self.in_flight >= limits::IN_FLIGHT_MAX {
            let msg = format!("limit {}", limits::IN_FLIGHT_MAX);
            self.error(request_id, ErrorCode::TooManyInFlight, &msg);
            return;
        }
        let scores = matches!(
            message_type,
            MessageType::ScoreContext | MessageType::ScoreOpenRtb
        );
        if scores && !sink.admit() {
            self.error(
                request_id,
                ErrorCode::Overloaded,
                "the engine is at capacity",
            );
            return;
        }
        match message_type {
            MessageType::Hello => self.on_hello(request_id, payload, first),
            MessageType::Ping => match protocol::decode_ping(payload) {
                Ok(nonce) => {
                    protocol::encode_pong(&mut self.io.write, request_id, nonce);
                    self.counts.frames_sent += 1;
                }
                Err(e) => self.error(request_id, e.code(), &e.to_string()),
            },
            MessageType::ScoreContext => match protocol::decode_score_context_view(payload) {
                Ok(view) => {
                    let mut ctx = sink.spare_context();
                    view.write_into_pooled(&mut ctx, &mut self.spare_strings);
                    let request = Request {
                        ctx,
                        simulate: view.simulate,
                        ..Request::default()
                    };
                    let imps = std::iter::once((String::new(), ImpPlan::Submit(request)));
                    let answer = requests::Answer {
                        deadline_ns: sink.deadline_ns(None),
                        bid_request: None,
                        decision_ids: view.decision_ids,
                    };
                    self.submit_request(request_id, answer, imps, sink, lists);
                }
                Err(e) => self.error(request_id, e.code(), &e.to_string()),
            },
            MessageType::ScoreOpenRtb => match protocol::decode_score_openrtb(payload) {
                Ok((json, flags)) => self.on_openrtb(request_id, json, flags, sink, lists),
                Err(e) => self.error(request_id, e.code(), &e.to_string()),
            },
            MessageType::Feedback => self.on_feedback(request_id, payload, sink),
            MessageType::PutFeatures => self.on_put_features(request_id, payload, sink),
            // Server-only types were refused above.
            MessageType::HelloAck
            | MessageType::Pong
            | MessageType::Decision
            | MessageType::Error
            | MessageType::BidResponse
            | MessageType::FeedbackAck
            | MessageType::PutFeaturesAck => {}
        }
    }

    fn on_hello(&mut self, request_id: u64, payload: &[u8], first: bool) {
        if !first {
            self.error(
                request_id,
                ErrorCode::InvalidPayload,
                "hello: only valid as the connection's first frame",
            );
            return;
        }
        match protocol::decode_hello(payload) {
            Ok(hello) => match hello.negotiate() {
                Some(version) => {
                    self.version = version;
                    protocol::encode_hello_ack(
                        &mut self.io.write,
                        request_id,
                        HelloAck::ours(version),
                    );
                    self.counts.frames_sent += 1;
                }
                None => {
                    let msg = format!(
                        "hello: versions {}..={} requested, this server speaks {}..={}",
                        hello.min_version,
                        hello.max_version,
                        protocol::VERSION_MIN,
                        VERSION
                    );
                    self.error(request_id, ErrorCode::UnsupportedVersion, &msg);
                    self.closing = true;
                }
            },
            Err(e) => self.error(request_id, e.code(), &e.to_string()),
        }
    }

    fn error(&mut self, request_id: u64, code: ErrorCode, message: &str) {
        protocol::encode_error(&mut self.io.write, request_id, code, message);
        self.counts.frames_sent += 1;
        if let Some(i) = ErrorCode::ALL.iter().position(|&c| c == code) {
            if let Some(n) = self.counts.errors.get_mut(i) {
                *n += 1;
            }
        }
    }
}
