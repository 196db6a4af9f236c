//! The SIMD kernel: one source, compiled per instruction-set tier
//! (AVX-512F, AVX2+FMA, portable) and chosen at run time ([`tier`]).
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

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
pub mod kernels;
mod portable;
mod run;
pub mod tier;

pub use portable::{push_fired_table, Portable};
pub use tier::{SimdTier, Tier, SIMD_TIER_ENV};

use crate::sparse::SparseRows;
use crate::trace::TraceSink;
use cx_model::{LifLayer, Readout, ResetMechanism, SnnModel};
use kernels::vectors_for;

/// Lanes per vector.
pub const LANES: usize = 16;

/// Sixteen `f32` lanes in memory, aligned for one 512-bit (or two 256-bit)
/// aligned loads: the unit every packed weight row, bias, membrane and
/// current is stored in.
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(64))]
pub struct Block(pub [f32; LANES]);

impl Block {
    /// Every lane 0.
    pub const ZERO: Block = Block([0.0; LANES]);
}

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
    pub wt: Vec<Block>,
    /// Bias, padded with zeros.
    pub bias: Vec<Block>,
    /// Beta, padded with zeros.
    pub beta: Vec<Block>,
    /// Threshold, padded with ones (so padding lanes never fire).
    pub threshold: Vec<Block>,
    /// Reset mechanism.
    pub reset: ResetMechanism,
    /// Value of one spike of this layer in the next layer's input.
    pub graded_spikes_factor: f32,
}

/// `values` padded with `fill` to `vectors` blocks.
pub fn pad(values: &[f32], vectors: usize, fill: f32) -> Vec<Block> {
    let mut flat = vec![fill; vectors * LANES];
    flat[..values.len()].copy_from_slice(values);
    to_blocks(&flat)
}

/// Copies a flat slice (a multiple of `LANES` long) into aligned blocks.
fn to_blocks(flat: &[f32]) -> Vec<Block> {
    flat.chunks_exact(LANES)
        .map(|c| Block(c.try_into().expect("exact chunk")))
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
            wt: to_blocks(&flat),
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
    pub fn tile(&self, t: usize) -> (usize, usize, &[Block]) {
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
    pub(super) slot_len: usize,
    pub(super) counts: Vec<usize>,
    pub(super) indices: Vec<u32>,
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
    cur0: Vec<Block>,
    /// Layer-1 membranes of the sample being run.
    mem0: Vec<Block>,
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
            cur0: vec![Block::ZERO; batch_max * packed.layers[0].vectors()],
            mem0: vec![Block::ZERO; packed.layers[0].vectors()],
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

/// Runs `$body` with `$t` bound to the token of `tier`, after checking
/// that this CPU supports it (a token is proof of that).
macro_rules! on_tier {
    ($tier:expr, |$t:ident| $body:expr) => {{
        let tier: SimdTier = $tier;
        assert!(tier.is_supported(), "this CPU cannot run the {tier} tier");
        match tier {
            #[cfg(target_arch = "x86_64")]
            SimdTier::Avx512 => {
                let $t = avx512::Avx512::detect().expect("checked just above");
                $body
            }
            #[cfg(target_arch = "x86_64")]
            SimdTier::Avx2Fma => {
                let $t = avx2::Avx2Fma::detect().expect("checked just above");
                $body
            }
            _ => {
                let $t = portable::Portable;
                $body
            }
        }
    }};
}

/// Runs `batch` samples of `x` (`[batch][inputs]` row-major) on `tier` and
/// fills `out`'s spike counts and final membranes. The caller checks shapes
/// (`batch <= ws.batch_max()`, `x.len() == batch * inputs`, `out` large
/// enough), as [`crate::CoLaNetProvider::infer`] does.
///
/// # Panics
/// When this CPU does not support `tier` ([`SimdTier::is_supported`]); a
/// [`crate::SimdBackend`] only holds a tier it checked.
pub fn forward<S: TraceSink>(
    tier: SimdTier,
    packed: &PackedModel,
    x: &[f32],
    batch: usize,
    ws: &mut SimdWorkspace,
    out: &mut Readout,
    trace: &mut S,
) {
    on_tier!(tier, |t| run::forward(t, packed, x, batch, ws, out, trace))
}

/// [`forward`] for a sparse batch (checked by the caller): the input
/// projection reads only each row's non-zeros
/// ([`kernels::project_sparse`]), in the same order as the dense path, so
/// the result is the same as for the scattered rows.
///
/// # Panics
/// When this CPU does not support `tier`.
pub fn forward_sparse<S: TraceSink>(
    tier: SimdTier,
    packed: &PackedModel,
    rows: &SparseRows<'_>,
    ws: &mut SimdWorkspace,
    out: &mut Readout,
    trace: &mut S,
) {
    on_tier!(tier, |t| run::forward_sparse(
        t, packed, rows, ws, out, trace
    ))
}

/// [`kernels::project`] on `tier`, for tests of the kernel alone.
///
/// # Panics
/// When this CPU does not support `tier`.
pub fn project(
    tier: SimdTier,
    layer: &PackedLayer,
    x: &[f32],
    cur: &mut [Block],
    cols: &mut [u32],
) {
    on_tier!(tier, |t| run::Passes::project(t, layer, x, cur, cols))
}

/// [`kernels::lif_step`] on `tier`, for tests of the kernel alone.
///
/// # Panics
/// When this CPU does not support `tier`.
pub fn lif_step(
    tier: SimdTier,
    mem: &mut [Block],
    cur: &[Block],
    beta: &[Block],
    threshold: &[Block],
    reset: ResetMechanism,
    spikes: &mut [u32],
) -> usize {
    on_tier!(tier, |t| run::Passes::lif_step(
        t, mem, cur, beta, threshold, reset, spikes
    ))
}

/// [`Tier::push_fired`] on `tier`, for tests of the kernel alone.
///
/// # Panics
/// When this CPU does not support `tier`.
pub fn push_fired(tier: SimdTier, base: u32, bits: u32, spikes: &mut [u32], count: usize) -> usize {
    on_tier!(tier, |t| run::Passes::push_fired_alone(
        t, base, bits, spikes, count
    ))
}
