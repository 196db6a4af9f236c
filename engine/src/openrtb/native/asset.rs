//! One native request asset as read: only what its answer needs, on the
//! stack. A field of the wrong type reads as [`Num::Other`] (or an object
//! as empty), the way `serde_json::Value::get` and `as_u64` saw it.

use super::{drain, drain_map};
use cx_domain::catalog::showable::native_asset;
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// A number field: absent, a non-negative integer, or anything else.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum Num {
    #[default]
    Absent,
    Int(u64),
    Other,
}

impl Num {
    /// The value, when it is a non-negative integer.
    pub(super) fn as_u64(self) -> Option<u64> {
        match self {
            Self::Int(n) => Some(n),
            Self::Absent | Self::Other => None,
        }
    }
}

/// The fields of an asset's `title`, `img` or `data` object that an
/// answer reads.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Fields {
    /// `type` (of an image or a data asset).
    pub(super) kind: Num,
    /// `len` (of a title or a data asset).
    pub(super) len: Num,
    pub(super) w: Num,
    pub(super) wmin: Num,
    pub(super) h: Num,
    pub(super) hmin: Num,
}

/// One asset of the request.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct AssetRequest {
    pub(super) id: Num,
    pub(super) required: Num,
    pub(super) title: Option<Fields>,
    pub(super) img: Option<Fields>,
    pub(super) data: Option<Fields>,
}

impl AssetRequest {
    /// The creative field the asset needs ([`native_asset`] bits): a
    /// title, an icon (image type 1), the main image (any other image), a
    /// sponsor, description or call to action (data types 1, 2, 12);
    /// [`native_asset::UNFILLABLE`] for anything else.
    pub(super) fn need(&self) -> u8 {
        if self.title.is_some() {
            native_asset::TITLE
        } else if let Some(img) = self.img {
            if img.kind.as_u64() == Some(1) {
                native_asset::ICON
            } else {
                native_asset::IMAGE
            }
        } else if let Some(data) = self.data {
            match data.kind.as_u64() {
                Some(1) => native_asset::SPONSOR,
                Some(2) => native_asset::DESCRIPTION,
                Some(12) => native_asset::CTA,
                _ => native_asset::UNFILLABLE,
            }
        } else {
            native_asset::UNFILLABLE
        }
    }
}

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        de.deserialize_any(NumVisitor)
    }
}

struct NumVisitor;

impl<'de> Visitor<'de> for NumVisitor {
    type Value = Num;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_u64<E>(self, n: u64) -> Result<Num, E> {
        Ok(Num::Int(n))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Num, E> {
        Ok(u64::try_from(n).map_or(Num::Other, Num::Int))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Num, E> {
        Ok(Num::Other)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Num, E> {
        Ok(Num::Other)
    }

    fn visit_str<E>(self, _: &str) -> Result<Num, E> {
        Ok(Num::Other)
    }

    fn visit_unit<E>(self) -> Result<Num, E> {
        Ok(Num::Other)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Num, A::Error> {
        drain(seq)?;
        Ok(Num::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Num, A::Error> {
        drain_map(map)?;
        Ok(Num::Other)
    }
}

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        de.deserialize_any(FieldsVisitor)
    }
}

struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Fields;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    other_kinds!(Fields, Fields::default(), seq);

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
        let mut fields = Fields::default();
        while let Some(key) = map.next_key::<Name>()? {
            let slot = match key.0 {
                "type" => &mut fields.kind,
                "len" => &mut fields.len,
                "w" => &mut fields.w,
                "wmin" => &mut fields.wmin,
                "h" => &mut fields.h,
                "hmin" => &mut fields.hmin,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            // A key met twice: the last value counts, as in `Value`.
            *slot = map.next_value()?;
        }
        Ok(fields)
    }
}

impl<'de> Deserialize<'de> for AssetRequest {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        de.deserialize_any(AssetVisitor)
    }
}

struct AssetVisitor;

impl<'de> Visitor<'de> for AssetVisitor {
    type Value = AssetRequest;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    // Not an object: no id, so the request has no answer.
    other_kinds!(AssetRequest, AssetRequest::default(), seq);

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AssetRequest, A::Error> {
        let mut asset = AssetRequest::default();
        while let Some(key) = map.next_key::<Name>()? {
            match key.0 {
                "id" => asset.id = map.next_value()?,
                "required" => asset.required = map.next_value()?,
                "title" => asset.title = Some(map.next_value()?),
                "img" => asset.img = Some(map.next_value()?),
                "data" => asset.data = Some(map.next_value()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(asset)
    }
}

/// A key among the few the request is read for, or `""` for any other
/// (escaped keys are unescaped by serde_json first, so they match too).
pub(super) struct Name(pub(super) &'static str);

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        de.deserialize_str(NameVisitor)
    }
}

struct NameVisitor;

impl Visitor<'_> for NameVisitor {
    type Value = Name;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E>(self, key: &str) -> Result<Name, E> {
        const READ: [&str; 14] = [
            "native",
            "assets",
            "eventtrackers",
            "id",
            "required",
            "title",
            "img",
            "data",
            "type",
            "len",
            "w",
            "wmin",
            "h",
            "hmin",
        ];
        Ok(Name(READ.into_iter().find(|&k| k == key).unwrap_or("")))
    }
}
