//! Strict OpenRTB 2.6 validation in `parse_request`: every rule refuses a
//! request that breaks it, with the exact path of the field at fault, and
//! accepts its nearest valid neighbour; what the specification leaves to
//! the bidder stays accepted; and no JSON built from the request's own field
//! names makes validation panic (`fuzz`). Rules on impressions are in `imp`,
//! rules on the request's own fields in `request`. (The shared corpus, spec
//! examples and prebid-server requests, is checked in `tests/openrtb.rs`.)

use cx_wire::openrtb::{parse_request, BidRequest};
use cx_wire::Error;
use serde_json::{json, Value};

mod fuzz;
mod imp;
mod request;

/// A valid request: one 300x250 banner on a site. `imp` fields are merged
/// into the impression and `top` fields into the request; a `null` in
/// either removes the field.
fn request(imp: Value, top: Value) -> Value {
    let mut one = json!({"id": "1", "banner": {"w": 300, "h": 250}});
    merge(&mut one, imp);
    let mut req = json!({"id": "r", "imp": [one], "site": {"id": "s1"}});
    merge(&mut req, top);
    req
}

fn merge(into: &mut Value, from: Value) {
    let (Value::Object(into), Value::Object(from)) = (into, from) else {
        panic!("merge objects only");
    };
    for (key, value) in from {
        if value.is_null() {
            into.remove(&key);
        } else {
            into.insert(key, value);
        }
    }
}

fn parse(v: &Value) -> Result<BidRequest, Error> {
    parse_request(&serde_json::to_vec(v).unwrap())
}

#[track_caller]
fn assert_accepted(v: &Value) {
    if let Err(e) = parse(v) {
        panic!("expected {v} to be accepted, got {e}");
    }
}

#[track_caller]
fn assert_refused(v: &Value, path: &str, reason: &str) {
    match parse(v) {
        Err(Error::OpenRtb {
            path: got,
            reason: why,
        }) => {
            assert_eq!(got, path, "path for {v} (reason: {why})");
            assert!(
                why.contains(reason),
                "reason for {v} is {why:?}, expected it to contain {reason:?}"
            );
        }
        other => panic!("expected {v} to be refused at {path}, got {other:?}"),
    }
}

/// One rule: a request that breaks it (refused at `path`, the reason
/// containing `reason`) and its neighbour that keeps it (accepted).
struct Case {
    refused: Value,
    path: String,
    reason: &'static str,
    accepted: Value,
}

/// A [`Case`] whose two requests differ in the impression's fields.
fn imp_case(
    refused: Value,
    path: impl Into<String>,
    reason: &'static str,
    accepted: Value,
) -> Case {
    Case {
        refused: request(refused, json!({})),
        path: path.into(),
        reason,
        accepted: request(accepted, json!({})),
    }
}

/// A [`Case`] whose two requests differ in the request's own fields.
fn top_case(
    refused: Value,
    path: impl Into<String>,
    reason: &'static str,
    accepted: Value,
) -> Case {
    Case {
        refused: request(json!({}), refused),
        path: path.into(),
        reason,
        accepted: request(json!({}), accepted),
    }
}

fn check(cases: Vec<Case>) {
    for case in cases {
        assert_refused(&case.refused, &case.path, case.reason);
        assert_accepted(&case.accepted);
    }
}

const POSITIVE: &str = "must be > 0, got 0";
const NEGATIVE: &str = "invalid value: integer `-1`, expected u32";
const MISSING: &str = "missing required field";

#[test]
fn the_base_request_is_valid() {
    assert_accepted(&request(json!({}), json!({})));
}
