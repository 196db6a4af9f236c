//! Loading real snnTorch exports, the write/read round trip, and file I/O.
//!
//! Validation rules are in `model_validation.rs`, corrupt input in
//! `model_corrupt.rs`.

#[macro_use]
mod common;

use common::{rich_model, rich_model_parts, sha256_hex, Craft, SMALL};
use cx_model::limits;
use cx_model::{Calibration, Error, ModelId, ModelMeta, ResetMechanism, SnnModel};
use proptest::prelude::*;
use safetensors::{Dtype, SafeTensors};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------------------
// Real snnTorch exports
// ---------------------------------------------------------------------------

/// The weights and biases of an export, from its reference JSON.
struct Reference {
    w1: Vec<Vec<f32>>,
    b1: Vec<f32>,
    w2: Vec<Vec<f32>>,
    b2: Vec<f32>,
}

fn reference(json_path: &Path) -> Reference {
    let text = std::fs::read_to_string(json_path).expect("reference json");
    let v: serde_json::Value = serde_json::from_str(&text).expect("reference json parses");
    let vec1 = |key: &str| -> Vec<f32> {
        v[key]
            .as_array()
            .unwrap_or_else(|| panic!("`{key}` is an array"))
            .iter()
            .map(|x| x.as_f64().expect("a number") as f32)
            .collect()
    };
    let vec2 = |key: &str| -> Vec<Vec<f32>> {
        v[key]
            .as_array()
            .unwrap_or_else(|| panic!("`{key}` is an array"))
            .iter()
            .map(|row| {
                row.as_array()
                    .expect("a row")
                    .iter()
                    .map(|x| x.as_f64().expect("a number") as f32)
                    .collect()
            })
            .collect()
    };
    Reference {
        w1: vec2("w1"),
        b1: vec1("b1"),
        w2: vec2("w2"),
        b2: vec1("b2"),
    }
}

/// Checks a 2-layer snnTorch export against its reference values.
fn check_export(
    model: &SnnModel,
    bytes: &[u8],
    dims: [usize; 3],
    steps: u32,
    reference: &Reference,
) {
    let [d, h, o] = dims;
    assert_eq!(model.layers().len(), 2);
    assert_eq!(
        (model.inputs(), model.outputs(), model.steps()),
        (d, o, steps)
    );
    for (layer, (inputs, outputs, beta)) in
        model.layers().iter().zip([(d, h, 0.9f32), (h, o, 0.8f32)])
    {
        assert_eq!((layer.inputs, layer.outputs), (inputs, outputs));
        assert_eq!(layer.weight.len(), inputs * outputs);
        assert_eq!(
            layer.beta,
            vec![beta; outputs],
            "scalar beta is broadcast per neuron"
        );
        assert_eq!(layer.threshold, vec![1.0; outputs]);
        assert_eq!(layer.reset, ResetMechanism::Subtract);
        assert_eq!(layer.graded_spikes_factor, 1.0);
    }
    let [l1, l2] = model.layers() else {
        unreachable!()
    };
    for (r, row) in reference.w1.iter().enumerate() {
        assert_eq!(
            l1.weight_row(r),
            row.as_slice(),
            "fc1.weight row {r} is [out][in] as torch stores it"
        );
    }
    for (r, row) in reference.w2.iter().enumerate() {
        assert_eq!(l2.weight_row(r), row.as_slice(), "fc2.weight row {r}");
    }
    assert_eq!(reference.w1.len(), h);
    assert_eq!(reference.w2.len(), o);
    assert_eq!(l1.bias, reference.b1);
    assert_eq!(l2.bias, reference.b2);

    // A plain snnTorch export has no cx.* keys: every documented default applies.
    let meta = model.meta();
    assert_eq!(meta.name, "unnamed");
    assert_eq!(meta.version, "0");
    assert_eq!(meta.feature_schema_id, None);
    assert_eq!(meta.offer_ids, (0..o as u64).collect::<Vec<_>>());
    assert_eq!(meta.calibration, Calibration::SpikeRate);
    let extra: BTreeMap<String, String> =
        [("exported_by".to_string(), "snntorch 1.0.0".to_string())].into();
    assert_eq!(
        meta.extra, extra,
        "unknown keys are kept verbatim, `steps` is not among them"
    );

    // The identity is the SHA-256 of the file, as `sha256sum` prints it.
    assert_eq!(model.id(), ModelId::of_bytes(bytes));
    assert_eq!(model.id().to_string(), sha256_hex(bytes));
    let first8: [u8; 8] = model.id().0[..8].try_into().unwrap();
    assert_eq!(model.id().as_u64(), u64::from_le_bytes(first8));
}

#[test]
fn small_fixture_loads_with_snntorch_parameters() {
    let model = SnnModel::from_bytes(SMALL).expect("the real export loads");
    let reference = reference(&common::fixture("snntorch_net_small.json"));
    check_export(&model, SMALL, [13, 37, 5], 10, &reference);
    // The committed fixture's identity, as `sha256sum snntorch_net_small.safetensors` prints it.
    assert_eq!(
        model.id().to_string(),
        "5fc6572209057833f3f50eef25106cb3efc012d00e40dcdb7ccd08f663f7106b"
    );
    assert_eq!(
        format!("{:?}", model.id()),
        format!("ModelId({})", model.id())
    );
}

#[test]
fn small_fixture_loads_from_path_like_from_bytes() {
    let path = common::fixture("snntorch_net_small.safetensors");
    let loaded = SnnModel::load(&path).expect("load");
    let parsed = SnnModel::from_bytes(SMALL).expect("from_bytes");
    assert_eq!(loaded.layers(), parsed.layers());
    assert_eq!(loaded.meta(), parsed.meta());
    assert_eq!(loaded.steps(), parsed.steps());
    assert_eq!(loaded.id(), parsed.id());
    assert_eq!(
        loaded.id().to_string(),
        sha256_hex(&std::fs::read(&path).unwrap())
    );
}

#[test]
fn shared_small_export_is_the_committed_fixture() {
    let Some(path) = common::shared("snn/snntorch_net_small.safetensors") else {
        return;
    };
    let model = SnnModel::load(&path).expect("load");
    assert_eq!(
        model.id(),
        ModelId::of_bytes(SMALL),
        "the fixture is an unchanged copy"
    );
}

#[test]
fn shared_64x256x16_export_loads_with_snntorch_parameters() {
    let (Some(path), Some(json)) = (
        common::shared("snn/snntorch_net_64x256x16.safetensors"),
        common::shared("snn/snntorch_net_64x256x16.json"),
    ) else {
        return;
    };
    let bytes = std::fs::read(&path).expect("read");
    let model = SnnModel::load(&path).expect("the real export loads");
    check_export(&model, &bytes, [64, 256, 16], 8, &reference(&json));
}

#[test]
fn real_export_rewritten_by_to_bytes_is_a_fixed_point() {
    let original = SnnModel::from_bytes(SMALL).unwrap();
    let bytes = original.to_bytes();
    let reread = SnnModel::from_bytes(&bytes).expect("our own output loads");
    assert_eq!(reread.layers(), original.layers());
    assert_eq!(reread.steps(), original.steps());
    assert_eq!(
        reread.meta(),
        original.meta(),
        "defaults written out explicitly read back the same"
    );
    assert_eq!(
        reread.to_bytes(),
        bytes,
        "writing what was read gives the same bytes"
    );
    assert_eq!(reread.id(), ModelId::of_bytes(&bytes));
    // Our file carries cx.* keys the export lacked, so it is a different file with another identity.
    assert_ne!(reread.id(), original.id());
}

// ---------------------------------------------------------------------------
// Round trip through to_bytes / from_bytes
// ---------------------------------------------------------------------------

#[test]
fn rich_model_round_trips_with_the_same_identity() {
    let (layers, steps, meta) = rich_model_parts();
    let model = SnnModel::new(layers.clone(), steps, meta.clone()).expect("valid");
    let bytes = model.to_bytes();
    assert_eq!(
        model.id(),
        ModelId::of_bytes(&bytes),
        "new() hashes the bytes to_bytes writes"
    );
    assert_eq!(model.id().to_string(), sha256_hex(&bytes));

    let back = SnnModel::from_bytes(&bytes).expect("round trip");
    assert_eq!(back.layers(), layers.as_slice());
    assert_eq!(back.steps(), steps);
    assert_eq!(back.meta(), &meta);
    assert_eq!(back.id(), model.id());
    assert_eq!((back.inputs(), back.outputs()), (6, 3));
}

#[test]
fn per_neuron_parameters_and_layer_options_survive() {
    let back = SnnModel::from_bytes(&rich_model().to_bytes()).unwrap();
    let [l1, l2, l3] = back.layers() else {
        panic!("three layers expected")
    };
    assert_eq!(l1.beta, [0.0, 0.25, 0.5, 1.0]);
    assert_eq!(l1.threshold, [0.5, 1.0, 1.5, 1e-3]);
    assert_eq!(
        [l1.reset, l2.reset, l3.reset],
        [
            ResetMechanism::Subtract,
            ResetMechanism::Zero,
            ResetMechanism::None
        ]
    );
    assert_eq!(l2.graded_spikes_factor, 0.5);
    assert_eq!(l2.beta, [0.8; 5]);
    assert_eq!(l3.threshold, [2.0; 3]);
}

#[test]
fn to_bytes_is_deterministic() {
    let a = rich_model();
    assert_eq!(a.to_bytes(), a.to_bytes(), "same model, same bytes");
    // Two separately built equal models; the extra keys are inserted in another order.
    let (layers, steps, mut meta) = rich_model_parts();
    meta.extra = meta.extra.into_iter().rev().collect();
    let b = SnnModel::new(layers, steps, meta).unwrap();
    assert_eq!(a.to_bytes(), b.to_bytes());
    assert_eq!(a.id(), b.id());
    // And a clone, and a model loaded from the bytes.
    assert_eq!(a.clone().to_bytes(), a.to_bytes());
    assert_eq!(
        SnnModel::from_bytes(&a.to_bytes()).unwrap().to_bytes(),
        a.to_bytes()
    );
}

#[test]
fn different_models_have_different_identities() {
    let a = rich_model();
    let (mut layers, steps, meta) = rich_model_parts();
    layers[2].weight[0] = f32::from_bits(layers[2].weight[0].to_bits() ^ 1);
    let b = SnnModel::new(layers, steps, meta.clone()).unwrap();
    assert_ne!(a.id(), b.id(), "one ulp in one weight changes the identity");
    let (layers, _, _) = rich_model_parts();
    let c = SnnModel::new(layers, steps + 1, meta).unwrap();
    assert_ne!(a.id(), c.id(), "so does the number of steps");
}

#[test]
fn to_bytes_is_readable_by_the_safetensors_crate() {
    let model = rich_model();
    let bytes = model.to_bytes();
    let st = SafeTensors::deserialize(&bytes).expect("a valid safetensors container");
    let mut names: Vec<&str> = st.names();
    names.sort_unstable();
    let mut expected: Vec<String> = (1..=3)
        .flat_map(|n| {
            [
                format!("fc{n}.bias"),
                format!("fc{n}.weight"),
                format!("lif{n}.beta"),
                format!("lif{n}.graded_spikes_factor"),
                format!("lif{n}.reset_mechanism_val"),
                format!("lif{n}.threshold"),
            ]
        })
        .collect();
    expected.sort_unstable();
    assert_eq!(names, expected, "exactly the snnTorch state_dict names");

    let w = st.tensor("fc1.weight").unwrap();
    assert_eq!(
        (w.dtype(), w.shape()),
        (Dtype::F32, &[4usize, 6][..]),
        "torch layout [out, in]"
    );
    assert_eq!(
        w.data(),
        common::f32_bytes(&model.layers()[0].weight).as_slice()
    );
    let beta1 = st.tensor("lif1.beta").unwrap();
    assert_eq!(beta1.shape(), &[4], "a per-neuron beta is a vector");
    let beta2 = st.tensor("lif2.beta").unwrap();
    assert_eq!(
        beta2.shape(),
        &[] as &[usize],
        "a uniform beta is written as snnTorch's scalar"
    );
    assert_eq!(beta2.data(), 0.8f32.to_le_bytes());
    let reset = st.tensor("lif2.reset_mechanism_val").unwrap();
    assert_eq!(
        (reset.dtype(), reset.shape()),
        (Dtype::I64, &[] as &[usize])
    );
    assert_eq!(
        reset.data(),
        1i64.to_le_bytes(),
        "Zero is snnTorch's reset_mechanism_val 1"
    );
    let gsf = st.tensor("lif2.graded_spikes_factor").unwrap();
    assert_eq!(gsf.data(), 0.5f32.to_le_bytes());

    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let meta = header.metadata().clone().expect("metadata present");
    assert_eq!(meta["steps"], "12");
    assert_eq!(meta["cx.name"], "offer-ranker");
    assert_eq!(meta["cx.version"], "2026.03.1");
    assert_eq!(meta["cx.feature_schema_id"], "schema-v7");
    let ids: Vec<u64> = serde_json::from_str(&meta["cx.offer_ids"]).unwrap();
    assert_eq!(
        ids,
        [101, 7, u64::MAX],
        "u64 ids survive JSON without rounding"
    );
    let cal: serde_json::Value = serde_json::from_str(&meta["cx.calibration"]).unwrap();
    assert_eq!(cal["method"], "platt");
    assert_eq!(meta["exported_by"], "snntorch 1.0.0");
    assert_eq!(meta["cx.training"], r#"{"epochs":12,"lr":0.001}"#);
}

#[test]
fn to_bytes_keeps_every_tensor_aligned() {
    let bytes = rich_model().to_bytes();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    assert_eq!(header_len % 8, 0, "the header is padded to a multiple of 8");
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    for (name, info) in header.tensors() {
        let start = 8 + header_len + info.data_offsets.0;
        let size = info.dtype.bitsize() / 8;
        assert_eq!(
            start % size,
            0,
            "`{name}` ({:?}) starts at byte {start}",
            info.dtype
        );
    }
}

#[test]
fn default_meta_round_trips() {
    let layers = vec![common::layer(2, 3, 0.5, 1.0, ResetMechanism::Subtract)];
    let model = SnnModel::new(layers, 1, ModelMeta::defaults(3)).unwrap();
    let back = SnnModel::from_bytes(&model.to_bytes()).unwrap();
    assert_eq!(back.meta(), &ModelMeta::defaults(3));
    assert_eq!(back.steps(), 1);
    assert_eq!(back.id(), model.id());
}

// ---------------------------------------------------------------------------
// Files on disk
// ---------------------------------------------------------------------------

/// A fresh path in the temp directory, removed on drop.
struct TempPath(PathBuf);

impl TempPath {
    fn new(tag: &str) -> Self {
        let name = format!("cx-components-{}-{tag}.safetensors", std::process::id());
        let path = std::env::temp_dir().join(name);
        let _ = std::fs::remove_file(&path);
        Self(path)
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn save_then_load_gives_the_same_model_and_identity() {
    let model = rich_model();
    let tmp = TempPath::new("save-load");
    model.save(&tmp.0).expect("save");
    let on_disk = std::fs::read(&tmp.0).unwrap();
    assert_eq!(on_disk, model.to_bytes());
    assert_eq!(
        sha256_hex(&on_disk),
        model.id().to_string(),
        "sha256sum of the file is the id"
    );
    let loaded = SnnModel::load(&tmp.0).expect("load");
    assert_eq!(loaded.layers(), model.layers());
    assert_eq!(loaded.meta(), model.meta());
    assert_eq!(loaded.id(), model.id());
}

#[test]
fn load_of_a_missing_file_is_an_io_error_naming_the_path() {
    let path = std::env::temp_dir().join("cx-components-no-such-dir/no-such-model.safetensors");
    let err = assert_err!(
        SnnModel::load(&path),
        Error::Io { .. },
        &path.display().to_string()
    );
    let Error::Io { source, .. } = &err else {
        unreachable!()
    };
    assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
}

#[test]
fn load_of_a_directory_is_an_io_error_naming_the_path() {
    let dir = std::env::temp_dir();
    assert_err!(
        SnnModel::load(&dir),
        Error::Io { .. },
        &dir.display().to_string()
    );
}

#[test]
fn save_into_a_missing_directory_is_an_io_error_naming_the_path() {
    let path = std::env::temp_dir().join("cx-components-no-such-dir/out.safetensors");
    assert_err!(
        rich_model().save(&path),
        Error::Io { .. },
        &path.display().to_string()
    );
}

#[test]
fn load_refuses_a_file_over_the_size_limit_without_reading_it() {
    let tmp = TempPath::new("too-large");
    let file = std::fs::File::create(&tmp.0).unwrap();
    // Sparse: takes no disk space, and the loader must refuse it from its size alone.
    file.set_len(limits::FILE_BYTES_MAX + 1).unwrap();
    drop(file);
    let err = common::unwrap_err(SnnModel::load(&tmp.0));
    assert!(
        matches!(err, Error::FileTooLarge { bytes, limit } if bytes == limits::FILE_BYTES_MAX + 1 && limit == limits::FILE_BYTES_MAX),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains(&limits::FILE_BYTES_MAX.to_string()),
        "{err}"
    );
}

#[test]
fn crafted_copy_of_the_fixture_loads_identically() {
    // Guards the test helper every validation test builds on: re-serialising the
    // fixture's tensors and metadata with the safetensors crate loses nothing.
    let crafted = Craft::small()
        .load()
        .expect("the re-serialised fixture loads");
    let original = SnnModel::from_bytes(SMALL).unwrap();
    assert_eq!(crafted.layers(), original.layers());
    assert_eq!(crafted.steps(), original.steps());
    assert_eq!(crafted.meta(), original.meta());
}

// ---------------------------------------------------------------------------
// Round-trip property
// ---------------------------------------------------------------------------

/// Any finite f32, subnormals and signed zeros included.
fn finite_f32() -> impl Strategy<Value = f32> {
    any::<u32>()
        .prop_map(f32::from_bits)
        .prop_filter("finite", |v| v.is_finite())
}

fn reset() -> impl Strategy<Value = ResetMechanism> {
    prop_oneof![
        Just(ResetMechanism::Subtract),
        Just(ResetMechanism::Zero),
        Just(ResetMechanism::None)
    ]
}

/// Random valid models: 1 to 3 layers of width 1 to 6, arbitrary finite
/// weights, per-neuron or uniform beta/threshold, arbitrary metadata.
fn model_parts() -> impl Strategy<Value = (Vec<cx_model::LifLayer>, u32, ModelMeta)> {
    prop::collection::vec(1usize..=6, 2..=4).prop_flat_map(|widths| {
        let layers: Vec<_> = widths
            .windows(2)
            .map(|w| {
                let (i, o) = (w[0], w[1]);
                (
                    prop::collection::vec(finite_f32(), i * o),
                    prop::collection::vec(finite_f32(), o),
                    prop_oneof![
                        (0.0f32..=1.0).prop_map(move |b| vec![b; o]),
                        prop::collection::vec(0.0f32..=1.0, o)
                    ],
                    prop::collection::vec(prop_oneof![1e-30f32..1e30, Just(f32::MIN_POSITIVE)], o),
                    reset(),
                    finite_f32(),
                )
                    .prop_map(
                        move |(weight, bias, beta, threshold, reset, gsf)| cx_model::LifLayer {
                            inputs: i,
                            outputs: o,
                            weight,
                            bias,
                            beta,
                            threshold,
                            reset,
                            graded_spikes_factor: gsf,
                        },
                    )
            })
            .collect();
        let outputs = *widths.last().unwrap();
        let calibration = prop_oneof![
            Just(Calibration::SpikeRate),
            (
                prop::collection::vec(finite_f32(), outputs),
                prop::collection::vec(finite_f32(), outputs),
                prop::collection::vec(finite_f32(), outputs),
            )
                .prop_map(|(w_rate, w_mem, bias)| Calibration::Platt {
                    w_rate,
                    w_mem,
                    bias
                })
        ];
        let reserved = [
            "steps",
            "cx.name",
            "cx.version",
            "cx.feature_schema_id",
            "cx.offer_ids",
            "cx.calibration",
        ];
        let meta = (
            "\\PC{0,12}",
            "\\PC{0,12}",
            proptest::option::of("\\PC{0,12}"),
            prop::collection::vec(any::<u64>(), outputs),
            calibration,
            prop::collection::btree_map(
                "\\PC{0,10}".prop_filter("not a reserved key", move |k| {
                    !reserved.contains(&k.as_str())
                }),
                "\\PC{0,20}",
                0..4,
            ),
        )
            .prop_map(
                |(name, version, feature_schema_id, offer_ids, calibration, extra)| ModelMeta {
                    name,
                    version,
                    feature_schema_id,
                    offer_ids,
                    calibration,
                    extra,
                },
            );
        (layers, 1..=limits::STEPS_MAX, meta)
    })
}

/// Bit patterns, so that -0.0 and 0.0 are told apart.
fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

proptest! {
    #[test]
    fn any_valid_model_round_trips_bit_exactly((layers, steps, meta) in model_parts()) {
        let model = SnnModel::new(layers.clone(), steps, meta.clone()).expect("generated models are valid");
        let bytes = model.to_bytes();
        let back = SnnModel::from_bytes(&bytes).expect("to_bytes output loads");
        prop_assert_eq!(back.id(), model.id());
        prop_assert_eq!(back.steps(), steps);
        prop_assert_eq!(back.meta(), &meta);
        prop_assert_eq!(back.layers().len(), layers.len());
        for (a, b) in back.layers().iter().zip(&layers) {
            prop_assert_eq!((a.inputs, a.outputs, a.reset), (b.inputs, b.outputs, b.reset));
            prop_assert_eq!(bits(&a.weight), bits(&b.weight));
            prop_assert_eq!(bits(&a.bias), bits(&b.bias));
            prop_assert_eq!(bits(&a.beta), bits(&b.beta));
            prop_assert_eq!(bits(&a.threshold), bits(&b.threshold));
            prop_assert_eq!(a.graded_spikes_factor.to_bits(), b.graded_spikes_factor.to_bits());
        }
        prop_assert_eq!(back.to_bytes(), bytes);
    }
}
