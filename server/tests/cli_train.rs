//! `cx synth`, `cx train` and `cx eval` end to end, on synthetic click logs
//! written into a temporary directory: determinism, the metadata a trained
//! model carries, evaluation through the serving path, the bundled default
//! model, and bad input.

use cx_features::FeatureSchema;
use cx_model::{Calibration, SnnModel};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn cx(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cx"))
        .args(args)
        .output()
        .expect("run cx")
}

fn ok_json(args: &[&str]) -> serde_json::Value {
    let out = cx(args);
    assert!(
        out.status.success(),
        "cx {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

fn fails(args: &[&str]) -> String {
    let out = cx(args);
    assert!(!out.status.success(), "cx {args:?} should fail");
    assert!(out.stdout.is_empty(), "nothing on stdout when failing");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

struct Tmp(PathBuf);

impl Tmp {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("cx-cli-train-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn path(&self, file: &str) -> String {
        self.0.join(file).display().to_string()
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

fn spec() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../models/specs/synthetic.toml")
        .display()
        .to_string()
}

fn synth(tmp: &Tmp, file: &str, rows: &str, first_row: &str) -> String {
    let path = tmp.path(file);
    let out = cx(&[
        "synth",
        "--rows",
        rows,
        "--first-row",
        first_row,
        "--out",
        &path,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

const SMALL: [&str; 6] = ["--epochs", "2", "--hidden", "16", "--quiet", "--steps"];

fn train(data: &str, out: &str) -> serde_json::Value {
    let spec = spec_path();
    let mut args = vec!["train", "--data", data, "--spec", &spec, "--out", out];
    args.extend(SMALL);
    args.push("6");
    ok_json(&args)
}

fn spec_path() -> String {
    spec()
}

#[test]
fn synth_and_train_are_deterministic_and_the_model_carries_its_metadata() {
    let tmp = Tmp::new("determinism");
    let data = synth(&tmp, "a.csv", "4000", "0");
    let again = synth(&tmp, "b.csv", "4000", "0");
    assert_eq!(
        std::fs::read(&data).unwrap(),
        std::fs::read(&again).unwrap(),
        "same seed, same rows"
    );
    let header = std::fs::read_to_string(&data)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    assert!(
        header.starts_with("user_id,segments,device_type"),
        "{header}"
    );

    let (m1, m2) = (tmp.path("m1.safetensors"), tmp.path("m2.safetensors"));
    let summary = train(&data, &m1);
    train(&data, &m2);
    assert_eq!(
        std::fs::read(&m1).unwrap(),
        std::fs::read(&m2).unwrap(),
        "same data and flags, same bytes"
    );

    let model = SnnModel::load(&m1).unwrap();
    assert_eq!(
        summary["model_id"].as_str().unwrap(),
        model.id().to_string()
    );
    let schema = FeatureSchema::v1();
    assert_eq!(model.meta().feature_schema_id.as_deref(), Some(schema.id()));
    assert_eq!((model.inputs(), model.steps()), (schema.width(), 6));
    assert_eq!(model.layers()[0].outputs, 16);
    let offers: Vec<u64> = serde_json::from_value(summary["offer_ids"].clone()).unwrap();
    assert_eq!(model.meta().offer_ids, offers);
    assert!(!offers.is_empty() && offers.len() <= 16);
    assert!(
        matches!(model.meta().calibration, Calibration::Platt { .. }),
        "calibrated on held-out rows"
    );
    assert!(model.meta().extra.contains_key("cx.feature_norm"));
    let training: serde_json::Value =
        serde_json::from_str(&model.meta().extra["cx.training"]).unwrap();
    assert_eq!(
        training["rows_train"].as_u64().unwrap() + training["rows_holdout"].as_u64().unwrap(),
        4000
    );
    assert!(summary["holdout"]["auc"].as_f64().unwrap() > 0.5);
}

#[test]
fn eval_scores_a_fresh_sample_through_the_serving_path_with_the_oracle_beside() {
    let tmp = Tmp::new("eval");
    let data = synth(&tmp, "train.csv", "30000", "0");
    let fresh = synth(&tmp, "fresh.csv", "10000", "500000");
    let (model, baseline) = (tmp.path("m.safetensors"), tmp.path("lr.safetensors"));
    let spec = spec_path();
    let mut args = vec![
        "train",
        "--data",
        &data,
        "--spec",
        &spec,
        "--out",
        &model,
        "--baseline",
        &baseline,
    ];
    args.extend(SMALL);
    args.push("6");
    ok_json(&args);
    let plots = tmp.path("plots");
    let eval = ok_json(&[
        "eval",
        "--model",
        &model,
        "--baseline",
        &baseline,
        "--data",
        &fresh,
        "--spec",
        &spec_path(),
        "--plot",
        &plots,
    ]);
    let rows = eval["rows"].as_u64().unwrap();
    assert!(rows > 8000, "most fresh rows show a kept offer: {rows}");
    let binned: u64 = eval["model"]["calibration"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["rows"].as_u64().unwrap())
        .sum();
    assert_eq!(binned, rows, "every row lands in one calibration bin");
    let (model_auc, oracle_auc) = (
        eval["model"]["auc"].as_f64().unwrap(),
        eval["oracle"]["auc"].as_f64().unwrap(),
    );
    assert!(
        model_auc > 0.6 && model_auc < oracle_auc,
        "model {model_auc}, oracle {oracle_auc}"
    );
    assert!(eval["baseline"]["auc"].as_f64().unwrap() > 0.5);
    for svg in ["roc.svg", "reliability.svg"] {
        let text = std::fs::read_to_string(Path::new(&plots).join(svg)).unwrap();
        assert!(
            text.starts_with("<svg") && text.contains("spiking model"),
            "{svg} is a plot with a legend"
        );
    }
}

#[test]
fn the_bundled_default_model_is_used_when_none_is_named() {
    let tmp = Tmp::new("default");
    let fresh = synth(&tmp, "fresh.csv", "3000", "2000000");
    let eval = ok_json(&["eval", "--data", &fresh, "--spec", &spec_path()]);
    assert_eq!(
        eval["model_id"].as_str().unwrap(),
        cx_engine::default_model().unwrap().id().to_string()
    );
    assert!(
        eval["model"]["auc"].as_f64().unwrap() > 0.6,
        "the default model was really trained: {eval}"
    );
    let inspect = ok_json(&["model", "inspect", "--json"]);
    assert_eq!(inspect["path"], cx_engine::DEFAULT_MODEL_NAME);
}

#[test]
fn bad_specs_data_and_models_get_clear_errors() {
    let tmp = Tmp::new("bad");
    let data = synth(&tmp, "a.csv", "500", "0");
    let bad_spec = tmp.path("bad.toml");
    std::fs::write(
        &bad_spec,
        "label = \"click\"\n[fields]\ndomain = \"site_domain\"\n",
    )
    .unwrap();
    let err = fails(&[
        "train",
        "--data",
        &data,
        "--spec",
        &bad_spec,
        "--out",
        &tmp.path("m.safetensors"),
    ]);
    assert!(
        err.contains("fields.domain names column `site_domain`"),
        "{err}"
    );
    let err = fails(&[
        "train",
        "--data",
        &tmp.path("missing.csv"),
        "--spec",
        &spec_path(),
        "--out",
        &tmp.path("m.safetensors"),
    ]);
    assert!(err.contains("missing.csv"), "{err}");

    // Malformed rows are counted and reported; the good ones still train.
    let mut text = std::fs::read_to_string(&data).unwrap();
    text.push_str(
        "1,,2,windows,2,USA,CA,site-1,0,a.com,,300,250,1,0.5,1735933729,1000,maybe,0.1\n",
    );
    let mixed = tmp.path("mixed.csv");
    std::fs::write(&mixed, text).unwrap();
    let out = cx(&[
        "train",
        "--data",
        &mixed,
        "--spec",
        &spec_path(),
        "--out",
        &tmp.path("m.safetensors"),
        "--epochs",
        "1",
        "--hidden",
        "8",
        "--quiet",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("501 rows read, 500 kept, 1 rejected"),
        "{stderr}"
    );
    assert!(stderr.contains("label `maybe` is not 0 or 1"), "{stderr}");

    // A model without a feature schema cannot be evaluated on click logs.
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../backends/tests/fixtures/snntorch_net_small.safetensors");
    let err = fails(&[
        "eval",
        "--model",
        &fixture.display().to_string(),
        "--data",
        &data,
        "--spec",
        &spec_path(),
    ]);
    assert!(err.contains("feature schema"), "{err}");
}
