//! The documented traffic mixes and ground-truth click effects.
//!
//! Every distribution the generator samples and every constant of its click
//! model lives here, as plain `const` tables, so that `docs/SYNTHETIC_DATA.md`
//! and the tests read the same numbers the sampler uses. Shares are relative
//! weights (each table is normalised when it is sampled); effects are added
//! to the click logit. Changing any value changes the generated rows: bump
//! [`super::GENERATOR_VERSION`] when you do.

use super::Os;

/// The four device classes that decide which sizes, connections and
/// publishers a request gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviceClass {
    /// Phones and generic mobile devices (OpenRTB device types 1 and 4).
    Phone,
    /// Tablets (device type 5).
    Tablet,
    /// Personal computers (device type 2).
    Desktop,
    /// Connected TVs, connected devices and set-top boxes (3, 6, 7).
    Tv,
}

impl DeviceClass {
    /// All classes, in the column order of [`SizeSpec::share`].
    pub const ALL: [DeviceClass; 4] = [Self::Phone, Self::Tablet, Self::Desktop, Self::Tv];

    /// Position of the class in [`Self::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// An OpenRTB 2.6 device type (list 5.21).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DeviceSpec {
    /// The OpenRTB code.
    pub code: u8,
    /// OpenRTB's name for it.
    pub name: &'static str,
    /// Share of requests.
    pub share: f64,
    /// Its class.
    pub class: DeviceClass,
    /// Click-logit effect.
    pub click_effect: f64,
}

/// Device types, their shares of traffic and their click effects.
#[rustfmt::skip]
pub const DEVICES: [DeviceSpec; 7] = [
    DeviceSpec { code: 4, name: "phone", share: 0.46, class: DeviceClass::Phone, click_effect: 0.0 },
    DeviceSpec { code: 2, name: "personal computer", share: 0.28, class: DeviceClass::Desktop, click_effect: -0.15 },
    DeviceSpec { code: 5, name: "tablet", share: 0.08, class: DeviceClass::Tablet, click_effect: 0.1 },
    DeviceSpec { code: 3, name: "connected tv", share: 0.07, class: DeviceClass::Tv, click_effect: -0.6 },
    DeviceSpec { code: 1, name: "mobile/tablet", share: 0.06, class: DeviceClass::Phone, click_effect: 0.0 },
    DeviceSpec { code: 6, name: "connected device", share: 0.03, class: DeviceClass::Tv, click_effect: -0.5 },
    DeviceSpec { code: 7, name: "set top box", share: 0.02, class: DeviceClass::Tv, click_effect: -0.7 },
];

/// Share of a user's requests made from the user's primary device type; the
/// rest are drawn afresh from [`DEVICES`].
pub const PRIMARY_DEVICE_PROB: f64 = 0.8;

/// A user's desktop OS.
pub const DESKTOP_OS: [(Os, f64); 4] = [
    (Os::Windows, 0.72),
    (Os::Macos, 0.17),
    (Os::Linux, 0.03),
    (Os::Other, 0.08),
];

/// A user's TV OS (Android TV and Fire TV count as android; Roku, Tizen,
/// webOS and tvOS as other).
pub const TV_OS: [(Os, f64); 3] = [(Os::Other, 0.62), (Os::Android, 0.33), (Os::Linux, 0.05)];

/// Share of users whose phone or tablet OS is neither android nor ios. The
/// rest are ios with their home country's [`CountrySpec::ios_share`], else android.
pub const MOBILE_OTHER_OS_SHARE: f64 = 0.01;

/// OpenRTB 2.6 connection types (list 5.22), one share per code `0..=7`
/// (unknown, ethernet, wifi, cellular unknown, 2G, 3G, 4G, 5G), by device class.
#[rustfmt::skip]
pub const CONNECTION_SHARES: [[f64; 8]; 4] = [
    [0.04, 0.0, 0.48, 0.05, 0.01, 0.04, 0.28, 0.10], // phone
    [0.04, 0.0, 0.80, 0.02, 0.0, 0.01, 0.10, 0.03],  // tablet
    [0.08, 0.35, 0.55, 0.02, 0.0, 0.0, 0.0, 0.0],    // desktop
    [0.05, 0.40, 0.55, 0.0, 0.0, 0.0, 0.0, 0.0],     // tv
];

/// The shape of a creative size, which decides where on the page it sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Wide and short (728x90, 970x90, 970x250, 468x60).
    Leaderboard,
    /// Tall and narrow (160x600, 120x600, 300x600).
    Skyscraper,
    /// Medium rectangles (300x250, 336x280).
    Rectangle,
    /// Mobile banners (320x50, 300x50, 320x100).
    MobileBanner,
    /// Full-screen interstitials (320x480, 768x1024, 1024x768).
    Interstitial,
    /// Full-screen video on TVs.
    Video,
}

/// A placement size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SizeSpec {
    /// Width in pixels.
    pub width: u16,
    /// Height in pixels.
    pub height: u16,
    /// Its shape.
    pub shape: Shape,
    /// Share of requests within each device class (phone, tablet, desktop, tv).
    pub share: [f64; 4],
    /// Click-logit effect.
    pub click_effect: f64,
}

const fn size(
    width: u16,
    height: u16,
    shape: Shape,
    share: [f64; 4],
    click_effect: f64,
) -> SizeSpec {
    SizeSpec {
        width,
        height,
        shape,
        share,
        click_effect,
    }
}

/// Placement sizes (IAB standard sizes, plus tablet interstitials and TV
/// video), their shares per device class and their click effects.
#[rustfmt::skip]
pub const SIZES: [SizeSpec; 18] = [
    //   w     h    shape                 phone  tablet desktop tv     effect
    size(300, 250, Shape::Rectangle, [0.28, 0.35, 0.34, 0.0], 0.0),
    size(728, 90, Shape::Leaderboard, [0.0, 0.30, 0.22, 0.0], -0.2),
    size(320, 50, Shape::MobileBanner, [0.42, 0.10, 0.0, 0.0], -0.35),
    size(160, 600, Shape::Skyscraper, [0.0, 0.05, 0.08, 0.0], -0.25),
    size(300, 600, Shape::Skyscraper, [0.0, 0.0, 0.10, 0.0], 0.15),
    size(320, 480, Shape::Interstitial, [0.12, 0.0, 0.0, 0.0], 0.5),
    size(970, 250, Shape::Leaderboard, [0.0, 0.0, 0.07, 0.0], 0.2),
    size(468, 60, Shape::Leaderboard, [0.0, 0.05, 0.03, 0.0], -0.45),
    size(336, 280, Shape::Rectangle, [0.04, 0.0, 0.07, 0.0], 0.05),
    size(970, 90, Shape::Leaderboard, [0.0, 0.0, 0.05, 0.0], -0.2),
    size(120, 600, Shape::Skyscraper, [0.0, 0.0, 0.04, 0.0], -0.35),
    size(320, 100, Shape::MobileBanner, [0.08, 0.0, 0.0, 0.0], -0.1),
    size(300, 50, Shape::MobileBanner, [0.06, 0.0, 0.0, 0.0], -0.4),
    size(768, 1024, Shape::Interstitial, [0.0, 0.10, 0.0, 0.0], 0.45),
    size(1024, 768, Shape::Interstitial, [0.0, 0.05, 0.0, 0.0], 0.45),
    size(1920, 1080, Shape::Video, [0.0, 0.0, 0.0, 0.70], -0.3),
    size(1280, 720, Shape::Video, [0.0, 0.0, 0.0, 0.25], -0.3),
    size(3840, 2160, Shape::Video, [0.0, 0.0, 0.0, 0.05], -0.3),
];

/// OpenRTB 2.6 ad positions (list 5.4), one share per code `0..=7` (unknown,
/// above the fold, deprecated "may or may not be visible", below the fold,
/// header, footer, sidebar, full screen), given the size's shape.
pub fn position_shares(shape: Shape) -> [f64; 8] {
    match shape {
        Shape::Leaderboard => [0.10, 0.35, 0.0, 0.15, 0.35, 0.05, 0.0, 0.0],
        Shape::Skyscraper => [0.10, 0.25, 0.0, 0.15, 0.0, 0.0, 0.50, 0.0],
        Shape::Rectangle => [0.20, 0.30, 0.02, 0.40, 0.0, 0.0, 0.08, 0.0],
        Shape::MobileBanner => [0.15, 0.15, 0.0, 0.0, 0.10, 0.60, 0.0, 0.0],
        Shape::Interstitial => [0.10, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.90],
        Shape::Video => [0.15, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.85],
    }
}

/// Click-logit effect of each ad position code `0..=7`.
pub const POSITION_EFFECTS: [f64; 8] = [-0.1, 0.3, 0.0, -0.4, 0.1, -0.15, -0.25, 0.5];

/// An IAB content category (taxonomy 1.0 tier 1, `IAB1`..`IAB26`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CategorySpec {
    /// `n` of `IABn`.
    pub code: u8,
    /// IAB's name.
    pub name: &'static str,
    /// Share of publishers whose primary category it is, and of offers.
    pub share: f64,
    /// Number of subcategories `IABn-1`..`IABn-m` (0 for IAB24).
    pub subcategories: u8,
}

const fn cat(code: u8, name: &'static str, share: f64, subcategories: u8) -> CategorySpec {
    CategorySpec {
        code,
        name,
        share,
        subcategories,
    }
}

/// The 26 IAB tier-1 categories with publisher shares and subcategory counts.
pub const CATEGORIES: [CategorySpec; 26] = [
    cat(1, "Arts & Entertainment", 0.12, 7),
    cat(2, "Automotive", 0.04, 23),
    cat(3, "Business", 0.04, 12),
    cat(4, "Careers", 0.01, 11),
    cat(5, "Education", 0.03, 15),
    cat(6, "Family & Parenting", 0.03, 9),
    cat(7, "Health & Fitness", 0.05, 45),
    cat(8, "Food & Drink", 0.05, 18),
    cat(9, "Hobbies & Interests", 0.10, 31),
    cat(10, "Home & Garden", 0.03, 9),
    cat(11, "Law, Gov't & Politics", 0.01, 5),
    cat(12, "News", 0.10, 3),
    cat(13, "Personal Finance", 0.04, 12),
    cat(14, "Society", 0.03, 8),
    cat(15, "Science", 0.02, 10),
    cat(16, "Pets", 0.02, 7),
    cat(17, "Sports", 0.08, 44),
    cat(18, "Style & Fashion", 0.04, 6),
    cat(19, "Technology & Computing", 0.07, 36),
    cat(20, "Travel", 0.03, 27),
    cat(21, "Real Estate", 0.01, 3),
    cat(22, "Shopping", 0.03, 4),
    cat(23, "Religion & Spirituality", 0.01, 10),
    cat(24, "Uncategorized", 0.005, 0),
    cat(25, "Non-Standard Content", 0.004, 7),
    cat(26, "Illegal Content", 0.001, 4),
];

/// Chance that a publisher also lists a subcategory of its primary category.
pub const SUBCATEGORY_PROB: f64 = 0.7;
/// Chance that a publisher lists a second, different tier-1 category.
pub const SECOND_CATEGORY_PROB: f64 = 0.3;

/// A region (ISO 3166-2 subdivision code without the country prefix, as
/// OpenRTB's `geo.region` carries it).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RegionSpec {
    /// The subdivision code.
    pub code: &'static str,
    /// Share within its country.
    pub share: f64,
    /// Standard-time UTC offset in minutes (daylight saving is ignored).
    pub utc_offset_minutes: i32,
}

const fn reg(code: &'static str, share: f64, utc_offset_minutes: i32) -> RegionSpec {
    RegionSpec {
        code,
        share,
        utc_offset_minutes,
    }
}

/// A country (ISO 3166-1 alpha-3).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CountrySpec {
    /// The alpha-3 code.
    pub code: &'static str,
    /// Share of users whose home it is.
    pub share: f64,
    /// Share of its users whose phone or tablet runs ios.
    pub ios_share: f64,
    /// Multiplier of the median bid floor.
    pub floor_multiplier: f64,
    /// Click-logit effect.
    pub click_effect: f64,
    /// Its regions.
    pub regions: &'static [RegionSpec],
}

const fn country(
    code: &'static str,
    share: f64,
    ios_share: f64,
    floor_multiplier: f64,
    click_effect: f64,
    regions: &'static [RegionSpec],
) -> CountrySpec {
    CountrySpec {
        code,
        share,
        ios_share,
        floor_multiplier,
        click_effect,
        regions,
    }
}

/// Countries, skewed towards the USA, with their regions.
#[rustfmt::skip]
pub const COUNTRIES: [CountrySpec; 20] = [
    country("USA", 0.33, 0.55, 1.0, 0.0, &[
        reg("CA", 39.0, -480), reg("TX", 30.0, -360), reg("FL", 22.0, -300), reg("NY", 20.0, -300),
        reg("PA", 13.0, -300), reg("IL", 12.5, -360), reg("OH", 11.8, -300), reg("GA", 11.0, -300),
        reg("NC", 10.8, -300), reg("MI", 10.0, -300), reg("WA", 7.8, -480), reg("AZ", 7.4, -420),
        reg("MA", 7.0, -300), reg("CO", 5.8, -420),
    ]),
    country("GBR", 0.07, 0.50, 0.8, -0.05, &[
        reg("ENG", 84.0, 0), reg("SCT", 8.0, 0), reg("WLS", 5.0, 0), reg("NIR", 3.0, 0),
    ]),
    country("DEU", 0.06, 0.35, 0.75, -0.15, &[
        reg("NW", 18.0, 60), reg("BY", 13.0, 60), reg("BW", 11.0, 60), reg("NI", 8.0, 60),
        reg("HE", 6.0, 60), reg("SN", 4.0, 60), reg("BE", 3.7, 60),
    ]),
    country("FRA", 0.05, 0.35, 0.65, -0.1, &[
        reg("IDF", 12.3, 60), reg("ARA", 8.0, 60), reg("HDF", 6.0, 60), reg("NAQ", 6.0, 60),
        reg("OCC", 6.0, 60), reg("GES", 5.5, 60), reg("PAC", 5.0, 60),
    ]),
    country("IND", 0.08, 0.04, 0.15, 0.25, &[
        reg("UP", 20.0, 330), reg("MH", 12.4, 330), reg("WB", 10.0, 330), reg("TN", 7.7, 330),
        reg("GJ", 7.0, 330), reg("KA", 6.7, 330), reg("TG", 3.8, 330), reg("DL", 2.0, 330),
    ]),
    country("BRA", 0.06, 0.15, 0.25, 0.2, &[
        reg("SP", 46.0, -180), reg("MG", 21.0, -180), reg("RJ", 17.0, -180), reg("BA", 15.0, -180),
        reg("PR", 11.5, -180), reg("RS", 11.0, -180),
    ]),
    country("JPN", 0.05, 0.68, 0.9, -0.3, &[
        reg("13", 14.0, 540), reg("14", 9.2, 540), reg("27", 8.8, 540), reg("23", 7.5, 540),
        reg("11", 7.3, 540), reg("40", 5.1, 540),
    ]),
    country("CAN", 0.04, 0.55, 0.85, -0.05, &[
        reg("ON", 14.7, -300), reg("QC", 8.5, -300), reg("BC", 5.1, -480), reg("AB", 4.4, -420),
        reg("MB", 1.4, -360),
    ]),
    country("AUS", 0.03, 0.55, 0.85, 0.0, &[
        reg("NSW", 8.2, 600), reg("VIC", 6.7, 600), reg("QLD", 5.3, 600), reg("WA", 2.8, 480),
        reg("SA", 1.8, 570),
    ]),
    country("ESP", 0.03, 0.20, 0.5, -0.05, &[
        reg("AN", 8.5, 60), reg("CT", 7.7, 60), reg("MD", 6.7, 60), reg("VC", 5.1, 60),
    ]),
    country("ITA", 0.03, 0.30, 0.55, -0.1, &[
        reg("25", 10.0, 60), reg("62", 5.7, 60), reg("72", 5.6, 60), reg("82", 4.8, 60),
        reg("21", 4.3, 60),
    ]),
    country("MEX", 0.03, 0.20, 0.3, 0.15, &[
        reg("MEX", 17.0, -360), reg("CMX", 9.2, -360), reg("JAL", 8.3, -360), reg("VER", 8.0, -360),
        reg("NLE", 5.8, -360),
    ]),
    country("IDN", 0.03, 0.08, 0.15, 0.2, &[
        reg("JB", 49.0, 420), reg("JI", 41.0, 420), reg("JT", 37.0, 420), reg("JK", 10.6, 420),
    ]),
    country("NLD", 0.02, 0.45, 0.8, -0.1, &[
        reg("ZH", 3.7, 60), reg("NH", 2.9, 60), reg("NB", 2.6, 60), reg("UT", 1.4, 60),
    ]),
    country("KOR", 0.02, 0.30, 0.7, -0.15, &[
        reg("41", 13.5, 540), reg("11", 9.7, 540), reg("26", 3.4, 540),
    ]),
    country("TUR", 0.02, 0.15, 0.2, 0.1, &[
        reg("34", 15.5, 180), reg("06", 5.7, 180), reg("35", 4.4, 180),
    ]),
    country("POL", 0.02, 0.15, 0.35, 0.0, &[
        reg("14", 5.4, 60), reg("24", 4.5, 60), reg("30", 3.5, 60), reg("12", 3.4, 60),
    ]),
    country("SWE", 0.01, 0.55, 0.8, -0.1, &[
        reg("AB", 2.4, 60), reg("O", 1.7, 60), reg("M", 1.4, 60),
    ]),
    country("ZAF", 0.01, 0.20, 0.3, 0.1, &[
        reg("GP", 15.5, 120), reg("KZN", 11.5, 120), reg("WC", 7.0, 120),
    ]),
    country("ARG", 0.01, 0.10, 0.2, 0.1, &[
        reg("B", 17.5, -180), reg("X", 3.8, -180), reg("S", 3.5, -180), reg("C", 3.1, -180),
    ]),
];

/// Chance that a request comes from the user's home country and region; the
/// rest (travel, VPNs) draw a country from [`COUNTRIES`] and a region in it.
pub const HOME_COUNTRY_PROB: f64 = 0.97;

/// Share of requests in each local hour `0..24`: a night trough at 3-5 and
/// an evening peak at 19-21.
pub const HOUR_SHARES: [f64; 24] = [
    2.2, 1.5, 1.0, 0.7, 0.6, 0.8, 1.5, 2.6, 3.5, 4.0, 4.2, 4.4, //
    4.6, 4.5, 4.4, 4.5, 4.7, 5.0, 5.5, 6.0, 6.3, 6.0, 4.8, 3.4,
];

/// Click-logit effect of each local hour `0..24`: evening audiences click
/// more than night and early-morning ones.
pub const HOUR_EFFECTS: [f64; 24] = [
    0.05, 0.0, -0.05, -0.1, -0.12, -0.1, -0.08, -0.06, -0.04, -0.02, 0.0, 0.02, //
    0.03, 0.02, 0.0, 0.0, 0.02, 0.05, 0.08, 0.12, 0.15, 0.15, 0.12, 0.08,
];

/// Share of users with 1, 2, 3 and 4 segments.
pub const SEGMENT_COUNT_SHARES: [f64; 4] = [0.30, 0.35, 0.20, 0.15];
/// Zipf exponent of segment popularity (segment 0 is the most common).
pub const SEGMENT_ZIPF_EXPONENT: f64 = 1.0;

/// Fractions of the publisher population that are web sites, mobile apps
/// and TV apps (in that order of publisher index).
pub const PUBLISHER_POOLS: [f64; 3] = [0.6, 0.3, 0.1];
/// Chance that a phone or tablet request comes from an app rather than the
/// mobile web. Desktop requests always come from sites, TV ones from TV apps.
pub const MOBILE_APP_PROB: f64 = 0.6;

/// The first offer id; offer `i` of the catalog has id `OFFER_ID_BASE + i`.
pub const OFFER_ID_BASE: u64 = 1000;
/// Zipf exponent of offer popularity in the logging policy (offer 0 is the most pushed).
pub const OFFER_POPULARITY_EXPONENT: f64 = 0.6;
/// Logging-policy weight multiplier when the offer's category is one of the page's.
pub const CATEGORY_TARGET_BOOST: f64 = 3.0;
/// Logging-policy weight multiplier when the request's device class is
/// outside the offer's device target.
pub const DEVICE_MISMATCH_FACTOR: f64 = 0.1;

/// Which devices an offer is aimed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OfferTarget {
    /// Every device class.
    Any,
    /// Phones and tablets.
    Mobile,
    /// Personal computers.
    Desktop,
}

impl OfferTarget {
    /// Whether a request of `class` is inside the target.
    pub fn admits(self, class: DeviceClass) -> bool {
        match self {
            Self::Any => true,
            Self::Mobile => matches!(class, DeviceClass::Phone | DeviceClass::Tablet),
            Self::Desktop => class == DeviceClass::Desktop,
        }
    }
}

/// Share of offers with each device target.
pub const OFFER_TARGETS: [(OfferTarget, f64); 3] = [
    (OfferTarget::Any, 0.55),
    (OfferTarget::Mobile, 0.30),
    (OfferTarget::Desktop, 0.15),
];

/// Median bid floor in USD CPM per device class (phone, tablet, desktop, tv),
/// before the country's [`CountrySpec::floor_multiplier`].
pub const FLOOR_MEDIAN_CPM: [f64; 4] = [0.45, 0.60, 0.80, 12.0];
/// Standard deviation of the floor's natural logarithm.
pub const FLOOR_LOG_SD: f64 = 0.6;
/// Smallest bid floor, in USD CPM (floors are rounded to cents).
pub const FLOOR_MIN_CPM: f64 = 0.01;

/// Standard deviation of each offer's click-logit bias.
pub const OFFER_BIAS_SD: f64 = 0.3;
/// Standard deviation of each publisher's click-logit effect (placement quality).
pub const PUBLISHER_EFFECT_SD: f64 = 0.25;
/// Click-logit effect when the offer's category is one of the page's tier-1 categories.
pub const CATEGORY_MATCH_EFFECT: f64 = 0.6;

/// Rows drawn (from their own stream) to solve for the intercept.
pub const CALIBRATION_ROWS: usize = 16_384;

/// First words of generated domain names.
pub const DOMAIN_PREFIXES: [&str; 20] = [
    "daily", "top", "my", "the", "smart", "quick", "best", "urban", "global", "local", "pixel",
    "green", "blue", "red", "happy", "bright", "metro", "prime", "star", "wild",
];
/// Second words of generated domain names.
pub const DOMAIN_NOUNS: [&str; 20] = [
    "news", "games", "recipes", "sports", "tech", "travel", "music", "movies", "weather",
    "finance", "health", "style", "auto", "home", "kids", "pets", "books", "deals", "photos",
    "chat",
];
/// Top-level domains of generated domain names.
pub const DOMAIN_TLDS: [&str; 8] = ["com", "com", "com", "net", "org", "co.uk", "de", "io"];
