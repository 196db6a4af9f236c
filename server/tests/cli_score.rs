//! End-to-end tests of `cx score`: OpenRTB bid requests in (the committed
//! fixtures, hand-made good and bad lines, and, when present, every request
//! of `../shared/data/openrtb`), one JSON answer per request out.

use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fixed host clock (2026-01-01T00:00:00Z), unix ms.
const NOW_MS: &str = "1767225600000";

/// How far a decision's factor contributions may be from its score.
const TOL: f64 = 1e-5;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../components/wire/tests/fixtures/openrtb")
}

/// The committed request fixtures: (file, the requests it holds).
fn fixture_requests() -> Vec<(PathBuf, Vec<Value>)> {
    let dir = fixtures();
    let mut out = Vec::new();
    for name in ["2.5_mobile.json", "2.6_video.json", "bsm_breq.video.json"] {
        let path = dir.join(name);
        let request = read_json(&path);
        out.push((path, vec![request]));
    }
    let path = dir.join("prebid_sample.jsonl");
    let requests = std::fs::read_to_string(&path)
        .expect("read prebid sample")
        .lines()
        .map(|line| {
            let wrapper: Value = serde_json::from_str(line).expect("wrapper is JSON");
            wrapper["request"].clone()
        })
        .collect();
    out.push((path, requests));
    out
}

fn read_json(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A file in the temp directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &[u8]) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("cx-score-test-{}-{n}-{name}", std::process::id()));
        std::fs::write(&path, contents).expect("write temp file");
        Self(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs `cx` with `args` and `stdin`, without the environment variables that
/// would change its choices.
fn cx(args: &[&str], stdin: &[u8]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cx"));
    cmd.args(args)
        .env_remove("CX_BACKEND")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("CX_ENGINE_") {
            cmd.env_remove(key);
        }
    }
    let mut child = cmd.spawn().expect("spawn cx");
    let mut pipe = child.stdin.take().expect("stdin");
    // cx may exit before reading stdin; a broken pipe here is fine.
    let _ = pipe.write_all(stdin);
    drop(pipe);
    child.wait_with_output().expect("wait for cx")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts success and parses every stdout line as JSON.
fn ok_lines(out: &Output) -> Vec<Value> {
    assert!(
        out.status.success(),
        "cx failed: {:?}\nstderr: {}",
        out.status,
        text(&out.stderr)
    );
    text(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// Asserts failure, an empty stdout, and a stderr containing every one of `needles`.
fn assert_fails(out: &Output, needles: &[&str]) {
    let stderr = text(&out.stderr);
    assert!(
        !out.status.success(),
        "cx succeeded; stdout: {}",
        text(&out.stdout)
    );
    assert!(
        out.stdout.is_empty(),
        "stdout should be empty, got: {}",
        text(&out.stdout)
    );
    for needle in needles {
        assert!(stderr.contains(needle), "stderr lacks {needle:?}: {stderr}");
    }
}

/// The `error` of an output line, which must be an error line for `line`.
fn error_of(answer: &Value, line: u64) -> &str {
    assert_eq!(answer["line"], line, "{answer}");
    assert!(answer.get("response").is_none(), "{answer}");
    let error = &answer["error"];
    assert!(
        error["code"].is_string() && error["code_num"].is_u64(),
        "{answer}"
    );
    error["message"]
        .as_str()
        .unwrap_or_else(|| panic!("line {line} should be an error: {answer}"))
}

/// Checks an answer against its request: the response's id, every bid's
/// impression and floor, one decision per impression in order, and the
/// factor contributions of every offer against its score. Returns the bids.
fn check_answer(label: &str, request: &Value, answer: &Value) -> usize {
    assert!(answer.get("error").is_none(), "{label}: {answer}");
    let response = &answer["response"];
    assert_eq!(response["id"], request["id"], "{label}: response id");
    let imps = request["imp"].as_array().expect("imp list");
    let floor_of = |imp_id: &str| {
        let imp = imps
            .iter()
            .find(|imp| imp["id"] == imp_id)
            .unwrap_or_else(|| panic!("{label}: bid for unknown imp {imp_id}"));
        imp["bidfloor"].as_f64().unwrap_or(0.0)
    };
    let mut bids = 0;
    for seat in response["seatbid"].as_array().into_iter().flatten() {
        for bid in seat["bid"].as_array().expect("bid list") {
            let imp_id = bid["impid"].as_str().expect("impid");
            let price = bid["price"].as_f64().expect("price");
            let floor = floor_of(imp_id);
            assert!(price >= floor, "{label}: price {price} < floor {floor}");
            bids += 1;
        }
    }
    if bids == 0 {
        assert!(response["nbr"].is_u64(), "{label}: no bid and no nbr");
    }
    let decisions = answer["decisions"].as_array().expect("decisions");
    let imp_ids: Vec<&Value> = imps.iter().map(|imp| &imp["id"]).collect();
    let decided_ids: Vec<&Value> = decisions.iter().map(|d| &d["imp_id"]).collect();
    assert_eq!(
        decided_ids, imp_ids,
        "{label}: one decision per imp, in order"
    );
    for d in decisions {
        let Some(decision) = d["decision"].as_object() else {
            assert!(d["skipped"].is_string(), "{label}: {d}");
            continue;
        };
        for offer in decision["offers"].as_array().expect("offers") {
            let score = offer["score"].as_f64().expect("score");
            let explained: f64 = offer["factors"]
                .as_array()
                .expect("factors")
                .iter()
                .map(|f| f["contribution"].as_f64().expect("contribution"))
                .sum();
            assert!(
                (explained - score).abs() <= TOL,
                "{label}: factors sum to {explained}, score {score}"
            );
        }
    }
    bids
}

#[test]
fn the_fixtures_get_one_valid_answer_per_request() {
    let mut bids = 0;
    for (path, requests) in fixture_requests() {
        let file = path.to_str().expect("utf-8 path");
        let answers = ok_lines(&cx(&["score", file, "--now-ms", NOW_MS], b""));
        assert_eq!(answers.len(), requests.len(), "{file}");
        for (i, (request, answer)) in requests.iter().zip(&answers).enumerate() {
            bids += check_answer(&format!("{file} request {i}"), request, answer);
        }
    }
    assert!(bids >= 10, "the fixtures should draw bids, got {bids}");
}

#[test]
fn stdin_is_the_default_input() {
    let path = fixtures().join("prebid_sample.jsonl");
    let bytes = std::fs::read(&path).expect("read prebid sample");
    let from_file = cx(&["score", path.to_str().unwrap(), "--now-ms", NOW_MS], b"");
    let from_stdin = cx(&["score", "--now-ms", NOW_MS], &bytes);
    let from_dash = cx(&["score", "-", "--now-ms", NOW_MS], &bytes);
    assert_eq!(ok_lines(&from_stdin).len(), 7);
    assert_eq!(from_stdin.stdout, from_file.stdout);
    assert_eq!(from_dash.stdout, from_file.stdout);
}

#[test]
fn bad_lines_get_errors_naming_the_field_and_good_lines_still_get_answers() {
    let good =
        |id: &str| json!({"id": id, "imp": [{"id": "1", "bidfloor": 0.5}], "site": {}}).to_string();
    // Over the line limit (REQUEST_BYTES_MAX + 64 KiB): skipped unread.
    let huge = format!(
        r#"{{"id":"huge","imp":[{{"id":"1"}}],"ext":{{"pad":"{}"}}}}"#,
        "x".repeat(3 << 20)
    );
    // Under the line limit but over REQUEST_BYTES_MAX: refused by the parser.
    let big = format!(
        r#"{{"id":"big","imp":[{{"id":"1"}}],"ext":{{"pad":"{}"}}}}"#,
        "x".repeat((1 << 20) + 1000)
    );
    let lines = [
        good("g1"),                                                        // 1
        "{not json".into(),                                                // 2
        r#"{"imp": [{"id": "1"}]}"#.into(),                                // 3
        String::new(),                                                     // 4: blank, skipped
        r#"{"id": "r", "imp": "x"}"#.into(),                               // 5
        huge,                                                              // 6
        good("g2"),                                                        // 7
        r#"{"id": "r", "imp": [{"id": "1", "bidfloor": "high"}]}"#.into(), // 8
        big,                                                               // 9
        "   ".into(),                                                      // 10: blank
        r#"{"id": "r", "imp": []}"#.into(),                                // 11
        good("g3"),                                                        // 12
    ];
    let input = lines.join("\n") + "\n";
    let answers = ok_lines(&cx(&["score", "--now-ms", NOW_MS], input.as_bytes()));
    assert_eq!(answers.len(), 10, "one answer per non-blank line");

    assert_eq!(answers[0]["line"], 1);
    assert_eq!(answers[0]["response"]["id"], "g1");
    assert!(error_of(&answers[1], 2).contains("`$`"));
    assert!(error_of(&answers[2], 3).contains("`id`: missing required field"));
    assert!(error_of(&answers[3], 5).contains("`imp`: invalid type"));
    let huge = error_of(&answers[4], 6);
    assert!(
        huge.contains("more than the limit of 1114112 bytes"),
        "{huge}"
    );
    assert_eq!(answers[5]["line"], 7);
    assert_eq!(answers[5]["response"]["id"], "g2");
    assert!(error_of(&answers[6], 8).contains("`imp[0].bidfloor`"));
    let big = error_of(&answers[7], 9);
    assert!(big.contains("`$`") && big.contains("1048576"), "{big}");
    assert!(error_of(&answers[8], 11).contains("`imp`"));
    assert_eq!(answers[9]["line"], 12);
    assert_eq!(answers[9]["response"]["id"], "g3");
}

#[test]
fn a_pretty_printed_document_is_one_request() {
    let request = json!({
        "id": "pretty-1",
        "imp": [
            {"id": "a", "bidfloor": 0.25, "banner": {"w": 300, "h": 250}},
            {"id": "b", "banner": {"w": 320, "h": 50}}
        ],
        "site": {"domain": "news.example", "cat": ["IAB12"]},
        "device": {"devicetype": 2, "geo": {"country": "USA"}}
    });
    let pretty = format!("\n{}\n", serde_json::to_string_pretty(&request).unwrap());
    assert!(pretty.lines().count() > 10);
    let answers = ok_lines(&cx(&["score", "--now-ms", NOW_MS], pretty.as_bytes()));
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(answers[0]["line"], 2, "the document starts on line 2");
    check_answer("pretty", &request, &answers[0]);

    // --pretty indents each answer; it parses to the same object.
    let indented = cx(
        &["score", "--now-ms", NOW_MS, "--pretty"],
        pretty.as_bytes(),
    );
    assert!(indented.status.success());
    let again: Value = serde_json::from_slice(&indented.stdout).expect("one JSON object");
    assert_eq!(again, answers[0]);
}

#[test]
fn an_invalid_multi_line_document_gets_errors_not_silence() {
    let input = b"{\n  \"id\": \"r\",\n  \"imp\": [\n";
    let answers = ok_lines(&cx(&["score", "--now-ms", NOW_MS], input));
    assert_eq!(
        answers.len(),
        3,
        "each line of a broken document is answered"
    );
    for (i, answer) in answers.iter().enumerate() {
        error_of(answer, i as u64 + 1);
    }
}

#[test]
fn request_wrappers_are_unwrapped() {
    let inner = json!({"id": "w1", "imp": [{"id": "1", "bidfloor": 1.5}], "site": {}});
    let lines = [
        json!({"source": "a.json", "request": inner, "note": [1, 2]}).to_string(),
        json!({"source": "b.json", "request": {"id": "w2", "imp": [{}]}}).to_string(),
        json!({"request": "not an object"}).to_string(),
    ];
    let answers = ok_lines(&cx(
        &["score", "--now-ms", NOW_MS],
        lines.join("\n").as_bytes(),
    ));
    assert_eq!(answers.len(), 3);
    check_answer("wrapper", &inner, &answers[0]);
    let err = error_of(&answers[1], 2);
    assert!(err.contains("`request.imp[0].id`"), "{err}");
    let err = error_of(&answers[2], 3);
    assert!(err.contains("`request`"), "{err}");
}

#[test]
fn a_missing_input_file_fails_naming_it() {
    let missing = std::env::temp_dir().join("cx-score-test-no-such-file.jsonl");
    let missing = missing.to_str().unwrap();
    assert_fails(
        &cx(&["score", missing], b""),
        &["cannot read input", missing],
    );
}

#[test]
fn a_bad_catalog_fails_before_reading_input() {
    let request = json!({"id": "r", "imp": [{"id": "1"}], "site": {}}).to_string();
    // The bundled catalog with one offer's bid cap made negative.
    let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/catalog.toml");
    let bundled = std::fs::read_to_string(bundled).expect("read the bundled catalog");
    assert!(bundled.contains("max_bid_cpm = 6.0"));
    let bad = bundled.replacen("max_bid_cpm = 6.0", "max_bid_cpm = -6.0", 1);
    let bad = TempFile::new("catalog.toml", bad.as_bytes());
    assert_fails(
        &cx(&["score", "--catalog", bad.path()], request.as_bytes()),
        &["--catalog", bad.path(), "max_bid_cpm"],
    );
    let missing = "/nonexistent/cx-catalog.toml";
    assert_fails(
        &cx(&["score", "--catalog", missing], request.as_bytes()),
        &["--catalog", missing],
    );
}

#[test]
fn bad_model_fallback_and_config_fail_naming_the_file() {
    let junk = TempFile::new("junk.bin", b"not a model");
    assert_fails(
        &cx(&["score", "--model", junk.path()], b""),
        &["model", junk.path()],
    );
    assert_fails(
        &cx(&["score", "--fallback", junk.path()], b""),
        &["--fallback", junk.path()],
    );
    let config = TempFile::new("cx.toml", b"[batch]\nbatch_maxx = 3\n");
    assert_fails(
        &cx(&["score", "--config", config.path()], b""),
        &["config", config.path(), "batch_maxx"],
    );
    assert_fails(
        &cx(&["score", "--fallback", junk.path(), "--no-fallback"], b""),
        &["--no-fallback"],
    );
}

#[test]
fn a_fixed_clock_and_seed_give_byte_identical_output() {
    let mut input = Vec::new();
    for (_, requests) in fixture_requests() {
        for request in requests {
            input.extend_from_slice(request.to_string().as_bytes());
            input.push(b'\n');
        }
    }
    let args = ["score", "--now-ms", NOW_MS, "--seed", "42"];
    let first = cx(&args, &input);
    let second = cx(&args, &input);
    assert_eq!(ok_lines(&first).len(), 10);
    assert_eq!(first.stdout, second.stdout);
    // The seed drives the exploration draws, so another one changes them.
    let other = cx(&["score", "--now-ms", NOW_MS, "--seed", "43"], &input);
    assert_ne!(first.stdout, other.stdout);
}

#[test]
fn an_engine_refusal_is_an_error_line_and_the_next_request_still_runs() {
    // Three impressions against an engine that admits two at a time.
    let config = TempFile::new("small.toml", b"in_flight_max = 2\n");
    let three = json!({"id": "three", "imp": [{"id": "1"}, {"id": "2"}, {"id": "3"}], "site": {}});
    let one = json!({"id": "one", "imp": [{"id": "1"}], "site": {}});
    let input = format!("{three}\n{one}\n");
    let answers = ok_lines(&cx(
        &["score", "--config", config.path(), "--now-ms", NOW_MS],
        input.as_bytes(),
    ));
    assert_eq!(answers.len(), 2);
    assert!(error_of(&answers[0], 1).contains("overloaded"));
    check_answer("after a refusal", &one, &answers[1]);
}

#[test]
fn stats_go_to_stderr_as_json() {
    let path = fixtures().join("prebid_sample.jsonl");
    let out = cx(
        &[
            "score",
            path.to_str().unwrap(),
            "--now-ms",
            NOW_MS,
            "--stats",
        ],
        b"",
    );
    assert_eq!(ok_lines(&out).len(), 7);
    let stats: Value = serde_json::from_slice(&out.stderr).expect("stats are JSON");
    // The seven requests hold ten impressions, all decided.
    assert_eq!(stats["submitted"], 10, "{stats}");
    assert_eq!(stats["in_flight"], 0, "{stats}");
}

// ------------------------------------------------------- the shared data

/// The shared requests the parser refuses (docs/OPENRTB.md, "Real
/// traffic") because they break OpenRTB 2.6, by the end of their `source`
/// and the field named.
const REFUSED: &[(&str, &str)] = &[
    (
        "invalid-whole/banner-h-negative.json",
        "request.imp[0].banner.h",
    ),
    ("invalid-whole/imp-empty-object.json", "request.imp[0].id"),
    (
        "invalid-whole/format-empty-object.json",
        "request.imp[0].banner.format[0]",
    ),
    ("invalid-whole/site-dooh-both.json", "request.dooh"),
    (
        "invalid-whole/user-geo-accuracy-negative.json",
        "request.user.geo.accuracy",
    ),
    (
        "kueezrtb/kueezrtbtest/exemplary/multi-imp.json",
        "request.imp[1].id",
    ),
    (
        "silverpush/silverpushtest/exemplary/banner-without-w-h.json",
        "request.app",
    ),
    (
        "smaato/smaatotest/exemplary/native.json",
        "request.regs.ext.us_privacy",
    ),
    (
        "thetradedesk/thetradedesktest/exemplary/simple-native.json",
        "request.imp[0].native.request",
    ),
];

fn shared_openrtb() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/openrtb");
    if path.exists() {
        Some(path)
    } else {
        println!(
            "skipping: {} is absent (../shared is not laid out here)",
            path.display()
        );
        None
    }
}

#[test]
fn every_shared_request_is_answered() {
    let Some(dir) = shared_openrtb() else {
        return;
    };
    let mut examples = 0;
    for entry in std::fs::read_dir(dir.join("spec_examples")).expect("spec examples") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let request = read_json(&path);
        let file = path.to_str().expect("utf-8 path");
        let answers = ok_lines(&cx(&["score", file, "--now-ms", NOW_MS], b""));
        assert_eq!(answers.len(), 1, "{file}");
        check_answer(file, &request, &answers[0]);
        examples += 1;
    }
    assert_eq!(examples, 15);

    let path = dir.join("prebid_exemplary_sample.jsonl");
    let wrappers: Vec<Value> = std::fs::read_to_string(&path)
        .expect("read prebid sample")
        .lines()
        .map(|line| serde_json::from_str(line).expect("wrapper is JSON"))
        .collect();
    assert_eq!(wrappers.len(), 154);
    let answers = ok_lines(&cx(
        &["score", path.to_str().unwrap(), "--now-ms", NOW_MS],
        b"",
    ));
    assert_eq!(answers.len(), wrappers.len(), "one answer per line");
    let mut refused = Vec::new();
    for (i, (wrapper, answer)) in wrappers.iter().zip(&answers).enumerate() {
        let source = wrapper["source"].as_str().expect("source");
        assert_eq!(answer["line"], i as u64 + 1, "{source}");
        let refusal = REFUSED
            .iter()
            .find(|(suffix, _)| source.ends_with(suffix))
            .copied();
        match refusal {
            None => {
                check_answer(source, &wrapper["request"], answer);
            }
            Some((_, field)) => {
                let err = error_of(answer, i as u64 + 1);
                assert!(err.contains(&format!("`{field}`")), "{source}: {err}");
                refused.push(source);
            }
        }
    }
    let expected = REFUSED.len();
    assert_eq!(refused.len(), expected, "refused: {refused:?}");
}
