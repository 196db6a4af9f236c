//! Extraction: one [`RequestContext`] into one caller-owned row, dense
//! ([`FeatureSchema::extract`]) or sparse ([`FeatureSchema::extract_sparse`]).
//! Both write through one private sink trait, so they cannot disagree.
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
use cx_featurestore::FeatureValues;
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
        self.extract_with_store(ctx, None, row)
    }

    /// [`extract`](Self::extract), with the store section (if the schema
    /// has one) written from `store`, the request's user's features read
    /// at `ctx.timestamp`; `None` writes the section of a user never seen
    /// (every feature its default). Values of other definitions are
    /// refused ([`Error::BadSchema`]). A schema without a store section
    /// ignores `store`.
    pub fn extract_with_store(
        &self,
        ctx: &RequestContext,
        store: Option<&FeatureValues>,
        row: &mut [f32],
    ) -> Result<ExtractStats> {
        self.check_store(store)?;
        if row.len() != self.width {
            return Err(Error::WrongRowWidth {
                what: "feature schema",
                expected: self.width,
                found: row.len(),
            });
        }
        row.fill(0.0);
        let mut stats = ExtractStats::default();
        self.write_all(ctx, store, row, &mut stats);
        Ok(stats)
    }

    /// Writes the non-zero features of `ctx` as `(column, value)` pairs into
    /// `columns` and `values`, which must each hold at least
    /// [`SPARSE_NONZERO_MAX`] entries ([`Error::WrongRowWidth`] otherwise), and
    /// returns how many were written. The pairs are sorted by column with no
    /// column twice (two keys hashed to one bucket set it once), so
    /// scattering them into a zeroed row gives exactly
    /// [`extract`](Self::extract)'s row, and equal rows give equal pairs.
    /// Never allocates.
    pub fn extract_sparse(
        &self,
        ctx: &RequestContext,
        columns: &mut [u32],
        values: &mut [f32],
    ) -> Result<(usize, ExtractStats)> {
        self.extract_sparse_with_store(ctx, None, columns, values)
    }

    /// [`extract_sparse`](Self::extract_sparse) with the store section
    /// written from `store`, as [`extract_with_store`](Self::extract_with_store).
    pub fn extract_sparse_with_store(
        &self,
        ctx: &RequestContext,
        store: Option<&FeatureValues>,
        columns: &mut [u32],
        values: &mut [f32],
    ) -> Result<(usize, ExtractStats)> {
        self.check_store(store)?;
        let room = columns.len().min(values.len());
        if room < SPARSE_NONZERO_MAX {
            return Err(Error::WrongRowWidth {
                what: "sparse feature row",
                expected: SPARSE_NONZERO_MAX,
                found: room,
            });
        }
        let mut sink = SparseSink {
            columns,
            values,
            len: 0,
        };
        let mut stats = ExtractStats::default();
        self.write_all(ctx, store, &mut sink, &mut stats);
        let written = sink.len;
        let len = sort_pairs(&mut columns[..written], &mut values[..written]);
        Ok((len, stats))
    }

    fn check_store(&self, store: Option<&FeatureValues>) -> Result<()> {
        match (self.store_section(), store) {
            (Some((section, _)), Some(values)) => section.check_values(values),
            _ => Ok(()),
        }
    }

    fn write_all<R: RowSink + ?Sized>(
        &self,
        ctx: &RequestContext,
        store: Option<&FeatureValues>,
        row: &mut R,
        stats: &mut ExtractStats,
    ) {
        self.write_enums(ctx, row);
        self.write_numbers(ctx, row, stats);
        self.write_hashed(ctx, row, stats);
        if let Some((section, offset)) = self.store_section() {
            let values = store.unwrap_or_else(|| section.defaults());
            section.write(values, ctx.timestamp, offset, row);
        }
    }

    fn write_enums<R: RowSink + ?Sized>(&self, ctx: &RequestContext, row: &mut R) {
        let l = &self.layout;
        row.put(l.device_type + ctx.device_type.slot(), 1.0);
        row.put(l.os + ctx.os.slot(), 1.0);
        row.put(l.connection_type + ctx.connection_type.slot(), 1.0);
        row.put(l.ad_position + ctx.ad_position.slot(), 1.0);
        row.put(l.inventory + usize::from(ctx.is_app), 1.0);
        let size = placement_size_slot(ctx.placement_width, ctx.placement_height);
        row.put(l.placement_size + size, 1.0);
    }

    fn write_numbers<R: RowSink + ?Sized>(
        &self,
        ctx: &RequestContext,
        row: &mut R,
        stats: &mut ExtractStats,
    ) {
        let l = &self.layout;
        row.put(l.placement_px, log_px(ctx.placement_width, stats));
        row.put(l.placement_px + 1, log_px(ctx.placement_height, stats));
        row.put(l.bid_floor, log_money(ctx.bid_floor, stats));
        for (slot, &v) in ctx.extra_numeric.iter().enumerate() {
            row.put(l.extra_numeric + slot, log_extra(v, stats));
        }
        for (offset, period) in [(l.hour_of_day, 24), (l.hour_of_week, 168)] {
            let (sin, cos) = cycle(hour_index(ctx.timestamp, period), period);
            row.put(offset, sin);
            row.put(offset + 1, cos);
        }
    }

    fn write_hashed<R: RowSink + ?Sized>(
        &self,
        ctx: &RequestContext,
        row: &mut R,
        stats: &mut ExtractStats,
    ) {
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
struct KeyBuf<'a, R: RowSink + ?Sized> {
    bytes: [u8; KEY_BYTES_MAX],
    row: &'a mut R,
    stats: &'a mut ExtractStats,
}

impl<'a, R: RowSink + ?Sized> KeyBuf<'a, R> {
    fn new(row: &'a mut R, stats: &'a mut ExtractStats) -> Self {
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
        self.row.put(column, 1.0);
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

/// Most `(column, value)` pairs [`FeatureSchema::extract_sparse`] writes:
/// six one-hot blocks, eleven numeric columns, five single hashed keys and
/// three hashed lists of at most [`limits::LIST_ITEMS_MAX`] items (118 in
/// v1), rounded up to 128, plus one per feature of a store section (at most
/// [`crate::STORE_FEATURES_MAX`]). A test checks the bound against the schema.
pub const SPARSE_NONZERO_MAX: usize = 128 + crate::store::STORE_FEATURES_MAX;

/// Sorts `(column, value)` pairs by column in place and drops repeated
/// columns (keeping the later value, as a dense row's assignment would);
/// returns the new length. Insertion sort: extraction writes most blocks
/// in column order already, and there are at most [`SPARSE_NONZERO_MAX`].
fn sort_pairs(columns: &mut [u32], values: &mut [f32]) -> usize {
    let n = columns.len().min(values.len());
    for i in 1..n {
        let (c, v) = (columns[i], values[i]);
        let mut j = i;
        while j > 0 && columns[j - 1] > c {
            columns[j] = columns[j - 1];
            values[j] = values[j - 1];
            j -= 1;
        }
        columns[j] = c;
        values[j] = v;
    }
    let mut len = 0;
    for i in 0..n {
        if len > 0 && columns[len - 1] == columns[i] {
            values[len - 1] = values[i];
        } else {
            columns[len] = columns[i];
            values[len] = values[i];
            len += 1;
        }
    }
    len
}

/// Where extraction writes: a dense row, or a sparse list of pairs.
pub(super) trait RowSink {
    /// Sets `column` to `value`.
    fn put(&mut self, column: usize, value: f32);
}

impl RowSink for [f32] {
    fn put(&mut self, column: usize, value: f32) {
        self[column] = value;
    }
}

/// Caller-owned sparse output; zeros are not written.
struct SparseSink<'a> {
    columns: &'a mut [u32],
    values: &'a mut [f32],
    len: usize,
}

impl RowSink for SparseSink<'_> {
    fn put(&mut self, column: usize, value: f32) {
        if value == 0.0 {
            return;
        }
        // The caller checked room for SPARSE_NONZERO_MAX pairs, which bounds
        // what the schema can write; `get_mut` keeps a violated bound from panicking.
        if let (Some(c), Some(v)) = (
            self.columns.get_mut(self.len),
            self.values.get_mut(self.len),
        ) {
            *c = column as u32;
            *v = value;
            self.len += 1;
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
    fn sparse_extraction_scatters_to_the_dense_row() {
        let schema = FeatureSchema::v1();
        let many: Vec<String> = (0..40).map(|i| format!("item-{i}")).collect();
        let ctx = RequestContext {
            user_id: "u1".into(),
            user_segments: many.clone(),
            categories: many.clone(),
            extra: many,
            country: "USA".into(),
            region: "CA".into(),
            site_id: "s".into(),
            domain: "d.com".into(),
            placement_width: 300,
            placement_height: 250,
            bid_floor: 2.0,
            extra_numeric: [1.0, 2.0, 3.0, 4.0],
            timestamp: 1_704_261_600 + 3 * 3600,
            ..RequestContext::default()
        };
        let mut dense = vec![0.0; schema.width()];
        let dense_stats = schema.extract(&ctx, &mut dense).unwrap();
        let mut columns = [0u32; SPARSE_NONZERO_MAX];
        let mut values = [0f32; SPARSE_NONZERO_MAX];
        let (len, stats) = schema
            .extract_sparse(&ctx, &mut columns, &mut values)
            .unwrap();
        assert_eq!(stats, dense_stats);
        let mut scattered = vec![0.0; schema.width()];
        for (&c, &v) in columns[..len].iter().zip(&values[..len]) {
            scattered[c as usize] = v;
        }
        assert_eq!(scattered, dense);
        assert!(
            columns[..len].windows(2).all(|w| w[0] < w[1]),
            "sorted, no repeats"
        );
        assert_eq!(len, dense.iter().filter(|v| **v != 0.0).count());
        // Every list full: the most pairs the schema can write, within the bound.
        assert!(len <= SPARSE_NONZERO_MAX);
        assert!(len > 6 + 11 + 5 + 3 * limits::LIST_ITEMS_MAX - 10, "{len}");
        let mut short = [0u32; SPARSE_NONZERO_MAX - 1];
        let err = schema
            .extract_sparse(&ctx, &mut short, &mut values)
            .unwrap_err();
        assert!(matches!(err, Error::WrongRowWidth { .. }), "{err}");
    }

    #[test]
    fn pairs_sort_and_keep_one_of_each_column() {
        let mut columns = [9, 2, 5, 2, 1, 9];
        let mut values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let len = sort_pairs(&mut columns, &mut values);
        assert_eq!(&columns[..len], &[1, 2, 5, 9]);
        assert_eq!(
            &values[..len],
            &[5.0, 4.0, 3.0, 6.0],
            "the later value wins"
        );
        assert_eq!(sort_pairs(&mut [], &mut []), 0);
    }

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
        KeyBuf::new(row.as_mut_slice(), &mut stats).set(&block, b"region=", &[b"USA", b"-", b"CA"]);
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
        let mut keys = KeyBuf::new(row.as_mut_slice(), &mut stats);
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
