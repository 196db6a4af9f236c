//! What `cx-bench all` writes: the fixed-rate series ([`LoadSeries`],
//! `load-*.json`), the echo comparison ([`EchoReport`], `echo.json`), and
//! the summary ([`AllReport`], `summary.json` and `summary.md`) with each
//! of the targets and where it stands ([`Target`]).

use super::plan::AllSettings;
use crate::engine_bench::{EngineBenchReport, TARGET_BATCH};
use crate::kernel_bench::{KernelBackend, KernelBenchReport};
use crate::load::sweep::SweepReport;
use crate::load::LoadReport;
use crate::machine::MachineInfo;
use crate::spread::Spread;
use crate::stall::{queue_delay_ms, write_core_table, CoreStall, QueueDelay, StallReport};
use crate::Shape;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// At half the reference rate, the accepted requests' p99 target, µs.
pub const HALF_P99_TARGET_US: f64 = 100.0;
/// At half the reference rate, the accepted requests' p99.9 target, µs.
pub const HALF_P999_TARGET_US: f64 = 1000.0;
/// At 2x overload, the accepted requests' p99 must be under this, µs.
pub const OVERLOAD_P99_TARGET_US: f64 = 1000.0;
/// The server's latency over the bare echo loop's, at the same load, at
/// most this (p50 and p99).
pub const ECHO_RATIO_TARGET: f64 = 2.0;

/// How the in-process server of a series was set up.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServerSetup {
    /// The bare echo loop (`echo: true`) instead of decisions.
    pub echo: bool,
    /// Worker threads.
    pub workers: usize,
    /// The event loop that ran: `uring` or `epoll`.
    pub io: String,
    /// The engine's `batch.batch_max`.
    pub batch_max: usize,
    /// The engine's `in_flight_max`.
    pub in_flight_max: usize,
}

/// One fixed-rate series' figures over its repeats: each a median with
/// its range.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SeriesSummary {
    /// The rate offered, requests per second.
    pub offered_rate_per_s: f64,
    /// Repeats that ran.
    pub repeats: usize,
    /// Answers per second.
    pub achieved_rate_per_s: Spread,
    /// The accepted requests' p50 latency, µs.
    pub p50_us: Spread,
    /// The accepted requests' p99 latency, µs.
    pub p99_us: Spread,
    /// The accepted requests' p99.9 latency, µs.
    pub p999_us: Spread,
    /// Requests due in the windows, over all repeats.
    pub scheduled_total: u64,
    /// Accepted (decided; with the echo mix, echoed), over all repeats.
    pub ok_total: u64,
    /// Answered `overloaded`, over all repeats.
    pub overloaded_total: u64,
    /// Failed in any way (errors, `overloaded` included, unanswered,
    /// unsent), over all repeats.
    pub failed_total: u64,
    /// The generator's send lag p99, µs (large: the generator or the depth
    /// held requests back).
    pub send_lag_p99_us: Spread,
    /// Runs whose generator's send lag p99 was over the SLO: invalid, so
    /// the series' figures are not the server's while any is (0 in
    /// summaries written before this was counted).
    #[serde(default)]
    pub generator_lagged_runs: usize,
}

impl SeriesSummary {
    /// The figures of `runs` offered at `offered_rate_per_s`, judged
    /// against the SLO `slo_us` for the generator's lag.
    pub fn of(offered_rate_per_s: f64, runs: &[LoadReport], slo_us: f64) -> Self {
        let us = |f: fn(&LoadReport) -> u64| Spread::of(runs.iter().map(|r| f(r) as f64 / 1e3));
        Self {
            offered_rate_per_s,
            repeats: runs.len(),
            achieved_rate_per_s: Spread::of(runs.iter().map(|r| r.achieved_rate_per_s)),
            p50_us: us(|r| r.latency_ok.p50_ns),
            p99_us: us(|r| r.latency_ok.p99_ns),
            p999_us: us(|r| r.latency_ok.p999_ns),
            scheduled_total: runs.iter().map(|r| r.scheduled).sum(),
            ok_total: runs.iter().map(|r| r.ok).sum(),
            overloaded_total: runs.iter().map(|r| r.overloaded).sum(),
            failed_total: runs.iter().map(LoadReport::failed).sum(),
            send_lag_p99_us: us(|r| r.send_lag.p99_ns),
            generator_lagged_runs: runs.iter().filter(|r| !r.generator_kept_up(slo_us)).count(),
        }
    }
}

/// A fixed-rate series: the same load on a fresh server, repeated
/// (`load-half.json`, `load-overload.json`, and inside `echo.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoadSeries {
    /// Its short name: `half`, `overload` or `echo`.
    pub name: String,
    /// What it measures, for people.
    pub what: String,
    /// The server it ran against.
    pub server: ServerSetup,
    /// Its figures over the repeats.
    pub summary: SeriesSummary,
    /// Every repeat's full report, in order.
    pub runs: Vec<LoadReport>,
}

/// The bare echo loop at the half-load rate, and the server's latency
/// over it within each repeat (`echo.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EchoReport {
    /// The echo runs.
    pub echo: LoadSeries,
    /// The server's p50 over the echo's, repeat by repeat (runs paired in
    /// order; a repeat missing either side is left out).
    pub server_over_echo_p50: Spread,
    /// The server's p99 over the echo's, repeat by repeat.
    pub server_over_echo_p99: Spread,
}

impl EchoReport {
    /// `echo` against the decision server's `half` series at the same rate.
    pub fn new(echo: LoadSeries, half: Option<&LoadSeries>) -> Self {
        let ratio = |f: fn(&LoadReport) -> u64| {
            Spread::of(half.into_iter().flat_map(|h| {
                h.runs
                    .iter()
                    .zip(&echo.runs)
                    .map(move |(s, e)| f(s) as f64 / (f(e) as f64).max(1.0))
            }))
        };
        Self {
            server_over_echo_p50: ratio(|r| r.latency_ok.p50_ns),
            server_over_echo_p99: ratio(|r| r.latency_ok.p99_ns),
            echo,
        }
    }
}

/// Where the threads ran.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Pinning {
    /// Whether pinning was asked for (not `--no-pin`).
    pub requested: bool,
    /// The core every server worker was pinned to, if all pins held.
    pub server_core: Option<usize>,
    /// The core every load-generator thread was pinned to, if all pins
    /// held.
    pub generator_core: Option<usize>,
    /// What happened, for people (why not pinned, which pin failed).
    pub note: String,
}

/// Whether a target is met.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetStatus {
    /// Met.
    Met,
    /// Not met.
    NotMet,
    /// Not assessed: quick mode, or its part did not run.
    NotAssessed,
}

impl TargetStatus {
    fn label(self) -> &'static str {
        match self {
            Self::Met => "met",
            Self::NotMet => "**NOT met**",
            Self::NotAssessed => "not assessed",
        }
    }
}

/// One target of the issue and where it stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Target {
    /// The target, as stated.
    pub target: String,
    /// What was measured.
    pub measured: String,
    /// Met, not met, or not assessed.
    pub status: TargetStatus,
}

/// A part that failed, or an output that did not read back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartError {
    /// The part: `kernel`, `engine`, `sweep`, `half`, `overload`, `echo`,
    /// `summary`, or `verify`.
    pub part: String,
    /// What went wrong.
    pub error: String,
}

/// A SIMD kernel cell, as the summary quotes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KernelHighlight {
    /// The network's shape.
    pub shape: Shape,
    /// Rows per call.
    pub batch: usize,
    /// SIMD µs per sample.
    pub simd_us_per_sample: Spread,
    /// Scalar over SIMD time, within each repeat.
    pub speedup_vs_scalar: Option<Spread>,
}

/// The engine benchmark, as the summary quotes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EngineHighlight {
    /// The SIMD batch with the highest median throughput.
    pub best_batch: usize,
    /// Its decisions per second.
    pub best_decisions_per_s: Spread,
    /// Decisions per second at the engine target's batch, if measured.
    pub target_batch_decisions_per_s: Option<Spread>,
    /// Tick p99 at that batch, µs.
    pub target_batch_tick_us_p99: Option<Spread>,
    /// The most heap allocations per request of any setup; `None`: not
    /// counted (no counting allocator).
    pub allocations_per_request_max: Option<f64>,
}

/// One sweep step, as the summary quotes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepPoint {
    /// Offered, requests per second.
    pub offered_rate_per_s: f64,
    /// Achieved, requests per second.
    pub achieved_rate_per_s: f64,
    /// The accepted requests' p99, µs.
    pub p99_us: f64,
    /// Failed requests.
    pub failed: u64,
    /// Whether the step met the SLO.
    pub within_slo: bool,
    /// Whether the generator kept up (else the step is invalid).
    #[serde(default = "kept_up")]
    pub generator_kept_up: bool,
}

fn kept_up() -> bool {
    true
}

/// The sweep, as the summary quotes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepHighlight {
    /// The highest offered rate within the SLO.
    pub best_rate_per_s: Option<f64>,
    /// The rate achieved at that step.
    pub best_achieved_rate_per_s: Option<f64>,
    /// The highest rate any step achieved: the server's capacity.
    #[serde(default)]
    pub capacity_per_s: Option<f64>,
    /// Every step.
    pub steps: Vec<SweepPoint>,
}

/// The stall probe in the summary: each core's figures (without the
/// window series, which `stall.json` keeps), and what its windows predict
/// for the server at half load.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StallHighlight {
    /// The window, ms.
    pub window_ms: u64,
    /// The slow threshold.
    pub slow_factor: f64,
    /// Each core, in the order the probe ran them (the server's first).
    pub cores: Vec<CoreStall>,
    /// Steal time the guest reported over the probe, ms.
    pub steal_ms: Option<f64>,
    /// Half the reference rate over the server's capacity, if the sweep
    /// measured one.
    pub half_load_fraction: Option<f64>,
    /// The fluid-queue wait at that load, from the first core's windows.
    pub half_load_wait: Option<QueueDelay>,
}

/// Everything `cx-bench all` did (`summary.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AllReport {
    /// The command line.
    pub command: String,
    /// The machine.
    pub machine: MachineInfo,
    /// Quick mode (no target is assessed).
    pub quick: bool,
    /// Whether this library was built with debug assertions.
    pub debug_build: bool,
    /// The output folder.
    pub out_dir: String,
    /// The load settings.
    pub settings: AllSettings,
    /// Where the threads ran.
    pub pinning: Pinning,
    /// The SIMD kernel's cells, if the kernel benchmark ran.
    pub kernel: Vec<KernelHighlight>,
    /// The engine benchmark, if it ran.
    pub engine: Option<EngineHighlight>,
    /// The sweep, if it ran.
    pub sweep: Option<SweepHighlight>,
    /// The stall probe, if it ran.
    #[serde(default)]
    pub stall: Option<StallHighlight>,
    /// At half the reference rate, if it ran.
    pub half: Option<SeriesSummary>,
    /// At 2x overload, if it ran.
    pub overload: Option<SeriesSummary>,
    /// The bare echo loop at half the reference rate, if it ran.
    pub echo: Option<SeriesSummary>,
    /// The server's p50 over the echo's, within each repeat.
    pub server_over_echo_p50: Option<Spread>,
    /// The server's p99 over the echo's, within each repeat.
    pub server_over_echo_p99: Option<Spread>,
    /// The loopback floor (sockperf), if it ran.
    #[serde(default)]
    pub floor: Option<super::LoopbackFloor>,
    /// Why there is no floor, when there is none.
    #[serde(default)]
    pub floor_note: String,
    /// The targets.
    pub targets: Vec<Target>,
    /// The files written, relative to the output folder.
    pub files: Vec<String>,
    /// What failed (empty: every part ran and every output read back;
    /// outputs that failed to read back are added after `summary.json` is
    /// written, so they show only in the returned report and the exit
    /// status).
    pub errors: Vec<PartError>,
    /// Wall time up to the summary, s.
    pub elapsed_s: f64,
}

/// Everything the parts produced, for [`AllReport`].
pub(crate) struct Parts<'a> {
    pub kernel: Option<&'a KernelBenchReport>,
    pub engine: Option<&'a EngineBenchReport>,
    pub sweep: Option<&'a SweepReport>,
    pub half: Option<&'a LoadSeries>,
    pub overload: Option<&'a LoadSeries>,
    pub echo: Option<&'a EchoReport>,
    pub stall: Option<&'a StallReport>,
}

impl Parts<'_> {
    pub fn kernel_highlights(&self) -> Vec<KernelHighlight> {
        let Some(k) = self.kernel else {
            return Vec::new();
        };
        k.rows
            .iter()
            .filter(|r| r.backend == KernelBackend::Simd)
            .map(|r| KernelHighlight {
                shape: r.shape,
                batch: r.batch,
                simd_us_per_sample: r.us_per_sample,
                speedup_vs_scalar: r.speedup_vs_scalar,
            })
            .collect()
    }

    pub fn engine_highlight(&self) -> Option<EngineHighlight> {
        let e = self.engine?;
        let best = e.simd_row(e.summary.best_batch)?;
        let target = e.simd_row(TARGET_BATCH);
        Some(EngineHighlight {
            best_batch: best.batch,
            best_decisions_per_s: best.decisions_per_s,
            target_batch_decisions_per_s: target.map(|r| r.decisions_per_s),
            target_batch_tick_us_p99: target.map(|r| r.tick_us_p99),
            allocations_per_request_max: e
                .rows
                .iter()
                .filter_map(|r| r.allocations_per_request)
                .reduce(f64::max),
        })
    }

    pub fn sweep_highlight(&self) -> Option<SweepHighlight> {
        let s = self.sweep?;
        Some(SweepHighlight {
            best_rate_per_s: s.best_rate_per_s,
            best_achieved_rate_per_s: s.best_achieved_rate_per_s,
            capacity_per_s: s.capacity_per_s(),
            steps: s
                .steps
                .iter()
                .map(|step| SweepPoint {
                    offered_rate_per_s: step.report.offered_rate_per_s,
                    achieved_rate_per_s: step.report.achieved_rate_per_s,
                    p99_us: step.report.latency_ok.p99_ns as f64 / 1e3,
                    failed: step.report.failed(),
                    within_slo: step.within_slo,
                    generator_kept_up: step.generator_kept_up,
                })
                .collect(),
        })
    }

    /// The stall probe's figures, with the wait its first core's windows
    /// predict at half load when the sweep measured the capacity.
    pub fn stall_highlight(&self, settings: &AllSettings) -> Option<StallHighlight> {
        let st = self.stall?;
        let half_load_fraction = self
            .sweep
            .and_then(SweepReport::capacity_per_s)
            .map(|capacity| settings.half_rate_per_s / capacity)
            .filter(|&u| u > 0.0 && u < 1.0);
        let half_load_wait = half_load_fraction.and_then(|u| {
            let first = st.cores.first()?;
            Some(queue_delay_ms(
                &first.window_slowdowns,
                st.window_ms as f64,
                u,
            ))
        });
        Some(StallHighlight {
            window_ms: st.window_ms,
            slow_factor: st.slow_factor,
            cores: st
                .cores
                .iter()
                .map(|c| CoreStall {
                    window_slowdowns: Vec::new(),
                    ..c.clone()
                })
                .collect(),
            steal_ms: st.steal_ms,
            half_load_fraction,
            half_load_wait,
        })
    }

    /// Each of the targets and where it stands (none is assessed
    /// in quick mode).
    pub fn targets(&self, settings: &AllSettings, quick: bool) -> Vec<Target> {
        let judge = |ok: Option<bool>| match (quick, ok) {
            (false, Some(true)) => TargetStatus::Met,
            (false, Some(false)) => TargetStatus::NotMet,
            _ => TargetStatus::NotAssessed,
        };
        let not_run = |part: &str| format!("not measured ({part} did not run)");
        let half = kilo(settings.half_rate_per_s);
        let mut targets = Vec::new();

        let reference = settings.reference_rate_per_s;
        let (measured, ok) = match self.sweep.map(|s| (s, s.capacity_per_s())) {
            Some((_, Some(capacity))) => (
                format!(
                    "capacity {}/s (the sweep's highest achieved rate once a step saturated the server)",
                    kilo(capacity)
                ),
                Some(capacity >= reference * 0.999),
            ),
            Some((s, None)) => {
                let top = s.steps.last().map_or(0.0, |st| st.report.achieved_rate_per_s);
                (
                    format!(
                        "no step saturated the server; it kept up with every rate offered, up to {}/s",
                        kilo(top)
                    ),
                    Some(top >= reference * 0.999),
                )
            }
            None => (not_run("the sweep"), None),
        };
        targets.push(Target {
            target: format!(">= {}/s, whatever the latency (the sweep)", kilo(reference)),
            measured,
            status: judge(ok),
        });

        let (measured, ok) = match self.sweep {
            Some(s) => match (s.best_rate_per_s, s.best_achieved_rate_per_s) {
                (Some(best), Some(achieved)) => (
                    format!(
                        "highest rate within the SLO: {}/s offered, {}/s achieved",
                        kilo(best),
                        kilo(achieved)
                    ),
                    Some(best >= reference * 0.999),
                ),
                _ => ("no sweep step met the SLO".into(), Some(false)),
            },
            None => (not_run("the sweep"), None),
        };
        targets.push(Target {
            target: format!(
                ">= {}/s with accepted p99 <= {} µs and <= {}% failed (the sweep)",
                kilo(reference),
                settings.slo_us,
                settings.failed_ratio_max * 100.0
            ),
            measured,
            status: judge(ok),
        });

        let p = |s: &Spread| format!("{} µs", s.show(1));
        let series = |s: Option<&LoadSeries>, f: fn(&SeriesSummary) -> &Spread, max: f64| {
            s.map(|s| {
                let v = f(&s.summary);
                (
                    format!("{} over {}", p(v), repeats(s.summary.repeats)),
                    v.median <= max,
                    s.summary.generator_lagged_runs,
                )
            })
        };
        // A series with a run whose generator lagged is not assessed: its
        // figures are partly the generator's.
        let row = |target: String, found: Option<(String, bool, usize)>, part: &str| {
            let (measured, ok) = match found {
                Some((m, _, lagged)) if lagged > 0 => (
                    format!(
                        "{m}; INVALID: the generator lagged more than the SLO in {lagged} run(s)"
                    ),
                    None,
                ),
                Some((m, ok, _)) => (m, Some(ok)),
                None => (not_run(part), None),
            };
            Target {
                target,
                measured,
                status: judge(ok),
            }
        };
        targets.push(row(
            format!("at half load ({half}/s): accepted p99 <= {HALF_P99_TARGET_US} µs"),
            series(self.half, |s| &s.p99_us, HALF_P99_TARGET_US),
            "the half-load run",
        ));
        targets.push(row(
            format!("at half load ({half}/s): accepted p99.9 <= {HALF_P999_TARGET_US} µs"),
            series(self.half, |s| &s.p999_us, HALF_P999_TARGET_US),
            "the half-load run",
        ));

        let overload = self.overload.map(|o| &o.summary);
        let (rate, in_flight) = self.overload.map_or_else(
            || ("-".to_string(), settings.overload_in_flight_max),
            |o| (kilo(o.summary.offered_rate_per_s), o.server.in_flight_max),
        );
        targets.push(row(
            format!(
                "at 2x overload ({rate}/s, in_flight_max {in_flight}): sheds load with `overloaded`"
            ),
            overload.map(|s| {
                (
                    format!(
                        "{} of {} requests answered `overloaded`",
                        s.overloaded_total, s.scheduled_total
                    ),
                    s.overloaded_total > 0,
                    0,
                )
            }),
            "the overload run",
        ));
        targets.push(row(
            format!("at 2x overload: accepted p99 < {OVERLOAD_P99_TARGET_US} µs"),
            overload.map(|s| {
                (
                    format!("{} over {}", p(&s.p99_us), repeats(s.repeats)),
                    s.p99_us.median < OVERLOAD_P99_TARGET_US,
                    s.generator_lagged_runs,
                )
            }),
            "the overload run",
        ));
        targets.push(row(
            format!(
                "server latency <= {ECHO_RATIO_TARGET}x the bare echo loop's at {half}/s (p50 and p99)"
            ),
            self.echo.filter(|e| e.server_over_echo_p99.median > 0.0).map(|e| {
                let (a, b) = (&e.server_over_echo_p50, &e.server_over_echo_p99);
                (
                    format!("p50 {}x, p99 {}x (within each repeat)", a.show(2), b.show(2)),
                    a.median <= ECHO_RATIO_TARGET && b.median <= ECHO_RATIO_TARGET,
                    e.echo.summary.generator_lagged_runs
                        + self.half.map_or(0, |h| h.summary.generator_lagged_runs),
                )
            }),
            "the echo comparison",
        ));
        targets
    }
}

/// `" (INVALID: ...)"` when some of a series' runs had a generator that
/// lagged more than the SLO, else nothing.
fn lagged_note(s: &SeriesSummary) -> String {
    if s.generator_lagged_runs == 0 {
        return String::new();
    }
    format!(
        " (INVALID: the generator lagged more than the SLO in {} of {} runs)",
        s.generator_lagged_runs, s.repeats
    )
}

/// `75k`: a rate for people.
pub(crate) fn kilo(rate: f64) -> String {
    if rate >= 10_000.0 {
        format!("{:.0}k", rate / 1e3)
    } else if rate >= 1000.0 {
        format!("{:.1}k", rate / 1e3)
    } else {
        format!("{rate:.0}")
    }
}

impl AllReport {
    /// The summary as markdown (`summary.md`).
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        self.write_header(&mut md);
        self.write_targets(&mut md);
        self.write_stall(&mut md);
        self.write_sweep(&mut md);
        self.write_series(&mut md);
        self.write_kernel_engine(&mut md);
        self.write_errors(&mut md);
        md
    }

    fn write_header(&self, md: &mut String) {
        let _ = writeln!(md, "# cx-bench all\n");
        let _ = writeln!(md, "- Command: `{}`", self.command);
        let _ = writeln!(md, "- Machine: {}", self.machine.summary());
        let build = if self.debug_build {
            "**debug build** (debug assertions on): the figures are not representative"
        } else {
            "release (debug assertions off)"
        };
        let _ = writeln!(md, "- Build: {build}");
        let mode = if self.quick {
            "quick: tiny rates and windows, a smoke run of every part; no target is assessed"
        } else {
            "full"
        };
        let _ = writeln!(md, "- Mode: {mode}");
        let _ = writeln!(md, "- Threads: {}", self.pinning.note);
        let _ = writeln!(
            md,
            "- Time: {:.1} s up to this summary; outputs in `{}`\n",
            self.elapsed_s, self.out_dir
        );
        let _ = writeln!(
            md,
            "Every figure is a median over repeats with its range in brackets. The machines are shared and noisy: compare runs by medians, and read ratios taken within one repeat.\n"
        );
    }

    fn write_targets(&self, md: &mut String) {
        let _ = writeln!(md, "## Targets\n");
        let _ = writeln!(md, "| target | measured | status |");
        let _ = writeln!(md, "| --- | --- | --- |");
        for t in &self.targets {
            let _ = writeln!(
                md,
                "| {} | {} | {} |",
                t.target,
                t.measured,
                t.status.label()
            );
        }
        md.push('\n');
    }

    fn write_stall(&self, md: &mut String) {
        let _ = writeln!(
            md,
            "## The machine's steadiness (`stall.md`, `stall.json`)\n"
        );
        let Some(st) = &self.stall else {
            let _ = writeln!(md, "Did not run (see Errors).\n");
            return;
        };
        let _ = writeln!(
            md,
            "Every core at once times the same in-cache work unit; a window ({} ms) is slow when its units take at least {}x the fastest unit of the run. No I/O, no lock: whatever slows these windows slows the server too.\n",
            st.window_ms, st.slow_factor
        );
        write_core_table(md, &st.cores);
        if let Some(steal) = st.steal_ms {
            let _ = writeln!(
                md,
                "\nSteal time the guest kernel reported meanwhile: {steal:.0} ms."
            );
        }
        match (st.half_load_fraction, &st.half_load_wait) {
            (Some(u), Some(wait)) => {
                let measured = self.half.as_ref().map_or_else(
                    || "not measured".into(),
                    |h| format!("{} µs", h.p99_us.show(1)),
                );
                let _ = writeln!(
                    md,
                    "\nHalf load is {:.0}% of the server's capacity (the sweep's highest achieved rate). A fluid queue replaying the first core's windows at that load waits p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms, from the machine alone (a coarse model: 10 ms windows, none of the server's own work; it gives the scale, and has erred high); the server's measured p99 at half load: {measured}.\n",
                    100.0 * u,
                    wait.delay_ms_p99,
                    wait.delay_ms_p999,
                    wait.delay_ms_max
                );
            }
            _ => {
                let _ = writeln!(
                    md,
                    "\nNo capacity was measured (no sweep step saturated the server), so no wait is estimated.\n"
                );
            }
        }
    }

    fn write_sweep(&self, md: &mut String) {
        let s = &self.settings;
        let _ = writeln!(md, "## Load: the sweep (`sweep.json`, `sweep.svg`)\n");
        let _ = writeln!(
            md,
            "One server worker, decisions (bundled model and catalog). Steps of {} s after {} s of warm-up, from {}/s by x{} up to {}/s, {} connections of depth {}; a step meets the SLO when the accepted p99 is <= {} µs and <= {}% failed; the sweep stops after {} steps in a row miss, or at a miss where the server no longer keeps up (achieved < 90% of offered).\n",
            s.step_s,
            s.warmup_s,
            kilo(s.start_rate_per_s),
            s.step_factor,
            kilo(s.max_rate_per_s),
            s.connections,
            s.depth,
            s.slo_us,
            s.failed_ratio_max * 100.0,
            s.stop_after_misses
        );
        let Some(sweep) = &self.sweep else {
            let _ = writeln!(md, "Did not run (see Errors).\n");
            return;
        };
        match sweep.capacity_per_s {
            Some(capacity) => {
                let _ = writeln!(
                    md,
                    "The server's capacity, the highest rate any step achieved once a step saturated it: {}/s.\n",
                    kilo(capacity)
                );
            }
            None => {
                let _ = writeln!(
                    md,
                    "No step saturated the server: its capacity is above the rates offered.\n"
                );
            }
        }
        let _ = writeln!(
            md,
            "| offered/s | achieved/s | accepted p99 µs | failed | SLO |"
        );
        let _ = writeln!(md, "| ---: | ---: | ---: | ---: | --- |");
        for p in &sweep.steps {
            let _ = writeln!(
                md,
                "| {} | {} | {:.1} | {} | {} |",
                kilo(p.offered_rate_per_s),
                kilo(p.achieved_rate_per_s),
                p.p99_us,
                p.failed,
                match (p.generator_kept_up, p.within_slo) {
                    (false, _) => "invalid: the generator lagged",
                    (true, true) => "within",
                    (true, false) => "misses",
                }
            );
        }
        md.push('\n');
    }

    /// The loopback floor, and the half-load decisions' p50 over it.
    fn write_floor(&self, md: &mut String) {
        let Some(f) = &self.floor else {
            let _ = writeln!(md, "\nLoopback floor: {}.", self.floor_note);
            return;
        };
        let _ = writeln!(
            md,
            "\nLoopback floor (`{}`, on the server's and the generator's cores): round trip p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs.",
            f.command, f.p50_us, f.p99_us, f.p999_us
        );
        if let Some(half) = &self.half {
            let _ = writeln!(
                md,
                "Decisions at half load over the floor: p50 {:.1}x, p99 {:.1}x.",
                half.p50_us.median / f.p50_us.max(f64::MIN_POSITIVE),
                half.p99_us.median / f.p99_us.max(f64::MIN_POSITIVE)
            );
        }
    }

    fn write_series(&self, md: &mut String) {
        let s = &self.settings;
        let _ = writeln!(
            md,
            "## Load: fixed rates (`load-half.json`, `load-overload.json`, `echo.json`)\n"
        );
        let _ = writeln!(
            md,
            "Each run: {} s after {} s of warm-up, {} connections of depth {}, on a fresh server; {}, the half-load and echo runs alternating. Latencies are of the accepted requests, from when each was due.\n",
            s.duration_s,
            s.warmup_s,
            s.connections,
            s.depth,
            repeats(s.load_repeats)
        );
        let _ = writeln!(
            md,
            "| run | offered/s | achieved/s | p50 µs | p99 µs | p99.9 µs | overloaded | failed | send lag p99 µs |"
        );
        let _ = writeln!(
            md,
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        );
        let rows = [
            ("half load, decisions", &self.half),
            (
                "2x overload, decisions, small in_flight_max",
                &self.overload,
            ),
            ("half load, bare echo loop", &self.echo),
        ];
        for (label, series) in rows {
            match series {
                Some(x) => {
                    let a = &x.achieved_rate_per_s;
                    let _ = writeln!(
                        md,
                        "| {label} | {} | {} [{}-{}] | {} | {} | {} | {} | {} | {:.1}{} |",
                        kilo(x.offered_rate_per_s),
                        kilo(a.median),
                        kilo(a.min),
                        kilo(a.max),
                        x.p50_us.show(1),
                        x.p99_us.show(1),
                        x.p999_us.show(1),
                        x.overloaded_total,
                        x.failed_total,
                        x.send_lag_p99_us.median,
                        lagged_note(x)
                    );
                }
                None => {
                    let _ = writeln!(md, "| {label} | did not run | | | | | | | |");
                }
            }
        }
        if let (Some(p50), Some(p99)) = (&self.server_over_echo_p50, &self.server_over_echo_p99) {
            let _ = writeln!(
                md,
                "\nServer over bare echo at the same load, within each repeat: p50 {}x, p99 {}x.",
                p50.show(2),
                p99.show(2)
            );
        }
        self.write_floor(md);
        md.push('\n');
    }

    fn write_kernel_engine(&self, md: &mut String) {
        let _ = writeln!(md, "## Kernel (`kernel.md`, `kernel.json`)\n");
        if self.kernel.is_empty() {
            let _ = writeln!(md, "Did not run (see Errors).\n");
        } else {
            let _ = writeln!(md, "| shape | batch | SIMD µs/sample | SIMD over scalar |");
            let _ = writeln!(md, "| --- | ---: | ---: | ---: |");
            for k in &self.kernel {
                let speedup = k
                    .speedup_vs_scalar
                    .map_or_else(|| "-".into(), |s| format!("{}x", s.show(0)));
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {speedup} |",
                    k.shape,
                    k.batch,
                    k.simd_us_per_sample.show(3)
                );
            }
            md.push('\n');
        }
        let _ = writeln!(md, "## Engine (`engine.md`, `engine.json`)\n");
        match &self.engine {
            Some(e) => {
                let _ = writeln!(
                    md,
                    "- Best SIMD batch: {} at {} decisions/s.",
                    e.best_batch,
                    kilo_spread(&e.best_decisions_per_s)
                );
                if let (Some(rate), Some(p99)) =
                    (&e.target_batch_decisions_per_s, &e.target_batch_tick_us_p99)
                {
                    let _ = writeln!(
                        md,
                        "- Batch {TARGET_BATCH}: {} decisions/s, tick p99 {} µs.",
                        kilo_spread(rate),
                        p99.show(1)
                    );
                }
                let allocations = e.allocations_per_request_max.map_or_else(
                    || "not counted (no counting allocator)".into(),
                    |a| format!("at most {a:.3}"),
                );
                let _ = writeln!(
                    md,
                    "- Heap allocations per request in steady state: {allocations}.\n"
                );
            }
            None => {
                let _ = writeln!(md, "Did not run (see Errors).\n");
            }
        }
    }

    fn write_errors(&self, md: &mut String) {
        let _ = writeln!(md, "## Errors\n");
        if self.errors.is_empty() {
            let _ = writeln!(md, "None: every part ran.\n");
        } else {
            for e in &self.errors {
                let _ = writeln!(md, "- {}: {}", e.part, e.error);
            }
            md.push('\n');
        }
        let _ = writeln!(md, "## Files\n");
        for f in &self.files {
            let _ = writeln!(md, "- `{f}`");
        }
    }
}

/// `1 repeat`, `3 repeats`.
fn repeats(n: usize) -> String {
    if n == 1 {
        "1 repeat".into()
    } else {
        format!("{n} repeats")
    }
}

fn kilo_spread(s: &Spread) -> String {
    format!("{} [{}-{}]", kilo(s.median), kilo(s.min), kilo(s.max))
}

#[cfg(test)]
mod tests {
    use super::kilo;

    #[test]
    fn rates_read_short() {
        assert_eq!(kilo(150_000.0), "150k");
        assert_eq!(kilo(4_000.0), "4.0k");
        assert_eq!(kilo(500.0), "500");
    }
}
