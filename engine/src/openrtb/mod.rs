//! OpenRTB 2.5/2.6 on the engine: one decision per impression of a bid
//! request, and a BidResponse built from them.
//!
//! This module owns the OpenRTB request rules ([`plan_impressions`], and
//! [`rules`]: what each impression allows), the response
//! ([`response::build_response`]: bids with markup, notice URLs and ids, or
//! a no-bid with its OpenRTB 2.6 reason), the bid markup ([`markup`]), the
//! bid ids ([`bid_ids`]) and the notice URLs ([`notice`]).
//!
//! The pricing rule (see `docs/DECISIONS.md`): the bid for an impression is
//! the top eligible offer's `bid_cpm`, `floor + shading * (value - floor)`
//! capped at the offer's `max_bid_cpm`, where `value` is the offer's
//! expected revenue per thousand impressions. It is never below the floor:
//! an offer whose value or cap is below the floor is not eligible.
//!
//! The request rules live in one function, [`plan_impressions`], which
//! every path that decides OpenRTB goes through ([`Engine::decide_openrtb`]
//! behind `cx score`, and the server's connection behind `score_openrtb`),
//! so both answer a bid request alike: an impression whose floor is not in
//! USD, or a request whose `cur` list excludes USD, is not decided (the
//! engine prices in USD); a `test` request is decided in simulation mode,
//! so it spends no budget or frequency cap; `badv` goes with every
//! impression's request, so an offer of a blocked advertiser is not
//! eligible (`NoBidCause::BlockedAdvertiser`); and so does what the
//! impression allows ([`rules::imp_rules`]: its kinds and what a creative
//! must fit, `battr`, the request's `bcat`), so an offer the bid could not
//! be made with is not eligible either (`NoCreative`, `BlockedCategory`,
//! `BlockedAttribute`): the decide step never ranks, nor charges to its
//! budget and frequency cap, an offer that the response could not show.
//! The response is likewise one function, [`build_response`], for every
//! path.

pub mod bid_ids;
mod json_out;
pub mod markup;
mod native;
pub mod notice;
pub mod response;
pub mod response_json;
pub mod rules;

pub use bid_ids::{BidIdParts, BidIds};
pub use notice::{BidNotices, NoticeUrls};
pub use response::{
    build_response, nbr_for_cause, nbr_for_skip, no_bid_reason, unshown_top_offers, Bidder,
};
pub use response_json::{write_response, ResponseBuffers, Written};

use crate::engine::Engine;
use crate::error::{Error, Result};
use cx_domain::pipeline::{Decision, Request, Ticket};
use cx_wire::openrtb::{BidRequest, BidResponse};
use cx_wire::protocol::SkipReason;

/// The currency the engine prices in.
pub const CURRENCY: &str = "USD";

/// The seat the engine bids as.
pub const SEAT: &str = "cx";

/// What the request rules do with one impression.
// Nearly every impression is submitted; boxing the request would cost an
// allocation per impression for the rare skip's sake.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum ImpPlan {
    /// Decide it as this request.
    Submit(Request),
    /// Do not decide it, for this reason.
    Skip(SkipReason),
}

/// The OpenRTB request rules (see the [module docs](self)): each impression
/// of `request`, in `imp` order, with its id and what to do with it.
pub fn plan_impressions(request: &BidRequest) -> Vec<(String, ImpPlan)> {
    let usd_ok = request.cur.is_empty() || request.cur.iter().any(|c| c == CURRENCY);
    let simulate = request.is_test();
    let bcat = rules::blocked_categories(request);
    // `impressions()` gives one impression per `imp`, in order.
    request
        .impressions()
        .into_iter()
        .zip(&request.imp)
        .map(|(imp, wire_imp)| {
            let plan = if usd_ok && imp.bid_floor_currency == CURRENCY {
                ImpPlan::Submit(Request {
                    ctx: imp.ctx,
                    simulate,
                    blocked_domains: request.badv.clone(),
                    imp: rules::imp_rules(wire_imp, &bcat),
                    settlement: cx_domain::store::Settlement::Auction,
                })
            } else {
                ImpPlan::Skip(SkipReason::Currency)
            };
            (imp.imp_id, plan)
        })
        .collect()
}

/// Drops from a planned bid request what its answer never reads, so that a
/// connection holding it until its impressions are decided holds (and
/// later frees) only that: [`build_response`] and [`write_response`] read
/// the request's `id`, its impressions' ids, `banner`, `video` and
/// `native` (markup, sizes, `battr`) and its `bcat`. The context objects
/// (`site`, `app`, `dooh`, `device`, `user`, `regs`), the buyer lists the
/// decisions already applied (`badv`) or ignore (`bapp`, `wseat`,
/// `bseat`), every `ext`, and each impression's `audio`, `pmp` and
/// `tagid` are freed here, right after [`plan_impressions`] read them,
/// while they are still in cache.
pub fn trim_for_response(request: &mut BidRequest) {
    for imp in &mut request.imp {
        imp.audio = None;
        imp.pmp = None;
        imp.tagid = None;
        imp.ext = None;
    }
    request.site = None;
    request.app = None;
    request.dooh = None;
    request.device = None;
    request.user = None;
    request.regs = None;
    request.ext = None;
    for list in [
        &mut request.badv,
        &mut request.bapp,
        &mut request.wseat,
        &mut request.bseat,
    ] {
        *list = Vec::new();
    }
}

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
    /// builds the response through [`build_response`] with the engine's
    /// [`Bidder`](Engine::bidder). Needs an engine with nothing else in flight
    /// ([`Error::Busy`] otherwise), since it ticks until its own requests
    /// are decided and polls every decision.
    pub fn decide_openrtb(&mut self, request: &BidRequest, now_ns: u64) -> Result<OpenRtbOutcome> {
        if self.in_flight() > 0 {
            return Err(Error::Busy(format!(
                "decide_openrtb needs an idle engine; {} requests are in flight",
                self.in_flight()
            )));
        }
        let mut pending: Vec<(String, Option<Ticket>, Option<&'static str>)> = Vec::new();
        for (imp_id, plan) in plan_impressions(request) {
            match plan {
                ImpPlan::Submit(r) => pending.push((imp_id, Some(self.submit_request(r)?), None)),
                ImpPlan::Skip(reason) => pending.push((imp_id, None, Some(reason.label()))),
            }
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
        let response = self.bid_response(request, &impressions);
        Ok(OpenRtbOutcome {
            response,
            impressions,
        })
    }
}
