//! What decisions read of the online feature store (`docs/DECISIONS.md`,
//! "Score and explanation"; `docs/FEATURES.md`, "In the pipeline"): the
//! user's **stored segments**, which SegmentMembership matches beside the
//! request's, and the **stored-behaviour scale** of BehavioralSignal.
//!
//! Both are built once: [`SegmentTable`] from the store's definitions
//! (each category label's segment hash, each boolean's), [`BehaviorInputs`]
//! from the definitions and the decide config (the configured features
//! resolved to ids). Per request, [`SegmentTable::segments_of`] and
//! [`BehaviorInputs::scale`] read the user's row and allocate nothing.
//!
//! # Stored features as segments
//!
//! - a category feature `name` whose value is the label `v` is the segment
//!   `name=v` (`age_band=25-34`);
//! - a boolean feature `name`, stored or computed (a `threshold`), that is
//!   true is the segment `name` (`is_subscriber`, `recent_buyer`); false
//!   gives none;
//! - other types give no segment.
//!
//! Values are taken as read: a missing or stale value reads as its
//! default, so a stale `is_subscriber = true` gives no segment and a
//! missing `age_band` gives `age_band=unknown` (its default label). Each
//! segment is hashed as the catalog hashes an offer's segments
//! ([`catalog::item_hash`] of the text).
//!
//! # Stored behaviour
//!
//! `scale = recency_weight * recency + ratio_weight * lift`, and
//! BehavioralSignal gains `ModelPrediction * scale`, where, for the
//! configured features' values `x` as read (defaults when missing or
//! stale):
//!
//! - `recency`: for a boolean feature, 1 when true and 0 when false; for a
//!   number, `x` is days since the event and `recency = 2^(-max(0, x) /
//!   half_life_days)` (1 today, 1/2 after a half-life); 0 if not finite;
//! - `lift = clamp(x / reference - 1, -1, 1)` (0 when `x` is the
//!   reference, as a smoothed ratio with no evidence is; 0 if not finite).
//!
//! A term whose weight is 0 or whose feature name is empty is off; with
//! both off there is no scale, and BehavioralSignal is the fatigue term
//! alone, bit for bit.

use crate::config::DecideConfig;
use crate::error::{Error, Result};
use cx_domain::catalog;
use cx_featurestore::defs::{COMPUTED_FEATURES_MAX, STORED_FEATURES_MAX};
use cx_featurestore::{Definitions, FeatureId, FeatureValues, Value, ValueType};

/// Most segments one user's stored features give: one per feature.
pub const STORE_SEGMENTS_MAX: usize = STORED_FEATURES_MAX + COMPUTED_FEATURES_MAX;

/// Where one stored segment comes from.
#[derive(Clone, Debug, PartialEq)]
enum SegmentSource {
    /// A category feature: label `k`'s segment hash is
    /// `label_hashes[start + k]`, for `k < labels`.
    Category {
        id: FeatureId,
        start: usize,
        labels: usize,
    },
    /// A boolean feature: the segment `name`, while true.
    Flag { id: FeatureId, hash: u64 },
}

/// The segment hashes every value of the definitions' category and
/// boolean features stands for (see the [module docs](self)), computed
/// once.
#[derive(Clone, Debug, PartialEq)]
pub struct SegmentTable {
    sources: Box<[SegmentSource]>,
    label_hashes: Box<[u64]>,
}

impl SegmentTable {
    /// The table of `defs`.
    pub fn new(defs: &Definitions) -> Self {
        let mut sources = Vec::new();
        let mut label_hashes = Vec::new();
        for i in 0..defs.len() {
            let Some(id) = feature_id(defs, i) else {
                continue;
            };
            let name = defs.name(id);
            match defs.value_type(id) {
                Some(ValueType::Category) => {
                    let labels = &defs.stored()[i].categories;
                    sources.push(SegmentSource::Category {
                        id,
                        start: label_hashes.len(),
                        labels: labels.len(),
                    });
                    label_hashes.extend(
                        labels
                            .iter()
                            .map(|l| catalog::item_hash(&segment_text(name, Some(l)))),
                    );
                }
                Some(ValueType::Bool) => sources.push(SegmentSource::Flag {
                    id,
                    hash: catalog::item_hash(name),
                }),
                _ => {}
            }
        }
        Self {
            sources: sources.into(),
            label_hashes: label_hashes.into(),
        }
    }

    /// The segments `row` (read under the same definitions) gives, hashed.
    /// Allocates nothing.
    pub fn segments_of(&self, row: &FeatureValues) -> StoreSegments {
        let mut out = StoreSegments {
            hashes: [0; STORE_SEGMENTS_MAX],
            len: 0,
        };
        for source in self.sources.iter() {
            let hash = match *source {
                SegmentSource::Category { id, start, labels } => match row.value(id) {
                    Some(Value::Category(k)) if usize::from(k) < labels => {
                        Some(self.label_hashes[start + usize::from(k)])
                    }
                    _ => None,
                },
                SegmentSource::Flag { id, hash } => {
                    matches!(row.value(id), Some(Value::Bool(true))).then_some(hash)
                }
            };
            if let Some(hash) = hash {
                if out.len < STORE_SEGMENTS_MAX {
                    out.hashes[out.len] = hash;
                    out.len += 1;
                }
            }
        }
        out
    }
}

/// The text of a stored segment: `name=label` for a category value,
/// `name` for a true boolean.
pub fn segment_text(name: &str, label: Option<&str>) -> String {
    match label {
        Some(label) => format!("{name}={label}"),
        None => name.to_owned(),
    }
}

/// One user's stored segments, hashed ([`SegmentTable::segments_of`]).
#[derive(Clone, Copy, Debug)]
pub struct StoreSegments {
    hashes: [u64; STORE_SEGMENTS_MAX],
    len: usize,
}

impl StoreSegments {
    /// The hashes, in feature order.
    pub fn as_slice(&self) -> &[u64] {
        &self.hashes[..self.len]
    }
}

/// One stored-behaviour term, resolved.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Term {
    id: FeatureId,
    weight: f32,
    /// The feature reads as a boolean.
    flag: bool,
}

/// The configured stored-behaviour features resolved against the store's
/// definitions (see the [module docs](self)).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BehaviorInputs {
    recency: Option<Term>,
    ratio: Option<Term>,
    half_life_days: f64,
    reference: f64,
}

impl BehaviorInputs {
    /// Resolves `decide`'s `behavior_*` settings against `defs`. A term
    /// with weight 0 or an empty feature name is off; one that names a
    /// feature `defs` lacks, or a category or timestamp feature, is an
    /// error naming the setting.
    pub fn new(defs: &Definitions, decide: &DecideConfig) -> Result<Self> {
        let recency = resolve(
            defs,
            "decide.behavior_recency_feature",
            &decide.behavior_recency_feature,
            decide.behavior_recency_weight,
        )?;
        let ratio = resolve(
            defs,
            "decide.behavior_ratio_feature",
            &decide.behavior_ratio_feature,
            decide.behavior_ratio_weight,
        )?;
        Ok(Self {
            recency,
            ratio,
            half_life_days: f64::from(decide.behavior_recency_half_life_days),
            reference: f64::from(decide.behavior_ratio_reference),
        })
    }

    /// Whether every term is off (BehavioralSignal reads no stored feature).
    pub fn is_off(&self) -> bool {
        self.recency.is_none() && self.ratio.is_none()
    }

    /// The factor by which `row`'s behaviour scales the offer's
    /// ModelPrediction into BehavioralSignal; `None` when every term is off.
    pub fn scale(&self, row: &FeatureValues) -> Option<f32> {
        if self.is_off() {
            return None;
        }
        let mut scale = 0.0f32;
        if let Some(t) = self.recency {
            let x = row.number(t.id);
            let r = if t.flag {
                x.clamp(0.0, 1.0)
            } else {
                recency(x, self.half_life_days)
            };
            scale += t.weight * r as f32;
        }
        if let Some(t) = self.ratio {
            scale += t.weight * lift(row.number(t.id), self.reference) as f32;
        }
        Some(scale)
    }
}

/// `2^(-max(0, days) / half_life_days)`; 0 when `days` is not finite.
pub fn recency(days: f64, half_life_days: f64) -> f64 {
    if !days.is_finite() {
        return 0.0;
    }
    (-days.max(0.0) / half_life_days).exp2()
}

/// `clamp(x / reference - 1, -1, 1)`; 0 when that is not finite.
pub fn lift(x: f64, reference: f64) -> f64 {
    let l = x / reference - 1.0;
    if l.is_finite() {
        l.clamp(-1.0, 1.0)
    } else {
        0.0
    }
}

fn resolve(
    defs: &Definitions,
    field: &'static str,
    name: &str,
    weight: f32,
) -> Result<Option<Term>> {
    if weight == 0.0 || name.is_empty() {
        return Ok(None);
    }
    let Some(id) = defs.find(name) else {
        return Err(Error::Config {
            field,
            reason: format!(
                "'{name}' is not a feature of the store's definitions ({}): name one, \
                 or set its weight to 0",
                defs.id()
            ),
        });
    };
    match defs.value_type(id) {
        Some(ValueType::F32 | ValueType::I64) => Ok(Some(Term {
            id,
            weight,
            flag: false,
        })),
        Some(ValueType::Bool) => Ok(Some(Term {
            id,
            weight,
            flag: true,
        })),
        Some(t) => Err(Error::Config {
            field,
            reason: format!(
                "'{name}' is a {t} feature; this needs a number (f32, i64, bool or computed)"
            ),
        }),
        None => Ok(None),
    }
}

/// The id at row position `i` of `defs`.
fn feature_id(defs: &Definitions, i: usize) -> Option<FeatureId> {
    let name = if i < defs.stored().len() {
        &defs.stored()[i].name
    } else {
        &defs.computed().get(i - defs.stored().len())?.name
    };
    defs.find(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recency_halves_per_half_life() {
        assert_eq!(recency(0.0, 30.0), 1.0);
        assert_eq!(recency(-5.0, 30.0), 1.0, "a future event is today");
        assert!((recency(30.0, 30.0) - 0.5).abs() < 1e-12);
        assert!(recency(365.0, 30.0) < 3e-4);
        assert_eq!(recency(f64::NAN, 30.0), 0.0);
    }

    #[test]
    fn lift_is_relative_to_the_reference_and_bounded() {
        assert_eq!(lift(0.02, 0.02), 0.0);
        assert!((lift(0.03, 0.02) - 0.5).abs() < 1e-12);
        assert_eq!(lift(1.0, 0.02), 1.0);
        assert_eq!(lift(0.0, 0.02), -1.0);
        assert_eq!(lift(f64::INFINITY, 0.02), 0.0);
        assert_eq!(lift(f64::NAN, 0.02), 0.0);
    }
}
