//! `cx-bench load`: its arguments, its help, and the command (one run or
//! a sweep, over the binary protocol or with `--http` over HTTP).

use anyhow::Result;
use clap::Args;
use cx_load::plot::write_sweep_svg;
use cx_load::sweep::step_line;
use cx_load::{write_json, LoadConfig, Mix, SweepConfig, SweepReport, Wire};
use std::path::PathBuf;

/// Arguments of `cx-bench load`.
#[derive(Debug, Args)]
#[command(after_long_help = LOAD_HELP)]
pub(crate) struct LoadArgs {
    /// The decision server's address: its binary protocol listener
    /// (`cx serve --listen`), or with --http its HTTP bidder (`cx serve
    /// --http-listen`, 127.0.0.1:8080 by default).
    #[arg(long, value_name = "HOST:PORT")]
    addr: String,
    /// Send OpenRTB bid requests over HTTP/1.1 (`POST /openrtb2/bid`,
    /// keep-alive, up to --depth pipelined per connection) instead of the
    /// binary protocol; needs --mix FILE. A 200 (bid) or 204 (no-bid)
    /// is an answer, any other status an error.
    #[arg(long)]
    http: bool,
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
    /// Most requests in flight per connection (1 to 1024; the server's
    /// hello caps it, and with --http the bidder's 64).
    #[arg(long, value_name = "N", default_value_t = LoadConfig::default().depth)]
    depth: usize,
    /// `synth` (the synthetic generator, sent as score_context), `echo`
    /// (pong frames, for `cx serve --echo`: the bare event loop; no hello),
    /// or an OpenRTB JSONL file (sent as score_openrtb, or with --http as
    /// POST bodies): one request per line or {"request": ...} wrappers.
    #[arg(long, value_name = "synth|echo|FILE", default_value = "synth")]
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
    /// cache entry is spent). Binary protocol only: over HTTP a request
    /// asks for it with "test": 1.
    #[arg(long, conflicts_with = "http")]
    simulate: bool,
    /// Binary protocol with --mix FILE: ask for each answer as a
    /// bid_response frame (the OpenRTB BidResponse as JSON, as the HTTP
    /// bidder answers), so that only HTTP itself differs from --http.
    #[arg(long, conflicts_with = "http")]
    bid_response: bool,
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
    /// The SLO: p99 latency of the accepted requests, µs. A run (or step)
    /// whose generator's send lag p99 is over it is reported invalid: its
    /// latencies are the generator's, not the server's.
    #[arg(long, value_name = "US", default_value_t = SweepConfig::default().slo_us)]
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
    /// Stop after this many steps in a row miss the SLO (or at a miss
    /// where the server no longer keeps up).
    #[arg(long, value_name = "N", requires = "sweep",
          default_value_t = SweepConfig::default().stop_after_misses)]
    stop_after_misses: usize,
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

ECHO BASELINE
  cx serve --echo --listen 127.0.0.1:7071 &
  cx-bench load --addr 127.0.0.1:7071 --mix echo --rate 50000
  measures the bare event loop: the same load, nothing decoded or decided.

HTTP (--http)
  The same schedule, counts and report, over HTTP/1.1 to the OpenRTB bidder:
  each request of --mix FILE is sent as POST /openrtb2/bid with its JSON as
  the body (head and body built once, before the clock starts), on
  keep-alive connections with up to --depth (at most 64, the bidder's
  limit) pipelined. Answers come back in request order: 200 counts as ok
  (a bid), 204 as ok (a no-bid, counted apart), any other status as an
  error named http_STATUS, an answer that cannot be framed as
  invalid_response (and its connection ends).
    cx serve --http-listen 127.0.0.1:8080 &
    cx-bench load --http --addr 127.0.0.1:8080 \\
        --mix components/wire/tests/fixtures/openrtb/prebid_sample.jsonl --rate 20000
  The binary protocol's score_openrtb with --bid-response asks for the same
  BidResponse JSON the bidder sends, so that HTTP itself is all that differs.
  benches/wrk/compare.sh runs it beside wrk (closed loop) on one server.

EXAMPLE
  cx serve --listen 127.0.0.1:7070 &
  cx-bench load --addr 127.0.0.1:7070 --rate 50000 --duration-s 5 --json load.json
  cx-bench load --addr 127.0.0.1:7070 --sweep --start-rate 10000 --step-factor 1.5 \\
      --json sweep.json --svg sweep.svg --compare earlier.json";

/// `cx-bench load`: one run, or a sweep.
pub(crate) fn load_command(args: &LoadArgs) -> Result<()> {
    let config = LoadConfig {
        addr: args.addr.clone(),
        wire: if args.http { Wire::Http } else { Wire::Binary },
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
        bid_response: args.bid_response,
        progress: !args.quiet,
    };
    if args.sweep.sweep {
        return sweep_command(args, config);
    }
    let report = cx_load::run(&config)?;
    print!("{}", report.summary());
    println!("{}", generator_verdict(&report, args.sweep.slo_us));
    if let Some(path) = &args.json {
        write_json(path, "--json", &report)?;
    }
    Ok(())
}

/// Whether a run's figures are the server's: the generator's send lag p99
/// against the SLO.
fn generator_verdict(report: &cx_load::LoadReport, slo_us: f64) -> String {
    let lag_us = report.send_lag.p99_ns as f64 / 1e3;
    if report.generator_kept_up(slo_us) {
        format!("generator: kept up (send lag p99 {lag_us:.1} µs, within the SLO of {slo_us} µs)")
    } else {
        format!(
            "generator: INVALID RUN: its send lag p99 {lag_us:.1} µs is over the SLO of \
             {slo_us} µs (--slo-us), so these latencies measure the generator, not the server"
        )
    }
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
        stop_after_misses: s.stop_after_misses,
    };
    let report = cx_load::run_sweep(&config, |step| println!("{}", step_line(step)))?;
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
