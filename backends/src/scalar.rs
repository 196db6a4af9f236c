//! The scalar reference kernel: written straight from snnTorch's equations,
//! one sample, one step, one neuron at a time. It is the oracle every other
//! kernel is tested against, so clarity wins over speed here.
//!
//! Per sample and layer `l` (1-based), with direct input encoding:
//!
//! ```text
//! I_1[t]  = W_1 · x + b_1                          (the same at every step)
//! I_l[t]  = W_l · (g_{l-1} · s_{l-1}[t]) + b_l      (l > 1)
//! r       = mem[t-1] > thr                         (reset from the previous membrane)
//! subtract: mem[t] = beta·mem[t-1] + I[t] − r·thr
//! zero:     mem[t] = beta·(1 − r)·mem[t-1] + I[t]
//! none:     mem[t] = beta·mem[t-1] + I[t]
//! s[t]    = mem[t] > thr                           (reported mem is not yet reset)
//! ```
//!
//! Dot products accumulate with a fused multiply-add in ascending input
//! order from zero, then add the bias. The SIMD kernel keeps that order, so
//! the two agree bit for bit.
//!
//! `unsafe` is allowed in this module for one reason: the dot products are
//! compiled a second time with FMA enabled, and called only after the CPU
//! was checked to have it (`fma_dispatched!`), so that a portable build
//! does not pay for a C-library `fmaf` call per multiply-add.

#![allow(unsafe_code)]

use crate::trace::TraceSink;
use cx_model::{LifLayer, Readout, ResetMechanism, SnnModel};

/// Scratch memory for [`forward`]: one current, membrane and spike vector
/// per layer. Sized once per model.
#[derive(Clone, Debug)]
pub struct ScalarWorkspace {
    current: Vec<Vec<f32>>,
    mem: Vec<Vec<f32>>,
    spk: Vec<Vec<bool>>,
    spike_idx: Vec<u32>,
}

impl ScalarWorkspace {
    /// A workspace for `model`.
    pub fn new(model: &SnnModel) -> Self {
        let widths: Vec<usize> = model.layers().iter().map(|l| l.outputs).collect();
        let widest = widths.iter().copied().max().unwrap_or(0);
        Self {
            current: widths.iter().map(|&n| vec![0.0; n]).collect(),
            mem: widths.iter().map(|&n| vec![0.0; n]).collect(),
            spk: widths.iter().map(|&n| vec![false; n]).collect(),
            spike_idx: Vec::with_capacity(widest),
        }
    }
}

/// Defines `pub fn $name`, which runs `$body` (the reference loop, always
/// inlined) compiled with FMA where the CPU has it and without elsewhere.
/// `f32::mul_add` is exactly rounded either way (an instruction, or the C
/// library's `fmaf`), so the result is the same; only the speed differs.
macro_rules! fma_dispatched {
    ($(#[$doc:meta])* pub fn $name:ident => $body:ident($($arg:ident: $ty:ty),*)) => {
        $(#[$doc])*
        pub fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            if std::is_x86_feature_detected!("fma") {
                #[target_feature(enable = "fma")]
                fn with_fma($($arg: $ty),*) {
                    $body($($arg),*)
                }
                // SAFETY: the CPU has FMA (checked just above), all that
                // `with_fma` is compiled to use.
                return unsafe { with_fma($($arg),*) };
            }
            $body($($arg),*)
        }
    };
}

fma_dispatched! {
    /// `W · input + b`, accumulating `fma(input[i], w[o][i], acc)` in ascending `i`.
    /// Zero inputs are skipped, which changes nothing (`fma(0, w, acc) == acc`)
    /// and makes sparse feature rows cheap.
    pub fn linear => linear_ref(layer: &LifLayer, input: &[f32], current: &mut [f32])
}

#[inline(always)]
fn linear_ref(layer: &LifLayer, input: &[f32], current: &mut [f32]) {
    for (o, cur) in current.iter_mut().enumerate() {
        let mut acc = 0.0f32;
        for (&w, &v) in layer.weight_row(o).iter().zip(input) {
            if v != 0.0 {
                acc = v.mul_add(w, acc);
            }
        }
        *cur = acc + layer.bias[o];
    }
}

fma_dispatched! {
    /// [`linear`] for a row given as its non-zero entries `(index, value)`, in
    /// ascending index order: the same operations in the same order, so the
    /// result is identical, at a cost that follows the non-zeros instead of the
    /// width. The trainer uses it for one-hot feature rows.
    pub fn linear_nonzero => linear_nonzero_ref(
        layer: &LifLayer,
        nonzero: &[(u32, f32)],
        current: &mut [f32]
    )
}

#[inline(always)]
fn linear_nonzero_ref(layer: &LifLayer, nonzero: &[(u32, f32)], current: &mut [f32]) {
    for (o, cur) in current.iter_mut().enumerate() {
        let row = layer.weight_row(o);
        let mut acc = 0.0f32;
        for &(i, v) in nonzero {
            acc = v.mul_add(row[i as usize], acc);
        }
        *cur = acc + layer.bias[o];
    }
}

fma_dispatched! {
    /// [`linear_nonzero`] over a row given as two parallel slices (columns
    /// strictly ascending), as a [`SparseRows`](crate::sparse::SparseRows) row holds it.
    pub fn linear_sparse => linear_sparse_ref(
        layer: &LifLayer,
        columns: &[u32],
        values: &[f32],
        current: &mut [f32]
    )
}

#[inline(always)]
fn linear_sparse_ref(layer: &LifLayer, columns: &[u32], values: &[f32], current: &mut [f32]) {
    for (o, cur) in current.iter_mut().enumerate() {
        let row = layer.weight_row(o);
        let mut acc = 0.0f32;
        for (&i, &v) in columns.iter().zip(values) {
            acc = v.mul_add(row[i as usize], acc);
        }
        *cur = acc + layer.bias[o];
    }
}

fma_dispatched! {
    /// Like [`linear`], for an input of spikes each worth `graded` when set.
    pub fn linear_spikes => linear_spikes_ref(
        layer: &LifLayer,
        spikes: &[bool],
        graded: f32,
        current: &mut [f32]
    )
}

#[inline(always)]
fn linear_spikes_ref(layer: &LifLayer, spikes: &[bool], graded: f32, current: &mut [f32]) {
    for (o, cur) in current.iter_mut().enumerate() {
        let mut acc = 0.0f32;
        for (&w, &s) in layer.weight_row(o).iter().zip(spikes) {
            let v = if s { graded } else { 0.0 };
            acc = v.mul_add(w, acc);
        }
        *cur = acc + layer.bias[o];
    }
}

/// One Leaky step for every neuron of a layer.
pub fn lif_step(
    mem: &mut [f32],
    current: &[f32],
    beta: &[f32],
    threshold: &[f32],
    reset: ResetMechanism,
    spk: &mut [bool],
) {
    for n in 0..mem.len() {
        let fired_before = mem[n] > threshold[n];
        mem[n] = match reset {
            ResetMechanism::Subtract => {
                let r = if fired_before { threshold[n] } else { 0.0 };
                beta[n] * mem[n] + current[n] - r
            }
            ResetMechanism::Zero => {
                let kept = if fired_before { 0.0 } else { mem[n] };
                beta[n] * kept + current[n]
            }
            ResetMechanism::None => beta[n] * mem[n] + current[n],
        };
        spk[n] = mem[n] > threshold[n];
    }
}

/// Runs `batch` samples of `x` (`[batch][inputs]` row-major) through the
/// model and fills `out`'s spike counts and final membranes (not the
/// probabilities: see [`Readout::calibrate`]). Shapes are the caller's
/// responsibility; [`crate::CoLaNetProvider::infer`] checks them.
pub fn forward<S: TraceSink>(
    model: &SnnModel,
    x: &[f32],
    batch: usize,
    ws: &mut ScalarWorkspace,
    out: &mut Readout,
    trace: &mut S,
) {
    let first = &model.layers()[0];
    let inputs = model.inputs();
    run(model, batch, ws, out, trace, |b, current| {
        linear(first, &x[b * inputs..(b + 1) * inputs], current);
    });
}

/// [`forward`] for a sparse batch (checked by the caller): the same
/// operations on the non-zeros, so the same result as the scattered rows.
pub fn forward_sparse<S: TraceSink>(
    model: &SnnModel,
    rows: &crate::sparse::SparseRows<'_>,
    ws: &mut ScalarWorkspace,
    out: &mut Readout,
    trace: &mut S,
) {
    let first = &model.layers()[0];
    run(model, rows.batch(), ws, out, trace, |b, current| {
        let (columns, values) = rows.row(b);
        linear_sparse(first, columns, values, current);
    });
}

/// Every sample through every step and layer; `first_current(b, current)`
/// writes sample `b`'s layer-1 input current.
fn run<S: TraceSink>(
    model: &SnnModel,
    batch: usize,
    ws: &mut ScalarWorkspace,
    out: &mut Readout,
    trace: &mut S,
    mut first_current: impl FnMut(usize, &mut [f32]),
) {
    let layers = model.layers();
    let last = layers.len() - 1;
    let outputs = model.outputs();
    for b in 0..batch {
        first_current(b, &mut ws.current[0]);
        ws.mem.iter_mut().for_each(|m| m.fill(0.0));
        let counts = &mut out.spike_count[b * outputs..(b + 1) * outputs];
        counts.fill(0);
        for t in 0..model.steps() as usize {
            for (l, layer) in layers.iter().enumerate() {
                if l > 0 {
                    let graded = layers[l - 1].graded_spikes_factor;
                    linear_spikes(layer, &ws.spk[l - 1], graded, &mut ws.current[l]);
                }
                lif_step(
                    &mut ws.mem[l],
                    &ws.current[l],
                    &layer.beta,
                    &layer.threshold,
                    layer.reset,
                    &mut ws.spk[l],
                );
                ws.spike_idx.clear();
                ws.spike_idx
                    .extend((0..layer.outputs as u32).filter(|&n| ws.spk[l][n as usize]));
                trace.on_step(b, l, t, 0, &ws.mem[l], ws.spike_idx.iter().copied());
            }
            for (count, &s) in counts.iter_mut().zip(&ws.spk[last]) {
                *count += s as u32;
            }
        }
        out.mem_last[b * outputs..(b + 1) * outputs].copy_from_slice(&ws.mem[last]);
    }
    out.set_batch(batch);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_nonzero_equals_linear_on_the_dense_row() {
        let inputs = 37;
        let weight: Vec<f32> = (0..5 * inputs)
            .map(|i| ((i * 7919) % 101) as f32 / 50.0 - 1.0)
            .collect();
        let layer = LifLayer::new(
            inputs,
            5,
            weight,
            vec![0.25; 5],
            0.9,
            1.0,
            ResetMechanism::Subtract,
        );
        let x: Vec<f32> = (0..inputs)
            .map(|i| if i % 4 == 0 { (i as f32).sin() } else { 0.0 })
            .collect();
        let nonzero: Vec<(u32, f32)> = x
            .iter()
            .enumerate()
            .filter(|(_, v)| **v != 0.0)
            .map(|(i, &v)| (i as u32, v))
            .collect();
        let (mut dense, mut sparse) = (vec![0.0; 5], vec![0.0; 5]);
        linear(&layer, &x, &mut dense);
        linear_nonzero(&layer, &nonzero, &mut sparse);
        assert_eq!(dense, sparse);
    }
}
