//! The sweep's plot: the accepted requests' latency percentiles (p50, p90,
//! p99, p99.9) against offered load, as SVG, with the SLO as a line and,
//! with `--compare`, an earlier sweep's curves dashed and lighter.
//!
//! Both axes are logarithmic: sweeps step rates by a factor, and latencies
//! span microseconds to seconds once the server saturates. Points come
//! straight from the [`SweepReport`]s, so a plot can be redrawn from JSON
//! alone.

use super::sweep::SweepReport;
use crate::error::{Error, Result};
use plotters::prelude::*;
use std::path::Path;

/// The option that names the plot.
const SVG_OPTION: &str = "--svg";

/// Plot size, pixels.
const SIZE_PX: (u32, u32) = (800, 560);

/// Each plotted percentile's colour, in [`Percentiles::plotted`] order.
///
/// [`Percentiles::plotted`]: super::Percentiles::plotted
const COLOURS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
];

/// One sweep's curves: a label and, per percentile, (offered rate, µs).
struct Curves {
    label: String,
    lines: Vec<(&'static str, Vec<(f64, f64)>)>,
}

impl Curves {
    fn of(label: &str, sweep: &SweepReport) -> Self {
        let mut lines: Vec<(&'static str, Vec<(f64, f64)>)> = ["p50", "p90", "p99", "p99.9"]
            .into_iter()
            .map(|name| (name, Vec::new()))
            .collect();
        for step in &sweep.steps {
            let r = &step.report;
            if r.latency_ok.count == 0 {
                continue;
            }
            for (line, (_, ns)) in lines.iter_mut().zip(r.latency_ok.plotted()) {
                line.1
                    .push((r.offered_rate_per_s, (ns as f64 / 1000.0).max(0.001)));
            }
        }
        Self {
            label: label.to_string(),
            lines,
        }
    }

    fn points(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.lines.iter().flat_map(|(_, p)| p.iter().copied())
    }
}

/// Writes the plot of `sweep` to `path`; `compare` (a label and an earlier
/// sweep) adds that sweep's curves, dashed and lighter.
pub fn write_sweep_svg(
    path: &Path,
    sweep: &SweepReport,
    compare: Option<(&str, &SweepReport)>,
) -> Result<()> {
    let current = Curves::of("this run", sweep);
    let earlier = compare.map(|(label, other)| Curves::of(label, other));
    draw(path, &current, earlier.as_ref(), sweep.slo_us).map_err(|e| Error::Content {
        option: SVG_OPTION,
        path: path.display().to_string(),
        what: format!("cannot draw the plot: {e}"),
    })
}

/// The axes' ranges: every point and the SLO, with a margin.
fn ranges(curves: &[&Curves], slo_us: f64) -> ((f64, f64), (f64, f64)) {
    let points: Vec<(f64, f64)> = curves.iter().flat_map(|c| c.points()).collect();
    let fold = |f: fn(&(f64, f64)) -> f64| {
        points
            .iter()
            .map(f)
            .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)))
    };
    let (x_lo, x_hi) = fold(|p| p.0);
    let (y_lo, y_hi) = fold(|p| p.1);
    if points.is_empty() {
        return ((1.0, 10.0), (slo_us / 10.0, slo_us * 10.0));
    }
    let x = (x_lo / 1.2, x_hi * 1.2);
    let (y_lo, y_hi) = (y_lo.min(slo_us) / 1.5, y_hi.max(slo_us) * 1.5);
    // Headroom above the data for the legend: about a third of the height.
    let decades = (y_hi / y_lo).log10();
    let headroom = 10f64.powf((0.5 * decades).max(1.0));
    (x, (y_lo, y_hi * headroom))
}

/// `250 µs`, `12 ms`, `1.5 s`: a latency for the axis.
fn latency_label(us: f64) -> String {
    if us >= 1e6 {
        format!("{} s", trim(us / 1e6))
    } else if us >= 1e3 {
        format!("{} ms", trim(us / 1e3))
    } else {
        format!("{} µs", trim(us))
    }
}

/// `20k`, `1.5M`: a rate for the axis.
fn rate_label(rate: f64) -> String {
    if rate >= 1e6 {
        format!("{}M", trim(rate / 1e6))
    } else if rate >= 1e3 {
        format!("{}k", trim(rate / 1e3))
    } else {
        trim(rate)
    }
}

fn trim(v: f64) -> String {
    let text = format!("{v:.1}");
    text.trim_end_matches(".0").to_string()
}

fn draw(
    path: &Path,
    current: &Curves,
    earlier: Option<&Curves>,
    slo_us: f64,
) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let all: Vec<&Curves> = std::iter::once(current).chain(earlier).collect();
    let ((x_lo, x_hi), (y_lo, y_hi)) = ranges(&all, slo_us);
    let root = SVGBackend::new(path, SIZE_PX).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Latency of accepted requests against offered load",
            ("sans-serif", 20),
        )
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d((x_lo..x_hi).log_scale(), (y_lo..y_hi).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("offered load, requests/s")
        .y_desc("latency")
        .x_label_formatter(&|x| rate_label(*x))
        .y_label_formatter(&|y| latency_label(*y))
        .draw()?;
    let slo = [(x_lo, slo_us), (x_hi, slo_us)];
    chart
        .draw_series(DashedLineSeries::new(slo, 4, 4, BLACK.mix(0.6).into()))?
        .label(format!("SLO: p99 <= {slo_us} µs"))
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.mix(0.6)));
    if let Some(earlier) = earlier {
        draw_earlier(&mut chart, earlier)?;
    }
    draw_current(&mut chart, current)?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// The chart type both curve sets are drawn on.
type Chart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<
        plotters::coord::combinators::LogCoord<f64>,
        plotters::coord::combinators::LogCoord<f64>,
    >,
>;

fn draw_current(
    chart: &mut Chart<'_, '_>,
    curves: &Curves,
) -> std::result::Result<(), Box<dyn std::error::Error>> {
    for ((name, points), colour) in curves.lines.iter().zip(COLOURS) {
        let style = colour.stroke_width(2);
        chart
            .draw_series(LineSeries::new(points.iter().copied(), style))?
            .label(format!("{name} ({})", curves.label))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, colour.filled())))?;
    }
    Ok(())
}

fn draw_earlier(
    chart: &mut Chart<'_, '_>,
    curves: &Curves,
) -> std::result::Result<(), Box<dyn std::error::Error>> {
    for ((name, points), colour) in curves.lines.iter().zip(COLOURS) {
        let style = ShapeStyle::from(colour.mix(0.45)).stroke_width(2);
        chart
            .draw_series(DashedLineSeries::new(points.iter().copied(), 6, 4, style))?
            .label(format!("{name} ({})", curves.label))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, style)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_labelled_short() {
        assert_eq!(rate_label(20_000.0), "20k");
        assert_eq!(rate_label(1_500_000.0), "1.5M");
        assert_eq!(rate_label(500.0), "500");
        assert_eq!(latency_label(100.0), "100 µs");
        assert_eq!(latency_label(25_000.0), "25 ms");
        assert_eq!(latency_label(1_500_000.0), "1.5 s");
    }
}
