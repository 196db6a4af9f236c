//! End-to-end tests of `cx ope`: a DSJSON log written from the bundled
//! model's own scores (an epsilon-greedy logging policy over the offers the
//! engine ranks, clicks drawn from the model's click probabilities), then
//! evaluated through the binary; and the errors bad logs get.

use cx_datasets::{Generator, SynthConfig};
use cx_decision::TOP_K_MAX;
use cx_engine::systems::Exploration;
use cx_engine::{Engine, EngineConfig};
use cx_evaluation::{DsjsonWriter, LoggedEvent, TargetPolicy};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;

/// The logging policy's exploration.
const LOGGING_EPSILON: f64 = 0.3;

/// A log of `n` decisions and the true value of the greedy policy on its
/// requests (the mean click probability of the engine's top offer).
fn log_from_the_bundled_model(n: u64, seed: u64) -> (Vec<LoggedEvent>, f64) {
    let mut config = EngineConfig::default();
    config.decide.top_k = TOP_K_MAX;
    config.decide.exploration = Exploration::None;
    let mut engine = Engine::builder().config(config).build().expect("engine");
    let model_id = engine.model().id.clone();
    let generator = Generator::new(SynthConfig::default(), 2024).expect("generator");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let logging = TargetPolicy::EpsilonGreedy {
        epsilon: LOGGING_EPSILON,
    };
    let (mut events, mut greedy_value) = (Vec::new(), 0.0);
    let mut probabilities = Vec::new();
    for i in 0..n {
        let context = generator.row_at(1_000_000 + i).to_context();
        let now_ns = context.timestamp as u64 * 1_000_000_000;
        engine.submit_simulated(context.clone()).expect("submit");
        engine.run_until_decided(now_ns);
        let decision = engine.poll().expect("decided");
        let ranked = decision.offers();
        if ranked.is_empty() {
            continue;
        }
        let scores: Vec<Option<f64>> = ranked.iter().map(|o| Some(f64::from(o.score))).collect();
        logging.distribution(&scores, &mut probabilities);
        let u: f64 = rng.random();
        let mut cumulative = 0.0;
        let chosen = probabilities
            .iter()
            .position(|p| {
                cumulative += p;
                u < cumulative
            })
            .unwrap_or(ranked.len() - 1);
        let clicked = rng.random::<f64>() < f64::from(ranked[chosen].p_click);
        greedy_value += f64::from(ranked[0].p_click);
        events.push(LoggedEvent {
            event_id: format!("decision-{i}"),
            timestamp_unix_ns: now_ns,
            model_id: Some(model_id.clone()),
            context,
            offers: ranked.iter().map(|o| o.offer_id).collect(),
            chosen,
            probabilities: probabilities.clone(),
            reward: if clicked { 1.0 } else { 0.0 },
            experiment: None,
        });
    }
    let value = greedy_value / events.len() as f64;
    (events, value)
}

fn write_log(name: &str, events: &[LoggedEvent], extra_lines: &[&str]) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let file = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
    let mut writer = DsjsonWriter::new(file);
    for event in events {
        writer.write(event).expect("write");
    }
    let mut file = writer.finish().expect("flush");
    for line in extra_lines {
        std::io::Write::write_all(&mut file, format!("{line}\n").as_bytes()).expect("write");
    }
    std::io::Write::flush(&mut file).expect("flush");
    path
}

fn ope(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_cx"))
        .arg("ope")
        .args(args)
        .output()
        .expect("run cx ope")
}

fn json_of(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("one JSON object")
}

fn estimate(report: &Value, name: &str) -> (f64, f64, f64) {
    let e = &report["estimates"][name];
    let get = |key: &str| {
        e[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{name}.{key} in {e}"))
    };
    let (value, lower, upper) = (get("value"), get("lower"), get("upper"));
    assert!(
        get("std_error") >= 0.0 && lower <= value && value <= upper,
        "{name}: {e}"
    );
    (value, lower, upper)
}

#[test]
fn a_log_of_the_bundled_models_decisions_is_evaluated() {
    let (events, greedy_truth) = log_from_the_bundled_model(400, 7);
    let n = events.len() as u64;
    assert!(n > 300, "most synthetic requests get offers: {n}");
    let path = write_log("ope_bundled.dsjson", &events, &[]);
    let log = path.to_str().unwrap();

    let report = json_of(&ope(&["--log", log, "--json", "--level", "0.99"]));
    assert_eq!(report["events_read"], n);
    assert_eq!(report["events_evaluated"], n);
    assert_eq!(report["events_unsupported"], 0);
    assert_eq!(report["events_scored_by_fallback"], 0);
    assert_eq!(report["policy"], "greedy");
    assert_eq!(report["level"], 0.99);
    assert_eq!(report["model_id"].as_str(), events[0].model_id.as_deref());
    let ess = report["effective_sample_size"].as_f64().unwrap();
    assert!(ess > 0.3 * n as f64 && ess <= n as f64, "{report}");
    // The greedy policy's true value on these requests is in every interval.
    for name in ["ips", "snips", "dr"] {
        let (_, lower, upper) = estimate(&report, name);
        assert!(
            lower <= greedy_truth && greedy_truth <= upper,
            "{name} misses {greedy_truth}: {report}"
        );
    }
    estimate(&report, "logging_policy");

    // The logging policy itself as the target: every weight is 1.
    let same = json_of(&ope(&["--log", log, "--json", "--policy", "epsilon:0.3"]));
    let (ips, _, _) = estimate(&same, "ips");
    let (logged, _, _) = estimate(&same, "logging_policy");
    assert!((ips - logged).abs() < 1e-9, "{same}");
    let ess = same["effective_sample_size"].as_f64().unwrap();
    assert!((ess - n as f64).abs() < 1e-6, "{same}");
    assert!(
        (same["weight_max"].as_f64().unwrap() - 1.0).abs() < 1e-9,
        "{same}"
    );

    let table = ope(&["--log", log]);
    assert!(table.status.success());
    let text = String::from_utf8(table.stdout).unwrap();
    for word in [
        "logging policy",
        "IPS",
        "SNIPS",
        "DR",
        "95% interval",
        "effective sample size",
    ] {
        assert!(text.contains(word), "{word} in:\n{text}");
    }
}

fn failure(output: &Output) -> String {
    assert!(!output.status.success(), "expected a failure");
    assert!(output.stdout.is_empty());
    String::from_utf8(output.stderr.clone()).unwrap()
}

#[test]
fn bad_lines_are_named() {
    let (events, _) = log_from_the_bundled_model(3, 1);
    let mut line: Value = {
        let path = write_log("ope_one.dsjson", &events[..1], &[]);
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    };
    line["p"][0] = Value::from(0.0);
    let zero_p = line.to_string();
    let path = write_log("ope_bad_p.dsjson", &events[..2], &[&zero_p]);
    let message = failure(&ope(&["--log", path.to_str().unwrap()]));
    assert!(
        message.contains("line 3") && message.contains("`p[0]`"),
        "{message}"
    );
    assert!(message.contains("ope_bad_p.dsjson"), "{message}");

    let path = write_log(
        "ope_garbage.dsjson",
        &events[..1],
        &["{\"_label_cost\": -1"],
    );
    let message = failure(&ope(&["--log", path.to_str().unwrap()]));
    assert!(message.contains("line 2"), "{message}");

    let mut missing: Value = serde_json::from_str(&zero_p).unwrap();
    missing
        .as_object_mut()
        .unwrap()
        .remove("_label_probability");
    let path = write_log("ope_missing.dsjson", &[], &["", &missing.to_string()]);
    let message = failure(&ope(&["--log", path.to_str().unwrap()]));
    assert!(
        message.contains("line 2") && message.contains("_label_probability"),
        "{message}"
    );
}

#[test]
fn unusable_logs_and_options_are_refused() {
    let path = write_log("ope_empty.dsjson", &[], &[]);
    let message = failure(&ope(&["--log", path.to_str().unwrap()]));
    assert!(message.contains("no events"), "{message}");

    // Offers the catalog does not hold: the candidate takes none of them.
    let (mut events, _) = log_from_the_bundled_model(3, 2);
    for event in &mut events {
        for offer in &mut event.offers {
            *offer += 1_000_000;
        }
    }
    let path = write_log("ope_foreign_offers.dsjson", &events, &[]);
    let message = failure(&ope(&["--log", path.to_str().unwrap()]));
    assert!(message.contains("none of the logged offers"), "{message}");

    let message = failure(&ope(&["--log", "/nonexistent/log.dsjson"]));
    assert!(message.contains("/nonexistent/log.dsjson"), "{message}");
    let message = failure(&ope(&["--log", "x", "--policy", "softmax"]));
    assert!(message.contains("epsilon:E"), "{message}");
    let message = failure(&ope(&["--log", "x", "--level", "95"]));
    assert!(message.contains("(0, 1)"), "{message}");
}
