//! `cx experiment simulate`: A/A and A/B experiments run live through the
//! engine on the synthetic world, many seeds, with the tests read at every
//! look (`crate::simulate::ab`; `docs/EXPERIMENTS.md`, "Live proof").

use super::Streams;
use crate::error::Result;
use crate::simulate::ab::{simulate, AbSpec};
use clap::Args;

/// Arguments of `cx experiment simulate`.
#[derive(Debug, Args)]
#[command(after_long_help = SIMULATE_HELP)]
pub struct SimulateArgs {
    /// Runs, each with its own seed and its own split of the users.
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub seeds: u64,
    /// The first run's seed (then seed + 1, ...).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// Requests per run.
    #[arg(long, value_name = "N", default_value_t = 20_000)]
    pub requests: u64,
    /// Read the tests every N impressions (both arms).
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub look_every: u64,
    /// The control's model: the bundled model with Gaussian noise of this
    /// many times each layer's RMS weight added (0: the bundled model).
    #[arg(long, value_name = "S", default_value_t = 0.0)]
    pub control_noise: f64,
    /// The treatment's model, the same way.
    #[arg(long, value_name = "S", default_value_t = 0.0)]
    pub treatment_noise: f64,
    /// The control's share of the users as the experiment assigns them.
    #[arg(long, value_name = "W", default_value_t = 0.5)]
    pub assigned_control_share: f64,
    /// The control's share the SRM check expects (a skew between the two
    /// is a sample-ratio mismatch).
    #[arg(long, value_name = "W", default_value_t = 0.5)]
    pub configured_control_share: f64,
    /// The tests' significance level.
    #[arg(long, value_name = "A", default_value_t = 0.05)]
    pub alpha: f64,
    /// The synthetic world's seed.
    #[arg(long, value_name = "N", default_value_t = 42)]
    pub world_seed: u64,
    /// Include every run in the output, not only the summary.
    #[arg(long)]
    pub runs: bool,
    /// Indent the JSON output.
    #[arg(long)]
    pub pretty: bool,
}

const SIMULATE_HELP: &str = "\
Each run serves one experiment of two arms through one engine: control and
treatment, each scored by its own model (the bundled model, or a noisy copy:
truly worse). Users of the synthetic world are assigned by GrowthBook
hashing; every decision that chose an offer gets an impression and a click
drawn from the world's true click probability, fed back to the engine,
which counts them per arm. Every --look-every impressions the run reads the
mSPRT (always valid) and the z-test (as naive peeking would).

EXAMPLES
  A/A, 200 seeds (false positives under continuous peeking):
    cx experiment simulate
  A/B, the treatment truly better (impressions to detect):
    cx experiment simulate --control-noise 0.5
  Skewed assignment (the SRM check):
    cx experiment simulate --assigned-control-share 0.52 --seeds 20

OUTPUT
  One JSON object: the spec, both model ids, the mean true CTR per arm,
  the mSPRT's rejection rate, its direction and the impressions it took,
  the peeking and final z-test rejection rates, and the SRM flag rate.";

/// Runs the command.
pub fn run(args: &SimulateArgs, streams: &mut Streams<'_>) -> Result<()> {
    let spec = AbSpec {
        seeds: args.seeds,
        seed: args.seed,
        requests: args.requests,
        look_every: args.look_every,
        control_noise: args.control_noise,
        treatment_noise: args.treatment_noise,
        assigned_control_share: args.assigned_control_share,
        configured_control_share: args.configured_control_share,
        alpha: args.alpha,
        world_seed: args.world_seed,
    };
    let mut summary = simulate(spec, |_| {})?;
    if !args.runs {
        summary.runs.clear();
    }
    super::write_json(streams.stdout, &summary, args.pretty)
}
