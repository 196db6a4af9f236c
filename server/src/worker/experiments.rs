//! Publishing what the engine counted per experiment arm: each
//! housekeeping adds the counts since the last publish to the server's
//! board (`crate::metrics`), which sums the workers'.

use super::Worker;
use cx_engine::systems::resources::ArmCounts;

impl Worker {
    /// Adds every arm's counts since the last publish to the metrics.
    pub(super) fn publish_experiments(&mut self) {
        let now = self.engine.experiment_counts();
        if self.arm_counts.len() < now.len() {
            self.arm_counts.resize(now.len(), ArmCounts::default());
        }
        for (id, (now, before)) in now.iter().zip(self.arm_counts.iter_mut()).enumerate() {
            if now == before {
                continue;
            }
            let delta = now.since(before);
            // Arm ids are below ARMS_MAX (4096), so they fit a u16.
            let id = u16::try_from(id).expect("arm ids fit a u16");
            self.metrics.add_arm_counts(id, &delta);
            *before = *now;
        }
    }
}
