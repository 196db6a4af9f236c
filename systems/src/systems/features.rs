//! **features** and **cache**: each request's user features (one read of
//! the online feature store, when the pipeline has one), sparse feature row
//! and fingerprint, then its lookup in the decision cache.

use super::params::{assert_awaiting, Clocks, POOLED};
use crate::logic;
use crate::resources::{Counters, RequestQueues, Schema, Scoring};
use crate::user_store::{UserFeatures, UserStore};
use bevy_ecs::prelude::*;
use bevy_ecs::query::QueryData;
use cx_domain::pipeline::{
    FeatureRow, Fingerprint, Phase, Request, ScoreSource, Scores, Stage, StageTimes,
};
use cx_domain::store::{CacheBackend, ScoreCache};

/// What the features system reads and writes.
#[derive(QueryData)]
#[query_data(mutable)]
pub struct FeaturesItem {
    request: &'static Request,
    row: &'static mut FeatureRow,
    user: &'static mut UserFeatures,
    fingerprint: &'static mut Fingerprint,
    phase: &'static mut Phase,
    times: &'static mut StageTimes,
}

/// Reads each new request's user features into its [`UserFeatures`]
/// ([`read_user_features`]), extracts its sparse feature row into its
/// [`FeatureRow`] and computes its [`Fingerprint`] (cache key, validity,
/// user hash), then queues it for [`Stage::Cache`].
#[allow(clippy::too_many_arguments)]
pub fn features(
    clocks: Clocks,
    schema: Res<Schema>,
    scoring: Res<Scoring>,
    mut store: Option<ResMut<UserStore>>,
    mut queues: ResMut<RequestQueues>,
    mut counters: ResMut<Counters>,
    mut query: Query<FeaturesItem>,
) {
    let start_raw = clocks.raw();
    let model_key = scoring.serving.key();
    let mut batch = queues.take(Stage::Features);
    for queued in batch.drain(..) {
        let mut item = query.get_mut(queued.entity).expect(POOLED);
        assert_awaiting(*item.phase, Stage::Features);
        item.times.stamp(Stage::Features, start_raw);
        let ctx = &item.request.ctx;
        let user_hash = logic::user_hash(&ctx.user_id);
        read_user_features(
            store.as_deref_mut(),
            user_hash,
            ctx.timestamp,
            &mut item.user,
        );
        let (columns, values) = item.row.buffers_mut();
        // The engine checked at build that a store's definitions are the
        // ones the schema's store section reads (or that it has none).
        let (len, stats) = schema
            .0
            .extract_sparse_with_store(ctx, item.user.values(), columns, values)
            .expect("a feature row has room for SPARSE_NONZERO_MAX pairs, and the store's definitions fit the schema");
        counters.extract_dropped_items += u64::from(stats.dropped_items);
        counters.extract_oversized_values += u64::from(stats.oversized_values);
        counters.extract_clamped += u64::from(stats.clamped);
        item.row.set_len(len);
        let (columns, values) = item.row.pairs();
        *item.fingerprint = Fingerprint {
            key: logic::fingerprint(model_key, columns, values),
            valid_until_ns: logic::valid_until_ns(ctx.timestamp),
            user_hash,
        };
        *item.phase = Phase::Awaiting(Stage::Cache);
        queues.push(Stage::Cache, queued);
    }
    queues.restore(Stage::Features, batch);
}

/// Fills `user` with the features of the user `user_hash` (0: no user)
/// at the request's time, `timestamp_s` (unix seconds; a negative one
/// reads as 0): one store read when there is a store and a user, else
/// every feature at its default. Allocation-free.
pub fn read_user_features(
    store: Option<&mut UserStore>,
    user_hash: u64,
    timestamp_s: i64,
    user: &mut UserFeatures,
) {
    let now_ns = u64::try_from(timestamp_s)
        .unwrap_or(0)
        .saturating_mul(logic::NS_PER_S);
    user.fill(store, user_hash, now_ns);
}

/// What the cache system reads and writes.
#[derive(QueryData)]
#[query_data(mutable)]
pub struct CacheItem {
    fingerprint: &'static Fingerprint,
    scores: &'static mut Scores,
    phase: &'static mut Phase,
    times: &'static mut StageTimes,
}

/// Looks each featured request up in the decision cache. A hit copies the
/// cached (already validated) probabilities into its [`Scores`] and queues
/// it for [`Stage::Decide`]; a miss queues it for [`Stage::Infer`].
pub fn cache_lookup(
    clocks: Clocks,
    mut cache: ResMut<CacheBackend>,
    mut queues: ResMut<RequestQueues>,
    mut query: Query<CacheItem>,
) {
    let start_raw = clocks.raw();
    let now_ns = clocks.now_ns();
    let mut batch = queues.take(Stage::Cache);
    for queued in batch.drain(..) {
        let mut item = query.get_mut(queued.entity).expect(POOLED);
        assert_awaiting(*item.phase, Stage::Cache);
        item.times.stamp(Stage::Cache, start_raw);
        let next = match cache.get(item.fingerprint.key, now_ns) {
            Some(cached) => {
                item.scores.set(cached, ScoreSource::Cache);
                Stage::Decide
            }
            None => Stage::Infer,
        };
        *item.phase = Phase::Awaiting(next);
        queues.push(next, queued);
    }
    queues.restore(Stage::Cache, batch);
}
