//! Training a CoLaNet spiking network by surrogate-gradient backpropagation
//! through time.
//!
//! The forward pass *is* the scalar reference kernel ([`cx_backends::scalar`]):
//! the same functions, in the same order. A trained model therefore scores
//! exactly as the serving kernels will score it (the SIMD kernel agrees with
//! the reference bit for bit).
//!
//! The model's readout is the Platt form the model file stores
//! (`docs/MODEL_FORMAT.md`): for output column `o`,
//! `p = sigmoid(w_rate[o] * spike_count[o] / T + w_mem[o] * mem_last[o] + bias[o])`.
//! Training learns the layers and these readout parameters together, with
//! binary cross-entropy on the column of the offer that was shown.
//!
//! Gradients:
//! - A spike `s = H(mem - thr)` passes gradient through snnTorch's default
//!   surrogate, the fast sigmoid: `ds/dmem = 1 / (1 + k |mem - thr|)^2`,
//!   slope `k` = 25.
//! - The reset term is detached, as in snnTorch, so `dmem[t]/dmem[t-1]` is
//!   `beta`, or `beta * (1 - r[t])` for reset to zero.
//! - Beta and the threshold are fixed hyperparameters.
//!
//! Layout: parameters live in [`LifLayer`]s (torch's `[out][in]`), so the
//! forward pass reads them in place. The per-sample trajectory is one flat
//! `[layer][step][neuron]` buffer per quantity, reused across samples.
//! Training runs on one thread, so a seed fixes every bit of the result.

mod adam;
pub mod calibrate;
pub mod logistic;
pub mod metrics;
mod trajectory;

pub use calibrate::calibrate;
pub use cx_model::Logistic;
pub use logistic::train_logistic;

use adam::Adam;
use cx_model::Calibration;
use cx_model::{LifLayer, ModelMeta, ResetMechanism, SnnModel};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use thiserror::Error;
use trajectory::Trajectory;

/// Limits on what one training run may ask for.
pub mod limits {
    /// Most hidden layers.
    pub const HIDDEN_LAYERS_MAX: usize = 4;
    /// Widest hidden layer.
    pub const HIDDEN_WIDTH_MAX: usize = 4096;
    /// Most epochs.
    pub const EPOCHS_MAX: usize = 1000;
    /// Largest minibatch.
    pub const BATCH_SIZE_MAX: usize = 65_536;
}

/// Hyperparameters of a training run. `Default` gives the documented defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// Width of each hidden layer, input side first (default `[64]`: one hidden layer).
    pub hidden: Vec<usize>,
    /// Time steps `T` (default 8).
    pub steps: u32,
    /// Membrane decay of the hidden layers (default 0.9).
    pub beta_hidden: f32,
    /// Membrane decay of the output layer (default 0.8).
    pub beta_output: f32,
    /// Firing threshold of every layer (default 1.0).
    pub threshold: f32,
    /// Adam learning rate (default 0.002).
    pub learning_rate: f32,
    /// Passes over the data (default 5).
    pub epochs: usize,
    /// Decoupled weight decay (AdamW) on the layers' weights, per step
    /// (default 0.2); keeps the wide hashed first layer from memorising.
    pub weight_decay: f32,
    /// Samples per gradient step (default 64).
    pub batch_size: usize,
    /// Seed of the initial weights and the shuffling (default 7).
    pub seed: u64,
    /// Slope `k` of the fast-sigmoid surrogate (default 25, snnTorch's).
    pub surrogate_slope: f32,
    /// Scale of the initial weights relative to torch's `Linear` init
    /// (default 3, which makes a fresh network fire at 10-35%).
    pub init_gain: f32,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            hidden: vec![64],
            steps: 8,
            beta_hidden: 0.9,
            beta_output: 0.8,
            threshold: 1.0,
            learning_rate: 0.002,
            epochs: 5,
            weight_decay: 0.2,
            batch_size: 64,
            seed: 7,
            surrogate_slope: 25.0,
            init_gain: 3.0,
        }
    }
}

/// What can go wrong in training.
#[derive(Debug, Error)]
pub enum TrainError {
    /// A hyperparameter is outside its documented range.
    #[error("training config: {field} {reason}")]
    Config {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The data set is empty or inconsistent.
    #[error("training data: {0}")]
    Data(String),
    /// The trained parameters did not form a valid model (e.g. they diverged).
    #[error("the trained model is invalid: {0}")]
    Model(#[from] cx_model::Error),
}

/// Labelled rows: features, the output column of the offer shown, and the click.
#[derive(Clone, Copy, Debug)]
pub struct Examples<'a> {
    /// Features, `[rows][inputs]` row-major.
    pub x: &'a [f32],
    /// Width of a row.
    pub inputs: usize,
    /// Output column (offer) of each row.
    pub column: &'a [u32],
    /// 1.0 for a click, 0.0 otherwise.
    pub label: &'a [f32],
}

impl Examples<'_> {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.label.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.label.is_empty()
    }

    /// Features of row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.x[i * self.inputs..(i + 1) * self.inputs]
    }

    fn check(&self, outputs: usize) -> Result<(), TrainError> {
        let bad = |m: String| Err(TrainError::Data(m));
        if self.is_empty() {
            return bad("no rows".into());
        }
        if self.inputs == 0 || self.x.len() != self.len() * self.inputs {
            return bad(format!(
                "{} feature values for {} rows of {}",
                self.x.len(),
                self.len(),
                self.inputs
            ));
        }
        if self.column.len() != self.len() {
            return bad(format!(
                "{} offer columns for {} rows",
                self.column.len(),
                self.len()
            ));
        }
        if let Some(i) = self.column.iter().position(|&c| c as usize >= outputs) {
            return bad(format!(
                "row {i} names output column {}, the model has {outputs}",
                self.column[i]
            ));
        }
        if let Some(i) = self.label.iter().position(|&y| y != 0.0 && y != 1.0) {
            return bad(format!(
                "row {i} has label {}, expected 0 or 1",
                self.label[i]
            ));
        }
        if let Some(i) = self.x.iter().position(|v| !v.is_finite()) {
            return bad(format!(
                "row {}, feature {} is not finite",
                i / self.inputs,
                i % self.inputs
            ));
        }
        Ok(())
    }
}

/// Progress of a run, reported after every minibatch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Progress {
    /// Epoch, from 0.
    pub epoch: usize,
    /// Rows seen in this epoch.
    pub rows_done: usize,
    /// Rows per epoch.
    pub rows_total: usize,
    /// Mean loss of this epoch so far.
    pub loss_mean: f64,
}

/// Summary of one epoch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochSummary {
    /// Epoch, from 0.
    pub epoch: usize,
    /// Mean binary cross-entropy over the epoch's rows (during training).
    pub loss_mean: f64,
}

/// The trainable parameters: the layers and the readout.
#[derive(Clone, Debug, PartialEq)]
pub struct Network {
    /// `Linear -> Leaky` layers, input first.
    pub layers: Vec<LifLayer>,
    /// Readout weight of the firing rate, per output column.
    pub w_rate: Vec<f32>,
    /// Readout weight of the final membrane, per output column.
    pub w_mem: Vec<f32>,
    /// Readout bias, per output column.
    pub bias: Vec<f32>,
    /// Time steps.
    pub steps: u32,
}

impl Network {
    /// A freshly initialised network for `inputs` features and `outputs` columns.
    pub fn init(config: &TrainConfig, inputs: usize, outputs: usize, base_rate: f32) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let mut widths = vec![inputs];
        widths.extend(&config.hidden);
        widths.push(outputs);
        let last = widths.len() - 2;
        let layers = widths
            .windows(2)
            .enumerate()
            .map(|(l, w)| {
                let beta = if l == last {
                    config.beta_output
                } else {
                    config.beta_hidden
                };
                init_layer(
                    &mut rng,
                    w[0],
                    w[1],
                    config.init_gain,
                    beta,
                    config.threshold,
                )
            })
            .collect();
        let p = base_rate.clamp(1e-4, 1.0 - 1e-4);
        Self {
            layers,
            w_rate: vec![1.0; outputs],
            w_mem: vec![0.0; outputs],
            bias: vec![(p / (1.0 - p)).ln(); outputs],
            steps: config.steps,
        }
    }

    /// Output columns.
    pub fn outputs(&self) -> usize {
        self.layers[self.layers.len() - 1].outputs
    }

    /// The network as a model file value, with its readout as the calibration.
    pub fn to_model(&self, mut meta: ModelMeta) -> Result<SnnModel, TrainError> {
        meta.calibration = Calibration::Platt {
            w_rate: self.w_rate.clone(),
            w_mem: self.w_mem.clone(),
            bias: self.bias.clone(),
        };
        Ok(SnnModel::new(self.layers.clone(), self.steps, meta)?)
    }
}

/// A `Linear -> Leaky` layer with torch's `Linear` init (weight and bias
/// uniform in `±1/sqrt(inputs)`), the weight scaled by `gain`, reset by
/// subtraction. The trainer starts from it; the benchmarks build their
/// snnTorch-style workloads with it.
pub fn init_layer(
    rng: &mut ChaCha8Rng,
    inputs: usize,
    outputs: usize,
    gain: f32,
    beta: f32,
    threshold: f32,
) -> LifLayer {
    let bound = 1.0 / (inputs as f32).sqrt();
    let weight = (0..inputs * outputs)
        .map(|_| gain * rng.random_range(-bound..bound))
        .collect();
    let bias = (0..outputs)
        .map(|_| rng.random_range(-bound..bound))
        .collect();
    LifLayer::new(
        inputs,
        outputs,
        weight,
        bias,
        beta,
        threshold,
        ResetMechanism::Subtract,
    )
}

fn check_config(config: &TrainConfig) -> Result<(), TrainError> {
    let bad = |field, reason: String| Err(TrainError::Config { field, reason });
    if config.hidden.len() > limits::HIDDEN_LAYERS_MAX {
        return bad(
            "hidden",
            format!(
                "has {} layers, at most {}",
                config.hidden.len(),
                limits::HIDDEN_LAYERS_MAX
            ),
        );
    }
    if let Some(&w) = config
        .hidden
        .iter()
        .find(|&&w| w == 0 || w > limits::HIDDEN_WIDTH_MAX)
    {
        return bad(
            "hidden",
            format!("width {w} is not in 1..={}", limits::HIDDEN_WIDTH_MAX),
        );
    }
    if !(1..=cx_model::limits::STEPS_MAX).contains(&config.steps) {
        return bad(
            "steps",
            format!(
                "{} is not in 1..={}",
                config.steps,
                cx_model::limits::STEPS_MAX
            ),
        );
    }
    for (field, beta) in [
        ("beta_hidden", config.beta_hidden),
        ("beta_output", config.beta_output),
    ] {
        if !(0.0..=1.0).contains(&beta) {
            return bad(field, format!("{beta} is not in [0, 1]"));
        }
    }
    if !(config.threshold > 0.0 && config.threshold.is_finite()) {
        return bad(
            "threshold",
            format!("{} is not a positive number", config.threshold),
        );
    }
    if !(config.learning_rate > 0.0 && config.learning_rate.is_finite()) {
        return bad(
            "learning_rate",
            format!("{} is not a positive number", config.learning_rate),
        );
    }
    if !(0.0..1.0).contains(&config.weight_decay) {
        return bad(
            "weight_decay",
            format!("{} is not in [0, 1)", config.weight_decay),
        );
    }
    if !(1..=limits::EPOCHS_MAX).contains(&config.epochs) {
        return bad(
            "epochs",
            format!("{} is not in 1..={}", config.epochs, limits::EPOCHS_MAX),
        );
    }
    if !(1..=limits::BATCH_SIZE_MAX).contains(&config.batch_size) {
        return bad(
            "batch_size",
            format!(
                "{} is not in 1..={}",
                config.batch_size,
                limits::BATCH_SIZE_MAX
            ),
        );
    }
    if !(config.surrogate_slope > 0.0 && config.surrogate_slope.is_finite()) {
        return bad(
            "surrogate_slope",
            format!("{} is not a positive number", config.surrogate_slope),
        );
    }
    if !(config.init_gain > 0.0 && config.init_gain.is_finite()) {
        return bad(
            "init_gain",
            format!("{} is not a positive number", config.init_gain),
        );
    }
    Ok(())
}

/// Trains a network on `data` for `outputs` columns. `on_progress` is called
/// after every minibatch (for a progress bar); the result holds the network
/// and one summary per epoch.
pub fn train(
    config: &TrainConfig,
    data: Examples<'_>,
    outputs: usize,
    mut on_progress: impl FnMut(Progress),
) -> Result<(Network, Vec<EpochSummary>), TrainError> {
    check_config(config)?;
    data.check(outputs)?;
    let base_rate = data.label.iter().sum::<f32>() / data.len() as f32;
    let mut net = Network::init(config, data.inputs, outputs, base_rate);
    let mut grads = Gradients::zeros_like(&net);
    let mut adam = Adam::new(grads.len(), config.learning_rate, config.weight_decay);
    let mut traj = Trajectory::new(&net);
    let mut order: Vec<usize> = (0..data.len()).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x5eed_5eed);
    let mut history = Vec::with_capacity(config.epochs);
    for epoch in 0..config.epochs {
        order.shuffle(&mut rng);
        let mut loss_sum = 0.0f64;
        for (b, batch) in order.chunks(config.batch_size).enumerate() {
            grads.clear();
            for &i in batch {
                let row = Row {
                    x: data.row(i),
                    column: data.column[i] as usize,
                    label: data.label[i],
                };
                loss_sum += backprop(&net, config, &row, &mut traj, &mut grads);
            }
            adam.step(&mut net, &grads, batch.len());
            let rows_done = (b * config.batch_size + batch.len()).min(data.len());
            on_progress(Progress {
                epoch,
                rows_done,
                rows_total: data.len(),
                loss_mean: loss_sum / rows_done as f64,
            });
        }
        history.push(EpochSummary {
            epoch,
            loss_mean: loss_sum / data.len() as f64,
        });
    }
    Ok((net, history))
}

/// One labelled row.
struct Row<'a> {
    x: &'a [f32],
    column: usize,
    label: f32,
}

/// Gradients, shaped like the network's parameters.
#[derive(Clone, Debug)]
pub(crate) struct Gradients {
    pub(crate) weight: Vec<Vec<f32>>,
    pub(crate) bias: Vec<Vec<f32>>,
    pub(crate) w_rate: Vec<f32>,
    pub(crate) w_mem: Vec<f32>,
    pub(crate) out_bias: Vec<f32>,
}

impl Gradients {
    fn zeros_like(net: &Network) -> Self {
        Self {
            weight: net
                .layers
                .iter()
                .map(|l| vec![0.0; l.weight.len()])
                .collect(),
            bias: net.layers.iter().map(|l| vec![0.0; l.outputs]).collect(),
            w_rate: vec![0.0; net.outputs()],
            w_mem: vec![0.0; net.outputs()],
            out_bias: vec![0.0; net.outputs()],
        }
    }

    fn clear(&mut self) {
        self.weight
            .iter_mut()
            .chain(self.bias.iter_mut())
            .for_each(|g| g.fill(0.0));
        for g in [&mut self.w_rate, &mut self.w_mem, &mut self.out_bias] {
            g.fill(0.0);
        }
    }

    /// Number of scalar parameters.
    fn len(&self) -> usize {
        let layers: usize = self.weight.iter().chain(&self.bias).map(Vec::len).sum();
        layers + 3 * self.w_rate.len()
    }
}

/// The readout of column `o` after a forward pass: rate, final membrane,
/// logit and probability.
fn readout(net: &Network, traj: &Trajectory, o: usize) -> (f32, f32, f32, f32) {
    let last = net.layers.len() - 1;
    let steps = net.steps as usize;
    let count = (0..steps).filter(|&t| traj.spk_at(last, t)[o]).count() as f32;
    let rate = count / steps as f32;
    let mem_last = traj.mem_at(last, steps - 1)[o];
    let logit = net.w_rate[o] * rate + net.w_mem[o] * mem_last + net.bias[o];
    (rate, mem_last, logit, cx_model::sigmoid(logit))
}

/// Runs one row forward and backward, adds its gradients to `grads`, and
/// returns its loss.
fn backprop(
    net: &Network,
    config: &TrainConfig,
    row: &Row<'_>,
    traj: &mut Trajectory,
    grads: &mut Gradients,
) -> f64 {
    traj.forward(net, row.x);
    let o = row.column;
    let (rate, mem_last, _, p) = readout(net, traj, o);
    let y = row.label;
    let loss = -(y as f64 * (p.max(1e-7) as f64).ln()
        + (1.0 - y as f64) * ((1.0 - p).max(1e-7) as f64).ln());
    let dz = p - y;
    grads.w_rate[o] += dz * rate;
    grads.w_mem[o] += dz * mem_last;
    grads.out_bias[o] += dz;
    traj.seed_output_gradient(o, dz * net.w_rate[o] / net.steps as f32, dz * net.w_mem[o]);
    traj.backward(net, config.surrogate_slope, grads);
    loss
}

/// Probabilities of `data`'s rows under `net`, each for its own column,
/// computed with the training forward pass (the scalar reference).
pub fn predict(net: &Network, data: Examples<'_>) -> Vec<f32> {
    let mut traj = Trajectory::new(net);
    (0..data.len())
        .map(|i| {
            traj.forward(net, data.row(i));
            readout(net, &traj, data.column[i] as usize).3
        })
        .collect()
}

/// The highest probability over every output column of each of `data`'s
/// rows under `net` (one forward pass per row): the prediction a model
/// monitor compares serving against (`cx.reference`).
pub fn predict_top(net: &Network, data: Examples<'_>) -> Vec<f32> {
    let mut traj = Trajectory::new(net);
    (0..data.len())
        .map(|i| {
            traj.forward(net, data.row(i));
            (0..net.bias.len())
                .map(|o| readout(net, &traj, o).3)
                .fold(f32::NEG_INFINITY, f32::max)
        })
        .collect()
}

#[cfg(test)]
mod tests;
