//! `cx-bench all`: every benchmark in one process, into one folder, with a
//! summary of where the targets stand ([`run_all`]).
//!
//! # Parts, in order
//!
//! 1. The machine ([`MachineInfo::detect`]).
//! 2. The kernel benchmark ([`run_kernel_bench`]): `kernel.json`,
//!    `kernel.md`.
//! 3. The engine benchmark ([`run_engine_bench`]): `engine.json`,
//!    `engine.md`.
//! 4. The stall probe ([`run_stall_probe`]), every core at once: how
//!    steadily this machine runs a fixed work unit, the floor under every
//!    tail latency below: `stall.json`, `stall.md`.
//! 5. The load part, against servers started in this process (one
//!    worker; see `local` for how threads are pinned):
//!    - a sweep of offered rates, up until the server no longer keeps up
//!      (its capacity: the highest achieved rate): `sweep.json`,
//!      `sweep.svg`;
//!    - fixed-rate runs at half the reference rate (`--rate`, the issue's
//!      150k requests/s by default): `load-half.json`;
//!    - the bare echo loop (`echo: true`, the `echo` mix) at the same
//!      rate, alternating with the half-load runs: `echo.json`, with the
//!      server's latency over the echo's within each repeat;
//!    - fixed-rate runs at twice the server's capacity against a server
//!      with a small engine `in_flight_max`, which must shed load with
//!      `overloaded`: `load-overload.json`.
//!    - the loopback floor: sockperf's TCP round trip at the half-load
//!      rate on the same cores, when sockperf is installed
//!      ([`LoopbackFloor`]), in the summary.
//! 6. The summary: `summary.md` and `summary.json` ([`AllReport`]), with
//!    the stall probe's fluid-queue estimate of the wait at half load.
//! 7. Every output read back ([`verify_outputs`]).
//!
//! A part that fails is recorded in [`AllReport::errors`] and the others
//! go on; so is a run whose connections broke, whose answers could not be
//! read, or (at half load, and for the echo) that was answered not at all.
//! Load itself (slow answers, `overloaded`, unanswered requests) is a
//! measurement, never an error. The `cx-bench` binary exits non-zero when
//! any error was recorded.
//!
//! Outputs of an earlier run in the folder are removed first (only the
//! files named above), so that a part that fails leaves no stale result.
//!
//! Quick mode (`--quick`) runs every part with tiny rates and windows: a
//! smoke test that everything runs and every output reads back; it
//! assesses no target.

mod floor;
mod local;
mod plan;
mod report;
mod verify;

pub use floor::LoopbackFloor;
pub use plan::{
    AllOptions, AllPlan, AllSettings, DEFAULT_OUT_DIR, LOAD_REPEATS_MAX, TARGET_RATE_PER_S,
};
pub use report::{
    AllReport, EchoReport, EngineHighlight, KernelHighlight, LoadSeries, PartError, Pinning,
    SeriesSummary, ServerSetup, StallHighlight, SweepHighlight, SweepPoint, Target, TargetStatus,
    ECHO_RATIO_TARGET, HALF_P999_TARGET_US, HALF_P99_TARGET_US, OVERLOAD_P99_TARGET_US,
};
pub use verify::verify_outputs;

use crate::engine_bench::run_engine_bench;
use crate::error::{Error, Result};
use crate::kernel_bench::run_kernel_bench;
use crate::load::{write_json, write_text};
use crate::machine::MachineInfo;
use crate::stall::run_stall_probe;
use report::Parts;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Every file `cx-bench all` may write, in the order it writes them.
pub const OUTPUT_FILES: [&str; 13] = [
    "kernel.json",
    "kernel.md",
    "engine.json",
    "engine.md",
    "stall.json",
    "stall.md",
    "sweep.json",
    "sweep.svg",
    "load-half.json",
    "echo.json",
    "load-overload.json",
    "summary.md",
    "summary.json",
];

/// The files written so far and the errors met, as the parts go.
pub(crate) struct Outputs {
    dir: PathBuf,
    files: Vec<String>,
    errors: Vec<PartError>,
}

impl Outputs {
    fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            files: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// The path of output `name`.
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// `result`'s value, or `None` with its error recorded against `part`.
    fn record<T, E: Into<Error>>(
        &mut self,
        part: &str,
        result: std::result::Result<T, E>,
    ) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(e) => {
                self.errors.push(local::part_error(part, &e.into()));
                None
            }
        }
    }

    /// Records a problem of `part`.
    fn error(&mut self, part: &str, error: String) {
        self.errors.push(PartError {
            part: part.into(),
            error,
        });
    }

    /// Writes `part`'s report as `{part}.json` and its markdown as
    /// `{part}.md`, recording each.
    fn write_report(&mut self, part: &str, report: &impl serde::Serialize, md: &str) {
        let json_name = format!("{part}.json");
        let json = write_json(&self.path(&json_name), "--out", report);
        self.wrote(part, &json_name, json);
        let md_name = format!("{part}.md");
        let written = write_text(&self.path(&md_name), "--out", md);
        self.wrote(part, &md_name, written);
    }

    /// Records that `name` was written, or why not.
    fn wrote<E: Into<Error>>(
        &mut self,
        part: &str,
        name: &str,
        result: std::result::Result<(), E>,
    ) {
        if self.record(part, result).is_some() {
            self.files.push(name.into());
        }
    }
}

/// Creates `dir` and removes the outputs an earlier run left there.
fn prepare_dir(dir: &Path) -> Result<()> {
    let file_error = |path: &Path, op, source| {
        Error::Load(cx_load::Error::File {
            option: "--out",
            path: path.display().to_string(),
            op,
            source,
        })
    };
    std::fs::create_dir_all(dir).map_err(|e| file_error(dir, "create it", e))?;
    for name in OUTPUT_FILES {
        let path = dir.join(name);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(file_error(&path, "remove the earlier run's file", e));
            }
            _ => {}
        }
    }
    Ok(())
}

/// The loopback floor on the cores the load part used (the first two this
/// process may run on, when pinning), and a note when there is none.
fn run_floor(plan: &AllPlan, out: &mut Outputs) -> (Option<LoopbackFloor>, String) {
    if plan.progress {
        eprintln!("== loopback floor (sockperf)");
    }
    let cores: Vec<usize> = if plan.settings.pin {
        core_affinity::get_core_ids()
            .unwrap_or_default()
            .iter()
            .map(|c| c.id)
            .collect()
    } else {
        Vec::new()
    };
    let s = &plan.settings;
    let measured = floor::measure_floor(
        s.half_rate_per_s,
        s.duration_s,
        cores.first().copied(),
        cores.get(1).copied(),
    );
    match measured {
        Ok(Some(floor)) => (Some(floor), String::new()),
        Ok(None) => (
            None,
            "not measured: sockperf is not installed (Debian package `sockperf`)".into(),
        ),
        Err(e) => {
            out.error("floor", e.clone());
            (None, format!("not measured: {e}"))
        }
    }
}

/// Runs every part (see the module documentation) into
/// `options.out_dir`, then reads every output back. Fails before running
/// anything if an option is bad or the folder cannot be made; otherwise
/// returns the report, whose [`AllReport::errors`] lists every part that
/// failed and every output that did not read back.
pub fn run_all(options: &AllOptions) -> Result<AllReport> {
    let plan = AllPlan::resolve(options)?;
    let started = Instant::now();
    prepare_dir(&plan.out_dir)?;
    let machine = MachineInfo::detect();
    let mut out = Outputs::new(&plan.out_dir);

    if plan.progress {
        eprintln!("== kernel benchmark");
    }
    let kernel = out.record("kernel", run_kernel_bench(&plan.kernel));
    if let Some(k) = &kernel {
        out.write_report("kernel", k, &k.to_markdown());
    }

    if plan.progress {
        eprintln!("== engine benchmark");
    }
    let engine = out.record("engine", run_engine_bench(&plan.engine));
    if let Some(e) = &engine {
        out.write_report("engine", e, &e.to_markdown());
    }

    if plan.progress {
        eprintln!("== stall probe");
    }
    let stall = out.record("stall", run_stall_probe(&plan.stall));
    if let Some(st) = &stall {
        out.write_report("stall", st, &st.to_markdown());
    }

    let load = local::run_load_part(&plan, &mut out);
    let (floor, floor_note) = run_floor(&plan, &mut out);

    let parts = Parts {
        kernel: kernel.as_ref(),
        engine: engine.as_ref(),
        sweep: load.sweep.as_ref(),
        half: load.half.as_ref(),
        overload: load.overload.as_ref(),
        echo: load.echo.as_ref(),
        stall: stall.as_ref(),
    };
    let mut files = out.files;
    files.extend(["summary.md".to_string(), "summary.json".to_string()]);
    let mut report = AllReport {
        command: plan.command.clone(),
        machine,
        quick: plan.quick,
        debug_build: cfg!(debug_assertions),
        out_dir: plan.out_dir.display().to_string(),
        settings: plan.settings.clone(),
        pinning: load.pinning,
        kernel: parts.kernel_highlights(),
        engine: parts.engine_highlight(),
        sweep: parts.sweep_highlight(),
        stall: parts.stall_highlight(&plan.settings),
        half: load.half.as_ref().map(|s| s.summary.clone()),
        overload: load.overload.as_ref().map(|s| s.summary.clone()),
        echo: load.echo.as_ref().map(|e| e.echo.summary.clone()),
        server_over_echo_p50: load.echo.as_ref().map(|e| e.server_over_echo_p50),
        server_over_echo_p99: load.echo.as_ref().map(|e| e.server_over_echo_p99),
        floor,
        floor_note,
        targets: parts.targets(&plan.settings, plan.quick),
        files,
        errors: out.errors,
        elapsed_s: started.elapsed().as_secs_f64(),
    };
    let md = write_text(
        &plan.out_dir.join("summary.md"),
        "--out",
        &report.to_markdown(),
    );
    let json = write_json(&plan.out_dir.join("summary.json"), "--out", &report);
    for written in [md, json] {
        if let Err(e) = written {
            report.errors.push(local::part_error("summary", &e.into()));
        }
    }
    for failure in verify_outputs(&plan.out_dir, &report.files) {
        report.errors.push(PartError {
            part: "verify".into(),
            error: failure,
        });
    }
    Ok(report)
}
