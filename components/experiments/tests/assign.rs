//! Assignment beyond GrowthBook's cases: the hot path allocates nothing,
//! traffic splits follow the weights, coverage never moves a user between
//! variations, TOML and JSON definitions agree, and bad definitions are
//! errors naming the field.

use cx_experiments::{Context, Experiment, Reason, RunOptions};
use serde_json::{json, Map, Value};

fn experiment(value: Value) -> Experiment {
    Experiment::from_value(&value).expect("valid experiment")
}

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("user-{i}")).collect()
}

#[test]
fn assignment_allocates_nothing() {
    let plain = experiment(json!({"key": "a", "variations": [0, 1, 2], "hashVersion": 2}));
    let spaced = experiment(
        json!({"key": "b", "variations": [0, 1], "namespace": ["ns", 0.2, 0.9], "coverage": 0.7}),
    );
    let filtered = experiment(json!({"key": "c", "variations": [0, 1],
        "filters": [{"seed": "s", "attribute": "anon", "ranges": [[0.0, 0.6]]}]}));
    let users = ids(2_000);
    let attrs: Vec<Map<String, Value>> = users
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let v = json!({"id": id, "anon": i as f64 * 1.5 + 0.25});
            v.as_object().expect("object").clone()
        })
        .collect();
    let options = RunOptions::default();
    let mut tally = [0usize; 4];
    let info = allocation_counter::measure(|| {
        for (id, a) in users.iter().zip(&attrs) {
            tally[plain.assign(id).variation_id] += 1;
            tally[3] += usize::from(spaced.assign(id).in_experiment);
            tally[3] += usize::from(filtered.assign_with(a, &options).in_experiment);
        }
    });
    assert_eq!(info.count_total, 0, "assignment allocated");
    assert!(
        tally[..3].iter().all(|&t| t > 500),
        "every variation served: {tally:?}"
    );
    assert!(
        tally[3] > 1_000,
        "namespaced and filtered users got in: {tally:?}"
    );
}

#[test]
fn the_counter_sees_an_allocation() {
    let info = allocation_counter::measure(|| {
        std::hint::black_box(vec![0u8; 16]);
    });
    assert!(info.count_total > 0);
}

#[test]
fn shares_follow_the_weights() {
    let e = experiment(
        json!({"key": "split", "variations": ["a", "b"], "weights": [0.1, 0.9], "hashVersion": 2}),
    );
    let users = ids(100_000);
    let b = users
        .iter()
        .filter(|id| e.assign(id).variation_id == 1)
        .count();
    // 90,000 expected; the binomial sd is ~95.
    assert!(
        (89_500..=90_500).contains(&b),
        "{b} of 100000 in the 0.9 arm"
    );
}

#[test]
fn lowering_coverage_never_moves_a_user_between_variations() {
    let full = experiment(json!({"key": "cov", "variations": [0, 1, 2]}));
    let part = experiment(json!({"key": "cov", "variations": [0, 1, 2], "coverage": 0.3}));
    let mut kept = 0;
    for id in ids(5_000) {
        let p = part.assign(&id);
        if p.in_experiment {
            kept += 1;
            assert_eq!(p.variation_id, full.assign(&id).variation_id, "{id}");
        } else {
            assert_eq!(p.reason, Reason::NotCovered);
        }
    }
    assert!(
        (1_300..=1_700).contains(&kept),
        "{kept} of 5000 at coverage 0.3"
    );
}

#[test]
fn toml_and_json_definitions_agree() {
    let toml_text = r#"
        key = "checkout"
        variations = [0, 1]
        weights = [0.3, 0.7]
        seed = "s1"
        hashVersion = 2
        namespace = ["pricing", 0.0, 0.8]
    "#;
    let from_toml: Value = toml::from_str(toml_text).expect("toml");
    let a = Experiment::from_value(&from_toml).expect("from toml");
    let b = experiment(
        json!({"key": "checkout", "variations": [0, 1], "weights": [0.3, 0.7],
        "seed": "s1", "hashVersion": 2, "namespace": ["pricing", 0.0, 0.8]}),
    );
    assert_eq!(a.ranges(), b.ranges());
    for id in ids(2_000) {
        assert_eq!(a.assign(&id), b.assign(&id), "{id}");
    }
}

#[test]
fn numbers_and_true_hash_as_javascript_writes_them() {
    let e = experiment(json!({"key": "n", "variations": [0, 1]}));
    for (attr, text) in [
        (json!(123), "123"),
        (json!(1.5), "1.5"),
        (json!(true), "true"),
    ] {
        let ctx = Context::from_value(&json!({"attributes": {"id": attr}})).unwrap();
        assert_eq!(ctx.assign(&e), e.assign(text), "{attr}");
    }
    for falsy in [
        json!(0),
        json!(false),
        json!(null),
        json!(""),
        json!({"a": 1}),
    ] {
        let ctx = Context::from_value(&json!({"attributes": {"id": falsy}})).unwrap();
        assert_eq!(ctx.assign(&e).reason, Reason::NoHashValue, "{falsy}");
    }
}

#[test]
fn context_switches_and_status_apply_in_growthbooks_order() {
    let e = experiment(json!({"key": "k", "variations": ["a", "b", "c"]}));
    let run = |ctx: Value| Context::from_value(&ctx).unwrap().assign(&e);
    let forced = run(json!({"attributes": {"id": "1"}, "forcedVariations": {"k": 2}}));
    assert_eq!(
        (forced.variation_id, forced.in_experiment, forced.hash_used),
        (2, true, false)
    );
    // A forced index out of range is variation 0, not in the experiment.
    let bad = run(json!({"attributes": {"id": "1"}, "forcedVariations": {"k": 7}}));
    assert_eq!((bad.variation_id, bad.in_experiment), (0, false));
    assert_eq!(
        run(json!({"attributes": {"id": "1"}, "qaMode": true})).reason,
        Reason::QaMode
    );
    assert_eq!(
        run(json!({"attributes": {"id": "1"}, "enabled": false})).reason,
        Reason::Disabled
    );
    let stopped = experiment(json!({"key": "k", "variations": [0, 1], "status": "stopped"}));
    assert_eq!(stopped.assign("1").reason, Reason::Stopped);
    let draft = experiment(json!({"key": "k", "variations": [0, 1], "status": "draft"}));
    assert_eq!(draft.assign("1").reason, Reason::Inactive);
    let v3 = experiment(json!({"key": "k", "variations": [0, 1], "hashVersion": 3}));
    assert_eq!(v3.assign("1").reason, Reason::UnknownHashVersion);
}

#[test]
fn a_filter_on_another_attribute_needs_assign_with() {
    let e = experiment(json!({"key": "f", "variations": [0, 1],
        "filters": [{"seed": "s", "attribute": "anonId", "ranges": [[0.0, 1.0]]}]}));
    assert_eq!(e.assign("1").reason, Reason::FilteredOut);
    let pairs: [(&str, &str); 2] = [("id", "1"), ("anonId", "x")];
    assert!(
        e.assign_with(&pairs[..], &RunOptions::default())
            .in_experiment
    );
}

#[test]
fn the_result_carries_growthbooks_fields() {
    let e = experiment(
        json!({"key": "r", "variations": ["x", "y"], "hashAttribute": "user.id",
        "meta": [{"key": "control", "name": "Control"}, {"key": "treat", "name": "Treatment"}]}),
    );
    let ctx = Context::from_value(&json!({"attributes": {"user": {"id": "42"}}})).unwrap();
    let result = ctx.run(&e);
    let a = e.assign("42");
    assert!(a.in_experiment);
    assert_eq!(result["variationId"], json!(a.variation_id));
    assert_eq!(result["bucket"], json!(a.bucket.unwrap()));
    assert_eq!(result["hashAttribute"], json!("user.id"));
    assert_eq!(result["hashValue"], json!("42"));
    assert_eq!(result["key"], json!(["control", "treat"][a.variation_id]));
    assert_eq!(
        result["name"],
        json!(["Control", "Treatment"][a.variation_id])
    );
    let out = Context::from_value(&json!({"attributes": {}}))
        .unwrap()
        .run(&e);
    assert_eq!(out["hashValue"], json!(""));
    assert!(out.get("bucket").is_none(), "{out}");
}

#[test]
fn bad_definitions_are_errors_naming_the_field() {
    let cases = [
        (json!([1, 2]), "experiment: expected an object"),
        (json!({"variations": [0, 1]}), "key: is required"),
        (json!({"key": "k"}), "variations: is required"),
        (
            json!({"key": "k", "variations": []}),
            "variations: needs at least one",
        ),
        (
            json!({"key": "k", "variations": [0, 1], "weights": [0.5, "x"]}),
            "weights[1]: expected a number",
        ),
        (
            json!({"key": "k", "variations": [0, 1], "coverage": "all"}),
            "coverage: expected a number",
        ),
        (
            json!({"key": "k", "variations": [0, 1], "namespace": ["ns", 0]}),
            "namespace: expected [id, start, end]",
        ),
        (
            json!({"key": "k", "variations": [0, 1], "ranges": [[0, 0.5], [0.5]]}),
            "ranges[1]: expected a [start, end]",
        ),
        (
            json!({"key": "k", "variations": [0, 1], "filters": [{"ranges": [[0, 1]]}]}),
            "filters[0].seed: is required",
        ),
        (
            json!({"key": "k", "variations": [0, 1], "filters": [{"seed": "s", "ranges": [[0, "x"]]}]}),
            "filters[0].ranges[0]",
        ),
        (
            json!({"key": "k", "variations": [0, 1], "force": 0.5}),
            "force: expected a variation index",
        ),
        (
            json!({"key": "k", "variations": [0, 1], "active": "yes"}),
            "active: expected true or false",
        ),
        (
            json!({"key": "k", "variations": [0, 1], "meta": [{"key": 3}]}),
            "meta[0].key: expected a string",
        ),
        (
            json!({"key": "k", "variations": [0, 1], "hashVersion": "2"}),
            "hashVersion: expected a number",
        ),
        (
            json!({"key": "k", "variations": [0, 1], "condition": {"country": "US"}}),
            "condition: targeting is not supported",
        ),
        (
            json!({"key": "k", "variations": [0, 1], "groups": ["beta"]}),
            "groups: targeting is not supported",
        ),
    ];
    for (value, want) in cases {
        let err = Experiment::from_value(&value)
            .expect_err(&value.to_string())
            .to_string();
        assert!(err.starts_with(want), "{value}: {err}");
    }
    let empty = json!({"key": "k", "variations": [0, 1], "condition": {}, "parentConditions": []});
    assert!(
        Experiment::from_value(&empty).is_ok(),
        "empty targeting passes everybody"
    );
    let err = Experiment::from_json("{\"key\": ").unwrap_err();
    assert!(
        err.to_string().contains("experiment is not valid JSON"),
        "{err}"
    );
    let err = Context::from_value(&json!({"attributes": [1]})).unwrap_err();
    assert_eq!(err.to_string(), "attributes: expected an object");
    let err = Context::from_value(&json!({"forcedVariations": {"k": "a"}})).unwrap_err();
    assert!(err.to_string().starts_with("forcedVariations.k:"), "{err}");
}
