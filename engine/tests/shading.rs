//! Learned bid shading: an engine bidding on one placement against a
//! synthetic market learns the win rate against price from its win and
//! loss notices and moves its bids from the static rule's price to the one
//! that earns more surplus, `(value - price paid)` over the auctions won,
//! in a first-price auction (the winner pays its bid, as most exchanges
//! run OpenRTB 2.6 auctions today; under second price, bidding the value is
//! already best and shading only loses auctions).

mod common;

use common::T0_NS;
use cx_engine::domain::feedback::{id_key, Event, EventKind};
use cx_engine::domain::store::{DecisionLog, SharedStores};
use cx_engine::openrtb::BidIds;
use cx_engine::systems::resources::Counters;
use cx_engine::wire::openrtb::parse_request;
use cx_engine::{Engine, EngineBuilder, EngineConfig};
use std::sync::Arc;

/// The competing bid of auction `k`: uniform on 0..0.25 CPM, about half
/// the static rule's bid for these requests (0.48 CPM with the bundled
/// model), so the static price overpays.
fn competing_cpm(k: u64) -> f64 {
    let h = cx_engine::domain::store::mix64(k ^ 0x5eed);
    (h % 250) as f64 / 1000.0
}

fn builder(learned: bool, worker: u32) -> EngineBuilder {
    let mut config = EngineConfig::default();
    config.decide.learned_shading = learned;
    Engine::builder()
        .catalog(common::budgeted_catalog())
        .config(config)
        .bid_ids(BidIds::new(0, worker, 1_767_225_600_000))
}

fn engine(learned: bool) -> Engine {
    builder(learned, 0).build().expect("engine")
}

/// Runs `n` first-price auctions; returns the bids of the last `tail` and
/// the surplus won over them (value less the bid paid, CPM).
fn run(engine: &mut Engine, n: u64, tail: u64) -> (Vec<f64>, f64) {
    run_notified(engine, None, n, tail)
}

/// [`run`], with the notices taken by `notified` when given (another
/// worker of the same server) instead of by the engine that bid.
fn run_notified(
    engine: &mut Engine,
    mut notified: Option<&mut Engine>,
    n: u64,
    tail: u64,
) -> (Vec<f64>, f64) {
    let mut bids = Vec::new();
    let mut surplus = 0.0;
    for k in 0..n {
        let now = T0_NS + k * 1_000_000;
        let json = format!(
            r#"{{"id":"r{k}","imp":[{{"id":"1","banner":{{"w":300,"h":250}}}}],
               "site":{{"id":"news"}},"device":{{"devicetype":2,"geo":{{"country":"USA"}}}},
               "user":{{"id":"u{k}"}}}}"#
        );
        let request = parse_request(json.as_bytes()).expect("valid");
        let outcome = engine.decide_openrtb(&request, now).expect("decides");
        let Some(bid) = outcome.response.seatbid.first().and_then(|s| s.bid.first()) else {
            continue;
        };
        let value = outcome.impressions[0]
            .decision
            .as_ref()
            .and_then(|d| d.offers().first())
            .map(|o| 40.0 * f64::from(o.p_click))
            .expect("a decided offer");
        let competing = competing_cpm(k);
        let won = bid.price > competing;
        let mut event = Event::new(
            if won { EventKind::Win } else { EventKind::Loss },
            id_key(&bid.id),
        );
        if won {
            event.amount = bid.price;
        }
        match notified.as_deref_mut() {
            Some(other) => other.feedback_event(&event, now),
            None => engine.feedback_event(&event, now),
        }
        .expect("taken");
        if k >= n - tail {
            bids.push(bid.price);
            if won {
                surplus += value - bid.price;
            }
        }
    }
    (bids, surplus)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[test]
fn learned_shading_bids_less_where_less_wins_as_often() {
    let (static_bids, static_surplus) = run(&mut engine(false), 3_000, 1_000);
    let mut learning = engine(true);
    let (learned_bids, learned_surplus) = run(&mut learning, 3_000, 1_000);
    let counters = learning.world().resource::<Counters>();
    eprintln!(
        "median bid: static {:.3}, learned {:.3}; surplus over the last 1000: static {static_surplus:.1}, learned {learned_surplus:.1}; priced learned {}, explored {}",
        median(static_bids.clone()),
        median(learned_bids.clone()),
        counters.priced_learned,
        counters.priced_explored
    );
    assert!(
        counters.priced_learned > 1_000,
        "{}",
        counters.priced_learned
    );
    assert!(counters.priced_explored > 0);
    assert!(
        median(learned_bids) < median(static_bids),
        "bids moved down"
    );
    assert!(
        learned_surplus > static_surplus * 1.1,
        "learned {learned_surplus} against static {static_surplus}"
    );
}

/// Notices taken by one worker teach the pricing of another: the win rates
/// are one store for a server's engines. Here one engine bids and the
/// other takes every notice.
#[test]
fn a_worker_prices_from_notices_another_worker_took() {
    let config = EngineConfig::default();
    let catalog = common::budgeted_catalog();
    let stores = SharedStores::new(&catalog, config.frequency_config(), config.lease_config())
        .expect("stores");
    let log = Arc::new(DecisionLog::new(config.feedback.log_config().expect("log")).expect("log"));
    let build = |worker| {
        builder(true, worker)
            .shared_stores(stores.clone())
            .decision_log(log.clone())
            .build()
            .expect("engine")
    };
    let (mut bidder, mut notified) = (build(0), build(1));
    let (static_bids, _) = run(&mut engine(false), 3_000, 1_000);
    let (learned_bids, _) = run_notified(&mut bidder, Some(&mut notified), 3_000, 1_000);
    let counters = bidder.world().resource::<Counters>();
    eprintln!(
        "median bid: static {:.3}, learned from the other worker's notices {:.3}; priced learned {}",
        median(static_bids.clone()),
        median(learned_bids.clone()),
        counters.priced_learned
    );
    assert!(
        counters.priced_learned > 1_000,
        "{}",
        counters.priced_learned
    );
    assert!(
        median(learned_bids) < median(static_bids),
        "bids moved down"
    );
}
