//! The exploration policies of the decide step (`docs/DECISIONS.md`,
//! "Exploration"): each eligible offer's ExplorationBonus, the top offer an
//! epsilon-greedy policy picks, and every decision's propensity.
//!
//! - `none`: no bonus; propensity 1.
//! - `epsilon_greedy`: with probability `epsilon` the top offer is a
//!   uniform choice among the eligible ones (a reservoir sample over the
//!   offers in catalog order, so nothing is buffered), lifted to the top by
//!   its bonus; propensity `(1 - epsilon) [it is the greedy top] + epsilon / K`.
//! - `thompson`: each offer's click rate is drawn from its Beta posterior
//!   with the model as the prior ([`Posterior::beta`]); the drawn rate over
//!   the prior's mean is a calibration ratio `r` that multiplies the
//!   request's `p`, and the bonus is the blend at `min(1, p r)` less the
//!   blend at `p`. The propensity is a Monte-Carlo estimate: `M`
//!   (`propensity_samples`) more draws per offer from an independent
//!   stream, and the share of those `M` replicas whose top offer is the one
//!   chosen, at least `1 / (M + 1)`.
//!
//! Every draw is a function of the engine's seed, the ticket, the offer id
//! and the posterior state, so a decision is deterministic and a simulated
//! request draws what a real one would.
//!
//! # Layout
//!
//! The Monte-Carlo replicas are run offer by offer as the decide step
//! meets each eligible offer: per replica the [`Explorer`] keeps only the
//! best score so far and its offer, two arrays of `M` on the stack. Nothing
//! is buffered per offer and nothing sized by the catalog is needed; the
//! price is that the replicas cannot be pruned once the winner is known
//! (every eligible offer draws `M + 1` times).

use crate::config::{DecideConfig, Exploration, PROPENSITY_SAMPLES_MAX};
use cx_domain::pipeline::{ChosenOffer, Decision, Ticket};
use cx_domain::store::{mix64, Posterior, Posteriors};
use rand::SeedableRng;
use rand_distr::{Distribution, Gamma};
use rand_pcg::Pcg64Mcg;

/// Index of the ExplorationBonus in `ChosenOffer::factors`.
const EXPLORATION: usize = 5;

/// Salts that keep the streams of one (seed, ticket, offer) apart.
const SALT_CHOICE: u64 = 0x7468_6f6d_7073_6f6e; // "thompson"
const SALT_REPLICAS: u64 = 0x7072_6f70_656e_7369; // "propensi"
const SALT_COIN: u64 = 0x6570_7369_6c6f_6e63; // "epsilonc"
const SALT_RESERVOIR: u64 = 0x7265_7365_7276_6f69; // "reservoi"

/// No offer yet in a replica.
const NO_OFFER: u32 = u32::MAX;

/// A Beta draw as the ratio of two Gamma draws, `X / (X + Y)` with
/// `X ~ Gamma(alpha)` and `Y ~ Gamma(beta)`: the same distribution as
/// `rand_distr::Beta`, at about a quarter of its cost per draw (Cheng's
/// algorithm there measured 68 ns a draw, this 18 ns, on this project's
/// machine), which matters at `M + 1` draws per offer and decision.
struct BetaDraw {
    x: Gamma<f64>,
    y: Gamma<f64>,
    mean: f64,
}

impl BetaDraw {
    /// `None` when a parameter is not finite and positive (never for the
    /// parameters [`Posterior::beta`] gives).
    fn new(alpha: f64, beta: f64) -> Option<Self> {
        Some(Self {
            x: Gamma::new(alpha, 1.0).ok()?,
            y: Gamma::new(beta, 1.0).ok()?,
            mean: alpha / (alpha + beta),
        })
    }

    fn sample(&self, rng: &mut Pcg64Mcg) -> f64 {
        let x = self.x.sample(rng);
        let y = self.y.sample(rng);
        // Both underflow only for tiny shapes; the mean stands in.
        if x + y > 0.0 {
            x / (x + y)
        } else {
            self.mean
        }
    }
}

/// One decision's exploration: fed every eligible offer in catalog order
/// ([`Self::explore`]), then settles the decision ([`Self::finish`]).
pub(crate) struct Explorer<'a> {
    policy: Exploration,
    config: &'a DecideConfig,
    posteriors: &'a Posteriors,
    now_ns: u64,
    /// `mix64` of the seed and the ticket: every draw starts from it.
    request_key: u64,
    /// Thompson replicas: `M`, and per replica the best score so far and
    /// the catalog index that has it.
    samples: usize,
    best_score: [f32; PROPENSITY_SAMPLES_MAX],
    best_index: [u32; PROPENSITY_SAMPLES_MAX],
    /// Eligible offers seen.
    eligible: u32,
    /// Epsilon-greedy: the uniform pick among the offers seen so far.
    pick: Option<ChosenOffer>,
}

impl<'a> Explorer<'a> {
    pub(crate) fn new(
        config: &'a DecideConfig,
        posteriors: &'a Posteriors,
        seed: u64,
        ticket: Ticket,
        now_ns: u64,
    ) -> Self {
        Self {
            policy: config.exploration,
            config,
            posteriors,
            now_ns,
            request_key: mix64(mix64(seed) ^ ticket.0),
            samples: config.propensity_samples.clamp(1, PROPENSITY_SAMPLES_MAX),
            best_score: [f32::NEG_INFINITY; PROPENSITY_SAMPLES_MAX],
            best_index: [NO_OFFER; PROPENSITY_SAMPLES_MAX],
            eligible: 0,
            pick: None,
        }
    }

    /// Sets the ExplorationBonus (and so the score) of an eligible offer
    /// whose other five factors are set, and records what the policy needs
    /// to settle the decision.
    pub(crate) fn explore(&mut self, offer: &mut ChosenOffer) {
        self.eligible += 1;
        offer.factors[EXPLORATION] = 0.0;
        match self.policy {
            Exploration::None => {}
            Exploration::EpsilonGreedy => {
                let u = unit(mix64(self.offer_key(offer.offer_id) ^ SALT_RESERVOIR));
                // Keeps the n-th offer with probability 1/n: a uniform pick.
                if u * f64::from(self.eligible) < 1.0 {
                    self.pick = Some(*offer);
                }
            }
            Exploration::Thompson => self.thompson(offer),
        }
        offer.score = offer.factors.iter().sum();
    }

    /// The Thompson draw of one offer, and its `M` replicas.
    fn thompson(&mut self, offer: &mut ChosenOffer) {
        let i = offer.catalog_index as usize;
        let (alpha, beta, m) = self
            .posterior(i, offer.offer_id)
            .beta(self.config.thompson_prior_impressions, offer.p_click);
        let model_prediction = offer.factors[3];
        let p = f64::from(offer.p_click);
        // The blend at min(1, p r) less the blend at p, with r = theta / m.
        let bonus = |theta: f64| -> f32 {
            if p <= 0.0 {
                return 0.0;
            }
            let ratio = (theta / m).min(1.0 / p);
            (f64::from(model_prediction) * (ratio - 1.0)) as f32
        };
        let draw = BetaDraw::new(alpha, beta);
        let key = self.offer_key(offer.offer_id);
        let mut rng = Pcg64Mcg::seed_from_u64(mix64(key ^ SALT_CHOICE));
        offer.factors[EXPLORATION] = draw.as_ref().map_or(0.0, |d| bonus(d.sample(&mut rng)));
        // Each replica's score is summed as the real one is, so replica
        // ties break as the ranking's do (the earlier offer wins).
        let partial: f32 = offer.factors[..EXPLORATION].iter().sum();
        let mut replicas = Pcg64Mcg::seed_from_u64(mix64(key ^ SALT_REPLICAS));
        for t in 0..self.samples {
            let b = draw
                .as_ref()
                .map_or(0.0, |d| bonus(d.sample(&mut replicas)));
            let score = partial + b;
            if self.best_index[t] == NO_OFFER || score > self.best_score[t] {
                self.best_score[t] = score;
                self.best_index[t] = offer.catalog_index;
            }
        }
    }

    /// Offer `i`'s counts now; none when the store's arm `i` is another
    /// offer (a catalog swapped in without its posteriors carried over).
    fn posterior(&self, i: usize, offer_id: u64) -> Posterior {
        match self.posteriors.offer_ids().get(i) {
            Some(&id) if id == offer_id => self.posteriors.posterior(i, self.now_ns),
            _ => Posterior::default(),
        }
    }

    fn offer_key(&self, offer_id: u64) -> u64 {
        mix64(self.request_key ^ offer_id)
    }

    /// Settles the decision ranked greedily (on the scores with their
    /// bonuses) in `out`: the epsilon-greedy pick moves to the top, and the
    /// propensity is set.
    pub(crate) fn finish(&self, out: &mut Decision) {
        let Some(top) = out.offers().first().copied() else {
            out.propensity = 1.0;
            return;
        };
        out.propensity = match self.policy {
            Exploration::None => 1.0,
            Exploration::Thompson => self.thompson_propensity(top.catalog_index),
            Exploration::EpsilonGreedy => {
                let epsilon = f64::from(self.config.epsilon);
                let coin = unit(mix64(self.request_key ^ SALT_COIN));
                let mut greedy = true;
                if let Some(pick) = self.pick.filter(|_| coin < epsilon) {
                    if pick.catalog_index != top.catalog_index {
                        out.promote(lifted_above(pick, top.score), self.config.top_k);
                        greedy = false;
                    }
                }
                let uniform = epsilon / f64::from(self.eligible.max(1));
                let p = if greedy {
                    1.0 - epsilon + uniform
                } else {
                    uniform
                };
                p as f32
            }
        };
    }

    /// The share of replicas whose top offer is `chosen`, at least
    /// `1 / (M + 1)`; exactly 1 with one eligible offer.
    fn thompson_propensity(&self, chosen: u32) -> f32 {
        if self.eligible <= 1 {
            return 1.0;
        }
        let m = self.samples;
        let won = self.best_index[..m]
            .iter()
            .filter(|&&i| i == chosen)
            .count();
        let floor = 1.0 / (m as f64 + 1.0);
        (won as f64 / m as f64).max(floor) as f32
    }
}

/// `pick` with the ExplorationBonus that makes its score exceed `top`
/// (the factors still summing to the score).
fn lifted_above(mut pick: ChosenOffer, top: f32) -> ChosenOffer {
    let partial: f32 = pick.factors[..EXPLORATION].iter().sum();
    let ulp = (top.abs().next_up() - top.abs()).max(f32::MIN_POSITIVE);
    let mut bonus = top.next_up() - partial;
    // Rounding may leave the sum at `top`; a few ulps settle it.
    for _ in 0..8 {
        if partial + bonus > top {
            break;
        }
        bonus += ulp;
    }
    pick.factors[EXPLORATION] = bonus;
    pick.score = pick.factors.iter().sum();
    pick
}

/// A uniform draw in `[0, 1)` from a hash's top 53 bits.
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gamma_ratio_draws_beta_moments() {
        let draw = BetaDraw::new(5.0, 95.0).expect("valid");
        let mut rng = Pcg64Mcg::seed_from_u64(1);
        let n = 200_000;
        let (mut sum, mut sq) = (0.0, 0.0);
        for _ in 0..n {
            let x = draw.sample(&mut rng);
            assert!((0.0..=1.0).contains(&x));
            sum += x;
            sq += x * x;
        }
        let mean = sum / n as f64;
        let var = sq / n as f64 - mean * mean;
        // Beta(5, 95): mean 0.05, variance 0.05 * 0.95 / 101.
        assert!((mean - 0.05).abs() < 3e-4, "{mean}");
        assert!((var / (0.05 * 0.95 / 101.0) - 1.0).abs() < 0.02, "{var}");
        assert!(BetaDraw::new(0.0, 1.0).is_none());
        assert!(BetaDraw::new(1.0, f64::NAN).is_none());
    }

    #[test]
    fn a_lifted_pick_beats_the_top_by_its_bonus_alone() {
        for (factors, top) in [
            ([0.01, -0.02, 0.0, 0.05, 0.0, 0.0], 0.3f32),
            ([0.0, 0.0, 0.0, 1.0e-3, 0.0, 0.0], 1.0e6),
            ([0.0, 0.0, 0.0, 0.3, 0.0, 0.0], 0.3f32.next_up()),
            ([0.0, -0.02, 0.0, 0.0, -0.02, 0.0], -0.01),
        ] {
            let pick = ChosenOffer {
                factors,
                ..ChosenOffer::default()
            };
            let lifted = lifted_above(pick, top);
            assert!(lifted.score > top, "{factors:?} above {top}");
            assert_eq!(lifted.score, lifted.factors.iter().sum::<f32>());
            assert_eq!(lifted.factors[..5], factors[..5]);
        }
    }
}
