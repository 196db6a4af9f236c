//! Several engines on their own threads, as a server's workers run: one
//! engine alone, two engines with their own stores, and two engines
//! sharing their frequency store and budget bank (`SharedStores`, what
//! `cx serve --workers 2` runs). Each engine decides batches of 64
//! synthetic requests from the same user population, SIMD kernel, cache
//! off. The throughput is over all engines, so the ratio of the shared
//! pair to the lone engine says what the sharing costs in scaling.
//!
//! Run: `cargo bench -p cx-benches --bench workers`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use cx_benches::engine::{decide_batch, request_pool, Setup, POOL_SIZE, T0_NS};
use cx_engine::domain::store::SharedStores;
use cx_engine::{Engine, EngineConfig};
use cx_features::RequestContext;
use std::time::{Duration, Instant};

const BATCH: usize = 64;

/// `workers` engines, sharing stores or not.
fn engines(workers: usize, shared: bool) -> Vec<Engine> {
    let setup = Setup::simd(BATCH);
    let config: EngineConfig = setup.config();
    let catalog = cx_engine::load_catalog(None).expect("the bundled catalog");
    let stores = SharedStores::new(&catalog, config.frequency_config(), config.lease_config())
        .expect("shared stores");
    (0..workers)
        .map(|w| {
            let builder = Engine::builder()
                .config(config.clone())
                .backend(setup.backend)
                .seed(w as u64);
            let builder = if shared {
                builder.shared_stores(stores.clone())
            } else {
                builder
            };
            builder.build().expect("engine")
        })
        .collect()
}

/// Runs `iters` batches on every engine at once, each on its own thread;
/// returns the longest thread's time.
fn run(engines: &mut [Engine], pool: &[RequestContext], iters: u64) -> Duration {
    std::thread::scope(|scope| {
        let threads: Vec<_> = engines
            .iter_mut()
            .enumerate()
            .map(|(w, engine)| {
                scope.spawn(move || {
                    let start = Instant::now();
                    let mut next = w * pool.len() / 2;
                    for _ in 0..iters {
                        let batch = (0..BATCH).map(|i| pool[(next + i) % pool.len()].clone());
                        let now_ns = T0_NS + start.elapsed().as_nanos() as u64;
                        decide_batch(engine, batch, now_ns);
                        next = (next + BATCH) % pool.len();
                    }
                    start.elapsed()
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("a worker thread"))
            .max()
            .unwrap_or_default()
    })
}

fn workers(c: &mut Criterion) {
    let pool = request_pool(POOL_SIZE, 1);
    let mut group = c.benchmark_group("workers");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(4))
        .sample_size(20);
    for (label, workers, shared) in [
        ("one", 1, false),
        ("two_own_stores", 2, false),
        ("two_shared_stores", 2, true),
    ] {
        let mut set = engines(workers, shared);
        group.throughput(Throughput::Elements((BATCH * workers) as u64));
        group.bench_function(BenchmarkId::new(label, BATCH), |b| {
            b.iter_custom(|iters| run(&mut set, &pool, iters))
        });
    }
    group.finish();
}

criterion_group!(benches, workers);
criterion_main!(benches);
