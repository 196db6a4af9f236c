//! `cx serve`'s configuration: built-in defaults, then a TOML file, then
//! environment variables, then command-line flags (each overrides the one
//! before; merged by `figment`). `docs/CONFIG.md` lists every key.
//!
//! The server keys are top-level; the engine's (`docs/CONFIG.md`, "Engine")
//! sit under `[engine]`, so one file configures both. Environment: a server
//! key `k` is `CX_SERVE_K` (`CX_SERVE_LISTEN=127.0.0.1:7000`); an engine key
//! is `CX_ENGINE_...` exactly as for `cx score`, with `__` between levels
//! (`CX_ENGINE_BATCH__BATCH_MAX=16`).

use crate::error::Error;
use cx_engine::EngineConfig;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Prefix of the server's environment variables.
pub const ENV_PREFIX: &str = "CX_SERVE_";

/// Largest config file read, bytes.
pub const CONFIG_BYTES_MAX: u64 = 1 << 20;

/// Most worker threads.
pub const WORKERS_MAX: usize = 256;

/// Most connections, over all workers.
pub const CONNECTIONS_LIMIT: usize = 1 << 20;

/// Smallest `output_budget_bytes`: room for a few answers.
pub const OUTPUT_BUDGET_BYTES_MIN: usize = 64 << 10;

/// Smallest `input_budget_bytes`: one maximal frame can always arrive.
pub const INPUT_BUDGET_BYTES_MIN: usize = crate::conn::READ_BUFFER_MAX;

/// Largest `output_budget_bytes` and `input_budget_bytes`.
pub const OUTPUT_BUDGET_BYTES_LIMIT: usize = 64 << 30;

/// How sockets are driven.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum IoMode {
    /// io_uring where the kernel allows it, else epoll (logged).
    #[default]
    Auto,
    /// io_uring only: fail to start without it.
    Uring,
    /// epoll only.
    Epoll,
}

impl IoMode {
    /// The lowercase name, as in the config.
    pub fn label(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Uring => "uring",
            Self::Epoll => "epoll",
        }
    }
}

/// Default submission queue entries of a worker's io_uring ring.
pub const URING_ENTRIES_DEFAULT: u32 = 4096;

/// Everything `cx serve` is configured with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address of the binary protocol. Default `127.0.0.1:7070`.
    pub listen: SocketAddr,
    /// Address of the admin HTTP port (`/metrics`, `/healthz`); `None`
    /// (an empty string in TOML or the environment) turns it off. Default
    /// `127.0.0.1:9464`.
    #[serde(with = "optional_addr")]
    pub admin_listen: Option<SocketAddr>,
    /// Address of the OpenRTB HTTP bidder (bid requests, notices); `None`
    /// (an empty string) turns it off. Default `127.0.0.1:8080`.
    #[serde(with = "optional_addr")]
    pub http_listen: Option<SocketAddr>,
    /// The path bid requests are POSTed to. Default `/openrtb2/bid`.
    pub http_bid_path: String,
    /// A request's deadline when it names none (OpenRTB `tmax` absent, or
    /// a binary `score_context`), ms; 0 means no deadline for those.
    /// Default 250.
    pub deadline_default_ms: u32,
    /// Taken off every deadline for the answer's way back, ms. Default 20.
    pub deadline_margin_ms: u32,
    /// This machine's number among those that bid together, part of every
    /// bid id (ids stay unique across machines only if each has its own).
    /// Default 0.
    pub node_id: u32,
    /// Worker threads, each with its own event loop and engine; 0 means one
    /// per available core. Default 1.
    pub workers: usize,
    /// `auto`, `uring` or `epoll`. Default `auto`.
    pub io: IoMode,
    /// Connections open at once, over all workers; more are closed at
    /// accept. Default 1024.
    pub connections_max: usize,
    /// A connection with nothing in flight that sends nothing for this long
    /// is closed. Default 60000.
    pub idle_timeout_ms: u64,
    /// A connection that does not read its responses for this long is
    /// closed. Default 10000.
    pub slow_client_timeout_ms: u64,
    /// A frame must arrive whole within this long of its first byte, or
    /// the connection is closed (a client trickling bytes cannot hold a
    /// slot). Default 500.
    pub frame_timeout_ms: u64,
    /// Connections open at once from one source address, over all
    /// workers; more are closed at accept. A value over `connections_max`
    /// allows one source every connection. Default 256.
    pub connections_per_source_max: usize,
    /// Answers written but not yet taken by their clients, over all
    /// workers, in bytes: at this, connections with output waiting stop
    /// being read until it is sent. Default 64 MiB.
    pub output_budget_bytes: usize,
    /// Bytes that frames larger than a read buffer keeps (64 KiB) may
    /// reserve at once, over all workers (each reserves the rest of its
    /// length before its buffer grows); a frame the budget cannot cover
    /// waits its turn. At least one maximal frame. Default 64 MiB.
    pub input_budget_bytes: usize,
    /// After SIGTERM/SIGINT, how long requests in flight may take before
    /// the server exits anyway. Default 10000.
    pub shutdown_timeout_ms: u64,
    /// Submission queue entries of each worker's io_uring ring (its
    /// completion queue is twice that); a power of two in 2..=32768.
    /// Entries that find the queue full wait in the loop's backlog, so a
    /// small ring costs system calls, never operations. Default 4096.
    pub uring_entries: u32,
    /// Each worker polls its sockets without ever sleeping in the kernel,
    /// even when idle: one core busy per worker at all times, for the
    /// wake-up latency it saves. Only for workers pinned to cores that
    /// have nothing else to do (docs/SERVER.md, "Busy polling"). Default
    /// false.
    pub busy_poll: bool,
    /// Benchmark baseline: send every received byte straight back, through
    /// the same event loop, without decoding or deciding anything. Default
    /// false.
    pub echo: bool,
    /// The model file; `None` serves the bundled default model.
    pub model: Option<PathBuf>,
    /// The fallback scorer file; `None`: the bundled baseline with the
    /// bundled model, else none.
    pub fallback: Option<PathBuf>,
    /// The offer catalog; `None`: the bundled catalog.
    pub catalog: Option<PathBuf>,
    /// A model repository (`docs/REPOSITORY.md`): serve the active version
    /// of a bundle of it (model, catalog, fallback and decision settings
    /// together) instead of `model`, `catalog` and `fallback`, which must
    /// then be unset. Default none.
    pub repository: Option<PathBuf>,
    /// The bundle of `repository` to serve; `None`: its only bundle.
    pub bundle: Option<String>,
    /// Experiments to serve (`docs/EXPERIMENTS.md`, "Serving"): a TOML
    /// file of `[[experiment]]` tables, or GrowthBook JSON (`.json`),
    /// whose variations name versions of the served bundle; re-read at
    /// every reload. Needs `repository`. Default none.
    pub experiments: Option<PathBuf>,
    /// Where state that must survive a restart is kept (`state.bin`:
    /// budgets, frequency counts, the decision log; `docs/FEEDBACK.md`,
    /// "Persistence"); `None`: in memory only, and the start line says so.
    pub state_dir: Option<PathBuf>,
    /// How often the state file is written, s (and once more at
    /// shutdown); 1..=3600. Default 10.
    pub state_interval_s: u64,
    /// Where the decision journal is written (`cx_engine::journal`: every
    /// decision and the feedback applied to it, for `cx decisions export`;
    /// `docs/FEEDBACK.md`, "Logged data out"); `None`: no journal.
    pub journal_dir: Option<PathBuf>,
    /// Start with empty state when the state file is refused (corrupt,
    /// foreign, another version): the file is moved aside to
    /// `state.bin.refused`. Without it a refused file stops the start.
    /// Default false.
    pub fresh_state: bool,
    /// The online feature store (`[features]`, `docs/CONFIG.md`): on by
    /// default with the bundled definitions.
    pub features: crate::serve::features::FeatureSettings,
    /// The engine, as in `docs/CONFIG.md`.
    pub engine: EngineConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7070)),
            admin_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9464))),
            http_listen: Some(SocketAddr::from(([127, 0, 0, 1], 8080))),
            http_bid_path: "/openrtb2/bid".into(),
            deadline_default_ms: 250,
            deadline_margin_ms: 20,
            node_id: 0,
            workers: 1,
            io: IoMode::Auto,
            connections_max: 1024,
            idle_timeout_ms: 60_000,
            slow_client_timeout_ms: 10_000,
            frame_timeout_ms: 500,
            connections_per_source_max: 256,
            output_budget_bytes: 64 << 20,
            input_budget_bytes: 64 << 20,
            shutdown_timeout_ms: 10_000,
            uring_entries: URING_ENTRIES_DEFAULT,
            busy_poll: false,
            state_dir: None,
            journal_dir: None,
            state_interval_s: 10,
            fresh_state: false,
            echo: false,
            model: None,
            fallback: None,
            catalog: None,
            repository: None,
            bundle: None,
            experiments: None,
            features: crate::serve::features::FeatureSettings::default(),
            engine: EngineConfig::default(),
        }
    }
}

/// `admin_listen` in TOML and the environment: an address, or an empty
/// string for none.
mod optional_addr {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::net::SocketAddr;

    pub fn serialize<S: Serializer>(v: &Option<SocketAddr>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(addr) => s.collect_str(addr),
            None => s.serialize_str(""),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
        let text = String::deserialize(d)?;
        if text.trim().is_empty() {
            return Ok(None);
        }
        text.trim()
            .parse()
            .map(Some)
            .map_err(|e| serde::de::Error::custom(format!("`{text}` is not an address: {e}")))
    }
}

impl ServerConfig {
    /// Defaults, then the TOML file at `path` (if any), then the
    /// environment, then `overrides` (the command line's flags); validated.
    pub fn load(path: Option<&Path>, overrides: Figment) -> Result<Self, Error> {
        let mut figment = Figment::from(Serialized::defaults(Self::default()));
        if let Some(path) = path {
            figment = figment.merge(Toml::string(&read_config(path)?));
        }
        let engine_env = Env::prefixed(cx_engine::config::ENV_PREFIX)
            .split("__")
            .map(|key| format!("engine.{key}").into());
        let server_env = Env::prefixed(ENV_PREFIX)
            .split("__")
            .filter(|key| !key.as_str().starts_with("engine"));
        let figment = figment.merge(engine_env).merge(server_env).merge(overrides);
        let origin = path.map_or_else(String::new, |p| format!(" ({})", p.display()));
        let config: Self = figment
            .extract()
            .map_err(|e| Error::Config(format!("server config{origin}: {e}")))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every key against its limits.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |key: &str, why: String| Err(Error::Config(format!("{key}: {why}")));
        if self.repository.is_some() {
            let set = [
                ("model", self.model.is_some()),
                ("catalog", self.catalog.is_some()),
                ("fallback", self.fallback.is_some()),
            ];
            if let Some((key, _)) = set.iter().find(|(_, on)| *on) {
                return bad(
                    key,
                    "cannot be set with repository: the bundle brings its own".into(),
                );
            }
        } else if self.bundle.is_some() {
            return bad(
                "bundle",
                "names a bundle of a repository, and none is set".into(),
            );
        } else if self.experiments.is_some() {
            return bad(
                "experiments",
                "their variations name versions of a repository bundle, and no repository is set"
                    .into(),
            );
        }
        if let Some(name) = &self.bundle {
            crate::repository::check_name("bundle", name).map_err(|e| {
                Error::Config(format!("bundle: {}", crate::error::render_chain(&e)))
            })?;
        }
        if self.workers > WORKERS_MAX {
            return bad("workers", format!("{} is over {WORKERS_MAX}", self.workers));
        }
        if self.connections_max == 0 || self.connections_max > CONNECTIONS_LIMIT {
            return bad(
                "connections_max",
                format!("{} is not in 1..={CONNECTIONS_LIMIT}", self.connections_max),
            );
        }
        if self.connections_per_source_max == 0
            || self.connections_per_source_max > CONNECTIONS_LIMIT
        {
            return bad(
                "connections_per_source_max",
                format!(
                    "{} is not in 1..={CONNECTIONS_LIMIT}",
                    self.connections_per_source_max
                ),
            );
        }
        if !(OUTPUT_BUDGET_BYTES_MIN..=OUTPUT_BUDGET_BYTES_LIMIT)
            .contains(&self.output_budget_bytes)
        {
            return bad(
                "output_budget_bytes",
                format!(
                    "{} is not in {OUTPUT_BUDGET_BYTES_MIN}..={OUTPUT_BUDGET_BYTES_LIMIT}",
                    self.output_budget_bytes
                ),
            );
        }
        if !(INPUT_BUDGET_BYTES_MIN..=OUTPUT_BUDGET_BYTES_LIMIT).contains(&self.input_budget_bytes)
        {
            return bad(
                "input_budget_bytes",
                format!(
                    "{} is not in {INPUT_BUDGET_BYTES_MIN}..={OUTPUT_BUDGET_BYTES_LIMIT}",
                    self.input_budget_bytes
                ),
            );
        }
        for (key, ms) in [
            ("idle_timeout_ms", self.idle_timeout_ms),
            ("slow_client_timeout_ms", self.slow_client_timeout_ms),
            ("frame_timeout_ms", self.frame_timeout_ms),
            ("shutdown_timeout_ms", self.shutdown_timeout_ms),
        ] {
            if ms == 0 || ms > 24 * 3600 * 1000 {
                return bad(key, format!("{ms} is not in 1..=86400000"));
            }
        }
        if !(2..=32768).contains(&self.uring_entries) || !self.uring_entries.is_power_of_two() {
            return bad(
                "uring_entries",
                format!("{} is not a power of two in 2..=32768", self.uring_entries),
            );
        }
        if Some(self.listen) == self.admin_listen && self.listen.port() != 0 {
            return bad("admin_listen", "is the same address as listen".into());
        }
        let http_port = self.http_listen.filter(|a| a.port() != 0);
        if http_port.is_some() && (http_port == Some(self.listen) || http_port == self.admin_listen)
        {
            return bad(
                "http_listen",
                "is the same address as listen or admin_listen".into(),
            );
        }
        let path = &self.http_bid_path;
        let path_ok = path.starts_with('/')
            && path.len() <= 256
            && !path.starts_with("/notice/")
            && path
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'?' && b != b'#');
        if !path_ok {
            return bad(
                "http_bid_path",
                format!(
                    "`{path}` is not a path: it must start with `/`, hold at most 256 visible \
                     ASCII characters without `?` or `#`, and not be under /notice/"
                ),
            );
        }
        if !(1..=3600).contains(&self.state_interval_s) {
            return bad(
                "state_interval_s",
                format!("{} is not in 1..=3600", self.state_interval_s),
            );
        }
        if self.deadline_default_ms > 60_000 || self.deadline_margin_ms > 60_000 {
            return bad(
                "deadline_default_ms",
                format!(
                    "{} (margin {}) is over 60000",
                    self.deadline_default_ms, self.deadline_margin_ms
                ),
            );
        }
        self.features.validate()?;
        self.engine
            .validate()
            .map_err(|e| Error::Config(format!("engine: {e}")))
    }

    /// Worker threads to start: `workers`, or one per available core.
    pub fn worker_count(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get().min(WORKERS_MAX)),
            n => n,
        }
    }
}

fn read_config(path: &Path) -> Result<String, Error> {
    let read = |source| Error::ConfigRead {
        path: path.display().to_string(),
        source,
    };
    let len = std::fs::metadata(path).map_err(read)?.len();
    if len > CONFIG_BYTES_MAX {
        return Err(Error::Config(format!(
            "config {} is {len} bytes, more than the limit of {CONFIG_BYTES_MAX}",
            path.display()
        )));
    }
    std::fs::read_to_string(path).map_err(read)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(config: ServerConfig) -> String {
        config.validate().expect_err("refused").to_string()
    }

    #[test]
    fn budgets_outside_their_ranges_are_refused_by_name() {
        assert!(ServerConfig::default().validate().is_ok());
        let small_input = ServerConfig {
            input_budget_bytes: INPUT_BUDGET_BYTES_MIN - 1,
            ..ServerConfig::default()
        };
        assert!(
            refusal(small_input).contains("input_budget_bytes"),
            "a budget below one maximal frame would never let one arrive"
        );
        let small_output = ServerConfig {
            output_budget_bytes: OUTPUT_BUDGET_BYTES_MIN - 1,
            ..ServerConfig::default()
        };
        assert!(refusal(small_output).contains("output_budget_bytes"));
        let input_at_min = ServerConfig {
            input_budget_bytes: INPUT_BUDGET_BYTES_MIN,
            ..ServerConfig::default()
        };
        assert!(input_at_min.validate().is_ok());
    }
}
