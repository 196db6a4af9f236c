//! The bids a process made, so that an exchange's notices (win, billing,
//! loss) can be matched to them: which offer, at what price, and which
//! notices already came (exchanges retry, so a notice may come twice).
//!
//! # Layout
//!
//! Set-associative like the other keyed stores ([`super::WAYS`] ways per
//! set, every array allocated in [`BidLedger::new`]), keyed by a 64-bit
//! hash of the bid id, split into [`SHARDS`] shards behind their own
//! mutex so that the workers that bid and the workers that take notices
//! (any of them: a notice comes on whatever connection the exchange
//! opened) meet on a lock only when their bids share a shard. Each entry
//! is 40 bytes (key, offer id, price, time, notices seen); a full set
//! evicts its oldest bid, counted in [`LedgerStats::evicted`]. A bid older
//! than the ledger's time to live is no longer known: its late notices
//! are [`NoticeMatch::Unknown`].
//!
//! As key-value operations (the Redis step): [`BidLedger::record`] is a
//! `SET bid:{id} {offer,price,time} PX ttl`, and [`BidLedger::observe`] a
//! script that reads the value and sets the notice's bit unless it is
//! already set (`HSETNX`-like), returning what it found.

use super::{mix64, WAYS};
use crate::error::{Error, Result};
use crate::notice::NoticeKind;
use crossbeam::utils::CachePadded;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Shards of a [`BidLedger`] (a power of two).
pub const SHARDS: usize = 64;

/// Most bids a ledger may hold (after rounding up).
pub const LEDGER_ENTRIES_MAX: usize = 1 << 24;

const STORE: &str = "bid ledger";

/// What the ledger knows of one bid.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BidRecord {
    /// The offer bid with.
    pub offer_id: u64,
    /// The price bid, CPM in the response's currency.
    pub price_cpm: f64,
    /// When the bid was made (the caller's clock, ns).
    pub bid_ns: u64,
}

/// How a notice matched the ledger.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum NoticeMatch {
    /// The first notice of its kind for a known bid.
    First(BidRecord),
    /// A notice of this kind already came for this bid.
    Duplicate(BidRecord),
    /// No such bid (never made here, evicted, or older than the time to
    /// live).
    Unknown,
}

/// Counts since the ledger was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LedgerStats {
    /// Bids recorded.
    pub recorded: u64,
    /// Bids evicted from a full set before their time to live.
    pub evicted: u64,
}

/// Size and time to live of a [`BidLedger`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LedgerConfig {
    /// Bids held at most, over all shards (rounded up per shard to a power
    /// of two); 1 to [`LEDGER_ENTRIES_MAX`].
    pub capacity: usize,
    /// How long a bid can still be noticed, ns (at least 1).
    pub ttl_ns: u64,
}

impl Default for LedgerConfig {
    /// 262,144 bids (about 10 MiB) for an hour.
    fn default() -> Self {
        Self {
            capacity: 1 << 18,
            ttl_ns: 3_600 * 1_000_000_000,
        }
    }
}

/// One shard: structure of arrays, `sets * WAYS` entries.
#[derive(Debug)]
struct Shard {
    keys: Box<[u64]>,
    offers: Box<[u64]>,
    prices: Box<[f64]>,
    times: Box<[u64]>,
    /// Bit per [`NoticeKind`] seen; 0 also for a free entry (`times` 0).
    seen: Box<[u8]>,
    set_mask: usize,
    stats: LedgerStats,
}

/// The bids of one process, shared by its workers. See the [module
/// docs](self).
#[derive(Debug)]
pub struct BidLedger {
    shards: Box<[CachePadded<Mutex<Shard>>]>,
    ttl_ns: u64,
}

impl BidLedger {
    /// A ledger of `config.capacity` bids; fails naming the field when the
    /// capacity or time to live is out of range.
    pub fn new(config: LedgerConfig) -> Result<Self> {
        if !(1..=LEDGER_ENTRIES_MAX).contains(&config.capacity) {
            return Err(Error::BadStoreConfig {
                store: STORE,
                reason: format!(
                    "capacity {} is not in 1..={LEDGER_ENTRIES_MAX}",
                    config.capacity
                ),
            });
        }
        if config.ttl_ns == 0 {
            return Err(Error::BadStoreConfig {
                store: STORE,
                reason: "ttl must be at least 1 ns".into(),
            });
        }
        let sets = config
            .capacity
            .div_ceil(SHARDS)
            .next_power_of_two()
            .max(WAYS)
            / WAYS;
        let shards = (0..SHARDS)
            .map(|_| CachePadded::new(Mutex::new(Shard::new(sets))))
            .collect();
        Ok(Self {
            shards,
            ttl_ns: config.ttl_ns,
        })
    }

    /// The hash a bid id is kept under.
    pub fn key(bid_id: &str) -> u64 {
        // 0 marks a free entry.
        xxhash_rust::xxh3::xxh3_64(bid_id.as_bytes()).max(1)
    }

    /// Records a bid made at `now_ns` (a non-finite price is kept as 0).
    pub fn record(&self, bid_id: &str, offer_id: u64, price_cpm: f64, now_ns: u64) {
        let key = Self::key(bid_id);
        let price = if price_cpm.is_finite() {
            price_cpm
        } else {
            0.0
        };
        self.shard(key).record(key, offer_id, price, now_ns.max(1));
    }

    /// Matches a notice of `kind` for `bid_id` at `now_ns`, and marks the
    /// kind seen.
    pub fn observe(&self, kind: NoticeKind, bid_id: &str, now_ns: u64) -> NoticeMatch {
        let key = Self::key(bid_id);
        self.shard(key).observe(key, kind, now_ns, self.ttl_ns)
    }

    /// Counts over every shard.
    pub fn stats(&self) -> LedgerStats {
        let mut all = LedgerStats::default();
        for shard in self.shards.iter() {
            let s = lock(shard).stats;
            all.recorded += s.recorded;
            all.evicted += s.evicted;
        }
        all
    }

    fn shard(&self, key: u64) -> MutexGuard<'_, Shard> {
        let i = (mix64(key) as usize) & (SHARDS - 1);
        // `SHARDS` is a power of two and the slice has exactly that many.
        lock(&self.shards[i])
    }
}

fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    // A panic elsewhere cannot leave an entry half-written: every write
    // below is a plain store of whole fields.
    shard.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shard {
    fn new(sets: usize) -> Self {
        let n = sets * WAYS;
        Self {
            keys: vec![0; n].into(),
            offers: vec![0; n].into(),
            prices: vec![0.0; n].into(),
            times: vec![0; n].into(),
            seen: vec![0; n].into(),
            set_mask: sets - 1,
            stats: LedgerStats::default(),
        }
    }

    /// The entries of `key`'s set.
    fn set_of(&self, key: u64) -> std::ops::Range<usize> {
        let set = (key as usize >> 6) & self.set_mask;
        set * WAYS..(set + 1) * WAYS
    }

    fn record(&mut self, key: u64, offer_id: u64, price: f64, now_ns: u64) {
        let set = self.set_of(key);
        let keys = self.keys.get(set.clone()).unwrap_or(&[]);
        let way = keys
            .iter()
            .position(|&k| k == key)
            .or_else(|| keys.iter().position(|&k| k == 0));
        let i = match way {
            Some(w) => set.start + w,
            None => {
                // Full: evict the oldest bid of the set.
                let times = self.times.get(set.clone()).unwrap_or(&[]);
                let oldest = (0..times.len()).min_by_key(|&w| times[w]).unwrap_or(0);
                self.stats.evicted += 1;
                set.start + oldest
            }
        };
        self.keys[i] = key;
        self.offers[i] = offer_id;
        self.prices[i] = price;
        self.times[i] = now_ns;
        self.seen[i] = 0;
        self.stats.recorded += 1;
    }

    fn observe(&mut self, key: u64, kind: NoticeKind, now_ns: u64, ttl_ns: u64) -> NoticeMatch {
        let set = self.set_of(key);
        let found = self
            .keys
            .get(set.clone())
            .and_then(|keys| keys.iter().position(|&k| k == key))
            .map(|w| set.start + w);
        let Some(i) = found else {
            return NoticeMatch::Unknown;
        };
        if now_ns.saturating_sub(self.times[i]) > ttl_ns {
            return NoticeMatch::Unknown;
        }
        let record = BidRecord {
            offer_id: self.offers[i],
            price_cpm: self.prices[i],
            bid_ns: self.times[i],
        };
        let bit = 1u8 << kind.index();
        if self.seen[i] & bit != 0 {
            return NoticeMatch::Duplicate(record);
        }
        self.seen[i] |= bit;
        NoticeMatch::First(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger(capacity: usize) -> BidLedger {
        BidLedger::new(LedgerConfig {
            capacity,
            ttl_ns: 1_000,
        })
        .expect("valid config")
    }

    #[test]
    fn notices_match_bids_once_per_kind() {
        let l = ledger(1024);
        l.record("b1", 7, 1.25, 10);
        let r = BidRecord {
            offer_id: 7,
            price_cpm: 1.25,
            bid_ns: 10,
        };
        assert_eq!(l.observe(NoticeKind::Win, "b1", 20), NoticeMatch::First(r));
        assert_eq!(
            l.observe(NoticeKind::Win, "b1", 21),
            NoticeMatch::Duplicate(r)
        );
        assert_eq!(l.observe(NoticeKind::Bill, "b1", 22), NoticeMatch::First(r));
        assert_eq!(l.observe(NoticeKind::Win, "b2", 22), NoticeMatch::Unknown);
        assert_eq!(
            l.observe(NoticeKind::Loss, "b1", 2_000),
            NoticeMatch::Unknown
        );
    }

    #[test]
    fn a_full_set_evicts_its_oldest_bid_and_counts_it() {
        let l = ledger(1);
        // One shard's set holds WAYS bids; many more than the ledger holds.
        for i in 0..(SHARDS * WAYS * 4) as u64 {
            l.record(&format!("bid-{i}"), i, 1.0, i + 1);
        }
        let stats = l.stats();
        assert_eq!(stats.recorded, (SHARDS * WAYS * 4) as u64);
        assert!(stats.evicted >= (SHARDS * WAYS * 3) as u64, "{stats:?}");
        let last = SHARDS * WAYS * 4 - 1;
        let seen = l.observe(NoticeKind::Win, &format!("bid-{last}"), last as u64 + 2);
        assert!(matches!(seen, NoticeMatch::First(r) if r.offer_id == last as u64));
    }

    #[test]
    fn bad_configs_are_refused() {
        for config in [
            LedgerConfig {
                capacity: 0,
                ttl_ns: 1,
            },
            LedgerConfig {
                capacity: LEDGER_ENTRIES_MAX + 1,
                ttl_ns: 1,
            },
            LedgerConfig {
                capacity: 8,
                ttl_ns: 0,
            },
        ] {
            assert!(BidLedger::new(config).is_err(), "{config:?}");
        }
    }
}
