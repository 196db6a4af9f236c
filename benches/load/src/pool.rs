//! The request mix ([`RequestPool`]): a fixed set of requests, built before
//! the clock starts and cycled through by the sender.
//!
//! Synthetic requests are kept as owned [`RequestContext`]s (one
//! allocation per string, built once), replayed OpenRTB documents as one
//! byte arena with end offsets (one allocation for the whole file). Both
//! are encoded at send time rather than stored as frames, because the
//! client assigns each request its id when it encodes it. Every request is
//! checked against the protocol's limits here, so a send cannot fail to
//! encode mid-run. The echo mix keeps nothing: each `pong` frame is
//! encoded at send time with the id the run gives it.

use super::config::{Mix, MIX_FILE_BYTES_MAX};
use crate::error::{Error, Result};
use cx_datasets::{Generator, SynthConfig};
use cx_features::RequestContext;
use cx_wire::client::{ClientError, ClientWriter};
use cx_wire::protocol::{self, limits, OpenRtbFlags};
use std::cell::RefCell;
use std::io::Read;
use std::path::Path;

/// The option that names the replayed file.
const MIX_OPTION: &str = "--mix";

/// The requests a run cycles through. See the [crate docs](crate) docs
/// for how they are sent.
#[derive(Clone, Debug)]
pub struct RequestPool {
    kind: Kind,
    label: String,
}

#[derive(Clone, Debug)]
enum Kind {
    /// Sent as `score_context`.
    Contexts(Vec<RequestContext>),
    /// Sent as `score_openrtb`: document `j` is
    /// `bytes[ends[j - 1]..ends[j]]` (from 0 for the first).
    Documents { bytes: Vec<u8>, ends: Vec<usize> },
    /// `pong` frames for an echo server, sent raw.
    Echo,
}

thread_local! {
    /// Where the sender thread encodes an echo frame before queueing it
    /// (one buffer per thread, reused: no allocation per request).
    static ECHO_FRAME: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl RequestPool {
    /// The pool `mix` describes, at most `pool` requests: synthetic rows
    /// `0..pool` of the default generator with `seed`, or the first `pool`
    /// requests of the file (the echo mix ignores both).
    pub fn build(mix: &Mix, seed: u64, pool: usize) -> Result<Self> {
        match mix {
            Mix::Synth => Self::synth(seed, pool),
            Mix::Echo => Ok(Self::echo()),
            Mix::OpenRtb(path) => Self::from_file(path, pool),
        }
    }

    /// The echo mix: `pong` frames for `cx serve --echo`.
    pub fn echo() -> Self {
        Self {
            kind: Kind::Echo,
            label: "echo".into(),
        }
    }

    /// Whether this is the echo mix: no hello is exchanged, and a `pong`
    /// (not a decision) is the expected answer.
    pub fn is_echo(&self) -> bool {
        matches!(self.kind, Kind::Echo)
    }

    /// `n` requests from the default synthetic generator with `seed`, each
    /// with timestamp 0 (the server stamps the arrival time).
    pub fn synth(seed: u64, n: usize) -> Result<Self> {
        let mut generator = Generator::new(SynthConfig::default(), seed)
            .map_err(|e| Error::Run(format!("the synthetic generator: {e}")))?;
        let mut scratch = Vec::new();
        let mut contexts = Vec::with_capacity(n);
        for i in 0..n {
            let ctx = RequestContext {
                timestamp: 0,
                ..generator.next_row().to_context()
            };
            scratch.clear();
            protocol::encode_score_context(&mut scratch, 1, &ctx, false)
                .map_err(|e| Error::Run(format!("synthetic request {i} cannot be sent: {e}")))?;
            contexts.push(ctx);
        }
        Ok(Self {
            kind: Kind::Contexts(contexts),
            label: "synth".into(),
        })
    }

    /// At most `n` requests from an OpenRTB JSONL file, read the way
    /// `cx score` reads its input: one BidRequest per line, or one
    /// `{"request": {...}}` wrapper per line (its `request` is sent), or
    /// one pretty-printed document; blank lines are skipped. A line that is
    /// not JSON, or a request over the protocol's limit, is an error naming
    /// the line.
    pub fn from_file(path: &Path, n: usize) -> Result<Self> {
        let shown = path.display().to_string();
        let text = read_bounded(path)?;
        let content = |what: String| Error::Content {
            option: MIX_OPTION,
            path: shown.clone(),
            what,
        };
        let documents = documents(&text, n).map_err(content)?;
        let mut bytes = Vec::with_capacity(documents.iter().map(Vec::len).sum());
        let mut ends = Vec::with_capacity(documents.len());
        for document in documents {
            bytes.extend_from_slice(&document);
            ends.push(bytes.len());
        }
        Ok(Self {
            kind: Kind::Documents { bytes, ends },
            label: shown,
        })
    }

    /// Requests in the pool (at least 1; the echo mix counts as 1).
    pub fn len(&self) -> usize {
        match &self.kind {
            Kind::Contexts(contexts) => contexts.len(),
            Kind::Documents { ends, .. } => ends.len(),
            Kind::Echo => 1,
        }
    }

    /// Whether the pool is empty (never, once built).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `synth`, `echo`, or the replayed file.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The JSON of replayed document `j` (`None` past the end, or for a
    /// pool that holds no documents).
    pub(crate) fn document(&self, j: usize) -> Option<&[u8]> {
        let Kind::Documents { bytes, ends } = &self.kind else {
            return None;
        };
        let end = *ends.get(j)?;
        let start = j.checked_sub(1).and_then(|p| ends.get(p)).copied();
        bytes.get(start.unwrap_or(0)..end)
    }

    /// Whether the pool holds replayed OpenRTB documents (the only kind
    /// the HTTP bidder takes).
    pub(crate) fn has_documents(&self) -> bool {
        matches!(self.kind, Kind::Documents { .. })
    }

    /// Queues request `index` (taken modulo the pool's size) on `writer`;
    /// returns its request id. The writer numbers score requests itself;
    /// an echo frame, queued raw, carries `raw_id` (the id the writer would
    /// have given it) and `index` as its nonce. A synthetic context takes
    /// only `flags.simulate`; a document takes both flags.
    pub fn send(
        &self,
        index: u64,
        raw_id: u64,
        writer: &mut ClientWriter,
        flags: OpenRtbFlags,
    ) -> std::result::Result<u64, ClientError> {
        let len = self.len().max(1) as u64;
        let j = (index % len) as usize;
        match &self.kind {
            Kind::Contexts(contexts) => match contexts.get(j) {
                Some(ctx) => writer.send_context(ctx, flags.simulate),
                None => writer.send_context(&RequestContext::default(), flags.simulate),
            },
            Kind::Documents { .. } => {
                writer.send_openrtb_with(self.document(j).unwrap_or(&[]), flags)
            }
            Kind::Echo => ECHO_FRAME.with_borrow_mut(|frame| {
                frame.clear();
                protocol::encode_pong(frame, raw_id, index);
                writer.send_raw(frame).map(|()| raw_id)
            }),
        }
    }
}

/// The file's bytes, refusing one over [`MIX_FILE_BYTES_MAX`].
fn read_bounded(path: &Path) -> Result<Vec<u8>> {
    let file_error = |op, source| Error::File {
        option: MIX_OPTION,
        path: path.display().to_string(),
        op,
        source,
    };
    let file = std::fs::File::open(path).map_err(|e| file_error("open it", e))?;
    let mut bytes = Vec::new();
    file.take(MIX_FILE_BYTES_MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| file_error("read it", e))?;
    if bytes.len() as u64 > MIX_FILE_BYTES_MAX {
        return Err(Error::Content {
            option: MIX_OPTION,
            path: path.display().to_string(),
            what: format!("the file is over the limit of {MIX_FILE_BYTES_MAX} bytes"),
        });
    }
    Ok(bytes)
}

/// The first `n` requests of `text` (see [`RequestPool::from_file`]).
fn documents(text: &[u8], n: usize) -> std::result::Result<Vec<Vec<u8>>, String> {
    let text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
    let mut lines = text
        .split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, line)| (i + 1, line.strip_suffix(b"\r").unwrap_or(line)))
        .filter(|(_, line)| !is_blank(line))
        .peekable();
    let Some(&(_, first)) = lines.peek() else {
        return Err("no requests in the file".into());
    };
    if !is_json(first) && is_json_object(text) {
        return Ok(vec![
            request_of(text).map_err(|e| format!("the document: {e}"))?
        ]);
    }
    let mut out = Vec::new();
    for (number, line) in lines.take(n) {
        out.push(request_of(line).map_err(|e| format!("line {number}: {e}"))?);
    }
    Ok(out)
}

/// The BidRequest of one line: the line itself, or a wrapper's `request`.
fn request_of(line: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let document = match wrapped_request(line)? {
        Some(inner) => serde_json::to_vec(&inner).map_err(|e| format!("`request`: {e}"))?,
        None => line.to_vec(),
    };
    if document.len() > limits::OPENRTB_JSON_BYTES_MAX {
        return Err(format!(
            "the request is {} bytes, over the protocol's limit of {} bytes",
            document.len(),
            limits::OPENRTB_JSON_BYTES_MAX
        ));
    }
    Ok(document)
}

/// The `request` field of a wrapper object (an object with a `request`
/// field and no `imp`); `None` for a plain document. Not JSON is an error.
fn wrapped_request(line: &[u8]) -> std::result::Result<Option<serde_json::Value>, String> {
    let mentions_request = line.windows(9).any(|w| w == b"\"request\"");
    if !mentions_request {
        return serde_json::from_slice::<serde::de::IgnoredAny>(line)
            .map(|_| None)
            .map_err(|e| format!("not JSON: {e}"));
    }
    let value: serde_json::Value =
        serde_json::from_slice(line).map_err(|e| format!("not JSON: {e}"))?;
    match value {
        serde_json::Value::Object(mut fields) if !fields.contains_key("imp") => {
            Ok(fields.remove("request"))
        }
        _ => Ok(None),
    }
}

/// Whether `text` is only white space.
fn is_blank(text: &[u8]) -> bool {
    text.iter().all(u8::is_ascii_whitespace)
}

/// Whether `text` is one complete JSON value.
fn is_json(text: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(text).is_ok()
}

/// Whether `text` is one complete JSON object.
fn is_json_object(text: &[u8]) -> bool {
    text.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') && is_json(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_wrappers_and_pretty_documents_are_read() {
        let text =
            b"{\"id\": \"a\", \"imp\": []}\n\n{\"source\": 1, \"request\": {\"id\": \"b\"}}\r\n";
        let docs = documents(text, 10).expect("two requests");
        assert_eq!(docs[0], b"{\"id\": \"a\", \"imp\": []}");
        assert_eq!(docs[1], b"{\"id\":\"b\"}");
        let pretty = b"{\n  \"id\": \"c\",\n  \"imp\": []\n}\n";
        assert_eq!(documents(pretty, 10).expect("one").len(), 1);
        assert_eq!(documents(text, 1).expect("the first").len(), 1);
    }

    #[test]
    fn bad_lines_are_named() {
        let err = documents(b"{\"id\": 1}\nnot json\n", 10).unwrap_err();
        assert!(err.starts_with("line 2: not JSON"), "{err}");
        assert!(documents(b"\n \n", 10).is_err());
    }
}
