//! The logistic-regression baseline: one weight vector and bias per output
//! column (offer), `p_o = sigmoid(w_o · x + b_o)`, trained on the same
//! features and rows as the spiking network, each row updating only its
//! shown offer's column. It is the yardstick for the spiking model's
//! quality, and the engine's fallback scorer when a model's output fails
//! validation.
//!
//! Layout: `weight` is `[outputs][inputs]` row-major, like a torch `Linear`,
//! so a file stores it as `lr.weight` / `lr.bias`.

use super::{check_config, Examples, TrainConfig, TrainError};
use cx_components::model::sigmoid;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// L2 penalty on the weights (not the biases), per row.
const L2: f32 = 1e-5;

/// A trained logistic-regression scorer.
#[derive(Clone, Debug, PartialEq)]
pub struct Logistic {
    /// Features per row.
    pub inputs: usize,
    /// Output columns.
    pub outputs: usize,
    /// `[outputs][inputs]` weights.
    pub weight: Vec<f32>,
    /// Per-column bias.
    pub bias: Vec<f32>,
}

impl Logistic {
    /// Probability of column `o` for the features `x`.
    pub fn predict_one(&self, x: &[f32], o: usize) -> f32 {
        let w = &self.weight[o * self.inputs..(o + 1) * self.inputs];
        let z: f32 = w.iter().zip(x).map(|(a, b)| a * b).sum::<f32>() + self.bias[o];
        sigmoid(z)
    }

    /// Probabilities of every row for its own column.
    pub fn predict(&self, data: Examples<'_>) -> Vec<f32> {
        (0..data.len())
            .map(|i| self.predict_one(data.row(i), data.column[i] as usize))
            .collect()
    }
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

/// Metadata key naming what a file holds; a logistic baseline says `logistic`.
pub const KIND_KEY: &str = "cx.kind";

impl Logistic {
    /// The baseline as a safetensors file: `lr.weight` `[outputs, inputs]`,
    /// `lr.bias` `[outputs]`, and `metadata` plus `cx.kind = logistic`.
    pub fn to_bytes(&self, metadata: &std::collections::BTreeMap<String, String>) -> Vec<u8> {
        let mut metadata = metadata.clone();
        metadata.insert(KIND_KEY.into(), "logistic".into());
        cx_components::model::write_f32_tensors(
            &[
                ("lr.bias", &[self.outputs], &self.bias),
                ("lr.weight", &[self.outputs, self.inputs], &self.weight),
            ],
            &metadata,
        )
    }

    /// Reads a baseline written by [`Logistic::to_bytes`], with its metadata.
    pub fn from_bytes(
        bytes: &[u8],
    ) -> Result<(Self, std::collections::BTreeMap<String, String>), TrainError> {
        let bad = |m: String| TrainError::Data(format!("logistic baseline file: {m}"));
        let (tensors, metadata) = cx_components::model::read_f32_tensors(bytes)?;
        if metadata.get(KIND_KEY).map(String::as_str) != Some("logistic") {
            return Err(bad(format!("metadata `{KIND_KEY}` is not `logistic`")));
        }
        let (Some((w_shape, weight)), Some((b_shape, bias))) =
            (tensors.get("lr.weight"), tensors.get("lr.bias"))
        else {
            return Err(bad("tensors `lr.weight` and `lr.bias` are required".into()));
        };
        let (outputs, inputs) = match w_shape.as_slice() {
            &[o, i] if o > 0 && i > 0 => (o, i),
            other => {
                return Err(bad(format!(
                    "`lr.weight` has shape {other:?}, expected [outputs, inputs]"
                )))
            }
        };
        if b_shape.as_slice() != [outputs] {
            return Err(bad(format!(
                "`lr.bias` has shape {b_shape:?}, expected [{outputs}]"
            )));
        }
        if weight.iter().chain(bias).any(|v| !v.is_finite()) {
            return Err(bad("a weight or bias is not finite".into()));
        }
        let model = Self {
            inputs,
            outputs,
            weight: weight.clone(),
            bias: bias.clone(),
        };
        Ok((model, metadata))
    }
}
