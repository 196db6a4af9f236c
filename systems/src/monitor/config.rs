//! `[monitor]`: the window sizes and alarm thresholds of model monitoring
//! (`docs/CONFIG.md`, `docs/MONITORING.md`).

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// Which PSI level raises an alarm.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PsiLevel {
    /// PSI at or above `psi_moderate` (0.1 by default).
    Moderate,
    /// PSI at or above `psi_significant` (0.2 by default); the default,
    /// since a moderate shift is routine (a campaign, a new publisher) and
    /// an alarm that fires on it is soon ignored.
    #[default]
    Significant,
}

/// The `[monitor]` table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MonitorConfig {
    /// Monitor at all. Default true.
    pub enabled: bool,
    /// Requests per serving window, `1..=1_000_000`. Default 1000.
    pub window_requests: u32,
    /// Closed windows kept in the ring (PSI compares their sum),
    /// `1..=64`. Default 10.
    pub windows: u32,
    /// Which PSI level raises an alarm. Default `significant`.
    pub psi_alarm: PsiLevel,
    /// The moderate PSI threshold. Default 0.1.
    pub psi_moderate: f64,
    /// The significant PSI threshold. Default 0.2.
    pub psi_significant: f64,
    /// Feature blocks whose PSI is reported but raises no alarm. Default
    /// the time blocks (`hour_of_day`, `hour_of_week`): a few thousand
    /// requests cover an hour or two, never the training span's week.
    pub psi_ignore: Vec<String>,
    /// Impressions per feedback window, `1..=1_000_000`. Default 1000;
    /// the ring holds `windows` of them.
    pub window_impressions: u32,
    /// Impressions the ring must hold before calibration or CTR is judged.
    /// Default 2000.
    pub calibration_min_impressions: u64,
    /// Relative calibration tolerance: an alarm when observed and predicted
    /// CTR differ by more than this share of the predicted (and by more
    /// than three standard errors), `(0, 10]`. Default 0.25.
    pub calibration_tolerance: f64,
    /// CTR drop alarm: observed CTR below `(1 - ctr_drop)` times the
    /// training base rate (and three standard errors below it), `(0, 1]`.
    /// Default 0.5.
    pub ctr_drop: f64,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            window_requests: 1000,
            windows: 10,
            psi_alarm: PsiLevel::Significant,
            psi_moderate: 0.1,
            psi_significant: 0.2,
            psi_ignore: vec!["hour_of_day".into(), "hour_of_week".into()],
            window_impressions: 1000,
            calibration_min_impressions: 2000,
            calibration_tolerance: 0.25,
            ctr_drop: 0.5,
        }
    }
}

fn refuse(field: &'static str, reason: String) -> Error {
    Error::Config { field, reason }
}

impl MonitorConfig {
    /// Checks every key against its range; the error names it.
    pub fn validate(&self) -> Result<()> {
        if !(1..=1_000_000).contains(&self.window_requests) {
            return Err(refuse(
                "monitor.window_requests",
                format!("{} is not in 1..=1000000", self.window_requests),
            ));
        }
        if !(1..=64).contains(&self.windows) {
            return Err(refuse(
                "monitor.windows",
                format!("{} is not in 1..=64", self.windows),
            ));
        }
        if !(1..=1_000_000).contains(&self.window_impressions) {
            return Err(refuse(
                "monitor.window_impressions",
                format!("{} is not in 1..=1000000", self.window_impressions),
            ));
        }
        let (m, s) = (self.psi_moderate, self.psi_significant);
        if !(m.is_finite() && s.is_finite() && m > 0.0 && m <= s && s <= 10.0) {
            return Err(refuse(
                "monitor.psi_moderate",
                format!(
                    "{m} and psi_significant {s} must satisfy 0 < moderate <= significant <= 10"
                ),
            ));
        }
        if self.psi_ignore.len() > 64 || self.psi_ignore.iter().any(|b| b.len() > 64) {
            return Err(refuse(
                "monitor.psi_ignore",
                "at most 64 block names of at most 64 bytes".into(),
            ));
        }
        let t = self.calibration_tolerance;
        if !(t.is_finite() && t > 0.0 && t <= 10.0) {
            return Err(refuse(
                "monitor.calibration_tolerance",
                format!("{t} is not in (0, 10]"),
            ));
        }
        let d = self.ctr_drop;
        if !(d.is_finite() && d > 0.0 && d <= 1.0) {
            return Err(refuse("monitor.ctr_drop", format!("{d} is not in (0, 1]")));
        }
        if self.calibration_min_impressions > 1 << 40 {
            return Err(refuse(
                "monitor.calibration_min_impressions",
                format!("{} is above 2^40", self.calibration_min_impressions),
            ));
        }
        Ok(())
    }

    /// The PSI at which an alarm rises.
    pub fn psi_threshold(&self) -> f64 {
        match self.psi_alarm {
            PsiLevel::Moderate => self.psi_moderate,
            PsiLevel::Significant => self.psi_significant,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_keys_are_named() {
        MonitorConfig::default().validate().unwrap();
        let bad = MonitorConfig {
            windows: 0,
            ..MonitorConfig::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("monitor.windows"));
        let bad = MonitorConfig {
            ctr_drop: f64::NAN,
            ..MonitorConfig::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("monitor.ctr_drop"));
        assert_eq!(MonitorConfig::default().psi_threshold(), 0.2);
    }
}
