//! The HTTP wire ([`Wire::Http`](crate::Wire::Http)): OpenRTB bid
//! requests POSTed to the HTTP bidder of `cx serve` (`--http-listen`) over
//! keep-alive HTTP/1.1 connections, pipelined, answers read in order.
//!
//! - [`HttpRequests`]: every request of the pool as the bytes that go on
//!   the wire, head and body, built once before the clock starts (one
//!   arena, like the pool's documents).
//! - [`HttpWriter`]: queues a request's bytes into the connection's own
//!   buffer and writes the buffer out at each flush; the buffer keeps its
//!   capacity, so sending allocates nothing in steady state.
//! - [`HttpReader`]: reads the connection into an [`answer::Inbox`] and
//!   hands out each answer's status. HTTP/1.1 answers come in request
//!   order, so the `k`-th answer on a connection answers its `k`-th
//!   request: the reader numbers them as the binary protocol's request ids
//!   would be.

pub(crate) mod answer;

use crate::error::{Error, Result};
use crate::pool::RequestPool;
use answer::{Inbox, Malformed};
use std::io::{Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// The path bid requests are POSTed to (the bidder's default).
pub const BID_PATH: &str = "/openrtb2/bid";

/// The OpenRTB version each request announces (`x-openrtb-version`).
const OPENRTB_VERSION: &str = "2.6";

/// Every request of a pool as HTTP bytes: request `j` is
/// `bytes[ends[j - 1]..ends[j]]` (from 0 for the first).
#[derive(Clone, Debug)]
pub struct HttpRequests {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl HttpRequests {
    /// The pool's documents as `POST` requests to `host` (the `Host`
    /// header: `--addr`). Only a pool of OpenRTB documents can be sent.
    pub fn build(pool: &RequestPool, host: &str) -> Result<Self> {
        if !pool.has_documents() {
            return Err(Error::option(
                "--mix",
                pool.label(),
                "--http sends OpenRTB bid requests: give a JSONL file of them",
            ));
        }
        if host.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(Error::option(
                "--addr",
                host.escape_debug(),
                "must be HOST:PORT (it is sent as the Host header)",
            ));
        }
        let n = pool.len();
        let mut bytes = Vec::new();
        let mut ends = Vec::with_capacity(n);
        for j in 0..n {
            let body = pool.document(j).unwrap_or(&[]);
            write_request(&mut bytes, host, body);
            ends.push(bytes.len());
        }
        Ok(Self { bytes, ends })
    }

    /// Request `index`, taken modulo the pool's size.
    pub fn get(&self, index: u64) -> &[u8] {
        let n = self.ends.len().max(1) as u64;
        let j = (index % n) as usize;
        let start = j.checked_sub(1).and_then(|p| self.ends.get(p)).copied();
        let start = start.unwrap_or(0);
        let end = self.ends.get(j).copied().unwrap_or(start);
        self.bytes.get(start..end).unwrap_or(&[])
    }

    /// Requests held.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}

/// Appends one bid request, head and `body`, to `out`.
fn write_request(out: &mut Vec<u8>, host: &str, body: &[u8]) {
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "POST {BID_PATH} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         x-openrtb-version: {OPENRTB_VERSION}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    out.extend_from_slice(body);
}

/// Connects to the first address of `addr` that accepts within
/// `timeout`, with `TCP_NODELAY`; writes time out after `timeout`, reads
/// after `poll` (a reader's read that times out is repeated).
pub(crate) fn connect<'a>(
    addr: &str,
    requests: &'a HttpRequests,
    timeout: Duration,
    poll: Duration,
) -> Result<(HttpWriter<'a>, HttpReader)> {
    let connect_error = |what: &str, source| Error::Connect {
        addr: addr.to_string(),
        what: what.into(),
        source,
    };
    let candidates: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| connect_error("cannot resolve", e))?
        .collect();
    let mut last = std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        "the address resolved to nothing",
    );
    let mut stream = None;
    for candidate in candidates {
        match TcpStream::connect_timeout(&candidate, timeout) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = e,
        }
    }
    let stream = stream.ok_or_else(|| connect_error("cannot connect", last))?;
    let setup = |s: &TcpStream| {
        s.set_nodelay(true)?;
        s.set_write_timeout(Some(timeout))?;
        s.set_read_timeout(Some(poll))
    };
    setup(&stream).map_err(|e| connect_error("cannot set up the socket", e))?;
    let read_half = stream
        .try_clone()
        .map_err(|e| connect_error("cannot split the socket", e))?;
    Ok((
        HttpWriter {
            stream,
            requests,
            out: Vec::with_capacity(answer::INBOX_BYTES),
        },
        HttpReader {
            stream: read_half,
            inbox: Inbox::default(),
            next_id: 0,
            broken: None,
        },
    ))
}

/// The sending half of an HTTP connection.
#[derive(Debug)]
pub struct HttpWriter<'a> {
    stream: TcpStream,
    requests: &'a HttpRequests,
    /// Requests queued since the last flush.
    out: Vec<u8>,
}

impl HttpWriter<'_> {
    /// Queues request `index` of the pool (modulo its size).
    pub fn queue(&mut self, index: u64) {
        self.out.extend_from_slice(self.requests.get(index));
    }

    /// Writes every queued request. A write that fails or times out
    /// breaks the connection (part of a request may have gone out).
    pub fn flush(&mut self) -> std::io::Result<()> {
        let result = self.stream.write_all(&self.out);
        self.out.clear();
        result
    }
}

/// What one call to [`HttpReader::read_answer`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpEvent {
    /// The answer to the connection's request number `id` (0 first),
    /// with its status.
    Answer {
        /// Which request, in sending order.
        id: u64,
        /// Its status.
        status: u16,
    },
    /// The answer to request `id` could not be read, and the stream can no
    /// longer be framed: the next call reports the connection broken.
    Malformed {
        /// Which request it answered.
        id: u64,
    },
    /// Nothing arrived within the read timeout.
    Idle,
    /// The connection is over: closed by the server, failed, or its
    /// framing was lost.
    Broken(String),
}

/// The receiving half of an HTTP connection.
#[derive(Debug)]
pub struct HttpReader {
    stream: TcpStream,
    inbox: Inbox,
    next_id: u64,
    broken: Option<String>,
}

impl HttpReader {
    /// The next answer, reading the socket at most once (so that a quiet
    /// connection returns [`HttpEvent::Idle`] after the read timeout).
    pub fn read_answer(&mut self) -> HttpEvent {
        if let Some(why) = &self.broken {
            return HttpEvent::Broken(why.clone());
        }
        let mut read = false;
        loop {
            match self.inbox.next_status() {
                Ok(Some(status)) => {
                    let id = self.next_id;
                    self.next_id += 1;
                    return HttpEvent::Answer { id, status };
                }
                Ok(None) if read => return HttpEvent::Idle,
                Ok(None) => {}
                Err(e) => return self.malformed(&e),
            }
            read = true;
            match self.stream.read(self.inbox.spare()) {
                Ok(0) => return self.break_off("the server closed the connection".into()),
                Ok(n) => self.inbox.filled(n),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return HttpEvent::Idle
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => read = false,
                Err(e) => return self.break_off(format!("reading: {e}")),
            }
        }
    }

    /// The answer to the next request could not be framed: it counts as
    /// that request's (invalid) answer, and the connection is over.
    fn malformed(&mut self, error: &Malformed) -> HttpEvent {
        let id = self.next_id;
        self.next_id += 1;
        let _ = self.break_off(error.to_string());
        HttpEvent::Malformed { id }
    }

    /// Ends the connection both ways, so that the sender's next write
    /// fails too and it stops sending there (as a broken binary client
    /// does); keeps why.
    fn break_off(&mut self, why: String) -> HttpEvent {
        let _ = self.stream.shutdown(Shutdown::Both);
        self.broken = Some(why.clone());
        HttpEvent::Broken(why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Mix;

    #[test]
    fn each_request_is_a_post_with_its_length_and_body() {
        let dir = std::env::temp_dir().join(format!("cx-load-http-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("two.jsonl");
        std::fs::write(
            &file,
            "{\"id\":\"a\",\"imp\":[]}\n{\"request\":{\"id\":\"bb\"}}\n",
        )
        .unwrap();
        let pool = RequestPool::build(&Mix::OpenRtb(file), 1, 10).unwrap();
        let requests = HttpRequests::build(&pool, "127.0.0.1:8080").unwrap();
        assert_eq!(requests.len(), 2);
        let first = String::from_utf8(requests.get(0).to_vec()).unwrap();
        assert!(first.starts_with("POST /openrtb2/bid HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"));
        assert!(first.contains("Content-Type: application/json\r\n"));
        assert!(first.ends_with("Content-Length: 19\r\n\r\n{\"id\":\"a\",\"imp\":[]}"));
        let second = String::from_utf8(requests.get(3).to_vec()).unwrap();
        assert!(
            second.ends_with("Content-Length: 11\r\n\r\n{\"id\":\"bb\"}"),
            "{second}"
        );
        // Every request parses back as one whole HTTP request.
        for j in 0..2 {
            let mut headers = [httparse::EMPTY_HEADER; 8];
            let mut request = httparse::Request::new(&mut headers);
            let bytes = requests.get(j);
            let httparse::Status::Complete(head) = request.parse(bytes).unwrap() else {
                panic!("a whole head");
            };
            assert_eq!(request.method, Some("POST"));
            let length = request
                .headers
                .iter()
                .find(|h| h.name == "Content-Length")
                .map(|h| {
                    std::str::from_utf8(h.value)
                        .unwrap()
                        .parse::<usize>()
                        .unwrap()
                });
            assert_eq!(Some(bytes.len() - head), length);
        }
        assert!(HttpRequests::build(&pool, "a\r\nb").is_err());
        assert!(HttpRequests::build(&RequestPool::echo(), "h").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
