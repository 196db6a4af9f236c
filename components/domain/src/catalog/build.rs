//! Building a [`Catalog`]: reading the TOML form, validating every offer and
//! laying the offers out column by column.

use std::io::Read;
use std::path::Path;

use super::showable::ShowColumns;
use super::spec::size_label;
use super::variants::{build_variants, Variant};
use super::{item_hash, limits, Catalog, Creative, Objectives, OfferSpec, Span};
use crate::error::{Error, Result};
use cx_features::DeviceType;

/// The top-level key of the offer array in the TOML form.
pub(crate) const OFFER_KEY: &str = "offer";

/// An [`Error::Catalog`].
fn catalog_error(where_: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::Catalog {
        where_: where_.into(),
        reason: reason.into(),
    }
}

/// How errors name an offer: by id when it has a usable one, else by position.
fn offer_label(index: usize, id: Option<u64>) -> String {
    match id {
        Some(id) if (1..=limits::ID_MAX).contains(&id) => format!("offer {id}"),
        _ => format!("offer[{index}]"),
    }
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

impl Catalog {
    /// Reads a catalog from its TOML form: `[[offer]]` tables, one per offer
    /// (see `docs/CATALOG.md`), validated like [`Self::from_offers`].
    ///
    /// Fails with [`Error::Catalog`] on text longer than
    /// [`limits::FILE_BYTES_MAX`], invalid TOML (naming the line), a
    /// top-level key other than `offer`, and any offer with an unknown,
    /// missing, mistyped or invalid field (naming the offer, by id when it
    /// has one, and the field).
    pub fn from_toml_str(text: &str) -> Result<Catalog> {
        if text.len() > limits::FILE_BYTES_MAX {
            return Err(catalog_error(
                "catalog",
                format!(
                    "the text is {} bytes, more than the limit of {} bytes",
                    text.len(),
                    limits::FILE_BYTES_MAX
                ),
            ));
        }
        let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let where_ = match e.span() {
                Some(span) => format!("TOML line {}", line_of(text, span.start)),
                None => "TOML".to_string(),
            };
            catalog_error(where_, e.message().trim_end())
        })?;
        if let Some(key) = table.keys().find(|k| *k != OFFER_KEY) {
            return Err(catalog_error(
                format!("key `{key}`"),
                format!("unknown top-level key; a catalog holds only `[[{OFFER_KEY}]]` tables"),
            ));
        }
        let offers = match table.remove(OFFER_KEY) {
            None => Vec::new(),
            Some(toml::Value::Array(offers)) => offers,
            Some(other) => {
                return Err(catalog_error(
                    format!("key `{OFFER_KEY}`"),
                    format!(
                        "is a {}, expected an array of tables (`[[{OFFER_KEY}]]`)",
                        other.type_str()
                    ),
                ))
            }
        };
        check_offer_count(offers.len())?;
        let specs = offers
            .into_iter()
            .enumerate()
            .map(|(index, value)| offer_from_toml(index, value))
            .collect::<Result<Vec<_>>>()?;
        Self::from_offers(specs)
    }

    /// Reads a catalog file (UTF-8 TOML, at most [`limits::FILE_BYTES_MAX`]
    /// bytes; a longer file is refused without reading it all) with
    /// [`Self::from_toml_str`]. Errors name the path.
    pub fn from_path(path: &Path) -> Result<Catalog> {
        let shown = path.display().to_string();
        let io_error = |source| Error::Io {
            path: shown.clone(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io_error)?;
        let mut bytes = Vec::new();
        file.take(limits::FILE_BYTES_MAX as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(io_error)?;
        if bytes.len() > limits::FILE_BYTES_MAX {
            return Err(catalog_error(
                shown,
                format!(
                    "the file is more than the limit of {} bytes",
                    limits::FILE_BYTES_MAX
                ),
            ));
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            catalog_error(
                shown.clone(),
                format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
            )
        })?;
        Self::from_toml_str(&text).map_err(|e| match e {
            Error::Catalog { where_, reason } => Error::Catalog {
                where_: format!("{shown}: {where_}"),
                reason,
            },
            other => other,
        })
    }

    /// Builds a catalog from offers made in code, with the same validation
    /// as a file: 1 to [`limits::OFFERS_MAX`] offers, unique non-zero ids,
    /// every number finite and in its range, every list and string within
    /// its limit, no duplicates within a list. Errors are
    /// [`Error::Catalog`] naming the offer and the field.
    pub fn from_offers(offers: Vec<OfferSpec>) -> Result<Catalog> {
        check_offer_count(offers.len())?;
        let mut builder = Builder::with_capacity(offers.len());
        for (index, offer) in offers.iter().enumerate() {
            let (creative, variants) = validate(index, offer)?;
            builder.push(offer, creative, variants);
        }
        builder.finish(&offers)
    }
}

/// Refuses an empty catalog and one with too many offers.
fn check_offer_count(count: usize) -> Result<()> {
    if count == 0 {
        return Err(catalog_error(
            "catalog",
            format!("holds no offers; it needs at least one `[[{OFFER_KEY}]]`"),
        ));
    }
    if count > limits::OFFERS_MAX {
        return Err(catalog_error(
            "catalog",
            format!(
                "holds {count} offers, more than the limit of {}",
                limits::OFFERS_MAX
            ),
        ));
    }
    Ok(())
}

/// Deserialises one `[[offer]]` table, naming the field at fault.
fn offer_from_toml(index: usize, value: toml::Value) -> Result<OfferSpec> {
    let toml::Value::Table(table) = value else {
        return Err(catalog_error(
            format!("offer[{index}]"),
            format!("is a {}, expected a table", value.type_str()),
        ));
    };
    let id = match table.get("id") {
        Some(toml::Value::Integer(n)) => u64::try_from(*n).ok(),
        _ => None,
    };
    let label = offer_label(index, id);
    if let Some(key) = table
        .keys()
        .find(|k| !OfferSpec::FIELDS.contains(&k.as_str()))
    {
        return Err(catalog_error(
            format!("{label} field {key}"),
            format!(
                "unknown field; expected one of {}",
                OfferSpec::FIELDS.join(", ")
            ),
        ));
    }
    if let Some(field) = OfferSpec::REQUIRED_FIELDS
        .iter()
        .find(|f| !table.contains_key(**f))
    {
        return Err(catalog_error(
            format!("{label} field {field}"),
            "is missing; it is required",
        ));
    }
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        catalog_error(
            format!("{label} field {path}"),
            inner.message().trim_end().to_string(),
        )
    })
}

/// Checks one offer against every rule, naming the first field that breaks
/// one; returns its creative, built (templates parsed), if it has one, and
/// its listed variants, built over it.
fn validate(index: usize, offer: &OfferSpec) -> Result<(Option<Creative>, Vec<Variant>)> {
    let label = offer_label(index, Some(offer.id));
    let fail =
        |field: &str, reason: String| catalog_error(format!("{label} field {field}"), reason);

    if offer.id == 0 || offer.id > limits::ID_MAX {
        return Err(fail(
            "id",
            format!("is {}, expected 1..={}", offer.id, limits::ID_MAX),
        ));
    }
    check_text("name", &offer.name, limits::NAME_BYTES_MAX).map_err(|r| fail("name", r))?;

    let unit = (0.0, 1.0);
    let value = (0.0, limits::VALUE_MAX);
    for (field, v, (lo, hi)) in [
        ("conversion_rate", offer.conversion_rate, unit),
        ("revenue", offer.revenue, value),
        ("lifetime_value", offer.lifetime_value, value),
        ("engagement", offer.engagement, unit),
        ("retention", offer.retention, unit),
        (
            "boost",
            offer.boost,
            (-limits::BOOST_MAX, limits::BOOST_MAX),
        ),
    ] {
        if !(v.is_finite() && (lo..=hi).contains(&v)) {
            return Err(fail(
                field,
                format!("is {v}, expected a number in [{lo}, {hi}]"),
            ));
        }
    }
    let bid = offer.max_bid_cpm;
    if !(bid.is_finite() && bid > 0.0 && bid <= limits::BID_CPM_MAX) {
        return Err(fail(
            "max_bid_cpm",
            format!(
                "is {bid}, expected a number in (0, {}]",
                limits::BID_CPM_MAX
            ),
        ));
    }

    check_list("device_types", &offer.device_types, &fail, |d| {
        if *d == DeviceType::Unknown {
            Err("`unknown` cannot be targeted; leave the list empty for any device".into())
        } else {
            Ok(())
        }
    })?;
    check_list("countries", &offer.countries, &fail, |c| {
        if c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(())
        } else {
            Err(format!(
                "{c:?} is not an ISO 3166-1 alpha-3 code (three upper-case letters, e.g. \"USA\")"
            ))
        }
    })?;
    check_list("sizes", &offer.sizes, &fail, |&(w, h)| {
        let px = 1..=limits::PLACEMENT_PX_MAX;
        if px.contains(&w) && px.contains(&h) {
            Ok(())
        } else {
            Err(format!(
                "{} is out of range; each side must be 1..={} pixels",
                size_label((w, h)),
                limits::PLACEMENT_PX_MAX
            ))
        }
    })?;
    check_list("segments", &offer.segments, &fail, |s| {
        check_text("segment", s, limits::SEGMENT_BYTES_MAX)
    })?;
    check_list("categories", &offer.categories, &fail, |c| {
        check_text("category", c, limits::CATEGORY_BYTES_MAX)?;
        let charset = c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if charset && !c.starts_with('-') && !c.ends_with('-') && !c.contains("--") {
            Ok(())
        } else {
            Err(format!(
                "{c:?} is not a category code (ASCII letters and digits in `-`-separated parts, e.g. \"IAB1-2\")"
            ))
        }
    })?;
    if let Some(cap) = offer.frequency_cap {
        if !(1..=limits::FREQUENCY_IMPRESSIONS_MAX).contains(&cap.impressions) {
            return Err(fail(
                "frequency_cap.impressions",
                format!(
                    "is {}, expected 1..={}",
                    cap.impressions,
                    limits::FREQUENCY_IMPRESSIONS_MAX
                ),
            ));
        }
        if !(1..=limits::FREQUENCY_WINDOW_S_MAX).contains(&cap.window_s) {
            return Err(fail(
                "frequency_cap.window_s",
                format!(
                    "is {}, expected 1..={} seconds",
                    cap.window_s,
                    limits::FREQUENCY_WINDOW_S_MAX
                ),
            ));
        }
    }
    if let Some(budget) = offer.daily_budget {
        if !(budget.is_finite() && budget > 0.0 && budget <= limits::DAILY_BUDGET_MAX) {
            return Err(fail(
                "daily_budget",
                format!(
                    "is {budget}, expected a number in (0, {}]",
                    limits::DAILY_BUDGET_MAX
                ),
            ));
        }
    }
    check_list("adomain", &offer.adomain, &fail, |d| {
        check_text("domain", d, limits::DOMAIN_BYTES_MAX)?;
        let charset = d
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if charset && !d.starts_with('.') && !d.ends_with('.') {
            Ok(())
        } else {
            Err(format!(
                "{d:?} is not a domain name (ASCII letters, digits, `-` and `.`)"
            ))
        }
    })?;
    check_text(
        "creative id",
        &offer.creative_id,
        limits::CREATIVE_ID_BYTES_MAX,
    )
    .map_err(|r| fail("creative_id", r))?;
    check_list("attr", &offer.attr, &fail, |&a| {
        if (1..=limits::ATTR_MAX).contains(&a) {
            Ok(())
        } else {
            Err(format!(
                "{a} is not a creative attribute; expected 1..={} (AdCOM 1.0 list \"Creative Attributes\")",
                limits::ATTR_MAX
            ))
        }
    })?;
    let creative = offer
        .creative
        .clone()
        .map(Creative::build)
        .transpose()
        .map_err(|(field, reason)| fail(&format!("creative.{field}"), reason))?;
    let variants = build_variants(
        &offer.creative_id,
        creative.as_ref(),
        &offer.variants,
        |id| check_text("creative id", id, limits::CREATIVE_ID_BYTES_MAX),
    )
    .map_err(|(field, reason)| fail(&field, reason))?;
    Ok((creative, variants))
}

/// A non-empty string of at most `max` bytes without control characters.
fn check_text(what: &str, text: &str, max: usize) -> std::result::Result<(), String> {
    if text.is_empty() {
        Err(format!("the {what} is empty"))
    } else if text.len() > max {
        Err(format!(
            "the {what} is {} bytes, more than the limit of {max}",
            text.len()
        ))
    } else if text.chars().any(char::is_control) {
        Err(format!("the {what} {text:?} holds a control character"))
    } else {
        Ok(())
    }
}

/// Checks a list's length, each item, and that no item repeats; errors name
/// `field[k]` for an item.
fn check_list<T: PartialEq + std::fmt::Debug>(
    field: &str,
    items: &[T],
    fail: &dyn Fn(&str, String) -> Error,
    check: impl Fn(&T) -> std::result::Result<(), String>,
) -> Result<()> {
    if items.len() > limits::LIST_ITEMS_MAX {
        return Err(fail(
            field,
            format!(
                "holds {} items, more than the limit of {}",
                items.len(),
                limits::LIST_ITEMS_MAX
            ),
        ));
    }
    for (k, item) in items.iter().enumerate() {
        let at = format!("{field}[{k}]");
        check(item).map_err(|reason| fail(&at, reason))?;
        if let Some(first) = items[..k].iter().position(|x| x == item) {
            return Err(fail(&at, format!("{item:?} repeats {field}[{first}]")));
        }
    }
    Ok(())
}

/// Accumulates validated offers into the catalog's columns.
struct Builder {
    catalog: Catalog,
}

/// The span of the items pushed to a flat vector since it was `start` long.
fn span_since(start: usize, end: usize) -> Span {
    // Bounded by OFFERS_MAX x LIST_ITEMS_MAX, far below u32::MAX.
    Span {
        start: start as u32,
        end: end as u32,
    }
}

impl Builder {
    fn with_capacity(n: usize) -> Self {
        Self {
            catalog: Catalog {
                ids: Vec::with_capacity(n),
                by_id: Vec::with_capacity(n),
                objectives: Objectives {
                    conversion_rate: Vec::with_capacity(n),
                    revenue: Vec::with_capacity(n),
                    lifetime_value: Vec::with_capacity(n),
                    engagement: Vec::with_capacity(n),
                    retention: Vec::with_capacity(n),
                },
                max_bid_cpm: Vec::with_capacity(n),
                boost: Vec::with_capacity(n),
                device_mask: Vec::with_capacity(n),
                channel_mask: Vec::with_capacity(n),
                country_span: Vec::with_capacity(n),
                countries: Vec::new(),
                size_span: Vec::with_capacity(n),
                sizes: Vec::new(),
                segment_span: Vec::with_capacity(n),
                segment_hashes: Vec::new(),
                segments: Vec::new(),
                category_span: Vec::with_capacity(n),
                categories: Vec::new(),
                category_hashes: Vec::new(),
                frequency_cap: Vec::with_capacity(n),
                daily_budget: Vec::with_capacity(n),
                names: Vec::with_capacity(n),
                creative_ids: Vec::with_capacity(n),
                adomain_span: Vec::with_capacity(n),
                adomains: Vec::new(),
                attr_span: Vec::with_capacity(n),
                attrs: Vec::new(),
                show: ShowColumns::with_capacity(n),
                creatives: Vec::with_capacity(n),
                variants: Vec::with_capacity(n),
            },
        }
    }

    /// Appends one offer, already validated, with its built creative.
    fn push(&mut self, offer: &OfferSpec, creative: Option<Creative>, variants: Vec<Variant>) {
        let c = &mut self.catalog;
        c.ids.push(offer.id);
        c.objectives.conversion_rate.push(offer.conversion_rate);
        c.objectives.revenue.push(offer.revenue);
        c.objectives.lifetime_value.push(offer.lifetime_value);
        c.objectives.engagement.push(offer.engagement);
        c.objectives.retention.push(offer.retention);
        c.max_bid_cpm.push(offer.max_bid_cpm);
        c.boost.push(offer.boost);

        let device_mask = if offer.device_types.is_empty() {
            u8::MAX
        } else {
            offer
                .device_types
                .iter()
                .fold(0u8, |mask, d| mask | (1u8 << d.slot()))
        };
        c.device_mask.push(device_mask);
        c.channel_mask.push(offer.channels.mask());

        let start = c.countries.len();
        c.countries.extend(offer.countries.iter().map(|code| {
            let b = code.as_bytes();
            [b[0], b[1], b[2]]
        }));
        c.country_span.push(span_since(start, c.countries.len()));

        let start = c.sizes.len();
        c.sizes.extend_from_slice(&offer.sizes);
        c.size_span.push(span_since(start, c.sizes.len()));

        let start = c.segments.len();
        for segment in &offer.segments {
            c.segment_hashes.push(item_hash(segment));
            c.segments.push(segment.as_str().into());
        }
        c.segment_span.push(span_since(start, c.segments.len()));

        let start = c.categories.len();
        for category in &offer.categories {
            c.category_hashes.push(item_hash(category));
            c.categories.push(category.as_str().into());
        }
        c.category_span.push(span_since(start, c.categories.len()));

        c.frequency_cap.push(offer.frequency_cap);
        c.daily_budget.push(offer.daily_budget);
        c.names.push(offer.name.clone());
        c.creative_ids.push(offer.creative_id.clone());

        let start = c.adomains.len();
        c.adomains.extend(offer.adomain.iter().cloned());
        c.adomain_span.push(span_since(start, c.adomains.len()));

        let start = c.attrs.len();
        c.attrs.extend_from_slice(&offer.attr);
        c.attr_span.push(span_since(start, c.attrs.len()));
        c.show.push(offer, creative.as_ref());
        c.creatives.push(creative.map(Box::new));
        c.variants.push(variants.into_boxed_slice());
    }

    /// Builds the id index, refusing a repeated id.
    fn finish(mut self, offers: &[OfferSpec]) -> Result<Catalog> {
        let c = &mut self.catalog;
        c.by_id = c
            .ids
            .iter()
            .enumerate()
            .map(|(i, &id)| (id, i as u32))
            .collect();
        c.by_id.sort_unstable();
        if let Some(pair) = c.by_id.windows(2).find(|w| w[0].0 == w[1].0) {
            let (first, second) = (pair[0].1 as usize, pair[1].1 as usize);
            return Err(catalog_error(
                format!("{} field id", offer_label(second, Some(offers[second].id))),
                format!("repeats the id of offer[{first}]; ids must be unique"),
            ));
        }
        Ok(self.catalog)
    }
}
