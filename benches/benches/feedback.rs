//! Feedback and state (issue 15, "Performance"): how fast an engine takes
//! events, what a logged decision costs in memory, and how long a state
//! file of a million users takes to write and to restore.
//!
//! - criterion `feedback/ingest/*`: `Engine::feedback` on a batch of 4,096
//!   events for decisions already logged (one engine, in process): `click`
//!   (each a first click, so an impression and a click reach the offer's
//!   posterior), `win` (an auction bid charged at its clearing price: the
//!   refund reaches the budget), `duplicate` (every event already taken:
//!   the refusal path). Throughput is in events.
//! - criterion `feedback/state/*`: `Engine::save_state` (temporary file,
//!   fsync, rename) and `Engine::restore_state_file` with 1,000,000 users
//!   in the frequency store (one capped entry each) and a full decision log
//!   of 65,536 decisions.
//! - printed before criterion runs (`feedback:` lines on stderr): bytes per
//!   logged decision, and the state file's size.
//!
//! Run: `cargo bench -p cx-benches --bench feedback`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use cx_engine::domain::feedback::{Event, EventKind};
use cx_engine::domain::store::decision_log::ENTRY_BYTES;
use cx_engine::domain::store::snapshot::StateFile;
use cx_engine::domain::store::state;
use cx_engine::domain::store::{mix64, FrequencyRecord, LoggedDecision, Settlement};
use cx_engine::{Engine, EngineConfig};
use std::hint::black_box;
use std::time::{Duration, Instant};

const BATCH: usize = 4096;
const USERS: u64 = 1_000_000;
/// 2026-01-01T00:00:00Z, ns.
const T0_NS: u64 = 1_767_225_600_000_000_000;

fn engine(frequency_capacity: usize, decisions_max: usize) -> Engine {
    let mut config = EngineConfig::default();
    config.frequency.capacity = frequency_capacity;
    config.feedback.decisions_max = decisions_max;
    config.feedback.event_ids_max = decisions_max;
    Engine::builder().config(config).build().expect("engine")
}

/// Logs `BATCH` decisions of keys `first..` for the catalog's first offer.
fn log_decisions(engine: &Engine, first: u64, settlement: Settlement, now_ns: u64) {
    let offer_id = engine.catalog().ids()[0];
    for k in first..first + BATCH as u64 {
        let d = LoggedDecision {
            key: decision_key(k),
            decided_ns: now_ns,
            offer_id,
            p_click: 0.05,
            propensity: 0.5,
            reserved_micros: if settlement == Settlement::Auction {
                2_000
            } else {
                0
            },
            settlement,
            ..LoggedDecision::default()
        };
        engine.decision_log().record(&d, now_ns);
    }
}

/// Decision `k`'s key: spread like the hashes of real decision ids.
fn decision_key(k: u64) -> u64 {
    mix64(k).max(1)
}

fn events(first: u64, kind: EventKind) -> Vec<Event> {
    (first..first + BATCH as u64)
        .map(|k| {
            let mut e = Event::new(kind, decision_key(k));
            if kind == EventKind::Win {
                e.amount = 1.0;
            }
            e
        })
        .collect()
}

fn ingest(c: &mut Criterion) {
    let mut group = c.benchmark_group("feedback/ingest");
    group.throughput(Throughput::Elements(BATCH as u64));
    for (name, kind, settlement) in [
        ("click", EventKind::Click, Settlement::Direct),
        ("win", EventKind::Win, Settlement::Auction),
    ] {
        let mut engine = engine(1 << 16, 1 << 20);
        let mut next = 1u64;
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    // Fresh decisions each batch (not timed), so every event
                    // is a first and takes the whole path.
                    // Each batch a millisecond later: a full log evicts
                    // its oldest decisions, never this batch's.
                    let now_ns = T0_NS + next * 1_000;
                    log_decisions(&engine, next, settlement, now_ns);
                    let batch = events(next, kind);
                    next += BATCH as u64;
                    let start = Instant::now();
                    let outcome = engine.feedback(&batch, now_ns).expect("a batch");
                    total += start.elapsed();
                    // (A decision its set evicted at once is held instead.)
                    assert_eq!(outcome.refused, 0, "{outcome:?}");
                }
                total
            })
        });
    }
    let mut engine = engine(1 << 16, 1 << 20);
    log_decisions(&engine, 1, Settlement::Direct, T0_NS);
    let clicks = events(1, EventKind::Click);
    engine.feedback(&clicks, T0_NS + 1).expect("a batch");
    group.bench_function("duplicate", |b| {
        b.iter(|| black_box(engine.feedback(&clicks, T0_NS + 2).expect("a batch")))
    });
    group.finish();
}

/// An engine with `USERS` users in its frequency store and a full log.
fn million_users() -> Engine {
    // Entries: a user slot holds 8 (offers), and a fifth more slots than
    // users keeps sets from overflowing.
    let engine_slots = (USERS as usize) * 5 / 4 * 8;
    let mut engine = engine(engine_slots, 1 << 16);
    let offer = engine.catalog().ids()[0];
    // The users go in through a state file's frequency section (the
    // engine's public way to fill its store).
    let mut frequency = Vec::new();
    state::write_frequency(&mut frequency, |f| {
        for user in 1..=USERS {
            f(FrequencyRecord {
                user_hash: user.wrapping_mul(0x9e37_79b9_7f4a_7c15),
                offer,
                count: 1,
                capped: true,
                window_start_ns: T0_NS,
                window_ns: 86_400_000_000_000,
                last_ns: T0_NS,
            });
        }
    });
    let (mut sections, _) = engine.state_sections();
    for s in &mut sections {
        if s.tag == state::FREQUENCY {
            s.bytes = std::mem::take(&mut frequency);
        }
    }
    let file = StateFile {
        written_unix_ns: T0_NS,
        sections,
    };
    let info = engine.restore_state(&file, T0_NS).expect("filled");
    assert_eq!(info.frequency_entries, USERS, "{info:?}");
    for k in 0..16 {
        log_decisions(&engine, 1 + k * BATCH as u64, Settlement::Auction, T0_NS);
    }
    engine
}

fn state(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state.bin");
    let engine = million_users();
    let info = engine.save_state(&path, T0_NS).expect("saved");
    eprintln!(
        "feedback: {ENTRY_BYTES} bytes per logged decision in the log's arrays; \
         log capacity {} decisions = {:.1} MiB",
        engine.decision_log().capacity(),
        (engine.decision_log().capacity() * ENTRY_BYTES) as f64 / (1 << 20) as f64
    );
    eprintln!(
        "feedback: state file of {} frequency entries and {} decisions: {:.1} MiB",
        info.frequency_entries,
        info.decisions,
        info.bytes as f64 / (1 << 20) as f64
    );
    let mut group = c.benchmark_group("feedback/state");
    group.sample_size(10);
    group.bench_function("save_1m_users", |b| {
        b.iter(|| black_box(engine.save_state(&path, T0_NS).expect("saved")))
    });
    let mut target = engine_for_restore();
    group.bench_function("restore_1m_users", |b| {
        b.iter(|| {
            black_box(
                target
                    .restore_state_file(&path, 1 << 32, T0_NS)
                    .expect("restored"),
            )
        })
    });
    group.finish();
}

fn engine_for_restore() -> Engine {
    engine((USERS as usize) * 5 / 4 * 8, 1 << 16)
}

criterion_group!(benches, ingest, state);
criterion_main!(benches);
