//! Rules on the request's own fields: one of site, app and dooh, `tmax`,
//! the device and locations, regulations and consent; and what the
//! specification leaves open.

use serde_json::json;

use super::*;

// ------------------------------------------- site, app, dooh (3.2.1, 3.2.13, 3.2.14, 3.2.32)

#[test]
fn exactly_one_of_site_app_and_dooh() {
    let one = "has `site` too";
    check(vec![
        top_case(
            json!({"app": {"id": "a"}}),
            "app",
            one,
            json!({"app": {"id": "a"}, "site": null}),
        ),
        top_case(
            json!({"dooh": {"id": "d"}}),
            "dooh",
            one,
            json!({"dooh": {"id": "d"}, "site": null}),
        ),
        top_case(
            json!({"site": null, "app": {}, "dooh": {}}),
            "dooh",
            "has `app` too",
            json!({"site": null, "app": {}}),
        ),
    ]);
    // None of them is accepted (OpenRTB calls each recommended, not
    // required); `null` is absence.
    let none = json!({"id": "r", "imp": [{"id": "1"}], "site": null, "app": null});
    parse(&none).expect("no site, app or dooh is accepted");
    // `dooh` must be an object like any other.
    let dooh_array = request(json!({}), json!({"site": null, "dooh": [1]}));
    assert_refused(&dooh_array, "dooh", "expected a JSON object");
    // DOOH is kept as it was sent, and written back.
    let dooh = request(
        json!({}),
        json!({"site": null, "dooh": {"id": "d", "venuetype": ["x"]}}),
    );
    let parsed = parse(&dooh).unwrap();
    assert_eq!(parsed.dooh, Some(json!({"id": "d", "venuetype": ["x"]})));
    assert_eq!(
        parse(&serde_json::to_value(&parsed).unwrap()).unwrap(),
        parsed
    );
}

// -------------------------------------------------- tmax, device, geo (3.2.1, 3.2.18, 3.2.19)

#[test]
fn tmax_ppi_accuracy_and_coordinates_are_in_range() {
    let geo = |g: Value| json!({"device": {"geo": g}});
    check(vec![
        top_case(json!({"tmax": 0}), "tmax", POSITIVE, json!({"tmax": 1})),
        top_case(json!({"tmax": -1}), "tmax", NEGATIVE, json!({"tmax": 120})),
        top_case(
            json!({"device": {"ppi": 0}}),
            "device.ppi",
            POSITIVE,
            json!({"device": {"ppi": 326}}),
        ),
        top_case(
            json!({"device": {"ppi": -1}}),
            "device.ppi",
            NEGATIVE,
            json!({"device": {"ppi": 1}}),
        ),
        // Accuracy is an estimate in metres: 0 is a (very good) estimate.
        top_case(
            geo(json!({"accuracy": -1})),
            "device.geo.accuracy",
            NEGATIVE,
            geo(json!({"accuracy": 0})),
        ),
        top_case(
            json!({"user": {"geo": {"accuracy": -1}}}),
            "user.geo.accuracy",
            NEGATIVE,
            json!({"user": {"geo": {"accuracy": 20}}}),
        ),
        top_case(
            geo(json!({"lat": 90.5})),
            "device.geo.lat",
            "from -90 to 90",
            geo(json!({"lat": 90.0, "lon": -180.0})),
        ),
        top_case(
            json!({"user": {"geo": {"lon": -180.25}}}),
            "user.geo.lon",
            "from -180 to 180",
            json!({"user": {"geo": {"lon": 180}}}),
        ),
    ]);
}

// ------------------------------------------------------ regs and consent (3.2.3, 3.2.20)

#[test]
fn regs_flags_are_0_or_1() {
    let regs = |r: Value| json!({"regs": r});
    check(vec![
        top_case(
            regs(json!({"coppa": 2})),
            "regs.coppa",
            "must be 0 or 1, got 2",
            regs(json!({"coppa": 1})),
        ),
        top_case(
            regs(json!({"gdpr": 2})),
            "regs.gdpr",
            "must be 0 or 1, got 2",
            regs(json!({"gdpr": 0})),
        ),
        top_case(
            regs(json!({"gdpr": -1})),
            "regs.gdpr",
            "expected u8",
            regs(json!({"gdpr": 1})),
        ),
        top_case(
            regs(json!({"ext": {"gdpr": 2}})),
            "regs.ext.gdpr",
            "must be 0 or 1, got 2",
            regs(json!({"ext": {"gdpr": 1}})),
        ),
        top_case(
            regs(json!({"ext": {"gdpr": "1"}})),
            "regs.ext.gdpr",
            "must be the integer 0 or 1, got string \"1\"",
            regs(json!({"ext": {"gdpr": null}})),
        ),
        top_case(
            regs(json!({"ext": {"gdpr": -1}})),
            "regs.ext.gdpr",
            "got number `-1`",
            regs(json!({"ext": {"gdpr": 0}})),
        ),
        top_case(
            regs(json!({"ext": {"gdpr": 1.0}})),
            "regs.ext.gdpr",
            "the integer 0 or 1",
            regs(json!({"ext": {"gdpr": 1}})),
        ),
    ]);
}

#[test]
fn us_privacy_is_a_us_privacy_string() {
    let top = |s: Value| json!({"regs": {"us_privacy": s}});
    let ext = |s: Value| json!({"regs": {"ext": {"us_privacy": s}}});
    let what = "must be a US Privacy string";
    let mut cases = Vec::new();
    for bad in [
        "",
        "1YN",
        "1YNN-",
        "2YNN",
        "1ynn",
        "1YNX",
        "invalid by length",
        "1YÑ",
    ] {
        cases.push(top_case(
            top(json!(bad)),
            "regs.us_privacy",
            what,
            top(json!("1YN-")),
        ));
        cases.push(top_case(
            ext(json!(bad)),
            "regs.ext.us_privacy",
            what,
            ext(json!("1---")),
        ));
    }
    cases.push(top_case(
        top(json!(1)),
        "regs.us_privacy",
        "invalid type: integer",
        top(json!("1NNN")),
    ));
    cases.push(top_case(
        ext(json!(1)),
        "regs.ext.us_privacy",
        "got number `1`",
        ext(json!(null)),
    ));
    check(cases);
    let long = "1".repeat(100);
    assert_refused(
        &request(json!({}), top(json!(long))),
        "regs.us_privacy",
        "a string of 100 bytes",
    );
}

#[test]
fn gpp_sid_holds_integers_and_consent_is_a_string() {
    let regs = |r: Value| json!({"regs": r});
    let consent = |c: Value| json!({"user": {"ext": {"consent": c}}});
    check(vec![
        top_case(
            regs(json!({"gpp_sid": ["2"]})),
            "regs.gpp_sid[0]",
            "invalid type: string",
            regs(json!({"gpp_sid": [2, 6]})),
        ),
        top_case(
            regs(json!({"gpp_sid": 2})),
            "regs.gpp_sid",
            "invalid type: integer",
            regs(json!({"gpp_sid": [2]})),
        ),
        top_case(
            regs(json!({"gpp_sid": [1.5]})),
            "regs.gpp_sid[0]",
            "invalid type: floating point",
            regs(json!({"gpp_sid": []})),
        ),
        top_case(
            consent(json!(1)),
            "user.ext.consent",
            "must be a string",
            consent(json!("CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA")),
        ),
        top_case(
            consent(json!({"v": 2})),
            "user.ext.consent",
            "got an object",
            consent(json!(null)),
        ),
        top_case(
            json!({"user": {"consent": 1}}),
            "user.consent",
            "invalid type: integer",
            json!({"user": {"consent": ""}}),
        ),
    ]);
}

// --------------------------------------------------- what the spec leaves to the bidder

#[test]
fn what_the_spec_leaves_open_is_accepted() {
    for (imp, top) in [
        // An impression offering no ad kind; an id-only site.
        (json!({"banner": null}), json!({})),
        // Video without a player size or durations; audio without bit rates.
        (
            json!({"banner": null, "video": {"mimes": ["video/mp4"]}}),
            json!({}),
        ),
        (
            json!({"audio": {"mimes": ["audio/mp4"], "minduration": 0, "maxduration": 0}}),
            json!({}),
        ),
        // Codes outside their lists, unknown and vendor fields, extensions of any shape.
        (
            json!({"banner": {"w": 300, "h": 250, "pos": 99, "btype": [42], "vcm": 7, "ext": [1]}, "ext": "x", "qty": {"multiplier": 2}}),
            json!({"device": {"devicetype": 99, "sua": {"browsers": []}, "ext": 5}, "cattax": 7, "unknown": {"a": [null]}, "ext": []}),
        ),
        // Regulations absent, empty, or with extensions the spec does not define.
        (json!({}), json!({"regs": {}})),
        (
            json!({}),
            json!({"regs": {"ext": "not an object"}, "user": {"ext": "x"}}),
        ),
        (
            json!({}),
            json!({"regs": {"ext": {"gdpr": null, "dsa": {"required": 3}}}, "user": {"ext": {"consent": null, "eids": 1}}}),
        ),
        // GPP section ids of any value; an empty consent string.
        (
            json!({}),
            json!({"regs": {"gpp": "", "gpp_sid": [-1, 0, 99999]}, "user": {"consent": ""}}),
        ),
        // The 2.5 spec's full-screen interstitial.
        (
            json!({"instl": 1, "banner": {"w": 0, "h": 0, "pos": 2}}),
            json!({"site": null, "app": {"id": "a"}}),
        ),
    ] {
        assert_accepted(&request(imp, top));
    }
}

#[test]
fn rules_are_checked_in_document_order() {
    // Both the imp and the inventory are wrong: the imp is reported.
    let both = request(json!({"banner": {}}), json!({"site": null}));
    assert_refused(&both, "imp[0].banner", "has no size");
    // The first imp at fault is reported, not a later one.
    let v = json!({"id": "r", "site": {}, "imp": [
        {"id": "1", "banner": {"w": 300, "h": 250}},
        {"id": "2", "video": {"mimes": []}},
        {"id": "3", "native": {}}]});
    assert_refused(&v, "imp[1].video.mimes", MISSING);
}
