//! `cx serve`: the decision server. Loads the configuration (defaults,
//! `--config` TOML, `CX_SERVE_*` / `CX_ENGINE_*` environment, flags),
//! starts [`Server`], prints one JSON line saying where it listens, and
//! runs until SIGTERM or SIGINT (graceful: requests already accepted are
//! answered). SIGHUP reloads the model file, or the repository bundle. A second SIGTERM/SIGINT during
//! shutdown exits at once with status 1.

use crate::cli::Streams;
use crate::config::{IoMode, ServerConfig};
use crate::error::{Error, Result};
use crate::serve::Server;
use clap::Args;
use figment::providers::Serialized;
use figment::Figment;
use serde::Serialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often the main thread looks at the signal flags.
const SIGNAL_POLL: Duration = Duration::from_millis(25);

const SERVE_HELP: &str = "\
Configuration, lowest precedence first: built-in defaults, the --config
TOML file, environment variables, then these flags (docs/CONFIG.md lists
every key). Server keys are CX_SERVE_<KEY> (CX_SERVE_LISTEN=127.0.0.1:7000,
CX_SERVE_IO=epoll); engine keys are CX_ENGINE_<KEY> with `__` between levels
(CX_ENGINE_BATCH__BATCH_MAX=16), as for `cx score`.

On start it prints one JSON line to stdout:
  {\"listen\":\"127.0.0.1:7070\",\"admin\":\"127.0.0.1:9464\",\"http\":\"127.0.0.1:8080\",\"io\":\"uring\",...}

Signals: SIGTERM or SIGINT stop taking new requests, answer every request
already accepted, then exit (a second one exits at once). SIGHUP re-reads
the model file (with --repository: the bundle's active version, model,
catalog, fallback and decision settings together) and serves it from the
next tick; one that fails to load is logged, counted in
cx_model_reloads_total{result}, and the old one keeps serving.
POST /admin/reload on the admin port does the same as SIGHUP.

A model repository (docs/REPOSITORY.md) is a directory of bundles,
NAME/VERSION/ with model.safetensors, catalog.toml, and optionally
fallback.safetensors and decide.toml; NAME/ACTIVE names the version served
(else the highest). `cx repository activate|rollback` change it.
With --experiments FILE, several versions serve at once: each request is
assigned by GrowthBook's hashing to an experiment arm whose version scores
it; GET /admin/experiments on the admin port reports each arm's counts
and tests (`cx experiment report --addr ADMIN` prints them).

Logs go to stderr, filtered by RUST_LOG (default `info`).

Example:
  cx serve --listen 127.0.0.1:7070 --admin-listen 127.0.0.1:9464
  curl -s 127.0.0.1:9464/metrics | grep ml_predictions_total
  curl -s -d @components/wire/tests/fixtures/openrtb/2.5_mobile.json 127.0.0.1:8080/openrtb2/bid
  cx client --addr 127.0.0.1:7070 components/wire/tests/fixtures/openrtb/prebid_sample.jsonl";

/// Arguments of `cx serve`.
#[derive(Debug, Args)]
#[command(after_long_help = SERVE_HELP)]
pub struct ServeArgs {
    /// A TOML config file (server keys, and the engine's under [engine]).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address of the binary protocol [default: 127.0.0.1:7070].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Address of /metrics, /healthz and /readyz; an empty string turns it off
    /// [default: 127.0.0.1:9464].
    #[arg(long, value_name = "ADDR", value_parser = parse_optional_addr)]
    pub admin_listen: Option<String>,
    /// Address of the OpenRTB HTTP bidder (POST /openrtb2/bid, GET
    /// /notice/...); an empty string turns it off [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR", value_parser = parse_optional_addr)]
    pub http_listen: Option<String>,
    /// The path bid requests are POSTed to [default: /openrtb2/bid].
    #[arg(long, value_name = "PATH")]
    pub http_bid_path: Option<String>,
    /// A request's deadline when it names none (no OpenRTB tmax, or a
    /// binary score_context), ms; 0 = none [default: 250].
    #[arg(long, value_name = "MS")]
    pub deadline_default_ms: Option<u32>,
    /// Taken off every deadline for the answer's way back [default: 20].
    #[arg(long, value_name = "MS")]
    pub deadline_margin_ms: Option<u32>,
    /// Worker threads, each with its own event loop and engine; 0 = one per
    /// core [default: 1].
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Event loop: io_uring, epoll, or auto (io_uring when the kernel
    /// allows it) [default: auto].
    #[arg(long, value_enum)]
    pub io: Option<IoMode>,
    /// Connections open at once, over all workers [default: 1024].
    #[arg(long, value_name = "N")]
    pub connections_max: Option<usize>,
    /// Close a connection with nothing in flight after this long without
    /// input [default: 60000].
    #[arg(long, value_name = "MS")]
    pub idle_timeout_ms: Option<u64>,
    /// Close a connection that does not read its responses for this long
    /// [default: 10000].
    #[arg(long, value_name = "MS")]
    pub slow_client_timeout_ms: Option<u64>,
    /// Close a connection whose frame has not arrived whole this long after
    /// its first byte [default: 500].
    #[arg(long, value_name = "MS")]
    pub frame_timeout_ms: Option<u64>,
    /// Connections open at once from one source address, over all workers
    /// [default: 256].
    #[arg(long, value_name = "N")]
    pub connections_per_source_max: Option<usize>,
    /// Bytes of answers waiting for their clients, over all workers, at
    /// which connections with output waiting stop being read [default:
    /// 67108864].
    #[arg(long, value_name = "BYTES")]
    pub output_budget_bytes: Option<usize>,
    /// Bytes that frames larger than a read buffer keeps (64 KiB) may
    /// reserve at once, over all workers; a frame the budget cannot cover
    /// waits its turn; at least one maximal frame (1114140) [default:
    /// 67108864].
    #[arg(long, value_name = "BYTES")]
    pub input_budget_bytes: Option<usize>,
    /// On SIGTERM, how long requests in flight may take [default: 10000].
    #[arg(long, value_name = "MS")]
    pub shutdown_timeout_ms: Option<u64>,
    /// The model (.safetensors) [default: the bundled default model].
    #[arg(long, value_name = "MODEL")]
    pub model: Option<PathBuf>,
    /// The fallback scorer [default: the bundled baseline with the bundled
    /// model, else none].
    #[arg(long, value_name = "FILE")]
    pub fallback: Option<PathBuf>,
    /// The offer catalog (TOML) [default: the bundled catalog].
    #[arg(long, value_name = "FILE")]
    pub catalog: Option<PathBuf>,
    /// Serve from this model repository (docs/REPOSITORY.md): the active
    /// version of a bundle, its model, catalog, fallback and decision
    /// settings together; not with --model, --catalog or --fallback.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["model", "catalog", "fallback"])]
    pub repository: Option<PathBuf>,
    /// The repository's bundle to serve [default: its only bundle].
    #[arg(long, value_name = "NAME", requires = "repository")]
    pub bundle: Option<String>,
    /// Serve experiments (docs/EXPERIMENTS.md, "Serving"): a TOML file of
    /// [[experiment]] tables, or GrowthBook JSON (.json), whose variations
    /// name versions of the served bundle; each request is scored by its
    /// arm's version. Re-read at every reload [default: none].
    #[arg(long, value_name = "FILE", requires = "repository")]
    pub experiments: Option<PathBuf>,
    /// Keep state that must survive a restart (budgets, frequency counts,
    /// the decision log) in DIR/state.bin (the feature store in
    /// DIR/features.bin, experiment counts in DIR/experiments.bin), written
    /// every --state-interval-s and at shutdown, restored at start
    /// [default: memory only].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Write a decision journal in DIR: every decision that chose an offer
    /// (DSJSON, its reward not yet known) and the feedback applied to it,
    /// which `cx decisions export` joins into training data
    /// (docs/FEEDBACK.md, "Logged data out") [default: none].
    #[arg(long, value_name = "DIR")]
    pub journal_dir: Option<PathBuf>,
    /// How often the state file is written, s [default: 10].
    #[arg(long, value_name = "S", requires = "state_dir")]
    pub state_interval_s: Option<u64>,
    /// Start with empty state when the state file is refused (corrupt,
    /// foreign or another version), moving it aside to state.bin.refused;
    /// without it, a refused file stops the start.
    #[arg(long, requires = "state_dir")]
    pub fresh_state: bool,
    /// Refuse a model trained on dataset columns a serving path never fills
    /// (train/serve skew: e.g. hashed columns, which no OpenRTB request
    /// fills), at start and at a reload; without it such a model serves
    /// with a warning naming the columns (engine.train_serve_skew,
    /// docs/DATASETS.md).
    #[arg(long)]
    pub strict_skew: bool,
    /// Run without the online feature store (put_features items are then
    /// refused store_off) [default: on, features.enabled].
    #[arg(long)]
    pub features_off: bool,
    /// The feature definitions TOML [default: the bundled
    /// models/features.toml, features.definitions].
    #[arg(long, value_name = "FILE")]
    pub features_definitions: Option<PathBuf>,
    /// Users the feature store holds (rounded up to a multiple of 8)
    /// [default: 262144, features.entities].
    #[arg(long, value_name = "N")]
    pub features_entities: Option<usize>,
    /// Most bytes the feature store's tables take (wins over
    /// --features-entities) [default: 268435456, features.bytes_max].
    #[arg(long, value_name = "BYTES")]
    pub features_bytes_max: Option<u64>,
    /// Share of a feature's reads that may be stale before it is flagged
    /// in metrics, logs and health [default: 0.2,
    /// features.stale_warn_share].
    #[arg(long, value_name = "SHARE")]
    pub features_stale_warn_share: Option<f64>,
    /// Workers poll their sockets without sleeping, even when idle (a core
    /// busy per worker; only for workers on dedicated cores).
    #[arg(long)]
    pub busy_poll: bool,
    /// Benchmark baseline: echo every received byte back through the same
    /// event loop, deciding nothing (clients send `pong` frames and read
    /// them back).
    #[arg(long)]
    pub echo: bool,
    /// Log lines on stderr as text for people, or as one JSON object per
    /// line for log pipelines.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    pub print_config: bool,
}

/// `--admin-listen`, `--http-listen`: an address, or an empty string for
/// none.
fn parse_optional_addr(text: &str) -> std::result::Result<String, String> {
    if text.trim().is_empty() {
        return Ok(String::new());
    }
    text.trim()
        .parse::<SocketAddr>()
        .map(|a| a.to_string())
        .map_err(|e| format!("{e} (give IP:PORT, or \"\" to turn the listener off)"))
}

/// The flags that were given, as a figment layer.
#[derive(Serialize)]
struct Overrides<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    admin_listen: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_listen: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_bid_path: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deadline_default_ms: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deadline_margin_ms: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    workers: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    io: Option<IoMode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    connections_max: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    idle_timeout_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    slow_client_timeout_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frame_timeout_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    connections_per_source_max: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_budget_bytes: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    input_budget_bytes: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shutdown_timeout_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    busy_poll: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    echo: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<&'a PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fallback: Option<&'a PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    catalog: Option<&'a PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    repository: Option<&'a PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bundle: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    experiments: Option<&'a PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state_dir: Option<&'a PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state_interval_s: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    journal_dir: Option<&'a PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fresh_state: Option<bool>,
    /// The `--features-*` flags given, as `[features]` keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    features: Option<serde_json::Value>,
    /// `--strict-skew`: `engine.train_serve_skew = "refuse"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    engine: Option<serde_json::Value>,
}

impl ServeArgs {
    /// The configuration these flags select (with the file and environment).
    pub fn load_config(&self) -> Result<ServerConfig> {
        let overrides = Overrides {
            listen: self.listen,
            admin_listen: self.admin_listen.as_deref(),
            http_listen: self.http_listen.as_deref(),
            http_bid_path: self.http_bid_path.as_deref(),
            deadline_default_ms: self.deadline_default_ms,
            deadline_margin_ms: self.deadline_margin_ms,
            workers: self.workers,
            io: self.io,
            connections_max: self.connections_max,
            idle_timeout_ms: self.idle_timeout_ms,
            slow_client_timeout_ms: self.slow_client_timeout_ms,
            frame_timeout_ms: self.frame_timeout_ms,
            connections_per_source_max: self.connections_per_source_max,
            output_budget_bytes: self.output_budget_bytes,
            input_budget_bytes: self.input_budget_bytes,
            shutdown_timeout_ms: self.shutdown_timeout_ms,
            busy_poll: self.busy_poll.then_some(true),
            echo: self.echo.then_some(true),
            model: self.model.as_ref(),
            fallback: self.fallback.as_ref(),
            catalog: self.catalog.as_ref(),
            repository: self.repository.as_ref(),
            bundle: self.bundle.as_deref(),
            experiments: self.experiments.as_ref(),
            state_dir: self.state_dir.as_ref(),
            state_interval_s: self.state_interval_s,
            journal_dir: self.journal_dir.as_ref(),
            fresh_state: self.fresh_state.then_some(true),
            features: self.feature_overrides(),
            engine: self
                .strict_skew
                .then(|| serde_json::json!({"train_serve_skew": "refuse"})),
        };
        let layer = Figment::from(Serialized::defaults(overrides));
        ServerConfig::load(self.config.as_deref(), layer)
    }
}

impl ServeArgs {
    /// The `--features-*` flags given, as a `[features]` table (`None`
    /// when none was).
    fn feature_overrides(&self) -> Option<serde_json::Value> {
        let mut table = serde_json::Map::new();
        if self.features_off {
            table.insert("enabled".into(), false.into());
        }
        if let Some(path) = &self.features_definitions {
            table.insert("definitions".into(), path.display().to_string().into());
        }
        if let Some(n) = self.features_entities {
            table.insert("entities".into(), n.into());
        }
        if let Some(n) = self.features_bytes_max {
            table.insert("bytes_max".into(), n.into());
        }
        if let Some(x) = self.features_stale_warn_share {
            table.insert("stale_warn_share".into(), x.into());
        }
        (!table.is_empty()).then_some(serde_json::Value::Object(table))
    }
}

/// How `cx serve` writes its log lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Text for people (colours on a terminal).
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `fields`.
    Json,
}

/// Installs the `tracing` subscriber: stderr in `format`, filtered by
/// `RUST_LOG` (default `info`). A second call (tests) keeps the first.
pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Runs `cx serve` until a termination signal.
pub fn serve(args: &ServeArgs, streams: &mut Streams<'_>) -> Result<()> {
    let config = args.load_config()?;
    if args.print_config {
        let text = toml::to_string(&config)
            .map_err(|e| Error::Config(format!("cannot print the config: {e}")))?;
        return write!(streams.stdout, "{text}").map_err(Error::Output);
    }
    init_tracing(args.log_format);
    let signals = Signals::install()?;
    let workers = config.worker_count();
    let echo = config.echo;
    let server = Server::start(config)?;
    let started = serde_json::json!({
        "listen": server.local_addr().to_string(),
        "admin": server.admin_addr().map(|a| a.to_string()),
        "http": server.http_addr().map(|a| a.to_string()),
        "io": server.io().label(),
        "workers": workers,
        "echo": echo,
        "model": server.model().id,
        "bundle": server.bundle().map(|(name, version)| serde_json::json!({"name": name, "version": version})),
        "state": server.state_start().to_json(),
        // The online feature store: on (its definitions' schema id,
        // capacity, snapshot) or off.
        "features": server.feature_start().to_json(),
        // Dataset columns the model was trained on that a serving path
        // never fills (empty: none, or no record).
        "train_serve_skew": server.train_serve_skew(),
        // The SIMD tier the workers' kernels picked on this CPU (their
        // engines were built from the same environment just above).
        "simd_tier": cx_engine::backends::SimdTier::from_env_or_detect()
            .ok()
            .map(|t| t.to_string()),
    });
    writeln!(streams.stdout, "{started}").map_err(Error::Output)?;
    streams.stdout.flush().map_err(Error::Output)?;
    signals.wait(&server);
    tracing::info!("shutting down: answering the requests in flight");
    server.shutdown();
    server.wait()
}

/// The flags the signal handlers set.
struct Signals {
    terminate: Arc<AtomicBool>,
    reload: Arc<AtomicBool>,
}

impl Signals {
    fn install() -> Result<Self> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let terminate = Arc::new(AtomicBool::new(false));
        let reload = Arc::new(AtomicBool::new(false));
        let fail =
            |e: std::io::Error| Error::Config(format!("cannot install signal handlers: {e}"));
        for signal in [SIGTERM, SIGINT] {
            // A second signal while shutting down exits at once.
            signal_hook::flag::register_conditional_shutdown(signal, 1, terminate.clone())
                .map_err(fail)?;
            signal_hook::flag::register(signal, terminate.clone()).map_err(fail)?;
        }
        signal_hook::flag::register(SIGHUP, reload.clone()).map_err(fail)?;
        Ok(Self { terminate, reload })
    }

    /// Serves reload signals until a termination signal.
    fn wait(&self, server: &Server) {
        while !self.terminate.load(Ordering::Acquire) {
            std::thread::sleep(SIGNAL_POLL);
            if self.reload.swap(false, Ordering::AcqRel) {
                match server.reload() {
                    Ok(info) => tracing::info!(model = %info.id, "model reload ordered (SIGHUP)"),
                    Err(e) => tracing::error!(
                        error = %crate::error::render_chain(&e),
                        "model reload failed; the old model keeps serving"
                    ),
                }
            }
        }
    }
}
