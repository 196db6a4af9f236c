//! The stores a process's engines share: one per server, handed to every
//! worker's engine, so that frequency caps and budgets hold over all of
//! them ([`SharedFrequency`], [`BudgetBank`] with a [`LeasedBudgets`] per
//! engine).

use super::frequency::FrequencyConfig;
use super::lease::{BudgetBank, LeaseConfig, LeasedBudgets};
use super::shared_frequency::SharedFrequency;
use crate::catalog::Catalog;
use crate::error::{Error, Result};
use std::sync::Arc;

/// Frequency counts and budgets for several engines. Cheap to clone:
/// clones share the stores.
#[derive(Clone, Debug)]
pub struct SharedStores {
    frequency: SharedFrequency,
    bank: Arc<BudgetBank>,
    /// The daily budgets the bank was made with, by offer index.
    budgets: Arc<[Option<f64>]>,
    lease: LeaseConfig,
}

impl SharedStores {
    /// Stores for engines deciding over `catalog`: the frequency store of
    /// `frequency`'s size, and a bank of the catalog's daily budgets that
    /// each engine leases from as `lease` says.
    pub fn new(catalog: &Catalog, frequency: FrequencyConfig, lease: LeaseConfig) -> Result<Self> {
        lease.validate()?;
        Ok(Self {
            frequency: SharedFrequency::new(frequency)?,
            bank: Arc::new(BudgetBank::new(catalog.daily_budgets())?),
            budgets: catalog.daily_budgets().into(),
            lease,
        })
    }

    /// The shared frequency store.
    pub fn frequency(&self) -> &SharedFrequency {
        &self.frequency
    }

    /// The shared budget bank.
    pub fn bank(&self) -> &Arc<BudgetBank> {
        &self.bank
    }

    /// One engine's side of the bank. Fails when `catalog` (the engine's)
    /// does not have the offers and budgets the bank was made with.
    pub fn leases_for(&self, catalog: &Catalog) -> Result<LeasedBudgets> {
        let same = *catalog.daily_budgets() == *self.budgets;
        if !same {
            return Err(Error::BadStoreConfig {
                store: "shared stores",
                reason: format!(
                    "the engine's catalog ({} offers) is not the one the shared budget bank was \
                     made with ({} offers, or other daily budgets)",
                    catalog.len(),
                    self.bank.offers()
                ),
            });
        }
        LeasedBudgets::new(Arc::clone(&self.bank), self.lease)
    }
}
