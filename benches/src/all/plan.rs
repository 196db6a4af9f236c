//! The options of `cx-bench all` ([`AllOptions`]), their defaults in each
//! mode, and their checks ([`AllPlan::resolve`]), each error naming the
//! command-line option at fault.

use crate::engine_bench::EngineBenchOptions;
use crate::error::{Error, Result};
use crate::kernel_bench::KernelBenchOptions;
use crate::load::sweep::{SweepConfig, SWEEP_STEPS_MAX};
use crate::load::{check_count, check_rate, LoadConfig, Mix, Wire, RATE_PER_S_MAX};
use crate::stall::StallOptions;
use cx_engine::config::IN_FLIGHT_LIMIT;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The folder `cx-bench all` writes to unless `--out` says otherwise.
pub const DEFAULT_OUT_DIR: &str = "bench-results";

/// The throughput target, requests per second: the default
/// reference rate (`--rate`) of the full mode.
pub const TARGET_RATE_PER_S: f64 = 150_000.0;

/// Most repeats of each fixed-rate run (`--load-repeats`).
pub const LOAD_REPEATS_MAX: usize = 100;

/// What `cx-bench all` runs; `None` fields take the mode's default (see
/// [`AllPlan::resolve`]). Field names follow the flags (`rate_per_s` is
/// `--rate`, `duration_s` is `--duration-s`, ...).
#[derive(Clone, Debug, PartialEq)]
pub struct AllOptions {
    /// Tiny rates and windows, and the kernel and engine benchmarks'
    /// quick modes: a smoke run of every part, which assesses no target
    /// (`--quick`).
    pub quick: bool,
    /// Where every output is written (`--out`).
    pub out_dir: PathBuf,
    /// The reference rate, requests per second: the throughput target the
    /// sweep is judged against; the fixed-rate runs offer half of it
    /// (`--rate`; default 150000, quick 4000).
    pub rate_per_s: Option<f64>,
    /// The SLO on the accepted requests' p99 latency, µs (`--slo-us`;
    /// default 1000).
    pub slo_us: Option<f64>,
    /// Repeats of each fixed-rate run, each on a fresh server
    /// (`--load-repeats`; default 3, quick 1).
    pub load_repeats: Option<usize>,
    /// Each fixed-rate run's measured window, s (`--duration-s`; default
    /// 5, quick 0.2).
    pub duration_s: Option<f64>,
    /// Load offered before each window and not counted, s (`--warmup-s`;
    /// default 1, quick 0.05).
    pub warmup_s: Option<f64>,
    /// Each sweep step's measured window, s (`--step-s`; default 3, quick
    /// 0.2).
    pub step_s: Option<f64>,
    /// The sweep's first rate, requests per second (`--start-rate`;
    /// default: the reference rate divided by `--step-factor` 6 times, 2
    /// in quick mode, so that one step offers exactly the reference rate).
    pub start_rate_per_s: Option<f64>,
    /// The sweep's highest rate, requests per second (`--max-rate`;
    /// default 1000000, quick: the reference rate).
    pub max_rate_per_s: Option<f64>,
    /// Each sweep step's rate over the previous one's (`--step-factor`;
    /// default 1.5, quick 2).
    pub step_factor: Option<f64>,
    /// The sweep stops after this many steps in a row miss the SLO, or at
    /// a saturated miss (`--stop-after-misses`; default 100, the most a
    /// sweep may have: it goes on until the server no longer keeps up).
    pub stop_after_misses: Option<usize>,
    /// Connections of every load run (`--connections`; default 4, quick 2).
    pub connections: Option<usize>,
    /// Most requests in flight per connection (`--depth`; default 64,
    /// quick 32).
    pub depth: Option<usize>,
    /// The engine's `in_flight_max` in the overload runs: small, so that
    /// the server sheds load with `overloaded` (`--overload-in-flight-max`;
    /// default 16).
    pub overload_in_flight_max: Option<usize>,
    /// Leave every thread unpinned (`--no-pin`).
    pub no_pin: bool,
    /// The command line, recorded in the summary.
    pub command: String,
    /// Progress lines on stderr.
    pub progress: bool,
}

impl Default for AllOptions {
    fn default() -> Self {
        Self {
            quick: false,
            out_dir: PathBuf::from(DEFAULT_OUT_DIR),
            rate_per_s: None,
            slo_us: None,
            load_repeats: None,
            duration_s: None,
            warmup_s: None,
            step_s: None,
            start_rate_per_s: None,
            max_rate_per_s: None,
            step_factor: None,
            stop_after_misses: None,
            connections: None,
            depth: None,
            overload_in_flight_max: None,
            no_pin: false,
            command: String::new(),
            progress: false,
        }
    }
}

impl AllOptions {
    /// The quick mode's options writing to `out_dir`, nothing overridden.
    pub fn quick(out_dir: impl Into<PathBuf>) -> Self {
        Self {
            quick: true,
            out_dir: out_dir.into(),
            ..Self::default()
        }
    }
}

/// The load settings of a run, every default filled in: what the summary
/// records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AllSettings {
    /// The reference rate (`--rate`), requests per second.
    pub reference_rate_per_s: f64,
    /// The fixed-rate runs' offered rate: half the reference rate.
    pub half_rate_per_s: f64,
    /// The SLO on the accepted requests' p99 latency, µs.
    pub slo_us: f64,
    /// The SLO's bound on the share of failed requests.
    pub failed_ratio_max: f64,
    /// Repeats of each fixed-rate run.
    pub load_repeats: usize,
    /// Each fixed-rate run's measured window, s.
    pub duration_s: f64,
    /// Warm-up before each window, s.
    pub warmup_s: f64,
    /// Longest drain after each window, s.
    pub drain_s: f64,
    /// Each sweep step's window, s.
    pub step_s: f64,
    /// The sweep's first rate, requests per second.
    pub start_rate_per_s: f64,
    /// The sweep's highest rate, requests per second.
    pub max_rate_per_s: f64,
    /// Each sweep step's rate over the previous one's.
    pub step_factor: f64,
    /// The sweep stops after this many steps in a row miss the SLO.
    pub stop_after_misses: usize,
    /// Connections of every load run.
    pub connections: usize,
    /// Most requests in flight per connection.
    pub depth: usize,
    /// Distinct synthetic requests cycled through.
    pub pool: usize,
    /// The engine's `in_flight_max` in the overload runs.
    pub overload_in_flight_max: usize,
    /// Whether pinning was asked for (not `--no-pin`).
    pub pin: bool,
}

/// [`AllOptions`] with every default filled in and checked.
#[derive(Clone, Debug, PartialEq)]
pub struct AllPlan {
    /// Quick mode.
    pub quick: bool,
    /// Where every output goes.
    pub out_dir: PathBuf,
    /// The command line.
    pub command: String,
    /// Progress lines on stderr.
    pub progress: bool,
    /// The load settings.
    pub settings: AllSettings,
    /// The kernel benchmark's options.
    pub kernel: KernelBenchOptions,
    /// The engine benchmark's options.
    pub engine: EngineBenchOptions,
    /// The stall probe's options.
    pub stall: StallOptions,
}

/// One mode's load defaults.
struct LoadDefaults {
    rate_per_s: f64,
    load_repeats: usize,
    duration_s: f64,
    warmup_s: f64,
    step_s: f64,
    /// Sweep steps below the reference rate, for the default start rate.
    steps_below: i32,
    max_rate_per_s: Option<f64>,
    step_factor: f64,
    connections: usize,
    depth: usize,
    pool: usize,
    /// The stall probe's length, ms.
    stall_ms: u64,
}

/// The full mode: a few minutes on a 2-core machine.
const FULL: LoadDefaults = LoadDefaults {
    rate_per_s: TARGET_RATE_PER_S,
    load_repeats: 3,
    duration_s: 5.0,
    warmup_s: 1.0,
    step_s: 3.0,
    steps_below: 6,
    max_rate_per_s: Some(1_000_000.0),
    step_factor: 1.5,
    connections: 4,
    // The protocol's limit. The schedule is one ordered stream over all
    // connections, so one connection whose window is full holds every
    // request back: at depth 64 the windows filled in the machine's slow
    // windows and the generator, not the server, queued the requests
    // (send lag p99 29-43 ms against 0.1-11 ms at 1024; docs/BENCHMARKS.md).
    depth: crate::load::DEPTH_MAX,
    pool: 65_536,
    stall_ms: 10_000,
};

/// The quick mode: tiny rates and windows, a few seconds in all.
const QUICK: LoadDefaults = LoadDefaults {
    rate_per_s: 4_000.0,
    load_repeats: 1,
    duration_s: 0.2,
    warmup_s: 0.05,
    step_s: 0.2,
    steps_below: 2,
    max_rate_per_s: None,
    step_factor: 2.0,
    connections: 2,
    depth: 32,
    pool: 1024,
    stall_ms: 200,
};

/// The SLO's default, µs.
const SLO_US: f64 = 1000.0;

/// The sweep's default `--stop-after-misses`: as many as a sweep may have
/// steps, so that it goes on until the server no longer keeps up (or the
/// highest rate): the last steps measure the server's capacity, which the
/// overload runs and the stall model need. A low rate may also miss the
/// SLO on a stall of the host while higher ones pass.
const STOP_AFTER_MISSES: usize = SWEEP_STEPS_MAX;

/// The default `in_flight_max` of the overload runs. It bounds the work of
/// one tick (16 decisions, about 70 µs here), so the core keeps time to
/// read and shed the excess; at 64 a single worker at twice its capacity
/// spends the whole core serving at capacity and shedding, and any slow
/// window of the machine builds a queue that never drains within the run
/// (docs/BENCHMARKS.md).
const OVERLOAD_IN_FLIGHT_MAX: usize = 16;

/// The longest drain after a window, s (the drain ends as soon as every
/// request is answered).
const DRAIN_S: f64 = 2.0;

impl AllPlan {
    /// Fills in `options`' defaults and checks every value (the load's and
    /// the sweep's too), before anything runs.
    pub fn resolve(options: &AllOptions) -> Result<Self> {
        let d = if options.quick { &QUICK } else { &FULL };
        let reference = options.rate_per_s.unwrap_or(d.rate_per_s);
        check_rate("--rate", reference)?;
        let step_factor = options.step_factor.unwrap_or(d.step_factor);
        if !(step_factor.is_finite() && step_factor > 1.0 && step_factor <= 100.0) {
            return Err(Error::option(
                "--step-factor",
                step_factor,
                "must be above 1 and at most 100",
            ));
        }
        let default_start = round3(reference / step_factor.powi(d.steps_below));
        let settings = AllSettings {
            reference_rate_per_s: reference,
            half_rate_per_s: reference / 2.0,
            slo_us: options.slo_us.unwrap_or(SLO_US),
            failed_ratio_max: SweepConfig::default().failed_ratio_max,
            load_repeats: options.load_repeats.unwrap_or(d.load_repeats),
            duration_s: options.duration_s.unwrap_or(d.duration_s),
            warmup_s: options.warmup_s.unwrap_or(d.warmup_s),
            drain_s: DRAIN_S,
            step_s: options.step_s.unwrap_or(d.step_s),
            start_rate_per_s: options.start_rate_per_s.unwrap_or(default_start),
            max_rate_per_s: options
                .max_rate_per_s
                .unwrap_or(d.max_rate_per_s.unwrap_or(reference)),
            step_factor,
            stop_after_misses: options.stop_after_misses.unwrap_or(STOP_AFTER_MISSES),
            connections: options.connections.unwrap_or(d.connections),
            depth: options.depth.unwrap_or(d.depth),
            pool: d.pool,
            overload_in_flight_max: options
                .overload_in_flight_max
                .unwrap_or(OVERLOAD_IN_FLIGHT_MAX),
            pin: !options.no_pin,
        };
        if options.out_dir.as_os_str().is_empty() {
            return Err(Error::option("--out", "\"\"", "must name a folder"));
        }
        let plan = Self {
            quick: options.quick,
            out_dir: options.out_dir.clone(),
            command: options.command.clone(),
            progress: options.progress,
            settings,
            kernel: KernelBenchOptions {
                quick: options.quick,
                ..KernelBenchOptions::default()
            },
            engine: EngineBenchOptions {
                quick: options.quick,
                progress: options.progress,
                ..EngineBenchOptions::default()
            },
            stall: StallOptions {
                duration_ms: d.stall_ms,
                ..StallOptions::default()
            },
        };
        plan.check()?;
        Ok(plan)
    }

    fn check(&self) -> Result<()> {
        let s = &self.settings;
        check_count("--load-repeats", s.load_repeats, LOAD_REPEATS_MAX)?;
        check_count(
            "--overload-in-flight-max",
            s.overload_in_flight_max,
            IN_FLIGHT_LIMIT,
        )?;
        self.stall.validate()?;
        // The fixed-rate load (its rate is half of --rate, checked above).
        self.load_config(s.half_rate_per_s, Mix::Synth).validate()?;
        Ok(self.sweep_config().validate()?)
    }

    /// The load of a fixed-rate run at `rate_per_s` with `mix`, against
    /// an address filled in when its server runs.
    pub fn load_config(&self, rate_per_s: f64, mix: Mix) -> LoadConfig {
        let s = &self.settings;
        LoadConfig {
            addr: "127.0.0.1:0".into(),
            wire: Wire::Binary,
            rate_per_s: rate_per_s.min(RATE_PER_S_MAX),
            duration_s: s.duration_s,
            warmup_s: s.warmup_s,
            drain_s: s.drain_s,
            connections: s.connections,
            depth: s.depth,
            mix,
            seed: 1,
            pool: s.pool,
            simulate: false,
            bid_response: false,
            progress: false,
        }
    }

    /// The sweep, against an address filled in when its server runs.
    pub fn sweep_config(&self) -> SweepConfig {
        let s = &self.settings;
        SweepConfig {
            load: self.load_config(s.start_rate_per_s, Mix::Synth),
            start_rate_per_s: s.start_rate_per_s,
            max_rate_per_s: s.max_rate_per_s,
            step_factor: s.step_factor,
            step_add_per_s: None,
            step_s: s.step_s,
            slo_us: s.slo_us,
            failed_ratio_max: s.failed_ratio_max,
            stop_after_misses: s.stop_after_misses,
        }
    }
}

/// `value` rounded to 3 decimals (as the sweep rounds its rates).
fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_in_and_the_sweep_meets_the_reference_rate() {
        let full = AllPlan::resolve(&AllOptions::default()).expect("full plan");
        let s = &full.settings;
        assert_eq!(s.reference_rate_per_s, TARGET_RATE_PER_S);
        assert_eq!(s.half_rate_per_s, 75_000.0);
        let rates = full.sweep_config().rates().expect("rates");
        assert!(
            rates.iter().any(|r| (r - TARGET_RATE_PER_S).abs() < 1.0),
            "{rates:?}"
        );
        let quick = AllPlan::resolve(&AllOptions::quick("x")).expect("quick plan");
        let rates = quick.sweep_config().rates().expect("rates");
        assert_eq!(rates, vec![1000.0, 2000.0, 4000.0]);
        assert!(quick.kernel.quick && quick.engine.quick);
    }

    #[test]
    fn bad_options_name_the_option() {
        let bad = |f: fn(&mut AllOptions)| {
            let mut o = AllOptions::quick("x");
            f(&mut o);
            AllPlan::resolve(&o).unwrap_err().to_string()
        };
        type Edit = fn(&mut AllOptions);
        let cases: [(Edit, &str); 10] = [
            (|o| o.rate_per_s = Some(0.0), "--rate"),
            (|o| o.slo_us = Some(-1.0), "--slo-us"),
            (|o| o.load_repeats = Some(0), "--load-repeats"),
            (|o| o.duration_s = Some(0.0), "--duration-s"),
            (|o| o.step_s = Some(f64::NAN), "--step-s"),
            (|o| o.max_rate_per_s = Some(1.0), "--max-rate"),
            (|o| o.step_factor = Some(1.0), "--step-factor"),
            (|o| o.depth = Some(0), "--depth"),
            (|o| o.stop_after_misses = Some(0), "--stop-after-misses"),
            (
                |o| o.overload_in_flight_max = Some(0),
                "--overload-in-flight-max",
            ),
        ];
        for (f, option) in cases {
            let message = bad(f);
            assert!(message.starts_with(option), "{option}: {message}");
        }
        let mut o = AllOptions::quick("");
        o.out_dir = PathBuf::new();
        assert!(AllPlan::resolve(&o)
            .unwrap_err()
            .to_string()
            .starts_with("--out"));
    }
}
