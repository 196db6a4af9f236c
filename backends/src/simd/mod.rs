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
use cx_model::{LifLayer, Readout, ResetMechanism, SnnModel};
use kernels::{vectors_for, LANES};
use wide::f32x16;

/// One layer, transposed and padded for the kernels.
///
/// The weights are stored in column tiles: tile `t` covers the neuron
/// vectors `t·W .. t·W + w` (`W` = [`PackedLayer::tile_vectors`], `w` = `W`
/// except for a narrower last tile) and holds, for each input `d` in turn,
/// those `w` vectors of weights from `d`, then one row of zeros (input
/// [`PackedLayer::inputs`], the sentinel that pads spike lists). A tile is
/// therefore one contiguous block of `(inputs + 1) · w` vectors that a
/// kernel can keep in L1 while it streams a batch past it: 32 KiB for 512
/// inputs and `w = 1`.
#[derive(Clone, Debug)]
pub struct PackedLayer {
    /// Width of the input.
    pub inputs: usize,
    /// Neurons (unpadded).
    pub outputs: usize,
    /// Vectors per column tile.
    pub tile_vectors: usize,
    /// `W^T` in column tiles, padded with zero weights.
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
    /// Transposes and pads `layer` into column tiles of `tile_vectors` vectors.
    pub fn pack(layer: &LifLayer, tile_vectors: usize) -> Self {
        assert!(tile_vectors > 0, "a tile holds at least one vector");
        let nv = vectors_for(layer.outputs);
        let rows = layer.inputs + 1;
        let mut flat = vec![0.0f32; rows * nv * LANES];
        for o in 0..layer.outputs {
            let (v, lane) = (o / LANES, o % LANES);
            let first = v - v % tile_vectors;
            let width = tile_vectors.min(nv - first);
            for (d, &w) in layer.weight_row(o).iter().enumerate() {
                let vector = first * rows + d * width + (v - first);
                flat[vector * LANES + lane] = w;
            }
        }
        Self {
            inputs: layer.inputs,
            outputs: layer.outputs,
            tile_vectors,
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

    /// Number of column tiles.
    pub fn tiles(&self) -> usize {
        self.vectors().div_ceil(self.tile_vectors)
    }

    /// Column tile `t`: its first vector, its width in vectors, and its
    /// weights (`[inputs + 1][width]` vectors, the last row zero).
    pub fn tile(&self, t: usize) -> (usize, usize, &[f32x16]) {
        let first = t * self.tile_vectors;
        let width = self.tile_vectors.min(self.vectors() - first);
        let rows = self.inputs + 1;
        let start = first * rows;
        (first, width, &self.wt[start..start + width * rows])
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
    /// Repacks `model`: the first layer in tiles of
    /// [`kernels::PROJECT_TILE_VECTORS`], the spiking layers in tiles of one
    /// vector (the unit of their event-driven sums).
    pub fn pack(model: &SnnModel) -> Self {
        let tile_vectors = |l: usize| {
            if l == 0 {
                kernels::PROJECT_TILE_VECTORS
            } else {
                1
            }
        };
        Self {
            layers: model
                .layers()
                .iter()
                .enumerate()
                .map(|(l, layer)| PackedLayer::pack(layer, tile_vectors(l)))
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
/// `[sample][step]` lists of the firing neurons, ascending, as row offsets
/// (`neuron << kernels::ROW_SHIFT`), each in a fixed slot.
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

    /// The first `len` entries of a slot: its spikes, then whatever padding
    /// [`SpikeLog::pad_group`] wrote.
    fn slot_padded(&self, slot: usize, len: usize) -> &[u32] {
        let start = slot * self.slot_len;
        &self.indices[start..start + len]
    }

    /// For each step, pads the slots of samples `s..s + n` with `sentinel`
    /// up to the longest of them, so they can be summed in lockstep; returns
    /// nothing, the padded length per step is [`SpikeLog::group_len`].
    fn pad_group(&mut self, s: usize, n: usize, steps: usize, sentinel: u32) {
        for t in 0..steps {
            let longest = self.group_len(s, n, steps, t);
            for k in 0..n {
                let slot = (s + k) * steps + t;
                let start = slot * self.slot_len;
                self.indices[start + self.counts[slot]..start + longest].fill(sentinel);
            }
        }
    }

    /// The longest slot of samples `s..s + n` at step `t`.
    fn group_len(&self, s: usize, n: usize, steps: usize, t: usize) -> usize {
        (0..n)
            .map(|k| self.counts[(s + k) * steps + t])
            .max()
            .unwrap_or(0)
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
    /// Non-zero input columns of each block of rows (see [`kernels::project`]).
    cols: Vec<u32>,
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
            cols: vec![0; kernels::column_lists_len(batch_max, packed.layers[0].inputs)],
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
        first,
        &x[..batch * first.inputs],
        &mut ws.cur0,
        &mut ws.cols,
    );
    run_chunks(packed, batch, ws, out, trace);
}

/// [`forward`] for a sparse batch (checked by the caller): the input
/// projection reads only each row's non-zeros
/// ([`kernels::project_sparse`]), in the same order as the dense path, so
/// the result is the same as for the scattered rows.
pub fn forward_sparse<S: TraceSink>(
    packed: &PackedModel,
    rows: &crate::sparse::SparseRows<'_>,
    ws: &mut SimdWorkspace,
    out: &mut Readout,
    trace: &mut S,
) {
    let batch = rows.batch();
    kernels::project_sparse(&packed.layers[0], rows, &mut ws.cur0);
    run_chunks(packed, batch, ws, out, trace);
}

/// Every layer after the projection, chunk by chunk of samples.
fn run_chunks<S: TraceSink>(
    packed: &PackedModel,
    batch: usize,
    ws: &mut SimdWorkspace,
    out: &mut Readout,
    trace: &mut S,
) {
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
#[inline(never)]
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
            let fired_neurons = spikes[..fired].iter().map(|&o| o >> kernels::ROW_SHIFT);
            trace.on_step(start + s, 0, t, 0, &mem[..layer.outputs], fired_neurons);
        }
        if is_last {
            let row = (start + s) * layer.outputs;
            let mem: &[f32] = bytemuck::cast_slice(&ws.mem0);
            out.mem_last[row..row + layer.outputs].copy_from_slice(&mem[..layer.outputs]);
            let counts = &mut out.spike_count[row..row + layer.outputs];
            counts.fill(0);
            for t in 0..steps {
                for &offset in log.slot(s * steps + t) {
                    counts[(offset >> kernels::ROW_SHIFT) as usize] += 1;
                }
            }
        }
    }
}

/// Samples whose tile sums run in lockstep (see [`kernels::accumulate_tile`]).
const LOCKSTEP: usize = 8;
/// Tiles of one sample whose sums run in lockstep, for samples left over.
const TILE_LOCKSTEP: usize = 4;

/// Spiking layer `l` for samples `start..start + len`, tile by tile, reading
/// `ws.logs[l - 1]` and writing `ws.logs[l]`; the last layer also fills `out`.
#[inline(never)]
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
    let (input_log, log) = (&mut before[l - 1], &mut rest[0]);
    log.counts[..len * steps].fill(0);
    let sentinel = (packed.layers[l].inputs as u32) << kernels::ROW_SHIFT;
    let mut s = 0;
    while s + LOCKSTEP <= len {
        input_log.pad_group(s, LOCKSTEP, steps, sentinel);
        s += LOCKSTEP;
    }
    let input_log = &*input_log;
    let mut cx = TileCx {
        packed,
        l,
        input_log,
        log,
        start,
        out,
        trace,
    };
    let vectors = packed.layers[l].vectors();
    let whole = len / LOCKSTEP * LOCKSTEP;
    for v in 0..vectors {
        for s in (0..whole).step_by(LOCKSTEP) {
            cx.run::<LOCKSTEP>(std::array::from_fn(|k| (s + k, v)));
        }
    }
    // Samples left over run on their own, with a few tiles in lockstep
    // instead (one list, independent sums per tile).
    for s in whole..len {
        let mut v = 0;
        while v + TILE_LOCKSTEP <= vectors {
            cx.run::<TILE_LOCKSTEP>(std::array::from_fn(|k| (s, v + k)));
            v += TILE_LOCKSTEP;
        }
        for v in v..vectors {
            cx.run::<1>([(s, v)]);
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
    /// Every step of the layer for `N` (chunk sample, tile) pairs at once:
    /// either `N` samples of one tile or `N` consecutive tiles of one sample.
    #[inline(always)]
    fn run<const N: usize>(&mut self, pairs: [(usize, usize); N]) {
        let layer = &self.packed.layers[self.l];
        let graded = self.packed.layers[self.l - 1].graded_spikes_factor;
        let steps = self.packed.steps as usize;
        let tiles: [&[f32x16]; N] = std::array::from_fn(|k| layer.tile(pairs[k].1).2);
        let mut mem = [f32x16::ZERO; N];
        let mut fired_steps = [f32x16::ZERO; N];
        for t in 0..steps {
            // Padded to a common length by `pad_group` where the samples differ.
            let longest = pairs
                .iter()
                .map(|&(s, _)| self.input_log.counts[s * steps + t])
                .max()
                .unwrap_or(0);
            let lists: [&[u32]; N] = std::array::from_fn(|k| {
                self.input_log.slot_padded(pairs[k].0 * steps + t, longest)
            });
            let sums = kernels::accumulate_tile(lists, tiles, graded);
            for (k, &(s, v)) in pairs.iter().enumerate() {
                let (bias, beta, threshold) = (layer.bias[v], layer.beta[v], layer.threshold[v]);
                let (next, bits) =
                    kernels::lif_one(mem[k], sums[k] + bias, beta, threshold, layer.reset);
                mem[k] = next;
                fired_steps[k] += next.simd_gt(threshold) & f32x16::ONE;
                let slot = s * steps + t;
                let count = self.log.counts[slot];
                let spikes =
                    &mut self.log.indices[slot * self.log.slot_len..(slot + 1) * self.log.slot_len];
                let fired = kernels::push_fired((v * LANES) as u32, bits, spikes, count);
                self.log.counts[slot] = fired;
                let lanes = (layer.outputs - v * LANES).min(LANES);
                let mem_lanes = &next.as_array()[..lanes];
                self.trace.on_step(
                    self.start + s,
                    self.l,
                    t,
                    v * LANES,
                    mem_lanes,
                    spikes[count..fired]
                        .iter()
                        .map(|&o| o >> kernels::ROW_SHIFT),
                );
            }
        }
        if self.l + 1 == self.packed.layers.len() {
            for (k, &(s, v)) in pairs.iter().enumerate() {
                let lanes = (layer.outputs - v * LANES).min(LANES);
                let row = (self.start + s) * layer.outputs + v * LANES;
                self.out.mem_last[row..row + lanes].copy_from_slice(&mem[k].as_array()[..lanes]);
                let counts = &mut self.out.spike_count[row..row + lanes];
                for (c, &f) in counts.iter_mut().zip(fired_steps[k].as_array()) {
                    *c = f as u32;
                }
            }
        }
    }
}
