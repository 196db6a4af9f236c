//! Bucket ranges: how GrowthBook splits `[0, 1)` among an experiment's
//! variations (`getEqualWeights`, `getBucketRanges`), which range a bucket
//! falls in (`chooseVariation`), and namespaces (`inNamespace`).
//!
//! A range is half-open, `[start, end)`. Variation `i` owns the range that
//! starts at the sum of the weights before it and is `coverage * weight_i`
//! wide, so lowering the coverage shrinks every range from its end and
//! never moves a user from one variation to another.

use crate::hash::{hash, HashVersion};

/// A half-open bucket range `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketRange {
    /// Inclusive start.
    pub start: f64,
    /// Exclusive end.
    pub end: f64,
}

impl BucketRange {
    /// `[start, end)`.
    pub const fn new(start: f64, end: f64) -> Self {
        Self { start, end }
    }

    /// Whether `n` lies in `[start, end)` (GrowthBook's `inRange`).
    pub fn contains(&self, n: f64) -> bool {
        n >= self.start && n < self.end
    }
}

/// Lowest sum of weights GrowthBook accepts as "adds up to 1".
pub const WEIGHT_SUM_MIN: f64 = 0.99;
/// Highest sum of weights GrowthBook accepts as "adds up to 1".
pub const WEIGHT_SUM_MAX: f64 = 1.01;

/// `n` equal weights of `1 / n` (none for `n <= 0`): GrowthBook's
/// `getEqualWeights`.
pub fn equal_weights(n: i64) -> Vec<f64> {
    match usize::try_from(n) {
        Ok(n) if n > 0 => vec![1.0 / n as f64; n],
        _ => Vec::new(),
    }
}

/// Whether `weights` can be used as given for `variations` variations: one
/// per variation, summing to 1 within [`WEIGHT_SUM_MIN`]..=[`WEIGHT_SUM_MAX`].
/// GrowthBook replaces unusable weights by equal ones.
pub fn weights_usable(weights: &[f64], variations: usize) -> bool {
    let total: f64 = weights.iter().sum();
    weights.len() == variations && (WEIGHT_SUM_MIN..=WEIGHT_SUM_MAX).contains(&total)
}

/// GrowthBook's `getBucketRanges`: one range per variation. `coverage` is
/// clamped to `[0, 1]`; `weights` that are missing, of the wrong length or
/// do not sum to about 1 are replaced by equal weights.
pub fn bucket_ranges(
    variations: usize,
    coverage: f64,
    weights: Option<&[f64]>,
) -> Vec<BucketRange> {
    let coverage = if coverage.is_nan() {
        0.0
    } else {
        coverage.clamp(0.0, 1.0)
    };
    let equal = equal_weights(i64::try_from(variations).unwrap_or(i64::MAX));
    let weights = match weights {
        Some(w) if weights_usable(w, variations) => w,
        _ => &equal,
    };
    let mut cumulative = 0.0;
    weights
        .iter()
        .map(|&w| {
            let start = cumulative;
            cumulative += w;
            BucketRange::new(start, start + coverage * w)
        })
        .collect()
}

/// GrowthBook's `chooseVariation`: the index of the first range holding
/// `n`, or `None` (GrowthBook's -1) when none does.
pub fn choose_variation(n: f64, ranges: &[BucketRange]) -> Option<usize> {
    ranges.iter().position(|r| r.contains(n))
}

/// GrowthBook's `inNamespace`: whether `hash_value`, hashed (version 1)
/// with the seed `"__" + id`, falls in `[start, end)`.
pub fn in_namespace(hash_value: &str, id: &str, start: f64, end: f64) -> bool {
    let mut seed = NamespaceSeed::default();
    in_namespace_seeded(hash_value, seed.of(id), start, end)
}

/// [`in_namespace`] with the seed (`"__" + id`) already built.
pub(crate) fn in_namespace_seeded(hash_value: &str, seed: &str, start: f64, end: f64) -> bool {
    let n = hash(seed, hash_value, HashVersion::V1);
    n >= start && n < end
}

/// Builds a namespace's seed, `"__" + id`, reusing its buffer.
#[derive(Debug, Default)]
pub(crate) struct NamespaceSeed(String);

impl NamespaceSeed {
    /// `"__" + id`.
    pub(crate) fn of(&mut self, id: &str) -> &str {
        self.0.clear();
        self.0.push_str("__");
        self.0.push_str(id);
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_shrink_from_their_end_under_coverage() {
        let ranges = bucket_ranges(2, 0.5, None);
        assert_eq!(
            ranges,
            [BucketRange::new(0.0, 0.25), BucketRange::new(0.5, 0.75)]
        );
    }

    #[test]
    fn nan_coverage_covers_nobody() {
        let ranges = bucket_ranges(2, f64::NAN, None);
        assert!(ranges.iter().all(|r| r.start == r.end));
    }

    #[test]
    fn choose_variation_is_half_open() {
        let ranges = [BucketRange::new(0.0, 0.5), BucketRange::new(0.5, 1.0)];
        assert_eq!(choose_variation(0.5, &ranges), Some(1));
        assert_eq!(choose_variation(1.0, &ranges), None);
        assert_eq!(choose_variation(-0.1, &ranges), None);
    }
}
