//! The store section of a feature row (schema version 2): the online
//! feature store's values of the request's user, as the model reads them.
//!
//! A schema built with [`FeatureSchema::with_store`] appends one block,
//! `store`, after the v1 blocks. Its columns follow the store's
//! definitions ([`cx_featurestore::Definitions`]) in row order, stored
//! features first, then computed ones:
//!
//! | value type | columns | value |
//! | --- | --- | --- |
//! | `f32`, `i64` (and computed ratios) | 1 | `sign(x) ln(1 + min(abs(x), 1e9))`; not finite: 0 |
//! | `bool` (and computed thresholds) | 1 | 1 or 0 |
//! | `timestamp` | 1 | age in days at the request, `ln(1 + clamp(days, 0, 36500))` |
//! | `category` | one per label | 1 in the column of the value's label |
//!
//! The values are what a store read gives ([`FeatureValues`]): fresh
//! values as stored, missing and stale ones as their defaults. So a
//! request of an unknown user, or of an engine without a store, gets the
//! defaults' columns: the same columns training gave a user's first row.
//!
//! The section is part of the schema's canonical definition (the
//! definitions' own id and every column), so a model trained with other
//! definitions has another schema id and is refused.
//!
//! Data layout: the section keeps one small descriptor per column
//! (feature id and encoding) and writes through the same [`RowSink`] as
//! the other blocks, so the dense and sparse forms stay equal and a read
//! allocates nothing.

use super::extract::RowSink;
use crate::error::{Error, Result};
use cx_featurestore::{Definitions, FeatureId, FeatureValues, Value, ValueType};
use std::fmt::Write as _;
use std::sync::Arc;

/// Largest absolute number told apart; larger ones read as this value.
pub const STORE_NUMBER_MAX: f64 = 1e9;
/// Largest age in days told apart (about 100 years).
pub const STORE_AGE_DAYS_MAX: f64 = 36_500.0;
/// Most columns the section may have.
pub const STORE_COLUMNS_MAX: usize = 256;
/// Most features the section may read: each sets at most one non-zero
/// column, so this is what the section adds to
/// [`crate::SPARSE_NONZERO_MAX`].
pub const STORE_FEATURES_MAX: usize = 64;

/// How one store feature becomes columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreEncoding {
    /// A signed log of the number.
    Number,
    /// 1 or 0.
    Flag,
    /// The log of the age in days at the request time.
    AgeDays,
    /// One column per label; `labels` of them.
    OneHot {
        /// Number of labels.
        labels: u16,
    },
}

impl StoreEncoding {
    fn name(self) -> &'static str {
        match self {
            Self::Number => "signed_log1p",
            Self::Flag => "flag",
            Self::AgeDays => "age_days_log1p",
            Self::OneHot { .. } => "one_hot",
        }
    }

    /// Columns the encoding takes.
    pub fn width(self) -> usize {
        match self {
            Self::OneHot { labels } => usize::from(labels),
            _ => 1,
        }
    }
}

/// One feature of the section.
#[derive(Clone, Debug, PartialEq)]
pub struct StoreColumn {
    /// The feature's id in the definitions.
    pub feature: FeatureId,
    /// Its name.
    pub name: String,
    /// Its encoding.
    pub encoding: StoreEncoding,
    /// Its first column, relative to the section's start.
    pub offset: usize,
}

/// The store section: the definitions it reads and its columns.
#[derive(Clone, Debug)]
pub struct StoreSection {
    definitions: Arc<Definitions>,
    columns: Vec<StoreColumn>,
    width: usize,
    /// What a read of a user never written gives: every stored feature
    /// its default, every computed one evaluated from them.
    defaults: FeatureValues,
}

impl PartialEq for StoreSection {
    fn eq(&self, other: &Self) -> bool {
        self.definitions.id() == other.definitions.id() && self.columns == other.columns
    }
}

impl StoreSection {
    /// The section for `definitions`; refused when wider than
    /// [`STORE_COLUMNS_MAX`].
    pub fn new(definitions: Arc<Definitions>) -> Result<Self> {
        let mut columns: Vec<StoreColumn> = Vec::with_capacity(definitions.len());
        let mut width = 0;
        let names = definitions
            .stored()
            .iter()
            .map(|d| d.name.as_str())
            .chain(definitions.computed().iter().map(|c| c.name.as_str()));
        for name in names {
            let id = definitions.find(name).ok_or_else(|| {
                Error::BadSchema(format!(
                    "store feature `{name}` has no id in its definitions"
                ))
            })?;
            let encoding = encoding_of(&definitions, id)?;
            columns.push(StoreColumn {
                feature: id,
                name: definitions.name(id).to_string(),
                encoding,
                offset: width,
            });
            width += encoding.width();
        }
        if columns.len() > STORE_FEATURES_MAX {
            return Err(Error::LimitExceeded {
                what: "store section features".into(),
                value: columns.len(),
                limit: STORE_FEATURES_MAX,
            });
        }
        if width > STORE_COLUMNS_MAX {
            return Err(Error::LimitExceeded {
                what: "store section columns".into(),
                value: width,
                limit: STORE_COLUMNS_MAX,
            });
        }
        let defaults = defaults_of(&definitions);
        Ok(Self {
            definitions,
            columns,
            width,
            defaults,
        })
    }

    /// What a read of an unknown user gives (every feature its default).
    pub fn defaults(&self) -> &FeatureValues {
        &self.defaults
    }

    /// The definitions the section reads.
    pub fn definitions(&self) -> &Arc<Definitions> {
        &self.definitions
    }

    /// Its columns, in row order.
    pub fn columns(&self) -> &[StoreColumn] {
        &self.columns
    }

    /// Its width.
    pub fn width(&self) -> usize {
        self.width
    }

    /// The lines the schema's canonical definition gains.
    pub(super) fn canonical(&self) -> String {
        let mut text = format!(
            "store definitions={} number_max={STORE_NUMBER_MAX} age_days_max={STORE_AGE_DAYS_MAX}\n",
            self.definitions.id()
        );
        for c in &self.columns {
            let _ = writeln!(
                text,
                "store_column name={} encoding={} offset={} width={}",
                c.name,
                c.encoding.name(),
                c.offset,
                c.encoding.width()
            );
        }
        text
    }

    /// Writes the section of `values` read at `now_s` (unix seconds),
    /// starting at column `offset`. `values` must come from the same
    /// definitions (by id).
    pub(super) fn write<R: RowSink + ?Sized>(
        &self,
        values: &FeatureValues,
        now_s: i64,
        offset: usize,
        row: &mut R,
    ) {
        for c in &self.columns {
            let Some(value) = values.value(c.feature) else {
                continue;
            };
            let at = offset + c.offset;
            match (c.encoding, value) {
                (StoreEncoding::OneHot { labels }, Value::Category(i)) if i < labels => {
                    row.put(at + usize::from(i), 1.0)
                }
                (StoreEncoding::OneHot { .. }, _) => {}
                (StoreEncoding::Flag, v) => row.put(at, if v.as_f64() != 0.0 { 1.0 } else { 0.0 }),
                (StoreEncoding::AgeDays, v) => row.put(at, age_days(v.as_f64(), now_s)),
                (StoreEncoding::Number, v) => row.put(at, signed_log(v.as_f64())),
            }
        }
    }

    /// Whether `values` were read under this section's definitions.
    pub(super) fn check_values(&self, values: &FeatureValues) -> Result<()> {
        let theirs = values.definitions().id();
        if theirs != self.definitions.id() {
            return Err(Error::BadSchema(format!(
                "store values of definitions {theirs}, but the schema's store section reads {}",
                self.definitions.id()
            )));
        }
        Ok(())
    }
}

/// A read of an entity never written: the defaults, with the computed
/// features evaluated from them (which no time changes).
fn defaults_of(definitions: &Arc<Definitions>) -> FeatureValues {
    let mut values = FeatureValues::new(definitions.clone());
    values.set_defaults(0);
    values
}

fn encoding_of(defs: &Definitions, id: FeatureId) -> Result<StoreEncoding> {
    let t = defs
        .value_type(id)
        .ok_or_else(|| Error::BadSchema(format!("store feature {} has no type", id.index())))?;
    Ok(match t {
        ValueType::F32 | ValueType::I64 => StoreEncoding::Number,
        ValueType::Bool => StoreEncoding::Flag,
        ValueType::Timestamp => StoreEncoding::AgeDays,
        ValueType::Category => {
            let labels = defs
                .stored()
                .get(id.index())
                .map_or(0, |d| d.categories.len());
            StoreEncoding::OneHot {
                labels: u16::try_from(labels).unwrap_or(u16::MAX),
            }
        }
    })
}

/// `sign(x) ln(1 + min(|x|, STORE_NUMBER_MAX))`; 0 for a non-finite `x`.
pub fn signed_log(x: f64) -> f32 {
    if !x.is_finite() {
        return 0.0;
    }
    (x.signum() * x.abs().min(STORE_NUMBER_MAX).ln_1p()) as f32
}

/// `ln(1 + clamp((now - t) / 1 day, 0, STORE_AGE_DAYS_MAX))`.
pub fn age_days(t_s: f64, now_s: i64) -> f32 {
    let days = (now_s as f64 - t_s) / 86_400.0;
    let days = if days.is_nan() { 0.0 } else { days };
    days.clamp(0.0, STORE_AGE_DAYS_MAX).ln_1p() as f32
}
