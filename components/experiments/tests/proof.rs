//! The evidence behind the statistics (docs/EXPERIMENTS.md quotes what
//! these print; run with `--nocapture` to see it).
//!
//! - A/A with continuous peeking: both arms click at 0.05 (a Bernoulli draw
//!   per impression from a seeded SplitMix64), read after every 100
//!   impressions per arm up to 20,000 per arm, over 2,000 seeds. The mSPRT's false-positive rate stays
//!   at or below alpha = 0.05; the fixed-horizon z-test read at the same
//!   looks exceeds it.
//! - A/B: 0.05 against 0.06, same looks (up to 50,000 per arm), 1,000
//!   seeds: the mSPRT detects the lift; the median impressions it took is
//!   printed.
//! - SRM: 200 seeds of 40,000 users with random ids, assigned through
//!   GrowthBook hashing. A 50/50 experiment checked against 50/50 is
//!   flagged about as often as p < 0.001 allows (0.1% of runs); a 52/48
//!   split checked against the configured 50/50 is always flagged.

use cx_experiments::stats::fixed::z_test;
use cx_experiments::stats::sequential::{SequentialConfig, SequentialMonitor};
use cx_experiments::stats::srm::srm;
use cx_experiments::stats::VariantCounts;
use cx_experiments::Experiment;
use serde_json::json;
use std::fmt::Write as _;

/// Seeds of the A/A runs: 2,000, so that the estimated false-positive
/// rates are within about ±0.007 (two standard errors) of the true ones.
const AA_SEEDS: u64 = 2_000;
/// Seeds of the A/B runs.
const AB_SEEDS: u64 = 1_000;
/// Seeds of the SRM runs (40,000 hashed user ids each).
const SRM_SEEDS: u64 = 200;
const BATCH: u64 = 100;
const ALPHA: f64 = 0.05;
const CTR: f64 = 0.05;

/// SplitMix64 (Steele, Lea and Flood 2014), seeded per run: a small,
/// well-tested generator that stays fast in a debug build (the ChaCha of
/// `rand_chacha` is not optimised there and made these tests take 20 s).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform double in `[0, 1)` from the top 53 bits.
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// One Bernoulli(`p`) draw.
    fn bernoulli(&mut self, p: f64) -> bool {
        self.uniform() < p
    }
}

/// Adds `BATCH` impressions, each a Bernoulli(`ctr`) click draw, to `arm`.
fn serve(rng: &mut SplitMix64, arm: &mut VariantCounts, ctr: f64) {
    arm.impressions += BATCH;
    arm.clicks += (0..BATCH).filter(|_| rng.bernoulli(ctr)).count() as u64;
}

/// One simulated experiment read after every batch, up to `per_arm`
/// impressions per arm.
struct Run {
    /// Impressions per arm at the mSPRT's first rejection.
    sequential_at: Option<u64>,
    /// Whether the z-test rejected at any look.
    naive_any: bool,
    /// Whether the z-test rejected at the last look alone.
    naive_final: bool,
    /// Sign of the difference when the mSPRT rejected.
    sequential_positive: bool,
}

/// With `stop_at_rejection`, the run ends at the mSPRT's first rejection
/// (the z-test fields are then meaningless).
fn simulate(seed: u64, ctr_a: f64, ctr_b: f64, per_arm: u64, stop_at_rejection: bool) -> Run {
    let mut rng = SplitMix64(seed);
    let mut monitor = SequentialMonitor::new(SequentialConfig::default()).expect("config");
    let (mut a, mut b) = (VariantCounts::default(), VariantCounts::default());
    let mut run = Run {
        sequential_at: None,
        naive_any: false,
        naive_final: false,
        sequential_positive: false,
    };
    while a.impressions < per_arm {
        serve(&mut rng, &mut a, ctr_a);
        serve(&mut rng, &mut b, ctr_b);
        let look = monitor.observe(&a, &b).expect("counts");
        if look.rejects && run.sequential_at.is_none() {
            run.sequential_at = Some(a.impressions);
            run.sequential_positive = look.difference > 0.0;
            if stop_at_rejection {
                break;
            }
        }
        let z = z_test(&a, &b).expect("counts");
        run.naive_any |= z.significant(ALPHA);
        run.naive_final = z.significant(ALPHA);
    }
    run
}

fn rate(count: usize, seeds: u64) -> f64 {
    count as f64 / seeds as f64
}

#[test]
fn aa_sequential_holds_alpha_and_peeking_at_the_z_test_does_not() {
    let seeds = AA_SEEDS;
    let runs: Vec<Run> = (0..seeds)
        .map(|s| simulate(s, CTR, CTR, 20_000, false))
        .collect();
    let sequential = rate(
        runs.iter().filter(|r| r.sequential_at.is_some()).count(),
        seeds,
    );
    let naive = rate(runs.iter().filter(|r| r.naive_any).count(), seeds);
    let once = rate(runs.iter().filter(|r| r.naive_final).count(), seeds);
    println!(
        "A/A, {seeds} seeds, CTR {CTR}, a look every {BATCH} impressions per arm up to 20000 (200 looks):\n  \
         mSPRT false-positive rate {sequential:.3}; z-test peeked at every look {naive:.3}; \
         z-test read once at 20000 {once:.3}"
    );
    assert!(
        sequential <= ALPHA,
        "the mSPRT's false-positive rate {sequential} exceeds alpha"
    );
    assert!(
        naive > ALPHA,
        "peeking at the z-test did not inflate its error ({naive})"
    );
    assert!(
        naive > 2.0 * sequential.max(0.01),
        "peeking {naive} vs sequential {sequential}"
    );
    assert!(
        once <= 0.1,
        "the z-test read once is far off its alpha: {once}"
    );
}

#[test]
fn ab_lift_is_detected_by_the_sequential_test() {
    let seeds = AB_SEEDS;
    let per_arm = 50_000;
    let runs: Vec<Run> = (0..seeds)
        .map(|s| simulate(1_000_000 + s, 0.05, 0.06, per_arm, true))
        .collect();
    let mut at: Vec<u64> = runs.iter().filter_map(|r| r.sequential_at).collect();
    at.sort_unstable();
    let detected = rate(at.len(), seeds);
    let wrong_way = runs
        .iter()
        .filter(|r| r.sequential_at.is_some() && !r.sequential_positive)
        .count();
    let median = at[at.len() / 2];
    let (p10, p90) = (at[at.len() / 10], at[at.len() * 9 / 10]);
    println!(
        "A/B 0.05 vs 0.06, {seeds} seeds, looks every {BATCH} per arm up to {per_arm}:\n  \
         mSPRT detected in {detected:.3} of runs; impressions per arm at detection: median {median} \
         (10th percentile {p10}, 90th {p90}); both arms together, median {}; wrong direction {wrong_way}",
        2 * median
    );
    assert!(detected >= 0.95, "only {detected} of A/B runs detected");
    assert_eq!(wrong_way, 0, "a detection picked the worse arm");
    assert!(median > 1_000 && median < 25_000, "median {median}");
}

/// Users per arm in the SRM runs (so 40,000 users in all).
const SRM_PER_ARM: usize = 20_000;

/// Assigns `2 * SRM_PER_ARM` random user ids (16 hex digits) through each
/// of `experiments`; returns the users per variation of each.
fn assign_users<const N: usize>(
    experiments: [&Experiment; N],
    seed: u64,
    id: &mut String,
) -> [[u64; 2]; N] {
    let mut rng = SplitMix64(seed);
    let mut counts = [[0u64; 2]; N];
    for _ in 0..2 * SRM_PER_ARM {
        id.clear();
        write!(id, "{:016x}", rng.next_u64()).expect("write id");
        for (experiment, counts) in experiments.iter().zip(counts.iter_mut()) {
            let a = experiment.assign(id);
            assert!(a.in_experiment, "full coverage puts everybody in");
            counts[a.variation_id] += 1;
        }
    }
    counts
}

#[test]
fn srm_flags_a_skewed_split_and_not_a_fair_one() {
    let seeds = SRM_SEEDS;
    let fair_v1 =
        Experiment::from_value(&json!({"key": "fair", "variations": [0, 1]})).expect("fair");
    let fair_v2 =
        Experiment::from_value(&json!({"key": "fair", "variations": [0, 1], "hashVersion": 2}))
            .expect("fair");
    let skewed = Experiment::from_value(
        &json!({"key": "skewed", "variations": [0, 1], "weights": [0.52, 0.48], "hashVersion": 2}),
    )
    .expect("skewed");
    let configured = [0.5, 0.5];
    let mut id = String::with_capacity(16);
    let (mut false_v1, mut false_v2, mut caught) = (0, 0, 0);
    let mut worst_fair_p: f64 = 1.0;
    let mut fair_users = [0u64; 2];
    for seed in 0..seeds {
        let [v1, v2, skew] = assign_users([&fair_v1, &fair_v2, &skewed], 2_000_000 + seed, &mut id);
        let (c1, c2) = (
            srm(&v1, &configured).expect("srm"),
            srm(&v2, &configured).expect("srm"),
        );
        false_v1 += usize::from(c1.flagged);
        false_v2 += usize::from(c2.flagged);
        worst_fair_p = worst_fair_p.min(c1.p_value).min(c2.p_value);
        caught += usize::from(srm(&skew, &configured).expect("srm").flagged);
        for (i, total) in fair_users.iter_mut().enumerate() {
            *total += v1[i] + v2[i];
        }
    }
    let share = fair_users[0] as f64 / (fair_users[0] + fair_users[1]) as f64;
    println!(
        "SRM, {seeds} seeds, 40000 random user ids each, flagged at p < 0.001:\n  \
         fair 50/50 flagged {false_v1} times (hash v1) and {false_v2} times (hash v2), smallest p {worst_fair_p:.2e}, \
         share of variation 0 over all fair runs {share:.5}; \
         52/48 against a configured 50/50 flagged {caught} of {seeds}"
    );
    assert_eq!(caught, seeds as usize, "a 52/48 split went unflagged");
    // 0.1% of fair runs are flagged by chance: 0.4 expected here over both
    // hash versions; allow a Poisson-sized excess, not a broken hash.
    let expected = 2.0 * 0.001 * seeds as f64;
    assert!(
        ((false_v1 + false_v2) as f64) < expected + 4.0,
        "fair splits flagged {false_v1} + {false_v2} times"
    );
    // 16 million fair assignments: the share's standard error is 0.00013.
    assert!((share - 0.5).abs() < 0.001, "fair share {share}");
}
