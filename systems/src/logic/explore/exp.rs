//! `e^x` for `x <= 0` in `f32` without a library call, so that a loop of
//! replica draws that takes one per draw stays branch-free and vectorizes
//! (`f32::exp` is a call to libm's `expf` per element).
//!
//! `e^x = 2^n e^r` with `n` the integer nearest `x log2(e)` and `r = x -
//! n ln 2` (`|r| <= ln(2) / 2`, reduced in two parts so that no bits are
//! lost); `e^r` is its Taylor polynomial of degree 6 (truncation error
//! under 2e-7 there, near `f32`'s own rounding), and `2^n` is built in the
//! exponent bits. Inputs under
//! [`EXP_ARG_MIN`] give `e^EXP_ARG_MIN` (about 1.2e-38, the smallest normal
//! `f32`): a replica's Gamma that small is 0 for every use it has.

/// The smallest argument taken: `2^-126`, the least normal `f32`.
pub(super) const EXP_ARG_MIN: f32 = -87.33;

/// `e^x` for `x <= 0` (within a few ulps; see the module's doc). Positive
/// arguments are outside its contract and give `e^0`.
#[inline]
pub(super) fn exp_nonpositive(x: f32) -> f32 {
    let x = x.clamp(EXP_ARG_MIN, 0.0);
    // `x log2(e) <= 0`: truncating it less 1/2 toward zero rounds it to an
    // integer within 1/2 (a conversion that vectorizes, unlike `round`).
    let n = (x * std::f32::consts::LOG2_E - 0.5) as i32;
    // `r = x - n ln 2` in two parts (Cody and Waite): `n LN2_HIGH` is
    // exact, so `r` keeps its bits for every `n`.
    let n_f = n as f32;
    let r = (x - n_f * LN2_HIGH) - n_f * LN2_LOW;
    let poly = 1.0
        + r * (1.0
            + r * (1.0 / 2.0
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    // `n` is in [-126, 0], so `n + 127` is a valid biased exponent.
    let scale = f32::from_bits(((n + 127) as u32) << 23);
    poly * scale
}

/// `ln 2` to 9 bits (355 / 512), so that `n LN2_HIGH` is exact in `f32`
/// for `|n| < 2^15`.
const LN2_HIGH: f32 = 0.693_359_4;
/// `ln 2 - LN2_HIGH`.
const LN2_LOW: f32 = -2.121_944_4e-4;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn relative_error(x: f32) -> f64 {
        let exact = f64::from(x).exp();
        (f64::from(exp_nonpositive(x)) - exact).abs() / exact
    }

    #[test]
    fn it_is_exact_to_a_few_ulps_over_its_range() {
        let mut worst = 0.0f64;
        let steps = 200_000;
        for k in 0..=steps {
            let x = EXP_ARG_MIN * k as f32 / steps as f32;
            worst = worst.max(relative_error(x));
        }
        // About 2.4e-7 measured: two `f32` ulps.
        assert!(worst < 5.0e-7, "worst relative error {worst}");
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert_eq!(exp_nonpositive(-0.0), 1.0);
    }

    #[test]
    fn arguments_outside_the_range_are_clamped() {
        let floor = exp_nonpositive(EXP_ARG_MIN);
        assert!(floor > 0.0 && floor.is_normal(), "{floor}");
        assert_eq!(exp_nonpositive(-1.0e4), floor);
        assert_eq!(exp_nonpositive(f32::NEG_INFINITY), floor);
        assert_eq!(exp_nonpositive(3.0), 1.0);
    }

    proptest! {
        #[test]
        fn it_agrees_with_libm(x in EXP_ARG_MIN..=0.0f32) {
            prop_assert!(relative_error(x) < 5.0e-7, "x = {}", x);
        }
    }
}
