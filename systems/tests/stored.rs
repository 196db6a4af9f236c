//! What decisions read of the feature store (`logic::stored`): stored
//! segments are the catalog's hashes of `name=label` and of true booleans'
//! names, whatever the values; the behaviour scale is finite and bounded
//! by its weights, and absent when its terms are off.

use cx_domain::catalog::item_hash;
use cx_featurestore::{
    Definitions, FeaturePut, FeatureStore, FeatureValues, StoreConfig, Value, ValueType,
};
use cx_systems::logic::stored::{BehaviorInputs, SegmentTable};
use cx_systems::DecideConfig;
use proptest::prelude::*;
use std::sync::Arc;

const T0: u64 = 1_767_225_600_000_000_000;
const S: u64 = 1_000_000_000;

fn defs() -> Arc<Definitions> {
    let text = include_str!("../../models/features.toml");
    Arc::new(Definitions::from_toml_str(text).expect("bundled definitions"))
}

fn store(defs: &Arc<Definitions>) -> FeatureStore {
    let config = StoreConfig {
        entities: 64,
        ..StoreConfig::default()
    };
    FeatureStore::new(defs.clone(), config).expect("store")
}

fn put(defs: &Definitions, name: &str, value: Value) -> FeaturePut {
    FeaturePut {
        entity: 7,
        feature: defs.find(name).unwrap(),
        value,
        time_ns: T0,
    }
}

/// The segments a row gives, as the module docs state them, hashed.
fn expected(defs: &Definitions, row: &FeatureValues) -> Vec<u64> {
    row.iter()
        .filter_map(|(id, value, _)| match (defs.value_type(id), value) {
            (Some(ValueType::Category), v) => Some(item_hash(&format!(
                "{}={}",
                defs.name(id),
                defs.label(id, v).unwrap()
            ))),
            (Some(ValueType::Bool), Value::Bool(true)) => Some(item_hash(defs.name(id))),
            _ => None,
        })
        .collect()
}

proptest! {
    #[test]
    fn stored_segments_are_the_documented_texts_hashed(
        band in 0u16..6,
        subscriber in any::<bool>(),
        bought_days_ago in proptest::option::of(0u64..100),
        age_s in 0u64..(400 * 86_400),
    ) {
        let defs = defs();
        let mut store = store(&defs);
        let mut batch = vec![
            put(&defs, "age_band", Value::Category(band)),
            put(&defs, "is_subscriber", Value::Bool(subscriber)),
        ];
        if let Some(days) = bought_days_ago {
            let at = (T0 / S - days * 86_400) as i64;
            batch.push(put(&defs, "last_purchase_at", Value::Timestamp(at)));
        }
        store.put(&batch, T0).unwrap();
        let mut row = FeatureValues::new(defs.clone());
        store.read(7, T0 + age_s * S, &mut row).unwrap();
        let table = SegmentTable::new(&defs);
        let got = table.segments_of(&row);
        prop_assert_eq!(got.as_slice(), &expected(&defs, &row)[..]);
        // Fresh values: the written ones are among them.
        if age_s == 0 {
            let subscribed = got.as_slice().contains(&item_hash("is_subscriber"));
            prop_assert_eq!(subscribed, subscriber);
            let label = defs.label(defs.find("age_band").unwrap(), Value::Category(band));
            let band_hash = item_hash(&format!("age_band={}", label.unwrap()));
            prop_assert!(got.as_slice().contains(&band_hash));
        }
    }

    #[test]
    fn the_behaviour_scale_is_bounded_by_its_weights(
        clicks in 0i64..10_000,
        views in 0i64..10_000,
        bought_days_ago in 0u64..1000,
        recency_weight in 0.0f32..10.0,
        ratio_weight in 0.0f32..10.0,
        half_life in 0.01f32..1000.0,
    ) {
        let defs = defs();
        let mut store = store(&defs);
        let at = (T0 / S - bought_days_ago * 86_400) as i64;
        store.put(&[
            put(&defs, "clicks_30d", Value::I64(clicks)),
            put(&defs, "views_30d", Value::I64(views)),
            put(&defs, "last_purchase_at", Value::Timestamp(at)),
        ], T0).unwrap();
        let mut row = FeatureValues::new(defs.clone());
        store.read(7, T0, &mut row).unwrap();
        let config = DecideConfig {
            behavior_recency_weight: recency_weight,
            behavior_ratio_weight: ratio_weight,
            behavior_recency_half_life_days: half_life,
            ..DecideConfig::default()
        };
        let inputs = BehaviorInputs::new(&defs, &config).unwrap();
        match inputs.scale(&row) {
            None => prop_assert!(recency_weight == 0.0 && ratio_weight == 0.0),
            Some(scale) => {
                prop_assert!(scale.is_finite());
                prop_assert!(scale >= -ratio_weight * 1.000_001);
                prop_assert!(scale <= (recency_weight + ratio_weight) * 1.000_001);
            }
        }
    }
}

#[test]
fn terms_off_give_no_scale() {
    let defs = defs();
    let row = FeatureValues::new(defs.clone());
    let off = DecideConfig {
        behavior_recency_weight: 0.0,
        behavior_ratio_feature: String::new(),
        ..DecideConfig::default()
    };
    let inputs = BehaviorInputs::new(&defs, &off).unwrap();
    assert!(inputs.is_off());
    assert_eq!(inputs.scale(&row), None);
    let on = BehaviorInputs::new(&defs, &DecideConfig::default()).unwrap();
    assert!(!on.is_off());
}

#[test]
fn a_boolean_recency_is_one_when_true() {
    let defs = defs();
    let config = DecideConfig {
        behavior_recency_feature: "recent_buyer".into(),
        behavior_recency_weight: 0.5,
        behavior_ratio_weight: 0.0,
        ..DecideConfig::default()
    };
    let inputs = BehaviorInputs::new(&defs, &config).unwrap();
    let mut store = store(&defs);
    let mut row = FeatureValues::new(defs.clone());
    store.read(7, T0, &mut row).unwrap();
    assert_eq!(inputs.scale(&row), Some(0.0), "never bought");
    let at = (T0 / S - 86_400) as i64;
    store
        .put(&[put(&defs, "last_purchase_at", Value::Timestamp(at))], T0)
        .unwrap();
    store.read(7, T0, &mut row).unwrap();
    assert_eq!(inputs.scale(&row), Some(0.5), "bought yesterday");
}
