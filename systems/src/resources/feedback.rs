//! The decision log as the pipeline holds it: the log itself (shared by a
//! server's engines), and what turns a ticket into the decision's id.
//!
//! A decision's id is `{prefix}{ticket in base 36}`, with the engine's
//! prefix `{node}-{worker}-{epoch}-` (the bid id format; the bid made from
//! a decision carries its id). The decide system logs every decision that
//! chose an offer under the key of that id
//! ([`cx_domain::feedback::decision_key`]), so an event naming the id, or
//! a notice naming the bid, finds it.

use bevy_ecs::prelude::Resource;
use cx_domain::feedback::{decision_key, push_base36, DECISION_PREFIX_BYTES_MAX};
use cx_domain::pipeline::Ticket;
use cx_domain::store::DecisionLog;
use std::sync::Arc;

/// Where decisions are logged, and how their ids are made.
#[derive(Resource, Clone, Debug)]
pub struct DecisionLogging {
    log: Arc<DecisionLog>,
    prefix: String,
}

impl DecisionLogging {
    /// Logging into `log` with ids beginning `prefix`; `None` when the
    /// prefix is longer than [`DECISION_PREFIX_BYTES_MAX`].
    pub fn new(log: Arc<DecisionLog>, prefix: &str) -> Option<Self> {
        (prefix.len() <= DECISION_PREFIX_BYTES_MAX).then(|| Self {
            log,
            prefix: prefix.to_owned(),
        })
    }

    /// The log.
    pub fn log(&self) -> &Arc<DecisionLog> {
        &self.log
    }

    /// Logs into `log` from now on.
    pub fn set_log(&mut self, log: Arc<DecisionLog>) {
        self.log = log;
    }

    /// Ids begin with `prefix` from now on; refuses (keeping the old one)
    /// a prefix longer than [`DECISION_PREFIX_BYTES_MAX`].
    pub fn set_prefix(&mut self, prefix: &str) -> bool {
        if prefix.len() > DECISION_PREFIX_BYTES_MAX {
            return false;
        }
        self.prefix.clear();
        self.prefix.push_str(prefix);
        true
    }

    /// The key the decision of `ticket` is logged under.
    pub fn key(&self, ticket: Ticket) -> u64 {
        decision_key(&self.prefix, ticket.0)
    }

    /// Appends the id of the decision of `ticket` to `out`.
    pub fn write_id(&self, ticket: Ticket, out: &mut String) {
        out.push_str(&self.prefix);
        push_base36(out, ticket.0);
    }
}
