//! `cx simulate` end to end on a short run: the report's shape, budgets
//! and caps kept, determinism, the figures and the DSJSON log, and the
//! creative scenario.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;

fn dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&dir).expect("create dir");
    dir
}

fn simulate(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_cx"))
        .arg("simulate")
        .args(args)
        .output()
        .expect("run cx simulate")
}

/// Runs 20 000 decisions of `seed` into `dir`, returning the report's text.
fn run_into(dir: &Path, seed: &str, extra: &[&str]) -> String {
    let json = dir.join("report.json");
    let svg = dir.join("svg");
    let dsjson = dir.join("thompson.dsjson");
    let mut args = vec![
        "--decisions",
        "20000",
        "--seed",
        seed,
        "--json",
        json.to_str().unwrap(),
        "--svg",
        svg.to_str().unwrap(),
        "--dsjson",
        dsjson.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let output = simulate(&args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("20000 decisions per policy"), "{stdout}");
    std::fs::read_to_string(json).expect("report written")
}

/// Runs `cx simulate` with `args` and `--json` into `dir`, which must
/// succeed; returns the report.
fn report_of(dir: &Path, args: &[&str]) -> Value {
    let json = dir.join("report.json");
    let mut all = args.to_vec();
    all.extend(["--json", json.to_str().unwrap()]);
    let output = simulate(&all);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(&json).expect("report")).expect("JSON")
}

fn f(v: &Value, path: &str) -> f64 {
    path.split('.')
        .fold(v, |v, key| &v[key])
        .as_f64()
        .unwrap_or_else(|| panic!("{path} is not a number"))
}

#[test]
fn a_short_run_reports_every_policy_and_keeps_budgets_and_caps() {
    let out = dir("simulate_a");
    // Budgets 1/5000 of the catalog's, so that they bind within the run.
    let text = run_into(&out, "3", &["--budget-scale", "0.0002"]);
    let report: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(report["decisions"], 20000);
    assert_eq!(report["scenario"], "default");
    assert_eq!(report["settlement"], "auction");
    for name in ["thompson", "greedy", "random"] {
        let p = &report["policies"][name];
        assert_eq!(p["decisions"], 20000, "{name}");
        let regret = f(p, "cumulative_regret");
        let ctr = f(p, "ctr");
        assert!(regret > 0.0 && regret < 20000.0, "{name}: {regret}");
        assert!(ctr > 0.0 && ctr < 1.0, "{name}: {ctr}");
        let series = p["series"].as_array().expect("series");
        assert_eq!(series.len(), 200, "{name}");
        assert_eq!(series[199]["decisions"], 20000);
        assert_eq!(f(&series[199], "cumulative_regret"), regret);
        let applied = &p["feedback"]["applied"];
        assert_eq!(applied["impression"], p["impressions"], "{name}");
        assert_eq!(applied["click"], p["clicks"], "{name}");
        assert_eq!(
            p["feedback"]["refused"],
            serde_json::json!({}),
            "{name}: no event refused"
        );
    }
    // Uniform choice does worse than either model-driven policy.
    let regret = |name: &str| f(&report["policies"][name], "cumulative_regret");
    assert!(regret("random") > 1.3 * regret("greedy"), "{report}");
    assert!(regret("random") > 1.3 * regret("thompson"), "{report}");
    // Budgets bound (offers were excluded for them) and none was overspent.
    let excluded: u64 = ["thompson", "greedy", "random"]
        .iter()
        .map(|n| {
            report["policies"][n]["excluded_by_budget"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert!(excluded > 0, "the scaled budgets never bound: {report}");
    assert!(f(&report, "budget_overspend") <= 0.0, "{report}");
    assert_eq!(report["cap_violations"], 0);
    // Off-policy evaluation of greedy from thompson's log.
    let ope = &report["ope"];
    assert_eq!(ope["target_policy"], "greedy");
    let (lower, upper) = (f(ope, "ips.lower"), f(ope, "ips.upper"));
    let truth = f(ope, "greedy_true_value");
    assert!(lower < upper && truth > 0.0 && truth < 1.0, "{ope}");
    assert_eq!(ope["ips_covers_truth"], lower <= truth && truth <= upper);
    // The figures and the log.
    for name in ["regret.svg", "ctr.svg"] {
        let svg = std::fs::read_to_string(out.join("svg").join(name)).expect(name);
        assert!(
            svg.starts_with("<svg") && svg.contains("thompson"),
            "{name}"
        );
    }
    let log = std::fs::read_to_string(out.join("thompson.dsjson")).expect("dsjson");
    assert_eq!(
        log.lines().count() as u64,
        ope["events"].as_u64().unwrap() + ope["unsupported"].as_u64().unwrap()
    );
    let mut reader = cx_evaluation::DsjsonReader::new(log.as_bytes());
    let (_, first) = reader.next_event().expect("valid").expect("an event");
    assert!((1000..1016).contains(&first.offers[0]));
}

#[test]
fn the_same_seed_gives_the_same_report() {
    let a = run_into(&dir("simulate_same_a"), "3", &["--scenario", "shift"]);
    let b = run_into(&dir("simulate_same_b"), "3", &["--scenario", "shift"]);
    assert_eq!(a, b);
    let report: Value = serde_json::from_str(&a).unwrap();
    let shift = &report["shift"];
    assert_eq!(shift["at_decision"], 10000);
    let shares = shift["policies"]["greedy"]["offer_share_by_quarter"]
        .as_array()
        .unwrap();
    assert!(
        shares[0].as_f64().unwrap() > 0.0,
        "the shifted offer was chosen before: {shift}"
    );
    let other = run_into(&dir("simulate_seed_4"), "4", &["--scenario", "shift"]);
    assert_ne!(a, other);
}

#[test]
fn the_creative_scenario_learns_the_variant_clicked_twice_as_often() {
    let out = dir("simulate_creative");
    let report = report_of(&out, &["--decisions", "20000", "--scenario", "creative"]);
    let creative = &report["creative"];
    assert_eq!(creative["best_variant"], 1);
    assert_eq!(
        creative["variant_click_rates"],
        serde_json::json!([1.0, 2.0, 1.0])
    );
    let offer = creative["offer_id"].as_u64().expect("an offer id");
    assert!((1000..1016).contains(&offer), "{creative}");
    assert!(report["ope"].is_null(), "no off-policy evaluation here");
    for name in ["thompson", "greedy", "random"] {
        let p = &creative["policies"][name];
        let by_variant: Vec<u64> = p["impressions_by_variant"]
            .as_array()
            .expect("per variant")
            .iter()
            .map(|n| n.as_u64().unwrap())
            .collect();
        assert_eq!(
            by_variant.iter().sum::<u64>(),
            p["impressions"].as_u64().unwrap()
        );
        assert!(
            by_variant.iter().all(|&n| n > 0),
            "{name}: every variant tried: {p}"
        );
        if name != "random" {
            // The offer is shown often enough by the model-driven policies
            // for its variants' clicks to tell them apart.
            assert!(
                by_variant[1] > by_variant[0] && by_variant[1] > by_variant[2],
                "{name}: {p}"
            );
        }
    }
    // A DSJSON log is refused there, before anything is written.
    let log = out.join("refused.dsjson");
    let refused = simulate(&[
        "--decisions",
        "100",
        "--scenario",
        "creative",
        "--json",
        out.join("refused.json").to_str().unwrap(),
        "--dsjson",
        log.to_str().unwrap(),
    ]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("--dsjson is not written under --scenario creative"),
        "{stderr}"
    );
    assert!(
        !log.exists() && !out.join("refused.json").exists(),
        "nothing written"
    );
}

/// In a world Thompson sampling can learn (the model's own probability
/// times a hidden factor per offer), its regret per decision falls quarter
/// by quarter and grows sublinearly, while greedy's stays linear.
#[test]
fn in_the_calibrated_world_thompson_s_regret_grows_sublinearly() {
    let report = report_of(
        &dir("simulate_calibrated"),
        &[
            "--decisions",
            "20000",
            "--scenario",
            "calibrated",
            "--half-life-s",
            "0",
        ],
    );
    let factors = report["calibration_factors"].as_object().expect("factors");
    assert_eq!(factors.len(), 8);
    let values: Vec<f64> = factors.values().map(|v| v.as_f64().unwrap()).collect();
    assert!(values.contains(&0.5) && values.contains(&2.0), "{values:?}");
    assert_eq!(report["cap_violations"], 0);
    let policy = |name: &str| &report["policies"][name];
    let regret = |name: &str| f(policy(name), "cumulative_regret");
    assert!(regret("thompson") < 0.5 * regret("greedy"), "{report}");
    assert!(regret("greedy") < regret("random"), "{report}");
    let quarters = |name: &str| -> Vec<f64> {
        policy(name)["regret_per_decision_by_quarter"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| q.as_f64().unwrap())
            .collect()
    };
    let thompson = quarters("thompson");
    assert!(thompson[3] < 0.5 * thompson[0], "{thompson:?}");
    let exponent = |name: &str| f(policy(name), "regret_growth_exponent");
    assert!(exponent("thompson") < 0.7, "{report}");
    assert!(
        exponent("greedy") > 0.9 && exponent("random") > 0.9,
        "{report}"
    );
}

/// With a uniform share, every offer greedy may pick has a logged
/// probability of at least the share over the eligible offers, so the
/// off-policy estimates of greedy's value from Thompson's log cover its
/// true value (without one, IPS misses it in this run: greedy's picks that
/// Thompson sampling has learnt to avoid are almost never logged).
#[test]
fn with_a_uniform_share_ips_and_snips_cover_greedy_s_true_value() {
    let report = report_of(
        &dir("simulate_uniform_share"),
        &[
            "--decisions",
            "20000",
            "--scenario",
            "calibrated",
            "--half-life-s",
            "0",
            "--thompson-uniform-share",
            "0.1",
        ],
    );
    let ope = &report["ope"];
    assert_eq!(ope["ips_covers_truth"], true, "{ope}");
    assert_eq!(ope["snips_covers_truth"], true, "{ope}");
    assert_eq!(ope["unsupported"], 0, "{ope}");
    let weight_mean = f(ope, "weight_mean");
    assert!((0.9..1.1).contains(&weight_mean), "{ope}");
    let regret = |name: &str| f(&report["policies"][name], "cumulative_regret");
    assert!(regret("thompson") < regret("random"), "{report}");
}

#[test]
fn bad_options_are_refused_by_name() {
    let json = dir("simulate_bad").join("report.json");
    let json = json.to_str().unwrap();
    for (args, expected) in [
        (vec!["--decisions", "1"], "--decisions 1 is outside"),
        (
            vec!["--decisions", "10", "--budget-scale", "0"],
            "--budget-scale 0 is outside",
        ),
        (
            vec!["--decisions", "10", "--ms-per-decision", "0"],
            "--ms-per-decision 0",
        ),
        (
            vec!["--decisions", "10", "--half-life-s=-1"],
            "--half-life-s -1",
        ),
        (
            vec!["--decisions", "10", "--thompson-uniform-share", "1"],
            "--thompson-uniform-share 1 is outside",
        ),
    ] {
        let mut all = args.clone();
        all.extend(["--json", json]);
        let output = simulate(&all);
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}
