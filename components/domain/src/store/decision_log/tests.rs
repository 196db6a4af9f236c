use super::*;
use crate::feedback::id_key;

const S: u64 = 1_000_000_000;

fn log() -> DecisionLog {
    DecisionLog::new(LogConfig::default()).expect("default config")
}

fn bid(id: &str, reserved_micros: u64, decided_ns: u64) -> LoggedDecision {
    LoggedDecision {
        key: id_key(id),
        decided_ns,
        offer_id: 1003,
        offer_index: 3,
        p_click: 0.05,
        propensity: 0.9,
        user_hash: 77,
        reserved_micros,
        settlement: Settlement::Auction,
        ..LoggedDecision::default()
    }
}

fn event(kind: EventKind, id: &str, at_ns: u64) -> Event {
    let mut e = Event::new(kind, id_key(id));
    e.at_ns = at_ns;
    e
}

fn effect(log: &DecisionLog, e: &Event, now_ns: u64) -> Effect {
    match log.apply(e, now_ns) {
        Ok((Accepted::Applied, Some(effect))) => effect,
        other => panic!("expected an applied event, got {other:?}"),
    }
}

#[test]
fn a_win_charges_the_clearing_price_and_gives_back_the_rest() {
    let log = log();
    // Bid 2.0 CPM: 2,000 micros reserved.
    log.record(&bid("b1", 2_000, 10 * S), 10 * S);
    let mut win = event(EventKind::Win, "b1", 11 * S);
    win.amount = 1.5;
    let e = effect(&log, &win, 11 * S);
    assert_eq!((e.refund_micros, e.charge_micros), (500, 0));
    assert!(!e.release_cap, "a win keeps the cap slot");
    assert_eq!(e.decision.offer_id, 1003);
    // The same win again, and a loss after it, change nothing.
    assert_eq!(log.apply(&win, 12 * S), Err(EventRefusal::Duplicate));
    let loss = event(EventKind::Loss, "b1", 12 * S);
    assert_eq!(log.apply(&loss, 12 * S), Err(EventRefusal::Contradicts));
    assert_eq!(log.stats().open_bids, 0);
}

#[test]
fn a_clearing_price_above_the_bid_is_charged_beyond_the_reservation() {
    let log = log();
    log.record(&bid("b1", 2_000, S), S);
    let mut win = event(EventKind::Win, "b1", 2 * S);
    win.amount = 2.5;
    let e = effect(&log, &win, 2 * S);
    assert_eq!((e.refund_micros, e.charge_micros), (0, 500));
}

#[test]
fn a_loss_gives_back_the_reservation_and_the_cap_slot() {
    let log = log();
    log.record(&bid("b1", 2_000, S), S);
    let e = effect(&log, &event(EventKind::Loss, "b1", 2 * S), 2 * S);
    assert_eq!(e.refund_micros, 2_000);
    assert!(e.release_cap);
    let mut win = event(EventKind::Win, "b1", 3 * S);
    win.amount = 1.0;
    assert_eq!(log.apply(&win, 3 * S), Err(EventRefusal::Contradicts));
    // A click on a lost bid is a contradiction too.
    assert_eq!(
        log.apply(&event(EventKind::Click, "b1", 3 * S), 3 * S),
        Err(EventRefusal::Contradicts)
    );
}

#[test]
fn clicks_count_the_impression_once_whichever_comes_first() {
    let log = log();
    for (id, first, second) in [
        ("a", EventKind::Impression, EventKind::Click),
        ("b", EventKind::Click, EventKind::Impression),
    ] {
        let mut d = bid(id, 0, S);
        d.settlement = Settlement::Direct;
        log.record(&d, S);
        let e1 = effect(&log, &event(first, id, 2 * S), 2 * S);
        let e2 = effect(&log, &event(second, id, 3 * S), 3 * S);
        assert_eq!(u8::from(e1.impression) + u8::from(e2.impression), 1, "{id}");
        assert_eq!(u8::from(e1.click) + u8::from(e2.click), 1, "{id}");
        assert_eq!(
            log.apply(&event(EventKind::Click, id, 4 * S), 4 * S),
            Err(EventRefusal::Duplicate)
        );
    }
}

#[test]
fn a_direct_decision_takes_no_win_or_loss() {
    let log = log();
    let mut d = bid("d", 0, S);
    d.settlement = Settlement::Direct;
    log.record(&d, S);
    assert_eq!(
        log.apply(&event(EventKind::Loss, "d", 2 * S), 2 * S),
        Err(EventRefusal::NotApplicable)
    );
}

#[test]
fn events_outside_their_windows_are_refused() {
    let log = log();
    let w = *log.windows();
    log.record(&bid("b", 1_000, 100 * S), 100 * S);
    // Dated before the decision by more than the backward window.
    let early = event(EventKind::Impression, "b", 100 * S - w.backward_ns - 1);
    assert_eq!(
        log.apply(&early, 100 * S),
        Err(EventRefusal::BeforeDecision)
    );
    // A click after the click window.
    let late = event(EventKind::Click, "b", 100 * S + w.click_ns + 1);
    assert_eq!(log.apply(&late, late.at_ns), Err(EventRefusal::AfterWindow));
    // Within the windows, both are fine.
    effect(
        &log,
        &event(EventKind::Impression, "b", 100 * S - 1),
        100 * S,
    );
}

#[test]
fn bad_events_are_refused_before_the_join() {
    let log = log();
    log.record(&bid("b", 1_000, S), S);
    let mut win = event(EventKind::Win, "b", 2 * S);
    win.amount = -1.0;
    assert_eq!(log.apply(&win, 2 * S), Err(EventRefusal::BadAmount));
    let mut other_offer = event(EventKind::Win, "b", 2 * S);
    other_offer.amount = 1.0;
    other_offer.offer_id = 999;
    assert_eq!(
        log.apply(&other_offer, 2 * S),
        Err(EventRefusal::OfferMismatch)
    );
    // Neither settled the bid.
    assert_eq!(log.stats().open_bids, 1);
}

#[test]
fn event_ids_deduplicate_conversions() {
    let log = log();
    log.record(&bid("b", 0, S), S);
    let mut conversion = event(EventKind::Conversion, "b", 2 * S);
    conversion.amount = 30.0;
    conversion.event_key = id_key("conv-1");
    assert_eq!(effect(&log, &conversion, 2 * S).conversion_value, 30.0);
    assert_eq!(log.apply(&conversion, 3 * S), Err(EventRefusal::Duplicate));
    conversion.event_key = id_key("conv-2");
    effect(&log, &conversion, 3 * S);
}

#[test]
fn unanswered_bids_are_released_when_their_win_window_closes() {
    let log = log();
    let w = *log.windows();
    log.record(&bid("open", 3_000, S), S);
    log.record(&bid("won", 3_000, S), S);
    let mut win = event(EventKind::Win, "won", 2 * S);
    win.amount = 3.0;
    effect(&log, &win, 2 * S);
    let mut released = Vec::new();
    log.sweep(S + w.win_ns / 2, usize::MAX, |e| released.push(e));
    assert!(released.is_empty(), "still within the window");
    log.sweep(S + w.win_ns + 1, usize::MAX, |e| released.push(e));
    assert_eq!(released.len(), 1);
    assert_eq!(released[0].decision.key, id_key("open"));
    assert_eq!(released[0].refund_micros, 3_000);
    assert!(released[0].release_cap && released[0].kind.is_none());
    let stats = log.stats();
    assert_eq!((stats.expired_unsettled, stats.open_bids), (1, 0));
    // A win after the release is too late, and releases nothing twice.
    let mut late = event(EventKind::Win, "open", S + w.win_ns + 2);
    late.amount = 1.0;
    assert!(log.apply(&late, late.at_ns).is_err());
    log.sweep(S + w.longest_ns() + 1, usize::MAX, |e| released.push(e));
    assert_eq!(released.len(), 1);
    assert_eq!(log.stats().closed, 2);
    assert_eq!(log.get(id_key("won")), None, "closed decisions are freed");
}

#[test]
fn events_before_their_decision_are_held_then_joined_or_dropped() {
    let log = log();
    let w = *log.windows();
    let click = event(EventKind::Click, "later", 10 * S);
    assert_eq!(log.apply(&click, 10 * S), Ok((Accepted::Held, None)));
    let orphan = event(EventKind::Click, "never", 10 * S);
    assert_eq!(log.apply(&orphan, 10 * S), Ok((Accepted::Held, None)));
    assert_eq!(log.stats().held, 2);
    let mut d = bid("later", 0, 10 * S + 1);
    d.settlement = Settlement::Direct;
    log.record(&d, 10 * S + 1);
    let mut joined = Vec::new();
    log.retry_held(10 * S + 2, |_, r| joined.push(r));
    assert_eq!(joined.len(), 1);
    assert!(joined[0].as_ref().is_ok_and(|e| e.click && e.impression));
    log.retry_held(10 * S + w.backward_ns + 1, |_, r| joined.push(r));
    assert_eq!(joined.len(), 1, "the orphan is dropped, not joined");
    let stats = log.stats();
    assert_eq!((stats.held, stats.dangling), (0, 1));
}

#[test]
fn a_full_log_evicts_the_oldest_and_releases_what_it_held() {
    let log = DecisionLog::new(LogConfig {
        capacity: 1,
        ..LogConfig::default()
    })
    .expect("config");
    let n = SHARDS * WAYS * 4;
    let mut released = 0u64;
    for i in 0..n as u64 {
        if let Some(e) = log.record(&bid(&format!("b{i}"), 10, i + 1), i + 1) {
            released += e.refund_micros;
        }
    }
    let stats = log.stats();
    assert_eq!(stats.recorded, n as u64);
    assert!(stats.evicted >= (SHARDS * WAYS * 3) as u64, "{stats:?}");
    assert_eq!(stats.evicted_unsettled, stats.evicted);
    assert_eq!(
        released,
        stats.evicted * 10,
        "every eviction gave its money back"
    );
    assert_eq!(stats.open_bids, n as u64 - stats.evicted);
    assert_eq!(log.capacity(), SHARDS * WAYS);
}

#[test]
fn bad_configs_are_refused() {
    for config in [
        LogConfig {
            capacity: 0,
            ..LogConfig::default()
        },
        LogConfig {
            capacity: LOG_ENTRIES_MAX + 1,
            ..LogConfig::default()
        },
        LogConfig {
            event_ids: 0,
            ..LogConfig::default()
        },
        LogConfig {
            windows: FeedbackWindows {
                click_ns: 0,
                ..FeedbackWindows::default()
            },
            ..LogConfig::default()
        },
    ] {
        assert!(DecisionLog::new(config).is_err(), "{config:?}");
    }
}

mod props {
    use super::*;
    use proptest::prelude::*;

    /// One step of a random history: an event for bid `bid`, or a sweep.
    #[derive(Clone, Debug)]
    enum Step {
        Event {
            bid: usize,
            kind: usize,
            price_cpm: f64,
            dt_s: u64,
        },
        Sweep {
            dt_s: u64,
        },
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0usize..6, 0usize..5, 0.0f64..20.0, 0u64..400).prop_map(
                |(bid, kind, price_cpm, dt_s)| Step::Event {
                    bid,
                    kind,
                    price_cpm,
                    dt_s
                }
            ),
            (0u64..400).prop_map(|dt_s| Step::Sweep { dt_s }),
        ]
    }

    proptest! {
        /// Whatever events come, in whatever order and however late, each
        /// bid ends charged exactly its clearing price if it won and
        /// nothing otherwise, once settled; never a negative charge, and
        /// money is only ever given back once.
        #[test]
        fn money_is_conserved_per_bid(steps in proptest::collection::vec(step(), 0..60)) {
            let log = log();
            let reserved = 5_000u64; // a 5.0 CPM bid
            for b in 0..6 {
                log.record(&bid(&format!("p{b}"), reserved, S), S);
            }
            // Per bid: net charge so far (reserved - refunded + charged).
            let mut net = [reserved as i64; 6];
            let mut won: [Option<u64>; 6] = [None; 6];
            let mut now = S;
            let take = |e: &Effect, net: &mut [i64; 6]| {
                let b = (0..6).find(|b| id_key(&format!("p{b}")) == e.decision.key).expect("a bid");
                net[b] += e.charge_micros as i64 - e.refund_micros as i64;
            };
            for s in &steps {
                match s {
                    Step::Event { bid: b, kind, price_cpm, dt_s } => {
                        now += dt_s * S;
                        let mut e = event(EventKind::ALL[*kind], &format!("p{b}"), now);
                        if e.kind == EventKind::Win || e.kind == EventKind::Conversion {
                            e.amount = *price_cpm;
                        }
                        if let Ok((_, Some(effect))) = log.apply(&e, now) {
                            if e.kind == EventKind::Win {
                                won[*b] = Some(crate::store::budget::amount_micros(price_cpm / 1000.0).unwrap());
                            }
                            take(&effect, &mut net);
                        }
                    }
                    Step::Sweep { dt_s } => {
                        now += dt_s * S;
                        log.sweep(now, usize::MAX, |e| take(&e, &mut net));
                    }
                }
            }
            // Settle everything left open.
            log.sweep(now + 10_000 * S, usize::MAX, |e| take(&e, &mut net));
            for b in 0..6 {
                prop_assert!(net[b] >= 0, "bid {b}: {}", net[b]);
                prop_assert_eq!(net[b] as u64, won[b].unwrap_or(0), "bid {}", b);
            }
            prop_assert_eq!(log.stats().open_bids, 0);
        }
    }
}
