//! The online feature store of a running server (`docs/SERVER.md`,
//! "Feature store"): its settings (`[features]` in the server config), the
//! one [`SharedFeatureStore`](cx_engine::featurestore::SharedFeatureStore)
//! every worker's engine holds a clone of, its snapshot in `--state-dir`
//! (restored before any engine is built, refused whole when corrupt), and
//! the health report `GET /admin/features/health` and `cx features health`
//! show.
//!
//! The definitions default to the bundled `models/features.toml`, compiled
//! into the binary, so a fresh checkout serves them without a file.

use crate::config::ServerConfig;
use crate::error::Error;
use cx_engine::featurestore::{
    Definitions, FeatureBackend, HealthReport, OnlineFeatures, StoreConfig, ENTITIES_MAX,
    STORE_BYTES_MAX,
};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The bundled definitions (`models/features.toml`), served when
/// `features.definitions` is unset.
pub const BUNDLED_DEFINITIONS_TOML: &str = include_str!("../../../models/features.toml");

/// The feature store's snapshot in `state_dir`.
pub const FEATURES_FILE: &str = "features.bin";

/// `[features]` in the server config: the online feature store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeatureSettings {
    /// Run a feature store. Without one, `put_features` items are refused
    /// `store_off` and the health endpoint answers 404. Default true.
    pub enabled: bool,
    /// The definitions file; `None`: the bundled `models/features.toml`.
    pub definitions: Option<PathBuf>,
    /// Users the store holds, 1..=2^26 (rounded up to a multiple of 8);
    /// give a fifth more than expected. Default 262144.
    pub entities: usize,
    /// Most bytes the store's tables may take (wins over `entities`), up
    /// to 64 GiB. Default 268435456 (256 MiB).
    pub bytes_max: u64,
    /// Share of a feature's reads that may be stale before it is flagged
    /// (metrics, logs, health), in [0, 1]. Default 0.2.
    pub stale_warn_share: f64,
    /// Reads of a feature before its stale share is judged. Default 1000.
    pub warn_min_reads: u64,
}

impl Default for FeatureSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            definitions: None,
            entities: 1 << 18,
            bytes_max: 256 << 20,
            stale_warn_share: 0.2,
            warn_min_reads: 1_000,
        }
    }
}

impl FeatureSettings {
    /// The store's size and health policy.
    pub fn store_config(&self) -> StoreConfig {
        StoreConfig {
            entities: self.entities,
            bytes_max: self.bytes_max,
            stale_warn_share: self.stale_warn_share,
            warn_min_reads: self.warn_min_reads,
        }
    }

    /// Checks every key against its range (the store's own limits).
    pub fn validate(&self) -> Result<(), Error> {
        self.store_config().validate().map_err(|e| {
            Error::Config(format!(
                "features: {e} (entities 1..={ENTITIES_MAX}, bytes_max up to {STORE_BYTES_MAX}, \
                 stale_warn_share in [0, 1])"
            ))
        })
    }

    /// Where the definitions come from, for the start line.
    pub fn definitions_origin(&self) -> String {
        self.definitions
            .as_ref()
            .map_or_else(|| "bundled".to_string(), |p| p.display().to_string())
    }
}

/// Builds the store the config asks for (`None` when `features.enabled`
/// is false), and restores its snapshot from `state_dir` when there is one.
pub fn build(config: &ServerConfig) -> Result<(Option<FeatureBackend>, FeatureStart), Error> {
    let settings = &config.features;
    if !settings.enabled {
        return Ok((None, FeatureStart::Off));
    }
    let origin = settings.definitions_origin();
    let defs = match &settings.definitions {
        Some(path) => Definitions::load(path),
        None => Definitions::from_toml_str(BUNDLED_DEFINITIONS_TOML),
    }
    .map_err(|source| Error::FeatureStore {
        what: format!("cannot load the definitions {origin}"),
        source: Box::new(source),
    })?;
    let backend =
        FeatureBackend::shared(Arc::new(defs), settings.store_config()).map_err(|source| {
            Error::FeatureStore {
                what: "cannot make the store (features.entities, features.bytes_max)".into(),
                source: Box::new(source),
            }
        })?;
    let (backend, snapshot) = restore(config, backend)?;
    let start = FeatureStart::On {
        backend: Box::new(backend.clone()),
        snapshot,
        snapshot_path: snapshot_path(config),
        settings: settings.clone(),
    };
    Ok((Some(backend), start))
}

/// What happened to the feature snapshot at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapshotStart {
    /// No `state_dir`: the store lives in memory only.
    MemoryOnly,
    /// No snapshot yet.
    Empty,
    /// Restored: users read back.
    Restored {
        /// Users restored.
        entities: u64,
    },
    /// Refused and moved aside (`fresh_state`).
    Fresh {
        /// Why it was refused.
        reason: String,
    },
}

/// The feature store at start, for the start line.
#[derive(Clone, Debug)]
pub enum FeatureStart {
    /// `features.enabled = false`.
    Off,
    /// Running.
    On {
        /// The store (a clone of the workers'; boxed: a backend is large).
        backend: Box<FeatureBackend>,
        /// What happened to its snapshot.
        snapshot: SnapshotStart,
        /// Where its snapshot is kept (`state_dir`), if anywhere.
        snapshot_path: Option<PathBuf>,
        /// Its settings.
        settings: FeatureSettings,
    },
}

impl FeatureStart {
    /// The start line's `features` value.
    pub fn to_json(&self) -> serde_json::Value {
        let Self::On {
            backend,
            snapshot,
            settings,
            ..
        } = self
        else {
            return serde_json::json!({"enabled": false});
        };
        let stats = backend.stats();
        let snapshot = match snapshot {
            SnapshotStart::MemoryOnly => serde_json::json!({"mode": "memory_only"}),
            SnapshotStart::Empty => serde_json::json!({"mode": "empty"}),
            SnapshotStart::Restored { entities } => {
                serde_json::json!({"mode": "restored", "entities": entities})
            }
            SnapshotStart::Fresh { reason } => {
                serde_json::json!({"mode": "fresh", "refused": reason})
            }
        };
        let defs = backend.definitions();
        serde_json::json!({
            "enabled": true,
            "definitions": settings.definitions_origin(),
            "schema_id": defs.id(),
            "stored_features": defs.stored().len(),
            "computed_features": defs.computed().len(),
            "capacity_entities": stats.capacity,
            "bytes": stats.bytes,
            "stale_warn_share": settings.stale_warn_share,
            "snapshot": snapshot,
        })
    }
}

impl FeatureStart {
    /// Writes the snapshot a last time, once every worker has stopped
    /// (`Server::wait`); nothing without a store or a `state_dir`.
    pub fn save_final(&self) {
        if let Self::On {
            backend,
            snapshot_path: Some(path),
            ..
        } = self
        {
            save(backend, path);
        }
    }
}

/// The snapshot path in `config.state_dir`, if any.
pub fn snapshot_path(config: &ServerConfig) -> Option<PathBuf> {
    config.state_dir.as_ref().map(|dir| dir.join(FEATURES_FILE))
}

/// Restores `state_dir`'s feature snapshot into a new store like
/// `backend`; a refused snapshot stops the start, unless `fresh_state`.
fn restore(
    config: &ServerConfig,
    backend: FeatureBackend,
) -> Result<(FeatureBackend, SnapshotStart), Error> {
    let Some(path) = snapshot_path(config) else {
        return Ok((backend, SnapshotStart::MemoryOnly));
    };
    if !path.exists() {
        return Ok((backend, SnapshotStart::Empty));
    }
    match backend.restore_like(&path) {
        Ok((restored, info)) => {
            tracing::info!(path = %path.display(), entities = info.entities, "feature store restored");
            let start = SnapshotStart::Restored {
                entities: info.entities,
            };
            Ok((restored, start))
        }
        Err(e) if config.fresh_state => {
            let aside = path.with_file_name(format!("{FEATURES_FILE}.refused"));
            std::fs::rename(&path, &aside).map_err(|io| {
                Error::Config(format!("cannot move {} aside: {io}", path.display()))
            })?;
            tracing::warn!(error = %e, aside = %aside.display(), "feature snapshot refused; starting empty");
            let reason = e.to_string();
            Ok((backend, SnapshotStart::Fresh { reason }))
        }
        Err(source) => Err(Error::FeatureStore {
            what: format!(
                "the snapshot {} was refused; nothing was restored. Start with --fresh-state to \
                 move it aside and start with an empty store",
                path.display()
            ),
            source: Box::new(source),
        }),
    }
}

/// Writes the store's snapshot to `path` (atomic: a temporary file renamed
/// over it); logs what happened. `true` when it was written.
pub fn save(backend: &FeatureBackend, path: &Path) -> bool {
    let started = std::time::Instant::now();
    match backend.snapshot(path) {
        Ok(info) => {
            tracing::debug!(
                path = %path.display(),
                entities = info.entities,
                bytes = info.bytes,
                ms = started.elapsed().as_millis() as u64,
                "feature snapshot saved"
            );
            true
        }
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "feature snapshot not saved");
            false
        }
    }
}

/// The health report as JSON: `GET /admin/features/health`, and what
/// `cx features health` prints.
pub fn health_json(backend: &FeatureBackend) -> serde_json::Value {
    let report = backend.health();
    let stats = backend.stats();
    let defs = backend.definitions();
    serde_json::json!({
        "schema_id": defs.id(),
        "entities": stats.entities,
        "capacity_entities": stats.capacity,
        "evictions": stats.evictions,
        "reclaimed": stats.reclaimed,
        "stale_warn_share": report.policy.stale_warn_share,
        "warn_min_reads": report.policy.warn_min_reads,
        "features": features_json(&report),
        "warnings": report.warnings().map(|f| f.name.as_str()).collect::<Vec<_>>(),
    })
}

fn features_json(report: &HealthReport) -> Vec<serde_json::Value> {
    report
        .features
        .iter()
        .map(|f| {
            serde_json::json!({
                "name": f.name,
                "fresh": f.counts.fresh,
                "stale": f.counts.stale,
                "missing": f.counts.missing,
                "writes": f.counts.writes,
                "age_p50_s": f.age_p50_s(),
                "age_p99_s": f.age_p99_s(),
                "stale_share": f.stale_share,
                "warning": f.warning,
            })
        })
        .collect()
}
