//! The objects of a bid request that describe where the ad is shown and to
//! whom: the site or app (with its publisher and content), the device and
//! its location, the user and their audience data, and the regulations in
//! force. Typing rules are those of [`super::request`].

use serde::{Deserialize, Serialize};

use super::de;

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
    /// Screen size in pixels per linear inch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ppi: Option<u32>,
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
    /// Estimated accuracy of `lat`/`lon` in metres, as the device reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<u32>,
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
