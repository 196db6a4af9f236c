//! `cx-bench`: the benchmark command line.
//!
//! Only argument parsing and printing live here; the work is in the
//! `cx_benches` library, so that other commands (`kernel`, `engine`, and an
//! `all` that runs every benchmark) can call it too. Each subcommand is one
//! variant of [`Command`] with its own `Args` struct.
//!
//! ```text
//! cx-bench load --addr 127.0.0.1:7070 --rate 50000 --duration-s 5 --connections 4 --depth 64
//! cx-bench load --addr 127.0.0.1:7070 --sweep --slo-us 1000 --json sweep.json --svg sweep.svg
//! ```

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use cx_benches::load::plot::write_sweep_svg;
use cx_benches::load::sweep::step_line;
use cx_benches::load::{self, write_json, LoadConfig, Mix, SweepConfig, SweepReport};
use std::path::PathBuf;
use std::process::ExitCode;

/// CampaignExpress benchmarks: `load` drives a running `cx serve`.
#[derive(Debug, Parser)]
#[command(name = "cx-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The benchmarks.
#[derive(Debug, Subcommand)]
enum Command {
    /// Offer a fixed request rate to a running `cx serve` (open loop) and
    /// report throughput and latency; with --sweep, step the rate up to
    /// find the highest one within a p99 SLO.
    Load(LoadArgs),
}

/// Arguments of `cx-bench load`.
#[derive(Debug, Args)]
#[command(after_long_help = LOAD_HELP)]
struct LoadArgs {
    /// The decision server's protocol address.
    #[arg(long, value_name = "HOST:PORT")]
    addr: String,
    /// Offered rate over all connections, requests per second (ignored by
    /// --sweep).
    #[arg(long, value_name = "REQ_PER_S", default_value_t = LoadConfig::default().rate_per_s)]
    rate: f64,
    /// The measured window, seconds (each step's is --step-s).
    #[arg(long, value_name = "S", default_value_t = LoadConfig::default().duration_s)]
    duration_s: f64,
    /// Connections (1 to 1024).
    #[arg(long, value_name = "N", default_value_t = LoadConfig::default().connections)]
    connections: usize,
    /// Most requests in flight per connection (1 to 1024).
    #[arg(long, value_name = "N", default_value_t = LoadConfig::default().depth)]
    depth: usize,
    /// `synth` (the synthetic generator, sent as score_context) or an
    /// OpenRTB JSONL file (sent as score_openrtb).
    #[arg(long, value_name = "synth|FILE", default_value = "synth")]
    mix: String,
    /// The synthetic generator's seed.
    #[arg(long, value_name = "N", default_value_t = LoadConfig::default().seed)]
    seed: u64,
    /// Distinct requests cycled through: synthetic rows, or the file's
    /// first requests.
    #[arg(long, value_name = "N", default_value_t = LoadConfig::default().pool)]
    pool: usize,
    /// Load offered first and not counted, seconds.
    #[arg(long, value_name = "S", default_value_t = LoadConfig::default().warmup_s)]
    warmup_s: f64,
    /// After the window, how long to go on sending the backlog and
    /// waiting for answers, seconds.
    #[arg(long, value_name = "S", default_value_t = LoadConfig::default().drain_s)]
    drain_s: f64,
    /// Ask for decisions in simulation mode (no budget, frequency cap or
    /// cache entry is spent).
    #[arg(long)]
    simulate: bool,
    /// No progress line on stderr.
    #[arg(long, short)]
    quiet: bool,
    /// Write the report (or the sweep, every step) as JSON here.
    #[arg(long, value_name = "OUT.json")]
    json: Option<PathBuf>,
    #[command(flatten)]
    sweep: SweepArgs,
}

/// The sweep's arguments of `cx-bench load`.
#[derive(Debug, Args)]
struct SweepArgs {
    /// Step the offered rate up from --start-rate, --step-s each, until a
    /// step misses the SLO or --max-rate is done.
    #[arg(long)]
    sweep: bool,
    /// The SLO: p99 latency of the accepted requests, µs.
    #[arg(long, value_name = "US", requires = "sweep",
          default_value_t = SweepConfig::default().slo_us)]
    slo_us: f64,
    /// Most of the requests due that may fail (errors, unanswered,
    /// unsent) within the SLO, a ratio.
    #[arg(long, value_name = "RATIO", requires = "sweep",
          default_value_t = SweepConfig::default().failed_ratio_max)]
    max_failed_ratio: f64,
    /// The first step's rate, requests per second.
    #[arg(long, value_name = "REQ_PER_S", requires = "sweep",
          default_value_t = SweepConfig::default().start_rate_per_s)]
    start_rate: f64,
    /// The highest rate offered, requests per second.
    #[arg(long, value_name = "REQ_PER_S", requires = "sweep",
          default_value_t = SweepConfig::default().max_rate_per_s)]
    max_rate: f64,
    /// Each step's rate is the previous one's times this.
    #[arg(long, value_name = "X", requires = "sweep", conflicts_with = "step_add",
          default_value_t = SweepConfig::default().step_factor)]
    step_factor: f64,
    /// Each step's rate is the previous one's plus this (instead of
    /// --step-factor), requests per second.
    #[arg(long, value_name = "REQ_PER_S", requires = "sweep")]
    step_add: Option<f64>,
    /// Each step's measured window, seconds.
    #[arg(long, value_name = "S", requires = "sweep",
          default_value_t = SweepConfig::default().step_s)]
    step_s: f64,
    /// Plot the latency percentiles against offered load as SVG here.
    #[arg(long, value_name = "OUT.svg", requires = "sweep")]
    svg: Option<PathBuf>,
    /// An earlier sweep's JSON, drawn dashed on the plot.
    #[arg(long, value_name = "OTHER.json", requires = "svg")]
    compare: Option<PathBuf>,
}

const LOAD_HELP: &str = "\
TIMING
  Request i is due at start + i / rate and goes to connection i mod N. Its
  latency runs from that intended time to its answer, so requests the
  generator or a full --depth held back still count from when they were
  due (no coordinated omission). `send lag` reports how late they went out.

COUNTS
  Over the requests due in the window: sent = ok + overloaded + other
  errors + unanswered, and scheduled = sent + unsent.

EXAMPLE
  cx serve --listen 127.0.0.1:7070 &
  cx-bench load --addr 127.0.0.1:7070 --rate 50000 --duration-s 5 --json load.json
  cx-bench load --addr 127.0.0.1:7070 --sweep --start-rate 10000 --step-factor 1.5 \\
      --json sweep.json --svg sweep.svg --compare earlier.json";

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Load(args) => load_command(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cx-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `cx-bench load`: one run, or a sweep.
fn load_command(args: &LoadArgs) -> Result<()> {
    let config = LoadConfig {
        addr: args.addr.clone(),
        rate_per_s: args.rate,
        duration_s: args.duration_s,
        warmup_s: args.warmup_s,
        drain_s: args.drain_s,
        connections: args.connections,
        depth: args.depth,
        mix: args.mix.parse::<Mix>()?,
        seed: args.seed,
        pool: args.pool,
        simulate: args.simulate,
        progress: !args.quiet,
    };
    if args.sweep.sweep {
        return sweep_command(args, config);
    }
    let report = load::run(&config)?;
    print!("{}", report.summary());
    if let Some(path) = &args.json {
        write_json(path, "--json", &report)?;
    }
    Ok(())
}

/// `cx-bench load --sweep`: reads --compare first, so that a bad file
/// fails before any load runs.
fn sweep_command(args: &LoadArgs, load: LoadConfig) -> Result<()> {
    let s = &args.sweep;
    let compare = match &s.compare {
        Some(path) => Some((
            path.display().to_string(),
            SweepReport::read(path, "--compare")?,
        )),
        None => None,
    };
    let config = SweepConfig {
        load,
        start_rate_per_s: s.start_rate,
        max_rate_per_s: s.max_rate,
        step_factor: s.step_factor,
        step_add_per_s: s.step_add,
        step_s: s.step_s,
        slo_us: s.slo_us,
        failed_ratio_max: s.max_failed_ratio,
    };
    let report = load::run_sweep(&config, |step| println!("{}", step_line(step)))?;
    if let Some(best) = report.summary().lines().last() {
        println!("{best}");
    }
    if let Some(path) = &args.json {
        write_json(path, "--json", &report)?;
    }
    if let Some(path) = &s.svg {
        let earlier = compare.as_ref().map(|(label, r)| (label.as_str(), r));
        write_sweep_svg(path, &report, earlier)?;
    }
    Ok(())
}
