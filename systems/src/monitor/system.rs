//! The system that feeds the [`Monitor`] resource: it runs after decide and
//! before respond (after [`Stage::Decide`]'s set, before [`Stage::Respond`]'s)
//! and counts each decided request's sparse feature row and the
//! highest click probability the model gave it. Simulated requests (test
//! traffic) are not counted; neither are predictions from the fallback
//! scorer, which is another model.

use super::Monitor;
use crate::resources::RequestQueues;
use bevy_ecs::prelude::*;
use cx_domain::pipeline::{FeatureRow, Request, ScoreSource, Scores, Stage};

/// Counts this tick's decided requests into the monitor. Allocates nothing.
pub fn observe(
    queues: Res<RequestQueues>,
    monitor: Option<ResMut<Monitor>>,
    rows: Query<(&Request, &FeatureRow, &Scores)>,
) {
    let Some(mut monitor) = monitor else {
        return;
    };
    for queued in queues.awaiting(Stage::Respond) {
        let Ok((request, row, scores)) = rows.get(queued.entity) else {
            continue;
        };
        if request.simulate {
            continue;
        }
        let top = match scores.source {
            ScoreSource::Model | ScoreSource::Cache => scores
                .probability
                .iter()
                .copied()
                .filter(|p| p.is_finite())
                .reduce(f32::max),
            _ => None,
        };
        let (columns, values) = row.pairs();
        monitor.observe(columns, values, top);
    }
}

/// Adds [`observe`] to `schedule`, between decide and respond.
pub fn add_system(schedule: &mut Schedule) {
    schedule.add_systems(observe.after(Stage::Decide).before(Stage::Respond));
}
