//! Feedback events: what happened after a decision. An exchange's notices
//! (win, loss, billing) and a host's own reports (impression, click,
//! conversion) all become one [`Event`] before they touch any state, and
//! every event is checked here ([`Event::check`]) and joined against the
//! decision log ([`crate::store::DecisionLog`]) before it may change a
//! budget, a frequency count or a posterior.
//!
//! # Layout
//!
//! An event is a fixed-size `Copy` value of 56 bytes: every id is already a
//! 64-bit key (the caller hashes strings at the edge with [`id_key`]), so a
//! batch of events is one flat slice and taking one allocates nothing.
//!
//! # Refusals
//!
//! An event that cannot be applied is refused with an [`EventRefusal`] and
//! counted under it; a refused event changes nothing.

use std::fmt;

/// Most events one batch may carry (`Engine::feedback`, the binary
/// protocol's `feedback` message, `cx feedback` per request).
pub const EVENT_BATCH_MAX: usize = 4096;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// The bid won its auction; `amount` is the clearing price, CPM.
    Win,
    /// The bid lost; `loss_code` is the exchange's reason (OpenRTB list 5.25).
    Loss,
    /// The offer was shown (an OpenRTB billing notice counts as one).
    Impression,
    /// The user clicked the offer shown.
    Click,
    /// The user converted; `amount` is the conversion's value.
    Conversion,
}

impl EventKind {
    /// Every kind, in [`Self::index`] order.
    pub const ALL: [Self; 5] = [
        Self::Win,
        Self::Loss,
        Self::Impression,
        Self::Click,
        Self::Conversion,
    ];

    /// Position in [`Self::ALL`] (and the wire code less one).
    pub fn index(self) -> usize {
        match self {
            Self::Win => 0,
            Self::Loss => 1,
            Self::Impression => 2,
            Self::Click => 3,
            Self::Conversion => 4,
        }
    }

    /// The kind's name, as in JSON and metric labels.
    pub fn label(self) -> &'static str {
        match self {
            Self::Win => "win",
            Self::Loss => "loss",
            Self::Impression => "impression",
            Self::Click => "click",
            Self::Conversion => "conversion",
        }
    }

    /// The kind named `label`.
    pub fn parse(label: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.label() == label)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// One feedback event. See the [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The event's own id, for de-duplication ([`id_key`] of the caller's
    /// id); 0 when the caller has none, and then one event of each kind per
    /// decision is taken.
    pub event_key: u64,
    /// The decision's key: [`id_key`] of its decision id (the bid id of an
    /// OpenRTB bid).
    pub decision_key: u64,
    /// The offer the caller says was decided; 0 when it does not say.
    /// Checked against the log.
    pub offer_id: u64,
    /// The creative variant shown (0: the offer's first, or the only one).
    pub variant: u32,
    /// The exchange's loss reason, on a loss (0 otherwise).
    pub loss_code: u32,
    /// When it happened, unix ns; 0 means "when it arrives".
    pub at_ns: u64,
    /// Win: the clearing price, CPM. Conversion: its value. Otherwise 0.
    pub amount: f64,
}

impl Event {
    /// An event of `kind` for `decision_key` with every other field empty.
    pub fn new(kind: EventKind, decision_key: u64) -> Self {
        Self {
            kind,
            event_key: 0,
            decision_key,
            offer_id: 0,
            variant: 0,
            loss_code: 0,
            at_ns: 0,
            amount: 0.0,
        }
    }

    /// Checks what can be checked without the decision: a decision key,
    /// and an amount that is finite, not negative and not above
    /// [`AMOUNT_MAX`] (0 on the kinds that carry none).
    pub fn check(&self) -> Result<(), EventRefusal> {
        if self.decision_key == 0 {
            return Err(EventRefusal::NoDecisionId);
        }
        let carries_amount = matches!(self.kind, EventKind::Win | EventKind::Conversion);
        let ok = if carries_amount {
            self.amount.is_finite() && (0.0..=AMOUNT_MAX).contains(&self.amount)
        } else {
            self.amount == 0.0
        };
        if ok {
            Ok(())
        } else {
            Err(EventRefusal::BadAmount)
        }
    }
}

/// Largest price or value an event may carry.
pub const AMOUNT_MAX: f64 = 1e9;

/// The 64-bit key of an id string (a decision id, a bid id, an event id):
/// xxh3, never 0 (0 marks "none").
pub fn id_key(id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(id.as_bytes()).max(1)
}

/// Longest decision-id prefix [`decision_key`] takes, bytes (a
/// `{node}-{worker}-{epoch}-` prefix of u32, u32 and u64 numbers in base 36
/// is at most 30).
pub const DECISION_PREFIX_BYTES_MAX: usize = 48;

/// The key of the decision id `{prefix}{ticket in base 36}`: the same
/// value as [`id_key`] of that string (so a notice's bid id finds it),
/// computed without allocating. A prefix longer than
/// [`DECISION_PREFIX_BYTES_MAX`] is a caller's bug (the engine writes it).
pub fn decision_key(prefix: &str, ticket: u64) -> u64 {
    assert!(
        prefix.len() <= DECISION_PREFIX_BYTES_MAX,
        "decision id prefix of {} bytes",
        prefix.len()
    );
    let mut buf = [0u8; DECISION_PREFIX_BYTES_MAX + 13];
    buf[..prefix.len()].copy_from_slice(prefix.as_bytes());
    let digits = base36_digits(ticket);
    let n = prefix.len() + digits.len();
    buf[prefix.len()..n].copy_from_slice(digits.as_slice());
    xxhash_rust::xxh3::xxh3_64(&buf[..n]).max(1)
}

const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// The lowercase base-36 digits of `n`, without leading zeros.
struct Base36 {
    buf: [u8; 13],
    at: usize,
}

impl Base36 {
    fn as_slice(&self) -> &[u8] {
        &self.buf[self.at..]
    }

    fn len(&self) -> usize {
        self.buf.len() - self.at
    }
}

fn base36_digits(mut n: u64) -> Base36 {
    let mut out = Base36 {
        buf: [0; 13],
        at: 13,
    };
    loop {
        out.at -= 1;
        out.buf[out.at] = DIGITS[(n % 36) as usize];
        n /= 36;
        if n == 0 {
            return out;
        }
    }
}

/// Appends `n` in lowercase base 36, without leading zeros (the numbers of
/// bid and decision ids).
pub fn push_base36(out: &mut String, n: u64) {
    let digits = base36_digits(n);
    out.extend(digits.as_slice().iter().map(|&b| char::from(b)));
}

/// Reads a canonical base-36 number (no leading zero but for `0` itself,
/// lowercase), or `None`.
pub fn parse_base36(text: &str) -> Option<u64> {
    if text.is_empty() || (text.len() > 1 && text.starts_with('0')) {
        return None;
    }
    text.bytes().try_fold(0u64, |n, b| {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'z' => b - b'a' + 10,
            _ => return None,
        };
        n.checked_mul(36)?.checked_add(u64::from(digit))
    })
}

/// Why an event was refused. A refused event changes nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum EventRefusal {
    /// The event names no decision.
    #[error("the event names no decision id")]
    NoDecisionId,
    /// The amount is negative, not finite, too large, or given on a kind
    /// that carries none.
    #[error(
        "the amount is not a finite number in 0..={AMOUNT_MAX} (or is set on a kind without one)"
    )]
    BadAmount,
    /// No such decision is logged (never made here, evicted, or too old),
    /// and none came within the backward window.
    #[error("no logged decision has this id")]
    UnknownDecision,
    /// An event with this id, or of this kind for this decision, was
    /// already taken.
    #[error("a duplicate of an event already taken")]
    Duplicate,
    /// The event contradicts one taken before (a loss after a win, a win
    /// after a loss).
    #[error("contradicts an event already taken for the decision (a win and a loss)")]
    Contradicts,
    /// The event's offer is not the offer decided.
    #[error("the offer is not the one decided")]
    OfferMismatch,
    /// The event happened before its decision, by more than the backward
    /// window allows.
    #[error("the event is dated before its decision by more than the backward window")]
    BeforeDecision,
    /// The event came after its kind's window (for example a click more
    /// than the click window after the decision).
    #[error("the event came after its kind's window closed")]
    AfterWindow,
    /// The batch holds more than [`EVENT_BATCH_MAX`] events.
    #[error("the batch holds more than {EVENT_BATCH_MAX} events")]
    BatchTooLarge,
    /// The decision was made in simulation, or not as a bid (a win or loss
    /// for a decision that was not an auction bid).
    #[error("the decision does not take this kind of event")]
    NotApplicable,
    /// Held for its decision (which may still come within the backward
    /// window), but the holding buffer is full.
    #[error("too many events are waiting for their decisions")]
    PendingFull,
}

impl EventRefusal {
    /// Every refusal, in [`Self::index`] order.
    pub const ALL: [Self; 11] = [
        Self::NoDecisionId,
        Self::BadAmount,
        Self::UnknownDecision,
        Self::Duplicate,
        Self::Contradicts,
        Self::OfferMismatch,
        Self::BeforeDecision,
        Self::AfterWindow,
        Self::BatchTooLarge,
        Self::NotApplicable,
        Self::PendingFull,
    ];

    /// Position in [`Self::ALL`].
    pub fn index(self) -> usize {
        Self::ALL.iter().position(|&r| r == self).unwrap_or(0)
    }

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::NoDecisionId => "no_decision_id",
            Self::BadAmount => "bad_amount",
            Self::UnknownDecision => "unknown_decision",
            Self::Duplicate => "duplicate",
            Self::Contradicts => "contradicts",
            Self::OfferMismatch => "offer_mismatch",
            Self::BeforeDecision => "before_decision",
            Self::AfterWindow => "after_window",
            Self::BatchTooLarge => "batch_too_large",
            Self::NotApplicable => "not_applicable",
            Self::PendingFull => "pending_full",
        }
    }
}

/// How an accepted event was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accepted {
    /// Joined to its decision and applied.
    Applied,
    /// Its decision is not logged yet: held for the backward window.
    Held,
}

/// Per event kind, how long after its decision an event may still come.
/// Follows microsoft/learning-loop's joiner: each kind has an
/// experimental-unit duration, and a decision whose window closes without
/// the event takes the default reward (no click, no conversion).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeedbackWindows {
    /// A win or loss notice, ns. A bid still unsettled when it closes is
    /// treated as lost: its reserved budget and cap slot are released.
    pub win_ns: u64,
    /// An impression (billing notice), ns.
    pub impression_ns: u64,
    /// A click, ns.
    pub click_ns: u64,
    /// A conversion, ns.
    pub conversion_ns: u64,
    /// How long an event whose decision is not logged yet is held for it,
    /// ns; also how far before its decision an event may be dated.
    pub backward_ns: u64,
}

impl FeedbackWindows {
    /// The window of `kind`.
    pub fn of(&self, kind: EventKind) -> u64 {
        match kind {
            EventKind::Win | EventKind::Loss => self.win_ns,
            EventKind::Impression => self.impression_ns,
            EventKind::Click => self.click_ns,
            EventKind::Conversion => self.conversion_ns,
        }
    }

    /// The longest window: how long a decision is worth keeping.
    pub fn longest_ns(&self) -> u64 {
        self.win_ns
            .max(self.impression_ns)
            .max(self.click_ns)
            .max(self.conversion_ns)
    }
}

impl Default for FeedbackWindows {
    /// Win or loss within 5 minutes, impression within 15 minutes, click
    /// within 1 hour, conversion within 7 days; events held 5 seconds for a
    /// decision not logged yet.
    fn default() -> Self {
        const S: u64 = 1_000_000_000;
        Self {
            win_ns: 300 * S,
            impression_ns: 900 * S,
            click_ns: 3_600 * S,
            conversion_ns: 7 * 86_400 * S,
            backward_ns: 5 * S,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_refusals_round_trip_their_labels_and_indices() {
        for (i, kind) in EventKind::ALL.into_iter().enumerate() {
            assert_eq!(kind.index(), i);
            assert_eq!(EventKind::parse(kind.label()), Some(kind));
        }
        assert_eq!(EventKind::parse("view"), None);
        for (i, refusal) in EventRefusal::ALL.into_iter().enumerate() {
            assert_eq!(refusal.index(), i);
        }
    }

    #[test]
    fn amounts_are_checked_per_kind() {
        let mut win = Event::new(EventKind::Win, 5);
        win.amount = 1.5;
        assert_eq!(win.check(), Ok(()));
        for bad in [-0.01, f64::NAN, f64::INFINITY, AMOUNT_MAX * 2.0] {
            win.amount = bad;
            assert_eq!(win.check(), Err(EventRefusal::BadAmount), "{bad}");
        }
        let mut click = Event::new(EventKind::Click, 5);
        assert_eq!(click.check(), Ok(()));
        click.amount = 1.0;
        assert_eq!(click.check(), Err(EventRefusal::BadAmount));
        assert_eq!(
            Event::new(EventKind::Click, 0).check(),
            Err(EventRefusal::NoDecisionId)
        );
    }

    #[test]
    fn decision_keys_are_the_keys_of_the_written_ids() {
        for ticket in [0, 1, 35, 36, 1_000_000, u64::MAX] {
            let mut id = String::from("3-1-mkz1x0qo-");
            push_base36(&mut id, ticket);
            assert_eq!(decision_key("3-1-mkz1x0qo-", ticket), id_key(&id));
            assert_eq!(parse_base36(&id[13..]), Some(ticket));
        }
        assert_eq!(parse_base36("01"), None);
        assert_eq!(parse_base36("A"), None);
        assert_eq!(parse_base36("zzzzzzzzzzzzzz"), None, "overflows");
    }

    #[test]
    fn id_keys_are_never_zero() {
        assert_ne!(id_key(""), 0);
        assert_ne!(id_key("0-1-abc-2"), id_key("0-1-abc-3"));
    }
}
