//! The numeric code lists of the protocol: message types, error codes, skip
//! reasons, and the one-byte codes of the engine's enumerations.

use cx_decision::{NoBidCause, ScoreSource};
use cx_features::Os;
use std::fmt;

/// The code-table methods every wire enumeration here shares, derived from
/// its strum derives: the discriminant is the wire code (of type `$repr`),
/// the snake_case name is the label. 0 is never a code (it means "none" on
/// the wire), so `from_code(0)` is `None`.
macro_rules! code_enum_impls {
    ($name:ident, $repr:ty) => {
        impl $name {
            /// Number of values.
            pub const COUNT: usize = <Self as strum::EnumCount>::COUNT;

            /// Every value, in code order.
            pub const ALL: [$name; Self::COUNT] =
                match <Self as strum::VariantArray>::VARIANTS.first_chunk() {
                    Some(all) => *all,
                    None => panic!("VARIANTS holds every value"),
                };

            /// The wire code.
            pub fn code(self) -> $repr {
                self as $repr
            }

            /// The value for a wire code, or `None` for an unknown code.
            pub fn from_code(code: $repr) -> Option<Self> {
                Self::from_repr(code)
            }

            /// snake_case label, as in `docs/PROTOCOL.md`.
            pub fn label(self) -> &'static str {
                self.into()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.label())
            }
        }
    };
}

/// The kind of a frame: byte 5 of the header. A value not listed here is
/// refused by [`super::decode_frame`] ([`super::ProtocolError::UnknownMessageType`]).
/// The discriminant is the wire code; the label is the snake_case name.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    strum::VariantArray,
    strum::EnumCount,
    strum::FromRepr,
    strum::IntoStaticStr,
)]
#[strum(serialize_all = "snake_case")]
#[repr(u8)]
pub enum MessageType {
    /// Client to server: the versions the client speaks.
    Hello = 0x01,
    /// Server to client: the chosen version and the server's limits.
    HelloAck = 0x02,
    /// Client to server: a liveness check carrying an opaque `u64`.
    Ping = 0x03,
    /// Server to client: the answer to a ping, echoing its `u64`.
    Pong = 0x04,
    /// Client to server: score one request given as a binary request context.
    ScoreContext = 0x10,
    /// Client to server: score an OpenRTB bid request given as JSON.
    #[strum(serialize = "score_openrtb")]
    ScoreOpenRtb = 0x11,
    /// Client to server: a batch of feedback events (wins, losses,
    /// impressions, clicks, conversions) for earlier decisions.
    Feedback = 0x12,
    /// Client to server: a batch of feature values for the online feature
    /// store, per user and feature name.
    PutFeatures = 0x13,
    /// Server to client: the decision for a score request.
    Decision = 0x20,
    /// Server to client: a request (or the connection) failed.
    Error = 0x21,
    /// Server to client: the OpenRTB `BidResponse` (and the decisions
    /// behind it) for a `score_openrtb` that asked for one.
    BidResponse = 0x22,
    /// Server to client: what became of a `feedback` message's events.
    FeedbackAck = 0x23,
    /// Server to client: what became of a `put_features` message's items.
    PutFeaturesAck = 0x24,
}

code_enum_impls!(MessageType, u8);

impl MessageType {
    /// Whether clients send this type (servers send the others).
    pub fn is_from_client(self) -> bool {
        matches!(
            self,
            Self::Hello
                | Self::Ping
                | Self::ScoreContext
                | Self::ScoreOpenRtb
                | Self::Feedback
                | Self::PutFeatures
        )
    }
}

/// The code of an `error` frame: why a request, or the connection, failed.
/// The table in `docs/PROTOCOL.md` says when each is sent and whether the
/// server closes the connection after it. The discriminant is the wire
/// code; the label is the snake_case name.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    strum::VariantArray,
    strum::EnumCount,
    strum::FromRepr,
    strum::IntoStaticStr,
)]
#[strum(serialize_all = "snake_case")]
#[repr(u16)]
pub enum ErrorCode {
    /// The frame header is wrong: bad magic (fatal), or a non-zero flags or
    /// reserved field (the frame is skipped).
    MalformedFrame = 1,
    /// The header's version is not one the receiver speaks, or a hello
    /// shares no version with the server.
    UnsupportedVersion = 2,
    /// The header's message type is unknown, or not one the receiver accepts.
    UnknownMessageType = 3,
    /// The header announces a payload over the limit (fatal).
    FrameTooLarge = 4,
    /// The payload does not follow its layout, or breaks a limit or a rule.
    InvalidPayload = 5,
    /// The server has no capacity for the request now; retry later.
    Overloaded = 6,
    /// The connection already has the maximum number of requests in flight.
    TooManyInFlight = 7,
    /// The server is shutting down and takes no new requests.
    ShuttingDown = 8,
    /// The request was not decided in time.
    Timeout = 9,
    /// The server failed for a reason that is not the client's fault.
    Internal = 10,
}

code_enum_impls!(ErrorCode, u16);

impl ErrorCode {
    /// Whether a client may send the same request again later and expect
    /// it to succeed (`overloaded`, `too_many_in_flight`, `timeout`).
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::Overloaded | Self::TooManyInFlight | Self::Timeout
        )
    }
}

/// Why an impression of a decision was not decided at all (as opposed to
/// decided with no offer, which a [`NoBidCause`] explains). The
/// discriminant is the wire code (never 0: 0 means "not skipped").
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    strum::VariantArray,
    strum::EnumCount,
    strum::FromRepr,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[strum(serialize_all = "snake_case")]
#[repr(u8)]
pub enum SkipReason {
    /// The impression's floor currency, or the request's `cur` list, is not
    /// the currency the engine prices in.
    Currency = 1,
    /// The impression asks for a kind of ad the engine does not serve.
    UnsupportedKind = 2,
    /// The engine produced no decision for it (deadline, shutdown or failure).
    NotDecided = 3,
}

code_enum_impls!(SkipReason, u8);

impl SkipReason {
    /// The reason for a label, or `None` for an unknown one.
    pub fn from_label(label: &str) -> Option<Self> {
        label.parse().ok()
    }
}

/// The wire code of a no-offer cause: [`NoBidCause::index`] + 1 (0 on the
/// wire means "offers were chosen"). New causes go last, so the codes of
/// the old ones never change: 1 `no_offers` ... 11 `blocked_advertiser`,
/// 12 `no_creative`, 13 `blocked_category`, 14 `blocked_attribute`.
pub fn no_bid_code(cause: NoBidCause) -> u8 {
    // `index` is below `NoBidCause::COUNT` (14), so this cannot truncate.
    cause.index() as u8 + 1
}

/// The cause for a wire code, or `None` for 0 or an unknown code.
pub fn no_bid_from_code(code: u8) -> Option<NoBidCause> {
    NoBidCause::ALL
        .into_iter()
        .find(|&cause| no_bid_code(cause) == code)
}

/// Every score source, in wire-code order (`none` = 0 ... `failed` = 4).
pub const SCORE_SOURCES: &[ScoreSource] = <ScoreSource as strum::VariantArray>::VARIANTS;

/// The wire code of a score source (its discriminant).
pub fn score_source_code(source: ScoreSource) -> u8 {
    source as u8
}

/// The score source for a wire code, or `None` for an unknown code.
pub fn score_source_from_code(code: u8) -> Option<ScoreSource> {
    ScoreSource::from_repr(code)
}

/// The wire code of an operating system: its one-hot slot ([`Os::slot`]:
/// other 0, android 1, ios 2, windows 3, macos 4, linux 5).
pub fn os_code(os: Os) -> u8 {
    // Slots are 0..=5.
    os.slot() as u8
}

/// The operating system for a wire code; a code outside 0-5 is
/// [`Os::Other`], as an unknown name is.
pub fn os_from_code(code: u8) -> Os {
    match code {
        1 => Os::Android,
        2 => Os::Ios,
        3 => Os::Windows,
        4 => Os::Macos,
        5 => Os::Linux,
        _ => Os::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_codes_are_refused() {
        for t in MessageType::ALL {
            assert_eq!(MessageType::from_code(t.code()), Some(t));
        }
        assert_eq!(MessageType::from_code(0), None);
        assert_eq!(MessageType::from_code(0xff), None);
        for c in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_code(c.code()), Some(c));
        }
        assert_eq!(ErrorCode::from_code(0), None);
        assert_eq!(ErrorCode::from_code(11), None);
        for r in SkipReason::ALL {
            assert_eq!(SkipReason::from_code(r.code()), Some(r));
            assert_eq!(SkipReason::from_label(r.label()), Some(r));
        }
        assert_eq!(SkipReason::from_code(0), None);
        for cause in NoBidCause::ALL {
            assert_eq!(no_bid_from_code(no_bid_code(cause)), Some(cause));
        }
        assert_eq!(no_bid_from_code(0), None);
        assert_eq!(no_bid_from_code(15), None);
        // The codes of the docs' table (docs/PROTOCOL.md, "No-offer causes").
        assert_eq!(no_bid_code(NoBidCause::BlockedAdvertiser), 11);
        assert_eq!(no_bid_code(NoBidCause::NoCreative), 12);
        assert_eq!(no_bid_code(NoBidCause::BlockedCategory), 13);
        assert_eq!(no_bid_code(NoBidCause::BlockedAttribute), 14);
        for &s in SCORE_SOURCES {
            assert_eq!(score_source_from_code(score_source_code(s)), Some(s));
        }
        assert_eq!(score_source_from_code(5), None);
        for slot in 0..Os::SLOTS.len() {
            assert_eq!(usize::from(os_code(os_from_code(slot as u8))), slot);
        }
        assert_eq!(os_from_code(6), Os::Other);
    }
}

#[cfg(test)]
mod label_tests {
    use super::*;

    #[test]
    fn labels_are_the_names_in_the_protocol_docs() {
        let types: Vec<&str> = MessageType::ALL.iter().map(|t| t.label()).collect();
        assert_eq!(
            types,
            [
                "hello",
                "hello_ack",
                "ping",
                "pong",
                "score_context",
                "score_openrtb",
                "feedback",
                "put_features",
                "decision",
                "error",
                "bid_response",
                "feedback_ack",
                "put_features_ack"
            ]
        );
        let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.label()).collect();
        assert_eq!(
            codes,
            [
                "malformed_frame",
                "unsupported_version",
                "unknown_message_type",
                "frame_too_large",
                "invalid_payload",
                "overloaded",
                "too_many_in_flight",
                "shutting_down",
                "timeout",
                "internal"
            ]
        );
        let reasons: Vec<&str> = SkipReason::ALL.iter().map(|r| r.label()).collect();
        assert_eq!(reasons, ["currency", "unsupported_kind", "not_decided"]);
        let causes: Vec<&str> = NoBidCause::ALL.iter().map(|c| c.label()).collect();
        assert_eq!(
            causes,
            [
                "no_offers",
                "not_scored",
                "scoring_failed",
                "device_type",
                "country",
                "placement_size",
                "channel",
                "frequency_capped",
                "budget_exhausted",
                "below_floor",
                "blocked_advertiser",
                "no_creative",
                "blocked_category",
                "blocked_attribute"
            ]
        );
    }
}
