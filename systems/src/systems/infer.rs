//! **infer**: cache misses through the backend chain, in batches.

use super::params::{assert_awaiting, Clocks, POOLED};
use crate::config::BatchPolicy;
use crate::logic;
use crate::resources::counters::record;
use crate::resources::{Arm, BatchTimes, Counters, Ingress, Latencies, RequestQueues, Scoring};
use bevy_ecs::prelude::*;
use bevy_ecs::query::QueryData;
use bevy_ecs::system::SystemParam;
use cx_backends::SparseRows;
use cx_domain::pipeline::{FeatureRow, Phase, ScoreSource, Scores, Stage, StageTimes};

/// What the infer system counts: outcomes, and each batch's wall time.
#[derive(SystemParam)]
pub struct BatchTally<'w> {
    counters: ResMut<'w, Counters>,
    latencies: ResMut<'w, Latencies>,
    times: ResMut<'w, BatchTimes>,
}

/// What the infer system reads and writes.
#[derive(QueryData)]
#[query_data(mutable)]
pub struct InferItem {
    row: &'static FeatureRow,
    arm: &'static Arm,
    scores: &'static mut Scores,
    phase: &'static mut Phase,
    times: &'static mut StageTimes,
}

/// Scores pending requests in batches of `batch_max`, oldest first, each
/// by its [`Arm`]'s model (a batch holds one model's rows), and queues
/// them for [`Stage::Validate`]. A partial last batch is held for a
/// later tick per the [`BatchPolicy`] (Nagle: it runs when the ingress is
/// drained or its oldest request has waited `wait_us_max`).
pub fn infer(
    clocks: Clocks,
    policy: Res<BatchPolicy>,
    ingress: Res<Ingress>,
    mut scoring: ResMut<Scoring>,
    mut queues: ResMut<RequestQueues>,
    mut tally: BatchTally,
    mut query: Query<InferItem>,
) {
    let mut pending = queues.take(Stage::Infer);
    let now_ns = clocks.now_ns();
    let oldest_ns = pending.front().map_or(now_ns, |q| {
        query.get(q.entity).expect(POOLED).times.ingested_ns
    });
    let run = logic::rows_to_run(
        pending.len(),
        scoring.batch_max,
        ingress.0.is_empty(),
        now_ns.saturating_sub(oldest_ns),
        policy.wait_us_max.saturating_mul(1000),
    );
    let start_raw = clocks.raw();
    // One pass per scoring slot, so that each model's rows batch together
    // (one pass, as before, when no experiment is live).
    let mut flush = |slot, scoring: &mut Scoring, query: &mut Query<InferItem>| {
        run_batch(slot, scoring, query, &mut queues, &clocks, &mut tally);
    };
    for slot in 0..=scoring.arms.len() as u16 {
        for &queued in pending.range(..run) {
            let mut item = query.get_mut(queued.entity).expect(POOLED);
            if item.arm.slot != slot {
                continue;
            }
            assert_awaiting(*item.phase, Stage::Infer);
            item.times.stamp(Stage::Infer, start_raw);
            scoring.batch.push(queued);
            if scoring.batch.len() == scoring.batch_max {
                flush(slot, &mut scoring, &mut query);
            }
        }
        flush(slot, &mut scoring, &mut query);
    }
    pending.drain(..run);
    queues.restore(Stage::Infer, pending);
}

/// Gathers the batch's sparse rows, normalised by scoring slot `slot`'s
/// model, into one compressed-sparse block, runs that model's kernels on it, writes each request's probabilities (or
/// marks the batch failed, for the fallback scorer), and queues the batch
/// for [`Stage::Validate`].
fn run_batch(
    slot: u16,
    scoring: &mut Scoring,
    query: &mut Query<InferItem>,
    queues: &mut RequestQueues,
    clocks: &Clocks,
    tally: &mut BatchTally,
) {
    if scoring.batch.is_empty() {
        return;
    }
    let (now_ns, started_raw) = (clocks.now_ns(), clocks.raw());
    let counters = &mut tally.counters;
    let Scoring {
        serving,
        dispatcher,
        arms,
        batch_starts,
        batch_columns,
        batch_values,
        batch,
        readout,
        ..
    } = scoring;
    let (serving, dispatcher) = match slot {
        0 => (&*serving, dispatcher),
        k => {
            let arm = &mut arms[usize::from(k) - 1];
            (&arm.serving, &mut arm.dispatcher)
        }
    };
    batch_starts.clear();
    batch_starts.push(0);
    let mut used = 0;
    for queued in batch.iter() {
        let (columns, values) = query.get(queued.entity).expect(POOLED).row.pairs();
        let written = serving
            .norm
            .apply_sparse(
                columns,
                values,
                &mut batch_columns[used..],
                &mut batch_values[used..],
            )
            .expect("the batch buffers hold batch_max rows of SPARSE_NONZERO_MAX + norm columns");
        used += written;
        batch_starts.push(used as u32);
    }
    let rows = SparseRows {
        starts: batch_starts,
        columns: &batch_columns[..used],
        values: &batch_values[..used],
    };
    counters.batches += 1;
    let served = dispatcher.infer_sparse(&rows, readout, now_ns).is_ok();
    let batch_ns = clocks.wall().delta_as_nanos(started_raw, clocks.raw());
    record(&mut tally.latencies.inference_batch, batch_ns);
    tally.times.push(batch_ns);
    if served {
        counters.inferred_rows += batch.len() as u64;
    } else {
        counters.failed_batches += 1;
    }
    for (r, queued) in batch.drain(..).enumerate() {
        let mut item = query.get_mut(queued.entity).expect(POOLED);
        if served {
            item.scores
                .set(readout.probability_row(r), ScoreSource::Model);
        } else {
            item.scores.source = ScoreSource::Failed;
        }
        *item.phase = Phase::Awaiting(Stage::Validate);
        queues.push(Stage::Validate, queued);
    }
}
