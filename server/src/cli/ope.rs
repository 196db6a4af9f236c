//! `cx ope --log FILE [--model M] [--policy P] [--catalog C] [--config F]
//! [--level L] [--json]`: off-policy evaluation of a candidate model on a
//! DSJSON log (`docs/OPE.md`).
//!
//! For each logged event it rebuilds the request from the event's context,
//! decides it with an engine serving the candidate model in simulation (no
//! cap, budget or cache is touched), ranks the event's logged offers by the
//! engine's scores, and takes the target policy's probability of each
//! (greedy, or epsilon-greedy, over the offers the engine would show). The
//! reward model of doubly robust is the candidate model's calibrated click
//! probability of each offer. It prints IPS, SNIPS and DR with their
//! intervals, the logging policy's own value and the effective sample size.

use super::input::origin;
use super::{load_model, model_path_name, Streams};
use crate::error::{Error, Result};
use clap::Args;
use cx_decision::{ScoreSource, TOP_K_MAX};
use cx_domain::catalog::Catalog;
use cx_engine::systems::Exploration;
use cx_engine::{Engine, EngineConfig, ModelSource};
use cx_evaluation::{DsjsonReader, Estimate, Evaluator, LoggedEvent, Observation, Report};
use cx_evaluation::{TargetPolicy, LEVEL_DEFAULT};
use serde::Serialize;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;

/// Arguments of `cx ope`.
#[derive(Debug, Args)]
#[command(after_long_help = OPE_HELP)]
pub struct OpeArgs {
    /// The logged decisions: DSJSON, one event per line, or `-` for stdin.
    #[arg(long, value_name = "FILE")]
    pub log: PathBuf,
    /// The candidate model (.safetensors) [default: the bundled default model].
    #[arg(long, value_name = "MODEL")]
    pub model: Option<PathBuf>,
    /// The target policy: `greedy` (the engine's best-ranked logged offer),
    /// or `epsilon:E` (greedy with probability 1 - E, else uniform over the
    /// logged offers the engine would show).
    #[arg(long, value_name = "P", default_value = "greedy", value_parser = parse_policy)]
    pub policy: TargetPolicy,
    /// The offer catalog (TOML, docs/CATALOG.md) [default: the bundled catalog].
    #[arg(long, value_name = "FILE")]
    pub catalog: Option<PathBuf>,
    /// The engine config (TOML) the candidate runs with; `decide.top_k` and
    /// `decide.exploration` are overridden (see below) [default: the
    /// built-in defaults and CX_ENGINE_* variables].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Confidence level of the intervals, in (0, 1).
    #[arg(long, value_name = "L", default_value_t = LEVEL_DEFAULT, value_parser = parse_level)]
    pub level: f64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

const OPE_HELP: &str = "\
INPUT
  A DSJSON log (Vowpal Wabbit's decision-service JSON), one event per line,
  as docs/OPE.md specifies: c.cx holds the request, c._multi the candidate
  offers ({\"offer\": ID}), a and p the logging policy's actions and
  probabilities, _label_cost minus the reward. A line may be
  at most 1048576 bytes. The first bad line stops the command with an error
  naming the line and the field.

SCORING
  Each event's request is decided by an engine serving --model, simulated
  (no frequency cap, budget or cache is touched), with top_k = 8 and
  exploration = \"none\", at the event's Timestamp. A logged offer the engine
  ranks gets its score; one it excludes (a rule) or ranks below 8 others
  gets probability 0. An event where the target takes none of the logged
  offers is counted as unsupported and left out of the estimates. Doubly
  robust uses the candidate model's calibrated click probability of each
  offer as its reward model (so it assumes click rewards, cost -1 or 0).

OUTPUT
  A table (or, with --json, one object): the logging policy's own value and
  the IPS, SNIPS and DR estimates of the target policy, each with its
  normal-approximation interval at --level and standard error; the
  effective sample size; the importance weights' mean and maximum; and the
  events read, evaluated, unsupported and scored by the fallback.";

/// clap's parser for `--policy`.
fn parse_policy(text: &str) -> std::result::Result<TargetPolicy, String> {
    text.parse()
        .map_err(|e: cx_evaluation::Error| e.to_string())
}

/// clap's parser for `--level`: a number in (0, 1).
fn parse_level(text: &str) -> std::result::Result<f64, String> {
    match text.parse::<f64>() {
        Ok(level) if level > 0.0 && level < 1.0 => Ok(level),
        _ => Err(format!(
            "`{text}` is not a confidence level in (0, 1), e.g. 0.95"
        )),
    }
}

/// What `--json` prints.
#[derive(Debug, Serialize)]
struct OpeOutput {
    log: String,
    model: String,
    model_id: String,
    policy: String,
    level: f64,
    events_read: u64,
    events_evaluated: u64,
    events_unsupported: u64,
    events_scored_by_fallback: u64,
    effective_sample_size: f64,
    weight_mean: f64,
    weight_max: f64,
    reward_min: f64,
    reward_max: f64,
    estimates: Estimates,
}

/// The estimates, by name.
#[derive(Debug, Serialize)]
struct Estimates {
    logging_policy: Estimate,
    ips: Estimate,
    snips: Estimate,
    dr: Option<Estimate>,
}

/// Event counts beside the estimator's.
#[derive(Debug, Default)]
struct Counts {
    read: u64,
    unsupported: u64,
    scored_by_fallback: u64,
}

/// Runs the command.
pub fn ope(args: &OpeArgs, streams: &mut Streams<'_>) -> Result<()> {
    let mut engine = build_engine(args)?;
    let log = origin(&args.log);
    let input: Box<dyn BufRead + '_> = if args.log.as_os_str() == "-" {
        Box::new(BufReader::new(&mut *streams.stdin))
    } else {
        let file = std::fs::File::open(&args.log).map_err(|source| Error::InputRead {
            origin: log.clone(),
            source,
        })?;
        Box::new(BufReader::with_capacity(1 << 16, file))
    };
    let bad = |reason: String| Error::BadInput {
        origin: log.clone(),
        reason,
    };
    let mut evaluator = Evaluator::new(args.level).map_err(|e| bad(e.to_string()))?;
    let mut reader = DsjsonReader::new(input);
    let mut counts = Counts::default();
    let mut scorer = EventScorer::default();
    loop {
        let (line, event) = match reader.next_event() {
            Ok(Some(next)) => next,
            Ok(None) => break,
            Err(cx_evaluation::Error::Read { source, .. }) => {
                return Err(Error::InputRead {
                    origin: log.clone(),
                    source,
                })
            }
            Err(error) => return Err(bad(error.to_string())),
        };
        counts.read += 1;
        let source = scorer.score(&mut engine, event, args.policy, line)?;
        counts.scored_by_fallback += u64::from(source == ScoreSource::Fallback);
        if scorer.target.iter().all(|&p| p == 0.0) {
            counts.unsupported += 1;
            continue;
        }
        evaluator
            .add(&scorer.observation())
            .map_err(|e| bad(format!("line {line}: {e}")))?;
    }
    if evaluator.events() == 0 && counts.unsupported > 0 {
        return Err(bad(format!(
            "the target policy takes none of the logged offers in any of the {} events \
             (the candidate excludes them or ranks them below {TOP_K_MAX} others)",
            counts.unsupported
        )));
    }
    let report = evaluator.finish().map_err(|e| bad(e.to_string()))?;
    let output = output(args, &engine, log, &counts, &report);
    if args.json {
        super::write_json(streams.stdout, &output, false)
    } else {
        write_table(streams.stdout, &output).map_err(Error::Output)
    }
}

/// The engine serving the candidate: every named file checked first.
fn build_engine(args: &OpeArgs) -> Result<Engine> {
    let mut config =
        EngineConfig::load(args.config.as_deref()).map_err(|source| Error::Engine {
            what: match &args.config {
                Some(path) => format!("cannot use config {}", path.display()),
                None => "cannot use the CX_ENGINE_* environment overrides".into(),
            },
            source,
        })?;
    // Rank as many offers as a decision holds, on the model's scores alone.
    config.decide.top_k = TOP_K_MAX;
    config.decide.exploration = Exploration::None;
    let mut builder = Engine::builder().config(config);
    if let Some(path) = &args.model {
        load_model(Some(path))?;
        builder = builder.model(ModelSource::Path(path.clone()));
    }
    if let Some(path) = &args.catalog {
        let catalog = Catalog::from_path(path).map_err(|source| Error::Engine {
            what: "cannot use --catalog".into(),
            source: source.into(),
        })?;
        builder = builder.catalog(catalog);
    }
    builder.build().map_err(|source| Error::Engine {
        what: "cannot set up the engine".into(),
        source,
    })
}

/// One event scored by the candidate: its buffers, reused across events.
#[derive(Default)]
struct EventScorer {
    scores: Vec<Option<f64>>,
    target: Vec<f64>,
    reward_model: Vec<f64>,
    reward: f64,
    chosen: usize,
    logging_probability: f64,
}

impl EventScorer {
    /// Decides `event`'s request with the candidate, in simulation, and
    /// fills the target policy's probabilities and the reward model for
    /// its logged offers. Returns where the scores came from.
    fn score(
        &mut self,
        engine: &mut Engine,
        event: LoggedEvent,
        policy: TargetPolicy,
        line: usize,
    ) -> Result<ScoreSource> {
        let failed = |source| Error::Engine {
            what: format!("cannot decide the request of line {line}"),
            source,
        };
        let now_ns = event.timestamp_unix_ns;
        let ticket = engine.submit_simulated(event.context).map_err(failed)?;
        engine.run_until_decided(now_ns);
        let decision = engine
            .drain()
            .find(|d| d.ticket == ticket)
            .ok_or_else(|| Error::Mismatch(format!("line {line}: the engine decided nothing")))?;
        self.scores.clear();
        self.reward_model.clear();
        for offer in &event.offers {
            let ranked = decision.offers().iter().find(|o| o.offer_id == *offer);
            self.scores.push(ranked.map(|o| f64::from(o.score)));
            self.reward_model
                .push(ranked.map_or(0.0, |o| f64::from(o.p_click)));
        }
        policy.distribution(&self.scores, &mut self.target);
        self.reward = event.reward;
        self.chosen = event.chosen;
        self.logging_probability = event.probabilities[event.chosen];
        Ok(decision.source)
    }

    fn observation(&self) -> Observation<'_> {
        Observation {
            reward: self.reward,
            chosen: self.chosen,
            logging_probability: self.logging_probability,
            target: &self.target,
            reward_model: Some(&self.reward_model),
        }
    }
}

fn output(args: &OpeArgs, engine: &Engine, log: String, counts: &Counts, r: &Report) -> OpeOutput {
    OpeOutput {
        log,
        model: model_path_name(args.model.as_deref()),
        model_id: engine.model().id.clone(),
        policy: args.policy.to_string(),
        level: r.level,
        events_read: counts.read,
        events_evaluated: r.events,
        events_unsupported: counts.unsupported,
        events_scored_by_fallback: counts.scored_by_fallback,
        effective_sample_size: r.effective_sample_size,
        weight_mean: r.weight_mean,
        weight_max: r.weight_max,
        reward_min: r.reward_min,
        reward_max: r.reward_max,
        estimates: Estimates {
            logging_policy: r.logging_policy,
            ips: r.ips,
            snips: r.snips,
            dr: r.dr,
        },
    }
}

/// The human-readable report.
fn write_table(out: &mut dyn Write, o: &OpeOutput) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(out);
    writeln!(out, "log      {}", o.log)?;
    writeln!(out, "model    {} (id {})", o.model, o.model_id)?;
    writeln!(out, "policy   {}", o.policy)?;
    writeln!(
        out,
        "events   {} read, {} evaluated, {} unsupported (the target takes no logged offer), \
         {} scored by the fallback",
        o.events_read, o.events_evaluated, o.events_unsupported, o.events_scored_by_fallback
    )?;
    writeln!(out)?;
    let level = format!("{}% interval", o.level * 100.0);
    writeln!(
        out,
        "{:<16} {:>9}  {:<22} {:>9}",
        "estimator", "value", level, "std error"
    )?;
    let rows = [
        ("logging policy", Some(&o.estimates.logging_policy)),
        ("IPS", Some(&o.estimates.ips)),
        ("SNIPS", Some(&o.estimates.snips)),
        ("DR", o.estimates.dr.as_ref()),
    ];
    for (name, estimate) in rows {
        let Some(e) = estimate else { continue };
        let interval = format!("[{:.5}, {:.5}]", e.lower, e.upper);
        writeln!(
            out,
            "{name:<16} {:>9.5}  {interval:<22} {:>9.5}",
            e.value, e.std_error
        )?;
    }
    writeln!(out)?;
    let share = 100.0 * o.effective_sample_size / o.events_evaluated as f64;
    writeln!(
        out,
        "effective sample size {:.1} of {} events ({share:.1}%); importance weights: mean {:.3}, max {:.3}",
        o.effective_sample_size, o.events_evaluated, o.weight_mean, o.weight_max
    )?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_policies_parse_or_say_why_not() {
        assert_eq!(parse_level("0.9"), Ok(0.9));
        for bad in ["0", "1", "95", "x", "NaN"] {
            assert!(parse_level(bad).unwrap_err().contains("(0, 1)"), "{bad}");
        }
        assert_eq!(parse_policy("greedy"), Ok(TargetPolicy::Greedy));
        assert!(parse_policy("softmax").unwrap_err().contains("epsilon:E"));
    }

    #[test]
    fn the_help_states_the_real_limits() {
        let line = format!("at most {} bytes", cx_evaluation::dsjson::LINE_BYTES_MAX);
        assert!(OPE_HELP.contains(&line), "{line}");
        assert!(OPE_HELP.contains(&format!("top_k = {TOP_K_MAX}")));
        assert!(OPE_HELP.contains(&format!("below {TOP_K_MAX} others")));
    }
}
