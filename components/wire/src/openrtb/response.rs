//! The OpenRTB 2.x `BidResponse` the engine answers with, and the no-bid
//! reason codes.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::convert::ImpKind;
use super::request::{BidRequest, Imp};
use super::{de, openrtb_error};
use crate::error::Result;

/// A bid response: the bids of one or more seats, or a no-bid.
///
/// Serialising leaves out `None` fields and an empty `seatbid`, so a no-bid
/// is just `{"id": ..., "nbr": ...}` (HTTP 204 with no body is the other
/// OpenRTB way to say no).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BidResponse {
    /// The id of the request answered (must equal the request's `id`).
    pub id: String,
    /// One entry per seat that bids; empty for a no-bid.
    #[serde(
        default,
        deserialize_with = "de::seatbids",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub seatbid: Vec<SeatBid>,
    /// The bidder's id of this response, for logging.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bidid: Option<String>,
    /// Currency of every price in the response (ISO-4217); absent means USD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cur: Option<String>,
    /// Why there is no bid: a [`NoBidReason`] code; only on a no-bid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbr: Option<u32>,
    /// Extensions, as raw JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ext: Option<serde_json::Value>,
}

/// The bids of one seat (buyer).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SeatBid {
    /// The bids, at least one; each on an impression of the request.
    #[serde(deserialize_with = "de::bids")]
    pub bid: Vec<Bid>,
    /// The seat bidding on whose behalf.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seat: Option<String>,
}

/// One offer to buy one impression.
///
/// Serialising leaves out `None` fields and empty lists. The markup
/// (`adm`) and the notice URLs (`nurl`, `burl`, `lurl`) carry OpenRTB
/// substitution macros such as `${AUCTION_PRICE}` literally; the exchange
/// replaces them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Bid {
    /// The bidder's id of the bid, unique within the response.
    pub id: String,
    /// The id of the impression bid on (`imp.id` of the request).
    pub impid: String,
    /// The offer, CPM in the response's currency; finite and at least the
    /// impression's floor.
    pub price: f64,
    /// Win notice URL, called by the exchange when the bid wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nurl: Option<String>,
    /// Billing notice URL, called when the impression is billable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burl: Option<String>,
    /// Loss notice URL, called when the bid is known to have lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lurl: Option<String>,
    /// The ad markup: HTML for a banner, VAST XML for a video, a Native
    /// response JSON document for a native ad.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adm: Option<String>,
    /// Id of a creative pre-loaded at the exchange.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adid: Option<String>,
    /// Advertiser domains, for block-list checks.
    #[serde(
        default,
        deserialize_with = "de::list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub adomain: Vec<String>,
    /// Campaign id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cid: Option<String>,
    /// Creative id, for reporting and ad quality.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crid: Option<String>,
    /// IAB content categories of the creative (IAB 1.0 codes, the
    /// default taxonomy).
    #[serde(
        default,
        deserialize_with = "de::list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub cat: Vec<String>,
    /// Creative attributes (AdCOM list "Creative Attributes", 1 to 17).
    #[serde(
        default,
        deserialize_with = "de::list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub attr: Vec<i64>,
    /// The deal the bid is for, when it is for one (`imp.pmp.deals[].id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dealid: Option<String>,
    /// Creative width in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub w: Option<u32>,
    /// Creative height in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub h: Option<u32>,
    /// The markup's type (OpenRTB 2.6): 1 banner, 2 video, 3 audio,
    /// 4 native; [`ImpKind::mtype`] gives the code of an impression kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtype: Option<i64>,
    /// Extensions, as raw JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ext: Option<serde_json::Value>,
}

/// Why a bidder does not bid: OpenRTB 2.6 list "No-Bid Reason Codes"
/// (`BidResponse.nbr`), codes 0 to 17. Codes 500 and up are exchange
/// specific and have no variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NoBidReason {
    /// 0: unknown error.
    UnknownError,
    /// 1: technical error.
    TechnicalError,
    /// 2: invalid request.
    InvalidRequest,
    /// 3: known web crawler.
    KnownWebSpider,
    /// 4: suspected non-human traffic.
    SuspectedNonHuman,
    /// 5: cloud, data center or proxy IP.
    CloudDataCenterProxyIp,
    /// 6: unsupported device.
    UnsupportedDevice,
    /// 7: blocked publisher or site.
    BlockedPublisher,
    /// 8: unmatched user.
    UnmatchedUser,
    /// 9: daily user cap met (2.5 called it "daily reader cap met").
    DailyReaderCapMet,
    /// 10: daily domain cap met.
    DailyDomainCapMet,
    /// 11: ads.txt authorization unavailable.
    AdsTxtAuthorizationUnavailable,
    /// 12: ads.txt authorization violation.
    AdsTxtAuthorizationViolation,
    /// 13: ads.cert authentication unavailable.
    AdsCertAuthenticationUnavailable,
    /// 14: ads.cert authentication violation.
    AdsCertAuthenticationViolation,
    /// 15: insufficient auction time.
    InsufficientAuctionTime,
    /// 16: incomplete SupplyChain.
    IncompleteSupplyChain,
    /// 17: blocked SupplyChain node.
    BlockedSupplyChainNode,
}

impl NoBidReason {
    /// Every reason, in code order (`ALL[c].code() == c`).
    pub const ALL: [Self; 18] = [
        Self::UnknownError,
        Self::TechnicalError,
        Self::InvalidRequest,
        Self::KnownWebSpider,
        Self::SuspectedNonHuman,
        Self::CloudDataCenterProxyIp,
        Self::UnsupportedDevice,
        Self::BlockedPublisher,
        Self::UnmatchedUser,
        Self::DailyReaderCapMet,
        Self::DailyDomainCapMet,
        Self::AdsTxtAuthorizationUnavailable,
        Self::AdsTxtAuthorizationViolation,
        Self::AdsCertAuthenticationUnavailable,
        Self::AdsCertAuthenticationViolation,
        Self::InsufficientAuctionTime,
        Self::IncompleteSupplyChain,
        Self::BlockedSupplyChainNode,
    ];

    /// The OpenRTB code, 0 to 17.
    pub fn code(self) -> u32 {
        match self {
            Self::UnknownError => 0,
            Self::TechnicalError => 1,
            Self::InvalidRequest => 2,
            Self::KnownWebSpider => 3,
            Self::SuspectedNonHuman => 4,
            Self::CloudDataCenterProxyIp => 5,
            Self::UnsupportedDevice => 6,
            Self::BlockedPublisher => 7,
            Self::UnmatchedUser => 8,
            Self::DailyReaderCapMet => 9,
            Self::DailyDomainCapMet => 10,
            Self::AdsTxtAuthorizationUnavailable => 11,
            Self::AdsTxtAuthorizationViolation => 12,
            Self::AdsCertAuthenticationUnavailable => 13,
            Self::AdsCertAuthenticationViolation => 14,
            Self::InsufficientAuctionTime => 15,
            Self::IncompleteSupplyChain => 16,
            Self::BlockedSupplyChainNode => 17,
        }
    }

    /// The reason for an OpenRTB code, or `None` outside 0 to 17 (exchange
    /// codes 500+ and later additions included).
    pub fn from_code(code: u32) -> Option<Self> {
        usize::try_from(code)
            .ok()
            .and_then(|i| Self::ALL.get(i).copied())
    }

    /// A snake_case label for logs and metrics (`unsupported_device`).
    pub fn label(self) -> &'static str {
        match self {
            Self::UnknownError => "unknown_error",
            Self::TechnicalError => "technical_error",
            Self::InvalidRequest => "invalid_request",
            Self::KnownWebSpider => "known_web_spider",
            Self::SuspectedNonHuman => "suspected_non_human",
            Self::CloudDataCenterProxyIp => "cloud_data_center_proxy_ip",
            Self::UnsupportedDevice => "unsupported_device",
            Self::BlockedPublisher => "blocked_publisher",
            Self::UnmatchedUser => "unmatched_user",
            Self::DailyReaderCapMet => "daily_reader_cap_met",
            Self::DailyDomainCapMet => "daily_domain_cap_met",
            Self::AdsTxtAuthorizationUnavailable => "ads_txt_authorization_unavailable",
            Self::AdsTxtAuthorizationViolation => "ads_txt_authorization_violation",
            Self::AdsCertAuthenticationUnavailable => "ads_cert_authentication_unavailable",
            Self::AdsCertAuthenticationViolation => "ads_cert_authentication_violation",
            Self::InsufficientAuctionTime => "insufficient_auction_time",
            Self::IncompleteSupplyChain => "incomplete_supply_chain",
            Self::BlockedSupplyChainNode => "blocked_supply_chain_node",
        }
    }
}

impl fmt::Display for NoBidReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl BidResponse {
    /// A no-bid for request `id`: no seat bids, `nbr` set to the reason's code.
    pub fn no_bid(id: &str, reason: NoBidReason) -> Self {
        Self {
            id: id.to_owned(),
            nbr: Some(reason.code()),
            ..Self::default()
        }
    }

    /// Whether the response carries no bid.
    pub fn is_no_bid(&self) -> bool {
        self.seatbid.iter().all(|seat| seat.bid.is_empty())
    }

    /// The no-bid reason, when `nbr` holds a code of the list.
    pub fn no_bid_reason(&self) -> Option<NoBidReason> {
        self.nbr.and_then(NoBidReason::from_code)
    }

    /// The response's currency: `cur`, or USD when absent.
    pub fn currency(&self) -> &str {
        self.cur.as_deref().unwrap_or("USD")
    }

    /// Checks that the response is a well-formed answer to `request`:
    ///
    /// - `id` is the request's id;
    /// - `nbr` is set only when there is no seat bid;
    /// - `cur`, when the request lists currencies and the response bids, is one of them;
    /// - every seat bid holds at least one bid;
    /// - every bid passes [`Bid::check`] against its impression: a
    ///   non-empty id, unique within the response, and an `impid` naming an
    ///   impression of the request, then the bid's own fields.
    ///
    /// The error is an [`Error::OpenRtb`](crate::Error::OpenRtb) whose path
    /// is in the response (`seatbid[0].bid[1].price`).
    pub fn check(&self, request: &BidRequest) -> Result<()> {
        if self.id != request.id {
            return Err(openrtb_error(
                "id",
                format!("is `{}`, the request's id is `{}`", self.id, request.id),
            ));
        }
        if self.nbr.is_some() && !self.seatbid.is_empty() {
            return Err(openrtb_error(
                "nbr",
                "must be absent when the response has seat bids",
            ));
        }
        let cur = self.currency();
        // A no-bid carries no price, so its currency is moot.
        if !self.is_no_bid() && !request.cur.is_empty() && !request.cur.iter().any(|c| c == cur) {
            return Err(openrtb_error(
                "cur",
                format!("`{cur}` is not one of the request's {:?}", request.cur),
            ));
        }
        let mut bid_ids: HashMap<&str, String> = HashMap::new();
        for (s, seat) in self.seatbid.iter().enumerate() {
            if seat.bid.is_empty() {
                return Err(openrtb_error(
                    format!("seatbid[{s}].bid"),
                    "must hold at least one bid",
                ));
            }
            for (b, bid) in seat.bid.iter().enumerate() {
                let at = format!("seatbid[{s}].bid[{b}]");
                if bid.id.is_empty() {
                    return Err(openrtb_error(format!("{at}.id"), "missing required field"));
                }
                if let Some(first) = bid_ids.get(bid.id.as_str()) {
                    return Err(openrtb_error(
                        format!("{at}.id"),
                        format!("`{}` is also the id of {first}", bid.id),
                    ));
                }
                bid_ids.insert(&bid.id, at.clone());
                bid.check(&at, request, cur)?;
            }
        }
        Ok(())
    }
}

impl Bid {
    /// Checks one bid of a response in currency `cur` to `request`; `at`
    /// is the bid's path (`seatbid[0].bid[1]`), which errors extend:
    ///
    /// - `impid` names an impression of the request;
    /// - `price` is finite, not negative, and at least the impression's
    ///   `bidfloor`; a floor in another currency than `cur` cannot be
    ///   compared and fails the check;
    /// - `mtype`, when present, is 1 to 4 and names an object the
    ///   impression has (a video bid on a banner-only impression fails);
    /// - `w` and `h` are both present or both absent, and positive;
    /// - `adm`, `nurl`, `burl` and `lurl`, when present, are not empty, and
    ///   the notice URLs are `http://` or `https://` URLs;
    /// - `dealid`, when present, is the id of a deal of the impression;
    /// - no `adomain` is in the request's `badv`, no `cat` is blocked by the
    ///   request's `bcat` (a blocked `IAB1` also blocks `IAB1-2`), and no
    ///   `attr` is in the impression's `battr` for the markup's type.
    pub fn check(&self, at: &str, request: &BidRequest, cur: &str) -> Result<()> {
        let Some((i, imp)) = request
            .imp
            .iter()
            .enumerate()
            .find(|(_, imp)| imp.id == self.impid)
        else {
            return Err(openrtb_error(
                format!("{at}.impid"),
                format!(
                    "`{}` is not the id of an impression of the request",
                    self.impid
                ),
            ));
        };
        self.check_price(at, i, imp, cur)?;
        let mtype = self.check_mtype(at, i, imp)?;
        self.check_size(at)?;
        self.check_markup_and_urls(at)?;
        self.check_deal(at, i, imp)?;
        self.check_blocks(at, i, request, imp, mtype)
    }

    fn check_price(&self, at: &str, i: usize, imp: &Imp, cur: &str) -> Result<()> {
        if !self.price.is_finite() || self.price < 0.0 {
            return Err(openrtb_error(
                format!("{at}.price"),
                format!("must be a finite number >= 0, got {}", self.price),
            ));
        }
        let floor = imp.bidfloor.unwrap_or(0.0);
        if floor > 0.0 {
            let floor_cur = imp.bidfloorcur.as_deref().unwrap_or("USD");
            if floor_cur != cur {
                return Err(openrtb_error(
                    format!("{at}.price"),
                    format!(
                        "is in {cur} but imp[{i}].bidfloor is in {floor_cur}; \
                         cannot compare with the floor"
                    ),
                ));
            }
            if self.price < floor {
                return Err(openrtb_error(
                    format!("{at}.price"),
                    format!("{} is under imp[{i}].bidfloor {floor}", self.price),
                ));
            }
        }
        Ok(())
    }

    fn check_mtype(&self, at: &str, i: usize, imp: &Imp) -> Result<Option<ImpKind>> {
        let Some(code) = self.mtype else {
            return Ok(None);
        };
        let Some(mtype) = ImpKind::from_mtype(code) else {
            return Err(openrtb_error(
                format!("{at}.mtype"),
                format!("is {code}, expected 1 (banner), 2 (video), 3 (audio) or 4 (native)"),
            ));
        };
        if !mtype.offered_by(imp) {
            return Err(openrtb_error(
                format!("{at}.mtype"),
                format!(
                    "is {code} ({}), but imp[{i}] has no `{}` object",
                    mtype.label(),
                    mtype.label()
                ),
            ));
        }
        Ok(Some(mtype))
    }

    fn check_size(&self, at: &str) -> Result<()> {
        match (self.w, self.h) {
            (None, None) => Ok(()),
            (Some(w), Some(h)) if w > 0 && h > 0 => Ok(()),
            (Some(_), Some(_)) => Err(openrtb_error(
                format!("{at}.w"),
                format!(
                    "{}x{} is not a size; both sides must be positive",
                    self.w.unwrap_or(0),
                    self.h.unwrap_or(0)
                ),
            )),
            (Some(_), None) => Err(openrtb_error(format!("{at}.h"), "missing; `w` is set")),
            (None, Some(_)) => Err(openrtb_error(format!("{at}.w"), "missing; `h` is set")),
        }
    }

    fn check_markup_and_urls(&self, at: &str) -> Result<()> {
        if self.adm.as_deref() == Some("") {
            return Err(openrtb_error(format!("{at}.adm"), "is empty"));
        }
        for (field, url) in [
            ("nurl", &self.nurl),
            ("burl", &self.burl),
            ("lurl", &self.lurl),
        ] {
            let Some(url) = url.as_deref() else { continue };
            if !(url.starts_with("http://") || url.starts_with("https://"))
                || url.len() <= "https://".len()
            {
                return Err(openrtb_error(
                    format!("{at}.{field}"),
                    format!("`{url}` is not an http:// or https:// URL"),
                ));
            }
        }
        Ok(())
    }

    fn check_deal(&self, at: &str, i: usize, imp: &Imp) -> Result<()> {
        let Some(deal) = self.dealid.as_deref() else {
            return Ok(());
        };
        let deals = imp.pmp.as_ref().map(|p| p.deals.as_slice()).unwrap_or(&[]);
        if deals.iter().any(|d| d.id == deal) {
            Ok(())
        } else {
            Err(openrtb_error(
                format!("{at}.dealid"),
                format!("`{deal}` is not the id of a deal of imp[{i}]"),
            ))
        }
    }

    fn check_blocks(
        &self,
        at: &str,
        i: usize,
        request: &BidRequest,
        imp: &Imp,
        mtype: Option<ImpKind>,
    ) -> Result<()> {
        if let Some((k, d)) = self
            .adomain
            .iter()
            .enumerate()
            .find(|(_, d)| request.badv.contains(d))
        {
            return Err(openrtb_error(
                format!("{at}.adomain[{k}]"),
                format!("`{d}` is blocked by the request's badv"),
            ));
        }
        for (k, cat) in self.cat.iter().enumerate() {
            if let Some(blocked) = request.bcat.iter().find(|b| category_covers(b, cat)) {
                return Err(openrtb_error(
                    format!("{at}.cat[{k}]"),
                    format!("`{cat}` is blocked by the request's bcat `{blocked}`"),
                ));
            }
        }
        let battr = match mtype {
            Some(ImpKind::Banner) => imp.banner.as_ref().map(|b| b.battr.as_slice()),
            Some(ImpKind::Video) => imp.video.as_ref().map(|v| v.battr.as_slice()),
            _ => None,
        };
        let battr = battr.unwrap_or(&[]);
        if let Some((k, a)) = self
            .attr
            .iter()
            .enumerate()
            .find(|(_, a)| battr.contains(a))
        {
            let object = mtype.map_or("", ImpKind::label);
            return Err(openrtb_error(
                format!("{at}.attr[{k}]"),
                format!("{a} is blocked by imp[{i}].{object}.battr"),
            ));
        }
        Ok(())
    }
}

/// Whether a blocked category covers a creative's category: equal, or the
/// creative's category continues the blocked one at a `-` (a blocked `IAB1`
/// covers `IAB1-2`, not `IAB11`).
fn category_covers(blocked: &str, category: &str) -> bool {
    !blocked.is_empty()
        && category.len() >= blocked.len()
        && category.as_bytes()[..blocked.len()] == *blocked.as_bytes()
        && (category.len() == blocked.len() || category.as_bytes()[blocked.len()] == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_labels_are_consistent() {
        for (i, reason) in NoBidReason::ALL.iter().enumerate() {
            assert_eq!(reason.code() as usize, i);
            assert_eq!(NoBidReason::from_code(reason.code()), Some(*reason));
            assert_eq!(reason.to_string(), reason.label());
        }
        assert_eq!(NoBidReason::from_code(18), None);
        assert_eq!(NoBidReason::from_code(500), None);
        assert_eq!(NoBidReason::from_code(u32::MAX), None);
        assert_eq!(NoBidReason::DailyDomainCapMet.code(), 10);
        assert_eq!(NoBidReason::CloudDataCenterProxyIp.code(), 5);
        assert_eq!(NoBidReason::AdsTxtAuthorizationUnavailable.code(), 11);
        assert_eq!(NoBidReason::AdsCertAuthenticationViolation.code(), 14);
        assert_eq!(NoBidReason::InsufficientAuctionTime.code(), 15);
        assert_eq!(NoBidReason::BlockedSupplyChainNode.code(), 17);
        let mut labels: Vec<&str> = NoBidReason::ALL.iter().map(|r| r.label()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), NoBidReason::ALL.len(), "labels are distinct");
    }

    #[test]
    fn blocked_categories_cover_at_dash_boundaries() {
        assert!(category_covers("IAB1", "IAB1"));
        assert!(category_covers("IAB1", "IAB1-2"));
        assert!(!category_covers("IAB1", "IAB11"));
        assert!(!category_covers("IAB1-2", "IAB1"));
        assert!(!category_covers("", "IAB1"));
    }
}
