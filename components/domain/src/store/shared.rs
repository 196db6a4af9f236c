//! The stores a process's engines share: one per server, handed to every
//! worker's engine, so that frequency caps and budgets hold over all of
//! them ([`SharedFrequency`], [`BudgetBank`] with a [`LeasedBudgets`] per
//! engine), and so that what one worker learns from feedback every worker
//! uses (the click posteriors, the creative variants' counts and the win
//! rates).

use super::budget::OFFERS_MAX;
use super::frequency::FrequencyConfig;
use super::lease::{BudgetBank, LeaseConfig, LeasedBudgets};
use super::shared_frequency::SharedFrequency;
use super::shared_posteriors::PosteriorHub;
use super::shared_win_rates::SharedWinRates;
use super::variants::VariantHub;
use super::win_rates::WinRateConfig;
use crate::catalog::Catalog;
use crate::error::Result;
use std::sync::Arc;

/// Frequency counts and budgets for several engines. Cheap to clone:
/// clones share the stores.
#[derive(Clone, Debug)]
pub struct SharedStores {
    frequency: SharedFrequency,
    bank: Arc<BudgetBank>,
    lease: LeaseConfig,
    /// Click posteriors every engine learns into, if shared.
    posteriors: Option<Arc<PosteriorHub>>,
    /// Creative variants' counts every engine learns into, if shared.
    variants: Option<Arc<VariantHub>>,
    /// Win rates per placement every engine prices from.
    win_rates: SharedWinRates,
}

/// Slots of a shared bank per offer of the catalog it starts with: room for
/// catalogs swapped in later with new offer ids (at least this many ids in
/// all, at most [`OFFERS_MAX`]).
pub const BANK_SLOTS_PER_OFFER: usize = 8;
/// The fewest slots a shared bank has.
pub const BANK_SLOTS_MIN: usize = 1024;

impl SharedStores {
    /// Stores for engines deciding over `catalog`: the frequency store of
    /// `frequency`'s size, and a bank of the catalog's daily budgets that
    /// each engine leases from as `lease` says. The bank keys budgets by
    /// offer id and has room for [`BANK_SLOTS_PER_OFFER`] times the
    /// catalog's offers (at least [`BANK_SLOTS_MIN`], at most
    /// [`OFFERS_MAX`]) distinct ids over its life, for catalogs swapped in
    /// later.
    pub fn new(catalog: &Catalog, frequency: FrequencyConfig, lease: LeaseConfig) -> Result<Self> {
        lease.validate()?;
        let capacity = (catalog.len().saturating_mul(BANK_SLOTS_PER_OFFER))
            .clamp(BANK_SLOTS_MIN, OFFERS_MAX)
            .max(catalog.len());
        let bank = BudgetBank::with_capacity(capacity)?;
        bank.register(catalog.ids(), catalog.daily_budgets())?;
        Ok(Self {
            frequency: SharedFrequency::new(frequency)?,
            bank: Arc::new(bank),
            lease,
            posteriors: None,
            variants: None,
            win_rates: SharedWinRates::new(WinRateConfig::default())?,
        })
    }

    /// These stores with `hub` as the click posteriors every engine shares
    /// (its offers in the catalog's order), so that feedback taken by any
    /// worker teaches all of them.
    pub fn share_posteriors(mut self, hub: Arc<PosteriorHub>) -> Self {
        self.posteriors = Some(hub);
        self
    }

    /// These stores with `hub` as the creative variants' counts every
    /// engine shares (for the catalog's offers and variants).
    pub fn share_variants(mut self, hub: Arc<VariantHub>) -> Self {
        self.variants = Some(hub);
        self
    }

    /// The shared variants' counts, if any.
    pub fn variants(&self) -> Option<&Arc<VariantHub>> {
        self.variants.as_ref()
    }

    /// The shared win rates.
    pub fn win_rates(&self) -> &SharedWinRates {
        &self.win_rates
    }

    /// The shared click posteriors, if any.
    pub fn posteriors(&self) -> Option<&Arc<PosteriorHub>> {
        self.posteriors.as_ref()
    }

    /// The shared frequency store.
    pub fn frequency(&self) -> &SharedFrequency {
        &self.frequency
    }

    /// The shared budget bank.
    pub fn bank(&self) -> &Arc<BudgetBank> {
        &self.bank
    }

    /// One engine's side of the bank for `catalog` (the engine's): its
    /// offers are registered with the bank by id, so engines over different
    /// catalogs (one swapped in) share each offer's budget. Fails when the
    /// bank refuses the catalog (too many new offer ids).
    pub fn leases_for(&self, catalog: &Catalog) -> Result<LeasedBudgets> {
        LeasedBudgets::for_catalog(
            Arc::clone(&self.bank),
            self.lease,
            catalog.ids(),
            catalog.daily_budgets(),
        )
    }
}
