//! What the pipeline does with the decision log: the entry a decision is
//! logged as, and how an [`Effect`] (a joined event, or a bid settled
//! because its win window closed) changes the budgets and frequency caps.
//! The engine applies events through [`apply_effect`]; the decide system
//! applies the releases of decisions the log evicts.

use super::decide::window_s;
use super::NS_PER_S;
use crate::config::DecideConfig;
use cx_domain::catalog::Catalog;
use cx_domain::pipeline::{ChosenOffer, Decision};
use cx_domain::store::budget::amount_micros;
use cx_domain::store::{Budgets, Effect, FrequencyCaps, LoggedDecision, Settlement};

const MICROS_PER_UNIT: f64 = 1e6;

/// What the decide system knows of a decision when it logs it.
pub struct DecisionFacts {
    /// The decision log's key for it.
    pub key: u64,
    /// Its settlement.
    pub settlement: Settlement,
    /// The key of the model that scored it.
    pub model_key: u64,
    /// Its experiment arm (0: none).
    pub arm: u16,
    /// The request's feature fingerprint.
    pub fingerprint: u64,
    /// The user.
    pub user_hash: u64,
    /// The placement ([`super::placement_key`]).
    pub placement_key: u64,
    /// The host's time, ns.
    pub now_ns: u64,
}

/// The log entry of `decision` (its top offer), or `None` when it chose no
/// offer or was simulated: those take no events.
pub fn logged_decision(decision: &Decision, facts: &DecisionFacts) -> Option<LoggedDecision> {
    if decision.simulated {
        return None;
    }
    let top: &ChosenOffer = decision.offers().first()?;
    let reserved_micros = match facts.settlement {
        Settlement::Auction => amount_micros(top.bid_cpm / 1000.0).unwrap_or(0),
        Settlement::Direct => 0,
    };
    Some(LoggedDecision {
        key: facts.key,
        decided_ns: facts.now_ns,
        offer_id: top.offer_id,
        offer_index: top.catalog_index,
        variant: u32::from(decision.variant),
        p_click: top.p_click,
        score: top.score,
        propensity: decision.propensity,
        model_key: facts.model_key,
        arm: facts.arm,
        fingerprint: facts.fingerprint,
        user_hash: facts.user_hash,
        placement_key: facts.placement_key,
        reserved_micros,
        settlement: facts.settlement,
        simulated: false,
    })
}

/// What [`apply_effect`] did to the stores.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EffectApplied {
    /// Budget given back, micros.
    pub refunded_micros: u64,
    /// Budget charged beyond the reservation, micros.
    pub charged_micros: u64,
    /// A charge beyond the reservation the budget could not pay, micros
    /// (the exchange cleared above the bid and the budget is spent).
    pub charge_refused_micros: u64,
    /// Whether a frequency-cap slot went back to the user.
    pub cap_released: bool,
    /// The offer is not in the serving catalog any more: nothing to do.
    pub offer_gone: bool,
    /// The offer's index in the serving catalog (`None` when gone).
    pub offer_index: Option<usize>,
}

/// Applies `effect` to the budgets and frequency caps at `now_ns`: gives
/// back or charges budget on the decided offer (found by id in the
/// serving catalog, which a swap may have reordered) and gives the
/// user's cap slot back. A budget given back on a later day than it was
/// spent is not returned to that later day (each day's budget stands
/// alone; `BudgetLedger::refund`).
pub fn apply_effect<F: FrequencyCaps, B: Budgets>(
    effect: &Effect,
    catalog: &Catalog,
    config: &DecideConfig,
    frequency: &mut F,
    budget: &mut B,
    now_ns: u64,
) -> EffectApplied {
    let d = &effect.decision;
    let mut out = EffectApplied::default();
    let Some(i) = catalog.index_of(d.offer_id) else {
        out.offer_gone = true;
        return out;
    };
    out.offer_index = Some(i);
    if effect.refund_micros > 0 {
        budget.refund(i, effect.refund_micros as f64 / MICROS_PER_UNIT, now_ns);
        out.refunded_micros = effect.refund_micros;
    }
    if effect.charge_micros > 0 {
        let amount = effect.charge_micros as f64 / MICROS_PER_UNIT;
        if budget.spend(i, amount, now_ns).is_ok() {
            out.charged_micros = effect.charge_micros;
        } else {
            out.charge_refused_micros = effect.charge_micros;
        }
    }
    if effect.release_cap && d.user_hash != 0 {
        let window_ns = window_s(catalog, config, i) * NS_PER_S;
        out.cap_released = frequency.release(d.user_hash, d.offer_id, d.decided_ns, window_ns);
    }
    out
}
