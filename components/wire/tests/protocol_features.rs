//! The `put_features` and `put_features_ack` messages: round trips
//! (proptest with random items), every bad field refused with its name,
//! mutated payloads never panic, the limits, and the worked examples of
//! `docs/PROTOCOL.md` byte for byte.

use cx_wire::protocol::limits::{
    FEATURE_LABEL_BYTES_MAX, FEATURE_NAME_BYTES_MAX, HEADER_BYTES, PUT_FEATURES_BYTES_MAX,
    PUT_FEATURES_ITEMS_MAX, STRING_BYTES_MAX,
};
use cx_wire::protocol::{
    decode_frame, decode_message, decode_put_features, decode_put_features_ack,
    encode_put_features, encode_put_features_ack, Decoded, FeatureItem, Message, MessageType,
    ProtocolError, PutFeaturesAck, PutValue, PUT_FEATURES_REFUSALS,
};
use proptest::prelude::*;

fn payload_of(buf: &[u8], kind: MessageType) -> &[u8] {
    let Decoded::Frame {
        header,
        payload,
        consumed,
    } = decode_frame(buf)
    else {
        panic!("one whole frame");
    };
    assert_eq!(header.message_type, kind);
    assert_eq!(consumed, buf.len());
    payload
}

fn encoded(items: &[FeatureItem<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_put_features(&mut out, 6, items).expect("encodes");
    out
}

fn item<'a>(user_id: &'a str, feature: &'a str, value: PutValue<'a>) -> FeatureItem<'a> {
    FeatureItem {
        user_id,
        feature,
        value,
        time_ns: 0,
    }
}

fn refusal(items: &[FeatureItem<'_>], edit: impl FnOnce(&mut Vec<u8>)) -> ProtocolError {
    let frame = encoded(items);
    let mut payload = frame[HEADER_BYTES..].to_vec();
    edit(&mut payload);
    decode_put_features(&payload).expect_err("refused")
}

fn field(e: &ProtocolError) -> &'static str {
    match e {
        ProtocolError::Truncated { field, .. }
        | ProtocolError::TooLong { field, .. }
        | ProtocolError::InvalidUtf8 { field, .. }
        | ProtocolError::NonFinite { field, .. }
        | ProtocolError::InvalidValue { field, .. } => field,
        ProtocolError::TrailingBytes { .. } => "trailing",
        other => panic!("not a payload error: {other}"),
    }
}

fn text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..=max / 4).prop_map(move |cs| {
        let mut s = String::new();
        for c in cs {
            if s.len() + c.len_utf8() <= max {
                s.push(c);
            }
        }
        s
    })
}

#[derive(Clone, Debug)]
enum OwnedValue {
    F32(f32),
    I64(i64),
    Bool(bool),
    Timestamp(i64),
    Category(String),
}

type OwnedItem = (String, String, OwnedValue, u64);

fn owned_value() -> impl Strategy<Value = OwnedValue> {
    prop_oneof![
        any::<f32>().prop_map(OwnedValue::F32),
        any::<i64>().prop_map(OwnedValue::I64),
        any::<bool>().prop_map(OwnedValue::Bool),
        any::<i64>().prop_map(OwnedValue::Timestamp),
        text(FEATURE_LABEL_BYTES_MAX).prop_map(OwnedValue::Category),
    ]
}

fn owned_item() -> impl Strategy<Value = OwnedItem> {
    (
        text(STRING_BYTES_MAX),
        text(FEATURE_NAME_BYTES_MAX),
        owned_value(),
        any::<u64>(),
    )
}

fn borrowed(i: &OwnedItem) -> FeatureItem<'_> {
    let value = match &i.2 {
        OwnedValue::F32(x) => PutValue::F32(*x),
        OwnedValue::I64(x) => PutValue::I64(*x),
        OwnedValue::Bool(x) => PutValue::Bool(*x),
        OwnedValue::Timestamp(x) => PutValue::Timestamp(*x),
        OwnedValue::Category(l) => PutValue::Category(l),
    };
    FeatureItem {
        user_id: &i.0,
        feature: &i.1,
        value,
        time_ns: i.3,
    }
}

/// Equality that treats two NaNs with the same bits as equal.
fn same(a: &FeatureItem<'_>, b: &FeatureItem<'_>) -> bool {
    let values = match (a.value, b.value) {
        (PutValue::F32(x), PutValue::F32(y)) => x.to_bits() == y.to_bits(),
        (x, y) => x == y,
    };
    values && a.user_id == b.user_id && a.feature == b.feature && a.time_ns == b.time_ns
}

proptest! {
    #[test]
    fn put_features_round_trips(items in prop::collection::vec(owned_item(), 1..30), request_id in any::<u64>()) {
        let items: Vec<FeatureItem<'_>> = items.iter().map(borrowed).collect();
        let mut out = Vec::new();
        encode_put_features(&mut out, request_id, &items).unwrap();
        let Decoded::Frame { header, payload, .. } = decode_frame(&out) else {
            panic!("a whole frame");
        };
        prop_assert_eq!(header.request_id, request_id);
        let view = decode_put_features(payload).unwrap();
        prop_assert_eq!(view.len(), items.len());
        let back: Vec<FeatureItem<'_>> = view.iter().collect();
        prop_assert!(back.iter().zip(&items).all(|(a, b)| same(a, b)));
        let is_put = matches!(decode_message(MessageType::PutFeatures, payload), Ok(Message::PutFeatures(_)));
        prop_assert!(is_put);
    }

    #[test]
    fn acks_round_trip(written in 0u32..100, outdated in 0u32..100,
                       refusals in prop::collection::vec(0u8..=7, 0..200)) {
        let mut results = vec![0u8; (written + outdated) as usize];
        results.extend(refusals.iter().filter(|&&r| r != 0));
        prop_assume!(results.len() <= PUT_FEATURES_ITEMS_MAX);
        let ack = PutFeaturesAck { written, outdated, results };
        let mut out = Vec::new();
        encode_put_features_ack(&mut out, 3, &ack).unwrap();
        let back = decode_put_features_ack(payload_of(&out, MessageType::PutFeaturesAck)).unwrap();
        prop_assert_eq!(&back, &ack);
        prop_assert_eq!(back.refused_by_reason().iter().sum::<u32>(), back.refused());
    }

    #[test]
    fn mutated_put_features_never_panics(items in prop::collection::vec(owned_item(), 1..4),
                                         at in any::<prop::sample::Index>(), byte in any::<u8>(),
                                         cut in any::<prop::sample::Index>()) {
        let items: Vec<FeatureItem<'_>> = items.iter().map(borrowed).collect();
        let frame = encoded(&items);
        let mut payload = frame[HEADER_BYTES..].to_vec();
        let i = at.index(payload.len());
        payload[i] = byte;
        payload.truncate(cut.index(payload.len() + 1).max(i + 1));
        if let Ok(view) = decode_put_features(&payload) {
            prop_assert_eq!(view.iter().count(), view.len());
        }
        let _ = decode_put_features_ack(&payload);
    }
}

#[test]
fn put_features_at_its_limits_round_trips_and_one_more_is_refused() {
    let user = "u".repeat(STRING_BYTES_MAX);
    let name = "f".repeat(FEATURE_NAME_BYTES_MAX);
    let label = "l".repeat(FEATURE_LABEL_BYTES_MAX);
    let full = item(&user, &name, PutValue::Category(&label));
    let items = vec![full; PUT_FEATURES_ITEMS_MAX];
    let frame = encoded(&items);
    assert_eq!(frame.len(), HEADER_BYTES + PUT_FEATURES_BYTES_MAX);
    let view = decode_put_features(&frame[HEADER_BYTES..]).unwrap();
    assert_eq!(view.len(), PUT_FEATURES_ITEMS_MAX);
    assert!(view.iter().all(|i| i == full));

    let mut out = vec![1, 2, 3];
    let one = item("u", "clicks_30d", PutValue::I64(1));
    let over = vec![one; PUT_FEATURES_ITEMS_MAX + 1];
    let e = encode_put_features(&mut out, 1, &over).unwrap_err();
    assert_eq!(field(&e), "item_count");
    let e = encode_put_features(&mut out, 1, &[]).unwrap_err();
    assert_eq!(field(&e), "item_count");
    let long_user = "x".repeat(STRING_BYTES_MAX + 1);
    let long_name = "x".repeat(FEATURE_NAME_BYTES_MAX + 1);
    let long_label = "x".repeat(FEATURE_LABEL_BYTES_MAX + 1);
    for (bad, name) in [
        (item(&long_user, "a", PutValue::Bool(true)), "user_id"),
        (item("u", &long_name, PutValue::Bool(true)), "feature"),
        (item("u", "a", PutValue::Category(&long_label)), "label"),
    ] {
        let e = encode_put_features(&mut out, 1, &[one, bad]).unwrap_err();
        assert_eq!(field(&e), name);
    }
    assert_eq!(out, [1, 2, 3], "a refused frame leaves nothing behind");
}

#[test]
fn every_bad_put_features_field_is_refused_by_name() {
    let items = [item("u1", "clicks_30d", PutValue::I64(3))];
    // Fixed part: count 0, over the limit, more than the payload holds;
    // reserved.
    let e = refusal(&items, |p| p[0..2].copy_from_slice(&0u16.to_le_bytes()));
    assert_eq!(field(&e), "item_count");
    let over = (PUT_FEATURES_ITEMS_MAX as u16 + 1).to_le_bytes();
    let e = refusal(&items, |p| p[0..2].copy_from_slice(&over));
    assert!(matches!(
        e,
        ProtocolError::TooLong {
            field: "item_count",
            ..
        }
    ));
    let e = refusal(&items, |p| p[0..2].copy_from_slice(&2u16.to_le_bytes()));
    assert!(
        matches!(e, ProtocolError::Truncated { field: "items", .. }),
        "{e}"
    );
    let e = refusal(&items, |p| p[3] = 1);
    assert!(matches!(
        e,
        ProtocolError::InvalidValue {
            field: "reserved",
            offset: 3,
            ..
        }
    ));
    // The item: an unknown type, reserved bytes, bits a type does not use.
    for bad in [0u8, 6, 0xff] {
        let e = refusal(&items, |p| p[4] = bad);
        assert!(
            matches!(
                e,
                ProtocolError::InvalidValue {
                    field: "value_type",
                    offset: 4,
                    ..
                }
            ),
            "{e}"
        );
    }
    let e = refusal(&items, |p| p[11] = 1);
    assert!(
        matches!(
            e,
            ProtocolError::InvalidValue {
                field: "reserved",
                offset: 11,
                ..
            }
        ),
        "{e}"
    );
    let f32_item = [item("u1", "churn_risk", PutValue::F32(0.5))];
    let e = refusal(&f32_item, |p| p[27] = 1);
    assert!(
        matches!(
            e,
            ProtocolError::InvalidValue {
                field: "value",
                offset: 20,
                ..
            }
        ),
        "{e}"
    );
    let bool_item = [item("u1", "is_subscriber", PutValue::Bool(true))];
    let e = refusal(&bool_item, |p| p[20] = 2);
    assert_eq!(field(&e), "value");
    let category = [item("u1", "age_band", PutValue::Category("25-34"))];
    let e = refusal(&category, |p| p[20] = 1);
    assert_eq!(field(&e), "value");
    // A label on an i64 (its length byte and one more byte).
    let e = refusal(&items, |p| {
        let at = p.len() - 2;
        p[at] = 1;
        p.push(b'x');
    });
    assert!(
        matches!(e, ProtocolError::InvalidValue { field: "label", .. }),
        "{e}"
    );
    // Strings: a lying length, bad UTF-8, a cut payload, trailing bytes.
    let e = refusal(&items, |p| p[28] = 200);
    assert_eq!(field(&e), "user_id");
    let e = refusal(&items, |p| p[30] = 0xff);
    assert!(
        matches!(
            e,
            ProtocolError::InvalidUtf8 {
                field: "user_id",
                offset: 30
            }
        ),
        "{e}"
    );
    let e = refusal(&items, |p| p.truncate(p.len() - 1));
    assert_eq!(field(&e), "label");
    let e = refusal(&items, |p| p.push(0));
    assert_eq!(field(&e), "trailing");
}

#[test]
fn values_are_carried_for_the_server_to_judge() {
    // A NaN, an empty user and an unknown name are the server's to refuse,
    // item by item: the codec carries them.
    let items = [
        item("u", "churn_risk", PutValue::F32(f32::NAN)),
        item("", "nope", PutValue::Timestamp(-5)),
    ];
    let frame = encoded(&items);
    let back: Vec<_> = decode_put_features(&frame[HEADER_BYTES..])
        .unwrap()
        .iter()
        .collect();
    assert!(matches!(back[0].value, PutValue::F32(x) if x.is_nan()));
    assert_eq!(back[1], items[1]);
}

#[test]
fn bad_acks_are_refused_by_name() {
    let ack = PutFeaturesAck {
        written: 1,
        outdated: 0,
        results: vec![0, 2],
    };
    let mut out = Vec::new();
    encode_put_features_ack(&mut out, 1, &ack).unwrap();
    let good = payload_of(&out, MessageType::PutFeaturesAck).to_vec();
    let bad = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut p = good.clone();
        edit(&mut p);
        decode_put_features_ack(&p).expect_err("refused")
    };
    assert_eq!(field(&bad(&|p| p[8] = 0)), "refused");
    assert_eq!(field(&bad(&|p| p[0] = 5)), "written");
    assert_eq!(field(&bad(&|p| p[14] = 1)), "reserved");
    assert_eq!(field(&bad(&|p| p[12] = 3)), "results");
    assert_eq!(field(&bad(&|p| p.push(0))), "trailing");
    let over = (PUT_FEATURES_ITEMS_MAX as u16 + 1).to_le_bytes();
    assert_eq!(
        field(&bad(&|p| p[12..14].copy_from_slice(&over))),
        "item_count"
    );
    let wrong = PutFeaturesAck {
        written: 5,
        ..ack.clone()
    };
    assert_eq!(
        field(&encode_put_features_ack(&mut out, 1, &wrong).unwrap_err()),
        "written"
    );
    assert_eq!(PutFeaturesAck::label(0), "taken");
    assert_eq!(PutFeaturesAck::label(2), "unknown_feature");
    assert_eq!(PutFeaturesAck::label(200), "unknown");
    assert_eq!(ack.refused_by_reason()[1], 1);
}

// ---------------------------------------------------------------------------
// The worked examples of docs/PROTOCOL.md
// ---------------------------------------------------------------------------

const SPEC: &str = include_str!("../../../docs/PROTOCOL.md");

/// The bytes of the hex block after `<!-- example: NAME -->` in the spec.
fn spec_example(name: &str) -> Vec<u8> {
    let marker = format!("<!-- example: {name} -->");
    let start = SPEC
        .find(&marker)
        .unwrap_or_else(|| panic!("no example {name} in PROTOCOL.md"));
    let block = &SPEC[start..];
    let open = block.find("```text\n").expect("a text block") + 8;
    let close = open + block[open..].find("```").expect("the block ends");
    let mut bytes = Vec::new();
    for line in block[open..close].lines() {
        let hex = line.split('#').next().unwrap_or("");
        for token in hex.split_whitespace() {
            bytes.push(u8::from_str_radix(token, 16).expect("hex byte"));
        }
    }
    bytes
}

#[test]
fn the_put_features_spec_examples_are_what_the_encoders_write() {
    let items = [
        FeatureItem {
            time_ns: 1_704_261_600_000_000_000,
            ..item("u1", "clicks_30d", PutValue::I64(3))
        },
        item("u1", "age_band", PutValue::Category("25-34")),
        item("u1", "ctr_30d", PutValue::F32(0.5)),
    ];
    let mut out = Vec::new();
    encode_put_features(&mut out, 6, &items).unwrap();
    assert_eq!(out, spec_example("put_features"));
    let back: Vec<_> = decode_put_features(payload_of(&out, MessageType::PutFeatures))
        .unwrap()
        .iter()
        .collect();
    assert_eq!(back, items);

    // Two written; ctr_30d is computed: refused (code 3).
    let ack = PutFeaturesAck {
        written: 2,
        outdated: 0,
        results: vec![0, 0, 3],
    };
    let mut out = Vec::new();
    encode_put_features_ack(&mut out, 6, &ack).unwrap();
    assert_eq!(out, spec_example("put_features_ack"));
    assert_eq!(
        decode_put_features_ack(payload_of(&out, MessageType::PutFeaturesAck)).unwrap(),
        ack
    );
    assert_eq!(PUT_FEATURES_REFUSALS[2], "computed_feature");
}
