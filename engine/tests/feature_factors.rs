//! Decisions read the online feature store (`docs/DECISIONS.md`, "Score
//! and explanation"): stored segments earn SegmentMembership, stored
//! recency and response ratio move BehavioralSignal, stale values read as
//! their defaults, a request without a user decides as without a store,
//! and the factors still add up to the score.

mod common;

use common::T0_NS;
use cx_decision::{FactorKind, FACTOR_KINDS};
use cx_domain::catalog::Catalog;
use cx_domain::pipeline::Decision;
use cx_engine::systems::logic::stored::{lift, recency};
use cx_engine::systems::Exploration;
use cx_engine::{Bundle, Engine, EngineConfig, FallbackSource, ModelSource};
use cx_features::RequestContext;
use cx_featurestore::{
    Definitions, FeatureBackend, FeaturePut, OnlineFeatures, StoreConfig, Value,
};
use std::sync::Arc;

const S: u64 = 1_000_000_000;
const DAY: u64 = 86_400 * S;

/// Three offers of the bundled model: one for subscribers, one for the
/// 25-34 age band (segments the store gives), one untargeted.
fn catalog() -> Catalog {
    let offer = |id: u64, segments: &str| {
        format!(
            r#"
[[offer]]
id = {id}
name = "offer {id}"
conversion_rate = 0.05
revenue = 2.0
max_bid_cpm = 8.0
segments = [{segments}]
creative_id = "cr-{id}"

[offer.creative]
click_url = "https://example.com/{id}"
image_url = "https://cdn.example.com/{id}.jpg"
"#
        )
    };
    let text = [
        offer(1000, r#""is_subscriber""#),
        offer(1001, r#""age_band=25-34""#),
        offer(1002, ""),
    ]
    .concat();
    Catalog::from_toml_str(&text).expect("a valid catalog")
}

fn config(recency_weight: f32, ratio_weight: f32) -> EngineConfig {
    let mut config = EngineConfig::default();
    config.decide.top_k = 3;
    config.decide.exploration = Exploration::None;
    config.decide.behavior_recency_weight = recency_weight;
    config.decide.behavior_ratio_weight = ratio_weight;
    config
}

fn defs() -> Arc<Definitions> {
    let text = include_str!("../../models/features.toml");
    Arc::new(Definitions::from_toml_str(text).expect("bundled definitions"))
}

fn backend() -> FeatureBackend {
    let config = StoreConfig {
        entities: 1024,
        ..StoreConfig::default()
    };
    FeatureBackend::in_process(defs(), config).expect("store")
}

fn engine(config: EngineConfig, store: bool) -> Engine {
    let builder = Engine::builder().seed(5).config(config).catalog(catalog());
    let builder = if store {
        builder.feature_store(backend())
    } else {
        builder
    };
    builder.build().expect("engine")
}

fn put(engine: &mut Engine, user: &str, name: &str, value: Value, time_ns: u64) {
    let feature = engine
        .feature_store()
        .expect("a store")
        .definitions()
        .find(name)
        .expect("a bundled feature");
    let put = FeaturePut {
        entity: cx_engine::systems::logic::user_hash(user),
        feature,
        value,
        time_ns,
    };
    assert_eq!(engine.put_features(&[put], time_ns).unwrap().written, 1);
}

/// Decides one request of `user` at `now_ns` (its timestamp too).
fn decide(engine: &mut Engine, user: &str, now_ns: u64) -> Decision {
    let ctx = RequestContext {
        user_id: user.into(),
        country: "USA".into(),
        placement_width: 300,
        placement_height: 250,
        timestamp: (now_ns / S) as i64,
        ..RequestContext::default()
    };
    engine.submit(ctx).expect("room");
    engine.run_until_decided(now_ns);
    let decision = engine.poll().expect("decided");
    assert_factors_add_up(&decision);
    decision
}

fn assert_factors_add_up(decision: &Decision) {
    for o in decision.offers() {
        let sum: f32 = o.factors.iter().sum();
        assert_eq!(
            sum, o.score,
            "offer {}: factors add up to the score",
            o.offer_id
        );
    }
}

fn factor(decision: &Decision, offer_id: u64, kind: FactorKind) -> f32 {
    let k = FACTOR_KINDS.iter().position(|&f| f == kind).unwrap();
    let offer = decision
        .offers()
        .iter()
        .find(|o| o.offer_id == offer_id)
        .unwrap_or_else(|| panic!("offer {offer_id} chosen: {decision:?}"));
    offer.factors[k]
}

fn segment(decision: &Decision, offer_id: u64) -> f32 {
    factor(decision, offer_id, FactorKind::SegmentMembership)
}

#[test]
fn stored_segments_earn_segment_membership() {
    let bonus = EngineConfig::default().decide.segment_bonus;
    let mut plain = engine(config(0.0, 0.0), false);
    let mut with = engine(config(0.0, 0.0), true);
    put(
        &mut with,
        "alice",
        "is_subscriber",
        Value::Bool(true),
        T0_NS,
    );
    put(&mut with, "alice", "age_band", Value::Category(2), T0_NS); // 25-34
    put(&mut with, "bob", "is_subscriber", Value::Bool(false), T0_NS);
    put(&mut with, "bob", "age_band", Value::Category(1), T0_NS); // 18-24
    let t = T0_NS + S;

    let d = decide(&mut plain, "alice", t);
    assert_eq!((segment(&d, 1000), segment(&d, 1001)), (0.0, 0.0));
    let d = decide(&mut with, "alice", t);
    assert_eq!(segment(&d, 1000), bonus, "is_subscriber");
    assert_eq!(segment(&d, 1001), bonus, "age_band=25-34");
    assert_eq!(segment(&d, 1002), 0.0, "targets nothing");
    let d = decide(&mut with, "bob", t);
    assert_eq!((segment(&d, 1000), segment(&d, 1001)), (0.0, 0.0));
    let d = decide(&mut with, "carol", t);
    assert_eq!(
        (segment(&d, 1000), segment(&d, 1001)),
        (0.0, 0.0),
        "no stored values"
    );
}

#[test]
fn stale_values_read_as_defaults() {
    let mut with = engine(config(0.0, 1.0), true);
    let mut fresh = engine(config(0.0, 1.0), true);
    for engine in [&mut with, &mut fresh] {
        put(engine, "alice", "is_subscriber", Value::Bool(true), T0_NS); // ttl 7d
        put(engine, "alice", "age_band", Value::Category(2), T0_NS); // ttl 365d
        put(engine, "alice", "clicks_30d", Value::I64(30), T0_NS); // ttl 2d
        put(engine, "alice", "views_30d", Value::I64(100), T0_NS);
    }
    let ratio = |d: &Decision| {
        factor(d, 1002, FactorKind::BehavioralSignal) / factor(d, 1002, FactorKind::ModelPrediction)
    };
    // A day on, everything is fresh: a subscriber with a high CTR.
    let d = decide(&mut fresh, "alice", T0_NS + DAY);
    assert!(segment(&d, 1000) > 0.0);
    assert!((ratio(&d) - 1.0).abs() < 1e-6, "lift 1: {}", ratio(&d));
    // Eight days on: subscription (7d) and counts (2d) are stale and read
    // as their defaults; the age band (365d) still holds.
    let d = decide(&mut with, "alice", T0_NS + 8 * DAY);
    assert_eq!(segment(&d, 1000), 0.0, "stale is_subscriber reads false");
    assert!(segment(&d, 1001) > 0.0, "age_band still fresh");
    assert!(ratio(&d).abs() < 1e-6, "stale counts: the prior, lift 0");
}

#[test]
fn behavioral_signal_moves_with_stored_recency_and_ratio() {
    let mut engine = engine(EngineConfig::default(), true);
    let t = T0_NS + DAY;
    let t_s = (t / S) as i64;
    put(
        &mut engine,
        "recent",
        "last_purchase_at",
        Value::Timestamp(t_s - 86_400),
        t,
    );
    put(
        &mut engine,
        "long-ago",
        "last_purchase_at",
        Value::Timestamp(t_s - 200 * 86_400),
        t,
    );
    put(&mut engine, "clicker", "clicks_30d", Value::I64(8), t);
    put(&mut engine, "clicker", "views_30d", Value::I64(100), t);
    put(&mut engine, "ignorer", "views_30d", Value::I64(1000), t);
    let decide_cfg = EngineConfig::default().decide;
    let mut scales = Vec::new();
    for user in ["recent", "long-ago", "clicker", "ignorer", "nobody"] {
        let row = engine.features_for(user, t).expect("a store");
        let days = row.get("days_since_purchase").unwrap().0.as_f64();
        let ctr = row.get("ctr_30d").unwrap().0.as_f64();
        let want = decide_cfg.behavior_recency_weight
            * recency(days, f64::from(decide_cfg.behavior_recency_half_life_days)) as f32
            + decide_cfg.behavior_ratio_weight
                * lift(ctr, f64::from(decide_cfg.behavior_ratio_reference)) as f32;
        let d = decide(&mut engine, user, t);
        for o in d.offers() {
            let model = factor(&d, o.offer_id, FactorKind::ModelPrediction);
            let behavior = factor(&d, o.offer_id, FactorKind::BehavioralSignal);
            // First sight of each user: no fatigue.
            assert_eq!(behavior, model * want, "{user} offer {}", o.offer_id);
        }
        scales.push(want);
    }
    let [recent, long_ago, clicker, ignorer, nobody] = scales[..] else {
        unreachable!()
    };
    assert!(recent > 0.09 && recent > long_ago, "{recent} {long_ago}");
    assert!(
        long_ago > nobody && (0.0..1e-4).contains(&nobody),
        "{nobody}"
    );
    assert!(clicker > nobody && ignorer < 0.0, "{clicker} {ignorer}");
}

#[test]
fn a_request_without_a_user_decides_as_without_a_store() {
    let mut plain = engine(EngineConfig::default(), false);
    let mut with = engine(EngineConfig::default(), true);
    let ctxs: Vec<RequestContext> = common::contexts(64, 3)
        .into_iter()
        .map(|ctx| RequestContext {
            user_id: String::new(),
            ..ctx
        })
        .collect();
    let a = common::decide_all(&mut plain, &ctxs, T0_NS);
    let b = common::decide_all(&mut with, &ctxs, T0_NS);
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
    assert!(a.iter().any(|d| !d.offers().is_empty()));
}

#[test]
fn behaviour_features_are_checked_against_the_store() {
    let build = |name: &str, store: bool| {
        let mut config = EngineConfig::default();
        config.decide.behavior_recency_feature = name.into();
        let builder = Engine::builder().config(config).catalog(catalog());
        let builder = if store {
            builder.feature_store(backend())
        } else {
            builder
        };
        builder.build().map(|_| ()).map_err(|e| e.to_string())
    };
    let e = build("nope", true).unwrap_err();
    assert!(
        e.contains("decide.behavior_recency_feature") && e.contains("nope"),
        "{e}"
    );
    let e = build("last_purchase_at", true).unwrap_err();
    assert!(e.contains("timestamp"), "{e}");
    build("recent_buyer", true).expect("a boolean recency");
    build("", true).expect("the term off");
    build("nope", false).expect("no store: nothing to check");
}

#[test]
fn new_decide_settings_swapped_in_turn_the_terms_off() {
    let mut engine = engine(EngineConfig::default(), true);
    put(&mut engine, "clicker", "clicks_30d", Value::I64(8), T0_NS);
    put(&mut engine, "clicker", "views_30d", Value::I64(100), T0_NS);
    let d = decide(&mut engine, "clicker", T0_NS + S);
    assert!(factor(&d, 1002, FactorKind::BehavioralSignal) > 0.0);
    let mut bundle = Bundle::model(ModelSource::Bundled, FallbackSource::Auto);
    bundle.decide = Some(config(0.0, 0.0).decide);
    engine.swap_bundle(bundle).expect("swap");
    let d = decide(&mut engine, "clicker", T0_NS + 2 * S);
    assert!(
        factor(&d, 1002, FactorKind::BehavioralSignal) <= 0.0,
        "fatigue only"
    );
    let mut bundle = Bundle::model(ModelSource::Bundled, FallbackSource::Auto);
    let mut bad = EngineConfig::default().decide;
    bad.behavior_ratio_feature = "nope".into();
    bundle.decide = Some(bad);
    let e = engine.swap_bundle(bundle).unwrap_err().to_string();
    assert!(e.contains("decide.behavior_ratio_feature"), "{e}");
}

/// A request of `user` whose timestamp is `at_ns`.
fn request(user: &str, at_ns: u64) -> RequestContext {
    RequestContext {
        user_id: user.into(),
        country: "USA".into(),
        placement_width: 300,
        placement_height: 250,
        timestamp: (at_ns / S) as i64,
        ..RequestContext::default()
    }
}

#[test]
fn one_tick_reads_each_request_s_user_at_its_own_time() {
    // The features stage reads a tick's users together (one batched read
    // per run of equal timestamps): each request must still get its own
    // user's values at its own time, as when decided alone.
    let mut engine = engine(config(0.0, 0.0), true);
    // A subscription lives 7 days; bob's age band (25-34) 365.
    put(
        &mut engine,
        "alice",
        "is_subscriber",
        Value::Bool(true),
        T0_NS,
    );
    put(&mut engine, "bob", "age_band", Value::Category(2), T0_NS);
    let requests = [
        ("alice", T0_NS + DAY, (true, false)),
        ("bob", T0_NS + DAY, (false, true)),
        ("", T0_NS + DAY, (false, false)),
        ("alice", T0_NS + 8 * DAY, (false, false)), // stale subscription
        ("carol", T0_NS + 8 * DAY, (false, false)),
        ("bob", T0_NS + 8 * DAY, (false, true)),
        ("alice", T0_NS + DAY, (true, false)),
    ];
    let mut expected = std::collections::HashMap::new();
    for &(user, at_ns, segments) in &requests {
        let ticket = engine.submit(request(user, at_ns)).expect("room");
        expected.insert(ticket, (user, at_ns, segments));
    }
    engine.run_until_decided(T0_NS + 8 * DAY);
    let mut decided = 0;
    while let Some(d) = engine.poll() {
        assert_factors_add_up(&d);
        let (user, at_ns, (subscriber, age_band)) = expected[&d.ticket];
        let got = (segment(&d, 1000) > 0.0, segment(&d, 1001) > 0.0);
        assert_eq!(
            got,
            (subscriber, age_band),
            "{user:?} at day {}",
            (at_ns - T0_NS) / DAY
        );
        decided += 1;
    }
    assert_eq!(decided, requests.len());
    // Every request with a user was read once, in batches.
    let reads = engine.feature_store().expect("a store").stats().reads;
    assert_eq!(reads, 6, "the request without a user reads nothing");
}
