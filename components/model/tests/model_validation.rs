//! Every validation rule of the model format: each refused file or model
//! fails with the right error variant, naming the tensor or key at fault.
//!
//! Files are crafted from the real snnTorch export (13 -> 37 -> 5) with one
//! thing broken; in-memory models go through `SnnModel::new`, which applies
//! the same rules.

#[macro_use]
mod common;

use common::{layer, rich_model_parts, Craft};
use cx_model::limits;
use cx_model::{Calibration, Error, LifLayer, ModelMeta, ResetMechanism, SnnModel};
use safetensors::Dtype;

/// `SnnModel::new` on the rich model's parts after `edit`.
fn new_with(
    edit: impl FnOnce(&mut Vec<LifLayer>, &mut u32, &mut ModelMeta),
) -> Result<SnnModel, Error> {
    let (mut layers, mut steps, mut meta) = rich_model_parts();
    edit(&mut layers, &mut steps, &mut meta);
    SnnModel::new(layers, steps, meta)
}

// ---------------------------------------------------------------------------
// Shapes
// ---------------------------------------------------------------------------

#[test]
fn layers_that_do_not_chain_are_refused() {
    // fc2 expects 36 inputs but fc1 has 37 outputs.
    let err = assert_err!(
        Craft::small()
            .f32("fc2.weight", &[5, 36], &[0.1; 180])
            .load(),
        Error::WrongShape { .. },
        "fc2.weight"
    );
    assert!(
        err.to_string().contains("fc1"),
        "says what it should chain with: {err}"
    );
    let Error::WrongShape { found, .. } = err else {
        unreachable!()
    };
    assert_eq!(found, [5, 36]);

    assert_err!(
        new_with(|layers, _, _| layers[2] = layer(4, 3, 0.9, 1.0, ResetMechanism::None)),
        Error::WrongShape { .. },
        "fc3.weight"
    );
}

#[test]
fn weight_that_is_not_two_dimensional_is_refused() {
    let w = Craft::small().values("fc1.weight");
    for shape in [&[37 * 13][..], &[1, 37, 13], &[]] {
        let values = if shape.is_empty() { &w[..1] } else { &w[..] };
        let err = assert_err!(
            Craft::small().f32("fc1.weight", shape, values).load(),
            Error::WrongShape { .. },
            "fc1.weight"
        );
        let Error::WrongShape { found, .. } = err else {
            unreachable!()
        };
        assert_eq!(found, shape);
    }
}

#[test]
fn empty_weight_is_refused() {
    let err = assert_err!(
        Craft::small()
            .f32("fc2.weight", &[0, 37], &[])
            .f32("fc2.bias", &[0], &[])
            .load(),
        Error::WrongShape { .. },
        "fc2.weight"
    );
    assert!(err.to_string().contains("non-empty"), "{err}");
    assert_err!(
        new_with(|layers, _, meta| {
            layers.truncate(1);
            layers[0] = LifLayer::new(6, 0, vec![], vec![], 0.5, 1.0, ResetMechanism::Subtract);
            meta.offer_ids.clear();
            meta.calibration = Calibration::SpikeRate;
        }),
        Error::WrongShape { .. },
        "fc1.weight"
    );
}

#[test]
fn bias_of_the_wrong_length_is_refused() {
    for shape in [[36], [38]] {
        assert_err!(
            Craft::small()
                .f32("fc1.bias", &shape, &vec![0.0; shape[0]])
                .load(),
            Error::WrongShape { .. },
            "fc1.bias"
        );
    }
    assert_err!(
        Craft::small().f32("fc2.bias", &[1, 5], &[0.0; 5]).load(),
        Error::WrongShape { .. },
        "fc2.bias"
    );
    assert_err!(
        new_with(|layers, _, _| {
            layers[1].bias.pop();
        }),
        Error::WrongShape { .. },
        "fc2.bias"
    );
}

#[test]
fn weight_of_the_wrong_length_is_refused_by_new() {
    assert_err!(
        new_with(|layers, _, _| layers[0].weight.push(0.0)),
        Error::WrongShape { .. },
        "fc1.weight"
    );
}

#[test]
fn per_neuron_parameters_of_the_wrong_length_are_refused() {
    assert_err!(
        Craft::small().f32("lif1.beta", &[36], &[0.9; 36]).load(),
        Error::WrongShape { .. },
        "lif1.beta"
    );
    assert_err!(
        Craft::small()
            .f32("lif2.threshold", &[5, 1], &[1.0; 5])
            .load(),
        Error::WrongShape { .. },
        "lif2.threshold"
    );
    assert_err!(
        Craft::small()
            .f32("lif1.graded_spikes_factor", &[2], &[1.0; 2])
            .load(),
        Error::WrongShape { .. },
        "lif1.graded_spikes_factor"
    );
    assert_err!(
        new_with(|layers, _, _| layers[0].threshold.push(1.0)),
        Error::WrongShape { .. },
        "lif1.threshold"
    );
    assert_err!(
        new_with(|layers, _, _| layers[2].beta.clear()),
        Error::WrongShape { .. },
        "lif3.beta"
    );
}

#[test]
fn per_neuron_vectors_and_one_element_scalars_load() {
    let beta: Vec<f32> = (0..37).map(|i| i as f32 / 36.0).collect();
    let model = Craft::small()
        .f32("lif1.beta", &[37], &beta)
        .f32("lif2.threshold", &[1], &[0.5])
        .load()
        .expect("a [out] vector and a [1] scalar are both accepted");
    assert_eq!(model.layers()[0].beta, beta);
    assert_eq!(model.layers()[1].threshold, [0.5; 5]);
}

// ---------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------

#[test]
fn nan_and_infinity_in_tensors_are_refused_with_their_index() {
    let cases = [
        ("fc1.weight", 17, f32::NAN),
        ("fc2.weight", 184, f32::INFINITY),
        ("fc1.weight", 0, f32::NEG_INFINITY),
        ("fc2.bias", 4, f32::NAN),
    ];
    for (name, index, value) in cases {
        let err = assert_err!(
            Craft::small().poke(name, index, value).load(),
            Error::NonFinite { .. },
            name
        );
        let Error::NonFinite {
            index: at,
            value: v,
            ..
        } = err
        else {
            unreachable!()
        };
        assert_eq!(at, index, "{name}");
        assert_eq!(v.to_bits(), value.to_bits(), "{name}");
    }
    for (name, value) in [
        ("lif1.beta", f32::NAN),
        ("lif2.threshold", f32::INFINITY),
        ("lif1.graded_spikes_factor", f32::NAN),
    ] {
        assert_err!(
            Craft::small().scalar(name, value).load(),
            Error::NonFinite { .. },
            name
        );
    }
    assert_err!(
        new_with(|layers, _, _| layers[1].weight[3] = f32::NAN),
        Error::NonFinite { index: 3, .. },
        "fc2.weight"
    );
    assert_err!(
        new_with(|layers, _, _| layers[0].graded_spikes_factor = f32::INFINITY),
        Error::NonFinite { .. },
        "lif1.graded_spikes_factor"
    );
}

#[test]
fn beta_outside_zero_one_is_refused() {
    for (name, beta) in [
        ("lif1.beta", -0.1),
        ("lif2.beta", 1.0001),
        ("lif1.beta", -f32::MIN_POSITIVE),
    ] {
        let err = assert_err!(
            Craft::small().scalar(name, beta).load(),
            Error::OutOfRange { .. },
            name
        );
        assert!(err.to_string().contains("[0, 1]"), "states the rule: {err}");
    }
    // Per-neuron: the first bad neuron is reported.
    let mut beta = vec![0.5; 37];
    beta[30] = 2.0;
    let err = assert_err!(
        Craft::small().f32("lif1.beta", &[37], &beta).load(),
        Error::OutOfRange { index: 30, .. },
        "lif1.beta"
    );
    let Error::OutOfRange { value, .. } = err else {
        unreachable!()
    };
    assert_eq!(value, 2.0);
    assert_err!(
        new_with(|layers, _, _| layers[0].beta[1] = -0.5),
        Error::OutOfRange { index: 1, .. },
        "lif1.beta"
    );
}

#[test]
fn beta_at_the_bounds_is_accepted() {
    let model = Craft::small()
        .scalar("lif1.beta", 0.0)
        .scalar("lif2.beta", 1.0)
        .load()
        .expect("beta 0 and 1 are valid");
    assert_eq!(model.layers()[0].beta, [0.0; 37]);
    assert_eq!(model.layers()[1].beta, [1.0; 5]);
}

#[test]
fn threshold_zero_or_negative_is_refused() {
    for (name, threshold) in [
        ("lif1.threshold", 0.0),
        ("lif2.threshold", -1.0),
        ("lif1.threshold", -0.0),
    ] {
        let err = assert_err!(
            Craft::small().scalar(name, threshold).load(),
            Error::OutOfRange { .. },
            name
        );
        assert!(err.to_string().contains("> 0"), "states the rule: {err}");
    }
    assert_err!(
        new_with(|layers, _, _| layers[0].threshold[2] = 0.0),
        Error::OutOfRange { index: 2, .. },
        "lif1.threshold"
    );
    let model = Craft::small()
        .scalar("lif1.threshold", f32::MIN_POSITIVE)
        .load()
        .expect("any positive threshold is valid");
    assert_eq!(model.layers()[0].threshold[0], f32::MIN_POSITIVE);
}

#[test]
fn reset_mechanism_values() {
    for (val, reset) in [
        (0, ResetMechanism::Subtract),
        (1, ResetMechanism::Zero),
        (2, ResetMechanism::None),
    ] {
        let model = Craft::small()
            .i64("lif2.reset_mechanism_val", val)
            .load()
            .unwrap();
        assert_eq!(model.layers()[1].reset, reset);
        assert_eq!(reset.val(), val);
        assert_eq!(ResetMechanism::from_val(val), Some(reset));
    }
    // I32 is accepted too.
    let model = Craft::small()
        .raw(
            "lif1.reset_mechanism_val",
            Dtype::I32,
            &[],
            1i32.to_le_bytes().to_vec(),
        )
        .load()
        .unwrap();
    assert_eq!(model.layers()[0].reset, ResetMechanism::Zero);
    for val in [3, -1, i64::MAX] {
        let err = assert_err!(
            Craft::small().i64("lif1.reset_mechanism_val", val).load(),
            Error::OutOfRange { .. },
            "lif1.reset_mechanism_val"
        );
        let Error::OutOfRange { value, .. } = err else {
            unreachable!()
        };
        assert_eq!(value, val as f64);
    }
    assert_err!(
        Craft::small()
            .raw(
                "lif1.reset_mechanism_val",
                Dtype::I64,
                &[2],
                [0u8; 16].to_vec()
            )
            .load(),
        Error::WrongShape { .. },
        "lif1.reset_mechanism_val"
    );
}

// ---------------------------------------------------------------------------
// Dtypes
// ---------------------------------------------------------------------------

#[test]
fn wrong_dtypes_are_refused_naming_the_tensor_and_dtype() {
    let f64_weight: Vec<u8> = Craft::small()
        .values("fc1.weight")
        .iter()
        .flat_map(|&v| (v as f64).to_le_bytes())
        .collect();
    let cases = [
        Craft::small().raw("fc1.weight", Dtype::F64, &[37, 13], f64_weight),
        Craft::small().raw("fc2.bias", Dtype::I64, &[5], vec![0; 40]),
        Craft::small().raw("lif1.beta", Dtype::F16, &[], vec![0, 0x38]),
        Craft::small().raw("lif2.threshold", Dtype::BF16, &[], vec![0x80, 0x3f]),
        Craft::small().raw(
            "lif1.graded_spikes_factor",
            Dtype::F64,
            &[],
            1f64.to_le_bytes().to_vec(),
        ),
        Craft::small().scalar("lif1.reset_mechanism_val", 0.0),
        Craft::small().raw("lif2.reset_mechanism_val", Dtype::U8, &[], vec![0]),
    ];
    let names = [
        ("fc1.weight", "F64"),
        ("fc2.bias", "I64"),
        ("lif1.beta", "F16"),
        ("lif2.threshold", "BF16"),
        ("lif1.graded_spikes_factor", "F64"),
        ("lif1.reset_mechanism_val", "F32"),
        ("lif2.reset_mechanism_val", "U8"),
    ];
    for (craft, (name, dtype)) in cases.iter().zip(names) {
        let err = assert_err!(craft.load(), Error::WrongDtype { .. }, name);
        let Error::WrongDtype { found, .. } = &err else {
            unreachable!()
        };
        assert_eq!(found, dtype);
        assert!(err.to_string().contains(dtype), "{err}");
    }
}

// ---------------------------------------------------------------------------
// Missing and unexpected tensors
// ---------------------------------------------------------------------------

#[test]
fn missing_required_tensors_are_named() {
    for name in ["lif1.beta", "lif1.threshold", "lif2.beta", "lif2.threshold"] {
        assert_err!(
            Craft::small().without(name).load(),
            Error::MissingTensor { .. },
            name
        );
    }
}

#[test]
fn missing_first_weight_is_named() {
    // The other fc1/lif1 tensors are still there; the error must point at the
    // missing weight, not at them.
    assert_err!(
        Craft::small().without("fc1.weight").load(),
        Error::MissingTensor { .. },
        "fc1.weight"
    );
    assert_err!(
        Craft::empty().meta("steps", "4").load(),
        Error::MissingTensor { .. },
        "fc1.weight"
    );
    assert_err!(
        SnnModel::new(vec![], 4, ModelMeta::defaults(0)),
        Error::MissingTensor { .. },
        "fc1.weight"
    );
}

#[test]
fn optional_tensors_take_their_snntorch_defaults() {
    let model = Craft::small()
        .without("fc1.bias")
        .without("lif1.reset_mechanism_val")
        .without("lif2.graded_spikes_factor")
        .load()
        .expect("bias, reset_mechanism_val and graded_spikes_factor are optional");
    assert_eq!(
        model.layers()[0].bias,
        [0.0; 37],
        "no bias: zeros (Linear(bias=False))"
    );
    assert_eq!(model.layers()[0].reset, ResetMechanism::Subtract);
    assert_eq!(model.layers()[1].graded_spikes_factor, 1.0);
}

#[test]
fn a_gap_in_layer_numbering_is_an_unexpected_tensor() {
    // fc1 and fc3 but no fc2: only fc1 is a layer, everything numbered 3 is unexpected.
    let craft = ["fc2.weight", "fc2.bias", "lif2.beta", "lif2.threshold"]
        .iter()
        .fold(Craft::small(), |c, name| {
            c.rename(name, &name.replace('2', "3"))
        })
        .without("lif2.reset_mechanism_val")
        .without("lif2.graded_spikes_factor");
    let err = common::unwrap_err(craft.load());
    assert!(matches!(err, Error::WrongShape { .. }), "{err:?}");
    let name = common::subject(&err).unwrap().to_string();
    assert!(
        ["fc3.weight", "fc3.bias", "lif3.beta", "lif3.threshold"].contains(&name.as_str()),
        "names a layer-3 tensor: {err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains(&name) && msg.contains("no such tensor"),
        "{msg}"
    );
    assert!(
        msg.contains("1 layer"),
        "says how many layers the file has: {msg}"
    );

    // With layer 2 dropped and only a weight numbered 3, the named tensor is deterministic.
    let one_layer = [
        "fc2.weight",
        "fc2.bias",
        "lif2.beta",
        "lif2.threshold",
        "lif2.reset_mechanism_val",
        "lif2.graded_spikes_factor",
    ]
    .iter()
    .fold(Craft::small(), |c, name| c.without(name));
    assert_eq!(
        one_layer
            .load()
            .expect("layer 1 alone is a valid model")
            .outputs(),
        37
    );
    assert_err!(
        one_layer.f32("fc3.weight", &[5, 37], &[0.0; 185]).load(),
        Error::WrongShape { .. },
        "fc3.weight"
    );
}

#[test]
fn unexpected_tensor_names_are_refused() {
    for name in [
        "lif1.mem",
        "fc1.running_mean",
        "model.fc1.weight",
        "fc1.weight.orig",
        "lif0.beta",
        "readout",
    ] {
        assert_err!(
            Craft::small().f32(name, &[2], &[0.0, 1.0]).load(),
            Error::WrongShape { .. },
            name
        );
    }
}

#[test]
fn cx_tensors_are_allowed_and_ignored() {
    let model = Craft::small()
        .f32("cx.readout_scale", &[5], &[1.0; 5])
        .load()
        .expect("cx.* tensors are ours and may be added");
    assert_eq!(
        model.layers(),
        SnnModel::from_bytes(common::SMALL).unwrap().layers()
    );
}

// ---------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------

/// A file of `n` layers `2 -> 2`.
fn chain(n: usize) -> Craft {
    (1..=n)
        .fold(Craft::empty(), |c, i| {
            c.f32(&format!("fc{i}.weight"), &[2, 2], &[0.5, -0.5, 0.25, 1.0])
                .scalar(&format!("lif{i}.beta"), 0.9)
                .scalar(&format!("lif{i}.threshold"), 1.0)
        })
        .meta("steps", "4")
}

#[test]
fn too_many_layers_are_refused() {
    let model = chain(limits::LAYERS_MAX)
        .load()
        .expect("LAYERS_MAX layers are allowed");
    assert_eq!(model.layers().len(), limits::LAYERS_MAX);

    let err = assert_err!(
        chain(limits::LAYERS_MAX + 1).load(),
        Error::LimitExceeded { .. },
        "number of layers"
    );
    let Error::LimitExceeded { value, limit, .. } = err else {
        unreachable!()
    };
    assert_eq!((value, limit), (limits::LAYERS_MAX + 1, limits::LAYERS_MAX));

    let layers = vec![layer(2, 2, 0.5, 1.0, ResetMechanism::Subtract); limits::LAYERS_MAX + 1];
    assert_err!(
        SnnModel::new(layers, 4, ModelMeta::defaults(2)),
        Error::LimitExceeded { .. },
        "number of layers"
    );
}

#[test]
fn thousands_of_layers_are_refused_quickly() {
    // The layer count must be checked before the per-name checks, which would
    // otherwise cost layers x tensors work for a small file.
    let craft = (1..=20_000).fold(Craft::empty(), |c, i| {
        c.f32(&format!("fc{i}.weight"), &[1, 1], &[0.5])
    });
    let bytes = craft.meta("steps", "4").bytes();
    assert!(bytes.len() < 2 << 20, "a small file: {} bytes", bytes.len());
    let start = std::time::Instant::now();
    assert_err!(
        SnnModel::from_bytes(&bytes),
        Error::LimitExceeded { .. },
        "number of layers"
    );
    let took = start.elapsed();
    assert!(took.as_secs() < 10, "refusing took {took:?}");
}

#[test]
fn width_over_the_limit_is_refused() {
    let over = limits::WIDTH_MAX + 1;
    // In memory: the width check comes before any length check, so no weights are needed.
    let wide_in = LifLayer::new(
        over,
        2,
        vec![],
        vec![0.0; 2],
        0.5,
        1.0,
        ResetMechanism::Subtract,
    );
    let err = assert_err!(
        SnnModel::new(vec![wide_in], 4, ModelMeta::defaults(2)),
        Error::LimitExceeded { .. },
        "fc1 input width"
    );
    let Error::LimitExceeded { value, limit, .. } = err else {
        unreachable!()
    };
    assert_eq!((value, limit), (over, limits::WIDTH_MAX));
    let wide_out = LifLayer::new(2, over, vec![], vec![], 0.5, 1.0, ResetMechanism::Subtract);
    assert_err!(
        SnnModel::new(
            vec![layer(3, 2, 0.5, 1.0, ResetMechanism::Subtract), wide_out],
            4,
            ModelMeta::defaults(over)
        ),
        Error::LimitExceeded { .. },
        "fc2 output width"
    );

    // In a file: a weight with a zero dimension holds no data, so the file stays small.
    let header_only = |inputs: usize, outputs: usize| {
        Craft::small()
            .f32("fc1.weight", &[outputs, inputs], &[])
            .without("fc1.bias")
    };
    assert_err!(
        header_only(over, 0).load(),
        Error::LimitExceeded { .. },
        "fc1 input width"
    );
    assert_err!(
        header_only(0, over).load(),
        Error::LimitExceeded { .. },
        "fc1 output width"
    );
}

#[test]
fn absurd_widths_in_a_header_are_refused_before_allocating() {
    // A few hundred bytes claiming a layer of 2^62 neurons: refused from the
    // shape alone, without broadcasting bias, beta or threshold to that width
    // (which panics with "capacity overflow", or for widths like 2^32 asks for
    // gigabytes).
    for outputs in [1usize << 62, usize::MAX, 1 << 32] {
        let craft = Craft::empty()
            .f32("fc1.weight", &[outputs, 0], &[])
            .scalar("lif1.beta", 0.9)
            .scalar("lif1.threshold", 1.0)
            .meta("steps", "4");
        assert!(craft.bytes().len() < 512);
        assert_err!(
            craft.load(),
            Error::LimitExceeded { .. },
            "fc1 output width"
        );
    }
}

#[test]
fn total_weights_over_the_limit_are_refused() {
    // 16384 x 4097 weights: every width is within WIDTH_MAX but the total is not.
    let (inputs, outputs) = (
        limits::WIDTH_MAX,
        limits::PARAMS_MAX / limits::WIDTH_MAX + 1,
    );
    let big = LifLayer::new(
        inputs,
        outputs,
        vec![0.0; inputs * outputs],
        vec![0.0; outputs],
        0.5,
        1.0,
        ResetMechanism::Subtract,
    );
    let err = assert_err!(
        SnnModel::new(vec![big], 1, ModelMeta::defaults(outputs)),
        Error::LimitExceeded { .. },
        "total weight count"
    );
    let Error::LimitExceeded { value, limit, .. } = err else {
        unreachable!()
    };
    assert_eq!((value, limit), (inputs * outputs, limits::PARAMS_MAX));
}

// ---------------------------------------------------------------------------
// Metadata
// ---------------------------------------------------------------------------

#[test]
fn missing_steps_is_refused() {
    let err = assert_err!(
        Craft::small().without_meta("steps").load(),
        Error::BadMetadata { .. },
        "steps"
    );
    assert!(err.to_string().contains("missing"), "{err}");
    // No metadata at all.
    let mut craft = Craft::small();
    craft.meta.clear();
    assert_err!(craft.load(), Error::BadMetadata { .. }, "steps");
}

#[test]
fn steps_out_of_range_or_unparsable_is_refused() {
    let max = limits::STEPS_MAX.to_string();
    let over = (limits::STEPS_MAX + 1).to_string();
    for value in [
        "0",
        "abc",
        "",
        "-1",
        "8.0",
        "1e3",
        "99999999999",
        over.as_str(),
    ] {
        let err = assert_err!(
            Craft::small().meta("steps", value).load(),
            Error::BadMetadata { .. },
            "steps"
        );
        assert!(err.to_string().contains(value), "quotes the value: {err}");
    }
    let err = assert_err!(
        Craft::small().meta("steps", &over).load(),
        Error::BadMetadata { .. },
        "steps"
    );
    assert!(err.to_string().contains(&max), "states the limit: {err}");

    for steps in [0, limits::STEPS_MAX + 1, u32::MAX] {
        assert_err!(
            new_with(|_, s, _| *s = steps),
            Error::BadMetadata { .. },
            "steps"
        );
    }
    for steps in [1, limits::STEPS_MAX] {
        let model = Craft::small()
            .meta("steps", &steps.to_string())
            .load()
            .unwrap();
        assert_eq!(model.steps(), steps, "the bounds are inclusive");
    }
}

#[test]
fn offer_ids_of_the_wrong_length_or_not_json_are_refused() {
    for value in ["[0,1,2,3]", "[0,1,2,3,4,5]", "[]"] {
        let err = assert_err!(
            Craft::small().meta("cx.offer_ids", value).load(),
            Error::BadMetadata { .. },
            "cx.offer_ids"
        );
        assert!(err.to_string().contains("5 output columns"), "{err}");
    }
    for value in [
        "0,1,2,3,4",
        "[0,1,2,3,",
        "[0,1,2,3,-4]",
        r#"["a","b","c","d","e"]"#,
        "[0,1,2,3,4.5]",
        "",
        "null",
    ] {
        assert_err!(
            Craft::small().meta("cx.offer_ids", value).load(),
            Error::BadMetadata { .. },
            "cx.offer_ids"
        );
    }
    assert_err!(
        new_with(|_, _, meta| meta.offer_ids.push(9)),
        Error::BadMetadata { .. },
        "cx.offer_ids"
    );
    let model = Craft::small()
        .meta("cx.offer_ids", "[9,8,7,6,18446744073709551615]")
        .load()
        .unwrap();
    assert_eq!(model.meta().offer_ids, [9, 8, 7, 6, u64::MAX]);
}

#[test]
fn repeated_offer_ids_are_refused_naming_the_id_and_columns() {
    for (value, id, columns) in [
        ("[1000,1000,1000,1000,1000]", 1000, "columns 0 and 1"),
        ("[1,2,3,4,2]", 2, "columns 1 and 4"),
        ("[7,8,9,9,7]", 9, "columns 2 and 3"),
    ] {
        let err = assert_err!(
            Craft::small().meta("cx.offer_ids", value).load(),
            Error::BadMetadata { .. },
            "cx.offer_ids"
        );
        let text = err.to_string();
        assert!(
            text.contains(&format!("repeats offer {id} ({columns})")),
            "{text}"
        );
    }
    assert_err!(
        new_with(|_, _, meta| meta.offer_ids = vec![5, 6, 5]),
        Error::BadMetadata { .. },
        "cx.offer_ids"
    );
}

#[test]
fn bad_calibration_is_refused() {
    let platt = |w_rate: &str, w_mem: &str, bias: &str| {
        format!(r#"{{"method":"platt","w_rate":{w_rate},"w_mem":{w_mem},"bias":{bias}}}"#)
    };
    let five = "[1,2,3,4,5]";
    let cases = [
        ("{".to_string(), None),
        ("spike_rate".to_string(), None),
        (r#"{"method":"isotonic"}"#.to_string(), None),
        (r#"{"w_rate":[1,2,3,4,5]}"#.to_string(), None),
        (
            r#"{"method":"platt","w_rate":[1,2,3,4,5]}"#.to_string(),
            None,
        ),
        (platt("[1,2,3,4]", five, five), Some("w_rate")),
        (platt(five, "[1,2,3,4,5,6]", five), Some("w_mem")),
        (platt(five, five, "[]"), Some("bias")),
        (platt(five, five, "[1,2,3,4,1e39]"), None),
    ];
    for (value, field) in cases {
        let err = assert_err!(
            Craft::small().meta("cx.calibration", &value).load(),
            Error::BadMetadata { .. },
            "cx.calibration"
        );
        if let Some(field) = field {
            assert!(err.to_string().contains(field), "names `{field}`: {err}");
        }
    }
    let model = Craft::small()
        .meta("cx.calibration", &platt(five, five, "[0,0,0,0,-1]"))
        .load()
        .expect("a valid Platt calibration loads");
    assert!(
        matches!(&model.meta().calibration, Calibration::Platt { bias, .. } if bias[4] == -1.0)
    );
    let model = Craft::small()
        .meta("cx.calibration", r#"{"method":"spike_rate"}"#)
        .load()
        .unwrap();
    assert_eq!(model.meta().calibration, Calibration::SpikeRate);
}

#[test]
fn bad_calibration_is_refused_by_new() {
    let err = assert_err!(
        new_with(|_, _, meta| {
            if let Calibration::Platt { w_mem, .. } = &mut meta.calibration {
                w_mem[1] = f32::NAN;
            }
        }),
        Error::BadMetadata { .. },
        "cx.calibration"
    );
    assert!(err.to_string().contains("w_mem[1]"), "{err}");
    let err = assert_err!(
        new_with(|_, _, meta| {
            if let Calibration::Platt { bias, .. } = &mut meta.calibration {
                bias.pop();
            }
        }),
        Error::BadMetadata { .. },
        "cx.calibration"
    );
    assert!(err.to_string().contains("bias"), "{err}");
}

#[test]
fn cx_metadata_keys_are_read() {
    let model = Craft::small()
        .meta("cx.name", "ranker")
        .meta("cx.version", "3")
        .meta("cx.feature_schema_id", "schema-9")
        .meta("cx.other", "kept")
        .load()
        .unwrap();
    let meta = model.meta();
    assert_eq!((meta.name.as_str(), meta.version.as_str()), ("ranker", "3"));
    assert_eq!(meta.feature_schema_id.as_deref(), Some("schema-9"));
    assert_eq!(meta.extra.get("cx.other").map(String::as_str), Some("kept"));
    assert!(
        !meta.extra.contains_key("cx.name"),
        "known keys are not duplicated into extra"
    );
}

#[test]
fn extra_keys_that_shadow_known_keys_are_refused_by_new() {
    // `to_bytes` writes the known keys over such entries, so the model would not
    // round-trip; `new` refuses them instead.
    for key in [
        "steps",
        "cx.name",
        "cx.version",
        "cx.feature_schema_id",
        "cx.offer_ids",
        "cx.calibration",
    ] {
        assert_err!(
            new_with(|_, _, meta| {
                meta.extra.insert(key.into(), "x".into());
            }),
            Error::BadMetadata { .. },
            key
        );
    }
}
