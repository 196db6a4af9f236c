//! The decision pipeline as bevy_ecs systems: each request is an entity
//! from a fixed pool, and a chained schedule moves it through
//! `ingest -> features -> cache -> infer -> validate -> decide -> respond`,
//! one [`Stage`](cx_domain::pipeline::Stage) set per system.
//!
//! - [`install()`]: the one installer. It builds and inserts every resource,
//!   spawns the request pool and adds the systems, into any World and
//!   Schedule; [`stage_model`] (or [`stage_bundle`], with a catalog) and
//!   [`apply_model`] swap models atomically.
//! - [`config`]: the tunables (batch policy, blend weights and rules).
//! - [`logic`]: the pure domain logic behind each system, tested without a World.
//! - [`resources`]: the shared state: queues, clocks, scoring, counters, latencies.
//! - [`systems`]: the systems themselves, their `SystemParam` groups, and
//!   [`systems::DecidedRequests`] for host systems between decide and respond.
//! - [`monitor`]: model monitoring: the training reference (`cx.reference`),
//!   rolling serving windows, PSI, calibration and CTR alarms.
//! - [`user_store`]: the online feature store as a resource, and each
//!   request's user features (read once per request by the features system).

pub mod config;
pub mod error;
pub mod install;
pub mod logic;
pub mod monitor;
pub mod resources;
pub mod systems;
pub mod user_store;

pub use config::{BatchPolicy, DecideConfig, Exploration, ObjectiveWeights};
pub use error::{Error, Result};
pub use install::{
    apply_model, install, stage_bundle, stage_model, BundleParts, DecisionLogSource,
    ExperimentParts, PipelineHandles, PipelineParts, RequestBundle, StagedModel,
};
pub use systems::PipelineSet;

#[cfg(test)]
mod tests {
    #[test]
    fn a_schema_row_is_never_wider_than_a_model_can_take() {
        // cx-features does not depend on cx-model, so it states the limit
        // itself; this is where the two meet.
        assert_eq!(cx_features::limits::WIDTH_MAX, cx_model::limits::WIDTH_MAX);
    }
}
