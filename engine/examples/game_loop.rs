//! A game-loop host with its own bevy_ecs World: the pipeline is installed
//! into the host's World and Schedule, next to a host system that runs
//! between the engine's decide and respond stages and reads every decision
//! of the tick (here it tallies offers and bids per offer, the way a game
//! would place the chosen creatives). The loop ticks at a fixed rate on one
//! thread, submitting synthetic requests from the generator each tick, and
//! prints what it counted once a second.
//!
//! ```sh
//! cargo run --release -p cx-engine --example game_loop -- [SECONDS] [TICKS_PER_S] [REQUESTS_PER_TICK]
//! ```
//! Defaults: 3 seconds, 1000 ticks per second, 16 requests per tick.

use bevy_ecs::prelude::*;
use cx_datasets::{Generator, SynthConfig};
use cx_engine::domain::pipeline::Stage;
use cx_engine::features::RequestContext;
use cx_engine::systems::resources::{Counters, TickClock};
use cx_engine::systems::systems::DecidedRequests;
use cx_engine::Engine;
use std::collections::BTreeMap;
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

/// The host's own state: what its system saw of the engine's decisions.
#[derive(Resource, Default)]
struct Placements {
    decisions: u64,
    with_offer: u64,
    /// Per offer id: times it won, and its bids summed (CPM).
    per_offer: BTreeMap<u64, (u64, f64)>,
}

/// The host system, between the engine's decide and respond stages: every
/// decision of this tick, before it goes to the egress.
fn place_offers(decided: DecidedRequests, mut placements: ResMut<Placements>) {
    for (_request, decision) in decided.iter() {
        placements.decisions += 1;
        if let Some(top) = decision.offers().first() {
            placements.with_offer += 1;
            let entry = placements.per_offer.entry(top.offer_id).or_default();
            entry.0 += 1;
            entry.1 += top.bid_cpm;
        }
    }
}

fn main() -> anyhow::Result<()> {
    let seconds = arg(1, 3)?;
    let ticks_per_s = arg(2, 1000)?.max(1);
    let per_tick = arg(3, 16)? as usize;

    let mut world = World::new();
    let mut schedule = Schedule::default();
    let mut port = Engine::builder()
        .seed(42)
        .install(&mut world, &mut schedule)?;
    world.init_resource::<Placements>();
    schedule.add_systems(place_offers.after(Stage::Decide).before(Stage::Respond));

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
        "game loop: {seconds} s at {ticks_per_s} ticks/s, {per_tick} requests per tick, \
         the host's own World with a system between decide and respond"
    );
    let period = Duration::from_nanos(1_000_000_000 / ticks_per_s);
    let start = Instant::now();
    let mut next_tick = start;
    let mut next_report = start + Duration::from_secs(1);
    let (mut submitted, mut overloaded, mut polled, mut i) = (0u64, 0u64, 0u64, 0usize);
    let mut tick_us = Vec::new();
    while start.elapsed() < Duration::from_secs(seconds) {
        for _ in 0..per_tick {
            match port.submit(pool[i % pool.len()].clone().into()) {
                Ok(_) => submitted += 1,
                Err(_) => overloaded += 1,
            }
            i += 1;
        }
        let began = Instant::now();
        world.resource_mut::<TickClock>().now_ns = unix_ns();
        schedule.run(&mut world);
        tick_us.push(began.elapsed().as_secs_f64() * 1e6);
        while port.poll().is_some() {
            polled += 1;
        }
        if Instant::now() >= next_report {
            report(&world, submitted, overloaded, polled, &mut tick_us);
            next_report += Duration::from_secs(1);
        }
        next_tick += period;
        if let Some(wait) = next_tick.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    report(&world, submitted, overloaded, polled, &mut tick_us);
    let placements = world.resource::<Placements>();
    println!("offers placed by the host system (offer id: wins, mean bid CPM):");
    for (offer, (wins, bids)) in &placements.per_offer {
        println!("  {offer}: {wins}, {:.3}", bids / *wins as f64);
    }
    anyhow::ensure!(
        placements.decisions == world.resource::<Counters>().decided,
        "the host system saw every decision the engine emitted"
    );
    Ok(())
}

fn report(world: &World, submitted: u64, overloaded: u64, polled: u64, tick_us: &mut Vec<f64>) {
    tick_us.sort_by(f64::total_cmp);
    let at = |q: f64| {
        tick_us
            .get(((tick_us.len() as f64 - 1.0) * q) as usize)
            .copied()
    };
    let placements = world.resource::<Placements>();
    println!(
        "submitted {submitted:>8}  overloaded {overloaded:>5}  decided {:>8}  polled {polled:>8}  \
         seen by the host {:>8} ({} with an offer)  tick p50 {:>6.1} us p99 {:>6.1} us",
        world.resource::<Counters>().decided,
        placements.decisions,
        placements.with_offer,
        at(0.5).unwrap_or(0.0),
        at(0.99).unwrap_or(0.0),
    );
    tick_us.clear();
}
