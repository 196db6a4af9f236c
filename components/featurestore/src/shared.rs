//! One feature store shared by a server's workers.
//!
//! # Layout
//!
//! [`SHARDS`] whole [`FeatureStore`]s, each behind its own mutex on its
//! own cache lines; an entity's shard is chosen from the bottom bits of
//! its mixed key (the store inside maps the top bits onto its sets, so the
//! two choices are independent). A read locks one shard for the stored
//! values only and evaluates the computed features after unlocking; a
//! batch of writes is checked whole, then locks each write's shard in
//! turn. Two workers meet on a lock only when their entities share a
//! shard. Capacity and bytes are split evenly: each shard gets
//! `entities / SHARDS` (rounded up) and `bytes_max / SHARDS`.

use crate::computed;
use crate::defs::Definitions;
use crate::error::Result;
use crate::health::{FeatureCounts, HealthReport};
use crate::row::FeatureValues;
use crate::store::{
    check_batch, check_row, mix64, FeaturePut, FeatureStore, PutOutcome, StoreConfig, StoreStats,
};
use crossbeam::utils::CachePadded;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Shards of a [`SharedFeatureStore`] (a power of two).
pub const SHARDS: usize = 64;

/// A feature store shared by threads (cheap to clone: clones share the
/// shards). See the [module docs](self).
#[derive(Clone, Debug)]
pub struct SharedFeatureStore {
    defs: Arc<Definitions>,
    config: StoreConfig,
    shards: Arc<[CachePadded<Mutex<FeatureStore>>]>,
}

impl SharedFeatureStore {
    /// A store of `config.entities` in all, split over the shards. Fails
    /// as [`FeatureStore::new`] does (a `bytes_max` error is about one
    /// shard's share).
    pub fn new(defs: Arc<Definitions>, config: StoreConfig) -> Result<Self> {
        config.validate()?;
        let per_shard = StoreConfig {
            entities: config.entities.div_ceil(SHARDS),
            bytes_max: (config.bytes_max / SHARDS as u64).max(1),
            ..config
        };
        let shards = (0..SHARDS)
            .map(|_| {
                FeatureStore::new(Arc::clone(&defs), per_shard)
                    .map(|s| CachePadded::new(Mutex::new(s)))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            defs,
            config,
            shards: shards.into(),
        })
    }

    /// The definitions.
    pub fn definitions(&self) -> &Arc<Definitions> {
        &self.defs
    }

    /// The config it was made with (over all shards).
    pub fn config(&self) -> StoreConfig {
        self.config
    }

    /// As [`FeatureStore::read`]; the computed features are evaluated
    /// outside the lock.
    pub fn read(&self, entity: u64, now_ns: u64, row: &mut FeatureValues) -> Result<()> {
        check_row(&self.defs, row)?;
        self.shard(entity).read_stored(entity, now_ns, row)?;
        computed::evaluate(row, (now_ns / 1_000_000_000) as i64);
        Ok(())
    }

    /// As [`FeatureStore::read_many`], one lookup (and lock) after the
    /// other: the overlap of memory accesses is the in-process store's.
    pub fn read_many(
        &self,
        entities: &[u64],
        now_ns: u64,
        rows: &mut [FeatureValues],
    ) -> Result<()> {
        crate::store::check_batch_shape(entities.len(), rows.len())?;
        for row in rows.iter() {
            check_row(&self.defs, row)?;
        }
        for (&entity, row) in entities.iter().zip(rows.iter_mut()) {
            self.read(entity, now_ns, row)?;
        }
        Ok(())
    }

    /// As [`FeatureStore::put`]: the batch is checked whole, then each
    /// write applied under its shard's lock.
    pub fn put(&self, batch: &[FeaturePut], now_ns: u64) -> Result<PutOutcome> {
        check_batch(&self.defs, batch)?;
        let mut out = PutOutcome::default();
        for p in batch {
            self.shard(p.entity).apply(p, now_ns, &mut out);
        }
        Ok(out)
    }

    /// Counters summed over the shards.
    pub fn stats(&self) -> StoreStats {
        let mut all = StoreStats::default();
        for shard in self.shards.iter() {
            all.add(&lock(shard).stats());
        }
        all
    }

    /// Health summed over the shards.
    pub fn health(&self) -> HealthReport {
        let mut counts = vec![FeatureCounts::default(); self.defs.stored().len()];
        for shard in self.shards.iter() {
            for (all, c) in counts.iter_mut().zip(lock(shard).health_counts()) {
                all.add(c);
            }
        }
        let names = self.defs.stored().iter().map(|f| f.name.clone());
        HealthReport::new(names, &counts, self.config.policy())
    }

    /// Whether `self` and `other` are clones of one store.
    pub fn same_as(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.shards, &other.shards)
    }

    /// Runs `f` on each shard in turn, locked.
    pub(crate) fn each_shard<T>(
        &self,
        mut f: impl FnMut(&mut FeatureStore) -> Result<T>,
    ) -> Result<()> {
        for shard in self.shards.iter() {
            f(&mut lock(shard))?;
        }
        Ok(())
    }

    /// The shard holding `entity`, locked. The shard is chosen from the
    /// bottom bits of the mixed key; the store inside maps the top bits
    /// onto its sets, so the two choices are independent.
    pub(crate) fn shard(&self, entity: u64) -> MutexGuard<'_, FeatureStore> {
        let index = (mix64(entity) as usize) & (SHARDS - 1);
        lock(&self.shards[index])
    }
}

/// Locks a shard. A panic while holding it leaves whole values (every
/// write is a store of whole words), so the shard stays usable.
fn lock(shard: &Mutex<FeatureStore>) -> MutexGuard<'_, FeatureStore> {
    shard.lock().unwrap_or_else(PoisonError::into_inner)
}
