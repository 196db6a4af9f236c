//! The ECS resources the pipeline's systems share: the bounded ingress and
//! egress queues, the queue of spare request contexts, the clocks, the scoring state (model, backends, batch
//! buffers, fallback scorer), counters and latency histograms.
//!
//! Every buffer here is sized when the resource is built; the systems only
//! index into them. The queues are `crossbeam` array queues: fixed
//! capacity, and safe to push from another thread, so a network front end
//! can feed an engine that a game loop ticks.

use crate::error::{Error, Result};
use bevy_ecs::prelude::Resource;
use crossbeam::queue::ArrayQueue;
use cx_backends::{BackendKind, Dispatcher, FallbackPolicy};
use cx_domain::catalog::Catalog;
use cx_domain::pipeline::{Decision, NoBidCause, Request, Ticket};
use cx_features::{FeatureNorm, FeatureSchema, RequestContext, SPARSE_NONZERO_MAX};
use cx_model::Logistic;
use cx_model::{ModelId, Readout, SnnModel};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Metadata key of the feature normalisation a model (or fallback) was trained with.
pub const FEATURE_NORM_KEY: &str = "cx.feature_norm";

/// One request waiting in the ingress.
#[derive(Debug)]
pub struct Submission {
    /// Its ticket.
    pub ticket: Ticket,
    /// What to decide.
    pub request: Request,
    /// Raw wall-clock reading at submission (latency statistics only).
    pub submitted_raw: u64,
}

/// The bounded ingress queue; `submit` pushes, the ingest system pops.
#[derive(Resource, Clone)]
pub struct Ingress(pub Arc<ArrayQueue<Submission>>);

/// The bounded egress queue; the respond system pushes, `poll` pops. Sized
/// like the in-flight limit, so it cannot overflow while admission holds.
#[derive(Resource, Clone)]
pub struct Egress(pub Arc<ArrayQueue<Decision>>);

/// Request contexts of decided requests, handed back to the host for
/// reuse: the respond system pushes each one it releases (dropping it when
/// the queue is full), and the host pops one to fill for its next
/// submission, so that a context's strings and lists keep their capacity
/// and a host that decodes into them allocates nothing once they have
/// grown. Sized like the in-flight limit.
#[derive(Resource, Clone)]
pub struct SpareContexts(pub Arc<ArrayQueue<RequestContext>>);

/// The host's clock for the current tick (unix ns); decisions depend on it.
#[derive(Resource, Clone, Copy, Debug, Default)]
pub struct TickClock {
    /// `now` as passed to the tick.
    pub now_ns: u64,
}

/// The wall clock for latency statistics only.
#[derive(Resource, Clone, Debug)]
pub struct WallClock(pub quanta::Clock);

/// The engine's seed (exploration draws).
#[derive(Resource, Clone, Copy, Debug, Default)]
pub struct Seed(pub u64);

/// The feature schema every row is extracted with.
#[derive(Resource, Clone, Debug)]
pub struct Schema(pub FeatureSchema);

/// The fallback scorer: a logistic baseline trained on the same features
/// and offers as the model, with its own normalisation statistics.
#[derive(Clone, Debug)]
pub struct FallbackScorer {
    /// The baseline.
    pub logistic: Logistic,
    /// Its offer ids, one per output column.
    pub offer_ids: Vec<u64>,
    /// The feature schema it was trained with.
    pub feature_schema_id: String,
    /// Normalisation applied to its input rows.
    pub norm: FeatureNorm,
}

impl FallbackScorer {
    /// Reads a baseline file written by `cx train --baseline`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let (logistic, meta) = Logistic::from_bytes(bytes)
            .map_err(|e| Error::Mismatch(format!("fallback scorer: {e}")))?;
        let offer_ids = meta_json::<Vec<u64>>(&meta, "cx.offer_ids")?;
        let feature_schema_id = meta
            .get("cx.feature_schema_id")
            .cloned()
            .ok_or_else(|| missing("cx.feature_schema_id"))?;
        let norm_json = meta
            .get(FEATURE_NORM_KEY)
            .ok_or_else(|| missing(FEATURE_NORM_KEY))?;
        let norm = FeatureNorm::from_json(norm_json)?;
        if offer_ids.len() != logistic.outputs {
            return Err(Error::Mismatch(format!(
                "fallback scorer: {} offer ids for {} outputs",
                offer_ids.len(),
                logistic.outputs
            )));
        }
        Ok(Self {
            logistic,
            offer_ids,
            feature_schema_id,
            norm,
        })
    }
}

fn missing(key: &str) -> Error {
    Error::Mismatch(format!("fallback scorer: metadata `{key}` is missing"))
}

fn meta_json<T: serde::de::DeserializeOwned>(
    meta: &BTreeMap<String, String>,
    key: &str,
) -> Result<T> {
    let text = meta.get(key).ok_or_else(|| missing(key))?;
    serde_json::from_str(text)
        .map_err(|e| Error::Mismatch(format!("fallback scorer: metadata `{key}`: {e}")))
}

/// A model ready to serve: the network, its id and normalisation, and the
/// optional fallback scorer, all checked against each other and the schema.
#[derive(Clone, Debug)]
pub struct ServingModel {
    /// The network.
    pub model: Arc<SnnModel>,
    /// The SHA-256 of its file.
    pub id: ModelId,
    /// Its feature normalisation (identity when the file records none).
    pub norm: FeatureNorm,
    /// What scores rows whose model output fails validation.
    pub fallback: Option<FallbackScorer>,
}

impl ServingModel {
    /// Checks that the model, its normalisation and the fallback fit `schema`
    /// and each other.
    pub fn new(
        model: SnnModel,
        id: ModelId,
        fallback: Option<FallbackScorer>,
        schema: &FeatureSchema,
    ) -> Result<Self> {
        let meta = model.meta();
        if meta.feature_schema_id.as_deref() != Some(schema.id())
            || model.inputs() != schema.width()
        {
            return Err(Error::Mismatch(format!(
                "model `{}` expects feature schema {:?} with {} inputs; this engine extracts {} with {}",
                meta.name,
                meta.feature_schema_id.as_deref().unwrap_or("(none recorded)"),
                model.inputs(),
                schema.id(),
                schema.width()
            )));
        }
        if meta.offer_ids.len() != model.outputs() {
            return Err(Error::Mismatch(format!(
                "model `{}` names {} offers for {} output columns",
                meta.name,
                meta.offer_ids.len(),
                model.outputs()
            )));
        }
        let norm = match meta.extra.get(FEATURE_NORM_KEY) {
            Some(json) => FeatureNorm::from_json(json)?,
            None => FeatureNorm::identity(),
        };
        norm.check_schema(schema)?;
        if let Some(f) = &fallback {
            check_fallback(f, &model, schema)?;
        }
        Ok(Self {
            model: Arc::new(model),
            id,
            norm,
            fallback,
        })
    }

    /// The model's key in cache fingerprints: the id's first eight bytes.
    pub fn key(&self) -> u64 {
        self.id.as_u64()
    }
}

fn check_fallback(f: &FallbackScorer, model: &SnnModel, schema: &FeatureSchema) -> Result<()> {
    if f.feature_schema_id != schema.id() || f.logistic.inputs != schema.width() {
        return Err(Error::Mismatch(format!(
            "fallback scorer expects feature schema {} with {} inputs; this engine extracts {} with {}",
            f.feature_schema_id,
            f.logistic.inputs,
            schema.id(),
            schema.width()
        )));
    }
    if f.offer_ids != model.meta().offer_ids {
        return Err(Error::Mismatch(format!(
            "fallback scorer scores offers {:?}, the model {:?}; they must match column for column",
            f.offer_ids,
            model.meta().offer_ids
        )));
    }
    f.norm.check_schema(schema)?;
    Ok(())
}

/// The scoring state: the serving model and its backend chain, the catalog
/// mapping, and the buffers of one inference batch.
///
/// Layout: one batch is a compressed-sparse-row block: `batch_starts`
/// (`batch_max + 1` row bounds) over `batch_columns` / `batch_values`, room
/// for `batch_max` normalised sparse rows. The kernels read only the
/// non-zeros, with results identical to the dense rows; a dense
/// `[batch][inputs]` block would cost a scan of thousands of zeros per row.
#[derive(Resource)]
pub struct Scoring {
    /// The model being served.
    pub serving: ServingModel,
    /// Its backend chain.
    pub dispatcher: Dispatcher,
    /// Per catalog offer, its model output column.
    pub columns: Vec<Option<u32>>,
    /// Rows per batch.
    pub batch_max: usize,
    /// Row bounds of the batch's sparse rows (`batch + 1` used).
    pub batch_starts: Vec<u32>,
    /// Columns of the batch's normalised non-zeros.
    pub batch_columns: Vec<u32>,
    /// Their values.
    pub batch_values: Vec<f32>,
    /// The slot of each row in the current batch.
    pub batch_slots: Vec<u32>,
    /// The batch's readout.
    pub readout: Readout,
    /// One dense row for the fallback scorer.
    pub scratch: Vec<f32>,
}

impl Scoring {
    /// Initialises the backend chain for `serving` and maps `catalog`'s
    /// offers to the model's columns. Fails when no catalog offer is scored.
    pub fn new(
        serving: ServingModel,
        catalog: &Catalog,
        kind: BackendKind,
        batch_max: usize,
    ) -> Result<Self> {
        let columns = offer_columns(catalog, &serving.model.meta().offer_ids);
        if columns.iter().all(Option::is_none) {
            return Err(Error::Mismatch(format!(
                "model `{}` scores offers {:?}, none of them in the catalog",
                serving.model.meta().name,
                serving.model.meta().offer_ids
            )));
        }
        let dispatcher = Dispatcher::new(
            serving.model.clone(),
            kind,
            batch_max,
            FallbackPolicy::default(),
        )?;
        let inputs = serving.model.inputs();
        let outputs = serving.model.outputs();
        let row_max = SPARSE_NONZERO_MAX + serving.norm.columns.len();
        Ok(Self {
            dispatcher,
            columns,
            batch_max,
            batch_starts: Vec::with_capacity(batch_max + 1),
            batch_columns: vec![0; batch_max * row_max],
            batch_values: vec![0.0; batch_max * row_max],
            batch_slots: Vec::with_capacity(batch_max),
            readout: Readout::with_capacity(batch_max, outputs),
            scratch: vec![0.0; inputs],
            serving,
        })
    }

    /// Model inputs per row.
    pub fn inputs(&self) -> usize {
        self.serving.model.inputs()
    }

    /// Model output columns per row.
    pub fn outputs(&self) -> usize {
        self.serving.model.outputs()
    }
}

/// Per catalog offer, the model column that scores it.
pub fn offer_columns(catalog: &Catalog, model_offer_ids: &[u64]) -> Vec<Option<u32>> {
    catalog
        .ids()
        .iter()
        .map(|id| {
            model_offer_ids
                .iter()
                .position(|m| m == id)
                .map(|c| c as u32)
        })
        .collect()
}

/// What the pipeline counted since it started.
#[derive(Resource, Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    /// Requests taken from the ingress.
    pub ingested: u64,
    /// Decisions emitted.
    pub decided: u64,
    /// Of those, simulated.
    pub simulated: u64,
    /// Of those, with no offer.
    pub no_offer: u64,
    /// No-offer decisions by cause, indexed like [`NoBidCause::ALL`].
    pub no_offer_by_cause: [u64; NoBidCause::COUNT],
    /// Rows scored by the model.
    pub inferred_rows: u64,
    /// Inference batches run.
    pub batches: u64,
    /// Batches the whole backend chain failed.
    pub failed_batches: u64,
    /// Model rows that failed validation.
    pub invalid_rows: u64,
    /// Rows scored by the fallback scorer.
    pub fallback_rows: u64,
    /// Rows nothing could score (no-offer decisions).
    pub failed_rows: u64,
    /// List items dropped by feature extraction (over the schema's limits).
    pub extract_dropped_items: u64,
    /// Oversized string values skipped by feature extraction.
    pub extract_oversized_values: u64,
    /// Numbers clamped by feature extraction.
    pub extract_clamped: u64,
    /// Times the respond system found the egress full and kept a decision
    /// for the next tick (cannot happen while admission holds).
    pub egress_full: u64,
}

/// The stages with a latency histogram, in schedule order.
pub const LATENCY_STAGES: [&str; 9] = [
    "queue", "ingest", "features", "cache", "infer", "validate", "decide", "respond", "total",
];

/// Index of the end-to-end histogram in [`LATENCY_STAGES`].
pub const TOTAL_STAGE: usize = 8;

/// Longest latency a histogram tells apart, ns (60 s); longer ones are
/// recorded as this.
pub const LATENCY_NS_MAX: u64 = 60_000_000_000;

/// Per-request latency histograms, ns, one per [`LATENCY_STAGES`] entry:
/// `queue` is submit to ingest, each stage is from its system's start to
/// the next stage's start for that request (so `infer` includes any wait
/// for a batch), and `total` is submit to respond. Fixed bounds, three
/// significant digits, so recording never allocates.
#[derive(Resource, Clone, Debug)]
pub struct Latencies {
    /// One histogram per stage.
    pub stages: Vec<Histogram<u64>>,
}

impl Latencies {
    /// Empty histograms.
    pub fn new() -> Self {
        let stages = LATENCY_STAGES.iter().map(|_| new_histogram()).collect();
        Self { stages }
    }

    /// Records `ns` for stage `stage` (ignored when out of range).
    pub fn record(&mut self, stage: usize, ns: u64) {
        if let Some(h) = self.stages.get_mut(stage) {
            h.saturating_record(ns.clamp(1, LATENCY_NS_MAX));
        }
    }
}

impl Default for Latencies {
    fn default() -> Self {
        Self::new()
    }
}

/// An empty latency histogram with the fixed bounds.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_NS_MAX, 3).expect("constant bounds are valid")
}
