//! The online feature store's hooks in the engine (issue 16, part 1):
//! writes ([`Engine::put_features`]), a per-request read
//! ([`Engine::features_for`]), health, and snapshots.
//!
//! **Nothing here changes a decision.** The store is optional
//! ([`EngineBuilder::feature_store`](crate::EngineBuilder::feature_store));
//! the pipeline never reads it, the feature schema, the model's input and
//! the decision factors are as before. Feeding stored features to the
//! model and the factors needs a model retrained on them (part 2). Until
//! then a host can write features and read them per request, and watch
//! their health.
//!
//! Users are keyed by the same hash as frequency caps
//! ([`cx_systems::logic::user_hash`]): an empty user id is no user, and
//! reads as every feature missing.

use crate::engine::Engine;
use crate::error::{Error, Result};
use cx_featurestore::{
    FeatureBackend, FeaturePut, FeatureValues, HealthReport, OnlineFeatures, PutOutcome,
    SnapshotInfo,
};
use std::path::Path;

/// An engine's feature store and the buffer its reads fill.
pub(crate) struct FeatureHooks {
    backend: FeatureBackend,
    row: FeatureValues,
}

impl FeatureHooks {
    pub(crate) fn new(backend: FeatureBackend) -> Self {
        let row = FeatureValues::new(backend.definitions().clone());
        Self { backend, row }
    }
}

impl Engine {
    /// Writes a batch of feature values at `now_unix_ns` (checked whole
    /// first: one bad write fails the batch and nothing is written). Fails
    /// when the engine was built without a feature store.
    pub fn put_features(&mut self, batch: &[FeaturePut], now_unix_ns: u64) -> Result<PutOutcome> {
        Ok(self.hooks_mut()?.backend.put(batch, now_unix_ns)?)
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
        // The row was made from the backend's own definitions, so the read
        // cannot refuse it.
        hooks
            .backend
            .read(user_hash, now_unix_ns, &mut hooks.row)
            .ok()?;
        Some(&hooks.row)
    }

    /// Health per stored feature (a host logs the warnings); `None`
    /// without a feature store.
    pub fn feature_health(&self) -> Option<HealthReport> {
        self.feature_hooks.as_ref().map(|h| h.backend.health())
    }

    /// The feature store, if any.
    pub fn feature_store(&self) -> Option<&FeatureBackend> {
        self.feature_hooks.as_ref().map(|h| &h.backend)
    }

    /// Writes the feature store to `path` atomically.
    pub fn snapshot_features(&self, path: &Path) -> Result<SnapshotInfo> {
        let hooks = self.feature_hooks.as_ref().ok_or_else(no_store)?;
        Ok(hooks.backend.snapshot(path)?)
    }

    /// Replaces the feature store's contents with the snapshot at `path`
    /// (same definitions and size). A snapshot that is refused changes
    /// nothing.
    pub fn restore_features(&mut self, path: &Path) -> Result<SnapshotInfo> {
        let hooks = self.hooks_mut()?;
        let (backend, info) = hooks.backend.restore_like(path)?;
        hooks.backend = backend;
        Ok(info)
    }

    fn hooks_mut(&mut self) -> Result<&mut FeatureHooks> {
        self.feature_hooks.as_mut().ok_or_else(no_store)
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
    fn the_store_changes_no_decision() {
        let mut plain = Engine::builder().seed(3).build().expect("engine");
        let mut with = Engine::builder()
            .seed(3)
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
        assert_eq!(health.features[0].counts.fresh, 1);
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
