//! The generator's settings, their defaults and their documented limits.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// Documented limits on [`SynthConfig`] and on one call. A value outside
/// them is refused with [`Error::SynthConfig`] naming the field.
pub mod limits {
    /// Most users in the population (the Zipf table holds 8 bytes per user).
    pub const USERS_MAX: u32 = 2_000_000;
    /// Fewest publishers (each of the three pools needs one).
    pub const PUBLISHERS_MIN: u32 = 10;
    /// Most publishers (sites and apps together).
    pub const PUBLISHERS_MAX: u32 = 1_000_000;
    /// Most offers in the catalog (the logging policy weighs every offer per row).
    pub const OFFERS_MAX: u32 = 1024;
    /// Most user segments.
    pub const SEGMENTS_MAX: u32 = 10_000;
    /// Largest embedding dimension `k`.
    pub const EMBEDDING_DIM_MAX: u32 = 64;
    /// Smallest configured click-through rate.
    pub const CTR_MIN: f64 = 0.001;
    /// Largest configured click-through rate.
    pub const CTR_MAX: f64 = 0.5;
    /// Largest Zipf exponent.
    pub const ZIPF_EXPONENT_MAX: f64 = 3.0;
    /// Largest `affinity_scale` and `context_scale`.
    pub const SCALE_MAX: f64 = 4.0;
    /// Largest `user_bias_sd`.
    pub const USER_BIAS_SD_MAX: f64 = 3.0;
    /// Longest time span, in days (about ten years).
    pub const SPAN_DAYS_MAX: u32 = 3660;
    /// Latest end of the time span: 2100-01-01T00:00:00Z.
    pub const END_UNIX_MAX: i64 = 4_102_444_800;
    /// Most rows one [`super::Generator::fill`] call appends.
    pub const ROWS_PER_CALL_MAX: usize = 1_000_000;
}

/// What the generator simulates. Every field has a default
/// ([`SynthConfig::default`]); a JSON or TOML file may set any subset, and an
/// unknown field is an error.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SynthConfig {
    /// Users in the population, `1..=2_000_000`; default 100 000.
    pub users: u32,
    /// Zipf exponent of user activity, `0..=3`: user rank `r` makes a share of
    /// requests proportional to `(r + 1)^-s`; default 0.7 (0 is uniform).
    pub user_zipf_exponent: f64,
    /// Publishers (web sites, mobile apps, TV apps), `10..=1_000_000`; default 20 000.
    pub publishers: u32,
    /// Zipf exponent of publisher traffic within each pool, `0..=3`; default 1.0.
    pub publisher_zipf_exponent: f64,
    /// Offers in the catalog, `1..=1024`; default 16.
    pub offers: u32,
    /// User segments, `1..=10_000`; default 64.
    pub segments: u32,
    /// Dimension `k` of the latent user and offer embeddings, `1..=64`; default 8.
    pub embedding_dim: u32,
    /// Target click-through rate: the mean true click probability over the
    /// traffic, `0.001..=0.5`; default 0.05.
    pub ctr: f64,
    /// Weight of the user-offer affinity in the click logit, `0..=4`; default 1.0.
    pub affinity_scale: f64,
    /// Share of a user's embedding variance explained by the user's segments
    /// (observable), the rest being idiosyncratic, `0..=1`; default 0.7.
    pub segment_share: f64,
    /// Multiplier of every context effect (device, position, size, hour,
    /// country, publisher, category match), `0..=4`; default 1.0.
    pub context_scale: f64,
    /// Standard deviation of each user's own click bias, a term of the click
    /// logit that no request field shows, `0..=3`; default 0 (none). Only the
    /// user's history (its past clicks per view) reveals it: the lever behind
    /// the online feature store's behavioural features (docs/SYNTHETIC_DATA.md,
    /// "User histories").
    pub user_bias_sd: f64,
    /// Start of the time span, unix seconds UTC; default 1 735 689 600 (2025-01-01T00:00:00Z).
    pub start_unix: i64,
    /// Length of the time span in days, `1..=3660`; default 7. The span must
    /// end by 2100-01-01.
    pub span_days: u32,
}

impl Default for SynthConfig {
    fn default() -> Self {
        Self {
            users: 100_000,
            user_zipf_exponent: 0.7,
            publishers: 20_000,
            publisher_zipf_exponent: 1.0,
            offers: 16,
            segments: 64,
            embedding_dim: 8,
            ctr: 0.05,
            affinity_scale: 1.0,
            segment_share: 0.7,
            context_scale: 1.0,
            user_bias_sd: 0.0,
            start_unix: 1_735_689_600,
            span_days: 7,
        }
    }
}

/// The error for `field` holding `value`, which breaks `rule`.
fn refuse(field: &'static str, value: impl ToString, rule: &'static str) -> Error {
    Error::SynthConfig {
        field,
        value: value.to_string(),
        rule,
    }
}

fn check_count(
    field: &'static str,
    value: u32,
    min: u32,
    max: u32,
    rule: &'static str,
) -> Result<()> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(refuse(field, value, rule))
    }
}

fn check_real(
    field: &'static str,
    value: f64,
    min: f64,
    max: f64,
    rule: &'static str,
) -> Result<()> {
    if value.is_finite() && (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(refuse(field, value, rule))
    }
}

impl SynthConfig {
    /// Checks every field against its documented range; the error names the
    /// first field at fault.
    pub fn validate(&self) -> Result<()> {
        use limits::*;
        check_count("users", self.users, 1, USERS_MAX, "must be in 1..=2000000")?;
        check_real(
            "user_zipf_exponent",
            self.user_zipf_exponent,
            0.0,
            ZIPF_EXPONENT_MAX,
            "must be in [0, 3]",
        )?;
        check_count(
            "publishers",
            self.publishers,
            PUBLISHERS_MIN,
            PUBLISHERS_MAX,
            "must be in 10..=1000000",
        )?;
        check_real(
            "publisher_zipf_exponent",
            self.publisher_zipf_exponent,
            0.0,
            ZIPF_EXPONENT_MAX,
            "must be in [0, 3]",
        )?;
        check_count("offers", self.offers, 1, OFFERS_MAX, "must be in 1..=1024")?;
        check_count(
            "segments",
            self.segments,
            1,
            SEGMENTS_MAX,
            "must be in 1..=10000",
        )?;
        check_count(
            "embedding_dim",
            self.embedding_dim,
            1,
            EMBEDDING_DIM_MAX,
            "must be in 1..=64",
        )?;
        check_real("ctr", self.ctr, CTR_MIN, CTR_MAX, "must be in [0.001, 0.5]")?;
        check_real(
            "affinity_scale",
            self.affinity_scale,
            0.0,
            SCALE_MAX,
            "must be in [0, 4]",
        )?;
        check_real(
            "segment_share",
            self.segment_share,
            0.0,
            1.0,
            "must be in [0, 1]",
        )?;
        check_real(
            "context_scale",
            self.context_scale,
            0.0,
            SCALE_MAX,
            "must be in [0, 4]",
        )?;
        check_real(
            "user_bias_sd",
            self.user_bias_sd,
            0.0,
            USER_BIAS_SD_MAX,
            "must be in [0, 3]",
        )?;
        check_count(
            "span_days",
            self.span_days,
            1,
            SPAN_DAYS_MAX,
            "must be in 1..=3660",
        )?;
        if self.start_unix < 0 {
            return Err(refuse(
                "start_unix",
                self.start_unix,
                "must not be before 1970-01-01",
            ));
        }
        if self.start_unix > END_UNIX_MAX - self.span_seconds() {
            return Err(refuse(
                "start_unix",
                self.start_unix,
                "start_unix + span_days must end by 2100-01-01",
            ));
        }
        Ok(())
    }

    /// The span in seconds.
    pub fn span_seconds(&self) -> i64 {
        i64::from(self.span_days) * 86_400
    }
}
