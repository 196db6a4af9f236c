//! [`run_stall_probe`]: how steadily this machine runs a fixed piece of
//! compute on each core, the floor under every tail latency measured on
//! it.
//!
//! One thread per core (pinned where the OS allows) times the same work
//! unit over and over: two passes over a 256 KiB array (it stays in the
//! core's L2), no system call, no lock, no allocation. On a quiet, dedicated
//! core every unit takes about as long as the fastest one. Time is cut
//! into windows (10 ms by default); each window's *slowdown* is its mean
//! unit time over the fastest unit of the whole run. A window slowed
//! `s` times gave the program `1/s` of a core. Whatever takes a core away
//! (other processes, interrupts, a hypervisor running other guests on the
//! same physical core, a throttled CPU) shows up here, without any I/O
//! that could be blamed instead.
//!
//! Why it bounds the server: a server loaded to a fraction `u` of its
//! capacity falls behind in every window slowed more than `1/u` times,
//! and the queue built there is paid back as latency by every request
//! that arrives until it drains. So the share of windows slowed past
//! 2x and past 4x, and how long such stretches last, say which
//! percentiles of a load run the machine, not the server, decides.
//!
//! Layout: each thread fills one preallocated `Vec<WindowTally>` (one
//! entry per window, indexed by elapsed time), so the measuring loop
//! allocates nothing; [`summarize_windows`] is a pure function of the
//! per-window mean unit times, tested on its own.

use crate::error::{Error, Result};
use crate::machine::MachineInfo;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// The work unit's array, 8-byte words (256 KiB: in L2, past L1).
const UNIT_WORDS: usize = 32 * 1024;
/// Passes over the array per unit (about 20 µs on a 2020s server core).
const UNIT_PASSES: usize = 2;
/// Longest probe, ms.
pub const DURATION_MS_MAX: u64 = 600_000;
/// Window bounds, ms.
pub const WINDOW_MS_MIN: u64 = 1;
/// Window bounds, ms.
pub const WINDOW_MS_MAX: u64 = 1_000;
/// The loads the markdown report models (shares of capacity).
const MODEL_LOADS: [f64; 3] = [0.25, 0.5, 0.75];
/// `USER_HZ`: the unit of `/proc/stat`'s times (100 on every Linux ABI).
const USER_HZ: f64 = 100.0;

/// What to probe.
#[derive(Clone, Debug, PartialEq)]
pub struct StallOptions {
    /// How long every thread runs, ms.
    pub duration_ms: u64,
    /// The window over which unit times are averaged, ms.
    pub window_ms: u64,
    /// A window slowed at least this many times counts as slow.
    pub slow_factor: f64,
}

impl Default for StallOptions {
    fn default() -> Self {
        Self {
            duration_ms: 10_000,
            window_ms: 10,
            slow_factor: 2.0,
        }
    }
}

impl StallOptions {
    /// Checks every bound, naming the option that breaks one.
    pub fn validate(&self) -> Result<()> {
        if self.duration_ms == 0 || self.duration_ms > DURATION_MS_MAX {
            return Err(Error::option(
                "--duration-s",
                self.duration_ms as f64 / 1000.0,
                format!("must be above 0 and at most {} s", DURATION_MS_MAX / 1000),
            ));
        }
        if !(WINDOW_MS_MIN..=WINDOW_MS_MAX).contains(&self.window_ms) {
            return Err(Error::option(
                "--window-ms",
                self.window_ms,
                format!("must be {WINDOW_MS_MIN} to {WINDOW_MS_MAX}"),
            ));
        }
        if self.window_ms > self.duration_ms {
            return Err(Error::option(
                "--window-ms",
                self.window_ms,
                "must not be longer than the probe (--duration-s)",
            ));
        }
        if !self.slow_factor.is_finite() || self.slow_factor <= 1.0 {
            return Err(Error::option(
                "--slow-factor",
                self.slow_factor,
                "must be a finite number above 1",
            ));
        }
        Ok(())
    }
}

/// One core's steadiness over the probe.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CoreStall {
    /// The core the thread was pinned to (`None`: not pinned).
    pub core: Option<usize>,
    /// The fastest unit of the run, µs: the core's undisturbed speed.
    pub unit_us_min: f64,
    /// Units timed.
    pub units: u64,
    /// Windows summarized.
    pub windows: usize,
    /// Median window slowdown (1.0: as fast as the fastest unit).
    pub slowdown_p50: f64,
    /// 99th percentile window slowdown.
    pub slowdown_p99: f64,
    /// Worst window's slowdown.
    pub slowdown_max: f64,
    /// Windows slowed at least `slow_factor` times.
    pub slow_windows: usize,
    /// `slow_windows` over `windows`.
    pub slow_share: f64,
    /// Windows slowed at least 4 times, over `windows`.
    pub slow_4x_share: f64,
    /// The longest run of consecutive slow windows, ms.
    pub slow_stretch_ms_max: f64,
    /// The share of the core's time taken away: the mean over windows of
    /// `1 - 1/slowdown`.
    pub time_lost_share: f64,
    /// Every window's slowdown, in time order (what [`queue_delay_ms`]
    /// replays).
    pub window_slowdowns: Vec<f64>,
}

/// What [`run_stall_probe`] found, per core and for the machine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StallReport {
    /// The machine.
    pub machine: MachineInfo,
    /// How long each thread ran, ms.
    pub duration_ms: u64,
    /// The window, ms.
    pub window_ms: u64,
    /// The slow threshold.
    pub slow_factor: f64,
    /// One entry per probed core, all run at once.
    pub cores: Vec<CoreStall>,
    /// Time the hypervisor says it ran other work on this guest's CPUs
    /// while the probe ran (`/proc/stat` steal, all CPUs), ms; `None`
    /// where it cannot be read.
    pub steal_ms: Option<f64>,
    /// Notes: pins that failed, and the like.
    pub notes: Vec<String>,
}

/// What one core's thread measured.
struct CoreRun {
    core: Option<usize>,
    pinned: bool,
    /// Each window's mean unit time, ns, in time order.
    window_unit_ns: Vec<f64>,
    unit_ns_min: f64,
    units: u64,
}

/// One window's tally while the probe runs.
#[derive(Clone, Copy, Debug, Default)]
struct WindowTally {
    unit_ns_sum: f64,
    units: u32,
}

/// Runs one probe thread per core the process may use, all at once, and
/// summarizes each (see the module documentation).
pub fn run_stall_probe(options: &StallOptions) -> Result<StallReport> {
    options.validate()?;
    let mut notes = Vec::new();
    let cores: Vec<Option<core_affinity::CoreId>> = match core_affinity::get_core_ids() {
        Some(ids) if !ids.is_empty() => ids.into_iter().map(Some).collect(),
        _ => {
            notes.push("not pinned: the CPU affinity could not be read".into());
            vec![None]
        }
    };
    let steal_before = read_steal_ticks();
    let barrier = std::sync::Barrier::new(cores.len());
    let results: Vec<CoreRun> = std::thread::scope(|scope| {
        let handles: Vec<_> = cores
            .iter()
            .map(|&core| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let pinned = core.is_some_and(core_affinity::set_for_current);
                    barrier.wait();
                    let mut run = probe_one_core(options);
                    run.core = core.map(|c| c.id);
                    run.pinned = pinned;
                    run
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    if results.len() != cores.len() {
        return Err(Error::Run("a stall probe thread panicked".into()));
    }
    let steal_ms = match (steal_before, read_steal_ticks()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 * 1000.0 / USER_HZ),
        _ => None,
    };
    let mut per_core = Vec::with_capacity(results.len());
    for run in results {
        if let (Some(core), false) = (run.core, run.pinned) {
            notes.push(format!(
                "core {core}: the thread could not be pinned and ran unpinned"
            ));
        }
        let mut summary = summarize_windows(
            &run.window_unit_ns,
            run.unit_ns_min,
            options.window_ms as f64,
            options.slow_factor,
        );
        summary.core = run.core.filter(|_| run.pinned);
        summary.units = run.units;
        per_core.push(summary);
    }
    Ok(StallReport {
        machine: MachineInfo::detect(),
        duration_ms: options.duration_ms,
        window_ms: options.window_ms,
        slow_factor: options.slow_factor,
        cores: per_core,
        steal_ms,
        notes,
    })
}

/// Times work units for `options.duration_ms` on the calling thread:
/// each window's mean unit time, the fastest unit and the units timed
/// (the core fields are left for the caller). A unit is tallied in the
/// window it ends in; windows a long unit spanned without ending one take
/// that unit's time.
fn probe_one_core(options: &StallOptions) -> CoreRun {
    let words: Vec<u64> = (0..UNIT_WORDS as u64)
        .map(|i| i.wrapping_mul(0x9E37_79B9))
        .collect();
    let window_ns = options.window_ms * 1_000_000;
    let windows = usize::try_from(options.duration_ms / options.window_ms).unwrap_or(1);
    let mut tallies = vec![WindowTally::default(); windows];
    let duration = Duration::from_millis(options.duration_ms);
    let mut unit_ns_min = f64::INFINITY;
    let mut units = 0_u64;
    let mut last_filled: Option<usize> = None;
    let started = Instant::now();
    loop {
        let unit_start = Instant::now();
        black_box(work_unit(black_box(&words)));
        let end = Instant::now();
        let elapsed = end.duration_since(started);
        if elapsed >= duration {
            break;
        }
        let unit_ns = end.duration_since(unit_start).as_nanos() as f64;
        unit_ns_min = unit_ns_min.min(unit_ns);
        units += 1;
        let window = usize::try_from(elapsed.as_nanos() as u64 / window_ns).unwrap_or(usize::MAX);
        let Some(tally) = tallies.get_mut(window) else {
            break;
        };
        tally.unit_ns_sum += unit_ns;
        tally.units += 1;
        // Windows this unit spanned without any unit ending in them.
        let first_empty = last_filled.map_or(0, |w| w + 1);
        for skipped in tallies.iter_mut().take(window).skip(first_empty) {
            skipped.unit_ns_sum = unit_ns;
            skipped.units = 1;
        }
        last_filled = Some(window);
    }
    let filled = last_filled.map_or(0, |w| w + 1);
    let window_unit_ns = tallies[..filled]
        .iter()
        .map(|t| t.unit_ns_sum / f64::from(t.units.max(1)))
        .collect();
    CoreRun {
        core: None,
        pinned: false,
        window_unit_ns,
        unit_ns_min,
        units,
    }
}

/// The work unit: sums over `words` `UNIT_PASSES` times, mixing in the
/// pass so the compiler cannot fold the passes.
fn work_unit(words: &[u64]) -> u64 {
    let mut sum = 0_u64;
    for pass in 0..UNIT_PASSES as u64 {
        for &w in words {
            sum = sum.wrapping_add(w ^ pass);
        }
    }
    sum
}

/// Summarizes one core from its windows' mean unit times (ns) and the
/// fastest unit (ns). Empty input, or a fastest unit that is not a
/// positive number, gives an all-zero summary.
pub fn summarize_windows(
    window_unit_ns: &[f64],
    unit_ns_min: f64,
    window_ms: f64,
    slow_factor: f64,
) -> CoreStall {
    if window_unit_ns.is_empty() || !unit_ns_min.is_finite() || unit_ns_min <= 0.0 {
        return CoreStall::default();
    }
    let in_order: Vec<f64> = window_unit_ns
        .iter()
        .map(|&ns| (ns / unit_ns_min).max(1.0))
        .collect();
    let mut slowdowns = in_order.clone();
    let windows = slowdowns.len();
    let mut slow_windows = 0;
    let mut stretch = 0_usize;
    let mut stretch_max = 0_usize;
    for &s in &slowdowns {
        if s >= slow_factor {
            slow_windows += 1;
            stretch += 1;
            stretch_max = stretch_max.max(stretch);
        } else {
            stretch = 0;
        }
    }
    let slow_4x = slowdowns.iter().filter(|&&s| s >= 4.0).count();
    let time_lost: f64 = slowdowns.iter().map(|s| 1.0 - 1.0 / s).sum();
    slowdowns.sort_by(f64::total_cmp);
    CoreStall {
        core: None,
        unit_us_min: unit_ns_min / 1000.0,
        units: 0,
        windows,
        slowdown_p50: nearest_rank(&slowdowns, 0.50),
        slowdown_p99: nearest_rank(&slowdowns, 0.99),
        slowdown_max: slowdowns[windows - 1],
        slow_windows,
        slow_share: slow_windows as f64 / windows as f64,
        slow_4x_share: slow_4x as f64 / windows as f64,
        slow_stretch_ms_max: stretch_max as f64 * window_ms,
        time_lost_share: time_lost / windows as f64,
        window_slowdowns: in_order,
    }
}

/// Queueing delay percentiles a fluid model predicts from one core's
/// window slowdowns (time order), for a server loaded to `load_fraction`
/// of its capacity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct QueueDelay {
    /// The load over the capacity, as given.
    pub load_fraction: f64,
    /// 99th percentile over windows of the predicted delay, ms.
    pub delay_ms_p99: f64,
    /// 99.9th percentile, ms.
    pub delay_ms_p999: f64,
    /// The worst window's, ms.
    pub delay_ms_max: f64,
}

/// The fluid-queue estimate: work arrives at `load_fraction` of the
/// server's capacity; in a window slowed `s` times the server serves at
/// `median / s` of its capacity (its capacity was measured on the same
/// machine, typical slowdown included), and the backlog carries over.
/// A request arriving in a window waits for the backlog at the end of it
/// to be served at that window's speed. Empty input, or a fraction that is
/// not in `(0, 1)`, gives zeros.
pub fn queue_delay_ms(window_slowdowns: &[f64], window_ms: f64, load_fraction: f64) -> QueueDelay {
    let mut out = QueueDelay {
        load_fraction,
        ..QueueDelay::default()
    };
    if window_slowdowns.is_empty() || !(load_fraction > 0.0 && load_fraction < 1.0) {
        return out;
    }
    let mut sorted = window_slowdowns.to_vec();
    sorted.sort_by(f64::total_cmp);
    let median = nearest_rank(&sorted, 0.5);
    // Backlog in ms of full-capacity work.
    let mut backlog_ms = 0.0_f64;
    let mut delays: Vec<f64> = window_slowdowns
        .iter()
        .map(|&s| {
            let speed = (median / s).min(1.0);
            backlog_ms = (backlog_ms + (load_fraction - speed) * window_ms).max(0.0);
            backlog_ms / speed
        })
        .collect();
    delays.sort_by(f64::total_cmp);
    out.delay_ms_p99 = nearest_rank(&delays, 0.99);
    out.delay_ms_p999 = nearest_rank(&delays, 0.999);
    out.delay_ms_max = delays[delays.len() - 1];
    out
}

/// The nearest-rank `q` quantile of sorted, non-empty `sorted`.
fn nearest_rank(sorted: &[f64], q: f64) -> f64 {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `/proc/stat`'s all-CPU steal time, in `USER_HZ` ticks.
fn read_steal_ticks() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    parse_steal_ticks(&text)
}

/// The steal field (the 8th number) of a `/proc/stat` text's `cpu` line.
pub fn parse_steal_ticks(proc_stat: &str) -> Option<u64> {
    let line = proc_stat.lines().find(|l| l.starts_with("cpu "))?;
    line.split_whitespace().nth(8)?.parse().ok()
}

/// The per-core table of a stall probe (markdown), for its own report and
/// the `cx-bench all` summary.
pub fn write_core_table(md: &mut String, cores: &[CoreStall]) {
    let _ = writeln!(
        md,
        "| core | fastest unit µs | windows | slowdown p50 | p99 | max | slow windows | of which >= 4x | longest slow stretch ms | core time lost |"
    );
    let _ = writeln!(
        md,
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for c in cores {
        let core = c.core.map_or("unpinned".to_string(), |id| id.to_string());
        let _ = writeln!(
            md,
            "| {core} | {:.1} | {} | {:.2}x | {:.2}x | {:.1}x | {} ({:.1}%) | {:.1}% | {:.0} | {:.1}% |",
            c.unit_us_min,
            c.windows,
            c.slowdown_p50,
            c.slowdown_p99,
            c.slowdown_max,
            c.slow_windows,
            100.0 * c.slow_share,
            100.0 * c.slow_4x_share,
            c.slow_stretch_ms_max,
            100.0 * c.time_lost_share
        );
    }
}

impl StallReport {
    /// The report as markdown: one row per core, then what it means.
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "## Machine steadiness: the stall probe\n");
        let _ = writeln!(md, "Machine: {}.\n", self.machine.summary());
        let _ = writeln!(
            md,
            "One thread per core, all at once, each timing the same {} KiB in-cache work unit for {:.1} s; \
             a window's slowdown is its mean unit time over the fastest unit of the run ({} ms windows; \
             slow: at least {}x).\n",
            UNIT_WORDS * 8 / 1024,
            self.duration_ms as f64 / 1000.0,
            self.window_ms,
            self.slow_factor
        );
        write_core_table(&mut md, &self.cores);
        md.push('\n');
        let _ = writeln!(
            md,
            "Fluid-queue estimate of the wait these windows alone would cause a server loaded to a share of its capacity \
             (`queue_delay_ms`; the server's own work and the network not counted; a coarse model that gives \
             the scale, and has erred high against measured servers), ms:\n"
        );
        let _ = writeln!(md, "| core | load | wait p99 | p99.9 | max |");
        let _ = writeln!(md, "| --- | ---: | ---: | ---: | ---: |");
        for c in &self.cores {
            let core = c.core.map_or("unpinned".to_string(), |id| id.to_string());
            for load in MODEL_LOADS {
                let d = queue_delay_ms(&c.window_slowdowns, self.window_ms as f64, load);
                let _ = writeln!(
                    md,
                    "| {core} | {:.0}% | {:.2} | {:.2} | {:.2} |",
                    100.0 * load,
                    d.delay_ms_p99,
                    d.delay_ms_p999,
                    d.delay_ms_max
                );
            }
        }
        md.push('\n');
        match self.steal_ms {
            Some(ms) => {
                let _ = writeln!(
                    md,
                    "- Steal time the guest kernel reports over the probe (`/proc/stat`, all CPUs): {ms:.0} ms."
                );
            }
            None => {
                let _ = writeln!(md, "- Steal time: not readable here.");
            }
        }
        let _ = writeln!(
            md,
            "- A server at a fraction u of its capacity falls behind in every window slowed more than 1/u times; \
             the queue built there is paid as latency by the requests that follow. Percentiles above \
             `1 - slow share` of a load run on this machine are set by these windows."
        );
        for note in &self.notes {
            let _ = writeln!(md, "- {note}");
        }
        md
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_windows_are_not_slow() {
        let s = summarize_windows(&[20_000.0; 100], 20_000.0, 10.0, 2.0);
        assert_eq!(s.windows, 100);
        assert_eq!(s.window_slowdowns, vec![1.0; 100]);
        assert_eq!(s.slow_windows, 0);
        assert_eq!(s.slowdown_p50, 1.0);
        assert_eq!(s.slowdown_max, 1.0);
        assert_eq!(s.time_lost_share, 0.0);
        assert_eq!(s.slow_stretch_ms_max, 0.0);
    }

    #[test]
    fn a_stretch_of_slow_windows_is_counted_and_measured() {
        let mut means = vec![10_000.0; 100];
        for m in &mut means[40..45] {
            *m = 40_000.0; // 4x
        }
        means[70] = 25_000.0; // 2.5x, alone
        let s = summarize_windows(&means, 10_000.0, 10.0, 2.0);
        assert_eq!(s.slow_windows, 6);
        assert!((s.slow_share - 0.06).abs() < 1e-12);
        assert!((s.slow_4x_share - 0.05).abs() < 1e-12);
        assert_eq!(s.slow_stretch_ms_max, 50.0);
        assert_eq!(s.slowdown_max, 4.0);
        assert_eq!(s.slowdown_p50, 1.0);
        assert_eq!(s.slowdown_p99, 4.0);
        // 5 windows lost 3/4 of the core, one lost 3/5.
        let lost = (5.0 * 0.75 + 0.6) / 100.0;
        assert!((s.time_lost_share - lost).abs() < 1e-12);
    }

    #[test]
    fn windows_faster_than_the_fastest_unit_count_as_unslowed() {
        // A window mean below the minimum cannot happen from the probe, but
        // the summary must not report a slowdown below 1 or negative loss.
        let s = summarize_windows(&[5.0, 10.0], 10.0, 1.0, 2.0);
        assert_eq!(s.slowdown_p50, 1.0);
        assert_eq!(s.time_lost_share, 0.0);
    }

    #[test]
    fn empty_or_bad_input_gives_zeros() {
        assert_eq!(
            summarize_windows(&[], 10.0, 10.0, 2.0),
            CoreStall::default()
        );
        assert_eq!(
            summarize_windows(&[1.0], 0.0, 10.0, 2.0),
            CoreStall::default()
        );
        assert_eq!(
            summarize_windows(&[1.0], f64::NAN, 10.0, 2.0),
            CoreStall::default()
        );
    }

    #[test]
    fn a_steady_core_queues_nothing() {
        let d = queue_delay_ms(&[1.3; 500], 10.0, 0.9);
        assert_eq!(d.delay_ms_max, 0.0);
    }

    #[test]
    fn a_slow_stretch_builds_a_backlog_that_drains_after_it() {
        // 100 windows of 10 ms; windows 50..55 run at a quarter speed.
        let mut s = vec![1.0; 100];
        for w in &mut s[50..55] {
            *w = 4.0;
        }
        // At half load each slow window adds (0.5 - 0.25) * 10 = 2.5 ms
        // of work; after 5 windows 12.5 ms, served at 0.25: 50 ms of wait.
        let d = queue_delay_ms(&s, 10.0, 0.5);
        assert!((d.delay_ms_max - 50.0).abs() < 1e-9, "{d:?}");
        // Then it drains at (1 - 0.5) * 10 = 5 ms per window: 7.5, 2.5, 0.
        // Seven windows of 100 have a wait; the 99th percentile is the 99th
        // smallest, the second largest: 40 ms (10 ms backlog at 0.25).
        assert!((d.delay_ms_p99 - 40.0).abs() < 1e-9, "{d:?}");
        // A lighter load rides through the same stretch.
        let light = queue_delay_ms(&s, 10.0, 0.2);
        assert_eq!(light.delay_ms_max, 0.0);
    }

    #[test]
    fn queue_delay_of_bad_input_is_zero() {
        assert_eq!(queue_delay_ms(&[], 10.0, 0.5).delay_ms_max, 0.0);
        assert_eq!(queue_delay_ms(&[2.0], 10.0, 0.0).delay_ms_max, 0.0);
        assert_eq!(queue_delay_ms(&[2.0], 10.0, 1.0).delay_ms_max, 0.0);
        assert_eq!(queue_delay_ms(&[2.0], 10.0, f64::NAN).delay_ms_max, 0.0);
    }

    #[test]
    fn reads_steal_from_proc_stat() {
        let text =
            "cpu  3542988 54936 262440 1692213 32527 0 8124 4856 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n";
        assert_eq!(parse_steal_ticks(text), Some(4856));
        assert_eq!(parse_steal_ticks("cpu0 1 2\n"), None);
        assert_eq!(parse_steal_ticks("cpu  1 2 3\n"), None);
    }

    #[test]
    fn options_out_of_bounds_name_the_option() {
        let bad = |o: StallOptions, name: &str| {
            let e = o.validate().unwrap_err().to_string();
            assert!(e.starts_with(name), "{e}");
        };
        let ok = StallOptions::default();
        assert!(ok.validate().is_ok());
        bad(
            StallOptions {
                duration_ms: 0,
                ..ok.clone()
            },
            "--duration-s",
        );
        bad(
            StallOptions {
                window_ms: 0,
                ..ok.clone()
            },
            "--window-ms",
        );
        bad(
            StallOptions {
                duration_ms: 5,
                window_ms: 10,
                ..ok.clone()
            },
            "--window-ms",
        );
        bad(
            StallOptions {
                slow_factor: 1.0,
                ..ok.clone()
            },
            "--slow-factor",
        );
        bad(
            StallOptions {
                slow_factor: f64::NAN,
                ..ok
            },
            "--slow-factor",
        );
    }

    #[test]
    fn a_short_probe_runs_every_core_and_fills_its_windows() {
        let report = run_stall_probe(&StallOptions {
            duration_ms: 60,
            window_ms: 10,
            slow_factor: 2.0,
        })
        .unwrap();
        assert!(!report.cores.is_empty());
        for c in &report.cores {
            assert!(c.units > 0, "{c:?}");
            assert!(c.unit_us_min > 0.0, "{c:?}");
            assert!((1..=6).contains(&c.windows), "{c:?}");
            assert!(c.slowdown_p50 >= 1.0 && c.slowdown_max >= c.slowdown_p50);
        }
        let md = report.to_markdown();
        assert!(md.contains("| core |"));
    }
}
