//! Computed features: evaluated at read time, after the stored features
//! of the same row, against the request's time.
//!
//! | op | value | an input missing or stale |
//! | --- | --- | --- |
//! | `days_since(t)` | `max(0, now_s - t) / 86400`, fractional days (f32); a `t` in the future gives 0 | the feature's own `default` |
//! | `ratio(a, b)` | `(a + prior_mean * prior_weight) / (b + prior_weight)` (f32); if `b + prior_weight <= 0`, `prior_mean` | each input reads as its default (so counts that default to 0 give `prior_mean`) |
//! | `threshold(x, cmp, v)` | `x cmp v` (bool) | `x` reads as its default |
//!
//! The smoothing prior of `ratio` is a Beta-like pseudo-count: the ratio
//! starts at `prior_mean` and moves toward `a / b` as `b` grows past
//! `prior_weight` (with `prior_mean = 0.02, prior_weight = 50`, 1 click in
//! 10 views reads 0.033, not 0.1; 100 in 1000 reads 0.096). `prior_weight`
//! must be above 0, so a ratio with no evidence is the prior mean, never
//! a division by zero.
//!
//! A computed feature's freshness is its worst input's (missing before
//! stale before fresh); a computed input counts with its own freshness.
//! Computed features may read computed features; the definitions order
//! them so that inputs come first, and refuse cycles.

use crate::defs::{Cmp, Computation};
use crate::row::{input, FeatureValues, Freshness};

const SECONDS_PER_DAY: f64 = 86_400.0;

/// Evaluates every computed feature of `row` at `now_s` (unix seconds).
pub(crate) fn evaluate(row: &mut FeatureValues, now_s: i64) {
    let FeatureValues {
        defs, bits, status, ..
    } = row;
    let base = defs.stored().len();
    for &c in defs.order() {
        let c = usize::from(c);
        let (value, freshness) = match defs.computed()[c].op {
            Computation::DaysSince { input: at, default } => {
                let i = at.index();
                let found = status[i];
                let v = if found == Freshness::Fresh {
                    days_since(input(defs, bits, i), now_s)
                } else {
                    default
                };
                (u64::from(v.to_bits()), found)
            }
            Computation::Ratio {
                numerator,
                denominator,
                prior_mean,
                prior_weight,
            } => {
                let (a, b) = (numerator.index(), denominator.index());
                let v = ratio(
                    input(defs, bits, a),
                    input(defs, bits, b),
                    prior_mean,
                    prior_weight,
                );
                (u64::from(v.to_bits()), status[a].max(status[b]))
            }
            Computation::Threshold {
                input: at,
                cmp,
                value,
            } => {
                let i = at.index();
                let v = compare(input(defs, bits, i), cmp, value);
                (u64::from(v), status[i])
            }
        };
        bits[base + c] = value;
        status[base + c] = freshness;
    }
}

/// Fractional days from `t` to `now_s`, 0 when `t` is in the future.
pub fn days_since(t: f64, now_s: i64) -> f32 {
    ((now_s as f64 - t).max(0.0) / SECONDS_PER_DAY) as f32
}

/// The smoothed ratio (see the [module docs](self)).
pub fn ratio(a: f64, b: f64, prior_mean: f64, prior_weight: f64) -> f32 {
    let den = b + prior_weight;
    if den > 0.0 {
        ((a + prior_mean * prior_weight) / den) as f32
    } else {
        prior_mean as f32
    }
}

/// `x cmp v`.
pub fn compare(x: f64, cmp: Cmp, v: f64) -> bool {
    match cmp {
        Cmp::Lt => x < v,
        Cmp::Le => x <= v,
        Cmp::Gt => x > v,
        Cmp::Ge => x >= v,
        Cmp::Eq => x == v,
        Cmp::Ne => x != v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_since_is_fractional_and_never_negative() {
        assert_eq!(days_since(0.0, 86_400 * 3), 3.0);
        assert_eq!(days_since(0.0, 43_200), 0.5);
        assert_eq!(days_since(1_000.0, 10), 0.0, "a future timestamp gives 0");
    }

    #[test]
    fn ratio_is_smoothed_toward_the_prior() {
        assert!((ratio(0.0, 0.0, 0.02, 50.0) - 0.02).abs() < 1e-7);
        assert!((ratio(1.0, 10.0, 0.02, 50.0) - 2.0 / 60.0).abs() < 1e-7);
        assert!((ratio(100.0, 1000.0, 0.02, 50.0) - 101.0 / 1050.0).abs() < 1e-7);
        assert_eq!(
            ratio(5.0, -100.0, 0.02, 50.0),
            0.02,
            "no positive denominator"
        );
    }

    #[test]
    fn comparisons() {
        assert!(compare(1.0, Cmp::Lt, 2.0) && !compare(2.0, Cmp::Lt, 2.0));
        assert!(compare(2.0, Cmp::Le, 2.0) && compare(3.0, Cmp::Gt, 2.0));
        assert!(compare(2.0, Cmp::Ge, 2.0) && compare(2.0, Cmp::Eq, 2.0));
        assert!(compare(1.0, Cmp::Ne, 2.0) && !compare(2.0, Cmp::Ne, 2.0));
    }
}
