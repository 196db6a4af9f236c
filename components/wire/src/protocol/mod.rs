//! The binary wire protocol between clients and the decision server: its
//! constants, limits and code lists, and a complete codec. Pure data: no
//! sockets here; the server and the client library move the bytes.
//!
//! This module owns:
//!
//! - the framing: a 24-byte [`FrameHeader`] (magic `"CXWP"`, version,
//!   [`MessageType`], flags, payload length, request id) before every
//!   payload, and [`decode_frame`], which a streaming receiver calls on
//!   whatever bytes it has: a whole [`Decoded::Frame`], [`Decoded::NeedMore`],
//!   or [`Decoded::Invalid`] with an error that is either recoverable (skip
//!   the frame, answer its request id) or fatal (close the connection);
//! - one encoder and one decoder per message type: [`Hello`] /
//!   [`HelloAck`] (version negotiation and the server's limits), ping /
//!   pong, `score_context` (a [`RequestContext`](cx_features::RequestContext)
//!   in binary), `score_openrtb` (an OpenRTB JSON document), `decision`
//!   ([`DecisionWriter`], [`DecisionResponse`]; with each decided
//!   impression's decision id when the request's `decision_ids` flag asks),
//!   `feedback` ([`FeedbackEvent`]s in, decoded as a borrowed
//!   [`FeedbackView`]) and its `feedback_ack` ([`FeedbackAck`]),
//!   `put_features` ([`FeatureItem`]s for the online feature store, decoded
//!   as a borrowed [`PutFeaturesView`]) and its `put_features_ack`
//!   ([`PutFeaturesAck`]), and
//!   `error` ([`ErrorCode`], [`ErrorMessage`]); [`decode_message`]
//!   dispatches on the type;
//! - the [`limits`], and [`ProtocolError`], which names the field and byte
//!   offset of everything refused.
//!
//! `docs/PROTOCOL.md` is the specification: enough to write a client
//! without this code.
//!
//! Data layout: each message is a fixed-layout part followed by a
//! variable tail. Fixed parts are `bytemuck` [`Pod`](bytemuck::Pod)
//! structs ([`wire`]) whose fields are little-endian byte arrays, so they
//! have alignment 1 and no hidden padding: the header and every fixed part
//! are viewed in place in the receive buffer (`bytemuck::try_from_bytes`)
//! with no copy and no alignment requirement, identically on every target
//! (the little-endian conversion is in each field's accessor). Tails are
//! length-prefixed (`u16` lengths and counts, each checked against its limit
//! and against the bytes left before it is used), which keeps variable data
//! compact and bounded without offsets tables. Encoders append to a
//! caller-owned `Vec<u8>` that is reused across frames, so encoding
//! allocates nothing once the buffer has grown; [`decode_frame`] and the
//! borrowed decoders ([`decode_score_context_view`], [`decode_score_openrtb`],
//! [`decode_feedback`], [`decode_feedback_ack`], [`decode_put_features`],
//! [`decode_error`], ping, hello) allocate nothing either. The owned
//! decoders ([`decode_score_context`], [`decode_decision`],
//! [`decode_put_features_ack`]) allocate only
//! the strings and lists of their result, after the lengths are checked.
//!
//! ```
//! use cx_features::RequestContext;
//! use cx_wire::protocol::{self, Decoded, MessageType};
//!
//! let ctx = RequestContext { country: "USA".into(), bid_floor: 0.5, ..RequestContext::default() };
//! let mut out = Vec::with_capacity(4096); // once per connection, reused per frame
//! protocol::encode_score_context(&mut out, 7, &ctx, false)?;
//! protocol::encode_ping(&mut out, 8, 0xfeed);
//!
//! let Decoded::Frame { header, payload, consumed } = protocol::decode_frame(&out) else {
//!     panic!("a whole frame is buffered");
//! };
//! assert_eq!((header.message_type, header.request_id), (MessageType::ScoreContext, 7));
//! let (decoded, simulate) = protocol::decode_score_context(payload)?;
//! assert_eq!((decoded, simulate), (ctx, false));
//! assert!(matches!(protocol::decode_frame(&out[consumed..]), Decoded::Frame { .. }));
//! # Ok::<(), protocol::ProtocolError>(())
//! ```

mod codes;
mod control;
mod decision;
mod error;
mod features;
mod feedback;
mod frame;
mod score;
pub mod wire;

pub use codes::{
    no_bid_code, no_bid_from_code, os_code, os_from_code, score_source_code,
    score_source_from_code, ErrorCode, MessageType, SkipReason, SCORE_SOURCES,
};
pub use control::{
    decode_error, decode_hello, decode_hello_ack, decode_ping, decode_pong, encode_error,
    encode_hello, encode_hello_ack, encode_ping, encode_pong, ErrorMessage, Hello, HelloAck,
};
pub use decision::{
    decode_decision, encode_context_decision, encode_decision, DecidedOffer, DecisionResponse,
    DecisionWriter, ImpDecision, ImpOutcome,
};
pub use error::ProtocolError;
pub use features::{
    decode_put_features, decode_put_features_ack, encode_put_features, encode_put_features_ack,
    FeatureItem, FeatureItems, PutFeaturesAck, PutFeaturesView, PutValue, PUT_FEATURES_REFUSALS,
};
pub use feedback::{
    decode_feedback, decode_feedback_ack, encode_feedback, encode_feedback_ack, FeedbackAck,
    FeedbackEvent, FeedbackEvents, FeedbackKind, FeedbackView, FEEDBACK_REFUSALS,
};
pub use frame::{decode_frame, Decoded, Header};
pub use score::{
    decode_bid_response, decode_score_context, decode_score_context_view, decode_score_openrtb,
    encode_bid_response, encode_score_context, encode_score_context_with, encode_score_openrtb,
    encode_score_openrtb_with, ContextFlags, ContextView, OpenRtbFlags, StrList,
};
pub use wire::FrameHeader;

/// The four bytes that start every frame: `"CXWP"` (`43 58 57 50`).
pub const MAGIC: [u8; 4] = *b"CXWP";

/// The protocol version this build writes, and the newest it reads.
pub const VERSION: u8 = 1;

/// The oldest protocol version this build reads.
pub const VERSION_MIN: u8 = 1;

/// The version `hello` and `hello_ack` frames are always written in, and
/// always read in, whatever versions the two sides speak: their layout
/// never changes, so that any client can negotiate with any server.
pub const HELLO_VERSION: u8 = 1;

/// Bit 0 of a score request's `flags`: decide in simulation mode (no
/// budget, frequency cap or cache state changes).
pub const SCORE_FLAG_SIMULATE: u8 = 0x01;

/// Bit 1 of a `score_openrtb`'s `flags`: answer with a `bid_response`
/// (the OpenRTB `BidResponse` as JSON, and the decisions behind it) instead
/// of a `decision`.
pub const SCORE_FLAG_BID_RESPONSE: u8 = 0x02;

/// Bit 1 of a `score_context`'s `flags`: put the decision id of the
/// decided impression in the `decision` (see [`IMP_FLAG_DECISION_ID`]).
pub const CONTEXT_FLAG_DECISION_IDS: u8 = 0x02;

/// Bit 2 of a `score_openrtb`'s `flags`: put each decided impression's
/// decision id in the `decision` (or the `bid_response`'s `decisions`).
pub const OPENRTB_FLAG_DECISION_IDS: u8 = 0x04;

/// Bit 0 of a decision impression's `flags`: it was decided in simulation mode.
pub const IMP_FLAG_SIMULATED: u8 = 0x01;

/// Bit 1 of a decision impression's `flags`: its decision id follows its
/// `imp_id` (set only when the request asked, on impressions with offers).
pub const IMP_FLAG_DECISION_ID: u8 = 0x02;

/// The protocol's limits. Decoders refuse anything over them (a frame over
/// the payload limit fatally, everything else recoverably); encoders refuse
/// to write it. A server announces its values in [`HelloAck`].
pub mod limits {
    use crate::openrtb::limits as openrtb;
    use cx_features::limits as features;

    /// Bytes of the frame header.
    pub const HEADER_BYTES: usize = 24;
    /// Longest OpenRTB document in a `score_openrtb` request: the OpenRTB
    /// parser's own limit, 1 MiB.
    pub const OPENRTB_JSON_BYTES_MAX: usize = openrtb::REQUEST_BYTES_MAX;
    /// Largest payload: a maximal `score_openrtb` (4-byte fixed part plus
    /// [`OPENRTB_JSON_BYTES_MAX`]), 1,048,580 bytes. Every other message is
    /// far smaller.
    pub const PAYLOAD_BYTES_MAX: usize = 4 + OPENRTB_JSON_BYTES_MAX;
    /// Largest `bid_response` payload (its JSON object): 512 KiB, room for
    /// a maximal request's bids with their markup and the explanation of
    /// every decision.
    pub const BID_RESPONSE_BYTES_MAX: usize = 512 << 10;
    /// Most `score_openrtb` requests asking for a `bid_response` one
    /// connection may have in flight (they count towards
    /// [`IN_FLIGHT_MAX`] too): their answers are up to
    /// [`BID_RESPONSE_BYTES_MAX`] each, so this bounds what a connection's
    /// answers can hold.
    pub const BID_RESPONSES_IN_FLIGHT_MAX: usize = 64;
    /// Largest frame, header included: 1,048,604 bytes. A receiver needs a
    /// buffer this large to hold any valid frame whole.
    pub const FRAME_BYTES_MAX: usize = HEADER_BYTES + PAYLOAD_BYTES_MAX;
    /// Most requests one connection may have in flight (sent, not yet
    /// answered); the server answers `too_many_in_flight` beyond it.
    pub const IN_FLIGHT_MAX: usize = 1024;
    /// Longest string of a `score_context`, in bytes (the feature schema's
    /// `VALUE_BYTES_MAX`; it would not hash a longer one).
    pub const STRING_BYTES_MAX: usize = features::VALUE_BYTES_MAX;
    /// Most items in each list of a `score_context` (the feature schema's
    /// `LIST_ITEMS_MAX`; it would not read more).
    pub const LIST_ITEMS_MAX: usize = features::LIST_ITEMS_MAX;
    /// Most impressions in a decision: the OpenRTB parser's `IMPS_MAX`.
    pub const IMPS_MAX: usize = openrtb::IMPS_MAX;
    /// Longest impression id in a decision, in bytes. A server refuses an
    /// OpenRTB request with a longer `imp.id` (`invalid_payload`).
    pub const IMP_ID_BYTES_MAX: usize = 256;
    /// Most offers per impression: the engine's `TOP_K_MAX`.
    pub const TOP_K_MAX: usize = cx_decision::TOP_K_MAX;
    /// Longest message of an `error` frame, in bytes.
    pub const ERROR_MESSAGE_BYTES_MAX: usize = 1024;
    /// Largest `score_context` payload: the 64-byte fixed part, five
    /// strings and three full lists of full strings (26,128 bytes).
    pub const SCORE_CONTEXT_BYTES_MAX: usize =
        64 + 5 * (2 + STRING_BYTES_MAX) + 3 * (2 + LIST_ITEMS_MAX * (2 + STRING_BYTES_MAX));
    /// Longest decision id in a `decision` or a `feedback` event, bytes
    /// (an engine's ids are at most 44: a 30-byte prefix and a 13-digit
    /// base-36 ticket).
    pub const DECISION_ID_BYTES_MAX: usize = 64;
    /// Longest event id in a `feedback` event, bytes.
    pub const EVENT_ID_BYTES_MAX: usize = 64;
    /// Largest `decision` payload: every impression with a full id, a
    /// full decision id and [`TOP_K_MAX`] offers (45,700 bytes).
    pub const DECISION_BYTES_MAX: usize =
        4 + IMPS_MAX * (8 + IMP_ID_BYTES_MAX + 2 + DECISION_ID_BYTES_MAX + TOP_K_MAX * 48);
    /// Most events in one `feedback` message: the engine's batch limit
    /// (`cx_domain::feedback::EVENT_BATCH_MAX`).
    pub const FEEDBACK_EVENTS_MAX: usize = 4096;
    /// Largest `feedback` payload: [`FEEDBACK_EVENTS_MAX`] events with
    /// full ids (704,516 bytes).
    pub const FEEDBACK_BYTES_MAX: usize =
        4 + FEEDBACK_EVENTS_MAX * (40 + 2 + DECISION_ID_BYTES_MAX + 2 + EVENT_ID_BYTES_MAX);
    /// Most refusal counts in a `feedback_ack`.
    pub const FEEDBACK_REFUSALS_MAX: usize = 32;
    /// Most items in one `put_features` message (well under the feature
    /// store's own batch limit, 65,536).
    pub const PUT_FEATURES_ITEMS_MAX: usize = 2048;
    /// Longest feature name in a `put_features` item, bytes (the feature
    /// definitions' `NAME_BYTES_MAX`).
    pub const FEATURE_NAME_BYTES_MAX: usize = 64;
    /// Longest category label in a `put_features` item, bytes (the feature
    /// definitions' `LABEL_BYTES_MAX`).
    pub const FEATURE_LABEL_BYTES_MAX: usize = 64;
    /// Largest `put_features` payload: [`PUT_FEATURES_ITEMS_MAX`] items
    /// with a full user id, name and label (847,876 bytes).
    pub const PUT_FEATURES_BYTES_MAX: usize = 4 + PUT_FEATURES_ITEMS_MAX
        * (24 + 2 + STRING_BYTES_MAX + 2 + FEATURE_NAME_BYTES_MAX + 2 + FEATURE_LABEL_BYTES_MAX);

    const _: () = {
        assert!(HEADER_BYTES == std::mem::size_of::<super::FrameHeader>());
        assert!(SCORE_CONTEXT_BYTES_MAX <= PAYLOAD_BYTES_MAX);
        assert!(DECISION_BYTES_MAX <= PAYLOAD_BYTES_MAX);
        assert!(FEEDBACK_BYTES_MAX <= PAYLOAD_BYTES_MAX);
        assert!(PUT_FEATURES_BYTES_MAX <= PAYLOAD_BYTES_MAX);
        assert!(PUT_FEATURES_ITEMS_MAX <= u16::MAX as usize);
        assert!(FEEDBACK_EVENTS_MAX <= u16::MAX as usize);
        assert!(FEEDBACK_REFUSALS_MAX <= u8::MAX as usize);
        assert!(FRAME_BYTES_MAX <= u32::MAX as usize);
        assert!(STRING_BYTES_MAX <= u16::MAX as usize);
        assert!(IMP_ID_BYTES_MAX <= u16::MAX as usize);
        assert!(ERROR_MESSAGE_BYTES_MAX <= u16::MAX as usize);
        assert!(IMPS_MAX <= u16::MAX as usize && TOP_K_MAX <= u8::MAX as usize);
    };
}

/// A decoded payload of any type, as [`decode_message`] gives it.
///
/// The `ScoreContext` variant holds its lists inline (about 1.7 KiB), so
/// the enum is large; it is meant to live on the stack for one frame, and
/// boxing the view would allocate per request.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Message<'a> {
    /// A `hello`.
    Hello(Hello),
    /// A `hello_ack`.
    HelloAck(HelloAck),
    /// A `ping` and its nonce.
    Ping(u64),
    /// A `pong` and its nonce.
    Pong(u64),
    /// A `score_context`, checked and borrowed.
    ScoreContext(ContextView<'a>),
    /// A `score_openrtb`: the JSON document (borrowed, not parsed) and its
    /// flags.
    ScoreOpenRtb {
        /// The OpenRTB `BidRequest` document.
        json: &'a [u8],
        /// Decide in simulation mode.
        simulate: bool,
        /// Answer with a `bid_response`.
        bid_response: bool,
        /// Put each decided impression's decision id in the answer.
        decision_ids: bool,
    },
    /// A `feedback`, checked and borrowed.
    Feedback(FeedbackView<'a>),
    /// A `feedback_ack`.
    FeedbackAck(FeedbackAck),
    /// A `put_features`, checked and borrowed.
    PutFeatures(PutFeaturesView<'a>),
    /// A `put_features_ack`.
    PutFeaturesAck(PutFeaturesAck),
    /// A `bid_response`: its JSON object (borrowed; checked to be UTF-8).
    BidResponse(&'a str),
    /// A `decision`.
    Decision(DecisionResponse),
    /// An `error`.
    Error(ErrorMessage<'a>),
}

/// Decodes a payload with the decoder for `message_type` (from a
/// [`Decoded::Frame`]'s header). Allocates only for a `decision` and a
/// `put_features_ack`.
pub fn decode_message(
    message_type: MessageType,
    payload: &[u8],
) -> Result<Message<'_>, ProtocolError> {
    Ok(match message_type {
        MessageType::Hello => Message::Hello(decode_hello(payload)?),
        MessageType::HelloAck => Message::HelloAck(decode_hello_ack(payload)?),
        MessageType::Ping => Message::Ping(decode_ping(payload)?),
        MessageType::Pong => Message::Pong(decode_pong(payload)?),
        MessageType::ScoreContext => Message::ScoreContext(decode_score_context_view(payload)?),
        MessageType::ScoreOpenRtb => {
            let (json, flags) = decode_score_openrtb(payload)?;
            Message::ScoreOpenRtb {
                json,
                simulate: flags.simulate,
                bid_response: flags.bid_response,
                decision_ids: flags.decision_ids,
            }
        }
        MessageType::Feedback => Message::Feedback(decode_feedback(payload)?),
        MessageType::FeedbackAck => Message::FeedbackAck(decode_feedback_ack(payload)?),
        MessageType::PutFeatures => Message::PutFeatures(decode_put_features(payload)?),
        MessageType::PutFeaturesAck => Message::PutFeaturesAck(decode_put_features_ack(payload)?),
        MessageType::BidResponse => Message::BidResponse(decode_bid_response(payload)?),
        MessageType::Decision => Message::Decision(decode_decision(payload)?),
        MessageType::Error => Message::Error(decode_error(payload)?),
    })
}
