//! The server end to end: `Server::start` on an ephemeral port, driven by
//! the client library over real sockets, once per event loop (epoll, and
//! io_uring where this kernel allows it). Covers every message type,
//! concurrent pipelined connections, malformed frames, slow and idle
//! clients, overload, connection limits, metrics, reload, and shutdown
//! with requests in flight. `cx serve` itself (signals, config precedence)
//! is tested at the end through the binary.

mod common;

use common::*;
use cx_server::config::{IoMode, ServerConfig};
use cx_wire::client::{Client, ClientError, ResponseBody};
use cx_wire::protocol::{self, ErrorCode, Hello};
use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[test]
fn every_message_type_is_answered() {
    for io in io_modes() {
        let server = start(config(io));
        let mut client = connect(&server);
        let ack = client.hello().expect("hello is answered");
        assert_eq!(ack.version, protocol::VERSION, "{io:?}");
        client.ping(42).expect("ping is answered with its nonce");

        let response = client.score_openrtb(&fixture(), false).expect("answered");
        let decision = expect_decision(&response);
        assert!(!decision.imps.is_empty(), "{io:?}: one entry per imp");
        assert!(decision.imps.iter().all(|i| !i.imp_id.is_empty()));

        let response = client.score_context(&context(1), true).expect("answered");
        let decision = expect_decision(&response);
        assert_eq!(decision.imps.len(), 1);
        assert!(
            decision.imps[0].simulated,
            "{io:?}: the simulate flag holds"
        );

        // A server-only type from a client is refused, and the connection
        // goes on.
        let mut frame = Vec::new();
        protocol::encode_pong(&mut frame, 77, 1);
        client.send_raw(&frame).expect("sends");
        client.flush().expect("flushes");
        let response = client.recv().expect("answered");
        assert_eq!(response.request_id, 77);
        assert!(
            matches!(
                response.body,
                ResponseBody::Error {
                    code: ErrorCode::UnknownMessageType,
                    ..
                }
            ),
            "{io:?}: {response:?}"
        );
        client.ping(43).expect("the connection still works");
        stop(server);
    }
}

/// A started server is ready (`/readyz`) once every worker runs, and its
/// metrics name the model serving (`cx_model_info`).
#[test]
fn a_started_server_is_ready_and_names_its_model() {
    for io in io_modes() {
        let server = start(ServerConfig {
            workers: 2,
            ..config(io)
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut ready = scrape(&server, "/readyz");
        while ready.0 != 200 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
            ready = scrape(&server, "/readyz");
        }
        assert_eq!(ready.0, 200, "{io:?}: {}", ready.1);
        assert!(ready.1.ends_with("\r\n\r\nready\n"), "{io:?}: {}", ready.1);
        let (_, text) = scrape(&server, "/metrics");
        let model = server.model();
        let series = format!(
            "cx_model_info{{name=\"{}\",version=\"{}\",id=\"{}\"}}",
            model.name, model.version, model.id
        );
        assert_eq!(sample(&text, &series), 1.0, "{io:?}: {text}");
        stop(server);
    }
}

/// Busy polling serves like the default loop, idle gaps included, and
/// shuts down the same way.
#[test]
fn a_busy_polling_worker_answers_and_shuts_down() {
    for io in io_modes() {
        let server = start(ServerConfig {
            busy_poll: true,
            ..config(io)
        });
        let mut client = connect(&server);
        for i in 0..20u32 {
            client.ping(u64::from(i)).expect("ping is answered");
            let response = client.score_context(&context(i), false).expect("answered");
            expect_decision(&response);
            if i % 5 == 0 {
                // Idle between requests: nothing in flight, still polling.
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        stop(server);
    }
}

#[test]
fn many_connections_pipeline_concurrently() {
    const CONNECTIONS: usize = 12;
    const REQUESTS: usize = 200;
    for io in io_modes() {
        // Two workers on one port (SO_REUSEPORT), each with its own engine.
        let server = start(ServerConfig {
            workers: 2,
            ..config(io)
        });
        let addr = server.local_addr();
        let json = fixture();
        let threads: Vec<_> = (0..CONNECTIONS)
            .map(|c| {
                let json = json.clone();
                std::thread::spawn(move || {
                    let mut client = Client::connect(addr).expect("connects");
                    client
                        .set_timeout(Some(Duration::from_secs(10)))
                        .expect("timeout");
                    let mut sent = Vec::new();
                    for i in 0..REQUESTS {
                        let id = if i % 2 == 0 {
                            client.send_openrtb(&json, true)
                        } else {
                            client.send_context(&context((c * REQUESTS + i) as u32), false)
                        };
                        sent.push(id.expect("queued"));
                        if i % 32 == 31 {
                            client.flush().expect("flushes");
                        }
                    }
                    client.flush().expect("flushes");
                    let mut answered = BTreeMap::new();
                    for _ in 0..REQUESTS {
                        let r = client.recv().expect("every request is answered");
                        assert!(matches!(r.body, ResponseBody::Decision(_)), "{r:?}");
                        *answered.entry(r.request_id).or_insert(0) += 1;
                    }
                    sent.sort_unstable();
                    let ids: Vec<u64> = answered.keys().copied().collect();
                    assert_eq!(ids, sent, "each request id answered");
                    assert!(answered.values().all(|&n| n == 1), "exactly once");
                })
            })
            .collect();
        for t in threads {
            t.join().expect("a client thread failed");
        }
        let (_, text) = scrape(&server, "/metrics");
        let predictions = sample(&text, "ml_predictions_total");
        // Half the requests are OpenRTB with one or more imps each.
        assert!(
            predictions >= (CONNECTIONS * REQUESTS) as f64,
            "{io:?}: {predictions}"
        );
        stop(server);
    }
}

/// A ring of 2 submission entries, far fewer than the operations the loop
/// keeps outstanding (an accept, and a receive and a send per connection):
/// entries that find the queue full wait in the backlog, and every request
/// is still answered exactly once.
#[test]
fn a_tiny_io_uring_ring_backlogs_entries_and_answers_everything() {
    const CONNECTIONS: usize = 16;
    const REQUESTS: usize = 100;
    if !io_modes().contains(&IoMode::Uring) {
        return;
    }
    let server = start(ServerConfig {
        uring_entries: 2,
        ..config(IoMode::Uring)
    });
    let addr = server.local_addr();
    let threads: Vec<_> = (0..CONNECTIONS)
        .map(|c| {
            std::thread::spawn(move || {
                let mut client = Client::connect(addr).expect("connects");
                client
                    .set_timeout(Some(Duration::from_secs(10)))
                    .expect("timeout");
                let mut sent: Vec<u64> = (0..REQUESTS)
                    .map(|i| {
                        let ctx = context((c * REQUESTS + i) as u32);
                        client.send_context(&ctx, true).expect("queued")
                    })
                    .collect();
                client.flush().expect("flushes");
                let mut answered: Vec<u64> = (0..REQUESTS)
                    .map(|_| client.recv().expect("every request is answered").request_id)
                    .collect();
                sent.sort_unstable();
                answered.sort_unstable();
                assert_eq!(answered, sent, "each request answered exactly once");
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a client thread failed");
    }
    stop(server);
}

#[test]
fn malformed_frames_get_errors_and_fatal_ones_close() {
    let header = |magic: &[u8; 4], version: u8, kind: u8, len: u32, id: u64| {
        let mut h = Vec::new();
        h.extend_from_slice(magic);
        h.push(version);
        h.push(kind);
        h.extend_from_slice(&0u16.to_le_bytes());
        h.extend_from_slice(&len.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&id.to_le_bytes());
        h
    };
    for io in io_modes() {
        let server = start(config(io));
        let fatal: [(&str, Vec<u8>, ErrorCode); 3] = [
            (
                "bad magic",
                header(b"XXXX", 1, 0x03, 8, 5),
                ErrorCode::MalformedFrame,
            ),
            (
                "oversize length",
                header(b"CXWP", 1, 0x11, u32::MAX, 6),
                ErrorCode::FrameTooLarge,
            ),
            (
                "garbage",
                b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
                ErrorCode::MalformedFrame,
            ),
        ];
        for (what, bytes, code) in fatal {
            let mut stream = TcpStream::connect(server.local_addr()).expect("connects");
            stream.write_all(&bytes).expect("writes");
            let answer = read_to_close(&mut stream);
            let errors = error_frames(&answer);
            assert_eq!(errors.len(), 1, "{io:?} {what}: one final error frame");
            assert_eq!(errors[0].1, code, "{io:?} {what}");
        }

        // Recoverable: an unknown type and a bad payload are answered with
        // the frame's request id, and the connection goes on.
        let mut client = connect(&server);
        let mut unknown = header(b"CXWP", 1, 0x7f, 8, 9);
        unknown.extend_from_slice(&[0; 8]);
        client.send_raw(&unknown).expect("sends");
        client.flush().expect("flushes");
        let r = client.recv().expect("answered");
        assert_eq!(r.request_id, 9);
        assert!(matches!(
            r.body,
            ResponseBody::Error {
                code: ErrorCode::UnknownMessageType,
                ..
            }
        ));
        let r = client.score_openrtb(b"{not json", false).expect("answered");
        assert!(
            matches!(
                &r.body,
                ResponseBody::Error {
                    code: ErrorCode::InvalidPayload,
                    ..
                }
            ),
            "{io:?}: {r:?}"
        );
        client.ping(1).expect("the connection still works");

        // Truncated: half a frame, then the client goes away; the server
        // stays up.
        let mut stream = TcpStream::connect(server.local_addr()).expect("connects");
        let mut frame = Vec::new();
        protocol::encode_score_openrtb(&mut frame, 3, &fixture(), false).expect("encodes");
        stream.write_all(&frame[..frame.len() / 2]).expect("writes");
        drop(stream);
        let mut client = connect(&server);
        client
            .ping(2)
            .expect("the server still serves after a truncated frame");

        let (_, text) = scrape(&server, "/metrics");
        assert!(
            sample(&text, "cx_errors_total{code=\"malformed_frame\"}") >= 2.0,
            "{io:?}"
        );
        assert!(
            sample(&text, "cx_errors_total{code=\"frame_too_large\"}") >= 1.0,
            "{io:?}"
        );
        stop(server);
    }
}

#[test]
fn a_slow_client_is_cut_off_without_stalling_others() {
    for io in io_modes() {
        let server = start(ServerConfig {
            slow_client_timeout_ms: 300,
            ..config(io)
        });
        // The slow client pipelines far more responses than the socket
        // buffers hold (its own receive buffer is made small) and never
        // reads.
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("a socket");
        socket.set_recv_buffer_size(4096).expect("sets SO_RCVBUF");
        socket
            .connect(&server.local_addr().into())
            .expect("connects");
        let mut slow: TcpStream = socket.into();
        slow.set_write_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let writer = std::thread::spawn(move || {
            // Batches under the in-flight limit, until the server stops
            // reading (the write blocks, then times out) or cuts it off.
            let mut frames = Vec::new();
            for batch in 0..400u64 {
                frames.clear();
                for id in batch * 500 + 1..=batch * 500 + 500 {
                    protocol::encode_score_context(&mut frames, id, &context(id as u32), true)
                        .expect("encodes");
                }
                if slow.write_all(&frames).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            slow
        });
        std::thread::sleep(Duration::from_millis(100));
        let started = Instant::now();
        let mut other = connect(&server);
        other.ping(5).expect("another client is served meanwhile");
        assert!(started.elapsed() < Duration::from_secs(2), "{io:?}");

        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (_, text) = scrape(&server, "/metrics");
            if sample(&text, "cx_connection_timeouts_total") >= 1.0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{io:?}: the slow client was never cut off:\n{}",
                text.lines()
                    .filter(|l| l.starts_with("cx_"))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let slow = writer.join().expect("the writer thread ends");
        drop(slow);
        other.ping(6).expect("the other client still works");
        stop(server);
    }
}

#[test]
fn a_client_that_half_closes_still_gets_its_answers() {
    for io in io_modes() {
        let server = start(config(io));
        let mut stream = TcpStream::connect(server.local_addr()).expect("connects");
        let mut frames = Vec::new();
        protocol::encode_ping(&mut frames, 1, 7);
        protocol::encode_score_context(&mut frames, 2, &context(1), true).expect("encodes");
        stream.write_all(&frames).expect("writes");
        stream
            .shutdown(std::net::Shutdown::Write)
            .expect("half-closes");
        let answer = read_to_close(&mut stream);
        let mut ids = Vec::new();
        let mut rest = &answer[..];
        while let protocol::Decoded::Frame {
            header, consumed, ..
        } = protocol::decode_frame(rest)
        {
            ids.push(header.request_id);
            rest = &rest[consumed..];
        }
        assert_eq!(ids, vec![1, 2], "{io:?}: the pong, then the decision");
        assert!(error_frames(&answer).is_empty(), "{io:?}");
        stop(server);
    }
}

#[test]
fn idle_connections_are_closed() {
    for io in io_modes() {
        let server = start(ServerConfig {
            idle_timeout_ms: 200,
            ..config(io)
        });
        let mut stream = TcpStream::connect(server.local_addr()).expect("connects");
        let started = Instant::now();
        let answer = read_to_close(&mut stream);
        assert!(answer.is_empty(), "{io:?}: closed without a frame");
        assert!(
            started.elapsed() >= Duration::from_millis(150),
            "{io:?}: not before the timeout"
        );
        stop(server);
    }
}

#[test]
fn overload_is_answered_at_once_and_nothing_accepted_is_lost() {
    for io in io_modes() {
        let mut cfg = config(io);
        cfg.engine.in_flight_max = 8;
        let server = start(cfg);
        let mut client = connect(&server);
        let mut frames = Vec::new();
        let total = 400u64;
        for id in 1..=total {
            protocol::encode_score_context(&mut frames, id, &context(id as u32), false)
                .expect("encodes");
        }
        // One write: the server reads many frames per turn, far more than
        // the engine's 8 places.
        client.send_raw(&frames).expect("sends");
        client.flush().expect("flushes");
        let mut decided = 0;
        let mut overloaded = 0;
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..total {
            let r = client.recv().expect("every request is answered");
            assert!(seen.insert(r.request_id), "answered once");
            match r.body {
                ResponseBody::Decision(_) => decided += 1,
                ResponseBody::Error {
                    code: ErrorCode::Overloaded,
                    ..
                } => overloaded += 1,
                other => panic!("{io:?}: unexpected {other:?}"),
            }
        }
        assert_eq!(seen.len() as u64, total);
        assert!(overloaded > 0, "{io:?}: the full engine refused some");
        assert!(decided >= 8, "{io:?}: and decided what it took");
        let (_, text) = scrape(&server, "/metrics");
        assert_eq!(
            sample(&text, "cx_overloaded_total"),
            overloaded as f64,
            "{io:?}"
        );
        stop(server);
    }
}

#[test]
fn connections_over_the_limit_are_closed_at_accept() {
    for io in io_modes() {
        let server = start(ServerConfig {
            connections_max: 2,
            ..config(io)
        });
        let mut a = connect(&server);
        let mut b = connect(&server);
        a.ping(1).expect("first is served");
        b.ping(1).expect("second is served");
        let mut c = TcpStream::connect(server.local_addr()).expect("the kernel accepts");
        assert!(
            read_to_close(&mut c).is_empty(),
            "{io:?}: the third is closed"
        );
        drop(a);
        // Once one leaves, a new one is served.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mut d = connect(&server);
            if d.ping(2).is_ok() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{io:?}: the freed place was never reused"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let (_, text) = scrape(&server, "/metrics");
        assert!(sample(&text, "cx_connections_refused_total") >= 1.0);
        stop(server);
    }
}

#[test]
fn shutdown_answers_every_accepted_request() {
    for io in io_modes() {
        let server = start(config(io));
        let mut client = connect(&server);
        let json = fixture();
        let mut sent = Vec::new();
        for i in 0..300u32 {
            let id = if i % 3 == 0 {
                client.send_openrtb(&json, true)
            } else {
                client.send_context(&context(i), false)
            };
            sent.push(id.expect("queued"));
        }
        client.flush().expect("flushes");
        server.shutdown();
        let (status, _) = scrape(&server, "/healthz");
        assert_eq!(status, 503, "{io:?}: draining");
        let waiter = std::thread::spawn(move || server.wait());
        let mut answered = BTreeMap::new();
        loop {
            match client.recv() {
                Ok(r) => {
                    let kind = match r.body {
                        ResponseBody::Decision(_) => "decision",
                        ResponseBody::Error {
                            code: ErrorCode::ShuttingDown,
                            ..
                        } => "shutting_down",
                        other => panic!("{io:?}: unexpected {other:?}"),
                    };
                    assert!(answered.insert(r.request_id, kind).is_none(), "once each");
                }
                Err(ClientError::Closed { buffered: 0 }) => break,
                Err(e) => panic!("{io:?}: {e:?}"),
            }
        }
        let ids: Vec<u64> = answered.keys().copied().collect();
        assert_eq!(ids, sent, "{io:?}: every request answered before the close");
        waiter
            .join()
            .expect("the waiter ends")
            .expect("the server drained cleanly");
    }
}

#[test]
fn reload_swaps_the_model_and_a_bad_file_keeps_the_old_one() {
    let dir = temp_dir("reload");
    let model = dir.join("model.safetensors");
    std::fs::write(&model, cx_engine::DEFAULT_MODEL_BYTES).expect("writes the model");
    for io in io_modes() {
        std::fs::write(&model, cx_engine::DEFAULT_MODEL_BYTES).expect("writes the model");
        let server = start(ServerConfig {
            model: Some(model.clone()),
            ..config(io)
        });
        let mut client = connect(&server);
        expect_decision(&client.score_context(&context(1), true).expect("answered"));
        let info = server.reload().expect("the same model reloads");
        assert_eq!(info.id, server.model().id);

        std::fs::write(&model, &cx_engine::DEFAULT_MODEL_BYTES[..100]).expect("truncates");
        let err = server.reload().expect_err("a truncated model is refused");
        assert!(
            cx_server::error::render_chain(&err).contains("model"),
            "{io:?}: {err}"
        );
        // Still serving (the old model), after the workers saw the order.
        std::thread::sleep(Duration::from_millis(100));
        let r = client.score_context(&context(2), true).expect("answered");
        expect_decision(&r);
        let (_, text) = scrape(&server, "/metrics");
        assert_eq!(
            sample(&text, "cx_model_reloads_total{result=\"ok\"}"),
            1.0,
            "{io:?}"
        );
        stop(server);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The default model's bytes with `edit` applied to its safetensors header
/// JSON (which must keep its length) or to its tensor data.
fn default_model_edited(edit: impl FnOnce(&mut Vec<u8>, usize, &serde_json::Value)) -> Vec<u8> {
    let mut bytes = cx_engine::DEFAULT_MODEL_BYTES.to_vec();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let header: serde_json::Value =
        serde_json::from_slice(&bytes[8..8 + header_len]).expect("the header is JSON");
    edit(&mut bytes, 8 + header_len, &header);
    bytes
}

#[test]
fn every_reload_is_counted_once_with_its_reason() {
    let dir = temp_dir("reload-reasons");
    let model = dir.join("model.safetensors");
    std::fs::write(&model, cx_engine::DEFAULT_MODEL_BYTES).expect("writes the model");
    let nan_weight = default_model_edited(|bytes, data_start, header| {
        let start = header["fc2.weight"]["data_offsets"][0]
            .as_u64()
            .expect("offsets") as usize;
        bytes[data_start + start..data_start + start + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    });
    let repeated_offer = default_model_edited(|bytes, data_start, _| {
        let header = &mut bytes[8..data_start];
        let at = header
            .windows(5)
            .position(|w| w == b"1001,")
            .expect("the default model scores offer 1001");
        header[at..at + 4].copy_from_slice(b"1000");
    });
    let mut corrupt_header = cx_engine::DEFAULT_MODEL_BYTES.to_vec();
    corrupt_header[8] = b'!';
    let small = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../backends/tests/fixtures/snntorch_net_small.safetensors"
    ))
    .expect("the small fixture model");
    let io = io_modes()[0];
    let server = start(ServerConfig {
        model: Some(model.clone()),
        workers: 2,
        ..config(io)
    });
    let cases: [(&str, Option<&[u8]>); 6] = [
        ("ok", Some(cx_engine::DEFAULT_MODEL_BYTES)),
        ("read_error", None),
        ("invalid_model", Some(&corrupt_header)),
        ("invalid_model", Some(&nan_weight)),
        ("invalid_model", Some(&repeated_offer)),
        ("incompatible", Some(&small)),
    ];
    for (expected, content) in cases {
        match content {
            Some(bytes) => std::fs::write(&model, bytes).expect("writes the model"),
            None => std::fs::remove_file(&model).expect("removes the model"),
        }
        let outcome = server.reload();
        assert_eq!(outcome.is_ok(), expected == "ok", "{expected}: {outcome:?}");
    }
    std::thread::sleep(Duration::from_millis(100));
    let (_, text) = scrape(&server, "/metrics");
    for (result, count) in [
        ("ok", 1.0),
        ("read_error", 1.0),
        ("invalid_model", 3.0),
        ("invalid_fallback", 0.0),
        ("incompatible", 1.0),
    ] {
        let series = format!("cx_model_reloads_total{{result=\"{result}\"}}");
        assert_eq!(
            sample(&text, &series),
            count,
            "{series}, with 2 workers:\n{text}"
        );
    }
    assert_eq!(sample(&text, "cx_model_swap_failures_total"), 0.0);
    // Still serving the model that was good.
    let mut client = connect(&server);
    expect_decision(&client.score_context(&context(1), true).expect("answered"));
    stop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn metrics_and_health_are_served() {
    for io in io_modes() {
        let server = start(config(io));
        let (status, body) = scrape(&server, "/healthz");
        assert_eq!(status, 200, "{body}");
        let mut client = connect(&server);
        for i in 0..5 {
            expect_decision(&client.score_context(&context(i), false).expect("answered"));
        }
        // The same context again is a cache hit.
        expect_decision(&client.score_context(&context(0), false).expect("answered"));
        let (_, text) = scrape(&server, "/metrics");
        assert_eq!(sample(&text, "ml_predictions_total"), 6.0, "{io:?}");
        assert!(sample(&text, "ml_cache_hits_total") >= 1.0, "{io:?}");
        assert!(sample(&text, "ml_cache_misses_total") >= 1.0, "{io:?}");
        // One inference batch per round trip that missed the cache; one
        // decision time per request.
        assert_eq!(
            sample(&text, "ml_inference_duration_seconds_count"),
            5.0,
            "{io:?}"
        );
        assert_eq!(
            sample(&text, "cx_decision_duration_seconds_count"),
            6.0,
            "{io:?}"
        );
        assert_eq!(sample(&text, "cx_connections_active"), 1.0, "{io:?}");
        stop(server);
    }
}

#[test]
fn hello_with_no_shared_version_closes() {
    for io in io_modes() {
        let server = start(config(io));
        let mut stream = TcpStream::connect(server.local_addr()).expect("connects");
        let mut frame = Vec::new();
        protocol::encode_hello(
            &mut frame,
            1,
            Hello {
                min_version: 9,
                max_version: 9,
            },
        );
        stream.write_all(&frame).expect("writes");
        let errors = error_frames(&read_to_close(&mut stream));
        assert_eq!(errors, vec![(1, ErrorCode::UnsupportedVersion)], "{io:?}");
        stop(server);
    }
}

#[test]
fn echo_mode_sends_every_byte_back() {
    for io in io_modes() {
        let server = start(ServerConfig {
            echo: true,
            ..config(io)
        });
        let mut client = connect(&server);
        // Clients of the echo baseline send `pong` frames: echoed, they
        // read as answers.
        let mut frames = Vec::new();
        for id in 1..=500u64 {
            protocol::encode_pong(&mut frames, id, id * 3);
        }
        client.send_raw(&frames).expect("sends");
        client.flush().expect("flushes");
        for id in 1..=500u64 {
            let r = client.recv().expect("echoed");
            assert_eq!(r.request_id, id, "{io:?}: in order");
            assert_eq!(r.body, ResponseBody::Pong(id * 3));
        }
        let (_, text) = scrape(&server, "/metrics");
        assert_eq!(
            sample(&text, "ml_predictions_total"),
            0.0,
            "{io:?}: no engine"
        );
        stop(server);
    }
}

// ---------------------------------------------------------------------------
// The `cx serve` binary: signals and configuration.

#[test]
fn cx_serve_drains_on_sigterm_and_reloads_on_sighup() {
    let dir = temp_dir("drain");
    for io in io_modes() {
        let log = dir.join(format!("{}.log", io_label(io)));
        let ServeProcess {
            mut child,
            addr,
            admin,
            started,
            ..
        } = ServeProcess::spawn(&["--admin-listen", "", "--io", io_label(io)], &log);
        assert_eq!(started["io"], io_label(io));
        assert!(admin.is_none(), "the admin port is off");

        let mut client = Client::connect(addr).expect("connects");
        client
            .set_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        client.ping(1).expect("served");
        signal(child.id(), "HUP");
        let mut sent = Vec::new();
        for i in 0..200u32 {
            sent.push(client.send_context(&context(i), false).expect("queued"));
        }
        client.flush().expect("flushes");
        signal(child.id(), "TERM");
        let mut answered = Vec::new();
        loop {
            match client.recv() {
                Ok(r) => {
                    assert!(
                        matches!(
                            r.body,
                            ResponseBody::Decision(_)
                                | ResponseBody::Error {
                                    code: ErrorCode::ShuttingDown,
                                    ..
                                }
                        ),
                        "{r:?}"
                    );
                    answered.push(r.request_id);
                }
                Err(ClientError::Closed { buffered: 0 }) => break,
                Err(e) => panic!("{io:?}: {e:?}"),
            }
        }
        answered.sort_unstable();
        assert_eq!(answered, sent, "{io:?}: every request answered");
        let status = child.wait().expect("exits");
        let log = std::fs::read_to_string(&log).expect("the log");
        assert!(status.success(), "{io:?}: exit {status:?}\n{log}");
        assert!(
            log.contains("model reload ordered"),
            "{io:?}: SIGHUP reloads:\n{log}"
        );
        assert!(log.contains("shutting down"), "{log}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn io_label(io: IoMode) -> &'static str {
    io.label()
}

#[test]
fn cx_serve_config_precedence_is_file_then_env_then_flags() {
    let dir = temp_dir("serve-config");
    let file: PathBuf = dir.join("serve.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:7001\"\nworkers = 3\nidle_timeout_ms = 5000\n[engine.batch]\nbatch_max = 4\n",
    )
    .expect("writes");
    let output = cx()
        .args(["serve", "--print-config", "--config"])
        .arg(&file)
        .args(["--workers", "2"])
        .env("CX_SERVE_WORKERS", "5")
        .env("CX_SERVE_IDLE_TIMEOUT_MS", "7000")
        .env("CX_ENGINE_BATCH__BATCH_MAX", "16")
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let config: toml::Value = toml::from_str(&text).expect("prints TOML");
    assert_eq!(
        config["listen"].as_str(),
        Some("127.0.0.1:7001"),
        "from the file"
    );
    assert_eq!(
        config["workers"].as_integer(),
        Some(2),
        "the flag beats env and file"
    );
    assert_eq!(
        config["idle_timeout_ms"].as_integer(),
        Some(7000),
        "env beats the file"
    );
    assert_eq!(
        config["engine"]["batch"]["batch_max"].as_integer(),
        Some(16),
        "engine env"
    );

    let output = cx()
        .args(["serve", "--print-config", "--config"])
        .arg(&file)
        .env("CX_SERVE_CONNECTIONS_MAX", "0")
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(err.contains("connections_max"), "names the key: {err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `cx serve --log-format json` writes one JSON object per log line, with
/// the level and the message's fields, for log pipelines.
#[test]
fn cx_serve_logs_json_lines_when_asked() {
    let dir = temp_dir("log-json");
    let log = dir.join("stderr.log");
    let mut server = ServeProcess::spawn(&["--log-format", "json"], &log);
    signal(server.pid, "TERM");
    assert!(server.child.wait().expect("exits").success());
    let text = std::fs::read_to_string(&log).expect("the log");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let serving = lines
        .iter()
        .find(|l| l["fields"]["message"] == "serving")
        .unwrap_or_else(|| panic!("no serving line in {text}"));
    assert_eq!(serving["level"], "INFO");
    assert_eq!(serving["fields"]["workers"], 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `cx completions SHELL` prints a completion script naming the commands.
#[test]
fn cx_completions_prints_a_script_per_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = cx().args(["completions", shell]).output().expect("runs");
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8(out.stdout).expect("UTF-8");
        assert!(
            script.contains("serve") && script.contains("log-format"),
            "{shell}: {script}"
        );
    }
    let out = cx().args(["completions", "tcsh"]).output().expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("tcsh"));
}

/// `cx catalog init` writes a catalog with one offer per model column,
/// which loads as is, and never overwrites a file.
#[test]
fn cx_catalog_init_writes_a_loadable_skeleton_for_the_models_offers() {
    let dir = temp_dir("catalog-init");
    let out = dir.join("catalog.toml");
    let _ = std::fs::remove_file(&out);
    let run = cx()
        .args(["catalog", "init", "--out"])
        .arg(&out)
        .output()
        .expect("runs");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let text = std::fs::read_to_string(&out).expect("written");
    assert!(text.contains("PLACEHOLDER"), "{text}");
    let catalog = cx_domain::catalog::Catalog::from_toml_str(&text).expect("loads");
    let model = cx_engine::default_model().expect("the bundled model");
    assert_eq!(catalog.ids(), model.meta().offer_ids.as_slice());

    let again = cx()
        .args(["catalog", "init", "--out"])
        .arg(&out)
        .output()
        .expect("runs");
    assert!(!again.status.success(), "an existing file is refused");
    assert!(String::from_utf8_lossy(&again.stderr).contains("catalog.toml"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A catalog that overlaps the model only partly is served with a warning
/// and counted (`cx_catalog_unscored_offers`), or refused by name under
/// `engine.catalog_overlap = "refuse"`.
#[test]
fn a_partly_overlapping_catalog_is_counted_or_refused() {
    let dir = temp_dir("overlap");
    let path = dir.join("catalog.toml");
    let offers = [1000, 1001, 9999]
        .map(cx_domain::catalog::OfferSpec::new)
        .to_vec();
    let catalog = cx_domain::catalog::Catalog::from_offers(offers).expect("valid");
    std::fs::write(&path, catalog.to_toml()).expect("written");

    let io = io_modes()[0];
    let server = start(ServerConfig {
        catalog: Some(path.clone()),
        ..config(io)
    });
    let (_, text) = scrape(&server, "/metrics");
    assert_eq!(sample(&text, "cx_catalog_unscored_offers"), 1.0);
    stop(server);

    let mut refusing = ServerConfig {
        catalog: Some(path),
        ..config(io)
    };
    refusing.engine.catalog_overlap = cx_engine::CatalogOverlap::Refuse;
    let error = match cx_server::serve::Server::start(refusing) {
        Ok(_) => panic!("a partial overlap is refused"),
        Err(e) => format!("{e:#}: {:?}", std::error::Error::source(&e)),
    };
    assert!(error.contains("9999") && error.contains("1002"), "{error}");
    let _ = std::fs::remove_dir_all(&dir);
}
