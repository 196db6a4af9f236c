//! The JSON form of the engine's request context
//! ([`cx_features::RequestContext`]), as a DSJSON event's `c.cx` holds it.
//!
//! It mirrors the struct field for field, under the same names: text and
//! lists as they are, the OpenRTB enumerations as their OpenRTB integers
//! (0 for unknown), the OS as its label (`android`, `ios`, `windows`,
//! `macos`, `linux`, `other`). Every field may be left out (its "missing"
//! value, as [`Default`] gives); a field this build does not know is
//! refused, so that a misspelt name cannot silently become a missing value.

use cx_features::{
    AdPosition, ConnectionType, DeviceType, Os, RequestContext, EXTRA_NUMERIC_SLOTS,
};
use serde::{Deserialize, Serialize};

/// A [`RequestContext`] as JSON (see the [module docs](self)).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContextJson {
    /// `RequestContext::user_id`.
    pub user_id: String,
    /// `RequestContext::user_segments`.
    pub user_segments: Vec<String>,
    /// `RequestContext::device_type`: the OpenRTB `device.devicetype`, 0 if unknown.
    pub device_type: i64,
    /// `RequestContext::os`: its label.
    pub os: String,
    /// `RequestContext::connection_type`: the OpenRTB value, 0 if unknown.
    pub connection_type: i64,
    /// `RequestContext::country`.
    pub country: String,
    /// `RequestContext::region`.
    pub region: String,
    /// `RequestContext::site_id`.
    pub site_id: String,
    /// `RequestContext::is_app`.
    pub is_app: bool,
    /// `RequestContext::domain`.
    pub domain: String,
    /// `RequestContext::categories`.
    pub categories: Vec<String>,
    /// `RequestContext::placement_width`.
    pub placement_width: u32,
    /// `RequestContext::placement_height`.
    pub placement_height: u32,
    /// `RequestContext::ad_position`: the OpenRTB `imp.banner.pos`, 0 if unknown.
    pub ad_position: i64,
    /// `RequestContext::bid_floor`.
    pub bid_floor: f64,
    /// `RequestContext::timestamp`: unix seconds.
    pub timestamp: i64,
    /// `RequestContext::extra`.
    pub extra: Vec<String>,
    /// `RequestContext::extra_numeric`.
    pub extra_numeric: [f64; EXTRA_NUMERIC_SLOTS],
}

/// A number JSON can hold that reads as `value` does: NaN and `-inf` become
/// 0 and `+inf` the largest double. The feature schema and the pricing rule
/// treat NaN, negative values and 0 alike (no floor, no value) and clamp
/// large ones, so the engine sees the same request.
fn finite(value: f64) -> f64 {
    if value.is_nan() || value == f64::NEG_INFINITY {
        0.0
    } else if value == f64::INFINITY {
        f64::MAX
    } else {
        value
    }
}

impl From<&RequestContext> for ContextJson {
    fn from(ctx: &RequestContext) -> Self {
        Self {
            user_id: ctx.user_id.clone(),
            user_segments: ctx.user_segments.clone(),
            device_type: ctx.device_type.openrtb().map_or(0, i64::from),
            os: ctx.os.label().to_string(),
            connection_type: ctx.connection_type.openrtb().map_or(0, i64::from),
            country: ctx.country.clone(),
            region: ctx.region.clone(),
            site_id: ctx.site_id.clone(),
            is_app: ctx.is_app,
            domain: ctx.domain.clone(),
            categories: ctx.categories.clone(),
            placement_width: ctx.placement_width,
            placement_height: ctx.placement_height,
            ad_position: ctx.ad_position.openrtb().map_or(0, i64::from),
            bid_floor: finite(ctx.bid_floor),
            timestamp: ctx.timestamp,
            extra: ctx.extra.clone(),
            extra_numeric: ctx.extra_numeric.map(finite),
        }
    }
}

impl From<ContextJson> for RequestContext {
    fn from(json: ContextJson) -> Self {
        Self {
            user_id: json.user_id,
            user_segments: json.user_segments,
            device_type: DeviceType::from_openrtb(json.device_type),
            os: Os::parse(&json.os),
            connection_type: ConnectionType::from_openrtb(json.connection_type),
            country: json.country,
            region: json.region,
            site_id: json.site_id,
            is_app: json.is_app,
            domain: json.domain,
            categories: json.categories,
            placement_width: json.placement_width,
            placement_height: json.placement_height,
            ad_position: AdPosition::from_openrtb(json.ad_position),
            bid_floor: json.bid_floor,
            timestamp: json.timestamp,
            extra: json.extra,
            extra_numeric: json.extra_numeric,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_context() -> RequestContext {
        RequestContext {
            user_id: "u-17".into(),
            user_segments: vec!["3".into(), "12".into()],
            device_type: DeviceType::Phone,
            os: Os::Ios,
            connection_type: ConnectionType::Cellular4g,
            country: "USA".into(),
            region: "CA".into(),
            site_id: "app-4".into(),
            is_app: true,
            domain: "example.com".into(),
            categories: vec!["IAB1-2".into()],
            placement_width: 320,
            placement_height: 50,
            ad_position: AdPosition::AboveTheFold,
            bid_floor: 0.35,
            timestamp: 1_767_225_600,
            extra: vec!["C14=7".into()],
            extra_numeric: [1.0, 0.0, 2.5, 0.0],
        }
    }

    #[test]
    fn a_context_survives_json_unchanged() {
        for ctx in [full_context(), RequestContext::default()] {
            let text = serde_json::to_string(&ContextJson::from(&ctx)).unwrap();
            let back: ContextJson = serde_json::from_str(&text).unwrap();
            assert_eq!(RequestContext::from(back), ctx, "{text}");
        }
    }

    #[test]
    fn enumerations_are_openrtb_integers_and_the_os_its_label() {
        let json = serde_json::to_value(ContextJson::from(&full_context())).unwrap();
        assert_eq!(json["device_type"], 4);
        assert_eq!(json["connection_type"], 6);
        assert_eq!(json["ad_position"], 1);
        assert_eq!(json["os"], "ios");
        let unknown = serde_json::to_value(ContextJson::from(&RequestContext::default())).unwrap();
        assert_eq!(unknown["device_type"], 0);
        assert_eq!(unknown["os"], "other");
    }

    #[test]
    fn missing_fields_are_missing_values_and_unknown_ones_are_refused() {
        let ctx: ContextJson = serde_json::from_str(r#"{"country": "DEU"}"#).unwrap();
        assert_eq!(
            RequestContext::from(ctx),
            RequestContext {
                country: "DEU".into(),
                ..RequestContext::default()
            }
        );
        let err = serde_json::from_str::<ContextJson>(r#"{"contry": "DEU"}"#).unwrap_err();
        assert!(err.to_string().contains("contry"), "{err}");
    }

    #[test]
    fn non_finite_numbers_become_ones_that_read_the_same() {
        let ctx = RequestContext {
            bid_floor: f64::NAN,
            extra_numeric: [f64::INFINITY, f64::NEG_INFINITY, 1.0, 0.0],
            ..RequestContext::default()
        };
        let json = ContextJson::from(&ctx);
        assert_eq!(json.bid_floor, 0.0);
        assert_eq!(json.extra_numeric, [f64::MAX, 0.0, 1.0, 0.0]);
        let text = serde_json::to_string(&json).unwrap();
        assert_eq!(serde_json::from_str::<ContextJson>(&text).unwrap(), json);
    }
}
