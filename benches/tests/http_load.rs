//! `cx-bench load --http`: the open-loop generator against the OpenRTB
//! HTTP bidder of a server started in process, and against fake servers
//! that answer what the bidder never would (errors, unframed answers).
//!
//! As in `load.rs`, nothing here asserts a latency or a rate: counts add
//! up, every request is answered, reports round-trip through JSON, bad
//! options are refused naming the option.

use cx_load::{run, run_sweep, LoadConfig, LoadReport, Mix, SweepConfig, Wire, HTTP_DEPTH_MAX};
use cx_server::config::ServerConfig;
use cx_server::serve::Server;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};

mod common;
use common::{cx_bench, path, scratch};

/// A server with the HTTP bidder on a loopback port, no admin endpoint.
fn start_server() -> Server {
    Server::start(ServerConfig {
        listen: "127.0.0.1:0".parse().expect("address"),
        admin_listen: None,
        http_listen: Some("127.0.0.1:0".parse().expect("address")),
        ..ServerConfig::default()
    })
    .expect("the server starts")
}

fn stop(server: Server) {
    server.shutdown();
    server.wait().expect("the server stops cleanly");
}

fn prebid_sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../components/wire/tests/fixtures/openrtb/prebid_sample.jsonl")
}

/// A short HTTP load of the prebid sample against `addr`.
fn short_http_load(addr: SocketAddr) -> LoadConfig {
    LoadConfig {
        addr: addr.to_string(),
        wire: Wire::Http,
        rate_per_s: 1000.0,
        duration_s: 0.5,
        warmup_s: 0.1,
        drain_s: 5.0,
        connections: 2,
        depth: 16,
        mix: Mix::OpenRtb(prebid_sample()),
        pool: 512,
        ..LoadConfig::default()
    }
}

/// The counts of `report` add up, and it round-trips through JSON.
fn check_counts(report: &LoadReport) {
    let errors = report.overloaded + report.errors_by_code.values().sum::<u64>();
    assert_eq!(
        report.sent,
        report.ok + errors + report.unanswered,
        "{report:#?}"
    );
    assert_eq!(report.scheduled, report.sent + report.unsent, "{report:#?}");
    assert!(report.no_bids <= report.ok, "{report:#?}");
    assert_eq!(report.latency_ok.count, report.ok);
    assert_eq!(report.latency_all.count, report.ok + errors);
    let json = serde_json::to_string(report).expect("serialize");
    let back: LoadReport = serde_json::from_str(&json).expect("deserialize");
    assert_eq!(&back, report, "the report round-trips through JSON");
}

#[test]
fn an_http_load_of_the_prebid_sample_is_answered_in_full() {
    let server = start_server();
    let addr = server.http_addr().expect("the HTTP bidder runs");
    let report = run(&short_http_load(addr)).expect("the load runs");
    stop(server);

    check_counts(&report);
    assert_eq!(report.wire, Wire::Http);
    assert_eq!(report.scheduled, 500, "0.5 s at 1000/s");
    assert_eq!(report.pool, 7, "one request per line of the sample");
    assert_eq!(report.depth, 16);
    assert!(report.ok > 0, "bids or no-bids: {report:#?}");
    assert_eq!(report.errors(), 0, "{report:#?}");
    assert_eq!(
        (report.unanswered, report.unsent, report.unattributed),
        (0, 0, 0),
        "every request answered: {report:#?}"
    );
    assert_eq!(report.ok, report.scheduled, "{report:#?}");
    assert!(report.connection_errors.is_empty(), "{report:#?}");
    assert!(report.summary().contains("no-bids"), "{}", report.summary());
}

#[test]
fn an_http_sweep_runs_its_steps_on_the_same_wire() {
    let server = start_server();
    let addr = server.http_addr().expect("the HTTP bidder runs");
    let config = SweepConfig {
        load: LoadConfig {
            warmup_s: 0.05,
            connections: 1,
            ..short_http_load(addr)
        },
        start_rate_per_s: 300.0,
        max_rate_per_s: 600.0,
        step_factor: 2.0,
        step_s: 0.2,
        stop_after_misses: 2,
        ..SweepConfig::default()
    };
    let sweep = run_sweep(&config, |_| {}).expect("the sweep runs");
    stop(server);
    assert!(!sweep.steps.is_empty());
    for step in &sweep.steps {
        check_counts(&step.report);
        assert_eq!(step.report.wire, Wire::Http);
        assert!(step.report.ok > 0, "{:#?}", step.report);
        assert_eq!(step.report.errors(), 0, "{:#?}", step.report);
    }
}

#[test]
fn the_binary_runs_an_http_load_and_says_so() {
    let server = start_server();
    let addr = server
        .http_addr()
        .expect("the HTTP bidder runs")
        .to_string();
    let sample = prebid_sample();
    let json = scratch("http-binary").join("load.json");
    let args = [
        "load",
        "--http",
        "--addr",
        &addr,
        "--mix",
        sample.to_str().expect("UTF-8 path"),
        "--rate",
        "500",
        "--duration-s",
        "0.3",
        "--warmup-s",
        "0.05",
        "--connections",
        "1",
        "-q",
        "--json",
        path(&json),
    ];
    let (ok, stdout, stderr) = cx_bench(&args);
    stop(server);
    assert!(ok, "{stdout}\n{stderr}");
    let report: LoadReport =
        serde_json::from_slice(&std::fs::read(&json).expect("the report is written"))
            .expect("a load report");
    check_counts(&report);
    assert_eq!((report.wire, report.depth), (Wire::Http, 64));
    assert!(stdout.contains(", http)"), "{stdout}");
    assert!(
        stdout.contains("depth 64"),
        "capped to the bidder's: {stdout}"
    );
    assert!(stdout.contains("unanswered 0  unsent 0"), "{stdout}");
}

#[test]
fn binary_bid_responses_are_answers_like_decisions() {
    let server = start_server();
    let config = LoadConfig {
        addr: server.local_addr().to_string(),
        wire: Wire::Binary,
        bid_response: true,
        ..short_http_load(server.local_addr())
    };
    let report = run(&config).expect("the load runs");
    stop(server);

    check_counts(&report);
    assert!(report.bid_response && report.wire == Wire::Binary);
    assert_eq!(report.ok, report.scheduled, "{report:#?}");
    assert_eq!(report.errors(), 0, "{report:#?}");
    assert!(
        report.summary().contains("bid_response"),
        "{}",
        report.summary()
    );
    // Only the binary protocol's score_openrtb has the flag.
    for bad in [
        LoadConfig {
            wire: Wire::Http,
            ..config.clone()
        },
        LoadConfig {
            mix: Mix::Synth,
            ..config.clone()
        },
    ] {
        let error = run(&bad).unwrap_err().to_string();
        assert!(error.starts_with("--bid-response"), "{error}");
    }
}

#[test]
fn the_depth_cap_is_the_bidders_in_flight_limit() {
    assert_eq!(HTTP_DEPTH_MAX, cx_server::http::limits::IN_FLIGHT_MAX);
}

#[test]
fn http_needs_a_file_of_bid_requests_and_no_simulate_flag() {
    let addr: SocketAddr = "127.0.0.1:9".parse().expect("address");
    for mix in [Mix::Synth, Mix::Echo] {
        let error = run(&LoadConfig {
            mix,
            ..short_http_load(addr)
        })
        .unwrap_err()
        .to_string();
        assert!(error.starts_with("--mix"), "{error}");
    }
    let error = run(&LoadConfig {
        simulate: true,
        ..short_http_load(addr)
    })
    .unwrap_err()
    .to_string();
    assert!(error.starts_with("--simulate"), "{error}");

    let (ok, _, stderr) = cx_bench(&["load", "--http", "--addr", "127.0.0.1:9"]);
    assert!(!ok && stderr.contains("--mix"), "{stderr}");
    let (ok, _, stderr) = cx_bench(&["load", "--http", "--simulate", "--addr", "127.0.0.1:9"]);
    assert!(!ok && stderr.contains("--simulate"), "{stderr}");
}

// ---------------------------------------------------------------------------
// Fake servers: what the bidder would never answer
// ---------------------------------------------------------------------------

/// Serves every connection of `listener` (until the test ends) by reading
/// whole requests and writing `answer(n)` for the `n`-th one (0 first,
/// over the connection).
fn fake_server(answer: fn(u64) -> Vec<u8>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            std::thread::spawn(move || serve_fake(stream, answer));
        }
    });
    addr
}

fn serve_fake(mut stream: TcpStream, answer: fn(u64) -> Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let mut n = 0;
    loop {
        let Ok(read) = stream.read(&mut chunk) else {
            return;
        };
        if read == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..read]);
        while let Some(len) = request_len(&buf) {
            buf.drain(..len);
            if stream.write_all(&answer(n)).is_err() {
                return;
            }
            n += 1;
        }
    }
}

/// The length of the whole request at the front of `buf`, if it is there.
fn request_len(buf: &[u8]) -> Option<usize> {
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut request = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(head) = request.parse(buf).expect("a request head") else {
        return None;
    };
    let body: usize = request
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .map(|h| {
            std::str::from_utf8(h.value)
                .expect("UTF-8")
                .parse()
                .expect("a length")
        })
        .expect("Content-Length");
    (buf.len() >= head + body).then_some(head + body)
}

#[test]
fn statuses_other_than_200_and_204_are_errors_by_status() {
    // Request n gets, in turn: a bid, a no-bid, a 503, a 400.
    let addr = fake_server(|n| match n % 4 {
        0 => b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}".to_vec(),
        1 => b"HTTP/1.1 204 No Content\r\n\r\n".to_vec(),
        2 => b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n".to_vec(),
        _ => b"HTTP/1.1 400 Bad Request\r\nContent-Length: 2\r\n\r\n{}".to_vec(),
    });
    let report = run(&LoadConfig {
        connections: 1,
        warmup_s: 0.0,
        ..short_http_load(addr)
    })
    .expect("the load runs");
    check_counts(&report);
    assert_eq!((report.unanswered, report.unsent), (0, 0), "{report:#?}");
    assert_eq!(report.scheduled, 500);
    assert_eq!(report.ok, 250, "bids and no-bids: {report:#?}");
    assert_eq!(report.no_bids, 125, "{report:#?}");
    assert_eq!(report.errors_by_code.get("http_503"), Some(&125));
    assert_eq!(report.errors_by_code.get("http_400"), Some(&125));
    assert_eq!(report.overloaded, 0);
}

#[test]
fn an_answer_that_cannot_be_framed_ends_its_connection_and_is_counted() {
    // The third answer on each connection has no Content-Length.
    let addr = fake_server(|n| match n {
        2 => b"HTTP/1.1 200 OK\r\n\r\n{}".to_vec(),
        _ => b"HTTP/1.1 204 No Content\r\n\r\n".to_vec(),
    });
    let report = run(&LoadConfig {
        connections: 2,
        warmup_s: 0.0,
        drain_s: 1.0,
        ..short_http_load(addr)
    })
    .expect("the load runs, whatever the server answers");
    check_counts(&report);
    assert_eq!(report.ok, 4, "two no-bids per connection: {report:#?}");
    assert_eq!(report.errors_by_code.get("invalid_response"), Some(&2));
    assert_eq!(report.connection_errors.len(), 2, "{report:#?}");
    assert!(
        report.connection_errors[0].contains("malformed HTTP answer"),
        "{report:#?}"
    );
    assert!(report.unanswered + report.unsent > 0, "{report:#?}");
}
