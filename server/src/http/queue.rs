//! [`HttpConnection`]: requests in, submissions out, answers written in
//! request order (see the [module docs](super), "Order and data layout").

use super::answer::{self, Framing, InPlace};
use super::body::{self, BodyError};
use super::head::{self, Head, Parsed, Refusal, Route};
use super::limits::IN_FLIGHT_MAX;
use super::{notice, owner, HttpCounts, HttpSettings};
use crate::conn::requests::check_request_limits;
use crate::conn::{
    record_decision, ImpLists, ImpState, IoBuffers, Overloaded, Owner, Respond, Submit,
};
use cx_domain::feedback::Accepted;
use cx_domain::notice::NoticeKind;
use cx_domain::pipeline::Decision;
use cx_engine::openrtb::{
    plan_impressions, trim_for_response, ImpOutcome, ImpPlan, ResponseBuffers, Written,
};
use cx_wire::openrtb::{self, BidRequest, NoBidReason};
use cx_wire::Error as WireError;
use std::collections::VecDeque;
use std::sync::Arc;

/// A request read and not yet answered.
struct Exchange {
    seq: u64,
    keep_alive: bool,
    deadline_ns: Option<u64>,
    stage: Stage,
}

/// Where a request stands.
enum Stage {
    /// Impressions submitted; `waiting` of them not decided yet.
    Deciding {
        request: Box<BidRequest>,
        imps: Vec<(String, ImpState)>,
        waiting: usize,
    },
    /// Its answer, written, waiting for the answers before it.
    Answered(Vec<u8>),
}

/// One HTTP/1.1 connection of the bidder. See the [module docs](super).
pub struct HttpConnection {
    io: IoBuffers,
    settings: Arc<HttpSettings>,
    /// Requests read and not yet answered, in arrival (= answer) order.
    queue: VecDeque<Exchange>,
    next_seq: u64,
    requests_seen: u64,
    /// Nothing more is read: a fatal error, or a request that asked to
    /// close; the connection closes once the queue is answered.
    last_read: bool,
    shutting_down: bool,
    /// `100 Continue` was sent for the request now partly held.
    continue_sent: bool,
    /// Scratch: an inflated gzip body.
    inflated: Vec<u8>,
    /// Scratch: a bid's parts before they are escaped into its answer.
    response_buffers: ResponseBuffers,
    /// Scratch: the impressions' outcomes handed to the responder.
    outcomes: Vec<ImpOutcome>,
    counts: HttpCounts,
}

impl std::fmt::Debug for HttpConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConnection")
            .field("queued", &self.queue.len())
            .field("requests_seen", &self.requests_seen)
            .field("last_read", &self.last_read)
            .finish_non_exhaustive()
    }
}

impl HttpConnection {
    /// A fresh connection under `settings`.
    pub fn new(settings: Arc<HttpSettings>) -> Self {
        Self {
            io: IoBuffers::new(),
            settings,
            queue: VecDeque::new(),
            next_seq: 0,
            requests_seen: 0,
            last_read: false,
            shutting_down: false,
            continue_sent: false,
            inflated: Vec::new(),
            response_buffers: ResponseBuffers::default(),
            outcomes: Vec::new(),
            counts: HttpCounts::default(),
        }
    }

    /// The buffers (read-only).
    pub fn io(&self) -> &IoBuffers {
        &self.io
    }

    /// The buffers.
    pub fn io_mut(&mut self) -> &mut IoBuffers {
        &mut self.io
    }

    /// Requests read and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }

    /// Requests whose head was read (it moves whenever one was complete).
    pub fn requests_seen(&self) -> u64 {
        self.requests_seen
    }

    /// Whether no further request is read (a fatal error, or the client
    /// asked to close).
    pub fn is_closing(&self) -> bool {
        self.last_read
    }

    /// Whether the socket may close: nothing more will be read or
    /// answered, and all output was sent.
    pub fn is_done(&self) -> bool {
        self.io.output().is_empty()
            && self.queue.is_empty()
            && (self.last_read || self.shutting_down)
    }

    /// Whether no request is decoded now: output over its pause threshold,
    /// or [`IN_FLIGHT_MAX`] requests waiting for their answers.
    pub fn is_paused(&self) -> bool {
        self.io.is_write_paused() || self.queue.len() >= IN_FLIGHT_MAX
    }

    /// Bytes the read buffer can take now (0 while paused).
    pub fn read_capacity(&self) -> usize {
        if self.is_paused() {
            return 0;
        }
        self.io.read_capacity()
    }

    /// Whether the event loop should read from the socket.
    pub fn wants_read(&self) -> bool {
        !self.last_read && self.read_capacity() > 0
    }

    /// Answers every later request `503` and closes once the requests in
    /// flight are answered.
    pub fn shutdown(&mut self) {
        self.shutting_down = true;
    }

    /// What the connection did since the last call; resets the counts.
    pub fn take_counts(&mut self) -> HttpCounts {
        std::mem::take(&mut self.counts)
    }

    /// Takes received bytes (at most [`Self::read_capacity`]) and handles
    /// every complete request; returns how many bytes were taken. An empty
    /// slice resumes after a pause. After the last request is read, input
    /// is taken and dropped.
    pub fn on_bytes(
        &mut self,
        bytes: &[u8],
        sink: &mut impl Submit,
        lists: &mut ImpLists,
    ) -> usize {
        if self.last_read {
            return bytes.len();
        }
        let mut taken = 0;
        loop {
            let n = if self.is_paused() {
                0
            } else {
                self.io.take_input(bytes.get(taken..).unwrap_or(&[]))
            };
            taken += n;
            self.decode_buffered(sink, lists);
            if self.last_read {
                return bytes.len();
            }
            if taken == bytes.len() || n == 0 || self.read_capacity() == 0 {
                return taken;
            }
        }
    }

    /// Hands the connection the decision for `owner`; writes every answer
    /// that is due, in order. A decision for a request already answered
    /// is dropped.
    ///
    /// # Panics
    /// When the impression `owner` names is not waiting for this
    /// decision's ticket (a decision delivered twice, or to the wrong
    /// owner).
    pub fn on_decision(
        &mut self,
        owner: Owner,
        decision: Decision,
        lists: &mut ImpLists,
        respond: &mut impl Respond,
    ) {
        let Ok(at) = self.queue.binary_search_by_key(&owner.seq(), |e| e.seq) else {
            return; // answered already (refused as overloaded)
        };
        let Some(Stage::Deciding { imps, waiting, .. }) =
            self.queue.get_mut(at).map(|e| &mut e.stage)
        else {
            return;
        };
        record_decision(imps, waiting, owner, decision);
        if at == 0 {
            self.write_due(lists, respond);
        }
    }

    /// Handles every complete request in the read buffer, until it holds
    /// none, the connection pauses, or nothing more is read.
    fn decode_buffered(&mut self, sink: &mut impl Submit, lists: &mut ImpLists) {
        let buf = std::mem::take(&mut self.io.read);
        let mut pos = 0;
        self.io.partial_bytes = 0;
        while !self.last_read && !self.is_paused() {
            let rest = buf.get(pos..).unwrap_or(&[]);
            if rest.is_empty() {
                break;
            }
            match head::parse(rest, &self.settings.bid_path) {
                Parsed::Partial => break,
                Parsed::Refused { refusal, skip } => {
                    if !refusal.close && rest.len() < skip {
                        self.io.partial_bytes = skip; // its body is still arriving
                        break;
                    }
                    self.requests_seen += 1;
                    self.counts.requests += 1;
                    pos += skip;
                    self.refuse(&refusal);
                    if refusal.close {
                        self.last_read = true;
                    }
                }
                Parsed::Head(h) => {
                    let total = h.head_bytes + h.body_bytes;
                    if rest.len() < total {
                        self.io.partial_bytes = total;
                        self.maybe_continue(&h, rest.len());
                        break;
                    }
                    self.continue_sent = false;
                    self.requests_seen += 1;
                    self.counts.requests += 1;
                    pos += total;
                    let request = rest.get(..total).unwrap_or(&[]);
                    self.on_request(&h, request, sink, lists);
                    if !h.keep_alive {
                        self.last_read = true;
                    }
                }
            }
        }
        let discard = self.last_read;
        self.io.restore_read(buf, pos, discard);
    }

    /// Sends `100 Continue` once for a request whose client waits for it
    /// (only when no earlier answer is due, so answers stay in order).
    fn maybe_continue(&mut self, h: &Head, buffered: usize) {
        let waiting_for_body = buffered == h.head_bytes;
        if h.expects_continue && !self.continue_sent && waiting_for_body && self.queue.is_empty() {
            answer::write_continue(&mut self.io.write);
            self.continue_sent = true;
        }
    }

    /// Handles one whole request (`bytes`: head and body).
    fn on_request(&mut self, h: &Head, bytes: &[u8], sink: &mut impl Submit, lists: &mut ImpLists) {
        match h.route {
            Route::Bid => {
                let body = bytes.get(h.head_bytes..).unwrap_or(&[]);
                self.on_bid(h, body, sink, lists);
            }
            Route::Notice(kind) => {
                let query = bytes.get(h.query_span.0..h.query_span.1).unwrap_or(&[]);
                self.on_notice(kind, query, h.keep_alive, sink);
            }
        }
    }

    fn on_notice(
        &mut self,
        kind: NoticeKind,
        query: &[u8],
        keep_alive: bool,
        sink: &mut impl Submit,
    ) {
        let framing = Framing {
            close: !keep_alive,
            ..Framing::default()
        };
        let outcome = match notice::parse(kind, query) {
            Ok(n) => {
                let taken = sink.notice(&n);
                tracing::debug!(kind = kind.label(), bid = %n.bid_id, ?taken, "notice");
                match taken {
                    Ok(Accepted::Applied) => 0,
                    Ok(Accepted::Held) => 1,
                    Err(_) => 2,
                }
            }
            Err(e) => {
                self.counts.notices[kind.index()][3] += 1;
                let msg = e.to_string();
                self.answer(keep_alive, |out| {
                    answer::write_error(out, 400, Some(e.param), &msg, framing);
                });
                self.counts.answered(400);
                return;
            }
        };
        self.counts.notices[kind.index()][outcome] += 1;
        // Known, duplicate or unknown: all answered alike, since exchanges
        // retry whatever is not a success.
        self.answer(keep_alive, |out| answer::write(out, 204, &[], framing));
        self.counts.answered(204);
    }

    fn on_bid(&mut self, h: &Head, body: &[u8], sink: &mut impl Submit, lists: &mut ImpLists) {
        let keep_alive = h.keep_alive;
        if self.shutting_down {
            self.last_read = true;
            self.fail(503, None, "the server is shutting down", false);
            return;
        }
        if !sink.admit() {
            self.fail(503, None, "the engine is at capacity", keep_alive);
            return;
        }
        let mut inflated = std::mem::take(&mut self.inflated);
        let json = if h.gzip {
            match body::inflate(body, &mut inflated) {
                Ok(()) => inflated.as_slice(),
                Err(BodyError::TooLarge) => {
                    self.inflated = inflated;
                    let msg = format!(
                        "body: inflates past {} bytes",
                        super::limits::INFLATED_BYTES_MAX
                    );
                    self.fail(413, None, &msg, keep_alive);
                    return;
                }
                Err(BodyError::Corrupt(e)) => {
                    self.inflated = inflated;
                    self.fail(400, None, &format!("body: not valid gzip: {e}"), keep_alive);
                    return;
                }
            }
        } else {
            body
        };
        let parsed = openrtb::parse_request(json).map_err(|e| match e {
            WireError::OpenRtb { path, reason } => (path, reason),
            other => ("$".to_owned(), other.to_string()),
        });
        self.inflated = inflated;
        let request = match parsed.and_then(|r| check_request_limits(&r).map(|()| r)) {
            Ok(r) => r,
            Err((path, reason)) => {
                self.fail(400, Some(&path), &reason, keep_alive);
                return;
            }
        };
        self.submit_bid(Box::new(request), keep_alive, sink, lists);
    }

    /// Submits a valid bid request's impressions and queues it.
    fn submit_bid(
        &mut self,
        mut request: Box<BidRequest>,
        keep_alive: bool,
        sink: &mut impl Submit,
        lists: &mut ImpLists,
    ) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let deadline_ns = sink.deadline_ns(request.tmax);
        if deadline_ns.is_some_and(|d| d <= sink.now_ns()) {
            let code = NoBidReason::InsufficientAuctionTime.code();
            self.no_bid(code, keep_alive);
            return;
        }
        let plans = plan_impressions(&request);
        // Held until its answer is written: only what the answer reads.
        trim_for_response(&mut request);
        if deadline_ns.is_some_and(|d| sink.decided_by_ns(plans.len()) > d) {
            self.counts.deadline_shed += 1;
            let msg = "the engine's backlog would decide the request after its deadline";
            self.fail(503, None, msg, keep_alive);
            return;
        }
        let mut imps = lists.take();
        imps.reserve_exact(plans.len());
        let mut waiting = 0;
        for (i, (imp_id, plan)) in plans.into_iter().enumerate() {
            let state = match plan {
                ImpPlan::Skip(reason) => ImpState::Skipped(reason),
                ImpPlan::Submit(r) => match sink.submit(r, owner(i, seq)) {
                    Ok(ticket) => {
                        waiting += 1;
                        ImpState::Waiting(ticket)
                    }
                    Err(Overloaded) => {
                        // Decisions already asked for find no request
                        // `seq` and are dropped.
                        lists.keep(imps);
                        self.fail(503, None, "the engine is at capacity", keep_alive);
                        return;
                    }
                },
            };
            imps.push((imp_id, state));
        }
        self.queue.push_back(Exchange {
            seq,
            keep_alive,
            deadline_ns,
            stage: Stage::Deciding {
                request,
                imps,
                waiting,
            },
        });
        if self.queue.len() == 1 {
            self.write_due(lists, sink);
        }
    }

    /// Writes every answer at the front of the queue that is ready.
    fn write_due(&mut self, lists: &mut ImpLists, respond: &mut impl Respond) {
        while let Some(front) = self.queue.front() {
            let ready = match &front.stage {
                Stage::Answered(_) => true,
                Stage::Deciding { waiting, .. } => *waiting == 0,
            };
            if !ready {
                return;
            }
            let Some(exchange) = self.queue.pop_front() else {
                return;
            };
            let close = !exchange.keep_alive || (self.shutting_down && self.queue.is_empty());
            match exchange.stage {
                Stage::Answered(bytes) => self.io.write.extend_from_slice(&bytes),
                Stage::Deciding {
                    request, mut imps, ..
                } => {
                    let expired = exchange.deadline_ns.is_some_and(|d| respond.now_ns() > d);
                    let mut out = std::mem::take(&mut self.io.write);
                    self.render_bid(&mut out, &request, &mut imps, expired, close, respond);
                    self.io.write = out;
                    lists.keep(imps);
                }
            }
        }
    }

    /// Writes the answer to a decided bid request: its BidResponse (`200`),
    /// or a `204` no-bid.
    fn render_bid(
        &mut self,
        out: &mut Vec<u8>,
        request: &BidRequest,
        imps: &mut [(String, ImpState)],
        expired: bool,
        close: bool,
        respond: &mut impl Respond,
    ) {
        let framing = Framing {
            close,
            ..Framing::default()
        };
        if expired {
            self.counts.deadline_expired += 1;
            let code = NoBidReason::TechnicalError.code();
            tracing::debug!(request = %request.id, "deadline passed before the decision");
            self.write_no_bid(out, code, framing);
            return;
        }
        self.outcomes.clear();
        // The ids move into the outcomes: the list is recycled emptied.
        self.outcomes.extend(
            imps.iter_mut()
                .map(|(id, state)| state.outcome(std::mem::take(id))),
        );
        // The BidResponse is written straight after the head; a no-bid's
        // document is logged and replaced by a `204`.
        let in_place = InPlace::begin(out, framing);
        let written =
            respond.write_bid_response(request, &self.outcomes, &mut self.response_buffers, out);
        match written {
            Written::Bid => {
                in_place.finish(out);
                self.counts.answered(200);
            }
            Written::NoBid(nbr) => {
                tracing::debug!(
                    request = %request.id,
                    nbr = nbr.code(),
                    response = %String::from_utf8_lossy(in_place.body(out)),
                    "no bid"
                );
                in_place.abandon(out);
                self.write_no_bid(out, nbr.code(), framing);
            }
        }
    }

    fn write_no_bid(&mut self, out: &mut Vec<u8>, code: u32, framing: Framing<'_>) {
        let framing = Framing {
            nbr: Some(code),
            ..framing
        };
        answer::write(out, 204, &[], framing);
        self.counts.answered(204);
        self.counts.no_bid(code);
    }

    /// Answers a request with a no-bid at once (in order).
    fn no_bid(&mut self, code: u32, keep_alive: bool) {
        let framing = Framing {
            close: !keep_alive,
            nbr: Some(code),
            ..Framing::default()
        };
        self.counts.answered(204);
        self.counts.no_bid(code);
        self.answer(keep_alive, |out| answer::write(out, 204, &[], framing));
    }

    /// Answers a refused head.
    fn refuse(&mut self, refusal: &Refusal) {
        let framing = Framing {
            close: refusal.close,
            allow: refusal.allow,
            ..Framing::default()
        };
        let (status, msg) = (refusal.status, refusal.message.as_str());
        self.answer(!refusal.close, |out| {
            answer::write_error(out, status, None, msg, framing);
        });
        self.counts.answered(status);
    }

    /// Answers a request with an error (in order).
    fn fail(&mut self, status: u16, path: Option<&str>, message: &str, keep_alive: bool) {
        let framing = Framing {
            close: !keep_alive,
            retry_after_s: (status == 503).then_some(1),
            ..Framing::default()
        };
        self.answer(keep_alive, |out| {
            answer::write_error(out, status, path, message, framing);
        });
        self.counts.answered(status);
    }

    /// Writes an answer now if nothing is due before it, else queues it
    /// behind the requests still being decided.
    fn answer(&mut self, keep_alive: bool, write: impl FnOnce(&mut Vec<u8>)) {
        if self.queue.is_empty() {
            write(&mut self.io.write);
            return;
        }
        let mut held = Vec::new();
        write(&mut held);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.queue.push_back(Exchange {
            seq,
            keep_alive,
            deadline_ns: None,
            stage: Stage::Answered(held),
        });
    }
}

impl ImpState {
    /// What happened to this impression, for the responder.
    pub(crate) fn outcome(&self, imp_id: String) -> ImpOutcome {
        let (decision, skipped) = match self {
            ImpState::Decided(d) => (Some(*d), None),
            ImpState::Skipped(reason) => (None, Some(reason.label())),
            ImpState::Waiting(_) => (None, Some("not_decided")),
        };
        ImpOutcome {
            imp_id,
            decision,
            skipped,
        }
    }
}
