//! The feedback loop's metrics: what the engines did with the events they
//! took (from the binary protocol's `feedback`, the HTTP notices, and held
//! events joined later), and the state of the decision log the workers
//! share.
//!
//! - `cx_feedback_events_total{kind,result}`: events applied, per kind
//!   (`result="applied"`); events held for a decision not logged yet and
//!   events refused carry `kind="any"` (the engine counts them without
//!   their kind).
//! - `cx_feedback_refused_total{reason}`: refusals per reason
//!   (`EventRefusal::label`).
//! - `cx_decision_log_*` gauges: the shared log's open bids, held events,
//!   and its cumulative evicted-open, expired-unsettled and dangling counts.
//!   The log is one for all workers, so these are set (each worker sets
//!   the same values), not added.
//!
//! Every series exists from the first scrape with 0.

use cx_domain::feedback::{EventKind, EventRefusal};
use cx_domain::store::LogStats;
use cx_engine::feedback::FeedbackCounts;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// The feedback counters and the decision log's gauges.
#[derive(Debug)]
pub(super) struct FeedbackMetrics {
    /// Applied, by [`EventKind::index`].
    applied: Vec<Counter>,
    held: Counter,
    refused_events: Counter,
    /// By [`EventRefusal::index`].
    refused: Vec<Counter>,
    log_open_bids: Gauge,
    log_held: Gauge,
    log_evicted_open: Gauge,
    log_expired_unsettled: Gauge,
    log_dangling: Gauge,
}

impl FeedbackMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let events = Family::<Labels, Counter>::default();
        registry.register(
            "cx_feedback_events",
            "Feedback events (binary feedback messages, HTTP notices) by kind and result: applied per kind; held for a decision not logged yet and refused with kind=\"any\"",
            events.clone(),
        );
        let refused = Family::<Labels, Counter>::default();
        registry.register(
            "cx_feedback_refused",
            "Feedback events refused, by reason (a refused event changes nothing)",
            refused.clone(),
        );
        let series = |kind: &str, result: &str| {
            events.get_or_create_owned(&vec![
                ("kind", kind.to_owned()),
                ("result", result.to_owned()),
            ])
        };
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let metric = Gauge::default();
            registry.register(name, help, metric.clone());
            metric
        };
        Self {
            applied: EventKind::ALL
                .iter()
                .map(|k| series(k.label(), "applied"))
                .collect(),
            held: series("any", "held"),
            refused_events: series("any", "refused"),
            refused: EventRefusal::ALL
                .iter()
                .map(|r| refused.get_or_create_owned(&vec![("reason", r.label().to_owned())]))
                .collect(),
            log_open_bids: gauge(
                registry,
                "cx_decision_log_open_bids",
                "Auction bids in the decision log with neither a win nor a loss yet",
            ),
            log_held: gauge(
                registry,
                "cx_decision_log_held_events",
                "Events held now for a decision not logged yet (the backward window)",
            ),
            log_evicted_open: gauge(
                registry,
                "cx_decision_log_evicted_open",
                "Decisions evicted from the full log before their longest window closed, since start",
            ),
            log_expired_unsettled: gauge(
                registry,
                "cx_decision_log_expired_unsettled",
                "Auction bids settled as lost because their win window closed unanswered, since start",
            ),
            log_dangling: gauge(
                registry,
                "cx_decision_log_dangling_events",
                "Held events dropped because their decision never came within the backward window, since start",
            ),
        }
    }

    /// Adds what an engine did since `before` (its counts then) up to
    /// `now`.
    pub(super) fn add(&self, before: &FeedbackCounts, now: &FeedbackCounts) {
        let inc = |c: &Counter, b: u64, n: u64| {
            let d = n.saturating_sub(b);
            if d > 0 {
                c.inc_by(d);
            }
        };
        for ((c, &b), &n) in self.applied.iter().zip(&before.applied).zip(&now.applied) {
            inc(c, b, n);
        }
        inc(&self.held, before.held, now.held);
        let total = |counts: &FeedbackCounts| counts.refused.iter().sum::<u64>();
        inc(&self.refused_events, total(before), total(now));
        for ((c, &b), &n) in self.refused.iter().zip(&before.refused).zip(&now.refused) {
            inc(c, b, n);
        }
    }

    /// Sets the decision log's gauges.
    pub(super) fn set_log(&self, stats: &LogStats) {
        let set = |g: &Gauge, v: u64| {
            g.set(i64::try_from(v).unwrap_or(i64::MAX));
        };
        set(&self.log_open_bids, stats.open_bids);
        set(&self.log_held, stats.held);
        set(&self.log_evicted_open, stats.evicted_open);
        set(&self.log_expired_unsettled, stats.expired_unsettled);
        set(&self.log_dangling, stats.dangling);
    }
}
