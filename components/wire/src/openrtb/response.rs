//! The OpenRTB 2.x `BidResponse` the engine answers with, and the no-bid
//! reason codes.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::request::BidRequest;
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
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Bid {
    /// The bidder's id of the bid, unique within the response.
    pub id: String,
    /// The id of the impression bid on (`imp.id` of the request).
    pub impid: String,
    /// The offer, CPM in the response's currency; finite and at least the
    /// impression's floor.
    pub price: f64,
    /// Id of a creative pre-loaded at the exchange.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adid: Option<String>,
    /// Creative id, for reporting and ad quality.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crid: Option<String>,
    /// Campaign id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cid: Option<String>,
    /// Advertiser domains, for block-list checks.
    #[serde(
        default,
        deserialize_with = "de::list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub adomain: Vec<String>,
    /// Creative width in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub w: Option<u32>,
    /// Creative height in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub h: Option<u32>,
    /// Extensions, as raw JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ext: Option<serde_json::Value>,
}

/// Why a bidder does not bid: OpenRTB 2.5/2.6 list 5.24, "No-Bid Reason
/// Codes" (`BidResponse.nbr`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NoBidReason {
    /// 0: unknown error.
    UnknownError,
    /// 1: technical error.
    TechnicalError,
    /// 2: invalid request.
    InvalidRequest,
    /// 3: known web spider (crawler).
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
    /// 9: daily reader (user) cap met.
    DailyReaderCapMet,
    /// 10: daily domain cap met.
    DailyDomainCapMet,
}

impl NoBidReason {
    /// Every reason, in code order (`ALL[c].code() == c`).
    pub const ALL: [Self; 11] = [
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
    ];

    /// The OpenRTB code, 0 to 10.
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
        }
    }

    /// The reason for an OpenRTB code, or `None` outside 0 to 10 (exchange
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
    /// - every bid has a non-empty id, unique within the response, and an
    ///   `impid` naming an impression of the request;
    /// - every price is finite, not negative, and at least its impression's
    ///   `bidfloor`; a floor in another currency than the response's cannot
    ///   be compared and fails the check.
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
                let Some((i, imp)) = request
                    .imp
                    .iter()
                    .enumerate()
                    .find(|(_, imp)| imp.id == bid.impid)
                else {
                    return Err(openrtb_error(
                        format!("{at}.impid"),
                        format!(
                            "`{}` is not the id of an impression of the request",
                            bid.impid
                        ),
                    ));
                };
                if !bid.price.is_finite() || bid.price < 0.0 {
                    return Err(openrtb_error(
                        format!("{at}.price"),
                        format!("must be a finite number >= 0, got {}", bid.price),
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
                    if bid.price < floor {
                        return Err(openrtb_error(
                            format!("{at}.price"),
                            format!("{} is under imp[{i}].bidfloor {floor}", bid.price),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
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
        assert_eq!(NoBidReason::from_code(11), None);
        assert_eq!(NoBidReason::from_code(u32::MAX), None);
        assert_eq!(NoBidReason::DailyDomainCapMet.code(), 10);
        assert_eq!(NoBidReason::CloudDataCenterProxyIp.code(), 5);
    }
}
