//! The store's narrow interface, [`OnlineFeatures`], and the closed enum
//! the engine holds it through, [`FeatureBackend`] (as the other stores:
//! a `match`, no `dyn` call per request).
//!
//! # As key-value operations (the Redis step)
//!
//! Every operation is one batched read or write of whole small values,
//! so a Redis backend is one more variant:
//!
//! | operation | key | value | key-value form |
//! | --- | --- | --- | --- |
//! | [`OnlineFeatures::read`] | `fs:{schema id}:user:{user hash}` | the entity's record: per feature the value (8 bytes) and its time (4 bytes), 12 F bytes | one `GET` (or `HMGET` of the F fields of a hash); TTL, defaults and computed features are applied by the reader, as in process |
//! | [`OnlineFeatures::read_many`] | one such key per entity | the same | one `MGET` (or a pipeline of `HMGET`s) |
//! | [`OnlineFeatures::put`] | the same, per entity of the batch | one feature's (value, time) | per entity, a script that sets each field unless the held time is newer, and moves the key's expiry to its longest TTL (`PEXPIREAT`); the batch is one pipeline |
//! | [`OnlineFeatures::health`] | `fs:{schema id}:health:{feature}` | the counters and the 32 age buckets | `HINCRBY` per read, batched per tick; or kept per process and summed by the scraper |
//! | snapshot / restore | - | - | Redis persists itself (RDB/AOF); a snapshot file is the in-process store's |
//!
//! The schema id in the key keeps two definitions files from ever reading
//! each other's records. Eviction becomes Redis's (`maxmemory-policy
//! volatile-lru`) instead of the per-set rule.

use crate::defs::Definitions;
use crate::error::Result;
use crate::health::HealthReport;
use crate::row::FeatureValues;
use crate::shared::SharedFeatureStore;
use crate::snapshot::{self, SnapshotInfo};
use crate::store::{FeaturePut, FeatureStore, PutOutcome, StoreConfig, StoreStats};
use std::path::Path;
use std::sync::Arc;

/// What the engine asks of a feature store.
pub trait OnlineFeatures {
    /// The definitions its records follow.
    fn definitions(&self) -> &Arc<Definitions>;
    /// Fills `row` with `entity`'s features at `now_ns` (unix ns),
    /// computed ones included, and counts health. Allocation-free.
    fn read(&mut self, entity: u64, now_ns: u64, row: &mut FeatureValues) -> Result<()>;
    /// Reads several entities, one row each (at most
    /// [`READ_BATCH_MAX`](crate::store::READ_BATCH_MAX)), as many `read`s
    /// would. Allocation-free.
    fn read_many(
        &mut self,
        entities: &[u64],
        now_ns: u64,
        rows: &mut [FeatureValues],
    ) -> Result<()>;
    /// Writes a batch (checked whole first) at `now_ns`.
    fn put(&mut self, batch: &[FeaturePut], now_ns: u64) -> Result<PutOutcome>;
    /// Health per stored feature.
    fn health(&self) -> HealthReport;
    /// Counters and sizes.
    fn stats(&self) -> StoreStats;
    /// Writes a snapshot to `path` atomically.
    fn snapshot(&self, path: &Path) -> Result<SnapshotInfo>;
}

/// The feature store an engine uses.
#[derive(Clone, Debug)]
pub enum FeatureBackend {
    /// This engine's own store.
    InProcess(FeatureStore),
    /// One store shared by a process's engines.
    Shared(SharedFeatureStore),
}

impl FeatureBackend {
    /// An in-process store.
    pub fn in_process(defs: Arc<Definitions>, config: StoreConfig) -> Result<Self> {
        Ok(Self::InProcess(FeatureStore::new(defs, config)?))
    }

    /// A store shared by threads (clone the backend for each).
    pub fn shared(defs: Arc<Definitions>, config: StoreConfig) -> Result<Self> {
        Ok(Self::Shared(SharedFeatureStore::new(defs, config)?))
    }

    /// The config it was made with.
    pub fn config(&self) -> StoreConfig {
        match self {
            Self::InProcess(s) => s.config(),
            Self::Shared(s) => s.config(),
        }
    }

    /// A new backend of the same kind, definitions and config, filled
    /// from the snapshot at `path`; `self` is untouched whatever happens
    /// (swap it in on success). A shared store's clones keep the old
    /// store: hand the new one to every engine.
    pub fn restore_like(&self, path: &Path) -> Result<(Self, SnapshotInfo)> {
        let defs = Arc::clone(self.definitions());
        match self {
            Self::InProcess(s) => {
                snapshot::read_store(defs, s.config(), path).map(|(s, i)| (Self::InProcess(s), i))
            }
            Self::Shared(s) => {
                snapshot::read_shared(defs, s.config(), path).map(|(s, i)| (Self::Shared(s), i))
            }
        }
    }
}

impl OnlineFeatures for FeatureStore {
    fn definitions(&self) -> &Arc<Definitions> {
        FeatureStore::definitions(self)
    }
    fn read(&mut self, entity: u64, now_ns: u64, row: &mut FeatureValues) -> Result<()> {
        FeatureStore::read(self, entity, now_ns, row)
    }
    fn read_many(
        &mut self,
        entities: &[u64],
        now_ns: u64,
        rows: &mut [FeatureValues],
    ) -> Result<()> {
        FeatureStore::read_many(self, entities, now_ns, rows)
    }
    fn put(&mut self, batch: &[FeaturePut], now_ns: u64) -> Result<PutOutcome> {
        FeatureStore::put(self, batch, now_ns)
    }
    fn health(&self) -> HealthReport {
        FeatureStore::health(self)
    }
    fn stats(&self) -> StoreStats {
        FeatureStore::stats(self)
    }
    fn snapshot(&self, path: &Path) -> Result<SnapshotInfo> {
        snapshot::write_store(self, path)
    }
}

impl OnlineFeatures for FeatureBackend {
    fn definitions(&self) -> &Arc<Definitions> {
        match self {
            Self::InProcess(s) => s.definitions(),
            Self::Shared(s) => s.definitions(),
        }
    }
    fn read(&mut self, entity: u64, now_ns: u64, row: &mut FeatureValues) -> Result<()> {
        match self {
            Self::InProcess(s) => s.read(entity, now_ns, row),
            Self::Shared(s) => s.read(entity, now_ns, row),
        }
    }
    fn read_many(
        &mut self,
        entities: &[u64],
        now_ns: u64,
        rows: &mut [FeatureValues],
    ) -> Result<()> {
        match self {
            Self::InProcess(s) => s.read_many(entities, now_ns, rows),
            Self::Shared(s) => s.read_many(entities, now_ns, rows),
        }
    }
    fn put(&mut self, batch: &[FeaturePut], now_ns: u64) -> Result<PutOutcome> {
        match self {
            Self::InProcess(s) => s.put(batch, now_ns),
            Self::Shared(s) => s.put(batch, now_ns),
        }
    }
    fn health(&self) -> HealthReport {
        match self {
            Self::InProcess(s) => s.health(),
            Self::Shared(s) => s.health(),
        }
    }
    fn stats(&self) -> StoreStats {
        match self {
            Self::InProcess(s) => s.stats(),
            Self::Shared(s) => s.stats(),
        }
    }
    fn snapshot(&self, path: &Path) -> Result<SnapshotInfo> {
        match self {
            Self::InProcess(s) => snapshot::write_store(s, path),
            Self::Shared(s) => snapshot::write_shared(s, path),
        }
    }
}
