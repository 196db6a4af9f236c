//! `cx experiment simulate`: experiments run live through the engine on
//! the synthetic world. A truly worse control is detected by the mSPRT in
//! the right direction, an A/A split is not, and a skewed assignment is
//! flagged by the SRM check. Seeds are fixed, so every figure here is
//! deterministic; the 200-seed figures are in docs/EXPERIMENTS.md.

use cx_server::simulate::ab::{simulate, AbSpec};

fn spec(seeds: u64, requests: u64) -> AbSpec {
    AbSpec {
        seeds,
        seed: 1,
        requests,
        look_every: 100,
        control_noise: 0.0,
        treatment_noise: 0.0,
        assigned_control_share: 0.5,
        configured_control_share: 0.5,
        alpha: 0.05,
        world_seed: 42,
    }
}

#[test]
fn a_truly_worse_control_is_detected_in_the_right_direction() {
    let summary = simulate(
        AbSpec {
            control_noise: 2.0,
            ..spec(3, 40_000)
        },
        |_| {},
    )
    .expect("runs");
    assert_ne!(summary.models[0], summary.models[1]);
    assert_eq!(
        summary.treatment_truly_better, 3,
        "{:?}",
        summary.true_ctr_mean
    );
    assert!(summary.sequential_rejection_rate > 0.5, "{summary:?}");
    assert_eq!(summary.sequential_right_direction_rate, Some(1.0));
    assert_eq!(summary.srm_flag_rate, 0.0);
    for run in &summary.runs {
        assert_eq!(run.assigned.iter().sum::<u64>(), 40_000);
        assert!(run.impressions[0] > 15_000 && run.impressions[1] > 15_000);
    }
}

#[test]
fn an_a_a_split_is_not_called_and_a_skewed_one_is_flagged() {
    let aa = simulate(spec(3, 10_000), |_| {}).expect("runs");
    assert_eq!(
        aa.models[0], aa.models[1],
        "both arms serve the bundled model"
    );
    assert_eq!(aa.sequential_rejection_rate, 0.0, "{aa:?}");
    assert_eq!(aa.srm_flag_rate, 0.0);
    let skewed = simulate(
        AbSpec {
            assigned_control_share: 0.55,
            ..spec(2, 10_000)
        },
        |_| {},
    )
    .expect("runs");
    assert_eq!(skewed.srm_flag_rate, 1.0, "{skewed:?}");
}

#[test]
fn bad_settings_are_refused_by_name() {
    for (edit, name) in [
        (
            AbSpec {
                seeds: 0,
                ..spec(1, 1)
            },
            "--seeds",
        ),
        (
            AbSpec {
                control_noise: f64::NAN,
                ..spec(1, 1)
            },
            "--control-noise",
        ),
        (
            AbSpec {
                assigned_control_share: 1.0,
                ..spec(1, 1)
            },
            "--assigned-control-share",
        ),
        (
            AbSpec {
                alpha: 0.0,
                ..spec(1, 1)
            },
            "--alpha",
        ),
        (
            AbSpec {
                look_every: 0,
                ..spec(1, 1)
            },
            "--look-every",
        ),
    ] {
        let err = simulate(edit, |_| {}).expect_err(name);
        assert!(err.to_string().contains(name), "{err}");
    }
}
