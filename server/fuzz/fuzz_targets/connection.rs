//! Fuzz target: the server's per-connection state machine,
//! `cx_server::conn::Connection`, with no engine and no socket.
//!
//! Input layout: the received byte stream, then 4 control bytes at the
//! end (trailing, so that a seed frame from the protocol corpus keeps its
//! leading frames whole):
//!
//! - bytes 0-1 (u16 LE): where the stream is split into two `on_bytes`
//!   calls (taken modulo its length + 1);
//! - byte 2: which submissions are refused: submission `k` gets
//!   `Err(Overloaded)` when bit `k % 8` is set, else `Ok(Ticket(k))`;
//! - byte 3: what happens between and after the two chunks: bit 0 deliver
//!   a decision for every ticket handed out so far, bit 1 in reverse order,
//!   bit 2 call `shutdown()`, bit 3 send only half of the output.
//!
//! Checked after every step: no panic; every byte of `output()` is a
//! sequence of whole, valid frames of server-sent types whose payloads
//! decode; `in_flight() <= IN_FLIGHT_MAX`; `on_bytes` takes everything it
//! has capacity for; once every ticket has been decided, nothing is in
//! flight.
#![no_main]

use cx_server::conn::{Connection, ImpLists, WRITE_BUFFER_MAX};
use cx_wire::protocol::limits::{HEADER_BYTES, IN_FLIGHT_MAX};
use cx_wire::protocol::{decode_frame, decode_message, Decoded};
use libfuzzer_sys::fuzz_target;

#[path = "common/stand_in.rs"]
mod stand_in;
use stand_in::StandIn;

/// Checks the connection's invariants and that its output, after the
/// bytes already sent, is well formed.
fn check(conn: &Connection, sent: &[u8]) {
    assert!(
        conn.in_flight() <= IN_FLIGHT_MAX,
        "in flight {}",
        conn.in_flight()
    );
    assert!(
        conn.output().len() <= WRITE_BUFFER_MAX,
        "output {} bytes",
        conn.output().len()
    );
    // A half send can stop inside a frame: decode the whole stream.
    let out = [sent, conn.output()].concat();
    let mut pos = 0;
    while pos < out.len() {
        match decode_frame(&out[pos..]) {
            Decoded::Frame {
                header,
                payload,
                consumed,
            } => {
                assert!(
                    !header.message_type.is_from_client(),
                    "server wrote a {:?}",
                    header.message_type
                );
                if let Err(e) = decode_message(header.message_type, payload) {
                    panic!("server wrote a bad {:?} payload: {e}", header.message_type);
                }
                assert_eq!(consumed, HEADER_BYTES + payload.len());
                pos += consumed;
            }
            other => panic!("output at {pos} of {}: {other:?}", out.len()),
        }
    }
}

/// Feeds `bytes`, checking that all of it is taken while there is room.
fn feed(
    conn: &mut Connection,
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

/// Sends all of the output, or half of it, appending it to `sent`.
fn send(conn: &mut Connection, sent: &mut Vec<u8>, half: bool) {
    let n = conn.output().len();
    let n = if half { n / 2 } else { n };
    sent.extend_from_slice(&conn.output()[..n]);
    conn.consume_output(n);
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
    let mut conn = Connection::new();
    // Finished requests' impression lists, as a worker keeps them (a small
    // pool, so that lists are both kept and freed).
    let mut lists = ImpLists::new(16);
    // Everything `consume_output` was told went out, in order.
    let mut sent = Vec::new();
    check(&conn, &sent);

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
    // Resume after output drained, as the event loop does.
    feed(&mut conn, &mut engine, &mut lists, &sent, &[]);

    // Every request in flight is waiting for a ticket: once all are
    // decided, nothing is in flight.
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
