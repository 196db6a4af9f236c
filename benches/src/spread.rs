//! [`Spread`]: the median of a measurement repeated several times, with its
//! range. The benchmark reports quote medians over repeats and the range
//! beside them (docs/BENCHMARKS.md), because the machines are shared and
//! noisy.

use serde::{Deserialize, Serialize};

/// The median and range of one quantity over repeats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// The median (of an even count, the mean of the middle two).
    pub median: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
}

impl Spread {
    /// The spread of `values`; all zeros if there are none.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Self {
        let mut v: Vec<f64> = values.into_iter().collect();
        if v.is_empty() {
            return Self::default();
        }
        v.sort_by(f64::total_cmp);
        Self {
            median: median_of_sorted(&v),
            min: v[0],
            max: v[v.len() - 1],
        }
    }

    /// `median [min-max]` with `decimals` digits after the point.
    pub fn show(&self, decimals: usize) -> String {
        format!(
            "{:.d$} [{:.d$}-{:.d$}]",
            self.median,
            self.min,
            self.max,
            d = decimals
        )
    }
}

/// The median of sorted, non-empty `v`.
fn median_of_sorted(v: &[f64]) -> f64 {
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::Spread;

    #[test]
    fn odd_and_even_counts() {
        let s = Spread::of([3.0, 1.0, 2.0]);
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        let s = Spread::of([4.0, 1.0, 2.0, 3.0]);
        assert_eq!((s.median, s.min, s.max), (2.5, 1.0, 4.0));
        assert_eq!(Spread::of([]), Spread::default());
        assert_eq!(Spread::of([1.0, 2.0, 3.0]).show(1), "2.0 [1.0-3.0]");
    }
}
