//! The SIMD kernels: free functions over slices of [`Block`]s, generic over
//! the instruction-set [`Tier`] and always inlined into a tier's entry
//! point, which compiles them with that tier's instructions.
//!
//! Every block slice here is a padded row: its length is
//! `ceil(width / LANES)`, and the padding lanes hold zero weights, zero bias,
//! zero beta and threshold 1, so they never fire and never contribute.
//!
//! Each function keeps the scalar reference's order of floating-point
//! operations (fused multiply-add in ascending input order from zero, then
//! the bias; `beta·mem + I − r·thr` as separate roundings), so the results
//! are bit-identical to `crate::scalar` on every tier.
//!
//! `unsafe` is allowed in this module for one reason, with a `SAFETY` note:
//! the event-driven sum in [`accumulate_tile`] indexes a weight tile by
//! spike index, and a bounds check per spike costs more than the add it
//! guards (the indices are checked once per list, with a max, instead).
#![allow(unsafe_code)]

use super::tier::Tier;
use super::{Block, PackedLayer, LANES};
use cx_model::ResetMechanism;

/// Vectors needed for `width` lanes.
pub fn vectors_for(width: usize) -> usize {
    width.div_ceil(LANES)
}

/// Vectors per column tile of the input projection: 2 vectors (32 neurons)
/// times 8 batch rows keeps 16 accumulators in registers, and a tile of up
/// to 384 inputs (48 KiB) stays in L1 while every row block of the batch
/// streams past it.
pub const PROJECT_TILE_VECTORS: usize = 2;
/// Batch rows the input projection computes together, sharing each weight load.
const PROJECT_ROWS: usize = 8;

/// The row blocks of a batch: `(first_row, rows)` with `rows` 8 while at
/// least 8 remain, then one block of 4 if possible, then single rows.
#[inline(always)]
fn row_blocks(batch: usize) -> impl Iterator<Item = (usize, usize)> {
    let full = batch / PROJECT_ROWS * PROJECT_ROWS;
    let four = if batch - full >= 4 { 4 } else { 0 };
    (0..full)
        .step_by(PROJECT_ROWS)
        .map(|b| (b, PROJECT_ROWS))
        .chain((four > 0).then_some((full, 4)))
        .chain((full + four..batch).map(|b| (b, 1)))
}

/// Scratch entries [`project`] needs for `batch_max` rows of `inputs` features.
pub fn column_lists_len(batch_max: usize, inputs: usize) -> usize {
    (batch_max / PROJECT_ROWS + 4) * (inputs + 1)
}

/// Input projection over a batch: `cur[b] = W · x[b] + bias` for every row
/// `b` of `x` (`[batch][inputs]` row-major) into `cur` (`[batch][vectors]`).
/// `cols` is scratch of [`column_lists_len`] entries.
///
/// Blocked for the cache and the registers: the outer loop walks the
/// layer's column tiles, each small enough to stay in L1, and the inner loop
/// runs every block of 8 rows past it, so each weight load feeds 8 rows.
/// Each block first lists the input columns that are non-zero in any of its
/// rows and skips the rest, which is exact (`fma(0, w, acc) == acc`) and
/// pays off on one-hot features.
#[inline(always)]
pub fn project<T: Tier>(t: T, layer: &PackedLayer, x: &[f32], cur: &mut [Block], cols: &mut [u32]) {
    let inputs = layer.inputs;
    let batch = x.len().checked_div(inputs).unwrap_or(0);
    let stride = inputs + 1;
    for (i, (first, rows)) in row_blocks(batch).enumerate() {
        let list = &mut cols[i * stride..(i + 1) * stride];
        let (count, entries) = list.split_first_mut().expect("stride > 0");
        let block = &x[first * inputs..(first + rows) * inputs];
        *count = nonzero_columns(block, rows, inputs, entries) as u32;
    }
    let block_of = |i: usize, first: usize, rows: usize| {
        let list = &cols[i * stride..(i + 1) * stride];
        (
            &x[first * inputs..(first + rows) * inputs],
            &list[1..1 + list[0] as usize],
        )
    };
    let nv = layer.vectors();
    for tile_index in 0..layer.tiles() {
        let (v0, width, tile) = layer.tile(tile_index);
        for (i, (first, rows)) in row_blocks(batch).enumerate().filter(|(_, (_, r))| *r > 1) {
            let (x, cols) = block_of(i, first, rows);
            let block = RowBlock {
                x,
                inputs,
                cols,
                tile,
                v0,
                bias: &layer.bias,
            };
            let out = &mut cur[first * nv..];
            match (rows, width) {
                (PROJECT_ROWS, 2) => block.run::<T, PROJECT_ROWS, 2>(t, out),
                (PROJECT_ROWS, _) => block.run::<T, PROJECT_ROWS, 1>(t, out),
                (_, 2) => block.run::<T, 4, 2>(t, out),
                (_, _) => block.run::<T, 4, 1>(t, out),
            }
        }
    }
    // A single row has too few independent sums per tile to hide the FMA
    // latency, so it runs several tiles at once.
    for (i, (first, _)) in row_blocks(batch).enumerate().filter(|(_, (_, r))| *r == 1) {
        let (x, cols) = block_of(i, first, 1);
        let out = &mut cur[first * nv..(first + 1) * nv];
        let mut tile_index = 0;
        while tile_index + SINGLE_ROW_TILES <= layer.tiles()
            && layer.tile(tile_index + SINGLE_ROW_TILES - 1).1 == 2
        {
            single_row_tiles::<T, SINGLE_ROW_TILES>(t, layer, tile_index, x, cols, out);
            tile_index += SINGLE_ROW_TILES;
        }
        for tile_index in tile_index..layer.tiles() {
            let (v0, width, tile) = layer.tile(tile_index);
            let block = RowBlock {
                x,
                inputs,
                cols,
                tile,
                v0,
                bias: &layer.bias,
            };
            match width {
                2 => block.run::<T, 1, 2>(t, out),
                _ => block.run::<T, 1, 1>(t, out),
            }
        }
    }
}

/// Column tiles one row runs at once: 4 tiles of 2 vectors give 8
/// independent sums, enough to cover the FMA latency.
const SINGLE_ROW_TILES: usize = 4;

/// One row against the `G` full-width (2-vector) tiles starting at tile `first`.
#[inline(always)]
fn single_row_tiles<T: Tier, const G: usize>(
    t: T,
    layer: &PackedLayer,
    first: usize,
    x: &[f32],
    cols: &[u32],
    cur: &mut [Block],
) {
    debug_assert_eq!(layer.tile_vectors, 2);
    let tiles: [&[Block]; G] = std::array::from_fn(|g| layer.tile(first + g).2);
    let mut acc = [[t.zero(); 2]; G];
    for &d in cols {
        let d = d as usize;
        let xd = t.splat(x[d]);
        for g in 0..G {
            let w: &[Block; 2] = tiles[g][d * 2..d * 2 + 2].try_into().expect("tile row");
            for v in 0..2 {
                acc[g][v] = t.mul_add(xd, t.load(&w[v]), acc[g][v]);
            }
        }
    }
    let v0 = first * layer.tile_vectors;
    for (g, sums) in acc.iter().enumerate() {
        for (v, &sum) in sums.iter().enumerate() {
            let vector = v0 + 2 * g + v;
            t.store_to(t.add(sum, t.load(&layer.bias[vector])), &mut cur[vector]);
        }
    }
}

/// Input projection of a sparse batch: `cur[r] = W · x[r] + bias` for each
/// row, reading only the row's non-zeros. For every output vector it
/// accumulates `fma(value, weight, acc)` over the row's columns in ascending
/// order from zero and then adds the bias: exactly the operations of
/// [`project`] and of the scalar reference on the scattered row.
#[inline(always)]
pub fn project_sparse<T: Tier>(
    t: T,
    layer: &PackedLayer,
    rows: &crate::sparse::SparseRows<'_>,
    cur: &mut [Block],
) {
    let nv = layer.vectors();
    for (r, out) in cur.chunks_exact_mut(nv).take(rows.batch()).enumerate() {
        let (columns, values) = rows.row(r);
        for tile_index in 0..layer.tiles() {
            let (v0, width, tile) = layer.tile(tile_index);
            let (bias, out) = (&layer.bias[v0..], &mut out[v0..]);
            match width {
                2 => sparse_tile::<T, 2>(t, tile, columns, values, bias, out),
                _ => sparse_tile::<T, 1>(t, tile, columns, values, bias, out),
            }
        }
    }
}

/// One row against one column tile of `V` vectors: the sum over the row's
/// non-zeros in registers, then the bias. Columns were checked against the
/// layer's inputs ([`crate::sparse`]), so every weight row exists.
#[inline(always)]
fn sparse_tile<T: Tier, const V: usize>(
    t: T,
    tile: &[Block],
    columns: &[u32],
    values: &[f32],
    bias: &[Block],
    out: &mut [Block],
) {
    let mut acc = [t.zero(); V];
    for (&c, &v) in columns.iter().zip(values) {
        let c = c as usize;
        let w = &tile[c * V..(c + 1) * V];
        let x = t.splat(v);
        for k in 0..V {
            acc[k] = t.mul_add(x, t.load(&w[k]), acc[k]);
        }
    }
    for k in 0..V {
        t.store_to(t.add(acc[k], t.load(&bias[k])), &mut out[k]);
    }
}

/// Writes to the front of `cols` the columns `d` where any of the `rows`
/// rows of `x` is non-zero, ascending; returns how many. Branch-free.
#[inline(always)]
fn nonzero_columns(x: &[f32], rows: usize, inputs: usize, cols: &mut [u32]) -> usize {
    let mut n = 0;
    for d in 0..inputs {
        cols[n] = d as u32;
        n += (0..rows).any(|r| x[r * inputs + d] != 0.0) as usize;
    }
    n
}

/// One block of rows against one column tile of the projection.
struct RowBlock<'a> {
    x: &'a [f32],
    inputs: usize,
    cols: &'a [u32],
    tile: &'a [Block],
    v0: usize,
    bias: &'a [Block],
}

impl RowBlock<'_> {
    /// `R` rows by `V` vectors, accumulated in registers, written to `cur`
    /// (which starts at the block's first row).
    #[inline(always)]
    fn run<T: Tier, const R: usize, const V: usize>(&self, t: T, cur: &mut [Block]) {
        debug_assert!(V == 1 || self.tile.len() == (self.inputs + 1) * V);
        let nv = self.bias.len();
        let rows: [&[f32]; R] =
            std::array::from_fn(|r| &self.x[r * self.inputs..(r + 1) * self.inputs]);
        let mut acc = [[t.zero(); V]; R];
        for &d in self.cols {
            let d = d as usize;
            let w: &[Block; V] = self.tile[d * V..(d + 1) * V].try_into().expect("tile row");
            for r in 0..R {
                let xr = t.splat(rows[r][d]);
                for v in 0..V {
                    acc[r][v] = t.mul_add(xr, t.load(&w[v]), acc[r][v]);
                }
            }
        }
        for r in 0..R {
            for v in 0..V {
                let bias = t.load(&self.bias[self.v0 + v]);
                t.store_to(t.add(acc[r][v], bias), &mut cur[r * nv + self.v0 + v]);
            }
        }
    }
}

/// Event-driven input of 16-neuron tiles of a spiking layer, `N` sums at
/// once: `acc[k] = Σ_{h in spikes[k]} graded · tiles[k][h]` (each `h` given
/// as its row's byte offset, `h << ROW_SHIFT`), touching only
/// the weight rows of neurons that fired. A tile is one column of the weight
/// matrix, one vector per input neuron plus a final zero row (contiguous, so
/// a 512-input tile is 32 KiB and stays in L1 while a chunk of samples
/// streams by). The `N` sums are either `N` samples against one tile or one
/// sample against `N` tiles.
///
/// The sums advance in lockstep: a single running sum is a chain of
/// dependent adds (4 cycles each), while `N` independent sums keep the load
/// ports busy. The lists are therefore all the same length: a shorter one is
/// padded with the zero row's index, and adding that row changes nothing
/// (`acc + 0 == acc`). Each sum keeps the scalar reference's ascending
/// order.
// Indexing all N lists by one position is the lockstep itself.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
pub fn accumulate_tile<T: Tier, const N: usize>(
    t: T,
    spikes: [&[u32]; N],
    tiles: [&[Block]; N],
    graded: f32,
) -> [T::V; N] {
    let len = spikes[0].len();
    for (list, tile) in spikes.iter().zip(&tiles) {
        let max = list.iter().copied().max().unwrap_or(0) as usize;
        assert!(list.len() == len, "lockstep lists have equal lengths");
        assert!(
            list.is_empty() || (max >> ROW_SHIFT) < tile.len(),
            "spike offset {max} is outside a tile of {} rows",
            tile.len()
        );
    }
    // Reads the row at byte offset `offset` of tile `k` without a bounds check.
    let row = |k: usize, offset: u32| -> T::V {
        debug_assert_eq!(offset % (1 << ROW_SHIFT), 0);
        // SAFETY: every offset in list `k` was checked above to address a
        // row inside `tiles[k]` (offset >> ROW_SHIFT < len, and offsets are
        // multiples of the 64-byte row size by construction in
        // `Tier::push_fired`), and `offset` is one of those offsets. A
        // `Block` is 64 bytes and 64-byte aligned, so the row is a whole,
        // aligned `Block`.
        let block = unsafe {
            &*tiles[k]
                .as_ptr()
                .cast::<u8>()
                .add(offset as usize)
                .cast::<Block>()
        };
        t.load(block)
    };
    let mut acc = [t.zero(); N];
    if graded == 1.0 {
        // fma(1, w, acc) rounds exactly like acc + w.
        for i in 0..len {
            for k in 0..N {
                acc[k] = t.add(acc[k], row(k, spikes[k][i]));
            }
        }
    } else {
        let g = t.splat(graded);
        for i in 0..len {
            for k in 0..N {
                acc[k] = t.mul_add(g, row(k, spikes[k][i]), acc[k]);
            }
        }
    }
    acc
}

/// Spike lists hold byte offsets of weight rows, `neuron << ROW_SHIFT`:
/// a spiking layer's tile has one 64-byte vector per input neuron, and an
/// offset indexes it without a shift per spike.
pub const ROW_SHIFT: u32 = 6;

/// Spike-list slack: [`Tier::push_fired`] writes whole groups of 8 (or 16)
/// indices, so a spike buffer holds `vectors * LANES + SPIKES_SLACK` entries.
pub const SPIKES_SLACK: usize = LANES;

/// One Leaky step for 16 neurons: returns the new membrane (not yet reset)
/// and the bitmask of the lanes that fire.
#[inline(always)]
pub fn lif_one<T: Tier>(
    t: T,
    mem: T::V,
    cur: T::V,
    beta: T::V,
    threshold: T::V,
    reset: ResetMechanism,
) -> (T::V, u32) {
    let fired_before = t.gt(mem, threshold);
    let next = match reset {
        ResetMechanism::Subtract => {
            t.sub(t.add(t.mul(beta, mem), cur), t.and(fired_before, threshold))
        }
        ResetMechanism::Zero => t.add(t.mul(beta, t.select(fired_before, t.zero(), mem)), cur),
        ResetMechanism::None => t.add(t.mul(beta, mem), cur),
    };
    (next, t.bits(t.gt(next, threshold)))
}

/// One Leaky step for a layer, vectorised across neurons. Writes the indices
/// of the neurons that fire, ascending, to the front of `spikes` (which holds
/// at least `mem.len() * LANES + SPIKES_SLACK` entries) and returns how many
/// there are.
#[inline(always)]
pub fn lif_step<T: Tier>(
    t: T,
    mem: &mut [Block],
    cur: &[Block],
    beta: &[Block],
    threshold: &[Block],
    reset: ResetMechanism,
    spikes: &mut [u32],
) -> usize {
    debug_assert!(spikes.len() >= mem.len() * LANES + SPIKES_SLACK);
    let mut fired_count = 0;
    for i in 0..mem.len() {
        let (next, bits) = lif_one(
            t,
            t.load(&mem[i]),
            t.load(&cur[i]),
            t.load(&beta[i]),
            t.load(&threshold[i]),
            reset,
        );
        t.store_to(next, &mut mem[i]);
        fired_count = t.push_fired((i * LANES) as u32, bits, spikes, fired_count);
    }
    fired_count
}
