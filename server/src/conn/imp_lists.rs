//! The impression lists of finished requests, pooled per worker
//! ([`ImpLists`]).
//!
//! # Data layout
//!
//! A stack of emptied `Vec`s, each keeping its capacity; the pool is
//! bounded by the sum of those capacities in impressions, not by the
//! number of lists, since a list's memory is its capacity.

use super::ImpState;

/// Emptied impression lists of finished requests, kept for the next
/// requests so that a request in steady state allocates none. One pool
/// serves all of a worker's connections: impressions in flight over a
/// worker are bounded by its engine (`in_flight_max`), so the memory kept
/// is bounded by what the engine can hold, not by the number of
/// connections. (A pool per connection kept each connection's own peak,
/// about 700 bytes per impression: a thousand clients pipelining wide
/// OpenRTB requests held hundreds of MiB that way.)
#[derive(Debug)]
pub struct ImpLists {
    lists: Vec<Vec<(String, ImpState)>>,
    /// Sum of the kept lists' capacities, in impressions.
    kept_imps: usize,
    kept_imps_max: usize,
}

impl ImpLists {
    /// A pool keeping lists of at most `kept_imps_max` impressions'
    /// capacity in all; a finished list beyond that is freed.
    pub fn new(kept_imps_max: usize) -> Self {
        Self {
            lists: Vec::new(),
            kept_imps: 0,
            kept_imps_max,
        }
    }

    /// Impressions' capacity kept now.
    pub fn kept_imps(&self) -> usize {
        self.kept_imps
    }

    /// An empty list: a kept one, else a new one.
    pub(crate) fn take(&mut self) -> Vec<(String, ImpState)> {
        let list = self.lists.pop().unwrap_or_default();
        self.kept_imps -= list.capacity();
        list
    }

    /// Empties `list` and keeps it, if there is room under the limit.
    pub(crate) fn keep(&mut self, mut list: Vec<(String, ImpState)>) {
        list.clear();
        let capacity = list.capacity();
        if capacity > 0 && self.kept_imps + capacity <= self.kept_imps_max {
            self.kept_imps += capacity;
            self.lists.push(list);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cx_wire::protocol::SkipReason;

    fn list(capacity: usize) -> Vec<(String, ImpState)> {
        let mut list = Vec::with_capacity(capacity);
        list.push((
            String::from("imp"),
            ImpState::Skipped(SkipReason::NotDecided),
        ));
        list
    }

    #[test]
    fn kept_lists_are_bounded_by_their_capacity_in_impressions() {
        let mut lists = ImpLists::new(100);
        lists.keep(list(64));
        assert_eq!(lists.kept_imps(), 64);
        lists.keep(list(64));
        assert_eq!(lists.kept_imps(), 64, "a second would pass the limit");
        lists.keep(list(36));
        assert_eq!(lists.kept_imps(), 100);
        lists.keep(Vec::new());
        assert_eq!(lists.kept_imps(), 100, "an empty list is not kept");

        let taken = lists.take();
        assert!(taken.is_empty(), "kept lists are emptied");
        assert_eq!(taken.capacity(), 36, "the last kept comes first");
        assert_eq!(lists.kept_imps(), 64);
        assert_eq!(lists.take().capacity(), 64);
        assert_eq!(lists.kept_imps(), 0);
        assert_eq!(lists.take().capacity(), 0, "none kept: a new list");
    }
}
