//! The reference distributions a model records at training time
//! (`cx.reference`): per monitored feature, the share of training rows in
//! each bin, the predictions' share per fixed bin on the held-out rows, and
//! the training base rate.
//!
//! Features are planned from the schema's blocks: a one-hot block is one
//! feature with a bin per slot (`device_type`); a hashed or multi-hot block
//! is one feature whose bins are its [`TOP_BUCKETS`] most frequent buckets,
//! `other` and `absent` (no column set); each column of a numeric block is
//! a feature (`placement_px.0`) with decile edges from the training rows.
//! A multi-hot block counts every bucket a row sets, so its shares are per
//! item, not per row. At most [`FEATURES_MAX`] features, in row order.
//!
//! A value under [`REFERENCE_KEY`] that does not parse or does not fit the
//! model's schema is refused with [`Error::Reference`] naming the key: a
//! model whose monitoring would silently compare against nonsense is worse
//! than one that says it has no reference.

use super::{
    bin_of, BINS_MAX, FEATURES_MAX, PREDICTION_EDGES, REFERENCE_BYTES_MAX, REFERENCE_KEY,
    TOP_BUCKETS,
};
use crate::error::{Error, Result};
use cx_features::{BlockKind, FeatureSchema};
use serde::{Deserialize, Serialize};

/// Format version of the JSON.
pub const REFERENCE_VERSION: u32 = 1;

/// Numeric values sampled per column for its edges.
const EDGE_SAMPLES_MAX: usize = 50_000;

/// How a feature's columns map to its bins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureKind {
    /// One bin per column of a one-hot block.
    Slots,
    /// The top buckets of a hashed or multi-hot block, then `other`, then
    /// `absent`.
    TopBuckets,
    /// One numeric column, binned by `edges`; a column absent from a sparse
    /// row holds 0.
    Numeric,
}

/// One monitored feature.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureRef {
    /// `device_type`, or `placement_px.0` for a numeric block's column.
    pub name: String,
    /// The schema block it comes from.
    pub block: String,
    /// How its columns map to bins.
    pub kind: FeatureKind,
    /// First column.
    pub offset: u32,
    /// Columns (1 for a numeric feature).
    pub width: u32,
    /// [`FeatureKind::TopBuckets`]: the buckets (column - offset) with a
    /// bin of their own, most frequent first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buckets: Vec<u32>,
    /// [`FeatureKind::Numeric`]: ascending interior edges.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edges: Vec<f32>,
    /// Share of the training rows (of hits, for multi-hot) per bin.
    pub share: Vec<f64>,
}

impl FeatureRef {
    /// Number of bins.
    pub fn bins(&self) -> usize {
        match self.kind {
            FeatureKind::Slots => self.width as usize,
            FeatureKind::TopBuckets => self.buckets.len() + 2,
            FeatureKind::Numeric => self.edges.len() + 1,
        }
    }

    /// The bin of a non-zero `value` in column `column - offset`.
    pub fn bin(&self, within: u32, value: f32) -> usize {
        match self.kind {
            FeatureKind::Slots => within as usize,
            FeatureKind::TopBuckets => self
                .buckets
                .iter()
                .position(|&b| b == within)
                .unwrap_or(self.buckets.len()),
            FeatureKind::Numeric => bin_of(&self.edges, value),
        }
    }

    /// The bin a row without any of its columns counts in (none for a
    /// one-hot block, whose rows always set one).
    pub fn absent_bin(&self) -> Option<usize> {
        match self.kind {
            FeatureKind::Slots => None,
            FeatureKind::TopBuckets => Some(self.buckets.len() + 1),
            FeatureKind::Numeric => Some(bin_of(&self.edges, 0.0)),
        }
    }
}

/// The predictions' reference: calibrated `p` of each held-out row's best
/// column (its highest click probability over the model's offers).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredictionRef {
    /// Ascending interior edges ([`PREDICTION_EDGES`] when written).
    pub edges: Vec<f32>,
    /// Share per bin.
    pub share: Vec<f64>,
    /// Held-out rows behind it.
    pub rows: u64,
    /// Their mean.
    pub mean: f64,
}

/// Everything `cx.reference` holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reference {
    /// [`REFERENCE_VERSION`].
    pub version: u32,
    /// The feature schema the rows were extracted with.
    pub schema_id: String,
    /// Training rows behind the feature shares.
    pub rows: u64,
    /// Share of training rows with a click.
    pub base_ctr: f64,
    /// Monitored features, in row order.
    pub features: Vec<FeatureRef>,
    /// Blocks left unmonitored past [`FEATURES_MAX`] features.
    #[serde(default)]
    pub skipped_blocks: Vec<String>,
    /// The predictions' reference.
    pub prediction: PredictionRef,
}

fn bad(reason: impl Into<String>) -> Error {
    Error::Reference {
        key: REFERENCE_KEY,
        reason: reason.into(),
    }
}

impl Reference {
    /// The reference of dense `rows` (`[n][schema.width()]`, as extracted,
    /// before normalisation), their `labels` (1 for a click) and
    /// `top_predictions` (each held-out row's highest calibrated `p`).
    pub fn build(
        schema: &FeatureSchema,
        rows: &[f32],
        labels: &[f32],
        top_predictions: &[f32],
    ) -> Result<Self> {
        let width = schema.width();
        if width == 0 || !rows.len().is_multiple_of(width) || rows.is_empty() {
            return Err(bad(format!(
                "{} values are not whole rows of {width} columns",
                rows.len()
            )));
        }
        let n = rows.len() / width;
        let mut features = Vec::new();
        let mut skipped = Vec::new();
        for block in schema.blocks() {
            let planned = plan(block, rows, width)?;
            if features.len() + planned.len() > FEATURES_MAX {
                skipped.push(block.name.to_string());
                continue;
            }
            features.extend(planned);
        }
        for feature in &mut features {
            feature.share = shares(feature, rows, width);
        }
        let clicks: f64 = labels.iter().map(|&l| f64::from(l)).sum();
        let base_ctr = if labels.is_empty() {
            0.0
        } else {
            clicks / labels.len() as f64
        };
        Ok(Self {
            version: REFERENCE_VERSION,
            schema_id: schema.id().to_string(),
            rows: n as u64,
            base_ctr,
            features,
            skipped_blocks: skipped,
            prediction: prediction_ref(top_predictions),
        })
    }

    /// The JSON stored under [`REFERENCE_KEY`].
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("plain data serialises")
    }

    /// Parses and checks `text` against `schema`; the error names the key.
    pub fn from_json(text: &str, schema: &FeatureSchema) -> Result<Self> {
        if text.len() > REFERENCE_BYTES_MAX {
            return Err(bad(format!(
                "{} bytes, more than {REFERENCE_BYTES_MAX}",
                text.len()
            )));
        }
        let reference: Self = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        reference.check(schema)?;
        Ok(reference)
    }

    /// Checks every limit and that the features fit `schema`.
    pub fn check(&self, schema: &FeatureSchema) -> Result<()> {
        if self.version != REFERENCE_VERSION {
            return Err(bad(format!(
                "version {} is not {REFERENCE_VERSION}",
                self.version
            )));
        }
        if self.schema_id != schema.id() {
            return Err(bad(format!(
                "recorded for feature schema {}, the model reads {}",
                self.schema_id,
                schema.id()
            )));
        }
        if !(self.base_ctr.is_finite() && (0.0..=1.0).contains(&self.base_ctr)) {
            return Err(bad(format!("base_ctr {} is not in [0, 1]", self.base_ctr)));
        }
        if self.features.len() > FEATURES_MAX || self.skipped_blocks.len() > 256 {
            return Err(bad(format!(
                "{} features, more than {FEATURES_MAX}",
                self.features.len()
            )));
        }
        let mut used = vec![false; schema.width()];
        for f in &self.features {
            check_feature(f, schema.width(), &mut used)?;
        }
        let p = &self.prediction;
        check_edges("prediction", &p.edges)?;
        check_share("prediction", &p.share, p.edges.len() + 1)?;
        if !(p.mean.is_finite() && (0.0..=1.0).contains(&p.mean)) {
            return Err(bad(format!("prediction mean {} is not in [0, 1]", p.mean)));
        }
        Ok(())
    }
}

fn check_feature(f: &FeatureRef, width: usize, used: &mut [bool]) -> Result<()> {
    let name = &f.name;
    if name.is_empty() || name.len() > 64 || f.block.len() > 64 {
        return Err(bad(format!(
            "feature name {name:?} is empty or over 64 bytes"
        )));
    }
    let end = f.offset as usize + f.width as usize;
    if f.width == 0 || end > width {
        return Err(bad(format!(
            "feature {name}: columns {}..{end} are not within the schema's {width}",
            f.offset
        )));
    }
    match f.kind {
        FeatureKind::Slots if f.width as usize > BINS_MAX => {
            return Err(bad(format!(
                "feature {name}: {} slots, more than {BINS_MAX}",
                f.width
            )));
        }
        FeatureKind::TopBuckets => {
            let mut seen = f.buckets.clone();
            seen.sort_unstable();
            seen.dedup();
            if f.buckets.len() > TOP_BUCKETS
                || seen.len() != f.buckets.len()
                || f.buckets.iter().any(|&b| b >= f.width)
            {
                return Err(bad(format!(
                    "feature {name}: buckets must be at most {TOP_BUCKETS} distinct columns of the block"
                )));
            }
        }
        FeatureKind::Numeric => {
            if f.width != 1 {
                return Err(bad(format!(
                    "feature {name}: a numeric feature is one column"
                )));
            }
            check_edges(name, &f.edges)?;
        }
        FeatureKind::Slots => {}
    }
    check_share(name, &f.share, f.bins())?;
    for (c, taken) in used
        .iter_mut()
        .enumerate()
        .take(end)
        .skip(f.offset as usize)
    {
        if std::mem::replace(taken, true) {
            return Err(bad(format!(
                "feature {name}: column {c} belongs to another feature"
            )));
        }
    }
    Ok(())
}

fn check_edges(name: &str, edges: &[f32]) -> Result<()> {
    if edges.len() >= BINS_MAX
        || edges.iter().any(|e| !e.is_finite())
        || edges.windows(2).any(|w| w[0] >= w[1])
    {
        return Err(bad(format!(
            "{name}: edges must be fewer than {BINS_MAX}, finite and strictly ascending"
        )));
    }
    Ok(())
}

fn check_share(name: &str, share: &[f64], bins: usize) -> Result<()> {
    let sum: f64 = share.iter().sum();
    if share.len() != bins
        || share.iter().any(|s| !s.is_finite() || *s < 0.0)
        || (sum - 1.0).abs() > 1e-3
    {
        return Err(bad(format!(
            "{name}: share must be {bins} non-negative values summing to 1"
        )));
    }
    Ok(())
}

/// The features of one block, shares not yet counted.
fn plan(block: &cx_features::Block, rows: &[f32], width: usize) -> Result<Vec<FeatureRef>> {
    let feature = |name: String, kind, offset: usize, w: usize| FeatureRef {
        name,
        block: block.name.to_string(),
        kind,
        offset: offset as u32,
        width: w as u32,
        buckets: Vec::new(),
        edges: Vec::new(),
        share: Vec::new(),
    };
    Ok(match block.kind {
        BlockKind::OneHot { .. } if block.width <= BINS_MAX => vec![feature(
            block.name.into(),
            FeatureKind::Slots,
            block.offset,
            block.width,
        )],
        BlockKind::OneHot { .. } | BlockKind::Hashed { .. } | BlockKind::MultiHot { .. } => {
            let mut f = feature(
                block.name.into(),
                FeatureKind::TopBuckets,
                block.offset,
                block.width,
            );
            let mut counts = vec![0u64; block.width];
            for row in rows.chunks_exact(width) {
                for (c, &v) in counts.iter_mut().zip(&row[block.columns()]) {
                    *c += u64::from(v != 0.0);
                }
            }
            let mut order: Vec<usize> = (0..block.width).filter(|&i| counts[i] > 0).collect();
            order.sort_by(|&a, &b| counts[b].cmp(&counts[a]).then(a.cmp(&b)));
            f.buckets = order.iter().take(TOP_BUCKETS).map(|&i| i as u32).collect();
            vec![f]
        }
        BlockKind::Log1p { .. } | BlockKind::Cyclic { .. } | BlockKind::Store { .. } => block
            .columns()
            .enumerate()
            .map(|(i, column)| {
                let name = if block.width == 1 {
                    block.name.to_string()
                } else {
                    format!("{}.{i}", block.name)
                };
                let mut f = feature(name, FeatureKind::Numeric, column, 1);
                f.edges = decile_edges(rows, width, column);
                f
            })
            .collect(),
    })
}

/// Distinct decile values of a column (from at most [`EDGE_SAMPLES_MAX`]
/// evenly strided rows), as interior edges.
fn decile_edges(rows: &[f32], width: usize, column: usize) -> Vec<f32> {
    let n = rows.len() / width;
    let stride = n.div_ceil(EDGE_SAMPLES_MAX).max(1);
    let mut sample: Vec<f32> = (0..n)
        .step_by(stride)
        .map(|r| rows[r * width + column])
        .filter(|v| v.is_finite())
        .collect();
    if sample.is_empty() {
        return vec![0.0];
    }
    sample.sort_by(f32::total_cmp);
    let mut edges: Vec<f32> = (1..10)
        .map(|i| sample[(i * sample.len() / 10).min(sample.len() - 1)])
        .collect();
    edges.dedup();
    edges
}

fn shares(f: &FeatureRef, rows: &[f32], width: usize) -> Vec<f64> {
    let mut counts = vec![0u64; f.bins()];
    let (start, end) = (f.offset as usize, f.offset as usize + f.width as usize);
    for row in rows.chunks_exact(width) {
        let mut any = false;
        for (i, &v) in row[start..end].iter().enumerate() {
            if v != 0.0 {
                counts[f.bin(i as u32, v)] += 1;
                any = true;
            }
        }
        if !any {
            if let Some(b) = f.absent_bin() {
                counts[b] += 1;
            }
        }
    }
    normalise(&counts)
}

fn normalise(counts: &[u64]) -> Vec<f64> {
    let n: u64 = counts.iter().sum();
    if n == 0 {
        // Nothing seen: every bin alike, so the shares still sum to 1.
        return vec![1.0 / counts.len() as f64; counts.len()];
    }
    counts.iter().map(|&c| c as f64 / n as f64).collect()
}

fn prediction_ref(top: &[f32]) -> PredictionRef {
    let mut counts = vec![0u64; PREDICTION_EDGES.len() + 1];
    let mut sum = 0.0;
    let mut rows = 0u64;
    for &p in top.iter().filter(|p| p.is_finite()) {
        counts[bin_of(&PREDICTION_EDGES, p)] += 1;
        sum += f64::from(p.clamp(0.0, 1.0));
        rows += 1;
    }
    PredictionRef {
        edges: PREDICTION_EDGES.to_vec(),
        share: normalise(&counts),
        rows,
        mean: if rows == 0 { 0.0 } else { sum / rows as f64 },
    }
}
