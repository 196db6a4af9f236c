//! The SIMD kernel, built on `wide::f32x16`.
//!
//! Layout: the model is repacked once into [`PackedModel`], with every
//! weight matrix transposed to `[inputs][outputs]` and each row padded to a
//! whole number of 16-lane vectors, so that both the blocked input
//! projection and the event-driven accumulation read contiguous, aligned
//! vectors. Activations are batch-major structure of arrays: the layer-1
//! currents of the whole batch are one `[batch][vectors]` block, computed
//! in one blocked matrix product; the time loop then runs per sample, with
//! that sample's membranes (a few KiB) hot in L1 and the spiking layers'
//! weights in L2.
//!
//! Layers after the first are event-driven: at each step only the weight
//! rows of the neurons that fired are summed, which at the usual 10-35%
//! firing rate is 3-10x less work than a dense product.

pub mod kernels;

use crate::trace::TraceSink;
use cx_components::{LifLayer, Readout, ResetMechanism, SnnModel};
use kernels::{vectors_for, LANES};
use wide::f32x16;

/// One layer, transposed and padded for the kernels.
#[derive(Clone, Debug)]
pub struct PackedLayer {
    /// Width of the input.
    pub inputs: usize,
    /// Neurons (unpadded).
    pub outputs: usize,
    /// `W^T`, `[inputs][vectors]`.
    pub wt: Vec<f32x16>,
    /// Bias, padded with zeros.
    pub bias: Vec<f32x16>,
    /// Beta, padded with zeros.
    pub beta: Vec<f32x16>,
    /// Threshold, padded with ones (so padding lanes never fire).
    pub threshold: Vec<f32x16>,
    /// Reset mechanism.
    pub reset: ResetMechanism,
    /// Value of one spike of this layer in the next layer's input.
    pub graded_spikes_factor: f32,
}

fn pad(values: &[f32], vectors: usize, fill: f32) -> Vec<f32x16> {
    let mut flat = vec![fill; vectors * LANES];
    flat[..values.len()].copy_from_slice(values);
    flat.chunks_exact(LANES)
        .map(|c| f32x16::from(<[f32; LANES]>::try_from(c).expect("exact chunk")))
        .collect()
}

impl PackedLayer {
    /// Transposes and pads `layer`.
    pub fn pack(layer: &LifLayer) -> Self {
        let nv = vectors_for(layer.outputs);
        let mut flat = vec![0.0f32; layer.inputs * nv * LANES];
        for o in 0..layer.outputs {
            for (i, &w) in layer.weight_row(o).iter().enumerate() {
                flat[i * nv * LANES + o] = w;
            }
        }
        Self {
            inputs: layer.inputs,
            outputs: layer.outputs,
            wt: bytemuck::cast_slice(&flat).to_vec(),
            bias: pad(&layer.bias, nv, 0.0),
            beta: pad(&layer.beta, nv, 0.0),
            threshold: pad(&layer.threshold, nv, 1.0),
            reset: layer.reset,
            graded_spikes_factor: layer.graded_spikes_factor,
        }
    }

    /// Vectors per row of this layer's activations.
    pub fn vectors(&self) -> usize {
        self.bias.len()
    }
}

/// A model repacked for the SIMD kernels.
#[derive(Clone, Debug)]
pub struct PackedModel {
    /// Layers, input first.
    pub layers: Vec<PackedLayer>,
    /// Time steps.
    pub steps: u32,
}

impl PackedModel {
    /// Repacks `model`.
    pub fn pack(model: &SnnModel) -> Self {
        Self {
            layers: model.layers().iter().map(PackedLayer::pack).collect(),
            steps: model.steps(),
        }
    }
}

/// Per-layer state of one sample during the time loop.
#[derive(Clone, Debug)]
struct LayerState {
    mem: Vec<f32x16>,
    cur: Vec<f32x16>,
    spikes: Vec<u32>,
    fired: usize,
}

/// Scratch memory for [`forward`], sized at creation for a model and a
/// maximum batch; a forward pass allocates nothing.
#[derive(Clone, Debug)]
pub struct SimdWorkspace {
    batch_max: usize,
    /// Layer-1 currents, `[batch_max][vectors]`.
    cur0: Vec<f32x16>,
    layers: Vec<LayerState>,
}

impl SimdWorkspace {
    /// A workspace for up to `batch_max` samples of `packed`.
    pub fn new(packed: &PackedModel, batch_max: usize) -> Self {
        Self {
            batch_max,
            cur0: vec![f32x16::ZERO; batch_max * packed.layers[0].vectors()],
            layers: packed
                .layers
                .iter()
                .map(|l| LayerState {
                    mem: vec![f32x16::ZERO; l.vectors()],
                    cur: vec![f32x16::ZERO; l.vectors()],
                    spikes: vec![0; l.vectors() * LANES],
                    fired: 0,
                })
                .collect(),
        }
    }

    /// Most samples one pass may hold.
    pub fn batch_max(&self) -> usize {
        self.batch_max
    }
}

/// Runs `batch` samples of `x` (`[batch][inputs]` row-major) and fills
/// `out`'s spike counts and final membranes. The caller checks shapes
/// (`batch <= ws.batch_max()`, `x.len() == batch * inputs`, `out` large
/// enough), as [`crate::CoLaNetProvider::infer`] does.
pub fn forward<S: TraceSink>(
    packed: &PackedModel,
    x: &[f32],
    batch: usize,
    ws: &mut SimdWorkspace,
    out: &mut Readout,
    trace: &mut S,
) {
    let first = &packed.layers[0];
    let nv0 = first.vectors();
    kernels::project(
        &x[..batch * first.inputs],
        first.inputs,
        &first.wt,
        &first.bias,
        &mut ws.cur0,
    );
    let last = packed.layers.len() - 1;
    let outputs = packed.layers[last].outputs;
    for b in 0..batch {
        let counts = &mut out.spike_count[b * outputs..(b + 1) * outputs];
        counts.fill(0);
        ws.layers.iter_mut().for_each(|s| s.mem.fill(f32x16::ZERO));
        for t in 0..packed.steps as usize {
            for (l, layer) in packed.layers.iter().enumerate() {
                let (before, rest) = ws.layers.split_at_mut(l);
                let state = &mut rest[0];
                let current: &[f32x16] = if l == 0 {
                    &ws.cur0[b * nv0..(b + 1) * nv0]
                } else {
                    let prev = &before[l - 1];
                    let graded = packed.layers[l - 1].graded_spikes_factor;
                    let spikes = &prev.spikes[..prev.fired];
                    kernels::accumulate_spikes(
                        spikes,
                        &layer.wt,
                        graded,
                        &layer.bias,
                        &mut state.cur,
                    );
                    &state.cur
                };
                state.fired = kernels::lif_step(
                    &mut state.mem,
                    current,
                    &layer.beta,
                    &layer.threshold,
                    layer.reset,
                    &mut state.spikes,
                );
                let mem: &[f32] = bytemuck::cast_slice(&state.mem);
                trace.on_step(b, l, t, &mem[..layer.outputs], &state.spikes[..state.fired]);
            }
            let out_state = &ws.layers[last];
            for &o in &out_state.spikes[..out_state.fired] {
                counts[o as usize] += 1;
            }
        }
        let mem: &[f32] = bytemuck::cast_slice(&ws.layers[last].mem);
        out.mem_last[b * outputs..(b + 1) * outputs].copy_from_slice(&mem[..outputs]);
    }
    out.set_batch(batch);
}
