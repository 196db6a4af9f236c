//! What the engine has learned of each offer's click rate: discounted
//! impression, click and expected-click counts per arm, for Thompson
//! sampling (`docs/DECISIONS.md`, "Exploration").
//!
//! An **arm** is what a posterior is kept for. Today an arm is a catalog
//! offer and its index is the offer's catalog index; creative variants
//! will add arms per offer (`(offer, variant)` laid out flat, variant 0 for
//! the offer's own creative), through [`Posteriors::new`] alone.
//!
//! Per arm the store keeps, discounted:
//! - `impressions` (`n`): impressions observed;
//! - `clicks` (`s`): clicks observed, never more than `n`;
//! - `expected_clicks` (`e`): the sum of the model's click probability at
//!   each of those impressions, so `e / n` is the model's mean prediction
//!   on the arm's own traffic, and `s / e` how far the model is off there;
//! - the time they were last discounted.
//!
//! **Discounting.** With a half-life `h` (`half_life_s`, 0: none), counts
//! decay by `0.5^(dt / h)` over `dt`: an observation weighs half as much
//! `h` later, so the posterior follows an offer whose appeal changes.
//! Every update first decays the arm's counts to its time, then adds to
//! them; a read ([`Posteriors::posterior`]) computes the same decay
//! without storing it, so reads change nothing and the store's state (and
//! every read) depends only on the order of the updates and their times. A
//! time before the arm's last update decays nothing (a clock that steps
//! back never adds weight).
//!
//! **Sharing.** [`PosteriorBackend`](super::PosteriorBackend) is how the
//! pipeline holds the store:
//! its own, or one store for all of a server's engines
//! ([`super::shared_posteriors`]).
//!
//! # As key-value operations
//!
//! One key per arm, its value the four numbers (32 bytes):
//!
//! | operation | key | key-value form |
//! | --- | --- | --- |
//! | [`Posteriors::observe_impression`] | arm | a script: decay the value to `now`, add 1 to `n` and `p` to `e` |
//! | [`Posteriors::observe_click`] | arm | a script: decay the value to `now`, add `min(1, n - s)` to `s` |
//! | [`Posteriors::posterior`] | arm | `GET`, decayed by the reader |
//! | [`SharedPosteriors::refresh`](super::SharedPosteriors::refresh) | all arms | `MGET` of every arm when a version key moved, once per tick |
//!
//! # Layout
//!
//! Structure of arrays, one flat `f64` array per counter and one `u64`
//! array of times, indexed by arm, all allocated in [`Posteriors::new`]
//! (40 bytes per arm with the arm's offer id). Counts are `f64`: they are
//! fractional once discounted, and a sum of millions of probabilities
//! keeps its precision. The decide step reads the three counters of each
//! eligible offer, three lines apart, which for catalogs of at most a few
//! hundred offers stay in L1; an array of per-arm structs would touch one
//! line instead, and cost a copy of unused fields on every replica refresh
//! no less.

use crate::catalog::limits::OFFERS_MAX;
use crate::error::{Error, Result};

const STORE: &str = "posterior store";

/// Longest half-life accepted, seconds (ten years).
pub const HALF_LIFE_S_MAX: f64 = 10.0 * 365.0 * 86_400.0;

const NS_PER_S: f64 = 1e9;

/// How a [`Posteriors`] store discounts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PosteriorConfig {
    /// Half-life of an observation's weight, seconds; 0: no discounting.
    pub half_life_s: f64,
}

impl PosteriorConfig {
    /// Checks the half-life: finite, in `[0, HALF_LIFE_S_MAX]`.
    pub fn validate(&self) -> Result<()> {
        if (0.0..=HALF_LIFE_S_MAX).contains(&self.half_life_s) {
            Ok(())
        } else {
            Err(Error::BadStoreConfig {
                store: STORE,
                reason: format!(
                    "half_life_s {} is not in [0, {HALF_LIFE_S_MAX}]",
                    self.half_life_s
                ),
            })
        }
    }
}

/// One arm's discounted counts at a time ([`Posteriors::posterior`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Posterior {
    /// Impressions `n`.
    pub impressions: f64,
    /// Clicks `s`, at most `n`.
    pub clicks: f64,
    /// The sum `e` of the model's click probability at those impressions.
    pub expected_clicks: f64,
}

impl Posterior {
    /// The model's mean prediction on the arm's impressions, `e / n`, in
    /// `[0, 1]`; `None` before any impression (or when all have decayed to
    /// nothing).
    pub fn mean_p_model(&self) -> Option<f64> {
        (self.impressions > 0.0).then(|| (self.expected_clicks / self.impressions).clamp(0.0, 1.0))
    }

    /// The Beta posterior of the arm's click rate with the model as its
    /// prior (`docs/DECISIONS.md`, "Thompson sampling"): the prior's mean
    /// is `m`, the model's mean prediction on the arm's impressions
    /// (`p_request`, the request's own prediction, before any), worth
    /// `prior_impressions` impressions. Returns `(alpha, beta, m)`:
    /// `Beta(k m + s, k (1 - m) + n - s)`. `m` is kept in
    /// `[M_MIN, 1 - M_MIN]` so that both parameters stay positive.
    pub fn beta(&self, prior_impressions: f64, p_request: f32) -> (f64, f64, f64) {
        let m = self
            .mean_p_model()
            .unwrap_or(f64::from(p_request))
            .clamp(M_MIN, 1.0 - M_MIN);
        let failures = (self.impressions - self.clicks).max(0.0);
        (
            prior_impressions * m + self.clicks,
            prior_impressions * (1.0 - m) + failures,
            m,
        )
    }
}

/// Smallest prior mean [`Posterior::beta`] uses (and `1 - M_MIN` the
/// largest).
pub const M_MIN: f64 = 1e-6;

/// What a store has taken since it was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PosteriorStats {
    /// Impressions observed.
    pub impressions: u64,
    /// Clicks observed.
    pub clicks: u64,
    /// Clicks that found less than one impression without a click (its
    /// impression decayed, or was never observed): they converted what was
    /// left, so that clicks never exceed impressions.
    pub clicks_clamped: u64,
    /// Observations refused: an arm outside the store, or a model
    /// probability that is not a finite number in `[0, 1]`. They changed
    /// nothing.
    pub refused: u64,
}

/// Discounted counts per arm. See the [module docs](self).
#[derive(Clone, Debug, PartialEq)]
pub struct Posteriors {
    /// The offer id of each arm, for carrying counts to another catalog.
    offer_ids: Box<[u64]>,
    impressions: Box<[f64]>,
    clicks: Box<[f64]>,
    expected_clicks: Box<[f64]>,
    /// When each arm's counts were last decayed, host ns.
    updated_ns: Box<[u64]>,
    /// Half-life in ns; 0: none.
    half_life_ns: f64,
    stats: PosteriorStats,
}

impl Posteriors {
    /// An empty store with one arm per offer of `offer_ids` (a catalog's
    /// ids, in catalog order). Fails, naming the problem, for more than the
    /// catalog's `OFFERS_MAX` arms or a bad half-life.
    pub fn new(offer_ids: &[u64], config: PosteriorConfig) -> Result<Self> {
        config.validate()?;
        if offer_ids.len() > OFFERS_MAX {
            return Err(Error::BadStoreConfig {
                store: STORE,
                reason: format!("{} arms, more than {OFFERS_MAX}", offer_ids.len()),
            });
        }
        let arms = offer_ids.len();
        Ok(Self {
            offer_ids: offer_ids.into(),
            impressions: vec![0.0; arms].into(),
            clicks: vec![0.0; arms].into(),
            expected_clicks: vec![0.0; arms].into(),
            updated_ns: vec![0; arms].into(),
            half_life_ns: config.half_life_s * NS_PER_S,
            stats: PosteriorStats::default(),
        })
    }

    /// A store for the offers `offer_ids` (another catalog) with the same
    /// discounting, each arm carrying the counts of this store's arm with
    /// the same offer id, and new offers starting empty. The one place a
    /// store changes size. The statistics carry over.
    pub fn carried_to(&self, offer_ids: &[u64]) -> Result<Self> {
        let mut next = Self::new(
            offer_ids,
            PosteriorConfig {
                half_life_s: self.half_life_ns / NS_PER_S,
            },
        )?;
        for (to, id) in offer_ids.iter().enumerate() {
            if let Some(from) = self.offer_ids.iter().position(|o| o == id) {
                next.impressions[to] = self.impressions[from];
                next.clicks[to] = self.clicks[from];
                next.expected_clicks[to] = self.expected_clicks[from];
                next.updated_ns[to] = self.updated_ns[from];
            }
        }
        next.stats = self.stats;
        Ok(next)
    }

    /// Arms held.
    pub fn arms(&self) -> usize {
        self.offer_ids.len()
    }

    /// The offer id of each arm.
    #[inline]
    pub fn offer_ids(&self) -> &[u64] {
        &self.offer_ids
    }

    /// The half-life, seconds (0: none).
    pub fn half_life_s(&self) -> f64 {
        self.half_life_ns / NS_PER_S
    }

    /// Counters since the store was made.
    pub fn stats(&self) -> PosteriorStats {
        self.stats
    }

    /// One impression of `offer` at `now_ns`, for which the model predicted
    /// `p_model`. Refused (counted, nothing changed) for an offer outside
    /// the store or a `p_model` that is not a finite number in `[0, 1]`.
    pub fn observe_impression(&mut self, offer: usize, p_model: f32, now_ns: u64) {
        if offer >= self.arms() || !(0.0..=1.0).contains(&p_model) {
            self.stats.refused += 1;
            return;
        }
        self.decay_to(offer, now_ns);
        self.impressions[offer] += 1.0;
        self.expected_clicks[offer] += f64::from(p_model);
        self.stats.impressions += 1;
    }

    /// One click on `offer` at `now_ns`: one impression without a click
    /// becomes one with a click. When less than one is left (its impression
    /// decayed or was never observed) the click converts what is left and is
    /// counted in [`PosteriorStats::clicks_clamped`], so clicks never exceed
    /// impressions and no count goes negative. Refused for an offer outside
    /// the store.
    pub fn observe_click(&mut self, offer: usize, now_ns: u64) {
        if offer >= self.arms() {
            self.stats.refused += 1;
            return;
        }
        self.decay_to(offer, now_ns);
        let without_click = self.impressions[offer] - self.clicks[offer];
        if without_click < 1.0 {
            self.stats.clicks_clamped += 1;
        }
        self.clicks[offer] += without_click.clamp(0.0, 1.0);
        self.stats.clicks += 1;
    }

    /// The arm's counts at `now_ns`, decayed to then (the store is not
    /// changed). An offer outside the store reads as no data.
    #[inline]
    pub fn posterior(&self, offer: usize, now_ns: u64) -> Posterior {
        if offer >= self.arms() {
            return Posterior::default();
        }
        let counts = [
            self.impressions[offer],
            self.clicks[offer],
            self.expected_clicks[offer],
        ];
        if counts == [0.0; 3] {
            // No data: nothing to decay (and no exp2 of a long time to
            // underflow slowly).
            return Posterior::default();
        }
        let f = self.decay_factor(offer, now_ns);
        Posterior {
            impressions: self.impressions[offer] * f,
            clicks: self.clicks[offer] * f,
            expected_clicks: self.expected_clicks[offer] * f,
        }
    }

    /// The arm's counts as stored (not decayed) and when they were last
    /// decayed: what [`Self::posterior`] is a function of, with `now_ns`
    /// and the half-life (so a reader may cache what it derives from them).
    /// `None` for an offer outside the store.
    #[inline]
    pub fn stored(&self, offer: usize) -> Option<(Posterior, u64)> {
        (offer < self.arms()).then(|| {
            let counts = Posterior {
                impressions: self.impressions[offer],
                clicks: self.clicks[offer],
                expected_clicks: self.expected_clicks[offer],
            };
            (counts, self.updated_ns[offer])
        })
    }

    /// Calls `f(offer id, impressions, clicks, expected clicks, updated
    /// ns)` for every arm with data, undecayed (for a state file).
    pub fn for_each_arm(&self, mut f: impl FnMut(u64, f64, f64, f64, u64)) {
        for i in (0..self.arms()).filter(|&i| self.impressions[i] > 0.0) {
            f(
                self.offer_ids[i],
                self.impressions[i],
                self.clicks[i],
                self.expected_clicks[i],
                self.updated_ns[i],
            );
        }
    }

    /// Sets the counts of the arm of offer id `offer_id` (restoring a state
    /// file); false when no arm has that id or the counts are not finite
    /// and ordered (`0 <= clicks <= impressions`, `expected <= impressions`).
    pub fn restore_arm(
        &mut self,
        offer_id: u64,
        impressions: f64,
        clicks: f64,
        expected_clicks: f64,
        updated_ns: u64,
    ) -> bool {
        let ordered = impressions.is_finite()
            && (0.0..=impressions).contains(&clicks)
            && (0.0..=impressions).contains(&expected_clicks);
        let Some(i) = self.offer_ids.iter().position(|&o| o == offer_id) else {
            return false;
        };
        if !ordered {
            return false;
        }
        self.impressions[i] = impressions;
        self.clicks[i] = clicks;
        self.expected_clicks[i] = expected_clicks;
        self.updated_ns[i] = updated_ns;
        true
    }

    /// Makes `self` a copy of `other` (a replica refresh): no allocation
    /// when both hold as many arms.
    pub fn copy_from(&mut self, other: &Self) {
        if self.arms() != other.arms() {
            *self = other.clone();
            return;
        }
        self.offer_ids.copy_from_slice(&other.offer_ids);
        self.impressions.copy_from_slice(&other.impressions);
        self.clicks.copy_from_slice(&other.clicks);
        self.expected_clicks.copy_from_slice(&other.expected_clicks);
        self.updated_ns.copy_from_slice(&other.updated_ns);
        self.half_life_ns = other.half_life_ns;
        self.stats = other.stats;
    }

    /// `0.5^(dt / half_life)` for the time since the arm's last update; 1
    /// without discounting, or when `now_ns` is not later.
    #[inline]
    fn decay_factor(&self, offer: usize, now_ns: u64) -> f64 {
        let dt_ns = now_ns.saturating_sub(self.updated_ns[offer]);
        if self.half_life_ns == 0.0 || dt_ns == 0 {
            return 1.0;
        }
        (-(dt_ns as f64) / self.half_life_ns).exp2()
    }

    /// Decays the arm's counts to `now_ns` and moves its time there (never
    /// back).
    fn decay_to(&mut self, offer: usize, now_ns: u64) {
        let f = self.decay_factor(offer, now_ns);
        if f != 1.0 {
            self.impressions[offer] *= f;
            self.clicks[offer] *= f;
            self.expected_clicks[offer] *= f;
        }
        self.updated_ns[offer] = self.updated_ns[offer].max(now_ns);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn store(arms: usize, half_life_s: f64) -> Posteriors {
        let ids: Vec<u64> = (1..=arms as u64).collect();
        Posteriors::new(&ids, PosteriorConfig { half_life_s }).expect("valid store")
    }

    #[test]
    fn counts_halve_every_half_life_exactly() {
        let mut p = store(2, 10.0);
        for _ in 0..4 {
            p.observe_impression(0, 0.25, 0);
        }
        p.observe_click(0, 0);
        let at = |t_s: u64| p.posterior(0, t_s * S);
        assert_eq!(
            at(0),
            Posterior {
                impressions: 4.0,
                clicks: 1.0,
                expected_clicks: 1.0
            }
        );
        assert_eq!(
            at(10),
            Posterior {
                impressions: 2.0,
                clicks: 0.5,
                expected_clicks: 0.5
            }
        );
        assert_eq!(at(20).impressions, 1.0);
        assert_eq!(at(30).clicks, 0.125);
        assert_eq!(
            at(20).mean_p_model(),
            Some(0.25),
            "the ratio does not decay"
        );
        // A read changes nothing; an update decays first, then adds.
        p.observe_impression(0, 0.5, 10 * S);
        assert_eq!(
            p.posterior(0, 10 * S),
            Posterior {
                impressions: 3.0,
                clicks: 0.5,
                expected_clicks: 1.0
            }
        );
        assert_eq!(p.posterior(0, 20 * S).impressions, 1.5);
        // The other arm never moved.
        assert_eq!(p.posterior(1, 20 * S), Posterior::default());
        assert_eq!(p.posterior(1, 20 * S).mean_p_model(), None);
    }

    #[test]
    fn without_a_half_life_nothing_decays_and_time_never_runs_back() {
        let mut p = store(1, 0.0);
        p.observe_impression(0, 0.1, 1_000 * S);
        assert_eq!(p.posterior(0, u64::MAX).impressions, 1.0);
        let mut d = store(1, 1.0);
        d.observe_impression(0, 0.1, 5 * S);
        // Earlier than the last update: no decay, and no weight added.
        assert_eq!(d.posterior(0, S).impressions, 1.0);
        d.observe_impression(0, 0.1, S);
        assert_eq!(d.posterior(0, 5 * S).impressions, 2.0);
        assert_eq!(d.posterior(0, 6 * S).impressions, 1.0);
    }

    #[test]
    fn clicks_never_exceed_impressions() {
        let mut p = store(1, 1.0);
        p.observe_click(0, 0);
        assert_eq!(p.posterior(0, 0).clicks, 0.0, "no impression to convert");
        p.observe_impression(0, 0.5, 0);
        p.observe_click(0, 0);
        p.observe_click(0, 0);
        let now = p.posterior(0, 0);
        assert_eq!((now.impressions, now.clicks), (1.0, 1.0));
        // A half-life later (1, 1) is (0.5, 0.5); one more impression leaves
        // exactly one without a click, which the next click takes.
        p.observe_impression(0, 0.5, S);
        p.observe_click(0, S);
        let later = p.posterior(0, S);
        assert_eq!((later.impressions, later.clicks), (1.5, 1.5));
        p.observe_click(0, 2 * S);
        let last = p.posterior(0, 2 * S);
        assert_eq!((last.impressions, last.clicks), (0.75, 0.75));
        assert_eq!(p.stats().clicks, 5);
        assert_eq!(p.stats().clicks_clamped, 3);
    }

    #[test]
    fn bad_observations_are_refused_and_change_nothing() {
        let mut p = store(2, 0.0);
        let before = p.clone();
        p.observe_impression(2, 0.5, 0);
        p.observe_impression(0, f32::NAN, 0);
        p.observe_impression(0, 1.5, 0);
        p.observe_impression(0, -0.1, 0);
        p.observe_click(9, 0);
        assert_eq!(p.stats().refused, 5);
        assert_eq!(p.posterior(0, 0), before.posterior(0, 0));
        assert_eq!(p.posterior(7, 0), Posterior::default());
    }

    #[test]
    fn the_state_depends_only_on_the_calls_and_their_times() {
        let run = || {
            let mut p = store(3, 7.5);
            for k in 0..200u64 {
                let offer = (k % 3) as usize;
                p.observe_impression(offer, 0.01 * (k % 50) as f32, k * S / 3);
                if k % 7 == 0 {
                    p.observe_click(offer, k * S / 3 + 1);
                }
                // Reads in between change nothing.
                let _ = p.posterior(offer, k * S);
            }
            p
        };
        assert_eq!(run(), run());
    }

    #[test]
    fn the_prior_is_the_model_worth_k_impressions() {
        let empty = Posterior::default();
        let (a, b, m) = empty.beta(100.0, 0.05);
        assert!((a - 5.0).abs() < 1e-6 && (b - 95.0).abs() < 1e-6);
        assert!((m - 0.05).abs() < 1e-7);
        // A p of 0 keeps both parameters positive.
        let (a, b, _) = empty.beta(100.0, 0.0);
        assert!(a > 0.0 && b > 0.0);
        let seen = Posterior {
            impressions: 1000.0,
            clicks: 100.0,
            expected_clicks: 50.0,
        };
        let (a, b, m) = seen.beta(100.0, 0.9);
        assert_eq!(m, 0.05, "the model's mean on the offer's impressions");
        assert_eq!((a, b), (105.0, 995.0));
    }

    #[test]
    fn carrying_to_another_catalog_keeps_counts_by_offer_id() {
        let mut p = store(3, 0.0); // ids 1, 2, 3
        p.observe_impression(1, 0.5, 0);
        p.observe_impression(2, 0.5, 0);
        p.observe_impression(2, 0.5, 0);
        let next = p.carried_to(&[3, 9, 2]).expect("carried");
        assert_eq!(next.arms(), 3);
        assert_eq!(next.posterior(0, 0).impressions, 2.0, "id 3");
        assert_eq!(next.posterior(1, 0), Posterior::default(), "new id 9");
        assert_eq!(next.posterior(2, 0).impressions, 1.0, "id 2");
        assert!(Posteriors::new(
            &vec![1; OFFERS_MAX + 1],
            PosteriorConfig { half_life_s: 0.0 }
        )
        .is_err());
        let err = Posteriors::new(&[1], PosteriorConfig { half_life_s: -1.0 })
            .unwrap_err()
            .to_string();
        assert!(err.contains("half_life_s"), "{err}");
    }
}
