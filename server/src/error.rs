//! The crate's single error type.

use cx_engine::backends::BackendError;

/// Everything a `cx` command can report. Each variant names the file, row or
/// setting at fault; the underlying error, when there is one, is its
/// [`std::error::Error::source`] (see [`render_chain`] to print both).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The model file could not be read (missing, unreadable, a directory).
    #[error("cannot read model {path}")]
    ModelRead {
        /// The model file as given.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The model file was read but is not a valid model (truncated,
    /// corrupted, wrong shapes, out-of-range values, over a limit).
    #[error("cannot load model {path}")]
    Model {
        /// The model file as given.
        path: String,
        /// Why.
        #[source]
        source: cx_model::Error,
    },
    /// The input file (or stdin) could not be read.
    #[error("cannot read input {origin}")]
    InputRead {
        /// The file as given, or `stdin`.
        origin: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The input is not valid JSON; the source names the line and column.
    #[error("input {origin} is not valid JSON")]
    InputJson {
        /// The file as given, or `stdin`.
        origin: String,
        /// The parser's error, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// The input is valid JSON but not a batch of feature vectors the model takes.
    #[error("{origin}: {reason}")]
    BadInput {
        /// The file as given, or `stdin`.
        origin: String,
        /// What is wrong, naming the row and feature.
        reason: String,
    },
    /// `CX_BACKEND` names no known backend.
    #[error("environment variable {var} is invalid")]
    BackendEnv {
        /// The variable's name, `CX_BACKEND`.
        var: &'static str,
        /// The parse error, which names the value.
        #[source]
        source: BackendError,
    },
    /// A backend could not be initialised.
    #[error("cannot initialise backend `{backend}` for batches of up to {batch_max}")]
    BackendInit {
        /// The backend asked for (`scalar`, `simd` or `auto`).
        backend: &'static str,
        /// The batch size it was initialised for.
        batch_max: usize,
        /// The backend's error.
        #[source]
        source: BackendError,
    },
    /// A backend failed to run a chunk of the input.
    #[error("backend failed on input rows {first_row}..{end_row}")]
    Backend {
        /// First input row of the failing chunk.
        first_row: usize,
        /// One past the last input row of the failing chunk.
        end_row: usize,
        /// The backend's error.
        #[source]
        source: BackendError,
    },
    /// A `--trace` run would record more values than [`crate::cli::run::TRACE_VALUES_MAX`].
    #[error(
        "--trace would record {values} values ({rows} rows x {steps} steps x {neurons} neurons), \
         more than the limit of {limit}; trace fewer rows"
    )]
    TraceTooLarge {
        /// Values the trace would hold.
        values: u128,
        /// Input rows.
        rows: usize,
        /// Time steps per row.
        steps: u32,
        /// Neurons over all layers.
        neurons: usize,
        /// The limit.
        limit: u128,
    },
    /// A backend produced a trace that does not cover every sample, step and neuron.
    #[error("backend `{backend}` produced an incomplete trace: {reason}")]
    IncompleteTrace {
        /// The backend's device name.
        backend: String,
        /// What was missing.
        reason: String,
    },
    /// A data, spec or output file could not be read or written.
    #[error("cannot access {path}")]
    File {
        /// The file as given.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A click log or its dataset spec is unusable.
    #[error("{what} {path}")]
    Data {
        /// What was being read, e.g. "cannot use dataset spec".
        what: &'static str,
        /// The file as given.
        path: String,
        /// Why.
        #[source]
        source: cx_datasets::Error,
    },
    /// Training or evaluation could not proceed.
    #[error("{0}")]
    Train(#[from] cx_train::TrainError),
    /// A model does not fit the data or the feature schema it is used with.
    #[error("{0}")]
    Mismatch(String),
    /// The engine could not be set up from the given model, fallback,
    /// catalog, config or backend.
    #[error("{what}")]
    Engine {
        /// What was being set up, naming the option or file at fault.
        what: String,
        /// The engine's error.
        #[source]
        source: cx_engine::Error,
    },
    /// The online feature store could not be set up, restored or saved:
    /// its definitions, its size, or its snapshot.
    #[error("feature store: {what}")]
    FeatureStore {
        /// What was being done, naming the file or setting at fault.
        what: String,
        /// The store's error (boxed: it is large, and rare).
        #[source]
        source: Box<cx_engine::featurestore::Error>,
    },
    /// A server setting is invalid; the message names the key and value.
    #[error("{0}")]
    Config(String),
    /// A model repository, bundle or version that cannot be used (a bad
    /// name, a missing file, ACTIVE naming no version); the message names
    /// it.
    #[error("model repository: {0}")]
    Repository(String),
    /// The server config file could not be read.
    #[error("cannot read config {path}")]
    ConfigRead {
        /// The file as given.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A socket could not be set up (bind, listen, options).
    #[error("cannot {op} {addr}")]
    Socket {
        /// What was being done (`bind`, `listen`, ...).
        op: &'static str,
        /// The address.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The event loop could not start or failed (io_uring or epoll setup).
    #[error("event loop ({io}): {what}")]
    EventLoop {
        /// `uring` or `epoll`.
        io: &'static str,
        /// What failed.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The admin (metrics) endpoint could not start.
    #[error("admin endpoint")]
    Admin(#[source] crate::metrics::MetricsError),
    /// A worker thread could not be started or ended abnormally.
    #[error("worker {worker}: {what}")]
    Worker {
        /// The worker's index.
        worker: usize,
        /// What happened.
        what: String,
    },
    /// Writing the result failed (e.g. stdout closed).
    #[error("cannot write output")]
    Output(#[source] std::io::Error),
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The error and its chain of sources as one line, `outer: inner: innermost`.
///
/// A source whose message already appears in the line is skipped: some
/// errors (e.g. `cx_model::Error::Io`) print their source themselves
/// and also return it from `source()`.
pub fn render_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut line = err.to_string();
    let mut next = err.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !text.is_empty() && !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        next = cause.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_joins_sources() {
        let err = Error::Model {
            path: "m.safetensors".into(),
            source: cx_model::Error::MissingTensor {
                name: "fc1.weight".into(),
            },
        };
        assert_eq!(
            render_chain(&err),
            "cannot load model m.safetensors: tensor `fc1.weight` is missing"
        );
    }

    #[test]
    fn chain_skips_a_source_already_printed() {
        // `cx_model::Error::Io` prints its source and also returns it.
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let err = Error::Model {
            path: "m.safetensors".into(),
            source: cx_model::Error::Io {
                path: "m.safetensors".into(),
                source: io,
            },
        };
        assert_eq!(
            render_chain(&err),
            "cannot load model m.safetensors: m.safetensors: gone"
        );
    }
}
