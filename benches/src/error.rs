//! [`Error`], the one error type of the crate's library code (the kernel
//! and engine benchmarks, `cx-bench all`; the load generator's own errors
//! are [`cx_load::Error`]).
//!
//! Every variant names what the user can fix: the option (`--rate`,
//! `--mix`, `--compare`, ...) with its value, the file with what was being
//! done to it, or the server's address. The criterion benches and the
//! report examples keep their own `anyhow` errors.

/// A failure of a benchmark, naming the option, file, setup or server at
/// fault. Options and files the benchmarks share with the load generator
/// (`--out`, `--rate`, ...) are reported as [`cx_load::Error`]s.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The load generator failed (`cx-bench load`, and the load runs of
    /// `cx-bench all`).
    #[error(transparent)]
    Load(#[from] cx_load::Error),
    /// A synthetic workload could not be generated.
    #[error("synthetic workload: {0}")]
    Synth(#[from] cx_datasets::Error),
    /// A benchmark's thread could not be started or stopped.
    #[error("load generator: {0}")]
    Run(String),
    /// A kernel benchmark's backend could not be set up or run.
    #[error("kernel bench: {what}")]
    Kernel {
        /// What was being done: the backend, shape and batch.
        what: String,
        /// The backend's error (boxed: it is large, and rare).
        #[source]
        source: Box<cx_backends::BackendError>,
    },
    /// An engine benchmark's model or engine could not be set up.
    #[error("engine bench: {what}")]
    Engine {
        /// What was being done: the setup being built.
        what: String,
        /// The engine's error (boxed: it is large, and rare).
        #[source]
        source: Box<cx_engine::Error>,
    },
    /// A server run in process (by `cx-bench all`) could not start or
    /// stop cleanly.
    #[error("in-process server: {what}")]
    LocalServer {
        /// What was being done: which server, starting or stopping.
        what: String,
        /// The server's error (boxed: it is large, and rare).
        #[source]
        source: Box<cx_server::Error>,
    },
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The error and every source below it, joined by `: ` (what a report
    /// records, where `Display` gives only the top line).
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(e) = source {
            text.push_str(": ");
            text.push_str(&e.to_string());
            source = e.source();
        }
        text
    }

    /// An option's value that breaks `rule` ([`cx_load::Error::Option`]).
    pub fn option(option: &'static str, value: impl ToString, rule: impl Into<String>) -> Self {
        Self::Load(cx_load::Error::option(option, value, rule))
    }
}
