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

/// How a packed layer's weights are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightLayout {
    /// `[inputs][vectors]`: row `i` holds input `i`'s weights into every
    /// neuron. The first layer's blocked projection reads rows.
    InputMajor,
    /// `[vectors][inputs]`: tile `v` holds, for each input, the weights into
    /// neurons `16v..16v+16`, contiguously. Spiking layers read one tile at a
    /// time, so it stays in L1 while a whole chunk of samples streams by.
    TileMajor,
}

/// One layer, transposed and padded for the kernels.
#[derive(Clone, Debug)]
pub struct PackedLayer {
    /// Width of the input.
    pub inputs: usize,
    /// Neurons (unpadded).
    pub outputs: usize,
    /// Layout of `wt`.
    pub layout: WeightLayout,
    /// `W^T`, padded with zero weights, in `layout` order.
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
    to_vectors(&flat)
}

/// Copies a flat slice (a multiple of `LANES` long) into aligned vectors.
fn to_vectors(flat: &[f32]) -> Vec<f32x16> {
    flat.chunks_exact(LANES)
        .map(|c| f32x16::from(<[f32; LANES]>::try_from(c).expect("exact chunk")))
        .collect()
}

impl PackedLayer {
    /// Transposes and pads `layer` into `layout`.
    pub fn pack(layer: &LifLayer, layout: WeightLayout) -> Self {
        let nv = vectors_for(layer.outputs);
        let mut flat = vec![0.0f32; layer.inputs * nv * LANES];
        for o in 0..layer.outputs {
            let (tile, lane) = (o / LANES, o % LANES);
            for (i, &w) in layer.weight_row(o).iter().enumerate() {
                let vector = match layout {
                    WeightLayout::InputMajor => i * nv + tile,
                    WeightLayout::TileMajor => tile * layer.inputs + i,
                };
                flat[vector * LANES + lane] = w;
            }
        }
        Self {
            inputs: layer.inputs,
            outputs: layer.outputs,
            layout,
            wt: to_vectors(&flat),
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

    /// The weights into neurons `16v..16v+16`, one vector per input
    /// (a [`WeightLayout::TileMajor`] layer only).
    pub fn tile(&self, v: usize) -> &[f32x16] {
        debug_assert_eq!(self.layout, WeightLayout::TileMajor);
        &self.wt[v * self.inputs..(v + 1) * self.inputs]
    }
}

/// A model repacked for the SIMD kernels: the first layer input-major, the
/// spiking layers tile-major.
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
        let layout = |l: usize| {
            if l == 0 {
                WeightLayout::InputMajor
            } else {
                WeightLayout::TileMajor
            }
        };
        Self {
            layers: model
                .layers()
                .iter()
                .enumerate()
                .map(|(l, layer)| PackedLayer::pack(layer, layout(l)))
                .collect(),
            steps: model.steps(),
        }
    }
}

/// Budget for the spike logs of one chunk, in `u32` entries (4 MiB).
const SPIKE_LOG_ENTRIES_MAX: usize = 1 << 20;
/// Most samples in one chunk; enough to amortise loading a weight tile into L1.
const CHUNK_SAMPLES_MAX: usize = 16;

/// The spikes of one layer for every sample of a chunk and every step:
/// `[sample][step]` lists of ascending neuron indices, each in a fixed slot.
#[derive(Clone, Debug)]
struct SpikeLog {
    slot_len: usize,
    counts: Vec<usize>,
    indices: Vec<u32>,
}

impl SpikeLog {
    fn new(chunk: usize, steps: usize, vectors: usize) -> Self {
        let slot_len = vectors * LANES + kernels::SPIKES_SLACK;
        Self {
            slot_len,
            counts: vec![0; chunk * steps],
            indices: vec![0; chunk * steps * slot_len],
        }
    }

    fn slot(&self, slot: usize) -> &[u32] {
        let start = slot * self.slot_len;
        &self.indices[start..start + self.counts[slot]]
    }
}

/// Scratch memory for [`forward`], sized at creation for a model and a
/// maximum batch; a forward pass allocates nothing.
#[derive(Clone, Debug)]
pub struct SimdWorkspace {
    batch_max: usize,
    chunk: usize,
    /// Layer-1 currents, `[batch_max][vectors]`.
    cur0: Vec<f32x16>,
    /// Layer-1 membranes of the sample being run.
    mem0: Vec<f32x16>,
    logs: Vec<SpikeLog>,
}

impl SimdWorkspace {
    /// A workspace for up to `batch_max` samples of `packed`.
    pub fn new(packed: &PackedModel, batch_max: usize) -> Self {
        let steps = packed.steps as usize;
        let entries_per_sample: usize = packed
            .layers
            .iter()
            .map(|l| steps * (l.vectors() * LANES + kernels::SPIKES_SLACK))
            .sum();
        let chunk = (SPIKE_LOG_ENTRIES_MAX / entries_per_sample)
            .clamp(1, CHUNK_SAMPLES_MAX)
            .min(batch_max.max(1));
        Self {
            batch_max,
            chunk,
            cur0: vec![f32x16::ZERO; batch_max * packed.layers[0].vectors()],
            mem0: vec![f32x16::ZERO; packed.layers[0].vectors()],
            logs: packed
                .layers
                .iter()
                .map(|l| SpikeLog::new(chunk, steps, l.vectors()))
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
///
/// Order of work: the blocked projection for the whole batch; then, per
/// chunk of samples, layer 1 for every step (logging its spikes), then each
/// spiking layer one 16-neuron tile at a time across the chunk. A neuron's
/// trajectory depends only on its own inputs, so tiles are independent.
pub fn forward<S: TraceSink>(
    packed: &PackedModel,
    x: &[f32],
    batch: usize,
    ws: &mut SimdWorkspace,
    out: &mut Readout,
    trace: &mut S,
) {
    let first = &packed.layers[0];
    kernels::project(
        &x[..batch * first.inputs],
        first.inputs,
        &first.wt,
        &first.bias,
        &mut ws.cur0,
    );
    let mut start = 0;
    while start < batch {
        let len = ws.chunk.min(batch - start);
        first_layer(packed, ws, start, len, out, trace);
        for l in 1..packed.layers.len() {
            spiking_layer(packed, l, ws, start, len, out, trace);
        }
        start += len;
    }
    out.set_batch(batch);
}

/// Layer 1 for samples `start..start + len`, every step, into `ws.logs[0]`;
/// in a one-layer model it also fills `out`.
fn first_layer<S: TraceSink>(
    packed: &PackedModel,
    ws: &mut SimdWorkspace,
    start: usize,
    len: usize,
    out: &mut Readout,
    trace: &mut S,
) {
    let layer = &packed.layers[0];
    let is_last = packed.layers.len() == 1;
    let (nv, steps) = (layer.vectors(), packed.steps as usize);
    let log = &mut ws.logs[0];
    for s in 0..len {
        let cur = &ws.cur0[(start + s) * nv..(start + s + 1) * nv];
        ws.mem0.fill(f32x16::ZERO);
        for t in 0..steps {
            let slot = s * steps + t;
            let spikes = &mut log.indices[slot * log.slot_len..(slot + 1) * log.slot_len];
            let fired = kernels::lif_step(
                &mut ws.mem0,
                cur,
                &layer.beta,
                &layer.threshold,
                layer.reset,
                spikes,
            );
            log.counts[slot] = fired;
            let mem: &[f32] = bytemuck::cast_slice(&ws.mem0);
            trace.on_step(start + s, 0, t, 0, &mem[..layer.outputs], &spikes[..fired]);
        }
        if is_last {
            let row = (start + s) * layer.outputs;
            let mem: &[f32] = bytemuck::cast_slice(&ws.mem0);
            out.mem_last[row..row + layer.outputs].copy_from_slice(&mem[..layer.outputs]);
            let counts = &mut out.spike_count[row..row + layer.outputs];
            counts.fill(0);
            for t in 0..steps {
                for &n in log.slot(s * steps + t) {
                    counts[n as usize] += 1;
                }
            }
        }
    }
}

/// Samples whose tile sums run in lockstep (see [`kernels::accumulate_tile`]).
const LOCKSTEP: usize = 4;

/// Spiking layer `l` for samples `start..start + len`, tile by tile, reading
/// `ws.logs[l - 1]` and writing `ws.logs[l]`; the last layer also fills `out`.
fn spiking_layer<S: TraceSink>(
    packed: &PackedModel,
    l: usize,
    ws: &mut SimdWorkspace,
    start: usize,
    len: usize,
    out: &mut Readout,
    trace: &mut S,
) {
    let steps = packed.steps as usize;
    let (before, rest) = ws.logs.split_at_mut(l);
    let (input_log, log) = (&before[l - 1], &mut rest[0]);
    log.counts[..len * steps].fill(0);
    let mut cx = TileCx {
        packed,
        l,
        input_log,
        log,
        start,
        out,
        trace,
    };
    for v in 0..packed.layers[l].vectors() {
        let mut s = 0;
        while s + LOCKSTEP <= len {
            cx.run::<LOCKSTEP>(v, s);
            s += LOCKSTEP;
        }
        while s < len {
            cx.run::<1>(v, s);
            s += 1;
        }
    }
}

/// What running one tile of a spiking layer for a few samples needs.
struct TileCx<'a, S> {
    packed: &'a PackedModel,
    l: usize,
    input_log: &'a SpikeLog,
    log: &'a mut SpikeLog,
    start: usize,
    out: &'a mut Readout,
    trace: &'a mut S,
}

impl<S: TraceSink> TileCx<'_, S> {
    /// Tile `v` of the layer, every step, for chunk samples `s..s + N`.
    #[inline(always)]
    fn run<const N: usize>(&mut self, v: usize, s: usize) {
        let layer = &self.packed.layers[self.l];
        let graded = self.packed.layers[self.l - 1].graded_spikes_factor;
        let steps = self.packed.steps as usize;
        let tile = layer.tile(v);
        let (bias, beta, threshold) = (layer.bias[v], layer.beta[v], layer.threshold[v]);
        let lanes = (layer.outputs - v * LANES).min(LANES);
        let mut mem = [f32x16::ZERO; N];
        let mut fired_steps = [f32x16::ZERO; N];
        for t in 0..steps {
            let lists: [&[u32]; N] =
                std::array::from_fn(|k| self.input_log.slot((s + k) * steps + t));
            let sums = kernels::accumulate_tile(lists, tile, graded);
            for k in 0..N {
                let (next, bits) =
                    kernels::lif_one(mem[k], sums[k] + bias, beta, threshold, layer.reset);
                mem[k] = next;
                fired_steps[k] += next.simd_gt(threshold) & f32x16::ONE;
                let slot = (s + k) * steps + t;
                let count = self.log.counts[slot];
                let spikes =
                    &mut self.log.indices[slot * self.log.slot_len..(slot + 1) * self.log.slot_len];
                let fired = kernels::push_fired((v * LANES) as u32, bits, spikes, count);
                self.log.counts[slot] = fired;
                let sample = self.start + s + k;
                self.trace.on_step(
                    sample,
                    self.l,
                    t,
                    v * LANES,
                    &next.as_array()[..lanes],
                    &spikes[count..fired],
                );
            }
        }
        if self.l + 1 == self.packed.layers.len() {
            for k in 0..N {
                let row = (self.start + s + k) * layer.outputs + v * LANES;
                self.out.mem_last[row..row + lanes].copy_from_slice(&mem[k].as_array()[..lanes]);
                let counts = &mut self.out.spike_count[row..row + lanes];
                for (c, &f) in counts.iter_mut().zip(fired_steps[k].as_array()) {
                    *c = f as u32;
                }
            }
        }
    }
}
