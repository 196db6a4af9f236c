//! Quality check on real data (not a timed test): train on
//! `shared/data/ctr/avazu_train.csv`, evaluate on `avazu_dev.csv`, and
//! require the spiking model's AUC to be at least the logistic baseline's
//! minus 0.01. Skips, saying so, when `../shared` is absent.
//!
//! Avazu rows carry a non-commercial licence: everything this test writes
//! goes to a temporary directory, never into the project.

use std::path::{Path, PathBuf};
use std::process::Command;

fn shared_ctr() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/ctr");
    if dir.join("avazu_train.csv").exists() && dir.join("avazu_dev.csv").exists() {
        Some(dir)
    } else {
        eprintln!(
            "skipping: {} is absent (../shared not laid out here)",
            dir.display()
        );
        None
    }
}

fn cx(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_cx"))
        .args(args)
        .output()
        .expect("run cx");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "cx {args:?} failed: {stderr}");
    eprintln!("{stderr}");
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

#[test]
fn spiking_model_matches_the_logistic_baseline_on_avazu() {
    let Some(ctr) = shared_ctr() else { return };
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/specs/avazu.toml");
    let tmp = std::env::temp_dir().join(format!("cx-avazu-quality-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let (model, baseline) = (
        tmp.join("avazu.safetensors"),
        tmp.join("avazu_lr.safetensors"),
    );
    let s = |p: &Path| p.display().to_string();
    let train = cx(&[
        "train",
        "--data",
        &s(&ctr.join("avazu_train.csv")),
        "--spec",
        &s(&spec),
        "--out",
        &s(&model),
        "--baseline",
        &s(&baseline),
        "--quiet",
    ]);
    assert_eq!(
        train["offer_ids"].as_array().unwrap().len(),
        16,
        "the top 16 C17 values"
    );
    let eval = cx(&[
        "eval",
        "--model",
        &s(&model),
        "--baseline",
        &s(&baseline),
        "--data",
        &s(&ctr.join("avazu_dev.csv")),
        "--spec",
        &s(&spec),
    ]);
    std::fs::remove_dir_all(&tmp).ok();
    let model_auc = eval["model"]["auc"].as_f64().unwrap();
    let baseline_auc = eval["baseline"]["auc"].as_f64().unwrap();
    let (model_loss, baseline_loss) = (
        eval["model"]["log_loss"].as_f64().unwrap(),
        eval["baseline"]["log_loss"].as_f64().unwrap(),
    );
    eprintln!(
        "avazu_dev ({} rows): spiking AUC {model_auc:.4} log loss {model_loss:.4}; logistic AUC {baseline_auc:.4} log loss {baseline_loss:.4}",
        eval["rows"]
    );
    assert!(
        model_auc > 0.6,
        "the model learned something: AUC {model_auc}"
    );
    assert!(
        model_auc >= baseline_auc - 0.01,
        "spiking AUC {model_auc} vs logistic {baseline_auc}"
    );
}
