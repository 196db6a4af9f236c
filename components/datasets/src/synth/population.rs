//! The simulated world: users, publishers and the offer catalog.
//!
//! Nothing per user or per publisher is stored. Each one's traits are drawn
//! from its own ChaCha8 stream (keyed by the seed, numbered by its index)
//! whenever a row needs them, so memory stays flat in the population size
//! (only the Zipf tables grow with it) and a trait never depends on which
//! rows were generated before.

use super::generator::{Generator, Stream};
use super::math::{below, chance, normal, powf, Cdf};
use super::tables::{
    self, DeviceClass, OfferTarget, CATEGORIES, COUNTRIES, DESKTOP_OS, DEVICES, DOMAIN_NOUNS,
    DOMAIN_PREFIXES, DOMAIN_TLDS, TV_OS,
};
use super::Os;

/// The static tables of [`tables`], as samplers.
#[derive(Clone, Debug)]
pub(super) struct Mixes {
    pub device: Cdf,
    pub desktop_os: Cdf,
    pub tv_os: Cdf,
    pub connection: [Cdf; 4],
    pub sizes: [Cdf; 4],
    pub positions: [Cdf; 6],
    pub category: Cdf,
    pub country: Cdf,
    pub regions: Vec<Cdf>,
    pub hour: Cdf,
    pub segment_count: Cdf,
    pub offer_target: Cdf,
}

impl Mixes {
    pub(super) fn new() -> Self {
        use tables::Shape::*;
        let shapes = [
            Leaderboard,
            Skyscraper,
            Rectangle,
            MobileBanner,
            Interstitial,
            Video,
        ];
        Self {
            device: Cdf::new(DEVICES.iter().map(|d| d.share)),
            desktop_os: Cdf::new(DESKTOP_OS.iter().map(|o| o.1)),
            tv_os: Cdf::new(TV_OS.iter().map(|o| o.1)),
            connection: tables::CONNECTION_SHARES.map(Cdf::new),
            sizes: DeviceClass::ALL
                .map(|c| Cdf::new(tables::SIZES.iter().map(|s| s.share[c.index()]))),
            positions: shapes.map(|s| Cdf::new(tables::position_shares(s))),
            category: Cdf::new(CATEGORIES.iter().map(|c| c.share)),
            country: Cdf::new(COUNTRIES.iter().map(|c| c.share)),
            regions: COUNTRIES
                .iter()
                .map(|c| Cdf::new(c.regions.iter().map(|r| r.share)))
                .collect(),
            hour: Cdf::new(tables::HOUR_SHARES),
            segment_count: Cdf::new(tables::SEGMENT_COUNT_SHARES),
            offer_target: Cdf::new(tables::OFFER_TARGETS.iter().map(|t| t.1)),
        }
    }

    /// The position sampler for a size's shape.
    pub(super) fn position(&self, shape: tables::Shape) -> &Cdf {
        &self.positions[shape as usize]
    }
}

/// A user's stable latent traits.
#[derive(Clone, Debug)]
pub(super) struct User {
    /// Opaque id below `2^53`: a bijective scramble of the user's rank.
    pub id: u64,
    /// Index into [`COUNTRIES`].
    pub home_country: usize,
    /// Index into the home country's regions.
    pub home_region: usize,
    /// Index into [`DEVICES`].
    pub primary_device: usize,
    pub mobile_os: Os,
    pub desktop_os: Os,
    pub tv_os: Os,
    /// Ascending, distinct segment ids.
    pub segments: Vec<u32>,
    /// The latent embedding `u`, `k` values.
    pub embedding: Vec<f64>,
    /// The user's own click bias `b_u` (logit), `user_bias_sd` times a
    /// standard normal drawn last from the user's stream, so that it
    /// changes no other trait; exactly 0 when `user_bias_sd` is 0.
    pub bias: f64,
}

impl User {
    /// The OS the user runs on a device of `class`.
    pub(super) fn os_for(&self, class: DeviceClass) -> Os {
        match class {
            DeviceClass::Phone | DeviceClass::Tablet => self.mobile_os,
            DeviceClass::Desktop => self.desktop_os,
            DeviceClass::Tv => self.tv_os,
        }
    }
}

/// The three publisher pools, in index order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PoolKind {
    Site = 0,
    MobileApp = 1,
    TvApp = 2,
}

/// A contiguous range of publisher indices and the Zipf table over its ranks.
#[derive(Clone, Debug)]
pub(super) struct Pool {
    pub offset: u32,
    pub ranks: Cdf,
}

/// Splits `publishers` into the site, mobile-app and TV-app pools.
pub(super) fn pools(publishers: u32, exponent: f64) -> [Pool; 3] {
    let sites = publishers * 6 / 10;
    let apps = publishers * 3 / 10;
    let tv = publishers - sites - apps;
    [(0, sites), (sites, apps), (sites + apps, tv)].map(|(offset, len)| Pool {
        offset,
        ranks: Cdf::zipf(len as usize, exponent),
    })
}

/// A publisher's stable traits.
#[derive(Clone, Debug)]
pub(super) struct Publisher {
    pub id: String,
    pub is_app: bool,
    pub domain: String,
    /// `IABn` and `IABn-m` codes.
    pub categories: Vec<String>,
    /// The `n` of every tier-1 category listed.
    pub tier1: Vec<u8>,
    /// Click-logit effect.
    pub effect: f64,
}

/// An offer of the catalog, with its ground-truth parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct SynthOffer {
    /// The offer id: [`tables::OFFER_ID_BASE`] plus its index.
    pub id: u64,
    /// `n` of its IAB tier-1 category.
    pub category: u8,
    /// The devices it is aimed at.
    pub target: OfferTarget,
    /// Its logging-policy popularity, `(index + 1)^-0.6`.
    pub popularity: f64,
    /// Its click-logit bias `b_o`.
    pub bias: f64,
    /// Its latent embedding `v_o`, `k` values.
    pub embedding: Vec<f64>,
}

/// The unique domain name of publisher `index`: prefix and noun by mixed
/// radix (400 combinations), then a number for each further round.
fn domain_name(index: u32, tld: &str) -> String {
    let n = DOMAIN_PREFIXES.len() as u32;
    let m = DOMAIN_NOUNS.len() as u32;
    let prefix = DOMAIN_PREFIXES[(index % n) as usize];
    let noun = DOMAIN_NOUNS[(index / n % m) as usize];
    match index / (n * m) {
        0 => format!("{prefix}{noun}.{tld}"),
        round => format!("{prefix}{noun}{round}.{tld}"),
    }
}

impl Generator {
    /// The traits of the user of Zipf rank `rank`, from that user's stream.
    pub(super) fn user(&self, rank: usize) -> User {
        let mut rng = self.stream(Stream::Users, rank as u64);
        let home_country = self.mixes.country.sample(&mut rng);
        let home_region = self.mixes.regions[home_country].sample(&mut rng);
        let primary_device = self.mixes.device.sample(&mut rng);
        let mobile_os = if chance(&mut rng, tables::MOBILE_OTHER_OS_SHARE) {
            Os::Other
        } else if chance(&mut rng, COUNTRIES[home_country].ios_share) {
            Os::Ios
        } else {
            Os::Android
        };
        let desktop_os = DESKTOP_OS[self.mixes.desktop_os.sample(&mut rng)].0;
        let tv_os = TV_OS[self.mixes.tv_os.sample(&mut rng)].0;
        let segments = self.draw_segments(&mut rng);
        let embedding = self.user_embedding(&mut rng, &segments);
        let bias = self.config.user_bias_sd * normal(&mut rng);
        User {
            id: super::math::mix53(rank as u64 ^ self.user_salt),
            home_country,
            home_region,
            primary_device,
            mobile_os,
            desktop_os,
            tv_os,
            segments,
            embedding,
            bias,
        }
    }

    /// 1 to 4 distinct segments (fewer if the config has fewer), Zipf-popular, ascending.
    fn draw_segments(&self, rng: &mut impl rand::RngCore) -> Vec<u32> {
        let want = (1 + self.mixes.segment_count.sample(rng)).min(self.segments.len());
        let mut segments = Vec::with_capacity(want);
        // Duplicates are redrawn, a bounded number of times.
        for _ in 0..want * 16 {
            let s = self.segments.sample(rng) as u32;
            if !segments.contains(&s) {
                segments.push(s);
                if segments.len() == want {
                    break;
                }
            }
        }
        segments.sort_unstable();
        segments
    }

    /// `u = sqrt(w) * sum(g_s for s in segments) / sqrt(|segments|) + sqrt(1 - w) * eps`.
    fn user_embedding(&self, rng: &mut impl rand::RngCore, segments: &[u32]) -> Vec<f64> {
        let k = self.dim();
        let w = self.config.segment_share;
        let shared = w.sqrt() / (segments.len() as f64).sqrt();
        let own = (1.0 - w).sqrt();
        (0..k)
            .map(|j| {
                let sum: f64 = segments
                    .iter()
                    .map(|&s| self.segment_embeddings[s as usize * k + j])
                    .sum();
                shared * sum + own * normal(rng)
            })
            .collect()
    }

    /// The traits of publisher `index` (global over the three pools).
    pub(super) fn publisher(&self, kind: PoolKind, index: u32) -> Publisher {
        let mut rng = self.stream(Stream::Publishers, u64::from(index));
        let (categories, tier1) = self.draw_categories(&mut rng);
        let effect = tables::PUBLISHER_EFFECT_SD * normal(&mut rng);
        let tld = DOMAIN_TLDS[below(&mut rng, DOMAIN_TLDS.len() as u64) as usize];
        let is_app = kind != PoolKind::Site;
        Publisher {
            id: format!("{}-{index}", if is_app { "app" } else { "site" }),
            is_app,
            domain: domain_name(index, tld),
            categories,
            tier1,
            effect,
        }
    }

    /// A primary tier-1 category, maybe one of its subcategories, maybe a second tier-1 category.
    fn draw_categories(&self, rng: &mut impl rand::RngCore) -> (Vec<String>, Vec<u8>) {
        let primary = &CATEGORIES[self.mixes.category.sample(rng)];
        let mut names = vec![format!("IAB{}", primary.code)];
        let mut tier1 = vec![primary.code];
        if primary.subcategories > 0 && chance(rng, tables::SUBCATEGORY_PROB) {
            let sub = 1 + below(rng, u64::from(primary.subcategories));
            names.push(format!("IAB{}-{sub}", primary.code));
        }
        if chance(rng, tables::SECOND_CATEGORY_PROB) {
            let second = &CATEGORIES[self.mixes.category.sample(rng)];
            if second.code != primary.code {
                names.push(format!("IAB{}", second.code));
                tier1.push(second.code);
            }
        }
        (names, tier1)
    }

    /// The pool a request of `class` is served from.
    pub(super) fn pool_for(&self, rng: &mut impl rand::RngCore, class: DeviceClass) -> PoolKind {
        match class {
            DeviceClass::Desktop => PoolKind::Site,
            DeviceClass::Tv => PoolKind::TvApp,
            DeviceClass::Phone | DeviceClass::Tablet => {
                if chance(rng, tables::MOBILE_APP_PROB) {
                    PoolKind::MobileApp
                } else {
                    PoolKind::Site
                }
            }
        }
    }
}

/// The catalog: offer `i` has id `OFFER_ID_BASE + i`, a category and device
/// target drawn from the tables, popularity `(i + 1)^-0.6`, and a bias and
/// embedding drawn from the catalog stream.
pub(super) fn build_offers(
    rng: &mut impl rand::RngCore,
    mixes: &Mixes,
    offers: u32,
    k: usize,
) -> Vec<SynthOffer> {
    (0..offers)
        .map(|i| SynthOffer {
            id: tables::OFFER_ID_BASE + u64::from(i),
            category: CATEGORIES[mixes.category.sample(rng)].code,
            target: tables::OFFER_TARGETS[mixes.offer_target.sample(rng)].0,
            popularity: powf(f64::from(i) + 1.0, -tables::OFFER_POPULARITY_EXPONENT),
            bias: tables::OFFER_BIAS_SD * normal(rng),
            embedding: (0..k).map(|_| normal(rng)).collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_names_are_unique() {
        let names: std::collections::HashSet<String> =
            (0..5000).map(|i| domain_name(i, "com")).collect();
        assert_eq!(names.len(), 5000);
        assert_eq!(domain_name(0, "com"), "dailynews.com");
        assert_eq!(domain_name(400, "de"), "dailynews1.de");
    }

    #[test]
    fn pools_split_the_publishers_without_gaps() {
        for n in [10, 11, 20_000, 999_999] {
            let [sites, apps, tv] = pools(n, 1.0);
            assert_eq!(sites.offset, 0);
            assert_eq!(apps.offset as usize, sites.ranks.len());
            assert_eq!(tv.offset as usize, apps.offset as usize + apps.ranks.len());
            assert_eq!(tv.offset as usize + tv.ranks.len(), n as usize);
            assert!(tv.ranks.len() >= 1, "{n}");
        }
    }
}
