//! `cx features load`'s input lines: a JSONL object or a CSV row, typed by
//! the feature definitions into an [`OwnedItem`]; every error names the
//! field at fault.

use super::type_name;
use cx_engine::featurestore::{Definitions, ValueType};
use cx_wire::protocol::limits::{FEATURE_NAME_BYTES_MAX, STRING_BYTES_MAX};
use cx_wire::protocol::{FeatureItem, PutValue};
use serde::Deserialize;

/// A checked input item: what goes on the wire.
#[derive(Clone, Debug, PartialEq)]
pub struct OwnedItem {
    /// The user.
    pub user_id: String,
    /// The stored feature.
    pub feature: String,
    value: OwnedValue,
    /// When observed, unix ns (0: when the server reads it).
    pub ts_ns: u64,
}

#[derive(Clone, Debug, PartialEq)]
enum OwnedValue {
    F32(f32),
    I64(i64),
    Bool(bool),
    Timestamp(i64),
    Category(String),
}

impl OwnedItem {
    /// The item as the wire encoder takes it.
    pub fn borrowed(&self) -> FeatureItem<'_> {
        let value = match &self.value {
            OwnedValue::F32(x) => PutValue::F32(*x),
            OwnedValue::I64(x) => PutValue::I64(*x),
            OwnedValue::Bool(x) => PutValue::Bool(*x),
            OwnedValue::Timestamp(x) => PutValue::Timestamp(*x),
            OwnedValue::Category(l) => PutValue::Category(l),
        };
        FeatureItem {
            user_id: &self.user_id,
            feature: &self.feature,
            value,
            time_ns: self.ts_ns,
        }
    }
}

/// One JSONL line.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonLine {
    user_id: String,
    feature: String,
    value: serde_json::Value,
    #[serde(default)]
    ts_ns: u64,
}

/// A raw value: JSON's, or a CSV field's text.
enum Raw<'a> {
    Json(&'a serde_json::Value),
    Text(&'a str),
}

/// Parses and types one JSONL line.
pub fn parse_json_line(defs: &Definitions, text: &[u8]) -> Result<OwnedItem, String> {
    let line: JsonLine = serde_json::from_slice(text).map_err(|e| e.to_string())?;
    build(
        defs,
        line.user_id,
        line.feature,
        Raw::Json(&line.value),
        line.ts_ns,
    )
}

/// Where the columns of a CSV input are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CsvHeader {
    user_id: usize,
    feature: usize,
    value: usize,
    ts_ns: Option<usize>,
    columns: usize,
}

impl CsvHeader {
    /// Reads a header line: `user_id`, `feature`, `value` and optionally
    /// `ts_ns`, in any order, nothing else.
    pub fn parse(text: &[u8]) -> Result<Self, String> {
        let text = std::str::from_utf8(text).map_err(|e| format!("not UTF-8: {e}"))?;
        let names: Vec<&str> = text.split(',').map(str::trim).collect();
        let find = |name: &str| names.iter().position(|n| *n == name);
        if let Some(other) = names
            .iter()
            .find(|n| !["user_id", "feature", "value", "ts_ns"].contains(n))
        {
            return Err(format!(
                "unknown column {other:?} (known: user_id, feature, value, ts_ns)"
            ));
        }
        let need = |name: &str| find(name).ok_or_else(|| format!("no {name} column"));
        let header = Self {
            user_id: need("user_id")?,
            feature: need("feature")?,
            value: need("value")?,
            ts_ns: find("ts_ns"),
            columns: names.len(),
        };
        if names.len() != 3 + usize::from(header.ts_ns.is_some()) {
            return Err("a column appears twice".into());
        }
        Ok(header)
    }
}

/// Parses and types one CSV row under `header`.
pub fn parse_csv_line(
    defs: &Definitions,
    header: &CsvHeader,
    text: &[u8],
) -> Result<OwnedItem, String> {
    let text = std::str::from_utf8(text).map_err(|e| format!("not UTF-8: {e}"))?;
    if text.contains('"') {
        return Err("quoted fields are not supported (no field may hold a quote)".into());
    }
    let fields: Vec<&str> = text.split(',').collect();
    if fields.len() != header.columns {
        return Err(format!(
            "{} fields, the header has {} columns",
            fields.len(),
            header.columns
        ));
    }
    let field = |i: usize| fields.get(i).copied().unwrap_or("");
    let ts_ns = match header.ts_ns.map(field) {
        None | Some("") => 0,
        Some(t) => t
            .trim()
            .parse()
            .map_err(|_| format!("ts_ns: {t:?} is not unix ns (an integer from 0)"))?,
    };
    build(
        defs,
        field(header.user_id).to_owned(),
        field(header.feature).to_owned(),
        Raw::Text(field(header.value)),
        ts_ns,
    )
}

fn build(
    defs: &Definitions,
    user_id: String,
    feature: String,
    raw: Raw<'_>,
    ts_ns: u64,
) -> Result<OwnedItem, String> {
    if user_id.is_empty() {
        return Err("user_id: empty".into());
    }
    for (field, s, limit) in [
        ("user_id", &user_id, STRING_BYTES_MAX),
        ("feature", &feature, FEATURE_NAME_BYTES_MAX),
    ] {
        if s.len() > limit {
            return Err(format!(
                "{field}: {} bytes, more than the limit of {limit}",
                s.len()
            ));
        }
    }
    let id = defs
        .find(&feature)
        .ok_or_else(|| format!("feature: {feature:?} is not a feature of the definitions"))?;
    let def = defs.stored().get(id.index()).ok_or_else(|| {
        format!("feature: {feature:?} is computed (evaluated at read time); it cannot be written")
    })?;
    let t = def.value_type;
    let wrong = |shown: String| {
        format!(
            "value: {shown} is not a {} value for {feature:?}",
            type_name(t)
        )
    };
    let value = match (t, raw) {
        (ValueType::F32, Raw::Json(v)) => {
            let x = v.as_f64().ok_or_else(|| wrong(v.to_string()))?;
            finite_f32(x).ok_or_else(|| format!("value: {x} is not finite as an f32"))?
        }
        (ValueType::F32, Raw::Text(s)) => {
            let x: f32 = s.trim().parse().map_err(|_| wrong(format!("{s:?}")))?;
            finite_f32(f64::from(x)).ok_or_else(|| format!("value: {s:?} is not finite"))?
        }
        (ValueType::I64 | ValueType::Timestamp, Raw::Json(v)) => {
            let x = v.as_i64().ok_or_else(|| wrong(v.to_string()))?;
            integer(t, x)
        }
        (ValueType::I64 | ValueType::Timestamp, Raw::Text(s)) => {
            let x: i64 = s.trim().parse().map_err(|_| wrong(format!("{s:?}")))?;
            integer(t, x)
        }
        (ValueType::Bool, Raw::Json(v)) => {
            OwnedValue::Bool(v.as_bool().ok_or_else(|| wrong(v.to_string()))?)
        }
        (ValueType::Bool, Raw::Text(s)) => match s.trim() {
            "true" | "1" => OwnedValue::Bool(true),
            "false" | "0" => OwnedValue::Bool(false),
            _ => return Err(wrong(format!("{s:?}"))),
        },
        (ValueType::Category, raw) => {
            let label = match raw {
                Raw::Json(v) => v.as_str().ok_or_else(|| wrong(v.to_string()))?,
                Raw::Text(s) => s,
            };
            if defs.category(id, label).is_none() {
                return Err(format!(
                    "value: {label:?} is not a label of {feature:?} (labels: {})",
                    def.categories.join(", ")
                ));
            }
            OwnedValue::Category(label.to_owned())
        }
    };
    Ok(OwnedItem {
        user_id,
        feature,
        value,
        ts_ns,
    })
}

fn finite_f32(x: f64) -> Option<OwnedValue> {
    let v = x as f32;
    v.is_finite().then_some(OwnedValue::F32(v))
}

fn integer(t: ValueType, x: i64) -> OwnedValue {
    if t == ValueType::Timestamp {
        OwnedValue::Timestamp(x)
    } else {
        OwnedValue::I64(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defs() -> Definitions {
        Definitions::from_toml_str(crate::serve::features::BUNDLED_DEFINITIONS_TOML).unwrap()
    }

    #[test]
    fn json_lines_are_typed_by_the_definitions_and_bad_ones_name_their_field() {
        let defs = defs();
        let item = parse_json_line(
            &defs,
            br#"{"user_id":"u1","feature":"clicks_30d","value":3,"ts_ns":5}"#,
        )
        .unwrap();
        assert_eq!(item.borrowed().value, PutValue::I64(3));
        assert_eq!(item.ts_ns, 5);
        let item = parse_json_line(
            &defs,
            br#"{"user_id":"u","feature":"churn_risk","value":1}"#,
        )
        .unwrap();
        assert_eq!(item.borrowed().value, PutValue::F32(1.0));
        let item = parse_json_line(
            &defs,
            br#"{"user_id":"u","feature":"age_band","value":"55+"}"#,
        )
        .unwrap();
        assert_eq!(item.borrowed().value, PutValue::Category("55+"));
        let item = parse_json_line(
            &defs,
            br#"{"user_id":"u","feature":"last_seen_at","value":1700000000}"#,
        )
        .unwrap();
        assert_eq!(item.borrowed().value, PutValue::Timestamp(1_700_000_000));
        for (line, needle) in [
            (
                r#"{"user_id":"u","feature":"nope","value":1}"#,
                "not a feature",
            ),
            (
                r#"{"user_id":"u","feature":"ctr_30d","value":1}"#,
                "computed",
            ),
            (
                r#"{"user_id":"u","feature":"clicks_30d","value":1.5}"#,
                "not a i64 value",
            ),
            (
                r#"{"user_id":"u","feature":"is_subscriber","value":1}"#,
                "not a bool value",
            ),
            (
                r#"{"user_id":"u","feature":"churn_risk","value":1e39}"#,
                "not finite",
            ),
            (
                r#"{"user_id":"u","feature":"age_band","value":"99+"}"#,
                "not a label",
            ),
            (
                r#"{"user_id":"","feature":"clicks_30d","value":1}"#,
                "user_id",
            ),
            (r#"{"user_id":"u","feature":"clicks_30d"}"#, "value"),
            (
                r#"{"user_id":"u","feature":"clicks_30d","value":1,"x":2}"#,
                "x",
            ),
            ("not json", "expected"),
        ] {
            let e = parse_json_line(&defs, line.as_bytes()).unwrap_err();
            assert!(e.contains(needle), "{line}: {e}");
        }
    }

    #[test]
    fn csv_rows_follow_their_header() {
        let defs = defs();
        let header = CsvHeader::parse(b"feature,user_id,value,ts_ns").unwrap();
        let item = parse_csv_line(&defs, &header, b"is_subscriber,u9,true,7").unwrap();
        assert_eq!(item.borrowed().value, PutValue::Bool(true));
        assert_eq!((item.user_id.as_str(), item.ts_ns), ("u9", 7));
        let item = parse_csv_line(&defs, &header, b"churn_risk,u9,0.25,").unwrap();
        assert_eq!(
            (item.borrowed().value, item.ts_ns),
            (PutValue::F32(0.25), 0)
        );
        for (line, needle) in [
            ("churn_risk,u9,NaN,1", "not finite"),
            ("churn_risk,u9,inf,1", "not finite"),
            ("clicks_30d,u9,x,1", "not a i64"),
            ("clicks_30d,u9,1", "fields"),
            ("clicks_30d,\"u9\",1,1", "quoted"),
            ("clicks_30d,u9,1,-5", "ts_ns"),
        ] {
            let e = parse_csv_line(&defs, &header, line.as_bytes()).unwrap_err();
            assert!(e.contains(needle), "{line}: {e}");
        }
        assert!(CsvHeader::parse(b"user_id,feature")
            .unwrap_err()
            .contains("value"));
        assert!(CsvHeader::parse(b"user_id,feature,value,v2")
            .unwrap_err()
            .contains("v2"));
        assert!(CsvHeader::parse(b"user_id,feature,value,value")
            .unwrap_err()
            .contains("twice"));
    }
}
