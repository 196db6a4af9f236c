//! Portable numerics and samplers: the only randomness and transcendental
//! functions the generator uses.
//!
//! `f64::exp` and `f64::ln` call the platform's libm, whose last bit may
//! differ between machines, and `rand`'s distributions may change their
//! value stream between versions. Either would break "the same seed gives
//! the same rows everywhere". So everything here is built from the raw
//! `u64`s of a ChaCha8 stream and IEEE-754 basic operations
//! (`+ - * /`, `sqrt`, `round`), which every supported target evaluates
//! identically (Rust never fuses a multiply-add on its own).

use rand::RngCore;

/// `ln 2` split so that `k * LN2_HI` is exact for `|k| < 2^11` (fdlibm's constants).
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
/// The rest of `ln 2`.
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);

/// Above this `exp` overflows to infinity.
const EXP_ARG_MAX: f64 = 709.0;
/// Below this `exp` is treated as zero (the result would be subnormal).
const EXP_ARG_MIN: f64 = -708.0;

/// `1/n!` for `n = 0..=13`: the Taylor series of `e^r` for `|r| <= ln(2)/2`,
/// truncated where the next term is below `1e-17`.
const EXP_TAYLOR: [f64; 14] = [
    1.0,
    1.0,
    1.0 / 2.0,
    1.0 / 6.0,
    1.0 / 24.0,
    1.0 / 120.0,
    1.0 / 720.0,
    1.0 / 5_040.0,
    1.0 / 40_320.0,
    1.0 / 362_880.0,
    1.0 / 3_628_800.0,
    1.0 / 39_916_800.0,
    1.0 / 479_001_600.0,
    1.0 / 6_227_020_800.0,
];

/// `1/(2n+1)` for `n = 0..=11`: the series of `atanh(t)/t` in `t^2`, for
/// `|t| <= 0.1716` (where `t^24 < 1e-18`).
const ATANH_SERIES: [f64; 12] = [
    1.0,
    1.0 / 3.0,
    1.0 / 5.0,
    1.0 / 7.0,
    1.0 / 9.0,
    1.0 / 11.0,
    1.0 / 13.0,
    1.0 / 15.0,
    1.0 / 17.0,
    1.0 / 19.0,
    1.0 / 21.0,
    1.0 / 23.0,
];

/// Evaluates `coeffs[0] + x coeffs[1] + x^2 coeffs[2] + ...` by Horner's rule.
fn horner(coeffs: &[f64], x: f64) -> f64 {
    coeffs.iter().rev().fold(0.0, |acc, &c| acc * x + c)
}

/// `2^k` for `k` in `-1022..=1023`.
fn pow2(k: i64) -> f64 {
    debug_assert!((-1022..=1023).contains(&k));
    f64::from_bits(((k + 1023) as u64) << 52)
}

/// `e^x`, within a few ulps of the exact value, bit-identical on every target.
/// Saturates to `0` below `-708` and to infinity above `709`.
pub(crate) fn exp(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x > EXP_ARG_MAX {
        return f64::INFINITY;
    }
    if x < EXP_ARG_MIN {
        return 0.0;
    }
    let k = (x * std::f64::consts::LOG2_E).round();
    let r = (x - k * LN2_HI) - k * LN2_LO;
    horner(&EXP_TAYLOR, r) * pow2(k as i64)
}

/// Natural logarithm, within a few ulps, bit-identical on every target.
/// `ln(0) = -inf`; negative or NaN input gives NaN.
pub(crate) fn ln(x: f64) -> f64 {
    if x.is_nan() || x < 0.0 {
        return f64::NAN;
    }
    if x == 0.0 {
        return f64::NEG_INFINITY;
    }
    if x.is_infinite() {
        return x;
    }
    // Scale subnormals into the normal range first.
    let (x, mut e) = if x < f64::MIN_POSITIVE {
        (x * pow2(54), -54i64)
    } else {
        (x, 0)
    };
    let bits = x.to_bits();
    e += ((bits >> 52) & 0x7ff) as i64 - 1023;
    // The mantissa in [1, 2), then folded into (sqrt(1/2), sqrt(2)].
    let mut m = f64::from_bits((bits & ((1 << 52) - 1)) | (1023 << 52));
    if m > std::f64::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    // ln m = 2 atanh(t), t = (m - 1) / (m + 1), |t| <= 0.1716.
    let t = (m - 1.0) / (m + 1.0);
    let ln_m = 2.0 * t * horner(&ATANH_SERIES, t * t);
    let e = e as f64;
    e * LN2_HI + (ln_m + e * LN2_LO)
}

/// `x^y` for `x > 0`, as `e^(y ln x)`.
pub(crate) fn powf(x: f64, y: f64) -> f64 {
    exp(y * ln(x))
}

/// The logistic function `1 / (1 + e^-x)`, in `[0, 1]`.
pub(crate) fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + exp(-x))
    } else {
        let e = exp(x);
        e / (1.0 + e)
    }
}

/// A uniform draw from `[0, 1)` with 53 random bits.
pub(crate) fn unit(rng: &mut impl RngCore) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A draw from `0..n` by the multiply-high method (bias below `n / 2^64`,
/// negligible for the small `n` used here). `n` must be positive.
pub(crate) fn below(rng: &mut impl RngCore, n: u64) -> u64 {
    debug_assert!(n > 0);
    ((u128::from(rng.next_u64()) * u128::from(n)) >> 64) as u64
}

/// `true` with probability `p`.
pub(crate) fn chance(rng: &mut impl RngCore, p: f64) -> bool {
    unit(rng) < p
}

/// Most rejections the polar method may take before it gives up (the chance
/// of reaching it is `(1 - pi/4)^64 < 1e-42`).
const POLAR_TRIES_MAX: usize = 64;

/// A standard normal draw by Marsaglia's polar method (needs only `ln` and
/// `sqrt`). Returns `0.0` in the practically impossible case that
/// [`POLAR_TRIES_MAX`] pairs are all rejected.
pub(crate) fn normal(rng: &mut impl RngCore) -> f64 {
    for _ in 0..POLAR_TRIES_MAX {
        let u = 2.0 * unit(rng) - 1.0;
        let v = 2.0 * unit(rng) - 1.0;
        let s = u * u + v * v;
        if s > 0.0 && s < 1.0 {
            return u * (-2.0 * ln(s) / s).sqrt();
        }
    }
    0.0
}

/// Width of the ids [`mix53`] makes: they fit an `f64` exactly, so they
/// survive JSON and float-based tools.
pub(crate) const ID_BITS: u32 = 53;
const ID_MASK: u64 = (1 << ID_BITS) - 1;

/// A bijection on `0..2^53` that scrambles bits (SplitMix64's output
/// function narrowed to 53 bits: each step, an xor with a right shift or a
/// multiplication by an odd constant modulo `2^53`, is invertible).
pub(crate) fn mix53(z: u64) -> u64 {
    let mut z = z & ID_MASK;
    z = ((z ^ (z >> 26)).wrapping_mul(0xbf58_476d_1ce4_e5b9)) & ID_MASK;
    z = ((z ^ (z >> 24)).wrapping_mul(0x94d0_49bb_1331_11eb)) & ID_MASK;
    z ^ (z >> 27)
}

/// A categorical distribution over `0..len` as a cumulative weight table.
///
/// Sampling draws `u` uniform in `[0, total)` and returns the first index
/// whose cumulative weight exceeds `u` (a binary search), so an index of
/// weight zero is never returned.
#[derive(Clone, Debug)]
pub(crate) struct Cdf {
    cumulative: Vec<f64>,
    /// The last index of positive weight: the answer when rounding puts `u` at `total`.
    last_positive: usize,
}

impl Cdf {
    /// The distribution proportional to `weights`. Every weight must be
    /// finite and non-negative, and at least one positive.
    pub(crate) fn new(weights: impl IntoIterator<Item = f64>) -> Self {
        let mut cumulative = Vec::new();
        let mut total = 0.0;
        let mut last_positive = None;
        for (i, w) in weights.into_iter().enumerate() {
            assert!(w.is_finite() && w >= 0.0, "weight {i} is {w}");
            if w > 0.0 {
                last_positive = Some(i);
            }
            total += w;
            cumulative.push(total);
        }
        let last_positive = last_positive.expect("a distribution needs a positive weight");
        Self {
            cumulative,
            last_positive,
        }
    }

    /// Zipf's law over ranks `0..n`: rank `r` has weight `(r + 1)^-exponent`.
    pub(crate) fn zipf(n: usize, exponent: f64) -> Self {
        Self::new((1..=n).map(|k| powf(k as f64, -exponent)))
    }

    /// Number of outcomes.
    pub(crate) fn len(&self) -> usize {
        self.cumulative.len()
    }

    /// Probability of outcome `i`.
    #[cfg(test)]
    pub(crate) fn probability(&self, i: usize) -> f64 {
        let below = if i == 0 { 0.0 } else { self.cumulative[i - 1] };
        (self.cumulative[i] - below) / self.total()
    }

    fn total(&self) -> f64 {
        self.cumulative[self.cumulative.len() - 1]
    }

    /// One draw.
    pub(crate) fn sample(&self, rng: &mut impl RngCore) -> usize {
        let u = unit(rng) * self.total();
        self.cumulative
            .partition_point(|&c| c <= u)
            .min(self.last_positive)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(f64::MIN_POSITIVE)
    }

    #[test]
    fn exp_matches_std_to_a_few_ulps() {
        let mut x = -700.0;
        while x < 700.0 {
            assert!(close(exp(x), x.exp(), 4e-16), "exp({x})");
            x += 0.37;
        }
        for x in [0.0, 1e-300, -1e-12, 0.5, -0.5, 1.0, 2.0, 0.3465, 709.0] {
            assert!(close(exp(x), x.exp(), 4e-16), "exp({x})");
        }
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-800.0), 0.0);
        assert_eq!(exp(800.0), f64::INFINITY);
        assert!(exp(f64::NAN).is_nan());
    }

    #[test]
    fn ln_matches_std_to_a_few_ulps() {
        let mut x = 1e-310;
        while x < 1e300 {
            assert!(close(ln(x), x.ln(), 4e-16), "ln({x})");
            x *= 1.37;
        }
        for x in [
            1.0f64 + 1e-12,
            1.0 - 1e-12,
            0.999,
            1.414,
            1.415,
            2.0,
            0.5,
            1e-5,
        ] {
            let e = x.ln();
            assert!((ln(x) - e).abs() <= 4e-16 * e.abs().max(1e-300), "ln({x})");
        }
        assert_eq!(ln(1.0), 0.0);
        assert_eq!(ln(0.0), f64::NEG_INFINITY);
        assert!(ln(-1.0).is_nan());
    }

    #[test]
    fn sigmoid_is_symmetric_and_saturates() {
        for x in [-30.0, -3.0, -0.2, 0.0, 0.7, 5.0, 40.0] {
            let s = sigmoid(x);
            assert!((0.0..=1.0).contains(&s));
            assert!((s + sigmoid(-x) - 1.0).abs() < 1e-15, "sigmoid({x})");
            assert!(close(s, 1.0 / (1.0 + (-x).exp()), 1e-14), "sigmoid({x})");
        }
        assert_eq!(sigmoid(0.0), 0.5);
        assert_eq!(sigmoid(-1000.0), 0.0);
        assert_eq!(sigmoid(1000.0), 1.0);
    }

    #[test]
    fn normal_has_unit_moments() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let n = 200_000;
        let draws: Vec<f64> = (0..n).map(|_| normal(&mut rng)).collect();
        let mean = draws.iter().sum::<f64>() / n as f64;
        let var = draws.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / n as f64;
        let within_one = draws.iter().filter(|d| d.abs() < 1.0).count() as f64 / n as f64;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.015, "variance {var}");
        assert!(
            (within_one - 0.6827).abs() < 0.005,
            "P(|z|<1) = {within_one}"
        );
    }

    #[test]
    fn cdf_samples_in_proportion_and_never_picks_zero_weights() {
        let cdf = Cdf::new([0.0, 1.0, 0.0, 3.0, 0.0]);
        assert_eq!(cdf.len(), 5);
        assert_eq!(cdf.probability(3), 0.75);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut counts = [0usize; 5];
        for _ in 0..40_000 {
            counts[cdf.sample(&mut rng)] += 1;
        }
        assert_eq!(counts[0] + counts[2] + counts[4], 0, "{counts:?}");
        let share = counts[3] as f64 / 40_000.0;
        assert!((share - 0.75).abs() < 0.01, "{share}");
    }

    #[test]
    fn zipf_weights_follow_the_power_law() {
        let cdf = Cdf::zipf(1000, 1.0);
        let ratio = cdf.probability(0) / cdf.probability(9);
        assert!(close(ratio, 10.0, 1e-12), "{ratio}");
        let uniform = Cdf::zipf(4, 0.0);
        assert!((0..4).all(|i| uniform.probability(i) == 0.25));
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut seen = [false; 7];
        for _ in 0..1000 {
            seen[below(&mut rng, 7) as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn mix53_is_a_bijection_into_53_bits() {
        let ids: std::collections::HashSet<u64> = (0..100_000u64).map(mix53).collect();
        assert_eq!(ids.len(), 100_000);
        assert!(ids.iter().all(|&id| id < 1 << ID_BITS));
        // Inputs near the top of the range collide neither with each other nor with small ones.
        let top: std::collections::HashSet<u64> =
            (0..10_000u64).map(|i| mix53(ID_MASK - i)).collect();
        assert_eq!(top.len(), 10_000);
        assert!(top.is_disjoint(&ids));
    }
}
