//! Ground truth for every offer, not only the one a row logged: the true
//! click probability any catalog offer would have had in a row's context.
//!
//! A row carries `p_true` for its own offer only. A simulation that lets a
//! policy choose among all offers needs the truth for whichever it chose,
//! and the best one (the oracle). [`RowTruth`] holds the true click logit of
//! every offer for one row, computed with exactly the expression the
//! generator uses for the logged offer (user-offer affinity, offer bias,
//! context effects with the offer's own category match, intercept), so
//! [`RowTruth::p_true`] of the row's offer equals the row's `p_true` bit for
//! bit. Nothing here draws from a random stream: rows are unchanged and
//! [`super::GENERATOR_VERSION`] stays.
//!
//! The truth is computed from the row's index, not from a [`SynthRow`],
//! because a row does not carry the user's latent embedding.

use super::generator::{Draft, Effects, Generator, Stream};
use super::math::sigmoid;
use super::SynthRow;
use crate::error::{Error, Result};

/// The true click logit of every offer of the catalog, in one row's
/// context (in [`Generator::offers`] order).
#[derive(Clone, Debug, PartialEq)]
pub struct RowTruth {
    logits: Vec<f64>,
}

impl RowTruth {
    /// Offers covered (the catalog's size).
    pub fn offers(&self) -> usize {
        self.logits.len()
    }

    /// The true click logit of offer `offer_index` (intercept included);
    /// `None` past the catalog.
    pub fn logit(&self, offer_index: usize) -> Option<f64> {
        self.logits.get(offer_index).copied()
    }

    /// The true click probability of offer `offer_index`, as the generator
    /// stores it (`f32`); `None` past the catalog.
    pub fn p_true(&self, offer_index: usize) -> Option<f32> {
        self.logit(offer_index).map(|z| sigmoid(z) as f32)
    }

    /// Every offer's logit, in catalog order.
    pub fn logits(&self) -> &[f64] {
        &self.logits
    }
}

impl Generator {
    /// Row `index` (as [`Generator::row_at`]) and the truth of every offer
    /// in its context, from one draw of the row.
    pub fn row_with_truth(&self, index: u64) -> (SynthRow, RowTruth) {
        let draft = self.draft(Stream::Rows, index);
        let truth = self.truth_of(&draft);
        (self.finish_row(draft), truth)
    }

    /// The truth of every offer in the context of row `index`.
    pub fn truth_at(&self, index: u64) -> RowTruth {
        self.truth_of(&self.draft(Stream::Rows, index))
    }

    /// The true click probability of offer `offer_index` (an index into
    /// [`Generator::offers`]; offer id `1000 + offer_index`) in the context
    /// of row `index`. Equals the row's `p_true` for the row's own offer.
    /// An index past the catalog is refused with [`Error::BadInput`].
    pub fn p_true_for(&self, index: u64, offer_index: usize) -> Result<f32> {
        self.truth_at(index).p_true(offer_index).ok_or_else(|| {
            Error::BadInput(format!(
                "offer index {offer_index} is past the catalog of {} offers",
                self.offers().len()
            ))
        })
    }

    /// The index in [`Generator::offers`] of the offer with id `offer_id`.
    pub fn offer_index(&self, offer_id: u64) -> Option<usize> {
        self.offers().iter().position(|o| o.id == offer_id)
    }

    /// Each offer's logit: the draft's expression with the offer's own
    /// affinity, bias and category match, in the same order of operations.
    fn truth_of(&self, draft: &Draft) -> RowTruth {
        let logits = self
            .offers()
            .iter()
            .map(|offer| {
                let mut effects: Effects = draft.effects;
                effects.category_match = draft.tier1.contains(&offer.category);
                let offset = self.affinity(&draft.user_embedding, offer)
                    + draft.user_bias
                    + offer.bias
                    + self.config.context_scale * effects.sum();
                self.intercept() + offset
            })
            .collect();
        RowTruth { logits }
    }
}
