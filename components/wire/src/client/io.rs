//! The two halves' state and their socket work: the shared [`Link`], the
//! writer's [`Outbox`] (request ids, the coalescing write buffer) and the
//! reader's [`Inbox`] (the bounded read buffer, frame decoding, responses
//! kept aside by round trips).

use super::response::{answers, to_response};
use super::{
    ClientError, Response, READ_BUFFER_KEEP_BYTES, READ_BUFFER_MAX, STASHED_MAX, WRITE_FLUSH_BYTES,
};
use crate::protocol::{self, Decoded};
use cx_features::RequestContext;
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// [`ClientError::Io`]'s `op` for a failed read.
pub(super) const READ_OP: &str = "read from the server";

/// [`ClientError::Io`]'s `op` for a failed write.
const WRITE_OP: &str = "write to the server";

/// The socket and the connection's broken flag, shared by both halves of
/// a split client (reads and writes go through `&TcpStream`).
#[derive(Clone, Debug)]
pub(super) struct Link {
    pub(super) stream: Arc<TcpStream>,
    /// Set by the first fatal error on either half; every later call on
    /// either half fails with [`ClientError::Broken`].
    pub(super) broken: Arc<AtomicBool>,
}

impl Link {
    pub(super) fn ensure_open(&self) -> Result<(), ClientError> {
        if self.broken.load(Ordering::Acquire) {
            Err(ClientError::Broken)
        } else {
            Ok(())
        }
    }

    pub(super) fn set_broken(&self) {
        self.broken.store(true, Ordering::Release);
    }

    /// The error for a failed socket `op`: [`ClientError::TimedOut`] when
    /// the socket's `timeout` (as set now) ran out, else
    /// [`ClientError::Io`].
    pub(super) fn io_error(
        &self,
        op: &'static str,
        source: std::io::Error,
        timeout: std::io::Result<Option<std::time::Duration>>,
    ) -> ClientError {
        let timed_out = matches!(
            source.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        );
        match timeout {
            Ok(Some(after)) if timed_out => ClientError::TimedOut {
                op,
                after_ms: u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
            },
            _ => ClientError::Io { op, source },
        }
    }

    pub(super) fn socket_option(
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
pub(super) struct Outbox {
    pub(super) buf: Vec<u8>,
    pub(super) next_id: u64,
    pub(super) frames_sent: u64,
}

/// The receiving side's state: the read buffer and the responses kept
/// aside by round trips.
#[derive(Debug)]
pub(super) struct Inbox {
    pub(super) buf: Vec<u8>,
    /// Where each read lands before its bytes are appended to `buf`
    /// (allocated once, so a read costs a copy of what arrived rather than
    /// zeroing a whole chunk).
    pub(super) scratch: Box<[u8]>,
    /// Bytes at the front of `buf` already decoded.
    pub(super) pos: usize,
    /// Responses received by a round trip for other requests.
    pub(super) stashed: VecDeque<Response>,
}

impl Outbox {
    pub(super) fn send_openrtb(
        &mut self,
        link: &Link,
        json: &[u8],
        flags: protocol::OpenRtbFlags,
    ) -> Result<u64, ClientError> {
        link.ensure_open()?;
        protocol::encode_score_openrtb_with(&mut self.buf, self.next_id, json, flags).map_err(
            |source| ClientError::Encode {
                message: "score_openrtb",
                source,
            },
        )?;
        self.queued(link)
    }

    pub(super) fn send_context(
        &mut self,
        link: &Link,
        ctx: &RequestContext,
        flags: protocol::ContextFlags,
    ) -> Result<u64, ClientError> {
        link.ensure_open()?;
        protocol::encode_score_context_with(&mut self.buf, self.next_id, ctx, flags).map_err(
            |source| ClientError::Encode {
                message: "score_context",
                source,
            },
        )?;
        self.queued(link)
    }

    pub(super) fn send_feedback(
        &mut self,
        link: &Link,
        events: &[protocol::FeedbackEvent<'_>],
    ) -> Result<u64, ClientError> {
        link.ensure_open()?;
        protocol::encode_feedback(&mut self.buf, self.next_id, events).map_err(|source| {
            ClientError::Encode {
                message: "feedback",
                source,
            }
        })?;
        self.queued(link)
    }

    pub(super) fn send_put_features(
        &mut self,
        link: &Link,
        items: &[protocol::FeatureItem<'_>],
    ) -> Result<u64, ClientError> {
        link.ensure_open()?;
        protocol::encode_put_features(&mut self.buf, self.next_id, items).map_err(|source| {
            ClientError::Encode {
                message: "put_features",
                source,
            }
        })?;
        self.queued(link)
    }

    pub(super) fn send_ping(&mut self, link: &Link, nonce: u64) -> Result<u64, ClientError> {
        link.ensure_open()?;
        protocol::encode_ping(&mut self.buf, self.next_id, nonce);
        self.queued(link)
    }

    pub(super) fn send_raw(&mut self, link: &Link, bytes: &[u8]) -> Result<(), ClientError> {
        link.ensure_open()?;
        self.buf.extend_from_slice(bytes);
        self.frames_sent += 1;
        self.flush_if_full(link)
    }

    /// Writes the buffer out; a failure breaks the connection.
    pub(super) fn flush(&mut self, link: &Link) -> Result<(), ClientError> {
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
            link.io_error(WRITE_OP, source, link.stream.write_timeout())
        })
    }

    /// Takes the id of the request just appended to the buffer; writes the
    /// buffer out when it is full.
    pub(super) fn queued(&mut self, link: &Link) -> Result<u64, ClientError> {
        let id = self.take_id();
        self.frames_sent += 1;
        self.flush_if_full(link)?;
        Ok(id)
    }

    pub(super) fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        id
    }

    pub(super) fn flush_if_full(&mut self, link: &Link) -> Result<(), ClientError> {
        if self.buf.len() >= WRITE_FLUSH_BYTES {
            self.flush(link)
        } else {
            Ok(())
        }
    }
}

impl Inbox {
    /// A response kept aside, else the next frame.
    pub(super) fn recv(&mut self, link: &Link) -> Result<Response, ClientError> {
        if let Some(response) = self.stashed.pop_front() {
            return Ok(response);
        }
        self.read_frame(link)
    }

    /// Reads responses until the one for `request_id` (or an error about
    /// no request, id 0), keeping the others for [`Self::recv`].
    pub(super) fn wait_for(
        &mut self,
        link: &Link,
        request_id: u64,
    ) -> Result<Response, ClientError> {
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
    pub(super) fn read_frame(&mut self, link: &Link) -> Result<Response, ClientError> {
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
    pub(super) fn fill(&mut self, link: &Link) -> Result<(), ClientError> {
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
                let error = link.io_error(READ_OP, source, link.stream.read_timeout());
                if !error.is_timeout() {
                    self.break_connection(link);
                }
                Err(error)
            }
        }
    }

    pub(super) fn break_connection(&mut self, link: &Link) {
        link.set_broken();
        self.buf = Vec::new();
        self.pos = 0;
    }
}
