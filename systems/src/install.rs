//! The pipeline's one installer, plugin style: [`install`] builds and
//! checks every resource the pipeline owns, spawns its pool of request
//! entities and adds its systems, into any World and Schedule (the engine's
//! own, a test's, or a host's game loop). It also stages and applies model
//! swaps, so that a swap either fully happens or does not happen.

use crate::config::{BatchPolicy, DecideConfig};
use crate::error::{Error, Result};
use crate::logic::stored::BehaviorInputs;
use crate::resources::{
    Arm, BatchTimes, Counters, DecisionLogging, Egress, ExperimentCounts, ExperimentRoutes,
    Ingress, Latencies, LiveExperiment, RequestQueues, Schema, Scoring, Seed, ServingModel,
    SpareContexts, Submission, TickClock, WallClock,
};
use crate::user_store::{UserFeatures, UserStore};
use bevy_ecs::prelude::*;
use crossbeam::queue::ArrayQueue;
use cx_backends::BackendKind;
use cx_domain::catalog::Catalog;
use cx_domain::pipeline::{
    Decision, FeatureRow, Fingerprint, Phase, Request, Scores, Stage, StageTimes, Ticket,
};
use cx_domain::store::{
    BudgetBackend, BudgetLedger, CacheBackend, CacheConfig, DecisionCache, DecisionLog,
    FrequencyBackend, FrequencyConfig, FrequencyStore, LogConfig, PosteriorBackend,
    PosteriorConfig, PosteriorHub, Posteriors, ScoreCache, SharedPosteriors, SharedStores,
    VariantBackend, VariantStats, WinRateBackend, WinRateConfig, WinRates,
};
use cx_features::{FeatureSchema, RequestContext};
use cx_featurestore::{Definitions, FeatureBackend};
use std::sync::Arc;

/// Most request entities one pipeline may pool (the in-flight limit).
pub const POOL_MAX: usize = 1 << 20;

/// Everything the pipeline is built from.
pub struct PipelineParts {
    /// The model to serve, checked against `schema`.
    pub serving: ServingModel,
    /// Its backend chain.
    pub backend: BackendKind,
    /// The offers.
    pub catalog: Catalog,
    /// The feature schema rows are extracted with.
    pub schema: FeatureSchema,
    /// The batch policy.
    pub batch: BatchPolicy,
    /// Weights and rules.
    pub decide: DecideConfig,
    /// The decision cache's size and TTL.
    pub cache: CacheConfig,
    /// The frequency store's size.
    pub frequency: FrequencyConfig,
    /// Requests in flight at most: the pool of request entities, and the
    /// size of the ingress, the egress and the spare contexts.
    pub in_flight_max: usize,
    /// The exploration seed.
    pub seed: u64,
    /// Frequency counts and budgets shared with other engines (a server's
    /// workers); `None`: this engine's own.
    pub shared: Option<SharedStores>,
    /// The decision log: one shared with other engines, or the config of
    /// this engine's own.
    pub decision_log: DecisionLogSource,
    /// Posteriors shared with other engines, their offers the catalog's;
    /// `None`: this engine's own, discounted with the decide config's
    /// `posterior_half_life_s`.
    pub posteriors: Option<Arc<PosteriorHub>>,
    /// The online feature store the features system reads once per
    /// request with a user, and decisions use (`None`: none, and every
    /// request decides as without one).
    pub features: Option<FeatureBackend>,
}

/// Where a pipeline logs its decisions.
#[derive(Clone, Debug)]
pub enum DecisionLogSource {
    /// A log of its own, of this size.
    Own(LogConfig),
    /// A log shared with other engines (a server's workers).
    Shared(Arc<DecisionLog>),
}

impl From<LogConfig> for DecisionLogSource {
    fn from(config: LogConfig) -> Self {
        Self::Own(config)
    }
}

/// The host's ends of the pipeline's bounded queues, and the clock its
/// latency stamps use (the host stamps submissions with it).
#[derive(Clone)]
pub struct PipelineHandles {
    /// Where submissions go.
    pub ingress: Arc<ArrayQueue<Submission>>,
    /// Where decisions come out.
    pub egress: Arc<ArrayQueue<Decision>>,
    /// Contexts of decided requests, to refill.
    pub spares: Arc<ArrayQueue<RequestContext>>,
    /// The wall clock of the latency statistics.
    pub clock: quanta::Clock,
}

/// The components a pooled request entity is spawned with: all of them, so
/// it never changes archetype.
pub type RequestBundle = (
    Ticket,
    Request,
    Phase,
    FeatureRow,
    Fingerprint,
    Scores,
    StageTimes,
    Decision,
    UserFeatures,
    Arm,
);

/// A free request entity's components, its scores `width` wide, its user
/// features' buffer for `defs` (none without a store).
fn idle_request(width: usize, defs: Option<&Arc<Definitions>>) -> RequestBundle {
    (
        Ticket::default(),
        Request::default(),
        Phase::Free,
        FeatureRow::default(),
        Fingerprint::default(),
        Scores::with_width(width),
        StageTimes::default(),
        Decision::default(),
        UserFeatures::new(defs),
        Arm::default(),
    )
}

/// Builds every resource of the pipeline from `parts`, inserts them into
/// `world`, spawns the pool of request entities, and adds the systems to
/// `schedule` ([`crate::systems::add_systems`]). Everything that can fail
/// is built before anything is inserted, so an error leaves `world` and
/// `schedule` untouched.
pub fn install(
    world: &mut World,
    schedule: &mut Schedule,
    parts: PipelineParts,
) -> Result<PipelineHandles> {
    let pool = parts.in_flight_max;
    if !(1..=POOL_MAX).contains(&pool) {
        return Err(Error::Config {
            field: "in_flight_max",
            reason: format!("{pool} is not in 1..={POOL_MAX}"),
        });
    }
    parts.batch.validate()?;
    parts.decide.validate()?;
    let outputs = parts.serving.model.outputs();
    let scoring = Scoring::new(
        parts.serving,
        &parts.catalog,
        parts.backend,
        parts.batch.batch_max,
    )?;
    let cache = DecisionCache::new(parts.cache, outputs)?;
    let log = match parts.decision_log {
        DecisionLogSource::Own(config) => Arc::new(DecisionLog::new(config)?),
        DecisionLogSource::Shared(log) => log,
    };
    // Replaced by the engine's bid-id prefix when it starts.
    let logging = DecisionLogging::new(log, "0-0-0-").expect("a short prefix");
    let (variant_stats, win_rates) =
        learned_stores(&parts.catalog, &parts.decide, parts.shared.as_ref())?;
    let (frequency, budget) = match &parts.shared {
        None => (
            FrequencyBackend::InProcess(FrequencyStore::new(parts.frequency)?),
            BudgetBackend::InProcess(BudgetLedger::new(parts.catalog.daily_budgets())?),
        ),
        Some(shared) => (
            FrequencyBackend::Shared(shared.frequency().clone()),
            BudgetBackend::Leased(shared.leases_for(&parts.catalog)?),
        ),
    };

    let posteriors = posterior_backend(&parts.catalog, &parts.decide, parts.posteriors.as_ref())?;
    let user_store = match parts.features {
        Some(backend) => Some(UserStore::new(backend, &parts.decide)?),
        None => None,
    };
    let defs = user_store.as_ref().map(|s| s.definitions().clone());

    let handles = PipelineHandles {
        ingress: Arc::new(ArrayQueue::new(pool)),
        egress: Arc::new(ArrayQueue::new(pool)),
        spares: Arc::new(ArrayQueue::new(pool)),
        clock: quanta::Clock::new(),
    };
    let entities: Vec<Entity> = world
        .spawn_batch((0..pool).map(|_| idle_request(outputs, defs.as_ref())))
        .collect();
    world.insert_resource(RequestQueues::new(entities));
    world.insert_resource(Ingress(handles.ingress.clone()));
    world.insert_resource(Egress(handles.egress.clone()));
    world.insert_resource(SpareContexts(handles.spares.clone()));
    world.insert_resource(TickClock::default());
    world.insert_resource(WallClock(handles.clock.clone()));
    world.insert_resource(Seed(parts.seed));
    world.insert_resource(parts.batch);
    world.insert_resource(parts.decide);
    world.insert_resource(Schema(parts.schema));
    world.insert_resource(scoring);
    world.insert_resource(CacheBackend::InProcess(cache));
    world.insert_resource(frequency);
    world.insert_resource(budget);
    world.insert_resource(posteriors);
    world.insert_resource(parts.catalog);
    world.insert_resource(Counters::default());
    world.insert_resource(logging);
    world.insert_resource(variant_stats);
    world.insert_resource(win_rates);
    world.insert_resource(ExperimentRoutes::default());
    world.insert_resource(ExperimentCounts::default());
    world.insert_resource(Latencies::new());
    world.insert_resource(BatchTimes::new());
    if let Some(store) = user_store {
        world.insert_resource(store);
    }
    crate::systems::add_systems(schedule);
    Ok(handles)
}

/// The creative variants' counts and the win rates of a pipeline: its
/// own, or handles on the ones its shared stores hold (the variants' hub
/// must hold the catalog's offers and variants, in its order).
fn learned_stores(
    catalog: &Catalog,
    decide: &DecideConfig,
    shared: Option<&SharedStores>,
) -> Result<(VariantBackend, WinRateBackend)> {
    let hub = shared.and_then(|s| s.variants());
    if let Some(hub) = hub {
        if !hub.lock().fits(catalog) {
            return Err(Error::Config {
                field: "variants",
                reason: format!(
                    "the shared variant store's offers are not the catalog's {} offers and \
                     their variants, in catalog order",
                    catalog.len()
                ),
            });
        }
    }
    let variants = VariantBackend::from_hub(hub, || {
        VariantStats::new(catalog, decide.posterior_half_life_s)
    });
    let win_rates = match shared {
        Some(shared) => WinRateBackend::Shared(shared.win_rates().clone()),
        None => WinRateBackend::Local(WinRates::new(WinRateConfig::default())?),
    };
    Ok((variants, win_rates))
}

/// The posterior store of a pipeline over `catalog`: its own, one arm per
/// offer, or a handle on the shared `hub`, which must hold the catalog's
/// offers in its order.
fn posterior_backend(
    catalog: &Catalog,
    decide: &DecideConfig,
    hub: Option<&Arc<PosteriorHub>>,
) -> Result<PosteriorBackend> {
    let ids = catalog.ids();
    match hub {
        None => {
            let config = PosteriorConfig {
                half_life_s: decide.posterior_half_life_s,
            };
            Ok(PosteriorBackend::Local(Posteriors::new(ids, config)?))
        }
        Some(hub) => {
            if hub.lock().offer_ids() != ids {
                return Err(Error::Config {
                    field: "posteriors",
                    reason: format!(
                        "the shared posterior store's offers are not the catalog's {} offers \
                         in catalog order",
                        ids.len()
                    ),
                });
            }
            Ok(PosteriorBackend::Shared(SharedPosteriors::new(hub.clone())))
        }
    }
}

/// A model swap with everything built and checked, ready to apply.
pub struct StagedModel {
    scoring: Scoring,
    /// A cache for the new width, when it differs from the running one's.
    cache: Option<CacheBackend>,
    /// A catalog swapped in with the model, if any.
    catalog: Option<StagedCatalog>,
    /// Decision settings swapped in with the model, if any.
    decide: Option<DecideConfig>,
    /// Their behaviour features resolved against the feature store's
    /// definitions (with new settings and a store).
    behavior: Option<BehaviorInputs>,
    /// New experiment routes (`None`: keep the running ones).
    routes: Option<ExperimentRoutes>,
}

/// A catalog staged with its model: the catalog, a budget store over its
/// offers (of the running store's kind, a leased one registered with the
/// same bank), and per new offer the index of the same offer id in the
/// running catalog, to carry spend over by id.
struct StagedCatalog {
    catalog: Catalog,
    budget: BudgetBackend,
    carry: Vec<Option<u32>>,
}

impl StagedModel {
    /// The model it will serve.
    pub fn serving(&self) -> &ServingModel {
        &self.scoring.serving
    }

    /// The catalog it will serve with, when one is swapped in with it.
    pub fn catalog(&self) -> Option<&Catalog> {
        self.catalog.as_ref().map(|c| &c.catalog)
    }

    /// Makes `experiments` go live with this swap instead of the ones it
    /// carried: its scoring is rebuilt with their models. An error changes
    /// nothing.
    pub fn set_experiments(
        &mut self,
        world: &World,
        experiments: ExperimentParts,
        backend: BackendKind,
    ) -> Result<()> {
        let routes = ExperimentRoutes::new(experiments.live, experiments.models.len())?;
        let catalog = self
            .catalog
            .as_ref()
            .map_or_else(|| world.resource::<Catalog>(), |c| &c.catalog);
        self.scoring = Scoring::with_arms(
            self.scoring.serving.clone(),
            experiments.models,
            catalog,
            backend,
            world.resource::<BatchPolicy>().batch_max,
        )?;
        self.routes = Some(routes);
        Ok(())
    }
}

/// What [`stage_bundle`] swaps in beside the model.
#[derive(Default)]
pub struct BundleParts {
    /// A new catalog (`None`: keep the running one).
    pub catalog: Option<Catalog>,
    /// New decision settings (`None`: keep the running ones).
    pub decide: Option<DecideConfig>,
    /// New live experiments (`None`: keep the running ones, whose models
    /// must then fit the new model).
    pub experiments: Option<ExperimentParts>,
}

/// Live experiments as staged: the models that serve their arms beside
/// the default one (scoring slots 1 and up, in order), and the
/// experiments with their routes to those slots.
#[derive(Clone, Debug, Default)]
pub struct ExperimentParts {
    /// The arms' models.
    pub models: Vec<ServingModel>,
    /// The experiments, in the order a request tries them.
    pub live: Vec<LiveExperiment>,
}

/// Builds everything a swap to `serving` needs against the pipeline in
/// `world`: its backend chain, its catalog mapping and, if its width
/// differs, a new decision cache. An error means nothing will change.
pub fn stage_model(
    world: &World,
    serving: ServingModel,
    backend: BackendKind,
) -> Result<StagedModel> {
    stage_bundle(world, serving, backend, BundleParts::default())
}

/// [`stage_model`] with a catalog and decision settings swapped in
/// together with the model (a model repository's bundle): the mapping is
/// built against the new catalog, and a budget store over its offers,
/// which [`apply_model`] fills with the running store's spend by offer id.
/// Frequency counts are keyed by offer id and carry over as they are. An
/// error means nothing will change.
pub fn stage_bundle(
    world: &World,
    serving: ServingModel,
    backend: BackendKind,
    parts: BundleParts,
) -> Result<StagedModel> {
    if let Some(decide) = &parts.decide {
        decide.validate()?;
    }
    let behavior = match (&parts.decide, world.get_resource::<UserStore>()) {
        (Some(decide), Some(store)) => Some(BehaviorInputs::new(store.definitions(), decide)?),
        _ => None,
    };
    let running_catalog = world.resource::<Catalog>();
    let batch_max = world.resource::<BatchPolicy>().batch_max;
    let outputs = serving.model.outputs();
    let running = world.resource::<CacheBackend>();
    let cache = match running.value_width() == outputs {
        true => None,
        false => Some(running.with_width(outputs)?),
    };
    let catalog = match parts.catalog {
        None => None,
        Some(catalog) => {
            let budget = world.resource::<BudgetBackend>().for_catalog(&catalog)?;
            let carry = catalog
                .ids()
                .iter()
                .map(|&id| running_catalog.index_of(id).map(|i| i as u32))
                .collect();
            Some(StagedCatalog {
                catalog,
                budget,
                carry,
            })
        }
    };
    let mapped = catalog.as_ref().map_or(running_catalog, |c| &c.catalog);
    let (arm_models, routes) = match parts.experiments {
        Some(e) => {
            let routes = ExperimentRoutes::new(e.live, e.models.len())?;
            (e.models, Some(routes))
        }
        None => {
            let running = world.resource::<Scoring>();
            (running.arm_models().cloned().collect(), None)
        }
    };
    let scoring = Scoring::with_arms(serving, arm_models, mapped, backend, batch_max)?;
    Ok(StagedModel {
        scoring,
        cache,
        catalog,
        decide: parts.decide,
        behavior,
        routes,
    })
}

/// Installs a staged model between ticks: the new scoring state (with its
/// experiment arms' models, and their routes when staged anew), and a
/// cleared cache (its keys include the model id, so old entries could
/// never hit; clearing frees their room) or the new-width one, with every
/// pooled entity's scores resized to match; with a staged catalog, the
/// catalog and its budget store, which takes over the running store's
/// spend by offer id (a leased store's unused allowances go back to the
/// bank as the old store is dropped); and staged decision settings.
/// Cannot fail.
pub fn apply_model(world: &mut World, staged: StagedModel) {
    let outputs = staged.scoring.outputs();
    match staged.cache {
        Some(cache) => {
            world.insert_resource(cache);
            let mut scores = world.query::<&mut Scores>();
            for mut s in scores.iter_mut(world) {
                s.probability.clear();
                s.probability.resize(outputs, 0.0);
            }
        }
        None => world.resource_mut::<CacheBackend>().clear(),
    }
    if let Some(staged_catalog) = staged.catalog {
        let mut budget = staged_catalog.budget;
        budget.carry_over(world.resource::<BudgetBackend>(), &staged_catalog.carry);
        world.insert_resource(budget);
        // Posteriors follow their offers by id. Carrying can only fail on
        // a catalog past the store's limits, which staging has refused; if
        // it did, the old store stays and decide reads the offers it no
        // longer matches as having no data (never another offer's).
        let ids = staged_catalog.catalog.ids();
        if let Err(e) = world.resource_mut::<PosteriorBackend>().carry_to(ids) {
            debug_assert!(false, "posteriors not carried to a staged catalog: {e}");
        }
        // The variants' counts too (by offer id and variant position).
        let carried = world
            .resource_mut::<VariantBackend>()
            .replace(|v| Ok(v.carried_to(&staged_catalog.catalog)));
        debug_assert!(carried.is_ok(), "carrying variants cannot fail");
        world.insert_resource(staged_catalog.catalog);
    }
    if let Some(decide) = staged.decide {
        world.insert_resource(decide);
    }
    if let (Some(behavior), Some(mut store)) =
        (staged.behavior, world.get_resource_mut::<UserStore>())
    {
        store.set_behavior(behavior);
    }
    if let Some(routes) = staged.routes {
        world
            .resource_mut::<ExperimentCounts>()
            .reserve_for(&routes);
        world.insert_resource(routes);
    }
    world.insert_resource(staged.scoring);
    reroute_held(world);
}

/// Requests held in the infer queue for a fuller batch were assigned to a
/// scoring slot of the models just replaced: each is assigned again under
/// the routes now live (not counted again), and its fingerprint is keyed
/// by its new model, so that it is scored, cached and logged as that
/// model's.
fn reroute_held(world: &mut World) {
    world.resource_scope(|world, routes: Mut<ExperimentRoutes>| {
        world.resource_scope(|world, scoring: Mut<Scoring>| {
            let mut held =
                world.query::<(&Phase, &Request, &FeatureRow, &mut Arm, &mut Fingerprint)>();
            for (phase, request, row, mut arm, mut fingerprint) in held.iter_mut(world) {
                if *phase != Phase::Awaiting(Stage::Infer) {
                    continue;
                }
                *arm = match routes.is_empty() {
                    true => Arm::default(),
                    false => routes.assign(&request.ctx),
                };
                let (columns, values) = row.pairs();
                let model_key = scoring.slot(arm.slot).key();
                fingerprint.key = crate::logic::fingerprint(model_key, columns, values);
            }
        });
    });
}
