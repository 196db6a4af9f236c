//! Store features of a click log for `cx train` and `cx eval`: the log is
//! replayed through a store of the model's definitions in time order
//! ([`cx_featurestore::history`]), so each row's store section holds
//! only what was known before the row (docs/FEATURES.md, "Training with
//! store features").
//!
//! Users are keyed as serving keys them ([`cx_systems::logic::user_hash`]):
//! an empty user id is no user and reads the defaults.

use super::data::extract_row;
use crate::error::{Error, Result};
use cx_datasets::clicklog::ClickLog;
use cx_engine::featurestore::history::{self, LoggedRow, ReplayReport, Visibility};
use cx_engine::featurestore::Definitions;
use cx_engine::systems::logic::user_hash;
use cx_features::{FeatureNorm, FeatureSchema};
use std::sync::Arc;

/// Fills `x` (one row of `schema.width()` per kept row, in log order)
/// with each kept row's features, its store section read as `visibility`
/// says: [`Visibility::StrictlyBefore`] (point in time) for training and
/// evaluation; [`Visibility::ThroughOwnRow`] leaks each row's label into
/// its features and exists only to measure that
/// (`server/tests/history_leakage.rs`).
pub fn featurize_with(
    click_log: &ClickLog,
    keep: &[bool],
    definitions: Arc<Definitions>,
    schema: &FeatureSchema,
    norm: Option<&FeatureNorm>,
    x: &mut [f32],
    visibility: Visibility,
) -> Result<ReplayReport> {
    let width = schema.width();
    let rows: Vec<LoggedRow> = click_log
        .contexts
        .iter()
        .zip(&click_log.labels)
        .map(|(ctx, &label)| LoggedRow {
            user: user_hash(&ctx.user_id),
            time_s: ctx.timestamp,
            clicked: label > 0.5,
        })
        .collect();
    // The slot of each kept row in `x`: its rank among kept rows.
    let mut slot = vec![usize::MAX; keep.len()];
    let kept = slot.iter_mut().zip(keep).filter(|(_, &k)| k);
    for (rank, (s, _)) in kept.enumerate() {
        *s = rank;
    }
    let mut failed: Option<Error> = None;
    let report = history::replay(definitions, &rows, visibility, |i, values| {
        if slot[i] == usize::MAX || failed.is_some() {
            return;
        }
        let row = &mut x[slot[i] * width..(slot[i] + 1) * width];
        if let Err(e) = extract_row(schema, &click_log.contexts[i], Some(values), norm, row) {
            failed = Some(e);
        }
    })
    .map_err(|e| Error::Mismatch(format!("store features of the log: {e}")))?;
    match failed {
        Some(e) => Err(e),
        None => Ok(report),
    }
}
