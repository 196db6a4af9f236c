//! `cx train`'s monitoring reference (`cx.reference`, `docs/MONITORING.md`):
//! the feature distributions of the training rows (as extracted, before
//! normalisation), the held-out rows' highest calibrated prediction, and the
//! training base rate, computed by [`cx_engine::systems::monitor::Reference`].

use super::data::Rows;
use crate::error::{Error, Result};
use cx_engine::systems::monitor::Reference;
use cx_features::FeatureSchema;

/// The reference JSON for a network trained on `rows` (raw), with
/// `holdout` the held-out rows as the network reads them (normalised).
pub fn reference_json(
    schema: &FeatureSchema,
    rows: &Rows,
    net: &cx_train::Network,
    holdout: &Rows,
) -> Result<String> {
    let top = cx_train::predict_top(net, holdout.examples());
    let reference = Reference::build(schema, &rows.x, &rows.label, &top)
        .map_err(|e| Error::Mismatch(format!("monitoring reference: {e}")))?;
    Ok(reference.to_json())
}
