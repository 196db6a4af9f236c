//! OpenRTB requests in, responses out: real requests (committed fixtures
//! always, every file of `../shared/data/openrtb` when present) parse and map
//! to the documented context fields; bad input is refused with the field's
//! path and never panics; responses serialise cleanly and `check` catches
//! malformed ones.

// `common` also serves the model-file tests; only its path helpers are used here.
#[allow(unused_macros)]
mod common;

use std::path::{Path, PathBuf};

use cx_features::{
    limits::LIST_ITEMS_MAX, AdPosition, ConnectionType, DeviceType, FeatureSchema, Os,
};
use cx_wire::openrtb::{
    limits, parse_request, parse_response, Bid, BidRequest, BidResponse, ImpKind, Impression,
    NoBidReason, SeatBid,
};
use cx_wire::Error;
use proptest::prelude::*;
use serde_json::{json, Value};

// ---------------------------------------------------------------- helpers

fn fixture(name: &str) -> PathBuf {
    common::fixture("openrtb").join(name)
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn parse_fixture(name: &str) -> BidRequest {
    parse_request(&read(&fixture(name))).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The `(source, request)` pairs of a `{"source": ..., "request": {...}}` JSONL file.
fn jsonl(path: &Path) -> Vec<(String, Vec<u8>)> {
    let text = String::from_utf8(read(path)).unwrap();
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let mut v: Value = serde_json::from_str(line).unwrap();
            let source = v["source"].as_str().unwrap().to_owned();
            let request = serde_json::to_vec(&v["request"].take()).unwrap();
            (source, request)
        })
        .collect()
}

/// The prebid fixture requests, by the last part of their source path.
fn prebid_fixture(suffix: &str) -> BidRequest {
    let (source, bytes) = jsonl(&fixture("prebid_sample.jsonl"))
        .into_iter()
        .find(|(source, _)| source.ends_with(suffix))
        .unwrap_or_else(|| panic!("no fixture line ends with {suffix}"));
    parse_request(&bytes).unwrap_or_else(|e| panic!("{source}: {e}"))
}

/// The `(path, reason)` of an `Error::OpenRtb`; panics on success or another error.
fn refusal(json: &[u8]) -> (String, String) {
    match parse_request(json) {
        Err(Error::OpenRtb { path, reason }) => (path, reason),
        other => panic!(
            "expected Error::OpenRtb for {}, got {other:?}",
            String::from_utf8_lossy(&json[..json.len().min(200)])
        ),
    }
}

fn assert_refused(json: &str, path: &str, reason_contains: &str) {
    let (got_path, reason) = refusal(json.as_bytes());
    assert_eq!(got_path, path, "path for {json} (reason: {reason})");
    assert!(
        reason.contains(reason_contains),
        "reason for {json} is {reason:?}, expected it to contain {reason_contains:?}"
    );
}

/// Checks that hold for every parsed request, whatever its content: one
/// impression per imp in order, floors and kinds as in the raw JSON, request
/// fields mapped as documented, bounded lists, a row the feature schema
/// extracts without dropping anything, and a lossless write-back.
fn assert_well_mapped(label: &str, raw: &Value, request: &BidRequest) {
    let imps = request.impressions();
    let raw_imps = raw["imp"].as_array().unwrap();
    assert_eq!(imps.len(), raw_imps.len(), "{label}");
    let schema = FeatureSchema::v1();
    let mut row = vec![0.0f32; schema.width()];
    for (imp, raw_imp) in imps.iter().zip(raw_imps) {
        assert_eq!(imp.imp_id, raw_imp["id"].as_str().unwrap(), "{label}");
        let floor = raw_imp["bidfloor"].as_f64().unwrap_or(0.0);
        assert_eq!(imp.bid_floor, floor, "{label}");
        assert_eq!(imp.ctx.bid_floor, floor, "{label}");
        let cur = raw_imp["bidfloorcur"].as_str().unwrap_or("USD");
        assert_eq!(imp.bid_floor_currency, cur, "{label}");
        let kind = if raw_imp.get("banner").is_some() {
            ImpKind::Banner
        } else if raw_imp.get("video").is_some() {
            ImpKind::Video
        } else if raw_imp.get("native").is_some() {
            ImpKind::Native
        } else if raw_imp.get("audio").is_some() {
            ImpKind::Audio
        } else {
            ImpKind::Other
        };
        assert_eq!(imp.kind, kind, "{label} imp {}", imp.imp_id);
        let banner = &raw_imp["banner"];
        if let (Some(w), Some(h)) = (banner["w"].as_u64(), banner["h"].as_u64()) {
            if w > 0 && h > 0 {
                let size = (imp.ctx.placement_width, imp.ctx.placement_height);
                assert_eq!(size, (w as u32, h as u32), "{label}");
            }
        }
        if let Some(pos) = banner["pos"].as_i64() {
            assert_eq!(
                imp.ctx.ad_position,
                AdPosition::from_openrtb(pos),
                "{label}"
            );
        }

        let ctx = &imp.ctx;
        let device = &raw["device"];
        let devicetype = device["devicetype"].as_i64();
        assert_eq!(
            ctx.device_type,
            devicetype.map_or(DeviceType::Unknown, DeviceType::from_openrtb)
        );
        assert_eq!(
            ctx.os,
            Os::parse(device["os"].as_str().unwrap_or("")),
            "{label}"
        );
        assert_eq!(ctx.is_app, raw.get("app").is_some(), "{label}");
        let inventory = if ctx.is_app {
            &raw["app"]
        } else {
            &raw["site"]
        };
        assert_eq!(
            ctx.site_id,
            inventory["id"].as_str().unwrap_or(""),
            "{label}"
        );
        if let Some(country) = device["geo"]["country"].as_str() {
            assert_eq!(ctx.country, country, "{label}");
        }
        if let Some(user_id) = raw["user"]["id"].as_str() {
            assert_eq!(ctx.user_id, user_id, "{label}");
        }
        assert!(ctx.user_segments.len() <= LIST_ITEMS_MAX, "{label}");
        assert!(ctx.categories.len() <= LIST_ITEMS_MAX, "{label}");
        assert_eq!(ctx.timestamp, 0, "{label}");
        assert!(
            ctx.extra.is_empty() && ctx.extra_numeric == [0.0; 4],
            "{label}"
        );

        let stats = schema.extract(ctx, &mut row).unwrap();
        assert_eq!(
            (stats.dropped_items, stats.oversized_values),
            (0, 0),
            "{label}"
        );
    }
    let written = serde_json::to_vec(request).unwrap();
    let again = parse_request(&written).unwrap_or_else(|e| panic!("{label} written back: {e}"));
    assert_eq!(&again, request, "{label} does not round-trip");
}

// ------------------------------------------------- fixtures: known values

#[test]
fn spec_mobile_example_maps_app_device_and_both_banners() {
    let request = parse_fixture("2.5_mobile.json");
    assert_eq!(request.id, "IxexyLDIIk");
    assert_eq!(request.at, Some(2));
    assert_eq!(
        request.bcat,
        ["IAB25", "IAB7-39", "IAB8-18", "IAB8-5", "IAB9-9"]
    );
    assert_eq!(request.badv.len(), 3);
    assert!(request.site.is_none());
    let imps = request.impressions();
    assert_eq!(imps.len(), 2);

    let ctx = &imps[0].ctx;
    assert_eq!(ctx.user_id, "ffffffd5135596709273b3a1a07e466ea2bf4fff");
    assert!(ctx.user_segments.is_empty());
    assert_eq!(ctx.device_type, DeviceType::MobileTablet);
    assert_eq!(ctx.os, Os::Ios);
    assert_eq!(ctx.connection_type, ConnectionType::CellularUnknown);
    assert_eq!((ctx.country.as_str(), ctx.region.as_str()), ("USA", "CA"));
    assert!(ctx.is_app);
    assert_eq!(ctx.site_id, "agltb3B1Yi1pbmNyDAsSA0FwcBiJkfIUDA");
    assert_eq!(ctx.domain, "12345", "no app.domain: the bundle stands in");
    assert_eq!(ctx.categories, ["IAB15", "IAB15-10"]);

    assert_eq!(imps[0].imp_id, "1");
    assert_eq!(imps[0].kind, ImpKind::Banner);
    assert_eq!((ctx.placement_width, ctx.placement_height), (728, 90));
    assert_eq!(ctx.ad_position, AdPosition::AboveTheFold);
    assert_eq!(imps[0].bid_floor, 0.5);
    assert_eq!(imps[0].bid_floor_currency, "USD");

    // The interstitial: 0x0 banner, position 2.
    assert_eq!(request.imp[1].instl, 1);
    let ctx = &imps[1].ctx;
    assert_eq!((ctx.placement_width, ctx.placement_height), (0, 0));
    assert_eq!(ctx.ad_position, AdPosition::MaybeVisible);
    // Request-level fields are the same for every impression.
    assert_eq!(ctx.user_id, imps[0].ctx.user_id);
    assert_eq!(ctx.categories, imps[0].ctx.categories);
}

#[test]
fn spec_video_example_maps_site_content_and_segments() {
    let request = parse_fixture("2.6_video.json");
    assert_eq!(request.tmax, Some(120));
    let imps = request.impressions();
    assert_eq!(imps.len(), 1);
    let imp = &imps[0];
    assert_eq!(imp.kind, ImpKind::Video);
    assert_eq!(
        (imp.ctx.placement_width, imp.ctx.placement_height),
        (640, 480)
    );
    assert_eq!(imp.ctx.ad_position, AdPosition::AboveTheFold);
    assert_eq!(imp.bid_floor, 0.03);
    let ctx = &imp.ctx;
    assert!(!ctx.is_app);
    assert_eq!(ctx.site_id, "1345135123");
    assert_eq!(ctx.domain, "siteabcd.com");
    // site.cat then site.content.cat, without the repeat of IAB2-2.
    assert_eq!(ctx.categories, ["IAB2-1", "IAB2-2"]);
    assert_eq!(ctx.os, Os::Macos); // "OS X"
    assert_eq!(ctx.device_type, DeviceType::Unknown);
    assert_eq!(ctx.user_id, "456789876567897654678987656789");
    assert_eq!(ctx.user_segments, ["12341318394918", "1234131839491234"]);
    assert_eq!(ctx.country, "");
}

#[test]
fn bsm_video_example_keeps_deals_and_falls_back_to_buyeruid() {
    let request = parse_fixture("bsm_breq.video.json");
    let imps = request.impressions();
    assert_eq!(
        imps.iter().map(|i| i.imp_id.as_str()).collect::<Vec<_>>(),
        ["1", "2", "3"]
    );
    assert_eq!(
        imps.iter().map(|i| i.bid_floor).collect::<Vec<_>>(),
        [0.0, 0.0, 2.0]
    );
    let deals = &request.imp[1].pmp.as_ref().unwrap().deals;
    assert_eq!(deals.len(), 2);
    assert_eq!(deals[0].bidfloor, Some(3.5));
    assert_eq!(request.imp[2].video.as_ref().unwrap().startdelay, Some(-2));
    // `user.uid` is not OpenRTB: user_id falls back to user.buyeruid.
    assert_eq!(imps[0].ctx.user_id, "545678765467876567898765678987654");
    assert!(imps.iter().all(|i| i.kind == ImpKind::Video));
}

#[test]
fn prebid_fixtures_map_formats_geo_and_openrtb_2_6_fields() {
    // Two impressions: exact size, then the first format.
    let request = prebid_fixture("mediasquare/mediasquaretest/exemplary/simple-banner.json");
    assert!(request.is_test());
    assert_eq!(request.regs.as_ref().unwrap().gdpr, Some(1));
    assert_eq!(
        request.user.as_ref().unwrap().consent.as_deref(),
        Some("there-is-a-real-cs-in-it")
    );
    let imps = request.impressions();
    assert_eq!(imps.len(), 2);
    assert_eq!(
        (imps[0].ctx.placement_width, imps[0].ctx.placement_height),
        (970, 250)
    );
    assert_eq!(
        (imps[1].ctx.placement_width, imps[1].ctx.placement_height),
        (300, 250)
    );
    assert_eq!((imps[0].bid_floor, imps[1].bid_floor), (1.0, 0.01));
    assert_eq!(imps[0].ctx.country, "FRA");
    assert_eq!(imps[0].ctx.domain, "debug.mediasquare.fr");
    assert_eq!(imps[0].ctx.site_id, "app-id-test");

    // User location and segments; no user id, so the advertising id.
    let request = prebid_fixture("rubicon/rubicontest/exemplary/flexible-schema.json");
    let ctx = &request.impressions()[0].ctx;
    assert_eq!(ctx.country, "USA");
    assert_eq!(ctx.user_id, "zxcjbzxmc-zxcbmz-zxbcz-zxczx");
    assert_eq!(ctx.user_segments.len(), 5);
    assert_eq!(ctx.user_segments[0], "idToCopy");
    assert_eq!((ctx.placement_width, ctx.placement_height), (1024, 576));
    assert!(ctx.is_app);

    // OpenRTB 2.6: device.sua, video.plcmt.
    let request = prebid_fixture("ortb_response_video_parsing.json");
    assert_eq!(request.imp[0].video.as_ref().unwrap().plcmt, Some(4));
    let imp = &request.impressions()[0];
    assert_eq!(imp.ctx.device_type, DeviceType::PersonalComputer);
    assert_eq!(imp.ctx.os, Os::Windows);
    assert_eq!(imp.bid_floor, 1.72);
    assert_eq!(
        (imp.ctx.placement_width, imp.ctx.placement_height),
        (300, 169)
    );
    assert_eq!(imp.ctx.domain, "ttd-bake.com");

    let audio = prebid_fixture("alkimi/alkimitest/exemplary/simple-audio.json");
    let imp = &audio.impressions()[0];
    assert_eq!((imp.kind, imp.bid_floor), (ImpKind::Audio, 0.7));
    assert_eq!((imp.ctx.placement_width, imp.ctx.placement_height), (0, 0));

    let native = prebid_fixture("clydo/clydotest/exemplary/native-single-web.json");
    let imp = &native.impressions()[0];
    assert_eq!(imp.kind, ImpKind::Native);
    assert_eq!(imp.ctx.user_id, "f102c5fe-3d9e-4d14-89f3-8d55248246c7");

    // OpenRTB 2.6 regs.gpp; no site.domain, so the host of site.page.
    let gpp = prebid_fixture("empty-gppsid-conflict.json");
    let regs = gpp.regs.as_ref().unwrap();
    assert!(regs.gpp.as_deref().unwrap().starts_with("DBACNYA~"));
    assert!(regs.gpp_sid.is_empty());
    assert_eq!(gpp.impressions()[0].ctx.domain, "prebid.org");

    let mixed = prebid_fixture("metax/metaxtest/exemplary/app-imps.json");
    let imps = mixed.impressions();
    let kinds: Vec<_> = imps.iter().map(|i| i.kind).collect();
    assert_eq!(kinds, [ImpKind::Video, ImpKind::Video, ImpKind::Banner]);
    assert_eq!(
        (imps[2].ctx.placement_width, imps[2].ctx.placement_height),
        (728, 90)
    );
    assert_eq!(imps[0].ctx.domain, "com.prebid");
}

#[test]
fn every_fixture_is_well_mapped() {
    for name in ["2.5_mobile.json", "2.6_video.json", "bsm_breq.video.json"] {
        let bytes = read(&fixture(name));
        let raw: Value = serde_json::from_slice(&bytes).unwrap();
        assert_well_mapped(name, &raw, &parse_request(&bytes).unwrap());
    }
    let lines = jsonl(&fixture("prebid_sample.jsonl"));
    assert_eq!(lines.len(), 7);
    for (source, bytes) in lines {
        let raw: Value = serde_json::from_slice(&bytes).unwrap();
        let request = parse_request(&bytes).unwrap_or_else(|e| panic!("{source}: {e}"));
        assert_well_mapped(&source, &raw, &request);
    }
}

// ------------------------------------------------- every shared request

/// The shared requests that are refused, each with the error it must get
/// and why refusing is right (OpenRTB 2.6 section in brackets).
const REFUSED: &[(&str, &str, &str)] = &[
    // prebid-server's own sample of an invalid request (a negative banner
    // height, which prebid refuses too): a size cannot be negative (3.2.6).
    (
        "invalid-whole/banner-h-negative.json",
        "imp[0].banner.h",
        "invalid value: integer `-1`, expected u32",
    ),
    // prebid-server's own sample of an invalid request: `imp: [{}]`. An
    // impression without an id cannot be bid on (a bid names its impid; 3.2.4).
    (
        "invalid-whole/imp-empty-object.json",
        "imp[0].id",
        "missing required field",
    ),
    // An adapter test whose two impressions share one id: a bid could not
    // say which one it is for (3.2.4); prebid-server refuses such requests too.
    (
        "kueezrtb/kueezrtbtest/exemplary/multi-imp.json",
        "imp[1].id",
        "is also the id of imp[0]",
    ),
    // prebid-server's own invalid sample: `format: [{}]`, a format with no
    // size at all (3.2.10).
    (
        "invalid-whole/format-empty-object.json",
        "imp[0].banner.format[0]",
        "holds no size",
    ),
    // prebid-server's own invalid sample: a site and a DOOH screen in one
    // request, which 3.2.1 and 3.2.32 forbid.
    (
        "invalid-whole/site-dooh-both.json",
        "dooh",
        "has `site` too",
    ),
    // prebid-server's own invalid sample: a negative location accuracy, in
    // metres (3.2.19).
    (
        "invalid-whole/user-geo-accuracy-negative.json",
        "user.geo.accuracy",
        "invalid value: integer `-1`, expected u32",
    ),
    // An adapter test with both a site and an app (3.2.13, 3.2.14: not more
    // than one of site, app and dooh).
    (
        "silverpush/silverpushtest/exemplary/banner-without-w-h.json",
        "app",
        "has `site` too",
    ),
    // An adapter test whose `regs.ext.us_privacy` is the placeholder
    // `uspConsentString`, not a US Privacy string (3.2.3 and the IAB US
    // Privacy String specification: `1` then three of Y, N, -).
    (
        "smaato/smaatotest/exemplary/native.json",
        "regs.ext.us_privacy",
        "must be a US Privacy string",
    ),
    // An adapter test whose native object has `"request": ""`: the required
    // Native request payload is empty (3.2.9).
    (
        "thetradedesk/thetradedesktest/exemplary/simple-native.json",
        "imp[0].native.request",
        "missing required field",
    ),
];

#[test]
fn every_shared_request_parses_and_is_well_mapped() {
    let Some(dir) = common::shared("openrtb") else {
        return;
    };
    let mut parsed = 0;
    let mut spec_examples = 0;
    for entry in std::fs::read_dir(dir.join("spec_examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let bytes = read(&path);
            let raw: Value = serde_json::from_slice(&bytes).unwrap();
            let label = path.display().to_string();
            let request = parse_request(&bytes).unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_well_mapped(&label, &raw, &request);
            spec_examples += 1;
        }
    }
    assert_eq!(spec_examples, 15, "all 15 spec examples parse");

    let mut refused = Vec::new();
    let lines = jsonl(&dir.join("prebid_exemplary_sample.jsonl"));
    assert_eq!(lines.len(), 154);
    for (source, bytes) in &lines {
        let expected = REFUSED
            .iter()
            .find(|(suffix, ..)| source.ends_with(suffix))
            .copied();
        match (parse_request(bytes), expected) {
            (Ok(request), None) => {
                let raw: Value = serde_json::from_slice(bytes).unwrap();
                assert_well_mapped(source, &raw, &request);
                parsed += 1;
            }
            (Err(Error::OpenRtb { path, reason }), Some((_, want_path, want_reason))) => {
                assert_eq!(path, want_path, "{source}");
                assert!(reason.contains(want_reason), "{source}: {reason}");
                refused.push(source.clone());
            }
            (result, expected) => panic!("{source}: got {result:?}, expected {expected:?}"),
        }
    }
    let expected = REFUSED.len();
    assert_eq!(refused.len(), expected, "refused: {refused:?}");
    assert_eq!(parsed, 154 - expected);
}

// ---------------------------------------------------------------- errors

#[test]
fn bad_requests_are_refused_with_the_field_path() {
    let cases: &[(&str, &str, &str)] = &[
        (
            r#"{"id":"r","imp":[{"id":"1","bidfloor":"x"}]}"#,
            "imp[0].bidfloor",
            "invalid type: string \"x\", expected f64",
        ),
        (r#"{"imp":[{"id":"1"}]}"#, "id", "missing required field"),
        (
            r#"{"id":"","imp":[{"id":"1"}]}"#,
            "id",
            "missing required field",
        ),
        (
            r#"{"id":7,"imp":[{"id":"1"}]}"#,
            "id",
            "invalid type: integer `7`, expected a string",
        ),
        (r#"{"id":"r"}"#, "imp", "missing required field"),
        (
            r#"{"id":"r","imp":[]}"#,
            "imp",
            "must hold at least one impression",
        ),
        (
            r#"{"id":"r","imp":null}"#,
            "imp",
            "must hold at least one impression",
        ),
        (r#"{"id":"r","imp":{}}"#, "imp", "invalid type: map"),
        (
            r#"{"id":"r","imp":[{}]}"#,
            "imp[0].id",
            "missing required field",
        ),
        (
            r#"{"id":"r","imp":[{"id":"1"},{"id":""}]}"#,
            "imp[1].id",
            "missing required field",
        ),
        (
            r#"{"id":"r","imp":[{"id":"a"},{"id":"b"},{"id":"a"}]}"#,
            "imp[2].id",
            "`a` is also the id of imp[0]",
        ),
        (
            r#"{"id":"r","imp":[{"id":"1","bidfloor":-0.01}]}"#,
            "imp[0].bidfloor",
            "finite number >= 0",
        ),
        (
            r#"{"id":"r","imp":[{"id":"1","bidfloor":1e999}]}"#,
            "imp[0].bidfloor",
            "number out of range",
        ),
        (
            r#"{"id":"r","imp":[{"id":"1","pmp":{"deals":[{"id":"d","bidfloor":-1}]}}]}"#,
            "imp[0].pmp.deals[0].bidfloor",
            "finite number >= 0",
        ),
        (
            r#"{"id":"r","imp":[{"id":"1","pmp":{"deals":[{}]}}]}"#,
            "imp[0].pmp.deals[0].id",
            "missing required field",
        ),
        (
            r#"{"id":"r","imp":[{"id":"1","banner":{"w":-5}}]}"#,
            "imp[0].banner.w",
            "expected u32",
        ),
        (
            r#"{"id":"r","imp":[{"id":"1","banner":{"format":[{"w":"300"}]}}]}"#,
            "imp[0].banner.format[0].w",
            "invalid type: string",
        ),
        (
            r#"{"id":"r","imp":[{"id":"1"}],"device":{"geo":{"country":5}}}"#,
            "device.geo.country",
            "invalid type: integer `5`",
        ),
        (
            r#"{"id":"r","imp":[{"id":"1"}],"device":{"devicetype":"phone"}}"#,
            "device.devicetype",
            "expected i64",
        ),
        (
            r#"{"id":"r","imp":[{"id":"1"}],"user":{"data":[{"segment":[{"id":1}]}]}}"#,
            "user.data[0].segment[0].id",
            "invalid type: integer",
        ),
        (
            r#"{"id":"r","imp":[{"id":"1"}],"bcat":"IAB1"}"#,
            "bcat",
            "invalid type: string",
        ),
        (
            r#"{"id":"r","imp":[{"id":"1"}],"cur":[1]}"#,
            "cur[0]",
            "invalid type: integer",
        ),
        (
            r#"{"id":"r","id":"s","imp":[{"id":"1"}]}"#,
            "$",
            "duplicate field `id`",
        ),
        (
            r#"{"id":"r","imp":[{"id":"1"}],"test":300}"#,
            "test",
            "expected u8",
        ),
        (
            r#"[]"#,
            "$",
            "invalid type: sequence, expected a JSON object",
        ),
        (
            r#"["r",[{"id":"1"}]]"#,
            "$",
            "invalid type: sequence, expected a JSON object",
        ),
        (
            r#"{"id":"r","imp":[["1"]]}"#,
            "imp[0]",
            "invalid type: sequence, expected a JSON object",
        ),
        (
            r#"{"id":"r","imp":[{"id":"1","banner":[300,250]}]}"#,
            "imp[0].banner",
            "invalid type: sequence, expected a JSON object",
        ),
        (
            r#"{"id":"r","imp":[{"id":"1"}],"device":{"geo":"USA"}}"#,
            "device.geo",
            "invalid type: string \"USA\", expected a JSON object",
        ),
        (r#""request""#, "$", "invalid type: string"),
        ("", "$", "EOF"),
        ("{", "$", "EOF"),
        (
            r#"{"id":"r","imp":[{"id":"1"}]} {}"#,
            "$",
            "trailing characters",
        ),
        (
            r#"{"id":"r","imp":[{"id":"1","banner":{"w":300,}}]}"#,
            "imp[0].banner",
            "line 1 column",
        ),
    ];
    for (json, path, reason) in cases {
        assert_refused(json, path, reason);
    }
}

#[test]
fn non_utf8_and_binary_input_is_refused() {
    let (path, _) = refusal(b"{\"id\":\"\xff\xfe\",\"imp\":[{\"id\":\"1\"}]}");
    assert_eq!(path, "id");
    let (path, _) = refusal(&[0u8, 159, 146, 150]);
    assert_eq!(path, "$");
}

#[test]
fn error_display_names_the_path() {
    let err = parse_request(br#"{"id":"r","imp":[{"id":"1","bidfloor":"x"}]}"#).unwrap_err();
    let shown = err.to_string();
    assert!(shown.contains("imp[0].bidfloor"), "{shown}");
}

// ---------------------------------------------------------------- limits

fn request_with_imps(n: usize) -> String {
    let imps: Vec<String> = (0..n).map(|i| format!(r#"{{"id":"{i}"}}"#)).collect();
    format!(
        r#"{{"id":"r","imp":[{}],"site":{{"id":"s1"}}}}"#,
        imps.join(",")
    )
}

#[test]
fn impression_count_is_limited() {
    let request = parse_request(request_with_imps(limits::IMPS_MAX).as_bytes()).unwrap();
    assert_eq!(request.impressions().len(), limits::IMPS_MAX);
    assert_refused(
        &request_with_imps(limits::IMPS_MAX + 1),
        "imp",
        "more than 64 items",
    );
}

#[test]
fn oversize_documents_are_refused_before_parsing() {
    let mut big = request_with_imps(1).into_bytes();
    big.truncate(big.len() - 1);
    let pad = limits::REQUEST_BYTES_MAX + 1 - big.len() - 1;
    big.extend(std::iter::repeat_n(b' ', pad));
    big.push(b'}');
    assert_eq!(big.len(), limits::REQUEST_BYTES_MAX + 1);
    let (path, reason) = refusal(&big);
    assert_eq!(path, "$");
    assert!(reason.contains("1048577 bytes"), "{reason}");
    // One byte less parses: whitespace is fine.
    big.remove(big.len() - 2);
    assert_eq!(parse_request(&big).unwrap().imp.len(), 1);
}

#[test]
fn list_limits_refuse_with_the_list_path() {
    let list = |n: usize| {
        let items: Vec<String> = (0..n).map(|i| format!("\"IAB{i}\"")).collect();
        items.join(",")
    };
    let at_limit = format!(
        r#"{{"id":"r","imp":[{{"id":"1"}}],"site":{{"id":"s1"}},"bcat":[{}]}}"#,
        list(limits::LIST_MAX)
    );
    assert_eq!(
        parse_request(at_limit.as_bytes()).unwrap().bcat.len(),
        limits::LIST_MAX
    );
    let over = format!(
        r#"{{"id":"r","imp":[{{"id":"1"}}],"site":{{"id":"s1"}},"bcat":[{}]}}"#,
        list(limits::LIST_MAX + 1)
    );
    assert_refused(&over, "bcat", "more than 1024 items");

    let segments: Vec<String> = (0..=limits::SEGMENTS_MAX)
        .map(|i| format!(r#"{{"id":"s{i}"}}"#))
        .collect();
    let over = format!(
        r#"{{"id":"r","imp":[{{"id":"1"}}],"user":{{"data":[{{"segment":[{}]}}]}}}}"#,
        segments.join(",")
    );
    assert_refused(&over, "user.data[0].segment", "more than 256 items");
}

#[test]
fn deep_nesting_never_overflows_the_stack() {
    let depth = 100_000;
    let json = format!(
        r#"{{"id":"r","imp":[{{"id":"1","ext":{}{}}}]}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let (path, reason) = refusal(json.as_bytes());
    assert!(path.starts_with("imp[0].ext"), "{path}");
    assert!(reason.contains("recursion limit"), "{reason}");
    // In a field that is not modelled, serde_json skips the value with a
    // loop, not recursion: deep nesting there costs no stack and is accepted.
    let json = format!(
        r#"{{"id":"r","imp":[{{"id":"1"}}],"site":{{"id":"s1"}},"unknown":{}1{}}}"#,
        "{\"a\":".repeat(depth),
        "}".repeat(depth)
    );
    assert_eq!(parse_request(json.as_bytes()).unwrap().imp.len(), 1);
}

#[test]
fn context_lists_and_strings_are_capped_while_converting() {
    let segments: Vec<Value> = (0..200)
        .map(|i| json!({ "id": format!("seg{i}") }))
        .collect();
    let cats: Vec<String> = (0..100).map(|i| format!("IAB{i}")).collect();
    let request = json!({
        "id": "r",
        "imp": [{"id": "1"}, {"id": "2"}],
        "site": {"id": "s".repeat(300), "cat": cats, "domain": "example.com"},
        "user": {"id": "u".repeat(257), "buyeruid": "buyer-1", "data": [{"segment": segments}]},
    });
    let request = parse_request(&serde_json::to_vec(&request).unwrap()).unwrap();
    assert_eq!(
        request.user.as_ref().unwrap().data[0].segment.len(),
        200,
        "parsing keeps everything"
    );
    for imp in request.impressions() {
        assert_eq!(imp.ctx.user_segments.len(), LIST_ITEMS_MAX);
        assert_eq!(imp.ctx.user_segments[0], "seg0");
        assert_eq!(imp.ctx.categories.len(), LIST_ITEMS_MAX);
        assert_eq!(imp.ctx.site_id, "", "a 300-byte id is left out");
        // An over-long user.id is present, so it is chosen, then left out.
        assert_eq!(imp.ctx.user_id, "");
        assert_eq!(imp.ctx.domain, "example.com");
    }
}

// ---------------------------------------------------------------- leniency

#[test]
fn openrtb_2_6_fields_unknown_fields_and_nulls_parse() {
    let request = json!({
        "id": "r26",
        "imp": [{
            "id": "1", "rwdd": 1, "qty": {"multiplier": 2.5}, "dt": 1_700_000_000_000.0_f64,
            "refresh": {"count": 2}, "ssai": 1,
            "video": {"mimes": ["video/mp4"], "plcmt": 1, "podid": "p1", "slotinpod": 1, "w": 1920, "h": 1080},
            "bidfloor": null, "tagid": null,
            "ext": {"prebid": {"bidder": {"x": {"y": [1, "two", null]}}}}
        }],
        "site": {"id": "s", "cattax": 2, "cat": null, "kwarray": ["a", "b"], "content": {"kwarray": ["c"], "network": {"id": "n"}}},
        "device": {"sua": {"source": 2, "platform": {"brand": "Android"}, "browsers": []}, "langb": "en", "devicetype": 99, "connectiontype": 7, "os": "android"},
        "user": {"eids": [{"source": "x.com", "uids": [{"id": "abc"}]}], "kwarray": ["k"], "data": null},
        "regs": {"gpp": "DBABMA~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA", "gpp_sid": [2, 6], "gdpr": 1, "us_privacy": "1YNN"},
        "source": {"schain": {"ver": "1.0", "complete": 1, "nodes": []}},
        "acat": ["IAB1"], "cattax": 2, "wlang": ["en"], "wlangb": ["en"],
        "something_new": {"deep": [[[[{}]]]]},
        "bcat": null, "cur": null, "tmax": null
    });
    let request = parse_request(&serde_json::to_vec(&request).unwrap()).unwrap();
    assert_eq!(request.imp[0].rwdd, 1);
    assert_eq!(request.imp[0].video.as_ref().unwrap().plcmt, Some(1));
    assert_eq!(request.regs.as_ref().unwrap().gpp_sid, [2, 6]);
    assert!(request.bcat.is_empty() && request.cur.is_empty() && request.tmax.is_none());
    let imp = &request.impressions()[0];
    assert_eq!(
        imp.ctx.device_type,
        DeviceType::Unknown,
        "99 is outside the list"
    );
    assert_eq!(imp.ctx.connection_type, ConnectionType::Cellular5g);
    assert_eq!(imp.ctx.os, Os::Android);
    assert_eq!(imp.kind, ImpKind::Video);
    assert_eq!(imp.bid_floor, 0.0);
    assert_eq!(
        (imp.ctx.placement_width, imp.ctx.placement_height),
        (1920, 1080)
    );
}

#[test]
fn missing_data_becomes_missing_context_values() {
    let request = parse_request(br#"{"id":"r","imp":[{"id":"only"}],"site":{}}"#).unwrap();
    let imps = request.impressions();
    assert_eq!(imps.len(), 1);
    let Impression {
        imp_id,
        ctx,
        bid_floor,
        bid_floor_currency,
        kind,
    } = &imps[0];
    assert_eq!(imp_id, "only");
    assert_eq!(*ctx, cx_features::RequestContext::default());
    assert_eq!(
        (*bid_floor, bid_floor_currency.as_str(), *kind),
        (0.0, "USD", ImpKind::Other)
    );
}

#[test]
fn fallbacks_follow_the_documented_order() {
    // Requests without a site or app get an empty site, which maps to nothing.
    let parse = |mut v: Value| {
        if v.get("app").is_none() && v.get("site").is_none() {
            v["site"] = json!({});
        }
        parse_request(&serde_json::to_vec(&v).unwrap())
            .unwrap()
            .impressions()
            .remove(0)
            .ctx
    };
    // The conversion never fails, even on a request built by hand that
    // parse_request would refuse (both a site and an app, zero sizes).
    let convert = |v: Value| {
        serde_json::from_value::<BidRequest>(v)
            .unwrap()
            .impressions()
            .remove(0)
            .ctx
    };
    // user.id > user.buyeruid > device.ifa; an all-zero ifa is nobody.
    let ctx = parse(
        json!({"id": "r", "imp": [{"id": "1"}], "user": {"id": "", "buyeruid": "b"}, "device": {"ifa": "i"}}),
    );
    assert_eq!(ctx.user_id, "b");
    let ctx = parse(json!({"id": "r", "imp": [{"id": "1"}], "device": {"ifa": "i"}}));
    assert_eq!(ctx.user_id, "i");
    let ctx = parse(
        json!({"id": "r", "imp": [{"id": "1"}], "device": {"ifa": "00000000-0000-0000-0000-000000000000"}}),
    );
    assert_eq!(ctx.user_id, "");
    // Country and region come from one location: the device's if it has a
    // country, else the user's.
    let ctx = parse(json!({"id": "r", "imp": [{"id": "1"}],
        "device": {"geo": {"region": "BY"}}, "user": {"geo": {"country": "DEU", "region": "BE"}}}));
    assert_eq!((ctx.country.as_str(), ctx.region.as_str()), ("DEU", "BE"));
    let ctx = parse(json!({"id": "r", "imp": [{"id": "1"}],
        "device": {"geo": {"country": "USA"}}, "user": {"geo": {"country": "DEU", "region": "BE"}}}));
    assert_eq!((ctx.country.as_str(), ctx.region.as_str()), ("USA", ""));
    // An app wins over a site (in a request built by hand: parse_request
    // refuses both); app.domain over app.bundle.
    let ctx = convert(json!({"id": "r", "imp": [{"id": "1"}],
        "site": {"id": "s", "domain": "site.com"}, "app": {"id": "a", "domain": "app.com", "bundle": "com.app"}}));
    assert_eq!(
        (ctx.is_app, ctx.site_id.as_str(), ctx.domain.as_str()),
        (true, "a", "app.com")
    );
    // site.domain, else the host of site.page.
    let ctx = parse(
        json!({"id": "r", "imp": [{"id": "1"}], "site": {"page": "https://news.example.org:443/a/b?c=d"}}),
    );
    assert_eq!(ctx.domain, "news.example.org");
    // banner.w/h, else the first sized format, else video.w/h; banner.pos, else video.pos.
    let ctx = convert(
        json!({"id": "r", "imp": [{"id": "1", "banner": {"w": 0, "h": 0, "format": [{"w": 0, "h": 50}, {"w": 320, "h": 50}]}, "video": {"w": 640, "h": 480, "pos": 7}}]}),
    );
    assert_eq!(
        (ctx.placement_width, ctx.placement_height, ctx.ad_position),
        (320, 50, AdPosition::FullScreen)
    );
    let ctx = convert(
        json!({"id": "r", "imp": [{"id": "1", "banner": {"format": [{}]}, "video": {"w": 640, "h": 480}}]}),
    );
    assert_eq!((ctx.placement_width, ctx.placement_height), (640, 480));
    // The same sizes as a valid request: the first format, and video.w/h.
    let ctx = parse(
        json!({"id": "r", "imp": [{"id": "1", "banner": {"format": [{"w": 320, "h": 50}]}, "video": {"mimes": ["video/mp4"], "w": 640, "h": 480, "pos": 7}}]}),
    );
    assert_eq!(
        (ctx.placement_width, ctx.placement_height, ctx.ad_position),
        (320, 50, AdPosition::FullScreen)
    );
    let ctx = parse(
        json!({"id": "r", "imp": [{"id": "1", "native": {"request": "{}"}, "video": {"mimes": ["video/mp4"], "w": 640, "h": 480}}]}),
    );
    assert_eq!((ctx.placement_width, ctx.placement_height), (640, 480));
}

// ---------------------------------------------------------------- fuzz

/// Equal JSON, numbers within 1e-15 relative (a few units in the last
/// place): serde_json is
/// built without `float_roundtrip`, so a 17-digit float written by it can read
/// back one unit in the last place off. Short decimals (all real traffic
/// here) round-trip exactly, and the fixture tests compare those exactly.
fn assert_json_close(a: &Value, b: &Value) {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!((x - y).abs() <= 1e-15 * x.abs().max(y.abs()), "{x} != {y}");
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len());
            x.iter().zip(y).for_each(|(x, y)| assert_json_close(x, y));
        }
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(x.keys().collect::<Vec<_>>(), y.keys().collect::<Vec<_>>());
            x.values()
                .zip(y.values())
                .for_each(|(x, y)| assert_json_close(x, y));
        }
        _ => assert_eq!(a, b),
    }
}

/// A random JSON value, up to a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from), // NaN and infinities become null
        "\\PC{0,12}".prop_map(Value::from),
        Just(Value::from("")),
        Just(Value::from(-1)),
        Just(Value::from(0)),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Pointers (`/imp/0/banner`) to every node of a JSON value.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                pointers(child, format!("{at}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                pointers(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

/// Parsing either fails with an OpenRtb error or gives a request whose
/// conversion and write-back work.
fn parse_never_panics(bytes: &[u8]) -> Result<(), TestCaseError> {
    match parse_request(bytes) {
        Ok(request) => {
            let imps = request.impressions();
            prop_assert_eq!(imps.len(), request.imp.len());
            prop_assert!(!imps.is_empty() && imps.len() <= limits::IMPS_MAX);
            let written = serde_json::to_vec(&request).unwrap();
            let again = parse_request(&written).unwrap();
            assert_json_close(
                &serde_json::to_value(&again).unwrap(),
                &serde_json::to_value(&request).unwrap(),
            );
        }
        Err(Error::OpenRtb { .. }) => {}
        Err(other) => prop_assert!(false, "unexpected error kind {other:?}"),
    }
    Ok(())
}

fn fixture_bytes() -> Vec<Vec<u8>> {
    let mut all: Vec<Vec<u8>> = ["2.5_mobile.json", "2.6_video.json", "bsm_breq.video.json"]
        .iter()
        .map(|name| read(&fixture(name)))
        .collect();
    all.extend(
        jsonl(&fixture("prebid_sample.jsonl"))
            .into_iter()
            .map(|(_, b)| b),
    );
    all
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        parse_never_panics(&bytes)?;
    }

    #[test]
    fn byte_mutations_of_real_requests_never_panic(
        which in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..8),
    ) {
        let all = fixture_bytes();
        let mut bytes = all[which.index(all.len())].clone();
        for (at, byte, op) in edits {
            if bytes.is_empty() {
                break;
            }
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                2 => { bytes.remove(i); }
                _ => bytes.truncate(i),
            }
        }
        parse_never_panics(&bytes)?;
    }

    #[test]
    fn value_mutations_of_real_requests_never_panic(
        which in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), prop::option::of(any_json())), 1..4),
    ) {
        let all = fixture_bytes();
        let mut value: Value = serde_json::from_slice(&all[which.index(all.len())]).unwrap();
        for (at, replacement) in edits {
            let mut all_pointers = Vec::new();
            pointers(&value, String::new(), &mut all_pointers);
            let pointer = at.get(&all_pointers).clone();
            match (replacement, pointer.rsplit_once('/')) {
                (Some(new), _) => {
                    if let Some(node) = value.pointer_mut(&pointer) {
                        *node = new;
                    }
                }
                (None, Some((parent, key))) => match value.pointer_mut(parent) {
                    Some(Value::Object(map)) => { map.remove(key); }
                    Some(Value::Array(items)) => {
                        if let Ok(i) = key.parse::<usize>() {
                            if i < items.len() { items.remove(i); }
                        }
                    }
                    _ => {}
                },
                (None, None) => value = Value::Null,
            }
        }
        parse_never_panics(&serde_json::to_vec(&value).unwrap())?;
    }
}

// ---------------------------------------------------------------- responses

fn request_for_responses() -> BidRequest {
    parse_request(
        br#"{"id":"req-1","cur":["USD","EUR"],"site":{"id":"s1"},"imp":[
            {"id":"a","bidfloor":0.5,"banner":{"w":300,"h":250}},
            {"id":"b"},
            {"id":"c","bidfloor":1.0,"bidfloorcur":"EUR"}]}"#,
    )
    .unwrap()
}

fn bid(id: &str, impid: &str, price: f64) -> Bid {
    Bid {
        id: id.into(),
        impid: impid.into(),
        price,
        ..Bid::default()
    }
}

fn response(bids: Vec<Bid>) -> BidResponse {
    BidResponse {
        id: "req-1".into(),
        seatbid: vec![SeatBid {
            bid: bids,
            seat: Some("cx".into()),
        }],
        ..BidResponse::default()
    }
}

#[test]
fn responses_serialise_without_none_fields_and_round_trip() {
    let minimal = response(vec![bid("b1", "a", 0.75)]);
    assert_eq!(
        serde_json::to_string(&minimal).unwrap(),
        r#"{"id":"req-1","seatbid":[{"bid":[{"id":"b1","impid":"a","price":0.75}],"seat":"cx"}]}"#
    );
    let full = BidResponse {
        id: "req-1".into(),
        seatbid: vec![SeatBid {
            bid: vec![Bid {
                id: "b1".into(),
                impid: "a".into(),
                price: 0.1 + 0.2,
                adid: Some("ad-7".into()),
                crid: Some("cr-7".into()),
                cid: Some("camp-3".into()),
                adomain: vec!["brand.example".into()],
                w: Some(300),
                h: Some(250),
                ext: Some(json!({"offer_id": 1003, "score": [0.25, 1e-9]})),
                ..Bid::default()
            }],
            seat: None,
        }],
        bidid: Some("resp-9".into()),
        cur: Some("USD".into()),
        nbr: None,
        ext: Some(json!({"engine": "cx"})),
    };
    let text = serde_json::to_string(&full).unwrap();
    assert!(!text.contains("null") && !text.contains("seat\""), "{text}");
    assert_eq!(parse_response(text.as_bytes()).unwrap(), full);
    let value: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        value["seatbid"][0]["bid"][0]["adomain"],
        json!(["brand.example"])
    );
    assert_eq!(value["seatbid"][0]["bid"][0]["price"], json!(0.1 + 0.2));
}

#[test]
fn no_bid_has_a_reason_and_no_seatbid() {
    let request = request_for_responses();
    let no_bid = BidResponse::no_bid(&request.id, NoBidReason::SuspectedNonHuman);
    assert!(no_bid.seatbid.is_empty() && no_bid.is_no_bid());
    assert_eq!(no_bid.nbr, Some(4));
    assert_eq!(no_bid.no_bid_reason(), Some(NoBidReason::SuspectedNonHuman));
    assert_eq!(
        serde_json::to_value(&no_bid).unwrap(),
        json!({"id": "req-1", "nbr": 4})
    );
    no_bid.check(&request).unwrap();
    let labels: Vec<_> = NoBidReason::ALL
        .iter()
        .map(|r| (r.code(), r.label()))
        .collect();
    assert_eq!(labels[0], (0, "unknown_error"));
    assert_eq!(labels[10], (10, "daily_domain_cap_met"));
}

#[test]
fn check_accepts_well_formed_responses() {
    let request = request_for_responses();
    response(vec![bid("b1", "a", 0.5), bid("b2", "b", 0.0)])
        .check(&request)
        .unwrap();
    let mut eur = response(vec![bid("b1", "c", 1.0)]);
    eur.cur = Some("EUR".into());
    eur.check(&request).unwrap();
    // Two seats may bid on one impression, with distinct bid ids.
    let mut two_seats = response(vec![bid("b1", "a", 0.6)]);
    two_seats.seatbid.push(SeatBid {
        bid: vec![bid("b2", "a", 0.7)],
        seat: Some("other".into()),
    });
    two_seats.check(&request).unwrap();
}

#[test]
fn check_catches_malformed_responses() {
    let request = request_for_responses();
    let expect = |resp: BidResponse, path: &str, reason: &str| match resp.check(&request) {
        Err(Error::OpenRtb { path: p, reason: r }) => {
            assert_eq!(p, path, "{r}");
            assert!(r.contains(reason), "{r:?} should contain {reason:?}");
        }
        other => panic!("expected a refusal at {path}, got {other:?}"),
    };
    expect(
        response(vec![bid("b1", "a", 0.49)]),
        "seatbid[0].bid[0].price",
        "under imp[0].bidfloor 0.5",
    );
    expect(
        response(vec![bid("b1", "zz", 9.0)]),
        "seatbid[0].bid[0].impid",
        "`zz` is not the id of an impression",
    );
    expect(
        response(vec![bid("b1", "a", 1.0), bid("b1", "b", 1.0)]),
        "seatbid[0].bid[1].id",
        "also the id of seatbid[0].bid[0]",
    );
    expect(
        response(vec![bid("", "a", 1.0)]),
        "seatbid[0].bid[0].id",
        "missing required field",
    );
    expect(
        response(vec![bid("b1", "b", f64::NAN)]),
        "seatbid[0].bid[0].price",
        "finite",
    );
    expect(
        response(vec![bid("b1", "b", f64::INFINITY)]),
        "seatbid[0].bid[0].price",
        "finite",
    );
    expect(
        response(vec![bid("b1", "b", -0.1)]),
        "seatbid[0].bid[0].price",
        "finite number >= 0",
    );
    expect(
        response(vec![bid("b1", "c", 5.0)]),
        "seatbid[0].bid[0].price",
        "is in USD but imp[2].bidfloor is in EUR",
    );
    expect(response(vec![]), "seatbid[0].bid", "at least one bid");
    let mut with_nbr = response(vec![bid("b1", "a", 1.0)]);
    with_nbr.nbr = Some(2);
    expect(with_nbr, "nbr", "must be absent");
    let mut wrong_id = response(vec![bid("b1", "a", 1.0)]);
    wrong_id.id = "req-2".into();
    expect(wrong_id, "id", "the request's id is `req-1`");
    let mut yen = response(vec![bid("b1", "b", 1.0)]);
    yen.cur = Some("JPY".into());
    expect(yen, "cur", "`JPY` is not one of");
}

#[test]
fn responses_parse_with_paths_and_limits() {
    let resp = parse_response(br#"{"id":"r","seatbid":[{"bid":[{"id":"b","impid":"1","price":1.5,"adm":"<div/>","nurl":"x"}]}],"nbr":null}"#).unwrap();
    assert_eq!(resp.seatbid[0].bid[0].price, 1.5);
    match parse_response(
        br#"{"id":"r","seatbid":[{"bid":[{"id":"b","impid":"1","price":"1.5"}]}]}"#,
    ) {
        Err(Error::OpenRtb { path, .. }) => assert_eq!(path, "seatbid[0].bid[0].price"),
        other => panic!("{other:?}"),
    }
    match parse_response(br#"{"id":"r","seatbid":[{"bid":[{"id":"b","price":1}]}]}"#) {
        Err(Error::OpenRtb { path, reason }) => {
            assert_eq!(
                (path.as_str(), reason.as_str()),
                ("seatbid[0].bid[0].impid", "missing required field")
            )
        }
        other => panic!("{other:?}"),
    }
    let bids: Vec<String> = (0..=limits::BIDS_MAX)
        .map(|i| format!(r#"{{"id":"{i}","impid":"1","price":1}}"#))
        .collect();
    let json = format!(r#"{{"id":"r","seatbid":[{{"bid":[{}]}}]}}"#, bids.join(","));
    match parse_response(json.as_bytes()) {
        Err(Error::OpenRtb { path, .. }) => assert_eq!(path, "seatbid[0].bid"),
        other => panic!("{other:?}"),
    }
}

proptest! {
    #[test]
    fn responses_round_trip(
        price in 0.0f64..1e6,
        w in prop::option::of(0u32..5000),
        adomain in prop::collection::vec("[a-z]{1,10}\\.com", 0..3),
        nbr in prop::option::of(0u32..11),
        bidid in prop::option::of("\\PC{0,10}"),
    ) {
        let mut resp = response(vec![Bid { w, adomain, ..bid("b1", "a", price) }]);
        resp.bidid = bidid;
        if nbr.is_some() {
            resp = BidResponse { nbr, ..BidResponse::default() };
        }
        let text = serde_json::to_string(&resp).unwrap();
        prop_assert!(!text.contains("null"));
        let again = parse_response(text.as_bytes()).unwrap();
        assert_json_close(&serde_json::to_value(&again).unwrap(), &serde_json::to_value(&resp).unwrap());
    }
}
