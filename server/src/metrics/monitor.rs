//! Model monitoring's metrics and the document `GET /admin/monitor`
//! answers (`docs/MONITORING.md`):
//!
//! - `cx_monitor_psi{feature}`: the PSI of each monitored feature (and of
//!   `prediction`) over the serving ring against the model's reference,
//!   the largest over the workers;
//! - `cx_monitor_alarm{kind,feature}`: 1 while an alarm is up in any
//!   worker (`kind` `psi`, `prediction_psi`, `calibration`, `ctr_drop`;
//!   `feature` empty for the last two), 0 once it cleared;
//! - `cx_monitor_observed_ctr`, `cx_monitor_predicted_ctr`,
//!   `cx_monitor_base_ctr`, `cx_monitor_impressions`: calibration over the
//!   workers' feedback rings (summed), and the training base rate;
//! - `cx_monitor_reference`: 1 when the model serving records a reference.
//!
//! Each worker has its own engine and so its own monitor (it sees its
//! share of the traffic); a worker publishes its report here about once a
//! second, and the board keeps the last report of each worker (bounded by
//! [`WORKERS_MAX`]). The per-feature series are made when a report first
//! names the feature.

use cx_engine::systems::monitor::MonitorReport;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

type Labels = Vec<(&'static str, String)>;
type Real = Gauge<f64, AtomicU64>;

/// Most workers whose reports the board keeps.
pub const WORKERS_MAX: usize = 256;

/// The monitor's gauges and each worker's last report.
#[derive(Debug)]
pub(super) struct MonitorMetrics {
    psi: Family<Labels, Real>,
    alarm: Family<Labels, Gauge>,
    observed_ctr: Real,
    predicted_ctr: Real,
    base_ctr: Real,
    impressions: Gauge,
    reference: Gauge,
    board: Mutex<Vec<Option<MonitorReport>>>,
}

impl MonitorMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let psi = Family::<Labels, Real>::default();
        registry.register(
            "cx_monitor_psi",
            "PSI of each monitored feature (and of prediction) against the model's training reference, the largest over the workers",
            psi.clone(),
        );
        let alarm = Family::<Labels, Gauge>::default();
        registry.register(
            "cx_monitor_alarm",
            "1 while a model monitoring alarm is up in any worker (kind psi, prediction_psi, calibration, ctr_drop)",
            alarm.clone(),
        );
        let real = |registry: &mut Registry, name: &str, help: &str| {
            let g = Real::default();
            registry.register(name, help, g.clone());
            g
        };
        let observed_ctr = real(
            registry,
            "cx_monitor_observed_ctr",
            "Clicks per impression in the workers' feedback rings",
        );
        let predicted_ctr = real(
            registry,
            "cx_monitor_predicted_ctr",
            "Mean predicted click probability of the same impressions",
        );
        let base_ctr = real(
            registry,
            "cx_monitor_base_ctr",
            "The training base rate recorded in the model's reference",
        );
        let impressions = Gauge::default();
        registry.register(
            "cx_monitor_impressions",
            "Impressions in the workers' feedback rings",
            impressions.clone(),
        );
        let reference = Gauge::default();
        registry.register(
            "cx_monitor_reference",
            "1 when the model serving records a monitoring reference (cx.reference)",
            reference.clone(),
        );
        Self {
            psi,
            alarm,
            observed_ctr,
            predicted_ctr,
            base_ctr,
            impressions,
            reference,
            board: Mutex::new(Vec::new()),
        }
    }

    /// Keeps `report` as worker `worker`'s and sets the gauges from every
    /// worker's last report.
    pub(super) fn publish(&self, worker: usize, report: MonitorReport) {
        if worker >= WORKERS_MAX {
            return;
        }
        let mut board = self.board.lock().unwrap_or_else(|e| e.into_inner());
        if board.len() <= worker {
            board.resize(worker + 1, None);
        }
        board[worker] = Some(report);
        let reports: Vec<&MonitorReport> = board.iter().flatten().collect();
        let mut psi: Vec<(&str, f64)> = Vec::new();
        for r in &reports {
            for f in &r.features {
                match psi.iter_mut().find(|(n, _)| *n == f.name) {
                    Some((_, v)) => *v = v.max(f.psi),
                    None => psi.push((&f.name, f.psi)),
                }
            }
        }
        for (name, value) in &psi {
            self.psi
                .get_or_create(&vec![("feature", name.to_string())])
                .set(*value);
            let kind = if *name == "prediction" {
                "prediction_psi"
            } else {
                "psi"
            };
            let up = reports.iter().any(|r| {
                r.alarms
                    .iter()
                    .any(|a| a.kind == kind && a.feature == *name)
            });
            self.alarm
                .get_or_create(&vec![("kind", kind.into()), ("feature", name.to_string())])
                .set(i64::from(up));
        }
        for kind in ["calibration", "ctr_drop"] {
            let up = reports
                .iter()
                .any(|r| r.alarms.iter().any(|a| a.kind == kind));
            self.alarm
                .get_or_create(&vec![("kind", kind.into()), ("feature", String::new())])
                .set(i64::from(up));
        }
        let (mut impressions, mut clicks, mut predicted) = (0u64, 0u64, 0.0);
        for r in &reports {
            impressions += r.outcomes.impressions;
            clicks += r.outcomes.clicks;
            predicted += r.outcomes.predicted;
        }
        let n = impressions.max(1) as f64;
        self.observed_ctr.set(clicks as f64 / n);
        self.predicted_ctr.set(predicted / n);
        self.impressions.set(impressions as i64);
        self.base_ctr
            .set(reports.iter().find_map(|r| r.base_ctr).unwrap_or(0.0));
        self.reference
            .set(i64::from(reports.iter().any(|r| r.reference)));
    }

    /// `{"workers": [report, ...]}`: each worker's last report, in worker
    /// order.
    pub(super) fn json(&self) -> String {
        let board = self.board.lock().unwrap_or_else(|e| e.into_inner());
        let workers: Vec<&MonitorReport> = board.iter().flatten().collect();
        serde_json::json!({ "workers": workers }).to_string()
    }
}
