//! `cx-bench`: the benchmark command line.
//!
//! Only argument parsing and printing live here; the work is in the
//! `cx_benches` library (`kernel_bench`, `engine_bench`, `load`, `all`).
//! Each subcommand is one variant of [`Command`] with its own `Args`
//! struct. The binary installs the counting allocator, so that the engine
//! benchmark counts heap allocations per request.
//!
//! ```text
//! cx-bench kernel --quick --json kernel.json --md kernel.md
//! cx-bench engine --batches 1,16,64 --repeats 5 --run-ms 300
//! cx-bench load --addr 127.0.0.1:7070 --rate 50000 --duration-s 5 --connections 4 --depth 64
//! cx-bench load --addr 127.0.0.1:7070 --sweep --slo-us 1000 --json sweep.json --svg sweep.svg
//! cx-bench load --http --addr 127.0.0.1:8080 --mix requests.jsonl --rate 20000
//! cx-bench all --quick --out bench-results
//! ```

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use cx_benches::all::{run_all, AllOptions, TargetStatus, DEFAULT_OUT_DIR, TARGET_RATE_PER_S};
use cx_benches::alloc_count::CountingAllocator;
use cx_benches::engine_bench::{run_engine_bench, EngineBenchOptions};
use cx_benches::kernel_bench::{
    export_kernel_workload, parse_shape, run_kernel_bench, run_model_bench, KernelBackend,
    KernelBenchOptions, ModelSource,
};
use cx_benches::stall::{run_stall_probe, StallOptions};
use cx_benches::KERNEL_SHAPES;
use cx_load::{write_json, write_text};
use load::{load_command, LoadArgs};
use std::path::PathBuf;
use std::process::ExitCode;

// In a folder of its own: a file beside this one would be a binary.
#[path = "cx-bench/load.rs"]
mod load;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// CampaignExpress benchmarks: the kernel and the engine in process,
/// `load` against a running `cx serve`, or `all` of them with servers in
/// process.
#[derive(Debug, Parser)]
#[command(name = "cx-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The benchmarks.
#[derive(Debug, Subcommand)]
enum Command {
    /// The scalar and SIMD kernels: µs per sample by shape and batch,
    /// against the core's measured FMA peak (about 20 s; --quick: a few).
    Kernel(KernelArgs),
    /// The whole engine in process, one thread: decisions per second and
    /// tick latency by batch size, against the naive path, with heap
    /// allocations per request (about 45 s; --quick: a few).
    Engine(EngineArgs),
    /// Offer a fixed request rate to a running `cx serve` (open loop) and
    /// report throughput and latency; with --sweep, step the rate up to
    /// find the highest one within a p99 SLO; with --http, to its OpenRTB
    /// HTTP bidder.
    Load(LoadArgs),
    /// How steadily this machine runs a fixed in-cache work unit on each
    /// core at once: the share of 10 ms windows in which a core was slowed
    /// 2x or more, and how long such stretches last. The floor under any
    /// tail latency measured here (10 s).
    Stall(StallArgs),
    /// Every benchmark in one process: kernel, engine, then servers in
    /// process against the load generator (a sweep, half load, 2x
    /// overload, the bare echo loop) and the loopback floor (sockperf, if
    /// installed), into one folder with a summary of the targets; a run
    /// whose generator lagged more than the SLO is marked invalid there;
    /// exits non-zero if any part failed (a few minutes; --quick:
    /// seconds).
    All(AllArgs),
}

/// Arguments of `cx-bench kernel`.
#[derive(Debug, Args)]
struct KernelArgs {
    /// A few seconds: batches 1 and 16, 3 short repeats.
    #[arg(long)]
    quick: bool,
    /// Shapes DxHxO, comma-separated (default 64x256x16,256x512x64).
    #[arg(long, value_name = "DxHxO,..", value_delimiter = ',')]
    shapes: Vec<String>,
    /// Batch sizes, comma-separated (default 1,16,64,256; quick 1,16).
    #[arg(long, value_name = "N,..", value_delimiter = ',')]
    batches: Vec<usize>,
    /// Kernels, comma-separated: scalar, simd (default both).
    #[arg(long, value_name = "scalar|simd,..", value_delimiter = ',')]
    backends: Vec<String>,
    /// Repeats per cell (default 7; quick 3).
    #[arg(long, value_name = "N")]
    repeats: Option<usize>,
    /// Least time of one repeat of one cell, ms (default 150; quick 20).
    #[arg(long, value_name = "MS")]
    repeat_ms: Option<u64>,
    /// Time this model file (safetensors) with its own weights instead of
    /// the benchmark networks (--shapes does not apply).
    #[arg(long, value_name = "FILE", conflicts_with = "shapes")]
    model: Option<PathBuf>,
    /// With --model: input rows, JSON (an array of rows or one row).
    /// Default: synthetic requests through feature schema v1 when the
    /// model is on it, else one row of zeros.
    #[arg(long, value_name = "X.json", requires = "model")]
    input: Option<PathBuf>,
    /// Write each shape's benchmark network and reference outputs here
    /// (for the ONNX Runtime peer, benches/onnx/) and time nothing.
    #[arg(long, value_name = "DIR", conflicts_with = "model")]
    export: Option<PathBuf>,
    /// Write the report as JSON here.
    #[arg(long, value_name = "OUT.json")]
    json: Option<PathBuf>,
    /// Write the report as markdown here (it is printed either way).
    #[arg(long, value_name = "OUT.md")]
    md: Option<PathBuf>,
}

/// Arguments of `cx-bench engine`.
#[derive(Debug, Args)]
struct EngineArgs {
    /// A few seconds: batches 1, 16 and 64, 3 short repeats.
    #[arg(long)]
    quick: bool,
    /// SIMD batch sizes, comma-separated (default 1,4,8,16,32,64; quick
    /// 1,16,64).
    #[arg(long, value_name = "N,..", value_delimiter = ',')]
    batches: Vec<usize>,
    /// Repeats (default 9; quick 3).
    #[arg(long, value_name = "N")]
    repeats: Option<usize>,
    /// Least timed run of each setup in each repeat, ms (default 500;
    /// quick 30).
    #[arg(long, value_name = "MS")]
    run_ms: Option<u64>,
    /// Leave out the cache-on setup.
    #[arg(long)]
    no_cache_row: bool,
    /// No progress lines on stderr.
    #[arg(long, short)]
    quiet: bool,
    /// Write the report as JSON here.
    #[arg(long, value_name = "OUT.json")]
    json: Option<PathBuf>,
    /// Write the report as markdown here (it is printed either way).
    #[arg(long, value_name = "OUT.md")]
    md: Option<PathBuf>,
}

/// Arguments of `cx-bench stall`.
#[derive(Debug, Args)]
struct StallArgs {
    /// How long each core's thread runs, seconds.
    #[arg(long, value_name = "S", default_value_t = 10.0)]
    duration_s: f64,
    /// The window over which unit times are averaged, ms.
    #[arg(long, value_name = "MS", default_value_t = StallOptions::default().window_ms)]
    window_ms: u64,
    /// A window at least this many times slower than the fastest unit
    /// counts as slow.
    #[arg(long, value_name = "X", default_value_t = StallOptions::default().slow_factor)]
    slow_factor: f64,
    /// Write the report as JSON here.
    #[arg(long, value_name = "OUT.json")]
    json: Option<PathBuf>,
    /// Write the report as markdown here (it is printed either way).
    #[arg(long, value_name = "OUT.md")]
    md: Option<PathBuf>,
}

/// Arguments of `cx-bench all`. Unset values take the mode's default.
#[derive(Debug, Args)]
#[command(after_long_help = ALL_HELP)]
struct AllArgs {
    /// Tiny rates and windows: a smoke run of every part (seconds); no
    /// target is assessed.
    #[arg(long)]
    quick: bool,
    /// The folder every output goes to.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_OUT_DIR)]
    out: PathBuf,
    /// The reference rate, requests per second: the sweep's throughput
    /// target; the fixed-rate runs offer half of it (default 150000;
    /// quick 4000).
    #[arg(long, value_name = "REQ_PER_S")]
    rate: Option<f64>,
    /// The SLO: p99 latency of the accepted requests, µs (default 1000).
    #[arg(long, value_name = "US")]
    slo_us: Option<f64>,
    /// Repeats of each fixed-rate run, each on a fresh server (default 3;
    /// quick 1).
    #[arg(long, value_name = "N")]
    load_repeats: Option<usize>,
    /// Each fixed-rate run's measured window, seconds (default 5; quick
    /// 0.2).
    #[arg(long, value_name = "S")]
    duration_s: Option<f64>,
    /// Load offered before each window and not counted, seconds (default
    /// 1; quick 0.05).
    #[arg(long, value_name = "S")]
    warmup_s: Option<f64>,
    /// Each sweep step's measured window, seconds (default 3; quick 0.2).
    #[arg(long, value_name = "S")]
    step_s: Option<f64>,
    /// The sweep's first rate, requests per second (default: --rate
    /// divided by --step-factor 6 times, 2 in quick mode, so that a step
    /// offers exactly --rate).
    #[arg(long, value_name = "REQ_PER_S")]
    start_rate: Option<f64>,
    /// The sweep's highest rate, requests per second (default 1000000;
    /// quick: --rate).
    #[arg(long, value_name = "REQ_PER_S")]
    max_rate: Option<f64>,
    /// Each sweep step's rate over the previous one's (default 1.5; quick
    /// 2).
    #[arg(long, value_name = "X")]
    step_factor: Option<f64>,
    /// The sweep stops after this many steps in a row miss the SLO, or at
    /// a miss where the server no longer keeps up (default 100, the most a
    /// sweep may have: it goes on until the server no longer keeps up,
    /// which measures its capacity).
    #[arg(long, value_name = "N")]
    stop_after_misses: Option<usize>,
    /// Connections of every load run (default 4; quick 2).
    #[arg(long, value_name = "N")]
    connections: Option<usize>,
    /// Most requests in flight per connection (default 1024, the protocol's
    /// limit; quick 32).
    #[arg(long, value_name = "N")]
    depth: Option<usize>,
    /// The engine's in_flight_max in the overload runs, small so that the
    /// server sheds load (default 16).
    #[arg(long, value_name = "N")]
    overload_in_flight_max: Option<usize>,
    /// Leave the server and the load generator unpinned.
    #[arg(long)]
    no_pin: bool,
    /// No progress lines on stderr.
    #[arg(long, short)]
    quiet: bool,
}

const ALL_HELP: &str = "\
OUTPUTS (in --out)
  kernel.json, kernel.md     the kernel benchmark
  engine.json, engine.md     the engine benchmark
  sweep.json, sweep.svg      the rate sweep against the in-process server
  load-half.json             fixed rate at half of --rate
  echo.json                  the bare echo loop at the same rate, and the
                             server's latency over it
  stall.json, stall.md       the stall probe: how steadily each core runs
  load-overload.json         twice the server's capacity (the sweep's highest
                             achieved rate), small in_flight_max
  summary.md, summary.json   the machine, the command, medians and ranges,
                             and each target with where it stands

THREADS
  With two or more cores, each server's worker runs on the first core the
  process may use and the load generator on the second; otherwise (or with
  --no-pin) unpinned, as the summary says.

EXIT STATUS
  Non-zero if any part failed or any output did not read back. A target
  not met is a result, not a failure.

EXAMPLE
  cargo build --release --bin cx --bin cx-bench
  target/release/cx bench all --out bench-results";

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Kernel(args) => kernel_command(args),
        Command::Engine(args) => engine_command(args),
        Command::Load(args) => load_command(args),
        Command::Stall(args) => stall_command(args),
        Command::All(args) => all_command(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cx-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `Some(list)` unless `list` is empty (the flag was not given).
fn given<T>(list: Vec<T>) -> Option<Vec<T>> {
    (!list.is_empty()).then_some(list)
}

/// Prints a report's markdown, and writes it as JSON and markdown where
/// `--json` and `--md` say.
fn emit(
    report: &impl serde::Serialize,
    md: &str,
    json_path: Option<&std::path::Path>,
    md_path: Option<&std::path::Path>,
) -> Result<()> {
    print!("{md}");
    if let Some(path) = json_path {
        write_json(path, "--json", report)?;
    }
    if let Some(path) = md_path {
        write_text(path, "--md", md)?;
    }
    Ok(())
}

/// `cx-bench stall`.
fn stall_command(args: &StallArgs) -> Result<()> {
    if !(args.duration_s.is_finite() && args.duration_s > 0.0) {
        anyhow::bail!(
            "--duration-s {}: must be a positive number of seconds",
            args.duration_s
        );
    }
    let options = StallOptions {
        duration_ms: (args.duration_s * 1000.0).round() as u64,
        window_ms: args.window_ms,
        slow_factor: args.slow_factor,
    };
    let report = run_stall_probe(&options)?;
    emit(
        &report,
        &report.to_markdown(),
        args.json.as_deref(),
        args.md.as_deref(),
    )
}

/// `cx-bench kernel`.
fn kernel_command(args: &KernelArgs) -> Result<()> {
    let shapes = args
        .shapes
        .iter()
        .map(|s| parse_shape(s))
        .collect::<cx_benches::Result<Vec<_>>>()?;
    let backends = args
        .backends
        .iter()
        .map(|b| b.parse::<KernelBackend>())
        .collect::<cx_benches::Result<Vec<_>>>()?;
    let options = KernelBenchOptions {
        quick: args.quick,
        shapes: given(shapes),
        batches: given(args.batches.clone()),
        backends: given(backends),
        repeats: args.repeats,
        repeat_ms: args.repeat_ms,
    };
    if let Some(dir) = &args.export {
        for shape in options
            .shapes
            .clone()
            .unwrap_or_else(|| KERNEL_SHAPES.to_vec())
        {
            let (model, reference) = export_kernel_workload(shape, dir)?;
            println!("{} {}", model.display(), reference.display());
        }
        return Ok(());
    }
    let report = match &args.model {
        Some(path) => run_model_bench(
            &options,
            &ModelSource {
                path: path.clone(),
                input: args.input.clone(),
            },
        )?,
        None => run_kernel_bench(&options)?,
    };
    emit(
        &report,
        &report.to_markdown(),
        args.json.as_deref(),
        args.md.as_deref(),
    )
}

/// `cx-bench engine`.
fn engine_command(args: &EngineArgs) -> Result<()> {
    let options = EngineBenchOptions {
        quick: args.quick,
        batches: given(args.batches.clone()),
        repeats: args.repeats,
        run_ms: args.run_ms,
        cache_row: args.no_cache_row.then_some(false),
        progress: !args.quiet,
    };
    let report = run_engine_bench(&options)?;
    emit(
        &report,
        &report.to_markdown(),
        args.json.as_deref(),
        args.md.as_deref(),
    )
}

/// The command line as typed, each argument quoted where a shell needs it.
fn command_line() -> String {
    std::env::args()
        .map(|arg| {
            let plain = !arg.is_empty()
                && arg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
            if plain {
                arg
            } else {
                format!("'{}'", arg.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `cx-bench all`: prints the summary; fails if any part failed or any
/// output did not read back.
fn all_command(args: &AllArgs) -> Result<()> {
    let options = AllOptions {
        quick: args.quick,
        out_dir: args.out.clone(),
        rate_per_s: args.rate,
        slo_us: args.slo_us,
        load_repeats: args.load_repeats,
        duration_s: args.duration_s,
        warmup_s: args.warmup_s,
        step_s: args.step_s,
        start_rate_per_s: args.start_rate,
        max_rate_per_s: args.max_rate,
        step_factor: args.step_factor,
        stop_after_misses: args.stop_after_misses,
        connections: args.connections,
        depth: args.depth,
        overload_in_flight_max: args.overload_in_flight_max,
        no_pin: args.no_pin,
        command: command_line(),
        progress: !args.quiet,
    };
    let report = run_all(&options)?;
    print!("{}", report.to_markdown());
    for e in &report.errors {
        eprintln!("cx-bench all: {}: {}", e.part, e.error);
    }
    let not_met = report
        .targets
        .iter()
        .filter(|t| t.status == TargetStatus::NotMet)
        .count();
    eprintln!(
        "cx-bench all: {} files in {}; {} of {} targets not met (reference {:.0}/s; the issue's {:.0}/s){}",
        report.files.len(),
        report.out_dir,
        not_met,
        report.targets.len(),
        report.settings.reference_rate_per_s,
        TARGET_RATE_PER_S,
        if report.quick { "; quick mode assesses none" } else { "" }
    );
    if report.errors.is_empty() {
        Ok(())
    } else {
        anyhow::bail!(
            "{} error(s): a part failed or an output did not read back (listed above)",
            report.errors.len()
        )
    }
}
