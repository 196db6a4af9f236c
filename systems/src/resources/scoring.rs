//! The scoring state: the serving model with its checked normalisation and
//! fallback scorer, its backend chain, the catalog-to-column mapping, and
//! the buffers of one inference batch.

use crate::error::{Error, Result};
use bevy_ecs::prelude::Resource;
use cx_backends::{BackendKind, Dispatcher, FallbackPolicy};
use cx_domain::catalog::Catalog;
use cx_features::{FeatureNorm, FeatureSchema, SPARSE_NONZERO_MAX};
use cx_model::{Logistic, ModelId, Readout, SnnModel};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Metadata key of the feature normalisation a model (or fallback) was trained with.
pub const FEATURE_NORM_KEY: &str = "cx.feature_norm";

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

/// A model that serves experiment arms beside the default one, with its
/// own backend chain. It scores the same offers as the default model,
/// column for column, so the catalog mapping, the cache's width and every
/// request's scores stay the same whichever model scored it.
pub struct ArmModel {
    /// The model.
    pub serving: ServingModel,
    /// Its backend chain.
    pub dispatcher: Dispatcher,
}

/// The scoring state: the serving model and its backend chain, the models
/// of experiment arms, the catalog mapping, and the buffers of one
/// inference batch (shared by every model: one batch runs at a time).
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
    /// The models of experiment arms: scoring slot `k` is `arms[k - 1]`
    /// (slot 0 is the default model).
    pub arms: Vec<ArmModel>,
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
    /// The request of each row in the current batch.
    pub batch: Vec<super::QueuedRequest>,
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
        Self::with_arms(serving, Vec::new(), catalog, kind, batch_max)
    }

    /// [`Self::new`] with the models of experiment arms, slots 1 and up in
    /// order. Each must score the default model's offers column for column
    /// and read rows as wide; at most
    /// [`ARM_MODELS_MAX`](super::experiments::ARM_MODELS_MAX).
    pub fn with_arms(
        serving: ServingModel,
        arm_models: Vec<ServingModel>,
        catalog: &Catalog,
        kind: BackendKind,
        batch_max: usize,
    ) -> Result<Self> {
        let arms_max = super::experiments::ARM_MODELS_MAX;
        if arm_models.len() > arms_max {
            return Err(Error::Config {
                field: "experiments",
                reason: format!(
                    "{} models for experiment arms; at most {arms_max} serve beside the default",
                    arm_models.len()
                ),
            });
        }
        for arm in &arm_models {
            check_arm(arm, &serving)?;
        }
        let columns = offer_columns(catalog, &serving.model.meta().offer_ids);
        if columns.iter().all(Option::is_none) {
            return Err(Error::Mismatch(format!(
                "model `{}` scores offers {:?}, none of them in the catalog",
                serving.model.meta().name,
                serving.model.meta().offer_ids
            )));
        }
        let chain = |s: &ServingModel| {
            Dispatcher::new(s.model.clone(), kind, batch_max, FallbackPolicy::default())
        };
        let dispatcher = chain(&serving)?;
        let arms = arm_models
            .into_iter()
            .map(|serving| {
                let dispatcher = chain(&serving)?;
                Ok(ArmModel {
                    serving,
                    dispatcher,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let inputs = serving.model.inputs();
        let outputs = serving.model.outputs();
        let norm_columns_max = arms
            .iter()
            .map(|a| a.serving.norm.columns.len())
            .fold(serving.norm.columns.len(), usize::max);
        let row_max = SPARSE_NONZERO_MAX + norm_columns_max;
        Ok(Self {
            dispatcher,
            arms,
            columns,
            batch_max,
            batch_starts: Vec::with_capacity(batch_max + 1),
            batch_columns: vec![0; batch_max * row_max],
            batch_values: vec![0.0; batch_max * row_max],
            batch: Vec::with_capacity(batch_max),
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

    /// The model of scoring slot `slot` (0: the default).
    pub fn slot(&self, slot: u16) -> &ServingModel {
        match slot {
            0 => &self.serving,
            k => &self.arms[usize::from(k) - 1].serving,
        }
    }

    /// The models serving experiment arms, slots 1 and up.
    pub fn arm_models(&self) -> impl Iterator<Item = &ServingModel> {
        self.arms.iter().map(|a| &a.serving)
    }
}

/// Checks that an arm's model can stand in for the default one: the same
/// offers in the same columns, and rows as wide.
fn check_arm(arm: &ServingModel, default: &ServingModel) -> Result<()> {
    let (a, d) = (arm.model.meta(), default.model.meta());
    if a.offer_ids != d.offer_ids || arm.model.inputs() != default.model.inputs() {
        return Err(Error::Mismatch(format!(
            "experiment arm model `{}` scores offers {:?} from {} inputs; the default model `{}` \
             scores {:?} from {}: an arm's model must score the same offers in the same order",
            a.name,
            a.offer_ids,
            arm.model.inputs(),
            d.name,
            d.offer_ids,
            default.model.inputs()
        )));
    }
    Ok(())
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
