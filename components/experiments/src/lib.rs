//! Experiments: which variant a request gets, and what the variants'
//! outcomes say.
//!
//! - **Assignment, compatible with GrowthBook.** An experiment defined in
//!   GrowthBook (or in the same JSON/TOML shape) gives the same buckets
//!   here: its FNV-1a hashing, versions 1 and 2 ([`hash`]), bucket ranges
//!   with coverage and weights, namespaces ([`bucket`]), `seed`,
//!   `hashAttribute`, `force`, `active`, `filters` and `ranges`
//!   ([`Experiment`]). An [`Experiment`] is parsed once into a compact form
//!   with its ranges precomputed; [`Experiment::assign`] then hashes
//!   borrowed strings and allocates nothing. [`Context`] speaks
//!   GrowthBook's context and result JSON for tools and tests.
//!   Targeting conditions (GrowthBook's `evalCondition`) are not
//!   evaluated: an experiment with a non-empty `condition` is refused.
//! - **Statistics** ([`stats`]): per-variant counts and CTR intervals, the
//!   fixed-horizon z-test, the always-valid mSPRT, the Bayesian chance to
//!   beat control and the sample-ratio-mismatch check.
//!
//! `docs/EXPERIMENTS.md` describes both, with the compatibility cases and
//! the A/A and A/B evidence.

pub mod assign;
pub mod attrs;
pub mod bucket;
pub mod context;
pub mod experiment;
pub mod hash;
pub mod stats;

pub use assign::{Assignment, Reason, RunOptions};
pub use attrs::{AttrValue, Attributes, OneAttribute};
pub use bucket::BucketRange;
pub use context::Context;
pub use experiment::Experiment;
pub use hash::HashVersion;

/// The examples in `docs/EXPERIMENTS.md`, compiled and run as doctests.
#[doc = include_str!("../../../docs/EXPERIMENTS.md")]
#[cfg(doctest)]
pub struct GuideDoctests;

/// Everything this crate reports. Each variant names the field, parameter
/// or counts at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A JSON text could not be parsed.
    #[error("{what} is not valid JSON")]
    Json {
        /// What was being read: `experiment` or `context`.
        what: &'static str,
        /// The parser's error, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// A field of an experiment or context is missing or of the wrong
    /// shape.
    #[error("{field}: {problem}")]
    Field {
        /// The field's path, e.g. `filters[1].ranges[0]`.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The experiment uses targeting this crate does not evaluate.
    #[error(
        "{field}: targeting is not supported here (GrowthBook's conditions, groups and URL \
         rules are not evaluated); remove the field or leave it empty"
    )]
    Unsupported {
        /// The field, e.g. `condition`.
        field: String,
    },
    /// A statistics setting is out of range.
    #[error("{name} = {value}: expected {expected}")]
    Parameter {
        /// The setting, e.g. `alpha`.
        name: &'static str,
        /// Its value.
        value: f64,
        /// What it must be.
        expected: &'static str,
    },
    /// Counts that no statistic can use.
    #[error("{what} {reason}")]
    Counts {
        /// Which counts: `control`, `treatment`, `variant` or `srm`.
        what: &'static str,
        /// What is wrong with them.
        reason: String,
    },
}

impl Error {
    /// A field error.
    pub(crate) fn field(field: &str, problem: &str) -> Self {
        Self::Field {
            field: field.to_string(),
            problem: problem.to_string(),
        }
    }

    /// A counts error.
    pub(crate) fn counts(what: &'static str, reason: impl Into<String>) -> Self {
        Self::Counts {
            what,
            reason: reason.into(),
        }
    }

    /// The same error with its field path under `prefix` (`meta[2]` +
    /// `key` = `meta[2].key`).
    pub(crate) fn under(self, prefix: &str) -> Self {
        match self {
            Self::Field { field, problem } => Self::Field {
                field: format!("{prefix}.{field}"),
                problem,
            },
            other => other,
        }
    }
}
