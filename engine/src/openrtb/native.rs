//! A native bid's markup: the Native 1.2 response document that answers
//! `imp.native.request` ([`native_into`]; the rules are in [`super::markup`]'s
//! docs).
//!
//! Layout: the request is read in one pass by serde visitors that keep one
//! asset at a time on the stack (its `id`, `required`, and the few numbers
//! of its `title`, `img` or `data` that the answer needs), and each asset's
//! answer is written into the markup output as soon as the asset is read:
//! no `Value` tree, no owned strings, nothing allocated. The trade-off: a
//! request found wanting late (a later asset without an id, a required
//! asset the creative cannot fill, a syntax error at the end) leaves the
//! answers written so far behind, and the caller clears them
//! ([`super::markup::markup_into`] does).
//!
//! The document is the one serde_json wrote from a `Value` tree before
//! (object keys sorted, serde_json's string escapes), byte for byte; the
//! tests keep that version as the reference and compare the two.

use super::markup::NATIVE_ASSETS_MAX;
use cx_domain::catalog::template::MarkupOut;
use cx_domain::catalog::CreativeSpec;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// The visit methods of a visitor that takes any JSON value, for the
/// kinds it does not read: each gives `$default`. With `seq`, arrays too
/// (read through).
macro_rules! other_kinds {
    ($value:ty, $default:expr) => {
        fn visit_bool<E>(self, _: bool) -> Result<$value, E> {
            Ok($default)
        }

        fn visit_i64<E>(self, _: i64) -> Result<$value, E> {
            Ok($default)
        }

        fn visit_u64<E>(self, _: u64) -> Result<$value, E> {
            Ok($default)
        }

        fn visit_f64<E>(self, _: f64) -> Result<$value, E> {
            Ok($default)
        }

        fn visit_str<E>(self, _: &str) -> Result<$value, E> {
            Ok($default)
        }

        fn visit_unit<E>(self) -> Result<$value, E> {
            Ok($default)
        }
    };
    ($value:ty, $default:expr, seq) => {
        other_kinds!($value, $default);

        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<$value, A::Error> {
            drain(seq)?;
            Ok($default)
        }
    };
}

/// Writes into `out` the Native 1.2 response answering the native request
/// `request` (a JSON string), and says whether there is one: `false` when
/// the request cannot be read, has no `assets` array, an asset without a
/// numeric `id`, or a `required` asset the creative cannot fill, or when
/// no asset is answered. On `false`, `out` holds partial output the
/// caller must clear.
pub fn native_into<O: MarkupOut>(request: &str, spec: &CreativeSpec, out: &mut O) -> bool {
    let mut doc = Doc {
        out: Out { spec, out },
        native_seen: false,
        top: Root::default(),
        native: Root::default(),
    };
    let mut de = serde_json::Deserializer::from_str(request);
    let read = DocSeed(&mut doc)
        .deserialize(&mut de)
        .and_then(|()| de.end());
    if read.is_err() {
        return false;
    }
    let root = if doc.native_seen { doc.native } else { doc.top };
    match root.assets {
        Some(assets) if !root.invalid && !assets.failed && assets.answered > 0 => {
            doc.out.tail(root.eventtrackers);
            true
        }
        _ => false,
    }
}

/// The document's root (the request, or its `native` object, as Native
/// 1.0 wrapped it) as read so far.
#[derive(Clone, Copy, Debug, Default)]
struct Root {
    /// Not an object.
    invalid: bool,
    /// Its last `assets` array, when it has one.
    assets: Option<Assets>,
    /// Whether it has `eventtrackers` (any value).
    eventtrackers: bool,
}

/// What an `assets` array came to.
#[derive(Clone, Copy, Debug, Default)]
struct Assets {
    /// Assets answered.
    answered: u32,
    /// An asset without a numeric id, or a required one not answered.
    failed: bool,
}

/// The whole request and where its answers go.
struct Doc<'a, O> {
    out: Out<'a, O>,
    /// Whether the request has a `native` key: then its value is the root.
    native_seen: bool,
    top: Root,
    native: Root,
}

/// Which root an object being read is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    Top,
    Native,
}

/// The request's top level.
struct DocSeed<'d, 'a, O>(&'d mut Doc<'a, O>);

/// A root object: the top level or the `native` value.
struct RootSeed<'d, 'a, O> {
    doc: &'d mut Doc<'a, O>,
    level: Level,
}

/// An `assets` array, answered into the output.
struct AssetsSeed<'d, 'a, O> {
    out: &'d mut Out<'a, O>,
}

impl<'de, O: MarkupOut> DeserializeSeed<'de> for DocSeed<'_, '_, O> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        let doc = self.0;
        let object = de.deserialize_any(RootSeed {
            doc: &mut *doc,
            level: Level::Top,
        })?;
        doc.top.invalid = !object;
        Ok(())
    }
}

impl<'de, O: MarkupOut> DeserializeSeed<'de> for RootSeed<'_, '_, O> {
    /// Whether the value was an object.
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<bool, D::Error> {
        de.deserialize_any(self)
    }
}

impl<O: MarkupOut> RootSeed<'_, '_, O> {
    fn root(&mut self) -> &mut Root {
        match self.level {
            Level::Top => &mut self.doc.top,
            Level::Native => &mut self.doc.native,
        }
    }

    /// Whether this root's `assets` are the ones answered: the top
    /// level's only while no `native` key has been met.
    fn answers(&self) -> bool {
        self.level == Level::Native || !self.doc.native_seen
    }
}

impl<'de, O: MarkupOut> Visitor<'de> for RootSeed<'_, '_, O> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a native request object")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<bool, A::Error> {
        while let Some(key) = map.next_key::<Name>()? {
            match key.0 {
                "native" if self.level == Level::Top => {
                    // The wrapped request is the root; what the top level
                    // answered so far is dropped (a second `native` key
                    // replaces the first, as in a JSON object).
                    self.doc.native_seen = true;
                    self.doc.native = Root::default();
                    self.doc.out.out.clear_markup();
                    let object = map.next_value_seed(RootSeed {
                        doc: &mut *self.doc,
                        level: Level::Native,
                    })?;
                    self.doc.native.invalid = !object;
                }
                "assets" if self.answers() => {
                    // The last `assets` key is the one that counts.
                    self.doc.out.out.clear_markup();
                    let mut out = AssetsSeed {
                        out: &mut self.doc.out,
                    };
                    let assets = map.next_value_seed(&mut out)?;
                    self.root().assets = assets;
                }
                "eventtrackers" => {
                    map.next_value::<IgnoredAny>()?;
                    self.root().eventtrackers = true;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(true)
    }

    other_kinds!(bool, false, seq);
}

impl<'de, O: MarkupOut> DeserializeSeed<'de> for &mut AssetsSeed<'_, '_, O> {
    /// `None`: not an array.
    type Value = Option<Assets>;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Option<Assets>, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de, O: MarkupOut> Visitor<'de> for &mut AssetsSeed<'_, '_, O> {
    type Value = Option<Assets>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of native assets")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<Assets>, A::Error> {
        let mut assets = Assets::default();
        self.out.open();
        for _ in 0..NATIVE_ASSETS_MAX {
            let Some(asset) = seq.next_element::<AssetRequest>()? else {
                return Ok(Some(assets));
            };
            self.out.answer(&asset, &mut assets);
        }
        // Later assets are read (they must be JSON) but not answered.
        drain(seq)?;
        Ok(Some(assets))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Option<Assets>, A::Error> {
        drain_map(map)?;
        Ok(None)
    }

    other_kinds!(Option<Assets>, None);
}

mod asset;
mod write;

use asset::{AssetRequest, Name};
use write::Out;

/// Reads the rest of a sequence.
fn drain<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Reads the rest of a map.
fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

#[cfg(test)]
mod tests;
