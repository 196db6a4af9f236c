//! Summarises the criterion kernel benchmarks as a markdown table of
//! microseconds per sample (median, with criterion's 95% interval of the
//! median), and the scalar/SIMD ratio measured in the same run.
//!
//! Run after `cargo bench -p cx-benches --bench kernels`:
//! `cargo run --release -p cx-benches --example kernel_report [CRITERION_DIR]`.

use anyhow::{Context, Result};
use cx_benches::KERNEL_SHAPES;
use std::path::{Path, PathBuf};

/// Median and its 95% interval, in µs per sample.
struct Estimate {
    median: f64,
    low: f64,
    high: f64,
}

fn estimate(dir: &Path, group: &str, backend: &str, batch: usize) -> Result<Estimate> {
    let path = dir
        .join(group)
        .join(backend)
        .join(batch.to_string())
        .join("new/estimates.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let median = &json["median"];
    let per_sample = |v: &serde_json::Value| -> Result<f64> {
        let ns = v
            .as_f64()
            .with_context(|| format!("{}: missing median", path.display()))?;
        Ok(ns / 1000.0 / batch as f64)
    };
    Ok(Estimate {
        median: per_sample(&median["point_estimate"])?,
        low: per_sample(&median["confidence_interval"]["lower_bound"])?,
        high: per_sample(&median["confidence_interval"]["upper_bound"])?,
    })
}

fn main() -> Result<()> {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/criterion"))
        });
    println!(
        "| shape | batch | scalar µs/sample | SIMD µs/sample (95% CI of median) | scalar / SIMD |"
    );
    println!("| --- | ---: | ---: | ---: | ---: |");
    for shape in KERNEL_SHAPES {
        let group = format!("kernel_{shape}_T8");
        for batch in [1, 16, 64, 256] {
            let scalar = estimate(&dir, &group, "scalar", batch)?;
            let simd = estimate(&dir, &group, "simd", batch)?;
            println!(
                "| {shape} | {batch} | {:.1} | {:.2} ({:.2}-{:.2}) | {:.0}x |",
                scalar.median,
                simd.median,
                simd.low,
                simd.high,
                scalar.median / simd.median
            );
        }
    }
    Ok(())
}
