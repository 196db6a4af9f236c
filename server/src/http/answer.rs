//! Writing HTTP/1.1 answers: a status line, the few headers the bidder
//! sends, and the body, appended to a connection's write buffer (or to the
//! buffer an answer waits in until those before it are written).
//!
//! Every answer carries `Content-Length` (0 for none) so the stream stays
//! framed for keep-alive and pipelining; `204` carries none (RFC 9110
//! §15.3.5 forbids a body, and a length with it).

use std::io::Write;

/// The OpenRTB version this bidder answers in, sent as `x-openrtb-version`.
pub const OPENRTB_VERSION: &str = "2.6";

/// The reason phrase of a status the bidder sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Internal Server Error",
    }
}

/// What goes around a body.
#[derive(Clone, Copy, Debug, Default)]
pub struct Framing<'a> {
    /// `Connection: close`: the connection closes after this answer.
    pub close: bool,
    /// `Allow`, for a 405.
    pub allow: Option<&'a str>,
    /// The OpenRTB no-bid reason, as `x-cx-nbr`, on a 204.
    pub nbr: Option<u32>,
    /// `Retry-After` seconds, on a 503.
    pub retry_after_s: Option<u32>,
}

/// Appends a whole answer: `status`, JSON `body` (may be empty).
pub fn write(out: &mut Vec<u8>, status: u16, body: &[u8], framing: Framing<'_>) {
    write_fields(out, status, !body.is_empty(), framing);
    if status != 204 {
        out.extend_from_slice(b"Content-Length: ");
        out.extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(body);
    } else {
        out.extend_from_slice(b"\r\n");
    }
}

/// The status line and every header field but `Content-Length`.
fn write_fields(out: &mut Vec<u8>, status: u16, json: bool, framing: Framing<'_>) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(itoa::Buffer::new().format(status).as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason(status).as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(b"x-openrtb-version: ");
    out.extend_from_slice(OPENRTB_VERSION.as_bytes());
    out.extend_from_slice(b"\r\n");
    if framing.close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    // Writing into a Vec cannot fail.
    if let Some(allow) = framing.allow {
        let _ = write!(out, "Allow: {allow}\r\n");
    }
    if let Some(nbr) = framing.nbr {
        let _ = write!(out, "x-cx-nbr: {nbr}\r\n");
    }
    if let Some(s) = framing.retry_after_s {
        let _ = write!(out, "Retry-After: {s}\r\n");
    }
    if json && status != 204 {
        out.extend_from_slice(b"Content-Type: application/json\r\n");
    }
}

/// Digits the head of an answer written in place ([`InPlace`]) leaves for
/// its `Content-Length`: a BidResponse is most often 1,000 to 9,999
/// bytes, and any other length moves the body once.
const LENGTH_DIGITS_RESERVED: usize = 4;

/// A `200` answer with a JSON body written straight into the buffer
/// after its head, instead of into a buffer of its own and then copied:
/// [`InPlace::begin`] writes the head with room for the length, the
/// caller appends the body, and [`InPlace::finish`] writes the length in
/// (or [`InPlace::abandon`] removes the answer).
#[derive(Debug)]
pub struct InPlace {
    /// Where the answer starts in the buffer.
    start: usize,
    /// Where the reserved `Content-Length` digits are.
    length_at: usize,
    /// Where the body starts.
    body_at: usize,
}

impl InPlace {
    /// Appends the head of a `200` answer with a JSON body.
    pub fn begin(out: &mut Vec<u8>, framing: Framing<'_>) -> Self {
        let start = out.len();
        write_fields(out, 200, true, framing);
        out.extend_from_slice(b"Content-Length: ");
        let length_at = out.len();
        out.extend_from_slice(&[b'0'; LENGTH_DIGITS_RESERVED]);
        out.extend_from_slice(b"\r\n\r\n");
        let body_at = out.len();
        Self {
            start,
            length_at,
            body_at,
        }
    }

    /// The body appended so far.
    pub fn body<'o>(&self, out: &'o [u8]) -> &'o [u8] {
        &out[self.body_at..]
    }

    /// Writes the body's length into the head: in the reserved digits,
    /// or, for a length with more or fewer digits, in their place, the
    /// body moved to follow.
    pub fn finish(self, out: &mut Vec<u8>) {
        assert!(out.len() >= self.body_at, "the answer's head is intact");
        let mut digits = itoa::Buffer::new();
        let length = digits.format(out.len() - self.body_at).as_bytes();
        let reserved = self.length_at..self.length_at + LENGTH_DIGITS_RESERVED;
        if length.len() == LENGTH_DIGITS_RESERVED {
            out[reserved].copy_from_slice(length);
        } else {
            out.splice(reserved, length.iter().copied());
        }
    }

    /// Removes the answer: the buffer is as it was before [`Self::begin`].
    pub fn abandon(self, out: &mut Vec<u8>) {
        out.truncate(self.start);
    }
}

/// Appends an error answer with the JSON body
/// `{"error": {"status": 400, "path": "imp[0].banner", "message": "..."}}`
/// (`path` only when the error names a field of the request).
pub fn write_error(
    out: &mut Vec<u8>,
    status: u16,
    path: Option<&str>,
    message: &str,
    framing: Framing<'_>,
) {
    let error = match path {
        Some(path) => serde_json::json!({"status": status, "path": path, "message": message}),
        None => serde_json::json!({"status": status, "message": message}),
    };
    let body = serde_json::json!({ "error": error }).to_string();
    write(out, status, body.as_bytes(), framing);
}

/// The interim `100 Continue` for a client that waits for it before
/// sending its body.
pub fn write_continue(out: &mut Vec<u8>) {
    out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_framed() {
        let mut out = Vec::new();
        write(&mut out, 200, b"{}", Framing::default());
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("Content-Length: 2\r\n"));
        assert!(text.ends_with("\r\n\r\n{}"));

        let mut out = Vec::new();
        let framing = Framing {
            nbr: Some(6),
            close: true,
            ..Framing::default()
        };
        write(&mut out, 204, b"ignored", framing);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("x-cx-nbr: 6\r\n") && text.contains("Connection: close\r\n"));
        assert!(
            !text.contains("Content-Length") && text.ends_with("\r\n\r\n"),
            "{text}"
        );
    }

    #[test]
    fn an_answer_written_in_place_equals_one_written_whole() {
        // A body written in place is JSON, never empty.
        for len in [1, 9, 10, 999, 1_000, 1_232, 9_999, 10_000, 123_456] {
            let body: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            for close in [false, true] {
                let framing = Framing {
                    close,
                    ..Framing::default()
                };
                let mut whole = b"before".to_vec();
                write(&mut whole, 200, &body, framing);
                let mut in_place = b"before".to_vec();
                let answer = InPlace::begin(&mut in_place, framing);
                in_place.extend_from_slice(&body);
                assert_eq!(answer.body(&in_place), body.as_slice());
                answer.finish(&mut in_place);
                assert_eq!(
                    String::from_utf8_lossy(&in_place),
                    String::from_utf8_lossy(&whole),
                    "{len} bytes"
                );
                let answer = InPlace::begin(&mut in_place, framing);
                in_place.extend_from_slice(&body);
                answer.abandon(&mut in_place);
                assert_eq!(in_place, whole, "abandoned, {len} bytes");
            }
        }
    }

    #[test]
    fn errors_are_json_naming_the_field() {
        let mut out = Vec::new();
        write_error(
            &mut out,
            400,
            Some("imp[0].id"),
            "duplicate",
            Framing::default(),
        );
        let text = String::from_utf8(out).unwrap();
        let body = text.split("\r\n\r\n").nth(1).unwrap();
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"]["path"], "imp[0].id");
        assert_eq!(v["error"]["status"], 400);
    }
}
