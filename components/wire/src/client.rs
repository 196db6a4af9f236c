//! A blocking, pipelined client of the binary wire protocol
//! (`docs/PROTOCOL.md`) over one [`TcpStream`].
//!
//! This module owns the client side of a connection: the request ids it
//! hands out, a write buffer that coalesces requests (many frames go out in
//! one `write`), a bounded read buffer, the decoding of the server's
//! frames into [`Response`]s, and the split of a connection into a
//! sending and a receiving half. The two sides' state lives in two
//! separate structs, so that a split moves each to its own thread with no
//! lock and no copy; an unsplit [`Client`] holds both. It speaks the protocol through
//! [`cx_wire::protocol`] and holds no protocol rules of its
//! own beyond the client's: ids are numbered from 1, a `hello` is sent first
//! or not at all, and a fatal framing error ends the connection.
//!
//! # Use
//!
//! Pipelined: `send_*` appends a request and returns its request id,
//! [`Client::flush`] writes everything queued, and [`Client::recv`] returns
//! the next response, **in any order**: match responses by
//! [`Response::request_id`]. Round trips ([`Client::score_openrtb`],
//! [`Client::score_context`], [`Client::ping`], [`Client::hello`]) send one
//! request and wait for its answer; responses to other requests that
//! arrive meanwhile are kept and returned by later calls to
//! [`Client::recv`].
//!
//! ```no_run
//! use cx_wire::client::{Client, ResponseBody};
//!
//! let mut client = Client::connect("127.0.0.1:7070")?;
//! client.hello()?;
//! let json = br#"{"id": "r1", "imp": [{"id": "1", "banner": {"w": 300, "h": 250}}]}"#;
//! let first = client.send_openrtb(json, false)?;
//! let second = client.send_openrtb(json, true)?;
//! client.flush()?;
//! for _ in 0..2 {
//!     let response = client.recv()?;
//!     assert!(response.request_id == first || response.request_id == second);
//!     if let ResponseBody::Decision(decision) = response.body {
//!         println!("{} impressions", decision.imps.len());
//!     }
//! }
//! # Ok::<(), cx_wire::client::ClientError>(())
//! ```
//!
//! # Splitting a connection
//!
//! [`Client::split`] turns a client into a [`ClientWriter`] and a
//! [`ClientReader`], for a sender thread that keeps a schedule while a
//! receiver thread waits for responses (the load generator in
//! `cx-benches` works this way). Each half owns its buffers: the writer
//! the write buffer and the request ids, the reader the read buffer and the
//! responses kept aside; neither locks anything. They share the socket
//! (behind an `Arc`, read and written through `&TcpStream`) and one
//! broken flag, so a fatal error seen by either half fails every later
//! call on both with [`ClientError::Broken`]. Say `hello` before
//! splitting: round trips need both halves.
//!
//! ```no_run
//! use cx_wire::client::Client;
//!
//! let mut client = Client::connect("127.0.0.1:7070")?;
//! client.hello()?;
//! let (mut writer, mut reader) = client.split();
//! let sender = std::thread::spawn(move || {
//!     for nonce in 0..100 {
//!         writer.send_ping(nonce)?;
//!     }
//!     writer.flush()
//! });
//! for _ in 0..100 {
//!     let response = reader.recv()?;
//!     println!("answer to request {}", response.request_id);
//! }
//! sender.join().expect("the sender does not panic")?;
//! # Ok::<(), cx_wire::client::ClientError>(())
//! ```
//!
//! # Limits
//!
//! The read buffer never holds more than [`READ_BUFFER_MAX`] bytes: one
//! maximal frame ([`limits::FRAME_BYTES_MAX`]) plus [`READ_CHUNK_BYTES`],
//! and the codec never waits for more than one maximal frame. The write
//! buffer is written out whenever it reaches [`WRITE_FLUSH_BYTES`]. At most
//! [`STASHED_MAX`] responses are kept aside by the round trips.
//!
//! The client writes whole batches before it reads. Keep the requests in
//! flight bounded (the server answers beyond its `in_flight_max` with
//! `too_many_in_flight`) and read their answers: a peer that stops reading
//! while the other writes can block both.
//!
//! # Errors
//!
//! Nothing the server sends can make the client panic. A frame the codec
//! refuses is a [`ClientError::Protocol`] naming the field and offset: a
//! recoverable one drops just that frame (the next [`Client::recv`] goes
//! on), a fatal one (bad magic, a frame over the limit) ends the
//! connection, and every later call fails with [`ClientError::Broken`].

use crate::protocol::{
    self, limits, DecisionResponse, Decoded, ErrorCode, Hello, HelloAck, Message, ProtocolError,
};
use cx_features::RequestContext;
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Bytes asked of the socket per read (at most).
pub const READ_CHUNK_BYTES: usize = 64 * 1024;

/// Most bytes the read buffer holds: one maximal frame plus one read.
pub const READ_BUFFER_MAX: usize = limits::FRAME_BYTES_MAX + READ_CHUNK_BYTES;

/// Capacity the read buffer shrinks back to once a large frame is gone.
pub const READ_BUFFER_KEEP_BYTES: usize = 64 * 1024;

/// Queued request bytes at which a `send_*` writes the buffer out itself.
pub const WRITE_FLUSH_BYTES: usize = 256 * 1024;

/// Most responses the round trips keep aside for [`Client::recv`]: the
/// protocol's in-flight limit.
pub const STASHED_MAX: usize = limits::IN_FLIGHT_MAX;

/// [`ClientError::Io`]'s `op` for a failed read.
const READ_OP: &str = "read from the server";

/// [`ClientError::Io`]'s `op` for a failed write.
const WRITE_OP: &str = "write to the server";

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
    /// A socket operation failed (a read timeout is one: see
    /// [`ClientError::is_timeout`]).
    #[error("cannot {op}")]
    Io {
        /// What was being done: `read from the server`, `write to the
        /// server`, `set a socket option`.
        op: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
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
            Self::Io { op, .. } => *op != READ_OP || !self.is_timeout(),
            Self::Connect { .. } | Self::Closed { .. } | Self::Broken => true,
            Self::Encode { .. } | Self::Unexpected { .. } | Self::Refused { .. } => false,
        }
    }

    /// Whether this is a read or write timeout (see
    /// [`Client::set_timeout`]). After a read timeout the connection is
    /// intact and the call may be repeated; after a write timeout it is
    /// not ([`Self::is_fatal`]).
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            Self::Io { source, .. } if matches!(
                source.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            )
        )
    }
}

/// One response frame from the server.
#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    /// The request it answers (0: an error about no request the server
    /// could identify).
    pub request_id: u64,
    /// What the server answered.
    pub body: ResponseBody,
}

/// The content of a response frame.
#[derive(Clone, Debug, PartialEq)]
pub enum ResponseBody {
    /// The decision for a score request: one impression per OpenRTB `imp`,
    /// or one with an empty id for a `score_context`.
    Decision(DecisionResponse),
    /// The request failed.
    Error {
        /// Why (a known protocol code; the codec refuses unknown ones).
        code: ErrorCode,
        /// The server's explanation.
        message: String,
    },
    /// The answer to a ping: its nonce.
    Pong(u64),
    /// The answer to a hello: the chosen version and the server's limits.
    HelloAck(HelloAck),
}

/// A blocking, pipelined protocol client over one TCP connection. See the
/// [module docs](self).
#[derive(Debug)]
pub struct Client {
    link: Link,
    outbox: Outbox,
    inbox: Inbox,
    ack: Option<HelloAck>,
}

/// The sending half of a [`Client`] after [`Client::split`]: it queues
/// requests, numbers them and writes them out. See the
/// [module docs](self#splitting-a-connection).
#[derive(Debug)]
pub struct ClientWriter {
    link: Link,
    outbox: Outbox,
    ack: Option<HelloAck>,
}

/// The receiving half of a [`Client`] after [`Client::split`]: it reads
/// and decodes the server's responses. See the
/// [module docs](self#splitting-a-connection).
#[derive(Debug)]
pub struct ClientReader {
    link: Link,
    inbox: Inbox,
}

/// The socket and the connection's broken flag, shared by both halves of
/// a split client (reads and writes go through `&TcpStream`).
#[derive(Clone, Debug)]
struct Link {
    stream: Arc<TcpStream>,
    /// Set by the first fatal error on either half; every later call on
    /// either half fails with [`ClientError::Broken`].
    broken: Arc<AtomicBool>,
}

impl Link {
    fn ensure_open(&self) -> Result<(), ClientError> {
        if self.broken.load(Ordering::Acquire) {
            Err(ClientError::Broken)
        } else {
            Ok(())
        }
    }

    fn set_broken(&self) {
        self.broken.store(true, Ordering::Release);
    }

    fn socket_option(
        &self,
        set: impl FnOnce(&TcpStream) -> std::io::Result<()>,
    ) -> Result<(), ClientError> {
        set(&self.stream).map_err(|source| ClientError::Io {
            op: "set the socket timeout",
            source,
        })
    }
}

/// The sending side's state: the write buffer and the request ids.
#[derive(Debug)]
struct Outbox {
    buf: Vec<u8>,
    next_id: u64,
    frames_sent: u64,
}

/// The receiving side's state: the read buffer and the responses kept
/// aside by round trips.
#[derive(Debug)]
struct Inbox {
    buf: Vec<u8>,
    /// Where each read lands before its bytes are appended to `buf`
    /// (allocated once, so a read costs a copy of what arrived rather than
    /// zeroing a whole chunk).
    scratch: Box<[u8]>,
    /// Bytes at the front of `buf` already decoded.
    pos: usize,
    /// Responses received by a round trip for other requests.
    stashed: VecDeque<Response>,
}

impl Client {
    /// Connects to the first address of `addr` that accepts, with
    /// `TCP_NODELAY` set and no timeouts.
    pub fn connect(addr: impl ToSocketAddrs + std::fmt::Debug) -> Result<Self, ClientError> {
        let named = format!("{addr:?}");
        let stream = TcpStream::connect(&addr).map_err(|source| ClientError::Connect {
            addr: named.trim_matches('"').to_string(),
            source,
        })?;
        Self::from_stream(stream)
    }

    /// Connects like [`Self::connect`], giving each address at most
    /// `timeout` to accept; the same timeout then applies to every read
    /// and write ([`Self::set_timeout`]).
    pub fn connect_timeout(
        addr: impl ToSocketAddrs + std::fmt::Debug,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        let named = format!("{addr:?}").trim_matches('"').to_string();
        let addrs: Vec<SocketAddr> = addr
            .to_socket_addrs()
            .map_err(|source| ClientError::Connect {
                addr: named.clone(),
                source,
            })?
            .collect();
        let mut last = std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the address resolved to nothing",
        );
        for candidate in addrs {
            match TcpStream::connect_timeout(&candidate, timeout) {
                Ok(stream) => {
                    let mut client = Self::from_stream(stream)?;
                    client.set_timeout(Some(timeout))?;
                    return Ok(client);
                }
                Err(e) => last = e,
            }
        }
        Err(ClientError::Connect {
            addr: named,
            source: last,
        })
    }

    /// A client over a connected stream (sets `TCP_NODELAY`).
    pub fn from_stream(stream: TcpStream) -> Result<Self, ClientError> {
        stream.set_nodelay(true).map_err(|source| ClientError::Io {
            op: "set TCP_NODELAY",
            source,
        })?;
        Ok(Self {
            link: Link {
                stream: Arc::new(stream),
                broken: Arc::new(AtomicBool::new(false)),
            },
            outbox: Outbox {
                buf: Vec::with_capacity(4096),
                next_id: 1,
                frames_sent: 0,
            },
            inbox: Inbox {
                buf: Vec::new(),
                scratch: vec![0; READ_CHUNK_BYTES].into_boxed_slice(),
                pos: 0,
                stashed: VecDeque::new(),
            },
            ack: None,
        })
    }

    /// Splits the connection into a [`ClientWriter`] and a
    /// [`ClientReader`] that can be moved to two threads, so that one keeps
    /// sending while the other waits for responses. Each half owns its
    /// buffers; requests queued but not flushed go to the writer, responses
    /// kept aside by round trips go to the reader, and request ids go on
    /// from [`Self::next_request_id`]. Both halves share the socket (its
    /// timeouts are per direction: [`ClientWriter::set_write_timeout`],
    /// [`ClientReader::set_read_timeout`]) and its broken state; the
    /// socket closes when both are dropped.
    pub fn split(self) -> (ClientWriter, ClientReader) {
        let writer = ClientWriter {
            link: self.link.clone(),
            outbox: self.outbox,
            ack: self.ack,
        };
        let reader = ClientReader {
            link: self.link,
            inbox: self.inbox,
        };
        (writer, reader)
    }

    /// Sets the read and write timeout (`None`: wait forever). A call that
    /// times out fails with an error whose
    /// [`is_timeout`](ClientError::is_timeout) is true. A read that timed
    /// out loses nothing and may be repeated; a write that timed out breaks
    /// the connection (part of a frame may have been sent).
    pub fn set_timeout(&mut self, timeout: Option<Duration>) -> Result<(), ClientError> {
        self.link.socket_option(|s| s.set_read_timeout(timeout))?;
        self.link.socket_option(|s| s.set_write_timeout(timeout))
    }

    /// The server's `hello_ack`, once [`Self::hello`] succeeded.
    pub fn hello_ack(&self) -> Option<HelloAck> {
        self.ack
    }

    /// The request id the next `send_*` will use (ids count up from 1 and
    /// skip 0, which the server uses for errors about no request).
    pub fn next_request_id(&self) -> u64 {
        self.outbox.next_id
    }

    /// Negotiates the version: sends a `hello` (this build's versions) and
    /// waits for its `hello_ack`. Only valid as the connection's first
    /// request; an `error` answer is [`ClientError::Refused`].
    pub fn hello(&mut self) -> Result<HelloAck, ClientError> {
        if self.outbox.frames_sent > 0 {
            return Err(ClientError::Unexpected {
                what: "hello asked for after other requests: it must be the first frame".into(),
            });
        }
        let id = self.outbox.take_id();
        protocol::encode_hello(&mut self.outbox.buf, id, Hello::ours());
        self.outbox.frames_sent += 1;
        self.flush()?;
        let response = self.inbox.wait_for(&self.link, id)?;
        match response.body {
            ResponseBody::HelloAck(ack) => {
                self.ack = Some(ack);
                Ok(ack)
            }
            other => Err(unexpected_answer(response.request_id, "hello", other)),
        }
    }

    /// Queues a `score_openrtb` request for the BidRequest document `json`
    /// (decided in simulation mode when `simulate`); returns its request
    /// id. A document over the protocol's limit is refused
    /// ([`ClientError::Encode`]) and nothing is queued.
    pub fn send_openrtb(&mut self, json: &[u8], simulate: bool) -> Result<u64, ClientError> {
        self.outbox.send_openrtb(&self.link, json, simulate)
    }

    /// Queues a `score_context` request; returns its request id. A string
    /// or list over its limit, or a non-finite number, is refused
    /// ([`ClientError::Encode`]) and nothing is queued.
    pub fn send_context(
        &mut self,
        ctx: &RequestContext,
        simulate: bool,
    ) -> Result<u64, ClientError> {
        self.outbox.send_context(&self.link, ctx, simulate)
    }

    /// Queues a `ping` carrying `nonce`; returns its request id.
    pub fn send_ping(&mut self, nonce: u64) -> Result<u64, ClientError> {
        self.outbox.send_ping(&self.link, nonce)
    }

    /// Queues bytes as they are, after the frames already queued (for
    /// tests of the server's handling of malformed frames); writes them
    /// out at [`WRITE_FLUSH_BYTES`] like any request.
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.outbox.send_raw(&self.link, bytes)
    }

    /// Writes every queued request to the socket.
    pub fn flush(&mut self) -> Result<(), ClientError> {
        self.outbox.flush(&self.link)
    }

    /// The next response: one kept aside by a round trip, else the next
    /// frame from the socket (reading as needed). Does not flush.
    pub fn recv(&mut self) -> Result<Response, ClientError> {
        self.inbox.recv(&self.link)
    }

    /// Round trip: sends a `score_openrtb` request and waits for its
    /// answer (a decision or an error frame).
    pub fn score_openrtb(&mut self, json: &[u8], simulate: bool) -> Result<Response, ClientError> {
        let id = self.send_openrtb(json, simulate)?;
        self.flush()?;
        self.inbox.wait_for(&self.link, id)
    }

    /// Round trip: sends a `score_context` request and waits for its
    /// answer (a decision or an error frame).
    pub fn score_context(
        &mut self,
        ctx: &RequestContext,
        simulate: bool,
    ) -> Result<Response, ClientError> {
        let id = self.send_context(ctx, simulate)?;
        self.flush()?;
        self.inbox.wait_for(&self.link, id)
    }

    /// Round trip: pings with `nonce` and waits for the pong; an answer
    /// other than a pong with the same nonce is an error.
    pub fn ping(&mut self, nonce: u64) -> Result<(), ClientError> {
        let id = self.send_ping(nonce)?;
        self.flush()?;
        let response = self.inbox.wait_for(&self.link, id)?;
        match response.body {
            ResponseBody::Pong(echo) if echo == nonce => Ok(()),
            ResponseBody::Pong(echo) => Err(ClientError::Unexpected {
                what: format!("pong {echo:#x} answering ping {nonce:#x}"),
            }),
            other => Err(unexpected_answer(response.request_id, "ping", other)),
        }
    }
}

impl ClientWriter {
    /// Queues a `score_openrtb` request; returns its request id (see
    /// [`Client::send_openrtb`]).
    pub fn send_openrtb(&mut self, json: &[u8], simulate: bool) -> Result<u64, ClientError> {
        self.outbox.send_openrtb(&self.link, json, simulate)
    }

    /// Queues a `score_context` request; returns its request id (see
    /// [`Client::send_context`]).
    pub fn send_context(
        &mut self,
        ctx: &RequestContext,
        simulate: bool,
    ) -> Result<u64, ClientError> {
        self.outbox.send_context(&self.link, ctx, simulate)
    }

    /// Queues a `ping` carrying `nonce`; returns its request id.
    pub fn send_ping(&mut self, nonce: u64) -> Result<u64, ClientError> {
        self.outbox.send_ping(&self.link, nonce)
    }

    /// Queues bytes as they are (see [`Client::send_raw`]).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.outbox.send_raw(&self.link, bytes)
    }

    /// Writes every queued request to the socket.
    pub fn flush(&mut self) -> Result<(), ClientError> {
        self.outbox.flush(&self.link)
    }

    /// The request id the next `send_*` will use.
    pub fn next_request_id(&self) -> u64 {
        self.outbox.next_id
    }

    /// The `hello_ack` the client received before the split, if any.
    pub fn hello_ack(&self) -> Option<HelloAck> {
        self.ack
    }

    /// Whether the connection is broken (by a fatal error on either half):
    /// every later call then fails with [`ClientError::Broken`].
    pub fn is_broken(&self) -> bool {
        self.link.ensure_open().is_err()
    }

    /// Sets the socket's write timeout (`None`: wait forever). A write that
    /// times out breaks the connection, for both halves.
    pub fn set_write_timeout(&mut self, timeout: Option<Duration>) -> Result<(), ClientError> {
        self.link.socket_option(|s| s.set_write_timeout(timeout))
    }
}

impl ClientReader {
    /// The next response: one kept aside by a round trip before the
    /// split, else the next frame from the socket (see [`Client::recv`]).
    pub fn recv(&mut self) -> Result<Response, ClientError> {
        self.inbox.recv(&self.link)
    }

    /// Whether the connection is broken (by a fatal error on either half).
    pub fn is_broken(&self) -> bool {
        self.link.ensure_open().is_err()
    }

    /// Sets the socket's read timeout (`None`: wait forever). A read that
    /// times out loses nothing: [`Self::recv`] may be called again.
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) -> Result<(), ClientError> {
        self.link.socket_option(|s| s.set_read_timeout(timeout))
    }
}

impl Outbox {
    fn send_openrtb(
        &mut self,
        link: &Link,
        json: &[u8],
        simulate: bool,
    ) -> Result<u64, ClientError> {
        link.ensure_open()?;
        protocol::encode_score_openrtb(&mut self.buf, self.next_id, json, simulate).map_err(
            |source| ClientError::Encode {
                message: "score_openrtb",
                source,
            },
        )?;
        self.queued(link)
    }

    fn send_context(
        &mut self,
        link: &Link,
        ctx: &RequestContext,
        simulate: bool,
    ) -> Result<u64, ClientError> {
        link.ensure_open()?;
        protocol::encode_score_context(&mut self.buf, self.next_id, ctx, simulate).map_err(
            |source| ClientError::Encode {
                message: "score_context",
                source,
            },
        )?;
        self.queued(link)
    }

    fn send_ping(&mut self, link: &Link, nonce: u64) -> Result<u64, ClientError> {
        link.ensure_open()?;
        protocol::encode_ping(&mut self.buf, self.next_id, nonce);
        self.queued(link)
    }

    fn send_raw(&mut self, link: &Link, bytes: &[u8]) -> Result<(), ClientError> {
        link.ensure_open()?;
        self.buf.extend_from_slice(bytes);
        self.frames_sent += 1;
        self.flush_if_full(link)
    }

    /// Writes the buffer out; a failure breaks the connection.
    fn flush(&mut self, link: &Link) -> Result<(), ClientError> {
        if let Err(e) = link.ensure_open() {
            self.buf.clear();
            return Err(e);
        }
        if self.buf.is_empty() {
            return Ok(());
        }
        let mut stream = &*link.stream;
        let written = stream.write_all(&self.buf).and_then(|()| stream.flush());
        self.buf.clear();
        written.map_err(|source| {
            link.set_broken();
            ClientError::Io {
                op: WRITE_OP,
                source,
            }
        })
    }

    /// Takes the id of the request just appended to the buffer; writes the
    /// buffer out when it is full.
    fn queued(&mut self, link: &Link) -> Result<u64, ClientError> {
        let id = self.take_id();
        self.frames_sent += 1;
        self.flush_if_full(link)?;
        Ok(id)
    }

    fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        id
    }

    fn flush_if_full(&mut self, link: &Link) -> Result<(), ClientError> {
        if self.buf.len() >= WRITE_FLUSH_BYTES {
            self.flush(link)
        } else {
            Ok(())
        }
    }
}

impl Inbox {
    /// A response kept aside, else the next frame.
    fn recv(&mut self, link: &Link) -> Result<Response, ClientError> {
        if let Some(response) = self.stashed.pop_front() {
            return Ok(response);
        }
        self.read_frame(link)
    }

    /// Reads responses until the one for `request_id` (or an error about
    /// no request, id 0), keeping the others for [`Self::recv`].
    fn wait_for(&mut self, link: &Link, request_id: u64) -> Result<Response, ClientError> {
        if let Some(i) = self.stashed.iter().position(|r| answers(r, request_id)) {
            if let Some(response) = self.stashed.remove(i) {
                return Ok(response);
            }
        }
        loop {
            let response = self.read_frame(link)?;
            if answers(&response, request_id) {
                return Ok(response);
            }
            if self.stashed.len() >= STASHED_MAX {
                return Err(ClientError::Unexpected {
                    what: format!(
                        "more than {STASHED_MAX} responses to other requests while waiting \
                         for request {request_id}"
                    ),
                });
            }
            self.stashed.push_back(response);
        }
    }

    /// Decodes the next frame from the read buffer, reading from the socket
    /// until one is whole.
    fn read_frame(&mut self, link: &Link) -> Result<Response, ClientError> {
        link.ensure_open()?;
        loop {
            let buffered = self.buf.get(self.pos..).unwrap_or(&[]);
            if !buffered.is_empty() {
                match protocol::decode_frame(buffered) {
                    Decoded::NeedMore { .. } => {}
                    Decoded::Frame {
                        header,
                        payload,
                        consumed,
                    } => {
                        let decoded = to_response(header.message_type, header.request_id, payload);
                        self.pos += consumed;
                        return decoded;
                    }
                    Decoded::Invalid {
                        error,
                        consumed,
                        request_id,
                    } => {
                        self.pos += consumed.max(1);
                        if error.is_fatal() {
                            self.break_connection(link);
                        }
                        return Err(ClientError::Protocol {
                            request_id,
                            source: error,
                        });
                    }
                }
            }
            self.fill(link)?;
        }
    }

    /// Reads once from the socket into the read buffer, first dropping the
    /// bytes already decoded.
    fn fill(&mut self, link: &Link) -> Result<(), ClientError> {
        self.buf.drain(..self.pos.min(self.buf.len()));
        self.pos = 0;
        if self.buf.len() <= READ_BUFFER_KEEP_BYTES
            && self.buf.capacity() > 2 * READ_BUFFER_KEEP_BYTES
        {
            self.buf.shrink_to(READ_BUFFER_KEEP_BYTES);
        }
        let held = self.buf.len();
        // `decode_frame` never waits for more than one maximal frame, so
        // there is always room here.
        let room = READ_BUFFER_MAX.saturating_sub(held).min(self.scratch.len());
        let scratch = self.scratch.get_mut(..room).unwrap_or(&mut []);
        let mut stream = &*link.stream;
        let read = loop {
            match stream.read(scratch) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        let n = *read.as_ref().unwrap_or(&0);
        self.buf.extend_from_slice(scratch.get(..n).unwrap_or(&[]));
        match read {
            Ok(0) => {
                self.break_connection(link);
                Err(ClientError::Closed { buffered: held })
            }
            Ok(_) => Ok(()),
            Err(source) => {
                let timeout = matches!(
                    source.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                );
                if !timeout {
                    self.break_connection(link);
                }
                Err(ClientError::Io {
                    op: READ_OP,
                    source,
                })
            }
        }
    }

    fn break_connection(&mut self, link: &Link) {
        link.set_broken();
        self.buf = Vec::new();
        self.pos = 0;
    }
}

/// Whether `response` is the answer to `request_id`: its own, or an error
/// the server could not tie to any request.
fn answers(response: &Response, request_id: u64) -> bool {
    response.request_id == request_id
        || (response.request_id == 0 && matches!(response.body, ResponseBody::Error { .. }))
}

/// The error for an answer of the wrong kind to a hello or ping.
fn unexpected_answer(request_id: u64, asked: &str, body: ResponseBody) -> ClientError {
    match body {
        ResponseBody::Error { code, message } => ClientError::Refused {
            request_id,
            code,
            message,
        },
        ResponseBody::Decision(_) => ClientError::Unexpected {
            what: format!("a decision answering the {asked} with request id {request_id}"),
        },
        ResponseBody::Pong(_) => ClientError::Unexpected {
            what: format!("a pong answering the {asked} with request id {request_id}"),
        },
        ResponseBody::HelloAck(_) => ClientError::Unexpected {
            what: format!("a hello_ack answering the {asked} with request id {request_id}"),
        },
    }
}

/// Decodes a whole frame's payload into a response; client-only message
/// types are [`ClientError::Unexpected`].
fn to_response(
    message_type: protocol::MessageType,
    request_id: u64,
    payload: &[u8],
) -> Result<Response, ClientError> {
    let message = protocol::decode_message(message_type, payload).map_err(|source| {
        ClientError::Protocol {
            request_id: Some(request_id),
            source,
        }
    })?;
    let body = match message {
        Message::Decision(decision) => ResponseBody::Decision(decision),
        Message::Error(e) => ResponseBody::Error {
            code: e.code,
            message: e.message.to_owned(),
        },
        Message::Pong(nonce) => ResponseBody::Pong(nonce),
        Message::HelloAck(ack) => ResponseBody::HelloAck(ack),
        Message::Hello(_)
        | Message::Ping(_)
        | Message::ScoreContext(_)
        | Message::ScoreOpenRtb { .. } => {
            return Err(ClientError::Unexpected {
                what: format!(
                    "a {message_type} frame (request id {request_id}), which only clients send"
                ),
            })
        }
    };
    Ok(Response { request_id, body })
}
