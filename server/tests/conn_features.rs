//! The connection state machine's `put_features` with a real engine and
//! feature store: items written and read back through the engine, bad
//! items refused per reason without changing the store, a broken message
//! refused whole with an error naming the field, and no allocation per
//! message once the connection has taken one.

use cx_domain::pipeline::{Request, Ticket};
use cx_engine::featurestore::{
    Definitions, FeatureBackend, FeaturePut, Freshness, OnlineFeatures, PutOutcome, StoreConfig,
    Value,
};
use cx_engine::openrtb::ImpOutcome as EngineImpOutcome;
use cx_engine::Engine;
use cx_server::conn::{Connection, EngineResponder, ImpLists, Overloaded, Owner, Respond, Submit};
use cx_wire::openrtb::{BidRequest, BidResponse};
use cx_wire::protocol::{
    self, Decoded, ErrorCode, FeatureItem, MessageType, PutFeaturesAck, PutValue,
};
use std::sync::Arc;

/// Host time: 2026-01-01 00:00 UTC.
const NOW_NS: u64 = 1_767_225_600_000_000_000;

struct Sink<'a> {
    engine: &'a mut Engine,
    acks: u64,
}

impl Respond for Sink<'_> {
    fn now_ns(&self) -> u64 {
        0
    }

    fn catalog(&self) -> &cx_domain::catalog::Catalog {
        self.engine.catalog()
    }

    fn bid_response(&mut self, request: &BidRequest, imps: &[EngineImpOutcome]) -> BidResponse {
        EngineResponder(self.engine).bid_response(request, imps)
    }
}

impl Submit for Sink<'_> {
    fn submit(&mut self, _request: Request, _owner: Owner) -> Result<Ticket, Overloaded> {
        Err(Overloaded)
    }

    fn feature_definitions(&self) -> Option<&Arc<Definitions>> {
        self.engine.feature_store().map(|s| s.definitions())
    }

    fn put_features(&mut self, batch: &mut [FeaturePut]) -> Result<PutOutcome, cx_engine::Error> {
        for put in batch.iter_mut().filter(|p| p.time_ns == 0) {
            put.time_ns = NOW_NS;
        }
        self.engine.put_features(batch, NOW_NS)
    }

    fn count_put_features(&mut self, _ack: &PutFeaturesAck) {
        self.acks += 1;
    }
}

fn engine() -> Engine {
    let text = cx_server::serve::features::BUNDLED_DEFINITIONS_TOML;
    let defs = Arc::new(Definitions::from_toml_str(text).expect("bundled definitions"));
    let config = StoreConfig {
        entities: 4096,
        ..StoreConfig::default()
    };
    let store = FeatureBackend::shared(defs, config).expect("a store");
    Engine::builder()
        .feature_store(store)
        .build()
        .expect("an engine with a store")
}

fn item<'a>(user: &'a str, feature: &'a str, value: PutValue<'a>) -> FeatureItem<'a> {
    FeatureItem {
        user_id: user,
        feature,
        value,
        time_ns: 0,
    }
}

/// Feeds `bytes` to `conn` and returns the one frame it answered.
fn answer(conn: &mut Connection, engine: &mut Engine, bytes: &[u8]) -> (MessageType, Vec<u8>) {
    let mut sink = Sink { engine, acks: 0 };
    let mut lists = ImpLists::new(8);
    assert_eq!(conn.on_bytes(bytes, &mut sink, &mut lists), bytes.len());
    let out = conn.output().to_vec();
    conn.consume_output(out.len());
    let Decoded::Frame {
        header,
        payload,
        consumed,
    } = protocol::decode_frame(&out)
    else {
        panic!("one frame");
    };
    assert_eq!(consumed, out.len());
    (header.message_type, payload.to_vec())
}

#[test]
fn items_are_written_or_refused_one_by_one() {
    let mut engine = engine();
    let mut conn = Connection::new();
    let mut bytes = Vec::new();
    let items = [
        item("u1", "clicks_30d", PutValue::I64(4)),
        item("u1", "age_band", PutValue::Category("18-24")),
        item("u1", "churn_risk", PutValue::F32(f32::NAN)),
        item("u1", "views_30d", PutValue::Bool(true)),
    ];
    protocol::encode_put_features(&mut bytes, 5, &items).unwrap();
    let (kind, payload) = answer(&mut conn, &mut engine, &bytes);
    assert_eq!(kind, MessageType::PutFeaturesAck);
    let ack = protocol::decode_put_features_ack(&payload).unwrap();
    assert_eq!(ack.results, [0, 0, 5, 4]);
    assert_eq!(ack.written, 2);
    let row = engine.features_for("u1", NOW_NS).expect("a store");
    assert_eq!(
        row.get("clicks_30d"),
        Some((Value::I64(4), Freshness::Fresh))
    );
    assert_eq!(row.get("age_band").unwrap().0, Value::Category(1));
    assert_eq!(row.get("churn_risk").unwrap().1, Freshness::Missing);
    assert_eq!(row.get("views_30d").unwrap().1, Freshness::Missing);

    // A broken message: an error naming the field, nothing written.
    let mut bytes = Vec::new();
    protocol::encode_put_features(&mut bytes, 6, &[item("u2", "clicks_30d", PutValue::I64(1))])
        .unwrap();
    bytes[24 + 4] = 9; // the value type
    let (kind, payload) = answer(&mut conn, &mut engine, &bytes);
    assert_eq!(kind, MessageType::Error);
    let error = protocol::decode_error(&payload).unwrap();
    assert_eq!(error.code, ErrorCode::InvalidPayload);
    assert!(error.message.contains("value_type"), "{}", error.message);
    let row = engine.features_for("u2", NOW_NS).expect("a store");
    assert_eq!(row.get("clicks_30d").unwrap().1, Freshness::Missing);
    let health = engine.feature_health().unwrap();
    let writes: u64 = health.features.iter().map(|f| f.counts.writes).sum();
    assert_eq!(writes, 2, "only the first message's two values");
}

#[test]
fn put_features_in_steady_state_allocate_nothing() {
    let mut engine = engine();
    let mut conn = Connection::new();
    let users: Vec<String> = (0..64).map(|i| format!("user-{i}")).collect();
    let frames: Vec<Vec<u8>> = (0..20u64)
        .map(|k| {
            let items: Vec<FeatureItem<'_>> = users
                .iter()
                .map(|u| FeatureItem {
                    time_ns: NOW_NS + k,
                    ..item(u, "sessions_7d", PutValue::I64(k as i64))
                })
                .chain([item("u", "nope", PutValue::I64(1))])
                .collect();
            let mut bytes = Vec::new();
            protocol::encode_put_features(&mut bytes, k, &items).unwrap();
            bytes
        })
        .collect();
    let mut lists = ImpLists::new(8);
    // The first message sizes the connection's buffers.
    let mut sink = Sink {
        engine: &mut engine,
        acks: 0,
    };
    conn.on_bytes(&frames[0], &mut sink, &mut lists);
    let len = conn.output().len();
    conn.consume_output(len);
    let info = allocation_counter::measure(|| {
        for bytes in &frames[1..] {
            conn.on_bytes(bytes, &mut sink, &mut lists);
            let len = conn.output().len();
            conn.consume_output(len);
        }
    });
    assert_eq!(sink.acks, 20);
    assert_eq!(
        info.count_total, 0,
        "{} allocations for 19 put_features",
        info.count_total
    );
}
