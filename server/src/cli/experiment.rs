//! `cx experiment assign --context JSON --experiment JSON`: assigns one
//! user to an experiment's variation as GrowthBook's SDKs would, and prints
//! GrowthBook's result object (`cx_experiments`, docs/EXPERIMENTS.md).
//!
//! Both options take GrowthBook's JSON objects inline, or `@FILE` to read
//! one from a file. Invalid JSON, or an experiment or context with a bad
//! field, is an error naming the option and the field.

use super::write_json;
use crate::error::{Error, Result};
use clap::{Args, Subcommand};
use cx_experiments::{Context, Experiment};
use std::io::Write;

/// The `cx experiment` commands.
#[derive(Debug, Subcommand)]
pub enum ExperimentCommand {
    /// Assign a user to an experiment's variation as GrowthBook would, and
    /// print GrowthBook's result fields as one JSON object.
    Assign(AssignArgs),
    /// Report each experiment's variants: counts, CTR intervals, the
    /// z-test, the always-valid sequential test, the chance to beat
    /// control and the sample-ratio check; from a live server (--addr) or
    /// a decision journal (--journal).
    Report(super::experiment_report::ReportArgs),
    /// Run A/A or A/B experiments live through the engine on the synthetic
    /// world, many seeds, and report how the tests did against the truth.
    Simulate(super::experiment_simulate::SimulateArgs),
}

/// Arguments of `cx experiment assign`.
#[derive(Debug, Args)]
#[command(after_long_help = ASSIGN_HELP)]
pub struct AssignArgs {
    /// GrowthBook's context object, e.g. '{"attributes": {"id": "u1"}}',
    /// or @FILE.
    #[arg(long, value_name = "JSON")]
    pub context: String,
    /// GrowthBook's experiment object, e.g. '{"key": "k", "variations":
    /// [0, 1]}', or @FILE.
    #[arg(long, value_name = "JSON")]
    pub experiment: String,
    /// Indent the JSON output.
    #[arg(long)]
    pub pretty: bool,
}

const ASSIGN_HELP: &str = "\
CONTEXT
  attributes        the user's attributes; the experiment's hashAttribute
                    (default id; a dotted name reads nested objects) is hashed
  enabled           false puts nobody in any experiment (default true)
  qaMode            true serves forced variations only (default false)
  forcedVariations  {experiment key: variation index}
  Other context fields are ignored.

EXPERIMENT
  key, variations (required); weights, coverage, ranges, namespace, filters,
  seed, hashAttribute, hashVersion (1 or 2), force, active, status, meta.
  Targeting (condition, parentConditions, groups, url, urlPatterns,
  include) is not evaluated, and an experiment using it is refused.

OUTPUT
  One JSON object, GrowthBook's result: key, value, variationId,
  inExperiment, hashUsed, hashAttribute, hashValue, and bucket when the
  variation came from the hash (name and passthrough when meta sets them).

EXIT STATUS
  0 with the result on stdout; non-zero, with a message naming the option
  and field on stderr, for invalid JSON or an invalid context or experiment.";

/// Runs a `cx experiment` command.
pub fn execute(command: &ExperimentCommand, streams: &mut super::Streams<'_>) -> Result<()> {
    match command {
        ExperimentCommand::Assign(args) => assign(args, streams.stdout),
        ExperimentCommand::Report(args) => super::experiment_report::run(args, streams),
        ExperimentCommand::Simulate(args) => super::experiment_simulate::run(args, streams),
    }
}

/// `cx experiment assign`.
fn assign(args: &AssignArgs, stdout: &mut dyn Write) -> Result<()> {
    let context = parse("--context", &args.context, Context::from_value)?;
    let experiment = parse("--experiment", &args.experiment, Experiment::from_value)?;
    write_json(stdout, &context.run(&experiment), args.pretty)
}

/// Reads an option's JSON (inline or `@FILE`) and builds `T` from it.
fn parse<T>(
    option: &'static str,
    text: &str,
    build: impl Fn(&serde_json::Value) -> std::result::Result<T, cx_experiments::Error>,
) -> Result<T> {
    let owned;
    let json = match text.strip_prefix('@') {
        Some(path) => {
            owned = std::fs::read_to_string(path).map_err(|source| Error::File {
                path: path.to_string(),
                source,
            })?;
            owned.as_str()
        }
        None => text,
    };
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|source| Error::InputJson {
            origin: option.to_string(),
            source,
        })?;
    build(&value).map_err(|e| Error::BadInput {
        origin: option.to_string(),
        reason: e.to_string(),
    })
}
