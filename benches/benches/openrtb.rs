//! The OpenRTB answer (issue 14, "Load"): what building and writing a
//! BidResponse costs against deciding the request, in process.
//!
//! The requests are the HTTP load's mix,
//! `components/wire/tests/fixtures/openrtb/prebid_sample.jsonl` (7 bid
//! requests, 10 impressions), each marked `test` so that deciding it over
//! and over spends no budget or frequency cap. One engine on the bundled
//! defaults decides them once, before timing; then:
//!
//! - `openrtb/write`: for each request, `Engine::write_bid_response` on
//!   its decided impressions, into a reused buffer: the JSON written
//!   directly, as the HTTP bidder answers.
//! - `openrtb/build_serialize`: the same response as `Engine::bid_response`
//!   builds it, then serialized by `serde_json::to_writer` (how the bidder
//!   answered before `write_bid_response`).
//! - `openrtb/decide`: `Engine::decide_openrtb` for each request (plan,
//!   submit, tick, poll, and the response built, not serialized).
//! - `openrtb/parse`: `parse_request` of each request's JSON (as the load
//!   sends it), validation included: what every wire does first.
//!
//! Throughput is in requests (7 per iteration). After criterion, an
//! interleaved run (`openrtb/interleaved`, printed on stderr) times the
//! four round by round in the same process and prints their medians and
//! the median per-round ratios. The allocator is mimalloc, as in `cx`.
//!
//! Run: `cargo bench -p cx-benches --bench openrtb`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use cx_engine::openrtb::ImpOutcome;
use cx_engine::openrtb::ResponseBuffers;
use cx_engine::Engine;
use cx_wire::openrtb::{parse_request, BidRequest};
use std::hint::black_box;
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// 2026-01-01T00:00:00Z, ns.
const T0_NS: u64 = 1_767_225_600_000_000_000;
/// Rounds of the interleaved comparison.
const ROUNDS: usize = 41;
/// Iterations (each over every request) per round and side.
const ITERATIONS_PER_ROUND: usize = 400;

struct Fixture {
    engine: Engine,
    /// Each request's JSON, as the HTTP load sends it.
    documents: Vec<Vec<u8>>,
    requests: Vec<BidRequest>,
    outcomes: Vec<Vec<ImpOutcome>>,
    json: Vec<u8>,
    buffers: ResponseBuffers,
}

impl Fixture {
    fn new() -> Self {
        let mut engine = Engine::builder().build().expect("engine");
        // The HTTP load's bid requests, marked `test`, parsed as the
        // bidder parses them.
        let documents: Vec<Vec<u8>> = cx_benches::prebid_sample_requests()
            .iter()
            .map(|request| serde_json::to_vec(request).expect("re-encoded"))
            .collect();
        let requests: Vec<BidRequest> = documents
            .iter()
            .map(|json| parse_request(json).expect("a valid bid request"))
            .collect();
        let outcomes = requests
            .iter()
            .map(|r| {
                engine
                    .decide_openrtb(r, T0_NS)
                    .expect("decided")
                    .impressions
            })
            .collect();
        Self {
            engine,
            documents,
            requests,
            outcomes,
            json: Vec::with_capacity(1 << 16),
            buffers: ResponseBuffers::default(),
        }
    }

    fn write_all(&mut self) -> usize {
        let mut bytes = 0;
        for (request, imps) in self.requests.iter().zip(&self.outcomes) {
            self.json.clear();
            self.engine
                .write_bid_response(request, imps, &mut self.buffers, &mut self.json);
            bytes += self.json.len();
        }
        bytes
    }

    fn build_serialize_all(&mut self) -> usize {
        let mut bytes = 0;
        for (request, imps) in self.requests.iter().zip(&self.outcomes) {
            let response = self.engine.bid_response(request, imps);
            self.json.clear();
            serde_json::to_writer(&mut self.json, &response).expect("encoded");
            bytes += self.json.len();
        }
        bytes
    }

    fn parse_all(&self) -> usize {
        let mut imps = 0;
        for json in &self.documents {
            imps += parse_request(black_box(json)).expect("valid").imp.len();
        }
        imps
    }

    fn decide_all(&mut self) -> usize {
        let mut bids = 0;
        for request in &self.requests {
            let outcome = self.engine.decide_openrtb(request, T0_NS).expect("decided");
            bids += outcome.response.seatbid.len();
        }
        bids
    }
}

fn bench(c: &mut Criterion) {
    let mut fixture = Fixture::new();
    let n = fixture.requests.len() as u64;
    let mut group = c.benchmark_group("openrtb");
    group.throughput(Throughput::Elements(n));
    group.bench_function("write", |b| b.iter(|| black_box(fixture.write_all())));
    group.bench_function("build_serialize", |b| {
        b.iter(|| black_box(fixture.build_serialize_all()))
    });
    group.bench_function("decide", |b| b.iter(|| black_box(fixture.decide_all())));
    group.bench_function("parse", |b| b.iter(|| black_box(fixture.parse_all())));
    group.finish();
    interleaved(&mut fixture);
}

/// The four round by round; prints ns per request for each (median over
/// rounds, with the range) and the median per-round ratios.
fn interleaved(fixture: &mut Fixture) {
    let n = (fixture.requests.len() * ITERATIONS_PER_ROUND) as f64;
    let mut write_ns = Vec::with_capacity(ROUNDS);
    let mut serde_ns = Vec::with_capacity(ROUNDS);
    let mut decide_ns = Vec::with_capacity(ROUNDS);
    let mut parse_ns = Vec::with_capacity(ROUNDS);
    let time = |f: &mut dyn FnMut() -> usize| {
        let start = Instant::now();
        for _ in 0..ITERATIONS_PER_ROUND {
            black_box(f());
        }
        start.elapsed().as_nanos() as f64 / n
    };
    for _ in 0..ROUNDS {
        write_ns.push(time(&mut || fixture.write_all()));
        serde_ns.push(time(&mut || fixture.build_serialize_all()));
        decide_ns.push(time(&mut || fixture.decide_all()));
        parse_ns.push(time(&mut || fixture.parse_all()));
    }
    let ratio = |a: &[f64], b: &[f64]| {
        let mut r: Vec<f64> = a.iter().zip(b).map(|(x, y)| x / y).collect();
        median(&mut r)
    };
    let write_to_serde = ratio(&write_ns, &serde_ns);
    let write_to_decide = ratio(&write_ns, &decide_ns);
    let serde_to_decide = ratio(&serde_ns, &decide_ns);
    let parse_to_decide = ratio(&parse_ns, &decide_ns);
    let bytes = fixture.write_all() / fixture.requests.len();
    eprintln!(
        "openrtb/interleaved ({ROUNDS} rounds, {bytes} JSON bytes per request): ns per request: \
         write {}, build_serialize {}, decide {}, parse {}; write/build_serialize \
         {write_to_serde:.3}, write/decide {write_to_decide:.3}, build_serialize/decide \
         {serde_to_decide:.3}, parse/decide {parse_to_decide:.3}",
        spread(&mut write_ns),
        spread(&mut serde_ns),
        spread(&mut decide_ns),
        spread(&mut parse_ns),
    );
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn spread(values: &mut [f64]) -> String {
    let m = median(values);
    format!("{m:.0} [{:.0}-{:.0}]", values[0], values[values.len() - 1])
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = bench
}
criterion_main!(benches);
