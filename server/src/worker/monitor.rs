//! The worker's share of model monitoring: it logs each alarm transition of
//! its engine's monitor as it is taken (a `warn` when an alarm rises, an
//! `info` when it clears), and publishes the monitor's report to the
//! metrics (`cx_monitor_*`, `GET /admin/monitor`) every
//! [`MONITOR_INTERVAL_NS`]. Run at housekeeping, off the request path.

use super::Worker;
use cx_engine::systems::monitor::AlarmKind;

/// How often a worker publishes its monitor's report, ns.
pub const MONITOR_INTERVAL_NS: u64 = 1_000_000_000;

impl Worker {
    /// Logs the monitor's alarm transitions; publishes its report when due.
    pub(super) fn publish_monitor(&mut self) {
        let worker = self.shared.index;
        self.engine.monitor_mut().take_transitions(|m, t| {
            let subject = m.subject(&t);
            let threshold = m.config().psi_threshold();
            match (t.raised, t.kind) {
                (true, AlarmKind::Psi | AlarmKind::PredictionPsi) => tracing::warn!(
                    worker,
                    kind = t.kind.label(),
                    feature = subject,
                    psi = t.value,
                    threshold,
                    "model monitor: the serving distribution drifted from the model's training reference"
                ),
                (true, AlarmKind::Calibration) => tracing::warn!(
                    worker,
                    observed_ctr = t.value,
                    "model monitor: observed CTR is off the predicted by more than monitor.calibration_tolerance"
                ),
                (true, AlarmKind::CtrDrop) => tracing::warn!(
                    worker,
                    observed_ctr = t.value,
                    "model monitor: observed CTR dropped below the training base rate by more than monitor.ctr_drop"
                ),
                (false, _) => tracing::info!(
                    worker,
                    kind = t.kind.label(),
                    feature = subject,
                    value = t.value,
                    "model monitor: alarm cleared"
                ),
            }
        });
        let now_ns = crate::serve::unix_now_ns();
        if now_ns < self.monitor_due_ns {
            return;
        }
        self.monitor_due_ns = now_ns.saturating_add(MONITOR_INTERVAL_NS);
        self.metrics
            .publish_monitor(worker, self.engine.monitor_report());
    }
}
