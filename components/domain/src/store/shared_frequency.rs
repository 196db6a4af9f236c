//! Frequency caps shared by every worker of a process, so that a cap of N
//! impressions holds per user whatever worker decides.
//!
//! # Layout
//!
//! The users are split into [`SHARDS`] shards by their hash, each a whole
//! [`FrequencyStore`] behind its own mutex, on its own cache lines. A
//! decision locks one shard twice, briefly: once to copy the user's entries
//! (one call per request, as in process) and once to record the winner's
//! impression, checked against the cap under the same lock
//! ([`SharedFrequency::record_within`]), so two workers can never both take
//! the last impression under a cap. Two workers meet on a lock only when
//! their users share a shard: no lock is global.
//!
//! As key-value operations (the Redis step): one shard is one key range;
//! `user_entries` is a `GET` of the user's value, and `record_within` a
//! script that reads the count, compares it with the cap and increments it.

use super::frequency::{
    FrequencyConfig, FrequencyRecord, FrequencyStats, FrequencyStore, UserEntries,
    FREQUENCY_ENTRIES_MAX,
};
use super::mix64;
use crate::error::Result;
use crossbeam::utils::CachePadded;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Shards of a [`SharedFrequency`] (a power of two).
pub const SHARDS: usize = 64;

/// One process's frequency store, shared by its workers (cheap to clone:
/// clones share the shards). See the [module docs](self).
#[derive(Clone, Debug)]
pub struct SharedFrequency {
    shards: Arc<[CachePadded<Mutex<FrequencyStore>>]>,
}

impl SharedFrequency {
    /// A store of `config.capacity` entries in all, split evenly over the
    /// shards (each rounded up as [`FrequencyStore::new`] does). Fails as
    /// [`FrequencyStore::new`] does.
    pub fn new(config: FrequencyConfig) -> Result<Self> {
        if !(1..=FREQUENCY_ENTRIES_MAX).contains(&config.capacity) {
            // The store's own check (it fails before allocating), so the
            // error names the configured capacity.
            FrequencyStore::new(config)?;
        }
        let per_shard = FrequencyConfig {
            capacity: config.capacity.div_ceil(SHARDS),
        };
        let shards = (0..SHARDS)
            .map(|_| FrequencyStore::new(per_shard).map(|s| CachePadded::new(Mutex::new(s))))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            shards: shards.into(),
        })
    }

    /// The user's entries, as [`FrequencyStore::user_entries`].
    pub fn user_entries(&self, user_hash: u64) -> UserEntries {
        self.shard(user_hash).user_entries(user_hash)
    }

    /// Records one impression, as [`FrequencyStore::record`].
    pub fn record(&self, user_hash: u64, offer: u64, now_ns: u64, window_ns: u64) {
        self.shard(user_hash)
            .record(user_hash, offer, now_ns, window_ns);
    }

    /// Records one impression unless the user has `cap` already in the
    /// current window (then records nothing and returns false); the check
    /// and the record hold one lock, so concurrent callers never pass a cap
    /// together. `None`: no cap, always records.
    pub fn record_within(
        &self,
        user_hash: u64,
        offer: u64,
        cap: Option<u32>,
        now_ns: u64,
        window_ns: u64,
    ) -> bool {
        self.shard(user_hash)
            .record_within(user_hash, offer, cap, now_ns, window_ns)
    }

    /// [`FrequencyStore::release`] under the user's shard lock.
    pub fn release(&self, user_hash: u64, offer: u64, recorded_ns: u64, window_ns: u64) -> bool {
        self.shard(user_hash)
            .release(user_hash, offer, recorded_ns, window_ns)
    }

    /// [`FrequencyStore::for_each_entry`] over every shard, each under
    /// its lock.
    pub fn for_each_entry(&self, mut f: impl FnMut(FrequencyRecord)) {
        for shard in self.shards.iter() {
            lock(shard).for_each_entry(&mut f);
        }
    }

    /// [`FrequencyStore::restore_entry`] into the user's shard.
    pub fn restore_entry(&self, r: &FrequencyRecord) -> bool {
        self.shard(r.user_hash).restore_entry(r)
    }

    /// Counters summed over the shards.
    pub fn stats(&self) -> FrequencyStats {
        let mut total = FrequencyStats::default();
        for shard in self.shards.iter() {
            let s = lock(shard).stats();
            total.records += s.records;
            total.window_resets += s.window_resets;
            total.reclaimed += s.reclaimed;
            total.evictions += s.evictions;
            total.dropped += s.dropped;
            total.len += s.len;
        }
        total
    }

    /// Whether `self` and `other` are the same store (clones of one).
    pub fn same_as(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.shards, &other.shards)
    }

    /// The shard holding `user_hash`, locked. The shard is chosen from the
    /// top bits of the mixed hash; the store inside picks its set from the
    /// bottom bits, so the two choices are independent.
    fn shard(&self, user_hash: u64) -> MutexGuard<'_, FrequencyStore> {
        let index = (mix64(user_hash) >> (64 - SHARDS.trailing_zeros())) as usize;
        lock(&self.shards[index])
    }
}

impl PartialEq for SharedFrequency {
    /// The same store (clones of one), not equal contents.
    fn eq(&self, other: &Self) -> bool {
        self.same_as(other)
    }
}

impl Eq for SharedFrequency {}

/// Locks a shard. A panic while holding it (a bug) leaves counts that are
/// still counts, so the store stays usable.
fn lock(shard: &Mutex<FrequencyStore>) -> MutexGuard<'_, FrequencyStore> {
    shard.lock().unwrap_or_else(PoisonError::into_inner)
}
