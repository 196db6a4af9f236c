//! The fixed-horizon two-proportion z-test: valid when the sample size is
//! chosen in advance and the result is read once, at that size. Read
//! repeatedly as data arrive ("peeking"), its false-positive rate grows
//! well past `alpha`; use [`super::sequential`] for that.
//!
//! With `p̂ = (c_A + c_B) / (n_A + n_B)` the pooled CTR under the null of
//! equal CTRs,
//!
//! `z = (p̂_B - p̂_A) / sqrt(p̂ (1 - p̂) (1/n_A + 1/n_B))`, and the two-sided
//! p-value is `2 (1 - Φ(|z|))`.

use super::{check_alpha, dist, VariantCounts};
use crate::Error;
use serde::Serialize;

/// The result of a two-proportion z-test of a treatment against control.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ZTest {
    /// `ctr_B - ctr_A`.
    pub difference: f64,
    /// `(ctr_B - ctr_A) / ctr_A` (`None` when the control's CTR is 0).
    pub relative_lift: Option<f64>,
    /// The z statistic (0 when both CTRs are 0 or both 1).
    pub z: f64,
    /// The two-sided p-value.
    pub p_value: f64,
}

impl ZTest {
    /// Whether the difference is significant at `alpha`.
    pub fn significant(&self, alpha: f64) -> bool {
        self.p_value < alpha
    }
}

/// Tests `treatment` against `control` (CTR: clicks per impression).
pub fn z_test(control: &VariantCounts, treatment: &VariantCounts) -> Result<ZTest, Error> {
    control.check("control")?;
    treatment.check("treatment")?;
    let (pa, pb, pooled) = rates(control, treatment);
    let variance = pooled_variance(pooled, control, treatment);
    let z = if variance > 0.0 {
        (pb - pa) / variance.sqrt()
    } else {
        0.0
    };
    Ok(ZTest {
        difference: pb - pa,
        relative_lift: (pa > 0.0).then(|| (pb - pa) / pa),
        z,
        p_value: (2.0 * dist::normal_sf(z.abs())).min(1.0),
    })
}

/// The fixed-horizon test at `alpha`: whether `treatment` differs.
pub fn rejects(
    control: &VariantCounts,
    treatment: &VariantCounts,
    alpha: f64,
) -> Result<bool, Error> {
    check_alpha(alpha)?;
    Ok(z_test(control, treatment)?.significant(alpha))
}

/// The two CTRs and the pooled one.
pub(crate) fn rates(control: &VariantCounts, treatment: &VariantCounts) -> (f64, f64, f64) {
    let (na, nb) = (control.impressions as f64, treatment.impressions as f64);
    let (ca, cb) = (control.clicks as f64, treatment.clicks as f64);
    (ca / na, cb / nb, (ca + cb) / (na + nb))
}

/// The variance of `p̂_B - p̂_A` under the null: `p̂(1-p̂)(1/n_A + 1/n_B)`.
pub(crate) fn pooled_variance(
    pooled: f64,
    control: &VariantCounts,
    treatment: &VariantCounts,
) -> f64 {
    pooled
        * (1.0 - pooled)
        * (1.0 / control.impressions as f64 + 1.0 / treatment.impressions as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_hand_computed_example() {
        // 200/2000 vs 250/2000: pooled 0.1125, se = sqrt(.1125*.8875*(2/2000)).
        let a = VariantCounts::clicks(2000, 200);
        let b = VariantCounts::clicks(2000, 250);
        let t = z_test(&a, &b).unwrap();
        let se = (0.1125_f64 * 0.8875 * 0.001).sqrt();
        assert!((t.z - 0.025 / se).abs() < 1e-12, "{t:?}");
        // z = 2.501955..., two-sided p = 2 * pnorm(-2.501955) = 0.0123509.
        assert!((t.p_value - 0.012_350_9).abs() < 1e-7, "{t:?}");
        assert!(t.significant(0.05) && !t.significant(0.01));
        assert!((t.relative_lift.unwrap() - 0.25).abs() < 1e-12);
    }

    #[test]
    fn no_clicks_anywhere_is_no_evidence() {
        let a = VariantCounts::clicks(100, 0);
        let t = z_test(&a, &a).unwrap();
        assert_eq!((t.z, t.p_value), (0.0, 1.0));
        assert_eq!(t.relative_lift, None);
    }

    #[test]
    fn empty_arms_are_errors() {
        let err = z_test(&VariantCounts::default(), &VariantCounts::clicks(5, 1)).unwrap_err();
        assert!(err.to_string().starts_with("control"), "{err}");
    }
}
