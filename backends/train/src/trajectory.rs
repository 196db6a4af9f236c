//! One row's recorded trajectory and its backward pass.
//!
//! Every quantity is a flat `[step][neuron]` buffer per layer, sized once
//! for the network and reused for every row, so training allocates nothing
//! per row.

use super::{Gradients, Network};
use cx_backends::scalar;
use cx_model::{LifLayer, ResetMechanism};

/// Per-layer buffers.
#[derive(Clone, Debug)]
struct LayerTrajectory {
    width: usize,
    /// Membrane after each step (not yet reset), `[step][neuron]`.
    mem: Vec<f32>,
    /// Spike of each step, `[step][neuron]`.
    spk: Vec<bool>,
    /// Whether the neuron had fired at the step before (the reset decision), `[step][neuron]`.
    fired_before: Vec<bool>,
    /// Gradient of the loss with respect to each spike, `[step][neuron]`.
    g_spk: Vec<f32>,
    /// Gradient with respect to the final membrane (the readout's `w_mem` term).
    g_mem_last: Vec<f32>,
    /// Working membrane and spikes for the scalar kernel.
    mem_work: Vec<f32>,
    spk_work: Vec<bool>,
    /// Backward scratch: gradient flowing to the previous step, and to the current.
    carry: Vec<f32>,
    g_cur: Vec<f32>,
    /// Layer 0 only: gradient of its constant current, summed over steps.
    g_cur_total: Vec<f32>,
}

/// The recorded forward pass of one row.
#[derive(Clone, Debug)]
pub(super) struct Trajectory {
    steps: usize,
    layers: Vec<LayerTrajectory>,
    /// Input current of the step being run, per layer (layer 0: the same at
    /// every step). Kept apart so a layer can read the previous one's spikes.
    current: Vec<Vec<f32>>,
    /// The row's non-zero features `(index, value)`, ascending.
    nonzero: Vec<(u32, f32)>,
}

impl Trajectory {
    pub(super) fn new(net: &Network) -> Self {
        let steps = net.steps as usize;
        let layers = net
            .layers
            .iter()
            .map(|l| {
                let n = l.outputs;
                LayerTrajectory {
                    width: n,
                    mem: vec![0.0; steps * n],
                    spk: vec![false; steps * n],
                    fired_before: vec![false; steps * n],
                    g_spk: vec![0.0; steps * n],
                    g_mem_last: vec![0.0; n],
                    mem_work: vec![0.0; n],
                    spk_work: vec![false; n],
                    carry: vec![0.0; n],
                    g_cur: vec![0.0; n],
                    g_cur_total: vec![0.0; n],
                }
            })
            .collect();
        Self {
            steps,
            layers,
            current: net.layers.iter().map(|l| vec![0.0; l.outputs]).collect(),
            nonzero: Vec::with_capacity(net.layers[0].inputs),
        }
    }

    /// Runs one row forward through the scalar reference kernel, recording
    /// every layer's membranes, spikes and reset decisions.
    pub(super) fn forward(&mut self, net: &Network, x: &[f32]) {
        self.nonzero.clear();
        self.nonzero.extend(
            x.iter()
                .enumerate()
                .filter(|(_, v)| **v != 0.0)
                .map(|(i, &v)| (i as u32, v)),
        );
        scalar::linear_nonzero(&net.layers[0], &self.nonzero, &mut self.current[0]);
        for l in &mut self.layers {
            l.mem_work.fill(0.0);
        }
        for t in 0..self.steps {
            for (l, layer) in net.layers.iter().enumerate() {
                if l > 0 {
                    let n = self.layers[l - 1].width;
                    let spikes = &self.layers[l - 1].spk[t * n..(t + 1) * n];
                    let graded = net.layers[l - 1].graded_spikes_factor;
                    scalar::linear_spikes(layer, spikes, graded, &mut self.current[l]);
                }
                self.step(l, t, layer);
            }
        }
    }

    /// Spikes of layer `l` at step `t`.
    pub(super) fn spk_at(&self, l: usize, t: usize) -> &[bool] {
        let n = self.layers[l].width;
        &self.layers[l].spk[t * n..(t + 1) * n]
    }

    /// Membranes of layer `l` after step `t`.
    pub(super) fn mem_at(&self, l: usize, t: usize) -> &[f32] {
        let n = self.layers[l].width;
        &self.layers[l].mem[t * n..(t + 1) * n]
    }

    /// Runs the LIF step of layer `l` at step `t` on `self.current[l]`, with
    /// the scalar reference kernel, and records it.
    fn step(&mut self, l: usize, t: usize, layer: &LifLayer) {
        let lt = &mut self.layers[l];
        let n = lt.width;
        for j in 0..n {
            lt.fired_before[t * n + j] = lt.mem_work[j] > layer.threshold[j];
        }
        scalar::lif_step(
            &mut lt.mem_work,
            &self.current[l],
            &layer.beta,
            &layer.threshold,
            layer.reset,
            &mut lt.spk_work,
        );
        lt.mem[t * n..(t + 1) * n].copy_from_slice(&lt.mem_work);
        lt.spk[t * n..(t + 1) * n].copy_from_slice(&lt.spk_work);
    }

    /// Starts the backward pass: the loss depends on output column `o`
    /// through each step's spike (`g_spike` each) and the final membrane.
    pub(super) fn seed_output_gradient(&mut self, o: usize, g_spike: f32, g_mem_last: f32) {
        for l in &mut self.layers {
            l.g_spk.fill(0.0);
            l.g_mem_last.fill(0.0);
        }
        let last = self.layers.last_mut().expect("at least one layer");
        let n = last.width;
        for t in 0..self.steps {
            last.g_spk[t * n + o] = g_spike;
        }
        last.g_mem_last[o] = g_mem_last;
    }

    /// Backpropagates through time and layers, adding to `grads`.
    pub(super) fn backward(&mut self, net: &Network, slope: f32, grads: &mut Gradients) {
        let last = net.layers.len() - 1;
        for l in (0..=last).rev() {
            let layer = &net.layers[l];
            let (below, rest) = self.layers.split_at_mut(l);
            let lt = &mut rest[0];
            lt.carry.fill(0.0);
            lt.g_cur_total.fill(0.0);
            for t in (0..self.steps).rev() {
                membrane_gradient(lt, layer, t, slope, l == last && t + 1 == self.steps);
                if l == 0 {
                    for (total, &g) in lt.g_cur_total.iter_mut().zip(&lt.g_cur) {
                        *total += g;
                    }
                } else {
                    let prev = &mut below[l - 1];
                    let graded = net.layers[l - 1].graded_spikes_factor;
                    spiking_input_gradient(
                        layer,
                        graded,
                        prev,
                        t,
                        &lt.g_cur,
                        &mut grads.weight[l],
                        &mut grads.bias[l],
                    );
                }
            }
            if l == 0 {
                first_layer_gradient(
                    layer,
                    &self.nonzero,
                    &lt.g_cur_total,
                    &mut grads.weight[0],
                    &mut grads.bias[0],
                );
            }
        }
    }
}

/// The gradient of the loss with respect to layer current at step `t`
/// (`lt.g_cur`), from the spike's surrogate, the readout (last step of the
/// last layer) and the membrane carried back from step `t + 1`; then the
/// carry to step `t - 1`.
fn membrane_gradient(
    lt: &mut LayerTrajectory,
    layer: &LifLayer,
    t: usize,
    slope: f32,
    readout_step: bool,
) {
    let n = lt.width;
    for j in 0..n {
        let u = lt.mem[t * n + j] - layer.threshold[j];
        let surrogate = 1.0 / (1.0 + slope * u.abs()).powi(2);
        let mut g = lt.carry[j] + lt.g_spk[t * n + j] * surrogate;
        if readout_step {
            g += lt.g_mem_last[j];
        }
        lt.g_cur[j] = g;
        let keep = match layer.reset {
            ResetMechanism::Subtract | ResetMechanism::None => layer.beta[j],
            ResetMechanism::Zero if lt.fired_before[t * n + j] => 0.0,
            ResetMechanism::Zero => layer.beta[j],
        };
        lt.carry[j] = keep * g;
    }
}

/// For a spiking input: weight and bias gradients of `layer` at step `t`, and
/// the gradient sent back to the previous layer's spikes.
fn spiking_input_gradient(
    layer: &LifLayer,
    graded: f32,
    prev: &mut LayerTrajectory,
    t: usize,
    g_cur: &[f32],
    g_weight: &mut [f32],
    g_bias: &mut [f32],
) {
    let inputs = layer.inputs;
    let spikes = &prev.spk[t * inputs..(t + 1) * inputs];
    let g_spk = &mut prev.g_spk[t * inputs..(t + 1) * inputs];
    for (j, &g) in g_cur.iter().enumerate() {
        if g == 0.0 {
            continue;
        }
        g_bias[j] += g;
        let row = &mut g_weight[j * inputs..(j + 1) * inputs];
        for (gw, &s) in row.iter_mut().zip(spikes) {
            if s {
                *gw += g * graded;
            }
        }
        for (gs, &w) in g_spk.iter_mut().zip(layer.weight_row(j)) {
            *gs += graded * w * g;
        }
    }
}

/// For the first layer: weight and bias gradients from the gradient of its
/// (constant) current summed over the steps; only the row's non-zero
/// features have a weight gradient.
fn first_layer_gradient(
    layer: &LifLayer,
    nonzero: &[(u32, f32)],
    g_cur: &[f32],
    g_weight: &mut [f32],
    g_bias: &mut [f32],
) {
    let inputs = layer.inputs;
    for (j, &g) in g_cur.iter().enumerate() {
        g_bias[j] += g;
        let row = &mut g_weight[j * inputs..(j + 1) * inputs];
        for &(i, v) in nonzero {
            row[i as usize] += g * v;
        }
    }
}
