//! The online feature store in the pipeline (`docs/FEATURES.md`, "In the
//! pipeline"): the [`UserStore`] resource (the store, and what decisions
//! precompute from its definitions) and the per-request [`UserFeatures`]
//! component the **features** system fills once per request, before the
//! request's feature row is extracted.
//!
//! Both are optional in effect: a pipeline installed without a store has no
//! `UserStore`, and its request entities carry a `UserFeatures` with no
//! buffer (every pooled entity has every component, so none changes
//! archetype). With a store, each pooled entity's buffer is allocated once
//! at install for the store's definitions; a read fills it in place.

use crate::config::DecideConfig;
use crate::error::Result;
use crate::logic::stored::{BehaviorInputs, SegmentTable};
use bevy_ecs::prelude::*;
use cx_featurestore::{Definitions, FeatureBackend, FeatureValues, OnlineFeatures, READ_BATCH_MAX};
use std::sync::Arc;

/// The pipeline's feature store, and what decisions read of its
/// definitions: the stored segments' hashes and the resolved behaviour
/// features (`crate::logic::stored`).
#[derive(Resource)]
pub struct UserStore {
    backend: FeatureBackend,
    segments: SegmentTable,
    behavior: BehaviorInputs,
    /// [`READ_BATCH_MAX`] rows of the definitions, which
    /// [`UserStore::read_users`] reads a batch of users into (allocated
    /// once, here).
    scratch: Box<[FeatureValues]>,
}

impl UserStore {
    /// The store `backend` under the decide settings `decide` (their
    /// `behavior_*` features resolved against its definitions: an unknown
    /// or non-numeric one with a weight is an error naming the setting).
    pub fn new(backend: FeatureBackend, decide: &DecideConfig) -> Result<Self> {
        let defs = backend.definitions().clone();
        Ok(Self {
            segments: SegmentTable::new(&defs),
            behavior: BehaviorInputs::new(&defs, decide)?,
            scratch: (0..READ_BATCH_MAX)
                .map(|_| FeatureValues::new(defs.clone()))
                .collect(),
            backend,
        })
    }

    /// Reads the users `keys` (none 0; at most [`READ_BATCH_MAX`]) at
    /// `now_ns` with one batched store read (`OnlineFeatures::read_many`:
    /// the in-process store overlaps their memory waits; a remote one
    /// would make one round trip) and returns their rows, in order.
    /// `None` when the store refused the batch (a replaced store of other
    /// definitions): the users then read as no user. Allocation-free.
    ///
    /// The rows are lent: [`UserFeatures::take_read`] swaps one with a
    /// request's buffer (of the same definitions) instead of copying it.
    pub fn read_users(&mut self, keys: &[u64], now_ns: u64) -> Option<&mut [FeatureValues]> {
        debug_assert!(!keys.contains(&0), "user 0 is no user and is never read");
        let rows = self.scratch.get_mut(..keys.len())?;
        self.backend.read_many(keys, now_ns, rows).ok()?;
        Some(rows)
    }

    /// The store.
    pub fn backend(&self) -> &FeatureBackend {
        &self.backend
    }

    /// The store, to write, read or replace (a replacement must have the
    /// same definitions: the pooled buffers and the precomputed segments
    /// are theirs; a store of other definitions is never read, every
    /// request reading as no user).
    pub fn backend_mut(&mut self) -> &mut FeatureBackend {
        &mut self.backend
    }

    /// The store's definitions.
    pub fn definitions(&self) -> &Arc<Definitions> {
        self.backend.definitions()
    }

    /// Each stored segment's hash.
    pub fn segments(&self) -> &SegmentTable {
        &self.segments
    }

    /// The behaviour features decisions read.
    pub fn behavior(&self) -> &BehaviorInputs {
        &self.behavior
    }

    /// Replaces the behaviour features (new decide settings, resolved).
    pub(crate) fn set_behavior(&mut self, behavior: BehaviorInputs) {
        self.behavior = behavior;
    }
}

/// One request's user features, filled by the features system: read from
/// the store at the request's time when it has a user (`was_read`), or
/// every feature at its default (no user, or the store refused the read).
#[derive(Component, Clone, Debug, Default)]
pub struct UserFeatures {
    /// `None`: the pipeline has no store.
    pub(crate) values: Option<FeatureValues>,
    pub(crate) read: bool,
}

impl UserFeatures {
    /// A request's buffer: for `defs`' features, or none without a store.
    /// Allocates (once per pooled entity, at install).
    pub fn new(defs: Option<&Arc<Definitions>>) -> Self {
        Self {
            values: defs.map(|d| FeatureValues::new(d.clone())),
            read: false,
        }
    }

    /// The request's features: as read from the store, or every one at
    /// its default. `None` when the pipeline has no store.
    pub fn values(&self) -> Option<&FeatureValues> {
        self.values.as_ref()
    }

    /// Whether the features were read from the store for the request's
    /// user (false: no store, no user, or a read the store refused).
    pub fn was_read(&self) -> bool {
        self.read
    }

    /// The features when they were read from the store for the request's
    /// user; `None` otherwise (what decisions read: a request without a
    /// user decides as without a store).
    pub fn read(&self) -> Option<&FeatureValues> {
        self.values.as_ref().filter(|_| self.read)
    }

    /// Makes the buffer `row`, a store read for the request's user, by
    /// swapping the two (`row` gets the old buffer). Allocation-free.
    ///
    /// # Panics
    /// When `row` is of other definitions than the buffer: the pipeline
    /// makes both from its store's.
    pub fn take_read(&mut self, row: &mut FeatureValues) {
        if let Some(values) = self.values.as_mut() {
            assert!(
                Arc::ptr_eq(values.definitions(), row.definitions())
                    || values.definitions().id() == row.definitions().id(),
                "a request's feature buffer is swapped only with a row of its own definitions"
            );
            std::mem::swap(values, row);
            self.read = true;
        }
    }

    /// Makes the buffer every feature at its default at `now_ns`: what a
    /// request without a user (or whose read the store refused) reads.
    /// Allocation-free.
    pub fn set_unread(&mut self, now_ns: u64) {
        self.read = false;
        if let Some(values) = self.values.as_mut() {
            values.set_defaults(now_ns);
        }
    }
}
