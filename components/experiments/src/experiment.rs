//! An experiment, parsed once into a compact form for assignment.
//!
//! [`Experiment::from_json`] and [`Experiment::from_value`] read
//! GrowthBook's experiment object (the same object in TOML reads through
//! `toml::from_str::<serde_json::Value>`); every field is checked here, and
//! an error names the field (`filters[1].ranges[0]`). The bucket ranges,
//! the namespace seed and the filters are computed at that point, so that
//! [`Experiment::assign`] (in `assign.rs`) only hashes and compares.
//!
//! Fields that decide who is in the experiment but need GrowthBook's
//! targeting (`condition`, `parentConditions`, `groups`, `url`,
//! `urlPatterns`, `include`) are refused rather than ignored, so that an
//! experiment is never quietly run on more users than its definition says.
//! Fields that only serve sticky bucketing, tracking or display (`name`,
//! `phase`, `bucketVersion`, `fallbackAttribute`, ...) are ignored, as
//! GrowthBook ignores them without sticky bucketing.

use crate::bucket::{bucket_ranges, BucketRange, NamespaceSeed};
use crate::hash::HashVersion;
use crate::Error;
use serde_json::{Map, Value};

/// A parsed experiment, ready to assign.
#[derive(Debug, Clone)]
pub struct Experiment {
    pub(crate) key: String,
    /// `seed`, or the key when it is empty or absent.
    pub(crate) seed: String,
    /// `hashAttribute`, or `id`.
    pub(crate) hash_attribute: String,
    /// `None` for a version GrowthBook does not define: nobody is in.
    pub(crate) hash_version: Option<HashVersion>,
    pub(crate) ranges: Vec<BucketRange>,
    pub(crate) namespace: Option<Namespace>,
    pub(crate) filters: Vec<Filter>,
    pub(crate) force: Option<i64>,
    /// `active` is not false and `status` is not `draft`.
    pub(crate) active: bool,
    /// `status` is `stopped`.
    pub(crate) stopped: bool,
    pub(crate) variations: Vec<Value>,
    pub(crate) meta: Vec<VariationMeta>,
}

/// A namespace: users whose version-1 hash with `seed` (`"__" + id`) falls
/// in `[start, end)`.
#[derive(Debug, Clone)]
pub(crate) struct Namespace {
    pub(crate) seed: String,
    pub(crate) start: f64,
    pub(crate) end: f64,
}

/// A filter: users whose `attribute` hashes (with `seed`) into one of
/// `ranges`.
#[derive(Debug, Clone)]
pub(crate) struct Filter {
    pub(crate) seed: String,
    pub(crate) attribute: String,
    pub(crate) version: Option<HashVersion>,
    pub(crate) ranges: Vec<BucketRange>,
}

/// What `meta` says about one variation (GrowthBook's `VariationMeta`).
#[derive(Debug, Clone, Default)]
pub(crate) struct VariationMeta {
    pub(crate) key: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) passthrough: bool,
}

/// Fields that need targeting this crate does not evaluate.
const UNSUPPORTED: [&str; 6] = [
    "condition",
    "parentConditions",
    "groups",
    "url",
    "urlPatterns",
    "include",
];

impl Experiment {
    /// Parses GrowthBook's experiment JSON.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        let value: Value = serde_json::from_str(text).map_err(|source| Error::Json {
            what: "experiment",
            source,
        })?;
        Self::from_value(&value)
    }

    /// Reads GrowthBook's experiment object from a JSON value.
    pub fn from_value(value: &Value) -> Result<Self, Error> {
        let obj = value
            .as_object()
            .ok_or_else(|| Error::field("experiment", "expected an object"))?;
        check_unsupported(obj)?;
        let key = required_str(obj, "key")?.to_string();
        let variations = variations(obj)?;
        let seed = optional_str(obj, "seed")?
            .filter(|s| !s.is_empty())
            .unwrap_or(&key)
            .to_string();
        let hash_attribute = hash_attribute(obj, "hashAttribute", "hashAttribute")?;
        let hash_version = version(obj, "hashVersion", "hashVersion", 1)?;
        let ranges = match optional(obj, "ranges") {
            Some(v) => range_list(v, "ranges")?,
            None => {
                let coverage = optional_number(obj, "coverage")?.unwrap_or(1.0);
                let weights = optional(obj, "weights")
                    .map(|v| number_list(v, "weights"))
                    .transpose()?;
                bucket_ranges(variations.len(), coverage, weights.as_deref())
            }
        };
        let status = optional_str(obj, "status")?;
        Ok(Self {
            seed,
            hash_attribute,
            hash_version,
            ranges,
            namespace: optional(obj, "namespace").map(namespace).transpose()?,
            filters: filters(obj)?,
            force: force(obj)?,
            active: optional_bool(obj, "active")? != Some(false) && status != Some("draft"),
            stopped: status == Some("stopped"),
            meta: meta(obj)?,
            variations,
            key,
        })
    }

    /// The experiment's key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The attribute hashed to assign a variation (`id` by default).
    pub fn hash_attribute(&self) -> &str {
        &self.hash_attribute
    }

    /// How many variations there are.
    pub fn variation_count(&self) -> usize {
        self.variations.len()
    }

    /// The value of variation `index`, as the definition gave it.
    pub fn variation_value(&self, index: usize) -> Option<&Value> {
        self.variations.get(index)
    }

    /// Each variation's share of the users in the experiment: its bucket
    /// range's width over the sum of the widths (0 each when the coverage
    /// is 0). What a sample-ratio check compares assignments against.
    pub fn split(&self) -> Vec<f64> {
        let total: f64 = self.ranges.iter().map(|r| r.end - r.start).sum();
        self.ranges
            .iter()
            .map(|r| match total > 0.0 {
                true => (r.end - r.start) / total,
                false => 0.0,
            })
            .collect()
    }

    /// The bucket range of each variation (from `ranges`, or from
    /// `coverage` and `weights`).
    pub fn ranges(&self) -> &[BucketRange] {
        &self.ranges
    }

    /// GrowthBook's result `key` of variation `index`: its `meta` key, or
    /// the index in decimal.
    pub fn variation_key(&self, index: usize) -> String {
        self.meta
            .get(index)
            .and_then(|m| m.key.clone())
            .filter(|k| !k.is_empty())
            .unwrap_or_else(|| index.to_string())
    }

    /// The `meta` name of variation `index`, if any.
    pub fn variation_name(&self, index: usize) -> Option<&str> {
        self.meta
            .get(index)?
            .name
            .as_deref()
            .filter(|n| !n.is_empty())
    }

    /// Whether `meta` marks variation `index` as a passthrough.
    pub fn variation_passthrough(&self, index: usize) -> bool {
        self.meta.get(index).is_some_and(|m| m.passthrough)
    }
}

/// A present, non-null field.
fn optional<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).filter(|v| !v.is_null())
}

fn check_unsupported(obj: &Map<String, Value>) -> Result<(), Error> {
    for name in UNSUPPORTED {
        let Some(value) = optional(obj, name) else {
            continue;
        };
        // An empty condition or prerequisite list passes everybody in GrowthBook.
        let empty = match (name, value) {
            ("condition", Value::Object(o)) => o.is_empty(),
            ("parentConditions", Value::Array(a)) => a.is_empty(),
            _ => false,
        };
        if !empty {
            return Err(Error::Unsupported {
                field: name.to_string(),
            });
        }
    }
    Ok(())
}

fn required_str<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<&'a str, Error> {
    optional_str(obj, name)?.ok_or_else(|| Error::field(name, "is required (a string)"))
}

fn optional_str<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, Error> {
    optional(obj, name)
        .map(|v| {
            v.as_str()
                .ok_or_else(|| Error::field(name, "expected a string"))
        })
        .transpose()
}

fn optional_bool(obj: &Map<String, Value>, name: &str) -> Result<Option<bool>, Error> {
    optional(obj, name)
        .map(|v| {
            v.as_bool()
                .ok_or_else(|| Error::field(name, "expected true or false"))
        })
        .transpose()
}

fn optional_number(obj: &Map<String, Value>, name: &str) -> Result<Option<f64>, Error> {
    optional(obj, name).map(|v| number(v, name)).transpose()
}

fn number(value: &Value, field: &str) -> Result<f64, Error> {
    value
        .as_f64()
        .ok_or_else(|| Error::field(field, "expected a number"))
}

fn number_list(value: &Value, field: &str) -> Result<Vec<f64>, Error> {
    let items = value
        .as_array()
        .ok_or_else(|| Error::field(field, "expected an array of numbers"))?;
    items
        .iter()
        .enumerate()
        .map(|(i, v)| number(v, &format!("{field}[{i}]")))
        .collect()
}

fn variations(obj: &Map<String, Value>) -> Result<Vec<Value>, Error> {
    let list = optional(obj, "variations")
        .ok_or_else(|| Error::field("variations", "is required (an array of values)"))?
        .as_array()
        .ok_or_else(|| Error::field("variations", "expected an array of values"))?;
    if list.is_empty() {
        return Err(Error::field("variations", "needs at least one variation"));
    }
    Ok(list.clone())
}

/// `hashAttribute` or a filter's `attribute`: `id` when empty or absent.
fn hash_attribute(obj: &Map<String, Value>, name: &str, field: &str) -> Result<String, Error> {
    let value = optional(obj, name)
        .map(|v| {
            v.as_str()
                .ok_or_else(|| Error::field(field, "expected a string"))
        })
        .transpose()?;
    Ok(value.filter(|s| !s.is_empty()).unwrap_or("id").to_string())
}

/// A hash version: `default` when absent or 0 (GrowthBook's `|| default`),
/// `None` for a number it does not define.
fn version(
    obj: &Map<String, Value>,
    name: &str,
    field: &str,
    default: i64,
) -> Result<Option<HashVersion>, Error> {
    let n = optional(obj, name)
        .map(|v| number(v, field))
        .transpose()?
        .unwrap_or(0.0);
    Ok(match n {
        0.0 => HashVersion::from_number(default),
        1.0 => Some(HashVersion::V1),
        2.0 => Some(HashVersion::V2),
        _ => None,
    })
}

fn range_list(value: &Value, field: &str) -> Result<Vec<BucketRange>, Error> {
    let items = value
        .as_array()
        .ok_or_else(|| Error::field(field, "expected an array of [start, end] pairs"))?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let here = format!("{field}[{i}]");
            match item.as_array().map(Vec::as_slice) {
                Some([start, end]) => {
                    Ok(BucketRange::new(number(start, &here)?, number(end, &here)?))
                }
                _ => Err(Error::field(
                    &here,
                    "expected a [start, end] pair of numbers",
                )),
            }
        })
        .collect()
}

fn namespace(value: &Value) -> Result<Namespace, Error> {
    let bad = || {
        Error::field(
            "namespace",
            "expected [id, start, end]: a string and two numbers",
        )
    };
    let [id, start, end] = value.as_array().map(Vec::as_slice).ok_or_else(bad)? else {
        return Err(bad());
    };
    let id = id.as_str().ok_or_else(bad)?;
    Ok(Namespace {
        seed: NamespaceSeed::default().of(id).to_string(),
        start: start.as_f64().ok_or_else(bad)?,
        end: end.as_f64().ok_or_else(bad)?,
    })
}

fn filters(obj: &Map<String, Value>) -> Result<Vec<Filter>, Error> {
    let Some(value) = optional(obj, "filters") else {
        return Ok(Vec::new());
    };
    let items = value
        .as_array()
        .ok_or_else(|| Error::field("filters", "expected an array of filter objects"))?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| filter(item, &format!("filters[{i}]")))
        .collect()
}

fn filter(value: &Value, field: &str) -> Result<Filter, Error> {
    let obj = value
        .as_object()
        .ok_or_else(|| Error::field(field, "expected an object"))?;
    let seed = optional(obj, "seed")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::field(&format!("{field}.seed"), "is required (a string)"))?;
    let ranges = optional(obj, "ranges")
        .ok_or_else(|| Error::field(&format!("{field}.ranges"), "is required"))?;
    Ok(Filter {
        seed: seed.to_string(),
        attribute: hash_attribute(obj, "attribute", &format!("{field}.attribute"))?,
        version: version(obj, "hashVersion", &format!("{field}.hashVersion"), 2)?,
        ranges: range_list(ranges, &format!("{field}.ranges"))?,
    })
}

fn force(obj: &Map<String, Value>) -> Result<Option<i64>, Error> {
    let Some(value) = optional(obj, "force") else {
        return Ok(None);
    };
    let n = value
        .as_f64()
        .filter(|n| n.fract() == 0.0 && n.abs() < 1e15);
    // Checked integral and in range just above.
    n.map(|n| Some(n as i64))
        .ok_or_else(|| Error::field("force", "expected a variation index (an integer)"))
}

fn meta(obj: &Map<String, Value>) -> Result<Vec<VariationMeta>, Error> {
    let Some(value) = optional(obj, "meta") else {
        return Ok(Vec::new());
    };
    let items = value
        .as_array()
        .ok_or_else(|| Error::field("meta", "expected an array of objects"))?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let here = format!("meta[{i}]");
            let m = item
                .as_object()
                .ok_or_else(|| Error::field(&here, "expected an object"))?;
            Ok(VariationMeta {
                key: optional_str(m, "key")
                    .map_err(|e| e.under(&here))?
                    .map(str::to_string),
                name: optional_str(m, "name")
                    .map_err(|e| e.under(&here))?
                    .map(str::to_string),
                passthrough: optional_bool(m, "passthrough")
                    .map_err(|e| e.under(&here))?
                    .unwrap_or(false),
            })
        })
        .collect()
}
