//! The worker's [`Respond`]: the one place a connection's decided OpenRTB
//! request becomes a BidResponse (the engine's
//! `cx_engine::openrtb::build_response`, over its catalog), and where each
//! bid made is recorded in the [`BidLedger`] that the exchanges' notices
//! are matched against.

use crate::conn::Respond;
use cx_domain::store::BidLedger;
use cx_engine::openrtb::{build_response, ImpOutcome};
use cx_engine::Engine;
use cx_wire::openrtb::{BidRequest, BidResponse};

/// Lends the engine and the ledger to a connection for one call.
pub(super) struct Responder<'a> {
    engine: &'a mut Engine,
    ledger: &'a BidLedger,
    now_ns: u64,
}

impl<'a> Responder<'a> {
    /// `now_ns` is the worker's clock (deadlines).
    pub(super) fn new(engine: &'a mut Engine, ledger: &'a BidLedger, now_ns: u64) -> Self {
        Self {
            engine,
            ledger,
            now_ns,
        }
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
        let response = build_response(request, imps, &mut self.engine.bidder());
        let unix_ns = crate::serve::unix_now_ns();
        for bid in response.seatbid.iter().flat_map(|s| &s.bid) {
            let offer_id = bid
                .adid
                .as_deref()
                .and_then(|a| a.parse().ok())
                .unwrap_or(0);
            self.ledger.record(&bid.id, offer_id, bid.price, unix_ns);
        }
        response
    }
}
