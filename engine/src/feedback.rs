//! Where the engine meets what happens after its bids: every bid it makes
//! is recorded in a [`BidLedger`] (shared by a server's engines), and every
//! win, billing or loss notice an exchange sends enters here,
//! [`Engine::on_notice`], matched against that ledger and counted. The
//! feedback loop (learning from wins and clicks) will consume notices at
//! this one place; until then they are matched, counted and logged by the
//! host.
//!
//! The ledger is the only state, and it is shared behind an `Arc`: an
//! engine without one (a host that set none) records nothing and knows no
//! bid, so every notice is [`NoticeMatch::Unknown`].

use crate::engine::Engine;
use crate::openrtb::{build_response, ImpOutcome};
use cx_domain::notice::{Notice, NoticeKind};
use cx_domain::store::{BidLedger, NoticeMatch};
use cx_wire::openrtb::{BidRequest, BidResponse};
use std::sync::Arc;

/// Notices an engine took, by kind ([`NoticeKind::index`]) and by how they
/// matched: first, duplicate, unknown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NoticeCounts {
    /// `[kind][0 first, 1 duplicate, 2 unknown]`.
    pub by_kind: [[u64; 3]; 3],
}

impl NoticeCounts {
    /// The count of `kind` notices that matched as `matched`.
    pub fn get(&self, kind: NoticeKind, matched: &NoticeMatch) -> u64 {
        self.by_kind
            .get(kind.index())
            .and_then(|per| per.get(match_index(matched)))
            .copied()
            .unwrap_or(0)
    }
}

fn match_index(matched: &NoticeMatch) -> usize {
    match matched {
        NoticeMatch::First(_) => 0,
        NoticeMatch::Duplicate(_) => 1,
        NoticeMatch::Unknown => 2,
    }
}

impl Engine {
    /// Records this engine's bids in `ledger`, and matches notices against
    /// it, from now on (a server hands every worker's engine the same one).
    pub fn set_bid_ledger(&mut self, ledger: Arc<BidLedger>) {
        self.ledger = Some(ledger);
    }

    /// The BidResponse for `request`, whose impressions ended as
    /// `impressions`: [`build_response`] with this engine's catalog, bid ids
    /// and notice URLs, each bid recorded in the ledger (if any) as made at
    /// `now_unix_ns`. Every path that answers OpenRTB goes through it.
    pub fn bid_response(
        &mut self,
        request: &BidRequest,
        impressions: &[ImpOutcome],
        now_unix_ns: u64,
    ) -> BidResponse {
        let response = build_response(request, impressions, &mut self.bidder());
        if let Some(ledger) = &self.ledger {
            for bid in response.seatbid.iter().flat_map(|s| &s.bid) {
                let offer_id = bid
                    .adid
                    .as_deref()
                    .and_then(|a| a.parse().ok())
                    .unwrap_or(0);
                ledger.record(&bid.id, offer_id, bid.price, now_unix_ns);
            }
        }
        response
    }

    /// Takes an exchange's notice at `now_unix_ns`: matches it against the
    /// bids made (the first of its kind for a bid, a duplicate, or an
    /// unknown bid) and counts it. The one place notices enter the engine.
    pub fn on_notice(&mut self, notice: &Notice, now_unix_ns: u64) -> NoticeMatch {
        let matched = match &self.ledger {
            Some(ledger) => ledger.observe(notice.kind, &notice.bid_id, now_unix_ns),
            None => NoticeMatch::Unknown,
        };
        if let Some(n) = self
            .notice_counts
            .by_kind
            .get_mut(notice.kind.index())
            .and_then(|per| per.get_mut(match_index(&matched)))
        {
            *n += 1;
        }
        matched
    }

    /// The notices this engine took, by kind and match.
    pub fn notice_counts(&self) -> NoticeCounts {
        self.notice_counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cx_domain::store::LedgerConfig;

    fn notice(kind: NoticeKind, bid_id: &str) -> Notice {
        Notice {
            kind,
            bid_id: bid_id.into(),
            imp_id: String::new(),
            auction_id: String::new(),
            price_cpm: Some(1.0),
            currency: "USD".into(),
            offer_id: None,
            loss_code: None,
        }
    }

    #[test]
    fn bids_are_recorded_and_their_notices_matched_once() {
        let mut engine = Engine::builder().seed(7).build().expect("default engine");
        let request = cx_wire::openrtb::parse_request(
            br#"{"id": "r", "site": {"id": "s"}, "device": {"devicetype": 2, "geo": {"country": "USA"}},
                 "imp": [{"id": "1", "banner": {"w": 300, "h": 250}}]}"#,
        )
        .expect("a valid request");
        // Without a ledger: nothing recorded, nothing known.
        let response = engine
            .decide_openrtb(&request, 1)
            .expect("decides")
            .response;
        let bid = response.seatbid[0].bid[0].id.clone();
        assert_eq!(
            engine.on_notice(&notice(NoticeKind::Win, &bid), 2),
            NoticeMatch::Unknown
        );

        let ledger = Arc::new(BidLedger::new(LedgerConfig::default()).expect("ledger"));
        engine.set_bid_ledger(ledger.clone());
        let response = engine
            .decide_openrtb(&request, 10)
            .expect("decides")
            .response;
        let bid = &response.seatbid[0].bid[0];
        let win = notice(NoticeKind::Win, &bid.id);
        assert!(
            matches!(engine.on_notice(&win, 20), NoticeMatch::First(r) if r.price_cpm == bid.price)
        );
        assert!(matches!(
            engine.on_notice(&win, 21),
            NoticeMatch::Duplicate(_)
        ));
        let counts = engine.notice_counts();
        assert_eq!(counts.get(NoticeKind::Win, &NoticeMatch::Unknown), 1);
        assert_eq!(counts.by_kind[0], [1, 1, 1]);
        assert_eq!(ledger.stats().recorded, 1);
    }
}
