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
//!   blend at `p`. Every draw, the decision's and the propensity's, is the
//!   same cheap close approximation of the Beta in `f32`
//!   ([`draw::ReplicaDraw`], the Wilson-Hilferty cube of a tabulated
//!   normal, which moves a win probability by well under 0.01 against
//!   exact draws), so the propensity's replicas follow the very policy that
//!   decided. The propensity is `1 / N`, `N` the number of replica rounds
//!   (every eligible offer drawn again, each from a stream of its own) up
//!   to and including the first whose top offer is the one chosen: `N` is
//!   geometric with mean `1 / q`, `q` the policy's probability of that
//!   offer, so the inverse propensity that off-policy estimators weigh by
//!   is unbiased (up to `propensity_samples` rounds, the most tried).
//!
//! Every draw is a function of the engine's seed, the ticket, the offer id
//! and the posterior state, so a decision is deterministic and a simulated
//! request draws what a real one would.
//!
//! # Layout
//!
//! As the decide step meets each eligible offer, the [`Explorer`] draws its
//! bonus and keeps what its replicas need (the draw's constants, the
//! bonus, the other factors' sum, its stream: [`ReplicaOffer`], about 64
//! bytes) in a scratch array the decide system owns, sized by the catalog
//! once. The rounds run after ranking, [`REPLICA_CHUNK`] at a time, each
//! offer's chunk of draws and scores in one branch-free loop, per round
//! only the best score so far and its offer kept ([`keep_best`]); they stop
//! at the first chunk holding a round the chosen offer won. A likely pick
//! costs one chunk; a pick of probability `q` about `1 / (16 q)` chunks,
//! which averages out to about one chunk per decision per offer the
//! policy gives a fair chance.

use crate::config::{DecideConfig, Exploration, PROPENSITY_SAMPLES_MAX};
use cx_domain::pipeline::{ChosenOffer, Decision, Ticket};
use cx_domain::store::{mix64, Posterior, Posteriors};
use draw::{BetaDraw, DrawStream, DrawTables, ReplicaDraw, REPLICA_CHUNK};

/// One eligible offer as the propensity's replica rounds draw it.
#[derive(Clone, Copy, Debug)]
struct ReplicaOffer {
    /// Its draw; `None`: no posterior to draw from (its bonus is 0).
    draw: Option<ReplicaDraw>,
    bonus: BonusF32,
    /// The other factors' sum.
    partial: f32,
    index: u32,
    stream: DrawStream,
}

/// The eligible offers of the decision being made, for the propensity's
/// rounds: owned by the decide system, cleared per decision, grown to the
/// catalog's size once (no allocation in steady state).
#[derive(Debug, Default)]
pub struct ExploreScratch {
    offers: Vec<ReplicaOffer>,
}

mod draw;

/// Index of the ExplorationBonus in `ChosenOffer::factors`.
const EXPLORATION: usize = 5;

/// Salts that keep the streams of one (seed, ticket, offer) apart.
const SALT_CHOICE: u64 = 0x7468_6f6d_7073_6f6e; // "thompson"
const SALT_REPLICAS: u64 = 0x7072_6f70_656e_7369; // "propensi"
const SALT_COIN: u64 = 0x6570_7369_6c6f_6e63; // "epsilonc"
const SALT_RESERVOIR: u64 = 0x7265_7365_7276_6f69; // "reservoi"

/// No offer yet in a replica.
const NO_OFFER: u32 = u32::MAX;

/// One decision's exploration: fed every eligible offer in catalog order
/// ([`Self::explore`]), then settles the decision ([`Self::finish`]).
pub(crate) struct Explorer<'a> {
    policy: Exploration,
    config: &'a DecideConfig,
    posteriors: &'a Posteriors,
    now_ns: u64,
    /// `mix64` of the seed and the ticket: every draw starts from it.
    request_key: u64,
    /// Thompson: the most replica rounds behind the propensity.
    rounds_max: usize,
    /// The draws' tables of normal and exponential values.
    tables: &'static DrawTables,
    /// Thompson: the eligible offers seen, for the rounds.
    scratch: &'a mut ExploreScratch,
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
        scratch: &'a mut ExploreScratch,
    ) -> Self {
        scratch.offers.clear();
        Self {
            policy: config.exploration,
            config,
            posteriors,
            now_ns,
            request_key: mix64(mix64(seed) ^ ticket.0),
            rounds_max: config.propensity_samples.clamp(1, PROPENSITY_SAMPLES_MAX),
            tables: draw::draw_tables(),
            scratch,
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

    /// The Thompson draw of one offer; keeps what its replicas need.
    fn thompson(&mut self, offer: &mut ChosenOffer) {
        let i = offer.catalog_index as usize;
        let (alpha, beta, m) = self
            .posterior(i, offer.offer_id)
            .beta(self.config.thompson_prior_impressions, offer.p_click);
        let bonus = Bonus::new(offer.factors[3], offer.p_click, m).in_f32();
        let key = self.offer_key(offer.offer_id);
        // A replica's score is the other factors' sum plus its bonus, as
        // the decision's is, so replica ties break as the ranking's do
        // (the earlier offer wins).
        let partial: f32 = offer.factors[..EXPLORATION].iter().sum();
        // Never `None` for the parameters `Posterior::beta` gives.
        let draw = BetaDraw::new(alpha, beta).map(|exact| ReplicaDraw::of(&exact));
        if let Some(draw) = draw {
            let mut theta = [0.0f32; 1];
            draw.fill(
                &mut DrawStream::new(mix64(key ^ SALT_CHOICE)),
                self.tables,
                &mut theta,
            );
            offer.factors[EXPLORATION] = bonus.at(theta[0]);
        }
        self.scratch.offers.push(ReplicaOffer {
            draw,
            bonus,
            partial,
            index: offer.catalog_index,
            stream: DrawStream::new(mix64(key ^ SALT_REPLICAS)),
        });
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
    pub(crate) fn finish(&mut self, out: &mut Decision) {
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

    /// `1 / N`, `N` the replica rounds up to the first whose top offer is
    /// `chosen` (at most `propensity_samples`; `1 / rounds_max` when none
    /// in those); exactly 1 with one eligible offer.
    fn thompson_propensity(&mut self, chosen: u32) -> f32 {
        if self.eligible <= 1 {
            return 1.0;
        }
        let tables = self.tables;
        let offers = &mut self.scratch.offers;
        let mut best_score = [0.0f32; REPLICA_CHUNK];
        let mut best_index = [NO_OFFER; REPLICA_CHUNK];
        let mut scores = [0.0f32; REPLICA_CHUNK];
        let mut done = 0;
        while done < self.rounds_max {
            let n = (self.rounds_max - done).min(REPLICA_CHUNK);
            best_index[..n].fill(NO_OFFER);
            for o in offers.iter_mut() {
                let scores = &mut scores[..n];
                match o.draw {
                    Some(draw) => {
                        draw.fill(&mut o.stream, tables, scores);
                        for score in scores.iter_mut() {
                            *score = o.partial + o.bonus.at(*score);
                        }
                    }
                    None => scores.fill(o.partial),
                }
                keep_best(scores, o.index, &mut best_score[..n], &mut best_index[..n]);
            }
            if let Some(t) = best_index[..n].iter().position(|&i| i == chosen) {
                return 1.0 / (done + t + 1) as f32;
            }
            done += n;
        }
        1.0 / self.rounds_max as f32
    }
}

/// The ExplorationBonus at a drawn click rate `theta`: the blend at
/// `min(1, p r)` less the blend at `p`, with `r = theta / m`, i.e.
/// `ModelPrediction * (min(theta / m, 1 / p) - 1)`; 0 when `p` is 0.
#[derive(Clone, Copy, Debug)]
struct Bonus {
    model_prediction: f64,
    inv_m: f64,
    ratio_max: f64,
}

impl Bonus {
    fn new(model_prediction: f32, p: f32, m: f64) -> Self {
        let p = f64::from(p);
        Self {
            model_prediction: if p > 0.0 {
                f64::from(model_prediction)
            } else {
                0.0
            },
            inv_m: 1.0 / m,
            ratio_max: if p > 0.0 { 1.0 / p } else { 1.0 },
        }
    }

    /// The bonus at an exact draw (the tests' reference).
    #[cfg(test)]
    fn at(&self, theta: f64) -> f32 {
        let ratio = (theta * self.inv_m).min(self.ratio_max);
        (self.model_prediction * (ratio - 1.0)) as f32
    }

    fn in_f32(&self) -> BonusF32 {
        BonusF32 {
            model_prediction: self.model_prediction as f32,
            inv_m: self.inv_m as f32,
            ratio_max: self.ratio_max as f32,
        }
    }
}

/// [`Bonus`] in `f32`, for the replicas.
#[derive(Clone, Copy, Debug)]
struct BonusF32 {
    model_prediction: f32,
    inv_m: f32,
    ratio_max: f32,
}

impl BonusF32 {
    #[inline]
    fn at(&self, theta: f32) -> f32 {
        self.model_prediction * ((theta * self.inv_m).min(self.ratio_max) - 1.0)
    }
}

/// One offer's turn in the replicas: `scores[t]` against replica `t`'s
/// best so far, which it replaces when strictly higher (or when there is
/// none yet), so ties keep the earlier offer.
#[inline]
fn keep_best(scores: &[f32], index: u32, best_score: &mut [f32], best_index: &mut [u32]) {
    for ((best_score, best_index), &score) in best_score.iter_mut().zip(best_index).zip(scores) {
        // Selects, not a branch: whether an offer beats a replica's best
        // is a coin toss the branch predictor cannot learn.
        let better = (*best_index == NO_OFFER) | (score > *best_score);
        *best_score = if better { score } else { *best_score };
        *best_index = if better { index } else { *best_index };
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
    use cx_domain::store::Posterior;

    /// An offer of a fixed decision: its factors but the bonus summed, its
    /// bonus, and its posterior.
    struct Fixed {
        partial: f32,
        bonus: Bonus,
        draw: BetaDraw,
    }

    /// Each offer's share of `n` replicas won, each offer's rate drawn by
    /// the replica draw (`replica`) or the exact one.
    fn win_shares(offers: &[Fixed], n: usize, replica: bool, seed: u64) -> Vec<f64> {
        let tables = draw::draw_tables();
        let mut wins = vec![0u64; offers.len()];
        let mut best_score = [0.0f32; PROPENSITY_SAMPLES_MAX];
        let mut best_index = [NO_OFFER; PROPENSITY_SAMPLES_MAX];
        for chunk in 0..n / PROPENSITY_SAMPLES_MAX {
            best_index.fill(NO_OFFER);
            for (i, o) in offers.iter().enumerate() {
                let mut rng = DrawStream::new(mix64(seed ^ (chunk * 64 + i) as u64));
                let cube = ReplicaDraw::of(&o.draw);
                let bonus = o.bonus.in_f32();
                let mut scores = [0.0f32; REPLICA_CHUNK];
                for (chunk_score, chunk_index) in best_score
                    .chunks_mut(REPLICA_CHUNK)
                    .zip(best_index.chunks_mut(REPLICA_CHUNK))
                {
                    if replica {
                        cube.fill(&mut rng, tables, &mut scores);
                        for score in &mut scores {
                            *score = o.partial + bonus.at(*score);
                        }
                    } else {
                        for score in &mut scores {
                            *score = o.partial + o.bonus.at(o.draw.sample(&mut rng));
                        }
                    }
                    keep_best(&scores, i as u32, chunk_score, chunk_index);
                }
            }
            for &i in &best_index {
                wins[i as usize] += 1;
            }
        }
        let total = (n / PROPENSITY_SAMPLES_MAX * PROPENSITY_SAMPLES_MAX) as f64;
        wins.iter().map(|&w| w as f64 / total).collect()
    }

    /// An offer the model gives `p`, whose other factors add `boost`, with
    /// `shown` impressions and `clicks` clicks at the model's `p`, prior
    /// worth 100 impressions.
    fn fixed(p: f32, boost: f32, shown: f64, clicks: f64) -> Fixed {
        let posterior = Posterior {
            impressions: shown,
            clicks,
            expected_clicks: shown * f64::from(p),
        };
        let (alpha, beta, m) = posterior.beta(100.0, p);
        Fixed {
            partial: p + boost,
            bonus: Bonus::new(p, p, m),
            draw: BetaDraw::new(alpha, beta).expect("valid"),
        }
    }

    #[test]
    fn replica_draws_win_as_often_as_exact_draws() {
        // The probability each offer is the top, by the propensity's
        // replica draws and by exact draws, 400k replicas each: within
        // 0.01 (the sampling noise alone is under 0.0011 a share).
        for offers in [
            // Cold: the prior alone, close scores (shapes 4 to 12).
            vec![
                fixed(0.05, 0.0, 0.0, 0.0),
                fixed(0.06, 0.0, 0.0, 0.0),
                fixed(0.04, 0.01, 0.0, 0.0),
                fixed(0.12, -0.05, 0.0, 0.0),
            ],
            // Learned: one offer clicked twice as often as the model says,
            // one half as often, one unseen with a small p (shape 1.5, so
            // drawn exactly), one at the model's rate.
            vec![
                fixed(0.05, 0.0, 2_000.0, 200.0),
                fixed(0.08, 0.0, 2_000.0, 80.0),
                fixed(0.015, 0.05, 0.0, 0.0),
                fixed(0.07, 0.0, 500.0, 35.0),
            ],
            // Many offers, one ahead.
            (0..12)
                .map(|i| fixed(0.02 + 0.008 * i as f32, 0.005 * (i % 3) as f32, 0.0, 0.0))
                .chain([fixed(0.15, 0.0, 0.0, 0.0)])
                .collect(),
        ] {
            let n = 400_000;
            let by_replicas = win_shares(&offers, n, true, 1);
            let exact = win_shares(&offers, n, false, 2);
            for (r, e) in by_replicas.iter().zip(&exact) {
                assert!((r - e).abs() < 0.01, "{by_replicas:?} against {exact:?}");
            }
        }
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
