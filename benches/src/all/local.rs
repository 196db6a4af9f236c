//! The load part of `cx-bench all`: servers started in this process, the
//! load generator against them, and the pinning of both.
//!
//! # Pinning
//!
//! On a machine with at least two cores the process may use, every server
//! is started from a short-lived thread pinned to the first of them
//! ("core 0"), so its worker threads inherit that affinity, and every load
//! run happens on a thread pinned to the second ("core 1"), whose receiver
//! threads inherit it. The calling thread is never pinned. With fewer
//! cores, `--no-pin`, or a pin the OS refuses, the threads run unpinned
//! and the summary says so.

use super::plan::AllPlan;
use super::report::{EchoReport, LoadSeries, PartError, Pinning, SeriesSummary, ServerSetup};
use super::Outputs;
use crate::error::{Error, Result};
use crate::load::plot::write_sweep_svg;
use crate::load::sweep::step_line;
use crate::load::{
    run_sweep, run_with_pool, write_json, LoadConfig, LoadReport, Mix, RequestPool, SweepReport,
    INVALID_RESPONSE, RATE_PER_S_MAX,
};
use core_affinity::CoreId;
use cx_server::config::ServerConfig;
use cx_server::serve::Server;

/// The cores chosen, and what became of the pins.
struct Pinner {
    server: Option<CoreId>,
    generator: Option<CoreId>,
    requested: bool,
    notes: Vec<String>,
}

impl Pinner {
    /// The first two cores this process may use, if pinning is asked for
    /// and there are two.
    fn new(requested: bool) -> Self {
        let mut pinner = Self {
            server: None,
            generator: None,
            requested,
            notes: Vec::new(),
        };
        if !requested {
            pinner.notes.push("not pinned (--no-pin)".into());
            return pinner;
        }
        match core_affinity::get_core_ids() {
            None => pinner
                .notes
                .push("not pinned: the CPU affinity could not be read".into()),
            Some(ids) if ids.len() < 2 => pinner.notes.push(format!(
                "not pinned: the process may run on {} core(s), and pinning needs 2",
                ids.len()
            )),
            Some(ids) => {
                pinner.server = ids.first().copied();
                pinner.generator = ids.get(1).copied();
            }
        }
        pinner
    }

    /// Pins the calling thread to `core`, if any; a refusal is noted and
    /// the thread goes on unpinned. Returns whether it is pinned.
    fn pin(core: Option<CoreId>) -> bool {
        core.is_some_and(core_affinity::set_for_current)
    }

    /// Notes a pin that failed, once per role, and stops pinning that role.
    fn failed(&mut self, role: &str) {
        let core = match role {
            "server" => self.server.take(),
            _ => self.generator.take(),
        };
        if let Some(core) = core {
            self.notes.push(format!(
                "the {role} could not be pinned to core {}: it ran unpinned from then on",
                core.id
            ));
        }
    }

    fn report(&self, server_pinned: bool, generator_pinned: bool) -> Pinning {
        let server_core = self.server.filter(|_| server_pinned).map(|c| c.id);
        let generator_core = self.generator.filter(|_| generator_pinned).map(|c| c.id);
        let mut notes = Vec::new();
        if let (Some(s), Some(g)) = (server_core, generator_core) {
            notes.push(format!(
                "the server's worker on core {s}, the load generator on core {g}"
            ));
        } else if let Some(s) = server_core {
            notes.push(format!("the server's worker on core {s}"));
        } else if let Some(g) = generator_core {
            notes.push(format!("the load generator on core {g}"));
        }
        notes.extend(self.notes.iter().cloned());
        if notes.is_empty() {
            notes.push("not pinned".into());
        }
        Pinning {
            requested: self.requested,
            server_core,
            generator_core,
            note: notes.join("; "),
        }
    }
}

/// The kinds of in-process server.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// Decisions, the default engine config.
    Decisions,
    /// Decisions with a small `in_flight_max`.
    Overload(usize),
    /// The bare echo loop.
    Echo,
}

impl Kind {
    fn config(self) -> ServerConfig {
        let mut config = ServerConfig {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            admin_listen: None,
            http_listen: None,
            workers: 1,
            ..ServerConfig::default()
        };
        match self {
            Self::Decisions => {}
            Self::Overload(n) => config.engine.in_flight_max = n,
            Self::Echo => config.echo = true,
        }
        config
    }

    fn label(self) -> &'static str {
        match self {
            Self::Decisions => "the decision server",
            Self::Overload(_) => "the overload server",
            Self::Echo => "the echo server",
        }
    }
}

/// Runs the load part, keeping track of pins.
struct LoadRunner<'p> {
    plan: &'p AllPlan,
    pinner: Pinner,
    server_pinned: bool,
    generator_pinned: bool,
}

impl LoadRunner<'_> {
    /// Starts a server of `kind` from a thread pinned to the server core.
    fn start(&mut self, kind: Kind) -> Result<(Server, ServerSetup)> {
        let config = kind.config();
        let core = self.pinner.server;
        let spawned = std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name("cx-bench-server-start".into())
                .spawn_scoped(scope, || {
                    let pinned = Pinner::pin(core);
                    (Server::start(config.clone()), pinned)
                })
                .map(|handle| handle.join())
        });
        let (started, pinned) = match spawned {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => return Err(Error::Run("the server-start thread panicked".into())),
            Err(e) => return Err(Error::Run(format!("cannot start a thread: {e}"))),
        };
        if core.is_some() && !pinned {
            self.pinner.failed("server");
            self.server_pinned = false;
        }
        let server = started.map_err(|e| Error::LocalServer {
            what: format!("starting {}", kind.label()),
            source: Box::new(e),
        })?;
        let setup = ServerSetup {
            echo: config.echo,
            workers: config.workers,
            io: server.io().label().to_string(),
            batch_max: config.engine.batch.batch_max,
            in_flight_max: config.engine.in_flight_max,
        };
        Ok((server, setup))
    }

    /// Runs `work` on a thread pinned to the generator core (its receiver
    /// threads inherit the pin).
    fn on_generator<T: Send, E: Into<Error> + Send>(
        &mut self,
        work: impl FnOnce() -> std::result::Result<T, E> + Send,
    ) -> Result<T> {
        let core = self.pinner.generator;
        let spawned = std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name("cx-bench-generator".into())
                .spawn_scoped(scope, || {
                    let pinned = Pinner::pin(core);
                    (work(), pinned)
                })
                .map(|handle| handle.join())
        });
        let (result, pinned) = match spawned {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => return Err(Error::Run("the load generator thread panicked".into())),
            Err(e) => return Err(Error::Run(format!("cannot start a thread: {e}"))),
        };
        if core.is_some() && !pinned {
            self.pinner.failed("load generator");
            self.generator_pinned = false;
        }
        result.map_err(Into::into)
    }

    /// One fixed-rate run of `config` with `pool` against a fresh server
    /// of `kind`.
    fn run_once(
        &mut self,
        kind: Kind,
        config: &LoadConfig,
        pool: &RequestPool,
    ) -> Result<(LoadReport, ServerSetup)> {
        let (server, setup) = self.start(kind)?;
        let config = LoadConfig {
            addr: server.local_addr().to_string(),
            ..config.clone()
        };
        let report = self.on_generator(|| run_with_pool(&config, pool));
        let stopped = stop(server, kind);
        let report = report?;
        stopped?;
        Ok((report, setup))
    }
}

/// Stops `server` and waits for it.
fn stop(server: Server, kind: Kind) -> Result<()> {
    server.shutdown();
    server.wait().map_err(|e| Error::LocalServer {
        what: format!("stopping {}", kind.label()),
        source: Box::new(e),
    })
}

/// What the load part produced.
pub(crate) struct LoadPart {
    pub pinning: Pinning,
    pub sweep: Option<SweepReport>,
    pub half: Option<LoadSeries>,
    pub overload: Option<LoadSeries>,
    pub echo: Option<EchoReport>,
}

/// The problems a run's report shows that are not load: broken
/// connections, answers that could not be read, and (where `expect_ok`)
/// no accepted request at all.
fn problems(label: &str, report: &LoadReport, expect_ok: bool) -> Vec<String> {
    let mut out = Vec::new();
    if !report.connection_errors.is_empty() {
        out.push(format!(
            "{label}: connections broke: {}",
            report.connection_errors.join("; ")
        ));
    }
    if let Some(n) = report.errors_by_code.get(INVALID_RESPONSE) {
        out.push(format!("{label}: {n} answers could not be read"));
    }
    if expect_ok && report.ok == 0 {
        out.push(format!("{label}: no request was answered"));
    }
    out
}

/// Runs the sweep, the fixed-rate series and the echo comparison, writing
/// each output as it is done; failures go to `out`'s errors.
pub(crate) fn run_load_part(plan: &AllPlan, out: &mut Outputs) -> LoadPart {
    let mut runner = LoadRunner {
        plan,
        pinner: Pinner::new(plan.settings.pin),
        server_pinned: true,
        generator_pinned: true,
    };
    let sweep = run_sweep_part(&mut runner, out);
    let (half, echo) = run_half_and_echo(&mut runner, out);
    let overload = run_overload(&mut runner, sweep.as_ref(), out);
    let pinning = runner
        .pinner
        .report(runner.server_pinned, runner.generator_pinned);
    LoadPart {
        pinning,
        sweep,
        half,
        overload,
        echo,
    }
}

fn run_sweep_part(runner: &mut LoadRunner<'_>, out: &mut Outputs) -> Option<SweepReport> {
    let progress = runner.plan.progress;
    if progress {
        eprintln!("== load: sweep");
    }
    let kind = Kind::Decisions;
    let swept = runner.start(kind).and_then(|(server, _)| {
        let mut config = runner.plan.sweep_config();
        config.load.addr = server.local_addr().to_string();
        let report = runner.on_generator(|| {
            run_sweep(&config, |step| {
                if progress {
                    eprintln!("  {}", step_line(step));
                }
            })
        });
        let stopped = stop(server, kind);
        let report = report?;
        stopped.map(|()| report)
    });
    let sweep = out.record("sweep", swept)?;
    for (i, step) in sweep.steps.iter().enumerate() {
        for p in problems(&format!("sweep step {}", i + 1), &step.report, false) {
            out.error("sweep", p);
        }
    }
    let json = out.path("sweep.json");
    let written = write_json(&json, "--out", &sweep);
    out.wrote("sweep", "sweep.json", written);
    let svg = out.path("sweep.svg");
    let drawn = write_sweep_svg(&svg, &sweep, None);
    out.wrote("sweep", "sweep.svg", drawn);
    Some(sweep)
}

/// The half-load runs and the echo runs at the same rate, alternating,
/// each on a fresh server.
fn run_half_and_echo(
    runner: &mut LoadRunner<'_>,
    out: &mut Outputs,
) -> (Option<LoadSeries>, Option<EchoReport>) {
    let plan = runner.plan;
    let s = &plan.settings;
    let rate = s.half_rate_per_s;
    if plan.progress {
        eprintln!("== load: half load and bare echo at {rate:.0}/s");
    }
    let half_config = plan.load_config(rate, Mix::Synth);
    let echo_config = plan.load_config(rate, Mix::Echo);
    let synth = RequestPool::build(&half_config.mix, half_config.seed, half_config.pool);
    let Some(synth) = out.record("half", synth) else {
        out.error(
            "echo",
            "not run: the half-load runs could not be set up".into(),
        );
        return (None, None);
    };
    let echo_pool = RequestPool::echo();
    let (mut half_runs, mut echo_runs) = (Vec::new(), Vec::new());
    let (mut half_setup, mut echo_setup) = (None, None);
    for repeat in 1..=s.load_repeats {
        let label = format!("half load {repeat}/{}", s.load_repeats);
        let done = runner.run_once(Kind::Decisions, &half_config, &synth);
        if let Some((report, setup)) = out.record("half", done) {
            progress_line(plan, &label, &report);
            for p in problems(&label, &report, true) {
                out.error("half", p);
            }
            half_runs.push(report);
            half_setup = Some(setup);
        }
        let label = format!("bare echo {repeat}/{}", s.load_repeats);
        let done = runner.run_once(Kind::Echo, &echo_config, &echo_pool);
        if let Some((report, setup)) = out.record("echo", done) {
            progress_line(plan, &label, &report);
            for p in problems(&label, &report, true) {
                out.error("echo", p);
            }
            echo_runs.push(report);
            echo_setup = Some(setup);
        }
    }
    let half = half_setup.map(|server| LoadSeries {
        name: "half".into(),
        what: format!(
            "decisions at half the reference rate ({rate:.0} of {:.0} requests/s)",
            s.reference_rate_per_s
        ),
        server,
        summary: SeriesSummary::of(rate, &half_runs, s.slo_us),
        runs: half_runs,
    });
    if let Some(half) = &half {
        let written = write_json(&out.path("load-half.json"), "--out", half);
        out.wrote("half", "load-half.json", written);
    }
    let echo = echo_setup.map(|server| {
        let series = LoadSeries {
            name: "echo".into(),
            what: format!(
                "the bare echo loop (`echo: true`, `pong` frames) at the half-load rate ({rate:.0} requests/s)"
            ),
            server,
            summary: SeriesSummary::of(rate, &echo_runs, s.slo_us),
            runs: echo_runs,
        };
        EchoReport::new(series, half.as_ref())
    });
    if let Some(echo) = &echo {
        let written = write_json(&out.path("echo.json"), "--out", echo);
        out.wrote("echo", "echo.json", written);
    }
    (half, echo)
}

/// The overload runs: twice the sweep's best rate (else, when no step met
/// the SLO, its highest achieved rate; else the reference rate) against a
/// server with a small `in_flight_max`.
fn run_overload(
    runner: &mut LoadRunner<'_>,
    sweep: Option<&SweepReport>,
    out: &mut Outputs,
) -> Option<LoadSeries> {
    let plan = runner.plan;
    let s = &plan.settings;
    let (base, from) = match sweep.and_then(SweepReport::capacity_per_s) {
        Some(capacity) => (
            capacity,
            "the server's capacity (the sweep's highest achieved rate)",
        ),
        None => match sweep.and_then(|sw| sw.steps.last()) {
            Some(last) if last.report.achieved_rate_per_s > 0.0 => (
                last.report.achieved_rate_per_s,
                "the sweep's last achieved rate (it never saturated the server)",
            ),
            _ => (
                s.reference_rate_per_s,
                "the reference rate (the sweep did not run or achieved nothing)",
            ),
        },
    };
    let rate = (2.0 * base).min(RATE_PER_S_MAX);
    if plan.progress {
        eprintln!(
            "== load: 2x overload at {rate:.0}/s, in_flight_max {}",
            s.overload_in_flight_max
        );
    }
    let config = plan.load_config(rate, Mix::Synth);
    let pool = RequestPool::build(&config.mix, config.seed, config.pool);
    let pool = out.record("overload", pool)?;
    let kind = Kind::Overload(s.overload_in_flight_max);
    let mut runs = Vec::new();
    let mut setup = None;
    for repeat in 1..=s.load_repeats {
        let label = format!("overload {repeat}/{}", s.load_repeats);
        let done = runner.run_once(kind, &config, &pool);
        if let Some((report, server)) = out.record("overload", done) {
            progress_line(plan, &label, &report);
            for p in problems(&label, &report, false) {
                out.error("overload", p);
            }
            runs.push(report);
            setup = Some(server);
        }
    }
    let series = LoadSeries {
        name: "overload".into(),
        what: format!(
            "decisions at twice {from} ({rate:.0} requests/s) with in_flight_max {}: the server should shed load with `overloaded`",
            s.overload_in_flight_max
        ),
        server: setup?,
        summary: SeriesSummary::of(rate, &runs, s.slo_us),
        runs,
    };
    let written = write_json(&out.path("load-overload.json"), "--out", &series);
    out.wrote("overload", "load-overload.json", written);
    Some(series)
}

fn progress_line(plan: &AllPlan, label: &str, report: &LoadReport) {
    if plan.progress {
        eprintln!(
            "  {label}: achieved {:.0}/s, accepted {}, overloaded {}, failed {}",
            report.achieved_rate_per_s,
            report.latency_ok.summary_us(),
            report.overloaded,
            report.failed()
        );
    }
}

/// A part's error, for the report.
pub(crate) fn part_error(part: &str, error: &Error) -> PartError {
    PartError {
        part: part.into(),
        error: error.chain(),
    }
}
