//! GrowthBook's context object and result object, for tools and tests that
//! speak GrowthBook's JSON (`cx experiment assign`, the cross-SDK cases).
//!
//! [`Context`] reads `attributes`, `enabled`, `qaMode` and
//! `forcedVariations`; other context fields (features, URLs, callbacks)
//! play no part in assigning an experiment and are ignored.
//! [`Context::run`] assigns and builds GrowthBook's `Result`: `key`,
//! `value`, `variationId`, `inExperiment`, `hashUsed`, `hashAttribute`,
//! `hashValue`, and `bucket`, `name`, `passthrough` when they apply. This
//! path allocates (it builds JSON); the serving path is
//! [`Experiment::assign_with`].

use crate::assign::{Assignment, RunOptions};
use crate::experiment::Experiment;
use crate::Error;
use serde_json::{Map, Value};

/// A GrowthBook context: the user's attributes and the run switches.
#[derive(Debug, Clone, Default)]
pub struct Context {
    attributes: Map<String, Value>,
    enabled: bool,
    qa_mode: bool,
    forced: Map<String, Value>,
}

impl Context {
    /// Parses GrowthBook's context JSON.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        let value: Value = serde_json::from_str(text).map_err(|source| Error::Json {
            what: "context",
            source,
        })?;
        Self::from_value(&value)
    }

    /// Reads GrowthBook's context object from a JSON value.
    pub fn from_value(value: &Value) -> Result<Self, Error> {
        let obj = value
            .as_object()
            .ok_or_else(|| Error::field("context", "expected an object"))?;
        let object = |name: &str| -> Result<Map<String, Value>, Error> {
            match obj.get(name) {
                None | Some(Value::Null) => Ok(Map::new()),
                Some(Value::Object(o)) => Ok(o.clone()),
                Some(_) => Err(Error::field(name, "expected an object")),
            }
        };
        let flag = |name: &str, default: bool| -> Result<bool, Error> {
            match obj.get(name) {
                None | Some(Value::Null) => Ok(default),
                Some(v) => v
                    .as_bool()
                    .ok_or_else(|| Error::field(name, "expected true or false")),
            }
        };
        let forced = object("forcedVariations")?;
        for (key, v) in &forced {
            if v.as_i64().is_none() {
                let field = format!("forcedVariations.{key}");
                return Err(Error::field(
                    &field,
                    "expected a variation index (an integer)",
                ));
            }
        }
        Ok(Self {
            attributes: object("attributes")?,
            enabled: flag("enabled", true)?,
            qa_mode: flag("qaMode", false)?,
            forced,
        })
    }

    /// The user's attributes.
    pub fn attributes(&self) -> &Map<String, Value> {
        &self.attributes
    }

    /// The run switches for `experiment` (its forced variation, if any).
    pub fn options(&self, experiment: &Experiment) -> RunOptions {
        RunOptions {
            enabled: self.enabled,
            qa_mode: self.qa_mode,
            forced_variation: self.forced.get(experiment.key()).and_then(Value::as_i64),
        }
    }

    /// Assigns `experiment` in this context.
    pub fn assign(&self, experiment: &Experiment) -> Assignment {
        experiment.assign_with(&self.attributes, &self.options(experiment))
    }

    /// Assigns `experiment` and returns GrowthBook's result object.
    pub fn run(&self, experiment: &Experiment) -> Value {
        let a = self.assign(experiment);
        let index = a.variation_id;
        let mut result = Map::new();
        result.insert("key".into(), experiment.variation_key(index).into());
        let value = experiment.variation_value(index).cloned();
        result.insert("value".into(), value.unwrap_or(Value::Null));
        result.insert("variationId".into(), index.into());
        result.insert("inExperiment".into(), a.in_experiment.into());
        result.insert("hashUsed".into(), a.hash_used.into());
        result.insert("hashAttribute".into(), experiment.hash_attribute().into());
        result.insert("hashValue".into(), self.raw_hash_value(experiment));
        if let Some(bucket) = a.bucket {
            result.insert("bucket".into(), bucket.into());
        }
        if let Some(name) = experiment.variation_name(index) {
            result.insert("name".into(), name.into());
        }
        if experiment.variation_passthrough(index) {
            result.insert("passthrough".into(), true.into());
        }
        Value::Object(result)
    }

    /// The hash attribute's value as given (GrowthBook reports it raw), or
    /// `""` when missing.
    fn raw_hash_value(&self, experiment: &Experiment) -> Value {
        let name = experiment.hash_attribute();
        if let Some(v) = self.attributes.get(name) {
            return v.clone();
        }
        let mut parts = name.split('.');
        let mut value = parts.next().and_then(|p| self.attributes.get(p));
        for part in parts {
            value = value.and_then(Value::as_object).and_then(|o| o.get(part));
        }
        value
            .cloned()
            .unwrap_or_else(|| Value::String(String::new()))
    }
}
