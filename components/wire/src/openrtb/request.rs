//! The OpenRTB 2.5/2.6 `BidRequest`, its impressions and what they offer
//! (banner, video, audio, native, deals). The site, app, device, user and
//! regulations live in [`super::context`]; the rules beyond types live in
//! [`super::validate`].
//!
//! Field names are OpenRTB's own (`bidfloorcur`, `devicetype`), except where
//! OpenRTB uses a Rust keyword (`ref`, `type`). Typing rules, so that real
//! traffic parses and nonsense does not:
//!
//! - OpenRTB enumeration codes (`devicetype`, `pos`, `battr`, ...) are `i64`:
//!   any integer parses, and the conversion maps a code outside its list to
//!   `Unknown`.
//! - Sizes, durations and counts are `u32`: a negative size is refused, as
//!   it is no size at all.
//! - 0/1 flags are `u8`; money is `f64`.
//! - Every optional object or scalar is an `Option`, every list a `Vec`
//!   (absent, `null` and `[]` all read as empty), and serialising leaves
//!   `None`s, empty lists and zero flags out, so a parsed request writes back
//!   as clean OpenRTB.
//!
//! Data layout: the request's context objects (site, app, device, user,
//! regulations) are boxed. Inline they made a `BidRequest` of 1,968
//! bytes, moved whole several times as it is read and handed on; boxed,
//! only the objects a request has are allocated, and a parse is about 7%
//! faster (`cargo bench -p cx-benches --bench openrtb`).

use serde::{Deserialize, Serialize};

use super::context::{App, Device, Regs, Site, User};
use super::de;

/// An OpenRTB 2.5/2.6 bid request: one auction with one or more impressions.
/// Read it with [`super::parse_request`], which also checks the rules below.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BidRequest {
    /// The request's id, chosen by the exchange; required and non-empty.
    pub id: String,
    /// The impressions offered: 1 to [`super::limits::IMPS_MAX`], with unique
    /// non-empty ids.
    #[serde(deserialize_with = "de::imps")]
    pub imp: Vec<Imp>,
    /// The website, when the inventory is a site.
    #[serde(
        default,
        deserialize_with = "de::object",
        skip_serializing_if = "Option::is_none"
    )]
    pub site: Option<Box<Site>>,
    /// The application, when the inventory is an app.
    #[serde(
        default,
        deserialize_with = "de::object",
        skip_serializing_if = "Option::is_none"
    )]
    pub app: Option<Box<App>>,
    /// The digital out-of-home screen (OpenRTB 2.6), as raw JSON: only its
    /// presence is read (a request has exactly one of `site`, `app` and
    /// `dooh`).
    #[serde(
        default,
        deserialize_with = "de::object",
        skip_serializing_if = "Option::is_none"
    )]
    pub dooh: Option<serde_json::Value>,
    /// The user's device.
    #[serde(
        default,
        deserialize_with = "de::object",
        skip_serializing_if = "Option::is_none"
    )]
    pub device: Option<Box<Device>>,
    /// The user (the audience).
    #[serde(
        default,
        deserialize_with = "de::object",
        skip_serializing_if = "Option::is_none"
    )]
    pub user: Option<Box<User>>,
    /// Regulations in force (COPPA, GDPR, US privacy, GPP).
    #[serde(
        default,
        deserialize_with = "de::object",
        skip_serializing_if = "Option::is_none"
    )]
    pub regs: Option<Box<Regs>>,
    /// 1 for a test request (no billing), 0 (the default) for live traffic.
    #[serde(default, skip_serializing_if = "de::is_zero")]
    pub test: u8,
    /// Auction type: 1 first price, 2 second price plus (OpenRTB's default
    /// when absent); exchanges use 500+ for their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<i64>,
    /// Time the exchange allows for a bid, in milliseconds, network included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmax: Option<u32>,
    /// Currencies allowed for bids (ISO-4217); empty means any (USD in practice).
    #[serde(
        default,
        deserialize_with = "de::list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub cur: Vec<String>,
    /// Blocked advertiser categories (IAB content taxonomy codes).
    #[serde(
        default,
        deserialize_with = "de::list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub bcat: Vec<String>,
    /// Blocked advertiser domains.
    #[serde(
        default,
        deserialize_with = "de::list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub badv: Vec<String>,
    /// Blocked applications, by bundle or package name.
    #[serde(
        default,
        deserialize_with = "de::list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub bapp: Vec<String>,
    /// Seats allowed to bid; empty means all.
    #[serde(
        default,
        deserialize_with = "de::list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub wseat: Vec<String>,
    /// Seats blocked from bidding.
    #[serde(
        default,
        deserialize_with = "de::list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub bseat: Vec<String>,
    /// Exchange-specific extensions, as raw JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ext: Option<serde_json::Value>,
}

/// One impression (ad slot) offered in a request.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Imp {
    /// The impression's id, unique within the request; required and non-empty.
    pub id: String,
    /// Present when a banner (display) ad is allowed.
    #[serde(
        default,
        deserialize_with = "de::object",
        skip_serializing_if = "Option::is_none"
    )]
    pub banner: Option<Banner>,
    /// Present when a video ad is allowed.
    #[serde(
        default,
        deserialize_with = "de::object",
        skip_serializing_if = "Option::is_none"
    )]
    pub video: Option<Video>,
    /// Present when an audio ad is allowed.
    #[serde(
        default,
        deserialize_with = "de::object",
        skip_serializing_if = "Option::is_none"
    )]
    pub audio: Option<Audio>,
    /// Present when a native ad is allowed.
    #[serde(
        default,
        deserialize_with = "de::object",
        skip_serializing_if = "Option::is_none"
    )]
    pub native: Option<Native>,
    /// Private marketplace deals for this impression.
    #[serde(
        default,
        deserialize_with = "de::object",
        skip_serializing_if = "Option::is_none"
    )]
    pub pmp: Option<Pmp>,
    /// The publisher's identifier of the placement (ad tag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tagid: Option<String>,
    /// Minimum bid, CPM in [`bidfloorcur`](Self::bidfloorcur) units; finite
    /// and non-negative. Absent means no floor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bidfloor: Option<f64>,
    /// Currency of the floor (ISO-4217); absent means USD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bidfloorcur: Option<String>,
    /// 1 for an interstitial or full-screen placement.
    #[serde(default, skip_serializing_if = "de::is_zero")]
    pub instl: u8,
    /// 1 when the creative must be served over HTTPS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secure: Option<u8>,
    /// 1 when the user is rewarded for viewing the ad (OpenRTB 2.6).
    #[serde(default, skip_serializing_if = "de::is_zero")]
    pub rwdd: u8,
    /// Exchange- and bidder-specific extensions, as raw JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ext: Option<serde_json::Value>,
}

/// A banner (display) placement.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Banner {
    /// Exact width in pixels (or device-independent pixels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub w: Option<u32>,
    /// Exact height in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub h: Option<u32>,
    /// Allowed sizes, most preferred first (at most [`super::limits::FORMATS_MAX`]).
    #[serde(
        default,
        deserialize_with = "de::formats",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub format: Vec<Format>,
    /// Position on screen (AdCOM "Placement Positions").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pos: Option<i64>,
    /// Blocked banner types (OpenRTB "Banner Ad Types").
    #[serde(
        default,
        deserialize_with = "de::list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub btype: Vec<i64>,
    /// Blocked creative attributes (AdCOM "Creative Attributes").
    #[serde(
        default,
        deserialize_with = "de::list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub battr: Vec<i64>,
}

/// One allowed banner size: an absolute size (`w` and `h`) or a flex-ad
/// ratio size (`wratio`, `hratio` and `wmin`), never both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Format {
    /// Width in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub w: Option<u32>,
    /// Height in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub h: Option<u32>,
    /// Relative width, when the size is a ratio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wratio: Option<u32>,
    /// Relative height, when the size is a ratio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hratio: Option<u32>,
    /// Smallest width in pixels at which a ratio-sized ad is shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wmin: Option<u32>,
}

/// A video placement.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Video {
    /// Supported MIME types (`video/mp4`, ...).
    #[serde(
        default,
        deserialize_with = "de::list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub mimes: Vec<String>,
    /// Minimum duration in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minduration: Option<u32>,
    /// Maximum duration in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maxduration: Option<u32>,
    /// Supported video protocols (VAST versions).
    #[serde(
        default,
        deserialize_with = "de::list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub protocols: Vec<i64>,
    /// Player width in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub w: Option<u32>,
    /// Player height in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub h: Option<u32>,
    /// Minimum bit rate in kbit/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minbitrate: Option<u32>,
    /// Maximum bit rate in kbit/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maxbitrate: Option<u32>,
    /// Start delay in seconds; 0 pre-roll, -1 generic mid-roll, -2 generic post-roll.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startdelay: Option<i64>,
    /// Placement type (OpenRTB 2.5 `placement`, deprecated by `plcmt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<i64>,
    /// Placement subtype (OpenRTB 2.6 `plcmt`: 1 instream, 2 accompanying, 3 interstitial, 4 no content).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plcmt: Option<i64>,
    /// 1 linear (in-stream), 2 non-linear (overlay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linearity: Option<i64>,
    /// Position on screen (AdCOM "Placement Positions").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pos: Option<i64>,
    /// Blocked creative attributes.
    #[serde(
        default,
        deserialize_with = "de::list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub battr: Vec<i64>,
}

/// An audio placement.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Audio {
    /// Supported MIME types (`audio/mp4`, ...).
    #[serde(
        default,
        deserialize_with = "de::list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub mimes: Vec<String>,
    /// Minimum duration in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minduration: Option<u32>,
    /// Maximum duration in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maxduration: Option<u32>,
    /// Supported audio protocols (DAAST/VAST versions).
    #[serde(
        default,
        deserialize_with = "de::list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub protocols: Vec<i64>,
    /// Minimum bit rate in kbit/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minbitrate: Option<u32>,
    /// Maximum bit rate in kbit/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maxbitrate: Option<u32>,
}

/// A native placement; the asset request itself stays an opaque string.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Native {
    /// The Native Ad Specification request, JSON-encoded as a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// Version of the Native Ad Specification (`1.2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ver: Option<String>,
}

/// A private marketplace: the deals offered on one impression.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Pmp {
    /// 1 when only the listed deals may bid.
    #[serde(default, skip_serializing_if = "de::is_zero")]
    pub private_auction: u8,
    /// The deals (at most [`super::limits::DEALS_MAX`]).
    #[serde(
        default,
        deserialize_with = "de::deals",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub deals: Vec<Deal>,
}

/// One private marketplace deal.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Deal {
    /// The deal's id; required and non-empty.
    pub id: String,
    /// The deal's floor, CPM; finite and non-negative.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bidfloor: Option<f64>,
    /// Currency of the deal's floor; absent means USD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bidfloorcur: Option<String>,
    /// The deal's auction type, overriding the request's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<i64>,
    /// Seats allowed to bid on the deal; empty means all.
    #[serde(
        default,
        deserialize_with = "de::list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub wseat: Vec<String>,
}

impl BidRequest {
    /// Whether this is a test request (`test` is not 0).
    pub fn is_test(&self) -> bool {
        self.test != 0
    }

    /// The impression with this id, if any.
    pub fn imp_by_id(&self, id: &str) -> Option<&Imp> {
        self.imp.iter().find(|imp| imp.id == id)
    }
}
