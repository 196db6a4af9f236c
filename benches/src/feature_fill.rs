//! Values for the online feature store benchmarks (issue 16): every stored
//! feature of the bundled definitions (`models/features.toml`) for a user,
//! spread over users by the user's index, and the spread user keys the
//! `feature_store` bench fills its million users under. Shared by the
//! `feature_store` bench (the store alone) and the `engine` bench's
//! `engine/store` cases (the engine with the store on against off).

use cx_engine::featurestore::{Definitions, FeaturePut, Value};

/// One second, ns.
const S: u64 = 1_000_000_000;

/// The user key of user `i` (a spread 64-bit value, as a user hash is).
#[inline]
pub fn key(i: u64) -> u64 {
    mix(i + 1)
}

/// splitmix64, so that the benches need no hashing crate. Never 0 (no user).
#[inline]
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (x ^ (x >> 31)).max(1)
}

/// Every stored feature of the bundled definitions for user `i`, under
/// the key `entity`, into `out` (cleared first): written up to an hour
/// before `t0_ns` (so fresh for a day after it under every TTL), counts
/// and amounts spread over users by `i`, a purchase 0 to 89 days before,
/// a quarter of users subscribers. `defs` must define the bundled
/// features' names (it panics naming one it lacks).
pub fn user_values(defs: &Definitions, entity: u64, i: u64, t0_ns: u64, out: &mut Vec<FeaturePut>) {
    let t = t0_ns - (i % 3_600) * S;
    let ts = (t / S) as i64;
    let values = [
        ("views_30d", Value::I64((i % 500) as i64)),
        ("clicks_30d", Value::I64((i % 17) as i64)),
        ("conversions_30d", Value::I64((i % 3) as i64)),
        (
            "last_purchase_at",
            Value::Timestamp(ts - (i % 90) as i64 * 86_400),
        ),
        ("spend_90d", Value::F32((i % 1000) as f32 / 10.0)),
        ("sessions_7d", Value::I64((i % 20) as i64)),
        ("last_seen_at", Value::Timestamp(ts)),
        ("age_band", Value::Category((i % 6) as u16)),
        ("is_subscriber", Value::Bool(i.is_multiple_of(4))),
        ("churn_risk", Value::F32((i % 100) as f32 / 100.0)),
    ];
    out.clear();
    out.extend(values.iter().map(|&(name, value)| {
        FeaturePut {
            entity,
            feature: defs
                .find(name)
                .unwrap_or_else(|| panic!("definitions lack the bundled feature {name}")),
            value,
            time_ns: t,
        }
    }));
}
