//! The pipeline's systems, in schedule order, one module each:
//! [`ingest()`], [`features()`], [`cache_lookup`], [`infer()`],
//! [`validate()`], [`decide()`], [`respond()`]. Each is a small function over
//! queries and resources that moves data to and from the pure functions in
//! [`crate::logic`].
//!
//! Every system works through its own stage's queue in
//! [`RequestQueues`](crate::resources::RequestQueues): it takes the queue,
//! reaches each request's components by entity, and pushes the request to
//! the queue of the stage it goes to next. It never sees another stage's
//! requests, so a request held back (waiting for an inference batch)
//! costs the other systems nothing. Each system runs in the [`Stage`] set
//! of the same name, and the sets are chained inside [`PipelineSet`], so a
//! host orders its own systems between any two stages.

mod decide;
mod features;
mod infer;
mod ingest;
mod params;
mod respond;
mod validate;

pub use decide::decide;
pub use features::{cache_lookup, features, read_user_chunk};
pub use infer::infer;
pub use ingest::ingest;
pub use params::{Clocks, DecidedRequests, Rules, Stores, ToHost};
pub use respond::respond;
pub use validate::validate;

use bevy_ecs::prelude::*;
use cx_domain::pipeline::Stage;

/// The whole pipeline, for hosts that order their own systems around it;
/// each [`Stage`] is a set inside it.
#[derive(SystemSet, Clone, Debug, PartialEq, Eq, Hash)]
pub struct PipelineSet;

/// Adds the pipeline's systems to `schedule`, each in its [`Stage`] set,
/// the stages chained in order inside [`PipelineSet`]. The installer
/// ([`crate::install`]) calls this; it inserts nothing.
pub fn add_systems(schedule: &mut Schedule) {
    schedule.configure_sets(
        (
            Stage::Ingest,
            Stage::Features,
            Stage::Cache,
            Stage::Infer,
            Stage::Validate,
            Stage::Decide,
            Stage::Respond,
        )
            .chain()
            .in_set(PipelineSet),
    );
    schedule.add_systems((
        ingest.in_set(Stage::Ingest),
        features.in_set(Stage::Features),
        cache_lookup.in_set(Stage::Cache),
        infer.in_set(Stage::Infer),
        validate.in_set(Stage::Validate),
        decide.in_set(Stage::Decide),
        respond.in_set(Stage::Respond),
    ));
}
