//! The bounded stores: each checked against a plain reference model over
//! random operation sequences (time jumps included), plus their documented
//! edge cases, config validation, and zero allocations after `new`.
//!
//! The reference models keep the documented semantics in the most direct
//! form: the cache as one recency-ordered list per set, the frequency store
//! as one list of entries per set, the ledger as a map from (offer, day) to
//! micros spent. They borrow only the set mapping (`set_of`) from the store.

use cx_domain::store::{
    BudgetExhausted, BudgetLedger, CacheConfig, CacheStats, DecisionCache, FrequencyConfig,
    FrequencyStats, FrequencyStore, BUDGET_MAX, CACHE_ENTRIES_MAX, CACHE_VALUE_BYTES_MAX,
    CACHE_WIDTH_MAX, FREQUENCY_ENTRIES_MAX, OFFERS_MAX, OFFERS_PER_USER, WAYS,
};
use cx_domain::Error;
use proptest::prelude::*;
use std::collections::HashMap;

const DAY_NS: u64 = 86_400_000_000_000;

fn bad_config_reason(err: Error, store: &str) -> String {
    match err {
        Error::BadStoreConfig { store: s, reason } => {
            assert_eq!(s, store);
            reason
        }
        other => panic!("expected BadStoreConfig, got {other:?}"),
    }
}

// ---------------------------------------------------------------- configs

#[test]
fn bad_cache_configs_name_the_field() {
    let cfg = |capacity| CacheConfig {
        capacity,
        ttl_ns: 1,
    };
    let reason = bad_config_reason(
        DecisionCache::new(cfg(CACHE_ENTRIES_MAX + 1), 1).unwrap_err(),
        "decision cache",
    );
    assert!(reason.contains("capacity"), "{reason}");
    for width in [0, CACHE_WIDTH_MAX + 1] {
        let reason = bad_config_reason(
            DecisionCache::new(cfg(8), width).unwrap_err(),
            "decision cache",
        );
        assert!(reason.contains("value_width"), "{reason}");
    }
    // Each limit alone is fine, together they are too many bytes.
    let reason = bad_config_reason(
        DecisionCache::new(cfg(CACHE_ENTRIES_MAX), CACHE_WIDTH_MAX).unwrap_err(),
        "decision cache",
    );
    assert!(reason.contains("bytes"), "{reason}");
    let most = CACHE_VALUE_BYTES_MAX / 4 / CACHE_WIDTH_MAX;
    assert_eq!(
        DecisionCache::new(cfg(most), CACHE_WIDTH_MAX)
            .unwrap()
            .capacity(),
        most
    );
}

#[test]
fn bad_frequency_configs_name_the_field() {
    for capacity in [0, FREQUENCY_ENTRIES_MAX + 1, usize::MAX] {
        let reason = bad_config_reason(
            FrequencyStore::new(FrequencyConfig { capacity }).unwrap_err(),
            "frequency store",
        );
        assert!(reason.contains("capacity"), "{reason}");
    }
}

#[test]
fn bad_budgets_name_the_offer() {
    for bad in [f64::NAN, f64::INFINITY, -0.01, BUDGET_MAX * 2.0] {
        let reason = bad_config_reason(
            BudgetLedger::new(&[Some(1.0), None, Some(bad)]).unwrap_err(),
            "budget ledger",
        );
        assert!(reason.contains("daily_budgets[2]"), "{reason}");
    }
    let reason = bad_config_reason(
        BudgetLedger::new(&vec![None; OFFERS_MAX + 1]).unwrap_err(),
        "budget ledger",
    );
    assert!(reason.contains("daily_budgets"), "{reason}");
    assert_eq!(
        BudgetLedger::new(&vec![None; OFFERS_MAX]).unwrap().offers(),
        OFFERS_MAX
    );
}

#[test]
fn stores_are_ecs_resources() {
    let mut world = bevy_ecs::world::World::new();
    world.insert_resource(
        DecisionCache::new(
            CacheConfig {
                capacity: 16,
                ttl_ns: 5,
            },
            3,
        )
        .unwrap(),
    );
    world.insert_resource(FrequencyStore::new(FrequencyConfig { capacity: 16 }).unwrap());
    world.insert_resource(BudgetLedger::new(&[Some(1.0)]).unwrap());
    world
        .resource_mut::<DecisionCache>()
        .insert(1, &[1.0, 2.0, 3.0], 0, u64::MAX)
        .unwrap();
    assert_eq!(
        world.resource_mut::<DecisionCache>().get(1, 1),
        Some(&[1.0, 2.0, 3.0][..])
    );
    assert_eq!(
        world.resource::<FrequencyStore>().capacity(),
        WAYS * OFFERS_PER_USER
    );
    assert_eq!(world.resource::<BudgetLedger>().remaining(0, 0), Some(1.0));
}

// ---------------------------------------------------------------- cache

fn cache(capacity: usize, ttl_ns: u64, width: usize) -> DecisionCache {
    DecisionCache::new(CacheConfig { capacity, ttl_ns }, width).unwrap()
}

#[test]
fn cache_respects_ttl_and_valid_until() {
    let mut c = cache(64, 100, 1);
    c.insert(1, &[1.0], 1_000, u64::MAX).unwrap(); // expires at 1_100 (ttl)
    c.insert(2, &[2.0], 1_000, 1_050).unwrap(); // expires at 1_050 (valid_until)
    assert_eq!(c.get(2, 1_049), Some(&[2.0][..]));
    assert_eq!(c.get(2, 1_050), None, "valid_until is exclusive");
    assert_eq!(c.get(1, 1_099), Some(&[1.0][..]));
    assert_eq!(c.get(1, 1_100), None, "ttl is exclusive");
    c.insert(3, &[3.0], 1_000, 1_000).unwrap();
    c.insert(4, &[4.0], 1_000, 10).unwrap();
    let s = c.stats();
    assert_eq!((s.hits, s.expired, s.uncacheable, s.inserts), (2, 2, 2, 2));
    assert_eq!(c.len(), 0, "expired lookups dropped their entries");
}

#[test]
fn cache_key_zero_and_max_are_ordinary_keys() {
    let mut c = cache(8, 100, 2);
    assert_eq!(c.get(0, 0), None, "an empty slot is not key 0");
    c.insert(0, &[0.5, 0.25], 0, u64::MAX).unwrap();
    c.insert(u64::MAX, &[1.0, 2.0], 0, u64::MAX).unwrap();
    assert_eq!(c.get(0, 1), Some(&[0.5, 0.25][..]));
    assert_eq!(c.get(u64::MAX, 1), Some(&[1.0, 2.0][..]));
    assert_eq!(c.len(), 2);
}

#[test]
fn cache_rejects_wrong_widths_without_change() {
    let mut c = cache(8, 100, 3);
    c.insert(5, &[1.0, 2.0, 3.0], 0, u64::MAX).unwrap();
    let before = c.clone();
    for row in [&[][..], &[1.0, 2.0][..], &[1.0; 4][..]] {
        match c.insert(5, row, 1, u64::MAX) {
            Err(Error::WrongRowWidth {
                expected, found, ..
            }) => assert_eq!((expected, found), (3, row.len())),
            other => panic!("expected WrongRowWidth, got {other:?}"),
        }
    }
    assert_eq!(c, before);
    // A disabled cache still checks the width, and otherwise keeps nothing.
    let mut off = cache(0, 100, 3);
    assert!(off.insert(5, &[1.0], 0, u64::MAX).is_err());
    off.insert(5, &[1.0; 3], 0, u64::MAX).unwrap();
    assert_eq!(off.get(5, 1), None);
    assert_eq!((off.capacity(), off.len(), off.set_of(5)), (0, 0, None));
    assert_eq!(off.stats().misses, 1);
}

#[test]
fn cache_clear_empties_and_is_counted() {
    let mut c = cache(32, 100, 1);
    for k in 0..20 {
        c.insert(k, &[k as f32], 0, u64::MAX).unwrap();
    }
    c.clear();
    assert_eq!((c.len(), c.stats().clears), (0, 1));
    assert!((0..20).all(|k| c.get(k, 1).is_none()));
    c.insert(3, &[9.0], 2, u64::MAX).unwrap();
    assert_eq!(c.get(3, 3), Some(&[9.0][..]));
}

#[test]
fn cache_never_exceeds_capacity_under_pressure() {
    let mut c = cache(100, 1_000_000, 1);
    assert_eq!(c.capacity(), 128);
    for k in 0..10_000u64 {
        c.insert(k.wrapping_mul(0x9e37_79b9_7f4a_7c15), &[1.0], k, u64::MAX)
            .unwrap();
        assert!(c.len() <= c.capacity());
    }
    assert_eq!(c.len(), c.capacity(), "every way is in use");
    assert_eq!(c.stats().evictions, 10_000 - 128);
}

/// The cache's documented semantics, one recency-ordered list per set
/// (least recently used first).
struct RefCache {
    ttl_ns: u64,
    sets: Vec<Vec<RefCacheEntry>>,
    stats: CacheStats,
}

struct RefCacheEntry {
    key: u64,
    expires_ns: u64,
    value: Vec<f32>,
}

impl RefCache {
    fn get(&mut self, set: usize, key: u64, now_ns: u64) -> Option<Vec<f32>> {
        let list = &mut self.sets[set];
        let Some(i) = list.iter().position(|e| e.key == key) else {
            self.stats.misses += 1;
            return None;
        };
        let entry = list.remove(i);
        if entry.expires_ns <= now_ns {
            self.stats.expired += 1;
            self.stats.len -= 1;
            return None;
        }
        self.stats.hits += 1;
        let value = entry.value.clone();
        list.push(entry);
        Some(value)
    }

    fn insert(&mut self, set: usize, key: u64, value: &[f32], now_ns: u64, valid_until_ns: u64) {
        let expires_ns = now_ns.saturating_add(self.ttl_ns).min(valid_until_ns);
        let list = &mut self.sets[set];
        let existing = list.iter().position(|e| e.key == key);
        if expires_ns <= now_ns {
            self.stats.uncacheable += 1;
            if let Some(i) = existing {
                list.remove(i);
                self.stats.len -= 1;
            }
            return;
        }
        if let Some(i) = existing {
            list.remove(i);
        } else if list.len() < WAYS {
            self.stats.len += 1;
        } else if let Some(i) = list.iter().position(|e| e.expires_ns <= now_ns) {
            list.remove(i);
        } else {
            list.remove(0);
            self.stats.evictions += 1;
        }
        self.stats.inserts += 1;
        list.push(RefCacheEntry {
            key,
            expires_ns,
            value: value.to_vec(),
        });
    }

    fn clear(&mut self) {
        self.sets.iter_mut().for_each(Vec::clear);
        self.stats.len = 0;
        self.stats.clears += 1;
    }
}

#[derive(Clone, Debug)]
enum CacheOp {
    Get(u64),
    /// Insert with `valid_until = now + offset` (clamped at 0 and u64::MAX).
    Insert(u64, i64),
    InsertWrongWidth(u64),
    Advance(u64),
    StepBack(u64),
    Clear,
}

/// Keys from a small pool (0 and u64::MAX included) so that sets fill and keys
/// repeat.
fn pool_key() -> impl Strategy<Value = u64> {
    prop_oneof![
        1 => Just(0u64),
        1 => Just(u64::MAX),
        8 => (1u64..48).prop_map(|k| k.wrapping_mul(0x2545_f491_4f6c_dd1d)),
    ]
}

fn cache_op() -> impl Strategy<Value = CacheOp> {
    prop_oneof![
        10 => pool_key().prop_map(CacheOp::Get),
        10 => (pool_key(), -50i64..400).prop_map(|(k, o)| CacheOp::Insert(k, o)),
        1 => pool_key().prop_map(CacheOp::InsertWrongWidth),
        6 => (0u64..60).prop_map(CacheOp::Advance),
        1 => Just(CacheOp::Advance(1_000_000_000)),
        1 => (0u64..300).prop_map(CacheOp::StepBack),
        1 => Just(CacheOp::Clear),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn cache_matches_per_set_lru_reference(
        capacity in prop_oneof![Just(0usize), 1usize..=8, 9usize..=64],
        ttl_ns in prop_oneof![Just(0u64), 1u64..300, Just(u64::MAX)],
        width in 1usize..5,
        ops in prop::collection::vec(cache_op(), 1..300),
    ) {
        let mut c = cache(capacity, ttl_ns, width);
        let mut r = RefCache {
            ttl_ns,
            sets: (0..c.sets()).map(|_| Vec::new()).collect(),
            stats: CacheStats {
                // Rounded up to a power of two of at least 8, or 0 (off).
                capacity: if capacity == 0 { 0 } else { capacity.next_power_of_two().max(8) },
                ..CacheStats::default()
            },
        };
        let mut now = 1_000u64;
        let mut serial = 0.0f32;
        for op in ops {
            match op {
                CacheOp::Get(key) => {
                    let got = c.get(key, now).map(<[f32]>::to_vec);
                    let want = match c.set_of(key) {
                        Some(set) => r.get(set, key, now),
                        None => {
                            r.stats.misses += 1;
                            None
                        }
                    };
                    prop_assert_eq!(got, want, "get({}) at {}", key, now);
                }
                CacheOp::Insert(key, offset) => {
                    serial += 1.0;
                    let value: Vec<f32> = (0..width).map(|i| serial * 10.0 + i as f32).collect();
                    let valid_until = now.saturating_add_signed(offset);
                    c.insert(key, &value, now, valid_until).unwrap();
                    if let Some(set) = c.set_of(key) {
                        r.insert(set, key, &value, now, valid_until);
                    }
                }
                CacheOp::InsertWrongWidth(key) => {
                    let before = c.stats();
                    prop_assert!(c.insert(key, &vec![1.0; width + 1], now, u64::MAX).is_err());
                    prop_assert_eq!(c.stats(), before);
                }
                CacheOp::Advance(dt) => now = now.saturating_add(dt),
                CacheOp::StepBack(dt) => now = now.saturating_sub(dt),
                CacheOp::Clear => {
                    c.clear();
                    r.clear();
                }
            }
            prop_assert_eq!(c.stats(), r.stats);
            prop_assert!(c.len() <= c.capacity());
            prop_assert!(r.sets.iter().all(|s| s.len() <= WAYS));
        }
    }

    /// Whatever happened before, a hit is never expired: every row the cache
    /// returns was inserted for that key, and `now` is before both its TTL
    /// and its `valid_until`.
    #[test]
    fn cache_never_returns_an_expired_row(
        ttl_ns in 1u64..200,
        ops in prop::collection::vec((pool_key(), 0i64..300, 0u64..80, any::<bool>()), 1..400),
    ) {
        let mut c = cache(16, ttl_ns, 1);
        // For each key, the (value, expiry) of its most recent insert.
        let mut last: HashMap<u64, (f32, u64)> = HashMap::new();
        let mut now = 0u64;
        for (i, (key, offset, dt, is_insert)) in ops.into_iter().enumerate() {
            now += dt;
            if is_insert {
                let until = now.saturating_add_signed(offset);
                let expiry = (now + ttl_ns).min(until);
                c.insert(key, &[i as f32], now, until).unwrap();
                if expiry > now {
                    last.insert(key, (i as f32, expiry));
                } else {
                    last.remove(&key);
                }
            } else if let Some(row) = c.get(key, now) {
                let (value, expiry) = last[&key];
                prop_assert_eq!(row, &[value][..]);
                prop_assert!(now < expiry);
            }
        }
    }
}

// ---------------------------------------------------------------- frequency

fn freq(capacity: usize) -> FrequencyStore {
    FrequencyStore::new(FrequencyConfig { capacity }).unwrap()
}

#[test]
fn frequency_counts_within_a_window_and_rolls_over() {
    let mut s = freq(64);
    let w = 1_000;
    for t in [100, 200, 1_099] {
        s.record(7, 3, t, w);
    }
    assert_eq!(s.count(7, 3, 1_099, w), 3);
    assert_eq!(s.count(7, 4, 1_099, w), 0, "other offer");
    assert_eq!(s.count(8, 3, 1_099, w), 0, "other user");
    assert_eq!(
        s.count(7, 3, 1_100, w),
        0,
        "the window opened at 100 ended at 1_100"
    );
    s.record(7, 3, 1_500, w);
    assert_eq!(s.count(7, 3, 1_500, w), 1, "a new window opened at 1_500");
    assert_eq!(s.count(7, 3, 2_499, w), 1);
    assert_eq!(s.count(7, 3, 2_500, w), 0);
    assert_eq!(
        s.count(7, 3, 1_200, w),
        1,
        "a clock step back stays in the window"
    );
    assert_eq!(s.stats().window_resets, 1);
    assert_eq!(s.stats().records, 4);
    // User 0 and offer 0 are ordinary keys.
    s.record(0, 0, 10, w);
    assert_eq!(s.count(0, 0, 10, w), 1);
}

#[test]
fn frequency_extreme_windows() {
    let mut s = freq(8);
    for _ in 0..10 {
        s.record(1, 1, 0, u64::MAX);
    }
    assert_eq!(s.count(1, 1, u64::MAX - 1, u64::MAX), 10);
    assert_eq!(
        s.count(1, 1, u64::MAX, u64::MAX),
        0,
        "window [0, u64::MAX) ended"
    );
    s.record(1, 1, u64::MAX, u64::MAX);
    assert_eq!(s.count(1, 1, u64::MAX, u64::MAX), 1, "a new window opened");
    // A zero window caps nothing: every impression opens and ends a window.
    s.record(2, 1, 5, 0);
    s.record(2, 1, 5, 0);
    assert_eq!(s.count(2, 1, 5, 0), 0);
    assert_eq!(s.stats().window_resets, 2);
}

#[test]
fn frequency_evicts_under_pressure_but_stays_bounded() {
    let mut s = freq(64); // one set of 8 user slots, 8 offers each
    assert_eq!((s.sets(), s.capacity()), (1, WAYS * OFFERS_PER_USER));
    let w = u64::MAX; // nothing ever ends, so a new user must evict
    for user in 0..10_000u64 {
        s.record(user, 1, user, w);
        assert!(s.stats().len <= s.capacity());
    }
    let st = s.stats();
    assert_eq!(st.len, WAYS);
    assert_eq!(st.evictions, 10_000 - WAYS as u64);
    assert_eq!(st.reclaimed, 0);
    // Only the most recent users survive: oldest-last-impression eviction.
    let kept: Vec<u64> = (0..10_000u64)
        .filter(|&u| s.count(u, 1, 10_000, w) == 1)
        .collect();
    assert_eq!(kept, (10_000 - WAYS as u64..10_000).collect::<Vec<_>>());
    // One user with more offers than a slot holds keeps the latest ones.
    for offer in 0..20u64 {
        s.record(5, offer, 20_000 + offer, w);
    }
    let offers_kept = (0..20u64)
        .filter(|&o| s.count(5, o, 30_000, w) == 1)
        .count();
    assert_eq!(offers_kept, OFFERS_PER_USER);
    assert!(s.stats().len <= s.capacity());
}

#[test]
fn user_entries_answer_for_their_user_as_of_the_snapshot() {
    let mut s = freq(64);
    let w = 1_000;
    s.record(5, 1, 10, w);
    s.record(5, 1, 11, w);
    s.record(5, 3, 12, w);
    s.record(6, 1, 12, w);
    let five = s.user_entries(5);
    assert!(!five.is_empty());
    assert_eq!(five.count(1, 20, w), 2);
    assert_eq!(five.count(3, 20, w), 1);
    assert_eq!(five.count(2, 20, w), 0, "an offer the user never saw");
    assert_eq!(five.count(1, 10 + w, w), 0, "the window has ended");
    assert_eq!(s.user_entries(6).count(1, 20, w), 1);
    assert!(
        s.user_entries(7).is_empty(),
        "a user the store does not hold"
    );
    // A snapshot: later impressions are not in it, and a new one sees them.
    s.record(5, 1, 30, w);
    assert_eq!(five.count(1, 40, w), 2);
    assert_eq!(s.user_entries(5).count(1, 40, w), 3);
}

#[test]
fn frequency_count_does_not_mutate() {
    let mut s = freq(16);
    for i in 0..100u64 {
        s.record(i % 23, i % 3, i * 10, 150);
    }
    let before = s.clone();
    let stats = s.stats();
    let mut total = 0u64;
    for user in 0..30 {
        for offer in 0..4 {
            for now in [0, 500, 990, 1_000, 5_000, u64::MAX] {
                total += s.count(user, offer, now, 150) as u64;
                total += s.count(user, offer, now, 0) as u64;
            }
        }
    }
    assert!(total > 0, "the reads found entries");
    assert_eq!(s.stats(), stats);
    assert_eq!(s, before);
}

/// The frequency store's documented semantics: per set, a list of user
/// slots in way order, each with its entries in entry order.
struct RefFreq {
    sets: Vec<Vec<RefUser>>,
    stats: FrequencyStats,
}

struct RefUser {
    user: u64,
    last_ns: u64,
    entries: Vec<RefFreqEntry>,
}

struct RefFreqEntry {
    offer: u64,
    count: u32,
    start_ns: u64,
    window_ns: u64,
    last_ns: u64,
}

fn window_ended(start_ns: u64, window_ns: u64, now_ns: u64) -> bool {
    now_ns.saturating_sub(start_ns) >= window_ns
}

impl RefFreqEntry {
    fn ended(&self, now_ns: u64) -> bool {
        window_ended(self.start_ns, self.window_ns, now_ns)
    }
}

impl RefFreq {
    fn count(&self, set: usize, user: u64, offer: u64, now_ns: u64, window_ns: u64) -> u32 {
        let Some(u) = self.sets[set].iter().find(|u| u.user == user) else {
            return 0;
        };
        match u.entries.iter().find(|e| e.offer == offer) {
            Some(e) if !window_ended(e.start_ns, window_ns, now_ns) => e.count,
            _ => 0,
        }
    }

    /// Counts an entry dropped for room.
    fn drop_entry(stats: &mut FrequencyStats, e: &RefFreqEntry, now_ns: u64) {
        if e.ended(now_ns) {
            stats.reclaimed += 1;
        } else {
            stats.evictions += 1;
        }
        stats.len -= 1;
    }

    /// The index of the oldest (by last impression, then position) among
    /// `items` whose class is lowest, classes from `class`.
    fn victim<T>(items: &[T], class: impl Fn(&T) -> u8, last: impl Fn(&T) -> u64) -> usize {
        items
            .iter()
            .enumerate()
            .min_by_key(|(i, x)| (class(x), last(x), *i))
            .map(|(i, _)| i)
            .unwrap()
    }

    fn record(&mut self, set: usize, user: u64, offer: u64, now_ns: u64, window_ns: u64) {
        self.stats.records += 1;
        let stats = &mut self.stats;
        let list = &mut self.sets[set];
        let u = match list.iter().position(|u| u.user == user) {
            Some(u) => u,
            None => {
                let fresh = RefUser {
                    user,
                    last_ns: now_ns,
                    entries: Vec::new(),
                };
                if list.len() < WAYS {
                    list.push(fresh);
                    list.len() - 1
                } else {
                    let all_ended = |u: &RefUser| u.entries.iter().all(|e| e.ended(now_ns));
                    let v = Self::victim(list, |u| if all_ended(u) { 1 } else { 2 }, |u| u.last_ns);
                    for e in &list[v].entries {
                        Self::drop_entry(stats, e, now_ns);
                    }
                    list[v] = fresh;
                    v
                }
            }
        };
        let slot = &mut list[u];
        slot.last_ns = now_ns;
        if let Some(e) = slot.entries.iter_mut().find(|e| e.offer == offer) {
            if window_ended(e.start_ns, window_ns, now_ns) {
                stats.window_resets += 1;
                e.count = 0;
                e.start_ns = now_ns;
            }
            e.count = e.count.saturating_add(1);
            e.window_ns = window_ns;
            e.last_ns = now_ns;
            return;
        }
        let new = RefFreqEntry {
            offer,
            count: 1,
            start_ns: now_ns,
            window_ns,
            last_ns: now_ns,
        };
        stats.len += 1;
        if slot.entries.len() < OFFERS_PER_USER {
            slot.entries.push(new);
            return;
        }
        let v = Self::victim(
            &slot.entries,
            |e| if e.ended(now_ns) { 1 } else { 2 },
            |e| e.last_ns,
        );
        Self::drop_entry(stats, &slot.entries[v], now_ns);
        slot.entries[v] = new;
    }
}

#[derive(Clone, Debug)]
enum FreqOp {
    Record(u64, u64, u64),
    Count(u64, u64, u64),
    Advance(u64),
    StepBack(u64),
}

fn freq_op() -> impl Strategy<Value = FreqOp> {
    let user = prop_oneof![Just(0u64), 1u64..30, Just(u64::MAX)];
    let window = prop_oneof![Just(0u64), 1u64..500, Just(u64::MAX)];
    prop_oneof![
        8 => (user.clone(), 0u64..4, window.clone()).prop_map(|(u, o, w)| FreqOp::Record(u, o, w)),
        8 => (user, 0u64..4, window).prop_map(|(u, o, w)| FreqOp::Count(u, o, w)),
        6 => (0u64..100).prop_map(FreqOp::Advance),
        1 => Just(FreqOp::Advance(1 << 40)),
        1 => (0u64..300).prop_map(FreqOp::StepBack),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn frequency_matches_reference(
        capacity in prop_oneof![1usize..=8, 9usize..=64],
        ops in prop::collection::vec(freq_op(), 1..300),
    ) {
        let mut s = freq(capacity);
        let mut r = RefFreq {
            sets: (0..s.sets()).map(|_| Vec::new()).collect(),
            stats: FrequencyStats::default(),
        };
        let mut now = 1_000u64;
        for op in ops {
            match op {
                FreqOp::Record(user, offer, w) => {
                    s.record(user, offer, now, w);
                    r.record(s.set_of(user), user, offer, now, w);
                }
                FreqOp::Count(user, offer, w) => {
                    let before = s.clone();
                    let got = s.count(user, offer, now, w);
                    prop_assert_eq!(got, r.count(s.set_of(user), user, offer, now, w));
                    // Through the user's entries copied once: the same answer.
                    prop_assert_eq!(s.user_entries(user).count(offer, now, w), got);
                    prop_assert_eq!(&s, &before);
                }
                FreqOp::Advance(dt) => now = now.saturating_add(dt),
                FreqOp::StepBack(dt) => now = now.saturating_sub(dt),
            }
            prop_assert_eq!(s.stats(), r.stats);
            prop_assert!(s.stats().len <= s.capacity());
        }
    }

    /// With room for every pair, the store is exact: a plain map of
    /// per-pair (count, window start) gives the same counts.
    #[test]
    fn frequency_is_exact_without_pressure(
        events in prop::collection::vec((0u64..6, 0u64..3, 0u64..200), 1..300),
        window_ns in 1u64..2_000,
    ) {
        // 18 pairs in 1024 slots: some set might get 9 of them only with
        // a vanishing chance; the evictions assertion below would say so.
        let mut s = freq(1024);
        let mut model: HashMap<(u64, u64), (u32, u64)> = HashMap::new();
        let mut now = 0u64;
        for (user, offer, dt) in events {
            now += dt;
            s.record(user, offer, now, window_ns);
            let e = model.entry((user, offer)).or_insert((0, now));
            if now - e.1 >= window_ns {
                *e = (0, now);
            }
            e.0 += 1;
            for (&(u, o), &(count, start)) in &model {
                let want = if now - start >= window_ns { 0 } else { count };
                prop_assert_eq!(s.count(u, o, now, window_ns), want);
            }
        }
        prop_assert_eq!(s.stats().evictions + s.stats().reclaimed, 0);
    }
}

// ---------------------------------------------------------------- budget

#[test]
fn budget_rolls_over_at_utc_midnight() {
    let mut l = BudgetLedger::new(&[Some(10.0)]).unwrap();
    let day3 = 3 * DAY_NS;
    l.spend(0, 7.5, day3 + 5).unwrap();
    assert_eq!(l.spent(0, day3 + 5), 7.5);
    assert_eq!(l.remaining(0, DAY_NS * 4 - 1), Some(2.5));
    assert!(!l.can_spend(0, 2.6, DAY_NS * 4 - 1));
    // Read-only methods see the new day before any spend resets it.
    assert_eq!(l.remaining(0, DAY_NS * 4), Some(10.0));
    assert_eq!(l.spent(0, DAY_NS * 4), 0.0);
    assert!(l.can_spend(0, 10.0, DAY_NS * 4));
    l.spend(0, 10.0, DAY_NS * 4).unwrap();
    assert_eq!(l.remaining(0, DAY_NS * 4 + 1), Some(0.0));
    // A clock that steps back to day 3 keeps charging day 4.
    assert_eq!(l.remaining(0, day3 + 10), Some(0.0));
    assert!(l.spend(0, 0.01, day3 + 10).is_err());
    assert_eq!(l.remaining(0, DAY_NS * 5), Some(10.0));
    let mut l = BudgetLedger::new(&[Some(10.0)]).unwrap();
    l.spend(0, 4.0, DAY_NS * 4).unwrap();
    l.spend(0, 1.0, day3).unwrap(); // charged to day 4, the latest seen
    assert_eq!(l.spent(0, DAY_NS * 4), 5.0);
    assert_eq!(l.remaining(0, day3), Some(5.0));
}

#[test]
fn budget_refusal_changes_nothing() {
    let mut l = BudgetLedger::new(&[Some(1.0), None]).unwrap();
    l.spend(0, 0.6, 0).unwrap();
    let before = l.clone();
    assert_eq!(
        l.spend(0, 0.400_001, 1),
        Err(BudgetExhausted::OverBudget {
            offer: 0,
            requested_micros: 400_001,
            remaining_micros: 400_000
        })
    );
    for bad in [f64::NAN, f64::INFINITY, -1.0, BUDGET_MAX * 2.0] {
        assert!(matches!(
            l.spend(0, bad, 1),
            Err(BudgetExhausted::BadAmount { offer: 0, .. })
        ));
        assert!(matches!(
            l.spend(1, bad, 1),
            Err(BudgetExhausted::BadAmount { offer: 1, .. })
        ));
        assert!(!l.can_spend(1, bad, 1));
    }
    assert_eq!(
        l.spend(2, 0.1, 1),
        Err(BudgetExhausted::UnknownOffer {
            offer: 2,
            offers: 2
        })
    );
    assert_eq!(l, before);
    l.spend(0, 0.4, 1).unwrap();
    assert_eq!(
        l.remaining_micros(0, 1),
        Some(0),
        "the exact remainder fits"
    );
    assert_eq!(l.spend(0, 0.0, 2), Ok(()), "zero always fits");
}

#[test]
fn budget_rounds_spend_up_to_whole_micros() {
    let mut l = BudgetLedger::new(&[Some(0.000_003)]).unwrap();
    assert_eq!(l.remaining_micros(0, 0), Some(3));
    l.spend(0, 0.000_000_1, 0).unwrap(); // a tenth of a micro costs one
    assert_eq!(l.spent_micros(0, 0), 1);
    l.spend(0, 0.000_001_5, 0).unwrap(); // 1.5 micros cost two
    assert_eq!(l.spent_micros(0, 0), 3);
    assert!(!l.can_spend(0, 1e-12, 0));
    let mut l = BudgetLedger::new(&[Some(0.3)]).unwrap();
    for _ in 0..3 {
        l.spend(0, 0.1, 0).unwrap(); // exactly 100_000 micros each
    }
    assert_eq!(l.remaining_micros(0, 0), Some(0));
    assert_eq!(l.spent(0, 0), 0.3);
}

#[test]
fn budget_unlimited_and_unknown_offers() {
    let mut l = BudgetLedger::new(&[None, Some(0.0)]).unwrap();
    assert_eq!(l.remaining(0, 0), None);
    assert_eq!(l.daily_budget(0), None);
    for _ in 0..1_000 {
        l.spend(0, BUDGET_MAX, 0).unwrap();
    }
    assert_eq!(l.spent_micros(0, 0), u64::MAX, "the total saturates");
    assert_eq!(l.remaining(1, 0), Some(0.0));
    assert!(!l.can_spend(1, 1e-6, 0));
    assert!(l.can_spend(1, 0.0, 0));
    for offer in [2, usize::MAX] {
        assert_eq!(l.remaining(offer, 0), Some(0.0), "unknown is not unlimited");
        assert!(!l.can_spend(offer, 0.0, 0));
        assert_eq!(l.spent(offer, 0), 0.0);
        assert_eq!(l.daily_budget(offer), None);
    }
    let empty = BudgetLedger::new(&[]).unwrap();
    assert_eq!(empty.offers(), 0);
    assert_eq!(empty.remaining(0, 0), Some(0.0));
}

#[derive(Clone, Debug)]
enum BudgetOp {
    /// Spend on an offer (possibly out of range) an amount of whole micros.
    Spend(usize, u64),
    SpendBad(usize, f64),
    Advance(u64),
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Against a map from (offer, day) to micros spent, with a clock that
    /// only moves forward (as a host's wall clock normally does).
    #[test]
    fn budget_matches_reference(
        budgets in prop::collection::vec(prop::option::of(0u64..3_000_000), 0..5),
        ops in prop::collection::vec(prop_oneof![
            8 => (0usize..6, 0u64..1_500_000).prop_map(|(o, m)| BudgetOp::Spend(o, m)),
            1 => (0usize..6, prop_oneof![Just(f64::NAN), Just(-0.5), Just(f64::INFINITY)])
                .prop_map(|(o, a)| BudgetOp::SpendBad(o, a)),
            3 => prop_oneof![0u64..DAY_NS / 3, Just(DAY_NS), Just(DAY_NS * 400)]
                .prop_map(BudgetOp::Advance),
        ], 1..200),
        start in 0u64..DAY_NS * 20_000,
    ) {
        let config: Vec<Option<f64>> = budgets.iter().map(|b| b.map(|m| m as f64 / 1e6)).collect();
        let mut l = BudgetLedger::new(&config).unwrap();
        let mut spent: HashMap<(usize, u64), u64> = HashMap::new();
        let mut now = start;
        for op in ops {
            match op {
                BudgetOp::Spend(offer, micros) => {
                    let amount = micros as f64 / 1e6;
                    let key = (offer, now / DAY_NS);
                    let so_far = spent.get(&key).copied().unwrap_or(0);
                    let want_ok = match budgets.get(offer) {
                        None => false,
                        Some(None) => true,
                        Some(Some(b)) => so_far + micros <= *b,
                    };
                    let before = l.clone();
                    prop_assert_eq!(l.can_spend(offer, amount, now), want_ok);
                    prop_assert_eq!(l.spend(offer, amount, now).is_ok(), want_ok);
                    if want_ok {
                        *spent.entry(key).or_insert(0) += micros;
                    } else {
                        prop_assert_eq!(&l, &before);
                    }
                }
                BudgetOp::SpendBad(offer, amount) => {
                    let before = l.clone();
                    prop_assert!(l.spend(offer, amount, now).is_err());
                    prop_assert_eq!(&l, &before);
                }
                BudgetOp::Advance(dt) => now += dt,
            }
            for (offer, budget) in budgets.iter().enumerate() {
                let so_far = spent.get(&(offer, now / DAY_NS)).copied().unwrap_or(0);
                prop_assert_eq!(l.spent_micros(offer, now), so_far);
                prop_assert_eq!(l.remaining_micros(offer, now), budget.map(|b| b - so_far));
            }
        }
    }
}

// ---------------------------------------------------------------- allocations

#[test]
fn the_counter_sees_an_allocation() {
    let info = allocation_counter::measure(|| {
        std::hint::black_box(vec![1u8; 64]);
    });
    assert_eq!(
        info.count_total, 1,
        "the measurement works, so zero below means zero"
    );
}

#[test]
fn cache_allocates_nothing_after_new() {
    let mut c = cache(64, 500, 16);
    let row = [0.5f32; 16];
    let short = [0.5f32; 3];
    let mut found = 0usize;
    let info = allocation_counter::measure(|| {
        for i in 0..5_000u64 {
            let key = i % 300;
            let now = i * 3;
            c.insert(key, &row, now, now + (i % 7) * 100).unwrap();
            found += c.get(key / 2, now + 1).map_or(0, <[f32]>::len);
            assert!(c.insert(key, &short, now, u64::MAX).is_err());
            if i % 1_000 == 999 {
                c.clear();
            }
        }
        std::hint::black_box(c.stats());
    });
    assert_eq!(info.count_total, 0, "the decision cache allocated");
    let s = c.stats();
    assert!(found > 0 && s.evictions > 0 && s.expired > 0 && s.uncacheable > 0);
}

#[test]
fn frequency_store_allocates_nothing_after_new() {
    let mut s = freq(64);
    let mut seen = 0u64;
    let info = allocation_counter::measure(|| {
        // Eviction pressure: 97 users for 8 user slots.
        for i in 0..5_000u64 {
            let (user, offer) = (i % 97, i % 5);
            s.record(user, offer, i * 10, 2_000);
            seen += s.count(user, offer, i * 10 + 5, 2_000) as u64;
        }
        // Then one pair whose window keeps rolling over.
        for i in 0..1_000u64 {
            s.record(1_000, 0, 100_000 + i * 10, 2_000);
        }
        std::hint::black_box(s.stats());
    });
    assert_eq!(info.count_total, 0, "the frequency store allocated");
    let st = s.stats();
    assert!(
        seen > 0 && st.evictions > 0 && st.window_resets > 0,
        "{st:?} seen {seen}"
    );
}

#[test]
fn budget_ledger_allocates_nothing_after_new() {
    let mut l = BudgetLedger::new(&[Some(5.0), None, Some(0.5)]).unwrap();
    let (mut ok, mut refused) = (0u32, 0u32);
    let info = allocation_counter::measure(|| {
        for i in 0..5_000u64 {
            let now = i * (DAY_NS / 1_000);
            let offer = (i % 4) as usize; // offer 3 is unknown
            let amount = if i % 50 == 0 { f64::NAN } else { 0.013 };
            std::hint::black_box(l.remaining(offer, now));
            std::hint::black_box(l.spent(offer, now));
            if l.can_spend(offer, amount, now) {
                ok += 1;
            }
            match l.spend(offer, amount, now) {
                Ok(()) => {}
                Err(_) => refused += 1,
            }
        }
    });
    assert_eq!(info.count_total, 0, "the budget ledger allocated");
    assert!(ok > 0 && refused > 0);
}
