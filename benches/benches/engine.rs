//! The engine in process, end to end on the bundled default model and
//! catalog, decision cache off: per iteration, submit `batch` synthetic
//! requests, `tick` once, poll every decision. SIMD at batches 1, 16 and 64,
//! and the naive path (one request per tick, the scalar kernel). Then the
//! exploration policies in one run (`engine/exploration`): `thompson` (the
//! default) against `none` at batch 16, cache off.
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
        let mut config = setup.config();
        config.decide.exploration = exploration;
        let engine = Engine::builder()
            .config(config)
            .backend(setup.backend)
            .seed(1)
            .build()
            .expect("engine");
        bench_engine(
            c,
            "engine/exploration",
            exploration.name(),
            setup,
            engine,
            &pool,
        );
    }
}

criterion_group!(benches, engine);
criterion_main!(benches);
