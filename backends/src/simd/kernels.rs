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
    let batch = if inputs == 0 { 0 } else { x.len() / inputs };
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

/// Event-driven projection of a spiking layer: `cur = Σ_{h in spikes}
/// graded · wt[h] + bias`, touching only the weight rows of neurons that
/// fired. `spikes` is ascending; `wt` is `[inputs][nv]` vectors.
pub fn accumulate_spikes(
    spikes: &[u32],
    wt: &[f32x16],
    graded: f32,
    bias: &[f32x16],
    cur: &mut [f32x16],
) {
    let nv = bias.len();
    let mut v0 = 0;
    while v0 + TILE_VECTORS <= nv {
        accumulate_tile::<TILE_VECTORS>(spikes, wt, graded, v0, bias, cur);
        v0 += TILE_VECTORS;
    }
    while v0 < nv {
        accumulate_tile::<1>(spikes, wt, graded, v0, bias, cur);
        v0 += 1;
    }
}

#[inline(always)]
fn accumulate_tile<const V: usize>(
    spikes: &[u32],
    wt: &[f32x16],
    graded: f32,
    v0: usize,
    bias: &[f32x16],
    cur: &mut [f32x16],
) {
    let nv = bias.len();
    let mut acc = [f32x16::ZERO; V];
    let row = |h: u32| -> &[f32x16; V] {
        let start = h as usize * nv + v0;
        wt[start..start + V]
            .try_into()
            .expect("tile lies inside the row")
    };
    if graded == 1.0 {
        // fma(1, w, acc) rounds exactly like acc + w.
        for &h in spikes {
            let w = row(h);
            for v in 0..V {
                acc[v] += w[v];
            }
        }
    } else {
        let g = f32x16::splat(graded);
        for &h in spikes {
            let w = row(h);
            for v in 0..V {
                acc[v] = g.mul_add(w[v], acc[v]);
            }
        }
    }
    for v in 0..V {
        cur[v0 + v] = acc[v] + bias[v0 + v];
    }
}

/// One Leaky step for a layer, vectorised across neurons. Writes the indices
/// of the neurons that fire, ascending, to the front of `spikes` (which holds
/// at least `mem.len() * LANES` entries) and returns how many there are.
pub fn lif_step(
    mem: &mut [f32x16],
    cur: &[f32x16],
    beta: &[f32x16],
    threshold: &[f32x16],
    reset: ResetMechanism,
    spikes: &mut [u32],
) -> usize {
    debug_assert!(spikes.len() >= mem.len() * LANES);
    let mut fired_count = 0;
    for i in 0..mem.len() {
        let (m, th) = (mem[i], threshold[i]);
        let fired_before = m.simd_gt(th);
        let next = match reset {
            ResetMechanism::Subtract => (beta[i] * m + cur[i]) - (fired_before & th),
            ResetMechanism::Zero => beta[i] * fired_before.select(f32x16::ZERO, m) + cur[i],
            ResetMechanism::None => beta[i] * m + cur[i],
        };
        mem[i] = next;
        let mut bits = next.simd_gt(th).to_bitmask();
        while bits != 0 {
            spikes[fired_count] = (i * LANES) as u32 + bits.trailing_zeros();
            fired_count += 1;
            bits &= bits - 1;
        }
    }
    fired_count
}
