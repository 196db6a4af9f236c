//! `cx score [FILE|-]`: decides OpenRTB 2.5/2.6 bid requests with the
//! engine and prints, for each one, its BidResponse and the decision behind
//! every impression, one JSON object per request.
//!
//! Input (a file, or stdin for `-`) is read line by line, each line bounded
//! by [`LINE_BYTES_MAX`], in one of three shapes:
//!
//! - JSONL: one BidRequest per line;
//! - JSONL of wrappers, `{"request": {...}, ...}`, whose `request` is the
//!   BidRequest (other fields are ignored);
//! - one JSON object spanning several lines (a pretty-printed example): when
//!   the first non-blank line is not JSON on its own and the whole input,
//!   at most [`LINE_BYTES_MAX`] bytes, is one JSON object.
//!
//! Blank lines are skipped. A line that is not a valid request gets an
//! error object naming the field, and scoring goes on with the next line.

use super::answer::Failed;
use super::input::origin;
use super::lines::{hold_document, is_blank, is_json, Held, Line, Lines};
use super::{load_model, ScoreArgs, Streams};
use crate::error::{Error, Result};
use cx_domain::catalog::Catalog;
use cx_engine::json::decision_json;
use cx_engine::openrtb::{BidIds, OpenRtbOutcome};
use cx_engine::systems::resources::FallbackScorer;
use cx_engine::{Engine, EngineConfig, FallbackSource, ModelSource};
use cx_wire::openrtb::{self, limits::REQUEST_BYTES_MAX, BidRequest, BidResponse};
use cx_wire::protocol::ErrorCode;
use serde::Serialize;
use serde_json::Value;
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::sync::Arc;

/// Longest input line read, bytes: the OpenRTB document limit
/// ([`REQUEST_BYTES_MAX`]) plus room for a `{"request": ...}` wrapper's
/// other fields. A longer line is skipped (read in chunks and discarded,
/// never held whole) and answered with an error. It is also the most a
/// multi-line document may span.
pub const LINE_BYTES_MAX: usize = REQUEST_BYTES_MAX + (64 << 10);

/// Largest `--now-ms` accepted: the last millisecond whose nanoseconds fit in a `u64`.
pub const NOW_MS_MAX: u64 = u64::MAX / 1_000_000;

/// Capacity of the input buffer, bytes.
const READ_CHUNK: usize = 64 << 10;

/// Runs the command: sets up the engine (failing before any input is read
/// if a named file or setting is unusable), then scores the input.
pub fn score(args: &ScoreArgs, streams: &mut Streams<'_>) -> Result<()> {
    let mut engine = build_engine(args)?;
    let skew = engine.train_serve_skew();
    if !skew.is_clean() {
        writeln!(
            streams.stderr,
            "warning: train/serve skew: the model was trained on columns {:?}, which OpenRTB \
             requests never fill (engine.train_serve_skew = \"refuse\" refuses such a model)",
            skew.columns()
        )
        .map_err(Error::Output)?;
    }
    let input_origin = origin(&args.input);
    let reader = super::input::open_source(&args.input, &mut *streams.stdin)?;
    let mut scorer = Scorer {
        engine: &mut engine,
        now_ms: args.now_ms,
        pretty: args.pretty,
        out: BufWriter::new(&mut *streams.stdout),
    };
    let mut lines = Lines::new(reader, input_origin, READ_CHUNK);
    score_input(&mut lines, &mut scorer)?;
    if args.stats {
        super::write_json(streams.stderr, &engine.stats(), args.pretty)?;
    }
    Ok(())
}

/// The engine the options describe. Every named file is read and checked
/// here, so a bad one fails the command before any input is read.
fn build_engine(args: &ScoreArgs) -> Result<Engine> {
    let config = EngineConfig::load(args.config.as_deref()).map_err(|source| Error::Engine {
        what: match &args.config {
            Some(path) => format!("cannot use config {}", path.display()),
            None => "cannot use the CX_ENGINE_* environment overrides".into(),
        },
        source,
    })?;
    let mut builder = Engine::builder().config(config);
    if let Some(ms) = args.now_ms {
        // A fixed clock replays: the same bid ids on every run (epoch = the
        // given time). Without it the ids start from the wall clock, so no
        // two runs share one (`BidIds`).
        builder = builder.bid_ids(BidIds::new(0, 0, ms));
    }
    if let Some(path) = &args.model {
        // Loaded once here for a message that names the file and says what is wrong.
        load_model(Some(path))?;
        builder = builder.model(ModelSource::Path(path.clone()));
    }
    builder = builder.fallback(match (&args.fallback, args.no_fallback) {
        (_, true) => FallbackSource::None,
        (Some(path), false) => FallbackSource::Bytes(read_fallback(path)?),
        (None, false) => FallbackSource::Auto,
    });
    if let Some(path) = &args.catalog {
        // `Catalog::from_path` names the file in its errors (and bounds its size).
        let catalog = Catalog::from_path(path).map_err(|source| Error::Engine {
            what: "cannot use --catalog".into(),
            source: source.into(),
        })?;
        builder = builder.catalog(catalog);
    }
    if let Some(kind) = args.backend {
        builder = builder.backend(kind);
    }
    if let Some(seed) = args.seed {
        builder = builder.seed(seed);
    }
    builder.build().map_err(|source| Error::Engine {
        what: "cannot set up the engine".into(),
        source,
    })
}

/// Reads and checks a fallback scorer file, so that its errors name it.
fn read_fallback(path: &Path) -> Result<Arc<[u8]>> {
    let what = || format!("cannot use --fallback {}", path.display());
    let limit = cx_model::limits::FILE_BYTES_MAX;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(limit.saturating_add(1)).read_to_end(&mut bytes))
        .map_err(|source| Error::File {
            path: path.display().to_string(),
            source,
        })?;
    if bytes.len() as u64 > limit {
        return Err(Error::Mismatch(format!(
            "{}: the file is more than the limit of {limit} bytes",
            what()
        )));
    }
    FallbackScorer::from_bytes(&bytes).map_err(|source| Error::Engine {
        what: what(),
        source: source.into(),
    })?;
    Ok(bytes.into())
}

/// Reads every request of the input and scores it, detecting a single
/// document that spans several lines.
fn score_input(lines: &mut Lines<'_>, scorer: &mut Scorer<'_, '_>) -> Result<()> {
    let first = loop {
        match lines.next_line()? {
            None => return scorer.flush(),
            Some(Line::Text(_, text)) if is_blank(&text) => continue,
            Some(line) => break line,
        }
    };
    match first {
        Line::Text(number, text) if !is_json(&text) => {
            // Either a pretty-printed document or a bad first line.
            match hold_document(lines, number, text)? {
                Held::Document(number, document) => {
                    scorer.score_request(number, &document)?;
                    return scorer.flush();
                }
                Held::Lines(held) => {
                    for line in held {
                        scorer.score_line(line)?;
                    }
                }
            }
        }
        line => scorer.score_line(line)?,
    }
    while let Some(line) = lines.next_line()? {
        scorer.score_line(line)?;
    }
    scorer.flush()
}

/// The engine and where its answers go.
struct Scorer<'e, 'o> {
    engine: &'e mut Engine,
    now_ms: Option<u64>,
    pretty: bool,
    out: BufWriter<&'o mut dyn Write>,
}

/// The output object for a scored request.
#[derive(Serialize)]
struct Scored<'a> {
    line: usize,
    response: &'a BidResponse,
    decisions: Vec<ImpDecision<'a>>,
}

/// One impression's decision in the output.
#[derive(Serialize)]
struct ImpDecision<'a> {
    imp_id: &'a str,
    decision: Option<Value>,
    skipped: Option<&'static str>,
}

impl Scorer<'_, '_> {
    /// Scores one line (skipping a blank one).
    fn score_line(&mut self, line: Line) -> Result<()> {
        match line {
            Line::Text(_, text) if is_blank(&text) => Ok(()),
            Line::Text(number, text) => self.score_request(number, &text),
            Line::TooLong { number, bytes } => {
                let message = format!(
                    "line is {bytes} bytes, more than the limit of {LINE_BYTES_MAX} bytes; skipped"
                );
                self.write(&Failed::new(number, ErrorCode::FrameTooLarge, &message))
            }
        }
    }

    /// Parses, decides and answers the request in `text`, which starts on line `number`.
    fn score_request(&mut self, number: usize, text: &[u8]) -> Result<()> {
        let request = match parse(text) {
            Ok(request) => request,
            Err(error) => {
                return self.write(&Failed::new(number, ErrorCode::InvalidPayload, &error));
            }
        };
        let now_ns = match self.now_ms {
            Some(ms) => ms.saturating_mul(1_000_000),
            None => wall_clock_ns(),
        };
        match self.engine.decide_openrtb(&request, now_ns) {
            Ok(outcome) => {
                let scored = scored(number, &outcome, self.engine.catalog());
                self.write(&scored)
            }
            Err(error) => {
                // A refusal part-way (e.g. more impressions than `in_flight_max`)
                // can leave requests in flight; decide and drop them so the
                // next request finds an idle engine.
                if self.engine.in_flight() > 0 {
                    self.engine.run_until_decided(now_ns);
                    self.engine.drain().for_each(drop);
                }
                let code = match error {
                    cx_engine::Error::Overloaded { .. } => ErrorCode::Overloaded,
                    _ => ErrorCode::Internal,
                };
                self.write(&Failed::new(number, code, &error.to_string()))
            }
        }
    }

    fn write<T: Serialize>(&mut self, value: &T) -> Result<()> {
        let written = if self.pretty {
            serde_json::to_writer_pretty(&mut self.out, value)
        } else {
            serde_json::to_writer(&mut self.out, value)
        };
        written.map_err(|e| Error::Output(e.into()))?;
        self.out.write_all(b"\n").map_err(Error::Output)?;
        // One write per answer, so a reader of a pipe sees each as it is decided.
        self.flush()
    }

    fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(Error::Output)
    }
}

/// The output object of a decided request.
fn scored<'a>(number: usize, outcome: &'a OpenRtbOutcome, catalog: &Catalog) -> Scored<'a> {
    Scored {
        line: number,
        response: &outcome.response,
        decisions: outcome
            .impressions
            .iter()
            .map(|imp| ImpDecision {
                imp_id: &imp.imp_id,
                decision: imp.decision.as_ref().map(|d| decision_json(d, catalog)),
                skipped: imp.skipped,
            })
            .collect(),
    }
}

/// The request in `text`: a BidRequest document, or a `{"request": {...}}`
/// wrapper around one. The error message names the field at fault.
fn parse(text: &[u8]) -> std::result::Result<BidRequest, String> {
    let direct = match openrtb::parse_request(text) {
        Ok(request) => return Ok(request),
        Err(error) => error,
    };
    let Some(inner) = wrapped_request(text) else {
        return Err(direct.to_string());
    };
    let inner = serde_json::to_vec(&inner).map_err(|e| format!("`request`: {e}"))?;
    openrtb::parse_request(&inner).map_err(|error| match error {
        cx_wire::Error::OpenRtb { path, reason } => {
            let path = if path == "$" {
                "request".to_string()
            } else {
                format!("request.{path}")
            };
            cx_wire::Error::OpenRtb { path, reason }.to_string()
        }
        other => other.to_string(),
    })
}

/// The `request` field of a wrapper object: an object with a `request`
/// field and no `imp` (so never a BidRequest itself).
fn wrapped_request(text: &[u8]) -> Option<Value> {
    let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(text) else {
        return None;
    };
    if fields.contains_key("imp") {
        return None;
    }
    fields.remove("request")
}

/// The wall clock, unix ns (0 before 1970, saturating after 2554).
fn wall_clock_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// clap's parser for `--now-ms`: unix ms, at most [`NOW_MS_MAX`].
pub(super) fn parse_now_ms(text: &str) -> std::result::Result<u64, String> {
    let ms: u64 = text
        .parse()
        .map_err(|e| format!("`{text}` is not a whole number of milliseconds: {e}"))?;
    if ms > NOW_MS_MAX {
        return Err(format!(
            "{ms} is more than {NOW_MS_MAX} (unix ms must fit in u64 nanoseconds)"
        ));
    }
    Ok(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(input: &[u8]) -> Vec<Line> {
        let mut lines = Lines::new(Box::new(input), "t".into(), 7);
        std::iter::from_fn(|| lines.next_line().expect("reads")).collect()
    }

    #[test]
    fn lines_are_numbered_bounded_and_stripped() {
        let long = vec![b'x'; LINE_BYTES_MAX + 1];
        let mut input = b"\xEF\xBB\xBFa\r\n\n".to_vec();
        input.extend_from_slice(&long);
        input.extend_from_slice(b"\nlast");
        let lines = lines_of(&input);
        assert_eq!(lines.len(), 4);
        assert!(matches!(&lines[0], Line::Text(1, t) if t == b"a"));
        assert!(matches!(&lines[1], Line::Text(2, t) if t.is_empty()));
        assert!(matches!(
            &lines[2],
            Line::TooLong { number: 3, bytes } if *bytes == long.len() as u64
        ));
        assert!(matches!(&lines[3], Line::Text(4, t) if t == b"last"));
    }

    #[test]
    fn a_line_at_the_limit_is_kept() {
        let exact = vec![b'x'; LINE_BYTES_MAX];
        let lines = lines_of(&exact);
        assert!(matches!(&lines[..], [Line::Text(1, t)] if t.len() == LINE_BYTES_MAX));
    }

    #[test]
    fn wrapper_errors_name_the_inner_field() {
        let err = parse(br#"{"source": "s", "request": {"id": "r", "imp": [{}]}}"#).unwrap_err();
        assert!(err.contains("`request.imp[0].id`"), "{err}");
        let err = parse(br#"{"request": 3}"#).unwrap_err();
        assert!(err.contains("`request`"), "{err}");
        let err = parse(br#"{"id": "r", "imp": "x"}"#).unwrap_err();
        assert!(err.contains("`imp`"), "{err}");
        assert!(parse(br#"{"request": {"id": "r", "imp": [{"id": "1"}], "site": {}}}"#).is_ok());
    }

    #[test]
    fn now_ms_is_bounded() {
        assert_eq!(parse_now_ms("1767225600000"), Ok(1_767_225_600_000));
        assert!(parse_now_ms(&NOW_MS_MAX.to_string()).is_ok());
        assert!(parse_now_ms(&(NOW_MS_MAX + 1).to_string()).is_err());
        assert!(parse_now_ms("-1").is_err());
    }
}
