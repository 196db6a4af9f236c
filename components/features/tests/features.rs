//! The feature schema: exact rows for hand-checked contexts, the pinned v1
//! id, allocation-free extraction, row-width errors, bounds on random
//! contexts, normalisation, and agreement with `docs/FEATURES.md`.

use cx_features::Error;
use cx_features::{
    bucket, limits, AdPosition, ConnectionType, DeviceType, ExtractStats, FeatureNorm,
    FeatureSchema, Os, RequestContext, SchemaConfig, SEED_V1,
};
use proptest::prelude::*;
use std::f64::consts::TAU;

/// The v1 id. It changes only when the schema's definition does; if this
/// test fails, the change must come with a new `SCHEMA_VERSION`, new docs
/// and retrained models.
const V1_ID: &str = "d1fd7669507f84ac";
const V1_WIDTH: usize = 3128;

/// First columns of the v1 blocks, as documented in `docs/FEATURES.md`.
mod off {
    pub const DEVICE_TYPE: usize = 0;
    pub const OS: usize = 8;
    pub const CONNECTION_TYPE: usize = 14;
    pub const AD_POSITION: usize = 22;
    pub const INVENTORY: usize = 30;
    pub const PLACEMENT_SIZE: usize = 32;
    pub const PLACEMENT_PX: usize = 45;
    pub const BID_FLOOR: usize = 47;
    pub const HOUR_OF_DAY: usize = 48;
    pub const HOUR_OF_WEEK: usize = 50;
    pub const COUNTRY: usize = 52;
    pub const REGION: usize = 308;
    pub const SITE_ID: usize = 564;
    pub const DOMAIN: usize = 1076;
    pub const CATEGORIES: usize = 1588;
    pub const USER_ID: usize = 1844;
    pub const USER_SEGMENTS: usize = 2356;
}

/// Wednesday 2024-01-03 06:00:00 UTC (2024-01-01 was a Monday).
const WED_0600: i64 = 1_704_261_600;

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn web_context() -> RequestContext {
    RequestContext {
        user_id: "u-123".into(),
        user_segments: strings(&["sports", "travel"]),
        device_type: DeviceType::from_openrtb(4),
        os: "iOS".parse().unwrap(),
        connection_type: ConnectionType::from_openrtb(2),
        country: "USA".into(),
        region: "CA".into(),
        site_id: "site-42".into(),
        is_app: false,
        domain: "example.com".into(),
        categories: strings(&["IAB1-2", "IAB3"]),
        placement_width: 300,
        placement_height: 250,
        ad_position: AdPosition::from_openrtb(1),
        bid_floor: 1.5,
        timestamp: WED_0600,
        extra: Vec::new(),
        extra_numeric: [0.0; 4],
    }
}

fn extract(ctx: &RequestContext) -> (Vec<f32>, ExtractStats) {
    let schema = FeatureSchema::v1();
    let mut row = vec![f32::NAN; schema.width()];
    let stats = schema.extract(ctx, &mut row).unwrap();
    (row, stats)
}

/// Checks that `row` is zero except at `expect`, where it equals the given
/// values (to 1e-6 for the trigonometric ones, exactly for the rest).
fn assert_row(row: &[f32], expect: &[(usize, f32)]) {
    for (i, &v) in row.iter().enumerate() {
        let want = expect.iter().find(|e| e.0 == i).map_or(0.0, |e| e.1);
        assert!(
            (v - want).abs() <= 1e-6,
            "column {i}: got {v}, expected {want}"
        );
    }
}

fn sin_cos(hour: f64, period: f64) -> (f32, f32) {
    let angle = TAU * hour / period;
    (angle.sin() as f32, angle.cos() as f32)
}

#[test]
fn the_hash_is_xxh3_of_the_prefixed_key() {
    // Pinned: xxh3 is stable by specification (checked against the C
    // implementation through Python's `xxhash.xxh3_64_intdigest(key, seed=SEED_V1)`).
    let hash = |key: &[u8]| xxhash_rust::xxh3::xxh3_64_with_seed(key, SEED_V1);
    assert_eq!(hash(b"domain=example.com"), 0x6e4d_2b7a_e1e9_1a21);
    assert_eq!(hash(b"region=USA-CA"), 0xa707_8377_3e58_8a66);
    assert_eq!(hash(b"app_id=site-42"), 0xcc65_a991_7993_717d);
    assert_eq!(bucket(b"domain=example.com", SEED_V1, 512), 33);
    assert_eq!(bucket(b"country=USA", SEED_V1, 256), 72);
}

#[test]
fn a_web_request_gives_the_hand_checked_row() {
    let (row, stats) = extract(&web_context());
    assert_eq!(stats, ExtractStats::default());
    let (week_sin, week_cos) = sin_cos(2.0 * 24.0 + 6.0, 168.0);
    assert_row(
        &row,
        &[
            (off::DEVICE_TYPE + 4, 1.0),     // phone
            (off::OS + 2, 1.0),              // ios
            (off::CONNECTION_TYPE + 2, 1.0), // wifi
            (off::AD_POSITION + 1, 1.0),     // above the fold
            (off::INVENTORY, 1.0),           // site
            (off::PLACEMENT_SIZE, 1.0),      // 300x250
            (off::PLACEMENT_PX, 301f32.ln()),
            (off::PLACEMENT_PX + 1, 251f32.ln()),
            (off::BID_FLOOR, 2.5f32.ln()),
            (off::HOUR_OF_DAY, 1.0), // 06:00: a quarter of the day
            (off::HOUR_OF_DAY + 1, 0.0),
            (off::HOUR_OF_WEEK, week_sin), // Wednesday 06:00: hour 54 of 168
            (off::HOUR_OF_WEEK + 1, week_cos),
            (off::COUNTRY + 72, 1.0),        // "country=USA" % 256
            (off::REGION + 102, 1.0),        // "region=USA-CA" % 256
            (off::SITE_ID + 75, 1.0),        // "site_id=site-42" % 512
            (off::DOMAIN + 33, 1.0),         // "domain=example.com" % 512
            (off::CATEGORIES + 51, 1.0),     // "category=IAB1-2" % 256
            (off::CATEGORIES + 46, 1.0),     // "category=IAB3" % 256
            (off::USER_ID + 328, 1.0),       // "user_id=u-123" % 512
            (off::USER_SEGMENTS + 135, 1.0), // "user_segment=sports" % 256
            (off::USER_SEGMENTS + 105, 1.0), // "user_segment=travel" % 256
        ],
    );
    assert!((week_sin - 0.900_969).abs() < 1e-6 && (week_cos + 0.433_884).abs() < 1e-6);
}

#[test]
fn an_empty_context_lights_only_the_unknown_slots() {
    let (row, stats) = extract(&RequestContext::default());
    assert_eq!(stats, ExtractStats::default());
    // 1970-01-01 00:00 UTC, a Thursday: hour 0 of the day, hour 72 of the week.
    let (week_sin, week_cos) = sin_cos(72.0, 168.0);
    assert_row(
        &row,
        &[
            (off::DEVICE_TYPE, 1.0),
            (off::OS, 1.0),
            (off::CONNECTION_TYPE, 1.0),
            (off::AD_POSITION, 1.0),
            (off::INVENTORY, 1.0),
            (off::PLACEMENT_SIZE + 12, 1.0), // other
            (off::HOUR_OF_DAY + 1, 1.0),     // cos 0
            (off::HOUR_OF_WEEK, week_sin),
            (off::HOUR_OF_WEEK + 1, week_cos),
        ],
    );
}

#[test]
fn an_app_request_with_bad_numbers_is_clamped_and_counted() {
    let ctx = RequestContext {
        site_id: "site-42".into(),
        is_app: true,
        placement_width: u32::MAX,
        placement_height: 90,
        device_type: DeviceType::from_openrtb(99),
        connection_type: ConnectionType::from_openrtb(7),
        ad_position: AdPosition::from_openrtb(-1),
        os: Os::parse("Linux"),
        bid_floor: f64::NAN,
        timestamp: WED_0600 + 12 * 3600 + 3599, // 18:59:59 counts as hour 18
        user_segments: (0..40).map(|i| format!("s{i}")).collect(),
        categories: vec!["x".repeat(limits::VALUE_BYTES_MAX + 1)],
        region: "CA".into(), // no country: the key is "region=-CA"
        ..RequestContext::default()
    };
    let (row, stats) = extract(&ctx);
    assert_eq!(
        stats,
        ExtractStats {
            dropped_items: 8,
            oversized_values: 1,
            clamped: 2,
        }
    );
    let schema = FeatureSchema::v1();
    let on = |block: &str| -> Vec<usize> {
        let b = schema.block(block).unwrap();
        b.columns().filter(|&c| row[c] != 0.0).collect()
    };
    assert_eq!(on("device_type"), [off::DEVICE_TYPE]);
    assert_eq!(on("os"), [off::OS + 5]);
    assert_eq!(on("connection_type"), [off::CONNECTION_TYPE + 7]);
    assert_eq!(on("ad_position"), [off::AD_POSITION]);
    assert_eq!(on("inventory"), [off::INVENTORY + 1]);
    assert_eq!(on("placement_size"), [off::PLACEMENT_SIZE + 12]); // other
    assert_eq!(on("site_id"), [off::SITE_ID + 381]); // "app_id=site-42" % 512
    assert_eq!(
        on("region"),
        [off::REGION + bucket(b"region=-CA", SEED_V1, 256)]
    );
    assert_eq!(on("categories"), Vec::<usize>::new());
    let segments: Vec<usize> = (0..32)
        .map(|i| off::USER_SEGMENTS + bucket(format!("user_segment=s{i}").as_bytes(), SEED_V1, 256))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(on("user_segments"), segments);
    assert_eq!(row[off::PLACEMENT_PX], 8193f32.ln());
    assert_eq!(row[off::PLACEMENT_PX + 1], 91f32.ln());
    assert_eq!(row[off::BID_FLOOR], 0.0);
    let (sin, cos) = sin_cos(18.0, 24.0);
    assert_eq!(
        (row[off::HOUR_OF_DAY], row[off::HOUR_OF_DAY + 1]),
        (sin, cos)
    );
    assert_eq!(sin, -1.0);
    let floor_top = extract(&RequestContext {
        bid_floor: f64::INFINITY,
        ..RequestContext::default()
    });
    assert_eq!(floor_top.0[off::BID_FLOOR], 1001f32.ln());
    assert_eq!(floor_top.1.clamped, 1);
}

#[test]
fn the_v1_id_and_width_are_pinned() {
    let schema = FeatureSchema::v1();
    assert_eq!(schema.id(), V1_ID);
    assert_eq!(schema.width(), V1_WIDTH);
    assert_eq!(FeatureSchema::new(SchemaConfig::V1).unwrap().id(), V1_ID);
    assert_eq!(FeatureSchema::v1().canonical(), schema.canonical());
    let offsets: Vec<(&str, usize, usize)> = schema
        .blocks()
        .iter()
        .map(|b| (b.name, b.offset, b.width))
        .collect();
    assert_eq!(
        offsets,
        [
            ("device_type", off::DEVICE_TYPE, 8),
            ("os", off::OS, 6),
            ("connection_type", off::CONNECTION_TYPE, 8),
            ("ad_position", off::AD_POSITION, 8),
            ("inventory", off::INVENTORY, 2),
            ("placement_size", off::PLACEMENT_SIZE, 13),
            ("placement_px", off::PLACEMENT_PX, 2),
            ("bid_floor", off::BID_FLOOR, 1),
            ("hour_of_day", off::HOUR_OF_DAY, 2),
            ("hour_of_week", off::HOUR_OF_WEEK, 2),
            ("country", off::COUNTRY, 256),
            ("region", off::REGION, 256),
            ("site_id", off::SITE_ID, 512),
            ("domain", off::DOMAIN, 512),
            ("categories", off::CATEGORIES, 256),
            ("user_id", off::USER_ID, 512),
            ("user_segments", off::USER_SEGMENTS, 256),
            ("extra_numeric", 2612, 4),
            ("extra", 2616, 512),
        ]
    );
}

#[test]
fn the_id_changes_with_any_bucket_count_or_the_seed() {
    let v1 = SchemaConfig::V1;
    let variants = [
        SchemaConfig {
            seed: v1.seed + 1,
            ..v1
        },
        SchemaConfig {
            country_buckets: 255,
            ..v1
        },
        SchemaConfig {
            region_buckets: 257,
            ..v1
        },
        SchemaConfig {
            site_buckets: 511,
            ..v1
        },
        SchemaConfig {
            domain_buckets: 1024,
            ..v1
        },
        SchemaConfig {
            category_buckets: 128,
            ..v1
        },
        SchemaConfig {
            user_id_buckets: 513,
            ..v1
        },
        SchemaConfig {
            segment_buckets: 64,
            ..v1
        },
        // Same total width, different split: offsets move, so the id must too.
        SchemaConfig {
            country_buckets: 255,
            region_buckets: 257,
            ..v1
        },
    ];
    let mut ids = std::collections::BTreeSet::from([V1_ID.to_string()]);
    for config in variants {
        let id = FeatureSchema::new(config).unwrap().id().to_string();
        assert!(ids.insert(id.clone()), "{config:?} reuses id {id}");
    }
}

#[test]
fn bad_configs_are_refused() {
    let v1 = SchemaConfig::V1;
    let err = FeatureSchema::new(SchemaConfig {
        domain_buckets: 0,
        ..v1
    })
    .unwrap_err();
    assert!(matches!(err, Error::BadSchema(_)), "{err}");
    assert!(err.to_string().contains("domain"), "{err}");
    let err = FeatureSchema::new(SchemaConfig {
        user_id_buckets: limits::BUCKETS_MAX + 1,
        ..v1
    })
    .unwrap_err();
    assert!(matches!(err, Error::LimitExceeded { .. }), "{err}");
    let max = limits::BUCKETS_MAX;
    let wide = SchemaConfig {
        seed: 0,
        country_buckets: max,
        region_buckets: max,
        site_buckets: max,
        domain_buckets: max,
        category_buckets: max,
        user_id_buckets: max,
        segment_buckets: max,
        extra_buckets: max,
    };
    let err = FeatureSchema::new(wide).unwrap_err();
    assert!(err.to_string().contains("feature row width"), "{err}");
}

#[test]
fn a_row_of_the_wrong_width_is_refused() {
    let schema = FeatureSchema::v1();
    for len in [0, V1_WIDTH - 1, V1_WIDTH + 1] {
        let mut row = vec![7.0; len];
        let err = schema.extract(&web_context(), &mut row).unwrap_err();
        assert!(
            matches!(err, Error::WrongRowWidth { expected: V1_WIDTH, found, .. } if found == len),
            "{err}"
        );
        assert!(row.iter().all(|&v| v == 7.0), "the row is left untouched");
    }
}

#[test]
fn extraction_and_normalisation_allocate_nothing() {
    let schema = FeatureSchema::v1();
    let mut ctx = web_context();
    ctx.user_segments = (0..40).map(|i| format!("segment-{i}")).collect();
    ctx.categories = (0..40).map(|i| format!("IAB{i}-{i}")).collect();
    ctx.domain = "d".repeat(limits::VALUE_BYTES_MAX);
    let mut row = vec![0.0; schema.width()];
    let norm = FeatureNorm::fit(&schema, [row.as_slice()]).unwrap();
    let mut lit = 0.0;
    let info = allocation_counter::measure(|| {
        for i in 0..200 {
            ctx.timestamp = WED_0600 + i * 3600;
            ctx.bid_floor = i as f64 * 0.1;
            schema.extract(&ctx, &mut row).unwrap();
            norm.apply(&mut row).unwrap();
            lit += row[off::USER_SEGMENTS..].iter().sum::<f32>();
        }
    });
    assert_eq!(info.count_total, 0, "extraction allocated");
    assert!(lit > 0.0, "the loop did real work");
}

#[test]
fn the_counter_sees_an_allocation() {
    let info = allocation_counter::measure(|| {
        std::hint::black_box(vec![0u8; 16]);
    });
    assert!(info.count_total > 0);
}

#[test]
fn normalisation_fits_round_trips_and_checks_its_schema() {
    let schema = FeatureSchema::v1();
    let contexts: Vec<RequestContext> = (0..50)
        .map(|i| RequestContext {
            placement_width: 100 + 10 * i,
            placement_height: 50 + i,
            bid_floor: f64::from(i) * 0.25,
            timestamp: WED_0600 + i64::from(i) * 7 * 3600,
            extra_numeric: [
                f64::from(i),
                f64::from(i * i),
                f64::from(i) + 0.5,
                f64::from(50 - i),
            ],
            ..web_context()
        })
        .collect();
    let rows: Vec<Vec<f32>> = contexts.iter().map(|c| extract(c).0).collect();
    let norm = FeatureNorm::fit(&schema, rows.iter().map(Vec::as_slice)).unwrap();
    assert_eq!(norm.schema_id.as_deref(), Some(V1_ID));
    assert_eq!(
        norm.columns,
        (off::PLACEMENT_PX..off::COUNTRY)
            .chain(2612..2616)
            .collect::<Vec<_>>()
    );
    norm.check_schema(&schema).unwrap();

    let mut normalised = rows.clone();
    for row in &mut normalised {
        norm.apply(row).unwrap();
    }
    for &c in &norm.columns {
        let n = normalised.len() as f64;
        let mean = normalised.iter().map(|r| f64::from(r[c])).sum::<f64>() / n;
        let var = normalised
            .iter()
            .map(|r| (f64::from(r[c]) - mean).powi(2))
            .sum::<f64>()
            / n;
        assert!(mean.abs() < 1e-5, "column {c} mean {mean}");
        assert!((var - 1.0).abs() < 1e-4, "column {c} variance {var}");
    }
    // The indicator columns are left alone.
    assert_eq!(normalised[0][off::DOMAIN + 33], 1.0);

    let back = FeatureNorm::from_json(&norm.to_json()).unwrap();
    assert_eq!(back, norm);

    let other = FeatureSchema::new(SchemaConfig {
        seed: 1,
        ..SchemaConfig::V1
    })
    .unwrap();
    let err = norm.check_schema(&other).unwrap_err().to_string();
    assert!(err.contains(V1_ID), "{err}");
    let indicator = FeatureNorm {
        schema_id: None,
        columns: vec![off::DOMAIN],
        mean: vec![0.0],
        std: vec![1.0],
    };
    assert!(indicator.check_schema(&schema).is_err());
}

#[test]
fn a_constant_column_is_only_centred() {
    let schema = FeatureSchema::v1();
    let row = extract(&web_context()).0;
    let norm = FeatureNorm::fit(&schema, [row.as_slice(), row.as_slice()]).unwrap();
    assert!(norm.std.iter().all(|&s| s == 1.0), "{:?}", norm.std);
    assert!(FeatureNorm::fit(&schema, std::iter::empty::<&[f32]>()).is_err());
    let short = vec![0.0; 3];
    let err = FeatureNorm::fit(&schema, [short.as_slice()]).unwrap_err();
    assert!(matches!(err, Error::WrongRowWidth { .. }), "{err}");
}

/// Rows of the table in the "Blocks" section of `docs/FEATURES.md`:
/// `(name, offset, width, kind)`.
fn doc_table() -> (String, Vec<(String, usize, usize, String)>) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/FEATURES.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let rows = doc
        .lines()
        .skip_while(|l| !l.starts_with("## Blocks"))
        .skip(1)
        .take_while(|l| !l.starts_with("## "))
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (
                cells[1].trim_matches('`').to_string(),
                cells[2].parse().unwrap(),
                cells[3].parse().unwrap(),
                cells[4].trim_matches('`').to_string(),
            )
        })
        .collect();
    (doc, rows)
}

#[test]
fn the_docs_match_the_schema() {
    let schema = FeatureSchema::v1();
    let (doc, rows) = doc_table();
    let blocks: Vec<(String, usize, usize, String)> = schema
        .blocks()
        .iter()
        .map(|b| {
            (
                b.name.to_string(),
                b.offset,
                b.width,
                b.kind.name().to_string(),
            )
        })
        .collect();
    assert_eq!(
        rows, blocks,
        "docs/FEATURES.md's block table is out of date"
    );
    for needle in [
        schema.id().to_string(),
        format!("{SEED_V1:#018x}"),
        format!("{}", schema.width()),
    ] {
        assert!(
            doc.contains(&needle),
            "docs/FEATURES.md does not mention {needle}"
        );
    }
}

fn any_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z0-9 .-]{0,12}",
        1 => Just(String::new()),
        1 => (250usize..300).prop_map(|n| "v".repeat(n)),
        1 => any::<String>(),
    ]
}

fn any_context() -> impl Strategy<Value = RequestContext> {
    let ids = (
        any_string(),
        any_string(),
        any_string(),
        any_string(),
        any_string(),
    );
    let lists = (
        prop::collection::vec(any_string(), 0..45),
        prop::collection::vec(any_string(), 0..45),
    );
    let enums = (
        any::<i64>(),
        any::<i64>(),
        any::<i64>(),
        any_string(),
        any::<bool>(),
    );
    let size = prop_oneof![
        (0u32..2000, 0u32..2000),
        (any::<u32>(), any::<u32>()),
        Just((300u32, 250u32)),
        Just((320u32, 50u32)),
    ];
    let floor = prop_oneof![
        0.0f64..100.0,
        any::<f64>(),
        Just(f64::NAN),
        Just(f64::INFINITY)
    ];
    (ids, lists, enums, size, floor, any::<i64>()).prop_map(
        |(
            (user_id, country, region, site_id, domain),
            (segments, categories),
            e,
            size,
            floor,
            ts,
        )| {
            RequestContext {
                user_id,
                user_segments: segments,
                device_type: DeviceType::from_openrtb(e.0),
                os: Os::parse(&e.3),
                connection_type: ConnectionType::from_openrtb(e.1),
                country,
                region,
                site_id,
                is_app: e.4,
                domain,
                categories,
                placement_width: size.0,
                placement_height: size.1,
                ad_position: AdPosition::from_openrtb(e.2),
                bid_floor: floor,
                timestamp: ts,
                extra: vec![format!("C14={ts}"), "C1=1005".into()],
                extra_numeric: [floor, -floor, f64::from(size.0), 0.0],
            }
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_contexts_give_bounded_well_formed_rows(ctx in any_context()) {
        let schema = FeatureSchema::v1();
        let mut row = vec![f32::NAN; schema.width()];
        let stats = schema.extract(&ctx, &mut row).unwrap();
        for block in schema.blocks() {
            let values = &row[block.columns()];
            let (lo, hi) = block.range();
            for &v in values {
                prop_assert!(v.is_finite() && lo <= v && v <= hi, "{} value {v} outside [{lo}, {hi}]", block.name);
            }
            let ones = values.iter().filter(|&&v| v == 1.0).count();
            let zeros = values.iter().filter(|&&v| v == 0.0).count();
            match block.kind.name() {
                "one_hot" => prop_assert!(ones == 1 && zeros == block.width - 1, "{}: {ones} ones", block.name),
                "hashed" => prop_assert!(ones <= 1 && ones + zeros == block.width, "{}", block.name),
                "multi_hot" => prop_assert!(ones <= limits::LIST_ITEMS_MAX && ones + zeros == block.width, "{}", block.name),
                _ => {}
            }
        }
        let listed = ctx.user_segments.len().saturating_sub(limits::LIST_ITEMS_MAX)
            + ctx.categories.len().saturating_sub(limits::LIST_ITEMS_MAX);
        prop_assert_eq!(stats.dropped_items as usize, listed);
        let mut again = vec![0.5; schema.width()];
        schema.extract(&ctx, &mut again).unwrap();
        prop_assert_eq!(row, again, "extraction is deterministic");
    }
}

#[test]
fn generic_hashed_and_numeric_features_land_in_their_blocks() {
    let schema = FeatureSchema::v1();
    let mut ctx = web_context();
    ctx.extra = strings(&["C14=15704", "C1=1005"]);
    ctx.extra_numeric = [9.0, -3.0, f64::NAN, 2e9];
    let mut row = vec![0.0; schema.width()];
    let stats = schema.extract(&ctx, &mut row).unwrap();
    let numeric = schema.block("extra_numeric").unwrap();
    let values = &row[numeric.offset..numeric.offset + numeric.width];
    assert_eq!(
        values,
        [10f64.ln() as f32, 0.0, 0.0, (1e9f64).ln_1p() as f32]
    );
    assert_eq!(
        stats.clamped, 3,
        "negative, NaN and too large are clamped and counted"
    );
    let extra = schema.block("extra").unwrap();
    let ones: Vec<usize> = (extra.offset..extra.offset + extra.width)
        .filter(|&c| row[c] == 1.0)
        .collect();
    let seed = schema.config().seed;
    let buckets = schema.config().extra_buckets;
    let mut expect: Vec<usize> = ["extra=C14=15704", "extra=C1=1005"]
        .iter()
        .map(|k| extra.offset + cx_features::bucket(k.as_bytes(), seed, buckets))
        .collect();
    expect.sort_unstable();
    expect.dedup();
    assert_eq!(ones, expect);
}
