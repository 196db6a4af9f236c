//! The layers' passes and the order they run in.
//!
//! Each pass (the input projection, layer 1's time loop, a spiking layer's
//! tile loop) is a generic body over the instruction-set [`Tier`], always
//! inlined into that tier's copy of the pass: [`tier_passes!`] compiles one
//! non-inlined function per pass and tier, with the tier's
//! `#[target_feature]`, and implements [`Passes`] for the tier's token with
//! them. [`forward`] and [`forward_sparse`] then run the passes in order:
//! the blocked projection for the whole batch; per chunk of samples, layer
//! 1 for every step, then each spiking layer one 16-neuron tile at a time
//! across the chunk. Separate passes keep each compiled body small enough
//! for the optimiser to inline the helpers inside it, and name each pass
//! in a profile.

use super::kernels;
use super::tier::Tier;
use super::{Block, PackedLayer, PackedModel, SimdWorkspace, SpikeLog, LANES};
use crate::sparse::SparseRows;
use crate::trace::TraceSink;
use cx_model::{Readout, ResetMechanism};

/// The passes of one tier, each compiled with the tier's instructions.
pub(super) trait Passes: Tier {
    /// [`kernels::project`].
    fn project(self, layer: &PackedLayer, x: &[f32], cur: &mut [Block], cols: &mut [u32]);
    /// [`kernels::project_sparse`].
    fn project_sparse(self, layer: &PackedLayer, rows: &SparseRows<'_>, cur: &mut [Block]);
    /// [`first_layer`].
    fn first_layer<S: TraceSink>(
        self,
        packed: &PackedModel,
        ws: &mut SimdWorkspace,
        chunk: Chunk,
        out: &mut Readout,
        trace: &mut S,
    );
    /// [`spiking_layer`].
    fn spiking_layer<S: TraceSink>(
        self,
        packed: &PackedModel,
        l: usize,
        ws: &mut SimdWorkspace,
        chunk: Chunk,
        out: &mut Readout,
        trace: &mut S,
    );
    /// [`kernels::lif_step`] alone (kernel tests).
    fn lif_step(
        self,
        mem: &mut [Block],
        cur: &[Block],
        beta: &[Block],
        threshold: &[Block],
        reset: ResetMechanism,
        spikes: &mut [u32],
    ) -> usize;
    /// [`Tier::push_fired`] alone (kernel tests).
    fn push_fired_alone(self, base: u32, bits: u32, spikes: &mut [u32], count: usize) -> usize;
}

/// The samples of a batch one pass works on: `start..start + len`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Chunk {
    /// First sample.
    pub start: usize,
    /// Samples.
    pub len: usize,
}

/// `tier_passes!(Token, "features")` (or `tier_passes!(Token)` for a tier
/// with no features beyond the baseline) compiles every pass for one tier
/// and implements [`Passes`] for its token with them. A token exists only
/// where the CPU has the features, which is what makes each call sound.
macro_rules! tier_passes {
    ($token:ident $(, $features:literal)?) => {
        /// This tier's passes, compiled with its instructions.
        mod compiled {
            use super::super::kernels;
            use super::super::run::{first_layer, spiking_layer, Chunk};
            use super::super::tier::Tier;
            use super::super::{Block, PackedLayer, PackedModel, SimdWorkspace};
            use crate::sparse::SparseRows;
            use crate::trace::TraceSink;
            use cx_model::{Readout, ResetMechanism};
            use super::$token;

            $(#[target_feature(enable = $features)])?
            #[inline(never)]
            pub(super) fn project(
                t: $token,
                layer: &PackedLayer,
                x: &[f32],
                cur: &mut [Block],
                cols: &mut [u32],
            ) {
                kernels::project(t, layer, x, cur, cols);
            }

            $(#[target_feature(enable = $features)])?
            #[inline(never)]
            pub(super) fn project_sparse(
                t: $token,
                layer: &PackedLayer,
                rows: &SparseRows<'_>,
                cur: &mut [Block],
            ) {
                kernels::project_sparse(t, layer, rows, cur);
            }

            $(#[target_feature(enable = $features)])?
            #[inline(never)]
            pub(super) fn first_layer_pass<S: TraceSink>(
                t: $token,
                packed: &PackedModel,
                ws: &mut SimdWorkspace,
                chunk: Chunk,
                out: &mut Readout,
                trace: &mut S,
            ) {
                first_layer(t, packed, ws, chunk, out, trace);
            }

            $(#[target_feature(enable = $features)])?
            #[inline(never)]
            pub(super) fn spiking_layer_pass<S: TraceSink>(
                t: $token,
                packed: &PackedModel,
                l: usize,
                ws: &mut SimdWorkspace,
                chunk: Chunk,
                out: &mut Readout,
                trace: &mut S,
            ) {
                spiking_layer(t, packed, l, ws, chunk, out, trace);
            }

            $(#[target_feature(enable = $features)])?
            #[inline(never)]
            pub(super) fn lif_step(
                t: $token,
                mem: &mut [Block],
                cur: &[Block],
                beta: &[Block],
                threshold: &[Block],
                reset: ResetMechanism,
                spikes: &mut [u32],
            ) -> usize {
                kernels::lif_step(t, mem, cur, beta, threshold, reset, spikes)
            }

            $(#[target_feature(enable = $features)])?
            #[inline(never)]
            pub(super) fn push_fired(
                t: $token,
                base: u32,
                bits: u32,
                spikes: &mut [u32],
                count: usize,
            ) -> usize {
                t.push_fired(base, bits, spikes, count)
            }
        }

        impl super::run::Passes for $token {
            fn project(self, layer: &super::PackedLayer, x: &[f32], cur: &mut [super::Block], cols: &mut [u32]) {
                super::run::pass_call!($($features)?, compiled::project(self, layer, x, cur, cols))
            }
            fn project_sparse(
                self,
                layer: &super::PackedLayer,
                rows: &crate::sparse::SparseRows<'_>,
                cur: &mut [super::Block],
            ) {
                super::run::pass_call!($($features)?, compiled::project_sparse(self, layer, rows, cur))
            }
            fn first_layer<S: crate::trace::TraceSink>(
                self,
                packed: &super::PackedModel,
                ws: &mut super::SimdWorkspace,
                chunk: super::run::Chunk,
                out: &mut cx_model::Readout,
                trace: &mut S,
            ) {
                super::run::pass_call!($($features)?, compiled::first_layer_pass(self, packed, ws, chunk, out, trace))
            }
            fn spiking_layer<S: crate::trace::TraceSink>(
                self,
                packed: &super::PackedModel,
                l: usize,
                ws: &mut super::SimdWorkspace,
                chunk: super::run::Chunk,
                out: &mut cx_model::Readout,
                trace: &mut S,
            ) {
                super::run::pass_call!($($features)?, compiled::spiking_layer_pass(self, packed, l, ws, chunk, out, trace))
            }
            fn lif_step(
                self,
                mem: &mut [super::Block],
                cur: &[super::Block],
                beta: &[super::Block],
                threshold: &[super::Block],
                reset: cx_model::ResetMechanism,
                spikes: &mut [u32],
            ) -> usize {
                super::run::pass_call!($($features)?, compiled::lif_step(self, mem, cur, beta, threshold, reset, spikes))
            }
            fn push_fired_alone(self, base: u32, bits: u32, spikes: &mut [u32], count: usize) -> usize {
                super::run::pass_call!($($features)?, compiled::push_fired(self, base, bits, spikes, count))
            }
        }
    };
}
pub(super) use tier_passes;

/// A call into a compiled pass: `unsafe` for a tier with target features
/// (`pass_call!("avx2,fma", f(token, ...))`), a plain call for one without
/// (`pass_call!(, f(token, ...))`).
macro_rules! pass_call {
    ($features:literal, $call:expr) => {
        // SAFETY: the call passes the tier's token, which exists only where
        // the CPU has the tier's features (its constructor checked them),
        // and those are all the compiled pass is built to use.
        unsafe { $call }
    };
    (, $call:expr) => {
        $call
    };
}
pub(super) use pass_call;

/// Runs `batch` samples of `x` (`[batch][inputs]` row-major) on tier `t`
/// and fills `out`'s spike counts and final membranes. The caller checks
/// shapes (`batch <= ws.batch_max()`, `x.len() == batch * inputs`, `out`
/// large enough), as [`crate::CoLaNetProvider::infer`] does. A neuron's
/// trajectory depends only on its own inputs, so tiles are independent.
pub(super) fn forward<T: Passes, S: TraceSink>(
    t: T,
    packed: &PackedModel,
    x: &[f32],
    batch: usize,
    ws: &mut SimdWorkspace,
    out: &mut Readout,
    trace: &mut S,
) {
    let first = &packed.layers[0];
    t.project(
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
pub(super) fn forward_sparse<T: Passes, S: TraceSink>(
    t: T,
    packed: &PackedModel,
    rows: &SparseRows<'_>,
    ws: &mut SimdWorkspace,
    out: &mut Readout,
    trace: &mut S,
) {
    let batch = rows.batch();
    t.project_sparse(&packed.layers[0], rows, &mut ws.cur0);
    run_chunks(t, packed, batch, ws, out, trace);
}

/// Every layer after the projection, chunk by chunk of samples.
fn run_chunks<T: Passes, S: TraceSink>(
    t: T,
    packed: &PackedModel,
    batch: usize,
    ws: &mut SimdWorkspace,
    out: &mut Readout,
    trace: &mut S,
) {
    let mut start = 0;
    while start < batch {
        let chunk = Chunk {
            start,
            len: ws.chunk.min(batch - start),
        };
        t.first_layer(packed, ws, chunk, out, trace);
        for l in 1..packed.layers.len() {
            t.spiking_layer(packed, l, ws, chunk, out, trace);
        }
        start += chunk.len;
    }
    out.set_batch(batch);
}

/// Layer 1 for samples `start..start + len`, every step, into `ws.logs[0]`;
/// in a one-layer model it also fills `out`.
#[inline(always)]
pub(super) fn first_layer<T: Tier, S: TraceSink>(
    t: T,
    packed: &PackedModel,
    ws: &mut SimdWorkspace,
    chunk: Chunk,
    out: &mut Readout,
    trace: &mut S,
) {
    let Chunk { start, len } = chunk;
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
#[inline(always)]
pub(super) fn spiking_layer<T: Tier, S: TraceSink>(
    t: T,
    packed: &PackedModel,
    l: usize,
    ws: &mut SimdWorkspace,
    chunk: Chunk,
    out: &mut Readout,
    trace: &mut S,
) {
    let Chunk { start, len } = chunk;
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
