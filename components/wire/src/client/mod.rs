//! A blocking, pipelined client of the binary wire protocol
//! (`docs/PROTOCOL.md`) over one [`TcpStream`].
//!
//! This module owns the client side of a connection: the request ids it
//! hands out, a write buffer that coalesces requests (many frames go out in
//! one `write`), a bounded read buffer, the decoding of the server's
//! frames into [`Response`]s, and the split of a connection into a
//! sending and a receiving half. The two sides' state lives in two
//! separate structs, so that a split moves each to its own thread with no
//! lock and no copy; a [`Client`] is simply the two halves over one socket. It speaks the protocol through
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
//! [`Client::score_context`], [`Client::feedback`], [`Client::ping`],
//! [`Client::hello`]) send one
//! request and wait for its answer; responses to other requests that
//! arrive meanwhile are kept and returned by later calls to
//! [`Client::recv`].
//!
//! ```no_run
//! use cx_wire::client::{Client, ResponseBody};
//!
//! let mut client = Client::connect("127.0.0.1:7070")?;
//! client.hello()?;
//! let json = br#"{"id": "r1", "imp": [{"id": "1", "banner": {"w": 300, "h": 250}}], "site": {"id": "s1"}}"#;
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

mod error;
mod io;
mod response;

pub use error::ClientError;
pub use response::{Response, ResponseBody};

use crate::protocol::{self, limits, Hello, HelloAck};
use cx_features::RequestContext;
use io::{Inbox, Link, Outbox};
use response::unexpected_answer;
use std::collections::VecDeque;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::AtomicBool;
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

/// A blocking, pipelined protocol client over one TCP connection: a
/// [`ClientWriter`] and a [`ClientReader`] over one socket, which
/// [`Client::split`] hands out. Its own methods are the two halves' plus
/// the round trips that need both. See the [module docs](self).
#[derive(Debug)]
pub struct Client {
    writer: ClientWriter,
    reader: ClientReader,
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
        let link = Link {
            stream: Arc::new(stream),
            broken: Arc::new(AtomicBool::new(false)),
        };
        let writer = ClientWriter {
            link: link.clone(),
            outbox: Outbox {
                buf: Vec::with_capacity(4096),
                next_id: 1,
                frames_sent: 0,
            },
            ack: None,
        };
        let reader = ClientReader {
            link,
            inbox: Inbox {
                buf: Vec::new(),
                scratch: vec![0; READ_CHUNK_BYTES].into_boxed_slice(),
                pos: 0,
                stashed: VecDeque::new(),
            },
        };
        Ok(Self { writer, reader })
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
        (self.writer, self.reader)
    }

    /// Sets the read and write timeout (`None`: wait forever). A call that
    /// times out fails with an error whose
    /// [`is_timeout`](ClientError::is_timeout) is true. A read that timed
    /// out loses nothing and may be repeated; a write that timed out breaks
    /// the connection (part of a frame may have been sent).
    pub fn set_timeout(&mut self, timeout: Option<Duration>) -> Result<(), ClientError> {
        self.reader.set_read_timeout(timeout)?;
        self.writer.set_write_timeout(timeout)
    }

    /// The server's `hello_ack`, once [`Self::hello`] succeeded.
    pub fn hello_ack(&self) -> Option<HelloAck> {
        self.writer.ack
    }

    /// The request id the next `send_*` will use (ids count up from 1 and
    /// skip 0, which the server uses for errors about no request).
    pub fn next_request_id(&self) -> u64 {
        self.writer.next_request_id()
    }

    /// Negotiates the version: sends a `hello` (this build's versions) and
    /// waits for its `hello_ack`. Only valid as the connection's first
    /// request; an `error` answer is [`ClientError::Refused`].
    pub fn hello(&mut self) -> Result<HelloAck, ClientError> {
        let outbox = &mut self.writer.outbox;
        if outbox.frames_sent > 0 {
            return Err(ClientError::Unexpected {
                what: "hello asked for after other requests: it must be the first frame".into(),
            });
        }
        let id = outbox.take_id();
        let offered = Hello::ours();
        protocol::encode_hello(&mut outbox.buf, id, offered);
        outbox.frames_sent += 1;
        self.flush()?;
        let response = self.reader.wait_for(id)?;
        match response.body {
            ResponseBody::HelloAck(ack)
                if !(offered.min_version..=offered.max_version).contains(&ack.version) =>
            {
                self.writer.link.set_broken();
                Err(ClientError::VersionOutOfRange {
                    chosen: ack.version,
                    min: offered.min_version,
                    max: offered.max_version,
                })
            }
            ResponseBody::HelloAck(ack) => {
                self.writer.ack = Some(ack);
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
        self.writer.send_openrtb(json, simulate)
    }

    /// [`Self::send_openrtb`] with every flag: `bid_response` asks for the
    /// answer as a [`ResponseBody::BidResponse`].
    pub fn send_openrtb_with(
        &mut self,
        json: &[u8],
        flags: protocol::OpenRtbFlags,
    ) -> Result<u64, ClientError> {
        self.writer.send_openrtb_with(json, flags)
    }

    /// Queues a `score_context` request; returns its request id. A string
    /// or list over its limit, or a non-finite number, is refused
    /// ([`ClientError::Encode`]) and nothing is queued.
    pub fn send_context(
        &mut self,
        ctx: &RequestContext,
        simulate: bool,
    ) -> Result<u64, ClientError> {
        self.writer.send_context(ctx, simulate)
    }

    /// [`Self::send_context`] with every flag: `decision_ids` asks for the
    /// decision id in the answer
    /// ([`ImpDecision::decision_id`](protocol::ImpDecision::decision_id)).
    pub fn send_context_with(
        &mut self,
        ctx: &RequestContext,
        flags: protocol::ContextFlags,
    ) -> Result<u64, ClientError> {
        self.writer.send_context_with(ctx, flags)
    }

    /// Queues a `feedback` message carrying `events` (1 to
    /// [`limits::FEEDBACK_EVENTS_MAX`]); returns its request id. A batch
    /// or id over its limit is refused ([`ClientError::Encode`]) and
    /// nothing is queued.
    pub fn send_feedback(
        &mut self,
        events: &[protocol::FeedbackEvent<'_>],
    ) -> Result<u64, ClientError> {
        self.writer.send_feedback(events)
    }

    /// Queues a `put_features` message carrying `items` (1 to
    /// [`limits::PUT_FEATURES_ITEMS_MAX`]); returns its request id. A batch
    /// or string over its limit is refused ([`ClientError::Encode`]) and
    /// nothing is queued.
    pub fn send_put_features(
        &mut self,
        items: &[protocol::FeatureItem<'_>],
    ) -> Result<u64, ClientError> {
        self.writer.send_put_features(items)
    }

    /// Queues a `ping` carrying `nonce`; returns its request id.
    pub fn send_ping(&mut self, nonce: u64) -> Result<u64, ClientError> {
        self.writer.send_ping(nonce)
    }

    /// Queues bytes as they are, after the frames already queued (for
    /// tests of the server's handling of malformed frames); writes them
    /// out at [`WRITE_FLUSH_BYTES`] like any request.
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.writer.send_raw(bytes)
    }

    /// Writes every queued request to the socket.
    pub fn flush(&mut self) -> Result<(), ClientError> {
        self.writer.flush()
    }

    /// The next response: one kept aside by a round trip, else the next
    /// frame from the socket (reading as needed). Does not flush.
    pub fn recv(&mut self) -> Result<Response, ClientError> {
        self.reader.recv()
    }

    /// Round trip: sends a `score_openrtb` request and waits for its
    /// answer (a decision or an error frame).
    pub fn score_openrtb(&mut self, json: &[u8], simulate: bool) -> Result<Response, ClientError> {
        let id = self.send_openrtb(json, simulate)?;
        self.flush()?;
        self.reader.wait_for(id)
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
        self.reader.wait_for(id)
    }

    /// Round trip: sends a `feedback` message and waits for its
    /// `feedback_ack`; an `error` answer is [`ClientError::Refused`].
    pub fn feedback(
        &mut self,
        events: &[protocol::FeedbackEvent<'_>],
    ) -> Result<protocol::FeedbackAck, ClientError> {
        let id = self.send_feedback(events)?;
        self.flush()?;
        let response = self.reader.wait_for(id)?;
        match response.body {
            ResponseBody::FeedbackAck(ack) => Ok(ack),
            other => Err(unexpected_answer(response.request_id, "feedback", other)),
        }
    }

    /// Round trip: sends a `put_features` message and waits for its
    /// `put_features_ack`; an `error` answer is [`ClientError::Refused`].
    pub fn put_features(
        &mut self,
        items: &[protocol::FeatureItem<'_>],
    ) -> Result<protocol::PutFeaturesAck, ClientError> {
        let id = self.send_put_features(items)?;
        self.flush()?;
        let response = self.reader.wait_for(id)?;
        match response.body {
            ResponseBody::PutFeaturesAck(ack) => Ok(ack),
            other => Err(unexpected_answer(
                response.request_id,
                "put_features",
                other,
            )),
        }
    }

    /// Round trip: pings with `nonce` and waits for the pong; an answer
    /// other than a pong with the same nonce is an error.
    pub fn ping(&mut self, nonce: u64) -> Result<(), ClientError> {
        let id = self.send_ping(nonce)?;
        self.flush()?;
        let response = self.reader.wait_for(id)?;
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
        let flags = protocol::OpenRtbFlags {
            simulate,
            ..protocol::OpenRtbFlags::default()
        };
        self.outbox.send_openrtb(&self.link, json, flags)
    }

    /// Queues a `score_openrtb` request with every flag; returns its
    /// request id (see [`Client::send_openrtb_with`]).
    pub fn send_openrtb_with(
        &mut self,
        json: &[u8],
        flags: protocol::OpenRtbFlags,
    ) -> Result<u64, ClientError> {
        self.outbox.send_openrtb(&self.link, json, flags)
    }

    /// Queues a `score_context` request; returns its request id (see
    /// [`Client::send_context`]).
    pub fn send_context(
        &mut self,
        ctx: &RequestContext,
        simulate: bool,
    ) -> Result<u64, ClientError> {
        let flags = protocol::ContextFlags {
            simulate,
            decision_ids: false,
        };
        self.outbox.send_context(&self.link, ctx, flags)
    }

    /// Queues a `score_context` request with every flag; returns its
    /// request id (see [`Client::send_context_with`]).
    pub fn send_context_with(
        &mut self,
        ctx: &RequestContext,
        flags: protocol::ContextFlags,
    ) -> Result<u64, ClientError> {
        self.outbox.send_context(&self.link, ctx, flags)
    }

    /// Queues a `feedback` message; returns its request id (see
    /// [`Client::send_feedback`]).
    pub fn send_feedback(
        &mut self,
        events: &[protocol::FeedbackEvent<'_>],
    ) -> Result<u64, ClientError> {
        self.outbox.send_feedback(&self.link, events)
    }

    /// Queues a `put_features` message; returns its request id (see
    /// [`Client::send_put_features`]).
    pub fn send_put_features(
        &mut self,
        items: &[protocol::FeatureItem<'_>],
    ) -> Result<u64, ClientError> {
        self.outbox.send_put_features(&self.link, items)
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

    /// The response to `request_id`, keeping the others that arrive
    /// first for [`Self::recv`].
    fn wait_for(&mut self, request_id: u64) -> Result<Response, ClientError> {
        self.inbox.wait_for(&self.link, request_id)
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
