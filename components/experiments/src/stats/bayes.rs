//! The Bayesian chance to beat control: `P(p_B > p_A)` when each arm's CTR
//! has a Beta posterior, `Beta(1 + clicks, 1 + impressions - clicks)` from
//! a uniform prior.
//!
//! For integer Beta parameters the probability has a closed form (Evan
//! Miller's sum over one arm's first parameter):
//!
//! `P(p_B > p_A) = Σ_{i=0}^{α_B-1} B(α_A + i, β_A + β_B) / ((β_B + i) B(1 + i, β_B) B(α_A, β_A))`
//!
//! computed in logs. The sum has `α_B` terms; by symmetry
//! (`P(p_B > p_A) = 1 - P(p_A > p_B)`) it runs over the arm with fewer
//! clicks. Past [`EXACT_TERMS_MAX`] terms both posteriors are so close to
//! normal that the normal approximation is used instead:
//! `Φ((μ_B - μ_A) / sqrt(σ_A² + σ_B²))` with the Beta means and variances.

use super::{dist, VariantCounts};
use crate::Error;

/// Most terms the closed form sums; above, the normal approximation.
pub const EXACT_TERMS_MAX: u64 = 100_000;

/// A Beta posterior's parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Beta {
    /// `α` (1 + clicks).
    pub alpha: f64,
    /// `β` (1 + non-clicks).
    pub beta: f64,
}

impl Beta {
    /// The posterior of a CTR after `counts`, from a uniform prior.
    pub fn posterior(counts: &VariantCounts) -> Self {
        let clicks = counts.clicks as f64;
        let misses = counts.impressions.saturating_sub(counts.clicks) as f64;
        Self {
            alpha: 1.0 + clicks,
            beta: 1.0 + misses,
        }
    }

    /// The mean, `α / (α + β)`.
    pub fn mean(&self) -> f64 {
        self.alpha / (self.alpha + self.beta)
    }

    /// The variance, `αβ / ((α + β)² (α + β + 1))`.
    pub fn variance(&self) -> f64 {
        let s = self.alpha + self.beta;
        self.alpha * self.beta / (s * s * (s + 1.0))
    }
}

/// The chance that `treatment`'s CTR beats `control`'s.
pub fn chance_to_beat_control(
    control: &VariantCounts,
    treatment: &VariantCounts,
) -> Result<f64, Error> {
    for (what, counts) in [("control", control), ("treatment", treatment)] {
        if counts.clicks > counts.impressions {
            let reason = format!(
                "has {} clicks but only {} impressions",
                counts.clicks, counts.impressions
            );
            return Err(Error::counts(what, reason));
        }
    }
    let (a, b) = (Beta::posterior(control), Beta::posterior(treatment));
    let terms = control.clicks.min(treatment.clicks) + 1;
    Ok(if terms <= EXACT_TERMS_MAX {
        exact(a, b)
    } else {
        normal_approximation(a, b)
    })
}

/// `P(X_b > X_a)` for Beta variables with integer `alpha`, summing over the
/// smaller `alpha`.
pub fn exact(a: Beta, b: Beta) -> f64 {
    let p = if b.alpha <= a.alpha {
        sum_over_b(a, b)
    } else {
        1.0 - sum_over_b(b, a)
    };
    p.clamp(0.0, 1.0)
}

/// Evan Miller's sum of `b.alpha` terms for `P(X_b > X_a)`.
fn sum_over_b(a: Beta, b: Beta) -> f64 {
    let base = dist::ln_beta(a.alpha, a.beta);
    let terms = b.alpha as u64;
    (0..terms)
        .map(|i| {
            let i = i as f64;
            let ln = dist::ln_beta(a.alpha + i, a.beta + b.beta)
                - (b.beta + i).ln()
                - dist::ln_beta(1.0 + i, b.beta)
                - base;
            ln.exp()
        })
        .sum()
}

/// `Φ((μ_b - μ_a) / sqrt(σ_a² + σ_b²))`.
pub fn normal_approximation(a: Beta, b: Beta) -> f64 {
    let sd = (a.variance() + b.variance()).sqrt();
    if sd == 0.0 {
        return 0.5;
    }
    dist::normal_cdf((b.mean() - a.mean()) / sd)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `P(X_b > X_a)` by a midpoint rule over the two densities, as an
    /// independent check of the closed form.
    fn integrated(a: Beta, b: Beta) -> f64 {
        let n = 4_000;
        let h = 1.0 / n as f64;
        let pdf = |d: Beta, x: f64| {
            ((d.alpha - 1.0) * x.ln() + (d.beta - 1.0) * (1.0 - x).ln()
                - dist::ln_beta(d.alpha, d.beta))
            .exp()
        };
        // P = ∫ f_b(x) F_a(x) dx, with F_a accumulated along the grid.
        let (mut cdf_a, mut total) = (0.0, 0.0);
        for i in 0..n {
            let x = (i as f64 + 0.5) * h;
            let fa = pdf(a, x) * h;
            total += pdf(b, x) * h * (cdf_a + fa / 2.0);
            cdf_a += fa;
        }
        total
    }

    #[test]
    fn closed_form_matches_known_values() {
        let uniform = Beta {
            alpha: 1.0,
            beta: 1.0,
        };
        assert!((exact(uniform, uniform) - 0.5).abs() < 1e-12);
        // X_b ~ Beta(2, 1) (density 2x) against a uniform: ∫ 2x · x dx = 2/3.
        let b = Beta {
            alpha: 2.0,
            beta: 1.0,
        };
        assert!((exact(uniform, b) - 2.0 / 3.0).abs() < 1e-12);
        assert!((exact(b, uniform) - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn closed_form_matches_numerical_integration() {
        for (a, b) in [
            ((4.0, 7.0), (6.0, 5.0)),
            ((11.0, 190.0), (16.0, 185.0)),
            ((30.0, 3.0), (2.0, 40.0)),
        ] {
            let (a, b) = (
                Beta {
                    alpha: a.0,
                    beta: a.1,
                },
                Beta {
                    alpha: b.0,
                    beta: b.1,
                },
            );
            let (e, i) = (exact(a, b), integrated(a, b));
            assert!(
                (e - i).abs() < 1e-4,
                "{a:?} {b:?}: exact {e}, integrated {i}"
            );
        }
    }

    #[test]
    fn normal_approximation_agrees_at_large_counts() {
        let a = VariantCounts::clicks(20_000, 1_000);
        let b = VariantCounts::clicks(20_000, 1_060);
        let e = chance_to_beat_control(&a, &b).unwrap();
        let n = normal_approximation(Beta::posterior(&a), Beta::posterior(&b));
        assert!(
            (e - n).abs() < 5e-3 && e > 0.9 && e < 0.95,
            "exact {e}, normal {n}"
        );
    }

    #[test]
    fn more_clicks_means_a_higher_chance() {
        let a = VariantCounts::clicks(1_000, 50);
        let lo = chance_to_beat_control(&a, &VariantCounts::clicks(1_000, 40)).unwrap();
        let hi = chance_to_beat_control(&a, &VariantCounts::clicks(1_000, 70)).unwrap();
        assert!(lo < 0.5 && hi > 0.95, "{lo} {hi}");
        assert!(chance_to_beat_control(&a, &VariantCounts::clicks(5, 6)).is_err());
    }
}
