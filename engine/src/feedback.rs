//! Where the engine hears what happened after its decisions: feedback
//! events ([`Engine::feedback`]) and an exchange's notices
//! ([`Engine::on_notice`], each turned into one event) are joined to the
//! decision they name in the decision log
//! ([`cx_domain::store::DecisionLog`], shared by a server's engines), and
//! the join's effect is applied to this engine's stores:
//!
//! - an auction bid's reserved budget is charged at the clearing price on
//!   a win, and given back on a loss or when its win window closes
//!   unanswered (the sweep, run from [`Engine::tick`]);
//! - its frequency-cap slot, reserved at the bid, goes back on a loss or
//!   at the window's close, so counts come from impressions;
//! - impressions and clicks update the offer's click posterior (Thompson
//!   sampling's, `crate::posteriors`), with the click probability the
//!   decision used as the model's expectation.
//!
//! A refused event changes nothing and is counted under its reason
//! ([`FeedbackCounts`]). Taking events allocates nothing.

use crate::engine::Engine;
use crate::openrtb::{build_response, ImpOutcome};
use bevy_ecs::prelude::*;
use cx_domain::catalog::Catalog;
use cx_domain::feedback::{id_key, Accepted, Event, EventKind, EventRefusal, EVENT_BATCH_MAX};
use cx_domain::notice::{Notice, NoticeKind};
use cx_domain::pipeline::Ticket;
use cx_domain::store::{
    BudgetBackend, DecisionLog, Effect, FrequencyBackend, Settlement, VariantBackend,
    WinRateBackend,
};
use cx_systems::logic::{apply_effect, EffectApplied};
use cx_systems::resources::DecisionLogging;
use cx_systems::DecideConfig;
use cx_wire::openrtb::{BidRequest, BidResponse};
use std::sync::Arc;

/// How often an engine sweeps the decision log for bids whose win window
/// closed, at most, ns of its clock.
pub const SWEEP_INTERVAL_NS: u64 = 10_000_000;

/// What an engine did with the events it took, since it was built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FeedbackCounts {
    /// Events joined and applied, by [`EventKind::index`] (a held event
    /// counts here once its decision comes).
    pub applied: [u64; 5],
    /// Events held for a decision not logged yet.
    pub held: u64,
    /// Events refused, by [`EventRefusal::index`].
    pub refused: [u64; EventRefusal::ALL.len()],
    /// Impressions counted (an impression event, or a click before it).
    pub impressions: u64,
    /// Clicks counted.
    pub clicks: u64,
    /// Conversion value taken, in currency micros.
    pub conversion_value_micros: u64,
    /// Budget given back (losses, bids cleared below their price, bids
    /// whose win window closed), micros.
    pub refunded_micros: u64,
    /// Budget charged beyond a reservation (cleared above the bid), micros.
    pub charged_micros: u64,
    /// Charges beyond a reservation the budget could not pay, micros.
    pub charge_refused_micros: u64,
    /// Frequency-cap slots given back.
    pub caps_released: u64,
    /// Bids settled as lost by this engine's sweeps (no win or loss came).
    pub expired: u64,
    /// Effects for an offer no longer in the catalog (nothing to apply).
    pub offer_gone: u64,
}

impl FeedbackCounts {
    /// Events refused for `reason`.
    pub fn refused(&self, reason: EventRefusal) -> u64 {
        self.refused[reason.index()]
    }

    /// Events of `kind` applied.
    pub fn applied(&self, kind: EventKind) -> u64 {
        self.applied[kind.index()]
    }

    fn refuse(&mut self, reason: EventRefusal) {
        self.refused[reason.index()] += 1;
    }

    fn take(&mut self, effect: &Effect, applied: &EffectApplied) {
        if let Some(kind) = effect.kind {
            self.applied[kind.index()] += 1;
        } else {
            self.expired += 1;
        }
        self.impressions += u64::from(effect.impression);
        self.clicks += u64::from(effect.click);
        self.conversion_value_micros += (effect.conversion_value * 1e6).round() as u64;
        self.refunded_micros += applied.refunded_micros;
        self.charged_micros += applied.charged_micros;
        self.charge_refused_micros += applied.charge_refused_micros;
        self.caps_released += u64::from(applied.cap_released);
        self.offer_gone += u64::from(applied.offer_gone);
    }
}

/// What happened to one batch of events.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Joined and applied now.
    pub applied: u32,
    /// Held for their decisions.
    pub held: u32,
    /// Refused (each counted under its reason in [`FeedbackCounts`]).
    pub refused: u32,
}

/// The engine's feedback state besides the shared log.
#[derive(Debug, Default)]
pub(crate) struct FeedbackState {
    pub(crate) counts: FeedbackCounts,
    last_sweep_ns: u64,
}

impl Engine {
    /// Logs decisions into `log` from now on, and joins events against it
    /// (a server hands every worker's engine the same one, so a notice
    /// finds its bid whichever worker takes it). An engine starts with a
    /// log of its own ([`cx_domain::store::LogConfig::default`]).
    pub fn set_decision_log(&mut self, log: Arc<DecisionLog>) {
        self.world.resource_mut::<DecisionLogging>().set_log(log);
    }

    /// The decision log.
    pub fn decision_log(&self) -> &Arc<DecisionLog> {
        self.world.resource::<DecisionLogging>().log()
    }

    /// The id of the decision of `ticket` (for an OpenRTB bid, the bid's
    /// id): what its events name.
    pub fn decision_id(&self, ticket: Ticket) -> String {
        let mut id = String::new();
        self.world
            .resource::<DecisionLogging>()
            .write_id(ticket, &mut id);
        id
    }

    /// The decision log's key of the decision of `ticket`
    /// ([`id_key`] of [`Self::decision_id`]).
    pub fn decision_key(&self, ticket: Ticket) -> u64 {
        self.world.resource::<DecisionLogging>().key(ticket)
    }

    /// Takes a batch of events at host time `now_ns` (an event dated 0
    /// happened now): each is joined to its decision and applied, held for
    /// it, or refused and counted. Refuses a batch of more than
    /// [`EVENT_BATCH_MAX`] events whole. Allocates nothing.
    pub fn feedback(
        &mut self,
        events: &[Event],
        now_ns: u64,
    ) -> Result<BatchOutcome, EventRefusal> {
        if events.len() > EVENT_BATCH_MAX {
            self.feedback.counts.refuse(EventRefusal::BatchTooLarge);
            return Err(EventRefusal::BatchTooLarge);
        }
        let mut outcome = BatchOutcome::default();
        for event in events {
            match self.feedback_event(event, now_ns) {
                Ok(Accepted::Applied) => outcome.applied += 1,
                Ok(Accepted::Held) => outcome.held += 1,
                Err(_) => outcome.refused += 1,
            }
        }
        Ok(outcome)
    }

    /// Takes one event at `now_ns`; see [`Self::feedback`].
    pub fn feedback_event(&mut self, event: &Event, now_ns: u64) -> Result<Accepted, EventRefusal> {
        let log = self.decision_log().clone();
        match log.apply(event, now_ns) {
            Ok((accepted, effect)) => {
                if let Some(effect) = effect {
                    self.apply(&effect, now_ns);
                }
                if accepted == Accepted::Held {
                    self.feedback.counts.held += 1;
                }
                Ok(accepted)
            }
            Err(reason) => {
                self.feedback.counts.refuse(reason);
                Err(reason)
            }
        }
    }

    /// Takes an exchange's notice at `now_unix_ns` as one event: a win
    /// (with its clearing price), a billing notice as an impression, a
    /// loss (with its reason). The one place notices enter the engine.
    pub fn on_notice(
        &mut self,
        notice: &Notice,
        now_unix_ns: u64,
    ) -> Result<Accepted, EventRefusal> {
        let kind = match notice.kind {
            NoticeKind::Win => EventKind::Win,
            NoticeKind::Bill => EventKind::Impression,
            NoticeKind::Loss => EventKind::Loss,
        };
        let mut event = Event::new(kind, id_key(&notice.bid_id));
        event.offer_id = notice.offer_id.unwrap_or(0);
        event.loss_code = notice.loss_code.unwrap_or(0);
        if kind == EventKind::Win {
            // A win without its price cannot be charged: refused, counted.
            event.amount = notice.price_cpm.unwrap_or(f64::NAN);
        }
        self.feedback_event(&event, now_unix_ns)
    }

    /// What this engine did with the events it took.
    pub fn feedback_counts(&self) -> FeedbackCounts {
        self.feedback.counts
    }

    /// Joins held events whose decisions came, and, at most every
    /// [`SWEEP_INTERVAL_NS`], settles bids whose win window closed
    /// unanswered. Run by [`Engine::tick`] after the schedule.
    pub(crate) fn maintain_feedback(&mut self, now_ns: u64) {
        let log = self.decision_log().clone();
        // Applying an effect touches budgets and caps, never the log, so it
        // may run under the log's shard lock.
        log.retry_held(now_ns, |_, result| match result {
            Ok(effect) => self.apply(&effect, now_ns),
            Err(reason) => self.feedback.counts.refuse(reason),
        });
        if now_ns.saturating_sub(self.feedback.last_sweep_ns) < SWEEP_INTERVAL_NS {
            return;
        }
        self.feedback.last_sweep_ns = now_ns;
        // Enough entries per sweep that the whole log is looked at within
        // half a win window.
        let per_shard = log.capacity() / cx_domain::store::decision_log::SHARDS;
        let sweeps_per_half_window = (log.windows().win_ns / 2 / SWEEP_INTERVAL_NS).max(1);
        let entries = (per_shard as u64).div_ceil(sweeps_per_half_window).max(1) as usize;
        log.sweep(now_ns, entries, |effect| self.apply(&effect, now_ns));
    }

    /// Applies one effect to this engine's budgets and frequency caps.
    fn apply(&mut self, effect: &Effect, now_ns: u64) {
        let applied = self
            .world
            .resource_scope(|world, mut frequency: Mut<FrequencyBackend>| {
                world.resource_scope(|world, mut budget: Mut<BudgetBackend>| {
                    apply_effect(
                        effect,
                        world.resource::<Catalog>(),
                        world.resource::<DecideConfig>(),
                        &mut *frequency,
                        &mut *budget,
                        now_ns,
                    )
                })
            });
        self.feedback.counts.take(effect, &applied);
        self.count_arm_outcome(effect);
        if let Some(journal) = self.world.get_resource::<crate::journal::Journal>() {
            journal.record_observation(crate::journal::Observation::of(effect, now_ns));
        }
        // What learning reads: the offer's posterior, keyed by offer id (a
        // catalog swapped in since keeps it).
        let d = &effect.decision;
        if effect.impression {
            self.observe_impression(d.offer_id, d.p_click, now_ns);
        }
        if effect.click {
            self.observe_click(d.offer_id, now_ns);
        }
        self.monitor_outcome(d.p_click, effect.impression, effect.click);
        // And the creative variant's, for choosing among the offer's
        // variants.
        if effect.impression || effect.click {
            if let Some(i) = applied.offer_index {
                let variant = d.variant as usize;
                self.world.resource_mut::<VariantBackend>().update(|stats| {
                    if effect.impression {
                        stats.observe_impression(i, variant, now_ns);
                    }
                    if effect.click {
                        stats.observe_click(i, variant, now_ns);
                    }
                });
            }
        }
        // The placement's win rates learn how the bid ended: a win, or a
        // loss (a bid whose win window closed unanswered counts as lost).
        let ended = match effect.kind {
            Some(EventKind::Win) => Some(true),
            Some(EventKind::Loss) | None => Some(false),
            Some(_) => None,
        };
        if let Some(won) = ended {
            if d.settlement == Settlement::Auction && d.placement_key != 0 && d.reserved_micros > 0
            {
                // The reservation is the bid: micros per impression, so
                // CPM = micros / 1000.
                let bid_cpm = d.reserved_micros as f64 / 1000.0;
                self.world.resource_mut::<WinRateBackend>().observe(
                    d.placement_key,
                    bid_cpm,
                    won,
                    now_ns,
                );
            }
        }
        // The user's features with update rules (views, clicks, conversions...).
        self.feed_features(effect, now_ns);
    }

    /// The BidResponse for `request`, whose impressions ended as
    /// `impressions`: [`build_response`] with this engine's catalog, bid ids
    /// and notice URLs. Each bid's id is its decision's id, logged when it
    /// was decided. Every path that answers OpenRTB goes through it.
    pub fn bid_response(
        &mut self,
        request: &BidRequest,
        impressions: &[ImpOutcome],
    ) -> BidResponse {
        build_response(request, impressions, &mut self.bidder())
    }

    /// [`Self::bid_response`] written as JSON into `out`
    /// ([`write_response`](crate::openrtb::write_response): the same
    /// response, without building it first), with `buffers` reused from
    /// call to call. What the HTTP bidder sends.
    pub fn write_bid_response(
        &mut self,
        request: &BidRequest,
        impressions: &[ImpOutcome],
        buffers: &mut crate::openrtb::ResponseBuffers,
        out: &mut Vec<u8>,
    ) -> crate::openrtb::Written {
        crate::openrtb::write_response(request, impressions, &mut self.bidder(), buffers, out)
    }
}
