//! The one error type of the systems crate.

/// What can go wrong setting up or reconfiguring the pipeline. Nothing in a
/// running schedule returns an error: per-request problems become counted
/// outcomes (a fallback score, a no-bid cause) instead.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A config field out of its documented range.
    #[error("config `{field}`: {reason}")]
    Config {
        /// The field, as `section.key`.
        field: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
    /// A model, fallback scorer, catalog or schema that do not fit together.
    #[error("{0}")]
    Mismatch(String),
    /// A model's monitoring reference (`cx.reference`) that does not parse
    /// or does not fit its feature schema.
    #[error("model metadata `{key}`: {reason}")]
    Reference {
        /// The metadata key.
        key: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A model file error.
    #[error(transparent)]
    Model(#[from] cx_model::Error),
    /// A feature schema or normalisation error.
    #[error(transparent)]
    Features(#[from] cx_features::Error),
    /// A catalog or store sizing error.
    #[error(transparent)]
    Domain(#[from] cx_domain::Error),
    /// A backend that could not be initialised.
    #[error(transparent)]
    Backend(#[from] cx_backends::BackendError),
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
