//! The worker's [`Respond`]: the one place a connection's decided OpenRTB
//! request becomes a BidResponse ([`Engine::bid_response`]: the engine's
//! `build_response` over its catalog, bid ids and notice URLs; or
//! [`Engine::write_bid_response`], the same response written as JSON
//! straight into the answer, which the HTTP bidder sends).

use crate::conn::Respond;
use cx_domain::pipeline::Ticket;
use cx_engine::openrtb::{ImpOutcome, ResponseBuffers, Written};
use cx_engine::Engine;
use cx_wire::openrtb::{BidRequest, BidResponse};

/// Lends the engine to a connection for one call.
pub(super) struct Responder<'a> {
    engine: &'a mut Engine,
    now_ns: u64,
}

impl<'a> Responder<'a> {
    /// `now_ns` is the worker's clock (deadlines).
    pub(super) fn new(engine: &'a mut Engine, now_ns: u64) -> Self {
        Self { engine, now_ns }
    }
}

impl Respond for Responder<'_> {
    fn now_ns(&self) -> u64 {
        self.now_ns
    }

    fn catalog(&self) -> &cx_domain::catalog::Catalog {
        self.engine.catalog()
    }

    fn bid_response(&mut self, request: &BidRequest, imps: &[ImpOutcome]) -> BidResponse {
        self.engine.bid_response(request, imps)
    }

    fn write_bid_response(
        &mut self,
        request: &BidRequest,
        imps: &[ImpOutcome],
        buffers: &mut ResponseBuffers,
        out: &mut Vec<u8>,
    ) -> Written {
        self.engine.write_bid_response(request, imps, buffers, out)
    }

    fn write_decision_id(&self, ticket: Ticket, out: &mut String) -> bool {
        self.engine.write_decision_id(ticket, out);
        true
    }
}
