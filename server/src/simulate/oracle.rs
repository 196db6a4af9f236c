//! The oracle `cx simulate` measures regret against, and the map between
//! the catalog's offers and the synthetic world's.
//!
//! The oracle knows every offer's true click probability in the request's
//! context and picks the best offer the catalog's targeting admits there
//! (device type, country, placement size, channel:
//! `Catalog::check_eligibility`). It is **not** limited by frequency caps,
//! budgets or floors, which the policies are: its value is an upper bound,
//! and a policy's regret includes what those rules cost it.

use crate::error::{Error, Result};
use cx_datasets::synth::RowTruth;
use cx_datasets::Generator;
use cx_domain::catalog::Catalog;
use cx_features::RequestContext;

/// The `creative` scenario's variants of its offer: each one's true click
/// probability as a multiple of the offer's own creative's (variant 0),
/// capped at 1. Variant 1 is clicked twice as often as the others.
pub const CREATIVE_RATES: [f64; 3] = [1.0, 2.0, 1.0];
/// The variant [`CREATIVE_RATES`] favours.
pub const CREATIVE_BEST: u8 = 1;

/// Catalog offer index to the generator's offer index.
#[derive(Clone, Debug)]
pub struct OfferMap {
    world_of_catalog: Vec<usize>,
}

impl OfferMap {
    /// Maps every catalog offer to the generator's offer of the same id
    /// (`1000 + i`). A catalog offer the world does not have is refused,
    /// naming it: its clicks could not be drawn.
    pub fn new(catalog: &Catalog, generator: &Generator) -> Result<Self> {
        let world_of_catalog = catalog
            .ids()
            .iter()
            .map(|&id| {
                generator.offer_index(id).ok_or_else(|| {
                    Error::Mismatch(format!(
                        "catalog offer {id} is not one of the synthetic world's offers \
                         (ids {}..={}); cx simulate can only draw clicks for those",
                        1000,
                        1000 + generator.offers().len().saturating_sub(1)
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { world_of_catalog })
    }

    /// The generator's index of catalog offer `catalog_index`.
    pub fn world_index(&self, catalog_index: usize) -> usize {
        self.world_of_catalog[catalog_index]
    }

    /// Catalog offers mapped.
    pub fn len(&self) -> usize {
        self.world_of_catalog.len()
    }

    /// Whether the catalog is empty.
    pub fn is_empty(&self) -> bool {
        self.world_of_catalog.is_empty()
    }
}

/// The true click probabilities of one request, with a scenario's change
/// applied: `logit_shift` added to the logit of world offer `shifted`, and
/// the variants of world offer `variant_offer` clicked at
/// [`CREATIVE_RATES`] times its own rate.
#[derive(Clone, Copy, Debug)]
pub struct Truth<'a> {
    /// The row's truth.
    pub row: &'a RowTruth,
    /// The world offer whose appeal changed, if any.
    pub shifted: Option<usize>,
    /// What was added to its logit.
    pub logit_shift: f64,
    /// The world offer whose creative variants differ, if any.
    pub variant_offer: Option<usize>,
    /// Under `calibrated`: per world offer, the model's click probability
    /// for this request (0 where the model's engine ranked it nowhere) and
    /// the offer's hidden factor; the truth is their product, capped at 1,
    /// instead of the row's.
    pub calibrated: Option<(&'a [f64], &'a [f64])>,
}

impl<'a> Truth<'a> {
    /// The row's own truth, no scenario's change.
    pub fn of(row: &'a RowTruth) -> Self {
        Self {
            row,
            shifted: None,
            logit_shift: 0.0,
            variant_offer: None,
            calibrated: None,
        }
    }

    /// The true click probability of world offer `world_index`.
    pub fn p(&self, world_index: usize) -> f64 {
        if let Some((model_p, factors)) = self.calibrated {
            let p = model_p.get(world_index).copied().unwrap_or(0.0);
            let factor = factors.get(world_index).copied().unwrap_or(1.0);
            return (p * factor).min(1.0);
        }
        let z = self.row.logit(world_index).unwrap_or(f64::NEG_INFINITY);
        let z = if self.shifted == Some(world_index) {
            z + self.logit_shift
        } else {
            z
        };
        1.0 / (1.0 + (-z).exp())
    }

    /// The true click probability of world offer `world_index` shown with
    /// its creative variant `variant` (only the scenario's offer has
    /// variants whose rates differ; another variant number is clicked at
    /// the offer's own rate).
    pub fn p_shown(&self, world_index: usize, variant: u8) -> f64 {
        let p = self.p(world_index);
        if self.variant_offer != Some(world_index) {
            return p;
        }
        let rate = CREATIVE_RATES.get(usize::from(variant)).copied();
        (p * rate.unwrap_or(1.0)).min(1.0)
    }

    /// The best that world offer `world_index` can do on this request:
    /// its best variant's probability.
    pub fn p_best(&self, world_index: usize) -> f64 {
        self.p_shown(world_index, CREATIVE_BEST)
            .max(self.p(world_index))
    }
}

/// The oracle's pick for one request: the catalog index and its true click
/// probability; `None` when the targeting admits no offer.
pub fn best_offer(
    catalog: &Catalog,
    offers: &OfferMap,
    ctx: &RequestContext,
    truth: &Truth<'_>,
) -> Option<(usize, f64)> {
    (0..offers.len())
        .filter(|&i| catalog.check_eligibility(i, ctx).is_ok())
        .map(|i| (i, truth.p_best(offers.world_index(i))))
        .fold(None, |best, (i, p)| match best {
            Some((_, best_p)) if best_p >= p => best,
            _ => Some((i, p)),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cx_datasets::synth::SynthConfig;

    fn world() -> (Generator, Catalog, OfferMap) {
        let generator = Generator::new(SynthConfig::default(), 2024).unwrap();
        let catalog = cx_engine::load_catalog(None).unwrap();
        let offers = OfferMap::new(&catalog, &generator).unwrap();
        (generator, catalog, offers)
    }

    #[test]
    fn the_oracle_takes_the_best_admitted_offer() {
        let (generator, catalog, offers) = world();
        assert_eq!(offers.len(), catalog.len());
        let mut picks = std::collections::HashSet::new();
        for index in 0..300 {
            let (row, row_truth) = generator.row_with_truth(index);
            let ctx = row.to_context();
            let truth = Truth::of(&row_truth);
            let admitted: Vec<usize> = (0..catalog.len())
                .filter(|&i| catalog.check_eligibility(i, &ctx).is_ok())
                .collect();
            match best_offer(&catalog, &offers, &ctx, &truth) {
                None => assert!(admitted.is_empty(), "row {index}"),
                Some((best, p)) => {
                    assert!(admitted.contains(&best));
                    for &i in &admitted {
                        assert!(truth.p(offers.world_index(i)) <= p, "row {index}");
                    }
                    // The same probability the row logs for that offer.
                    let own = generator.offer_index(row.offer_id).unwrap();
                    assert_eq!(truth.p(own) as f32, row.p_true);
                    picks.insert(best);
                }
            }
        }
        assert!(picks.len() > 1, "the best offer depends on the context");
    }

    #[test]
    fn a_shift_changes_only_its_offer_and_can_move_the_oracle() {
        let (generator, catalog, offers) = world();
        let (row, row_truth) = generator.row_with_truth(3);
        let ctx = row.to_context();
        let plain = Truth::of(&row_truth);
        let (best, p) = best_offer(&catalog, &offers, &ctx, &plain).unwrap();
        let world_best = offers.world_index(best);
        let shifted = Truth {
            shifted: Some(world_best),
            logit_shift: -20.0,
            ..plain
        };
        assert!(shifted.p(world_best) < p * 1e-6);
        let other = (world_best + 1) % generator.offers().len();
        assert_eq!(shifted.p(other), plain.p(other));
        let (new_best, _) = best_offer(&catalog, &offers, &ctx, &shifted).unwrap();
        assert_ne!(new_best, best, "the oracle moves off the shifted offer");
    }

    #[test]
    fn a_catalog_offer_outside_the_world_is_refused_by_id() {
        let generator = Generator::new(SynthConfig::default(), 2024).unwrap();
        let text = cx_engine::DEFAULT_CATALOG_TOML.replacen("id = 1000", "id = 4242", 1);
        let catalog = Catalog::from_toml_str(&text).unwrap();
        let error = OfferMap::new(&catalog, &generator).unwrap_err().to_string();
        assert!(error.contains("catalog offer 4242"), "{error}");
    }

    #[test]
    fn the_creative_offer_s_best_variant_doubles_its_rate_and_moves_the_oracle_to_it() {
        let (generator, catalog, offers) = world();
        let (row, row_truth) = generator.row_with_truth(3);
        let ctx = row.to_context();
        let plain = Truth::of(&row_truth);
        let (best, p) = best_offer(&catalog, &offers, &ctx, &plain).unwrap();
        let world_best = offers.world_index(best);
        // Give the variants to another admitted offer, whose doubled rate
        // may beat the best one's.
        let other = (0..catalog.len())
            .filter(|&i| i != best && catalog.check_eligibility(i, &ctx).is_ok())
            .max_by(|&a, &b| {
                plain
                    .p(offers.world_index(a))
                    .total_cmp(&plain.p(offers.world_index(b)))
            })
            .expect("two admitted offers");
        let world_other = offers.world_index(other);
        let creative = Truth {
            variant_offer: Some(world_other),
            ..plain
        };
        let own = plain.p(world_other);
        assert_eq!(creative.p_shown(world_other, 0), own);
        assert_eq!(creative.p_shown(world_other, 2), own);
        assert_eq!(creative.p_shown(world_other, 1), (2.0 * own).min(1.0));
        assert_eq!(creative.p_shown(world_other, 7), own, "no such variant");
        assert_eq!(creative.p_shown(world_best, 1), p, "other offers unchanged");
        let (pick, pick_p) = best_offer(&catalog, &offers, &ctx, &creative).unwrap();
        if 2.0 * own > p {
            assert_eq!((pick, pick_p), (other, (2.0 * own).min(1.0)));
        } else {
            assert_eq!((pick, pick_p), (best, p));
        }
    }

    #[test]
    fn a_calibrated_truth_is_the_model_s_p_times_the_offer_s_factor() {
        let (generator, _, _) = world();
        let (_, row_truth) = generator.row_with_truth(3);
        let model_p = [0.1, 0.4, 0.0];
        let factors = [2.0, 3.0, 0.5];
        let truth = Truth {
            row: &row_truth,
            shifted: None,
            logit_shift: 0.0,
            variant_offer: None,
            calibrated: Some((&model_p, &factors)),
        };
        assert_eq!(truth.p(0), 0.2);
        assert_eq!(truth.p(1), 1.0, "capped");
        assert_eq!(truth.p(2), 0.0, "not ranked");
        assert_eq!(truth.p(9), 0.0, "out of range");
    }
}
