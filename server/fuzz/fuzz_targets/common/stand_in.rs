//! The stand-in for the engine that both connection targets drive their
//! state machine with (included by `#[path]`): it hands out tickets,
//! refusing submissions by a bit mask, decides every waiting ticket on
//! demand (a no-offer for odd tickets, one offer for even ones), and
//! answers OpenRTB requests with a bid on the first impression decided
//! with an offer, else a no-bid; `put_features` items are resolved against
//! the bundled feature definitions and "written" (each checked to be of
//! its feature's type).

use cx_domain::catalog::Catalog;
use cx_domain::pipeline::{ChosenOffer, Decision, Request, Ticket, TOP_K_MAX};
use cx_engine::featurestore::{Definitions, FeaturePut, PutOutcome};
use cx_engine::openrtb::ImpOutcome;
use cx_server::conn::{Overloaded, Owner, Respond, Submit};
use cx_wire::openrtb::{Bid, BidRequest, BidResponse, NoBidReason, SeatBid};
use std::sync::Arc;

/// See the [module docs](self).
pub struct StandIn {
    submitted: u64,
    refuse_mask: u8,
    /// Tickets handed out and not yet decided, with their owners.
    waiting: Vec<(Ticket, Owner)>,
}

/// The bundled catalog, parsed once (decisions' explanations name its
/// offers).
fn catalog() -> &'static Catalog {
    static CATALOG: std::sync::OnceLock<Catalog> = std::sync::OnceLock::new();
    CATALOG.get_or_init(|| {
        Catalog::from_toml_str(cx_engine::DEFAULT_CATALOG_TOML).expect("the bundled catalog parses")
    })
}

impl StandIn {
    /// Refuses submission `k` when bit `k % 8` of `refuse_mask` is set.
    pub fn new(refuse_mask: u8) -> Self {
        Self {
            submitted: 0,
            refuse_mask,
            waiting: Vec::new(),
        }
    }

    /// A decision for every waiting ticket, in submission order or
    /// reversed, with its owner.
    pub fn decide_all(&mut self, reverse: bool) -> Vec<(Owner, Decision)> {
        let mut tickets = std::mem::take(&mut self.waiting);
        if reverse {
            tickets.reverse();
        }
        tickets
            .into_iter()
            .map(|(ticket, owner)| {
                let mut decision = Decision::default();
                decision.reset(ticket, false);
                if ticket.0 % 2 == 0 {
                    let offer = ChosenOffer {
                        offer_id: ticket.0,
                        score: 1.0,
                        p_click: 0.5,
                        bid_cpm: 2.0,
                        ..ChosenOffer::default()
                    };
                    decision.consider(offer, TOP_K_MAX);
                }
                decision.settle();
                (owner, decision)
            })
            .collect()
    }
}

impl Respond for StandIn {
    fn now_ns(&self) -> u64 {
        0
    }

    fn catalog(&self) -> &Catalog {
        catalog()
    }

    fn bid_response(&mut self, request: &BidRequest, imps: &[ImpOutcome]) -> BidResponse {
        let decided = imps
            .iter()
            .find(|i| i.decision.is_some_and(|d| !d.offers().is_empty()));
        match decided {
            Some(imp) => BidResponse {
                id: request.id.clone(),
                seatbid: vec![SeatBid {
                    bid: vec![Bid {
                        id: "b".into(),
                        impid: imp.imp_id.clone(),
                        price: 2.0,
                        ..Bid::default()
                    }],
                    seat: None,
                }],
                ..BidResponse::default()
            },
            None => BidResponse::no_bid(&request.id, NoBidReason::UnknownError),
        }
    }
}

impl Submit for StandIn {
    fn submit(&mut self, _request: Request, owner: Owner) -> Result<Ticket, Overloaded> {
        let k = self.submitted;
        self.submitted += 1;
        if self.refuse_mask & (1 << (k % 8)) != 0 {
            return Err(Overloaded);
        }
        let ticket = Ticket(k);
        self.waiting.push((ticket, owner));
        Ok(ticket)
    }

    fn feature_definitions(&self) -> Option<&Arc<Definitions>> {
        Some(definitions())
    }

    fn put_features(&mut self, batch: &mut [FeaturePut]) -> Result<PutOutcome, cx_engine::Error> {
        // Every resolved item is a value of its feature's type.
        for put in batch.iter() {
            let defs = definitions();
            assert!(put.entity != 0 && put.feature.index() < defs.stored().len());
            assert_eq!(defs.value_type(put.feature), Some(put.value.value_type()));
        }
        Ok(PutOutcome {
            written: batch.len() as u64,
            ..PutOutcome::default()
        })
    }
}

/// The bundled feature definitions, parsed once (`put_features` items are
/// resolved against them).
fn definitions() -> &'static Arc<Definitions> {
    static DEFS: std::sync::OnceLock<Arc<Definitions>> = std::sync::OnceLock::new();
    DEFS.get_or_init(|| {
        let text = cx_server::serve::features::BUNDLED_DEFINITIONS_TOML;
        Arc::new(Definitions::from_toml_str(text).expect("the bundled definitions parse"))
    })
}
