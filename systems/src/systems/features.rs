//! **features** and **cache**: each request's user features (one read of
//! the online feature store, when the pipeline has one), sparse feature row
//! and fingerprint, then its lookup in the decision cache.

use super::params::{assert_awaiting, Clocks, POOLED};
use crate::logic;
use crate::resources::{
    Arm, Counters, ExperimentCounts, ExperimentRoutes, RequestQueues, Schema, Scoring,
};
use crate::user_store::{UserFeatures, UserStore};
use bevy_ecs::prelude::*;
use bevy_ecs::query::QueryData;
use bevy_ecs::system::SystemParam;
use cx_domain::pipeline::{
    FeatureRow, Fingerprint, Phase, Request, ScoreSource, Scores, Stage, StageTimes,
};
use cx_domain::store::{CacheBackend, ScoreCache};
use cx_featurestore::READ_BATCH_MAX;

/// The live experiments, and what their arms counted.
#[derive(SystemParam)]
pub struct Experiments<'w> {
    routes: Res<'w, ExperimentRoutes>,
    counts: ResMut<'w, ExperimentCounts>,
}

impl Experiments<'_> {
    /// Assigns the request `ctx` to its arm, counting it unless simulated.
    fn assign(&mut self, ctx: &cx_features::RequestContext, simulated: bool) -> Arm {
        if self.routes.is_empty() {
            return Arm::default();
        }
        let arm = self.routes.assign(ctx);
        if !simulated {
            if let Some(counts) = self.counts.arm_mut(arm.id) {
                counts.assigned += 1;
            }
        }
        arm
    }
}

/// What the features system reads and writes.
#[derive(QueryData)]
#[query_data(mutable)]
pub struct FeaturesItem {
    request: &'static Request,
    row: &'static mut FeatureRow,
    user: &'static mut UserFeatures,
    arm: &'static mut Arm,
    fingerprint: &'static mut Fingerprint,
    phase: &'static mut Phase,
    times: &'static mut StageTimes,
}

/// Reads each new request's user features into its [`UserFeatures`]
/// ([`read_user_chunk`]: one batched store read per [`READ_BATCH_MAX`]
/// requests), extracts its sparse feature row into its [`FeatureRow`] and
/// computes its [`Fingerprint`] (cache key, validity, user hash), then
/// queues it for [`Stage::Cache`]. With experiments live, it first assigns
/// the request to its [`Arm`]; the arm's model is the fingerprint's.
#[allow(clippy::too_many_arguments)]
pub fn features(
    clocks: Clocks,
    schema: Res<Schema>,
    scoring: Res<Scoring>,
    mut experiments: Experiments,
    mut store: Option<ResMut<UserStore>>,
    mut queues: ResMut<RequestQueues>,
    mut counters: ResMut<Counters>,
    mut query: Query<FeaturesItem>,
) {
    let start_raw = clocks.raw();
    let mut batch = queues.take(Stage::Features);
    let mut user_hashes = [0u64; READ_BATCH_MAX];
    while !batch.is_empty() {
        let n = batch.len().min(READ_BATCH_MAX);
        let chunk = batch.range(..n).map(|q| q.entity);
        read_user_chunk(store.as_deref_mut(), chunk, &mut query, &mut user_hashes);
        for (queued, &user_hash) in batch.drain(..n).zip(&user_hashes) {
            let mut item = query.get_mut(queued.entity).expect(POOLED);
            assert_awaiting(*item.phase, Stage::Features);
            item.times.stamp(Stage::Features, start_raw);
            let ctx = &item.request.ctx;
            *item.arm = experiments.assign(ctx, item.request.simulate);
            let model_key = scoring.slot(item.arm.slot).key();
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
    }
    queues.restore(Stage::Features, batch);
}

/// Fills the [`UserFeatures`] of the requests `chunk` (at most
/// [`READ_BATCH_MAX`]) and writes each one's user hash to `user_hashes`,
/// in order. With a store, the users of requests that have one are read
/// together ([`UserStore::read_users`]), one batched read per run of
/// requests with the same timestamp (a tick's requests share theirs);
/// requests without a user, and every request without a store, read
/// every feature at its default. Allocation-free.
pub fn read_user_chunk(
    mut store: Option<&mut UserStore>,
    chunk: impl Iterator<Item = Entity>,
    query: &mut Query<FeaturesItem>,
    user_hashes: &mut [u64; READ_BATCH_MAX],
) {
    let mut pending = PendingReads::new();
    for (i, entity) in chunk.enumerate() {
        let mut item = query.get_mut(entity).expect(POOLED);
        let ctx = &item.request.ctx;
        let user_hash = logic::user_hash(&ctx.user_id);
        let now_ns = request_now_ns(ctx.timestamp);
        user_hashes[i] = user_hash;
        let Some(store) = store.as_deref_mut().filter(|_| user_hash != 0) else {
            item.user.set_unread(now_ns);
            continue;
        };
        if pending.len > 0 && pending.now_ns != now_ns {
            pending.flush(store, query);
        }
        pending.push(entity, user_hash, now_ns);
    }
    if let Some(store) = store {
        pending.flush(store, query);
    }
}

/// The requests of a chunk whose users are to be read at one time.
struct PendingReads {
    entities: [Entity; READ_BATCH_MAX],
    keys: [u64; READ_BATCH_MAX],
    len: usize,
    now_ns: u64,
}

impl PendingReads {
    fn new() -> Self {
        Self {
            entities: [Entity::PLACEHOLDER; READ_BATCH_MAX],
            keys: [0; READ_BATCH_MAX],
            len: 0,
            now_ns: 0,
        }
    }

    fn push(&mut self, entity: Entity, key: u64, now_ns: u64) {
        assert!(
            self.len < READ_BATCH_MAX,
            "a chunk holds at most READ_BATCH_MAX requests"
        );
        self.entities[self.len] = entity;
        self.keys[self.len] = key;
        self.now_ns = now_ns;
        self.len += 1;
    }

    /// Reads the pending users into their requests, and empties.
    fn flush(&mut self, store: &mut UserStore, query: &mut Query<FeaturesItem>) {
        let (keys, entities) = (&self.keys[..self.len], &self.entities[..self.len]);
        let mut rows = store.read_users(keys, self.now_ns);
        for (k, &entity) in entities.iter().enumerate() {
            let mut item = query.get_mut(entity).expect(POOLED);
            match rows.as_deref_mut() {
                Some(rows) => item.user.take_read(&mut rows[k]),
                None => item.user.set_unread(self.now_ns),
            }
        }
        self.len = 0;
    }
}

/// The store's `now` for a request of `timestamp_s` (unix seconds; a
/// negative one reads as 0).
fn request_now_ns(timestamp_s: i64) -> u64 {
    u64::try_from(timestamp_s)
        .unwrap_or(0)
        .saturating_mul(logic::NS_PER_S)
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
