//! Validation never panics on JSON built from the request's own field names,
//! and what it accepts keeps the rules.

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use super::parse;
use cx_wire::Error;

// ------------------------------------------------------------------ fuzz

/// Field names of the request and its objects, plus a few that are not.
const NAMES: &[&str] = &[
    "id",
    "imp",
    "site",
    "app",
    "dooh",
    "device",
    "user",
    "regs",
    "tmax",
    "test",
    "banner",
    "video",
    "audio",
    "native",
    "pmp",
    "deals",
    "format",
    "w",
    "h",
    "wratio",
    "hratio",
    "wmin",
    "instl",
    "mimes",
    "minbitrate",
    "maxbitrate",
    "minduration",
    "maxduration",
    "request",
    "ppi",
    "geo",
    "accuracy",
    "lat",
    "lon",
    "coppa",
    "gdpr",
    "us_privacy",
    "gpp_sid",
    "ext",
    "consent",
    "bidfloor",
    "unknown",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        prop::sample::select(vec![-1i64, 0, 1, 2, 250, 4_294_967_296, i64::MIN])
            .prop_map(Value::from),
        prop::sample::select(vec![-90.5f64, 0.5, 180.0, 1e300]).prop_map(Value::from),
        prop::sample::select(vec!["", "1", "1YN-", "1---", "video/mp4", "{}", "ñ"])
            .prop_map(Value::from),
    ]
}

/// JSON values whose objects use the request's field names.
fn shaped() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
            prop::collection::btree_map(prop::sample::select(NAMES), inner, 0..5).prop_map(|m| {
                Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
        ]
    })
}

/// A request-like object: mostly with an id and impressions with distinct
/// ids, so that validation gets past the first rules.
fn request_like() -> impl Strategy<Value = Value> {
    (
        prop::collection::btree_map(prop::sample::select(NAMES), shaped(), 0..6),
        prop::collection::vec(
            prop::collection::btree_map(prop::sample::select(NAMES), shaped(), 0..5),
            0..3,
        ),
        any::<bool>(),
    )
        .prop_map(|(top, imps, with_ids)| {
            let mut top: Map<String, Value> =
                top.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            if with_ids {
                top.insert("id".into(), json!("r"));
                let imps: Vec<Value> = imps
                    .into_iter()
                    .enumerate()
                    .map(|(i, m)| {
                        let mut m: Map<String, Value> =
                            m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
                        m.insert("id".into(), json!(i.to_string()));
                        Value::Object(m)
                    })
                    .collect();
                top.insert("imp".into(), Value::from(imps));
            }
            Value::Object(top)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn validation_never_panics_and_accepted_requests_keep_the_rules(v in request_like()) {
        match parse(&v) {
            Ok(r) => {
                let inventory = [r.site.is_some(), r.app.is_some(), r.dooh.is_some()];
                prop_assert!(inventory.iter().filter(|x| **x).count() <= 1);
                prop_assert!(r.tmax != Some(0));
                for imp in &r.imp {
                    if let Some(b) = &imp.banner {
                        prop_assert!(!b.format.is_empty() || (b.w.is_some() && b.h.is_some()));
                    }
                    prop_assert!(imp.video.as_ref().is_none_or(|v| !v.mimes.is_empty()));
                    prop_assert!(imp.audio.as_ref().is_none_or(|a| !a.mimes.is_empty()));
                    prop_assert!(imp.native.as_ref().is_none_or(|n| n.request.as_deref().is_some_and(|s| !s.is_empty())));
                }
                // What was accepted writes back and is accepted again.
                let again = parse(&serde_json::to_value(&r).unwrap()).unwrap();
                prop_assert_eq!(again, r);
            }
            Err(Error::OpenRtb { path, reason }) => {
                prop_assert!(!path.is_empty() && !reason.is_empty());
            }
            Err(other) => prop_assert!(false, "unexpected error kind {other:?}"),
        }
    }
}
