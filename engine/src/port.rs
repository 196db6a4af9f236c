//! The host's side of the pipeline's bounded queues: admission, tickets,
//! polling, and spare contexts.

use crate::error::{Error, Result};
use crossbeam::queue::ArrayQueue;
use cx_domain::pipeline::{Decision, Request, Ticket};
use cx_features::RequestContext;
use cx_systems::resources::Submission;
use cx_systems::PipelineHandles;
use std::sync::Arc;

/// The host's side of the bounded queues: admission (`submit`), tickets,
/// and `poll`. At most `capacity` requests are in flight (submitted and not
/// yet polled); the ingress, the egress and the pool of request entities are all that big,
/// so nothing behind admission can overflow.
pub struct Port {
    ingress: Arc<ArrayQueue<Submission>>,
    egress: Arc<ArrayQueue<Decision>>,
    spares: Arc<ArrayQueue<RequestContext>>,
    clock: quanta::Clock,
    capacity: usize,
    in_flight: usize,
    next_ticket: u64,
    submitted: u64,
    overloaded: u64,
}

impl Port {
    pub(crate) fn new(handles: PipelineHandles, capacity: usize) -> Self {
        Self {
            ingress: handles.ingress,
            egress: handles.egress,
            spares: handles.spares,
            clock: handles.clock,
            capacity,
            in_flight: 0,
            next_ticket: 1,
            submitted: 0,
            overloaded: 0,
        }
    }

    /// Queues `request`; [`Error::Overloaded`] (and nothing queued) when
    /// `capacity` requests are already in flight.
    pub fn submit(&mut self, request: Request) -> Result<Ticket> {
        if self.in_flight >= self.capacity {
            self.overloaded += 1;
            return Err(Error::Overloaded {
                in_flight: self.in_flight,
                capacity: self.capacity,
            });
        }
        let ticket = Ticket(self.next_ticket);
        let submission = Submission {
            ticket,
            request,
            submitted_raw: self.clock.raw(),
        };
        if let Err(back) = self.ingress.push(submission) {
            // Unreachable while admission holds; refuse rather than lose it.
            drop(back);
            self.overloaded += 1;
            return Err(Error::Overloaded {
                in_flight: self.in_flight,
                capacity: self.capacity,
            });
        }
        self.next_ticket += 1;
        self.in_flight += 1;
        self.submitted += 1;
        Ok(ticket)
    }

    /// The next decision, if any.
    pub fn poll(&mut self) -> Option<Decision> {
        let decision = self.egress.pop()?;
        self.in_flight -= 1;
        Some(decision)
    }

    /// Requests submitted and not yet polled.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// A context to fill for the next submission: one a decided request
    /// left behind, whose strings and lists kept their capacity, or a new
    /// empty one when none is spare. **A reused context still holds that
    /// request's values**: overwrite every field, as
    /// [`ContextView::write_into`](cx_wire::protocol::ContextView::write_into) does.
    pub fn spare_context(&mut self) -> RequestContext {
        self.spares.pop().unwrap_or_default()
    }

    /// Decisions ready to poll.
    pub fn ready(&self) -> usize {
        self.egress.len()
    }

    /// The in-flight limit.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

impl Port {
    pub(crate) fn counts(&self) -> (u64, u64) {
        (self.submitted, self.overloaded)
    }
}
