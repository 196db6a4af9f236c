//! The engine in process, end to end on the bundled default model and
//! catalog, decision cache off: per iteration, submit `batch` synthetic
//! requests, `tick` once, poll every decision. SIMD at batches 1, 16 and 64,
//! and the naive path (one request per tick, the scalar kernel). Then the
//! exploration policies in one run (`engine/exploration`): `thompson` (the
//! default) against `none` at batch 16, cache off, each measured by
//! criterion in turn, then interleaved round by round in the same process
//! (`engine/exploration/interleaved`, printed: medians and the ratio).
//! Every posterior is at its prior there (the widest: the most exploring);
//! `engine/exploration/learned/interleaved` compares the two again after
//! 200,000 decisions' feedback (`learn_posteriors`), a serving engine's
//! steady state.
//! Then the online feature store (issue 16, `engine/store`): the same
//! engine with a store of 100,000 users on against off, at batches 1, 16
//! and 64, each measured by criterion in turn (`off` and `on`), then
//! interleaved round by round (`engine/store/interleaved`, printed).
//!
//! Then one experiment live (`engine/experiments/interleaved`, printed):
//! two arms, the bundled model and a second copy of it as an arm's model,
//! against no experiment, no exploration, batch 16: what assignment and a
//! batch per model cost.
//!
//! An interleaved comparison prints one line per case on stderr: each
//! engine's median decisions/s over the rounds with its range, and the
//! median of the per-round ratios, first engine over second.
//!
//! The store (`engine/store`): the definitions the bundled model records
//! (`cx.feature_definitions`, a schema v2 model that reads the store
//! section), else the bundled `models/features.toml`; 125,000 slots,
//! filled before timing with every stored feature of 100,000 users
//! (`cx_benches::feature_fill::user_values`, fresh under every TTL): the
//! users of the request pool but a tenth of them (those whose user hash
//! is a multiple of 10, read as unknown: every feature at its default),
//! the rest other users. The requests are the pool's, as for
//! `engine/tick`; each reads its user once in the features stage, and
//! decisions use the stored segments and behaviour. A line on stderr says
//! which definitions, whether the model reads them, and the share of
//! requests whose user the store holds.
//!
//! Run: `cargo bench -p cx-benches --bench engine` (only the store:
//! `... --bench engine -- engine/store`). Criterion reports the
//! time per tick and decisions per second. Cloning the requests out of the
//! pool is criterion's untimed setup. `cargo run --release -p cx-benches
//! --example engine_report` gives the fuller table (all batch sizes, tick
//! latency percentiles, the ratio to the naive path).

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use cx_benches::engine::{decide_batch, request_pool, Setup, POOL_SIZE, T0_NS};
use cx_benches::feature_fill::{key, user_values};
use cx_engine::featurestore::{Definitions, FeatureBackend, StoreConfig};
use cx_engine::model::SnnModel;
use cx_engine::model_schema::definitions_of;
use cx_engine::systems::logic::user_hash;
use cx_engine::systems::Exploration;
use cx_engine::{Engine, DEFAULT_MODEL_BYTES};
use cx_features::RequestContext;
use std::collections::HashSet;
use std::sync::Arc;
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
    if selected("engine/exploration/interleaved") {
        let engines = [Exploration::Thompson, Exploration::None]
            .map(|exploration| (exploration.name(), exploration_engine(setup, exploration)));
        interleaved(
            "engine/exploration/interleaved",
            engines,
            setup.batch_max,
            &pool,
        );
    }
    if selected("engine/exploration/learned/interleaved") {
        let engines = [Exploration::Thompson, Exploration::None].map(|exploration| {
            let mut engine = exploration_engine(setup, exploration);
            learn_posteriors(&mut engine, &pool);
            (exploration.name(), engine)
        });
        interleaved(
            "engine/exploration/learned/interleaved",
            engines,
            setup.batch_max,
            &pool,
        );
    }
    if selected("engine/experiments/interleaved") {
        let engines = [
            ("two-arms", experiment_engine(setup, true)),
            ("none", experiment_engine(setup, false)),
        ];
        interleaved(
            "engine/experiments/interleaved",
            engines,
            setup.batch_max,
            &pool,
        );
    }
    store(c, &pool);
}

/// An engine set up as `setup`, no exploration, with (or without) one
/// experiment live: a 50/50 split of the users between the bundled model
/// (the default slot) and a second copy of it loaded as an arm's model,
/// so each tick runs one batch per model where it ran one.
fn experiment_engine(setup: Setup, live: bool) -> Engine {
    use cx_engine::experiments::{ArmDef, ArmSource, Experiment, ExperimentDef};
    let mut engine = exploration_engine(setup, Exploration::None);
    if live {
        let experiment =
            Experiment::from_json(r#"{"key": "bench", "variations": [0, 1], "hashVersion": 2}"#)
                .expect("experiment");
        let second = ArmSource {
            model: cx_engine::ModelSource::Bytes(DEFAULT_MODEL_BYTES.into()),
            fallback: cx_engine::FallbackSource::Auto,
        };
        let arms = vec![
            ArmDef { id: 1, model: None },
            ArmDef {
                id: 2,
                model: Some(second),
            },
        ];
        engine
            .set_experiments(&[ExperimentDef { experiment, arms }])
            .expect("experiments");
    }
    engine
}

/// Decisions fed back before `engine/exploration/learned/interleaved`.
const LEARNING_DECISIONS: usize = 200_000;

/// Closes the loop on `LEARNING_DECISIONS` of the pool's requests with a
/// Thompson sampling engine, and gives `engine` the posteriors it learnt:
/// each decision's top offer an impression, clicked with its `p_click`
/// times a hidden factor per offer (`2^z`, `z` in [-1, 1] from a hash of
/// the offer id), as the calibrated world of `cx simulate` does. Both
/// engines of the comparison get the same posteriors: a serving engine's
/// steady state, where feedback has narrowed them.
fn learn_posteriors(engine: &mut Engine, pool: &[RequestContext]) {
    static LEARNT: std::sync::OnceLock<Vec<(u64, f32, bool)>> = std::sync::OnceLock::new();
    let observations = LEARNT.get_or_init(|| {
        let mut learner = exploration_engine(Setup::simd(16), Exploration::Thompson);
        let mut out = Vec::with_capacity(LEARNING_DECISIONS);
        for (k, ctx) in pool.iter().cycle().take(LEARNING_DECISIONS).enumerate() {
            learner.submit(ctx.clone()).expect("in-flight room");
            if k % 16 == 15 {
                learner.tick(T0_NS);
                while let Some(decision) = learner.poll() {
                    let Some(top) = decision.offers().first() else {
                        continue;
                    };
                    let z = (mix64(top.offer_id) >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
                    let p_true = f64::from(top.p_click) * z.exp2();
                    let u = (mix64(decision.ticket.0 ^ 0x636c_6963_6b73) >> 11) as f64
                        / (1u64 << 53) as f64;
                    let clicked = u < p_true;
                    learner.observe_impression(top.offer_id, top.p_click, T0_NS);
                    if clicked {
                        learner.observe_click(top.offer_id, T0_NS);
                    }
                    out.push((top.offer_id, top.p_click, clicked));
                }
            }
        }
        out
    });
    for &(offer_id, p_click, clicked) in observations {
        engine.observe_impression(offer_id, p_click, T0_NS);
        if clicked {
            engine.observe_click(offer_id, T0_NS);
        }
    }
}

/// splitmix64's finalizer: a hash for the bench's hidden factors and clicks.
fn mix64(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
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

/// Rounds of an interleaved comparison, and requests each engine decides
/// per round (400 ticks at batch 16).
const INTERLEAVED_ROUNDS: usize = 41;
const INTERLEAVED_REQUESTS: usize = 6_400;

/// Whether this run benchmarks (not `cargo test --benches`) and its filter,
/// if any, names the case `case`.
fn selected(case: &str) -> bool {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let benchmarking = args.iter().any(|a| a == "--bench");
    let mut filters = args.iter().filter(|a| !a.starts_with('-'));
    benchmarking && filters.all(|f| case.contains(f.as_str()))
}

/// Two engines compared interleaved in this process (issue 15 and 16,
/// "Performance"): per round, each engine decides the same
/// `INTERLEAVED_REQUESTS` requests in batches of `batch` (cloned before the
/// clock starts), which one goes first alternating, so both see the same
/// load on a shared machine. Round 0 warms both engines up and is not
/// counted. Prints one line on stderr: each engine's median decisions/s
/// over the rounds (and range), and the median of the per-round ratios of
/// the first engine's rate to the second's.
fn interleaved(case: &str, engines: [(&str, Engine); 2], batch: usize, pool: &[RequestContext]) {
    let [(first, a), (second, b)] = engines;
    let mut engines = [a, b];
    let ticks = INTERLEAVED_REQUESTS.div_ceil(batch);
    let origin = Instant::now();
    let mut rates_per_s = [Vec::new(), Vec::new()];
    let mut next = 0;
    for round in 0..=INTERLEAVED_ROUNDS {
        let batches: Vec<Vec<RequestContext>> = (0..ticks)
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
        .map(|(a, b)| a / b)
        .collect();
    let summary = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        (v[v.len() / 2], v[0], v[v.len() - 1])
    };
    let [(a, a_low, a_high), (b, b_low, b_high)] = rates_per_s.each_ref().map(|r| summary(r));
    let (ratio, low, high) = summary(&ratios);
    eprintln!(
        "{case}: batch {batch}: {first} {a:.0} [{a_low:.0}, {a_high:.0}], {second} {b:.0} \
         [{b_low:.0}, {b_high:.0}] decisions/s; {first} / {second} per round {ratio:.3} \
         [{low:.3}, {high:.3}] (median [min, max] of {INTERLEAVED_ROUNDS} rounds of {ticks} \
         ticks each)"
    );
}

/// Users the store of `engine/store` holds, and slots for them (a fifth
/// more, as `StoreConfig::entities` advises).
const STORE_USERS: usize = 100_000;
const STORE_SLOTS: usize = 125_000;
/// A pool user whose hash is a multiple of this is left out of the store.
const UNKNOWN_EVERY: u64 = 10;

/// What every store of `engine/store` is filled with.
struct StoreFill {
    defs: Arc<Definitions>,
    /// The user keys filled, in order.
    keys: Vec<u64>,
}

impl StoreFill {
    /// The definitions the bundled model records, else the bundled ones;
    /// the pool's users but those left out as unknown, then other users up
    /// to `STORE_USERS`. Prints what it chose on stderr.
    fn new(pool: &[RequestContext]) -> Self {
        let model = SnnModel::from_bytes(DEFAULT_MODEL_BYTES).expect("bundled model");
        let recorded = definitions_of(model.meta()).expect("the model's definitions");
        let reads_store = recorded.is_some();
        let defs = recorded.unwrap_or_else(|| {
            let text = include_str!("../../models/features.toml");
            Arc::new(Definitions::from_toml_str(text).expect("bundled definitions"))
        });
        let mut seen = HashSet::new();
        let mut keys: Vec<u64> = pool
            .iter()
            .map(|ctx| user_hash(&ctx.user_id))
            .filter(|&k| k != 0 && k % UNKNOWN_EVERY != 0 && seen.insert(k))
            .collect();
        let pool_users = keys.len();
        let mut i = 0;
        while keys.len() < STORE_USERS {
            let k = key(i);
            if seen.insert(k) {
                keys.push(k);
            }
            i += 1;
        }
        let held = pool
            .iter()
            .filter(|ctx| seen.contains(&user_hash(&ctx.user_id)))
            .count();
        eprintln!(
            "engine/store: definitions {} ({}); the bundled model {} them; {} users filled \
             ({pool_users} of the request pool, the rest others) in {STORE_SLOTS} slots; \
             {held} of {} requests ({:.1}%) name a user the store holds",
            defs.id(),
            if reads_store {
                "the bundled model's own, cx.feature_definitions"
            } else {
                "models/features.toml"
            },
            if reads_store {
                "reads"
            } else {
                "does not read"
            },
            keys.len(),
            pool.len(),
            100.0 * held as f64 / pool.len() as f64
        );
        Self { defs, keys }
    }

    /// An engine set up as `setup`, seed 1, with a store filled at `T0_NS`.
    fn engine(&self, setup: Setup) -> Engine {
        let config = StoreConfig {
            entities: STORE_SLOTS,
            ..StoreConfig::default()
        };
        let backend = FeatureBackend::in_process(self.defs.clone(), config).expect("store");
        let mut engine = Engine::builder()
            .config(setup.config())
            .backend(setup.backend)
            .seed(1)
            .feature_store(backend)
            .build()
            .expect("engine with a feature store");
        let mut batch = Vec::with_capacity(16);
        for (i, &k) in self.keys.iter().enumerate() {
            user_values(&self.defs, k, i as u64, T0_NS, &mut batch);
            engine.put_features(&batch, T0_NS).expect("put");
        }
        engine
    }
}

/// The engine with the feature store on against off (issue 16,
/// "Performance"): criterion, then interleaved, at batches 1, 16, 64.
fn store(c: &mut Criterion, pool: &[RequestContext]) {
    let fill = StoreFill::new(pool);
    for batch in [1, 16, 64] {
        let setup = Setup::simd(batch);
        let off = setup.build(1).expect("engine");
        bench_engine(c, "engine/store", "off", setup, off, pool);
        bench_engine(c, "engine/store", "on", setup, fill.engine(setup), pool);
    }
    if selected("engine/store/interleaved") {
        for batch in [1, 16, 64] {
            let setup = Setup::simd(batch);
            let engines = [
                ("on", fill.engine(setup)),
                ("off", setup.build(1).expect("engine")),
            ];
            interleaved("engine/store/interleaved", engines, batch, pool);
        }
    }
}

criterion_group!(benches, engine);
criterion_main!(benches);
