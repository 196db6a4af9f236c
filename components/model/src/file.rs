//! Reading and writing the safetensors container.
//!
//! Reading goes through the `safetensors` crate, which checks the header and
//! every offset against the buffer. Writing is done here, because the crate
//! serialises metadata from a `HashMap` in random order, and a reproducible
//! model needs the same bytes for the same content (the identity is a hash of
//! them). The writer emits the format the crate reads: an 8-byte
//! little-endian header length, a JSON header padded with spaces to a
//! multiple of 8, then the tensor bytes.

use super::{Calibration, LifLayer, ModelMeta, ResetMechanism};
use crate::error::{Error, Result};
use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use std::collections::{BTreeMap, HashMap};

const FIELDS_FC: [&str; 2] = ["weight", "bias"];
const FIELDS_LIF: [&str; 4] = [
    "beta",
    "threshold",
    "reset_mechanism_val",
    "graded_spikes_factor",
];

/// Parses the container into layers, steps and metadata (not yet validated).
pub(super) fn parse(bytes: &[u8]) -> Result<(Vec<LifLayer>, u32, ModelMeta)> {
    let container = |e: safetensors::SafeTensorError| Error::Container(e.to_string());
    let tensors = SafeTensors::deserialize(bytes).map_err(container)?;
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(container)?;
    let layer_count = (1..)
        .take_while(|i| tensors.tensor(&format!("fc{i}.weight")).is_ok())
        .count();
    if layer_count == 0 {
        return Err(missing("fc1.weight"));
    }
    // Before `check_names`, whose cost grows with layers x tensors.
    super::check_limit("number of layers", layer_count, super::limits::LAYERS_MAX)?;
    check_names(&tensors, layer_count)?;
    let layers = (1..=layer_count)
        .map(|n| parse_layer(&tensors, n))
        .collect::<Result<Vec<_>>>()?;
    let outputs = layers.last().map_or(0, |l| l.outputs);
    let raw_meta = header.metadata().clone().unwrap_or_default();
    let (steps, meta) = parse_meta(raw_meta, outputs)?;
    Ok((layers, steps, meta))
}

/// Every tensor must belong to a layer `1..=layer_count`, or be one of ours (`cx.*`).
fn check_names(tensors: &SafeTensors<'_>, layer_count: usize) -> Result<()> {
    for name in tensors.names() {
        let known = name.starts_with("cx.")
            || (1..=layer_count).any(|n| {
                FIELDS_FC.iter().any(|f| name == format!("fc{n}.{f}"))
                    || FIELDS_LIF.iter().any(|f| name == format!("lif{n}.{f}"))
            });
        if !known {
            return Err(Error::WrongShape {
                name: name.to_string(),
                expected: format!(
                    "no such tensor: a model with {layer_count} layer(s) holds fc1..fc{layer_count} and lif1..lif{layer_count}"
                ),
                found: tensors.tensor(name).map(|t| t.shape().to_vec()).unwrap_or_default(),
            });
        }
    }
    Ok(())
}

fn parse_layer(tensors: &SafeTensors<'_>, n: usize) -> Result<LifLayer> {
    let weight_name = format!("fc{n}.weight");
    let weight = tensors
        .tensor(&weight_name)
        .map_err(|_| missing(&weight_name))?;
    let (outputs, inputs) = match weight.shape() {
        &[o, i] => (o, i),
        other => {
            return Err(Error::WrongShape {
                name: weight_name,
                expected: "[out, in]".into(),
                found: other.to_vec(),
            })
        }
    };
    // Before anything is sized by the shape: a header can claim any width
    // with a zero dimension and no data.
    super::check_limit(
        &format!("fc{n} input width"),
        inputs,
        super::limits::WIDTH_MAX,
    )?;
    super::check_limit(
        &format!("fc{n} output width"),
        outputs,
        super::limits::WIDTH_MAX,
    )?;
    let bias_name = format!("fc{n}.bias");
    let bias = match tensors.tensor(&bias_name) {
        Ok(view) => f32_vec(&bias_name, &view, &[outputs])?,
        Err(_) => vec![0.0; outputs],
    };
    let reset_name = format!("lif{n}.reset_mechanism_val");
    let reset = match tensors.tensor(&reset_name) {
        Ok(view) => parse_reset(&reset_name, &view)?,
        Err(_) => ResetMechanism::Subtract,
    };
    let gsf_name = format!("lif{n}.graded_spikes_factor");
    let graded_spikes_factor = match tensors.tensor(&gsf_name) {
        Ok(view) => per_neuron(&gsf_name, &view, 1)?[0],
        Err(_) => 1.0,
    };
    Ok(LifLayer {
        inputs,
        outputs,
        weight: f32_vec(&format!("fc{n}.weight"), &weight, &[outputs, inputs])?,
        bias,
        beta: required_per_neuron(tensors, &format!("lif{n}.beta"), outputs)?,
        threshold: required_per_neuron(tensors, &format!("lif{n}.threshold"), outputs)?,
        reset,
        graded_spikes_factor,
    })
}

fn missing(name: &str) -> Error {
    Error::MissingTensor { name: name.into() }
}

fn required_per_neuron(tensors: &SafeTensors<'_>, name: &str, outputs: usize) -> Result<Vec<f32>> {
    let view = tensors.tensor(name).map_err(|_| missing(name))?;
    per_neuron(name, &view, outputs)
}

/// A scalar (shape `[]` or `[1]`) broadcast to `outputs`, or a `[outputs]` vector.
fn per_neuron(name: &str, view: &TensorView<'_>, outputs: usize) -> Result<Vec<f32>> {
    match view.shape() {
        [] | [1] => Ok(vec![f32_vec(name, view, view.shape())?[0]; outputs]),
        [n] if *n == outputs => f32_vec(name, view, &[outputs]),
        other => Err(Error::WrongShape {
            name: name.into(),
            expected: format!("a scalar or [{outputs}]"),
            found: other.to_vec(),
        }),
    }
}

fn f32_vec(name: &str, view: &TensorView<'_>, shape: &[usize]) -> Result<Vec<f32>> {
    if view.dtype() != Dtype::F32 {
        return Err(Error::WrongDtype {
            name: name.into(),
            expected: "F32",
            found: format!("{:?}", view.dtype()),
        });
    }
    if view.shape() != shape {
        return Err(Error::WrongShape {
            name: name.into(),
            expected: format!("{shape:?}"),
            found: view.shape().to_vec(),
        });
    }
    Ok(view
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

fn parse_reset(name: &str, view: &TensorView<'_>) -> Result<ResetMechanism> {
    if !matches!(view.shape(), [] | [1]) {
        return Err(Error::WrongShape {
            name: name.into(),
            expected: "a scalar".into(),
            found: view.shape().to_vec(),
        });
    }
    let data = view.data();
    let val = match view.dtype() {
        Dtype::I64 => i64::from_le_bytes(
            data[..8]
                .try_into()
                .expect("8 bytes checked by safetensors"),
        ),
        Dtype::I32 => i32::from_le_bytes(
            data[..4]
                .try_into()
                .expect("4 bytes checked by safetensors"),
        ) as i64,
        other => {
            return Err(Error::WrongDtype {
                name: name.into(),
                expected: "I64 or I32",
                found: format!("{other:?}"),
            })
        }
    };
    ResetMechanism::from_val(val).ok_or_else(|| Error::OutOfRange {
        name: name.into(),
        index: 0,
        value: val as f64,
        rule: "reset_mechanism_val must be 0 (subtract), 1 (zero) or 2 (none)",
    })
}

/// The metadata keys written from [`ModelMeta`]'s own fields and the step
/// count; `ModelMeta::extra` may not hold them.
pub(super) const KNOWN_KEYS: [&str; 6] = [
    "steps",
    "cx.name",
    "cx.version",
    "cx.feature_schema_id",
    "cx.offer_ids",
    "cx.calibration",
];

fn parse_meta(mut raw: HashMap<String, String>, outputs: usize) -> Result<(u32, ModelMeta)> {
    let bad = |key: &str, reason: String| Error::BadMetadata {
        key: key.into(),
        reason,
    };
    let steps_raw = raw
        .remove("steps")
        .ok_or_else(|| bad("steps", "is missing (the number of time steps T)".into()))?;
    let steps: u32 = steps_raw
        .trim()
        .parse()
        .map_err(|_| bad("steps", format!("`{steps_raw}` is not a positive integer")))?;
    let mut meta = ModelMeta::defaults(outputs);
    if let Some(name) = raw.remove("cx.name") {
        meta.name = name;
    }
    if let Some(version) = raw.remove("cx.version") {
        meta.version = version;
    }
    meta.feature_schema_id = raw.remove("cx.feature_schema_id");
    if let Some(ids) = raw.remove("cx.offer_ids") {
        meta.offer_ids = serde_json::from_str(&ids).map_err(|e| {
            bad(
                "cx.offer_ids",
                format!("not a JSON array of unsigned integers: {e}"),
            )
        })?;
    }
    if let Some(cal) = raw.remove("cx.calibration") {
        meta.calibration = serde_json::from_str::<Calibration>(&cal).map_err(|e| {
            bad(
                "cx.calibration",
                format!("not a valid calibration object: {e}"),
            )
        })?;
    }
    meta.extra = raw.into_iter().collect();
    Ok((steps, meta))
}

/// One tensor to write: name, dtype name, shape and little-endian bytes.
struct Entry {
    name: String,
    dtype: &'static str,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

fn f32_entry(name: String, shape: Vec<usize>, values: &[f32]) -> Entry {
    Entry {
        name,
        dtype: "F32",
        shape,
        bytes: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    }
}

/// A per-neuron vector, written as a scalar when all values are equal (snnTorch's usual form).
fn per_neuron_entry(name: String, values: &[f32]) -> Entry {
    if values.windows(2).all(|w| w[0].to_bits() == w[1].to_bits()) {
        f32_entry(name, vec![], &values[..1])
    } else {
        f32_entry(name, vec![values.len()], values)
    }
}

/// Serialises a model deterministically.
pub(super) fn write(layers: &[LifLayer], steps: u32, meta: &ModelMeta) -> Vec<u8> {
    let mut entries = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        let n = i + 1;
        entries.push(f32_entry(
            format!("fc{n}.weight"),
            vec![layer.outputs, layer.inputs],
            &layer.weight,
        ));
        entries.push(f32_entry(
            format!("fc{n}.bias"),
            vec![layer.outputs],
            &layer.bias,
        ));
        entries.push(per_neuron_entry(format!("lif{n}.beta"), &layer.beta));
        entries.push(per_neuron_entry(
            format!("lif{n}.threshold"),
            &layer.threshold,
        ));
        entries.push(f32_entry(
            format!("lif{n}.graded_spikes_factor"),
            vec![],
            &[layer.graded_spikes_factor],
        ));
        entries.push(Entry {
            name: format!("lif{n}.reset_mechanism_val"),
            dtype: "I64",
            shape: vec![],
            bytes: layer.reset.val().to_le_bytes().to_vec(),
        });
    }
    // 8-byte tensors first keeps every tensor naturally aligned, as the crate does.
    entries.sort_by(|a, b| (a.dtype != "I64", &a.name).cmp(&(b.dtype != "I64", &b.name)));
    encode(&entries, &meta_map(steps, meta))
}

fn meta_map(steps: u32, meta: &ModelMeta) -> BTreeMap<String, String> {
    let mut map: BTreeMap<String, String> = meta.extra.clone();
    map.insert("steps".into(), steps.to_string());
    map.insert("cx.name".into(), meta.name.clone());
    map.insert("cx.version".into(), meta.version.clone());
    if let Some(id) = &meta.feature_schema_id {
        map.insert("cx.feature_schema_id".into(), id.clone());
    }
    let json = |v: serde_json::Result<String>| v.expect("plain data always serialises");
    map.insert(
        "cx.offer_ids".into(),
        json(serde_json::to_string(&meta.offer_ids)),
    );
    map.insert(
        "cx.calibration".into(),
        json(serde_json::to_string(&meta.calibration)),
    );
    map
}

fn encode(entries: &[Entry], metadata: &BTreeMap<String, String>) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), serde_json::json!(metadata));
    let mut offset = 0usize;
    for e in entries {
        let end = offset + e.bytes.len();
        header.insert(
            e.name.clone(),
            serde_json::json!({"dtype": e.dtype, "shape": e.shape, "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    let mut header_bytes = serde_json::to_vec(&header).expect("plain data always serialises");
    while !header_bytes.len().is_multiple_of(8) {
        header_bytes.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + header_bytes.len() + offset);
    out.extend_from_slice(&(header_bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(&header_bytes);
    for e in entries {
        out.extend_from_slice(&e.bytes);
    }
    out
}

/// Writes named `F32` tensors and metadata deterministically (tensors in name order).
pub fn write_f32_tensors(
    tensors: &[(&str, &[usize], &[f32])],
    metadata: &BTreeMap<String, String>,
) -> Vec<u8> {
    let mut entries: Vec<Entry> = tensors
        .iter()
        .map(|(name, shape, values)| f32_entry(name.to_string(), shape.to_vec(), values))
        .collect();
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    encode(&entries, metadata)
}

/// Named `F32` tensors (shape and values) and string metadata, as read from a file.
pub type F32Tensors = (
    BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    BTreeMap<String, String>,
);

/// Reads every tensor of a safetensors file, all of which must be `F32`, and its metadata.
pub fn read_f32_tensors(bytes: &[u8]) -> Result<F32Tensors> {
    let container = |e: safetensors::SafeTensorError| Error::Container(e.to_string());
    let tensors = SafeTensors::deserialize(bytes).map_err(container)?;
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(container)?;
    let mut out = BTreeMap::new();
    for (name, view) in tensors.tensors() {
        let values = f32_vec(&name, &view, view.shape())?;
        out.insert(name, (view.shape().to_vec(), values));
    }
    let metadata = header
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    Ok((out, metadata))
}
