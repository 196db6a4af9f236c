//! The in-process store: one bounded table of entities, each with a
//! record of its stored features.
//!
//! # Layout: set-associative keys, slotted records, two choices per key
//!
//! Entities live in slots, grouped in sets of [`WAYS`]. The keys (user
//! hashes, 0 = empty) are one array, a set's eight keys one aligned
//! 64-byte line; the records are a second array of aligned lines, one
//! record per slot. A record holds every stored feature of its entity in
//! whole lines: the values (8 bytes each) first, then the write times (4
//! bytes each, unix seconds plus one, 0 = never written). With 10
//! features a record is 120 bytes in 2 lines.
//!
//! A key has two candidate sets (two independent hashes, mapped onto any
//! number of sets by multiply-shift). A lookup reads the first set's key
//! line and, when the key is not there, the second's; then the two lines
//! of the record. So one user's 10 features cost 3 cache lines (4 when the
//! user sits in its second set), with no pointer to chase. The key array
//! is small (8 bytes per slot: 10 MB for 1.25 million slots) and can stay
//! in the last-level cache; then a cold lookup is one memory access, for
//! the record, and two when other traffic has pushed the keys out (as the
//! benchmark's random lookups over 170 MB of records do). (Keeping each
//! set's records in one block with its key line was measured too, once, on
//! a shared machine: the keys then share the records' 170 MB, and cold
//! lookups took 415 ns against 374, lookups of unknown users 234 ns against
//! 70; `docs/BENCHMARKS.md`, "Feature store".)
//!
//! This is slotted (row-major per entity), not columnar: a request reads
//! every feature of one user, so one user's values should share lines. A
//! columnar layout (one array per feature) would touch one line per
//! feature per lookup, 10 instead of 2, and only wins for scans of one
//! feature over many users, which serving never does. The price: a record
//! is sized for every feature, written or not, and grows with the
//! definitions.
//!
//! Bytes per entity slot: 8 (key) + 64 per record line + 4 (last write) +
//! 4 (expiry; both in arrays of their own, read only by writes); with 10
//! features, 144.
//!
//! # Capacity and eviction
//!
//! [`StoreConfig::entities`] is rounded up to a multiple of [`WAYS`]; when
//! that many slots would take more than [`StoreConfig::bytes_max`], the
//! store takes as many whole sets as fit, and a budget that cannot hold
//! one set is an error. All memory is allocated in [`FeatureStore::new`];
//! nothing allocates afterwards.
//!
//! Two choices keep the sets even: a million users in 1.25 million slots
//! overflow a set for about 0.02% of them, where one choice per key
//! overflows for 7% (and for 12% at 1.05 million slots, against 2% with
//! two). A new entity takes, among its two sets' 16 slots: an empty slot
//! in the set with more empty slots (the first set on a tie); else the
//! slot whose values are all past their TTL (an *expired* entity, counted
//! as `reclaimed`) with the oldest last write; else the slot with the
//! oldest last write (a live entity, counted as an `eviction`: its
//! features read missing from then on); on equal times the first set's
//! slots first, in way order. Reads do not refresh an entity (they only
//! count health), so this is least-recently-*written*: each put sets the
//! entity's last write to the put's `now`.
//!
//! # Writes
//!
//! A value carries its own time (when it was observed). A write older than
//! the value already held for that feature is ignored and counted as
//! `outdated`, so late or replayed batches never overwrite newer data;
//! equal times overwrite (the later write of a batch wins). A batch is
//! checked whole before anything is written.
//!
//! # Time
//!
//! Times come from the caller in unix ns and are kept to the second in
//! 32 bits (good until 2106; later times saturate). Age = now − value
//! time in whole seconds (0 if the value is from the future); a value is
//! stale when its age is above its TTL.

mod batch;
mod config;
mod pages;
mod prefetch;

pub(crate) use batch::check_batch_shape;
pub use batch::READ_BATCH_MAX;
pub(crate) use config::{check_batch, check_row, mix64};
pub use config::{
    FeaturePut, PutOutcome, StoreConfig, StoreStats, ENTITIES_MAX, PUT_BATCH_MAX, STORE_BYTES_MAX,
    WAYS,
};

use crate::computed;
use crate::defs::Definitions;
use crate::error::{Error, Result};
use crate::health::{FeatureCounts, HealthReport};
use crate::row::{FeatureValues, Freshness};
use config::NS_PER_S;
use std::ops::Range;
use std::sync::Arc;

/// One aligned cache line of 8 words.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C, align(64))]
pub(crate) struct Line(pub(crate) [u64; 8]);

/// A bounded store of features per entity. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct FeatureStore {
    defs: Arc<Definitions>,
    config: StoreConfig,
    sets: usize,
    /// One line per set: its [`WAYS`] keys.
    keys: Box<[Line]>,
    /// Per slot, `lines` lines: values, then times.
    pub(crate) records: Box<[Line]>,
    /// Record lines per slot.
    lines: usize,
    /// Per slot: the `now` of its latest put (a stamp).
    written: Box<[u32]>,
    /// Per slot: the stamp after which every value is stale.
    expires: Box<[u32]>,
    health: Box<[FeatureCounts]>,
    stats: StoreStats,
}

/// A time as the store keeps it: unix seconds plus one, saturating, so
/// that 0 means "never".
pub(crate) fn stamp(ns: u64) -> u32 {
    (ns / NS_PER_S).min(u64::from(u32::MAX - 1)) as u32 + 1
}

/// Record lines for `features` stored features.
fn record_lines(features: usize) -> usize {
    (features * 12).div_ceil(64).max(1)
}

/// Bytes per entity slot for `features` stored features (see the [module
/// docs](self)).
pub fn bytes_per_entity(features: usize) -> u64 {
    8 + 64 * record_lines(features) as u64 + 4 + 4
}

/// `hash` mapped onto `0..n` by multiply-shift (its top bits decide).
fn fast_range(hash: u64, n: usize) -> usize {
    ((u128::from(hash) * n as u128) >> 64) as usize
}

impl FeatureStore {
    /// An empty store for `defs`, sized by `config` (see the [module
    /// docs](self)); fails naming the config field at fault.
    pub fn new(defs: Arc<Definitions>, config: StoreConfig) -> Result<Self> {
        config.validate()?;
        let per = bytes_per_entity(defs.stored().len());
        let sets_by_bytes = config.bytes_max / (per * WAYS as u64);
        let sets = (config.entities.div_ceil(WAYS) as u64).min(sets_by_bytes) as usize;
        if sets == 0 {
            return Err(Error::BadConfig {
                field: "bytes_max",
                reason: format!(
                    "{} bytes cannot hold one set of {WAYS} entities of {per} bytes",
                    config.bytes_max
                ),
            });
        }
        let lines = record_lines(defs.stored().len());
        let slots = sets * WAYS;
        let (keys, huge_keys) = pages::zeroed_lines(sets);
        let (records, huge_records) = pages::zeroed_lines(slots * lines);
        Ok(Self {
            sets,
            keys,
            records,
            lines,
            written: vec![0; slots].into(),
            expires: vec![0; slots].into(),
            health: vec![FeatureCounts::default(); defs.stored().len()].into(),
            stats: StoreStats {
                capacity: slots,
                bytes: slots as u64 * per,
                huge_page_bytes: huge_keys + huge_records,
                ..StoreStats::default()
            },
            defs,
            config,
        })
    }

    /// The definitions.
    pub fn definitions(&self) -> &Arc<Definitions> {
        &self.defs
    }

    /// The config it was made with.
    pub fn config(&self) -> StoreConfig {
        self.config
    }

    /// Counters and sizes.
    pub fn stats(&self) -> StoreStats {
        self.stats
    }

    /// The health of every stored feature (allocates the report).
    pub fn health(&self) -> HealthReport {
        let names = self.defs.stored().iter().map(|f| f.name.clone());
        HealthReport::new(names, &self.health, self.config.policy())
    }

    pub(crate) fn health_counts(&self) -> &[FeatureCounts] {
        &self.health
    }

    /// Number of sets.
    pub fn sets(&self) -> usize {
        self.sets
    }

    /// The two sets `entity` may live in (equal when both hashes pick the
    /// same). Exposed so that tests and diagnostics can reason about
    /// eviction.
    pub fn sets_of(&self, entity: u64) -> [usize; 2] {
        let h1 = mix64(entity);
        [fast_range(h1, self.sets), self.second_set(h1)]
    }

    /// The second candidate set of the key whose first hash is `h1`.
    fn second_set(&self, h1: u64) -> usize {
        fast_range(mix64(h1 ^ 0x9e37_79b9_7f4a_7c15), self.sets)
    }

    /// Fills `row` with `entity`'s features at `now_ns` and evaluates the
    /// computed ones; counts health. Allocates nothing. Fails, touching
    /// nothing, when `row` was made for other definitions.
    pub fn read(&mut self, entity: u64, now_ns: u64, row: &mut FeatureValues) -> Result<()> {
        self.read_stored(entity, now_ns, row)?;
        computed::evaluate(row, (now_ns / NS_PER_S) as i64);
        Ok(())
    }

    /// [`read`](Self::read) without the computed features.
    pub(crate) fn read_stored(
        &mut self,
        entity: u64,
        now_ns: u64,
        row: &mut FeatureValues,
    ) -> Result<()> {
        check_row(&self.defs, row)?;
        let slot = self.find(entity);
        self.read_slot(slot, now_ns, row);
        Ok(())
    }

    /// Fills `row` from `slot` (`None`: the entity is not held) and
    /// counts health.
    pub(crate) fn read_slot(&mut self, slot: Option<usize>, now_ns: u64, row: &mut FeatureValues) {
        self.stats.reads += 1;
        let Some(slot) = slot else {
            row.set_missing();
            self.health.iter_mut().for_each(|h| h.missing += 1);
            return;
        };
        let now = stamp(now_ns);
        let features = self.health.len();
        let record = &self.records[self.record(slot)];
        for f in 0..features {
            let t = time_at(record, features, f);
            let health = &mut self.health[f];
            if t == 0 {
                row.bits[f] = self.defs.default_bits[f];
                row.status[f] = Freshness::Missing;
                row.age_s[f] = u32::MAX;
                health.missing += 1;
                continue;
            }
            let age = now.saturating_sub(t);
            health.ages.record(age);
            row.age_s[f] = age;
            if age > self.defs.ttl_s[f] {
                row.bits[f] = self.defs.default_bits[f];
                row.status[f] = Freshness::Stale;
                health.stale += 1;
            } else {
                row.bits[f] = record[f / 8].0[f % 8];
                row.status[f] = Freshness::Fresh;
                health.fresh += 1;
            }
        }
    }

    /// Writes a batch at `now_ns` (see the [module docs](self)): checked
    /// whole first, so a bad write fails the batch and nothing is written.
    pub fn put(&mut self, batch: &[FeaturePut], now_ns: u64) -> Result<PutOutcome> {
        check_batch(&self.defs, batch)?;
        let mut out = PutOutcome::default();
        for p in batch {
            self.apply(p, now_ns, &mut out);
        }
        Ok(out)
    }

    /// Writes one checked value.
    pub(crate) fn apply(&mut self, p: &FeaturePut, now_ns: u64, out: &mut PutOutcome) {
        let now = stamp(now_ns);
        let slot = match self.find(p.entity) {
            Some(slot) => slot,
            None => self.claim(p.entity, now, out),
        };
        let f = p.feature.index();
        let features = self.health.len();
        let t = stamp(p.time_ns);
        let range = self.record(slot);
        let record = &mut self.records[range];
        if time_at(record, features, f) > t {
            out.outdated += 1;
            self.stats.outdated += 1;
            return;
        }
        record[f / 8].0[f % 8] = p.value.to_bits();
        set_time(record, features, f, t);
        let expiry = t.saturating_add(self.defs.ttl_s[f]);
        self.expires[slot] = self.expires[slot].max(expiry);
        self.written[slot] = self.written[slot].max(now);
        self.health[f].writes += 1;
        self.stats.written += 1;
        out.written += 1;
    }

    /// Visits every entity held: its key, then per stored feature its
    /// time stamp (0 = none) and value bits.
    pub(crate) fn for_each_entity(
        &self,
        mut f: impl FnMut(u64, &mut dyn Iterator<Item = (u32, u64)>),
    ) {
        let features = self.health.len();
        for slot in 0..self.sets * WAYS {
            let key = self.keys(slot / WAYS)[slot % WAYS];
            if key == 0 {
                continue;
            }
            let record = &self.records[self.record(slot)];
            let mut values =
                (0..features).map(|i| (time_at(record, features, i), record[i / 8].0[i % 8]));
            f(key, &mut values);
        }
    }

    /// Puts a restored entity's record in (values already checked).
    pub(crate) fn restore_entity(&mut self, key: u64, values: &[(u32, u64)], out: &mut PutOutcome) {
        let latest = values.iter().map(|v| v.0).max().unwrap_or(0);
        let slot = match self.find(key) {
            Some(slot) => slot,
            None => self.claim(key, latest, out),
        };
        let features = self.health.len();
        let range = self.record(slot);
        let record = &mut self.records[range];
        let mut expiry = 0u32;
        for (f, &(t, bits)) in values.iter().enumerate().take(features) {
            record[f / 8].0[f % 8] = bits;
            set_time(record, features, f, t);
            if t != 0 {
                expiry = expiry.max(t.saturating_add(self.defs.ttl_s[f]));
            }
        }
        self.expires[slot] = expiry;
        self.written[slot] = latest;
    }

    /// The key line of `set`.
    pub(crate) fn keys(&self, set: usize) -> &[u64; 8] {
        &self.keys[set].0
    }

    /// The lines of `slot`'s record.
    pub(crate) fn record(&self, slot: usize) -> Range<usize> {
        slot * self.lines..(slot + 1) * self.lines
    }

    pub(crate) fn find(&self, entity: u64) -> Option<usize> {
        if entity == 0 {
            return None;
        }
        let in_set = |set: usize| {
            let way = self.keys(set).iter().position(|&k| k == entity)?;
            Some(set * WAYS + way)
        };
        // The second hash only when the first set does not hold the key.
        let h1 = mix64(entity);
        in_set(fast_range(h1, self.sets)).or_else(|| in_set(self.second_set(h1)))
    }

    /// A slot for a new `entity`, as the module docs say; its record is
    /// cleared.
    fn claim(&mut self, entity: u64, now: u32, out: &mut PutOutcome) -> usize {
        let slot = self.choose(entity, now);
        let rank = self.rank(slot, now).0;
        match rank {
            0 => self.stats.entities += 1,
            1 => self.stats.reclaimed += 1,
            _ => {
                self.stats.evictions += 1;
                out.evicted += 1;
            }
        }
        self.keys[slot / WAYS].0[slot % WAYS] = entity;
        let range = self.record(slot);
        self.records[range].fill(Line::default());
        self.expires[slot] = 0;
        self.written[slot] = now;
        slot
    }

    /// The slot a new `entity` takes (see the module docs).
    fn choose(&self, entity: u64, now: u32) -> usize {
        let [a, b] = self.sets_of(entity);
        let empty = |set: usize| self.keys(set).iter().filter(|&&k| k == 0).count();
        let (ea, eb) = (empty(a), if b == a { 0 } else { empty(b) });
        if ea > 0 || eb > 0 {
            let set = if ea >= eb { a } else { b };
            let way = self.keys(set).iter().position(|&k| k == 0).unwrap_or(0);
            return set * WAYS + way;
        }
        let candidates = (a * WAYS..(a + 1) * WAYS).chain(if b == a {
            0..0
        } else {
            b * WAYS..(b + 1) * WAYS
        });
        candidates
            .min_by_key(|&slot| self.rank(slot, now))
            .unwrap_or(a * WAYS)
    }

    /// (0 empty, 1 expired, 2 live; last write) of `slot`.
    fn rank(&self, slot: usize, now: u32) -> (u8, u32) {
        let class = if self.keys(slot / WAYS)[slot % WAYS] == 0 {
            0
        } else if now > self.expires[slot] {
            1
        } else {
            2
        };
        (class, self.written[slot])
    }
}

/// Where feature `f`'s time lives in a record of `features` values.
fn time_word(features: usize, f: usize) -> (usize, u32) {
    (features + f / 2, (f % 2) as u32 * 32)
}

fn time_at(record: &[Line], features: usize, f: usize) -> u32 {
    let (w, shift) = time_word(features, f);
    (record[w / 8].0[w % 8] >> shift) as u32
}

fn set_time(record: &mut [Line], features: usize, f: usize, t: u32) {
    let (w, shift) = time_word(features, f);
    let word = &mut record[w / 8].0[w % 8];
    *word = (*word & !(0xffff_ffff << shift)) | (u64::from(t) << shift);
}
