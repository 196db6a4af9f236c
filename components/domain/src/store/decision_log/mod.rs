//! The decision log: the recent decisions of a process, keyed by decision
//! id, and the join of feedback events against them.
//!
//! Every decision the engine makes for real is logged here with what
//! off-policy evaluation and learning need later: the offer and creative
//! variant chosen, its score and click probability, the propensity of the
//! choice, the model and experiment arm, the feature fingerprint, the
//! user, and the budget reserved for it. An event ([`crate::feedback`])
//! is joined to its decision and turned into an [`Effect`]: what the caller
//! must do to its stores (give back or charge budget, release a cap slot,
//! count an impression or a click). The log itself touches no other store.
//!
//! # Join semantics
//!
//! As microsoft/learning-loop's joiner (its `Common/Join`): a left outer
//! join on the decision id, with an experimental-unit duration per event
//! kind ([`FeedbackWindows`]).
//!
//! - An event after its kind's window is refused
//!   ([`EventRefusal::AfterWindow`]); the decision keeps the default
//!   reward (no click, no conversion).
//! - An auction bid whose win window closes with neither a win nor a loss
//!   is settled as lost by [`DecisionLog::sweep`]: its reservation comes
//!   back ([`LogStats::expired_unsettled`]).
//! - An event whose decision is not logged (yet) is held for the backward
//!   window and joined when the decision comes
//!   ([`DecisionLog::retry_held`]); one still dangling then is dropped and
//!   counted ([`LogStats::dangling`]).
//! - Memory is bounded whatever the rates: a full set evicts its oldest
//!   decision, releasing what it still held and counting it when its
//!   windows were still open ([`LogStats::evicted_open`]); the held events
//!   and the event ids kept for de-duplication are fixed-size too.
//!
//! # Layout
//!
//! Set-associative ([`WAYS`] ways per set) and split into [`SHARDS`]
//! shards behind their own mutex, as the bid ledger was, so that the
//! workers of a server (one decides, another takes the notice) meet on a
//! lock only when their decisions share a shard. Each entry is
//! [`ENTRY_BYTES`] bytes in flat arrays (structure of arrays): a lookup
//! reads one set's keys (one cache line) and then one line per field of
//! the way that matched.
//!
//! # As key-value operations (the Redis step)
//!
//! [`DecisionLog::record`] is a `SET decision:{id} {fields} PX longest`;
//! [`DecisionLog::apply`] one script that reads the entry, checks and sets
//! the event's bit and the event id (`SET event:{id} NX PX window`), and
//! returns the effect; the sweep is the expiry of those keys (a keyspace
//! notification, or a sorted set of open bids by time).

mod held;
mod shard;

use crate::error::{Error, Result};
use crate::feedback::{Accepted, Event, EventKind, EventRefusal, FeedbackWindows};
use crate::store::snapshot::{put_u32, put_u64, SectionReader};
use crate::store::{mix64, WAYS};
use crossbeam::utils::CachePadded;
use held::{EventKeys, Held};
use shard::Shard;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Shards of a [`DecisionLog`] (a power of two).
pub const SHARDS: usize = 64;
/// Most decisions a log may hold (after rounding up).
pub const LOG_ENTRIES_MAX: usize = 1 << 24;
/// Bytes per logged decision in the log's arrays.
pub const ENTRY_BYTES: usize = 8 * 9 + 4 * 5 + 2 + 2;

const STORE: &str = "decision log";
/// Bytes per decision in a state file's decision-log section.
pub const STATE_RECORD_BYTES: usize = 8 * 3 + 4 * 6 + 8 * 5;

/// How a decision settles its money.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Settlement {
    /// The decision is the placement (a binary `score_context`, a game
    /// loop): its budget and cap slot were spent when it was decided.
    #[default]
    Direct,
    /// An auction bid (OpenRTB): budget and cap slot are reserved at the
    /// bid, charged at the clearing price on a win, and given back on a
    /// loss or when the win window closes unanswered.
    Auction,
}

/// One decision as logged.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LoggedDecision {
    /// The decision id's key ([`crate::feedback::id_key`]).
    pub key: u64,
    /// When it was decided, ns on the engine's clock.
    pub decided_ns: u64,
    /// The offer chosen.
    pub offer_id: u64,
    /// Its catalog index when decided.
    pub offer_index: u32,
    /// The creative variant chosen.
    pub variant: u32,
    /// The calibrated click probability the decision used.
    pub p_click: f32,
    /// The offer's score.
    pub score: f32,
    /// The probability that the policy chose this offer.
    pub propensity: f32,
    /// The serving model's key (the low 64 bits of its id).
    pub model_key: u64,
    /// The experiment arm (0: none).
    pub arm: u16,
    /// The request's feature fingerprint (its cache key).
    pub fingerprint: u64,
    /// The user (0: unknown).
    pub user_hash: u64,
    /// The placement (site or app and slot size) the bid was for, whose
    /// win rates its win or loss teaches (0: none).
    pub placement_key: u64,
    /// Budget reserved and not yet settled, micros (0 unless an auction).
    pub reserved_micros: u64,
    /// How the decision settles.
    pub settlement: Settlement,
    /// Decided in simulation mode: logged for evaluation, takes no event.
    pub simulated: bool,
}

/// What an event (or the closing of a bid's win window) asks of the other
/// stores, for the decision it names.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Effect {
    /// The event's kind; `None` for a bid settled as lost because its win
    /// window closed (or it was evicted) unanswered.
    pub kind: Option<EventKind>,
    /// The decision, as logged before the event.
    pub decision: LoggedDecision,
    /// Budget to give back to the decision's offer, micros.
    pub refund_micros: u64,
    /// Budget to charge beyond the reservation (a clearing price above the
    /// bid), micros.
    pub charge_micros: u64,
    /// Give the user's frequency-cap slot for the offer back.
    pub release_cap: bool,
    /// Count an impression of the offer (for its posterior).
    pub impression: bool,
    /// Count a click.
    pub click: bool,
    /// A conversion's value.
    pub conversion_value: f64,
}

/// One decision as a state file keeps it: its fields and the log's flag
/// and seen bits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StateRecord {
    /// The decision.
    pub decision: LoggedDecision,
    flags: u8,
    seen: u8,
}

/// Counts since the log was made, over every shard.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Decisions logged.
    pub recorded: u64,
    /// Decisions evicted from a full set.
    pub evicted: u64,
    /// Of those, evicted before their longest window closed (aged out).
    pub evicted_open: u64,
    /// Of those, auction bids still unsettled (their reservation released).
    pub evicted_unsettled: u64,
    /// Auction bids settled as lost because their win window closed.
    pub expired_unsettled: u64,
    /// Decisions freed after their longest window closed.
    pub closed: u64,
    /// Of those, closed with the default reward (no click).
    pub closed_without_click: u64,
    /// Auction bids logged and not settled yet.
    pub open_bids: u64,
    /// Events held for a decision not logged yet (now).
    pub held: u64,
    /// Held events dropped when the backward window closed.
    pub dangling: u64,
}

impl LogStats {
    fn add(&mut self, other: &Self) {
        self.recorded += other.recorded;
        self.evicted += other.evicted;
        self.evicted_open += other.evicted_open;
        self.evicted_unsettled += other.evicted_unsettled;
        self.expired_unsettled += other.expired_unsettled;
        self.closed += other.closed;
        self.closed_without_click += other.closed_without_click;
        self.open_bids += other.open_bids;
        self.held += other.held;
        self.dangling += other.dangling;
    }
}

/// Size and windows of a [`DecisionLog`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// Decisions held at most, over all shards (rounded up per shard to a
    /// power of two); 1 to [`LOG_ENTRIES_MAX`].
    pub capacity: usize,
    /// Event ids remembered for de-duplication, over all shards.
    pub event_ids: usize,
    /// Events held for their decision at most, over all shards.
    pub held_max: usize,
    /// The join's windows.
    pub windows: FeedbackWindows,
}

impl Default for LogConfig {
    /// 65,536 decisions (about 6 MiB), 65,536 event ids, 4,096 held
    /// events, the default windows.
    fn default() -> Self {
        Self {
            capacity: 1 << 16,
            event_ids: 1 << 16,
            held_max: 4096,
            windows: FeedbackWindows::default(),
        }
    }
}

/// Everything behind one shard's lock.
#[derive(Debug)]
struct ShardState {
    log: Shard,
    event_keys: EventKeys,
    held: Held,
}

/// The decision log. See the [module docs](self).
#[derive(Debug)]
pub struct DecisionLog {
    shards: Box<[CachePadded<Mutex<ShardState>>]>,
    windows: FeedbackWindows,
    /// Events held over all shards, so that [`Self::retry_held`] costs
    /// nothing when there are none.
    held_total: AtomicUsize,
}

impl DecisionLog {
    /// A log of `config.capacity` decisions; fails naming the field when a
    /// size or window is out of range.
    pub fn new(config: LogConfig) -> Result<Self> {
        let bad = |reason: String| Error::BadStoreConfig {
            store: STORE,
            reason,
        };
        if !(1..=LOG_ENTRIES_MAX).contains(&config.capacity) {
            return Err(bad(format!(
                "capacity {} is not in 1..={LOG_ENTRIES_MAX}",
                config.capacity
            )));
        }
        if !(1..=LOG_ENTRIES_MAX).contains(&config.event_ids) {
            return Err(bad(format!(
                "event_ids {} is not in 1..={LOG_ENTRIES_MAX}",
                config.event_ids
            )));
        }
        if config.held_max > LOG_ENTRIES_MAX {
            return Err(bad(format!(
                "held_max {} is more than {LOG_ENTRIES_MAX}",
                config.held_max
            )));
        }
        let w = &config.windows;
        if w.win_ns == 0 || w.impression_ns == 0 || w.click_ns == 0 || w.conversion_ns == 0 {
            return Err(bad("every event window must be at least 1 ns".into()));
        }
        let sets = |n: usize| n.div_ceil(SHARDS).next_power_of_two().max(WAYS) / WAYS;
        let held_per_shard = config.held_max.div_ceil(SHARDS);
        let shards = (0..SHARDS)
            .map(|_| {
                CachePadded::new(Mutex::new(ShardState {
                    log: Shard::new(sets(config.capacity)),
                    event_keys: EventKeys::new(sets(config.event_ids)),
                    held: Held::new(held_per_shard),
                }))
            })
            .collect();
        Ok(Self {
            shards,
            windows: config.windows,
            held_total: AtomicUsize::new(0),
        })
    }

    /// The join's windows.
    pub fn windows(&self) -> &FeedbackWindows {
        &self.windows
    }

    /// Decisions the log can hold (after rounding).
    pub fn capacity(&self) -> usize {
        self.shards.len() * lock(&self.shards[0]).log.len()
    }

    /// Logs decision `d` at `now_ns`. When a full set evicts an auction bid
    /// still unsettled, returns its release for the caller to apply.
    pub fn record(&self, d: &LoggedDecision, now_ns: u64) -> Option<Effect> {
        self.shard(d.key).log.record(d, &self.windows, now_ns)
    }

    /// The decision logged under `key`, if any.
    pub fn get(&self, key: u64) -> Option<LoggedDecision> {
        self.shard(key).log.lookup(key)
    }

    /// Joins `event`, arriving at `now_ns`, to its decision. On success the
    /// effect is `Some` for the caller to apply, or the event is held
    /// ([`Accepted::Held`]) until its decision is logged. A refusal
    /// changes nothing.
    pub fn apply(
        &self,
        event: &Event,
        now_ns: u64,
    ) -> std::result::Result<(Accepted, Option<Effect>), EventRefusal> {
        event.check()?;
        let at_ns = if event.at_ns == 0 {
            now_ns
        } else {
            event.at_ns
        };
        let mut guard = self.shard(event.decision_key);
        let state = &mut *guard;
        if event.event_key != 0 && state.event_keys.contains(event.event_key) {
            return Err(EventRefusal::Duplicate);
        }
        match state.log.apply(event, at_ns, &self.windows)? {
            Some(effect) => {
                if event.event_key != 0 {
                    state.event_keys.insert(event.event_key, now_ns);
                }
                Ok((Accepted::Applied, Some(effect)))
            }
            None => {
                state.held.push(*event, now_ns)?;
                self.held_total.fetch_add(1, Ordering::Relaxed);
                Ok((Accepted::Held, None))
            }
        }
    }

    /// Joins the held events whose decisions have been logged since, and
    /// drops (counting them) those held longer than the backward window.
    /// `f` gets each joined event's result. Costs nothing when no event
    /// is held.
    pub fn retry_held(
        &self,
        now_ns: u64,
        mut f: impl FnMut(&Event, std::result::Result<Effect, EventRefusal>),
    ) {
        if self.held_total.load(Ordering::Relaxed) == 0 {
            return;
        }
        for shard in self.shards.iter() {
            let mut guard = lock(shard);
            let state = &mut *guard;
            if state.held.is_empty() {
                continue;
            }
            let before = state.held.len();
            let windows = &self.windows;
            let log = &mut state.log;
            let event_keys = &mut state.event_keys;
            let mut dangling = 0;
            state.held.retain(|event, held_ns| {
                if !log.contains(event.decision_key) {
                    let keep = now_ns.saturating_sub(held_ns) <= windows.backward_ns;
                    dangling += u64::from(!keep);
                    return keep;
                }
                let at_ns = if event.at_ns == 0 {
                    held_ns
                } else {
                    event.at_ns
                };
                let result = log
                    .apply(event, at_ns, windows)
                    .and_then(|e| e.ok_or(EventRefusal::UnknownDecision));
                if result.is_ok() && event.event_key != 0 {
                    event_keys.insert(event.event_key, now_ns);
                }
                f(event, result);
                false
            });
            state.log.stats.dangling += dangling;
            let removed = before - state.held.len();
            self.held_total.fetch_sub(removed, Ordering::Relaxed);
        }
    }

    /// Looks at up to `entries_max` entries per shard: settles auction bids
    /// whose win window closed unanswered (each release goes to `release`)
    /// and frees decisions past their longest window. A caller that sweeps
    /// `capacity / SHARDS` entries per shard in each win window's time
    /// settles every bid within about two windows.
    pub fn sweep(&self, now_ns: u64, entries_max: usize, mut release: impl FnMut(Effect)) {
        for shard in self.shards.iter() {
            lock(shard)
                .log
                .sweep(now_ns, &self.windows, entries_max, &mut release);
        }
    }

    /// Appends every logged decision to `out` (a state file's section):
    /// a count, then [`STATE_RECORD_BYTES`] per decision. Each shard is
    /// copied under its lock.
    pub fn write_state(&self, out: &mut Vec<u8>) {
        let count_at = out.len();
        put_u64(out, 0);
        let mut n = 0u64;
        for shard in self.shards.iter() {
            lock(shard).log.for_each_entry(|d, flags, seen| {
                n += 1;
                put_u64(out, d.key);
                put_u64(out, d.decided_ns);
                put_u64(out, d.offer_id);
                put_u32(out, d.offer_index);
                put_u32(out, d.variant);
                put_u32(out, d.p_click.to_bits());
                put_u32(out, d.score.to_bits());
                put_u32(out, d.propensity.to_bits());
                put_u32(
                    out,
                    u32::from(d.arm) | u32::from(flags) << 16 | u32::from(seen) << 24,
                );
                put_u64(out, d.model_key);
                put_u64(out, d.fingerprint);
                put_u64(out, d.user_hash);
                put_u64(out, d.placement_key);
                put_u64(out, d.reserved_micros);
            });
        }
        out[count_at..count_at + 8].copy_from_slice(&n.to_le_bytes());
    }

    /// Reads a section [`Self::write_state`] wrote, checking every record;
    /// changes nothing ([`Self::restore_records`] applies them).
    pub fn read_state(bytes: &[u8]) -> Result<Vec<StateRecord>> {
        let mut r = SectionReader::new(bytes, "decision log section");
        let n = r.u64("the count")?;
        if n.saturating_mul(STATE_RECORD_BYTES as u64) != (bytes.len() - 8) as u64 {
            return Err(r.bad(format!("{n} decisions do not fill {} bytes", bytes.len())));
        }
        let mut records = Vec::with_capacity(n as usize);
        for k in 0..n {
            let key = r.u64("key")?;
            let decided_ns = r.u64("decided_ns")?;
            let offer_id = r.u64("offer_id")?;
            let offer_index = r.u32("offer_index")?;
            let variant = r.u32("variant")?;
            let [p_click, score, propensity] = [
                f32::from_bits(r.u32("p_click")?),
                f32::from_bits(r.u32("score")?),
                f32::from_bits(r.u32("propensity")?),
            ];
            let packed = r.u32("arm and flags")?;
            let d = LoggedDecision {
                key,
                decided_ns,
                offer_id,
                offer_index,
                variant,
                p_click,
                score,
                propensity,
                arm: packed as u16,
                model_key: r.u64("model_key")?,
                fingerprint: r.u64("fingerprint")?,
                user_hash: r.u64("user_hash")?,
                placement_key: r.u64("placement_key")?,
                reserved_micros: r.u64("reserved_micros")?,
                settlement: Settlement::Direct,
                simulated: false,
            };
            if key == 0 || !p_click.is_finite() || !score.is_finite() || !propensity.is_finite() {
                return Err(r.bad(format!("decision {k}: a zero key or a number not finite")));
            }
            records.push(StateRecord {
                decision: d,
                flags: (packed >> 16) as u8,
                seen: (packed >> 24) as u8,
            });
        }
        r.finish()?;
        Ok(records)
    }

    /// Puts `records` ([`Self::read_state`]) into this log at `now_ns`;
    /// returns how many a full set pushed out again (a smaller log than the
    /// one saved). Their reservations stay spent: never over budget.
    pub fn restore_records(&self, records: &[StateRecord], now_ns: u64) -> u64 {
        let mut evicted = 0;
        for r in records {
            let mut guard = self.shard(r.decision.key);
            let released =
                guard
                    .log
                    .restore_entry(&r.decision, r.flags, r.seen, &self.windows, now_ns);
            evicted += u64::from(released.is_some());
        }
        evicted
    }

    /// Counts over every shard.
    pub fn stats(&self) -> LogStats {
        let mut all = LogStats::default();
        for shard in self.shards.iter() {
            let state = lock(shard);
            all.add(&state.log.stats);
            all.held += state.held.len() as u64;
        }
        all
    }

    fn shard(&self, key: u64) -> MutexGuard<'_, ShardState> {
        let i = (mix64(key) as usize) & (SHARDS - 1);
        // `SHARDS` is a power of two and the slice has exactly that many.
        lock(&self.shards[i])
    }
}

fn lock(shard: &Mutex<ShardState>) -> MutexGuard<'_, ShardState> {
    // A panic elsewhere cannot leave an entry half-written: no code that
    // can panic runs between the plain stores of one entry's fields.
    shard.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
