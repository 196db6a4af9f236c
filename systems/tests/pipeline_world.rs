//! The pipeline's systems in a bare bevy_ecs World, set up the way a host
//! with its own World does: [`install`] into a plain World and Schedule,
//! submissions pushed into the ingress and decisions popped from the
//! egress.

use bevy_ecs::prelude::*;
use cx_backends::BackendKind;
use cx_domain::catalog::Catalog;
use cx_domain::pipeline::{Decision, Phase, Request, ScoreSource, Stage, Ticket};
use cx_domain::store::{
    BudgetBackend, CacheBackend, CacheConfig, FrequencyBackend, FrequencyCaps, FrequencyConfig,
    ScoreCache,
};
use cx_features::{DeviceType, FeatureSchema, RequestContext};
use cx_model::{ModelId, SnnModel};
use cx_systems::resources::{
    Counters, FallbackScorer, Latencies, RequestQueues, ServingModel, Submission, TickClock,
};
use cx_systems::systems::DecidedRequests;
use cx_systems::{install, BatchPolicy, DecideConfig, PipelineHandles, PipelineParts, PipelineSet};
use std::path::PathBuf;

/// 2023-11-14T22:13:20Z, unix seconds.
const T0_S: i64 = 1_700_000_000;
const T0_NS: u64 = T0_S as u64 * 1_000_000_000;

fn models_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models")
}

fn read_model_file(name: &str) -> Vec<u8> {
    let path = models_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The schema the bundled model reads: v1 and the store section of the
/// feature definitions it records (`cx.feature_definitions`; the engine
/// builds it the same way, `cx_engine::model_schema`).
fn bundled_schema() -> FeatureSchema {
    let model = SnnModel::from_bytes(&read_model_file("default.safetensors")).expect("loads");
    let text = &model.meta().extra["cx.feature_definitions"];
    let defs = cx_featurestore::Definitions::from_toml_str(text).expect("its definitions");
    FeatureSchema::v1()
        .with_store(std::sync::Arc::new(defs))
        .expect("schema v2")
}

/// The bundled model with its fallback, checked against the schema.
fn bundled_serving(schema: &FeatureSchema) -> ServingModel {
    let model_bytes = read_model_file("default.safetensors");
    let model = SnnModel::from_bytes(&model_bytes).expect("the bundled model loads");
    let id = ModelId::of_bytes(&model_bytes);
    let fallback = FallbackScorer::from_bytes(&read_model_file("baseline.safetensors"))
        .expect("the bundled baseline loads");
    ServingModel::new(model, id, Some(fallback), schema).expect("model fits schema")
}

/// The parts of a pipeline on the bundled model, fallback and catalog.
fn parts(policy: BatchPolicy, slots: usize, cache_capacity: usize) -> PipelineParts {
    let schema = bundled_schema();
    PipelineParts {
        serving: bundled_serving(&schema),
        backend: BackendKind::Scalar,
        catalog: Catalog::from_path(&models_dir().join("catalog.toml"))
            .expect("the bundled catalog loads"),
        schema,
        batch: policy,
        decide: DecideConfig::default(),
        cache: CacheConfig {
            capacity: cache_capacity,
            ttl_ns: 60_000_000_000,
        },
        frequency: FrequencyConfig { capacity: 1024 },
        in_flight_max: slots,
        seed: 7,
        shared: None,
        decision_log: cx_domain::store::LogConfig::default().into(),
        posteriors: None,
        features: None,
    }
}

/// A host's World, schedule and queues.
struct Host {
    world: World,
    schedule: Schedule,
    handles: PipelineHandles,
    slots: usize,
    /// Entities in the World right after install (the pool, and whatever
    /// else the World keeps as entities).
    entities: u32,
    next_ticket: u64,
}

impl Host {
    /// The bundled model, fallback and catalog, the given batch policy,
    /// `slots` requests in flight and a decision cache of
    /// `cache_capacity` entries (0: off).
    fn new(policy: BatchPolicy, slots: usize, cache_capacity: usize) -> Self {
        let mut world = World::new();
        let mut schedule = Schedule::default();
        let handles = install(
            &mut world,
            &mut schedule,
            parts(policy, slots, cache_capacity),
        )
        .expect("the pipeline installs");
        let entities = world.entities().len();
        Self {
            world,
            schedule,
            handles,
            slots,
            entities,
            next_ticket: 1,
        }
    }

    /// Queues `request`, returning its ticket.
    fn submit(&mut self, request: Request) -> Ticket {
        let ticket = Ticket(self.next_ticket);
        self.next_ticket += 1;
        let submission = Submission {
            ticket,
            request,
            submitted_raw: self.handles.clock.raw(),
        };
        assert!(
            self.handles.ingress.push(submission).is_ok(),
            "ingress full"
        );
        ticket
    }

    /// Runs one tick at `now_ns`. No `clear_trackers`: the pipeline never
    /// despawns, so a World that skips it does not grow.
    fn tick(&mut self, now_ns: u64) {
        self.world.resource_mut::<TickClock>().now_ns = now_ns;
        self.schedule.run(&mut self.world);
    }

    fn poll(&mut self) -> Vec<Decision> {
        std::iter::from_fn(|| self.handles.egress.pop()).collect()
    }

    fn counters(&self) -> Counters {
        self.world.resource::<Counters>().clone()
    }

    /// Request entities holding a request (not free in the pool).
    fn busy_entities(&mut self) -> usize {
        self.world
            .query::<&Phase>()
            .iter(&self.world)
            .filter(|p| **p != Phase::Free)
            .count()
    }

    /// Request entities in `phase`.
    fn in_phase(&mut self, phase: Phase) -> usize {
        self.world
            .query::<&Phase>()
            .iter(&self.world)
            .filter(|p| **p == phase)
            .count()
    }

    fn in_flight(&self) -> usize {
        self.world.resource::<RequestQueues>().in_flight()
    }

    /// Nothing left in flight: every pooled entity free, both queues empty,
    /// and the pool as big as it started (nothing spawned or despawned).
    fn assert_idle(&mut self) {
        assert_eq!(self.busy_entities(), 0, "request entities still busy");
        assert_eq!(self.in_flight(), 0, "entities not returned to the pool");
        assert_eq!(
            self.world.entities().len(),
            self.entities,
            "nothing spawned or despawned"
        );
        assert_eq!(self.in_phase(Phase::Free), self.slots);
        assert!(self.handles.ingress.is_empty());
        assert!(self.handles.egress.is_empty());
    }
}

/// A distinct request for user `k` (distinct features, so no two share a
/// cache entry unless `k` repeats).
fn request(k: u64) -> Request {
    Request {
        ctx: RequestContext {
            user_id: format!("user-{k}"),
            user_segments: vec![(k % 64).to_string()],
            device_type: if k.is_multiple_of(2) {
                DeviceType::Phone
            } else {
                DeviceType::PersonalComputer
            },
            country: "USA".into(),
            site_id: format!("site-{}", k % 7),
            domain: format!("news{k}.example"),
            categories: vec!["IAB19".into()],
            placement_width: 300,
            placement_height: 250,
            timestamp: T0_S,
            ..RequestContext::default()
        },
        simulate: false,
        ..Request::default()
    }
}

#[test]
fn every_submission_is_decided_once_and_released() {
    let policy = BatchPolicy {
        batch_max: 16,
        ..BatchPolicy::default()
    };
    let mut host = Host::new(policy, 64, 1024);
    let mut tickets: Vec<Ticket> = (0..40).map(|k| host.submit(request(k))).collect();
    host.tick(T0_NS);
    let decisions = host.poll();
    let mut decided: Vec<Ticket> = decisions.iter().map(|d| d.ticket).collect();
    decided.sort();
    tickets.sort();
    assert_eq!(decided, tickets, "each ticket decided exactly once");
    for d in &decisions {
        assert_ne!(
            d.source,
            ScoreSource::None,
            "ticket {:?} was scored",
            d.ticket
        );
        assert_eq!(d.offers().is_empty(), d.no_bid.is_some());
        assert!(!d.simulated);
    }
    let c = host.counters();
    assert_eq!(c.ingested, 40);
    assert_eq!(c.decided, 40);
    assert_eq!(c.inferred_rows, 40, "every row went through the model");
    assert_eq!(c.failed_batches, 0);
    assert_eq!(c.batches, 3, "40 rows in batches of 16: 16 + 16 + 8");
    assert_eq!(
        c.no_offer,
        decisions.iter().filter(|d| d.no_bid.is_some()).count() as u64
    );
    assert!(
        decisions.iter().any(|d| !d.offers().is_empty()),
        "the bundled catalog serves some of these requests"
    );
    host.assert_idle();
    // Latencies were recorded for every request, at every stage it passed.
    let latencies = host.world.resource::<Latencies>();
    assert_eq!(latencies.total.len(), 40);
    assert_eq!(latencies.stages[Stage::Infer.index()].len(), 40);
    assert_eq!(latencies.stages[Stage::Respond.index()].len(), 40);

    // The same requests again, later in the same hour: served from the cache.
    let again: Vec<Ticket> = (0..40).map(|k| host.submit(request(k))).collect();
    host.tick(T0_NS + 1_000_000);
    let decisions = host.poll();
    assert_eq!(decisions.len(), 40);
    for d in &decisions {
        assert!(again.contains(&d.ticket));
        assert_eq!(d.source, ScoreSource::Cache, "ticket {:?}", d.ticket);
    }
    assert_eq!(host.counters().batches, 3, "no new inference batch");
    host.assert_idle();
}

#[test]
fn nagle_holds_a_partial_batch_while_work_is_queued() {
    let policy = BatchPolicy {
        batch_max: 4,
        wait_us_max: 500,
        ingest_max: 3,
    };
    let mut host = Host::new(policy, 16, 0);
    for k in 0..5 {
        host.submit(request(k));
    }
    // Tick 1 takes 3 of the 5: a partial batch with 2 still queued, no wait yet.
    host.tick(T0_NS);
    let c = host.counters();
    assert_eq!(c.ingested, 3);
    assert_eq!(c.batches, 0, "the partial batch is held");
    assert_eq!(c.decided, 0);
    assert_eq!(host.in_phase(Phase::Awaiting(Stage::Infer)), 3);
    assert_eq!(host.in_flight(), 3);
    assert_eq!(host.handles.ingress.len(), 2);
    assert!(host.poll().is_empty());

    // Tick 2 drains the ingress: 5 pending run at once, as 4 + 1.
    host.tick(T0_NS);
    let c = host.counters();
    assert_eq!(c.ingested, 5);
    assert_eq!(c.batches, 2);
    assert_eq!(c.inferred_rows, 5);
    assert_eq!(c.decided, 5);
    let mut tickets: Vec<u64> = host.poll().iter().map(|d| d.ticket.0).collect();
    tickets.sort_unstable();
    assert_eq!(tickets, [1, 2, 3, 4, 5]);
    host.assert_idle();
}

/// Submits 8 with `ingest_max` 3 and `batch_max` 4; tick 1 at T0 holds 3
/// rows; tick 2 at `T0 + wait` ingests 3 more with 2 still queued. Returns
/// the counters after tick 2.
fn second_tick_after(wait_ns: u64) -> (Counters, Host) {
    let policy = BatchPolicy {
        batch_max: 4,
        wait_us_max: 500,
        ingest_max: 3,
    };
    let mut host = Host::new(policy, 16, 0);
    for k in 0..8 {
        host.submit(request(k));
    }
    host.tick(T0_NS);
    assert_eq!(host.counters().batches, 0);
    host.tick(T0_NS + wait_ns);
    assert_eq!(host.handles.ingress.len(), 2, "work still queued");
    (host.counters(), host)
}

#[test]
fn nagle_flushes_the_partial_batch_once_the_wait_has_passed() {
    // Not yet: 6 pending, only the full batch of 4 runs.
    let (c, mut early) = second_tick_after(499_000);
    assert_eq!(c.batches, 1);
    assert_eq!(c.decided, 4);
    assert_eq!(early.in_phase(Phase::Awaiting(Stage::Infer)), 2);
    // The oldest row has waited wait_us_max: the partial batch runs too.
    let (c, mut host) = second_tick_after(500_000);
    assert_eq!(c.batches, 2, "4 + 2");
    assert_eq!(c.inferred_rows, 6);
    assert_eq!(c.decided, 6);
    assert_eq!(host.in_phase(Phase::Awaiting(Stage::Infer)), 0);
    assert_eq!(host.poll().len(), 6);
    // The last 2 drain the ingress and run at once.
    host.tick(T0_NS + 500_000);
    assert_eq!(host.counters().decided, 8);
    assert_eq!(host.poll().len(), 2);
    host.assert_idle();
    early.tick(T0_NS + 499_000);
    assert_eq!(early.counters().decided, 8);
}

#[test]
fn simulated_requests_change_no_state() {
    let mut host = Host::new(BatchPolicy::default(), 32, 1024);
    let frequency = host.world.resource::<FrequencyBackend>().clone();
    let budget = host.world.resource::<BudgetBackend>().clone();
    for k in 0..20 {
        let mut r = request(k);
        r.simulate = true;
        host.submit(r);
    }
    host.tick(T0_NS);
    let decisions = host.poll();
    assert_eq!(decisions.len(), 20);
    assert!(decisions.iter().all(|d| d.simulated));
    assert!(decisions.iter().any(|d| !d.offers().is_empty()));
    assert_eq!(host.counters().simulated, 20);
    assert_eq!(*host.world.resource::<FrequencyBackend>(), frequency);
    assert_eq!(*host.world.resource::<BudgetBackend>(), budget);
    assert_eq!(host.world.resource::<CacheBackend>().stats().len, 0);
    host.assert_idle();

    // The same requests for real spend the winners' caps and budgets.
    for k in 0..20 {
        host.submit(request(k));
    }
    host.tick(T0_NS);
    let real = host.poll();
    let winners = real.iter().filter(|d| !d.offers().is_empty()).count() as u64;
    assert!(winners > 0);
    assert_eq!(
        host.world.resource::<FrequencyBackend>().stats().records,
        winners,
        "one impression per winning (known) user"
    );
}

/// What host systems ordered around the pipeline saw.
#[derive(Resource, Default)]
struct Seen {
    before: Vec<u64>,
    after: Vec<u64>,
}

fn observe_before(counters: Res<Counters>, mut seen: ResMut<Seen>) {
    seen.before.push(counters.decided);
}

fn observe_after(counters: Res<Counters>, mut seen: ResMut<Seen>) {
    seen.after.push(counters.decided);
}

#[test]
fn host_systems_order_around_the_pipeline_set() {
    let mut host = Host::new(BatchPolicy::default(), 32, 1024);
    // Added after the pipeline was installed; only the set ordering puts
    // them on either side of it.
    host.schedule
        .add_systems(observe_before.before(PipelineSet));
    host.schedule.add_systems(observe_after.after(PipelineSet));
    host.world.init_resource::<Seen>();
    for k in 0..10 {
        host.submit(request(k));
    }
    host.tick(T0_NS);
    for k in 10..13 {
        host.submit(request(k));
    }
    host.tick(T0_NS + 1_000);
    host.tick(T0_NS + 2_000);
    let seen = host.world.resource::<Seen>();
    assert_eq!(seen.after, [10, 13, 13], "after: this tick's counters");
    assert_eq!(seen.before, [0, 10, 13], "before: the previous tick's");
    assert_eq!(host.poll().len(), 13);
    host.assert_idle();
}

/// What the host system between decide and respond saw, per tick: the
/// decisions' tickets, and how many had an offer.
#[derive(Resource, Default)]
struct Between {
    tickets: Vec<Vec<u64>>,
    with_offer: usize,
    egress_len: Vec<usize>,
}

fn read_decisions(
    decided: DecidedRequests,
    ingress: Res<cx_systems::resources::Egress>,
    mut seen: ResMut<Between>,
) {
    seen.tickets
        .push(decided.iter().map(|(_, d)| d.ticket.0).collect());
    seen.with_offer += decided
        .iter()
        .filter(|(_, d)| !d.offers().is_empty())
        .count();
    seen.egress_len.push(ingress.0.len());
}

#[test]
fn a_host_system_between_decide_and_respond_reads_this_ticks_decisions() {
    let mut host = Host::new(BatchPolicy::default(), 32, 1024);
    host.schedule
        .add_systems(read_decisions.after(Stage::Decide).before(Stage::Respond));
    host.world.init_resource::<Between>();
    for k in 0..5 {
        host.submit(request(k));
    }
    host.tick(T0_NS);
    host.tick(T0_NS + 1_000);
    let polled = host.poll();
    let seen = host.world.resource::<Between>();
    assert_eq!(seen.tickets, [vec![1, 2, 3, 4, 5], vec![]]);
    assert_eq!(
        seen.egress_len,
        [0, 5],
        "it ran before respond emitted them"
    );
    let offers = polled.iter().filter(|d| !d.offers().is_empty()).count();
    assert_eq!(seen.with_offer, offers, "it saw the decisions polled later");
    host.assert_idle();
}

#[test]
fn decisions_follow_submission_order_when_cache_hits_and_misses_interleave() {
    let mut host = Host::new(BatchPolicy::default(), 32, 1024);
    for k in 0..2 {
        host.submit(request(k));
    }
    host.tick(T0_NS);
    assert_eq!(host.poll().len(), 2);
    // A miss, a hit, a miss, a hit: hits reach decide a stage earlier.
    let tickets: Vec<u64> = [10, 0, 11, 1]
        .into_iter()
        .map(|k| host.submit(request(k)).0)
        .collect();
    host.tick(T0_NS + 1_000);
    let decisions = host.poll();
    let sources: Vec<ScoreSource> = decisions.iter().map(|d| d.source).collect();
    let order: Vec<u64> = decisions.iter().map(|d| d.ticket.0).collect();
    assert_eq!(order, tickets, "decided and emitted in submission order");
    assert_eq!(
        sources,
        [
            ScoreSource::Model,
            ScoreSource::Cache,
            ScoreSource::Model,
            ScoreSource::Cache
        ]
    );
}

#[test]
fn the_pool_neither_spawns_nor_despawns_so_a_world_needs_no_clear_trackers() {
    let mut host = Host::new(BatchPolicy::default(), 16, 64);
    for round in 0..500u64 {
        for k in 0..12 {
            host.submit(request(round * 12 + k));
        }
        host.tick(T0_NS + round * 1_000_000);
        assert_eq!(host.poll().len(), 12);
    }
    assert_eq!(host.counters().decided, 6000);
    assert_eq!(
        host.world.removed::<Ticket>().count(),
        0,
        "no removal was recorded for trackers to clear"
    );
    host.assert_idle();
}

#[test]
fn an_install_that_fails_leaves_the_world_and_schedule_untouched() {
    let mut world = World::new();
    let mut schedule = Schedule::default();
    let mut bad = parts(BatchPolicy::default(), 16, 64);
    bad.in_flight_max = 0;
    let entities = world.entities().len();
    let err = install(&mut world, &mut schedule, bad)
        .err()
        .expect("refused");
    assert!(err.to_string().contains("in_flight_max"), "{err}");
    let mut bad = parts(BatchPolicy::default(), 16, 64);
    bad.frequency.capacity = 0;
    assert!(install(&mut world, &mut schedule, bad).is_err());
    assert_eq!(world.entities().len(), entities, "no entity spawned");
    assert!(
        world.get_resource::<Counters>().is_none(),
        "no resource inserted"
    );
    assert_eq!(schedule.systems_len(), 0, "no system added");
}
