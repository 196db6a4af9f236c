//! Win rates against bid price, per placement, learnt from win and loss
//! notices: what bid shading prices with.
//!
//! For each placement (a key the caller makes, e.g. of the site or app and
//! the slot's size) the store counts bids and wins in [`PRICE_BUCKETS`]
//! geometric price buckets (CPM [`BUCKET_BASE_CPM`] times
//! [`BUCKET_RATIO`]^k). [`WinRates::curve`] turns the counts into a win
//! probability per bucket that never falls as the bid rises: each bucket's
//! rate with a Beta(1, 1) prior, made monotone by weighted isotonic
//! regression (pool adjacent violators). [`shaded_bid`] then picks the bid
//! that maximises the expected surplus `(value - bid) * P(win | bid)`.
//!
//! # Layout and bounds
//!
//! Set-associative like the other keyed stores ([`WAYS`] ways per set):
//! per placement a key, a last-seen time and two arrays of
//! [`PRICE_BUCKETS`] `u32` counts (136 bytes). A full set forgets its
//! least recently seen placement. When a placement's bids reach
//! `observations_max`, its counts are halved, so old auctions weigh less
//! and the curve follows a market that moves.
//!
//! As key-value operations: `observe` is two `HINCRBY`s on the
//! placement's hash; `curve` one `HGETALL`.

use super::{mix64, set_count, WAYS};
use crate::error::{Error, Result};
use bevy_ecs::prelude::Resource;

/// Price buckets per placement.
pub const PRICE_BUCKETS: usize = 16;
/// The first bucket's upper edge, CPM.
pub const BUCKET_BASE_CPM: f64 = 0.05;
/// Each bucket's upper edge is this times the previous one's.
pub const BUCKET_RATIO: f64 = 1.6;
/// Most placements a store may hold.
pub const PLACEMENTS_MAX: usize = 1 << 20;

const STORE: &str = "win rates";

/// Size and learning of a [`WinRates`] store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WinRateConfig {
    /// Placements held (rounded up to whole sets); 1 to [`PLACEMENTS_MAX`].
    pub placements: usize,
    /// Bids a placement needs before its curve is used (fewer: the static
    /// pricing rule); at least 1.
    pub min_observations: u32,
    /// A placement's counts are halved when its bids reach this; at least
    /// `2 * min_observations`.
    pub observations_max: u32,
}

impl Default for WinRateConfig {
    /// 4,096 placements, a curve after 200 bids, halved at 20,000.
    fn default() -> Self {
        Self {
            placements: 4096,
            min_observations: 200,
            observations_max: 20_000,
        }
    }
}

/// Bids and wins per price bucket, per placement. See the [module
/// docs](self).
#[derive(Resource, Clone, Debug, PartialEq)]
pub struct WinRates {
    keys: Box<[u64]>,
    last_ns: Box<[u64]>,
    bids: Box<[[u32; PRICE_BUCKETS]]>,
    wins: Box<[[u32; PRICE_BUCKETS]]>,
    set_mask: usize,
    config: WinRateConfig,
}

/// A placement's win probability per price bucket, non-decreasing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WinCurve {
    /// `P(win)` for a bid in bucket `k`.
    pub p_win: [f64; PRICE_BUCKETS],
    /// Bids observed.
    pub bids: u32,
}

impl WinCurve {
    /// The win probability of a bid of `bid_cpm`.
    pub fn at(&self, bid_cpm: f64) -> f64 {
        self.p_win[bucket_of(bid_cpm)]
    }
}

/// One placement's counts as a state file holds them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlacementRecord {
    /// The placement's key (never 0).
    pub key: u64,
    /// When it was last seen, unix ns.
    pub last_ns: u64,
    /// Bids per price bucket.
    pub bids: [u32; PRICE_BUCKETS],
    /// Wins per price bucket, each at most its bids.
    pub wins: [u32; PRICE_BUCKETS],
}

/// Appends the placements of `stores` (one store, or the shards of a
/// shared one) to a state file's section as [`WinRates::write_state`]
/// lays it out.
pub fn write_sections<S: std::ops::Deref<Target = WinRates>>(
    out: &mut Vec<u8>,
    stores: impl IntoIterator<Item = S>,
) {
    let at = out.len();
    out.extend_from_slice(&0u64.to_le_bytes());
    let n: u64 = stores.into_iter().map(|s| s.append_records(out)).sum();
    out[at..at + 8].copy_from_slice(&n.to_le_bytes());
}

/// The bucket of a bid of `bid_cpm` (the last for anything above).
pub fn bucket_of(bid_cpm: f64) -> usize {
    (0..PRICE_BUCKETS - 1)
        .find(|&k| bid_cpm <= bucket_edge_cpm(k))
        .unwrap_or(PRICE_BUCKETS - 1)
}

/// Bucket `k`'s upper edge, CPM.
pub fn bucket_edge_cpm(k: usize) -> f64 {
    BUCKET_BASE_CPM * BUCKET_RATIO.powi(k as i32)
}

/// Bucket `k`'s centre (the geometric mean of its edges), CPM: the price
/// shading and price exploration bid, well inside the bucket so that a
/// price rounded to whole micros is counted in the same bucket.
pub fn bucket_center_cpm(k: usize) -> f64 {
    bucket_edge_cpm(k) / BUCKET_RATIO.sqrt()
}

impl WinRates {
    /// An empty store; fails naming the field when a size is out of range.
    pub fn new(config: WinRateConfig) -> Result<Self> {
        let bad = |reason: String| Error::BadStoreConfig {
            store: STORE,
            reason,
        };
        if !(1..=PLACEMENTS_MAX).contains(&config.placements) {
            return Err(bad(format!(
                "placements {} is not in 1..={PLACEMENTS_MAX}",
                config.placements
            )));
        }
        if config.min_observations == 0
            || config.observations_max < config.min_observations.saturating_mul(2)
        {
            return Err(bad(format!(
                "min_observations {} must be at least 1 and observations_max {} at least twice it",
                config.min_observations, config.observations_max
            )));
        }
        let sets = set_count(config.placements);
        let n = sets * WAYS;
        Ok(Self {
            keys: vec![0; n].into(),
            last_ns: vec![0; n].into(),
            bids: vec![[0; PRICE_BUCKETS]; n].into(),
            wins: vec![[0; PRICE_BUCKETS]; n].into(),
            set_mask: sets - 1,
            config,
        })
    }

    fn set_of(&self, key: u64) -> std::ops::Range<usize> {
        let set = (mix64(key) as usize) & self.set_mask;
        set * WAYS..(set + 1) * WAYS
    }

    fn find(&self, key: u64) -> Option<usize> {
        let set = self.set_of(key);
        self.keys[set.clone()]
            .iter()
            .position(|&k| k == key)
            .map(|w| set.start + w)
    }

    /// Counts one auction of `placement` (a non-zero key) at `bid_cpm`,
    /// won or lost. A non-finite or negative bid is ignored.
    pub fn observe(&mut self, placement: u64, bid_cpm: f64, won: bool, now_ns: u64) {
        if placement == 0 || !bid_cpm.is_finite() || bid_cpm < 0.0 {
            return;
        }
        let i = match self.find(placement) {
            Some(i) => i,
            None => {
                let set = self.set_of(placement);
                let lru = set
                    .clone()
                    .min_by_key(|&i| (self.keys[i] != 0, self.last_ns[i]))
                    .unwrap_or(set.start);
                self.keys[lru] = placement;
                self.bids[lru] = [0; PRICE_BUCKETS];
                self.wins[lru] = [0; PRICE_BUCKETS];
                lru
            }
        };
        self.last_ns[i] = now_ns.max(1);
        let k = bucket_of(bid_cpm);
        self.bids[i][k] += 1;
        self.wins[i][k] += u32::from(won);
        let total: u32 = self.bids[i].iter().sum();
        if total >= self.config.observations_max {
            for (b, w) in self.bids[i].iter_mut().zip(self.wins[i].iter_mut()) {
                *b /= 2;
                *w = (*w / 2).min(*b);
            }
        }
    }

    /// Appends every placement to a state file's section: a count, then
    /// per placement its key, last-seen time and counts.
    pub fn write_state(&self, out: &mut Vec<u8>) {
        write_sections(out, std::iter::once(self));
    }

    /// Appends this store's placements as [`Self::write_state`] lays them
    /// out, without the count; returns how many.
    fn append_records(&self, out: &mut Vec<u8>) -> u64 {
        use super::snapshot::{put_u32, put_u64};
        let mut n = 0;
        for i in (0..self.keys.len()).filter(|&i| self.keys[i] != 0) {
            put_u64(out, self.keys[i]);
            put_u64(out, self.last_ns[i]);
            for k in 0..PRICE_BUCKETS {
                put_u32(out, self.bids[i][k]);
                put_u32(out, self.wins[i][k]);
            }
            n += 1;
        }
        n
    }

    /// Reads a section [`Self::write_state`] wrote, checking it whole
    /// (wins never above bids, no zero key).
    pub fn read_state(bytes: &[u8]) -> Result<Vec<PlacementRecord>> {
        let mut r = super::snapshot::SectionReader::new(bytes, "win rates section");
        let n = r.u64("the count")?;
        let record = 16 + 8 * PRICE_BUCKETS as u64;
        if n.checked_mul(record) != Some(bytes.len() as u64 - 8) {
            return Err(r.bad(format!("{n} placements do not fill {} bytes", bytes.len())));
        }
        let mut placements = Vec::with_capacity(n as usize);
        for p in 0..n {
            let key = r.u64("placement")?;
            let last_ns = r.u64("last_ns")?;
            let mut bids = [0u32; PRICE_BUCKETS];
            let mut wins = [0u32; PRICE_BUCKETS];
            for k in 0..PRICE_BUCKETS {
                bids[k] = r.u32("bids")?;
                wins[k] = r.u32("wins")?;
                if wins[k] > bids[k] || key == 0 {
                    return Err(r.bad(format!("placement {p}: a zero key or more wins than bids")));
                }
            }
            placements.push(PlacementRecord {
                key,
                last_ns,
                bids,
                wins,
            });
        }
        r.finish()?;
        Ok(placements)
    }

    /// Puts a restored placement in its set, in place of the least
    /// recently seen one.
    pub fn insert(&mut self, record: &PlacementRecord) {
        let set = self.set_of(record.key);
        let i = set
            .clone()
            .min_by_key(|&i| (self.keys[i] != 0, self.last_ns[i]))
            .unwrap_or(set.start);
        self.keys[i] = record.key;
        self.last_ns[i] = record.last_ns;
        self.bids[i] = record.bids;
        self.wins[i] = record.wins;
    }

    /// The size and learning this store was made with.
    pub fn config(&self) -> WinRateConfig {
        self.config
    }

    /// Bids observed for `placement` (0 for one never seen).
    pub fn bids(&self, placement: u64) -> u32 {
        self.find(placement)
            .map_or(0, |i| self.bids[i].iter().sum())
    }

    /// `placement`'s win curve, or `None` while it has fewer than
    /// `min_observations` bids (price by the static rule then).
    pub fn curve(&self, placement: u64) -> Option<WinCurve> {
        let i = self.find(placement)?;
        let bids: u32 = self.bids[i].iter().sum();
        (bids >= self.config.min_observations).then(|| WinCurve {
            p_win: monotone_rates(&self.bids[i], &self.wins[i]),
            bids,
        })
    }
}

/// Each bucket's win rate with a Beta(1, 1) prior, made non-decreasing by
/// weighted pool-adjacent-violators (weights: bids + 2).
fn monotone_rates(
    bids: &[u32; PRICE_BUCKETS],
    wins: &[u32; PRICE_BUCKETS],
) -> [f64; PRICE_BUCKETS] {
    // Blocks of pooled buckets: (sum of weight * rate, sum of weight, buckets).
    let mut blocks: [(f64, f64, usize); PRICE_BUCKETS] = [(0.0, 0.0, 0); PRICE_BUCKETS];
    let mut n = 0;
    for k in 0..PRICE_BUCKETS {
        let w = f64::from(bids[k]) + 2.0;
        let rate = (f64::from(wins[k]) + 1.0) / w;
        blocks[n] = (rate * w, w, 1);
        n += 1;
        while n > 1 && blocks[n - 2].0 / blocks[n - 2].1 > blocks[n - 1].0 / blocks[n - 1].1 {
            let last = blocks[n - 1];
            let prev = &mut blocks[n - 2];
            prev.0 += last.0;
            prev.1 += last.1;
            prev.2 += last.2;
            n -= 1;
        }
    }
    let mut out = [0.0; PRICE_BUCKETS];
    let mut k = 0;
    for &(sum, weight, len) in &blocks[..n] {
        for p in &mut out[k..k + len] {
            *p = sum / weight;
        }
        k += len;
    }
    out
}

/// The bid that maximises `(value - bid) * P(win | bid)` among the buckets'
/// centres within `[floor, cap]` (and `cap` itself), or `None` when no
/// such bid leaves a surplus (the caller keeps its static price).
pub fn shaded_bid(curve: &WinCurve, value_cpm: f64, floor_cpm: f64, cap_cpm: f64) -> Option<f64> {
    let floor = if floor_cpm.is_finite() && floor_cpm > 0.0 {
        floor_cpm
    } else {
        0.0
    };
    let cap = cap_cpm.min(value_cpm);
    if !(cap.is_finite() && cap >= floor && cap > 0.0) {
        return None;
    }
    let candidates = (0..PRICE_BUCKETS)
        .map(bucket_center_cpm)
        .filter(|&b| b >= floor && b <= cap)
        .chain([floor.max(f64::MIN_POSITIVE), cap]);
    let mut best: Option<(f64, f64)> = None;
    for bid in candidates {
        let surplus = (value_cpm - bid) * curve.at(bid);
        if surplus > 0.0 && best.is_none_or(|(_, s)| surplus > s) {
            best = Some((bid, surplus));
        }
    }
    best.map(|(bid, _)| bid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> WinRates {
        WinRates::new(WinRateConfig {
            placements: 64,
            min_observations: 100,
            observations_max: 100_000,
        })
        .expect("valid")
    }

    #[test]
    fn buckets_are_geometric_and_bounded() {
        assert_eq!(bucket_of(0.0), 0);
        assert_eq!(bucket_of(0.05), 0);
        assert_eq!(bucket_of(0.051), 1);
        assert_eq!(bucket_of(1e9), PRICE_BUCKETS - 1);
        for k in 0..PRICE_BUCKETS - 1 {
            assert_eq!(bucket_of(bucket_edge_cpm(k)), k);
            assert_eq!(bucket_of(bucket_center_cpm(k)), k);
            // A centre rounded up to whole micros stays in its bucket.
            assert_eq!(
                bucket_of((bucket_center_cpm(k) * 1000.0).ceil() / 1000.0),
                k
            );
        }
    }

    #[test]
    fn the_curve_never_falls_and_waits_for_enough_bids() {
        let mut w = store();
        // A market whose competing bid is uniform on 0..4 CPM, sampled with
        // noise: the raw rates are not monotone, the curve is.
        let mut x = 7u64;
        for _ in 0..99 {
            w.observe(5, 1.0, false, 1);
        }
        assert!(w.curve(5).is_none(), "99 bids are too few");
        for t in 0..5_000 {
            x = mix64(x);
            let bid = 0.1 + (x % 400) as f64 / 100.0;
            x = mix64(x);
            let competing = (x % 400) as f64 / 100.0;
            w.observe(5, bid, bid > competing, t);
        }
        let curve = w.curve(5).expect("enough bids");
        for k in 1..PRICE_BUCKETS {
            assert!(curve.p_win[k] >= curve.p_win[k - 1], "{:?}", curve.p_win);
        }
        assert!(
            curve.at(0.2) < 0.2 && curve.at(3.5) > 0.7,
            "{:?}",
            curve.p_win
        );
        assert!(w.curve(6).is_none(), "an unknown placement");
    }

    #[test]
    fn the_shaded_bid_maximises_expected_surplus() {
        // Win probability rises linearly with the bid up to 4 CPM: with a
        // value of 4, (4 - b) * b / 4 is largest at b = 2.
        let mut p_win = [0.0; PRICE_BUCKETS];
        for (k, p) in p_win.iter_mut().enumerate() {
            *p = (bucket_edge_cpm(k) / 4.0).min(1.0);
        }
        let curve = WinCurve { p_win, bids: 1_000 };
        let bid = shaded_bid(&curve, 4.0, 0.5, 8.0).expect("a bid");
        assert!((1.5..=2.7).contains(&bid), "{bid}");
        // Never below the floor nor above the value or the cap.
        let bid = shaded_bid(&curve, 4.0, 3.0, 8.0).expect("a bid");
        assert!((3.0..=4.0).contains(&bid), "{bid}");
        assert!(
            shaded_bid(&curve, 4.0, 5.0, 8.0).is_none(),
            "floor above value"
        );
        let bid = shaded_bid(&curve, 4.0, 0.0, 1.0).expect("a bid");
        assert!(bid <= 1.0, "{bid}");
    }

    #[test]
    fn counts_are_halved_past_the_maximum_and_bad_configs_refused() {
        let mut w = WinRates::new(WinRateConfig {
            placements: 8,
            min_observations: 10,
            observations_max: 20,
        })
        .expect("valid");
        for t in 0..19 {
            w.observe(1, 1.0, true, t);
        }
        assert_eq!(w.curve(1).map(|c| c.bids), Some(19));
        w.observe(1, 1.0, true, 20);
        assert_eq!(w.curve(1).map(|c| c.bids), Some(10), "halved");
        for config in [
            WinRateConfig {
                placements: 0,
                ..WinRateConfig::default()
            },
            WinRateConfig {
                min_observations: 0,
                ..WinRateConfig::default()
            },
            WinRateConfig {
                min_observations: 100,
                observations_max: 150,
                ..WinRateConfig::default()
            },
        ] {
            assert!(WinRates::new(config).is_err(), "{config:?}");
        }
    }
}
