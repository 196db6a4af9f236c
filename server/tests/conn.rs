//! The connection state machine (`cx_server::conn`) driven with a real
//! engine: frames in, decisions out, every error path, back-pressure,
//! shutdown, and random input.

use cx_domain::pipeline::{Decision, Request, Ticket};
use cx_engine::openrtb::ImpOutcome as EngineImpOutcome;
use cx_engine::{Engine, EngineConfig};
use cx_features::{DeviceType, RequestContext};
use cx_server::conn::{
    Connection, EngineResponder, ImpLists, Overloaded, Owner, Respond, Submit, WRITE_BUFFER_MAX,
};
use cx_wire::openrtb::{BidRequest, BidResponse, NoBidReason};
use cx_wire::protocol::{
    self, limits, DecisionResponse, Decoded, ErrorCode, Hello, ImpDecision, ImpOutcome,
    MessageType, SkipReason,
};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;

/// Host time for every tick: 2026-01-01 00:00 UTC.
const NOW_NS: u64 = 1_767_225_600_000_000_000;

/// A connection and the engine behind it, as an event loop would hold them.
struct Harness {
    engine: Engine,
    conn: Connection,
    /// Every decision the engine made, by ticket.
    decisions: HashMap<Ticket, Decision>,
    /// Tickets in submission order.
    tickets: Vec<Ticket>,
    /// Whom each ticket's decision belongs to, as the connection said.
    owners: HashMap<Ticket, Owner>,
    /// Whether the sink hands out the engine's spare contexts (as the
    /// server's does) or new ones.
    recycle: bool,
    /// Finished requests' impression lists, as a worker keeps them.
    lists: ImpLists,
}

/// The event loop's sink over the engine.
struct EngineSink<'a> {
    engine: &'a mut Engine,
    tickets: &'a mut Vec<Ticket>,
    owners: &'a mut HashMap<Ticket, Owner>,
    recycle: bool,
}

impl Respond for EngineSink<'_> {
    fn now_ns(&self) -> u64 {
        0
    }

    fn catalog(&self) -> &cx_domain::catalog::Catalog {
        self.engine.catalog()
    }

    fn bid_response(&mut self, request: &BidRequest, imps: &[EngineImpOutcome]) -> BidResponse {
        EngineResponder(self.engine).bid_response(request, imps)
    }
}

impl Submit for EngineSink<'_> {
    fn submit(&mut self, request: Request, owner: Owner) -> Result<Ticket, Overloaded> {
        let ticket = self
            .engine
            .submit_request(request)
            .map_err(|_| Overloaded)?;
        self.tickets.push(ticket);
        self.owners.insert(ticket, owner);
        Ok(ticket)
    }

    fn spare_context(&mut self) -> RequestContext {
        if self.recycle {
            self.engine.spare_context()
        } else {
            RequestContext::default()
        }
    }
}

impl Harness {
    fn new() -> Self {
        Self::with_engine(Engine::builder().seed(7).build().expect("default engine"))
    }

    fn with_engine(engine: Engine) -> Self {
        Self {
            engine,
            conn: Connection::new(),
            decisions: HashMap::new(),
            tickets: Vec::new(),
            owners: HashMap::new(),
            recycle: true,
            lists: ImpLists::new(1 << 12),
        }
    }

    /// Feeds bytes; asserts all were taken.
    fn feed(&mut self, bytes: &[u8]) {
        let taken = self.feed_some(bytes);
        assert_eq!(taken, bytes.len());
    }

    fn feed_some(&mut self, bytes: &[u8]) -> usize {
        let mut sink = EngineSink {
            engine: &mut self.engine,
            tickets: &mut self.tickets,
            owners: &mut self.owners,
            recycle: self.recycle,
        };
        self.conn.on_bytes(bytes, &mut sink, &mut self.lists)
    }

    /// Runs the engine until it is idle and hands every decision over.
    fn pump(&mut self) {
        self.engine.run_until_decided(NOW_NS);
        while let Some(d) = self.engine.poll() {
            self.decisions.insert(d.ticket, d);
            let owner = self
                .owners
                .remove(&d.ticket)
                .expect("every ticket has an owner");
            let mut respond = EngineResponder(&mut self.engine);
            self.conn
                .on_decision(owner, d, &mut self.lists, &mut respond);
        }
    }

    /// Takes every output frame.
    fn take_frames(&mut self) -> Vec<Frame> {
        let out = self.conn.output().to_vec();
        self.conn.consume_output(out.len());
        frames(&out)
    }
}

#[derive(Debug)]
struct Frame {
    message_type: MessageType,
    request_id: u64,
    payload: Vec<u8>,
}

impl Frame {
    fn error(&self) -> (ErrorCode, String) {
        assert_eq!(self.message_type, MessageType::Error, "{self:?}");
        let e = protocol::decode_error(&self.payload).expect("error payload");
        (e.code, e.message.to_owned())
    }

    fn decision(&self) -> DecisionResponse {
        assert_eq!(self.message_type, MessageType::Decision, "{self:?}");
        protocol::decode_decision(&self.payload).expect("decision payload")
    }
}

/// Decodes a server's output: whole, valid frames only.
fn frames(mut out: &[u8]) -> Vec<Frame> {
    let mut frames = Vec::new();
    while !out.is_empty() {
        let Decoded::Frame {
            header,
            payload,
            consumed,
        } = protocol::decode_frame(out)
        else {
            panic!("the server wrote an invalid frame");
        };
        frames.push(Frame {
            message_type: header.message_type,
            request_id: header.request_id,
            payload: payload.to_vec(),
        });
        out = &out[consumed..];
    }
    frames
}

fn context(i: u32) -> RequestContext {
    RequestContext {
        device_type: DeviceType::from_openrtb(4),
        country: "USA".into(),
        user_id: format!("user-{i}"),
        placement_width: 300,
        placement_height: 250,
        ..RequestContext::default()
    }
}

fn score_context(out: &mut Vec<u8>, id: u64) {
    protocol::encode_score_context(out, id, &context(id as u32), false).expect("encodes");
}

fn ping(id: u64, nonce: u64) -> Vec<u8> {
    let mut out = Vec::new();
    protocol::encode_ping(&mut out, id, nonce);
    out
}

const OPENRTB_TWO_IMPS: &str = r#"{
  "id": "req-1",
  "imp": [
    {"id": "imp-a", "banner": {"w": 300, "h": 250}, "bidfloor": 0.01},
    {"id": "imp-b", "banner": {"w": 320, "h": 50}}
  ],
  "site": {"id": "site-1", "domain": "example.com"},
  "device": {"devicetype": 4, "geo": {"country": "USA"}},
  "user": {"id": "u-1"}
}"#;

#[test]
fn hello_is_acked_once_and_a_second_hello_is_refused() {
    let mut h = Harness::new();
    let mut bytes = Vec::new();
    protocol::encode_hello(&mut bytes, 1, Hello::ours());
    protocol::encode_hello(&mut bytes, 2, Hello::ours());
    h.feed(&bytes);
    let frames = h.take_frames();
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0].message_type, MessageType::HelloAck);
    assert_eq!(frames[0].request_id, 1);
    let ack = protocol::decode_hello_ack(&frames[0].payload).expect("ack");
    assert_eq!(ack, protocol::HelloAck::ours(1));
    assert_eq!(ack.in_flight_max as usize, limits::IN_FLIGHT_MAX);
    assert_eq!(frames[1].request_id, 2);
    assert_eq!(frames[1].error().0, ErrorCode::InvalidPayload);
    assert!(!h.conn.is_closing());
    assert_eq!(h.conn.version(), 1);
}

#[test]
fn a_hello_sharing_no_version_is_refused_and_closes() {
    let mut h = Harness::new();
    let mut bytes = Vec::new();
    protocol::encode_hello(
        &mut bytes,
        1,
        Hello {
            min_version: 7,
            max_version: 9,
        },
    );
    h.feed(&bytes);
    let frames = h.take_frames();
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].error().0, ErrorCode::UnsupportedVersion);
    assert!(h.conn.is_closing());
    assert!(h.conn.is_done());
}

#[test]
fn ping_is_answered_with_pong_at_once() {
    let mut h = Harness::new();
    h.feed(&ping(5, 0xfeed_beef));
    let frames = h.take_frames();
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].message_type, MessageType::Pong);
    assert_eq!(frames[0].request_id, 5);
    assert_eq!(protocol::decode_pong(&frames[0].payload), Ok(0xfeed_beef));
    assert_eq!(h.conn.in_flight(), 0);
}

#[test]
fn a_score_context_gets_the_engines_decision() {
    let mut h = Harness::new();
    let mut bytes = Vec::new();
    score_context(&mut bytes, 2);
    h.feed(&bytes);
    assert_eq!(h.conn.in_flight(), 1);
    assert!(
        h.conn.output().is_empty(),
        "nothing before the engine decides"
    );
    h.pump();
    assert_eq!(h.conn.in_flight(), 0);
    let frames = h.take_frames();
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].request_id, 2);
    let response = frames[0].decision();
    let decision = h.decisions[&h.tickets[0]];
    assert_eq!(
        response.imps,
        vec![ImpDecision::new("", ImpOutcome::Decided(&decision))]
    );
    assert!(
        !decision.offers().is_empty(),
        "the default catalog has offers for this request"
    );
}

/// A request of shape `k`: strings whose lengths vary with `k`, in lists
/// of `segments` and `categories` items.
fn varied_context(k: usize, segments: usize, categories: usize) -> RequestContext {
    RequestContext {
        user_id: "u".repeat(1 + k * 3),
        user_segments: (0..segments).map(|s| "9".repeat(1 + (s + k) % 6)).collect(),
        categories: (0..categories)
            .map(|c| format!("IAB{}-{}", c + 1, k * 100))
            .collect(),
        region: "r".repeat(k % 4),
        ..context(k as u32)
    }
}

/// Score requests of [`SHAPES`] shapes (lists of `list_len(k)` items),
/// decided and answered in rounds; returns the allocations of the measured
/// rounds after a warm-up, and the requests they decided.
fn steady_state_allocations(
    recycle: bool,
    list_len: impl Fn(usize) -> (usize, usize),
) -> (u64, u64) {
    let frames: Vec<Vec<u8>> = (0..SHAPES)
        .map(|k| {
            let (segments, categories) = list_len(k);
            let ctx = varied_context(k, segments, categories);
            let mut out = Vec::new();
            protocol::encode_score_context(&mut out, k as u64, &ctx, false).expect("encodes");
            out
        })
        .collect();
    let mut h = Harness::new();
    h.recycle = recycle;
    // One round: every shape once, pipelined, starting at a shape that
    // moves each round, so each reused context meets every shape.
    let round = |h: &mut Harness, r: usize| {
        for k in 0..SHAPES {
            h.feed(&frames[(r + k) % SHAPES]);
        }
        h.pump();
        let written = h.conn.output().len();
        assert!(written > 0, "round {r} was answered");
        h.conn.consume_output(written);
        h.tickets.clear();
        h.decisions.clear();
    };
    // Warm-up: contexts, impression lists, buffers and tables reach size.
    for r in 0..4 * SHAPES {
        round(&mut h, r);
    }
    let decided_before = h.engine.stats().pipeline.decided;
    let rounds = 2 * SHAPES;
    let info = allocation_counter::measure(|| {
        for r in 0..rounds {
            round(&mut h, r);
        }
    });
    let decided = h.engine.stats().pipeline.decided - decided_before;
    assert_eq!(decided, (rounds * SHAPES) as u64, "every request decided");
    (info.count_total, decided)
}

const SHAPES: usize = 16;

#[test]
fn score_requests_in_steady_state_allocate_nothing() {
    // Contexts come back from the engine and are decoded into again, and
    // list items wait in the connection's pool, so once they have grown,
    // strings of any length and lists of any length cost nothing.
    let (allocations, decided) = steady_state_allocations(true, |_| (3, 2));
    assert_eq!(
        allocations, 0,
        "lists of one length: {allocations} allocations for {decided} score requests \
         decoded, decided and answered"
    );
    let varying = |k| (k % 5, k % 3);
    let (allocations, decided) = steady_state_allocations(true, varying);
    assert_eq!(
        allocations, 0,
        "lists of varying length: {allocations} allocations for {decided} requests"
    );
    // Decoding into new contexts instead: the same requests allocate.
    let (fresh, _) = steady_state_allocations(false, varying);
    assert!(fresh >= decided, "{fresh} allocations with new contexts");
}

#[test]
fn pipelined_requests_in_random_chunks_are_each_answered_once() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut h = Harness::new();
    let mut bytes = Vec::new();
    let ids: Vec<u64> = (1..=60).collect();
    for &id in &ids {
        if id % 7 == 0 {
            protocol::encode_ping(&mut bytes, id, id);
        } else {
            score_context(&mut bytes, id);
        }
    }
    let mut answered: HashMap<u64, usize> = HashMap::new();
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let n = rng.random_range(1..=rest.len().min(300));
        h.feed(&rest[..n]);
        rest = &rest[n..];
        if rng.random_bool(0.3) {
            h.pump();
        }
        for f in h.take_frames() {
            assert!(matches!(
                f.message_type,
                MessageType::Decision | MessageType::Pong
            ));
            *answered.entry(f.request_id).or_default() += 1;
        }
    }
    h.pump();
    for f in h.take_frames() {
        assert_eq!(f.message_type, MessageType::Decision);
        assert_eq!(f.decision().imps.len(), 1);
        *answered.entry(f.request_id).or_default() += 1;
    }
    assert_eq!(answered.len(), ids.len());
    assert!(answered.values().all(|&n| n == 1), "{answered:?}");
    assert_eq!(h.conn.in_flight(), 0);
    assert_eq!(h.conn.buffered_input(), 0);
}

#[test]
fn an_openrtb_request_with_two_imps_gets_one_response_with_both() {
    let mut h = Harness::new();
    let mut bytes = Vec::new();
    protocol::encode_score_openrtb(&mut bytes, 9, OPENRTB_TWO_IMPS.as_bytes(), false)
        .expect("encodes");
    h.feed(&bytes);
    assert_eq!(h.conn.in_flight(), 1);
    assert_eq!(h.tickets.len(), 2);
    h.pump();
    let frames = h.take_frames();
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].request_id, 9);
    let imps = frames[0].decision().imps;
    let expected: Vec<ImpDecision> = ["imp-a", "imp-b"]
        .iter()
        .zip(&h.tickets)
        .map(|(id, t)| ImpDecision::new(id, ImpOutcome::Decided(&h.decisions[t])))
        .collect();
    assert_eq!(imps, expected);
    assert!(imps.iter().all(|i| !i.simulated));
}

#[test]
fn openrtb_non_usd_imps_are_skipped_and_test_requests_simulated() {
    let mut h = Harness::new();
    let json = OPENRTB_TWO_IMPS
        .replace(
            "\"bidfloor\": 0.01",
            "\"bidfloor\": 0.01, \"bidfloorcur\": \"EUR\"",
        )
        .replace("\"id\": \"req-1\",", "\"id\": \"req-1\", \"test\": 1,");
    let mut bytes = Vec::new();
    protocol::encode_score_openrtb(&mut bytes, 3, json.as_bytes(), false).expect("encodes");
    h.feed(&bytes);
    assert_eq!(h.tickets.len(), 1, "only the USD impression is submitted");
    h.pump();
    let frames = h.take_frames();
    assert_eq!(frames.len(), 1);
    let imps = frames[0].decision().imps;
    assert_eq!(imps.len(), 2);
    assert_eq!(
        imps[0],
        ImpDecision::new("imp-a", ImpOutcome::Skipped(SkipReason::Currency))
    );
    assert_eq!(imps[1].imp_id, "imp-b");
    assert!(imps[1].simulated, "test: 1 decides in simulation mode");
}

#[test]
fn an_openrtb_request_in_another_currency_is_answered_without_the_engine() {
    let mut h = Harness::new();
    let json = OPENRTB_TWO_IMPS.replace(
        "\"id\": \"req-1\",",
        "\"id\": \"req-1\", \"cur\": [\"EUR\"],",
    );
    let mut bytes = Vec::new();
    protocol::encode_score_openrtb(&mut bytes, 4, json.as_bytes(), false).expect("encodes");
    h.feed(&bytes);
    assert!(h.tickets.is_empty());
    let frames = h.take_frames();
    let imps = frames[0].decision().imps;
    assert!(imps.iter().all(|i| i.skipped == Some(SkipReason::Currency)));
    assert_eq!(h.conn.in_flight(), 0);
}

#[test]
fn a_refused_openrtb_document_is_invalid_payload_naming_the_field() {
    let mut h = Harness::new();
    let mut bytes = Vec::new();
    protocol::encode_score_openrtb(&mut bytes, 6, br#"{"id": "x", "imp": []}"#, false)
        .expect("encodes");
    let long_id = "i".repeat(limits::IMP_ID_BYTES_MAX + 1);
    let json = format!(r#"{{"id": "x", "imp": [{{"id": "{long_id}"}}], "site": {{}}}}"#);
    protocol::encode_score_openrtb(&mut bytes, 7, json.as_bytes(), false).expect("encodes");
    h.feed(&bytes);
    let frames = h.take_frames();
    assert_eq!(frames.len(), 2);
    let (code, message) = frames[0].error();
    assert_eq!((frames[0].request_id, code), (6, ErrorCode::InvalidPayload));
    assert!(message.contains("imp"), "{message}");
    let (code, message) = frames[1].error();
    assert_eq!((frames[1].request_id, code), (7, ErrorCode::InvalidPayload));
    assert!(message.contains("imp[0].id"), "{message}");
    assert!(h.tickets.is_empty());
}

#[test]
fn bad_magic_is_fatal_and_closes() {
    let mut h = Harness::new();
    h.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(h.conn.is_closing());
    assert!(!h.conn.wants_read());
    let frames = h.take_frames();
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].request_id, 0);
    assert_eq!(frames[0].error().0, ErrorCode::MalformedFrame);
    // Later input is dropped.
    h.feed(&ping(1, 1));
    assert!(h.conn.output().is_empty());
    assert!(h.conn.is_done());
}

#[test]
fn a_frame_too_large_is_fatal() {
    let mut h = Harness::new();
    let mut bytes = ping(8, 0);
    let len = (limits::PAYLOAD_BYTES_MAX as u32 + 1).to_le_bytes();
    bytes[8..12].copy_from_slice(&len);
    h.feed(&bytes[..24]);
    let frames = h.take_frames();
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].error().0, ErrorCode::FrameTooLarge);
    assert!(h.conn.is_closing());
}

#[test]
fn unknown_and_server_only_types_are_refused_and_the_connection_goes_on() {
    let mut h = Harness::new();
    let mut unknown = ping(10, 1);
    unknown[5] = 0x7f;
    let mut pong = Vec::new();
    protocol::encode_pong(&mut pong, 11, 1);
    let mut bad_flags = ping(12, 1);
    bad_flags[6] = 1;
    let mut bytes = [unknown, pong, bad_flags, ping(13, 2)].concat();
    score_context(&mut bytes, 14);
    h.feed(&bytes);
    let frames = h.take_frames();
    assert_eq!(frames.len(), 4);
    assert_eq!(frames[0].request_id, 10);
    assert_eq!(frames[0].error().0, ErrorCode::UnknownMessageType);
    assert_eq!(frames[1].request_id, 11);
    assert_eq!(frames[1].error().0, ErrorCode::UnknownMessageType);
    assert_eq!(frames[2].request_id, 12);
    assert_eq!(frames[2].error().0, ErrorCode::MalformedFrame);
    assert_eq!(frames[3].message_type, MessageType::Pong);
    assert!(!h.conn.is_closing());
    h.pump();
    let frames = h.take_frames();
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].request_id, 14);
    frames[0].decision();
}

#[test]
fn a_bad_payload_is_answered_for_its_request() {
    let mut h = Harness::new();
    let mut bytes = Vec::new();
    score_context(&mut bytes, 20);
    // Set the reserved `is_app` to 2 (offset 60 of the payload).
    bytes[24 + 60] = 2;
    h.feed(&bytes);
    let frames = h.take_frames();
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].request_id, 20);
    assert_eq!(frames[0].error().0, ErrorCode::InvalidPayload);
    assert_eq!(h.conn.in_flight(), 0);
}

#[test]
fn a_truncated_frame_waits_for_the_rest() {
    let mut h = Harness::new();
    let bytes = ping(30, 3);
    h.feed(&bytes[..3]);
    h.feed(&bytes[3..20]);
    h.feed(&bytes[20..bytes.len() - 1]);
    assert!(h.conn.output().is_empty());
    assert_eq!(h.conn.buffered_input(), bytes.len() - 1);
    h.feed(&bytes[bytes.len() - 1..]);
    let frames = h.take_frames();
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].message_type, MessageType::Pong);
    assert_eq!(h.conn.buffered_input(), 0);
}

#[test]
fn engine_overload_is_answered_and_accepted_requests_still_complete() {
    let config = EngineConfig {
        in_flight_max: 2,
        ..EngineConfig::default()
    };
    let engine = Engine::builder()
        .config(config)
        .seed(3)
        .build()
        .expect("engine");
    let mut h = Harness::with_engine(engine);
    let mut bytes = Vec::new();
    for id in 1..=5 {
        score_context(&mut bytes, id);
    }
    // An OpenRTB request needing two slots when none is left.
    protocol::encode_score_openrtb(&mut bytes, 6, OPENRTB_TWO_IMPS.as_bytes(), false)
        .expect("encodes");
    h.feed(&bytes);
    let frames = h.take_frames();
    let overloaded: Vec<u64> = frames
        .iter()
        .map(|f| {
            assert_eq!(f.error().0, ErrorCode::Overloaded);
            f.request_id
        })
        .collect();
    assert_eq!(overloaded, vec![3, 4, 5, 6]);
    assert_eq!(h.conn.in_flight(), 2);
    h.pump();
    let answered: Vec<u64> = h
        .take_frames()
        .iter()
        .map(|f| {
            f.decision();
            f.request_id
        })
        .collect();
    assert_eq!(answered.len(), 2);
    assert!(answered.contains(&1) && answered.contains(&2));
    assert_eq!(h.conn.in_flight(), 0);
}

#[test]
fn a_partly_submitted_openrtb_request_is_overloaded_and_its_decisions_dropped() {
    let config = EngineConfig {
        in_flight_max: 1,
        ..EngineConfig::default()
    };
    let engine = Engine::builder().config(config).build().expect("engine");
    let mut h = Harness::with_engine(engine);
    let mut bytes = Vec::new();
    protocol::encode_score_openrtb(&mut bytes, 1, OPENRTB_TWO_IMPS.as_bytes(), false)
        .expect("encodes");
    h.feed(&bytes);
    assert_eq!(h.tickets.len(), 1, "the first imp was submitted");
    let frames = h.take_frames();
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].error().0, ErrorCode::Overloaded);
    assert_eq!(h.conn.in_flight(), 0);
    h.pump();
    assert!(h.conn.output().is_empty(), "the orphan decision is dropped");
    // The connection is still usable.
    let mut bytes = Vec::new();
    score_context(&mut bytes, 2);
    h.feed(&bytes);
    h.pump();
    let frames = h.take_frames();
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].request_id, 2);
    frames[0].decision();
}

#[test]
fn too_many_in_flight_is_refused_at_once() {
    let mut h = Harness::new();
    let mut bytes = Vec::new();
    for id in 1..=limits::IN_FLIGHT_MAX as u64 + 1 {
        score_context(&mut bytes, id);
    }
    let extra_ping = ping(5000, 0);
    bytes.extend_from_slice(&extra_ping);
    h.feed(&bytes);
    assert_eq!(h.conn.in_flight(), limits::IN_FLIGHT_MAX);
    let frames = h.take_frames();
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0].request_id, limits::IN_FLIGHT_MAX as u64 + 1);
    let (code, message) = frames[0].error();
    assert_eq!(code, ErrorCode::TooManyInFlight);
    assert_eq!(message, "limit 1024");
    assert_eq!(frames[1].request_id, 5000, "pings count too");
    assert_eq!(frames[1].error().0, ErrorCode::TooManyInFlight);
    h.pump();
    assert_eq!(h.take_frames().len(), limits::IN_FLIGHT_MAX);
    assert_eq!(h.conn.in_flight(), 0);
}

#[test]
fn shutdown_answers_requests_in_flight_then_is_done() {
    let mut h = Harness::new();
    let mut bytes = Vec::new();
    for id in 1..=3 {
        score_context(&mut bytes, id);
    }
    h.feed(&bytes);
    h.conn.shutdown();
    assert!(!h.conn.is_done());
    let mut late = Vec::new();
    score_context(&mut late, 4);
    late.extend_from_slice(&ping(5, 5));
    h.feed(&late);
    let frames = h.take_frames();
    assert_eq!(frames.len(), 2);
    assert!(frames
        .iter()
        .all(|f| f.error().0 == ErrorCode::ShuttingDown));
    assert_eq!(h.conn.in_flight(), 3);
    assert!(!h.conn.is_done());
    h.pump();
    assert!(!h.conn.is_done(), "the decisions are not sent yet");
    let mut ids: Vec<u64> = h.take_frames().iter().map(|f| f.request_id).collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![1, 2, 3]);
    assert!(h.conn.is_done());
}

#[test]
fn a_slow_client_pauses_decoding_until_output_drains() {
    let mut h = Harness::new();
    // Enough pings for their pongs to cross the pause threshold.
    let count = cx_server::conn::WRITE_PAUSE_BYTES / 32 + 100;
    let bytes: Vec<u8> = (0..count as u64).flat_map(|id| ping(id + 1, id)).collect();
    let mut fed = 0;
    // Reads of 1000 bytes: not a whole number of frames, so the pause
    // comes in the middle of a read.
    while fed < bytes.len() && h.conn.wants_read() {
        let n = (bytes.len() - fed).min(h.conn.read_capacity()).min(1000);
        fed += h.feed_some(&bytes[fed..fed + n]);
    }
    assert!(h.conn.is_write_paused());
    assert!(!h.conn.wants_read());
    assert!(h.conn.output().len() <= WRITE_BUFFER_MAX);
    let held = h.conn.buffered_input();
    assert!(held > 0, "frames are held back");
    // The peer reads everything; decoding resumes.
    let mut answered = h.take_frames().len();
    loop {
        h.feed(&[]);
        if fed < bytes.len() && h.conn.wants_read() {
            let n = (bytes.len() - fed).min(h.conn.read_capacity());
            fed += h.feed_some(&bytes[fed..fed + n]);
        }
        let got = h.take_frames().len();
        answered += got;
        if got == 0 && fed == bytes.len() {
            break;
        }
    }
    assert_eq!(answered, count);
    assert_eq!(h.conn.buffered_input(), 0);
}

#[test]
fn random_bytes_never_panic_and_keep_the_buffers_bounded() {
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let mut valid = Vec::new();
    protocol::encode_hello(&mut valid, 1, Hello::ours());
    valid.extend_from_slice(&ping(2, 2));
    score_context(&mut valid, 3);
    protocol::encode_score_openrtb(&mut valid, 4, OPENRTB_TWO_IMPS.as_bytes(), true)
        .expect("encodes");
    let mut h = Harness::new();
    for round in 0..400 {
        if round % 20 == 0 {
            h = Harness::new();
        }
        let mut bytes = if rng.random_bool(0.5) {
            let mut b = vec![0u8; rng.random_range(0..200)];
            rng.fill_bytes(&mut b);
            if rng.random_bool(0.5) {
                let m = b.len().min(4);
                b[..m].copy_from_slice(&b"CXWP"[..m]);
            }
            b
        } else {
            let mut b = valid.clone();
            for _ in 0..rng.random_range(1..4) {
                let i = rng.random_range(0..b.len());
                b[i] ^= 1 << rng.random_range(0..8);
            }
            b.truncate(rng.random_range(0..=b.len()));
            b
        };
        if rng.random_bool(0.1) {
            bytes.clear();
        }
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let n = rng.random_range(1..=rest.len());
            h.feed(&rest[..n]);
            rest = &rest[n..];
        }
        if rng.random_bool(0.5) {
            h.pump();
        }
        assert!(h.conn.output().len() <= WRITE_BUFFER_MAX);
        assert!(h.conn.buffered_input() <= cx_server::conn::READ_BUFFER_MAX);
        assert!(h.conn.in_flight() <= limits::IN_FLIGHT_MAX);
        // Whatever the input, the output is well-formed frames.
        h.take_frames();
    }
}

/// A sink whose engine is full: it admits nothing and counts what it shed.
struct FullSink {
    shed: u64,
    submitted: u64,
}

impl Respond for FullSink {
    fn now_ns(&self) -> u64 {
        0
    }

    fn catalog(&self) -> &cx_domain::catalog::Catalog {
        unreachable!("a full sink decides nothing, so nothing is explained")
    }

    fn bid_response(&mut self, request: &BidRequest, _imps: &[EngineImpOutcome]) -> BidResponse {
        BidResponse::no_bid(&request.id, NoBidReason::TechnicalError)
    }
}

impl Submit for FullSink {
    fn submit(&mut self, _request: Request, _owner: Owner) -> Result<Ticket, Overloaded> {
        self.submitted += 1;
        Err(Overloaded)
    }

    fn admit(&mut self) -> bool {
        self.shed += 1;
        false
    }
}

#[test]
fn a_full_engine_sheds_score_requests_before_decoding_them() {
    // A score_context frame whose JSON is broken (its last byte replaced).
    let mut broken = Vec::new();
    score_context(&mut broken, 1);
    let last = broken.len() - 1;
    broken[last] = b'x';
    // With room, the payload is decoded and refused as invalid.
    let mut h = Harness::new();
    h.feed(&broken);
    assert_eq!(h.take_frames()[0].error().0, ErrorCode::InvalidPayload);

    // Full: shed with `overloaded` from the header alone; pings still pass.
    let mut bytes = broken.clone();
    score_context(&mut bytes, 2);
    protocol::encode_score_openrtb(&mut bytes, 3, OPENRTB_TWO_IMPS.as_bytes(), false)
        .expect("encodes");
    bytes.extend(ping(4, 44));
    let mut conn = Connection::new();
    let mut sink = FullSink {
        shed: 0,
        submitted: 0,
    };
    assert_eq!(
        conn.on_bytes(&bytes, &mut sink, &mut ImpLists::new(0)),
        bytes.len()
    );
    let frames = frames(conn.output());
    let ids: Vec<(u64, MessageType)> = frames
        .iter()
        .map(|f| (f.request_id, f.message_type))
        .collect();
    assert_eq!(
        ids,
        vec![
            (1, MessageType::Error),
            (2, MessageType::Error),
            (3, MessageType::Error),
            (4, MessageType::Pong),
        ]
    );
    for f in &frames[..3] {
        assert_eq!(f.error().0, ErrorCode::Overloaded);
    }
    assert_eq!((sink.shed, sink.submitted), (3, 0));
    assert_eq!(conn.in_flight(), 0);
}

/// The OpenRTB rules (currency, `test`, `badv`) are one function that both
/// `cx score` (`Engine::decide_openrtb`) and the server's connection go
/// through, so the two answer a bid request with the same decisions: here
/// the decision frame the connection writes is byte for byte the frame of
/// `decide_openrtb`'s outcome, for a request whose `badv` blocks the
/// advertiser that would otherwise win, with a second impression in
/// another currency.
#[test]
fn the_server_and_cx_score_answer_a_bid_request_with_the_same_bytes() {
    let engine = || Engine::builder().seed(7).build().expect("default engine");
    let base = serde_json::json!({
        "id": "same-answer",
        "imp": [
            {"id": "1", "banner": {"w": 300, "h": 250}, "bidfloor": 0.5},
            {"id": "2", "banner": {"w": 300, "h": 250}, "bidfloorcur": "EUR"}
        ],
        "site": {"id": "s1", "domain": "news.example", "cat": ["IAB19"]},
        "device": {"devicetype": 2, "geo": {"country": "USA"}, "os": "Windows"},
        "user": {"id": "user-9"}
    });
    let parse = |v: &serde_json::Value| {
        cx_wire::openrtb::parse_request(v.to_string().as_bytes()).expect("a valid request")
    };
    let unblocked = engine()
        .decide_openrtb(&parse(&base), NOW_NS)
        .expect("decides");
    let winner = unblocked.impressions[0].decision.expect("decided").offers()[0];
    let mut blocking = base.clone();
    let winner_domains = engine()
        .catalog()
        .adomain(winner.catalog_index as usize)
        .to_vec();
    assert!(
        !winner_domains.is_empty(),
        "the winner names its advertiser"
    );
    blocking["badv"] = serde_json::json!(winner_domains);

    // `cx score`'s path, encoded as the server would send it.
    let outcome = engine()
        .decide_openrtb(&parse(&blocking), NOW_NS)
        .expect("decides");
    let mut want = Vec::new();
    let mut writer = protocol::DecisionWriter::new(&mut want, 21);
    for imp in &outcome.impressions {
        let imp_outcome = match (&imp.decision, imp.skipped) {
            (Some(d), _) => ImpOutcome::Decided(d),
            (None, Some(label)) => ImpOutcome::Skipped(SkipReason::from_label(label).unwrap()),
            (None, None) => ImpOutcome::Skipped(SkipReason::NotDecided),
        };
        writer.push(&imp.imp_id, imp_outcome).expect("encodes");
    }
    writer.finish().expect("encodes");

    // The server's path: the same JSON over `score_openrtb`.
    let mut h = Harness::with_engine(engine());
    let mut bytes = Vec::new();
    protocol::encode_score_openrtb(&mut bytes, 21, blocking.to_string().as_bytes(), false)
        .expect("encodes");
    h.feed(&bytes);
    h.pump();
    let got = h.conn.output().to_vec();
    assert_eq!(got, want, "the same decision frame, byte for byte");

    // And `badv` did act: the blocked advertiser's offer is gone.
    let decided = outcome.impressions[0].decision.expect("decided");
    assert!(decided
        .offers()
        .iter()
        .all(|o| o.offer_id != winner.offer_id));
    assert!(decided.excluded[cx_domain::pipeline::NoBidCause::BlockedAdvertiser.index()] >= 1);
    assert_eq!(outcome.impressions[1].skipped, Some("currency"));
}

/// A sink over an engine whose clock and deadlines the test sets: every
/// request must be answered by `deadline_ns`, and it is `now_ns` now.
struct ClockedSink<'a> {
    engine: &'a mut Engine,
    owners: &'a mut HashMap<Ticket, Owner>,
    now_ns: u64,
    deadline_ns: u64,
    /// When the sink says a request submitted now would be decided.
    decided_by_ns: u64,
}

impl Respond for ClockedSink<'_> {
    fn now_ns(&self) -> u64 {
        self.now_ns
    }

    fn catalog(&self) -> &cx_domain::catalog::Catalog {
        self.engine.catalog()
    }

    fn bid_response(&mut self, request: &BidRequest, imps: &[EngineImpOutcome]) -> BidResponse {
        EngineResponder(self.engine).bid_response(request, imps)
    }
}

impl Submit for ClockedSink<'_> {
    fn submit(&mut self, request: Request, owner: Owner) -> Result<Ticket, Overloaded> {
        let ticket = self
            .engine
            .submit_request(request)
            .map_err(|_| Overloaded)?;
        self.owners.insert(ticket, owner);
        Ok(ticket)
    }

    fn deadline_ns(&self, _tmax_ms: Option<u32>) -> Option<u64> {
        Some(self.deadline_ns)
    }

    fn decided_by_ns(&self, _imps: usize) -> u64 {
        self.decided_by_ns
    }
}

#[test]
fn requests_past_their_deadline_are_answered_timeout() {
    let mut engine = Engine::builder().seed(7).build().expect("default engine");
    let mut owners = HashMap::new();
    let mut lists = ImpLists::new(64);
    let mut conn = Connection::new();
    // Request 1 arrives in time (now 50, deadline 100) and is decided at
    // 150; request 2 arrives at 100, its deadline already reached.
    let mut bytes = Vec::new();
    score_context(&mut bytes, 1);
    let mut sink = ClockedSink {
        engine: &mut engine,
        owners: &mut owners,
        now_ns: 50,
        deadline_ns: 100,
        decided_by_ns: 0,
    };
    assert_eq!(conn.on_bytes(&bytes, &mut sink, &mut lists), bytes.len());
    assert!(conn.output().is_empty(), "in time: submitted, not answered");
    let mut late = Vec::new();
    score_context(&mut late, 2);
    sink.now_ns = 100;
    conn.on_bytes(&late, &mut sink, &mut lists);
    assert_eq!(
        sink.engine.in_flight(),
        1,
        "the late request was not submitted"
    );
    sink.engine.run_until_decided(NOW_NS);
    while let Some(d) = sink.engine.poll() {
        let owner = sink.owners.remove(&d.ticket).expect("routed");
        sink.now_ns = 150;
        conn.on_decision(owner, d, &mut lists, &mut sink);
    }
    let out = conn.output().to_vec();
    let answers: Vec<(u64, ErrorCode)> = frames(&out)
        .iter()
        .map(|f| (f.request_id, f.error().0))
        .collect();
    assert_eq!(
        answers,
        vec![(2, ErrorCode::Timeout), (1, ErrorCode::Timeout)]
    );
    assert_eq!(conn.in_flight(), 0);
    assert_eq!(
        conn.take_counts().deadline_expired,
        1,
        "one expired after submission"
    );

    // In time at both ends: a decision.
    let mut bytes = Vec::new();
    score_context(&mut bytes, 3);
    let mut conn = Connection::new();
    let mut sink = ClockedSink {
        engine: &mut engine,
        owners: &mut owners,
        now_ns: 50,
        deadline_ns: 100,
        decided_by_ns: 0,
    };
    conn.on_bytes(&bytes, &mut sink, &mut lists);
    sink.engine.run_until_decided(NOW_NS);
    while let Some(d) = sink.engine.poll() {
        let owner = sink.owners.remove(&d.ticket).expect("routed");
        sink.now_ns = 100;
        conn.on_decision(owner, d, &mut lists, &mut sink);
    }
    let out = conn.output().to_vec();
    assert_eq!(frames(&out)[0].message_type, MessageType::Decision);
}

#[test]
fn requests_the_backlog_would_decide_late_are_shed_at_admission() {
    let mut engine = Engine::builder().seed(7).build().expect("default engine");
    let mut owners = HashMap::new();
    let mut lists = ImpLists::new(64);
    let mut conn = Connection::new();
    let mut bytes = Vec::new();
    score_context(&mut bytes, 1);
    let mut sink = ClockedSink {
        engine: &mut engine,
        owners: &mut owners,
        now_ns: 50,
        deadline_ns: 100,
        decided_by_ns: 101,
    };
    conn.on_bytes(&bytes, &mut sink, &mut lists);
    assert_eq!(sink.engine.in_flight(), 0, "nothing submitted");
    let out = conn.output().to_vec();
    assert_eq!(frames(&out)[0].error().0, ErrorCode::Overloaded);
    assert_eq!(conn.take_counts().deadline_shed, 1);
    // Decided exactly at the deadline is in time.
    let mut bytes = Vec::new();
    score_context(&mut bytes, 2);
    sink.decided_by_ns = 100;
    let before = conn.output().len();
    conn.on_bytes(&bytes, &mut sink, &mut lists);
    assert_eq!(sink.engine.in_flight(), 1, "submitted");
    assert_eq!(conn.output().len(), before, "not answered yet");
}
