//! The decision journal and `cx decisions export`: an engine records its
//! decisions and the feedback applied to them, and export joins them into
//! DSJSON whose rewards are the clicks (or conversions) that came; a
//! server records the same with `--journal-dir`.

mod common;

use common::{connect, context, start, stop};
use cx_engine::domain::feedback::{id_key, Accepted, Event, EventKind};
use cx_engine::journal::{Journal, JournalConfig};
use cx_engine::openrtb::BidIds;
use cx_engine::wire::openrtb::parse_request;
use cx_engine::Engine;
use cx_evaluation::DsjsonReader;
use cx_wire::client::ResponseBody;
use cx_wire::protocol::{ContextFlags, FeedbackEvent, FeedbackKind};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

/// 2026-01-01 00:00 UTC.
const T0_NS: u64 = 1_767_225_600_000_000_000;
/// Ten days later, ms: every window has closed.
const LATER_MS: u64 = T0_NS / 1_000_000 + 10 * 86_400_000;

/// Runs `cx decisions export` on `journal`; returns its report and the
/// rewards written by decision id.
fn export(journal: &Path, extra: &[&str]) -> (Value, HashMap<String, f64>) {
    let out = journal.join("export.dsjson");
    let output = common::cx()
        .args(["decisions", "export", "--journal"])
        .arg(journal)
        .arg("--out")
        .arg(&out)
        .args(extra)
        .output()
        .expect("runs cx");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("a JSON report");
    let mut rewards = HashMap::new();
    let mut reader = DsjsonReader::new(std::io::BufReader::new(
        std::fs::File::open(&out).expect("written"),
    ));
    while let Some((_, event)) = reader.next_event().expect("valid DSJSON") {
        rewards.insert(event.event_id, event.reward);
    }
    (report, rewards)
}

#[test]
fn export_joins_an_engine_s_decisions_with_the_clicks_and_conversions_that_came() {
    let dir = common::temp_dir("journal_engine");
    let journal = Journal::start(JournalConfig::in_dir(&dir)).expect("journal");
    let mut engine = Engine::builder()
        .journal(journal.clone())
        .bid_ids(BidIds::new(0, 0, 1_767_225_600_000))
        .build()
        .expect("engine");
    let mut expected = HashMap::new();
    for k in 0..40u64 {
        let now = T0_NS + k * 1_000_000;
        let json = format!(
            r#"{{"id":"r{k}","imp":[{{"id":"1","banner":{{"w":300,"h":250}}}}],
               "site":{{"id":"s"}},"device":{{"devicetype":2,"geo":{{"country":"USA"}}}},
               "user":{{"id":"u{k}"}}}}"#
        );
        let request = parse_request(json.as_bytes()).expect("valid");
        let outcome = engine.decide_openrtb(&request, now).expect("decides");
        let Some(bid) = outcome.response.seatbid.first().map(|s| &s.bid[0]) else {
            continue;
        };
        let key = id_key(&bid.id);
        let send = |engine: &mut Engine, kind, amount| {
            let event = Event {
                amount,
                ..Event::new(kind, key)
            };
            assert_eq!(engine.feedback_event(&event, now), Ok(Accepted::Applied));
        };
        let (clicked, converted) = (k % 4 == 0, k % 8 == 0);
        send(&mut engine, EventKind::Win, bid.price * 0.9);
        if clicked {
            send(&mut engine, EventKind::Click, 0.0);
        }
        if converted {
            send(&mut engine, EventKind::Conversion, 2.5);
        }
        expected.insert(bid.id.clone(), (clicked, converted));
    }
    assert!(expected.len() > 30, "most requests got a bid");
    drop(engine);
    let stats = journal.stats();
    drop(journal); // the last handle: the writer drains and stops
    assert_eq!(stats.dropped, 0);
    // A damaged observation line is reported and skipped.
    let observations = dir.join("observations-000001.jsonl");
    let mut text = std::fs::read_to_string(&observations).expect("observations");
    text.push_str("{\"decision_key\": \"not hex\", \"click\": true, \"conversion_value\": 0}\n");
    std::fs::write(&observations, text).expect("rewritten");

    let later = LATER_MS.to_string();
    let (report, rewards) = export(&dir, &["--as-of-ms", &later]);
    assert_eq!(report["interactions"], expected.len());
    assert_eq!(report["exported"], expected.len());
    assert_eq!(report["open"], 0);
    assert_eq!(report["bad_lines"], 1);
    assert_eq!(report["observed_without_interaction"], 0);
    let clicked = expected.values().filter(|(c, _)| *c).count();
    assert_eq!(report["rewarded"], clicked);
    for (id, (clicked, _)) in &expected {
        assert_eq!(rewards[id], f64::from(u8::from(*clicked)), "{id}");
    }
    let (report, rewards) = export(&dir, &["--as-of-ms", &later, "--reward", "conversion"]);
    for (id, (_, converted)) in &expected {
        let value = if *converted { 2.5 } else { 0.0 };
        assert_eq!(rewards[id], value, "{id}");
    }
    assert_eq!(report["reward"], "conversion");
    // At the decisions' own time every click window is still open.
    let at_decision = (T0_NS / 1_000_000).to_string();
    let (report, rewards) = export(&dir, &["--as-of-ms", &at_decision]);
    assert_eq!(report["open"], expected.len());
    assert!(rewards.is_empty());
}

#[test]
fn a_server_with_a_journal_dir_records_its_decisions_and_their_feedback() {
    let dir = common::temp_dir("journal_server");
    let mut config = common::config(cx_server::config::IoMode::Epoll);
    config.journal_dir = Some(dir.clone());
    let server = start(config);
    let mut client = connect(&server);
    let flags = ContextFlags {
        simulate: false,
        decision_ids: true,
    };
    let mut ids = Vec::new();
    for i in 0..5 {
        let id = client.send_context_with(&context(i), flags).expect("sends");
        client.flush().expect("flushes");
        let response = client.recv().expect("an answer");
        assert_eq!(response.request_id, id);
        let ResponseBody::Decision(decision) = response.body else {
            panic!("a decision: {response:?}");
        };
        ids.push(decision.imps[0].decision_id.clone().expect("an id"));
    }
    let click = FeedbackEvent::new(FeedbackKind::Click, &ids[0]);
    let ack = client.feedback(&[click]).expect("acknowledged");
    assert_eq!(ack.applied, 1, "{ack:?}");
    drop(client);
    stop(server);
    let far = (u64::MAX / 2_000_000).to_string();
    let (report, rewards) = export(&dir, &["--as-of-ms", &far]);
    assert_eq!(report["exported"], 5, "{report}");
    assert_eq!(rewards[&ids[0]], 1.0);
    assert_eq!(rewards.values().sum::<f64>(), 1.0);
}

#[test]
fn a_directory_that_is_not_a_journal_is_refused_by_name() {
    let dir = common::temp_dir("journal_none");
    let output = common::cx()
        .args(["decisions", "export", "--journal"])
        .arg(&dir)
        .args(["--out", "/dev/null"])
        .output()
        .expect("runs cx");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not a decision journal"), "{stderr}");
}
