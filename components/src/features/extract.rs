//! Extraction: one [`RequestContext`] into one caller-owned row.
//!
//! Nothing here allocates. A hashed key (`domain=` followed by the value) is
//! assembled in a fixed stack buffer and hashed in one call, so the hash is
//! exactly `xxh3_64_with_seed(b"domain=example.com", seed)`, which any
//! xxh3 implementation reproduces. Values longer than
//! [`limits::VALUE_BYTES_MAX`] never reach the buffer: they are skipped and
//! counted, which bounds both the buffer and the time spent hashing.

use super::context::{placement_size_slot, RequestContext};
use super::limits;
use super::schema::{hour_index, FeatureSchema, HashBlock};
use crate::error::{Error, Result};
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Longest hashed key: a field prefix (at most 16 bytes), up to two values
/// and a separator.
const KEY_BYTES_MAX: usize = 32 + 2 * limits::VALUE_BYTES_MAX;

/// What one extraction left out or clamped; all zero for a well-formed context.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExtractStats {
    /// Segments and categories past [`limits::LIST_ITEMS_MAX`], ignored.
    pub dropped_items: u32,
    /// Strings longer than [`limits::VALUE_BYTES_MAX`] bytes, ignored.
    pub oversized_values: u32,
    /// Numbers moved into their documented range: a bid floor that is NaN,
    /// negative or above [`limits::FLOOR_MAX`]; a placement side above
    /// [`limits::PLACEMENT_PX_MAX`].
    pub clamped: u32,
}

/// The bucket of a hashed key: `xxh3_64_with_seed(key, seed) % buckets`.
/// `buckets` must not be zero.
pub fn bucket(key: &[u8], seed: u64, buckets: u32) -> usize {
    (xxh3_64_with_seed(key, seed) % u64::from(buckets)) as usize
}

impl FeatureSchema {
    /// Writes the features of `ctx` into `row`, which must be exactly
    /// [`width()`](Self::width) long ([`Error::WrongRowWidth`] otherwise).
    /// The row is zeroed first. Never allocates; every value written is
    /// finite and within its block's [`range`](super::Block::range).
    pub fn extract(&self, ctx: &RequestContext, row: &mut [f32]) -> Result<ExtractStats> {
        if row.len() != self.width {
            return Err(Error::WrongRowWidth {
                what: "feature schema",
                expected: self.width,
                found: row.len(),
            });
        }
        row.fill(0.0);
        let mut stats = ExtractStats::default();
        self.write_enums(ctx, row);
        self.write_numbers(ctx, row, &mut stats);
        self.write_hashed(ctx, row, &mut stats);
        Ok(stats)
    }

    fn write_enums(&self, ctx: &RequestContext, row: &mut [f32]) {
        let l = &self.layout;
        row[l.device_type + ctx.device_type.slot()] = 1.0;
        row[l.os + ctx.os.slot()] = 1.0;
        row[l.connection_type + ctx.connection_type.slot()] = 1.0;
        row[l.ad_position + ctx.ad_position.slot()] = 1.0;
        row[l.inventory + usize::from(ctx.is_app)] = 1.0;
        let size = placement_size_slot(ctx.placement_width, ctx.placement_height);
        row[l.placement_size + size] = 1.0;
    }

    fn write_numbers(&self, ctx: &RequestContext, row: &mut [f32], stats: &mut ExtractStats) {
        let l = &self.layout;
        row[l.placement_px] = log_px(ctx.placement_width, stats);
        row[l.placement_px + 1] = log_px(ctx.placement_height, stats);
        row[l.bid_floor] = log_money(ctx.bid_floor, stats);
        for (slot, &v) in ctx.extra_numeric.iter().enumerate() {
            row[l.extra_numeric + slot] = log_extra(v, stats);
        }
        for (offset, period) in [(l.hour_of_day, 24), (l.hour_of_week, 168)] {
            let (sin, cos) = cycle(hour_index(ctx.timestamp, period), period);
            row[offset] = sin;
            row[offset + 1] = cos;
        }
    }

    fn write_hashed(&self, ctx: &RequestContext, row: &mut [f32], stats: &mut ExtractStats) {
        let l = &self.layout;
        let mut keys = KeyBuf::new(row, stats);
        keys.set(&l.country, b"country=", &[ctx.country.as_bytes()]);
        if !ctx.region.is_empty() {
            let region = [ctx.country.as_bytes(), b"-", ctx.region.as_bytes()];
            keys.set(&l.region, b"region=", &region);
        }
        let site_prefix: &[u8] = if ctx.is_app { b"app_id=" } else { b"site_id=" };
        keys.set(&l.site_id, site_prefix, &[ctx.site_id.as_bytes()]);
        keys.set(&l.domain, b"domain=", &[ctx.domain.as_bytes()]);
        keys.set_all(&l.categories, b"category=", &ctx.categories);
        keys.set(&l.user_id, b"user_id=", &[ctx.user_id.as_bytes()]);
        keys.set_all(&l.user_segments, b"user_segment=", &ctx.user_segments);
        keys.set_all(&l.extra, b"extra=", &ctx.extra);
    }
}

/// Assembles keys on the stack and sets their buckets in the row.
struct KeyBuf<'a> {
    bytes: [u8; KEY_BYTES_MAX],
    row: &'a mut [f32],
    stats: &'a mut ExtractStats,
}

impl<'a> KeyBuf<'a> {
    fn new(row: &'a mut [f32], stats: &'a mut ExtractStats) -> Self {
        Self {
            bytes: [0; KEY_BYTES_MAX],
            row,
            stats,
        }
    }

    /// Sets the bucket of `prefix ++ parts` in `block`. Skipped when the
    /// last part (the value itself) is empty, or counted as oversized when
    /// any part is longer than [`limits::VALUE_BYTES_MAX`].
    fn set(&mut self, block: &HashBlock, prefix: &[u8], parts: &[&[u8]]) {
        if parts.last().is_none_or(|value| value.is_empty()) {
            return;
        }
        if parts.iter().any(|p| p.len() > limits::VALUE_BYTES_MAX) {
            self.stats.oversized_values += 1;
            return;
        }
        let mut len = 0;
        for part in std::iter::once(&prefix).chain(parts) {
            let end = len + part.len();
            let Some(dst) = self.bytes.get_mut(len..end) else {
                // Unreachable with prefixes under 32 bytes; counted, never a panic.
                self.stats.oversized_values += 1;
                return;
            };
            dst.copy_from_slice(part);
            len = end;
        }
        let column = block.offset + bucket(&self.bytes[..len], block.seed, block.buckets);
        self.row[column] = 1.0;
    }

    /// [`Self::set`] for each of the first [`limits::LIST_ITEMS_MAX`] items;
    /// the rest are counted as dropped.
    fn set_all(&mut self, block: &HashBlock, prefix: &[u8], items: &[String]) {
        let read = items.len().min(limits::LIST_ITEMS_MAX);
        self.stats.dropped_items += (items.len() - read) as u32;
        for item in &items[..read] {
            self.set(block, prefix, &[item.as_bytes()]);
        }
    }
}

/// `ln(1 + min(px, PLACEMENT_PX_MAX))`.
fn log_px(px: u32, stats: &mut ExtractStats) -> f32 {
    let clamped = px.min(limits::PLACEMENT_PX_MAX);
    stats.clamped += u32::from(clamped != px);
    f64::from(clamped).ln_1p() as f32
}

/// `ln(1 + floor)`, with the floor clamped to `[0, FLOOR_MAX]` and NaN read as 0.
fn log_money(floor: f64, stats: &mut ExtractStats) -> f32 {
    // `floor > 0.0` is false for NaN, so NaN, negatives and -inf all become 0.
    let clamped = if floor > 0.0 {
        floor.min(limits::FLOOR_MAX)
    } else {
        0.0
    };
    // NaN compares unequal to itself, so it counts; -0.0 == 0.0 does not.
    stats.clamped += u32::from(clamped != floor);
    clamped.ln_1p() as f32
}

/// A generic numeric feature, `ln(1 + v)` with `v` clamped to
/// `[0, EXTRA_NUMERIC_MAX]` (NaN reads as 0); clamping is counted.
fn log_extra(v: f64, stats: &mut ExtractStats) -> f32 {
    let clamped = if v > 0.0 {
        v.min(limits::EXTRA_NUMERIC_MAX)
    } else {
        0.0
    };
    stats.clamped += u32::from(clamped != v);
    clamped.ln_1p() as f32
}

/// `(sin, cos)` of `2 pi index / period`, computed in f64 and rounded to f32.
fn cycle(index: i64, period: u32) -> (f32, f32) {
    let angle = std::f64::consts::TAU * index as f64 / f64::from(period);
    (angle.sin() as f32, angle.cos() as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_log_scaled_and_clamped() {
        let mut stats = ExtractStats::default();
        assert_eq!(log_money(0.0, &mut stats), 0.0);
        assert_eq!(log_money(-0.0, &mut stats), 0.0);
        assert_eq!(stats.clamped, 0);
        assert_eq!(log_money(1.5, &mut stats), 1.5f64.ln_1p() as f32);
        assert_eq!(stats.clamped, 0);
        assert_eq!(log_money(f64::NAN, &mut stats), 0.0);
        assert_eq!(log_money(-3.0, &mut stats), 0.0);
        assert_eq!(log_money(f64::NEG_INFINITY, &mut stats), 0.0);
        let top = limits::FLOOR_MAX.ln_1p() as f32;
        assert_eq!(log_money(f64::INFINITY, &mut stats), top);
        assert_eq!(log_money(1e300, &mut stats), top);
        assert_eq!(stats.clamped, 5);
    }

    #[test]
    fn pixels_are_log_scaled_and_clamped() {
        let mut stats = ExtractStats::default();
        assert_eq!(log_px(0, &mut stats), 0.0);
        assert_eq!(log_px(300, &mut stats), 301f64.ln() as f32);
        assert_eq!(stats.clamped, 0);
        let top = f64::from(limits::PLACEMENT_PX_MAX).ln_1p() as f32;
        assert_eq!(log_px(u32::MAX, &mut stats), top);
        assert_eq!(stats.clamped, 1);
    }

    #[test]
    fn cycles_hit_the_quarter_points() {
        assert_eq!(cycle(0, 24), (0.0, 1.0));
        let (sin, cos) = cycle(6, 24);
        assert_eq!(sin, 1.0);
        assert!(cos.abs() < 1e-7);
        let (sin, cos) = cycle(84, 168);
        assert!(sin.abs() < 1e-7);
        assert_eq!(cos, -1.0);
    }

    #[test]
    fn keys_hash_the_concatenated_bytes() {
        let mut row = vec![0.0; 64];
        let mut stats = ExtractStats::default();
        let block = HashBlock {
            offset: 10,
            buckets: 50,
            seed: 7,
        };
        KeyBuf::new(&mut row, &mut stats).set(&block, b"region=", &[b"USA", b"-", b"CA"]);
        let expect = 10 + bucket(b"region=USA-CA", 7, 50);
        assert_eq!(row[expect], 1.0);
        assert_eq!(row.iter().sum::<f32>(), 1.0);
        assert_eq!(stats, ExtractStats::default());
    }

    #[test]
    fn empty_and_oversized_values_set_nothing() {
        let mut row = vec![0.0; 8];
        let mut stats = ExtractStats::default();
        let block = HashBlock {
            offset: 0,
            buckets: 8,
            seed: 1,
        };
        let long = vec![b'x'; limits::VALUE_BYTES_MAX + 1];
        let mut keys = KeyBuf::new(&mut row, &mut stats);
        keys.set(&block, b"domain=", &[b""]);
        keys.set(&block, b"domain=", &[&long]);
        keys.set(&block, b"region=", &[&long, b"-", b"CA"]);
        keys.set(&block, b"domain=", &[&long[..limits::VALUE_BYTES_MAX]]);
        assert_eq!(stats.oversized_values, 2);
        assert_eq!(
            row.iter().sum::<f32>(),
            1.0,
            "the value at the limit is hashed"
        );
    }
}
