//! Conformance with snnTorch 1.0.0: the scalar kernel and the SIMD kernel
//! on every tier this CPU has must reproduce the reference traces. Spikes
//! must be identical at every step and neuron, except where the reference
//! membrane lies within 1e-4 of the threshold; membranes must agree within
//! 1e-4.

#[macro_use]
mod common;

use common::{fixture, run_traced, shared, Kernel};
use cx_backends::simd::{self, Block};
use cx_backends::{scalar, SimdTier, Trace};
use cx_model::{ResetMechanism, SnnModel};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;

const TOL: f32 = 1e-4;

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("read trace")).expect("parse trace")
}

fn floats(v: &Value) -> Vec<f32> {
    match v {
        Value::Array(items) => items.iter().flat_map(floats).collect(),
        Value::Number(n) => vec![n.as_f64().expect("number") as f32],
        Value::Bool(b) => vec![*b as u8 as f32],
        other => panic!("unexpected JSON value {other}"),
    }
}

/// Compares one layer's trace (`[batch][step][neuron]`) against the reference.
/// Returns how many spikes were excused for lying within `TOL` of threshold.
fn compare_layer(
    label: &str,
    trace: &Trace,
    layer: usize,
    spk_ref: &[f32],
    mem_ref: &[f32],
    threshold: f32,
) -> usize {
    let got = &trace.layers[layer];
    let spk: Vec<f32> = got
        .spk
        .iter()
        .flatten()
        .flatten()
        .map(|&s| s as f32)
        .collect();
    let mem: Vec<f32> = got.mem.iter().flatten().flatten().copied().collect();
    assert_eq!(
        spk.len(),
        spk_ref.len(),
        "{label}: layer {layer} trace size"
    );
    let mut excused = 0;
    for i in 0..spk.len() {
        assert!(
            (mem[i] - mem_ref[i]).abs() <= TOL,
            "{label}: layer {layer} flat index {i}: mem {} vs reference {}",
            mem[i],
            mem_ref[i]
        );
        if spk[i] != spk_ref[i] {
            assert!(
                (mem_ref[i] - threshold).abs() < TOL,
                "{label}: layer {layer} flat index {i}: spike {} vs reference {} with mem {} far from threshold",
                spk[i],
                spk_ref[i],
                mem_ref[i]
            );
            excused += 1;
        }
    }
    excused
}

/// The network at `model_path` through `kernels`, against its snnTorch trace.
fn check_network(model_path: &Path, trace_path: &Path, kernels: &[Kernel]) {
    let model = Arc::new(SnnModel::load(model_path).expect("load model"));
    let reference = read_json(trace_path);
    let batch = reference["batch"].as_u64().expect("batch") as usize;
    let threshold = reference["threshold"].as_f64().expect("threshold") as f32;
    let x = floats(&reference["x"]);
    assert_eq!(model.steps() as u64, reference["T"].as_u64().unwrap());
    let (w1, w2) = (floats(&reference["w1"]), floats(&reference["w2"]));
    assert_eq!(
        model.layers()[0].weight,
        w1,
        "fc1.weight matches the trace's w1"
    );
    assert_eq!(
        model.layers()[1].weight,
        w2,
        "fc2.weight matches the trace's w2"
    );
    for &kernel in kernels {
        let label = format!("{kernel:?} on {}", model_path.display());
        let (out, trace) = run_traced(kernel, &model, &x, batch);
        let mut excused = 0;
        for (layer, (spk, mem)) in [("spk1", "mem1"), ("spk2", "mem2")].iter().enumerate() {
            let (spk_ref, mem_ref) = (floats(&reference[spk]), floats(&reference[mem]));
            excused += compare_layer(&label, &trace, layer, &spk_ref, &mem_ref, threshold);
        }
        if excused == 0 {
            let counts: Vec<f32> = out.spike_count.iter().map(|&c| c as f32).collect();
            assert_eq!(
                counts,
                floats(&reference["spike_count2"]),
                "{label}: spike counts"
            );
        }
        assert!(
            excused * 100 < trace.layers[0].spk.len().max(1),
            "{label}: {excused} near-threshold spikes"
        );
    }
}

fn small_network(kernels: &[Kernel]) {
    check_network(
        &fixture("snntorch_net_small.safetensors"),
        &fixture("snntorch_net_small.json"),
        kernels,
    );
}

fn network_64x256x16(kernels: &[Kernel]) {
    let (Some(model), Some(trace)) = (
        shared("snn/snntorch_net_64x256x16.safetensors"),
        shared("snn/snntorch_net_64x256x16.json"),
    ) else {
        return;
    };
    check_network(&model, &trace, kernels);
}

#[test]
fn scalar_small_network_matches_snntorch() {
    small_network(&[Kernel::Scalar]);
}

#[test]
fn scalar_network_64x256x16_matches_snntorch() {
    network_64x256x16(&[Kernel::Scalar]);
}

fn small_network_matches_snntorch(tier: SimdTier) {
    small_network(&[Kernel::Simd(tier)]);
}

fn network_64x256x16_matches_snntorch(tier: SimdTier) {
    network_64x256x16(&[Kernel::Simd(tier)]);
}

fn reset_of(name: &str) -> ResetMechanism {
    match name {
        "subtract" => ResetMechanism::Subtract,
        "zero" => ResetMechanism::Zero,
        "none" => ResetMechanism::None,
        other => panic!("unknown reset {other}"),
    }
}

/// Runs the single-neuron-layer cases through the scalar LIF step and the
/// SIMD one on `tier`, with the reference's time-varying input currents.
/// snnTorch's `reset_delay=False` cannot be expressed in a state_dict and is
/// not supported; those cases are skipped, and the test asserts that every
/// reset mechanism was covered.
fn leaky_neuron_cases_match_snntorch_for_all_reset_mechanisms(tier: SimdTier) {
    let reference = read_json(&fixture("snntorch_leaky_neuron.json"));
    let n = reference["N"].as_u64().unwrap() as usize;
    let currents: Vec<Vec<f32>> = reference["input_current"]
        .as_array()
        .unwrap()
        .iter()
        .map(floats)
        .collect();
    let mut covered = std::collections::BTreeSet::new();
    for case in reference["cases"].as_array().unwrap() {
        if !case["reset_delay"].as_bool().unwrap() {
            continue;
        }
        let beta = case["beta"].as_f64().unwrap() as f32;
        let thr = case["threshold"].as_f64().unwrap() as f32;
        let reset = reset_of(case["reset_mechanism"].as_str().unwrap());
        covered.insert(reset.name());
        let (spk_ref, mem_ref) = (floats(&case["spk"]), floats(&case["mem"]));
        let label = format!("beta {beta} thr {thr} {}", reset.name());

        let (betas, thrs) = (vec![beta; n], vec![thr; n]);
        let mut mem = vec![0.0; n];
        let mut spk = vec![false; n];
        let nv = simd::kernels::vectors_for(n);
        let pad = |v: &[f32], fill: f32| simd::pad(v, nv, fill);
        let (beta_v, thr_v) = (pad(&betas, 0.0), pad(&thrs, 1.0));
        let mut mem_v = vec![Block::ZERO; nv];
        let mut spikes = vec![0u32; nv * 16 + simd::kernels::SPIKES_SLACK];
        for (t, cur) in currents.iter().enumerate() {
            scalar::lif_step(&mut mem, cur, &betas, &thrs, reset, &mut spk);
            let fired = simd::lif_step(
                tier,
                &mut mem_v,
                &pad(cur, 0.0),
                &beta_v,
                &thr_v,
                reset,
                &mut spikes,
            );
            let mem_simd: Vec<f32> = mem_v.iter().flat_map(|v| v.0).take(n).collect();
            for i in 0..n {
                let (r_spk, r_mem) = (spk_ref[t * n + i], mem_ref[t * n + i]);
                assert!(
                    (mem[i] - r_mem).abs() <= TOL,
                    "{label} t{t} n{i}: scalar mem {} vs {r_mem}",
                    mem[i]
                );
                assert!(
                    (mem_simd[i] - r_mem).abs() <= TOL,
                    "{label} t{t} n{i}: simd mem {} vs {r_mem}",
                    mem_simd[i]
                );
                let near = (r_mem - thr).abs() < TOL;
                assert!(
                    near || spk[i] == (r_spk == 1.0),
                    "{label} t{t} n{i}: scalar spike"
                );
                let simd_spk = spikes[..fired].contains(&((i as u32) << simd::kernels::ROW_SHIFT));
                assert!(
                    near || simd_spk == (r_spk == 1.0),
                    "{label} t{t} n{i}: simd spike"
                );
            }
        }
    }
    assert_eq!(
        covered.len(),
        3,
        "all three reset mechanisms covered: {covered:?}"
    );
}

per_tier! {
    small_network_matches_snntorch => small_network_matches_snntorch,
    network_64x256x16_matches_snntorch => network_64x256x16_matches_snntorch,
    leaky_neuron_cases_match_snntorch_for_all_reset_mechanisms =>
        leaky_neuron_cases_match_snntorch_for_all_reset_mechanisms,
}
