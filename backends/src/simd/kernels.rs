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

use cx_components::ResetMechanism;
use wide::f32x16;

/// Lanes per vector.
pub const LANES: usize = 16;

/// Column tile width, in vectors, of the register-blocked loops: 4 vectors
/// (64 neurons) times 4 batch rows keeps 16 accumulators in registers.
const TILE_VECTORS: usize = 4;
/// Batch rows the input projection computes together, sharing each weight load.
const TILE_ROWS: usize = 4;

/// Vectors needed for `width` lanes.
pub fn vectors_for(width: usize) -> usize {
    width.div_ceil(LANES)
}

/// Input projection over a batch: `cur[b] = W · x[b] + bias` for every row
/// `b` of `x` (`[batch][inputs]` row-major). `wt` is the transposed weight,
/// `[inputs][nv]` vectors; `cur` is `[batch][nv]`.
///
/// Blocked: 4 rows share each weight load, 4 vectors of neurons at a time.
/// A column `d` that is zero in all rows of a block is skipped, which is
/// exact (`fma(0, w, acc) == acc`) and pays off on one-hot features.
pub fn project(x: &[f32], inputs: usize, wt: &[f32x16], bias: &[f32x16], cur: &mut [f32x16]) {
    let nv = bias.len();
    let batch = x.len().checked_div(inputs).unwrap_or(0);
    debug_assert_eq!(wt.len(), inputs * nv);
    debug_assert!(cur.len() >= batch * nv);
    let mut b = 0;
    while b + TILE_ROWS <= batch {
        let rows = &x[b * inputs..(b + TILE_ROWS) * inputs];
        project_rows::<TILE_ROWS>(
            rows,
            inputs,
            wt,
            bias,
            &mut cur[b * nv..(b + TILE_ROWS) * nv],
        );
        b += TILE_ROWS;
    }
    while b < batch {
        let rows = &x[b * inputs..(b + 1) * inputs];
        project_rows::<1>(rows, inputs, wt, bias, &mut cur[b * nv..(b + 1) * nv]);
        b += 1;
    }
}

fn project_rows<const R: usize>(
    x: &[f32],
    inputs: usize,
    wt: &[f32x16],
    bias: &[f32x16],
    cur: &mut [f32x16],
) {
    let nv = bias.len();
    let mut v0 = 0;
    while v0 + TILE_VECTORS <= nv {
        project_tile::<R, TILE_VECTORS>(x, inputs, wt, v0, bias, cur);
        v0 += TILE_VECTORS;
    }
    while v0 < nv {
        project_tile::<R, 1>(x, inputs, wt, v0, bias, cur);
        v0 += 1;
    }
}

/// `R` rows by `V` vectors of the projection, accumulated in registers.
#[inline(always)]
fn project_tile<const R: usize, const V: usize>(
    x: &[f32],
    inputs: usize,
    wt: &[f32x16],
    v0: usize,
    bias: &[f32x16],
    cur: &mut [f32x16],
) {
    let nv = bias.len();
    let mut acc = [[f32x16::ZERO; V]; R];
    for d in 0..inputs {
        let xs: [f32; R] = std::array::from_fn(|r| x[r * inputs + d]);
        if xs.iter().all(|&v| v == 0.0) {
            continue;
        }
        let w: &[f32x16; V] = wt[d * nv + v0..d * nv + v0 + V]
            .try_into()
            .expect("tile lies inside the row");
        for r in 0..R {
            let xr = f32x16::splat(xs[r]);
            for v in 0..V {
                acc[r][v] = xr.mul_add(w[v], acc[r][v]);
            }
        }
    }
    for r in 0..R {
        for v in 0..V {
            cur[r * nv + v0 + v] = acc[r][v] + bias[v0 + v];
        }
    }
}

/// Event-driven input of one 16-neuron tile of a spiking layer for `N`
/// samples at once: `acc[k] = Σ_{h in spikes[k]} graded · tile[h]`,
/// touching only the weight rows of neurons that fired. Each list is
/// ascending; `tile` is the tile's column of the weight matrix, one vector
/// per input neuron (contiguous, so a 512-input tile is 32 KiB and stays in
/// L1 while a chunk of samples streams by).
///
/// The samples advance in lockstep: a single running sum is a chain of
/// dependent adds (4 cycles each), while `N` independent sums keep the load
/// ports busy. Each sample's own sum keeps the scalar reference's order.
#[inline(always)]
pub fn accumulate_tile<const N: usize>(
    spikes: [&[u32]; N],
    tile: &[f32x16],
    graded: f32,
) -> [f32x16; N] {
    let mut acc = [f32x16::ZERO; N];
    let common = spikes.iter().map(|s| s.len()).min().unwrap_or(0);
    if graded == 1.0 {
        // fma(1, w, acc) rounds exactly like acc + w.
        for i in 0..common {
            for k in 0..N {
                acc[k] += tile[spikes[k][i] as usize];
            }
        }
        for k in 0..N {
            for &h in &spikes[k][common..] {
                acc[k] += tile[h as usize];
            }
        }
    } else {
        let g = f32x16::splat(graded);
        for i in 0..common {
            for k in 0..N {
                acc[k] = g.mul_add(tile[spikes[k][i] as usize], acc[k]);
            }
        }
        for k in 0..N {
            for &h in &spikes[k][common..] {
                acc[k] = g.mul_add(tile[h as usize], acc[k]);
            }
        }
    }
    acc
}

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

/// Appends `base + lane` for every set bit of the 16-bit `bits` to
/// `spikes[count..]`, returns the new count. Branch-free: it writes 8
/// candidates per byte and advances by the byte's popcount, so the cost does
/// not depend on how many neurons fired (a loop over bits mispredicts its
/// exit once per vector, which cost more than the whole LIF update).
#[inline(always)]
pub fn push_fired(base: u32, bits: u32, spikes: &mut [u32], count: usize) -> usize {
    let mut count = count;
    for (half, byte) in [bits & 0xff, (bits >> 8) & 0xff].into_iter().enumerate() {
        let lanes = &SET_BITS[byte as usize];
        let offset = base + 8 * half as u32;
        let dst: &mut [u32; 8] = (&mut spikes[count..count + 8]).try_into().expect("8 lanes");
        for k in 0..8 {
            dst[k] = offset + lanes[k] as u32;
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
