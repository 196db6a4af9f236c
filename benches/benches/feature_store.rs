//! The online feature store (issue 16): one request's lookup of the
//! bundled definitions' 10 stored and 3 computed features, the memory of
//! a million users, and the latency distribution of single lookups.
//!
//! - criterion `feature_store/lookup/*`: the time of one
//!   `FeatureStore::read` (10 stored + 3 computed features) in a store of
//!   1M users (1.25M slots): `hot` cycles over 1,000 users (their lines stay in cache,
//!   as for a user seen again within a burst), `cold_1m` draws users at
//!   random from the million (every lookup goes to memory), `unknown` reads
//!   users the store does not hold (defaults), `cold_1m_batch16` reads 16
//!   random users per iteration with `read_many` (divide by 16: its memory
//!   accesses overlap), `shared_hot` is `hot`
//!   through the sharded, mutex-guarded store a server's workers share.
//! - printed before criterion runs (`feature_store:` lines on stderr): the
//!   store's bytes per user, the process's resident memory (`VmRSS` of
//!   `/proc/self/status`) before and after filling 1M users, and the
//!   p50/p99/p99.9 of 200,000 single lookups each timed with `Instant`
//!   (the timer's own cost, measured the same way, printed beside them),
//!   and the machine's floor for a cold lookup: ns per dependent random
//!   load over 256 MiB (a pointer chase; a cold lookup makes two).
//!
//! Run: `cargo bench -p cx-benches --bench feature_store`.

use criterion::{criterion_group, criterion_main, Criterion};
use cx_benches::feature_fill::{key, mix, user_values};
use cx_engine::featurestore::{
    Definitions, FeatureId, FeaturePut, FeatureStore, FeatureValues, SharedFeatureStore,
    StoreConfig,
};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

const DEFS: &str = include_str!("../../models/features.toml");
const USERS: u64 = 1_000_000;
/// Slots for them: a fifth more, as `StoreConfig::entities` advises.
const SLOTS: usize = 1_250_000;
const HOT: u64 = 1_000;
const BATCH: usize = 16;
const S: u64 = 1_000_000_000;
/// 2026-01-01T00:00:00Z, ns.
const T0: u64 = 1_767_225_600 * S;

/// Every stored feature of the bundled definitions for user `i`.
fn user_batch(defs: &Definitions, i: u64, out: &mut Vec<FeaturePut>) {
    user_values(defs, key(i), i, T0, out);
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A store of 1M users, filled; prints its memory.
fn million_users(defs: &Arc<Definitions>) -> FeatureStore {
    let before = rss_kib();
    let config = StoreConfig {
        entities: SLOTS,
        ..StoreConfig::default()
    };
    let mut store = FeatureStore::new(defs.clone(), config).expect("store");
    let allocated = rss_kib();
    let mut batch = Vec::with_capacity(16);
    let start = Instant::now();
    for i in 0..USERS {
        user_batch(defs, i, &mut batch);
        store.put(&batch, T0).expect("put");
    }
    let fill = start.elapsed();
    let after = rss_kib();
    let stats = store.stats();
    eprintln!(
        "feature_store: {} features, {} bytes per user slot, {} slots, {:.1} MiB of tables",
        defs.stored().len(),
        stats.bytes / stats.capacity as u64,
        stats.capacity,
        stats.bytes as f64 / (1 << 20) as f64
    );
    eprintln!(
        "feature_store: VmRSS {before} KiB before, {allocated} KiB after new, {after} KiB after \
         {USERS} users ({} held, {} evicted): {:.1} MiB for the store, {:.0} bytes per user held; \
         fill {:.0} ns per user (10 values)",
        stats.entities,
        stats.evictions,
        (after - before) as f64 / 1024.0,
        (after - before) as f64 * 1024.0 / stats.entities as f64,
        fill.as_nanos() as f64 / USERS as f64
    );
    store
}

/// p50, p99 and p99.9 of `n` single lookups of the keys `keys(i)`, each
/// timed alone, with the cost of the timing itself.
fn single_lookups(
    store: &mut FeatureStore,
    row: &mut FeatureValues,
    ctr: FeatureId,
    label: &str,
    keys: impl Fn(u64) -> u64,
) {
    const N: usize = 200_000;
    let now = T0 + 60 * S;
    let mut lookups = Vec::with_capacity(N);
    let mut empty = Vec::with_capacity(N);
    for i in 0..N as u64 {
        let k = keys(i);
        let start = Instant::now();
        store.read(k, now, row).expect("read");
        black_box(row.number(ctr));
        lookups.push(start.elapsed().as_nanos() as u64);
        let start = Instant::now();
        black_box(k);
        empty.push(start.elapsed().as_nanos() as u64);
    }
    let q = |v: &mut Vec<u64>, q: f64| {
        v.sort_unstable();
        v[((v.len() as f64 * q) as usize).min(v.len() - 1)]
    };
    eprintln!(
        "feature_store: single lookups, {label}: p50 {} ns, p99 {} ns, p99.9 {} ns \
         (timer alone: p50 {} ns, p99 {} ns; {N} lookups)",
        q(&mut lookups, 0.5),
        q(&mut lookups, 0.99),
        q(&mut lookups, 0.999),
        q(&mut empty, 0.5),
        q(&mut empty, 0.99)
    );
}

/// The machine's floor for a cold lookup: ns per dependent random load
/// (a pointer chase over one cycle through 256 MiB, 4 KiB pages).
fn memory_latency_ns() -> f64 {
    let n: usize = 32 << 20;
    let mut next: Vec<u32> = (0..n as u32).collect();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in (1..n).rev() {
        x = mix(x);
        next.swap(i, (x % i as u64) as usize); // Sattolo: a single cycle
    }
    let mut p = 0u32;
    for _ in 0..1_000_000 {
        p = next[p as usize];
    }
    const HOPS: u32 = 4_000_000;
    let start = Instant::now();
    for _ in 0..HOPS {
        p = next[p as usize];
    }
    black_box(p);
    start.elapsed().as_nanos() as f64 / f64::from(HOPS)
}

fn feature_store(c: &mut Criterion) {
    eprintln!(
        "feature_store: machine floor: {:.0} ns per dependent random load over 256 MiB",
        memory_latency_ns()
    );
    let defs = Arc::new(Definitions::from_toml_str(DEFS).expect("bundled definitions"));
    let mut store = million_users(&defs);
    let mut row = FeatureValues::new(defs.clone());
    let ctr = defs.find("ctr_30d").expect("ctr");
    let now = T0 + 60 * S;
    let random = |i: u64| key(mix(i) % USERS);
    single_lookups(&mut store, &mut row, ctr, "hot (1,000 users)", |i| {
        key(i % HOT)
    });
    single_lookups(&mut store, &mut row, ctr, "cold (1M users, random)", random);

    let mut group = c.benchmark_group("feature_store/lookup");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    let mut i = 0u64;
    group.bench_function("hot", |b| {
        b.iter(|| {
            i = (i + 1) % HOT;
            store.read(key(i), now, &mut row).expect("read");
            black_box(row.number(ctr))
        })
    });
    group.bench_function("cold_1m", |b| {
        b.iter(|| {
            i += 1;
            store.read(random(i), now, &mut row).expect("read");
            black_box(row.number(ctr))
        })
    });
    // 16 random users per iteration with `read_many`: criterion's time is
    // for 16 lookups.
    let mut rows = vec![FeatureValues::new(defs.clone()); BATCH];
    let mut keys = [0u64; BATCH];
    group.bench_function("cold_1m_batch16", |b| {
        b.iter(|| {
            for k in keys.iter_mut() {
                i += 1;
                *k = random(i);
            }
            store.read_many(&keys, now, &mut rows).expect("read_many");
            black_box(rows[BATCH - 1].number(ctr))
        })
    });
    group.bench_function("unknown", |b| {
        b.iter(|| {
            i += 1;
            store.read(key(USERS + i), now, &mut row).expect("read");
            black_box(row.number(ctr))
        })
    });
    drop(store);
    let shared = SharedFeatureStore::new(defs.clone(), StoreConfig::default()).expect("shared");
    let mut batch = Vec::new();
    for u in 0..HOT {
        user_batch(&defs, u, &mut batch);
        shared.put(&batch, T0).expect("put");
    }
    group.bench_function("shared_hot", |b| {
        b.iter(|| {
            i = (i + 1) % HOT;
            shared.read(key(i), now, &mut row).expect("read");
            black_box(row.number(ctr))
        })
    });
    group.finish();
}

criterion_group!(benches, feature_store);
criterion_main!(benches);
