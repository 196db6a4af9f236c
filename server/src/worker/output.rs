//! The worker's side of the server-wide output budget
//! ([`crate::output_budget`]): publishing its connections' unsent output
//! once per loop turn, and setting their pause threshold by the verdict.

use super::{ConnId, Worker};
use crate::conn::WRITE_PAUSE_BYTES;

impl Worker {
    /// Publishes this worker's buffered output; when the budget's verdict
    /// changes, sets every connection's pause threshold: any output at all
    /// while over budget, else [`WRITE_PAUSE_BYTES`].
    pub(super) fn balance_output(&mut self) {
        let total = self
            .shared
            .output
            .publish(self.shared.index, self.output_bytes);
        self.metrics.set_output_buffered(total);
        let over = self.shared.output.is_over(total, self.over_budget);
        if over == self.over_budget {
            return;
        }
        self.over_budget = over;
        if over {
            self.metrics.output_budget_spent();
            tracing::warn!(
                total_bytes = total,
                budget_bytes = self.shared.output.budget_bytes(),
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
