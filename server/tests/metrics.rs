//! The metrics registry's exposition and the admin HTTP endpoint, over real
//! sockets on 127.0.0.1.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use cx_server::metrics::{
    AdminLimits, AdminServer, Health, Metrics, MetricsError, ReloadResult, BATCH_SIZE_BUCKET_COUNT,
    INFERENCE_BUCKET_COUNT, METRICS_CONTENT_TYPE,
};
use cx_wire::protocol::ErrorCode;

/// How long a test client waits for a response before failing.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// The value of the sample line `series value` (series with its labels).
fn sample(text: &str, series: &str) -> f64 {
    let prefix = format!("{series} ");
    let line = text
        .lines()
        .find(|line| line.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no sample {series} in:\n{text}"));
    line[prefix.len()..]
        .parse()
        .unwrap_or_else(|err| panic!("bad value in {line:?}: {err}"))
}

/// The `(le, cumulative count)` pairs of a histogram, `+Inf` last.
fn buckets(text: &str, name: &str) -> Vec<(f64, f64)> {
    let prefix = format!("{name}_bucket{{le=\"");
    text.lines()
        .filter_map(|line| line.strip_prefix(&prefix))
        .map(|rest| {
            let (le, count) = rest.split_once("\"} ").expect("bucket line");
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().expect("le")
            };
            (le, count.parse().expect("count"))
        })
        .collect()
}

fn localhost() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

#[test]
fn every_metric_is_rendered_with_its_type() {
    let text = Metrics::new().render();
    let families = [
        ("ml_inference_duration_seconds", "histogram"),
        ("cx_decision_duration_seconds", "histogram"),
        ("ml_predictions", "counter"),
        ("ml_cache_hits", "counter"),
        ("ml_cache_misses", "counter"),
        ("cx_connections_active", "gauge"),
        ("cx_connections", "counter"),
        ("cx_connections_refused", "counter"),
        ("cx_frames_received", "counter"),
        ("cx_frames_sent", "counter"),
        ("cx_errors", "counter"),
        ("cx_overloaded", "counter"),
        ("cx_batch_size", "histogram"),
        ("cx_connection_timeouts", "counter"),
        ("cx_model_reloads", "counter"),
    ];
    for (name, kind) in families {
        let type_line = format!("# TYPE {name} {kind}\n");
        assert!(
            text.contains(&type_line),
            "missing {type_line:?} in:\n{text}"
        );
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "no help for {name}"
        );
    }
    assert!(text.contains("# UNIT ml_inference_duration_seconds seconds\n"));
    assert!(text.contains("# UNIT cx_decision_duration_seconds seconds\n"));
    // The exposed sample names, exactly as the seed design lists them.
    for series in [
        "ml_predictions_total",
        "ml_cache_hits_total",
        "ml_cache_misses_total",
        "ml_inference_duration_seconds_count",
        "ml_inference_duration_seconds_sum",
        "cx_decision_duration_seconds_count",
        "cx_connections_active",
        "cx_connections_total",
        "cx_connections_refused_total",
        "cx_frames_received_total",
        "cx_frames_sent_total",
        "cx_overloaded_total",
        "cx_connection_timeouts_total",
        "cx_batch_size_count",
    ] {
        assert_eq!(sample(&text, series), 0.0, "{series}");
    }
    assert!(
        !text.contains("_total_total"),
        "a counter was registered with _total"
    );
    assert!(text.ends_with("# EOF\n"));
}

#[test]
fn counters_and_gauge_reflect_what_was_recorded() {
    let metrics = Metrics::new();
    metrics.add_predictions(3);
    metrics.add_predictions(4);
    metrics.add_cache(5, 2);
    metrics.add_cache(1, 0);
    for _ in 0..3 {
        metrics.connection_opened();
    }
    metrics.connection_closed();
    metrics.connection_refused();
    metrics.add_frames_received(10);
    metrics.add_frames_sent(9);
    metrics.add_overloaded(6);
    metrics.add_timeouts(2);
    let text = metrics.render();
    let expected = [
        ("ml_predictions_total", 7.0),
        ("ml_cache_hits_total", 6.0),
        ("ml_cache_misses_total", 2.0),
        ("cx_connections_active", 2.0),
        ("cx_connections_total", 3.0),
        ("cx_connections_refused_total", 1.0),
        ("cx_frames_received_total", 10.0),
        ("cx_frames_sent_total", 9.0),
        ("cx_overloaded_total", 6.0),
        ("cx_connection_timeouts_total", 2.0),
    ];
    for (series, value) in expected {
        assert_eq!(sample(&text, series), value, "{series}");
    }
}

#[test]
fn errors_are_labelled_by_code() {
    let metrics = Metrics::new();
    metrics.add_errors(ErrorCode::Timeout, 2);
    metrics.add_errors(ErrorCode::Internal, 1);
    metrics.add_errors(ErrorCode::Timeout, 3);
    let text = metrics.render();
    for code in ErrorCode::ALL {
        let expected = match code {
            ErrorCode::Timeout => 5.0,
            ErrorCode::Internal => 1.0,
            _ => 0.0,
        };
        let series = format!("cx_errors_total{{code=\"{}\"}}", code.label());
        assert_eq!(sample(&text, &series), expected, "{series}");
    }
}

#[test]
fn model_reloads_are_labelled_by_result() {
    let metrics = Metrics::new();
    metrics.model_reloaded(ReloadResult::Ok);
    metrics.model_reloaded(ReloadResult::Ok);
    metrics.model_reloaded(ReloadResult::InvalidModel);
    let text = metrics.render();
    for result in ReloadResult::ALL {
        let expected = match result {
            ReloadResult::Ok => 2.0,
            ReloadResult::InvalidModel => 1.0,
            _ => 0.0,
        };
        let series = format!("cx_model_reloads_total{{result=\"{}\"}}", result.label());
        assert_eq!(sample(&text, &series), expected, "{series}");
    }
}

#[test]
fn inference_histogram_spans_a_microsecond_to_a_second() {
    let metrics = Metrics::new();
    for seconds in [3e-6, 0.5, 5.0] {
        metrics.observe_inference_seconds(seconds);
    }
    // Ignored: they would poison the sum.
    for seconds in [f64::NAN, f64::INFINITY, -1.0] {
        metrics.observe_inference_seconds(seconds);
    }
    let text = metrics.render();
    let name = "ml_inference_duration_seconds";
    assert_eq!(sample(&text, &format!("{name}_count")), 3.0);
    let sum = sample(&text, &format!("{name}_sum"));
    assert!((sum - 5.500003).abs() < 1e-9, "sum {sum}");

    let buckets = buckets(&text, name);
    assert_eq!(buckets.len(), usize::from(INFERENCE_BUCKET_COUNT) + 1);
    let (first, _) = buckets[0];
    let (last, _) = buckets[buckets.len() - 2];
    assert!((first - 1e-6).abs() < 1e-12, "first bucket {first}");
    assert!((1.0..1.1).contains(&last), "last finite bucket {last}");
    for &(le, count) in &buckets {
        let expected = [3e-6, 0.5, 5.0].iter().filter(|&&v| v <= le).count() as f64;
        assert_eq!(count, expected, "bucket le={le}");
    }
    assert_eq!(buckets.last().unwrap(), &(f64::INFINITY, 3.0));
}

#[test]
fn batch_size_buckets_are_powers_of_two() {
    let metrics = Metrics::new();
    for n in [1, 3, 3, 1024, 5000] {
        metrics.observe_batch_size(n);
    }
    let text = metrics.render();
    let buckets = buckets(&text, "cx_batch_size");
    let bounds: Vec<f64> = buckets.iter().map(|&(le, _)| le).collect();
    let mut expected: Vec<f64> = (0..BATCH_SIZE_BUCKET_COUNT)
        .map(|i| f64::from(1_u32 << i))
        .collect();
    expected.push(f64::INFINITY);
    assert_eq!(bounds, expected);
    let counts: Vec<f64> = buckets.iter().map(|&(_, count)| count).collect();
    assert_eq!(
        counts,
        [1.0, 1.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 4.0, 5.0]
    );
    assert_eq!(sample(&text, "cx_batch_size_sum"), 6031.0);
}

#[test]
fn clones_share_values_across_threads() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<Metrics>();
    assert_send_sync::<Health>();

    let metrics = Metrics::new();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let metrics = metrics.clone();
            std::thread::spawn(move || {
                for _ in 0..1000 {
                    metrics.add_predictions(1);
                    metrics.add_errors(ErrorCode::Overloaded, 1);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let text = metrics.render();
    assert_eq!(sample(&text, "ml_predictions_total"), 4000.0);
    assert_eq!(
        sample(&text, "cx_errors_total{code=\"overloaded\"}"),
        4000.0
    );
}

/// A parsed HTTP response.
struct Response {
    status: u16,
    head: String,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Sends raw bytes, reads until the server closes, and parses the response.
fn exchange(addr: SocketAddr, request: &[u8]) -> Response {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    stream.write_all(request).unwrap();
    read_response(&mut stream)
}

fn read_response(stream: &mut TcpStream) -> Response {
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .expect("response before the client timeout");
    let raw = String::from_utf8(raw).expect("UTF-8 response");
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no head end: {raw:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("bad status line: {head:?}"));
    Response {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

/// `METHOD path HTTP/1.1` with `Connection: close`.
fn request(addr: SocketAddr, method: &str, path: &str) -> Response {
    let raw = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    exchange(addr, raw.as_bytes())
}

#[test]
fn admin_serves_metrics_and_health() {
    let metrics = Metrics::new();
    let health = Health::new();
    let server = AdminServer::spawn(localhost(), metrics.clone(), health.clone()).unwrap();
    let addr = server.local_addr();
    assert_ne!(addr.port(), 0);
    assert!(addr.ip().is_loopback());

    metrics.add_predictions(42);
    let response = request(addr, "GET", "/metrics");
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some(METRICS_CONTENT_TYPE));
    assert_eq!(response.header("connection"), Some("close"));
    assert_eq!(sample(&response.body, "ml_predictions_total"), 42.0);
    let length: usize = response.header("content-length").unwrap().parse().unwrap();
    assert_eq!(length, response.body.len());

    let response = request(addr, "GET", "/metrics?name=x");
    assert_eq!(response.status, 200);

    let response = request(addr, "GET", "/healthz");
    assert_eq!((response.status, response.body.as_str()), (200, "ok\n"));
    let response = request(addr, "GET", "/readyz");
    assert_eq!(
        (response.status, response.body.as_str()),
        (503, "starting\n"),
        "alive is not ready"
    );
    health.set_ready();
    let response = request(addr, "GET", "/readyz");
    assert_eq!((response.status, response.body.as_str()), (200, "ready\n"));
    health.set_draining();
    let response = request(addr, "GET", "/readyz");
    assert_eq!(
        (response.status, response.body.as_str()),
        (503, "draining\n")
    );
    let response = request(addr, "GET", "/healthz");
    assert_eq!(
        (response.status, response.body.as_str()),
        (503, "draining\n")
    );

    let response = request(addr, "HEAD", "/metrics");
    assert_eq!((response.status, response.body.as_str()), (200, ""));
    assert_ne!(response.header("content-length"), Some("0"));

    let started = Instant::now();
    server.stop();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "stop took {:?}",
        started.elapsed()
    );
    assert!(
        TcpStream::connect(addr).is_err(),
        "still listening after stop"
    );
}

#[test]
fn admin_answers_unknown_paths_and_methods() {
    let server = AdminServer::spawn(localhost(), Metrics::new(), Health::new()).unwrap();
    let addr = server.local_addr();
    assert_eq!(request(addr, "GET", "/nope").status, 404);
    assert_eq!(request(addr, "GET", "/").status, 404);
    assert_eq!(request(addr, "POST", "/nope").status, 404);
    for path in ["/metrics", "/healthz"] {
        let response = request(addr, "POST", path);
        assert_eq!(response.status, 405, "POST {path}");
        assert_eq!(response.header("allow"), Some("GET, HEAD"));
        assert_eq!(request(addr, "DELETE", path).status, 405, "DELETE {path}");
    }
    server.stop();
}

#[test]
fn admin_answers_400_to_malformed_requests() {
    let server = AdminServer::spawn(localhost(), Metrics::new(), Health::new()).unwrap();
    let addr = server.local_addr();
    for raw in [
        &b"garbage\r\n\r\n"[..],
        b"GET /metrics\r\n\r\n",
        b"GET /metrics HTTP/9.9\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nno colon\r\n\r\n",
        b"GET /\xff\xfe HTTP/1.1\r\n\r\n",
    ] {
        let response = exchange(addr, raw);
        assert_eq!(response.status, 400, "{:?}", String::from_utf8_lossy(raw));
    }
    // A target without its slash names no route.
    assert_eq!(exchange(addr, b"GET metrics HTTP/1.1\r\n\r\n").status, 404);
    // Still serving.
    assert_eq!(request(addr, "GET", "/healthz").status, 200);
    server.stop();
}

#[test]
fn admin_limits_request_heads_and_bodies() {
    let server = AdminServer::spawn(localhost(), Metrics::new(), Health::new()).unwrap();
    let addr = server.local_addr();

    // A head over the default 8 KiB limit.
    let huge = format!(
        "GET /metrics HTTP/1.1\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(16 * 1024)
    );
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    // The server may close before reading everything; only the answer matters.
    let _ = stream.write_all(huge.as_bytes());
    assert_eq!(read_response(&mut stream).status, 431);

    // An absurd announced body is never read, let alone buffered (tiny_http
    // 0.12 aborts the process on this one).
    let raw =
        "POST /metrics HTTP/1.1\r\nContent-Length: 1000000000000\r\nConnection: close\r\n\r\nabc";
    assert_eq!(exchange(addr, raw.as_bytes()).status, 405);
    let raw = "POST /healthz HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n";
    assert_eq!(exchange(addr, raw.as_bytes()).status, 405);
    // A small body sent in full gets its answer too.
    let raw = "GET /healthz HTTP/1.1\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
    assert_eq!(exchange(addr, raw.as_bytes()).status, 200);

    assert_eq!(request(addr, "GET", "/healthz").status, 200);
    server.stop();
}

/// Reads until the server closes the connection; returns what it sent.
fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut raw = Vec::new();
    // A reset counts as a close too.
    let _closed = stream.read_to_end(&mut raw);
    raw
}

#[test]
fn admin_times_out_slow_clients() {
    let limits = AdminLimits {
        request_timeout: Duration::from_millis(200),
        connection_timeout: Duration::from_millis(600),
        ..AdminLimits::default()
    };
    let server =
        AdminServer::spawn_with_limits(localhost(), Metrics::new(), Health::new(), limits).unwrap();
    let addr = server.local_addr();

    // A head that never ends, and a client that never sends anything, are
    // closed after the request timeout; the next client is served.
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let mut silent = TcpStream::connect(addr).unwrap();
    silent.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    let started = Instant::now();
    assert!(read_until_closed(&mut slow).is_empty());
    assert!(read_until_closed(&mut silent).is_empty());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(request(addr, "GET", "/healthz").status, 200);

    // A keep-alive client is closed at the connection timeout, answered
    // or not.
    let mut kept = TcpStream::connect(addr).unwrap();
    kept.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    let started = Instant::now();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let raw = read_until_closed(&mut kept);
    assert!(raw.starts_with(b"HTTP/1.1 200"), "{raw:?}");
    assert!(started.elapsed() < Duration::from_secs(2));

    // `stop` does not wait for connections in progress.
    let _idle = TcpStream::connect(addr).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let started = Instant::now();
    server.stop();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "stop took {:?}",
        started.elapsed()
    );
}

#[test]
fn probes_are_answered_while_hundreds_of_connections_idle_or_trickle() {
    let server = AdminServer::spawn(localhost(), Metrics::new(), Health::new()).unwrap();
    let addr = server.local_addr();
    let mut held: Vec<TcpStream> = (0..500)
        .map(|_| TcpStream::connect(addr).expect("connects"))
        .collect();
    // Half of them trickle a request head, a byte at a time.
    let head = b"GET /metrics HTTP/1.1\r\nHost: x\r\n";
    let mut slowest = Duration::ZERO;
    for round in 0..20 {
        for stream in held.iter_mut().step_by(2) {
            let _ = stream.write_all(&head[round % head.len()..][..1]);
        }
        for path in ["/healthz", "/metrics"] {
            let asked = Instant::now();
            assert_eq!(request(addr, "GET", path).status, 200, "{path}");
            slowest = slowest.max(asked.elapsed());
        }
    }
    eprintln!("slowest probe with 500 connections held: {slowest:?}");
    // The hand-written endpoint this replaced served one connection at a
    // time: each idle one delayed a probe by about 2 s.
    assert!(slowest < Duration::from_millis(500), "{slowest:?}");
    server.stop();
}

#[test]
fn admin_reports_a_taken_port() {
    let first = AdminServer::spawn(localhost(), Metrics::new(), Health::new()).unwrap();
    let taken = first.local_addr();
    match AdminServer::spawn(taken, Metrics::new(), Health::new()) {
        Err(MetricsError::Bind { addr, .. }) => assert_eq!(addr, taken),
        other => panic!("expected a bind error, got {other:?}"),
    }
    first.stop();
}

#[test]
fn dropping_the_server_stops_it() {
    let server = AdminServer::spawn(localhost(), Metrics::new(), Health::new()).unwrap();
    let addr = server.local_addr();
    let started = Instant::now();
    drop(server);
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(TcpStream::connect(addr).is_err());
}
