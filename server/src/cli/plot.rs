//! `cx eval --plot DIR`: the ROC curve and the reliability diagram as SVG.

use super::eval::Scored;
use crate::error::{Error, Result};
use plotters::prelude::*;
use std::path::Path;

/// Writes `roc.svg` and `reliability.svg` into `dir` (created if needed).
pub fn write_plots(dir: &Path, scored: &Scored) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| Error::File {
        path: dir.display().to_string(),
        source,
    })?;
    let curves = curves(scored);
    let roc_path = dir.join("roc.svg");
    roc(&roc_path, &curves).map_err(|e| plot_error(&roc_path, e))?;
    let reliability_path = dir.join("reliability.svg");
    reliability(&reliability_path, scored).map_err(|e| plot_error(&reliability_path, e))
}

fn plot_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Mismatch(format!("cannot draw {}: {e}", path.display()))
}

/// `(name, colour, points)` of each scorer's curve.
type Curve = (String, RGBColor, Vec<(f64, f64)>);

fn curves(scored: &Scored) -> Vec<Curve> {
    let label = &scored.rows.label;
    let mut out = vec![named("spiking model", BLUE, &scored.model, label)];
    if let Some(b) = &scored.baseline {
        out.push(named("logistic baseline", RED, b, label));
    }
    out
}

fn named(name: &str, colour: RGBColor, score: &[f32], label: &[f32]) -> Curve {
    let auc = cx_train::metrics::auc(score, label).unwrap_or(f64::NAN);
    (
        format!("{name} (AUC {auc:.3})"),
        colour,
        roc_points(score, label),
    )
}

/// The ROC curve: (false positive rate, true positive rate) at every distinct threshold.
pub fn roc_points(score: &[f32], label: &[f32]) -> Vec<(f64, f64)> {
    let positives = label.iter().filter(|&&y| y == 1.0).count().max(1) as f64;
    let negatives = label.iter().filter(|&&y| y != 1.0).count().max(1) as f64;
    let mut order: Vec<usize> = (0..score.len()).collect();
    order.sort_by(|&a, &b| score[b].total_cmp(&score[a]));
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut points = vec![(0.0, 0.0)];
    for (k, &i) in order.iter().enumerate() {
        if label[i] == 1.0 {
            tp += 1.0;
        } else {
            fp += 1.0;
        }
        let last_of_tie = order.get(k + 1).is_none_or(|&j| score[j] != score[i]);
        if last_of_tie {
            points.push((fp / negatives, tp / positives));
        }
    }
    points
}

fn roc(path: &Path, curves: &[Curve]) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (640, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("ROC", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..1f64, 0f64..1f64)?;
    chart
        .configure_mesh()
        .x_desc("false positive rate")
        .y_desc("true positive rate")
        .draw()?;
    chart.draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.3)))?;
    for (name, colour, points) in curves {
        let colour = *colour;
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                colour.stroke_width(2),
            ))?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

fn reliability(
    path: &Path,
    scored: &Scored,
) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let label = &scored.rows.label;
    let mut series = vec![("spiking model", BLUE, &scored.model)];
    if let Some(b) = &scored.baseline {
        series.push(("logistic baseline", RED, b));
    }
    let tables: Vec<_> = series
        .iter()
        .map(|(name, colour, p)| {
            (
                *name,
                *colour,
                cx_train::metrics::calibration_table(p, label, 10),
            )
        })
        .collect();
    let top = tables
        .iter()
        .flat_map(|(_, _, t)| {
            t.iter()
                .filter(|b| b.rows > 0)
                .map(|b| b.predicted_mean.max(b.observed_rate))
        })
        .fold(0.05f64, f64::max)
        .min(1.0);
    let root = SVGBackend::new(path, (640, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Reliability", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..top, 0f64..top)?;
    chart
        .configure_mesh()
        .x_desc("mean predicted probability")
        .y_desc("observed click rate")
        .draw()?;
    chart.draw_series(LineSeries::new([(0.0, 0.0), (top, top)], BLACK.mix(0.3)))?;
    for (name, colour, table) in tables {
        let points: Vec<(f64, f64)> = table
            .iter()
            .filter(|b| b.rows > 0)
            .map(|b| (b.predicted_mean, b.observed_rate))
            .collect();
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                colour.stroke_width(2),
            ))?
            .label(name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2)));
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, colour.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roc_points_run_from_origin_to_one_one() {
        let points = roc_points(&[0.9, 0.8, 0.3, 0.1], &[1.0, 0.0, 1.0, 0.0]);
        assert_eq!(
            points,
            [(0.0, 0.0), (0.0, 0.5), (0.5, 0.5), (0.5, 1.0), (1.0, 1.0)]
        );
    }

    #[test]
    fn tied_scores_make_one_point() {
        let points = roc_points(&[0.5, 0.5], &[1.0, 0.0]);
        assert_eq!(points, [(0.0, 0.0), (1.0, 1.0)]);
    }
}
