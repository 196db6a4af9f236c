//! The engine in process, end to end on the bundled default model and
//! catalog, decision cache off: per iteration, submit `batch` synthetic
//! requests, `tick` once, poll every decision. SIMD at batches 1, 16 and 64,
//! and the naive path (one request per tick, the scalar kernel).
//!
//! Run: `cargo bench -p cx-benches --bench engine`. Criterion reports the
//! time per tick and decisions per second. Cloning the requests out of the
//! pool is criterion's untimed setup. `cargo run --release -p cx-benches
//! --example engine_report` gives the fuller table (all batch sizes, tick
//! latency percentiles, the ratio to the naive path).

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use cx_benches::engine::{decide_batch, request_pool, Setup, POOL_SIZE, T0_NS};
use cx_features::RequestContext;
use std::time::{Duration, Instant};

/// Decides `batch` requests per iteration with an engine set up as `setup`.
fn bench_setup(c: &mut Criterion, group: &str, setup: Setup, pool: &[RequestContext]) {
    let batch = setup.batch_max;
    let mut engine = setup.build(1).expect("engine");
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
    group.bench_function(BenchmarkId::new(setup.backend.to_string(), batch), |b| {
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
}

criterion_group!(benches, engine);
criterion_main!(benches);
