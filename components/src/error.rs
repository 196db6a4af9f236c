//! The crate's single error type.

/// Everything that can go wrong while loading, validating or using the data
/// types of this crate. Each variant names the tensor, key or field at fault.
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
    /// The file is larger than [`crate::model::limits::FILE_BYTES_MAX`].
    #[error("model file is {bytes} bytes, more than the limit of {limit} bytes")]
    FileTooLarge {
        /// Size of the file.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
    /// The bytes are not a valid safetensors container (truncated, corrupted header, bad offsets).
    #[error("not a valid safetensors file: {0}")]
    Container(String),
    /// A tensor the model needs is absent.
    #[error("tensor `{name}` is missing")]
    MissingTensor {
        /// Name of the tensor.
        name: String,
    },
    /// A tensor has a dtype the loader does not accept.
    #[error("tensor `{name}` has dtype {found}, expected {expected}")]
    WrongDtype {
        /// Name of the tensor.
        name: String,
        /// What the loader accepts.
        expected: &'static str,
        /// What the file holds.
        found: String,
    },
    /// A tensor has the wrong shape, or its shape does not chain with the previous layer.
    #[error("tensor `{name}` has shape {found:?}, expected {expected}")]
    WrongShape {
        /// Name of the tensor.
        name: String,
        /// A description of the shape the loader needs.
        expected: String,
        /// The shape in the file.
        found: Vec<usize>,
    },
    /// A tensor holds NaN or an infinity.
    #[error("tensor `{name}` holds a non-finite value ({value}) at flat index {index}")]
    NonFinite {
        /// Name of the tensor.
        name: String,
        /// Flat index of the first bad value.
        index: usize,
        /// The value.
        value: f32,
    },
    /// A tensor value lies outside the range its meaning allows.
    #[error("tensor `{name}` value {value} at flat index {index} is out of range: {rule}")]
    OutOfRange {
        /// Name of the tensor.
        name: String,
        /// Flat index of the first bad value.
        index: usize,
        /// The value.
        value: f64,
        /// The rule it breaks, e.g. "beta must be in [0, 1]".
        rule: &'static str,
    },
    /// A metadata key is missing or cannot be parsed.
    #[error("metadata key `{key}`: {reason}")]
    BadMetadata {
        /// The key.
        key: String,
        /// What is wrong with it.
        reason: String,
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
    /// Input data does not fit the model (wrong width, wrong batch size, non-finite features).
    #[error("bad input: {0}")]
    BadInput(String),
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

    /// An OpenRTB bid request that cannot be read: invalid JSON, a missing
    /// required field or a wrong type. `path` names the field
    /// (`imp[0].banner.w`), or is `$` for the document itself.
    #[error("OpenRTB request: `{path}`: {reason}")]
    OpenRtb {
        /// JSON path of the offending field.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An offer catalog that cannot be used; `offer` is the offer id (or
    /// index) when the problem is in one offer.
    #[error("offer catalog: {where_}: {reason}")]
    Catalog {
        /// Where: `offer 1003 field revenue`, `file`, ...
        where_: String,
        /// What is wrong.
        reason: String,
    },
    /// A bounded store was configured with an unusable size.
    #[error("{store}: {reason}")]
    BadStoreConfig {
        /// Which store (`decision cache`, `frequency store`, ...).
        store: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A wire-protocol frame or payload that cannot be decoded, or a value
    /// that cannot be encoded (see [`crate::protocol`]).
    #[error("wire protocol: {0}")]
    Protocol(#[from] crate::protocol::ProtocolError),
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
