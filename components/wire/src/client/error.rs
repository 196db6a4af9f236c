//! [`ClientError`]: what went wrong on a client connection.

use super::io::READ_OP;
use crate::protocol::{ErrorCode, ProtocolError};

/// What went wrong on a client connection. Each variant says what the
/// client was doing or what it received.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No address given could be connected to (or none was given).
    #[error("cannot connect to {addr}")]
    Connect {
        /// The address as given, or the addresses tried.
        addr: String,
        /// The last attempt's error.
        #[source]
        source: std::io::Error,
    },
    /// A socket operation failed.
    #[error("cannot {op}")]
    Io {
        /// What was being done: `read from the server`, `write to the
        /// server`, `set a socket option`.
        op: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A read or write waited for the whole timeout set with
    /// [`Client::set_timeout`](super::Client::set_timeout) (or
    /// `connect_timeout`). After a read timeout the connection is intact
    /// and the call may be repeated; after a write timeout it is not
    /// ([`ClientError::is_fatal`]).
    #[error("timed out after {after_ms} ms waiting to {op}")]
    TimedOut {
        /// What was being done: `read from the server` or `write to the
        /// server`.
        op: &'static str,
        /// The timeout that ran out, in milliseconds.
        after_ms: u64,
    },
    /// A request could not be encoded (a value over a protocol limit, a
    /// non-finite number); nothing was queued.
    #[error("cannot encode the {message} request")]
    Encode {
        /// The message type's label (`score_openrtb`, `score_context`).
        message: &'static str,
        /// What the codec refused, naming the field.
        #[source]
        source: ProtocolError,
    },
    /// A frame from the server was refused by the codec. When the error
    /// [`is_fatal`](ProtocolError::is_fatal), the connection is broken;
    /// otherwise only this frame was dropped.
    #[error("invalid frame from the server{}", request_label(*request_id))]
    Protocol {
        /// The frame's request id, when its header could be read.
        request_id: Option<u64>,
        /// What was wrong, naming the field and offset.
        #[source]
        source: ProtocolError,
    },
    /// The server sent a well-formed frame that a client does not expect
    /// here (a client-only message type, an unasked-for `hello_ack`, too
    /// many responses to keep).
    #[error("unexpected from the server: {what}")]
    Unexpected {
        /// What arrived, and why it is unexpected.
        what: String,
    },
    /// The server answered a hello or ping round trip with an `error`.
    #[error("the server refused request {request_id}: {code} ({message})")]
    Refused {
        /// The request (or 0: none the server could identify).
        request_id: u64,
        /// The error code.
        code: ErrorCode,
        /// The server's message.
        message: String,
    },
    /// The server's `hello_ack` chose a version outside the range this
    /// client offered; the connection is abandoned.
    #[error("the server chose protocol version {chosen}, outside the versions this client speaks ({min} to {max})")]
    VersionOutOfRange {
        /// The version in the `hello_ack`.
        chosen: u8,
        /// The oldest version offered.
        min: u8,
        /// The newest version offered.
        max: u8,
    },
    /// The server closed the connection.
    #[error("the server closed the connection{}", partial_label(*buffered))]
    Closed {
        /// Bytes of an incomplete frame received before the close (0: it
        /// closed between frames).
        buffered: usize,
    },
    /// An earlier fatal error (a broken frame, a close) ended the
    /// connection; connect again.
    #[error("the connection was abandoned after an earlier fatal error")]
    Broken,
}

fn request_label(request_id: Option<u64>) -> String {
    request_id.map_or_else(String::new, |id| format!(" (request id {id})"))
}

fn partial_label(buffered: usize) -> String {
    if buffered == 0 {
        String::new()
    } else {
        format!(" in the middle of a frame ({buffered} bytes of it received)")
    }
}

impl ClientError {
    /// Whether the connection can no longer be used: a close, a fatal
    /// protocol error, or any I/O error other than a read timeout (a write
    /// that timed out may have sent part of a frame).
    pub fn is_fatal(&self) -> bool {
        match self {
            Self::Protocol { source, .. } => source.is_fatal(),
            Self::TimedOut { op, .. } => *op != READ_OP,
            Self::Io { .. } => true,
            Self::Connect { .. }
            | Self::Closed { .. }
            | Self::Broken
            | Self::VersionOutOfRange { .. } => true,
            Self::Encode { .. } | Self::Unexpected { .. } | Self::Refused { .. } => false,
        }
    }

    /// Whether this is a read or write timeout ([`ClientError::TimedOut`]).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::TimedOut { .. })
    }
}
