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
//! The store holds at most [`FrequencyStore::capacity`] entries: user slots
//! times [`OFFERS_PER_USER`]. A new user takes an empty slot of its set, else
//! the slot whose entries have all ended with the oldest last impression,
//! else evicts the slot with the oldest last impression (all its entries). A
//! user's new offer takes an empty entry of the user's slot, else the one
//! whose window has ended with the oldest last impression, else evicts the
//! uncapped entry (one recorded by [`FrequencyStore::record`], counted for
//! fatigue only) with the oldest last impression. An entry recorded under a
//! cap ([`FrequencyStore::record_within`]) is never pushed out while its
//! window lasts: when a user's entries are all capped and live, a new
//! capped impression is refused (the caller shows another offer) and a new
//! uncapped one is not counted ([`FrequencyStats::dropped`]). So within a
//! user slot, caps are exact. Every entry pushed out while still in its
//! window counts as an eviction. **A whole user slot can still be evicted
//! when its set is full of live users, and then that user's counts start
//! again from zero.** Size the store for the active users of one window and
//! watch [`FrequencyStats::evictions`].
//!
//! # Layout
//!
//! Two levels, keyed by user first: a set-associative table of user slots
//! ([`WAYS`] ways per set, the set chosen by a mixed user hash), and per user
//! slot a block of [`OFFERS_PER_USER`] entries. One decision asks about every
//! offer for one user; with this layout the first question finds the user's
//! slot and its block (one cache line per field: 8 entries of `u32` or
//! `u64`), and the others hit the same lines, instead of one random line per
//! offer. Flat arrays per field: per user slot `user` (u64), `used` (u8),
//! `user_last_ns`; per entry `offer` (u64, the offer id), `count` (u32),
//! `window_start_ns`, `window_ns` (the window recorded with the entry, so
//! that eviction can tell whether it has ended) and `last_ns`. A `count` of 0
//! marks an empty entry and a `used` of 0 an empty user slot; every user hash
//! and offer id, 0 included, is a usable key.
//!
//! Offers are keyed by their catalog id, not their place in a catalog, so
//! counts survive a catalog swapped in with the offers reordered, added or
//! removed (a model repository's bundle), and workers deciding over the old
//! and the new catalog for a moment share them correctly.

use super::{set_count, WAYS};
use crate::error::{Error, Result};
use bevy_ecs::prelude::Resource;

/// Entries (offers) kept per user slot.
pub const OFFERS_PER_USER: usize = 8;

/// The splitmix64 finaliser: a cheap bijective mixer that spreads any 64-bit
/// value (a small test id as well as a real hash) over all bits.
pub fn mix64(mut x: u64) -> u64 {
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
    /// least [`WAYS`] user slots of [`OFFERS_PER_USER`] entries. Must be in
    /// `1..=FREQUENCY_ENTRIES_MAX`.
    pub capacity: usize,
}

/// Counters of a [`FrequencyStore`] since it was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrequencyStats {
    /// Impressions recorded.
    pub records: u64,
    /// Windows restarted for an entry whose previous window had ended.
    pub window_resets: u64,
    /// Entries dropped for room whose window had ended.
    pub reclaimed: u64,
    /// Entries dropped for room while still inside their window.
    pub evictions: u64,
    /// Impressions not recorded: the user's entries were all capped and
    /// live ([`FrequencyStore::record_within`] refuses, `record` drops).
    pub dropped: u64,
    /// Entries held now, including ones whose window has ended.
    pub len: usize,
}

/// A copy of one user's entries in use (at most [`OFFERS_PER_USER`]),
/// taken once for a decision's many offers
/// ([`FrequencyStore::user_entries`]) so that each offer's question scans
/// a few values on the stack instead of the store's arrays. A snapshot: it
/// does not see impressions recorded after it was taken.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserEntries {
    offer: [u64; OFFERS_PER_USER],
    count: [u32; OFFERS_PER_USER],
    window_start_ns: [u64; OFFERS_PER_USER],
    len: usize,
}

impl UserEntries {
    /// [`FrequencyStore::count`] for this user, as of the snapshot.
    pub fn count(&self, offer: u64, now_ns: u64, window_ns: u64) -> u32 {
        match self.offer[..self.len].iter().position(|&o| o == offer) {
            Some(k) if !ended(self.window_start_ns[k], window_ns, now_ns) => self.count[k],
            _ => 0,
        }
    }

    /// Whether the user had no entry in use (every count is then 0).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Bounded impression counts per (user, offer) in fixed windows. See the
/// [module docs](self).
#[derive(Resource, Clone, Debug, PartialEq, Eq)]
pub struct FrequencyStore {
    set_mask: usize,
    /// Per user slot: the user hash.
    user: Vec<u64>,
    /// Per user slot: entries in use; 0 marks an empty slot.
    used: Vec<u8>,
    /// Per user slot: the latest impression of any of its entries.
    user_last_ns: Vec<u64>,
    /// Per entry (`[user_slots][OFFERS_PER_USER]`): the offer id.
    offer: Vec<u64>,
    /// Impressions in the current window; 0 marks an empty entry.
    count: Vec<u32>,
    window_start_ns: Vec<u64>,
    window_ns: Vec<u64>,
    last_ns: Vec<u64>,
    /// Per entry: 1 when recorded under a cap (never evicted while live).
    capped: Vec<u8>,
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
        let sets = set_count(config.capacity.div_ceil(OFFERS_PER_USER));
        let users = sets * WAYS;
        let entries = users * OFFERS_PER_USER;
        Ok(Self {
            set_mask: sets - 1,
            user: vec![0; users],
            used: vec![0; users],
            user_last_ns: vec![0; users],
            offer: vec![0; entries],
            count: vec![0; entries],
            window_start_ns: vec![0; entries],
            window_ns: vec![0; entries],
            last_ns: vec![0; entries],
            capped: vec![0; entries],
            stats: FrequencyStats::default(),
        })
    }

    /// Impressions of `offer` to `user_hash` in the window of `window_ns`
    /// that is current at `now_ns`: 0 if there is no entry or its window has
    /// ended. Read-only.
    pub fn count(&self, user_hash: u64, offer: u64, now_ns: u64, window_ns: u64) -> u32 {
        let Some(u) = self.find_user(user_hash) else {
            return 0;
        };
        match self.find_entry(u, offer) {
            Some(e) if !ended(self.window_start_ns[e], window_ns, now_ns) => self.count[e],
            _ => 0,
        }
    }

    /// A snapshot of `user_hash`'s entries in use, for asking about many
    /// offers at once (empty for a user the store does not hold).
    /// Read-only; allocates nothing.
    pub fn user_entries(&self, user_hash: u64) -> UserEntries {
        let mut out = UserEntries::default();
        let Some(u) = self.find_user(user_hash) else {
            return out;
        };
        let block = u * OFFERS_PER_USER..(u + 1) * OFFERS_PER_USER;
        for e in block.filter(|&e| self.count[e] != 0) {
            out.offer[out.len] = self.offer[e];
            out.count[out.len] = self.count[e];
            out.window_start_ns[out.len] = self.window_start_ns[e];
            out.len += 1;
        }
        out
    }

    /// Records one impression of `offer` to `user_hash` at `now_ns`, opening a
    /// new window of `window_ns` if there is none or the current one has
    /// ended. Makes room as the [module docs](self) say; when there is none
    /// (every entry of the user capped and live) the impression is not
    /// counted ([`FrequencyStats::dropped`]).
    pub fn record(&mut self, user_hash: u64, offer: u64, now_ns: u64, window_ns: u64) {
        self.record_entry(user_hash, offer, now_ns, window_ns, false);
    }

    /// Records one impression unless the user already has `cap` impressions
    /// of `offer` in the current window (`None`: no cap), and returns
    /// whether it did. An entry recorded with a cap is never evicted while
    /// its window lasts, so the count it holds stays exact; when the user's
    /// entries are all capped and live, a new offer is refused too.
    pub fn record_within(
        &mut self,
        user_hash: u64,
        offer: u64,
        cap: Option<u32>,
        now_ns: u64,
        window_ns: u64,
    ) -> bool {
        if cap.is_some_and(|cap| self.count(user_hash, offer, now_ns, window_ns) >= cap) {
            return false;
        }
        self.record_entry(user_hash, offer, now_ns, window_ns, cap.is_some())
    }

    /// Gives back one impression of `offer` recorded for the user at
    /// `recorded_ns` (a bid that lost, or whose win window closed
    /// unanswered): the count goes down by one if that impression is still
    /// in the entry's current window. Returns whether it did. A count that
    /// reaches 0 frees the entry.
    ///
    /// When the impression given back is the one that opened the window,
    /// the window opens again at the entry's latest record instead: the
    /// first impression still counted came at or before it, so the cap's
    /// window can only end later than an impression-anchored one would,
    /// never earlier (a lost bid never shortens a cap's window).
    pub fn release(
        &mut self,
        user_hash: u64,
        offer: u64,
        recorded_ns: u64,
        window_ns: u64,
    ) -> bool {
        let Some(u) = self.find_user(user_hash) else {
            return false;
        };
        let Some(e) = self.find_entry(u, offer) else {
            return false;
        };
        let start = self.window_start_ns[e];
        if recorded_ns < start || ended(start, window_ns, recorded_ns) || self.count[e] == 0 {
            return false;
        }
        self.count[e] -= 1;
        if self.count[e] == 0 {
            self.stats.len -= 1;
            self.used[u] = self.used[u].saturating_sub(1);
        } else if recorded_ns == start {
            self.window_start_ns[e] = self.last_ns[e].max(start);
        }
        true
    }

    fn record_entry(
        &mut self,
        user_hash: u64,
        offer: u64,
        now_ns: u64,
        window_ns: u64,
        capped: bool,
    ) -> bool {
        let u = match self.find_user(user_hash) {
            Some(u) => u,
            None => self.claim_user(user_hash, now_ns),
        };
        let e = match self.find_entry(u, offer) {
            Some(e) => {
                if ended(self.window_start_ns[e], window_ns, now_ns) {
                    self.stats.window_resets += 1;
                    self.count[e] = 0;
                    self.window_start_ns[e] = now_ns;
                }
                e
            }
            None => match self.claim_entry(u, offer, now_ns) {
                Some(e) => e,
                None => {
                    self.stats.dropped += 1;
                    return false;
                }
            },
        };
        self.stats.records += 1;
        self.count[e] = self.count[e].saturating_add(1);
        self.window_ns[e] = window_ns;
        self.last_ns[e] = now_ns;
        self.capped[e] |= u8::from(capped);
        self.user_last_ns[u] = now_ns;
        true
    }

    /// Counters since creation.
    pub fn stats(&self) -> FrequencyStats {
        self.stats
    }

    /// Entries the store can hold: user slots times [`OFFERS_PER_USER`].
    pub fn capacity(&self) -> usize {
        self.count.len()
    }

    /// Number of sets of user slots.
    pub fn sets(&self) -> usize {
        self.set_mask + 1
    }

    /// The set of user slots `user_hash` maps to. Exposed so that tests and
    /// diagnostics can reason about eviction.
    pub fn set_of(&self, user_hash: u64) -> usize {
        (mix64(user_hash) as usize) & self.set_mask
    }

    fn find_user(&self, user_hash: u64) -> Option<usize> {
        let base = self.set_of(user_hash) * WAYS;
        (base..base + WAYS).find(|&u| self.used[u] != 0 && self.user[u] == user_hash)
    }

    fn find_entry(&self, u: usize, offer: u64) -> Option<usize> {
        let base = u * OFFERS_PER_USER;
        (base..base + OFFERS_PER_USER).find(|&e| self.count[e] != 0 && self.offer[e] == offer)
    }

    /// A user slot for `user_hash`: empty, else the oldest whose entries
    /// have all ended, else the oldest; its entries are dropped and counted.
    fn claim_user(&mut self, user_hash: u64, now_ns: u64) -> usize {
        let base = self.set_of(user_hash) * WAYS;
        let rank = |u: usize| {
            let class = if self.used[u] == 0 {
                0u8
            } else if self
                .entries(u)
                .all(|e| self.count[e] == 0 || self.entry_ended(e, now_ns))
            {
                1
            } else {
                2
            };
            (class, self.user_last_ns[u])
        };
        let u = (base..base + WAYS).min_by_key(|&u| rank(u)).unwrap_or(base);
        for e in u * OFFERS_PER_USER..(u + 1) * OFFERS_PER_USER {
            if self.count[e] != 0 {
                self.drop_entry(e, now_ns);
            }
        }
        self.user[u] = user_hash;
        self.used[u] = 0;
        self.user_last_ns[u] = now_ns;
        u
    }

    /// An entry of user slot `u` for `offer`: empty, else the oldest whose
    /// window has ended, else the oldest uncapped one (dropped and counted);
    /// `None` when every entry is capped and live.
    fn claim_entry(&mut self, u: usize, offer: u64, now_ns: u64) -> Option<usize> {
        let rank = |e: usize| {
            let class = if self.count[e] == 0 {
                0u8
            } else if self.entry_ended(e, now_ns) {
                1
            } else if self.capped[e] == 0 {
                2
            } else {
                3
            };
            (class, self.last_ns[e])
        };
        let e = self.entries(u).min_by_key(|&e| rank(e))?;
        if rank(e).0 == 3 {
            return None;
        }
        if self.count[e] != 0 {
            self.drop_entry(e, now_ns);
        }
        self.used[u] += 1;
        self.stats.len += 1;
        self.offer[e] = offer;
        self.window_start_ns[e] = now_ns;
        self.capped[e] = 0;
        Some(e)
    }

    /// Empties entry `e`, counting it as reclaimed (window ended) or evicted.
    fn drop_entry(&mut self, e: usize, now_ns: u64) {
        if self.entry_ended(e, now_ns) {
            self.stats.reclaimed += 1;
        } else {
            self.stats.evictions += 1;
        }
        self.count[e] = 0;
        self.stats.len -= 1;
        let u = e / OFFERS_PER_USER;
        self.used[u] = self.used[u].saturating_sub(1);
    }

    /// Calls `f` with every live entry, for a state file.
    pub fn for_each_entry(&self, mut f: impl FnMut(FrequencyRecord)) {
        for u in (0..self.user.len()).filter(|&u| self.used[u] != 0) {
            for e in self.entries(u).filter(|&e| self.count[e] != 0) {
                f(FrequencyRecord {
                    user_hash: self.user[u],
                    offer: self.offer[e],
                    count: self.count[e],
                    capped: self.capped[e] != 0,
                    window_start_ns: self.window_start_ns[e],
                    window_ns: self.window_ns[e],
                    last_ns: self.last_ns[e],
                });
            }
        }
    }

    /// Puts `r` back (restoring a state file into a new store), as if its
    /// impressions had been recorded; returns false when the user's slot
    /// has no room for it (a smaller store than the one saved).
    pub fn restore_entry(&mut self, r: &FrequencyRecord) -> bool {
        let u = match self.find_user(r.user_hash) {
            Some(u) => u,
            None => self.claim_user(r.user_hash, r.last_ns),
        };
        let e = match self.find_entry(u, r.offer) {
            Some(e) => e,
            None => match self.claim_entry(u, r.offer, r.last_ns) {
                Some(e) => e,
                None => return false,
            },
        };
        self.count[e] = r.count.max(1);
        self.capped[e] = u8::from(r.capped);
        self.window_start_ns[e] = r.window_start_ns;
        self.window_ns[e] = r.window_ns;
        self.last_ns[e] = r.last_ns;
        self.user_last_ns[u] = self.user_last_ns[u].max(r.last_ns);
        true
    }

    fn entries(&self, u: usize) -> std::ops::Range<usize> {
        u * OFFERS_PER_USER..(u + 1) * OFFERS_PER_USER
    }

    fn entry_ended(&self, e: usize, now_ns: u64) -> bool {
        ended(self.window_start_ns[e], self.window_ns[e], now_ns)
    }
}

/// One (user, offer) entry as a state file keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrequencyRecord {
    /// The user's hash.
    pub user_hash: u64,
    /// The offer id.
    pub offer: u64,
    /// Impressions in the window (at least 1).
    pub count: u32,
    /// Recorded under a cap.
    pub capped: bool,
    /// When the window opened, ns.
    pub window_start_ns: u64,
    /// How long it lasts, ns.
    pub window_ns: u64,
    /// The latest impression, ns.
    pub last_ns: u64,
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
        // 100 entries = 13 user slots, rounded up to 16 = 2 sets of 8.
        assert_eq!(s.capacity(), 16 * OFFERS_PER_USER);
        assert_eq!(s.sets(), 2);
        let one = FrequencyStore::new(FrequencyConfig { capacity: 1 }).unwrap();
        assert_eq!((one.sets(), one.capacity()), (1, WAYS * OFFERS_PER_USER));
    }

    #[test]
    fn a_released_opener_moves_the_window_later_never_earlier() {
        let mut s = FrequencyStore::new(FrequencyConfig { capacity: 64 }).unwrap();
        // Cap 2 in a window of 100: a bid at 0 (lost later) and one at 10
        // (won), reserved as they are made.
        assert!(s.record_within(7, 1000, Some(2), 0, 100));
        assert!(s.record_within(7, 1000, Some(2), 10, 100));
        assert!(!s.record_within(7, 1000, Some(2), 20, 100), "capped");
        assert!(s.release(7, 1000, 0, 100), "the bid at 0 lost");
        // The window now opens at 10 (the impression kept), not 0: at 105
        // the impression at 10 still counts, so one more fits, not two.
        assert!(s.record_within(7, 1000, Some(2), 105, 100));
        assert!(!s.record_within(7, 1000, Some(2), 106, 100));
        // Released to 0, the entry is free again.
        let before = s.stats().len;
        assert!(s.release(7, 1000, 105, 100));
        assert!(s.release(7, 1000, 10, 100));
        assert_eq!(s.count(7, 1000, 107, 100), 0);
        assert_eq!(s.stats().len, before - 1);
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
        let u = s.find_user(1).unwrap();
        let slot = s.find_entry(u, 2).unwrap();
        s.count[slot] = u32::MAX - 1;
        s.record(1, 2, 1, 100);
        s.record(1, 2, 2, 100);
        assert_eq!(s.count(1, 2, 3, 100), u32::MAX);
    }

    #[test]
    fn full_set_reuses_ended_users_before_evicting() {
        let mut s = FrequencyStore::new(FrequencyConfig { capacity: 1 }).unwrap();
        assert_eq!(s.sets(), 1);
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
        assert_eq!(s.stats().len, WAYS);
    }

    #[test]
    fn a_users_offers_share_one_slot_and_the_oldest_offer_makes_room() {
        let mut s = FrequencyStore::new(FrequencyConfig { capacity: 64 }).unwrap();
        for offer in 0..OFFERS_PER_USER as u64 {
            s.record(7, offer, offer, 1_000);
        }
        assert_eq!(s.stats().len, OFFERS_PER_USER);
        // A ninth offer evicts the offer with the oldest last impression (0).
        s.record(7, 100, 50, 1_000);
        assert_eq!(s.stats().evictions, 1);
        assert_eq!(s.count(7, 0, 51, 1_000), 0);
        assert_eq!(s.count(7, 1, 51, 1_000), 1);
        assert_eq!(s.count(7, 100, 51, 1_000), 1);
        // Re-recording keeps the same entry.
        s.record(7, 100, 52, 1_000);
        assert_eq!(s.count(7, 100, 53, 1_000), 2);
        assert_eq!(s.stats().len, OFFERS_PER_USER);
    }

    #[test]
    fn capped_entries_are_never_evicted_while_live() {
        let mut s = FrequencyStore::new(FrequencyConfig { capacity: 64 }).unwrap();
        // Seven capped offers reach their cap of 1, then an uncapped one.
        for offer in 0..7u64 {
            assert!(s.record_within(7, offer, Some(1), offer, 1_000));
        }
        s.record(7, 50, 10, 1_000);
        // New offers push out the uncapped entry, never a capped one, even
        // though the capped ones are older.
        assert!(s.record_within(7, 60, Some(1), 20, 1_000));
        assert_eq!(s.stats().evictions, 1, "the uncapped entry");
        for offer in 0..7u64 {
            assert!(
                !s.record_within(7, offer, Some(1), 30, 1_000),
                "offer {offer} stays capped"
            );
        }
        // Every entry capped and live: a new capped offer is refused, an
        // uncapped impression is not counted.
        assert!(!s.record_within(7, 70, Some(1), 40, 1_000));
        s.record(7, 80, 41, 1_000);
        assert_eq!(s.stats().dropped, 2);
        assert_eq!(s.count(7, 80, 42, 1_000), 0);
        // Once a window ends, its entry makes room.
        assert!(s.record_within(7, 70, Some(1), 1_000, 1_000));
        assert_eq!(s.stats().reclaimed, 1);
    }
}
