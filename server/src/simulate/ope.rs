//! Off-policy evaluation inside `cx simulate`: the value of the `greedy`
//! policy estimated (IPS, SNIPS, via `cx-evaluation`) from the `thompson`
//! run's decisions and logged propensities, set against its true value,
//! which the synthetic world knows; and the thompson run's log as DSJSON.
//!
//! Each thompson decision that chose an offer is one logged event: its
//! candidates are the offers the decision ranked (at most 8), the chosen
//! one first with the decision's propensity; the rest of the probability is
//! spread evenly over the other candidates (only the chosen offer's
//! probability enters IPS and SNIPS). The target is what the `greedy` run
//! chose on the same request (its own engine, so its own caps and budgets):
//! probability 1 on that offer. Its true value on the event is
//! `P(win at its bid) * p_true(its offer)`: the reward is a click, and a
//! click needs a won auction (under direct settlement `P(win)` is 1). An
//! event where greedy chose nothing, or an offer thompson did not rank, is
//! unsupported and left out of both the estimates and the truth.
//!
//! Thompson's propensity is itself a Monte-Carlo estimate (one over the
//! replica rounds until the chosen offer wins one, `docs/DECISIONS.md`,
//! "Propensity"): its inverse is unbiased, and the weights carry its
//! noise.

use super::auction::Auction;
use super::oracle::{OfferMap, Truth};
use super::policy::SettlementMode;
use crate::error::{Error, Result};
use cx_decision::{ChosenOffer, Decision};
use cx_evaluation::{DsjsonWriter, Estimate, Evaluator, LoggedEvent, Observation};
use cx_features::RequestContext;
use std::io::Write;

/// The estimates and the truth.
#[derive(Clone, Debug, serde::Serialize)]
pub struct OpeReport {
    /// The policy that logged (`thompson`).
    pub logging_policy: &'static str,
    /// The policy evaluated (`greedy`).
    pub target_policy: &'static str,
    /// Events evaluated.
    pub events: u64,
    /// Events left out: the greedy offer was not among the candidates.
    pub unsupported: u64,
    /// The intervals' level.
    pub level: f64,
    /// Inverse propensity scoring.
    pub ips: Estimate,
    /// Self-normalised IPS.
    pub snips: Estimate,
    /// The logging policy's own mean reward.
    pub logging_value: Estimate,
    /// `(Σw)² / Σw²`.
    pub effective_sample_size: f64,
    /// The mean importance weight (1 in expectation with exact
    /// propensities and full support).
    pub weight_mean: f64,
    /// The largest importance weight.
    pub weight_max: f64,
    /// Greedy's true value on the evaluated events.
    pub greedy_true_value: f64,
    /// Whether the IPS interval holds the truth.
    pub ips_covers_truth: bool,
    /// Whether the SNIPS interval holds the truth.
    pub snips_covers_truth: bool,
}

/// Accumulates the thompson run's events.
pub struct OpeLog<'w> {
    evaluator: Evaluator,
    unsupported: u64,
    truth_sum: f64,
    target: Vec<f64>,
    dsjson: Option<DsjsonWriter<&'w mut dyn Write>>,
    model_id: String,
}

impl<'w> OpeLog<'w> {
    /// An empty log at confidence `level`, writing DSJSON to `dsjson` if
    /// given.
    pub fn new(level: f64, dsjson: Option<&'w mut dyn Write>, model_id: String) -> Result<Self> {
        Ok(Self {
            evaluator: Evaluator::new(level).map_err(|e| Error::Mismatch(e.to_string()))?,
            unsupported: 0,
            truth_sum: 0.0,
            target: Vec::new(),
            dsjson: dsjson.map(DsjsonWriter::new),
            model_id,
        })
    }

    /// Adds a thompson decision that chose an offer, with its reward.
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &mut self,
        decision: &Decision,
        decision_id: String,
        ctx: &RequestContext,
        now_ns: u64,
        clicked: bool,
        greedy: Option<&ChosenOffer>,
        truth: &Truth<'_>,
        offers: &OfferMap,
        auction: &Auction,
        settlement: SettlementMode,
    ) -> Result<()> {
        let ranked = decision.offers();
        if ranked.is_empty() {
            return Ok(());
        }
        let reward = if clicked { 1.0 } else { 0.0 };
        let propensity = f64::from(decision.propensity).clamp(f64::MIN_POSITIVE, 1.0);
        let k = ranked.len();
        let mut probabilities = vec![0.0; k];
        probabilities[0] = if k == 1 { 1.0 } else { propensity };
        for p in probabilities.iter_mut().skip(1) {
            *p = (1.0 - propensity) / (k - 1) as f64;
        }
        if let Some(writer) = self.dsjson.as_mut() {
            writer
                .write(&LoggedEvent {
                    event_id: decision_id,
                    timestamp_unix_ns: now_ns,
                    model_id: Some(self.model_id.clone()),
                    context: ctx.clone(),
                    offers: ranked.iter().map(|o| o.offer_id).collect(),
                    chosen: 0,
                    probabilities: probabilities.clone(),
                    reward,
                    experiment: None,
                })
                .map_err(|e| Error::Mismatch(format!("writing the DSJSON log: {e}")))?;
        }
        // The greedy run's choice on the same request, if thompson ranked it.
        self.target.clear();
        self.target.extend(
            ranked
                .iter()
                .map(|o| f64::from(u8::from(Some(o.offer_id) == greedy.map(|g| g.offer_id)))),
        );
        let (Some(greedy), true) = (greedy, self.target.contains(&1.0)) else {
            self.unsupported += 1;
            return Ok(());
        };
        let p_true = truth.p(offers.world_index(greedy.catalog_index as usize));
        let win = match settlement {
            SettlementMode::Direct => 1.0,
            SettlementMode::Auction => auction.win_probability(greedy.bid_cpm, ctx.bid_floor),
        };
        let value = win * p_true;
        self.truth_sum += value;
        self.evaluator
            .add(&Observation {
                reward,
                chosen: 0,
                logging_probability: probabilities[0],
                target: &self.target,
                reward_model: None,
            })
            .map_err(|e| Error::Mismatch(format!("off-policy evaluation: {e}")))
    }

    /// The report, and the DSJSON flushed. `None` with fewer than 2 events.
    pub fn finish(self) -> Result<Option<OpeReport>> {
        if let Some(writer) = self.dsjson {
            writer
                .finish()
                .map_err(Error::Output)?
                .flush()
                .map_err(Error::Output)?;
        }
        if self.evaluator.events() < 2 {
            return Ok(None);
        }
        let report = self
            .evaluator
            .finish()
            .map_err(|e| Error::Mismatch(format!("off-policy evaluation: {e}")))?;
        let truth = self.truth_sum / report.events as f64;
        Ok(Some(OpeReport {
            logging_policy: "thompson",
            target_policy: "greedy",
            events: report.events,
            unsupported: self.unsupported,
            level: report.level,
            ips: report.ips,
            snips: report.snips,
            logging_value: report.logging_policy,
            effective_sample_size: report.effective_sample_size,
            weight_mean: report.weight_mean,
            weight_max: report.weight_max,
            greedy_true_value: truth,
            ips_covers_truth: report.ips.covers(truth),
            snips_covers_truth: report.snips.covers(truth),
        }))
    }
}
