//! The crate's error type.

/// A request or frame that cannot be read: an OpenRTB document, or a
/// wire-protocol frame or payload.
#[derive(Debug, thiserror::Error)]
pub enum Error {
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
    /// A wire-protocol frame or payload that cannot be decoded, or a value
    /// that cannot be encoded (see [`crate::protocol`]).
    #[error("wire protocol: {0}")]
    Protocol(#[from] crate::protocol::ProtocolError),
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
