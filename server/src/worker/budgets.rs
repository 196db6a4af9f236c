//! The worker's side of the server-wide budgets ([`crate::budget`]):
//! publishing its connections' unsent output and large input once per loop
//! turn, and setting their limits by the verdicts.

use super::{ConnId, Worker};
use crate::conn::WRITE_PAUSE_BYTES;

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

    /// Publishes this worker's large input; when the budget's verdict
    /// changes, allows or stops every connection's read buffer growing
    /// past what it keeps.
    pub(super) fn balance_input(&mut self) {
        let shared = &self.shared;
        let verdict =
            shared
                .input
                .settle(shared.index, self.large_input_bytes, self.over_input_budget);
        self.metrics.set_input_large(verdict.total);
        if !verdict.changed {
            return;
        }
        let over = verdict.over;
        self.over_input_budget = over;
        if over {
            self.metrics.input_budget_spent();
            tracing::warn!(
                total_bytes = verdict.total,
                budget_bytes = shared.input.budget_bytes(),
                "input budget spent: large frames wait until others complete or time out"
            );
        }
        for live in self.slots.iter_mut().filter_map(|s| s.live.as_mut()) {
            live.conn.set_large_input_allowed(!over);
        }
        self.reads_resumed |= !over;
    }

    /// Whether the input budget opened again since the last call: the
    /// event loop then re-arms the reads of connections that want input
    /// again (an io_uring loop reads only when asked; the epoll loop
    /// retries its ready list every turn anyway).
    pub fn take_reads_resumed(&mut self) -> bool {
        std::mem::take(&mut self.reads_resumed)
    }

    /// Received bytes beyond what read buffers keep, over this worker's
    /// connections.
    pub fn large_input_bytes(&self) -> usize {
        self.large_input_bytes
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
