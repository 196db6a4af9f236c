//! `cx-bench kernel --model FILE [--input X.json]` and `--export DIR`: the
//! binary on the bundled model for a short time, its JSON parsed. Nothing
//! here asserts a time beyond "positive" (the machine is shared).

use cx_benches::kernel_bench::KernelBenchReport;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("benches/ has a parent")
        .to_path_buf()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cx-kernel-model-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn cx_bench(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cx-bench"))
        .args(args)
        .current_dir(repo_root())
        .output()
        .expect("cx-bench runs")
}

fn run_model(extra: &[&str], json: &Path) -> KernelBenchReport {
    let json_arg = json.to_str().expect("utf-8 path");
    let mut args = vec![
        "kernel",
        "--model",
        "models/default.safetensors",
        "--batches",
        "1,4",
        "--repeats",
        "2",
        "--repeat-ms",
        "5",
        "--json",
        json_arg,
    ];
    args.extend_from_slice(extra);
    let out = cx_bench(&args);
    assert!(
        out.status.success(),
        "cx-bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("models/default.safetensors"), "{stdout}");
    serde_json::from_str(&std::fs::read_to_string(json).expect("report written"))
        .expect("report parses")
}

#[test]
fn model_file_is_timed_on_synthetic_features() {
    let dir = scratch("default");
    let report = run_model(&[], &dir.join("kernel.json"));
    let model = report.model.as_ref().expect("model recorded");
    // The bundled model reads feature schema v2: v1's 3128 columns and the
    // store section's 18.
    assert_eq!(model.widths.first(), Some(&3146));
    assert_eq!(model.widths.last(), Some(&16));
    assert!(model.input.contains("synthetic"), "{}", model.input);
    assert_eq!(report.rows.len(), 4, "2 batches x 2 kernels");
    for row in &report.rows {
        assert_eq!(row.shape.inputs, 3146);
        assert!(row.us_per_sample.median > 0.0, "{row:?}");
    }
    let rates = &report.firing_rates[0].layer_rates;
    assert_eq!(rates.len(), 2);
    assert!(rates.iter().all(|r| (0.0..=1.0).contains(r)), "{rates:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn model_file_takes_input_rows_and_refuses_bad_ones() {
    let dir = scratch("input");
    let input = dir.join("x.json");
    std::fs::write(
        &input,
        serde_json::to_string(&vec![vec![0.0_f32; 3146]; 2]).unwrap(),
    )
    .unwrap();
    let report = run_model(
        &["--input", input.to_str().unwrap()],
        &dir.join("kernel.json"),
    );
    assert_eq!(report.model.as_ref().unwrap().input_rows, 2);
    std::fs::write(&input, "[[1.0, 2.0]]").unwrap();
    let out = cx_bench(&[
        "kernel",
        "--model",
        "models/default.safetensors",
        "--input",
        input.to_str().unwrap(),
        "--quick",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--input"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn export_writes_the_bench_network_and_reference() {
    let dir = scratch("export");
    let out = cx_bench(&[
        "kernel",
        "--shapes",
        "64x256x16",
        "--export",
        dir.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let model = cx_model::SnnModel::load(dir.join("bench-64x256x16.safetensors")).expect("loads");
    assert_eq!(
        (model.inputs(), model.outputs(), model.steps()),
        (64, 16, 8)
    );
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("bench-64x256x16.ref.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(reference["inputs"].as_array().unwrap().len(), 64);
    assert_eq!(reference["spike_count"][0].as_array().unwrap().len(), 16);
    let _ = std::fs::remove_dir_all(dir);
}
