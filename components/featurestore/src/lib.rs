//! The online feature store: per-user features kept in process, beside
//! the model, read in nanoseconds (`docs/FEATURES.md`, "Online feature
//! store").
//!
//! ```
//! use cx_featurestore::{
//!     Definitions, FeaturePut, FeatureStore, FeatureValues, Freshness, StoreConfig, Value,
//! };
//! use std::sync::Arc;
//!
//! let defs = Arc::new(Definitions::from_toml_str(r#"
//!     [[feature]]
//!     name = "clicks_30d"
//!     kind = "engagement"
//!     type = "i64"
//!     ttl = "30d"
//!     default = 0
//!
//!     [[feature]]
//!     name = "views_30d"
//!     kind = "engagement"
//!     type = "i64"
//!     ttl = "30d"
//!     default = 0
//!
//!     [[computed]]
//!     name = "ctr_30d"
//!     kind = "engagement"
//!     op = "ratio"
//!     numerator = "clicks_30d"
//!     denominator = "views_30d"
//!     prior_mean = 0.02
//!     prior_weight = 50
//! "#)?);
//! let mut store = FeatureStore::new(defs.clone(), StoreConfig::default())?;
//! let clicks = defs.find("clicks_30d").unwrap();
//! let views = defs.find("views_30d").unwrap();
//! let t = 1_767_225_600_000_000_000; // unix ns
//! store.put(&[
//!     FeaturePut { entity: 42, feature: clicks, value: Value::I64(3), time_ns: t },
//!     FeaturePut { entity: 42, feature: views, value: Value::I64(100), time_ns: t },
//! ], t)?;
//!
//! let mut row = FeatureValues::new(defs.clone()); // once; every read reuses it
//! store.read(42, t + 3_600_000_000_000, &mut row)?;
//! let (ctr, freshness) = row.get("ctr_30d").unwrap();
//! assert_eq!(freshness, Freshness::Fresh);
//! assert_eq!(ctr, Value::F32(((3.0 + 0.02 * 50.0) / 150.0) as f32));
//! # Ok::<(), cx_featurestore::Error>(())
//! ```
//!
//! - [`defs`]: the TOML definitions, their validation and schema id.
//! - [`computed`]: `days_since`, `ratio`, `threshold`, evaluated at read.
//! - [`store`]: the bounded in-process store (its layout and eviction).
//! - [`shared`]: the same, sharded behind mutexes for a server's workers.
//! - [`backend`]: the narrow interface, the closed enum of backends, and
//!   each operation's key-value form.
//! - [`history`]: point-in-time features of a click log, for training.
//! - [`health`]: fresh, stale and missing reads, writes, ages, warnings.
//! - [`snapshot`]: atomic, versioned, checksummed snapshots.
//!
//! Plain data: no ECS, no clock (every time comes from the caller), no
//! thread. Part 1 of issue 16: nothing feeds these features to the model
//! or the decision yet.

pub mod backend;
pub mod computed;
pub mod defs;
pub mod error;
pub mod health;
pub mod history;
pub mod row;
pub mod shared;
pub mod snapshot;
pub mod store;

pub use backend::{FeatureBackend, OnlineFeatures};
pub use defs::{
    Cmp, Computation, ComputedDef, Definitions, Entity, FeatureDef, FeatureId, FeatureKind,
    FeedbackEvent, UpdateOp, UpdateRule, Value, ValueType,
};
pub use error::{Error, Result};
pub use health::{AgeHistogram, FeatureCounts, FeatureHealth, HealthReport, WarnPolicy};
pub use row::{FeatureValues, Freshness};
pub use shared::SharedFeatureStore;
pub use snapshot::SnapshotInfo;
pub use store::{
    bytes_per_entity, FeaturePut, FeatureStore, PutOutcome, StoreConfig, StoreStats, ENTITIES_MAX,
    PUT_BATCH_MAX, READ_BATCH_MAX, STORE_BYTES_MAX,
};
