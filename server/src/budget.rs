//! Server-wide byte budgets shared by the workers, each with hysteresis:
//! one for buffered output, one for large input.
//!
//! - **Output** (`output_budget_bytes`): bytes of answers written by
//!   connections but not yet taken by their clients. Each connection
//!   already stops being read while its own output is over
//!   [`WRITE_PAUSE_BYTES`](crate::conn::WRITE_PAUSE_BYTES); that alone
//!   lets a thousand clients that never read hold a thousand times that.
//!   While the total is at or over the budget, every connection that still
//!   has output waiting stops being read until it is sent (clients that
//!   keep up are still served, and those that do not add nothing more).
//! - **Input** (`input_budget_bytes`, [`ByteReservations`]): bytes of
//!   frames larger than what a connection's read buffer keeps anyway
//!   ([`READ_BUFFER_KEEP_BYTES`](crate::conn::READ_BUFFER_KEEP_BYTES)). A
//!   frame may be up to a mebibyte, so a thousand clients that each send
//!   most of a large frame and stall would hold a gibibyte. Before its
//!   read buffer grows past what it keeps, a connection reserves the rest
//!   of its frame (its header gives the length) from this budget, all at
//!   once; while the budget cannot cover it, the connection waits (in
//!   line, under its frame timeout), and a frame that got its reservation
//!   always completes. The reservation is given back when the frame is
//!   decoded or the connection closes.
//!
//! For output, every worker publishes its own total once per loop turn;
//! reading resumes everywhere once the sum falls under three quarters of
//! the budget.
//!
//! # Data layout
//!
//! Output: one counter per worker, each on its own cache line, written
//! only by its worker (a store per turn) and summed by every worker (a load
//! per worker per turn): no lock, and no line written by two threads.
//! Input: one counter of reserved bytes, changed by compare-and-swap only
//! when a large frame starts or ends (never per request), so the budget
//! holds exactly over all workers.

use crossbeam::utils::CachePadded;
use std::sync::atomic::{AtomicUsize, Ordering};

/// What [`SharedBudget::settle`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Bytes over all workers, as last published.
    pub total: usize,
    /// Whether the budget is spent.
    pub over: bool,
    /// Whether that changed.
    pub changed: bool,
}

/// Bytes held per worker against one server-wide budget.
#[derive(Debug)]
pub struct SharedBudget {
    budget_bytes: usize,
    per_worker: Box<[CachePadded<AtomicUsize>]>,
}

impl SharedBudget {
    /// A budget of `budget_bytes` shared by `workers` workers.
    pub fn new(budget_bytes: usize, workers: usize) -> Self {
        assert!(
            budget_bytes > 0,
            "a budget of 0 bytes would stop every read"
        );
        assert!(workers > 0, "a budget needs a worker");
        Self {
            budget_bytes,
            per_worker: (0..workers)
                .map(|_| CachePadded::new(AtomicUsize::new(0)))
                .collect(),
        }
    }

    /// The budget in bytes.
    pub fn budget_bytes(&self) -> usize {
        self.budget_bytes
    }

    /// Records that `worker` holds `bytes` of output now; returns the total
    /// over all workers as last published.
    ///
    /// # Panics
    /// When `worker` is not below the number of workers.
    pub fn publish(&self, worker: usize, bytes: usize) -> usize {
        self.per_worker[worker].store(bytes, Ordering::Relaxed);
        self.total()
    }

    /// Output bytes over all workers, as last published.
    pub fn total(&self) -> usize {
        self.per_worker
            .iter()
            .map(|w| w.load(Ordering::Relaxed))
            .fold(0, usize::saturating_add)
    }

    /// Publishes `bytes` for `worker` and judges the new total against the
    /// budget, given whether it was over (`was_over`; see
    /// [`Self::is_over`]).
    pub fn settle(&self, worker: usize, bytes: usize, was_over: bool) -> Verdict {
        let total = self.publish(worker, bytes);
        let over = self.is_over(total, was_over);
        Verdict {
            total,
            over,
            changed: over != was_over,
        }
    }

    /// Whether reading should stop for connections with output waiting,
    /// given the `total` and whether it had stopped (`was_over`): from the
    /// budget up, until the total falls under three quarters of it.
    pub fn is_over(&self, total: usize, was_over: bool) -> bool {
        if was_over {
            total >= self.budget_bytes / 4 * 3
        } else {
            total >= self.budget_bytes
        }
    }
}

/// Bytes reserved by connections for large frames, against one
/// server-wide budget (see the module docs).
#[derive(Debug)]
pub struct ByteReservations {
    budget_bytes: usize,
    reserved: AtomicUsize,
}

impl ByteReservations {
    /// A budget of `budget_bytes`.
    pub fn new(budget_bytes: usize) -> Self {
        assert!(
            budget_bytes > 0,
            "a budget of 0 bytes would refuse every large frame"
        );
        Self {
            budget_bytes,
            reserved: AtomicUsize::new(0),
        }
    }

    /// The budget in bytes.
    pub fn budget_bytes(&self) -> usize {
        self.budget_bytes
    }

    /// Takes `bytes` if the budget still covers them; `false` (and nothing
    /// taken) otherwise.
    pub fn try_reserve(&self, bytes: usize) -> bool {
        self.reserved
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| {
                r.checked_add(bytes).filter(|&t| t <= self.budget_bytes)
            })
            .is_ok()
    }

    /// Gives back `bytes` that [`Self::try_reserve`] took.
    ///
    /// # Panics
    /// When more is given back than is reserved: a release without its
    /// reservation.
    pub fn release(&self, bytes: usize) {
        let before = self.reserved.fetch_sub(bytes, Ordering::AcqRel);
        assert!(
            before >= bytes,
            "released {bytes} of {before} reserved bytes"
        );
    }

    /// Bytes reserved now, over all workers.
    pub fn reserved(&self) -> usize {
        self.reserved.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_never_exceed_the_budget_and_come_back() {
        let r = ByteReservations::new(1000);
        assert!(r.try_reserve(600));
        assert!(!r.try_reserve(401), "all or nothing");
        assert_eq!(r.reserved(), 600);
        assert!(r.try_reserve(400));
        r.release(600);
        assert!(r.try_reserve(600));
        assert_eq!(r.reserved(), 1000);
        assert!(!r.try_reserve(usize::MAX), "no overflow");
    }

    #[test]
    #[should_panic(expected = "released")]
    fn a_release_without_a_reservation_is_a_bug() {
        ByteReservations::new(10).release(1);
    }

    #[test]
    fn workers_add_up_and_the_budget_has_hysteresis() {
        let budget = SharedBudget::new(1000, 2);
        assert_eq!(budget.publish(0, 600), 600);
        assert_eq!(budget.publish(1, 300), 900);
        assert!(!budget.is_over(900, false));
        assert_eq!(budget.publish(1, 400), 1000);
        assert!(budget.is_over(1000, false), "at the budget");
        assert!(budget.is_over(800, true), "still over until under 3/4");
        assert!(!budget.is_over(749, true));
        assert_eq!(
            budget.publish(0, 0),
            400,
            "a worker's new figure replaces its old one"
        );
    }
}
