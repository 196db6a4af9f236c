//! Assignment: which variation a user gets, in GrowthBook's order of steps
//! (its `runExperiment`), allocation-free.
//!
//! 1. Fewer than two variations, or a disabled context: not in the
//!    experiment.
//! 2. A variation forced by the context (`forcedVariations`): that one,
//!    without hashing.
//! 3. `active: false` or `status: "draft"`: not in.
//! 4. No hash value (missing or falsy hash attribute): not in.
//! 5. `filters`, when there are any, must all pass; else `namespace` must.
//! 6. The bucket: `hash(seed, value, hashVersion)`; an unknown hash version
//!    puts nobody in. The variation is the range holding the bucket; none
//!    (coverage) means not in.
//! 7. `force` in the experiment: that variation, marked as not hashed.
//! 8. QA mode, or `status: "stopped"`: not in.
//! 9. Otherwise in the experiment, with the bucket.
//!
//! An index outside the variations (a forced or ranged one) gives variation
//! 0 and not in the experiment, as in GrowthBook.

use crate::attrs::{hash_text, Attributes, OneAttribute};
use crate::bucket::{choose_variation, in_namespace_seeded};
use crate::experiment::{Experiment, Filter};
use crate::hash::hash;
use serde::Serialize;

/// The outcome of assigning one user.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Assignment {
    /// The variation served (0, the control, when not in the experiment).
    pub variation_id: usize,
    /// Whether the user is in the experiment (counted in its statistics).
    pub in_experiment: bool,
    /// Whether the variation came from the hash (not forced).
    pub hash_used: bool,
    /// The user's bucket in `[0, 1)`, when assigned by the hash.
    pub bucket: Option<f64>,
    /// Why: which step decided.
    pub reason: Reason,
}

/// The step of assignment that decided the outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Assigned by the hash.
    Assigned,
    /// Fewer than two variations.
    TooFewVariations,
    /// The context is disabled.
    Disabled,
    /// Forced by the context's `forcedVariations`.
    ForcedByContext,
    /// `active: false` or `status: "draft"`.
    Inactive,
    /// The hash attribute is missing or falsy.
    NoHashValue,
    /// A filter excluded the user.
    FilteredOut,
    /// Outside the experiment's namespace.
    NotInNamespace,
    /// `hashVersion` is neither 1 nor 2.
    UnknownHashVersion,
    /// The bucket is in no variation's range (coverage).
    NotCovered,
    /// Forced by the experiment's `force`.
    ForcedByExperiment,
    /// The context is in QA mode.
    QaMode,
    /// `status: "stopped"`.
    Stopped,
}

/// What the context adds to the attributes (GrowthBook's context fields
/// besides `attributes`). The default is an enabled context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOptions {
    /// `enabled`: false puts nobody in any experiment.
    pub enabled: bool,
    /// `qaMode`: hashing is skipped; only forced variations are served.
    pub qa_mode: bool,
    /// `forcedVariations[key]` of this experiment, if the context has one.
    pub forced_variation: Option<i64>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            enabled: true,
            qa_mode: false,
            forced_variation: None,
        }
    }
}

impl Experiment {
    /// Assigns the user whose hash attribute is `hash_value`, in an enabled
    /// context. Filters on another attribute find it missing and exclude the
    /// user; use [`Experiment::assign_with`] to give more attributes.
    pub fn assign(&self, hash_value: &str) -> Assignment {
        let attrs = OneAttribute {
            name: &self.hash_attribute,
            value: hash_value,
        };
        self.assign_with(&attrs, &RunOptions::default())
    }

    /// Assigns the user with `attrs` under `options` (GrowthBook's `run`).
    pub fn assign_with<A: Attributes + ?Sized>(
        &self,
        attrs: &A,
        options: &RunOptions,
    ) -> Assignment {
        if self.variations.len() < 2 {
            return self.outcome(None, false, None, Reason::TooFewVariations);
        }
        if !options.enabled {
            return self.outcome(None, false, None, Reason::Disabled);
        }
        if let Some(forced) = options.forced_variation {
            return self.outcome(Some(forced), false, None, Reason::ForcedByContext);
        }
        if !self.active {
            return self.outcome(None, false, None, Reason::Inactive);
        }
        let Some(text) = attrs.attribute(&self.hash_attribute).and_then(hash_text) else {
            return self.outcome(None, false, None, Reason::NoHashValue);
        };
        let value = text.as_str();
        if let Some(reason) = self.excluded(attrs, value) {
            return self.outcome(None, false, None, reason);
        }
        let Some(version) = self.hash_version else {
            return self.outcome(None, false, None, Reason::UnknownHashVersion);
        };
        let n = hash(&self.seed, value, version);
        let Some(assigned) = choose_variation(n, &self.ranges) else {
            return self.outcome(None, false, None, Reason::NotCovered);
        };
        if let Some(forced) = self.force {
            return self.outcome(Some(forced), false, None, Reason::ForcedByExperiment);
        }
        if options.qa_mode {
            return self.outcome(None, false, None, Reason::QaMode);
        }
        if self.stopped {
            return self.outcome(None, false, None, Reason::Stopped);
        }
        // `assigned` indexes `ranges`, which fits in i64.
        self.outcome(Some(assigned as i64), true, Some(n), Reason::Assigned)
    }

    /// Step 5: filters when there are any, else the namespace.
    fn excluded<A: Attributes + ?Sized>(&self, attrs: &A, value: &str) -> Option<Reason> {
        if !self.filters.is_empty() {
            let out = self.filters.iter().any(|f| filtered_out(f, attrs));
            return out.then_some(Reason::FilteredOut);
        }
        let ns = self.namespace.as_ref()?;
        (!in_namespace_seeded(value, &ns.seed, ns.start, ns.end)).then_some(Reason::NotInNamespace)
    }

    /// GrowthBook's `getExperimentResult`: an index outside the variations
    /// (or none) is variation 0, not in the experiment.
    fn outcome(
        &self,
        index: Option<i64>,
        hash_used: bool,
        bucket: Option<f64>,
        reason: Reason,
    ) -> Assignment {
        let valid = index
            .and_then(|i| usize::try_from(i).ok())
            .filter(|&i| i < self.variations.len());
        Assignment {
            variation_id: valid.unwrap_or(0),
            in_experiment: valid.is_some(),
            hash_used,
            bucket,
            reason,
        }
    }
}

/// Whether `filter` excludes the user: no value for its attribute, an
/// unknown hash version, or a bucket in none of its ranges.
fn filtered_out<A: Attributes + ?Sized>(filter: &Filter, attrs: &A) -> bool {
    let Some(text) = attrs.attribute(&filter.attribute).and_then(hash_text) else {
        return true;
    };
    let Some(version) = filter.version else {
        return true;
    };
    let n = hash(&filter.seed, text.as_str(), version);
    !filter.ranges.iter().any(|r| r.contains(n))
}
