//! How a model's output columns and a catalog's offers match
//! ([`CatalogFit`]), and what the engine does when they match only partly
//! ([`CatalogOverlap`], the `catalog_overlap` key).

use crate::error::{Error, Result};
use cx_domain::catalog::Catalog;
use serde::{Deserialize, Serialize};

/// What to do when a model and a catalog overlap only partly: some
/// catalog offers have no model column (they are never scored by the
/// model), or some model columns name no catalog offer (their scores go
/// unused).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CatalogOverlap {
    /// Serve, and let the host warn ([`crate::Engine::catalog_fit`]; `cx
    /// serve` logs a warning and sets `cx_catalog_unscored_offers`).
    #[default]
    Warn,
    /// Refuse the model (at build, and at a swap).
    Refuse,
}

/// The offers a model and a catalog do not share.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CatalogFit {
    /// Catalog offers the model has no column for, in catalog order.
    pub unscored_offers: Vec<u64>,
    /// Model columns whose offer is not in the catalog, in column order.
    pub unused_columns: Vec<u64>,
}

impl CatalogFit {
    /// How `catalog` and a model scoring `model_offer_ids` match.
    pub fn of(catalog: &Catalog, model_offer_ids: &[u64]) -> Self {
        let ids = catalog.ids();
        Self {
            unscored_offers: ids
                .iter()
                .filter(|id| !model_offer_ids.contains(id))
                .copied()
                .collect(),
            unused_columns: model_offer_ids
                .iter()
                .filter(|id| !ids.contains(id))
                .copied()
                .collect(),
        }
    }

    /// Whether every catalog offer has a column and every column an offer.
    pub fn is_full(&self) -> bool {
        self.unscored_offers.is_empty() && self.unused_columns.is_empty()
    }

    /// The fit as `policy` allows it: itself, or (`Refuse`, partial) an
    /// error naming the offers that do not match, for `model`.
    pub fn check(self, policy: CatalogOverlap, model: &str) -> Result<Self> {
        if policy == CatalogOverlap::Refuse && !self.is_full() {
            return Err(Error::Config(format!(
                "catalog_overlap = \"refuse\": model `{model}` and the catalog overlap only \
                 partly: catalog offers {:?} have no model column, model columns {:?} name no \
                 catalog offer",
                self.unscored_offers, self.unused_columns
            )));
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cx_domain::catalog::OfferSpec;

    fn catalog(ids: &[u64]) -> Catalog {
        Catalog::from_offers(ids.iter().map(|&id| OfferSpec::new(id)).collect()).expect("valid")
    }

    #[test]
    fn the_fit_names_both_sides_and_the_policy_refuses_a_partial_one() {
        let fit = CatalogFit::of(&catalog(&[1, 2, 3]), &[2, 3, 4]);
        assert_eq!(fit.unscored_offers, [1]);
        assert_eq!(fit.unused_columns, [4]);
        assert!(!fit.is_full());
        assert!(fit.clone().check(CatalogOverlap::Warn, "m").is_ok());
        let refused = fit.check(CatalogOverlap::Refuse, "m").expect_err("refused");
        assert!(refused.to_string().contains("[1]") && refused.to_string().contains("[4]"));

        let full = CatalogFit::of(&catalog(&[1, 2]), &[2, 1]);
        assert!(full.is_full());
        assert!(full.check(CatalogOverlap::Refuse, "m").is_ok());
    }
}
