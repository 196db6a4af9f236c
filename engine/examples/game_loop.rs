//! A game-loop host: ticks the engine at a fixed rate on one thread,
//! submitting synthetic requests from the generator each tick, and prints
//! the engine's stats once a second.
//!
//! ```sh
//! cargo run --release -p cx-engine --example game_loop -- [SECONDS] [TICKS_PER_S] [REQUESTS_PER_TICK]
//! ```
//! Defaults: 3 seconds, 1000 ticks per second, 16 requests per tick.

use cx_datasets::{Generator, SynthConfig};
use cx_engine::{Engine, EngineStats};
use cx_features::RequestContext;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn arg(n: usize, default: u64) -> anyhow::Result<u64> {
    match std::env::args().nth(n) {
        Some(s) => Ok(s.parse()?),
        None => Ok(default),
    }
}

fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn main() -> anyhow::Result<()> {
    let seconds = arg(1, 3)?;
    let ticks_per_s = arg(2, 1000)?.max(1);
    let per_tick = arg(3, 16)? as usize;
    let mut engine = Engine::builder().seed(42).build()?;
    let mut generator = Generator::new(SynthConfig::default(), 7)?;
    // The host owns request construction; build a pool up front so the
    // loop measures the engine, not the generator.
    let pool: Vec<RequestContext> = (0..8192)
        .map(|_| RequestContext {
            timestamp: 0,
            ..generator.next_row().to_context()
        })
        .collect();
    println!(
        "game loop: {seconds} s at {ticks_per_s} ticks/s, {per_tick} requests per tick, model {} ({})",
        engine.model().name,
        &engine.model().id[..12]
    );
    let period = Duration::from_nanos(1_000_000_000 / ticks_per_s);
    let start = Instant::now();
    let mut next_tick = start;
    let mut next_report = start + Duration::from_secs(1);
    let (mut submitted, mut overloaded, mut offers, mut i) = (0u64, 0u64, 0u64, 0usize);
    while start.elapsed() < Duration::from_secs(seconds) {
        for _ in 0..per_tick {
            match engine.submit(pool[i % pool.len()].clone()) {
                Ok(_) => submitted += 1,
                Err(_) => overloaded += 1,
            }
            i += 1;
        }
        engine.tick(unix_ns());
        for decision in engine.drain() {
            offers += u64::from(!decision.offers().is_empty());
        }
        if Instant::now() >= next_report {
            report(&engine.stats(), submitted, overloaded, offers);
            next_report += Duration::from_secs(1);
        }
        next_tick += period;
        if let Some(wait) = next_tick.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    report(&engine.stats(), submitted, overloaded, offers);
    println!("{}", serde_json::to_string_pretty(&engine.stats())?);
    Ok(())
}

fn report(stats: &EngineStats, submitted: u64, overloaded: u64, offers: u64) {
    let us = |stage: &str, f: fn(&cx_engine::StageLatency) -> u64| {
        stats
            .latency_of(stage)
            .map_or(0.0, |l| f(l) as f64 / 1000.0)
    };
    println!(
        "ticks {:>6}  submitted {submitted:>8}  overloaded {overloaded:>5}  decided {:>8}  with offer {offers:>8}  \
         tick p50 {:>6.1} us p99 {:>6.1} us  request p50 {:>6.1} us p99 {:>6.1} us  cache hits {}",
        stats.ticks,
        stats.pipeline.decided,
        us("tick", |l| l.p50_ns),
        us("tick", |l| l.p99_ns),
        us("total", |l| l.p50_ns),
        us("total", |l| l.p99_ns),
        stats.cache.hits,
    );
}
