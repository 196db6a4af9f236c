//! `cx simulate --decisions N [--scenario S] [--seed K] --json OUT
//! [--svg DIR] [--dsjson FILE]`: the engine in a closed loop with the
//! synthetic world, three policies on one stream of requests
//! (`docs/FEEDBACK.md`, "Proof that it learns"; the loop is
//! [`crate::simulate`]). This module owns the arguments and the outputs.

use super::{model_path_name, Streams};
use crate::error::{Error, Result};
use crate::simulate::policy::SettlementMode;
use crate::simulate::{self, Scenario, Spec};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;

/// Arguments of `cx simulate`.
#[derive(Debug, Args)]
#[command(after_long_help = SIMULATE_HELP)]
pub struct SimulateArgs {
    /// Decisions per policy.
    #[arg(long, value_name = "N")]
    pub decisions: u64,
    /// The scenario: `default`; `shift` (at half time the offer the oracle
    /// picks most often loses appeal); `creative` (that offer gets two more
    /// creative variants, and variant 1 is clicked twice as often as the
    /// other two; no --dsjson there); or `calibrated` (the catalog's first
    /// 8 offers without caps, budgets or floors, each clicked with the
    /// model's own probability times a hidden factor from 0.5 to 2: a world
    /// Thompson sampling can learn exactly).
    #[arg(long, value_enum, default_value = "default")]
    pub scenario: Scenario,
    /// The run's seed (0..=16777214): which requests (each seed its own
    /// rows of the world), the world's draws and the engines' seeds.
    #[arg(long, value_name = "K", default_value_t = 1)]
    pub seed: u64,
    /// The synthetic world's seed; the bundled model was trained on 2024.
    #[arg(long, value_name = "W", default_value_t = 2024)]
    pub world_seed: u64,
    /// How bids settle: `auction` (OpenRTB: reserved at the bid, win pays
    /// the clearing price, loss gives it back) or `direct` (charged at the
    /// bid when decided).
    #[arg(long, value_enum, default_value = "auction")]
    pub settlement: SettlementMode,
    /// Simulated time per decision, ms.
    #[arg(long, value_name = "MS", default_value_t = 1)]
    pub ms_per_decision: u64,
    /// The posteriors' half-life, simulated seconds (0: no discounting).
    #[arg(long, value_name = "S", default_value_t = 120.0)]
    pub half_life_s: f64,
    /// Multiplies every offer's daily budget (below 1 makes budgets bind
    /// within a short run).
    #[arg(long, value_name = "X", default_value_t = 1.0)]
    pub budget_scale: f64,
    /// The most replica rounds behind each of Thompson's propensities
    /// (`[decide] propensity_samples`), 1..=65536.
    #[arg(long, value_name = "M", default_value_t = 1024)]
    pub propensity_samples: usize,
    /// Thompson's share of decisions whose top offer is a uniform choice
    /// among the eligible (`[decide] thompson_uniform_share`), in [0, 1):
    /// above 0, every offer greedy may pick has a logged probability of at
    /// least the share over the eligible offers, which IPS needs.
    #[arg(long, value_name = "U", default_value_t = 0.0)]
    pub thompson_uniform_share: f32,
    /// Let the engines learn their bid shading from the win and loss
    /// notices (`[decide] learned_shading`) [default: off: the static
    /// shading rule, so an offer's bid on a request does not depend on the
    /// policy, which the off-policy truth assumes].
    #[arg(long)]
    pub learned_shading: bool,
    /// Entries of each engine's frequency store (`[frequency] capacity`),
    /// 1..=16777216 (the engine's limit). A store too small for the run's users forgets counts
    /// to make room, which lets impressions past a cap through; the report
    /// counts them (cap_violations) and the store's evictions.
    #[arg(long, value_name = "E", default_value_t = simulate::FREQUENCY_CAPACITY)]
    pub frequency_capacity: usize,
    /// The model (.safetensors) [default: the bundled default model].
    #[arg(long, value_name = "MODEL")]
    pub model: Option<PathBuf>,
    /// The catalog (TOML); its offer ids must be the world's (1000 + i)
    /// [default: the bundled catalog].
    #[arg(long, value_name = "FILE")]
    pub catalog: Option<PathBuf>,
    /// Write the report (one JSON object) here.
    #[arg(long, value_name = "OUT")]
    pub json: PathBuf,
    /// Write regret.svg and ctr.svg into this directory.
    #[arg(long, value_name = "DIR")]
    pub svg: Option<PathBuf>,
    /// Write the thompson run's decisions here as DSJSON (docs/OPE.md).
    #[arg(long, value_name = "FILE")]
    pub dsjson: Option<PathBuf>,
}

const SIMULATE_HELP: &str = "\
THE LOOP
  Each request is a row of the synthetic world (docs/SYNTHETIC_DATA.md),
  whose true click probability of every offer is known. Three engines, one
  per policy, decide the same requests: thompson, greedy (exploration none)
  and random (epsilon_greedy with epsilon 1: uniform among the eligible
  offers). Each ranks by click probability alone. Each bid meets one
  competing bid, log-normal with median 1.2 x the floor and log-sd 0.6; the
  higher wins and pays max(competing bid, floor). A won impression is
  clicked with the true click probability of the offer shown, and a click
  converts with the catalog's conversion rate. The win or loss, impression,
  click and conversion go back through the engine's feedback, on a clock
  that advances --ms-per-decision per decision (32 requests per tick).

OUTPUT
  --json: per policy the cumulative regret against the oracle (the best
  offer by true click probability among those the targeting admits, not
  limited by caps, budgets or floors), the CTR and a time series every
  decisions/200, and regret_growth_exponent (the slope of log regret
  against log decisions over the second half: 1 linear, below 1
  sublinear); budget_overspend (max over offers and days of spend minus
  budget, from the wins sent) and cap_violations (impressions past a cap,
  from the impressions sent); the shift's response; under creative, each
  policy's impressions of the offer per variant and after how many of them
  every later window of 200 gave most to the best variant (each engine
  chooses variants by Thompson sampling, whatever its offer policy); and,
  except under creative, IPS/SNIPS estimates of greedy's value from
  thompson's log, with 95% intervals, against the truth. Prints a one-line
  summary to stdout and the time taken to stderr.";

/// Runs the command.
pub fn simulate(args: &SimulateArgs, streams: &mut Streams<'_>) -> Result<()> {
    let spec = Spec {
        decisions: args.decisions,
        scenario: args.scenario,
        seed: args.seed,
        world_seed: args.world_seed,
        settlement: args.settlement,
        ms_per_decision: args.ms_per_decision,
        half_life_s: args.half_life_s,
        budget_scale: args.budget_scale,
        propensity_samples: args.propensity_samples,
        thompson_uniform_share: args.thompson_uniform_share,
        frequency_capacity: args.frequency_capacity,
        learned_shading: args.learned_shading,
        model: args.model.clone(),
        catalog: args.catalog.clone(),
    };
    spec.check()?;
    simulate::check_dsjson(spec.scenario, args.dsjson.is_some())?;
    let create = |path: &PathBuf| {
        std::fs::File::create(path)
            .map(std::io::BufWriter::new)
            .map_err(|source| Error::File {
                path: path.display().to_string(),
                source,
            })
    };
    // Every output is opened before the run, so a bad path fails at once.
    let mut json_file = create(&args.json)?;
    let mut dsjson_file = args.dsjson.as_ref().map(create).transpose()?;
    let started = std::time::Instant::now();
    let run = simulate::run(spec, dsjson_file.as_mut().map(|f| f as &mut dyn Write))?;
    let elapsed = started.elapsed().as_secs_f64();
    let catalog = args.catalog.as_ref().map_or_else(
        || "<bundled catalog>".to_string(),
        |p| p.display().to_string(),
    );
    let report = simulate::report::report(&run, model_path_name(args.model.as_deref()), catalog);
    super::write_json(&mut json_file, &report, true)?;
    json_file.flush().map_err(Error::Output)?;
    if let Some(dir) = &args.svg {
        let shift_at = run.shifted_offer.map(|_| run.spec.decisions / 2);
        simulate::plot::write_plots(dir, &run.policies, shift_at)?;
    }
    let summary: Vec<String> = report
        .policies
        .iter()
        .map(|(name, p)| {
            format!(
                "{name}: regret {:.1}, ctr {:.4}",
                p.cumulative_regret, p.ctr
            )
        })
        .collect();
    writeln!(
        streams.stdout,
        "{} decisions per policy; {}; budget_overspend {}; cap_violations {}",
        report.spec.decisions,
        summary.join("; "),
        report
            .budget_overspend
            .map_or("none (no budgets)".into(), |x| format!("{x:.2}")),
        report.cap_violations
    )
    .map_err(Error::Output)?;
    writeln!(
        streams.stderr,
        "simulated {} decisions x {} policies in {elapsed:.1} s",
        report.spec.decisions,
        run.policies.len()
    )
    .map_err(Error::Output)
}
