//! The store section of schema version 2: its id, its columns, and that
//! sparse and dense extraction agree with it.

use cx_features::{
    age_days, signed_log, BlockKind, FeatureSchema, RequestContext, StoreEncoding,
    SPARSE_NONZERO_MAX,
};
use cx_featurestore::{Definitions, FeaturePut, FeatureStore, FeatureValues, StoreConfig, Value};
use std::sync::Arc;

const DEFS: &str = include_str!("../../../models/features.toml");
const NOW_S: i64 = 1_767_225_600;
const NS: u64 = 1_000_000_000;

fn defs() -> Arc<Definitions> {
    Arc::new(Definitions::from_toml_str(DEFS).expect("bundled definitions"))
}

fn ctx() -> RequestContext {
    RequestContext {
        user_id: "u1".into(),
        domain: "example.com".into(),
        timestamp: NOW_S,
        ..RequestContext::default()
    }
}

/// A read of user 7 after a few writes.
fn written_values(defs: &Arc<Definitions>) -> FeatureValues {
    let mut store = FeatureStore::new(
        defs.clone(),
        StoreConfig {
            entities: 64,
            ..StoreConfig::default()
        },
    )
    .expect("store");
    let t = NOW_S as u64 * NS;
    let put = |name: &str, value: Value| FeaturePut {
        entity: 7,
        feature: defs.find(name).expect(name),
        value,
        time_ns: t - 3_600 * NS,
    };
    store
        .put(
            &[
                put("views_30d", Value::I64(40)),
                put("clicks_30d", Value::I64(4)),
                put("last_purchase_at", Value::Timestamp(NOW_S - 10 * 86_400)),
                put(
                    "age_band",
                    defs.category(defs.find("age_band").unwrap(), "25-34")
                        .unwrap(),
                ),
                put("is_subscriber", Value::Bool(true)),
            ],
            t,
        )
        .expect("put");
    let mut values = FeatureValues::new(defs.clone());
    store.read(7, t, &mut values).expect("read");
    values
}

#[test]
fn the_store_section_is_version_2_with_its_own_id_and_v1_is_unchanged() {
    let v1 = FeatureSchema::v1();
    let v2 = v1.with_store(defs()).expect("v2");
    assert_ne!(v1.id(), v2.id());
    assert_eq!(FeatureSchema::v1().id(), v1.id());
    assert!(v2.canonical().starts_with("cx-feature-schema version=2 "));
    assert!(v2
        .canonical()
        .contains(&format!("store definitions={}", defs().id())));
    let block = v2.block("store").expect("a store block");
    assert_eq!(block.offset, v1.width());
    assert_eq!(block.offset + block.width, v2.width());
    assert!(matches!(block.kind, BlockKind::Store { features: 13 }));
    // 12 one-column features and age_band's 6 labels.
    assert_eq!(block.width, 12 + 6);
    assert!(
        v2.with_store(defs()).is_err(),
        "a second section is refused"
    );
    // Other definitions, another id.
    let other = DEFS.replace("ttl = \"2d\"", "ttl = \"3d\"");
    let other = Arc::new(Definitions::from_toml_str(&other).unwrap());
    assert_ne!(v1.with_store(other).unwrap().id(), v2.id());
}

#[test]
fn columns_encode_numbers_flags_ages_and_categories() {
    let defs = defs();
    let schema = FeatureSchema::v1().with_store(defs.clone()).unwrap();
    let (section, offset) = schema.store_section().unwrap();
    let values = written_values(&defs);
    let mut row = vec![0.0f32; schema.width()];
    schema
        .extract_with_store(&ctx(), Some(&values), &mut row)
        .unwrap();
    let col = |name: &str| {
        let c = section.columns().iter().find(|c| c.name == name).unwrap();
        (offset + c.offset, c.encoding)
    };
    let (views, enc) = col("views_30d");
    assert_eq!(enc, StoreEncoding::Number);
    assert_eq!(row[views], signed_log(40.0));
    let (purchase, enc) = col("last_purchase_at");
    assert_eq!(enc, StoreEncoding::AgeDays);
    assert_eq!(row[purchase], age_days((NOW_S - 10 * 86_400) as f64, NOW_S));
    let (sub, enc) = col("is_subscriber");
    assert_eq!(enc, StoreEncoding::Flag);
    assert_eq!(row[sub], 1.0);
    let (age, enc) = col("age_band");
    assert_eq!(enc, StoreEncoding::OneHot { labels: 6 });
    assert_eq!(&row[age..age + 6], &[0.0, 0.0, 1.0, 0.0, 0.0, 0.0]);
    let (recent, _) = col("recent_buyer");
    assert_eq!(row[recent], 1.0, "bought 10 days ago: within 30");
    let (ctr, _) = col("ctr_30d");
    let expected = (4.0 + 0.02 * 50.0) / (40.0 + 50.0);
    assert!((row[ctr] - signed_log(expected)).abs() < 1e-6);
    // The v1 part is the v1 row.
    let mut v1_row = vec![0.0f32; FeatureSchema::v1().width()];
    FeatureSchema::v1().extract(&ctx(), &mut v1_row).unwrap();
    assert_eq!(&row[..offset], &v1_row[..]);
}

#[test]
fn no_values_write_the_defaults_of_a_user_never_seen() {
    let defs = defs();
    let schema = FeatureSchema::v1().with_store(defs.clone()).unwrap();
    let mut plain = vec![0.0f32; schema.width()];
    schema.extract(&ctx(), &mut plain).unwrap();
    let mut missing = vec![0.0f32; schema.width()];
    let unknown = {
        let mut store = FeatureStore::new(defs.clone(), StoreConfig::default()).unwrap();
        let mut v = FeatureValues::new(defs.clone());
        store.read(99, NOW_S as u64 * NS, &mut v).unwrap();
        v
    };
    schema
        .extract_with_store(&ctx(), Some(&unknown), &mut missing)
        .unwrap();
    assert_eq!(plain, missing);
    let (section, offset) = schema.store_section().unwrap();
    let c = section
        .columns()
        .iter()
        .find(|c| c.name == "days_since_purchase")
        .unwrap();
    assert_eq!(plain[offset + c.offset], signed_log(365.0));
}

#[test]
fn values_of_other_definitions_are_refused() {
    let schema = FeatureSchema::v1().with_store(defs()).unwrap();
    let other = DEFS.replace("ttl = \"2d\"", "ttl = \"3d\"");
    let other = Arc::new(Definitions::from_toml_str(&other).unwrap());
    let values = FeatureValues::new(other);
    let mut row = vec![0.0f32; schema.width()];
    let e = schema
        .extract_with_store(&ctx(), Some(&values), &mut row)
        .unwrap_err()
        .to_string();
    assert!(e.contains("definitions"), "{e}");
    // A v1 schema ignores store values.
    let mut v1_row = vec![0.0f32; FeatureSchema::v1().width()];
    FeatureSchema::v1()
        .extract_with_store(&ctx(), Some(&values), &mut v1_row)
        .unwrap();
}

#[test]
fn sparse_extraction_with_the_store_scatters_to_the_dense_row() {
    let defs = defs();
    let schema = FeatureSchema::v1().with_store(defs.clone()).unwrap();
    let values = written_values(&defs);
    let mut dense = vec![0.0f32; schema.width()];
    schema
        .extract_with_store(&ctx(), Some(&values), &mut dense)
        .unwrap();
    let mut columns = [0u32; SPARSE_NONZERO_MAX];
    let mut sparse = [0f32; SPARSE_NONZERO_MAX];
    let (len, _) = schema
        .extract_sparse_with_store(&ctx(), Some(&values), &mut columns, &mut sparse)
        .unwrap();
    let mut scattered = vec![0.0f32; schema.width()];
    for (&c, &v) in columns[..len].iter().zip(&sparse[..len]) {
        scattered[c as usize] = v;
    }
    assert_eq!(scattered, dense);
    let (lo, hi) = schema.block("store").unwrap().range();
    let (_, offset) = schema.store_section().unwrap();
    assert!(dense[offset..].iter().all(|v| (lo..=hi).contains(v)));
}

#[test]
fn numbers_and_ages_are_clamped_and_never_nan() {
    assert_eq!(signed_log(f64::NAN), 0.0);
    assert_eq!(signed_log(f64::INFINITY), 0.0);
    assert_eq!(signed_log(-3.0), -(4.0f64.ln() as f32));
    assert_eq!(signed_log(1e30), 1e9f64.ln_1p() as f32);
    assert_eq!(age_days(2e9, NOW_S), 0.0, "a time after the request");
    assert_eq!(age_days(f64::NAN, NOW_S), 0.0);
    assert_eq!(age_days(-1e18, NOW_S), 36_500f64.ln_1p() as f32);
}
