//! The row generator: context sampling, the logging policy and the
//! ground-truth click model.

use super::config::{limits, SynthConfig};
use super::math::{below, chance, exp, normal, sigmoid, unit, Cdf};
use super::population::{build_offers, pools, Mixes, Pool, SynthOffer, User};
use super::tables::{self, DeviceClass, COUNTRIES, DEVICES, SIZES};
use super::SynthRow;
use crate::error::{Error, Result};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The independent ChaCha8 streams of one seed. Stream number
/// `(tag << 56) | index` serves item `index` of the tag's kind.
#[derive(Clone, Copy, Debug)]
pub(super) enum Stream {
    /// Row `i` of the output.
    Rows = 0,
    /// Row `i` of the intercept calibration sample.
    Calibration = 1,
    /// User of rank `i`.
    Users = 2,
    /// Publisher `i`.
    Publishers = 3,
    /// The catalog: offers (0), segment embeddings (1), id salt (2).
    Catalog = 4,
}

/// Indices are taken modulo `2^56`, the room a stream tag leaves.
const INDEX_MASK: u64 = (1 << 56) - 1;

/// Deterministic synthetic click-log rows (see the [module docs](super)).
///
/// Row `i` is a pure function of the config, the seed and `i`:
/// [`Generator::row_at`] computes any row directly, and the sequential API
/// ([`Generator::next_row`], [`Generator::fill`], the `Iterator`) walks
/// `0, 1, 2, ...` from the current [`Generator::position`]. The generator is
/// `Send + Sync`, so threads can share one and each produce its own range.
#[derive(Clone)]
pub struct Generator {
    pub(super) config: SynthConfig,
    seed: u64,
    /// The ChaCha8 key of `ChaCha8Rng::seed_from_u64(seed)`.
    key: [u8; 32],
    next: u64,
    pub(super) mixes: Mixes,
    users: Cdf,
    pub(super) segments: Cdf,
    /// `[segments][k]` row-major: segment `s`'s embedding `g_s`.
    pub(super) segment_embeddings: Vec<f64>,
    pools: [Pool; 3],
    offers: Vec<SynthOffer>,
    pub(super) user_salt: u64,
    intercept: f64,
}

/// A row before its click is drawn: the context, the offer, the logit
/// without the intercept, the row's stream positioned after them, and what
/// the logit of any other offer needs ([`super::truth`]).
pub(super) struct Draft {
    pub(super) row: SynthRow,
    pub(super) logit_offset: f64,
    pub(super) rng: ChaCha8Rng,
    /// The user's latent embedding `u`.
    pub(super) user_embedding: Vec<f64>,
    /// The user's own click bias `b_u`.
    pub(super) user_bias: f64,
    /// The page's tier-1 category indices.
    pub(super) tier1: Vec<u8>,
    /// The context effects; `category_match` is the row's offer's.
    pub(super) effects: Effects,
}

/// The context effects of one row, before `context_scale`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Effects {
    device: f64,
    position: f64,
    size: f64,
    hour: f64,
    country: f64,
    publisher: f64,
    pub(super) category_match: bool,
}

impl Effects {
    pub(super) fn sum(&self) -> f64 {
        let matched = if self.category_match {
            tables::CATEGORY_MATCH_EFFECT
        } else {
            0.0
        };
        self.device
            + self.position
            + self.size
            + self.hour
            + self.country
            + self.publisher
            + matched
    }
}

impl Generator {
    /// A generator for `config` and `seed`. Validates the config, builds the
    /// population tables and the catalog, and solves for the intercept.
    pub fn new(config: SynthConfig, seed: u64) -> Result<Self> {
        config.validate()?;
        let key = ChaCha8Rng::seed_from_u64(seed).get_seed();
        let mixes = Mixes::new();
        let k = config.embedding_dim as usize;
        let mut generator = Self {
            users: Cdf::zipf(config.users as usize, config.user_zipf_exponent),
            segments: Cdf::zipf(config.segments as usize, tables::SEGMENT_ZIPF_EXPONENT),
            pools: pools(config.publishers, config.publisher_zipf_exponent),
            config,
            seed,
            key,
            next: 0,
            mixes,
            segment_embeddings: Vec::new(),
            offers: Vec::new(),
            user_salt: 0,
            intercept: 0.0,
        };
        let mut rng = generator.stream(Stream::Catalog, 0);
        generator.offers = build_offers(&mut rng, &generator.mixes, generator.config.offers, k);
        let mut rng = generator.stream(Stream::Catalog, 1);
        generator.segment_embeddings = (0..generator.segments.len() * k)
            .map(|_| normal(&mut rng))
            .collect();
        generator.user_salt = generator.stream(Stream::Catalog, 2).next_u64();
        generator.intercept = generator.solve_intercept();
        Ok(generator)
    }

    /// The config it was built with.
    pub fn config(&self) -> &SynthConfig {
        &self.config
    }

    /// The seed it was built with.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The offer catalog, with each offer's ground-truth parameters.
    pub fn offers(&self) -> &[SynthOffer] {
        &self.offers
    }

    /// The intercept `beta0` of the click logit, solved so that the mean true
    /// click probability over the traffic is the configured `ctr`.
    pub fn intercept(&self) -> f64 {
        self.intercept
    }

    /// Index of the row [`Generator::next_row`] returns next.
    pub fn position(&self) -> u64 {
        self.next
    }

    /// Makes row `index` the next one.
    pub fn seek(&mut self, index: u64) {
        self.next = index;
    }

    /// Row `index` (taken modulo `2^56`), independent of the position.
    pub fn row_at(&self, index: u64) -> SynthRow {
        self.finish_row(self.draft(Stream::Rows, index))
    }

    /// The row of `draft`: its `p_true`, and its click drawn against it.
    pub(super) fn finish_row(&self, draft: Draft) -> SynthRow {
        let Draft {
            mut row,
            logit_offset,
            mut rng,
            ..
        } = draft;
        let p = sigmoid(self.intercept + logit_offset) as f32;
        row.p_true = p;
        row.click = unit(&mut rng) < f64::from(p);
        row
    }

    /// The row at the position, which then advances.
    pub fn next_row(&mut self) -> SynthRow {
        let row = self.row_at(self.next);
        self.next = self.next.wrapping_add(1);
        row
    }

    /// Appends the next `n` rows to `out`. `n` may be at most
    /// [`limits::ROWS_PER_CALL_MAX`]; more is refused with
    /// [`Error::LimitExceeded`] before anything is appended.
    pub fn fill(&mut self, out: &mut Vec<SynthRow>, n: usize) -> Result<()> {
        if n > limits::ROWS_PER_CALL_MAX {
            return Err(Error::LimitExceeded {
                what: "rows per Generator::fill call".into(),
                value: n,
                limit: limits::ROWS_PER_CALL_MAX,
            });
        }
        out.reserve(n);
        out.extend((0..n).map(|_| self.next_row()));
        Ok(())
    }

    /// The ChaCha8 stream for item `index` of `tag`, at its start.
    pub(super) fn stream(&self, tag: Stream, index: u64) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::from_seed(self.key);
        rng.set_stream(((tag as u64) << 56) | (index & INDEX_MASK));
        rng
    }

    /// The embedding dimension `k`.
    pub(super) fn dim(&self) -> usize {
        self.config.embedding_dim as usize
    }

    /// Draws the context and the offer of item `index` of stream `tag`.
    pub(super) fn draft(&self, tag: Stream, index: u64) -> Draft {
        let mut rng = self.stream(tag, index);
        let user = self.user(self.users.sample(&mut rng));
        let device = if chance(&mut rng, tables::PRIMARY_DEVICE_PROB) {
            user.primary_device
        } else {
            self.mixes.device.sample(&mut rng)
        };
        let class = DEVICES[device].class;
        let (country, region) = self.location(&mut rng, &user);
        let region_spec = &COUNTRIES[country].regions[region];
        let conn_type = self.mixes.connection[class.index()].sample(&mut rng) as u8;
        let (ts_unix, hour) = self.timestamp(&mut rng, region_spec.utc_offset_minutes);
        let kind = self.pool_for(&mut rng, class);
        let pool = &self.pools[kind as usize];
        let publisher = self.publisher(kind, pool.offset + pool.ranks.sample(&mut rng) as u32);
        let size = &SIZES[self.mixes.sizes[class.index()].sample(&mut rng)];
        let position = self.mixes.position(size.shape).sample(&mut rng) as u8;
        let offer = &self.offers[self.choose_offer(&mut rng, class, &publisher.tier1)];
        let bid_floor = self.bid_floor(&mut rng, class, country);
        let effects = Effects {
            device: DEVICES[device].click_effect,
            position: tables::POSITION_EFFECTS[usize::from(position)],
            size: size.click_effect,
            hour: tables::HOUR_EFFECTS[hour],
            country: COUNTRIES[country].click_effect,
            publisher: publisher.effect,
            category_match: publisher.tier1.contains(&offer.category),
        };
        let logit_offset = self.affinity(&user.embedding, offer)
            + user.bias
            + offer.bias
            + self.config.context_scale * effects.sum();
        let row = SynthRow {
            user_id: user.id,
            os: user.os_for(class),
            segments: user.segments,
            device_type: DEVICES[device].code,
            conn_type,
            country: COUNTRIES[country].code.to_string(),
            region: region_spec.code.to_string(),
            site_or_app_id: publisher.id,
            is_app: publisher.is_app,
            domain: publisher.domain,
            categories: publisher.categories,
            width: size.width,
            height: size.height,
            position,
            bid_floor,
            ts_unix,
            offer_id: offer.id,
            click: false,
            p_true: 0.0,
        };
        Draft {
            row,
            logit_offset,
            rng,
            user_embedding: user.embedding,
            user_bias: user.bias,
            tier1: publisher.tier1,
            effects,
        }
    }

    /// The request's country and region: the user's home, or elsewhere.
    fn location(&self, rng: &mut ChaCha8Rng, user: &User) -> (usize, usize) {
        if chance(rng, tables::HOME_COUNTRY_PROB) {
            (user.home_country, user.home_region)
        } else {
            let country = self.mixes.country.sample(rng);
            (country, self.mixes.regions[country].sample(rng))
        }
    }

    /// A request time whose local hour (at `utc_offset_minutes`) follows
    /// [`tables::HOUR_SHARES`], on a uniform day of the span. Returns the
    /// unix time in `[start, start + span)` and the local hour.
    fn timestamp(&self, rng: &mut ChaCha8Rng, utc_offset_minutes: i32) -> (i64, usize) {
        let start = self.config.start_unix;
        let day = below(rng, u64::from(self.config.span_days)) as i64;
        let hour = self.mixes.hour.sample(rng);
        let second = below(rng, 3600) as i64;
        // Local wall-clock seconds from the UTC midnight that starts the span's first day.
        let first_midnight = start.div_euclid(86_400) * 86_400;
        let local = first_midnight + day * 86_400 + hour as i64 * 3600 + second;
        let utc = local - i64::from(utc_offset_minutes) * 60;
        // The span is whole days, so wrapping keeps the local hour.
        (
            start + (utc - start).rem_euclid(self.config.span_seconds()),
            hour,
        )
    }

    /// The logging policy: offer `o` is shown with probability proportional
    /// to `popularity_o * boost^[category match] * mismatch^[device outside target]`.
    fn choose_offer(&self, rng: &mut ChaCha8Rng, class: DeviceClass, tier1: &[u8]) -> usize {
        let weight = |o: &SynthOffer| {
            let mut w = o.popularity;
            if tier1.contains(&o.category) {
                w *= tables::CATEGORY_TARGET_BOOST;
            }
            if !o.target.admits(class) {
                w *= tables::DEVICE_MISMATCH_FACTOR;
            }
            w
        };
        let total: f64 = self.offers.iter().map(weight).sum();
        let mut u = unit(rng) * total;
        for (i, offer) in self.offers.iter().enumerate() {
            let w = weight(offer);
            if u < w {
                return i;
            }
            u -= w;
        }
        self.offers.len() - 1
    }

    /// A log-normal floor in USD CPM, rounded to cents.
    fn bid_floor(&self, rng: &mut ChaCha8Rng, class: DeviceClass, country: usize) -> f64 {
        let median = tables::FLOOR_MEDIAN_CPM[class.index()] * COUNTRIES[country].floor_multiplier;
        let raw = median * exp(tables::FLOOR_LOG_SD * normal(rng));
        ((raw * 100.0).round() / 100.0).max(tables::FLOOR_MIN_CPM)
    }

    /// `affinity_scale * (u . v) / sqrt(k)`.
    pub(super) fn affinity(&self, user_embedding: &[f64], offer: &SynthOffer) -> f64 {
        let dot: f64 = user_embedding
            .iter()
            .zip(&offer.embedding)
            .map(|(u, v)| u * v)
            .sum();
        self.config.affinity_scale * dot / (self.dim() as f64).sqrt()
    }

    /// The intercept that makes the mean of `sigmoid(beta0 + z)` over
    /// [`tables::CALIBRATION_ROWS`] calibration rows equal `ctr`, by bisection
    /// (the mean is increasing in `beta0`).
    fn solve_intercept(&self) -> f64 {
        let offsets: Vec<f64> = (0..tables::CALIBRATION_ROWS as u64)
            .map(|i| self.draft(Stream::Calibration, i).logit_offset)
            .collect();
        let mean_p =
            |b: f64| offsets.iter().map(|&z| sigmoid(b + z)).sum::<f64>() / offsets.len() as f64;
        let (mut lo, mut hi) = (-100.0, 100.0);
        for _ in 0..60 {
            let mid = 0.5 * (lo + hi);
            if mean_p(mid) < self.config.ctr {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        0.5 * (lo + hi)
    }
}

impl std::fmt::Debug for Generator {
    /// The settings and state, not the tables (which hold one value per user).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generator")
            .field("config", &self.config)
            .field("seed", &self.seed)
            .field("position", &self.next)
            .field("intercept", &self.intercept)
            .field("offers", &self.offers.len())
            .finish_non_exhaustive()
    }
}

impl Iterator for Generator {
    type Item = SynthRow;

    /// Never `None`: the stream is endless.
    fn next(&mut self) -> Option<SynthRow> {
        Some(self.next_row())
    }
}
