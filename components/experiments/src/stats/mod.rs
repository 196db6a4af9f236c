//! Experiment statistics per variant: the counts, CTR with a Wilson
//! interval, and the comparisons of a variant with the control.
//!
//! - [`fixed`]: the two-proportion z-test, valid when read once at a
//!   sample size fixed in advance.
//! - [`sequential`]: the mixture sequential probability ratio test (mSPRT,
//!   normal mixture), valid however often it is read.
//! - [`bayes`]: the chance to beat control under Beta posteriors.
//! - [`srm`]: the sample-ratio-mismatch check on assignment counts.
//! - [`report`]: one experiment's report, every test read together.
//! - [`dist`]: the normal, gamma and chi-square functions they rest on.
//!
//! `docs/EXPERIMENTS.md` gives every formula and default.

pub mod bayes;
pub mod dist;
pub mod fixed;
pub mod report;
pub mod sequential;
pub mod srm;

use crate::Error;
use serde::Serialize;

/// What one variant has collected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct VariantCounts {
    /// Decisions served (users exposed).
    pub impressions: u64,
    /// Clicks among them.
    pub clicks: u64,
    /// Conversions attributed to them.
    pub conversions: u64,
    /// Revenue attributed to them.
    pub revenue: f64,
}

/// A two-sided interval around an estimate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    /// Lower bound.
    pub low: f64,
    /// Upper bound.
    pub high: f64,
}

impl VariantCounts {
    /// Counts of `impressions` and `clicks` (no conversions or revenue).
    pub const fn clicks(impressions: u64, clicks: u64) -> Self {
        Self {
            impressions,
            clicks,
            conversions: 0,
            revenue: 0.0,
        }
    }

    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &Self) {
        self.impressions += other.impressions;
        self.clicks += other.clicks;
        self.conversions += other.conversions;
        self.revenue += other.revenue;
    }

    /// Checks that clicks do not exceed impressions and that there is at
    /// least one impression; `what` names the variant in the error.
    pub fn check(&self, what: &'static str) -> Result<(), Error> {
        if self.impressions == 0 {
            return Err(Error::counts(what, "has no impressions"));
        }
        if self.clicks > self.impressions {
            let reason = format!(
                "has {} clicks but only {} impressions",
                self.clicks, self.impressions
            );
            return Err(Error::counts(what, reason));
        }
        Ok(())
    }

    /// Clicks per impression (`None` without impressions).
    pub fn ctr(&self) -> Option<f64> {
        (self.impressions > 0).then(|| self.clicks as f64 / self.impressions as f64)
    }

    /// Conversions per impression (`None` without impressions).
    pub fn conversion_rate(&self) -> Option<f64> {
        (self.impressions > 0).then(|| self.conversions as f64 / self.impressions as f64)
    }

    /// Revenue per impression (`None` without impressions).
    pub fn revenue_per_impression(&self) -> Option<f64> {
        (self.impressions > 0).then(|| self.revenue / self.impressions as f64)
    }

    /// The Wilson score interval of the CTR at `confidence` (e.g. 0.95).
    pub fn ctr_interval(&self, confidence: f64) -> Result<Interval, Error> {
        self.check("variant")?;
        let z = z_for(confidence)?;
        Ok(wilson(self.clicks as f64, self.impressions as f64, z))
    }
}

/// The two-sided normal critical value for `confidence`: `Φ⁻¹(1 - (1 - c) / 2)`.
pub fn z_for(confidence: f64) -> Result<f64, Error> {
    if !(confidence > 0.0 && confidence < 1.0) {
        return Err(Error::Parameter {
            name: "confidence",
            value: confidence,
            expected: "between 0 and 1",
        });
    }
    Ok(dist::normal_quantile(1.0 - (1.0 - confidence) / 2.0))
}

/// Checks a significance level: `alpha` must lie in `(0, 1)`.
pub(crate) fn check_alpha(alpha: f64) -> Result<(), Error> {
    if alpha > 0.0 && alpha < 1.0 {
        Ok(())
    } else {
        Err(Error::Parameter {
            name: "alpha",
            value: alpha,
            expected: "between 0 and 1",
        })
    }
}

/// The Wilson score interval for `k` successes in `n` trials:
/// `(p + z²/2n ± z sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)`.
fn wilson(k: f64, n: f64, z: f64) -> Interval {
    let p = k / n;
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    Interval {
        low: (center - half).max(0.0),
        high: (center + half).min(1.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_a_worked_example() {
        // 81 of 263 at 95%: 0.25529 .. 0.36621, the formula evaluated
        // independently (Python, z = 1.959963984540054).
        let i = VariantCounts::clicks(263, 81).ctr_interval(0.95).unwrap();
        assert!(
            (i.low - 0.255_3).abs() < 1e-4 && (i.high - 0.366_2).abs() < 1e-4,
            "{i:?}"
        );
    }

    #[test]
    fn wilson_stays_inside_zero_and_one() {
        let zero = VariantCounts::clicks(50, 0).ctr_interval(0.95).unwrap();
        assert_eq!(zero.low, 0.0);
        assert!(zero.high > 0.0 && zero.high < 0.1, "{zero:?}");
        let all = VariantCounts::clicks(50, 50).ctr_interval(0.95).unwrap();
        assert!(all.high == 1.0 && all.low > 0.9, "{all:?}");
    }

    #[test]
    fn bad_counts_and_levels_are_errors() {
        let err = VariantCounts::clicks(0, 0).ctr_interval(0.95).unwrap_err();
        assert!(err.to_string().contains("no impressions"), "{err}");
        let err = VariantCounts::clicks(5, 6).ctr_interval(0.95).unwrap_err();
        assert!(err.to_string().contains("6 clicks"), "{err}");
        let err = VariantCounts::clicks(5, 1).ctr_interval(1.5).unwrap_err();
        assert!(err.to_string().contains("confidence"), "{err}");
    }
}
