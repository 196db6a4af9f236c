//! Bids an exchange can use: markup from the catalog's creatives by the
//! impression's kind, the format's size, `mtype`, `cat`, `attr`, the notice
//! URLs, unique bid ids, and the OpenRTB 2.6 no-bid reasons.

use cx_engine::domain::catalog::Catalog;
use cx_engine::openrtb::{build_response, BidIds, Bidder, ImpOutcome, NoticeUrls};
use cx_engine::wire::openrtb::{parse_request, Bid, BidRequest, BidResponse};
use cx_engine::{Engine, EngineConfig};
use serde_json::Value;
use std::collections::HashSet;

const T0_NS: u64 = 1_767_225_600_000_000_000;
const BASE: &str = "http://127.0.0.1:8080";

/// One offer of the bundled model's (1000), with a creative that serves
/// every kind; `extra` goes into the offer's keys.
fn catalog(extra: &str) -> Catalog {
    Catalog::from_toml_str(&format!(
        r#"
[[offer]]
id = 1000
name = "Courses"
conversion_rate = 0.02
revenue = 2.0
max_bid_cpm = 8.0
categories = ["IAB5", "IAB19-6"]
adomain = ["learn.example"]
creative_id = "cr-1000"
attr = [12]
{extra}

[offer.creative]
click_url = "https://learn.example/go?a=1&b=<2>"
image_url = "https://cdn.learn.example/ad.jpg"
icon_url = "https://cdn.learn.example/icon.png"
title = "Learn \"data\" & more"
description = "Evening courses."
sponsor = "Learn"
impression_url = "https://t.learn.example/i?p=${{AUCTION_PRICE}}"
media_url = "https://cdn.learn.example/ad.mp4"
media_width = 1280
media_height = 720
duration_s = 20
"#
    ))
    .expect("a valid catalog")
}

fn engine_with(catalog: Catalog, base: &str) -> Engine {
    let mut config = EngineConfig::default();
    config.openrtb.notice_base_url = base.into();
    config.decide.exploration = cx_engine::systems::Exploration::None;
    Engine::builder()
        .catalog(catalog)
        .config(config)
        .bid_ids(BidIds::new(3, 1, 1_767_225_600_000))
        .build()
        .expect("engine")
}

fn request(imp: &str, extra: &str) -> BidRequest {
    request_as("u-1", imp, extra)
}

/// A site request from a desktop in the USA, by user `user`.
fn request_as(user: &str, imp: &str, extra: &str) -> BidRequest {
    let json = format!(
        r#"{{"id":"r1","imp":[{imp}],
           "site":{{"id":"s1","domain":"news.example","page":"https://news.example/a"}},
           "device":{{"devicetype":2,"os":"Windows","geo":{{"country":"USA"}}}},
           "user":{{"id":"{user}"}}{extra}}}"#
    );
    parse_request(json.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{json}"))
}

fn decide(engine: &mut Engine, request: &BidRequest) -> BidResponse {
    let outcome = engine.decide_openrtb(request, T0_NS).expect("decides");
    outcome
        .response
        .check(request)
        .expect("a well-formed response");
    outcome.response
}

fn only_bid(response: &BidResponse) -> &Bid {
    assert_eq!(response.seatbid.len(), 1, "{response:?}");
    assert_eq!(response.seatbid[0].bid.len(), 1, "{response:?}");
    &response.seatbid[0].bid[0]
}

fn reason(response: &BidResponse) -> (Option<u32>, String) {
    assert!(response.is_no_bid(), "{response:?}");
    let label = response.ext.as_ref().expect("ext")["reason"]
        .as_str()
        .expect("a reason")
        .to_string();
    (response.nbr, label)
}

/// Checks that `xml` is well formed as far as tags and entities go: every
/// tag closed in order, every `&` an entity.
fn assert_well_formed(xml: &str) {
    let mut stack: Vec<&str> = Vec::new();
    let mut rest = xml;
    while let Some(open) = rest.find('<') {
        assert_entities(&rest[..open]);
        let close = rest[open..].find('>').expect("a closed tag") + open;
        let tag = &rest[open + 1..close];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop(), Some(name), "in {xml}");
        } else if !tag.ends_with('/') && !tag.starts_with('?') {
            let name = tag.split_whitespace().next().expect("a name");
            stack.push(name);
        }
        assert_entities(tag);
        rest = &rest[close + 1..];
    }
    assert!(stack.is_empty(), "unclosed {stack:?} in {xml}");
}

fn assert_entities(text: &str) {
    for (k, _) in text.match_indices('&') {
        let entity = &text[k..text[k..].find(';').map_or(text.len(), |e| k + e + 1)];
        assert!(
            ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"].contains(&entity),
            "a bare `&` in {text}"
        );
    }
}

#[test]
fn a_banner_bid_carries_everything_an_exchange_needs() {
    let mut engine = engine_with(catalog(""), BASE);
    let request = request(
        r#"{"id":"i1","bidfloor":0.01,"banner":{"format":[{"w":728,"h":90},{"w":300,"h":250}]}}"#,
        "",
    );
    let response = decide(&mut engine, &request);
    let bid = only_bid(&response);
    assert_eq!((bid.w, bid.h), (Some(728), Some(90)), "the first format");
    assert_eq!(bid.mtype, Some(1));
    assert_eq!(bid.cat, ["IAB5", "IAB19-6"]);
    assert_eq!(bid.attr, [12]);
    assert_eq!(bid.adomain, ["learn.example"]);
    assert_eq!(bid.crid.as_deref(), Some("cr-1000"));
    assert_eq!(bid.cid.as_deref(), Some("1000"));
    let adm = bid.adm.as_deref().expect("markup");
    assert!(
        adm.contains("href=\"https://learn.example/go?a=1&amp;b=&lt;2&gt;\""),
        "{adm}"
    );
    assert!(adm.contains("width=\"728\" height=\"90\""), "{adm}");
    assert!(
        adm.contains("alt=\"Learn &quot;data&quot; &amp; more\""),
        "{adm}"
    );
    assert!(
        adm.contains("https://t.learn.example/i?p=${AUCTION_PRICE}"),
        "{adm}"
    );
    assert_well_formed(adm);
    let query = "bid=${AUCTION_BID_ID}&imp=${AUCTION_IMP_ID}&auction=${AUCTION_ID}\
                 &price=${AUCTION_PRICE}&cur=${AUCTION_CURRENCY}&offer=1000";
    assert_eq!(
        bid.nurl.as_deref(),
        Some(format!("{BASE}/notice/win?{query}").as_str())
    );
    assert_eq!(
        bid.burl.as_deref(),
        Some(format!("{BASE}/notice/bill?{query}").as_str())
    );
    assert_eq!(
        bid.lurl.as_deref(),
        Some(format!("{BASE}/notice/loss?{query}&loss=${{AUCTION_LOSS}}").as_str())
    );
    let parts = BidIds::parse(&bid.id).expect("an id from BidIds");
    assert_eq!((parts.node, parts.worker), (3, 1));
    assert_eq!(parts.epoch_ms, 1_767_225_600_000);
    assert_eq!(engine.bid_ids().issued(), 1);
    // The macros survive serialisation literally.
    let text = serde_json::to_string(&response).unwrap();
    assert!(text.contains("price=${AUCTION_PRICE}"), "{text}");
}

#[test]
fn the_format_is_one_the_offer_has_a_size_for() {
    let mut engine = engine_with(catalog(r#"sizes = ["728x90", "300x250"]"#), BASE);
    // Eligibility reads the first size (300x250); the bid is for it.
    let first = request(
        r#"{"id":"i1","banner":{"format":[{"w":300,"h":250},{"w":728,"h":90}]}}"#,
        "",
    );
    let bid = only_bid(&decide(&mut engine, &first)).clone();
    assert_eq!((bid.w, bid.h), (Some(300), Some(250)));
    // A banner's own size wins over its formats.
    let own = request(
        r#"{"id":"i1","banner":{"w":728,"h":90,"format":[{"w":300,"h":250}]}}"#,
        "",
    );
    let bid = only_bid(&decide(&mut engine, &own)).clone();
    assert_eq!((bid.w, bid.h), (Some(728), Some(90)));
    // A size the offer has no creative for is not bid (placement_size).
    let other = request(r#"{"id":"i1","banner":{"w":320,"h":50}}"#, "");
    assert_eq!(
        reason(&decide(&mut engine, &other)),
        (Some(0), "placement_size".into())
    );
}

#[test]
fn a_video_bid_is_a_vast_4_document() {
    let mut engine = engine_with(catalog(""), BASE);
    let video = r#"{"id":"v1","video":{"mimes":["video/mp4"],"w":640,"h":480,"minduration":5,"maxduration":30}}"#;
    let response = decide(&mut engine, &request(video, ""));
    let bid = only_bid(&response);
    assert_eq!(bid.mtype, Some(2));
    assert_eq!((bid.w, bid.h), (Some(640), Some(480)), "the player's size");
    let adm = bid.adm.as_deref().unwrap();
    assert!(adm.starts_with("<VAST version=\"4.2\">"), "{adm}");
    assert!(adm.contains("<InLine>"), "{adm}");
    assert!(
        adm.contains(&format!("<AdServingId>{}</AdServingId>", bid.id)),
        "the ad serving id is the bid id: {adm}"
    );
    assert!(adm.contains("<Duration>00:00:20</Duration>"), "{adm}");
    assert!(
        adm.contains("type=\"video/mp4\" width=\"1280\" height=\"720\""),
        "{adm}"
    );
    assert_well_formed(adm);

    // A file the player cannot take is not offered: no other creative, no bid.
    let webm = video.replace("video/mp4", "video/webm");
    assert_eq!(
        reason(&decide(&mut engine, &request(&webm, ""))),
        (Some(0), "no_creative".into())
    );
    let short = video.replace("\"maxduration\":30", "\"maxduration\":15");
    assert_eq!(
        reason(&decide(&mut engine, &request(&short, ""))).1,
        "no_creative"
    );
}

#[test]
fn a_vast_wrapper_wraps_the_tag() {
    let wrapped = Catalog::from_toml_str(
        &catalog("")
            .to_toml()
            .replace(
                "media_url = \"https://cdn.learn.example/ad.mp4\"",
                "vast_tag_url = \"https://ads.learn.example/v.xml?a=1&b=2\"",
            )
            .replace("media_width = 1280\n", "")
            .replace("media_height = 720\n", "")
            .replace("duration_s = 20\n", ""),
    )
    .unwrap();
    let mut engine = engine_with(wrapped, BASE);
    let video = r#"{"id":"v1","video":{"mimes":["video/webm"]}}"#;
    let response = decide(&mut engine, &request(video, ""));
    let bid = only_bid(&response);
    let adm = bid.adm.as_deref().unwrap();
    assert!(
        adm.contains("<Wrapper><AdSystem>CampaignExpress</AdSystem>")
            && adm.contains(
                "<VASTAdTagURI>https://ads.learn.example/v.xml?a=1&amp;b=2</VASTAdTagURI>"
            ),
        "{adm}"
    );
    assert_eq!((bid.w, bid.h), (None, None), "no player size, no file size");
    assert_well_formed(adm);
}

fn native_imp(assets: &str, extra: &str) -> String {
    let request = format!(r#"{{"ver":"1.2","assets":[{assets}]{extra}}}"#);
    format!(
        r#"{{"id":"n1","native":{{"request":{},"ver":"1.2"}}}}"#,
        serde_json::to_string(&request).unwrap()
    )
}

#[test]
fn a_native_bid_answers_the_requests_assets() {
    let mut engine = engine_with(catalog(""), BASE);
    let assets = r#"{"id":1,"required":1,"title":{"len":8}},
        {"id":2,"required":1,"img":{"type":3,"wmin":600,"hmin":314}},
        {"id":3,"img":{"type":1,"w":80,"h":80}},
        {"id":4,"data":{"type":2}},
        {"id":5,"data":{"type":12}},
        {"id":6,"data":{"type":1}},
        {"id":7,"video":{"mimes":["video/mp4"]}}"#;
    let imp = native_imp(assets, r#","eventtrackers":[{"event":1,"methods":[1]}]"#);
    let response = decide(&mut engine, &request(&imp, ""));
    let bid = only_bid(&response);
    assert_eq!(bid.mtype, Some(4));
    assert_eq!((bid.w, bid.h), (None, None));
    let native: Value = serde_json::from_str(bid.adm.as_deref().unwrap()).expect("JSON");
    assert_eq!(native["ver"], "1.2");
    assert_eq!(native["link"]["url"], "https://learn.example/go?a=1&b=<2>");
    let by_id = |id: u64| {
        native["assets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == id)
            .cloned()
    };
    assert_eq!(
        by_id(1).unwrap()["title"]["text"],
        "Learn \"d",
        "cut to len 8"
    );
    assert_eq!(
        by_id(2).unwrap()["img"]["url"],
        "https://cdn.learn.example/ad.jpg"
    );
    assert_eq!(by_id(2).unwrap()["img"]["w"], 600);
    assert_eq!(
        by_id(3).unwrap()["img"]["url"],
        "https://cdn.learn.example/icon.png"
    );
    assert_eq!(by_id(4).unwrap()["data"]["value"], "Evening courses.");
    assert!(by_id(5).is_none(), "the creative has no call to action");
    assert_eq!(by_id(6).unwrap()["data"]["value"], "Learn");
    assert!(by_id(7).is_none(), "video assets are not served");
    assert_eq!(
        native["eventtrackers"][0]["url"],
        "https://t.learn.example/i?p=${AUCTION_PRICE}"
    );

    // A required asset the creative cannot fill: no native ad, no bid.
    let required_cta = native_imp(
        r#"{"id":1,"title":{"len":90}},{"id":2,"required":1,"data":{"type":12}}"#,
        "",
    );
    assert_eq!(
        reason(&decide(&mut engine, &request(&required_cta, ""))),
        (Some(0), "no_creative".into())
    );
}

#[test]
fn blocked_categories_and_attributes_are_not_bid() {
    let mut engine = engine_with(catalog(""), BASE);
    let banner = r#"{"id":"i1","banner":{"w":300,"h":250}}"#;
    // IAB19 blocks the offer's IAB19-6.
    let response = decide(&mut engine, &request(banner, r#","bcat":["IAB19"]"#));
    assert_eq!(reason(&response), (Some(0), "blocked_category".into()));
    // IAB19-7 does not.
    let response = decide(
        &mut engine,
        &request(banner, r#","bcat":["IAB19-7","IAB1"]"#),
    );
    only_bid(&response);
    let blocked = r#"{"id":"i1","banner":{"w":300,"h":250,"battr":[12]}}"#;
    assert_eq!(
        reason(&decide(&mut engine, &request(blocked, ""))),
        (Some(0), "blocked_attribute".into())
    );
    // A multi-format impression falls back to the kind that is not blocked.
    let both =
        r#"{"id":"i1","banner":{"w":300,"h":250,"battr":[12]},"video":{"mimes":["video/mp4"]}}"#;
    let response = decide(&mut engine, &request(both, ""));
    assert_eq!(only_bid(&response).mtype, Some(2));
}

#[test]
fn an_offer_without_a_creative_gets_no_bid() {
    let bare = Catalog::from_toml_str(
        "[[offer]]\nid = 1000\nname = \"n\"\nconversion_rate = 0.02\nrevenue = 2.0\n\
         max_bid_cpm = 8.0\ncreative_id = \"c\"\n",
    )
    .unwrap();
    let mut engine = engine_with(bare, BASE);
    let response = decide(
        &mut engine,
        &request(r#"{"id":"i1","banner":{"w":300,"h":250}}"#, ""),
    );
    assert_eq!(reason(&response), (Some(0), "no_creative".into()));
    assert_eq!(engine.bid_ids().issued(), 0, "no id is spent on a no-bid");
}

#[test]
fn no_bid_reasons_use_the_openrtb_2_6_codes() {
    let mut engine = engine_with(
        catalog(
            r#"device_types = ["personal_computer"]
frequency_cap = { impressions = 1, window_s = 86400 }"#,
        ),
        BASE,
    );
    let banner = r#"{"id":"i1","bidfloor":0.01,"banner":{"w":300,"h":250}}"#;
    let phone = |extra: &str| {
        let json = format!(
            r#"{{"id":"r2","imp":[{banner}],"app":{{"id":"a1","bundle":"com.example"}},
               "device":{{"devicetype":4,"geo":{{"country":"USA"}}}}{extra}}}"#
        );
        parse_request(json.as_bytes()).unwrap()
    };
    assert_eq!(
        reason(&decide(&mut engine, &phone(""))),
        (Some(6), "device_type".into())
    );
    // The first request for a user is bid; the cap (1 a day) stops the second.
    only_bid(&decide(&mut engine, &request(banner, "")));
    assert_eq!(
        reason(&decide(&mut engine, &request(banner, ""))),
        (Some(9), "frequency_capped".into())
    );
    let eur = r#"{"id":"i1","bidfloor":0.5,"bidfloorcur":"EUR","banner":{"w":300,"h":250}}"#;
    assert_eq!(
        reason(&decide(
            &mut engine,
            &request(
                eur,
                r#","user":{"id":"u-2"}"#.replace("\"user\"", "\"x\"").as_str()
            )
        ))
        .0,
        Some(2)
    );
    let high_floor = r#"{"id":"i1","bidfloor":500,"banner":{"w":300,"h":250}}"#;
    assert_eq!(
        reason(&decide(&mut engine, &request_as("u-3", high_floor, ""))),
        (Some(0), "below_floor".into())
    );
}

#[test]
fn channel_and_country_exclusions_have_their_codes() {
    let mut apps_only = engine_with(catalog(r#"channels = "app""#), BASE);
    let banner = r#"{"id":"i1","banner":{"w":300,"h":250}}"#;
    assert_eq!(
        reason(&decide(&mut apps_only, &request(banner, ""))),
        (Some(7), "channel".into())
    );
    let mut uk_only = engine_with(catalog(r#"countries = ["GBR"]"#), BASE);
    assert_eq!(
        reason(&decide(&mut uk_only, &request(banner, ""))),
        (Some(0), "country".into())
    );
}

#[test]
fn without_a_notice_base_bids_carry_no_notice_urls() {
    let mut engine = engine_with(catalog(""), "");
    let response = decide(
        &mut engine,
        &request(r#"{"id":"i1","banner":{"w":300,"h":250}}"#, ""),
    );
    let bid = only_bid(&response);
    assert_eq!((&bid.nurl, &bid.burl, &bid.lurl), (&None, &None, &None));
    engine
        .set_notice_base_url("https://bids.example.com/")
        .unwrap();
    let response = decide(
        &mut engine,
        &request_as("u-9", r#"{"id":"i1","banner":{"w":300,"h":250}}"#, ""),
    );
    let nurl = only_bid(&response).nurl.clone().unwrap();
    assert!(
        nurl.starts_with("https://bids.example.com/notice/win?bid="),
        "{nurl}"
    );
    assert!(engine.set_notice_base_url("bids.example.com").is_err());
    assert_eq!(
        engine.notice_urls().base(),
        Some("https://bids.example.com")
    );
}

#[test]
fn build_response_takes_its_bidder_explicitly_and_two_workers_never_share_an_id() {
    let catalog = catalog("");
    let notices = NoticeUrls::new(BASE).unwrap();
    let mut source = engine_with(catalog.clone(), BASE);
    let request = request(r#"{"id":"i1","banner":{"w":300,"h":250}}"#, "");
    let outcome = source.decide_openrtb(&request, T0_NS).unwrap();
    let mut impressions: Vec<ImpOutcome> = outcome.impressions.clone();
    let mut seen = HashSet::new();
    let epoch = 1_767_225_600_000;
    let mut workers = [BidIds::new(0, 0, epoch), BidIds::new(0, 1, epoch)];
    for ticket in 0..500 {
        // A bid's id is its decision's id: 500 decisions (tickets) of
        // each of two workers.
        if let Some(d) = impressions[0].decision.as_mut() {
            d.ticket = cx_engine::domain::pipeline::Ticket(ticket);
        }
        for ids in workers.iter_mut() {
            let mut bidder = Bidder {
                catalog: &catalog,
                bid_ids: ids,
                notices: &notices,
            };
            let response = build_response(&request, &impressions, &mut bidder);
            response.check(&request).unwrap();
            assert!(seen.insert(only_bid(&response).id.clone()));
        }
    }
    assert_eq!(seen.len(), 1000);
    // The same decision answered again keeps its id.
    let mut bidder = Bidder {
        catalog: &catalog,
        bid_ids: &mut workers[0],
        notices: &notices,
    };
    let again = build_response(&request, &impressions, &mut bidder);
    assert!(seen.contains(&only_bid(&again).id));
}
