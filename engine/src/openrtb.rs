//! OpenRTB 2.5/2.6 on the engine: one decision per impression of a bid
//! request, and a BidResponse built from them.
//!
//! The pricing rule (see `docs/DECISIONS.md`): the bid for an impression is
//! the top eligible offer's `bid_cpm`, `floor + shading * (value - floor)`
//! capped at the offer's `max_bid_cpm`, where `value` is the offer's
//! expected revenue per thousand impressions. It is never below the floor:
//! an offer whose value or cap is below the floor is not eligible.
//!
//! Request rules applied here: an offer whose advertiser domain is in
//! `badv` is skipped for the next ranked one; an impression whose floor is
//! not in USD, or a request whose `cur` list excludes USD, gets no bid (the
//! engine prices in USD); a `test` request is decided in simulation mode,
//! so it spends no budget or frequency cap.

use crate::engine::Engine;
use crate::error::{Error, Result};
use cx_domain::catalog::Catalog;
use cx_domain::pipeline::{ChosenOffer, Decision, NoBidCause, Ticket};
use cx_wire::openrtb::{Bid, BidRequest, BidResponse, NoBidReason, SeatBid};
use serde_json::json;

/// The currency the engine prices in.
pub const CURRENCY: &str = "USD";

/// The seat the engine bids as.
pub const SEAT: &str = "cx";

/// What happened to one impression.
#[derive(Clone, Debug)]
pub struct ImpOutcome {
    /// `imp.id`.
    pub imp_id: String,
    /// Its decision, when it was decided.
    pub decision: Option<Decision>,
    /// Why it was not decided (`currency`), when it was not.
    pub skipped: Option<&'static str>,
}

/// A bid request's decisions and response.
#[derive(Clone, Debug)]
pub struct OpenRtbOutcome {
    /// The response to send.
    pub response: BidResponse,
    /// One entry per impression, in `imp` order.
    pub impressions: Vec<ImpOutcome>,
}

impl Engine {
    /// Decides every impression of `request` at host time `now_ns` and
    /// builds the response. Needs an engine with nothing else in flight
    /// ([`Error::Busy`] otherwise), since it ticks until its own requests
    /// are decided and polls every decision.
    pub fn decide_openrtb(&mut self, request: &BidRequest, now_ns: u64) -> Result<OpenRtbOutcome> {
        if self.in_flight() > 0 {
            return Err(Error::Busy(format!(
                "decide_openrtb needs an idle engine; {} requests are in flight",
                self.in_flight()
            )));
        }
        let usd_ok = request.cur.is_empty() || request.cur.iter().any(|c| c == CURRENCY);
        let mut pending: Vec<(String, Option<Ticket>, Option<&'static str>)> = Vec::new();
        for imp in request.impressions() {
            if !usd_ok || imp.bid_floor_currency != CURRENCY {
                pending.push((imp.imp_id, None, Some("currency")));
                continue;
            }
            let ticket = if request.is_test() {
                self.submit_simulated(imp.ctx)?
            } else {
                self.submit(imp.ctx)?
            };
            pending.push((imp.imp_id, Some(ticket), None));
        }
        self.run_until_decided(now_ns);
        let decisions: Vec<Decision> = self.drain().collect();
        let impressions: Vec<ImpOutcome> = pending
            .into_iter()
            .map(|(imp_id, ticket, skipped)| ImpOutcome {
                imp_id,
                decision: ticket.and_then(|t| decisions.iter().find(|d| d.ticket == t).copied()),
                skipped,
            })
            .collect();
        let response = build_response(request, &impressions, self.catalog());
        Ok(OpenRtbOutcome {
            response,
            impressions,
        })
    }
}

/// The first ranked offer whose advertiser domains are not blocked by `badv`.
fn first_allowed<'a>(
    offers: &'a [ChosenOffer],
    catalog: &Catalog,
    badv: &[String],
) -> Option<&'a ChosenOffer> {
    offers.iter().find(|o| {
        let domains = catalog.adomain(o.catalog_index as usize);
        !domains.iter().any(|d| badv.iter().any(|b| b == d))
    })
}

/// The BidResponse for `impressions`: a bid per impression with an allowed
/// offer, or a no-bid with the reason of the first impression.
pub fn build_response(
    request: &BidRequest,
    impressions: &[ImpOutcome],
    catalog: &Catalog,
) -> BidResponse {
    let mut bids = Vec::new();
    let mut reason: Option<(NoBidReason, &'static str)> = None;
    for imp in impressions {
        let chosen = imp
            .decision
            .as_ref()
            .and_then(|d| first_allowed(d.offers(), catalog, &request.badv));
        if let (Some(offer), Some(d)) = (chosen, imp.decision.as_ref()) {
            bids.push(bid_for(imp, offer, d, catalog));
        } else {
            reason.get_or_insert_with(|| no_bid_reason(imp.decision.as_ref(), imp.skipped));
        }
    }
    if bids.is_empty() {
        let (nbr, label) = reason.unwrap_or((NoBidReason::UnknownError, "no_impressions"));
        let mut response = BidResponse::no_bid(&request.id, nbr);
        response.ext = Some(json!({ "reason": label }));
        return response;
    }
    BidResponse {
        id: request.id.clone(),
        seatbid: vec![SeatBid {
            bid: bids,
            seat: Some(SEAT.into()),
        }],
        cur: Some(CURRENCY.into()),
        ..BidResponse::default()
    }
}

fn bid_for(imp: &ImpOutcome, offer: &ChosenOffer, d: &Decision, catalog: &Catalog) -> Bid {
    let i = offer.catalog_index as usize;
    let creative = catalog.creative_id(i);
    Bid {
        id: format!("cx-{}", d.ticket.0),
        impid: imp.imp_id.clone(),
        price: offer.bid_cpm,
        adid: Some(offer.offer_id.to_string()),
        crid: (!creative.is_empty()).then(|| creative.to_string()),
        adomain: catalog.adomain(i).to_vec(),
        ext: Some(json!({
            "offer_id": offer.offer_id,
            "score": offer.score,
            "p_click": offer.p_click,
        })),
        ..Bid::default()
    }
}

/// The OpenRTB no-bid reason and our label for an impression without a bid.
fn no_bid_reason(
    decision: Option<&Decision>,
    skipped: Option<&'static str>,
) -> (NoBidReason, &'static str) {
    if let Some(label) = skipped {
        return (NoBidReason::UnknownError, label);
    }
    match decision.and_then(|d| d.no_bid) {
        Some(NoBidCause::DeviceType) => (NoBidReason::UnsupportedDevice, "device_type"),
        Some(NoBidCause::ScoringFailed) => (NoBidReason::TechnicalError, "scoring_failed"),
        Some(cause) => (NoBidReason::UnknownError, cause.label()),
        // Decided with offers, all blocked by `badv`; or never decided.
        None if decision.is_some() => (NoBidReason::UnknownError, "blocked_advertiser"),
        None => (NoBidReason::TechnicalError, "not_decided"),
    }
}
