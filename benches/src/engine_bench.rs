//! The engine benchmark summary behind `cx-bench engine` and the
//! `engine_report` example: the whole engine in process, on one thread,
//! with the bundled default model and catalog. Decisions per second and
//! tick latency (p50, p99, p99.9, max) by batch size with the SIMD kernel,
//! against the naive path (one request per tick, no batching, the scalar
//! kernel) measured in the same repeats, and heap allocations per request
//! in steady state.
//!
//! # What is timed
//!
//! For each tick, `batch` calls to `submit` (each moving in a request
//! cloned from the pool *before* the timer started), one `tick`, and `poll`
//! until every decision is out ([`crate::engine::decide_chunk`]). Dropping
//! the requests inside the engine is timed; cloning them out of the pool is
//! not (it is measured and reported on its own). The decision cache is off,
//! so every request runs the model, except in the one setup labelled as
//! having it on (a share of its requests repeat a recent one).
//!
//! # Repeats
//!
//! Each repeat runs every setup, interleaved, on a fresh engine: a warm-up
//! of [`WARM_UP_REQUESTS`] requests, then chunks until the run time is
//! reached. Host noise thus falls on all setups alike; every ratio is taken
//! within one repeat; each cell is the median over repeats, with the range.
//!
//! # Allocations
//!
//! Counted only where the program installed
//! [`CountingAllocator`] as its
//! global allocator: every allocation on the benchmark thread while the
//! engine decides a timed chunk (submit, tick, poll), after the warm-up.
//! Cloning requests out of the pool is outside that window. Without the
//! allocator the report says `None`, not zero.

use crate::alloc_count::CountingAllocator;
use crate::engine::{decide_chunk, request_pool, Run, Setup, BATCHES, POOL_SIZE};
use crate::machine::MachineInfo;
use crate::spread::Spread;
use crate::{Error, Result};
use cx_datasets::{Generator, SynthConfig};
use cx_engine::backends::BATCH_MAX_LIMIT;
use cx_engine::{Engine, EngineStats};
use cx_features::RequestContext;
use cx_model::SnnModel;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// Requests cloned (untimed) and then decided (timed) per chunk.
pub const CHUNK_REQUESTS: usize = 1024;
/// Requests decided before timing starts, on each fresh engine.
pub const WARM_UP_REQUESTS: usize = 512;
/// The tick-latency target at batch 16, µs.
pub const P99_TARGET_US: f64 = 100.0;
/// The throughput target on one core, decisions per second.
pub const THROUGHPUT_TARGET_PER_S: f64 = 250_000.0;
/// The batch size the targets are stated at.
pub const TARGET_BATCH: usize = 16;
/// Share of requests in the cache-on setup that repeat a recent request.
pub const REPEAT_SHARE: f64 = 0.25;
/// How many recent requests the cache-on setup repeats from.
pub const REPEAT_WINDOW: usize = 1024;
/// Decision-cache entries in the cache-on setup (the config default).
pub const CACHE_CAPACITY: usize = 65_536;
/// The pipeline stages, in order, as the engine's `stats()` names them.
pub const STAGES: [&str; 7] = [
    "ingest", "features", "cache", "infer", "validate", "decide", "respond",
];

/// The kinds of setup compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SetupKind {
    /// The SIMD kernel at a batch size, cache off.
    Simd,
    /// The naive path: the scalar kernel, one request per tick, cache off.
    Naive,
    /// The SIMD kernel at [`TARGET_BATCH`] with the decision cache on and
    /// [`REPEAT_SHARE`] of requests repeating a recent one.
    SimdCacheOn,
}

impl SetupKind {
    /// The setup's name in the table.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Simd => "SIMD",
            Self::Naive => "naive: scalar, 1 per tick",
            Self::SimdCacheOn => "SIMD, cache on",
        }
    }

    /// The engine setup of this kind at `batch` (the naive path ignores it).
    pub fn setup(&self, batch: usize) -> Setup {
        match self {
            Self::Simd => Setup::simd(batch),
            Self::Naive => Setup::naive(),
            Self::SimdCacheOn => Setup::simd(batch).with_cache(CACHE_CAPACITY),
        }
    }
}

/// What [`run_engine_bench`] measures; `None` fields take the mode's
/// default (see [`EnginePlan::resolve`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EngineBenchOptions {
    /// A few seconds in all (CI smoke; about 1 s in a release build):
    /// batches 1, 16 and 64, 3 short repeats, smaller chunks and pool.
    /// Otherwise the fuller default (about 45 s on the 2-core reference
    /// machine).
    pub quick: bool,
    /// SIMD batch sizes (default: [`BATCHES`]; quick: 1, 16, 64).
    pub batches: Option<Vec<usize>>,
    /// Repeats (default 9; quick 3).
    pub repeats: Option<usize>,
    /// Least timed run of each setup in each repeat, ms (default 500;
    /// quick 30).
    pub run_ms: Option<u64>,
    /// Whether to add the cache-on setup (default: yes).
    pub cache_row: Option<bool>,
    /// Print a line per setup and repeat on stderr.
    pub progress: bool,
}

impl EngineBenchOptions {
    /// The quick mode's options, nothing overridden.
    pub fn quick() -> Self {
        Self {
            quick: true,
            ..Self::default()
        }
    }
}

/// [`EngineBenchOptions`] with every default filled in and checked.
#[derive(Clone, Debug, PartialEq)]
pub struct EnginePlan {
    /// SIMD batch sizes, in report order.
    pub batches: Vec<usize>,
    /// Repeats.
    pub repeats: usize,
    /// Least timed run of each setup in each repeat.
    pub run_time: Duration,
    /// Requests per timed chunk.
    pub chunk_requests: usize,
    /// Distinct requests in the pool.
    pub pool_requests: usize,
    /// Whether the cache-on setup runs.
    pub cache_row: bool,
    /// Progress lines on stderr.
    pub progress: bool,
}

/// One mode's defaults.
struct EngineDefaults {
    batches: &'static [usize],
    repeats: usize,
    run_ms: u64,
    chunk_requests: usize,
    pool_requests: usize,
}

/// The quick mode's defaults: about 1 s in a release build.
const QUICK_DEFAULTS: EngineDefaults = EngineDefaults {
    batches: &[1, 16, 64],
    repeats: 3,
    run_ms: 30,
    chunk_requests: 256,
    pool_requests: 1024,
};

/// The full mode's defaults: about 45 s on the reference machine.
const FULL_DEFAULTS: EngineDefaults = EngineDefaults {
    batches: &BATCHES,
    repeats: 9,
    run_ms: 500,
    chunk_requests: CHUNK_REQUESTS,
    pool_requests: POOL_SIZE,
};

impl EnginePlan {
    /// Fills in `options`' defaults and checks every value.
    pub fn resolve(options: &EngineBenchOptions) -> Result<Self> {
        let d = if options.quick {
            &QUICK_DEFAULTS
        } else {
            &FULL_DEFAULTS
        };
        let plan = Self {
            batches: options
                .batches
                .clone()
                .unwrap_or_else(|| d.batches.to_vec()),
            repeats: options.repeats.unwrap_or(d.repeats),
            run_time: Duration::from_millis(options.run_ms.unwrap_or(d.run_ms)),
            chunk_requests: d.chunk_requests,
            pool_requests: d.pool_requests,
            cache_row: options.cache_row.unwrap_or(true),
            progress: options.progress,
        };
        plan.check()?;
        Ok(plan)
    }

    fn check(&self) -> Result<()> {
        let bad_batch = |&b: &usize| b == 0 || b > BATCH_MAX_LIMIT;
        if self.batches.is_empty() || self.batches.iter().any(bad_batch) {
            let list: Vec<String> = self.batches.iter().map(ToString::to_string).collect();
            return Err(Error::option(
                "--batches",
                list.join(","),
                format!("give one or more batch sizes from 1 to {BATCH_MAX_LIMIT}"),
            ));
        }
        if self.repeats == 0 {
            return Err(Error::option("--repeats", 0, "must be at least 1"));
        }
        if self.run_time.is_zero() {
            return Err(Error::option("--run-ms", 0, "must be at least 1"));
        }
        Ok(())
    }

    /// The setups, in report order: SIMD by batch, the naive path, then
    /// the cache-on setup if asked for.
    pub fn setups(&self) -> Vec<(SetupKind, Setup)> {
        let mut setups: Vec<(SetupKind, Setup)> = self
            .batches
            .iter()
            .map(|&b| (SetupKind::Simd, SetupKind::Simd.setup(b)))
            .collect();
        setups.push((SetupKind::Naive, SetupKind::Naive.setup(1)));
        if self.cache_row {
            let kind = SetupKind::SimdCacheOn;
            setups.push((kind, kind.setup(TARGET_BATCH)));
        }
        setups
    }
}

/// One stage's median time per tick.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageTime {
    /// The stage, as the engine names it (`infer`, ...; `tick` is the whole).
    pub stage: String,
    /// Its p50 per tick, µs.
    pub us_p50: f64,
}

/// One setup's row of the engine table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EngineRow {
    /// What kind of setup.
    pub setup: SetupKind,
    /// Its name in the table.
    pub label: String,
    /// The scoring backend.
    pub backend: String,
    /// `batch.batch_max`, and requests per tick.
    pub batch: usize,
    /// Decision-cache entries (0: off).
    pub cache_capacity: usize,
    /// Requests timed, over all repeats.
    pub requests: u64,
    /// Decisions per second over repeats.
    pub decisions_per_s: Spread,
    /// µs per decision at the median throughput.
    pub us_per_decision: f64,
    /// Median share of the timed wall time spent inside `tick`.
    pub tick_share: f64,
    /// Tick wall time, p50, µs, over repeats.
    pub tick_us_p50: Spread,
    /// Tick wall time, p99, µs, over repeats.
    pub tick_us_p99: Spread,
    /// Tick wall time, p99.9, µs, over repeats.
    pub tick_us_p999: Spread,
    /// Longest tick, µs, over repeats.
    pub tick_us_max: Spread,
    /// This setup's decisions/s over the naive path's, within each repeat.
    pub vs_naive: Spread,
    /// Heap allocations per request while deciding timed chunks (steady
    /// state); `None` when the counting allocator is not installed.
    pub allocations_per_request: Option<f64>,
    /// Median share of cache lookups that hit (cache-on setup only).
    pub cache_hit_rate: Option<f64>,
    /// Stage times per tick from the engine's `stats()`, last repeat.
    pub stage_us_p50: Vec<StageTime>,
}

/// Comparisons drawn from the rows.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EngineSummary {
    /// The SIMD batch with the highest median throughput.
    pub best_batch: usize,
    /// Its median decisions per second.
    pub best_decisions_per_s: f64,
    /// Best batch over the naive path, within each repeat.
    pub best_vs_naive: Spread,
    /// SIMD batch 1 over the naive path (the kernel alone), if batch 1 ran.
    pub batch1_vs_naive: Option<Spread>,
    /// Best batch over SIMD batch 1 (batching alone), if batch 1 ran.
    pub best_vs_batch1: Option<Spread>,
    /// The highest-throughput SIMD batch whose median p99 tick is within
    /// [`P99_TARGET_US`].
    pub best_batch_within_p99_target: Option<usize>,
}

/// The engine benchmark summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EngineBenchReport {
    /// The machine.
    pub machine: MachineInfo,
    /// Whether the quick mode ran.
    pub quick: bool,
    /// Whether this library was built with debug assertions (an
    /// unoptimised build: the figures then say little).
    pub debug_build: bool,
    /// The model's shape: inputs, then each layer's width.
    pub model_shape: String,
    /// The model's time steps.
    pub steps: u32,
    /// Offers in the bundled catalog.
    pub offers: usize,
    /// Repeats.
    pub repeats: usize,
    /// Least timed run of each setup in each repeat, ms.
    pub run_ms: u64,
    /// Requests decided untimed on each fresh engine first.
    pub warm_up_requests: usize,
    /// Requests per timed chunk.
    pub chunk_requests: usize,
    /// Distinct requests in the pool.
    pub pool_requests: usize,
    /// `/proc/loadavg`'s 1, 5 and 15 minute averages before the run.
    pub load_average_before: Option<[f64; 3]>,
    /// The same after the run.
    pub load_average_after: Option<[f64; 3]>,
    /// Whether the counting allocator was installed (else allocations are
    /// `None`).
    pub allocator_installed: bool,
    /// Cloning one pool request (untimed in the table), ns, over repeats.
    pub clone_ns_per_request: Spread,
    /// One row per setup: SIMD by batch, naive, cache on.
    pub rows: Vec<EngineRow>,
    /// Comparisons drawn from the rows.
    pub summary: EngineSummary,
    /// Wall time of the whole benchmark, s.
    pub elapsed_s: f64,
}

/// The engine table's header row.
pub const ENGINE_TABLE_HEADER: &str = "| setup | batch | decisions/s | µs per decision | time in tick | tick p50 µs | tick p99 µs | tick p99.9 µs | tick max µs | vs naive | allocations/request |";

impl EngineBenchReport {
    /// The SIMD row at `batch`, if measured.
    pub fn simd_row(&self, batch: usize) -> Option<&EngineRow> {
        self.rows
            .iter()
            .find(|r| r.setup == SetupKind::Simd && r.batch == batch)
    }

    /// The naive path's row.
    pub fn naive_row(&self) -> Option<&EngineRow> {
        self.rows.iter().find(|r| r.setup == SetupKind::Naive)
    }

    /// The report as markdown: heading, set-up, table, comparisons, stage
    /// times.
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        self.write_header(&mut md);
        md.push_str(ENGINE_TABLE_HEADER);
        md.push_str(
            "\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
        );
        for row in &self.rows {
            md.push_str(&engine_row_markdown(row));
        }
        md.push('\n');
        self.write_summary(&mut md);
        self.write_stages(&mut md);
        md
    }

    fn write_header(&self, md: &mut String) {
        let _ = writeln!(md, "## Engine: throughput and tick latency\n");
        let _ = writeln!(md, "Machine: {}. One thread.\n", self.machine.summary());
        if self.debug_build {
            let _ = writeln!(
                md,
                "**Debug build** (debug assertions on): these figures are not representative.\n"
            );
        }
        let _ = writeln!(
            md,
            "Load average (1, 5, 15 min) before: {}; after: {}.\n",
            show_load(self.load_average_before),
            show_load(self.load_average_after)
        );
        let _ = writeln!(
            md,
            "Model: bundled default, {} (inputs, layer widths), T = {}. Catalog: bundled, {} offers.{}\n",
            self.model_shape,
            self.steps,
            self.offers,
            if self.quick { " Quick mode." } else { "" }
        );
        let _ = writeln!(
            md,
            "Each cell: median of {} repeats [min-max]; each repeat runs every setup on a fresh engine for at least {} ms after a {}-request warm-up, in chunks of {} requests from a pool of {}.\n",
            self.repeats, self.run_ms, self.warm_up_requests, self.chunk_requests, self.pool_requests
        );
    }

    fn write_summary(&self, md: &mut String) {
        let s = &self.summary;
        let ratio = |r: &Spread| format!("{:.1}x [{:.1}-{:.1}]", r.median, r.min, r.max);
        let _ = writeln!(
            md,
            "- Best SIMD batch by throughput: {} ({} decisions/s), {} the naive path (same repeat, median [range]).",
            s.best_batch,
            kilo(s.best_decisions_per_s),
            ratio(&s.best_vs_naive)
        );
        if let (Some(k), Some(b)) = (&s.batch1_vs_naive, &s.best_vs_batch1) {
            let _ = writeln!(
                md,
                "- SIMD batch 1 over naive (the kernel alone): {}; best batch over SIMD batch 1 (batching alone): {}.",
                ratio(k),
                ratio(b)
            );
        }
        match s.best_batch_within_p99_target {
            Some(b) => {
                let _ = writeln!(
                    md,
                    "- Best SIMD batch with median p99 tick <= {P99_TARGET_US} µs: {b}."
                );
            }
            None => {
                let _ = writeln!(
                    md,
                    "- No SIMD batch has median p99 tick <= {P99_TARGET_US} µs."
                );
            }
        }
        self.write_targets(md);
        let c = &self.clone_ns_per_request;
        let _ = writeln!(
            md,
            "- Not timed above: cloning a pool request, {:.0} ns [{:.0}-{:.0}] each.",
            c.median, c.min, c.max
        );
        let _ = writeln!(md, "- {}", self.allocation_line());
    }

    fn write_targets(&self, md: &mut String) {
        let Some(row) = self.simd_row(TARGET_BATCH) else {
            return;
        };
        let met = |ok: bool| if ok { "met" } else { "NOT met" };
        let rate = row.decisions_per_s.median;
        let p99 = row.tick_us_p99.median;
        let _ = writeln!(
            md,
            "- Targets at batch {TARGET_BATCH}: >= {} decisions/s: {} ({}); p99 tick <= {P99_TARGET_US} µs: {p99:.1} µs ({}).",
            kilo(THROUGHPUT_TARGET_PER_S),
            kilo(rate),
            met(rate >= THROUGHPUT_TARGET_PER_S),
            met(p99 <= P99_TARGET_US)
        );
    }

    fn allocation_line(&self) -> String {
        if !self.allocator_installed {
            return "Allocations not counted: the program did not install `cx_benches::alloc_count::CountingAllocator` as its global allocator.".into();
        }
        let worst = self
            .rows
            .iter()
            .filter_map(|r| r.allocations_per_request)
            .fold(0.0_f64, f64::max);
        if worst == 0.0 {
            "Allocations per request in steady state (submit, tick, poll of timed chunks): 0 in every setup.".into()
        } else {
            format!("Allocations per request in steady state: up to {worst:.3} (see the table); the engine should make none.")
        }
    }

    fn write_stages(&self, md: &mut String) {
        let _ = writeln!(
            md,
            "\nStage times per tick, µs, p50 (engine `stats()` of the last repeat):\n"
        );
        let _ = writeln!(md, "| setup | batch | {} | tick |", STAGES.join(" | "));
        let _ = writeln!(md, "| --- | ---: |{}", " ---: |".repeat(STAGES.len() + 1));
        for row in &self.rows {
            let cells: Vec<String> = STAGES
                .iter()
                .chain(std::iter::once(&"tick"))
                .map(|stage| stage_cell(row, stage))
                .collect();
            let _ = writeln!(
                md,
                "| {} | {} | {} |",
                row.label,
                row.batch,
                cells.join(" | ")
            );
        }
    }
}

fn stage_cell(row: &EngineRow, stage: &str) -> String {
    row.stage_us_p50
        .iter()
        .find(|s| s.stage == stage)
        .map_or_else(|| "-".into(), |s| format!("{:.2}", s.us_p50))
}

fn show_load(load: Option<[f64; 3]>) -> String {
    load.map_or_else(
        || "unknown".into(),
        |[a, b, c]| format!("{a:.2} {b:.2} {c:.2}"),
    )
}

fn kilo(x: f64) -> String {
    format!("{:.0}k", x / 1000.0)
}

fn engine_row_markdown(row: &EngineRow) -> String {
    let t = &row.decisions_per_s;
    let label = match row.cache_hit_rate {
        Some(hit) => format!(
            "{} ({:.0}% repeats, {:.0}% hits)",
            row.label,
            REPEAT_SHARE * 100.0,
            hit * 100.0
        ),
        None => row.label.clone(),
    };
    let allocations = row
        .allocations_per_request
        .map_or_else(|| "not counted".into(), |a| format!("{a:.3}"));
    format!(
        "| {label} | {} | {} [{}-{}] | {:.2} | {:.0}% | {:.1} | {} | {:.1} | {:.1} | {:.1}x | {allocations} |\n",
        row.batch,
        kilo(t.median),
        kilo(t.min),
        kilo(t.max),
        row.us_per_decision,
        row.tick_share * 100.0,
        row.tick_us_p50.median,
        row.tick_us_p99.show(1),
        row.tick_us_p999.median,
        row.tick_us_max.median,
        row.vs_naive.median,
    )
}

/// Where a setup's requests come from.
enum Source {
    /// Cycling through the pool of distinct requests.
    Pool {
        pool: Vec<RequestContext>,
        next: usize,
    },
    /// Fresh generator rows, a share of them replaced by a repeat of one of
    /// the last [`REPEAT_WINDOW`] requests.
    Repeating {
        generator: Box<Generator>,
        recent: Vec<RequestContext>,
        rng: Box<ChaCha8Rng>,
        written: usize,
    },
}

impl Source {
    fn pool(pool: &[RequestContext]) -> Self {
        Self::Pool {
            pool: pool.to_vec(),
            next: 0,
        }
    }

    fn repeating(seed: u64) -> Result<Self> {
        let generator = Generator::new(SynthConfig::default(), seed)?;
        Ok(Self::Repeating {
            generator: Box::new(generator),
            recent: Vec::with_capacity(REPEAT_WINDOW),
            rng: Box::new(ChaCha8Rng::seed_from_u64(seed)),
            written: 0,
        })
    }

    /// The next `n` requests, owned.
    fn chunk(&mut self, n: usize) -> Vec<RequestContext> {
        match self {
            Self::Pool { pool, next } => (0..n)
                .map(|_| {
                    let ctx = pool[*next].clone();
                    *next = (*next + 1) % pool.len();
                    ctx
                })
                .collect(),
            Self::Repeating {
                generator,
                recent,
                rng,
                written,
            } => (0..n)
                .map(|_| repeating_next(generator, recent, rng, written))
                .collect(),
        }
    }
}

/// The cache-on setup's next request: a recent one repeated, or a fresh
/// generator row remembered among the recent ones.
fn repeating_next(
    generator: &mut Generator,
    recent: &mut Vec<RequestContext>,
    rng: &mut ChaCha8Rng,
    written: &mut usize,
) -> RequestContext {
    if !recent.is_empty() && rng.random_bool(REPEAT_SHARE) {
        return recent[rng.random_range(0..recent.len())].clone();
    }
    let ctx = RequestContext {
        timestamp: 0,
        ..generator.next_row().to_context()
    };
    if recent.len() < REPEAT_WINDOW {
        recent.push(ctx.clone());
    } else {
        recent[*written % REPEAT_WINDOW] = ctx.clone();
    }
    *written += 1;
    ctx
}

fn engine_error(what: impl Into<String>, source: cx_engine::Error) -> Error {
    Error::Engine {
        what: what.into(),
        source: Box::new(source),
    }
}

/// One setup's measurement in one repeat.
struct Sample {
    run: Run,
    /// Cache hits / lookups during the timed part.
    hit_rate: f64,
    /// Allocations on this thread while deciding the timed chunks.
    allocations: u64,
    stats: EngineStats,
}

/// Runs `setup` on a fresh engine: warm-up, then timed chunks from
/// `source` for at least `plan.run_time`.
fn measure(setup: &Setup, source: &mut Source, plan: &EnginePlan) -> Result<Sample> {
    let mut engine: Engine = setup
        .build(1)
        .map_err(|e| engine_error(format!("building {}", setup.label()), e))?;
    let origin = Instant::now();
    let mut warm = Run::default();
    let warm_up = source.chunk(WARM_UP_REQUESTS);
    decide_chunk(&mut engine, warm_up, setup.batch_max, origin, &mut warm);
    let before = engine.stats().cache;
    let mut run = Run::default();
    let mut allocations = 0;
    while run.elapsed < plan.run_time {
        let chunk = source.chunk(plan.chunk_requests);
        let counts = CountingAllocator::thread_counts();
        decide_chunk(&mut engine, chunk, setup.batch_max, origin, &mut run);
        allocations += CountingAllocator::thread_counts().since(counts).allocations;
    }
    let stats = engine.stats();
    let hits = stats.cache.hits - before.hits;
    let lookups =
        hits + (stats.cache.misses - before.misses) + (stats.cache.expired - before.expired);
    Ok(Sample {
        run,
        hit_rate: hits as f64 / lookups.max(1) as f64,
        allocations,
        stats,
    })
}

/// ns per clone of a pool request (the cost the timed loop leaves out).
fn clone_ns(pool: &[RequestContext]) -> f64 {
    let start = Instant::now();
    let copies: Vec<RequestContext> = pool.to_vec();
    let ns = start.elapsed().as_nanos() as f64 / pool.len().max(1) as f64;
    drop(std::hint::black_box(copies));
    ns
}

/// `/proc/loadavg`'s first three fields, if readable.
fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut fields = text.split_whitespace().map(|f| f.parse::<f64>().ok());
    Some([fields.next()??, fields.next()??, fields.next()??])
}

/// Runs the engine benchmark (see the module documentation) and returns
/// its summary.
pub fn run_engine_bench(opts: &EngineBenchOptions) -> Result<EngineBenchReport> {
    let plan = EnginePlan::resolve(opts)?;
    let started = Instant::now();
    let machine = MachineInfo::detect();
    let load_average_before = load_average();
    let allocator_installed = CountingAllocator::is_installed();
    let model = cx_engine::default_model()
        .map_err(|e| engine_error("loading the bundled model", e.into()))?;
    let offers = bundled_offers()?;
    let pool = request_pool(plan.pool_requests, 1);
    let setups = plan.setups();
    let (samples, clones) = run_repeats(&plan, &setups, &pool, started)?;
    let naive = setups
        .iter()
        .position(|(k, _)| *k == SetupKind::Naive)
        .unwrap_or_default();
    let rows: Vec<EngineRow> = setups
        .iter()
        .zip(&samples)
        .map(|((kind, setup), s)| engine_row(*kind, setup, s, &samples[naive], allocator_installed))
        .collect();
    let summary = summarise(&rows, &samples, &setups);
    Ok(EngineBenchReport {
        machine,
        quick: opts.quick,
        debug_build: cfg!(debug_assertions),
        model_shape: model_shape(&model),
        steps: model.steps(),
        offers,
        repeats: plan.repeats,
        run_ms: plan.run_time.as_millis() as u64,
        warm_up_requests: WARM_UP_REQUESTS,
        chunk_requests: plan.chunk_requests,
        pool_requests: plan.pool_requests,
        load_average_before,
        load_average_after: load_average(),
        allocator_installed,
        clone_ns_per_request: Spread::of(clones),
        rows,
        summary,
        elapsed_s: started.elapsed().as_secs_f64(),
    })
}

/// Every repeat of every setup, interleaved: each setup's samples in
/// `setups` order, and each repeat's clone cost (ns per request).
fn run_repeats(
    plan: &EnginePlan,
    setups: &[(SetupKind, Setup)],
    pool: &[RequestContext],
    started: Instant,
) -> Result<(Vec<Vec<Sample>>, Vec<f64>)> {
    let mut samples: Vec<Vec<Sample>> = setups.iter().map(|_| Vec::new()).collect();
    let mut clones = Vec::with_capacity(plan.repeats);
    for repeat in 0..plan.repeats {
        clones.push(clone_ns(pool));
        for (i, (kind, setup)) in setups.iter().enumerate() {
            let mut source = match kind {
                SetupKind::SimdCacheOn => Source::repeating(100 + repeat as u64)?,
                _ => Source::pool(pool),
            };
            let sample = measure(setup, &mut source, plan)?;
            if plan.progress {
                progress_line(setup, &sample);
            }
            samples[i].push(sample);
        }
        if plan.progress {
            eprintln!(
                "repeat {}/{} done ({:.0} s)",
                repeat + 1,
                plan.repeats,
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok((samples, clones))
}

/// `model`'s inputs, then each layer's width: `3128x64x16`.
fn model_shape(model: &SnnModel) -> String {
    let widths: Vec<String> = std::iter::once(model.inputs())
        .chain(model.layers().iter().map(|l| l.outputs))
        .map(|n| n.to_string())
        .collect();
    widths.join("x")
}

/// Offers in the bundled catalog, as an engine set up like the naive path
/// loads it.
fn bundled_offers() -> Result<usize> {
    let engine = Setup::naive()
        .build(1)
        .map_err(|e| engine_error("building an engine to read the catalog", e))?;
    Ok(engine.catalog().len())
}

fn progress_line(setup: &Setup, sample: &Sample) {
    eprintln!(
        "  {:<28} {:>7.0}/s  tick p50 {:>7.1} µs  p99 {:>7.1} µs",
        setup.label(),
        sample.run.decisions_per_s(),
        sample.run.tick_us(0.5),
        sample.run.tick_us(0.99)
    );
}

/// One setup's row from its samples; ratios against `naive`'s samples of
/// the same repeats.
fn engine_row(
    kind: SetupKind,
    setup: &Setup,
    samples: &[Sample],
    naive: &[Sample],
    counted: bool,
) -> EngineRow {
    let over = |f: fn(&Sample) -> f64| Spread::of(samples.iter().map(f));
    let decisions_per_s = over(|s| s.run.decisions_per_s());
    let requests: u64 = samples.iter().map(|s| s.run.requests).sum();
    let allocations: u64 = samples.iter().map(|s| s.allocations).sum();
    let last = samples.last().map(|s| &s.stats);
    EngineRow {
        setup: kind,
        label: kind.label().to_string(),
        backend: setup.backend.to_string(),
        batch: setup.batch_max,
        cache_capacity: setup.cache_capacity,
        requests,
        decisions_per_s,
        us_per_decision: 1e6 / decisions_per_s.median.max(1e-12),
        tick_share: over(|s| s.run.tick_share()).median,
        tick_us_p50: over(|s| s.run.tick_us(0.5)),
        tick_us_p99: over(|s| s.run.tick_us(0.99)),
        tick_us_p999: over(|s| s.run.tick_us(0.999)),
        tick_us_max: over(|s| s.run.ticks.max() as f64 / 1000.0),
        vs_naive: ratio_per_repeat(samples, naive),
        allocations_per_request: counted.then(|| allocations as f64 / requests.max(1) as f64),
        cache_hit_rate: (setup.cache_capacity > 0).then(|| over(|s| s.hit_rate).median),
        stage_us_p50: last.map(stage_times).unwrap_or_default(),
    }
}

/// `a`'s decisions/s over `b`'s, repeat by repeat.
fn ratio_per_repeat(a: &[Sample], b: &[Sample]) -> Spread {
    Spread::of(
        a.iter()
            .zip(b)
            .map(|(x, y)| x.run.decisions_per_s() / y.run.decisions_per_s().max(1e-12)),
    )
}

fn stage_times(stats: &EngineStats) -> Vec<StageTime> {
    stats
        .latency
        .iter()
        .map(|l| StageTime {
            stage: l.stage.to_string(),
            us_p50: l.p50_ns as f64 / 1000.0,
        })
        .collect()
}

/// The comparisons of the summary; `setups[i]`'s samples are `samples[i]`.
fn summarise(
    rows: &[EngineRow],
    samples: &[Vec<Sample>],
    setups: &[(SetupKind, Setup)],
) -> EngineSummary {
    let simd: Vec<usize> = (0..rows.len())
        .filter(|&i| rows[i].setup == SetupKind::Simd)
        .collect();
    let by_rate = |&a: &usize, &b: &usize| {
        rows[a]
            .decisions_per_s
            .median
            .total_cmp(&rows[b].decisions_per_s.median)
    };
    let naive = setups.iter().position(|(k, _)| *k == SetupKind::Naive);
    let Some((best, naive)) = simd.iter().copied().max_by(by_rate).zip(naive) else {
        return EngineSummary::default();
    };
    let batch1 = simd.iter().copied().find(|&i| rows[i].batch == 1);
    let within = simd
        .iter()
        .copied()
        .filter(|&i| rows[i].tick_us_p99.median <= P99_TARGET_US)
        .max_by(by_rate);
    EngineSummary {
        best_batch: rows[best].batch,
        best_decisions_per_s: rows[best].decisions_per_s.median,
        best_vs_naive: ratio_per_repeat(&samples[best], &samples[naive]),
        batch1_vs_naive: batch1.map(|b| ratio_per_repeat(&samples[b], &samples[naive])),
        best_vs_batch1: batch1.map(|b| ratio_per_repeat(&samples[best], &samples[b])),
        best_batch_within_p99_target: within.map(|i| rows[i].batch),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cx_engine::backends::BackendKind;

    #[test]
    fn plans_fill_defaults_and_refuse_bad_values() {
        let full = EnginePlan::resolve(&EngineBenchOptions::default()).unwrap();
        assert_eq!(full.batches, BATCHES);
        assert_eq!(full.setups().len(), BATCHES.len() + 2);
        let quick = EnginePlan::resolve(&EngineBenchOptions::quick()).unwrap();
        assert!(quick.run_time < full.run_time);
        let mut o = EngineBenchOptions::quick();
        o.batches = Some(vec![0]);
        assert!(EnginePlan::resolve(&o)
            .unwrap_err()
            .to_string()
            .starts_with("--batches"));
        o.batches = None;
        o.repeats = Some(0);
        assert!(EnginePlan::resolve(&o)
            .unwrap_err()
            .to_string()
            .starts_with("--repeats"));
        o.repeats = None;
        o.cache_row = Some(false);
        let setups = EnginePlan::resolve(&o).unwrap().setups();
        assert_eq!(setups.last().map(|s| s.0), Some(SetupKind::Naive));
        assert_eq!(SetupKind::Naive.setup(16).backend, BackendKind::Scalar);
    }

    /// The library's unit tests run without the counting allocator: the
    /// report must say "not counted", not zero.
    #[test]
    fn allocations_are_not_counted_without_the_counting_allocator() {
        let options = EngineBenchOptions {
            quick: true,
            batches: Some(vec![4]),
            repeats: Some(1),
            run_ms: Some(1),
            cache_row: Some(false),
            progress: false,
        };
        let report = run_engine_bench(&options).expect("engine bench");
        assert!(!report.allocator_installed);
        assert!(report
            .rows
            .iter()
            .all(|r| r.allocations_per_request.is_none()));
        assert!(report.to_markdown().contains("Allocations not counted"));
    }
}
