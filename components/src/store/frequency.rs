//! The frequency store: impressions per (user, offer) for frequency caps.
//!
//! Each entry counts the impressions of one offer to one user in a *fixed*
//! window: the window opens at the first impression recorded after the
//! previous window ended and lasts `window_ns`, which the caller passes on
//! every call (the offer's cap window). Within it the count grows by one per
//! impression (saturating); once `now_ns - window_start_ns >= window_ns` the
//! entry counts 0 and the next impression opens a new window. A clock that
//! steps backwards (`now_ns` before the window's start) stays in the current
//! window, which keeps caps conservative.
//!
//! # Bounded by design
//!
//! The store holds at most [`FrequencyStore::capacity`] entries. When the set
//! a new (user, offer) pair hashes to is full, it reuses an entry whose
//! window has ended, else it evicts the entry with the oldest last
//! impression and counts an eviction. **An evicted user starts again from
//! zero, so they may see that offer again before their cap would have
//! allowed.** Size the store for the active (user, offer) pairs of one window
//! and watch [`FrequencyStats::evictions`].
//!
//! # Layout
//!
//! Set-associative (see [the module docs](super)) with [`WAYS`] ways per set,
//! the set chosen by a mixed user hash plus the offer index (a user's offers
//! sit in adjacent sets). Flat arrays per field,
//! indexed by slot: `user` (u64), `offer` (u32), `count` (u32),
//! `window_start_ns`, `window_ns` (the window length recorded with the
//! entry, so that eviction can tell whether an entry of another offer has
//! ended) and `last_ns` (u64 each): 40 bytes per entry. A `count` of 0 marks
//! an empty slot, since a stored entry has at least one impression; every
//! user hash and offer index, 0 included, is a usable key.

use super::{set_count, WAYS};
use crate::error::{Error, Result};
use bevy_ecs::prelude::Resource;

/// The splitmix64 finaliser: spreads any 64-bit value (a small test id as
/// well as a real hash) over all bits.
fn mix64(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Most (user, offer) entries a frequency store may hold (after rounding up).
pub const FREQUENCY_ENTRIES_MAX: usize = 1 << 24;

const STORE: &str = "frequency store";

/// Size of a [`FrequencyStore`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrequencyConfig {
    /// (user, offer) entries to hold; rounded up to a power of two of at
    /// least [`WAYS`]. Must be in `1..=FREQUENCY_ENTRIES_MAX`.
    pub capacity: usize,
}

/// Counters of a [`FrequencyStore`] since it was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrequencyStats {
    /// Impressions recorded.
    pub records: u64,
    /// Windows restarted for an entry whose previous window had ended.
    pub window_resets: u64,
    /// New entries that took the slot of an entry whose window had ended.
    pub reclaimed: u64,
    /// New entries that pushed out an entry still inside its window.
    pub evictions: u64,
    /// Entries held now, including ones whose window has ended.
    pub len: usize,
}

/// Bounded impression counts per (user, offer) in fixed windows. See the
/// [module docs](self).
#[derive(Resource, Clone, Debug, PartialEq, Eq)]
pub struct FrequencyStore {
    set_mask: usize,
    user: Vec<u64>,
    offer: Vec<u32>,
    /// Impressions in the current window; 0 marks an empty slot.
    count: Vec<u32>,
    window_start_ns: Vec<u64>,
    window_ns: Vec<u64>,
    last_ns: Vec<u64>,
    stats: FrequencyStats,
}

impl FrequencyStore {
    /// A store of `config.capacity` entries (rounded up). Fails with
    /// [`Error::BadStoreConfig`] when the capacity is 0 (which would silently
    /// disable frequency caps) or more than [`FREQUENCY_ENTRIES_MAX`].
    pub fn new(config: FrequencyConfig) -> Result<Self> {
        if !(1..=FREQUENCY_ENTRIES_MAX).contains(&config.capacity) {
            return Err(Error::BadStoreConfig {
                store: STORE,
                reason: format!(
                    "capacity {} is outside 1..={FREQUENCY_ENTRIES_MAX} entries",
                    config.capacity
                ),
            });
        }
        let sets = set_count(config.capacity);
        let slots = sets * WAYS;
        Ok(Self {
            set_mask: sets - 1,
            user: vec![0; slots],
            offer: vec![0; slots],
            count: vec![0; slots],
            window_start_ns: vec![0; slots],
            window_ns: vec![0; slots],
            last_ns: vec![0; slots],
            stats: FrequencyStats::default(),
        })
    }

    /// Impressions of `offer` to `user_hash` in the window of `window_ns`
    /// that is current at `now_ns`: 0 if there is no entry or its window has
    /// ended. Read-only.
    pub fn count(&self, user_hash: u64, offer: u32, now_ns: u64, window_ns: u64) -> u32 {
        match self.find(user_hash, offer) {
            Some(s) if !ended(self.window_start_ns[s], window_ns, now_ns) => self.count[s],
            _ => 0,
        }
    }

    /// Records one impression of `offer` to `user_hash` at `now_ns`, opening a
    /// new window of `window_ns` if there is none or the current one has
    /// ended. A new pair takes an empty way of its set, else the way whose
    /// window has ended with the oldest last impression, else evicts the way
    /// with the oldest last impression.
    pub fn record(&mut self, user_hash: u64, offer: u32, now_ns: u64, window_ns: u64) {
        self.stats.records += 1;
        let slot = match self.find(user_hash, offer) {
            Some(s) => {
                if ended(self.window_start_ns[s], window_ns, now_ns) {
                    self.stats.window_resets += 1;
                    self.count[s] = 0;
                    self.window_start_ns[s] = now_ns;
                }
                s
            }
            None => {
                let s = self.victim(user_hash, offer, now_ns);
                if self.count[s] == 0 {
                    self.stats.len += 1;
                } else if ended(self.window_start_ns[s], self.window_ns[s], now_ns) {
                    self.stats.reclaimed += 1;
                } else {
                    self.stats.evictions += 1;
                }
                self.user[s] = user_hash;
                self.offer[s] = offer;
                self.count[s] = 0;
                self.window_start_ns[s] = now_ns;
                s
            }
        };
        self.count[slot] = self.count[slot].saturating_add(1);
        self.window_ns[slot] = window_ns;
        self.last_ns[slot] = now_ns;
    }

    /// Counters since creation, and the entries held now.
    pub fn stats(&self) -> FrequencyStats {
        self.stats
    }

    /// Entries the store can hold: the configured capacity rounded up to a
    /// power of two of at least [`WAYS`].
    pub fn capacity(&self) -> usize {
        self.count.len()
    }

    /// Number of sets (capacity / [`WAYS`]).
    pub fn sets(&self) -> usize {
        self.set_mask + 1
    }

    /// The set the pair maps to. Exposed so that tests and diagnostics can
    /// reason about eviction.
    ///
    /// The user's offers map to consecutive sets (the mixed user hash plus
    /// the offer index), so the lookups of one decision, which ask about
    /// every offer for one user, walk adjacent memory that the prefetcher
    /// follows, instead of one random cache line per offer.
    pub fn set_of(&self, user_hash: u64, offer: u32) -> usize {
        (mix64(user_hash).wrapping_add(u64::from(offer)) as usize) & self.set_mask
    }

    fn find(&self, user_hash: u64, offer: u32) -> Option<usize> {
        let base = self.set_of(user_hash, offer) * WAYS;
        (base..base + WAYS)
            .find(|&s| self.count[s] != 0 && self.user[s] == user_hash && self.offer[s] == offer)
    }

    fn victim(&self, user_hash: u64, offer: u32, now_ns: u64) -> usize {
        let base = self.set_of(user_hash, offer) * WAYS;
        let rank = |s: usize| {
            let class = if self.count[s] == 0 {
                0u8
            } else if ended(self.window_start_ns[s], self.window_ns[s], now_ns) {
                1
            } else {
                2
            };
            (class, self.last_ns[s])
        };
        (base..base + WAYS).min_by_key(|&s| rank(s)).unwrap_or(base)
    }
}

/// Whether the window that opened at `start_ns` and lasts `window_ns` has
/// ended by `now_ns`. A `now_ns` before the start counts as inside.
fn ended(start_ns: u64, window_ns: u64, now_ns: u64) -> bool {
    now_ns.saturating_sub(start_ns) >= window_ns
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_is_checked_and_rounded() {
        for capacity in [0, FREQUENCY_ENTRIES_MAX + 1] {
            let err = FrequencyStore::new(FrequencyConfig { capacity }).unwrap_err();
            assert!(err.to_string().contains("capacity"), "{err}");
        }
        let s = FrequencyStore::new(FrequencyConfig { capacity: 100 }).unwrap();
        assert_eq!(s.capacity(), 128);
        assert_eq!(s.sets(), 16);
    }

    #[test]
    fn window_boundary_is_exclusive() {
        assert!(!ended(100, 10, 109));
        assert!(ended(100, 10, 110));
        assert!(!ended(100, 10, 50), "a clock step back stays in the window");
        assert!(ended(100, 0, 100), "a zero window has always ended");
    }

    #[test]
    fn count_saturates() {
        let mut s = FrequencyStore::new(FrequencyConfig { capacity: 8 }).unwrap();
        s.record(1, 2, 0, 100);
        let slot = s.find(1, 2).unwrap();
        s.count[slot] = u32::MAX - 1;
        s.record(1, 2, 1, 100);
        s.record(1, 2, 2, 100);
        assert_eq!(s.count(1, 2, 3, 100), u32::MAX);
    }

    #[test]
    fn full_set_reuses_ended_window_before_evicting() {
        let mut s = FrequencyStore::new(FrequencyConfig { capacity: WAYS }).unwrap();
        for user in 0..WAYS as u64 {
            // User 3's entry has a short window; the others a long one.
            let window = if user == 3 { 10 } else { 1_000 };
            s.record(user, 0, user, window);
        }
        s.record(99, 0, 20, 1_000);
        assert_eq!(s.stats().reclaimed, 1);
        assert_eq!(s.stats().evictions, 0);
        assert_eq!(s.count(3, 0, 20, 1_000), 0);
        s.record(98, 0, 21, 1_000);
        assert_eq!(s.stats().evictions, 1);
        assert_eq!(
            s.count(0, 0, 21, 1_000),
            0,
            "user 0 had the oldest impression"
        );
        assert_eq!(s.count(1, 0, 21, 1_000), 1);
    }
}
