//! The worker's side of the server-wide budgets ([`crate::budget`]):
//! publishing its connections' unsent output once per loop turn and
//! setting their pause threshold by the verdict; reserving input for the
//! large frames its connections receive, and granting waiting ones in
//! order.

use super::{live_in, ConnId, Live, Worker};
use crate::budget::ByteReservations;
use crate::conn::WRITE_PAUSE_BYTES;
use crate::metrics::Metrics;

impl Worker {
    /// Publishes this worker's buffered output; when the budget's verdict
    /// changes, sets every connection's pause threshold: any output at all
    /// while over budget, else [`WRITE_PAUSE_BYTES`].
    pub(super) fn balance_output(&mut self) {
        let shared = &self.shared;
        let verdict = shared
            .output
            .settle(shared.index, self.output_bytes, self.over_budget);
        self.metrics.set_output_buffered(verdict.total);
        if !verdict.changed {
            return;
        }
        let over = verdict.over;
        self.over_budget = over;
        if over {
            self.metrics.output_budget_spent();
            tracing::warn!(
                total_bytes = verdict.total,
                budget_bytes = shared.output.budget_bytes(),
                "output budget spent: connections with unsent output are not read until it drains"
            );
        }
        let pause = if over { 1 } else { WRITE_PAUSE_BYTES };
        let now_ns = self.now_ns();
        for live in self.slots.iter_mut().filter_map(|s| s.live.as_mut()) {
            let was_paused = live.conn.is_write_paused();
            live.conn.set_write_pause_bytes(pause);
            live.resume_frame_clock(was_paused, now_ns);
        }
    }

    /// Grants waiting large frames their reservations, in the order they
    /// asked, while the input budget covers the first in line (so a large
    /// frame is never passed by a later one); publishes the bytes reserved.
    pub(super) fn grant_reservations(&mut self) {
        while let Some(&id) = self.reservation_waiters.front() {
            let input = &self.shared.input;
            let Some(live) = live_in(&mut self.slots, id) else {
                self.reservation_waiters.pop_front(); // closed meanwhile
                continue;
            };
            let want = live.conn.large_frame_bytes();
            if want > 0 && !input.try_reserve(want) {
                break;
            }
            live.reserved_bytes = want;
            live.conn.set_large_reserved(want);
            live.awaits_reservation = false;
            self.reservation_waiters.pop_front();
            assert!(
                self.resumed.len() < self.slots.len(),
                "the event loop takes the resumed connections every turn"
            );
            self.resumed.push(id);
        }
        self.metrics.set_input_large(self.shared.input.reserved());
    }

    /// Bytes reserved for large frames, over all workers.
    pub fn input_reserved_bytes(&self) -> usize {
        self.shared.input.reserved()
    }

    /// Moves the connections granted a reservation since the last call
    /// into `out` (cleared first): the event loop reads them again (an
    /// io_uring loop reads only when asked; the epoll loop retries its
    /// ready list every turn anyway).
    pub fn take_resumed(&mut self, out: &mut Vec<ConnId>) {
        out.clear();
        std::mem::swap(out, &mut self.resumed);
    }

    /// Unsent output bytes over this worker's connections.
    pub fn output_bytes(&self) -> usize {
        self.output_bytes
    }

    /// Whether the connection decodes no new frame until its output is
    /// sent (its own limit, or the server's output budget).
    pub fn is_write_paused(&self, id: ConnId) -> bool {
        self.live(id).is_some_and(|l| l.conn.is_write_paused())
    }
}

/// Matches the connection's reservation to the large frame it now holds
/// part of: gives back what a finished frame reserved, and reserves for a
/// new one; returns whether the connection must wait in line (the budget
/// cannot cover it now, or others wait already).
pub(super) fn settle_reservation(
    live: &mut Live,
    input: &ByteReservations,
    metrics: &Metrics,
) -> bool {
    let want = live.conn.large_frame_bytes();
    if want == live.reserved_bytes || live.awaits_reservation {
        return false;
    }
    input.release(live.reserved_bytes);
    live.reserved_bytes = 0;
    live.conn.set_large_reserved(0);
    if want == 0 {
        return false;
    }
    if input.try_reserve(want) {
        live.reserved_bytes = want;
        live.conn.set_large_reserved(want);
        return false;
    }
    metrics.input_budget_spent();
    tracing::debug!(
        frame_bytes = want,
        budget_bytes = input.budget_bytes(),
        "a large frame waits for the input budget"
    );
    live.awaits_reservation = true;
    true
}
