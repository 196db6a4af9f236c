//! The feedback loop end to end over a real `cx serve`: a decision scored
//! over the binary protocol with its id, `cx feedback --addr` replaying a
//! JSONL with a click for it, a malformed line, an unknown decision and a
//! duplicate, its JSON output, and the server's `/metrics`; and
//! `cx client --decision-ids` showing the id a bid carries.

mod common;

use common::{admin_get, context, cx, sample, signal, temp_dir, ServeProcess};
use cx_wire::client::{Client, ResponseBody};
use cx_wire::protocol::ContextFlags;
use std::time::{Duration, Instant};

/// Scores one context asking for its decision id; returns the id.
fn scored_decision_id(client: &mut Client) -> String {
    let flags = ContextFlags {
        simulate: false,
        decision_ids: true,
    };
    let id = client.send_context_with(&context(1), flags).expect("sends");
    client.flush().expect("flushes");
    let response = client.recv().expect("an answer");
    assert_eq!(response.request_id, id);
    let ResponseBody::Decision(decision) = response.body else {
        panic!("a decision: {response:?}");
    };
    let imp = &decision.imps[0];
    assert!(!imp.offers.is_empty(), "the default engine chooses offers");
    imp.decision_id.clone().expect("an id, asked for")
}

/// `/metrics` once `ready` holds for it (the workers publish every few
/// ms), or panics after 10 s.
fn metrics_when(admin: std::net::SocketAddr, ready: impl Fn(&str) -> bool) -> String {
    let started = Instant::now();
    loop {
        let text = admin_get(admin, "/metrics");
        if ready(&text) {
            return text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "metrics never got there:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn cx_feedback_replays_events_into_a_server_and_metrics_show_them() {
    let dir = temp_dir("feedback-e2e");
    let log = dir.join("serve.log");
    let mut server = ServeProcess::spawn(&["--workers", "2"], &log);
    let admin = server.admin.expect("an admin port");
    let mut client = Client::connect(server.addr).expect("connects");
    client.hello().expect("hello");
    let id = scored_decision_id(&mut client);

    let events = dir.join("events.jsonl");
    let lines = [
        format!(r#"{{"kind":"click","decision_id":"{id}","event_id":"e1","offer_id":0}}"#),
        r#"{"kind":"click","decision_id":"#.to_string(),
        String::new(),
        r#"{"kind":"click","decision_id":"0-0-zzzzzz-1","event_id":"e2"}"#.to_string(),
        format!(r#"{{"kind":"click","decision_id":"{id}","event_id":"e1"}}"#),
        format!(r#"{{"kind":"win","decision_id":"{id}"}}"#),
    ];
    std::fs::write(&events, lines.join("\n") + "\n").expect("writes the events");
    let output = cx()
        .args([
            "feedback",
            "--addr",
            &server.addr.to_string(),
            "--batch",
            "2",
        ])
        .arg(&events)
        .output()
        .expect("cx feedback runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let objects: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON lines"))
        .collect();
    // Bad lines: the cut object (line 2), the win without its price (6).
    let bad: Vec<(u64, &str)> = objects
        .iter()
        .filter_map(|o| Some((o["line"].as_u64()?, o["error"].as_str()?)))
        .collect();
    assert_eq!(bad.len(), 2, "{stdout}");
    assert_eq!(bad[0].0, 2);
    assert_eq!(bad[1].0, 6);
    assert!(bad[1].1.contains("price_cpm"), "{}", bad[1].1);
    // Batches of 2: lines 1 and 4, then line 5.
    let batches: Vec<&serde_json::Value> = objects
        .iter()
        .filter(|o| o.get("batch").is_some())
        .collect();
    assert_eq!(batches.len(), 2, "{stdout}");
    let first = batches[0];
    assert_eq!(
        (first["first_line"].as_u64(), first["last_line"].as_u64()),
        (Some(1), Some(4))
    );
    assert_eq!(
        (
            first["applied"].as_u64(),
            first["held"].as_u64(),
            first["refused"].as_u64()
        ),
        (Some(1), Some(1), Some(0)),
        "{first}"
    );
    assert_eq!(
        batches[1]["refused_by_reason"]["duplicate"], 1,
        "{}",
        batches[1]
    );
    let total = &objects.last().expect("a total")["total"];
    assert_eq!(total["events"], 3, "{total}");
    assert_eq!(total["applied"], 1);
    assert_eq!(total["held"], 1);
    assert_eq!(total["refused"], 1);
    assert_eq!(total["bad_lines"], 2);
    assert_eq!(total["batches"], 2);

    let text = metrics_when(admin, |t| {
        t.contains("cx_feedback_events_total{kind=\"click\",result=\"applied\"} 1")
            && t.contains("cx_feedback_refused_total{reason=\"duplicate\"} 1")
    });
    assert_eq!(
        sample(
            &text,
            "cx_feedback_events_total{kind=\"any\",result=\"held\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "cx_feedback_events_total{kind=\"any\",result=\"refused\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(&text, "cx_feedback_refused_total{reason=\"bad_amount\"}"),
        0.0
    );
    assert_eq!(
        sample(&text, "cx_decision_log_open_bids"),
        0.0,
        "no auction bid"
    );
    for gauge in [
        "cx_decision_log_held_events",
        "cx_decision_log_evicted_open",
        "cx_decision_log_expired_unsettled",
        "cx_decision_log_dangling_events",
    ] {
        assert!(sample(&text, gauge) >= 0.0, "{gauge}");
    }

    // cx client --decision-ids: an OpenRTB request's decisions carry the
    // id its bid carries.
    let request = dir.join("request.jsonl");
    std::fs::write(
        &request,
        r#"{"id":"r1","imp":[{"id":"1","banner":{"w":300,"h":250}}],"site":{"id":"s1","domain":"example.com"},"device":{"devicetype":4,"geo":{"country":"USA"}},"user":{"id":"u9"}}"#,
    )
    .expect("writes the request");
    let output = cx()
        .args([
            "client",
            "--addr",
            &server.addr.to_string(),
            "--decision-ids",
        ])
        .arg(&request)
        .output()
        .expect("cx client runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("one JSON object");
    let decision_id = answer["decisions"][0]["decision_id"]
        .as_str()
        .unwrap_or_else(|| panic!("a decision id: {answer}"));
    let bid_id = answer["response"]["seatbid"][0]["bid"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a bid: {answer}"));
    assert_eq!(decision_id, bid_id);

    signal(server.pid, "TERM");
    assert!(server.child.wait().expect("exits").success());
}

#[test]
fn cx_feedback_fails_clearly_without_a_server() {
    let dir = temp_dir("feedback-no-server");
    let events = dir.join("events.jsonl");
    std::fs::write(&events, "{\"kind\":\"click\",\"decision_id\":\"d\"}\n").expect("writes");
    let output = cx()
        .args(["feedback", "--addr", "127.0.0.1:9", "--timeout-ms", "2000"])
        .arg(&events)
        .output()
        .expect("cx feedback runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("127.0.0.1:9"), "{stderr}");
}
