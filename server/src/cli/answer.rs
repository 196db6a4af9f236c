//! The output shape `cx score` and `cx client` share for a request that
//! gets no answer: `{"line": N, "error": {"code": "invalid_payload",
//! "code_num": 5, "message": "..."}}`, the code being the wire protocol's
//! (`docs/PROTOCOL.md`, "Error codes"), whichever command refused it.

use cx_wire::protocol::ErrorCode;
use serde::Serialize;

/// The output object of a request that could not be answered.
#[derive(Serialize)]
pub(super) struct Failed<'a> {
    pub(super) line: usize,
    pub(super) error: ErrorOut<'a>,
}

/// Why: the protocol's error code, its number, and a message naming what
/// was wrong.
#[derive(Serialize)]
pub(super) struct ErrorOut<'a> {
    pub(super) code: &'static str,
    pub(super) code_num: u16,
    pub(super) message: &'a str,
}

impl<'a> Failed<'a> {
    /// Request `line` failed with `code`, for the reason `message`.
    pub(super) fn new(line: usize, code: ErrorCode, message: &'a str) -> Self {
        Self {
            line,
            error: ErrorOut {
                code: code.label(),
                code_num: code.code(),
                message,
            },
        }
    }
}
