//! The protocol client (`cx_wire::client`) and `cx client` against a
//! small blocking test server: `cx_server::conn::Connection` driven by a
//! real engine over a loopback socket, one thread per connection. Scripted
//! servers send broken bytes to check that the client fails with a typed
//! error, never a panic.

use cx_domain::pipeline::{Request, Ticket};
use cx_engine::openrtb::ImpOutcome as EngineImpOutcome;
use cx_engine::Engine;
use cx_features::{DeviceType, RequestContext};
use cx_server::cli::{execute, Cli, Streams};
use cx_server::conn::{Connection, EngineResponder, ImpLists, Overloaded, Owner, Respond, Submit};
use cx_wire::client::{Client, ClientError, Response, ResponseBody};
use cx_wire::openrtb::{BidRequest, BidResponse};
use cx_wire::protocol::{
    self, limits, DecisionResponse, ErrorCode, HelloAck, MessageType, ProtocolError,
};
use serde_json::Value;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Host time for every engine tick: 2026-01-01 00:00 UTC.
const NOW_NS: u64 = 1_767_225_600_000_000_000;

/// How far a decision's factors may be from its score.
const TOL: f32 = 1e-5;

/// Every wait in these tests is bounded by this.
const TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// Test servers
// ---------------------------------------------------------------------------

/// Starts a server backed by the engine on a loopback port; every
/// connection is served by its own thread and engine.
fn engine_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local addr");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            std::thread::spawn(move || serve(stream));
        }
    });
    addr
}

/// Drives one connection: socket bytes into the connection, engine
/// submissions and decisions, response bytes out. Ends when the peer
/// closes or the connection is done.
fn serve(mut stream: TcpStream) {
    let mut engine = Engine::builder().seed(7).build().expect("default engine");
    let mut conn = Connection::new();
    let mut owners: HashMap<Ticket, Owner> = HashMap::new();
    let mut lists = ImpLists::new(1 << 12);
    stream
        .set_read_timeout(Some(Duration::from_millis(2)))
        .expect("read timeout");
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if conn.wants_read() {
            let room = conn.read_capacity().min(buf.len());
            match stream.read(&mut buf[..room]) {
                Ok(0) => return,
                Ok(n) => feed(&mut conn, &mut engine, &mut owners, &mut lists, &buf[..n]),
                Err(e) if is_timeout(&e) => {}
                Err(_) => return,
            }
        } else {
            feed(&mut conn, &mut engine, &mut owners, &mut lists, &[]);
        }
        engine.run_until_decided(NOW_NS);
        while let Some(decision) = engine.poll() {
            let owner = owners
                .remove(&decision.ticket)
                .expect("routed when submitted");
            conn.on_decision(
                owner,
                decision,
                &mut lists,
                &mut EngineResponder(&mut engine),
            );
        }
        let out = conn.output();
        if !out.is_empty() {
            if stream.write_all(out).is_err() {
                return;
            }
            let sent = out.len();
            conn.consume_output(sent);
        }
        if conn.is_done() {
            // Half-close, then wait for the peer so that unread input does
            // not turn the close into a reset.
            let _ = stream.shutdown(Shutdown::Write);
            drain_until_closed(&mut stream);
            return;
        }
    }
}

/// The engine as a connection's submission sink, recording each ticket's
/// owner as the server's worker does.
struct EngineSink<'a> {
    engine: &'a mut Engine,
    owners: &'a mut HashMap<Ticket, Owner>,
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
        self.owners.insert(ticket, owner);
        Ok(ticket)
    }
}

/// Hands bytes to the connection with the engine as its submission sink,
/// recording each ticket's owner as the server's worker does.
fn feed(
    conn: &mut Connection,
    engine: &mut Engine,
    owners: &mut HashMap<Ticket, Owner>,
    lists: &mut ImpLists,
    bytes: &[u8],
) {
    let mut sink = EngineSink { engine, owners };
    let taken = conn.on_bytes(bytes, &mut sink, lists);
    assert_eq!(taken, bytes.len(), "reads are bounded by read_capacity");
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

fn drain_until_closed(stream: &mut TcpStream) {
    let _ = stream.set_read_timeout(Some(TIMEOUT));
    let mut sink = [0u8; 4096];
    while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
}

/// Starts a server for one connection that reads `expect_bytes` bytes of
/// requests, answers with `reply`, then closes its side (or, with
/// `hold_open`, keeps the connection open until the client closes it).
fn scripted_server(expect_bytes: usize, reply: Vec<u8>, hold_open: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local addr");
    std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else {
            return;
        };
        let _ = stream.set_read_timeout(Some(TIMEOUT));
        let mut request = vec![0u8; expect_bytes];
        if stream.read_exact(&mut request).is_err() {
            return;
        }
        if stream.write_all(&reply).is_err() {
            return;
        }
        if !hold_open {
            let _ = stream.shutdown(Shutdown::Write);
        }
        drain_until_closed(&mut stream);
    });
    addr
}

fn connect(addr: SocketAddr) -> Client {
    Client::connect_timeout(addr, TIMEOUT).expect("connect")
}

// ---------------------------------------------------------------------------
// Requests and checks
// ---------------------------------------------------------------------------

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../components/wire/tests/fixtures/openrtb")
}

fn read_json(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every committed fixture request, compact.
fn fixture_requests() -> Vec<Value> {
    let dir = fixtures();
    let mut requests: Vec<Value> = ["2.5_mobile.json", "2.6_video.json", "bsm_breq.video.json"]
        .iter()
        .map(|name| read_json(&dir.join(name)))
        .collect();
    let sample = std::fs::read_to_string(dir.join("prebid_sample.jsonl")).expect("prebid sample");
    for line in sample.lines() {
        let wrapper: Value = serde_json::from_str(line).expect("wrapper is JSON");
        requests.push(wrapper["request"].clone());
    }
    requests
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

fn decision(response: &Response) -> &DecisionResponse {
    match &response.body {
        ResponseBody::Decision(d) => d,
        other => panic!("request {} got {other:?}", response.request_id),
    }
}

fn error(response: &Response) -> (ErrorCode, &str) {
    match &response.body {
        ResponseBody::Error { code, message } => (*code, message.as_str()),
        other => panic!("request {} got {other:?}", response.request_id),
    }
}

/// One decided impression per `imp`, in order, and every offer's factors
/// summing to its score.
/// The pong answering request `request_id` with `nonce`.
fn pong(request_id: u64, nonce: u64) -> Response {
    Response {
        request_id,
        body: ResponseBody::Pong(nonce),
    }
}

fn check_decision(request: &Value, decision: &DecisionResponse) {
    let imp_ids: Vec<&str> = request["imp"]
        .as_array()
        .expect("imp list")
        .iter()
        .map(|imp| imp["id"].as_str().expect("imp id"))
        .collect();
    let decided: Vec<&str> = decision.imps.iter().map(|i| i.imp_id.as_str()).collect();
    assert_eq!(decided, imp_ids, "one decision per imp, in order");
    for imp in &decision.imps {
        for offer in &imp.offers {
            let explained: f32 = offer.factors.iter().sum();
            assert!(
                (explained - offer.score).abs() <= TOL,
                "factors sum to {explained}, score {}",
                offer.score
            );
        }
    }
}

// ---------------------------------------------------------------------------
// The library against the engine server
// ---------------------------------------------------------------------------

#[test]
fn hello_negotiates_version_1_and_reports_the_servers_limits() {
    let mut client = connect(engine_server());
    assert_eq!(client.hello_ack(), None);
    let ack = client.hello().expect("hello");
    assert_eq!(ack, HelloAck::ours(1));
    assert_eq!(client.hello_ack(), Some(ack));
    assert_eq!(client.next_request_id(), 2, "the hello used id 1");
    // A second hello is refused by the client itself.
    let err = client.hello().unwrap_err();
    assert!(matches!(err, ClientError::Unexpected { .. }), "{err}");
    assert!(!err.is_fatal());
    client.ping(1).expect("the connection is intact");
}

#[test]
fn pings_are_answered_with_their_nonce_and_request_id() {
    let mut client = connect(engine_server());
    client.ping(0xfeed).expect("round trip");
    let ids: Vec<u64> = (0..5u64)
        .map(|n| client.send_ping(1000 + n).expect("queue ping"))
        .collect();
    client.flush().expect("flush");
    let mut nonces = HashMap::new();
    for _ in &ids {
        let response = client.recv().expect("pong");
        let ResponseBody::Pong(nonce) = response.body else {
            panic!("{response:?}");
        };
        nonces.insert(response.request_id, nonce);
    }
    for (n, id) in ids.iter().enumerate() {
        assert_eq!(nonces[id], 1000 + n as u64);
    }
}

#[test]
fn pipelined_openrtb_requests_are_answered_by_request_id() {
    let mut client = connect(engine_server());
    client.hello().expect("hello");
    let requests = fixture_requests();
    let mut by_id = HashMap::new();
    for (i, request) in requests.iter().enumerate() {
        let json = serde_json::to_vec(request).expect("json");
        let id = client.send_openrtb(&json, i % 2 == 1).expect("queue");
        by_id.insert(id, i);
    }
    client.flush().expect("one write for the batch");
    let mut answered = 0;
    while answered < requests.len() {
        let response = client.recv().expect("response");
        let i = by_id
            .remove(&response.request_id)
            .unwrap_or_else(|| panic!("unknown or repeated id {}", response.request_id));
        let decision = decision(&response);
        check_decision(&requests[i], decision);
        if i % 2 == 1 {
            assert!(
                decision
                    .imps
                    .iter()
                    .all(|imp| imp.skipped.is_some() || imp.simulated),
                "simulate was asked for: {decision:?}"
            );
        }
        answered += 1;
    }
    assert!(by_id.is_empty());
}

#[test]
fn round_trips_keep_other_responses_for_recv() {
    let mut client = connect(engine_server());
    let json = serde_json::to_vec(&fixture_requests()[0]).expect("json");
    let pipelined = client.send_openrtb(&json, true).expect("queue");
    let answer = client.score_openrtb(&json, true).expect("round trip");
    assert_eq!(answer.request_id, pipelined + 1);
    decision(&answer);
    let kept = client.recv().expect("the kept response");
    assert_eq!(kept.request_id, pipelined);
    decision(&kept);
}

#[test]
fn a_score_context_round_trip_decides_one_impression() {
    let mut client = connect(engine_server());
    client.hello().expect("hello");
    let response = client
        .score_context(&context(1), false)
        .expect("round trip");
    let decided = decision(&response);
    assert_eq!(decided.imps.len(), 1);
    let imp = &decided.imps[0];
    assert_eq!(imp.imp_id, "");
    assert_eq!(imp.skipped, None);
    assert!(!imp.simulated);
    assert!(imp.offers.is_empty() != imp.no_offer.is_none(), "{imp:?}");
    let simulated = client.score_context(&context(2), true).expect("round trip");
    assert!(decision(&simulated).imps[0].simulated);
}

#[test]
fn invalid_json_gets_invalid_payload_with_its_request_id() {
    let mut client = connect(engine_server());
    let response = client.score_openrtb(b"{not json", false).expect("answered");
    let (code, message) = error(&response);
    assert_eq!(code, ErrorCode::InvalidPayload);
    assert!(!message.is_empty());
    assert_eq!(response.request_id, client.next_request_id() - 1);
    // The connection goes on.
    client.ping(7).expect("ping after an error");
}

#[test]
fn malformed_frames_sent_raw_get_recoverable_errors() {
    let mut client = connect(engine_server());
    let mut frame = Vec::new();
    protocol::encode_ping(&mut frame, 41, 1);
    frame[6] = 1; // flags must be 0
    client.send_raw(&frame).expect("queue raw");
    let mut pong_type = Vec::new();
    protocol::encode_pong(&mut pong_type, 42, 1); // a server-only type
    client.send_raw(&pong_type).expect("queue raw");
    client.flush().expect("flush");
    let first = client.recv().expect("answer");
    assert_eq!(first.request_id, 41);
    assert_eq!(error(&first).0, ErrorCode::MalformedFrame);
    let second = client.recv().expect("answer");
    assert_eq!(second.request_id, 42);
    assert_eq!(error(&second).0, ErrorCode::UnknownMessageType);
    client.ping(3).expect("the connection is kept");
}

#[test]
fn requests_over_a_limit_are_refused_before_sending() {
    let mut client = connect(engine_server());
    let next = client.next_request_id();
    let big = vec![b' '; limits::OPENRTB_JSON_BYTES_MAX + 1];
    let err = client.send_openrtb(&big, false).unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Encode {
                message: "score_openrtb",
                ..
            }
        ),
        "{err}"
    );
    let bad = RequestContext {
        bid_floor: f64::NAN,
        ..context(1)
    };
    let err = client.send_context(&bad, false).unwrap_err();
    assert!(matches!(err, ClientError::Encode { .. }), "{err}");
    assert_eq!(client.next_request_id(), next, "no id was used");
    client.ping(9).expect("nothing broken was queued");
}

// ---------------------------------------------------------------------------
// The library against broken servers
// ---------------------------------------------------------------------------

/// Bytes of one encoded ping, which scripted servers wait for.
const PING_BYTES: usize = limits::HEADER_BYTES + 8;

#[test]
fn garbage_from_the_server_is_a_fatal_typed_error() {
    let addr = scripted_server(
        PING_BYTES,
        b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec(),
        true,
    );
    let mut client = connect(addr);
    let err = client.ping(1).unwrap_err();
    match &err {
        ClientError::Protocol {
            request_id: None,
            source: ProtocolError::BadMagic { offset: 0, .. },
        } => {}
        other => panic!("{other:?}"),
    }
    assert!(err.is_fatal());
    assert!(err.to_string().contains("invalid frame"), "{err}");
    assert!(matches!(client.recv(), Err(ClientError::Broken)));
    assert!(matches!(client.send_ping(2), Err(ClientError::Broken)));
}

#[test]
fn a_frame_over_the_limit_is_fatal() {
    let mut reply = Vec::new();
    protocol::encode_pong(&mut reply, 1, 1);
    let len = (limits::PAYLOAD_BYTES_MAX as u32 + 1).to_le_bytes();
    reply[8..12].copy_from_slice(&len);
    let mut client = connect(scripted_server(PING_BYTES, reply, true));
    let err = client.ping(1).unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Protocol {
                request_id: Some(1),
                source: ProtocolError::FrameTooLarge { .. }
            }
        ),
        "{err:?}"
    );
    assert!(err.is_fatal());
}

#[test]
fn a_close_in_the_middle_of_a_frame_is_reported() {
    let mut reply = Vec::new();
    protocol::encode_pong(&mut reply, 1, 1);
    reply.truncate(reply.len() - 3);
    let partial = reply.len();
    let mut client = connect(scripted_server(PING_BYTES, reply, false));
    let err = client.ping(1).unwrap_err();
    assert!(
        matches!(err, ClientError::Closed { buffered } if buffered == partial),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("in the middle of a frame"),
        "{err}"
    );
    assert!(matches!(client.recv(), Err(ClientError::Broken)));
}

#[test]
fn a_close_between_frames_is_reported() {
    let mut client = connect(scripted_server(PING_BYTES, Vec::new(), false));
    let err = client.ping(1).unwrap_err();
    assert!(
        matches!(err, ClientError::Closed { buffered: 0 }),
        "{err:?}"
    );
}

#[test]
fn recoverable_bad_frames_are_skipped() {
    let mut reply = Vec::new();
    // An unknown message type: the header is fine, the frame is dropped.
    protocol::encode_pong(&mut reply, 5, 1);
    let unknown_at = 5;
    reply[unknown_at] = 0x7f;
    // A pong with a 9-byte payload.
    let start = reply.len();
    protocol::encode_pong(&mut reply, 6, 1);
    reply.push(0);
    reply[start + 8] = 9;
    // A frame only clients send.
    protocol::encode_ping(&mut reply, 7, 1);
    // An error frame with an unknown code.
    protocol::encode_error(&mut reply, 8, ErrorCode::Internal, "x");
    let code_at = reply.len() - 5;
    reply[code_at] = 99;
    // Finally the real answer.
    protocol::encode_pong(&mut reply, 1, 0xabc);
    let mut client = connect(scripted_server(PING_BYTES, reply, true));
    client.send_ping(0xabc).expect("queue");
    client.flush().expect("flush");
    let expect_protocol = |r: Result<Response, ClientError>, id: u64| match r {
        Err(e @ ClientError::Protocol { request_id, .. }) if request_id == Some(id) => {
            assert!(!e.is_fatal(), "{e}");
        }
        other => panic!("request {id}: {other:?}"),
    };
    expect_protocol(client.recv(), 5);
    expect_protocol(client.recv(), 6);
    match client.recv() {
        Err(e @ ClientError::Unexpected { .. }) => {
            assert!(e.to_string().contains("ping"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    expect_protocol(client.recv(), 8);
    let answer = client.recv().expect("the pong after the bad frames");
    assert_eq!(answer, pong(1, 0xabc));
}

#[test]
fn a_refused_hello_is_a_typed_error() {
    let mut reply = Vec::new();
    protocol::encode_error(&mut reply, 1, ErrorCode::UnsupportedVersion, "speaks 2..=3");
    let hello_bytes = limits::HEADER_BYTES + 8;
    let mut client = connect(scripted_server(hello_bytes, reply, false));
    let err = client.hello().unwrap_err();
    match &err {
        ClientError::Refused {
            request_id: 1,
            code: ErrorCode::UnsupportedVersion,
            message,
        } => assert_eq!(message, "speaks 2..=3"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_silent_server_times_out_without_breaking_the_connection() {
    let mut client = connect(scripted_server(PING_BYTES, Vec::new(), true));
    client
        .set_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let err = client.ping(1).unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(!err.is_fatal());
    assert!(client.send_ping(2).is_ok(), "still usable after a timeout");
}

#[test]
fn a_timeout_says_how_long_it_waited() {
    let mut client = connect(scripted_server(PING_BYTES, Vec::new(), true));
    client
        .set_timeout(Some(Duration::from_millis(40)))
        .expect("timeout");
    let err = client.ping(1).unwrap_err();
    assert!(
        matches!(err, ClientError::TimedOut { after_ms: 40, .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "timed out after 40 ms waiting to read from the server"
    );
}

#[test]
fn a_hello_ack_outside_the_offered_versions_is_fatal() {
    for version in [2, 9] {
        let mut reply = Vec::new();
        let ack = HelloAck {
            version,
            ..HelloAck::ours(1)
        };
        protocol::encode_hello_ack(&mut reply, 1, ack);
        let mut client = connect(scripted_server(PING_BYTES, reply, true));
        let err = client.hello().unwrap_err();
        assert!(
            matches!(err, ClientError::VersionOutOfRange { chosen, min: 1, max: 1 } if chosen == version),
            "{err:?}"
        );
        assert!(err.is_fatal());
        assert!(matches!(client.send_ping(2), Err(ClientError::Broken)));
    }
}

/// A server that acknowledges the hello and answers request 2 (the first
/// after it) with a `bid_response` of `response` and one skipped decision
/// per id of `imp_ids`.
fn answering_server(imp_ids: &[&str], response: Value) -> SocketAddr {
    let mut reply = Vec::new();
    protocol::encode_hello_ack(&mut reply, 1, HelloAck::ours(1));
    let decisions: Vec<Value> = imp_ids
        .iter()
        .map(|id| serde_json::json!({"imp_id": id, "decision": null, "skipped": "not_decided"}))
        .collect();
    let json = serde_json::json!({"response": response, "decisions": decisions}).to_string();
    protocol::encode_bid_response(&mut reply, 2, &json).expect("encodes");
    scripted_server(PING_BYTES, reply, true)
}

#[test]
fn cx_client_refuses_answers_that_do_not_answer_the_impressions_asked() {
    let request = r#"{"id":"r","site":{"id":"s"},"imp":[{"id":"a","banner":{"w":300,"h":250}},{"id":"b","banner":{"w":300,"h":250}}]}"#;
    let no_bid = serde_json::json!({"id": "r", "nbr": 1});
    let answers: [&[&str]; 3] = [&["x", "y", "z", "a", "b"], &["a"], &["b", "a"]];
    for answered in answers {
        let addr = answering_server(answered, no_bid.clone()).to_string();
        let (result, _) = cx(&["client", "--addr", &addr, "-"], request.as_bytes());
        let err = result.expect_err("decisions for other impressions are an error");
        assert!(
            err.contains(r#"the request on line 1 has impressions ["a", "b"]"#),
            "{answered:?}: {err}"
        );
    }
    // A BidResponse that does not answer the request: another id, a bid on
    // an impression the request does not have.
    let stray_bid = serde_json::json!({"id": "r", "seatbid": [{"bid": [
        {"id": "b1", "impid": "zz", "price": 1.0}]}]});
    for response in [serde_json::json!({"id": "other"}), stray_bid] {
        let addr = answering_server(&["a", "b"], response.clone()).to_string();
        let (result, _) = cx(&["client", "--addr", &addr, "-"], request.as_bytes());
        let err = result.expect_err("a BidResponse for something else is an error");
        assert!(
            err.contains("does not answer its request"),
            "{response}: {err}"
        );
    }
    let addr = answering_server(&["a", "b"], no_bid).to_string();
    let (result, stdout) = cx(&["client", "--addr", &addr, "-"], request.as_bytes());
    result.expect("the impressions asked for, in order, are accepted");
    let answer = &json_lines(&stdout)[0];
    assert_eq!(answer["decisions"][1]["imp_id"], "b");
    assert_eq!(answer["response"]["nbr"], 1);
}

#[test]
fn cx_client_names_its_timeout() {
    let mut reply = Vec::new();
    protocol::encode_hello_ack(&mut reply, 1, HelloAck::ours(1));
    let addr = scripted_server(PING_BYTES, reply, true).to_string();
    let request = r#"{"id":"r","imp":[{"id":"a","banner":{"w":300,"h":250}}]}"#;
    let args = ["client", "--addr", &addr, "--timeout-ms", "100", "-"];
    let (result, _) = cx(&args, request.as_bytes());
    let err = result.expect_err("a silent server times out");
    assert!(err.contains("timed out after 100 ms"), "{err}");
}

#[test]
fn connecting_to_a_closed_port_names_the_address() {
    let addr = closed_port();
    let err = Client::connect(addr).unwrap_err();
    assert!(matches!(err, ClientError::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
    let err = Client::connect_timeout(addr, TIMEOUT).unwrap_err();
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}

/// A loopback address nothing listens on (a port just released).
fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("local addr")
}

// ---------------------------------------------------------------------------
// The split client: a writer and a reader on two threads
// ---------------------------------------------------------------------------

#[test]
fn split_halves_send_and_receive_on_two_threads() {
    let mut client = connect(engine_server());
    client.hello().expect("hello");
    let (mut writer, mut reader) = client.split();
    assert_eq!(writer.hello_ack(), Some(HelloAck::ours(1)));
    assert_eq!(writer.next_request_id(), 2, "ids go on after the hello");
    const N: u32 = 200;
    let sender = std::thread::spawn(move || {
        let mut ids = Vec::new();
        for i in 0..N {
            let id = if i % 10 == 0 {
                writer.send_ping(u64::from(i))
            } else {
                writer.send_context(&context(i), true)
            };
            ids.push(id.expect("queue"));
            if i % 16 == 15 {
                writer.flush().expect("flush");
            }
        }
        writer.flush().expect("flush the rest");
        (writer, ids)
    });
    let mut answered = HashMap::new();
    for _ in 0..N {
        let response = reader.recv().expect("response");
        let pong = matches!(response.body, ResponseBody::Pong(_));
        if !pong {
            assert_eq!(decision(&response).imps.len(), 1);
        }
        assert!(
            answered.insert(response.request_id, pong).is_none(),
            "one answer per request"
        );
    }
    let (writer, ids) = sender.join().expect("the sender does not panic");
    let expected: Vec<u64> = (2..2 + u64::from(N)).collect();
    assert_eq!(ids, expected, "ids are consecutive");
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(answered[id], i % 10 == 0, "request {id} got its own kind");
    }
    assert!(!writer.is_broken() && !reader.is_broken());
}

#[test]
fn split_hands_queued_requests_and_kept_responses_to_each_half() {
    let mut client = connect(engine_server());
    let json = serde_json::to_vec(&fixture_requests()[0]).expect("json");
    let kept = client.send_openrtb(&json, true).expect("queue");
    client.score_openrtb(&json, true).expect("round trip");
    let queued = client.send_ping(77).expect("queued, not flushed");
    let (mut writer, mut reader) = client.split();
    writer.flush().expect("the writer has the queued ping");
    let first = reader.recv().expect("the kept response");
    assert_eq!(first.request_id, kept);
    decision(&first);
    let pong = reader.recv().expect("pong");
    assert_eq!(pong.request_id, queued);
    assert_eq!(pong.body, ResponseBody::Pong(77));
    assert_eq!(writer.next_request_id(), queued + 1);
}

#[test]
fn a_fatal_error_on_the_reader_breaks_the_writer_too() {
    let addr = scripted_server(PING_BYTES, b"garbage!".to_vec(), true);
    let (mut writer, mut reader) = connect(addr).split();
    writer.send_ping(1).expect("queue");
    writer.flush().expect("flush");
    let err = reader.recv().unwrap_err();
    assert!(err.is_fatal(), "{err:?}");
    assert!(reader.is_broken() && writer.is_broken());
    assert!(matches!(writer.send_ping(2), Err(ClientError::Broken)));
    assert!(matches!(writer.flush(), Err(ClientError::Broken)));
    assert!(matches!(reader.recv(), Err(ClientError::Broken)));
}

#[test]
fn a_read_timeout_on_the_reader_loses_nothing() {
    let mut reply = Vec::new();
    protocol::encode_pong(&mut reply, 1, 5);
    let addr = scripted_server(2 * PING_BYTES, reply, true);
    let (mut writer, mut reader) = connect(addr).split();
    reader
        .set_read_timeout(Some(Duration::from_millis(50)))
        .expect("read timeout");
    writer
        .set_write_timeout(Some(TIMEOUT))
        .expect("write timeout");
    writer.send_ping(5).expect("queue");
    writer.flush().expect("flush");
    // The scripted server answers only once it has read two pings.
    let err = reader.recv().unwrap_err();
    assert!(err.is_timeout() && !err.is_fatal(), "{err:?}");
    writer.send_ping(6).expect("still usable");
    writer.flush().expect("flush");
    reader
        .set_read_timeout(Some(TIMEOUT))
        .expect("read timeout");
    let answer = reader.recv().expect("the answer after the timeout");
    assert_eq!(answer, pong(1, 5));
}

// ---------------------------------------------------------------------------
// `cx client`
// ---------------------------------------------------------------------------

/// Runs `cx` in-process with `stdin`; returns the result and stdout.
fn cx(args: &[&str], stdin: &[u8]) -> (Result<(), String>, String) {
    let mut argv = vec!["cx"];
    argv.extend_from_slice(args);
    let cli = <Cli as clap::Parser>::try_parse_from(argv).map_err(|e| e.to_string());
    let cli = match cli {
        Ok(cli) => cli,
        Err(e) => return (Err(e), String::new()),
    };
    let mut input = stdin;
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let mut streams = Streams {
        stdin: &mut input,
        stdout: &mut stdout,
        stderr: &mut stderr,
    };
    let result = execute(&cli, &mut streams).map_err(|e| cx_server::error::render_chain(&e));
    (result, String::from_utf8(stdout).expect("utf-8 output"))
}

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// A file in the temp directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &[u8]) -> Self {
        let path =
            std::env::temp_dir().join(format!("cx-client-test-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).expect("write temp file");
        Self(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn cx_client_prints_answers_in_input_order() {
    let addr = engine_server().to_string();
    let requests = fixture_requests();
    // Line by line: what each line holds (None: an error is expected).
    let mut input = String::new();
    let mut expected: Vec<(u64, Option<&Value>)> = Vec::new();
    let mut line = 0u64;
    let mut push = |input: &mut String, text: &str| {
        input.push_str(text);
        input.push('\n');
        line += 1;
        line
    };
    for (i, request) in requests.iter().enumerate() {
        let text = if i % 2 == 0 {
            serde_json::to_string(request).expect("json")
        } else {
            serde_json::json!({"source": "test", "request": request}).to_string()
        };
        let n = push(&mut input, &text);
        expected.push((n, Some(request)));
        if i == 2 {
            push(&mut input, "   ");
            let n = push(&mut input, "{not json");
            expected.push((n, None));
            let n = push(&mut input, r#"{"id": "r", "imp": "x"}"#);
            expected.push((n, None));
        }
    }
    let file = TempFile::new("order.jsonl", input.as_bytes());
    let (result, stdout) = cx(
        &["client", "--addr", &addr, "--depth", "3", file.path()],
        b"",
    );
    result.expect("cx client succeeds");
    let answers = json_lines(&stdout);
    assert_eq!(answers.len(), expected.len(), "{stdout}");
    for (answer, (line, request)) in answers.iter().zip(&expected) {
        assert_eq!(answer["line"], *line, "{answer}");
        match request {
            Some(request) => check_answer_json(request, answer),
            None => {
                let error = &answer["error"];
                assert_eq!(error["code"], "invalid_payload", "{answer}");
                assert_eq!(error["code_num"], 5, "{answer}");
                assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
            }
        }
    }
}

/// Checks a printed answer against its request: `cx score`'s shape, a
/// BidResponse to this request, one decision per impression in order,
/// each offer explained by six factors that sum to its score.
fn check_answer_json(request: &Value, answer: &Value) {
    assert!(answer.get("error").is_none(), "{answer}");
    assert_eq!(answer["response"]["id"], request["id"], "{answer}");
    let imp_ids: Vec<&Value> = request["imp"]
        .as_array()
        .expect("imp list")
        .iter()
        .map(|imp| &imp["id"])
        .collect();
    let decisions = answer["decisions"].as_array().expect("decisions");
    let decided: Vec<&Value> = decisions.iter().map(|d| &d["imp_id"]).collect();
    assert_eq!(decided, imp_ids, "{answer}");
    for d in decisions {
        if !d["skipped"].is_null() {
            assert!(d["decision"].is_null(), "{d}");
            continue;
        }
        let decision = &d["decision"];
        assert!(decision["source"].is_string(), "{d}");
        assert!(decision["simulated"].is_boolean(), "{d}");
        let offers = decision["offers"].as_array().expect("offers");
        assert_eq!(offers.is_empty(), decision["no_offer"].is_string(), "{d}");
        for offer in offers {
            let factors = offer["factors"].as_array().expect("factors");
            assert_eq!(factors.len(), 6, "{offer}");
            let explained: f64 = factors
                .iter()
                .map(|f| f["contribution"].as_f64().expect("contribution"))
                .sum();
            let score = offer["score"].as_f64().expect("score");
            assert!((explained - score).abs() <= 1e-5, "{offer}");
            assert!(offer["offer_id"].is_u64() && offer["bid_cpm"].is_f64());
            assert!(offer["p_click"].is_f64());
        }
    }
}

#[test]
fn cx_client_reads_a_pretty_printed_document_from_stdin() {
    let addr = engine_server().to_string();
    let path = fixtures().join("2.5_mobile.json");
    let document = std::fs::read(&path).expect("fixture");
    let (result, stdout) = cx(&["client", "--addr", &addr, "--simulate", "-"], &document);
    result.expect("cx client succeeds");
    let answers = json_lines(&stdout);
    assert_eq!(answers.len(), 1, "{stdout}");
    assert_eq!(answers[0]["line"], 1);
    check_answer_json(&read_json(&path), &answers[0]);
    for d in answers[0]["decisions"].as_array().expect("decisions") {
        assert!(
            d["skipped"].is_string() || d["decision"]["simulated"] == true,
            "{d}"
        );
    }
}

#[test]
fn cx_client_fails_only_for_connection_and_option_errors() {
    let closed = closed_port().to_string();
    let (result, stdout) = cx(&["client", "--addr", &closed, "-"], b"{}\n");
    let message = result.unwrap_err();
    assert!(message.contains(&closed), "{message}");
    assert!(stdout.is_empty());

    let (result, _) = cx(&["client", "--addr", &closed, "--depth", "0"], b"");
    assert!(result.unwrap_err().contains("depth"));
    let (result, _) = cx(&["client", "--addr", &closed, "--depth", "1025"], b"");
    assert!(result.is_err());

    let addr = engine_server().to_string();
    let (result, _) = cx(&["client", "--addr", &addr, "/no/such/file.jsonl"], b"");
    assert!(result.unwrap_err().contains("/no/such/file.jsonl"));

    // An empty input is a successful run with no output.
    let (result, stdout) = cx(&["client", "--addr", &addr], b"\n\n");
    result.expect("empty input");
    assert!(stdout.is_empty());
}

#[test]
fn cx_client_refuses_an_oversized_line_without_sending_it() {
    let addr = engine_server().to_string();
    let request = serde_json::to_string(&fixture_requests()[1]).expect("json");
    let mut input = format!("{request}\n");
    // Over the protocol's document limit, within the line limit.
    input.push_str(&"x".repeat(limits::OPENRTB_JSON_BYTES_MAX + 1));
    input.push('\n');
    // Over the line limit: skipped without being held.
    input.push_str(&"y".repeat(cx_server::cli::score::LINE_BYTES_MAX + 1));
    input.push_str(&format!("\n{request}\n"));
    let (result, stdout) = cx(
        &["client", "--addr", &addr, "--depth", "1"],
        input.as_bytes(),
    );
    result.expect("cx client succeeds");
    let answers = json_lines(&stdout);
    assert_eq!(answers.len(), 4, "{stdout}");
    assert!(answers[0]["decisions"].is_array());
    for (answer, line) in answers[1..3].iter().zip([2, 3]) {
        assert_eq!(answer["line"], line);
        assert_eq!(answer["error"]["code"], "frame_too_large", "{answer}");
        assert_eq!(answer["error"]["code_num"], 4, "{answer}");
        let message = answer["error"]["message"].as_str().expect("message");
        assert!(message.contains("not sent"), "{message}");
    }
    assert_eq!(answers[3]["line"], 4);
    assert!(answers[3]["decisions"].is_array());
}

#[test]
fn the_test_server_answers_what_the_codec_expects() {
    // A sanity check of the harness itself: a hello frame written by hand
    // gets the hello_ack frame the codec writes.
    let addr = engine_server();
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let mut hello = Vec::new();
    protocol::encode_hello(&mut hello, 1, protocol::Hello::ours());
    stream.write_all(&hello).expect("write");
    let mut expected = Vec::new();
    protocol::encode_hello_ack(&mut expected, 1, HelloAck::ours(1));
    let mut got = vec![0u8; expected.len()];
    stream.read_exact(&mut got).expect("read");
    assert_eq!(got, expected);
    assert_eq!(got[5], MessageType::HelloAck.code());
}
