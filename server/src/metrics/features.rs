//! The online feature store's metrics (`docs/SERVER.md`, "Feature
//! store"):
//!
//! - `cx_feature_reads_total{feature,freshness}`: reads of each stored
//!   feature by `fresh`, `stale` and `missing` (each read of a user counts
//!   every stored feature once);
//! - `cx_feature_writes_total{feature}`: values written;
//! - `cx_feature_age_seconds{feature,quantile}`: the p50 and p99 age of
//!   the values read since start (upper bounds of power-of-two buckets;
//!   0 before the first value read);
//! - `cx_feature_stale_warning{feature}`: 1 while more than the configured
//!   share of the feature's reads were stale (`features.stale_warn_share`,
//!   after `features.warn_min_reads` reads), else 0;
//! - `cx_feature_store_entities`, `cx_feature_store_evictions_total`: users
//!   held, and live users evicted for room;
//! - `cx_feature_feedback_updates_total{result}`: what feedback events did
//!   to the store (`Engine::feature_feedback_counts`): `effects` that wrote,
//!   values `written`, `outdated`, `refused`, and effects with `no_user`;
//! - `cx_feature_put_items_total{result}` and
//!   `cx_feature_put_refused_total{reason}`: `put_features` items written,
//!   outdated or refused, and the refusals by reason
//!   (`PUT_FEATURES_REFUSALS`).
//!
//! The per-feature series are made when the store's health is first
//! published (their names come from the definitions); the others exist
//! from the first scrape with 0. The store's counters are totals since it
//! was made; [`FeatureMetrics::publish_health`] adds what changed since the
//! report it was last given.

use cx_engine::feature_store::FeatureFeedbackCounts;
use cx_engine::featurestore::{HealthReport, StoreStats};
use cx_wire::protocol::{PutFeaturesAck, PUT_FEATURES_REFUSALS};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// The feature store's counters and gauges.
#[derive(Debug)]
pub(super) struct FeatureMetrics {
    reads: Family<Labels, Counter>,
    writes: Family<Labels, Counter>,
    age: Family<Labels, Gauge>,
    stale_warning: Family<Labels, Gauge>,
    entities: Gauge,
    evictions: Counter,
    /// effects, written, outdated, refused, no_user.
    feedback: [Counter; 5],
    /// written, outdated, refused.
    put_items: [Counter; 3],
    /// By refusal code - 1.
    put_refused: Vec<Counter>,
}

impl FeatureMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let family = |registry: &mut Registry, name: &str, help: &str| {
            let f = Family::<Labels, Counter>::default();
            registry.register(name, help, f.clone());
            f
        };
        let reads = family(
            registry,
            "cx_feature_reads",
            "Reads of each stored feature by freshness (fresh, stale: older than its TTL, missing)",
        );
        let writes = family(
            registry,
            "cx_feature_writes",
            "Values written per stored feature",
        );
        let age = Family::<Labels, Gauge>::default();
        registry.register(
            "cx_feature_age_seconds",
            "Age of the values read since start, p50 and p99 (bucket upper bounds, at most twice the true age)",
            age.clone(),
        );
        let stale_warning = Family::<Labels, Gauge>::default();
        registry.register(
            "cx_feature_stale_warning",
            "1 while more than features.stale_warn_share of the feature's reads were stale",
            stale_warning.clone(),
        );
        let entities = Gauge::default();
        registry.register(
            "cx_feature_store_entities",
            "Users the feature store holds",
            entities.clone(),
        );
        let evictions = Counter::default();
        registry.register(
            "cx_feature_store_evictions",
            "Users evicted from the feature store for room",
            evictions.clone(),
        );
        let feedback = family(
            registry,
            "cx_feature_feedback_updates",
            "Feature store updates from feedback events: effects that wrote, values written, outdated and refused, effects without a user",
        );
        let put_items = family(
            registry,
            "cx_feature_put_items",
            "put_features items by result: written, outdated (older than the value held), refused",
        );
        let put_refused = family(
            registry,
            "cx_feature_put_refused",
            "put_features items refused, by reason",
        );
        let series = |f: &Family<Labels, Counter>, key: &'static str, value: &str| {
            f.get_or_create_owned(&vec![(key, value.to_owned())])
        };
        Self {
            feedback: ["effects", "written", "outdated", "refused", "no_user"]
                .map(|r| series(&feedback, "result", r)),
            put_items: ["written", "outdated", "refused"].map(|r| series(&put_items, "result", r)),
            put_refused: PUT_FEATURES_REFUSALS
                .iter()
                .map(|r| series(&put_refused, "reason", r))
                .collect(),
            reads,
            writes,
            age,
            stale_warning,
            entities,
            evictions,
        }
    }

    /// Adds what changed between `before` and `now` (two health reports of
    /// one store, `before` `None` at the first call), and sets the ages,
    /// warnings and store gauges.
    pub(super) fn publish_health(
        &self,
        before: Option<&HealthReport>,
        now: &HealthReport,
        stats_before: &StoreStats,
        stats: &StoreStats,
    ) {
        for (i, f) in now.features.iter().enumerate() {
            let earlier = before.and_then(|b| b.features.get(i)).map(|b| b.counts);
            let earlier = earlier.unwrap_or_default();
            let label = |key: &'static str, value: &str| {
                vec![("feature", f.name.clone()), (key, value.to_owned())]
            };
            for (freshness, b, n) in [
                ("fresh", earlier.fresh, f.counts.fresh),
                ("stale", earlier.stale, f.counts.stale),
                ("missing", earlier.missing, f.counts.missing),
            ] {
                inc(
                    &self
                        .reads
                        .get_or_create_owned(&label("freshness", freshness)),
                    b,
                    n,
                );
            }
            let name = vec![("feature", f.name.clone())];
            inc(
                &self.writes.get_or_create_owned(&name),
                earlier.writes,
                f.counts.writes,
            );
            for (q, age) in [("0.5", f.age_p50_s()), ("0.99", f.age_p99_s())] {
                let g = self.age.get_or_create_owned(&label("quantile", q));
                g.set(i64::try_from(age.unwrap_or(0)).unwrap_or(i64::MAX));
            }
            self.stale_warning
                .get_or_create_owned(&name)
                .set(i64::from(f.warning));
        }
        self.entities
            .set(i64::try_from(stats.entities).unwrap_or(i64::MAX));
        inc(&self.evictions, stats_before.evictions, stats.evictions);
    }

    /// Adds what feedback did to the store between two of an engine's
    /// counts.
    pub(super) fn add_feedback(&self, before: &FeatureFeedbackCounts, now: &FeatureFeedbackCounts) {
        let pairs = [
            (before.effects, now.effects),
            (before.written, now.written),
            (before.outdated, now.outdated),
            (before.refused, now.refused),
            (before.no_user, now.no_user),
        ];
        for (c, (b, n)) in self.feedback.iter().zip(pairs) {
            inc(c, b, n);
        }
    }

    /// Counts one `put_features` answer.
    pub(super) fn add_put(&self, ack: &PutFeaturesAck) {
        let [written, outdated, refused] = &self.put_items;
        written.inc_by(u64::from(ack.written));
        outdated.inc_by(u64::from(ack.outdated));
        refused.inc_by(u64::from(ack.refused()));
        for (c, n) in self.put_refused.iter().zip(ack.refused_by_reason()) {
            if n > 0 {
                c.inc_by(u64::from(n));
            }
        }
    }
}

fn inc(c: &Counter, before: u64, now: u64) {
    let d = now.saturating_sub(before);
    if d > 0 {
        c.inc_by(d);
    }
}
