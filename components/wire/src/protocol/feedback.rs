//! The `feedback` request (a batch of events: what happened after the
//! server's decisions) and its answer, `feedback_ack` (how many were
//! applied, held or refused, and why).
//!
//! Decoding is allocation-free: [`decode_feedback`] checks the whole
//! payload once and returns a [`FeedbackView`] borrowed from it, whose
//! [`FeedbackView::iter`] yields each event with its ids as `&str`. A
//! payload with any bad field is refused whole, before any event is seen,
//! so a receiver never applies part of a bad message.

use super::control::reserved_zero;
use super::error::ProtocolError;
use super::frame::{FrameStart, Reader};
use super::limits::{
    DECISION_ID_BYTES_MAX, EVENT_ID_BYTES_MAX, FEEDBACK_EVENTS_MAX, FEEDBACK_REFUSALS_MAX,
};
use super::wire::{EventWire, F64Le, FeedbackAckWire, FeedbackWire, U16Le, U32Le, U64Le};
use super::MessageType;
use std::fmt;

const FEEDBACK_FIXED: usize = std::mem::size_of::<FeedbackWire>();
const EVENT_FIXED: usize = std::mem::size_of::<EventWire>();
const ACK_FIXED: usize = std::mem::size_of::<FeedbackAckWire>();

/// What happened, as the `kind` byte of a `feedback` event. The code is
/// the engine's `EventKind::index` plus one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FeedbackKind {
    /// The bid won its auction; `amount` is the clearing price, CPM.
    Win = 1,
    /// The bid lost; `loss_code` says why.
    Loss = 2,
    /// The offer was shown.
    Impression = 3,
    /// The user clicked it.
    Click = 4,
    /// The user converted; `amount` is the conversion's value.
    Conversion = 5,
}

impl FeedbackKind {
    /// Every kind, in code order.
    pub const ALL: [Self; 5] = [
        Self::Win,
        Self::Loss,
        Self::Impression,
        Self::Click,
        Self::Conversion,
    ];

    /// The wire code (1 to 5).
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The kind of a wire code, or `None`.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }

    /// The snake_case label, as in `docs/PROTOCOL.md` and `cx feedback`'s
    /// input.
    pub fn label(self) -> &'static str {
        match self {
            Self::Win => "win",
            Self::Loss => "loss",
            Self::Impression => "impression",
            Self::Click => "click",
            Self::Conversion => "conversion",
        }
    }

    /// The kind labelled `label`, or `None`.
    pub fn parse(label: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.label() == label)
    }
}

impl fmt::Display for FeedbackKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Why an event was refused, by code: the labels of the refusal counts of
/// a `feedback_ack`, code 1 first (the engine's `EventRefusal` labels, in
/// `EventRefusal::index` order). A newer server may send more counts; a
/// client reads the ones it knows.
pub const FEEDBACK_REFUSALS: [&str; 11] = [
    "no_decision_id",
    "bad_amount",
    "unknown_decision",
    "duplicate",
    "contradicts",
    "offer_mismatch",
    "before_decision",
    "after_window",
    "batch_too_large",
    "not_applicable",
    "pending_full",
];

/// One event of a `feedback` message, its ids borrowed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FeedbackEvent<'a> {
    /// What happened.
    pub kind: FeedbackKind,
    /// The decision's id (the `decision_id` of a `decision`, the bid id of
    /// a `bid_response`), at most [`DECISION_ID_BYTES_MAX`] bytes; empty:
    /// none (the server refuses the event, `no_decision_id`).
    pub decision_id: &'a str,
    /// The event's own id, for de-duplication, at most
    /// [`EVENT_ID_BYTES_MAX`] bytes; empty: none.
    pub event_id: &'a str,
    /// The offer decided; 0: not given.
    pub offer_id: u64,
    /// The creative variant shown.
    pub variant: u32,
    /// The exchange's loss reason, on a loss.
    pub loss_code: u32,
    /// When it happened, unix ns; 0: when it arrives.
    pub timestamp_ns: u64,
    /// A win's clearing price (CPM), a conversion's value; otherwise 0.
    /// Not checked here: the server refuses and counts a bad amount
    /// (`bad_amount`).
    pub amount: f64,
}

impl<'a> FeedbackEvent<'a> {
    /// An event of `kind` for `decision_id` with every other field empty.
    pub fn new(kind: FeedbackKind, decision_id: &'a str) -> Self {
        Self {
            kind,
            decision_id,
            event_id: "",
            offer_id: 0,
            variant: 0,
            loss_code: 0,
            timestamp_ns: 0,
            amount: 0.0,
        }
    }
}

/// Appends a `feedback` frame carrying `events`.
///
/// Refused, leaving `out` as it was: no event, or more than
/// [`FEEDBACK_EVENTS_MAX`] ([`ProtocolError::TooLong`],
/// [`ProtocolError::InvalidValue`]); an id over its limit
/// ([`ProtocolError::TooLong`]). Allocates only if `out` must grow.
pub fn encode_feedback(
    out: &mut Vec<u8>,
    request_id: u64,
    events: &[FeedbackEvent<'_>],
) -> Result<(), ProtocolError> {
    check_event_count(events.len())?;
    let frame = FrameStart::begin(out, MessageType::Feedback, request_id);
    out.extend_from_slice(bytemuck::bytes_of(&FeedbackWire {
        // At most FEEDBACK_EVENTS_MAX (4096).
        event_count: U16Le::new(events.len() as u16),
        reserved: U16Le::new(0),
    }));
    for event in events {
        let at = frame.payload_pos(out);
        let ids = [
            (event.decision_id, "decision_id", DECISION_ID_BYTES_MAX),
            (event.event_id, "event_id", EVENT_ID_BYTES_MAX),
        ];
        if let Some((id, field, limit)) = ids.into_iter().find(|(id, _, limit)| id.len() > *limit) {
            frame.rollback(out);
            return Err(ProtocolError::TooLong {
                field,
                offset: at + EVENT_FIXED,
                len: id.len(),
                limit,
            });
        }
        let wire = EventWire {
            kind: event.kind.code(),
            variant: U32Le::new(event.variant),
            loss_code: U32Le::new(event.loss_code),
            offer_id: U64Le::new(event.offer_id),
            timestamp_ns: U64Le::new(event.timestamp_ns),
            amount: F64Le::new(event.amount),
            ..EventWire::default()
        };
        out.extend_from_slice(bytemuck::bytes_of(&wire));
        for (id, _, _) in ids {
            // At most 64 bytes, checked above.
            out.extend_from_slice(&(id.len() as u16).to_le_bytes());
            out.extend_from_slice(id.as_bytes());
        }
    }
    frame.end(out).map(drop)
}

fn check_event_count(count: usize) -> Result<(), ProtocolError> {
    if count == 0 {
        return Err(ProtocolError::InvalidValue {
            field: "event_count",
            offset: 0,
            value: 0,
            rule: "a feedback message carries at least one event",
        });
    }
    if count > FEEDBACK_EVENTS_MAX {
        return Err(ProtocolError::TooLong {
            field: "event_count",
            offset: 0,
            len: count,
            limit: FEEDBACK_EVENTS_MAX,
        });
    }
    Ok(())
}

/// A checked `feedback` payload, borrowed: [`Self::iter`] yields its
/// events in order. Building it allocates nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeedbackView<'a> {
    count: usize,
    /// The events' bytes (after the fixed part), all checked.
    events: &'a [u8],
}

impl<'a> FeedbackView<'a> {
    /// Events in the message (1 to [`FEEDBACK_EVENTS_MAX`]).
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether it holds no event (never, for a decoded message).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The events, in message order.
    pub fn iter(&self) -> FeedbackEvents<'a> {
        FeedbackEvents {
            reader: Reader::new(self.events),
            left: self.count,
        }
    }
}

impl<'a> IntoIterator for &FeedbackView<'a> {
    type Item = FeedbackEvent<'a>;
    type IntoIter = FeedbackEvents<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// The events of a [`FeedbackView`], in order.
pub struct FeedbackEvents<'a> {
    reader: Reader<'a>,
    left: usize,
}

impl fmt::Debug for FeedbackEvents<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FeedbackEvents")
            .field("left", &self.left)
            .finish()
    }
}

impl<'a> Iterator for FeedbackEvents<'a> {
    type Item = FeedbackEvent<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // The view's bytes were checked by `decode_feedback`; a failure
        // here cannot happen, and would only end the iteration.
        match read_event(&mut self.reader, 0) {
            Ok(event) => Some(event),
            Err(_) => {
                self.left = 0;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for FeedbackEvents<'_> {}

/// Reads and checks one event; `base` is the reader's offset in the
/// payload (for the errors' offsets).
fn read_event<'a>(r: &mut Reader<'a>, base: usize) -> Result<FeedbackEvent<'a>, ProtocolError> {
    let at = base + r.pos();
    let shift = |e: ProtocolError| shift_offset(e, base);
    let wire: &EventWire = r.pod("event").map_err(shift)?;
    let kind = FeedbackKind::from_code(wire.kind).ok_or(ProtocolError::InvalidValue {
        field: "kind",
        offset: at,
        value: u64::from(wire.kind),
        rule: "not an event kind (1 win, 2 loss, 3 impression, 4 click, 5 conversion)",
    })?;
    reserved_zero(&wire.reserved, "reserved", at + 1)?;
    reserved_zero(&wire.reserved2.0, "reserved", at + 12)?;
    let decision_id = r.str("decision_id", DECISION_ID_BYTES_MAX).map_err(shift)?;
    let event_id = r.str("event_id", EVENT_ID_BYTES_MAX).map_err(shift)?;
    Ok(FeedbackEvent {
        kind,
        decision_id,
        event_id,
        offer_id: wire.offer_id.get(),
        variant: wire.variant.get(),
        loss_code: wire.loss_code.get(),
        timestamp_ns: wire.timestamp_ns.get(),
        amount: wire.amount.get(),
    })
}

/// `e` with its offset moved by `base` (a reader over part of a payload).
pub(super) fn shift_offset(e: ProtocolError, base: usize) -> ProtocolError {
    match e {
        ProtocolError::Truncated {
            field,
            offset,
            needed,
            available,
        } => ProtocolError::Truncated {
            field,
            offset: offset + base,
            needed,
            available,
        },
        ProtocolError::TooLong {
            field,
            offset,
            len,
            limit,
        } => ProtocolError::TooLong {
            field,
            offset: offset + base,
            len,
            limit,
        },
        ProtocolError::InvalidUtf8 { field, offset } => ProtocolError::InvalidUtf8 {
            field,
            offset: offset + base,
        },
        other => other,
    }
}

/// Decodes and checks a `feedback` payload without allocating.
///
/// Refused, whole: an event count of 0 or over [`FEEDBACK_EVENTS_MAX`],
/// an unknown kind, a non-zero reserved field, an id over its limit or not
/// UTF-8, a field past the end of the payload, bytes after the last event.
/// Amounts, ids and times are not judged here: the server's engine
/// refuses and counts a bad event by itself.
pub fn decode_feedback(payload: &[u8]) -> Result<FeedbackView<'_>, ProtocolError> {
    let mut r = Reader::new(payload);
    let wire: &FeedbackWire = r.pod("feedback fixed part")?;
    let count = usize::from(wire.event_count.get());
    check_event_count(count)?;
    reserved_zero(&wire.reserved.0, "reserved", 2)?;
    if count * (EVENT_FIXED + 4) > r.remaining() {
        return Err(ProtocolError::Truncated {
            field: "events",
            offset: FEEDBACK_FIXED,
            needed: count * (EVENT_FIXED + 4),
            available: r.remaining(),
        });
    }
    let events = payload.get(FEEDBACK_FIXED..).unwrap_or(&[]);
    let mut events_reader = Reader::new(events);
    for _ in 0..count {
        read_event(&mut events_reader, FEEDBACK_FIXED)?;
    }
    events_reader
        .finish()
        .map_err(|e| shift_trailing(e, FEEDBACK_FIXED))?;
    Ok(FeedbackView { count, events })
}

pub(super) fn shift_trailing(e: ProtocolError, base: usize) -> ProtocolError {
    match e {
        ProtocolError::TrailingBytes { offset, count } => ProtocolError::TrailingBytes {
            offset: offset + base,
            count,
        },
        other => other,
    }
}

/// The answer to a `feedback` message: what became of its events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeedbackAck {
    /// Events joined to their decision and applied.
    pub applied: u32,
    /// Events held for a decision not logged yet (joined when it comes
    /// within the backward window).
    pub held: u32,
    /// Events refused: the sum of [`Self::refused_by_reason`].
    pub refused: u32,
    reasons: [u32; FEEDBACK_REFUSALS_MAX],
    reason_count: usize,
}

impl FeedbackAck {
    /// An answer with `refused_by_reason[i]` events refused for the reason
    /// of code `i + 1` ([`FEEDBACK_REFUSALS`]); `refused` is their sum.
    /// Refused: more than [`FEEDBACK_REFUSALS_MAX`] reasons, or counts
    /// whose sum is over `u32::MAX` ([`ProtocolError::TooLong`]).
    pub fn new(applied: u32, held: u32, refused_by_reason: &[u32]) -> Result<Self, ProtocolError> {
        if refused_by_reason.len() > FEEDBACK_REFUSALS_MAX {
            return Err(ProtocolError::TooLong {
                field: "reason_count",
                offset: 12,
                len: refused_by_reason.len(),
                limit: FEEDBACK_REFUSALS_MAX,
            });
        }
        let sum: u64 = refused_by_reason.iter().map(|&n| u64::from(n)).sum();
        let refused = u32::try_from(sum).map_err(|_| ProtocolError::TooLong {
            field: "refused",
            offset: 8,
            len: usize::try_from(sum).unwrap_or(usize::MAX),
            limit: u32::MAX as usize,
        })?;
        let mut reasons = [0; FEEDBACK_REFUSALS_MAX];
        for (slot, &n) in reasons.iter_mut().zip(refused_by_reason) {
            *slot = n;
        }
        Ok(Self {
            applied,
            held,
            refused,
            reasons,
            reason_count: refused_by_reason.len(),
        })
    }

    /// Events refused per reason, code 1 first ([`FEEDBACK_REFUSALS`]).
    pub fn refused_by_reason(&self) -> &[u32] {
        self.reasons.get(..self.reason_count).unwrap_or(&[])
    }

    /// Events refused for the reason labelled `label` (0 for a label this
    /// build does not know, or that the answer does not carry).
    pub fn refused_for(&self, label: &str) -> u32 {
        FEEDBACK_REFUSALS
            .iter()
            .position(|&l| l == label)
            .and_then(|i| self.refused_by_reason().get(i))
            .copied()
            .unwrap_or(0)
    }
}

/// Appends a `feedback_ack` frame. Cannot fail: a [`FeedbackAck`] holds
/// only what the layout can carry.
pub fn encode_feedback_ack(out: &mut Vec<u8>, request_id: u64, ack: &FeedbackAck) {
    let frame = FrameStart::begin(out, MessageType::FeedbackAck, request_id);
    out.extend_from_slice(bytemuck::bytes_of(&FeedbackAckWire {
        applied: U32Le::new(ack.applied),
        held: U32Le::new(ack.held),
        refused: U32Le::new(ack.refused),
        // At most FEEDBACK_REFUSALS_MAX (32).
        reason_count: ack.reason_count as u8,
        reserved: [0; 3],
    }));
    for &n in ack.refused_by_reason() {
        out.extend_from_slice(&n.to_le_bytes());
    }
    // At most 16 + 32 * 4 bytes: never over the payload limit.
    let _ = frame.end(out);
}

/// Decodes a `feedback_ack` payload. Refused: a payload shorter than its
/// fixed part or its counts, bytes after them, more than
/// [`FEEDBACK_REFUSALS_MAX`] counts, a non-zero reserved field, a
/// `refused` that is not the sum of the counts. Allocates nothing.
pub fn decode_feedback_ack(payload: &[u8]) -> Result<FeedbackAck, ProtocolError> {
    let mut r = Reader::new(payload);
    let wire: &FeedbackAckWire = r.pod("feedback_ack fixed part")?;
    let reason_count = usize::from(wire.reason_count);
    if reason_count > FEEDBACK_REFUSALS_MAX {
        return Err(ProtocolError::TooLong {
            field: "reason_count",
            offset: 12,
            len: reason_count,
            limit: FEEDBACK_REFUSALS_MAX,
        });
    }
    reserved_zero(&wire.reserved, "reserved", 13)?;
    let mut reasons = [0u32; FEEDBACK_REFUSALS_MAX];
    for slot in reasons.iter_mut().take(reason_count) {
        *slot = r.pod::<U32Le>("refused_by_reason")?.get();
    }
    r.finish()?;
    let sum: u64 = reasons.iter().map(|&n| u64::from(n)).sum();
    let refused = wire.refused.get();
    if sum != u64::from(refused) {
        return Err(ProtocolError::InvalidValue {
            field: "refused",
            offset: 8,
            value: u64::from(refused),
            rule: "must be the sum of the refusal counts",
        });
    }
    Ok(FeedbackAck {
        applied: wire.applied.get(),
        held: wire.held.get(),
        refused,
        reasons,
        reason_count,
    })
}

/// The `feedback_ack` payload of exactly its fixed part (no reasons) is
/// the smallest: checked against the layout at compile time.
const _: () = assert!(ACK_FIXED == 16 && EVENT_FIXED == 40 && FEEDBACK_FIXED == 4);
