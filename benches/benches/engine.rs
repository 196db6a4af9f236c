//! The engine in process, end to end on the bundled default model and
//! catalog, decision cache off: per iteration, submit `batch` synthetic
//! requests, `tick` once, poll every decision. SIMD at batches 1, 16 and 64,
//! and the naive path (one request per tick, the scalar kernel). Then the
//! exploration policies in one run (`engine/exploration`): `thompson` (the
//! default) against `none` at batch 16, cache off, each measured by
//! criterion in turn, then interleaved round by round in the same process
//! (`engine/exploration/interleaved`, printed: medians and the ratio).
//!
//! Run: `cargo bench -p cx-benches --bench engine`. Criterion reports the
//! time per tick and decisions per second. Cloning the requests out of the
//! pool is criterion's untimed setup. `cargo run --release -p cx-benches
//! --example engine_report` gives the fuller table (all batch sizes, tick
//! latency percentiles, the ratio to the naive path).

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use cx_benches::engine::{decide_batch, request_pool, Setup, POOL_SIZE, T0_NS};
use cx_engine::systems::Exploration;
use cx_engine::Engine;
use cx_features::RequestContext;
use std::time::{Duration, Instant};

/// Decides `batch` requests per iteration with an engine set up as `setup`.
fn bench_setup(c: &mut Criterion, group: &str, setup: Setup, pool: &[RequestContext]) {
    let engine = setup.build(1).expect("engine");
    bench_engine(c, group, &setup.backend.to_string(), setup, engine, pool);
}

/// Decides `setup.batch_max` requests per iteration with `engine`, as
/// benchmark `name` of `group`.
fn bench_engine(
    c: &mut Criterion,
    group: &str,
    name: &str,
    setup: Setup,
    mut engine: Engine,
    pool: &[RequestContext],
) {
    let batch = setup.batch_max;
    let origin = Instant::now();
    let mut next = 0;
    let mut take_batch = || {
        let out: Vec<RequestContext> = (0..batch)
            .map(|i| pool[(next + i) % pool.len()].clone())
            .collect();
        next = (next + batch) % pool.len();
        out
    };
    let mut group = c.benchmark_group(group);
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
        .throughput(Throughput::Elements(batch as u64));
    group.bench_function(BenchmarkId::new(name, batch), |b| {
        b.iter_batched(
            &mut take_batch,
            |requests| {
                let now_ns = T0_NS + origin.elapsed().as_nanos() as u64;
                decide_batch(&mut engine, requests, now_ns)
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn engine(c: &mut Criterion) {
    let pool = request_pool(POOL_SIZE, 1);
    for batch in [1, 16, 64] {
        bench_setup(c, "engine/tick", Setup::simd(batch), &pool);
    }
    bench_setup(c, "engine/naive", Setup::naive(), &pool);
    // Thompson sampling against no exploration, one after the other in one
    // run: the draws and the propensity's replicas are the difference.
    let setup = Setup::simd(16);
    for exploration in [Exploration::Thompson, Exploration::None] {
        bench_engine(
            c,
            "engine/exploration",
            exploration.name(),
            setup,
            exploration_engine(setup, exploration),
            &pool,
        );
    }
    if exploration_selected() {
        exploration_interleaved(setup, &pool);
    }
}

/// An engine set up as `setup`, exploring by `exploration`, seed 1.
fn exploration_engine(setup: Setup, exploration: Exploration) -> Engine {
    let mut config = setup.config();
    config.decide.exploration = exploration;
    Engine::builder()
        .config(config)
        .backend(setup.backend)
        .seed(1)
        .build()
        .expect("engine")
}

/// Rounds of the interleaved comparison, and ticks per policy and round.
const INTERLEAVED_ROUNDS: usize = 21;
const INTERLEAVED_TICKS: usize = 400;

/// Whether this run benchmarks (not `cargo test --benches`) and its filter,
/// if any, names the exploration case.
fn exploration_selected() -> bool {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let benchmarking = args.iter().any(|a| a == "--bench");
    let mut filters = args.iter().filter(|a| !a.starts_with('-'));
    benchmarking && filters.all(|f| "engine/exploration/interleaved".contains(f.as_str()))
}

/// Thompson sampling against no exploration, interleaved in this process
/// (issue 15, "Performance"): per round, each policy decides the same
/// `INTERLEAVED_TICKS` batches (cloned before the clock starts), which one
/// goes first alternating, so both see the same load on a shared machine.
/// Prints each policy's median decisions/s over the rounds (and range),
/// and the median of the per-round ratios thompson / none.
fn exploration_interleaved(setup: Setup, pool: &[RequestContext]) {
    let policies = [Exploration::Thompson, Exploration::None];
    let mut engines = policies.map(|e| exploration_engine(setup, e));
    let batch = setup.batch_max;
    let origin = Instant::now();
    let mut rates_per_s = [Vec::new(), Vec::new()];
    let mut next = 0;
    // Round 0 warms both engines up and is not counted.
    for round in 0..=INTERLEAVED_ROUNDS {
        let batches: Vec<Vec<RequestContext>> = (0..INTERLEAVED_TICKS)
            .map(|_| {
                let out = (0..batch)
                    .map(|i| pool[(next + i) % pool.len()].clone())
                    .collect();
                next = (next + batch) % pool.len();
                out
            })
            .collect();
        for k in 0..2 {
            let which = (k + round) % 2;
            let requests = batches.clone();
            let start = Instant::now();
            let mut decided = 0;
            for requests in requests {
                let now_ns = T0_NS + origin.elapsed().as_nanos() as u64;
                decided += decide_batch(&mut engines[which], requests, now_ns);
            }
            let rate_per_s = decided as f64 / start.elapsed().as_secs_f64();
            if round > 0 {
                rates_per_s[which].push(rate_per_s);
            }
        }
    }
    let ratios: Vec<f64> = rates_per_s[0]
        .iter()
        .zip(&rates_per_s[1])
        .map(|(thompson, none)| thompson / none)
        .collect();
    let summary = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        (v[v.len() / 2], v[0], v[v.len() - 1])
    };
    println!(
        "engine/exploration/interleaved: batch {batch}, {INTERLEAVED_ROUNDS} rounds of \
         {INTERLEAVED_TICKS} ticks per policy (median [min, max])"
    );
    for (policy, rates) in policies.iter().zip(&rates_per_s) {
        let (median, low, high) = summary(rates);
        println!(
            "  {:<9} {median:>9.0} decisions/s [{low:.0}, {high:.0}]",
            policy.name()
        );
    }
    let (median, low, high) = summary(&ratios);
    println!("  thompson / none, per round: {median:.3} [{low:.3}, {high:.3}]");
}

criterion_group!(benches, engine);
criterion_main!(benches);
