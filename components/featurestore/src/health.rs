//! Health per stored feature: fresh, stale and missing reads, writes, and
//! the age of the values read, with a warning when a feature reads stale
//! too often.
//!
//! # Counting
//!
//! Every read counts each stored feature once: `fresh`, `stale` or
//! `missing` (a read of an entity the store does not hold counts every
//! feature missing). A read that finds a value (fresh or stale) records
//! its age in an [`AgeHistogram`]. Every value written counts a `write`
//! (one that lost to a newer value already held counts nothing). Computed
//! features are not counted: their freshness follows from their inputs'.
//!
//! # Ages
//!
//! The histogram has [`AGE_BUCKETS`] power-of-two buckets of seconds:
//! bucket 0 holds age 0, bucket `k` ages `2^(k-1)..2^k - 1`, the last
//! everything from `2^30` s up. A percentile is the upper bound of the
//! bucket it falls in: at most twice the true age, never below it. 32
//! counters per feature: recording is one increment, and the histograms of
//! several shards or two moments add and subtract exactly.
//!
//! # Warnings
//!
//! A feature is flagged when at least `warn_min_reads` reads were counted
//! and more than `stale_warn_share` of them were stale
//! ([`StoreConfig`](crate::StoreConfig)). The counters are totals since
//! the store was made; [`HealthReport::since`] gives the counts, ages and
//! warnings of the window between two reports, which is what a host that
//! logs warnings every minute wants.

/// Buckets of an [`AgeHistogram`].
pub const AGE_BUCKETS: usize = 32;

/// Ages in power-of-two buckets of seconds (see the [module docs](self)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AgeHistogram {
    counts: [u64; AGE_BUCKETS],
}

impl Default for AgeHistogram {
    fn default() -> Self {
        Self {
            counts: [0; AGE_BUCKETS],
        }
    }
}

impl AgeHistogram {
    /// Counts one value of `age_s` seconds.
    pub fn record(&mut self, age_s: u32) {
        self.counts[bucket(age_s)] += 1;
    }

    /// Values counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The upper bound, in seconds, of the bucket holding quantile `q`
    /// (in `[0, 1]`); `None` when empty.
    pub fn quantile_s(&self, q: f64) -> Option<u64> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (k, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(upper_bound_s(k));
            }
        }
        Some(upper_bound_s(AGE_BUCKETS - 1))
    }

    /// The counts per bucket.
    pub fn buckets(&self) -> &[u64; AGE_BUCKETS] {
        &self.counts
    }

    fn add(&mut self, other: &Self) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }

    fn minus(&self, earlier: &Self) -> Self {
        let mut out = *self;
        for (a, b) in out.counts.iter_mut().zip(&earlier.counts) {
            *a = a.saturating_sub(*b);
        }
        out
    }
}

fn bucket(age_s: u32) -> usize {
    ((u32::BITS - age_s.leading_zeros()) as usize).min(AGE_BUCKETS - 1)
}

fn upper_bound_s(k: usize) -> u64 {
    if k == AGE_BUCKETS - 1 {
        u64::from(u32::MAX)
    } else {
        (1u64 << k) - 1
    }
}

/// One stored feature's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FeatureCounts {
    /// Reads that found a value within its TTL.
    pub fresh: u64,
    /// Reads that found a value older than its TTL.
    pub stale: u64,
    /// Reads that found no value.
    pub missing: u64,
    /// Values written.
    pub writes: u64,
    /// Ages of the values read (fresh and stale).
    pub ages: AgeHistogram,
}

impl FeatureCounts {
    /// Fresh, stale and missing reads.
    pub fn reads(&self) -> u64 {
        self.fresh + self.stale + self.missing
    }

    pub(crate) fn add(&mut self, other: &Self) {
        self.fresh += other.fresh;
        self.stale += other.stale;
        self.missing += other.missing;
        self.writes += other.writes;
        self.ages.add(&other.ages);
    }

    fn minus(&self, earlier: &Self) -> Self {
        Self {
            fresh: self.fresh.saturating_sub(earlier.fresh),
            stale: self.stale.saturating_sub(earlier.stale),
            missing: self.missing.saturating_sub(earlier.missing),
            writes: self.writes.saturating_sub(earlier.writes),
            ages: self.ages.minus(&earlier.ages),
        }
    }
}

/// When a feature's health raises a warning.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WarnPolicy {
    /// Share of reads that may be stale, in `[0, 1]`; above it, a warning.
    pub stale_warn_share: f64,
    /// Reads needed before a share means anything.
    pub warn_min_reads: u64,
}

/// One stored feature's health.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureHealth {
    /// The feature.
    pub name: String,
    /// Its counters (totals, or a window's with [`HealthReport::since`]).
    pub counts: FeatureCounts,
    /// Stale reads over all reads (0 with no read).
    pub stale_share: f64,
    /// Whether the stale share is above the policy's.
    pub warning: bool,
}

impl FeatureHealth {
    fn new(name: String, counts: FeatureCounts, policy: WarnPolicy) -> Self {
        let reads = counts.reads();
        let stale_share = if reads == 0 {
            0.0
        } else {
            counts.stale as f64 / reads as f64
        };
        Self {
            name,
            counts,
            stale_share,
            warning: reads >= policy.warn_min_reads && stale_share > policy.stale_warn_share,
        }
    }

    /// Median age of the values read, seconds (a bucket's upper bound).
    pub fn age_p50_s(&self) -> Option<u64> {
        self.counts.ages.quantile_s(0.5)
    }

    /// 99th percentile of the age of the values read, seconds.
    pub fn age_p99_s(&self) -> Option<u64> {
        self.counts.ages.quantile_s(0.99)
    }
}

/// The health of every stored feature of a store.
#[derive(Clone, Debug, PartialEq)]
pub struct HealthReport {
    /// Per stored feature, in row order.
    pub features: Vec<FeatureHealth>,
    /// The policy the warnings were judged by.
    pub policy: WarnPolicy,
}

impl HealthReport {
    pub(crate) fn new(
        names: impl Iterator<Item = String>,
        counts: &[FeatureCounts],
        policy: WarnPolicy,
    ) -> Self {
        let features = names
            .zip(counts)
            .map(|(name, c)| FeatureHealth::new(name, *c, policy))
            .collect();
        Self { features, policy }
    }

    /// The features with a warning.
    pub fn warnings(&self) -> impl Iterator<Item = &FeatureHealth> {
        self.features.iter().filter(|f| f.warning)
    }

    /// Whether any feature has a warning: the flag a host logs.
    pub fn any_warning(&self) -> bool {
        self.warnings().next().is_some()
    }

    /// The health of the window since `earlier` (a report of the same
    /// store): counts and ages are differences, warnings judged on them.
    pub fn since(&self, earlier: &Self) -> Self {
        let features = self
            .features
            .iter()
            .map(|f| {
                let before = earlier
                    .features
                    .iter()
                    .find(|e| e.name == f.name)
                    .map(|e| e.counts)
                    .unwrap_or_default();
                FeatureHealth::new(f.name.clone(), f.counts.minus(&before), self.policy)
            })
            .collect();
        Self {
            features,
            policy: self.policy,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_powers_of_two() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(1), 1);
        assert_eq!((bucket(2), bucket(3)), (2, 2));
        assert_eq!(bucket(4), 3);
        assert_eq!(bucket(u32::MAX), AGE_BUCKETS - 1);
        for age in [0u32, 1, 2, 3, 5, 100, 86_400, 1 << 29] {
            let k = bucket(age);
            assert!(u64::from(age) <= upper_bound_s(k), "{age}");
            assert!(upper_bound_s(k) <= 2 * u64::from(age).max(1), "{age}");
        }
    }

    #[test]
    fn quantiles_are_bucket_upper_bounds() {
        let mut h = AgeHistogram::default();
        assert_eq!(h.quantile_s(0.5), None);
        for _ in 0..98 {
            h.record(10); // bucket 4: 8..15
        }
        h.record(1_000); // bucket 10: 512..1023
        h.record(100_000); // bucket 17
        assert_eq!(h.quantile_s(0.5), Some(15));
        assert_eq!(h.quantile_s(0.99), Some(1023));
        assert_eq!(h.quantile_s(1.0), Some((1 << 17) - 1));
    }

    #[test]
    fn warnings_need_enough_reads_and_a_high_stale_share() {
        let policy = WarnPolicy {
            stale_warn_share: 0.25,
            warn_min_reads: 10,
        };
        let counts = |fresh, stale| FeatureCounts {
            fresh,
            stale,
            ..FeatureCounts::default()
        };
        let r = HealthReport::new(
            ["a", "b", "c"].into_iter().map(String::from),
            &[counts(2, 3), counts(7, 3), counts(8, 2)],
            policy,
        );
        let flagged: Vec<_> = r.warnings().map(|f| f.name.as_str()).collect();
        assert_eq!(flagged, ["b"], "a has too few reads, c is at 20%");
        assert!(r.any_warning());
        // The window since r: only 10 fresh reads of b.
        let later = HealthReport::new(
            ["a", "b", "c"].into_iter().map(String::from),
            &[counts(2, 3), counts(17, 3), counts(8, 2)],
            policy,
        );
        let window = later.since(&r);
        assert_eq!(window.features[1].counts.fresh, 10);
        assert!(!window.any_warning());
    }
}
