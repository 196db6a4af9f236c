//! The embeddable CampaignExpress engine: requests in, decisions out, on
//! the host's clock.
//!
//! ```
//! use cx_engine::{Engine, features::{DeviceType, RequestContext}};
//!
//! let mut engine = Engine::builder().seed(7).build()?; // bundled model, catalog, config
//! let ticket = engine.submit(RequestContext {
//!     device_type: DeviceType::from_openrtb(4),
//!     country: "USA".into(),
//!     placement_width: 300,
//!     placement_height: 250,
//!     ..RequestContext::default()
//! })?;
//! engine.tick(1_767_225_600_000_000_000); // host time, unix ns
//! let decision = engine.poll().expect("decided in one tick");
//! assert_eq!(decision.ticket, ticket);
//! for offer in decision.offers() {
//!     let explained: f32 = offer.explanation().map(|f| f.contribution).sum();
//!     assert!((explained - offer.score).abs() < 1e-6);
//! }
//! # Ok::<(), cx_engine::Error>(())
//! ```
//!
//! - [`Engine`] / [`EngineBuilder`]: the game-loop API (`submit`, `tick`,
//!   `poll`, `drain`, `stats`, `swap_model`), and [`EngineBuilder::install`]
//!   for hosts with their own bevy_ecs World.
//! - [`EngineConfig`]: TOML, `CX_ENGINE_*` environment overrides, or code.
//! - [`openrtb`]: OpenRTB 2.5/2.6 bid requests in, bid responses out.
//! - [`EngineStats`]: counters and per-stage latency percentiles.
//! - [`feedback`]: bids recorded in a ledger, and the exchanges' notices
//!   matched against it ([`Engine::on_notice`]).
//! - [`posteriors`]: what the engine learns of each offer's click rate
//!   for Thompson sampling ([`Engine::observe_impression`],
//!   [`Engine::observe_click`]).
//! - [`skew`]: train/serve skew, a model trained on context fields a
//!   serving path never fills ([`Engine::train_serve_skew`], the
//!   `train_serve_skew` key).
//! - [`monitor`]: model monitoring, the serving distributions against the
//!   model's training reference ([`Engine::monitor_report`]).
//! - [`experiments`]: several models served at once, one per experiment
//!   arm ([`Engine::set_experiments`], [`Engine::experiment_report`]).
//! - [`feature_store`]: the optional online feature store's hooks
//!   ([`Engine::put_features`], [`Engine::features_for`]); they change no
//!   decision yet.

pub mod builder;
pub mod config;
pub mod config_feedback;
mod decision_ids;
pub mod engine;
pub mod error;
pub mod experiments;
pub mod feature_store;
pub mod feedback;
pub mod fit;
pub mod journal;
pub mod json;
pub mod model_schema;
pub mod monitor;
pub mod openrtb;
pub mod port;
pub mod posteriors;
pub mod skew;
pub mod state;
pub mod stats;

pub use builder::{
    load_catalog, load_serving, Bundle, EngineBuilder, FallbackSource, ModelSource,
    DEFAULT_BASELINE_BYTES, DEFAULT_CATALOG_TOML, DEFAULT_MODEL_BYTES, DEFAULT_MODEL_NAME,
};
pub use config::EngineConfig;
pub use cx_backends as backends;
pub use cx_datasets as datasets;
pub use cx_decision as decision;
pub use cx_domain as domain;
pub use cx_features as features;
pub use cx_featurestore as featurestore;
pub use cx_model as model;
pub use cx_systems as systems;
pub use cx_wire as wire;
pub use engine::{Engine, EngineCounts};
pub use error::{Error, Result};
pub use experiments::{ArmDef, ArmReport, ArmSource, ExperimentDef, ExperimentReport};
pub use fit::{CatalogFit, CatalogOverlap};
pub use port::Port;
pub use skew::{SkewPolicy, SkewRefusal, TrainServeSkew};
pub use stats::{EngineStats, ModelInfo, StageLatency};

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The examples in `docs/ARCHITECTURE.md`, compiled and run as doctests.
#[doc = include_str!("../../docs/ARCHITECTURE.md")]
#[cfg(doctest)]
pub struct ArchitectureDoctests;

/// The bundled default model, parsed and validated.
pub fn default_model() -> Result<model::SnnModel, model::Error> {
    model::SnnModel::from_bytes(DEFAULT_MODEL_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_model_loads_and_fits_this_builds_feature_schema() {
        let model = default_model().expect("the bundled model is valid");
        // Schema v2: v1 and the store section of the definitions the model carries.
        let schema = model_schema::schema_of(model.meta()).expect("its schema");
        assert!(schema.store_section().is_some());
        assert_eq!(model.meta().feature_schema_id.as_deref(), Some(schema.id()));
        assert_eq!(model.inputs(), schema.width());
        assert_eq!(model.outputs(), 16);
        assert_eq!(model.meta().offer_ids.len(), 16);
        assert!(matches!(
            model.meta().calibration,
            model::Calibration::Platt { .. }
        ));
        let norm = model
            .meta()
            .extra
            .get("cx.feature_norm")
            .expect("normalisation recorded");
        features::FeatureNorm::from_json(norm).expect("normalisation parses");
        assert!(model.meta().extra.contains_key("cx.training"));
    }
}
