//! The pipeline's systems, in schedule order. Each is a small function over
//! queries and resources that moves data to and from the pure functions in
//! [`crate::logic`]. A request entity's [`Phase`] says which system takes it
//! next; each system touches only the entities in its phase, so a request
//! held back (waiting for an inference batch) simply stays in its phase
//! until a later tick.
//!
//! `ingest` and `respond` are exclusive systems (`&mut World`): they spawn
//! and despawn whole batches of entities, which needs the World itself.
//! Neither allocates once its scratch vectors have grown to the tick's
//! largest batch.

use crate::config::{BatchPolicy, DecideConfig};
use crate::logic::{self, DecideInputs};
use crate::resources::{
    Counters, Egress, Ingress, Latencies, Schema, Scoring, Seed, SpareContexts, TickClock,
    WallClock, TOTAL_STAGE,
};
use bevy_ecs::prelude::*;
use cx_backends::SparseRows;
use cx_domain::catalog::Catalog;
use cx_domain::pipeline::{
    Decision, FeatureRows, Fingerprint, NoBidCause, Phase, Request, ScoreRows, ScoreSource, Slot,
    SlotPool, StageTimes, Ticket,
};
use cx_domain::store::{BudgetLedger, DecisionCache, FrequencyStore};

/// The components a request entity is spawned with: all of them, so it
/// never changes archetype.
pub type RequestBundle = (
    Ticket,
    Request,
    Slot,
    Phase,
    Fingerprint,
    StageTimes,
    Decision,
);

/// Indices into [`StageTimes::stage_raw`].
mod stage {
    pub const INGEST: usize = 0;
    pub const FEATURES: usize = 1;
    pub const CACHE: usize = 2;
    pub const INFER: usize = 3;
    pub const VALIDATE: usize = 4;
    pub const DECIDE: usize = 5;
}

/// **ingest**: takes up to `ingest_max` submissions from the ingress, gives
/// each a slot, stamps a missing timestamp with the tick's time, and spawns
/// them as one batch.
pub fn ingest(world: &mut World, mut staging: Local<Vec<RequestBundle>>) {
    let now_ns = world.resource::<TickClock>().now_ns;
    let limit = world.resource::<BatchPolicy>().ingest_max;
    let ingress = world.resource::<Ingress>().0.clone();
    let start_raw = world.resource::<WallClock>().0.raw();
    let now_s = (now_ns / logic::NS_PER_S) as i64;
    {
        let mut pool = world.resource_mut::<SlotPool>();
        while staging.len() < limit {
            let Some(slot) = pool.take() else { break };
            let Some(mut sub) = ingress.pop() else {
                pool.give(slot);
                break;
            };
            if sub.request.ctx.timestamp == 0 {
                sub.request.ctx.timestamp = now_s;
            }
            let mut times = StageTimes {
                ingested_ns: now_ns,
                submitted_raw: sub.submitted_raw,
                ..StageTimes::default()
            };
            times.stage_raw[stage::INGEST] = start_raw;
            staging.push((
                sub.ticket,
                sub.request,
                Slot(slot),
                Phase::Ingested,
                Fingerprint::default(),
                times,
                Decision::default(),
            ));
        }
    }
    let spawned = staging.len() as u64;
    world.spawn_batch(staging.drain(..));
    world.resource_mut::<Counters>().ingested += spawned;
}

/// **features**: extracts each new request's sparse feature row into its
/// slot and computes its fingerprint (cache key, validity, user hash).
pub fn features(
    schema: Res<Schema>,
    scoring: Res<Scoring>,
    wall: Res<WallClock>,
    mut rows: ResMut<FeatureRows>,
    mut counters: ResMut<Counters>,
    mut query: Query<(
        &Request,
        &Slot,
        &mut Phase,
        &mut Fingerprint,
        &mut StageTimes,
    )>,
) {
    let start_raw = wall.0.raw();
    let model_key = scoring.serving.key();
    for (request, slot, mut phase, mut fp, mut times) in &mut query {
        if *phase != Phase::Ingested {
            continue;
        }
        times.stage_raw[stage::FEATURES] = start_raw;
        let ctx = &request.ctx;
        let len = match rows.row_mut(slot.0) {
            Some((columns, values)) => match schema.0.extract_sparse(ctx, columns, values) {
                Ok((len, stats)) => {
                    counters.extract_dropped_items += u64::from(stats.dropped_items);
                    counters.extract_oversized_values += u64::from(stats.oversized_values);
                    counters.extract_clamped += u64::from(stats.clamped);
                    len
                }
                Err(_) => 0,
            },
            None => 0,
        };
        rows.set_len(slot.0, len);
        let (columns, values) = rows.row(slot.0);
        *fp = Fingerprint {
            key: logic::fingerprint(model_key, columns, values),
            valid_until_ns: logic::valid_until_ns(ctx.timestamp),
            user_hash: logic::user_hash(&ctx.user_id),
        };
        *phase = Phase::Featured;
    }
}

/// **cache**: looks each featured request up in the decision cache. A hit
/// copies the cached (already validated) probabilities into the request's
/// score row; a miss leaves it pending for inference.
pub fn cache_lookup(
    tick: Res<TickClock>,
    wall: Res<WallClock>,
    mut cache: ResMut<DecisionCache>,
    mut scores: ResMut<ScoreRows>,
    mut query: Query<(&Fingerprint, &Slot, &mut Phase, &mut StageTimes)>,
) {
    let start_raw = wall.0.raw();
    for (fp, slot, mut phase, mut times) in &mut query {
        if *phase != Phase::Featured {
            continue;
        }
        times.stage_raw[stage::CACHE] = start_raw;
        match cache.get(fp.key, tick.now_ns) {
            Some(cached) => {
                copy_row(scores.row_mut(slot.0), cached);
                scores.set_source(slot.0, ScoreSource::Cache);
                *phase = Phase::Validated;
            }
            None => *phase = Phase::Pending,
        }
    }
}

/// **infer**: scores pending rows through the backend chain in batches of
/// `batch_max`, holding a partial last batch per the [`BatchPolicy`].
#[allow(clippy::too_many_arguments)]
pub fn infer(
    policy: Res<BatchPolicy>,
    tick: Res<TickClock>,
    wall: Res<WallClock>,
    ingress: Res<Ingress>,
    rows: Res<FeatureRows>,
    mut scoring: ResMut<Scoring>,
    mut scores: ResMut<ScoreRows>,
    mut counters: ResMut<Counters>,
    mut query: Query<(&Slot, &mut Phase, &mut StageTimes)>,
) {
    let (pending, oldest_ns) = pending_rows(&query);
    let run = logic::rows_to_run(
        pending,
        scoring.batch_max,
        ingress.0.is_empty(),
        tick.now_ns.saturating_sub(oldest_ns),
        policy.wait_us_max.saturating_mul(1000),
    );
    if run == 0 {
        return;
    }
    let start_raw = wall.0.raw();
    let mut taken = 0;
    for (slot, mut phase, mut times) in &mut query {
        if taken == run {
            break;
        }
        if *phase != Phase::Pending {
            continue;
        }
        taken += 1;
        times.stage_raw[stage::INFER] = start_raw;
        *phase = Phase::Scored;
        scoring.batch_slots.push(slot.0);
        if scoring.batch_slots.len() == scoring.batch_max {
            run_batch(&mut scoring, &rows, &mut scores, tick.now_ns, &mut counters);
        }
    }
    run_batch(&mut scoring, &rows, &mut scores, tick.now_ns, &mut counters);
}

/// How many rows are pending, and the host time the oldest was ingested.
fn pending_rows(query: &Query<(&Slot, &mut Phase, &mut StageTimes)>) -> (usize, u64) {
    let mut pending = 0;
    let mut oldest_ns = u64::MAX;
    for (_, phase, times) in query {
        if *phase == Phase::Pending {
            pending += 1;
            oldest_ns = oldest_ns.min(times.ingested_ns);
        }
    }
    (pending, oldest_ns)
}

/// Gathers the batch's sparse rows, normalised, into one CSR block, runs
/// the kernels on it, and writes each row's probabilities (or marks the
/// batch failed).
fn run_batch(
    scoring: &mut Scoring,
    rows: &FeatureRows,
    scores: &mut ScoreRows,
    now_ns: u64,
    counters: &mut Counters,
) {
    if scoring.batch_slots.is_empty() {
        return;
    }
    let Scoring {
        serving,
        dispatcher,
        batch_starts,
        batch_columns,
        batch_values,
        batch_slots,
        readout,
        ..
    } = scoring;
    batch_starts.clear();
    batch_starts.push(0);
    let mut used = 0;
    let mut gathered = true;
    for &slot in batch_slots.iter() {
        let (columns, values) = rows.row(slot);
        // Room for every row was reserved at start (pairs + norm columns), so
        // this cannot fail; if it did, the batch goes to the fallback scorer.
        match serving.norm.apply_sparse(
            columns,
            values,
            &mut batch_columns[used..],
            &mut batch_values[used..],
        ) {
            Ok(written) => used += written,
            Err(_) => gathered = false,
        }
        batch_starts.push(used as u32);
    }
    let batch = SparseRows {
        starts: batch_starts,
        columns: &batch_columns[..used],
        values: &batch_values[..used],
    };
    counters.batches += 1;
    let result = if gathered {
        dispatcher.infer_sparse(&batch, readout, now_ns)
    } else {
        Err(cx_backends::BackendError::SparseInput {
            reason: "a row did not fit the batch buffer".into(),
        })
    };
    match result {
        Ok(_) => {
            counters.inferred_rows += batch_slots.len() as u64;
            for (r, &slot) in batch_slots.iter().enumerate() {
                copy_row(scores.row_mut(slot), readout.probability_row(r));
                scores.set_source(slot, ScoreSource::Model);
            }
        }
        Err(_) => {
            counters.failed_batches += 1;
            for &slot in batch_slots.iter() {
                scores.set_source(slot, ScoreSource::Failed);
            }
        }
    }
    batch_slots.clear();
}

/// Writes `slot`'s sparse pairs into a zeroed dense row.
fn scatter(dense_row: &mut [f32], rows: &FeatureRows, slot: u32) {
    let (columns, values) = rows.row(slot);
    for (&c, &v) in columns.iter().zip(values) {
        if let Some(x) = dense_row.get_mut(c as usize) {
            *x = v;
        }
    }
}

/// Zeroes what [`scatter`] and the normalisation wrote.
fn unscatter(dense_row: &mut [f32], rows: &FeatureRows, slot: u32, norm_columns: &[usize]) {
    let (columns, _) = rows.row(slot);
    let touched = columns
        .iter()
        .map(|&c| c as usize)
        .chain(norm_columns.iter().copied());
    for c in touched {
        if let Some(x) = dense_row.get_mut(c) {
            *x = 0.0;
        }
    }
}

/// Copies as much of `src` as fits into `dst` (equal widths by construction).
fn copy_row(dst: &mut [f32], src: &[f32]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = *s;
    }
}

/// **validate**: checks every freshly scored row. Valid model output is
/// stored in the cache (unless simulated); invalid output and failed
/// batches are counted and scored by the fallback scorer instead, never
/// passed on.
#[allow(clippy::too_many_arguments)]
pub fn validate(
    tick: Res<TickClock>,
    wall: Res<WallClock>,
    rows: Res<FeatureRows>,
    mut scoring: ResMut<Scoring>,
    mut scores: ResMut<ScoreRows>,
    mut cache: ResMut<DecisionCache>,
    mut counters: ResMut<Counters>,
    mut query: Query<(&Request, &Fingerprint, &Slot, &mut Phase, &mut StageTimes)>,
) {
    let start_raw = wall.0.raw();
    for (request, fp, slot, mut phase, mut times) in &mut query {
        if *phase != Phase::Scored {
            continue;
        }
        times.stage_raw[stage::VALIDATE] = start_raw;
        *phase = Phase::Validated;
        let source = scores.source(slot.0);
        if source == ScoreSource::Model {
            if logic::probabilities_valid(scores.row(slot.0)) {
                if !request.simulate {
                    // Widths match by construction; a refused insert only costs a future miss.
                    let _ =
                        cache.insert(fp.key, scores.row(slot.0), tick.now_ns, fp.valid_until_ns);
                }
                continue;
            }
            counters.invalid_rows += 1;
        }
        let outcome = score_fallback(&mut scoring, &rows, &mut scores, slot.0);
        match outcome {
            ScoreSource::Fallback => counters.fallback_rows += 1,
            _ => counters.failed_rows += 1,
        }
        scores.set_source(slot.0, outcome);
    }
}

/// Scores `slot` with the fallback scorer; [`ScoreSource::Failed`] when
/// there is none or its output is invalid too.
fn score_fallback(
    scoring: &mut Scoring,
    rows: &FeatureRows,
    scores: &mut ScoreRows,
    slot: u32,
) -> ScoreSource {
    let Scoring {
        serving, scratch, ..
    } = scoring;
    let Some(fallback) = &serving.fallback else {
        return ScoreSource::Failed;
    };
    scatter(scratch, rows, slot);
    let _ = fallback.norm.apply(scratch);
    for (o, p) in scores.row_mut(slot).iter_mut().enumerate() {
        *p = fallback.logistic.predict_one(scratch, o);
    }
    unscatter(scratch, rows, slot, fallback.norm.columns());
    if logic::probabilities_valid(scores.row(slot)) {
        ScoreSource::Fallback
    } else {
        ScoreSource::Failed
    }
}

/// **decide**: applies the business rules and the blend to every validated
/// request, ranks the top-k, and (unless simulated) spends the winner's
/// frequency-cap impression and budget.
#[allow(clippy::too_many_arguments)]
pub fn decide(
    tick: Res<TickClock>,
    wall: Res<WallClock>,
    seed: Res<Seed>,
    config: Res<DecideConfig>,
    catalog: Res<Catalog>,
    scoring: Res<Scoring>,
    scores: Res<ScoreRows>,
    mut frequency: ResMut<FrequencyStore>,
    mut budget: ResMut<BudgetLedger>,
    mut query: Query<(
        &Ticket,
        &Request,
        &Fingerprint,
        &Slot,
        &mut Phase,
        &mut Decision,
        &mut StageTimes,
    )>,
) {
    let start_raw = wall.0.raw();
    for (ticket, request, fp, slot, mut phase, mut decision, mut times) in &mut query {
        if *phase != Phase::Validated {
            continue;
        }
        times.stage_raw[stage::DECIDE] = start_raw;
        decision.ticket = *ticket;
        decision.simulated = request.simulate;
        let inputs = DecideInputs {
            ctx: &request.ctx,
            probabilities: scores.row(slot.0),
            source: scores.source(slot.0),
            columns: &scoring.columns,
            catalog: &catalog,
            frequency: &frequency,
            budget: &budget,
            config: &config,
            user_hash: fp.user_hash,
            ticket: *ticket,
            seed: seed.0,
            now_ns: tick.now_ns,
        };
        logic::decide(&inputs, &mut decision);
        logic::commit(
            &decision,
            &catalog,
            &config,
            &mut frequency,
            &mut budget,
            fp.user_hash,
            tick.now_ns,
        );
        *phase = Phase::Decided;
    }
}

/// One decided request, as the respond system collects it before releasing it.
type Responded = (Entity, u32, StageTimes, Option<NoBidCause>, bool);

/// **respond**: emits each decision to the egress, records its latencies,
/// releases its slot, hands its context back ([`SpareContexts`]) and
/// despawns it. A decision the egress cannot take
/// (impossible while admission holds) stays for the next tick.
pub fn respond(
    world: &mut World,
    query: &mut QueryState<(Entity, &Phase, &Slot, &Decision, &StageTimes)>,
    mut done: Local<Vec<Responded>>,
) {
    let egress = world.resource::<Egress>().0.clone();
    let start_raw = world.resource::<WallClock>().0.raw();
    let mut egress_full = 0;
    for (entity, phase, slot, decision, times) in query.iter(world) {
        if *phase != Phase::Decided {
            continue;
        }
        if egress.push(*decision).is_err() {
            egress_full += 1;
            continue;
        }
        done.push((entity, slot.0, *times, decision.no_bid, decision.simulated));
    }
    let end_raw = world.resource::<WallClock>().0.raw();
    record_latencies(world, &done, start_raw, end_raw);
    {
        let mut counters = world.resource_mut::<Counters>();
        counters.egress_full += egress_full;
        for &(_, _, _, no_bid, simulated) in done.iter() {
            counters.decided += 1;
            counters.simulated += u64::from(simulated);
            if let Some(cause) = no_bid {
                counters.no_offer += 1;
                counters.no_offer_by_cause[cause.index()] += 1;
            }
        }
    }
    let mut pool = world.resource_mut::<SlotPool>();
    for &(_, slot, ..) in done.iter() {
        pool.give(slot);
    }
    hand_back_contexts(world, &done);
    for (entity, ..) in done.drain(..) {
        world.despawn(entity);
    }
}

/// Moves each responded request's context to [`SpareContexts`] for the
/// host to refill (what the queue has no room for, or every context in a
/// world without the resource, is dropped with its entity). Moving leaves
/// an empty context behind, which owns no heap.
fn hand_back_contexts(world: &mut World, done: &[Responded]) {
    let Some(spares) = world.get_resource::<SpareContexts>().map(|s| s.0.clone()) else {
        return;
    };
    for &(entity, ..) in done {
        if spares.is_full() {
            return;
        }
        if let Some(mut request) = world.get_mut::<Request>(entity) {
            // Cannot fail: the queue had room and only this system pushes.
            let _ = spares.push(std::mem::take(&mut request.ctx));
        }
    }
}

/// Records each responded request's per-stage latencies (see
/// [`Latencies`] for what each stage measures).
fn record_latencies(world: &mut World, done: &[Responded], start_raw: u64, end_raw: u64) {
    let clock = world.resource::<WallClock>().0.clone();
    let mut latencies = world.resource_mut::<Latencies>();
    for (_, _, times, ..) in done {
        let stamps = &times.stage_raw;
        latencies.record(0, clock.delta_as_nanos(times.submitted_raw, stamps[0]));
        for (i, &at) in stamps.iter().enumerate() {
            if at == 0 {
                continue;
            }
            let next = stamps[i + 1..]
                .iter()
                .copied()
                .find(|&t| t != 0)
                .unwrap_or(start_raw);
            latencies.record(i + 1, clock.delta_as_nanos(at, next));
        }
        latencies.record(7, clock.delta_as_nanos(start_raw, end_raw));
        latencies.record(
            TOTAL_STAGE,
            clock.delta_as_nanos(times.submitted_raw, end_raw),
        );
    }
}

/// The pipeline's system set, for hosts that order their own systems
/// around it.
#[derive(SystemSet, Clone, Debug, PartialEq, Eq, Hash)]
pub struct PipelineSet;

/// Adds the pipeline's systems to `schedule`, chained in order and in
/// [`PipelineSet`].
pub fn add_pipeline(schedule: &mut Schedule) {
    schedule.add_systems(
        (
            ingest,
            features,
            cache_lookup,
            infer,
            validate,
            decide,
            respond,
        )
            .chain()
            .in_set(PipelineSet),
    );
}
