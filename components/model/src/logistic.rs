//! The logistic-regression baseline: one weight vector and bias per output
//! column (offer), `p_o = sigmoid(w_o · x + b_o)`. It is the yardstick for
//! the spiking model's quality, and the engine's fallback scorer when a
//! model's output fails validation. This module owns its inference and its
//! file format; `cx-train` trains it.
//!
//! Layout: `weight` is `[outputs][inputs]` row-major, like a torch `Linear`,
//! so a file stores it as `lr.weight` / `lr.bias`.

use crate::error::{Error, Result};
use crate::{read_f32_tensors, sigmoid, write_f32_tensors};
use std::collections::BTreeMap;

/// Metadata key naming what a file holds; a logistic baseline says `logistic`.
pub const KIND_KEY: &str = "cx.kind";

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

    /// The baseline as a safetensors file: `lr.weight` `[outputs, inputs]`,
    /// `lr.bias` `[outputs]`, and `metadata` plus `cx.kind = logistic`.
    pub fn to_bytes(&self, metadata: &BTreeMap<String, String>) -> Vec<u8> {
        let mut metadata = metadata.clone();
        metadata.insert(KIND_KEY.into(), "logistic".into());
        write_f32_tensors(
            &[
                ("lr.bias", &[self.outputs], &self.bias),
                ("lr.weight", &[self.outputs, self.inputs], &self.weight),
            ],
            &metadata,
        )
    }

    /// Reads a baseline written by [`Logistic::to_bytes`], with its metadata.
    pub fn from_bytes(bytes: &[u8]) -> Result<(Self, BTreeMap<String, String>)> {
        let (tensors, metadata) = read_f32_tensors(bytes)?;
        if metadata.get(KIND_KEY).map(String::as_str) != Some("logistic") {
            return Err(Error::Baseline(format!(
                "metadata `{KIND_KEY}` is not `logistic`"
            )));
        }
        let (Some((w_shape, weight)), Some((b_shape, bias))) =
            (tensors.get("lr.weight"), tensors.get("lr.bias"))
        else {
            return Err(Error::Baseline(
                "tensors `lr.weight` and `lr.bias` are required".into(),
            ));
        };
        let (outputs, inputs) = match w_shape.as_slice() {
            &[o, i] if o > 0 && i > 0 => (o, i),
            other => {
                return Err(Error::Baseline(format!(
                    "`lr.weight` has shape {other:?}, expected [outputs, inputs]"
                )))
            }
        };
        if b_shape.as_slice() != [outputs] {
            return Err(Error::Baseline(format!(
                "`lr.bias` has shape {b_shape:?}, expected [{outputs}]"
            )));
        }
        if weight.iter().chain(bias).any(|v| !v.is_finite()) {
            return Err(Error::Baseline("a weight or bias is not finite".into()));
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
