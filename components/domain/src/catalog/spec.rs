//! The plain, serde form of one offer ([`OfferSpec`]) and its small value
//! types. A catalog file is an array of these; [`super::Catalog`] validates
//! them and lays them out column by column.

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use cx_features::DeviceType;

/// At most `impressions` impressions of an offer per user within any
/// `window_s` seconds. The catalog only carries the cap; the frequency store
/// counts impressions and enforces it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrequencyCap {
    /// Impressions allowed per window, in
    /// `1..=`[`FREQUENCY_IMPRESSIONS_MAX`](super::limits::FREQUENCY_IMPRESSIONS_MAX).
    pub impressions: u32,
    /// The window's length in seconds, in
    /// `1..=`[`FREQUENCY_WINDOW_S_MAX`](super::limits::FREQUENCY_WINDOW_S_MAX).
    pub window_s: u32,
}

/// The inventory channels an offer may run on: web sites, apps, or both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channels {
    /// Web sites only (the request has a `site` object).
    Site,
    /// Apps only (the request has an `app` object).
    App,
    /// Sites and apps; the default.
    #[default]
    Any,
}

impl Channels {
    /// Bit of the site channel in [`Self::mask`].
    pub const SITE_BIT: u8 = 0b01;
    /// Bit of the app channel in [`Self::mask`].
    pub const APP_BIT: u8 = 0b10;

    /// The TOML label: `site`, `app` or `any`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Site => "site",
            Self::App => "app",
            Self::Any => "any",
        }
    }

    /// The channels as a 2-bit mask of [`Self::SITE_BIT`] and [`Self::APP_BIT`].
    pub fn mask(self) -> u8 {
        match self {
            Self::Site => Self::SITE_BIT,
            Self::App => Self::APP_BIT,
            Self::Any => Self::SITE_BIT | Self::APP_BIT,
        }
    }

    /// The channels of a 2-bit mask; `None` for a mask with neither bit.
    pub fn from_mask(mask: u8) -> Option<Self> {
        match mask & (Self::SITE_BIT | Self::APP_BIT) {
            Self::SITE_BIT => Some(Self::Site),
            Self::APP_BIT => Some(Self::App),
            0b11 => Some(Self::Any),
            _ => None,
        }
    }
}

impl fmt::Display for Channels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// One offer as written in a catalog file (one `[[offer]]` table) or built
/// in code. [`super::Catalog::from_offers`] validates it; the ranges and
/// units of every field are in `docs/CATALOG.md` and in [`super::limits`].
///
/// In TOML, `id`, `name`, `conversion_rate`, `revenue`, `max_bid_cpm` and
/// `creative_id` are required; every other field may be left out and takes
/// the value [`OfferSpec::new`] gives it (zero, empty, `any`, none). Unknown
/// fields are refused.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfferSpec {
    /// The offer's id, unique in the catalog, in `1..=`[`ID_MAX`](super::limits::ID_MAX).
    pub id: u64,
    /// A human-readable name (logs, reports); not shown to users.
    pub name: String,
    /// `P(conversion | click)`, in `[0, 1]`.
    pub conversion_rate: f32,
    /// Currency units earned per conversion, `>= 0`.
    pub revenue: f32,
    /// Expected extra customer value per conversion beyond `revenue`, in
    /// currency units, `>= 0`.
    #[serde(default)]
    pub lifetime_value: f32,
    /// Expected engagement uplift per click, normalised to `[0, 1]`.
    #[serde(default)]
    pub engagement: f32,
    /// Expected retention uplift per click, normalised to `[0, 1]`.
    #[serde(default)]
    pub retention: f32,
    /// The most the engine ever bids for this offer: CPM in currency units, `> 0`.
    pub max_bid_cpm: f32,
    /// A business priority added to the blended score, in `[-1, 1]`.
    #[serde(default)]
    pub boost: f32,
    /// Device types the offer may be shown on; empty means any (including
    /// an unknown device type). In TOML each is the OpenRTB integer (`4`) or
    /// the [`DeviceType::SLOTS`] label (`"phone"`).
    #[serde(default, with = "device_types_serde")]
    pub device_types: Vec<DeviceType>,
    /// Countries (ISO 3166-1 alpha-3, upper case, e.g. `"USA"`) the offer
    /// may be shown in; empty means any.
    #[serde(default)]
    pub countries: Vec<String>,
    /// Placement sizes `(width, height)` in pixels the offer has creatives
    /// for; empty means any. In TOML each is a `"300x250"` string.
    #[serde(default, with = "sizes_serde")]
    pub sizes: Vec<(u32, u32)>,
    /// The channels the offer may run on; default [`Channels::Any`].
    #[serde(default)]
    pub channels: Channels,
    /// User segments the offer is aimed at (exact strings, as in
    /// [`RequestContext::user_segments`](crate::RequestContext::user_segments)).
    /// They do not restrict eligibility; the scorer reads
    /// [`super::Catalog::segment_match`].
    #[serde(default)]
    pub segments: Vec<String>,
    /// IAB content categories the offer is aimed at (`"IAB1"` also covers
    /// pages in `"IAB1-2"`). Like segments, a scoring signal, not a filter.
    #[serde(default)]
    pub categories: Vec<String>,
    /// Per-user frequency cap, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_cap: Option<FrequencyCap>,
    /// Spend allowed per UTC day in currency units, if capped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_budget: Option<f64>,
    /// Advertiser domains for the bid response's `adomain` (e.g. `"example.com"`).
    #[serde(default)]
    pub adomain: Vec<String>,
    /// The creative id for the bid response's `crid`.
    pub creative_id: String,
    /// Creative attributes for the bid response's `attr` (AdCOM 1.0 list
    /// "Creative Attributes", 1 to [`ATTR_MAX`](super::limits::ATTR_MAX)).
    #[serde(default)]
    pub attr: Vec<u32>,
    /// The creative: assets and markup templates (`[offer.creative]`);
    /// an offer without one gets no OpenRTB bid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creative: Option<super::CreativeSpec>,
    /// Other versions of the creative (`[[offer.variants]]`), chosen per
    /// bid by Thompson sampling ([`super::variants`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<super::VariantSpec>,
}

impl OfferSpec {
    /// Every field name of the TOML form, in the order
    /// [`super::Catalog::to_toml`] writes them.
    pub const FIELDS: &'static [&'static str] = &[
        "id",
        "name",
        "conversion_rate",
        "revenue",
        "lifetime_value",
        "engagement",
        "retention",
        "max_bid_cpm",
        "boost",
        "device_types",
        "countries",
        "sizes",
        "channels",
        "segments",
        "categories",
        "frequency_cap",
        "daily_budget",
        "adomain",
        "creative_id",
        "attr",
        "creative",
        "variants",
    ];

    /// The fields a TOML offer must have.
    pub const REQUIRED_FIELDS: &'static [&'static str] = &[
        "id",
        "name",
        "conversion_rate",
        "revenue",
        "max_bid_cpm",
        "creative_id",
    ];

    /// A broadly eligible offer to start from in code: name `offer {id}`,
    /// creative id `cr-{id}`, `max_bid_cpm` 1.0, every objective value and
    /// the boost 0, no targeting, no cap, no budget, no advertiser domain,
    /// no creative attributes and no creative.
    pub fn new(id: u64) -> Self {
        Self {
            id,
            name: format!("offer {id}"),
            conversion_rate: 0.0,
            revenue: 0.0,
            lifetime_value: 0.0,
            engagement: 0.0,
            retention: 0.0,
            max_bid_cpm: 1.0,
            boost: 0.0,
            device_types: Vec::new(),
            countries: Vec::new(),
            sizes: Vec::new(),
            channels: Channels::Any,
            segments: Vec::new(),
            categories: Vec::new(),
            frequency_cap: None,
            daily_budget: None,
            adomain: Vec::new(),
            creative_id: format!("cr-{id}"),
            attr: Vec::new(),
            creative: None,
            variants: Vec::new(),
        }
    }
}

/// Parses a device type from its OpenRTB integer (1-7).
fn device_type_from_int(value: i64) -> Option<DeviceType> {
    match DeviceType::from_openrtb(value) {
        DeviceType::Unknown => None,
        known => Some(known),
    }
}

/// Parses a device type from its [`DeviceType::SLOTS`] label (not `unknown`).
pub(crate) fn device_type_from_label(label: &str) -> Option<DeviceType> {
    (1..DeviceType::SLOTS.len())
        .find(|&slot| DeviceType::SLOTS[slot] == label)
        .and_then(|slot| device_type_from_int(slot as i64))
}

/// One device type of the TOML form: an integer or a label.
struct DeviceTypeItem(DeviceType);

impl<'de> Deserialize<'de> for DeviceTypeItem {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ItemVisitor;

        impl Visitor<'_> for ItemVisitor {
            type Value = DeviceTypeItem;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an OpenRTB device type: an integer 1-7 or a label such as \"phone\"")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                device_type_from_int(v).map(DeviceTypeItem).ok_or_else(|| {
                    E::custom(format!(
                        "{v} is not an OpenRTB device type; expected an integer 1-7"
                    ))
                })
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                match i64::try_from(v) {
                    Ok(v) => self.visit_i64(v),
                    Err(_) => Err(E::custom(format!(
                        "{v} is not an OpenRTB device type; expected an integer 1-7"
                    ))),
                }
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                device_type_from_label(v)
                    .map(DeviceTypeItem)
                    .ok_or_else(|| {
                        E::custom(format!(
                            "{v:?} is not a device type label; expected one of {}",
                            DeviceType::SLOTS[1..].join(", ")
                        ))
                    })
            }
        }

        deserializer.deserialize_any(ItemVisitor)
    }
}

/// Serde for `Vec<DeviceType>`: labels out, integers or labels in.
mod device_types_serde {
    use super::*;

    pub fn serialize<S: Serializer>(
        value: &[DeviceType],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(value.iter().map(|d| d.label()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<DeviceType>, D::Error> {
        let items = Vec::<DeviceTypeItem>::deserialize(deserializer)?;
        Ok(items.into_iter().map(|item| item.0).collect())
    }
}

/// Formats a placement size as `"WIDTHxHEIGHT"`.
pub(crate) fn size_label(size: (u32, u32)) -> String {
    format!("{}x{}", size.0, size.1)
}

/// Parses `"WIDTHxHEIGHT"` (decimal digits only on each side).
pub(crate) fn parse_size(text: &str) -> Option<(u32, u32)> {
    let (w, h) = text.split_once('x')?;
    let number = |s: &str| {
        if s.is_empty() || s.len() > 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
            None
        } else {
            s.parse::<u32>().ok()
        }
    };
    Some((number(w)?, number(h)?))
}

/// One placement size of the TOML form: a `"300x250"` string.
struct SizeItem((u32, u32));

impl<'de> Deserialize<'de> for SizeItem {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ItemVisitor;

        impl Visitor<'_> for ItemVisitor {
            type Value = SizeItem;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a placement size such as \"300x250\"")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                parse_size(v).map(SizeItem).ok_or_else(|| {
                    E::custom(format!(
                        "{v:?} is not a placement size; expected \"WIDTHxHEIGHT\" such as \"300x250\""
                    ))
                })
            }
        }

        deserializer.deserialize_str(ItemVisitor)
    }
}

/// Serde for `Vec<(u32, u32)>` as `"WxH"` strings.
mod sizes_serde {
    use super::*;

    pub fn serialize<S: Serializer>(
        value: &[(u32, u32)],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(value.iter().map(|&s| size_label(s)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<(u32, u32)>, D::Error> {
        struct SeqVisitor;

        impl<'de> Visitor<'de> for SeqVisitor {
            type Value = Vec<(u32, u32)>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of placement sizes such as [\"300x250\", \"728x90\"]")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(SizeItem(size)) = seq.next_element()? {
                    out.push(size);
                }
                Ok(out)
            }
        }

        deserializer.deserialize_seq(SeqVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_strictly() {
        assert_eq!(parse_size("300x250"), Some((300, 250)));
        assert_eq!(parse_size("0x0"), Some((0, 0)));
        for bad in [
            "",
            "x",
            "300x",
            "x250",
            "300X250",
            "+300x250",
            "300x250x1",
            " 300x250",
            "3e2x1",
        ] {
            assert_eq!(parse_size(bad), None, "{bad:?}");
        }
        assert_eq!(parse_size("9999999999x1"), None);
        assert_eq!(size_label((728, 90)), "728x90");
    }

    #[test]
    fn device_labels_cover_every_known_type() {
        for slot in 1..DeviceType::SLOTS.len() {
            let d = device_type_from_label(DeviceType::SLOTS[slot]).unwrap();
            assert_eq!(d.slot(), slot);
        }
        assert_eq!(device_type_from_label("unknown"), None);
        assert_eq!(device_type_from_label("Phone"), None);
    }

    #[test]
    fn channel_masks_round_trip() {
        for c in [Channels::Site, Channels::App, Channels::Any] {
            assert_eq!(Channels::from_mask(c.mask()), Some(c));
        }
        assert_eq!(Channels::from_mask(0), None);
    }
}
