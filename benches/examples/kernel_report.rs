//! The kernel benchmark summary as markdown: µs per sample of the scalar
//! and SIMD kernels by shape and batch, the SIMD speedup within each
//! repeat, and each cell against the core's measured FMA peak.
//!
//! - By default it runs the benchmark in process
//!   (`cx_benches::kernel_bench`, about 20 s; `--quick` for a few
//!   seconds; `--json FILE` also writes the report as JSON):
//!   `cargo run --release -p cx-benches --example kernel_report [-- --quick] [--repeats N] [--json FILE]`.
//! - With `--criterion [DIR]` it summarises a criterion run instead
//!   (criterion's median and the 95% interval of the median), after
//!   `cargo bench -p cx-benches --bench kernels`:
//!   `cargo run --release -p cx-benches --example kernel_report -- --criterion [CRITERION_DIR]`.

use anyhow::{bail, Context, Result};
use cx_benches::kernel_bench::{run_kernel_bench, KernelBenchOptions, KERNEL_BATCHES};
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

/// Prints the criterion run in `dir` as a table.
fn criterion_table(dir: &Path) -> Result<()> {
    println!(
        "| shape | batch | scalar µs/sample | SIMD µs/sample (95% CI of median) | scalar / SIMD |"
    );
    println!("| --- | ---: | ---: | ---: | ---: |");
    for shape in KERNEL_SHAPES {
        let group = format!("kernel_{shape}_T8");
        for batch in KERNEL_BATCHES {
            let scalar = estimate(dir, &group, "scalar", batch)?;
            let simd = estimate(dir, &group, "simd", batch)?;
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

fn default_criterion_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/criterion"))
}

fn main() -> Result<()> {
    let mut options = KernelBenchOptions::default();
    let mut json = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--criterion" => {
                let dir = args.next().map_or_else(default_criterion_dir, PathBuf::from);
                return criterion_table(&dir);
            }
            "--quick" => options.quick = true,
            "--repeats" => {
                let n = args.next().context("--repeats needs a value")?;
                options.repeats = Some(n.parse().context("--repeats")?);
            }
            "--json" => json = Some(args.next().context("--json needs a file")?),
            _ => bail!("unknown argument {arg}; expected --quick, --repeats N, --json FILE or --criterion [DIR]"),
        }
    }
    let report = run_kernel_bench(&options)?;
    print!("{}", report.to_markdown());
    if let Some(path) = json {
        std::fs::write(&path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {path}"))?;
    }
    Ok(())
}
