//! Framing: the header, the streaming [`decode_frame`], and the checked
//! payload reader and frame writer the message codecs share.

use super::codes::MessageType;
use super::error::ProtocolError;
use super::limits::{HEADER_BYTES, PAYLOAD_BYTES_MAX};
use super::wire::{FrameHeader, U16Le, U32Le, U64Le};
use super::{HELLO_VERSION, MAGIC, VERSION, VERSION_MIN};
use bytemuck::Pod;

/// A frame header that passed every check of [`decode_frame`], in native
/// form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The protocol version the payload is written in (a supported one).
    pub version: u8,
    /// What the payload is.
    pub message_type: MessageType,
    /// The request id: the client's for a request, echoed by its response.
    pub request_id: u64,
    /// Payload bytes after the header.
    pub payload_len: usize,
}

/// What [`decode_frame`] found at the start of a receive buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A whole frame with a valid header. The payload is borrowed from the
    /// buffer; decode it with the decoder for `header.message_type`.
    Frame {
        /// The checked header.
        header: Header,
        /// The payload (`header.payload_len` bytes).
        payload: &'a [u8],
        /// Bytes to drop from the front of the buffer:
        /// [`HEADER_BYTES`] + the payload length.
        consumed: usize,
    },
    /// Not enough bytes yet: call again once the buffer holds at least
    /// `at_least` bytes in total (always more than it holds now, and at
    /// most [`super::limits::FRAME_BYTES_MAX`]).
    NeedMore {
        /// Total buffered bytes needed before the next call can progress.
        at_least: usize,
    },
    /// The frame is refused. If `error.is_fatal()`, framing is lost: send an
    /// error frame and close the connection (`consumed` is the whole
    /// buffer). Otherwise the frame was buffered whole and its length is
    /// trusted: drop `consumed` bytes (exactly this frame), answer
    /// `request_id` with an error frame of `error.code()`, and go on.
    Invalid {
        /// What is wrong.
        error: ProtocolError,
        /// Bytes to drop from the front of the buffer (at least 1, at most
        /// the buffer's length).
        consumed: usize,
        /// The frame's request id, when the header got far enough to be
        /// trusted with it (every recoverable error, and a too-large frame
        /// with good magic).
        request_id: Option<u64>,
    },
}

/// Decodes the frame at the start of `buf`, the bytes received so far on a
/// connection (possibly several pipelined frames, possibly a partial one).
/// Never panics, never reads past `buf`, and never allocates; the header is
/// viewed in place (`bytemuck::try_from_bytes`), not copied out.
///
/// Checks, in order: the magic (fatal, as soon as a wrong byte arrives),
/// the payload length against [`PAYLOAD_BYTES_MAX`] (fatal), then, once
/// the whole frame is buffered, the version (one spoken here, or 1 for
/// `hello` and `hello_ack`), the message type, and that
/// `flags` and `reserved` are 0 (recoverable). Payloads are checked by the
/// message decoders, not here: a payload error is recoverable too. Whether
/// the type is one this side accepts ([`MessageType::is_from_client`]) is
/// the receiver's check: a server answers a server-only type with
/// `unknown_message_type`.
pub fn decode_frame(buf: &[u8]) -> Decoded<'_> {
    // The magic first, even on a partial header, so that a peer speaking
    // another protocol is refused at once instead of waited for.
    for (offset, (&found, &expected)) in buf.iter().zip(MAGIC.iter()).enumerate() {
        if found != expected {
            return Decoded::Invalid {
                error: ProtocolError::BadMagic {
                    offset,
                    found,
                    expected,
                },
                consumed: buf.len(),
                request_id: None,
            };
        }
    }
    let Some(head) = buf.get(..HEADER_BYTES) else {
        return Decoded::NeedMore {
            at_least: HEADER_BYTES,
        };
    };
    // Alignment 1 and the exact size: this cannot fail, but a failure would
    // be answered, not unwrapped.
    let Ok(wire) = bytemuck::try_from_bytes::<FrameHeader>(head) else {
        return Decoded::NeedMore {
            at_least: HEADER_BYTES,
        };
    };
    let request_id = wire.request_id.get();
    let payload_len = wire.payload_len.get() as usize;
    if payload_len > PAYLOAD_BYTES_MAX {
        return Decoded::Invalid {
            error: ProtocolError::FrameTooLarge {
                bytes: payload_len,
                limit: PAYLOAD_BYTES_MAX,
            },
            consumed: buf.len(),
            request_id: Some(request_id),
        };
    }
    let frame_len = HEADER_BYTES + payload_len;
    let Some(payload) = buf.get(HEADER_BYTES..frame_len) else {
        return Decoded::NeedMore {
            at_least: frame_len,
        };
    };
    let invalid = |error| Decoded::Invalid {
        error,
        consumed: frame_len,
        request_id: Some(request_id),
    };
    // `hello` and `hello_ack` are always written in version 1, whatever
    // the versions spoken, so that any two sides can negotiate.
    let is_handshake = wire.message_type == MessageType::Hello.code()
        || wire.message_type == MessageType::HelloAck.code();
    let spoken = (VERSION_MIN..=VERSION).contains(&wire.version)
        || (is_handshake && wire.version == HELLO_VERSION);
    if !spoken {
        return invalid(ProtocolError::UnsupportedVersion {
            version: wire.version,
            min: VERSION_MIN,
            max: VERSION,
        });
    }
    let Some(message_type) = MessageType::from_code(wire.message_type) else {
        return invalid(ProtocolError::UnknownMessageType {
            code: wire.message_type,
        });
    };
    if wire.flags.get() != 0 {
        return invalid(ProtocolError::BadHeaderField {
            field: "flags",
            offset: 6,
            value: u64::from(wire.flags.get()),
        });
    }
    if wire.reserved.get() != 0 {
        return invalid(ProtocolError::BadHeaderField {
            field: "reserved",
            offset: 12,
            value: u64::from(wire.reserved.get()),
        });
    }
    Decoded::Frame {
        header: Header {
            version: wire.version,
            message_type,
            request_id,
            payload_len,
        },
        payload,
        consumed: frame_len,
    }
}

/// A checked cursor over one payload: every read checks its length first
/// and names the field in its error.
pub(super) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Offset of the next byte to read.
    pub(super) fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes not read yet.
    pub(super) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next `n` bytes.
    pub(super) fn take(
        &mut self,
        n: usize,
        field: &'static str,
    ) -> Result<&'a [u8], ProtocolError> {
        let truncated = ProtocolError::Truncated {
            field,
            offset: self.pos,
            needed: n,
            available: self.remaining(),
        };
        let end = self.pos.checked_add(n).ok_or(truncated)?;
        let bytes = self.buf.get(self.pos..end).ok_or(truncated)?;
        self.pos = end;
        Ok(bytes)
    }

    /// A fixed-layout struct, viewed in place.
    pub(super) fn pod<T: Pod>(&mut self, field: &'static str) -> Result<&'a T, ProtocolError> {
        let offset = self.pos;
        let bytes = self.take(std::mem::size_of::<T>(), field)?;
        // Every wire struct has alignment 1 and `bytes` has its exact size.
        bytemuck::try_from_bytes(bytes).map_err(|_| ProtocolError::Truncated {
            field,
            offset,
            needed: std::mem::size_of::<T>(),
            available: bytes.len(),
        })
    }

    /// A little-endian `u16`.
    pub(super) fn u16(&mut self, field: &'static str) -> Result<u16, ProtocolError> {
        self.pod::<U16Le>(field).map(|v| v.get())
    }

    /// A string: `u16` byte length (at most `limit`), then that many bytes
    /// of UTF-8.
    pub(super) fn str(
        &mut self,
        field: &'static str,
        limit: usize,
    ) -> Result<&'a str, ProtocolError> {
        let offset = self.pos;
        let len = usize::from(self.u16(field)?);
        if len > limit {
            return Err(ProtocolError::TooLong {
                field,
                offset,
                len,
                limit,
            });
        }
        let bytes = self.take(len, field)?;
        std::str::from_utf8(bytes).map_err(|e| ProtocolError::InvalidUtf8 {
            field,
            offset: offset + 2 + e.valid_up_to(),
        })
    }

    /// Succeeds only if the whole payload was read.
    pub(super) fn finish(self) -> Result<(), ProtocolError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(ProtocolError::TrailingBytes {
                offset: self.pos,
                count,
            }),
        }
    }
}

/// Requires a fixed-size payload of exactly `T`'s size and views it.
pub(super) fn exact<T: Pod>(payload: &[u8], message: MessageType) -> Result<&T, ProtocolError> {
    let expected = std::mem::size_of::<T>();
    if payload.len() != expected {
        return Err(ProtocolError::WrongPayloadLength {
            message: message.label(),
            expected,
            found: payload.len(),
        });
    }
    Reader::new(payload).pod(message.label())
}

/// Checks a float is finite.
pub(super) fn finite(value: f64, field: &'static str, offset: usize) -> Result<(), ProtocolError> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(ProtocolError::NonFinite { field, offset })
    }
}

/// A frame being appended to a caller's buffer: [`Self::begin`] writes the
/// header with a zero length, the caller appends the payload, and
/// [`Self::end`] patches the length in (or rolls the frame back).
#[derive(Debug)]
pub(super) struct FrameStart {
    start: usize,
}

impl FrameStart {
    pub(super) fn begin(out: &mut Vec<u8>, message: MessageType, request_id: u64) -> Self {
        let version = match message {
            MessageType::Hello | MessageType::HelloAck => HELLO_VERSION,
            _ => VERSION,
        };
        let start = out.len();
        let header = FrameHeader {
            magic: MAGIC,
            version,
            message_type: message.code(),
            flags: U16Le::new(0),
            payload_len: U32Le::new(0),
            reserved: U32Le::new(0),
            request_id: U64Le::new(request_id),
        };
        out.extend_from_slice(bytemuck::bytes_of(&header));
        Self { start }
    }

    /// Offset, within the payload, of the next byte appended to `out`.
    pub(super) fn payload_pos(&self, out: &[u8]) -> usize {
        out.len().saturating_sub(self.start + HEADER_BYTES)
    }

    /// Removes the frame from `out`, leaving it as before [`Self::begin`].
    pub(super) fn rollback(self, out: &mut Vec<u8>) {
        out.truncate(self.start);
    }

    /// Patches the payload length into the header; returns the frame's
    /// length. A payload over [`PAYLOAD_BYTES_MAX`] is rolled back.
    pub(super) fn end(self, out: &mut Vec<u8>) -> Result<usize, ProtocolError> {
        let payload_len = self.payload_pos(out);
        if payload_len > PAYLOAD_BYTES_MAX {
            self.rollback(out);
            return Err(ProtocolError::FrameTooLarge {
                bytes: payload_len,
                limit: PAYLOAD_BYTES_MAX,
            });
        }
        let len_at = self.start + 8;
        let len_bytes = (payload_len as u32).to_le_bytes();
        if let Some(slot) = out.get_mut(len_at..len_at + 4) {
            slot.copy_from_slice(&len_bytes);
        }
        Ok(HEADER_BYTES + payload_len)
    }
}
