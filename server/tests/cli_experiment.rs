//! End-to-end tests of `cx experiment assign`: GrowthBook's `run` cases
//! (cases.json, MIT) through the binary, and its errors.
//!
//! The cases come from the subset committed with cx-experiments and, when
//! present, the full `../shared/reference/growthbook/cases.json` (or
//! `$CX_GROWTHBOOK_CASES`). Each case's printed `value`, `inExperiment` and
//! `hashUsed` must equal GrowthBook's expectation, and the whole printed
//! object must equal the library's result for the same inputs.

use cx_experiments::{Context, Experiment};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn cx(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cx"))
        .args(args)
        .output()
        .expect("run cx")
}

fn assign(context: &Value, experiment: &Value) -> Output {
    let (c, e) = (context.to_string(), experiment.to_string());
    cx(&["experiment", "assign", "--context", &c, "--experiment", &e])
}

fn read_cases(path: &Path) -> Option<Value> {
    let bytes = std::fs::read(path).ok()?;
    Some(serde_json::from_slice(&bytes).expect("parse cases"))
}

/// The committed subset, and the full file when present.
fn case_files() -> Vec<(String, Value)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let subset = root.join("../components/experiments/tests/fixtures/growthbook/cases_subset.json");
    let mut files = vec![(
        "subset".to_string(),
        read_cases(&subset).expect("read the subset"),
    )];
    let full = std::env::var_os("CX_GROWTHBOOK_CASES")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../../shared/reference/growthbook/cases.json"));
    match read_cases(&full) {
        Some(cases) => files.push(("cases.json".to_string(), cases)),
        None => println!("SKIPPED the full cases.json: {} is absent", full.display()),
    }
    files
}

/// Context fields the command evaluates; other cases are skipped.
const CONTEXT_FIELDS: [&str; 4] = ["attributes", "enabled", "qaMode", "forcedVariations"];

/// Why a case is skipped, if it is.
fn skip_reason(context: &Value, experiment: &Value) -> Option<String> {
    let extra: Vec<&String> = context
        .as_object()?
        .keys()
        .filter(|k| !CONTEXT_FIELDS.contains(&k.as_str()))
        .collect();
    if !extra.is_empty() {
        return Some(format!("context fields not evaluated: {extra:?}"));
    }
    match Experiment::from_value(experiment) {
        Err(e @ cx_experiments::Error::Unsupported { .. }) => Some(e.to_string()),
        _ => None,
    }
}

#[test]
fn growthbook_run_cases_through_the_binary() {
    let mut failures = Vec::new();
    for (source, cases) in case_files() {
        let list = cases["run"].as_array().expect("run section");
        let (mut pass, mut skip) = (0, 0);
        for case in list {
            let (name, context, experiment) = (&case[0], &case[1], &case[2]);
            if let Some(why) = skip_reason(context, experiment) {
                println!("{source} run: SKIPPED {name}: {why}");
                skip += 1;
                continue;
            }
            let out = assign(context, experiment);
            let stderr = String::from_utf8_lossy(&out.stderr);
            if !out.status.success() {
                failures.push(format!("{source} {name}: exit {}: {stderr}", out.status));
                continue;
            }
            let printed: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
            let got = (
                &printed["value"],
                &printed["inExperiment"],
                &printed["hashUsed"],
            );
            let want = (&case[3], &case[4], &case[5]);
            let library = Context::from_value(context)
                .expect("context")
                .run(&Experiment::from_value(experiment).expect("experiment"));
            if got != want {
                failures.push(format!("{source} {name}: printed {printed}, want {want:?}"));
            } else if printed != library {
                failures.push(format!(
                    "{source} {name}: printed {printed}, library {library}"
                ));
            } else {
                pass += 1;
            }
        }
        println!(
            "{source} run through cx: {pass} passed, {} failed, {skip} skipped of {}",
            list.len() - pass - skip,
            list.len()
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn prints_growthbooks_result_fields() {
    let out = assign(
        &json!({"attributes": {"id": "1"}}),
        &json!({"key": "my-test", "variations": ["a", "b"], "hashVersion": 2}),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    for field in [
        "key",
        "value",
        "variationId",
        "inExperiment",
        "hashUsed",
        "hashAttribute",
        "hashValue",
        "bucket",
    ] {
        assert!(
            printed.get(field).is_some(),
            "{field} missing from {printed}"
        );
    }
    assert_eq!(printed["hashAttribute"], json!("id"));
    assert_eq!(printed["hashValue"], json!("1"));
    let bucket = printed["bucket"].as_f64().expect("bucket");
    let id = printed["variationId"].as_u64().expect("variationId");
    assert_eq!(
        id,
        u64::from(bucket >= 0.5),
        "bucket {bucket} picks the variation"
    );
    assert_eq!(printed["value"], json!(["a", "b"][id as usize]));
}

#[test]
fn reads_objects_from_files() {
    let dir = std::env::temp_dir();
    let path = dir.join(format!("cx-experiment-test-{}.json", std::process::id()));
    std::fs::write(&path, r#"{"key": "my-test", "variations": [0, 1]}"#).expect("write");
    let arg = format!("@{}", path.display());
    let out = cx(&[
        "experiment",
        "assign",
        "--context",
        r#"{"attributes": {"id": "1"}}"#,
        "--experiment",
        &arg,
    ]);
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    // GrowthBook's case "default weights - 1".
    assert_eq!(printed["value"], json!(1));
}

/// Runs `cx experiment assign` expecting failure; returns stderr.
fn fails(context: &str, experiment: &str) -> String {
    let out = cx(&[
        "experiment",
        "assign",
        "--context",
        context,
        "--experiment",
        experiment,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        out.status.code(),
        Some(1),
        "exit status for {experiment}: {stderr}"
    );
    assert!(out.stdout.is_empty(), "printed on failure");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn bad_input_is_an_error_naming_the_option_and_field() {
    let ok_ctx = r#"{"attributes": {"id": "1"}}"#;
    let ok_exp = r#"{"key": "k", "variations": [0, 1]}"#;
    let cases = [
        (r#"{"attributes": "#, ok_exp, "--context is not valid JSON"),
        (ok_ctx, "not json", "--experiment is not valid JSON"),
        (
            r#"{"attributes": [1]}"#,
            ok_exp,
            "--context: attributes: expected an object",
        ),
        (
            ok_ctx,
            r#"{"variations": [0, 1]}"#,
            "--experiment: key: is required",
        ),
        (
            ok_ctx,
            r#"{"key": "k", "variations": [0, 1], "weights": [0.5, "x"]}"#,
            "--experiment: weights[1]: expected a number",
        ),
        (
            ok_ctx,
            r#"{"key": "k", "variations": [0, 1], "filters": [{"seed": "s"}]}"#,
            "--experiment: filters[0].ranges: is required",
        ),
        (
            ok_ctx,
            r#"{"key": "k", "variations": [0, 1], "condition": {"country": "US"}}"#,
            "--experiment: condition: targeting is not supported",
        ),
        (
            ok_ctx,
            "@/nonexistent/experiment.json",
            "cannot access /nonexistent/experiment.json",
        ),
    ];
    for (context, experiment, want) in cases {
        let stderr = fails(context, experiment);
        assert!(stderr.contains(want), "want {want:?} in {stderr}");
    }
}
