//! The control messages: `hello` / `hello_ack` (version negotiation and
//! limits), `ping` / `pong`, and `error`.

use super::codes::{ErrorCode, MessageType};
use super::error::ProtocolError;
use super::frame::{exact, FrameStart, Reader};
use super::limits::{
    ERROR_MESSAGE_BYTES_MAX, FRAME_BYTES_MAX, HEADER_BYTES, IMPS_MAX, IN_FLIGHT_MAX, TOP_K_MAX,
};
use super::wire::{ErrorWire, HelloAckWire, HelloWire, PingWire, U16Le, U32Le, U64Le};
use super::{VERSION, VERSION_MIN};

/// A client's `hello`: the range of versions it speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hello {
    /// Oldest version the client speaks (at least 1).
    pub min_version: u8,
    /// Newest version the client speaks (at least `min_version`).
    pub max_version: u8,
}

impl Hello {
    /// The hello of a client built from this crate: [`VERSION_MIN`] to [`VERSION`].
    pub fn ours() -> Self {
        Self {
            min_version: VERSION_MIN,
            max_version: VERSION,
        }
    }

    /// The version a server built from this crate chooses: the newest one
    /// both sides speak, or `None` if the ranges do not meet (the server
    /// then answers `unsupported_version` and closes).
    pub fn negotiate(&self) -> Option<u8> {
        let high = self.max_version.min(VERSION);
        let low = self.min_version.max(VERSION_MIN);
        (low <= high).then_some(high)
    }
}

/// A server's `hello_ack`: the chosen version and the server's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HelloAck {
    /// The version chosen for the connection.
    pub version: u8,
    /// Most offers per impression in a decision.
    pub top_k_max: u8,
    /// Most impressions per decision, and per OpenRTB request.
    pub imps_max: u16,
    /// Largest frame the server accepts, header included.
    pub frame_bytes_max: u32,
    /// Most requests in flight per connection.
    pub in_flight_max: u32,
}

impl HelloAck {
    /// The answer of a server built from this crate, with this module's
    /// [`limits`](super::limits), for the chosen `version`.
    pub fn ours(version: u8) -> Self {
        Self {
            version,
            // The limits are small constants (8, 64, about 1 MiB, 1024).
            top_k_max: TOP_K_MAX as u8,
            imps_max: IMPS_MAX as u16,
            frame_bytes_max: FRAME_BYTES_MAX as u32,
            in_flight_max: IN_FLIGHT_MAX as u32,
        }
    }
}

/// An `error` frame's content, borrowed from the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorMessage<'a> {
    /// What failed.
    pub code: ErrorCode,
    /// A human-readable explanation (UTF-8, possibly empty).
    pub message: &'a str,
}

/// Appends a `hello` frame. Never fails.
pub fn encode_hello(out: &mut Vec<u8>, request_id: u64, hello: Hello) {
    let frame = FrameStart::begin(out, MessageType::Hello, request_id);
    let wire = HelloWire {
        min_version: hello.min_version,
        max_version: hello.max_version,
        reserved: [0; 6],
    };
    out.extend_from_slice(bytemuck::bytes_of(&wire));
    frame
        .end(out)
        .expect("a control frame is a few bytes, far under the payload limit");
}

/// Decodes a `hello` payload: exactly 8 bytes, `1 <= min_version <=
/// max_version`, reserved bytes 0.
pub fn decode_hello(payload: &[u8]) -> Result<Hello, ProtocolError> {
    let wire: &HelloWire = exact(payload, MessageType::Hello)?;
    if wire.min_version == 0 {
        return Err(ProtocolError::InvalidValue {
            field: "min_version",
            offset: 0,
            value: 0,
            rule: "versions start at 1",
        });
    }
    if wire.max_version < wire.min_version {
        return Err(ProtocolError::InvalidValue {
            field: "max_version",
            offset: 1,
            value: u64::from(wire.max_version),
            rule: "must be at least min_version",
        });
    }
    reserved_zero(&wire.reserved, "reserved", 2)?;
    Ok(Hello {
        min_version: wire.min_version,
        max_version: wire.max_version,
    })
}

/// Appends a `hello_ack` frame answering the hello with `request_id`.
/// Never fails.
pub fn encode_hello_ack(out: &mut Vec<u8>, request_id: u64, ack: HelloAck) {
    let frame = FrameStart::begin(out, MessageType::HelloAck, request_id);
    let wire = HelloAckWire {
        version: ack.version,
        top_k_max: ack.top_k_max,
        imps_max: U16Le::new(ack.imps_max),
        frame_bytes_max: U32Le::new(ack.frame_bytes_max),
        in_flight_max: U32Le::new(ack.in_flight_max),
        reserved: U32Le::new(0),
    };
    out.extend_from_slice(bytemuck::bytes_of(&wire));
    frame
        .end(out)
        .expect("a control frame is a few bytes, far under the payload limit");
}

/// Decodes a `hello_ack` payload: exactly 16 bytes, a version of at least
/// 1, every limit at least 1 (`frame_bytes_max` at least the header's 24
/// bytes), reserved bytes 0.
pub fn decode_hello_ack(payload: &[u8]) -> Result<HelloAck, ProtocolError> {
    let wire: &HelloAckWire = exact(payload, MessageType::HelloAck)?;
    let at_least = |field, offset, value: u64, min: u64, rule| {
        if value < min {
            Err(ProtocolError::InvalidValue {
                field,
                offset,
                value,
                rule,
            })
        } else {
            Ok(())
        }
    };
    at_least(
        "version",
        0,
        u64::from(wire.version),
        1,
        "versions start at 1",
    )?;
    at_least(
        "top_k_max",
        1,
        u64::from(wire.top_k_max),
        1,
        "must be at least 1",
    )?;
    at_least(
        "imps_max",
        2,
        u64::from(wire.imps_max.get()),
        1,
        "must be at least 1",
    )?;
    at_least(
        "frame_bytes_max",
        4,
        u64::from(wire.frame_bytes_max.get()),
        HEADER_BYTES as u64,
        "must be at least the 24-byte header",
    )?;
    at_least(
        "in_flight_max",
        8,
        u64::from(wire.in_flight_max.get()),
        1,
        "must be at least 1",
    )?;
    reserved_zero(&wire.reserved.0, "reserved", 12)?;
    Ok(HelloAck {
        version: wire.version,
        top_k_max: wire.top_k_max,
        imps_max: wire.imps_max.get(),
        frame_bytes_max: wire.frame_bytes_max.get(),
        in_flight_max: wire.in_flight_max.get(),
    })
}

/// Appends a `ping` frame carrying `nonce`. Never fails.
pub fn encode_ping(out: &mut Vec<u8>, request_id: u64, nonce: u64) {
    encode_ping_like(out, MessageType::Ping, request_id, nonce);
}

/// Appends a `pong` frame answering the ping `request_id`, echoing its
/// `nonce`. Never fails.
pub fn encode_pong(out: &mut Vec<u8>, request_id: u64, nonce: u64) {
    encode_ping_like(out, MessageType::Pong, request_id, nonce);
}

fn encode_ping_like(out: &mut Vec<u8>, message: MessageType, request_id: u64, nonce: u64) {
    let frame = FrameStart::begin(out, message, request_id);
    out.extend_from_slice(bytemuck::bytes_of(&PingWire {
        nonce: U64Le::new(nonce),
    }));
    frame
        .end(out)
        .expect("a control frame is a few bytes, far under the payload limit");
}

/// Decodes a `ping` payload (exactly 8 bytes) into its nonce.
pub fn decode_ping(payload: &[u8]) -> Result<u64, ProtocolError> {
    exact::<PingWire>(payload, MessageType::Ping).map(|w| w.nonce.get())
}

/// Decodes a `pong` payload (exactly 8 bytes) into its nonce.
pub fn decode_pong(payload: &[u8]) -> Result<u64, ProtocolError> {
    exact::<PingWire>(payload, MessageType::Pong).map(|w| w.nonce.get())
}

/// Appends an `error` frame. A message over
/// [`ERROR_MESSAGE_BYTES_MAX`] bytes is cut at the last character boundary
/// within the limit, so this never fails.
pub fn encode_error(out: &mut Vec<u8>, request_id: u64, code: ErrorCode, message: &str) {
    let message = cut_at_char_boundary(message, ERROR_MESSAGE_BYTES_MAX);
    let frame = FrameStart::begin(out, MessageType::Error, request_id);
    out.extend_from_slice(bytemuck::bytes_of(&ErrorWire {
        code: U16Le::new(code.code()),
        // At most ERROR_MESSAGE_BYTES_MAX (1024).
        message_len: U16Le::new(message.len() as u16),
    }));
    out.extend_from_slice(message.as_bytes());
    frame
        .end(out)
        .expect("an error frame (message cut to 1 KiB) is far under the payload limit");
}

/// Decodes an `error` payload: a known code, a message length within
/// [`ERROR_MESSAGE_BYTES_MAX`] that matches the payload exactly, and a
/// UTF-8 message. Borrows the message; allocates nothing.
pub fn decode_error(payload: &[u8]) -> Result<ErrorMessage<'_>, ProtocolError> {
    let mut r = Reader::new(payload);
    let wire: &ErrorWire = r.pod("error")?;
    let code = ErrorCode::from_code(wire.code.get()).ok_or(ProtocolError::InvalidValue {
        field: "code",
        offset: 0,
        value: u64::from(wire.code.get()),
        rule: "not a known error code",
    })?;
    let len = usize::from(wire.message_len.get());
    if len > ERROR_MESSAGE_BYTES_MAX {
        return Err(ProtocolError::TooLong {
            field: "message",
            offset: 2,
            len,
            limit: ERROR_MESSAGE_BYTES_MAX,
        });
    }
    let bytes = r.take(len, "message")?;
    r.finish()?;
    let message = std::str::from_utf8(bytes).map_err(|e| ProtocolError::InvalidUtf8 {
        field: "message",
        offset: 4 + e.valid_up_to(),
    })?;
    Ok(ErrorMessage { code, message })
}

/// The longest prefix of `s` of at most `max` bytes that ends on a
/// character boundary.
fn cut_at_char_boundary(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}

/// Checks that reserved bytes are 0.
pub(super) fn reserved_zero(
    bytes: &[u8],
    field: &'static str,
    offset: usize,
) -> Result<(), ProtocolError> {
    match bytes.iter().position(|&b| b != 0) {
        None => Ok(()),
        Some(i) => Err(ProtocolError::InvalidValue {
            field,
            offset: offset + i,
            value: u64::from(bytes[i]),
            rule: "reserved, must be 0",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_picks_the_newest_common_version() {
        assert_eq!(Hello::ours().negotiate(), Some(VERSION));
        let h = |min, max| Hello {
            min_version: min,
            max_version: max,
        };
        assert_eq!(h(1, 9).negotiate(), Some(VERSION));
        assert_eq!(h(VERSION + 1, VERSION + 3).negotiate(), None);
    }

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        let s = "é".repeat(ERROR_MESSAGE_BYTES_MAX); // 2 bytes each
        let cut = cut_at_char_boundary(&s, 5);
        assert_eq!(cut, "éé");
        assert_eq!(cut_at_char_boundary("abc", 10), "abc");
    }
}
