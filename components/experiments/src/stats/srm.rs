//! The sample-ratio-mismatch (SRM) check: do the variants' user counts fit
//! the traffic split the experiment was configured with?
//!
//! A chi-square goodness-of-fit test: with `N` users in all and `w_i` the
//! configured share of variant `i` (weights normalised to sum to 1),
//! `χ² = Σ (o_i - N w_i)² / (N w_i)` on `k - 1` degrees of freedom. A
//! p-value under [`SRM_P_THRESHOLD`] (0.001, as GrowthBook flags it) means
//! the assignment is broken (a bug in bucketing, a redirect losing one arm's
//! users, a filter applied to one variant) and the experiment's comparisons
//! cannot be trusted.

use super::dist;
use crate::Error;
use serde::Serialize;

/// The p-value under which a mismatch is flagged.
pub const SRM_P_THRESHOLD: f64 = 0.001;

/// The result of the SRM check.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Srm {
    /// The chi-square statistic.
    pub chi_square: f64,
    /// Degrees of freedom, variants - 1.
    pub degrees_of_freedom: usize,
    /// `P(χ² >= observed)` under the configured split.
    pub p_value: f64,
    /// Whether `p_value < SRM_P_THRESHOLD`.
    pub flagged: bool,
}

/// Checks `counts` (users per variant) against the configured `weights`
/// (any positive scale; they are normalised).
pub fn srm(counts: &[u64], weights: &[f64]) -> Result<Srm, Error> {
    check_inputs(counts, weights)?;
    let total_weight: f64 = weights.iter().sum();
    let n: f64 = counts.iter().map(|&c| c as f64).sum();
    if n == 0.0 {
        return Err(Error::counts("srm", "no users in any variant"));
    }
    let chi_square: f64 = counts
        .iter()
        .zip(weights)
        .map(|(&o, &w)| {
            let expected = n * w / total_weight;
            let d = o as f64 - expected;
            d * d / expected
        })
        .sum();
    let degrees_of_freedom = counts.len() - 1;
    let p_value = dist::chi_square_sf(chi_square, degrees_of_freedom as f64);
    Ok(Srm {
        chi_square,
        degrees_of_freedom,
        p_value,
        flagged: p_value < SRM_P_THRESHOLD,
    })
}

fn check_inputs(counts: &[u64], weights: &[f64]) -> Result<(), Error> {
    if counts.len() != weights.len() {
        let reason = format!("{} counts but {} weights", counts.len(), weights.len());
        return Err(Error::counts("srm", reason));
    }
    if counts.len() < 2 {
        return Err(Error::counts("srm", "needs at least two variants"));
    }
    match weights.iter().position(|w| !(w.is_finite() && *w > 0.0)) {
        Some(i) => Err(Error::counts(
            "srm",
            format!("weight {i} is {}, not a positive number", weights[i]),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_52_48_split_of_a_50_50_experiment_is_flagged() {
        let s = srm(&[20_800, 19_200], &[0.5, 0.5]).unwrap();
        // χ² = 2 * 800² / 20000 = 64.
        assert!((s.chi_square - 64.0).abs() < 1e-9, "{s:?}");
        assert!(s.flagged && s.p_value < 1e-14, "{s:?}");
    }

    #[test]
    fn a_near_even_split_is_not_flagged() {
        let s = srm(&[20_100, 19_900], &[1.0, 1.0]).unwrap();
        assert!((s.chi_square - 1.0).abs() < 1e-9 && !s.flagged, "{s:?}");
        // χ² = 1 on 1 df: p = erfc(sqrt(1/2)) = 0.3173.
        assert!((s.p_value - 0.317_310_507_862_914_1).abs() < 1e-12);
    }

    #[test]
    fn uneven_weights_are_respected() {
        let s = srm(&[1_000, 9_000], &[0.1, 0.9]).unwrap();
        assert!(s.chi_square.abs() < 1e-9 && s.p_value == 1.0, "{s:?}");
        let three = srm(&[2_000, 3_000, 5_000], &[0.2, 0.3, 0.5]).unwrap();
        assert_eq!(three.degrees_of_freedom, 2);
        assert!(!three.flagged);
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert!(srm(&[1, 2], &[1.0])
            .unwrap_err()
            .to_string()
            .contains("2 counts but 1 weights"));
        assert!(srm(&[1], &[1.0]).is_err());
        assert!(srm(&[0, 0], &[1.0, 1.0])
            .unwrap_err()
            .to_string()
            .contains("no users"));
        assert!(srm(&[1, 2], &[1.0, 0.0])
            .unwrap_err()
            .to_string()
            .contains("weight 1"));
    }
}
