//! `cx client --addr HOST:PORT [FILE|-]`: sends OpenRTB bid requests to a
//! decision server over the binary protocol ([`crate::client`]) and prints
//! each one's decision, one JSON object per request, in input order.
//!
//! This module owns the command's options ([`ClientArgs`]), its input
//! reading (the shapes `cx score` reads: JSONL, `{"request": ...}`
//! wrappers, or one pretty-printed document), the window of requests in
//! flight (at most `--depth`, answered in any order, printed in input
//! order) and the output objects.

use super::answer::Failed;
use super::input::origin;
use super::lines::{hold_document, is_blank, is_json, Held, Line, Lines, LINE_BYTES_MAX};
use super::Streams;
use crate::client::{Client, ClientError, Response, ResponseBody};
use crate::error::{Error, Result};
use clap::Args;
use cx_wire::openrtb::{self, BidRequest, BidResponse};
use cx_wire::protocol::{limits, ErrorCode, OpenRtbFlags};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Duration;

/// Default of `--depth`: requests in flight at once.
pub const DEPTH_DEFAULT: u32 = 32;

/// Largest `--depth`: the protocol's in-flight limit.
pub const DEPTH_MAX: u32 = limits::IN_FLIGHT_MAX as u32;

/// Default of `--timeout-ms`.
pub const TIMEOUT_MS_DEFAULT: u64 = 10_000;

/// Capacity of the input buffer, bytes. When it runs dry, the requests
/// read so far are answered before more input is read (see the help).
const READ_CHUNK_BYTES: usize = 256 << 10;

/// Arguments of `cx client`.
#[derive(Debug, Args)]
#[command(after_long_help = CLIENT_HELP)]
pub struct ClientArgs {
    /// The decision server's address.
    #[arg(long, value_name = "HOST:PORT")]
    pub addr: String,
    /// The bid requests: a file, or `-` for stdin.
    #[arg(value_name = "FILE", default_value = "-")]
    pub input: PathBuf,
    /// Most requests in flight at once (1 to 1024; also at most the
    /// server's own limits: 64 requests asking for a BidResponse).
    #[arg(
        long,
        value_name = "N",
        default_value_t = DEPTH_DEFAULT,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(DEPTH_MAX))
    )]
    pub depth: u32,
    /// Ask for every decision in simulation mode (no budget, frequency cap
    /// or cache is spent).
    #[arg(long)]
    pub simulate: bool,
    /// Ask for each decision's id (what `cx feedback` events name), shown
    /// as "decision_id" in each decided impression's object.
    #[arg(long)]
    pub decision_ids: bool,
    /// Limit on connecting and on each wait for the server, milliseconds;
    /// 0: wait forever.
    #[arg(long, value_name = "MS", default_value_t = TIMEOUT_MS_DEFAULT)]
    pub timeout_ms: u64,
}

const CLIENT_HELP: &str = "\
INPUT
  OpenRTB 2.5/2.6 BidRequest JSON, in the shapes `cx score` reads:
    - one request per line (JSONL);
    - one wrapper object per line, {\"request\": {...}, ...}: its \"request\"
      field is sent, other fields are ignored;
    - one request spanning several lines (a pretty-printed document): used
      when the first non-blank line is not JSON on its own and the whole
      input is one JSON object.
  Blank lines are skipped. Lines are sent as they are (the server parses
  them); a request over 1048576 bytes, or a line over 1114112 bytes, is not
  sent and gets the error frame_too_large.

PIPELINING
  The client says hello, then keeps up to --depth requests in flight on one
  connection (at most the server's own limit). Answers may come back in any
  order; they are printed in input order. When the input has no more bytes
  buffered (a slow pipe, a terminal), the requests read so far are answered
  and printed before more input is read.

OUTPUT
  One JSON object per request, in input order, on stdout, in the shape
  `cx score` prints:
    {\"line\": N, \"response\": {...the OpenRTB BidResponse...},
     \"decisions\": [{\"imp_id\": ID, \"decision\": {\"offers\": [...], ...} or null,
                    \"skipped\": null or a reason}, ...]}
  where N is the request's first line and there is one decision per
  impression (the server answers with the same BidResponse its HTTP
  bidder would). Each answer is checked: a BidResponse that does not
  answer its request, or decisions for other impressions, end the run
  with an error. With --decision-ids, each impression whose decision chose
  offers also has \"decision_id\": the id its feedback events name (cx
  feedback; the bid's id in the response is the same id). A request the server refuses gets
    {\"line\": N, \"error\": {\"code\": \"invalid_payload\", \"code_num\": 5,
                          \"message\": \"... naming the field ...\"}}
  with the protocol's error code (docs/PROTOCOL.md), and the run goes on.

EXIT STATUS
  0 when the input was read to its end and every request answered,
  whatever the answers; non-zero, with a message on stderr, for a bad
  option, an unreadable input, an unwritable output, or a connection that
  fails, times out (--timeout-ms) or breaks the protocol.

EXAMPLE
  cx serve --listen 127.0.0.1:7070 &
  cx client --addr 127.0.0.1:7070 --depth 64 requests.jsonl > responses.jsonl
  head -1 requests.jsonl | cx client --addr 127.0.0.1:7070 --simulate";

/// Runs the command: connects and says hello (failing before any input is
/// read if the server cannot be reached), then sends the input's requests
/// and prints their answers.
pub fn client(args: &ClientArgs, streams: &mut Streams<'_>) -> Result<()> {
    let mut client = connect(args).map_err(|e| link_error(&args.addr, e))?;
    let ack = client.hello().map_err(|e| link_error(&args.addr, e))?;
    // Each request asks for a bid_response, which the protocol allows
    // fewer of in flight.
    let depth = args
        .depth
        .min(ack.in_flight_max)
        .min(limits::BID_RESPONSES_IN_FLIGHT_MAX as u32)
        .max(1) as usize;
    let input_origin = origin(&args.input);
    let source = super::input::open_source(&args.input, &mut *streams.stdin)?;
    let mut lines = Lines::new(source, input_origin, READ_CHUNK_BYTES);
    let mut window = Window {
        client,
        addr: &args.addr,
        depth,
        simulate: args.simulate,
        decision_ids: args.decision_ids,
        slots: VecDeque::with_capacity(depth),
        first_seq: 0,
        ids: HashMap::with_capacity(depth),
        out: BufWriter::new(&mut *streams.stdout),
    };
    read_input(&mut lines, &mut window)?;
    window.finish()
}

/// The connection, with `--timeout-ms` applied.
fn connect(args: &ClientArgs) -> std::result::Result<Client, ClientError> {
    if args.timeout_ms == 0 {
        Client::connect(args.addr.as_str())
    } else {
        Client::connect_timeout(args.addr.as_str(), Duration::from_millis(args.timeout_ms))
    }
}

/// A connection failure as the crate's error, naming the server once.
fn link_error(addr: &str, error: ClientError) -> Error {
    let source = match error {
        ClientError::Connect { source, .. } => source,
        other => std::io::Error::other(other),
    };
    Error::File {
        path: format!("server {addr}"),
        source,
    }
}

/// What to do with one input request.
enum Item {
    /// Send this document; what the answer is checked against.
    Send(Vec<u8>, Sent),
    /// Answer it here without sending: the protocol would refuse it.
    Refuse {
        /// The error code the server would answer.
        code: ErrorCode,
        /// What is wrong.
        message: String,
    },
}

/// Reads every request of the input and hands it to the window, detecting
/// a single document that spans several lines (as `cx score` does).
fn read_input(lines: &mut Lines<'_>, window: &mut Window<'_, '_>) -> Result<()> {
    let first = loop {
        match lines.next_line()? {
            None => return Ok(()),
            Some(Line::Text(_, text)) if is_blank(&text) => continue,
            Some(line) => break line,
        }
    };
    let held = match first {
        Line::Text(number, text) if !is_json(&text) => match hold_document(lines, number, text)? {
            Held::Document(number, document) => return window.submit(number, item(&document)),
            Held::Lines(held) => held,
        },
        line => vec![line],
    };
    for line in held {
        submit_line(window, lines, line)?;
    }
    while let Some(line) = lines.next_line()? {
        submit_line(window, lines, line)?;
    }
    Ok(())
}

/// Hands one line to the window (skipping a blank one); when the input
/// has nothing more buffered, lets the window catch up first.
fn submit_line(window: &mut Window<'_, '_>, lines: &Lines<'_>, line: Line) -> Result<()> {
    match line {
        Line::Text(_, text) if is_blank(&text) => {}
        Line::Text(number, text) => window.submit(number, item(&text))?,
        Line::TooLong { number, bytes } => window.submit(
            number,
            Item::Refuse {
                code: ErrorCode::FrameTooLarge,
                message: format!(
                    "line is {bytes} bytes, more than the limit of {LINE_BYTES_MAX} bytes; not sent"
                ),
            },
        )?,
    }
    if lines.is_drained() {
        window.catch_up()?;
    }
    Ok(())
}

/// What to send for the request text of one line (or document).
fn item(text: &[u8]) -> Item {
    let document = match wrapped_request(text) {
        Some(inner) => match serde_json::to_vec(&inner) {
            Ok(bytes) => bytes,
            Err(e) => {
                return Item::Refuse {
                    code: ErrorCode::InvalidPayload,
                    message: format!("`request`: {e}"),
                }
            }
        },
        None => text.to_vec(),
    };
    if document.len() > limits::OPENRTB_JSON_BYTES_MAX {
        return Item::Refuse {
            code: ErrorCode::FrameTooLarge,
            message: format!(
                "the request is {} bytes, more than the limit of {} bytes; not sent",
                document.len(),
                limits::OPENRTB_JSON_BYTES_MAX
            ),
        };
    }
    let sent = Sent {
        imp_ids: imp_ids(&document),
        request: openrtb::parse_request(&document).ok().map(Box::new),
    };
    Item::Send(document, sent)
}

/// What a request's answer is checked against: its impressions' ids, and
/// the request itself, where this client could read them (the server
/// answers an error for a request it cannot read).
#[derive(Default)]
struct Sent {
    imp_ids: Option<Vec<String>>,
    request: Option<Box<BidRequest>>,
}

/// The ids of a bid request's impressions, in order; `None` when the
/// document is not a bid request this client can read (the server then
/// answers its error).
fn imp_ids(document: &[u8]) -> Option<Vec<String>> {
    #[derive(serde::Deserialize)]
    struct Imp {
        id: String,
    }
    #[derive(serde::Deserialize)]
    struct Request {
        imp: Vec<Imp>,
    }
    let request: Request = serde_json::from_slice(document).ok()?;
    Some(request.imp.into_iter().map(|imp| imp.id).collect())
}

/// Checks that a decision answers the impressions asked for: one per
/// impression, with their ids, in order.
fn check_imps(
    line: usize,
    asked: &[String],
    decisions: &[ImpScored],
) -> std::result::Result<(), ClientError> {
    let answered = decisions.iter().map(|imp| imp.imp_id.as_str());
    if answered.clone().eq(asked.iter().map(String::as_str)) {
        return Ok(());
    }
    let answered: Vec<&str> = answered.collect();
    Err(ClientError::Unexpected {
        what: format!(
            "the request on line {line} has impressions {asked:?}, but the decision answers \
             {answered:?}"
        ),
    })
}

/// The `request` field of a wrapper object: an object with a `request`
/// field and no `imp` (so never a BidRequest itself).
fn wrapped_request(text: &[u8]) -> Option<serde_json::Value> {
    let mentions_request = text.windows(9).any(|w| w == b"\"request\"");
    if !mentions_request {
        return None;
    }
    let Ok(serde_json::Value::Object(mut fields)) = serde_json::from_slice(text) else {
        return None;
    };
    if fields.contains_key("imp") {
        return None;
    }
    fields.remove("request")
}

/// One request of the window, in input order.
struct WindowEntry {
    /// Its first input line.
    line: usize,
    /// Its output line (JSON and a newline), once answered.
    output: Option<Vec<u8>>,
    /// What its answer is checked against.
    sent: Sent,
}

/// The requests in flight and the answered ones waiting for an earlier
/// request's answer, in input order: at most `depth` of them.
struct Window<'a, 'o> {
    client: Client,
    addr: &'a str,
    depth: usize,
    simulate: bool,
    decision_ids: bool,
    slots: VecDeque<WindowEntry>,
    /// Sequence number (input order) of `slots[0]`.
    first_seq: usize,
    /// Request id -> sequence number, for the requests in flight.
    ids: HashMap<u64, usize>,
    out: BufWriter<&'o mut dyn Write>,
}

impl Window<'_, '_> {
    /// Sends (or answers) the request of input line `line`, first waiting
    /// for answers while the window is full.
    fn submit(&mut self, line: usize, item: Item) -> Result<()> {
        while self.slots.len() >= self.depth {
            self.receive_one()?;
        }
        let output = match item {
            Item::Send(document, sent) => {
                let flags = OpenRtbFlags {
                    simulate: self.simulate,
                    bid_response: true,
                    decision_ids: self.decision_ids,
                };
                match self.client.send_openrtb_with(&document, flags) {
                    Ok(id) => {
                        self.ids.insert(id, self.first_seq + self.slots.len());
                        (None, sent)
                    }
                    Err(ClientError::Encode { source, .. }) => {
                        let output = failed_line(line, source.code(), &source.to_string())?;
                        (Some(output), Sent::default())
                    }
                    Err(e) => return Err(link_error(self.addr, e)),
                }
            }
            Item::Refuse { code, message } => {
                (Some(failed_line(line, code, &message)?), Sent::default())
            }
        };
        let (output, sent) = output;
        self.slots.push_back(WindowEntry { line, output, sent });
        self.write_ready()
    }

    /// Sends what is queued and waits until every request so far is
    /// answered and printed.
    fn catch_up(&mut self) -> Result<()> {
        while !self.slots.is_empty() {
            self.receive_one()?;
        }
        self.out.flush().map_err(Error::Output)
    }

    /// Answers everything left, then flushes the output.
    fn finish(mut self) -> Result<()> {
        self.catch_up()
    }

    /// Sends what is queued, waits for one answer, and prints what is
    /// ready. The output is flushed before waiting, so a reader sees every
    /// answer that can be printed.
    fn receive_one(&mut self) -> Result<()> {
        self.write_ready()?;
        if self.ids.is_empty() {
            return Ok(());
        }
        self.out.flush().map_err(Error::Output)?;
        self.client.flush().map_err(|e| link_error(self.addr, e))?;
        let response = self.client.recv().map_err(|e| link_error(self.addr, e))?;
        let Some(seq) = self.ids.remove(&response.request_id) else {
            return Err(link_error(self.addr, stray(response)));
        };
        let index = seq.saturating_sub(self.first_seq);
        if let Some(slot) = self.slots.get_mut(index) {
            let output = answer_line(slot.line, &slot.sent, &response.body)
                .map_err(|e| link_error(self.addr, e))?;
            slot.output = Some(output);
        }
        self.write_ready()
    }

    /// Prints the answered requests at the front of the window.
    fn write_ready(&mut self) -> Result<()> {
        while self.slots.front().is_some_and(|s| s.output.is_some()) {
            if let Some(WindowEntry {
                output: Some(bytes),
                ..
            }) = self.slots.pop_front()
            {
                self.out.write_all(&bytes).map_err(Error::Output)?;
            }
            self.first_seq += 1;
        }
        Ok(())
    }
}

/// The error for a response that answers no request in flight.
fn stray(response: Response) -> ClientError {
    let what = match response.body {
        ResponseBody::Error { code, message } if response.request_id == 0 => {
            format!("an error about no request: {code} ({message})")
        }
        _ => format!(
            "a response for request id {}, which is not in flight",
            response.request_id
        ),
    };
    ClientError::Unexpected { what }
}

/// A `bid_response` answer as the server sends it: the BidResponse and
/// the decision behind each impression (the objects `cx score` prints).
#[derive(Deserialize)]
struct Scored {
    response: BidResponse,
    decisions: Vec<ImpScored>,
}

/// One impression's decision, in `cx score`'s shape.
#[derive(Deserialize, Serialize)]
struct ImpScored {
    imp_id: String,
    /// Present only when asked for (`--decision-ids`) and offers were chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    decision_id: Option<String>,
    decision: Option<serde_json::Value>,
    skipped: Option<String>,
}

/// The output object of a decided request: `cx score`'s shape.
#[derive(Serialize)]
struct ScoredLine<'a> {
    line: usize,
    response: &'a BidResponse,
    decisions: &'a [ImpScored],
}

/// The output line for an answer to a score request, checked against the
/// request sent: one decision per impression with its id, in order, and a
/// BidResponse that answers the request (`BidResponse::check`).
fn answer_line(
    line: usize,
    sent: &Sent,
    body: &ResponseBody,
) -> std::result::Result<Vec<u8>, ClientError> {
    let unexpected = |what: String| ClientError::Unexpected { what };
    let json = match body {
        ResponseBody::BidResponse(json) => json,
        ResponseBody::Error { code, message } => {
            return failed_line(line, *code, message).map_err(|e| unexpected(e.to_string()))
        }
        ResponseBody::Decision(_)
        | ResponseBody::Pong(_)
        | ResponseBody::HelloAck(_)
        | ResponseBody::FeedbackAck(_)
        | ResponseBody::PutFeaturesAck(_) => {
            return Err(unexpected(format!(
                "the request on line {line} asked for a bid_response; the server answered \
                 another kind of frame"
            )))
        }
    };
    let scored: Scored = serde_json::from_str(json).map_err(|e| {
        unexpected(format!(
            "the bid_response for line {line} is not valid: {e}"
        ))
    })?;
    if let Some(asked) = &sent.imp_ids {
        check_imps(line, asked, &scored.decisions)?;
    }
    if let Some(request) = &sent.request {
        scored.response.check(request).map_err(|e| {
            unexpected(format!(
                "the BidResponse for line {line} does not answer its request: {e}"
            ))
        })?;
    }
    json_line(&ScoredLine {
        line,
        response: &scored.response,
        decisions: &scored.decisions,
    })
    .map_err(|e| unexpected(e.to_string()))
}

fn failed_line(line: usize, code: ErrorCode, message: &str) -> Result<Vec<u8>> {
    json_line(&Failed::new(line, code, message))
}

/// `value` as one line of JSON, newline included.
fn json_line<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec(value).map_err(|e| Error::Output(e.into()))?;
    bytes.push(b'\n');
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_text_states_the_real_limits() {
        let line = format!("line over {LINE_BYTES_MAX} bytes");
        assert!(CLIENT_HELP.contains(&line), "{line}");
        let request = format!("over {} bytes", limits::OPENRTB_JSON_BYTES_MAX);
        assert!(CLIENT_HELP.contains(&request), "{request}");
        assert_eq!(DEPTH_MAX, 1024);
    }

    #[test]
    fn wrappers_are_unwrapped_and_requests_sent_as_they_are() {
        let Item::Send(inner, _) = item(br#"{"source": "s", "request": {"id": "r"}}"#) else {
            panic!("a wrapper is sent");
        };
        assert_eq!(inner, br#"{"id":"r"}"#);
        let direct = br#"{"id": "r", "imp": [], "request": 1}"#;
        assert!(matches!(item(direct), Item::Send(bytes, _) if bytes == direct));
        assert!(matches!(item(b"not json"), Item::Send(bytes, _) if bytes == b"not json"));
    }

    #[test]
    fn oversized_requests_are_refused_without_sending() {
        let big = vec![b' '; limits::OPENRTB_JSON_BYTES_MAX + 1];
        assert!(matches!(
            item(&big),
            Item::Refuse {
                code: ErrorCode::FrameTooLarge,
                ..
            }
        ));
    }
}
