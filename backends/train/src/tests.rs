//! Trainer tests: it learns a task with known structure, it is
//! deterministic, its forward pass is the serving kernels', its readout
//! gradients match finite differences, and bad config or data is refused.

use super::*;
use cx_backends::{CoLaNetProvider, ScalarBackend, SimdBackend, SimdTier};
use cx_model::Readout;
use std::sync::Arc;

/// A task with a known answer: `D` features, one-hot-ish and dense mixed,
/// `offers` columns; the click probability is a logistic function of the
/// features plus a per-offer effect.
struct Task {
    x: Vec<f32>,
    column: Vec<u32>,
    label: Vec<f32>,
    p_true: Vec<f32>,
    inputs: usize,
}

fn task(rows: usize, seed: u64) -> Task {
    const D: usize = 24;
    const OFFERS: u32 = 4;
    let mut truth = ChaCha8Rng::seed_from_u64(99);
    let w: Vec<f32> = (0..D).map(|_| truth.random_range(-2.0..2.0)).collect();
    let offer_effect: Vec<f32> = (0..OFFERS).map(|_| truth.random_range(-1.0..1.0)).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut t = Task {
        x: Vec::new(),
        column: Vec::new(),
        label: Vec::new(),
        p_true: Vec::new(),
        inputs: D,
    };
    for _ in 0..rows {
        let row: Vec<f32> = (0..D)
            .map(|d| {
                if d < 8 {
                    rng.random_range(0.0..1.0)
                } else if rng.random_bool(0.2) {
                    1.0
                } else {
                    0.0
                }
            })
            .collect();
        let o = rng.random_range(0..OFFERS);
        let logit = row.iter().zip(&w).map(|(a, b)| a * b).sum::<f32>() * 0.7
            + offer_effect[o as usize]
            - 1.0;
        let p = 1.0 / (1.0 + (-logit).exp());
        t.label
            .push(if rng.random_bool(p as f64) { 1.0 } else { 0.0 });
        t.p_true.push(p);
        t.column.push(o);
        t.x.extend(row);
    }
    t
}

fn examples(t: &Task) -> Examples<'_> {
    Examples {
        x: &t.x,
        inputs: t.inputs,
        column: &t.column,
        label: &t.label,
    }
}

fn small_config() -> TrainConfig {
    TrainConfig {
        hidden: vec![32],
        epochs: 6,
        batch_size: 32,
        learning_rate: 0.01,
        ..TrainConfig::default()
    }
}

#[test]
fn training_learns_a_task_with_known_structure() {
    let train_set = task(4000, 1);
    let test_set = task(2000, 2);
    let (net, history) = train(&small_config(), examples(&train_set), 4, |_| {}).unwrap();
    assert!(
        history.last().unwrap().loss_mean < history[0].loss_mean,
        "loss falls over the epochs: {history:?}"
    );
    let predicted = predict(&net, examples(&test_set));
    let model_auc = metrics::auc(&predicted, &test_set.label).unwrap();
    let oracle_auc = metrics::auc(&test_set.p_true, &test_set.label).unwrap();
    eprintln!("model AUC {model_auc:.4}, oracle AUC {oracle_auc:.4}, losses {history:?}");
    assert!(
        oracle_auc > 0.75,
        "the task has signal: oracle AUC {oracle_auc}"
    );
    assert!(
        model_auc > oracle_auc - 0.08,
        "model AUC {model_auc} vs oracle {oracle_auc}"
    );
    let baseline = train_logistic(&small_config(), examples(&train_set), 4).unwrap();
    let baseline_auc = metrics::auc(
        &logistic::predict(&baseline, examples(&test_set)),
        &test_set.label,
    )
    .unwrap();
    eprintln!("logistic baseline AUC {baseline_auc:.4}");
    assert!(
        baseline_auc > oracle_auc - 0.05,
        "the baseline learns the (logistic) task too: {baseline_auc}"
    );
    let base = test_set.label.iter().sum::<f32>() / test_set.label.len() as f32;
    let constant = vec![base; test_set.label.len()];
    assert!(
        metrics::log_loss(&predicted, &test_set.label)
            < metrics::log_loss(&constant, &test_set.label),
        "better than predicting the base rate"
    );
}

#[test]
fn calibration_on_heldout_rows_improves_or_keeps_log_loss() {
    let train_set = task(3000, 11);
    let heldout = task(2000, 12);
    let test_set = task(2000, 13);
    let (mut net, _) = train(
        &TrainConfig {
            epochs: 2,
            ..small_config()
        },
        examples(&train_set),
        4,
        |_| {},
    )
    .unwrap();
    let before = metrics::log_loss(&predict(&net, examples(&test_set)), &test_set.label);
    let refitted = calibrate(&mut net, examples(&heldout));
    let after = metrics::log_loss(&predict(&net, examples(&test_set)), &test_set.label);
    eprintln!("log loss before calibration {before:.4}, after {after:.4}");
    assert_eq!(refitted, 4, "every column has enough held-out rows");
    assert!(
        after <= before + 0.002,
        "calibration must not hurt: {before} -> {after}"
    );
}

#[test]
fn training_is_deterministic_for_a_seed() {
    let data = task(600, 3);
    let config = TrainConfig {
        epochs: 2,
        ..small_config()
    };
    let (a, _) = train(&config, examples(&data), 4, |_| {}).unwrap();
    let (b, _) = train(&config, examples(&data), 4, |_| {}).unwrap();
    assert_eq!(a, b);
    let meta = ModelMeta::defaults(4);
    assert_eq!(
        a.to_model(meta.clone()).unwrap().to_bytes(),
        b.to_model(meta).unwrap().to_bytes()
    );
    let (c, _) = train(
        &TrainConfig { seed: 8, ..config },
        examples(&data),
        4,
        |_| {},
    )
    .unwrap();
    assert_ne!(a, c, "another seed gives another network");
}

#[test]
fn trained_model_scores_exactly_as_the_serving_backends() {
    let data = task(500, 4);
    let (net, _) = train(
        &TrainConfig {
            epochs: 1,
            ..small_config()
        },
        examples(&data),
        4,
        |_| {},
    )
    .unwrap();
    let expected = predict(&net, examples(&data));
    let model = Arc::new(net.to_model(ModelMeta::defaults(4)).unwrap());
    let rows = data.label.len();
    let mut out = Readout::with_capacity(rows, 4);
    for tier in SimdTier::supported() {
        let mut simd = SimdBackend::with_tier(model.clone(), rows, tier).unwrap();
        simd.infer(&data.x, rows, &mut out).unwrap();
        let served: Vec<f32> = (0..rows)
            .map(|i| out.probability_row(i)[data.column[i] as usize])
            .collect();
        assert_eq!(served, expected, "SIMD backend on {tier}");
    }
    let mut scalar = ScalarBackend::new(model, rows).unwrap();
    scalar.infer(&data.x, rows, &mut out).unwrap();
    let served: Vec<f32> = (0..rows)
        .map(|i| out.probability_row(i)[data.column[i] as usize])
        .collect();
    assert_eq!(served, expected, "scalar backend");
}

/// The gradients of every row of `data`, summed.
fn summed_gradients(net: &Network, config: &TrainConfig, data: &Task) -> Gradients {
    let mut grads = Gradients::zeros_like(net);
    let mut traj = Trajectory::new(net);
    for i in 0..data.label.len() {
        let row = Row {
            x: &data.x[i * data.inputs..(i + 1) * data.inputs],
            column: data.column[i] as usize,
            label: data.label[i],
        };
        backprop(net, config, &row, &mut traj, &mut grads);
    }
    grads
}

/// The readout parameters enter the loss smoothly, so their analytic
/// gradients must match central finite differences.
#[test]
fn readout_gradients_match_finite_differences() {
    let data = task(40, 5);
    let config = small_config();
    let net = Network::init(&config, data.inputs, 4, 0.3);
    let loss_of = |net: &Network| -> f64 {
        let p = predict(net, examples(&data));
        metrics::log_loss(&p, &data.label) * data.label.len() as f64
    };
    let grads = summed_gradients(&net, &config, &data);
    let eps = 1e-2f32;
    for o in 0..4 {
        for (name, analytic) in [
            ("w_rate", grads.w_rate[o]),
            ("w_mem", grads.w_mem[o]),
            ("bias", grads.out_bias[o]),
        ] {
            let nudge = |delta: f32| {
                let mut n = net.clone();
                match name {
                    "w_rate" => n.w_rate[o] += delta,
                    "w_mem" => n.w_mem[o] += delta,
                    _ => n.bias[o] += delta,
                }
                loss_of(&n)
            };
            let numeric = (nudge(eps) - nudge(-eps)) / (2.0 * eps as f64);
            let tolerance = 1e-2 * numeric.abs().max(1.0);
            assert!(
                (analytic as f64 - numeric).abs() < tolerance,
                "{name}[{o}]: analytic {analytic} vs numeric {numeric}"
            );
        }
    }
}

/// The gradient flows back through both layers, over time, to most of the
/// first layer's weights (through the surrogate), and stays finite.
#[test]
fn backward_pass_reaches_the_first_layer() {
    let data = task(64, 6);
    let config = small_config();
    let net = Network::init(&config, data.inputs, 4, 0.3);
    let grads = summed_gradients(&net, &config, &data);
    let nonzero = grads.weight[0].iter().filter(|g| **g != 0.0).count();
    assert!(
        nonzero > grads.weight[0].len() / 4,
        "gradient reaches most first-layer weights: {nonzero}"
    );
    assert!(grads.weight.iter().flatten().all(|g| g.is_finite()));
}

#[test]
fn bad_config_and_data_are_refused_with_the_field_named() {
    let data = task(10, 7);
    let cases: [(TrainConfig, &str); 5] = [
        (
            TrainConfig {
                hidden: vec![0],
                ..TrainConfig::default()
            },
            "hidden",
        ),
        (
            TrainConfig {
                steps: 0,
                ..TrainConfig::default()
            },
            "steps",
        ),
        (
            TrainConfig {
                beta_hidden: 1.5,
                ..TrainConfig::default()
            },
            "beta_hidden",
        ),
        (
            TrainConfig {
                learning_rate: f32::NAN,
                ..TrainConfig::default()
            },
            "learning_rate",
        ),
        (
            TrainConfig {
                epochs: 0,
                ..TrainConfig::default()
            },
            "epochs",
        ),
    ];
    for (config, field) in cases {
        let err = train(&config, examples(&data), 4, |_| {}).unwrap_err();
        assert!(matches!(err, TrainError::Config { .. }), "{err}");
        assert!(err.to_string().contains(field), "{err}");
    }
    let err = train(&small_config(), examples(&data), 3, |_| {}).unwrap_err();
    assert!(
        err.to_string().contains("output column"),
        "a column beyond the model: {err}"
    );
    let mut bad = task(10, 7);
    bad.label[2] = 0.5;
    let err = train(&small_config(), examples(&bad), 4, |_| {}).unwrap_err();
    assert!(err.to_string().contains("row 2 has label 0.5"), "{err}");
    bad.label[2] = 1.0;
    bad.x[5] = f32::INFINITY;
    let err = train(&small_config(), examples(&bad), 4, |_| {}).unwrap_err();
    assert!(err.to_string().contains("row 0, feature 5"), "{err}");
}
