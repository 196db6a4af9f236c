//! What the engine learns of each offer's click rate, for Thompson
//! sampling (`docs/DECISIONS.md`, "Exploration"): the pipeline's
//! [`PosteriorBackend`] resource, reached here by offer id.
//!
//! Feedback enters through [`Engine::observe_impression`] and
//! [`Engine::observe_click`]; decisions read the store in the decide
//! stage. The store is the engine's own, or one hub shared by a server's
//! engines ([`EngineBuilder::shared_posteriors`](crate::EngineBuilder::shared_posteriors)),
//! whose updates every engine sees from its next tick on. This module holds
//! no state of its own: the store lives in the World, sized by the catalog
//! when the pipeline is installed.

use crate::engine::Engine;
use bevy_ecs::prelude::Mut;
use cx_domain::catalog::Catalog;
use cx_domain::store::{Posterior, PosteriorBackend, PosteriorStats};

impl Engine {
    /// The posterior store decisions read.
    pub fn posteriors(&self) -> &PosteriorBackend {
        self.world().resource::<PosteriorBackend>()
    }

    /// The posterior store, to update by catalog index
    /// ([`PosteriorBackend::observe_impression`]) or to resize.
    pub fn posteriors_mut(&mut self) -> Mut<'_, PosteriorBackend> {
        self.world_mut().resource_mut::<PosteriorBackend>()
    }

    /// One impression of offer `offer_id` at `now_ns` (the host's clock),
    /// for which the model predicted `p_model` (the decision's `p_click`).
    /// Returns false, changing nothing, when the catalog has no such offer;
    /// a `p_model` outside `[0, 1]` is refused and counted by the store.
    pub fn observe_impression(&mut self, offer_id: u64, p_model: f32, now_ns: u64) -> bool {
        let Some(i) = self.offer_index(offer_id) else {
            return false;
        };
        self.posteriors_mut().observe_impression(i, p_model, now_ns);
        true
    }

    /// One click on offer `offer_id` at `now_ns`. Returns false, changing
    /// nothing, when the catalog has no such offer.
    pub fn observe_click(&mut self, offer_id: u64, now_ns: u64) -> bool {
        let Some(i) = self.offer_index(offer_id) else {
            return false;
        };
        self.posteriors_mut().observe_click(i, now_ns);
        true
    }

    /// Offer `offer_id`'s counts as decisions at `now_ns` see them (a
    /// shared store's: as of this engine's last tick); `None` for an offer
    /// the catalog lacks.
    pub fn posterior(&self, offer_id: u64, now_ns: u64) -> Option<Posterior> {
        let i = self.offer_index(offer_id)?;
        Some(self.posteriors().posterior(i, now_ns))
    }

    /// The posterior store's counters.
    pub fn posterior_stats(&self) -> PosteriorStats {
        self.posteriors().stats()
    }

    fn offer_index(&self, offer_id: u64) -> Option<usize> {
        self.world().resource::<Catalog>().index_of(offer_id)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::EngineConfig;
    use crate::Engine;
    use cx_domain::store::{PosteriorConfig, PosteriorHub, Posteriors};
    use cx_features::RequestContext;
    use cx_systems::Exploration;
    use std::sync::Arc;

    const NOW_NS: u64 = 1_767_225_600_000_000_000;

    fn config(exploration: Exploration) -> EngineConfig {
        let mut config = EngineConfig::default();
        config.decide.exploration = exploration;
        config
    }

    /// Submits one request for each of `users` users in the USA and
    /// decides them all.
    fn decide_users(engine: &mut Engine, users: usize) {
        for k in 0..users {
            let ctx = RequestContext {
                user_id: format!("u{k}"),
                country: "USA".into(),
                ..RequestContext::default()
            };
            engine.submit(ctx).expect("room");
        }
        engine.run_until_decided(NOW_NS);
    }

    #[test]
    fn observations_by_offer_id_reach_the_store() {
        let mut engine = Engine::builder().build().expect("default engine");
        let id = engine.catalog().ids()[2];
        assert!(engine.observe_impression(id, 0.25, NOW_NS));
        assert!(engine.observe_click(id, NOW_NS));
        assert!(!engine.observe_impression(u64::MAX, 0.25, NOW_NS));
        let p = engine.posterior(id, NOW_NS).expect("a catalog offer");
        assert_eq!(
            (p.impressions, p.clicks, p.expected_clicks),
            (1.0, 1.0, 0.25)
        );
        assert_eq!(engine.posterior_stats().impressions, 1);
        assert_eq!(engine.posterior(u64::MAX, NOW_NS), None);
        // The config's half-life: a day.
        let later = engine
            .posterior(id, NOW_NS + 86_400_000_000_000)
            .expect("known");
        assert_eq!(later.impressions, 0.5);
    }

    #[test]
    fn engines_sharing_a_hub_see_each_others_feedback_from_their_next_tick() {
        let catalog = crate::load_catalog(None).expect("bundled catalog");
        let store =
            Posteriors::new(catalog.ids(), PosteriorConfig { half_life_s: 0.0 }).expect("store");
        let hub = Arc::new(PosteriorHub::new(store));
        let build = || {
            Engine::builder()
                .shared_posteriors(hub.clone())
                .build()
                .expect("engine on the hub")
        };
        let (mut a, mut b) = (build(), build());
        let id = catalog.ids()[0];
        a.observe_impression(id, 0.5, NOW_NS);
        assert_eq!(b.posterior(id, NOW_NS).map(|p| p.impressions), Some(0.0));
        b.tick(NOW_NS);
        assert_eq!(b.posterior(id, NOW_NS).map(|p| p.impressions), Some(1.0));
        assert_eq!(hub.lock().posterior(0, NOW_NS).impressions, 1.0);
        // A hub for another catalog is refused at build.
        let other = Posteriors::new(&[1, 2], PosteriorConfig { half_life_s: 0.0 }).expect("store");
        let err = Engine::builder()
            .shared_posteriors(Arc::new(PosteriorHub::new(other)))
            .build()
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains("posteriors"), "{err}");
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's test jail returns its own error type
    fn the_policy_is_read_from_toml_and_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "cx.toml",
                "[decide]\nexploration = \"epsilon_greedy\"\nepsilon = 0.2\n\
                 posterior_half_life_s = 60\n",
            )?;
            let path = std::path::Path::new("cx.toml");
            let config = EngineConfig::load(Some(path)).expect("loads");
            assert_eq!(config.decide.exploration, Exploration::EpsilonGreedy);
            assert_eq!(config.decide.epsilon, 0.2);
            assert_eq!(config.decide.posterior_half_life_s, 60.0);
            jail.set_env("CX_ENGINE_DECIDE__EXPLORATION", "none");
            jail.set_env("CX_ENGINE_DECIDE__PROPENSITY_SAMPLES", "32");
            let config = EngineConfig::load(Some(path)).expect("loads");
            assert_eq!(config.decide.exploration, Exploration::None);
            assert_eq!(config.decide.propensity_samples, 32);
            jail.set_env("CX_ENGINE_DECIDE__EXPLORATION", "greedy");
            let err = EngineConfig::load(Some(path)).unwrap_err().to_string();
            let named = err.to_lowercase().contains("decide.exploration");
            assert!(named && err.contains("thompson"), "{err}");
            jail.set_env("CX_ENGINE_DECIDE__EXPLORATION", "thompson");
            jail.set_env("CX_ENGINE_DECIDE__THOMPSON_PRIOR_IMPRESSIONS", "0");
            let err = EngineConfig::load(Some(path)).unwrap_err().to_string();
            assert!(err.contains("decide.thompson_prior_impressions"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_uniform_share_spreads_the_top_and_keeps_the_explanations_whole() {
        // The same requests decided with and without a uniform share: with
        // one, some tops are another offer (lifted by its bonus), every top
        // is still the sum of its factors and first by score, and the
        // propensities stay in (0, 1].
        let tops = |share: f32| {
            let mut config = config(Exploration::Thompson);
            config.decide.thompson_uniform_share = share;
            let mut engine = Engine::builder().config(config).build().expect("engine");
            decide_users(&mut engine, 400);
            let mut tops = Vec::new();
            for d in engine.drain() {
                assert!(
                    d.propensity > 0.0 && d.propensity <= 1.0,
                    "{}",
                    d.propensity
                );
                let offers = d.offers();
                let Some(top) = offers.first() else {
                    tops.push(None);
                    continue;
                };
                assert_eq!(top.score, top.factors.iter().sum::<f32>());
                assert!(offers.windows(2).all(|w| w[0].score >= w[1].score));
                tops.push(Some(top.offer_id));
            }
            tops
        };
        let (without, with) = (tops(0.0), tops(0.5));
        assert_eq!(without.len(), 400);
        assert_eq!(with.len(), 400);
        let moved = without.iter().zip(&with).filter(|(a, b)| a != b).count();
        // Half the decisions are uniform choices among about 8 offers.
        assert!(moved > 100, "{moved} of 400 tops moved");
    }

    #[test]
    fn every_decision_carries_its_propensity() {
        for (exploration, exact_one) in [
            (Exploration::None, true),
            (Exploration::EpsilonGreedy, false),
            (Exploration::Thompson, false),
        ] {
            let mut engine = Engine::builder()
                .config(config(exploration))
                .build()
                .expect("engine");
            decide_users(&mut engine, 40);
            let mut decided = 0;
            for d in engine.drain() {
                decided += 1;
                assert!(
                    d.propensity > 0.0 && d.propensity <= 1.0,
                    "{exploration:?}: {}",
                    d.propensity
                );
                if exact_one || d.offers().is_empty() {
                    assert_eq!(d.propensity, 1.0, "{exploration:?}");
                }
            }
            assert_eq!(decided, 40);
        }
    }
}
