//! One experiment's report: every variant's counts and CTR interval, each
//! treatment against the control (variant 0) by the z-test, the mSPRT and
//! the Bayesian chance to beat control, and the SRM check on assignments.
//! What `cx experiment report` prints and the server's `/experiments`
//! serves.
//!
//! A test that the counts cannot support yet (no impressions in an arm) is
//! `None`, never an error: a report is read while data arrives.

use super::bayes::chance_to_beat_control;
use super::fixed::{z_test, ZTest};
use super::sequential::{Msprt, SequentialConfig, SequentialMonitor};
use super::srm::{srm, Srm};
use super::{Interval, VariantCounts};
use crate::Error;
use serde::Serialize;

/// The confidence of the CTR intervals.
pub const CONFIDENCE: f64 = 0.95;

/// One variant's input: its key, the users assigned to it, and its counts.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantInput {
    /// The variation's key.
    pub key: String,
    /// Users (requests) assigned to it: the SRM check's counts.
    pub assigned: u64,
    /// Its impressions, clicks, conversions and revenue.
    pub counts: VariantCounts,
}

/// One variant in a report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VariantReport {
    /// The variation's index (0: the control).
    pub variation: usize,
    /// Its key.
    pub key: String,
    /// Users assigned.
    pub assigned: u64,
    /// Its counts.
    #[serde(flatten)]
    pub counts: VariantCounts,
    /// Clicks per impression.
    pub ctr: Option<f64>,
    /// Its Wilson interval at [`CONFIDENCE`].
    pub ctr_interval: Option<Interval>,
    /// Against the control (`None` for the control itself).
    pub vs_control: Option<Comparison>,
}

/// A treatment against the control.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// The fixed-horizon z-test (valid only read once, at a size fixed in
    /// advance).
    pub z_test: Option<ZTest>,
    /// The mSPRT at this look.
    pub sequential: Option<Msprt>,
    /// The always-valid p-value: the smallest `1/Λ` over every look the
    /// monitor saw (this one included).
    pub sequential_p_value: f64,
    /// Whether any look rejected at the monitor's alpha.
    pub sequential_rejected: bool,
    /// Looks the monitor has read.
    pub looks: u64,
    /// The chance that the treatment's CTR beats the control's.
    pub chance_to_beat_control: Option<f64>,
}

/// One experiment's report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExperimentReport {
    /// The experiment's key.
    pub key: String,
    /// Its variants, the control first.
    pub variants: Vec<VariantReport>,
    /// The SRM check of the assignments against the configured weights
    /// (`None` before any assignment).
    pub srm: Option<Srm>,
}

/// Monitors of one experiment's treatments, kept between looks.
#[derive(Debug, Clone)]
pub struct Looks {
    config: SequentialConfig,
    monitors: Vec<SequentialMonitor>,
}

impl Looks {
    /// Monitors for `treatments` treatments under `config`.
    pub fn new(treatments: usize, config: SequentialConfig) -> Result<Self, Error> {
        let monitor = SequentialMonitor::new(config)?;
        Ok(Self {
            config,
            monitors: vec![monitor; treatments],
        })
    }

    /// Adds fresh monitors up to `treatments` (variations first seen late).
    pub fn grow_to(&mut self, treatments: usize) {
        let fresh = SequentialMonitor::new(self.config).expect("checked in Looks::new");
        self.monitors
            .resize(treatments.max(self.monitors.len()), fresh);
    }
}

/// Reports experiment `key` with `variants` (the control first) against
/// the configured `weights`, reading each treatment's mSPRT once more
/// (`looks`, one monitor per treatment).
pub fn report(
    key: &str,
    variants: &[VariantInput],
    weights: &[f64],
    looks: &mut Looks,
) -> ExperimentReport {
    let control = variants.first().map(|v| v.counts);
    let reports = variants
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let vs_control = match (i, control) {
                (0, _) | (_, None) => None,
                (_, Some(control)) => looks
                    .monitors
                    .get_mut(i - 1)
                    .map(|m| compare(&control, &v.counts, m)),
            };
            VariantReport {
                variation: i,
                key: v.key.clone(),
                assigned: v.assigned,
                counts: v.counts,
                ctr: v.counts.ctr(),
                ctr_interval: v.counts.ctr_interval(CONFIDENCE).ok(),
                vs_control,
            }
        })
        .collect();
    let assigned: Vec<u64> = variants.iter().map(|v| v.assigned).collect();
    ExperimentReport {
        key: key.to_owned(),
        variants: reports,
        srm: srm(&assigned, weights).ok(),
    }
}

fn compare(
    control: &VariantCounts,
    treatment: &VariantCounts,
    monitor: &mut SequentialMonitor,
) -> Comparison {
    let sequential = monitor.observe(control, treatment).ok();
    Comparison {
        z_test: z_test(control, treatment).ok(),
        sequential,
        sequential_p_value: monitor.p_value(),
        sequential_rejected: monitor.rejected(),
        looks: monitor.looks(),
        chance_to_beat_control: chance_to_beat_control(control, treatment).ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(key: &str, assigned: u64, impressions: u64, clicks: u64) -> VariantInput {
        VariantInput {
            key: key.into(),
            assigned,
            counts: VariantCounts::clicks(impressions, clicks),
        }
    }

    #[test]
    fn a_clear_lift_is_reported_by_every_test() {
        let mut looks = Looks::new(1, SequentialConfig::default()).unwrap();
        let variants = [
            input("a", 20_000, 20_000, 1_000),
            input("b", 20_000, 20_000, 1_300),
        ];
        let r = report("e", &variants, &[0.5, 0.5], &mut looks);
        assert!(r.variants[0].vs_control.is_none());
        let c = r.variants[1].vs_control.as_ref().unwrap();
        assert!(c.z_test.unwrap().p_value < 1e-6);
        assert!(c.sequential_rejected && c.sequential_p_value < 0.05);
        assert!(c.chance_to_beat_control.unwrap() > 0.999);
        assert!(!r.srm.unwrap().flagged);
        assert_eq!(c.looks, 1);
    }

    #[test]
    fn the_always_valid_p_value_keeps_its_smallest_look() {
        let mut looks = Looks::new(1, SequentialConfig::default()).unwrap();
        let strong = [input("a", 9_000, 9_000, 450), input("b", 9_000, 9_000, 600)];
        let first = report("e", &strong, &[0.5, 0.5], &mut looks);
        let flat = [
            input("a", 20_000, 20_000, 1_000),
            input("b", 20_000, 20_000, 1_000),
        ];
        let second = report("e", &flat, &[0.5, 0.5], &mut looks);
        let (p1, p2) = (
            first.variants[1]
                .vs_control
                .as_ref()
                .unwrap()
                .sequential_p_value,
            second.variants[1]
                .vs_control
                .as_ref()
                .unwrap()
                .sequential_p_value,
        );
        assert_eq!(p1, p2);
        assert!(
            second.variants[1]
                .vs_control
                .as_ref()
                .unwrap()
                .sequential
                .unwrap()
                .p_value
                > p1
        );
    }

    #[test]
    fn a_variation_seen_late_gets_a_monitor_from_then_on() {
        let mut looks = Looks::new(0, SequentialConfig::default()).unwrap();
        let one = [input("a", 100, 100, 5)];
        assert!(report("e", &one, &[1.0], &mut looks).variants[0]
            .vs_control
            .is_none());
        looks.grow_to(1);
        let two = [input("a", 200, 200, 10), input("b", 100, 100, 9)];
        let r = report("e", &two, &[0.5, 0.5], &mut looks);
        assert_eq!(r.variants[1].vs_control.as_ref().unwrap().looks, 1);
    }

    #[test]
    fn skewed_assignment_is_flagged_and_empty_arms_give_no_tests() {
        let mut looks = Looks::new(1, SequentialConfig::default()).unwrap();
        let skewed = [input("a", 5_400, 0, 0), input("b", 4_600, 0, 0)];
        let r = report("e", &skewed, &[0.5, 0.5], &mut looks);
        assert!(r.srm.unwrap().flagged);
        let c = r.variants[1].vs_control.as_ref().unwrap();
        assert!(c.z_test.is_none() && c.sequential.is_none());
        assert_eq!((c.looks, c.sequential_p_value), (0, 1.0));
        assert!(r.variants[0].ctr.is_none() && r.variants[0].ctr_interval.is_none());
        let none = report(
            "e",
            &[input("a", 0, 0, 0), input("b", 0, 0, 0)],
            &[0.5, 0.5],
            &mut looks,
        );
        assert!(none.srm.is_none());
    }
}
