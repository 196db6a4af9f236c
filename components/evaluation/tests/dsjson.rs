//! The DSJSON reader and writer: round trips, the format's rules, and a
//! clear error for every kind of bad line.

use cx_evaluation::dsjson::{DsjsonReader, DsjsonWriter, LoggedEvent, LINE_BYTES_MAX};
use cx_evaluation::Error;
use cx_features::{DeviceType, Os, RequestContext};
use serde_json::{json, Value};

fn event(id: &str, chosen: usize, reward: f64) -> LoggedEvent {
    LoggedEvent {
        event_id: id.into(),
        timestamp_unix_ns: 1_767_225_600_123_456_700,
        model_id: Some("ab12".into()),
        context: RequestContext {
            user_id: "u-1".into(),
            device_type: DeviceType::Phone,
            os: Os::Android,
            country: "USA".into(),
            placement_width: 320,
            placement_height: 50,
            timestamp: 1_767_225_600,
            ..RequestContext::default()
        },
        offers: vec![1001, 1004, 1009],
        chosen,
        probabilities: vec![0.7, 0.2, 0.1],
        reward,
        experiment: None,
    }
}

fn write(events: &[LoggedEvent]) -> Vec<u8> {
    let mut writer = DsjsonWriter::new(Vec::new());
    for e in events {
        writer.write(e).unwrap();
    }
    assert_eq!(writer.events(), events.len() as u64);
    writer.finish().unwrap()
}

fn read(bytes: &[u8]) -> Vec<cx_evaluation::Result<(usize, LoggedEvent)>> {
    DsjsonReader::new(bytes).collect()
}

#[test]
fn written_events_read_back_unchanged() {
    let events = [
        event("e1", 0, 1.0),
        event("e2", 2, 0.0),
        event("e3", 1, 2.5),
    ];
    let bytes = write(&events);
    let read: Vec<_> = read(&bytes).into_iter().map(Result::unwrap).collect();
    assert_eq!(read.len(), 3);
    for (i, ((line, got), want)) in read.iter().zip(&events).enumerate() {
        assert_eq!(*line, i + 1);
        assert_eq!(got, want);
    }
}

#[test]
fn lines_have_the_decision_service_shape() {
    let bytes = write(&[event("e2", 2, 1.0)]);
    let line: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(line["_label_cost"], -1.0);
    assert_eq!(line["_original_label_cost"], -1.0);
    assert_eq!(line["_label_probability"], 0.1);
    assert_eq!(line["_label_Action"], 3);
    assert_eq!(line["_labelIndex"], 2);
    assert_eq!(line["Version"], "1");
    assert_eq!(line["EventId"], "e2");
    assert_eq!(line["Timestamp"], "2026-01-01T00:00:00.1234567Z");
    assert_eq!(line["a"], json!([3, 1, 2]));
    assert_eq!(line["p"], json!([0.1, 0.7, 0.2]));
    assert_eq!(line["VWState"], json!({"m": "ab12"}));
    assert_eq!(
        line["c"]["_multi"],
        json!([{"offer": 1001}, {"offer": 1004}, {"offer": 1009}])
    );
    assert_eq!(line["c"]["cx"]["device_type"], 4);
    assert_eq!(line["c"]["cx"]["os"], "android");
    let text = String::from_utf8(bytes).unwrap();
    let order = [
        "_label_cost",
        "_label_probability",
        "_label_Action",
        "_labelIndex",
        "Timestamp",
    ];
    let at: Vec<usize> = order
        .iter()
        .map(|k| text.find(&format!("\"{k}\"")).unwrap())
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{text}");
}

/// A line as another writer might produce it: extra fields, no VWState,
/// blank lines, CRLF, a byte-order mark.
#[test]
fn foreign_lines_with_extra_fields_are_read() {
    let line = r#"{"_label_cost":-0.0,"_label_probability":0.05000000074505806,"_label_Action":2,"_labelIndex":1,"o":[{"v":0.0}],"Timestamp":"2021-02-04T16:31:29.2460000Z","Version":"1","EventId":"x","a":[2,1],"c":{"cx":{"country":"FRA"},"other":{"f":1},"_multi":[{"offer":7,"_tag":"seven"},{"offer":8}]},"p":[0.05,0.95],"pdrop":0.1}"#;
    let input = format!("\u{feff}{line}\r\n\n   \r\n{line}\n");
    let events: Vec<_> = read(input.as_bytes())
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(events.len(), 2);
    let (number, e) = &events[1];
    assert_eq!(*number, 4);
    assert_eq!(e.offers, [7, 8]);
    assert_eq!(e.chosen, 1);
    assert_eq!(e.probabilities, [0.95, 0.05]);
    assert_eq!(e.logging_probability(), 0.05);
    assert_eq!(e.reward, 0.0);
    assert!(e.reward.is_sign_positive());
    assert_eq!(e.context.country, "FRA");
    assert_eq!(e.model_id, None);
    assert_eq!(e.timestamp_unix_ns, 1_612_456_289_246_000_000);
}

fn good_line() -> Value {
    let bytes = write(&[event("e1", 0, 1.0)]);
    serde_json::from_slice(&bytes).unwrap()
}

/// The error the reader gives for `line` as the second line of a log.
fn error_for(line: &Value) -> Error {
    let text = format!("{}\n{}\n", good_line(), line);
    let mut results = read(text.as_bytes()).into_iter();
    results.next().unwrap().unwrap();
    results.next().unwrap().unwrap_err()
}

fn assert_names(err: &Error, field: &str, words: &str) {
    let text = err.to_string();
    assert!(text.starts_with("line 2: "), "{text}");
    assert!(
        text.contains(&format!("`{field}`")),
        "{text} should name `{field}`"
    );
    assert!(text.contains(words), "{text} should say {words:?}");
}

#[test]
fn missing_fields_are_named() {
    for field in [
        "_label_cost",
        "_label_probability",
        "a",
        "p",
        "c",
        "EventId",
        "Timestamp",
    ] {
        let mut line = good_line();
        line.as_object_mut().unwrap().remove(field);
        let err = error_for(&line);
        assert!(matches!(err, Error::Json { line: 2, .. }), "{err}");
        assert!(
            err.to_string()
                .contains(&format!("missing field `{field}`")),
            "{err}"
        );
    }
    let mut line = good_line();
    line["c"].as_object_mut().unwrap().remove("_multi");
    assert_names(&error_for(&line), "c", "missing field `_multi`");
    let mut line = good_line();
    line["c"]["_multi"][1] = json!({"id": 3});
    assert_names(&error_for(&line), "c._multi[1]", "missing field `offer`");
    let mut line = good_line();
    line["c"]["cx"]["device_typ"] = json!(4);
    assert_names(&error_for(&line), "c.cx.device_typ", "unknown field");
    let mut line = good_line();
    line["p"][1] = json!("0.2");
    assert_names(&error_for(&line), "p[1]", "invalid type");
}

/// A change to a good line.
type Edit = Box<dyn Fn(&mut Value)>;

#[test]
fn broken_rules_are_named() {
    let cases: Vec<(Edit, &str, &str)> = vec![
        (
            Box::new(|l| l["p"] = json!([1.5, -0.3, -0.2])),
            "p[0]",
            "outside [0, 1]",
        ),
        (
            Box::new(|l| l["p"] = json!([0.0, 0.9, 0.1])),
            "p[0]",
            "(0, 1]",
        ),
        (
            Box::new(|l| l["p"] = json!([0.7, 0.2, 0.2])),
            "p",
            "sums to",
        ),
        (
            Box::new(|l| l["p"] = json!([0.7, 0.3])),
            "p",
            "holds 2 probabilities",
        ),
        (
            Box::new(|l| l["_label_probability"] = json!(0.0)),
            "_label_probability",
            "(0, 1]",
        ),
        (
            Box::new(|l| l["_label_probability"] = json!(1.2)),
            "_label_probability",
            "(0, 1]",
        ),
        (
            Box::new(|l| l["_label_probability"] = json!(0.5)),
            "_label_probability",
            "`p[0]` is 0.7",
        ),
        (
            Box::new(|l| l["_label_Action"] = json!(9)),
            "_label_Action",
            "not in `a`",
        ),
        (
            Box::new(|l| l["_label_Action"] = json!(2)),
            "_label_Action",
            "must come first",
        ),
        (
            Box::new(|l| l["_labelIndex"] = json!(1)),
            "_labelIndex",
            "expected `_label_Action` - 1 = 0",
        ),
        (
            Box::new(|l| l["a"] = json!([1, 2, 4])),
            "a[2]",
            "outside 1..=3",
        ),
        (
            Box::new(|l| l["a"] = json!([1, 2, 2])),
            "a[2]",
            "repeats action 2",
        ),
        (Box::new(|l| l["a"] = json!([])), "a", "is empty"),
        (
            Box::new(|l| l["c"]["_multi"][2] = json!({"offer": 1001})),
            "c._multi[2].offer",
            "repeats offer 1001",
        ),
        (
            Box::new(|l| l["c"]["_multi"] = json!([{"offer": 1}])),
            "c._multi",
            "holds 1 actions",
        ),
        (
            Box::new(|l| l["Version"] = json!("2")),
            "Version",
            "expected \"1\"",
        ),
        (
            Box::new(|l| l["EventId"] = json!("")),
            "EventId",
            "is empty",
        ),
        (
            Box::new(|l| l["Timestamp"] = json!("yesterday")),
            "Timestamp",
            "RFC 3339",
        ),
    ];
    for (edit, field, words) in cases {
        let mut line = good_line();
        edit(&mut line);
        let err = error_for(&line);
        assert!(matches!(err, Error::Field { line: 2, .. }), "{err}");
        assert_names(&err, field, words);
    }
}

#[test]
fn non_finite_numbers_and_bad_json_are_refused() {
    let text = good_line()
        .to_string()
        .replace("\"_label_cost\":-1.0", "\"_label_cost\":-1e999");
    let err = read(format!("{}\n{text}\n", good_line()).as_bytes())
        .remove(1)
        .unwrap_err();
    assert!(matches!(err, Error::Json { line: 2, .. }), "{err}");
    assert!(err.to_string().contains("_label_cost"), "{err}");
    for bad in ["{", "[1, 2]", "not json", "{} {}"] {
        let err = read(format!("{}\n{bad}\n", good_line()).as_bytes())
            .remove(1)
            .unwrap_err();
        assert!(err.to_string().starts_with("line 2: "), "{err}");
    }
}

#[test]
fn oversize_lines_are_refused_and_skipped() {
    let long = format!("{{\"pad\": \"{}\"}}", "x".repeat(800));
    let input = format!("{}\n{long}\n{}\n", good_line(), good_line());
    let mut reader = DsjsonReader::with_line_limit(input.as_bytes(), 700);
    reader.next_event().unwrap().unwrap();
    let err = reader.next_event().unwrap_err();
    let Error::LineTooLong {
        line: 2,
        bytes,
        limit: 700,
    } = err
    else {
        panic!("{err}");
    };
    assert_eq!(bytes, long.len() as u64);
    assert!(
        err.to_string().contains("more than the limit of 700 bytes"),
        "{err}"
    );
    let (line, _) = reader.next_event().unwrap().expect("the next line is read");
    assert_eq!(line, 3);
    assert!(reader.next_event().unwrap().is_none());
    assert_eq!(LINE_BYTES_MAX, 1 << 20);
}

#[test]
fn unwritable_events_are_refused_before_anything_is_written() {
    let mut writer = DsjsonWriter::new(Vec::new());
    let mut bad = event("e9", 0, 1.0);
    bad.probabilities = vec![0.0, 0.5, 0.5];
    let err = writer.write(&bad).unwrap_err();
    assert!(
        err.to_string().contains("e9") && err.to_string().contains("p[0]"),
        "{err}"
    );
    bad = event("e9", 3, 1.0);
    assert!(writer
        .write(&bad)
        .unwrap_err()
        .to_string()
        .contains("chosen"));
    bad = event("e9", 0, f64::NAN);
    assert!(writer
        .write(&bad)
        .unwrap_err()
        .to_string()
        .contains("reward"));
    bad = event("e9", 0, 1.0);
    bad.offers.clear();
    assert!(writer.write(&bad).is_err());
    assert!(writer.finish().unwrap().is_empty());
}
