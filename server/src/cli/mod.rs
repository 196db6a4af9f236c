//! The `cx` command line: clap argument definitions and the commands.
//!
//! [`Cli`] is what `main` parses; [`execute`] runs it against the given
//! streams, so that tests can drive a command without a process.
//!
//! - [`inspect`]: `cx model inspect FILE [--json]`.
//! - [`run`]: `cx model run FILE --input X.json [--backend B] [--trace]`.
//! - [`lines`]: bounded line-by-line reading of request input (`score`,
//!   `client`).
//! - [`input`]: parsing the JSON batch of feature vectors `run` reads.
//! - [`score`]: `cx score [FILE|-]`, OpenRTB bid requests through the engine.
//! - [`bench`]: `cx bench ...`, which runs the `cx-bench` benchmark tool.
//! - [`serve`]: `cx serve`, the decision server over the wire protocol.
//! - [`client`]: `cx client --addr A [FILE|-]`, OpenRTB bid requests to a
//!   decision server over the wire protocol.
//! - [`feedback`]: `cx feedback --addr A [FILE|-]`, a JSONL of feedback
//!   events replayed into a decision server in `feedback` messages.
//! - [`features`]: `cx features load --addr A FILE` (feature values into a
//!   live server's feature store, in `put_features` messages) and `cx
//!   features health --addr A` (its health, from the admin port).
//! - [`simulate`]: `cx simulate --decisions N ...`, the engine in a closed
//!   loop with the synthetic world.

mod answer;
pub mod bench;
pub mod catalog;
pub mod client;
pub mod data;
pub mod decisions;
pub mod eval;
pub mod experiment;
pub mod experiment_report;
pub mod experiment_simulate;
pub mod features;
pub mod feedback;
pub mod history;
pub mod input;
pub mod inspect;
pub mod lines;
pub mod monitor;
pub mod ope;
pub mod plot;
pub mod reference;
pub mod repository;
pub mod run;
pub mod score;
pub mod serve;
pub mod simulate;
pub mod synth;
pub mod train;

use crate::error::{Error, Result};
use clap::{Args, Parser, Subcommand};
use cx_engine::backends::BackendKind;
use cx_model::SnnModel;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// `cx`: the CampaignExpress command line.
#[derive(Debug, Parser)]
#[command(
    name = "cx",
    version,
    about = "CampaignExpress: train, inspect, run and evaluate spiking-network offer models, and score bid requests",
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
    /// Train a spiking network on a CSV click log (and, with --baseline, a
    /// logistic-regression baseline) and write a model file.
    Train(TrainArgs),
    /// Score a CSV click log with a trained model through the serving
    /// backends and report AUC, log loss and calibration.
    Eval(EvalArgs),
    /// Write a synthetic click log (CSV) from the generator with a known
    /// ground-truth click model (docs/SYNTHETIC_DATA.md).
    Synth(SynthArgs),
    /// Decide OpenRTB 2.5/2.6 bid requests (JSONL, or one JSON document)
    /// with the engine and print each one's BidResponse and decisions as JSON.
    Score(ScoreArgs),
    /// Run the decision server: the binary protocol over TCP (io_uring,
    /// or epoll), with Prometheus metrics on an admin port.
    // Boxed: its many flags would make every other command as large.
    Serve(Box<serve::ServeArgs>),
    /// Run the benchmarks (`kernel`, `engine`, `load`, `all`) with the
    /// `cx-bench` tool from the cx-benches crate, which must be built
    /// (`cargo build --release -p cx-benches`).
    Bench(bench::BenchArgs),
    /// Send OpenRTB bid requests (JSONL) to a decision server over the
    /// binary protocol, pipelined, and print each one's decision as JSON.
    Client(client::ClientArgs),
    /// Replay feedback events (a JSONL of wins, losses, impressions,
    /// clicks and conversions) into a decision server over the binary
    /// protocol, in batches, and print what became of them as JSON
    /// (docs/FEEDBACK.md).
    Feedback(feedback::FeedbackArgs),
    /// A live server's online feature store: load values into it (JSONL or
    /// CSV, in put_features messages), print its health
    /// (docs/FEATURES.md, "Online feature store").
    #[command(subcommand)]
    Features(features::FeaturesCommand),
    /// A live server's model monitoring: PSI per feature against the
    /// model's training reference, calibration and CTR alarms
    /// (docs/MONITORING.md).
    Monitor(monitor::MonitorArgs),
    /// Work with offer catalogs (docs/CATALOG.md).
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// The model repository that `cx serve --repository` serves: list
    /// bundles and versions, activate a version, roll back
    /// (docs/REPOSITORY.md).
    #[command(subcommand)]
    Repository(repository::RepositoryCommand),
    /// Print a completion script for SHELL (bash, zsh, fish, elvish or
    /// powershell) to stdout; e.g. `cx completions bash >
    /// ~/.local/share/bash-completion/completions/cx`.
    Completions(CompletionsArgs),
    /// Experiments: assign a user as GrowthBook would, report a live
    /// server's or a journal's experiments, simulate A/A and A/B runs
    /// (docs/EXPERIMENTS.md).
    #[command(subcommand)]
    Experiment(experiment::ExperimentCommand),
    /// Off-policy evaluation: estimate a candidate model's value (IPS,
    /// SNIPS, doubly robust, with intervals) from a DSJSON log of decisions
    /// (docs/OPE.md).
    Ope(ope::OpeArgs),
    /// Close the loop with the synthetic world: thompson, greedy and random
    /// policies decide the same requests, clicks are drawn from the known
    /// truth and fed back; regret, CTR, budgets, caps and off-policy
    /// estimates as JSON and SVG (docs/FEEDBACK.md, "Proof that it learns").
    Simulate(simulate::SimulateArgs),
    /// The decision journal (`cx serve --journal-dir`): export its
    /// decisions joined with their feedback as DSJSON training data
    /// (docs/FEEDBACK.md, "Logged data out").
    #[command(subcommand)]
    Decisions(decisions::DecisionsCommand),
}

/// The `cx catalog` commands.
#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Write a catalog skeleton with one offer per output column of a
    /// model, every value a placeholder to fill in.
    Init(CatalogInitArgs),
}

/// Arguments of `cx catalog init`.
#[derive(Debug, Args)]
pub struct CatalogInitArgs {
    /// The model (.safetensors) [default: the bundled default model].
    #[arg(long, value_name = "MODEL")]
    pub model: Option<PathBuf>,
    /// Write here (a new file; an existing one is refused) [default:
    /// stdout].
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Arguments of `cx completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Arguments of `cx score`.
#[derive(Debug, Args)]
#[command(after_long_help = SCORE_HELP)]
pub struct ScoreArgs {
    /// The bid requests: a file, or `-` for stdin.
    #[arg(value_name = "FILE", default_value = "-")]
    pub input: PathBuf,
    /// The model (.safetensors) [default: the bundled default model].
    #[arg(long, value_name = "MODEL")]
    pub model: Option<PathBuf>,
    /// The fallback scorer: a baseline written by `cx train --baseline`
    /// [default: the bundled baseline with the bundled model, else none].
    #[arg(long, value_name = "FILE")]
    pub fallback: Option<PathBuf>,
    /// Serve without a fallback scorer.
    #[arg(long, conflicts_with = "fallback")]
    pub no_fallback: bool,
    /// The offer catalog (TOML, docs/CATALOG.md) [default: the bundled catalog].
    #[arg(long, value_name = "FILE")]
    pub catalog: Option<PathBuf>,
    /// The engine config (TOML); CX_ENGINE_* environment variables override
    /// it, and apply without it too [default: the built-in defaults].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Backend: `scalar`, `simd` or `auto` [default: $CX_BACKEND if set, else
    /// the config's `backend`, which defaults to auto].
    #[arg(long, short, value_name = "B", value_parser = parse_backend)]
    pub backend: Option<BackendKind>,
    /// Seed of the exploration draws [default: the config's `seed`].
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Host clock for every decision, unix milliseconds [default: the wall
    /// clock, read per request]. With it (and a fixed seed) the output is
    /// reproducible.
    #[arg(long, value_name = "MS", value_parser = score::parse_now_ms)]
    pub now_ms: Option<u64>,
    /// At the end, print the engine's statistics (counters, latencies) as
    /// JSON to stderr.
    #[arg(long)]
    pub stats: bool,
    /// Indent each output object (it then spans several lines).
    #[arg(long)]
    pub pretty: bool,
}

const SCORE_HELP: &str = "\
INPUT
  OpenRTB 2.5/2.6 BidRequest JSON, in one of three shapes:
    - one request per line (JSONL);
    - one wrapper object per line, {\"request\": {...}, ...}: its \"request\"
      field is the request, other fields are ignored;
    - one request spanning several lines (a pretty-printed document): used
      when the first non-blank line is not JSON on its own and the whole
      input is one JSON object.
  Blank lines are skipped. A request may be at most 1048576 bytes. A whole
  line over 1114112 bytes gets an error and is discarded without being held
  in memory.

OUTPUT
  One JSON object per request, in input order, on stdout:
    {\"line\": N, \"response\": BidResponse,
     \"decisions\": [{\"imp_id\": ID, \"decision\": {...} or null,
                    \"skipped\": null or a reason}, ...]}
  where N is the request's first line, and each decision lists the chosen
  offers best first with their score, click probability, bid and the
  factors that sum to the score. A line that is not a valid request gets
    {\"line\": N, \"error\": {\"code\": \"invalid_payload\", \"code_num\": 5,
                          \"message\": \"... naming the field ...\"}}
  (the shape and codes `cx client` prints; docs/PROTOCOL.md lists the codes)
  and scoring goes on. Decisions spend frequency caps and budgets (except
  for requests with test = 1), so each request sees the ones before it.

EXIT STATUS
  0 when the input was read to its end, whatever its lines held; non-zero,
  with a message on stderr, for a bad option, model, fallback, catalog or
  config (checked before any input is read), an unreadable input or an
  unwritable output.";

/// Arguments of `cx synth`.
#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Rows to write.
    #[arg(long)]
    pub rows: u64,
    /// Seed of the synthetic world (users, publishers, offers, ground truth) and its rows.
    #[arg(long, default_value_t = 2024)]
    pub seed: u64,
    /// Index of the first row: rows are a pure function of the seed and their index, so a
    /// later range is a fresh sample of the same world (e.g. for evaluation).
    #[arg(long, default_value_t = 0)]
    pub first_row: u64,
    /// Offers in the catalog.
    #[arg(long, default_value_t = 16)]
    pub offers: u32,
    /// Mean click probability the ground truth is calibrated to.
    #[arg(long, default_value_t = 0.05)]
    pub ctr: f64,
    /// Standard deviation of each user's hidden click bias (logit): 0 gives the rows of
    /// earlier releases; above 0, users' histories (their past clicks per view) predict
    /// their clicks, as the online feature store's features do (docs/SYNTHETIC_DATA.md).
    #[arg(long, default_value_t = 0.0)]
    pub user_bias_sd: f64,
    /// Output file [default: stdout].
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Arguments of `cx train`.
#[derive(Debug, Args)]
#[command(after_long_help = TRAIN_HELP)]
pub struct TrainArgs {
    /// The click log (CSV with a header line).
    #[arg(long, value_name = "FILE")]
    pub data: PathBuf,
    /// The dataset spec (TOML) mapping the log's columns; see specs/.
    #[arg(long, value_name = "SPEC")]
    pub spec: PathBuf,
    /// Where to write the model (.safetensors).
    #[arg(long, value_name = "MODEL")]
    pub out: PathBuf,
    /// Also train the logistic-regression baseline on the same rows and write it here.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Online feature store definitions (TOML, e.g. models/features.toml): the model also
    /// reads the user's store features (feature schema version 2), built from the log in time
    /// order so that each row sees only earlier rows (docs/FEATURES.md, "Training with store
    /// features"). The model records the definitions.
    #[arg(long, value_name = "FILE")]
    pub store_features: Option<PathBuf>,
    /// Hidden layer widths, input side first, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "64")]
    pub hidden: Vec<usize>,
    /// Time steps T.
    #[arg(long, default_value_t = 8)]
    pub steps: u32,
    /// Membrane decay of the hidden layers.
    #[arg(long, default_value_t = 0.9)]
    pub beta: f32,
    /// Membrane decay of the output layer.
    #[arg(long, default_value_t = 0.8)]
    pub beta_output: f32,
    /// Adam learning rate.
    #[arg(long, default_value_t = 0.002)]
    pub lr: f32,
    /// Passes over the training rows.
    #[arg(long, default_value_t = 5)]
    pub epochs: usize,
    /// Decoupled weight decay (AdamW) on the layers' weights.
    #[arg(long, default_value_t = 0.2)]
    pub weight_decay: f32,
    /// Rows per gradient step.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Seed of the initial weights, the shuffles and the held-out split.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Fraction of rows held out for calibration and the reported figures.
    #[arg(long, default_value_t = 0.2)]
    pub holdout: f64,
    /// Model name to record [default: the spec's name].
    #[arg(long)]
    pub name: Option<String>,
    /// Model version to record.
    #[arg(long = "model-version", default_value = "1")]
    pub model_version: String,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Indent the JSON summary.
    #[arg(long)]
    pub pretty: bool,
}

impl TrainArgs {
    /// The trainer's hyperparameters from these flags.
    pub fn config(&self) -> cx_train::TrainConfig {
        cx_train::TrainConfig {
            hidden: self.hidden.clone(),
            steps: self.steps,
            beta_hidden: self.beta,
            beta_output: self.beta_output,
            learning_rate: self.lr,
            epochs: self.epochs,
            weight_decay: self.weight_decay,
            batch_size: self.batch_size,
            seed: self.seed,
            ..Default::default()
        }
    }
}

const TRAIN_HELP: &str = "\
Reads the click log through the spec, keeps the spec's top offers (one output
column each; rows showing other offers are dropped and counted), extracts
features with the built-in schema (docs/FEATURES.md), holds out --holdout of
the rows, fits the feature normalisation on the rest, trains by
surrogate-gradient backpropagation through time, calibrates the readout on the
held-out rows, and writes the model with its schema id, offer ids,
calibration, normalisation and a training summary (docs/MODEL_FORMAT.md).
Rejected rows are counted per reason on stderr. Prints a JSON summary with
the held-out AUC and log loss. The same flags and data give the same bytes.";

/// Arguments of `cx eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The model (.safetensors) written by `cx train` [default: the bundled default model].
    #[arg(long, value_name = "MODEL")]
    pub model: Option<PathBuf>,
    /// The click log (CSV with a header line).
    #[arg(long, value_name = "FILE")]
    pub data: PathBuf,
    /// The dataset spec (TOML) mapping the log's columns.
    #[arg(long, value_name = "SPEC")]
    pub spec: PathBuf,
    /// A logistic baseline written by `cx train --baseline`, to report beside the model.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Write roc.svg and reliability.svg into this directory.
    #[arg(long, value_name = "DIR")]
    pub plot: Option<PathBuf>,
    /// Bins of the calibration table.
    #[arg(long, default_value_t = 10)]
    pub bins: usize,
    /// Indent the JSON output.
    #[arg(long)]
    pub pretty: bool,
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
    /// The model file (.safetensors) [default: the bundled default model].
    #[arg(value_name = "FILE")]
    pub model: Option<PathBuf>,
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
    /// The model file (.safetensors) [default: the bundled default model].
    #[arg(value_name = "FILE")]
    pub model: Option<PathBuf>,
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
        Command::Train(args) => train::train(args, streams),
        Command::Eval(args) => eval::eval(args, streams),
        Command::Synth(args) => synth::synth(args, streams),
        Command::Score(args) => score::score(args, streams),
        Command::Client(args) => client::client(args, streams),
        Command::Feedback(args) => feedback::feedback(args, streams),
        Command::Features(command) => features::execute(command, streams),
        Command::Monitor(args) => monitor::monitor(args, streams),
        Command::Serve(args) => serve::serve(args, streams),
        Command::Bench(args) => bench::bench(args),
        Command::Catalog(CatalogCommand::Init(args)) => catalog::init(args, streams.stdout),
        Command::Repository(command) => repository::execute(command, streams.stdout),
        Command::Experiment(command) => experiment::execute(command, streams),
        Command::Ope(args) => ope::ope(args, streams),
        Command::Simulate(args) => simulate::simulate(args, streams),
        Command::Decisions(command) => decisions::execute(command, streams),
        Command::Completions(args) => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(args.shell, &mut command, "cx", streams.stdout);
            Ok(())
        }
    }
}

/// Loads a model file, naming it in the error; without a path, the bundled default model.
pub fn load_model(path: Option<&Path>) -> Result<SnnModel> {
    let Some(path) = path else {
        return cx_engine::default_model().map_err(|source| Error::Model {
            path: cx_engine::DEFAULT_MODEL_NAME.into(),
            source,
        });
    };
    SnnModel::load(path).map_err(|source| {
        let path = path.display().to_string();
        match source {
            cx_model::Error::Io { source, .. } => Error::ModelRead { path, source },
            source => Error::Model { path, source },
        }
    })
}

/// How a model path is shown: the path, or the bundled default's name.
pub fn model_path_name(path: Option<&Path>) -> String {
    path.map_or_else(
        || cx_engine::DEFAULT_MODEL_NAME.to_string(),
        |p| p.display().to_string(),
    )
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
        let line = format!("line over {} bytes", score::LINE_BYTES_MAX);
        assert!(SCORE_HELP.contains(&line), "{line}");
        let request = format!(
            "at most {} bytes",
            cx_wire::openrtb::limits::REQUEST_BYTES_MAX
        );
        assert!(SCORE_HELP.contains(&request), "{request}");
    }
}
