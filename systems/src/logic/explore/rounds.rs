//! The propensity's replica rounds (`docs/DECISIONS.md`, "Propensity"):
//! each eligible offer as the rounds draw it ([`ReplicaOffer`]), which of
//! them can top a round at all ([`keep_contenders`]), and the rounds until
//! the chosen offer tops one ([`rounds_until`]), with the uniform share's
//! rounds mixed in ([`UniformRounds`]).
//!
//! Layout: the offers sit in one array of [`ReplicaOffer`] (about 90 bytes
//! each, the decide system's scratch), contenders moved to its front; a
//! chunk of rounds keeps only each round's best score and offer, in two
//! arrays of [`REPLICA_CHUNK`] on the stack, updated by selects per offer
//! ([`keep_best`]), so the rounds allocate nothing.

use super::draw::{DrawStream, DrawTables, ReplicaDraw, REPLICA_CHUNK};
use super::{BonusF32, OfferDraw};
use rand::RngCore;

/// No offer yet in a replica.
pub(super) const NO_OFFER: u32 = u32::MAX;

/// One eligible offer as the propensity's replica rounds draw it.
#[derive(Clone, Copy, Debug)]
pub(super) struct ReplicaOffer {
    /// Its draw; `None`: no posterior to draw from (its bonus is 0).
    pub(super) draw: Option<ReplicaDraw>,
    pub(super) bonus: BonusF32,
    /// The other factors' sum.
    pub(super) partial: f32,
    /// The least and the greatest score a replica can give it.
    pub(super) score_min: f32,
    pub(super) score_max: f32,
    /// Its scores in the first [`FIRST_ROUNDS`] rounds, drawn with the
    /// decision's own draw.
    pub(super) first: [f32; FIRST_ROUNDS],
    pub(super) index: u32,
    /// Its stream, past the draws of `first`.
    pub(super) stream: DrawStream,
}

impl ReplicaOffer {
    /// An offer with its decision's draw and its first rounds drawn from
    /// `stream` (in one call); also the decision's bonus (0 without a draw).
    pub(super) fn drawn(
        offer_draw: OfferDraw,
        bonus: BonusF32,
        partial: f32,
        index: u32,
        mut stream: DrawStream,
        tables: &DrawTables,
    ) -> (Self, f32) {
        let mut first = [partial; FIRST_ROUNDS];
        let (mut score_min, mut score_max) = (partial, partial);
        let mut decision_bonus = 0.0;
        let draw = offer_draw.draw;
        if let Some(draw) = draw {
            let theta = draw.draws::<{ 1 + FIRST_ROUNDS }>(&mut stream, tables);
            decision_bonus = bonus.at(theta[0]);
            for (score, &theta) in first.iter_mut().zip(&theta[1..]) {
                *score = partial + bonus.at(theta);
            }
            let (theta_min, theta_max) = offer_draw.theta_bounds;
            let (a, b) = (partial + bonus.at(theta_min), partial + bonus.at(theta_max));
            (score_min, score_max) = (a.min(b), a.max(b));
        }
        let offer = Self {
            draw,
            bonus,
            partial,
            score_min,
            score_max,
            first,
            index,
            stream,
        };
        (offer, decision_bonus)
    }
}

/// Moves to the front the offers that can top a replica round, and returns
/// how many: an offer whose greatest score is below another's least never
/// does, so leaving it out changes no round's top (catalog order, which
/// breaks ties, is kept among the rest). Posteriors narrowed by feedback
/// leave few in the running.
pub(super) fn keep_contenders(offers: &mut [ReplicaOffer]) -> usize {
    let floor = offers
        .iter()
        .map(|o| o.score_min)
        .fold(f32::NEG_INFINITY, f32::max);
    // A margin of a few ulps for the bounds' own rounding.
    let floor = floor - floor.abs() * 1.0e-5;
    let mut kept = 0;
    for i in 0..offers.len() {
        if offers[i].score_max >= floor {
            offers.swap(kept, i);
            kept += 1;
        }
    }
    kept
}

/// The uniform share of the rounds: each round's top is, with probability
/// `share`, a uniform choice among all the eligible offers instead of the
/// replica draws' best, as the decision's is.
#[derive(Clone, Copy, Debug)]
pub(super) struct UniformRounds {
    pub(super) share: f32,
    /// One 64-bit draw per round: the coin and the offer.
    pub(super) stream: DrawStream,
}

impl UniformRounds {
    /// Round tops `tops` after the uniform share: each replaced, with
    /// probability `share`, by a uniform choice among `offers`.
    fn apply(&mut self, tops: &mut [u32], offers: &[ReplicaOffer]) {
        if self.share <= 0.0 {
            return;
        }
        let share = f64::from(self.share);
        for top in tops {
            let bits = self.stream.next_u64();
            // The top 32 bits are the coin, the low 32 the offer.
            let coin = (bits >> 32) as f64 / (1u64 << 32) as f64;
            if coin < share {
                let k = ((bits & u64::from(u32::MAX)) * offers.len() as u64) >> 32;
                *top = offers[k as usize].index;
            }
        }
    }
}

/// The replica rounds up to the first whose top is `chosen`: its number,
/// or `rounds_max` when none in those. `offers[..contenders]` (in catalog
/// order) are every offer that can top a replica draw's round; the uniform
/// share chooses among all of `offers`.
pub(super) fn rounds_until(
    offers: &mut [ReplicaOffer],
    contenders: usize,
    chosen: u32,
    rounds_max: usize,
    mut uniform: UniformRounds,
    tables: &DrawTables,
) -> usize {
    let mut best_score = [0.0f32; REPLICA_CHUNK];
    let mut best_index = [NO_OFFER; REPLICA_CHUNK];
    let mut scores = [0.0f32; REPLICA_CHUNK];
    // The first rounds were drawn with the decisions.
    let n = FIRST_ROUNDS.min(rounds_max);
    best_index[..n].fill(NO_OFFER);
    for o in &offers[..contenders] {
        keep_best(
            &o.first[..n],
            o.index,
            &mut best_score[..n],
            &mut best_index[..n],
        );
    }
    uniform.apply(&mut best_index[..n], offers);
    if let Some(t) = best_index[..n].iter().position(|&i| i == chosen) {
        return t + 1;
    }
    let mut done = n;
    while done < rounds_max {
        let n = (rounds_max - done).min(chunk_after(done));
        best_index[..n].fill(NO_OFFER);
        for o in offers[..contenders].iter_mut() {
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
        uniform.apply(&mut best_index[..n], offers);
        if let Some(t) = best_index[..n].iter().position(|&i| i == chosen) {
            return done + t + 1;
        }
        done += n;
    }
    rounds_max
}

/// How many replica rounds to run next after `done`: few at first, since
/// most picks are won again within a handful of rounds (about as many as
/// the offers in the running), then [`REPLICA_CHUNK`].
fn chunk_after(done: usize) -> usize {
    if done < REPLICA_CHUNK {
        REPLICA_CHUNK / 2
    } else {
        REPLICA_CHUNK
    }
}

/// Replica rounds drawn with the decision's own draw, in the same call.
pub(super) const FIRST_ROUNDS: usize = 3;

/// One offer's turn in the replicas: `scores[t]` against replica `t`'s
/// best so far, which it replaces when strictly higher (or when there is
/// none yet), so ties keep the earlier offer.
#[inline]
pub(super) fn keep_best(
    scores: &[f32],
    index: u32,
    best_score: &mut [f32],
    best_index: &mut [u32],
) {
    for ((best_score, best_index), &score) in best_score.iter_mut().zip(best_index).zip(scores) {
        // Selects, not a branch: whether an offer beats a replica's best
        // is a coin toss the branch predictor cannot learn.
        let better = (*best_index == NO_OFFER) | (score > *best_score);
        *best_score = if better { score } else { *best_score };
        *best_index = if better { index } else { *best_index };
    }
}
