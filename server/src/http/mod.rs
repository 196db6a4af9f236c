//! The exchange-facing bidder: OpenRTB 2.5/2.6 bid requests as JSON over
//! HTTP/1.1 (`POST /openrtb2/bid`), and the exchanges' win, billing and
//! loss notices (`GET /notice/{win,bill,loss}`), on the same worker loops,
//! engine and limits as the binary protocol. See `docs/SERVER.md`,
//! "HTTP bidder".
//!
//! # What this module owns
//!
//! [`HttpConnection`]: one HTTP connection's state machine, without
//! sockets, driven by the worker exactly like the binary protocol's
//! [`Connection`](crate::conn::Connection): bytes in, engine submissions
//! through a [`Submit`] sink, decisions in, answer bytes out. Heads are read
//! with `httparse` ([`head`]); gzip bodies are inflated under a cap
//! ([`body`]); answers are written by [`answer`]; notice queries are read by
//! [`notice`].
//!
//! # Order and data layout
//!
//! HTTP/1.1 answers pipelined requests in the order they came, whatever
//! order the engine decides them in. Requests in flight sit in a queue
//! ([`limits::IN_FLIGHT_MAX`] at most) in arrival order. The front one's
//! answer is written straight into the write buffer once it is decided;
//! one decided behind an undecided one is rendered into its own buffer and
//! waits there (an allocation only on that path), then follows in order.
//! A request is found from its [`Owner`] by sequence number: the queue
//! holds consecutive sequence numbers, so the position is a subtraction.
//!
//! # Answers
//!
//! - `200` with the BidResponse; `204` (no body) on a no-bid, with the
//!   OpenRTB no-bid reason in `x-cx-nbr`, the logs and the metrics;
//! - `400` with a JSON error naming the field; `404`, `405`, `411`, `413`,
//!   `415`, `417`, `431`, `505` for what the head gets wrong;
//! - `503` while overloaded or draining, and for a request the engine's
//!   backlog would decide after its deadline (shed at admission rather
//!   than answered late);
//! - a request not decided by its deadline (its `tmax` less the network
//!   margin) gets a `204` with reason 1 (technical error); one whose
//!   `tmax` leaves no time at all gets a `204` with reason 15 (insufficient
//!   auction time) without being decided.

pub mod answer;
pub mod body;
pub mod head;
pub mod limits;
pub mod notice;
mod queue;

pub use queue::HttpConnection;

use crate::conn::Owner;

/// Settings every HTTP connection of a server shares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpSettings {
    /// The path bid requests are POSTed to (`/openrtb2/bid`).
    pub bid_path: String,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            bid_path: "/openrtb2/bid".into(),
        }
    }
}

/// What an HTTP connection did since the event loop last asked, for the
/// metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HttpCounts {
    /// Requests whose head was read.
    pub requests: u64,
    /// Answers by status, indexed like [`STATUSES`].
    pub answers: [u64; STATUSES.len()],
    /// No-bids by OpenRTB no-bid reason code (0 to 17).
    pub no_bids: [u64; NO_BID_CODES],
    /// Requests whose deadline passed before they were decided.
    pub deadline_expired: u64,
    /// Requests shed at admission (`503`) because the engine's backlog
    /// would decide them after their deadline.
    pub deadline_shed: u64,
    /// Notices by kind (win, bill, loss) and how they matched (first,
    /// duplicate, unknown, invalid).
    pub notices: [[u64; 4]; 3],
}

/// No-bid reason codes counted (OpenRTB 2.6 list 5.24: 0 to 17).
pub const NO_BID_CODES: usize = 18;

/// The statuses the bidder answers with, in metric order.
pub const STATUSES: [u16; 13] = [
    200, 204, 400, 404, 405, 411, 413, 415, 417, 431, 500, 503, 505,
];

impl HttpCounts {
    fn answered(&mut self, status: u16) {
        // A status outside the list (never sent) would count as a 500.
        let index_of = |wanted: u16| STATUSES.iter().position(|&s| s == wanted);
        let Some(i) = index_of(status).or_else(|| index_of(500)) else {
            return;
        };
        if let Some(n) = self.answers.get_mut(i) {
            *n += 1;
        }
    }

    fn no_bid(&mut self, code: u32) {
        let i = (code as usize).min(NO_BID_CODES - 1);
        if let Some(n) = self.no_bids.get_mut(i) {
            *n += 1;
        }
    }
}

/// The owner of impression `imp` of the HTTP request `seq`.
fn owner(imp: usize, seq: u64) -> Owner {
    Owner::new(0, imp as u32, seq)
}
