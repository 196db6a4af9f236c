//! The `cx` command line: clap argument definitions and the commands.
//!
//! [`Cli`] is what `main` parses; [`execute`] runs it against the given
//! streams, so that tests can drive a command without a process.
//!
//! - [`inspect`]: `cx model inspect FILE [--json]`.
//! - [`run`]: `cx model run FILE --input X.json [--backend B] [--trace]`.
//! - [`input`]: parsing the JSON batch of feature vectors `run` reads.

pub mod input;
pub mod inspect;
pub mod run;

use crate::error::{Error, Result};
use clap::{Args, Parser, Subcommand};
use cx_engine::backends::BackendKind;
use cx_engine::components::{self, SnnModel};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// `cx`: the CampaignExpress command line.
#[derive(Debug, Parser)]
#[command(
    name = "cx",
    version,
    about = "CampaignExpress: inspect and run spiking-network offer models",
    propagate_version = true
)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Work with model files: safetensors exports of snnTorch
    /// `Linear -> Leaky` networks (see docs/MODEL_FORMAT.md).
    #[command(subcommand)]
    Model(ModelCommand),
}

/// The `cx model` commands.
#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Print a model's layers, neuron parameters, metadata and content hash.
    Inspect(InspectArgs),
    /// Run a batch of feature vectors through a model and print the
    /// last layer's readout (and optionally every layer's trace) as JSON.
    Run(RunArgs),
}

/// Arguments of `cx model inspect`.
#[derive(Debug, Args)]
#[command(after_long_help = INSPECT_HELP)]
pub struct InspectArgs {
    /// The model file (.safetensors).
    #[arg(value_name = "FILE")]
    pub model: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// With --json: indent the output.
    #[arg(long, requires = "json")]
    pub pretty: bool,
}

const INSPECT_HELP: &str = "\
Prints, for each layer: its index (0-based; the file's tensors are fc1/lif1,
fc2/lif2, ...), input and output widths, tensor shapes, beta and threshold
(one value when every neuron shares it, else min/max/mean), reset mechanism
and graded_spikes_factor; then the time steps T, the metadata (name, version,
feature_schema_id, offer ids, calibration, other keys) and the model id: the
SHA-256 of the file, as `sha256sum FILE` prints it.";

/// Arguments of `cx model run`.
#[derive(Debug, Args)]
#[command(after_long_help = RUN_HELP)]
pub struct RunArgs {
    /// The model file (.safetensors).
    #[arg(value_name = "FILE")]
    pub model: PathBuf,
    /// The JSON batch of feature vectors to run, or `-` for stdin.
    #[arg(long, short, value_name = "X.json")]
    pub input: PathBuf,
    /// Backend: `scalar`, `simd` or `auto` [default: $CX_BACKEND if set, else auto].
    #[arg(long, short, value_name = "B", value_parser = parse_backend)]
    pub backend: Option<BackendKind>,
    /// Also record every layer's spikes and membranes at every step
    /// (the "layers" field of the output). Runs on the first backend of the
    /// chosen chain only, without fallback.
    #[arg(long)]
    pub trace: bool,
    /// Indent the JSON output.
    #[arg(long)]
    pub pretty: bool,
}

const RUN_HELP: &str = "\
INPUT
  A JSON array of feature vectors, one array of numbers per row, each as wide
  as the model's input:          [[0.1, 2, -3.5, ...], [...], ...]
  or an object whose \"x\" field holds such an array (other fields are
  ignored):                      {\"x\": [[0.1, 2, -3.5, ...], ...]}
  An empty array is valid and gives empty results. Inputs over 4096 rows are
  run in chunks of 4096.

BACKEND
  scalar  the reference kernel, straight from snnTorch's equations.
  simd    the SIMD kernel, falling back to scalar if it fails.
  auto    the fastest backend available (today simd), falling back to scalar.
  Without --backend, the CX_BACKEND environment variable picks one; when it is
  unset, auto.

OUTPUT
  One JSON object on stdout:
    backend      device name of the backend that served the batch
    model_id     SHA-256 of the model file
    offer_ids    offer id of each output column
    spike_count  [row][column] spikes of each output neuron over the T steps
    mem_last     [row][column] membrane after the last step (before its reset)
    probability  [row][column] calibrated probability (the model's calibration)
  With --trace, also:
    layers       one {\"spk\": [row][step][neuron] (0/1), \"mem\": [row][step][neuron]}
                 per layer, input first; trace is limited to 16777216 values
                 (rows x T x neurons of all layers).
  Errors go to stderr with a non-zero exit status; stdout then stays empty.";

/// clap's parser for `--backend`, by [`BackendKind`]'s `FromStr`.
fn parse_backend(name: &str) -> std::result::Result<BackendKind, String> {
    name.parse()
        .map_err(|e: cx_engine::backends::BackendError| e.to_string())
}

/// The name of a [`BackendKind`] as the command line spells it.
pub fn backend_name(kind: BackendKind) -> &'static str {
    match kind {
        BackendKind::Scalar => "scalar",
        BackendKind::Simd => "simd",
        BackendKind::Auto => "auto",
    }
}

/// The process's standard streams, or stand-ins for them.
pub struct Streams<'a> {
    /// Where `--input -` reads from.
    pub stdin: &'a mut dyn Read,
    /// Where results go.
    pub stdout: &'a mut dyn Write,
    /// Where warnings go (errors are returned, not printed).
    pub stderr: &'a mut dyn Write,
}

/// Runs the parsed command line. Results go to `streams.stdout` only when
/// the command succeeded; errors are returned for the caller to print.
pub fn execute(cli: &Cli, streams: &mut Streams<'_>) -> Result<()> {
    match &cli.command {
        Command::Model(ModelCommand::Inspect(args)) => inspect::inspect(args, streams.stdout),
        Command::Model(ModelCommand::Run(args)) => run::run(args, streams),
    }
}

/// Loads a model file, naming it in the error.
pub fn load_model(path: &Path) -> Result<SnnModel> {
    SnnModel::load(path).map_err(|source| {
        let path = path.display().to_string();
        match source {
            components::Error::Io { source, .. } => Error::ModelRead { path, source },
            source => Error::Model { path, source },
        }
    })
}

/// Writes `value` as one line of JSON (indented if `pretty`).
pub(crate) fn write_json<T: serde::Serialize>(
    out: &mut dyn Write,
    value: &T,
    pretty: bool,
) -> Result<()> {
    let mut out = std::io::BufWriter::new(out);
    let written = if pretty {
        serde_json::to_writer_pretty(&mut out, value)
    } else {
        serde_json::to_writer(&mut out, value)
    };
    written.map_err(|e| Error::Output(e.into()))?;
    out.write_all(b"\n").map_err(Error::Output)?;
    out.flush().map_err(Error::Output)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn backend_names_round_trip() {
        for kind in [BackendKind::Scalar, BackendKind::Simd, BackendKind::Auto] {
            assert_eq!(parse_backend(backend_name(kind)), Ok(kind));
        }
        let err = parse_backend("gpu").unwrap_err();
        assert!(err.contains("gpu"), "{err}");
    }

    #[test]
    fn help_text_states_the_real_limits() {
        let chunk = format!("chunks of {}", cx_engine::backends::BATCH_MAX_LIMIT);
        assert!(RUN_HELP.contains(&chunk), "{chunk}");
        let trace = format!("limited to {} values", run::TRACE_VALUES_MAX);
        assert!(RUN_HELP.contains(&trace), "{trace}");
    }
}
