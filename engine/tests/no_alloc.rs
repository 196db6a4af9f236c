//! Steady state allocates nothing per request: once the engine has warmed
//! up (its scratch vectors and the World's tables have grown to the largest
//! tick), submitting, ticking and polling thousands of requests makes no
//! heap allocation. Counted with `allocation-counter`'s global allocator.
//!
//! The requests' contexts are built before the measured region: `submit`
//! takes ownership of the host's context, and building one (its strings) is
//! the host's allocation, not the engine's.

use cx_datasets::{Generator, SynthConfig};
use cx_domain::pipeline::ScoreSource;
use cx_engine::{Engine, EngineConfig};
use cx_features::RequestContext;

const T0_NS: u64 = 1_767_225_600_000_000_000;
const TICK_NS: u64 = 1_000_000;

fn contexts(n: usize) -> Vec<RequestContext> {
    let mut generator = Generator::new(SynthConfig::default(), 9).expect("generator");
    (0..n)
        .map(|_| RequestContext {
            timestamp: 0,
            ..generator.next_row().to_context()
        })
        .collect()
}

/// Runs `ticks` ticks of `per_tick` requests each from `pool` (cycled),
/// polling every decision; returns how many offers were chosen.
fn run(
    engine: &mut Engine,
    pool: &mut Vec<RequestContext>,
    ticks: u64,
    per_tick: usize,
    t: &mut u64,
) -> usize {
    let mut chosen = 0;
    for _ in 0..ticks {
        for _ in 0..per_tick {
            let Some(ctx) = pool.pop() else { break };
            engine.submit(ctx).expect("room");
        }
        *t += TICK_NS;
        engine.tick(*t);
        while let Some(d) = engine.poll() {
            assert_ne!(d.source, ScoreSource::Failed);
            chosen += d.offers().len();
        }
    }
    chosen
}

fn assert_steady_state_allocates_nothing(config: EngineConfig, label: &str) {
    let engine = Engine::builder()
        .config(config)
        .seed(1)
        .build()
        .expect("engine");
    assert_engine_allocates_nothing(engine, label);
}

fn assert_engine_allocates_nothing(mut engine: Engine, label: &str) {
    let per_tick = 48;
    let mut t = T0_NS;
    // Warm-up: the same tick shape the measurement uses.
    let mut warm = contexts(per_tick * 20);
    run(&mut engine, &mut warm, 20, per_tick, &mut t);
    let ticks = 100;
    let mut pool = contexts(per_tick * ticks as usize);
    let mut chosen = 0;
    let info = allocation_counter::measure(|| {
        chosen = run(&mut engine, &mut pool, ticks, per_tick, &mut t);
    });
    assert!(chosen > 0, "{label}: the ticks did real work");
    assert_eq!(
        engine.stats().pipeline.decided,
        (per_tick as u64) * (20 + ticks),
        "{label}: every request decided"
    );
    assert_eq!(
        info.count_total, 0,
        "{label}: {} allocations in {ticks} ticks of {per_tick} requests",
        info.count_total
    );
}

#[test]
fn steady_state_allocates_nothing_with_the_cache_on() {
    assert_steady_state_allocates_nothing(EngineConfig::default(), "cache on");
}

#[test]
fn steady_state_allocates_nothing_with_the_cache_off() {
    let mut config = EngineConfig::default();
    config.cache.capacity = 0;
    assert_steady_state_allocates_nothing(config, "cache off");
}

#[test]
fn steady_state_allocates_nothing_with_a_feature_store() {
    use cx_featurestore::{Definitions, FeatureBackend, FeaturePut, StoreConfig, Value};
    use std::sync::Arc;
    let text = include_str!("../../models/features.toml");
    let defs = Arc::new(Definitions::from_toml_str(text).expect("bundled definitions"));
    let config = StoreConfig {
        entities: 4096,
        ..StoreConfig::default()
    };
    let backend = FeatureBackend::in_process(defs.clone(), config).expect("store");
    let mut engine = Engine::builder()
        .seed(1)
        .feature_store(backend)
        .build()
        .expect("engine");
    // Every generated user gets stored features: the reads find them.
    let (views, band, subscriber) = (
        defs.find("views_30d").unwrap(),
        defs.find("age_band").unwrap(),
        defs.find("is_subscriber").unwrap(),
    );
    let mut batch = Vec::new();
    for ctx in contexts(48 * 120) {
        let entity = cx_engine::systems::logic::user_hash(&ctx.user_id);
        if entity == 0 {
            continue;
        }
        for (feature, value) in [
            (views, Value::I64(10)),
            (band, Value::Category(2)),
            (subscriber, Value::Bool(true)),
        ] {
            batch.push(FeaturePut {
                entity,
                feature,
                value,
                time_ns: T0_NS,
            });
        }
    }
    for chunk in batch.chunks(cx_featurestore::PUT_BATCH_MAX) {
        engine.put_features(chunk, T0_NS).expect("put");
    }
    assert_engine_allocates_nothing(engine, "feature store");
}
