//! The worker's share of the feature store's metrics: what feedback did
//! to the store through its engine (every worker publishes its own
//! engine's counts), and, in the one worker given the store to watch
//! ([`Worker::watch_feature_health`]), the store's health, published every
//! [`HEALTH_INTERVAL_NS`], with a log line when a feature's stale warning
//! turns on (`warn`) or off (`info`).

use super::Worker;
use cx_engine::feature_store::FeatureFeedbackCounts;
use cx_engine::featurestore::{FeatureBackend, HealthReport, OnlineFeatures, StoreStats};

/// How often the watching worker reads the store's health, ns (reading it
/// locks each of the shared store's shards in turn for a moment).
pub const HEALTH_INTERVAL_NS: u64 = 1_000_000_000;

/// What the worker last published of the feature store.
#[derive(Debug, Default)]
pub(super) struct FeaturePublishing {
    /// The engine's feedback counts when last published.
    feedback: FeatureFeedbackCounts,
    /// The store this worker watches the health of, if any.
    health: Option<HealthWatch>,
}

#[derive(Debug)]
struct HealthWatch {
    backend: FeatureBackend,
    last: Option<HealthReport>,
    stats: StoreStats,
    next_due_ns: u64,
}

impl Worker {
    /// Publishes the store's health from this worker (one worker of a
    /// server does, for all: the store is shared).
    pub fn watch_feature_health(&mut self, backend: FeatureBackend) {
        self.features.health = Some(HealthWatch {
            backend,
            last: None,
            stats: StoreStats::default(),
            next_due_ns: 0,
        });
    }

    /// Adds the engine's feature feedback counts since the last call to
    /// the metrics; publishes the store's health when due. Run at
    /// housekeeping.
    pub(super) fn publish_features(&mut self) {
        if let Some(now) = self.engine.feature_feedback_counts() {
            let before = std::mem::replace(&mut self.features.feedback, now);
            if now != before {
                self.metrics.add_feature_feedback(&before, &now);
            }
        }
        let now_ns = crate::serve::unix_now_ns();
        let Some(watch) = self.features.health.as_mut() else {
            return;
        };
        if now_ns < watch.next_due_ns {
            return;
        }
        watch.next_due_ns = now_ns.saturating_add(HEALTH_INTERVAL_NS);
        let report = watch.backend.health();
        let stats = watch.backend.stats();
        self.metrics
            .publish_feature_health(watch.last.as_ref(), &report, &watch.stats, &stats);
        log_warning_changes(watch.last.as_ref(), &report);
        watch.last = Some(report);
        watch.stats = stats;
    }
}

/// Logs each feature whose stale warning turned on or off since `before`.
fn log_warning_changes(before: Option<&HealthReport>, now: &HealthReport) {
    for (i, f) in now.features.iter().enumerate() {
        let was = before
            .and_then(|b| b.features.get(i))
            .is_some_and(|b| b.warning);
        if f.warning && !was {
            tracing::warn!(
                feature = %f.name,
                stale = f.counts.stale,
                reads = f.counts.reads(),
                stale_share = f.stale_share,
                threshold = now.policy.stale_warn_share,
                "feature store: a feature reads stale more often than features.stale_warn_share \
                 allows; its writer may have stopped"
            );
        } else if was && !f.warning {
            tracing::info!(feature = %f.name, stale_share = f.stale_share, "feature store: stale warning cleared");
        }
    }
}
