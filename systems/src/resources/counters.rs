//! What the pipeline counts: every outcome ([`Counters`]) and the
//! per-request latency of every stage ([`Latencies`]).

use bevy_ecs::prelude::Resource;
use cx_domain::pipeline::{NoBidCause, Stage};
use hdrhistogram::Histogram;

/// What the pipeline counted since it started.
#[derive(Resource, Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    /// Requests taken from the ingress.
    pub ingested: u64,
    /// Decisions emitted.
    pub decided: u64,
    /// Of those, simulated.
    pub simulated: u64,
    /// Of those, with no offer.
    pub no_offer: u64,
    /// No-offer decisions by cause, indexed like [`NoBidCause::ALL`].
    pub no_offer_by_cause: [u64; NoBidCause::COUNT],
    /// Rows scored by the model.
    pub inferred_rows: u64,
    /// Inference batches run.
    pub batches: u64,
    /// Batches the whole backend chain failed.
    pub failed_batches: u64,
    /// Model rows that failed validation.
    pub invalid_rows: u64,
    /// Rows scored by the fallback scorer.
    pub fallback_rows: u64,
    /// Rows nothing could score (no-offer decisions).
    pub failed_rows: u64,
    /// List items dropped by feature extraction (over the schema's limits).
    pub extract_dropped_items: u64,
    /// Oversized string values skipped by feature extraction.
    pub extract_oversized_values: u64,
    /// Numbers clamped by feature extraction.
    pub extract_clamped: u64,
    /// Winning offers whose budget refused the spend that decide had
    /// checked (impossible in process; a shared ledger can refuse it when
    /// another worker spent in between). The offer was withdrawn from the
    /// decision and the next one tried.
    pub spend_refused: u64,
    /// Winning offers whose user had reached the frequency cap by the time
    /// of the commit (another worker showed it in between). Withdrawn like
    /// `spend_refused`.
    pub cap_refused: u64,
    /// Decisions logged in the decision log (those that chose an offer for
    /// real).
    pub decisions_logged: u64,
    /// Logged auction bids evicted from a full decision log unsettled,
    /// whose reservation the decide system gave back.
    pub log_released: u64,
    /// Auction bids priced from their placement's learnt win rates.
    pub priced_learned: u64,
    /// Auction bids priced at a random price bucket (price exploration).
    pub priced_explored: u64,
    /// Times the respond system found the egress full and kept a decision
    /// for the next tick (cannot happen while admission holds).
    pub egress_full: u64,
}

/// Longest latency a histogram tells apart, ns (60 s); longer ones are
/// recorded as this.
pub const LATENCY_NS_MAX: u64 = 60_000_000_000;

/// Per-request latency histograms, ns. Fixed bounds, three significant
/// digits, so recording never allocates.
#[derive(Resource, Clone, Debug)]
pub struct Latencies {
    /// From `submit` to the ingest system taking the request.
    pub queue: Histogram<u64>,
    /// Per [`Stage`] (by [`Stage::index`]): from the start of that stage's
    /// run that took the request to the start of the next stage that took
    /// it (so `infer` includes any wait for a batch, and a cache hit's
    /// `cache` runs to `decide`); for `respond`, its own run.
    pub stages: [Histogram<u64>; Stage::COUNT],
    /// From `submit` to the end of the respond run that emitted it.
    pub total: Histogram<u64>,
    /// Per inference batch (not per request): the backend chain's wall
    /// time on it, from gathering its rows to its readout.
    pub inference_batch: Histogram<u64>,
}

impl Latencies {
    /// Empty histograms.
    pub fn new() -> Self {
        Self {
            queue: new_histogram(),
            stages: std::array::from_fn(|_| new_histogram()),
            total: new_histogram(),
            inference_batch: new_histogram(),
        }
    }

    /// Every histogram with its name, in order: `queue`, each stage,
    /// `total`.
    pub fn named(&self) -> impl Iterator<Item = (&'static str, &Histogram<u64>)> {
        std::iter::once(("queue", &self.queue))
            .chain(
                Stage::ALL
                    .iter()
                    .map(|s| (s.name(), &self.stages[s.index()])),
            )
            .chain(std::iter::once(("total", &self.total)))
    }
}

impl Default for Latencies {
    fn default() -> Self {
        Self::new()
    }
}

/// The wall time of each inference batch since an exporter last took them
/// ([`BatchTimes::take`]), ns, in order; bounded, so an engine nobody reads
/// from keeps the first [`BATCH_TIMES_MAX`] and counts the rest as dropped
/// (the [`Latencies::inference_batch`] histogram keeps them all).
#[derive(Resource, Debug)]
pub struct BatchTimes {
    ns: Vec<u64>,
    /// Batches not kept since the last take, for lack of room.
    pub dropped: u64,
}

/// Most batch times [`BatchTimes`] holds between two takes.
pub const BATCH_TIMES_MAX: usize = 4096;

impl BatchTimes {
    /// Empty, with room for [`BATCH_TIMES_MAX`].
    pub fn new() -> Self {
        Self {
            ns: Vec::with_capacity(BATCH_TIMES_MAX),
            dropped: 0,
        }
    }

    /// Records one batch's wall time.
    pub fn push(&mut self, ns: u64) {
        if self.ns.len() < BATCH_TIMES_MAX {
            self.ns.push(ns);
        } else {
            self.dropped += 1;
        }
    }

    /// Hands every recorded time to `f`, oldest first, and forgets them.
    pub fn take(&mut self, mut f: impl FnMut(u64)) {
        self.ns.drain(..).for_each(&mut f);
        self.dropped = 0;
    }
}

impl Default for BatchTimes {
    fn default() -> Self {
        Self::new()
    }
}

/// Records `ns` into `h`, clamped into its bounds.
pub fn record(h: &mut Histogram<u64>, ns: u64) {
    h.saturating_record(ns.clamp(1, LATENCY_NS_MAX));
}

/// An empty latency histogram with the fixed bounds.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_NS_MAX, 3).expect("constant bounds are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_are_named_queue_then_each_stage_then_total() {
        let names: Vec<&str> = Latencies::new().named().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "queue", "ingest", "features", "cache", "infer", "validate", "decide", "respond",
                "total"
            ]
        );
    }
}
