//! The engine's side of model monitoring (`docs/MONITORING.md`): the
//! [`Monitor`] resource built from the serving model's `cx.reference` and
//! the `[monitor]` config, fed by the pipeline's observe system (each
//! decided request) and by feedback (each impression and click joined to
//! its decision, in [`crate::feedback`]). A swap builds a fresh monitor for
//! the new model, served from the same tick as the model.
//!
//! A model without `cx.reference` gets a monitor that counts requests and
//! outcomes and reports `no reference`; one whose value does not parse or
//! does not fit the model's schema is refused, naming the key.

use crate::engine::Engine;
use crate::error::Result;
use cx_features::FeatureSchema;
use cx_model::ModelMeta;
use cx_systems::monitor::{Monitor, MonitorConfig, MonitorReport, Reference, REFERENCE_KEY};

/// The monitor for a model with `meta`, reading `schema`.
pub fn build(config: &MonitorConfig, meta: &ModelMeta, schema: &FeatureSchema) -> Result<Monitor> {
    let reference = match meta.extra.get(REFERENCE_KEY) {
        Some(text) => Some(Reference::from_json(text, schema)?),
        None => None,
    };
    Ok(Monitor::new(config.clone(), reference, schema.width()))
}

impl Engine {
    /// The model monitor.
    pub fn monitor(&self) -> &Monitor {
        self.world.resource::<Monitor>()
    }

    /// The model monitor, to take its alarm transitions
    /// ([`Monitor::take_transitions`]).
    pub fn monitor_mut(&mut self) -> bevy_ecs::prelude::Mut<'_, Monitor> {
        self.world.resource_mut::<Monitor>()
    }

    /// The monitor's state now (allocates; off the hot path).
    pub fn monitor_report(&self) -> MonitorReport {
        self.monitor().report()
    }

    /// Counts a feedback outcome of a decision that predicted `p_click`.
    pub(crate) fn monitor_outcome(&mut self, p_click: f32, impression: bool, click: bool) {
        if impression || click {
            if let Some(mut monitor) = self.world.get_resource_mut::<Monitor>() {
                monitor.observe_outcome(p_click, impression, click);
            }
        }
    }
}
