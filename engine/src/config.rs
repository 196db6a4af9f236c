//! The engine's configuration: one serde type with documented defaults,
//! read from code, a TOML file, and `CX_ENGINE_*` environment overrides
//! (merged in that order by `figment`).
//!
//! Environment keys name a field path with `__` between levels:
//! `CX_ENGINE_SEED=7`, `CX_ENGINE_BATCH__BATCH_MAX=32`,
//! `CX_ENGINE_DECIDE__WEIGHTS__REVENUE=0.8`.

use crate::error::{Error, Result};
use cx_backends::BackendKind;
use cx_domain::store::{CacheConfig, FrequencyConfig, LeaseConfig};
use cx_systems::{BatchPolicy, DecideConfig};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Prefix of the environment overrides.
pub const ENV_PREFIX: &str = "CX_ENGINE_";

/// Longest config file read, bytes.
pub const CONFIG_BYTES_MAX: u64 = 1 << 20;

/// Most requests in flight (submitted and not yet polled) any engine allows.
pub const IN_FLIGHT_LIMIT: usize = 1 << 20;

/// Everything an engine is configured with. `docs/CONFIG.md` lists every key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Most requests submitted and not yet polled; `submit` answers
    /// `Overloaded` beyond it. Also sizes the ingress, the egress and the
    /// pool of request entities. Default 4096.
    pub in_flight_max: usize,
    /// `scalar`, `simd` or `auto` (default). `CX_BACKEND` and the builder's
    /// `backend` override it.
    pub backend: String,
    /// Seed of the exploration draws. Default 0.
    pub seed: u64,
    /// Inference batching.
    pub batch: BatchPolicy,
    /// The decision cache.
    pub cache: CacheSection,
    /// The frequency-cap store.
    pub frequency: FrequencySection,
    /// How engines sharing a budget bank lease from it.
    pub budget: BudgetSection,
    /// Scoring, rules and pricing.
    pub decide: DecideConfig,
    /// When the model and the catalog overlap only partly: `warn`
    /// (default; serve, and the host warns) or `refuse`.
    pub catalog_overlap: crate::fit::CatalogOverlap,
    /// When the model was trained on context fields a serving path never
    /// fills (`cx.training_inputs`, [`crate::skew`]): `warn` (default;
    /// serve, and the host warns) or `refuse`.
    pub train_serve_skew: crate::skew::SkewPolicy,
    /// OpenRTB bid responses.
    pub openrtb: OpenRtbSection,
    /// The decision log and the windows feedback events join within.
    pub feedback: crate::config_feedback::FeedbackSection,
    /// Model monitoring: windows and alarm thresholds (`docs/MONITORING.md`).
    pub monitor: cx_systems::monitor::MonitorConfig,
}

/// `[openrtb]`: what the engine puts in its OpenRTB bids.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenRtbSection {
    /// Base URL of the win, billing and loss notice URLs in bids
    /// (`http://127.0.0.1:8080`, no trailing slash; `docs/OPENRTB.md`,
    /// "Notice URLs"). Empty (the default): the server fills in its own
    /// HTTP listener; an engine left without one (`cx score`) bids without
    /// notice URLs.
    pub notice_base_url: String,
}

/// `[cache]`: the L1 decision cache of model scores.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheSection {
    /// Entries; 0 turns the cache off. Default 65536.
    pub capacity: usize,
    /// Time to live of an entry, ms (entries also expire when their time
    /// features do, at the end of the hour). Default 60000.
    pub ttl_ms: u64,
}

impl Default for CacheSection {
    fn default() -> Self {
        Self {
            capacity: 65_536,
            ttl_ms: 60_000,
        }
    }
}

/// `[frequency]`: the per-user, per-offer impression store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FrequencySection {
    /// `(user, offer)` entries. Default 65536.
    pub capacity: usize,
}

impl Default for FrequencySection {
    fn default() -> Self {
        Self { capacity: 65_536 }
    }
}

/// `[budget]`: leases from a budget bank shared by several engines (a
/// server's workers). An engine alone keeps its own ledger and ignores it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BudgetSection {
    /// A lease's size as a share of the offer's daily budget, in `(0, 1]`.
    /// Default 0.01.
    pub lease_share: f64,
    /// An allowance unused this long goes back to the bank, ms. Default
    /// 1000.
    pub lease_ttl_ms: u64,
}

impl Default for BudgetSection {
    fn default() -> Self {
        Self {
            lease_share: 0.01,
            lease_ttl_ms: 1000,
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            in_flight_max: 4096,
            backend: "auto".into(),
            seed: 0,
            batch: BatchPolicy::default(),
            cache: CacheSection::default(),
            frequency: FrequencySection::default(),
            budget: BudgetSection::default(),
            decide: DecideConfig::default(),
            catalog_overlap: crate::fit::CatalogOverlap::default(),
            train_serve_skew: crate::skew::SkewPolicy::default(),
            openrtb: OpenRtbSection::default(),
            feedback: crate::config_feedback::FeedbackSection::default(),
            monitor: cx_systems::monitor::MonitorConfig::default(),
        }
    }
}

impl EngineConfig {
    /// Parses TOML (missing keys take their defaults) and validates it.
    pub fn from_toml_str(text: &str) -> Result<Self> {
        Self::extract(
            Figment::from(Serialized::defaults(Self::default())).merge(Toml::string(text)),
        )
    }

    /// Defaults, then the TOML file at `path` (if any), then the
    /// `CX_ENGINE_*` environment overrides; validated.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(Self::default()));
        if let Some(path) = path {
            figment = figment.merge(Toml::string(&read_config(path)?));
        }
        Self::extract(figment.merge(Env::prefixed(ENV_PREFIX).split("__")))
    }

    fn extract(figment: Figment) -> Result<Self> {
        let config: Self = figment
            .extract()
            .map_err(|e| Error::Config(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every section against its limits.
    pub fn validate(&self) -> Result<()> {
        if !(1..=IN_FLIGHT_LIMIT).contains(&self.in_flight_max) {
            return Err(Error::Config(format!(
                "`in_flight_max` is {}, not in 1..={IN_FLIGHT_LIMIT}",
                self.in_flight_max
            )));
        }
        self.backend_kind()?;
        self.batch.validate()?;
        self.decide.validate()?;
        let budget = &self.budget;
        if !(budget.lease_share > 0.0 && budget.lease_share <= 1.0) {
            return Err(Error::Config(format!(
                "`budget.lease_share` is {}, not in (0, 1]",
                budget.lease_share
            )));
        }
        if budget.lease_ttl_ms == 0 {
            return Err(Error::Config(
                "`budget.lease_ttl_ms` is 0: every lease would be returned at once".into(),
            ));
        }
        self.notice_urls()?;
        self.feedback.log_config()?;
        self.monitor.validate()?;
        Ok(())
    }

    /// The `[openrtb]` notice base URL as bids use it (none when empty).
    pub fn notice_urls(&self) -> Result<crate::openrtb::NoticeUrls> {
        crate::openrtb::NoticeUrls::new(&self.openrtb.notice_base_url)
    }

    /// The budget section as the leases take it.
    pub fn lease_config(&self) -> LeaseConfig {
        LeaseConfig {
            chunk_share: self.budget.lease_share,
            ttl_ns: self.budget.lease_ttl_ms.saturating_mul(1_000_000),
        }
    }

    /// The configured backend.
    pub fn backend_kind(&self) -> Result<BackendKind> {
        self.backend
            .parse()
            .map_err(|e| Error::Config(format!("`backend`: {e}")))
    }

    /// The cache section as the store takes it.
    pub fn cache_config(&self) -> CacheConfig {
        CacheConfig {
            capacity: self.cache.capacity,
            ttl_ns: self.cache.ttl_ms.saturating_mul(1_000_000),
        }
    }

    /// The frequency section as the store takes it.
    pub fn frequency_config(&self) -> FrequencyConfig {
        FrequencyConfig {
            capacity: self.frequency.capacity,
        }
    }
}

fn read_config(path: &Path) -> Result<String> {
    let bytes = crate::builder::read_limited(path, CONFIG_BYTES_MAX, "config")?;
    String::from_utf8(bytes).map_err(|_| Error::Config(format!("{} is not UTF-8", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_overrides_defaults_and_keeps_the_rest() {
        let config = EngineConfig::from_toml_str(
            "seed = 9\n[batch]\nbatch_max = 32\n[decide.weights]\nrevenue = 0.8\n",
        )
        .unwrap();
        assert_eq!(config.seed, 9);
        assert_eq!(config.batch.batch_max, 32);
        assert_eq!(config.batch.wait_us_max, 500);
        assert_eq!(config.decide.weights.revenue, 0.8);
        assert_eq!(config.decide.weights.click, 1.0);
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("[batch]\nbatch_maxx = 3\n", "batch_maxx"),
            ("[batch]\nbatch_max = \"many\"\n", "batch_max"),
            ("[batch]\nbatch_max = 0\n", "batch.batch_max"),
            ("in_flight_max = 0\n", "in_flight_max"),
            ("backend = \"gpu\"\n", "backend"),
            ("train_serve_skew = \"error\"\n", "train_serve_skew"),
            ("[decide]\ntop_k = 99\n", "decide.top_k"),
            ("[budget]\nlease_share = 2.0\n", "budget.lease_share"),
            ("[budget]\nlease_share = nan\n", "budget.lease_share"),
            ("[budget]\nlease_ttl_ms = 0\n", "budget.lease_ttl_ms"),
            (
                "[openrtb]\nnotice_base_url = \"127.0.0.1:8080\"\n",
                "openrtb.notice_base_url",
            ),
            ("[openrtb]\nnotice_url = \"\"\n", "notice_url"),
            ("seed = [", "seed"),
        ];
        for (text, needle) in cases {
            let err = EngineConfig::from_toml_str(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }

    #[test]
    fn the_example_in_the_config_docs_parses() {
        let doc = include_str!("../../docs/CONFIG.md");
        let start = doc.find("```toml\n").expect("an example") + "```toml\n".len();
        let end = start + doc[start..].find("```").expect("closed");
        let config = EngineConfig::from_toml_str(&doc[start..end]).expect("valid");
        assert_eq!(config.seed, 42);
        assert_eq!(config.batch.batch_max, 32);
        assert_eq!(config.decide.top_k, 1);
    }

    #[test]
    fn a_missing_file_is_an_error_not_the_defaults() {
        let err = EngineConfig::load(Some(Path::new("/nonexistent/cx.toml"))).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/cx.toml"), "{err}");
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's test jail returns its own error type
    fn environment_overrides_the_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("cx.toml", "seed = 1\n[batch]\nbatch_max = 8\n")?;
            jail.set_env("CX_ENGINE_SEED", "7");
            jail.set_env("CX_ENGINE_BATCH__WAIT_US_MAX", "100");
            let config = EngineConfig::load(Some(Path::new("cx.toml"))).expect("loads");
            assert_eq!(config.seed, 7);
            assert_eq!(config.batch.batch_max, 8);
            assert_eq!(config.batch.wait_us_max, 100);
            Ok(())
        });
    }
}
