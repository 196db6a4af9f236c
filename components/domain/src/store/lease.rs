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

use super::budget::OFFERS_MAX;
use super::budget::{amount_micros, day_of, BudgetExhausted, BudgetLedger, NS_PER_DAY};
use crate::error::{Error, Result};
use std::collections::HashMap;
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
///
/// The bank counts in *slots*. A bank made by [`BudgetBank::new`] has one
/// anonymous slot per offer index. One made by [`BudgetBank::with_capacity`]
/// gives a slot to each offer id the first time a catalog naming it is
/// registered ([`BudgetBank::register`]) and keeps it for the life of the
/// bank, so an offer's spend today survives a catalog swapped in with the
/// offers reordered, dropped or added, and workers deciding over the old
/// and the new catalog for a moment lease from the same slot.
#[derive(Debug)]
pub struct BudgetBank {
    book: Mutex<Book>,
    /// Per slot: the daily budget in micros ([`UNLIMITED`] for none); read
    /// without the lock, changed (under it) when a catalog is registered.
    budget_micros: Box<[AtomicU64]>,
    /// Per slot: what the bank had left after its last change
    /// ([`UNLIMITED`] for no budget).
    left_micros: Box<[AtomicU64]>,
    /// Per slot: the day `left_micros` belongs to.
    left_day: Box<[AtomicU64]>,
}

/// What the bank's mutex guards.
#[derive(Debug)]
struct Book {
    /// Grants per slot (what was granted counts as spent).
    ledger: BudgetLedger,
    /// Slots in use: `0..used`.
    used: usize,
    /// The slot of each registered offer id.
    slots: HashMap<u64, u32>,
}

impl BudgetBank {
    /// A bank of one daily budget per offer index, in currency units
    /// (`None`: unlimited), as anonymous slots `0..n` (no room to register
    /// catalogs). Fails as [`BudgetLedger::new`] does.
    pub fn new(daily_budgets: &[Option<f64>]) -> Result<Self> {
        let ledger = BudgetLedger::new(daily_budgets)?;
        let used = ledger.offers();
        Ok(Self::of_book(Book {
            ledger,
            used,
            slots: HashMap::new(),
        }))
    }

    /// An empty bank with room for `capacity` distinct offer ids over its
    /// life, in `1..=OFFERS_MAX`; catalogs take slots through
    /// [`register`](Self::register).
    pub fn with_capacity(capacity: usize) -> Result<Self> {
        if !(1..=OFFERS_MAX).contains(&capacity) {
            return Err(Error::BadStoreConfig {
                store: STORE,
                reason: format!("capacity {capacity} is not in 1..={OFFERS_MAX}"),
            });
        }
        Ok(Self::of_book(Book {
            ledger: BudgetLedger::new(&vec![None; capacity])?,
            used: 0,
            slots: HashMap::with_capacity(capacity),
        }))
    }

    fn of_book(book: Book) -> Self {
        let n = book.ledger.offers();
        let budget_micros: Box<[AtomicU64]> = (0..n)
            .map(|i| AtomicU64::new(book.ledger.remaining_micros(i, 0).unwrap_or(UNLIMITED)))
            .collect();
        let left_micros = budget_micros
            .iter()
            .map(|b| AtomicU64::new(b.load(Ordering::Relaxed)))
            .collect();
        let left_day = budget_micros.iter().map(|_| AtomicU64::new(0)).collect();
        Self {
            book: Mutex::new(book),
            budget_micros,
            left_micros,
            left_day,
        }
    }

    /// Slots in use.
    pub fn offers(&self) -> usize {
        self.lock().used
    }

    /// Slots the bank can ever hold.
    pub fn capacity(&self) -> usize {
        self.left_micros.len()
    }

    /// The slot of each of a catalog's offers (`ids`, with their daily
    /// budgets in currency units, `None`: unlimited), in catalog order:
    /// the slot an id already has, else a new one. Each offer's budget
    /// becomes the one given (what it spent today stays spent). Fails,
    /// changing nothing, when the new ids do not fit the bank's capacity,
    /// a budget is out of range, or the lists differ in length.
    pub fn register(&self, ids: &[u64], daily_budgets: &[Option<f64>]) -> Result<Vec<u32>> {
        let fail = |reason: String| Error::BadStoreConfig {
            store: STORE,
            reason,
        };
        if ids.len() != daily_budgets.len() {
            return Err(fail(format!(
                "{} offer ids for {} daily budgets",
                ids.len(),
                daily_budgets.len()
            )));
        }
        let mut book = self.lock();
        let new = ids.iter().filter(|id| !book.slots.contains_key(id)).count();
        if book.used + new > self.capacity() {
            return Err(fail(format!(
                "the catalog brings {new} offer ids the budget bank has not seen; it holds {} of \
                 {} (a process's bank keeps every offer id it was given; restart to reset it)",
                book.used,
                self.capacity()
            )));
        }
        // Check every budget before changing anything.
        let mut probe = BudgetLedger::new(&[None])?;
        for budget in daily_budgets {
            probe.set_daily_budget(0, *budget)?;
        }
        let mut slots = Vec::with_capacity(ids.len());
        for (&id, &budget) in ids.iter().zip(daily_budgets) {
            let slot = match book.slots.get(&id) {
                Some(&slot) => slot,
                None => {
                    let slot = book.used as u32;
                    book.used += 1;
                    book.slots.insert(id, slot);
                    slot
                }
            };
            book.ledger.set_daily_budget(slot as usize, budget)?;
            let micros = book
                .ledger
                .remaining_micros(slot as usize, u64::MAX)
                .unwrap_or(UNLIMITED);
            self.budget_micros[slot as usize].store(micros, Ordering::Release);
            // What the slot has left under its new budget, on the day it
            // last changed.
            let day = self.left_day[slot as usize].load(Ordering::Acquire);
            self.publish(&book.ledger, slot as usize, day * NS_PER_DAY);
            slots.push(slot);
        }
        Ok(slots)
    }

    /// The slot's daily budget in micros; `None` if unlimited or unknown.
    pub fn daily_budget_micros(&self, offer: usize) -> Option<u64> {
        self.budget_micros
            .get(offer)
            .map(|b| b.load(Ordering::Acquire))
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
        let mut book = self.lock();
        let Some(left) = book.ledger.remaining_micros(offer, now_ns) else {
            return micros; // unlimited
        };
        let granted = micros.min(left);
        if granted > 0 {
            let amount = granted as f64 / MICROS_PER_UNIT;
            // Whole micros convert back exactly below 2^53 micros, and the
            // amount is within what is left.
            let charged = book.ledger.spend(offer, amount, now_ns);
            assert!(charged.is_ok(), "a grant within what is left is accepted");
        }
        self.publish(&book.ledger, offer, now_ns);
        granted
    }

    /// Takes back `micros` of `offer`'s grants for the day of `now_ns`
    /// (an allowance returned unused). A return from an earlier day is
    /// dropped: the new day started from the whole budget.
    pub fn give_back(&self, offer: usize, micros: u64, now_ns: u64) {
        if micros == 0 {
            return;
        }
        let mut book = self.lock();
        book.ledger.refund_micros(offer, micros, now_ns);
        self.publish(&book.ledger, offer, now_ns);
    }

    /// What was granted of `offer`'s budget on the day of `now_ns`, in
    /// micros: the spend of every worker plus their unused allowances.
    pub fn granted_micros(&self, offer: usize, now_ns: u64) -> u64 {
        self.lock().ledger.spent_micros(offer, now_ns)
    }

    /// Calls `f(offer id, day, micros granted that day)` for every offer
    /// id registered (for a state file). What was granted counts as spent:
    /// a worker's unused allowance is kept as spent, so a restart never
    /// spends it twice.
    pub fn for_each_spend(&self, mut f: impl FnMut(u64, u32, u64)) {
        let book = self.lock();
        for (&id, &slot) in &book.slots {
            if let Some((day, micros)) = book.ledger.spend_record(slot as usize) {
                f(id, day, micros);
            }
        }
    }

    /// Sets the grants of offer id `id` on `day` to `micros` (restoring a
    /// state file before any worker leases); returns false when the id is
    /// not registered.
    pub fn restore_spend(&self, id: u64, day: u32, micros: u64, now_ns: u64) -> bool {
        let mut book = self.lock();
        let Some(&slot) = book.slots.get(&id) else {
            return false;
        };
        book.ledger.restore_spend(slot as usize, day, micros);
        self.publish(&book.ledger, slot as usize, now_ns);
        true
    }

    fn publish(&self, ledger: &BudgetLedger, offer: usize, now_ns: u64) {
        if let (Some(left), Some(day)) = (self.left_micros.get(offer), self.left_day.get(offer)) {
            let remaining = ledger.remaining_micros(offer, now_ns).unwrap_or(UNLIMITED);
            left.store(remaining, Ordering::Release);
            day.store(u64::from(day_of(now_ns)), Ordering::Release);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Book> {
        // A panic while holding it (a bug) leaves whole-micro counts.
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One worker's allowances, leased from a shared [`BudgetBank`]. See the
/// [module docs](self).
#[derive(Debug)]
pub struct LeasedBudgets {
    bank: Arc<BudgetBank>,
    config: LeaseConfig,
    /// Per offer (catalog index): its slot in the bank.
    slots: Vec<u32>,
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
        let slots = (0..bank.offers() as u32).collect();
        Self::with_slots(bank, config, slots)
    }

    /// A worker's side of `bank` for a catalog's offers (`ids` and their
    /// daily budgets, in catalog order), registered with the bank by id
    /// ([`BudgetBank::register`]). Fails when the config is invalid or the
    /// bank refuses the catalog.
    pub fn for_catalog(
        bank: Arc<BudgetBank>,
        config: LeaseConfig,
        ids: &[u64],
        daily_budgets: &[Option<f64>],
    ) -> Result<Self> {
        config.validate()?;
        let slots = bank.register(ids, daily_budgets)?;
        Self::with_slots(bank, config, slots)
    }

    /// Another worker's side of the same bank, for another catalog (a
    /// catalog swapped in), leasing as this one does.
    pub fn for_other_catalog(&self, ids: &[u64], daily_budgets: &[Option<f64>]) -> Result<Self> {
        Self::for_catalog(Arc::clone(&self.bank), self.config, ids, daily_budgets)
    }

    fn with_slots(bank: Arc<BudgetBank>, config: LeaseConfig, slots: Vec<u32>) -> Result<Self> {
        config.validate()?;
        let n = slots.len();
        let chunk_micros = slots
            .iter()
            .map(|&slot| {
                bank.daily_budget_micros(slot as usize)
                    .map_or(0, |b| ((b as f64 * config.chunk_share) as u64).max(1))
            })
            .collect();
        Ok(Self {
            bank,
            config,
            slots,
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
        match self.bank.left_hint(self.slots[offer] as usize, now_ns) {
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
            allowance += self.bank.lease(self.slots[offer] as usize, want, now_ns);
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

    /// Puts back `micros` of a spend made today: one of this worker's (a
    /// commit undone) stays in its allowance; one this worker holds no
    /// allowance for today (another worker's bid, settled here by its loss
    /// notice) goes straight back to the bank.
    pub fn refund_micros(&mut self, offer: usize, micros: u64, now_ns: u64) {
        if offer >= self.offers() {
            return;
        }
        if self.allowance_day[offer] != day_of(now_ns) {
            if self.chunk_micros[offer] > 0 {
                self.bank
                    .give_back(self.slots[offer] as usize, micros, now_ns);
            }
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

    /// Takes over this worker's count of its own spend from `from` by
    /// offer (`map[i]`: the index in `from` of offer `i`, paired by id), for
    /// a catalog swapped in. What the offers were granted stays in the
    /// bank, keyed by id; `from`'s allowances go back to it when `from` is
    /// dropped. Allocates nothing.
    pub fn carry_over(&mut self, from: &LeasedBudgets, map: &[Option<u32>]) {
        for (i, old) in map.iter().enumerate().take(self.offers()) {
            let Some(old) = old.map(|o| o as usize).filter(|&o| o < from.offers()) else {
                continue;
            };
            if from.spent_micros[old] > 0 {
                self.allowance_day[i] = from.allowance_day[old];
                self.spent_micros[i] = from.spent_micros[old];
            }
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
            self.bank
                .give_back(self.slots[offer] as usize, micros, now_ns);
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
            slots: self.slots.clone(),
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
