//! Helpers shared by the store tests.
#![allow(dead_code)]

use cx_featurestore::{Definitions, FeatureId, FeaturePut, StoreConfig, Value};
use std::sync::Arc;

pub const BUNDLED: &str = include_str!("../../../../models/features.toml");
pub const S: u64 = 1_000_000_000;
pub const DAY: u64 = 86_400 * S;
/// 2026-01-01T00:00:00Z in ns.
pub const T0: u64 = 1_767_225_600 * S;

pub fn bundled() -> Arc<Definitions> {
    Arc::new(Definitions::from_toml_str(BUNDLED).expect("bundled definitions"))
}

pub fn id(defs: &Definitions, name: &str) -> FeatureId {
    defs.find(name)
        .unwrap_or_else(|| panic!("no feature {name}"))
}

pub fn put(defs: &Definitions, entity: u64, name: &str, value: Value, time_ns: u64) -> FeaturePut {
    FeaturePut {
        entity,
        feature: id(defs, name),
        value,
        time_ns,
    }
}

pub fn config(entities: usize) -> StoreConfig {
    StoreConfig {
        entities,
        ..StoreConfig::default()
    }
}

/// A full user: every stored feature of the bundled definitions, at `t`.
pub fn full_user(defs: &Definitions, entity: u64, t: u64) -> Vec<FeaturePut> {
    let ts = (t / S) as i64;
    vec![
        put(defs, entity, "views_30d", Value::I64(200), t),
        put(defs, entity, "clicks_30d", Value::I64(6), t),
        put(defs, entity, "conversions_30d", Value::I64(1), t),
        put(
            defs,
            entity,
            "last_purchase_at",
            Value::Timestamp(ts - 10 * 86_400),
            t,
        ),
        put(defs, entity, "spend_90d", Value::F32(42.5), t),
        put(defs, entity, "sessions_7d", Value::I64(9), t),
        put(defs, entity, "last_seen_at", Value::Timestamp(ts), t),
        put(defs, entity, "age_band", Value::Category(2), t),
        put(defs, entity, "is_subscriber", Value::Bool(true), t),
        put(defs, entity, "churn_risk", Value::F32(0.125), t),
    ]
}
