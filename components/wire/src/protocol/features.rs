//! The `put_features` request (a batch of typed values for the server's
//! online feature store, per user id and feature name) and its answer,
//! `put_features_ack` (values written, outdated, and one result byte per
//! item: 0 taken, else the code of the reason it was refused).
//!
//! Decoding a `put_features` is allocation-free: [`decode_put_features`]
//! checks the whole payload once and returns a [`PutFeaturesView`]
//! borrowed from it. A payload with any bad field is refused whole, before
//! any item is seen. Whether a name is a feature, a value of its type, a
//! float finite or a label one of the feature's is the server's to judge,
//! item by item ([`PUT_FEATURES_REFUSALS`]).

use super::control::reserved_zero;
use super::error::ProtocolError;
use super::feedback::{shift_offset, shift_trailing};
use super::frame::{FrameStart, Reader};
use super::limits::{
    FEATURE_LABEL_BYTES_MAX, FEATURE_NAME_BYTES_MAX, PUT_FEATURES_ITEMS_MAX, STRING_BYTES_MAX,
};
use super::wire::{PutFeaturesAckWire, PutFeaturesWire, PutItemWire, U16Le, U32Le, U64Le};
use super::MessageType;
use std::fmt;

const PUT_FIXED: usize = std::mem::size_of::<PutFeaturesWire>();
const ITEM_FIXED: usize = std::mem::size_of::<PutItemWire>();
const ACK_FIXED: usize = std::mem::size_of::<PutFeaturesAckWire>();

/// Why an item of a `put_features` was refused, by code: the labels of
/// the result bytes of a `put_features_ack`, code 1 first (0 is "taken").
pub const PUT_FEATURES_REFUSALS: [&str; 7] = [
    "no_user",
    "unknown_feature",
    "computed_feature",
    "wrong_type",
    "bad_value",
    "store_off",
    "store_refused",
];

/// One value of a `put_features` item, typed as the feature definitions'
/// value types; a category is named by its label.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PutValue<'a> {
    /// A 32-bit float (the server refuses one that is not finite).
    F32(f32),
    /// A 64-bit integer.
    I64(i64),
    /// A boolean.
    Bool(bool),
    /// A time, unix seconds.
    Timestamp(i64),
    /// A label of the feature's category list, at most
    /// [`FEATURE_LABEL_BYTES_MAX`] bytes.
    Category(&'a str),
}

impl PutValue<'_> {
    /// The wire code of the value's type (1 to 5).
    pub fn type_code(&self) -> u8 {
        match self {
            Self::F32(_) => 1,
            Self::I64(_) => 2,
            Self::Bool(_) => 3,
            Self::Timestamp(_) => 4,
            Self::Category(_) => 5,
        }
    }

    /// The type's name, as in the feature definitions.
    pub fn type_label(&self) -> &'static str {
        match self {
            Self::F32(_) => "f32",
            Self::I64(_) => "i64",
            Self::Bool(_) => "bool",
            Self::Timestamp(_) => "timestamp",
            Self::Category(_) => "category",
        }
    }
}

/// One item of a `put_features` message, its strings borrowed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FeatureItem<'a> {
    /// The user, as in a request (the server hashes it as it hashes a
    /// request's user id); at most [`STRING_BYTES_MAX`] bytes; empty: no
    /// user (refused, `no_user`).
    pub user_id: &'a str,
    /// The stored feature's name, at most [`FEATURE_NAME_BYTES_MAX`]
    /// bytes.
    pub feature: &'a str,
    /// The value.
    pub value: PutValue<'a>,
    /// When it was observed, unix ns; 0: when the server reads it.
    pub time_ns: u64,
}

/// Appends a `put_features` frame carrying `items`.
///
/// Refused, leaving `out` as it was: no item, or more than
/// [`PUT_FEATURES_ITEMS_MAX`]; a string over its limit. Allocates only if
/// `out` must grow.
pub fn encode_put_features(
    out: &mut Vec<u8>,
    request_id: u64,
    items: &[FeatureItem<'_>],
) -> Result<(), ProtocolError> {
    check_item_count(items.len())?;
    let frame = FrameStart::begin(out, MessageType::PutFeatures, request_id);
    out.extend_from_slice(bytemuck::bytes_of(&PutFeaturesWire {
        // At most PUT_FEATURES_ITEMS_MAX (2048).
        item_count: U16Le::new(items.len() as u16),
        reserved: U16Le::new(0),
    }));
    for item in items {
        let at = frame.payload_pos(out);
        let (bits, label) = match item.value {
            PutValue::F32(x) => (u64::from(x.to_bits()), ""),
            PutValue::I64(x) | PutValue::Timestamp(x) => (x as u64, ""),
            PutValue::Bool(x) => (u64::from(x), ""),
            PutValue::Category(label) => (0, label),
        };
        let strings = [
            (item.user_id, "user_id", STRING_BYTES_MAX),
            (item.feature, "feature", FEATURE_NAME_BYTES_MAX),
            (label, "label", FEATURE_LABEL_BYTES_MAX),
        ];
        if let Some((s, field, limit)) = strings.iter().find(|(s, _, limit)| s.len() > *limit) {
            frame.rollback(out);
            return Err(ProtocolError::TooLong {
                field,
                offset: at + ITEM_FIXED,
                len: s.len(),
                limit: *limit,
            });
        }
        out.extend_from_slice(bytemuck::bytes_of(&PutItemWire {
            value_type: item.value.type_code(),
            reserved: [0; 7],
            time_ns: U64Le::new(item.time_ns),
            value: bits.to_le_bytes(),
        }));
        for (s, _, _) in strings {
            // At most 256 bytes, checked above.
            out.extend_from_slice(&(s.len() as u16).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
    }
    frame.end(out).map(drop)
}

fn check_item_count(count: usize) -> Result<(), ProtocolError> {
    if count == 0 {
        return Err(ProtocolError::InvalidValue {
            field: "item_count",
            offset: 0,
            value: 0,
            rule: "a put_features message carries at least one item",
        });
    }
    if count > PUT_FEATURES_ITEMS_MAX {
        return Err(ProtocolError::TooLong {
            field: "item_count",
            offset: 0,
            len: count,
            limit: PUT_FEATURES_ITEMS_MAX,
        });
    }
    Ok(())
}

/// A checked `put_features` payload, borrowed: [`Self::iter`] yields its
/// items in order. Building it allocates nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PutFeaturesView<'a> {
    count: usize,
    /// The items' bytes (after the fixed part), all checked.
    items: &'a [u8],
}

impl<'a> PutFeaturesView<'a> {
    /// Items in the message (1 to [`PUT_FEATURES_ITEMS_MAX`]).
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether it holds no item (never, for a decoded message).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The items, in message order.
    pub fn iter(&self) -> FeatureItems<'a> {
        FeatureItems {
            reader: Reader::new(self.items),
            left: self.count,
        }
    }
}

impl<'a> IntoIterator for &PutFeaturesView<'a> {
    type Item = FeatureItem<'a>;
    type IntoIter = FeatureItems<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// The items of a [`PutFeaturesView`], in order.
pub struct FeatureItems<'a> {
    reader: Reader<'a>,
    left: usize,
}

impl fmt::Debug for FeatureItems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FeatureItems")
            .field("left", &self.left)
            .finish()
    }
}

impl<'a> Iterator for FeatureItems<'a> {
    type Item = FeatureItem<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // The view's bytes were checked by `decode_put_features`; a
        // failure here cannot happen, and would only end the iteration.
        match read_item(&mut self.reader, 0) {
            Ok(item) => Some(item),
            Err(_) => {
                self.left = 0;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for FeatureItems<'_> {}

/// Reads and checks one item; `base` is the reader's offset in the
/// payload (for the errors' offsets).
fn read_item<'a>(r: &mut Reader<'a>, base: usize) -> Result<FeatureItem<'a>, ProtocolError> {
    let at = base + r.pos();
    let shift = |e: ProtocolError| shift_offset(e, base);
    let wire: &PutItemWire = r.pod("item").map_err(shift)?;
    reserved_zero(&wire.reserved, "reserved", at + 1)?;
    let bits = u64::from_le_bytes(wire.value);
    let bad_value = |rule| ProtocolError::InvalidValue {
        field: "value",
        offset: at + 16,
        value: bits,
        rule,
    };
    let user_id = r.str("user_id", STRING_BYTES_MAX).map_err(shift)?;
    let feature = r.str("feature", FEATURE_NAME_BYTES_MAX).map_err(shift)?;
    let label_at = base + r.pos();
    let label = r.str("label", FEATURE_LABEL_BYTES_MAX).map_err(shift)?;
    let value = match wire.value_type {
        1 if bits >> 32 == 0 => PutValue::F32(f32::from_bits(bits as u32)),
        1 => {
            return Err(bad_value(
                "an f32 fills bytes 0 to 3; bytes 4 to 7 must be 0",
            ))
        }
        2 => PutValue::I64(bits as i64),
        3 if bits <= 1 => PutValue::Bool(bits == 1),
        3 => return Err(bad_value("a bool is 0 or 1")),
        4 => PutValue::Timestamp(bits as i64),
        5 if bits == 0 => PutValue::Category(label),
        5 => {
            return Err(bad_value(
                "a category is named by its label; value must be 0",
            ))
        }
        other => {
            return Err(ProtocolError::InvalidValue {
                field: "value_type",
                offset: at,
                value: u64::from(other),
                rule: "not a value type (1 f32, 2 i64, 3 bool, 4 timestamp, 5 category)",
            })
        }
    };
    if !label.is_empty() && !matches!(value, PutValue::Category(_)) {
        return Err(ProtocolError::InvalidValue {
            field: "label",
            offset: label_at,
            value: label.len() as u64,
            rule: "only a category value has a label",
        });
    }
    Ok(FeatureItem {
        user_id,
        feature,
        value,
        time_ns: wire.time_ns.get(),
    })
}

/// Decodes and checks a `put_features` payload without allocating.
///
/// Refused, whole: an item count of 0 or over [`PUT_FEATURES_ITEMS_MAX`],
/// an unknown value type, a non-zero reserved field, a value of bits its
/// type does not use (an f32's high bytes, a bool other than 0 or 1, a
/// category's value), a label on a value that is not a category, a string
/// over its limit or not UTF-8, a field past the end of the payload, bytes
/// after the last item.
pub fn decode_put_features(payload: &[u8]) -> Result<PutFeaturesView<'_>, ProtocolError> {
    let mut r = Reader::new(payload);
    let wire: &PutFeaturesWire = r.pod("put_features fixed part")?;
    let count = usize::from(wire.item_count.get());
    check_item_count(count)?;
    reserved_zero(&wire.reserved.0, "reserved", 2)?;
    if count * (ITEM_FIXED + 6) > r.remaining() {
        return Err(ProtocolError::Truncated {
            field: "items",
            offset: PUT_FIXED,
            needed: count * (ITEM_FIXED + 6),
            available: r.remaining(),
        });
    }
    let items = payload.get(PUT_FIXED..).unwrap_or(&[]);
    let mut items_reader = Reader::new(items);
    for _ in 0..count {
        read_item(&mut items_reader, PUT_FIXED)?;
    }
    items_reader
        .finish()
        .map_err(|e| shift_trailing(e, PUT_FIXED))?;
    Ok(PutFeaturesView { count, items })
}

/// The answer to a `put_features` message: per item, taken (0) or the
/// code of its refusal ([`PUT_FEATURES_REFUSALS`], code 1 first), and of
/// the items taken, how many values were written and how many were older
/// than the value held (ignored).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PutFeaturesAck {
    /// Values written.
    pub written: u32,
    /// Values taken but older than the one the store holds (ignored).
    pub outdated: u32,
    /// One byte per item of the put, in its order: 0 taken, else the
    /// refusal code.
    pub results: Vec<u8>,
}

impl PutFeaturesAck {
    /// Items refused (results that are not 0).
    pub fn refused(&self) -> u32 {
        self.results.iter().filter(|&&r| r != 0).count() as u32
    }

    /// Items refused per reason, code 1 first ([`PUT_FEATURES_REFUSALS`]).
    pub fn refused_by_reason(&self) -> [u32; PUT_FEATURES_REFUSALS.len()] {
        let mut counts = [0; PUT_FEATURES_REFUSALS.len()];
        for &r in &self.results {
            if let Some(slot) = usize::from(r)
                .checked_sub(1)
                .and_then(|i| counts.get_mut(i))
            {
                *slot += 1;
            }
        }
        counts
    }

    /// The label of result code `code`: `"taken"` for 0, `"unknown"` for a
    /// code this build does not know.
    pub fn label(code: u8) -> &'static str {
        match usize::from(code).checked_sub(1) {
            None => "taken",
            Some(i) => PUT_FEATURES_REFUSALS.get(i).copied().unwrap_or("unknown"),
        }
    }
}

/// Appends a `put_features_ack` frame. Refused, leaving `out` as it was:
/// more results than [`PUT_FEATURES_ITEMS_MAX`], or `written + outdated
/// + refused` not the number of results.
pub fn encode_put_features_ack(
    out: &mut Vec<u8>,
    request_id: u64,
    ack: &PutFeaturesAck,
) -> Result<(), ProtocolError> {
    check_ack(ack, 0)?;
    let frame = FrameStart::begin(out, MessageType::PutFeaturesAck, request_id);
    out.extend_from_slice(bytemuck::bytes_of(&PutFeaturesAckWire {
        written: U32Le::new(ack.written),
        outdated: U32Le::new(ack.outdated),
        refused: U32Le::new(ack.refused()),
        // At most PUT_FEATURES_ITEMS_MAX, checked above.
        item_count: U16Le::new(ack.results.len() as u16),
        reserved: U16Le::new(0),
    }));
    out.extend_from_slice(&ack.results);
    // At most 16 + 2048 bytes: never over the payload limit.
    frame.end(out).map(drop)
}

fn check_ack(ack: &PutFeaturesAck, offset: usize) -> Result<(), ProtocolError> {
    if ack.results.len() > PUT_FEATURES_ITEMS_MAX {
        return Err(ProtocolError::TooLong {
            field: "item_count",
            offset: offset + 12,
            len: ack.results.len(),
            limit: PUT_FEATURES_ITEMS_MAX,
        });
    }
    let total = u64::from(ack.written) + u64::from(ack.outdated) + u64::from(ack.refused());
    if total != ack.results.len() as u64 {
        return Err(ProtocolError::InvalidValue {
            field: "written",
            offset,
            value: total,
            rule: "written + outdated + refused must be the item count",
        });
    }
    Ok(())
}

/// Decodes a `put_features_ack` payload. Refused: a payload shorter than
/// its fixed part or its results, bytes after them, more than
/// [`PUT_FEATURES_ITEMS_MAX`] results, a non-zero reserved field, a
/// `refused` that is not the count of non-zero results, counts that do not
/// add up to the item count. Allocates the results only.
pub fn decode_put_features_ack(payload: &[u8]) -> Result<PutFeaturesAck, ProtocolError> {
    let mut r = Reader::new(payload);
    let wire: &PutFeaturesAckWire = r.pod("put_features_ack fixed part")?;
    let count = usize::from(wire.item_count.get());
    if count > PUT_FEATURES_ITEMS_MAX {
        return Err(ProtocolError::TooLong {
            field: "item_count",
            offset: 12,
            len: count,
            limit: PUT_FEATURES_ITEMS_MAX,
        });
    }
    reserved_zero(&wire.reserved.0, "reserved", 14)?;
    let results = r.take(count, "results")?;
    r.finish()?;
    let ack = PutFeaturesAck {
        written: wire.written.get(),
        outdated: wire.outdated.get(),
        results: results.to_vec(),
    };
    if ack.refused() != wire.refused.get() {
        return Err(ProtocolError::InvalidValue {
            field: "refused",
            offset: 8,
            value: u64::from(wire.refused.get()),
            rule: "must be the count of non-zero results",
        });
    }
    check_ack(&ack, 0)?;
    Ok(ack)
}

/// Sizes checked against the layout at compile time.
const _: () = assert!(ACK_FIXED == 16 && ITEM_FIXED == 24 && PUT_FIXED == 4);
