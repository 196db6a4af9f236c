//! One HTTP/1.x request head, read with `httparse` and checked against the
//! bidder's limits: what the connection needs to know of it ([`Head`]), or
//! the status that refuses it ([`Refusal`]).
//!
//! Only what the bidder acts on is kept: method, route, body length and
//! encoding, keep-alive, `Expect: 100-continue` and `x-openrtb-version`.
//! The header names and values stay in the read buffer; nothing here
//! allocates except the message of a refusal.

use super::limits::{BODY_BYTES_MAX, HEADERS_MAX, HEAD_BYTES_MAX};
use cx_domain::notice::NoticeKind;
use std::mem::MaybeUninit;

/// What a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `POST` on the bid path: a bid request.
    Bid,
    /// `GET /notice/{win,bill,loss}`: an exchange's notice.
    Notice(NoticeKind),
}

/// The request head's meaning, once it passed every check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// Bytes of the head, up to and including the blank line.
    pub head_bytes: usize,
    /// `Content-Length` (0 when absent).
    pub body_bytes: usize,
    /// `Content-Encoding: gzip`.
    pub gzip: bool,
    /// Whether the connection stays open after the answer (HTTP/1.1
    /// unless `Connection: close`; HTTP/1.0 only with `keep-alive`).
    pub keep_alive: bool,
    /// `Expect: 100-continue`.
    pub expects_continue: bool,
    /// What is asked.
    pub route: Route,
    /// Where the target's query (after `?`) lies in the buffer read:
    /// `start..end` (empty when there is none).
    pub query_span: (usize, usize),
}

/// Why a head is refused: the status, a message naming what was wrong, and
/// whether the connection must close (the stream can no longer be framed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// HTTP status code.
    pub status: u16,
    /// What was wrong, for the JSON error body.
    pub message: String,
    /// Close after answering.
    pub close: bool,
    /// For a 405: the method the path allows.
    pub allow: Option<&'static str>,
}

impl Refusal {
    fn closing(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            close: true,
            allow: None,
        }
    }

    fn keeping(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            close: false,
            allow: None,
        }
    }
}

/// The outcome of reading a head from the front of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// The head is not complete yet (and is under [`HEAD_BYTES_MAX`]).
    Partial,
    /// A head that passed every check; its body may still be arriving.
    Head(Head),
    /// A head refused. When `close` is false, `skip` bytes (head and
    /// body) can be dropped and the connection goes on.
    Refused {
        /// What to answer.
        refusal: Refusal,
        /// Bytes of this request (head plus announced body), when known.
        skip: usize,
    },
}

/// Reads one request head from the front of `buf`; `bid_path` is the path
/// bid requests are posted to.
pub fn parse(buf: &[u8], bid_path: &str) -> Parsed {
    // Left uninitialised: httparse writes the fields it finds, and
    // `request.headers` is those (64 empty fields cost a 2 KiB fill per
    // request).
    let mut headers = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; HEADERS_MAX];
    let mut request = httparse::Request::new(&mut []);
    let head_bytes = match request.parse_with_uninit_headers(buf, &mut headers) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > HEAD_BYTES_MAX => {
            let msg = format!("request head: over {HEAD_BYTES_MAX} bytes");
            return refused(Refusal::closing(431, msg), 0);
        }
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(httparse::Error::TooManyHeaders) => {
            let msg = format!("request head: over {HEADERS_MAX} header fields");
            return refused(Refusal::closing(431, msg), 0);
        }
        Err(httparse::Error::Version) => {
            let msg = "request line: only HTTP/1.0 and HTTP/1.1 are served";
            return refused(Refusal::closing(505, msg), 0);
        }
        Err(e) => return refused(Refusal::closing(400, format!("request head: {e}")), 0),
    };
    if head_bytes > HEAD_BYTES_MAX {
        let msg = format!("request head: {head_bytes} bytes, the limit is {HEAD_BYTES_MAX}");
        return refused(Refusal::closing(431, msg), 0);
    }
    let mut fields = match Fields::read(request.headers, request.version == Some(1)) {
        Ok(f) => f,
        Err(refusal) => return refused(refusal, 0),
    };
    let skip = head_bytes + fields.body_bytes;
    let method = request.method.unwrap_or("");
    let target = request.path.unwrap_or("");
    let (route, query_at) = match route(method, target, bid_path) {
        Ok(routed) => routed,
        Err(refusal) => return refused(refusal, skip),
    };
    // The target is a slice of `buf`: where its query starts there.
    let target_at = (target.as_ptr() as usize).saturating_sub(buf.as_ptr() as usize);
    let query_span = (target_at + query_at, target_at + target.len());
    if route == Route::Bid {
        if let Err(refusal) = fields.check_bid() {
            return refused(refusal, skip);
        }
    }
    Parsed::Head(Head {
        head_bytes,
        body_bytes: fields.body_bytes,
        gzip: fields.gzip,
        keep_alive: fields.keep_alive,
        expects_continue: fields.expects_continue,
        route,
        query_span,
    })
}

fn refused(refusal: Refusal, skip: usize) -> Parsed {
    Parsed::Refused { refusal, skip }
}

/// Which route `method` and `target` name, and where in the target its
/// query starts (its length when it has none).
fn route(method: &str, target: &str, bid_path: &str) -> Result<(Route, usize), Refusal> {
    let (path, query_at) = match target.find('?') {
        Some(q) => (target.get(..q).unwrap_or(""), q + 1),
        None => (target, target.len()),
    };
    if path == bid_path {
        return match method {
            "POST" => Ok((Route::Bid, query_at)),
            _ => Err(Refusal {
                allow: Some("POST"),
                ..Refusal::keeping(405, format!("{method} {path}: bid requests are POSTed"))
            }),
        };
    }
    let notice = NoticeKind::ALL
        .into_iter()
        .find(|k| path.strip_prefix("/notice/") == Some(k.label()));
    match (notice, method) {
        (Some(kind), "GET") => Ok((Route::Notice(kind), query_at)),
        (Some(_), _) => Err(Refusal {
            allow: Some("GET"),
            ..Refusal::keeping(405, format!("{method} {path}: notices are GET requests"))
        }),
        (None, _) => Err(Refusal::keeping(
            404,
            format!("{path}: no such path (bids go to {bid_path})"),
        )),
    }
}

/// The header fields the bidder reads.
struct Fields<'a> {
    body_bytes: usize,
    gzip: bool,
    keep_alive: bool,
    expects_continue: bool,
    openrtb_version: Option<&'a [u8]>,
    content_encoding: Option<&'a [u8]>,
}

impl<'a> Fields<'a> {
    fn read(headers: &[httparse::Header<'a>], http11: bool) -> Result<Self, Refusal> {
        let mut fields = Fields {
            body_bytes: 0,
            gzip: false,
            keep_alive: http11,
            expects_continue: false,
            openrtb_version: None,
            content_encoding: None,
        };
        let mut length: Option<usize> = None;
        for header in headers {
            let name = header.name;
            let value = trim(header.value);
            if name.eq_ignore_ascii_case("content-length") {
                let n = content_length(value)?;
                if length.is_some_and(|l| l != n) {
                    let msg = "Content-Length: given twice with different values";
                    return Err(Refusal::closing(400, msg));
                }
                length = Some(n);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                let msg = "Transfer-Encoding: not accepted; send the body with a Content-Length";
                return Err(Refusal::closing(411, msg));
            } else if name.eq_ignore_ascii_case("connection") {
                fields.keep_alive = keep_alive(value, fields.keep_alive);
            } else if name.eq_ignore_ascii_case("expect") {
                if !value.eq_ignore_ascii_case(b"100-continue") {
                    return Err(Refusal::closing(417, "Expect: only 100-continue is met"));
                }
                fields.expects_continue = true;
            } else if name.eq_ignore_ascii_case("content-encoding") {
                fields.content_encoding = Some(value);
            } else if name.eq_ignore_ascii_case("x-openrtb-version") {
                fields.openrtb_version = Some(value);
            }
        }
        fields.body_bytes = length.unwrap_or(0);
        if fields.body_bytes > BODY_BYTES_MAX {
            let msg = format!(
                "Content-Length: {} bytes, the limit is {BODY_BYTES_MAX}",
                fields.body_bytes
            );
            return Err(Refusal::closing(413, msg));
        }
        Ok(fields)
    }

    /// The checks of a bid request's head: its encoding and version.
    fn check_bid(&mut self) -> Result<(), Refusal> {
        match self.content_encoding {
            None => {}
            Some(v) if v.eq_ignore_ascii_case(b"identity") => {}
            Some(v) if v.eq_ignore_ascii_case(b"gzip") => self.gzip = true,
            Some(v) => {
                let msg = format!(
                    "Content-Encoding: `{}` is not accepted (gzip or identity)",
                    String::from_utf8_lossy(v)
                );
                return Err(Refusal::keeping(415, msg));
            }
        }
        if let Some(v) = self.openrtb_version {
            if !openrtb_version_ok(v) {
                let msg = format!(
                    "x-openrtb-version: `{}` is not served (2.5 and 2.6 are)",
                    String::from_utf8_lossy(v)
                );
                return Err(Refusal::keeping(400, msg));
            }
        }
        Ok(())
    }
}

/// Whether an `x-openrtb-version` value names a version this bidder reads:
/// 2.5 or 2.6, with or without a patch number (`2.6`, `2.5.1`).
fn openrtb_version_ok(value: &[u8]) -> bool {
    let minor = value.strip_prefix(b"2.").and_then(|rest| {
        let end = rest.iter().position(|&b| b == b'.').unwrap_or(rest.len());
        let (minor, patch) = rest.split_at(end);
        let patch_ok =
            patch.is_empty() || (patch.len() > 1 && patch.iter().skip(1).all(u8::is_ascii_digit));
        patch_ok.then_some(minor)
    });
    matches!(minor, Some(b"5" | b"6"))
}

fn content_length(value: &[u8]) -> Result<usize, Refusal> {
    let digits_only =
        !value.is_empty() && value.len() <= 19 && value.iter().all(u8::is_ascii_digit);
    let parsed = digits_only
        .then(|| std::str::from_utf8(value).ok()?.parse::<usize>().ok())
        .flatten();
    parsed.ok_or_else(|| {
        let msg = format!(
            "Content-Length: `{}` is not a byte count",
            String::from_utf8_lossy(value)
        );
        Refusal::closing(400, msg)
    })
}

/// The `Connection` header's effect: `close` wins, `keep-alive` keeps.
fn keep_alive(value: &[u8], default: bool) -> bool {
    let mut keep = default;
    for token in value.split(|&b| b == b',').map(trim) {
        if token.eq_ignore_ascii_case(b"close") {
            return false;
        }
        if token.eq_ignore_ascii_case(b"keep-alive") {
            keep = true;
        }
    }
    keep
}

fn trim(value: &[u8]) -> &[u8] {
    let start = value
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    value.get(start..end).unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    const BID: &str = "/openrtb2/bid";

    fn head(text: &str) -> Parsed {
        parse(text.as_bytes(), BID)
    }

    fn status(p: &Parsed) -> u16 {
        match p {
            Parsed::Refused { refusal, .. } => refusal.status,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_bid_post_is_read() {
        let p = head("POST /openrtb2/bid HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\nContent-Encoding: gzip\r\nx-openrtb-version: 2.6\r\n\r\n");
        let Parsed::Head(h) = p else { panic!("{p:?}") };
        assert_eq!(h.body_bytes, 12);
        assert!(h.gzip && h.keep_alive && !h.expects_continue);
        assert_eq!(h.route, Route::Bid);
        // The most header fields a head may have, the one read last.
        let filler: String = (1..HEADERS_MAX).map(|i| format!("X-{i}: 1\r\n")).collect();
        let full = format!("POST /openrtb2/bid HTTP/1.1\r\n{filler}Content-Length: 7\r\n\r\n");
        let p = head(&full);
        let Parsed::Head(h) = p else { panic!("{p:?}") };
        assert_eq!((h.body_bytes, h.head_bytes), (7, full.len()));
    }

    #[test]
    fn partial_heads_wait_until_the_limit() {
        assert_eq!(head("POST /openrtb2/bid HTTP/1.1\r\nHost"), Parsed::Partial);
        let long = format!(
            "POST /openrtb2/bid HTTP/1.1\r\nX: {}",
            "a".repeat(HEAD_BYTES_MAX)
        );
        assert_eq!(status(&head(&long)), 431);
    }

    #[test]
    fn keep_alive_follows_version_and_connection() {
        let h10 = head("POST /openrtb2/bid HTTP/1.0\r\n\r\n");
        assert!(matches!(
            h10,
            Parsed::Head(Head {
                keep_alive: false,
                ..
            })
        ));
        let h10k = head("POST /openrtb2/bid HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
        assert!(matches!(
            h10k,
            Parsed::Head(Head {
                keep_alive: true,
                ..
            })
        ));
        let h11c = head("POST /openrtb2/bid HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\n");
        assert!(matches!(
            h11c,
            Parsed::Head(Head {
                keep_alive: false,
                ..
            })
        ));
    }

    #[test]
    fn bad_heads_get_their_status() {
        assert_eq!(status(&head("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")), 505);
        assert_eq!(status(&head("GET /openrtb2/bid HTTP/1.1\r\n\r\n")), 405);
        assert_eq!(status(&head("POST /notice/win HTTP/1.1\r\n\r\n")), 405);
        assert_eq!(status(&head("GET /nope HTTP/1.1\r\n\r\n")), 404);
        let chunked = "POST /openrtb2/bid HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(status(&head(chunked)), 411);
        let lying = "POST /openrtb2/bid HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n";
        assert_eq!(status(&head(lying)), 400);
        let negative = "POST /openrtb2/bid HTTP/1.1\r\nContent-Length: -1\r\n\r\n";
        assert_eq!(status(&head(negative)), 400);
        let huge = format!(
            "POST /openrtb2/bid HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            BODY_BYTES_MAX + 1
        );
        assert_eq!(status(&head(&huge)), 413);
        let br = "POST /openrtb2/bid HTTP/1.1\r\nContent-Encoding: br\r\n\r\n";
        assert_eq!(status(&head(br)), 415);
        let v3 = "POST /openrtb2/bid HTTP/1.1\r\nx-openrtb-version: 3.0\r\n\r\n";
        assert_eq!(status(&head(v3)), 400);
        assert_eq!(status(&head("\x00\x01garbage\r\n\r\n")), 400);
        let many: String = (0..=HEADERS_MAX).map(|i| format!("X-{i}: 1\r\n")).collect();
        assert_eq!(
            status(&head(&format!("POST /openrtb2/bid HTTP/1.1\r\n{many}\r\n"))),
            431
        );
    }

    #[test]
    fn refusals_of_a_framed_request_keep_the_connection() {
        let p = head("GET /nope HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
        let Parsed::Refused { refusal, skip } = p else {
            panic!("{p:?}")
        };
        assert!(!refusal.close);
        assert_eq!(
            skip,
            "GET /nope HTTP/1.1\r\nContent-Length: 3\r\n\r\n".len() + 3
        );
    }

    #[test]
    fn notices_keep_their_query() {
        let text = "GET /notice/loss?bid=b1&loss=102 HTTP/1.1\r\n\r\n";
        let Parsed::Head(h) = head(text) else {
            panic!()
        };
        assert_eq!(h.route, Route::Notice(NoticeKind::Loss));
        assert_eq!(&text[h.query_span.0..h.query_span.1], "bid=b1&loss=102");
        let Parsed::Head(h) = head("GET /notice/win HTTP/1.1\r\n\r\n") else {
            panic!()
        };
        assert_eq!(h.query_span.0, h.query_span.1);
    }

    #[test]
    fn openrtb_versions() {
        for ok in ["2.5", "2.6", "2.6.1", "2.5.0"] {
            assert!(openrtb_version_ok(ok.as_bytes()), "{ok}");
        }
        for bad in ["", "2", "2.", "3.0", "2.4", "2.6.", "2.6.x", "2.66"] {
            assert!(!openrtb_version_ok(bad.as_bytes()), "{bad}");
        }
    }
}
