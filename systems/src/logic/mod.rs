//! The pure domain logic behind each system: plain functions over plain
//! data, unit-tested without a World. The systems in [`crate::systems`] only
//! move data between ECS queries, resources and these functions.

mod decide;
mod explore;
mod feedback;
mod shading;
pub mod stored;
mod variants;

pub use decide::{bid_price, commit, decide, CommitRefusals, DecideInputs, StoredUser};
pub use explore::ExploreScratch;
pub use feedback::{apply_effect, logged_decision, DecisionFacts, EffectApplied};
pub use shading::{placement_key, shade_first, Priced};
pub use variants::choose_variant;

use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Nanoseconds per second.
pub const NS_PER_S: u64 = 1_000_000_000;

/// The cache key of a sparse feature row under one model: an xxh3 hash of
/// the values' bits, seeded with an xxh3 hash of the column indices seeded
/// with the model key. Two requests with the same key give the model the
/// same input. (Two one-shot hashes: for rows of up to 60 pairs each is
/// xxh3's short-input path, where one streaming hash of both arrays would
/// derive a seeded secret and buffer them.)
pub fn fingerprint(model_key: u64, columns: &[u32], values: &[f32]) -> u64 {
    let columns_hash = xxh3_64_with_seed(bytemuck::cast_slice(columns), model_key);
    xxh3_64_with_seed(bytemuck::cast_slice(values), columns_hash)
}

/// Until when (unix ns) a feature row computed for `timestamp_s` stays
/// valid: the end of its hour, since the schema's time features change
/// hourly. A negative timestamp gives 0 (never cacheable).
pub fn valid_until_ns(timestamp_s: i64) -> u64 {
    if timestamp_s < 0 {
        return 0;
    }
    let hour_end_s = (timestamp_s / 3600 + 1).checked_mul(3600);
    hour_end_s.map_or(u64::MAX, |s| (s as u64).saturating_mul(NS_PER_S))
}

/// The user's hash for frequency caps; 0 (no caps, no fatigue) when the
/// user is unknown. A real hash of 0 is moved to 1.
pub fn user_hash(user_id: &str) -> u64 {
    if user_id.is_empty() {
        return 0;
    }
    xxhash_rust::xxh3::xxh3_64(user_id.as_bytes()).max(1)
}

/// How many of `pending` rows to run through inference now, under the
/// Nagle-style [`BatchPolicy`](crate::config::BatchPolicy): all full batches,
/// plus the partial remainder when the ingress is drained or the oldest
/// pending row has waited at least `wait_ns_max`.
pub fn rows_to_run(
    pending: usize,
    batch_max: usize,
    ingress_drained: bool,
    oldest_wait_ns: u64,
    wait_ns_max: u64,
) -> usize {
    let batch_max = batch_max.max(1);
    let full = pending / batch_max * batch_max;
    if ingress_drained || oldest_wait_ns >= wait_ns_max {
        pending
    } else {
        full
    }
}

/// Whether every probability in `row` is usable: finite and in `[0, 1]`.
pub fn probabilities_valid(row: &[f32]) -> bool {
    !row.is_empty() && row.iter().all(|p| (0.0..=1.0).contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_tell_rows_and_models_apart() {
        let base = fingerprint(1, &[3, 9], &[1.0, 0.5]);
        assert_eq!(base, fingerprint(1, &[3, 9], &[1.0, 0.5]));
        assert_ne!(base, fingerprint(2, &[3, 9], &[1.0, 0.5]), "model");
        assert_ne!(base, fingerprint(1, &[3, 8], &[1.0, 0.5]), "column");
        assert_ne!(base, fingerprint(1, &[3, 9], &[1.0, 0.25]), "value");
        assert_ne!(base, fingerprint(1, &[3], &[1.0]), "length");
    }

    #[test]
    fn rows_are_valid_until_the_end_of_their_hour() {
        assert_eq!(valid_until_ns(0), 3600 * NS_PER_S);
        assert_eq!(valid_until_ns(3599), 3600 * NS_PER_S);
        assert_eq!(valid_until_ns(3600), 7200 * NS_PER_S);
        assert_eq!(valid_until_ns(-5), 0);
        assert_eq!(valid_until_ns(i64::MAX), u64::MAX, "saturates");
    }

    #[test]
    fn unknown_users_hash_to_zero_and_known_ones_never_do() {
        assert_eq!(user_hash(""), 0);
        assert_ne!(user_hash("u1"), 0);
        assert_ne!(user_hash("u1"), user_hash("u2"));
    }

    #[test]
    fn the_batch_plan_holds_only_a_partial_batch_with_work_queued() {
        // 40 pending, batches of 16: two full batches always run.
        assert_eq!(rows_to_run(40, 16, false, 0, 500_000), 32);
        // The remainder runs when nothing is queued behind it...
        assert_eq!(rows_to_run(40, 16, true, 0, 500_000), 40);
        // ...or when the oldest row has waited long enough.
        assert_eq!(rows_to_run(40, 16, false, 500_000, 500_000), 40);
        assert_eq!(rows_to_run(5, 16, false, 10, 500_000), 0);
        assert_eq!(rows_to_run(0, 16, true, 0, 0), 0);
        // A zero batch size is treated as 1, never a division by zero.
        assert_eq!(rows_to_run(3, 0, false, 0, 1), 3);
    }

    #[test]
    fn probabilities_must_be_finite_and_in_the_unit_interval() {
        assert!(probabilities_valid(&[0.0, 0.5, 1.0]));
        assert!(!probabilities_valid(&[0.5, f32::NAN]));
        assert!(!probabilities_valid(&[1.0001]));
        assert!(!probabilities_valid(&[-0.1]));
        assert!(!probabilities_valid(&[f32::INFINITY]));
        assert!(!probabilities_valid(&[]));
    }
}
