//! The crate's error type.

/// Everything that can go wrong while loading, validating or writing a model
/// or a logistic baseline file. Each variant names the tensor, key or field
/// at fault.
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
    /// The file is larger than [`crate::limits::FILE_BYTES_MAX`].
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
    /// Input data does not fit the model (wrong width, wrong batch size, non-finite features).
    #[error("bad input: {0}")]
    BadInput(String),
    /// A logistic baseline file whose tensors or metadata are unusable.
    #[error("logistic baseline file: {0}")]
    Baseline(String),
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
