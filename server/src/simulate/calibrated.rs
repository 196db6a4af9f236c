//! The `calibrated` scenario's world: each offer is clicked with the
//! model's own probability for the request times a hidden factor per offer
//! ([`super::calibration_factors`]). That is the class of policies
//! Thompson sampling with the model as its prior learns (the model's `p`
//! times a ratio per offer, `docs/DECISIONS.md`, "Exploration"), so the
//! oracle is reachable and a learning policy's regret can grow
//! sublinearly; greedy, which ranks by the model alone, keeps losing what
//! the factors reorder.
//!
//! The model's probability of every offer for a request comes from a
//! probe engine with the policies' model and catalog that ranks by click
//! probability without exploration and decides each request simulated (no
//! spend, no log): with at most [`super::CALIBRATED_OFFERS`] offers and no
//! caps, budgets or floors, its ranked offers are every offer the
//! targeting admits.

use super::oracle::OfferMap;
use super::{calibration_factors, BATCH};
use crate::error::{Error, Result};
use cx_datasets::synth::{RowTruth, SynthRow};
use cx_datasets::Generator;
use cx_domain::catalog::Catalog;
use cx_engine::Engine;

/// The probe engine and the probabilities of the batch it last scored.
pub struct Calibration {
    probe: Engine,
    /// Per world offer, its hidden factor (1 for offers not in the catalog).
    pub factors: Vec<f64>,
    /// Per catalog offer, its id and factor (for the report).
    pub by_offer: Vec<(u64, f64)>,
    /// Per request of the batch, per world offer, the model's probability.
    model_p: Vec<Vec<f64>>,
}

impl Calibration {
    /// The world of `catalog` (the scenario's) under `seed`, probed by
    /// `probe` (built like the greedy policy's engine).
    pub fn new(
        probe: Engine,
        catalog: &Catalog,
        offers: &OfferMap,
        generator: &Generator,
        seed: u64,
    ) -> Self {
        let per_offer = calibration_factors(catalog.len(), seed);
        let mut factors = vec![1.0; generator.offers().len()];
        for (i, &f) in per_offer.iter().enumerate() {
            factors[offers.world_index(i)] = f;
        }
        let by_offer = catalog.ids().iter().copied().zip(per_offer).collect();
        Self {
            probe,
            factors,
            by_offer,
            model_p: vec![vec![0.0; generator.offers().len()]; BATCH],
        }
    }

    /// Scores the batch's requests (floors 0, as the policies see them).
    pub fn probe(
        &mut self,
        batch: &[(SynthRow, RowTruth)],
        offers: &OfferMap,
        now_ns: u64,
    ) -> Result<()> {
        let failed = |source| Error::Engine {
            what: "cannot probe the model's probabilities".into(),
            source,
        };
        for (row, _) in batch {
            let mut ctx = row.to_context();
            ctx.bid_floor = 0.0;
            self.probe.submit_simulated(ctx).map_err(failed)?;
        }
        self.probe.run_until_decided(now_ns);
        let mut decided: Vec<_> = self.probe.drain().collect();
        decided.sort_by_key(|d| d.ticket.0);
        if decided.len() != batch.len() {
            return Err(Error::Mismatch(format!(
                "the probe engine decided {} of {} requests",
                decided.len(),
                batch.len()
            )));
        }
        for (p, decision) in self.model_p.iter_mut().zip(&decided) {
            p.fill(0.0);
            for o in decision.offers() {
                p[offers.world_index(o.catalog_index as usize)] = f64::from(o.p_click);
            }
        }
        Ok(())
    }

    /// The model's probabilities for request `j` of the last batch, and the
    /// factors: what [`super::oracle::Truth::calibrated`] takes.
    pub fn truth(&self, j: usize) -> (&[f64], &[f64]) {
        (&self.model_p[j], &self.factors)
    }
}
