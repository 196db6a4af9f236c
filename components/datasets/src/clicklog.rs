//! Click logs: reading a CSV file, through a dataset spec, into request
//! contexts, labels and offers.
//!
//! A [`DatasetSpec`] (TOML) names the label column, the offer column and
//! the column behind each [`RequestContext`] field, so one reader serves
//! every layout: the bundled synthetic logs, Avazu (`specs/avazu.toml`) and
//! a customer's own export. Rows that are malformed or lack a label are
//! counted per reason in a [`LoadReport`], with the first few quoted by
//! line; they never panic and are never silently dropped.
//!
//! Layout: the result is column-oriented ([`ClickLog`] holds one vector per
//! quantity), which is what the trainer and the evaluator scan.

use crate::error::{Error, Result};
use cx_features::{
    AdPosition, ConnectionType, DeviceType, Os, RequestContext, EXTRA_NUMERIC_SLOTS,
};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;

/// Limits on what one read may hold.
pub mod limits {
    /// Most rows read from one file.
    pub const ROWS_MAX: usize = 20_000_000;
    /// Most offer columns a spec may keep.
    pub const OFFERS_TOP_MAX: usize = 4096;
    /// Rejected rows quoted by line in a [`super::LoadReport`].
    pub const EXAMPLES_MAX: usize = 10;
    /// Largest spec file, in bytes.
    pub const SPEC_BYTES_MAX: usize = 64 << 10;
}

/// How a click log's columns map to the request context, the label and the offer.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpec {
    /// A name for reports.
    #[serde(default)]
    pub name: String,
    /// Column holding the click: `1` (or `1.0`, `true`) or `0` (`0.0`, `false`).
    pub label: String,
    /// The offer shown; without it every row belongs to one output column.
    pub offer: Option<OfferSpec>,
    /// The request time; without it rows get timestamp 0 (a Thursday, 00:00 UTC).
    pub time: Option<TimeSpec>,
    /// Column behind each context field.
    #[serde(default)]
    pub fields: FieldColumns,
    /// Columns read as generic hashed features (`RequestContext::extra`, as
    /// `column=value`), for attributes the context has no field for.
    #[serde(default)]
    pub hashed: Vec<String>,
    /// Columns read as generic numeric features (`RequestContext::extra_numeric`), in
    /// order; at most [`EXTRA_NUMERIC_SLOTS`].
    #[serde(default)]
    pub numeric: Vec<String>,
    /// Where site and app traffic share a file (as in Avazu): which rows are app traffic, and
    /// the app columns to read for them.
    pub app: Option<AppSpec>,
    /// Column holding the true click probability, where the data is synthetic and it is
    /// known (`p_true`); `cx eval` then reports the oracle's AUC beside the model's. Never
    /// a feature.
    pub oracle: Option<String>,
    /// Separator of list values (segments, categories) inside one cell; default `|`.
    #[serde(default = "default_list_separator")]
    pub list_separator: String,
}

fn default_list_separator() -> String {
    "|".into()
}

/// The offer column and how many offers to keep.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OfferSpec {
    /// Column holding the offer id, an unsigned integer.
    pub column: String,
    /// Keep the `top` most frequent offers (ties: smaller id first); rows showing any other
    /// offer are dropped and counted. Default 16.
    #[serde(default = "default_top")]
    pub top: usize,
}

fn default_top() -> usize {
    16
}

/// The time column and its format.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TimeSpec {
    /// Column holding the time.
    pub column: String,
    /// Its format.
    pub format: TimeFormat,
}

/// Formats of a time column.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TimeFormat {
    /// Unix seconds.
    Unix,
    /// `YYMMDDHH` in UTC, years 2000-2099 (Avazu's `hour`).
    Yymmddhh,
}

/// The column behind each [`RequestContext`] field; an absent field stays missing.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FieldColumns {
    /// `user_id`.
    pub user_id: Option<String>,
    /// `user_segments`, a list cell.
    pub user_segments: Option<String>,
    /// `device_type`, an OpenRTB integer.
    pub device_type: Option<String>,
    /// `os`, a name.
    pub os: Option<String>,
    /// `connection_type`, an OpenRTB integer.
    pub connection_type: Option<String>,
    /// `country`.
    pub country: Option<String>,
    /// `region`.
    pub region: Option<String>,
    /// `site_id`.
    pub site_id: Option<String>,
    /// `domain`.
    pub domain: Option<String>,
    /// `categories`, a list cell.
    pub categories: Option<String>,
    /// `placement_width`, pixels.
    pub placement_width: Option<String>,
    /// `placement_height`, pixels.
    pub placement_height: Option<String>,
    /// `ad_position`, an OpenRTB integer.
    pub ad_position: Option<String>,
    /// `bid_floor`, CPM.
    pub bid_floor: Option<String>,
    /// `is_app`: `1`/`true` for app traffic (ignored where `[app]` is given).
    pub is_app: Option<String>,
}

/// Mixed site and app traffic: a row whose `column` differs from `absent` is app traffic,
/// and its inventory fields come from the app columns named here.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AppSpec {
    /// Column that identifies app traffic.
    pub column: String,
    /// Its value on site traffic.
    pub absent: String,
    /// App id column (read into `site_id`).
    pub site_id: Option<String>,
    /// App domain column.
    pub domain: Option<String>,
    /// App category column.
    pub categories: Option<String>,
}

impl FieldColumns {
    /// Each context field's key and the column named for it, if any.
    pub(crate) fn by_key(&self) -> [(&'static str, &Option<String>); 15] {
        [
            ("user_id", &self.user_id),
            ("user_segments", &self.user_segments),
            ("device_type", &self.device_type),
            ("os", &self.os),
            ("connection_type", &self.connection_type),
            ("country", &self.country),
            ("region", &self.region),
            ("site_id", &self.site_id),
            ("domain", &self.domain),
            ("categories", &self.categories),
            ("placement_width", &self.placement_width),
            ("placement_height", &self.placement_height),
            ("ad_position", &self.ad_position),
            ("bid_floor", &self.bid_floor),
            ("is_app", &self.is_app),
        ]
    }
}

impl DatasetSpec {
    /// Parses a TOML spec; the error names the offending key. A spec that
    /// gives the label or the oracle column another role is refused
    /// ([`crate::leakage::check`]).
    pub fn from_toml(text: &str) -> Result<Self> {
        if text.len() > limits::SPEC_BYTES_MAX {
            return Err(Error::LimitExceeded {
                what: "dataset spec size in bytes".into(),
                value: text.len(),
                limit: limits::SPEC_BYTES_MAX,
            });
        }
        let spec: Self = toml::from_str(text).map_err(|e| Error::BadSpec(e.to_string()))?;
        if let Some(offer) = &spec.offer {
            if !(1..=limits::OFFERS_TOP_MAX).contains(&offer.top) {
                return Err(Error::BadSpec(format!(
                    "offer.top is {}, expected 1..={}",
                    offer.top,
                    limits::OFFERS_TOP_MAX
                )));
            }
        }
        if spec.list_separator.is_empty() {
            return Err(Error::BadSpec("list_separator is empty".into()));
        }
        if spec.numeric.len() > EXTRA_NUMERIC_SLOTS {
            return Err(Error::BadSpec(format!(
                "numeric names {} columns, the feature schema has {EXTRA_NUMERIC_SLOTS} generic numeric slots",
                spec.numeric.len()
            )));
        }
        crate::leakage::check(&spec)?;
        Ok(spec)
    }

    /// Reads a spec file.
    pub fn load(path: impl AsRef<std::path::Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text)
    }

    /// Every column the spec reads, with the key that names it.
    fn columns(&self) -> Vec<(String, &str)> {
        let f = &self.fields;
        let mut named: Vec<(String, &str)> = vec![("label".into(), self.label.as_str())];
        if let Some(o) = &self.offer {
            named.push(("offer.column".into(), &o.column));
        }
        if let Some(t) = &self.time {
            named.push(("time.column".into(), &t.column));
        }
        if let Some(o) = &self.oracle {
            named.push(("oracle".into(), o));
        }
        let fields = f.by_key();
        for (key, column) in fields {
            if let Some(c) = column {
                named.push((format!("fields.{key}"), c));
            }
        }
        for (i, c) in self.hashed.iter().enumerate() {
            named.push((format!("hashed[{i}]"), c));
        }
        for (i, c) in self.numeric.iter().enumerate() {
            named.push((format!("numeric[{i}]"), c));
        }
        if let Some(a) = &self.app {
            named.push(("app.column".into(), &a.column));
            for (key, column) in [
                ("site_id", &a.site_id),
                ("domain", &a.domain),
                ("categories", &a.categories),
            ] {
                if let Some(c) = column {
                    named.push((format!("app.{key}"), c));
                }
            }
        }
        named
    }
}

/// The rows read: one entry per kept row in each vector.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClickLog {
    /// Request contexts.
    pub contexts: Vec<RequestContext>,
    /// 1.0 for a click, 0.0 otherwise.
    pub labels: Vec<f32>,
    /// Offer shown (0 for every row when the spec names no offer column).
    pub offers: Vec<u64>,
    /// True click probability of each row, when the spec names an oracle column; else empty.
    pub oracle: Vec<f32>,
}

impl ClickLog {
    /// Rows held.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether no rows are held.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The `top` most frequent offers, most frequent first (ties: smaller id first).
    pub fn top_offers(&self, top: usize) -> Vec<u64> {
        let mut counts: HashMap<u64, usize> = HashMap::new();
        for &o in &self.offers {
            *counts.entry(o).or_default() += 1;
        }
        let mut ranked: Vec<(u64, usize)> = counts.into_iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.into_iter().take(top).map(|(o, _)| o).collect()
    }

    /// Keeps only the rows whose offer is in `offer_ids` and returns, for each kept row, the
    /// index of its offer in `offer_ids` (its output column), and how many rows were dropped.
    pub fn keep_offers(&mut self, offer_ids: &[u64]) -> (Vec<u32>, usize) {
        let column_of: HashMap<u64, u32> = offer_ids
            .iter()
            .enumerate()
            .map(|(i, &o)| (o, i as u32))
            .collect();
        let before = self.len();
        let mut columns = Vec::with_capacity(before);
        let mut keep = Vec::with_capacity(before);
        for &o in &self.offers {
            let c = column_of.get(&o).copied();
            keep.push(c.is_some());
            columns.extend(c);
        }
        let mut flags = keep.iter();
        self.contexts
            .retain(|_| *flags.next().expect("one flag per row"));
        let mut flags = keep.iter();
        self.labels
            .retain(|_| *flags.next().expect("one flag per row"));
        let mut flags = keep.iter();
        self.offers
            .retain(|_| *flags.next().expect("one flag per row"));
        (columns, before - self.len())
    }
}

/// What a read did: rows read, kept, and rejected per reason.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadReport {
    /// Data rows read (the header excluded).
    pub rows_read: usize,
    /// Rows kept.
    pub rows_kept: usize,
    /// Rejected rows per reason.
    pub rejected: BTreeMap<String, usize>,
    /// The first rejected rows, as `line N: reason`.
    pub examples: Vec<String>,
}

impl LoadReport {
    /// Rows rejected in all.
    pub fn rows_rejected(&self) -> usize {
        self.rejected.values().sum()
    }

    fn reject(&mut self, line: u64, kind: &str, detail: String) {
        *self.rejected.entry(kind.to_string()).or_default() += 1;
        if self.examples.len() < limits::EXAMPLES_MAX {
            self.examples.push(format!("line {line}: {detail}"));
        }
    }
}

/// Column indexes of every field the spec reads, resolved against the header.
struct Resolved {
    label: usize,
    offer: Option<usize>,
    oracle: Option<usize>,
    time: Option<(usize, TimeFormat)>,
    fields: HashMap<&'static str, usize>,
    hashed: Vec<(String, usize)>,
    numeric: Vec<usize>,
    app: Option<ResolvedApp>,
}

struct ResolvedApp {
    column: usize,
    absent: String,
    site_id: Option<usize>,
    domain: Option<usize>,
    categories: Option<usize>,
}

fn resolve(spec: &DatasetSpec, header: &csv::StringRecord) -> Result<Resolved> {
    let index: HashMap<&str, usize> = header
        .iter()
        .enumerate()
        .map(|(i, h)| (h.trim(), i))
        .collect();
    for (key, column) in spec.columns() {
        if !index.contains_key(column) {
            return Err(Error::BadSpec(format!(
                "{key} names column `{column}`, which the file's header does not have"
            )));
        }
    }
    let at = |c: &str| index[c];
    let f = &spec.fields;
    let mut fields = HashMap::new();
    for (key, column) in f.by_key() {
        if let Some(c) = column {
            fields.insert(key, at(c));
        }
    }
    Ok(Resolved {
        label: at(&spec.label),
        offer: spec.offer.as_ref().map(|o| at(&o.column)),
        oracle: spec.oracle.as_deref().map(at),
        time: spec.time.as_ref().map(|t| (at(&t.column), t.format)),
        fields,
        hashed: spec.hashed.iter().map(|c| (c.clone(), at(c))).collect(),
        numeric: spec.numeric.iter().map(|c| at(c)).collect(),
        app: spec.app.as_ref().map(|a| ResolvedApp {
            column: at(&a.column),
            absent: a.absent.clone(),
            site_id: a.site_id.as_deref().map(at),
            domain: a.domain.as_deref().map(at),
            categories: a.categories.as_deref().map(at),
        }),
    })
}

/// Reads a CSV click log (with a header line) through `spec`, keeping at most
/// `rows_max` rows (capped at [`limits::ROWS_MAX`]). Bad rows are counted in
/// the report; only an I/O error, a missing header or a header that lacks a
/// named column fails the read.
pub fn read_click_log<R: Read>(
    reader: R,
    spec: &DatasetSpec,
    rows_max: usize,
) -> Result<(ClickLog, LoadReport)> {
    let rows_max = rows_max.min(limits::ROWS_MAX);
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(reader);
    let header = csv
        .headers()
        .map_err(|e| Error::BadInput(format!("click log header: {e}")))?
        .clone();
    let resolved = resolve(spec, &header)?;
    let mut log = ClickLog::default();
    let mut report = LoadReport::default();
    let mut record = csv::StringRecord::new();
    while log.len() < rows_max {
        let line = csv.position().line();
        match csv.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) if e.is_io_error() => {
                return Err(Error::BadInput(format!("reading the click log: {e}")))
            }
            Err(e) => {
                report.rows_read += 1;
                report.reject(line, "unreadable CSV", e.to_string());
                continue;
            }
        }
        report.rows_read += 1;
        match parse_row(&record, spec, &resolved) {
            Ok((ctx, label, offer, oracle)) => {
                log.contexts.push(ctx);
                log.labels.push(label);
                log.offers.push(offer);
                log.oracle.extend(oracle);
            }
            Err((kind, detail)) => report.reject(line, kind, detail),
        }
    }
    report.rows_kept = log.len();
    Ok((log, report))
}

/// A row's rejection: a reason kind (the report's key) and a detail.
type Rejection = (&'static str, String);

fn cell<'r>(
    record: &'r csv::StringRecord,
    i: usize,
    key: &str,
) -> std::result::Result<&'r str, Rejection> {
    record.get(i).map(str::trim).ok_or((
        "short row",
        format!(
            "the row has {} cells, `{key}` is column {}",
            record.len(),
            i + 1
        ),
    ))
}

fn parse_row(
    record: &csv::StringRecord,
    spec: &DatasetSpec,
    r: &Resolved,
) -> std::result::Result<(RequestContext, f32, u64, Option<f32>), Rejection> {
    let label = match cell(record, r.label, "label")? {
        "" => return Err(("label missing", "the label cell is empty".into())),
        "1" | "1.0" | "true" => 1.0,
        "0" | "0.0" | "false" => 0.0,
        other => return Err(("label not 0 or 1", format!("label `{other}` is not 0 or 1"))),
    };
    let offer = match r.offer {
        None => 0,
        Some(i) => parse_int::<u64>(cell(record, i, "offer")?, "offer")?,
    };
    let oracle = match r.oracle {
        None => None,
        Some(i) => {
            let v = cell(record, i, "oracle")?;
            match v.parse::<f32>() {
                Ok(p) if (0.0..=1.0).contains(&p) => Some(p),
                _ => return Err(("bad oracle", format!("oracle `{v}` is not a probability"))),
            }
        }
    };
    let mut ctx = RequestContext::default();
    if let Some((i, format)) = r.time {
        ctx.timestamp = parse_time(cell(record, i, "time")?, format)?;
    }
    fill_fields(record, spec, r, &mut ctx)?;
    Ok((ctx, label, offer, oracle))
}

fn fill_fields(
    record: &csv::StringRecord,
    spec: &DatasetSpec,
    r: &Resolved,
    ctx: &mut RequestContext,
) -> std::result::Result<(), Rejection> {
    let text = |key: &'static str| -> std::result::Result<Option<&str>, Rejection> {
        r.fields.get(key).map(|&i| cell(record, i, key)).transpose()
    };
    let list = |value: &str| -> Vec<String> {
        value
            .split(spec.list_separator.as_str())
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    };
    let int = |key: &'static str| -> std::result::Result<Option<i64>, Rejection> {
        match text(key)? {
            None | Some("") => Ok(None),
            Some(v) => parse_int::<i64>(v, key).map(Some),
        }
    };
    if let Some(v) = text("user_id")? {
        ctx.user_id = v.into();
    }
    if let Some(v) = text("user_segments")? {
        ctx.user_segments = list(v);
    }
    if let Some(v) = int("device_type")? {
        ctx.device_type = DeviceType::from_openrtb(v);
    }
    if let Some(v) = text("os")? {
        ctx.os = Os::parse(v);
    }
    if let Some(v) = int("connection_type")? {
        ctx.connection_type = ConnectionType::from_openrtb(v);
    }
    if let Some(v) = text("country")? {
        ctx.country = v.into();
    }
    if let Some(v) = text("region")? {
        ctx.region = v.into();
    }
    if let Some(v) = text("site_id")? {
        ctx.site_id = v.into();
    }
    if let Some(v) = text("domain")? {
        ctx.domain = v.into();
    }
    if let Some(v) = text("categories")? {
        ctx.categories = list(v);
    }
    if let Some(v) = int("placement_width")? {
        ctx.placement_width = pixels(v, "placement_width")?;
    }
    if let Some(v) = int("placement_height")? {
        ctx.placement_height = pixels(v, "placement_height")?;
    }
    if let Some(v) = int("ad_position")? {
        ctx.ad_position = AdPosition::from_openrtb(v);
    }
    if let Some(v) = text("bid_floor")? {
        if !v.is_empty() {
            ctx.bid_floor = v
                .parse()
                .map_err(|_| ("not a number", format!("bid_floor `{v}` is not a number")))?;
        }
    }
    if let Some(v) = text("is_app")? {
        ctx.is_app = matches!(v, "1" | "true");
    }
    for (name, i) in &r.hashed {
        let value = cell(record, *i, "hashed")?;
        if !value.is_empty() {
            ctx.extra.push(format!("{name}={value}"));
        }
    }
    for (slot, &i) in r.numeric.iter().enumerate() {
        let value = cell(record, i, "numeric")?;
        if !value.is_empty() {
            ctx.extra_numeric[slot] = value.parse().map_err(|_| {
                (
                    "not a number",
                    format!("numeric column value `{value}` is not a number"),
                )
            })?;
        }
    }
    if let Some(app) = &r.app {
        if cell(record, app.column, "app.column")? != app.absent {
            ctx.is_app = true;
            if let Some(i) = app.site_id {
                ctx.site_id = cell(record, i, "app.site_id")?.into();
            }
            if let Some(i) = app.domain {
                ctx.domain = cell(record, i, "app.domain")?.into();
            }
            if let Some(i) = app.categories {
                ctx.categories = list(cell(record, i, "app.categories")?);
            }
        }
    }
    Ok(())
}

/// A placement size in pixels: 0 (unknown) up to `u32::MAX`. Anything else
/// rejects the row, counted as `size out of range`, rather than being
/// clamped into a size the row never had.
fn pixels(value: i64, key: &str) -> std::result::Result<u32, Rejection> {
    u32::try_from(value).map_err(|_| {
        (
            "size out of range",
            format!("{key} {value} is not a size in pixels (0 to {})", u32::MAX),
        )
    })
}

fn parse_int<T: std::str::FromStr>(value: &str, key: &str) -> std::result::Result<T, Rejection> {
    value.parse().map_err(|_| {
        (
            "not an integer",
            format!("{key} `{value}` is not an integer in range"),
        )
    })
}

fn parse_time(value: &str, format: TimeFormat) -> std::result::Result<i64, Rejection> {
    let bad = || ("bad time", format!("time `{value}` is not {format:?}"));
    match format {
        TimeFormat::Unix => value.parse().map_err(|_| bad()),
        TimeFormat::Yymmddhh => {
            if value.len() != 8 || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            let n = |range: std::ops::Range<usize>| value[range].parse::<i64>().map_err(|_| bad());
            let (year, month, day, hour) = (2000 + n(0..2)?, n(2..4)?, n(4..6)?, n(6..8)?);
            if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 {
                return Err(bad());
            }
            Ok(days_from_civil(year, month, day) * 86_400 + hour * 3_600)
        }
    }
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"
name = "test"
label = "click"
offer = { column = "ad", top = 2 }
time = { column = "hour", format = "yymmddhh" }
[fields]
device_type = "dev"
placement_width = "w"
placement_height = "h"
site_id = "site"
categories = "cat"
[app]
column = "app"
absent = "-"
site_id = "app"
"#;

    fn read(csv: &str) -> (ClickLog, LoadReport) {
        read_click_log(csv.as_bytes(), &DatasetSpec::from_toml(SPEC).unwrap(), 100).unwrap()
    }

    #[test]
    fn reads_fields_labels_offers_and_time() {
        let (log, report) = read("click,ad,hour,dev,w,h,site,cat,app\n1,7,15031213,4,320,50,s1,IAB1|IAB2,-\n0,9,15031200,2,728,90,s2,,a9\n");
        assert_eq!(
            (report.rows_read, report.rows_kept, report.rows_rejected()),
            (2, 2, 0)
        );
        assert_eq!(log.labels, [1.0, 0.0]);
        assert_eq!(log.offers, [7, 9]);
        let first = &log.contexts[0];
        assert_eq!(first.device_type, DeviceType::from_openrtb(4));
        assert_eq!((first.placement_width, first.placement_height), (320, 50));
        assert_eq!(first.categories, ["IAB1", "IAB2"]);
        assert_eq!((first.site_id.as_str(), first.is_app), ("s1", false));
        // 2015-03-12 13:00 UTC.
        assert_eq!(first.timestamp, 1_426_165_200);
        let second = &log.contexts[1];
        assert_eq!(
            (second.site_id.as_str(), second.is_app),
            ("a9", true),
            "app traffic reads the app column"
        );
        assert!(second.categories.is_empty());
    }

    #[test]
    fn bad_rows_are_counted_by_reason_and_quoted_by_line() {
        let (log, report) = read("click,ad,hour,dev,w,h,site,cat,app\n,7,15031200,4,1,1,s,c,-\n2,7,15031200,4,1,1,s,c,-\n1,x,15031200,4,1,1,s,c,-\n1,7,15131200,4,1,1,s,c,-\n1,7,15031200,four,1,1,s,c,-\n1,7\n0,8,15031200,4,1,1,s,c,-\n");
        assert_eq!(report.rows_read, 7);
        assert_eq!(report.rows_kept, 1);
        assert_eq!(log.offers, [8]);
        assert_eq!(report.rejected["label missing"], 1);
        assert_eq!(report.rejected["label not 0 or 1"], 1);
        assert_eq!(
            report.rejected["not an integer"], 2,
            "offer `x` and device type `four`"
        );
        assert_eq!(report.rejected["bad time"], 1, "month 13");
        assert_eq!(report.rejected["short row"], 1);
        assert_eq!(report.examples[0], "line 2: the label cell is empty");
    }

    #[test]
    fn sizes_outside_u32_are_rejected_not_clamped() {
        let (log, report) = read("click,ad,hour,dev,w,h,site,cat,app\n1,7,15031200,4,-1,50,s,c,-\n1,7,15031200,4,320,4294967296,s,c,-\n0,8,15031200,4,4294967295,0,s,c,-\n");
        assert_eq!((report.rows_read, report.rows_kept), (3, 1));
        assert_eq!(report.rejected["size out of range"], 2);
        assert!(
            report.examples[0].contains("placement_width -1"),
            "{:?}",
            report.examples
        );
        assert!(
            report.examples[1].contains("placement_height 4294967296"),
            "{:?}",
            report.examples
        );
        assert_eq!(
            (
                log.contexts[0].placement_width,
                log.contexts[0].placement_height
            ),
            (u32::MAX, 0),
            "the bounds themselves are sizes"
        );
    }

    #[test]
    fn a_spec_naming_a_missing_column_is_refused_with_the_key() {
        let spec =
            DatasetSpec::from_toml("label = \"click\"\n[fields]\ndomain = \"site_domain\"\n")
                .unwrap();
        let err = read_click_log("click,x\n1,2\n".as_bytes(), &spec, 10).unwrap_err();
        assert!(
            err.to_string()
                .contains("fields.domain names column `site_domain`"),
            "{err}"
        );
    }

    #[test]
    fn a_spec_with_an_unknown_key_is_refused() {
        let err = DatasetSpec::from_toml("label = \"click\"\nlabell = \"x\"\n").unwrap_err();
        assert!(err.to_string().contains("labell"), "{err}");
        let err =
            DatasetSpec::from_toml("label = \"click\"\noffer = { column = \"a\", top = 0 }\n")
                .unwrap_err();
        assert!(err.to_string().contains("offer.top"), "{err}");
    }

    #[test]
    fn top_offers_and_keep_offers_map_rows_to_columns() {
        let (mut log, _) = read("click,ad,hour,dev,w,h,site,cat,app\n1,7,15031200,4,1,1,s,c,-\n0,9,15031200,4,1,1,s,c,-\n0,9,15031200,4,1,1,s,c,-\n1,3,15031200,4,1,1,s,c,-\n1,5,15031200,4,1,1,s,c,-\n");
        let top = log.top_offers(2);
        assert_eq!(
            top,
            [9, 3],
            "9 is most frequent; 3 wins the tie with 5 and 7"
        );
        let (columns, dropped) = log.keep_offers(&top);
        assert_eq!((columns, dropped), (vec![0, 0, 1], 2));
        assert_eq!(log.labels, [0.0, 0.0, 1.0]);
        assert_eq!(log.offers, [9, 9, 3]);
    }

    #[test]
    fn generic_hashed_and_numeric_columns_fill_the_extra_fields() {
        let spec = DatasetSpec::from_toml(
            "label = \"click\"\nhashed = [\"C1\", \"C14\"]\nnumeric = [\"C20\"]\n",
        )
        .unwrap();
        let (log, report) = read_click_log(
            "click,C1,C14,C20\n1,1005,15704,-1\n0,1002,,x\n".as_bytes(),
            &spec,
            10,
        )
        .unwrap();
        assert_eq!(log.contexts[0].extra, ["C1=1005", "C14=15704"]);
        assert_eq!(log.contexts[0].extra_numeric, [-1.0, 0.0, 0.0, 0.0]);
        assert_eq!(report.rejected["not a number"], 1, "C20 `x`");
        let err = DatasetSpec::from_toml(
            "label = \"c\"\nnumeric = [\"a\", \"b\", \"c\", \"d\", \"e\"]\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("numeric names 5 columns"), "{err}");
    }

    #[test]
    fn the_row_cap_is_honoured() {
        let spec = DatasetSpec::from_toml("label = \"click\"\n").unwrap();
        let (log, report) = read_click_log("click\n1\n0\n1\n".as_bytes(), &spec, 2).unwrap();
        assert_eq!((log.len(), report.rows_read), (2, 2));
    }

    #[test]
    fn days_from_civil_matches_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2014, 10, 21), 16_364);
    }
}
