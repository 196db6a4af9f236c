//! Label leakage and train/serve skew, end to end: `cx train` refuses a
//! spec that leaks the label; a model trained on hashed and numeric columns
//! (which no OpenRTB request fills) records them in `cx.training_inputs`,
//! loads with the columns flagged (engine, server, `cx serve` start line),
//! and is refused in strict mode (`train_serve_skew = "refuse"`,
//! `--strict-skew`); a model trained on the synthetic spec, and the bundled
//! default, load clean.

mod common;

use cx_datasets::inputs::{ContextField, TrainingInputs};
use cx_engine::{
    Engine, EngineConfig, Error as EngineError, FallbackSource, ModelSource, SkewPolicy,
};
use std::path::{Path, PathBuf};
use std::process::Output;

/// The dataset columns no OpenRTB request fills, in spec order.
const SKEWED: [&str; 3] = ["C1", "C14", "C20"];

fn cx(args: &[&str]) -> Output {
    common::cx().args(args).output().expect("runs cx")
}

fn succeeds(args: &[&str]) -> Output {
    let out = cx(args);
    assert!(
        out.status.success(),
        "cx {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn fails(args: &[&str]) -> String {
    let out = cx(args);
    assert!(!out.status.success(), "cx {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A small click log in the Avazu style: offers of the bundled catalog,
/// two hashed columns and a numeric one besides ordinary context fields.
fn click_log(dir: &Path) -> PathBuf {
    let offers = cx_engine::default_model()
        .expect("the bundled model")
        .meta()
        .offer_ids
        .clone();
    let mut csv = String::from("click,ad,hour,C1,C14,C20,device_type,site_id\n");
    for i in 0..400u64 {
        let click = u8::from((i * 7919) % 10 < 3);
        let offer = offers[(i % 3) as usize];
        csv.push_str(&format!(
            "{click},{offer},141021{:02},{},{},{},1,s{}\n",
            i % 24,
            1005 + i % 2,
            15000 + i % 7,
            i % 5,
            i % 4
        ));
    }
    let path = dir.join("log.csv");
    std::fs::write(&path, csv).expect("writes the log");
    path
}

fn spec(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("writes the spec");
    path
}

const SKEWED_SPEC: &str = "name = \"skewed\"\nlabel = \"click\"\n\
offer = { column = \"ad\", top = 3 }\n\
time = { column = \"hour\", format = \"yymmddhh\" }\n\
hashed = [\"C1\", \"C14\"]\nnumeric = [\"C20\"]\n\
[fields]\ndevice_type = \"device_type\"\nsite_id = \"site_id\"\n";

/// `cx train`, tiny: one epoch of a small network.
fn train(data: &Path, spec: &Path, out: &Path) {
    let arg = |p: &Path| p.display().to_string();
    let (data, spec, out) = (arg(data), arg(spec), arg(out));
    succeeds(&[
        "train", "--data", &data, "--spec", &spec, "--out", &out, "--epochs", "1", "--hidden", "8",
        "--steps", "4", "--quiet",
    ]);
}

fn skewed_model(dir: &Path) -> PathBuf {
    let model = dir.join("skewed.safetensors");
    train(
        &click_log(dir),
        &spec(dir, "skewed.toml", SKEWED_SPEC),
        &model,
    );
    model
}

fn strict() -> EngineConfig {
    EngineConfig {
        train_serve_skew: SkewPolicy::Refuse,
        ..EngineConfig::default()
    }
}

#[test]
fn a_spec_that_leaks_the_label_or_the_oracle_is_refused_by_cx_train() {
    let dir = common::temp_dir("skew-leak");
    let data = click_log(&dir).display().to_string();
    let out = dir.join("never.safetensors").display().to_string();
    for (name, text, column, role) in [
        (
            "offer.toml",
            "label = \"click\"\noffer = { column = \"click\" }\n",
            "click",
            "offer.column",
        ),
        (
            "hashed.toml",
            "label = \"click\"\nhashed = [\"C1\", \"click\"]\n",
            "click",
            "hashed[1]",
        ),
        (
            "oracle.toml",
            "label = \"click\"\noracle = \"C20\"\nnumeric = [\"C20\"]\n",
            "C20",
            "numeric[0]",
        ),
    ] {
        let spec = spec(&dir, name, text).display().to_string();
        let stderr = fails(&[
            "train", "--data", &data, "--spec", &spec, "--out", &out, "--quiet",
        ]);
        assert!(
            stderr.contains(&format!("`{column}`")) && stderr.contains(role),
            "{name}: {stderr}"
        );
        assert!(!Path::new(&out).exists(), "{name}: no model written");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_model_on_hashed_columns_is_flagged_at_load_and_refused_in_strict_mode() {
    let dir = common::temp_dir("skew-flagged");
    let model = skewed_model(&dir);

    // The record names the fields the rows filled and the columns behind them.
    let snn = cx_model::SnnModel::load(&model).expect("the model loads");
    let inputs = TrainingInputs::from_meta(&snn.meta().extra)
        .expect("the record parses")
        .expect("cx train writes the record");
    let columns = |field| {
        inputs
            .fields
            .iter()
            .find(|f| f.field == field)
            .map(|f| f.columns.clone())
    };
    assert_eq!(
        columns(ContextField::Extra),
        Some(vec!["C1".into(), "C14".into()])
    );
    assert_eq!(
        columns(ContextField::ExtraNumeric),
        Some(vec!["C20".into()])
    );
    assert_eq!(columns(ContextField::SiteId), Some(vec!["site_id".into()]));
    assert_eq!(inputs.rows, 400);

    // The engine serves it, flagged, and refuses it in strict mode.
    let engine = Engine::builder()
        .model_path(&model)
        .build()
        .expect("warn is the default");
    let skew = engine.train_serve_skew();
    assert_eq!(skew.columns(), SKEWED);
    let fields: Vec<&str> = skew.fields.iter().map(|f| f.field).collect();
    assert_eq!(fields, ["extra", "extra_numeric"]);
    assert!(skew
        .fields
        .iter()
        .all(|f| f.paths.len() == 1 && f.paths[0].starts_with("openrtb")));
    let refused = Engine::builder()
        .model_path(&model)
        .config(strict())
        .build()
        .err()
        .expect("strict mode refuses it");
    match &refused {
        EngineError::TrainServeSkew(refusal) => assert_eq!(refusal.columns, SKEWED),
        other => panic!("not a skew refusal: {other}"),
    }
    // A swap in strict mode refuses it too, and keeps serving the old model.
    // A clean engine on a model of the same feature schema (v1) as the
    // skewed one: a swap keeps the schema.
    let v1 = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../engine/tests/fixtures/v1_default.safetensors");
    let mut clean = Engine::builder()
        .config(strict())
        .model(ModelSource::Path(v1))
        .fallback(FallbackSource::None)
        .build()
        .expect("the v1 model");
    let before = clean.model().id.clone();
    let err = clean
        .swap_model(ModelSource::Path(model.clone()), Default::default())
        .expect_err("refused at a swap");
    assert!(err.to_string().contains("C14"), "{err}");
    clean.tick(1);
    assert_eq!(clean.model().id, before);
    assert!(clean.train_serve_skew().is_clean());

    // The server flags it on start; strict, it does not start.
    let mut config = common::config(cx_server::config::IoMode::Epoll);
    config.model = Some(model.clone());
    let server = common::start(config.clone());
    assert_eq!(server.train_serve_skew(), SKEWED);
    common::stop(server);
    config.engine.train_serve_skew = SkewPolicy::Refuse;
    let err = match cx_server::serve::Server::start(config) {
        Ok(_) => panic!("strict mode starts no server"),
        Err(e) => cx_server::error::render_chain(&e),
    };
    assert!(err.contains("C1") && err.contains("C20"), "{err}");

    // `cx serve` lists the columns in its start line and warns in its log.
    let path = model.display().to_string();
    let log = dir.join("serve.log");
    let mut serving = common::ServeProcess::spawn(&["--model", &path], &log);
    assert_eq!(
        serving.started["train_serve_skew"],
        serde_json::json!(SKEWED),
        "{}",
        serving.started
    );
    serving.child.kill().expect("stops cx serve");
    serving.child.wait().expect("cx serve exits");
    let text = std::fs::read_to_string(&log).expect("the log");
    assert!(
        text.contains("train/serve skew") && text.contains("C14"),
        "{text}"
    );

    // `cx serve --strict-skew` refuses it, naming the columns.
    let stderr = fails(&[
        "serve",
        "--model",
        &path,
        "--strict-skew",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "",
        "--http-listen",
        "",
    ]);
    assert!(
        SKEWED.iter().all(|c| stderr.contains(c)) && stderr.contains("train_serve_skew"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn models_on_the_synthetic_spec_and_the_bundled_one_load_clean() {
    let dir = common::temp_dir("skew-clean");
    let data = dir.join("synth.csv");
    succeeds(&[
        "synth",
        "--rows",
        "600",
        "--out",
        &data.display().to_string(),
    ]);
    let synthetic = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/specs/synthetic.toml");
    let model = dir.join("synthetic.safetensors");
    train(&data, &synthetic, &model);
    let engine = Engine::builder()
        .model_path(&model)
        .config(strict())
        .build()
        .expect("nothing skewed: strict mode serves it");
    let skew = engine.train_serve_skew();
    assert!(skew.recorded && skew.is_clean(), "{skew:?}");

    let bundled = Engine::builder()
        .config(strict())
        .build()
        .expect("the bundled model");
    let skew = bundled.train_serve_skew();
    // The bundled model was trained with the record, on the synthetic
    // spec's fields, all of which OpenRTB fills.
    assert!(skew.recorded && skew.is_clean(), "{skew:?}");
    std::fs::remove_dir_all(&dir).ok();
}
