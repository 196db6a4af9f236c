//! What one request carries on its way through the engine's schedule: the
//! stages ([`Stage`]), the phase a request is in ([`Phase`]), and the
//! components of a request entity.
//!
//! # Data layout
//!
//! A request entity is spawned once, when the pipeline is installed, and
//! recycled: the engine keeps a fixed pool of them (the in-flight limit),
//! and a submission takes a free one instead of spawning. Every component
//! is inserted at spawn and stays, so an entity never changes archetype and
//! its table row never moves; advancing a request writes its [`Phase`] and
//! moves its entity from one stage's queue to the next (the queues are
//! `cx-systems`' `RequestQueues`), so each system visits exactly its own
//! entities. `docs/ARCHITECTURE.md` gives the benchmark behind this choice:
//! per-stage queues cost about 100 ns per request through all seven stages,
//! against about 350 ns for spawning, despawning and scanning a phase enum,
//! and over 1 µs for moving sparse-set marker components.
//!
//! The bulky per-request data is in components, next to the rest:
//! [`FeatureRow`] (the sparse feature row inline, about 1 KiB), [`Scores`]
//! (one probability per model output column, a buffer allocated once per
//! entity) and [`Decision`] (fixed size, `Copy`). The inference system
//! gathers a batch's rows, normalised, into one contiguous compressed-sparse
//! block for the kernels, so the kernels read contiguous memory whatever
//! the table order.
//!
//! Stage order and who writes what: `docs/ARCHITECTURE.md`.

pub use cx_decision::{
    ChosenOffer, Decision, Factor, FactorKind, NoBidCause, Objective, ScoreSource, Ticket,
    FACTOR_KINDS, OBJECTIVES, TOP_K_MAX,
};

pub use crate::catalog::ImpRules;

use bevy_ecs::prelude::{Component, SystemSet};
use cx_features::{RequestContext, SPARSE_NONZERO_MAX};
use std::fmt;

/// The pipeline's stages, in schedule order. Each is a system set: a host
/// orders its own systems between them (`.after(Stage::Decide)
/// .before(Stage::Respond)`). The same enum indexes the per-stage time
/// stamps ([`StageTimes`]) and latency histograms.
#[derive(SystemSet, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// Takes submissions from the ingress onto free request entities.
    Ingest,
    /// Extracts each request's sparse feature row and fingerprint.
    Features,
    /// Looks each fingerprint up in the decision cache.
    Cache,
    /// Scores cache misses through the backend chain, in batches.
    Infer,
    /// Checks model output; stores it in the cache or replaces it with the
    /// fallback scorer's.
    Validate,
    /// Applies the rules and the blend, ranks, and spends the winner's cap
    /// and budget.
    Decide,
    /// Hands decisions to the egress and frees the entities.
    Respond,
}

impl Stage {
    /// Number of stages.
    pub const COUNT: usize = 7;

    /// Every stage, in schedule order.
    pub const ALL: [Stage; Stage::COUNT] = [
        Stage::Ingest,
        Stage::Features,
        Stage::Cache,
        Stage::Infer,
        Stage::Validate,
        Stage::Decide,
        Stage::Respond,
    ];

    /// Position in [`Stage::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The stage's name in metrics and stats.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Ingest => "ingest",
            Stage::Features => "features",
            Stage::Cache => "cache",
            Stage::Infer => "infer",
            Stage::Validate => "validate",
            Stage::Decide => "decide",
            Stage::Respond => "respond",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a request entity is: free in the pool, or waiting for a stage.
/// The stage queues are the truth the systems act on; the phase is kept on
/// the entity so that every system can assert that what it takes from its
/// queue is in the phase it expects, and so that a World can be inspected.
#[derive(Component, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Phase {
    /// In the pool; its other components hold leftovers of an earlier request.
    #[default]
    Free,
    /// Waiting for this stage to take it.
    Awaiting(Stage),
}

/// What a host submits: one request context, whether to decide in
/// simulation mode (the same decision, but no caps or budgets spent and no
/// cache entry written), the advertisers the request blocks, and what the
/// impression allows (which offers can be shown there).
#[derive(Component, Clone, Debug, Default, PartialEq)]
pub struct Request {
    /// The request as the feature schema reads it. A `timestamp` of 0 is
    /// replaced by the tick's time when the request is ingested.
    pub ctx: RequestContext,
    /// Decide without changing any state.
    pub simulate: bool,
    /// Advertiser domains the request blocks (OpenRTB `badv`): an offer
    /// with any of them among its `adomain` is not eligible
    /// ([`NoBidCause::BlockedAdvertiser`]). Empty for most requests, so
    /// it costs nothing then.
    pub blocked_domains: Vec<String>,
    /// What the impression allows: the kinds it offers and what a creative
    /// must fit, the attributes (`battr`) and categories (`bcat`) it
    /// blocks. An offer that cannot be shown there is not eligible
    /// ([`NoBidCause::NoCreative`], [`NoBidCause::BlockedCategory`],
    /// [`NoBidCause::BlockedAttribute`]). The default (any kind, nothing
    /// blocked, no creative needed) is for requests that are not ad
    /// slots, such as a binary `score_context`; it holds no heap memory.
    pub imp: ImpRules,
    /// How its decision settles money and caps: [`Settlement::Direct`]
    /// (the decision is the placement; the default) or
    /// [`Settlement::Auction`] (an OpenRTB bid: reserved until the win or
    /// loss notice, or the win window's end; `docs/FEEDBACK.md`).
    pub settlement: crate::store::Settlement,
}

impl From<RequestContext> for Request {
    /// A request to decide for real (not simulated), blocking nothing.
    fn from(ctx: RequestContext) -> Self {
        Self {
            ctx,
            ..Self::default()
        }
    }
}

/// A request's sparse feature row, inline: the non-zero `(column, value)`
/// pairs in ascending column order, at most [`SPARSE_NONZERO_MAX`] of them.
#[derive(Component, Clone, Debug, PartialEq)]
pub struct FeatureRow {
    len: u16,
    columns: [u32; SPARSE_NONZERO_MAX],
    values: [f32; SPARSE_NONZERO_MAX],
}

impl Default for FeatureRow {
    fn default() -> Self {
        Self {
            len: 0,
            columns: [0; SPARSE_NONZERO_MAX],
            values: [0.0; SPARSE_NONZERO_MAX],
        }
    }
}

impl FeatureRow {
    /// The row's pairs: `(columns, values)`, equally long.
    pub fn pairs(&self) -> (&[u32], &[f32]) {
        let len = usize::from(self.len);
        (&self.columns[..len], &self.values[..len])
    }

    /// The whole capacity, for extraction to write into, and the length to
    /// set afterwards through [`FeatureRow::set_len`].
    pub fn buffers_mut(&mut self) -> (&mut [u32], &mut [f32]) {
        (&mut self.columns, &mut self.values)
    }

    /// Records that the first `len` pairs are in use.
    ///
    /// # Panics
    /// When `len` exceeds [`SPARSE_NONZERO_MAX`]: extraction never writes
    /// more, so a longer row is a broken invariant.
    pub fn set_len(&mut self, len: usize) {
        assert!(
            len <= SPARSE_NONZERO_MAX,
            "a feature row holds at most {SPARSE_NONZERO_MAX} pairs, not {len}"
        );
        self.len = len as u16;
    }
}

/// A request's click probabilities, one per model output column, and where
/// they came from. The buffer is allocated once per entity, as wide as the
/// serving model, and resized only when a swapped-in model is wider or
/// narrower.
#[derive(Component, Clone, Debug, Default, PartialEq)]
pub struct Scores {
    /// Where [`Scores::probability`] came from.
    pub source: ScoreSource,
    /// Calibrated click probability per model output column.
    pub probability: Vec<f32>,
}

impl Scores {
    /// Zeroed scores for a model with `width` output columns.
    pub fn with_width(width: usize) -> Self {
        Self {
            source: ScoreSource::None,
            probability: vec![0.0; width],
        }
    }

    /// Copies `row` in and records `source`.
    ///
    /// # Panics
    /// When `row` is not as wide as the buffer: every row the pipeline
    /// copies (cache entries, readouts) has the serving model's width.
    pub fn set(&mut self, row: &[f32], source: ScoreSource) {
        self.probability.copy_from_slice(row);
        self.source = source;
    }
}

/// What the cache and the decide stage need to know about a request's
/// features, computed once by the features system.
#[derive(Component, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fingerprint {
    /// Hash of the model id and the sparse feature row: the cache key.
    pub key: u64,
    /// The feature row is valid until this time (unix ns): the end of the
    /// hour its time features were computed for.
    pub valid_until_ns: u64,
    /// Hash of the user id, for frequency caps; 0 when the user is unknown.
    pub user_hash: u64,
}

/// Host-clock and wall-clock stamps of one request.
///
/// `*_ns` fields are on the host's clock (what `tick(now)` passes), which the
/// engine's decisions depend on. `*_raw` fields are raw `quanta` counter
/// readings, used only for the latency statistics; they never influence a
/// decision.
#[derive(Component, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StageTimes {
    /// Host time of the tick that ingested the request.
    pub ingested_ns: u64,
    /// When `submit` accepted it.
    pub submitted_raw: u64,
    /// When each stage's system started its run that took this request,
    /// indexed by [`Stage::index`]; 0 for a stage it skipped (a cache hit
    /// skips infer and validate).
    pub stage_raw: [u64; Stage::COUNT],
}

impl StageTimes {
    /// Records that `stage` took the request at `raw`.
    pub fn stamp(&mut self, stage: Stage, raw: u64) {
        self.stage_raw[stage.index()] = raw;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_are_indexed_in_schedule_order() {
        for (i, stage) in Stage::ALL.iter().enumerate() {
            assert_eq!(stage.index(), i);
        }
        let names: Vec<&str> = Stage::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(
            names,
            ["ingest", "features", "cache", "infer", "validate", "decide", "respond"]
        );
    }

    #[test]
    fn a_feature_row_exposes_only_the_pairs_in_use() {
        let mut row = FeatureRow::default();
        let (c, v) = row.buffers_mut();
        assert_eq!(c.len(), SPARSE_NONZERO_MAX);
        c[..2].copy_from_slice(&[3, 9]);
        v[..2].copy_from_slice(&[1.0, 0.5]);
        row.set_len(2);
        assert_eq!(row.pairs(), (&[3u32, 9][..], &[1.0f32, 0.5][..]));
    }

    #[test]
    #[should_panic(expected = "at most")]
    fn a_feature_row_longer_than_its_capacity_is_a_broken_invariant() {
        FeatureRow::default().set_len(SPARSE_NONZERO_MAX + 1);
    }

    #[test]
    fn scores_copy_rows_of_their_own_width() {
        let mut scores = Scores::with_width(3);
        scores.set(&[0.1, 0.2, 0.3], ScoreSource::Model);
        assert_eq!(scores.probability, [0.1, 0.2, 0.3]);
        assert_eq!(scores.source, ScoreSource::Model);
        let wrong = std::panic::catch_unwind(move || {
            let mut scores = scores;
            scores.set(&[0.1], ScoreSource::Cache);
        });
        assert!(wrong.is_err(), "a row of another width is refused");
    }
}
