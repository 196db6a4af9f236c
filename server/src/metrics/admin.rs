//! The admin HTTP endpoint: `GET /metrics` (the [`Metrics`] registry as
//! OpenMetrics text) and `GET /healthz` (the [`Health`] flag), on its own
//! thread.
//!
//! # Trade-offs
//!
//! The endpoint is a deliberately small HTTP/1.1 server on `std::net` and
//! `mio` rather than `tiny_http`: `tiny_http` 0.12 sets no socket timeouts,
//! reads header lines without a length limit, and, when a request that
//! announced a body over 1 KiB is dropped, drains the body in the handler's
//! thread into one buffer of the announced size, so a single
//! `Content-Length: 1000000000000` aborts the whole process on allocation
//! failure. Here:
//!
//! - One thread serves one connection at a time and one request per
//!   connection (every response says `Connection: close`). A scrape is a
//!   few kilobytes, so this is plenty for scrapers and probes; it also
//!   means a slow client delays the others, by about
//!   [`AdminLimits::request_timeout`] plus [`AdminLimits::write_timeout`]
//!   plus [`DRAIN_TIMEOUT`] at most.
//! - The request head must arrive within [`AdminLimits::request_timeout`]
//!   (else `408`) and fit [`AdminLimits::head_max_bytes`] (else `431`);
//!   malformed heads get `400`. Request bodies are never parsed: after the
//!   response, at most [`DRAIN_MAX_BYTES`] of an announced body are read
//!   and discarded for at most [`DRAIN_TIMEOUT`], so that closing the
//!   socket does not reset the connection under the client's response.
//! - [`AdminServer::stop`] wakes the thread through a `mio::Waker` and
//!   joins it; it waits only for a connection being served, which the
//!   limits above bound.
//! - The caller chooses the address; bind it to loopback unless scrapers
//!   come from elsewhere, since the endpoint has no authentication.

use super::{Metrics, METRICS_CONTENT_TYPE};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};

/// The `Content-Type` of `/healthz` and of error responses.
const TEXT_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// At most this many bytes of an announced request body are read (and
/// discarded) after the response, before the connection is closed.
pub const DRAIN_MAX_BYTES: usize = 64 * 1024;

/// At most this long is spent reading (and discarding) a request body.
pub const DRAIN_TIMEOUT: Duration = Duration::from_millis(200);

/// The shortest timeout [`AdminServer::spawn_with_limits`] accepts; shorter
/// ones (zero included, which sockets reject) are raised to it.
const TIMEOUT_MIN: Duration = Duration::from_millis(1);

/// The smallest head limit: room for a request line and a `Host` header.
const HEAD_MIN_BYTES: usize = 256;

/// Why the admin endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The listening socket could not be bound (address in use, not local,
    /// no permission).
    #[error("cannot bind the admin HTTP endpoint to {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The event loop (poll instance or waker) could not be created.
    #[error("cannot set up the admin HTTP endpoint's event loop")]
    EventLoop {
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The admin thread could not be started.
    #[error("cannot start the admin HTTP endpoint's thread")]
    Spawn {
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// Process health as `/healthz` reports it: serving (`200 ok`) until
/// [`Health::set_draining`], then draining (`503 draining`). Cheap to clone
/// (an `Arc` inside); clones share the flag.
#[derive(Clone, Debug, Default)]
pub struct Health {
    draining: Arc<AtomicBool>,
}

impl Health {
    /// A serving process.
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks the process as draining: it takes no new work and is about to
    /// stop. There is no way back.
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Whether [`Health::set_draining`] was called.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }
}

/// Limits of the admin endpoint ([`AdminServer::spawn_with_limits`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdminLimits {
    /// The whole request head must arrive within this long after accept;
    /// otherwise the client gets `408` and the connection is closed.
    pub request_timeout: Duration,
    /// Each write of the response may block at most this long; a client
    /// that does not read is dropped.
    pub write_timeout: Duration,
    /// The request head (request line and headers) may be at most this
    /// long; otherwise the client gets `431`.
    pub head_max_bytes: usize,
}

impl Default for AdminLimits {
    /// 2 s to send the head, 2 s per write, 8 KiB of head.
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(2),
            write_timeout: Duration::from_secs(2),
            head_max_bytes: 8 * 1024,
        }
    }
}

impl AdminLimits {
    /// The limits with zero or tiny values raised to workable minimums.
    fn sanitized(self) -> Self {
        Self {
            request_timeout: self.request_timeout.max(TIMEOUT_MIN),
            write_timeout: self.write_timeout.max(TIMEOUT_MIN),
            head_max_bytes: self.head_max_bytes.max(HEAD_MIN_BYTES),
        }
    }
}

/// The listening socket's token.
const LISTENER: Token = Token(0);
/// The waker's token ([`AdminServer::stop`]).
const WAKE: Token = Token(1);

/// The admin HTTP endpoint, serving on its own thread: `GET /metrics`
/// (200, [`Metrics::render`]), `GET /healthz` (200 `ok` or 503 `draining`,
/// from [`Health`]); `HEAD` works too; any other path is 404, any other
/// method on these paths 405. See the module documentation for the limits.
///
/// Dropping it stops it, as [`AdminServer::stop`] does.
#[derive(Debug)]
pub struct AdminServer {
    local_addr: SocketAddr,
    stopping: Arc<AtomicBool>,
    waker: Waker,
    thread: Option<JoinHandle<()>>,
}

impl AdminServer {
    /// Binds `addr` (port 0 picks a free port) and serves on a new thread
    /// with the default [`AdminLimits`].
    pub fn spawn(
        addr: SocketAddr,
        metrics: Metrics,
        health: Health,
    ) -> Result<AdminServer, MetricsError> {
        Self::spawn_with_limits(addr, metrics, health, AdminLimits::default())
    }

    /// As [`AdminServer::spawn`], with the given limits.
    pub fn spawn_with_limits(
        addr: SocketAddr,
        metrics: Metrics,
        health: Health,
        limits: AdminLimits,
    ) -> Result<AdminServer, MetricsError> {
        let (listener, local_addr) = bind(addr)?;
        let (poll, listener, waker) = event_loop(listener)?;
        let stopping = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            poll,
            listener,
            metrics,
            health,
            limits: limits.sanitized(),
            stopping: Arc::clone(&stopping),
        };
        let thread = thread::Builder::new()
            .name("cx-admin".to_owned())
            .spawn(move || worker.run())
            .map_err(|source| MetricsError::Spawn { source })?;
        tracing::info!(addr = %local_addr, "admin HTTP endpoint listening");
        Ok(AdminServer {
            local_addr,
            stopping,
            waker,
            thread: Some(thread),
        })
    }

    /// The address it listens on (with the real port when `addr` had 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops serving: wakes the thread, waits for the connection being
    /// served (if any, bounded by the limits) and joins the thread. The
    /// listening socket is closed when this returns.
    pub fn stop(mut self) {
        self.shut_down();
    }

    /// Sets the stop flag, wakes the thread and joins it (once).
    fn shut_down(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.stopping.store(true, Ordering::Release);
        if let Err(err) = self.waker.wake() {
            // Without a wake-up the thread would sleep until the next
            // connection; joining it could hang, so leave it detached.
            tracing::error!(%err, "cannot wake the admin HTTP thread; leaving it");
            return;
        }
        if thread.join().is_err() {
            tracing::error!("the admin HTTP thread panicked");
        }
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// Binds a non-blocking listener; returns it with its real address.
fn bind(addr: SocketAddr) -> Result<(std::net::TcpListener, SocketAddr), MetricsError> {
    let bind_error = |source| MetricsError::Bind { addr, source };
    let listener = std::net::TcpListener::bind(addr).map_err(bind_error)?;
    let local_addr = listener.local_addr().map_err(bind_error)?;
    listener.set_nonblocking(true).map_err(bind_error)?;
    Ok((listener, local_addr))
}

/// A poll instance watching `listener`, and a waker for it.
fn event_loop(listener: std::net::TcpListener) -> Result<(Poll, TcpListener, Waker), MetricsError> {
    let loop_error = |source| MetricsError::EventLoop { source };
    let poll = Poll::new().map_err(loop_error)?;
    let mut listener = TcpListener::from_std(listener);
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .map_err(loop_error)?;
    let waker = Waker::new(poll.registry(), WAKE).map_err(loop_error)?;
    Ok((poll, listener, waker))
}

/// What the admin thread owns.
struct Worker {
    poll: Poll,
    listener: TcpListener,
    metrics: Metrics,
    health: Health,
    limits: AdminLimits,
    stopping: Arc<AtomicBool>,
}

impl Worker {
    /// Waits for connections and serves them until told to stop.
    fn run(mut self) {
        let mut events = Events::with_capacity(4);
        while !self.is_stopping() {
            if let Err(err) = self.poll.poll(&mut events, None) {
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                tracing::error!(%err, "admin HTTP endpoint: poll failed; it stops");
                return;
            }
            // A listener event means connections are pending; a wake-up
            // means `is_stopping`, which `accept_pending` checks first.
            self.accept_pending();
        }
    }

    fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Accepts and serves connections until none is pending (the listener
    /// is edge-triggered) or the server is stopping.
    fn accept_pending(&self) {
        while !self.is_stopping() {
            match self.listener.accept() {
                Ok((stream, peer)) => self.serve(TcpStream::from(stream), peer),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) if is_transient_accept_error(&err) => continue,
                Err(err) => {
                    // Out of descriptors, say: leave the backlog for the next
                    // readiness event rather than spinning on the error.
                    tracing::warn!(%err, "admin HTTP endpoint: accept failed");
                    return;
                }
            }
        }
    }

    /// Serves one connection; failures only concern that client.
    fn serve(&self, mut stream: TcpStream, peer: SocketAddr) {
        if let Err(err) = serve_connection(&mut stream, &self.metrics, &self.health, self.limits) {
            tracing::debug!(%err, %peer, "admin HTTP request failed");
        }
    }
}

/// Accept errors that concern one connection, not the listener.
fn is_transient_accept_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::Interrupted
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Reads one request head, answers it, and winds the connection down.
fn serve_connection(
    stream: &mut TcpStream,
    metrics: &Metrics,
    health: &Health,
    limits: AdminLimits,
) -> io::Result<()> {
    // Accepted sockets are non-blocking (mio); block with timeouts instead.
    stream.set_nonblocking(false)?;
    stream.set_write_timeout(Some(limits.write_timeout))?;
    let deadline = Instant::now() + limits.request_timeout;
    let (reply, request) = match read_head(stream, deadline, limits.head_max_bytes) {
        Ok(head) => match parse_head(&head) {
            Some(request) => (route(&request, metrics, health), Some(request)),
            None => (Reply::text(Status::BadRequest, "bad request\n"), None),
        },
        Err(HeadError::TooLarge) => (
            Reply::text(Status::HeadTooLarge, "request head too large\n"),
            None,
        ),
        Err(HeadError::TimedOut) => (
            Reply::text(Status::RequestTimeout, "request timeout\n"),
            None,
        ),
        Err(HeadError::Closed) => return Ok(()),
        Err(HeadError::Io(err)) => return Err(err),
    };
    let head_only = request.as_ref().is_some_and(|r| r.method == Method::Head);
    stream.write_all(&reply.to_bytes(head_only))?;
    stream.flush()?;
    // Unparsed requests (400, 408, 431) may have left bytes unread too.
    finish(stream, request.is_none_or(|r| r.has_body));
    Ok(())
}

/// Why no request head was read.
#[derive(Debug)]
enum HeadError {
    /// Over the head limit before its end.
    TooLarge,
    /// The deadline passed before its end.
    TimedOut,
    /// The client closed the connection before its end.
    Closed,
    /// The socket failed.
    Io(io::Error),
}

/// Reads until the blank line that ends the request head, within the
/// deadline and the size limit; returns the head without the blank line.
/// Bytes after it (the start of a body) may be read too and are ignored.
fn read_head(
    stream: &mut TcpStream,
    deadline: Instant,
    max_bytes: usize,
) -> Result<Vec<u8>, HeadError> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0_u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(HeadError::TimedOut);
        }
        stream.set_read_timeout(Some(left)).map_err(HeadError::Io)?;
        // One byte past the limit tells "too large" from "exactly full".
        let want = chunk.len().min(max_bytes + 1 - head.len());
        let n = match stream.read(&mut chunk[..want]) {
            Ok(0) => return Err(HeadError::Closed),
            Ok(n) => n,
            Err(err) if is_timeout(&err) => return Err(HeadError::TimedOut),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(HeadError::Io(err)),
        };
        let scan_from = head.len().saturating_sub(3);
        head.extend_from_slice(&chunk[..n]);
        if let Some(end) = find_head_end(&head[scan_from..]) {
            head.truncate(scan_from + end);
            return Ok(head);
        }
        if head.len() > max_bytes {
            return Err(HeadError::TooLarge);
        }
    }
}

/// Read timeouts show up as `WouldBlock` on Unix and `TimedOut` on Windows.
fn is_timeout(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Where the blank line ending a head starts (`\r\n\r\n`, or a bare `\n\n`).
fn find_head_end(bytes: &[u8]) -> Option<usize> {
    let crlf = find(bytes, b"\r\n\r\n");
    let lf = find(bytes, b"\n\n");
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The first position of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The request methods the endpoint tells apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    Get,
    Head,
    /// Any other (well-formed) method.
    Other,
}

/// What the endpoint needs from a request head.
#[derive(Debug, PartialEq, Eq)]
struct RequestHead {
    method: Method,
    /// The target's path, without the query.
    path: String,
    /// Whether a body was announced (`Content-Length` > 0 or
    /// `Transfer-Encoding`).
    has_body: bool,
}

/// Parses `METHOD /target HTTP/1.x` and the header lines; `None` when the
/// head is malformed (not UTF-8, wrong request line, a line with no colon).
fn parse_head(head: &[u8]) -> Option<RequestHead> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.lines();
    let (method, path) = parse_request_line(lines.next()?)?;
    let mut has_body = false;
    for line in lines {
        let (name, value) = line.split_once(':')?;
        has_body |= announces_body(name.trim(), value.trim());
    }
    Some(RequestHead {
        method,
        path,
        has_body,
    })
}

/// The method and the path of a request line.
fn parse_request_line(line: &str) -> Option<(Method, String)> {
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    let well_formed = parts.next().is_none()
        && !method.is_empty()
        && method.bytes().all(|b| b.is_ascii_alphabetic())
        && target.starts_with('/')
        && matches!(version, "HTTP/1.0" | "HTTP/1.1");
    if !well_formed {
        return None;
    }
    let method = match method {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        _ => Method::Other,
    };
    let path = target.split('?').next().unwrap_or(target);
    Some((method, path.to_owned()))
}

/// Whether a header announces a request body.
fn announces_body(name: &str, value: &str) -> bool {
    if name.eq_ignore_ascii_case("transfer-encoding") {
        return true;
    }
    name.eq_ignore_ascii_case("content-length") && value != "0"
}

/// The response to a well-formed request.
fn route(request: &RequestHead, metrics: &Metrics, health: &Health) -> Reply {
    let known = matches!(request.path.as_str(), "/metrics" | "/healthz");
    if !known {
        return Reply::text(Status::NotFound, "not found\n");
    }
    if request.method == Method::Other {
        return Reply::text(Status::MethodNotAllowed, "method not allowed\n");
    }
    if request.path == "/metrics" {
        return Reply {
            status: Status::Ok,
            content_type: METRICS_CONTENT_TYPE,
            body: metrics.render(),
        };
    }
    if health.is_draining() {
        Reply::text(Status::ServiceUnavailable, "draining\n")
    } else {
        Reply::text(Status::Ok, "ok\n")
    }
}

/// The statuses the endpoint answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Ok,
    BadRequest,
    NotFound,
    MethodNotAllowed,
    RequestTimeout,
    HeadTooLarge,
    ServiceUnavailable,
}

impl Status {
    /// The status line's code and reason phrase.
    fn line(self) -> (u16, &'static str) {
        match self {
            Self::Ok => (200, "OK"),
            Self::BadRequest => (400, "Bad Request"),
            Self::NotFound => (404, "Not Found"),
            Self::MethodNotAllowed => (405, "Method Not Allowed"),
            Self::RequestTimeout => (408, "Request Timeout"),
            Self::HeadTooLarge => (431, "Request Header Fields Too Large"),
            Self::ServiceUnavailable => (503, "Service Unavailable"),
        }
    }
}

/// A complete response.
#[derive(Debug)]
struct Reply {
    status: Status,
    content_type: &'static str,
    body: String,
}

impl Reply {
    /// A plain-text response.
    fn text(status: Status, body: &str) -> Self {
        Self {
            status,
            content_type: TEXT_CONTENT_TYPE,
            body: body.to_owned(),
        }
    }

    /// The response's bytes; without the body for `HEAD` (the headers still
    /// give its length).
    fn to_bytes(&self, head_only: bool) -> Vec<u8> {
        let (code, reason) = self.status.line();
        let allow = if self.status == Status::MethodNotAllowed {
            "Allow: GET, HEAD\r\n"
        } else {
            ""
        };
        let head = format!(
            "HTTP/1.1 {code} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
             Cache-Control: no-store\r\n{allow}Connection: close\r\n\r\n",
            self.content_type,
            self.body.len(),
        );
        let mut bytes = head.into_bytes();
        if !head_only {
            bytes.extend_from_slice(self.body.as_bytes());
        }
        bytes
    }
}

/// Ends the response and, when the client may have sent more than was read
/// (a body, or an unparsed request), reads and discards a bounded part of
/// it, so that closing with unread bytes does not reset the connection
/// before the client has read the response.
fn finish(stream: &mut TcpStream, drain: bool) {
    // Errors here only mean the client is already gone.
    let _ = stream.shutdown(Shutdown::Write);
    if !drain || stream.set_read_timeout(Some(DRAIN_TIMEOUT)).is_err() {
        return;
    }
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    let mut chunk = [0_u8; 4096];
    let mut drained_bytes = 0;
    while drained_bytes < DRAIN_MAX_BYTES && Instant::now() < deadline {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => drained_bytes += n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_request_lines() {
        let head =
            parse_head(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3").unwrap();
        assert_eq!(head.method, Method::Get);
        assert_eq!(head.path, "/metrics");
        assert!(head.has_body);
        let head = parse_head(b"DELETE /healthz HTTP/1.0").unwrap();
        assert_eq!((head.method, head.has_body), (Method::Other, false));
    }

    #[test]
    fn rejects_malformed_heads() {
        for head in [
            &b""[..],
            b"GET",
            b"GET /metrics",
            b"GET /metrics HTTP/2.0",
            b"GET metrics HTTP/1.1",
            b"GET  /metrics HTTP/1.1",
            b"G3T /metrics HTTP/1.1",
            b"GET /metrics HTTP/1.1 extra",
            b"GET /metrics HTTP/1.1\r\nno colon here",
            b"GET /\xff HTTP/1.1",
        ] {
            assert_eq!(
                parse_head(head),
                None,
                "{:?}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[test]
    fn finds_the_end_of_a_head() {
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\nbody"), Some(14));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\n\n"), Some(14));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n"), None);
    }

    #[test]
    fn zero_limits_are_raised() {
        let limits = AdminLimits {
            request_timeout: Duration::ZERO,
            write_timeout: Duration::ZERO,
            head_max_bytes: 0,
        }
        .sanitized();
        assert_eq!(limits.request_timeout, TIMEOUT_MIN);
        assert_eq!(limits.write_timeout, TIMEOUT_MIN);
        assert_eq!(limits.head_max_bytes, HEAD_MIN_BYTES);
    }
}
