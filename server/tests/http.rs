//! The OpenRTB HTTP bidder end to end, on every event loop this machine
//! runs: real HTTP from a real client library (`ureq`), and raw bytes for
//! what a client library would never send (pipelining, lying lengths,
//! slowloris heads, HTTP/2 prefaces, gzip bombs).

mod common;

use common::*;
use cx_server::config::{IoMode, ServerConfig};
use cx_server::serve::Server;
use cx_wire::openrtb::{parse_request, BidResponse};
use flate2::write::GzEncoder;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

fn http_addr(server: &Server) -> SocketAddr {
    server.http_addr().expect("the HTTP bidder runs")
}

/// POSTs `body` to the bid path; returns status, headers we check, body.
fn post(server: &Server, body: &[u8], headers: &[(&str, &str)]) -> (u16, Option<String>, Vec<u8>) {
    let url = format!("http://{}/openrtb2/bid", http_addr(server));
    let mut request = agent()
        .post(&url)
        .header("Content-Type", "application/json")
        .header("x-openrtb-version", "2.6");
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let mut response = request.send(body).expect("the bidder answers");
    let status = response.status().as_u16();
    let nbr = response
        .headers()
        .get("x-cx-nbr")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut bytes = Vec::new();
    response
        .body_mut()
        .as_reader()
        .read_to_end(&mut bytes)
        .expect("reads the body");
    (status, nbr, bytes)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).expect("compresses");
    e.finish().expect("compresses")
}

/// The bid requests of the project's fixtures: the spec examples and the
/// prebid sample.
fn corpus() -> Vec<Vec<u8>> {
    let out = corpus_in(std::path::Path::new(
        "../components/wire/tests/fixtures/openrtb",
    ));
    assert!(out.len() >= 5, "the fixtures are there");
    out
}

/// Every bid request of the `.json` files and `.jsonl` lines in `dir`.
fn corpus_in(dir: &std::path::Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("fixtures") {
        let path = entry.expect("an entry").path();
        match path.extension().and_then(|e| e.to_str()) {
            Some("json") => out.push(std::fs::read(&path).expect("reads")),
            Some("jsonl") => {
                let text = std::fs::read_to_string(&path).expect("reads");
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    let v: serde_json::Value = serde_json::from_str(line).expect("JSON");
                    let request = v.get("request").unwrap_or(&v);
                    out.push(serde_json::to_vec(request).expect("JSON"));
                }
            }
            _ => {}
        }
    }
    out
}

#[test]
fn every_fixture_gets_a_valid_bid_response_or_a_no_bid() {
    for io in io_modes() {
        let server = start(config(io));
        let mut bids = 0;
        for body in corpus() {
            let request = parse_request(&body).expect("fixtures are valid requests");
            let (status, nbr, answer) = post(&server, &body, &[]);
            match status {
                200 => {
                    let response: BidResponse =
                        serde_json::from_slice(&answer).expect("a BidResponse");
                    response
                        .check(&request)
                        .expect("a valid answer to its request");
                    assert!(!response.is_no_bid());
                    bids += 1;
                }
                204 => {
                    assert!(answer.is_empty());
                    let code: u32 = nbr.expect("x-cx-nbr").parse().expect("a code");
                    assert!(code <= 17, "{code}");
                }
                other => panic!(
                    "{io:?}: status {other} for {}: {}",
                    request.id,
                    String::from_utf8_lossy(&answer)
                ),
            }
        }
        assert!(bids > 0, "{io:?}: some fixture gets a bid");
        stop(server);
    }
}

/// The prebid-server requests of the shared sample that break OpenRTB 2.6
/// (docs/OPENRTB.md, "Real traffic"), by source suffix, with the field
/// the `400` names.
const REFUSED: &[(&str, &str)] = &[
    ("invalid-whole/banner-h-negative.json", "imp[0].banner.h"),
    ("invalid-whole/imp-empty-object.json", "imp[0].id"),
    (
        "invalid-whole/format-empty-object.json",
        "imp[0].banner.format[0]",
    ),
    ("invalid-whole/site-dooh-both.json", "dooh"),
    (
        "invalid-whole/user-geo-accuracy-negative.json",
        "user.geo.accuracy",
    ),
    (
        "kueezrtb/kueezrtbtest/exemplary/multi-imp.json",
        "imp[1].id",
    ),
    (
        "silverpush/silverpushtest/exemplary/banner-without-w-h.json",
        "app",
    ),
    (
        "smaato/smaatotest/exemplary/native.json",
        "regs.ext.us_privacy",
    ),
    (
        "thetradedesk/thetradedesktest/exemplary/simple-native.json",
        "imp[0].native.request",
    ),
];

/// The shared corpus (../shared/data/openrtb: the OpenRTB 2.5 and 2.6
/// specification examples and 154 prebid-server requests): each gets a
/// valid BidResponse or a no-bid over HTTP, except those that break the
/// specification, which get a `400` naming the field.
#[test]
fn every_shared_spec_example_and_prebid_request_gets_a_bid_response_or_a_no_bid() {
    let root = std::path::Path::new("../../shared/data/openrtb");
    if !root.is_dir() {
        eprintln!("skipped: {} is absent", root.display());
        return;
    }
    let mut corpus: Vec<(String, Vec<u8>)> = corpus_in(&root.join("spec_examples"))
        .into_iter()
        .map(|body| ("spec example".to_owned(), body))
        .collect();
    let sample =
        std::fs::read_to_string(root.join("prebid_exemplary_sample.jsonl")).expect("reads");
    for line in sample.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).expect("JSON");
        let source = v["source"].as_str().expect("source").to_owned();
        corpus.push((source, serde_json::to_vec(&v["request"]).expect("JSON")));
    }
    assert_eq!(corpus.len(), 15 + 154);
    let server = start(config(IoMode::Epoll));
    let (mut bids, mut no_bids, mut refused) = (0, 0, 0);
    for (source, body) in &corpus {
        let (status, _, answer) = post(&server, body, &[]);
        let text = String::from_utf8_lossy(&answer);
        let expected = REFUSED.iter().find(|(suffix, _)| source.ends_with(suffix));
        match (status, expected) {
            (200, None) => {
                let request = parse_request(body).expect("answered 200, so valid");
                let response: BidResponse = serde_json::from_slice(&answer).expect("JSON");
                response
                    .check(&request)
                    .expect("a valid answer to its request");
                bids += 1;
            }
            (204, None) => no_bids += 1,
            (400, Some((_, path))) => {
                let v: serde_json::Value = serde_json::from_slice(&answer).expect("JSON");
                assert_eq!(v["error"]["path"], *path, "{source}: {text}");
                refused += 1;
            }
            (other, _) => panic!("{source}: status {other}, expected {expected:?}: {text}"),
        }
    }
    eprintln!(
        "{} requests: {bids} bids, {no_bids} no-bids, {refused} refused",
        corpus.len()
    );
    assert_eq!(refused, REFUSED.len());
    assert!(bids > corpus.len() / 2, "{bids} bids of {}", corpus.len());
    stop(server);
}

#[test]
fn gzip_bodies_are_answered_like_plain_ones_and_bombs_are_refused() {
    for io in io_modes() {
        let server = start(config(io));
        let body = fixture();
        let (plain, _, _) = post(&server, &body, &[]);
        let (zipped, _, _) = post(&server, &gzip(&body), &[("Content-Encoding", "gzip")]);
        assert_eq!(plain, zipped, "{io:?}");
        let bomb = gzip(&vec![b' '; 8 << 20]);
        let (status, _, answer) = post(&server, &bomb, &[("Content-Encoding", "gzip")]);
        assert_eq!(status, 413, "{io:?}: {}", String::from_utf8_lossy(&answer));
        let (status, _, _) = post(&server, b"not gzip", &[("Content-Encoding", "gzip")]);
        assert_eq!(status, 400, "{io:?}");
        stop(server);
    }
}

#[test]
fn invalid_requests_get_a_400_naming_the_field() {
    for io in io_modes() {
        let server = start(config(io));
        let cases: [(&[u8], &str); 4] = [
            (b"{\"id\": \"1\", \"imp\": []}", "imp"),
            (
                b"{\"id\": \"1\", \"site\": {}, \"imp\": [{\"id\": \"a\", \"banner\": {\"w\": 1, \"h\": 1}}, {\"id\": \"a\", \"banner\": {\"w\": 1, \"h\": 1}}]}",
                "imp[1].id",
            ),
            (b"{\"id\": 5}", "id"),
            (b"\xff\xfe not UTF-8", "$"),
        ];
        for (body, path) in cases {
            let (status, _, answer) = post(&server, body, &[]);
            assert_eq!(status, 400, "{io:?}: {}", String::from_utf8_lossy(body));
            let v: serde_json::Value = serde_json::from_slice(&answer).expect("a JSON error");
            let got = v["error"]["path"].as_str().unwrap_or("");
            assert!(
                got.starts_with(path),
                "{io:?}: path {got:?}, expected {path:?}: {v}"
            );
        }
        let (status, _, _) = post(&server, &fixture(), &[("x-openrtb-version", "3.0")]);
        assert_eq!(status, 400, "{io:?}: an OpenRTB version we do not speak");
        stop(server);
    }
}

/// Sends `bytes` on a fresh connection and reads until the server closes
/// (or `wait` passes).
fn raw(server: &Server, bytes: &[u8], wait: Duration) -> String {
    let mut stream = TcpStream::connect(http_addr(server)).expect("connects");
    stream.set_read_timeout(Some(wait)).expect("timeout");
    stream.write_all(bytes).expect("writes");
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn statuses(text: &str) -> Vec<u16> {
    text.match_indices("HTTP/1.1 ")
        .filter_map(|(i, _)| text.get(i + 9..i + 12)?.parse().ok())
        .collect()
}

fn bid_post(body: &[u8], close: bool) -> Vec<u8> {
    let mut out = format!(
        "POST /openrtb2/bid HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n{}\r\n",
        body.len(),
        if close { "Connection: close\r\n" } else { "" }
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    for io in io_modes() {
        let server = start(config(io));
        let mut bytes = bid_post(&fixture(), false);
        bytes.extend_from_slice(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
        bytes.extend(bid_post(b"{\"id\": 5}", false));
        bytes.extend_from_slice(b"GET /notice/win?bid=unknown&price=1.5 HTTP/1.1\r\n\r\n");
        bytes.extend(bid_post(&fixture(), true));
        let text = raw(&server, &bytes, Duration::from_secs(10));
        let got = statuses(&text);
        let first = *got.first().expect("answers");
        assert!(first == 200 || first == 204, "{io:?}: {text}");
        assert_eq!(got.get(1..4), Some(&[404, 400, 204][..]), "{io:?}: {text}");
        assert_eq!(got.len(), 5, "{io:?}: {text}");
        assert_eq!(got[4], first, "{io:?}: the same request, the same answer");
        stop(server);
    }
}

#[test]
fn broken_heads_get_their_status_or_a_close_and_never_a_panic() {
    for io in io_modes() {
        let server = start(ServerConfig {
            frame_timeout_ms: 300,
            ..config(io)
        });
        let short = Duration::from_secs(5);
        let cases: Vec<(&str, Vec<u8>, u16)> = vec![
            (
                "http/2 preface",
                b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(),
                505,
            ),
            (
                "garbage",
                b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n".to_vec(),
                400,
            ),
            (
                "chunked",
                b"POST /openrtb2/bid HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                    .to_vec(),
                411,
            ),
            (
                "huge body",
                b"POST /openrtb2/bid HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n".to_vec(),
                413,
            ),
            (
                "huge head",
                format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(20_000)).into_bytes(),
                431,
            ),
            (
                "two lengths",
                b"POST /openrtb2/bid HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}"
                    .to_vec(),
                400,
            ),
        ];
        for (label, bytes, status) in cases {
            let text = raw(&server, &bytes, short);
            assert_eq!(statuses(&text), vec![status], "{io:?} {label}: {text}");
        }
        // HTTP/1.0 is answered, then closed.
        let mut v10 = b"POST /openrtb2/bid HTTP/1.0\r\n".to_vec();
        let body = fixture();
        v10.extend(format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes());
        v10.extend(&body);
        let text = raw(&server, &v10, short);
        assert_eq!(statuses(&text).len(), 1, "{io:?}: {text}");
        // A body shorter than its Content-Length, a slowloris head: closed by
        // the frame timeout, unanswered.
        for (label, bytes) in [
            (
                "lying length",
                b"POST /openrtb2/bid HTTP/1.1\r\nContent-Length: 100\r\n\r\n{}".to_vec(),
            ),
            (
                "slowloris",
                b"POST /openrtb2/bid HTTP/1.1\r\nX-Slow: aaaa".to_vec(),
            ),
        ] {
            let started = Instant::now();
            let text = raw(&server, &bytes, Duration::from_secs(10));
            assert!(text.is_empty(), "{io:?} {label}: {text}");
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{io:?} {label}: closed in time"
            );
        }
        // The server still bids.
        let (status, _, _) = post(&server, &fixture(), &[]);
        assert!(status == 200 || status == 204, "{io:?}");
        stop(server);
    }
}

#[test]
fn notices_are_joined_to_the_bids_made() {
    for io in io_modes() {
        let server = start(config(io));
        let mut bid_id = None;
        for body in corpus() {
            let (status, _, answer) = post(&server, &body, &[]);
            if status == 200 {
                let response: BidResponse = serde_json::from_slice(&answer).expect("JSON");
                bid_id = response
                    .seatbid
                    .first()
                    .and_then(|s| s.bid.first())
                    .map(|b| b.id.clone());
                break;
            }
        }
        let bid = bid_id.expect("some fixture gets a bid");
        let base = format!("http://{}", http_addr(&server));
        let get = |path: &str| -> u16 {
            let response = agent()
                .get(&format!("{base}{path}"))
                .call()
                .expect("answers");
            response.status().as_u16()
        };
        assert_eq!(
            get(&format!("/notice/win?bid={bid}&price=1.25&cur=USD")),
            204
        );
        assert_eq!(
            get(&format!("/notice/win?bid={bid}&price=1.25&cur=USD")),
            204
        );
        assert_eq!(get("/notice/win?bid=never-made&price=1"), 204);
        assert_eq!(get(&format!("/notice/loss?bid={bid}&loss=102")), 204);
        assert_eq!(
            get(&format!("/notice/bill?bid={bid}&price=${{AUCTION_PRICE}}")),
            400
        );
        std::thread::sleep(Duration::from_millis(100));
        let (_, metrics) = scrape(&server, "/metrics");
        let count = |kind: &str, result: &str| {
            sample(
                &metrics,
                &format!("cx_notices_total{{kind=\"{kind}\",result=\"{result}\"}}"),
            )
        };
        // The win is applied; its repeat is a refused duplicate; a win for
        // a bid never made is held for its decision (then dropped); a loss
        // after the win contradicts it.
        assert_eq!(count("win", "applied"), 1.0, "{io:?}\n{metrics}");
        assert_eq!(count("win", "refused"), 1.0, "{io:?}");
        assert_eq!(count("win", "held"), 1.0, "{io:?}");
        assert_eq!(count("loss", "refused"), 1.0, "{io:?}");
        assert_eq!(count("bill", "invalid"), 1.0, "{io:?}");
        stop(server);
    }
}

#[test]
fn a_tmax_that_leaves_no_time_is_a_no_bid_for_insufficient_time() {
    for io in io_modes() {
        let server = start(ServerConfig {
            deadline_margin_ms: 50,
            ..config(io)
        });
        let mut request: serde_json::Value = serde_json::from_slice(&fixture()).expect("JSON");
        request["tmax"] = 40.into();
        let body = serde_json::to_vec(&request).expect("JSON");
        let (status, nbr, _) = post(&server, &body, &[]);
        assert_eq!((status, nbr.as_deref()), (204, Some("15")), "{io:?}");
        stop(server);
    }
}

/// The response with what differs between two answers to one request
/// blanked: each bid's id (a fresh one per bid) and the markup that
/// carries it.
fn comparable(mut response: BidResponse) -> BidResponse {
    for bid in response.seatbid.iter_mut().flat_map(|s| s.bid.iter_mut()) {
        let id = std::mem::take(&mut bid.id);
        assert!(!id.is_empty());
        if let Some(adm) = bid.adm.as_mut() {
            *adm = adm.replace(&id, "");
        }
    }
    response
}

#[test]
fn the_binary_protocol_and_http_answer_the_same_bid_response() {
    for io in io_modes() {
        let mut config = config(io);
        // Exploration draws depend on the ticket, which differs between
        // the two answers; without it a decision depends on the request alone.
        config.engine.decide.exploration = cx_engine::systems::Exploration::None;
        let server = start(config);
        let mut client = connect(&server);
        let mut compared = 0;
        for body in corpus() {
            // A test request decides in simulation: no budget or frequency
            // cap is spent by the first answer.
            let mut request: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
            request["test"] = 1.into();
            // No deadline: a late decision on a loaded machine would be a
            // no-bid on one side only.
            if let Some(fields) = request.as_object_mut() {
                fields.remove("tmax");
            }
            let body = serde_json::to_vec(&request).expect("JSON");
            let (status, _, answer) = post(&server, &body, &[]);
            let flags = cx_wire::protocol::OpenRtbFlags {
                bid_response: true,
                ..cx_wire::protocol::OpenRtbFlags::default()
            };
            let id = client.send_openrtb_with(&body, flags).expect("sends");
            client.flush().expect("flushes");
            let response = client.recv().expect("an answer");
            assert_eq!(response.request_id, id);
            let cx_wire::client::ResponseBody::BidResponse(json) = response.body else {
                panic!("{io:?}: {:?}", response.body)
            };
            let scored: serde_json::Value = serde_json::from_str(&json).expect("JSON");
            let binary: BidResponse =
                serde_json::from_value(scored["response"].clone()).expect("a BidResponse");
            match status {
                200 => {
                    let http: BidResponse = serde_json::from_slice(&answer).expect("JSON");
                    assert_eq!(comparable(http), comparable(binary), "{io:?}");
                    compared += 1;
                }
                204 => assert!(binary.is_no_bid(), "{io:?}: HTTP says no bid: {binary:?}"),
                other => panic!("{io:?}: {other}"),
            }
        }
        assert!(compared > 0, "{io:?}: some request got a bid over both");
        stop(server);
    }
}
