//! A connection's `put_features` messages: each item resolved against the
//! host's feature definitions ([`resolve`]: the user id hashed as the
//! engine hashes a request's, the feature found by name, the value checked
//! against its type), the items that pass written as one batch through the
//! [`Submit`] sink, and a `put_features_ack` written as soon as the
//! message is read, like a `feedback_ack`.
//!
//! A message whose layout is broken is answered with an `error` naming
//! the field, and nothing of it is written (the codec checks the whole
//! payload first). An item that does not fit the definitions is refused
//! with its reason's code in the ack's result byte and not written; the
//! others are (`docs/PROTOCOL.md`, `put_features`). The batch and the ack
//! are buffers of the connection, allocated for
//! [`limits::PUT_FEATURES_ITEMS_MAX`] items at its first `put_features`:
//! taking a message allocates nothing after that.

use super::{Connection, Submit};
use cx_engine::featurestore::{Definitions, FeaturePut, Value, ValueType};
use cx_wire::protocol::{self, limits, ErrorCode, FeatureItem, PutValue};

/// Result code: taken.
pub const PUT_TAKEN: u8 = 0;
/// Refusal code 1: the item's user id is empty.
pub const PUT_NO_USER: u8 = 1;
/// Refusal code 2: no feature of that name.
pub const PUT_UNKNOWN_FEATURE: u8 = 2;
/// Refusal code 3: the name is a computed feature.
pub const PUT_COMPUTED_FEATURE: u8 = 3;
/// Refusal code 4: the value is not of the feature's type.
pub const PUT_WRONG_TYPE: u8 = 4;
/// Refusal code 5: a non-finite f32, or a label not among the feature's.
pub const PUT_BAD_VALUE: u8 = 5;
/// Refusal code 6: the server runs without a feature store.
pub const PUT_STORE_OFF: u8 = 6;
/// Refusal code 7: the store refused the batch.
pub const PUT_STORE_REFUSED: u8 = 7;

const _: () = assert!(protocol::PUT_FEATURES_REFUSALS.len() == PUT_STORE_REFUSED as usize);

/// The store's write for `item` under `defs`, or the code of the reason it
/// is refused. Its `time_ns` is the item's (0: the sink dates it).
pub fn resolve(defs: &Definitions, item: &FeatureItem<'_>) -> Result<FeaturePut, u8> {
    let entity = cx_engine::systems::logic::user_hash(item.user_id);
    if entity == 0 {
        return Err(PUT_NO_USER);
    }
    let feature = defs.find(item.feature).ok_or(PUT_UNKNOWN_FEATURE)?;
    let stored = defs
        .stored()
        .get(feature.index())
        .ok_or(PUT_COMPUTED_FEATURE)?;
    let value = match (stored.value_type, item.value) {
        (ValueType::F32, PutValue::F32(x)) if x.is_finite() => Value::F32(x),
        (ValueType::F32, PutValue::F32(_)) => return Err(PUT_BAD_VALUE),
        (ValueType::I64, PutValue::I64(x)) => Value::I64(x),
        (ValueType::Bool, PutValue::Bool(x)) => Value::Bool(x),
        (ValueType::Timestamp, PutValue::Timestamp(x)) => Value::Timestamp(x),
        (ValueType::Category, PutValue::Category(label)) => {
            defs.category(feature, label).ok_or(PUT_BAD_VALUE)?
        }
        _ => return Err(PUT_WRONG_TYPE),
    };
    Ok(FeaturePut {
        entity,
        feature,
        value,
        time_ns: item.time_ns,
    })
}

impl Connection {
    /// Decodes a `put_features` payload, writes what fits through the sink
    /// and writes the `put_features_ack` (or the `error` naming the bad
    /// field).
    pub(super) fn on_put_features(
        &mut self,
        request_id: u64,
        payload: &[u8],
        sink: &mut impl Submit,
    ) {
        let view = match protocol::decode_put_features(payload) {
            Ok(view) => view,
            Err(e) => {
                self.error(request_id, e.code(), &e.to_string());
                return;
            }
        };
        let batch = &mut self.feature_puts;
        let ack = &mut self.put_ack;
        batch.clear();
        ack.results.clear();
        ack.written = 0;
        ack.outdated = 0;
        if batch.capacity() < limits::PUT_FEATURES_ITEMS_MAX {
            batch.reserve_exact(limits::PUT_FEATURES_ITEMS_MAX);
            ack.results.reserve_exact(limits::PUT_FEATURES_ITEMS_MAX);
        }
        match sink.feature_definitions() {
            None => ack
                .results
                .extend(std::iter::repeat_n(PUT_STORE_OFF, view.len())),
            Some(defs) => {
                for item in view.iter() {
                    match resolve(defs, &item) {
                        Ok(put) => {
                            batch.push(put);
                            ack.results.push(PUT_TAKEN);
                        }
                        Err(code) => ack.results.push(code),
                    }
                }
            }
        }
        if !batch.is_empty() {
            match sink.put_features(batch) {
                Ok(outcome) => {
                    ack.written = u32::try_from(outcome.written).unwrap_or(u32::MAX);
                    ack.outdated = u32::try_from(outcome.outdated).unwrap_or(u32::MAX);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the feature store refused a put_features batch");
                    for r in ack.results.iter_mut().filter(|r| **r == PUT_TAKEN) {
                        *r = PUT_STORE_REFUSED;
                    }
                }
            }
        }
        sink.count_put_features(ack);
        match protocol::encode_put_features_ack(&mut self.io.write, request_id, ack) {
            Ok(()) => self.counts.frames_sent += 1,
            Err(e) => {
                let msg = format!("the put_features_ack could not be encoded: {e}");
                self.error(request_id, ErrorCode::Internal, &msg);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defs() -> Definitions {
        let text = crate::serve::features::BUNDLED_DEFINITIONS_TOML;
        Definitions::from_toml_str(text).expect("bundled definitions")
    }

    fn item<'a>(user: &'a str, feature: &'a str, value: PutValue<'a>) -> FeatureItem<'a> {
        FeatureItem {
            user_id: user,
            feature,
            value,
            time_ns: 7,
        }
    }

    #[test]
    fn items_resolve_by_name_and_type_and_bad_ones_name_their_reason() {
        let defs = defs();
        let put = resolve(&defs, &item("u1", "clicks_30d", PutValue::I64(3))).unwrap();
        assert_eq!(put.entity, cx_engine::systems::logic::user_hash("u1"));
        assert_eq!(put.feature, defs.find("clicks_30d").unwrap());
        assert_eq!((put.value, put.time_ns), (Value::I64(3), 7));
        let put = resolve(&defs, &item("u", "age_band", PutValue::Category("25-34"))).unwrap();
        assert_eq!(put.value, Value::Category(2));
        for (bad, code) in [
            (item("", "clicks_30d", PutValue::I64(1)), PUT_NO_USER),
            (item("u", "nope", PutValue::I64(1)), PUT_UNKNOWN_FEATURE),
            (
                item("u", "ctr_30d", PutValue::F32(0.5)),
                PUT_COMPUTED_FEATURE,
            ),
            (item("u", "clicks_30d", PutValue::F32(1.0)), PUT_WRONG_TYPE),
            (
                item("u", "churn_risk", PutValue::F32(f32::NAN)),
                PUT_BAD_VALUE,
            ),
            (
                item("u", "churn_risk", PutValue::F32(f32::INFINITY)),
                PUT_BAD_VALUE,
            ),
            (
                item("u", "age_band", PutValue::Category("99+")),
                PUT_BAD_VALUE,
            ),
            (item("u", "age_band", PutValue::I64(1)), PUT_WRONG_TYPE),
        ] {
            assert_eq!(resolve(&defs, &bad), Err(code), "{bad:?}");
        }
        let label = |code: u8| protocol::PutFeaturesAck::label(code);
        assert_eq!(label(PUT_COMPUTED_FEATURE), "computed_feature");
        assert_eq!(label(PUT_STORE_REFUSED), "store_refused");
    }
}
