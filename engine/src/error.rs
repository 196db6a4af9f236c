//! The one error type of the engine crate.

/// What the engine's API can refuse.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The in-flight limit is reached: poll decisions, or slow down.
    /// Nothing was queued.
    #[error("engine overloaded: {in_flight} requests in flight, the limit is {capacity}")]
    Overloaded {
        /// Requests submitted and not yet polled.
        in_flight: usize,
        /// The configured `in_flight_max`.
        capacity: usize,
    },
    /// A config that cannot be used; the message names the key.
    #[error("config: {0}")]
    Config(String),
    /// `train_serve_skew = "refuse"`: the model was trained on columns that
    /// a serving path never fills ([`crate::skew`]); boxed, so that every
    /// `Result` of the engine stays small.
    #[error(transparent)]
    TrainServeSkew(Box<crate::skew::SkewRefusal>),
    /// A model's training-inputs record (`cx.training_inputs`) that does not parse.
    #[error(transparent)]
    Datasets(#[from] cx_datasets::Error),
    /// A file that could not be read.
    #[error("reading {what} {path}: {source}")]
    Load {
        /// What the file was for (`model`, `catalog`, `config`, ...).
        what: &'static str,
        /// Its path.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A call that needs an idle engine found requests in flight.
    #[error("{0}")]
    Busy(String),
    /// A model file error.
    #[error(transparent)]
    Model(#[from] cx_model::Error),
    /// A feature schema or normalisation error.
    #[error(transparent)]
    Features(#[from] cx_features::Error),
    /// A catalog or store sizing error.
    #[error(transparent)]
    Domain(#[from] cx_domain::Error),
    /// An OpenRTB request that cannot be read.
    #[error(transparent)]
    Wire(#[from] cx_wire::Error),
    /// A pipeline set-up problem (mismatched model and catalog, bad config).
    #[error(transparent)]
    Systems(#[from] cx_systems::Error),
    /// A feature store refusal (definitions, a batch of writes, a snapshot).
    #[error(transparent)]
    FeatureStore(#[from] cx_featurestore::Error),
    /// A backend that could not be initialised.
    #[error(transparent)]
    Backend(#[from] cx_backends::BackendError),
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
