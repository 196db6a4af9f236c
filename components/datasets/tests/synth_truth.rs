//! The ground truth of every offer in a row's context
//! (`Generator::row_with_truth`, `truth_at`, `p_true_for`).

use cx_datasets::synth::SynthConfig;
use cx_datasets::{Error, Generator};

#[test]
fn the_truth_of_the_rows_own_offer_is_its_p_true_bit_for_bit() {
    for seed in [2024, 7] {
        let generator = Generator::new(SynthConfig::default(), seed).unwrap();
        for index in 0..2000 {
            let (row, truth) = generator.row_with_truth(index);
            assert_eq!(row, generator.row_at(index), "row {index} is unchanged");
            let own = generator.offer_index(row.offer_id).unwrap();
            assert_eq!(row.offer_id, 1000 + own as u64);
            assert_eq!(
                truth.p_true(own).unwrap().to_bits(),
                row.p_true.to_bits(),
                "seed {seed} row {index}"
            );
            assert_eq!(
                generator.p_true_for(index, own).unwrap().to_bits(),
                row.p_true.to_bits()
            );
        }
    }
}

#[test]
fn the_truth_is_deterministic_and_covers_every_offer() {
    let a = Generator::new(SynthConfig::default(), 2024).unwrap();
    let b = Generator::new(SynthConfig::default(), 2024).unwrap();
    let truth = a.truth_at(17);
    assert_eq!(truth, b.truth_at(17));
    assert_eq!(truth.offers(), a.offers().len());
    for o in 0..truth.offers() {
        let p = truth.p_true(o).unwrap();
        assert!(p > 0.0 && p < 1.0, "offer {o}: {p}");
    }
    assert_eq!(truth.p_true(truth.offers()), None);
    assert_ne!(truth, a.truth_at(18), "another context, another truth");
}

#[test]
fn offers_differ_within_a_context_and_the_best_one_varies() {
    let generator = Generator::new(SynthConfig::default(), 2024).unwrap();
    let mut best = std::collections::HashSet::new();
    for index in 0..500 {
        let truth = generator.truth_at(index);
        let logits = truth.logits();
        let (lo, hi) = logits
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), &z| (lo.min(z), hi.max(z)));
        assert!(hi - lo > 0.1, "row {index}: offers barely differ");
        let argmax = (0..logits.len())
            .max_by(|&i, &j| logits[i].total_cmp(&logits[j]))
            .unwrap();
        best.insert(argmax);
    }
    assert!(
        best.len() >= 4,
        "the best offer depends on the context: {best:?}"
    );
}

#[test]
fn an_offer_past_the_catalog_is_refused_by_name() {
    let generator = Generator::new(SynthConfig::default(), 2024).unwrap();
    let error = generator.p_true_for(0, 16).unwrap_err();
    assert!(matches!(error, Error::BadInput(_)));
    assert!(
        error
            .to_string()
            .contains("offer index 16 is past the catalog of 16 offers"),
        "{error}"
    );
    assert_eq!(generator.offer_index(999), None);
}
