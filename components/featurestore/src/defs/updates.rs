//! Feedback update rules: how a stored feature follows the engine's
//! feedback events (`docs/FEATURES.md`, "Updates from feedback").
//!
//! A stored feature may say which event updates it and how:
//!
//! ```toml
//! on_event = "click"   # impression, click or conversion
//! update = "count"     # count (+1), add_value (+ the conversion's value), set_time
//! ```
//!
//! This module owns the two keys: their parsing, their checks against
//! the feature's type (each refusal names the feature and the key), and
//! [`UpdateRule::next`], the value a rule writes given the value read.
//! The store itself never applies a rule: the engine reads the user's
//! features, asks each matching rule for its next value, and writes them
//! in one batch. A rule is part of the schema id (it changes what the
//! values mean online), written after the feature's other fields only
//! when present, so files without rules keep their ids.

use super::{Definitions, FeatureId, Value, ValueType};
use crate::error::{Error, Result};
use std::fmt;

/// The feedback events a stored feature can follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FeedbackEvent {
    /// The offer was shown (counted once per decision, whether the
    /// impression or a click came first).
    Impression,
    /// The user clicked.
    Click,
    /// The user converted (each conversion counts; it carries a value).
    Conversion,
}

/// What a rule does to the feature's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UpdateOp {
    /// Add 1 (f32 or i64).
    Count,
    /// Add the conversion's value (f32; i64 rounds it to the nearest whole
    /// number). Only with `on_event = "conversion"`.
    AddValue,
    /// Set to the event's time, unix seconds (a timestamp feature).
    SetTime,
}

/// A stored feature's update rule: on `on_event`, apply `update`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UpdateRule {
    /// The event that updates the feature.
    pub on_event: FeedbackEvent,
    /// How it does.
    pub update: UpdateOp,
}

impl UpdateRule {
    /// The value to write when the rule fires: `current` is the value
    /// read (the default when missing or stale), `amount` the
    /// conversion's value (ignored by count and set_time), `time_s` the
    /// event's time in unix seconds. Counts saturate; an f32 sum that is
    /// not finite is returned as is, and the store refuses it.
    pub fn next(self, current: Value, amount: f64, time_s: i64) -> Value {
        let step = match self.update {
            UpdateOp::Count => 1.0,
            UpdateOp::AddValue => amount,
            UpdateOp::SetTime => return Value::Timestamp(time_s),
        };
        match current {
            Value::F32(x) => Value::F32((f64::from(x) + step) as f32),
            Value::I64(x) => Value::I64(x.saturating_add(step.round() as i64)),
            // Validation allows count and add_value on numbers only.
            other => other,
        }
    }
}

impl Definitions {
    /// The stored features with an update rule, in row order.
    pub fn update_rules(&self) -> impl Iterator<Item = (FeatureId, UpdateRule)> + '_ {
        self.stored()
            .iter()
            .enumerate()
            .filter_map(|(i, f)| Some((FeatureId(i as u16), f.update?)))
    }
}

/// Parses and checks a stored feature's `on_event` and `update` keys
/// against its type; `None` when it has neither.
pub(super) fn rule(
    on_event: Option<&str>,
    update: Option<&str>,
    value_type: ValueType,
    feature: &str,
) -> Result<Option<UpdateRule>> {
    let (on_event, update) = match (on_event, update) {
        (None, None) => return Ok(None),
        (Some(_), None) => {
            return Err(Error::def(
                feature,
                "update",
                "missing (on_event needs an update: count, add_value or set_time)",
            ))
        }
        (None, Some(_)) => {
            return Err(Error::def(
                feature,
                "on_event",
                "missing (update needs an on_event: impression, click or conversion)",
            ))
        }
        (Some(e), Some(u)) => (e, u),
    };
    let on_event = match on_event {
        "impression" => FeedbackEvent::Impression,
        "click" => FeedbackEvent::Click,
        "conversion" => FeedbackEvent::Conversion,
        other => {
            return Err(Error::def(
                feature,
                "on_event",
                format!("'{other}' is not one of impression, click, conversion"),
            ))
        }
    };
    let update = match update {
        "count" => UpdateOp::Count,
        "add_value" => UpdateOp::AddValue,
        "set_time" => UpdateOp::SetTime,
        other => {
            return Err(Error::def(
                feature,
                "update",
                format!("'{other}' is not one of count, add_value, set_time"),
            ))
        }
    };
    let numeric = matches!(value_type, ValueType::F32 | ValueType::I64);
    match update {
        UpdateOp::Count | UpdateOp::AddValue if !numeric => Err(Error::def(
            feature,
            "update",
            format!("{update} needs a number feature (f32 or i64), this one is {value_type}"),
        )),
        UpdateOp::SetTime if value_type != ValueType::Timestamp => Err(Error::def(
            feature,
            "update",
            format!("set_time needs a timestamp feature, this one is {value_type}"),
        )),
        UpdateOp::AddValue if on_event != FeedbackEvent::Conversion => Err(Error::def(
            feature,
            "update",
            format!(
                "add_value adds a conversion's value, so on_event must be conversion, not {on_event}"
            ),
        )),
        _ => Ok(Some(UpdateRule { on_event, update })),
    }
}

impl fmt::Display for FeedbackEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Impression => "impression",
            Self::Click => "click",
            Self::Conversion => "conversion",
        })
    }
}

impl fmt::Display for UpdateOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Count => "count",
            Self::AddValue => "add_value",
            Self::SetTime => "set_time",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(on_event: Option<&str>, update: Option<&str>, t: ValueType) -> String {
        match rule(on_event, update, t, "f") {
            Ok(r) => panic!("accepted {on_event:?} {update:?} on {t}: {r:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn every_fitting_rule_parses() {
        use FeedbackEvent::*;
        use UpdateOp::*;
        assert_eq!(rule(None, None, ValueType::Bool, "f").unwrap(), None);
        for (event, text) in [
            (Impression, "impression"),
            (Click, "click"),
            (Conversion, "conversion"),
        ] {
            for t in [ValueType::I64, ValueType::F32] {
                let r = rule(Some(text), Some("count"), t, "f").unwrap();
                assert_eq!(
                    r,
                    Some(UpdateRule {
                        on_event: event,
                        update: Count
                    })
                );
            }
            let r = rule(Some(text), Some("set_time"), ValueType::Timestamp, "f").unwrap();
            assert_eq!(
                r,
                Some(UpdateRule {
                    on_event: event,
                    update: SetTime
                })
            );
        }
        for t in [ValueType::I64, ValueType::F32] {
            let r = rule(Some("conversion"), Some("add_value"), t, "f").unwrap();
            assert_eq!(
                r,
                Some(UpdateRule {
                    on_event: Conversion,
                    update: AddValue
                })
            );
        }
    }

    /// A rule's `on_event`, `update`, the feature's type, and the words
    /// its error must contain.
    type Case = (
        Option<&'static str>,
        Option<&'static str>,
        ValueType,
        Vec<&'static str>,
    );

    /// Every bad combination, and the words its error must contain (the
    /// feature and the key at least).
    #[test]
    fn every_bad_combination_is_refused_naming_feature_and_key() {
        use ValueType::*;
        let mut cases: Vec<Case> = vec![
            (Some("click"), None, I64, vec!["'update'", "missing"]),
            (None, Some("count"), I64, vec!["'on_event'", "missing"]),
            (
                Some("view"),
                Some("count"),
                I64,
                vec!["'on_event'", "'view'", "impression, click, conversion"],
            ),
            (
                Some("click"),
                Some("sum"),
                I64,
                vec!["'update'", "'sum'", "count, add_value, set_time"],
            ),
            (
                Some("impression"),
                Some("add_value"),
                I64,
                vec!["'update'", "conversion", "not impression"],
            ),
            (
                Some("click"),
                Some("add_value"),
                F32,
                vec!["'update'", "conversion", "not click"],
            ),
        ];
        for t in [Bool, Timestamp, Category] {
            for event in ["impression", "click", "conversion"] {
                cases.push((
                    Some(event),
                    Some("count"),
                    t,
                    vec!["'update'", "count needs a number"],
                ));
            }
            cases.push((
                Some("conversion"),
                Some("add_value"),
                t,
                vec!["'update'", "add_value needs a number"],
            ));
        }
        for t in [F32, I64, Bool, Category] {
            for event in ["impression", "click", "conversion"] {
                cases.push((
                    Some(event),
                    Some("set_time"),
                    t,
                    vec!["'update'", "set_time needs a timestamp"],
                ));
            }
        }
        for (on_event, update, t, words) in cases {
            let message = refused(on_event, update, t);
            assert!(message.contains("feature 'f'"), "{message}");
            for word in words {
                assert!(message.contains(word), "'{word}' not in: {message}");
            }
        }
    }

    #[test]
    fn next_values_count_add_and_set_the_time() {
        let count = UpdateRule {
            on_event: FeedbackEvent::Click,
            update: UpdateOp::Count,
        };
        let add = UpdateRule {
            on_event: FeedbackEvent::Conversion,
            update: UpdateOp::AddValue,
        };
        let set = UpdateRule {
            on_event: FeedbackEvent::Conversion,
            update: UpdateOp::SetTime,
        };
        assert_eq!(count.next(Value::I64(4), 30.0, 9), Value::I64(5));
        assert_eq!(count.next(Value::F32(0.5), 30.0, 9), Value::F32(1.5));
        assert_eq!(
            count.next(Value::I64(i64::MAX), 0.0, 9),
            Value::I64(i64::MAX)
        );
        assert_eq!(add.next(Value::F32(2.5), 30.0, 9), Value::F32(32.5));
        assert_eq!(add.next(Value::I64(2), 2.6, 9), Value::I64(5));
        assert_eq!(
            set.next(Value::Timestamp(1), 30.0, 1_767_225_600),
            Value::Timestamp(1_767_225_600)
        );
        assert!(matches!(add.next(Value::F32(f32::MAX), 1e39, 0), Value::F32(x) if !x.is_finite()));
    }
}
