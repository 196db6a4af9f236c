//! Feedback into the feature store: impressions, clicks and conversions
//! joined to a user's decision update that user's features with update
//! rules (the bundled `models/features.toml`), and the computed features
//! follow; duplicates, users without an id and values a pipeline wrote
//! later are handled as documented; the updates allocate nothing.

mod common;

use common::T0_NS;
use cx_engine::domain::feedback::{id_key, Accepted, Event, EventKind, EventRefusal};
use cx_engine::feature_store::FeatureFeedbackCounts;
use cx_engine::features::RequestContext;
use cx_engine::featurestore::{
    Definitions, FeatureBackend, FeaturePut, FeatureValues, Freshness, OnlineFeatures, StoreConfig,
    Value,
};
use cx_engine::Engine;
use std::sync::Arc;

const S: u64 = 1_000_000_000;
const DEFS: &str = include_str!("../../models/features.toml");

fn engine() -> Engine {
    let defs = Arc::new(Definitions::from_toml_str(DEFS).expect("bundled definitions"));
    let config = StoreConfig {
        entities: 1024,
        ..StoreConfig::default()
    };
    let store = FeatureBackend::in_process(defs, config).expect("store");
    Engine::builder()
        .seed(5)
        .feature_store(store)
        .build()
        .expect("engine")
}

/// Decides one request of `user` at `now_ns`; the decision's log key.
fn decide(engine: &mut Engine, user: &str, now_ns: u64) -> u64 {
    let ctx = RequestContext {
        user_id: user.into(),
        country: "USA".into(),
        placement_width: 300,
        placement_height: 250,
        ..RequestContext::default()
    };
    let ticket = engine.submit(ctx).expect("submitted");
    engine.run_until_decided(now_ns);
    let decision = engine.poll().expect("decided");
    assert!(!decision.offers().is_empty(), "an offer was chosen");
    engine.decision_key(ticket)
}

fn event(kind: EventKind, key: u64, amount: f64) -> Event {
    let mut e = Event::new(kind, key);
    e.amount = amount;
    e
}

fn get(row: &FeatureValues, name: &str) -> (Value, Freshness) {
    row.get(name).unwrap_or_else(|| panic!("no feature {name}"))
}

#[test]
fn impressions_clicks_and_conversions_update_the_users_features() {
    let mut engine = engine();
    let key = decide(&mut engine, "u1", T0_NS);
    let before = engine.features_for("u1", T0_NS).expect("a store");
    assert_eq!(
        get(before, "views_30d"),
        (Value::I64(0), Freshness::Missing)
    );

    let t_conversion = T0_NS + 3 * S;
    let events = [
        event(EventKind::Impression, key, 0.0),
        event(EventKind::Click, key, 0.0),
    ];
    let outcome = engine.feedback(&events, T0_NS + 2 * S).expect("a batch");
    assert_eq!(outcome.applied, 2);
    let conversion = [event(EventKind::Conversion, key, 30.0)];
    assert_eq!(
        engine.feedback(&conversion, t_conversion).unwrap().applied,
        1
    );

    let now = t_conversion + 60 * S;
    let row = engine.features_for("u1", now).expect("a store");
    let fresh = |v: Value| (v, Freshness::Fresh);
    assert_eq!(get(row, "views_30d"), fresh(Value::I64(1)));
    assert_eq!(get(row, "clicks_30d"), fresh(Value::I64(1)));
    assert_eq!(get(row, "conversions_30d"), fresh(Value::I64(1)));
    let purchase_s = (t_conversion / S) as i64;
    assert_eq!(
        get(row, "last_purchase_at"),
        fresh(Value::Timestamp(purchase_s))
    );
    assert_eq!(get(row, "spend_90d"), fresh(Value::F32(30.0)));
    // Features without a rule are untouched.
    assert_eq!(get(row, "sessions_7d").1, Freshness::Missing);
    // The computed features follow: (1 + 0.02 * 50) / (1 + 50), 60 s
    // since the purchase, a recent buyer.
    assert_eq!(
        get(row, "ctr_30d"),
        fresh(Value::F32(((1.0 + 0.02 * 50.0) / 51.0) as f32))
    );
    assert_eq!(
        get(row, "days_since_purchase"),
        fresh(Value::F32((60.0 / 86_400.0) as f32))
    );
    assert_eq!(get(row, "recent_buyer"), fresh(Value::Bool(true)));
    assert_eq!(
        engine.feature_feedback_counts(),
        Some(FeatureFeedbackCounts {
            effects: 3,
            written: 5,
            ..FeatureFeedbackCounts::default()
        })
    );

    // A duplicate click is refused by the log and changes nothing.
    assert_eq!(
        engine.feedback_event(&event(EventKind::Click, key, 0.0), now),
        Err(EventRefusal::Duplicate)
    );
    let row = engine.features_for("u1", now).unwrap();
    assert_eq!(get(row, "clicks_30d"), fresh(Value::I64(1)));
    assert_eq!(get(row, "views_30d"), fresh(Value::I64(1)));
    assert_eq!(engine.feature_feedback_counts().unwrap().effects, 3);

    // Another conversion of the same decision (another event id) counts
    // again and adds its value.
    let later = now + S;
    let mut second = event(EventKind::Conversion, key, 12.5);
    second.event_key = id_key("conversion-2");
    assert_eq!(engine.feedback_event(&second, later), Ok(Accepted::Applied));
    let row = engine.features_for("u1", later).unwrap();
    assert_eq!(get(row, "conversions_30d"), fresh(Value::I64(2)));
    assert_eq!(get(row, "spend_90d"), fresh(Value::F32(42.5)));
    assert_eq!(
        get(row, "last_purchase_at"),
        fresh(Value::Timestamp((later / S) as i64))
    );
    // Another user's features are not touched.
    let other = engine.features_for("u2", later).unwrap();
    assert_eq!(get(other, "views_30d").1, Freshness::Missing);
}

#[test]
fn a_click_alone_counts_the_impression_it_implies() {
    let mut engine = engine();
    let key = decide(&mut engine, "u1", T0_NS);
    engine
        .feedback_event(&event(EventKind::Click, key, 0.0), T0_NS + S)
        .expect("applied");
    let row = engine.features_for("u1", T0_NS + S).unwrap();
    assert_eq!(get(row, "views_30d").0, Value::I64(1));
    assert_eq!(get(row, "clicks_30d").0, Value::I64(1));
    // The impression reported after the click is not counted twice.
    engine
        .feedback_event(&event(EventKind::Impression, key, 0.0), T0_NS + 2 * S)
        .expect("applied");
    let row = engine.features_for("u1", T0_NS + 2 * S).unwrap();
    assert_eq!(get(row, "views_30d").0, Value::I64(1));
}

#[test]
fn counts_continue_from_a_fresh_value_and_restart_from_a_stale_one() {
    let mut engine = engine();
    let defs = engine.feature_store().unwrap().definitions().clone();
    let views = defs.find("views_30d").unwrap();
    let clicks = defs.find("clicks_30d").unwrap();
    let u1 = cx_engine::systems::logic::user_hash("u1");
    let day = 86_400 * S;
    // Views written by a pipeline an hour ago (fresh), clicks three days
    // ago (stale: the TTL is two days).
    let t = T0_NS + 10 * day;
    let batch = [
        FeaturePut {
            entity: u1,
            feature: views,
            value: Value::I64(40),
            time_ns: t - 3_600 * S,
        },
        FeaturePut {
            entity: u1,
            feature: clicks,
            value: Value::I64(7),
            time_ns: t - 3 * day,
        },
    ];
    engine.put_features(&batch, t).expect("written");
    let key = decide(&mut engine, "u1", t);
    engine
        .feedback_event(&event(EventKind::Click, key, 0.0), t + S)
        .expect("applied");
    let row = engine.features_for("u1", t + S).unwrap();
    assert_eq!(get(row, "views_30d"), (Value::I64(41), Freshness::Fresh));
    assert_eq!(get(row, "clicks_30d"), (Value::I64(1), Freshness::Fresh));
}

#[test]
fn a_value_written_later_is_not_overwritten_and_is_counted() {
    let mut engine = engine();
    let defs = engine.feature_store().unwrap().definitions().clone();
    let views = defs.find("views_30d").unwrap();
    let u1 = cx_engine::systems::logic::user_hash("u1");
    let key = decide(&mut engine, "u1", T0_NS);
    // A pipeline's value dated after the event's arrival.
    let put = FeaturePut {
        entity: u1,
        feature: views,
        value: Value::I64(100),
        time_ns: T0_NS + 10 * S,
    };
    engine.put_features(&[put], T0_NS).unwrap();
    engine
        .feedback_event(&event(EventKind::Impression, key, 0.0), T0_NS + S)
        .expect("applied");
    let counts = engine.feature_feedback_counts().unwrap();
    assert_eq!((counts.written, counts.outdated), (0, 1));
    let row = engine.features_for("u1", T0_NS + 10 * S).unwrap();
    assert_eq!(get(row, "views_30d").0, Value::I64(100));
}

#[test]
fn a_decision_without_a_user_updates_nothing() {
    let mut engine = engine();
    let key = decide(&mut engine, "", T0_NS);
    engine
        .feedback_event(&event(EventKind::Click, key, 0.0), T0_NS + S)
        .expect("applied");
    let counts = engine.feature_feedback_counts().unwrap();
    assert_eq!((counts.effects, counts.written, counts.no_user), (0, 0, 1));
    assert_eq!(engine.feature_store().unwrap().stats().written, 0);
}

#[test]
fn an_engine_without_a_store_takes_feedback_as_before() {
    let mut engine = Engine::builder().seed(5).build().expect("engine");
    let key = decide(&mut engine, "u1", T0_NS);
    assert_eq!(
        engine.feedback_event(&event(EventKind::Click, key, 0.0), T0_NS + S),
        Ok(Accepted::Applied)
    );
    assert_eq!(engine.feature_feedback_counts(), None);
    assert_eq!(engine.feedback_counts().clicks, 1);
}

/// Decides for 64 users, then takes an impression, a click and a
/// conversion of each: the allocations of the measured feedback, the
/// engine and the events.
fn feedback_allocations(mut engine: Engine) -> (u64, Engine, Vec<Event>) {
    let users: Vec<String> = (0..64).map(|i| format!("user-{i}")).collect();
    let keys: Vec<u64> = users
        .iter()
        .map(|u| decide(&mut engine, u, T0_NS))
        .collect();
    let events: Vec<Event> = keys
        .iter()
        .flat_map(|&key| {
            [
                event(EventKind::Impression, key, 0.0),
                event(EventKind::Click, key, 0.0),
                event(EventKind::Conversion, key, 9.5),
            ]
        })
        .collect();
    // Warm up: the first event of one user (not measured).
    engine.feedback(&events[..1], T0_NS + S).unwrap();
    let info = allocation_counter::measure(|| {
        let outcome = engine.feedback(&events[1..], T0_NS + 2 * S).unwrap();
        assert_eq!(outcome.applied as usize, events.len() - 1);
    });
    (info.count_total, engine, events)
}

#[test]
fn feature_updates_from_feedback_allocate_nothing() {
    // The feedback path's own first-time allocations (state of offers
    // seen for the first time) are the same with and without a store: the
    // store's updates add none.
    let plain = Engine::builder().seed(5).build().expect("engine");
    let (without_store, _, _) = feedback_allocations(plain);
    let (with_store, mut engine, events) = feedback_allocations(engine());
    assert_eq!(with_store, without_store);
    let counts = engine.feature_feedback_counts().unwrap();
    assert_eq!(counts.effects, 3 * 64);
    // Per user: views, clicks, then conversions, last purchase and spend.
    assert_eq!(counts.written, 5 * 64);
    // Warm, the whole path allocates nothing: another conversion of each.
    let conversions: Vec<Event> = events
        .iter()
        .filter(|e| e.kind == EventKind::Conversion)
        .map(|e| Event {
            event_key: e.decision_key ^ 1,
            ..*e
        })
        .collect();
    let info = allocation_counter::measure(|| {
        let outcome = engine.feedback(&conversions, T0_NS + 3 * S).unwrap();
        assert_eq!(outcome.applied, 64);
    });
    assert_eq!(info.count_total, 0, "{info:?}");
    let counts = engine.feature_feedback_counts().unwrap();
    assert_eq!(counts.written, 5 * 64 + 3 * 64);
    let row = engine.features_for("user-63", T0_NS + 3 * S).unwrap();
    assert_eq!(get(row, "spend_90d").0, Value::F32(19.0));
    assert_eq!(get(row, "conversions_30d").0, Value::I64(2));
}
