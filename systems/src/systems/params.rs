//! The `SystemParam` groups the systems share, and the one hosts use to
//! read this tick's decisions.

use crate::config::DecideConfig;
use crate::resources::{
    DecisionLogging, Egress, RequestQueues, Seed, SpareContexts, TickClock, WallClock,
};
use bevy_ecs::prelude::*;
use bevy_ecs::system::SystemParam;
use cx_domain::catalog::Catalog;
use cx_domain::pipeline::{Decision, Phase, Request, Stage};
use cx_domain::store::{
    BudgetBackend, FrequencyBackend, PosteriorBackend, VariantBackend, WinRateBackend,
};

/// Panic message for a pooled entity that lacks a pipeline component:
/// every request entity is spawned with all of them and never loses one.
pub(crate) const POOLED: &str = "every pooled request entity has every pipeline component";

/// Asserts that a request taken from `stage`'s queue is in the phase that
/// queue stands for.
#[track_caller]
pub(crate) fn assert_awaiting(phase: Phase, stage: Stage) {
    assert_eq!(
        phase,
        Phase::Awaiting(stage),
        "a request in the {stage} queue must await {stage}"
    );
}

/// The two clocks: the host's (decisions depend on it) and the wall clock
/// (latency statistics only).
#[derive(SystemParam)]
pub struct Clocks<'w> {
    tick: Res<'w, TickClock>,
    wall: Res<'w, WallClock>,
}

impl Clocks<'_> {
    /// The host's time for this tick, unix ns.
    pub fn now_ns(&self) -> u64 {
        self.tick.now_ns
    }

    /// A raw wall-clock reading, for latency stamps.
    pub fn raw(&self) -> u64 {
        self.wall.0.raw()
    }

    /// The wall clock itself, to turn raw readings into nanoseconds.
    pub fn wall(&self) -> &quanta::Clock {
        &self.wall.0
    }
}

/// What the rules read: the config, the catalog and the seed.
#[derive(SystemParam)]
pub struct Rules<'w> {
    /// Weights and rules.
    pub config: Res<'w, DecideConfig>,
    /// The offers.
    pub catalog: Res<'w, Catalog>,
    /// The exploration seed.
    pub seed: Res<'w, Seed>,
}

/// The state decisions spend: frequency caps and budgets.
#[derive(SystemParam)]
pub struct Stores<'w> {
    /// Impressions per (user, offer).
    pub frequency: ResMut<'w, FrequencyBackend>,
    /// Spend per offer.
    pub budget: ResMut<'w, BudgetBackend>,
    /// What has been learned of each offer's click rate.
    pub posteriors: ResMut<'w, PosteriorBackend>,
    /// The decision log (feedback events join on it).
    pub log: Res<'w, DecisionLogging>,
    /// Click counts per creative variant (which variant to show).
    pub variants: ResMut<'w, VariantBackend>,
    /// Win rates against price per placement (learned bid shading).
    pub win_rates: Res<'w, WinRateBackend>,
}

/// What goes back to the host: decisions, and contexts to reuse.
#[derive(SystemParam)]
pub struct ToHost<'w> {
    /// Decisions for `poll`.
    pub egress: Res<'w, Egress>,
    /// Contexts of decided requests, for the host to refill.
    pub spares: Res<'w, SpareContexts>,
}

/// The requests decided this tick and not yet handed to the egress, for a
/// host system ordered between [`Stage::Decide`] and [`Stage::Respond`]:
///
/// ```
/// # use bevy_ecs::prelude::*;
/// use cx_systems::systems::DecidedRequests;
/// use cx_domain::pipeline::Stage;
///
/// fn count_offers(decided: DecidedRequests) {
///     for (request, decision) in decided.iter() {
///         let _ = (request.simulate, decision.offers().len());
///     }
/// }
/// let mut schedule = Schedule::default();
/// schedule.add_systems(count_offers.after(Stage::Decide).before(Stage::Respond));
/// ```
#[derive(SystemParam)]
pub struct DecidedRequests<'w, 's> {
    queues: Res<'w, RequestQueues>,
    requests: Query<'w, 's, (&'static Request, &'static Decision)>,
}

impl DecidedRequests<'_, '_> {
    /// Each decided request with its decision, in decision order.
    pub fn iter(&self) -> impl Iterator<Item = (&Request, &Decision)> + '_ {
        self.queues
            .awaiting(Stage::Respond)
            .iter()
            .map(|q| self.requests.get(q.entity).expect(POOLED))
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.queues.awaiting(Stage::Respond).len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
