//! The crate's error type.

/// Everything that can go wrong while building a feature schema, extracting
/// a row or applying normalisation statistics.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A size exceeds a documented limit.
    #[error("{what} is {value}, more than the limit of {limit}")]
    LimitExceeded {
        /// What was measured.
        what: String,
        /// Its value.
        value: usize,
        /// The limit.
        limit: usize,
    },
    /// A feature row's length does not match the schema or normalisation using it.
    #[error("feature row has {found} values, the {what} needs {expected}")]
    WrongRowWidth {
        /// What needs the row, e.g. "feature schema".
        what: &'static str,
        /// The length it needs (at least, for a normalisation).
        expected: usize,
        /// The row's length.
        found: usize,
    },
    /// A feature schema's parameters are unusable (e.g. a block with zero buckets).
    #[error("bad feature schema: {0}")]
    BadSchema(String),
    /// Feature normalisation statistics are malformed, or do not fit the schema.
    #[error("bad feature normalisation: {0}")]
    BadFeatureNorm(String),
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
