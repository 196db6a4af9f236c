//! The versioned feature schema: a [`RequestContext`] becomes a fixed-width
//! `f32` row that the spiking network takes as input.
//!
//! This crate owns the request context, the encodings (one-hot, the hashing
//! trick, log scales, time cycles), the schema's id and the normalisation
//! statistics. It is pure code: the trainer and the serving engine call the
//! same [`FeatureSchema::extract`], so their rows cannot drift apart, and a
//! model records the [`FeatureSchema::id`] it was trained with.
//!
//! Data layout: a row has two forms. Dense ([`FeatureSchema::extract`]):
//! `width()` contiguous `f32`s, almost all zero (a few dozen non-zero out of
//! 3,128 in v1), which the trainer and `cx eval` stack into `[batch][inputs]`.
//! Sparse ([`FeatureSchema::extract_sparse`]): the non-zero `(column, value)`
//! pairs, sorted, which the serving engine keeps per request (about 1 KiB
//! instead of 12 KiB) and feeds to the kernels as CSR batches, so serving
//! never scans the zeros. Scattering the sparse form gives the dense form
//! exactly. Extraction writes into caller-owned buffers and allocates nothing.
//!
//! `docs/FEATURES.md` documents every block, the seed, the bucket counts,
//! the clamps and what changes the id.
//!
//! ```
//! use cx_features::{DeviceType, FeatureNorm, FeatureSchema, RequestContext};
//!
//! let schema = FeatureSchema::v1();
//! let ctx = RequestContext {
//!     device_type: DeviceType::from_openrtb(4),
//!     domain: "example.com".into(),
//!     bid_floor: 1.5,
//!     timestamp: 1_704_261_600, // 2024-01-03 06:00 UTC
//!     ..RequestContext::default()
//! };
//! let mut row = vec![0.0f32; schema.width()]; // once per worker, reused per request
//! let stats = schema.extract(&ctx, &mut row)?;
//! assert_eq!(row[4], 1.0); // `device_type` starts at column 0; a phone is slot 4
//! assert_eq!(stats.dropped_items, 0);
//! FeatureNorm::identity().apply(&mut row)?; // a model's fitted statistics in practice
//! # Ok::<(), cx_features::Error>(())
//! ```

mod context;
pub mod error;
mod extract;
mod norm;
mod schema;
mod store;

pub use context::{
    placement_size_slot, AdPosition, ConnectionType, DeviceType, Os, RequestContext,
    EXTRA_NUMERIC_SLOTS, PLACEMENT_SIZES, PLACEMENT_SIZE_SLOTS,
};
pub use error::{Error, Result};
pub use extract::{bucket, ExtractStats, SPARSE_NONZERO_MAX};
pub use norm::{FeatureNorm, STD_MIN};
pub use schema::{
    Block, BlockKind, FeatureSchema, SchemaConfig, ID_HEX_LEN, SCHEMA_VERSION,
    SCHEMA_VERSION_STORE, SEED_V1,
};
pub use store::{
    age_days, signed_log, StoreColumn, StoreEncoding, StoreSection, STORE_AGE_DAYS_MAX,
    STORE_COLUMNS_MAX, STORE_FEATURES_MAX, STORE_NUMBER_MAX,
};

/// Documented limits of extraction. Each one that shapes the output is part
/// of the schema's canonical definition, so changing it changes the id.
pub mod limits {
    /// Segments, and separately categories, read per context; later items are
    /// ignored and counted in [`super::ExtractStats::dropped_items`].
    pub const LIST_ITEMS_MAX: usize = 32;
    /// Longest string value hashed, in bytes; a longer one is ignored and
    /// counted in [`super::ExtractStats::oversized_values`].
    pub const VALUE_BYTES_MAX: usize = 256;
    /// Most buckets in one hashed block.
    pub const BUCKETS_MAX: u32 = 4096;
    /// Highest bid floor (CPM, currency units) told apart; higher ones
    /// (including +inf) read as this value.
    pub const FLOOR_MAX: f64 = 1000.0;
    /// Largest placement side in pixels told apart; larger ones read as this value.
    pub const PLACEMENT_PX_MAX: u32 = 8192;
    /// Largest generic numeric feature told apart; larger ones read as this
    /// value, and negative or non-finite ones as 0.
    pub const EXTRA_NUMERIC_MAX: f64 = 1e9;
    /// Widest row a schema may define: the widest input a model takes
    /// (`cx_model::limits::WIDTH_MAX`; a test in `cx-systems` checks that
    /// the two agree).
    pub const WIDTH_MAX: usize = 16_384;
    /// Longest [`super::FeatureNorm`] JSON accepted, in bytes.
    pub const NORM_JSON_BYTES_MAX: usize = 1 << 20;
}
