//! The in-process store: read semantics (fresh, stale, missing, computed),
//! writes, eviction, sizing, health, allocations.

mod common;

use common::*;
use cx_featurestore::{
    Error, FeaturePut, FeatureStore, FeatureValues, Freshness, StoreConfig, Value, PUT_BATCH_MAX,
    READ_BATCH_MAX,
};

fn store(entities: usize) -> FeatureStore {
    FeatureStore::new(bundled(), config(entities)).expect("store")
}

#[test]
fn a_full_user_reads_fresh_with_computed_features() {
    let mut s = store(1024);
    let defs = s.definitions().clone();
    let out = s.put(&full_user(&defs, 7, T0), T0).unwrap();
    assert_eq!((out.written, out.outdated, out.evicted), (10, 0, 0));
    let mut row = FeatureValues::new(defs.clone());
    s.read(7, T0 + 3_600 * S, &mut row).unwrap();
    for (id, _, freshness) in row.iter() {
        assert_eq!(freshness, Freshness::Fresh, "{}", defs.name(id));
    }
    assert_eq!(row.get("views_30d").unwrap().0, Value::I64(200));
    assert_eq!(row.get("spend_90d").unwrap().0, Value::F32(42.5));
    assert_eq!(row.get("age_band").unwrap().0, Value::Category(2));
    assert_eq!(row.age_s(id(&defs, "views_30d")), Some(3_600));
    // 10 days before T0, read an hour after T0.
    let days = row.get("days_since_purchase").unwrap().0;
    assert_eq!(days, Value::F32((10.0 + 1.0 / 24.0) as f32));
    let ctr = row.get("ctr_30d").unwrap().0;
    assert_eq!(ctr, Value::F32(((6.0 + 0.02 * 50.0) / 250.0) as f32));
    assert_eq!(row.get("recent_buyer").unwrap().0, Value::Bool(true));
}

#[test]
fn an_unknown_user_reads_every_default_as_missing() {
    let mut s = store(64);
    let defs = s.definitions().clone();
    let mut row = FeatureValues::new(defs.clone());
    for entity in [0u64, 99] {
        s.read(entity, T0, &mut row).unwrap();
        for (i, f) in defs.stored().iter().enumerate() {
            let (value, freshness) = row.get(&f.name).unwrap();
            assert_eq!((value, freshness), (f.default, Freshness::Missing), "{i}");
        }
        assert_eq!(
            row.get("days_since_purchase").unwrap(),
            (Value::F32(365.0), Freshness::Missing)
        );
        assert_eq!(
            row.get("ctr_30d").unwrap(),
            (Value::F32(0.02), Freshness::Missing)
        );
        assert_eq!(
            row.get("recent_buyer").unwrap(),
            (Value::Bool(false), Freshness::Missing)
        );
    }
}

#[test]
fn a_value_older_than_its_ttl_reads_as_its_default_and_stale() {
    let mut s = store(64);
    let defs = s.definitions().clone();
    let churn = id(&defs, "churn_risk"); // ttl 1d
    s.put(&full_user(&defs, 7, T0), T0).unwrap();
    let mut row = FeatureValues::new(defs.clone());
    // Exactly one TTL old: still fresh; one second more: stale.
    s.read(7, T0 + DAY, &mut row).unwrap();
    assert_eq!(
        (row.value(churn), row.freshness(churn)),
        (Some(Value::F32(0.125)), Freshness::Fresh)
    );
    s.read(7, T0 + DAY + S, &mut row).unwrap();
    assert_eq!(
        (row.value(churn), row.freshness(churn)),
        (Some(Value::F32(0.5)), Freshness::Stale)
    );
    assert_eq!(row.age_s(churn), Some(86_401));
    // After 3 days, the 2-day counters are stale: the ratio reads their
    // defaults (0 / 0 -> the prior mean) and is stale too.
    s.read(7, T0 + 3 * DAY, &mut row).unwrap();
    assert_eq!(
        row.get("ctr_30d").unwrap(),
        (Value::F32(0.02), Freshness::Stale)
    );
    // The purchase time lives a year: days since purchase still counts.
    assert_eq!(row.get("days_since_purchase").unwrap().1, Freshness::Fresh);
    // After a year and 11 days it is stale: the computed default.
    s.read(7, T0 + 376 * DAY, &mut row).unwrap();
    assert_eq!(
        row.get("days_since_purchase").unwrap(),
        (Value::F32(365.0), Freshness::Stale)
    );
    assert_eq!(
        row.get("recent_buyer").unwrap(),
        (Value::Bool(false), Freshness::Stale)
    );
    // A clock before the write: age 0, fresh.
    s.read(7, T0 - DAY, &mut row).unwrap();
    assert_eq!(row.freshness(churn), Freshness::Fresh);
    assert_eq!(row.age_s(churn), Some(0));
}

#[test]
fn a_ratio_with_one_input_missing_reads_it_as_its_default() {
    let mut s = store(64);
    let defs = s.definitions().clone();
    s.put(&[put(&defs, 3, "views_30d", Value::I64(100), T0)], T0)
        .unwrap();
    let mut row = FeatureValues::new(defs.clone());
    s.read(3, T0, &mut row).unwrap();
    let expected = ((0.0 + 0.02 * 50.0) / 150.0) as f32;
    assert_eq!(
        row.get("ctr_30d").unwrap(),
        (Value::F32(expected), Freshness::Missing)
    );
}

#[test]
fn older_writes_never_overwrite_newer_values() {
    let mut s = store(64);
    let defs = s.definitions().clone();
    let views = |v, t| put(&defs, 5, "views_30d", Value::I64(v), t);
    let out = s
        .put(
            &[views(10, T0 + 10 * S), views(5, T0), views(11, T0 + 10 * S)],
            T0,
        )
        .unwrap();
    assert_eq!((out.written, out.outdated), (2, 1));
    let mut row = FeatureValues::new(defs.clone());
    s.read(5, T0 + 20 * S, &mut row).unwrap();
    assert_eq!(
        row.get("views_30d").unwrap().0,
        Value::I64(11),
        "equal time: the later write wins"
    );
    assert_eq!(s.stats().outdated, 1);
    assert_eq!(s.health().features[0].counts.writes, 2);
}

#[test]
fn a_bad_write_fails_the_whole_batch() {
    let mut s = store(64);
    let defs = s.definitions().clone();
    let good = put(&defs, 1, "views_30d", Value::I64(1), T0);
    let cases: Vec<(FeaturePut, &str)> = vec![
        (
            put(&defs, 1, "views_30d", Value::F32(1.0), T0),
            "a f32 value, the feature holds i64",
        ),
        (
            put(&defs, 1, "spend_90d", Value::F32(f32::NAN), T0),
            "not finite",
        ),
        (
            put(&defs, 1, "age_band", Value::Category(6), T0),
            "category 6 is not below the 6 labels",
        ),
        (
            put(&defs, 0, "views_30d", Value::I64(1), T0),
            "entity key 0",
        ),
        (
            put(&defs, 1, "ctr_30d", Value::F32(0.1), T0),
            "computed feature cannot be written",
        ),
        (
            FeaturePut {
                feature: cx_featurestore::FeatureId::clone(&id(&defs, "recent_buyer")),
                ..good
            },
            "computed",
        ),
    ];
    for (bad, words) in cases {
        let e = s.put(&[good, good, bad], T0).unwrap_err();
        let message = e.to_string();
        assert!(matches!(e, Error::BadPut { index: 2, .. }), "{message}");
        assert!(message.contains(words), "{message}");
        assert!(
            message.contains("nothing of the batch was written"),
            "{message}"
        );
    }
    assert_eq!(s.stats().written, 0);
    assert_eq!(s.stats().entities, 0);
    let too_many = vec![good; PUT_BATCH_MAX + 1];
    assert!(matches!(
        s.put(&too_many, T0).unwrap_err(),
        Error::LimitExceeded { .. }
    ));
    assert_eq!(
        s.put(&vec![good; PUT_BATCH_MAX], T0).unwrap().written,
        PUT_BATCH_MAX as u64
    );
}

#[test]
fn a_full_set_reuses_an_expired_entity_before_evicting_the_oldest_write() {
    // 8 slots: one set.
    let mut s = store(1);
    assert_eq!(s.stats().capacity, 8);
    let defs = s.definitions().clone();
    let churn = |e: u64, t| put(&defs, e, "churn_risk", Value::F32(0.1), t); // ttl 1d
    let seen = |e: u64, t| put(&defs, e, "last_seen_at", Value::Timestamp(1), t); // ttl 90d
                                                                                  // Entity 1 holds only a 1-day value; 2..=8 hold 90-day values.
    s.put(&[churn(1, T0)], T0).unwrap();
    for e in 2..=8 {
        s.put(&[seen(e, T0)], T0 + e * S).unwrap();
    }
    assert_eq!(s.stats().entities, 8);
    // Two days later entity 1 has expired: it makes room, no eviction.
    let out = s.put(&[seen(9, T0 + 2 * DAY)], T0 + 2 * DAY).unwrap();
    assert_eq!((out.evicted, s.stats().reclaimed), (0, 1));
    // Next: the oldest write (entity 2) is evicted.
    let out = s.put(&[seen(10, T0 + 2 * DAY)], T0 + 2 * DAY).unwrap();
    assert_eq!((out.evicted, s.stats().evictions), (1, 1));
    let mut row = FeatureValues::new(defs.clone());
    s.read(2, T0 + 2 * DAY, &mut row).unwrap();
    assert_eq!(
        row.get("last_seen_at").unwrap().1,
        Freshness::Missing,
        "evicted"
    );
    s.read(3, T0 + 2 * DAY, &mut row).unwrap();
    assert_eq!(row.get("last_seen_at").unwrap().1, Freshness::Fresh);
    assert_eq!(s.stats().entities, 8);
    // A write refreshes an entity: 3 is written again, so 4 goes next.
    s.put(&[seen(3, T0 + 2 * DAY)], T0 + 3 * DAY).unwrap();
    s.put(&[seen(11, T0 + 3 * DAY)], T0 + 3 * DAY).unwrap();
    s.read(3, T0 + 3 * DAY, &mut row).unwrap();
    assert_eq!(row.get("last_seen_at").unwrap().1, Freshness::Fresh);
    s.read(4, T0 + 3 * DAY, &mut row).unwrap();
    assert_eq!(row.get("last_seen_at").unwrap().1, Freshness::Missing);
}

#[test]
fn sizes_follow_entities_and_bytes() {
    let defs = bundled();
    assert_eq!(cx_featurestore::bytes_per_entity(10), 144);
    let s = FeatureStore::new(defs.clone(), config(1001)).unwrap();
    assert_eq!((s.stats().capacity, s.stats().bytes), (1008, 1008 * 144));
    assert_eq!(s.sets(), 126);
    // The byte budget wins: 100 KiB holds 711 entities of 144 bytes, 88
    // whole sets of 8.
    let small = StoreConfig {
        bytes_max: 100 << 10,
        ..config(1 << 20)
    };
    let s = FeatureStore::new(defs.clone(), small).unwrap();
    assert_eq!(s.stats().capacity, 704);
    assert!(s.stats().bytes <= 100 << 10);
    let tiny = StoreConfig {
        bytes_max: 1000,
        ..config(8)
    };
    let e = FeatureStore::new(defs.clone(), tiny)
        .unwrap_err()
        .to_string();
    assert!(e.contains("bytes_max") && e.contains("one set"), "{e}");
    for (bad, field) in [
        (config(0), "entities"),
        (config(cx_featurestore::ENTITIES_MAX + 1), "entities"),
        (
            StoreConfig {
                bytes_max: 0,
                ..config(8)
            },
            "bytes_max",
        ),
        (
            StoreConfig {
                bytes_max: (1 << 36) + 1,
                ..config(8)
            },
            "bytes_max",
        ),
        (
            StoreConfig {
                stale_warn_share: 1.5,
                ..config(8)
            },
            "stale_warn_share",
        ),
        (
            StoreConfig {
                stale_warn_share: f64::NAN,
                ..config(8)
            },
            "stale_warn_share",
        ),
    ] {
        let e = FeatureStore::new(defs.clone(), bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains(field), "{e}");
    }
}

#[test]
fn health_counts_reads_writes_and_ages_and_warns_on_stale_share() {
    let defs = bundled();
    let cfg = StoreConfig {
        stale_warn_share: 0.25,
        warn_min_reads: 4,
        ..config(64)
    };
    let mut s = FeatureStore::new(defs.clone(), cfg).unwrap();
    s.put(&full_user(&defs, 1, T0), T0).unwrap();
    let mut row = FeatureValues::new(defs.clone());
    s.read(1, T0 + 100 * S, &mut row).unwrap(); // all fresh, age 100
    s.read(1, T0 + 2 * DAY, &mut row).unwrap(); // churn_risk and sessions_7d stale
    s.read(2, T0, &mut row).unwrap(); // unknown: all missing
    let report = s.health();
    let churn = &report.features[9];
    assert_eq!(churn.name, "churn_risk");
    assert_eq!(
        (
            churn.counts.fresh,
            churn.counts.stale,
            churn.counts.missing,
            churn.counts.writes
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(churn.age_p50_s(), Some(127), "100 s: the bucket 64..127");
    assert_eq!(
        churn.age_p99_s(),
        Some((1 << 18) - 1),
        "2 days: the bucket 2^17..2^18-1"
    );
    assert!(!report.any_warning(), "3 reads, fewer than 4");
    s.read(1, T0 + 2 * DAY, &mut row).unwrap();
    let report = s.health();
    let flagged: Vec<&str> = report.warnings().map(|f| f.name.as_str()).collect();
    assert_eq!(flagged, ["sessions_7d", "churn_risk"], "2 of 4 reads stale");
    assert!((report.features[9].stale_share - 0.5).abs() < 1e-12);
    assert_eq!(s.stats().reads, 4);
}

#[test]
fn a_row_of_other_definitions_is_refused() {
    let mut s = store(64);
    let other = std::sync::Arc::new(cx_featurestore::Definitions::from_toml_str("").unwrap());
    let mut row = FeatureValues::new(other);
    let e = s.read(1, T0, &mut row).unwrap_err().to_string();
    assert!(
        e.contains("the row was made for feature definitions"),
        "{e}"
    );
}

#[test]
fn a_batched_read_gives_what_single_reads_give() {
    let defs = bundled();
    let (mut one, mut many) = (store(256), store(256));
    for e in 1..=40u64 {
        let t = T0 + e * 3_600 * S;
        one.put(&full_user(&defs, e, t), t).unwrap();
        many.put(&full_user(&defs, e, t), t).unwrap();
    }
    let entities: Vec<u64> = (0..READ_BATCH_MAX as u64).map(|i| (i * 7) % 50).collect();
    let mut rows = vec![FeatureValues::new(defs.clone()); entities.len()];
    let now = T0 + 30 * 3_600 * S;
    many.read_many(&entities, now, &mut rows).unwrap();
    let mut row = FeatureValues::new(defs.clone());
    for (&e, batched) in entities.iter().zip(&rows) {
        one.read(e, now, &mut row).unwrap();
        let a: Vec<_> = row.iter().collect();
        let b: Vec<_> = batched.iter().collect();
        assert_eq!(a, b, "entity {e}");
    }
    assert_eq!(one.health(), many.health());
    assert_eq!(one.stats(), many.stats());
    let e = many
        .read_many(&entities[..3], now, &mut rows[..2])
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("3 entities need as many rows, not 2"),
        "{e}"
    );
    let too_many = vec![1u64; READ_BATCH_MAX + 1];
    let mut rows = vec![FeatureValues::new(defs.clone()); READ_BATCH_MAX + 1];
    assert!(matches!(
        many.read_many(&too_many, now, &mut rows).unwrap_err(),
        Error::LimitExceeded { .. }
    ));
}

#[test]
fn the_counter_sees_an_allocation() {
    let info = allocation_counter::measure(|| {
        std::hint::black_box(vec![1u8; 64]);
    });
    assert_eq!(info.count_total, 1, "so zero below means zero");
}

#[test]
fn reads_and_writes_allocate_nothing_after_new() {
    let mut s = store(256);
    let defs = s.definitions().clone();
    let mut row = FeatureValues::new(defs.clone());
    let mut rows = vec![FeatureValues::new(defs.clone()); 16];
    let keys: Vec<u64> = (0..16).collect();
    let batches: Vec<Vec<FeaturePut>> = (1..600u64)
        .map(|e| full_user(&defs, e, T0 + e * S))
        .collect();
    let mut fresh = 0usize;
    let info = allocation_counter::measure(|| {
        for (i, batch) in batches.iter().enumerate() {
            s.put(batch, T0 + i as u64 * S).unwrap();
            for e in [i as u64, i as u64 / 2, 7] {
                s.read(e, T0 + (i as u64) * 600 * S, &mut row).unwrap();
                fresh += row
                    .iter()
                    .filter(|(_, _, f)| *f == Freshness::Fresh)
                    .count();
            }
            s.read_many(&keys, T0 + i as u64 * S, &mut rows).unwrap();
        }
    });
    assert_eq!(info.count_total, 0, "the feature store allocated");
    let stats = s.stats();
    assert!(
        fresh > 0 && stats.evictions > 0 && stats.reads > 0,
        "{stats:?}"
    );
}

#[test]
fn set_defaults_gives_what_a_read_of_an_unknown_user_gives() {
    let mut s = store(1024);
    let defs = s.definitions().clone();
    s.put(&full_user(&defs, 7, T0), T0).unwrap();
    let mut read = FeatureValues::new(defs.clone());
    s.read(8, T0 + S, &mut read).unwrap();
    let reads = s.stats().reads;
    // A buffer that held a full user's values.
    let mut reset = FeatureValues::new(defs.clone());
    s.read(7, T0 + S, &mut reset).unwrap();
    reset.set_defaults(T0 + S);
    let got: Vec<_> = reset.iter().collect();
    let want: Vec<_> = read.iter().collect();
    assert_eq!(got, want);
    assert_eq!(reset.get("ctr_30d").unwrap().0, Value::F32(0.02));
    assert_eq!(
        reset.get("days_since_purchase").unwrap().0,
        Value::F32(365.0)
    );
    assert_eq!(s.stats().reads, reads + 1, "set_defaults reads nothing");
}
