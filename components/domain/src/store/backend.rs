//! The stores' narrow interfaces, and the closed enums the pipeline holds
//! them through.
//!
//! The systems never name an in-process store. They hold a
//! [`CacheBackend`], a [`FrequencyBackend`] and a [`BudgetBackend`] as
//! resources and call them through the traits below, so that a backend
//! shared across worker threads, or across machines on Redis, is one more
//! enum variant and touches no system. Dispatch is a `match` on a closed
//! enum (no `dyn` call per offer), as for the kernels' backends.
//!
//! # As key-value operations
//!
//! Every operation reads or writes one small value under one key, so each
//! maps onto one key-value command, and a tick's operations onto one
//! pipelined batch:
//!
//! | operation | key | value | key-value form |
//! | --- | --- | --- | --- |
//! | [`ScoreCache::get`] | cache key (model id and feature row hash) | one probability per model column | `GET` |
//! | [`ScoreCache::insert`] | the same | the same, with an expiry | `SET ... PX ttl` |
//! | [`FrequencyCaps::user_entries`] | user hash | at most 8 (offer id, count, window start) entries, 160 bytes | `GET` |
//! | [`FrequencyCaps::record_within`] | user hash | one entry's count, checked against the cap | read-modify-write of that value (a server-side script) |
//! | [`FrequencyCaps::release`] | user hash | one entry's count, less one if the impression is in its window | read-modify-write (a script) |
//! | [`Budgets::can_spend`] | offer index and day | micros spent that day | `GET` |
//! | [`Budgets::spend`] | the same | the same, checked against the budget | `INCRBY` that refuses past the budget (a script); leased: one such script per chunk, not per bid |
//! | [`Budgets::refund`] | the same | the same, less the amount | `DECRBY` on the same day |
//!
//! The `Shared` and `Leased` variants are the step between: one store per
//! process, shared by its workers ([`super::shared_frequency`],
//! [`super::lease`]), with every operation above still one key's read or
//! write.
//!
//! Reads never depend on writes of the same tick except through the
//! engine's own order (a request's decide sees the commits of the requests
//! decided before it), which a remote backend keeps by applying each
//! tick's writes to its local copy of the values it read.

use super::budget::amount_micros;
use super::{
    BudgetExhausted, BudgetLedger, CacheStats, DecisionCache, FrequencyStats, FrequencyStore,
    LeasedBudgets, SharedFrequency, UserEntries,
};
use crate::catalog::Catalog;
use crate::error::Result;
use bevy_ecs::prelude::Resource;

/// Recent model score rows by cache key, with an expiry.
pub trait ScoreCache {
    /// The row cached for `key`, if one is held and has not expired at
    /// `now_ns`.
    fn get(&mut self, key: u64, now_ns: u64) -> Option<&[f32]>;
    /// Stores `row` for `key` until `valid_until_ns` at the latest. Fails,
    /// storing nothing, when `row` is not as wide as the cache's rows.
    fn insert(&mut self, key: u64, row: &[f32], now_ns: u64, valid_until_ns: u64) -> Result<()>;
    /// Drops every entry (a model swap makes them unreachable).
    fn clear(&mut self);
    /// Counters since creation.
    fn stats(&self) -> CacheStats;
    /// Probabilities per row.
    fn value_width(&self) -> usize;
}

/// Impression counts per (user, offer id) in windows, for frequency caps.
pub trait FrequencyCaps {
    /// A snapshot of the user's entries, for one decision's many offers.
    fn user_entries(&self, user_hash: u64) -> UserEntries;
    /// Records one impression of the offer with id `offer` to the user.
    fn record(&mut self, user_hash: u64, offer: u64, now_ns: u64, window_ns: u64);
    /// Records one impression unless the user already has `cap` of them in
    /// the current window (`None`: no cap); the check and the record are one
    /// step, whoever else shares the store. Returns whether it recorded.
    fn record_within(
        &mut self,
        user_hash: u64,
        offer: u64,
        cap: Option<u32>,
        now_ns: u64,
        window_ns: u64,
    ) -> bool;
    /// Gives back one impression of the offer recorded at `recorded_ns` (a
    /// reserved slot whose bid lost), if still in its window; returns
    /// whether it did.
    fn release(&mut self, user_hash: u64, offer: u64, recorded_ns: u64, window_ns: u64) -> bool;
    /// Counters since creation.
    fn stats(&self) -> FrequencyStats;
}

/// Spend per offer against a daily budget.
pub trait Budgets {
    /// Whether [`Budgets::spend`] would accept `amount` now.
    fn can_spend(&self, offer: usize, amount: f64, now_ns: u64) -> bool;
    /// Records `amount` against the offer's budget for the day of `now_ns`,
    /// or refuses it, changing nothing.
    fn spend(&mut self, offer: usize, amount: f64, now_ns: u64) -> Result<(), BudgetExhausted>;
    /// Takes back `amount` that [`Budgets::spend`] accepted on the same
    /// day (a commit undone).
    fn refund(&mut self, offer: usize, amount: f64, now_ns: u64);
    /// What the offer has spent on the day of `now_ns`, in currency units:
    /// through this handle (a leased one: this worker's spend).
    fn spent(&self, offer: usize, now_ns: u64) -> f64;
    /// Housekeeping once per tick: a leased handle returns allowances
    /// unused for their time to live. Nothing for the others.
    fn maintain(&mut self, now_ns: u64);
}

impl ScoreCache for DecisionCache {
    fn get(&mut self, key: u64, now_ns: u64) -> Option<&[f32]> {
        DecisionCache::get(self, key, now_ns)
    }
    fn insert(&mut self, key: u64, row: &[f32], now_ns: u64, valid_until_ns: u64) -> Result<()> {
        DecisionCache::insert(self, key, row, now_ns, valid_until_ns)
    }
    fn clear(&mut self) {
        DecisionCache::clear(self);
    }
    fn stats(&self) -> CacheStats {
        DecisionCache::stats(self)
    }
    fn value_width(&self) -> usize {
        DecisionCache::value_width(self)
    }
}

impl FrequencyCaps for FrequencyStore {
    fn user_entries(&self, user_hash: u64) -> UserEntries {
        FrequencyStore::user_entries(self, user_hash)
    }
    fn record(&mut self, user_hash: u64, offer: u64, now_ns: u64, window_ns: u64) {
        FrequencyStore::record(self, user_hash, offer, now_ns, window_ns);
    }
    fn record_within(
        &mut self,
        user_hash: u64,
        offer: u64,
        cap: Option<u32>,
        now_ns: u64,
        window_ns: u64,
    ) -> bool {
        FrequencyStore::record_within(self, user_hash, offer, cap, now_ns, window_ns)
    }
    fn release(&mut self, user_hash: u64, offer: u64, recorded_ns: u64, window_ns: u64) -> bool {
        FrequencyStore::release(self, user_hash, offer, recorded_ns, window_ns)
    }
    fn stats(&self) -> FrequencyStats {
        FrequencyStore::stats(self)
    }
}

impl Budgets for BudgetLedger {
    fn can_spend(&self, offer: usize, amount: f64, now_ns: u64) -> bool {
        BudgetLedger::can_spend(self, offer, amount, now_ns)
    }
    fn spend(&mut self, offer: usize, amount: f64, now_ns: u64) -> Result<(), BudgetExhausted> {
        BudgetLedger::spend(self, offer, amount, now_ns)
    }
    fn refund(&mut self, offer: usize, amount: f64, now_ns: u64) {
        if let Some(micros) = amount_micros(amount) {
            self.refund_micros(offer, micros, now_ns);
        }
    }
    fn spent(&self, offer: usize, now_ns: u64) -> f64 {
        BudgetLedger::spent(self, offer, now_ns)
    }
    fn maintain(&mut self, _now_ns: u64) {}
}

/// The decision cache the pipeline uses.
#[derive(Resource, Clone, Debug, PartialEq)]
pub enum CacheBackend {
    /// This engine's own set-associative cache.
    InProcess(DecisionCache),
}

/// The frequency-cap store the pipeline uses.
// One resource per World, built once and never moved after: the variants'
// size difference costs nothing, and boxing the in-process store would add
// a pointer chase to every lookup.
#[allow(clippy::large_enum_variant)]
#[derive(Resource, Clone, Debug, PartialEq, Eq)]
pub enum FrequencyBackend {
    /// This engine's own store.
    InProcess(FrequencyStore),
    /// One store shared by the process's engines (its workers).
    Shared(SharedFrequency),
}

/// The budget ledger the pipeline uses.
#[allow(clippy::large_enum_variant)] // as for `FrequencyBackend`
#[derive(Resource, Clone, Debug, PartialEq)]
pub enum BudgetBackend {
    /// This engine's own ledger.
    InProcess(BudgetLedger),
    /// This engine's allowances, leased from a bank its process's engines
    /// share.
    Leased(LeasedBudgets),
}

impl CacheBackend {
    /// An empty cache of the same kind and size for rows of `width` scores
    /// (a swapped-in model of another width). Fails, changing nothing, when
    /// such rows would not fit the cache's limits.
    pub fn with_width(&self, width: usize) -> Result<Self> {
        match self {
            Self::InProcess(c) => Ok(Self::InProcess(DecisionCache::new(c.config(), width)?)),
        }
    }
}

impl BudgetBackend {
    /// An empty store of the same kind for `catalog`'s offers (a catalog
    /// swapped in): a ledger of its daily budgets, or a leased side of the
    /// same bank with its offers registered by id. Fails, changing
    /// nothing, when a budget is out of range or the bank has no room for
    /// the catalog's new offer ids.
    pub fn for_catalog(&self, catalog: &Catalog) -> Result<Self> {
        Ok(match self {
            Self::InProcess(_) => Self::InProcess(BudgetLedger::new(catalog.daily_budgets())?),
            Self::Leased(l) => {
                Self::Leased(l.for_other_catalog(catalog.ids(), catalog.daily_budgets())?)
            }
        })
    }

    /// Takes over `from`'s spend by offer: offer `i` gets that of offer
    /// `map[i]` of `from` (`None`: a new offer). A leased store's grants
    /// live in the bank by offer id already; this carries the worker's own
    /// count. Stores of different kinds carry nothing. Allocates nothing.
    pub fn carry_over(&mut self, from: &BudgetBackend, map: &[Option<u32>]) {
        match (self, from) {
            (Self::InProcess(to), Self::InProcess(from)) => to.carry_over(from, map),
            (Self::Leased(to), Self::Leased(from)) => to.carry_over(from, map),
            _ => {}
        }
    }
}

impl ScoreCache for CacheBackend {
    fn get(&mut self, key: u64, now_ns: u64) -> Option<&[f32]> {
        match self {
            Self::InProcess(c) => c.get(key, now_ns),
        }
    }
    fn insert(&mut self, key: u64, row: &[f32], now_ns: u64, valid_until_ns: u64) -> Result<()> {
        match self {
            Self::InProcess(c) => c.insert(key, row, now_ns, valid_until_ns),
        }
    }
    fn clear(&mut self) {
        match self {
            Self::InProcess(c) => c.clear(),
        }
    }
    fn stats(&self) -> CacheStats {
        match self {
            Self::InProcess(c) => c.stats(),
        }
    }
    fn value_width(&self) -> usize {
        match self {
            Self::InProcess(c) => c.value_width(),
        }
    }
}

impl FrequencyCaps for FrequencyBackend {
    fn user_entries(&self, user_hash: u64) -> UserEntries {
        match self {
            Self::InProcess(s) => s.user_entries(user_hash),
            Self::Shared(s) => s.user_entries(user_hash),
        }
    }
    fn record(&mut self, user_hash: u64, offer: u64, now_ns: u64, window_ns: u64) {
        match self {
            Self::InProcess(s) => s.record(user_hash, offer, now_ns, window_ns),
            Self::Shared(s) => s.record(user_hash, offer, now_ns, window_ns),
        }
    }
    fn record_within(
        &mut self,
        user_hash: u64,
        offer: u64,
        cap: Option<u32>,
        now_ns: u64,
        window_ns: u64,
    ) -> bool {
        match self {
            Self::InProcess(s) => {
                FrequencyCaps::record_within(s, user_hash, offer, cap, now_ns, window_ns)
            }
            Self::Shared(s) => s.record_within(user_hash, offer, cap, now_ns, window_ns),
        }
    }
    fn release(&mut self, user_hash: u64, offer: u64, recorded_ns: u64, window_ns: u64) -> bool {
        match self {
            Self::InProcess(s) => s.release(user_hash, offer, recorded_ns, window_ns),
            Self::Shared(s) => s.release(user_hash, offer, recorded_ns, window_ns),
        }
    }
    fn stats(&self) -> FrequencyStats {
        match self {
            Self::InProcess(s) => s.stats(),
            Self::Shared(s) => s.stats(),
        }
    }
}

impl Budgets for BudgetBackend {
    fn can_spend(&self, offer: usize, amount: f64, now_ns: u64) -> bool {
        match self {
            Self::InProcess(l) => l.can_spend(offer, amount, now_ns),
            Self::Leased(l) => l.can_spend(offer, amount, now_ns),
        }
    }
    fn spend(&mut self, offer: usize, amount: f64, now_ns: u64) -> Result<(), BudgetExhausted> {
        match self {
            Self::InProcess(l) => l.spend(offer, amount, now_ns),
            Self::Leased(l) => l.spend(offer, amount, now_ns),
        }
    }
    fn refund(&mut self, offer: usize, amount: f64, now_ns: u64) {
        match self {
            Self::InProcess(l) => Budgets::refund(l, offer, amount, now_ns),
            Self::Leased(l) => {
                if let Some(micros) = amount_micros(amount) {
                    l.refund_micros(offer, micros, now_ns);
                }
            }
        }
    }
    fn spent(&self, offer: usize, now_ns: u64) -> f64 {
        match self {
            Self::InProcess(l) => l.spent(offer, now_ns),
            Self::Leased(l) => l.spent_micros(offer, now_ns) as f64 / 1e6,
        }
    }
    fn maintain(&mut self, now_ns: u64) {
        match self {
            Self::InProcess(_) => {}
            Self::Leased(l) => l.release_expired(now_ns),
        }
    }
}
