//! `cx serve --repository DIR --experiments FILE`: two versions of a
//! bundle serve at once, each request in the arm GrowthBook's hashing puts
//! its user in; `/admin/experiments`, the `cx_experiment_*` metrics and
//! `cx experiment report` (live, and from the decision journal) count each
//! arm's requests and outcomes; a reload changes the experiments live, and
//! a bad definition is refused while the running ones keep serving.

mod common;

use common::{connect, context, scrape, start, stop};
use cx_engine::model::SnnModel;
use cx_experiments::Experiment;
use cx_server::serve::Server;
use cx_wire::client::ResponseBody;
use cx_wire::protocol::{ContextFlags, FeedbackEvent, FeedbackKind};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

const EXPERIMENTS: &str = r#"
[[experiment]]
key = "ranker"
variations = ["1", "2"]
hashVersion = 2
"#;

/// Writes version `version` of bundle `ctr`: `model` with the bundled
/// catalog and baseline.
fn write_version(root: &Path, version: &str, model: &[u8]) {
    let dir = root.join("ctr").join(version);
    std::fs::create_dir_all(&dir).expect("version dir");
    std::fs::write(dir.join("model.safetensors"), model).expect("model");
    std::fs::write(dir.join("catalog.toml"), cx_engine::DEFAULT_CATALOG_TOML).expect("catalog");
    std::fs::write(
        dir.join("fallback.safetensors"),
        cx_engine::DEFAULT_BASELINE_BYTES,
    )
    .expect("fallback");
}

/// The bundled model with its output biases shifted: another valid model.
fn shifted_model() -> Vec<u8> {
    let model = SnnModel::from_bytes(cx_engine::DEFAULT_MODEL_BYTES).expect("bundled model");
    let mut layers = model.layers().to_vec();
    let last = layers.last_mut().expect("layers");
    last.bias.iter_mut().for_each(|b| *b += 0.25);
    SnnModel::new(layers, model.steps(), model.meta().clone())
        .expect("valid")
        .to_bytes()
}

/// A repository with versions 1 (the bundled model, active) and 2.
fn repository(label: &str) -> std::path::PathBuf {
    let root = common::temp_dir(label);
    let _ = std::fs::remove_dir_all(&root);
    write_version(&root, "1", cx_engine::DEFAULT_MODEL_BYTES);
    write_version(&root, "2", &shifted_model());
    std::fs::write(root.join("ctr").join("ACTIVE"), "1\n").expect("ACTIVE");
    std::fs::write(root.join("experiments.toml"), EXPERIMENTS).expect("experiments");
    root
}

fn experiments(server: &Server) -> Value {
    let (status, text) = scrape(server, "/admin/experiments");
    assert_eq!(status, 200, "{text}");
    let body = text.split("\r\n\r\n").nth(1).expect("a body");
    serde_json::from_str(body).expect("JSON")
}

/// Waits until `/admin/experiments` satisfies `ok` (workers publish every
/// 20 ms).
fn wait_for(server: &Server, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let doc = experiments(server);
        if ok(&doc) {
            return doc;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no {what} in {doc}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn cx_json(args: &[&str]) -> Value {
    let out = common::cx().args(args).output().expect("runs cx");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "cx {args:?}: {stderr}");
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[test]
fn two_versions_serve_at_once_and_each_arm_counts_its_own() {
    let root = repository("experiments_serve");
    let journal = root.join("journal");
    let mut config = common::config(cx_server::config::IoMode::Epoll);
    config.repository = Some(root.clone());
    config.experiments = Some(root.join("experiments.toml"));
    config.journal_dir = Some(journal.clone());
    config.workers = 2;
    let server = start(config);
    let mut client = connect(&server);
    let flags = ContextFlags {
        simulate: false,
        decision_ids: true,
    };
    let users = 400u32;
    let mut ids = Vec::new();
    for i in 0..users {
        client.send_context_with(&context(i), flags).expect("sends");
        client.flush().expect("flushes");
        let response = client.recv().expect("an answer");
        let ResponseBody::Decision(decision) = response.body else {
            panic!("a decision: {response:?}");
        };
        if let Some(id) = decision.imps[0].decision_id.clone() {
            ids.push((i, id));
        }
    }
    assert!(ids.len() > 300, "most requests chose an offer");
    // An impression for every decision, a click for every third.
    let exp =
        Experiment::from_json(r#"{"key": "ranker", "variations": ["1", "2"], "hashVersion": 2}"#)
            .expect("experiment");
    let mut expected = [[0u64; 4]; 2]; // assigned, impressions, clicks, decided
    for i in 0..users {
        expected[exp.assign(&format!("user-{i}")).variation_id][0] += 1;
    }
    for chunk in ids.chunks(32) {
        let mut events = Vec::new();
        for (i, id) in chunk {
            let v = exp.assign(&format!("user-{i}")).variation_id;
            events.push(FeedbackEvent::new(FeedbackKind::Impression, id));
            expected[v][1] += 1;
            expected[v][3] += 1;
            if i % 3 == 0 {
                events.push(FeedbackEvent::new(FeedbackKind::Click, id));
                expected[v][2] += 1;
            }
        }
        let ack = client.feedback(&events).expect("acknowledged");
        assert_eq!(ack.applied as usize, events.len(), "{ack:?}");
    }
    let clicks_total = expected[0][2] + expected[1][2];
    let doc = wait_for(&server, "every click", |d| {
        let v = &d["experiments"][0]["variants"];
        v[0]["clicks"].as_u64().unwrap_or(0) + v[1]["clicks"].as_u64().unwrap_or(0) == clicks_total
    });
    let e = &doc["experiments"][0];
    assert_eq!(e["key"], "ranker");
    assert_eq!(e["weights"], serde_json::json!([0.5, 0.5]));
    for v in 0..2 {
        let got = &e["variants"][v];
        assert_eq!(got["version"], ["1", "2"][v]);
        let counts = [
            got["assigned"].as_u64(),
            got["impressions"].as_u64(),
            got["clicks"].as_u64(),
        ];
        let want = [expected[v][0], expected[v][1], expected[v][2]].map(Some);
        assert_eq!(counts, want, "variation {v}: {got}");
        assert!(expected[v][0] > 150, "{expected:?}");
    }
    let vs = &e["variants"][1]["vs_control"];
    assert!(vs["z_test"]["p_value"].is_number(), "{vs}");
    assert!(vs["chance_to_beat_control"].is_number(), "{vs}");
    assert!(e["srm"]["p_value"].as_f64().expect("srm") > 0.001, "{e}");
    // The same as metrics, and through `cx experiment report --addr`.
    let (_, text) = scrape(&server, "/metrics");
    let assigned = common::sample(
        &text,
        "cx_experiment_assigned_total{experiment=\"ranker\",variation=\"1\"}",
    );
    assert_eq!(assigned as u64, expected[1][0]);
    assert!(
        text.contains("cx_experiment_sequential_p_value{experiment=\"ranker\",variation=\"1\"}")
    );
    let admin = server.admin_addr().expect("admin").to_string();
    let live = cx_json(&["experiment", "report", "--addr", &admin]);
    assert_eq!(
        live["experiments"][0]["variants"][1]["clicks"],
        expected[1][2]
    );
    drop(client);
    stop(server);

    // From the journal: decisions that chose an offer, and their outcomes.
    let journal_s = journal.to_str().expect("UTF-8");
    let defs = root.join("experiments.toml");
    let report = cx_json(&[
        "experiment",
        "report",
        "--journal",
        journal_s,
        "--experiments",
        defs.to_str().expect("UTF-8"),
        "--look-every",
        "50",
    ]);
    let e = &report["experiments"][0];
    for v in 0..2 {
        let got = &e["variants"][v];
        assert_eq!(got["key"], v.to_string());
        assert_eq!(got["assigned"].as_u64(), Some(expected[v][3]), "{got}");
        assert_eq!(got["impressions"].as_u64(), Some(expected[v][1]), "{got}");
        assert_eq!(got["clicks"].as_u64(), Some(expected[v][2]), "{got}");
    }
    assert!(
        e["variants"][1]["vs_control"]["looks"]
            .as_u64()
            .expect("looks")
            >= 6
    );
    assert_eq!(report["decisions_outside_experiments"], 0);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_reload_changes_the_experiments_and_a_bad_definition_changes_nothing() {
    let root = repository("experiments_reload");
    let mut config = common::config(cx_server::config::IoMode::Epoll);
    config.repository = Some(root.clone());
    config.experiments = Some(root.join("experiments.toml"));
    let server = start(config);
    let before = experiments(&server);
    assert_eq!(before["experiments"][0]["key"], "ranker");
    // A variation naming a version that does not exist: refused.
    let defs = root.join("experiments.toml");
    std::fs::write(&defs, EXPERIMENTS.replace("\"2\"]", "\"9\"]")).expect("write");
    let reload = server.reload();
    let err = reload.expect_err("version 9 does not exist");
    assert!(cx_server::error::render_chain(&err).contains('9'), "{err}");
    assert_eq!(experiments(&server)["experiments"][0]["key"], "ranker");
    // One whose arm brings another catalog: refused by name.
    write_version(&root, "3", &shifted_model());
    let other = cx_engine::DEFAULT_CATALOG_TOML.replacen("name = \"", "name = \"Other ", 1);
    std::fs::write(root.join("ctr/3/catalog.toml"), other).expect("write");
    std::fs::write(&defs, EXPERIMENTS.replace("\"2\"]", "\"3\"]")).expect("write");
    let err = server.reload().expect_err("another catalog");
    let text = cx_server::error::render_chain(&err);
    assert!(text.contains("another catalog"), "{text}");
    // A new split of three: live after the reload, with fresh arm ids.
    let three = r#"
[[experiment]]
key = "three-way"
variations = ["1", "2", "2"]
weights = [0.5, 0.25, 0.25]
"#;
    std::fs::write(&defs, three).expect("write");
    server.reload().expect("reloads");
    let doc = experiments(&server);
    let e = &doc["experiments"][0];
    assert_eq!(e["key"], "three-way");
    assert_eq!(e["weights"], serde_json::json!([0.5, 0.25, 0.25]));
    assert_eq!(
        e["variants"][2]["arm"], 5,
        "ids 1 and 2 are ranker's for the life of the process"
    );
    // No experiments at all.
    std::fs::write(&defs, "").expect("write");
    server.reload().expect("reloads");
    assert_eq!(experiments(&server)["experiments"], serde_json::json!([]));
    stop(server);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn experiments_need_a_repository() {
    let out = common::cx()
        .args(["serve", "--experiments", "x.toml"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--repository"), "{stderr}");
}

#[test]
fn counts_and_arm_ids_survive_a_restart_and_a_damaged_file_is_refused() {
    let root = repository("experiments_restart");
    let state = common::temp_dir("experiments_restart_state");
    let _ = std::fs::remove_dir_all(&state);
    let serve = || {
        let mut config = common::config(cx_server::config::IoMode::Epoll);
        config.repository = Some(root.clone());
        config.experiments = Some(root.join("experiments.toml"));
        config.state_dir = Some(state.clone());
        config
    };
    // A first run ends with a second experiment first in the file, so a
    // fresh registry would number the arms otherwise.
    let server = start(serve());
    let mut client = connect(&server);
    for i in 0..100 {
        client.send_context(&context(i), false).expect("sends");
        client.flush().expect("flushes");
        client.recv().expect("an answer");
    }
    let before = wait_for(&server, "100 assignments", |d| {
        let v = &d["experiments"][0]["variants"];
        v[0]["assigned"].as_u64().unwrap_or(0) + v[1]["assigned"].as_u64().unwrap_or(0) == 100
    });
    drop(client);
    stop(server);
    let defs = root.join("experiments.toml");
    let first = "[[experiment]]\nkey = \"other\"\nvariations = [\"1\", \"2\"]\nnamespace = [\"ns\", 0, 0.01]\n";
    std::fs::write(&defs, format!("{first}{EXPERIMENTS}")).expect("write");

    let server = start(serve());
    let after = experiments(&server);
    let ranker = after["experiments"]
        .as_array()
        .expect("a list")
        .iter()
        .find(|e| e["key"] == "ranker")
        .expect("ranker is live")
        .clone();
    for v in 0..2 {
        let (b, a) = (
            &before["experiments"][0]["variants"][v],
            &ranker["variants"][v],
        );
        assert_eq!(a["arm"], b["arm"], "the arm keeps its id");
        assert_eq!(a["assigned"], b["assigned"], "its counts go on");
    }
    stop(server);

    // A damaged file stops the start; --fresh-state moves it aside.
    let file = state.join("experiments.bin");
    let mut bytes = std::fs::read(&file).expect("written");
    let at = bytes.len() / 2;
    bytes[at] ^= 0xFF;
    std::fs::write(&file, &bytes).expect("write");
    let err = cx_server::serve::Server::start(serve())
        .err()
        .expect("refused");
    let text = cx_server::error::render_chain(&err);
    assert!(
        text.contains("experiments.bin") && text.contains("--fresh-state"),
        "{text}"
    );
    let mut fresh = serve();
    fresh.fresh_state = true;
    let server = start(fresh);
    assert!(state.join("experiments.bin.refused").exists());
    let doc = experiments(&server);
    assert!(
        doc["experiments"][1]["variants"][0]["assigned"] == 0,
        "{doc}"
    );
    stop(server);
    let _ = std::fs::remove_dir_all(&root);
    let _ = std::fs::remove_dir_all(&state);
}
