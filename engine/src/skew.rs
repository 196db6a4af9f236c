//! Train/serve skew: which context fields each serving path fills
//! ([`SERVING_PATHS`]), and the check, when a model is loaded and at a
//! swap, that the model does not depend on fields a serving path never
//! fills ([`TrainServeSkew`], the `train_serve_skew` key:
//! [`SkewPolicy`]).
//!
//! What a model depends on is the `cx.training_inputs` record `cx train`
//! writes ([`cx_datasets::inputs`]): the context fields its training rows
//! filled, and the dataset spec's columns behind them. A model without the
//! record (older files, plain snnTorch exports, the bundled default) is
//! never flagged.
//!
//! The serving paths:
//! - **OpenRTB**: the HTTP bidder (`POST /openrtb2/bid`), the binary
//!   protocol's `score_openrtb`, and [`Engine::decide_openrtb`](crate::Engine::decide_openrtb).
//!   A bid request becomes a context by the fixed mapping of
//!   `cx_wire::openrtb` (`docs/OPENRTB.md`); it never fills `extra` or
//!   `extra_numeric` (a spec's `hashed` and `numeric` columns), and the
//!   engine stamps `timestamp`.
//! - **score_context**: the binary protocol's `score_context` message and
//!   [`Engine::submit`](crate::Engine::submit) carry a whole context, `extra`
//!   and `extra_numeric` included: the client fills what it has, so this
//!   path can fill every field and is never flagged.
//!
//! Every `cx serve` answers both (the binary listener takes
//! `score_openrtb` whether or not the HTTP bidder runs), so a model that
//! depends on `extra` or `extra_numeric` is flagged for the OpenRTB path.

use crate::error::{Error, Result};
use cx_datasets::inputs::{ContextField, TrainingInputs};
use cx_model::ModelMeta;
use serde::{Deserialize, Serialize};

/// A way requests reach the engine, and the context fields it can fill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServingPath {
    /// Its name in warnings and errors.
    pub name: &'static str,
    /// The fields a request on this path can fill.
    pub fills: &'static [ContextField],
}

/// The fields an OpenRTB bid request fills (`cx_wire::openrtb`'s
/// `BidRequest::impressions`, and the arrival time the engine stamps).
pub const OPENRTB_FILLS: [ContextField; 16] = [
    ContextField::UserId,
    ContextField::UserSegments,
    ContextField::DeviceType,
    ContextField::Os,
    ContextField::ConnectionType,
    ContextField::Country,
    ContextField::Region,
    ContextField::SiteId,
    ContextField::IsApp,
    ContextField::Domain,
    ContextField::Categories,
    ContextField::PlacementWidth,
    ContextField::PlacementHeight,
    ContextField::AdPosition,
    ContextField::BidFloor,
    ContextField::Timestamp,
];

/// Every serving path, with what it fills (see the [module docs](self)).
pub const SERVING_PATHS: [ServingPath; 2] = [
    ServingPath {
        name: "openrtb (HTTP bidder, binary score_openrtb)",
        fills: &OPENRTB_FILLS,
    },
    ServingPath {
        name: "score_context (binary protocol, Engine::submit)",
        fills: &ContextField::ALL,
    },
];

/// What to do with a model that depends on fields a serving path never
/// fills.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SkewPolicy {
    /// Serve it, and let the host warn ([`crate::Engine::train_serve_skew`];
    /// `cx serve` logs a warning naming the columns).
    #[default]
    Warn,
    /// Refuse it (at build, and at a swap) with [`Error::TrainServeSkew`].
    Refuse,
}

/// One context field a model was trained on that some serving path never
/// fills.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SkewedField {
    /// The field (`extra`, `extra_numeric`, ...).
    pub field: &'static str,
    /// The dataset spec's columns behind it (`C1`, `C14`, ...).
    pub columns: Vec<String>,
    /// Training rows that filled it.
    pub rows: u64,
    /// The serving paths that never fill it.
    pub paths: Vec<&'static str>,
}

/// A model refused under `train_serve_skew = "refuse"`
/// ([`Error::TrainServeSkew`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "train_serve_skew = \"refuse\": model `{model}` was trained on columns {columns:?} \
     (context fields {fields:?}), which serving never fills on: {paths}"
)]
pub struct SkewRefusal {
    /// The model's name.
    pub model: String,
    /// The dataset spec's columns behind the fields.
    pub columns: Vec<String>,
    /// The context fields.
    pub fields: Vec<&'static str>,
    /// The serving paths that never fill them.
    pub paths: String,
}

/// How a model's training inputs and the serving paths match.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TrainServeSkew {
    /// Whether the model records its training inputs at all.
    pub recorded: bool,
    /// Fields it was trained on that a serving path never fills (empty:
    /// no skew, or no record).
    pub fields: Vec<SkewedField>,
}

impl TrainServeSkew {
    /// The skew of the model described by `meta` against [`SERVING_PATHS`].
    /// A `cx.training_inputs` key that does not parse is an error.
    pub fn of(meta: &ModelMeta) -> Result<Self> {
        let Some(inputs) = TrainingInputs::from_meta(&meta.extra)? else {
            return Ok(Self::default());
        };
        Ok(Self::against(&inputs, &SERVING_PATHS))
    }

    /// The skew of `inputs` against `paths`.
    pub fn against(inputs: &TrainingInputs, paths: &[ServingPath]) -> Self {
        let fields = inputs
            .fields
            .iter()
            .filter_map(|filled| {
                let missing: Vec<&'static str> = paths
                    .iter()
                    .filter(|p| !p.fills.contains(&filled.field))
                    .map(|p| p.name)
                    .collect();
                (!missing.is_empty()).then(|| SkewedField {
                    field: filled.field.name(),
                    columns: filled.columns.clone(),
                    rows: filled.rows,
                    paths: missing,
                })
            })
            .collect();
        Self {
            recorded: true,
            fields,
        }
    }

    /// Whether nothing the model was trained on goes unfilled.
    pub fn is_clean(&self) -> bool {
        self.fields.is_empty()
    }

    /// The spec columns behind every skewed field, in record order (the
    /// field's own name where the record names no column).
    pub fn columns(&self) -> Vec<String> {
        self.fields
            .iter()
            .flat_map(|f| {
                if f.columns.is_empty() {
                    vec![f.field.to_string()]
                } else {
                    f.columns.clone()
                }
            })
            .collect()
    }

    /// The skew as `policy` allows it: itself, or (`Refuse`, skewed) an
    /// error naming the columns, the fields and the paths, for `model`.
    pub fn check(self, policy: SkewPolicy, model: &str) -> Result<Self> {
        if policy == SkewPolicy::Refuse && !self.is_clean() {
            let mut paths: Vec<&'static str> = Vec::new();
            for p in self.fields.iter().flat_map(|f| &f.paths) {
                if !paths.contains(p) {
                    paths.push(p);
                }
            }
            return Err(Error::TrainServeSkew(Box::new(SkewRefusal {
                model: model.to_string(),
                columns: self.columns(),
                fields: self.fields.iter().map(|f| f.field).collect(),
                paths: paths.join(", "),
            })));
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cx_datasets::inputs::FilledField;

    fn inputs(fields: &[(ContextField, &[&str])]) -> TrainingInputs {
        TrainingInputs {
            spec: "t".into(),
            rows: 10,
            fields: fields
                .iter()
                .map(|(field, columns)| FilledField {
                    field: *field,
                    rows: 10,
                    columns: columns.iter().map(|c| c.to_string()).collect(),
                })
                .collect(),
        }
    }

    #[test]
    fn hashed_columns_are_skewed_for_openrtb_only_and_refused_in_strict_mode() {
        let skew = TrainServeSkew::against(
            &inputs(&[
                (ContextField::SiteId, &["site_id", "app_id"]),
                (ContextField::Extra, &["C1", "C14"]),
                (ContextField::ExtraNumeric, &["C20"]),
            ]),
            &SERVING_PATHS,
        );
        assert!(skew.recorded && !skew.is_clean());
        assert_eq!(skew.columns(), ["C1", "C14", "C20"]);
        assert!(skew
            .fields
            .iter()
            .all(|f| f.paths == [SERVING_PATHS[0].name]));
        assert!(skew.clone().check(SkewPolicy::Warn, "m").is_ok());
        let err = skew.check(SkewPolicy::Refuse, "m").expect_err("refused");
        assert!(matches!(&err, Error::TrainServeSkew(r) if r.columns == ["C1", "C14", "C20"]));
        let message = err.to_string();
        assert!(
            message.contains("C14") && message.contains("extra") && message.contains("openrtb"),
            "{message}"
        );
    }

    /// The fields OpenRTB requests fill: never `extra` or `extra_numeric`,
    /// and every field of [`OPENRTB_FILLS`] but `timestamp` (which the engine
    /// stamps) from a request that carries them all.
    #[test]
    fn the_openrtb_table_matches_what_bid_requests_fill() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../components/wire/tests/fixtures/openrtb"
        );
        let mut requests: Vec<Vec<u8>> =
            ["2.5_mobile.json", "2.6_video.json", "bsm_breq.video.json"]
                .iter()
                .map(|f| std::fs::read(format!("{dir}/{f}")).expect("fixture"))
                .collect();
        let full = r#"{"id":"r","imp":[{"id":"1","bidfloor":0.4,"banner":{"w":300,"h":250,"pos":1}}],
            "site":{"id":"s1","domain":"example.com","cat":["IAB1"]},
            "device":{"devicetype":4,"os":"iOS","connectiontype":2,"geo":{"country":"USA","region":"CA"}},
            "user":{"id":"u1","data":[{"segment":[{"id":"seg1"}]}]}}"#;
        let app = r#"{"id":"r","imp":[{"id":"1"}],"app":{"id":"a1"}}"#;
        requests.push(full.as_bytes().to_vec());
        requests.push(app.as_bytes().to_vec());
        let mut filled: Vec<ContextField> = Vec::new();
        for bytes in &requests {
            let request = cx_wire::openrtb::parse_request(bytes).expect("a bid request");
            for imp in request.impressions() {
                for field in ContextField::ALL {
                    if field.is_filled(&imp.ctx) && !filled.contains(&field) {
                        filled.push(field);
                    }
                }
            }
        }
        for field in &filled {
            assert!(
                OPENRTB_FILLS.contains(field),
                "{field:?} is filled but not tabled"
            );
        }
        let unfilled: Vec<ContextField> = OPENRTB_FILLS
            .iter()
            .copied()
            .filter(|f| !filled.contains(f))
            .collect();
        assert_eq!(
            unfilled,
            [ContextField::Timestamp],
            "the engine stamps the time"
        );
    }

    #[test]
    fn a_model_on_openrtb_fields_or_without_a_record_is_clean() {
        let all_openrtb: Vec<(ContextField, &[&str])> =
            OPENRTB_FILLS.iter().map(|&f| (f, &[][..])).collect();
        let skew = TrainServeSkew::against(&inputs(&all_openrtb), &SERVING_PATHS);
        assert!(skew.recorded && skew.is_clean());
        assert!(skew.check(SkewPolicy::Refuse, "m").is_ok());
        let none = TrainServeSkew::of(&ModelMeta::defaults(2)).expect("no record");
        assert!(!none.recorded && none.is_clean());
    }
}
