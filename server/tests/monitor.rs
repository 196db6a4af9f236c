//! Model monitoring's proof (`docs/MONITORING.md`): a tiny model trained by
//! `cx train` records its reference (`cx.reference`); an engine serving it
//! the synthetic generator's rows raises no alarm on an unshifted stream,
//! raises the device features' PSI alarm when the device mix shifts, and a
//! model with its calibration shifted raises the calibration alarm once
//! feedback (impressions, and clicks drawn from the generator's ground
//! truth) arrives. Figures are printed (`--nocapture`). A live `cx serve`
//! answers `GET /admin/monitor`, `cx monitor` prints it, and `/metrics`
//! carries the `cx_monitor_*` series.

mod common;

use cx_engine::datasets::synth::{Generator, SynthConfig, SynthRow};
use cx_engine::domain::feedback::{Event, EventKind};
use cx_engine::model::{Calibration, SnnModel};
use cx_engine::systems::monitor::{AlarmKind, MonitorConfig, Reference, REFERENCE_KEY};
use cx_engine::{Engine, EngineConfig, ModelSource};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

/// `cx synth`'s default seed: the world the model is trained on.
const SEED: u64 = 2024;
/// Host time of the first request, unix ns.
const T0_NS: u64 = 1_767_225_600_000_000_000;
/// Requests per monitoring window in these tests.
const WINDOW: u32 = 1000;

fn cx(args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_cx"))
        .args(args)
        .output()
        .expect("cx runs");
    assert!(
        out.status.success(),
        "cx {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A tiny model trained on 30,000 synthetic rows, once per test binary (in
/// the temp dir, `cx-monitor-PID/`).
fn model() -> &'static Path {
    static MODEL: OnceLock<PathBuf> = OnceLock::new();
    MODEL.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("cx-monitor-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let data = dir.join("train.csv").display().to_string();
        let out = dir.join("model.safetensors");
        cx(&["synth", "--rows", "30000", "--out", &data]);
        let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/specs/synthetic.toml");
        cx(&[
            "train",
            "--data",
            &data,
            "--spec",
            &spec.display().to_string(),
            "--out",
            &out.display().to_string(),
            "--epochs",
            "2",
            "--hidden",
            "16",
            "--steps",
            "8",
            "--quiet",
        ]);
        // The model (a few hundred KB) stays for the binary's other tests;
        // the click log goes now.
        std::fs::remove_file(&data).ok();
        out
    })
}

fn config() -> EngineConfig {
    EngineConfig {
        seed: 7,
        monitor: MonitorConfig {
            window_requests: WINDOW,
            window_impressions: WINDOW,
            ..MonitorConfig::default()
        },
        ..EngineConfig::default()
    }
}

fn engine(source: ModelSource) -> Engine {
    Engine::builder()
        .config(config())
        .model(source)
        .build()
        .expect("the model serves")
}

/// What one stretch of traffic did.
#[derive(Debug, Default)]
struct Run {
    requests: u64,
    /// Requests (since the run began) at which each alarm rose: (kind, feature, request).
    raised: Vec<(AlarmKind, String, u64)>,
    cleared: u64,
}

/// Serves generator rows `from..` (those `keep` keeps) until `requests`
/// were decided, in batches of 256 at 1 ms per request; with `feedback`,
/// an impression per decision with an offer and a click drawn from the
/// chosen offer's true click probability.
fn serve(
    engine: &mut Engine,
    generator: &Generator,
    from: u64,
    requests: u64,
    keep: impl Fn(&SynthRow, u64) -> bool,
    feedback: bool,
) -> Run {
    let mut run = Run::default();
    let mut rng = ChaCha8Rng::seed_from_u64(from);
    let mut index = from;
    let start = engine.monitor().report().requests;
    let mut batch = Vec::with_capacity(256);
    while run.requests < requests {
        batch.clear();
        while batch.len() < 256 && run.requests + (batch.len() as u64) < requests {
            let row = generator.row_at(index);
            if keep(&row, index) {
                let ticket = engine.submit(row.to_context()).expect("room");
                batch.push((ticket, index));
            }
            index += 1;
        }
        let now = T0_NS + (start + run.requests) * 1_000_000;
        engine.run_until_decided(now);
        let decisions: Vec<_> = engine.drain().collect();
        assert_eq!(decisions.len(), batch.len());
        run.requests += batch.len() as u64;
        if feedback {
            for (decision, &(ticket, row)) in decisions.iter().zip(&batch) {
                assert_eq!(decision.ticket, ticket);
                let Some(offer) = decision.offers().first() else {
                    continue;
                };
                let key = engine.decision_key(ticket);
                let mut impression = Event::new(EventKind::Impression, key);
                impression.offer_id = offer.offer_id;
                engine.feedback_event(&impression, now).expect("joined");
                let i = generator
                    .offer_index(offer.offer_id)
                    .expect("a synthetic offer");
                let p = generator.p_true_for(row, i).expect("in the catalog");
                if rng.random::<f32>() < p {
                    let mut click = Event::new(EventKind::Click, key);
                    click.offer_id = offer.offer_id;
                    engine.feedback_event(&click, now).expect("joined");
                }
            }
        }
        let mut seen = Vec::new();
        engine.monitor_mut().take_transitions(|m, t| {
            seen.push((t.kind, m.subject(&t).to_string(), t.raised, t.at_request))
        });
        for (kind, feature, raised, at) in seen {
            if raised {
                run.raised.push((kind, feature, at - start));
            } else {
                run.cleared += 1;
            }
        }
    }
    run
}

fn generator() -> Generator {
    Generator::new(SynthConfig::default(), SEED).expect("default config")
}

/// Phones, tablets and generic mobile devices (OpenRTB 1, 4, 5).
fn mobile(row: &SynthRow) -> bool {
    matches!(row.device_type, 1 | 4 | 5)
}

#[test]
fn cx_train_records_a_reference_that_fits_the_model() {
    let model = SnnModel::load(model()).unwrap();
    let text = model
        .meta()
        .extra
        .get(REFERENCE_KEY)
        .expect("cx train writes it");
    let schema = cx_engine::features::FeatureSchema::v1();
    let reference = Reference::from_json(text, &schema).expect("parses and fits");
    assert!(reference.features.iter().any(|f| f.name == "device_type"));
    assert!(
        (reference.base_ctr - 0.05).abs() < 0.01,
        "{}",
        reference.base_ctr
    );
    assert!(text.len() < 16 * 1024, "small: {} bytes", text.len());
    println!(
        "cx.reference: {} bytes, {} features",
        text.len(),
        reference.features.len()
    );
}

#[test]
fn an_unshifted_stream_raises_no_alarm_and_a_device_shift_raises_psi() {
    calm_then_shifted(
        ModelSource::Path(model().to_path_buf()),
        "trained here",
        |_| false,
    );
}

#[test]
fn the_bundled_model_s_reference_catches_its_missing_store_and_a_device_shift() {
    // The bundled model was trained with the online store's features
    // (schema v2); served without a store they all read as missing, which
    // is drift the reference must show: on the store features the store
    // fills most (`store.*`) and on the predictions, never on request
    // fields.
    let skew = |feature: &str| feature.starts_with("store.") || feature == "prediction";
    let raised = calm_then_shifted(ModelSource::Bundled, "bundled", skew);
    assert!(raised.iter().any(|f| f.starts_with("store.")), "{raised:?}");
}

/// Serves 60 windows of unshifted traffic (only alarms on features
/// `allowed` names may rise; returned), then a device mix with most mobile
/// rows dropped (the device_type PSI alarm must rise within six windows).
fn calm_then_shifted(
    source: ModelSource,
    label: &str,
    allowed: impl Fn(&str) -> bool,
) -> Vec<String> {
    let generator = generator();
    let mut engine = engine(source);
    // Unshifted: fresh rows of the training world, with feedback.
    let requests = 60 * u64::from(WINDOW);
    let calm = serve(
        &mut engine,
        &generator,
        10_000_000,
        requests,
        |_, _| true,
        true,
    );
    let report = engine.monitor_report();
    let max_psi = report
        .features
        .iter()
        .filter(|f| !f.ignored)
        .map(|f| (f.psi, f.name.clone()))
        .fold((0.0, String::new()), |a, b| if b.0 > a.0 { b } else { a });
    println!(
        "{label}: unshifted: {} requests, {} windows, false alarms {} {:?}, max PSI {:.4} ({}), \
         observed CTR {:.4} predicted {:.4} over {} impressions",
        calm.requests,
        report.windows_closed,
        calm.raised.len(),
        calm.raised,
        max_psi.0,
        max_psi.1,
        report.observed_ctr,
        report.predicted_ctr,
        report.outcomes.impressions
    );
    let unexpected: Vec<_> = calm.raised.iter().filter(|r| !allowed(&r.1)).collect();
    assert!(unexpected.is_empty(), "false alarms: {unexpected:?}");
    if calm.raised.is_empty() {
        assert_eq!(report.status, "ok", "{report:?}");
    }

    // Shifted: 90% of mobile rows dropped, so desktops and TVs dominate.
    let shifted = serve(
        &mut engine,
        &generator,
        20_000_000,
        20 * u64::from(WINDOW),
        |row, i| !mobile(row) || i % 10 == 0,
        false,
    );
    let device = shifted
        .raised
        .iter()
        .find(|(kind, feature, _)| *kind == AlarmKind::Psi && feature == "device_type")
        .expect("the device_type PSI alarm rises");
    let report = engine.monitor_report();
    let psi = |name: &str| report.features.iter().find(|f| f.name == name).unwrap().psi;
    println!(
        "{label}: shifted device mix: device_type alarm after {} requests; PSI now device_type {:.3}, \
         os {:.3}, placement_size {:.3}, prediction {:.3}; alarms {:?}",
        device.2,
        psi("device_type"),
        psi("os"),
        psi("placement_size"),
        psi("prediction"),
        shifted.raised
    );
    // The ring sums 10 windows, so the shifted share of it grows a tenth
    // per window: the alarm rises at a window's close, within six.
    assert!(
        device.2 <= 6 * u64::from(WINDOW),
        "raised after {}",
        device.2
    );
    assert!(engine.monitor().alarm(AlarmKind::Psi, "device_type"));
    calm.raised.into_iter().map(|r| r.1).collect()
}

#[test]
fn a_model_with_its_calibration_shifted_raises_the_calibration_alarm() {
    let good = SnnModel::load(model()).unwrap();
    let mut meta = good.meta().clone();
    let Calibration::Platt { bias, .. } = &mut meta.calibration else {
        panic!("cx train fits Platt scaling");
    };
    for b in bias.iter_mut() {
        *b += 1.0; // about 2.5 times the odds
    }
    let degraded = SnnModel::new(good.layers().to_vec(), good.steps(), meta).unwrap();
    let bytes: Arc<[u8]> = degraded.to_bytes().into();
    let generator = generator();
    let mut engine = engine(ModelSource::Bytes(bytes));
    let run = serve(
        &mut engine,
        &generator,
        30_000_000,
        10 * u64::from(WINDOW),
        |_, _| true,
        true,
    );
    let report = engine.monitor_report();
    let calibration = run
        .raised
        .iter()
        .find(|(kind, _, _)| *kind == AlarmKind::Calibration)
        .expect("the calibration alarm rises");
    println!(
        "calibration shifted (+1 logit): alarm after {} requests; observed CTR {:.4}, \
         predicted {:.4} over {} impressions; alarms {:?}",
        calibration.2,
        report.observed_ctr,
        report.predicted_ctr,
        report.outcomes.impressions,
        run.raised
    );
    assert!(engine.monitor().alarm(AlarmKind::Calibration, ""));
}

#[test]
fn a_model_without_a_reference_says_so_and_raises_no_psi_alarm() {
    let generator = generator();
    // The bundled model records one; the same model without it.
    let bundled = SnnModel::from_bytes(cx_engine::DEFAULT_MODEL_BYTES).unwrap();
    assert!(bundled.meta().extra.contains_key(REFERENCE_KEY));
    assert!(engine(ModelSource::Bundled).monitor_report().reference);
    let mut meta = bundled.meta().clone();
    meta.extra.remove(REFERENCE_KEY);
    let bare = SnnModel::new(bundled.layers().to_vec(), bundled.steps(), meta).unwrap();
    let mut engine = engine(ModelSource::Bytes(bare.to_bytes().into()));
    let run = serve(
        &mut engine,
        &generator,
        40_000_000,
        3000,
        |row, _| !mobile(row),
        false,
    );
    let report = engine.monitor_report();
    assert_eq!(report.status, "no reference");
    assert!(!report.reference);
    assert!(report.features.is_empty());
    assert!(run.raised.is_empty());
    assert_eq!(report.requests, 3000);
}

#[test]
fn a_malformed_reference_is_refused_naming_the_key() {
    let good = SnnModel::load(model()).unwrap();
    for bad in [
        "{",
        "{\"version\":1}",
        &good.meta().extra[REFERENCE_KEY].replace("\"share\":[", "\"share\":[7,"),
    ] {
        let mut meta = good.meta().clone();
        meta.extra.insert(REFERENCE_KEY.into(), bad.to_string());
        let model = SnnModel::new(good.layers().to_vec(), good.steps(), meta).unwrap();
        let err = Engine::builder()
            .config(config())
            .model(ModelSource::Bytes(model.to_bytes().into()))
            .build()
            .err()
            .expect("refused");
        assert!(err.to_string().contains(REFERENCE_KEY), "{err}");
    }
}

#[test]
fn a_live_server_reports_its_monitor_through_cx_monitor_and_metrics() {
    let dir = common::temp_dir("monitor-e2e");
    let model = model().display().to_string();
    let mut server = common::ServeProcess::spawn(
        &["--model", &model, "--workers", "1"],
        &dir.join("serve.log"),
    );
    let admin = server.admin.expect("the admin port runs").to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let doc = loop {
        let out = common::cx()
            .args(["monitor", "--addr", &admin])
            .output()
            .expect("cx runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        if doc["workers"].as_array().is_some_and(|w| !w.is_empty()) {
            break doc;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no report published: {doc}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let worker = &doc["workers"][0];
    assert_eq!(worker["reference"], true, "{doc}");
    assert_eq!(worker["status"], "warming up", "{doc}");
    assert_eq!(worker["window_requests"], 1000);
    let metrics = common::admin_get(server.admin.unwrap(), "/metrics");
    assert!(metrics.contains("cx_monitor_reference 1"), "{metrics}");
    assert!(
        metrics.contains("cx_monitor_alarm{kind=\"calibration\",feature=\"\"} 0"),
        "{metrics}"
    );
    common::signal(server.pid, "TERM");
    let _ = server.child.wait();
    std::fs::remove_dir_all(&dir).ok();
    // Not the admin port: said plainly.
    let out = common::cx()
        .args(["monitor", "--addr", "127.0.0.1:1", "--timeout-ms", "500"])
        .output()
        .expect("cx runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cx monitor: server 127.0.0.1:1"));
}

#[test]
fn observing_requests_and_closing_windows_allocates_nothing() {
    let model = SnnModel::load(model()).unwrap();
    let schema = cx_engine::features::FeatureSchema::v1();
    let reference = Reference::from_json(&model.meta().extra[REFERENCE_KEY], &schema).unwrap();
    let config = MonitorConfig {
        window_requests: 100,
        window_impressions: 100,
        ..MonitorConfig::default()
    };
    let mut monitor =
        cx_engine::systems::monitor::Monitor::new(config, Some(reference), schema.width());
    let generator = generator();
    let max = cx_engine::features::SPARSE_NONZERO_MAX;
    let rows: Vec<(Vec<u32>, Vec<f32>)> = (0..500u64)
        .map(|i| {
            let (mut c, mut v) = (vec![0u32; max], vec![0f32; max]);
            let row = generator.row_at(50_000_000 + i);
            let (n, _) = schema
                .extract_sparse(&row.to_context(), &mut c, &mut v)
                .unwrap();
            c.truncate(n);
            v.truncate(n);
            (c, v)
        })
        .collect();
    // Warm up: the first windows close and judge once.
    for (c, v) in &rows {
        monitor.observe(c, v, Some(0.05));
    }
    let info = allocation_counter::measure(|| {
        for round in 0..20 {
            for (i, (c, v)) in rows.iter().enumerate() {
                monitor.observe(c, v, Some(0.01 * (i % 10) as f32));
                monitor.observe_outcome(0.2, true, (i + round) % 7 == 0);
            }
            monitor.take_transitions(|_, _| {});
        }
    });
    assert_eq!(info.count_total, 0, "{info:?}");
    let report = monitor.report();
    assert_eq!(report.requests, 10_500);
    assert!(report.windows_closed >= 100);
}
