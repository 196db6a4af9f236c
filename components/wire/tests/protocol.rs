//! The wire protocol's codec: round trips of every message, streaming with
//! pipelined frames, every kind of malformed input, the seed corpus for the
//! fuzz target, the worked examples of `docs/PROTOCOL.md`, and allocation.

use cx_decision::{ChosenOffer, Decision, NoBidCause, ScoreSource, TOP_K_MAX};
use cx_features::{
    AdPosition, ConnectionType, DeviceType, Os, RequestContext, EXTRA_NUMERIC_SLOTS,
};
use cx_wire::protocol::limits::{
    self as limits, FRAME_BYTES_MAX, HEADER_BYTES, IMPS_MAX, IMP_ID_BYTES_MAX, LIST_ITEMS_MAX,
    PAYLOAD_BYTES_MAX, STRING_BYTES_MAX,
};
use cx_wire::protocol::{
    self, decode_bid_response, decode_decision, decode_error, decode_frame, decode_hello,
    decode_hello_ack, decode_message, decode_ping, decode_pong, decode_score_context,
    decode_score_context_view, decode_score_openrtb, encode_bid_response, encode_context_decision,
    encode_decision, encode_error, encode_hello, encode_hello_ack, encode_ping, encode_pong,
    encode_score_context, encode_score_openrtb, encode_score_openrtb_with, DecisionWriter, Decoded,
    ErrorCode, Header, Hello, HelloAck, ImpDecision, ImpOutcome, MessageType, OpenRtbFlags,
    ProtocolError, SkipReason, MAGIC, VERSION,
};
use cx_wire::protocol::{
    decode_feedback, decode_feedback_ack, decode_put_features, encode_feedback,
    encode_feedback_ack, encode_put_features, encode_put_features_ack, FeatureItem, FeedbackAck,
    FeedbackEvent, FeedbackKind, PutFeaturesAck, PutValue,
};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::path::PathBuf;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A frame built byte by byte from the spec (not with the encoders), so the
/// tests check the layout, not just the code against itself.
fn raw_frame(version: u8, message_type: u8, request_id: u64, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(b"CXWP");
    f.push(version);
    f.push(message_type);
    f.extend_from_slice(&0u16.to_le_bytes());
    f.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    f.extend_from_slice(&0u32.to_le_bytes());
    f.extend_from_slice(&request_id.to_le_bytes());
    f.extend_from_slice(payload);
    f
}

/// The one frame at the start of `buf`, which must be whole and valid.
fn frame(buf: &[u8]) -> (Header, &[u8], usize) {
    match decode_frame(buf) {
        Decoded::Frame {
            header,
            payload,
            consumed,
        } => (header, payload, consumed),
        other => panic!("expected a frame, got {other:?}"),
    }
}

/// The payload of the only frame in `buf`, checked to fill `buf` exactly.
fn only_payload(buf: &[u8], message_type: MessageType, request_id: u64) -> &[u8] {
    let (header, payload, consumed) = frame(buf);
    assert_eq!(consumed, buf.len(), "one frame fills the buffer");
    assert_eq!(header.message_type, message_type);
    assert_eq!(header.request_id, request_id);
    assert_eq!(header.version, VERSION);
    assert_eq!(header.payload_len, payload.len());
    payload
}

/// The recoverable error for the only frame in `buf`.
fn recoverable(buf: &[u8]) -> ProtocolError {
    match decode_frame(buf) {
        Decoded::Invalid {
            error,
            consumed,
            request_id,
        } => {
            assert!(!error.is_fatal(), "{error} should be recoverable");
            assert_eq!(
                consumed,
                buf.len(),
                "a recoverable error skips exactly the frame"
            );
            assert!(request_id.is_some());
            error
        }
        other => panic!("expected a recoverable error, got {other:?}"),
    }
}

/// The fatal error for `buf`.
fn fatal(buf: &[u8]) -> ProtocolError {
    match decode_frame(buf) {
        Decoded::Invalid {
            error, consumed, ..
        } => {
            assert!(error.is_fatal(), "{error} should be fatal");
            assert_eq!(consumed, buf.len(), "a fatal error discards the buffer");
            error
        }
        other => panic!("expected a fatal error, got {other:?}"),
    }
}

/// What a receiver saw in a byte stream.
#[derive(Debug, Default)]
struct Received {
    /// Whole frames with a valid header: (type, request id, payload, whether the payload decoded).
    frames: Vec<(MessageType, u64, Vec<u8>, bool)>,
    /// Recoverable header errors (the frame was skipped).
    skipped: Vec<ProtocolError>,
    /// The fatal error that ended the stream, if any.
    fatal: Option<ProtocolError>,
    /// Bytes left over when the input ended (a partial frame).
    leftover: usize,
}

/// Feeds `bytes` to a receiver, `chunk` bytes at a time, as a server would:
/// decode whatever is buffered, drop what was consumed, read more when
/// asked. Checks the invariants of [`Decoded`] at every step.
fn receive(bytes: &[u8], chunk: impl Fn(usize) -> usize) -> Received {
    let mut out = Received::default();
    let mut buf: Vec<u8> = Vec::new();
    let mut fed = 0;
    let mut round = 0;
    loop {
        loop {
            match decode_frame(&buf) {
                Decoded::Frame {
                    header,
                    payload,
                    consumed,
                } => {
                    assert_eq!(consumed, HEADER_BYTES + payload.len());
                    assert!(consumed <= buf.len());
                    let ok = decode_message(header.message_type, payload).is_ok();
                    out.frames
                        .push((header.message_type, header.request_id, payload.to_vec(), ok));
                    buf.drain(..consumed);
                }
                Decoded::NeedMore { at_least } => {
                    assert!(
                        at_least > buf.len(),
                        "NeedMore must ask for more than is there"
                    );
                    assert!(at_least <= FRAME_BYTES_MAX);
                    break;
                }
                Decoded::Invalid {
                    error, consumed, ..
                } => {
                    assert!(
                        consumed >= 1 && consumed <= buf.len(),
                        "consumed {consumed} of {}",
                        buf.len()
                    );
                    if error.is_fatal() {
                        out.fatal = Some(error);
                        return out;
                    }
                    out.skipped.push(error);
                    buf.drain(..consumed);
                }
            }
        }
        if fed == bytes.len() {
            out.leftover = buf.len();
            return out;
        }
        let n = chunk(round).clamp(1, bytes.len() - fed);
        buf.extend_from_slice(&bytes[fed..fed + n]);
        fed += n;
        round += 1;
    }
}

fn offer(id: u64, score: f32) -> ChosenOffer {
    ChosenOffer {
        offer_id: id,
        catalog_index: id as u32,
        score,
        p_click: 0.1,
        bid_cpm: 1.5,
        factors: [0.0, 0.0, 0.0, score, 0.0, 0.0],
        objectives: [score, 0.0, 0.0, 0.0, 0.0, 0.0],
    }
}

fn decision_with(offers: &[ChosenOffer], excluded: &[NoBidCause]) -> Decision {
    let mut d = Decision::default();
    for o in offers {
        d.consider(*o, TOP_K_MAX);
    }
    for &cause in excluded {
        d.exclude(cause);
    }
    d.settle();
    d.source = ScoreSource::Model;
    d
}

/// A context with every field set.
fn full_context() -> RequestContext {
    RequestContext {
        user_id: "user-42".into(),
        user_segments: vec!["s1".into(), "s2".into()],
        device_type: DeviceType::Phone,
        os: Os::Ios,
        connection_type: ConnectionType::Cellular5g,
        country: "USA".into(),
        region: "CA".into(),
        site_id: "site-7".into(),
        is_app: false,
        domain: "example.com".into(),
        categories: vec!["IAB1-2".into()],
        placement_width: 300,
        placement_height: 250,
        ad_position: AdPosition::AboveTheFold,
        bid_floor: 0.25,
        timestamp: 1_704_261_600,
        extra: vec!["C14=1005".into()],
        extra_numeric: [1.0, 2.0, 0.0, 1e9],
    }
}

fn encoded_context(ctx: &RequestContext) -> Vec<u8> {
    let mut out = Vec::new();
    encode_score_context(&mut out, 1, ctx, false).unwrap();
    out
}

/// Payload errors of a context frame whose payload was edited by `edit`.
fn context_payload_error(ctx: &RequestContext, edit: impl FnOnce(&mut Vec<u8>)) -> ProtocolError {
    let buf = encoded_context(ctx);
    let mut payload = buf[HEADER_BYTES..].to_vec();
    edit(&mut payload);
    let buf = raw_frame(1, 0x10, 1, &payload);
    let (_, payload, _) = frame(&buf);
    let err = decode_score_context(payload).unwrap_err();
    assert!(!err.is_fatal());
    assert_eq!(err.code(), ErrorCode::InvalidPayload);
    assert_eq!(decode_score_context_view(payload).unwrap_err(), err);
    err
}

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures")).join(rel)
}

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

/// Strings within the limit: up to 64 characters of any Unicode (at most 256 bytes).
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(any::<char>(), 0..=64).prop_map(String::from_iter),
        "[a-zA-Z0-9=_-]{0,12}",
        Just(String::new()),
    ]
}

fn list() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(text(), 0..=LIST_ITEMS_MAX)
}

fn finite_f64() -> impl Strategy<Value = f64> {
    use prop::num::f64 as f;
    f::POSITIVE | f::NEGATIVE | f::NORMAL | f::SUBNORMAL | f::ZERO
}

fn finite_f32() -> impl Strategy<Value = f32> {
    use prop::num::f32 as f;
    f::POSITIVE | f::NEGATIVE | f::NORMAL | f::SUBNORMAL | f::ZERO
}

fn context() -> impl Strategy<Value = RequestContext> {
    let strings = (text(), text(), text(), text(), text());
    let lists = (list(), list(), list());
    let enums = (
        0i64..=7,
        0usize..Os::SLOTS.len(),
        0i64..=7,
        0i64..=7,
        any::<bool>(),
    );
    let numbers = (
        any::<u32>(),
        any::<u32>(),
        finite_f64(),
        any::<i64>(),
        prop::array::uniform4(finite_f64()),
    );
    (strings, lists, enums, numbers).prop_map(
        |(
            (user_id, country, region, site_id, domain),
            (user_segments, categories, extra),
            (device, os, connection, position, is_app),
            (w, h, bid_floor, timestamp, extra_numeric),
        )| RequestContext {
            user_id,
            user_segments,
            device_type: DeviceType::from_openrtb(device),
            os: protocol::os_from_code(os as u8),
            connection_type: ConnectionType::from_openrtb(connection),
            country,
            region,
            site_id,
            is_app,
            domain,
            categories,
            placement_width: w,
            placement_height: h,
            ad_position: AdPosition::from_openrtb(position),
            bid_floor,
            timestamp,
            extra,
            extra_numeric,
        },
    )
}

fn chosen_offer() -> impl Strategy<Value = ChosenOffer> {
    (
        any::<u64>(),
        finite_f32(),
        0.0f32..=1.0,
        finite_f64(),
        prop::array::uniform6(finite_f32()),
    )
        .prop_map(|(offer_id, score, p_click, bid_cpm, factors)| ChosenOffer {
            offer_id,
            catalog_index: 0,
            score,
            p_click,
            bid_cpm,
            factors,
            objectives: [0.0; 6],
        })
}

/// A settled decision: 0 to 8 offers, or a cause.
fn decision() -> impl Strategy<Value = Decision> {
    (
        prop::collection::vec(chosen_offer(), 0..=TOP_K_MAX),
        prop::collection::vec(prop::sample::select(NoBidCause::ALL.to_vec()), 0..4),
        prop::sample::select(protocol::SCORE_SOURCES.to_vec()),
        any::<bool>(),
    )
        .prop_map(|(offers, excluded, source, simulated)| {
            let mut d = decision_with(&offers, &excluded);
            d.source = source;
            d.simulated = simulated;
            d
        })
}

#[derive(Clone, Debug)]
enum TestOutcome {
    Decided(Box<Decision>),
    Skipped(SkipReason),
}

fn imp() -> impl Strategy<Value = (String, TestOutcome)> {
    let id = prop_oneof![
        "[0-9a-f-]{0,36}",
        prop::collection::vec(any::<char>(), 0..=64).prop_map(String::from_iter),
    ];
    let outcome = prop_oneof![
        4 => decision().prop_map(|d| TestOutcome::Decided(Box::new(d))),
        1 => prop::sample::select(SkipReason::ALL.to_vec()).prop_map(TestOutcome::Skipped),
    ];
    (id, outcome)
}

fn as_outcome(o: &TestOutcome) -> ImpOutcome<'_> {
    match o {
        TestOutcome::Decided(d) => ImpOutcome::Decided(d),
        TestOutcome::Skipped(r) => ImpOutcome::Skipped(*r),
    }
}

/// One valid frame of any type, with its request id.
fn any_frame() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (any::<u64>(), any::<u64>()).prop_map(|(id, n)| {
            let mut out = Vec::new();
            encode_ping(&mut out, id, n);
            out
        }),
        (any::<u64>(), any::<u64>()).prop_map(|(id, n)| {
            let mut out = Vec::new();
            encode_pong(&mut out, id, n);
            out
        }),
        any::<u64>().prop_map(|id| {
            let mut out = Vec::new();
            encode_hello(&mut out, id, Hello::ours());
            out
        }),
        (any::<u64>(), context(), any::<bool>()).prop_map(|(id, ctx, sim)| {
            let mut out = Vec::new();
            encode_score_context(&mut out, id, &ctx, sim).unwrap();
            out
        }),
        (any::<u64>(), prop::collection::vec(imp(), 1..4)).prop_map(|(id, imps)| {
            let refs: Vec<(&str, ImpOutcome<'_>)> = imps
                .iter()
                .map(|(i, o)| (i.as_str(), as_outcome(o)))
                .collect();
            let mut out = Vec::new();
            encode_decision(&mut out, id, &refs).unwrap();
            out
        }),
        (any::<u64>(), "[ -~]{0,80}").prop_map(|(id, msg)| {
            let mut out = Vec::new();
            encode_error(&mut out, id, ErrorCode::Overloaded, &msg);
            out
        }),
        (any::<u64>(), prop::collection::vec(any::<u8>(), 0..200)).prop_map(|(id, json)| {
            let mut out = Vec::new();
            encode_score_openrtb(&mut out, id, &json, false).unwrap();
            out
        }),
    ]
}

#[derive(Clone, Debug)]
enum Mutation {
    FlipBit(usize, u8),
    SetByte(usize, u8),
    Truncate(usize),
    SetLength(u32),
    /// Overwrites a `u16` at a payload offset: string lengths, counts.
    SetU16(usize, u16),
    Insert(usize, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(p, b)| Mutation::FlipBit(p, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(p, v)| Mutation::SetByte(p, v)),
        any::<usize>().prop_map(Mutation::Truncate),
        prop_oneof![any::<u32>(), 0u32..300].prop_map(Mutation::SetLength),
        (any::<usize>(), prop_oneof![any::<u16>(), 0u16..64])
            .prop_map(|(p, v)| Mutation::SetU16(p, v)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(p, b)| Mutation::Insert(p, b)),
    ]
}

fn apply(frame: &mut Vec<u8>, m: &Mutation) {
    let len = frame.len();
    match m {
        Mutation::FlipBit(p, b) => frame[p % len] ^= 1 << b,
        Mutation::SetByte(p, v) => frame[p % len] = *v,
        Mutation::Truncate(p) => frame.truncate(p % (len + 1)),
        Mutation::SetLength(v) => {
            if len >= 12 {
                frame[8..12].copy_from_slice(&v.to_le_bytes());
            }
        }
        Mutation::SetU16(p, v) => {
            if len >= HEADER_BYTES + 2 {
                let at = HEADER_BYTES + p % (len - HEADER_BYTES - 1);
                frame[at..at + 2].copy_from_slice(&v.to_le_bytes());
            }
        }
        Mutation::Insert(p, bytes) => {
            let at = p % (len + 1);
            frame.splice(at..at, bytes.iter().copied());
        }
    }
}

// ---------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn contexts_round_trip(ctx in context(), simulate in any::<bool>(), id in any::<u64>()) {
        let mut out = Vec::new();
        encode_score_context(&mut out, id, &ctx, simulate).unwrap();
        let payload = only_payload(&out, MessageType::ScoreContext, id);
        let (back, sim) = decode_score_context(payload).unwrap();
        prop_assert_eq!(&back, &ctx);
        prop_assert_eq!(sim, simulate);
        // The view agrees, and writing it into a used context gives the same.
        let view = decode_score_context_view(payload).unwrap();
        let mut reused = full_context();
        reused.user_segments = vec!["stale".into(); 40];
        view.write_into(&mut reused);
        prop_assert_eq!(&reused, &ctx);
        // And through a pool of spare strings, stale ones in it.
        let mut pooled = full_context();
        pooled.categories = vec!["stale".into(); 7];
        let mut pool = Vec::with_capacity(8);
        pool.extend(["old".to_string(), "x".repeat(300)]);
        let capacity = pool.capacity();
        view.write_into_pooled(&mut pooled, &mut pool);
        prop_assert_eq!(&pooled, &ctx);
        prop_assert_eq!(pool.capacity(), capacity, "the pool never grows");
    }

    #[test]
    fn decisions_round_trip(imps in prop::collection::vec(imp(), 1..=6), id in any::<u64>()) {
        let refs: Vec<(&str, ImpOutcome<'_>)> =
            imps.iter().map(|(i, o)| (i.as_str(), as_outcome(o))).collect();
        let mut out = vec![0xAA; 3]; // frames are appended after existing bytes
        let n = encode_decision(&mut out, id, &refs).unwrap();
        prop_assert_eq!(n, out.len() - 3);
        let payload = only_payload(&out[3..], MessageType::Decision, id);
        let back = decode_decision(payload).unwrap();
        let expected: Vec<ImpDecision> =
            refs.iter().map(|&(i, o)| ImpDecision::new(i, o)).collect();
        prop_assert_eq!(back.imps, expected);
    }

    #[test]
    fn pipelined_frames_decode_in_order_from_any_chunking(
        frames in prop::collection::vec(any_frame(), 1..8),
        chunks in prop::collection::vec(1usize..80, 1..16),
    ) {
        let stream: Vec<u8> = frames.concat();
        let got = receive(&stream, |round| chunks[round % chunks.len()]);
        prop_assert!(got.fatal.is_none() && got.skipped.is_empty());
        prop_assert_eq!(got.leftover, 0);
        prop_assert_eq!(got.frames.len(), frames.len());
        for ((ty, id, payload, ok), f) in got.frames.iter().zip(&frames) {
            let (h, p, _) = frame(f);
            prop_assert_eq!((*ty, *id), (h.message_type, h.request_id));
            prop_assert_eq!(payload.as_slice(), p);
            prop_assert!(ok, "the payload decodes");
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512), magic in any::<bool>()) {
        let mut bytes = bytes;
        if magic && bytes.len() >= 4 {
            bytes[..4].copy_from_slice(&MAGIC);
        }
        let got = receive(&bytes, |_| 7);
        prop_assert!(got.leftover <= bytes.len());
        for ty in MessageType::ALL {
            let _ = decode_message(ty, &bytes);
        }
    }

    #[test]
    fn mutated_frames_never_panic(
        frames in prop::collection::vec(any_frame(), 1..4),
        mutations in prop::collection::vec((0usize..4, mutation()), 1..4),
        chunk in 1usize..64,
    ) {
        let mut frames = frames;
        for (which, m) in &mutations {
            let n = frames.len();
            let f = &mut frames[which % n];
            if !f.is_empty() {
                apply(f, m);
            }
        }
        let stream = frames.concat();
        let got = receive(&stream, |_| chunk);
        prop_assert!(got.leftover <= stream.len());
        // Whatever happened, a payload error is recoverable and maps to invalid_payload.
        for (ty, _, payload, ok) in &got.frames {
            if !ok {
                let err = decode_message(*ty, payload).unwrap_err();
                prop_assert!(!err.is_fatal());
                prop_assert_eq!(err.code(), ErrorCode::InvalidPayload);
            }
        }
    }
}

#[test]
fn control_messages_round_trip() {
    let mut out = Vec::new();
    let hello = Hello {
        min_version: 1,
        max_version: 3,
    };
    encode_hello(&mut out, 9, hello);
    assert_eq!(out.len(), HEADER_BYTES + 8);
    assert_eq!(
        decode_hello(only_payload(&out, MessageType::Hello, 9)).unwrap(),
        hello
    );
    assert_eq!(hello.negotiate(), Some(VERSION));

    out.clear();
    let ack = HelloAck::ours(VERSION);
    encode_hello_ack(&mut out, 9, ack);
    assert_eq!(out.len(), HEADER_BYTES + 16);
    let back = decode_hello_ack(only_payload(&out, MessageType::HelloAck, 9)).unwrap();
    assert_eq!(back, ack);
    assert_eq!(back.frame_bytes_max as usize, FRAME_BYTES_MAX);
    assert_eq!(back.in_flight_max, 1024);
    assert_eq!(usize::from(back.top_k_max), TOP_K_MAX);
    assert_eq!(usize::from(back.imps_max), IMPS_MAX);

    for nonce in [0, 1, u64::MAX] {
        out.clear();
        encode_ping(&mut out, u64::MAX, nonce);
        assert_eq!(
            decode_ping(only_payload(&out, MessageType::Ping, u64::MAX)).unwrap(),
            nonce
        );
        out.clear();
        encode_pong(&mut out, 0, nonce);
        assert_eq!(
            decode_pong(only_payload(&out, MessageType::Pong, 0)).unwrap(),
            nonce
        );
    }

    for code in ErrorCode::ALL {
        out.clear();
        encode_error(&mut out, 5, code, "ünïcode message");
        let e = decode_error(only_payload(&out, MessageType::Error, 5)).unwrap();
        assert_eq!((e.code, e.message), (code, "ünïcode message"));
    }
    out.clear();
    encode_error(&mut out, 5, ErrorCode::Internal, "");
    assert_eq!(
        decode_error(only_payload(&out, MessageType::Error, 5))
            .unwrap()
            .message,
        ""
    );
}

#[test]
fn long_error_messages_are_cut_on_a_character_boundary() {
    let mut out = Vec::new();
    let long = "ab€".repeat(1000); // 5 bytes a repeat; 1024 falls inside a '€'
    encode_error(&mut out, 1, ErrorCode::Internal, &long);
    let e = decode_error(only_payload(&out, MessageType::Error, 1)).unwrap();
    assert!(e.message.len() <= 1024 && e.message.len() > 1020);
    assert!(long.starts_with(e.message));
}

#[test]
fn openrtb_documents_round_trip_and_parse() {
    let json = std::fs::read(fixture("openrtb/2.5_mobile.json")).unwrap();
    let mut out = Vec::new();
    encode_score_openrtb(&mut out, 77, &json, true).unwrap();
    let payload = only_payload(&out, MessageType::ScoreOpenRtb, 77);
    let (back, flags) = decode_score_openrtb(payload).unwrap();
    assert_eq!(back, json.as_slice());
    assert!(flags.simulate && !flags.bid_response);
    let request = cx_wire::openrtb::parse_request(back).unwrap();
    assert_eq!(request.impressions().len(), 2);

    // The largest document fits the largest frame exactly.
    let big = vec![b' '; cx_wire::openrtb::limits::REQUEST_BYTES_MAX];
    out.clear();
    encode_score_openrtb(&mut out, 1, &big, false).unwrap();
    assert_eq!(out.len(), FRAME_BYTES_MAX);
    assert!(matches!(decode_frame(&out), Decoded::Frame { .. }));
    let over = vec![b' '; big.len() + 1];
    out.clear();
    let err = encode_score_openrtb(&mut out, 1, &over, false).unwrap_err();
    assert!(matches!(err, ProtocolError::TooLong { field: "json", .. }));
    assert!(out.is_empty(), "a refused frame leaves the buffer alone");
}

#[test]
fn a_context_decision_is_one_impression_with_an_empty_id() {
    let d = decision_with(&[offer(1, 0.5), offer(2, 0.9)], &[]);
    let mut out = Vec::new();
    encode_context_decision(&mut out, 3, &d).unwrap();
    let back = decode_decision(only_payload(&out, MessageType::Decision, 3)).unwrap();
    assert_eq!(back.imps.len(), 1);
    let imp = &back.imps[0];
    assert_eq!(imp.imp_id, "");
    assert_eq!(
        imp.offers.iter().map(|o| o.offer_id).collect::<Vec<_>>(),
        [2, 1]
    );
    assert_eq!(imp.no_offer, None);
    assert_eq!(imp.source, ScoreSource::Model);

    let none = decision_with(&[], &[NoBidCause::BelowFloor, NoBidCause::BelowFloor]);
    out.clear();
    encode_context_decision(&mut out, 4, &none).unwrap();
    let back = decode_decision(only_payload(&out, MessageType::Decision, 4)).unwrap();
    assert!(back.imps[0].offers.is_empty());
    assert_eq!(back.imps[0].no_offer, Some(NoBidCause::BelowFloor));
}

#[test]
fn strings_and_lists_at_their_limits_round_trip_and_one_more_is_refused() {
    let mut ctx = full_context();
    ctx.user_id = "u".repeat(STRING_BYTES_MAX);
    ctx.domain = "é".repeat(STRING_BYTES_MAX / 2);
    ctx.user_segments = (0..LIST_ITEMS_MAX).map(|i| format!("{i:0>256}")).collect();
    ctx.categories = vec![String::new(); LIST_ITEMS_MAX];
    ctx.extra = vec!["x".repeat(STRING_BYTES_MAX); LIST_ITEMS_MAX];
    let out = encoded_context(&ctx);
    let payload = only_payload(&out, MessageType::ScoreContext, 1);
    assert_eq!(decode_score_context(payload).unwrap().0, ctx);

    let mut out = vec![1, 2, 3];
    let refuse = |ctx: &RequestContext, out: &mut Vec<u8>| {
        let err = encode_score_context(out, 1, ctx, false).unwrap_err();
        assert_eq!(
            *out,
            [1, 2, 3],
            "a refused frame leaves the buffer as it was"
        );
        err
    };
    let mut long = ctx.clone();
    long.region = "r".repeat(STRING_BYTES_MAX + 1);
    assert!(matches!(
        refuse(&long, &mut out),
        ProtocolError::TooLong {
            field: "region",
            len: 257,
            limit: 256,
            ..
        }
    ));
    let mut many = ctx.clone();
    many.categories.push("one too many".into());
    assert!(matches!(
        refuse(&many, &mut out),
        ProtocolError::TooLong {
            field: "categories",
            len: 33,
            limit: 32,
            ..
        }
    ));
    let mut long_item = ctx.clone();
    long_item.extra[5].push('x');
    assert!(matches!(
        refuse(&long_item, &mut out),
        ProtocolError::TooLong {
            field: "extra",
            len: 257,
            ..
        }
    ));
    for (i, bad) in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY]
        .into_iter()
        .enumerate()
    {
        let mut nan = ctx.clone();
        nan.bid_floor = bad;
        assert_eq!(
            refuse(&nan, &mut out),
            ProtocolError::NonFinite {
                field: "bid_floor",
                offset: 0
            }
        );
        let mut nan = ctx.clone();
        nan.extra_numeric[i] = bad;
        assert!(
            matches!(refuse(&nan, &mut out), ProtocolError::NonFinite { offset, .. } if offset == 16 + 8 * i)
        );
    }
}

#[test]
fn decision_writer_refuses_what_cannot_be_encoded_and_rolls_back() {
    let good = decision_with(&[offer(1, 0.5)], &[]);
    let mut out = vec![7u8];
    {
        let mut w = DecisionWriter::new(&mut out, 1);
        w.push("1", ImpOutcome::Decided(&good)).unwrap();
        assert_eq!(w.len(), 1);
        // An unsettled decision: no offers and no cause.
        let unsettled = Decision::default();
        let err = w.push("2", ImpOutcome::Decided(&unsettled)).unwrap_err();
        assert!(matches!(
            err,
            ProtocolError::InvalidValue {
                field: "no_offer",
                ..
            }
        ));
        // Offers and a cause.
        let mut both = good;
        both.no_bid = Some(NoBidCause::Country);
        assert!(w.push("2", ImpOutcome::Decided(&both)).is_err());
        // A non-finite factor.
        let mut nan = offer(3, 0.5);
        nan.factors[2] = f32::NAN;
        let nan = decision_with(&[nan], &[]);
        let err = w.push("2", ImpOutcome::Decided(&nan)).unwrap_err();
        assert!(matches!(
            err,
            ProtocolError::NonFinite {
                field: "offer.factors",
                ..
            }
        ));
        // An id over the limit.
        let long = "i".repeat(IMP_ID_BYTES_MAX + 1);
        assert!(matches!(
            w.push(&long, ImpOutcome::Decided(&good)),
            Err(ProtocolError::TooLong {
                field: "imp_id",
                ..
            })
        ));
        assert_eq!(w.len(), 1, "refused impressions are not written");
        let n = w.finish().unwrap();
        assert_eq!(n, out.len() - 1);
    }
    let back = decode_decision(only_payload(&out[1..], MessageType::Decision, 1)).unwrap();
    assert_eq!(
        back.imps,
        [ImpDecision::new("1", ImpOutcome::Decided(&good))]
    );

    // No impression: refused, and the frame removed.
    let mut out = vec![7u8];
    let err = DecisionWriter::new(&mut out, 1).finish().unwrap_err();
    assert!(matches!(
        err,
        ProtocolError::InvalidValue {
            field: "imp_count",
            ..
        }
    ));
    assert_eq!(out, [7]);
    // Dropped unfinished: the frame is removed.
    {
        let mut w = DecisionWriter::new(&mut out, 1);
        w.push("1", ImpOutcome::Skipped(SkipReason::Currency))
            .unwrap();
    }
    assert_eq!(out, [7]);
    // The 65th impression is refused; 64 fit.
    let mut w = DecisionWriter::new(&mut out, 1);
    for i in 0..IMPS_MAX {
        w.push(&format!("{i:0>256}"), ImpOutcome::Decided(&good))
            .unwrap();
    }
    assert!(matches!(
        w.push("x", ImpOutcome::Decided(&good)),
        Err(ProtocolError::TooLong { field: "imps", .. })
    ));
    w.finish().unwrap();
    let back = decode_decision(only_payload(&out[1..], MessageType::Decision, 1)).unwrap();
    assert_eq!(back.imps.len(), IMPS_MAX);
}

// ---------------------------------------------------------------------------
// Malformed input
// ---------------------------------------------------------------------------

#[test]
fn bad_magic_is_fatal_as_soon_as_a_wrong_byte_arrives() {
    let http = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let err = fatal(http);
    assert_eq!(
        err,
        ProtocolError::BadMagic {
            offset: 0,
            found: b'G',
            expected: b'C'
        }
    );
    assert_eq!(err.code(), ErrorCode::MalformedFrame);
    // Even with one byte, and even past a good prefix.
    assert!(matches!(
        fatal(b"X"),
        ProtocolError::BadMagic { offset: 0, .. }
    ));
    assert!(matches!(
        fatal(b"CXQ"),
        ProtocolError::BadMagic { offset: 2, .. }
    ));
    assert_eq!(
        decode_frame(b"CXW"),
        Decoded::NeedMore {
            at_least: HEADER_BYTES
        }
    );
    let mut ping = Vec::new();
    encode_ping(&mut ping, 1, 2);
    ping[3] = b'Q';
    assert!(matches!(
        fatal(&ping),
        ProtocolError::BadMagic {
            offset: 3,
            found: b'Q',
            ..
        }
    ));
    match decode_frame(&ping) {
        Decoded::Invalid { request_id, .. } => assert_eq!(request_id, None),
        other => panic!("{other:?}"),
    }
}

#[test]
fn oversize_length_is_fatal_before_the_payload_arrives() {
    let mut header = raw_frame(1, 0x11, 42, &[]);
    header[8..12].copy_from_slice(&((PAYLOAD_BYTES_MAX + 1) as u32).to_le_bytes());
    let err = fatal(&header);
    assert_eq!(
        err,
        ProtocolError::FrameTooLarge {
            bytes: PAYLOAD_BYTES_MAX + 1,
            limit: PAYLOAD_BYTES_MAX
        }
    );
    assert_eq!(err.code(), ErrorCode::FrameTooLarge);
    match decode_frame(&header) {
        Decoded::Invalid { request_id, .. } => assert_eq!(request_id, Some(42)),
        other => panic!("{other:?}"),
    }
    header[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(fatal(&header).is_fatal());
    // Exactly the limit is fine: wait for it.
    header[8..12].copy_from_slice(&(PAYLOAD_BYTES_MAX as u32).to_le_bytes());
    assert_eq!(
        decode_frame(&header),
        Decoded::NeedMore {
            at_least: FRAME_BYTES_MAX
        }
    );
}

#[test]
fn truncated_headers_and_payloads_need_more() {
    let mut ping = Vec::new();
    encode_ping(&mut ping, 1, 2);
    assert_eq!(
        decode_frame(&[]),
        Decoded::NeedMore {
            at_least: HEADER_BYTES
        }
    );
    for n in 1..HEADER_BYTES {
        assert_eq!(
            decode_frame(&ping[..n]),
            Decoded::NeedMore {
                at_least: HEADER_BYTES
            }
        );
    }
    for n in HEADER_BYTES..ping.len() {
        assert_eq!(
            decode_frame(&ping[..n]),
            Decoded::NeedMore {
                at_least: ping.len()
            }
        );
    }
    assert!(matches!(
        decode_frame(&ping),
        Decoded::Frame { consumed: 32, .. }
    ));
}

#[test]
fn header_errors_are_recoverable_and_skip_exactly_one_frame() {
    let ping = |version: u8, ty: u8| raw_frame(version, ty, 11, &5u64.to_le_bytes());
    let err = recoverable(&ping(2, 0x03));
    assert_eq!(
        err,
        ProtocolError::UnsupportedVersion {
            version: 2,
            min: 1,
            max: 1
        }
    );
    assert_eq!(err.code(), ErrorCode::UnsupportedVersion);
    assert!(matches!(
        recoverable(&ping(0, 0x03)),
        ProtocolError::UnsupportedVersion { version: 0, .. }
    ));
    let err = recoverable(&ping(1, 0x7f));
    assert_eq!(err, ProtocolError::UnknownMessageType { code: 0x7f });
    assert_eq!(err.code(), ErrorCode::UnknownMessageType);
    assert!(matches!(
        recoverable(&ping(1, 0x00)),
        ProtocolError::UnknownMessageType { code: 0 }
    ));

    let mut flags = ping(1, 0x03);
    flags[6] = 1;
    let err = recoverable(&flags);
    assert!(matches!(
        err,
        ProtocolError::BadHeaderField {
            field: "flags",
            offset: 6,
            value: 1
        }
    ));
    assert_eq!(err.code(), ErrorCode::MalformedFrame);
    let mut reserved = ping(1, 0x03);
    reserved[15] = 0x80;
    assert!(matches!(
        recoverable(&reserved),
        ProtocolError::BadHeaderField {
            field: "reserved",
            offset: 12,
            ..
        }
    ));

    // The error waits for the whole frame, so it can be skipped; then the
    // next frame decodes.
    let bad = ping(1, 0x7f);
    assert_eq!(decode_frame(&bad[..30]), Decoded::NeedMore { at_least: 32 });
    let mut stream = bad.clone();
    stream.extend_from_slice(&ping(1, 0x03));
    let got = receive(&stream, |_| 5);
    assert_eq!(
        got.skipped,
        [ProtocolError::UnknownMessageType { code: 0x7f }]
    );
    assert_eq!(got.frames.len(), 1);
    assert!(got.frames[0].3);
    match decode_frame(&stream) {
        Decoded::Invalid {
            consumed,
            request_id,
            ..
        } => {
            assert_eq!((consumed, request_id), (32, Some(11)));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn fixed_size_payloads_of_the_wrong_length_are_refused() {
    let err = decode_ping(&[0; 7]).unwrap_err();
    assert_eq!(
        err,
        ProtocolError::WrongPayloadLength {
            message: "ping",
            expected: 8,
            found: 7
        }
    );
    assert!(decode_pong(&[0; 9]).is_err());
    assert!(decode_hello(&[1, 1, 0, 0, 0, 0, 0]).is_err());
    assert!(decode_hello_ack(&[0; 17]).is_err());
}

#[test]
fn hello_fields_are_checked() {
    assert!(matches!(
        decode_hello(&[0, 1, 0, 0, 0, 0, 0, 0]),
        Err(ProtocolError::InvalidValue {
            field: "min_version",
            ..
        })
    ));
    assert!(matches!(
        decode_hello(&[3, 2, 0, 0, 0, 0, 0, 0]),
        Err(ProtocolError::InvalidValue {
            field: "max_version",
            ..
        })
    ));
    assert!(matches!(
        decode_hello(&[1, 1, 0, 0, 0, 9, 0, 0]),
        Err(ProtocolError::InvalidValue {
            field: "reserved",
            offset: 5,
            ..
        })
    ));
    let mut ack = Vec::new();
    encode_hello_ack(&mut ack, 1, HelloAck::ours(1));
    let mut payload = ack[HEADER_BYTES..].to_vec();
    payload[0] = 0;
    assert!(matches!(
        decode_hello_ack(&payload),
        Err(ProtocolError::InvalidValue {
            field: "version",
            ..
        })
    ));
    let mut payload = ack[HEADER_BYTES..].to_vec();
    payload[4..8].copy_from_slice(&10u32.to_le_bytes());
    assert!(matches!(
        decode_hello_ack(&payload),
        Err(ProtocolError::InvalidValue {
            field: "frame_bytes_max",
            ..
        })
    ));
}

#[test]
fn lying_string_lengths_and_list_counts_are_refused() {
    let empty = RequestContext::default();
    // Default context: 64-byte fixed part, five empty strings (offsets 64,
    // 66, 68, 70, 72), three empty lists (counts at 74, 76, 78).
    assert_eq!(encoded_context(&empty).len(), HEADER_BYTES + 80);

    let err = context_payload_error(&empty, |p| p[64..66].copy_from_slice(&200u16.to_le_bytes()));
    assert!(
        matches!(
            err,
            ProtocolError::Truncated {
                field: "user_id",
                offset: 66,
                needed: 200,
                available: 14
            }
        ),
        "{err}"
    );
    let err = context_payload_error(&empty, |p| p[70..72].copy_from_slice(&300u16.to_le_bytes()));
    assert_eq!(
        err,
        ProtocolError::TooLong {
            field: "site_id",
            offset: 70,
            len: 300,
            limit: 256
        }
    );
    let err = context_payload_error(&empty, |p| p[74..76].copy_from_slice(&33u16.to_le_bytes()));
    assert_eq!(
        err,
        ProtocolError::TooLong {
            field: "user_segments",
            offset: 74,
            len: 33,
            limit: 32
        }
    );
    let err = context_payload_error(&empty, |p| {
        p[76..78].copy_from_slice(&u16::MAX.to_le_bytes())
    });
    assert!(matches!(
        err,
        ProtocolError::TooLong {
            field: "categories",
            ..
        }
    ));
    // A count within the limit whose items are not there.
    let err = context_payload_error(&empty, |p| p[78..80].copy_from_slice(&3u16.to_le_bytes()));
    assert!(
        matches!(
            err,
            ProtocolError::Truncated {
                field: "extra",
                offset: 80,
                ..
            }
        ),
        "{err}"
    );
    // The payload cut anywhere.
    let full = encoded_context(&full_context());
    for cut in 0..full.len() - HEADER_BYTES {
        let err = context_payload_error(&full_context(), |p| p.truncate(cut));
        assert!(
            matches!(err, ProtocolError::Truncated { .. }),
            "cut at {cut}: {err}"
        );
    }
    let err = context_payload_error(&empty, |p| p.extend_from_slice(&[0, 0]));
    assert_eq!(
        err,
        ProtocolError::TrailingBytes {
            offset: 80,
            count: 2
        }
    );
}

#[test]
fn invalid_utf8_nonfinite_floats_and_bad_codes_are_refused() {
    let ctx = RequestContext {
        country: "USA".into(),
        ..RequestContext::default()
    };
    // country: length at 66, bytes at 68..71.
    let err = context_payload_error(&ctx, |p| p[69] = 0xff);
    assert_eq!(
        err,
        ProtocolError::InvalidUtf8 {
            field: "country",
            offset: 69
        }
    );
    let err = context_payload_error(&ctx, |p| p[0..8].copy_from_slice(&f64::NAN.to_le_bytes()));
    assert_eq!(
        err,
        ProtocolError::NonFinite {
            field: "bid_floor",
            offset: 0
        }
    );
    let err = context_payload_error(&ctx, |p| {
        p[40..48].copy_from_slice(&f64::INFINITY.to_le_bytes())
    });
    assert_eq!(
        err,
        ProtocolError::NonFinite {
            field: "extra_numeric[3]",
            offset: 40
        }
    );
    let err = context_payload_error(&ctx, |p| p[60] = 2);
    assert!(matches!(
        err,
        ProtocolError::InvalidValue {
            field: "is_app",
            offset: 60,
            value: 2,
            ..
        }
    ));
    let err = context_payload_error(&ctx, |p| p[61] = 0x04);
    assert!(matches!(
        err,
        ProtocolError::InvalidValue {
            field: "flags",
            offset: 61,
            ..
        }
    ));
    let err = context_payload_error(&ctx, |p| p[63] = 1);
    assert!(matches!(
        err,
        ProtocolError::InvalidValue {
            field: "reserved",
            offset: 63,
            ..
        }
    ));

    // Enumeration codes outside their lists read as unknown, as OpenRTB integers do.
    let mut payload = encoded_context(&ctx)[HEADER_BYTES..].to_vec();
    payload[56..60].copy_from_slice(&[200, 99, 8, 255]);
    let (back, _) = decode_score_context(&payload).unwrap();
    assert_eq!(back.device_type, DeviceType::Unknown);
    assert_eq!(back.os, Os::Other);
    assert_eq!(back.connection_type, ConnectionType::Unknown);
    assert_eq!(back.ad_position, AdPosition::Unknown);

    // Error frames: an unknown code, a lying length, bad UTF-8.
    let mut e = Vec::new();
    encode_error(&mut e, 1, ErrorCode::Timeout, "late");
    let mut p = e[HEADER_BYTES..].to_vec();
    p[0] = 99;
    assert!(matches!(
        decode_error(&p),
        Err(ProtocolError::InvalidValue { field: "code", .. })
    ));
    let mut p = e[HEADER_BYTES..].to_vec();
    p[2] = 10;
    assert!(matches!(
        decode_error(&p),
        Err(ProtocolError::Truncated {
            field: "message",
            ..
        })
    ));
    let mut p = e[HEADER_BYTES..].to_vec();
    p[2] = 2;
    assert!(matches!(
        decode_error(&p),
        Err(ProtocolError::TrailingBytes {
            offset: 6,
            count: 2
        })
    ));
    let mut p = e[HEADER_BYTES..].to_vec();
    p[5] = 0xc3;
    assert!(matches!(
        decode_error(&p),
        Err(ProtocolError::InvalidUtf8 {
            field: "message",
            offset: 5
        })
    ));
    let mut p = e[HEADER_BYTES..].to_vec();
    p[2..4].copy_from_slice(&2000u16.to_le_bytes());
    assert!(matches!(
        decode_error(&p),
        Err(ProtocolError::TooLong {
            field: "message",
            ..
        })
    ));

    // OpenRTB: unknown flag bits, a non-zero reserved byte, a short payload.
    assert!(decode_score_openrtb(&[8, 0, 0, 0]).is_err());
    assert!(decode_score_openrtb(&[0x83, 0, 0, 0]).is_err());
    assert!(decode_score_openrtb(&[0, 0, 1, 0, b'{']).is_err());
    assert!(matches!(
        decode_score_openrtb(&[0, 0]),
        Err(ProtocolError::Truncated { .. })
    ));
    let simulate = OpenRtbFlags {
        simulate: true,
        ..OpenRtbFlags::default()
    };
    assert_eq!(
        decode_score_openrtb(&[1, 0, 0, 0]).unwrap(),
        (&[][..], simulate)
    );
    let both = OpenRtbFlags {
        simulate: true,
        bid_response: true,
        decision_ids: false,
    };
    assert_eq!(
        decode_score_openrtb(&[3, 0, 0, 0]).unwrap(),
        (&[][..], both)
    );
    let all = OpenRtbFlags {
        decision_ids: true,
        ..both
    };
    assert_eq!(decode_score_openrtb(&[7, 0, 0, 0]).unwrap(), (&[][..], all));
}

#[test]
fn bid_responses_round_trip_and_refuse_what_breaks_their_rules() {
    let json = r#"{"response":{"id":"r","nbr":2},"decisions":[]}"#;
    let mut out = Vec::new();
    encode_bid_response(&mut out, 9, json).unwrap();
    let payload = only_payload(&out, MessageType::BidResponse, 9);
    assert_eq!(decode_bid_response(payload).unwrap(), json);
    assert!(matches!(
        decode_message(MessageType::BidResponse, payload),
        Ok(cx_wire::protocol::Message::BidResponse(back)) if back == json
    ));
    assert!(matches!(
        decode_bid_response(b"\xff{}"),
        Err(ProtocolError::InvalidUtf8 { .. })
    ));
    let big = "x".repeat(limits::BID_RESPONSE_BYTES_MAX + 1);
    let before = out.len();
    assert!(encode_bid_response(&mut out, 1, &big).is_err());
    assert_eq!(out.len(), before, "a refused frame leaves nothing behind");
    let mut flagged = Vec::new();
    let flags = OpenRtbFlags {
        bid_response: true,
        ..OpenRtbFlags::default()
    };
    encode_score_openrtb_with(&mut flagged, 3, b"{}", flags).unwrap();
    let payload = only_payload(&flagged, MessageType::ScoreOpenRtb, 3);
    assert_eq!(decode_score_openrtb(payload).unwrap(), (&b"{}"[..], flags));
}

#[test]
fn malformed_decisions_are_refused() {
    let d = decision_with(&[offer(1, 0.5), offer(2, 0.25)], &[]);
    let mut out = Vec::new();
    encode_decision(&mut out, 1, &[("ab", ImpOutcome::Decided(&d))]).unwrap();
    let good = out[HEADER_BYTES..].to_vec();
    // Layout: count at 0, imp at 4 (skipped 4, no_offer 5, source 6, flags 7,
    // offer_count 8, reserved 9, id_len 10..12), id at 12..14, offers from 14.
    assert_eq!(good.len(), 4 + 8 + 2 + 2 * 48);
    let refused = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut p = good.clone();
        edit(&mut p);
        let err = decode_decision(&p).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidPayload);
        err
    };
    assert!(matches!(
        refused(&|p| p[0..2].copy_from_slice(&0u16.to_le_bytes())),
        ProtocolError::InvalidValue {
            field: "imp_count",
            ..
        }
    ));
    assert!(matches!(
        refused(&|p| p[0..2].copy_from_slice(&65u16.to_le_bytes())),
        ProtocolError::TooLong {
            field: "imp_count",
            ..
        }
    ));
    assert!(matches!(
        refused(&|p| p[0..2].copy_from_slice(&60u16.to_le_bytes())),
        ProtocolError::Truncated { field: "imps", .. }
    ));
    assert!(matches!(
        refused(&|p| p[0..2].copy_from_slice(&2u16.to_le_bytes())),
        ProtocolError::Truncated { .. }
    ));
    assert!(matches!(
        refused(&|p| p[2] = 1),
        ProtocolError::InvalidValue {
            field: "reserved",
            offset: 2,
            ..
        }
    ));
    assert!(matches!(
        refused(&|p| p[4] = 9),
        ProtocolError::InvalidValue {
            field: "skipped",
            ..
        }
    ));
    assert!(matches!(
        refused(&|p| p[4] = 1),
        ProtocolError::InvalidValue {
            field: "offer_count",
            ..
        }
    ));
    assert!(matches!(
        refused(&|p| p[5] = 11),
        ProtocolError::InvalidValue {
            field: "no_offer",
            ..
        }
    ));
    assert!(matches!(
        refused(&|p| p[5] = 3),
        ProtocolError::InvalidValue {
            field: "no_offer",
            ..
        }
    ));
    assert!(matches!(
        refused(&|p| p[6] = 5),
        ProtocolError::InvalidValue {
            field: "source",
            ..
        }
    ));
    assert!(matches!(
        refused(&|p| p[7] = 4),
        ProtocolError::InvalidValue { field: "flags", .. }
    ));
    assert!(matches!(
        refused(&|p| p[8] = 9),
        ProtocolError::TooLong {
            field: "offer_count",
            len: 9,
            limit: 8,
            ..
        }
    ));
    assert!(matches!(
        refused(&|p| p[8] = 3),
        ProtocolError::Truncated {
            field: "offers",
            ..
        }
    ));
    assert!(matches!(
        refused(&|p| p[8] = 1),
        ProtocolError::TrailingBytes { .. }
    ));
    assert!(matches!(
        refused(&|p| p[9] = 1),
        ProtocolError::InvalidValue {
            field: "reserved",
            ..
        }
    ));
    assert!(matches!(
        refused(&|p| p[10..12].copy_from_slice(&257u16.to_le_bytes())),
        ProtocolError::TooLong {
            field: "imp_id",
            ..
        }
    ));
    assert!(matches!(
        refused(&|p| p[10..12].copy_from_slice(&200u16.to_le_bytes())),
        ProtocolError::Truncated {
            field: "imp_id",
            ..
        }
    ));
    assert!(matches!(
        refused(&|p| p[12] = 0xfe),
        ProtocolError::InvalidUtf8 {
            field: "imp_id",
            offset: 12
        }
    ));
    // Offer 0 at 14: score at 14+16.
    assert!(matches!(
        refused(&|p| p[30..34].copy_from_slice(&f32::NAN.to_le_bytes())),
        ProtocolError::NonFinite {
            field: "offer.score",
            offset: 30
        }
    ));
    assert!(matches!(
        refused(&|p| p[22..30].copy_from_slice(&f64::INFINITY.to_le_bytes())),
        ProtocolError::NonFinite {
            field: "offer.bid_cpm",
            offset: 22
        }
    ));
    assert!(matches!(
        refused(&|p| p.push(0)),
        ProtocolError::TrailingBytes { .. }
    ));
    assert!(matches!(
        refused(&|p| {
            p.pop();
        }),
        ProtocolError::Truncated {
            field: "offers",
            ..
        }
    ));

    // A skipped impression with a cause or a source is refused too.
    let mut out = Vec::new();
    encode_decision(
        &mut out,
        1,
        &[("x", ImpOutcome::Skipped(SkipReason::Currency))],
    )
    .unwrap();
    let mut p = out[HEADER_BYTES..].to_vec();
    p[6] = 2;
    assert!(matches!(
        decode_decision(&p),
        Err(ProtocolError::InvalidValue {
            field: "skipped",
            ..
        })
    ));
}

#[test]
fn payload_errors_for_every_type_are_recoverable_invalid_payload() {
    for ty in MessageType::ALL {
        for payload in [&[][..], &[0xff; 3][..], &[0xff; 100][..]] {
            if let Err(err) = decode_message(ty, payload) {
                assert!(!err.is_fatal(), "{ty}: {err}");
                assert_eq!(err.code(), ErrorCode::InvalidPayload, "{ty}: {err}");
            }
        }
    }
    // The crate error wraps it, with the field in the message.
    let err: cx_wire::Error = decode_ping(&[]).unwrap_err().into();
    assert!(err.to_string().contains("ping payload is 0 bytes"), "{err}");
}

// ---------------------------------------------------------------------------
// Seed corpus
// ---------------------------------------------------------------------------

const CORPUS_DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/protocol_corpus"
);

/// The seed corpus: file name -> bytes. The name's prefix says what a
/// receiver must make of the file: `valid-` (every frame and payload
/// decodes, nothing left over), `recoverable-` (framing holds; at least one
/// frame is refused recoverably, by header or payload), `fatal-` (a fatal
/// error), `truncated-` (valid so far, the last frame incomplete).
fn corpus() -> BTreeMap<&'static str, Vec<u8>> {
    let mut c = BTreeMap::new();
    let mut put = |name: &'static str, bytes: Vec<u8>| {
        assert!(c.insert(name, bytes).is_none(), "{name} twice");
    };
    let enc = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut out = Vec::new();
        f(&mut out);
        out
    };

    let hello = enc(&|o| encode_hello(o, 1, Hello::ours()));
    let ack = enc(&|o| encode_hello_ack(o, 1, HelloAck::ours(VERSION)));
    let ping = enc(&|o| encode_ping(o, 2, 0x0123_4567_89ab_cdef));
    let full = enc(&|o| encode_score_context(o, 3, &full_context(), false).unwrap());
    let offers: Vec<ChosenOffer> = (0..TOP_K_MAX as u64)
        .map(|i| offer(100 + i, 1.0 / (i + 1) as f32))
        .collect();
    let top8 = decision_with(&offers, &[]);
    let no_offer = decision_with(&[], &[NoBidCause::FrequencyCapped]);
    put("valid-hello.bin", hello.clone());
    put("valid-hello_ack.bin", ack.clone());
    put("valid-ping.bin", ping.clone());
    put(
        "valid-pong.bin",
        enc(&|o| encode_pong(o, 2, 0x0123_4567_89ab_cdef)),
    );
    put(
        "valid-score_context_empty.bin",
        enc(&|o| encode_score_context(o, 3, &RequestContext::default(), true).unwrap()),
    );
    put("valid-score_context_full.bin", full.clone());
    put(
        "valid-score_context_unicode.bin",
        enc(&|o| {
            let ctx = RequestContext {
                user_id: "ユーザー🙂".into(),
                country: "DEU".into(),
                region: "BY".into(),
                domain: "bücher.example".into(),
                user_segments: vec!["é".into(), String::new(), "∑".into()],
                ..RequestContext::default()
            };
            encode_score_context(o, 4, &ctx, false).unwrap()
        }),
    );
    put(
        "valid-score_context_at_limits.bin",
        enc(&|o| {
            let ctx = RequestContext {
                user_id: "u".repeat(STRING_BYTES_MAX),
                user_segments: vec!["s".repeat(STRING_BYTES_MAX); LIST_ITEMS_MAX],
                categories: vec!["IAB1".into(); LIST_ITEMS_MAX],
                extra: vec!["k=v".into(); LIST_ITEMS_MAX],
                ..full_context()
            };
            encode_score_context(o, 5, &ctx, false).unwrap()
        }),
    );
    let openrtb = br#"{"id":"req-1","imp":[{"id":"1","bidfloor":0.5,"banner":{"w":320,"h":50}}],"app":{"id":"app-9","bundle":"com.example.game"},"device":{"devicetype":4,"os":"Android","geo":{"country":"USA"}}}"#;
    put(
        "valid-score_openrtb.bin",
        enc(&|o| encode_score_openrtb(o, 6, openrtb, false).unwrap()),
    );
    put(
        "valid-decision_top8.bin",
        enc(&|o| {
            encode_context_decision(o, 3, &top8).unwrap();
        }),
    );
    put(
        "valid-decision_no_offer.bin",
        enc(&|o| {
            encode_context_decision(o, 3, &no_offer).unwrap();
        }),
    );
    put(
        "valid-decision_openrtb_imps.bin",
        enc(&|o| {
            encode_decision(
                o,
                6,
                &[
                    ("1", ImpOutcome::Decided(&top8)),
                    ("2", ImpOutcome::Decided(&no_offer)),
                    ("3", ImpOutcome::Skipped(SkipReason::Currency)),
                ],
            )
            .unwrap();
        }),
    );
    put(
        "valid-error.bin",
        enc(&|o| {
            encode_error(
                o,
                7,
                ErrorCode::InvalidPayload,
                "`country` is not valid UTF-8",
            )
        }),
    );
    put(
        "valid-pipelined.bin",
        [hello.clone(), ping.clone(), full.clone(), ping.clone()].concat(),
    );

    let with = |base: &[u8], edit: &dyn Fn(&mut Vec<u8>)| {
        let mut b = base.to_vec();
        edit(&mut b);
        b
    };
    let ctx_empty =
        enc(&|o| encode_score_context(o, 8, &RequestContext::default(), false).unwrap());
    let p = HEADER_BYTES; // payload offset in the frame
    put(
        "recoverable-unsupported_version.bin",
        with(&ping, &|b| b[4] = 2),
    );
    put(
        "recoverable-unknown_type_then_ping.bin",
        [with(&ping, &|b| b[5] = 0x7f), ping.clone()].concat(),
    );
    put("recoverable-header_flags.bin", with(&ping, &|b| b[6] = 1));
    put(
        "recoverable-header_reserved.bin",
        with(&ping, &|b| b[13] = 1),
    );
    put(
        "recoverable-ping_wrong_length.bin",
        raw_frame(1, 0x03, 2, &[0; 7]),
    );
    put(
        "recoverable-string_past_end.bin",
        with(&ctx_empty, &|b| b[p + 64] = 40),
    );
    put(
        "recoverable-string_over_limit.bin",
        with(&ctx_empty, &|b| b[p + 65] = 2),
    );
    put(
        "recoverable-list_count_over_limit.bin",
        with(&ctx_empty, &|b| b[p + 74] = 33),
    );
    put(
        "recoverable-list_count_lies.bin",
        with(&ctx_empty, &|b| b[p + 76] = 5),
    );
    put(
        "recoverable-invalid_utf8.bin",
        with(&full, &|b| b[p + 66] = 0xc0),
    );
    put(
        "recoverable-nonfinite_floor.bin",
        with(&full, &|b| {
            b[p..p + 8].copy_from_slice(&f64::NAN.to_le_bytes())
        }),
    );
    put("recoverable-is_app_2.bin", with(&full, &|b| b[p + 60] = 2));
    put("recoverable-trailing_bytes.bin", {
        let mut payload = ctx_empty[p..].to_vec();
        payload.push(0);
        raw_frame(1, 0x10, 8, &payload)
    });
    put("recoverable-decision_too_many_offers.bin", {
        let d = enc(&|o| {
            encode_context_decision(o, 3, &top8).unwrap();
        });
        with(&d, &|b| b[p + 8] = 9)
    });
    put("recoverable-decision_cause_and_offers.bin", {
        let d = enc(&|o| {
            encode_context_decision(o, 3, &top8).unwrap();
        });
        with(&d, &|b| b[p + 5] = 1)
    });
    put(
        "recoverable-error_unknown_code.bin",
        with(
            &enc(&|o| encode_error(o, 7, ErrorCode::Timeout, "")),
            &|b| b[p] = 0xee,
        ),
    );
    put(
        "recoverable-hello_min_above_max.bin",
        raw_frame(1, 0x01, 1, &[3, 2, 0, 0, 0, 0, 0, 0]),
    );
    put(
        "recoverable-openrtb_flags.bin",
        raw_frame(1, 0x11, 6, b"\x80\0\0\0{}"),
    );
    let events = [
        FeedbackEvent {
            event_id: "e1",
            offer_id: 1003,
            timestamp_ns: 1_704_261_600_000_000_000,
            ..FeedbackEvent::new(FeedbackKind::Click, "0-0-lr2k9kw0-1a")
        },
        FeedbackEvent {
            amount: 1.25,
            ..FeedbackEvent::new(FeedbackKind::Win, "0-0-lr2k9kw0-1b")
        },
    ];
    let feedback = enc(&|o| encode_feedback(o, 7, &events).unwrap());
    put("valid-feedback.bin", feedback.clone());
    put(
        "valid-feedback_ack.bin",
        enc(&|o| encode_feedback_ack(o, 7, &FeedbackAck::new(1, 0, &[0, 0, 0, 1]).unwrap())),
    );
    put(
        "valid-decision_with_id.bin",
        enc(&|o| {
            let mut w = DecisionWriter::new(o, 8);
            w.push_with_id("1", ImpOutcome::Decided(&top8), Some("0-0-lr2k9kw0-1c"))
                .unwrap();
            w.finish().unwrap();
        }),
    );
    put(
        "recoverable-feedback_kind.bin",
        with(&feedback, &|b| b[HEADER_BYTES + 4] = 9),
    );
    let items = [
        FeatureItem {
            user_id: "u1",
            feature: "clicks_30d",
            value: PutValue::I64(3),
            time_ns: 1_704_261_600_000_000_000,
        },
        FeatureItem {
            user_id: "u1",
            feature: "age_band",
            value: PutValue::Category("25-34"),
            time_ns: 0,
        },
        FeatureItem {
            user_id: "u2",
            feature: "churn_risk",
            value: PutValue::F32(f32::NAN),
            time_ns: 0,
        },
    ];
    let put_features = enc(&|o| encode_put_features(o, 9, &items).unwrap());
    put("valid-put_features.bin", put_features.clone());
    let ack = PutFeaturesAck {
        written: 2,
        outdated: 0,
        results: vec![0, 0, 5],
    };
    put(
        "valid-put_features_ack.bin",
        enc(&|o| encode_put_features_ack(o, 9, &ack).unwrap()),
    );
    put(
        "recoverable-put_features_value_type.bin",
        with(&put_features, &|b| b[HEADER_BYTES + 4] = 6),
    );

    put("fatal-bad_magic.bin", with(&ping, &|b| b[0] = b'Z'));
    put(
        "fatal-http_request.bin",
        b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n".to_vec(),
    );
    put(
        "fatal-oversize_length.bin",
        with(&ping, &|b| {
            b[8..12].copy_from_slice(&u32::MAX.to_le_bytes())
        }),
    );
    put(
        "fatal-after_valid_frames.bin",
        [hello.clone(), ping.clone(), b"garbage".to_vec()].concat(),
    );

    put("truncated-header.bin", ping[..10].to_vec());
    put(
        "truncated-payload.bin",
        [ping.clone(), full[..full.len() - 3].to_vec()].concat(),
    );
    c
}

#[test]
fn the_committed_corpus_is_the_generated_one() {
    let want = corpus();
    if std::env::var_os("CX_WRITE_PROTOCOL_CORPUS").is_some() {
        std::fs::create_dir_all(CORPUS_DIR).unwrap();
        for entry in std::fs::read_dir(CORPUS_DIR).unwrap() {
            std::fs::remove_file(entry.unwrap().path()).unwrap();
        }
        for (name, bytes) in &want {
            std::fs::write(PathBuf::from(CORPUS_DIR).join(name), bytes).unwrap();
        }
    }
    let mut have = BTreeMap::new();
    for entry in std::fs::read_dir(CORPUS_DIR).expect("the corpus directory exists") {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        have.insert(name, std::fs::read(&path).unwrap());
    }
    let names: Vec<&str> = have.keys().map(String::as_str).collect();
    let want_names: Vec<&str> = want.keys().copied().collect();
    assert_eq!(
        names, want_names,
        "corpus files differ from the generator; run with CX_WRITE_PROTOCOL_CORPUS=1 to rewrite them"
    );
    for (name, bytes) in &want {
        assert_eq!(
            &have[*name], bytes,
            "{name} differs; rewrite with CX_WRITE_PROTOCOL_CORPUS=1"
        );
    }
}

#[test]
fn every_corpus_file_decodes_as_its_name_says() {
    let mut seen = 0;
    for entry in std::fs::read_dir(CORPUS_DIR).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(&path).unwrap();
        for chunk in [bytes.len().max(1), 1, 13] {
            let got = receive(&bytes, |_| chunk);
            let payload_errors = got.frames.iter().filter(|f| !f.3).count();
            let kind = name.split('-').next().unwrap();
            match kind {
                "valid" => {
                    assert!(
                        got.fatal.is_none() && got.skipped.is_empty(),
                        "{name}: {got:?}"
                    );
                    assert_eq!(payload_errors, 0, "{name}");
                    assert_eq!(got.leftover, 0, "{name}");
                    assert!(!got.frames.is_empty(), "{name}");
                }
                "recoverable" => {
                    assert!(got.fatal.is_none(), "{name}: {:?}", got.fatal);
                    assert!(
                        got.skipped.len() + payload_errors >= 1,
                        "{name}: nothing refused"
                    );
                    assert_eq!(got.leftover, 0, "{name}");
                }
                "fatal" => assert!(got.fatal.is_some(), "{name}"),
                "truncated" => {
                    assert!(got.fatal.is_none() && got.skipped.is_empty(), "{name}");
                    assert_eq!(payload_errors, 0, "{name}");
                    assert!(got.leftover > 0, "{name}");
                }
                other => panic!("{name}: unknown prefix {other}"),
            }
        }
        seen += 1;
    }
    assert!(seen >= 30, "the corpus has {seen} files");
}

// ---------------------------------------------------------------------------
// The worked examples of docs/PROTOCOL.md
// ---------------------------------------------------------------------------

const SPEC: &str = include_str!("../../../docs/PROTOCOL.md");

/// The bytes of the hex block after `<!-- example: NAME -->` in the spec.
/// Each line is hex byte pairs, then optionally `#` and a comment.
fn spec_example(name: &str) -> Vec<u8> {
    let marker = format!("<!-- example: {name} -->");
    let start = SPEC
        .find(&marker)
        .unwrap_or_else(|| panic!("no example {name} in PROTOCOL.md"));
    let rest = &SPEC[start + marker.len()..];
    let open = rest.find("```").unwrap();
    let body = &rest[open + 3..];
    let body = &body[body.find('\n').unwrap() + 1..];
    let body = &body[..body.find("```").unwrap()];
    let mut bytes = Vec::new();
    for line in body.lines() {
        let hex = line.split('#').next().unwrap();
        for token in hex.split_whitespace() {
            bytes.push(
                u8::from_str_radix(token, 16)
                    .unwrap_or_else(|_| panic!("{name}: bad hex {token:?}")),
            );
        }
    }
    bytes
}

fn example_context() -> RequestContext {
    RequestContext {
        user_id: "u1".into(),
        user_segments: vec!["s1".into()],
        device_type: DeviceType::Phone,
        os: Os::Android,
        connection_type: ConnectionType::Wifi,
        country: "USA".into(),
        region: "CA".into(),
        site_id: "app-9".into(),
        is_app: true,
        domain: "com.example".into(),
        categories: vec!["IAB1".into()],
        placement_width: 320,
        placement_height: 50,
        ad_position: AdPosition::AboveTheFold,
        bid_floor: 0.5,
        timestamp: 1_704_261_600,
        extra: vec![],
        extra_numeric: [0.0; EXTRA_NUMERIC_SLOTS],
    }
}

fn example_decision() -> Decision {
    let mut d = Decision::default();
    d.consider(
        ChosenOffer {
            offer_id: 1003,
            catalog_index: 2,
            score: 0.75,
            p_click: 0.25,
            bid_cpm: 1.25,
            factors: [0.0, -0.125, 0.0, 0.5, 0.25, 0.125],
            objectives: [0.5, 0.0, 0.0, 0.0, 0.0, 0.0],
        },
        TOP_K_MAX,
    );
    d.settle();
    d.source = ScoreSource::Model;
    d
}

#[test]
fn the_spec_examples_are_what_the_encoders_write() {
    let mut out = Vec::new();
    encode_hello(
        &mut out,
        1,
        Hello {
            min_version: 1,
            max_version: 1,
        },
    );
    assert_eq!(out, spec_example("hello"));
    out.clear();
    encode_hello_ack(&mut out, 1, HelloAck::ours(1));
    assert_eq!(out, spec_example("hello_ack"));
    out.clear();
    encode_score_context(&mut out, 2, &example_context(), false).unwrap();
    assert_eq!(out, spec_example("score_context"));
    let (ctx, _) = decode_score_context(only_payload(&out, MessageType::ScoreContext, 2)).unwrap();
    assert_eq!(ctx, example_context());
    out.clear();
    encode_context_decision(&mut out, 2, &example_decision()).unwrap();
    assert_eq!(out, spec_example("decision"));
    out.clear();
    encode_error(&mut out, 3, ErrorCode::TooManyInFlight, "limit 1024");
    assert_eq!(out, spec_example("error"));
}

// ---------------------------------------------------------------------------
// Allocation
// ---------------------------------------------------------------------------

#[test]
fn encoding_into_a_grown_buffer_and_decoding_frames_allocate_nothing() {
    let ctx = full_context();
    let d = decision_with(&[offer(1, 0.9), offer(2, 0.5)], &[]);
    let none = decision_with(&[], &[NoBidCause::Country]);
    let json = br#"{"id":"r","imp":[{"id":"1"}]}"#;
    let mut out = Vec::with_capacity(1 << 16);
    let mut reused = full_context(); // grown once, reused per request
    let mut frames = 0;
    let mut check = 0u64;
    let info = allocation_counter::measure(|| {
        for i in 0..100u64 {
            out.clear();
            encode_hello(&mut out, i, Hello::ours());
            encode_hello_ack(&mut out, i, HelloAck::ours(1));
            encode_ping(&mut out, i, i);
            encode_pong(&mut out, i, i);
            encode_score_context(&mut out, i, &ctx, i % 2 == 0).unwrap();
            encode_score_openrtb(&mut out, i, json, false).unwrap();
            encode_decision(
                &mut out,
                i,
                &[
                    ("1", ImpOutcome::Decided(&d)),
                    ("2", ImpOutcome::Decided(&none)),
                    ("3", ImpOutcome::Skipped(SkipReason::Currency)),
                ],
            )
            .unwrap();
            encode_error(&mut out, i, ErrorCode::Overloaded, "busy");
            let events = [FeedbackEvent::new(FeedbackKind::Click, "0-0-k2-1a")];
            encode_feedback(&mut out, i, &events).unwrap();
            encode_feedback_ack(&mut out, i, &FeedbackAck::new(1, 0, &[0, 0, 1]).unwrap());
            let mut buf = out.as_slice();
            while let Decoded::Frame {
                header,
                payload,
                consumed,
            } = decode_frame(buf)
            {
                frames += 1;
                check = check.wrapping_add(header.request_id);
                match header.message_type {
                    MessageType::ScoreContext => {
                        decode_score_context_view(payload)
                            .unwrap()
                            .write_into(&mut reused);
                    }
                    MessageType::ScoreOpenRtb => {
                        check += decode_score_openrtb(payload).unwrap().0.len() as u64
                    }
                    MessageType::Ping => check += decode_ping(payload).unwrap(),
                    MessageType::Pong => check += decode_pong(payload).unwrap(),
                    MessageType::Hello => {
                        check += u64::from(decode_hello(payload).unwrap().max_version)
                    }
                    MessageType::HelloAck => {
                        check += u64::from(decode_hello_ack(payload).unwrap().version)
                    }
                    MessageType::Error => {
                        check += decode_error(payload).unwrap().message.len() as u64
                    }
                    MessageType::BidResponse => {
                        check += decode_bid_response(payload).unwrap().len() as u64
                    }
                    MessageType::Feedback => {
                        for event in &decode_feedback(payload).unwrap() {
                            check += event.decision_id.len() as u64;
                        }
                    }
                    MessageType::FeedbackAck => {
                        check += u64::from(decode_feedback_ack(payload).unwrap().applied)
                    }
                    MessageType::PutFeatures => {
                        check += decode_put_features(payload).unwrap().len() as u64
                    }
                    MessageType::Decision | MessageType::PutFeaturesAck => {}
                }
                buf = &buf[consumed..];
            }
            assert!(buf.is_empty());
        }
    });
    assert_eq!(info.count_total, 0, "the codec allocated");
    assert_eq!(frames, 1000);
    assert!(check > 0);
    assert_eq!(reused, ctx);
}
