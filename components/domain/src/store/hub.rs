//! What the pipeline learns, held by one engine or shared by a server's
//! engines: a store of its own ([`Learned::Local`]), or one [`Hub`] for
//! every engine read through a [`Replica`] per engine
//! ([`Learned::Shared`]). The click posteriors and the creative variants'
//! counts are held this way.
//!
//! Updates go to the hub under its mutex; each engine decides from a
//! local replica that it refreshes at most once per tick, and only when
//! the hub's version moved. Decisions lag feedback by at most one tick and
//! never take the lock per request. A refresh copies the whole store
//! ([`Replicate::copy_from`], no allocation while its shape stays), so
//! this suits stores of a few bytes per offer; a store of thousands of
//! keyed entries is sharded instead (the win rates, the frequency caps).
//!
//! As key-value operations: an update is the store's own script on the
//! shared key space plus an `INCR` of a version key; a refresh is a `GET`
//! of the version key each tick and, when it moved, an `MGET` of the store.

use crate::error::Result;
use bevy_ecs::prelude::Resource;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// A store that a replica can copy from its hub.
pub trait Replicate: Clone {
    /// Makes `self` equal to `from`, reusing `self`'s allocations when the
    /// two have the same shape.
    fn copy_from(&mut self, from: &Self);
}

/// One store for all of a server's engines: the store behind a mutex, and
/// a version that moves with every update, so that a replica knows without
/// locking whether it is behind.
#[derive(Debug)]
pub struct Hub<T> {
    store: Mutex<T>,
    version: AtomicU64,
}

impl<T> Hub<T> {
    /// A hub holding `store`.
    pub fn new(store: T) -> Self {
        Self {
            store: Mutex::new(store),
            version: AtomicU64::new(0),
        }
    }

    /// The store, locked. A panic while it was held (a bug) leaves counts
    /// that are still counts, so the store stays usable.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many updates the store has taken.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Updates the store under its lock and moves its version.
    pub fn update<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let mut store = self.lock();
        let out = f(&mut store);
        self.version.fetch_add(1, Ordering::Release);
        out
    }
}

/// One engine's side of a [`Hub`]: updates go to the hub, reads come from
/// a replica refreshed by [`Self::refresh`] (once per tick).
#[derive(Clone, Debug)]
pub struct Replica<T> {
    hub: Arc<Hub<T>>,
    replica: T,
    /// The hub's version the replica was copied at.
    replica_version: u64,
}

impl<T: Replicate> Replica<T> {
    /// A handle on `hub`, its replica a copy of the hub's store now.
    pub fn new(hub: Arc<Hub<T>>) -> Self {
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
    pub fn hub(&self) -> &Arc<Hub<T>> {
        &self.hub
    }

    /// The replica, as of the last [`Self::refresh`].
    pub fn view(&self) -> &T {
        &self.replica
    }

    /// Copies the hub's store into the replica if it changed since the
    /// last copy; returns whether it copied.
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

impl<T> PartialEq for Replica<T> {
    /// The same hub (clones of one handle), not equal contents.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.hub, &other.hub)
    }
}

/// A learned store as the pipeline holds it. See the [module docs](self).
#[allow(clippy::large_enum_variant)] // one per World, never moved after install
#[derive(Resource, Clone, Debug, PartialEq)]
pub enum Learned<T: Replicate + Send + Sync + 'static> {
    /// This engine's own store.
    Local(T),
    /// One store shared by the process's engines, read through a replica.
    Shared(Replica<T>),
}

impl<T: Replicate + Send + Sync + 'static> Learned<T> {
    /// A handle on `hub`, or a store of its own when there is none.
    pub fn from_hub(hub: Option<&Arc<Hub<T>>>, own: impl FnOnce() -> T) -> Self {
        match hub {
            Some(hub) => Self::Shared(Replica::new(Arc::clone(hub))),
            None => Self::Local(own()),
        }
    }

    /// Applies an update to the store updates go to (the hub, when
    /// shared: this engine reads it from its next refresh).
    pub fn update<R>(&mut self, f: impl FnOnce(&mut T) -> R) -> R {
        match self {
            Self::Local(store) => f(store),
            Self::Shared(s) => s.hub.update(f),
        }
    }

    /// What decisions read: the store itself, or the shared store's
    /// replica as of the last [`Self::refresh`].
    pub fn view(&self) -> &T {
        match self {
            Self::Local(store) => store,
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

    /// Reads the store updates go to (the hub's, locked, when shared).
    pub fn read_source<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        match self {
            Self::Local(store) => f(store),
            Self::Shared(s) => f(&s.hub.lock()),
        }
    }

    /// Replaces the store updates go to with what `f` makes of it, under
    /// one lock when shared (for every engine; this one's replica catches
    /// up at once). On an error nothing changes.
    pub fn replace(&mut self, f: impl FnOnce(&T) -> Result<T>) -> Result<()> {
        match self {
            Self::Local(store) => *store = f(store)?,
            Self::Shared(s) => {
                s.hub.update(|store| f(store).map(|next| *store = next))?;
                s.refresh();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    struct Counts(Vec<u32>);

    impl Replicate for Counts {
        fn copy_from(&mut self, from: &Self) {
            self.0.clone_from(&from.0);
        }
    }

    #[test]
    fn updates_reach_other_replicas_at_their_next_refresh_only() {
        let hub = Arc::new(Hub::new(Counts(vec![0; 2])));
        let mut a = Learned::from_hub(Some(&hub), || unreachable!("shared"));
        let mut b = Learned::from_hub(Some(&hub), || unreachable!("shared"));
        a.update(|c| c.0[0] += 1);
        b.update(|c| c.0[1] += 2);
        assert_eq!(a.view().0, [0, 0], "not yet refreshed");
        assert_eq!(a.read_source(|c| c.0.clone()), [1, 2], "the hub has both");
        a.refresh();
        b.refresh();
        assert_eq!(
            (a.view(), b.view()),
            (&Counts(vec![1, 2]), &Counts(vec![1, 2]))
        );
        assert_eq!(hub.version(), 2);
        let Learned::Shared(mut replica) = a.clone() else {
            unreachable!("shared")
        };
        assert!(!replica.refresh(), "nothing new");
        assert_eq!(a, b, "the same hub");
    }

    #[test]
    fn replace_changes_every_engine_or_nothing() {
        let hub = Arc::new(Hub::new(Counts(vec![3])));
        let mut a = Learned::from_hub(Some(&hub), || unreachable!("shared"));
        let mut b = Learned::from_hub(Some(&hub), || unreachable!("shared"));
        a.replace(|c| Ok(Counts(vec![c.0[0], 7])))
            .expect("replaced");
        assert_eq!(a.view().0, [3, 7], "this engine at once");
        b.refresh();
        assert_eq!(b.view().0, [3, 7], "another at its next refresh");
        let refused = a.replace(|_| {
            Err(crate::Error::BadStoreConfig {
                store: "test",
                reason: "no".into(),
            })
        });
        assert!(refused.is_err());
        assert_eq!(hub.lock().0, [3, 7], "unchanged");
        let mut own = Learned::from_hub(None, || Counts(vec![1]));
        own.update(|c| c.0[0] += 1);
        own.refresh();
        assert_eq!(own.view().0, [2]);
        assert!(matches!(own, Learned::Local(_)));
    }
}
