//! The last step of `cx-bench all`: every output it wrote is read back
//! ([`verify_outputs`]): each JSON file parsed into its report type, the
//! plot checked to be SVG, the markdown checked to be there.

use super::report::{AllReport, EchoReport, LoadSeries};
use crate::engine_bench::EngineBenchReport;
use crate::kernel_bench::KernelBenchReport;
use crate::load::SweepReport;
use crate::stall::StallReport;
use serde::de::DeserializeOwned;
use std::path::Path;

/// Reads back each of `files` (names in `dir`, as [`AllReport::files`]
/// lists them) the way its name says it was written; returns one line per
/// file that fails.
pub fn verify_outputs(dir: &Path, files: &[String]) -> Vec<String> {
    files
        .iter()
        .filter_map(|name| verify_one(&dir.join(name), name).err())
        .collect()
}

fn verify_one(path: &Path, name: &str) -> std::result::Result<(), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read it back: {e}", path.display()))?;
    let parsed = match name {
        "kernel.json" => parse::<KernelBenchReport>(&text),
        "engine.json" => parse::<EngineBenchReport>(&text),
        "sweep.json" => parse::<SweepReport>(&text),
        "echo.json" => parse::<EchoReport>(&text),
        "stall.json" => parse::<StallReport>(&text),
        "summary.json" => parse::<AllReport>(&text),
        n if n.starts_with("load-") && n.ends_with(".json") => parse::<LoadSeries>(&text),
        n if n.ends_with(".svg") => {
            if text.contains("<svg") {
                Ok(())
            } else {
                Err("not an SVG image (no `<svg`)".into())
            }
        }
        _ => {
            if text.trim().is_empty() {
                Err("empty".into())
            } else {
                Ok(())
            }
        }
    };
    parsed.map_err(|e| format!("{}: {e}", path.display()))
}

fn parse<T: DeserializeOwned>(text: &str) -> std::result::Result<(), String> {
    serde_json::from_str::<T>(text)
        .map(|_| ())
        .map_err(|e| format!("does not parse back: {e}"))
}
