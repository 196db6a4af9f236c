//! `cx-bench all` (`cx_benches::all::run_all`) in quick mode, and the
//! `kernel`, `engine` and `all` subcommands of the binary.
//!
//! This machine is shared and noisy, so nothing here asserts a time, a
//! rate or a target's status: only that every part runs without error,
//! every output exists and parses back into its report type, and bad
//! options are refused with the option named. Quick mode's rates and
//! windows are tiny, so the whole run takes seconds even in a debug
//! build.

use cx_benches::all::{
    run_all, verify_outputs, AllOptions, AllReport, EchoReport, LoadSeries, TargetStatus,
    OUTPUT_FILES,
};
use cx_benches::alloc_count::CountingAllocator;
use cx_benches::engine_bench::EngineBenchReport;
use cx_benches::kernel_bench::KernelBenchReport;
use cx_benches::stall::StallReport;
use cx_load::SweepReport;
use serde::de::DeserializeOwned;
use std::path::Path;

mod common;
use common::{cx_bench, path, scratch};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn read<T: DeserializeOwned>(path: &Path) -> T {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{} exists: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} parses back: {e}", path.display()))
}

#[test]
fn quick_all_writes_every_output_and_each_parses_back() {
    let dir = scratch("quick");
    // A stale output of an earlier run is removed before anything runs.
    std::fs::write(dir.join("sweep.svg"), "stale").expect("write");
    let options = AllOptions {
        command: "tests/all.rs".into(),
        ..AllOptions::quick(&dir)
    };
    let report = run_all(&options).expect("the run starts");
    assert!(report.errors.is_empty(), "{:#?}", report.errors);
    assert_eq!(report.files, OUTPUT_FILES, "every output, in order");
    assert!(verify_outputs(&dir, &report.files).is_empty());

    let kernel: KernelBenchReport = read(&dir.join("kernel.json"));
    assert!(kernel.quick && !kernel.rows.is_empty());
    let engine: EngineBenchReport = read(&dir.join("engine.json"));
    assert!(engine.quick && engine.allocator_installed);
    let sweep: SweepReport = read(&dir.join("sweep.json"));
    assert!(!sweep.steps.is_empty());
    let svg = std::fs::read_to_string(dir.join("sweep.svg")).expect("the plot");
    assert!(svg.contains("<svg"), "the stale file was replaced");
    let stall: StallReport = read(&dir.join("stall.json"));
    assert!(!stall.cores.is_empty());
    assert!(stall.cores.iter().all(|c| c.units > 0 && c.windows > 0));
    let half: LoadSeries = read(&dir.join("load-half.json"));
    assert_eq!((half.name.as_str(), half.runs.len()), ("half", 1));
    assert!(!half.server.echo && half.summary.ok_total > 0);
    let overload: LoadSeries = read(&dir.join("load-overload.json"));
    assert_eq!(overload.server.in_flight_max, 16);
    let echo: EchoReport = read(&dir.join("echo.json"));
    assert!(echo.echo.server.echo && echo.echo.summary.ok_total > 0);
    assert!(echo.echo.runs.iter().all(|r| r.mix == "echo"));
    assert_eq!(
        echo.echo.summary.offered_rate_per_s,
        half.summary.offered_rate_per_s
    );
    assert!(echo.server_over_echo_p99.median > 0.0);

    let summary: AllReport = read(&dir.join("summary.json"));
    // summary.json is the report (compared field by field where floats
    // might lose a last bit in JSON).
    assert_eq!(
        (&summary.files, &summary.targets, &summary.errors),
        (&report.files, &report.targets, &report.errors)
    );
    assert_eq!(summary.command, "tests/all.rs");
    assert!(summary.quick);
    assert_eq!(summary.targets.len(), 7);
    assert!(
        summary
            .targets
            .iter()
            .all(|t| t.status == TargetStatus::NotAssessed),
        "quick mode assesses no target"
    );
    let md = std::fs::read_to_string(dir.join("summary.md")).expect("summary.md");
    let stall_summary = summary.stall.as_ref().expect("the stall probe ran");
    assert_eq!(stall_summary.cores.len(), stall.cores.len());
    assert!(
        stall_summary
            .cores
            .iter()
            .all(|c| c.window_slowdowns.is_empty()),
        "the summary leaves the window series to stall.json"
    );
    for needle in [
        "# cx-bench all",
        "tests/all.rs",
        "## Targets",
        "Threads:",
        "## The machine's steadiness",
    ] {
        assert!(md.contains(needle), "{needle}: {md}");
    }
    assert!(md.contains(&summary.machine.cpu_model), "{md}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn all_refuses_bad_options_before_running() {
    let dir = scratch("bad").join("never-made");
    let mut options = AllOptions::quick(&dir);
    options.rate_per_s = Some(-5.0);
    let message = run_all(&options).expect_err("refused").to_string();
    assert!(message.starts_with("--rate"), "{message}");
    assert!(!dir.exists(), "nothing ran, no folder made");
    // A file where the folder should be names --out.
    let file = scratch("out-file").join("a-file");
    std::fs::write(&file, "x").expect("write");
    let message = run_all(&AllOptions::quick(&file))
        .expect_err("refused")
        .to_string();
    assert!(message.starts_with("--out"), "{message}");
}

#[test]
fn the_binary_refuses_bad_options_naming_them() {
    let cases: [(&[&str], &str); 12] = [
        (&["stall", "--duration-s", "0"], "--duration-s"),
        (&["stall", "--window-ms", "0"], "--window-ms"),
        (&["stall", "--slow-factor", "0.5"], "--slow-factor"),
        (&["kernel", "--shapes", "64x256"], "--shapes"),
        (&["kernel", "--batches", "0"], "--batches"),
        (&["kernel", "--backends", "gpu"], "--backends"),
        (&["kernel", "--repeats", "0"], "--repeats"),
        (&["kernel", "--repeat-ms", "0"], "--repeat-ms"),
        (&["engine", "--batches", "0"], "--batches"),
        (&["engine", "--run-ms", "0"], "--run-ms"),
        (&["all", "--quick", "--rate", "0"], "--rate"),
        (
            &["all", "--quick", "--overload-in-flight-max", "0"],
            "--overload-in-flight-max",
        ),
    ];
    for (args, option) in cases {
        let (ok, _, stderr) = cx_bench(args);
        assert!(!ok, "{args:?} is refused");
        assert!(stderr.contains(option), "{args:?}: {stderr}");
    }
}

#[test]
fn the_binary_runs_kernel_and_engine_and_writes_their_reports() {
    let dir = scratch("kernel-engine");
    let (kernel_json, kernel_md) = (dir.join("k.json"), dir.join("k.md"));
    let (ok, stdout, stderr) = cx_bench(&[
        "kernel",
        "--quick",
        "--shapes",
        "64x256x16",
        "--batches",
        "1,4",
        "--backends",
        "simd",
        "--repeats",
        "1",
        "--repeat-ms",
        "1",
        "--json",
        path(&kernel_json),
        "--md",
        path(&kernel_md),
    ]);
    assert!(ok, "stdout:\n{stdout}\nstderr:\n{stderr}");
    let kernel: KernelBenchReport = read(&kernel_json);
    assert_eq!(kernel.rows.len(), 2, "one shape, two batches, one kernel");
    let md = std::fs::read_to_string(&kernel_md).expect("kernel markdown");
    assert_eq!(md, stdout, "the markdown printed is the one written");

    let (engine_json, engine_md) = (dir.join("e.json"), dir.join("e.md"));
    let (ok, stdout, stderr) = cx_bench(&[
        "engine",
        "--quick",
        "--quiet",
        "--batches",
        "4",
        "--repeats",
        "1",
        "--run-ms",
        "1",
        "--no-cache-row",
        "--json",
        path(&engine_json),
        "--md",
        path(&engine_md),
    ]);
    assert!(ok, "stdout:\n{stdout}\nstderr:\n{stderr}");
    let engine: EngineBenchReport = read(&engine_json);
    assert_eq!(engine.rows.len(), 2, "batch 4 and the naive path");
    // The binary installs the counting allocator.
    assert!(engine.allocator_installed);
    assert!(engine
        .rows
        .iter()
        .all(|r| r.allocations_per_request.is_some()));
    assert!(std::fs::read_to_string(&engine_md)
        .expect("engine markdown")
        .contains("| setup |"));
    let _ = std::fs::remove_dir_all(&dir);
}
