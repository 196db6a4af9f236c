//! Property tests: the decide step's showability check
//! (`Catalog::check_showable` over `openrtb::rules::imp_rules`) agrees with
//! what `build_response` can bid, offer by offer, and so every decided
//! impression with offers gets a bid: no `no_creative` or `blocked_*`
//! no-bid while an offer that could be shown was eligible.
//!
//! The catalog is the bundled one, varied so that every rule has work:
//! offers without banners, videos or some native assets, video files of
//! another type, attributes, one offer with no creative at all.

use cx_engine::domain::catalog::{Catalog, Unshowable};
use cx_engine::domain::pipeline::{ChosenOffer, Decision, Ticket};
use cx_engine::openrtb::rules::{blocked_categories, imp_rules};
use cx_engine::openrtb::{build_response, unshown_top_offers, BidIds, Bidder, ImpOutcome};
use cx_engine::openrtb::{NoticeUrls, OpenRtbOutcome};
use cx_engine::wire::openrtb::{BidRequest, BidResponse};
use cx_engine::Engine;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use serde_json::{json, Value};
use std::path::Path;

const T0_NS: u64 = 1_767_225_600_000_000_000;

/// The bundled catalog, varied offer by offer (see the module docs).
fn varied_catalog() -> Catalog {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/catalog.toml");
    let mut offers = Catalog::from_path(&path).expect("bundled").to_offers();
    for (k, offer) in offers.iter_mut().enumerate() {
        if k % 3 != 0 {
            offer.attr = vec![(k % 5) as u32 + 1];
        }
        let spec = offer
            .creative
            .as_mut()
            .expect("bundled offers have creatives");
        if k % 4 == 1 {
            spec.image_url = None;
        }
        if k % 4 == 2 {
            (spec.media_url, spec.vast_tag_url) = (None, None);
            (spec.media_width, spec.media_height, spec.duration_s) = (None, None, None);
        }
        if k % 5 == 3 && spec.media_url.is_some() {
            spec.media_type = Some("video/webm".into());
        }
        if k % 7 == 4 {
            (spec.cta, spec.sponsor) = (None, None);
        }
    }
    offers[15].creative = None;
    Catalog::from_offers(offers).expect("a valid varied catalog")
}

const SIZES: &[(u32, u32)] = &[
    (300, 250),
    (728, 90),
    (320, 50),
    (160, 600),
    (300, 600),
    (336, 280),
    (1, 1),
];
const MIMES: &[&str] = &[
    "video/mp4",
    "VIDEO/MP4",
    "video/webm",
    "application/javascript",
];
const CATEGORIES: &[&str] = &["IAB1", "IAB19", "IAB1-6", "IAB9", "IAB13", "IAB2", "IAB7-1"];

fn size() -> impl Strategy<Value = Value> {
    prop::sample::select(SIZES).prop_map(|(w, h)| json!({"w": w, "h": h}))
}

fn battr() -> impl Strategy<Value = Vec<i64>> {
    prop::collection::vec(1i64..=6, 0..3)
}

fn banner() -> impl Strategy<Value = Value> {
    (
        prop::option::of(size()),
        prop::collection::vec(size(), 0..3),
        battr(),
    )
        .prop_map(|(own, format, battr)| {
            let mut b = own.unwrap_or_else(|| json!({}));
            b["format"] = json!(format);
            b["battr"] = json!(battr);
            b
        })
}

fn video() -> impl Strategy<Value = Value> {
    let mimes = prop::sample::subsequence(MIMES, 1..=3);
    let durations = (prop::option::of(0u32..30), prop::option::of(0u32..40));
    (mimes, durations, battr()).prop_map(|(mimes, (min, max), battr)| {
        let mut v = json!({"mimes": mimes, "battr": battr, "w": 640, "h": 360});
        if let Some(min) = min {
            v["minduration"] = json!(min);
        }
        if let Some(max) = max {
            v["maxduration"] = json!(max);
        }
        v
    })
}

/// A native request asset: title, icon, image, data of types 1, 2, 12 and
/// 3, or a video; required or not; rarely without an id.
fn asset() -> impl Strategy<Value = Value> {
    let body = prop::sample::select(vec![
        json!({"title": {"len": 25}}),
        json!({"img": {"type": 1, "w": 80, "h": 80}}),
        json!({"img": {"type": 3, "wmin": 600, "hmin": 314}}),
        json!({"data": {"type": 1}}),
        json!({"data": {"type": 2}}),
        json!({"data": {"type": 12}}),
        json!({"data": {"type": 3}}),
        json!({"video": {"mimes": ["video/mp4"]}}),
    ]);
    (body, any::<bool>(), 0u32..40).prop_map(|(mut asset, required, id)| {
        if id > 0 {
            asset["id"] = json!(id);
        }
        if required {
            asset["required"] = json!(1);
        }
        asset
    })
}

fn native() -> impl Strategy<Value = Value> {
    let readable =
        (prop::collection::vec(asset(), 0..5), any::<bool>()).prop_map(|(assets, wrapped)| {
            let body = json!({"ver": "1.2", "assets": assets});
            let body = if wrapped {
                json!({"native": body})
            } else {
                body
            };
            body.to_string()
        });
    prop_oneof![9 => readable, 1 => Just("{not json".to_string())]
        .prop_map(|request| json!({"request": request, "ver": "1.2"}))
}

/// One impression: any mix of banner, video, native and audio.
fn imp() -> impl Strategy<Value = Value> {
    let kinds = (
        prop::option::of(banner()),
        prop::option::of(video()),
        prop::option::of(native()),
        prop::option::weighted(0.2, Just(json!({"mimes": ["audio/mp4"]}))),
    );
    kinds.prop_map(|(banner, video, native, audio)| {
        let mut imp = json!({"id": "1"});
        for (key, object) in [
            ("banner", banner),
            ("video", video),
            ("native", native),
            ("audio", audio),
        ] {
            if let Some(object) = object {
                imp[key] = object;
            }
        }
        imp
    })
}

/// A request of 1 to 3 impressions and a `bcat`, from a known desktop or
/// phone user in the USA or Germany, on a site or in an app.
fn request() -> impl Strategy<Value = BidRequest> {
    let imps = prop::collection::vec(imp(), 1..=3);
    let bcat = prop::sample::subsequence(CATEGORIES, 0..=3);
    let who = (any::<bool>(), any::<bool>(), 0u32..50);
    (imps, bcat, who).prop_map(|(mut imps, bcat, (app, desktop, user))| {
        for (k, imp) in imps.iter_mut().enumerate() {
            imp["id"] = json!(format!("i{k}"));
        }
        let mut r = json!({
            "id": "r", "imp": imps, "bcat": bcat,
            "device": {"devicetype": if desktop { 2 } else { 4 },
                       "geo": {"country": if user % 2 == 0 { "USA" } else { "DEU" }}},
            "user": {"id": format!("u-{user}")},
        });
        let inventory = json!({"id": "s1", "domain": "news.example", "cat": ["IAB19"]});
        r[if app { "app" } else { "site" }] = inventory;
        serde_json::from_value(r).expect("a request")
    })
}

/// The decision whose top (and only) offer is catalog offer `i`.
fn top_offer(catalog: &Catalog, i: usize) -> Decision {
    let mut decision = Decision::default();
    decision.reset(Ticket(1), false);
    let offer = ChosenOffer {
        offer_id: catalog.ids()[i],
        catalog_index: i as u32,
        bid_cpm: 1.5,
        ..ChosenOffer::default()
    };
    decision.consider(offer, 1);
    decision
}

/// The response to `request` with offer `i` on every impression.
fn respond_with(request: &BidRequest, catalog: &Catalog, i: usize) -> BidResponse {
    let impressions: Vec<ImpOutcome> = request
        .imp
        .iter()
        .map(|imp| ImpOutcome {
            imp_id: imp.id.clone(),
            decision: Some(top_offer(catalog, i)),
            skipped: None,
        })
        .collect();
    let notices = NoticeUrls::new("http://127.0.0.1:8080").unwrap();
    let mut ids = BidIds::new(0, 0, 1_767_225_600_000);
    let mut bidder = Bidder {
        catalog,
        bid_ids: &mut ids,
        notices: &notices,
    };
    build_response(request, &impressions, &mut bidder)
}

fn no_bid_label(response: &BidResponse) -> Option<&str> {
    response.ext.as_ref()?["reason"].as_str()
}

/// Every decided impression with offers got a bid for its top offer.
fn every_top_offer_is_bid(request: &BidRequest, outcome: &OpenRtbOutcome) {
    let bids: Vec<_> = outcome
        .response
        .seatbid
        .iter()
        .flat_map(|s| &s.bid)
        .collect();
    for imp in &outcome.impressions {
        let Some(top) = imp.decision.as_ref().and_then(|d| d.offers().first()) else {
            continue;
        };
        let bid = bids.iter().find(|b| b.impid == imp.imp_id);
        let bid = bid.unwrap_or_else(|| {
            panic!(
                "imp {} decided offer {} but got no bid ({:?}): {}",
                imp.imp_id,
                top.offer_id,
                no_bid_label(&outcome.response),
                serde_json::to_string(request).unwrap()
            )
        });
        assert_eq!(bid.adid.as_deref(), Some(top.offer_id.to_string().as_str()));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Offer by offer, `check_showable` says yes exactly when
    /// `build_response` bids that offer, and names the reason it gives.
    #[test]
    fn the_decide_check_agrees_with_the_bidder(request in request()) {
        let catalog = varied_catalog();
        let bcat = blocked_categories(&request);
        let rules = imp_rules(&request.imp[0], &bcat);
        let only_first = BidRequest { imp: vec![request.imp[0].clone()], ..request.clone() };
        for i in 0..catalog.len() {
            let response = respond_with(&only_first, &catalog, i);
            response.check(&only_first).expect("a well-formed response");
            match catalog.check_showable(i, &rules) {
                Ok(()) => prop_assert!(!response.is_no_bid(), "offer {i}: {response:?}"),
                Err(why) => {
                    prop_assert!(response.is_no_bid(), "offer {i} ({why}) was bid");
                    prop_assert_eq!(no_bid_label(&response), Some(why.label()));
                }
            }
        }
        prop_assert_eq!(unshown_top_offers(), 0);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Through the engine: no impression whose decision chose an offer is
    /// left without a bid.
    #[test]
    fn every_decided_impression_with_offers_is_bid(
        requests in prop::collection::vec(request(), 1..6),
    ) {
        let mut engine = Engine::builder()
            .catalog(varied_catalog())
            .seed(3)
            .build()
            .expect("engine");
        for (k, request) in requests.iter().enumerate() {
            let outcome = engine.decide_openrtb(request, T0_NS + k as u64).expect("decides");
            outcome.response.check(request).expect("a well-formed response");
            every_top_offer_is_bid(request, &outcome);
        }
        prop_assert_eq!(unshown_top_offers(), 0);
    }
}

#[test]
fn the_generated_requests_exercise_every_rule() {
    // Over a fixed sample, each reason an offer cannot be shown occurs, and
    // so do showable offers: the properties above are not vacuous.
    let catalog = varied_catalog();
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut seen = [0usize; 4];
    for _ in 0..300 {
        let request = request().new_tree(&mut runner).unwrap().current();
        let rules = imp_rules(&request.imp[0], &blocked_categories(&request));
        for i in 0..catalog.len() {
            let slot = match catalog.check_showable(i, &rules) {
                Ok(()) => 0,
                Err(why) => 1 + Unshowable::ALL.iter().position(|&w| w == why).unwrap(),
            };
            seen[slot] += 1;
        }
    }
    assert!(
        seen.iter().all(|&n| n > 100),
        "ok, then each reason: {seen:?}"
    );
}
