//! The connection state machine's feedback loop with a real engine:
//! decision ids in answers (only when asked), `feedback` messages applied,
//! held or refused per reason and answered with a `feedback_ack`, bad
//! messages refused whole with an error naming the field, and no
//! allocation per message once the connection has taken one.

use cx_domain::feedback::{Event, EventKind, EventRefusal};
use cx_domain::pipeline::{Request, Ticket};
use cx_engine::openrtb::ImpOutcome as EngineImpOutcome;
use cx_engine::Engine;
use cx_features::{DeviceType, RequestContext};
use cx_server::conn::{
    Connection, EngineResponder, FeedbackTally, ImpLists, Overloaded, Owner, Respond, Submit,
};
use cx_wire::openrtb::{BidRequest, BidResponse};
use cx_wire::protocol::{
    self, ContextFlags, Decoded, ErrorCode, FeedbackAck, FeedbackEvent, FeedbackKind, MessageType,
    OpenRtbFlags,
};
use std::collections::HashMap;

/// Host time of the decisions: 2026-01-01 00:00 UTC.
const NOW_NS: u64 = 1_767_225_600_000_000_000;

/// Host time of the events: one second later.
const EVENTS_NS: u64 = NOW_NS + 1_000_000_000;

struct Harness {
    engine: Engine,
    conn: Connection,
    owners: HashMap<Ticket, Owner>,
    lists: ImpLists,
    /// Whether the sink takes feedback (else the trait's default).
    takes_feedback: bool,
}

struct Sink<'a> {
    engine: &'a mut Engine,
    owners: &'a mut HashMap<Ticket, Owner>,
    takes_feedback: bool,
}

impl Respond for Sink<'_> {
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

impl Submit for Sink<'_> {
    fn submit(&mut self, request: Request, owner: Owner) -> Result<Ticket, Overloaded> {
        let ticket = self
            .engine
            .submit_request(request)
            .map_err(|_| Overloaded)?;
        self.owners.insert(ticket, owner);
        Ok(ticket)
    }

    fn feedback(&mut self, events: &[Event]) -> Result<FeedbackTally, EventRefusal> {
        if !self.takes_feedback {
            return Err(EventRefusal::NotApplicable);
        }
        FeedbackTally::of_engine(self.engine, events, EVENTS_NS)
    }
}

struct Frame {
    message_type: MessageType,
    request_id: u64,
    payload: Vec<u8>,
}

impl Harness {
    fn new() -> Self {
        Self {
            engine: Engine::builder().seed(7).build().expect("default engine"),
            conn: Connection::new(),
            owners: HashMap::new(),
            lists: ImpLists::new(1 << 10),
            takes_feedback: true,
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        let mut sink = Sink {
            engine: &mut self.engine,
            owners: &mut self.owners,
            takes_feedback: self.takes_feedback,
        };
        let taken = self.conn.on_bytes(bytes, &mut sink, &mut self.lists);
        assert_eq!(taken, bytes.len());
    }

    fn pump(&mut self) {
        self.engine.run_until_decided(NOW_NS);
        while let Some(d) = self.engine.poll() {
            let owner = self.owners.remove(&d.ticket).expect("an owner");
            let mut respond = EngineResponder(&mut self.engine);
            self.conn
                .on_decision(owner, d, &mut self.lists, &mut respond);
        }
    }

    fn take_frames(&mut self) -> Vec<Frame> {
        let out = self.conn.output().to_vec();
        self.conn.consume_output(out.len());
        let mut rest = out.as_slice();
        let mut frames = Vec::new();
        while !rest.is_empty() {
            let Decoded::Frame {
                header,
                payload,
                consumed,
            } = protocol::decode_frame(rest)
            else {
                panic!("the connection wrote an invalid frame");
            };
            frames.push(Frame {
                message_type: header.message_type,
                request_id: header.request_id,
                payload: payload.to_vec(),
            });
            rest = &rest[consumed..];
        }
        frames
    }

    /// Scores one context, asking for decision ids or not; returns the
    /// answer's impression.
    fn score(&mut self, id: u64, decision_ids: bool) -> protocol::ImpDecision {
        let mut out = Vec::new();
        let flags = ContextFlags {
            simulate: false,
            decision_ids,
        };
        protocol::encode_score_context_with(&mut out, id, &context(id), flags).expect("encodes");
        self.feed(&out);
        self.pump();
        let frames = self.take_frames();
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].message_type, MessageType::Decision);
        assert_eq!(frames[0].request_id, id);
        let mut decision = protocol::decode_decision(&frames[0].payload).expect("a decision");
        assert_eq!(decision.imps.len(), 1);
        decision.imps.remove(0)
    }

    /// Sends one feedback message; returns its answer frame.
    fn feedback(&mut self, id: u64, events: &[FeedbackEvent<'_>]) -> Frame {
        let mut out = Vec::new();
        protocol::encode_feedback(&mut out, id, events).expect("encodes");
        self.feed(&out);
        let mut frames = self.take_frames();
        assert_eq!(frames.len(), 1, "answered at once");
        assert_eq!(frames[0].request_id, id);
        frames.remove(0)
    }
}

fn ack_of(frame: &Frame) -> FeedbackAck {
    assert_eq!(frame.message_type, MessageType::FeedbackAck);
    protocol::decode_feedback_ack(&frame.payload).expect("an ack")
}

fn context(i: u64) -> RequestContext {
    RequestContext {
        device_type: DeviceType::from_openrtb(4),
        country: "USA".into(),
        user_id: format!("user-{i}"),
        placement_width: 300,
        placement_height: 250,
        ..RequestContext::default()
    }
}

fn click<'a>(decision_id: &'a str, event_id: &'a str) -> FeedbackEvent<'a> {
    FeedbackEvent {
        event_id,
        ..FeedbackEvent::new(FeedbackKind::Click, decision_id)
    }
}

#[test]
fn decision_ids_come_only_when_asked_and_are_the_engines() {
    let mut h = Harness::new();
    let plain = h.score(1, false);
    assert!(
        !plain.offers.is_empty(),
        "the default engine chooses offers"
    );
    assert_eq!(plain.decision_id, None, "old clients see no change");
    let asked = h.score(2, true);
    let id = asked.decision_id.expect("an id when asked");
    // Tickets count from the engine's first decision: request 2 has the
    // second one.
    let tickets: Vec<String> = (0..4).map(|t| h.engine.decision_id(Ticket(t))).collect();
    assert!(tickets.contains(&id), "{id} among {tickets:?}");
    assert!(id.len() <= protocol::limits::DECISION_ID_BYTES_MAX);
}

#[test]
fn a_click_is_applied_a_duplicate_refused_and_an_unknown_id_held() {
    let mut h = Harness::new();
    let id = h.score(1, true).decision_id.expect("an id");
    let before = h.engine.feedback_counts();
    let frame = h.feedback(
        2,
        &[
            click(&id, "e1"),
            click(&id, "e1"),
            click("0-0-zzzzzz-1", "e2"),
        ],
    );
    let ack = ack_of(&frame);
    assert_eq!((ack.applied, ack.held, ack.refused), (1, 1, 1));
    assert_eq!(ack.refused_for("duplicate"), 1);
    assert_eq!(ack.refused_by_reason().len(), EventRefusal::ALL.len());
    let after = h.engine.feedback_counts();
    assert_eq!(
        after.applied(EventKind::Click),
        before.applied(EventKind::Click) + 1
    );
    assert_eq!(after.clicks, before.clicks + 1);
    assert_eq!(after.refused(EventRefusal::Duplicate), 1);
    assert_eq!(after.held, before.held + 1);

    // A later message: the same click again is a duplicate; a win for a
    // score_context decision (not an auction bid) is not applicable; an
    // event without a decision id is refused as such.
    let win = FeedbackEvent {
        amount: 0.5,
        ..FeedbackEvent::new(FeedbackKind::Win, &id)
    };
    let frame = h.feedback(3, &[click(&id, "e1"), win, click("", "e3")]);
    let ack = ack_of(&frame);
    assert_eq!((ack.applied, ack.held, ack.refused), (0, 0, 3));
    assert_eq!(ack.refused_for("duplicate"), 1);
    assert_eq!(ack.refused_for("not_applicable"), 1);
    assert_eq!(ack.refused_for("no_decision_id"), 1);
    assert_eq!(h.engine.feedback_counts().clicks, after.clicks);
}

#[test]
fn a_bad_message_is_refused_whole_naming_the_field() {
    let mut h = Harness::new();
    let id = h.score(1, true).decision_id.expect("an id");
    let mut out = Vec::new();
    protocol::encode_feedback(&mut out, 2, &[click(&id, "e1"), click(&id, "e2")]).expect("encodes");
    // The second event's kind (24-byte header, 4-byte fixed part, first
    // event of 40 + 2 + id + 2 + 2 bytes).
    let second = 24 + 4 + 40 + 2 + id.len() + 2 + 2;
    out[second] = 9;
    let before = h.engine.feedback_counts();
    h.feed(&out);
    let frames = h.take_frames();
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].message_type, MessageType::Error);
    let error = protocol::decode_error(&frames[0].payload).expect("an error");
    assert_eq!(error.code, ErrorCode::InvalidPayload);
    assert!(error.message.contains("`kind`"), "{}", error.message);
    assert_eq!(frames[0].request_id, 2);
    assert_eq!(h.engine.feedback_counts(), before, "nothing of it applied");
    // The connection goes on: the same message, intact, is applied.
    let second = ack_of(&h.feedback(3, &[click(&id, "e1"), click(&id, "e2")]));
    // One click per decision is counted; the second is a duplicate.
    assert_eq!((second.applied, second.refused), (1, 1));
    assert_eq!(second.refused_for("duplicate"), 1);
}

#[test]
fn a_host_without_feedback_refuses_every_event_as_not_applicable() {
    let mut h = Harness::new();
    h.takes_feedback = false;
    let frame = h.feedback(1, &[click("a", ""), click("b", "")]);
    let ack = ack_of(&frame);
    assert_eq!((ack.applied, ack.held, ack.refused), (0, 0, 2));
    assert_eq!(ack.refused_for("not_applicable"), 2);
}

#[test]
fn openrtb_answers_carry_ids_in_decisions_and_bid_responses_when_asked() {
    let mut h = Harness::new();
    let json = br#"{"id":"r1","imp":[{"id":"1","banner":{"w":300,"h":250}},{"id":"2","banner":{"w":300,"h":250}}],"site":{"id":"s1","domain":"example.com"},"device":{"devicetype":4,"geo":{"country":"USA"}},"user":{"id":"u1"}}"#;
    let mut out = Vec::new();
    let flags = OpenRtbFlags {
        decision_ids: true,
        ..OpenRtbFlags::default()
    };
    protocol::encode_score_openrtb_with(&mut out, 1, json, flags).expect("encodes");
    let flags = OpenRtbFlags {
        decision_ids: true,
        bid_response: true,
        ..OpenRtbFlags::default()
    };
    protocol::encode_score_openrtb_with(&mut out, 2, json, flags).expect("encodes");
    h.feed(&out);
    h.pump();
    let frames = h.take_frames();
    assert_eq!(frames.len(), 2);
    let decision = frames
        .iter()
        .find(|f| f.request_id == 1)
        .map(|f| protocol::decode_decision(&f.payload).expect("a decision"))
        .expect("request 1 answered");
    for imp in &decision.imps {
        assert_eq!(imp.decision_id.is_some(), !imp.offers.is_empty(), "{imp:?}");
    }
    assert!(decision.imps.iter().any(|imp| imp.decision_id.is_some()));
    let answer = frames
        .iter()
        .find(|f| f.request_id == 2)
        .expect("request 2 answered");
    assert_eq!(answer.message_type, MessageType::BidResponse);
    let json: serde_json::Value =
        serde_json::from_slice(&answer.payload).expect("the bid_response is JSON");
    let bid_ids: Vec<&str> = json["response"]["seatbid"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["bid"].as_array().into_iter().flatten())
        .filter_map(|b| b["id"].as_str())
        .collect();
    let decision_ids: Vec<&str> = json["decisions"]
        .as_array()
        .expect("decisions")
        .iter()
        .filter_map(|d| d["decision_id"].as_str())
        .collect();
    assert!(!decision_ids.is_empty(), "{json}");
    for id in &bid_ids {
        assert!(
            decision_ids.contains(id),
            "bid {id} is one of {decision_ids:?}"
        );
    }
}

#[test]
fn feedback_messages_allocate_nothing_once_the_connection_took_one() {
    let mut h = Harness::new();
    let id = h.score(1, true).decision_id.expect("an id");
    let ids: Vec<String> = (0..64).map(|i| format!("e{i}")).collect();
    let events: Vec<FeedbackEvent<'_>> = ids.iter().map(|e| click(&id, e)).collect();
    let mut message = Vec::new();
    protocol::encode_feedback(&mut message, 2, &events).expect("encodes");
    // The first message sizes the connection's buffers.
    h.feed(&message);
    h.conn.consume_output(h.conn.output().len());
    let info = allocation_counter::measure(|| {
        for _ in 0..10 {
            h.feed(&message);
            let n = h.conn.output().len();
            h.conn.consume_output(n);
        }
    });
    assert_eq!(info.count_total, 0, "taking a feedback message allocated");
}
