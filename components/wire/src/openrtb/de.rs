//! Serde helpers shared by the request and response types: objects that
//! must be JSON objects, lists with an item limit (`null` read as empty), and
//! serialisation predicates.
//!
//! serde's derived `Deserialize` also accepts a struct written as a JSON
//! array of its fields in declaration order (`"banner": [300, 250]`). No
//! OpenRTB sender means that, so every OpenRTB object here is read through
//! [`Obj`], which accepts a JSON object only.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::limits;

/// A `T` that must be written as a JSON object (`{...}`), not as an array.
pub(super) struct Obj<T>(pub(super) T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = T;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }

        deserializer
            .deserialize_map(ObjectVisitor(PhantomData))
            .map(Obj)
    }
}

/// `deserialize_with` for an optional object: `null` or absent is `None`,
/// anything but a JSON object is an error.
pub(super) fn object<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<Obj<T>>::deserialize(deserializer).map(|o| o.map(|Obj(t)| t))
}

/// Deserialises a list of at most `max` items; `null` is an empty list. One
/// item past the limit fails the whole list, so the error's path names it.
fn bounded<'de, D, T>(deserializer: D, max: usize) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct ListVisitor<T> {
        max: usize,
        item: PhantomData<T>,
    }

    impl<'de, T: Deserialize<'de>> Visitor<'de> for ListVisitor<T> {
        type Value = Vec<T>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a list of at most {} items", self.max)
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }

        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_seq(self)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            // JSON gives no length up front; grow as items arrive.
            let mut items = Vec::new();
            while let Some(item) = seq.next_element()? {
                if items.len() == self.max {
                    return Err(de::Error::custom(format!(
                        "holds more than {} items, the limit",
                        self.max
                    )));
                }
                items.push(item);
            }
            Ok(items)
        }
    }

    deserializer.deserialize_option(ListVisitor {
        max,
        item: PhantomData,
    })
}

/// `deserialize_with` for any list of strings or integers: at most
/// [`limits::LIST_MAX`] items.
pub(super) fn list<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    bounded(deserializer, limits::LIST_MAX)
}

/// Declares a `deserialize_with` function for a list of objects with the given limit.
macro_rules! object_list {
    ($($(#[$meta:meta])* $name:ident => $max:expr;)+) => {
        $(
            $(#[$meta])*
            pub(super) fn $name<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
            where
                D: Deserializer<'de>,
                T: Deserialize<'de>,
            {
                let items: Vec<Obj<T>> = bounded(deserializer, $max)?;
                Ok(items.into_iter().map(|Obj(t)| t).collect())
            }
        )+
    };
}

object_list! {
    /// `imp`: [`limits::IMPS_MAX`].
    imps => limits::IMPS_MAX;
    /// `imp.banner.format`: [`limits::FORMATS_MAX`].
    formats => limits::FORMATS_MAX;
    /// `imp.pmp.deals`: [`limits::DEALS_MAX`].
    deals => limits::DEALS_MAX;
    /// `user.data`: [`limits::DATA_MAX`].
    data => limits::DATA_MAX;
    /// `user.data[].segment`: [`limits::SEGMENTS_MAX`].
    segments => limits::SEGMENTS_MAX;
    /// `seatbid`: [`limits::SEATBIDS_MAX`].
    seatbids => limits::SEATBIDS_MAX;
    /// `seatbid[].bid`: [`limits::BIDS_MAX`].
    bids => limits::BIDS_MAX;
}

/// Whether an OpenRTB 0/1 flag is 0 (the default, left out when serialising).
pub(super) fn is_zero(flag: &u8) -> bool {
    *flag == 0
}
