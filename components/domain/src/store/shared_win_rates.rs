//! The win-rate store as the pipeline holds it ([`WinRateBackend`]): this
//! engine's own [`WinRates`], or one store for all of a server's engines
//! ([`SharedWinRates`]), so that a win or loss notice taken by any worker
//! teaches the pricing of every worker.
//!
//! # Layout
//!
//! A shared store is [`WIN_RATE_SHARDS`] whole [`WinRates`] stores, each
//! behind its own mutex on its own cache lines, the placements split by
//! the top bits of their hash (the sets within a shard use the low bits).
//! An auction bid locks its placement's shard once, briefly, to read the
//! win curve; a notice locks it once to count. Unlike the posteriors, it
//! is not replicated per engine: at 136 bytes per placement, copying
//! thousands of placements every tick would cost more than the locks.
//!
//! As key-value operations: the same as [`super::win_rates`]; a shard is a
//! key range.

use super::mix64;
use super::win_rates::{write_sections, PlacementRecord, WinRateConfig, WinRates};
use crate::error::Result;
use bevy_ecs::prelude::Resource;
use crossbeam::utils::CachePadded;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Shards of a [`SharedWinRates`] (a power of two).
pub const WIN_RATE_SHARDS: usize = 16;

/// One process's win rates, shared by its workers (cheap to clone: clones
/// share the shards). See the [module docs](self).
#[derive(Clone, Debug)]
pub struct SharedWinRates {
    shards: Arc<[CachePadded<Mutex<WinRates>>]>,
}

impl SharedWinRates {
    /// A store of `config.placements` placements in all, split evenly over
    /// the shards; fails as [`WinRates::new`] does.
    pub fn new(config: WinRateConfig) -> Result<Self> {
        // The store's own check, so that the error names the configured size.
        WinRates::new(config)?;
        let per_shard = WinRateConfig {
            placements: config.placements.div_ceil(WIN_RATE_SHARDS),
            ..config
        };
        let shards = (0..WIN_RATE_SHARDS)
            .map(|_| WinRates::new(per_shard).map(|s| CachePadded::new(Mutex::new(s))))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            shards: shards.into(),
        })
    }

    /// The shard of `placement`, locked. A panic while it was held (a bug)
    /// leaves counts that are still counts, so the shard stays usable.
    fn shard(&self, placement: u64) -> MutexGuard<'_, WinRates> {
        let i = (mix64(placement) >> (64 - WIN_RATE_SHARDS.trailing_zeros())) as usize;
        self.shards[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_all(&self) -> impl Iterator<Item = MutexGuard<'_, WinRates>> {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl PartialEq for SharedWinRates {
    /// The same shards (clones of one store), not equal contents.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.shards, &other.shards)
    }
}

/// The win-rate store the pipeline uses.
#[allow(clippy::large_enum_variant)] // one per World, never moved after install
#[derive(Resource, Clone, Debug, PartialEq)]
pub enum WinRateBackend {
    /// This engine's own store.
    Local(WinRates),
    /// One store shared by the process's engines.
    Shared(SharedWinRates),
}

impl WinRateBackend {
    /// Counts one auction ([`WinRates::observe`]).
    pub fn observe(&mut self, placement: u64, bid_cpm: f64, won: bool, now_ns: u64) {
        match self {
            Self::Local(w) => w.observe(placement, bid_cpm, won, now_ns),
            Self::Shared(s) => s.shard(placement).observe(placement, bid_cpm, won, now_ns),
        }
    }

    /// Reads the store that holds `placement` (its shard, locked, when
    /// shared): one lock for everything a bid reads of its placement.
    pub fn read<R>(&self, placement: u64, f: impl FnOnce(&WinRates) -> R) -> R {
        match self {
            Self::Local(w) => f(w),
            Self::Shared(s) => f(&s.shard(placement)),
        }
    }

    /// Appends every placement to a state file's section
    /// ([`WinRates::write_state`]'s layout, whatever the sharding).
    pub fn write_state(&self, out: &mut Vec<u8>) {
        match self {
            Self::Local(w) => w.write_state(out),
            Self::Shared(s) => write_sections(out, s.lock_all()),
        }
    }

    /// Replaces every placement with `records` (read whole and checked by
    /// [`WinRates::read_state`]), for every engine when shared.
    pub fn restore(&mut self, records: &[PlacementRecord]) -> Result<()> {
        match self {
            Self::Local(w) => {
                let mut fresh = WinRates::new(w.config())?;
                records.iter().for_each(|r| fresh.insert(r));
                *w = fresh;
            }
            Self::Shared(s) => {
                for mut shard in s.lock_all() {
                    *shard = WinRates::new(shard.config())?;
                }
                for r in records {
                    s.shard(r.key).insert(r);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> WinRateConfig {
        WinRateConfig {
            placements: 256,
            min_observations: 4,
            observations_max: 1000,
        }
    }

    #[test]
    fn engines_sharing_a_store_price_from_each_others_notices() {
        let shared = SharedWinRates::new(config()).expect("valid");
        let mut a = WinRateBackend::Shared(shared.clone());
        let b = WinRateBackend::Shared(shared);
        for k in 0..8u64 {
            a.observe(42, 1.0, k % 2 == 0, k + 1);
        }
        assert_eq!(b.read(42, |w| w.bids(42)), 8, "another engine's notices");
        let curve = b.read(42, |w| w.curve(42)).expect("past min_observations");
        assert_eq!(curve.bids, 8);
        assert_eq!(a, b, "the same store");
    }

    #[test]
    fn state_round_trips_between_shared_and_local_stores() {
        let mut shared = WinRateBackend::Shared(SharedWinRates::new(config()).expect("valid"));
        for key in 1..=100u64 {
            shared.observe(key, 0.1 * key as f64, key % 3 == 0, key);
        }
        let mut bytes = Vec::new();
        shared.write_state(&mut bytes);
        let records = WinRates::read_state(&bytes).expect("well formed");
        assert_eq!(records.len(), 100);
        let mut local = WinRateBackend::Local(WinRates::new(config()).expect("valid"));
        local.restore(&records).expect("restored");
        let mut again = WinRateBackend::Shared(SharedWinRates::new(config()).expect("valid"));
        again.observe(7, 9.0, true, 1);
        again.restore(&records).expect("restored");
        for key in 1..=100u64 {
            let bids = shared.read(key, |w| w.bids(key));
            assert_eq!(bids, 1);
            assert_eq!(local.read(key, |w| w.bids(key)), bids, "local {key}");
            assert_eq!(again.read(key, |w| w.bids(key)), bids, "shared {key}");
        }
        assert_eq!(
            again.read(7, |w| w.curve(7)),
            shared.read(7, |w| w.curve(7))
        );
        assert!(WinRates::read_state(&bytes[..bytes.len() - 1]).is_err());
    }
}
