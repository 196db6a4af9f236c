//! Slot-indexed rows: every buffer is allocated for `slots` requests at
//! start and indexed by [`Slot`](super::Slot), so the hot path allocates
//! nothing and a stage scans one flat array per quantity.

use super::ScoreSource;
use crate::error::{Error, Result};
use bevy_ecs::prelude::Resource;
use cx_features::SPARSE_NONZERO_MAX;

/// Most slots (requests in flight) any pool may have.
pub const SLOTS_MAX: usize = 1 << 20;

/// A fixed set of slot indices: `take` hands out a free one, `give` returns
/// it. A stack of free indices, allocated once.
#[derive(Resource, Debug)]
pub struct SlotPool {
    free: Vec<u32>,
    slots: usize,
}

impl SlotPool {
    /// A pool of `slots` indices, `0..slots`, all free.
    pub fn new(slots: usize) -> Result<Self> {
        check_slots(slots)?;
        // Reversed so that `take` hands out 0, 1, 2, ... first.
        Ok(Self {
            free: (0..slots as u32).rev().collect(),
            slots,
        })
    }

    /// A free slot, or `None` when all are taken.
    pub fn take(&mut self) -> Option<u32> {
        self.free.pop()
    }

    /// Returns `slot` to the pool. A slot out of range, or already free, is
    /// refused (returns false) so a double release cannot hand one slot to two
    /// requests; checking "already free" costs a scan and runs only in debug
    /// builds, where tests exercise it.
    pub fn give(&mut self, slot: u32) -> bool {
        if slot as usize >= self.slots || self.free.len() >= self.slots {
            return false;
        }
        debug_assert!(!self.free.contains(&slot), "slot {slot} released twice");
        self.free.push(slot);
        true
    }

    /// Slots in the pool.
    pub fn capacity(&self) -> usize {
        self.slots
    }

    /// Slots taken now.
    pub fn in_use(&self) -> usize {
        self.slots - self.free.len()
    }
}

fn check_slots(slots: usize) -> Result<()> {
    if slots == 0 || slots > SLOTS_MAX {
        return Err(Error::BadStoreConfig {
            store: "slot pool",
            reason: format!("slots must be in 1..={SLOTS_MAX}, got {slots}"),
        });
    }
    Ok(())
}

/// Sparse feature rows, one per slot, as structure of arrays: `columns` and
/// `values` are `[slots][SPARSE_NONZERO_MAX]`, `len[slot]` says how many of a
/// slot's pairs are in use. About 1 KiB per slot instead of the dense row's
/// 12 KiB, and the inference system scatters a row into its dense batch
/// block in a few dozen stores.
#[derive(Resource, Debug)]
pub struct FeatureRows {
    columns: Vec<u32>,
    values: Vec<f32>,
    len: Vec<u16>,
}

impl FeatureRows {
    /// Rows for `slots` requests, all empty.
    pub fn new(slots: usize) -> Result<Self> {
        check_slots(slots)?;
        Ok(Self {
            columns: vec![0; slots * SPARSE_NONZERO_MAX],
            values: vec![0.0; slots * SPARSE_NONZERO_MAX],
            len: vec![0; slots],
        })
    }

    /// The whole capacity of `slot`, for extraction to write into; call
    /// [`set_len`](Self::set_len) afterwards. `None` if `slot` is out of range.
    pub fn row_mut(&mut self, slot: u32) -> Option<(&mut [u32], &mut [f32])> {
        let range = pair_range(slot)?;
        let columns = self.columns.get_mut(range.clone())?;
        let values = self.values.get_mut(range)?;
        Some((columns, values))
    }

    /// Records that `slot` holds `len` pairs (clamped to the row's capacity).
    pub fn set_len(&mut self, slot: u32, len: usize) {
        if let Some(l) = self.len.get_mut(slot as usize) {
            *l = len.min(SPARSE_NONZERO_MAX) as u16;
        }
    }

    /// The pairs of `slot`: `(columns, values)`, equally long. Empty if
    /// `slot` is out of range.
    pub fn row(&self, slot: u32) -> (&[u32], &[f32]) {
        let len = self.len.get(slot as usize).map_or(0, |&l| usize::from(l));
        let Some(range) = pair_range(slot) else {
            return (&[], &[]);
        };
        let start = range.start;
        match (
            self.columns.get(start..start + len),
            self.values.get(start..start + len),
        ) {
            (Some(c), Some(v)) => (c, v),
            _ => (&[], &[]),
        }
    }
}

fn pair_range(slot: u32) -> Option<std::ops::Range<usize>> {
    let start = (slot as usize).checked_mul(SPARSE_NONZERO_MAX)?;
    Some(start..start + SPARSE_NONZERO_MAX)
}

/// Per-slot scores: `probability` is `[slots][width]` (one calibrated click
/// probability per model output column), `source[slot]` says where they came
/// from. Written by the cache, inference and validate systems; read by decide.
#[derive(Resource, Debug)]
pub struct ScoreRows {
    width: usize,
    probability: Vec<f32>,
    source: Vec<ScoreSource>,
}

impl ScoreRows {
    /// Rows of `width` probabilities for `slots` requests.
    pub fn new(slots: usize, width: usize) -> Result<Self> {
        check_slots(slots)?;
        if width == 0 || width > cx_model::limits::WIDTH_MAX {
            return Err(Error::BadStoreConfig {
                store: "score rows",
                reason: format!(
                    "width must be in 1..={}, got {width}",
                    cx_model::limits::WIDTH_MAX
                ),
            });
        }
        Ok(Self {
            width,
            probability: vec![0.0; slots * width],
            source: vec![ScoreSource::None; slots],
        })
    }

    /// Probabilities per row.
    pub fn width(&self) -> usize {
        self.width
    }

    /// The probabilities of `slot`; empty if out of range.
    pub fn row(&self, slot: u32) -> &[f32] {
        let start = slot as usize * self.width;
        self.probability
            .get(start..start + self.width)
            .unwrap_or(&[])
    }

    /// The probabilities of `slot`, to write; empty if out of range.
    pub fn row_mut(&mut self, slot: u32) -> &mut [f32] {
        let start = slot as usize * self.width;
        self.probability
            .get_mut(start..start + self.width)
            .unwrap_or(&mut [])
    }

    /// Where the probabilities of `slot` came from.
    pub fn source(&self, slot: u32) -> ScoreSource {
        self.source
            .get(slot as usize)
            .copied()
            .unwrap_or(ScoreSource::None)
    }

    /// Records where the probabilities of `slot` came from.
    pub fn set_source(&mut self, slot: u32, source: ScoreSource) {
        if let Some(s) = self.source.get_mut(slot as usize) {
            *s = source;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_hands_out_each_slot_once_and_refuses_strays() {
        let mut pool = SlotPool::new(3).unwrap();
        let taken: Vec<u32> = std::iter::from_fn(|| pool.take()).collect();
        assert_eq!(taken, [0, 1, 2]);
        assert_eq!(pool.in_use(), 3);
        assert!(!pool.give(3), "out of range");
        assert!(pool.give(1));
        assert_eq!(pool.take(), Some(1));
        assert_eq!(pool.take(), None);
        assert!(SlotPool::new(0).is_err());
        assert!(SlotPool::new(SLOTS_MAX + 1).is_err());
    }

    #[test]
    fn feature_rows_keep_each_slot_apart() {
        let mut rows = FeatureRows::new(2).unwrap();
        for slot in 0..2u32 {
            let (c, v) = rows.row_mut(slot).unwrap();
            assert_eq!(c.len(), SPARSE_NONZERO_MAX);
            c[0] = 10 + slot;
            v[0] = 1.5 + slot as f32;
            rows.set_len(slot, 1);
        }
        assert_eq!(rows.row(0), (&[10u32][..], &[1.5f32][..]));
        assert_eq!(rows.row(1), (&[11u32][..], &[2.5f32][..]));
        assert!(rows.row_mut(2).is_none());
        assert_eq!(rows.row(7).0.len(), 0);
    }

    #[test]
    fn score_rows_are_width_long_and_out_of_range_is_empty() {
        let mut scores = ScoreRows::new(2, 3).unwrap();
        scores.row_mut(1).copy_from_slice(&[0.1, 0.2, 0.3]);
        scores.set_source(1, ScoreSource::Model);
        assert_eq!(scores.row(1), &[0.1, 0.2, 0.3]);
        assert_eq!(scores.row(0), &[0.0; 3]);
        assert_eq!(scores.source(1), ScoreSource::Model);
        assert!(scores.row(2).is_empty());
        assert!(ScoreRows::new(2, 0).is_err());
    }
}
