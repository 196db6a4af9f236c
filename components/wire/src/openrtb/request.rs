//! The OpenRTB 2.5/2.6 `BidRequest` and the sub-objects the engine reads.
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

use serde::{Deserialize, Serialize};

use super::{de, openrtb_error};
use crate::error::Result;

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
    pub site: Option<Site>,
    /// The application, when the inventory is an app.
    #[serde(
        default,
        deserialize_with = "de::object",
        skip_serializing_if = "Option::is_none"
    )]
    pub app: Option<App>,
    /// The user's device.
    #[serde(
        default,
        deserialize_with = "de::object",
        skip_serializing_if = "Option::is_none"
    )]
    pub device: Option<Device>,
    /// The user (the audience).
    #[serde(
        default,
        deserialize_with = "de::object",
        skip_serializing_if = "Option::is_none"
    )]
    pub user: Option<User>,
    /// Regulations in force (COPPA, GDPR, US privacy, GPP).
    #[serde(
        default,
        deserialize_with = "de::object",
        skip_serializing_if = "Option::is_none"
    )]
    pub regs: Option<Regs>,
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

/// One allowed banner size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Format {
    /// Width in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub w: Option<u32>,
    /// Height in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub h: Option<u32>,
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

/// The website showing the impression.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Site {
    /// The exchange's id of the site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The site's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The site's domain (`mysite.foo.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// The site's IAB content categories.
    #[serde(
        default,
        deserialize_with = "de::list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub cat: Vec<String>,
    /// URL of the page showing the impression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    /// Referrer URL (OpenRTB `ref`).
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    /// The site's publisher.
    #[serde(
        default,
        deserialize_with = "de::object",
        skip_serializing_if = "Option::is_none"
    )]
    pub publisher: Option<Publisher>,
    /// The content shown next to the ad.
    #[serde(
        default,
        deserialize_with = "de::object",
        skip_serializing_if = "Option::is_none"
    )]
    pub content: Option<Content>,
    /// 1 when the site is optimised for mobile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobile: Option<u8>,
    /// Extensions, as raw JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ext: Option<serde_json::Value>,
}

/// The application showing the impression.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct App {
    /// The exchange's id of the app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The app's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Bundle or package name (`com.foo.mygame`), or store id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle: Option<String>,
    /// The app's domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// The app's store URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storeurl: Option<String>,
    /// The app's IAB content categories.
    #[serde(
        default,
        deserialize_with = "de::list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub cat: Vec<String>,
    /// Application version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ver: Option<String>,
    /// The app's publisher.
    #[serde(
        default,
        deserialize_with = "de::object",
        skip_serializing_if = "Option::is_none"
    )]
    pub publisher: Option<Publisher>,
    /// The content shown next to the ad.
    #[serde(
        default,
        deserialize_with = "de::object",
        skip_serializing_if = "Option::is_none"
    )]
    pub content: Option<Content>,
    /// Extensions, as raw JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ext: Option<serde_json::Value>,
}

/// The publisher of a site or app.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Publisher {
    /// The exchange's id of the publisher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The publisher's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The publisher's top-level domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

/// The content (article, episode, stream) the ad is shown with.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Content {
    /// The content's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The content's title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The content's IAB categories.
    #[serde(
        default,
        deserialize_with = "de::list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub cat: Vec<String>,
    /// The content's language (ISO-639-1 alpha-2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

/// The user's device.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Device {
    /// User agent string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ua: Option<String>,
    /// IPv4 address (often truncated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// IPv6 address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<String>,
    /// Device type (AdCOM "Device Types"); see [`cx_features::DeviceType`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devicetype: Option<i64>,
    /// Manufacturer (`Apple`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub make: Option<String>,
    /// Model (`iPhone`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Operating system (`iOS`); see [`cx_features::Os`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    /// Operating system version (`3.1.2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub osv: Option<String>,
    /// Physical screen width in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub w: Option<u32>,
    /// Physical screen height in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub h: Option<u32>,
    /// Browser language (ISO-639-1 alpha-2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Mobile carrier or ISP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
    /// Network connection type (AdCOM "Connection Types"); see
    /// [`cx_features::ConnectionType`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connectiontype: Option<i64>,
    /// Advertising id (IDFA / AAID) in the clear.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ifa: Option<String>,
    /// 1 for "do not track".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dnt: Option<u8>,
    /// 1 for "limit ad tracking".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lmt: Option<u8>,
    /// Location of the device.
    #[serde(
        default,
        deserialize_with = "de::object",
        skip_serializing_if = "Option::is_none"
    )]
    pub geo: Option<Geo>,
    /// Extensions, as raw JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ext: Option<serde_json::Value>,
}

/// A location.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Geo {
    /// Latitude, -90 to 90.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    /// Longitude, -180 to 180.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lon: Option<f64>,
    /// Source of the location (OpenRTB `type`: 1 GPS, 2 IP, 3 user-provided).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub source: Option<i64>,
    /// Country, ISO-3166-1 alpha-3 (`USA`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// Region, ISO-3166-2 subdivision (`CA`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Metro (Nielsen DMA) code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metro: Option<String>,
    /// City name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// Postal code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zip: Option<String>,
}

/// The user (audience) of the device.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// The exchange's id of the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The bidder's id of the user, as synced with the exchange.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buyeruid: Option<String>,
    /// Year of birth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yob: Option<u32>,
    /// `M`, `F` or `O`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender: Option<String>,
    /// GDPR consent string (OpenRTB 2.6; 2.5 carries it in `ext.consent`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<String>,
    /// The user's home location.
    #[serde(
        default,
        deserialize_with = "de::object",
        skip_serializing_if = "Option::is_none"
    )]
    pub geo: Option<Geo>,
    /// Audience data from data providers (at most [`super::limits::DATA_MAX`]).
    #[serde(
        default,
        deserialize_with = "de::data",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub data: Vec<Data>,
    /// Extensions, as raw JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ext: Option<serde_json::Value>,
}

/// Audience data from one data provider.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Data {
    /// The provider's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The provider's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The segments (at most [`super::limits::SEGMENTS_MAX`]).
    #[serde(
        default,
        deserialize_with = "de::segments",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub segment: Vec<Segment>,
}

/// One audience segment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// The segment's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The segment's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The segment's value, as a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// Regulations in force for the request.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Regs {
    /// 1 when COPPA applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coppa: Option<u8>,
    /// 1 when GDPR applies (OpenRTB 2.6; 2.5 carries it in `ext.gdpr`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gdpr: Option<u8>,
    /// The US privacy (CCPA) string (OpenRTB 2.6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub us_privacy: Option<String>,
    /// The IAB Global Privacy Platform string (OpenRTB 2.6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpp: Option<String>,
    /// The GPP sections in force (OpenRTB 2.6).
    #[serde(
        default,
        deserialize_with = "de::list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub gpp_sid: Vec<i64>,
    /// Extensions, as raw JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ext: Option<serde_json::Value>,
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

    /// Checks the rules serde cannot express: a non-empty id, at least one
    /// impression, non-empty unique impression ids, and finite non-negative
    /// floors (on impressions and deals).
    pub(super) fn validate(&self) -> Result<()> {
        if self.id.is_empty() {
            return Err(openrtb_error("id", "missing required field"));
        }
        if self.imp.is_empty() {
            return Err(openrtb_error("imp", "must hold at least one impression"));
        }
        for (i, imp) in self.imp.iter().enumerate() {
            if imp.id.is_empty() {
                return Err(openrtb_error(
                    format!("imp[{i}].id"),
                    "missing required field",
                ));
            }
            // At most IMPS_MAX impressions: a quadratic scan beats hashing.
            if let Some(first) = self.imp[..i].iter().position(|other| other.id == imp.id) {
                return Err(openrtb_error(
                    format!("imp[{i}].id"),
                    format!("`{}` is also the id of imp[{first}]", imp.id),
                ));
            }
            check_floor(imp.bidfloor, || format!("imp[{i}].bidfloor"))?;
            if let Some(pmp) = &imp.pmp {
                for (k, deal) in pmp.deals.iter().enumerate() {
                    if deal.id.is_empty() {
                        return Err(openrtb_error(
                            format!("imp[{i}].pmp.deals[{k}].id"),
                            "missing required field",
                        ));
                    }
                    check_floor(deal.bidfloor, || {
                        format!("imp[{i}].pmp.deals[{k}].bidfloor")
                    })?;
                }
            }
        }
        Ok(())
    }
}

/// A floor must be finite and non-negative.
fn check_floor(floor: Option<f64>, path: impl FnOnce() -> String) -> Result<()> {
    match floor {
        Some(f) if !f.is_finite() || f < 0.0 => Err(openrtb_error(
            path(),
            format!("must be a finite number >= 0, got {f}"),
        )),
        _ => Ok(()),
    }
}
