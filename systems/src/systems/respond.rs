//! **respond**: decisions to the egress, latencies recorded, entities back
//! to the pool.

use super::params::{assert_awaiting, Clocks, ToHost, POOLED};
use crate::resources::counters::record;
use crate::resources::{Counters, Latencies, QueuedRequest, RequestQueues};
use bevy_ecs::prelude::*;
use bevy_ecs::query::QueryData;
use cx_domain::pipeline::{Decision, Phase, Request, Stage, StageTimes};

/// What the respond system reads and writes.
#[derive(QueryData)]
#[query_data(mutable)]
pub struct RespondItem {
    request: &'static mut Request,
    decision: &'static Decision,
    phase: &'static mut Phase,
    times: &'static mut StageTimes,
}

/// Emits each decision to the egress in decision order, records its
/// latencies, hands its context back ([`SpareContexts`](crate::resources::SpareContexts), while there is
/// room) and returns its entity to the pool. A decision the egress cannot
/// take (impossible while admission holds) waits, with those behind it,
/// for the next tick.
pub fn respond(
    clocks: Clocks,
    host: ToHost,
    mut latencies: ResMut<Latencies>,
    mut queues: ResMut<RequestQueues>,
    mut counters: ResMut<Counters>,
    mut query: Query<RespondItem>,
    mut done: Local<Vec<QueuedRequest>>,
) {
    let start_raw = clocks.raw();
    let mut batch = queues.take(Stage::Respond);
    while let Some(&queued) = batch.front() {
        let mut item = query.get_mut(queued.entity).expect(POOLED);
        assert_awaiting(*item.phase, Stage::Respond);
        if host.egress.0.push(*item.decision).is_err() {
            counters.egress_full += batch.len() as u64;
            break;
        }
        batch.pop_front();
        item.times.stamp(Stage::Respond, start_raw);
        counters.decided += 1;
        counters.simulated += u64::from(item.decision.simulated);
        if let Some(cause) = item.decision.no_bid {
            counters.no_offer += 1;
            counters.no_offer_by_cause[cause.index()] += 1;
        }
        if !host.spares.0.is_full() {
            let pushed = host.spares.0.push(std::mem::take(&mut item.request.ctx));
            assert!(pushed.is_ok(), "only this system pushes spare contexts");
        }
        *item.phase = Phase::Free;
        done.push(queued);
    }
    queues.restore(Stage::Respond, batch);
    let end_raw = clocks.raw();
    for queued in done.drain(..) {
        let item = query.get(queued.entity).expect(POOLED);
        record_latencies(&mut latencies, clocks.wall(), item.times, end_raw);
        queues.release(queued.entity);
    }
}

/// Records one responded request's latencies (see [`Latencies`] for what
/// each histogram measures).
fn record_latencies(
    latencies: &mut Latencies,
    clock: &quanta::Clock,
    times: &StageTimes,
    end_raw: u64,
) {
    let stamps = &times.stage_raw;
    let ns = |from: u64, to: u64| clock.delta_as_nanos(from, to);
    record(&mut latencies.queue, ns(times.submitted_raw, stamps[0]));
    for (i, &at) in stamps.iter().enumerate() {
        if at == 0 {
            continue;
        }
        let next = stamps[i + 1..]
            .iter()
            .copied()
            .find(|&t| t != 0)
            .unwrap_or(end_raw);
        record(&mut latencies.stages[i], ns(at, next));
    }
    record(&mut latencies.total, ns(times.submitted_raw, end_raw));
}
