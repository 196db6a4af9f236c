//! A native request read in one pass: for a native bid's markup, the
//! Native 1.2 response document that answers `imp.native.request`
//! ([`native_into`]; the rules are in [`super::markup`]'s docs), and for
//! the decide step, what the request asks of a creative ([`native_fit`],
//! which [`super::rules`] puts on the impression). One reader serves both,
//! so the two read every request alike.
//!
//! Layout: the request is read in one pass by serde visitors that keep one
//! asset at a time on the stack (its `id`, `required`, and the few numbers
//! of its `title`, `img` or `data` that the answer needs), and each asset
//! goes to an [`AssetSink`] as soon as it is read: its answer is written
//! into the markup output, or its need noted in a bitmask. No `Value`
//! tree, no owned strings, nothing allocated. The trade-off: a
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
use cx_domain::catalog::{CreativeSpec, NativeFit};
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
    let mut out = Out { spec, out };
    let Some(root) = read(request, &mut out) else {
        return false;
    };
    match root.assets {
        Some(assets) if !root.invalid && !assets.failed && assets.answered > 0 => {
            out.tail(root.eventtrackers);
            true
        }
        _ => false,
    }
}

/// What the native request `request` (a JSON string) asks of a creative:
/// the [`native_asset`](cx_domain::catalog::showable::native_asset) bit
/// of each of its first [`NATIVE_ASSETS_MAX`] assets
/// ([`AssetRequest::need`]), as required (`required` is 1) or optional. [`NativeFit::NONE`] when [`native_into`] could answer it with
/// no creative at all: the request cannot be read, has no `assets` array,
/// or an asset without a numeric `id`.
pub fn native_fit(request: &str) -> NativeFit {
    let Some(root) = read(request, &mut Needs) else {
        return NativeFit::NONE;
    };
    match root.assets {
        Some(assets) if !root.invalid && !assets.failed => assets.fit,
        _ => NativeFit::NONE,
    }
}

/// Reads `request`, handing its assets to `sink`; the root that counts
/// (its `native` object, else the top level), or `None` when it is not
/// JSON.
fn read<S: AssetSink>(request: &str, sink: &mut S) -> Option<Root> {
    let mut doc = Doc {
        sink,
        native_seen: false,
        top: Root::default(),
        native: Root::default(),
    };
    let mut de = serde_json::Deserializer::from_str(request);
    DocSeed(&mut doc)
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .ok()?;
    Some(if doc.native_seen { doc.native } else { doc.top })
}

/// What reading a request does with the assets of the `assets` array
/// that counts.
trait AssetSink {
    /// What was done so far is void: a later `assets` key, or a `native`
    /// root, replaces it.
    fn restart(&mut self);
    /// An `assets` array begins.
    fn open(&mut self);
    /// One of the array's first [`NATIVE_ASSETS_MAX`] assets.
    fn asset(&mut self, asset: &AssetRequest, assets: &mut Assets);
}

impl<O: MarkupOut> AssetSink for Out<'_, O> {
    fn restart(&mut self) {
        self.out.clear_markup();
    }

    fn open(&mut self) {
        Out::open(self);
    }

    fn asset(&mut self, asset: &AssetRequest, assets: &mut Assets) {
        self.answer(asset, assets);
    }
}

/// Notes each asset's need in [`Assets::fit`], for [`native_fit`].
struct Needs;

impl AssetSink for Needs {
    fn restart(&mut self) {}

    fn open(&mut self) {}

    fn asset(&mut self, asset: &AssetRequest, assets: &mut Assets) {
        if assets.failed {
            return;
        }
        if asset.id.as_u64().is_none() {
            assets.failed = true;
            return;
        }
        let need = asset.need();
        if asset.required.as_u64() == Some(1) {
            assets.fit.required |= need;
        } else {
            assets.fit.optional |= need;
        }
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
    /// Assets answered (by [`Out`]).
    answered: u32,
    /// An asset without a numeric id, or (for [`Out`]) a required one not
    /// answered.
    failed: bool,
    /// What the assets need (by [`Needs`]).
    fit: NativeFit,
}

/// The whole request and where its assets go.
struct Doc<'s, S> {
    sink: &'s mut S,
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
struct DocSeed<'d, 's, S>(&'d mut Doc<'s, S>);

/// A root object: the top level or the `native` value.
struct RootSeed<'d, 's, S> {
    doc: &'d mut Doc<'s, S>,
    level: Level,
}

/// An `assets` array, handed to the sink.
struct AssetsSeed<'d, S> {
    sink: &'d mut S,
}

impl<'de, S: AssetSink> DeserializeSeed<'de> for DocSeed<'_, '_, S> {
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

impl<'de, S: AssetSink> DeserializeSeed<'de> for RootSeed<'_, '_, S> {
    /// Whether the value was an object.
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<bool, D::Error> {
        de.deserialize_any(self)
    }
}

impl<S: AssetSink> RootSeed<'_, '_, S> {
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

impl<'de, S: AssetSink> Visitor<'de> for RootSeed<'_, '_, S> {
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
                    self.doc.sink.restart();
                    let object = map.next_value_seed(RootSeed {
                        doc: &mut *self.doc,
                        level: Level::Native,
                    })?;
                    self.doc.native.invalid = !object;
                }
                "assets" if self.answers() => {
                    // The last `assets` key is the one that counts.
                    self.doc.sink.restart();
                    let mut seed = AssetsSeed {
                        sink: &mut *self.doc.sink,
                    };
                    let assets = map.next_value_seed(&mut seed)?;
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

impl<'de, S: AssetSink> DeserializeSeed<'de> for &mut AssetsSeed<'_, S> {
    /// `None`: not an array.
    type Value = Option<Assets>;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Option<Assets>, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de, S: AssetSink> Visitor<'de> for &mut AssetsSeed<'_, S> {
    type Value = Option<Assets>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of native assets")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<Assets>, A::Error> {
        let mut assets = Assets::default();
        self.sink.open();
        for _ in 0..NATIVE_ASSETS_MAX {
            let Some(asset) = seq.next_element::<AssetRequest>()? else {
                return Ok(Some(assets));
            };
            self.sink.asset(&asset, &mut assets);
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
