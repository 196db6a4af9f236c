//! What a model's training rows filled: the record `cx train` writes into
//! the model's metadata (`cx.training_inputs`), and the comparison with the
//! context fields a serving path fills (train/serve skew).
//!
//! [`TrainingInputs::of`] looks at the rows a model is trained on and
//! records each [`ContextField`] that at least one row filled, with the
//! number of rows and the dataset spec's columns behind it: for the generic
//! hashed features (`extra`) the `hashed` columns that filled an item, for
//! the generic numeric ones (`extra_numeric`) the `numeric` columns whose
//! slot held a value. [`TrainingInputs::unfilled_by`] then names what a
//! model depends on that a serving path never fills; the engine
//! (`cx_engine::skew`) decides what to do about it. `docs/DATASETS.md`,
//! "Train/serve skew", and `docs/MODEL_FORMAT.md` describe the record.

use crate::clicklog::{ClickLog, DatasetSpec};
use crate::error::{Error, Result};
use cx_features::RequestContext;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

/// Metadata key of the record in a model file (JSON of [`TrainingInputs`]).
pub const TRAINING_INPUTS_KEY: &str = "cx.training_inputs";

/// A field of [`RequestContext`], as the record names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContextField {
    /// `user_id`.
    UserId,
    /// `user_segments`.
    UserSegments,
    /// `device_type`.
    DeviceType,
    /// `os`.
    Os,
    /// `connection_type`.
    ConnectionType,
    /// `country`.
    Country,
    /// `region`.
    Region,
    /// `site_id`.
    SiteId,
    /// `is_app`.
    IsApp,
    /// `domain`.
    Domain,
    /// `categories`.
    Categories,
    /// `placement_width`.
    PlacementWidth,
    /// `placement_height`.
    PlacementHeight,
    /// `ad_position`.
    AdPosition,
    /// `bid_floor`.
    BidFloor,
    /// `timestamp`.
    Timestamp,
    /// `extra`: the generic hashed features (a spec's `hashed` columns).
    Extra,
    /// `extra_numeric`: the generic numeric features (a spec's `numeric` columns).
    ExtraNumeric,
}

impl ContextField {
    /// Every field, in [`RequestContext`] order.
    pub const ALL: [Self; 18] = [
        Self::UserId,
        Self::UserSegments,
        Self::DeviceType,
        Self::Os,
        Self::ConnectionType,
        Self::Country,
        Self::Region,
        Self::SiteId,
        Self::IsApp,
        Self::Domain,
        Self::Categories,
        Self::PlacementWidth,
        Self::PlacementHeight,
        Self::AdPosition,
        Self::BidFloor,
        Self::Timestamp,
        Self::Extra,
        Self::ExtraNumeric,
    ];

    /// The field's name in [`RequestContext`] (and in a spec's `[fields]`).
    pub fn name(self) -> &'static str {
        match self {
            Self::UserId => "user_id",
            Self::UserSegments => "user_segments",
            Self::DeviceType => "device_type",
            Self::Os => "os",
            Self::ConnectionType => "connection_type",
            Self::Country => "country",
            Self::Region => "region",
            Self::SiteId => "site_id",
            Self::IsApp => "is_app",
            Self::Domain => "domain",
            Self::Categories => "categories",
            Self::PlacementWidth => "placement_width",
            Self::PlacementHeight => "placement_height",
            Self::AdPosition => "ad_position",
            Self::BidFloor => "bid_floor",
            Self::Timestamp => "timestamp",
            Self::Extra => "extra",
            Self::ExtraNumeric => "extra_numeric",
        }
    }

    /// Whether `ctx` holds a value other than the field's missing one
    /// (`RequestContext::default()`'s).
    pub fn is_filled(self, ctx: &RequestContext) -> bool {
        match self {
            Self::UserId => !ctx.user_id.is_empty(),
            Self::UserSegments => !ctx.user_segments.is_empty(),
            Self::DeviceType => ctx.device_type != Default::default(),
            Self::Os => ctx.os != Default::default(),
            Self::ConnectionType => ctx.connection_type != Default::default(),
            Self::Country => !ctx.country.is_empty(),
            Self::Region => !ctx.region.is_empty(),
            Self::SiteId => !ctx.site_id.is_empty(),
            Self::IsApp => ctx.is_app,
            Self::Domain => !ctx.domain.is_empty(),
            Self::Categories => !ctx.categories.is_empty(),
            Self::PlacementWidth => ctx.placement_width != 0,
            Self::PlacementHeight => ctx.placement_height != 0,
            Self::AdPosition => ctx.ad_position != Default::default(),
            Self::BidFloor => ctx.bid_floor != 0.0,
            Self::Timestamp => ctx.timestamp != 0,
            Self::Extra => !ctx.extra.is_empty(),
            Self::ExtraNumeric => ctx.extra_numeric.iter().any(|&v| v != 0.0),
        }
    }
}

/// One context field the training rows filled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilledField {
    /// The field.
    pub field: ContextField,
    /// Training rows that filled it.
    pub rows: u64,
    /// The spec's columns behind it that filled a row: the `[fields]` and
    /// `[app]` columns, the `time` column, or for `extra` and
    /// `extra_numeric` the `hashed` and `numeric` columns, in spec order.
    pub columns: Vec<String>,
}

/// The record of what a model's training rows filled, stored under
/// [`TRAINING_INPUTS_KEY`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingInputs {
    /// The dataset spec's name.
    pub spec: String,
    /// Rows looked at (those whose offer has an output column).
    pub rows: u64,
    /// The fields at least one row filled, in [`ContextField::ALL`] order.
    pub fields: Vec<FilledField>,
}

impl TrainingInputs {
    /// What the rows of `log` whose offer is one of `offer_ids` (the rows
    /// a model with those output columns trains on) filled, read through
    /// `spec`.
    pub fn of(spec: &DatasetSpec, log: &ClickLog, offer_ids: &[u64]) -> Self {
        let kept: HashSet<u64> = offer_ids.iter().copied().collect();
        let rows: Vec<&RequestContext> = log
            .contexts
            .iter()
            .zip(&log.offers)
            .filter(|(_, offer)| kept.contains(offer))
            .map(|(ctx, _)| ctx)
            .collect();
        let fields = ContextField::ALL
            .iter()
            .filter_map(|&field| {
                let filled = rows.iter().filter(|ctx| field.is_filled(ctx)).count() as u64;
                (filled > 0).then(|| FilledField {
                    field,
                    rows: filled,
                    columns: columns_behind(spec, field, &rows),
                })
            })
            .collect();
        Self {
            spec: spec.name.clone(),
            rows: rows.len() as u64,
            fields,
        }
    }

    /// The record as stored in a model's metadata.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("plain data serialises")
    }

    /// Parses a stored record; the error names the key.
    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| Error::Metadata {
            key: TRAINING_INPUTS_KEY,
            reason: e.to_string(),
        })
    }

    /// The record in a model's extra metadata keys, if it has one (models
    /// written before it existed, and plain snnTorch exports, have none).
    pub fn from_meta(extra: &BTreeMap<String, String>) -> Result<Option<Self>> {
        extra
            .get(TRAINING_INPUTS_KEY)
            .map(|text| Self::from_json(text))
            .transpose()
    }

    /// The fields the training rows filled that a serving path filling only
    /// `fills` never fills, in record order.
    pub fn unfilled_by(&self, fills: &[ContextField]) -> Vec<&FilledField> {
        self.fields
            .iter()
            .filter(|f| !fills.contains(&f.field))
            .collect()
    }
}

/// The spec's columns behind `field` that filled at least one of `rows`.
fn columns_behind(
    spec: &DatasetSpec,
    field: ContextField,
    rows: &[&RequestContext],
) -> Vec<String> {
    match field {
        ContextField::Extra => spec
            .hashed
            .iter()
            .filter(|column| {
                rows.iter().any(|ctx| {
                    ctx.extra.iter().any(|item| {
                        item.split_once('=')
                            .is_some_and(|(name, _)| name == column.as_str())
                    })
                })
            })
            .cloned()
            .collect(),
        ContextField::ExtraNumeric => spec
            .numeric
            .iter()
            .enumerate()
            .filter(|(slot, _)| {
                rows.iter()
                    .any(|ctx| ctx.extra_numeric.get(*slot).is_some_and(|&v| v != 0.0))
            })
            .map(|(_, column)| column.clone())
            .collect(),
        ContextField::Timestamp => spec.time.iter().map(|t| t.column.clone()).collect(),
        _ => {
            let name = field.name();
            let mut columns: Vec<String> = spec
                .fields
                .by_key()
                .into_iter()
                .filter(|(key, _)| *key == name)
                .filter_map(|(_, column)| column.clone())
                .collect();
            if let Some(app) = &spec.app {
                let app_column = match field {
                    ContextField::IsApp => Some(&app.column),
                    ContextField::SiteId => app.site_id.as_ref(),
                    ContextField::Domain => app.domain.as_ref(),
                    ContextField::Categories => app.categories.as_ref(),
                    _ => None,
                };
                columns.extend(app_column.filter(|c| !columns.contains(c)).cloned());
            }
            columns
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clicklog::read_click_log;

    fn record(spec: &str, csv: &str, offers: &[u64]) -> TrainingInputs {
        let spec = DatasetSpec::from_toml(spec).expect("valid spec");
        let (log, _) = read_click_log(csv.as_bytes(), &spec, 100).expect("reads");
        TrainingInputs::of(&spec, &log, offers)
    }

    #[test]
    fn the_record_names_the_fields_and_columns_the_rows_filled() {
        let inputs = record(
            "name = \"t\"\nlabel = \"click\"\noffer = { column = \"ad\" }\nhashed = [\"C1\", \"C14\", \"C9\"]\nnumeric = [\"C20\", \"C21\"]\n[fields]\nsite_id = \"site\"\ncountry = \"cc\"\n",
            "click,ad,C1,C14,C9,C20,C21,site,cc\n1,7,1005,15704,,3,0,s1,\n0,7,1002,,,0,0,s2,\n1,8,,,x,0,9,s3,USA\n",
            &[7],
        );
        assert_eq!(
            (inputs.spec.as_str(), inputs.rows),
            ("t", 2),
            "offer 8's row is not kept"
        );
        let summary: Vec<(ContextField, u64, Vec<&str>)> = inputs
            .fields
            .iter()
            .map(|f| {
                (
                    f.field,
                    f.rows,
                    f.columns.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (ContextField::SiteId, 2, vec!["site"]),
                (ContextField::Extra, 2, vec!["C1", "C14"]),
                (ContextField::ExtraNumeric, 1, vec!["C20"]),
            ],
            "country and C9, C21 are filled only in the dropped row"
        );
        let back = TrainingInputs::from_json(&inputs.to_json()).expect("round trip");
        assert_eq!(back, inputs);
        let fills = [ContextField::SiteId, ContextField::Timestamp];
        let unfilled: Vec<ContextField> =
            inputs.unfilled_by(&fills).iter().map(|f| f.field).collect();
        assert_eq!(unfilled, [ContextField::Extra, ContextField::ExtraNumeric]);
    }

    #[test]
    fn app_columns_count_for_their_fields() {
        let inputs = record(
            "label = \"click\"\ntime = { column = \"t\", format = \"unix\" }\n[fields]\nsite_id = \"site\"\n[app]\ncolumn = \"app\"\nabsent = \"-\"\nsite_id = \"app\"\n",
            "click,t,site,app\n1,100,s1,-\n0,0,s2,a9\n",
            &[0],
        );
        let of = |field| inputs.fields.iter().find(|f| f.field == field).cloned();
        assert_eq!(
            of(ContextField::SiteId).map(|f| f.columns),
            Some(vec!["site".into(), "app".into()])
        );
        assert_eq!(
            of(ContextField::IsApp).map(|f| (f.rows, f.columns)),
            Some((1, vec!["app".into()]))
        );
        assert_eq!(
            of(ContextField::Timestamp).map(|f| (f.rows, f.columns)),
            Some((1, vec!["t".into()]))
        );
    }

    #[test]
    fn a_model_without_the_key_has_no_record_and_a_bad_one_is_an_error() {
        let mut extra = BTreeMap::new();
        assert_eq!(
            TrainingInputs::from_meta(&extra).expect("absent is fine"),
            None
        );
        extra.insert(TRAINING_INPUTS_KEY.to_string(), "{\"spec\":1}".to_string());
        let err = TrainingInputs::from_meta(&extra).expect_err("malformed");
        assert!(err.to_string().contains(TRAINING_INPUTS_KEY), "{err}");
    }

    #[test]
    fn every_field_has_a_distinct_name_and_a_default_context_fills_none() {
        let names: HashSet<&str> = ContextField::ALL.iter().map(|f| f.name()).collect();
        assert_eq!(names.len(), ContextField::ALL.len());
        let ctx = RequestContext::default();
        assert!(ContextField::ALL.iter().all(|f| !f.is_filled(&ctx)));
    }
}
