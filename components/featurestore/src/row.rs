//! [`FeatureValues`]: one entity's features as read at one time, the
//! caller's buffer that every read fills in place.
//!
//! A read writes each feature's *effective* value (the stored value when
//! fresh, the definition's default when missing or stale) and its
//! [`Freshness`], then evaluates the computed features into the same
//! buffer. The buffer is sized once for its definitions, so a read
//! allocates nothing.

use crate::defs::{Definitions, FeatureId, Value, ValueType};
use std::sync::Arc;

/// How a read found a value. Ordered: a computed feature is as bad as
/// its worst input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Freshness {
    /// Written, and no older than its TTL.
    Fresh,
    /// Written, but older than its TTL: read as the default.
    Stale,
    /// Never written for this entity, or evicted: read as the default.
    #[default]
    Missing,
}

/// One entity's features at one time. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct FeatureValues {
    pub(crate) defs: Arc<Definitions>,
    /// Effective value bits per feature (computed: f32 bits, or 0/1).
    pub(crate) bits: Box<[u64]>,
    pub(crate) status: Box<[Freshness]>,
    /// Per stored feature: age in seconds at the read (`u32::MAX` when
    /// missing).
    pub(crate) age_s: Box<[u32]>,
}

impl FeatureValues {
    /// A buffer for reads under `defs`, every feature missing.
    pub fn new(defs: Arc<Definitions>) -> Self {
        let n = defs.len();
        let stored = defs.stored().len();
        let mut row = Self {
            bits: vec![0; n].into(),
            status: vec![Freshness::Missing; n].into(),
            age_s: vec![u32::MAX; stored].into(),
            defs,
        };
        row.set_missing();
        row
    }

    /// The definitions the buffer was made for.
    pub fn definitions(&self) -> &Arc<Definitions> {
        &self.defs
    }

    /// Features in the row: stored, then computed.
    pub fn len(&self) -> usize {
        self.bits.len()
    }

    /// Whether the definitions have no feature.
    pub fn is_empty(&self) -> bool {
        self.bits.is_empty()
    }

    /// The value read for `id` (the default when not fresh; `None` for an
    /// id of other definitions).
    pub fn value(&self, id: FeatureId) -> Option<Value> {
        let t = self.defs.value_type(id)?;
        Some(Value::from_bits(t, self.bits[id.index()]))
    }

    /// How the value of `id` was found (`Missing` for an id of other
    /// definitions).
    pub fn freshness(&self, id: FeatureId) -> Freshness {
        self.status
            .get(id.index())
            .copied()
            .unwrap_or(Freshness::Missing)
    }

    /// The age in seconds of stored feature `id` at the read; `None` when
    /// missing or not a stored feature.
    pub fn age_s(&self, id: FeatureId) -> Option<u32> {
        self.age_s
            .get(id.index())
            .copied()
            .filter(|&a| a != u32::MAX)
    }

    /// The value of the feature called `name`, and its freshness.
    pub fn get(&self, name: &str) -> Option<(Value, Freshness)> {
        let id = self.defs.find(name)?;
        Some((self.value(id)?, self.freshness(id)))
    }

    /// The value of `id` as a number ([`Value::as_f64`]; 0 for an id of
    /// other definitions).
    pub fn number(&self, id: FeatureId) -> f64 {
        self.value(id).map_or(0.0, |v| v.as_f64())
    }

    /// Every feature's id, value and freshness, in row order.
    pub fn iter(&self) -> impl Iterator<Item = (FeatureId, Value, Freshness)> + '_ {
        (0..self.len()).filter_map(move |i| {
            let id = FeatureId(i as u16);
            Some((id, self.value(id)?, self.freshness(id)))
        })
    }

    /// Every feature as a read of an entity the store does not hold gives
    /// at `now_ns` (unix ns): every stored feature missing (its default),
    /// then the computed features evaluated. For a request with no entity
    /// to read (no user, or no store): allocates nothing and counts no
    /// health.
    pub fn set_defaults(&mut self, now_ns: u64) {
        self.set_missing();
        crate::computed::evaluate(self, (now_ns / 1_000_000_000) as i64);
    }

    /// Every stored feature missing (its default); computed features are
    /// evaluated by the caller afterwards.
    pub(crate) fn set_missing(&mut self) {
        let stored = self.age_s.len();
        self.bits[..stored].copy_from_slice(&self.defs.default_bits);
        self.status[..stored].fill(Freshness::Missing);
        self.age_s.fill(u32::MAX);
    }
}

/// The number a computed feature reads from position `i` of `bits`.
pub(crate) fn input(defs: &Definitions, bits: &[u64], i: usize) -> f64 {
    match defs.types.get(i) {
        Some(&t) => Value::from_bits(t, bits[i]).as_f64(),
        None => match defs.value_type(FeatureId(i as u16)) {
            Some(ValueType::Bool) => bits[i] as f64,
            _ => f64::from(f32::from_bits(bits[i] as u32)),
        },
    }
}
