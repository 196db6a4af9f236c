//! What a connection needs of the event loop that drives it: a sink for
//! engine submissions, feedback and feature writes ([`Submit`]) and a responder that knows
//! the time, writes decision ids and builds OpenRTB answers
//! ([`Respond`]). The worker implements both over its engine; tests and
//! embedders can use [`EngineResponder`].

use super::{FeedbackTally, Overloaded, Owner};
use cx_domain::feedback::{Accepted, Event, EventRefusal};
use cx_domain::notice::Notice;
use cx_domain::pipeline::{Request, Ticket};
use cx_engine::featurestore::{Definitions, FeaturePut, PutOutcome};
use cx_engine::openrtb::{ImpOutcome, ResponseBuffers, Written};
use cx_features::RequestContext;
use cx_wire::openrtb::{BidRequest, BidResponse, NoBidReason};
use cx_wire::protocol::PutFeaturesAck;
use std::sync::Arc;

/// What a connection needs of its host to answer a request: the clock its
/// deadlines are on, and the one function that turns decisions into an
/// OpenRTB `BidResponse` (`cx_engine::openrtb::build_response`, with the
/// engine's catalog, bid ids and notice URLs), so that the binary
/// protocol's `bid_response` and the HTTP bidder answer alike.
pub trait Respond {
    /// Now, ns on the clock deadlines are on ([`Submit::deadline_ns`]).
    fn now_ns(&self) -> u64;

    /// The catalog the decisions' offers come from (their explanations
    /// name offers from it).
    fn catalog(&self) -> &cx_domain::catalog::Catalog;

    /// The response to `request`, whose impressions ended as `imps` (in
    /// `imp` order).
    fn bid_response(&mut self, request: &BidRequest, imps: &[ImpOutcome]) -> BidResponse;

    /// [`Self::bid_response`] appended to `out` as JSON, and whether it
    /// bids; `buffers` are the caller's, reused from call to call. The
    /// default serializes [`Self::bid_response`]; a host over an engine
    /// gives the engine's writer (`Engine::write_bid_response`: the same
    /// document, written without building the response first).
    fn write_bid_response(
        &mut self,
        request: &BidRequest,
        imps: &[ImpOutcome],
        buffers: &mut ResponseBuffers,
        out: &mut Vec<u8>,
    ) -> Written {
        let _ = buffers;
        let response = self.bid_response(request, imps);
        // Writing into a Vec cannot fail, nor can a BidResponse's encoding
        // (its maps have string keys).
        let _ = serde_json::to_writer(&mut *out, &response);
        match response.no_bid_reason() {
            Some(nbr) if response.is_no_bid() => Written::NoBid(nbr),
            None if response.is_no_bid() => Written::NoBid(NoBidReason::UnknownError),
            _ => Written::Bid,
        }
    }

    /// Appends the id of the decision of `ticket` to `out` (the engine's
    /// `write_decision_id`: what the decision's feedback events name), for
    /// a request that asked for decision ids; `false` when this host gives
    /// decisions no ids (nothing is written, and the answer carries none).
    /// The default gives none.
    fn write_decision_id(&self, ticket: Ticket, out: &mut String) -> bool {
        let _ = (ticket, out);
        false
    }
}

/// A [`Respond`] over an engine alone, for hosts without deadlines (tests,
/// embedders driving a [`Connection`] themselves): its clock stands at 0,
/// so it suits only a [`Submit`] that sets no deadline (the default).
pub struct EngineResponder<'a>(pub &'a mut cx_engine::Engine);

impl Respond for EngineResponder<'_> {
    fn now_ns(&self) -> u64 {
        0
    }

    fn catalog(&self) -> &cx_domain::catalog::Catalog {
        self.0.catalog()
    }

    fn bid_response(&mut self, request: &BidRequest, imps: &[ImpOutcome]) -> BidResponse {
        cx_engine::openrtb::build_response(request, imps, &mut self.0.bidder())
    }

    fn write_bid_response(
        &mut self,
        request: &BidRequest,
        imps: &[ImpOutcome],
        buffers: &mut ResponseBuffers,
        out: &mut Vec<u8>,
    ) -> Written {
        self.0.write_bid_response(request, imps, buffers, out)
    }

    fn write_decision_id(&self, ticket: Ticket, out: &mut String) -> bool {
        self.0.write_decision_id(ticket, out);
        true
    }
}

/// Where a connection submits engine requests: the event loop implements it
/// over the engine, and records which connection and [`Owner`] each ticket
/// belongs to.
pub trait Submit: Respond {
    /// Queues `request` for `owner`; [`Overloaded`] when there is no room
    /// (nothing queued).
    fn submit(&mut self, request: Request, owner: Owner) -> Result<Ticket, Overloaded>;

    /// Whether a request would be admitted now. Asked before a score
    /// request's payload is decoded, so that shedding load costs a frame
    /// header, not a payload decode; a `false` is counted as an overload by
    /// the sink. The default admits everything (and `submit` decides).
    fn admit(&mut self) -> bool {
        true
    }

    /// A context to decode the next `score_context` into. The engine's
    /// sink hands back one a decided request left (see
    /// `Engine::spare_context`), so decoding reuses its strings' capacity;
    /// it may hold that request's values, which decoding overwrites. The
    /// default is a new empty context.
    fn spare_context(&mut self) -> RequestContext {
        RequestContext::default()
    }

    /// When a request arriving now must be answered by, on
    /// [`Respond::now_ns`]'s clock: its OpenRTB `tmax_ms` (or the server's
    /// default when `None`) less the network margin. `None`: no deadline
    /// (the default).
    fn deadline_ns(&self, tmax_ms: Option<u32>) -> Option<u64> {
        let _ = tmax_ms;
        None
    }

    /// When a request of `imps` impressions submitted now would be decided,
    /// as the sink estimates it (the engine's backlog at its recent pace),
    /// on [`Respond::now_ns`]'s clock. A request that would be decided
    /// after its deadline is shed at admission rather than answered late.
    /// The default, 0, never sheds.
    fn decided_by_ns(&self, imps: usize) -> u64 {
        let _ = imps;
        0
    }

    /// Takes an exchange's notice: the one place notices enter the engine
    /// (`Engine::on_notice`). The default knows no decision.
    fn notice(&mut self, notice: &Notice) -> Result<Accepted, EventRefusal> {
        let _ = notice;
        Err(EventRefusal::UnknownDecision)
    }

    /// Takes a batch of at most `EVENT_BATCH_MAX` feedback events, decoded
    /// from a `feedback` message: the engine's `feedback` at the host's
    /// time, with the refusals counted per reason
    /// ([`FeedbackTally::of_engine`]). `Err` refuses the whole batch for
    /// that reason. The default takes none: `not_applicable`.
    fn feedback(&mut self, events: &[Event]) -> Result<FeedbackTally, EventRefusal> {
        let _ = events;
        Err(EventRefusal::NotApplicable)
    }

    /// The definitions of the host's online feature store, which a
    /// `put_features` message's items are resolved against; `None`: no
    /// store (every item is refused `store_off`). The default has none.
    fn feature_definitions(&self) -> Option<&Arc<Definitions>> {
        None
    }

    /// Writes a batch of resolved `put_features` items (at most
    /// `PUT_FEATURES_ITEMS_MAX`), dating those with `time_ns` 0 now, unix
    /// ns: the engine's `put_features`. Called only when
    /// [`Self::feature_definitions`] gave definitions. `Err`: the store
    /// refused the batch, and wrote nothing of it.
    fn put_features(&mut self, batch: &mut [FeaturePut]) -> Result<PutOutcome, cx_engine::Error> {
        let _ = batch;
        Err(cx_engine::Error::Config("feature store: none".into()))
    }

    /// Counts a `put_features` answer (the worker's metrics). The default
    /// counts nothing.
    fn count_put_features(&mut self, ack: &PutFeaturesAck) {
        let _ = ack;
    }
}
