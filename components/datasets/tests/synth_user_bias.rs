//! The users' hidden click bias (`user_bias_sd`): it changes only the
//! click logit, by the same amount on every row of a user, and a user's
//! past clicks reveal it.

use cx_datasets::synth::{Generator, SynthConfig};
use std::collections::HashMap;

fn generator(user_bias_sd: f64) -> Generator {
    let config = SynthConfig {
        users: 2_000,
        user_bias_sd,
        ..SynthConfig::default()
    };
    Generator::new(config, 7).expect("generator")
}

#[test]
fn the_bias_moves_every_logit_of_a_user_by_one_amount_and_nothing_else() {
    let plain = generator(0.0);
    let biased = generator(1.0);
    let intercepts = biased.intercept() - plain.intercept();
    let mut bias_of: HashMap<u64, f64> = HashMap::new();
    let mut users_seen_twice = 0;
    for i in 0..3_000 {
        let (a, truth_a) = plain.row_with_truth(i);
        let (b, truth_b) = biased.row_with_truth(i);
        // Same context, same offer: only the click and its probability differ.
        assert_eq!(
            (a.user_id, a.offer_id, a.ts_unix),
            (b.user_id, b.offer_id, b.ts_unix)
        );
        assert_eq!((&a.domain, &a.segments), (&b.domain, &b.segments));
        for offer in 0..truth_a.offers() {
            let shift = truth_b.logit(offer).unwrap() - truth_a.logit(offer).unwrap() - intercepts;
            match bias_of.get(&a.user_id) {
                Some(&bias) => {
                    assert!((shift - bias).abs() < 1e-9, "row {i} offer {offer}");
                    users_seen_twice += usize::from(offer == 0);
                }
                None => {
                    bias_of.insert(a.user_id, shift);
                }
            }
        }
    }
    assert!(users_seen_twice > 100, "{users_seen_twice}");
    let n = bias_of.len() as f64;
    let mean = bias_of.values().sum::<f64>() / n;
    let sd = (bias_of.values().map(|b| (b - mean).powi(2)).sum::<f64>() / n).sqrt();
    assert!((0.8..1.2).contains(&sd), "sd of the user biases: {sd}");
}

#[test]
fn a_users_past_click_rate_predicts_their_later_clicks_only_with_a_bias() {
    // Per user: clicks in the first and the second half of the rows.
    let correlation = |g: &Generator| {
        let mut halves: HashMap<u64, [(f64, f64); 2]> = HashMap::new();
        let rows = 60_000;
        for i in 0..rows {
            let row = g.row_at(i);
            let h = &mut halves.entry(row.user_id).or_default()[usize::from(i >= rows / 2)];
            h.0 += f64::from(u8::from(row.click));
            h.1 += 1.0;
        }
        let pairs: Vec<(f64, f64)> = halves
            .values()
            .filter(|h| h[0].1 >= 20.0 && h[1].1 >= 20.0)
            .map(|h| (h[0].0 / h[0].1, h[1].0 / h[1].1))
            .collect();
        let n = pairs.len() as f64;
        let (mx, my) = (
            pairs.iter().map(|p| p.0).sum::<f64>() / n,
            pairs.iter().map(|p| p.1).sum::<f64>() / n,
        );
        let cov: f64 = pairs.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
        let vx: f64 = pairs.iter().map(|p| (p.0 - mx).powi(2)).sum();
        let vy: f64 = pairs.iter().map(|p| (p.1 - my).powi(2)).sum();
        (cov / (vx * vy).sqrt(), pairs.len())
    };
    let (with_bias, users) = correlation(&generator(1.0));
    let (without, _) = correlation(&generator(0.0));
    assert!(users > 200, "{users}");
    assert!(with_bias > 0.3, "with a bias: {with_bias}");
    assert!(with_bias > without + 0.15, "{with_bias} against {without}");
}
