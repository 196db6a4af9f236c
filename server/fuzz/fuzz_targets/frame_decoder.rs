//! Fuzz target: the streaming frame decoder and the message decoders.
//!
//! Treats the input as the bytes a connection received and consumes them as
//! `cx_server::conn::Connection` does: `decode_frame` at the front, then on
//! a whole frame `decode_message` on its payload, on `Invalid` skip
//! `consumed.max(1)` bytes, and stop on `NeedMore`. Besides "never panics",
//! it checks the contract `Decoded` documents (consumed in range, NeedMore
//! asks for more than is there, fatal errors take the whole buffer,
//! recoverable ones exactly one frame and carry its request id).
//!
//! Seeds: `components/wire/tests/fixtures/protocol_corpus/` (docs/PROTOCOL.md,
//! "Fuzzing").
#![no_main]

use cx_wire::protocol::limits::{FRAME_BYTES_MAX, HEADER_BYTES, PAYLOAD_BYTES_MAX};
use cx_wire::protocol::{decode_frame, decode_message, Decoded};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut pos = 0;
    while pos < data.len() {
        let rest = &data[pos..];
        match decode_frame(rest) {
            Decoded::Frame {
                header,
                payload,
                consumed,
            } => {
                assert_eq!(consumed, HEADER_BYTES + payload.len());
                assert_eq!(header.payload_len, payload.len());
                assert!(consumed <= rest.len());
                assert!(payload.len() <= PAYLOAD_BYTES_MAX);
                if let Err(error) = decode_message(header.message_type, payload) {
                    // A payload error is answered, never fatal; rendering it
                    // (the error frame's message) must not panic either.
                    assert!(!error.is_fatal(), "payload error {error} is fatal");
                    let _ = (error.code(), error.to_string());
                }
                pos += consumed;
            }
            Decoded::NeedMore { at_least } => {
                assert!(
                    at_least > rest.len(),
                    "NeedMore({at_least}) with {} buffered",
                    rest.len()
                );
                assert!(at_least <= FRAME_BYTES_MAX);
                break;
            }
            Decoded::Invalid {
                error,
                consumed,
                request_id,
            } => {
                assert!(
                    (1..=rest.len()).contains(&consumed),
                    "consumed {consumed} of {}",
                    rest.len()
                );
                if error.is_fatal() {
                    assert_eq!(consumed, rest.len(), "a fatal error takes the buffer");
                } else {
                    assert!(
                        request_id.is_some(),
                        "recoverable {error} without request id"
                    );
                    assert!(consumed >= HEADER_BYTES);
                }
                let _ = (error.code(), error.to_string());
                pos += consumed.max(1);
            }
        }
    }
});
