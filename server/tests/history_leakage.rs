//! Point-in-time store features do not leak the label; features computed
//! with the row itself do, and inflate AUC.
//!
//! A synthetic log whose users have a hidden click bias (their history
//! predicts their clicks) is featurised twice with the bundled store
//! definitions: point in time (each row sees only earlier rows, what
//! `cx train --store-features` does) and through the row itself (its own
//! click counted in `clicks_30d`: leakage). A logistic model is fitted on
//! the first 70% of rows in time and scored on the rest. No honest model
//! can beat the generator's oracle `p_true` by much; the leaky one does.

use cx_datasets::clicklog::{read_click_log, DatasetSpec};
use cx_datasets::synth::{write_csv, Generator, SynthConfig};
use cx_engine::featurestore::history::Visibility;
use cx_engine::featurestore::Definitions;
use cx_features::{FeatureNorm, FeatureSchema};
use cx_server::cli::history::featurize_with;
use cx_train::{metrics, Examples, TrainConfig};
use std::path::Path;
use std::sync::Arc;

const ROWS: u64 = 40_000;

fn root(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// The log (in time order) and its rows featurised under both
/// visibilities, normalised with the honest rows' statistics.
struct Featurised {
    labels: Vec<f32>,
    oracle: Vec<f32>,
    width: usize,
    honest: Vec<f32>,
    leaky: Vec<f32>,
}

fn featurise() -> Featurised {
    let config = SynthConfig {
        users: 3_000,
        user_bias_sd: 1.0,
        ..SynthConfig::default()
    };
    let mut generator = Generator::new(config, 5).expect("generator");
    let mut rows = Vec::new();
    generator.fill(&mut rows, ROWS as usize).expect("rows");
    let mut csv = Vec::new();
    write_csv(&rows, &mut csv).expect("csv");
    let spec_text = std::fs::read_to_string(root("models/specs/synthetic.toml")).unwrap();
    let spec = DatasetSpec::from_toml(&spec_text).expect("spec");
    let (mut log, _) = read_click_log(&csv[..], &spec, ROWS as usize).expect("log");
    // Time order, so that the later rows are the future of the earlier ones.
    let mut order: Vec<usize> = (0..log.len()).collect();
    order.sort_by_key(|&i| log.contexts[i].timestamp);
    log.contexts = order.iter().map(|&i| log.contexts[i].clone()).collect();
    log.labels = order.iter().map(|&i| log.labels[i]).collect();
    log.offers = order.iter().map(|&i| log.offers[i]).collect();
    log.oracle = order.iter().map(|&i| log.oracle[i]).collect();

    let defs_text = std::fs::read_to_string(root("models/features.toml")).unwrap();
    let defs = Arc::new(Definitions::from_toml_str(&defs_text).unwrap());
    let schema = FeatureSchema::v1().with_store(defs.clone()).unwrap();
    let width = schema.width();
    let keep = vec![true; log.len()];
    let rows_of = |visibility| {
        let mut x = vec![0.0f32; log.len() * width];
        featurize_with(&log, &keep, defs.clone(), &schema, None, &mut x, visibility)
            .expect("features");
        x
    };
    let mut honest = rows_of(Visibility::StrictlyBefore);
    let mut leaky = rows_of(Visibility::ThroughOwnRow);
    let norm = FeatureNorm::fit(&schema, honest.chunks_exact(width)).unwrap();
    for row in honest
        .chunks_exact_mut(width)
        .chain(leaky.chunks_exact_mut(width))
    {
        norm.apply(row).unwrap();
    }
    Featurised {
        labels: log.labels,
        oracle: log.oracle,
        width,
        honest,
        leaky,
    }
}

/// A logistic model fitted on the first 70% of `x`'s rows.
fn fit(f: &Featurised, x: &[f32]) -> cx_model::Logistic {
    let split = f.labels.len() * 7 / 10;
    let column = vec![0u32; split];
    let train = Examples {
        x: &x[..split * f.width],
        inputs: f.width,
        column: &column,
        label: &f.labels[..split],
    };
    let config = TrainConfig {
        epochs: 3,
        ..TrainConfig::default()
    };
    cx_train::train_logistic(&config, train, 1).expect("fit")
}

/// The AUC of `model` on the last 30% of `x`'s rows.
fn auc_on(f: &Featurised, model: &cx_model::Logistic, x: &[f32]) -> f64 {
    let split = f.labels.len() * 7 / 10;
    let column = vec![0u32; f.labels.len() - split];
    let test = Examples {
        x: &x[split * f.width..],
        inputs: f.width,
        column: &column,
        label: &f.labels[split..],
    };
    let p = cx_train::logistic::predict(model, test);
    metrics::auc(&p, &f.labels[split..]).expect("both classes")
}

#[test]
fn features_through_the_row_itself_inflate_auc_and_point_in_time_ones_do_not() {
    let f = featurise();
    let split = f.labels.len() * 7 / 10;
    let oracle = metrics::auc(&f.oracle[split..], &f.labels[split..]).unwrap();
    let honest_model = fit(&f, &f.honest);
    let leaky_model = fit(&f, &f.leaky);
    // What an offline evaluation reports for each, on features built the
    // way it was trained...
    let honest = auc_on(&f, &honest_model, &f.honest);
    let leaky_offline = auc_on(&f, &leaky_model, &f.leaky);
    // ...and what the leaky model gets once served, where no request can
    // know its own click: the features as serving has them.
    let leaky_served = auc_on(&f, &leaky_model, &f.honest);
    eprintln!(
        "AUC on the last 30% in time: point in time {honest:.4}; \
         with the row's own label {leaky_offline:.4} offline, {leaky_served:.4} served; \
         oracle p_true {oracle:.4}"
    );
    assert!(
        leaky_offline > honest + 0.05,
        "leakage inflates the offline AUC: {leaky_offline} against {honest}"
    );
    assert!(
        leaky_served < leaky_offline - 0.05,
        "the inflation is not real: served {leaky_served}, offline {leaky_offline}"
    );
    assert!(
        honest <= oracle + 0.01,
        "point in time {honest} cannot beat the oracle {oracle}"
    );
}
