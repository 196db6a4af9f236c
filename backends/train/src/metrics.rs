//! Quality metrics of probabilistic predictions: ROC AUC, log loss, and a
//! calibration (reliability) table. Pure functions over slices.

/// Area under the ROC curve of `score` against binary `label` (1.0 = positive),
/// by the rank-sum formula with ties given their average rank. `None` when
/// either class is absent, where AUC is undefined.
pub fn auc(score: &[f32], label: &[f32]) -> Option<f64> {
    assert_eq!(score.len(), label.len(), "one label per score");
    let positives = label.iter().filter(|&&y| y == 1.0).count();
    let negatives = label.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..score.len()).collect();
    order.sort_by(|&a, &b| score[a].total_cmp(&score[b]));
    let mut rank_sum_pos = 0.0f64;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && score[order[j + 1]] == score[order[i]] {
            j += 1;
        }
        let average_rank = (i + j) as f64 / 2.0 + 1.0;
        let tied_positives = order[i..=j].iter().filter(|&&k| label[k] == 1.0).count();
        rank_sum_pos += average_rank * tied_positives as f64;
        i = j + 1;
    }
    let (p, n) = (positives as f64, negatives as f64);
    Some((rank_sum_pos - p * (p + 1.0) / 2.0) / (p * n))
}

/// Mean binary cross-entropy, with probabilities clamped to `[1e-7, 1 - 1e-7]`.
pub fn log_loss(probability: &[f32], label: &[f32]) -> f64 {
    assert_eq!(probability.len(), label.len(), "one label per probability");
    if label.is_empty() {
        return 0.0;
    }
    let total: f64 = probability
        .iter()
        .zip(label)
        .map(|(&p, &y)| {
            let p = (p as f64).clamp(1e-7, 1.0 - 1e-7);
            -(y as f64 * p.ln() + (1.0 - y as f64) * (1.0 - p).ln())
        })
        .sum();
    total / label.len() as f64
}

/// One bin of a reliability table.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CalibrationBin {
    /// Lower edge of the bin's probability range.
    pub low: f32,
    /// Upper edge.
    pub high: f32,
    /// Rows whose prediction falls in the bin.
    pub rows: usize,
    /// Mean prediction of those rows.
    pub predicted_mean: f64,
    /// Observed positive rate of those rows.
    pub observed_rate: f64,
}

/// A reliability table over `bins` equal-width probability bins.
pub fn calibration_table(probability: &[f32], label: &[f32], bins: usize) -> Vec<CalibrationBin> {
    assert_eq!(probability.len(), label.len(), "one label per probability");
    let bins = bins.max(1);
    let mut sum_p = vec![0.0f64; bins];
    let mut sum_y = vec![0.0f64; bins];
    let mut rows = vec![0usize; bins];
    for (&p, &y) in probability.iter().zip(label) {
        let b = ((p.clamp(0.0, 1.0) * bins as f32) as usize).min(bins - 1);
        sum_p[b] += p as f64;
        sum_y[b] += y as f64;
        rows[b] += 1;
    }
    (0..bins)
        .map(|b| CalibrationBin {
            low: b as f32 / bins as f32,
            high: (b + 1) as f32 / bins as f32,
            rows: rows[b],
            predicted_mean: if rows[b] > 0 {
                sum_p[b] / rows[b] as f64
            } else {
                0.0
            },
            observed_rate: if rows[b] > 0 {
                sum_y[b] / rows[b] as f64
            } else {
                0.0
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_of_a_perfect_ranking_is_one_and_of_a_reversed_one_zero() {
        let label = [0.0, 0.0, 1.0, 1.0];
        assert_eq!(auc(&[0.1, 0.2, 0.8, 0.9], &label), Some(1.0));
        assert_eq!(auc(&[0.9, 0.8, 0.2, 0.1], &label), Some(0.0));
    }

    #[test]
    fn auc_counts_ties_as_half() {
        // One positive tied with one negative, another positive above all: (1 + 0.5 + 1 + 1) / 4.
        let score = [0.5, 0.5, 0.1, 0.9];
        let label = [1.0, 0.0, 0.0, 1.0];
        assert_eq!(auc(&score, &label), Some(0.875));
    }

    #[test]
    fn auc_is_undefined_with_one_class() {
        assert_eq!(auc(&[0.1, 0.2], &[1.0, 1.0]), None);
    }

    #[test]
    fn log_loss_matches_the_formula() {
        let got = log_loss(&[0.8, 0.25], &[1.0, 0.0]);
        let want = -(0.8f64.ln() + 0.75f64.ln()) / 2.0;
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    }

    #[test]
    fn calibration_table_bins_rows() {
        let table = calibration_table(&[0.05, 0.15, 0.12, 0.95], &[0.0, 1.0, 0.0, 1.0], 10);
        assert_eq!(table.len(), 10);
        assert_eq!(table[1].rows, 2);
        assert!((table[1].observed_rate - 0.5).abs() < 1e-9);
        assert_eq!(table[9].rows, 1, "p = 0.95 lands in the top bin");
    }
}
