//! Reading the HTTP bidder's answers off a byte stream, without sockets:
//! [`parse`] reads one answer at the front of a buffer, [`Inbox`] keeps
//! the bytes read from a connection and hands out the answers' statuses in
//! order.
//!
//! An answer is framed by its head (read with `httparse::Response`) and its
//! `Content-Length`; a `204`, a `304` and an interim `1xx` have no body,
//! whatever they announce (RFC 9110 §6.4.1). The body is skipped, not
//! read: the generator counts answers, it does not check bids. Whatever
//! cannot be framed that way (a broken head, a chunked or unframed body, a
//! length past the bounds) is [`Malformed`]: the stream can no longer be
//! split into answers, so the connection is over. Nothing here panics on
//! any input, and nothing allocates once the inbox is big enough for the
//! largest answer seen.

use std::fmt;

/// Most bytes of one answer's head; a longer one is [`Malformed`].
pub(crate) const HEAD_BYTES_MAX: usize = 64 * 1024;

/// Most body bytes one answer may announce; more is [`Malformed`].
pub(crate) const BODY_BYTES_MAX: usize = 16 << 20;

/// Most header fields of one answer head.
const HEADERS_MAX: usize = 32;

/// What the inbox starts with, and keeps: room for many answers.
pub(crate) const INBOX_BYTES: usize = 64 * 1024;

/// An answer that cannot be framed, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Malformed(pub String);

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed HTTP answer: {}", self.0)
    }
}

/// What the front of a buffer holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// Not a whole answer yet. `total`: the answer's whole length, once its
    /// head is complete (so that a buffer can make room for it).
    Partial {
        /// Head plus body, when the head is complete.
        total: Option<usize>,
    },
    /// A whole answer of `len` bytes (head and body) with this status; an
    /// interim `1xx` is one too (the caller skips it).
    Answer {
        /// The status code.
        status: u16,
        /// Bytes of the answer, head and body.
        len: usize,
    },
}

/// Reads one answer at the front of `buf`.
pub(crate) fn parse(buf: &[u8]) -> Result<Parsed, Malformed> {
    let mut headers = [httparse::EMPTY_HEADER; HEADERS_MAX];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > HEAD_BYTES_MAX => {
            return Err(Malformed(format!("a head over {HEAD_BYTES_MAX} bytes")));
        }
        Ok(httparse::Status::Partial) => return Ok(Parsed::Partial { total: None }),
        Err(e) => return Err(Malformed(format!("the head: {e}"))),
    };
    if head_len > HEAD_BYTES_MAX {
        return Err(Malformed(format!(
            "a head of {head_len} bytes, over {HEAD_BYTES_MAX}"
        )));
    }
    let status = response.code.unwrap_or(0);
    let body_len = if matches!(status, 100..=199 | 204 | 304) {
        0
    } else {
        body_length(response.headers, status)?
    };
    let len = head_len + body_len;
    if buf.len() < len {
        return Ok(Parsed::Partial { total: Some(len) });
    }
    Ok(Parsed::Answer { status, len })
}

/// The body length a head announces: its one `Content-Length`.
fn body_length(headers: &[httparse::Header<'_>], status: u16) -> Result<usize, Malformed> {
    let mut length = None;
    for header in headers {
        if header.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(Malformed(format!(
                "a {status} with Transfer-Encoding (only Content-Length framing is read)"
            )));
        }
        if !header.name.eq_ignore_ascii_case("content-length") {
            continue;
        }
        let value = header.value.trim_ascii();
        let n = std::str::from_utf8(value)
            .ok()
            .filter(|v| !v.is_empty() && v.len() <= 19 && v.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|v| v.parse::<usize>().ok())
            .ok_or_else(|| {
                Malformed(format!(
                    "Content-Length `{}` is not a byte count",
                    String::from_utf8_lossy(value)
                ))
            })?;
        if length.is_some_and(|l| l != n) {
            return Err(Malformed("two different Content-Lengths".into()));
        }
        length = Some(n);
    }
    match length {
        Some(n) if n > BODY_BYTES_MAX => Err(Malformed(format!(
            "a body of {n} bytes, over {BODY_BYTES_MAX}"
        ))),
        Some(n) => Ok(n),
        None => Err(Malformed(format!(
            "a {status} without Content-Length (its end could not be told)"
        ))),
    }
}

/// The bytes read from one connection and not yet handed out as answers:
/// `buf[start..end]`. Reads go into [`Self::spare`], then
/// [`Self::filled`]; [`Self::next_status`] hands out each whole answer's status.
#[derive(Debug)]
pub(crate) struct Inbox {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The length of the answer at the front, once its head was read.
    want: Option<usize>,
}

impl Default for Inbox {
    fn default() -> Self {
        Self::with_capacity(INBOX_BYTES)
    }
}

impl Inbox {
    /// An empty inbox of `capacity` bytes (at least 1); it grows only for
    /// an answer longer than that.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self {
            buf: vec![0; capacity.max(1)],
            start: 0,
            end: 0,
            want: None,
        }
    }

    /// The status of the next whole answer, interim ones skipped;
    /// `Ok(None)` until more bytes arrive.
    pub(crate) fn next_status(&mut self) -> Result<Option<u16>, Malformed> {
        loop {
            let pending = self.buf.get(self.start..self.end).unwrap_or(&[]);
            match parse(pending)? {
                Parsed::Partial { total } => {
                    self.want = total;
                    return Ok(None);
                }
                Parsed::Answer { status, len } => {
                    self.start += len;
                    self.want = None;
                    if self.start == self.end {
                        self.start = 0;
                        self.end = 0;
                    }
                    if !(100..=199).contains(&status) {
                        return Ok(Some(status));
                    }
                }
            }
        }
    }

    /// Room to read into: the inbox moves what it holds to the front, and
    /// grows when the answer at the front needs more than it has.
    pub(crate) fn spare(&mut self) -> &mut [u8] {
        // Room for the whole answer at the front when its length is known,
        // else for at least one more byte.
        let need = self.want.unwrap_or(0).max(self.end - self.start + 1);
        if self.start > 0 && self.start + need > self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.start + need > self.buf.len() {
            // Doubling, bounded by the head and body limits of `parse`
            // (past them it fails before asking for more).
            let len = (self.buf.len() * 2).min(HEAD_BYTES_MAX + BODY_BYTES_MAX + 1);
            self.buf.resize(len.max(self.start + need), 0);
        }
        self.buf.get_mut(self.end..).unwrap_or(&mut [])
    }

    /// Records that `n` bytes were read into [`Self::spare`].
    pub(crate) fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    /// Bytes held and not yet handed out.
    #[cfg(test)]
    fn pending(&self) -> usize {
        self.end - self.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BID: &[u8] = b"HTTP/1.1 200 OK\r\nx-openrtb-version: 2.6\r\n\
        Content-Type: application/json\r\nContent-Length: 26\r\n\r\n\
        {\"id\":\"r1\",\"seatbid\":[{}]}";
    const NO_BID: &[u8] =
        b"HTTP/1.1 204 No Content\r\nx-openrtb-version: 2.6\r\nx-cx-nbr: 2\r\n\r\n";
    const REFUSED: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 2\r\n\r\n{}";

    /// Feeds `chunks` to an inbox in turn; the statuses it hands out.
    fn statuses(chunks: &[&[u8]], capacity: usize) -> Result<Vec<u16>, Malformed> {
        let mut inbox = Inbox::with_capacity(capacity);
        let mut out = Vec::new();
        for chunk in chunks {
            let mut rest = *chunk;
            while !rest.is_empty() {
                let room = inbox.spare();
                let n = room.len().min(rest.len());
                room[..n].copy_from_slice(&rest[..n]);
                inbox.filled(n);
                rest = &rest[n..];
                while let Some(status) = inbox.next_status()? {
                    out.push(status);
                }
            }
        }
        Ok(out)
    }

    #[test]
    fn a_bid_is_a_200_framed_by_its_length() {
        assert_eq!(
            parse(BID),
            Ok(Parsed::Answer {
                status: 200,
                len: BID.len()
            })
        );
        let short = &BID[..BID.len() - 1];
        assert_eq!(
            parse(short),
            Ok(Parsed::Partial {
                total: Some(BID.len())
            })
        );
        assert_eq!(statuses(&[BID], 1024), Ok(vec![200]));
    }

    #[test]
    fn a_no_bid_is_a_204_without_a_body_even_if_it_announces_one() {
        assert_eq!(
            parse(NO_BID),
            Ok(Parsed::Answer {
                status: 204,
                len: NO_BID.len()
            })
        );
        let lying = b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n";
        assert_eq!(statuses(&[lying, BID], 1024), Ok(vec![204, 200]));
    }

    #[test]
    fn pipelined_answers_split_anywhere_come_out_whole_and_in_order() {
        let continue_ = b"HTTP/1.1 100 Continue\r\n\r\n".as_slice();
        let stream = [BID, NO_BID, continue_, REFUSED, BID, NO_BID].concat();
        let expected = vec![200, 204, 400, 200, 204];
        // Every split into two reads, into an inbox big enough and into one
        // that must grow (16 bytes).
        for capacity in [4096, 16] {
            for cut in 0..=stream.len() {
                let (a, b) = stream.split_at(cut);
                assert_eq!(
                    statuses(&[a, b], capacity),
                    Ok(expected.clone()),
                    "cut at {cut}, capacity {capacity}"
                );
            }
        }
        // One byte per read.
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(statuses(&bytes, 64), Ok(expected));
    }

    #[test]
    fn the_inbox_keeps_its_size_and_starts_over_when_drained() {
        let mut inbox = Inbox::with_capacity(4096);
        for _ in 0..1000 {
            let room = inbox.spare();
            assert!(room.len() >= BID.len());
            room[..BID.len()].copy_from_slice(BID);
            inbox.filled(BID.len());
            assert_eq!(inbox.next_status(), Ok(Some(200)));
            assert_eq!(inbox.next_status(), Ok(None));
            assert_eq!(inbox.pending(), 0);
        }
        assert_eq!(inbox.buf.len(), 4096, "no growth in steady state");
    }

    #[test]
    fn malformed_answers_are_errors_not_panics() {
        let cases: &[&[u8]] = &[
            b"HTTP/1.1 2x0 OK\r\n\r\n",
            b"GET / HTTP/1.1\r\n\r\n",
            b"\x00\x01\x02\x03 garbage\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
        ];
        for case in cases {
            let got = statuses(&[case], 1024);
            assert!(got.is_err(), "{:?}: {got:?}", String::from_utf8_lossy(case));
        }
        // Too many header fields, and a head that never ends.
        let many = [
            b"HTTP/1.1 200 OK\r\n".as_slice(),
            &b"a: b\r\n".repeat(HEADERS_MAX + 1),
            b"Content-Length: 0\r\n\r\n",
        ]
        .concat();
        assert!(statuses(&[&many], 1024).is_err());
        let endless = [
            b"HTTP/1.1 200 OK\r\n".as_slice(),
            &b"a: b\r\n".repeat(20_000),
        ]
        .concat();
        let err = statuses(&[&endless], 1024).unwrap_err();
        assert!(err.to_string().contains("head"), "{err}");
        // A malformed answer behind a good one: the good one first.
        let mut inbox = Inbox::with_capacity(1024);
        let bytes = [BID, b"HTTP/1.1 200 OK\r\n\r\n"].concat();
        inbox.spare()[..bytes.len()].copy_from_slice(&bytes);
        inbox.filled(bytes.len());
        assert_eq!(inbox.next_status(), Ok(Some(200)));
        assert!(inbox.next_status().is_err());
    }
}
