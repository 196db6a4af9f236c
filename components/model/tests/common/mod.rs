//! Helpers shared by the model-file integration tests: the committed fixture,
//! the optional `../shared` exports, a builder for hand-crafted (often
//! invalid) safetensors files and assertions on loader errors.
#![allow(dead_code)]

use cx_model::{Calibration, Error, LifLayer, ModelMeta, ResetMechanism, SnnModel};
use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// The real snnTorch export 13 -> 37 -> 5, T = 10 (copy of `../shared/data/snn/snntorch_net_small.safetensors`).
pub const SMALL: &[u8] = include_bytes!("../fixtures/snntorch_net_small.safetensors");

/// Path of a committed fixture.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures")).join(name)
}

/// A file under `../shared/data` (relative to the workspace root), or `None`
/// with a message saying the test is skipped.
pub fn shared(rel: &str) -> Option<PathBuf> {
    let path =
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data")).join(rel);
    if path.exists() {
        Some(path)
    } else {
        eprintln!(
            "skipping: {} is absent (../shared is not laid out here)",
            path.display()
        );
        None
    }
}

/// The SHA-256 of `bytes` as lowercase hex, computed independently of `ModelId`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Little-endian bytes of `values`.
pub fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// One tensor of a [`Craft`]: dtype, shape and raw little-endian bytes.
#[derive(Clone, Debug)]
pub struct RawTensor {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

/// A safetensors file under construction. Unlike `SnnModel::to_bytes` it can
/// hold anything the container allows (wrong dtypes, shapes, names, metadata);
/// `bytes` serialises it with the `safetensors` crate.
#[derive(Clone, Debug, Default)]
pub struct Craft {
    pub tensors: BTreeMap<String, RawTensor>,
    pub meta: HashMap<String, String>,
}

impl Craft {
    /// Every tensor and metadata entry of a valid safetensors file.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let st = SafeTensors::deserialize(bytes).expect("a valid container");
        let (_, header) = SafeTensors::read_metadata(bytes).expect("a valid container");
        let tensors = st
            .tensors()
            .into_iter()
            .map(|(name, view)| {
                let raw = RawTensor {
                    dtype: view.dtype(),
                    shape: view.shape().to_vec(),
                    data: view.data().to_vec(),
                };
                (name, raw)
            })
            .collect();
        Self {
            tensors,
            meta: header.metadata().clone().unwrap_or_default(),
        }
    }

    /// The real snnTorch export (13 -> 37 -> 5, T = 10), ready to be broken.
    pub fn small() -> Self {
        Self::from_bytes(SMALL)
    }

    /// No tensors, no metadata.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Sets (adds or replaces) a tensor with raw bytes.
    pub fn raw(mut self, name: &str, dtype: Dtype, shape: &[usize], data: Vec<u8>) -> Self {
        let raw = RawTensor {
            dtype,
            shape: shape.to_vec(),
            data,
        };
        self.tensors.insert(name.into(), raw);
        self
    }

    /// Sets an F32 tensor.
    pub fn f32(self, name: &str, shape: &[usize], values: &[f32]) -> Self {
        self.raw(name, Dtype::F32, shape, f32_bytes(values))
    }

    /// Sets an F32 scalar (shape `[]`).
    pub fn scalar(self, name: &str, value: f32) -> Self {
        self.f32(name, &[], &[value])
    }

    /// Sets an I64 scalar (shape `[]`).
    pub fn i64(self, name: &str, value: i64) -> Self {
        self.raw(name, Dtype::I64, &[], value.to_le_bytes().to_vec())
    }

    /// Removes a tensor, which must be present.
    pub fn without(mut self, name: &str) -> Self {
        assert!(
            self.tensors.remove(name).is_some(),
            "no tensor `{name}` to remove"
        );
        self
    }

    /// Renames a tensor, which must be present.
    pub fn rename(mut self, from: &str, to: &str) -> Self {
        let t = self
            .tensors
            .remove(from)
            .unwrap_or_else(|| panic!("no tensor `{from}`"));
        self.tensors.insert(to.into(), t);
        self
    }

    /// The F32 values of a tensor, which must be present and F32.
    pub fn values(&self, name: &str) -> Vec<f32> {
        let t = &self.tensors[name];
        assert_eq!(t.dtype, Dtype::F32, "{name}");
        t.data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }

    /// Replaces element `index` of an F32 tensor, keeping its shape.
    pub fn poke(self, name: &str, index: usize, value: f32) -> Self {
        let mut values = self.values(name);
        values[index] = value;
        let shape = self.tensors[name].shape.clone();
        self.f32(name, &shape, &values)
    }

    /// Sets a metadata entry.
    pub fn meta(mut self, key: &str, value: &str) -> Self {
        self.meta.insert(key.into(), value.into());
        self
    }

    /// Removes a metadata entry, which must be present.
    pub fn without_meta(mut self, key: &str) -> Self {
        assert!(
            self.meta.remove(key).is_some(),
            "no metadata `{key}` to remove"
        );
        self
    }

    /// The file bytes, written by the `safetensors` crate.
    pub fn bytes(&self) -> Vec<u8> {
        let views: Vec<(&str, TensorView<'_>)> = self
            .tensors
            .iter()
            .map(|(name, t)| {
                let view = TensorView::new(t.dtype, t.shape.clone(), &t.data)
                    .unwrap_or_else(|e| panic!("tensor `{name}` is inconsistent: {e}"));
                (name.as_str(), view)
            })
            .collect();
        let meta = (!self.meta.is_empty()).then(|| self.meta.clone());
        safetensors::serialize(views, meta).expect("the safetensors crate serialises it")
    }

    /// `SnnModel::from_bytes` on the crafted file.
    pub fn load(&self) -> Result<SnnModel, Error> {
        SnnModel::from_bytes(&self.bytes())
    }
}

/// A layer `inputs -> outputs` with distinct, deterministic weights.
pub fn layer(
    inputs: usize,
    outputs: usize,
    beta: f32,
    threshold: f32,
    reset: ResetMechanism,
) -> LifLayer {
    let weight = (0..inputs * outputs)
        .map(|k| ((k * 37 % 101) as f32 - 50.0) / 64.0)
        .collect();
    let bias = (0..outputs).map(|o| o as f32 / 8.0 - 0.25).collect();
    LifLayer::new(inputs, outputs, weight, bias, beta, threshold, reset)
}

/// A small valid 3-layer model exercising every metadata field: per-neuron
/// beta and threshold, every reset mechanism, a non-default graded spike
/// factor, Platt calibration and extra keys.
pub fn rich_model_parts() -> (Vec<LifLayer>, u32, ModelMeta) {
    let mut l1 = layer(6, 4, 0.9, 1.0, ResetMechanism::Subtract);
    l1.beta = vec![0.0, 0.25, 0.5, 1.0];
    l1.threshold = vec![0.5, 1.0, 1.5, 1e-3];
    let mut l2 = layer(4, 5, 0.8, 0.75, ResetMechanism::Zero);
    l2.graded_spikes_factor = 0.5;
    let l3 = layer(5, 3, 0.95, 2.0, ResetMechanism::None);
    let meta = ModelMeta {
        name: "offer-ranker".into(),
        version: "2026.03.1".into(),
        feature_schema_id: Some("schema-v7".into()),
        offer_ids: vec![101, 7, u64::MAX],
        calibration: Calibration::Platt {
            w_rate: vec![4.1, -0.5, 1e-7],
            w_mem: vec![0.3, 0.0, -2.25],
            bias: vec![-3.2, 0.1, 12.5],
        },
        extra: [
            ("exported_by", "snntorch 1.0.0"),
            ("cx.training", r#"{"epochs":12,"lr":0.001}"#),
            ("notes", "unicode ✓ and \"quotes\"\nand a newline"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    };
    (vec![l1, l2, l3], 12, meta)
}

/// [`rich_model_parts`] as a model.
pub fn rich_model() -> SnnModel {
    let (layers, steps, meta) = rich_model_parts();
    SnnModel::new(layers, steps, meta).expect("the rich model is valid")
}

/// The error of `result`, failing the test if it is `Ok`.
#[track_caller]
pub fn unwrap_err<T>(result: Result<T, Error>) -> Error {
    match result {
        Ok(_) => panic!("expected an error, got Ok"),
        Err(e) => e,
    }
}

/// The tensor, key, path or quantity an error names, from its structured fields.
pub fn subject(err: &Error) -> Option<&str> {
    match err {
        Error::Io { path, .. } => Some(path),
        Error::MissingTensor { name }
        | Error::WrongDtype { name, .. }
        | Error::WrongShape { name, .. }
        | Error::NonFinite { name, .. }
        | Error::OutOfRange { name, .. } => Some(name),
        Error::BadMetadata { key, .. } => Some(key),
        Error::LimitExceeded { what, .. } => Some(what),
        _ => None,
    }
}

/// Asserts that `err` names `name` both in its structured field and in its message.
#[track_caller]
pub fn assert_names(err: &Error, name: &str) {
    assert_eq!(
        subject(err),
        Some(name),
        "error {err:?} names the wrong thing"
    );
    let msg = err.to_string();
    assert!(
        msg.contains(name),
        "message `{msg}` does not mention `{name}`"
    );
}

/// `assert_err!(result, Pattern, "name")`: `result` is an error matching
/// `Pattern` that names `name` (field and message); evaluates to the error.
/// Bring it in with `#[macro_use] mod common;`.
macro_rules! assert_err {
    ($result:expr, $variant:pat, $name:expr) => {{
        let err = crate::common::unwrap_err($result);
        assert!(
            matches!(err, $variant),
            "expected {}, got {err:?}",
            stringify!($variant)
        );
        crate::common::assert_names(&err, $name);
        err
    }};
}
