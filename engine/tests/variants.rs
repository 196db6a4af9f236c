//! Creative variants (DCO): the bid's `crid` and markup come from the
//! variant the engine chose, and Thompson sampling on the variants' own
//! clicks sends most impressions to the one clicked twice as often.

use cx_engine::domain::catalog::Catalog;
use cx_engine::domain::feedback::{id_key, Accepted, Event, EventKind};
use cx_engine::domain::store::{DecisionLog, SharedStores, VariantHub, VariantStats};
use cx_engine::openrtb::BidIds;
use cx_engine::wire::openrtb::parse_request;
use cx_engine::{Engine, EngineBuilder, EngineConfig};
use std::sync::Arc;

const T0_NS: u64 = 1_767_225_600_000_000_000;

fn catalog() -> Catalog {
    Catalog::from_toml_str(
        r#"
[[offer]]
id = 1000
name = "Courses"
conversion_rate = 0.02
revenue = 2.0
max_bid_cpm = 8.0
creative_id = "cr-a"

[offer.creative]
click_url = "https://learn.example/go"
image_url = "https://cdn.learn.example/a.jpg"
title = "Variant A"

[[offer.variants]]
creative_id = "cr-b"
title = "Variant B"

[[offer.variants]]
creative_id = "cr-c"
title = "Variant C"
"#,
    )
    .expect("a valid catalog")
}

fn builder(worker: u32) -> EngineBuilder {
    Engine::builder()
        .catalog(catalog())
        .config(EngineConfig::default())
        .bid_ids(BidIds::new(0, worker, 1_767_225_600_000))
}

fn engine() -> Engine {
    builder(0).build().expect("engine")
}

/// Two engines as a server's workers: one decision log, and stores shared
/// as `cx serve` shares them (variants' counts included).
fn workers() -> (Engine, Engine) {
    let config = EngineConfig::default();
    let catalog = catalog();
    let variants = VariantStats::new(&catalog, config.decide.posterior_half_life_s);
    let stores = SharedStores::new(&catalog, config.frequency_config(), config.lease_config())
        .expect("stores")
        .share_variants(Arc::new(VariantHub::new(variants)));
    let log = Arc::new(DecisionLog::new(config.feedback.log_config().expect("log")).expect("log"));
    let build = |worker| {
        builder(worker)
            .shared_stores(stores.clone())
            .decision_log(log.clone())
            .build()
            .expect("engine")
    };
    (build(0), build(1))
}

/// The variant of a bid, by its crid.
fn variant_of(crid: &str) -> usize {
    match crid {
        "cr-a" => 0,
        "cr-b" => 1,
        "cr-c" => 2,
        other => panic!("crid {other}"),
    }
}

/// Whether round `k`'s impression of variant `v` is clicked: B 10%, A and
/// C 5% (deterministic by round).
fn clicked(v: usize, k: u64) -> bool {
    if v == 1 {
        k.is_multiple_of(10)
    } else {
        k.is_multiple_of(20)
    }
}

/// Sends round `k`'s impression of bid `id` (variant `v`) to `engine`, and
/// its click when [`clicked`]; each must be applied.
fn send_outcome(engine: &mut Engine, id: &str, v: usize, k: u64, now: u64) {
    let key = id_key(id);
    let impression = Event::new(EventKind::Impression, key);
    assert_eq!(
        engine.feedback_event(&impression, now),
        Ok(Accepted::Applied)
    );
    if clicked(v, k) {
        let click = Event::new(EventKind::Click, key);
        assert_eq!(engine.feedback_event(&click, now), Ok(Accepted::Applied));
    }
}

/// A native request (the title shows in the markup) by user `user`: the
/// bid's id, crid and markup.
fn bid(engine: &mut Engine, user: u64, now_ns: u64) -> (String, String, String) {
    let json = format!(
        r#"{{"id":"r{user}","imp":[{{"id":"1","banner":{{"w":300,"h":250}}}}],
           "site":{{"id":"s"}},"device":{{"devicetype":2,"geo":{{"country":"USA"}}}},
           "user":{{"id":"u{user}"}}}}"#
    );
    let request = parse_request(json.as_bytes()).expect("valid");
    let outcome = engine.decide_openrtb(&request, now_ns).expect("decides");
    let bid = &outcome.response.seatbid[0].bid[0];
    (
        bid.id.clone(),
        bid.crid.clone().expect("a crid"),
        bid.adm.clone().expect("markup"),
    )
}

#[test]
fn the_variant_clicked_twice_as_often_gets_most_impressions() {
    let mut engine = engine();
    let mut shown = [0u32; 3];
    let mut late = [0u32; 3];
    let rounds = 3_000u64;
    for k in 0..rounds {
        let now = T0_NS + k * 1_000_000;
        let (id, crid, markup) = bid(&mut engine, k, now);
        let v = variant_of(&crid);
        // The markup is the chosen variant's.
        let title = ["Variant A", "Variant B", "Variant C"][v];
        assert!(markup.contains(title), "{crid}: {markup}");
        shown[v] += 1;
        if k >= rounds - 1_000 {
            late[v] += 1;
        }
        send_outcome(&mut engine, &id, v, k, now);
    }
    eprintln!("impressions per variant: all {shown:?}, last 1000 {late:?}");
    assert!(
        shown.iter().all(|&n| n > 0),
        "every variant was tried: {shown:?}"
    );
    assert!(
        late[1] > 600,
        "B got {} of the last 1000 impressions ({late:?}; all: {shown:?})",
        late[1]
    );
}

/// Feedback taken by one worker teaches the variant choice of another: a
/// server's connections land on any worker, so engines that learned apart
/// would each learn from a random share of their own decisions' clicks.
/// Here one engine decides and the other takes every event.
#[test]
fn a_worker_learns_variants_from_feedback_another_worker_took() {
    let (mut decider, mut notified) = workers();
    let mut late = [0u32; 3];
    let rounds = 3_000u64;
    for k in 0..rounds {
        let now = T0_NS + k * 1_000_000;
        let (id, crid, _) = bid(&mut decider, k, now);
        let v = variant_of(&crid);
        if k >= rounds - 1_000 {
            late[v] += 1;
        }
        send_outcome(&mut notified, &id, v, k, now);
    }
    eprintln!("the deciding worker's last 1000 impressions per variant: {late:?}");
    assert!(
        late[1] > 600,
        "B got {} of the last 1000 impressions ({late:?})",
        late[1]
    );
}
