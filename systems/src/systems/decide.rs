//! **decide**: the rules, the blend, top-k, and the winner's spend.

use super::params::{assert_awaiting, Clocks, Rules, Stores, POOLED};
use crate::logic::{self, DecideInputs, DecisionFacts, StoredUser};
use crate::resources::{Arm, Counters, ExperimentCounts, RequestQueues, Scoring};
use crate::user_store::{UserFeatures, UserStore};
use bevy_ecs::prelude::*;
use bevy_ecs::query::QueryData;
use cx_domain::pipeline::{
    Decision, Fingerprint, Phase, Request, Scores, Stage, StageTimes, Ticket,
};
use cx_domain::store::{Budgets, Settlement};

/// What the decide system reads and writes.
#[derive(QueryData)]
#[query_data(mutable)]
pub struct DecideItem {
    ticket: &'static Ticket,
    request: &'static Request,
    fingerprint: &'static Fingerprint,
    arm: &'static Arm,
    scores: &'static Scores,
    user: &'static UserFeatures,
    decision: &'static mut Decision,
    phase: &'static mut Phase,
    times: &'static mut StageTimes,
}

/// Applies the business rules and the blend to every scored request (with
/// the user's stored features when the features stage read them:
/// [`UserFeatures::read`]), in
/// ticket order (cache hits and fresh scores of one tick interleave as
/// they were submitted), ranks the top-k, and (unless simulated) spends the
/// winner's frequency-cap impression and budget before the next request is
/// decided, chooses the creative variant of the first offer
/// ([`logic::choose_variant`]), and logs the decision ([`DecisionLogging`]; an auction bid's
/// spend is a reservation until its win or loss). Queues each for
/// [`Stage::Respond`]. Once per tick, first brings a shared posterior
/// store's replica up to date, and at the end lets the
/// budget store return leases unused for their time to live.
#[allow(clippy::too_many_arguments)]
pub fn decide(
    clocks: Clocks,
    rules: Rules,
    scoring: Res<Scoring>,
    store: Option<Res<UserStore>>,
    mut stores: Stores,
    mut queues: ResMut<RequestQueues>,
    mut counters: ResMut<Counters>,
    mut arm_counts: ResMut<ExperimentCounts>,
    mut query: Query<DecideItem>,
    mut scratch: Local<logic::ExploreScratch>,
) {
    let start_raw = clocks.raw();
    let now_ns = clocks.now_ns();
    // A shared store's replica catches up once per tick, before deciding.
    stores.posteriors.refresh();
    stores.variants.refresh();
    let mut batch = queues.take(Stage::Decide);
    batch.make_contiguous().sort_unstable_by_key(|q| q.ticket);
    for queued in batch.drain(..) {
        let mut item = query.get_mut(queued.entity).expect(POOLED);
        assert_awaiting(*item.phase, Stage::Decide);
        item.times.stamp(Stage::Decide, start_raw);
        item.decision.reset(*item.ticket, item.request.simulate);
        let inputs = DecideInputs {
            ctx: &item.request.ctx,
            blocked_domains: &item.request.blocked_domains,
            imp: &item.request.imp,
            probabilities: &item.scores.probability,
            source: item.scores.source,
            columns: &scoring.columns,
            catalog: &rules.catalog,
            frequency: &*stores.frequency,
            budget: &*stores.budget,
            posteriors: stores.posteriors.view(),
            config: &rules.config,
            user_hash: item.fingerprint.user_hash,
            ticket: *item.ticket,
            seed: rules.seed.0,
            now_ns,
            stored: match (store.as_deref(), item.user.read()) {
                (Some(store), Some(values)) => Some(StoredUser {
                    values,
                    segments: store.segments(),
                    behavior: store.behavior(),
                }),
                _ => None,
            },
        };
        logic::decide(&inputs, &mut scratch, &mut item.decision);
        // An auction bid's price from the placement's win rates.
        let placement = logic::placement_key(&item.request.ctx);
        if item.request.settlement == Settlement::Auction && !item.request.simulate {
            let priced = logic::shade_first(
                &mut item.decision,
                &rules.catalog,
                &stores.win_rates,
                &rules.config,
                (placement, item.request.ctx.bid_floor),
                (rules.seed.0, *item.ticket),
            );
            match priced {
                logic::Priced::Learned => counters.priced_learned += 1,
                logic::Priced::Explored => counters.priced_explored += 1,
                logic::Priced::Static => {}
            }
        }
        let refusals = logic::commit(
            &mut item.decision,
            &rules.catalog,
            &rules.config,
            &mut *stores.frequency,
            &mut *stores.budget,
            item.fingerprint.user_hash,
            now_ns,
        );
        counters.spend_refused += u64::from(refusals.budget);
        counters.cap_refused += u64::from(refusals.frequency);
        if let Some(top) = item.decision.offers().first().copied() {
            let i = top.catalog_index as usize;
            item.decision.variant = logic::choose_variant(
                stores.variants.view(),
                i,
                top.offer_id,
                rules.catalog.variant_count(i),
                rules.seed.0,
                *item.ticket,
                now_ns,
            );
        }
        item.decision.arm = item.arm.id;
        let facts = DecisionFacts {
            key: stores.log.key(*item.ticket),
            settlement: item.request.settlement,
            model_key: scoring.slot(item.arm.slot).id.as_u64(),
            arm: item.arm.id,
            fingerprint: item.fingerprint.key,
            user_hash: item.fingerprint.user_hash,
            placement_key: placement,
            now_ns,
        };
        if let Some(entry) = logic::logged_decision(&item.decision, &facts) {
            counters.decisions_logged += 1;
            if let Some(arm) = arm_counts.arm_mut(entry.arm) {
                arm.decided += 1;
            }
            if let Some(evicted) = stores.log.log().record(&entry, now_ns) {
                // A bid evicted unsettled gives back what it held.
                logic::apply_effect(
                    &evicted,
                    &rules.catalog,
                    &rules.config,
                    &mut *stores.frequency,
                    &mut *stores.budget,
                    now_ns,
                );
                counters.log_released += 1;
            }
        }
        *item.phase = Phase::Awaiting(Stage::Respond);
        queues.push(Stage::Respond, queued);
    }
    queues.restore(Stage::Decide, batch);
    stores.budget.maintain(now_ns);
}
