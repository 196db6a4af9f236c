//! A connection's score requests: an OpenRTB document planned into
//! impressions, each submitted to the engine, and the `decision` frame
//! written once every impression is decided (with each decision's id when
//! the request asked for them).

use super::{Connection, ImpLists, ImpState, Owner, Pending, Respond, Submit};
use crate::conn::Overloaded;
use cx_domain::pipeline::Ticket;
use cx_engine::json::decision_json;
use cx_engine::openrtb::{plan_impressions, trim_for_response, ImpPlan};
use cx_wire::openrtb::{self, BidRequest, BidResponse};
use cx_wire::protocol::{
    self, limits, DecisionWriter, ErrorCode, ImpOutcome, OpenRtbFlags, SkipReason,
};

/// The protocol's limits on a parsed bid request (at most
/// [`limits::IMPS_MAX`] impressions, ids of at most
/// [`limits::IMP_ID_BYTES_MAX`] bytes), shared by the binary protocol and
/// the HTTP bidder; the error is the field's path and a message naming it.
pub(crate) fn check_request_limits(request: &BidRequest) -> Result<(), (String, String)> {
    if request.imp.len() > limits::IMPS_MAX {
        let msg = format!(
            "imp: {} impressions, the limit is {}",
            request.imp.len(),
            limits::IMPS_MAX
        );
        return Err(("imp".into(), msg));
    }
    if let Some((i, imp)) = request
        .imp
        .iter()
        .enumerate()
        .find(|(_, imp)| imp.id.len() > limits::IMP_ID_BYTES_MAX)
    {
        let msg = format!(
            "imp[{i}].id: {} bytes, the limit is {}",
            imp.id.len(),
            limits::IMP_ID_BYTES_MAX
        );
        return Err((format!("imp[{i}].id"), msg));
    }
    Ok(())
}

/// How a score request wants its answer: by when, as a `bid_response`
/// (the parsed request) or a `decision`, and with decision ids or not.
#[derive(Debug, Default)]
pub(crate) struct Answer {
    /// When it must be answered by ([`Submit::deadline_ns`]).
    pub(crate) deadline_ns: Option<u64>,
    /// The parsed request, when it asked for a `bid_response`.
    pub(crate) bid_request: Option<Box<BidRequest>>,
    /// Whether it asked for decision ids (`decision_ids`).
    pub(crate) decision_ids: bool,
}

impl Connection {
    /// Parses an OpenRTB document and submits its impressions as the
    /// engine's OpenRTB rules plan them ([`cx_engine::openrtb::plan_impressions`],
    /// the same function `cx score` decides through).
    pub(super) fn on_openrtb(
        &mut self,
        request_id: u64,
        json: &[u8],
        flags: OpenRtbFlags,
        sink: &mut impl Submit,
        lists: &mut ImpLists,
    ) {
        if flags.bid_response && self.bid_responses_in_flight >= limits::BID_RESPONSES_IN_FLIGHT_MAX
        {
            let msg = format!(
                "limit {} requests asking for a bid_response",
                limits::BID_RESPONSES_IN_FLIGHT_MAX
            );
            self.error(request_id, ErrorCode::TooManyInFlight, &msg);
            return;
        }
        let mut request: BidRequest = match openrtb::parse_request(json) {
            Ok(r) => r,
            Err(e) => {
                self.error(request_id, ErrorCode::InvalidPayload, &e.to_string());
                return;
            }
        };
        if let Err((_, msg)) = check_request_limits(&request) {
            self.error(request_id, ErrorCode::InvalidPayload, &msg);
            return;
        }
        let mut imps = plan_impressions(&request);
        if flags.simulate {
            for (_, plan) in &mut imps {
                if let ImpPlan::Submit(r) = plan {
                    r.simulate = true;
                }
            }
        }
        let answer = Answer {
            deadline_ns: sink.deadline_ns(request.tmax),
            bid_request: flags.bid_response.then(|| {
                // Held until its answer is written: only what the answer reads.
                trim_for_response(&mut request);
                Box::new(request)
            }),
            decision_ids: flags.decision_ids,
        };
        self.submit_request(request_id, answer, imps.into_iter(), sink, lists);
    }

    /// Takes a slot for a score request, submits its planned impressions,
    /// and answers it at once when nothing is left to wait for. `answer`
    /// says how it is answered. Called only below the in-flight limit.
    pub(super) fn submit_request(
        &mut self,
        request_id: u64,
        answer: Answer,
        imps: impl ExactSizeIterator<Item = (String, ImpPlan)>,
        sink: &mut impl Submit,
        lists: &mut ImpLists,
    ) {
        let Answer {
            deadline_ns,
            bid_request,
            decision_ids,
        } = answer;
        let has_bid_request = bid_request.is_some();
        if deadline_ns.is_some_and(|d| d <= sink.now_ns()) {
            self.error(
                request_id,
                ErrorCode::Timeout,
                "the request's deadline (tmax less the network margin) leaves no time to decide",
            );
            return;
        }
        if deadline_ns.is_some_and(|d| sink.decided_by_ns(imps.len()) > d) {
            self.counts.deadline_shed += 1;
            self.error(
                request_id,
                ErrorCode::Overloaded,
                "the engine's backlog would decide the request after its deadline",
            );
            return;
        }
        let slot = match self.free_slots.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        let mut states = lists.take();
        // Exact: a one-impression request keeps a one-impression list (not the
        // four `reserve` would give), so the pool holds what the engine does.
        states.reserve_exact(imps.len());
        let mut waiting = 0;
        for (i, (imp_id, request)) in imps.enumerate() {
            let owner = Owner {
                slot: slot as u32,
                imp: i as u32,
                seq,
            };
            let state = match request {
                ImpPlan::Skip(reason) => ImpState::Skipped(reason),
                ImpPlan::Submit(request) => match sink.submit(request, owner) {
                    Ok(ticket) => {
                        waiting += 1;
                        ImpState::Waiting(ticket)
                    }
                    Err(Overloaded) => {
                        // Decisions already asked for find the slot free
                        // (or a later request in it) and are dropped.
                        self.free_slots.push(slot);
                        lists.keep(states);
                        self.error(
                            request_id,
                            ErrorCode::Overloaded,
                            "the engine is at capacity",
                        );
                        return;
                    }
                },
            };
            states.push((imp_id, state));
        }
        if let Some(entry) = self.slots.get_mut(slot) {
            *entry = Some(Pending {
                seq,
                request_id,
                imps: states,
                waiting,
                deadline_ns,
                bid_request,
                decision_ids,
            });
        }
        self.in_flight += 1;
        if has_bid_request {
            self.bid_responses_in_flight += 1;
        }
        if waiting == 0 {
            self.complete(slot, lists, sink);
        }
    }

    /// Writes the response of the request in `slot` and frees the slot.
    /// A request decided after its deadline is answered `timeout`.
    pub(super) fn complete(
        &mut self,
        slot: usize,
        lists: &mut ImpLists,
        respond: &mut impl Respond,
    ) {
        let Some(mut pending) = self.slots.get_mut(slot).and_then(Option::take) else {
            return;
        };
        self.free_slots.push(slot);
        self.in_flight = self.in_flight.saturating_sub(1);
        let bid_request = pending.bid_request.take();
        if bid_request.is_some() {
            self.bid_responses_in_flight = self.bid_responses_in_flight.saturating_sub(1);
        }
        if self.closing {
            lists.keep(pending.imps);
            return;
        }
        if pending.deadline_ns.is_some_and(|d| respond.now_ns() > d) {
            self.counts.deadline_expired += 1;
            self.error(
                pending.request_id,
                ErrorCode::Timeout,
                "not decided within the request's deadline",
            );
            lists.keep(pending.imps);
            return;
        }
        if let Some(request) = bid_request {
            let ids = pending.decision_ids;
            self.write_bid_response(pending.request_id, &request, &pending.imps, ids, respond);
            lists.keep(pending.imps);
            return;
        }
        let mut writer = DecisionWriter::new(&mut self.io.write, pending.request_id);
        let mut failure = None;
        for (imp_id, state) in &pending.imps {
            let outcome = match state {
                ImpState::Decided(d) => ImpOutcome::Decided(d),
                ImpState::Skipped(reason) => ImpOutcome::Skipped(*reason),
                ImpState::Waiting(_) => ImpOutcome::Skipped(SkipReason::NotDecided),
            };
            let id_ticket = match state {
                ImpState::Decided(d) if pending.decision_ids => takes_id(d),
                _ => None,
            };
            self.decision_id.clear();
            let decision_id = id_ticket
                .filter(|&t| respond.write_decision_id(t, &mut self.decision_id))
                .map(|_| self.decision_id.as_str());
            if let Err(e) = writer.push_with_id(imp_id, outcome, decision_id) {
                failure = Some(e);
                break;
            }
        }
        let result = match failure {
            Some(e) => {
                // Dropping the writer removes the partial frame.
                drop(writer);
                Err(e)
            }
            None => writer.finish().map(|_| ()),
        };
        match result {
            Ok(()) => self.counts.frames_sent += 1,
            Err(e) => {
                let msg = format!("the decision could not be encoded: {e}");
                self.error(pending.request_id, ErrorCode::Internal, &msg);
            }
        }
        lists.keep(pending.imps);
    }
}

/// A `bid_response` payload: the BidResponse and the decision behind each
/// impression, in `cx score`'s shape.
#[derive(serde::Serialize)]
struct Scored<'a> {
    response: &'a BidResponse,
    decisions: Vec<ImpScored<'a>>,
}

/// One impression's decision in a `bid_response`.
#[derive(serde::Serialize)]
struct ImpScored<'a> {
    imp_id: &'a str,
    /// Its decision id, when the request asked (`decision_ids`) and
    /// offers were chosen.
    #[serde(skip_serializing_if = "Option::is_none")]
    decision_id: Option<String>,
    decision: Option<serde_json::Value>,
    skipped: Option<&'static str>,
}

/// The ticket of a decision that gets an id in an answer: one that chose
/// offers (a decision without offers takes no feedback).
fn takes_id(decision: &cx_domain::pipeline::Decision) -> Option<Ticket> {
    (!decision.offers().is_empty()).then_some(decision.ticket)
}

impl Connection {
    /// Writes the `bid_response` of a decided request: its BidResponse
    /// (the responder's, as the HTTP bidder answers) and the decision
    /// behind each impression, as `cx score` prints them.
    fn write_bid_response(
        &mut self,
        request_id: u64,
        request: &BidRequest,
        imps: &[(String, ImpState)],
        decision_ids: bool,
        respond: &mut impl Respond,
    ) {
        let outcomes: Vec<_> = imps.iter().map(|(id, s)| s.outcome(id.clone())).collect();
        let response = respond.bid_response(request, &outcomes);
        let decision_id = |o: &cx_engine::openrtb::ImpOutcome| {
            let ticket = o
                .decision
                .as_ref()
                .filter(|_| decision_ids)
                .and_then(takes_id)?;
            let mut id = String::new();
            respond.write_decision_id(ticket, &mut id).then_some(id)
        };
        let ids: Vec<Option<String>> = outcomes.iter().map(decision_id).collect();
        let catalog = respond.catalog();
        let decisions: Vec<ImpScored<'_>> = outcomes
            .iter()
            .zip(ids)
            .map(|(o, decision_id)| ImpScored {
                imp_id: &o.imp_id,
                decision_id,
                decision: o.decision.as_ref().map(|d| decision_json(d, catalog)),
                skipped: o.skipped,
            })
            .collect();
        let scored = Scored {
            response: &response,
            decisions,
        };
        // Typed, so the response is written once, not first turned into a
        // JSON tree.
        let json = match serde_json::to_string(&scored) {
            Ok(json) => json,
            Err(e) => {
                let msg = format!("the bid_response could not be encoded: {e}");
                self.error(request_id, ErrorCode::Internal, &msg);
                return;
            }
        };
        match protocol::encode_bid_response(&mut self.io.write, request_id, &json) {
            Ok(()) => self.counts.frames_sent += 1,
            Err(e) => {
                let msg = format!("the bid_response could not be encoded: {e}");
                self.error(request_id, ErrorCode::Internal, &msg);
            }
        }
    }
}
