//! Per-step recording of every layer's spikes and membranes.
//!
//! Kernels are generic over [`TraceSink`]; with [`NoTrace`] every call is an
//! empty inline function, so the hot path pays nothing for the option.

/// Receives one layer's state after each time step of one sample.
pub trait TraceSink {
    /// Called after `layer` (0-based) finished `step` of `sample` for the
    /// neurons `first..first + mem.len()`: `mem` holds their membranes (not
    /// yet reset), `spikes` lists those that fired, ascending, by absolute
    /// index. A kernel may report a layer's step in several such pieces, in
    /// any order.
    fn on_step<I: IntoIterator<Item = u32>>(
        &mut self,
        sample: usize,
        layer: usize,
        step: usize,
        first: usize,
        mem: &[f32],
        spikes: I,
    );
}

/// Records nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoTrace;

impl TraceSink for NoTrace {
    #[inline(always)]
    fn on_step<I: IntoIterator<Item = u32>>(
        &mut self,
        _: usize,
        _: usize,
        _: usize,
        _: usize,
        _: &[f32],
        _: I,
    ) {
    }
}

/// One layer's full trace, `[batch][step][neuron]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LayerTrace {
    /// 0/1 spikes.
    pub spk: Vec<Vec<Vec<u8>>>,
    /// Membranes.
    pub mem: Vec<Vec<Vec<f32>>>,
}

/// Records everything, for `cx model run --trace` and the conformance tests.
/// Allocates as it goes; never used on the serving path.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trace {
    /// One entry per layer, input first.
    pub layers: Vec<LayerTrace>,
}

impl TraceSink for Trace {
    fn on_step<I: IntoIterator<Item = u32>>(
        &mut self,
        sample: usize,
        layer: usize,
        step: usize,
        first: usize,
        mem: &[f32],
        spikes: I,
    ) {
        if self.layers.len() <= layer {
            self.layers.resize_with(layer + 1, LayerTrace::default);
        }
        let lt = &mut self.layers[layer];
        if lt.spk.len() <= sample {
            lt.spk.resize_with(sample + 1, Vec::new);
            lt.mem.resize_with(sample + 1, Vec::new);
        }
        let (spk_rows, mem_rows) = (&mut lt.spk[sample], &mut lt.mem[sample]);
        if spk_rows.len() <= step {
            spk_rows.resize_with(step + 1, Vec::new);
            mem_rows.resize_with(step + 1, Vec::new);
        }
        let (spk, mems) = (&mut spk_rows[step], &mut mem_rows[step]);
        let end = first + mem.len();
        if spk.len() < end {
            spk.resize(end, 0);
            mems.resize(end, 0.0);
        }
        mems[first..end].copy_from_slice(mem);
        for s in spikes {
            spk[s as usize] = 1;
        }
    }
}
