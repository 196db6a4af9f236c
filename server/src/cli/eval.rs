//! `cx eval --model MODEL --data FILE --spec SPEC`: scores a click log with
//! a model through the serving backends and reports AUC, log loss and a
//! calibration table (and, with `--baseline`, the logistic baseline's).

use super::data::{self, Rows, FEATURE_NORM_KEY};
use super::train::{baseline_predictions, Quality};
use super::{load_model, write_json, EvalArgs, Streams};
use crate::error::{Error, Result};
use cx_engine::backends::{BackendKind, Dispatcher, FallbackPolicy, BATCH_MAX_LIMIT};
use cx_features::{FeatureNorm, FeatureSchema};
use cx_model::{Readout, SnnModel};
use cx_train::metrics::{self, CalibrationBin};
use serde::Serialize;
use std::sync::Arc;

/// One model's figures.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// AUC and log loss.
    #[serde(flatten)]
    pub quality: Quality,
    /// Reliability table: per probability bin, rows, mean prediction, observed rate.
    pub calibration: Vec<Bin>,
}

/// A reliability-table row.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Bin {
    /// Bin's lower edge.
    pub low: f32,
    /// Bin's upper edge.
    pub high: f32,
    /// Rows in the bin.
    pub rows: usize,
    /// Their mean predicted probability.
    pub predicted: f64,
    /// Their observed click rate.
    pub observed: f64,
}

impl From<CalibrationBin> for Bin {
    fn from(b: CalibrationBin) -> Self {
        Self {
            low: b.low,
            high: b.high,
            rows: b.rows,
            predicted: b.predicted_mean,
            observed: b.observed_rate,
        }
    }
}

/// What `cx eval` prints.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EvalOutput {
    /// The model's content hash.
    pub model_id: String,
    /// Rows scored.
    pub rows: usize,
    /// Their click rate.
    pub base_rate: f64,
    /// The spiking model.
    pub model: Report,
    /// The logistic baseline, with `--baseline`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Report>,
    /// The true click probabilities, where the data is synthetic and the spec names them:
    /// the best any model could do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oracle: Option<Quality>,
}

/// Scored rows: the data and both models' probabilities.
pub struct Scored {
    /// The rows.
    pub rows: Rows,
    /// The spiking model's probability of each row's column.
    pub model: Vec<f32>,
    /// The baseline's, with `--baseline`.
    pub baseline: Option<Vec<f32>>,
}

/// Runs the command.
pub fn eval(args: &EvalArgs, streams: &mut Streams<'_>) -> Result<()> {
    let model = load_model(args.model.as_deref())?;
    let scored = score(args, &model, streams)?;
    let report = |p: &[f32]| Report {
        quality: Quality::of(p, &scored.rows),
        calibration: metrics::calibration_table(p, &scored.rows.label, args.bins)
            .into_iter()
            .map(Bin::from)
            .collect(),
    };
    let output = EvalOutput {
        model_id: model.id().to_string(),
        rows: scored.rows.len(),
        base_rate: scored.rows.label.iter().map(|&y| y as f64).sum::<f64>()
            / scored.rows.len() as f64,
        model: report(&scored.model),
        baseline: scored.baseline.as_deref().map(report),
        oracle: (!scored.rows.oracle.is_empty())
            .then(|| Quality::of(&scored.rows.oracle, &scored.rows)),
    };
    if let Some(dir) = &args.plot {
        super::plot::write_plots(dir, &scored)?;
    }
    write_json(streams.stdout, &output, args.pretty)
}

/// Reads the data the way the model was trained (same schema, same
/// normalisation, same offer columns) and scores it.
pub fn score(args: &EvalArgs, model: &SnnModel, streams: &mut Streams<'_>) -> Result<Scored> {
    let schema = cx_engine::model_schema::schema_of(model.meta())
        .map_err(|e| Error::Mismatch(format!("the model's feature schema: {e}")))?;
    let (norm, schema_id) = model_features(model, &schema)?;
    let (click_log, _) = data::read(&args.data, &args.spec, streams.stderr)?;
    let rows = data::featurize(
        click_log,
        &model.meta().offer_ids,
        &schema,
        Some(&norm),
        streams.stderr,
    )?;
    if rows.is_empty() {
        return Err(Error::Mismatch(
            "no rows show one of the model's offers".into(),
        ));
    }
    let probabilities = serve(model, &rows)?;
    let baseline = match &args.baseline {
        None => None,
        Some(path) => Some(baseline_predictions(
            path,
            &rows,
            &schema_id,
            &model.meta().offer_ids,
        )?),
    };
    Ok(Scored {
        rows,
        model: probabilities,
        baseline,
    })
}

/// The model's feature normalisation, after checking it was trained with this schema.
fn model_features(model: &SnnModel, schema: &FeatureSchema) -> Result<(FeatureNorm, String)> {
    match model.meta().feature_schema_id.as_deref() {
        Some(id) if id == schema.id() => {}
        Some(id) => {
            return Err(Error::Mismatch(format!(
            "the model was trained with feature schema {id}, but this build extracts schema {}; \
                 retrain it, or use the build it was trained with",
            schema.id()
        )))
        }
        None => return Err(Error::Mismatch(
            "the model records no feature schema (cx.feature_schema_id), so its inputs are unknown"
                .into(),
        )),
    }
    let norm = match model.meta().extra.get(FEATURE_NORM_KEY) {
        Some(json) => FeatureNorm::from_json(json)
            .map_err(|e| Error::Mismatch(format!("{FEATURE_NORM_KEY}: {e}")))?,
        None => FeatureNorm::identity(),
    };
    Ok((norm, schema.id().to_string()))
}

/// Each row's probability for its own column, through the serving backends.
fn serve(model: &SnnModel, rows: &Rows) -> Result<Vec<f32>> {
    if model.inputs() != rows.width {
        return Err(Error::Mismatch(format!(
            "the model takes {} features, the schema makes {}",
            model.inputs(),
            rows.width
        )));
    }
    let model = Arc::new(model.clone());
    let batch_max = rows.len().clamp(1, BATCH_MAX_LIMIT);
    let mut dispatcher = Dispatcher::new(
        model.clone(),
        BackendKind::Auto,
        batch_max,
        FallbackPolicy::default(),
    )
    .map_err(|source| Error::BackendInit {
        backend: "auto",
        batch_max,
        source,
    })?;
    let mut out = Readout::with_capacity(batch_max, model.outputs());
    let mut probabilities = Vec::with_capacity(rows.len());
    for first in (0..rows.len()).step_by(batch_max) {
        let n = batch_max.min(rows.len() - first);
        let x = &rows.x[first * rows.width..(first + n) * rows.width];
        dispatcher
            .infer(x, n, &mut out, 0)
            .map_err(|source| Error::Backend {
                first_row: first,
                end_row: first + n,
                source,
            })?;
        for i in 0..n {
            probabilities.push(out.probability_row(i)[rows.column[first + i] as usize]);
        }
    }
    Ok(probabilities)
}
