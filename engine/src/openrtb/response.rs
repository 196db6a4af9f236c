//! The BidResponse for a bid request's decided impressions: one bid per
//! impression whose top offer can be shown there, else a no-bid with the
//! OpenRTB 2.6 reason code.
//!
//! [`build_response`] is the one function every OpenRTB path answers
//! through ([`Engine::decide_openrtb`](crate::Engine::decide_openrtb) for
//! `cx score`, the server's connections for the binary protocol and HTTP).
//! It takes what a bid needs besides the decisions explicitly, as a
//! [`Bidder`]: the catalog (creatives, domains, categories, attributes),
//! the worker's [`BidIds`] and the [`NoticeUrls`].
//!
//! The decide step already left out every offer the impression cannot
//! show ([`super::rules`]), so the top offer always gets its bid. The
//! checks here (`bcat`, a creative for the impression, `battr`) stay as a
//! defensive path: should they ever refuse an offer that the decide step's
//! check let through, the two disagree, which is a bug; it is counted
//! ([`unshown_top_offers`]) and panics in debug builds.

use super::bid_ids::BidIds;
use super::markup::{self, BidValues};
use super::notice::NoticeUrls;
use super::{ImpOutcome, CURRENCY, SEAT};
use cx_domain::catalog::template::MarkupOut;
use cx_domain::catalog::{category_covers, Catalog};
use cx_domain::pipeline::{ChosenOffer, Decision, NoBidCause, Ticket};
use cx_wire::openrtb::{Bid, BidRequest, BidResponse, Imp, ImpKind, NoBidReason, SeatBid};
use cx_wire::protocol::SkipReason;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};

/// Top offers that passed the decide step's check but that
/// [`build_response`] could not show, in this process. Always 0 unless the
/// two checks disagree (see the module docs).
static UNSHOWN_TOP_OFFERS: AtomicU64 = AtomicU64::new(0);

/// How many top offers passed the decide step's showability check
/// (`Catalog::check_showable`) but could not be shown by [`build_response`]
/// since the process started, over every engine: each one was answered
/// with a no-bid while its budget and frequency cap were charged. 0 unless
/// the two checks disagree; a debug build panics instead.
pub fn unshown_top_offers() -> u64 {
    UNSHOWN_TOP_OFFERS.load(Ordering::Relaxed)
}

/// What [`build_response`] needs besides the decisions: the catalog, the
/// source of bid ids and where notices go. [`Engine::bidder`](crate::Engine::bidder)
/// lends an engine's; a host can assemble its own.
pub struct Bidder<'a> {
    /// The offers decided among (the engine's catalog).
    pub catalog: &'a Catalog,
    /// Issues each bid's id.
    pub bid_ids: &'a mut BidIds,
    /// The notice URLs put in each bid.
    pub notices: &'a NoticeUrls,
}

/// The label in `ext.reason` of a response with no impressions to answer.
pub const NO_IMPRESSIONS: &str = "no_impressions";
/// The label of an impression with neither a decision nor a skip reason.
pub const NOT_DECIDED: &str = "not_decided";
/// The label of an impression whose top offer's category the request blocks (`bcat`).
pub const BLOCKED_CATEGORY: &str = "blocked_category";
/// The label of a decided impression the request does not list (a caller's error).
pub const UNKNOWN_IMP: &str = "unknown_imp";

/// The BidResponse for `impressions` (one [`ImpOutcome`] per impression of
/// `request`, as decided): a bid per impression whose top offer can be
/// shown there, priced at the decision's `bid_cpm`, with markup, size,
/// markup type, categories, attributes, advertiser domains, creative and
/// campaign ids, notice URLs and a fresh id from `bidder.bid_ids`. When no
/// impression gets a bid, a no-bid whose `nbr` is the reason of the first
/// impression ([`no_bid_reason`]) and whose `ext.reason` is our label.
///
/// The top offer is the one the decision charged (budget, frequency). The
/// decide step only chooses offers the impression can show, so it always
/// can; should it not (no creative for what the impression offers, its
/// attributes or category blocked: a decision made without the
/// impression's rules, or a bug, counted in [`unshown_top_offers`]), the
/// impression gets no bid rather than a bid for an offer the decision did
/// not charge.
pub fn build_response(
    request: &BidRequest,
    impressions: &[ImpOutcome],
    bidder: &mut Bidder<'_>,
) -> BidResponse {
    let mut bids = Vec::new();
    let mut reason: Option<(NoBidReason, &'static str)> = None;
    let mut buffers = BidBuffers::default();
    for imp in impressions {
        match plan_bid(request, imp, bidder, &mut buffers) {
            Ok(plan) => bids.push(assemble(&plan, &mut buffers, bidder.notices)),
            Err(why) => {
                reason.get_or_insert(why);
            }
        }
    }
    if bids.is_empty() {
        let (nbr, label) = reason.unwrap_or((NoBidReason::UnknownError, NO_IMPRESSIONS));
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

/// The buffers [`build_response`] writes a bid's id and markup into,
/// before it takes them into each [`Bid`].
#[derive(Debug, Default)]
struct BidBuffers {
    /// The bid's id.
    bid_id: String,
    /// The bid's markup.
    adm: String,
}

/// One impression's bid as chosen, before its markup: the top offer, its
/// creative variant, and the bid's id already written into the caller's
/// buffer.
pub(super) struct BidChoice<'r, 'c> {
    /// The decided impression's `imp.id`.
    pub imp_id: &'r str,
    /// The impression as the request lists it.
    wire_imp: &'r Imp,
    /// The top offer.
    pub offer: &'r ChosenOffer,
    /// The offer's catalog.
    pub catalog: &'c Catalog,
    /// The offer's catalog index.
    pub i: usize,
    /// The creative variant the decision chose (0: the offer's own).
    variant: usize,
    /// The chosen creative variant's id (empty: none).
    pub creative_id: &'c str,
}

/// One bid, decided, its markup written, before it is encoded as a
/// [`Bid`] or as JSON: the choice, and what its markup served.
pub(super) struct BidPlan<'r, 'c> {
    /// The bid as chosen.
    pub choice: BidChoice<'r, 'c>,
    /// The markup's kind.
    pub kind: ImpKind,
    /// `w`, `h`.
    pub size: Option<(u32, u32)>,
}

/// The bid for one impression with its id and markup written into
/// `buffers`, or why there is none: [`choose_bid`], then [`render_bid`].
fn plan_bid<'r, 'c>(
    request: &'r BidRequest,
    imp: &'r ImpOutcome,
    bidder: &mut Bidder<'c>,
    buffers: &mut BidBuffers,
) -> Result<BidPlan<'r, 'c>, (NoBidReason, &'static str)> {
    let choice = choose_bid(request, imp, bidder, &mut buffers.bid_id)?;
    render_bid(request, choice, bidder, &buffers.bid_id, &mut buffers.adm)
}

/// The first half of deciding what is bid, for [`build_response`] and
/// [`write_response`](super::response_json::write_response): the
/// impression's top offer, unless its category is blocked, with the bid's
/// id written into `bid_id` (cleared first). [`render_bid`] then writes
/// the markup; a caller can write what comes before the markup in
/// between.
pub(super) fn choose_bid<'r, 'c>(
    request: &'r BidRequest,
    imp: &'r ImpOutcome,
    bidder: &mut Bidder<'c>,
    bid_id: &mut String,
) -> Result<BidChoice<'r, 'c>, (NoBidReason, &'static str)> {
    let decision = imp.decision.as_ref();
    let Some(offer) = decision.and_then(|d| d.offers().first()) else {
        return Err(no_bid_reason(decision, imp.skipped));
    };
    let Some(wire_imp) = request.imp_by_id(&imp.imp_id) else {
        return Err((NoBidReason::TechnicalError, UNKNOWN_IMP));
    };
    let catalog = bidder.catalog;
    let i = offer.catalog_index as usize;
    if blocked_category(request, catalog, i) {
        return Err(unshown(request, wire_imp, catalog, i, BLOCKED_CATEGORY));
    }
    // The bid's id is its decision's id (the key feedback joins on); the
    // markup may carry it (VAST's AdServingId).
    let ticket = decision.map_or(Ticket(0), |d| d.ticket);
    bid_id.clear();
    bidder.bid_ids.write_id_for(ticket, bid_id);
    // The creative variant the decision chose for its first offer.
    let variant = decision.map_or(0, |d| usize::from(d.variant));
    let creative_id = catalog
        .variant(i, variant)
        .map_or_else(|| catalog.creative_id(i), |(id, _)| id);
    Ok(BidChoice {
        imp_id: &imp.imp_id,
        wire_imp,
        offer,
        catalog,
        i,
        variant,
        creative_id,
    })
}

/// The second half: the chosen bid's markup written into `adm` (`bid_id`
/// is the id [`choose_bid`] wrote), or why the impression cannot show it.
/// The bid is counted as issued only once its markup exists, so that only
/// bids count.
pub(super) fn render_bid<'r, 'c, A: MarkupOut>(
    request: &BidRequest,
    choice: BidChoice<'r, 'c>,
    bidder: &mut Bidder<'c>,
    bid_id: &str,
    adm: &mut A,
) -> Result<BidPlan<'r, 'c>, (NoBidReason, &'static str)> {
    let values = BidValues {
        bid_id,
        imp_id: &choice.wire_imp.id,
        offer_id: choice.offer.offer_id,
        creative_id: choice.creative_id,
    };
    let (wire_imp, catalog, i) = (choice.wire_imp, choice.catalog, choice.i);
    let (kind, size) = markup::markup_into(wire_imp, catalog, i, choice.variant, &values, adm)
        .map_err(|why| unshown(request, wire_imp, catalog, i, why.label()))?;
    bidder.bid_ids.count_issued();
    Ok(BidPlan { choice, kind, size })
}

/// The [`Bid`] of a plan, taking its id and markup out of `buffers`.
fn assemble(plan: &BidPlan<'_, '_>, buffers: &mut BidBuffers, notices: &NoticeUrls) -> Bid {
    let choice = &plan.choice;
    let (offer, catalog, i) = (choice.offer, choice.catalog, choice.i);
    let urls = notices.for_offer(offer.offer_id);
    Bid {
        id: std::mem::take(&mut buffers.bid_id),
        impid: choice.imp_id.to_owned(),
        price: offer.bid_cpm,
        nurl: urls.as_ref().map(|u| u.win.clone()),
        burl: urls.as_ref().map(|u| u.bill.clone()),
        lurl: urls.map(|u| u.loss),
        adm: Some(std::mem::take(&mut buffers.adm)),
        adid: Some(offer.offer_id.to_string()),
        adomain: catalog.adomain(i).to_vec(),
        cid: Some(offer.offer_id.to_string()),
        crid: (!choice.creative_id.is_empty()).then(|| choice.creative_id.to_string()),
        cat: catalog
            .categories(i)
            .iter()
            .map(|c| c.to_string())
            .collect(),
        attr: catalog.attr(i).iter().map(|&a| i64::from(a)).collect(),
        dealid: None,
        w: plan.size.map(|s| s.0),
        h: plan.size.map(|s| s.1),
        mtype: plan.kind.mtype(),
        ext: Some(json!({
            "offer_id": offer.offer_id,
            "score": offer.score,
            "p_click": offer.p_click,
        })),
    }
}

/// The no-bid for top offer `i`, which `imp` cannot show (`label` says
/// why). When the impression's own rules ([`super::rules::imp_rules`])
/// let the offer through [`Catalog::check_showable`], the decide step
/// would have chosen it just the same, so the two checks disagree: that is
/// counted ([`unshown_top_offers`]) and panics in debug builds. Otherwise
/// the decision was made without those rules (a host's own request).
fn unshown(
    request: &BidRequest,
    imp: &Imp,
    catalog: &Catalog,
    i: usize,
    label: &'static str,
) -> (NoBidReason, &'static str) {
    let rules = super::rules::imp_rules(imp, &super::rules::blocked_categories(request));
    if catalog.check_showable(i, &rules).is_ok() {
        UNSHOWN_TOP_OFFERS.fetch_add(1, Ordering::Relaxed);
        if cfg!(debug_assertions) {
            panic!(
                "offer {} passed the decide step's showability check but imp {:?} cannot show it: {label}",
                catalog.ids()[i],
                imp.id
            );
        }
    }
    (NoBidReason::UnknownError, label)
}

/// Whether the request's `bcat` blocks one of offer `i`'s categories (a
/// blocked `IAB1` covers `IAB1-6`).
fn blocked_category(request: &BidRequest, catalog: &Catalog, i: usize) -> bool {
    catalog.categories(i).iter().any(|cat| {
        request
            .bcat
            .iter()
            .any(|blocked| category_covers(blocked, cat))
    })
}

/// The OpenRTB no-bid reason and our label for an impression without an
/// offer: its skip reason when it was not decided, else its decision's
/// [`NoBidCause`] ([`nbr_for_cause`]); [`NOT_DECIDED`] when it has neither.
pub fn no_bid_reason(
    decision: Option<&Decision>,
    skipped: Option<&'static str>,
) -> (NoBidReason, &'static str) {
    if let Some(label) = skipped {
        return (nbr_for_skip(label), label);
    }
    match decision.and_then(|d| d.no_bid) {
        Some(cause) => (nbr_for_cause(cause), cause.label()),
        None => (NoBidReason::TechnicalError, NOT_DECIDED),
    }
}

/// The OpenRTB 2.6 no-bid reason for a decision's cause (`docs/OPENRTB.md`
/// has the table and why each code):
///
/// - `device_type` → 6 unsupported device;
/// - `frequency_capped` → 9 daily user cap met (the list's only per-user cap);
/// - `channel` → 7 blocked publisher or site (no offer buys this kind of
///   inventory, site or app);
/// - `not_scored`, `scoring_failed` → 1 technical error (our model or
///   fallback failed, or serves no offer of the catalog);
/// - `country`, `placement_size`, `blocked_advertiser`, `below_floor`,
///   `budget_exhausted`, `no_offers`, `no_creative`, `blocked_category`,
///   `blocked_attribute` → 0 unknown error: the list has no code for "no
///   campaign matches" (nor for "no creative fits", or "every campaign is
///   blocked"), and naming a wrong cause (2 invalid request, 7 blocked
///   publisher) would mislead the exchange.
pub fn nbr_for_cause(cause: NoBidCause) -> NoBidReason {
    match cause {
        NoBidCause::DeviceType => NoBidReason::UnsupportedDevice,
        NoBidCause::FrequencyCapped => NoBidReason::DailyReaderCapMet,
        NoBidCause::Channel => NoBidReason::BlockedPublisher,
        NoBidCause::NotScored | NoBidCause::ScoringFailed => NoBidReason::TechnicalError,
        NoBidCause::Country
        | NoBidCause::PlacementSize
        | NoBidCause::BlockedAdvertiser
        | NoBidCause::BelowFloor
        | NoBidCause::BudgetExhausted
        | NoBidCause::NoOffers
        | NoBidCause::NoCreative
        | NoBidCause::BlockedCategory
        | NoBidCause::BlockedAttribute => NoBidReason::UnknownError,
    }
}

/// The OpenRTB 2.6 no-bid reason for an impression that was not decided,
/// by its skip label ([`SkipReason::label`]):
///
/// - `currency` → 2 invalid request: the request asks for prices in a
///   currency this bidder cannot price in (its `cur`, or the floor's);
/// - `not_decided` → 1 technical error (a deadline, a shutdown, a failure);
/// - `unsupported_kind` and anything else → 0 unknown error.
pub fn nbr_for_skip(label: &str) -> NoBidReason {
    match SkipReason::from_label(label) {
        Some(SkipReason::Currency) => NoBidReason::InvalidRequest,
        Some(SkipReason::NotDecided) => NoBidReason::TechnicalError,
        Some(SkipReason::UnsupportedKind) | None => NoBidReason::UnknownError,
    }
}
