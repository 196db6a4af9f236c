//! The feature schema a model reads, from its own metadata.
//!
//! A model trained with store features (`cx train --store-features FILE`)
//! carries its feature definitions, verbatim, in the metadata key
//! [`FEATURE_DEFINITIONS_KEY`]; its schema is v1 with a store section of
//! those definitions ([`FeatureSchema::with_store`], schema version 2). A
//! model without the key reads schema v1, as every model did before. The
//! schema's id must then equal the model's `cx.feature_schema_id`, which
//! [`cx_systems::resources::ServingModel::new`] checks.
//!
//! So a model brings its own store section, and an engine without a store
//! (or a user the store does not hold) serves it the defaults, the values
//! a user's first row had in training.

use crate::error::{Error, Result};
use cx_features::FeatureSchema;
use cx_featurestore::{Definitions, OnlineFeatures};
use cx_model::ModelMeta;
use std::sync::Arc;

/// Metadata key holding a model's store feature definitions (TOML text).
pub const FEATURE_DEFINITIONS_KEY: &str = "cx.feature_definitions";

/// The schema `meta`'s model reads: v1, with a store section when the
/// model records feature definitions. Definitions that do not parse are
/// refused, naming the key.
pub fn schema_of(meta: &ModelMeta) -> Result<FeatureSchema> {
    let v1 = FeatureSchema::v1();
    match definitions_of(meta)? {
        None => Ok(v1),
        Some(definitions) => Ok(v1.with_store(definitions)?),
    }
}

/// Refuses an engine store whose definitions are not the ones the
/// schema's store section reads: the model would get values it was not
/// trained on. A schema without a store section, or no store, passes.
pub fn check_store(
    schema: &FeatureSchema,
    store: Option<&cx_featurestore::FeatureBackend>,
    model: &str,
) -> Result<()> {
    let (Some((section, _)), Some(store)) = (schema.store_section(), store) else {
        return Ok(());
    };
    let wanted = section.definitions().id();
    let held = store.definitions().id();
    if wanted != held {
        return Err(Error::Config(format!(
            "model `{model}` reads store features of definitions {wanted}, but the feature \
             store holds definitions {held}: serve the store with the definitions the model \
             records ({FEATURE_DEFINITIONS_KEY}), or retrain it"
        )));
    }
    Ok(())
}

/// The store feature definitions `meta` records, if any.
pub fn definitions_of(meta: &ModelMeta) -> Result<Option<Arc<Definitions>>> {
    let Some(text) = meta.extra.get(FEATURE_DEFINITIONS_KEY) else {
        return Ok(None);
    };
    let definitions = Definitions::from_toml_str(text).map_err(|e| {
        Error::Config(format!(
            "model `{}`: metadata {FEATURE_DEFINITIONS_KEY}: {e}",
            meta.name
        ))
    })?;
    Ok(Some(Arc::new(definitions)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFS: &str = include_str!("../../models/features.toml");

    #[test]
    fn a_model_without_definitions_reads_v1_and_one_with_them_v2() {
        let mut meta = ModelMeta::defaults(1);
        assert_eq!(schema_of(&meta).unwrap(), FeatureSchema::v1());
        meta.extra
            .insert(FEATURE_DEFINITIONS_KEY.into(), DEFS.to_string());
        let schema = schema_of(&meta).unwrap();
        let defs = Arc::new(Definitions::from_toml_str(DEFS).unwrap());
        assert_eq!(schema, FeatureSchema::v1().with_store(defs).unwrap());
        meta.extra.insert(
            FEATURE_DEFINITIONS_KEY.into(),
            "[[feature]]\nname = 3".into(),
        );
        let e = schema_of(&meta).unwrap_err().to_string();
        assert!(e.contains(FEATURE_DEFINITIONS_KEY), "{e}");
    }
}
