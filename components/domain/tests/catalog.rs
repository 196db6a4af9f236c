//! The offer catalog: parsing, validation (one failing case per rule, each
//! naming the offer and the field), round trips, eligibility, segment and
//! category matching, the zero-allocation hot path and the bundled default
//! catalog.

use std::path::{Path, PathBuf};

use cx_datasets::{Generator, SynthConfig, SynthRow};
use cx_domain::catalog::{
    category_covers, item_hash, limits, Catalog, Channels, CreativeSpec, FrequencyCap, Ineligible,
    OfferSpec, PageCategoryKeys, PAGE_CATEGORY_KEYS_MAX,
};
use cx_domain::Error;
use cx_features::{DeviceType, RequestContext};
use proptest::prelude::*;

// ---------------------------------------------------------------- helpers

/// The `(where_, reason)` of a catalog error; fails the test on anything else.
fn catalog_err(result: Result<Catalog, Error>) -> (String, String) {
    match result {
        Err(Error::Catalog { where_, reason }) => (where_, reason),
        Err(other) => panic!("expected a catalog error, got {other:?}"),
        Ok(_) => panic!("expected a catalog error, got a catalog"),
    }
}

/// A valid offer exercising most fields.
fn full_offer(id: u64) -> OfferSpec {
    OfferSpec {
        name: format!("Full offer {id}"),
        conversion_rate: 0.05,
        revenue: 20.0,
        lifetime_value: 55.5,
        engagement: 0.4,
        retention: 0.3,
        max_bid_cpm: 4.25,
        boost: -0.2,
        device_types: vec![DeviceType::Phone, DeviceType::Tablet],
        countries: vec!["USA".into(), "GBR".into()],
        sizes: vec![(300, 250), (320, 50)],
        channels: Channels::App,
        segments: vec!["sports".into(), "5".into()],
        categories: vec!["IAB17".into(), "IAB1-2".into()],
        frequency_cap: Some(FrequencyCap {
            impressions: 3,
            window_s: 86_400,
        }),
        daily_budget: Some(1500.5),
        adomain: vec!["brand.example".into()],
        creative_id: format!("cr-{id}-a"),
        ..OfferSpec::new(id)
    }
}

/// A minimal TOML offer with id 7; `extra` is appended inside the table.
fn toml_offer(extra: &str) -> String {
    format!(
        "[[offer]]\nid = 7\nname = \"Seven\"\nconversion_rate = 0.1\nrevenue = 5\n\
         max_bid_cpm = 2.5\ncreative_id = \"c7\"\n{extra}\n"
    )
}

fn context() -> RequestContext {
    RequestContext {
        device_type: DeviceType::Phone,
        country: "USA".into(),
        placement_width: 300,
        placement_height: 250,
        is_app: true,
        ..RequestContext::default()
    }
}

fn bundled_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/catalog.toml")
}

/// A temporary file path unique to this process and `tag`.
fn temp_path(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("cx-catalog-test-{}-{tag}", std::process::id()))
}

// ---------------------------------------------------------------- parsing

#[test]
fn a_full_toml_offer_parses_into_every_column() {
    let text = r#"
        [[offer]]
        id = 42
        name = "Forty-two"
        conversion_rate = 0.125
        revenue = 12
        lifetime_value = 30.5
        engagement = 0.25
        retention = 0.75
        max_bid_cpm = 3.0
        boost = -0.5
        device_types = [4, "tablet"]
        countries = ["USA", "DEU"]
        sizes = ["300x250", "728x90"]
        channels = "site"
        segments = ["a", "b"]
        categories = ["IAB1"]
        frequency_cap = { impressions = 2, window_s = 3600 }
        daily_budget = 250.0
        adomain = ["shop.example", "shop2.example"]
        creative_id = "cr-42"

        [[offer]]
        id = 43
        name = "Forty-three"
        conversion_rate = 0.0
        revenue = 0.0
        max_bid_cpm = 0.01
        creative_id = "cr-43"
    "#;
    let c = Catalog::from_toml_str(text).unwrap();
    assert_eq!(c.len(), 2);
    assert!(!c.is_empty());
    assert_eq!(c.ids(), &[42, 43]);
    assert_eq!(c.index_of(43), Some(1));
    assert_eq!(c.index_of(44), None);
    let o = c.objectives();
    assert_eq!(o.conversion_rate, [0.125, 0.0]);
    assert_eq!(o.revenue, [12.0, 0.0]);
    assert_eq!(o.lifetime_value, [30.5, 0.0]);
    assert_eq!(o.engagement, [0.25, 0.0]);
    assert_eq!(o.retention, [0.75, 0.0]);
    assert_eq!(c.max_bid_cpm(), &[3.0, 0.01]);
    assert_eq!(c.boost(), &[-0.5, 0.0]);
    assert_eq!(
        c.frequency_cap(0),
        Some(FrequencyCap {
            impressions: 2,
            window_s: 3600
        })
    );
    assert_eq!(c.frequency_cap(1), None);
    assert_eq!(c.daily_budget(0), Some(250.0));
    assert_eq!(c.daily_budget(1), None);
    let view = c.offer(0);
    assert_eq!(view.id, 42);
    assert_eq!(view.name, "Forty-two");
    assert_eq!(view.creative_id, "cr-42");
    assert_eq!(view.adomain, ["shop.example", "shop2.example"]);
    assert_eq!(view.max_bid_cpm, 3.0);
    assert_eq!(c.name(1), "Forty-three");
    assert_eq!(c.creative_id(1), "cr-43");
    assert!(c.adomain(1).is_empty());

    let spec = c.offer_spec(0);
    assert_eq!(spec.device_types, [DeviceType::Phone, DeviceType::Tablet]);
    assert_eq!(spec.sizes, [(300, 250), (728, 90)]);
    assert_eq!(spec.channels, Channels::Site);
    assert_eq!(spec.countries, ["USA", "DEU"]);
    // Left-out fields take OfferSpec::new's values.
    let minimal = c.offer_spec(1);
    assert_eq!(
        minimal,
        OfferSpec {
            name: "Forty-three".into(),
            max_bid_cpm: 0.01,
            creative_id: "cr-43".into(),
            ..OfferSpec::new(43)
        }
    );
}

#[test]
fn offers_built_in_code_round_trip_through_specs_and_toml() {
    let offers = vec![full_offer(1), OfferSpec::new(2), full_offer(3)];
    let c = Catalog::from_offers(offers.clone()).unwrap();
    assert_eq!(c.to_offers(), offers);
    let text = c.to_toml();
    let back = Catalog::from_toml_str(&text).unwrap();
    assert_eq!(back, c);
    assert_eq!(back.to_toml(), text, "to_toml is stable");
}

#[test]
fn the_catalog_is_an_ecs_resource() {
    let mut world = bevy_ecs::world::World::new();
    world.insert_resource(Catalog::from_offers(vec![OfferSpec::new(5)]).unwrap());
    assert_eq!(world.resource::<Catalog>().ids(), &[5]);
}

// ---------------------------------------------------------------- validation

#[test]
fn every_validation_rule_fails_naming_the_offer_and_field() {
    type Mutate = fn(&mut OfferSpec);
    let cases: Vec<(&str, Mutate)> = vec![
        ("offer[0] field id", |o| o.id = 0),
        ("offer[0] field id", |o| o.id = limits::ID_MAX + 1),
        ("offer 7 field name", |o| o.name.clear()),
        ("offer 7 field name", |o| {
            o.name = "n".repeat(limits::NAME_BYTES_MAX + 1)
        }),
        ("offer 7 field name", |o| o.name = "line\nbreak".into()),
        ("offer 7 field conversion_rate", |o| {
            o.conversion_rate = f32::NAN
        }),
        ("offer 7 field conversion_rate", |o| {
            o.conversion_rate = 1.01
        }),
        ("offer 7 field conversion_rate", |o| {
            o.conversion_rate = -0.1
        }),
        ("offer 7 field revenue", |o| o.revenue = -1.0),
        ("offer 7 field revenue", |o| o.revenue = f32::INFINITY),
        ("offer 7 field revenue", |o| {
            o.revenue = 2.0 * limits::VALUE_MAX
        }),
        ("offer 7 field lifetime_value", |o| o.lifetime_value = -0.5),
        ("offer 7 field engagement", |o| o.engagement = 1.5),
        ("offer 7 field retention", |o| o.retention = -0.01),
        ("offer 7 field max_bid_cpm", |o| o.max_bid_cpm = 0.0),
        ("offer 7 field max_bid_cpm", |o| o.max_bid_cpm = -3.0),
        ("offer 7 field max_bid_cpm", |o| {
            o.max_bid_cpm = limits::BID_CPM_MAX * 1.5
        }),
        ("offer 7 field max_bid_cpm", |o| o.max_bid_cpm = f32::NAN),
        ("offer 7 field boost", |o| o.boost = 1.5),
        ("offer 7 field boost", |o| o.boost = -1.01),
        ("offer 7 field device_types[0]", |o| {
            o.device_types = vec![DeviceType::Unknown]
        }),
        ("offer 7 field device_types[1]", |o| {
            o.device_types = vec![DeviceType::Phone, DeviceType::Phone]
        }),
        ("offer 7 field device_types", |o| {
            o.device_types = vec![DeviceType::Phone; limits::LIST_ITEMS_MAX + 1]
        }),
        ("offer 7 field countries[0]", |o| {
            o.countries = vec!["usa".into()]
        }),
        ("offer 7 field countries[1]", |o| {
            o.countries = vec!["USA".into(), "US".into()]
        }),
        ("offer 7 field countries[1]", |o| {
            o.countries = vec!["USA".into(), "USA".into()]
        }),
        ("offer 7 field countries", |o| {
            o.countries = (0..=limits::LIST_ITEMS_MAX)
                .map(|k| {
                    format!(
                        "A{}{}",
                        (b'A' + (k / 26) as u8) as char,
                        (b'A' + (k % 26) as u8) as char
                    )
                })
                .collect()
        }),
        ("offer 7 field sizes[0]", |o| o.sizes = vec![(0, 250)]),
        ("offer 7 field sizes[0]", |o| {
            o.sizes = vec![(300, limits::PLACEMENT_PX_MAX + 1)]
        }),
        ("offer 7 field sizes[1]", |o| {
            o.sizes = vec![(300, 250), (300, 250)]
        }),
        ("offer 7 field segments[0]", |o| {
            o.segments = vec![String::new()]
        }),
        ("offer 7 field segments[0]", |o| {
            o.segments = vec!["s".repeat(limits::SEGMENT_BYTES_MAX + 1)]
        }),
        ("offer 7 field segments[0]", |o| {
            o.segments = vec!["tab\there".into()]
        }),
        ("offer 7 field segments[1]", |o| {
            o.segments = vec!["a".into(), "a".into()]
        }),
        ("offer 7 field segments", |o| {
            o.segments = (0..=limits::LIST_ITEMS_MAX)
                .map(|k| format!("s{k}"))
                .collect()
        }),
        ("offer 7 field categories[0]", |o| {
            o.categories = vec!["IAB 1".into()]
        }),
        ("offer 7 field categories[0]", |o| {
            o.categories = vec!["-IAB1".into()]
        }),
        ("offer 7 field categories[0]", |o| {
            o.categories = vec!["IAB1-".into()]
        }),
        ("offer 7 field categories[0]", |o| {
            o.categories = vec!["IAB1--2".into()]
        }),
        ("offer 7 field categories[0]", |o| {
            o.categories = vec![String::new()]
        }),
        ("offer 7 field categories[0]", |o| {
            o.categories = vec!["C".repeat(limits::CATEGORY_BYTES_MAX + 1)]
        }),
        ("offer 7 field categories[1]", |o| {
            o.categories = vec!["IAB1".into(), "IAB1".into()]
        }),
        ("offer 7 field frequency_cap.impressions", |o| {
            o.frequency_cap = Some(FrequencyCap {
                impressions: 0,
                window_s: 60,
            })
        }),
        ("offer 7 field frequency_cap.impressions", |o| {
            o.frequency_cap = Some(FrequencyCap {
                impressions: limits::FREQUENCY_IMPRESSIONS_MAX + 1,
                window_s: 60,
            })
        }),
        ("offer 7 field frequency_cap.window_s", |o| {
            o.frequency_cap = Some(FrequencyCap {
                impressions: 1,
                window_s: 0,
            })
        }),
        ("offer 7 field frequency_cap.window_s", |o| {
            o.frequency_cap = Some(FrequencyCap {
                impressions: 1,
                window_s: limits::FREQUENCY_WINDOW_S_MAX + 1,
            })
        }),
        ("offer 7 field daily_budget", |o| o.daily_budget = Some(0.0)),
        ("offer 7 field daily_budget", |o| {
            o.daily_budget = Some(-10.0)
        }),
        ("offer 7 field daily_budget", |o| {
            o.daily_budget = Some(f64::NAN)
        }),
        ("offer 7 field daily_budget", |o| {
            o.daily_budget = Some(limits::DAILY_BUDGET_MAX * 2.0)
        }),
        ("offer 7 field adomain[0]", |o| {
            o.adomain = vec![String::new()]
        }),
        ("offer 7 field adomain[0]", |o| {
            o.adomain = vec!["bad domain".into()]
        }),
        ("offer 7 field adomain[0]", |o| {
            o.adomain = vec![".example".into()]
        }),
        ("offer 7 field adomain[0]", |o| {
            o.adomain = vec![format!("{}.example", "d".repeat(limits::DOMAIN_BYTES_MAX))]
        }),
        ("offer 7 field adomain[1]", |o| {
            o.adomain = vec!["a.example".into(), "a.example".into()]
        }),
        ("offer 7 field creative_id", |o| o.creative_id.clear()),
        ("offer 7 field creative_id", |o| {
            o.creative_id = "c".repeat(limits::CREATIVE_ID_BYTES_MAX + 1)
        }),
        ("offer 7 field creative_id", |o| {
            o.creative_id = "c\u{7}".into()
        }),
    ];
    for (expected_where, mutate) in cases {
        let mut offer = full_offer(7);
        mutate(&mut offer);
        let (where_, reason) = catalog_err(Catalog::from_offers(vec![offer.clone()]));
        assert_eq!(where_, expected_where, "reason: {reason}");
        assert!(!reason.is_empty());
        // The TOML form of the same offer fails the same way, where TOML can
        // express it (ids above i64::MAX are not TOML integers, and this
        // writer has no form for NaN).
        let text = toml_of_unchecked(&offer);
        if offer.id <= limits::ID_MAX && !text.contains("NaN") {
            let (toml_where, _) = catalog_err(Catalog::from_toml_str(&text));
            assert_eq!(toml_where, expected_where, "TOML form:\n{text}");
        }
    }
}

/// The TOML form of an offer that may be invalid, written field by field.
fn toml_of_unchecked(o: &OfferSpec) -> String {
    let s = |text: &str| toml::Value::String(text.to_owned()).to_string();
    let strs = |v: &[String]| {
        let items: Vec<String> = v.iter().map(|x| s(x)).collect();
        format!("[{}]", items.join(", "))
    };
    let mut t = format!(
        "[[offer]]\nid = {}\nname = {}\nconversion_rate = {:?}\nrevenue = {:?}\n\
         lifetime_value = {:?}\nengagement = {:?}\nretention = {:?}\nmax_bid_cpm = {:?}\n\
         boost = {:?}\n",
        o.id,
        s(&o.name),
        o.conversion_rate,
        o.revenue,
        o.lifetime_value,
        o.engagement,
        o.retention,
        o.max_bid_cpm,
        o.boost
    );
    // Device types as OpenRTB integers, so that `unknown` (0) is expressible.
    let devices: Vec<String> = o
        .device_types
        .iter()
        .map(|d| d.openrtb().unwrap_or(0).to_string())
        .collect();
    t += &format!("device_types = [{}]\n", devices.join(", "));
    t += &format!("countries = {}\n", strs(&o.countries));
    let sizes: Vec<String> = o.sizes.iter().map(|(w, h)| format!("{w}x{h}")).collect();
    t += &format!("sizes = {}\n", strs(&sizes));
    t += &format!("channels = {:?}\n", o.channels.label());
    t += &format!("segments = {}\n", strs(&o.segments));
    t += &format!("categories = {}\n", strs(&o.categories));
    if let Some(cap) = o.frequency_cap {
        t += &format!(
            "frequency_cap = {{ impressions = {}, window_s = {} }}\n",
            cap.impressions, cap.window_s
        );
    }
    if let Some(b) = o.daily_budget {
        t += &format!("daily_budget = {b:?}\n");
    }
    t += &format!(
        "adomain = {}\ncreative_id = {}\n",
        strs(&o.adomain),
        s(&o.creative_id)
    );
    t
}

#[test]
fn device_type_zero_in_toml_is_refused_naming_the_item() {
    let (where_, reason) =
        catalog_err(Catalog::from_toml_str(&toml_offer("device_types = [4, 0]")));
    assert_eq!(where_, "offer 7 field device_types[1]");
    assert!(reason.contains("device type"), "{reason}");
}

#[test]
fn catalog_level_rules_fail_naming_what_is_wrong() {
    let (where_, reason) = catalog_err(Catalog::from_offers(Vec::new()));
    assert_eq!(where_, "catalog");
    assert!(reason.contains("no offers"), "{reason}");

    let too_many = (1..=limits::OFFERS_MAX as u64 + 1)
        .map(OfferSpec::new)
        .collect();
    let (where_, reason) = catalog_err(Catalog::from_offers(too_many));
    assert_eq!(where_, "catalog");
    assert!(reason.contains("1025"), "{reason}");
    let at_limit = (1..=limits::OFFERS_MAX as u64)
        .map(OfferSpec::new)
        .collect();
    assert_eq!(
        Catalog::from_offers(at_limit).unwrap().len(),
        limits::OFFERS_MAX
    );

    let dup = vec![OfferSpec::new(7), OfferSpec::new(8), OfferSpec::new(7)];
    let (where_, reason) = catalog_err(Catalog::from_offers(dup));
    assert_eq!(where_, "offer 7 field id");
    assert!(reason.contains("offer[0]"), "{reason}");

    assert!(Catalog::from_offers(vec![OfferSpec::new(limits::ID_MAX)]).is_ok());
}

#[test]
fn toml_errors_name_the_offer_and_field() {
    let cases: Vec<(String, &str, &str)> = vec![
        (
            toml_offer("revnue = 3"),
            "offer 7 field revnue",
            "unknown field",
        ),
        (
            toml_offer("conversion_rate_x = 1").replace("conversion_rate = 0.1\n", ""),
            "offer 7 field conversion_rate_x",
            "unknown field",
        ),
        (
            toml_offer("").replace("creative_id = \"c7\"\n", ""),
            "offer 7 field creative_id",
            "missing",
        ),
        (
            toml_offer("").replace("max_bid_cpm = 2.5\n", ""),
            "offer 7 field max_bid_cpm",
            "missing",
        ),
        (
            toml_offer("").replace("conversion_rate = 0.1", "conversion_rate = \"high\""),
            "offer 7 field conversion_rate",
            "invalid type",
        ),
        (
            toml_offer("device_types = [\"phablet\"]"),
            "offer 7 field device_types[0]",
            "phablet",
        ),
        (
            toml_offer("device_types = [\"unknown\"]"),
            "offer 7 field device_types[0]",
            "unknown",
        ),
        (
            toml_offer("device_types = [9]"),
            "offer 7 field device_types[0]",
            "9",
        ),
        (
            toml_offer("device_types = \"phone\""),
            "offer 7 field device_types",
            "invalid type",
        ),
        (
            toml_offer("sizes = [\"300x250\", \"300 by 250\"]"),
            "offer 7 field sizes[1]",
            "300 by 250",
        ),
        (
            toml_offer("sizes = [[300, 250]]"),
            "offer 7 field sizes[0]",
            "invalid type",
        ),
        (
            toml_offer("channels = \"web\""),
            "offer 7 field channels",
            "web",
        ),
        (
            toml_offer("countries = [1]"),
            "offer 7 field countries[0]",
            "invalid type",
        ),
        (
            toml_offer("frequency_cap = { impressions = 3 }"),
            "offer 7 field frequency_cap",
            "window_s",
        ),
        (
            toml_offer("frequency_cap = { impressions = 3, window_s = 60, per = 1 }"),
            "offer 7 field frequency_cap.per",
            "per",
        ),
        (
            toml_offer("frequency_cap = { impressions = -3, window_s = 60 }"),
            "offer 7 field frequency_cap.impressions",
            "-3",
        ),
        (
            toml_offer("daily_budget = \"lots\""),
            "offer 7 field daily_budget",
            "invalid type",
        ),
        (
            toml_offer("revenue = 1e300").replace("revenue = 5\n", ""),
            "offer 7 field revenue",
            "inf",
        ),
        (
            toml_offer("").replace("id = 7", "id = -3"),
            "offer[0] field id",
            "invalid value",
        ),
        (
            toml_offer("").replace("id = 7", "id = \"seven\""),
            "offer[0] field id",
            "invalid type",
        ),
        (
            toml_offer("").replace("id = 7\n", ""),
            "offer[0] field id",
            "missing",
        ),
        (
            format!(
                "{}{}",
                toml_offer(""),
                toml_offer("").replace("revenue = 5", "revenue = -5")
            ),
            "offer 7 field revenue",
            "-5",
        ),
        (
            "offers = []".into(),
            "key `offers`",
            "unknown top-level key",
        ),
        (
            format!("version = 1\n{}", toml_offer("")),
            "key `version`",
            "unknown top-level key",
        ),
        ("offer = 5".into(), "key `offer`", "array of tables"),
        ("offer = [1]".into(), "offer[0]", "expected a table"),
        ("".into(), "catalog", "no offers"),
        ("# only a comment\n".into(), "catalog", "no offers"),
        (
            format!("{}\n[[offer]\n", toml_offer("")),
            "TOML line 10",
            "unclosed",
        ),
        (
            toml_offer("boost = 0.1\nboost = 0.2"),
            "TOML line 9",
            "duplicate",
        ),
    ];
    for (text, expected_where, reason_has) in cases {
        let (where_, reason) = catalog_err(Catalog::from_toml_str(&text));
        assert_eq!(where_, expected_where, "reason {reason:?} for:\n{text}");
        assert!(
            reason.contains(reason_has),
            "reason {reason:?} lacks {reason_has:?} for:\n{text}"
        );
    }
}

#[test]
fn duplicate_ids_in_toml_name_the_second_offer() {
    let text = format!("{}{}", toml_offer(""), toml_offer(""));
    let (where_, reason) = catalog_err(Catalog::from_toml_str(&text));
    assert_eq!(where_, "offer 7 field id");
    assert!(reason.contains("offer[0]"), "{reason}");
}

#[test]
fn oversized_text_and_files_are_refused() {
    let mut text = toml_offer("");
    text.push_str(&"#".repeat(limits::FILE_BYTES_MAX));
    let (where_, reason) = catalog_err(Catalog::from_toml_str(&text));
    assert_eq!(where_, "catalog");
    assert!(reason.contains("limit"), "{reason}");

    let path = temp_path("oversized.toml");
    std::fs::write(&path, &text).unwrap();
    let (where_, reason) = catalog_err(Catalog::from_path(&path));
    std::fs::remove_file(&path).unwrap();
    assert_eq!(where_, path.display().to_string());
    assert!(reason.contains("limit"), "{reason}");
}

#[test]
fn file_errors_name_the_path() {
    let missing = temp_path("missing.toml");
    match Catalog::from_path(&missing) {
        Err(Error::Io { path, .. }) => assert_eq!(path, missing.display().to_string()),
        other => panic!("expected an I/O error, got {other:?}"),
    }

    let path = temp_path("latin1.toml");
    std::fs::write(&path, b"[[offer]]\nname = \"caf\xe9\"\n").unwrap();
    let (where_, reason) = catalog_err(Catalog::from_path(&path));
    assert_eq!(where_, path.display().to_string());
    assert!(reason.contains("UTF-8"), "{reason}");

    std::fs::write(
        &path,
        toml_offer("revenue = -1").replace("revenue = 5\n", ""),
    )
    .unwrap();
    let (where_, _) = catalog_err(Catalog::from_path(&path));
    std::fs::remove_file(&path).unwrap();
    assert_eq!(where_, format!("{}: offer 7 field revenue", path.display()));
}

// ---------------------------------------------------------------- eligibility

#[test]
fn eligibility_checks_each_rule_in_order() {
    let mut restricted = OfferSpec::new(7);
    restricted.device_types = vec![DeviceType::Phone];
    restricted.countries = vec!["USA".into()];
    restricted.sizes = vec![(320, 50)];
    restricted.channels = Channels::App;
    let offers = vec![
        OfferSpec::new(1),
        OfferSpec {
            device_types: vec![DeviceType::Phone, DeviceType::Tablet],
            ..OfferSpec::new(2)
        },
        OfferSpec {
            countries: vec!["USA".into(), "GBR".into()],
            ..OfferSpec::new(3)
        },
        OfferSpec {
            sizes: vec![(300, 250), (728, 90)],
            ..OfferSpec::new(4)
        },
        OfferSpec {
            channels: Channels::Site,
            ..OfferSpec::new(5)
        },
        OfferSpec {
            channels: Channels::App,
            ..OfferSpec::new(6)
        },
        restricted,
    ];
    let c = Catalog::from_offers(offers).unwrap();
    use Ineligible::{Channel, Country, DeviceType as Device, PlacementSize};
    type Edit = fn(&mut RequestContext);
    // One context edit, then the expected outcome for offers 1..=7.
    let ok = Ok(());
    type Row = (&'static str, Edit, [Result<(), Ineligible>; 7]);
    let table: Vec<Row> = vec![
        (
            "phone, USA, 300x250, app",
            |_| {},
            [ok, ok, ok, ok, Err(Channel), ok, Err(PlacementSize)],
        ),
        (
            "tablet",
            |x| x.device_type = DeviceType::Tablet,
            [ok, ok, ok, ok, Err(Channel), ok, Err(Device)],
        ),
        (
            "personal computer",
            |x| x.device_type = DeviceType::PersonalComputer,
            [ok, Err(Device), ok, ok, Err(Channel), ok, Err(Device)],
        ),
        (
            "unknown device",
            |x| x.device_type = DeviceType::Unknown,
            [ok, Err(Device), ok, ok, Err(Channel), ok, Err(Device)],
        ),
        (
            "country GBR",
            |x| x.country = "GBR".into(),
            [ok, ok, ok, ok, Err(Channel), ok, Err(Country)],
        ),
        (
            "country lower-case usa",
            |x| x.country = "usa".into(),
            [ok, ok, ok, ok, Err(Channel), ok, Err(PlacementSize)],
        ),
        (
            "country DEU",
            |x| x.country = "DEU".into(),
            [ok, ok, Err(Country), ok, Err(Channel), ok, Err(Country)],
        ),
        (
            "country unknown",
            |x| x.country.clear(),
            [ok, ok, Err(Country), ok, Err(Channel), ok, Err(Country)],
        ),
        (
            "size 320x50",
            |x| (x.placement_width, x.placement_height) = (320, 50),
            [ok, ok, ok, Err(PlacementSize), Err(Channel), ok, ok],
        ),
        (
            "size swapped 250x300",
            |x| (x.placement_width, x.placement_height) = (250, 300),
            [
                ok,
                ok,
                ok,
                Err(PlacementSize),
                Err(Channel),
                ok,
                Err(PlacementSize),
            ],
        ),
        (
            "size unknown",
            |x| (x.placement_width, x.placement_height) = (0, 0),
            [
                ok,
                ok,
                ok,
                Err(PlacementSize),
                Err(Channel),
                ok,
                Err(PlacementSize),
            ],
        ),
        (
            "site",
            |x| x.is_app = false,
            [ok, ok, ok, ok, ok, Err(Channel), Err(PlacementSize)],
        ),
        (
            "site, 320x50",
            |x| {
                x.is_app = false;
                (x.placement_width, x.placement_height) = (320, 50);
            },
            [
                ok,
                ok,
                ok,
                Err(PlacementSize),
                ok,
                Err(Channel),
                Err(Channel),
            ],
        ),
        (
            "everything wrong",
            |x| {
                x.device_type = DeviceType::ConnectedTv;
                x.country = "FRA".into();
                (x.placement_width, x.placement_height) = (1920, 1080);
                x.is_app = false;
            },
            [
                ok,
                Err(Device),
                Err(Country),
                Err(PlacementSize),
                ok,
                Err(Channel),
                Err(Device),
            ],
        ),
    ];
    for (name, edit, expected) in table {
        let mut ctx = context();
        edit(&mut ctx);
        for (i, want) in expected.iter().enumerate() {
            assert_eq!(
                c.check_eligibility(i, &ctx),
                *want,
                "{name}: offer {}",
                c.ids()[i]
            );
        }
    }
}

#[test]
fn every_device_type_can_be_targeted_alone() {
    for slot in 1..DeviceType::SLOTS.len() {
        let target = DeviceType::from_openrtb(slot as i64);
        let text = toml_offer(&format!("device_types = [\"{}\"]", DeviceType::SLOTS[slot]));
        let c = Catalog::from_toml_str(&text).unwrap();
        for other in 0..DeviceType::SLOTS.len() {
            let ctx = RequestContext {
                device_type: DeviceType::from_openrtb(other as i64),
                ..RequestContext::default()
            };
            let want = if other == slot {
                Ok(())
            } else {
                Err(Ineligible::DeviceType)
            };
            assert_eq!(
                c.check_eligibility(0, &ctx),
                want,
                "{target} vs slot {other}"
            );
        }
    }
}

#[test]
fn ineligible_reasons_have_snake_case_labels() {
    let labels: Vec<String> = Ineligible::ALL.iter().map(ToString::to_string).collect();
    assert_eq!(
        labels,
        ["device_type", "country", "placement_size", "channel"]
    );
}

// ---------------------------------------------------------------- matching

#[test]
fn categories_match_by_iab_prefix_at_dash_boundaries() {
    let c = Catalog::from_offers(vec![
        OfferSpec {
            categories: vec!["IAB1".into()],
            ..OfferSpec::new(1)
        },
        OfferSpec {
            categories: vec!["IAB1-2".into(), "IAB17".into()],
            ..OfferSpec::new(2)
        },
        OfferSpec::new(3),
    ])
    .unwrap();
    let cases: &[(&[&str], [bool; 3])] = &[
        (&["IAB1"], [true, false, false]),
        (&["IAB1-2"], [true, true, false]),
        (&["IAB1-22"], [true, false, false]),
        (&["IAB11"], [false, false, false]),
        (&["IAB11-2"], [false, false, false]),
        (&["IAB17-3"], [false, true, false]),
        (&["IAB12", "IAB1-7"], [true, false, false]),
        (&["iab1"], [false, false, false]),
        (&[""], [false, false, false]),
        (&[], [false, false, false]),
    ];
    for (page, expected) in cases {
        let ctx = RequestContext {
            categories: page.iter().map(|s| s.to_string()).collect(),
            ..RequestContext::default()
        };
        let keys = PageCategoryKeys::of(&ctx);
        assert!(!keys.overflowed());
        for (i, &want) in expected.iter().enumerate() {
            assert_eq!(
                c.category_match(i, &ctx),
                want,
                "offer {} vs {page:?}",
                i + 1
            );
            assert_eq!(
                c.category_match_keys(i, &keys),
                want,
                "offer {} vs {page:?} by keys",
                i + 1
            );
        }
    }
    assert!(c.targets_categories(0));
    assert!(!c.targets_categories(2));
    assert!(category_covers("IAB1", "IAB1-2") && !category_covers("IAB1", "IAB11"));

    // Only the first CONTEXT_ITEMS_MAX page categories are read.
    let mut ctx = RequestContext {
        categories: vec!["IAB5".into(); limits::CONTEXT_ITEMS_MAX],
        ..RequestContext::default()
    };
    ctx.categories.push("IAB1".into());
    assert!(!c.category_match(0, &ctx));
    ctx.categories.remove(0);
    assert!(c.category_match(0, &ctx));
}

#[test]
fn segments_match_exact_strings() {
    let c = Catalog::from_offers(vec![
        OfferSpec {
            segments: vec!["sports".into(), "5".into()],
            ..OfferSpec::new(1)
        },
        OfferSpec::new(2),
    ])
    .unwrap();
    let cases: &[(&[&str], bool)] = &[
        (&["5"], true),
        (&["1", "sports"], true),
        (&["50"], false),
        (&["Sports"], false),
        (&["sports "], false),
        (&[""], false),
        (&[], false),
    ];
    for (user, want) in cases {
        let ctx = RequestContext {
            user_segments: user.iter().map(|s| s.to_string()).collect(),
            ..RequestContext::default()
        };
        assert_eq!(c.segment_match(0, &ctx), *want, "{user:?}");
        assert!(
            !c.segment_match(1, &ctx),
            "an untargeted offer never matches"
        );
        let hashes: Vec<u64> = user.iter().map(|s| item_hash(s)).collect();
        assert_eq!(c.segment_match_hashes(0, &hashes), *want, "{user:?} hashed");
        assert!(!c.segment_match_hashes(1, &hashes));
    }
    assert!(c.targets_segments(0));
    assert!(!c.targets_segments(1));

    // Only the first CONTEXT_ITEMS_MAX user segments are read.
    let mut ctx = RequestContext {
        user_segments: vec!["other".into(); limits::CONTEXT_ITEMS_MAX],
        ..RequestContext::default()
    };
    ctx.user_segments.push("5".into());
    assert!(!c.segment_match(0, &ctx));
    ctx.user_segments.remove(0);
    assert!(c.segment_match(0, &ctx));
}

#[test]
fn the_hot_path_allocates_nothing() {
    let offers: Vec<OfferSpec> = (1..=64).map(full_offer).collect();
    let c = Catalog::from_offers(offers).unwrap();
    let mut contexts = vec![context(), RequestContext::default()];
    contexts[0].user_segments = (0..40).map(|k| format!("seg{k}")).collect();
    contexts[0].user_segments.push("5".into());
    contexts[0].categories = vec!["IAB17-4".into(), "IAB1-2".into()];
    contexts.push(RequestContext {
        user_segments: vec!["sports".into()],
        categories: vec!["IAB1-2".into()],
        country: "gbr".into(),
        ..context()
    });
    let hashes: Vec<u64> = contexts[2]
        .user_segments
        .iter()
        .map(|s| item_hash(s))
        .collect();
    let mut tally = [0usize; 6];
    let info = allocation_counter::measure(|| {
        for _ in 0..20 {
            for ctx in &contexts {
                let keys = PageCategoryKeys::of(ctx);
                for i in 0..c.len() {
                    tally[0] += usize::from(c.check_eligibility(i, ctx).is_ok());
                    tally[1] += usize::from(c.segment_match(i, ctx));
                    tally[2] += usize::from(c.category_match(i, ctx));
                    tally[2] += usize::from(c.category_match_keys(i, &keys));
                    tally[3] += usize::from(c.segment_match_hashes(i, &hashes));
                    tally[4] += c.index_of(c.ids()[i]).unwrap_or(0);
                    let view = c.offer(i);
                    tally[5] += view.adomain.len() + view.creative_id.len();
                    tally[5] += c.frequency_cap(i).map_or(0, |f| f.impressions as usize);
                    tally[5] += c.objectives().revenue[i] as usize + c.boost()[i] as usize;
                }
            }
        }
    });
    assert_eq!(info.count_total, 0, "the hot path allocated");
    assert!(
        tally.iter().all(|&t| t > 0),
        "every call did real work: {tally:?}"
    );
}

// ---------------------------------------------------------------- bundled catalog

/// A synthetic row as the engine would see its request.
fn context_of(row: &SynthRow) -> RequestContext {
    RequestContext {
        user_id: row.user_id.to_string(),
        user_segments: row.segments.iter().map(u32::to_string).collect(),
        device_type: DeviceType::from_openrtb(i64::from(row.device_type)),
        country: row.country.clone(),
        region: row.region.clone(),
        site_id: row.site_or_app_id.clone(),
        is_app: row.is_app,
        domain: row.domain.clone(),
        categories: row.categories.clone(),
        placement_width: u32::from(row.width),
        placement_height: u32::from(row.height),
        bid_floor: row.bid_floor,
        timestamp: row.ts_unix,
        ..RequestContext::default()
    }
}

#[test]
fn the_bundled_catalog_has_the_models_sixteen_offers() {
    let c = Catalog::from_path(&bundled_path()).unwrap();
    assert_eq!(c.len(), 16);
    assert_eq!(c.ids(), (1000..=1015).collect::<Vec<u64>>());
    for i in 0..c.len() {
        assert!(!c.creative_id(i).is_empty());
        assert!(
            !c.adomain(i).is_empty(),
            "offer {} has no adomain",
            c.ids()[i]
        );
    }
    assert!((0..16).any(|i| c.frequency_cap(i).is_some()));
    assert!((0..16).any(|i| c.daily_budget(i).is_some()));
    // It round-trips like any catalog.
    assert_eq!(Catalog::from_toml_str(&c.to_toml()).unwrap(), c);

    // Each offer's first category is the generator's category for the same
    // offer under the model's training seed.
    let generator = Generator::new(SynthConfig::default(), 2024).unwrap();
    for synth in generator.offers() {
        let i = c.index_of(synth.id).unwrap();
        let first = &c.offer_spec(i).categories[0];
        let tier1 = first.split('-').next().unwrap();
        assert_eq!(
            tier1,
            format!("IAB{}", synth.category),
            "offer {}",
            synth.id
        );
    }
}

#[test]
fn synthetic_requests_see_several_bundled_offers() {
    let c = Catalog::from_path(&bundled_path()).unwrap();
    let mut generator = Generator::new(SynthConfig::default(), 2024).unwrap();
    let mut rows = Vec::new();
    generator.fill(&mut rows, 5000).unwrap();
    let (mut eligible_total, mut fewest) = (0usize, usize::MAX);
    let mut reasons = [0usize; 4];
    let mut eligible_per_offer = [0usize; 16];
    let (mut segment_hits, mut category_hits) = (0usize, 0usize);
    for row in &rows {
        let ctx = context_of(row);
        let mut eligible = 0;
        for (i, served) in eligible_per_offer.iter_mut().enumerate() {
            match c.check_eligibility(i, &ctx) {
                Ok(()) => {
                    eligible += 1;
                    *served += 1;
                    segment_hits += usize::from(c.segment_match(i, &ctx));
                    category_hits += usize::from(c.category_match(i, &ctx));
                }
                Err(reason) => {
                    let k = Ineligible::ALL.iter().position(|&r| r == reason).unwrap();
                    reasons[k] += 1;
                }
            }
        }
        eligible_total += eligible;
        fewest = fewest.min(eligible);
    }
    let mean = eligible_total as f64 / rows.len() as f64;
    eprintln!(
        "{} rows: eligible offers mean {mean:.2}, fewest {fewest}; ruled out by {reasons:?} \
         (device, country, size, channel); per offer {eligible_per_offer:?}; \
         segment hits {segment_hits}, category hits {category_hits}",
        rows.len()
    );
    assert!(
        fewest >= 5,
        "some request has only {fewest} eligible offers"
    );
    assert!((9.0..15.0).contains(&mean), "mean eligible offers {mean}");
    assert!(
        reasons.iter().all(|&n| n > 0),
        "every hard filter rules something out: {reasons:?}"
    );
    assert!(
        eligible_per_offer.iter().all(|&n| n >= rows.len() / 50),
        "every offer serves some traffic: {eligible_per_offer:?}"
    );
    assert!(
        segment_hits >= rows.len() / 10,
        "segment hits {segment_hits}"
    );
    assert!(
        category_hits >= rows.len() / 10,
        "category hits {category_hits}"
    );
}

// ---------------------------------------------------------------- properties

const COUNTRIES: &[&str] = &["USA", "GBR", "DEU", "FRA", "IND", "BRA", "JPN", "ZAF"];

fn any_offer() -> impl Strategy<Value = OfferSpec> {
    let devices: Vec<DeviceType> = (1..=7).map(DeviceType::from_openrtb).collect();
    let numbers = (
        0.0f32..=1.0,
        0.0f32..=limits::VALUE_MAX,
        0.0f32..=limits::VALUE_MAX,
        0.0f32..=1.0,
        0.0f32..=1.0,
        prop_oneof![Just(limits::BID_CPM_MAX), 1e-6f32..=limits::BID_CPM_MAX],
        prop_oneof![Just(-1.0f32), Just(1.0f32), Just(-0.0f32), -1.0f32..=1.0],
    );
    let targeting = (
        prop::sample::subsequence(devices, 0..=7),
        prop::sample::subsequence(COUNTRIES.to_vec(), 0..=COUNTRIES.len()),
        prop::collection::btree_set(
            (1..=limits::PLACEMENT_PX_MAX, 1..=limits::PLACEMENT_PX_MAX),
            0..4,
        ),
        prop::sample::select(vec![Channels::Site, Channels::App, Channels::Any]),
        prop::collection::btree_set("\\PC{1,12}", 0..4),
        prop::collection::btree_set("[A-Z]{1,3}[0-9]{1,2}(-[0-9a-z]{1,3}){0,2}", 0..4),
    );
    let rest = (
        prop::option::of((
            1..=limits::FREQUENCY_IMPRESSIONS_MAX,
            1..=limits::FREQUENCY_WINDOW_S_MAX,
        )),
        prop::option::of(prop_oneof![
            Just(limits::DAILY_BUDGET_MAX),
            1e-3f64..=limits::DAILY_BUDGET_MAX
        ]),
        prop::collection::btree_set("[a-z0-9]{1,8}(\\.[a-z-]{1,6}){1,2}", 0..3),
        "\\PC{1,30}",
        "[ -~]{1,40}",
        prop::collection::btree_set(1..=limits::ATTR_MAX, 0..4),
        any_creative(),
    );
    (numbers, targeting, rest).prop_map(|(n, t, r)| OfferSpec {
        id: 1, // replaced by the caller
        name: r.3,
        conversion_rate: n.0,
        revenue: n.1,
        lifetime_value: n.2,
        engagement: n.3,
        retention: n.4,
        max_bid_cpm: n.5,
        boost: n.6,
        device_types: t.0,
        countries: t.1.into_iter().map(String::from).collect(),
        sizes: t.2.into_iter().collect(),
        channels: t.3,
        segments: t.4.into_iter().collect(),
        categories: t.5.into_iter().collect(),
        frequency_cap: r.0.map(|(impressions, window_s)| FrequencyCap {
            impressions,
            window_s,
        }),
        daily_budget: r.1,
        adomain: r.2.into_iter().collect(),
        creative_id: r.4,
        attr: r.5.into_iter().collect(),
        creative: r.6,
        variants: Vec::new(),
    })
}

/// A valid creative, or none: every asset optional, a video made one of
/// the three ways (none, a VAST wrapper, an inline file), sometimes the
/// offer's own templates.
fn any_creative() -> impl Strategy<Value = Option<CreativeSpec>> {
    let url = || "https://[a-z]{1,8}\\.example/[a-z0-9/?=&%_]{0,16}(\\$\\{AUCTION_PRICE\\})?";
    let text = || "[A-Za-z0-9][ -~]{0,24}";
    let assets = (
        url(),
        prop::option::of(url()),
        prop::option::of(url()),
        text(),
        prop::option::of(text()),
        prop::option::of(text()),
        prop::option::of(text()),
        url(),
    );
    let video = (
        0..3u8,
        url(),
        prop::option::of(Just("video/webm".to_string())),
        (1..=8192u32, 1..=8192u32, 1..=3600u32),
    );
    let templates = (
        prop::option::of(prop::sample::select(vec![
            "<a href=\"{{click_url}}\">{{title}} {{w}}x{{h}}</a>",
            "<div data-p=\"${AUCTION_PRICE}\" data-b=\"{{bid_id}}\">\n{{title}}'s \"ad\"</div>",
        ])),
        prop::option::of(Just(
            "<VAST version=\"4.2\"><Ad id=\"{{imp_id}}\">{{click_url}}</Ad></VAST>",
        )),
    );
    prop::option::of((assets, video, templates).prop_map(|(a, v, t)| {
        let (kind, video_url, media_type, (w, h, d)) = v;
        CreativeSpec {
            click_url: a.0,
            image_url: a.1,
            icon_url: a.2,
            title: Some(a.3),
            description: a.4,
            sponsor: a.5,
            cta: a.6,
            impression_url: Some(a.7),
            vast_tag_url: (kind == 1).then(|| video_url.clone()),
            media_url: (kind == 2).then_some(video_url),
            media_type: media_type.filter(|_| kind == 2),
            media_width: (kind == 2).then_some(w),
            media_height: (kind == 2).then_some(h),
            duration_s: (kind == 2).then_some(d),
            banner: t.0.map(String::from),
            video: t.1.map(String::from),
        }
    }))
}

fn any_offers() -> impl Strategy<Value = Vec<OfferSpec>> {
    (
        prop::collection::btree_set(
            prop_oneof![1..=20u64, Just(limits::ID_MAX), 1..=limits::ID_MAX],
            1..6,
        ),
        prop::collection::vec(any_offer(), 6),
    )
        .prop_map(|(ids, offers)| {
            ids.into_iter()
                .zip(offers)
                .map(|(id, offer)| OfferSpec { id, ..offer })
                .collect()
        })
}

/// Pieces of catalog-like TOML for the garbage generator.
const TOKENS: &[&str] = &[
    "[[offer]]\n",
    "[offer]\n",
    "[[offer.x]]\n",
    "id = ",
    "name = ",
    "conversion_rate = ",
    "revenue = ",
    "max_bid_cpm = ",
    "creative_id = ",
    "device_types = ",
    "sizes = ",
    "countries = ",
    "frequency_cap = ",
    "daily_budget = ",
    "channels = ",
    "boost = ",
    "1",
    "0",
    "-1",
    "7",
    "9223372036854775807",
    "18446744073709551615",
    "0.5",
    "1e999",
    "nan",
    "inf",
    "-inf",
    "\"x\"",
    "\"300x250\"",
    "\"phone\"",
    "\"USA\"",
    "\"app\"",
    "[",
    "]",
    "{",
    "}",
    ", ",
    " = ",
    "\n",
    "\"",
    "'",
    "#",
    "\\u0000",
    "impressions = 1",
    "window_s = 0",
    "true",
    "1979-05-27",
    "é",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn valid_catalogs_round_trip_through_toml(offers in any_offers()) {
        let c = Catalog::from_offers(offers.clone()).unwrap();
        let text = c.to_toml();
        let back = Catalog::from_toml_str(&text);
        prop_assert!(back.is_ok(), "{:?}\n{}", back.err(), text);
        let back = back.unwrap();
        prop_assert_eq!(&back, &c);
        prop_assert_eq!(back.to_toml(), text);
        // Everything but the device types' order survives exactly.
        for (spec, original) in back.to_offers().iter().zip(&offers) {
            let mut original = original.clone();
            original.device_types.sort_by_key(|d| d.slot());
            prop_assert_eq!(spec, &original);
        }
    }

    #[test]
    fn random_text_never_panics(text in "\\PC{0,300}") {
        let _ = Catalog::from_toml_str(&text);
    }

    #[test]
    fn toml_ish_garbage_never_panics(picks in prop::collection::vec(0..TOKENS.len(), 0..80)) {
        let text: String = picks.iter().map(|&k| TOKENS[k]).collect();
        let _ = Catalog::from_toml_str(&text);
        let with_offer = format!("{}{text}", toml_offer(""));
        let _ = Catalog::from_toml_str(&with_offer);
    }

    #[test]
    fn mutated_bundled_catalogs_never_panic(
        edits in prop::collection::vec((any::<prop::sample::Index>(), prop::sample::select(TOKENS.to_vec())), 1..6),
    ) {
        let mut text = std::fs::read_to_string(bundled_path()).unwrap();
        for (at, token) in edits {
            let mut cut = at.index(text.len() + 1);
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            let end = (cut + token.len()).min(text.len());
            let end = (end..=text.len()).find(|&e| text.is_char_boundary(e)).unwrap();
            text.replace_range(cut..end, token);
        }
        if let Ok(c) = Catalog::from_toml_str(&text) {
            prop_assert_eq!(Catalog::from_toml_str(&c.to_toml()).unwrap(), c);
        }
    }
}

/// A category-like string: `-`-separated parts of letters and digits,
/// sometimes with a stray `-` (page categories are not validated).
fn page_category() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::collection::vec(prop_oneof![Just("IAB1"), Just("IAB12"), Just("2"), Just("x")], 1..5)
            .prop_map(|parts| parts.join("-")),
        1 => "[IAB0-9-]{0,12}",
    ]
}

proptest! {
    /// Keys taken once per request give the string comparison's answer for
    /// every offer: ragged lists, empty ones, stray dashes, and requests
    /// with more prefixes than the keys hold.
    #[test]
    fn category_keys_agree_with_strings(
        offers in prop::collection::vec(
            prop::sample::subsequence(vec!["IAB1", "IAB1-2", "IAB12", "IAB1-2-x", "2"], 0..4),
            1..6,
        ),
        page in prop::collection::vec(page_category(), 0..40),
    ) {
        let specs = offers.iter().enumerate().map(|(k, cats)| OfferSpec {
            categories: cats.iter().map(|c| c.to_string()).collect(),
            ..OfferSpec::new(k as u64 + 1)
        });
        let c = Catalog::from_offers(specs.collect()).unwrap();
        let ctx = RequestContext { categories: page, ..RequestContext::default() };
        let keys = PageCategoryKeys::of(&ctx);
        for i in 0..c.len() {
            prop_assert_eq!(c.category_match_keys(i, &keys), c.category_match(i, &ctx), "offer {}", i);
        }
    }
}

#[test]
fn category_keys_past_their_limit_fall_back_to_strings() {
    let c = Catalog::from_offers(vec![OfferSpec {
        categories: vec!["IAB9-1".into()],
        ..OfferSpec::new(1)
    }])
    .unwrap();
    // Every page category gives 4 prefixes; the match is in the last one.
    let mut categories = vec!["a-b-c-d".to_string(); PAGE_CATEGORY_KEYS_MAX / 4];
    categories.push("IAB9-1-7".into());
    let ctx = RequestContext {
        categories,
        ..RequestContext::default()
    };
    let keys = PageCategoryKeys::of(&ctx);
    assert!(keys.overflowed());
    assert!(c.category_match(0, &ctx));
    assert!(c.category_match_keys(0, &keys));
}

#[test]
fn creative_variants_load_write_back_and_are_refused_when_bad() {
    let text = r#"
[[offer]]
id = 7
name = "Shoes"
conversion_rate = 0.1
revenue = 1.0
max_bid_cpm = 2.0
creative_id = "cr-7"

[offer.creative]
click_url = "https://shoes.example/go"
image_url = "https://cdn.shoes.example/a.jpg"
title = "Shoes"

[[offer.variants]]
creative_id = "cr-7-b"
title = "Shoes, half price"

[[offer.variants]]
creative_id = "cr-7-c"
image_url = "https://cdn.shoes.example/c.jpg"
"#;
    let catalog = Catalog::from_toml_str(text).expect("a valid catalog");
    assert_eq!(catalog.variant_count(0), 3);
    let (id, creative) = catalog.variant(0, 1).expect("variant 1");
    assert_eq!(id, "cr-7-b");
    let spec = creative.expect("a creative").spec();
    assert_eq!(spec.title.as_deref(), Some("Shoes, half price"));
    assert_eq!(
        spec.image_url.as_deref(),
        Some("https://cdn.shoes.example/a.jpg")
    );
    assert_eq!(catalog.variant(0, 0).map(|v| v.0), Some("cr-7"));
    assert!(catalog.variant(0, 3).is_none());
    // Written back and read again, the same catalog.
    let again = Catalog::from_toml_str(&catalog.to_toml()).expect("reads back");
    assert_eq!(again, catalog);

    let repeated = text.replace("cr-7-c", "cr-7-b");
    let err = Catalog::from_toml_str(&repeated)
        .expect_err("a repeated id")
        .to_string();
    assert!(err.contains("variants[1].creative_id"), "{err}");
    let no_creative = "[[offer]]\nid = 8\nname = \"x\"\nconversion_rate = 0.1\nrevenue = 1.0\n\
                       max_bid_cpm = 1.0\ncreative_id = \"cr-8\"\n\n[[offer.variants]]\n\
                       creative_id = \"cr-8-b\"\n";
    let err = Catalog::from_toml_str(no_creative)
        .expect_err("no creative")
        .to_string();
    assert!(err.contains("variants"), "{err}");
}
