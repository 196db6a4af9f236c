//! The kernel and engine benchmark summaries (`cx_benches::kernel_bench`,
//! `cx_benches::engine_bench`) in quick mode.
//!
//! This machine is shared and noisy, so nothing here asserts a time or a
//! rate beyond "positive": every requested cell is present, spreads and
//! percentiles are ordered, ratios are positive, the markdown has its
//! table and the reports round-trip through JSON. One property is exact:
//! the engine makes no heap allocation per request in steady state,
//! counted by the counting allocator this test binary installs.

use cx_benches::alloc_count::CountingAllocator;
use cx_benches::engine_bench::{
    run_engine_bench, EngineBenchOptions, EngineBenchReport, EnginePlan, SetupKind,
    ENGINE_TABLE_HEADER,
};
use cx_benches::kernel_bench::{
    run_kernel_bench, KernelBackend, KernelBenchOptions, KernelPlan, KERNEL_TABLE_HEADER,
};
use cx_benches::spread::Spread;
use cx_benches::{Error, Shape};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// `min <= median <= max`, all finite and positive.
fn assert_spread(s: &Spread, what: &str) {
    assert!(
        s.min.is_finite() && s.max.is_finite() && s.min > 0.0,
        "{what}: {s:?}"
    );
    assert!(s.min <= s.median && s.median <= s.max, "{what}: {s:?}");
}

/// Whether two JSON values are equal, numbers to a relative 1e-12 (the
/// JSON parser may round a float's last bit).
fn json_close(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            x == y || (x - y).abs() <= 1e-12 * x.abs().max(y.abs())
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_close(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_close(v, w)))
        }
        _ => a == b,
    }
}

/// `report` survives JSON: text, back to the type, and to JSON again.
fn assert_round_trips<T: Serialize + DeserializeOwned>(report: &T) {
    let text = serde_json::to_string_pretty(report).expect("serialises");
    let back: T = serde_json::from_str(&text).expect("deserialises");
    let (a, b) = (
        serde_json::to_value(report).expect("value"),
        serde_json::to_value(&back).expect("value"),
    );
    assert!(json_close(&a, &b), "the report round-trips through JSON");
}

fn assert_option_error(result: Result<impl std::fmt::Debug, Error>, option: &str) {
    match result {
        Err(Error::Load(cx_load::Error::Option { option: o, .. })) => assert_eq!(o, option),
        other => panic!("expected an error naming {option}, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Kernel
// ---------------------------------------------------------------------------

#[test]
fn kernel_quick_report_has_every_requested_cell() {
    let options = KernelBenchOptions::quick();
    let plan = KernelPlan::resolve(&options).expect("plan");
    let report = run_kernel_bench(&options).expect("kernel bench");
    assert!(report.quick);
    assert_eq!(report.repeats, plan.repeats);
    assert_eq!(
        report.rows.len(),
        plan.shapes.len() * plan.batches.len() * plan.backends.len()
    );
    for &shape in &plan.shapes {
        for &batch in &plan.batches {
            for &backend in &plan.backends {
                let row = report
                    .row(shape, batch, backend)
                    .unwrap_or_else(|| panic!("no row for {shape} batch {batch} {backend}"));
                let what = format!("{shape} batch {batch} {backend}");
                assert_spread(&row.us_per_sample, &what);
                assert!(row.calls_per_repeat >= 1);
                assert!(row.samples_per_s > 0.0 && row.gflop_per_s > 0.0, "{what}");
                assert!(
                    row.bound_us_per_sample > 0.0 && row.peak_share > 0.0,
                    "{what}"
                );
                assert_eq!(
                    row.projection_madds_per_sample,
                    (shape.inputs * shape.hidden) as u64
                );
                match backend {
                    KernelBackend::Simd => assert_spread(
                        row.speedup_vs_scalar
                            .as_ref()
                            .expect("SIMD rows have a speedup"),
                        &what,
                    ),
                    KernelBackend::Scalar => assert_eq!(row.speedup_vs_scalar, None),
                }
            }
        }
    }
    assert_spread(&report.fma_peak.vector_fmas_per_s, "FMA peak");
    assert!(report.fma_peak.madds_per_s > 0.0 && report.fma_peak.gflop_per_s > 0.0);
    assert_eq!(report.firing_rates.len(), plan.shapes.len());
    for rates in &report.firing_rates {
        assert_eq!(rates.layer_rates.len(), 2, "two layers");
        assert!(rates.layer_rates.iter().all(|r| (0.0..=1.0).contains(r)));
    }
    assert!(report.simd_device.is_some());
    assert!(!report.machine.cpu_model.is_empty() && report.machine.logical_cores >= 1);

    let md = report.to_markdown();
    assert!(md.contains(KERNEL_TABLE_HEADER), "{md}");
    let table_rows = md.lines().filter(|l| l.starts_with("| ")).count();
    assert_eq!(
        table_rows,
        2 + report.rows.len(),
        "header, separator and one line per row"
    );
    assert_round_trips(&report);
}

#[test]
fn kernel_runs_exactly_the_cells_asked_for() {
    let shape = Shape {
        inputs: 8,
        hidden: 32,
        outputs: 4,
    };
    let options = KernelBenchOptions {
        quick: true,
        shapes: Some(vec![shape]),
        batches: Some(vec![3]),
        backends: Some(vec![KernelBackend::Simd]),
        repeats: Some(2),
        repeat_ms: Some(2),
    };
    let report = run_kernel_bench(&options).expect("kernel bench");
    assert_eq!(report.rows.len(), 1);
    let row = &report.rows[0];
    assert_eq!(
        (row.shape, row.batch, row.backend),
        (shape, 3, KernelBackend::Simd)
    );
    assert_eq!(
        row.speedup_vs_scalar, None,
        "no scalar cell to compare with"
    );
    assert_eq!(report.repeats, 2);
}

#[test]
fn kernel_options_are_checked_before_running() {
    let bad = |f: fn(&mut KernelBenchOptions)| {
        let mut o = KernelBenchOptions::quick();
        f(&mut o);
        run_kernel_bench(&o).map(|_| ())
    };
    assert_option_error(bad(|o| o.batches = Some(vec![1, 0])), "--batches");
    assert_option_error(bad(|o| o.repeats = Some(0)), "--repeats");
    assert_option_error(bad(|o| o.shapes = Some(vec![])), "--shapes");
    assert_option_error(bad(|o| o.backends = Some(vec![])), "--backends");
}

// ---------------------------------------------------------------------------
// Engine
// ---------------------------------------------------------------------------

fn check_engine_rows(report: &EngineBenchReport, plan: &EnginePlan) {
    for &batch in &plan.batches {
        assert!(
            report.simd_row(batch).is_some(),
            "no SIMD row at batch {batch}"
        );
    }
    let naive = report.naive_row().expect("the naive row");
    assert_eq!((naive.batch, naive.backend.as_str()), (1, "scalar"));
    for row in &report.rows {
        let what = format!("{} batch {}", row.label, row.batch);
        assert!(row.requests > 0, "{what}");
        assert_spread(&row.decisions_per_s, &what);
        assert_spread(&row.vs_naive, &what);
        for p in [
            &row.tick_us_p50,
            &row.tick_us_p99,
            &row.tick_us_p999,
            &row.tick_us_max,
        ] {
            assert_spread(p, &what);
        }
        let p = [
            row.tick_us_p50.median,
            row.tick_us_p99.median,
            row.tick_us_p999.median,
            row.tick_us_max.median,
        ];
        assert!(p.windows(2).all(|w| w[0] <= w[1]), "{what}: {p:?}");
        assert!(row.tick_share > 0.0 && row.tick_share <= 1.0, "{what}");
        assert!(row.us_per_decision > 0.0, "{what}");
        assert!(
            row.stage_us_p50.iter().any(|s| s.stage == "tick"),
            "{what}: stage times"
        );
    }
}

#[test]
fn engine_quick_report_is_consistent_and_allocates_nothing_per_request() {
    let options = EngineBenchOptions::quick();
    let plan = EnginePlan::resolve(&options).expect("plan");
    let report = run_engine_bench(&options).expect("engine bench");
    assert!(report.quick);
    assert_eq!(report.rows.len(), plan.setups().len());
    check_engine_rows(&report, &plan);
    let cached = report
        .rows
        .iter()
        .find(|r| r.setup == SetupKind::SimdCacheOn)
        .expect("the cache-on row");
    assert!(cached.cache_capacity > 0 && cached.cache_hit_rate.is_some());

    assert!(report.summary.best_decisions_per_s > 0.0);
    assert!(plan.batches.contains(&report.summary.best_batch));
    assert_spread(&report.summary.best_vs_naive, "best / naive");
    assert_spread(
        report
            .summary
            .batch1_vs_naive
            .as_ref()
            .expect("batch 1 ran"),
        "batch 1 / naive",
    );

    // A correctness property, not a timing: the test binary installs the
    // counting allocator, and steady state must not allocate.
    assert!(report.allocator_installed);
    for row in &report.rows {
        assert_eq!(
            row.allocations_per_request,
            Some(0.0),
            "{} batch {}: allocations per request in steady state",
            row.label,
            row.batch
        );
    }

    let md = report.to_markdown();
    assert!(md.contains(ENGINE_TABLE_HEADER), "{md}");
    assert!(md.contains("0 in every setup"), "{md}");
    assert_round_trips(&report);
}

#[test]
fn engine_runs_the_batches_asked_for_without_the_cache_row() {
    let options = EngineBenchOptions {
        quick: true,
        batches: Some(vec![2, 8]),
        repeats: Some(2),
        run_ms: Some(5),
        cache_row: Some(false),
        progress: false,
    };
    let plan = EnginePlan::resolve(&options).expect("plan");
    let report = run_engine_bench(&options).expect("engine bench");
    let batches: Vec<(SetupKind, usize)> = report.rows.iter().map(|r| (r.setup, r.batch)).collect();
    assert_eq!(
        batches,
        [
            (SetupKind::Simd, 2),
            (SetupKind::Simd, 8),
            (SetupKind::Naive, 1)
        ]
    );
    check_engine_rows(&report, &plan);
    assert_eq!(report.summary.batch1_vs_naive, None, "batch 1 did not run");
}

#[test]
fn engine_options_are_checked_before_running() {
    let mut o = EngineBenchOptions::quick();
    o.batches = Some(vec![]);
    assert_option_error(run_engine_bench(&o).map(|_| ()), "--batches");
    let mut o = EngineBenchOptions::quick();
    o.run_ms = Some(0);
    assert_option_error(run_engine_bench(&o).map(|_| ()), "--run-ms");
}

#[test]
fn the_counting_allocator_is_installed_and_counts_this_thread() {
    assert!(CountingAllocator::is_installed());
    let before = CountingAllocator::thread_counts();
    let v: Vec<u64> = std::hint::black_box(Vec::with_capacity(100));
    let after = CountingAllocator::thread_counts().since(before);
    drop(v);
    assert_eq!(after.allocations, 1);
    assert!(after.allocated_bytes >= 800);
}
