//! Helpers shared by the engine's integration tests.
#![allow(dead_code)] // each test binary uses a subset

use cx_datasets::{Generator, SynthConfig};
use cx_domain::pipeline::Decision;
use cx_engine::Engine;
use cx_features::RequestContext;

/// 2026-01-01 00:00 UTC, ns.
pub const T0_NS: u64 = 1_767_225_600_000_000_000;

/// One millisecond, ns.
pub const MS: u64 = 1_000_000;

/// Synthetic requests arriving now: timestamp 0, so the engine stamps the tick's time.
pub fn contexts(n: usize, seed: u64) -> Vec<RequestContext> {
    let mut generator = Generator::new(SynthConfig::default(), seed).expect("generator");
    (0..n)
        .map(|_| RequestContext {
            timestamp: 0,
            ..generator.next_row().to_context()
        })
        .collect()
}

/// Submits every context, ticks at `now_ns` until all are decided, and
/// returns the decisions in ticket (submission) order.
pub fn decide_all(engine: &mut Engine, ctxs: &[RequestContext], now_ns: u64) -> Vec<Decision> {
    for ctx in ctxs {
        engine.submit(ctx.clone()).expect("room");
    }
    engine.run_until_decided(now_ns);
    let mut out: Vec<Decision> = engine.drain().collect();
    out.sort_by_key(|d| d.ticket);
    out
}
