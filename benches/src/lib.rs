//! Helpers shared by the benchmarks: reproducible models and inputs at the
//! benchmark shapes.
//!
//! The models here are *benchmark workloads*, not trained models: their
//! weights are drawn the way a freshly initialised snnTorch network's are
//! (torch's `Linear` init, scaled like `shared/data/snn/snntorch_network_trace.py`
//! so that the hidden layer fires at a realistic 10-35% rate). Nothing they
//! output is ever presented as a prediction.

use cx_backends::train::init_layer;
use cx_components::{ModelMeta, SnnModel};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A benchmark shape: inputs, hidden neurons, outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Input features `D`.
    pub inputs: usize,
    /// Hidden neurons `H`.
    pub hidden: usize,
    /// Output columns `O`.
    pub outputs: usize,
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}x{}", self.inputs, self.hidden, self.outputs)
    }
}

/// The two shapes the kernel benchmarks report.
pub const KERNEL_SHAPES: [Shape; 2] = [
    Shape {
        inputs: 64,
        hidden: 256,
        outputs: 16,
    },
    Shape {
        inputs: 256,
        hidden: 512,
        outputs: 64,
    },
];

/// A two-layer `Linear -> Leaky` network at `shape` with `steps` time steps,
/// initialised like the snnTorch reference script (fc1 x3, fc2 x4, beta 0.9
/// and 0.8, threshold 1, reset by subtraction).
pub fn snntorch_style_model(shape: Shape, steps: u32, seed: u64) -> SnnModel {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let layers = vec![
        init_layer(&mut rng, shape.inputs, shape.hidden, 3.0, 0.9, 1.0),
        init_layer(&mut rng, shape.hidden, shape.outputs, 4.0, 0.8, 1.0),
    ];
    let mut meta = ModelMeta::defaults(shape.outputs);
    meta.name = format!("bench-{shape}");
    SnnModel::new(layers, steps, meta).expect("benchmark model is valid")
}

/// `batch` dense input rows, uniform in `[-0.5, 1.5)` like the reference script.
pub fn dense_inputs(inputs: usize, batch: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..inputs * batch)
        .map(|_| rng.random_range(-0.5..1.5))
        .collect()
}
