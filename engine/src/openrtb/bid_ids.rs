//! Bid ids: unique across a process's workers, across restarts and across
//! machines, because they are the key that win, billing and loss notices
//! (and the feedback built on them) join on.
//!
//! An id is `{node}-{worker}-{epoch}-{seq}`, each part a non-negative
//! integer in lowercase base 36 without leading zeros (`0-3-mkz1x0qo-1a`):
//!
//! - `node`: the machine (or deployment unit), assigned by the operator;
//! - `worker`: the worker thread (engine) within the process;
//! - `epoch`: when this generator started, unix milliseconds;
//! - `seq`: the ticket of the decision the bid was made from, so a bid's
//!   id is its decision's id ([`BidIds::id_for`]); `next_id` takes a
//!   counter instead, for ids not tied to a decision.
//!
//! **Why ids cannot repeat.** The encoding is one-to-one: every part is a
//! canonical number and `-` separates them, so two ids are equal only when
//! all four numbers are. Within one engine tickets only grow and are never
//! reused, and within one generator the counter only grows (a `u64`
//! would take 584 years at a billion bids a second to wrap). Two generators
//! running at the same time differ in `node` (other machines) or `worker`
//! (other threads of one process). A generator started later for the same
//! `(node, worker)` (a restart) has a later `epoch`.
//!
//! **The limit.** That last step trusts the clock: ids can repeat if the
//! wall clock goes backwards between two starts of the same `(node,
//! worker)` (an NTP step), if two generators for it start in the same
//! millisecond, or if two machines share a node id. [`BidIds::successor`]
//! covers a generator replaced within one process (it takes an epoch
//! after the old one whatever the clock says); the rest is the operator's:
//! unique node ids, and a clock that is not stepped back across restarts.

use cx_domain::feedback::{parse_base36, push_base36};
use cx_domain::pipeline::Ticket;
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of bid ids for one worker. See the [module docs](self).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BidIds {
    node: u32,
    worker: u32,
    epoch_ms: u64,
    seq: u64,
    /// `{node}-{worker}-{epoch}-`, written once.
    prefix: String,
}

/// The four numbers of a bid id, as [`BidIds::parse`] reads them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BidIdParts {
    /// The node (machine) id.
    pub node: u32,
    /// The worker within the node.
    pub worker: u32,
    /// When the generator started, unix ms.
    pub epoch_ms: u64,
    /// The id's position in the generator's sequence, from 0.
    pub seq: u64,
}

impl BidIds {
    /// A generator for worker `worker` of node `node`, started at
    /// `epoch_ms` (unix ms; see the module docs for why it must differ
    /// between starts of the same node and worker).
    pub fn new(node: u32, worker: u32, epoch_ms: u64) -> Self {
        let mut prefix = String::with_capacity(32);
        for part in [u64::from(node), u64::from(worker), epoch_ms] {
            push_base36(&mut prefix, part);
            prefix.push('-');
        }
        Self {
            node,
            worker,
            epoch_ms,
            seq: 0,
            prefix,
        }
    }

    /// A generator for `(node, worker)` whose epoch is now (the wall clock,
    /// unix ms).
    pub fn starting_now(node: u32, worker: u32) -> Self {
        Self::new(node, worker, now_unix_ms())
    }

    /// A generator that replaces this one for the same node and worker
    /// (an engine rebuilt in the same process): its epoch is now, or one
    /// millisecond after this one's if the clock says otherwise, so its ids
    /// never repeat this one's.
    pub fn successor(&self) -> Self {
        let epoch = now_unix_ms().max(self.epoch_ms.saturating_add(1));
        Self::new(self.node, self.worker, epoch)
    }

    /// The next id.
    pub fn next_id(&mut self) -> String {
        let mut id = String::with_capacity(self.prefix.len() + 13);
        self.write_next(&mut id);
        id
    }

    /// Appends the next id to `out`.
    pub fn write_next(&mut self, out: &mut String) {
        out.push_str(&self.prefix);
        push_base36(out, self.seq);
        self.seq = self.seq.wrapping_add(1);
    }

    /// The id of the bid made from the decision of `ticket`: the prefix
    /// and the ticket as the sequence number, so that the bid id is the
    /// decision id, the key its notices and feedback join on
    /// (`cx_domain::feedback::decision_key`). Not counted: a bid made
    /// with it is ([`Self::count_issued`]).
    pub fn id_for(&self, ticket: Ticket) -> String {
        let mut id = String::with_capacity(self.prefix.len() + 13);
        self.write_id_for(ticket, &mut id);
        id
    }

    /// Appends [`Self::id_for`]`(ticket)` to `out`.
    pub fn write_id_for(&self, ticket: Ticket, out: &mut String) {
        out.push_str(&self.prefix);
        push_base36(out, ticket.0);
    }

    /// Counts one more bid made ([`Self::issued`]) with an id from
    /// [`Self::id_for`].
    pub fn count_issued(&mut self) {
        self.seq = self.seq.wrapping_add(1);
    }

    /// `{node}-{worker}-{epoch}-`: every id's beginning.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The node id.
    pub fn node(&self) -> u32 {
        self.node
    }

    /// The worker index.
    pub fn worker(&self) -> u32 {
        self.worker
    }

    /// The generator's epoch, unix ms.
    pub fn epoch_ms(&self) -> u64 {
        self.epoch_ms
    }

    /// Ids issued so far.
    pub fn issued(&self) -> u64 {
        self.seq
    }

    /// The parts of an id this module wrote, or `None` for anything else
    /// (wrong number of parts, a character outside `0-9a-z`, a leading
    /// zero, a number too large for its part).
    pub fn parse(id: &str) -> Option<BidIdParts> {
        let mut parts = id.split('-');
        let node = u32::try_from(parse_base36(parts.next()?)?).ok()?;
        let worker = u32::try_from(parse_base36(parts.next()?)?).ok()?;
        let epoch_ms = parse_base36(parts.next()?)?;
        let seq = parse_base36(parts.next()?)?;
        if parts.next().is_some() {
            return None;
        }
        Some(BidIdParts {
            node,
            worker,
            epoch_ms,
            seq,
        })
    }
}

impl Default for BidIds {
    /// Node 0, worker 0, starting now.
    fn default() -> Self {
        Self::starting_now(0, 0)
    }
}

/// The wall clock, unix ms (0 before 1970).
fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_compact_and_parse_back() {
        let mut ids = BidIds::new(0, 3, 1_767_225_600_000);
        assert_eq!(ids.id_for(Ticket(0)), "0-3-mjuohs00-0");
        assert_eq!(ids.id_for(Ticket(71)), "0-3-mjuohs00-1z");
        assert_eq!(
            ids.issued(),
            0,
            "an id for a ticket is counted only as a bid"
        );
        let first = ids.next_id();
        assert_eq!(first, "0-3-mjuohs00-0");
        let parts = BidIds::parse(&first).unwrap();
        assert_eq!(
            parts,
            BidIdParts {
                node: 0,
                worker: 3,
                epoch_ms: 1_767_225_600_000,
                seq: 0
            }
        );
        for _ in 0..70 {
            ids.next_id();
        }
        assert_eq!(ids.next_id(), "0-3-mjuohs00-1z");
        assert_eq!(ids.issued(), 72);
    }

    #[test]
    fn base36_covers_the_whole_range() {
        for n in [0, 1, 35, 36, u64::from(u32::MAX), u64::MAX - 1, u64::MAX] {
            let mut s = String::new();
            push_base36(&mut s, n);
            assert_eq!(parse_base36(&s), Some(n), "{s}");
        }
    }

    #[test]
    fn anything_else_is_not_a_bid_id() {
        for bad in [
            "",
            "0-0-0",
            "0-0-0-0-0",
            "00-0-0-0",
            "0-0-0-A",
            "0-0--1",
            "0-0-0-3w5e11264sgsg",
            "zzzzzzzz-0-0-0",
            "cx-17",
            "0-0-0-1 ",
        ] {
            assert_eq!(BidIds::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_successor_never_repeats_its_predecessors_ids() {
        let future = now_unix_ms() + 3_600_000;
        let mut old = BidIds::new(1, 2, future);
        let mut new = old.successor();
        assert_eq!((new.node(), new.worker()), (1, 2));
        assert!(new.epoch_ms() > old.epoch_ms(), "the clock is behind it");
        let a: HashSet<String> = (0..100).map(|_| old.next_id()).collect();
        assert!((0..100).all(|_| !a.contains(&new.next_id())));
    }

    proptest! {
        /// Two generators that differ in node, worker or epoch never issue
        /// the same id, however many ids each issues and wherever their
        /// counters stand; every id parses back to its generator and place.
        #[test]
        fn generators_that_differ_never_collide(
            a in (0u32..4, 0u32..4, 0u64..4, 0u64..1_000_000),
            b in (0u32..4, 0u32..4, 0u64..4, 0u64..1_000_000),
            n in 1usize..200,
        ) {
            prop_assume!((a.0, a.1, a.2) != (b.0, b.1, b.2));
            let epoch = 1_767_225_600_000;
            let mut ga = BidIds::new(a.0, a.1, epoch + a.2);
            let mut gb = BidIds::new(b.0, b.1, epoch + b.2);
            ga.seq = a.3;
            gb.seq = b.3;
            let mut seen = HashSet::new();
            for k in 0..n as u64 {
                let ia = ga.next_id();
                let ib = gb.next_id();
                prop_assert_eq!(
                    BidIds::parse(&ia),
                    Some(BidIdParts { node: a.0, worker: a.1, epoch_ms: epoch + a.2, seq: a.3 + k })
                );
                prop_assert_eq!(BidIds::parse(&ib).map(|p| p.seq), Some(b.3 + k));
                prop_assert!(seen.insert(ia));
                prop_assert!(seen.insert(ib));
            }
        }

        /// Two workers of one node started in one millisecond, and the same
        /// worker across two starts, issue disjoint ids.
        #[test]
        fn workers_and_restarts_are_disjoint(worker in 0u32..64, restart_after_ms in 1u64..10_000) {
            let epoch = 1_767_225_600_000;
            let mut w0 = BidIds::new(7, worker, epoch);
            let mut w1 = BidIds::new(7, worker + 1, epoch);
            let mut again = BidIds::new(7, worker, epoch + restart_after_ms);
            let mut seen = HashSet::new();
            for _ in 0..300 {
                prop_assert!(seen.insert(w0.next_id()));
                prop_assert!(seen.insert(w1.next_id()));
                prop_assert!(seen.insert(again.next_id()));
            }
        }
    }
}
