//! `FeatureStore::read_many`: several entities' lookups with their memory
//! accesses overlapped.
//!
//! A lookup of a user whose record is not in cache waits for memory twice
//! in a row: for the key line that says which slot, then for the record.
//! One request after another, those waits add up. A batch (the requests of
//! one engine tick) does each step for every entity before the next step:
//! it loads every candidate key line, then finds every slot (the key lines
//! are in cache by then) and loads one word of every record line, and
//! only then fills the rows (the records are in cache). The loads of one
//! step do not depend on each other, so the processor has them in flight
//! together, and the batch waits for memory about twice in all instead of
//! twice per entity. Prefetch hints do the loading ([`prefetch`]: with
//! plain loads, only the few lookups that fit in the processor's
//! out-of-order window overlapped). Every row and every counter comes out
//! as from one [`read`](FeatureStore::read) per entity, in order.

use super::prefetch::prefetch;
use super::{check_row, FeatureStore, NS_PER_S};
use crate::computed;
use crate::error::{Error, Result};
use crate::row::FeatureValues;

/// Most entities in one [`FeatureStore::read_many`].
pub const READ_BATCH_MAX: usize = 64;

impl FeatureStore {
    /// Reads `entities[i]` into `rows[i]` at `now_ns`, as many
    /// [`read`](Self::read)s would, with their memory accesses overlapped
    /// (see the [store docs](crate::store)). At most [`READ_BATCH_MAX`] entities,
    /// one row each; fails, touching nothing, otherwise or when a row was
    /// made for other definitions. Allocates nothing.
    ///
    /// A lookup of a user whose record is not in cache waits for memory
    /// twice in a row (the key line, then the record); this one loads
    /// every candidate key line of the batch, then every record line, and
    /// only then fills the rows, so the waits of the batch overlap.
    pub fn read_many(
        &mut self,
        entities: &[u64],
        now_ns: u64,
        rows: &mut [FeatureValues],
    ) -> Result<()> {
        check_batch_shape(entities.len(), rows.len())?;
        for row in rows.iter() {
            check_row(&self.defs, row)?;
        }
        for &entity in entities {
            let [a, b] = self.sets_of(entity);
            prefetch(&self.keys[a]);
            prefetch(&self.keys[b]);
        }
        let mut slots = [None; READ_BATCH_MAX];
        for (slot, &entity) in slots.iter_mut().zip(entities) {
            *slot = self.find(entity);
            if let Some(s) = *slot {
                self.records[self.record(s)].iter().for_each(prefetch);
            }
        }
        let now_s = (now_ns / NS_PER_S) as i64;
        for (row, &slot) in rows.iter_mut().zip(&slots) {
            self.read_slot(slot, now_ns, row);
            computed::evaluate(row, now_s);
        }
        Ok(())
    }
}

/// Refuses a batch larger than [`READ_BATCH_MAX`] or without one row per
/// entity.
pub(crate) fn check_batch_shape(entities: usize, rows: usize) -> Result<()> {
    if entities > READ_BATCH_MAX {
        return Err(Error::LimitExceeded {
            what: "entities in one read_many",
            value: entities as u64,
            limit: READ_BATCH_MAX as u64,
        });
    }
    if entities != rows {
        return Err(Error::BadConfig {
            field: "rows",
            reason: format!("{entities} entities need as many rows, not {rows}"),
        });
    }
    Ok(())
}
