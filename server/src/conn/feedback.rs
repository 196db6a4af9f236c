//! A connection's `feedback` messages: decoded into the connection's
//! reusable buffer of engine [`Event`]s (ids turned into 64-bit keys with
//! [`id_key`]), handed to the engine through the [`Submit`] sink, and
//! answered with a `feedback_ack` as soon as they are read, like a ping.
//!
//! A message whose layout is broken is answered with an `error` naming
//! the field and none of its events is applied (the codec checks the
//! whole payload first). Events the engine refuses (an unknown decision,
//! a duplicate, a bad amount, ...) are counted per reason in the ack; the
//! rest of the batch is applied. The buffer holds at most
//! [`EVENT_BATCH_MAX`] events and is allocated once, at the connection's
//! first `feedback`: taking a message allocates nothing after that.

use super::{Connection, Submit};
use cx_domain::feedback::{id_key, Event, EventKind, EventRefusal, EVENT_BATCH_MAX};
use cx_engine::feedback::BatchOutcome;
use cx_engine::Engine;
use cx_wire::protocol::{
    self, limits, ErrorCode, FeedbackAck, FeedbackEvent, FeedbackKind, FEEDBACK_REFUSALS,
};

/// Refusal reasons: the engine's, which the ack carries one count each of.
pub const REFUSAL_REASONS: usize = EventRefusal::ALL.len();

const _: () = {
    assert!(REFUSAL_REASONS == FEEDBACK_REFUSALS.len());
    assert!(REFUSAL_REASONS <= limits::FEEDBACK_REFUSALS_MAX);
    assert!(EVENT_BATCH_MAX == limits::FEEDBACK_EVENTS_MAX);
};

/// What became of one batch of events: the engine's [`BatchOutcome`] and
/// the refusals per reason, by [`EventRefusal::index`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FeedbackTally {
    /// Applied, held and refused.
    pub outcome: BatchOutcome,
    /// Refused per reason, by [`EventRefusal::index`]; sums to
    /// `outcome.refused`.
    pub refused_by_reason: [u32; REFUSAL_REASONS],
}

impl FeedbackTally {
    /// `engine.feedback(events, now_ns)`, with the refusals per reason
    /// read from the engine's counts before and after (the batch is the
    /// only thing that changes them in between).
    pub fn of_engine(
        engine: &mut Engine,
        events: &[Event],
        now_ns: u64,
    ) -> Result<Self, EventRefusal> {
        let before = engine.feedback_counts().refused;
        let outcome = engine.feedback(events, now_ns)?;
        let after = engine.feedback_counts().refused;
        let mut refused_by_reason = [0u32; REFUSAL_REASONS];
        for ((slot, b), a) in refused_by_reason.iter_mut().zip(before).zip(after) {
            *slot = u32::try_from(a.saturating_sub(b)).unwrap_or(u32::MAX);
        }
        Ok(Self {
            outcome,
            refused_by_reason,
        })
    }

    /// A batch of `events` events refused whole for `reason`.
    pub fn refused_whole(events: usize, reason: EventRefusal) -> Self {
        let n = u32::try_from(events).unwrap_or(u32::MAX);
        let mut refused_by_reason = [0u32; REFUSAL_REASONS];
        if let Some(slot) = refused_by_reason.get_mut(reason.index()) {
            *slot = n;
        }
        Self {
            outcome: BatchOutcome {
                refused: n,
                ..BatchOutcome::default()
            },
            refused_by_reason,
        }
    }
}

/// The engine's kind of a wire kind.
pub fn event_kind(kind: FeedbackKind) -> EventKind {
    match kind {
        FeedbackKind::Win => EventKind::Win,
        FeedbackKind::Loss => EventKind::Loss,
        FeedbackKind::Impression => EventKind::Impression,
        FeedbackKind::Click => EventKind::Click,
        FeedbackKind::Conversion => EventKind::Conversion,
    }
}

/// The engine's event for a wire event: its ids as keys ([`id_key`]; an
/// empty id is 0, "none", so an event without a decision id is refused
/// `no_decision_id` and one without an event id is de-duplicated per
/// kind).
pub fn to_event(event: &FeedbackEvent<'_>) -> Event {
    let key = |id: &str| if id.is_empty() { 0 } else { id_key(id) };
    Event {
        kind: event_kind(event.kind),
        event_key: key(event.event_id),
        decision_key: key(event.decision_id),
        offer_id: event.offer_id,
        variant: event.variant,
        loss_code: event.loss_code,
        at_ns: event.timestamp_ns,
        amount: event.amount,
    }
}

impl Connection {
    /// Decodes a `feedback` payload, hands its events to the sink and
    /// writes the `feedback_ack` (or the `error` naming the bad field).
    pub(super) fn on_feedback(&mut self, request_id: u64, payload: &[u8], sink: &mut impl Submit) {
        let view = match protocol::decode_feedback(payload) {
            Ok(view) => view,
            Err(e) => {
                self.error(request_id, e.code(), &e.to_string());
                return;
            }
        };
        let events = &mut self.feedback_events;
        events.clear();
        if events.capacity() < EVENT_BATCH_MAX {
            events.reserve_exact(EVENT_BATCH_MAX);
        }
        events.extend(view.iter().map(|e| to_event(&e)));
        let tally = match sink.feedback(events) {
            Ok(tally) => tally,
            Err(reason) => FeedbackTally::refused_whole(events.len(), reason),
        };
        let outcome = tally.outcome;
        match FeedbackAck::new(outcome.applied, outcome.held, &tally.refused_by_reason) {
            Ok(ack) => {
                protocol::encode_feedback_ack(&mut self.io.write, request_id, &ack);
                self.counts.frames_sent += 1;
            }
            Err(e) => {
                let msg = format!("the feedback_ack could not be encoded: {e}");
                self.error(request_id, ErrorCode::Internal, &msg);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_kinds_and_refusals_are_the_engines() {
        for kind in FeedbackKind::ALL {
            let engine_kind = event_kind(kind);
            assert_eq!(engine_kind.label(), kind.label());
            assert_eq!(engine_kind.index() + 1, usize::from(kind.code()));
        }
        for reason in EventRefusal::ALL {
            assert_eq!(FEEDBACK_REFUSALS[reason.index()], reason.label());
        }
    }

    #[test]
    fn empty_ids_are_no_ids_and_others_are_their_keys() {
        let mut wire = FeedbackEvent::new(FeedbackKind::Conversion, "");
        wire.amount = 2.5;
        wire.timestamp_ns = 9;
        let event = to_event(&wire);
        assert_eq!((event.decision_key, event.event_key), (0, 0));
        assert_eq!(event.check(), Err(EventRefusal::NoDecisionId));
        assert_eq!((event.amount, event.at_ns), (2.5, 9));
        wire.decision_id = "0-0-k-1";
        wire.event_id = "e";
        let event = to_event(&wire);
        assert_eq!(event.decision_key, id_key("0-0-k-1"));
        assert_eq!(event.event_key, id_key("e"));
        assert_eq!(event.kind, EventKind::Conversion);
    }

    #[test]
    fn a_batch_refused_whole_counts_every_event_under_its_reason() {
        let tally = FeedbackTally::refused_whole(7, EventRefusal::NotApplicable);
        assert_eq!(tally.outcome.refused, 7);
        assert_eq!(
            tally.refused_by_reason[EventRefusal::NotApplicable.index()],
            7
        );
        assert_eq!(tally.refused_by_reason.iter().sum::<u32>(), 7);
    }
}
