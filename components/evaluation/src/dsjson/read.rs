//! Reading a DSJSON log line by line, each line bounded by
//! [`LINE_BYTES_MAX`](super::LINE_BYTES_MAX).

use super::{DsjsonLine, LoggedEvent, LINE_BYTES_MAX};
use crate::error::{Error, Result};
use std::io::BufRead;

/// Reads [`LoggedEvent`]s from DSJSON lines. Blank lines are skipped; a
/// UTF-8 byte-order mark and `\r\n` line ends are accepted. A bad line is
/// an [`Error`] naming it; the reader can go on with the next one.
pub struct DsjsonReader<R> {
    input: R,
    /// Number of the last line read, from 1.
    line: usize,
    buffer: Vec<u8>,
    line_bytes_max: usize,
}

impl<R: BufRead> DsjsonReader<R> {
    /// A reader of `input` with the default line limit.
    pub fn new(input: R) -> Self {
        Self::with_line_limit(input, LINE_BYTES_MAX)
    }

    /// A reader whose lines may be at most `line_bytes_max` bytes.
    pub fn with_line_limit(input: R, line_bytes_max: usize) -> Self {
        Self {
            input,
            line: 0,
            buffer: Vec::new(),
            line_bytes_max,
        }
    }

    /// Number of the last line read (0 before the first).
    pub fn line(&self) -> usize {
        self.line
    }

    /// The next event and its line number; `None` at the end of the input.
    pub fn next_event(&mut self) -> Result<Option<(usize, LoggedEvent)>> {
        loop {
            let Some(bytes) = self.next_line()? else {
                return Ok(None);
            };
            let line = self.line;
            if bytes > self.line_bytes_max as u64 {
                return Err(Error::LineTooLong {
                    line,
                    bytes,
                    limit: self.line_bytes_max,
                });
            }
            let text = trim(&self.buffer);
            if text.is_empty() {
                continue;
            }
            return parse_line(line, text).map(|event| Some((line, event)));
        }
    }

    /// Reads the next line into `buffer` (up to the limit; the rest of a
    /// longer line is read and dropped). Returns its length, or `None` at
    /// the end of the input.
    fn next_line(&mut self) -> Result<Option<u64>> {
        self.buffer.clear();
        let mut bytes = 0u64;
        let mut any = false;
        loop {
            let available = match self.input.fill_buf() {
                Ok(available) => available,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(Error::Read {
                        line: self.line + 1,
                        source,
                    })
                }
            };
            if available.is_empty() {
                if !any {
                    return Ok(None);
                }
                break;
            }
            any = true;
            let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
                Some(end) => (&available[..end], Some(end + 1)),
                None => (available, None),
            };
            let room = (self.line_bytes_max + 1).saturating_sub(self.buffer.len());
            self.buffer
                .extend_from_slice(&chunk[..chunk.len().min(room)]);
            bytes += chunk.len() as u64;
            let used = done.unwrap_or(chunk.len());
            self.input.consume(used);
            if done.is_some() {
                break;
            }
        }
        self.line += 1;
        if self.buffer.last() == Some(&b'\r') && bytes <= self.line_bytes_max as u64 + 1 {
            self.buffer.pop();
            bytes -= 1;
        }
        if self.line == 1 && self.buffer.starts_with(b"\xEF\xBB\xBF") {
            self.buffer.drain(..3);
            bytes -= 3;
        }
        Ok(Some(bytes))
    }
}

impl<R: BufRead> Iterator for DsjsonReader<R> {
    type Item = Result<(usize, LoggedEvent)>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_event().transpose()
    }
}

/// The line without surrounding ASCII whitespace.
fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace());
    let end = bytes.iter().rposition(|b| !b.is_ascii_whitespace());
    match (start, end) {
        (Some(start), Some(end)) => &bytes[start..=end],
        _ => &[],
    }
}

/// Parses and checks one line's text.
fn parse_line(line: usize, text: &[u8]) -> Result<LoggedEvent> {
    let json_error = |field: String, reason: String| Error::Json {
        line,
        field,
        reason,
    };
    let mut deserializer = serde_json::Deserializer::from_slice(text);
    let dsjson: DsjsonLine = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|error| json_error(error.path().to_string(), error.into_inner().to_string()))?;
    deserializer
        .end()
        .map_err(|error| json_error(".".into(), error.to_string()))?;
    LoggedEvent::from_line(dsjson).map_err(|(field, reason)| Error::Field {
        line,
        field,
        reason,
    })
}
