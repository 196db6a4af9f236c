//! End-to-end tests of the `cx` binary: `cx model inspect` and `cx model run`
//! on the committed snnTorch fixture (13 -> 37 -> 5, T = 10, batch 4).

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

const TOL: f64 = 1e-4;
const STEPS: usize = 10;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../backends/tests/fixtures")
        .join(name)
}

fn model_path() -> PathBuf {
    fixture("snntorch_net_small.safetensors")
}

fn trace_path() -> PathBuf {
    fixture("snntorch_net_small.json")
}

fn reference() -> Value {
    serde_json::from_slice(&std::fs::read(trace_path()).expect("read trace")).expect("parse trace")
}

fn model_sha256() -> String {
    let bytes = std::fs::read(model_path()).expect("read model");
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A file in the temp directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &[u8]) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("cx-cli-test-{}-{n}-{name}", std::process::id()));
        std::fs::write(&path, contents).expect("write temp file");
        Self(path)
    }

    fn json(name: &str, value: &Value) -> Self {
        Self::new(name, value.to_string().as_bytes())
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs `cx` with `args`, `CX_BACKEND` as given (unset by default), and `stdin`.
fn cx_with(args: &[&str], backend_env: Option<&str>, stdin: &[u8]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cx"));
    cmd.args(args)
        .env_remove("CX_BACKEND")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(name) = backend_env {
        cmd.env("CX_BACKEND", name);
    }
    let mut child = cmd.spawn().expect("spawn cx");
    let mut pipe = child.stdin.take().expect("stdin");
    // cx may exit before reading stdin; a broken pipe here is fine.
    let _ = pipe.write_all(stdin);
    drop(pipe);
    child.wait_with_output().expect("wait for cx")
}

fn cx(args: &[&str]) -> Output {
    cx_with(args, None, b"")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts success and parses stdout as JSON.
fn ok_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "cx failed: {:?}\nstderr: {}",
        out.status,
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

/// Asserts failure, an empty stdout, and a stderr containing every one of `needles`.
fn assert_fails(out: &Output, needles: &[&str]) {
    let stderr = text(&out.stderr);
    assert!(
        !out.status.success(),
        "cx succeeded; stdout: {}",
        text(&out.stdout)
    );
    assert!(
        out.stdout.iter().all(u8::is_ascii_whitespace),
        "stdout should be empty on error, got: {}",
        text(&out.stdout)
    );
    for needle in needles {
        assert!(stderr.contains(needle), "stderr lacks {needle:?}: {stderr}");
    }
    assert!(!stderr.contains("panicked"), "cx panicked: {stderr}");
}

fn f64s(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(items) => items.iter().flat_map(f64s).collect(),
        Value::Number(n) => vec![n.as_f64().expect("number")],
        other => panic!("unexpected JSON value {other}"),
    }
}

/// `[batch][step][neuron]` -> the last step of each row, `[batch][neuron]`.
fn last_step(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .flat_map(|row| f64s(row.as_array().expect("steps").last().expect("a step")))
        .collect()
}

fn assert_close(label: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{label}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= TOL, "{label}[{i}]: {g} vs reference {w}");
    }
}

/// Checks a run's readout against the reference rows `rows` (indices into
/// the fixture's batch).
fn check_readout(label: &str, out: &Value, reference: &Value, rows: &[usize]) {
    let counts_ref: Vec<Vec<f64>> = reference["spike_count2"]
        .as_array()
        .unwrap()
        .iter()
        .map(f64s)
        .collect();
    let mem_ref: Vec<Vec<f64>> = reference["mem2"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| f64s(row.as_array().unwrap().last().unwrap()))
        .collect();
    let counts = out["spike_count"].as_array().expect("spike_count");
    let mems = out["mem_last"].as_array().expect("mem_last");
    let probs = out["probability"].as_array().expect("probability");
    assert_eq!(counts.len(), rows.len(), "{label}: rows");
    assert_eq!(mems.len(), rows.len(), "{label}: rows");
    assert_eq!(probs.len(), rows.len(), "{label}: rows");
    for (r, &src) in rows.iter().enumerate() {
        let count: Vec<u64> = counts[r]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_u64().expect("spike counts are integers"))
            .collect();
        let want: Vec<u64> = counts_ref[src].iter().map(|&c| c as u64).collect();
        assert_eq!(count, want, "{label}: spike_count row {r}");
        assert_close(
            &format!("{label}: mem_last row {r}"),
            &f64s(&mems[r]),
            &mem_ref[src],
        );
        // No calibration metadata: the default spike_rate, count / T.
        let prob = f64s(&probs[r]);
        for (c, (&p, &n)) in prob.iter().zip(&count).enumerate() {
            assert!(
                (p - n as f64 / STEPS as f64).abs() < 1e-6,
                "{label}: probability row {r} column {c} is {p}, spike count {n}"
            );
        }
    }
}

#[test]
fn inspect_prints_hash_shapes_steps_and_reset() {
    let hash = model_sha256();
    let model = model_path();
    let out = cx(&["model", "inspect", model.to_str().unwrap()]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let report = text(&out.stdout);
    assert!(
        report.contains(&format!("id (sha256):    {hash}\n")),
        "{report}"
    );
    assert!(
        report.contains("layer 0 (fc1 -> lif1): 13 -> 37\n"),
        "{report}"
    );
    assert!(
        report.contains("layer 1 (fc2 -> lif2): 37 -> 5\n"),
        "{report}"
    );
    assert!(
        report.contains("fc1.weight [37, 13], fc1.bias [37]"),
        "{report}"
    );
    assert!(
        report.contains("fc2.weight [5, 37], fc2.bias [5]"),
        "{report}"
    );
    assert!(report.contains("steps (T):      10\n"), "{report}");
    assert_eq!(
        report.matches("reset:                subtract").count(),
        2,
        "{report}"
    );
    assert!(report.contains("calibration:    spike_rate"), "{report}");
    assert!(
        report.contains("offer ids:      0, 1, 2, 3, 4\n"),
        "{report}"
    );

    let out = cx(&["model", "inspect", "--json", model.to_str().unwrap()]);
    let report = ok_json(&out);
    assert_eq!(report["id"], json!(hash));
    assert_eq!(report["steps"], json!(10));
    assert_eq!(report["inputs"], json!(13));
    assert_eq!(report["outputs"], json!(5));
    let layers = report["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 2);
    for (layer, (inputs, outputs, beta)) in layers.iter().zip([(13, 37, 0.9), (37, 5, 0.8)]) {
        assert_eq!(layer["inputs"], json!(inputs));
        assert_eq!(layer["outputs"], json!(outputs));
        assert_eq!(layer["weight_shape"], json!([outputs, inputs]));
        assert_eq!(layer["reset"], json!("subtract"));
        assert_eq!(layer["beta"]["uniform"], json!(true));
        assert!((layer["beta"]["min"].as_f64().unwrap() - beta).abs() < 1e-6);
        assert_eq!(layer["threshold"]["min"], json!(1.0));
        assert_eq!(
            layer["threshold"]["values"].as_array().unwrap().len(),
            outputs
        );
    }
    assert_eq!(report["metadata"]["offer_ids"], json!([0, 1, 2, 3, 4]));
    assert_eq!(
        report["metadata"]["calibration"],
        json!({"method": "spike_rate"})
    );
}

#[test]
fn run_reproduces_snntorch_readout_on_each_backend() {
    let reference = reference();
    let x = TempFile::json("x.json", &reference["x"]);
    let model = model_path();
    let model = model.to_str().unwrap();
    for (backend, device) in [("scalar", "cpu-scalar"), ("simd", "cpu-simd")] {
        let out = ok_json(&cx(&[
            "model",
            "run",
            model,
            "--input",
            x.path(),
            "--backend",
            backend,
        ]));
        check_readout(backend, &out, &reference, &[0, 1, 2, 3]);
        let served = out["backend"].as_str().expect("backend");
        assert!(served.starts_with(device), "{backend}: served by {served}");
        assert_eq!(out["model_id"], json!(model_sha256()));
        assert_eq!(out["offer_ids"], json!([0, 1, 2, 3, 4]));
        assert!(out.get("layers").is_none(), "no trace unless asked");

        // The object form: the fixture itself is {"x": [...], ...}.
        let fixture = trace_path();
        let args = [
            "model",
            "run",
            model,
            "--input",
            fixture.to_str().unwrap(),
            "--backend",
            backend,
        ];
        let from_object = ok_json(&cx(&args));
        assert_eq!(from_object, out, "{backend}: object form");
    }
}

#[test]
fn run_reads_stdin_and_picks_the_backend_from_the_environment() {
    let reference = reference();
    let model = model_path();
    let stdin = reference["x"].to_string();
    let args = ["model", "run", model.to_str().unwrap(), "--input", "-"];
    let out = ok_json(&cx_with(&args, Some("scalar"), stdin.as_bytes()));
    check_readout("stdin", &out, &reference, &[0, 1, 2, 3]);
    assert_eq!(out["backend"], json!("cpu-scalar"));

    // --backend wins over CX_BACKEND.
    let args = [
        "model",
        "run",
        model.to_str().unwrap(),
        "-i",
        "-",
        "-b",
        "simd",
    ];
    let out = ok_json(&cx_with(&args, Some("scalar"), stdin.as_bytes()));
    assert!(
        out["backend"].as_str().unwrap().starts_with("cpu-simd"),
        "{out}"
    );

    // Unset: auto, which is SIMD today.
    let out = ok_json(&cx_with(&args[..5], None, stdin.as_bytes()));
    assert!(
        out["backend"].as_str().unwrap().starts_with("cpu-simd"),
        "{out}"
    );

    let out = cx_with(&args[..5], Some("gpu"), stdin.as_bytes());
    assert_fails(&out, &["CX_BACKEND", "unknown backend `gpu`"]);
}

#[test]
fn run_chunks_inputs_larger_than_one_batch() {
    let reference = reference();
    let x = reference["x"].as_array().unwrap();
    let rows: Vec<usize> = (0..4096 + 7).map(|r| (r * 7 + r / 3) % x.len()).collect();
    let input = TempFile::json(
        "big.json",
        &Value::Array(rows.iter().map(|&r| x[r].clone()).collect()),
    );
    let model = model_path();
    for backend in ["scalar", "simd"] {
        let args = [
            "model",
            "run",
            model.to_str().unwrap(),
            "--input",
            input.path(),
            "--backend",
            backend,
        ];
        let out = ok_json(&cx(&args));
        check_readout(backend, &out, &reference, &rows);
    }
}

#[test]
fn trace_matches_snntorch_for_every_layer() {
    let reference = reference();
    let fixture = trace_path();
    let model = model_path();
    for backend in ["scalar", "simd"] {
        let args = [
            "model",
            "run",
            model.to_str().unwrap(),
            "--input",
            fixture.to_str().unwrap(),
            "--backend",
            backend,
            "--trace",
        ];
        let out = ok_json(&cx(&args));
        check_readout(backend, &out, &reference, &[0, 1, 2, 3]);
        let layers = out["layers"].as_array().expect("layers");
        assert_eq!(layers.len(), 2, "{backend}");
        for (l, (spk_key, mem_key)) in [("spk1", "mem1"), ("spk2", "mem2")].into_iter().enumerate()
        {
            let label = format!("{backend} layer {l}");
            // Shape [batch][step][neuron].
            let spk_rows = layers[l]["spk"].as_array().unwrap();
            assert_eq!(spk_rows.len(), 4, "{label}");
            assert!(
                spk_rows
                    .iter()
                    .all(|r| r.as_array().unwrap().len() == STEPS),
                "{label}"
            );
            let spk = f64s(&layers[l]["spk"]);
            let mem = f64s(&layers[l]["mem"]);
            let spk_ref = f64s(&reference[spk_key]);
            let mem_ref = f64s(&reference[mem_key]);
            assert_close(&format!("{label} mem"), &mem, &mem_ref);
            assert_eq!(spk.len(), spk_ref.len(), "{label}");
            for i in 0..spk.len() {
                assert!(
                    spk[i] == 0.0 || spk[i] == 1.0,
                    "{label}: spike {} at {i}",
                    spk[i]
                );
                if spk[i] != spk_ref[i] {
                    assert!(
                        (mem_ref[i] - 1.0).abs() < TOL,
                        "{label} flat index {i}: spike {} vs reference {} with mem {}",
                        spk[i],
                        spk_ref[i],
                        mem_ref[i]
                    );
                }
            }
        }
        // mem_last is the last traced step of the last layer.
        assert_close(
            &format!("{backend} mem_last vs trace"),
            &f64s(&out["mem_last"]),
            &last_step(&layers[1]["mem"]),
        );
    }
}

#[test]
fn empty_input_gives_empty_arrays() {
    let model = model_path();
    for input in ["[]", r#"{"x": []}"#] {
        let args = [
            "model",
            "run",
            model.to_str().unwrap(),
            "--input",
            "-",
            "--trace",
        ];
        let out = ok_json(&cx_with(&args, None, input.as_bytes()));
        assert_eq!(out["spike_count"], json!([]));
        assert_eq!(out["mem_last"], json!([]));
        assert_eq!(out["probability"], json!([]));
        assert_eq!(
            out["layers"],
            json!([{"spk": [], "mem": []}, {"spk": [], "mem": []}])
        );
    }
}

#[test]
fn bad_inputs_fail_with_a_message_naming_the_problem() {
    let reference = reference();
    let model = model_path();
    let model = model.to_str().unwrap();
    let run = |input: &str, extra: &[&str]| {
        let mut args = vec!["model", "run", model, "--input", input];
        args.extend_from_slice(extra);
        cx(&args)
    };

    let mut x = reference["x"].clone();
    x[3].as_array_mut().unwrap().pop();
    let short = TempFile::json("short.json", &x);
    assert_fails(
        &run(short.path(), &[]),
        &[
            short.path(),
            "input row 3 has 12 features, the model takes 13",
        ],
    );

    let mut x = reference["x"].clone();
    x[0][5] = json!("abc");
    let word = TempFile::json("word.json", &x);
    assert_fails(
        &run(word.path(), &[]),
        &["input row 0 feature 5 is not a number", "\"abc\""],
    );

    let broken = TempFile::new("broken.json", b"[[1, 2, 3],\n [4, 5,");
    assert_fails(
        &run(broken.path(), &[]),
        &["is not valid JSON", "line 2 column"],
    );

    let missing =
        std::env::temp_dir().join(format!("cx-cli-test-{}-missing.json", std::process::id()));
    let missing = missing.to_str().unwrap();
    assert_fails(&run(missing, &[]), &["cannot read input", missing]);

    let fixture = trace_path();
    assert_fails(
        &run(fixture.to_str().unwrap(), &["--backend", "gpu"]),
        &["gpu", "scalar, simd, auto"],
    );

    let bytes = std::fs::read(model_path()).unwrap();
    let truncated = TempFile::new("truncated.safetensors", &bytes[..100]);
    for args in [
        vec![
            "model",
            "run",
            truncated.path(),
            "--input",
            fixture.to_str().unwrap(),
        ],
        vec!["model", "inspect", truncated.path()],
    ] {
        assert_fails(&cx(&args), &["cannot load model", truncated.path()]);
    }

    let absent = std::env::temp_dir().join(format!(
        "cx-cli-test-{}-absent.safetensors",
        std::process::id()
    ));
    let absent = absent.to_str().unwrap();
    assert_fails(
        &cx(&["model", "inspect", absent]),
        &["cannot read model", absent],
    );
}

#[test]
fn help_describes_input_backends_and_environment() {
    let out = cx(&["model", "run", "--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for needle in [
        "--input",
        "--backend",
        "--trace",
        "CX_BACKEND",
        "scalar",
        "simd",
        "auto",
        "\"x\"",
    ] {
        assert!(help.contains(needle), "help lacks {needle}: {help}");
    }
}
