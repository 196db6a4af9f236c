//! [`ProtocolError`]: everything the codec refuses, with the field and offset.

use super::codes::ErrorCode;
#[cfg(doc)]
use super::MAGIC;

/// What is wrong with a frame, or with a value an encoder was asked to
/// write. Every variant names the field at fault; `offset` is a byte offset
/// into the payload (add [`super::limits::HEADER_BYTES`] for the offset in
/// the frame), or into the header for the header's own errors. Plain data
/// (`Copy`, no heap), so building one never allocates.
///
/// Two classes, told apart by [`Self::is_fatal`]:
///
/// - **Fatal**: [`Self::BadMagic`], [`Self::FrameTooLarge`]. The header
///   cannot be trusted (or its frame cannot be buffered), so the receiver
///   no longer knows where the next frame starts. It should send an error
///   frame, then close the connection.
/// - **Recoverable**: every other variant. The header was read and its
///   length is trusted, so the receiver skips the frame (`consumed` bytes),
///   answers its request id with an error frame of [`Self::code`], and goes
///   on with the next frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The first bytes are not [`MAGIC`] (`"CXWP"`): not our protocol, or
    /// framing was lost. Fatal.
    #[error(
        "bad magic: header byte {offset} is {found:#04x}, expected {expected:#04x} (\"CXWP\")"
    )]
    BadMagic {
        /// Offset of the first wrong byte (0 to 3).
        offset: usize,
        /// The byte found.
        found: u8,
        /// The byte [`MAGIC`] has there.
        expected: u8,
    },
    /// The header announces a payload over
    /// [`limits::PAYLOAD_BYTES_MAX`](super::limits::PAYLOAD_BYTES_MAX), or an
    /// encoder produced one. Fatal when decoding.
    #[error("frame payload is {bytes} bytes, more than the limit of {limit} bytes")]
    FrameTooLarge {
        /// The payload length.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// The header's version is not one this build speaks.
    #[error("protocol version {version} is not supported (this side speaks {min} to {max})")]
    UnsupportedVersion {
        /// The version in the header.
        version: u8,
        /// Oldest version spoken here.
        min: u8,
        /// Newest version spoken here.
        max: u8,
    },
    /// The header's message type is not a known code.
    #[error("unknown message type {code:#04x}")]
    UnknownMessageType {
        /// The code in the header.
        code: u8,
    },
    /// A header field that must be 0 (`flags`, `reserved`) is not.
    #[error("header field `{field}` at offset {offset} is {value:#x}, must be 0")]
    BadHeaderField {
        /// `flags` or `reserved`.
        field: &'static str,
        /// Its offset in the header.
        offset: usize,
        /// Its value.
        value: u64,
    },
    /// A fixed-size payload has the wrong length.
    #[error("{message} payload is {found} bytes, must be exactly {expected}")]
    WrongPayloadLength {
        /// The message type's label.
        message: &'static str,
        /// The length the layout has.
        expected: usize,
        /// The payload's length.
        found: usize,
    },
    /// A field runs past the end of the payload (a count or length lies, or
    /// the payload is cut short).
    #[error("`{field}` at offset {offset} needs {needed} bytes, only {available} remain")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Where it starts.
        offset: usize,
        /// Bytes it needs.
        needed: usize,
        /// Bytes left in the payload.
        available: usize,
    },
    /// A length or count is over its limit.
    #[error("`{field}` at offset {offset} is {len}, more than the limit of {limit}")]
    TooLong {
        /// The string or list.
        field: &'static str,
        /// Where its length or count is.
        offset: usize,
        /// The length (bytes) or count (items).
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// A string is not valid UTF-8.
    #[error("`{field}` is not valid UTF-8 (first bad byte at offset {offset})")]
    InvalidUtf8 {
        /// The string.
        field: &'static str,
        /// Offset of the first byte that is not UTF-8.
        offset: usize,
    },
    /// A float is NaN or infinite.
    #[error("`{field}` at offset {offset} is not a finite number")]
    NonFinite {
        /// The float.
        field: &'static str,
        /// Its offset.
        offset: usize,
    },
    /// A value breaks its field's rule (an unknown code, a bool that is
    /// not 0 or 1, a reserved field or bit that is not 0, contradicting
    /// fields).
    #[error("`{field}` at offset {offset} is {value}: {rule}")]
    InvalidValue {
        /// The field.
        field: &'static str,
        /// Its offset.
        offset: usize,
        /// Its value.
        value: u64,
        /// The rule it breaks, e.g. "must be 0 or 1".
        rule: &'static str,
    },
    /// Bytes are left after the last field of the payload.
    #[error("{count} bytes after the last field, at offset {offset}")]
    TrailingBytes {
        /// Where the extra bytes start.
        offset: usize,
        /// How many.
        count: usize,
    },
}

impl ProtocolError {
    /// Whether framing is lost: the receiver must close the connection
    /// (after sending an error frame). See the type's docs.
    pub fn is_fatal(&self) -> bool {
        matches!(self, Self::BadMagic { .. } | Self::FrameTooLarge { .. })
    }

    /// The error code to answer with.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::BadMagic { .. } | Self::BadHeaderField { .. } => ErrorCode::MalformedFrame,
            Self::FrameTooLarge { .. } => ErrorCode::FrameTooLarge,
            Self::UnsupportedVersion { .. } => ErrorCode::UnsupportedVersion,
            Self::UnknownMessageType { .. } => ErrorCode::UnknownMessageType,
            Self::WrongPayloadLength { .. }
            | Self::Truncated { .. }
            | Self::TooLong { .. }
            | Self::InvalidUtf8 { .. }
            | Self::NonFinite { .. }
            | Self::InvalidValue { .. }
            | Self::TrailingBytes { .. } => ErrorCode::InvalidPayload,
        }
    }
}
