//! The open-loop load generator: offers a fixed request rate to a running
//! decision server (`cx serve`) over the binary protocol, or to its OpenRTB
//! HTTP bidder ([`Wire::Http`]), and measures each request's latency from
//! the moment it was *due*, not the moment it went out.
//!
//! This module owns the load's options ([`LoadConfig`], with their
//! bounds), the request mix ([`RequestPool`]: synthetic contexts,
//! replayed OpenRTB documents, or `pong` frames for the echo baseline), the send schedule ([`Schedule`],
//! [`Pacer`]), the threads that drive the connections ([`run`]), what they
//! measure ([`Tally`], [`LoadReport`]), the rate sweep ([`sweep`]) and its
//! plot ([`plot`]). It talks to the binary protocol only through
//! [`cx_wire::client`], split into a writer and a reader per connection,
//! and to the HTTP bidder through [`http`]: precomputed requests, answers
//! framed by `httparse` and `Content-Length`, matched in order. The wire is
//! a switch at the two points where it matters (queueing a request, reading
//! an answer); everything else is shared.
//!
//! # Timing
//!
//! Request `i` (numbered over all connections) is due at
//! `start + i / rate`. Its latency runs from that intended time to the
//! arrival of its response. When the generator falls behind (its thread
//! was descheduled, or a connection already had `depth` requests in
//! flight), the request goes out late and its latency still counts from
//! when it was due, so a stalled server cannot hide behind a stalled
//! client (no coordinated omission). How late requests went out is
//! reported separately ([`LoadReport::send_lag`]), so that a saturated
//! generator can be told from a slow server.
//!
//! Requests due during the warm-up (`--warmup-s`) are sent but not
//! counted. After the measured window, the generator keeps sending the
//! backlog and reading answers for at most `--drain-s`; what is left then
//! is counted as unsent or unanswered, never dropped silently.
//!
//! # Threads and data layout
//!
//! Request `i` goes to connection `i mod connections`, so connection `c`
//! sends `c, c + N, c + 2N, ...` in order and request ids on it are
//! consecutive. A response's request id therefore gives its schedule slot
//! by arithmetic ([`Schedule::intended_ns`]): the sender and the receivers
//! share no table of send times, only two counters per connection (sent,
//! answered) that bound the depth. One sender thread keeps the whole
//! schedule (writes are coalesced: every request due at one pass goes out
//! in one write per connection); each connection has its own receiver
//! thread blocked in `recv`. Receivers hand their samples to one shared
//! [`Tally`] in batches, so a run with 1024 connections holds two
//! histograms, not 2048, at the cost of a lock taken once per batch.
//!
//! The request mix is built before the clock starts and cycled:
//! [`RequestPool`] keeps owned contexts (or documents in one byte arena)
//! rather than encoded frames, because the client numbers a request when
//! it encodes it; encoding costs a fraction of a microsecond per request.

mod config;
pub mod error;
pub mod http;
pub mod plot;
mod pool;
mod report;
mod runner;
mod schedule;
pub mod sweep;
mod tally;
mod wire;

pub use config::{check_count, check_rate};
pub use config::{
    LoadConfig, Mix, Wire, CONNECTIONS_MAX, DEPTH_MAX, DRAIN_S_MAX, DURATION_S_MAX, HTTP_DEPTH_MAX,
    MIX_FILE_BYTES_MAX, POOL_MAX, RATE_PER_S_MAX, WARMUP_S_MAX,
};
pub use error::{Error, Result};
pub use pool::RequestPool;
pub use report::{write_json, write_text, LoadReport, Percentiles};
pub use runner::{run, run_with_pool};
pub use schedule::{Clock, ManualClock, MonotonicClock, Pacer, Schedule};
pub use sweep::{run_sweep, SweepConfig, SweepReport, SweepStep};
pub use tally::{status_label, Outcome, Tally, INVALID_RESPONSE};

/// Longest latency a histogram tells apart, ns (60 s); longer ones are
/// recorded as this.
pub const LATENCY_NS_MAX: u64 = 60_000_000_000;

/// An empty latency histogram: 1 ns to [`LATENCY_NS_MAX`], three
/// significant digits, so recording never allocates.
pub fn new_histogram() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(1, LATENCY_NS_MAX, 3)
        .expect("constant bounds are valid")
}
