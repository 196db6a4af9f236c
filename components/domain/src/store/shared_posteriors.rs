//! The posterior store as the pipeline holds it ([`PosteriorBackend`]):
//! this engine's own [`Posteriors`], or one store for all of a server's
//! engines ([`PosteriorHub`], reached through a [`SharedPosteriors`] per
//! engine).
//!
//! Updates go to the shared store under its mutex, and each engine decides
//! from a local replica that it refreshes at most once per tick, only when
//! the shared store's version moved: decisions lag feedback by at most one
//! tick, and never take the lock per request. A refresh copies every arm
//! (40 bytes each) into the replica's arrays, allocating nothing while the
//! arms stay the same; that is cheap next to a tick for catalogs of
//! thousands of offers, and keeps the hot path free of locks.
//!
//! As key-value operations: an update is the per-arm script of
//! [`super::posteriors`] on the shared key space plus an `INCR` of a
//! version key; a refresh is a `GET` of the version key each tick and, when
//! it moved, an `MGET` of every arm.

use super::posteriors::{Posterior, PosteriorStats, Posteriors};
use super::state::PosteriorRecord;
use crate::error::Result;
use bevy_ecs::prelude::Resource;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// One store for all of a server's engines: the store behind a mutex, and
/// a version that moves with every update, so that an engine's replica
/// knows without locking whether it is behind.
#[derive(Debug)]
pub struct PosteriorHub {
    posteriors: Mutex<Posteriors>,
    version: AtomicU64,
}

impl PosteriorHub {
    /// A hub holding `posteriors`.
    pub fn new(posteriors: Posteriors) -> Self {
        Self {
            posteriors: Mutex::new(posteriors),
            version: AtomicU64::new(0),
        }
    }

    /// The store, locked. A panic while it was held (a bug) leaves counts
    /// that are still counts, so the store stays usable.
    pub fn lock(&self) -> MutexGuard<'_, Posteriors> {
        self.posteriors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// How many updates the store has taken.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Updates the store under its lock and moves its version.
    fn update(&self, f: impl FnOnce(&mut Posteriors)) {
        let mut store = self.lock();
        f(&mut store);
        self.version.fetch_add(1, Ordering::Release);
    }
}

/// One engine's side of a [`PosteriorHub`]: updates go to the hub, reads
/// come from a replica refreshed by [`Self::refresh`] (once per tick).
#[derive(Clone, Debug)]
pub struct SharedPosteriors {
    hub: Arc<PosteriorHub>,
    replica: Posteriors,
    /// The hub's version the replica was copied at.
    replica_version: u64,
}

impl SharedPosteriors {
    /// A handle on `hub`, its replica a copy of the hub's store now.
    pub fn new(hub: Arc<PosteriorHub>) -> Self {
        let (replica, replica_version) = {
            let store = hub.lock();
            (store.clone(), hub.version())
        };
        Self {
            hub,
            replica,
            replica_version,
        }
    }

    /// The shared hub.
    pub fn hub(&self) -> &Arc<PosteriorHub> {
        &self.hub
    }

    /// Copies the hub's store into the replica if it changed since the
    /// last copy; returns whether it copied. No allocation while the arms
    /// stay the same.
    pub fn refresh(&mut self) -> bool {
        if self.hub.version() == self.replica_version {
            return false;
        }
        let store = self.hub.lock();
        // Read under the lock: the copy holds every update up to it.
        self.replica_version = self.hub.version();
        self.replica.copy_from(&store);
        true
    }
}

impl PartialEq for SharedPosteriors {
    /// The same hub (clones of one handle), not equal contents.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.hub, &other.hub)
    }
}

/// The posterior store the pipeline uses.
#[allow(clippy::large_enum_variant)] // one per World, never moved after install
#[derive(Resource, Clone, Debug, PartialEq)]
pub enum PosteriorBackend {
    /// This engine's own store.
    Local(Posteriors),
    /// One store shared by the process's engines, read through a replica.
    Shared(SharedPosteriors),
}

impl PosteriorBackend {
    /// Records an impression ([`Posteriors::observe_impression`]).
    pub fn observe_impression(&mut self, offer: usize, p_model: f32, now_ns: u64) {
        match self {
            Self::Local(p) => p.observe_impression(offer, p_model, now_ns),
            Self::Shared(s) => s
                .hub
                .update(|p| p.observe_impression(offer, p_model, now_ns)),
        }
    }

    /// Records a click ([`Posteriors::observe_click`]).
    pub fn observe_click(&mut self, offer: usize, now_ns: u64) {
        match self {
            Self::Local(p) => p.observe_click(offer, now_ns),
            Self::Shared(s) => s.hub.update(|p| p.observe_click(offer, now_ns)),
        }
    }

    /// What decisions read: the store itself, or the shared store's
    /// replica as of the last [`Self::refresh`].
    pub fn view(&self) -> &Posteriors {
        match self {
            Self::Local(p) => p,
            Self::Shared(s) => &s.replica,
        }
    }

    /// Once per tick, before deciding: a shared store's replica catches up
    /// when the hub changed. Nothing for a local store.
    pub fn refresh(&mut self) {
        if let Self::Shared(s) = self {
            s.refresh();
        }
    }

    /// The arm's counts at `now_ns` as decisions see them.
    pub fn posterior(&self, offer: usize, now_ns: u64) -> Posterior {
        self.view().posterior(offer, now_ns)
    }

    /// The counters of the store updates go to (the hub's, when shared).
    pub fn stats(&self) -> PosteriorStats {
        match self {
            Self::Local(p) => p.stats(),
            Self::Shared(s) => s.hub.lock().stats(),
        }
    }

    /// [`Posteriors::for_each_arm`] over the store updates go to.
    pub fn for_each_arm(&self, f: impl FnMut(u64, f64, f64, f64, u64)) {
        match self {
            Self::Local(p) => p.for_each_arm(f),
            Self::Shared(s) => s.hub.lock().for_each_arm(f),
        }
    }

    /// Restores arms from a state file ([`Posteriors::restore_arm`]);
    /// a shared store is restored in the hub, for every engine. Returns
    /// the arms restored and those dropped (no such offer, bad counts).
    pub fn restore_arms(&mut self, arms: &[PosteriorRecord]) -> (u64, u64) {
        let mut restored = 0;
        let mut put = |p: &mut Posteriors| {
            for a in arms {
                restored += u64::from(p.restore_arm(
                    a.offer_id,
                    a.impressions,
                    a.clicks,
                    a.expected_clicks,
                    a.updated_ns,
                ));
            }
        };
        match self {
            Self::Local(p) => put(p),
            Self::Shared(s) => {
                {
                    let mut store = s.hub.lock();
                    put(&mut store);
                    s.hub.version.fetch_add(1, Ordering::Release);
                }
                s.refresh();
            }
        }
        (restored, arms.len() as u64 - restored)
    }

    /// Resizes to the offers `offer_ids` (another catalog), carrying each
    /// offer's counts by its id ([`Posteriors::carried_to`]). A shared
    /// store is resized in the hub, for every engine.
    pub fn carry_to(&mut self, offer_ids: &[u64]) -> Result<()> {
        match self {
            Self::Local(p) => *p = p.carried_to(offer_ids)?,
            Self::Shared(s) => {
                {
                    let mut store = s.hub.lock();
                    *store = store.carried_to(offer_ids)?;
                    s.hub.version.fetch_add(1, Ordering::Release);
                }
                s.refresh();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::PosteriorConfig;

    fn store(arms: usize) -> Posteriors {
        let ids: Vec<u64> = (1..=arms as u64).collect();
        Posteriors::new(&ids, PosteriorConfig { half_life_s: 0.0 }).expect("valid store")
    }

    #[test]
    fn shared_updates_reach_replicas_at_their_next_refresh() {
        let hub = Arc::new(PosteriorHub::new(store(2)));
        let mut a = PosteriorBackend::Shared(SharedPosteriors::new(hub.clone()));
        let mut b = PosteriorBackend::Shared(SharedPosteriors::new(hub.clone()));
        a.observe_impression(0, 0.5, 0);
        b.observe_impression(0, 0.5, 0);
        b.observe_click(0, 0);
        assert_eq!(a.posterior(0, 0), Posterior::default(), "not yet refreshed");
        a.refresh();
        b.refresh();
        for engine in [&a, &b] {
            let p = engine.posterior(0, 0);
            assert_eq!((p.impressions, p.clicks), (2.0, 1.0));
        }
        assert_eq!(a.stats().impressions, 2);
        assert_eq!(hub.version(), 3);
        let PosteriorBackend::Shared(mut s) = a else {
            unreachable!()
        };
        assert!(!s.refresh(), "nothing new");
        a = PosteriorBackend::Shared(s);
        a.carry_to(&[2, 1]).expect("carried");
        assert_eq!(a.posterior(1, 0).impressions, 2.0, "id 1 moved");
        b.refresh();
        assert_eq!(b.posterior(1, 0).impressions, 2.0, "for every engine");
    }
}
