//! The decision cache: the engine's L1 cache of model score rows.
//!
//! It maps a 64-bit key, a hash of the model id and the request's feature row
//! that the caller computes, to a fixed-width row of `f32` (one calibrated
//! click probability per offer), so that a repeated request skips the forward
//! pass. Each row carries an expiry time; a lookup at or after it misses.
//!
//! # Layout
//!
//! Set-associative (see [the module docs](super)) with [`WAYS`] ways per set
//! and least-recently-used replacement inside a set. The fields are flat
//! arrays indexed by slot (`set * WAYS + way`): `keys`, `expires_ns` and
//! `last_used` hold one `u64` each, and `values` holds `value_width` floats
//! per slot, so the score row of a slot is one contiguous slice. A slot is
//! empty when its `expires_ns` is 0: an entry always expires strictly after
//! the time it was inserted, so 0 never marks a live one, and every `u64`
//! (0 included) is a usable key. `last_used` is a per-cache counter stamped on
//! each hit and insert, not a time, so recency never depends on the clock.
//!
//! The trade-off against a fully associative LRU (a hash map plus a linked
//! list): no pointers, no per-entry allocation and one cache line of keys per
//! lookup, at the price of evicting within a set, which may evict an entry
//! that a global LRU would keep.

use super::{set_count, WAYS};
use crate::error::{Error, Result};
use bevy_ecs::prelude::Resource;
use xxhash_rust::xxh3::xxh3_64;

/// Most entries a decision cache may hold (after rounding up).
pub const CACHE_ENTRIES_MAX: usize = 1 << 22;
/// Widest score row a decision cache accepts.
pub const CACHE_WIDTH_MAX: usize = 4096;
/// Most bytes of score rows a decision cache may hold (entries × width × 4).
pub const CACHE_VALUE_BYTES_MAX: usize = 1 << 30;

const STORE: &str = "decision cache";

/// Size and time-to-live of a [`DecisionCache`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheConfig {
    /// Entries to hold; rounded up to a power of two of at least [`WAYS`]. 0
    /// disables the cache: every lookup misses and inserts keep nothing.
    pub capacity: usize,
    /// How long an inserted row stays valid, in nanoseconds. 0 caches nothing.
    pub ttl_ns: u64,
}

/// Counters of a [`DecisionCache`] since it was created. Every
/// [`DecisionCache::get`] counts exactly one of `hits`, `misses` and `expired`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CacheStats {
    /// Lookups that returned a row.
    pub hits: u64,
    /// Lookups that found no entry for the key.
    pub misses: u64,
    /// Lookups that found the key but past its expiry (the entry is dropped).
    pub expired: u64,
    /// Rows stored, new keys and replacements alike.
    pub inserts: u64,
    /// Unexpired entries pushed out to make room for another key.
    pub evictions: u64,
    /// Inserts refused because the row's validity had already ended.
    pub uncacheable: u64,
    /// Calls to [`DecisionCache::clear`].
    pub clears: u64,
    /// Entries held now, including expired ones not yet reclaimed.
    pub len: usize,
    /// Entries the cache can hold ([`DecisionCache::capacity`]).
    pub capacity: usize,
}

/// A bounded, set-associative LRU cache from a 64-bit key to a row of
/// `value_width` scores, with per-entry expiry. See the [module docs](self).
#[derive(Resource, Clone, Debug, PartialEq)]
pub struct DecisionCache {
    ttl_ns: u64,
    width: usize,
    /// Sets minus one (sets are a power of two); unused when disabled.
    set_mask: usize,
    sets: usize,
    keys: Vec<u64>,
    /// Expiry per slot; 0 marks an empty slot.
    expires_ns: Vec<u64>,
    /// Recency stamp per slot (higher is more recent); 0 for an empty slot.
    last_used: Vec<u64>,
    /// `width` scores per slot, slot-major.
    values: Vec<f32>,
    /// Last stamp handed out.
    tick: u64,
    stats: CacheStats,
}

impl DecisionCache {
    /// A cache for rows of `value_width` scores. Fails with
    /// [`Error::BadStoreConfig`] when `capacity` exceeds [`CACHE_ENTRIES_MAX`],
    /// `value_width` is outside `1..=CACHE_WIDTH_MAX`, or the rows would take
    /// more than [`CACHE_VALUE_BYTES_MAX`] bytes.
    pub fn new(config: CacheConfig, value_width: usize) -> Result<Self> {
        let bad = |reason: String| Error::BadStoreConfig {
            store: STORE,
            reason,
        };
        if config.capacity > CACHE_ENTRIES_MAX {
            return Err(bad(format!(
                "capacity {} is more than the limit of {CACHE_ENTRIES_MAX} entries",
                config.capacity
            )));
        }
        if !(1..=CACHE_WIDTH_MAX).contains(&value_width) {
            return Err(bad(format!(
                "value_width {value_width} is outside 1..={CACHE_WIDTH_MAX}"
            )));
        }
        let sets = if config.capacity == 0 {
            0
        } else {
            set_count(config.capacity)
        };
        let slots = sets * WAYS;
        let bytes = slots
            .checked_mul(value_width)
            .and_then(|n| n.checked_mul(std::mem::size_of::<f32>()));
        match bytes {
            Some(b) if b <= CACHE_VALUE_BYTES_MAX => {}
            _ => {
                return Err(bad(format!(
                    "capacity {} (rounded to {slots}) * value_width {value_width} needs more \
                     than the limit of {CACHE_VALUE_BYTES_MAX} bytes of rows",
                    config.capacity
                )))
            }
        }
        Ok(Self {
            ttl_ns: config.ttl_ns,
            width: value_width,
            set_mask: sets.saturating_sub(1),
            sets,
            keys: vec![0; slots],
            expires_ns: vec![0; slots],
            last_used: vec![0; slots],
            values: vec![0.0; slots * value_width],
            tick: 0,
            stats: CacheStats::default(),
        })
    }

    /// The row cached for `key`, if there is one and `now_ns` is before its
    /// expiry. A hit makes the entry the most recently used of its set; a
    /// lookup that finds the key expired drops the entry.
    pub fn get(&mut self, key: u64, now_ns: u64) -> Option<&[f32]> {
        let Some(slot) = self.find(key) else {
            self.stats.misses += 1;
            return None;
        };
        if self.expires_ns[slot] <= now_ns {
            self.stats.expired += 1;
            self.free(slot);
            return None;
        }
        self.stats.hits += 1;
        self.tick += 1;
        self.last_used[slot] = self.tick;
        let start = slot * self.width;
        Some(&self.values[start..start + self.width])
    }

    /// Stores `value` for `key` until `min(now_ns + ttl_ns, valid_until_ns)`.
    ///
    /// If that expiry is not after `now_ns`, nothing is stored, any entry
    /// already held for `key` is dropped (so a later lookup cannot return an
    /// older row for it) and the insert counts as `uncacheable`. Otherwise the
    /// row replaces the key's entry if it has one, or takes an empty way of
    /// the key's set, or the least recently used expired way, or else evicts
    /// the least recently used way. Fails with [`Error::WrongRowWidth`],
    /// changing nothing, when `value` is not `value_width` long. On a
    /// disabled cache (capacity 0) it does nothing.
    pub fn insert(
        &mut self,
        key: u64,
        value: &[f32],
        now_ns: u64,
        valid_until_ns: u64,
    ) -> Result<()> {
        if value.len() != self.width {
            return Err(Error::WrongRowWidth {
                what: "decision cache",
                expected: self.width,
                found: value.len(),
            });
        }
        if self.sets == 0 {
            return Ok(());
        }
        let expires = now_ns.saturating_add(self.ttl_ns).min(valid_until_ns);
        if expires <= now_ns {
            self.stats.uncacheable += 1;
            if let Some(slot) = self.find(key) {
                self.free(slot);
            }
            return Ok(());
        }
        let slot = match self.find(key) {
            Some(slot) => slot,
            None => {
                let slot = self.victim(key, now_ns);
                if self.expires_ns[slot] == 0 {
                    self.stats.len += 1;
                } else if self.expires_ns[slot] > now_ns {
                    self.stats.evictions += 1;
                }
                slot
            }
        };
        self.keys[slot] = key;
        self.expires_ns[slot] = expires;
        self.tick += 1;
        self.last_used[slot] = self.tick;
        let start = slot * self.width;
        self.values[start..start + self.width].copy_from_slice(value);
        self.stats.inserts += 1;
        Ok(())
    }

    /// Drops every entry (for example when the model is swapped). Counters
    /// other than `len` are kept.
    pub fn clear(&mut self) {
        self.expires_ns.fill(0);
        self.last_used.fill(0);
        self.stats.len = 0;
        self.stats.clears += 1;
    }

    /// Counters since creation, and the entries held now.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            capacity: self.capacity(),
            ..self.stats
        }
    }

    /// Entries the cache can hold: the configured capacity rounded up to a
    /// power of two of at least [`WAYS`], or 0 when disabled.
    pub fn capacity(&self) -> usize {
        self.keys.len()
    }

    /// Entries held now, including expired ones not yet reclaimed.
    pub fn len(&self) -> usize {
        self.stats.len
    }

    /// Whether the cache holds no entry.
    pub fn is_empty(&self) -> bool {
        self.stats.len == 0
    }

    /// Scores per row.
    pub fn value_width(&self) -> usize {
        self.width
    }

    /// The config this cache was built with (its capacity rounded).
    pub fn config(&self) -> CacheConfig {
        CacheConfig {
            capacity: self.capacity(),
            ttl_ns: self.ttl_ns,
        }
    }

    /// Number of sets (capacity / [`WAYS`]).
    pub fn sets(&self) -> usize {
        self.sets
    }

    /// The set `key` maps to, or `None` when the cache is disabled. Exposed
    /// so that tests and diagnostics can reason about eviction.
    pub fn set_of(&self, key: u64) -> Option<usize> {
        (self.sets > 0).then(|| self.set_index(key))
    }

    fn set_index(&self, key: u64) -> usize {
        // Keys are meant to be hashes already; mixing once more keeps
        // sequential or low-entropy keys from piling into a few sets.
        (xxh3_64(&key.to_le_bytes()) as usize) & self.set_mask
    }

    /// The slot holding `key`, expired or not.
    fn find(&self, key: u64) -> Option<usize> {
        if self.sets == 0 {
            return None;
        }
        let base = self.set_index(key) * WAYS;
        (base..base + WAYS).find(|&s| self.expires_ns[s] != 0 && self.keys[s] == key)
    }

    /// The slot a new key takes in its set: the first empty way, else the
    /// least recently used expired way, else the least recently used way.
    fn victim(&self, key: u64, now_ns: u64) -> usize {
        let base = self.set_index(key) * WAYS;
        let rank = |s: usize| {
            let class = match self.expires_ns[s] {
                0 => 0u8,
                e if e <= now_ns => 1,
                _ => 2,
            };
            (class, self.last_used[s])
        };
        (base..base + WAYS).min_by_key(|&s| rank(s)).unwrap_or(base)
    }

    fn free(&mut self, slot: usize) {
        self.expires_ns[slot] = 0;
        self.last_used[slot] = 0;
        self.stats.len -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(capacity: usize, ttl_ns: u64, width: usize) -> DecisionCache {
        DecisionCache::new(CacheConfig { capacity, ttl_ns }, width).unwrap()
    }

    #[test]
    fn capacity_rounds_up_to_whole_sets() {
        assert_eq!(cache(1, 10, 1).capacity(), WAYS);
        assert_eq!(cache(9, 10, 1).capacity(), 16);
        assert_eq!(cache(16, 10, 1).sets(), 2);
        assert_eq!(cache(0, 10, 1).capacity(), 0);
        assert_eq!(
            cache(CACHE_ENTRIES_MAX, 10, 1).capacity(),
            CACHE_ENTRIES_MAX
        );
    }

    #[test]
    fn lru_way_is_evicted_and_recently_read_way_survives() {
        // One set, so every key competes for the same eight ways.
        let mut c = cache(WAYS, 1_000, 1);
        for k in 0..WAYS as u64 {
            c.insert(k, &[k as f32], 0, u64::MAX).unwrap();
        }
        assert!(c.get(0, 1).is_some()); // key 0 is now the most recent
        c.insert(100, &[100.0], 2, u64::MAX).unwrap();
        assert_eq!(c.get(0, 3), Some(&[0.0][..]));
        assert_eq!(c.get(1, 3), None, "key 1 was least recently used");
        assert_eq!(c.stats().evictions, 1);
        assert_eq!(c.len(), WAYS);
    }

    #[test]
    fn expired_way_is_reused_before_a_live_one_is_evicted() {
        let mut c = cache(WAYS, 1_000, 1);
        for k in 0..WAYS as u64 {
            // Key 5 expires at 50, the others at 1_000 + k.
            let until = if k == 5 { 50 } else { u64::MAX };
            c.insert(k, &[k as f32], k, until).unwrap();
        }
        c.insert(100, &[1.0], 60, u64::MAX).unwrap();
        assert_eq!(c.stats().evictions, 0);
        for k in (0..WAYS as u64).filter(|&k| k != 5) {
            assert!(c.get(k, 61).is_some(), "key {k} kept");
        }
        assert_eq!(c.get(5, 61), None);
        assert_eq!(c.stats().misses, 1, "key 5's way was taken, so a miss");
    }

    #[test]
    fn uncacheable_insert_drops_the_older_row() {
        let mut c = cache(64, 1_000, 2);
        c.insert(7, &[1.0, 2.0], 0, u64::MAX).unwrap();
        c.insert(7, &[3.0, 4.0], 10, 10).unwrap();
        assert_eq!(c.stats().uncacheable, 1);
        assert_eq!(c.get(7, 11), None);
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn ttl_addition_saturates() {
        let mut c = cache(8, u64::MAX, 1);
        c.insert(1, &[1.0], u64::MAX - 5, u64::MAX).unwrap();
        assert_eq!(c.get(1, u64::MAX - 1), Some(&[1.0][..]));
        assert_eq!(c.get(1, u64::MAX), None);
    }
}
