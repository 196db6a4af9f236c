//! The shared path from a click log to feature rows, used by `cx train` and
//! `cx eval`: read the CSV through its dataset spec, report what was
//! rejected, map offers to output columns, and extract features with the
//! versioned schema.

use crate::error::{Error, Result};
use cx_datasets::clicklog::{read_click_log, ClickLog, DatasetSpec, LoadReport};
use cx_engine::featurestore::history::Visibility;
use cx_features::{FeatureNorm, FeatureSchema};
use std::io::Write;
use std::path::Path;

/// Metadata key of a model's feature normalisation (JSON of [`FeatureNorm`]).
pub const FEATURE_NORM_KEY: &str = "cx.feature_norm";
/// Metadata key of a model's training summary (JSON).
pub const TRAINING_KEY: &str = "cx.training";

/// Labelled feature rows, each with its output column.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rows {
    /// Features, `[rows][width]`.
    pub x: Vec<f32>,
    /// Feature width.
    pub width: usize,
    /// Output column of each row.
    pub column: Vec<u32>,
    /// 1.0 for a click.
    pub label: Vec<f32>,
    /// True click probability per row, for synthetic data with an oracle column; else empty.
    pub oracle: Vec<f32>,
}

impl Rows {
    /// Rows held.
    pub fn len(&self) -> usize {
        self.label.len()
    }

    /// Whether no rows are held.
    pub fn is_empty(&self) -> bool {
        self.label.is_empty()
    }

    /// The rows at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Rows {
        let mut out = Rows {
            width: self.width,
            ..Rows::default()
        };
        for &i in indices {
            out.x
                .extend_from_slice(&self.x[i * self.width..(i + 1) * self.width]);
            out.column.push(self.column[i]);
            out.label.push(self.label[i]);
            out.oracle.extend(self.oracle.get(i));
        }
        out
    }

    /// A view for the trainer.
    pub fn examples(&self) -> cx_train::Examples<'_> {
        cx_train::Examples {
            x: &self.x,
            inputs: self.width,
            column: &self.column,
            label: &self.label,
        }
    }
}

/// Reads `data` through the spec at `spec`, printing the load report to `log`.
pub fn read(data: &Path, spec: &Path, log: &mut dyn Write) -> Result<(ClickLog, DatasetSpec)> {
    let spec_value = DatasetSpec::load(spec).map_err(|source| Error::Data {
        what: "cannot use dataset spec",
        path: spec.display().to_string(),
        source,
    })?;
    let file = std::fs::File::open(data).map_err(|source| Error::File {
        path: data.display().to_string(),
        source,
    })?;
    let (click_log, report) =
        read_click_log(std::io::BufReader::new(file), &spec_value, usize::MAX).map_err(
            |source| Error::Data {
                what: "cannot read click log",
                path: data.display().to_string(),
                source,
            },
        )?;
    write_report(log, &data.display().to_string(), &report)?;
    if click_log.is_empty() {
        return Err(Error::Mismatch(format!(
            "{}: no usable rows",
            data.display()
        )));
    }
    Ok((click_log, spec_value))
}

fn write_report(log: &mut dyn Write, origin: &str, report: &LoadReport) -> Result<()> {
    writeln!(
        log,
        "{origin}: {} rows read, {} kept, {} rejected",
        report.rows_read,
        report.rows_kept,
        report.rows_rejected()
    )
    .map_err(Error::Output)?;
    for (reason, count) in &report.rejected {
        writeln!(log, "  rejected ({reason}): {count}").map_err(Error::Output)?;
    }
    for example in &report.examples {
        writeln!(log, "  e.g. {example}").map_err(Error::Output)?;
    }
    Ok(())
}

/// Keeps the rows showing one of `offer_ids`, extracts their features and
/// applies `norm`. Prints how many rows were dropped for their offer.
pub fn featurize(
    mut click_log: ClickLog,
    offer_ids: &[u64],
    schema: &FeatureSchema,
    norm: Option<&FeatureNorm>,
    log: &mut dyn Write,
) -> Result<Rows> {
    let keep = kept_rows(&click_log, offer_ids);
    let width = schema.width();
    let kept = keep.iter().filter(|&&k| k).count();
    let mut x = vec![0.0f32; kept * width];
    match schema.store_section() {
        None => {
            let contexts = click_log.contexts.iter().zip(&keep).filter(|(_, &k)| k);
            for ((ctx, _), row) in contexts.zip(x.chunks_exact_mut(width)) {
                extract_row(schema, ctx, None, norm, row)?;
            }
        }
        Some((section, _)) => {
            let definitions = section.definitions().clone();
            let report = super::history::featurize_with(
                &click_log,
                &keep,
                definitions,
                schema,
                norm,
                &mut x,
                Visibility::StrictlyBefore,
            )?;
            writeln!(
                log,
                "  store features: {} rows replayed in time order for {} users ({} values written, {} rows without a user)",
                report.rows, report.users, report.written, report.no_user
            )
            .map_err(Error::Output)?;
        }
    }
    // The oracle column is per row of the log: keep the same rows.
    let oracle = if click_log.oracle.len() == keep.len() {
        let pairs = click_log.oracle.iter().zip(&keep);
        pairs.filter(|(_, &k)| k).map(|(&o, _)| o).collect()
    } else {
        Vec::new()
    };
    let (column, dropped) = click_log.keep_offers(offer_ids);
    if dropped > 0 {
        writeln!(
            log,
            "  dropped {dropped} rows whose offer is not one of the {} output columns",
            offer_ids.len()
        )
        .map_err(Error::Output)?;
    }
    Ok(Rows {
        x,
        width,
        column,
        label: click_log.labels,
        oracle,
    })
}

/// Whether each row's offer is one of `offer_ids` (the rows
/// [`ClickLog::keep_offers`] keeps).
fn kept_rows(click_log: &ClickLog, offer_ids: &[u64]) -> Vec<bool> {
    let ids: std::collections::HashSet<u64> = offer_ids.iter().copied().collect();
    click_log.offers.iter().map(|o| ids.contains(o)).collect()
}

/// One dense row of `ctx` (and its user's store features), normalised.
pub(super) fn extract_row(
    schema: &FeatureSchema,
    ctx: &cx_features::RequestContext,
    store: Option<&cx_engine::featurestore::FeatureValues>,
    norm: Option<&FeatureNorm>,
    row: &mut [f32],
) -> Result<()> {
    schema
        .extract_with_store(ctx, store, row)
        .map_err(|e| Error::Mismatch(format!("feature extraction: {e}")))?;
    if let Some(norm) = norm {
        norm.apply(row)
            .map_err(|e| Error::Mismatch(format!("feature normalisation: {e}")))?;
    }
    Ok(())
}
