//! A deterministic generator of synthetic click logs with a known ground truth.
//!
//! It owns the simulated world (users, publishers, an offer catalog), the
//! traffic mixes of OpenRTB 2.6 request contexts, the logging policy that
//! picks the offer shown, and the ground-truth click model that labels each
//! impression. The project's bundled default model is trained on its output,
//! and load tests replay it. `docs/SYNTHETIC_DATA.md` lists every table and
//! default; [`tables`] holds them in code.
//!
//! Data layout: a row is a plain owned [`SynthRow`] (array of structures,
//! strings and small vectors), because rows are an interchange format: they
//! go to CSV for the trainer, and will be mapped one at a time into the
//! engine's request context. The generator itself stores only small tables
//! and, per population, one Zipf table (8 bytes per user or publisher);
//! every user's and publisher's traits are re-derived from their own random
//! stream when a row needs them, trading about a microsecond per row for
//! memory that does not grow with the rows generated.
//!
//! # Determinism
//!
//! The same [`SynthConfig`], seed and row index give the same row on every
//! machine. All randomness comes from ChaCha8 (`rand_chacha`) keyed by
//! `ChaCha8Rng::seed_from_u64(seed)`: row `i` uses stream `i`, user rank `r`
//! its own stream, publisher `j` its own, the catalog its own. Only raw
//! `u64`s are taken from them; uniform, normal, categorical and Zipf draws
//! and `exp`/`ln` are computed here from IEEE-754 basic operations, so
//! neither the platform's libm nor a `rand` upgrade can change a row. Any
//! change to the stream is a breaking change and bumps [`GENERATOR_VERSION`].
//!
//! # The world
//!
//! - **Users**: `users` ranks; rank `r` makes requests with probability
//!   proportional to `(r + 1)^-user_zipf_exponent`. Each has a stable opaque
//!   `user_id` (a bijective scramble of the rank), a home country and region,
//!   a primary device type (used for 80% of its requests), an OS per device
//!   class, 1-4 segments (Zipf-popular ids in `0..segments`) and a latent
//!   embedding `u` (below).
//! - **Publishers**: 60% web sites, 30% mobile apps, 10% TV apps, each pool
//!   Zipf-distributed with `publisher_zipf_exponent`. Each has an id
//!   (`site-J` or `app-J`), a unique domain, 1-3 IAB categories and a
//!   click effect. Desktop requests go to sites, TV requests to TV apps,
//!   phone and tablet requests to apps 60% of the time.
//! - **Offers**: `offers` offers with ids `1000 + i`, an IAB tier-1
//!   category, a device target (any 55%, mobile 30%, desktop 15%), a
//!   popularity `(i + 1)^-0.6`, a bias `b_o` and an embedding `v_o`.
//! - **Context** of each request: device type, OS, connection type, country
//!   and region (home 97% of the time), placement size by device class,
//!   ad position by the size's shape, a log-normal bid floor, and a time in
//!   `[start_unix, start_unix + span)` whose *local* hour (the region's UTC
//!   offset) follows a diurnal curve.
//!
//! # The logging policy
//!
//! The offer shown is drawn with probability proportional to
//! `popularity_o × 3^[o's category is one of the page's tier-1 categories]
//! × 0.1^[the device class is outside o's target]`. It depends only on
//! observed fields, never on the user's latent embedding, so the labels are
//! unconfounded given the row.
//!
//! # The ground-truth click model
//!
//! ```text
//! g_s ~ N(0, I_k)                 per segment s (k = embedding_dim)
//! u   = sqrt(w) · Σ_{s∈S} g_s / sqrt(|S|) + sqrt(1 − w) · ε,  ε ~ N(0, I_k)
//!                                 per user, S its segments, w = segment_share
//! v_o ~ N(0, I_k),  b_o ~ N(0, 0.3²)                per offer
//! e_pub ~ N(0, 0.25²)                               per publisher
//!
//! logit = β0
//!       + affinity_scale · (u · v_o) / sqrt(k)
//!       + b_o
//!       + context_scale · ( e_device + e_position + e_size + e_hour(local)
//!                           + e_country + e_pub + 0.6 · [o's category ∈ page's tier-1 categories] )
//! p_true = sigmoid(logit),  click ~ Bernoulli(p_true)
//! ```
//!
//! Each of `u` and `v_o` has unit variance per component, so the affinity
//! term has standard deviation close to `affinity_scale`. The fixed effects
//! are the tables in [`tables`]. `β0` is solved at construction, by
//! bisection, so that the mean of `p_true` over 16 384 calibration rows
//! (drawn from their own stream) equals `ctr`; [`Generator::intercept`]
//! reports it. The OS, connection type, region, bid floor and domain carry no
//! effect. `p_true` is stored (as `f32`) in every row and the click is drawn
//! against that stored value, so the "oracle AUC" of `p_true` against the
//! labels is the best any model of these rows can score in expectation.

mod config;
mod csv;
mod generator;
mod math;
mod population;
pub mod tables;
mod truth;

pub use config::{limits, SynthConfig};
pub use csv::{
    parse_csv_row, read_csv, write_csv, CsvWriter, CSV_COLUMNS, CSV_HEADER, CSV_LINE_BYTES_MAX,
};
pub use generator::Generator;
pub use population::SynthOffer;
pub use truth::RowTruth;

use serde::{Deserialize, Serialize};
use std::fmt;

/// Version of the row stream. Any change to what a given config, seed and
/// index produce bumps it.
pub const GENERATOR_VERSION: u32 = 1;

/// A device's operating system.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Os {
    /// Android, including Android TV and Fire OS.
    Android,
    /// iOS and iPadOS.
    Ios,
    /// Windows.
    Windows,
    /// macOS.
    Macos,
    /// Linux.
    Linux,
    /// Anything else (ChromeOS, Roku OS, Tizen, webOS, tvOS, ...).
    Other,
}

impl Os {
    /// Every value.
    pub const ALL: [Os; 6] = [
        Self::Android,
        Self::Ios,
        Self::Windows,
        Self::Macos,
        Self::Linux,
        Self::Other,
    ];

    /// The lowercase name written to CSV: `android`, `ios`, `windows`, `macos`, `linux`, `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Android => "android",
            Self::Ios => "ios",
            Self::Windows => "windows",
            Self::Macos => "macos",
            Self::Linux => "linux",
            Self::Other => "other",
        }
    }

    /// The OS of a lowercase name, as [`Os::as_str`] writes it.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|os| os.as_str() == name)
    }
}

impl fmt::Display for Os {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One impression: the request context, the offer shown, its true click
/// probability and the sampled click.
///
/// Codes follow OpenRTB 2.6. The text fields never contain `,`, `|`, `"` or
/// a line break, so the CSV form needs no quoting.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SynthRow {
    /// Opaque, stable user id, below `2^53` (exact in JSON and `f64`).
    pub user_id: u64,
    /// The user's segment ids, ascending, distinct, in `0..segments`.
    pub segments: Vec<u32>,
    /// OpenRTB device type (list 5.21): 1 mobile/tablet, 2 PC, 3 connected
    /// TV, 4 phone, 5 tablet, 6 connected device, 7 set-top box.
    pub device_type: u8,
    /// Operating system.
    pub os: Os,
    /// OpenRTB connection type (list 5.22), `0..=7`.
    pub conn_type: u8,
    /// ISO 3166-1 alpha-3 country code.
    pub country: String,
    /// ISO 3166-2 subdivision code, without the country prefix.
    pub region: String,
    /// Publisher id: `site-J` for a web site, `app-J` for an app.
    pub site_or_app_id: String,
    /// Whether the publisher is an app.
    pub is_app: bool,
    /// The publisher's domain.
    pub domain: String,
    /// IAB content categories of the page or app: `IABn` and `IABn-m` codes.
    pub categories: Vec<String>,
    /// Placement width in pixels.
    pub width: u16,
    /// Placement height in pixels.
    pub height: u16,
    /// OpenRTB ad position (list 5.4), `0..=7`.
    pub position: u8,
    /// Bid floor in USD CPM, rounded to cents, at least 0.01.
    pub bid_floor: f64,
    /// Request time, unix seconds UTC.
    pub ts_unix: i64,
    /// Id of the offer shown.
    pub offer_id: u64,
    /// Whether the impression was clicked.
    pub click: bool,
    /// The ground-truth click probability the click was drawn with.
    pub p_true: f32,
}

impl SynthRow {
    /// The request context of this impression: exactly what the dataset
    /// loader reads from the row's CSV line under
    /// `models/specs/synthetic.toml`, so a model trained on the CSV sees the
    /// same features when the engine is fed the row directly.
    pub fn to_context(&self) -> cx_features::RequestContext {
        use cx_features::{AdPosition, ConnectionType, DeviceType, RequestContext};
        RequestContext {
            user_id: self.user_id.to_string(),
            user_segments: self.segments.iter().map(u32::to_string).collect(),
            device_type: DeviceType::from_openrtb(i64::from(self.device_type)),
            os: cx_features::Os::parse(self.os.as_str()),
            connection_type: ConnectionType::from_openrtb(i64::from(self.conn_type)),
            country: self.country.clone(),
            region: self.region.clone(),
            site_id: self.site_or_app_id.clone(),
            is_app: self.is_app,
            domain: self.domain.clone(),
            categories: self.categories.clone(),
            placement_width: u32::from(self.width),
            placement_height: u32::from(self.height),
            ad_position: AdPosition::from_openrtb(i64::from(self.position)),
            bid_floor: self.bid_floor,
            timestamp: self.ts_unix,
            ..RequestContext::default()
        }
    }
}
