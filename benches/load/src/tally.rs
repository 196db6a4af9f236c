//! What a run measured: counts of each kind of answer and the latency
//! histograms ([`Tally`]).
//!
//! Latencies are recorded in ns into hdrhistograms with the engine's fixed
//! bounds (1 ns to 60 s, 3 significant digits: about 200 KiB each), so
//! tallies merge exactly and their memory does not grow with the requests.
//! Receiver threads batch their samples and record them under one lock,
//! so a run keeps one tally however many connections it has.

use crate::{new_histogram, LATENCY_NS_MAX};
use cx_wire::protocol::ErrorCode;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Label of a response the codec refused, or of a kind that does not
/// answer what was sent (a pong or hello_ack to a score request, a
/// decision to an echo frame).
pub const INVALID_RESPONSE: &str = "invalid_response";

/// How the server answered one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A decision (with or without offers: it was accepted and decided);
    /// with the echo mix, the echoed `pong`; over HTTP, a `200` with a bid.
    Decision,
    /// Over HTTP, a `204`: the request was decided and nothing bid. An
    /// answer like [`Self::Decision`] (counted in [`Tally::ok`]), and
    /// counted apart in [`Tally::no_bids`].
    NoBid,
    /// An `error` frame with this code.
    Error(ErrorCode),
    /// Over HTTP, any status but `200` and `204` (labelled by
    /// [`status_label`]).
    Status(u16),
    /// A frame (or HTTP answer) the client could not read as an answer
    /// ([`INVALID_RESPONSE`]).
    Invalid,
}

/// The error label of an HTTP status other than `200` and `204`:
/// `http_400`, `http_503`, ... for the statuses the bidder sends
/// (`docs/SERVER.md`) and a few more, else its class (`http_4xx`).
pub fn status_label(status: u16) -> &'static str {
    const NAMED: [(u16, &str); 15] = [
        (400, "http_400"),
        (404, "http_404"),
        (405, "http_405"),
        (408, "http_408"),
        (411, "http_411"),
        (413, "http_413"),
        (415, "http_415"),
        (417, "http_417"),
        (429, "http_429"),
        (431, "http_431"),
        (500, "http_500"),
        (502, "http_502"),
        (503, "http_503"),
        (504, "http_504"),
        (505, "http_505"),
    ];
    if let Some((_, label)) = NAMED.iter().find(|(s, _)| *s == status) {
        return label;
    }
    match status / 100 {
        1 => "http_1xx",
        2 => "http_2xx",
        3 => "http_3xx",
        4 => "http_4xx",
        5 => "http_5xx",
        _ => "http_other",
    }
}

/// Counts and latency histograms of the answered, measured requests.
#[derive(Clone, Debug)]
pub struct Tally {
    /// Decisions (over HTTP: bids and no-bids).
    pub ok: u64,
    /// Of [`Self::ok`], the HTTP no-bids (`204`).
    pub no_bids: u64,
    /// `overloaded` errors.
    pub overloaded: u64,
    /// Every other error, by label ([`ErrorCode::label`] or
    /// [`INVALID_RESPONSE`]).
    pub errors_by_code: BTreeMap<&'static str, u64>,
    /// Responses that named no request this run sent (request id 0, or an
    /// id never used): not part of any other count.
    pub unattributed: u64,
    /// Latency of decisions, intended send time to arrival, ns.
    pub latency_ok: Histogram<u64>,
    /// Latency of every answer (decisions and errors), ns.
    pub latency_all: Histogram<u64>,
    /// Arrival of the last answer recorded, ns since the start.
    pub last_arrival_ns: u64,
}

impl Default for Tally {
    fn default() -> Self {
        Self::new()
    }
}

impl Tally {
    /// An empty tally.
    pub fn new() -> Self {
        Self {
            ok: 0,
            no_bids: 0,
            overloaded: 0,
            errors_by_code: BTreeMap::new(),
            unattributed: 0,
            latency_ok: new_histogram(),
            latency_all: new_histogram(),
            last_arrival_ns: 0,
        }
    }

    /// Records the answer to a request due at `intended_ns` that arrived at
    /// `arrival_ns` (both ns since the start): its latency counts from the
    /// intended time, however late the request actually went out.
    pub fn record(&mut self, intended_ns: u64, arrival_ns: u64, outcome: Outcome) {
        let latency_ns = arrival_ns
            .saturating_sub(intended_ns)
            .clamp(1, LATENCY_NS_MAX);
        self.latency_all.saturating_record(latency_ns);
        match outcome {
            Outcome::Decision | Outcome::NoBid => {
                self.ok += 1;
                self.no_bids += u64::from(outcome == Outcome::NoBid);
                self.latency_ok.saturating_record(latency_ns);
            }
            Outcome::Error(ErrorCode::Overloaded) => self.overloaded += 1,
            Outcome::Error(code) => *self.errors_by_code.entry(code.label()).or_default() += 1,
            Outcome::Status(status) => {
                *self.errors_by_code.entry(status_label(status)).or_default() += 1
            }
            Outcome::Invalid => *self.errors_by_code.entry(INVALID_RESPONSE).or_default() += 1,
        }
        self.last_arrival_ns = self.last_arrival_ns.max(arrival_ns);
    }

    /// Errors of every kind, `overloaded` included.
    pub fn errors(&self) -> u64 {
        self.overloaded + self.errors_by_code.values().sum::<u64>()
    }

    /// Requests answered: decisions and errors.
    pub fn answered(&self) -> u64 {
        self.ok + self.errors()
    }

    /// Adds `other`'s counts and histograms to this tally.
    pub fn merge(&mut self, other: &Tally) {
        self.ok += other.ok;
        self.no_bids += other.no_bids;
        self.overloaded += other.overloaded;
        for (label, n) in &other.errors_by_code {
            *self.errors_by_code.entry(label).or_default() += n;
        }
        self.unattributed += other.unattributed;
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.latency_ok.add(&other.latency_ok);
        let _ = self.latency_all.add(&other.latency_all);
        self.last_arrival_ns = self.last_arrival_ns.max(other.last_arrival_ns);
    }
}

/// One answer as a receiver thread saw it, before it is recorded.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sample {
    pub intended_ns: u64,
    pub arrival_ns: u64,
    pub outcome: Outcome,
}

/// Samples a receiver keeps before it takes the shared tally's lock.
pub(crate) const SAMPLE_BATCH: usize = 256;

/// The run's one tally, shared by the receiver threads.
#[derive(Debug, Default)]
pub(crate) struct SharedTally {
    inner: Mutex<Tally>,
}

impl SharedTally {
    /// Records and empties `samples`; adds `unattributed` responses.
    pub fn record_all(&self, samples: &mut Vec<Sample>, unattributed: u64) {
        // A receiver that panicked while holding the lock leaves a tally
        // that is still consistent (every update is a whole sample).
        let mut tally = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for s in samples.drain(..) {
            tally.record(s.intended_ns, s.arrival_ns, s.outcome);
        }
        tally.unattributed += unattributed;
    }

    /// Takes the tally out (once every receiver is done), leaving an
    /// empty one.
    pub fn take(&self) -> Tally {
        let mut tally = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::take(&mut *tally)
    }
}
