//! Clients that try to hold the server's connection slots without sending
//! whole frames: byte tricklers (slowloris) and one host opening many
//! connections. Each test runs once per event loop.

mod common;

use common::*;
use cx_server::budget::{ByteReservations, SharedBudget};
use cx_server::config::ServerConfig;
use cx_server::metrics::Metrics;
use cx_server::sources::ConnectionLimiter;
use cx_server::worker::{CloseReason, Protocol, Shared, Worker, WorkerLimits};
use cx_wire::protocol::{self, ErrorCode};
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A connection from `source`.
fn connect_from(source: Ipv4Addr, server: SocketAddr) -> TcpStream {
    loopback_socket(source, None, server)
}

/// One encoded ping frame.
fn ping_frame(request_id: u64) -> Vec<u8> {
    let mut frame = Vec::new();
    protocol::encode_ping(&mut frame, request_id, 7);
    frame
}

/// Whether the server has closed `stream` (reads end or reset) within
/// `wait`; answers read meanwhile are discarded.
fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 256];
    stream
        .set_read_timeout(Some(Duration::from_millis(5)))
        .expect("sets a timeout");
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
        if Instant::now() >= deadline {
            return false;
        }
    }
}

#[test]
fn tricklers_lose_their_slots_and_a_real_client_is_served() {
    for io in io_modes() {
        let server = start(ServerConfig {
            connections_max: 8,
            connections_per_source_max: 8,
            frame_timeout_ms: 200,
            ..config(io)
        });
        let addr = server.local_addr();
        let frame = ping_frame(1);
        // Every slot taken by a client sending one byte of a ping every
        // 50 ms: each byte is activity, so only the frame timeout ends them.
        let mut tricklers: Vec<TcpStream> = (0..8)
            .map(|_| TcpStream::connect(addr).expect("connects"))
            .collect();
        let started = Instant::now();
        let mut closed = vec![false; tricklers.len()];
        let mut sent = 0;
        while closed.iter().any(|c| !c) && started.elapsed() < Duration::from_secs(5) {
            for (stream, closed) in tricklers.iter_mut().zip(&mut closed) {
                if *closed {
                    continue;
                }
                let byte = &frame[sent % frame.len()..][..1];
                if stream.write_all(byte).is_err() || closed_within(stream, Duration::ZERO) {
                    *closed = true;
                }
            }
            sent += 1;
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            closed.iter().all(|c| *c),
            "{io:?}: every trickler was closed within 5 s (closed: {closed:?})"
        );
        // A real client gets a slot and its answer at once.
        let served = Instant::now();
        let mut client = connect(&server);
        client.ping(9).expect("a real client is served");
        assert!(served.elapsed() < Duration::from_secs(2), "{io:?}");
        let (_, text) = scrape(&server, "/metrics");
        assert_eq!(sample(&text, "cx_frame_timeouts_total"), 8.0, "{io:?}");
        stop(server);
    }
}

#[test]
fn a_frame_split_within_the_frame_timeout_is_answered() {
    for io in io_modes() {
        let server = start(ServerConfig {
            frame_timeout_ms: 400,
            ..config(io)
        });
        let mut stream = TcpStream::connect(server.local_addr()).expect("connects");
        // Ten pings, each sent in two halves 30 ms apart, back to back:
        // the read buffer always holds part of a frame, but no frame
        // takes long.
        for id in 1..=10 {
            let frame = ping_frame(id);
            let (head, tail) = frame.split_at(frame.len() / 2);
            stream.write_all(head).expect("writes");
            std::thread::sleep(Duration::from_millis(30));
            stream.write_all(tail).expect("writes");
        }
        let mut answers = vec![0u8; 10 * ping_frame(0).len()];
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("sets a timeout");
        stream.read_exact(&mut answers).expect("ten pongs");
        let (_, text) = scrape(&server, "/metrics");
        assert_eq!(sample(&text, "cx_frame_timeouts_total"), 0.0, "{io:?}");
        stop(server);
    }
}

#[test]
fn one_source_cannot_take_more_than_its_share() {
    for io in io_modes() {
        let server = start(ServerConfig {
            connections_max: 16,
            connections_per_source_max: 4,
            ..config(io)
        });
        let addr = server.local_addr();
        let greedy = Ipv4Addr::new(127, 0, 0, 2);
        let mut held: Vec<TcpStream> = (0..4).map(|_| connect_from(greedy, addr)).collect();
        for (i, stream) in held.iter_mut().enumerate() {
            stream.write_all(&ping_frame(1)).expect("writes");
            let mut pong = vec![0u8; ping_frame(1).len()];
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .expect("sets a timeout");
            stream
                .read_exact(&mut pong)
                .unwrap_or_else(|e| panic!("{io:?}: connection {i} of the share is served: {e}"));
        }
        for _ in 0..2 {
            let mut extra = connect_from(greedy, addr);
            assert!(
                read_to_close(&mut extra).is_empty(),
                "{io:?}: a fifth connection from one source is closed at accept"
            );
        }
        // Another host is served meanwhile.
        let mut other = connect(&server);
        other.ping(3).expect("another source is served");
        // A freed place counts again for the greedy source.
        drop(held.pop());
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mut again = connect_from(greedy, addr);
            again.write_all(&ping_frame(2)).expect("writes");
            let mut pong = vec![0u8; ping_frame(2).len()];
            again
                .set_read_timeout(Some(Duration::from_secs(2)))
                .expect("sets a timeout");
            if again.read_exact(&mut pong).is_ok() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{io:?}: the freed place was reused"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let (_, text) = scrape(&server, "/metrics");
        assert!(
            sample(&text, "cx_connections_refused_source_total") >= 2.0,
            "{io:?}"
        );
        stop(server);
    }
}

/// A worker (no sockets) under an output budget of `budget_bytes` and an
/// input budget of `input_budget_bytes`, whose engine answers up to
/// `TOP_K_MAX` offers per impression.
fn worker_without_sockets(
    budget_bytes: usize,
    input_budget_bytes: usize,
    limits: WorkerLimits,
) -> Worker {
    let mut engine_config = cx_engine::EngineConfig {
        in_flight_max: 1 << 17,
        ..cx_engine::EngineConfig::default()
    };
    engine_config.decide.top_k = protocol::limits::TOP_K_MAX;
    let engine = cx_engine::Engine::builder()
        .config(engine_config)
        .build()
        .expect("the engine builds");
    let shared = Shared {
        index: 0,
        connections: Arc::new(ConnectionLimiter::new(
            limits.connections_max as u32,
            limits.connections_max,
        )),
        output: Arc::new(SharedBudget::new(budget_bytes, 1)),
        input: Arc::new(ByteReservations::new(input_budget_bytes)),
        http: Arc::default(),
    };
    Worker::new(engine, Metrics::new(), limits, shared)
}

/// A worker (no sockets) under `budget_bytes`, fed by `clients`
/// connections that each send one wide bid request whenever the worker
/// reads them, for `turns` loop turns, and never take their answers;
/// returns the most output the worker held after any turn.
fn peak_output_of_non_readers(budget_bytes: usize, clients: usize, turns: usize) -> usize {
    let limits = WorkerLimits {
        connections_max: clients,
        idle_timeout_ns: u64::MAX,
        slow_client_timeout_ns: u64::MAX,
        frame_timeout_ns: u64::MAX,
        deadline_default_ms: 0,
        deadline_margin_ms: 0,
    };
    let mut worker = worker_without_sockets(budget_bytes, 1 << 30, limits);
    let ids: Vec<_> = (0..clients)
        .map(|_| {
            worker
                .open(None, Protocol::Binary)
                .expect("room for every client")
        })
        .collect();
    let body = wide_bid_request(64);
    let mut dirty = Vec::new();
    let mut peak = 0;
    for turn in 0..turns as u64 {
        let mut frame = Vec::new();
        protocol::encode_score_openrtb(&mut frame, turn + 1, &body, true).expect("encodes");
        for &id in &ids {
            if worker.wants_read(id) {
                assert_eq!(worker.on_bytes(id, &frame), frame.len());
            }
        }
        worker.run_engine(1_767_225_600_000_000_000);
        worker.take_dirty(&mut dirty);
        peak = peak.max(worker.output_bytes());
    }
    peak
}

#[test]
fn clients_that_never_read_cannot_hold_more_output_than_the_budget() {
    const BUDGET: usize = 1 << 20;
    const CLIENTS: usize = 48;
    let capped = peak_output_of_non_readers(BUDGET, CLIENTS, 16);
    let uncapped = peak_output_of_non_readers(1 << 30, CLIENTS, 16);
    eprintln!("peak output: {capped} bytes under a {BUDGET}-byte budget, {uncapped} without");
    assert!(
        uncapped > 6 * BUDGET,
        "the scenario holds far more than the budget when nothing stops it: {uncapped}"
    );
    // The documented bound (docs/SERVER.md): the budget, plus the answers
    // to what every connection read in the turn that crossed it.
    let answer_max = protocol::limits::HEADER_BYTES + protocol::limits::DECISION_BYTES_MAX;
    assert!(
        capped <= BUDGET + CLIENTS * answer_max,
        "{capped} bytes held under a {BUDGET}-byte budget"
    );
}

/// Runs `clients` clients that never read, each sending two wide bid
/// requests per round, beside one client that pings between rounds:
/// every ping must be answered while the budget holds the others back.
#[test]
fn reading_clients_are_answered_while_the_budget_is_spent() {
    for io in io_modes() {
        let server = start(ServerConfig {
            output_budget_bytes: 64 << 10,
            slow_client_timeout_ms: 60_000,
            ..config(io)
        });
        let body = wide_bid_request(64);
        let mut held: Vec<TcpStream> = (0..32).map(|_| non_reader(server.local_addr())).collect();
        for stream in &held {
            stream
                .set_write_timeout(Some(Duration::from_millis(20)))
                .expect("sets a timeout");
        }
        let mut good = connect(&server);
        for round in 0..10 {
            let mut frames = Vec::new();
            for id in [2 * round + 1, 2 * round + 2] {
                protocol::encode_score_openrtb(&mut frames, id, &body, true).expect("encodes");
            }
            for stream in &mut held {
                // A paused connection is not read, so its writes block:
                // what does not go out in time is not needed.
                let _ = stream.write_all(&frames);
            }
            let asked = Instant::now();
            good.ping(round).expect("a reading client is answered");
            let answer = good
                .score_context(&context(round as u32), true)
                .expect("answered");
            expect_decision(&answer);
            assert!(
                asked.elapsed() < Duration::from_secs(3),
                "{io:?}: round {round}: answers took {:?}",
                asked.elapsed()
            );
        }
        let (_, text) = scrape(&server, "/metrics");
        assert!(
            sample(&text, "cx_output_budget_spent_total") >= 1.0,
            "{io:?}: the budget was reached"
        );
        drop(held);
        stop(server);
    }
}

/// A partial frame held while the connection's output was paused is not
/// late the moment the pause ends: its clock restarts, since the rest of
/// the frame was not being read meanwhile. (`cx serve` once closed
/// non-reading clients this way as soon as their output drained.)
#[test]
fn the_frame_clock_does_not_run_while_output_is_paused() {
    const FRAME_TIMEOUT: Duration = Duration::from_millis(100);
    let limits = WorkerLimits {
        connections_max: 1,
        idle_timeout_ns: u64::MAX,
        slow_client_timeout_ns: u64::MAX,
        frame_timeout_ns: FRAME_TIMEOUT.as_nanos() as u64,
        deadline_default_ms: 0,
        deadline_margin_ms: 0,
    };
    // A budget of one byte: any answer waiting pauses the connection.
    let mut worker = worker_without_sockets(1, 1 << 30, limits);
    let id = worker.open(None, Protocol::Binary).expect("room");
    let mut bytes = ping_frame(1);
    let second = ping_frame(2);
    bytes.extend_from_slice(&second[..second.len() / 2]);
    assert_eq!(worker.on_bytes(id, &bytes), bytes.len());
    let mut dirty = Vec::new();
    worker.take_dirty(&mut dirty);
    assert!(worker.is_write_paused(id), "the pong waits, over budget");

    let mut closable = Vec::new();
    std::thread::sleep(2 * FRAME_TIMEOUT);
    worker.closable(&mut closable);
    assert!(closable.is_empty(), "paused: not timed");
    let pending = worker.output(id).len();
    worker.sent(id, pending);
    worker.take_dirty(&mut dirty);
    assert!(!worker.is_write_paused(id));
    worker.closable(&mut closable);
    assert!(
        closable.is_empty(),
        "the clock restarted when the pause ended"
    );

    std::thread::sleep(2 * FRAME_TIMEOUT);
    worker.closable(&mut closable);
    assert_eq!(closable, [(id, CloseReason::FrameTimeout)], "then it runs");
}

/// A score_openrtb frame whose payload is `json_bytes` of spaces: large,
/// and refused as invalid JSON once whole (any answer will do).
fn large_frame(request_id: u64, json_bytes: usize) -> Vec<u8> {
    let mut frame = Vec::new();
    protocol::encode_score_openrtb(&mut frame, request_id, &vec![b' '; json_bytes], false)
        .expect("encodes");
    frame
}

/// A worker whose connections feed `frame`'s first `sent_bytes` each, as
/// an event loop would (at most the read capacity, 64 KiB per read, one
/// read per connection per turn), under an input budget of
/// `input_budget_bytes`, for `turns` turns; returns the worker, the
/// connections, and the most bytes reserved after any turn.
fn feed_large_frames(
    input_budget_bytes: usize,
    clients: usize,
    frame: &[u8],
    sent_bytes: usize,
    turns: usize,
) -> (Worker, Vec<cx_server::worker::ConnId>, usize) {
    let limits = WorkerLimits {
        connections_max: clients,
        idle_timeout_ns: u64::MAX,
        slow_client_timeout_ns: u64::MAX,
        frame_timeout_ns: FRAME_TIMEOUT.as_nanos() as u64,
        deadline_default_ms: 0,
        deadline_margin_ms: 0,
    };
    let mut worker = worker_without_sockets(1 << 30, input_budget_bytes, limits);
    let ids: Vec<_> = (0..clients)
        .map(|_| worker.open(None, Protocol::Binary).expect("room"))
        .collect();
    let mut fed = vec![0; clients];
    let mut dirty = Vec::new();
    let mut peak = 0;
    for _ in 0..turns {
        for (&id, fed) in ids.iter().zip(&mut fed) {
            let n = worker
                .read_capacity(id)
                .min(64 << 10)
                .min(sent_bytes - *fed);
            if n > 0 {
                assert_eq!(worker.on_bytes(id, &frame[*fed..*fed + n]), n);
                *fed += n;
            }
        }
        worker.take_dirty(&mut dirty);
        // As an event loop does; a read that finds room is tried each turn
        // anyway.
        worker.take_resumed(&mut dirty);
        peak = peak.max(worker.input_reserved_bytes());
    }
    (worker, ids, peak)
}

/// The frame timeout of the large-frame tests.
const FRAME_TIMEOUT: Duration = Duration::from_millis(100);

/// Clients that each send most of a maximal frame and stall hold no more
/// than the input budget beyond what their read buffers keep: one frame
/// gets its reservation, the others wait at 64 KiB, and the frame timeout
/// closes them all, giving the reservation back.
#[test]
fn stalled_large_frames_hold_no_more_than_the_input_budget() {
    const CLIENTS: usize = 16;
    let budget = cx_server::conn::READ_BUFFER_MAX;
    let frame = large_frame(1, protocol::limits::OPENRTB_JSON_BYTES_MAX);
    let (_, _, uncapped) = feed_large_frames(1 << 30, CLIENTS, &frame, 600 << 10, 20);
    let (mut worker, ids, capped) = feed_large_frames(budget, CLIENTS, &frame, 600 << 10, 20);
    eprintln!("reserved: {capped} bytes under a {budget}-byte budget, {uncapped} without");
    assert!(
        uncapped > 8 * budget,
        "without a useful budget every frame reserves: {uncapped}"
    );
    assert!(
        capped <= budget,
        "{capped} bytes reserved under a {budget}-byte budget"
    );
    let held: usize = ids.iter().map(|&id| worker.buffered_input(id)).sum();
    assert!(
        held <= budget + CLIENTS * cx_server::conn::READ_BUFFER_KEEP_BYTES,
        "{held} bytes held"
    );

    std::thread::sleep(2 * FRAME_TIMEOUT);
    let mut closable = Vec::new();
    worker.closable(&mut closable);
    assert_eq!(closable.len(), CLIENTS, "every stalled frame timed out");
    assert!(closable
        .iter()
        .all(|(_, why)| *why == CloseReason::FrameTimeout));
    for (id, why) in closable {
        worker.close(id, why);
    }
    assert_eq!(worker.input_reserved_bytes(), 0, "closing gives it back");
}

/// Large frames sent whole, more than the budget holds at once, all
/// arrive: each waits its turn for a reservation, and a frame that got one
/// completes and gives it back (no two frames can hold each other up).
#[test]
fn large_frames_beyond_the_budget_take_turns_and_all_arrive() {
    const CLIENTS: usize = 6;
    let budget = cx_server::conn::READ_BUFFER_MAX;
    let frame = large_frame(1, 700 << 10);
    let (worker, ids, peak) = feed_large_frames(budget, CLIENTS, &frame, frame.len(), 200);
    assert!(peak <= budget, "{peak} bytes reserved");
    for &id in &ids {
        assert_eq!(
            error_frames(worker.output(id)),
            [(1, ErrorCode::InvalidPayload)],
            "the frame arrived whole and was answered"
        );
    }
    assert_eq!(worker.input_reserved_bytes(), 0);
}

/// The same through the event loops: clients that each send a large
/// frame at once, more than the input budget holds, are all answered (a
/// connection granted its reservation is read again even with nothing to
/// send).
#[test]
fn large_frames_from_many_clients_are_all_answered() {
    for io in io_modes() {
        let server = start(ServerConfig {
            input_budget_bytes: cx_server::config::INPUT_BUDGET_BYTES_MIN,
            frame_timeout_ms: 20_000,
            ..config(io)
        });
        let frame = Arc::new(large_frame(9, 700 << 10));
        // Every client sends the first 100 KiB, so that all six frames are
        // under way (and five wait) before any is whole.
        let started = Arc::new(std::sync::Barrier::new(6));
        let writers: Vec<_> = (0..6)
            .map(|_| {
                let mut stream = TcpStream::connect(server.local_addr()).expect("connects");
                let (frame, started) = (Arc::clone(&frame), Arc::clone(&started));
                std::thread::spawn(move || {
                    let (head, rest) = frame.split_at(100 << 10);
                    stream.write_all(head).expect("sends the start");
                    started.wait();
                    std::thread::sleep(Duration::from_millis(200));
                    stream.write_all(rest).expect("sends the rest");
                    stream
                        .set_read_timeout(Some(Duration::from_secs(20)))
                        .expect("timeout");
                    let mut answer = vec![0u8; 256];
                    let n = stream.read(&mut answer).expect("answered");
                    error_frames(&answer[..n])
                })
            })
            .collect();
        for w in writers {
            assert_eq!(
                w.join().expect("a client"),
                [(9, ErrorCode::InvalidPayload)],
                "{io:?}"
            );
        }
        let (_, text) = scrape(&server, "/metrics");
        assert!(
            sample(&text, "cx_input_budget_spent_total") >= 5.0,
            "{io:?}: five frames waited their turn"
        );
        assert_eq!(sample(&text, "cx_input_large_bytes"), 0.0, "{io:?}");
        stop(server);
    }
}
