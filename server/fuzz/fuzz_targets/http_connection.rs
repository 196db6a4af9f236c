//! Fuzz target: the HTTP bidder's per-connection state machine,
//! `cx_server::http::HttpConnection` (httparse heads, gzip bodies, the
//! OpenRTB parser, notices, answers in order), with no engine and no
//! socket.
//!
//! Input layout: the received byte stream, then 4 control bytes at the
//! end, as for the `connection` target:
//!
//! - bytes 0-1 (u16 LE): where the stream is split into two `on_bytes`
//!   calls (taken modulo its length + 1);
//! - byte 2: which submissions are refused (bit `k % 8` refuses the
//!   `k`-th);
//! - byte 3: bit 0 decide every ticket between the chunks, bit 1 in
//!   reverse order, bit 2 `shutdown()`, bit 3 send only half of the output.
//!
//! Checked after every step: no panic; the output is a sequence of whole
//! HTTP/1.1 answers (or a prefix of one), each with a status the bidder
//! sends and a body of its Content-Length; answers never outnumber the
//! requests read; once every ticket is decided nothing is in flight.
#![no_main]

use cx_server::conn::ImpLists;
use cx_server::http::{HttpConnection, HttpSettings, STATUSES};
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

#[path = "common/stand_in.rs"]
mod stand_in;
use stand_in::StandIn;

/// Checks that `out` is whole answers and at most one partial one; returns
/// how many are whole.
fn answers(out: &[u8]) -> u64 {
    let mut pos = 0;
    let mut n = 0;
    while pos < out.len() {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut response = httparse::Response::new(&mut headers);
        let head = match response.parse(&out[pos..]) {
            Ok(httparse::Status::Complete(h)) => h,
            Ok(httparse::Status::Partial) => return n,
            Err(e) => panic!("the bidder wrote a bad head at {pos}: {e}"),
        };
        let status = response.code.expect("a status");
        assert!(
            status == 100 || STATUSES.contains(&status),
            "status {status} is not one the bidder sends"
        );
        let length = response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
            .map(|h| {
                std::str::from_utf8(h.value)
                    .unwrap()
                    .parse::<usize>()
                    .unwrap()
            });
        match status {
            100 | 204 => assert_eq!(length, None, "{status} has no body"),
            _ => assert!(length.is_some(), "{status} without Content-Length"),
        }
        let end = pos + head + length.unwrap_or(0);
        if end > out.len() {
            return n;
        }
        if status != 100 {
            n += 1;
        }
        pos = end;
    }
    n
}

fn check(conn: &HttpConnection, sent: &[u8]) {
    let out = [sent, conn.io().output()].concat();
    let whole = answers(&out);
    assert!(
        whole <= conn.requests_seen(),
        "{whole} answers for {} requests",
        conn.requests_seen()
    );
    assert!(conn.in_flight() <= cx_server::http::limits::IN_FLIGHT_MAX);
}

fn feed(
    conn: &mut HttpConnection,
    engine: &mut StandIn,
    lists: &mut ImpLists,
    sent: &[u8],
    bytes: &[u8],
) {
    let room = conn.read_capacity();
    let taken = conn.on_bytes(bytes, engine, lists);
    assert!(taken <= bytes.len());
    if bytes.len() <= room || conn.is_closing() {
        assert_eq!(taken, bytes.len(), "room for {room}");
    }
    check(conn, sent);
}

fn send(conn: &mut HttpConnection, sent: &mut Vec<u8>, half: bool) {
    let n = conn.io().output().len();
    let n = if half { n / 2 } else { n };
    sent.extend_from_slice(&conn.io().output()[..n]);
    conn.io_mut().consume_output(n);
    check(conn, sent);
}

fuzz_target!(|data: &[u8]| {
    let Some((stream, control)) = data.split_last_chunk::<4>() else {
        return;
    };
    let split = usize::from(u16::from_le_bytes([control[0], control[1]])) % (stream.len() + 1);
    let flags = control[3];
    let (decide, reverse, shutdown, half) = (
        flags & 1 != 0,
        flags & 2 != 0,
        flags & 4 != 0,
        flags & 8 != 0,
    );
    let mut engine = StandIn::new(control[2]);
    let mut conn = HttpConnection::new(Arc::new(HttpSettings::default()));
    let mut lists = ImpLists::new(16);
    let mut sent = Vec::new();

    let (first, second) = stream.split_at(split);
    feed(&mut conn, &mut engine, &mut lists, &sent, first);
    if decide {
        for (owner, decision) in engine.decide_all(reverse) {
            conn.on_decision(owner, decision, &mut lists, &mut engine);
        }
        check(&conn, &sent);
    }
    if shutdown {
        conn.shutdown();
    }
    send(&mut conn, &mut sent, half);
    feed(&mut conn, &mut engine, &mut lists, &sent, second);
    send(&mut conn, &mut sent, half);
    feed(&mut conn, &mut engine, &mut lists, &sent, &[]);
    for (owner, decision) in engine.decide_all(reverse) {
        conn.on_decision(owner, decision, &mut lists, &mut engine);
    }
    check(&conn, &sent);
    assert_eq!(
        conn.in_flight(),
        0,
        "in flight after every ticket was decided"
    );
    if shutdown || conn.is_closing() {
        send(&mut conn, &mut sent, false);
        assert!(conn.is_done(), "shut down, nothing in flight, output sent");
    }
});
