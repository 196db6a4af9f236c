//! The posterior store as the pipeline holds it ([`PosteriorBackend`]):
//! this engine's own [`Posteriors`], or one store for all of a server's
//! engines ([`PosteriorHub`], reached through a [`SharedPosteriors`] per
//! engine), as [`super::hub`] describes.
//!
//! A refresh copies every arm (40 bytes each) into the replica's arrays,
//! allocating nothing while the arms stay the same; that is cheap next to
//! a tick for catalogs of thousands of offers, and keeps the hot path free
//! of locks.
//!
//! As key-value operations: an update is the per-arm script of
//! [`super::posteriors`] on the shared key space plus an `INCR` of a
//! version key; a refresh is a `GET` of the version key each tick and, when
//! it moved, an `MGET` of every arm.

use super::hub::{Hub, Learned, Replica, Replicate};
use super::posteriors::{Posterior, PosteriorStats, Posteriors};
use super::state::PosteriorRecord;
use crate::error::Result;

/// One posterior store for all of a server's engines.
pub type PosteriorHub = Hub<Posteriors>;

/// One engine's side of a [`PosteriorHub`].
pub type SharedPosteriors = Replica<Posteriors>;

/// The posterior store the pipeline uses: its own, or a shared one.
pub type PosteriorBackend = Learned<Posteriors>;

impl Replicate for Posteriors {
    fn copy_from(&mut self, from: &Self) {
        Posteriors::copy_from(self, from);
    }
}

impl PosteriorBackend {
    /// Records an impression ([`Posteriors::observe_impression`]).
    pub fn observe_impression(&mut self, offer: usize, p_model: f32, now_ns: u64) {
        self.update(|p| p.observe_impression(offer, p_model, now_ns));
    }

    /// Records a click ([`Posteriors::observe_click`]).
    pub fn observe_click(&mut self, offer: usize, now_ns: u64) {
        self.update(|p| p.observe_click(offer, now_ns));
    }

    /// The arm's counts at `now_ns` as decisions see them.
    pub fn posterior(&self, offer: usize, now_ns: u64) -> Posterior {
        self.view().posterior(offer, now_ns)
    }

    /// The counters of the store updates go to (the hub's, when shared).
    pub fn stats(&self) -> PosteriorStats {
        self.read_source(Posteriors::stats)
    }

    /// [`Posteriors::for_each_arm`] over the store updates go to.
    pub fn for_each_arm(&self, f: impl FnMut(u64, f64, f64, f64, u64)) {
        self.read_source(|p| p.for_each_arm(f));
    }

    /// Restores arms from a state file ([`Posteriors::restore_arm`]);
    /// a shared store is restored in the hub, for every engine. Returns
    /// the arms restored and those dropped (no such offer, bad counts).
    pub fn restore_arms(&mut self, arms: &[PosteriorRecord]) -> (u64, u64) {
        let restored = self.update(|p| {
            arms.iter()
                .map(|a| {
                    u64::from(p.restore_arm(
                        a.offer_id,
                        a.impressions,
                        a.clicks,
                        a.expected_clicks,
                        a.updated_ns,
                    ))
                })
                .sum::<u64>()
        });
        self.refresh();
        (restored, arms.len() as u64 - restored)
    }

    /// Resizes to the offers `offer_ids` (another catalog), carrying each
    /// offer's counts by its id ([`Posteriors::carried_to`]). A shared
    /// store is resized in the hub, for every engine.
    pub fn carry_to(&mut self, offer_ids: &[u64]) -> Result<()> {
        self.replace(|p| p.carried_to(offer_ids))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::PosteriorConfig;
    use std::sync::Arc;

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
        a.carry_to(&[2, 1]).expect("carried");
        assert_eq!(a.posterior(1, 0).impressions, 2.0, "id 1 moved");
        b.refresh();
        assert_eq!(b.posterior(1, 0).impressions, 2.0, "for every engine");
    }
}
