//! The server's work per bid request over each wire, in process: the same
//! OpenRTB bid requests (the 7 of the prebid sample, marked `test`, as the
//! HTTP load sends them) through `cx_server::http::HttpConnection` as
//! pipelined `POST /openrtb2/bid` requests, and through
//! `cx_server::conn::Connection` as binary `score_openrtb` frames, each
//! decided by one engine on the bundled defaults and answered in the
//! connection's output buffer (a BidResponse over HTTP, a `decision` frame
//! over the binary protocol). No sockets: what it times is the server's
//! own work per request, parse to answer, which the capacity sweeps of
//! `benches/wrk/ab_capacity.sh` time together with the kernel's and the
//! load generator's on a shared machine. The host is a minimal one (no
//! deadlines, every ticket's owner in a map), the same for both wires.
//!
//! `cargo bench -p cx-benches --bench wire` prints, per wire, the median
//! ns per request over 161 interleaved rounds of 704 requests (the wire that goes first
//! alternating) and the median per-round ratio HTTP / binary: HTTP's
//! overhead over the binary protocol is that ratio less 1 (issue 14 asks
//! for at most 20%).

use cx_engine::domain::pipeline::{Request, Ticket};
use cx_engine::openrtb::{ImpOutcome, ResponseBuffers, Written};
use cx_engine::Engine;
use cx_server::conn::{Connection, EngineResponder, ImpLists, Overloaded, Owner, Respond, Submit};
use cx_server::http::{HttpConnection, HttpSettings};
use cx_wire::openrtb::{BidRequest, BidResponse};
use cx_wire::protocol::{encode_hello, encode_score_openrtb, Hello};
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The engines' clock: 2026-01-01, as the other benches.
const T0_NS: u64 = 1_767_225_600_000_000_000;

/// Interleaved rounds.
const ROUNDS: usize = 161;
/// Requests per wire and round: the sample's requests, over and over.
const REQUESTS_PER_ROUND: usize = 704;
/// Requests handed to a connection at once, then decided and answered
/// before the next: the load generator's depth per connection (the
/// binary protocol refuses requests beyond its in-flight limit).
const DEPTH: usize = 64;

/// The engine as the connections' host: submissions go to it, each
/// ticket's owner kept as the server's worker keeps it, and the answers
/// written by the engine's own writer, as the worker's are.
struct Host<'a> {
    engine: &'a mut Engine,
    owners: &'a mut HashMap<Ticket, Owner>,
}

impl Respond for Host<'_> {
    fn now_ns(&self) -> u64 {
        T0_NS
    }

    fn catalog(&self) -> &cx_engine::domain::catalog::Catalog {
        self.engine.catalog()
    }

    fn bid_response(&mut self, request: &BidRequest, imps: &[ImpOutcome]) -> BidResponse {
        EngineResponder(self.engine).bid_response(request, imps)
    }

    fn write_bid_response(
        &mut self,
        request: &BidRequest,
        imps: &[ImpOutcome],
        buffers: &mut ResponseBuffers,
        out: &mut Vec<u8>,
    ) -> Written {
        self.engine.write_bid_response(request, imps, buffers, out)
    }
}

impl Submit for Host<'_> {
    fn submit(&mut self, request: Request, owner: Owner) -> Result<Ticket, Overloaded> {
        let ticket = self
            .engine
            .submit_request(request)
            .map_err(|_| Overloaded)?;
        self.owners.insert(ticket, owner);
        Ok(ticket)
    }
}

/// A connection of either wire.
#[allow(clippy::large_enum_variant)] // two per bench, not per request
enum Wire {
    Http(HttpConnection),
    Binary(Connection),
}

impl Wire {
    fn read_capacity(&self) -> usize {
        match self {
            Self::Http(c) => c.read_capacity(),
            Self::Binary(c) => c.read_capacity(),
        }
    }

    fn on_bytes(&mut self, bytes: &[u8], host: &mut Host<'_>, lists: &mut ImpLists) -> usize {
        match self {
            Self::Http(c) => c.on_bytes(bytes, host, lists),
            Self::Binary(c) => c.on_bytes(bytes, host, lists),
        }
    }

    fn on_decision(
        &mut self,
        owner: Owner,
        decision: cx_engine::domain::pipeline::Decision,
        lists: &mut ImpLists,
        host: &mut Host<'_>,
    ) {
        match self {
            Self::Http(c) => c.on_decision(owner, decision, lists, host),
            Self::Binary(c) => c.on_decision(owner, decision, lists, host),
        }
    }

    fn output(&self) -> &[u8] {
        match self {
            Self::Http(c) => c.io().output(),
            Self::Binary(c) => c.output(),
        }
    }

    fn consume_output(&mut self, n: usize) {
        match self {
            Self::Http(c) => c.io_mut().consume_output(n),
            Self::Binary(c) => c.consume_output(n),
        }
    }
}

/// One wire's side of the bench: its connection, the bytes of a round's
/// requests, and the engine that decides them.
struct Side {
    engine: Engine,
    owners: HashMap<Ticket, Owner>,
    lists: ImpLists,
    conn: Wire,
    input: Vec<u8>,
    /// Where each group of [`DEPTH`] requests of `input` ends.
    group_ends: Vec<usize>,
    /// Answers' bytes the last round wrote.
    answered_bytes: usize,
    /// Where answers are kept when checking (not while timing).
    capture: Option<Vec<u8>>,
}

impl Side {
    fn new(conn: Wire, (input, group_ends): (Vec<u8>, Vec<usize>)) -> Self {
        Self {
            group_ends,
            engine: Engine::builder()
                .build()
                .expect("engine on the bundled defaults"),
            owners: HashMap::with_capacity(4_096),
            lists: ImpLists::new(16 * 1_024),
            conn,
            input,
            answered_bytes: 0,
            capture: None,
        }
    }

    /// Hands the connection `bytes` and serves until all are taken and
    /// every decision delivered; returns the answers' bytes.
    fn serve(&mut self, bytes: &[u8]) -> usize {
        let mut taken = 0;
        let mut answered = 0;
        loop {
            let room = self.conn.read_capacity().min(bytes.len() - taken);
            let mut host = Host {
                engine: &mut self.engine,
                owners: &mut self.owners,
            };
            taken += self
                .conn
                .on_bytes(&bytes[taken..taken + room], &mut host, &mut self.lists);
            self.engine.run_until_decided(T0_NS);
            let mut delivered = false;
            while let Some(decision) = self.engine.poll() {
                let owner = self
                    .owners
                    .remove(&decision.ticket)
                    .expect("every ticket's owner is kept");
                let mut host = Host {
                    engine: &mut self.engine,
                    owners: &mut self.owners,
                };
                self.conn
                    .on_decision(owner, decision, &mut self.lists, &mut host);
                delivered = true;
            }
            let out = self.conn.output().len();
            if let Some(kept) = &mut self.capture {
                kept.extend_from_slice(self.conn.output());
            }
            answered += out;
            self.conn.consume_output(out);
            if taken == bytes.len() && !delivered && self.owners.is_empty() {
                return answered;
            }
        }
    }

    /// Serves one round; ns per request.
    fn round(&mut self) -> f64 {
        let input = std::mem::take(&mut self.input);
        let ends = std::mem::take(&mut self.group_ends);
        let start = Instant::now();
        let mut answered = 0;
        let mut from = 0;
        for &end in &ends {
            answered += self.serve(&input[from..end]);
            from = end;
        }
        self.answered_bytes = black_box(answered);
        let ns = start.elapsed().as_nanos() as f64 / REQUESTS_PER_ROUND as f64;
        self.input = input;
        self.group_ends = ends;
        ns
    }
}

/// The prebid sample's bid requests, compact, marked `test` (decided in
/// simulation: nothing spent, so every round decides alike).
fn documents() -> Vec<Vec<u8>> {
    cx_benches::prebid_sample_requests()
        .iter()
        .map(|request| serde_json::to_vec(request).expect("re-encoded"))
        .collect()
}

/// A round's input and where each group of [`DEPTH`] requests ends.
type Input = (Vec<u8>, Vec<usize>);

/// A round's requests, each of the documents in turn encoded by
/// `encode(out, i, document)`, and the end of every group of [`DEPTH`].
fn input(documents: &[Vec<u8>], mut encode: impl FnMut(&mut Vec<u8>, usize, &[u8])) -> Input {
    let mut input = Vec::new();
    let mut ends = Vec::new();
    let requests = documents.iter().cycle().take(REQUESTS_PER_ROUND);
    for (i, doc) in requests.enumerate() {
        encode(&mut input, i, doc);
        if (i + 1).is_multiple_of(DEPTH) || i + 1 == REQUESTS_PER_ROUND {
            ends.push(input.len());
        }
    }
    (input, ends)
}

/// Pipelined `POST /openrtb2/bid` requests.
fn http_input(documents: &[Vec<u8>]) -> Input {
    input(documents, |out, _, doc| {
        let head = format!(
            "POST /openrtb2/bid HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n\
             x-openrtb-version: 2.6\r\nContent-Length: {}\r\n\r\n",
            doc.len()
        );
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(doc);
    })
}

/// `score_openrtb` frames (request ids from 2: the hello is 1).
fn binary_input(documents: &[Vec<u8>]) -> Input {
    input(documents, |out, i, doc| {
        encode_score_openrtb(out, i as u64 + 2, doc, false).expect("a small document");
    })
}

/// One more round each, its answers kept: every HTTP request answered
/// `200` with a BidResponse or `204`, and one binary frame per request.
fn check(http: &mut Side, binary: &mut Side) {
    for side in [&mut *http, &mut *binary] {
        side.capture = Some(Vec::with_capacity(side.input.len() * 2));
        side.round();
    }
    let text = http.capture.take().expect("kept");
    let answers = text.windows(9).filter(|w| w == b"HTTP/1.1 ").count();
    let bids = text.windows(13).filter(|w| w == b"HTTP/1.1 200 ").count();
    assert_eq!(answers, REQUESTS_PER_ROUND, "one HTTP answer per request");
    assert!(bids > 0, "some HTTP bids");
    let frames = binary.capture.take().expect("kept");
    let mut rest = frames.as_slice();
    let mut decisions = 0;
    while let cx_wire::protocol::Decoded::Frame {
        header,
        consumed,
        payload,
    } = cx_wire::protocol::decode_frame(rest)
    {
        assert_eq!(
            header.message_type,
            cx_wire::protocol::MessageType::Decision,
            "a decision frame, not {}",
            String::from_utf8_lossy(payload)
        );
        decisions += 1;
        rest = &rest[consumed..];
    }
    assert!(rest.is_empty(), "whole frames");
    assert_eq!(decisions, REQUESTS_PER_ROUND, "one decision per request");
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let documents = documents();
    let mut http = Side::new(
        Wire::Http(HttpConnection::new(Arc::new(HttpSettings::default()))),
        http_input(&documents),
    );
    let mut binary = Side::new(Wire::Binary(Connection::new()), binary_input(&documents));
    let mut hello = Vec::new();
    encode_hello(&mut hello, 1, Hello::ours());
    binary.serve(&hello);
    let mut ns = [Vec::new(), Vec::new()];
    // A warm-up round each, then the timed rounds, the first wire
    // alternating.
    for round in 0..=ROUNDS {
        for k in 0..2 {
            let which = (k + round) % 2;
            let side = if which == 0 { &mut http } else { &mut binary };
            let t = side.round();
            if round > 0 {
                ns[which].push(t);
            }
        }
    }
    let mut ratios: Vec<f64> = ns[0].iter().zip(&ns[1]).map(|(h, b)| h / b).collect();
    let ratio = median(&mut ratios);
    let (low, high) = (ratios[0], ratios[ratios.len() - 1]);
    check(&mut http, &mut binary);
    let [h, b] = ns.map(|mut v| median(&mut v));
    eprintln!(
        "wire/interleaved ({ROUNDS} rounds of {REQUESTS_PER_ROUND} requests each way): ns per \
         request: http {h:.0}, binary {b:.0}; http / binary per round {ratio:.3} [{low:.3}, \
         {high:.3}]; answers: http {} B, binary {} B per request",
        http.answered_bytes / REQUESTS_PER_ROUND,
        binary.answered_bytes / REQUESTS_PER_ROUND,
    );
}
