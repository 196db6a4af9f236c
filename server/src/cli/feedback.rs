//! `cx feedback --addr HOST:PORT [FILE|-]`: replays a JSONL of feedback
//! events (wins, losses, impressions, clicks, conversions) into a decision
//! server over the binary protocol's `feedback` message, in batches, and
//! prints what became of each batch and of the whole run as JSON.
//!
//! This module owns the command's options ([`FeedbackArgs`]), the event
//! line's schema ([`EventLine`], `docs/FEEDBACK.md`, "Ingress"), the
//! batching (at most `--batch` events, at most the protocol's
//! [`limits::FEEDBACK_EVENTS_MAX`], per message, one message in flight on
//! one connection) and the output objects. A bad line is reported with its
//! number and skipped; the run goes on.

use super::input::origin;
use super::lines::{is_blank, Line, Lines, LINE_BYTES_MAX};
use super::Streams;
use crate::client::{Client, ClientError};
use crate::error::{Error, Result};
use clap::Args;
use cx_wire::protocol::limits::{self, DECISION_ID_BYTES_MAX, EVENT_ID_BYTES_MAX};
use cx_wire::protocol::{FeedbackAck, FeedbackEvent, FeedbackKind, FEEDBACK_REFUSALS};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Duration;

/// Default and largest `--batch`: the protocol's limit per message.
pub const BATCH_MAX: u32 = limits::FEEDBACK_EVENTS_MAX as u32;

/// Default of `--timeout-ms`.
pub const TIMEOUT_MS_DEFAULT: u64 = 10_000;

/// Capacity of the input buffer, bytes.
pub(super) const READ_CHUNK_BYTES: usize = 256 << 10;

/// Arguments of `cx feedback`.
#[derive(Debug, Args)]
#[command(after_long_help = FEEDBACK_HELP)]
pub struct FeedbackArgs {
    /// The decision server's address.
    #[arg(long, value_name = "HOST:PORT")]
    pub addr: String,
    /// The events, one JSON object per line: a file, or `-` for stdin.
    #[arg(value_name = "FILE", default_value = "-")]
    pub input: PathBuf,
    /// Most events per `feedback` message (1 to 4096).
    #[arg(
        long,
        value_name = "N",
        default_value_t = BATCH_MAX,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(BATCH_MAX))
    )]
    pub batch: u32,
    /// Limit on connecting and on each wait for the server, milliseconds;
    /// 0: wait forever.
    #[arg(long, value_name = "MS", default_value_t = TIMEOUT_MS_DEFAULT)]
    pub timeout_ms: u64,
}

const FEEDBACK_HELP: &str = "\
INPUT
  One event per line (JSONL), docs/FEEDBACK.md \"Ingress\":
    {\"kind\": \"click\", \"decision_id\": \"0-0-lqxdcqo0-2\", \"event_id\": \"e1\",
     \"offer_id\": 1003, \"variant\": 0, \"ts_ns\": 1704261601000000000}
  kind (required): win, loss, impression, click or conversion.
  decision_id (required): the decision's id (`cx client --decision-ids`, a
    bid's id), at most 64 bytes.
  event_id: at most 64 bytes, for de-duplication; offer_id, variant,
  loss_code (a loss's OpenRTB reason), ts_ns (unix ns; 0 or absent: when the
  server reads it); price_cpm (a win's clearing price, required on a win)
  and value (a conversion's value), only on those kinds.
  Blank lines are skipped. A line that is not such an object (bad JSON, an
  unknown field or kind, an id too long, a price on another kind, a line
  over 1114112 bytes) is reported with its number and skipped.

BATCHES
  Events are sent in `feedback` messages of up to --batch events
  (at most 4096, the protocol's limit), one at a time on one connection, in
  input order. The server answers each with the events applied, held (their
  decision is not logged yet) and refused, by reason.

OUTPUT
  One JSON object per line on stdout: for each bad line
    {\"line\": N, \"error\": \"... naming the field ...\"}
  for each batch
    {\"batch\": I, \"first_line\": A, \"last_line\": B, \"events\": E,
     \"applied\": X, \"held\": Y, \"refused\": Z, \"refused_by_reason\": {\"duplicate\": 1}}
  (only the reasons with events), and last
    {\"total\": {\"batches\": ..., \"events\": ..., \"applied\": ..., \"held\": ...,
               \"refused\": ..., \"refused_by_reason\": {...}, \"bad_lines\": ...}}

EXIT STATUS
  0 when the input was read to its end and every batch answered, whatever
  the answers and bad lines; non-zero, with a message on stderr, for a bad
  option, an unreadable input, an unwritable output, or a connection that
  fails, times out (--timeout-ms) or refuses a message.

EXAMPLE
  cx client --addr 127.0.0.1:7070 --decision-ids requests.jsonl > decisions.jsonl
  cx feedback --addr 127.0.0.1:7070 clicks.jsonl";

/// One input line: an event as `docs/FEEDBACK.md` ("Ingress") describes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventLine {
    /// `win`, `loss`, `impression`, `click` or `conversion`.
    pub kind: String,
    /// The decision's id.
    pub decision_id: String,
    /// The event's own id.
    #[serde(default)]
    pub event_id: String,
    /// The offer decided (0: not given).
    #[serde(default)]
    pub offer_id: u64,
    /// The creative variant shown.
    #[serde(default)]
    pub variant: u32,
    /// A loss's reason (OpenRTB list 5.25).
    #[serde(default)]
    pub loss_code: u32,
    /// When it happened, unix ns (0: when the server reads it).
    #[serde(default)]
    pub ts_ns: u64,
    /// A win's clearing price, CPM.
    #[serde(default)]
    pub price_cpm: Option<f64>,
    /// A conversion's value.
    #[serde(default)]
    pub value: Option<f64>,
}

/// An input event, checked: what goes on the wire.
#[derive(Debug, PartialEq)]
pub struct OwnedEvent {
    kind: FeedbackKind,
    decision_id: String,
    event_id: String,
    offer_id: u64,
    variant: u32,
    loss_code: u32,
    ts_ns: u64,
    amount: f64,
}

impl OwnedEvent {
    fn borrowed(&self) -> FeedbackEvent<'_> {
        FeedbackEvent {
            kind: self.kind,
            decision_id: &self.decision_id,
            event_id: &self.event_id,
            offer_id: self.offer_id,
            variant: self.variant,
            loss_code: self.loss_code,
            timestamp_ns: self.ts_ns,
            amount: self.amount,
        }
    }
}

/// Parses and checks one line; the error names the field at fault.
/// Amounts are not judged here (the server refuses and counts a negative
/// price, `bad_amount`), but a price or value on a kind that carries none
/// is an error of the file, not of the event.
pub fn parse_event(text: &[u8]) -> std::result::Result<OwnedEvent, String> {
    let line: EventLine = serde_json::from_slice(text).map_err(|e| e.to_string())?;
    let kind = FeedbackKind::parse(&line.kind).ok_or_else(|| {
        format!(
            "kind: {:?} is not win, loss, impression, click or conversion",
            line.kind
        )
    })?;
    for (field, id, limit) in [
        ("decision_id", &line.decision_id, DECISION_ID_BYTES_MAX),
        ("event_id", &line.event_id, EVENT_ID_BYTES_MAX),
    ] {
        if id.len() > limit {
            return Err(format!(
                "{field}: {} bytes, more than the limit of {limit}",
                id.len()
            ));
        }
    }
    if line.decision_id.is_empty() {
        return Err("decision_id: empty".into());
    }
    let amount = match (kind, line.price_cpm, line.value) {
        (FeedbackKind::Win, Some(price), None) => price,
        (FeedbackKind::Win, None, _) => return Err("price_cpm: required on a win".into()),
        (FeedbackKind::Conversion, None, Some(value)) => value,
        (FeedbackKind::Conversion, None, None) => 0.0,
        (_, Some(_), _) => return Err(format!("price_cpm: only on a win, not on a {kind}")),
        (_, _, Some(_)) => return Err(format!("value: only on a conversion, not on a {kind}")),
        (_, None, None) => 0.0,
    };
    Ok(OwnedEvent {
        kind,
        decision_id: line.decision_id,
        event_id: line.event_id,
        offer_id: line.offer_id,
        variant: line.variant,
        loss_code: line.loss_code,
        ts_ns: line.ts_ns,
        amount,
    })
}

/// What became of events: one batch's, or the run's.
#[derive(Debug, Default, Serialize)]
struct Counts {
    events: u64,
    applied: u64,
    held: u64,
    refused: u64,
    /// Only the reasons with events.
    refused_by_reason: BTreeMap<&'static str, u64>,
}

impl Counts {
    fn add(&mut self, events: usize, ack: &FeedbackAck) {
        self.events += events as u64;
        self.applied += u64::from(ack.applied);
        self.held += u64::from(ack.held);
        self.refused += u64::from(ack.refused);
        for (i, &n) in ack.refused_by_reason().iter().enumerate() {
            if n > 0 {
                let label = FEEDBACK_REFUSALS.get(i).copied().unwrap_or("other");
                *self.refused_by_reason.entry(label).or_default() += u64::from(n);
            }
        }
    }
}

/// The output object of one batch.
#[derive(Serialize)]
struct BatchLine<'a> {
    batch: u64,
    first_line: usize,
    last_line: usize,
    #[serde(flatten)]
    counts: &'a Counts,
}

/// The output object of a bad line.
#[derive(Serialize)]
pub(super) struct BadLine<'a> {
    /// The line's 1-based number.
    pub(super) line: usize,
    /// What is wrong with it, naming the field.
    pub(super) error: &'a str,
}

/// The run's totals.
#[derive(Default, Serialize)]
struct Total {
    batches: u64,
    #[serde(flatten)]
    counts: Counts,
    bad_lines: u64,
}

/// Runs the command: connects and says hello (failing before any input is
/// read if the server cannot be reached), then sends the input's events in
/// batches and prints what became of them.
pub fn feedback(args: &FeedbackArgs, streams: &mut Streams<'_>) -> Result<()> {
    let mut client = connect(&args.addr, args.timeout_ms).map_err(|e| link_error(&args.addr, e))?;
    client.hello().map_err(|e| link_error(&args.addr, e))?;
    let input_origin = origin(&args.input);
    let source = super::input::open_source(&args.input, &mut *streams.stdin)?;
    let mut lines = Lines::new(source, input_origin, READ_CHUNK_BYTES);
    let mut run = Run {
        client,
        addr: &args.addr,
        batch_max: args.batch as usize,
        pending: Vec::with_capacity(args.batch as usize),
        lines: (0, 0),
        total: Total::default(),
        out: BufWriter::new(&mut *streams.stdout),
    };
    while let Some(line) = lines.next_line()? {
        match line {
            Line::Text(_, text) if is_blank(&text) => {}
            Line::Text(number, text) => match parse_event(&text) {
                Ok(event) => run.push(number, event)?,
                Err(message) => run.bad_line(number, &message)?,
            },
            Line::TooLong { number, bytes } => {
                let message =
                    format!("line is {bytes} bytes, more than the limit of {LINE_BYTES_MAX}");
                run.bad_line(number, &message)?;
            }
        }
    }
    run.send()?;
    let Run { total, mut out, .. } = run;
    write_json(&mut out, &serde_json::json!({ "total": total }))?;
    out.flush().map_err(Error::Output)
}

/// The connection to `addr`, with `--timeout-ms` applied (0: none).
/// Shared with `cx features load`.
pub(super) fn connect(addr: &str, timeout_ms: u64) -> std::result::Result<Client, ClientError> {
    if timeout_ms == 0 {
        Client::connect(addr)
    } else {
        Client::connect_timeout(addr, Duration::from_millis(timeout_ms))
    }
}

/// A connection failure as the crate's error, naming the server once.
pub(super) fn link_error(addr: &str, error: ClientError) -> Error {
    let source = match error {
        ClientError::Connect { source, .. } => source,
        other => std::io::Error::other(other),
    };
    Error::File {
        path: format!("server {addr}"),
        source,
    }
}

/// The events read and not yet sent, and what was printed so far.
struct Run<'a, 'o> {
    client: Client,
    addr: &'a str,
    batch_max: usize,
    pending: Vec<OwnedEvent>,
    /// First and last input line of `pending`.
    lines: (usize, usize),
    total: Total,
    out: BufWriter<&'o mut dyn Write>,
}

impl Run<'_, '_> {
    /// Adds the event of input line `number`; sends the batch once full.
    fn push(&mut self, number: usize, event: OwnedEvent) -> Result<()> {
        if self.pending.is_empty() {
            self.lines.0 = number;
        }
        self.lines.1 = number;
        self.pending.push(event);
        if self.pending.len() >= self.batch_max {
            self.send()?;
        }
        Ok(())
    }

    fn bad_line(&mut self, line: usize, error: &str) -> Result<()> {
        self.total.bad_lines += 1;
        write_json(&mut self.out, &BadLine { line, error })
    }

    /// Sends the pending events as one `feedback` message (nothing when
    /// there are none), waits for its ack and prints it.
    fn send(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let events: Vec<FeedbackEvent<'_>> =
            self.pending.iter().map(OwnedEvent::borrowed).collect();
        let ack = self
            .client
            .feedback(&events)
            .map_err(|e| link_error(self.addr, e))?;
        let mut counts = Counts::default();
        counts.add(events.len(), &ack);
        self.total.counts.add(events.len(), &ack);
        self.total.batches += 1;
        let line = BatchLine {
            batch: self.total.batches,
            first_line: self.lines.0,
            last_line: self.lines.1,
            counts: &counts,
        };
        write_json(&mut self.out, &line)?;
        self.out.flush().map_err(Error::Output)?;
        self.pending.clear();
        Ok(())
    }
}

/// Writes `value` as one JSON line.
pub(super) fn write_json<T: Serialize>(out: &mut impl Write, value: &T) -> Result<()> {
    serde_json::to_writer(&mut *out, value).map_err(|e| Error::Output(e.into()))?;
    out.write_all(b"\n").map_err(Error::Output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_events_and_bad_lines_name_their_field() {
        let e = parse_event(br#"{"kind":"win","decision_id":"d","price_cpm":1.5,"offer_id":7}"#)
            .unwrap();
        assert_eq!((e.kind, e.amount, e.offer_id), (FeedbackKind::Win, 1.5, 7));
        let e = parse_event(br#"{"kind":"conversion","decision_id":"d","value":3}"#).unwrap();
        assert_eq!(e.amount, 3.0);
        let e =
            parse_event(br#"{"kind":"click","decision_id":"d","event_id":"e","ts_ns":5}"#).unwrap();
        assert_eq!((e.event_id.as_str(), e.ts_ns, e.amount), ("e", 5, 0.0));
        // A negative price goes to the server, which counts it.
        assert!(parse_event(br#"{"kind":"win","decision_id":"d","price_cpm":-1}"#).is_ok());
        let long = "x".repeat(65);
        for (line, field) in [
            (r#"{"kind":"view","decision_id":"d"}"#.to_string(), "kind"),
            (r#"{"kind":"click"}"#.to_string(), "decision_id"),
            (
                r#"{"kind":"click","decision_id":""}"#.to_string(),
                "decision_id",
            ),
            (
                format!(r#"{{"kind":"click","decision_id":"{long}"}}"#),
                "decision_id",
            ),
            (
                format!(r#"{{"kind":"click","decision_id":"d","event_id":"{long}"}}"#),
                "event_id",
            ),
            (
                r#"{"kind":"win","decision_id":"d"}"#.to_string(),
                "price_cpm",
            ),
            (
                r#"{"kind":"click","decision_id":"d","price_cpm":1}"#.to_string(),
                "price_cpm",
            ),
            (
                r#"{"kind":"click","decision_id":"d","value":1}"#.to_string(),
                "value",
            ),
            (
                r#"{"kind":"click","decision_id":"d","clicks":1}"#.to_string(),
                "clicks",
            ),
            (
                r#"{"kind":"click","decision_id":"d","offer_id":-1}"#.to_string(),
                "-1",
            ),
            ("not json".to_string(), "expected"),
        ] {
            let error = parse_event(line.as_bytes()).unwrap_err();
            assert!(error.contains(field), "{line}: {error}");
        }
    }

    #[test]
    fn help_text_states_the_real_limits() {
        assert!(FEEDBACK_HELP.contains(&format!("over {LINE_BYTES_MAX} bytes")));
        assert!(FEEDBACK_HELP.contains(&format!("at most {BATCH_MAX}, the protocol's limit")));
        assert!(FEEDBACK_HELP.contains(&format!("at most {DECISION_ID_BYTES_MAX} bytes")));
        assert_eq!(EVENT_ID_BYTES_MAX, 64);
        for kind in FeedbackKind::ALL {
            assert!(FEEDBACK_HELP.contains(kind.label()), "{kind}");
        }
    }
}
