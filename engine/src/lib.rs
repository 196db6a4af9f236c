//! The embeddable engine (`Engine::builder()`, `submit`, `tick`, `poll`). It
//! arrives with the engine issue; today this crate re-exports the backend
//! layer so that the server depends on the engine only, as the graph
//! `components <- backends <- systems <- engine <- server` requires.

pub use cx_backends as backends;
pub use cx_components as components;

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The bundled default model's file bytes (`models/default.safetensors`):
/// trained by `cx train` on the synthetic generator's data, with the command
/// recorded in `models/README.md`. It is what `cx` uses when no model is named.
pub const DEFAULT_MODEL_BYTES: &[u8] = include_bytes!("../../models/default.safetensors");

/// What `cx` shows as the bundled default model's path.
pub const DEFAULT_MODEL_NAME: &str = "<bundled default model>";

/// The bundled default model, parsed and validated.
pub fn default_model() -> Result<components::SnnModel, components::Error> {
    components::SnnModel::from_bytes(DEFAULT_MODEL_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_model_loads_and_fits_this_builds_feature_schema() {
        let model = default_model().expect("the bundled model is valid");
        let schema = components::FeatureSchema::v1();
        assert_eq!(model.meta().feature_schema_id.as_deref(), Some(schema.id()));
        assert_eq!(model.inputs(), schema.width());
        assert_eq!(model.outputs(), 16);
        assert_eq!(model.meta().offer_ids.len(), 16);
        assert!(matches!(
            model.meta().calibration,
            components::Calibration::Platt { .. }
        ));
        let norm = model
            .meta()
            .extra
            .get("cx.feature_norm")
            .expect("normalisation recorded");
        components::FeatureNorm::from_json(norm).expect("normalisation parses");
        assert!(model.meta().extra.contains_key("cx.training"));
    }
}
