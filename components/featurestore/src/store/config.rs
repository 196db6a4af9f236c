//! What a store is sized and written with: [`StoreConfig`] and its limits,
//! the [`FeaturePut`] of a batch and its checks, and the counters
//! ([`PutOutcome`], [`StoreStats`]).

use crate::defs::{Definitions, FeatureId, Value};
use crate::error::{Error, Result};
use crate::health::WarnPolicy;
use crate::row::FeatureValues;
use std::sync::Arc;

/// Slots per set.
pub const WAYS: usize = 8;
/// Most entity slots a store may be configured with (before rounding).
pub const ENTITIES_MAX: usize = 1 << 26;
/// Most bytes a store may be configured with: 64 GiB.
pub const STORE_BYTES_MAX: u64 = 1 << 36;
/// Most writes in one [`put`](super::FeatureStore::put) batch.
pub const PUT_BATCH_MAX: usize = 65_536;

pub(crate) const NS_PER_S: u64 = 1_000_000_000;

/// Size and health policy of a store.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StoreConfig {
    /// Entities to hold, `1..=ENTITIES_MAX`; rounded up to a multiple of
    /// [`WAYS`]. Give a fifth more than the entities expected: with two
    /// choices per key, sets then overflow for about 0.02% of them.
    pub entities: usize,
    /// Most bytes the entity tables may take, up to [`STORE_BYTES_MAX`];
    /// wins over `entities` (see the [store docs](super)).
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
    /// Bytes of the key and record tables marked for huge pages (see
    /// `store/pages.rs`; 0 when the tables are small or the kernel has no
    /// transparent huge pages).
    pub huge_page_bytes: u64,
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
        self.huge_page_bytes += o.huge_page_bytes;
        self.reads += o.reads;
        self.written += o.written;
        self.outdated += o.outdated;
        self.evictions += o.evictions;
        self.reclaimed += o.reclaimed;
    }
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
