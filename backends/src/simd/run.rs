//! The layers' time loops, generic over the instruction-set [`Tier`] and
//! always inlined into a tier's entry point: the blocked projection for
//! the whole batch, then per chunk of samples layer 1 for every step, then
//! each spiking layer one 16-neuron tile at a time across the chunk.

use super::kernels;
use super::tier::Tier;
use super::{Block, PackedModel, SimdWorkspace, SpikeLog, LANES};
use crate::trace::TraceSink;
use cx_model::Readout;

/// Runs `batch` samples of `x` (`[batch][inputs]` row-major) and fills
/// `out`'s spike counts and final membranes. The caller checks shapes
/// (`batch <= ws.batch_max()`, `x.len() == batch * inputs`, `out` large
/// enough), as [`crate::CoLaNetProvider::infer`] does.
///
/// Order of work: the blocked projection for the whole batch; then, per
/// chunk of samples, layer 1 for every step (logging its spikes), then each
/// spiking layer one 16-neuron tile at a time across the chunk. A neuron's
/// trajectory depends only on its own inputs, so tiles are independent.
#[inline(always)]
pub(super) fn forward<T: Tier, S: TraceSink>(
    t: T,
    packed: &PackedModel,
    x: &[f32],
    batch: usize,
    ws: &mut SimdWorkspace,
    out: &mut Readout,
    trace: &mut S,
) {
    let first = &packed.layers[0];
    kernels::project(
        t,
        first,
        &x[..batch * first.inputs],
        &mut ws.cur0,
        &mut ws.cols,
    );
    run_chunks(t, packed, batch, ws, out, trace);
}

/// [`forward`] for a sparse batch (checked by the caller): the input
/// projection reads only each row's non-zeros
/// ([`kernels::project_sparse`]), in the same order as the dense path, so
/// the result is the same as for the scattered rows.
#[inline(always)]
pub(super) fn forward_sparse<T: Tier, S: TraceSink>(
    t: T,
    packed: &PackedModel,
    rows: &crate::sparse::SparseRows<'_>,
    ws: &mut SimdWorkspace,
    out: &mut Readout,
    trace: &mut S,
) {
    let batch = rows.batch();
    kernels::project_sparse(t, &packed.layers[0], rows, &mut ws.cur0);
    run_chunks(t, packed, batch, ws, out, trace);
}

/// Every layer after the projection, chunk by chunk of samples.
#[inline(always)]
fn run_chunks<T: Tier, S: TraceSink>(
    t: T,
    packed: &PackedModel,
    batch: usize,
    ws: &mut SimdWorkspace,
    out: &mut Readout,
    trace: &mut S,
) {
    let mut start = 0;
    while start < batch {
        let len = ws.chunk.min(batch - start);
        first_layer(t, packed, ws, start, len, out, trace);
        for l in 1..packed.layers.len() {
            spiking_layer(t, packed, l, ws, start, len, out, trace);
        }
        start += len;
    }
    out.set_batch(batch);
}

/// Layer 1 for samples `start..start + len`, every step, into `ws.logs[0]`;
/// in a one-layer model it also fills `out`.
#[inline(always)]
fn first_layer<T: Tier, S: TraceSink>(
    t: T,
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
        ws.mem0.fill(Block::ZERO);
        for step in 0..steps {
            let slot = s * steps + step;
            let spikes = &mut log.indices[slot * log.slot_len..(slot + 1) * log.slot_len];
            let fired = kernels::lif_step(
                t,
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
            trace.on_step(start + s, 0, step, 0, &mem[..layer.outputs], fired_neurons);
        }
        if is_last {
            let row = (start + s) * layer.outputs;
            let mem: &[f32] = bytemuck::cast_slice(&ws.mem0);
            out.mem_last[row..row + layer.outputs].copy_from_slice(&mem[..layer.outputs]);
            let counts = &mut out.spike_count[row..row + layer.outputs];
            counts.fill(0);
            for step in 0..steps {
                for &offset in log.slot(s * steps + step) {
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
// The tier and the trace travel with the layer's arguments.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn spiking_layer<T: Tier, S: TraceSink>(
    t: T,
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
        t,
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
struct TileCx<'a, T, S> {
    t: T,
    packed: &'a PackedModel,
    l: usize,
    input_log: &'a SpikeLog,
    log: &'a mut SpikeLog,
    start: usize,
    out: &'a mut Readout,
    trace: &'a mut S,
}

impl<T: Tier, S: TraceSink> TileCx<'_, T, S> {
    /// Every step of the layer for `N` (chunk sample, tile) pairs at once:
    /// either `N` samples of one tile or `N` consecutive tiles of one sample.
    #[inline(always)]
    fn run<const N: usize>(&mut self, pairs: [(usize, usize); N]) {
        let layer = &self.packed.layers[self.l];
        let graded = self.packed.layers[self.l - 1].graded_spikes_factor;
        let steps = self.packed.steps as usize;
        let t = self.t;
        let one = t.splat(1.0);
        let tiles: [&[Block]; N] = std::array::from_fn(|k| layer.tile(pairs[k].1).2);
        let mut mem = [t.zero(); N];
        let mut fired_steps = [t.zero(); N];
        for step in 0..steps {
            // Padded to a common length by `pad_group` where the samples differ.
            let longest = pairs
                .iter()
                .map(|&(s, _)| self.input_log.counts[s * steps + step])
                .max()
                .unwrap_or(0);
            let lists: [&[u32]; N] = std::array::from_fn(|k| {
                self.input_log
                    .slot_padded(pairs[k].0 * steps + step, longest)
            });
            let sums = kernels::accumulate_tile(t, lists, tiles, graded);
            for (k, &(s, v)) in pairs.iter().enumerate() {
                let bias = t.load(&layer.bias[v]);
                let beta = t.load(&layer.beta[v]);
                let threshold = t.load(&layer.threshold[v]);
                let current = t.add(sums[k], bias);
                let (next, bits) =
                    kernels::lif_one(t, mem[k], current, beta, threshold, layer.reset);
                mem[k] = next;
                fired_steps[k] = t.add(fired_steps[k], t.and(t.gt(next, threshold), one));
                let slot = s * steps + step;
                let count = self.log.counts[slot];
                let spikes =
                    &mut self.log.indices[slot * self.log.slot_len..(slot + 1) * self.log.slot_len];
                let fired = t.push_fired((v * LANES) as u32, bits, spikes, count);
                self.log.counts[slot] = fired;
                let lanes = (layer.outputs - v * LANES).min(LANES);
                let next_lanes = t.store(next);
                let mem_lanes = &next_lanes.0[..lanes];
                self.trace.on_step(
                    self.start + s,
                    self.l,
                    step,
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
                self.out.mem_last[row..row + lanes].copy_from_slice(&t.store(mem[k]).0[..lanes]);
                let counts = &mut self.out.spike_count[row..row + lanes];
                for (c, &f) in counts.iter_mut().zip(&t.store(fired_steps[k]).0) {
                    *c = f as u32;
                }
            }
        }
    }
}
