//! `cx serve --repository`: a bundle's active version serves; `cx
//! repository activate` and a reload (the admin call or SIGHUP) swap a
//! whole bundle in; a broken version is refused, counted, and the running
//! one keeps serving; `cx repository rollback` goes back.

mod common;

use common::{cx, sample, signal, temp_dir, ServeProcess};
use cx_engine::model::{ModelId, SnnModel};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

/// Writes version `version` of bundle `ctr`: `model`, the bundled catalog
/// and baseline, and `decide` as its decide.toml when given.
fn write_version(root: &Path, version: &str, model: &[u8], decide: Option<&str>) {
    let dir = root.join("ctr").join(version);
    std::fs::create_dir_all(&dir).expect("version dir");
    std::fs::write(dir.join("model.safetensors"), model).expect("model");
    std::fs::write(dir.join("catalog.toml"), cx_engine::DEFAULT_CATALOG_TOML).expect("catalog");
    std::fs::write(
        dir.join("fallback.safetensors"),
        cx_engine::DEFAULT_BASELINE_BYTES,
    )
    .expect("fallback");
    if let Some(text) = decide {
        std::fs::write(dir.join("decide.toml"), text).expect("decide");
    }
}

/// The bundled model with every output bias shifted: another valid model.
fn shifted_model() -> Vec<u8> {
    let model = SnnModel::from_bytes(cx_engine::DEFAULT_MODEL_BYTES).expect("bundled model");
    let mut layers = model.layers().to_vec();
    let last = layers.last_mut().expect("layers");
    last.bias.iter_mut().for_each(|b| *b += 0.25);
    SnnModel::new(layers, model.steps(), model.meta().clone())
        .expect("valid")
        .to_bytes()
}

/// The bundled model whose 16 columns all name offer 1000 (the header
/// edited in place: the id list keeps its length).
fn repeated_ids_model() -> Vec<u8> {
    let key = br#""cx.offer_ids":"["#;
    let mut bytes = cx_engine::DEFAULT_MODEL_BYTES.to_vec();
    let start = bytes
        .windows(key.len())
        .position(|w| w == key)
        .expect("the offer ids are in the header")
        + key.len();
    let end = start
        + bytes[start..]
            .iter()
            .position(|&b| b == b']')
            .expect("the list ends");
    let to = vec!["1000"; 16].join(",");
    assert_eq!(end - start, to.len(), "16 ids of 4 digits");
    bytes[start..end].copy_from_slice(to.as_bytes());
    let err = SnnModel::from_bytes(&bytes).expect_err("repeated ids are refused");
    assert!(err.to_string().contains("repeats offer 1000"), "{err}");
    bytes
}

fn admin(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connects to the admin port");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .expect("writes");
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    (status, text)
}

fn metrics(addr: SocketAddr) -> String {
    admin(addr, "GET", "/metrics").1
}

fn info(version: &str, id: &str) -> String {
    format!("cx_model_info{{name=\"ctr\",version=\"{version}\",id=\"{id}\"}}")
}

/// Waits until `/metrics` satisfies `ok` (a SIGHUP is handled within 25 ms).
fn wait_for_metrics(addr: SocketAddr, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let text = metrics(addr);
        if ok(&text) {
            return text;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no {what} in:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn repository(args: &[&str], root: &Path) -> serde_json::Value {
    let out = cx()
        .arg("repository")
        .args(args)
        .arg("--repository")
        .arg(root)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "cx repository {args:?}: {stderr}");
    serde_json::from_slice(&out.stdout).expect("one JSON line")
}

/// One OpenRTB bid request over HTTP: the status.
fn bid(http: SocketAddr) -> u16 {
    let body = common::fixture();
    let mut stream = TcpStream::connect(http).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    write!(
        stream,
        "POST /openrtb2/bid HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .expect("writes");
    stream.write_all(&body).expect("writes the body");
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[test]
fn bundles_swap_whole_a_broken_one_is_refused_and_rollback_goes_back() {
    let root = temp_dir("repository");
    let _ = std::fs::remove_dir_all(&root);
    let v1 = cx_engine::DEFAULT_MODEL_BYTES.to_vec();
    let v2 = shifted_model();
    let id = |bytes: &[u8]| ModelId::of_bytes(bytes).to_string();
    write_version(&root, "1", &v1, None);
    write_version(&root, "2", &v2, Some("[decide]\ntop_k = 2\n"));
    std::fs::write(root.join("ctr").join("ACTIVE"), "1\n").expect("ACTIVE");

    let log = root.join("stderr.log");
    let repo = root.to_str().expect("UTF-8 path");
    let mut server = ServeProcess::spawn(&["--repository", repo, "--workers", "2"], &log);
    let admin_addr = server.admin.expect("admin port");
    let http = server.http.expect("http port");
    assert_eq!(server.started["bundle"]["name"], "ctr");
    assert_eq!(server.started["bundle"]["version"], "1");
    let text = metrics(admin_addr);
    assert_eq!(sample(&text, &info("1", &id(&v1))), 1.0);
    assert!(matches!(bid(http), 200 | 204));

    // Activate version 2 and reload through the admin call.
    let done = repository(&["activate", "2"], &root);
    assert_eq!(
        (done["from"].as_str(), done["active"].as_str()),
        (Some("1"), Some("2"))
    );
    let (status, body) = admin(admin_addr, "POST", "/admin/reload");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""version":"2""#), "{body}");
    let text = metrics(admin_addr);
    assert_eq!(sample(&text, &info("2", &id(&v2))), 1.0);
    assert!(!text.contains(&id(&v1)), "only the new bundle is shown");
    assert_eq!(sample(&text, "cx_model_reloads_total{result=\"ok\"}"), 1.0);
    assert!(matches!(bid(http), 200 | 204), "the new bundle serves");
    assert_eq!(admin(admin_addr, "GET", "/admin/reload").0, 405);

    // A broken version 3 (its model repeats offer 1000 in every column):
    // refused by SIGHUP and by the admin call; version 2 keeps serving.
    write_version(&root, "3", &repeated_ids_model(), None);
    repository(&["activate", "3"], &root);
    signal(server.pid, "HUP");
    let text = wait_for_metrics(admin_addr, "invalid_model reload", |t| {
        t.contains("cx_model_reloads_total{result=\"invalid_model\"} 1")
    });
    assert_eq!(sample(&text, &info("2", &id(&v2))), 1.0);
    let (status, body) = admin(admin_addr, "POST", "/admin/reload");
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("repeats offer 1000"),
        "names the reason: {body}"
    );
    let text = metrics(admin_addr);
    assert_eq!(
        sample(&text, "cx_model_reloads_total{result=\"invalid_model\"}"),
        2.0
    );
    assert_eq!(sample(&text, &info("2", &id(&v2))), 1.0);
    assert!(
        matches!(bid(http), 200 | 204),
        "the old bundle still serves"
    );

    // A version whose catalog is not one: counted as such.
    write_version(&root, "4", &v1, None);
    std::fs::write(root.join("ctr/4/catalog.toml"), "[[offer]]\nid = 1000\n").expect("write");
    repository(&["activate", "4"], &root);
    assert_eq!(admin(admin_addr, "POST", "/admin/reload").0, 422);
    let text = metrics(admin_addr);
    assert_eq!(
        sample(&text, "cx_model_reloads_total{result=\"invalid_catalog\"}"),
        1.0
    );

    // Roll back: 4 -> 3 -> 2, then 2 -> 1, each followed by a reload.
    assert_eq!(repository(&["rollback"], &root)["active"], "3");
    assert_eq!(repository(&["rollback"], &root)["active"], "2");
    assert_eq!(admin(admin_addr, "POST", "/admin/reload").0, 200);
    assert_eq!(repository(&["rollback"], &root)["active"], "1");
    signal(server.pid, "HUP");
    wait_for_metrics(admin_addr, "version 1 again", |t| {
        t.contains(&info("1", &id(&v1)))
    });
    let listed = repository(&["list"], &root);
    assert_eq!(listed["active"], "1");
    assert_eq!(listed["versions"], serde_json::json!(["1", "2", "3", "4"]));
    assert!(matches!(bid(http), 200 | 204));

    signal(server.pid, "TERM");
    assert!(server.child.wait().expect("exits").success());
    let log_text = std::fs::read_to_string(&log).expect("log");
    assert!(
        log_text.contains("reload refused; the running bundle keeps serving"),
        "the refusal is logged with its reason"
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn serve_refuses_a_repository_with_model_flags_or_a_bad_bundle_name() {
    let root = temp_dir("repository-flags");
    write_version(&root, "1", cx_engine::DEFAULT_MODEL_BYTES, None);
    let repo = root.to_str().expect("UTF-8");
    let out = cx()
        .args(["serve", "--repository", repo, "--model", "x.safetensors"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--model"));
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
        .args(["--repository", repo, "--bundle", "../etc"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bundle"), "{stderr}");
    let _ = std::fs::remove_dir_all(&root);
}
