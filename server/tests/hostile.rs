//! Clients that try to hold the server's connection slots without sending
//! whole frames: byte tricklers (slowloris) and one host opening many
//! connections. Each test runs once per event loop.

mod common;

use common::*;
use cx_server::config::ServerConfig;
use cx_wire::protocol;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A TCP connection to the server from the loopback address `source`
/// (any 127.x.y.z works on Linux), so tests can play several hosts.
fn connect_from(source: Ipv4Addr, server: SocketAddr) -> TcpStream {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).expect("socket");
    let local = SockAddr::from(SocketAddr::from((source, 0)));
    socket.bind(&local).expect("binds the source address");
    socket
        .connect(&SockAddr::from(server))
        .expect("the kernel accepts");
    socket.into()
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
