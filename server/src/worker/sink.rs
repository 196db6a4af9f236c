//! The [`Submit`] sink the worker lends a connection while it reads its
//! bytes: submissions to the engine with their routes back, admission,
//! spare contexts, deadlines, notices, feedback events and feature writes.

use super::respond::Responder;
use super::{ConnId, Route, WorkerLimits};
use crate::conn::{FeedbackTally, Overloaded, Owner, Respond, Submit};
use crate::metrics::Metrics;
use cx_domain::feedback::{Accepted, Event, EventRefusal};
use cx_domain::notice::Notice;
use cx_domain::pipeline::{Request, Ticket};
use cx_engine::featurestore::{Definitions, FeaturePut, OnlineFeatures, PutOutcome};
use cx_engine::openrtb::{ImpOutcome, ResponseBuffers, Written};
use cx_engine::Engine;
use cx_features::RequestContext;
use cx_wire::openrtb::{BidRequest, BidResponse};
use cx_wire::protocol::PutFeaturesAck;
use std::collections::HashMap;
use std::sync::Arc;

/// The [`Submit`] sink one connection's frames go through: submits to the
/// engine and records the route back.
pub(super) struct Sink<'a> {
    pub(super) engine: &'a mut Engine,
    pub(super) routes: &'a mut HashMap<Ticket, Route>,
    pub(super) conn: ConnId,
    pub(super) now_raw: u64,
    /// The worker's clock ([`Worker::now_ns`]) when the bytes arrived.
    pub(super) now_ns: u64,
    pub(super) limits: &'a WorkerLimits,
    /// The engine's recent pace: ns of a run per impression decided.
    pub(super) decide_ns_per_imp: u64,
    pub(super) overloaded: u64,
    /// The worker's metrics (`put_features` outcomes).
    pub(super) metrics: &'a Metrics,
}

impl Respond for Sink<'_> {
    fn now_ns(&self) -> u64 {
        self.now_ns
    }

    fn catalog(&self) -> &cx_domain::catalog::Catalog {
        self.engine.catalog()
    }

    fn bid_response(&mut self, request: &BidRequest, imps: &[ImpOutcome]) -> BidResponse {
        Responder::new(self.engine, self.now_ns).bid_response(request, imps)
    }

    fn write_bid_response(
        &mut self,
        request: &BidRequest,
        imps: &[ImpOutcome],
        buffers: &mut ResponseBuffers,
        out: &mut Vec<u8>,
    ) -> Written {
        Responder::new(self.engine, self.now_ns).write_bid_response(request, imps, buffers, out)
    }

    fn write_decision_id(&self, ticket: Ticket, out: &mut String) -> bool {
        self.engine.write_decision_id(ticket, out);
        true
    }
}

impl Submit for Sink<'_> {
    fn submit(&mut self, request: Request, owner: Owner) -> Result<Ticket, Overloaded> {
        match self.engine.submit_request(request) {
            Ok(ticket) => {
                let route = Route {
                    conn: self.conn,
                    owner,
                    submitted_raw: self.now_raw,
                };
                self.routes.insert(ticket, route);
                Ok(ticket)
            }
            Err(_) => {
                self.overloaded += 1;
                Err(Overloaded)
            }
        }
    }

    fn spare_context(&mut self) -> RequestContext {
        self.engine.spare_context()
    }

    fn admit(&mut self) -> bool {
        let room = self.engine.in_flight() < self.engine.config().in_flight_max;
        if !room {
            self.overloaded += 1;
        }
        room
    }

    fn deadline_ns(&self, tmax_ms: Option<u32>) -> Option<u64> {
        let ms = tmax_ms.unwrap_or(self.limits.deadline_default_ms);
        if tmax_ms.is_none() && ms == 0 {
            return None;
        }
        let left_ms = ms.saturating_sub(self.limits.deadline_margin_ms);
        Some(self.now_ns + u64::from(left_ms) * 1_000_000)
    }

    fn decided_by_ns(&self, imps: usize) -> u64 {
        let backlog = (self.engine.in_flight() + imps) as u64;
        self.now_ns
            .saturating_add(backlog.saturating_mul(self.decide_ns_per_imp))
    }

    fn notice(&mut self, notice: &Notice) -> Result<Accepted, EventRefusal> {
        self.engine.on_notice(notice, crate::serve::unix_now_ns())
    }

    fn feedback(&mut self, events: &[Event]) -> Result<FeedbackTally, EventRefusal> {
        FeedbackTally::of_engine(self.engine, events, crate::serve::unix_now_ns())
    }

    fn feature_definitions(&self) -> Option<&Arc<Definitions>> {
        self.engine.feature_store().map(|store| store.definitions())
    }

    fn put_features(&mut self, batch: &mut [FeaturePut]) -> Result<PutOutcome, cx_engine::Error> {
        let now = crate::serve::unix_now_ns();
        for put in batch.iter_mut().filter(|p| p.time_ns == 0) {
            put.time_ns = now;
        }
        self.engine.put_features(batch, now)
    }

    fn count_put_features(&mut self, ack: &PutFeaturesAck) {
        self.metrics.add_put_features(ack);
    }
}
