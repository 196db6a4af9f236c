//! The engine in process, end to end: decisions per second and tick latency
//! (p50, p99, p99.9, max) at batch sizes 1 to 64 on the bundled default
//! model with the SIMD kernel, against the naive path (one request per
//! tick, no batching, the scalar kernel) measured in the same run, and
//! heap allocations per request in steady state, printed as markdown.
//!
//! Run: `cargo run --release -p cx-benches --example engine_report
//! [-- --repeats N --seconds S --quick --json FILE]` (defaults: 9 repeats
//! of at least 0.5 s per setup). The benchmark is
//! `cx_benches::engine_bench`, which documents what is timed; this program
//! installs its counting allocator so that allocations are counted.

use anyhow::{bail, Context, Result};
use cx_benches::alloc_count::CountingAllocator;
use cx_benches::engine_bench::{run_engine_bench, EngineBenchOptions};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// The options, and the JSON file to write, from the command line.
fn options() -> Result<(EngineBenchOptions, Option<String>)> {
    let mut options = EngineBenchOptions {
        progress: true,
        ..EngineBenchOptions::default()
    };
    let mut json = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--quick" {
            options.quick = true;
            continue;
        }
        let value = args
            .next()
            .with_context(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--repeats" => options.repeats = Some(value.parse().context("--repeats")?),
            "--seconds" => {
                let s: f64 = value.parse().context("--seconds")?;
                options.run_ms = Some((s * 1000.0).round() as u64);
            }
            "--json" => json = Some(value),
            _ => bail!(
                "unknown argument {arg}; expected --repeats N, --seconds S, --quick or --json FILE"
            ),
        }
    }
    Ok((options, json))
}

fn rustc_version() -> String {
    std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

fn main() -> Result<()> {
    let (options, json) = options()?;
    let report = run_engine_bench(&options)?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    print!("{}", report.to_markdown());
    println!(
        "\nCommand: `cargo run --release -p cx-benches --example engine_report -- {}`; {}.",
        args.join(" "),
        rustc_version()
    );
    if let Some(path) = json {
        std::fs::write(&path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {path}"))?;
    }
    eprintln!("total {:.0} s", report.elapsed_s);
    Ok(())
}
