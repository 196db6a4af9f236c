//! The store against a plain reference model under random writes, reads
//! and evictions: a HashMap when every entity fits, and a per-set model
//! of the eviction rule when they do not. Also the shared store against
//! the in-process one.

mod common;

use common::{S, T0};
use cx_featurestore::{
    Definitions, FeaturePut, FeatureStore, FeatureValues, Freshness, SharedFeatureStore,
    StoreConfig, Value,
};
use proptest::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;

/// Three features with TTLs of 10, 100 and 1000 s, and two computed.
const DEFS: &str = r#"
[[feature]]
name = "a"
kind = "engagement"
type = "i64"
ttl = "10s"
default = -1

[[feature]]
name = "b"
kind = "behavioral"
type = "f32"
ttl = "100s"
default = 0.25

[[feature]]
name = "c"
kind = "demographic"
type = "bool"
ttl = "1000s"
default = true

[[computed]]
name = "r"
kind = "engagement"
op = "ratio"
numerator = "b"
denominator = "a"
prior_mean = 0.5
prior_weight = 2

[[computed]]
name = "big_b"
kind = "behavioral"
op = "threshold"
input = "b"
cmp = ">"
value = 0.5
"#;

const TTL: [u32; 3] = [10, 100, 1000];

fn defs() -> Arc<Definitions> {
    Arc::new(Definitions::from_toml_str(DEFS).unwrap())
}

#[derive(Clone, Debug)]
enum Op {
    Put {
        entity: u64,
        feature: u16,
        raw: i64,
        time_s: u32,
        now_s: u32,
    },
    Read {
        entity: u64,
        now_s: u32,
    },
}

fn op(entities: u64) -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1..=entities, 0u16..3, -5i64..50, 0u32..3_000, 0u32..3_000).prop_map(
            |(entity, feature, raw, time_s, now_s)| Op::Put { entity, feature, raw, time_s, now_s }
        ),
        2 => (1..=entities + 1, 0u32..3_000).prop_map(|(entity, now_s)| Op::Read { entity, now_s }),
    ]
}

fn value(feature: u16, raw: i64) -> Value {
    match feature {
        0 => Value::I64(raw),
        1 => Value::F32(raw as f32 / 32.0),
        _ => Value::Bool(raw % 2 == 0),
    }
}

fn ns(s: u32) -> u64 {
    T0 + u64::from(s) * S
}

/// The store's time stamp of second `s` after T0.
fn stamp(s: u32) -> u32 {
    (T0 / S) as u32 + s + 1
}

/// One entity as the model holds it.
#[derive(Clone, Debug, Default)]
struct Ent {
    written: u32,
    expires: u32,
    values: [Option<(u32, Value)>; 3],
}

impl Ent {
    fn write(&mut self, feature: usize, v: Value, t: u32, now: u32) {
        if self.values[feature].is_some_and(|(held, _)| held > t) {
            return;
        }
        self.values[feature] = Some((t, v));
        self.expires = self.expires.max(t.saturating_add(TTL[feature]));
        self.written = self.written.max(now);
    }
}

/// What a read of `ent` at `now` must give: per stored feature the value
/// and freshness, then the two computed ones.
fn expected(defs: &Definitions, ent: Option<&Ent>, now: u32) -> Vec<(Value, Freshness)> {
    let mut out: Vec<(Value, Freshness)> = (0..3)
        .map(|f| {
            let default = defs.stored()[f].default;
            match ent.and_then(|e| e.values[f]) {
                None => (default, Freshness::Missing),
                Some((t, _)) if now.saturating_sub(t) > TTL[f] => (default, Freshness::Stale),
                Some((_, v)) => (v, Freshness::Fresh),
            }
        })
        .collect();
    let (a, b) = (out[0].0.as_f64(), out[1].0.as_f64());
    let den = a + 2.0;
    let r = if den > 0.0 {
        ((b + 0.5 * 2.0) / den) as f32
    } else {
        0.5
    };
    out.push((Value::F32(r), out[0].1.max(out[1].1)));
    out.push((Value::Bool(b > 0.5), out[1].1));
    out
}

fn check_row(row: &FeatureValues, want: &[(Value, Freshness)]) -> Result<(), TestCaseError> {
    prop_assert_eq!(row.len(), want.len());
    for ((id, value, freshness), w) in row.iter().zip(want) {
        prop_assert_eq!((value, freshness), *w, "feature {}", id.index());
    }
    Ok(())
}

/// The slots of a few sets, as the documentation describes them.
struct SetModel {
    ways: Vec<Option<(u64, Ent)>>,
}

impl SetModel {
    fn find(&self, entity: u64) -> Option<usize> {
        self.ways
            .iter()
            .position(|w| w.as_ref().is_some_and(|(k, _)| *k == entity))
    }

    /// The slot a new entity takes in sets `[a, b]`, and its class.
    fn choose(&self, [a, b]: [usize; 2], now: u32) -> (usize, u8) {
        let empty = |set: usize| {
            (set * 8..set * 8 + 8)
                .filter(|&s| self.ways[s].is_none())
                .count()
        };
        let (ea, eb) = (empty(a), if a == b { 0 } else { empty(b) });
        if ea + eb > 0 {
            let set = if ea >= eb { a } else { b };
            let slot = (set * 8..set * 8 + 8)
                .find(|&s| self.ways[s].is_none())
                .unwrap();
            return (slot, 0);
        }
        let mut candidates: Vec<usize> = (a * 8..a * 8 + 8).collect();
        if b != a {
            candidates.extend(b * 8..b * 8 + 8);
        }
        let rank = |s: usize| match &self.ways[s] {
            None => (0u8, 0u32),
            Some((_, e)) if now > e.expires => (1, e.written),
            Some((_, e)) => (2, e.written),
        };
        let slot = candidates.into_iter().min_by_key(|&s| rank(s)).unwrap();
        (slot, rank(slot).0)
    }
}

fn put_of(defs: &Definitions, entity: u64, feature: u16, raw: i64, time_s: u32) -> FeaturePut {
    FeaturePut {
        entity,
        feature: defs.find(["a", "b", "c"][usize::from(feature)]).unwrap(),
        value: value(feature, raw),
        time_ns: ns(time_s),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// At most 8 entities in a store of 1024 slots: nothing is ever evicted,
    /// and the store is a map of the latest value per (entity, feature).
    #[test]
    fn within_capacity_the_store_is_a_map(ops in prop::collection::vec(op(8), 1..300)) {
        let defs = defs();
        let mut store = FeatureStore::new(defs.clone(), StoreConfig { entities: 1024, ..StoreConfig::default() }).unwrap();
        let mut model: HashMap<u64, Ent> = HashMap::new();
        let mut row = FeatureValues::new(defs.clone());
        for op in ops {
            match op {
                Op::Put { entity, feature, raw, time_s, now_s } => {
                    store.put(&[put_of(&defs, entity, feature, raw, time_s)], ns(now_s)).unwrap();
                    model.entry(entity).or_default().write(usize::from(feature), value(feature, raw), stamp(time_s), stamp(now_s));
                }
                Op::Read { entity, now_s } => {
                    store.read(entity, ns(now_s), &mut row).unwrap();
                    check_row(&row, &expected(&defs, model.get(&entity), stamp(now_s)))?;
                }
            }
        }
        prop_assert_eq!(store.stats().evictions + store.stats().reclaimed, 0);
        prop_assert_eq!(store.stats().entities, model.len());
    }

    /// Up to 24 entities in one or two sets of 8: the store follows the
    /// eviction rule exactly (an empty slot in the candidate set with more
    /// of them, else the expired slot with the oldest write, else the
    /// oldest write; the first set's slots first on a tie).
    #[test]
    fn full_sets_evict_as_documented(
        slots in prop_oneof![Just(8usize), Just(16)],
        ops in prop::collection::vec(op(24), 1..300),
    ) {
        let defs = defs();
        let mut store = FeatureStore::new(defs.clone(), StoreConfig { entities: slots, ..StoreConfig::default() }).unwrap();
        let mut model = SetModel { ways: vec![None; slots] };
        let mut row = FeatureValues::new(defs.clone());
        let (mut evictions, mut reclaimed) = (0u64, 0u64);
        for op in ops {
            match op {
                Op::Put { entity, feature, raw, time_s, now_s } => {
                    let before = evictions;
                    let out = store.put(&[put_of(&defs, entity, feature, raw, time_s)], ns(now_s)).unwrap();
                    let now = stamp(now_s);
                    let slot = match model.find(entity) {
                        Some(slot) => slot,
                        None => {
                            let (slot, class) = model.choose(store.sets_of(entity), now);
                            match class {
                                1 => reclaimed += 1,
                                2 => evictions += 1,
                                _ => {}
                            }
                            model.ways[slot] = Some((entity, Ent { written: now, ..Ent::default() }));
                            slot
                        }
                    };
                    if let Some((_, e)) = model.ways[slot].as_mut() {
                        e.write(usize::from(feature), value(feature, raw), stamp(time_s), now);
                    }
                    prop_assert_eq!(out.evicted, evictions - before);
                }
                Op::Read { entity, now_s } => {
                    store.read(entity, ns(now_s), &mut row).unwrap();
                    let ent = model.find(entity).and_then(|s| model.ways[s].as_ref()).map(|(_, e)| e);
                    check_row(&row, &expected(&defs, ent, stamp(now_s)))?;
                }
            }
        }
        prop_assert_eq!((store.stats().evictions, store.stats().reclaimed), (evictions, reclaimed));
        prop_assert_eq!(store.stats().entities, model.ways.iter().flatten().count());
    }

    /// The shared store reads what the in-process one reads, when neither
    /// evicts.
    #[test]
    fn the_shared_store_agrees_with_the_in_process_one(ops in prop::collection::vec(op(50), 1..200)) {
        let defs = defs();
        let config = StoreConfig { entities: 1 << 14, ..StoreConfig::default() };
        let mut one = FeatureStore::new(defs.clone(), config).unwrap();
        let shared = SharedFeatureStore::new(defs.clone(), config).unwrap();
        let (mut r1, mut r2) = (FeatureValues::new(defs.clone()), FeatureValues::new(defs.clone()));
        for op in ops {
            match op {
                Op::Put { entity, feature, raw, time_s, now_s } => {
                    let p = [put_of(&defs, entity, feature, raw, time_s)];
                    prop_assert_eq!(one.put(&p, ns(now_s)).unwrap(), shared.put(&p, ns(now_s)).unwrap());
                }
                Op::Read { entity, now_s } => {
                    one.read(entity, ns(now_s), &mut r1).unwrap();
                    shared.read(entity, ns(now_s), &mut r2).unwrap();
                    let a: Vec<_> = r1.iter().collect();
                    let b: Vec<_> = r2.iter().collect();
                    prop_assert_eq!(a, b);
                }
            }
        }
        prop_assert_eq!(one.health(), shared.health());
        let (s1, s2) = (one.stats(), shared.stats());
        prop_assert_eq!((s1.entities, s1.reads, s1.written, s1.outdated), (s2.entities, s2.reads, s2.written, s2.outdated));
    }
}

#[test]
fn workers_share_one_store() {
    let defs = defs();
    let shared = SharedFeatureStore::new(
        defs.clone(),
        StoreConfig {
            entities: 1 << 12,
            ..StoreConfig::default()
        },
    )
    .unwrap();
    let threads: Vec<_> = (0..2u64)
        .map(|w| {
            let (store, defs) = (shared.clone(), defs.clone());
            std::thread::spawn(move || {
                let mut row = FeatureValues::new(defs.clone());
                for e in 0..500u64 {
                    let entity = 1 + w * 1000 + e;
                    store
                        .put(&[put_of(&defs, entity, 0, e as i64, 0)], ns(1))
                        .unwrap();
                    store.read(entity, ns(2), &mut row).unwrap();
                    assert_eq!(
                        row.get("a").unwrap(),
                        (Value::I64(e as i64), Freshness::Fresh)
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let stats = shared.stats();
    assert_eq!(
        (stats.entities, stats.written, stats.reads),
        (1000, 1000, 1000)
    );
    assert!(shared.same_as(&shared.clone()));
}
