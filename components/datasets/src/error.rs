//! The crate's error type.

/// Everything that can go wrong while reading a click log through a dataset
/// spec, or generating, writing or reading synthetic click logs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
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
    /// A dataset spec is malformed or does not fit the file it describes.
    #[error("dataset spec: {0}")]
    BadSpec(String),
    /// A dataset spec gives the label or the oracle column an input role
    /// (offer, time, a context field, a hashed or numeric feature), so a
    /// model would read the answer (`crate::leakage`).
    #[error(
        "dataset spec: column `{column}` is the {leaked} and cannot also be `{role}`: \
         a model would read the answer (label leakage)"
    )]
    LabelLeak {
        /// The column.
        column: String,
        /// `label` or `oracle`: what the column is.
        leaked: &'static str,
        /// The other role given to it, as the spec's key (`offer.column`,
        /// `hashed[2]`, `fields.site_id`, `oracle`, ...).
        role: String,
    },
    /// A model metadata key of this crate's (`cx.training_inputs`) does not parse.
    #[error("model metadata `{key}`: {reason}")]
    Metadata {
        /// The key.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Input data does not fit the model (wrong width, wrong batch size, non-finite features).
    #[error("bad input: {0}")]
    BadInput(String),
    /// A synthetic-data generator setting is outside its documented range.
    #[error("synthetic data config field `{field}` is {value}: {rule}")]
    SynthConfig {
        /// The field of `SynthConfig`.
        field: &'static str,
        /// Its value.
        value: String,
        /// The rule it breaks, e.g. "must be in 1..=1024".
        rule: &'static str,
    },
    /// A synthetic click-log CSV line is malformed, or a row cannot be written as one.
    #[error("synthetic CSV line {line}, column `{column}`: {reason}")]
    SynthCsv {
        /// 1-based line number (the header is line 1).
        line: u64,
        /// The column at fault.
        column: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Reading or writing a synthetic click-log CSV failed.
    #[error("synthetic CSV line {line}: {source}")]
    SynthCsvIo {
        /// 1-based line number being read or written.
        line: u64,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A feature schema or extraction error.
    #[error(transparent)]
    Features(#[from] cx_features::Error),
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
