//! The crate's one error type.

/// Everything the feature store can refuse: definitions that do not
/// validate, a store configured beyond its limits, a batch of writes that
/// does not fit the definitions, and snapshots that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The definitions file is not valid TOML, or has an unknown or
    /// mistyped key (the message has the line and the key).
    #[error("feature definitions: {0}")]
    DefinitionsToml(String),
    /// A definition that does not validate: `feature` is its name (or its
    /// position when it has none) and `field` the key at fault.
    #[error("feature definitions: feature '{feature}' field '{field}': {reason}")]
    Definition {
        /// The feature's name, or `#N` (its position) when unnamed.
        feature: String,
        /// The key at fault (`ttl`, `default`, `input`, ...).
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A size beyond a documented limit.
    #[error("{what} is {value}, more than the limit of {limit}")]
    LimitExceeded {
        /// What was measured.
        what: &'static str,
        /// Its value.
        value: u64,
        /// The limit.
        limit: u64,
    },
    /// A store configuration that cannot be used.
    #[error("feature store config: {field}: {reason}")]
    BadConfig {
        /// The config field at fault.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// One write of a batch does not fit the definitions; nothing of the
    /// batch was written.
    #[error(
        "feature put #{index} (feature '{feature}'): {reason}; nothing of the batch was written"
    )]
    BadPut {
        /// The write's position in the batch.
        index: usize,
        /// The feature it names (or its index when out of range).
        feature: String,
        /// What is wrong.
        reason: String,
    },
    /// A snapshot that is refused: foreign, corrupt, truncated, of another
    /// format version or of other definitions. Nothing was loaded.
    #[error("feature snapshot {path}: {reason}")]
    Snapshot {
        /// The snapshot file.
        path: String,
        /// Why it is refused.
        reason: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn def(feature: &str, field: &'static str, reason: impl Into<String>) -> Self {
        Self::Definition {
            feature: feature.to_owned(),
            field,
            reason: reason.into(),
        }
    }
}
