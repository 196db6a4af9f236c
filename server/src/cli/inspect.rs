//! `cx model inspect FILE [--json]`.

use super::{load_model, model_path_name, write_json, InspectArgs};
use crate::error::{Error, Result};
use cx_model::{Calibration, LifLayer, SnnModel};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;

/// Most offer ids, metadata characters or vector values the text report shows in full.
const TEXT_LIST_MAX: usize = 16;
const TEXT_STRING_MAX: usize = 200;

/// What `cx model inspect --json` prints.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelReport {
    /// The model file as given.
    pub path: String,
    /// The content hash: hex SHA-256 of the file.
    pub id: String,
    /// Time steps per inference.
    pub steps: u32,
    /// Width of the input feature vector.
    pub inputs: usize,
    /// Output columns (offers).
    pub outputs: usize,
    /// Weights and biases over all layers.
    pub parameters: usize,
    /// The layers, input first.
    pub layers: Vec<LayerReport>,
    /// The `cx.*` metadata and every other key.
    pub metadata: MetaReport,
}

/// One `Linear -> Leaky` layer in a [`ModelReport`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerReport {
    /// 0-based index; the file's tensors are `fc{index+1}` / `lif{index+1}`.
    pub index: usize,
    /// Width of the layer's input.
    pub inputs: usize,
    /// Number of neurons.
    pub outputs: usize,
    /// Shape of `fc.weight`, `[outputs, inputs]`.
    pub weight_shape: [usize; 2],
    /// Shape of `fc.bias`, `[outputs]`.
    pub bias_shape: [usize; 1],
    /// Membrane decay per neuron.
    pub beta: Summary,
    /// Firing threshold per neuron.
    pub threshold: Summary,
    /// snnTorch's name of the reset mechanism: `subtract`, `zero` or `none`.
    pub reset: &'static str,
    /// snnTorch's `reset_mechanism_val`.
    pub reset_mechanism_val: i64,
    /// The value a spike carries into the next layer.
    pub graded_spikes_factor: f32,
}

/// A per-neuron parameter: whether every neuron shares one value, its
/// range, and the values themselves.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// Whether every neuron has the same value.
    pub uniform: bool,
    /// Smallest value.
    pub min: f32,
    /// Largest value.
    pub max: f32,
    /// Mean value.
    pub mean: f32,
    /// One value per neuron.
    pub values: Vec<f32>,
}

impl Summary {
    /// Summarises `values`; an empty slice gives zeros.
    pub fn of(values: &[f32]) -> Self {
        let min = values.iter().copied().reduce(f32::min).unwrap_or(0.0);
        let max = values.iter().copied().reduce(f32::max).unwrap_or(0.0);
        let sum: f64 = values.iter().map(|&v| v as f64).sum();
        Self {
            uniform: values.windows(2).all(|w| w[0] == w[1]),
            min,
            max,
            mean: (sum / values.len().max(1) as f64) as f32,
            values: values.to_vec(),
        }
    }

    /// One value, or `per-neuron: min .., max .., mean .. (n values)`.
    fn text(&self) -> String {
        if self.uniform {
            format!("{}", self.min)
        } else {
            format!(
                "per-neuron: min {}, max {}, mean {} ({} values)",
                self.min,
                self.max,
                self.mean,
                self.values.len()
            )
        }
    }
}

/// The metadata part of a [`ModelReport`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MetaReport {
    /// `cx.name`.
    pub name: String,
    /// `cx.version`.
    pub version: String,
    /// `cx.feature_schema_id`, if any.
    pub feature_schema_id: Option<String>,
    /// `cx.offer_ids`: offer id of each output column.
    pub offer_ids: Vec<u64>,
    /// `cx.calibration`, as stored (`{"method": "spike_rate"}` by default).
    pub calibration: Calibration,
    /// Every other metadata key, verbatim.
    pub extra: BTreeMap<String, String>,
}

impl ModelReport {
    /// The report for `model`, loaded from `path`.
    pub fn of(model: &SnnModel, path: &str) -> Self {
        let meta = model.meta();
        Self {
            path: path.into(),
            id: model.id().to_string(),
            steps: model.steps(),
            inputs: model.inputs(),
            outputs: model.outputs(),
            parameters: model
                .layers()
                .iter()
                .map(|l| l.weight.len() + l.bias.len())
                .sum(),
            layers: model
                .layers()
                .iter()
                .enumerate()
                .map(layer_report)
                .collect(),
            metadata: MetaReport {
                name: meta.name.clone(),
                version: meta.version.clone(),
                feature_schema_id: meta.feature_schema_id.clone(),
                offer_ids: meta.offer_ids.clone(),
                calibration: meta.calibration.clone(),
                extra: meta.extra.clone(),
            },
        }
    }

    /// The human-readable report.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let meta = &self.metadata;
        // Writing to a String cannot fail.
        let _ = writeln!(s, "model:          {}", clean(&self.path));
        let _ = writeln!(s, "id (sha256):    {}", self.id);
        let _ = writeln!(s, "name:           {}", clean(&meta.name));
        let _ = writeln!(s, "version:        {}", clean(&meta.version));
        let schema = meta
            .feature_schema_id
            .as_deref()
            .map_or("(none)".into(), clean);
        let _ = writeln!(s, "feature schema: {schema}");
        let _ = writeln!(s, "steps (T):      {}", self.steps);
        let _ = writeln!(s, "inputs:         {}", self.inputs);
        let _ = writeln!(s, "outputs:        {}", self.outputs);
        let _ = writeln!(s, "parameters:     {}", self.parameters);
        let _ = writeln!(s, "offer ids:      {}", list(&meta.offer_ids));
        let _ = writeln!(s, "calibration:    {}", calibration_text(&meta.calibration));
        let _ = writeln!(s, "layers:");
        for l in &self.layers {
            let n = l.index + 1;
            let _ = writeln!(
                s,
                "  layer {} (fc{n} -> lif{n}): {} -> {}",
                l.index, l.inputs, l.outputs
            );
            let _ = writeln!(
                s,
                "    fc{n}.weight [{}, {}], fc{n}.bias [{}]",
                l.weight_shape[0], l.weight_shape[1], l.bias_shape[0]
            );
            let _ = writeln!(s, "    beta:                 {}", l.beta.text());
            let _ = writeln!(s, "    threshold:            {}", l.threshold.text());
            let _ = writeln!(
                s,
                "    reset:                {} (reset_mechanism_val {})",
                l.reset, l.reset_mechanism_val
            );
            let _ = writeln!(s, "    graded_spikes_factor: {}", l.graded_spikes_factor);
        }
        if meta.extra.is_empty() {
            let _ = writeln!(s, "other metadata: (none)");
        } else {
            let _ = writeln!(s, "other metadata:");
            for (key, value) in &meta.extra {
                let _ = writeln!(s, "  {} = {}", clean(key), clean(value));
            }
        }
        s
    }
}

fn layer_report((index, layer): (usize, &LifLayer)) -> LayerReport {
    LayerReport {
        index,
        inputs: layer.inputs,
        outputs: layer.outputs,
        weight_shape: [layer.outputs, layer.inputs],
        bias_shape: [layer.bias.len()],
        beta: Summary::of(&layer.beta),
        threshold: Summary::of(&layer.threshold),
        reset: layer.reset.name(),
        reset_mechanism_val: layer.reset.val(),
        graded_spikes_factor: layer.graded_spikes_factor,
    }
}

fn calibration_text(calibration: &Calibration) -> String {
    match calibration {
        Calibration::SpikeRate => "spike_rate (p = spike_count / T)".into(),
        Calibration::Platt {
            w_rate,
            w_mem,
            bias,
        } => format!(
            "platt (p = sigmoid(w_rate * spike_count / T + w_mem * mem_last + bias)); \
             w_rate {}; w_mem {}; bias {}",
            Summary::of(w_rate).text(),
            Summary::of(w_mem).text(),
            Summary::of(bias).text()
        ),
    }
}

/// The first values of a list, then how many there are.
fn list(values: &[u64]) -> String {
    let shown: Vec<String> = values
        .iter()
        .take(TEXT_LIST_MAX)
        .map(u64::to_string)
        .collect();
    let mut text = shown.join(", ");
    if values.len() > TEXT_LIST_MAX {
        let _ = write!(text, ", ... ({} in all)", values.len());
    }
    text
}

/// A string from the file, safe for a terminal: control characters escaped,
/// and cut at [`TEXT_STRING_MAX`] characters.
fn clean(text: &str) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == TEXT_STRING_MAX {
            let _ = write!(out, "... ({} bytes in all)", text.len());
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Runs the command: loads the model and prints its report.
pub fn inspect(args: &InspectArgs, stdout: &mut dyn Write) -> Result<()> {
    let model = load_model(args.model.as_deref())?;
    let report = ModelReport::of(&model, &model_path_name(args.model.as_deref()));
    if args.json {
        write_json(stdout, &report, args.pretty)
    } else {
        stdout
            .write_all(report.text().as_bytes())
            .and_then(|()| stdout.flush())
            .map_err(Error::Output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cx_model::{ModelMeta, ResetMechanism};

    fn model() -> SnnModel {
        let mut first = LifLayer::new(
            2,
            3,
            vec![0.5; 6],
            vec![0.0; 3],
            0.9,
            1.0,
            ResetMechanism::Zero,
        );
        first.threshold = vec![0.5, 1.0, 1.5];
        let second = LifLayer::new(
            3,
            1,
            vec![1.0; 3],
            vec![0.0],
            0.8,
            1.0,
            ResetMechanism::None,
        );
        let mut meta = ModelMeta::defaults(1);
        meta.name = "evil\u{1b}[2Jname".into();
        meta.offer_ids = vec![42];
        meta.extra.insert("exported_by".into(), "x".repeat(300));
        SnnModel::new(vec![first, second], 7, meta).unwrap()
    }

    #[test]
    fn text_report_shows_layers_and_summaries() {
        let text = ModelReport::of(&model(), "m.safetensors").text();
        assert!(text.contains("layer 0 (fc1 -> lif1): 2 -> 3"), "{text}");
        assert!(text.contains("layer 1 (fc2 -> lif2): 3 -> 1"), "{text}");
        assert!(text.contains("fc1.weight [3, 2], fc1.bias [3]"), "{text}");
        assert!(
            text.contains("threshold:            per-neuron: min 0.5, max 1.5, mean 1 (3 values)"),
            "{text}"
        );
        assert!(text.contains("beta:                 0.9\n"), "{text}");
        assert!(text.contains("reset:                zero"), "{text}");
        assert!(text.contains("reset:                none"), "{text}");
        assert!(text.contains("steps (T):      7\n"), "{text}");
        assert!(text.contains("offer ids:      42\n"), "{text}");
        assert!(text.contains("parameters:     13\n"), "{text}");
        assert!(!text.contains('\u{1b}'), "control characters are escaped");
        assert!(text.contains("(300 bytes in all)"), "{text}");
    }

    #[test]
    fn long_lists_are_cut() {
        let ids: Vec<u64> = (0..100).collect();
        let text = list(&ids);
        assert!(text.starts_with("0, 1, 2"));
        assert!(text.ends_with("15, ... (100 in all)"), "{text}");
    }

    #[test]
    fn summary_of_uniform_and_varied_values() {
        let s = Summary::of(&[2.0, 2.0]);
        assert!(s.uniform);
        assert_eq!(s.text(), "2");
        let s = Summary::of(&[1.0, 3.0]);
        assert!(!s.uniform);
        assert_eq!((s.min, s.max, s.mean), (1.0, 3.0, 2.0));
    }
}
