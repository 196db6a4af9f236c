//! Daily budgets shared by every worker of a process: one [`BudgetBank`]
//! holds each offer's budget, and each worker spends from a local
//! allowance that it leases from the bank in chunks ([`LeasedBudgets`]),
//! as RTBkit's banker gives each router a float against a master account.
//!
//! # Bounds
//!
//! The bank grants only what the day's budget has left, and a worker
//! spends only what it was granted, so **the spend over all workers never
//! exceeds the budget**: there is no overspend at all. The price is
//! underspend while leases sit unused: each worker holds at most one
//! chunk plus one bid of allowance per offer, and returns it when it has
//! been unused for the lease's time to live, at the day's end (the bank's
//! day starts from 0), and when the worker's engine is dropped (shutdown).
//! So at any moment the budget still to be spent is short by at most
//! `workers × (chunk + largest bid)` per offer, and by nothing once leases
//! expire.
//!
//! # Layout and locking
//!
//! The bank is a [`BudgetLedger`] (what was granted counts as spent there)
//! behind one mutex, taken only to grant or return a lease: once per chunk,
//! not per bid. Beside it, one atomic per offer holds what the bank had
//! left after its last change, so that a worker can ask whether a bid could
//! still be paid (decide asks this of every offer of every request) without
//! the lock. A worker's allowances are flat arrays indexed by offer, like
//! the ledger's.
//!
//! As key-value operations (the Redis step): a lease is one script that
//! takes `min(chunk, left)` from the offer's key for the day and returns
//! it; a return is an `INCRBY` back on the same day; the hint is a `GET`.

use super::budget::{amount_micros, day_of, BudgetExhausted, BudgetLedger, NS_PER_DAY};
use crate::error::{Error, Result};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

const STORE: &str = "budget leases";
const MICROS_PER_UNIT: f64 = 1e6;
/// What the bank has left of an offer with no budget.
const UNLIMITED: u64 = u64::MAX;

/// How workers lease budget from the bank.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LeaseConfig {
    /// A lease's size as a share of the offer's daily budget, in
    /// `(0, 1]` (at least one bid is leased whatever the share).
    pub chunk_share: f64,
    /// An allowance unused this long goes back to the bank, in ns.
    pub ttl_ns: u64,
}

impl Default for LeaseConfig {
    /// 1% of the daily budget per lease, returned after 1 s unused.
    fn default() -> Self {
        Self {
            chunk_share: 0.01,
            ttl_ns: 1_000_000_000,
        }
    }
}

impl LeaseConfig {
    /// Checks the share and the time to live.
    pub fn validate(&self) -> Result<()> {
        if !(self.chunk_share > 0.0 && self.chunk_share <= 1.0) {
            return Err(Error::BadStoreConfig {
                store: STORE,
                reason: format!("chunk_share {} is not in (0, 1]", self.chunk_share),
            });
        }
        if self.ttl_ns == 0 {
            return Err(Error::BadStoreConfig {
                store: STORE,
                reason: "ttl_ns is 0: every lease would be returned at once".into(),
            });
        }
        Ok(())
    }
}

/// Every offer's daily budget, shared by a process's workers. See the
/// [module docs](self).
#[derive(Debug)]
pub struct BudgetBank {
    ledger: Mutex<BudgetLedger>,
    /// Per offer: the daily budget in micros ([`UNLIMITED`] for none); fixed
    /// at creation, so read without the lock.
    budget_micros: Box<[u64]>,
    /// Per offer: what the bank had left after its last change
    /// ([`UNLIMITED`] for no budget).
    left_micros: Box<[AtomicU64]>,
    /// Per offer: the day `left_micros` belongs to.
    left_day: Box<[AtomicU64]>,
}

impl BudgetBank {
    /// A bank of one daily budget per offer index, in currency units
    /// (`None`: unlimited). Fails as [`BudgetLedger::new`] does.
    pub fn new(daily_budgets: &[Option<f64>]) -> Result<Self> {
        let ledger = BudgetLedger::new(daily_budgets)?;
        let budget_micros: Box<[u64]> = (0..ledger.offers())
            .map(|i| ledger.remaining_micros(i, 0).unwrap_or(UNLIMITED))
            .collect();
        let left_micros = budget_micros.iter().map(|&b| AtomicU64::new(b)).collect();
        let left_day = budget_micros.iter().map(|_| AtomicU64::new(0)).collect();
        Ok(Self {
            ledger: Mutex::new(ledger),
            budget_micros,
            left_micros,
            left_day,
        })
    }

    /// Number of offers.
    pub fn offers(&self) -> usize {
        self.left_micros.len()
    }

    /// The offer's daily budget in micros; `None` if unlimited or unknown.
    pub fn daily_budget_micros(&self, offer: usize) -> Option<u64> {
        self.budget_micros
            .get(offer)
            .copied()
            .filter(|&b| b != UNLIMITED)
    }

    /// What the bank has left of `offer`'s budget on the day of `now_ns`,
    /// as of its last change, without taking the lock: an upper bound on
    /// what a lease can get now. `None`: unlimited. An unknown offer has 0.
    pub fn left_hint(&self, offer: usize, now_ns: u64) -> Option<u64> {
        let (Some(left), Some(day)) = (self.left_micros.get(offer), self.left_day.get(offer))
        else {
            return Some(0);
        };
        let left = left.load(Ordering::Acquire);
        if left == UNLIMITED {
            return None;
        }
        if u64::from(day_of(now_ns)) > day.load(Ordering::Acquire) {
            // A new day: the bank starts it from the whole budget at the
            // next lease.
            return self.daily_budget_micros(offer);
        }
        Some(left)
    }

    /// Grants up to `micros` of `offer`'s budget for the day of `now_ns`:
    /// what is left, if less. Returns the micros granted.
    pub fn lease(&self, offer: usize, micros: u64, now_ns: u64) -> u64 {
        let mut ledger = self.lock();
        let Some(left) = ledger.remaining_micros(offer, now_ns) else {
            return micros; // unlimited
        };
        let granted = micros.min(left);
        if granted > 0 {
            let amount = granted as f64 / MICROS_PER_UNIT;
            // Whole micros convert back exactly below 2^53 micros, and the
            // amount is within what is left.
            let charged = ledger.spend(offer, amount, now_ns);
            assert!(charged.is_ok(), "a grant within what is left is accepted");
        }
        self.publish(&ledger, offer, now_ns);
        granted
    }

    /// Takes back `micros` of `offer`'s grants for the day of `now_ns`
    /// (an allowance returned unused). A return from an earlier day is
    /// dropped: the new day started from the whole budget.
    pub fn give_back(&self, offer: usize, micros: u64, now_ns: u64) {
        if micros == 0 {
            return;
        }
        let mut ledger = self.lock();
        ledger.refund_micros(offer, micros, now_ns);
        self.publish(&ledger, offer, now_ns);
    }

    /// What was granted of `offer`'s budget on the day of `now_ns`, in
    /// micros: the spend of every worker plus their unused allowances.
    pub fn granted_micros(&self, offer: usize, now_ns: u64) -> u64 {
        self.lock().spent_micros(offer, now_ns)
    }

    fn publish(&self, ledger: &BudgetLedger, offer: usize, now_ns: u64) {
        if let (Some(left), Some(day)) = (self.left_micros.get(offer), self.left_day.get(offer)) {
            let remaining = ledger.remaining_micros(offer, now_ns).unwrap_or(UNLIMITED);
            left.store(remaining, Ordering::Release);
            day.store(u64::from(day_of(now_ns)), Ordering::Release);
        }
    }

    fn lock(&self) -> MutexGuard<'_, BudgetLedger> {
        // A panic while holding it (a bug) leaves whole-micro counts.
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One worker's allowances, leased from a shared [`BudgetBank`]. See the
/// [module docs](self).
#[derive(Debug)]
pub struct LeasedBudgets {
    bank: Arc<BudgetBank>,
    config: LeaseConfig,
    /// Per offer: a lease's size in micros (0 for unlimited offers).
    chunk_micros: Vec<u64>,
    /// Per offer: granted and not yet spent, in micros.
    allowance_micros: Vec<u64>,
    /// Per offer: the day the allowance was granted for.
    allowance_day: Vec<u32>,
    /// Per offer: when the allowance was last leased or spent from.
    touched_ns: Vec<u64>,
    /// Per offer: spent by this worker on `allowance_day`.
    spent_micros: Vec<u64>,
    /// Offers holding an allowance (each at most once).
    holding: Vec<u32>,
}

impl LeasedBudgets {
    /// A worker's side of `bank`, leasing as `config` says. Fails when the
    /// config is invalid.
    pub fn new(bank: Arc<BudgetBank>, config: LeaseConfig) -> Result<Self> {
        config.validate()?;
        let n = bank.offers();
        let chunk_micros = (0..n)
            .map(|i| {
                bank.daily_budget_micros(i)
                    .map_or(0, |b| ((b as f64 * config.chunk_share) as u64).max(1))
            })
            .collect();
        Ok(Self {
            bank,
            config,
            chunk_micros,
            allowance_micros: vec![0; n],
            allowance_day: vec![0; n],
            touched_ns: vec![0; n],
            spent_micros: vec![0; n],
            holding: Vec::with_capacity(n),
        })
    }

    /// The bank this worker leases from.
    pub fn bank(&self) -> &Arc<BudgetBank> {
        &self.bank
    }

    /// What this worker holds of `offer` for the day of `now_ns`, in
    /// micros.
    pub fn allowance_micros(&self, offer: usize, now_ns: u64) -> u64 {
        match self.allowance_micros.get(offer) {
            Some(&a) if self.allowance_day[offer] == day_of(now_ns) => a,
            _ => 0,
        }
    }

    /// Whether [`Self::spend`] could pay `amount` now: from the allowance,
    /// or with what the bank had left at its last change. Lock-free.
    pub fn can_spend(&self, offer: usize, amount: f64, now_ns: u64) -> bool {
        if offer >= self.offers() {
            return false;
        }
        let Some(micros) = amount_micros(amount) else {
            return false;
        };
        match self.bank.left_hint(offer, now_ns) {
            None => true,
            Some(left) => micros <= self.allowance_micros(offer, now_ns).saturating_add(left),
        }
    }

    /// Pays `amount` from the allowance, leasing a chunk (at least the
    /// shortfall) when it is short. Refuses, spending nothing, when even
    /// then it cannot pay; what a lease brought stays in the allowance.
    pub fn spend(&mut self, offer: usize, amount: f64, now_ns: u64) -> Result<(), BudgetExhausted> {
        let offers = self.offers();
        if offer >= offers {
            return Err(BudgetExhausted::UnknownOffer { offer, offers });
        }
        let micros = amount_micros(amount).ok_or(BudgetExhausted::BadAmount { offer, amount })?;
        if self.chunk_micros[offer] == 0 {
            self.count_spend(offer, micros, now_ns);
            return Ok(()); // unlimited
        }
        let mut allowance = self.allowance_micros(offer, now_ns);
        if allowance < micros {
            let want = self.chunk_micros[offer].max(micros - allowance);
            allowance += self.bank.lease(offer, want, now_ns);
            self.hold(offer, allowance, now_ns);
        }
        if allowance < micros {
            return Err(BudgetExhausted::OverBudget {
                offer,
                requested_micros: micros,
                remaining_micros: allowance,
            });
        }
        self.hold(offer, allowance - micros, now_ns);
        self.count_spend(offer, micros, now_ns);
        Ok(())
    }

    /// Puts back `micros` of a spend this worker made today (a commit
    /// undone); it stays in the allowance.
    pub fn refund_micros(&mut self, offer: usize, micros: u64, now_ns: u64) {
        if offer >= self.offers() || self.allowance_day[offer] != day_of(now_ns) {
            return;
        }
        self.spent_micros[offer] = self.spent_micros[offer].saturating_sub(micros);
        if self.chunk_micros[offer] > 0 {
            let allowance = self.allowance_micros[offer].saturating_add(micros);
            self.hold(offer, allowance, now_ns);
        }
    }

    /// This worker's spend on `offer` on the day of `now_ns`, in micros.
    pub fn spent_micros(&self, offer: usize, now_ns: u64) -> u64 {
        match self.spent_micros.get(offer) {
            Some(&s) if self.allowance_day[offer] == day_of(now_ns) => s,
            _ => 0,
        }
    }

    /// Returns to the bank every allowance unused for the lease's time to
    /// live at `now_ns`, or granted for an earlier day. Cost: the offers
    /// holding an allowance.
    pub fn release_expired(&mut self, now_ns: u64) {
        let mut k = 0;
        while let Some(&offer) = self.holding.get(k) {
            let i = offer as usize;
            let stale = self.allowance_day[i] != day_of(now_ns)
                || now_ns.saturating_sub(self.touched_ns[i]) >= self.config.ttl_ns;
            if stale {
                self.return_allowance(i, now_ns);
                self.holding.swap_remove(k);
            } else {
                k += 1;
            }
        }
    }

    /// Returns every allowance to the bank (shutdown).
    pub fn release_all(&mut self, now_ns: u64) {
        for offer in std::mem::take(&mut self.holding) {
            self.return_allowance(offer as usize, now_ns);
        }
    }

    fn offers(&self) -> usize {
        self.allowance_micros.len()
    }

    /// Moves `offer`'s allowance and spend to the day of `now_ns`: an
    /// allowance or spend of an earlier day counts nothing on a new one.
    fn roll_to_day(&mut self, offer: usize, now_ns: u64) {
        let today = day_of(now_ns);
        if self.allowance_day[offer] != today {
            self.allowance_day[offer] = today;
            self.allowance_micros[offer] = 0;
            self.spent_micros[offer] = 0;
        }
    }

    /// Sets the allowance of `offer` for today, tracking it for expiry.
    fn hold(&mut self, offer: usize, micros: u64, now_ns: u64) {
        self.roll_to_day(offer, now_ns);
        let was_held = self.allowance_micros[offer] > 0;
        self.allowance_micros[offer] = micros;
        self.touched_ns[offer] = now_ns;
        if micros > 0 && !was_held && !self.holding.contains(&(offer as u32)) {
            self.holding.push(offer as u32);
        }
    }

    fn count_spend(&mut self, offer: usize, micros: u64, now_ns: u64) {
        self.roll_to_day(offer, now_ns);
        self.spent_micros[offer] = self.spent_micros[offer].saturating_add(micros);
    }

    fn return_allowance(&mut self, offer: usize, now_ns: u64) {
        let micros = std::mem::take(&mut self.allowance_micros[offer]);
        // An allowance of an earlier day is void: the bank started the new
        // day from the whole budget.
        if self.allowance_day[offer] == day_of(now_ns) {
            self.bank.give_back(offer, micros, now_ns);
        }
    }
}

impl Drop for LeasedBudgets {
    /// Returns every allowance still held, so a stopped worker strands no
    /// budget. The bank's clock is the allowances' own day.
    fn drop(&mut self) {
        for offer in std::mem::take(&mut self.holding) {
            let i = offer as usize;
            let day_start = u64::from(self.allowance_day[i]) * NS_PER_DAY;
            self.return_allowance(i, day_start);
        }
    }
}

impl Clone for LeasedBudgets {
    /// Another worker's side of the same bank, holding nothing yet.
    fn clone(&self) -> Self {
        let n = self.offers();
        Self {
            bank: Arc::clone(&self.bank),
            config: self.config,
            chunk_micros: self.chunk_micros.clone(),
            allowance_micros: vec![0; n],
            allowance_day: vec![0; n],
            touched_ns: vec![0; n],
            spent_micros: vec![0; n],
            holding: Vec::with_capacity(n),
        }
    }
}

impl PartialEq for LeasedBudgets {
    /// Sides of the same bank.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.bank, &other.bank)
    }
}
