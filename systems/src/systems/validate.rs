//! **validate**: model output checked; stored in the cache, or replaced by
//! the fallback scorer's.

use super::params::{assert_awaiting, Clocks, POOLED};
use crate::logic;
use crate::resources::{Arm, Counters, RequestQueues, Scoring};
use bevy_ecs::prelude::*;
use bevy_ecs::query::QueryData;
use cx_domain::pipeline::{
    FeatureRow, Fingerprint, Phase, Request, ScoreSource, Scores, Stage, StageTimes,
};
use cx_domain::store::{CacheBackend, ScoreCache};

/// What the validate system reads and writes.
#[derive(QueryData)]
#[query_data(mutable)]
pub struct ValidateItem {
    request: &'static Request,
    fingerprint: &'static Fingerprint,
    row: &'static FeatureRow,
    arm: &'static Arm,
    scores: &'static mut Scores,
    phase: &'static mut Phase,
    times: &'static mut StageTimes,
}

/// Checks every freshly scored request. Valid model output is stored in
/// the cache (unless simulated); invalid output and failed batches are
/// counted and scored by the fallback scorer instead, never passed on.
/// Queues each for [`Stage::Decide`].
pub fn validate(
    clocks: Clocks,
    mut scoring: ResMut<Scoring>,
    mut cache: ResMut<CacheBackend>,
    mut queues: ResMut<RequestQueues>,
    mut counters: ResMut<Counters>,
    mut query: Query<ValidateItem>,
) {
    let start_raw = clocks.raw();
    let now_ns = clocks.now_ns();
    let mut batch = queues.take(Stage::Validate);
    for queued in batch.drain(..) {
        let mut item = query.get_mut(queued.entity).expect(POOLED);
        assert_awaiting(*item.phase, Stage::Validate);
        item.times.stamp(Stage::Validate, start_raw);
        *item.phase = Phase::Awaiting(Stage::Decide);
        queues.push(Stage::Decide, queued);
        if item.scores.source == ScoreSource::Model {
            if logic::probabilities_valid(&item.scores.probability) {
                if !item.request.simulate {
                    let fp = item.fingerprint;
                    cache
                        .insert(fp.key, &item.scores.probability, now_ns, fp.valid_until_ns)
                        .expect("the cache's rows are as wide as the serving model's");
                }
                continue;
            }
            counters.invalid_rows += 1;
        }
        let outcome = score_fallback(&mut scoring, item.arm.slot, item.row, &mut item.scores);
        match outcome {
            ScoreSource::Fallback => counters.fallback_rows += 1,
            _ => counters.failed_rows += 1,
        }
        item.scores.source = outcome;
    }
    queues.restore(Stage::Validate, batch);
}

/// Scores `row` with the fallback scorer of scoring slot `slot`'s model
/// into `scores`; returns
/// [`ScoreSource::Fallback`], or [`ScoreSource::Failed`] when there is no
/// fallback scorer or its output is invalid too.
fn score_fallback(
    scoring: &mut Scoring,
    slot: u16,
    row: &FeatureRow,
    scores: &mut Scores,
) -> ScoreSource {
    let Scoring {
        serving,
        arms,
        scratch,
        ..
    } = scoring;
    let serving = match slot {
        0 => &*serving,
        k => &arms[usize::from(k) - 1].serving,
    };
    let Some(fallback) = &serving.fallback else {
        return ScoreSource::Failed;
    };
    let (columns, values) = row.pairs();
    scatter(scratch, columns, values);
    fallback
        .norm
        .apply(scratch)
        .expect("the scratch row is as wide as the schema the fallback was checked against");
    for (o, p) in scores.probability.iter_mut().enumerate() {
        *p = fallback.logistic.predict_one(scratch, o);
    }
    unscatter(scratch, columns, fallback.norm.columns());
    if logic::probabilities_valid(&scores.probability) {
        ScoreSource::Fallback
    } else {
        ScoreSource::Failed
    }
}

/// Writes a row's sparse pairs into a zeroed dense row. Columns were
/// checked against the schema's width when extracted.
fn scatter(dense_row: &mut [f32], columns: &[u32], values: &[f32]) {
    for (&c, &v) in columns.iter().zip(values) {
        dense_row[c as usize] = v;
    }
}

/// Zeroes what [`scatter`] and the normalisation wrote.
fn unscatter(dense_row: &mut [f32], columns: &[u32], norm_columns: &[usize]) {
    let touched = columns
        .iter()
        .map(|&c| c as usize)
        .chain(norm_columns.iter().copied());
    for c in touched {
        dense_row[c] = 0.0;
    }
}
