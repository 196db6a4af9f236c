//! The ECS resources the pipeline's systems share.
//!
//! - [`queues`]: the bounded ingress and egress, the spare contexts handed
//!   back to the host, and the per-stage queues of request entities.
//! - [`scoring`]: the serving model, its backend chain and batch buffers,
//!   and the fallback scorer.
//! - [`counters`]: what the pipeline counted, and its latency histograms.
//! - [`feedback`]: the decision log and decision ids.
//! - [`experiments`]: the live experiments' routes to models, and their
//!   counts per arm.
//! - here: the clocks, the seed and the feature schema.
//!
//! Every buffer is sized when the resource is built; the systems only index
//! into them. The cross-thread queues are `crossbeam` array queues: fixed
//! capacity, and safe to push from another thread, so a network front end
//! can feed an engine that a game loop ticks.

pub mod counters;
pub mod experiments;
pub mod feedback;
pub mod queues;
pub mod scoring;

pub use counters::{
    new_histogram, BatchTimes, Counters, Latencies, BATCH_TIMES_MAX, LATENCY_NS_MAX,
};
pub use experiments::{
    Arm, ArmCounts, ArmInfo, ArmRegistry, ArmRoute, ExperimentCounts, ExperimentRoutes,
    LiveExperiment,
};
pub use feedback::DecisionLogging;
pub use queues::{Egress, Ingress, QueuedRequest, RequestQueues, SpareContexts, Submission};
pub use scoring::{
    offer_columns, ArmModel, FallbackScorer, Scoring, ServingModel, FEATURE_NORM_KEY,
};

use bevy_ecs::prelude::Resource;
use cx_features::FeatureSchema;

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
