//! **ingest**: submissions from the ingress onto free request entities.

use super::params::{Clocks, POOLED};
use crate::config::BatchPolicy;
use crate::logic::NS_PER_S;
use crate::resources::{Counters, Ingress, QueuedRequest, RequestQueues};
use bevy_ecs::prelude::*;
use bevy_ecs::query::QueryData;
use cx_domain::pipeline::{Phase, Request, ScoreSource, Scores, Stage, StageTimes, Ticket};

/// What ingest writes on an entity it takes from the pool.
#[derive(QueryData)]
#[query_data(mutable)]
pub struct IngestItem {
    ticket: &'static mut Ticket,
    request: &'static mut Request,
    phase: &'static mut Phase,
    times: &'static mut StageTimes,
    scores: &'static mut Scores,
}

/// Takes up to `ingest_max` submissions from the ingress, each onto a free
/// entity of the pool, stamps a missing request timestamp with the tick's
/// time, and queues them for [`Stage::Features`] in submission order.
pub fn ingest(
    clocks: Clocks,
    policy: Res<BatchPolicy>,
    ingress: Res<Ingress>,
    mut queues: ResMut<RequestQueues>,
    mut counters: ResMut<Counters>,
    mut query: Query<IngestItem>,
) {
    let now_ns = clocks.now_ns();
    let now_s = (now_ns / NS_PER_S) as i64;
    let start_raw = clocks.raw();
    let mut taken = 0;
    while taken < policy.ingest_max {
        let Some(entity) = queues.take_free() else {
            break;
        };
        let Some(mut submission) = ingress.0.pop() else {
            queues.release(entity);
            break;
        };
        if submission.request.ctx.timestamp == 0 {
            submission.request.ctx.timestamp = now_s;
        }
        let mut item = query.get_mut(entity).expect(POOLED);
        assert_eq!(*item.phase, Phase::Free, "the pool hands out free entities");
        *item.ticket = submission.ticket;
        *item.request = submission.request;
        *item.times = StageTimes {
            ingested_ns: now_ns,
            submitted_raw: submission.submitted_raw,
            ..StageTimes::default()
        };
        item.times.stamp(Stage::Ingest, start_raw);
        item.scores.source = ScoreSource::None;
        *item.phase = Phase::Awaiting(Stage::Features);
        queues.push(
            Stage::Features,
            QueuedRequest {
                ticket: submission.ticket,
                entity,
            },
        );
        taken += 1;
    }
    counters.ingested += taken as u64;
}
