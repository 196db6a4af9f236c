//! The budget ledger: spend per offer against a daily budget.
//!
//! Money is kept in whole micros (millionths of a currency unit) as `u64`, so
//! sums are exact and order-independent; `f64` appears only at the edges.
//! Budgets given in currency units are rounded to the nearest micro. Amounts
//! spent are rounded *up* to a whole micro, so the ledger never records less
//! than was spent; a product that is within a few ulps of a whole micro
//! counts as that micro, so that `0.1` costs 100 000 micros and not 100 001
//! through binary rounding.
//!
//! A day is a UTC calendar day: `now_ns / 86_400_000_000_000` with `now_ns`
//! in nanoseconds since the Unix epoch. Each offer remembers the latest day
//! its spend belongs to; the first spend on a later day starts again from 0.
//! Read-only methods compute as if that reset had happened. A clock that
//! steps back across midnight keeps charging the later day (it does not get
//! a fresh budget), so no day's spend ever exceeds its budget.
//!
//! # Layout
//!
//! Three flat arrays indexed by offer: budget (`u64::MAX` for unlimited),
//! spend so far and its day. 20 bytes per offer; the ledger never grows.

use crate::error::{Error, Result};
use bevy_ecs::prelude::Resource;

/// Most offers a ledger may hold.
pub const OFFERS_MAX: usize = 1 << 16;
/// Largest daily budget, and largest single amount, in currency units.
pub const BUDGET_MAX: f64 = 1e12;

const STORE: &str = "budget ledger";
const MICROS_PER_UNIT: f64 = 1e6;
/// Nanoseconds in a UTC day.
pub const NS_PER_DAY: u64 = 86_400 * 1_000_000_000;
const UNLIMITED: u64 = u64::MAX;

/// Why [`BudgetLedger::spend`] refused an amount. A refused spend changes
/// nothing.
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
pub enum BudgetExhausted {
    /// The amount would take the offer past its budget for the day.
    #[error(
        "offer {offer}: spending {requested_micros} micros would exceed the day's \
         budget ({remaining_micros} micros left)"
    )]
    OverBudget {
        /// The offer index.
        offer: usize,
        /// The amount, in micros after rounding up.
        requested_micros: u64,
        /// What is left of the day's budget, in micros.
        remaining_micros: u64,
    },
    /// The amount is NaN, infinite, negative or more than [`BUDGET_MAX`].
    #[error("offer {offer}: amount {amount} is not a finite number in 0..={BUDGET_MAX}")]
    BadAmount {
        /// The offer index.
        offer: usize,
        /// The amount passed.
        amount: f64,
    },
    /// The offer index is not below [`BudgetLedger::offers`].
    #[error("offer {offer} is not in the ledger of {offers} offers")]
    UnknownOffer {
        /// The offer index.
        offer: usize,
        /// Offers in the ledger.
        offers: usize,
    },
}

/// Spend per offer against an optional daily budget, in whole micros. See the
/// [module docs](self).
#[derive(Resource, Clone, Debug, PartialEq, Eq)]
pub struct BudgetLedger {
    /// Daily budget per offer in micros; `u64::MAX` for unlimited.
    budget_micros: Vec<u64>,
    /// Spend on `day[offer]`, in micros.
    spent_micros: Vec<u64>,
    /// The latest UTC day (days since the epoch) seen by a spend; the day
    /// `spent_micros` belongs to.
    day: Vec<u32>,
}

impl BudgetLedger {
    /// A ledger with one daily budget per offer index, in currency units;
    /// `None` is unlimited. Fails with [`Error::BadStoreConfig`] when there
    /// are more than [`OFFERS_MAX`] offers or a budget is not a finite number
    /// in `0..=BUDGET_MAX`.
    pub fn new(daily_budgets: &[Option<f64>]) -> Result<Self> {
        if daily_budgets.len() > OFFERS_MAX {
            return Err(Error::BadStoreConfig {
                store: STORE,
                reason: format!(
                    "daily_budgets has {} offers, more than the limit of {OFFERS_MAX}",
                    daily_budgets.len()
                ),
            });
        }
        let mut budget_micros = Vec::with_capacity(daily_budgets.len());
        for (i, budget) in daily_budgets.iter().enumerate() {
            budget_micros.push(checked_budget_micros(i, *budget)?);
        }
        let n = budget_micros.len();
        Ok(Self {
            budget_micros,
            spent_micros: vec![0; n],
            day: vec![0; n],
        })
    }

    /// Number of offers in the ledger.
    pub fn offers(&self) -> usize {
        self.budget_micros.len()
    }

    /// What is left of `offer`'s budget for the day of `now_ns`, in currency
    /// units; `None` if the offer is unlimited. An offer index outside the
    /// ledger has nothing left (`Some(0.0)`), never "unlimited".
    pub fn remaining(&self, offer: usize, now_ns: u64) -> Option<f64> {
        self.remaining_micros(offer, now_ns)
            .map(|m| m as f64 / MICROS_PER_UNIT)
    }

    /// [`remaining`](Self::remaining) in whole micros.
    pub fn remaining_micros(&self, offer: usize, now_ns: u64) -> Option<u64> {
        let Some(&budget) = self.budget_micros.get(offer) else {
            return Some(0);
        };
        if budget == UNLIMITED {
            return None;
        }
        Some(budget.saturating_sub(self.spent_micros_today(offer, now_ns)))
    }

    /// Whether [`spend`](Self::spend) would accept `amount` now. False for an
    /// offer outside the ledger or an invalid amount.
    pub fn can_spend(&self, offer: usize, amount: f64, now_ns: u64) -> bool {
        match self.budget_micros.get(offer) {
            // Decide asks this of every offer; most have no budget, and
            // then only the amount's validity (`amount_micros`) matters.
            Some(&UNLIMITED) => (0.0..=BUDGET_MAX).contains(&amount),
            _ => self.check(offer, amount, now_ns).is_ok(),
        }
    }

    /// Records `amount` (currency units, rounded up to a whole micro) against
    /// `offer` for the day of `now_ns`. Refuses, changing nothing, when the
    /// offer is outside the ledger, the amount is invalid, or the spend would
    /// take the day's total past the budget; spending exactly the remainder is
    /// allowed. Unlimited offers accept any valid amount (their total
    /// saturates at `u64::MAX` micros).
    pub fn spend(&mut self, offer: usize, amount: f64, now_ns: u64) -> Result<(), BudgetExhausted> {
        let micros = self.check(offer, amount, now_ns)?;
        let today = day_of(now_ns);
        if today > self.day[offer] {
            self.day[offer] = today;
            self.spent_micros[offer] = 0;
        }
        self.spent_micros[offer] = self.spent_micros[offer].saturating_add(micros);
        Ok(())
    }

    /// Takes back `micros` of spend recorded against `offer` on the day of
    /// `now_ns` (a spend undone, or a lease returned unused), at most what
    /// that day recorded. Spend of an earlier day is not touched: a refund
    /// after midnight is dropped, since the new day started from 0. An
    /// offer outside the ledger is ignored.
    pub fn refund_micros(&mut self, offer: usize, micros: u64, now_ns: u64) {
        if offer >= self.offers() || day_of(now_ns) != self.day[offer] {
            return;
        }
        self.spent_micros[offer] = self.spent_micros[offer].saturating_sub(micros);
    }

    /// Spend on `offer` on the day of `now_ns`, in currency units; 0 for an
    /// offer outside the ledger.
    pub fn spent(&self, offer: usize, now_ns: u64) -> f64 {
        self.spent_micros(offer, now_ns) as f64 / MICROS_PER_UNIT
    }

    /// [`spent`](Self::spent) in whole micros.
    pub fn spent_micros(&self, offer: usize, now_ns: u64) -> u64 {
        if offer >= self.offers() {
            return 0;
        }
        self.spent_micros_today(offer, now_ns)
    }

    /// The daily budget of `offer` in currency units; `None` if unlimited or
    /// outside the ledger.
    pub fn daily_budget(&self, offer: usize) -> Option<f64> {
        match self.budget_micros.get(offer) {
            Some(&b) if b != UNLIMITED => Some(b as f64 / MICROS_PER_UNIT),
            _ => None,
        }
    }

    /// Sets `offer`'s daily budget (currency units; `None`: unlimited),
    /// keeping what it spent today: a catalog swapped in with another
    /// budget for the same offer. Fails, changing nothing, for an offer
    /// outside the ledger or a budget that is not a finite number in
    /// `0..=BUDGET_MAX`.
    pub fn set_daily_budget(&mut self, offer: usize, budget: Option<f64>) -> Result<()> {
        let micros = checked_budget_micros(offer, budget)?;
        let Some(slot) = self.budget_micros.get_mut(offer) else {
            return Err(Error::BadStoreConfig {
                store: STORE,
                reason: format!(
                    "offer {offer} is not in the ledger of {} offers",
                    self.offers()
                ),
            });
        };
        *slot = micros;
        Ok(())
    }

    /// Takes over the spend of `from` by offer: offer `i` of this ledger
    /// gets the spend and day of offer `map[i]` of `from` (`None`: a new
    /// offer, nothing spent). For a catalog swapped in, `map` pairs offers
    /// by id, so that a budget spent today stays spent whatever the new
    /// catalog's order. Out-of-range entries are skipped. Allocates
    /// nothing.
    pub fn carry_over(&mut self, from: &BudgetLedger, map: &[Option<u32>]) {
        for (i, old) in map.iter().enumerate().take(self.offers()) {
            let Some(old) = old.map(|o| o as usize).filter(|&o| o < from.offers()) else {
                continue;
            };
            self.spent_micros[i] = from.spent_micros[old];
            self.day[i] = from.day[old];
        }
    }

    /// Offer `offer`'s spend as kept: the day it belongs to and the micros
    /// spent that day (for a state file); `None` out of range.
    pub fn spend_record(&self, offer: usize) -> Option<(u32, u64)> {
        Some((*self.day.get(offer)?, self.spent_micros[offer]))
    }

    /// Sets offer `offer`'s spend to `micros` on `day` (restoring a state
    /// file into a new ledger); out-of-range offers are skipped.
    pub fn restore_spend(&mut self, offer: usize, day: u32, micros: u64) {
        if offer < self.offers() {
            self.day[offer] = day;
            self.spent_micros[offer] = micros;
        }
    }

    /// The amount in micros if `spend` would accept it.
    fn check(&self, offer: usize, amount: f64, now_ns: u64) -> Result<u64, BudgetExhausted> {
        let Some(&budget) = self.budget_micros.get(offer) else {
            return Err(BudgetExhausted::UnknownOffer {
                offer,
                offers: self.offers(),
            });
        };
        let micros = amount_micros(amount).ok_or(BudgetExhausted::BadAmount { offer, amount })?;
        if budget == UNLIMITED {
            return Ok(micros);
        }
        let remaining = budget.saturating_sub(self.spent_micros_today(offer, now_ns));
        if micros > remaining {
            return Err(BudgetExhausted::OverBudget {
                offer,
                requested_micros: micros,
                remaining_micros: remaining,
            });
        }
        Ok(micros)
    }

    /// Spend recorded for `offer`, or 0 if `now_ns` is on a later day than
    /// the one it belongs to. `offer` must be in range.
    fn spent_micros_today(&self, offer: usize, now_ns: u64) -> u64 {
        if day_of(now_ns) > self.day[offer] {
            0
        } else {
            self.spent_micros[offer]
        }
    }
}

/// A daily budget in micros (`UNLIMITED` for `None`), or why it is refused.
fn checked_budget_micros(i: usize, budget: Option<f64>) -> Result<u64> {
    match budget {
        None => Ok(UNLIMITED),
        Some(b) if (0.0..=BUDGET_MAX).contains(&b) => Ok((b * MICROS_PER_UNIT).round() as u64),
        Some(b) => Err(Error::BadStoreConfig {
            store: STORE,
            reason: format!(
                "daily_budgets[{i}] is {b}: must be a finite number in 0..={BUDGET_MAX}"
            ),
        }),
    }
}

/// The UTC day of `now_ns` (nanoseconds since the Unix epoch). `u64::MAX`
/// nanoseconds is about 213 503 days, so it fits a `u32`.
pub fn day_of(now_ns: u64) -> u32 {
    (now_ns / NS_PER_DAY) as u32
}

/// `amount` currency units in whole micros, rounded up, treating a product
/// within a few ulps of a whole micro as that micro; `None` if the amount is
/// not a finite number in `0..=BUDGET_MAX`.
pub fn amount_micros(amount: f64) -> Option<u64> {
    if !(0.0..=BUDGET_MAX).contains(&amount) {
        return None;
    }
    let exact = amount * MICROS_PER_UNIT;
    let nearest = exact.round();
    let micros = if (exact - nearest).abs() <= nearest * 4.0 * f64::EPSILON {
        nearest
    } else {
        exact.ceil()
    };
    Some(micros as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_round_up_to_whole_micros() {
        assert_eq!(amount_micros(0.0), Some(0));
        assert_eq!(amount_micros(-0.0), Some(0));
        assert_eq!(amount_micros(1e-7), Some(1));
        assert_eq!(amount_micros(1e-300), Some(1));
        assert_eq!(amount_micros(0.0000015), Some(2));
        assert_eq!(amount_micros(0.1), Some(100_000));
        assert_eq!(amount_micros(0.29), Some(290_000));
        assert_eq!(amount_micros(1.000_000_1), Some(1_000_001));
        assert_eq!(amount_micros(BUDGET_MAX), Some(1_000_000_000_000_000_000));
        for bad in [
            f64::NAN,
            f64::INFINITY,
            -f64::INFINITY,
            -1e-9,
            BUDGET_MAX * 1.01,
        ] {
            assert_eq!(amount_micros(bad), None, "{bad}");
        }
    }

    #[test]
    fn decimal_amounts_made_of_whole_micros_round_to_themselves() {
        for m in (0..2_000_000u64).step_by(997) {
            let amount = m as f64 / 1e6;
            assert_eq!(amount_micros(amount), Some(m), "{amount}");
        }
    }

    #[test]
    fn day_boundary_is_midnight_utc() {
        assert_eq!(day_of(NS_PER_DAY - 1), 0);
        assert_eq!(day_of(NS_PER_DAY), 1);
        assert_eq!(day_of(u64::MAX), 213_503);
    }
}
