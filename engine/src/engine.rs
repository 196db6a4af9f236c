//! The embeddable engine: a bevy_ecs World and Schedule running the
//! pipeline of `cx-systems`, behind a game-loop API: `submit` requests,
//! `tick(now)`, `poll` decisions.
//!
//! No thread is started. Given its seed and the `now` each tick passes in,
//! an engine decides deterministically; wall-clock readings feed only the
//! latency statistics.

use crate::builder::{load_serving, Bundle, EngineBuilder, FallbackSource, ModelSource};
use crate::config::EngineConfig;
use crate::error::{Error, Result};
use crate::fit::CatalogFit;
use crate::openrtb::{BidIds, Bidder, NoticeUrls};
use crate::port::Port;
use crate::skew::TrainServeSkew;
use crate::stats::{EngineStats, ModelInfo};
use bevy_ecs::prelude::*;
use cx_backends::BackendKind;
use cx_domain::catalog::Catalog;
use cx_domain::pipeline::{Decision, Request, Ticket};
use cx_domain::store::{BudgetBackend, Budgets, CacheBackend, ScoreCache};
use cx_features::RequestContext;
use cx_systems::resources::{BatchTimes, Counters, Schema, TickClock};
use cx_systems::StagedModel;
use hdrhistogram::Histogram;

/// A model staged by [`Engine::swap_model`] or [`Engine::swap_bundle`]
/// (or experiments by [`Engine::set_experiments`]), applied at the next
/// tick.
pub(crate) struct Staged {
    pub(crate) model: StagedModel,
    pub(crate) info: ModelInfo,
    pub(crate) fit: CatalogFit,
    pub(crate) skew: TrainServeSkew,
    pub(crate) decide: Option<cx_systems::DecideConfig>,
    /// A monitor for a new model (`None`: keep the running one).
    pub(crate) monitor: Option<cx_systems::monitor::Monitor>,
    /// Experiments staged with it ([`Engine::set_experiments`]), kept so
    /// that a swap staged after them carries them.
    pub(crate) experiments: Option<cx_systems::ExperimentParts>,
}

/// The engine. See the [module docs](self) and `docs/ARCHITECTURE.md`.
pub struct Engine {
    pub(crate) world: World,
    schedule: Schedule,
    port: Port,
    pub(crate) staged: Option<Staged>,
    clock: quanta::Clock,
    tick_ns: Histogram<u64>,
    ticks: u64,
    pub(crate) backend: BackendKind,
    pub(crate) model: ModelInfo,
    /// How the model serving and the catalog match.
    pub(crate) fit: CatalogFit,
    /// Context fields the model was trained on that serving never fills.
    pub(crate) skew: TrainServeSkew,
    config: EngineConfig,
    /// Ids of the OpenRTB bids this engine makes.
    bid_ids: BidIds,
    /// Where its bids' notices go.
    notices: NoticeUrls,
    /// What it did with feedback events ([`crate::feedback`]).
    pub(crate) feedback: crate::feedback::FeedbackState,
    /// The online feature store, if the builder set one.
    pub(crate) feature_hooks: Option<crate::feature_store::FeatureHooks>,
}

impl Engine {
    pub(crate) fn new(
        world: World,
        schedule: Schedule,
        port: Port,
        backend: BackendKind,
        model: ModelInfo,
        fit: CatalogFit,
        config: EngineConfig,
    ) -> Self {
        let mut engine = Self {
            world,
            schedule,
            port,
            staged: None,
            clock: quanta::Clock::new(),
            tick_ns: cx_systems::resources::new_histogram(),
            ticks: 0,
            backend,
            model,
            fit,
            skew: TrainServeSkew::default(),
            config,
            bid_ids: BidIds::default(),
            notices: NoticeUrls::none(),
            feedback: crate::feedback::FeedbackState::default(),
            feature_hooks: None,
        };
        engine.sync_decision_ids();
        engine
    }

    /// A builder with every default.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    /// Queues one request for the next tick.
    pub fn submit(&mut self, ctx: RequestContext) -> Result<Ticket> {
        self.port.submit(Request::from(ctx))
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
            simulate: true,
            ..Request::from(ctx)
        })
    }

    /// Runs the schedule once at host time `now_ns` (unix ns), first
    /// applying a model staged by [`swap_model`](Self::swap_model). Returns
    /// how many decisions it emitted.
    pub fn tick(&mut self, now_ns: u64) -> usize {
        let start = self.clock.raw();
        if let Some(staged) = self.staged.take() {
            cx_systems::apply_model(&mut self.world, staged.model);
            self.model = staged.info;
            self.fit = staged.fit;
            self.skew = staged.skew;
            if let Some(decide) = staged.decide {
                self.config.decide = decide;
            }
            if let Some(monitor) = staged.monitor {
                self.world.insert_resource(monitor);
            }
        }
        self.world.resource_mut::<TickClock>().now_ns = now_ns;
        let before = self.world.resource::<Counters>().decided;
        // Request entities are pooled, never despawned, so the World
        // records no removals and needs no `clear_trackers`.
        self.schedule.run(&mut self.world);
        let decided = self.world.resource::<Counters>().decided - before;
        let ns = self.clock.delta_as_nanos(start, self.clock.raw());
        self.maintain_feedback(now_ns);
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
    /// the next tick, which serves it from its first request. Everything the
    /// swap needs (backend chain, catalog mapping, a cache of the new width)
    /// is built here; applying it cannot fail. A model that fails to load,
    /// does not fit the catalog, or (`train_serve_skew = "refuse"`) was
    /// trained on fields serving never fills is reported here and changes
    /// nothing.
    /// Returns the staged model's description.
    pub fn swap_model(
        &mut self,
        model: ModelSource,
        fallback: FallbackSource,
    ) -> Result<ModelInfo> {
        self.swap_bundle(Bundle::model(model, fallback))
    }

    /// [`swap_model`](Self::swap_model) for a whole bundle: the model, its
    /// fallback, and optionally a catalog and decision settings, checked
    /// together now and served together from the next tick, or (on any
    /// error) not at all. With a new catalog, daily budgets spent and
    /// frequency counts carry over by offer id ([`cx_systems::stage_bundle`]),
    /// so a swap never re-opens a spent budget. A staged swap not yet
    /// applied is replaced by this one (experiments staged with it stay
    /// staged). The live experiments' models must fit the new model
    /// ([`Engine::set_experiments`]), or the swap is refused.
    pub fn swap_bundle(&mut self, bundle: Bundle) -> Result<ModelInfo> {
        // Experiments staged and not yet applied go live with this swap.
        let experiments = self.staged.as_ref().and_then(|s| s.experiments.clone());
        self.stage_swap(bundle, experiments)
    }

    /// [`swap_bundle`](Self::swap_bundle) with `experiments` live from the
    /// same tick in place of the running ones
    /// ([`set_experiments`](Self::set_experiments)): their models are
    /// checked against the new model, not the running one. Any error
    /// changes nothing.
    pub fn swap_bundle_with_experiments(
        &mut self,
        bundle: Bundle,
        experiments: &[crate::experiments::ExperimentDef],
    ) -> Result<ModelInfo> {
        let parts = self.load_experiments(experiments)?;
        self.stage_swap(bundle, Some(parts))
    }

    fn stage_swap(
        &mut self,
        bundle: Bundle,
        experiments: Option<cx_systems::ExperimentParts>,
    ) -> Result<ModelInfo> {
        let (serving, info, schema) = load_serving(&bundle.model, &bundle.fallback)?;
        let running = &self.world.resource::<Schema>().0;
        if schema.id() != running.id() {
            return Err(Error::Config(format!(
                "model `{}` reads feature schema {}, but this engine extracts {}: a swap keeps \
                 the feature schema (requests in flight were extracted with it); start a new \
                 engine with the model instead",
                info.name,
                schema.id(),
                running.id()
            )));
        }
        let catalog = match &bundle.catalog {
            Some(catalog) => catalog,
            None => self.world.resource::<Catalog>(),
        };
        let fit = CatalogFit::of(catalog, &serving.model.meta().offer_ids)
            .check(self.config.catalog_overlap, &info.name)?;
        let skew = TrainServeSkew::of(serving.model.meta())?
            .check(self.config.train_serve_skew, &info.name)?;
        let decide = bundle.decide.clone();
        let monitor = crate::monitor::build(&self.config.monitor, serving.model.meta(), &schema)?;
        let parts = cx_systems::BundleParts {
            catalog: bundle.catalog,
            decide: bundle.decide,
            experiments: experiments.clone(),
        };
        let staged = cx_systems::stage_bundle(&self.world, serving, self.backend, parts)?;
        self.staged = Some(Staged {
            model: staged,
            info: info.clone(),
            fit,
            skew,
            decide,
            monitor: Some(monitor),
            experiments,
        });
        Ok(info)
    }

    /// Store housekeeping for an engine that may be idle: budget leases
    /// unused for their time to live go back to the shared bank
    /// (`now_unix_ns`: the host's clock). Ticks do this too; a server calls
    /// it from its housekeeping so that an idle worker strands no budget.
    pub fn maintain_stores(&mut self, now_unix_ns: u64) {
        self.world
            .resource_mut::<BudgetBackend>()
            .maintain(now_unix_ns);
    }

    /// The running totals a metrics exporter polls after every tick: a few
    /// loads, unlike [`stats`](Self::stats), which builds percentiles.
    pub fn counts(&self) -> EngineCounts {
        let counters = self.world.resource::<Counters>();
        let cache = self.world.resource::<CacheBackend>().stats();
        EngineCounts {
            decided: counters.decided,
            batches: counters.batches,
            inferred_rows: counters.inferred_rows,
            cache_hits: cache.hits,
            cache_misses: cache.misses,
        }
    }

    /// Hands the wall time of every inference batch since the last call to
    /// `f`, in ns, oldest first (for a metrics exporter; the stats'
    /// `inference_batch` latency keeps them all).
    pub fn take_batch_times(&mut self, f: impl FnMut(u64)) {
        self.world.resource_mut::<BatchTimes>().take(f);
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

    /// How the model serving and the catalog match: offers it cannot score
    /// and columns no offer uses (empty both when they match exactly).
    pub fn catalog_fit(&self) -> &CatalogFit {
        &self.fit
    }

    /// Context fields the model serving was trained on that a serving path
    /// never fills, with their dataset columns ([`crate::skew`]); clean for
    /// a model without a `cx.training_inputs` record.
    pub fn train_serve_skew(&self) -> &TrainServeSkew {
        &self.skew
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        self.world.resource::<Catalog>()
    }

    /// What [`build_response`](crate::openrtb::build_response) needs from
    /// this engine, lent together: the catalog, the bid-id source and the
    /// notice URLs.
    pub fn bidder(&mut self) -> Bidder<'_> {
        Bidder {
            catalog: self.world.resource::<Catalog>(),
            bid_ids: &mut self.bid_ids,
            notices: &self.notices,
        }
    }

    /// The source of this engine's bid ids.
    pub fn bid_ids(&self) -> &BidIds {
        &self.bid_ids
    }

    /// Issues bid ids from `ids` from now on (a server sets each worker's:
    /// node id, worker index, process start; see
    /// [`BidIds`](crate::openrtb::BidIds) for why they cannot repeat).
    pub fn set_bid_ids(&mut self, ids: BidIds) {
        self.bid_ids = ids;
        self.sync_decision_ids();
    }

    /// Decision ids take the bid ids' prefix, so a bid's id is its
    /// decision's id.
    pub(crate) fn sync_decision_ids(&mut self) {
        let prefix = self.bid_ids.prefix().to_owned();
        let synced = self
            .world
            .resource_mut::<cx_systems::resources::DecisionLogging>()
            .set_prefix(&prefix);
        // At most 30 bytes (three base-36 numbers of u32, u32, u64).
        assert!(synced, "bid id prefix {prefix:?} too long for decision ids");
    }

    /// Where this engine's bids send their notices (none: no notice URLs).
    pub fn notice_urls(&self) -> &NoticeUrls {
        &self.notices
    }

    /// Sends notices under `base_url` from now on (`""`: no notice URLs);
    /// the server sets its own HTTP listener's address when the config's
    /// `openrtb.notice_base_url` is empty. A bad URL changes nothing.
    pub fn set_notice_base_url(&mut self, base_url: &str) -> Result<()> {
        self.notices = NoticeUrls::new(base_url)?;
        Ok(())
    }

    /// Sends notices as `notices` says from now on.
    pub fn set_notice_urls(&mut self, notices: NoticeUrls) {
        self.notices = notices;
    }

    /// The World, read-only (for inspection and tests).
    pub fn world(&self) -> &World {
        &self.world
    }

    /// The World, for the engine's own modules that own a resource of it
    /// (`crate::posteriors`).
    pub(crate) fn world_mut(&mut self) -> &mut World {
        &mut self.world
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
