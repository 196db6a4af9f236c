//! One shard of the decision log: its entries as a structure of arrays,
//! and the join of one event against them. See the parent module for the
//! rules; this file holds their arithmetic.

use super::{Effect, LogStats, LoggedDecision, Settlement};
use crate::feedback::{Event, EventKind, EventRefusal, FeedbackWindows};
use crate::store::WAYS;

/// `flags` bits of an entry.
const SETTLED: u8 = 1 << 0;
const AUCTION: u8 = 1 << 1;
const SIMULATED: u8 = 1 << 2;
/// The impression was counted (by an impression event, or implied by a
/// click that came first).
const SHOWN: u8 = 1 << 3;

/// Event kinds seen (`1 << kind.index()`), beside the flags.
fn kind_bit(kind: EventKind) -> u8 {
    1 << kind.index()
}

/// One shard: `sets * WAYS` entries, every array allocated in [`Shard::new`].
#[derive(Debug)]
pub(super) struct Shard {
    keys: Box<[u64]>,
    decided_ns: Box<[u64]>,
    offer_ids: Box<[u64]>,
    offer_indices: Box<[u32]>,
    variants: Box<[u32]>,
    p_click: Box<[f32]>,
    scores: Box<[f32]>,
    propensities: Box<[f32]>,
    model_keys: Box<[u64]>,
    arms: Box<[u16]>,
    fingerprints: Box<[u64]>,
    user_hashes: Box<[u64]>,
    placement_keys: Box<[u64]>,
    reserved_micros: Box<[u64]>,
    flags: Box<[u8]>,
    seen: Box<[u8]>,
    set_mask: usize,
    pub(super) stats: LogStats,
    /// Where the next sweep starts (an entry index).
    pub(super) sweep_at: usize,
}

impl Shard {
    pub(super) fn new(sets: usize) -> Self {
        let n = sets * WAYS;
        Self {
            keys: vec![0; n].into(),
            decided_ns: vec![0; n].into(),
            offer_ids: vec![0; n].into(),
            offer_indices: vec![0; n].into(),
            variants: vec![0; n].into(),
            p_click: vec![0.0; n].into(),
            scores: vec![0.0; n].into(),
            propensities: vec![0.0; n].into(),
            model_keys: vec![0; n].into(),
            arms: vec![0; n].into(),
            fingerprints: vec![0; n].into(),
            user_hashes: vec![0; n].into(),
            placement_keys: vec![0; n].into(),
            reserved_micros: vec![0; n].into(),
            flags: vec![0; n].into(),
            seen: vec![0; n].into(),
            set_mask: sets - 1,
            stats: LogStats::default(),
            sweep_at: 0,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.keys.len()
    }

    fn set_of(&self, key: u64) -> std::ops::Range<usize> {
        let set = (key as usize >> 6) & self.set_mask;
        set * WAYS..(set + 1) * WAYS
    }

    fn find(&self, key: u64) -> Option<usize> {
        let set = self.set_of(key);
        let keys = self.keys.get(set.clone())?;
        keys.iter().position(|&k| k == key).map(|w| set.start + w)
    }

    pub(super) fn contains(&self, key: u64) -> bool {
        self.find(key).is_some()
    }

    pub(super) fn lookup(&self, key: u64) -> Option<LoggedDecision> {
        self.find(key).map(|i| self.decision(i))
    }

    /// The entry at `i`, as logged.
    pub(super) fn decision(&self, i: usize) -> LoggedDecision {
        let flags = self.flags[i];
        LoggedDecision {
            key: self.keys[i],
            decided_ns: self.decided_ns[i],
            offer_id: self.offer_ids[i],
            offer_index: self.offer_indices[i],
            variant: self.variants[i],
            p_click: self.p_click[i],
            score: self.scores[i],
            propensity: self.propensities[i],
            model_key: self.model_keys[i],
            arm: self.arms[i],
            fingerprint: self.fingerprints[i],
            user_hash: self.user_hashes[i],
            placement_key: self.placement_keys[i],
            reserved_micros: self.reserved_micros[i],
            settlement: if flags & AUCTION != 0 {
                Settlement::Auction
            } else {
                Settlement::Direct
            },
            simulated: flags & SIMULATED != 0,
        }
    }

    /// Calls `f` with every logged decision and its flag and seen bits
    /// (for a state file).
    pub(super) fn for_each_entry(&self, mut f: impl FnMut(&LoggedDecision, u8, u8)) {
        for i in (0..self.len()).filter(|&i| self.keys[i] != 0) {
            f(&self.decision(i), self.flags[i], self.seen[i]);
        }
    }

    /// Puts a decision back as a state file kept it (into a new log):
    /// its fields, flags and seen bits. Returns what an evicted entry held
    /// (a smaller log than the one saved), as [`Self::record`] does.
    pub(super) fn restore_entry(
        &mut self,
        d: &LoggedDecision,
        flags: u8,
        seen: u8,
        windows: &FeedbackWindows,
        now_ns: u64,
    ) -> Option<Effect> {
        let released = self.record(d, windows, now_ns);
        let i = self.find(d.key)?;
        self.stats.recorded -= 1;
        if self.flags[i] & SETTLED == 0 {
            self.stats.open_bids = self.stats.open_bids.saturating_sub(1);
        }
        self.flags[i] = flags;
        self.seen[i] = seen;
        if flags & SETTLED == 0 {
            self.stats.open_bids += 1;
        }
        released
    }

    /// Logs `d`. Returns what an evicted entry still held (its reserved
    /// budget and cap slot), for the caller to release.
    pub(super) fn record(
        &mut self,
        d: &LoggedDecision,
        windows: &FeedbackWindows,
        now_ns: u64,
    ) -> Option<Effect> {
        let set = self.set_of(d.key);
        let keys = self.keys.get(set.clone())?;
        let way = keys
            .iter()
            .position(|&k| k == d.key)
            .or_else(|| keys.iter().position(|&k| k == 0));
        let (i, released) = match way {
            Some(w) => (set.start + w, None),
            None => {
                // Full: the oldest decision of the set makes room.
                let times = self.decided_ns.get(set.clone())?;
                let oldest = (0..times.len()).min_by_key(|&w| times[w]).unwrap_or(0);
                let i = set.start + oldest;
                (i, self.evict(i, windows, now_ns))
            }
        };
        self.keys[i] = d.key;
        self.decided_ns[i] = d.decided_ns.max(1);
        self.offer_ids[i] = d.offer_id;
        self.offer_indices[i] = d.offer_index;
        self.variants[i] = d.variant;
        self.p_click[i] = d.p_click;
        self.scores[i] = d.score;
        self.propensities[i] = d.propensity;
        self.model_keys[i] = d.model_key;
        self.arms[i] = d.arm;
        self.fingerprints[i] = d.fingerprint;
        self.user_hashes[i] = d.user_hash;
        self.placement_keys[i] = d.placement_key;
        self.reserved_micros[i] = d.reserved_micros;
        let auction = d.settlement == Settlement::Auction;
        self.flags[i] =
            if auction { AUCTION } else { SETTLED } | if d.simulated { SIMULATED } else { 0 };
        self.seen[i] = 0;
        self.stats.recorded += 1;
        if auction {
            self.stats.open_bids += 1;
        }
        released
    }

    /// Frees entry `i` for a new decision, counting what it still had
    /// open; returns the release of an unsettled bid.
    fn evict(&mut self, i: usize, windows: &FeedbackWindows, now_ns: u64) -> Option<Effect> {
        self.stats.evicted += 1;
        let age = now_ns.saturating_sub(self.decided_ns[i]);
        if age < windows.longest_ns() {
            self.stats.evicted_open += 1;
        }
        let release = self.settle_unanswered(i);
        if release.is_some() {
            self.stats.evicted_unsettled += 1;
        }
        self.keys[i] = 0;
        release
    }

    /// Settles entry `i` as lost when it is an auction bid nobody answered:
    /// its reserved budget and cap slot go back.
    fn settle_unanswered(&mut self, i: usize) -> Option<Effect> {
        if self.flags[i] & SETTLED != 0 {
            return None;
        }
        self.flags[i] |= SETTLED;
        self.stats.open_bids = self.stats.open_bids.saturating_sub(1);
        let decision = self.decision(i);
        self.reserved_micros[i] = 0;
        Some(Effect {
            kind: None,
            decision,
            refund_micros: decision.reserved_micros,
            charge_micros: 0,
            release_cap: true,
            impression: false,
            click: false,
            conversion_value: 0.0,
        })
    }

    /// Joins `event` (dated `at_ns`) to its decision and applies it to the
    /// entry; `Ok(None)` when the decision is not logged here.
    pub(super) fn apply(
        &mut self,
        event: &Event,
        at_ns: u64,
        windows: &FeedbackWindows,
    ) -> Result<Option<Effect>, EventRefusal> {
        let Some(i) = self.find(event.decision_key) else {
            return Ok(None);
        };
        let decided = self.decided_ns[i];
        if at_ns.saturating_add(windows.backward_ns) < decided {
            return Err(EventRefusal::BeforeDecision);
        }
        if at_ns.saturating_sub(decided) > windows.of(event.kind) {
            return Err(EventRefusal::AfterWindow);
        }
        if event.offer_id != 0 && event.offer_id != self.offer_ids[i] {
            return Err(EventRefusal::OfferMismatch);
        }
        let flags = self.flags[i];
        if flags & SIMULATED != 0 {
            return Err(EventRefusal::NotApplicable);
        }
        let seen = self.seen[i];
        let bit = kind_bit(event.kind);
        if seen & bit != 0 && event.kind != EventKind::Conversion {
            return Err(EventRefusal::Duplicate);
        }
        let decision = self.decision(i);
        let mut effect = Effect {
            kind: Some(event.kind),
            decision,
            refund_micros: 0,
            charge_micros: 0,
            release_cap: false,
            impression: false,
            click: false,
            conversion_value: 0.0,
        };
        match event.kind {
            EventKind::Win | EventKind::Loss => {
                if flags & AUCTION == 0 {
                    return Err(EventRefusal::NotApplicable);
                }
                let other = if event.kind == EventKind::Win {
                    EventKind::Loss
                } else {
                    EventKind::Win
                };
                if seen & kind_bit(other) != 0 {
                    return Err(EventRefusal::Contradicts);
                }
                if flags & SETTLED != 0 {
                    // Settled by the win window's expiry: too late.
                    return Err(EventRefusal::AfterWindow);
                }
                let reserved = self.reserved_micros[i];
                if event.kind == EventKind::Win {
                    let price = price_micros(event.amount);
                    effect.refund_micros = reserved.saturating_sub(price);
                    effect.charge_micros = price.saturating_sub(reserved);
                } else {
                    effect.refund_micros = reserved;
                    effect.release_cap = true;
                    if seen & kind_bit(EventKind::Impression) != 0 {
                        // Shown, yet lost: the exchange contradicts itself.
                        return Err(EventRefusal::Contradicts);
                    }
                }
                self.reserved_micros[i] = 0;
                self.flags[i] |= SETTLED;
                self.stats.open_bids = self.stats.open_bids.saturating_sub(1);
            }
            EventKind::Impression => {
                if seen & kind_bit(EventKind::Loss) != 0 {
                    return Err(EventRefusal::Contradicts);
                }
                effect.impression = flags & SHOWN == 0;
            }
            EventKind::Click => {
                if seen & kind_bit(EventKind::Loss) != 0 {
                    return Err(EventRefusal::Contradicts);
                }
                // A click implies the impression, if it was not reported.
                effect.impression = flags & SHOWN == 0;
                effect.click = true;
            }
            EventKind::Conversion => {
                if seen & kind_bit(EventKind::Loss) != 0 {
                    return Err(EventRefusal::Contradicts);
                }
                effect.conversion_value = event.amount;
            }
        }
        self.seen[i] = seen | bit;
        if effect.impression {
            // Counted once, whichever of impression and click came first.
            self.flags[i] |= SHOWN;
        }
        Ok(Some(effect))
    }

    /// Looks at up to `budget` entries from the sweep cursor: settles the
    /// auction bids whose win window closed unanswered (`release`), and
    /// frees decisions past their longest window. Returns entries looked at.
    pub(super) fn sweep(
        &mut self,
        now_ns: u64,
        windows: &FeedbackWindows,
        budget: usize,
        release: &mut impl FnMut(Effect),
    ) -> usize {
        let n = self.len();
        let steps = budget.min(n);
        for _ in 0..steps {
            let i = self.sweep_at;
            self.sweep_at = (self.sweep_at + 1) % n;
            if self.keys[i] == 0 {
                continue;
            }
            let age = now_ns.saturating_sub(self.decided_ns[i]);
            if age > windows.win_ns {
                if let Some(effect) = self.settle_unanswered(i) {
                    self.stats.expired_unsettled += 1;
                    release(effect);
                }
            }
            if age > windows.longest_ns() {
                self.keys[i] = 0;
                self.stats.closed += 1;
                if self.seen[i] & kind_bit(EventKind::Click) == 0 {
                    self.stats.closed_without_click += 1;
                }
            }
        }
        steps
    }
}

/// A CPM price as whole micros of one impression (`cpm / 1000`), rounded
/// as the budgets round what they spend, so a win at the bid price refunds
/// exactly nothing; the caller checked it is finite and in range.
fn price_micros(cpm: f64) -> u64 {
    crate::store::budget::amount_micros(cpm / 1000.0).unwrap_or(u64::MAX)
}
