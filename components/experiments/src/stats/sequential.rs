//! The mixture sequential probability ratio test (mSPRT) with a normal
//! mixture, after Johari, Koomen, Pekelis and Walsh, "Always Valid
//! Inference" (2017/2022): a test of equal CTRs whose false-positive rate
//! stays at or below `alpha` however often, and whenever, it is read.
//!
//! The effect `θ = p_B - p_A` is estimated by `θ̂ = p̂_B - p̂_A`, with
//! variance under the null `V = p̂(1 - p̂)(1/n_A + 1/n_B)` (`p̂` pooled).
//! Mixing the likelihood ratio over `θ ~ N(0, τ²)` gives
//!
//! `Λ = sqrt(V / (V + τ²)) exp(θ̂² τ² / (2 V (V + τ²)))`
//!
//! and the test rejects the first time `Λ >= 1/alpha`. The always-valid
//! p-value is the running minimum of `1/Λ` over the looks.
//!
//! The mixing variance is `τ² = ρ² σ²`, with `σ² = 2 p̂(1 - p̂)` the
//! variance of one treatment-minus-control pair and
//! `ρ² = (-2 ln α + ln(1 - 2 ln α)) / n*`: the mixture is then tightest
//! (needs the smallest z) at `n*` impressions per arm. That is the tuning
//! GrowthBook uses for its sequential intervals, whose default `n*` of
//! 5,000 is this crate's default too. With `r = τ² / V = ρ² n` (`n` the
//! harmonic mean of the arm sizes; both arms' size when equal) and `z` the
//! pooled z statistic, `ln Λ = -½ ln(1 + r) + z² r / (2 (1 + r))`: the
//! test needs `z² >= (1 + r)/r (2 ln(1/α) + ln(1 + r))`, a threshold that
//! grows slowly with `n` instead of staying at 1.96.
//!
//! The always-valid interval inverts the same boundary around `θ̂`, with the
//! unpooled variance: `θ̂ ± sqrt(V_u (1 + r)/r (2 ln(1/α) + ln(1 + r)))`.

use super::fixed::{pooled_variance, rates};
use super::{check_alpha, Interval, VariantCounts};
use crate::Error;
use serde::Serialize;

/// The sequential test's settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SequentialConfig {
    /// The false-positive rate to hold under continuous monitoring.
    pub alpha: f64,
    /// `n*`: impressions per arm at which the mixture is tuned to be
    /// tightest.
    pub tuning_n: f64,
}

impl Default for SequentialConfig {
    fn default() -> Self {
        Self {
            alpha: 0.05,
            tuning_n: 5_000.0,
        }
    }
}

impl SequentialConfig {
    /// Checks `alpha` in `(0, 1)` and `tuning_n > 0`.
    pub fn check(&self) -> Result<(), Error> {
        check_alpha(self.alpha)?;
        if self.tuning_n > 0.0 && self.tuning_n.is_finite() {
            Ok(())
        } else {
            Err(Error::Parameter {
                name: "tuning_n",
                value: self.tuning_n,
                expected: "a positive number",
            })
        }
    }

    /// `ρ² = (-2 ln α + ln(1 - 2 ln α)) / n*`.
    pub fn rho_squared(&self) -> f64 {
        let l = -2.0 * self.alpha.ln();
        (l + (l + 1.0).ln()) / self.tuning_n
    }
}

/// One look of the mSPRT.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Msprt {
    /// `θ̂ = ctr_B - ctr_A`.
    pub difference: f64,
    /// The pooled z statistic, `θ̂ / sqrt(V)`.
    pub z: f64,
    /// `r = τ² / V`.
    pub r: f64,
    /// `τ²`, the variance of the normal mixture over the effect.
    pub mixing_variance: f64,
    /// `ln Λ`.
    pub log_lambda: f64,
    /// `min(1, 1/Λ)` at this look (the always-valid p-value is the running
    /// minimum of it: [`SequentialMonitor`]).
    pub p_value: f64,
    /// Whether `Λ >= 1/alpha`.
    pub rejects: bool,
    /// The always-valid interval for `θ` at this look.
    pub interval: Interval,
}

/// The mSPRT of `treatment` against `control` at one look.
pub fn msprt(
    control: &VariantCounts,
    treatment: &VariantCounts,
    config: &SequentialConfig,
) -> Result<Msprt, Error> {
    config.check()?;
    control.check("control")?;
    treatment.check("treatment")?;
    let (pa, pb, pooled) = rates(control, treatment);
    let difference = pb - pa;
    let variance = pooled_variance(pooled, control, treatment);
    let (na, nb) = (control.impressions as f64, treatment.impressions as f64);
    let n = 2.0 / (1.0 / na + 1.0 / nb);
    let r = config.rho_squared() * n;
    let z = if variance > 0.0 {
        difference / variance.sqrt()
    } else {
        0.0
    };
    let log_lambda = -0.5 * r.ln_1p() + z * z * r / (2.0 * (1.0 + r));
    let bound = (1.0 + r) / r * (2.0 * (1.0 / config.alpha).ln() + r.ln_1p());
    let unpooled = pa * (1.0 - pa) / na + pb * (1.0 - pb) / nb;
    let half = (unpooled * bound).sqrt();
    Ok(Msprt {
        difference,
        z,
        r,
        mixing_variance: 2.0 * config.rho_squared() * pooled * (1.0 - pooled),
        log_lambda,
        p_value: (-log_lambda).exp().min(1.0),
        rejects: log_lambda >= (1.0 / config.alpha).ln(),
        interval: Interval {
            low: difference - half,
            high: difference + half,
        },
    })
}

/// The mSPRT read at every look: keeps the always-valid p-value (the
/// running minimum of `1/Λ`) and the first look that rejected.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SequentialMonitor {
    config: SequentialConfig,
    p_value: f64,
    looks: u64,
    first_rejection: Option<u64>,
}

impl SequentialMonitor {
    /// A monitor with `config`.
    pub fn new(config: SequentialConfig) -> Result<Self, Error> {
        config.check()?;
        Ok(Self {
            config,
            p_value: 1.0,
            looks: 0,
            first_rejection: None,
        })
    }

    /// Reads the test at the counts so far.
    pub fn observe(
        &mut self,
        control: &VariantCounts,
        treatment: &VariantCounts,
    ) -> Result<Msprt, Error> {
        let look = msprt(control, treatment, &self.config)?;
        self.looks += 1;
        self.p_value = self.p_value.min(look.p_value);
        if look.rejects && self.first_rejection.is_none() {
            self.first_rejection = Some(control.impressions + treatment.impressions);
        }
        Ok(look)
    }

    /// The always-valid p-value: the smallest `1/Λ` seen.
    pub fn p_value(&self) -> f64 {
        self.p_value
    }

    /// Whether any look rejected.
    pub fn rejected(&self) -> bool {
        self.first_rejection.is_some()
    }

    /// Total impressions (both arms) at the first look that rejected.
    pub fn first_rejection(&self) -> Option<u64> {
        self.first_rejection
    }

    /// Looks so far.
    pub fn looks(&self) -> u64 {
        self.looks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rho_is_tuned_to_the_tuning_size() {
        let config = SequentialConfig::default();
        // At n = n*, r = -2 ln α + ln(1 - 2 ln α) = 5.99146 + 1.94469 for α = 0.05.
        let r = config.rho_squared() * config.tuning_n;
        assert!((r - 7.936_15).abs() < 1e-4, "{r}");
        // The z needed to reject is smallest near n*.
        let need = |n: f64| {
            let r = config.rho_squared() * n;
            ((1.0 + r) / r * (2.0 * 20_f64.ln() + r.ln_1p())).sqrt()
        };
        assert!(need(5_000.0) < need(2_500.0) && need(5_000.0) < need(10_000.0));
        assert!(
            need(5_000.0) > 1.96 && need(5_000.0) < 3.1,
            "{}",
            need(5_000.0)
        );
    }

    #[test]
    fn lambda_matches_the_closed_form() {
        let a = VariantCounts::clicks(5_000, 250);
        let b = VariantCounts::clicks(5_000, 320);
        let look = msprt(&a, &b, &SequentialConfig::default()).unwrap();
        // Λ from its definition with V and τ² directly.
        let p = 570.0 / 10_000.0;
        let v = p * (1.0 - p) * (2.0 / 5_000.0);
        let tau2 = look.mixing_variance;
        let theta = 0.014;
        let lambda =
            (v / (v + tau2)).sqrt() * (theta * theta * tau2 / (2.0 * v * (v + tau2))).exp();
        assert!(
            (look.log_lambda - lambda.ln()).abs() < 1e-9,
            "{look:?} vs {lambda}"
        );
        assert!((look.r - tau2 / v).abs() < 1e-9 * look.r);
    }

    #[test]
    fn rejects_large_effects_and_not_small_ones() {
        let config = SequentialConfig::default();
        let a = VariantCounts::clicks(20_000, 1_000);
        let big = msprt(&a, &VariantCounts::clicks(20_000, 1_250), &config).unwrap();
        assert!(
            big.rejects && big.p_value < 0.05 && big.interval.low > 0.0,
            "{big:?}"
        );
        // z ≈ 2.2 is significant for a fixed horizon, not sequentially.
        let small = msprt(&a, &VariantCounts::clicks(20_000, 1_095), &config).unwrap();
        assert!(
            small.z > 2.0 && !small.rejects && small.interval.low < 0.0,
            "{small:?}"
        );
    }

    #[test]
    fn monitor_keeps_the_running_minimum() {
        let mut m = SequentialMonitor::new(SequentialConfig::default()).unwrap();
        let a = VariantCounts::clicks(10_000, 500);
        let first = m.observe(&a, &VariantCounts::clicks(10_000, 600)).unwrap();
        let second = m.observe(&a, &VariantCounts::clicks(10_000, 500)).unwrap();
        assert!(second.p_value > first.p_value);
        assert_eq!(m.p_value(), first.p_value);
        assert_eq!(m.looks(), 2);
    }

    #[test]
    fn bad_settings_are_errors() {
        let bad = SequentialConfig {
            alpha: 0.0,
            ..Default::default()
        };
        assert!(SequentialMonitor::new(bad)
            .unwrap_err()
            .to_string()
            .contains("alpha"));
        let bad = SequentialConfig {
            tuning_n: -1.0,
            ..Default::default()
        };
        assert!(SequentialMonitor::new(bad)
            .unwrap_err()
            .to_string()
            .contains("tuning_n"));
    }
}
