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

/// One offer of the bundled model's (1000) with a daily budget of 100 and
/// a cap of one impression a day, and a banner creative: the catalog the
/// feedback and state tests bid from.
pub fn budgeted_catalog() -> cx_domain::catalog::Catalog {
    cx_domain::catalog::Catalog::from_toml_str(
        r#"
[[offer]]
id = 1000
name = "Courses"
conversion_rate = 0.02
revenue = 2.0
max_bid_cpm = 8.0
daily_budget = 100.0
frequency_cap = { impressions = 1, window_s = 86400 }
creative_id = "cr-1000"

[offer.creative]
click_url = "https://learn.example/go"
image_url = "https://cdn.learn.example/ad.jpg"
"#,
    )
    .expect("a valid catalog")
}
