//! Feature definitions: what the store holds per entity, read from TOML
//! (`docs/FEATURES.md`, "Online feature store").
//!
//! A definitions file lists *stored* features (`[[feature]]`: written by
//! [`put`](crate::OnlineFeatures::put), each with a value type, a time to
//! live and a default) and *computed* features (`[[computed]]`: evaluated
//! at read time from other features and the request's time, see
//! [`crate::computed`]). [`Definitions`] is the validated, immutable
//! result: every name resolved to a [`FeatureId`], computed features in
//! an evaluation order with no cycle, and a schema id.
//!
//! # Positions
//!
//! A [`FeatureId`] is a position in a read row ([`crate::FeatureValues`]):
//! the stored features first, in file order, then the computed ones, in
//! file order. The schema id covers this order, so reordering the file
//! changes the id.
//!
//! # The schema id
//!
//! [`Definitions::canonical`] writes one line per feature with everything
//! that changes what a read returns (name, entity, kind, type and
//! categories, TTL, default, computation and its parameters) and what
//! changes what the stored values mean online (a feedback
//! [`UpdateRule`], written only when the feature has one, so files
//! without rules keep their ids), not the descriptions. The id is the
//! first 16 hex characters of its SHA-256, as for the request feature
//! schema (`FeatureSchema::id`).

mod parse;
mod updates;

pub use updates::{FeedbackEvent, UpdateOp, UpdateRule};

use crate::error::{Error, Result};
use std::fmt;
use std::path::Path;

/// Longest definitions file read, bytes.
pub const DEFS_BYTES_MAX: usize = 1 << 20;
/// Most stored features in one definitions file.
pub const STORED_FEATURES_MAX: usize = 64;
/// Most computed features in one definitions file.
pub const COMPUTED_FEATURES_MAX: usize = 64;
/// Longest feature name, bytes (`[a-z][a-z0-9_]*`).
pub const NAME_BYTES_MAX: usize = 64;
/// Most labels of a category feature.
pub const CATEGORIES_MAX: usize = 256;
/// Longest category label, bytes.
pub const LABEL_BYTES_MAX: usize = 64;
/// Longest time to live: 3650 days, in seconds.
pub const TTL_MAX_S: u32 = 3650 * 86_400;
/// Length of a definitions schema id, hex characters.
pub const ID_HEX_LEN: usize = 16;
/// Version of the definitions' canonical text (part of the schema id).
pub const DEFS_VERSION: u32 = 1;

/// Whose feature it is. Only users for now; the store keeps one entity
/// kind per instance, so another entity is another store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Entity {
    /// A user, keyed by the hash of the request's `user_id`.
    User,
}

/// The five kinds of feature of the design (documentation and grouping;
/// they do not change how a value is read).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FeatureKind {
    /// What the user does: views, clicks, sessions.
    Behavioral,
    /// Who the user is: age band, tier, language.
    Demographic,
    /// Purchases and spend.
    Transactional,
    /// Responses to offers: clicks, conversions, dismissals.
    Engagement,
    /// Scores from other models: churn risk, predicted value.
    Predictive,
}

/// The type of a stored feature's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueType {
    /// A finite 32-bit float.
    F32,
    /// A 64-bit integer (counts, amounts in minor units).
    I64,
    /// A boolean.
    Bool,
    /// A time, unix seconds (UTC).
    Timestamp,
    /// One label of the feature's category list, read as its index.
    Category,
}

/// One value, as written and as read.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    /// A finite float.
    F32(f32),
    /// An integer.
    I64(i64),
    /// A boolean.
    Bool(bool),
    /// Unix seconds.
    Timestamp(i64),
    /// The index of a label in the feature's `categories`.
    Category(u16),
}

/// A feature's position in a read row: stored features first, then
/// computed ones (see the [module docs](self)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FeatureId(pub(crate) u16);

/// One stored feature.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureDef {
    /// Unique name, `[a-z][a-z0-9_]*`, at most [`NAME_BYTES_MAX`] bytes.
    pub name: String,
    /// Whose feature it is.
    pub entity: Entity,
    /// Its kind.
    pub kind: FeatureKind,
    /// The type of its values.
    pub value_type: ValueType,
    /// The labels of a category feature (empty for the other types).
    pub categories: Vec<String>,
    /// A value older than this many seconds reads as stale.
    pub ttl_s: u32,
    /// What a read gives when the value is missing or stale.
    pub default: Value,
    /// How feedback events update it (`on_event` and `update`), if they do.
    pub update: Option<UpdateRule>,
    /// Free text (not part of the schema id).
    pub description: String,
}

/// A comparison of [`Computation::Threshold`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cmp {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

/// How a computed feature is evaluated (`crate::computed` has the
/// formulas and what each gives when an input is missing or stale).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Computation {
    /// Days (fractional) from a timestamp feature to the request's time,
    /// at least 0; `default` when the timestamp is missing or stale.
    DaysSince {
        /// A stored timestamp feature.
        input: FeatureId,
        /// The result when the input is not fresh.
        default: f32,
    },
    /// `(a + prior_mean * prior_weight) / (b + prior_weight)`.
    Ratio {
        /// `a`: a numeric feature.
        numerator: FeatureId,
        /// `b`: a numeric feature.
        denominator: FeatureId,
        /// The ratio with no evidence.
        prior_mean: f64,
        /// How many denominator units the prior weighs (> 0).
        prior_weight: f64,
    },
    /// `x cmp value`, as a boolean.
    Threshold {
        /// `x`: a numeric feature.
        input: FeatureId,
        /// The comparison.
        cmp: Cmp,
        /// The value compared with.
        value: f64,
    },
}

/// One computed feature.
#[derive(Clone, Debug, PartialEq)]
pub struct ComputedDef {
    /// Unique name (among stored and computed features).
    pub name: String,
    /// Its kind.
    pub kind: FeatureKind,
    /// How it is evaluated.
    pub op: Computation,
    /// Free text (not part of the schema id).
    pub description: String,
}

/// Validated feature definitions. See the [module docs](self).
#[derive(Clone, Debug, PartialEq)]
pub struct Definitions {
    stored: Vec<FeatureDef>,
    computed: Vec<ComputedDef>,
    /// Indices into `computed`, inputs before the features that read them.
    order: Vec<u16>,
    canonical: String,
    id: String,
    /// Per stored feature, for the read path: TTL, type, default's bits.
    pub(crate) ttl_s: Box<[u32]>,
    pub(crate) types: Box<[ValueType]>,
    pub(crate) default_bits: Box<[u64]>,
}

impl Definitions {
    /// Parses and validates definitions from TOML text. Fails naming the
    /// feature and the field at fault.
    pub fn from_toml_str(text: &str) -> Result<Self> {
        if text.len() > DEFS_BYTES_MAX {
            return Err(Error::LimitExceeded {
                what: "feature definitions length in bytes",
                value: text.len() as u64,
                limit: DEFS_BYTES_MAX as u64,
            });
        }
        let (stored, computed) = parse::parse(text)?;
        let order = parse::evaluation_order(&stored, &computed)?;
        Ok(Self::assemble(stored, computed, order))
    }

    /// Reads and validates the definitions file at `path` (at most
    /// [`DEFS_BYTES_MAX`] bytes).
    pub fn load(path: &Path) -> Result<Self> {
        let io = |source| Error::Io {
            path: path.display().to_string(),
            source,
        };
        let len = std::fs::metadata(path).map_err(io)?.len();
        if len > DEFS_BYTES_MAX as u64 {
            return Err(Error::LimitExceeded {
                what: "feature definitions file length in bytes",
                value: len,
                limit: DEFS_BYTES_MAX as u64,
            });
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        Self::from_toml_str(&text)
    }

    fn assemble(stored: Vec<FeatureDef>, computed: Vec<ComputedDef>, order: Vec<u16>) -> Self {
        let canonical = canonical(&stored, &computed);
        let id = id_of(&canonical);
        Self {
            ttl_s: stored.iter().map(|f| f.ttl_s).collect(),
            types: stored.iter().map(|f| f.value_type).collect(),
            default_bits: stored.iter().map(|f| f.default.to_bits()).collect(),
            stored,
            computed,
            order,
            canonical,
            id,
        }
    }

    /// The schema id: 16 hex characters of the SHA-256 of
    /// [`canonical`](Self::canonical).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The deterministic text the id is computed from.
    pub fn canonical(&self) -> &str {
        &self.canonical
    }

    /// The stored features, in row order.
    pub fn stored(&self) -> &[FeatureDef] {
        &self.stored
    }

    /// The computed features, in row order (after the stored ones).
    pub fn computed(&self) -> &[ComputedDef] {
        &self.computed
    }

    /// Stored plus computed features: the width of a read row.
    pub fn len(&self) -> usize {
        self.stored.len() + self.computed.len()
    }

    /// Whether there is no feature at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The feature called `name`.
    pub fn find(&self, name: &str) -> Option<FeatureId> {
        let stored = self.stored.iter().map(|f| f.name.as_str());
        let computed = self.computed.iter().map(|c| c.name.as_str());
        let at = stored.chain(computed).position(|n| n == name)?;
        Some(FeatureId(at as u16))
    }

    /// The feature's name (`""` for an id of other definitions).
    pub fn name(&self, id: FeatureId) -> &str {
        match self.split(id) {
            Some(Ok(f)) => &f.name,
            Some(Err(c)) => &c.name,
            None => "",
        }
    }

    /// The type a read gives for the feature: computed features read as
    /// `F32` (days, ratios) or `Bool` (thresholds). `None` for an id of
    /// other definitions.
    pub fn value_type(&self, id: FeatureId) -> Option<ValueType> {
        match self.split(id)? {
            Ok(f) => Some(f.value_type),
            Err(c) => Some(match c.op {
                Computation::Threshold { .. } => ValueType::Bool,
                _ => ValueType::F32,
            }),
        }
    }

    /// The label of a category value of feature `id`.
    pub fn label(&self, id: FeatureId, value: Value) -> Option<&str> {
        let Value::Category(i) = value else {
            return None;
        };
        let f = self.split(id)?.ok()?;
        f.categories.get(usize::from(i)).map(String::as_str)
    }

    /// The value of category feature `id` for `label`.
    pub fn category(&self, id: FeatureId, label: &str) -> Option<Value> {
        let f = self.split(id)?.ok()?;
        let i = f.categories.iter().position(|l| l == label)?;
        Some(Value::Category(i as u16))
    }

    /// The stored feature (`Ok`) or computed feature (`Err`) at `id`.
    fn split(&self, id: FeatureId) -> Option<Result<&FeatureDef, &ComputedDef>> {
        let i = id.index();
        match self.stored.get(i) {
            Some(f) => Some(Ok(f)),
            None => self.computed.get(i - self.stored.len()).map(Err),
        }
    }

    /// Indices into [`computed`](Self::computed), each after its inputs.
    pub(crate) fn order(&self) -> &[u16] {
        &self.order
    }

    /// Checks `value` against stored feature `index`'s type; the reason
    /// when it does not fit.
    pub(crate) fn check_value(&self, index: usize, value: Value) -> Result<(), String> {
        let f = &self.stored[index];
        if value.value_type() != f.value_type {
            return Err(format!(
                "a {} value, the feature holds {}",
                value.value_type(),
                f.value_type
            ));
        }
        match value {
            Value::F32(x) if !x.is_finite() => Err(format!("{x} is not finite")),
            Value::Category(i) if usize::from(i) >= f.categories.len() => Err(format!(
                "category {i} is not below the {} labels",
                f.categories.len()
            )),
            _ => Ok(()),
        }
    }
}

impl FeatureId {
    /// The position in a read row.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

impl Value {
    /// The value's type.
    pub fn value_type(&self) -> ValueType {
        match self {
            Self::F32(_) => ValueType::F32,
            Self::I64(_) => ValueType::I64,
            Self::Bool(_) => ValueType::Bool,
            Self::Timestamp(_) => ValueType::Timestamp,
            Self::Category(_) => ValueType::Category,
        }
    }

    /// The value as a number: floats and integers as they are, `true` as
    /// 1, a timestamp as its seconds, a category as its index.
    pub fn as_f64(&self) -> f64 {
        match *self {
            Self::F32(x) => f64::from(x),
            Self::I64(x) => x as f64,
            Self::Bool(x) => f64::from(u8::from(x)),
            Self::Timestamp(x) => x as f64,
            Self::Category(x) => f64::from(x),
        }
    }

    /// The 8 bytes the store keeps.
    pub(crate) fn to_bits(self) -> u64 {
        match self {
            Self::F32(x) => u64::from(x.to_bits()),
            Self::I64(x) | Self::Timestamp(x) => x as u64,
            Self::Bool(x) => u64::from(x),
            Self::Category(x) => u64::from(x),
        }
    }

    /// The value of type `t` kept as `bits`.
    pub(crate) fn from_bits(t: ValueType, bits: u64) -> Self {
        match t {
            ValueType::F32 => Self::F32(f32::from_bits(bits as u32)),
            ValueType::I64 => Self::I64(bits as i64),
            ValueType::Bool => Self::Bool(bits != 0),
            ValueType::Timestamp => Self::Timestamp(bits as i64),
            ValueType::Category => Self::Category(bits as u16),
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::F32 => "f32",
            Self::I64 => "i64",
            Self::Bool => "bool",
            Self::Timestamp => "timestamp",
            Self::Category => "category",
        })
    }
}

impl fmt::Display for FeatureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Behavioral => "behavioral",
            Self::Demographic => "demographic",
            Self::Transactional => "transactional",
            Self::Engagement => "engagement",
            Self::Predictive => "predictive",
        })
    }
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::User => "user",
        })
    }
}

impl fmt::Display for Cmp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Eq => "==",
            Self::Ne => "!=",
        })
    }
}

/// The canonical text of the definitions (see the [module docs](self)).
fn canonical(stored: &[FeatureDef], computed: &[ComputedDef]) -> String {
    use fmt::Write;
    let mut out = format!("cx-feature-definitions v{DEFS_VERSION}\n");
    for f in stored {
        let t = match f.value_type {
            ValueType::Category => format!("category[{}]", f.categories.join(",")),
            other => other.to_string(),
        };
        let _ = write!(
            out,
            "feature {} entity={} kind={} type={t} ttl_s={} default={}",
            f.name,
            f.entity,
            f.kind,
            f.ttl_s,
            canonical_value(f)
        );
        if let Some(rule) = f.update {
            let _ = write!(out, " on_event={} update={}", rule.on_event, rule.update);
        }
        out.push('\n');
    }
    let name = |id: FeatureId| -> &str {
        let i = id.index();
        match stored.get(i) {
            Some(f) => &f.name,
            None => &computed[i - stored.len()].name,
        }
    };
    for c in computed {
        let op = match c.op {
            Computation::DaysSince { input, default } => {
                format!("days_since({}) default={default}", name(input))
            }
            Computation::Ratio {
                numerator,
                denominator,
                prior_mean,
                prior_weight,
            } => format!(
                "ratio({},{}) prior_mean={prior_mean} prior_weight={prior_weight}",
                name(numerator),
                name(denominator)
            ),
            Computation::Threshold { input, cmp, value } => {
                format!("threshold({} {cmp} {value})", name(input))
            }
        };
        let _ = writeln!(out, "computed {} kind={} {op}", c.name, c.kind);
    }
    out
}

/// A stored feature's default as the canonical text writes it (a
/// category by its label).
fn canonical_value(f: &FeatureDef) -> String {
    match f.default {
        Value::F32(x) => format!("{x}"),
        Value::I64(x) | Value::Timestamp(x) => format!("{x}"),
        Value::Bool(x) => format!("{x}"),
        Value::Category(x) => f.categories[usize::from(x)].clone(),
    }
}

fn id_of(canonical: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(canonical.as_bytes());
    let mut hex = String::with_capacity(ID_HEX_LEN);
    for b in digest.iter().take(ID_HEX_LEN / 2) {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}
