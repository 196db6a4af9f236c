//! The fixed-layout parts of the wire format as `bytemuck` [`Pod`] structs.
//!
//! Every field is a little-endian byte array (the `*Le` scalars below), so
//! every struct has alignment 1 and no implicit padding: a struct can be
//! viewed in place at any offset of a receive buffer with
//! [`bytemuck::try_from_bytes`], which then fails only on a wrong length,
//! and the view means the same bytes on every target. The conversion to a
//! native number happens in the accessor (`u32::from_le_bytes`, a plain load
//! on little-endian targets), never by reinterpreting memory, so no
//! compile-time endianness check is needed. Gaps that a C layout would pad
//! are explicit `reserved` fields that must be zero.
//!
//! Offsets and meanings: `docs/PROTOCOL.md`.

use bytemuck::{Pod, Zeroable};
use std::fmt;

macro_rules! le_scalar {
    ($(#[$meta:meta])* $name:ident, $native:ty, $n:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Default, PartialEq, Eq, Hash, Pod, Zeroable)]
        #[repr(transparent)]
        pub struct $name(pub [u8; $n]);

        impl $name {
            /// The little-endian encoding of `value`.
            pub const fn new(value: $native) -> Self {
                Self(value.to_le_bytes())
            }

            /// The value.
            pub const fn get(self) -> $native {
                <$native>::from_le_bytes(self.0)
            }
        }

        impl From<$native> for $name {
            fn from(value: $native) -> Self {
                Self::new(value)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.get(), f)
            }
        }
    };
}

le_scalar!(
    /// A little-endian `u16` on the wire (alignment 1).
    U16Le, u16, 2
);
le_scalar!(
    /// A little-endian `u32` on the wire (alignment 1).
    U32Le, u32, 4
);
le_scalar!(
    /// A little-endian `u64` on the wire (alignment 1).
    U64Le, u64, 8
);
le_scalar!(
    /// A little-endian two's-complement `i64` on the wire (alignment 1).
    I64Le, i64, 8
);
le_scalar!(
    /// A little-endian IEEE 754 binary32 on the wire (alignment 1).
    F32Le, f32, 4
);
le_scalar!(
    /// A little-endian IEEE 754 binary64 on the wire (alignment 1).
    F64Le, f64, 8
);

/// The 24-byte header that starts every frame. Its layout is the same in
/// every protocol version, so a receiver can always find the next frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct FrameHeader {
    /// Offset 0: [`super::MAGIC`], `"CXWP"`.
    pub magic: [u8; 4],
    /// Offset 4: the protocol version the payload is written in.
    pub version: u8,
    /// Offset 5: the [`super::MessageType`] code.
    pub message_type: u8,
    /// Offset 6: frame flags; none are defined in version 1, must be 0.
    pub flags: U16Le,
    /// Offset 8: payload bytes after the header, at most
    /// [`super::limits::PAYLOAD_BYTES_MAX`].
    pub payload_len: U32Le,
    /// Offset 12: must be 0.
    pub reserved: U32Le,
    /// Offset 16: the request id, chosen by the client and echoed by every
    /// response to that request.
    pub request_id: U64Le,
}

/// The payload of `hello` (8 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct HelloWire {
    /// Offset 0: oldest version the client speaks (at least 1).
    pub min_version: u8,
    /// Offset 1: newest version the client speaks (at least `min_version`).
    pub max_version: u8,
    /// Offset 2: must be 0.
    pub reserved: [u8; 6],
}

/// The payload of `hello_ack` (16 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct HelloAckWire {
    /// Offset 0: the version chosen for the connection.
    pub version: u8,
    /// Offset 1: most offers per impression in a decision.
    pub top_k_max: u8,
    /// Offset 2: most impressions per decision (and per OpenRTB request).
    pub imps_max: U16Le,
    /// Offset 4: largest frame the server accepts, header included.
    pub frame_bytes_max: U32Le,
    /// Offset 8: most requests in flight per connection.
    pub in_flight_max: U32Le,
    /// Offset 12: must be 0.
    pub reserved: U32Le,
}

/// The payload of `ping` and `pong` (8 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct PingWire {
    /// Offset 0: an opaque value, echoed by the pong.
    pub nonce: U64Le,
}

/// The fixed part of `error` (4 bytes), followed by the message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct ErrorWire {
    /// Offset 0: the [`super::ErrorCode`].
    pub code: U16Le,
    /// Offset 2: message bytes that follow, at most
    /// [`super::limits::ERROR_MESSAGE_BYTES_MAX`].
    pub message_len: U16Le,
}

/// The fixed part of `score_context` (64 bytes), followed by the strings
/// and lists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct ContextWire {
    /// Offset 0: bid floor, CPM; finite.
    pub bid_floor: F64Le,
    /// Offset 8: arrival time, unix seconds (0: the server stamps it).
    pub timestamp: I64Le,
    /// Offset 16: the generic numeric features; finite.
    pub extra_numeric: [F64Le; 4],
    /// Offset 48: placement width in pixels.
    pub placement_width: U32Le,
    /// Offset 52: placement height in pixels.
    pub placement_height: U32Le,
    /// Offset 56: OpenRTB `device.devicetype` (0: unknown).
    pub device_type: u8,
    /// Offset 57: operating system code (0: other; see the spec).
    pub os: u8,
    /// Offset 58: OpenRTB `device.connectiontype` (0: unknown).
    pub connection_type: u8,
    /// Offset 59: OpenRTB `imp.banner.pos` (0: unknown).
    pub ad_position: u8,
    /// Offset 60: 1 for an app, 0 for a site.
    pub is_app: u8,
    /// Offset 61: score flags ([`super::SCORE_FLAG_SIMULATE`]).
    pub flags: u8,
    /// Offset 62: must be 0.
    pub reserved: U16Le,
}

/// The fixed part of `score_openrtb` (4 bytes), followed by the JSON.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct OpenRtbWire {
    /// Offset 0: score flags ([`super::SCORE_FLAG_SIMULATE`]).
    pub flags: u8,
    /// Offset 1: must be 0.
    pub reserved: [u8; 3],
}

/// The fixed part of `decision` (4 bytes), followed by the impressions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct DecisionWire {
    /// Offset 0: impressions that follow, 1 to [`super::limits::IMPS_MAX`].
    pub imp_count: U16Le,
    /// Offset 2: must be 0.
    pub reserved: U16Le,
}

/// The fixed part of one impression of a `decision` (8 bytes), followed by
/// the impression id and the offers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct ImpWire {
    /// Offset 0: [`super::SkipReason`] code, 0 when the impression was decided.
    pub skipped: u8,
    /// Offset 1: no-offer cause code (`NoBidCause` index + 1), 0 when offers were chosen.
    pub no_offer: u8,
    /// Offset 2: score source code.
    pub source: u8,
    /// Offset 3: impression flags ([`super::IMP_FLAG_SIMULATED`]).
    pub flags: u8,
    /// Offset 4: offers that follow, 0 to [`super::limits::TOP_K_MAX`].
    pub offer_count: u8,
    /// Offset 5: must be 0.
    pub reserved: u8,
    /// Offset 6: impression id bytes that follow, at most
    /// [`super::limits::IMP_ID_BYTES_MAX`].
    pub imp_id_len: U16Le,
}

/// One offer of an impression (48 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct OfferWire {
    /// Offset 0: the catalog's offer id.
    pub offer_id: U64Le,
    /// Offset 8: bid price, CPM; finite.
    pub bid_cpm: F64Le,
    /// Offset 16: blended score (the sum of the factors); finite.
    pub score: F32Le,
    /// Offset 20: calibrated click probability; finite.
    pub p_click: F32Le,
    /// Offset 24: the six explanation factors in `FACTOR_KINDS` order; finite.
    pub factors: [F32Le; 6],
}

/// The fixed part of `feedback` (4 bytes), followed by the events.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct FeedbackWire {
    /// Offset 0: events that follow, 1 to
    /// [`super::limits::FEEDBACK_EVENTS_MAX`].
    pub event_count: U16Le,
    /// Offset 2: must be 0.
    pub reserved: U16Le,
}

/// The fixed part of one `feedback` event (40 bytes), followed by its
/// decision id and event id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct EventWire {
    /// Offset 0: the [`super::FeedbackKind`] code (1 to 5).
    pub kind: u8,
    /// Offset 1: must be 0.
    pub reserved: [u8; 3],
    /// Offset 4: the creative variant shown.
    pub variant: U32Le,
    /// Offset 8: the exchange's loss reason (OpenRTB list 5.25), on a loss.
    pub loss_code: U32Le,
    /// Offset 12: must be 0.
    pub reserved2: U32Le,
    /// Offset 16: the offer the client says was decided; 0: not given.
    pub offer_id: U64Le,
    /// Offset 24: when it happened, unix ns; 0: when it arrives.
    pub timestamp_ns: U64Le,
    /// Offset 32: a win's clearing price (CPM), a conversion's value, else 0.
    pub amount: F64Le,
}

/// The fixed part of `feedback_ack` (16 bytes), followed by the refusal
/// counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct FeedbackAckWire {
    /// Offset 0: events joined to their decision and applied.
    pub applied: U32Le,
    /// Offset 4: events held for a decision not logged yet.
    pub held: U32Le,
    /// Offset 8: events refused (the sum of the counts that follow).
    pub refused: U32Le,
    /// Offset 12: refusal counts that follow, at most
    /// [`super::limits::FEEDBACK_REFUSALS_MAX`].
    pub reason_count: u8,
    /// Offset 13: must be 0.
    pub reserved: [u8; 3],
}

/// The fixed part of `put_features` (4 bytes), followed by the items.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct PutFeaturesWire {
    /// Offset 0: items that follow, 1 to
    /// [`super::limits::PUT_FEATURES_ITEMS_MAX`].
    pub item_count: U16Le,
    /// Offset 2: must be 0.
    pub reserved: U16Le,
}

/// The fixed part of one `put_features` item (24 bytes), followed by its
/// user id, feature name and category label.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct PutItemWire {
    /// Offset 0: the value's type (1 f32, 2 i64, 3 bool, 4 timestamp,
    /// 5 category).
    pub value_type: u8,
    /// Offset 1: must be 0.
    pub reserved: [u8; 7],
    /// Offset 8: when the value was observed, unix ns; 0: when it arrives.
    pub time_ns: U64Le,
    /// Offset 16: the value's 8 bytes (see `docs/PROTOCOL.md`).
    pub value: [u8; 8],
}

/// The fixed part of `put_features_ack` (16 bytes), followed by one
/// result byte per item.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct PutFeaturesAckWire {
    /// Offset 0: values written.
    pub written: U32Le,
    /// Offset 4: values taken but older than the one held (ignored).
    pub outdated: U32Le,
    /// Offset 8: items refused (result bytes that are not 0).
    pub refused: U32Le,
    /// Offset 12: result bytes that follow: the put's item count.
    pub item_count: U16Le,
    /// Offset 14: must be 0.
    pub reserved: U16Le,
}

/// Sizes and alignment checked at compile time: the structs are exactly
/// their documented sizes and can be viewed at any offset.
const _: () = {
    use std::mem::{align_of, size_of};
    assert!(size_of::<FrameHeader>() == 24 && align_of::<FrameHeader>() == 1);
    assert!(size_of::<HelloWire>() == 8 && align_of::<HelloWire>() == 1);
    assert!(size_of::<HelloAckWire>() == 16 && align_of::<HelloAckWire>() == 1);
    assert!(size_of::<PingWire>() == 8 && align_of::<PingWire>() == 1);
    assert!(size_of::<ErrorWire>() == 4 && align_of::<ErrorWire>() == 1);
    assert!(size_of::<ContextWire>() == 64 && align_of::<ContextWire>() == 1);
    assert!(size_of::<OpenRtbWire>() == 4 && align_of::<OpenRtbWire>() == 1);
    assert!(size_of::<DecisionWire>() == 4 && align_of::<DecisionWire>() == 1);
    assert!(size_of::<ImpWire>() == 8 && align_of::<ImpWire>() == 1);
    assert!(size_of::<OfferWire>() == 48 && align_of::<OfferWire>() == 1);
    assert!(size_of::<FeedbackWire>() == 4 && align_of::<FeedbackWire>() == 1);
    assert!(size_of::<EventWire>() == 40 && align_of::<EventWire>() == 1);
    assert!(size_of::<FeedbackAckWire>() == 16 && align_of::<FeedbackAckWire>() == 1);
    assert!(size_of::<PutFeaturesWire>() == 4 && align_of::<PutFeaturesWire>() == 1);
    assert!(size_of::<PutItemWire>() == 24 && align_of::<PutItemWire>() == 1);
    assert!(size_of::<PutFeaturesAckWire>() == 16 && align_of::<PutFeaturesAckWire>() == 1);
};
