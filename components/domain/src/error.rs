//! The crate's error type.

/// Everything that can go wrong while building the offer catalog or sizing
/// the bounded stores and pipeline buffers.
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
    /// A state file (snapshot) that cannot be read, or a section of it
    /// that its store refuses: nothing was restored.
    #[error("state {path}: {reason}")]
    State {
        /// The file, or the section.
        path: String,
        /// What is wrong.
        reason: String,
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
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
