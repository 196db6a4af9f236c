//! Setting an engine up: where its model, fallback and catalog come from
//! ([`ModelSource`], [`FallbackSource`]), loading and cross-checking them
//! ([`load_serving`]; the catalog fit and the train/serve skew), and
//! [`EngineBuilder`], which builds a self-contained [`Engine`] or installs
//! the pipeline into a host's own World.

use crate::config::EngineConfig;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::fit::CatalogFit;
use crate::openrtb::BidIds;
use crate::port::Port;
use crate::skew::TrainServeSkew;
use crate::stats::ModelInfo;
use bevy_ecs::prelude::*;
use bevy_ecs::schedule::SingleThreadedExecutor;
use cx_backends::BackendKind;
use cx_domain::catalog::Catalog;
use cx_domain::store::{PosteriorHub, SharedStores};
use cx_features::FeatureSchema;
use cx_model::{ModelId, SnnModel};
use cx_systems::resources::{FallbackScorer, ServingModel};
use cx_systems::{DecisionLogSource, PipelineParts};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The bundled default model's file bytes (`models/default.safetensors`).
pub const DEFAULT_MODEL_BYTES: &[u8] = include_bytes!("../../models/default.safetensors");

/// The bundled logistic baseline trained with the default model
/// (`models/baseline.safetensors`): the default fallback scorer.
pub const DEFAULT_BASELINE_BYTES: &[u8] = include_bytes!("../../models/baseline.safetensors");

/// The bundled default catalog (`models/catalog.toml`).
pub const DEFAULT_CATALOG_TOML: &str = include_str!("../../models/catalog.toml");

/// What `cx` shows as the bundled default model's path.
pub const DEFAULT_MODEL_NAME: &str = "<bundled default model>";

/// Largest catalog file read, bytes.
pub const CATALOG_BYTES_MAX: u64 = 16 << 20;

/// Where a model comes from.
#[derive(Clone, Debug, Default)]
pub enum ModelSource {
    /// The bundled default model.
    #[default]
    Bundled,
    /// A safetensors file.
    Path(PathBuf),
    /// File bytes already in memory.
    Bytes(Arc<[u8]>),
}

/// Where the fallback scorer comes from.
#[derive(Clone, Debug, Default)]
pub enum FallbackSource {
    /// The bundled baseline when the model is the bundled default, else none.
    #[default]
    Auto,
    /// No fallback: rows whose model output fails get no offer.
    None,
    /// A baseline file written by `cx train --baseline`.
    Path(PathBuf),
    /// Baseline file bytes already in memory.
    Bytes(Arc<[u8]>),
}

/// What [`Engine::swap_bundle`] swaps in at once: a model and its
/// fallback, and optionally the catalog and decision settings that go with
/// them (a model repository's bundle).
#[derive(Clone, Debug, Default)]
pub struct Bundle {
    /// The model.
    pub model: ModelSource,
    /// Its fallback scorer.
    pub fallback: FallbackSource,
    /// Its catalog (`None`: keep the running one).
    pub catalog: Option<Catalog>,
    /// Its decision settings (`None`: keep the running ones).
    pub decide: Option<cx_systems::DecideConfig>,
}

impl Bundle {
    /// A bundle of a model and its fallback alone.
    pub fn model(model: ModelSource, fallback: FallbackSource) -> Self {
        Self {
            model,
            fallback,
            ..Self::default()
        }
    }
}

impl ModelSource {
    fn label(&self) -> String {
        match self {
            Self::Bundled => DEFAULT_MODEL_NAME.into(),
            Self::Path(p) => p.display().to_string(),
            Self::Bytes(_) => "<bytes>".into(),
        }
    }
}

/// Reads a file of at most `limit` bytes; `what` names it in errors.
pub(crate) fn read_limited(path: &Path, limit: u64, what: &'static str) -> Result<Vec<u8>> {
    let load = |source| Error::Load {
        what,
        path: path.display().to_string(),
        source,
    };
    let len = std::fs::metadata(path).map_err(load)?.len();
    if len > limit {
        return Err(Error::Config(format!(
            "{what} {} is {len} bytes, more than the limit of {limit}",
            path.display()
        )));
    }
    std::fs::read(path).map_err(load)
}

/// Loads a model and its fallback, and cross-checks them against the
/// feature schema the model reads ([`crate::model_schema::schema_of`]: v1,
/// or v1 with a store section of the definitions the model records),
/// which it returns.
pub fn load_serving(
    model: &ModelSource,
    fallback: &FallbackSource,
) -> Result<(ServingModel, ModelInfo, FeatureSchema)> {
    let bytes: Arc<[u8]> = match model {
        ModelSource::Bundled => Arc::from(DEFAULT_MODEL_BYTES),
        ModelSource::Path(p) => read_limited(p, cx_model::limits::FILE_BYTES_MAX, "model")?.into(),
        ModelSource::Bytes(b) => b.clone(),
    };
    let snn = SnnModel::from_bytes(&bytes)?;
    let id = ModelId::of_bytes(&bytes);
    let fallback_bytes: Option<Arc<[u8]>> = match (fallback, model) {
        (FallbackSource::Auto, ModelSource::Bundled) => Some(Arc::from(DEFAULT_BASELINE_BYTES)),
        (FallbackSource::Auto | FallbackSource::None, _) => None,
        (FallbackSource::Path(p), _) => {
            Some(read_limited(p, cx_model::limits::FILE_BYTES_MAX, "fallback")?.into())
        }
        (FallbackSource::Bytes(b), _) => Some(b.clone()),
    };
    let fallback = fallback_bytes
        .map(|b| FallbackScorer::from_bytes(&b))
        .transpose()?;
    let info = ModelInfo {
        source: model.label(),
        name: snn.meta().name.clone(),
        version: snn.meta().version.clone(),
        id: id.to_string(),
        outputs: snn.outputs(),
        steps: snn.steps(),
        fallback: fallback.is_some(),
    };
    let schema = crate::model_schema::schema_of(snn.meta())?;
    let serving = ServingModel::new(snn, id, fallback, &schema)?;
    Ok((serving, info, schema))
}

/// The catalog in the TOML file at `path`, or the bundled one.
pub fn load_catalog(path: Option<&Path>) -> Result<Catalog> {
    let Some(path) = path else {
        return Ok(Catalog::from_toml_str(DEFAULT_CATALOG_TOML)?);
    };
    let bytes = read_limited(path, CATALOG_BYTES_MAX, "catalog")?;
    let text = String::from_utf8(bytes)
        .map_err(|_| Error::Config(format!("catalog {} is not UTF-8", path.display())))?;
    Ok(Catalog::from_toml_str(&text)?)
}

/// Sets up an engine: model, fallback, catalog, config, backend, seed.
/// Every part has a default: the bundled model, its bundled baseline, the
/// bundled catalog, [`EngineConfig::default`], `CX_BACKEND` or the
/// config's backend, and the config's seed.
#[derive(Clone, Debug, Default)]
pub struct EngineBuilder {
    model: ModelSource,
    fallback: FallbackSource,
    catalog: Option<Catalog>,
    catalog_path: Option<PathBuf>,
    config: Option<EngineConfig>,
    backend: Option<BackendKind>,
    seed: Option<u64>,
    shared: Option<SharedStores>,
    bid_ids: Option<BidIds>,
    feature_store: Option<cx_featurestore::FeatureBackend>,
    journal: Option<crate::journal::Journal>,
    decision_log: Option<std::sync::Arc<cx_domain::store::DecisionLog>>,
    posteriors: Option<Arc<PosteriorHub>>,
}

impl EngineBuilder {
    /// Learn click rates in this posterior store, shared with the other
    /// engines built with it (a server gives every worker the same hub):
    /// each engine's observations go to it, and each engine decides from a
    /// replica refreshed once per tick ([`cx_domain::store::posteriors`]).
    /// The hub must hold the engine's catalog's offers in catalog order
    /// (`Posteriors::new(catalog.ids(), ..)`); its half-life is its own.
    /// Default: a store of the engine's own.
    pub fn shared_posteriors(mut self, hub: Arc<PosteriorHub>) -> Self {
        self.posteriors = Some(hub);
        self
    }

    /// Record decisions and the feedback applied to them in this journal
    /// ([`crate::journal`]; a server gives all its workers one), for
    /// `cx decisions export`. Default: none.
    pub fn journal(mut self, journal: crate::journal::Journal) -> Self {
        self.journal = Some(journal);
        self
    }

    /// Keep per-user features in this store ([`crate::feature_store`]):
    /// it becomes the pipeline's [`UserStore`](cx_systems::user_store::UserStore)
    /// resource, which the features system reads once per request with a
    /// user, and decisions use (stored segments, stored behaviour:
    /// `docs/DECISIONS.md`). `Engine::put_features` writes it,
    /// `Engine::features_for` reads it, feedback updates it. The decide
    /// config's `behavior_*` features must be in its definitions (or their
    /// weights 0). Without one (the default) the engine decides as before.
    /// [`install`](Self::install) installs it too.
    pub fn feature_store(mut self, store: cx_featurestore::FeatureBackend) -> Self {
        self.feature_store = Some(store);
        self
    }

    /// Log decisions into this decision log, shared with other engines (a
    /// server gives all its workers one, so that feedback for a decision
    /// finds it whichever worker takes it). Default: a log of the engine's
    /// own, sized by the config's `[feedback]` section.
    pub fn decision_log(mut self, log: std::sync::Arc<cx_domain::store::DecisionLog>) -> Self {
        self.decision_log = Some(log);
        self
    }

    /// Issue OpenRTB bid ids from this generator (a server gives each
    /// worker its own: node id, worker index, process start). Default:
    /// node 0, worker 0, epoch = when the engine is built.
    pub fn bid_ids(mut self, ids: BidIds) -> Self {
        self.bid_ids = Some(ids);
        self
    }

    /// Share frequency counts, budgets and win rates with the other
    /// engines built with (clones of) `stores`, and the click posteriors
    /// and creative variants' counts when the stores carry hubs for them:
    /// a server gives one to every worker, so that caps and budgets hold
    /// over all of them and what one learns from feedback all use. The
    /// engine's catalog must be the one the stores were made for.
    pub fn shared_stores(mut self, stores: SharedStores) -> Self {
        self.shared = Some(stores);
        self
    }

    /// Serve the model in this file.
    pub fn model_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.model = ModelSource::Path(path.into());
        self
    }

    /// Serve this model.
    pub fn model(mut self, source: ModelSource) -> Self {
        self.model = source;
        self
    }

    /// Use this fallback scorer.
    pub fn fallback(mut self, source: FallbackSource) -> Self {
        self.fallback = source;
        self
    }

    /// Choose among these offers.
    pub fn catalog(mut self, catalog: Catalog) -> Self {
        self.catalog = Some(catalog);
        self
    }

    /// Choose among the offers in this TOML file.
    pub fn catalog_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.catalog_path = Some(path.into());
        self
    }

    /// Use this config (else [`EngineConfig::default`]).
    pub fn config(mut self, config: EngineConfig) -> Self {
        self.config = Some(config);
        self
    }

    /// Use this backend, whatever the config or `CX_BACKEND` say.
    pub fn backend(mut self, kind: BackendKind) -> Self {
        self.backend = Some(kind);
        self
    }

    /// Use this seed, whatever the config says.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    fn resolve(self) -> Result<Resolved> {
        let mut config = self.config.unwrap_or_default();
        config.validate()?;
        if let Some(seed) = self.seed {
            config.seed = seed;
        }
        let backend = match self.backend {
            Some(kind) => kind,
            None => match BackendKind::from_env()? {
                Some(kind) => kind,
                None => config.backend_kind()?,
            },
        };
        let catalog = match self.catalog {
            Some(c) => c,
            None => load_catalog(self.catalog_path.as_deref())?,
        };
        let (serving, model_info, schema) = load_serving(&self.model, &self.fallback)?;
        crate::model_schema::check_store(&schema, self.feature_store.as_ref(), &model_info.name)?;
        let fit = CatalogFit::of(&catalog, &serving.model.meta().offer_ids)
            .check(config.catalog_overlap, &model_info.name)?;
        let skew = TrainServeSkew::of(serving.model.meta())?
            .check(config.train_serve_skew, &model_info.name)?;
        let decision_log = match self.decision_log {
            Some(log) => DecisionLogSource::Shared(log),
            None => DecisionLogSource::Own(config.feedback.log_config()?),
        };
        Ok(Resolved {
            decision_log,
            fit,
            skew,
            config,
            backend,
            catalog,
            schema,
            serving,
            model_info,
            // Shared stores that carry posteriors share them too.
            posteriors: self
                .posteriors
                .or_else(|| self.shared.as_ref().and_then(|s| s.posteriors().cloned())),
            shared: self.shared,
            feature_store: self.feature_store,
            journal: self.journal,
        })
    }

    /// Installs the pipeline into a host's own World and Schedule: every
    /// resource, the pool of request entities, and the systems, in the
    /// [`Stage`](cx_domain::pipeline::Stage) sets of [`cx_systems::PipelineSet`]
    /// (order host systems with `.after(Stage::Decide).before(Stage::Respond)`
    /// and the like). Each frame, set the [`TickClock`](cx_systems::resources::TickClock)
    /// resource and run the schedule; submit and poll through the returned
    /// [`Port`]. An error leaves the World and the Schedule untouched.
    pub fn install(self, world: &mut World, schedule: &mut Schedule) -> Result<Port> {
        let resolved = self.resolve()?;
        resolved.install(world, schedule)
    }

    /// Builds a self-contained engine.
    pub fn build(mut self) -> Result<Engine> {
        let self_bid_ids = self.bid_ids.take();
        let mut world = World::new();
        let mut schedule = Schedule::default();
        schedule.set_executor(SingleThreadedExecutor::new());
        let resolved = self.resolve()?;
        let backend = resolved.backend;
        let model = resolved.model_info.clone();
        let fit = resolved.fit.clone();
        let skew = resolved.skew.clone();
        let config = resolved.config.clone();
        let notices = config.notice_urls()?;
        let bid_ids = self_bid_ids.unwrap_or_default();
        let feature_rules = resolved
            .feature_store
            .as_ref()
            .map(crate::feature_store::FeatureHooks::new);
        let port = resolved.install(&mut world, &mut schedule)?;
        // Build the schedule's executor now, not in the first tick.
        schedule
            .initialize(&mut world)
            .map_err(|e| Error::Config(format!("schedule: {e}")))?;
        let mut engine = Engine::new(world, schedule, port, backend, model, fit, config);
        engine.set_bid_ids(bid_ids);
        engine.skew = skew;
        engine.set_notice_urls(notices);
        engine.feature_hooks = feature_rules;
        Ok(engine)
    }
}

/// A builder's choices, loaded and checked.
struct Resolved {
    config: EngineConfig,
    backend: BackendKind,
    catalog: Catalog,
    schema: FeatureSchema,
    serving: ServingModel,
    model_info: ModelInfo,
    fit: CatalogFit,
    skew: TrainServeSkew,
    shared: Option<SharedStores>,
    decision_log: DecisionLogSource,
    posteriors: Option<Arc<PosteriorHub>>,
    feature_store: Option<cx_featurestore::FeatureBackend>,
    journal: Option<crate::journal::Journal>,
}

impl Resolved {
    fn install(self, world: &mut World, schedule: &mut Schedule) -> Result<Port> {
        let config = &self.config;
        let monitor =
            crate::monitor::build(&config.monitor, self.serving.model.meta(), &self.schema)?;
        let parts = PipelineParts {
            serving: self.serving,
            backend: self.backend,
            catalog: self.catalog,
            schema: self.schema,
            batch: config.batch.clone(),
            decide: config.decide.clone(),
            cache: config.cache_config(),
            frequency: config.frequency_config(),
            in_flight_max: config.in_flight_max,
            seed: config.seed,
            shared: self.shared,
            decision_log: self.decision_log,
            posteriors: self.posteriors,
            features: self.feature_store,
        };
        let handles = cx_systems::install(world, schedule, parts)?;
        world.insert_resource(monitor);
        cx_systems::monitor::system::add_system(schedule);
        if let Some(journal) = self.journal {
            world.insert_resource(journal);
        }
        schedule.add_systems(
            crate::journal::record_decisions
                .after(cx_domain::pipeline::Stage::Decide)
                .before(cx_domain::pipeline::Stage::Respond),
        );
        Ok(Port::new(handles, config.in_flight_max))
    }
}
