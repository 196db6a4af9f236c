//! The two protocols a worker's connections speak, as one closed enum the
//! worker holds per connection ([`Conn`]): the binary protocol
//! ([`Connection`]) and the HTTP bidder ([`HttpConnection`]). Each method
//! is one `match`; the worker never asks which protocol a connection
//! speaks except to publish its counts.

use crate::conn::{Connection, ImpLists, Owner, Respond, Submit};
use crate::http::HttpConnection;
use crate::metrics::Metrics;
use cx_domain::pipeline::Decision;
use cx_wire::protocol::ErrorCode;

/// Which listener a connection came from (the discriminant indexes the
/// event loops' listener arrays).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// The binary protocol (`docs/PROTOCOL.md`).
    Binary = 0,
    /// OpenRTB over HTTP/1.1.
    Http = 1,
}

/// One connection's protocol state. An HTTP connection is boxed: it holds
/// its counts and scratch buffers inline (about 600 bytes), and the slab
/// of connection slots should not pay that for every binary connection.
/// The binary one stays inline (the lint's advice would box it too): it is
/// the protocol of the allocation-free path, and its slot is reused.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Conn {
    Binary(Connection),
    Http(Box<HttpConnection>),
}

impl Conn {
    /// Publishes what the connection did since the last call.
    pub(crate) fn publish_counts(&mut self, metrics: &Metrics) {
        match self {
            Self::Binary(c) => {
                let counts = c.take_counts();
                metrics.add_frames_received(counts.frames_received);
                metrics.add_frames_sent(counts.frames_sent);
                for (&code, &n) in ErrorCode::ALL.iter().zip(&counts.errors) {
                    if n > 0 {
                        metrics.add_errors(code, n);
                    }
                }
                metrics.add_deadline(counts.deadline_expired, counts.deadline_shed);
            }
            Self::Http(c) => metrics.add_http(&c.take_counts()),
        }
    }

    pub(crate) fn buffered_input(&self) -> usize {
        match self {
            Self::Binary(c) => c.buffered_input(),
            Self::Http(c) => c.io().read.len(),
        }
    }

    pub(crate) fn consume_output(&mut self, n: usize) {
        match self {
            Self::Binary(c) => c.consume_output(n),
            Self::Http(c) => c.io_mut().consume_output(n),
        }
    }

    /// Requests (frames, HTTP requests) read so far.
    pub(crate) fn frames_seen(&self) -> u64 {
        match self {
            Self::Binary(c) => c.frames_seen(),
            Self::Http(c) => c.requests_seen(),
        }
    }

    pub(crate) fn in_flight(&self) -> usize {
        match self {
            Self::Binary(c) => c.in_flight(),
            Self::Http(c) => c.in_flight(),
        }
    }

    pub(crate) fn is_closing(&self) -> bool {
        match self {
            Self::Binary(c) => c.is_closing(),
            Self::Http(c) => c.is_closing(),
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        match self {
            Self::Binary(c) => c.is_done(),
            Self::Http(c) => c.is_done(),
        }
    }

    /// Whether the connection takes no input now (its output is over the
    /// pause threshold; for HTTP also: its request queue is full).
    pub(crate) fn is_write_paused(&self) -> bool {
        match self {
            Self::Binary(c) => c.is_write_paused(),
            Self::Http(c) => c.is_paused(),
        }
    }

    pub(crate) fn large_frame_bytes(&self) -> usize {
        match self {
            Self::Binary(c) => c.large_frame_bytes(),
            Self::Http(c) => c.io().large_frame_bytes(),
        }
    }

    pub(crate) fn on_bytes(
        &mut self,
        bytes: &[u8],
        sink: &mut impl Submit,
        lists: &mut ImpLists,
    ) -> usize {
        match self {
            Self::Binary(c) => c.on_bytes(bytes, sink, lists),
            Self::Http(c) => c.on_bytes(bytes, sink, lists),
        }
    }

    /// Echo mode, binary listener only (an HTTP connection takes nothing).
    pub(crate) fn on_echo_bytes(&mut self, bytes: &[u8]) -> usize {
        match self {
            Self::Binary(c) => c.on_echo_bytes(bytes),
            Self::Http(_) => 0,
        }
    }

    pub(crate) fn on_decision(
        &mut self,
        owner: Owner,
        decision: Decision,
        lists: &mut ImpLists,
        respond: &mut impl Respond,
    ) {
        match self {
            Self::Binary(c) => c.on_decision(owner, decision, lists, respond),
            Self::Http(c) => c.on_decision(owner, decision, lists, respond),
        }
    }

    pub(crate) fn output(&self) -> &[u8] {
        match self {
            Self::Binary(c) => c.output(),
            Self::Http(c) => c.io().output(),
        }
    }

    pub(crate) fn read_capacity(&self) -> usize {
        match self {
            Self::Binary(c) => c.read_capacity(),
            Self::Http(c) => c.read_capacity(),
        }
    }

    pub(crate) fn set_large_reserved(&mut self, bytes: usize) {
        match self {
            Self::Binary(c) => c.set_large_reserved(bytes),
            Self::Http(c) => c.io_mut().set_large_reserved(bytes),
        }
    }

    pub(crate) fn set_write_pause_bytes(&mut self, bytes: usize) {
        match self {
            Self::Binary(c) => c.set_write_pause_bytes(bytes),
            Self::Http(c) => c.io_mut().set_write_pause_bytes(bytes),
        }
    }

    pub(crate) fn shutdown(&mut self) {
        match self {
            Self::Binary(c) => c.shutdown(),
            Self::Http(c) => c.shutdown(),
        }
    }

    pub(crate) fn wants_read(&self) -> bool {
        match self {
            Self::Binary(c) => c.wants_read(),
            Self::Http(c) => c.wants_read(),
        }
    }
}
