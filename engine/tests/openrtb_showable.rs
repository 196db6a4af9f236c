//! An offer the impression cannot show is not eligible: the decide step
//! leaves it out before ranking and charging, so the next offer that can
//! be shown gets the bid, and the first one's budget and frequency cap
//! stay untouched ("charged but not bid" before: the top offer was
//! charged, then `build_response` found no creative for it, or `bcat` or
//! `battr` blocking it, and answered a no-bid).

use cx_engine::domain::catalog::Catalog;
use cx_engine::domain::pipeline::{Decision, NoBidCause};
use cx_engine::domain::store::{BudgetBackend, Budgets, FrequencyBackend, FrequencyCaps};
use cx_engine::features::RequestContext;
use cx_engine::openrtb::{unshown_top_offers, OpenRtbOutcome};
use cx_engine::systems::logic::{user_hash, NS_PER_S};
use cx_engine::wire::openrtb::{BidRequest, BidResponse};
use cx_engine::{Engine, EngineConfig};

const T0_NS: u64 = 1_767_225_600_000_000_000;
/// Offer A: ranked first by its boost.
const A: u64 = 1000;
/// Offer B: ranked second.
const B: u64 = 1001;

/// A creative with a banner (image), native assets and no video.
const BANNER_ONLY: &str = r#"
click_url = "https://a.example/go"
image_url = "https://cdn.a.example/ad.jpg"
title = "A"
"#;

/// A creative with an inline video file of `media_type` and nothing else.
fn video_only(media_type: &str) -> String {
    format!(
        r#"
click_url = "https://b.example/go"
impression_url = "https://t.b.example/i"
media_url = "https://cdn.b.example/ad.file"
media_type = "{media_type}"
media_width = 640
media_height = 360
duration_s = 15
"#
    )
}

/// A creative that serves every kind: banner, an mp4 video, native.
fn every_kind() -> String {
    format!(
        "{BANNER_ONLY}{}",
        video_only("video/mp4").replace("click_url = \"https://b.example/go\"\n", "")
    )
}

/// Offers A and B (columns of the bundled model), each capped at 5
/// impressions a day with a budget of 100; `a` and `b` are extra keys of
/// each, then its `[offer.creative]` body (none when empty).
fn catalog(a: (&str, &str), b: (&str, &str)) -> Catalog {
    let offer = |id: u64, boost: f32, (keys, creative): (&str, &str)| {
        let table = if creative.is_empty() {
            ""
        } else {
            "[offer.creative]"
        };
        format!(
            r#"
[[offer]]
id = {id}
name = "offer {id}"
conversion_rate = 0.02
revenue = 2.0
max_bid_cpm = 8.0
boost = {boost}
daily_budget = 100.0
frequency_cap = {{ impressions = 5, window_s = 86400 }}
adomain = ["o{id}.example"]
creative_id = "cr-{id}"
{keys}
{table}
{creative}
"#
        )
    };
    let text = format!("{}{}", offer(A, 1.0, a), offer(B, 0.0, b));
    Catalog::from_toml_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// An engine that ranks by boost (A above B whatever the model says).
fn engine(catalog: Catalog) -> Engine {
    let mut config = EngineConfig::default();
    config.decide.boost_weight = 100.0;
    config.decide.exploration = cx_engine::systems::Exploration::None;
    Engine::builder()
        .catalog(catalog)
        .config(config)
        .build()
        .expect("engine")
}

/// A site request from a desktop in the USA by user `u-1`, with `imp`.
fn request(imp: &str, extra: &str) -> BidRequest {
    let json = format!(
        r#"{{"id":"r1","imp":[{imp}],
           "site":{{"id":"s1","domain":"news.example","page":"https://news.example/a"}},
           "device":{{"devicetype":2,"os":"Windows","geo":{{"country":"USA"}}}},
           "user":{{"id":"u-1"}}{extra}}}"#
    );
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}\n{json}"))
}

fn decide(engine: &mut Engine, request: &BidRequest) -> (OpenRtbOutcome, Decision) {
    let outcome = engine.decide_openrtb(request, T0_NS).expect("decides");
    outcome
        .response
        .check(request)
        .expect("a well-formed response");
    let decision = outcome.impressions[0].decision.expect("decided");
    (outcome, decision)
}

/// What offer `id` was charged: budget spent today, impressions of `u-1`.
fn charged(engine: &Engine, id: u64) -> (f64, u32) {
    let catalog = engine.catalog();
    let i = catalog.index_of(id).expect("in the catalog");
    let window_ns = u64::from(catalog.frequency_cap(i).expect("capped").window_s) * NS_PER_S;
    let world = engine.world();
    let spent = world.resource::<BudgetBackend>().spent(i, T0_NS);
    let seen = world
        .resource::<FrequencyBackend>()
        .user_entries(user_hash("u-1"))
        .count(id, T0_NS, window_ns);
    (spent, seen)
}

/// The response's only bid's offer id and mtype.
fn bid_offer(response: &BidResponse) -> (u64, Option<i64>) {
    assert_eq!(response.seatbid.len(), 1, "a bid: {response:?}");
    let bid = &response.seatbid[0].bid[0];
    (bid.adid.as_deref().unwrap().parse().unwrap(), bid.mtype)
}

/// B got the bid and was charged once; A, excluded by `cause`, was not.
fn b_instead_of_a(engine: &Engine, outcome: &OpenRtbOutcome, d: &Decision, cause: NoBidCause) {
    assert_eq!(d.offers()[0].offer_id, B, "{d:?}");
    assert_eq!(d.excluded[cause.index()], 1, "A excluded by {cause}: {d:?}");
    assert_eq!(bid_offer(&outcome.response).0, B);
    assert_eq!(
        charged(engine, A),
        (0.0, 0),
        "A is neither spent nor counted"
    );
    let (spent, seen) = charged(engine, B);
    assert!(spent > 0.0 && seen == 1, "B is charged: {spent} {seen}");
    assert_eq!(unshown_top_offers(), 0);
}

#[test]
fn an_offer_without_a_creative_for_the_kind_gives_way_to_the_next() {
    let video = video_only("video/mp4");
    let mut engine = engine(catalog(("", BANNER_ONLY), ("", &video)));
    let imp = r#"{"id":"1","video":{"mimes":["video/mp4"],"maxduration":30}}"#;
    let (outcome, d) = decide(&mut engine, &request(imp, ""));
    b_instead_of_a(&engine, &outcome, &d, NoBidCause::NoCreative);
    assert_eq!(bid_offer(&outcome.response).1, Some(2));
}

#[test]
fn a_video_file_the_player_cannot_take_gives_way_to_the_next() {
    let (webm, mp4) = (video_only("video/webm"), video_only("video/mp4"));
    let mut engine = engine(catalog(("", &webm), ("", &mp4)));
    let imp = r#"{"id":"1","video":{"mimes":["video/MP4","video/ogg"]}}"#;
    let (outcome, d) = decide(&mut engine, &request(imp, ""));
    b_instead_of_a(&engine, &outcome, &d, NoBidCause::NoCreative);
}

#[test]
fn a_native_request_the_creative_cannot_fill_gives_way_to_the_next() {
    // A has no call to action; B has one (and a title).
    let b_native = r#"
click_url = "https://b.example/go"
title = "B"
cta = "Go"
"#;
    let mut engine = engine(catalog(("", BANNER_ONLY), ("", b_native)));
    let native =
        r#"{"assets":[{"id":1,"title":{"len":20}},{"id":2,"required":1,"data":{"type":12}}]}"#;
    let imp = format!(
        r#"{{"id":"1","native":{{"request":{}}}}}"#,
        serde_json::to_string(native).unwrap()
    );
    let (outcome, d) = decide(&mut engine, &request(&imp, ""));
    b_instead_of_a(&engine, &outcome, &d, NoBidCause::NoCreative);
    assert_eq!(bid_offer(&outcome.response).1, Some(4));
}

#[test]
fn a_blocked_category_gives_way_to_the_next() {
    let all = every_kind();
    let a = (r#"categories = ["IAB19-6"]"#, all.as_str());
    let b = (r#"categories = ["IAB5"]"#, all.as_str());
    let mut engine = engine(catalog(a, b));
    let imp = r#"{"id":"1","banner":{"w":300,"h":250}}"#;
    // IAB19 covers A's IAB19-6.
    let (outcome, d) = decide(&mut engine, &request(imp, r#","bcat":["IAB1","IAB19"]"#));
    b_instead_of_a(&engine, &outcome, &d, NoBidCause::BlockedCategory);
}

#[test]
fn a_blocked_attribute_gives_way_to_the_next() {
    let all = every_kind();
    let mut engine = engine(catalog(("attr = [6]", BANNER_ONLY), ("attr = [12]", &all)));
    let imp = r#"{"id":"1","banner":{"w":300,"h":250,"battr":[6,7]}}"#;
    let (outcome, d) = decide(&mut engine, &request(imp, ""));
    b_instead_of_a(&engine, &outcome, &d, NoBidCause::BlockedAttribute);
    assert_eq!(bid_offer(&outcome.response).1, Some(1));
}

#[test]
fn a_kind_battr_does_not_block_is_still_served() {
    // A's banner is blocked, its video is not: A keeps its rank.
    let all = every_kind();
    let mut engine = engine(catalog(("attr = [6]", &all), ("", &all)));
    let imp = r#"{"id":"1","banner":{"w":300,"h":250,"battr":[6]},
                  "video":{"mimes":["video/mp4"],"battr":[1]}}"#;
    let (outcome, d) = decide(&mut engine, &request(imp, ""));
    assert_eq!(d.offers()[0].offer_id, A);
    assert_eq!(bid_offer(&outcome.response), (A, Some(2)));
}

#[test]
fn an_impression_no_offer_can_show_charges_nothing() {
    let all = every_kind();
    let mut engine = engine(catalog(("", &all), ("", &all)));
    let imp = r#"{"id":"1","audio":{"mimes":["audio/mp4"]}}"#;
    let (outcome, d) = decide(&mut engine, &request(imp, ""));
    assert!(d.offers().is_empty());
    assert_eq!(d.no_bid, Some(NoBidCause::NoCreative));
    assert_eq!(d.excluded[NoBidCause::NoCreative.index()], 2);
    assert!(outcome.response.is_no_bid());
    let reason = &outcome.response.ext.as_ref().unwrap()["reason"];
    assert_eq!(
        (outcome.response.nbr, reason.as_str()),
        (Some(0), Some("no_creative"))
    );
    assert_eq!(charged(&engine, A), (0.0, 0));
    assert_eq!(charged(&engine, B), (0.0, 0));
}

#[test]
fn requests_that_are_not_ad_slots_need_no_creative() {
    // A has no creative at all; a context submitted directly (as the
    // binary protocol's score_context does) still chooses it.
    let mut engine = engine(catalog(("", ""), ("", BANNER_ONLY)));
    assert!(engine.catalog().creative(0).is_none());
    let ctx = RequestContext {
        user_id: "u-1".into(),
        country: "USA".into(),
        ..RequestContext::default()
    };
    let ticket = engine.submit(ctx).expect("submitted");
    engine.run_until_decided(T0_NS);
    let d = engine.poll().expect("decided");
    assert_eq!(d.ticket, ticket);
    assert_eq!(d.offers()[0].offer_id, A);
    assert_eq!(d.excluded, [0; NoBidCause::COUNT]);
}

#[test]
fn a_bid_whose_markup_fails_is_cut_from_the_written_answer() {
    // A host's decision made without the impression's rules: imp 1 (video)
    // is handed imp 2's decision for A, which has no video. Its bid's
    // members before the markup are already written into the answer when
    // the markup fails, so they must be cut off again; imp 2 still bids.
    let video = video_only("video/mp4");
    let mut engine = engine(catalog(("", BANNER_ONLY), ("", &video)));
    let imps = r#"{"id":"1","video":{"mimes":["video/mp4"],"maxduration":30}},
                  {"id":"2","banner":{"w":300,"h":250}}"#;
    let request = request(imps, "");
    let outcome = engine.decide_openrtb(&request, T0_NS).expect("decides");
    let banner = outcome.impressions[1].clone();
    assert_eq!(banner.decision.expect("decided").offers()[0].offer_id, A);
    let mut misplaced = banner.clone();
    misplaced.imp_id = "1".into();
    for impressions in [vec![misplaced.clone(), banner], vec![misplaced]] {
        let built =
            cx_engine::openrtb::build_response(&request, &impressions, &mut engine.bidder());
        let mut written = Vec::new();
        let mut buffers = cx_engine::openrtb::ResponseBuffers::default();
        engine.write_bid_response(&request, &impressions, &mut buffers, &mut written);
        let written: serde_json::Value = serde_json::from_slice(&written)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&written)));
        // Both as text parsed back (serde_json's float parse is not exact).
        let built_json = serde_json::to_vec(&built).expect("JSON");
        let as_built: serde_json::Value = serde_json::from_slice(&built_json).expect("JSON");
        assert_eq!(written, as_built);
        if impressions.len() == 2 {
            let bids = &built.seatbid[0].bid;
            assert_eq!((bids.len(), bids[0].impid.as_str()), (1, "2"));
        } else {
            assert!(built.is_no_bid());
            assert_eq!(written["ext"]["reason"], "no_creative");
        }
    }
    assert_eq!(
        unshown_top_offers(),
        0,
        "the decision skipped imp 1's rules"
    );
}
