//! The online feature store in a live `cx serve`: the start line,
//! `put_features` over the binary protocol (good items written, each bad
//! one refused with its reason and nothing of it written), `cx features
//! load` (JSONL and CSV, bad lines and refused items reported with their
//! line numbers), `cx features health`, the `cx_feature_*` metrics, the
//! snapshot in `--state-dir` across a restart, a corrupt snapshot refused
//! unless `--fresh-state`, and a server without a store.

mod common;

use common::{admin_get, cx, sample, signal, temp_dir, ServeProcess};
use cx_engine::featurestore::Definitions;
use cx_wire::client::{Client, ClientError, ResponseBody};
use cx_wire::protocol::limits::PUT_FEATURES_ITEMS_MAX;
use cx_wire::protocol::{ErrorCode, FeatureItem, PutFeaturesAck, PutValue};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

const T0_NS: u64 = 1_767_225_600_000_000_000;

/// A server that is killed if the test fails before stopping it.
struct Serving(ServeProcess);

impl Drop for Serving {
    fn drop(&mut self) {
        if matches!(self.0.child.try_wait(), Ok(None)) {
            let _ = self.0.child.kill();
            let _ = self.0.child.wait();
        }
    }
}

impl Serving {
    fn stop(mut self) {
        signal(self.0.pid, "TERM");
        let _ = self.0.child.wait();
    }

    fn client(&self) -> Client {
        let mut client = Client::connect(self.0.addr).expect("connects");
        client
            .set_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        client.hello().expect("hello");
        client
    }

    fn admin(&self) -> SocketAddr {
        self.0.admin.expect("the admin port runs")
    }
}

fn serve(dir: &Path, log: &str, args: &[&str]) -> Serving {
    Serving(ServeProcess::spawn(args, &dir.join(log)))
}

fn item<'a>(user: &'a str, feature: &'a str, value: PutValue<'a>) -> FeatureItem<'a> {
    FeatureItem {
        user_id: user,
        feature,
        value,
        time_ns: T0_NS,
    }
}

/// `/metrics` once `ready` holds for it (the health is published once a
/// second), or panics after 10 s.
fn metrics_when(admin: SocketAddr, ready: impl Fn(&str) -> bool) -> String {
    let started = Instant::now();
    loop {
        let text = admin_get(admin, "/metrics");
        if ready(&text) {
            return text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "metrics never got there:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `cx features ARGS`: stdout's JSON lines, or stderr on failure.
fn features_cli(args: &[&str]) -> Result<Vec<serde_json::Value>, String> {
    let out = cx().arg("features").args(args).output().expect("runs");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect())
}

fn health(admin: SocketAddr) -> serde_json::Value {
    let mut lines = features_cli(&["health", "--addr", &admin.to_string()]).expect("health");
    assert_eq!(lines.len(), 1);
    lines.remove(0)
}

fn feature<'a>(health: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    health["features"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["name"] == name))
        .unwrap_or_else(|| panic!("no {name} in {health}"))
}

#[test]
fn puts_health_metrics_and_a_restart_with_the_state_dir() {
    let dir = temp_dir("features-e2e");
    let state = dir.join("state");
    let _ = std::fs::remove_dir_all(&state);
    let state_arg = state.to_str().expect("utf-8");
    let server = serve(
        &dir,
        "serve-1.log",
        &[
            "--workers",
            "2",
            "--state-dir",
            state_arg,
            "--state-interval-s",
            "1",
        ],
    );
    let started = &server.0.started["features"];
    let bundled = Definitions::from_toml_str(include_str!("../../models/features.toml")).unwrap();
    assert_eq!(started["enabled"], true, "{started}");
    assert_eq!(started["schema_id"], bundled.id());
    assert_eq!(started["definitions"], "bundled");
    assert!(started["capacity_entities"].as_u64() >= Some(262_144));
    assert_eq!(started["snapshot"]["mode"], "empty");

    // Good items are written; each bad one is refused with its reason.
    let mut client = server.client();
    let items = [
        item("u1", "clicks_30d", PutValue::I64(3)),
        item("u1", "age_band", PutValue::Category("25-34")),
        item("u2", "churn_risk", PutValue::F32(0.75)),
        item("u1", "nope", PutValue::I64(1)),
        item("u1", "clicks_30d", PutValue::F32(1.0)),
        item("u1", "churn_risk", PutValue::F32(f32::NAN)),
        item("u1", "churn_risk", PutValue::F32(f32::INFINITY)),
        item("u1", "ctr_30d", PutValue::F32(0.5)),
        item("", "clicks_30d", PutValue::I64(1)),
        item("u1", "age_band", PutValue::Category("99+")),
    ];
    let ack = client.put_features(&items).expect("an ack");
    assert_eq!(ack.results, [0, 0, 0, 2, 4, 5, 5, 3, 1, 5]);
    assert_eq!((ack.written, ack.outdated, ack.refused()), (3, 0, 7));

    // A batch of bad items only writes nothing: the health's writes stay.
    let before = health(server.admin());
    assert_eq!(feature(&before, "clicks_30d")["writes"], 1);
    let bad_only = [
        item("u3", "nope", PutValue::I64(1)),
        item("u3", "spend_90d", PutValue::F32(f32::NEG_INFINITY)),
        item("u3", "spend_90d", PutValue::I64(2)),
    ];
    let ack = client.put_features(&bad_only).expect("an ack");
    assert_eq!((ack.written, ack.refused()), (0, 3));
    let after = health(server.admin());
    assert_eq!(after["features"], before["features"], "nothing changed");
    assert_eq!(after["entities"], 2);

    // An older value is ignored (outdated); a newer one is written.
    let mut older = item("u1", "clicks_30d", PutValue::I64(1));
    older.time_ns = T0_NS - 1;
    let ack = client.put_features(&[older]).expect("an ack");
    assert_eq!((ack.written, ack.outdated), (0, 1));

    // Over the limit: the client refuses to encode it, and a hand-made
    // frame announcing one item more is refused by the server by name.
    let many = vec![item("u1", "clicks_30d", PutValue::I64(1)); PUT_FEATURES_ITEMS_MAX + 1];
    let e = client.put_features(&many).unwrap_err();
    assert!(matches!(e, ClientError::Encode { .. }), "{e}");
    let mut frame = Vec::new();
    cx_wire::protocol::encode_put_features(&mut frame, 99, &many[..1]).unwrap();
    let count = (PUT_FEATURES_ITEMS_MAX as u16 + 1).to_le_bytes();
    frame[24..26].copy_from_slice(&count);
    client.send_raw(&frame).unwrap();
    client.flush().unwrap();
    let response = client.recv().expect("an answer");
    assert_eq!(response.request_id, 99);
    let ResponseBody::Error { code, message } = response.body else {
        panic!("an error: {response:?}");
    };
    assert_eq!(code, ErrorCode::InvalidPayload);
    assert!(message.contains("item_count"), "{message}");

    // cx features load: JSONL and CSV, bad lines and refused items with
    // their numbers.
    let jsonl = dir.join("users.jsonl");
    std::fs::write(
        &jsonl,
        format!(
            concat!(
                "{{\"user_id\":\"u5\",\"feature\":\"is_subscriber\",\"value\":true,\"ts_ns\":{t}}}\n",
                "not json\n",
                "\n",
                "{{\"user_id\":\"u5\",\"feature\":\"nope\",\"value\":1}}\n",
                "{{\"user_id\":\"u5\",\"feature\":\"clicks_30d\",\"value\":1.5}}\n",
                "{{\"user_id\":\"u5\",\"feature\":\"last_seen_at\",\"value\":1767225600,\"ts_ns\":{t}}}\n",
            ),
            t = T0_NS
        ),
    )
    .unwrap();
    let addr = server.0.addr.to_string();
    let out = features_cli(&["load", "--addr", &addr, jsonl.to_str().unwrap()]).expect("load");
    let bad: Vec<u64> = out.iter().filter_map(|l| l["line"].as_u64()).collect();
    assert_eq!(bad, [2, 4, 5], "{out:?}");
    assert!(out[1]["error"].as_str().unwrap().contains("not a feature"));
    let total = &out.last().unwrap()["total"];
    assert_eq!(
        (total["items"].as_u64(), total["written"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(total["bad_lines"], 3);

    let csv = dir.join("users.csv");
    std::fs::write(
        &csv,
        "user_id,feature,value\nu6,churn_risk,0.5\nu6,churn_risk,NaN\n",
    )
    .unwrap();
    let out = features_cli(&["load", "--addr", &addr, csv.to_str().unwrap()]).expect("load");
    assert_eq!(out[0]["line"], 3, "{out:?}");
    assert!(out[0]["error"].as_str().unwrap().contains("not finite"));
    assert_eq!(out.last().unwrap()["total"]["written"], 1);

    // A feature the CLI's definitions have and the server's do not: the
    // server refuses it, and the line is named.
    let other = dir.join("other.toml");
    std::fs::write(
        &other,
        "[[feature]]\nname = \"extra_score\"\nkind = \"predictive\"\ntype = \"f32\"\nttl = \"1d\"\ndefault = 0.0\n",
    )
    .unwrap();
    let extra = dir.join("extra.jsonl");
    std::fs::write(
        &extra,
        "{\"user_id\":\"u7\",\"feature\":\"extra_score\",\"value\":0.5}\n",
    )
    .unwrap();
    let out = features_cli(&[
        "load",
        "--addr",
        &addr,
        "--definitions",
        other.to_str().unwrap(),
        extra.to_str().unwrap(),
    ])
    .expect("load");
    assert_eq!(out[0]["line"], 1);
    assert!(
        out[0]["error"]
            .as_str()
            .unwrap()
            .contains("unknown_feature"),
        "{out:?}"
    );

    // Metrics: puts by result and reason, writes per feature, store size.
    let text = metrics_when(server.admin(), |t| {
        t.contains("cx_feature_writes_total{feature=\"churn_risk\"} 2")
    });
    assert_eq!(
        sample(&text, "cx_feature_put_items_total{result=\"written\"}"),
        6.0
    );
    assert_eq!(
        sample(&text, "cx_feature_put_items_total{result=\"outdated\"}"),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "cx_feature_put_refused_total{reason=\"unknown_feature\"}"
        ),
        3.0
    );
    assert_eq!(
        sample(&text, "cx_feature_put_refused_total{reason=\"bad_value\"}"),
        4.0
    );
    assert_eq!(sample(&text, "cx_feature_store_entities"), 4.0);
    assert_eq!(
        sample(&text, "cx_feature_stale_warning{feature=\"clicks_30d\"}"),
        0.0
    );
    assert_eq!(
        sample(
            &text,
            "cx_feature_feedback_updates_total{result=\"effects\"}"
        ),
        0.0
    );
    drop(client);

    // A clean stop writes the snapshot; the restart restores it: u1's
    // clicks at T0 are held, so an older value is outdated again.
    server.stop();
    assert!(state.join("features.bin").exists());
    let server = serve(&dir, "serve-2.log", &["--state-dir", state_arg]);
    let snapshot = &server.0.started["features"]["snapshot"];
    assert_eq!(snapshot["mode"], "restored", "{snapshot}");
    assert_eq!(snapshot["entities"], 4);
    let mut client = server.client();
    let ack = client.put_features(&[older]).expect("an ack");
    assert_eq!((ack.written, ack.outdated), (0, 1), "the value came back");
    drop(client);
    server.stop();
}

#[test]
fn a_corrupt_feature_snapshot_stops_the_start_unless_fresh_state() {
    let dir = temp_dir("features-corrupt");
    let state = dir.join("state");
    let _ = std::fs::remove_dir_all(&state);
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("features.bin"), b"CXFSTORE but then garbage").unwrap();
    let state_arg = state.to_str().expect("utf-8");
    let out = cx()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "",
            "--http-listen",
            "",
        ])
        .args(["--state-dir", state_arg])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--fresh-state"), "{stderr}");
    assert!(stderr.contains("features.bin"), "{stderr}");
    assert_eq!(
        std::fs::read(state.join("features.bin")).unwrap(),
        b"CXFSTORE but then garbage",
        "the refused file is left alone"
    );

    let server = serve(
        &dir,
        "serve.log",
        &["--state-dir", state_arg, "--fresh-state"],
    );
    let snapshot = &server.0.started["features"]["snapshot"];
    assert_eq!(snapshot["mode"], "fresh", "{snapshot}");
    assert!(snapshot["refused"]
        .as_str()
        .unwrap()
        .contains("features.bin"));
    assert!(state.join("features.bin.refused").exists());
    server.stop();
    assert!(state.join("features.bin").exists(), "written at shutdown");
}

#[test]
fn without_a_store_puts_are_refused_store_off_and_health_says_why() {
    let dir = temp_dir("features-off");
    let server = serve(&dir, "serve.log", &["--features-off"]);
    assert_eq!(server.0.started["features"]["enabled"], false);
    let mut client = server.client();
    let ack = client
        .put_features(&[item("u1", "clicks_30d", PutValue::I64(1)); 2])
        .expect("an ack");
    assert_eq!(ack.results, [6, 6]);
    assert_eq!(PutFeaturesAck::label(6), "store_off");
    let e = features_cli(&["health", "--addr", &server.admin().to_string()]).unwrap_err();
    assert!(e.contains("without a feature store"), "{e}");
    drop(client);
    server.stop();
}

#[test]
fn bad_feature_settings_are_refused_by_name() {
    for (flag, value, needle) in [
        ("--features-entities", "0", "entities"),
        ("--features-stale-warn-share", "1.5", "stale_warn_share"),
        (
            "--features-definitions",
            "/nonexistent/defs.toml",
            "/nonexistent/defs.toml",
        ),
    ] {
        let out = cx()
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "",
                "--http-listen",
                "",
            ])
            .args([flag, value])
            .output()
            .expect("runs");
        assert!(!out.status.success(), "{flag} {value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{flag}: {stderr}");
    }
}

#[test]
fn a_feature_read_stale_too_often_is_flagged_in_metrics_health_and_the_log() {
    let dir = temp_dir("features-stale");
    let config = dir.join("serve.toml");
    std::fs::write(
        &config,
        "[features]\nwarn_min_reads = 5\nstale_warn_share = 0.2\n",
    )
    .unwrap();
    let log = dir.join("serve-stale.log");
    let server = Serving(ServeProcess::spawn(
        &["--config", config.to_str().unwrap()],
        &log,
    ));
    let mut client = server.client();
    // Ten days old: past clicks_30d's two-day TTL.
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let old = FeatureItem {
        time_ns: now_ns - 10 * 86_400 * 1_000_000_000,
        ..item("user-1", "clicks_30d", PutValue::I64(9))
    };
    assert_eq!(client.put_features(&[old]).expect("an ack").written, 1);
    for _ in 0..10 {
        let response = client
            .score_context(&common::context(1), false)
            .expect("decided");
        assert!(
            matches!(response.body, ResponseBody::Decision(_)),
            "{response:?}"
        );
    }
    let text = metrics_when(server.admin(), |t| {
        t.contains("cx_feature_stale_warning{feature=\"clicks_30d\"} 1")
    });
    assert!(
        sample(
            &text,
            "cx_feature_reads_total{feature=\"clicks_30d\",freshness=\"stale\"}"
        ) >= 10.0
    );
    assert_eq!(
        sample(&text, "cx_feature_stale_warning{feature=\"views_30d\"}"),
        0.0
    );
    let report = health(server.admin());
    assert_eq!(
        report["warnings"],
        serde_json::json!(["clicks_30d"]),
        "{report}"
    );
    assert!(feature(&report, "clicks_30d")["age_p50_s"].as_u64() >= Some(10 * 86_400));
    drop(client);
    server.stop();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("reads stale more often") && text.contains("clicks_30d"),
        "{text}"
    );
}
