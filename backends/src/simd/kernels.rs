//! The SIMD kernels: free functions over slices of [`f32x16`].
//!
//! Every vector slice here is a padded row: its length is
//! `ceil(width / LANES)`, and the padding lanes hold zero weights, zero bias,
//! zero beta and threshold 1, so they never fire and never contribute.
//!
//! Each function keeps the scalar reference's order of floating-point
//! operations (fused multiply-add in ascending input order from zero, then
//! the bias; `beta·mem + I − r·thr` as separate roundings), so the results
//! are bit-identical to `crate::scalar` on targets with FMA.
//!
//! `unsafe` is allowed in this module for two reasons, each with a `SAFETY`
//! note: the event-driven sum in [`accumulate_tile`] indexes a weight tile
//! by spike index, and a bounds check per spike costs more than the add it
//! guards (the indices are checked once per list, with a vectorised max,
//! instead); and on AVX-512 builds [`push_fired`] calls the `vpcompressd`
//! intrinsic, which `wide` does not expose.
#![allow(unsafe_code)]

use cx_model::ResetMechanism;
use wide::f32x16;

/// Lanes per vector.
pub const LANES: usize = 16;

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
pub fn project(layer: &super::PackedLayer, x: &[f32], cur: &mut [f32x16], cols: &mut [u32]) {
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
    for t in 0..layer.tiles() {
        let (v0, width, tile) = layer.tile(t);
        for (i, (first, rows)) in row_blocks(batch).enumerate().filter(|(_, (_, r))| *r > 1) {
            let (x, cols) = block_of(i, first, rows);
            let block = Block {
                x,
                inputs,
                cols,
                tile,
                v0,
                bias: &layer.bias,
            };
            let out = &mut cur[first * nv..];
            match (rows, width) {
                (PROJECT_ROWS, 2) => block.run::<PROJECT_ROWS, 2>(out),
                (PROJECT_ROWS, _) => block.run::<PROJECT_ROWS, 1>(out),
                (_, 2) => block.run::<4, 2>(out),
                (_, _) => block.run::<4, 1>(out),
            }
        }
    }
    // A single row has too few independent sums per tile to hide the FMA
    // latency, so it runs several tiles at once.
    for (i, (first, _)) in row_blocks(batch).enumerate().filter(|(_, (_, r))| *r == 1) {
        let (x, cols) = block_of(i, first, 1);
        let out = &mut cur[first * nv..(first + 1) * nv];
        let mut t = 0;
        while t + SINGLE_ROW_TILES <= layer.tiles() && layer.tile(t + SINGLE_ROW_TILES - 1).1 == 2 {
            single_row_tiles::<SINGLE_ROW_TILES>(layer, t, x, cols, out);
            t += SINGLE_ROW_TILES;
        }
        for t in t..layer.tiles() {
            let (v0, width, tile) = layer.tile(t);
            let block = Block {
                x,
                inputs,
                cols,
                tile,
                v0,
                bias: &layer.bias,
            };
            match width {
                2 => block.run::<1, 2>(out),
                _ => block.run::<1, 1>(out),
            }
        }
    }
}

/// Column tiles one row runs at once: 4 tiles of 2 vectors give 8
/// independent sums, enough to cover the FMA latency.
const SINGLE_ROW_TILES: usize = 4;

/// One row against the `G` full-width (2-vector) tiles starting at tile `t`.
fn single_row_tiles<const G: usize>(
    layer: &super::PackedLayer,
    t: usize,
    x: &[f32],
    cols: &[u32],
    cur: &mut [f32x16],
) {
    debug_assert_eq!(layer.tile_vectors, 2);
    let tiles: [&[f32x16]; G] = std::array::from_fn(|g| layer.tile(t + g).2);
    let mut acc = [[f32x16::ZERO; 2]; G];
    for &d in cols {
        let d = d as usize;
        let xd = f32x16::splat(x[d]);
        for g in 0..G {
            let w: &[f32x16; 2] = tiles[g][d * 2..d * 2 + 2].try_into().expect("tile row");
            for v in 0..2 {
                acc[g][v] = xd.mul_add(w[v], acc[g][v]);
            }
        }
    }
    let v0 = t * layer.tile_vectors;
    for (g, sums) in acc.iter().enumerate() {
        for (v, &sum) in sums.iter().enumerate() {
            let vector = v0 + 2 * g + v;
            cur[vector] = sum + layer.bias[vector];
        }
    }
}

/// Input projection of a sparse batch: `cur[r] = W · x[r] + bias` for each
/// row, reading only the row's non-zeros. For every output vector it
/// accumulates `fma(value, weight, acc)` over the row's columns in ascending
/// order from zero and then adds the bias: exactly the operations of
/// [`project`] and of the scalar reference on the scattered row.
pub fn project_sparse(
    layer: &super::PackedLayer,
    rows: &crate::sparse::SparseRows<'_>,
    cur: &mut [f32x16],
) {
    let nv = layer.vectors();
    for (r, out) in cur.chunks_exact_mut(nv).take(rows.batch()).enumerate() {
        let (columns, values) = rows.row(r);
        for t in 0..layer.tiles() {
            let (v0, width, tile) = layer.tile(t);
            match width {
                2 => sparse_tile::<2>(tile, columns, values, &layer.bias[v0..], &mut out[v0..]),
                _ => sparse_tile::<1>(tile, columns, values, &layer.bias[v0..], &mut out[v0..]),
            }
        }
    }
}

/// One row against one column tile of `V` vectors: the sum over the row's
/// non-zeros in registers, then the bias.
#[inline(always)]
fn sparse_tile<const V: usize>(
    tile: &[f32x16],
    columns: &[u32],
    values: &[f32],
    bias: &[f32x16],
    out: &mut [f32x16],
) {
    let mut acc = [f32x16::ZERO; V];
    for (&c, &v) in columns.iter().zip(values) {
        let c = c as usize;
        let Some(w) = tile.get(c * V..(c + 1) * V) else {
            continue; // unreachable: columns are checked against the inputs
        };
        let x = f32x16::splat(v);
        for k in 0..V {
            acc[k] = x.mul_add(w[k], acc[k]);
        }
    }
    for k in 0..V {
        out[k] = acc[k] + bias[k];
    }
}

/// Writes to the front of `cols` the columns `d` where any of the `rows`
/// rows of `x` is non-zero, ascending; returns how many. Branch-free.
fn nonzero_columns(x: &[f32], rows: usize, inputs: usize, cols: &mut [u32]) -> usize {
    let mut n = 0;
    for d in 0..inputs {
        cols[n] = d as u32;
        n += (0..rows).any(|r| x[r * inputs + d] != 0.0) as usize;
    }
    n
}

/// One block of rows against one column tile of the projection.
struct Block<'a> {
    x: &'a [f32],
    inputs: usize,
    cols: &'a [u32],
    tile: &'a [f32x16],
    v0: usize,
    bias: &'a [f32x16],
}

impl Block<'_> {
    /// `R` rows by `V` vectors, accumulated in registers, written to `cur`
    /// (which starts at the block's first row).
    #[inline(always)]
    fn run<const R: usize, const V: usize>(&self, cur: &mut [f32x16]) {
        debug_assert!(V == 1 || self.tile.len() == (self.inputs + 1) * V);
        let nv = self.bias.len();
        let rows: [&[f32]; R] =
            std::array::from_fn(|r| &self.x[r * self.inputs..(r + 1) * self.inputs]);
        let mut acc = [[f32x16::ZERO; V]; R];
        for &d in self.cols {
            let d = d as usize;
            let w: &[f32x16; V] = self.tile[d * V..(d + 1) * V].try_into().expect("tile row");
            for r in 0..R {
                let xr = f32x16::splat(rows[r][d]);
                for v in 0..V {
                    acc[r][v] = xr.mul_add(w[v], acc[r][v]);
                }
            }
        }
        for r in 0..R {
            for v in 0..V {
                cur[r * nv + self.v0 + v] = acc[r][v] + self.bias[self.v0 + v];
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
pub fn accumulate_tile<const N: usize>(
    spikes: [&[u32]; N],
    tiles: [&[f32x16]; N],
    graded: f32,
) -> [f32x16; N] {
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
    let row = |k: usize, offset: u32| -> f32x16 {
        debug_assert_eq!(offset % (1 << ROW_SHIFT), 0);
        // SAFETY: every offset in list `k` was checked above to address a
        // row inside `tiles[k]` (offset >> ROW_SHIFT < len, and offsets are
        // multiples of the 64-byte row size by construction in
        // `push_fired`), and `offset` is one of those offsets. `f32x16` is
        // 64-byte aligned, so the row is aligned too.
        unsafe {
            *tiles[k]
                .as_ptr()
                .cast::<u8>()
                .add(offset as usize)
                .cast::<f32x16>()
        }
    };
    let mut acc = [f32x16::ZERO; N];
    if graded == 1.0 {
        // fma(1, w, acc) rounds exactly like acc + w.
        for i in 0..len {
            for k in 0..N {
                acc[k] += row(k, spikes[k][i]);
            }
        }
    } else {
        let g = f32x16::splat(graded);
        for i in 0..len {
            for k in 0..N {
                acc[k] = g.mul_add(row(k, spikes[k][i]), acc[k]);
            }
        }
    }
    acc
}

/// Spike lists hold byte offsets of weight rows, `neuron << ROW_SHIFT`:
/// a spiking layer's tile has one 64-byte vector per input neuron, and an
/// offset indexes it without a shift per spike.
pub const ROW_SHIFT: u32 = 6;

/// Spike-list slack: [`push_fired`] writes whole groups of 8 indices, so a
/// spike buffer holds `vectors * LANES + SPIKES_SLACK` entries.
pub const SPIKES_SLACK: usize = LANES;

/// For each byte `m`, the positions of its set bits, ascending, padded with zeros.
const SET_BITS: [[u8; 8]; 256] = {
    let mut table = [[0u8; 8]; 256];
    let mut m = 0;
    while m < 256 {
        let (mut bit, mut n) = (0, 0);
        while bit < 8 {
            if m & (1 << bit) != 0 {
                table[m][n] = bit as u8;
                n += 1;
            }
            bit += 1;
        }
        m += 1;
    }
    table
};

/// Appends `(base + lane) << ROW_SHIFT` for every set bit of the 16-bit
/// `bits` to `spikes[count..]`, ascending, and returns the new count. `spikes` must
/// hold at least `count + LANES` entries. Branch-free: a loop over the bits
/// would mispredict its exit once per vector, which costs more than the
/// whole LIF update.
#[inline(always)]
pub fn push_fired(base: u32, bits: u32, spikes: &mut [u32], count: usize) -> usize {
    #[cfg(all(target_arch = "x86_64", target_feature = "avx512f"))]
    {
        // SAFETY: this code is only compiled for targets with AVX-512F
        // (the cfg above), so the CPU running it supports the instruction.
        let lanes = unsafe { compress_lanes_avx512(base, bits as u16) };
        spikes[count..count + LANES].copy_from_slice(&lanes);
        count + bits.count_ones() as usize
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "avx512f")))]
    push_fired_portable(base, bits, spikes, count)
}

/// `(base + lane) << ROW_SHIFT` for the set lanes of `bits`, packed to the
/// front (`vpcompressd`); the other entries are zero.
#[cfg(all(target_arch = "x86_64", target_feature = "avx512f"))]
#[target_feature(enable = "avx512f")]
#[inline]
fn compress_lanes_avx512(base: u32, bits: u16) -> [u32; LANES] {
    use std::arch::x86_64::{
        _mm512_add_epi32, _mm512_maskz_compress_epi32, _mm512_set1_epi32, _mm512_set_epi32,
        _mm512_slli_epi32,
    };
    let iota = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    let neurons = _mm512_add_epi32(iota, _mm512_set1_epi32(base as i32));
    let lanes = _mm512_slli_epi32::<ROW_SHIFT>(neurons);
    let packed: wide::i32x16 = _mm512_maskz_compress_epi32(bits, lanes).into();
    bytemuck::cast(packed)
}

/// The portable form of [`push_fired`]: a table of each byte's set bits,
/// 8 candidates written per byte, the count advanced by its popcount.
#[inline(always)]
pub fn push_fired_portable(base: u32, bits: u32, spikes: &mut [u32], count: usize) -> usize {
    let mut count = count;
    for (half, byte) in [bits & 0xff, (bits >> 8) & 0xff].into_iter().enumerate() {
        let lanes = &SET_BITS[byte as usize];
        let offset = base + 8 * half as u32;
        let dst: &mut [u32; 8] = (&mut spikes[count..count + 8]).try_into().expect("8 lanes");
        for k in 0..8 {
            dst[k] = (offset + lanes[k] as u32) << ROW_SHIFT;
        }
        count += byte.count_ones() as usize;
    }
    count
}

/// One Leaky step for 16 neurons: returns the new membrane (not yet reset)
/// and the bitmask of the lanes that fire.
#[inline(always)]
pub fn lif_one(
    mem: f32x16,
    cur: f32x16,
    beta: f32x16,
    threshold: f32x16,
    reset: ResetMechanism,
) -> (f32x16, u32) {
    let fired_before = mem.simd_gt(threshold);
    let next = match reset {
        ResetMechanism::Subtract => (beta * mem + cur) - (fired_before & threshold),
        ResetMechanism::Zero => beta * fired_before.select(f32x16::ZERO, mem) + cur,
        ResetMechanism::None => beta * mem + cur,
    };
    (next, next.simd_gt(threshold).to_bitmask())
}

/// One Leaky step for a layer, vectorised across neurons. Writes the indices
/// of the neurons that fire, ascending, to the front of `spikes` (which holds
/// at least `mem.len() * LANES + SPIKES_SLACK` entries) and returns how many
/// there are.
pub fn lif_step(
    mem: &mut [f32x16],
    cur: &[f32x16],
    beta: &[f32x16],
    threshold: &[f32x16],
    reset: ResetMechanism,
    spikes: &mut [u32],
) -> usize {
    debug_assert!(spikes.len() >= mem.len() * LANES + SPIKES_SLACK);
    let mut fired_count = 0;
    for i in 0..mem.len() {
        let (next, bits) = lif_one(mem[i], cur[i], beta[i], threshold[i], reset);
        mem[i] = next;
        fired_count = push_fired((i * LANES) as u32, bits, spikes, fired_count);
    }
    fired_count
}
