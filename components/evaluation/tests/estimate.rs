//! The estimators on hand-computed logs, their errors, and properties that
//! hold for any log.

use cx_evaluation::estimate::{Evaluator, Observation, Report};
use cx_evaluation::Error;
use proptest::prelude::*;

/// One event: (chosen, logging probability, reward, target, reward model).
type Event = (usize, f64, f64, Vec<f64>, Vec<f64>);

fn evaluate(events: &[Event], with_model: bool) -> cx_evaluation::Result<Report> {
    let mut evaluator = Evaluator::new(0.95)?;
    for (chosen, mu, reward, target, model) in events {
        evaluator.add(&Observation {
            reward: *reward,
            chosen: *chosen,
            logging_probability: *mu,
            target,
            reward_model: with_model.then_some(model.as_slice()),
        })?;
    }
    evaluator.finish()
}

fn close(got: f64, want: f64) {
    assert!((got - want).abs() < 1e-12, "got {got}, want {want}");
}

/// Four events worked by hand (docs/OPE.md repeats the formulas):
/// weights 2, 2, 0, 2; weighted rewards 2, 0, 0, 2;
/// DR terms 1.4, -0.5, 0.3, 1.4.
fn hand_log() -> Vec<Event> {
    vec![
        (0, 0.5, 1.0, vec![1.0, 0.0], vec![0.6, 0.2]),
        (1, 0.25, 0.0, vec![0.5, 0.5], vec![0.5, 0.5]),
        (0, 0.8, 0.0, vec![0.0, 1.0], vec![0.1, 0.3]),
        (1, 0.5, 1.0, vec![0.0, 1.0], vec![0.4, 0.6]),
    ]
}

#[test]
fn estimates_match_the_hand_computed_values() {
    let report = evaluate(&hand_log(), true).unwrap();
    let z = 1.959_963_984_540_054;
    assert_eq!(report.events, 4);
    // IPS: mean(2, 0, 0, 2) = 1; sample variance 4/3, SE^2 = 1/3.
    close(report.ips.value, 1.0);
    close(report.ips.std_error, (1.0f64 / 3.0).sqrt());
    assert!((report.ips.lower - (1.0 - z * (1.0f64 / 3.0).sqrt())).abs() < 1e-9);
    assert!((report.ips.upper - (1.0 + z * (1.0f64 / 3.0).sqrt())).abs() < 1e-9);
    // SNIPS: 4 / 6; delta method: (4/3 - 2 (2/3)(2/3) + (4/9) 1) / (4 * 1.5^2) = 8/81.
    close(report.snips.value, 2.0 / 3.0);
    close(report.snips.std_error, (8.0f64 / 81.0).sqrt());
    // DR: mean(1.4, -0.5, 0.3, 1.4) = 0.65; sample variance 2.57 / 3.
    let dr = report.dr.expect("a reward model was given");
    close(dr.value, 0.65);
    close(dr.std_error, (2.57f64 / 3.0 / 4.0).sqrt());
    // The logging policy: mean(1, 0, 0, 1), sample variance 1/3.
    close(report.logging_policy.value, 0.5);
    close(report.logging_policy.std_error, (1.0f64 / 12.0).sqrt());
    // ESS = 6^2 / 12.
    close(report.effective_sample_size, 3.0);
    close(report.weight_mean, 1.5);
    close(report.weight_max, 2.0);
    assert_eq!((report.reward_min, report.reward_max), (0.0, 1.0));
    assert!(evaluate(&hand_log(), false).unwrap().dr.is_none());
}

#[test]
fn the_level_sets_the_width() {
    let mut evaluator = Evaluator::new(0.5).unwrap();
    for (chosen, mu, reward, target, _) in &hand_log() {
        let obs = Observation {
            reward: *reward,
            chosen: *chosen,
            logging_probability: *mu,
            target,
            reward_model: None,
        };
        evaluator.add(&obs).unwrap();
    }
    let report = evaluator.finish().unwrap();
    // z(0.5) = 0.6744897501960817.
    let half = report.ips.upper - report.ips.value;
    assert!((half - 0.674_489_750_196_081_7 * report.ips.std_error).abs() < 1e-9);
    assert_eq!(report.level, 0.5);
    for level in [0.0, 1.0, -0.5, f64::NAN] {
        assert!(matches!(
            Evaluator::new(level),
            Err(Error::Parameter { name: "level", .. })
        ));
    }
}

#[test]
fn unusable_logs_and_observations_are_refused_by_name() {
    assert!(matches!(evaluate(&[], false), Err(Error::EmptyLog)));
    let one = &hand_log()[..1];
    assert!(matches!(
        evaluate(one, false),
        Err(Error::TooFewEvents { events: 1 })
    ));
    let no_overlap = vec![
        (0, 0.5, 1.0, vec![0.0, 1.0], vec![0.0, 0.0]),
        (0, 0.5, 0.0, vec![0.0, 1.0], vec![0.0, 0.0]),
    ];
    let err = evaluate(&no_overlap, false).unwrap_err();
    assert!(matches!(err, Error::NoOverlap { events: 2 }), "{err}");
    assert!(err.to_string().contains("probability 0"), "{err}");

    let cases: [(Event, &str, &str); 7] = [
        (
            (0, 0.5, 1.0, vec![0.0, 0.0], vec![0.0; 2]),
            "target",
            "no probability",
        ),
        (
            (0, 0.5, 1.0, vec![0.5, 0.6], vec![0.0; 2]),
            "target",
            "sums to",
        ),
        (
            (0, 0.5, 1.0, vec![-0.1, 1.1], vec![0.0; 2]),
            "target",
            "outside [0, 1]",
        ),
        (
            (0, 0.0, 1.0, vec![1.0, 0.0], vec![0.0; 2]),
            "logging_probability",
            "(0, 1]",
        ),
        (
            (0, 1.5, 1.0, vec![1.0, 0.0], vec![0.0; 2]),
            "logging_probability",
            "(0, 1]",
        ),
        (
            (2, 0.5, 1.0, vec![1.0, 0.0], vec![0.0; 2]),
            "chosen",
            "2 actions",
        ),
        (
            (0, 0.5, f64::NAN, vec![1.0, 0.0], vec![0.0; 2]),
            "reward",
            "not finite",
        ),
    ];
    for (event, field, words) in cases {
        let log = vec![hand_log()[0].clone(), event];
        let err = evaluate(&log, false).unwrap_err();
        let Error::Observation {
            event: 1, field: f, ..
        } = &err
        else {
            panic!("{err}");
        };
        assert_eq!(*f, field, "{err}");
        assert!(err.to_string().contains(words), "{err}");
    }

    let mut evaluator = Evaluator::new(0.95).unwrap();
    let target = [1.0, 0.0];
    let mut obs = Observation {
        reward: 1.0,
        chosen: 0,
        logging_probability: 0.5,
        target: &target,
        reward_model: Some(&[0.5, 0.5]),
    };
    evaluator.add(&obs).unwrap();
    obs.reward_model = None;
    let err = evaluator.add(&obs).unwrap_err();
    assert!(
        err.to_string().contains("some events and not others"),
        "{err}"
    );
    obs.reward_model = Some(&[0.5]);
    assert!(evaluator.add(&obs).is_err());
    obs.reward_model = Some(&[0.5, f64::INFINITY]);
    assert!(evaluator.add(&obs).is_err());
    assert_eq!(evaluator.events(), 1, "refused observations change nothing");
}

/// (logging weights, target weights, chosen, reward, reward model).
type RandomEvent = (Vec<f64>, Vec<f64>, usize, f64, Vec<f64>);

/// A random log: each event's logging and target distributions over `k`
/// actions, the action taken, its reward in [0, 1] and a reward model.
fn logs() -> impl Strategy<Value = Vec<RandomEvent>> {
    let event = (2usize..6).prop_flat_map(|k| {
        (
            prop::collection::vec(0.05f64..1.0, k),
            prop::collection::vec(0.0f64..1.0, k),
            0..k,
            prop_oneof![Just(0.0), Just(1.0), 0.0f64..1.0],
            prop::collection::vec(0.0f64..1.0, k),
        )
    });
    prop::collection::vec(event, 2..60)
}

fn normalised(weights: &[f64]) -> Vec<f64> {
    let sum: f64 = weights.iter().sum();
    if sum == 0.0 {
        return vec![1.0 / weights.len() as f64; weights.len()];
    }
    weights.iter().map(|w| w / sum).collect()
}

proptest! {
    #[test]
    fn weights_are_non_negative_and_snips_stays_in_the_reward_range(log in logs()) {
        let mut evaluator = Evaluator::new(0.95).unwrap();
        for (logging, target, chosen, reward, model) in &log {
            let logging = normalised(logging);
            let target = normalised(target);
            evaluator.add(&Observation {
                reward: *reward,
                chosen: *chosen,
                logging_probability: logging[*chosen],
                target: &target,
                reward_model: Some(model),
            }).unwrap();
        }
        match evaluator.finish() {
            Ok(report) => {
                let n = log.len() as f64;
                prop_assert!(report.weight_mean >= 0.0 && report.weight_max >= 0.0);
                prop_assert!(report.effective_sample_size >= 1.0 - 1e-9);
                prop_assert!(report.effective_sample_size <= n + 1e-9);
                prop_assert!(report.snips.value >= report.reward_min - 1e-12);
                prop_assert!(report.snips.value <= report.reward_max + 1e-12);
                prop_assert!(report.ips.value >= 0.0);
                for estimate in [report.ips, report.snips, report.dr.unwrap(), report.logging_policy] {
                    prop_assert!(estimate.std_error >= 0.0);
                    prop_assert!(estimate.lower <= estimate.value && estimate.value <= estimate.upper);
                }
            }
            Err(Error::NoOverlap { .. }) => {}
            Err(other) => prop_assert!(false, "{}", other),
        }
    }

    #[test]
    fn ips_is_the_on_policy_mean_when_the_target_is_the_logging_policy(log in logs()) {
        let mut evaluator = Evaluator::new(0.95).unwrap();
        let mut rewards = 0.0;
        for (logging, _, chosen, reward, _) in &log {
            let logging = normalised(logging);
            evaluator.add(&Observation {
                reward: *reward,
                chosen: *chosen,
                logging_probability: logging[*chosen],
                target: &logging,
                reward_model: None,
            }).unwrap();
            rewards += reward;
        }
        let report = evaluator.finish().unwrap();
        let mean = rewards / log.len() as f64;
        prop_assert!((report.ips.value - mean).abs() < 1e-12);
        prop_assert!((report.snips.value - mean).abs() < 1e-12);
        prop_assert!((report.logging_policy.value - mean).abs() < 1e-12);
        prop_assert!((report.ips.std_error - report.logging_policy.std_error).abs() < 1e-9);
        prop_assert!((report.effective_sample_size - log.len() as f64).abs() < 1e-9);
    }

    #[test]
    fn dr_with_a_zero_reward_model_is_ips(log in logs()) {
        let mut evaluator = Evaluator::new(0.9).unwrap();
        for (logging, target, chosen, reward, model) in &log {
            let logging = normalised(logging);
            let target = normalised(target);
            let zeros = vec![0.0; model.len()];
            evaluator.add(&Observation {
                reward: *reward,
                chosen: *chosen,
                logging_probability: logging[*chosen],
                target: &target,
                reward_model: Some(&zeros),
            }).unwrap();
        }
        if let Ok(report) = evaluator.finish() {
            let dr = report.dr.unwrap();
            prop_assert!((dr.value - report.ips.value).abs() < 1e-12);
            prop_assert!((dr.std_error - report.ips.std_error).abs() < 1e-9);
        }
    }
}
