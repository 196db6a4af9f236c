//! The decision pipeline as bevy_ecs systems: each request is an entity,
//! and a chained schedule moves it through
//! `ingest -> features -> cache -> infer -> validate -> decide -> respond`.
//!
//! - [`config`]: the tunables (batch policy, blend weights and rules).
//! - [`logic`]: the pure domain logic behind each system, tested without a World.
//! - [`resources`]: the shared state: queues, clocks, scoring, counters, latencies.
//! - [`systems`]: the systems themselves and [`add_pipeline`].
//!
//! The engine crate builds the resources and owns a World and Schedule;
//! a host with its own World can insert the same resources and call
//! [`add_pipeline`] on its own schedule (`docs/ARCHITECTURE.md` shows how).

pub mod config;
pub mod error;
pub mod logic;
pub mod resources;
pub mod systems;

pub use config::{BatchPolicy, DecideConfig, ObjectiveWeights};
pub use error::{Error, Result};
pub use systems::{add_pipeline, PipelineSet, RequestBundle};

#[cfg(test)]
mod tests {
    #[test]
    fn a_schema_row_is_never_wider_than_a_model_can_take() {
        // cx-features does not depend on cx-model, so it states the limit
        // itself; this is where the two meet.
        assert_eq!(cx_features::limits::WIDTH_MAX, cx_model::limits::WIDTH_MAX);
    }
}
