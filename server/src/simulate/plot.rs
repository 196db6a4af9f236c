//! `cx simulate --svg DIR`: `regret.svg` (cumulative regret against the
//! oracle) and `ctr.svg` (clicks per impression in each interval of
//! `decisions / 200`), one line per policy, drawn with `plotters`.

use super::policy::{Point, PolicyRun};
use crate::error::{Error, Result};
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// A policy's line colour.
fn colour(name: &str) -> RGBColor {
    match name {
        "thompson" => BLUE,
        "greedy" => RED,
        _ => RGBColor(110, 110, 110),
    }
}

/// Writes both figures into `dir` (created if needed); `shift_at` draws a
/// marker at the decision where the world changed. Returns their paths.
pub fn write_plots(
    dir: &Path,
    policies: &[PolicyRun],
    shift_at: Option<u64>,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|source| Error::File {
        path: dir.display().to_string(),
        source,
    })?;
    let lines = |value: fn(&Point) -> f64| -> Vec<(&'static str, Vec<(f64, f64)>)> {
        policies
            .iter()
            .map(|p| {
                let points = p.series.iter().map(|s| (s.decisions as f64, value(s)));
                (p.name, points.collect())
            })
            .collect()
    };
    let regret = dir.join("regret.svg");
    draw(
        &regret,
        "Cumulative regret against the oracle",
        "cumulative regret (clicks)",
        &lines(|s| s.cumulative_regret),
        shift_at,
    )
    .map_err(|e| plot_error(&regret, e))?;
    let ctr = dir.join("ctr.svg");
    draw(
        &ctr,
        "Click-through rate per interval",
        "clicks per impression",
        &lines(|s| s.ctr),
        shift_at,
    )
    .map_err(|e| plot_error(&ctr, e))?;
    Ok(vec![regret, ctr])
}

fn plot_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Mismatch(format!("cannot draw {}: {e}", path.display()))
}

fn draw(
    path: &Path,
    caption: &str,
    y_desc: &str,
    lines: &[(&'static str, Vec<(f64, f64)>)],
    shift_at: Option<u64>,
) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let points = || lines.iter().flat_map(|(_, p)| p.iter());
    let x_max = points().map(|p| p.0).fold(1.0, f64::max);
    let y_max = points().map(|p| p.1).fold(0.0, f64::max).max(1e-9) * 1.05;
    let root = SVGBackend::new(path, (720, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)?;
    chart
        .configure_mesh()
        .x_desc("decisions")
        .y_desc(y_desc)
        .draw()?;
    if let Some(at) = shift_at {
        let at = at as f64;
        chart
            .draw_series(LineSeries::new([(at, 0.0), (at, y_max)], BLACK.mix(0.4)))?
            .label("shift")
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.mix(0.4)));
    }
    for (name, points) in lines {
        let c = colour(name);
        chart
            .draw_series(LineSeries::new(points.iter().copied(), c.stroke_width(2)))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
