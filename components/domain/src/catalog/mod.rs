//! The offer catalog: the offers the engine may choose from, their business
//! values, their hard targeting and the fields a bid response needs.
//!
//! This module owns the catalog's TOML form (an array of `[[offer]]`
//! tables, one [`OfferSpec`] each), its validation, and the in-memory
//! [`Catalog`] the decide step reads. `docs/CATALOG.md` documents every
//! field, its unit and its range; `models/catalog.toml` is the bundled
//! default catalog for the bundled model's offers 1000-1015.
//!
//! Data layout: the file is an array of offers (one table per offer, easy to
//! write and review), but [`Catalog`] stores them as a structure of arrays,
//! one column per field. Per request the decide step loops over every offer
//! and reads a handful of fields from each (an eligibility mask, five
//! objective values, the bid cap, the boost); with one contiguous column per
//! field that loop walks a few dense arrays, which the caches and the
//! vectoriser like, instead of striding through ~300-byte offer records
//! whose names, domains and creative ids it never reads. Targeting lists are
//! packed too: the device types as a bitmask per offer, the channels as a
//! 2-bit mask, and the countries (`[u8; 3]`), sizes and segment hashes of all
//! offers in one flat vector each, with a per-offer range. The price is that
//! one offer is no longer a single value: reading it whole
//! ([`Catalog::offer_spec`]) gathers it from every column, and building a
//! catalog goes through [`Catalog::from_offers`], which validates every
//! offer first. Once built a catalog is immutable; a new catalog replaces it.
//!
//! The hot-path methods ([`Catalog::check_eligibility`],
//! [`Catalog::segment_match`], [`Catalog::category_match`] and the column
//! accessors) allocate nothing.
//!
//! ```
//! use cx_domain::catalog::{Catalog, Ineligible};
//! use cx_features::{DeviceType, RequestContext};
//!
//! let catalog = Catalog::from_toml_str(r#"
//!     [[offer]]
//!     id = 7
//!     name = "Spring sale"
//!     conversion_rate = 0.04
//!     revenue = 25.0
//!     max_bid_cpm = 3.5
//!     device_types = ["phone", 5]
//!     categories = ["IAB22"]
//!     creative_id = "spring-300x250"
//! "#)?;
//! let mut ctx = RequestContext {
//!     device_type: DeviceType::Phone,
//!     categories: vec!["IAB22-4".into()],
//!     ..RequestContext::default()
//! };
//! let i = catalog.index_of(7).unwrap();
//! assert_eq!(catalog.check_eligibility(i, &ctx), Ok(()));
//! assert!(catalog.category_match(i, &ctx));
//! ctx.device_type = DeviceType::PersonalComputer;
//! assert_eq!(catalog.check_eligibility(i, &ctx), Err(Ineligible::DeviceType));
//! # Ok::<(), cx_domain::Error>(())
//! ```

mod build;
pub mod creative;
mod key_set;
mod page_keys;
pub mod showable;
mod spec;
pub mod template;
pub mod variants;
mod write;

use std::fmt;
use std::ops::Range;

use cx_features::RequestContext;

pub use creative::{Creative, CreativeSpec};
pub use key_set::KeySet;
pub use page_keys::{PageCategoryKeys, PAGE_CATEGORY_KEYS_MAX};
pub use showable::{ImpRules, NativeFit, Unshowable, VideoFit};
pub use spec::{Channels, FrequencyCap, OfferSpec};
pub use variants::{Variant, VariantSpec, VARIANTS_MAX};

/// Documented limits of a catalog. Every one is checked when a catalog is
/// built, so a loaded catalog never exceeds them.
pub mod limits {
    /// Most offers in one catalog.
    pub const OFFERS_MAX: usize = 1024;
    /// Most items in any one list of one offer (device types, countries,
    /// sizes, segments, categories, advertiser domains).
    pub const LIST_ITEMS_MAX: usize = 64;
    /// Highest offer id: the largest TOML integer, so that every id can be
    /// written back.
    pub const ID_MAX: u64 = i64::MAX as u64;
    /// Longest offer name, in bytes.
    pub const NAME_BYTES_MAX: usize = 128;
    /// Longest creative id, in bytes.
    pub const CREATIVE_ID_BYTES_MAX: usize = 128;
    /// Highest creative attribute code (AdCOM 1.0 list "Creative
    /// Attributes", 1 to 17).
    pub const ATTR_MAX: u32 = 17;
    /// Longest segment, in bytes (the feature schema's
    /// [`VALUE_BYTES_MAX`](cx_features::limits::VALUE_BYTES_MAX)).
    pub const SEGMENT_BYTES_MAX: usize = cx_features::limits::VALUE_BYTES_MAX;
    /// Longest category code, in bytes.
    pub const CATEGORY_BYTES_MAX: usize = 64;
    /// Longest advertiser domain, in bytes (the DNS limit).
    pub const DOMAIN_BYTES_MAX: usize = 253;
    /// Largest placement side, in pixels (the feature schema's
    /// [`PLACEMENT_PX_MAX`](cx_features::limits::PLACEMENT_PX_MAX)).
    pub const PLACEMENT_PX_MAX: u32 = cx_features::limits::PLACEMENT_PX_MAX;
    /// Largest `revenue` and `lifetime_value`, in currency units per conversion.
    pub const VALUE_MAX: f32 = 1e7;
    /// Largest `max_bid_cpm`, in currency units (the feature schema's
    /// [`FLOOR_MAX`](cx_features::limits::FLOOR_MAX): no floor above it is told apart).
    pub const BID_CPM_MAX: f32 = 1000.0;
    /// Largest magnitude of `boost`.
    pub const BOOST_MAX: f32 = 1.0;
    /// Most impressions a frequency cap may allow per window.
    pub const FREQUENCY_IMPRESSIONS_MAX: u32 = 10_000;
    /// Longest frequency-cap window, in seconds (31 days).
    pub const FREQUENCY_WINDOW_S_MAX: u32 = 31 * 86_400;
    /// Largest daily budget, in currency units.
    pub const DAILY_BUDGET_MAX: f64 = 1e9;
    /// Largest catalog text or file accepted, in bytes.
    pub const FILE_BYTES_MAX: usize = 4 << 20;
    /// Request segments, and separately request categories, read per
    /// match (the feature schema's
    /// [`LIST_ITEMS_MAX`](cx_features::limits::LIST_ITEMS_MAX)); later ones are ignored.
    pub const CONTEXT_ITEMS_MAX: usize = cx_features::limits::LIST_ITEMS_MAX;
}

/// The hash of a segment as the catalog stores it: xxh3-64 of its UTF-8
/// bytes, seed 0. Callers of [`Catalog::segment_match_hashes`] hash a
/// request's segments with this, once per request.
pub fn item_hash(item: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(item.as_bytes())
}

/// Whether an offer's category covers a page category: equal, or the page
/// category continues the offer's at a `-` boundary. `IAB1` covers `IAB1`
/// and `IAB1-2` but not `IAB11`; `IAB1-2` covers `IAB1-2` but not `IAB1`.
pub fn category_covers(offer_category: &str, page_category: &str) -> bool {
    let (offer, page) = (offer_category.as_bytes(), page_category.as_bytes());
    !offer.is_empty()
        && page.len() >= offer.len()
        && &page[..offer.len()] == offer
        && (page.len() == offer.len() || page[offer.len()] == b'-')
}

/// Why an offer cannot serve a request. The hard filters are checked in
/// this order, and the first one that fails is reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ineligible {
    /// The request's device type is not among the offer's.
    DeviceType,
    /// The request's country is not among the offer's (or is unknown).
    Country,
    /// The placement size is not among the offer's (or is unknown).
    PlacementSize,
    /// The request's channel (site or app) is not the offer's.
    Channel,
}

impl Ineligible {
    /// Every reason, in the order they are checked.
    pub const ALL: [Ineligible; 4] = [
        Self::DeviceType,
        Self::Country,
        Self::PlacementSize,
        Self::Channel,
    ];

    /// A short snake_case label for logs and metrics: `device_type`,
    /// `country`, `placement_size`, `channel`.
    pub fn label(self) -> &'static str {
        match self {
            Self::DeviceType => "device_type",
            Self::Country => "country",
            Self::PlacementSize => "placement_size",
            Self::Channel => "channel",
        }
    }
}

impl fmt::Display for Ineligible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl std::error::Error for Ineligible {}

/// The per-offer objective values, one column each, indexed like
/// [`Catalog::ids`]. Units and ranges are those of the [`OfferSpec`] fields
/// of the same names.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Objectives {
    /// `P(conversion | click)`, in `[0, 1]`.
    pub conversion_rate: Vec<f32>,
    /// Currency units per conversion, `>= 0`.
    pub revenue: Vec<f32>,
    /// Extra customer value per conversion, currency units, `>= 0`.
    pub lifetime_value: Vec<f32>,
    /// Normalised engagement uplift per click, in `[0, 1]`.
    pub engagement: Vec<f32>,
    /// Normalised retention uplift per click, in `[0, 1]`.
    pub retention: Vec<f32>,
}

/// The fields of one offer a bid response needs, borrowed from the catalog.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OfferView<'a> {
    /// The offer id.
    pub id: u64,
    /// Its name.
    pub name: &'a str,
    /// Its creative id (OpenRTB `bid.crid`).
    pub creative_id: &'a str,
    /// Its advertiser domains (OpenRTB `bid.adomain`).
    pub adomain: &'a [String],
    /// The most the engine bids for it, CPM in currency units.
    pub max_bid_cpm: f32,
}

/// A half-open range `start..end` into one of the catalog's flat vectors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    fn range(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// A validated, immutable offer catalog, stored as a structure of arrays.
///
/// Offer `i` (for `i in 0..len()`) is the `i`-th offer of the file or vector
/// it was built from; every column and every per-offer accessor is indexed
/// by it. The hot columns ([`Self::ids`], [`Self::objectives`],
/// [`Self::max_bid_cpm`], [`Self::boost`], the eligibility masks and flat
/// targeting lists) are contiguous so that the decide step's loop over all
/// offers reads dense memory; the cold fields (names, creative ids, domains)
/// sit in their own columns and are read only for the winning offer. See
/// the module docs for the trade-off.
///
/// Per-offer accessors panic if `i >= len()`, like slice indexing.
#[derive(bevy_ecs::prelude::Resource, Clone, Debug, PartialEq)]
pub struct Catalog {
    ids: Vec<u64>,
    /// `(id, index)` sorted by id, for [`Self::index_of`].
    by_id: Vec<(u64, u32)>,
    objectives: Objectives,
    max_bid_cpm: Vec<f32>,
    boost: Vec<f32>,
    /// Bit `slot` is set for each allowed [`DeviceType`](cx_features::DeviceType) slot;
    /// `0xFF` when the offer lists none.
    device_mask: Vec<u8>,
    /// [`Channels::mask`].
    channel_mask: Vec<u8>,
    country_span: Vec<Span>,
    countries: Vec<[u8; 3]>,
    size_span: Vec<Span>,
    sizes: Vec<(u32, u32)>,
    segment_span: Vec<Span>,
    segment_hashes: Vec<u64>,
    segments: Vec<Box<str>>,
    category_span: Vec<Span>,
    categories: Vec<Box<str>>,
    /// [`item_hash`] of each of `categories`.
    category_hashes: Vec<u64>,
    frequency_cap: Vec<Option<FrequencyCap>>,
    daily_budget: Vec<Option<f64>>,
    names: Vec<String>,
    creative_ids: Vec<String>,
    adomain_span: Vec<Span>,
    adomains: Vec<String>,
    attr_span: Vec<Span>,
    attrs: Vec<u32>,
    /// What [`Self::check_showable`] reads (kinds, video file, native
    /// assets, attribute mask, category keys), precomputed per offer.
    show: showable::ShowColumns,
    /// Cold: read only for the offer a bid goes out with.
    creatives: Vec<Option<Box<Creative>>>,
    /// Per offer, its listed creative variants (variant `k + 1`); empty
    /// for most offers.
    variants: Vec<Box<[Variant]>>,
}

impl Catalog {
    /// Number of offers (at least 1).
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Always false: a catalog holds at least one offer. Present for the
    /// usual `len`/`is_empty` pair.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The offer ids, in catalog order.
    pub fn ids(&self) -> &[u64] {
        &self.ids
    }

    /// The index of the offer with id `offer_id`, if the catalog has it
    /// (a binary search; allocates nothing).
    pub fn index_of(&self, offer_id: u64) -> Option<usize> {
        self.by_id
            .binary_search_by_key(&offer_id, |&(id, _)| id)
            .ok()
            .map(|k| self.by_id[k].1 as usize)
    }

    /// The objective values, one column per objective.
    pub fn objectives(&self) -> &Objectives {
        &self.objectives
    }

    /// The most the engine ever bids per offer: CPM in currency units, `> 0`.
    pub fn max_bid_cpm(&self) -> &[f32] {
        &self.max_bid_cpm
    }

    /// The business priority per offer, added to the blended score, in `[-1, 1]`.
    pub fn boost(&self) -> &[f32] {
        &self.boost
    }

    /// Offer `i`'s frequency cap, if it has one.
    pub fn frequency_cap(&self, i: usize) -> Option<FrequencyCap> {
        self.frequency_cap[i]
    }

    /// Offer `i`'s budget per UTC day in currency units, if it has one.
    pub fn daily_budget(&self, i: usize) -> Option<f64> {
        self.daily_budget[i]
    }

    /// Every offer's daily budget, by index (`None`: unlimited), as the
    /// budget stores take them.
    pub fn daily_budgets(&self) -> &[Option<f64>] {
        &self.daily_budget
    }

    /// Offer `i`'s name.
    pub fn name(&self, i: usize) -> &str {
        &self.names[i]
    }

    /// Offer `i`'s creative id (OpenRTB `bid.crid`).
    pub fn creative_id(&self, i: usize) -> &str {
        &self.creative_ids[i]
    }

    /// Offer `i`'s advertiser domains (OpenRTB `bid.adomain`); may be empty.
    pub fn adomain(&self, i: usize) -> &[String] {
        &self.adomains[self.adomain_span[i].range()]
    }

    /// Offer `i`'s placement sizes `(width, height)`; empty means any.
    pub fn sizes(&self, i: usize) -> &[(u32, u32)] {
        &self.sizes[self.size_span[i].range()]
    }

    /// Offer `i`'s IAB content categories (OpenRTB `bid.cat`); may be empty.
    pub fn categories(&self, i: usize) -> &[Box<str>] {
        &self.categories[self.category_span[i].range()]
    }

    /// Offer `i`'s creative attributes (OpenRTB `bid.attr`); may be empty.
    pub fn attr(&self, i: usize) -> &[u32] {
        &self.attrs[self.attr_span[i].range()]
    }

    /// Offer `i`'s creative (assets and markup templates), if it has one.
    pub fn creative(&self, i: usize) -> Option<&Creative> {
        self.creatives[i].as_deref()
    }

    /// How many creative variants offer `i` has, its own creative included
    /// (1 for an offer without listed variants).
    pub fn variant_count(&self, i: usize) -> usize {
        1 + self.variants.get(i).map_or(0, |v| v.len())
    }

    /// Offer `i`'s creative variant `v`: its creative id and creative
    /// (variant 0 is the offer's own); `None` past its variants.
    pub fn variant(&self, i: usize, v: usize) -> Option<(&str, Option<&Creative>)> {
        match v {
            0 => Some((self.creative_id(i), self.creative(i))),
            _ => self
                .variants
                .get(i)?
                .get(v - 1)
                .map(|x| (x.spec.creative_id.as_str(), Some(&x.creative))),
        }
    }

    /// Offer `i`'s listed variants, as built.
    pub fn listed_variants(&self, i: usize) -> &[Variant] {
        self.variants.get(i).map_or(&[], |v| v)
    }

    /// The fields of offer `i` a bid response needs.
    pub fn offer(&self, i: usize) -> OfferView<'_> {
        OfferView {
            id: self.ids[i],
            name: self.name(i),
            creative_id: self.creative_id(i),
            adomain: self.adomain(i),
            max_bid_cpm: self.max_bid_cpm[i],
        }
    }

    /// Whether offer `i` may serve `ctx`, checking device type, country,
    /// placement size and channel in that order and reporting the first
    /// that fails. An offer with an empty list for a filter passes it. A
    /// country matches ignoring ASCII case; an unknown country, device type
    /// or size (`""`, `Unknown`, `0x0`) fails any non-empty list.
    /// Allocates nothing.
    pub fn check_eligibility(&self, i: usize, ctx: &RequestContext) -> Result<(), Ineligible> {
        let device_bit = 1u8 << ctx.device_type.slot();
        if self.device_mask[i] & device_bit == 0 {
            return Err(Ineligible::DeviceType);
        }
        let countries = &self.countries[self.country_span[i].range()];
        if !countries.is_empty() && !country_listed(countries, &ctx.country) {
            return Err(Ineligible::Country);
        }
        let sizes = &self.sizes[self.size_span[i].range()];
        let size = (ctx.placement_width, ctx.placement_height);
        if !sizes.is_empty() && !sizes.contains(&size) {
            return Err(Ineligible::PlacementSize);
        }
        let channel = if ctx.is_app {
            Channels::APP_BIT
        } else {
            Channels::SITE_BIT
        };
        if self.channel_mask[i] & channel == 0 {
            return Err(Ineligible::Channel);
        }
        Ok(())
    }

    /// Whether offer `i` lists any segments.
    pub fn targets_segments(&self, i: usize) -> bool {
        !self.segment_span[i].range().is_empty()
    }

    /// Whether offer `i` lists any categories.
    pub fn targets_categories(&self, i: usize) -> bool {
        !self.category_span[i].range().is_empty()
    }

    /// Whether the user has one of the segments offer `i` targets (exact
    /// string equality; false when the offer lists none). Each of the first
    /// [`limits::CONTEXT_ITEMS_MAX`] request segments is hashed with
    /// [`item_hash`] and compared with the offer's precomputed hashes; a hash
    /// hit is confirmed by comparing the strings, so a collision never
    /// matches. Allocates nothing.
    ///
    /// This hashes the request's segments once per offer; a loop over many
    /// offers should hash them once and call [`Self::segment_match_hashes`].
    pub fn segment_match(&self, i: usize, ctx: &RequestContext) -> bool {
        let span = self.segment_span[i].range();
        if span.is_empty() {
            return false;
        }
        let hashes = &self.segment_hashes[span.clone()];
        let texts = &self.segments[span];
        ctx.user_segments
            .iter()
            .take(limits::CONTEXT_ITEMS_MAX)
            .filter(|s| s.len() <= limits::SEGMENT_BYTES_MAX)
            .any(|s| {
                let h = item_hash(s);
                hashes
                    .iter()
                    .zip(texts)
                    .any(|(&offer_hash, text)| offer_hash == h && **text == **s)
            })
    }

    /// Like [`Self::segment_match`], from the request's segments already
    /// hashed with [`item_hash`] (the caller bounds their number). Only the
    /// hashes are compared: two different segments with the same 64-bit
    /// xxh3 hash would match, a chance of about `n·m / 2^64` for `n`
    /// request and `m` offer segments, accepted for the speed of a
    /// loop over many offers. Allocates nothing.
    pub fn segment_match_hashes(&self, i: usize, segment_hashes: &[u64]) -> bool {
        let hashes = &self.segment_hashes[self.segment_span[i].range()];
        !hashes.is_empty() && segment_hashes.iter().any(|h| hashes.contains(h))
    }

    /// [`Self::category_match`] from the request's keys, taken once for
    /// many offers: offer `i`'s category hashes are looked up among the
    /// keys, and a hit is confirmed by comparing the strings, so the answer
    /// is always the same. Allocates nothing.
    pub fn category_match_keys(&self, i: usize, keys: &PageCategoryKeys<'_>) -> bool {
        if keys.overflowed {
            return self.category_match(i, keys.ctx);
        }
        let span = self.category_span[i].range();
        let keys_hit = self.category_hashes[span]
            .iter()
            .any(|h| keys.as_slice().contains(h));
        keys_hit && self.category_match(i, keys.ctx)
    }

    /// Whether one of offer `i`'s categories covers one of the first
    /// [`limits::CONTEXT_ITEMS_MAX`] page categories, by [`category_covers`]
    /// (false when the offer lists none). Allocates nothing.
    ///
    /// This compares strings for every pair; a loop over many offers should
    /// take [`PageCategoryKeys`] once and call [`Self::category_match_keys`].
    pub fn category_match(&self, i: usize, ctx: &RequestContext) -> bool {
        let offer_categories = &self.categories[self.category_span[i].range()];
        !offer_categories.is_empty()
            && ctx
                .categories
                .iter()
                .take(limits::CONTEXT_ITEMS_MAX)
                .any(|page| offer_categories.iter().any(|c| category_covers(c, page)))
    }
}

/// Whether `country` (any ASCII case) is one of the upper-case `listed` codes.
fn country_listed(listed: &[[u8; 3]], country: &str) -> bool {
    let bytes = country.as_bytes();
    if bytes.len() != 3 {
        return false;
    }
    let code = [
        bytes[0].to_ascii_uppercase(),
        bytes[1].to_ascii_uppercase(),
        bytes[2].to_ascii_uppercase(),
    ];
    listed.contains(&code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_cover_at_dash_boundaries_only() {
        assert!(category_covers("IAB1", "IAB1"));
        assert!(category_covers("IAB1", "IAB1-2"));
        assert!(!category_covers("IAB1", "IAB11"));
        assert!(!category_covers("IAB1-2", "IAB1"));
        assert!(category_covers("IAB1-2", "IAB1-2"));
        assert!(!category_covers("IAB1-2", "IAB1-22"));
        assert!(!category_covers("", "IAB1"));
        assert!(!category_covers("IAB1", ""));
    }

    #[test]
    fn countries_compare_ignoring_case() {
        let listed = [*b"USA", *b"GBR"];
        assert!(country_listed(&listed, "USA"));
        assert!(country_listed(&listed, "gbr"));
        assert!(!country_listed(&listed, "US"));
        assert!(!country_listed(&listed, "USAA"));
        assert!(!country_listed(&listed, ""));
        assert!(!country_listed(&listed, "DEU"));
    }

    #[test]
    fn ineligible_labels_are_snake_case() {
        let labels: Vec<String> = Ineligible::ALL.iter().map(|r| r.to_string()).collect();
        assert_eq!(
            labels,
            ["device_type", "country", "placement_size", "channel"]
        );
    }
}
