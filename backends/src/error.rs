//! The crate's single error type.

/// Everything a backend or the dispatcher can report.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The model could not be loaded or is invalid.
    #[error(transparent)]
    Model(#[from] cx_model::Error),
    /// A batch larger than the workspace the backend was initialised with.
    #[error("batch of {batch} exceeds the backend's batch_max of {batch_max}")]
    BatchTooLarge {
        /// Samples asked for.
        batch: usize,
        /// The limit set at initialisation.
        batch_max: usize,
    },
    /// The input slice does not hold `batch * inputs` features.
    #[error("input has {len} values, expected batch {batch} x {inputs} features = {}", batch * inputs)]
    InputShape {
        /// Values given.
        len: usize,
        /// Samples asked for.
        batch: usize,
        /// Features per sample the model takes.
        inputs: usize,
    },
    /// A sparse batch whose bounds, columns or order are malformed.
    #[error("sparse input: {reason}")]
    SparseInput {
        /// What is wrong, naming the row and column.
        reason: String,
    },
    /// A feature is NaN or infinite.
    #[error("input sample {sample}, feature {feature} is not finite ({value})")]
    NonFiniteInput {
        /// Row in the batch.
        sample: usize,
        /// Column in the row.
        feature: usize,
        /// The value.
        value: f32,
    },
    /// The caller's readout buffers do not fit the model or the batch.
    #[error(
        "readout holds {batch_max} rows of {outputs} columns; need {batch} rows of {model_outputs}"
    )]
    ReadoutShape {
        /// Rows the readout holds.
        batch_max: usize,
        /// Columns the readout holds.
        outputs: usize,
        /// Rows needed.
        batch: usize,
        /// Columns the model produces.
        model_outputs: usize,
    },
    /// A backend produced output that fails validation (non-finite, or out of range).
    #[error("backend `{backend}` produced invalid output: {reason}")]
    InvalidOutput {
        /// The backend's device name.
        backend: String,
        /// What was wrong.
        reason: String,
    },
    /// A backend cannot run here (not compiled in, no device, or out of rotation).
    #[error("backend `{backend}` is unavailable: {reason}")]
    Unavailable {
        /// The backend.
        backend: String,
        /// Why.
        reason: String,
    },
    /// A backend name that is not one of `scalar`, `simd`, `auto`.
    #[error("unknown backend `{name}`; expected one of: scalar, simd, auto")]
    UnknownBackend {
        /// The name given.
        name: String,
    },
    /// A SIMD tier name (`CX_SIMD_TIER`) that is not one of the tiers.
    #[error("unknown SIMD tier `{name}`; expected one of: avx512, avx2, portable")]
    UnknownSimdTier {
        /// The name given.
        name: String,
    },
    /// Every backend in the chain failed for this batch.
    #[error("every backend failed; the last error was: {last}")]
    AllFailed {
        /// The last backend's error.
        last: Box<BackendError>,
    },
}

impl BackendError {
    /// Whether the error is in the caller's input (shape, batch size,
    /// non-finite features), so that no other backend would do better.
    pub fn is_caller_error(&self) -> bool {
        matches!(
            self,
            Self::BatchTooLarge { .. }
                | Self::InputShape { .. }
                | Self::NonFiniteInput { .. }
                | Self::SparseInput { .. }
                | Self::ReadoutShape { .. }
        )
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = BackendError> = std::result::Result<T, E>;
