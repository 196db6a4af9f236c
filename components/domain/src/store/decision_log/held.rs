//! The two small fixed-size tables beside each shard of the decision log:
//! the event ids already taken (for de-duplication) and the events held
//! for a decision not logged yet.

use crate::feedback::{Event, EventRefusal};
use crate::store::WAYS;

/// Recent event ids, set-associative: a full set forgets its oldest id, so
/// a duplicate is caught while its id is among the most recent of its set.
#[derive(Debug)]
pub(super) struct EventKeys {
    keys: Box<[u64]>,
    times: Box<[u64]>,
    set_mask: usize,
}

impl EventKeys {
    pub(super) fn new(sets: usize) -> Self {
        Self {
            keys: vec![0; sets * WAYS].into(),
            times: vec![0; sets * WAYS].into(),
            set_mask: sets - 1,
        }
    }

    fn set_of(&self, key: u64) -> std::ops::Range<usize> {
        let set = (key as usize >> 6) & self.set_mask;
        set * WAYS..(set + 1) * WAYS
    }

    pub(super) fn contains(&self, key: u64) -> bool {
        let set = self.set_of(key);
        self.keys.get(set).is_some_and(|keys| keys.contains(&key))
    }

    pub(super) fn insert(&mut self, key: u64, now_ns: u64) {
        let set = self.set_of(key);
        let Some(keys) = self.keys.get(set.clone()) else {
            return;
        };
        let way = keys.iter().position(|&k| k == 0).unwrap_or_else(|| {
            let times = &self.times[set.clone()];
            (0..times.len()).min_by_key(|&w| times[w]).unwrap_or(0)
        });
        self.keys[set.start + way] = key;
        self.times[set.start + way] = now_ns;
    }
}

/// Events waiting for their decision, with when each arrived; at most the
/// capacity given at creation (the vector never grows past it).
#[derive(Debug)]
pub(super) struct Held {
    events: Vec<(Event, u64)>,
    capacity: usize,
}

impl Held {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            events: Vec::with_capacity(capacity),
            capacity,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.events.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Holds `event`, arrived at `now_ns`; refuses when full.
    pub(super) fn push(&mut self, event: Event, now_ns: u64) -> Result<(), EventRefusal> {
        if self.capacity == 0 {
            return Err(EventRefusal::UnknownDecision);
        }
        if self.events.len() >= self.capacity {
            return Err(EventRefusal::PendingFull);
        }
        self.events.push((event, now_ns));
        Ok(())
    }

    /// Keeps the events for which `keep(event, arrived_ns)` is true, in
    /// arrival order.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&Event, u64) -> bool) {
        self.events.retain(|(event, at)| keep(event, *at));
    }
}
