//! From TOML text to validated definitions: the raw serde shapes, one
//! check per field (each error names the feature and the field), and the
//! evaluation order of the computed features (which finds cycles).

use super::{
    Cmp, Computation, ComputedDef, Entity, FeatureDef, FeatureId, FeatureKind, Value, ValueType,
    CATEGORIES_MAX, COMPUTED_FEATURES_MAX, LABEL_BYTES_MAX, NAME_BYTES_MAX, STORED_FEATURES_MAX,
    TTL_MAX_S,
};
use crate::error::{Error, Result};
use serde::Deserialize;
use std::collections::HashMap;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    feature: Vec<RawFeature>,
    #[serde(default)]
    computed: Vec<RawComputed>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFeature {
    name: Option<String>,
    entity: Option<String>,
    kind: Option<String>,
    #[serde(rename = "type")]
    value_type: Option<String>,
    categories: Option<Vec<String>>,
    ttl: Option<String>,
    default: Option<toml::Value>,
    on_event: Option<String>,
    update: Option<String>,
    #[serde(default)]
    description: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawComputed {
    name: Option<String>,
    kind: Option<String>,
    op: Option<String>,
    input: Option<String>,
    numerator: Option<String>,
    denominator: Option<String>,
    prior_mean: Option<f64>,
    prior_weight: Option<f64>,
    cmp: Option<String>,
    value: Option<f64>,
    default: Option<f64>,
    #[serde(default)]
    description: String,
}

/// Parses and checks every feature; computed inputs are resolved against
/// all names (stored and computed), cycles are found later.
pub(super) fn parse(text: &str) -> Result<(Vec<FeatureDef>, Vec<ComputedDef>)> {
    let raw: RawFile = toml::from_str(text).map_err(|e| Error::DefinitionsToml(e.to_string()))?;
    check_count("stored features", raw.feature.len(), STORED_FEATURES_MAX)?;
    check_count(
        "computed features",
        raw.computed.len(),
        COMPUTED_FEATURES_MAX,
    )?;
    let mut names: HashMap<String, usize> = HashMap::new();
    let raw_names = raw.feature.iter().map(|f| &f.name);
    let all_names = raw_names.chain(raw.computed.iter().map(|c| &c.name));
    for (i, name) in all_names.enumerate() {
        let name = check_name(name.as_deref(), i)?;
        if let Some(first) = names.insert(name.to_owned(), i) {
            return Err(Error::def(
                name,
                "name",
                format!("duplicate name: feature #{first} has it too"),
            ));
        }
    }
    let stored = raw
        .feature
        .into_iter()
        .map(stored_feature)
        .collect::<Result<Vec<_>>>()?;
    let computed = raw
        .computed
        .into_iter()
        .map(|c| computed_feature(c, &names, &stored))
        .collect::<Result<Vec<_>>>()?;
    Ok((stored, computed))
}

fn check_count(what: &'static str, value: usize, limit: usize) -> Result<()> {
    if value > limit {
        return Err(Error::LimitExceeded {
            what,
            value: value as u64,
            limit: limit as u64,
        });
    }
    Ok(())
}

fn check_name(name: Option<&str>, position: usize) -> Result<&str> {
    let unnamed = format!("#{position}");
    let name = name.ok_or_else(|| Error::def(&unnamed, "name", "missing"))?;
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok || name.len() > NAME_BYTES_MAX {
        let shown: String = name.chars().take(NAME_BYTES_MAX).collect();
        return Err(Error::def(
            &unnamed,
            "name",
            format!("'{shown}' is not a name: [a-z][a-z0-9_]*, at most {NAME_BYTES_MAX} bytes"),
        ));
    }
    Ok(name)
}

fn required<T>(value: Option<T>, feature: &str, field: &'static str) -> Result<T> {
    value.ok_or_else(|| Error::def(feature, field, "missing"))
}

fn stored_feature(raw: RawFeature) -> Result<FeatureDef> {
    let name = raw.name.unwrap_or_default();
    let entity = entity(raw.entity.as_deref(), &name)?;
    let kind = kind(required(raw.kind, &name, "kind")?.as_str(), &name)?;
    let value_type = value_type(&required(raw.value_type, &name, "type")?, &name)?;
    let categories = categories(raw.categories, value_type, &name)?;
    let ttl_s = ttl(&required(raw.ttl, &name, "ttl")?, &name)?;
    let default = default(
        &required(raw.default, &name, "default")?,
        value_type,
        &categories,
        &name,
    )?;
    let update = super::updates::rule(
        raw.on_event.as_deref(),
        raw.update.as_deref(),
        value_type,
        &name,
    )?;
    Ok(FeatureDef {
        name,
        entity,
        kind,
        value_type,
        categories,
        ttl_s,
        default,
        update,
        description: raw.description,
    })
}

fn entity(text: Option<&str>, feature: &str) -> Result<Entity> {
    match text.unwrap_or("user") {
        "user" => Ok(Entity::User),
        other => Err(Error::def(
            feature,
            "entity",
            format!("'{other}' is not supported (known: user)"),
        )),
    }
}

fn kind(text: &str, feature: &str) -> Result<FeatureKind> {
    Ok(match text {
        "behavioral" => FeatureKind::Behavioral,
        "demographic" => FeatureKind::Demographic,
        "transactional" => FeatureKind::Transactional,
        "engagement" => FeatureKind::Engagement,
        "predictive" => FeatureKind::Predictive,
        other => {
            return Err(Error::def(
                feature,
                "kind",
                format!(
                    "'{other}' is not one of behavioral, demographic, transactional, \
                     engagement, predictive"
                ),
            ))
        }
    })
}

fn value_type(text: &str, feature: &str) -> Result<ValueType> {
    Ok(match text {
        "f32" => ValueType::F32,
        "i64" => ValueType::I64,
        "bool" => ValueType::Bool,
        "timestamp" => ValueType::Timestamp,
        "category" => ValueType::Category,
        other => {
            return Err(Error::def(
                feature,
                "type",
                format!("'{other}' is not one of f32, i64, bool, timestamp, category"),
            ))
        }
    })
}

fn categories(raw: Option<Vec<String>>, t: ValueType, feature: &str) -> Result<Vec<String>> {
    let Some(labels) = raw else {
        if t == ValueType::Category {
            return Err(Error::def(feature, "categories", "missing (type category)"));
        }
        return Ok(Vec::new());
    };
    if t != ValueType::Category {
        return Err(Error::def(
            feature,
            "categories",
            format!("only a category feature has categories, this one is {t}"),
        ));
    }
    if labels.is_empty() || labels.len() > CATEGORIES_MAX {
        return Err(Error::def(
            feature,
            "categories",
            format!("{} labels, not in 1..={CATEGORIES_MAX}", labels.len()),
        ));
    }
    for (i, label) in labels.iter().enumerate() {
        if label.is_empty() || label.len() > LABEL_BYTES_MAX || label.contains(',') {
            return Err(Error::def(
                feature,
                "categories",
                format!("label #{i} is empty, longer than {LABEL_BYTES_MAX} bytes or has a ','"),
            ));
        }
        if labels[..i].contains(label) {
            return Err(Error::def(
                feature,
                "categories",
                format!("label '{label}' appears twice"),
            ));
        }
    }
    Ok(labels)
}

/// A time to live: a whole number followed by `s`, `m`, `h` or `d`, from
/// 1 second to [`TTL_MAX_S`].
pub(crate) fn ttl(text: &str, feature: &str) -> Result<u32> {
    let bad = |why: &str| Error::def(feature, "ttl", format!("'{text}': {why}"));
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &text[digits.len()..];
    let n: u64 = digits
        .parse()
        .map_err(|_| bad("not a whole number followed by s, m, h or d"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(bad("the unit is not one of s, m, h, d")),
    };
    let seconds = n.saturating_mul(scale);
    if !(1..=u64::from(TTL_MAX_S)).contains(&seconds) {
        return Err(bad("must be from 1s to 3650d"));
    }
    Ok(seconds as u32)
}

fn default(raw: &toml::Value, t: ValueType, labels: &[String], feature: &str) -> Result<Value> {
    let bad = || {
        Error::def(
            feature,
            "default",
            format!("{raw} is not a {t} value{}", hint(t)),
        )
    };
    Ok(match (t, raw) {
        (ValueType::F32, toml::Value::Float(x)) if (*x as f32).is_finite() => Value::F32(*x as f32),
        (ValueType::F32, toml::Value::Integer(x)) => Value::F32(*x as f32),
        (ValueType::I64, toml::Value::Integer(x)) => Value::I64(*x),
        (ValueType::Timestamp, toml::Value::Integer(x)) => Value::Timestamp(*x),
        (ValueType::Bool, toml::Value::Boolean(x)) => Value::Bool(*x),
        (ValueType::Category, toml::Value::String(s)) => match labels.iter().position(|l| l == s) {
            Some(i) => Value::Category(i as u16),
            None => {
                return Err(Error::def(
                    feature,
                    "default",
                    format!("'{s}' is not one of the categories"),
                ))
            }
        },
        _ => return Err(bad()),
    })
}

fn hint(t: ValueType) -> &'static str {
    match t {
        ValueType::F32 => " (a finite number)",
        ValueType::I64 => " (an integer)",
        ValueType::Bool => " (true or false)",
        ValueType::Timestamp => " (unix seconds, an integer)",
        ValueType::Category => " (one of the labels, a string)",
    }
}

/// What a computed feature's op reads from its raw fields.
struct Fields<'a> {
    raw: &'a RawComputed,
    name: &'a str,
    names: &'a HashMap<String, usize>,
    stored: &'a [FeatureDef],
}

fn computed_feature(
    raw: RawComputed,
    names: &HashMap<String, usize>,
    stored: &[FeatureDef],
) -> Result<ComputedDef> {
    let name = raw.name.clone().unwrap_or_default();
    let kind = kind(required(raw.kind.as_deref(), &name, "kind")?, &name)?;
    let fields = Fields {
        raw: &raw,
        name: &name,
        names,
        stored,
    };
    let op = match required(raw.op.as_deref(), &name, "op")? {
        "days_since" => fields.days_since()?,
        "ratio" => fields.ratio()?,
        "threshold" => fields.threshold()?,
        other => {
            return Err(Error::def(
                &name,
                "op",
                format!("'{other}' is not one of days_since, ratio, threshold"),
            ))
        }
    };
    Ok(ComputedDef {
        name,
        kind,
        op,
        description: raw.description,
    })
}

impl Fields<'_> {
    /// Refuses the fields `op` does not read.
    fn only(&self, op: &str, used: &[&str]) -> Result<()> {
        let r = self.raw;
        let present = [
            ("input", r.input.is_some()),
            ("numerator", r.numerator.is_some()),
            ("denominator", r.denominator.is_some()),
            ("prior_mean", r.prior_mean.is_some()),
            ("prior_weight", r.prior_weight.is_some()),
            ("cmp", r.cmp.is_some()),
            ("value", r.value.is_some()),
            ("default", r.default.is_some()),
        ];
        match present
            .iter()
            .find(|(field, there)| *there && !used.contains(field))
        {
            Some((field, _)) => Err(Error::Definition {
                feature: self.name.to_owned(),
                field: "op",
                reason: format!("{op} does not take the field '{field}'"),
            }),
            None => Ok(()),
        }
    }

    /// The feature named by `field`, which must be a number (a stored
    /// timestamp too when `timestamp`).
    fn input(
        &self,
        field: &'static str,
        text: Option<&String>,
        timestamp: bool,
    ) -> Result<FeatureId> {
        let target = required(text, self.name, field)?;
        let Some(&at) = self.names.get(target.as_str()) else {
            return Err(Error::def(
                self.name,
                field,
                format!("unknown feature '{target}'"),
            ));
        };
        let t = self.stored.get(at).map(|f| f.value_type);
        let fits = match t {
            Some(ValueType::Timestamp) => timestamp,
            Some(ValueType::Category) => false,
            Some(_) => !timestamp,
            None => !timestamp, // computed: a number or a boolean
        };
        if !fits {
            let found = t.map_or("a computed feature".to_owned(), |t| format!("a {t}"));
            let want = if timestamp {
                "a stored timestamp"
            } else {
                "a number (f32, i64, bool or computed)"
            };
            return Err(Error::def(
                self.name,
                field,
                format!("'{target}' is {found}, this needs {want}"),
            ));
        }
        Ok(FeatureId(at as u16))
    }

    fn finite(&self, field: &'static str, value: Option<f64>) -> Result<f64> {
        let v = required(value, self.name, field)?;
        if !v.is_finite() || v.abs() > f64::from(f32::MAX) {
            return Err(Error::def(
                self.name,
                field,
                format!("{v} is not a finite f32"),
            ));
        }
        Ok(v)
    }

    fn days_since(&self) -> Result<Computation> {
        self.only("days_since", &["input", "default"])?;
        Ok(Computation::DaysSince {
            input: self.input("input", self.raw.input.as_ref(), true)?,
            default: self.finite("default", self.raw.default)? as f32,
        })
    }

    fn ratio(&self) -> Result<Computation> {
        self.only(
            "ratio",
            &["numerator", "denominator", "prior_mean", "prior_weight"],
        )?;
        let prior_weight = self.finite("prior_weight", self.raw.prior_weight)?;
        if prior_weight <= 0.0 {
            return Err(Error::def(
                self.name,
                "prior_weight",
                format!(
                    "{prior_weight} must be above 0 (the ratio with no evidence is the prior mean)"
                ),
            ));
        }
        Ok(Computation::Ratio {
            numerator: self.input("numerator", self.raw.numerator.as_ref(), false)?,
            denominator: self.input("denominator", self.raw.denominator.as_ref(), false)?,
            prior_mean: self.finite("prior_mean", self.raw.prior_mean)?,
            prior_weight,
        })
    }

    fn threshold(&self) -> Result<Computation> {
        self.only("threshold", &["input", "cmp", "value"])?;
        let cmp = match required(self.raw.cmp.as_deref(), self.name, "cmp")? {
            "<" => Cmp::Lt,
            "<=" => Cmp::Le,
            ">" => Cmp::Gt,
            ">=" => Cmp::Ge,
            "==" => Cmp::Eq,
            "!=" => Cmp::Ne,
            other => {
                return Err(Error::def(
                    self.name,
                    "cmp",
                    format!("'{other}' is not one of <, <=, >, >=, ==, !="),
                ))
            }
        };
        Ok(Computation::Threshold {
            input: self.input("input", self.raw.input.as_ref(), false)?,
            cmp,
            value: self.finite("value", self.raw.value)?,
        })
    }
}

/// The computed features' inputs, as positions in the row.
pub(super) fn inputs(op: &Computation) -> [Option<FeatureId>; 2] {
    match *op {
        Computation::DaysSince { input, .. } | Computation::Threshold { input, .. } => {
            [Some(input), None]
        }
        Computation::Ratio {
            numerator,
            denominator,
            ..
        } => [Some(numerator), Some(denominator)],
    }
}

/// The computed features in an order where each comes after the computed
/// features it reads; an error names a feature on a cycle and the cycle.
pub(super) fn evaluation_order(
    stored: &[FeatureDef],
    computed: &[ComputedDef],
) -> Result<Vec<u16>> {
    // 0: not visited, 1: on the current path, 2: placed.
    let mut state = vec![0u8; computed.len()];
    let mut order = Vec::with_capacity(computed.len());
    let mut path = Vec::new();
    for start in 0..computed.len() {
        visit(
            start,
            stored.len(),
            computed,
            &mut state,
            &mut path,
            &mut order,
        )?;
    }
    Ok(order)
}

fn visit(
    c: usize,
    base: usize,
    computed: &[ComputedDef],
    state: &mut [u8],
    path: &mut Vec<usize>,
    order: &mut Vec<u16>,
) -> Result<()> {
    match state[c] {
        2 => return Ok(()),
        1 => {
            let from = path.iter().position(|&p| p == c).unwrap_or(0);
            let cycle: Vec<&str> = path[from..]
                .iter()
                .chain(std::iter::once(&c))
                .map(|&p| computed[p].name.as_str())
                .collect();
            return Err(Error::def(
                &computed[c].name,
                "input",
                format!(
                    "computed features read each other in a cycle: {}",
                    cycle.join(" -> ")
                ),
            ));
        }
        _ => {}
    }
    state[c] = 1;
    path.push(c);
    for input in inputs(&computed[c].op).into_iter().flatten() {
        if let Some(dep) = input.index().checked_sub(base) {
            visit(dep, base, computed, state, path, order)?;
        }
    }
    path.pop();
    state[c] = 2;
    order.push(c as u16);
    Ok(())
}
