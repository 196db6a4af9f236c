//! The caller-owned buffers a forward pass writes into.
//!
//! Structure of arrays, batch-major: each field is one `[batch][outputs]`
//! row-major array, so a row is a contiguous slice per sample and the decide
//! stage can scan one quantity for a whole batch without striding over the
//! others. Sized once for a maximum batch; a pass never allocates.

/// Readout of the last layer for a batch: spike counts, final membranes and
/// calibrated probabilities, each `[batch][outputs]` row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Readout {
    outputs: usize,
    batch: usize,
    batch_max: usize,
    /// Spikes of each output neuron over the `T` steps.
    pub spike_count: Vec<u32>,
    /// Membrane of each output neuron after the last step (before its reset).
    pub mem_last: Vec<f32>,
    /// Calibrated probability of each output column, in `[0, 1]`.
    pub probability: Vec<f32>,
}

impl Readout {
    /// Buffers for up to `batch_max` samples of `outputs` columns each.
    pub fn with_capacity(batch_max: usize, outputs: usize) -> Self {
        let len = batch_max * outputs;
        Self {
            outputs,
            batch: 0,
            batch_max,
            spike_count: vec![0; len],
            mem_last: vec![0.0; len],
            probability: vec![0.0; len],
        }
    }

    /// Output columns per sample.
    pub fn outputs(&self) -> usize {
        self.outputs
    }

    /// Samples the last pass filled.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Most samples these buffers hold.
    pub fn batch_max(&self) -> usize {
        self.batch_max
    }

    /// Marks the first `batch` rows as filled. Panics if `batch > batch_max`,
    /// which kernels check before they write.
    pub fn set_batch(&mut self, batch: usize) {
        assert!(
            batch <= self.batch_max,
            "batch {batch} > batch_max {}",
            self.batch_max
        );
        self.batch = batch;
    }

    /// Spike counts of sample `b`.
    pub fn spike_count_row(&self, b: usize) -> &[u32] {
        &self.spike_count[b * self.outputs..(b + 1) * self.outputs]
    }

    /// Final membranes of sample `b`.
    pub fn mem_last_row(&self, b: usize) -> &[f32] {
        &self.mem_last[b * self.outputs..(b + 1) * self.outputs]
    }

    /// Probabilities of sample `b`.
    pub fn probability_row(&self, b: usize) -> &[f32] {
        &self.probability[b * self.outputs..(b + 1) * self.outputs]
    }

    /// Applies the model's calibration to the filled rows.
    pub fn calibrate(&mut self, calibration: &crate::Calibration, steps: u32) {
        let n = self.batch * self.outputs;
        for ((count, mem), prob) in self.spike_count[..n]
            .chunks_exact(self.outputs)
            .zip(self.mem_last[..n].chunks_exact(self.outputs))
            .zip(self.probability[..n].chunks_exact_mut(self.outputs))
        {
            calibration.apply(steps, count, mem, prob);
        }
    }
}
