//! Adam over the network's parameters, in a fixed order so runs are reproducible.

use super::{Gradients, Network};

const BETA1: f32 = 0.9;
const BETA2: f32 = 0.999;
const EPSILON: f32 = 1e-8;

/// First and second moment estimates, one per parameter, in visiting order.
#[derive(Clone, Debug)]
pub(super) struct Adam {
    learning_rate: f32,
    weight_decay: f32,
    m: Vec<f32>,
    v: Vec<f32>,
    steps: i32,
}

impl Adam {
    pub(super) fn new(parameters: usize, learning_rate: f32, weight_decay: f32) -> Self {
        Self {
            learning_rate,
            weight_decay,
            m: vec![0.0; parameters],
            v: vec![0.0; parameters],
            steps: 0,
        }
    }

    /// One update with gradients summed over `batch` rows.
    pub(super) fn step(&mut self, net: &mut Network, grads: &Gradients, batch: usize) {
        self.steps = self.steps.saturating_add(1);
        let scale = 1.0 / batch.max(1) as f32;
        let correction1 = 1.0 - BETA1.powi(self.steps);
        let correction2 = 1.0 - BETA2.powi(self.steps);
        let lr = self.learning_rate;
        let mut offset = 0;
        let update =
            |params: &mut [f32], grad: &[f32], m: &mut [f32], v: &mut [f32], decay: f32| {
                for (((p, &g), m), v) in params.iter_mut().zip(grad).zip(m).zip(v) {
                    let g = g * scale;
                    *m = BETA1 * *m + (1.0 - BETA1) * g;
                    *v = BETA2 * *v + (1.0 - BETA2) * g * g;
                    *p -= lr
                        * ((*m / correction1) / ((*v / correction2).sqrt() + EPSILON) + decay * *p);
                }
            };
        let mut visit = |params: &mut [f32], grad: &[f32], decay: f32| {
            let n = params.len();
            update(
                params,
                grad,
                &mut self.m[offset..offset + n],
                &mut self.v[offset..offset + n],
                decay,
            );
            offset += n;
        };
        // Decay applies to the layers' weights only, not to biases or the readout.
        for (l, layer) in net.layers.iter_mut().enumerate() {
            visit(&mut layer.weight, &grads.weight[l], self.weight_decay);
            visit(&mut layer.bias, &grads.bias[l], 0.0);
        }
        visit(&mut net.w_rate, &grads.w_rate, 0.0);
        visit(&mut net.w_mem, &grads.w_mem, 0.0);
        visit(&mut net.bias, &grads.out_bias, 0.0);
    }
}
