//! The worker's share of the feedback metrics: what its engine did with
//! feedback events since the last publication (events from the binary
//! protocol's `feedback`, the HTTP notices, held events joined later), and
//! the decision log the workers share.

use super::Worker;

impl Worker {
    /// Adds the engine's feedback counts since the last call to the
    /// metrics and sets the decision log's gauges. Run at housekeeping
    /// (every few ms): reading the log's stats visits each of its shards.
    pub(super) fn publish_feedback(&mut self) {
        let now = self.engine.feedback_counts();
        let before = std::mem::replace(&mut self.feedback_counts, now);
        if now != before {
            self.metrics.add_feedback(&before, &now);
        }
        self.metrics
            .set_decision_log(&self.engine.decision_log().stats());
    }
}
