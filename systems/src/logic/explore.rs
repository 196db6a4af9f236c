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
//! bonus together with its first [`rounds::FIRST_ROUNDS`] replica rounds (one call
//! of the draw), and keeps what the later rounds need (the draw's
//! constants, the bonus, the other factors' sum, its stream, the least and
//! greatest score a replica can give it: [`ReplicaOffer`], about 90 bytes)
//! in a scratch array the decide system owns, sized by the catalog once.
//! An offer with feedback draws from its counts alone, so its draw's
//! set-up is kept in the scratch per catalog offer ([`OfferDraw`]) while
//! its counts and the time stand: one set-up per tick, not per request.
//! After ranking, the offers whose greatest replica score is below another
//! offer's least are left out (they never top a round; with learned
//! posteriors that is most of them), and the rounds run in chunks (8,
//! then [`draw::REPLICA_CHUNK`]), each offer's chunk of draws and scores in one
//! branch-free loop, per round only the best score so far and its offer
//! kept ([`rounds::keep_best`]); they stop at the first chunk holding a round the
//! chosen offer won. A pick of probability `q` costs about `1 / q` rounds,
//! which averages out to one round per decision per offer the policy
//! gives a fair chance.

use crate::config::{DecideConfig, Exploration, PROPENSITY_SAMPLES_MAX};
use cx_domain::pipeline::{ChosenOffer, Decision, Ticket};
use cx_domain::store::{mix64, Posterior, Posteriors};
use draw::{BetaDraw, DrawStream, DrawTables, ReplicaDraw};
use rounds::{keep_contenders, rounds_until, ReplicaOffer, UniformRounds};

/// What an offer's draws need from its posterior: the same for every
/// request while its counts and the time stand, when it has feedback.
#[derive(Clone, Copy, Debug)]
struct OfferDraw {
    /// `None`: no posterior to draw from (its bonus is 0).
    draw: Option<ReplicaDraw>,
    /// The least and the greatest rate the draw can give.
    theta_bounds: (f32, f32),
    /// One over the prior's mean.
    inv_m: f32,
}

impl OfferDraw {
    /// The draw from `posterior` with the model as its prior
    /// ([`Posterior::beta`]).
    fn of(posterior: Posterior, prior_impressions: f64, p_request: f32) -> Self {
        let (alpha, beta, m) = posterior.beta(prior_impressions, p_request);
        Self::new(BetaDraw::new(alpha, beta), m)
    }

    fn new(exact: Option<BetaDraw>, m: f64) -> Self {
        let draw = exact.map(|exact| ReplicaDraw::of(&exact));
        Self {
            draw,
            theta_bounds: draw.map_or((0.0, 0.0), |d| d.bounds(draw::draw_tables())),
            inv_m: (1.0 / m) as f32,
        }
    }
}

/// An [`OfferDraw`] and what it was computed from.
#[derive(Clone, Copy, Debug)]
struct CachedDraw {
    key: DrawKey,
    draw: OfferDraw,
}

/// What an offer's [`OfferDraw`] is a function of, when it has feedback.
#[derive(Clone, Copy, Debug, PartialEq)]
struct DrawKey {
    offer_id: u64,
    now_ns: u64,
    /// Its counts as stored, and when they were last decayed.
    counts: Posterior,
    updated_ns: u64,
    prior_impressions: f64,
}

/// The eligible offers of the decision being made, for the propensity's
/// rounds: owned by the decide system, cleared per decision, grown to the
/// catalog's size once (no allocation in steady state).
#[derive(Debug, Default)]
pub struct ExploreScratch {
    offers: Vec<ReplicaOffer>,
    /// Each catalog offer's draw set-up, by catalog index, while its key
    /// holds (offers with feedback only).
    draws: Vec<Option<CachedDraw>>,
}

mod draw;
mod exp;
mod rounds;

/// Index of the ExplorationBonus in `ChosenOffer::factors`.
const EXPLORATION: usize = 5;

/// Salts that keep the streams of one (seed, ticket, offer) apart.
const SALT_REPLICAS: u64 = 0x7072_6f70_656e_7369; // "propensi"
const SALT_COIN: u64 = 0x6570_7369_6c6f_6e63; // "epsilonc"
const SALT_RESERVOIR: u64 = 0x7265_7365_7276_6f69; // "reservoi"
const SALT_UNIFORM_ROUNDS: u64 = 0x756e_6966_726f_756e; // "unifroun"

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
            Exploration::EpsilonGreedy => self.keep_uniform_pick(offer),
            Exploration::Thompson => {
                self.thompson(offer);
                if self.config.thompson_uniform_share > 0.0 {
                    self.keep_uniform_pick(offer);
                }
            }
        }
        offer.score = offer.factors.iter().sum();
    }

    /// The reservoir sample: keeps the n-th offer with probability 1/n,
    /// so that after the last the pick is uniform among them.
    fn keep_uniform_pick(&mut self, offer: &ChosenOffer) {
        let u = unit(mix64(self.offer_key(offer.offer_id) ^ SALT_RESERVOIR));
        if u * f64::from(self.eligible) < 1.0 {
            self.pick = Some(*offer);
        }
    }

    /// The Thompson draw of one offer; keeps what its replicas need.
    fn thompson(&mut self, offer: &mut ChosenOffer) {
        let draw = self.offer_draw(offer);
        let bonus = BonusF32::new(offer.factors[3], offer.p_click, draw.inv_m);
        let key = self.offer_key(offer.offer_id);
        // A replica's score is the other factors' sum plus its bonus, as
        // the decision's is, so replica ties break as the ranking's do
        // (the earlier offer wins).
        let partial: f32 = offer.factors[..EXPLORATION].iter().sum();
        let stream = DrawStream::new(mix64(key ^ SALT_REPLICAS));
        let (replica, decision_bonus) = ReplicaOffer::drawn(
            draw,
            bonus,
            partial,
            offer.catalog_index,
            stream,
            self.tables,
        );
        offer.factors[EXPLORATION] = decision_bonus;
        self.scratch.offers.push(replica);
    }

    /// Offer `offer`'s draw from its posterior now. An offer with feedback
    /// draws from its counts alone (its prior's mean is the model's mean
    /// on its impressions), so the set-up is computed once per tick and
    /// change of its counts, and kept in the scratch; one without draws
    /// from a prior at the request's own `p`.
    fn offer_draw(&mut self, offer: &ChosenOffer) -> OfferDraw {
        let i = offer.catalog_index as usize;
        let prior_impressions = self.config.thompson_prior_impressions;
        let stored = match self.posteriors.offer_ids().get(i) {
            Some(&id) if id == offer.offer_id => self.posteriors.stored(i),
            // A catalog swapped in without its posteriors carried over.
            _ => None,
        };
        let Some((counts, updated_ns)) = stored.filter(|(c, _)| c.impressions > 0.0) else {
            return OfferDraw::of(Posterior::default(), prior_impressions, offer.p_click);
        };
        let key = DrawKey {
            offer_id: offer.offer_id,
            now_ns: self.now_ns,
            counts,
            updated_ns,
            prior_impressions,
        };
        if let Some(cached) = self
            .scratch
            .draws
            .get(i)
            .and_then(|c| c.filter(|c| c.key == key))
        {
            return cached.draw;
        }
        let posterior = self.posteriors.posterior(i, self.now_ns);
        let draw = OfferDraw::of(posterior, prior_impressions, offer.p_click);
        // Decayed to nothing, it draws at the request's `p`: not kept.
        if posterior.mean_p_model().is_some() {
            if self.scratch.draws.len() <= i {
                // Grows to the catalog's size once.
                self.scratch.draws.resize(i + 1, None);
            }
            self.scratch.draws[i] = Some(CachedDraw { key, draw });
        }
        draw
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
            Exploration::Thompson => {
                let share = self.config.thompson_uniform_share;
                let coin = unit(mix64(self.request_key ^ SALT_COIN));
                let mut chosen = top.catalog_index;
                if let Some(pick) = self.pick.filter(|_| coin < f64::from(share)) {
                    if pick.catalog_index != top.catalog_index {
                        out.promote(lifted_above(pick, top.score), self.config.top_k);
                    }
                    chosen = pick.catalog_index;
                }
                self.thompson_propensity(chosen)
            }
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
        let offers = &mut self.scratch.offers;
        let contenders = keep_contenders(offers);
        let uniform = UniformRounds {
            share: self.config.thompson_uniform_share,
            stream: DrawStream::new(mix64(self.request_key ^ SALT_UNIFORM_ROUNDS)),
        };
        let n = rounds_until(
            offers,
            contenders,
            chosen,
            self.rounds_max,
            uniform,
            self.tables,
        );
        1.0 / n as f32
    }
}

/// The ExplorationBonus at a drawn click rate `theta`: the blend at
/// `min(1, p r)` less the blend at `p`, with `r = theta / m`, i.e.
/// `ModelPrediction * (min(theta / m, 1 / p) - 1)`; 0 when `p` is 0. In
/// `f64`, the tests' reference; the draws use [`BonusF32`].
#[cfg(test)]
#[derive(Clone, Copy, Debug)]
struct Bonus {
    model_prediction: f64,
    inv_m: f64,
    ratio_max: f64,
}

#[cfg(test)]
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

/// `Bonus` (the tests' reference) in `f32`, for the draws.
#[derive(Clone, Copy, Debug)]
struct BonusF32 {
    model_prediction: f32,
    inv_m: f32,
    ratio_max: f32,
}

impl BonusF32 {
    /// As `Bonus::new` (the tests' reference), with `1 / m` given.
    fn new(model_prediction: f32, p: f32, inv_m: f32) -> Self {
        let known = p > 0.0;
        Self {
            model_prediction: if known { model_prediction } else { 0.0 },
            inv_m,
            ratio_max: if known { 1.0 / p } else { 1.0 },
        }
    }

    #[inline]
    fn at(&self, theta: f32) -> f32 {
        self.model_prediction * ((theta * self.inv_m).min(self.ratio_max) - 1.0)
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
    use super::draw::REPLICA_CHUNK;
    use super::rounds::{keep_best, NO_OFFER};
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

    /// `fixed` offers as a decision's replicas, streams keyed by `seed`;
    /// with each one's decision score.
    fn replicas(offers: &[Fixed], seed: u64) -> Vec<(ReplicaOffer, f32)> {
        let tables = draw::draw_tables();
        offers
            .iter()
            .enumerate()
            .map(|(i, o)| {
                let (replica, bonus) = ReplicaOffer::drawn(
                    OfferDraw::new(Some(o.draw), 1.0 / o.bonus.inv_m),
                    o.bonus.in_f32(),
                    o.partial,
                    i as u32,
                    DrawStream::new(mix64(seed ^ i as u64)),
                    tables,
                );
                (replica, o.partial + bonus)
            })
            .collect()
    }

    #[test]
    fn leaving_out_offers_that_cannot_win_changes_no_propensity() {
        let tables = draw::draw_tables();
        // Learned posteriors (a few contenders) and cold ones (most).
        let learned: Vec<Fixed> = (0..10)
            .map(|i| {
                fixed(
                    0.03 + 0.01 * i as f32,
                    0.0,
                    20_000.0,
                    20_000.0 * (0.03 + 0.01 * i as f64),
                )
            })
            .collect();
        let cold: Vec<Fixed> = (0..10)
            .map(|i| fixed(0.01 + 0.012 * i as f32, 0.002 * (i % 4) as f32, 0.0, 0.0))
            .collect();
        let mut left_out = 0;
        for (offers, seeds) in [(&learned, 200u64), (&cold, 200)] {
            for seed in 0..seeds {
                let drawn = replicas(offers, seed);
                // Each replica score within its bounds, the decision's too.
                for (o, decision) in &drawn {
                    for s in o.first.iter().chain([decision]) {
                        assert!((o.score_min..=o.score_max).contains(s), "{s} outside {o:?}");
                    }
                }
                // The decision's pick: the highest score, the first on ties.
                let chosen = drawn
                    .iter()
                    .enumerate()
                    .fold((0, f32::NEG_INFINITY), |best, (i, (_, s))| {
                        if *s > best.1 {
                            (i, *s)
                        } else {
                            best
                        }
                    })
                    .0 as u32;
                let mut all: Vec<ReplicaOffer> = drawn.iter().map(|(o, _)| *o).collect();
                let mut pruned = all.clone();
                let kept = keep_contenders(&mut pruned);
                left_out += all.len() - kept;
                assert!(pruned[..kept].iter().any(|o| o.index == chosen));
                assert!(pruned[..kept].windows(2).all(|w| w[0].index < w[1].index));
                let none = UniformRounds {
                    share: 0.0,
                    stream: DrawStream::new(0),
                };
                let everyone = all.len();
                assert_eq!(
                    rounds_until(&mut all, everyone, chosen, 4096, none, tables),
                    rounds_until(&mut pruned, kept, chosen, 4096, none, tables),
                    "seed {seed}"
                );
            }
        }
        // Learned posteriors leave most offers out.
        assert!(left_out > 200 * 5, "{left_out} left out");
    }

    #[test]
    fn rounds_with_a_uniform_share_are_unbiased_for_the_mixture() {
        // Mean rounds until offer `c` tops one, over independent streams,
        // against 1 / ((1 - s) q_c + s / K): q_c each offer's share of
        // replica draws won (400k), K the offers. A pick the draws never
        // make gets s / K.
        let tables = draw::draw_tables();
        let offers = vec![
            fixed(0.05, 0.0, 0.0, 0.0),
            fixed(0.06, 0.0, 0.0, 0.0),
            fixed(0.12, -0.05, 0.0, 0.0),
            // Far behind: no replica draw lifts it to the top.
            fixed(0.01, -0.5, 5_000.0, 50.0),
        ];
        let q = win_shares(&offers, 400_000, true, 3);
        assert_eq!(q[3], 0.0);
        let share = 0.2f32;
        let trials = 20_000u64;
        for (c, &q_c) in q.iter().enumerate() {
            let mut total = 0.0;
            for seed in 0..trials {
                let mut drawn: Vec<ReplicaOffer> = replicas(&offers, seed * 8 + c as u64)
                    .into_iter()
                    .map(|(o, _)| o)
                    .collect();
                let kept = keep_contenders(&mut drawn);
                let uniform = UniformRounds {
                    share,
                    stream: DrawStream::new(mix64(seed ^ 0xabc)),
                };
                total += rounds_until(&mut drawn, kept, c as u32, 65_536, uniform, tables) as f64;
            }
            let mixture = (1.0 - f64::from(share)) * q_c + f64::from(share) / offers.len() as f64;
            let mean = total / trials as f64;
            let want = 1.0 / mixture;
            assert!(
                (mean / want - 1.0).abs() < 0.05,
                "offer {c}: {mean} rounds against {want}"
            );
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
