//! The in-process store: one bounded table of entities, each with a
//! record of its stored features.
//!
//! # Layout: slotted records behind set-associative keys
//!
//! Entities live in slots. The slots are split into sets of [`WAYS`]; an
//! entity's key (the user hash) picks one set, and the set's eight keys
//! are one aligned 64-byte line. A slot's *record* holds every stored
//! feature of its entity contiguously, in whole aligned lines: the values
//! (8 bytes each) first, then the write times (4 bytes each, unix seconds
//! plus one, 0 = never written). With 10 features a record is 120 bytes,
//! 2 lines. So a lookup of all of one user's features touches 3 cache
//! lines: the set's keys, then the two lines of the record (adjacent, so
//! fetched together), plus the store's per-feature TTLs and counters,
//! which stay in cache across requests.
//!
//! This is slotted (row-major per entity), not columnar: a request reads
//! every feature of one user, so one user's values should share lines. A
//! columnar layout (one array per feature) would touch one line per
//! feature per lookup, 10 instead of 2, and only wins for scans of one
//! feature over many users, which serving never does. The price: a record
//! is sized for every feature, written or not, and grows with the
//! definitions.
//!
//! Bytes per entity: 8 (key) + 4 (last write) + 4 (expiry) + 64 per
//! record line; with 10 features, 144.
//!
//! # Capacity and eviction
//!
//! [`StoreConfig::entities`] is rounded up to a power of two (at least one
//! set). When that many slots would take more than
//! [`StoreConfig::bytes_max`], the slot count is halved until they fit; a
//! budget that cannot hold one set is an error. All memory is allocated in
//! [`FeatureStore::new`]; nothing allocates afterwards.
//!
//! A new entity takes, in its set: an empty slot; else the slot whose
//! values are all past their TTL (an *expired* entity, counted as
//! `reclaimed`) with the oldest last write; else the slot with the oldest
//! last write (a live entity, counted as an `eviction`: its features read
//! missing from then on). Reads do not refresh an entity (they only count
//! health), so this is least-recently-*written*. Each put writes the
//! entity's last-write time as the put's `now`.
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

use crate::computed;
use crate::defs::{Definitions, FeatureId, Value};
use crate::error::{Error, Result};
use crate::health::{FeatureCounts, HealthReport, WarnPolicy};
use crate::row::{FeatureValues, Freshness};
use std::sync::Arc;

/// Slots per set.
pub const WAYS: usize = 8;
/// Most entity slots a store may be configured with (before rounding).
pub const ENTITIES_MAX: usize = 1 << 26;
/// Most bytes a store may be configured with: 64 GiB.
pub const STORE_BYTES_MAX: u64 = 1 << 36;
/// Most writes in one [`put`](FeatureStore::put) batch.
pub const PUT_BATCH_MAX: usize = 65_536;

const NS_PER_S: u64 = 1_000_000_000;

/// Size and health policy of a store.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StoreConfig {
    /// Entities to hold, `1..=ENTITIES_MAX`; rounded up to a power of two
    /// of at least [`WAYS`].
    pub entities: usize,
    /// Most bytes the entity tables may take, up to [`STORE_BYTES_MAX`];
    /// wins over `entities` (see the [module docs](self)).
    pub bytes_max: u64,
    /// Share of a feature's reads that may be stale before it is flagged,
    /// in `[0, 1]`.
    pub stale_warn_share: f64,
    /// Reads of a feature before its stale share is judged.
    pub warn_min_reads: u64,
}

impl Default for StoreConfig {
    /// 1,048,576 entities in at most 1 GiB; warn above 20% stale reads
    /// once a feature has 1000 reads.
    fn default() -> Self {
        Self {
            entities: 1 << 20,
            bytes_max: 1 << 30,
            stale_warn_share: 0.2,
            warn_min_reads: 1_000,
        }
    }
}

impl StoreConfig {
    /// Checks every field against its range.
    pub fn validate(&self) -> Result<()> {
        let bad = |field, reason: String| Err(Error::BadConfig { field, reason });
        if !(1..=ENTITIES_MAX).contains(&self.entities) {
            return bad(
                "entities",
                format!("{} is not in 1..={ENTITIES_MAX}", self.entities),
            );
        }
        if !(1..=STORE_BYTES_MAX).contains(&self.bytes_max) {
            return bad(
                "bytes_max",
                format!("{} is not in 1..={STORE_BYTES_MAX}", self.bytes_max),
            );
        }
        if !(0.0..=1.0).contains(&self.stale_warn_share) {
            return bad(
                "stale_warn_share",
                format!("{} is not in [0, 1]", self.stale_warn_share),
            );
        }
        Ok(())
    }

    pub(crate) fn policy(&self) -> WarnPolicy {
        WarnPolicy {
            stale_warn_share: self.stale_warn_share,
            warn_min_reads: self.warn_min_reads,
        }
    }
}

/// One write: a value of one feature of one entity, observed at `time_ns`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FeaturePut {
    /// The entity's key (a user hash; 0 is refused: no user).
    pub entity: u64,
    /// A stored feature.
    pub feature: FeatureId,
    /// Its value, of the feature's type.
    pub value: Value,
    /// When the value was observed, unix ns (its age counts from here).
    pub time_ns: u64,
}

/// What one batch did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PutOutcome {
    /// Values written.
    pub written: u64,
    /// Values ignored: older than the one held.
    pub outdated: u64,
    /// Live entities pushed out to make room.
    pub evicted: u64,
}

/// Counters and sizes of a store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Entities held now.
    pub entities: usize,
    /// Entity slots.
    pub capacity: usize,
    /// Bytes of the entity tables.
    pub bytes: u64,
    /// Reads (lookups of one entity).
    pub reads: u64,
    /// Values written.
    pub written: u64,
    /// Values ignored as older than the one held.
    pub outdated: u64,
    /// Live entities pushed out for room.
    pub evictions: u64,
    /// Expired entities (every value past its TTL) reused for room.
    pub reclaimed: u64,
}

impl StoreStats {
    pub(crate) fn add(&mut self, o: &Self) {
        self.entities += o.entities;
        self.capacity += o.capacity;
        self.bytes += o.bytes;
        self.reads += o.reads;
        self.written += o.written;
        self.outdated += o.outdated;
        self.evictions += o.evictions;
        self.reclaimed += o.reclaimed;
    }
}

/// One aligned cache line of 8 words.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C, align(64))]
pub(crate) struct Line(pub(crate) [u64; 8]);

/// A bounded store of features per entity. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct FeatureStore {
    defs: Arc<Definitions>,
    config: StoreConfig,
    set_mask: usize,
    /// One line per set: its [`WAYS`] keys, 0 = empty.
    keys: Box<[Line]>,
    /// Per slot: the `now` of its latest put (a stamp).
    written: Box<[u32]>,
    /// Per slot: the stamp after which every value is stale.
    expires: Box<[u32]>,
    /// Per slot, `lines` lines: values, then times (see the module docs).
    records: Box<[Line]>,
    lines: usize,
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

/// Bytes per entity slot for `features` stored features.
pub fn bytes_per_entity(features: usize) -> u64 {
    8 + 4 + 4 + 64 * record_lines(features) as u64
}

impl FeatureStore {
    /// An empty store for `defs`, sized by `config` (see the [module
    /// docs](self)); fails naming the config field at fault.
    pub fn new(defs: Arc<Definitions>, config: StoreConfig) -> Result<Self> {
        config.validate()?;
        let per = bytes_per_entity(defs.stored().len());
        let mut slots = config.entities.next_power_of_two().max(WAYS);
        while slots > WAYS && slots as u64 * per > config.bytes_max {
            slots /= 2;
        }
        if slots as u64 * per > config.bytes_max {
            return Err(Error::BadConfig {
                field: "bytes_max",
                reason: format!(
                    "{} bytes cannot hold one set of {WAYS} entities of {per} bytes",
                    config.bytes_max
                ),
            });
        }
        let lines = record_lines(defs.stored().len());
        let features = defs.stored().len();
        Ok(Self {
            set_mask: slots / WAYS - 1,
            keys: vec![Line::default(); slots / WAYS].into(),
            written: vec![0; slots].into(),
            expires: vec![0; slots].into(),
            records: vec![Line::default(); slots * lines].into(),
            lines,
            health: vec![FeatureCounts::default(); features].into(),
            stats: StoreStats {
                capacity: slots,
                bytes: slots as u64 * per,
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
        self.stats.reads += 1;
        let Some(slot) = self.find(entity) else {
            row.set_missing();
            self.health.iter_mut().for_each(|h| h.missing += 1);
            return Ok(());
        };
        let now = stamp(now_ns);
        let features = self.health.len();
        let record = &self.records[slot * self.lines..(slot + 1) * self.lines];
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
        Ok(())
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
        let record = &mut self.records[slot * self.lines..(slot + 1) * self.lines];
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
        for (set, keys) in self.keys.iter().enumerate() {
            for (way, &key) in keys.0.iter().enumerate() {
                if key == 0 {
                    continue;
                }
                let slot = set * WAYS + way;
                let record = &self.records[slot * self.lines..(slot + 1) * self.lines];
                let mut values =
                    (0..features).map(|i| (time_at(record, features, i), record[i / 8].0[i % 8]));
                f(key, &mut values);
            }
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
        let record = &mut self.records[slot * self.lines..(slot + 1) * self.lines];
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

    fn find(&self, entity: u64) -> Option<usize> {
        if entity == 0 {
            return None;
        }
        let set = self.set_of(entity);
        let way = self.keys[set].0.iter().position(|&k| k == entity)?;
        Some(set * WAYS + way)
    }

    fn set_of(&self, entity: u64) -> usize {
        (mix64(entity) as usize) & self.set_mask
    }

    /// A slot for a new `entity`, as the module docs say; its record is
    /// cleared.
    fn claim(&mut self, entity: u64, now: u32, out: &mut PutOutcome) -> usize {
        let set = self.set_of(entity);
        let rank = |way: usize| {
            let slot = set * WAYS + way;
            let class = if self.keys[set].0[way] == 0 {
                0u8
            } else if now > self.expires[slot] {
                1
            } else {
                2
            };
            (class, self.written[slot])
        };
        let way = (0..WAYS).min_by_key(|&w| rank(w)).unwrap_or(0);
        match rank(way).0 {
            0 => self.stats.entities += 1,
            1 => self.stats.reclaimed += 1,
            _ => {
                self.stats.evictions += 1;
                out.evicted += 1;
            }
        }
        let slot = set * WAYS + way;
        self.keys[set].0[way] = entity;
        self.records[slot * self.lines..(slot + 1) * self.lines].fill(Line::default());
        self.expires[slot] = 0;
        self.written[slot] = now;
        slot
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

/// Refuses a row made for other definitions.
pub(crate) fn check_row(defs: &Arc<Definitions>, row: &FeatureValues) -> Result<()> {
    if Arc::ptr_eq(defs, row.definitions()) || row.definitions().id() == defs.id() {
        return Ok(());
    }
    Err(Error::BadConfig {
        field: "row",
        reason: format!(
            "the row was made for feature definitions {}, the store holds {}",
            row.definitions().id(),
            defs.id()
        ),
    })
}

/// Checks a whole batch against the definitions and limits.
pub(crate) fn check_batch(defs: &Definitions, batch: &[FeaturePut]) -> Result<()> {
    if batch.len() > PUT_BATCH_MAX {
        return Err(Error::LimitExceeded {
            what: "writes in one put batch",
            value: batch.len() as u64,
            limit: PUT_BATCH_MAX as u64,
        });
    }
    for (index, p) in batch.iter().enumerate() {
        let f = p.feature.index();
        let bad = |reason: String| Error::BadPut {
            index,
            feature: match defs.name(p.feature) {
                "" => format!("#{f}"),
                name => name.to_owned(),
            },
            reason,
        };
        if f >= defs.stored().len() {
            return Err(bad(if f < defs.len() {
                "a computed feature cannot be written".into()
            } else {
                format!("no feature #{f} in these definitions")
            }));
        }
        if p.entity == 0 {
            return Err(bad("entity key 0 is reserved (no user)".into()));
        }
        defs.check_value(f, p.value).map_err(bad)?;
    }
    Ok(())
}

/// The splitmix64 finaliser (as the other stores use): spreads any key
/// over all bits before its set is chosen.
pub(crate) fn mix64(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}
