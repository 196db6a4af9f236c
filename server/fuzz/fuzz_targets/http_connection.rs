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

use cx_domain::pipeline::{ChosenOffer, Decision, Request, Ticket, TOP_K_MAX};
use cx_engine::openrtb::ImpOutcome;
use cx_server::conn::{ImpLists, Overloaded, Owner, Respond, Submit};
use cx_server::http::{HttpConnection, HttpSettings, STATUSES};
use cx_wire::openrtb::{Bid, BidRequest, BidResponse, NoBidReason, SeatBid};
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

/// The stand-in for the engine: hands out tickets, refusing by a bit mask.
struct Engine {
    submitted: u64,
    refuse_mask: u8,
    waiting: Vec<(Ticket, Owner)>,
}

/// The bundled catalog, parsed once (decisions' explanations name its
/// offers).
fn catalog() -> &'static cx_domain::catalog::Catalog {
    static CATALOG: std::sync::OnceLock<cx_domain::catalog::Catalog> = std::sync::OnceLock::new();
    CATALOG.get_or_init(|| {
        cx_domain::catalog::Catalog::from_toml_str(cx_engine::DEFAULT_CATALOG_TOML)
            .expect("the bundled catalog parses")
    })
}

impl Respond for Engine {
    fn now_ns(&self) -> u64 {
        0
    }

    fn catalog(&self) -> &cx_domain::catalog::Catalog {
        catalog()
    }

    /// A bid on the first decided impression with an offer, else a no-bid.
    fn bid_response(&mut self, request: &BidRequest, imps: &[ImpOutcome]) -> BidResponse {
        let decided = imps
            .iter()
            .find(|i| i.decision.is_some_and(|d| !d.offers().is_empty()));
        match decided {
            Some(imp) => BidResponse {
                id: request.id.clone(),
                seatbid: vec![SeatBid {
                    bid: vec![Bid {
                        id: "b".into(),
                        impid: imp.imp_id.clone(),
                        price: 2.0,
                        ..Bid::default()
                    }],
                    seat: None,
                }],
                ..BidResponse::default()
            },
            None => BidResponse::no_bid(&request.id, NoBidReason::UnknownError),
        }
    }
}

impl Submit for Engine {
    fn submit(&mut self, _request: Request, owner: Owner) -> Result<Ticket, Overloaded> {
        let k = self.submitted;
        self.submitted += 1;
        if self.refuse_mask & (1 << (k % 8)) != 0 {
            return Err(Overloaded);
        }
        let ticket = Ticket(k);
        self.waiting.push((ticket, owner));
        Ok(ticket)
    }
}

impl Engine {
    fn decide_all(&mut self, conn: &mut HttpConnection, lists: &mut ImpLists, reverse: bool) {
        let mut tickets = std::mem::take(&mut self.waiting);
        if reverse {
            tickets.reverse();
        }
        for (ticket, owner) in tickets {
            let mut decision = Decision::default();
            decision.reset(ticket, false);
            if ticket.0 % 2 == 0 {
                let offer = ChosenOffer {
                    offer_id: ticket.0,
                    score: 1.0,
                    p_click: 0.5,
                    bid_cpm: 2.0,
                    ..ChosenOffer::default()
                };
                decision.consider(offer, TOP_K_MAX);
            }
            decision.settle();
            conn.on_decision(owner, decision, lists, self);
        }
    }
}

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
            .map(|h| std::str::from_utf8(h.value).unwrap().parse::<usize>().unwrap());
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

fn feed(conn: &mut HttpConnection, engine: &mut Engine, lists: &mut ImpLists, sent: &[u8], bytes: &[u8]) {
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
    let (decide, reverse, shutdown, half) =
        (flags & 1 != 0, flags & 2 != 0, flags & 4 != 0, flags & 8 != 0);
    let mut engine = Engine {
        submitted: 0,
        refuse_mask: control[2],
        waiting: Vec::new(),
    };
    let mut conn = HttpConnection::new(Arc::new(HttpSettings::default()));
    let mut lists = ImpLists::new(16);
    let mut sent = Vec::new();

    let (first, second) = stream.split_at(split);
    feed(&mut conn, &mut engine, &mut lists, &sent, first);
    if decide {
        engine.decide_all(&mut conn, &mut lists, reverse);
        check(&conn, &sent);
    }
    if shutdown {
        conn.shutdown();
    }
    send(&mut conn, &mut sent, half);
    feed(&mut conn, &mut engine, &mut lists, &sent, second);
    send(&mut conn, &mut sent, half);
    feed(&mut conn, &mut engine, &mut lists, &sent, &[]);
    engine.decide_all(&mut conn, &mut lists, reverse);
    check(&conn, &sent);
    assert_eq!(conn.in_flight(), 0, "in flight after every ticket was decided");
    if shutdown || conn.is_closing() {
        send(&mut conn, &mut sent, false);
        assert!(conn.is_done(), "shut down, nothing in flight, output sent");
    }
});
