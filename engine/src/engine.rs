//! The embeddable engine: a bevy_ecs World and Schedule running the
//! pipeline of `cx-systems`, behind a game-loop API: `submit` requests,
//! `tick(now)`, `poll` decisions.
//!
//! No thread is started. Given its seed and the `now` each tick passes in,
//! an engine decides deterministically; wall-clock readings feed only the
//! latency statistics.

use crate::config::EngineConfig;
use crate::error::{Error, Result};
use crate::stats::{EngineStats, ModelInfo};
use bevy_ecs::prelude::*;
use bevy_ecs::schedule::SingleThreadedExecutor;
use crossbeam::queue::ArrayQueue;
use cx_backends::BackendKind;
use cx_domain::catalog::Catalog;
use cx_domain::pipeline::{Decision, FeatureRows, Request, ScoreRows, SlotPool, Ticket};
use cx_domain::store::{BudgetLedger, DecisionCache, FrequencyStore};
use cx_features::{FeatureSchema, RequestContext};
use cx_model::{ModelId, SnnModel};
use cx_systems::resources::{
    Counters, Egress, FallbackScorer, Ingress, Latencies, Schema, Scoring, Seed, ServingModel,
    SpareContexts, Submission, TickClock, WallClock,
};
use hdrhistogram::Histogram;
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

/// Loads and cross-checks a model and its fallback against `schema`.
pub fn load_serving(
    model: &ModelSource,
    fallback: &FallbackSource,
    schema: &FeatureSchema,
) -> Result<(ServingModel, ModelInfo)> {
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
    Ok((ServingModel::new(snn, id, fallback, schema)?, info))
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
}

impl EngineBuilder {
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
        let catalog = match (self.catalog, self.catalog_path) {
            (Some(c), _) => c,
            (None, Some(p)) => {
                let bytes = read_limited(&p, CATALOG_BYTES_MAX, "catalog")?;
                let text = String::from_utf8(bytes)
                    .map_err(|_| Error::Config(format!("catalog {} is not UTF-8", p.display())))?;
                Catalog::from_toml_str(&text)?
            }
            (None, None) => Catalog::from_toml_str(DEFAULT_CATALOG_TOML)?,
        };
        let schema = FeatureSchema::v1();
        let (serving, model_info) = load_serving(&self.model, &self.fallback, &schema)?;
        Ok(Resolved {
            config,
            backend,
            catalog,
            schema,
            serving,
            model_info,
        })
    }

    /// Inserts the pipeline's resources into `world` and its systems into
    /// `schedule`, for a host that runs its own World: each frame, set the
    /// [`TickClock`] resource, run the schedule, and call
    /// `world.clear_trackers()` (bevy_app's `App::update` does this; a bare
    /// World that skips it accumulates removed-component events without
    /// bound); submit and poll through the returned [`Port`].
    pub fn install(self, world: &mut World, schedule: &mut Schedule) -> Result<Port> {
        let resolved = self.resolve()?;
        let port = resolved.insert_resources(world)?;
        cx_systems::add_pipeline(schedule);
        Ok(port)
    }

    /// Builds a self-contained engine.
    pub fn build(self) -> Result<Engine> {
        let mut world = World::new();
        let mut schedule = Schedule::default();
        schedule.set_executor(SingleThreadedExecutor::new());
        let resolved = self.resolve()?;
        let backend = resolved.backend;
        let model = resolved.model_info.clone();
        let config = resolved.config.clone();
        let port = resolved.insert_resources(&mut world)?;
        cx_systems::add_pipeline(&mut schedule);
        // Build the schedule's executor now, not in the first tick.
        schedule
            .initialize(&mut world)
            .map_err(|e| Error::Config(format!("schedule: {e}")))?;
        Ok(Engine {
            world,
            schedule,
            port,
            staged: None,
            clock: quanta::Clock::new(),
            tick_ns: cx_systems::resources::new_histogram(),
            ticks: 0,
            backend,
            model,
            config,
        })
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
}

impl Resolved {
    fn insert_resources(self, world: &mut World) -> Result<Port> {
        let config = &self.config;
        let slots = config.in_flight_max;
        let outputs = self.serving.model.outputs();
        let scoring = Scoring::new(
            self.serving,
            &self.catalog,
            self.backend,
            config.batch.batch_max,
        )?;
        let budgets: Vec<Option<f64>> = (0..self.catalog.len())
            .map(|i| self.catalog.daily_budget(i))
            .collect();
        let port = Port::new(slots);
        world.insert_resource(Ingress(port.ingress.clone()));
        world.insert_resource(Egress(port.egress.clone()));
        world.insert_resource(SpareContexts(port.spares.clone()));
        world.insert_resource(TickClock::default());
        world.insert_resource(WallClock(port.clock.clone()));
        world.insert_resource(Seed(config.seed));
        world.insert_resource(config.batch.clone());
        world.insert_resource(config.decide.clone());
        world.insert_resource(Schema(self.schema));
        world.insert_resource(scoring);
        world.insert_resource(SlotPool::new(slots)?);
        world.insert_resource(FeatureRows::new(slots)?);
        world.insert_resource(ScoreRows::new(slots, outputs)?);
        world.insert_resource(DecisionCache::new(config.cache_config(), outputs)?);
        world.insert_resource(FrequencyStore::new(config.frequency_config())?);
        world.insert_resource(BudgetLedger::new(&budgets)?);
        world.insert_resource(self.catalog);
        world.insert_resource(Counters::default());
        world.insert_resource(Latencies::new());
        Ok(port)
    }
}

/// The host's side of the bounded queues: admission (`submit`), tickets,
/// and `poll`. At most `capacity` requests are in flight (submitted and not
/// yet polled); the ingress, the egress and the slot pool are all that big,
/// so nothing behind admission can overflow.
pub struct Port {
    ingress: Arc<ArrayQueue<Submission>>,
    egress: Arc<ArrayQueue<Decision>>,
    spares: Arc<ArrayQueue<RequestContext>>,
    clock: quanta::Clock,
    capacity: usize,
    in_flight: usize,
    next_ticket: u64,
    submitted: u64,
    overloaded: u64,
}

impl Port {
    fn new(capacity: usize) -> Self {
        Self {
            ingress: Arc::new(ArrayQueue::new(capacity)),
            egress: Arc::new(ArrayQueue::new(capacity)),
            spares: Arc::new(ArrayQueue::new(capacity)),
            clock: quanta::Clock::new(),
            capacity,
            in_flight: 0,
            next_ticket: 1,
            submitted: 0,
            overloaded: 0,
        }
    }

    /// Queues `request`; [`Error::Overloaded`] (and nothing queued) when
    /// `capacity` requests are already in flight.
    pub fn submit(&mut self, request: Request) -> Result<Ticket> {
        if self.in_flight >= self.capacity {
            self.overloaded += 1;
            return Err(Error::Overloaded {
                in_flight: self.in_flight,
                capacity: self.capacity,
            });
        }
        let ticket = Ticket(self.next_ticket);
        let submission = Submission {
            ticket,
            request,
            submitted_raw: self.clock.raw(),
        };
        if let Err(back) = self.ingress.push(submission) {
            // Unreachable while admission holds; refuse rather than lose it.
            drop(back);
            self.overloaded += 1;
            return Err(Error::Overloaded {
                in_flight: self.in_flight,
                capacity: self.capacity,
            });
        }
        self.next_ticket += 1;
        self.in_flight += 1;
        self.submitted += 1;
        Ok(ticket)
    }

    /// The next decision, if any.
    pub fn poll(&mut self) -> Option<Decision> {
        let decision = self.egress.pop()?;
        self.in_flight -= 1;
        Some(decision)
    }

    /// Requests submitted and not yet polled.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// A context to fill for the next submission: one a decided request
    /// left behind, whose strings and lists kept their capacity, or a new
    /// empty one when none is spare. **A reused context still holds that
    /// request's values**: overwrite every field, as
    /// [`ContextView::write_into`](cx_wire::protocol::ContextView::write_into) does.
    pub fn spare_context(&mut self) -> RequestContext {
        self.spares.pop().unwrap_or_default()
    }

    /// Decisions ready to poll.
    pub fn ready(&self) -> usize {
        self.egress.len()
    }

    /// The in-flight limit.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

/// A model staged by [`Engine::swap_model`], applied at the next tick.
struct Staged {
    scoring: Scoring,
    info: ModelInfo,
}

/// The engine. See the [module docs](self) and `docs/ARCHITECTURE.md`.
pub struct Engine {
    world: World,
    schedule: Schedule,
    port: Port,
    staged: Option<Staged>,
    clock: quanta::Clock,
    tick_ns: Histogram<u64>,
    ticks: u64,
    backend: BackendKind,
    model: ModelInfo,
    config: EngineConfig,
}

impl Engine {
    /// A builder with every default.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    /// Queues one request for the next tick.
    pub fn submit(&mut self, ctx: RequestContext) -> Result<Ticket> {
        self.port.submit(Request {
            ctx,
            simulate: false,
        })
    }

    /// Queues one request as given (its `simulate` flag included); the
    /// server's connections submit through this.
    pub fn submit_request(&mut self, request: Request) -> Result<Ticket> {
        self.port.submit(request)
    }

    /// Queues one request to decide in simulation mode: the same decision,
    /// but no frequency cap or budget is spent and no cache entry written.
    pub fn submit_simulated(&mut self, ctx: RequestContext) -> Result<Ticket> {
        self.port.submit(Request {
            ctx,
            simulate: true,
        })
    }

    /// Runs the schedule once at host time `now_ns` (unix ns), first
    /// applying a model staged by [`swap_model`](Self::swap_model). Returns
    /// how many decisions it emitted.
    pub fn tick(&mut self, now_ns: u64) -> usize {
        let start = self.clock.raw();
        if let Some(staged) = self.staged.take() {
            self.apply(staged);
        }
        self.world.resource_mut::<TickClock>().now_ns = now_ns;
        let before = self.world.resource::<Counters>().decided;
        self.schedule.run(&mut self.world);
        // Despawning records removed-component events until the trackers
        // are cleared; a World that is never cleared grows without bound
        // (bevy_app clears them every frame; a bare World must do it itself).
        self.world.clear_trackers();
        let decided = self.world.resource::<Counters>().decided - before;
        let ns = self.clock.delta_as_nanos(start, self.clock.raw());
        self.tick_ns.saturating_record(ns.max(1));
        self.ticks += 1;
        decided as usize
    }

    /// The next decision, if any.
    pub fn poll(&mut self) -> Option<Decision> {
        self.port.poll()
    }

    /// A context to fill for the next [`submit`](Self::submit) without
    /// allocating: see [`Port::spare_context`] (it may hold an earlier
    /// request's values; overwrite every field).
    pub fn spare_context(&mut self) -> RequestContext {
        self.port.spare_context()
    }

    /// Every decision ready now.
    pub fn drain(&mut self) -> impl Iterator<Item = Decision> + '_ {
        std::iter::from_fn(move || self.port.poll())
    }

    /// Ticks at `now_ns` until every request in flight is decided (or, as a
    /// bound, as many ticks as the in-flight limit allows batches). Returns
    /// the ticks run.
    pub fn run_until_decided(&mut self, now_ns: u64) -> usize {
        let ingest_max = self.config.batch.ingest_max.max(1);
        let ticks_max = self.port.capacity() / ingest_max + 2;
        let mut ticks = 0;
        while self.port.ready() < self.port.in_flight() && ticks < ticks_max {
            self.tick(now_ns);
            ticks += 1;
        }
        ticks
    }

    /// Requests submitted and not yet polled.
    pub fn in_flight(&self) -> usize {
        self.port.in_flight()
    }

    /// Loads and checks a new model (and fallback) now, and stages it for
    /// the next tick, which serves it from its first request. A model that
    /// fails to load or does not fit the catalog is reported here and
    /// changes nothing. Returns the staged model's description.
    pub fn swap_model(
        &mut self,
        model: ModelSource,
        fallback: FallbackSource,
    ) -> Result<ModelInfo> {
        let schema = &self.world.resource::<Schema>().0;
        let (serving, info) = load_serving(&model, &fallback, schema)?;
        let catalog = self.world.resource::<Catalog>();
        let scoring = Scoring::new(serving, catalog, self.backend, self.config.batch.batch_max)?;
        self.staged = Some(Staged {
            scoring,
            info: info.clone(),
        });
        Ok(info)
    }

    /// Installs a staged model between ticks: new scoring state, and a
    /// cleared cache (its keys include the model id, so old entries could
    /// never hit; clearing frees their room).
    fn apply(&mut self, staged: Staged) {
        let outputs = staged.scoring.outputs();
        let slots = self.port.capacity();
        if self.world.resource::<ScoreRows>().width() != outputs {
            if let Ok(rows) = ScoreRows::new(slots, outputs) {
                self.world.insert_resource(rows);
            }
            if let Ok(cache) = DecisionCache::new(self.config.cache_config(), outputs) {
                self.world.insert_resource(cache);
            }
        } else {
            self.world.resource_mut::<DecisionCache>().clear();
        }
        self.world.insert_resource(staged.scoring);
        self.model = staged.info;
    }

    /// The running totals a metrics exporter polls after every tick: a few
    /// loads, unlike [`stats`](Self::stats), which builds percentiles.
    pub fn counts(&self) -> EngineCounts {
        let counters = self.world.resource::<Counters>();
        let cache = self.world.resource::<DecisionCache>().stats();
        EngineCounts {
            decided: counters.decided,
            batches: counters.batches,
            inferred_rows: counters.inferred_rows,
            cache_hits: cache.hits,
            cache_misses: cache.misses,
        }
    }

    /// Counters and latency percentiles per stage.
    pub fn stats(&self) -> EngineStats {
        EngineStats::collect(self)
    }

    /// The config the engine runs with.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The model being served.
    pub fn model(&self) -> &ModelInfo {
        &self.model
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        self.world.resource::<Catalog>()
    }

    /// The World, read-only (for inspection and tests).
    pub fn world(&self) -> &World {
        &self.world
    }

    pub(crate) fn parts(&self) -> EngineParts<'_> {
        EngineParts {
            world: &self.world,
            port: &self.port,
            tick_ns: &self.tick_ns,
            ticks: self.ticks,
            backend: self.backend,
            model: &self.model,
        }
    }
}

/// Running totals since the engine was built (see [`Engine::counts`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineCounts {
    /// Decisions emitted.
    pub decided: u64,
    /// Inference batches run.
    pub batches: u64,
    /// Rows scored by the model.
    pub inferred_rows: u64,
    /// Decision-cache hits.
    pub cache_hits: u64,
    /// Decision-cache misses.
    pub cache_misses: u64,
}

/// What [`EngineStats::collect`] reads.
pub(crate) struct EngineParts<'a> {
    pub world: &'a World,
    pub port: &'a Port,
    pub tick_ns: &'a Histogram<u64>,
    pub ticks: u64,
    pub backend: BackendKind,
    pub model: &'a ModelInfo,
}

impl Port {
    pub(crate) fn counts(&self) -> (u64, u64) {
        (self.submitted, self.overloaded)
    }
}
