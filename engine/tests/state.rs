//! State that survives restarts: budgets, frequency counts and the
//! decision log saved to a state file and restored into a new engine;
//! a corrupt file refused, changing nothing.

mod common;

use cx_engine::domain::feedback::{id_key, Accepted, Event, EventKind};
use cx_engine::domain::store::{BudgetBackend, Budgets, WinRateBackend};
use cx_engine::openrtb::BidIds;
use cx_engine::wire::openrtb::parse_request;
use cx_engine::{Engine, EngineConfig};

use common::T0_NS;

fn engine(worker: u32) -> Engine {
    Engine::builder()
        .catalog(common::budgeted_catalog())
        .config(EngineConfig::default())
        .bid_ids(BidIds::new(
            0,
            worker,
            1_767_225_600_000 + u64::from(worker),
        ))
        .build()
        .expect("engine")
}

fn bid(engine: &mut Engine, user: &str, now_ns: u64) -> Option<(String, f64)> {
    let json = format!(
        r#"{{"id":"r","imp":[{{"id":"1","banner":{{"w":300,"h":250}}}}],
           "site":{{"id":"s"}},"device":{{"devicetype":2,"geo":{{"country":"USA"}}}},
           "user":{{"id":"{user}"}}}}"#
    );
    let request = parse_request(json.as_bytes()).expect("valid");
    let outcome = engine.decide_openrtb(&request, now_ns).expect("decides");
    let bid = outcome.response.seatbid.first()?.bid.first()?;
    Some((bid.id.clone(), bid.price))
}

fn spent(engine: &Engine) -> f64 {
    engine.world().resource::<BudgetBackend>().spent(0, T0_NS)
}

#[test]
fn budgets_caps_and_open_bids_survive_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state.bin");
    let mut before = engine(0);
    let (open_bid, price) = bid(&mut before, "u1", T0_NS).expect("a bid");
    bid(&mut before, "u2", T0_NS + 1).expect("a bid");
    // A click on the second bid (implying its impression) feeds the
    // offer's posterior.
    let (second_bid, _) = bid(&mut before, "u3", T0_NS + 1).expect("a bid");
    let mut win = Event::new(EventKind::Win, id_key(&second_bid));
    win.amount = 0.1;
    assert_eq!(
        before.feedback_event(&win, T0_NS + 1),
        Ok(Accepted::Applied)
    );
    let click = Event::new(EventKind::Click, id_key(&second_bid));
    assert_eq!(
        before.feedback_event(&click, T0_NS + 1),
        Ok(Accepted::Applied)
    );
    let spent_before = spent(&before);
    let win_rates = |engine: &Engine| {
        let mut bytes = Vec::new();
        engine
            .world()
            .resource::<WinRateBackend>()
            .write_state(&mut bytes);
        bytes
    };
    let rates_before = win_rates(&before);
    assert!(
        rates_before.len() > 8,
        "the win taught the placement's win rates"
    );
    let info = before.save_state(&path, T0_NS + 2).expect("saved");
    assert_eq!(
        (
            info.offers,
            info.frequency_entries,
            info.decisions,
            info.posterior_arms
        ),
        (1, 3, 3, 1)
    );

    let mut after = engine(1);
    let restored = after
        .restore_state_file(&path, 1 << 30, T0_NS + 3)
        .expect("restored");
    assert_eq!((restored.dropped, restored.posterior_arms), (0, 1));
    assert_eq!(win_rates(&after), rates_before, "win rates restored");
    let posterior = after.posterior(1000, T0_NS + 3).expect("offer 1000");
    // (Decayed by the half-life over the few ns since.)
    assert!((posterior.impressions - 1.0).abs() < 1e-9, "{posterior:?}");
    assert!((posterior.clicks - 1.0).abs() < 1e-9, "{posterior:?}");
    assert_eq!(spent(&after), spent_before, "no budget comes back");
    assert_eq!(
        bid(&mut after, "u1", T0_NS + 4),
        None,
        "u1's cap still holds"
    );
    // The open bid's win, after the restart, charges its clearing price.
    let mut win = Event::new(EventKind::Win, id_key(&open_bid));
    win.amount = price / 2.0;
    assert_eq!(after.feedback_event(&win, T0_NS + 5), Ok(Accepted::Applied));
    assert!((spent(&after) - (spent_before - price / 2000.0)).abs() < 1.5e-6);
}

#[test]
fn a_corrupt_state_file_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state.bin");
    let mut before = engine(0);
    bid(&mut before, "u1", T0_NS).expect("a bid");
    before.save_state(&path, T0_NS).expect("saved");
    let mut bytes = std::fs::read(&path).expect("bytes");
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    std::fs::write(&path, &bytes).expect("write");

    let mut after = engine(1);
    bid(&mut after, "u9", T0_NS).expect("a bid");
    let spent_before = spent(&after);
    let err = after
        .restore_state_file(&path, 1 << 30, T0_NS)
        .expect_err("refused")
        .to_string();
    assert!(err.contains("checksum"), "{err}");
    assert_eq!(spent(&after), spent_before);
    std::fs::write(&path, b"not a state file at all, clearly").expect("write");
    let err = after
        .restore_state_file(&path, 1 << 30, T0_NS)
        .expect_err("refused")
        .to_string();
    assert!(err.contains("magic"), "{err}");
}
