//! Bounded, allocation-free stores for the engine's mutable state.
//!
//! - [`DecisionCache`]: recent model score rows, keyed by a caller-computed
//!   64-bit hash of model id and feature row, with a time-to-live.
//! - [`FrequencyStore`]: impressions per (user, offer) in a fixed window, for
//!   frequency caps.
//! - [`BudgetLedger`]: spend per offer against a daily budget.
//! - [`Posteriors`]: discounted impressions, clicks and the model's
//!   expected clicks per offer, for Thompson sampling; [`PosteriorBackend`]
//!   holds it for the pipeline, alone or shared ([`shared_posteriors`]).
//! - [`DecisionLog`]: the recent decisions, and the join of feedback events
//!   against them.
//! - [`SharedFrequency`] and [`BudgetBank`] / [`LeasedBudgets`]: the same
//!   state shared by a process's workers, so that caps and budgets hold
//!   whichever worker decides.
//!
//! The pipeline reaches each through a narrow interface ([`ScoreCache`],
//! [`FrequencyCaps`], [`Budgets`]) and a closed enum of backends
//! ([`CacheBackend`], [`FrequencyBackend`], [`BudgetBackend`]); see
//! [`backend`] for how every operation maps onto a key-value command.
//!
//! Three rules hold for every store:
//!
//! 1. **All memory is allocated in `new`.** Sizes come from the config and are
//!    checked against documented limits there ([`crate::Error::BadStoreConfig`]
//!    names the field at fault). No method allocates afterwards, so a store
//!    never grows: when it is full it evicts, and says so in its statistics.
//! 2. **Time comes from the caller.** Every method that depends on time takes
//!    `now_ns: u64`, nanoseconds on the host's clock (the Unix epoch for the
//!    budget ledger, which needs calendar days). Nothing here reads a clock,
//!    so the engine is deterministic given its clock, and tests can jump time
//!    freely, backwards included.
//! 3. **No input panics.** Out-of-range indices, wrong row widths and
//!    non-finite amounts give an error, `None` or `false`.
//!
//! # Layout
//!
//! The two keyed stores are *set-associative*: `capacity` is rounded up to a
//! power of two (at least [`WAYS`]) and split into sets of [`WAYS`] entries. A
//! key hashes to one set and may live in any of its ways, so a lookup scans
//! at most eight neighbouring slots, with no probing chains, tombstones or
//! rehashing, and a full set evicts within itself. The price is that a set
//! can fill (and evict) while others still have room; with eight ways and a
//! good hash that costs a few percent of effective capacity.
//!
//! Each field lives in its own flat array (structure of arrays) rather than in
//! an array of entry structs: a lookup scans the eight keys of one set, which
//! are 64 contiguous bytes (one cache line), and only touches the other
//! arrays for the way that matched. The price is that reading a whole entry
//! touches one line per field instead of one line in all.

pub mod backend;
pub mod budget;
pub mod cache;
pub mod decision_log;
pub mod frequency;
pub mod hub;
pub mod lease;
pub mod posteriors;
pub mod shared;
pub mod shared_frequency;
pub mod shared_posteriors;
pub mod shared_win_rates;
pub mod snapshot;
pub mod state;
pub mod variants;
pub mod win_rates;

pub use backend::{
    BudgetBackend, Budgets, CacheBackend, FrequencyBackend, FrequencyCaps, ScoreCache,
};
pub use budget::{BudgetExhausted, BudgetLedger, BUDGET_MAX, OFFERS_MAX};
pub use cache::{
    CacheConfig, CacheStats, DecisionCache, CACHE_ENTRIES_MAX, CACHE_VALUE_BYTES_MAX,
    CACHE_WIDTH_MAX,
};
pub use decision_log::{
    DecisionLog, Effect, LogConfig, LogStats, LoggedDecision, Settlement, LOG_ENTRIES_MAX,
};
pub use frequency::{
    mix64, FrequencyConfig, FrequencyRecord, FrequencyStats, FrequencyStore, UserEntries,
    FREQUENCY_ENTRIES_MAX, OFFERS_PER_USER,
};
pub use hub::{Hub, Learned, Replica, Replicate};
pub use lease::{BudgetBank, LeaseConfig, LeasedBudgets};
pub use posteriors::{Posterior, PosteriorConfig, PosteriorStats, Posteriors};
pub use shared::SharedStores;
pub use shared_frequency::SharedFrequency;
pub use shared_posteriors::{PosteriorBackend, PosteriorHub, SharedPosteriors};
pub use shared_win_rates::{SharedWinRates, WinRateBackend, WIN_RATE_SHARDS};
pub use variants::{VariantBackend, VariantHub, VariantStats};
pub use win_rates::{shaded_bid, PlacementRecord, WinCurve, WinRateConfig, WinRates};

/// Entries per set in the set-associative stores.
pub const WAYS: usize = 8;

/// Number of sets for a requested capacity: the capacity rounded up to a
/// power of two, at least one full set, divided by [`WAYS`]. The caller has
/// already checked `capacity` against a limit that is a power of two, so the
/// rounding cannot overflow.
fn set_count(capacity: usize) -> usize {
    capacity.next_power_of_two().max(WAYS) / WAYS
}
