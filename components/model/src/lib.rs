//! The spiking-network model: a feed-forward stack of `Linear -> Leaky`
//! layers, loaded from the safetensors state_dict that snnTorch users export;
//! and the logistic-regression baseline that serves as its fallback scorer.
//!
//! This crate owns the model ([`SnnModel`], [`LifLayer`], [`ModelMeta`],
//! [`ModelId`]), its file format and validation, calibration
//! ([`Calibration`]), the caller-owned output buffers of a forward pass
//! ([`Readout`]), and the logistic baseline's inference and file format
//! ([`logistic::Logistic`]; training it is `cx-train`'s). Every fallible call
//! returns [`Error`].
//!
//! Data layout: weights are kept exactly as torch stores them, `[out][in]`
//! row-major, so a model round-trips through a file unchanged and the scalar
//! reference reads straight from the equations. Kernels that want another
//! layout (the SIMD backend wants `[in][out]`, padded to the lane width)
//! repack once at initialisation, never per call.
//!
//! `docs/MODEL_FORMAT.md` documents the tensors, the metadata keys, their
//! defaults and the limits enforced by [`SnnModel::from_bytes`].

mod calibration;
pub mod error;
mod file;
pub mod logistic;
pub mod readout;

pub use calibration::{sigmoid, Calibration};
pub use error::{Error, Result};
pub use file::{read_f32_tensors, write_f32_tensors, F32Tensors};
pub use logistic::Logistic;
pub use readout::Readout;

use std::fmt;

/// Documented limits on what a model file may hold. A file beyond any of them
/// is refused with [`Error::LimitExceeded`] or [`Error::FileTooLarge`].
pub mod limits {
    /// Largest model file accepted, in bytes (512 MiB).
    pub const FILE_BYTES_MAX: u64 = 512 << 20;
    /// Most `Linear -> Leaky` layers in one model.
    pub const LAYERS_MAX: usize = 8;
    /// Widest layer input or output, in neurons or features.
    pub const WIDTH_MAX: usize = 16_384;
    /// Most weights (all layers together).
    pub const PARAMS_MAX: usize = 64 << 20;
    /// Most time steps `T` a model may ask for.
    pub const STEPS_MAX: u32 = 256;
}

/// How a Leaky neuron resets after it fires; snnTorch's `reset_mechanism_val`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetMechanism {
    /// `0`: subtract the threshold from the membrane (snnTorch's default).
    Subtract,
    /// `1`: set the membrane to zero.
    Zero,
    /// `2`: no reset.
    None,
}

impl ResetMechanism {
    /// The mechanism for snnTorch's `reset_mechanism_val`, if the value is one of 0, 1, 2.
    pub fn from_val(val: i64) -> Option<Self> {
        match val {
            0 => Some(Self::Subtract),
            1 => Some(Self::Zero),
            2 => Some(Self::None),
            _ => None,
        }
    }

    /// snnTorch's `reset_mechanism_val` for this mechanism.
    pub fn val(self) -> i64 {
        match self {
            Self::Subtract => 0,
            Self::Zero => 1,
            Self::None => 2,
        }
    }

    /// snnTorch's name for the mechanism.
    pub fn name(self) -> &'static str {
        match self {
            Self::Subtract => "subtract",
            Self::Zero => "zero",
            Self::None => "none",
        }
    }
}

/// One `Linear(inputs, outputs) -> Leaky` layer.
///
/// `beta` and `threshold` hold one value per output neuron; a file that
/// stores a scalar (snnTorch's usual case) is broadcast on load.
#[derive(Clone, Debug, PartialEq)]
pub struct LifLayer {
    /// Width of the layer's input.
    pub inputs: usize,
    /// Number of neurons.
    pub outputs: usize,
    /// `fc.weight`, `[outputs][inputs]` row-major (torch layout).
    pub weight: Vec<f32>,
    /// `fc.bias`, `[outputs]`.
    pub bias: Vec<f32>,
    /// Membrane decay per neuron, each in `[0, 1]`.
    pub beta: Vec<f32>,
    /// Firing threshold per neuron, each `> 0`.
    pub threshold: Vec<f32>,
    /// What happens to the membrane after a spike.
    pub reset: ResetMechanism,
    /// The value a spike carries into the next layer (snnTorch's `graded_spikes_factor`, usually 1).
    pub graded_spikes_factor: f32,
}

impl LifLayer {
    /// A layer with scalar beta and threshold broadcast to every neuron.
    pub fn new(
        inputs: usize,
        outputs: usize,
        weight: Vec<f32>,
        bias: Vec<f32>,
        beta: f32,
        threshold: f32,
        reset: ResetMechanism,
    ) -> Self {
        Self {
            inputs,
            outputs,
            weight,
            bias,
            beta: vec![beta; outputs],
            threshold: vec![threshold; outputs],
            reset,
            graded_spikes_factor: 1.0,
        }
    }

    /// Row `o` of the weight matrix: the weights into neuron `o`.
    pub fn weight_row(&self, o: usize) -> &[f32] {
        &self.weight[o * self.inputs..(o + 1) * self.inputs]
    }
}

/// The model's identity: the SHA-256 of its file bytes, so that
/// `sha256sum model.safetensors` prints the same value.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModelId(pub [u8; 32]);

impl ModelId {
    /// The hash of `bytes`.
    pub fn of_bytes(bytes: &[u8]) -> Self {
        use sha2::Digest;
        Self(sha2::Sha256::digest(bytes).into())
    }

    /// The first eight bytes as an integer, for cache keys.
    pub fn as_u64(&self) -> u64 {
        let mut first = [0u8; 8];
        first.copy_from_slice(&self.0[..8]);
        u64::from_le_bytes(first)
    }
}

impl fmt::Display for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ModelId({self})")
    }
}

/// Our own metadata, stored under `cx.*` keys. Every field has a documented
/// default, so a plain snnTorch export loads too.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelMeta {
    /// `cx.name`; default `"unnamed"`.
    pub name: String,
    /// `cx.version`; default `"0"`.
    pub version: String,
    /// `cx.feature_schema_id`: the feature schema the model was trained with; default none.
    pub feature_schema_id: Option<String>,
    /// `cx.offer_ids`: offer id of each output column; default column `i` is offer `i`.
    pub offer_ids: Vec<u64>,
    /// `cx.calibration`: readout to probability; default [`Calibration::SpikeRate`].
    pub calibration: Calibration,
    /// Every other metadata key, kept verbatim (e.g. `exported_by`, `cx.training`).
    pub extra: std::collections::BTreeMap<String, String>,
}

impl ModelMeta {
    /// The defaults for a model with `outputs` output columns.
    pub fn defaults(outputs: usize) -> Self {
        Self {
            name: "unnamed".into(),
            version: "0".into(),
            feature_schema_id: None,
            offer_ids: (0..outputs as u64).collect(),
            calibration: Calibration::SpikeRate,
            extra: Default::default(),
        }
    }
}

/// A validated spiking network: layers, time steps, metadata and identity.
///
/// Construct it with [`SnnModel::from_bytes`], [`SnnModel::load`] or
/// [`SnnModel::new`]; all three validate, so a value of this type always
/// satisfies the rules in `docs/MODEL_FORMAT.md`.
#[derive(Clone, Debug)]
pub struct SnnModel {
    layers: Vec<LifLayer>,
    steps: u32,
    meta: ModelMeta,
    id: ModelId,
}

impl SnnModel {
    /// Validates the parts and builds a model. Its identity is the hash of the
    /// bytes [`SnnModel::to_bytes`] writes for it.
    pub fn new(layers: Vec<LifLayer>, steps: u32, meta: ModelMeta) -> Result<Self> {
        validate(&layers, steps, &meta)?;
        let mut model = Self {
            layers,
            steps,
            meta,
            id: ModelId([0; 32]),
        };
        model.id = ModelId::of_bytes(&model.to_bytes());
        Ok(model)
    }

    /// Reads and validates a model file.
    pub fn load(path: impl AsRef<std::path::Path>) -> Result<Self> {
        let path = path.as_ref();
        let io_err = |source| Error::Io {
            path: path.display().to_string(),
            source,
        };
        let bytes_len = std::fs::metadata(path).map_err(io_err)?.len();
        if bytes_len > limits::FILE_BYTES_MAX {
            return Err(Error::FileTooLarge {
                bytes: bytes_len,
                limit: limits::FILE_BYTES_MAX,
            });
        }
        Self::from_bytes(&std::fs::read(path).map_err(io_err)?)
    }

    /// Parses and validates a model from the bytes of a safetensors file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() as u64 > limits::FILE_BYTES_MAX {
            return Err(Error::FileTooLarge {
                bytes: bytes.len() as u64,
                limit: limits::FILE_BYTES_MAX,
            });
        }
        let (layers, steps, meta) = file::parse(bytes)?;
        validate(&layers, steps, &meta)?;
        Ok(Self {
            layers,
            steps,
            meta,
            id: ModelId::of_bytes(bytes),
        })
    }

    /// The model as safetensors bytes: the snnTorch state_dict tensors plus our
    /// metadata. Deterministic: the same model always gives the same bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        file::write(&self.layers, self.steps, &self.meta)
    }

    /// Writes the model to `path`.
    pub fn save(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        let path = path.as_ref();
        std::fs::write(path, self.to_bytes()).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })
    }

    /// The layers, input first.
    pub fn layers(&self) -> &[LifLayer] {
        &self.layers
    }

    /// Time steps per inference.
    pub fn steps(&self) -> u32 {
        self.steps
    }

    /// Width of the input feature vector.
    pub fn inputs(&self) -> usize {
        self.layers[0].inputs
    }

    /// Number of output columns (offers).
    pub fn outputs(&self) -> usize {
        self.layers[self.layers.len() - 1].outputs
    }

    /// Our metadata.
    pub fn meta(&self) -> &ModelMeta {
        &self.meta
    }

    /// The content hash.
    pub fn id(&self) -> ModelId {
        self.id
    }
}

/// Checks every rule of `docs/MODEL_FORMAT.md`; the error names the tensor or key.
fn validate(layers: &[LifLayer], steps: u32, meta: &ModelMeta) -> Result<()> {
    if layers.is_empty() {
        return Err(Error::MissingTensor {
            name: "fc1.weight".into(),
        });
    }
    check_limit("number of layers", layers.len(), limits::LAYERS_MAX)?;
    if !(1..=limits::STEPS_MAX).contains(&steps) {
        return Err(Error::BadMetadata {
            key: "steps".into(),
            reason: format!("{steps} is not between 1 and {}", limits::STEPS_MAX),
        });
    }
    let mut params = 0usize;
    for (i, layer) in layers.iter().enumerate() {
        validate_layer(
            i + 1,
            layer,
            if i == 0 { None } else { Some(&layers[i - 1]) },
        )?;
        params += layer.weight.len();
    }
    check_limit("total weight count", params, limits::PARAMS_MAX)?;
    let outputs = layers[layers.len() - 1].outputs;
    if meta.offer_ids.len() != outputs {
        return Err(Error::BadMetadata {
            key: "cx.offer_ids".into(),
            reason: format!(
                "has {} ids but the last layer has {outputs} output columns",
                meta.offer_ids.len()
            ),
        });
    }
    if let Some((first, second, id)) = first_repeated_id(&meta.offer_ids) {
        return Err(Error::BadMetadata {
            key: "cx.offer_ids".into(),
            reason: format!(
                "repeats offer {id} (columns {first} and {second}); each column must score \
                 its own offer, or all but one of the repeated columns would go unscored"
            ),
        });
    }
    if let Some(key) = meta
        .extra
        .keys()
        .find(|k| file::KNOWN_KEYS.contains(&k.as_str()))
    {
        return Err(Error::BadMetadata {
            key: key.clone(),
            reason: "is written from its own field, so it cannot also be an extra key".into(),
        });
    }
    meta.calibration.validate(outputs)
}

fn validate_layer(n: usize, layer: &LifLayer, prev: Option<&LifLayer>) -> Result<()> {
    check_limit(
        &format!("fc{n} input width"),
        layer.inputs,
        limits::WIDTH_MAX,
    )?;
    check_limit(
        &format!("fc{n} output width"),
        layer.outputs,
        limits::WIDTH_MAX,
    )?;
    if layer.inputs == 0 || layer.outputs == 0 {
        return Err(Error::WrongShape {
            name: format!("fc{n}.weight"),
            expected: "non-empty [out, in]".into(),
            found: vec![layer.outputs, layer.inputs],
        });
    }
    if let Some(prev) = prev {
        if prev.outputs != layer.inputs {
            return Err(Error::WrongShape {
                name: format!("fc{n}.weight"),
                expected: format!("[_, {}] to chain with fc{}", prev.outputs, n - 1),
                found: vec![layer.outputs, layer.inputs],
            });
        }
    }
    let expect_len = |name: String, len: usize, want: usize, shape: Vec<usize>| {
        if len == want {
            Ok(())
        } else {
            Err(Error::WrongShape {
                name,
                expected: format!("{want} values"),
                found: shape,
            })
        }
    };
    expect_len(
        format!("fc{n}.weight"),
        layer.weight.len(),
        layer.outputs * layer.inputs,
        vec![layer.weight.len()],
    )?;
    expect_len(
        format!("fc{n}.bias"),
        layer.bias.len(),
        layer.outputs,
        vec![layer.bias.len()],
    )?;
    expect_len(
        format!("lif{n}.beta"),
        layer.beta.len(),
        layer.outputs,
        vec![layer.beta.len()],
    )?;
    expect_len(
        format!("lif{n}.threshold"),
        layer.threshold.len(),
        layer.outputs,
        vec![layer.threshold.len()],
    )?;
    check_finite(&format!("fc{n}.weight"), &layer.weight)?;
    check_finite(&format!("fc{n}.bias"), &layer.bias)?;
    check_finite(&format!("lif{n}.beta"), &layer.beta)?;
    check_finite(&format!("lif{n}.threshold"), &layer.threshold)?;
    check_finite(
        &format!("lif{n}.graded_spikes_factor"),
        &[layer.graded_spikes_factor],
    )?;
    check_range(
        &format!("lif{n}.beta"),
        &layer.beta,
        "beta must be in [0, 1]",
        |b| (0.0..=1.0).contains(&b),
    )?;
    check_range(
        &format!("lif{n}.threshold"),
        &layer.threshold,
        "threshold must be > 0",
        |t| t > 0.0,
    )
}

fn check_limit(what: &str, value: usize, limit: usize) -> Result<()> {
    if value > limit {
        return Err(Error::LimitExceeded {
            what: what.into(),
            value,
            limit,
        });
    }
    Ok(())
}

/// Fails with [`Error::NonFinite`] on the first NaN or infinity in `values`.
pub(crate) fn check_finite(name: &str, values: &[f32]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(index) => Err(Error::NonFinite {
            name: name.into(),
            index,
            value: values[index],
        }),
    }
}

fn check_range(
    name: &str,
    values: &[f32],
    rule: &'static str,
    ok: impl Fn(f32) -> bool,
) -> Result<()> {
    match values.iter().position(|&v| !ok(v)) {
        None => Ok(()),
        Some(index) => Err(Error::OutOfRange {
            name: name.into(),
            index,
            value: values[index] as f64,
            rule,
        }),
    }
}

/// The first offer id that appears twice: the two columns and the id.
/// Sorts a copy of (id, column) pairs: O(n log n) for the at most
/// [`limits::WIDTH_MAX`] columns a model has.
fn first_repeated_id(ids: &[u64]) -> Option<(usize, usize, u64)> {
    let mut pairs: Vec<(u64, usize)> = ids.iter().copied().zip(0..).collect();
    pairs.sort_unstable();
    pairs
        .windows(2)
        .filter(|w| w[0].0 == w[1].0)
        .map(|w| (w[0].1, w[1].1, w[0].0))
        .min_by_key(|&(_, second, _)| second)
}
