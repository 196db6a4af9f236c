//! The data of one request on its way through the engine's schedule: the
//! ECS components each request entity carries, and the slot-indexed
//! structure-of-arrays resources that hold its bulky rows.
//!
//! Data layout: an entity carries only small, fixed-size components
//! ([`Ticket`], [`Request`], [`Slot`], [`Phase`], [`Fingerprint`],
//! [`StageTimes`], [`Decision`]), all inserted when it is spawned, so it never
//! changes archetype and the table never moves it. The bulky per-request
//! data lives outside the entity, in rows indexed by its [`Slot`]:
//! [`FeatureRows`] (the sparse feature row, a few hundred bytes instead of a
//! 12 KiB dense one) and [`ScoreRows`] (one probability per model column).
//! The inference system gathers the rows of one batch into a contiguous
//! dense `[batch][inputs]` block for the kernels; every other system scans
//! slot rows in place. Slots come from a [`SlotPool`] sized at start, so no
//! row is ever allocated per request.
//!
//! Stage order and who writes what: `docs/ARCHITECTURE.md`.

mod rows;

pub use cx_decision::Ticket;
pub use cx_decision::{
    ChosenOffer, Decision, Factor, FactorKind, NoBidCause, Objective, ScoreSource, FACTOR_KINDS,
    OBJECTIVES, TOP_K_MAX,
};
pub use rows::{FeatureRows, ScoreRows, SlotPool};

use bevy_ecs::prelude::Component;
use cx_features::RequestContext;

/// What a host submits: one request context, and whether to decide in
/// simulation mode (the same decision, but no caps or budgets spent and no
/// cache entry written).
#[derive(Component, Clone, Debug, Default, PartialEq)]
pub struct Request {
    /// The request as the feature schema reads it. A `timestamp` of 0 is
    /// replaced by the tick's time when the request is ingested.
    pub ctx: RequestContext,
    /// Decide without changing any state.
    pub simulate: bool,
}

impl From<RequestContext> for Request {
    /// A request to decide for real (not simulated).
    fn from(ctx: RequestContext) -> Self {
        Self {
            ctx,
            simulate: false,
        }
    }
}

/// The request's row index in the slot-indexed resources ([`FeatureRows`],
/// [`ScoreRows`]); owned by the entity from ingest until it is despawned.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot(pub u32);

/// Where a request entity is in the schedule. One enum instead of marker
/// components, so moving a request forward never changes its archetype.
#[derive(Component, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Phase {
    /// Spawned; no features yet.
    #[default]
    Ingested,
    /// Feature row and fingerprint written.
    Featured,
    /// Missed the cache; waiting for an inference batch.
    Pending,
    /// Probabilities in its [`ScoreRows`] row, not yet validated.
    Scored,
    /// Probabilities validated (or replaced by the fallback scorer).
    Validated,
    /// [`Decision`] written; ready to respond.
    Decided,
}

/// What the cache and the decide stage need to know about a request's
/// features, computed once by the features system.
#[derive(Component, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fingerprint {
    /// Hash of the model id and the sparse feature row: the cache key.
    pub key: u64,
    /// The feature row is valid until this time (unix ns): the end of the
    /// hour its time features were computed for.
    pub valid_until_ns: u64,
    /// Hash of the user id, for frequency caps; 0 when the user is unknown.
    pub user_hash: u64,
}

/// Host-clock and wall-clock stamps of one request.
///
/// `*_ns` fields are on the host's clock (what `tick(now)` passes), which the
/// engine's decisions depend on. `*_raw` fields are raw `quanta` counter
/// readings, used only for the latency statistics; they never influence a
/// decision.
#[derive(Component, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StageTimes {
    /// Host time of the tick that ingested the request.
    pub ingested_ns: u64,
    /// When `submit` accepted it.
    pub submitted_raw: u64,
    /// When each stage finished with it: ingest, features, cache, infer,
    /// validate, decide (indices of [`StageTimes::STAGES`]).
    pub stage_raw: [u64; 6],
}

impl StageTimes {
    /// Names of the stages in [`StageTimes::stage_raw`], in schedule order.
    pub const STAGES: [&'static str; 6] =
        ["ingest", "features", "cache", "infer", "validate", "decide"];
}
