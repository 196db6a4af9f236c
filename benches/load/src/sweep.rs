//! The rate sweep: runs the load at rising offered rates, one step after
//! another, to find the highest rate the server serves within a latency
//! SLO ([`run_sweep`]). It stops after `--stop-after-misses` steps in a row
//! miss the SLO (1 by default), or at the first miss whose server no
//! longer keeps up (achieved below [`SATURATED_SHARE`] of offered): on a
//! noisy machine a low rate can miss on a stall while higher ones pass.
//!
//! This module owns the sweep's options ([`SweepConfig`]), the rule for
//! passing a step ([`within_slo`]) and the result ([`SweepReport`], every
//! step's full [`LoadReport`], written to and read back from JSON for
//! `--compare`). Steps run one at a time on fresh connections, with the
//! same request pool, built once.

use super::config::{check_count, check_rate, check_seconds, LoadConfig, DURATION_S_MAX};
use super::pool::RequestPool;
use super::report::{round3, LoadReport};
use super::runner::run_with_pool;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::Path;

/// Most steps in a sweep.
pub const SWEEP_STEPS_MAX: usize = 100;

/// Largest `--slo-us`: the histograms' upper bound, 60 s.
pub const SLO_US_MAX: f64 = 60_000_000.0;

/// A step that missed the SLO and achieved less than this share of the
/// rate it offered ends the sweep: the server is saturated, and higher
/// rates would only queue more.
pub const SATURATED_SHARE: f64 = 0.9;

/// Everything a sweep is configured with.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepConfig {
    /// Every step's load; its `rate_per_s` and `duration_s` are replaced
    /// by the step's rate and [`Self::step_s`].
    pub load: LoadConfig,
    /// The first step's offered rate, requests per second (`--start-rate`).
    pub start_rate_per_s: f64,
    /// No step offers more, requests per second (`--max-rate`); the last
    /// step offers exactly this unless the SLO failed before.
    pub max_rate_per_s: f64,
    /// Each step offers this many times the previous rate
    /// (`--step-factor`), unless [`Self::step_add_per_s`] is set.
    pub step_factor: f64,
    /// Each step offers this much more than the previous one, requests per
    /// second (`--step-add`).
    pub step_add_per_s: Option<f64>,
    /// Each step's measured window, seconds (`--step-s`).
    pub step_s: f64,
    /// The SLO: p99 latency of the accepted requests, µs (`--slo-us`).
    pub slo_us: f64,
    /// The SLO also needs at most this share of the requests due to fail
    /// (errors, unanswered, unsent) (`--max-failed-ratio`).
    pub failed_ratio_max: f64,
    /// The sweep stops after this many steps in a row miss the SLO
    /// (`--stop-after-misses`; 1: at the first miss), or sooner at a
    /// saturated miss ([`SATURATED_SHARE`]).
    pub stop_after_misses: usize,
}

impl Default for SweepConfig {
    fn default() -> Self {
        Self {
            load: LoadConfig::default(),
            start_rate_per_s: 10_000.0,
            max_rate_per_s: 1_000_000.0,
            step_factor: 1.5,
            step_add_per_s: None,
            step_s: 5.0,
            slo_us: 1000.0,
            failed_ratio_max: 0.01,
            stop_after_misses: 1,
        }
    }
}

impl SweepConfig {
    /// Checks every option (the load's too); the error names the first
    /// option at fault.
    pub fn validate(&self) -> Result<()> {
        check_rate("--start-rate", self.start_rate_per_s)?;
        check_rate("--max-rate", self.max_rate_per_s)?;
        if self.max_rate_per_s < self.start_rate_per_s {
            return Err(Error::option(
                "--max-rate",
                self.max_rate_per_s,
                format!("must be at least --start-rate ({})", self.start_rate_per_s),
            ));
        }
        check_seconds("--step-s", self.step_s, DURATION_S_MAX, false)?;
        if !self.slo_us.is_finite() || self.slo_us <= 0.0 || self.slo_us > SLO_US_MAX {
            return Err(Error::option(
                "--slo-us",
                self.slo_us,
                format!("must be a number of µs above 0 and at most {SLO_US_MAX}"),
            ));
        }
        if !(0.0..=1.0).contains(&self.failed_ratio_max) {
            return Err(Error::option(
                "--max-failed-ratio",
                self.failed_ratio_max,
                "must be from 0 to 1",
            ));
        }
        check_count(
            "--stop-after-misses",
            self.stop_after_misses,
            SWEEP_STEPS_MAX,
        )?;
        self.step_config(self.start_rate_per_s).validate()?;
        self.rates().map(|_| ())
    }

    /// The offered rates of the steps, in order (before any early stop),
    /// each rounded to 0.001 requests per second.
    pub fn rates(&self) -> Result<Vec<f64>> {
        let next = self.stepper()?;
        let mut rates = vec![self.start_rate_per_s];
        let mut rate = self.start_rate_per_s;
        while rate < self.max_rate_per_s {
            rate = round3(next(rate)).min(self.max_rate_per_s);
            rates.push(rate);
            if rates.len() > SWEEP_STEPS_MAX {
                let option = match self.step_add_per_s {
                    Some(_) => "--step-add",
                    None => "--step-factor",
                };
                return Err(Error::option(
                    option,
                    self.step_add_per_s.unwrap_or(self.step_factor),
                    format!(
                        "gives more than {SWEEP_STEPS_MAX} steps from --start-rate to \
                         --max-rate; take bigger steps"
                    ),
                ));
            }
        }
        Ok(rates)
    }

    /// The function from one step's rate to the next one's.
    fn stepper(&self) -> Result<Box<dyn Fn(f64) -> f64>> {
        match self.step_add_per_s {
            Some(add) if add.is_finite() && add > 0.0 => Ok(Box::new(move |r| r + add)),
            Some(add) => Err(Error::option(
                "--step-add",
                add,
                "must be a number of requests per second above 0",
            )),
            None if self.step_factor.is_finite()
                && self.step_factor > 1.0
                && self.step_factor <= 100.0 =>
            {
                let factor = self.step_factor;
                Ok(Box::new(move |r| r * factor))
            }
            None => Err(Error::option(
                "--step-factor",
                self.step_factor,
                "must be above 1 and at most 100",
            )),
        }
    }

    /// The load of the step offering `rate_per_s`.
    pub fn step_config(&self, rate_per_s: f64) -> LoadConfig {
        LoadConfig {
            rate_per_s,
            duration_s: self.step_s,
            ..self.load.clone()
        }
    }
}

/// Whether a step meets the SLO: the generator kept up
/// ([`LoadReport::generator_kept_up`] with the SLO as the limit), some
/// decisions, their p99 latency at most `slo_us`, and at most
/// `failed_ratio_max` of the requests due
/// failed (an error, no answer, or never sent).
pub fn within_slo(report: &LoadReport, slo_us: f64, failed_ratio_max: f64) -> bool {
    let p99_us = report.latency_ok.p99_ns as f64 / 1000.0;
    let failed_max = failed_ratio_max * report.scheduled as f64;
    report.generator_kept_up(slo_us)
        && report.ok > 0
        && p99_us <= slo_us
        && report.failed() as f64 <= failed_max
}

/// One step of a sweep.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepStep {
    /// Whether it met the SLO ([`within_slo`]).
    pub within_slo: bool,
    /// Whether the generator kept up (its send lag p99 within the SLO);
    /// a step where it did not is invalid, not a server figure. (Sweeps
    /// written before this field read as valid.)
    #[serde(default = "valid")]
    pub generator_kept_up: bool,
    /// What it measured.
    pub report: LoadReport,
}

impl SweepStep {
    /// Whether the server no longer kept up: it achieved less than
    /// [`SATURATED_SHARE`] of the rate offered.
    pub fn saturated(&self) -> bool {
        self.report.achieved_rate_per_s < SATURATED_SHARE * self.report.offered_rate_per_s
    }
}

/// What a sweep measured: every step run, in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepReport {
    /// The SLO on the accepted requests' p99 latency, µs.
    pub slo_us: f64,
    /// The SLO's bound on the share of failed requests.
    pub failed_ratio_max: f64,
    /// The highest offered rate that met the SLO, requests per second.
    pub best_rate_per_s: Option<f64>,
    /// The rate achieved at that step, requests per second.
    pub best_achieved_rate_per_s: Option<f64>,
    /// The steps, in the order they ran. The sweep stops after
    /// [`SweepConfig::stop_after_misses`] steps in a row miss the SLO, or
    /// at a saturated miss.
    pub steps: Vec<SweepStep>,
}

impl SweepReport {
    /// A sweep written earlier as JSON, named by `option` in errors.
    pub fn read(path: &Path, option: &'static str) -> Result<Self> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| Error::File {
            option,
            path: shown.clone(),
            op: "read it",
            source,
        })?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Content {
            option,
            path: shown,
            what: format!("not a sweep written by `cx-bench load --sweep --json`: {e}"),
        })
    }

    /// The server's capacity: the highest rate any step achieved, if some
    /// step saturated it (achieved less than [`SATURATED_SHARE`] of its
    /// offer); `None` if none did (the capacity is above every rate
    /// offered) or nothing was achieved.
    pub fn capacity_per_s(&self) -> Option<f64> {
        let saturated = self.steps.iter().any(|step| step.saturated());
        if !saturated {
            return None;
        }
        self.steps
            .iter()
            .map(|step| step.report.achieved_rate_per_s)
            .reduce(f64::max)
            .filter(|&rate| rate > 0.0)
    }

    /// One line per step, and the verdict.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        for step in &self.steps {
            let _ = writeln!(out, "{}", step_line(step));
        }
        let _ = match (self.best_rate_per_s, self.best_achieved_rate_per_s) {
            (Some(rate), Some(achieved)) => writeln!(
                out,
                "highest rate within the SLO (p99 <= {} µs): {rate:.0}/s offered, \
                 {achieved:.0}/s achieved",
                self.slo_us
            ),
            _ => writeln!(
                out,
                "no step met the SLO (p99 <= {} µs, at most {}% failed)",
                self.slo_us,
                self.failed_ratio_max * 100.0
            ),
        };
        out
    }
}

fn valid() -> bool {
    true
}

/// One step for people: rates, latencies, failures, verdict.
pub fn step_line(step: &SweepStep) -> String {
    let r = &step.report;
    format!(
        "offered {:>9.0}/s  achieved {:>9.0}/s  {}  overloaded {}  failed {}  {}",
        r.offered_rate_per_s,
        r.achieved_rate_per_s,
        r.latency_ok.summary_us(),
        r.overloaded,
        r.failed(),
        match (step.generator_kept_up, step.within_slo) {
            (false, _) => "INVALID: the generator lagged more than the SLO",
            (true, true) => "within SLO",
            (true, false) => "MISSES SLO",
        }
    )
}

/// Runs the sweep: builds the request pool once, then one load step per
/// rate of [`SweepConfig::rates`], stopping after
/// [`SweepConfig::stop_after_misses`] steps in a row miss the SLO, or at a
/// miss whose achieved rate is below [`SATURATED_SHARE`] of the offered
/// one. The best rate is the highest that met the SLO. Calls `on_step`
/// after each step (to print progress).
pub fn run_sweep(config: &SweepConfig, mut on_step: impl FnMut(&SweepStep)) -> Result<SweepReport> {
    config.validate()?;
    let rates = config.rates()?;
    let load = &config.load;
    let pool = RequestPool::build(&load.mix, load.seed, load.pool)?;
    let mut report = SweepReport {
        slo_us: config.slo_us,
        failed_ratio_max: config.failed_ratio_max,
        best_rate_per_s: None,
        best_achieved_rate_per_s: None,
        steps: Vec::with_capacity(rates.len()),
    };
    let mut misses = 0;
    for rate in rates {
        let step_report = run_with_pool(&config.step_config(rate), &pool)?;
        let step = SweepStep {
            within_slo: within_slo(&step_report, config.slo_us, config.failed_ratio_max),
            generator_kept_up: step_report.generator_kept_up(config.slo_us),
            report: step_report,
        };
        on_step(&step);
        let passed = step.within_slo;
        let saturated = step.saturated();
        if passed {
            misses = 0;
            report.best_rate_per_s = Some(rate);
            report.best_achieved_rate_per_s = Some(step.report.achieved_rate_per_s);
        } else {
            misses += 1;
        }
        report.steps.push(step);
        if !passed && (saturated || misses >= config.stop_after_misses) {
            break;
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Percentiles;

    /// A run of 1,000 decisions, all ok, with these p99s (µs).
    fn run(latency_p99_us: u64, send_lag_p99_us: u64) -> LoadReport {
        let p99 = |us: u64| Percentiles {
            count: 1000,
            p99_ns: us * 1000,
            ..Percentiles::default()
        };
        LoadReport {
            addr: "127.0.0.1:7070".into(),
            wire: crate::Wire::Binary,
            mix: "synth".into(),
            pool: 1,
            connections: 1,
            depth: 1,
            simulate: false,
            bid_response: false,
            offered_rate_per_s: 1000.0,
            achieved_rate_per_s: 1000.0,
            duration_s: 1.0,
            warmup_s: 0.0,
            elapsed_s: 1.0,
            scheduled: 1000,
            sent: 1000,
            ok: 1000,
            no_bids: 0,
            overloaded: 0,
            errors_by_code: Default::default(),
            unanswered: 0,
            unsent: 0,
            unattributed: 0,
            latency_ok: p99(latency_p99_us),
            latency_all: p99(latency_p99_us),
            send_lag: p99(send_lag_p99_us),
            connection_errors: Vec::new(),
        }
    }

    #[test]
    fn a_step_whose_generator_lagged_past_the_slo_is_invalid_not_within() {
        assert!(within_slo(&run(500, 10), 1000.0, 0.0));
        assert!(!within_slo(&run(1500, 10), 1000.0, 0.0), "slow server");
        let lagged = run(500, 1500);
        assert!(!lagged.generator_kept_up(1000.0));
        assert!(
            !within_slo(&lagged, 1000.0, 0.0),
            "a lagging generator's step cannot count for the server"
        );
        let step = SweepStep {
            within_slo: false,
            generator_kept_up: false,
            report: lagged,
        };
        assert!(step_line(&step).contains("INVALID"));
    }
}
