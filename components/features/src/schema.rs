//! The schema: the blocks of a feature row, their offsets and encodings, and
//! the schema's id, a hash of that definition.
//!
//! The block list ([`FeatureSchema::blocks`]) and the offsets extraction
//! writes to (`Layout`) come out of one builder, so they cannot disagree.
//! The blocks are the documentation; the layout is a flat struct of offsets
//! so that extraction is straight-line code with no lookups.

use super::context::{
    AdPosition, ConnectionType, DeviceType, Os, EXTRA_NUMERIC_SLOTS, PLACEMENT_SIZE_SLOTS,
};
use super::limits;
use crate::error::{Error, Result};
use crate::store::StoreSection;
use cx_featurestore::Definitions;
use std::fmt::Write as _;
use std::ops::Range;
use std::sync::Arc;

/// The version of the schema's definition. Part of the canonical text, so
/// bumping it changes every id.
pub const SCHEMA_VERSION: &str = "1";

/// The version of a schema with a store section
/// ([`FeatureSchema::with_store`]); the v1 blocks are unchanged.
pub const SCHEMA_VERSION_STORE: &str = "2";

/// Seed of every hash in schema v1 (`"CXFEAT01"` as a big-endian integer).
pub const SEED_V1: u64 = 0x4358_4645_4154_3031;

/// Length of a schema id in hex characters: the first 8 bytes of the SHA-256.
pub const ID_HEX_LEN: usize = 16;

/// Midnight UTC of a Monday, in hours since the unix epoch (1969-12-29,
/// 72 hours before 1970-01-01, a Thursday): the origin of hour-of-week.
const MONDAY_EPOCH_HOURS: i64 = -72;

/// The tunable parameters of a schema: the hash seed and the bucket count of
/// each hashed block. [`SchemaConfig::V1`] is the released schema; other
/// values give other schemas, with other ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchemaConfig {
    /// Seed of every hash.
    pub seed: u64,
    /// Buckets of `country`.
    pub country_buckets: u32,
    /// Buckets of `region` (hashed with its country).
    pub region_buckets: u32,
    /// Buckets of `site_id` (site and app ids).
    pub site_buckets: u32,
    /// Buckets of `domain`.
    pub domain_buckets: u32,
    /// Buckets of `categories`.
    pub category_buckets: u32,
    /// Buckets of `user_id`.
    pub user_id_buckets: u32,
    /// Buckets of `user_segments`.
    pub segment_buckets: u32,
    /// Buckets of `extra`, the generic hashed features.
    pub extra_buckets: u32,
}

impl SchemaConfig {
    /// Schema v1's parameters.
    pub const V1: Self = Self {
        seed: SEED_V1,
        country_buckets: 256,
        region_buckets: 256,
        site_buckets: 512,
        domain_buckets: 512,
        category_buckets: 256,
        user_id_buckets: 512,
        segment_buckets: 256,
        extra_buckets: 512,
    };

    fn buckets(&self) -> [(&'static str, u32); 8] {
        [
            ("country", self.country_buckets),
            ("region", self.region_buckets),
            ("site_id", self.site_buckets),
            ("domain", self.domain_buckets),
            ("categories", self.category_buckets),
            ("user_id", self.user_id_buckets),
            ("user_segments", self.segment_buckets),
            ("extra", self.extra_buckets),
        ]
    }
}

impl Default for SchemaConfig {
    fn default() -> Self {
        Self::V1
    }
}

/// How a block encodes its part of the context.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BlockKind {
    /// Exactly one column is 1.0, the slot of the value; `slots` labels the columns.
    OneHot {
        /// One label per column.
        slots: &'static [&'static str],
    },
    /// At most one column is 1.0: column `xxh3_64_with_seed(key, seed) % buckets`,
    /// where `key` is the bytes of the template with the value put in. None
    /// when the value is empty or longer than [`limits::VALUE_BYTES_MAX`].
    Hashed {
        /// The key template, e.g. `domain=<domain>`.
        key: &'static str,
        /// Number of buckets, the block's width.
        buckets: u32,
        /// Hash seed.
        seed: u64,
    },
    /// Like `Hashed`, once for each of the first `items_max` items of a list;
    /// a column hit more than once stays 1.0.
    MultiHot {
        /// The key template, e.g. `category=<category>`.
        key: &'static str,
        /// Number of buckets, the block's width.
        buckets: u32,
        /// Hash seed.
        seed: u64,
        /// Items read per list; the rest are dropped and counted.
        items_max: u32,
    },
    /// One column per input: `ln(1 + min(x, max))`, with `x < 0` or NaN read as 0.
    Log1p {
        /// The context fields, one per column.
        inputs: &'static [&'static str],
        /// The clamp.
        max: f64,
    },
    /// Two columns, `sin` and `cos` of `2 pi h / period_hours`, where `h` is
    /// the whole hours since Monday 00:00 UTC, modulo `period_hours`.
    Cyclic {
        /// 24 for hour of day, 168 for hour of week.
        period_hours: u32,
    },
    /// The online feature store's values of the request's user (schema
    /// version 2; [`crate::StoreSection`] lists the columns).
    Store {
        /// Features read (stored, then computed).
        features: u32,
    },
}

impl BlockKind {
    /// The kind's name in the canonical definition and the docs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::OneHot { .. } => "one_hot",
            Self::Hashed { .. } => "hashed",
            Self::MultiHot { .. } => "multi_hot",
            Self::Log1p { .. } => "log1p",
            Self::Cyclic { .. } => "cyclic",
            Self::Store { .. } => "store",
        }
    }
}

/// One contiguous run of columns in a feature row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Block {
    /// The block's name, e.g. `device_type`.
    pub name: &'static str,
    /// Its encoding.
    pub kind: BlockKind,
    /// Its first column.
    pub offset: usize,
    /// Its number of columns.
    pub width: usize,
}

impl Block {
    /// The block's columns in the row.
    pub fn columns(&self) -> Range<usize> {
        self.offset..self.offset + self.width
    }

    /// Whether the block holds numeric values (the ones [`super::FeatureNorm`]
    /// normalises) rather than 0/1 indicators.
    pub fn is_numeric(&self) -> bool {
        matches!(
            self.kind,
            BlockKind::Log1p { .. } | BlockKind::Cyclic { .. } | BlockKind::Store { .. }
        )
    }

    /// The closed range `(min, max)` every value of the block lies in.
    pub fn range(&self) -> (f32, f32) {
        match self.kind {
            BlockKind::OneHot { .. } | BlockKind::Hashed { .. } | BlockKind::MultiHot { .. } => {
                (0.0, 1.0)
            }
            BlockKind::Log1p { max, .. } => (0.0, max.ln_1p() as f32),
            BlockKind::Cyclic { .. } => (-1.0, 1.0),
            BlockKind::Store { .. } => {
                let max = crate::STORE_NUMBER_MAX.ln_1p() as f32;
                (-max, max)
            }
        }
    }

    /// The block's line in the canonical definition.
    fn canonical(&self) -> String {
        let mut line = format!(
            "block name={} kind={} offset={} width={}",
            self.name,
            self.kind.name(),
            self.offset,
            self.width
        );
        // Writing to a String cannot fail.
        let _ = match self.kind {
            BlockKind::OneHot { slots } => write!(line, " slots={}", slots.join(",")),
            BlockKind::Hashed { key, buckets, seed } => {
                write!(line, " key={key} buckets={buckets} seed={seed:#018x}")
            }
            BlockKind::MultiHot {
                key,
                buckets,
                seed,
                items_max,
            } => write!(
                line,
                " key={key} buckets={buckets} seed={seed:#018x} items_max={items_max}"
            ),
            BlockKind::Log1p { inputs, max } => {
                write!(line, " inputs={} max={max}", inputs.join(","))
            }
            BlockKind::Cyclic { period_hours } => {
                write!(line, " period_hours={period_hours} origin=monday_00:00_utc")
            }
            BlockKind::Store { features } => write!(line, " features={features}"),
        };
        line
    }
}

/// Offset, bucket count and seed of one hashed block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct HashBlock {
    pub offset: usize,
    pub buckets: u32,
    pub seed: u64,
}

/// The first column of every block, for extraction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Layout {
    pub device_type: usize,
    pub os: usize,
    pub connection_type: usize,
    pub ad_position: usize,
    pub inventory: usize,
    pub placement_size: usize,
    pub placement_px: usize,
    pub bid_floor: usize,
    pub hour_of_day: usize,
    pub hour_of_week: usize,
    pub country: HashBlock,
    pub region: HashBlock,
    pub site_id: HashBlock,
    pub domain: HashBlock,
    pub categories: HashBlock,
    pub user_id: HashBlock,
    pub user_segments: HashBlock,
    pub extra_numeric: usize,
    pub extra: HashBlock,
}

/// Appends blocks at increasing offsets.
struct Builder {
    blocks: Vec<Block>,
    seed: u64,
}

impl Builder {
    fn push(&mut self, name: &'static str, kind: BlockKind, width: usize) -> usize {
        let offset = self.blocks.last().map_or(0, |b| b.offset + b.width);
        self.blocks.push(Block {
            name,
            kind,
            offset,
            width,
        });
        offset
    }

    fn one_hot(&mut self, name: &'static str, slots: &'static [&'static str]) -> usize {
        self.push(name, BlockKind::OneHot { slots }, slots.len())
    }

    fn hashed(&mut self, name: &'static str, key: &'static str, buckets: u32) -> HashBlock {
        let seed = self.seed;
        let kind = BlockKind::Hashed { key, buckets, seed };
        let offset = self.push(name, kind, buckets as usize);
        HashBlock {
            offset,
            buckets,
            seed,
        }
    }

    fn multi_hot(&mut self, name: &'static str, key: &'static str, buckets: u32) -> HashBlock {
        let seed = self.seed;
        let kind = BlockKind::MultiHot {
            key,
            buckets,
            seed,
            items_max: limits::LIST_ITEMS_MAX as u32,
        };
        let offset = self.push(name, kind, buckets as usize);
        HashBlock {
            offset,
            buckets,
            seed,
        }
    }
}

/// Lays out the blocks of a schema, in row order.
fn build(config: &SchemaConfig) -> (Vec<Block>, Layout) {
    let mut b = Builder {
        blocks: Vec::with_capacity(19),
        seed: config.seed,
    };
    let layout = Layout {
        device_type: b.one_hot("device_type", DeviceType::SLOTS),
        os: b.one_hot("os", Os::SLOTS),
        connection_type: b.one_hot("connection_type", ConnectionType::SLOTS),
        ad_position: b.one_hot("ad_position", AdPosition::SLOTS),
        inventory: b.one_hot("inventory", &["site", "app"]),
        placement_size: b.one_hot("placement_size", PLACEMENT_SIZE_SLOTS),
        placement_px: b.push(
            "placement_px",
            BlockKind::Log1p {
                inputs: &["placement_width", "placement_height"],
                max: limits::PLACEMENT_PX_MAX as f64,
            },
            2,
        ),
        bid_floor: b.push(
            "bid_floor",
            BlockKind::Log1p {
                inputs: &["bid_floor"],
                max: limits::FLOOR_MAX,
            },
            1,
        ),
        hour_of_day: b.push("hour_of_day", BlockKind::Cyclic { period_hours: 24 }, 2),
        hour_of_week: b.push("hour_of_week", BlockKind::Cyclic { period_hours: 168 }, 2),
        country: b.hashed("country", "country=<country>", config.country_buckets),
        region: b.hashed("region", "region=<country>-<region>", config.region_buckets),
        site_id: b.hashed(
            "site_id",
            "site_id=<site_id>|app_id=<site_id>",
            config.site_buckets,
        ),
        domain: b.hashed("domain", "domain=<domain>", config.domain_buckets),
        categories: b.multi_hot("categories", "category=<category>", config.category_buckets),
        user_id: b.hashed("user_id", "user_id=<user_id>", config.user_id_buckets),
        user_segments: b.multi_hot(
            "user_segments",
            "user_segment=<segment>",
            config.segment_buckets,
        ),
        extra_numeric: b.push(
            "extra_numeric",
            BlockKind::Log1p {
                inputs: &[
                    "extra_numeric[0]",
                    "extra_numeric[1]",
                    "extra_numeric[2]",
                    "extra_numeric[3]",
                ],
                max: limits::EXTRA_NUMERIC_MAX,
            },
            EXTRA_NUMERIC_SLOTS,
        ),
        extra: b.multi_hot("extra", "extra=<name>=<value>", config.extra_buckets),
    };
    (b.blocks, layout)
}

/// A versioned feature schema: turns a [`super::RequestContext`] into a
/// fixed-width `f32` row (see [`FeatureSchema::extract`]). The trainer and
/// the server both use it, so their rows cannot differ.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureSchema {
    config: SchemaConfig,
    blocks: Vec<Block>,
    pub(super) layout: Layout,
    pub(super) width: usize,
    /// The store section and its first column (schema version 2).
    store: Option<(Arc<StoreSection>, usize)>,
    id: String,
}

impl FeatureSchema {
    /// Schema v1, the released schema ([`SchemaConfig::V1`]).
    pub fn v1() -> Self {
        Self::build(SchemaConfig::V1)
    }

    /// A schema with other parameters. Every bucket count must be in
    /// `1..=`[`limits::BUCKETS_MAX`], and the row at most
    /// [`crate::limits::WIDTH_MAX`] wide.
    pub fn new(config: SchemaConfig) -> Result<Self> {
        for (name, buckets) in config.buckets() {
            if buckets == 0 {
                return Err(Error::BadSchema(format!("block `{name}` has zero buckets")));
            }
            if buckets > limits::BUCKETS_MAX {
                return Err(Error::LimitExceeded {
                    what: format!("bucket count of feature block `{name}`"),
                    value: buckets as usize,
                    limit: limits::BUCKETS_MAX as usize,
                });
            }
        }
        let schema = Self::build(config);
        if schema.width > crate::limits::WIDTH_MAX {
            return Err(Error::LimitExceeded {
                what: "feature row width".into(),
                value: schema.width,
                limit: crate::limits::WIDTH_MAX,
            });
        }
        Ok(schema)
    }

    fn build(config: SchemaConfig) -> Self {
        let (blocks, layout) = build(&config);
        let width = blocks.last().map_or(0, |b| b.offset + b.width);
        let mut schema = Self {
            config,
            blocks,
            layout,
            width,
            store: None,
            id: String::new(),
        };
        schema.id = id_of(&schema.canonical());
        schema
    }

    /// Schema version 2: `self`'s blocks and a last block, `store`, of the
    /// online feature store's values under `definitions` (see
    /// [`crate::StoreSection`]). Its id covers the definitions' id and
    /// every store column. Refused when the definitions are too wide
    /// ([`crate::STORE_FEATURES_MAX`], [`crate::STORE_COLUMNS_MAX`]), the
    /// row would pass [`crate::limits::WIDTH_MAX`], or `self` already has a
    /// store section.
    pub fn with_store(&self, definitions: Arc<Definitions>) -> Result<Self> {
        if self.store.is_some() {
            return Err(Error::BadSchema(
                "the schema already has a store section".into(),
            ));
        }
        let section = StoreSection::new(definitions)?;
        let offset = self.width;
        let width = offset + section.width();
        if width > crate::limits::WIDTH_MAX {
            return Err(Error::LimitExceeded {
                what: "feature row width".into(),
                value: width,
                limit: crate::limits::WIDTH_MAX,
            });
        }
        let mut schema = self.clone();
        schema.blocks.push(Block {
            name: "store",
            kind: BlockKind::Store {
                features: section.columns().len() as u32,
            },
            offset,
            width: section.width(),
        });
        schema.width = width;
        schema.store = Some((Arc::new(section), offset));
        schema.id = id_of(&schema.canonical());
        Ok(schema)
    }

    /// The store section and its first column, if the schema has one.
    pub fn store_section(&self) -> Option<(&StoreSection, usize)> {
        self.store.as_ref().map(|(s, offset)| (&**s, *offset))
    }

    /// The parameters this schema was built from.
    pub fn config(&self) -> &SchemaConfig {
        &self.config
    }

    /// The schema's id: the first [`ID_HEX_LEN`] hex characters of the
    /// SHA-256 of [`Self::canonical`]. A model records the id it was trained
    /// with (`cx.feature_schema_id`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Number of columns in a row.
    pub fn width(&self) -> usize {
        self.width
    }

    /// The blocks, in row order; together they cover `0..width()` without gaps.
    pub fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    /// The block called `name`.
    pub fn block(&self, name: &str) -> Option<&Block> {
        self.blocks.iter().find(|b| b.name == name)
    }

    /// The columns normalised by [`super::FeatureNorm`]: those of numeric blocks, ascending.
    pub fn numeric_columns(&self) -> impl Iterator<Item = usize> + '_ {
        self.blocks
            .iter()
            .filter(|b| b.is_numeric())
            .flat_map(|b| b.columns())
    }

    /// The deterministic text the id hashes: a header line with the version,
    /// the width and the limits that shape the output, then one line per
    /// block with its name, kind, offset, width and parameters (slot labels,
    /// key template, buckets, seed, clamps, periods).
    pub fn canonical(&self) -> String {
        let version = if self.store.is_some() {
            SCHEMA_VERSION_STORE
        } else {
            SCHEMA_VERSION
        };
        let mut text = format!(
            "cx-feature-schema version={version} width={} value_bytes_max={}\n",
            self.width,
            limits::VALUE_BYTES_MAX
        );
        for block in &self.blocks {
            text.push_str(&block.canonical());
            text.push('\n');
        }
        if let Some((section, _)) = &self.store {
            text.push_str(&section.canonical());
        }
        text
    }
}

impl Default for FeatureSchema {
    fn default() -> Self {
        Self::v1()
    }
}

/// The id of a canonical definition.
fn id_of(canonical: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(canonical.as_bytes());
    digest[..ID_HEX_LEN / 2]
        .iter()
        .fold(String::with_capacity(ID_HEX_LEN), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Whole hours since Monday 00:00 UTC, modulo `period_hours`, for any timestamp.
pub(super) fn hour_index(timestamp: i64, period_hours: u32) -> i64 {
    (timestamp.div_euclid(3600) - MONDAY_EPOCH_HOURS).rem_euclid(i64::from(period_hours))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_tile_the_row_without_gaps() {
        let schema = FeatureSchema::v1();
        let mut next = 0;
        for block in schema.blocks() {
            assert_eq!(block.offset, next, "{}", block.name);
            assert!(block.width > 0);
            next += block.width;
        }
        assert_eq!(next, schema.width());
    }

    #[test]
    fn v1_is_a_valid_config() {
        assert_eq!(
            FeatureSchema::new(SchemaConfig::V1).unwrap(),
            FeatureSchema::v1()
        );
        assert_eq!(FeatureSchema::default(), FeatureSchema::v1());
    }

    #[test]
    fn hour_index_counts_from_monday_utc() {
        // 1970-01-01 00:00 UTC was a Thursday: 72 hours into the week.
        assert_eq!(hour_index(0, 168), 72);
        assert_eq!(hour_index(0, 24), 0);
        // 1970-01-05 00:00 UTC, a Monday.
        assert_eq!(hour_index(4 * 86_400, 168), 0);
        assert_eq!(hour_index(4 * 86_400 - 1, 168), 167);
        assert_eq!(hour_index(-1, 24), 23);
        assert!((0..168).contains(&hour_index(i64::MIN, 168)));
        assert!((0..168).contains(&hour_index(i64::MAX, 168)));
    }

    #[test]
    fn the_id_is_sixteen_hex_characters() {
        let id = FeatureSchema::v1().id().to_string();
        assert_eq!(id.len(), ID_HEX_LEN);
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    }
}
