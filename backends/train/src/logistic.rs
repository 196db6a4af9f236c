//! The logistic-regression baseline: one weight vector and bias per output
//! column (offer), `p_o = sigmoid(w_o · x + b_o)`, trained on the same
//! features and rows as the spiking network, each row updating only its
//! shown offer's column. The scorer itself (inference and file format) is
//! [`cx_model::Logistic`].

use super::{check_config, Examples, TrainConfig, TrainError};
use cx_model::Logistic;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// L2 penalty on the weights (not the biases), per row.
const L2: f32 = 1e-5;

/// Probabilities of every row for its own column.
pub fn predict(model: &Logistic, data: Examples<'_>) -> Vec<f32> {
    (0..data.len())
        .map(|i| model.predict_one(data.row(i), data.column[i] as usize))
        .collect()
}

/// Trains the baseline with Adam on binary cross-entropy plus a small L2
/// penalty, using `config`'s epochs, batch size, learning rate and seed.
pub fn train_logistic(
    config: &TrainConfig,
    data: Examples<'_>,
    outputs: usize,
) -> Result<Logistic, TrainError> {
    check_config(config)?;
    data.check(outputs)?;
    let inputs = data.inputs;
    let base = (data.label.iter().sum::<f32>() / data.len() as f32).clamp(1e-4, 1.0 - 1e-4);
    let mut model = Logistic {
        inputs,
        outputs,
        weight: vec![0.0; outputs * inputs],
        bias: vec![(base / (1.0 - base)).ln(); outputs],
    };
    let mut grad_w = vec![0.0f32; outputs * inputs];
    let mut grad_b = vec![0.0f32; outputs];
    let mut adam = MomentPair::new(outputs * inputs + outputs);
    let mut order: Vec<usize> = (0..data.len()).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x1061_5eed);
    for _ in 0..config.epochs {
        order.shuffle(&mut rng);
        for batch in order.chunks(config.batch_size) {
            grad_w.fill(0.0);
            grad_b.fill(0.0);
            for &i in batch {
                let o = data.column[i] as usize;
                let x = data.row(i);
                let dz = model.predict_one(x, o) - data.label[i];
                for ((g, &v), &w) in grad_w[o * inputs..(o + 1) * inputs]
                    .iter_mut()
                    .zip(x)
                    .zip(&model.weight[o * inputs..])
                {
                    *g += dz * v + L2 * w;
                }
                grad_b[o] += dz;
            }
            adam.step(
                config.learning_rate,
                batch.len(),
                &mut model.weight,
                &grad_w,
                &mut model.bias,
                &grad_b,
            );
        }
    }
    Ok(model)
}

/// Adam moments for the weights followed by the biases.
struct MomentPair {
    m: Vec<f32>,
    v: Vec<f32>,
    steps: i32,
}

impl MomentPair {
    fn new(parameters: usize) -> Self {
        Self {
            m: vec![0.0; parameters],
            v: vec![0.0; parameters],
            steps: 0,
        }
    }

    fn step(
        &mut self,
        lr: f32,
        batch: usize,
        weight: &mut [f32],
        grad_w: &[f32],
        bias: &mut [f32],
        grad_b: &[f32],
    ) {
        const B1: f32 = 0.9;
        const B2: f32 = 0.999;
        self.steps = self.steps.saturating_add(1);
        let (c1, c2) = (1.0 - B1.powi(self.steps), 1.0 - B2.powi(self.steps));
        let scale = 1.0 / batch.max(1) as f32;
        let params = weight.iter_mut().chain(bias.iter_mut());
        let grads = grad_w.iter().chain(grad_b);
        for (((p, &g), m), v) in params.zip(grads).zip(&mut self.m).zip(&mut self.v) {
            let g = g * scale;
            *m = B1 * *m + (1.0 - B1) * g;
            *v = B2 * *v + (1.0 - B2) * g * g;
            *p -= lr * (*m / c1) / ((*v / c2).sqrt() + 1e-8);
        }
    }
}
