//! The online feature store's hooks in the engine (issue 16): writes
//! ([`Engine::put_features`]), a host's read ([`Engine::features_for`]),
//! health, snapshots, and the updates that feedback makes
//! (`feed_features`, called for every applied feedback effect; counted in
//! [`FeatureFeedbackCounts`]).
//!
//! The store is optional
//! ([`EngineBuilder::feature_store`](crate::EngineBuilder::feature_store))
//! and lives in the World, as the pipeline's
//! [`UserStore`](cx_systems::user_store::UserStore) resource: the
//! features system reads it once per request with a user, and decisions
//! use what it read (stored segments and behaviour, `docs/DECISIONS.md`).
//! Every method here goes through that resource.
//!
//! Users are keyed by the same hash as frequency caps
//! ([`cx_systems::logic::user_hash`]): an empty user id is no user, and
//! reads as every feature missing.
//!
//! # Updates from feedback
//!
//! A stored feature with an update rule (`on_event` and `update` in its
//! definition, [`cx_featurestore::UpdateRule`]) follows the feedback
//! events joined to a decision of its user (the decision's user hash; a
//! decision without a user updates nothing). For each applied effect that
//! counts an impression, a click or a conversion, the user's features are
//! read at the time the effect is applied (a missing or stale value reads
//! as its default, so counts start from 0), each matching rule computes
//! its value, and the values are written in one batched put at that
//! time. The read counts in the store's health like any read. A put the
//! store refuses (an f32 sum that is not finite) is counted in
//! [`FeatureFeedbackCounts::refused`]; a value older than the one held
//! (a pipeline wrote a newer one) in `outdated`. Nothing here allocates
//! once the engine is built.
//!
//! On a shared store two engines taking events of the same user at once
//! may both read before either writes, and one update is lost: the read
//! and the write are two operations, as they would be against Redis
//! without a script.

use crate::engine::Engine;
use crate::error::{Error, Result};
use bevy_ecs::prelude::Mut;
use cx_domain::feedback::EventKind;
use cx_domain::store::Effect;
use cx_featurestore::{
    FeatureBackend, FeatureId, FeaturePut, FeatureValues, FeedbackEvent, HealthReport,
    OnlineFeatures, PutOutcome, SnapshotInfo, UpdateRule,
};
use cx_systems::user_store::UserStore;
use std::path::Path;

/// What feedback did to the feature store, since the engine was built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FeatureFeedbackCounts {
    /// Effects that updated at least one feature (one batched put each).
    pub effects: u64,
    /// Values written.
    pub written: u64,
    /// Values ignored by the store: older than the one it holds.
    pub outdated: u64,
    /// Values of puts the store refused (nothing of such a put is written).
    pub refused: u64,
    /// Effects with an impression, click or conversion for a decision
    /// without a user (nothing to update).
    pub no_user: u64,
}

/// The buffer an engine's host reads fill, and what the feedback updates
/// need (the rules, a reused batch, counts); the store itself is the
/// World's [`UserStore`].
pub(crate) struct FeatureHooks {
    row: FeatureValues,
    /// The stored features with an update rule, in row order.
    rules: Box<[(FeatureId, UpdateRule)]>,
    /// One feedback put, reused (capacity: one value per rule).
    batch: Vec<FeaturePut>,
    counts: FeatureFeedbackCounts,
}

impl FeatureHooks {
    pub(crate) fn new(backend: &FeatureBackend) -> Self {
        let defs = backend.definitions().clone();
        let rules: Box<[_]> = defs.update_rules().collect();
        Self {
            row: FeatureValues::new(defs),
            batch: Vec::with_capacity(rules.len()),
            rules,
            counts: FeatureFeedbackCounts::default(),
        }
    }

    /// Whether `effect` fires any update rule (most do not: a bid whose
    /// win window closed unanswered fires none).
    fn fires_any(&self, effect: &Effect) -> bool {
        self.rules
            .iter()
            .any(|(_, rule)| fires(rule.on_event, effect))
    }

    /// Applies the update rules that `effect` fires to its user's
    /// features in `backend`, at `now_ns` (see the [module docs](self)).
    /// The caller has checked that it fires one ([`Self::fires_any`]).
    fn feed(&mut self, backend: &mut FeatureBackend, effect: &Effect, now_ns: u64) {
        let fires = |event: FeedbackEvent| fires(event, effect);
        let user = effect.decision.user_hash;
        if user == 0 {
            self.counts.no_user += 1;
            return;
        }
        if backend.read(user, now_ns, &mut self.row).is_err() {
            // The row was made from the backend's own definitions, so the
            // read does not refuse it; were it to, nothing is written.
            let firing = self.rules.iter().filter(|(_, r)| fires(r.on_event));
            self.counts.refused += firing.count() as u64;
            return;
        }
        let time_s = (now_ns / 1_000_000_000) as i64;
        self.batch.clear();
        for &(feature, rule) in self.rules.iter() {
            if !fires(rule.on_event) {
                continue;
            }
            let Some(current) = self.row.value(feature) else {
                continue;
            };
            self.batch.push(FeaturePut {
                entity: user,
                feature,
                value: rule.next(current, effect.conversion_value, time_s),
                time_ns: now_ns,
            });
        }
        self.counts.effects += 1;
        match backend.put(&self.batch, now_ns) {
            Ok(outcome) => {
                self.counts.written += outcome.written;
                self.counts.outdated += outcome.outdated;
            }
            Err(_) => self.counts.refused += self.batch.len() as u64,
        }
    }
}

impl Engine {
    /// Writes a batch of feature values at `now_unix_ns` (checked whole
    /// first: one bad write fails the batch and nothing is written). Fails
    /// when the engine was built without a feature store.
    pub fn put_features(&mut self, batch: &[FeaturePut], now_unix_ns: u64) -> Result<PutOutcome> {
        Ok(self.store_mut()?.backend_mut().put(batch, now_unix_ns)?)
    }

    /// `user_id`'s features at `now_unix_ns` (the request's time): stored
    /// values, or their defaults when missing or stale, and the computed
    /// features. `None` when the engine has no feature store. Allocates
    /// nothing; the returned row is reused by the next read.
    pub fn features_for(&mut self, user_id: &str, now_unix_ns: u64) -> Option<&FeatureValues> {
        self.features_for_key(cx_systems::logic::user_hash(user_id), now_unix_ns)
    }

    /// As [`features_for`](Self::features_for), by user hash.
    pub fn features_for_key(&mut self, user_hash: u64, now_unix_ns: u64) -> Option<&FeatureValues> {
        let hooks = self.feature_hooks.as_mut()?;
        let mut store = self.world.get_resource_mut::<UserStore>()?;
        // The row was made from the store's own definitions, so the read
        // cannot refuse it.
        store
            .backend_mut()
            .read(user_hash, now_unix_ns, &mut hooks.row)
            .ok()?;
        Some(&hooks.row)
    }

    /// Health per stored feature (a host logs the warnings); `None`
    /// without a feature store.
    pub fn feature_health(&self) -> Option<HealthReport> {
        self.feature_store().map(|b| b.health())
    }

    /// The feature store, if any.
    pub fn feature_store(&self) -> Option<&FeatureBackend> {
        self.world.get_resource::<UserStore>().map(|s| s.backend())
    }

    /// Writes the feature store to `path` atomically.
    pub fn snapshot_features(&self, path: &Path) -> Result<SnapshotInfo> {
        let backend = self.feature_store().ok_or_else(no_store)?;
        Ok(backend.snapshot(path)?)
    }

    /// Replaces the feature store's contents with the snapshot at `path`
    /// (same definitions and size). A snapshot that is refused changes
    /// nothing.
    pub fn restore_features(&mut self, path: &Path) -> Result<SnapshotInfo> {
        let mut store = self.store_mut()?;
        let (backend, info) = store.backend().restore_like(path)?;
        *store.backend_mut() = backend;
        Ok(info)
    }

    /// Updates the feature store from one applied feedback effect (see
    /// the [module docs](self)); nothing without a store. Allocation-free.
    pub(crate) fn feed_features(&mut self, effect: &Effect, now_ns: u64) {
        let Some(hooks) = self.feature_hooks.as_mut() else {
            return;
        };
        // Most effects fire no rule; those leave the store resource alone.
        if !hooks.fires_any(effect) {
            return;
        }
        if let Some(mut store) = self.world.get_resource_mut::<UserStore>() {
            hooks.feed(store.backend_mut(), effect, now_ns);
        }
    }

    /// What feedback did to the feature store; `None` without a store.
    pub fn feature_feedback_counts(&self) -> Option<FeatureFeedbackCounts> {
        self.feature_hooks.as_ref().map(|h| h.counts)
    }

    fn store_mut(&mut self) -> Result<Mut<'_, UserStore>> {
        self.world
            .get_resource_mut::<UserStore>()
            .ok_or_else(no_store)
    }
}

/// Whether `effect` fires a rule on `event`.
fn fires(event: FeedbackEvent, effect: &Effect) -> bool {
    match event {
        FeedbackEvent::Impression => effect.impression,
        FeedbackEvent::Click => effect.click,
        FeedbackEvent::Conversion => effect.kind == Some(EventKind::Conversion),
    }
}

fn no_store() -> Error {
    Error::Config(
        "feature store: this engine has none (EngineBuilder::feature_store sets one)".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use cx_features::RequestContext;
    use cx_featurestore::{Definitions, Freshness, StoreConfig, Value};
    use std::sync::Arc;

    const T0: u64 = 1_767_225_600_000_000_000;
    const DEFS: &str = include_str!("../../models/features.toml");

    fn backend() -> FeatureBackend {
        let defs = Arc::new(Definitions::from_toml_str(DEFS).expect("bundled definitions"));
        let config = StoreConfig {
            entities: 1024,
            ..StoreConfig::default()
        };
        FeatureBackend::in_process(defs, config).expect("store")
    }

    fn contexts() -> Vec<RequestContext> {
        (0..64)
            .map(|i| RequestContext {
                user_id: format!("user-{}", i % 9),
                country: ["USA", "DEU", "FRA"][i % 3].into(),
                placement_width: 300,
                placement_height: 250,
                timestamp: (T0 / 1_000_000_000) as i64,
                ..RequestContext::default()
            })
            .collect()
    }

    fn decide_all(engine: &mut Engine) -> Vec<String> {
        contexts()
            .into_iter()
            .map(|ctx| {
                engine.submit(ctx).expect("submit");
                engine.run_until_decided(T0);
                format!("{:?}", engine.poll().expect("decided"))
            })
            .collect()
    }

    #[test]
    fn without_a_store_the_hooks_say_so() {
        let mut engine = Engine::builder().seed(3).build().expect("engine");
        assert!(engine.features_for("u", T0).is_none());
        assert!(engine.feature_health().is_none());
        let e = engine.put_features(&[], T0).unwrap_err().to_string();
        assert!(e.contains("feature store"), "{e}");
    }

    #[test]
    fn with_its_weights_at_0_the_store_changes_no_decision() {
        // The users' stored segments (`age_band=unknown`) match no offer of
        // the bundled catalog, and the behaviour terms are off.
        let mut config = crate::EngineConfig::default();
        config.decide.behavior_recency_weight = 0.0;
        config.decide.behavior_ratio_weight = 0.0;
        let mut plain = Engine::builder().seed(3).build().expect("engine");
        let mut with = Engine::builder()
            .seed(3)
            .config(config)
            .feature_store(backend())
            .build()
            .expect("engine with a store");
        let defs = with.feature_store().unwrap().definitions().clone();
        let views = defs.find("views_30d").unwrap();
        let batch: Vec<FeaturePut> = (0..9)
            .map(|u| FeaturePut {
                entity: cx_systems::logic::user_hash(&format!("user-{u}")),
                feature: views,
                value: Value::I64(100 * u),
                time_ns: T0,
            })
            .collect();
        assert_eq!(with.put_features(&batch, T0).unwrap().written, 9);
        assert_eq!(decide_all(&mut plain), decide_all(&mut with));
        let row = with.features_for("user-4", T0 + 1).expect("a store");
        assert_eq!(
            row.get("views_30d"),
            Some((Value::I64(400), Freshness::Fresh))
        );
        let row = with.features_for("", T0).expect("a store");
        assert_eq!(
            row.get("views_30d"),
            Some((Value::I64(0), Freshness::Missing))
        );
        let health = with.feature_health().unwrap();
        // The pipeline read each of the 64 requests' users, then the host one.
        assert_eq!(health.features[0].counts.fresh, 65);
    }

    #[test]
    fn per_request_reads_allocate_nothing() {
        let mut engine = Engine::builder()
            .feature_store(backend())
            .build()
            .expect("engine");
        let ids: Vec<String> = (0..100).map(|i| format!("user-{i}")).collect();
        let ctr = engine
            .feature_store()
            .unwrap()
            .definitions()
            .find("ctr_30d")
            .unwrap();
        engine.features_for(&ids[0], T0);
        let info = allocation_counter::measure(|| {
            for (i, id) in ids.iter().enumerate() {
                let row = engine.features_for(id, T0 + i as u64).expect("a store");
                std::hint::black_box(row.number(ctr));
            }
        });
        assert_eq!(info.count_total, 0);
    }

    #[test]
    fn a_put_the_store_refuses_is_counted_and_writes_nothing() {
        let mut backend = backend();
        let mut hooks = FeatureHooks::new(&backend);
        let defs = backend.definitions().clone();
        let spend = defs.find("spend_90d").unwrap();
        let user = cx_systems::logic::user_hash("u");
        let put = FeaturePut {
            entity: user,
            feature: spend,
            value: Value::F32(f32::MAX),
            time_ns: T0,
        };
        backend.put(&[put], T0).unwrap();
        let effect = Effect {
            kind: Some(EventKind::Conversion),
            decision: cx_domain::store::LoggedDecision {
                user_hash: user,
                ..Default::default()
            },
            refund_micros: 0,
            charge_micros: 0,
            release_cap: false,
            impression: false,
            click: false,
            conversion_value: f64::from(f32::MAX),
        };
        // f32::MAX + f32::MAX is not finite: the store refuses the batch
        // (conversions, last purchase and spend) whole.
        hooks.feed(&mut backend, &effect, T0 + 1);
        let counts = hooks.counts;
        assert_eq!((counts.effects, counts.refused, counts.written), (1, 3, 0));
        backend.read(user, T0 + 1, &mut hooks.row).unwrap();
        assert_eq!(
            hooks.row.get("conversions_30d").unwrap().1,
            Freshness::Missing
        );
        assert_eq!(hooks.row.get("spend_90d").unwrap().0, Value::F32(f32::MAX));
        // A smaller conversion is taken.
        hooks.feed(
            &mut backend,
            &Effect {
                conversion_value: 1.0,
                ..effect
            },
            T0 + 2,
        );
        assert_eq!(hooks.counts.written, 3);
    }

    #[test]
    fn snapshots_restore_through_the_engine() {
        let dir = std::env::temp_dir().join(format!("cx-engine-fs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("features.snap");
        let mut engine = Engine::builder()
            .feature_store(backend())
            .build()
            .expect("engine");
        let churn = engine
            .feature_store()
            .unwrap()
            .definitions()
            .find("churn_risk")
            .unwrap();
        let put = FeaturePut {
            entity: cx_systems::logic::user_hash("u"),
            feature: churn,
            value: Value::F32(0.75),
            time_ns: T0,
        };
        engine.put_features(&[put], T0).unwrap();
        assert_eq!(engine.snapshot_features(&path).unwrap().entities, 1);
        engine
            .put_features(
                &[FeaturePut {
                    value: Value::F32(0.1),
                    ..put
                }],
                T0,
            )
            .unwrap();
        assert_eq!(engine.restore_features(&path).unwrap().entities, 1);
        let row = engine.features_for("u", T0).unwrap();
        assert_eq!(row.get("churn_risk").unwrap().0, Value::F32(0.75));
        std::fs::write(&path, b"garbage").unwrap();
        assert!(engine.restore_features(&path).is_err());
        let row = engine.features_for("u", T0).unwrap();
        assert_eq!(
            row.get("churn_risk").unwrap().0,
            Value::F32(0.75),
            "untouched"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
