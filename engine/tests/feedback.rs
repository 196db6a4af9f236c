//! Feedback through the engine: an OpenRTB bid reserves its budget and cap
//! slot, a win charges the clearing price, a loss or the close of the win
//! window gives both back, and bad events change nothing.

mod common;

use cx_engine::domain::feedback::{id_key, Accepted, Event, EventKind, EventRefusal};
use cx_engine::domain::notice::{Notice, NoticeKind};
use cx_engine::domain::store::BudgetBackend;
use cx_engine::domain::store::Budgets;
use cx_engine::features::RequestContext;
use cx_engine::openrtb::BidIds;
use cx_engine::wire::openrtb::{parse_request, BidRequest};
use cx_engine::{Engine, EngineConfig};

use common::T0_NS;
const S: u64 = 1_000_000_000;

fn engine() -> Engine {
    Engine::builder()
        .catalog(common::budgeted_catalog())
        .config(EngineConfig::default())
        .bid_ids(BidIds::new(3, 1, 1_767_225_600_000))
        .build()
        .expect("engine")
}

fn request(user: &str) -> BidRequest {
    let json = format!(
        r#"{{"id":"r1","imp":[{{"id":"1","banner":{{"w":300,"h":250}}}}],
           "site":{{"id":"s1","domain":"news.example"}},
           "device":{{"devicetype":2,"geo":{{"country":"USA"}}}},
           "user":{{"id":"{user}"}}}}"#
    );
    parse_request(json.as_bytes()).expect("a valid request")
}

/// Bids for `user` at `now_ns`: the bid's id and price (CPM).
fn bid(engine: &mut Engine, user: &str, now_ns: u64) -> Option<(String, f64)> {
    let outcome = engine
        .decide_openrtb(&request(user), now_ns)
        .expect("decides");
    let bid = outcome.response.seatbid.first()?.bid.first()?;
    Some((bid.id.clone(), bid.price))
}

fn spent(engine: &Engine, now_ns: u64) -> f64 {
    engine.world().resource::<BudgetBackend>().spent(0, now_ns)
}

fn win(bid_id: &str, price_cpm: f64) -> Event {
    let mut e = Event::new(EventKind::Win, id_key(bid_id));
    e.amount = price_cpm;
    e
}

#[test]
fn a_win_charges_the_clearing_price_not_the_bid() {
    let mut engine = engine();
    let (id, price) = bid(&mut engine, "u1", T0_NS).expect("a bid");
    let reserved = spent(&engine, T0_NS);
    assert!(
        (reserved - price / 1000.0).abs() < 1.5e-6,
        "{reserved} {price}"
    );
    let clearing = price / 2.0;
    let t = T0_NS + S;
    assert_eq!(
        engine.feedback_event(&win(&id, clearing), t),
        Ok(Accepted::Applied)
    );
    assert!((spent(&engine, t) - clearing / 1000.0).abs() < 1.5e-6);
    // The same win again changes nothing, and is counted.
    assert_eq!(
        engine.feedback_event(&win(&id, clearing), t),
        Err(EventRefusal::Duplicate)
    );
    assert!((spent(&engine, t) - clearing / 1000.0).abs() < 1.5e-6);
    let counts = engine.feedback_counts();
    assert_eq!(counts.applied(EventKind::Win), 1);
    assert_eq!(counts.refused(EventRefusal::Duplicate), 1);
}

#[test]
fn a_loss_gives_back_the_budget_and_the_cap_slot() {
    let mut engine = engine();
    let (id, _) = bid(&mut engine, "u1", T0_NS).expect("a bid");
    // The cap (one a day) is reserved by the open bid: no second bid.
    assert_eq!(bid(&mut engine, "u1", T0_NS + 1), None, "capped while open");
    let mut loss = Event::new(EventKind::Loss, id_key(&id));
    loss.loss_code = 102;
    assert_eq!(
        engine.feedback_event(&loss, T0_NS + 2),
        Ok(Accepted::Applied)
    );
    assert_eq!(spent(&engine, T0_NS + 2), 0.0);
    assert!(
        bid(&mut engine, "u1", T0_NS + 3).is_some(),
        "the lost bid's cap slot came back"
    );
    assert_eq!(engine.feedback_counts().caps_released, 1);
}

#[test]
fn a_bid_nobody_answers_is_released_when_its_win_window_closes() {
    let mut engine = engine();
    let window_ns = engine.config().feedback.win_window_s * S;
    let (_, price) = bid(&mut engine, "u1", T0_NS).expect("a bid");
    assert!(spent(&engine, T0_NS) > 0.0);
    engine.tick(T0_NS + window_ns / 2);
    assert!(
        (spent(&engine, T0_NS) - price / 1000.0).abs() < 1.5e-6,
        "still open"
    );
    // The sweep looks at a share of the log per tick: tick through a
    // window's worth of sweeps.
    let mut now = T0_NS + window_ns;
    for _ in 0..20_000 {
        now += 10_000_000;
        engine.tick(now);
        if engine.feedback_counts().expired > 0 {
            break;
        }
    }
    let counts = engine.feedback_counts();
    assert_eq!(counts.expired, 1, "{counts:?}");
    assert_eq!(spent(&engine, now), 0.0);
    assert_eq!(engine.decision_log().stats().expired_unsettled, 1);
}

#[test]
fn notices_are_events() {
    let mut engine = engine();
    let (id, price) = bid(&mut engine, "u1", T0_NS).expect("a bid");
    let notice = |kind, price_cpm| Notice {
        kind,
        bid_id: id.clone(),
        imp_id: "1".into(),
        auction_id: "r1".into(),
        price_cpm,
        currency: "USD".into(),
        offer_id: Some(1000),
        loss_code: None,
    };
    assert_eq!(
        engine.on_notice(&notice(NoticeKind::Win, None), T0_NS + 1),
        Err(EventRefusal::BadAmount),
        "a win without its price"
    );
    assert_eq!(
        engine.on_notice(&notice(NoticeKind::Win, Some(price)), T0_NS + 2),
        Ok(Accepted::Applied)
    );
    assert_eq!(
        engine.on_notice(&notice(NoticeKind::Bill, None), T0_NS + 3),
        Ok(Accepted::Applied)
    );
    assert_eq!(
        engine.on_notice(&notice(NoticeKind::Loss, None), T0_NS + 4),
        Err(EventRefusal::Contradicts)
    );
    let counts = engine.feedback_counts();
    assert_eq!(counts.impressions, 1);
    assert!((spent(&engine, T0_NS) - price / 1000.0).abs() < 1.5e-6);
}

#[test]
fn direct_decisions_are_charged_when_decided_and_learn_from_clicks() {
    let mut engine = engine();
    let ctx = RequestContext {
        user_id: "u9".into(),
        country: "USA".into(),
        ..RequestContext::default()
    };
    let ticket = engine.submit(ctx).expect("submitted");
    engine.run_until_decided(T0_NS);
    let decision = engine.poll().expect("decided");
    let top = *decision.offers().first().expect("an offer");
    assert!(spent(&engine, T0_NS) > 0.0);
    let key = engine.decision_key(ticket);
    assert_eq!(key, id_key(&engine.decision_id(ticket)));
    let mut loss = Event::new(EventKind::Loss, key);
    loss.offer_id = top.offer_id;
    assert_eq!(
        engine.feedback_event(&loss, T0_NS + 1),
        Err(EventRefusal::NotApplicable),
        "a direct decision has no auction to lose"
    );
    assert_eq!(
        engine.feedback_event(&Event::new(EventKind::Click, key), T0_NS + 2),
        Ok(Accepted::Applied)
    );
    let counts = engine.feedback_counts();
    assert_eq!((counts.impressions, counts.clicks), (1, 1));
    // The click reached the offer's posterior, with the decision's p.
    let posterior = engine
        .posterior(top.offer_id, T0_NS + 2)
        .expect("a known offer");
    assert_eq!((posterior.impressions, posterior.clicks), (1.0, 1.0));
    assert!((posterior.expected_clicks - f64::from(top.p_click)).abs() < 1e-6);
}

#[test]
fn bad_events_and_batches_change_nothing() {
    let mut engine = engine();
    let (id, price) = bid(&mut engine, "u1", T0_NS).expect("a bid");
    let before = spent(&engine, T0_NS);
    let mut wrong_offer = win(&id, price);
    wrong_offer.offer_id = 4242;
    let batch = [
        win(&id, -1.0),
        win(&id, f64::INFINITY),
        wrong_offer,
        Event::new(EventKind::Click, 0),
    ];
    let outcome = engine.feedback(&batch, T0_NS + 1).expect("a small batch");
    assert_eq!((outcome.applied, outcome.held, outcome.refused), (0, 0, 4));
    assert_eq!(spent(&engine, T0_NS + 1), before);
    let huge = vec![win(&id, price); cx_engine::domain::feedback::EVENT_BATCH_MAX + 1];
    assert_eq!(
        engine.feedback(&huge, T0_NS + 2),
        Err(EventRefusal::BatchTooLarge)
    );
    assert_eq!(spent(&engine, T0_NS + 2), before);
    let counts = engine.feedback_counts();
    assert_eq!(counts.refused(EventRefusal::BadAmount), 2);
    assert_eq!(counts.refused(EventRefusal::OfferMismatch), 1);
    assert_eq!(counts.refused(EventRefusal::NoDecisionId), 1);
    assert_eq!(counts.refused(EventRefusal::BatchTooLarge), 1);
    // An event for a decision never made is held, then dropped.
    assert_eq!(
        engine.feedback_event(&win("0-0-0-zz", 1.0), T0_NS + 3),
        Ok(Accepted::Held)
    );
    engine.tick(T0_NS + 10 * S);
    assert_eq!(engine.decision_log().stats().dangling, 1);
}
