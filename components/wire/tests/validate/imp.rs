//! Rules on impressions: banner and format sizes, video, audio and native
//! requirements, impression ids and deals.

use serde_json::json;

use super::*;

// ------------------------------------------------------------- banner (3.2.6)

#[test]
fn a_banner_needs_a_size() {
    let both = "needs both `w` and `h`";
    check(vec![
        imp_case(
            json!({"banner": {}}),
            "imp[0].banner",
            "has no size",
            json!({"banner": {"format": [{"w": 300, "h": 250}]}}),
        ),
        imp_case(
            json!({"banner": {"format": []}}),
            "imp[0].banner",
            "has no size",
            json!({"banner": {"w": 300, "h": 250, "format": []}}),
        ),
        imp_case(
            json!({"banner": {"w": 300}}),
            "imp[0].banner.h",
            both,
            json!({"banner": {"w": 300, "h": 50}}),
        ),
        imp_case(
            json!({"banner": {"h": 250}}),
            "imp[0].banner.w",
            both,
            json!({"banner": {"w": 1, "h": 250}}),
        ),
    ]);
    // With `format`, a lone `w` or `h` is the sender's business.
    assert_accepted(&request(
        json!({"banner": {"w": 300, "format": [{"w": 300, "h": 250}]}}),
        json!({}),
    ));
}

#[test]
fn banner_sizes_are_above_zero_but_an_interstitial_may_be_0_by_0() {
    check(vec![
        imp_case(
            json!({"banner": {"w": 0, "h": 250}}),
            "imp[0].banner.w",
            POSITIVE,
            json!({"banner": {"w": 1, "h": 250}}),
        ),
        imp_case(
            json!({"banner": {"w": 300, "h": 0}}),
            "imp[0].banner.h",
            POSITIVE,
            json!({"banner": {"w": 300, "h": 1}}),
        ),
        // 0 x 0 means the full screen only on an interstitial.
        imp_case(
            json!({"banner": {"w": 0, "h": 0}}),
            "imp[0].banner.w",
            POSITIVE,
            json!({"banner": {"w": 0, "h": 0}, "instl": 1}),
        ),
        imp_case(
            json!({"banner": {"w": 0, "h": 250}, "instl": 1}),
            "imp[0].banner.w",
            POSITIVE,
            json!({"banner": {"w": 0, "h": 0}, "instl": 1}),
        ),
        imp_case(
            json!({"banner": {"w": 0, "h": 0, "format": [{"w": 300, "h": 250}]}}),
            "imp[0].banner.w",
            POSITIVE,
            json!({"banner": {"format": [{"w": 300, "h": 250}]}}),
        ),
        imp_case(
            json!({"banner": {"w": -1, "h": 250}}),
            "imp[0].banner.w",
            NEGATIVE,
            json!({"banner": {"w": 1, "h": 250}}),
        ),
    ]);
}

// ------------------------------------------------------------- format (3.2.10)

#[test]
fn a_format_is_one_complete_absolute_or_ratio_size() {
    let format = |entries: Value| json!({"banner": {"format": entries}});
    let abs = json!({"w": 300, "h": 250});
    let ratio = json!({"wratio": 16, "hratio": 9, "wmin": 320});
    let mixes = "mixes a ratio size";
    check(vec![
        imp_case(
            format(json!([abs, {"w": 300, "h": 250, "wratio": 16}])),
            "imp[0].banner.format[1].wratio",
            mixes,
            // Absolute and ratio sizes in separate entries are fine.
            format(json!([abs, ratio])),
        ),
        imp_case(
            format(json!([{"w": 300, "h": 250, "hratio": 9, "wmin": 320}])),
            "imp[0].banner.format[0].hratio",
            mixes,
            format(json!([ratio])),
        ),
        imp_case(
            format(json!([{"h": 250, "wratio": 16, "hratio": 9, "wmin": 320}])),
            "imp[0].banner.format[0].wratio",
            mixes,
            format(json!([{"wratio": 16, "hratio": 9, "wmin": 320}])),
        ),
        imp_case(
            format(json!([abs, {}])),
            "imp[0].banner.format[1]",
            "holds no size",
            format(json!([abs, abs])),
        ),
        imp_case(
            format(json!([{"w": 300}])),
            "imp[0].banner.format[0].h",
            "needs both `w` and `h`",
            format(json!([abs])),
        ),
        imp_case(
            format(json!([{"wratio": 16, "hratio": 9}])),
            "imp[0].banner.format[0].wmin",
            "needs all of `wratio`, `hratio` and `wmin`",
            format(json!([ratio])),
        ),
        imp_case(
            format(json!([{"wratio": 16, "wmin": 320}])),
            "imp[0].banner.format[0].hratio",
            "needs all of",
            format(json!([ratio])),
        ),
    ]);
}

#[test]
fn format_sizes_are_above_zero() {
    let one = |entry: Value| json!({"banner": {"format": [{"w": 728, "h": 90}, entry]}});
    for (field, valid) in [
        ("w", json!({"w": 300, "h": 250})),
        ("h", json!({"w": 300, "h": 250})),
        ("wratio", json!({"wratio": 16, "hratio": 9, "wmin": 320})),
        ("hratio", json!({"wratio": 16, "hratio": 9, "wmin": 320})),
        ("wmin", json!({"wratio": 16, "hratio": 9, "wmin": 320})),
    ] {
        let path = format!("imp[0].banner.format[1].{field}");
        let mut zero = valid.clone();
        zero[field] = json!(0);
        let mut negative = valid.clone();
        negative[field] = json!(-1);
        check(vec![
            imp_case(one(zero), &path, POSITIVE, one(valid.clone())),
            imp_case(one(negative), path, NEGATIVE, one(valid)),
        ]);
    }
}

// ----------------------------------------------- video, audio, native (3.2.7 - 3.2.9)

#[test]
fn video_and_audio_need_mimes_and_positive_sizes_and_bit_rates() {
    for kind in ["video", "audio"] {
        let with = |fields: Value| {
            let mut object = json!({"mimes": ["video/mp4"]});
            merge(&mut object, fields);
            json!({"banner": null, kind: object})
        };
        let at = |field: &str| format!("imp[0].{kind}.{field}");
        let mut cases = vec![
            imp_case(
                with(json!({"mimes": null})),
                at("mimes"),
                MISSING,
                with(json!({})),
            ),
            imp_case(
                with(json!({"mimes": []})),
                at("mimes"),
                MISSING,
                with(json!({"mimes": ["audio/mp4"]})),
            ),
            imp_case(
                with(json!({"minduration": -1})),
                at("minduration"),
                NEGATIVE,
                with(json!({"minduration": 0})),
            ),
            imp_case(
                with(json!({"maxduration": -1})),
                at("maxduration"),
                NEGATIVE,
                with(json!({"maxduration": 30})),
            ),
        ];
        for field in ["minbitrate", "maxbitrate"] {
            cases.push(imp_case(
                with(json!({field: 0})),
                at(field),
                POSITIVE,
                with(json!({field: 300})),
            ));
            cases.push(imp_case(
                with(json!({field: -1})),
                at(field),
                NEGATIVE,
                with(json!({field: 300})),
            ));
        }
        if kind == "video" {
            for field in ["w", "h"] {
                cases.push(imp_case(
                    with(json!({field: 0})),
                    at(field),
                    POSITIVE,
                    with(json!({field: 640})),
                ));
            }
        }
        check(cases);
    }
}

#[test]
fn native_needs_a_request() {
    let native = |n: Value| json!({"banner": null, "native": n});
    check(vec![
        imp_case(
            native(json!({"ver": "1.2"})),
            "imp[0].native.request",
            MISSING,
            native(json!({"request": "{}"})),
        ),
        imp_case(
            native(json!({"request": ""})),
            "imp[0].native.request",
            MISSING,
            native(json!({"request": "{\"ver\":\"1.2\"}"})),
        ),
        imp_case(
            native(json!({"request": 5})),
            "imp[0].native.request",
            "invalid type: integer",
            native(json!({"request": "5"})),
        ),
    ]);
}

// ------------------------------------------------------- imp ids and deals (3.2.4, 3.2.12)

#[test]
fn imp_ids_are_unique_and_deals_have_ids() {
    let banner = json!({"w": 300, "h": 250});
    let two = |a: &str, b: &str| json!({"imp": [{"id": a, "banner": banner}, {"id": b, "banner": banner}]});
    let deals = |d: Value| json!({"pmp": {"private_auction": 1, "deals": d}});
    check(vec![
        top_case(
            two("1", "1"),
            "imp[1].id",
            "`1` is also the id of imp[0]",
            two("1", "2"),
        ),
        top_case(two("1", ""), "imp[1].id", MISSING, two("1", "2")),
        imp_case(
            deals(json!([{"id": "d1"}, {"bidfloor": 1.5}])),
            "imp[0].pmp.deals[1].id",
            MISSING,
            deals(json!([{"id": "d1"}, {"id": "d2", "bidfloor": 1.5}])),
        ),
        imp_case(
            deals(json!([{"id": ""}])),
            "imp[0].pmp.deals[0].id",
            MISSING,
            deals(json!([{"id": "d"}])),
        ),
        imp_case(
            deals(json!([{"id": "d", "bidfloor": -1}])),
            "imp[0].pmp.deals[0].bidfloor",
            "finite number >= 0",
            deals(json!([{"id": "d", "bidfloor": 0}])),
        ),
    ]);
}
