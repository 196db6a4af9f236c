//! `cx train --data FILE --spec SPEC --out MODEL.safetensors`: trains a
//! spiking network (and optionally the logistic baseline) on a click log and
//! writes a model file with full metadata.

use super::data::{self, Rows, FEATURE_NORM_KEY, TRAINING_KEY};
use super::{write_json, Streams, TrainArgs};
use crate::error::{Error, Result};
use cx_engine::featurestore::Definitions;
use cx_engine::model_schema::FEATURE_DEFINITIONS_KEY;
use cx_features::{FeatureNorm, FeatureSchema};
use cx_model::Logistic;
use cx_model::ModelMeta;
use cx_train::{metrics, Examples, TrainConfig};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Quality of predictions on the held-out rows.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Quality {
    /// ROC AUC (null when the held-out rows have one class only).
    pub auc: Option<f64>,
    /// Mean binary cross-entropy.
    pub log_loss: f64,
}

impl Quality {
    /// The quality of `probability` against `rows`' labels.
    pub fn of(probability: &[f32], rows: &Rows) -> Self {
        Self {
            auc: metrics::auc(probability, &rows.label),
            log_loss: metrics::log_loss(probability, &rows.label),
        }
    }
}

/// What `cx train` prints, and (without the paths) what the model's
/// `cx.training` metadata records.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrainSummary {
    /// The model file written.
    pub model: String,
    /// Its content hash.
    pub model_id: String,
    /// The feature schema id it was trained with.
    pub feature_schema_id: String,
    /// Offer id of each output column.
    pub offer_ids: Vec<u64>,
    /// Training rows.
    pub rows_train: usize,
    /// Held-out rows (calibration and the figures below).
    pub rows_holdout: usize,
    /// Hyperparameters.
    pub hidden: Vec<usize>,
    /// Time steps.
    pub steps: u32,
    /// Epochs.
    pub epochs: usize,
    /// Seed.
    pub seed: u64,
    /// Adam learning rate.
    pub learning_rate: f32,
    /// Decoupled weight decay.
    pub weight_decay: f32,
    /// Rows per gradient step.
    pub batch_size: usize,
    /// Membrane decay of the hidden and output layers.
    pub beta: [f32; 2],
    /// Mean training loss of each epoch.
    pub epoch_loss: Vec<f64>,
    /// The spiking model on the held-out rows, after calibration.
    pub holdout: Quality,
    /// The logistic baseline on the held-out rows, with `--baseline`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Quality>,
}

/// Runs the command.
pub fn train(args: &TrainArgs, streams: &mut Streams<'_>) -> Result<()> {
    let config = args.config();
    let definitions = store_definitions(args.store_features.as_deref())?;
    let schema = match &definitions {
        None => FeatureSchema::v1(),
        Some((_, defs)) => FeatureSchema::v1()
            .with_store(defs.clone())
            .map_err(|e| Error::Mismatch(format!("--store-features: {e}")))?,
    };
    let (click_log, spec) = data::read(&args.data, &args.spec, streams.stderr)?;
    let top = spec.offer.as_ref().map_or(1, |o| o.top);
    let offer_ids = click_log.top_offers(top);
    let inputs = cx_datasets::inputs::TrainingInputs::of(&spec, &click_log, &offer_ids);
    let rows = data::featurize(click_log, &offer_ids, &schema, None, streams.stderr)?;
    let (mut train_rows, mut holdout_rows) = split(&rows, args.holdout, args.seed)?;
    let norm = FeatureNorm::fit(&schema, train_rows.x.chunks_exact(rows.width))
        .map_err(|e| Error::Mismatch(format!("fitting feature normalisation: {e}")))?;
    for part in [&mut train_rows, &mut holdout_rows] {
        for row in part.x.chunks_exact_mut(rows.width) {
            norm.apply(row)
                .map_err(|e| Error::Mismatch(format!("feature normalisation: {e}")))?;
        }
    }
    let outputs = offer_ids.len();
    let progress = progress_bar(args, config.epochs * train_rows.len());
    let (mut net, history) = cx_train::train(&config, train_rows.examples(), outputs, |p| {
        progress.set_position((p.epoch * p.rows_total + p.rows_done) as u64);
        progress.set_message(format!("epoch {} loss {:.4}", p.epoch + 1, p.loss_mean));
    })?;
    progress.finish_and_clear();
    cx_train::calibrate(&mut net, holdout_rows.examples());
    let reference = super::reference::reference_json(&schema, &rows, &net, &holdout_rows)?;
    let holdout = Quality::of(
        &cx_train::predict(&net, holdout_rows.examples()),
        &holdout_rows,
    );
    let baseline = match &args.baseline {
        None => None,
        Some(path) => Some(train_baseline(
            &config,
            &train_rows,
            &holdout_rows,
            outputs,
            baseline_meta(&schema, &offer_ids, &norm),
            path,
        )?),
    };
    let mut summary = TrainSummary {
        model: args.out.display().to_string(),
        model_id: String::new(),
        feature_schema_id: schema.id().to_string(),
        offer_ids: offer_ids.clone(),
        rows_train: train_rows.len(),
        rows_holdout: holdout_rows.len(),
        hidden: config.hidden.clone(),
        steps: config.steps,
        epochs: config.epochs,
        seed: config.seed,
        learning_rate: config.learning_rate,
        weight_decay: config.weight_decay,
        batch_size: config.batch_size,
        beta: [config.beta_hidden, config.beta_output],
        epoch_loss: history.iter().map(|e| e.loss_mean).collect(),
        holdout,
        baseline,
    };
    let mut meta = ModelMeta::defaults(outputs);
    meta.name = args.name.clone().unwrap_or_else(|| {
        if spec.name.is_empty() {
            "cx".into()
        } else {
            spec.name.clone()
        }
    });
    meta.version = args.model_version.clone();
    meta.feature_schema_id = Some(schema.id().to_string());
    meta.offer_ids = offer_ids;
    meta.extra.insert(FEATURE_NORM_KEY.into(), norm.to_json());
    if let Some((text, _)) = definitions {
        meta.extra.insert(FEATURE_DEFINITIONS_KEY.into(), text);
    }
    let inputs_key = cx_datasets::inputs::TRAINING_INPUTS_KEY;
    meta.extra.insert(inputs_key.into(), inputs.to_json());
    let reference_key = cx_engine::systems::monitor::REFERENCE_KEY;
    meta.extra.insert(reference_key.into(), reference);
    meta.extra
        .insert(TRAINING_KEY.into(), training_record(&summary));
    let model = net.to_model(meta)?;
    model.save(&args.out).map_err(|source| Error::Model {
        path: args.out.display().to_string(),
        source,
    })?;
    summary.model_id = model.id().to_string();
    write_json(streams.stdout, &summary, args.pretty)
}

/// The summary as stored in the model: everything but the file paths and id.
/// The store feature definitions at `path` (their text, for the model's
/// metadata, and parsed), if given.
fn store_definitions(path: Option<&Path>) -> Result<Option<(String, Arc<Definitions>)>> {
    let Some(path) = path else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path).map_err(|source| Error::File {
        path: path.display().to_string(),
        source,
    })?;
    let defs = Definitions::from_toml_str(&text)
        .map_err(|e| Error::Mismatch(format!("--store-features {}: {e}", path.display())))?;
    Ok(Some((text, Arc::new(defs))))
}

fn training_record(summary: &TrainSummary) -> String {
    let mut record = serde_json::to_value(summary).expect("plain data serialises");
    if let Some(map) = record.as_object_mut() {
        map.remove("model");
        map.remove("model_id");
    }
    record.to_string()
}

/// A deterministic split into training and held-out rows.
fn split(rows: &Rows, holdout: f64, seed: u64) -> Result<(Rows, Rows)> {
    if !(0.0..1.0).contains(&holdout) {
        return Err(Error::Mismatch(format!(
            "--holdout {holdout} is not in [0, 1)"
        )));
    }
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x5917_7e57));
    let held = ((rows.len() as f64) * holdout).round() as usize;
    let (held_out, kept) = order.split_at(held);
    let (mut kept, mut held_out) = (kept.to_vec(), held_out.to_vec());
    kept.sort_unstable();
    held_out.sort_unstable();
    if kept.is_empty() || held_out.is_empty() {
        return Err(Error::Mismatch(format!(
            "{} usable rows are too few to hold out {holdout} of them",
            rows.len()
        )));
    }
    Ok((rows.select(&kept), rows.select(&held_out)))
}

fn train_baseline(
    config: &TrainConfig,
    train_rows: &Rows,
    holdout_rows: &Rows,
    outputs: usize,
    meta: BTreeMap<String, String>,
    path: &Path,
) -> Result<Quality> {
    let baseline = cx_train::train_logistic(config, train_rows.examples(), outputs)?;
    let quality = Quality::of(
        &cx_train::logistic::predict(&baseline, holdout_rows.examples()),
        holdout_rows,
    );
    std::fs::write(path, baseline.to_bytes(&meta)).map_err(|source| Error::File {
        path: path.display().to_string(),
        source,
    })?;
    Ok(quality)
}

/// What a baseline file records about its training: the feature schema,
/// the offers, and the normalisation its rows were trained with (a serving
/// engine applies it before scoring with the baseline).
fn baseline_meta(
    schema: &FeatureSchema,
    offer_ids: &[u64],
    norm: &FeatureNorm,
) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("cx.feature_schema_id".to_string(), schema.id().to_string()),
        (
            "cx.offer_ids".to_string(),
            serde_json::to_string(offer_ids).expect("integers serialise"),
        ),
        (FEATURE_NORM_KEY.to_string(), norm.to_json()),
    ])
}

/// Probabilities of a logistic baseline file for `rows`, checking it fits.
pub fn baseline_predictions(
    path: &Path,
    rows: &Rows,
    schema_id: &str,
    offer_ids: &[u64],
) -> Result<Vec<f32>> {
    let bytes = std::fs::read(path).map_err(|source| Error::File {
        path: path.display().to_string(),
        source,
    })?;
    let (baseline, meta) = Logistic::from_bytes(&bytes).map_err(|source| Error::Model {
        path: path.display().to_string(),
        source,
    })?;
    let file_ids: Vec<u64> = meta
        .get("cx.offer_ids")
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default();
    if meta.get("cx.feature_schema_id").map(String::as_str) != Some(schema_id)
        || file_ids != offer_ids
    {
        return Err(Error::Mismatch(format!(
            "baseline {} was trained with another feature schema or other offers than the model",
            path.display()
        )));
    }
    if baseline.inputs != rows.width {
        return Err(Error::Mismatch(format!(
            "baseline {} takes {} features, not {}",
            path.display(),
            baseline.inputs,
            rows.width
        )));
    }
    let examples = Examples {
        x: &rows.x,
        inputs: rows.width,
        column: &rows.column,
        label: &rows.label,
    };
    Ok(cx_train::logistic::predict(&baseline, examples))
}

fn progress_bar(args: &TrainArgs, total: usize) -> indicatif::ProgressBar {
    if args.quiet {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} rows {msg}",
        )
        .expect("static template is valid")
        .progress_chars("=> "),
    );
    bar
}
