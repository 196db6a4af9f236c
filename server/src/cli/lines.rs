//! Reading JSON request input line by line with a bounded buffer, shared by
//! `cx score` and `cx client`: each line is kept only up to
//! [`LINE_BYTES_MAX`] bytes (a longer one is consumed and reported, not
//! held), a `\r\n` ending and a UTF-8 byte-order mark are dropped.

use crate::error::{Error, Result};
use std::io::{BufRead, BufReader, Read};

pub use super::score::LINE_BYTES_MAX;

/// Whether `text` is only white space.
pub fn is_blank(text: &[u8]) -> bool {
    text.iter().all(u8::is_ascii_whitespace)
}

/// Whether `text` is one complete JSON value.
pub fn is_json(text: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(text).is_ok()
}

/// Whether `text` is one complete JSON object.
pub fn is_json_object(text: &[u8]) -> bool {
    text.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') && is_json(text)
}

/// One line of input, without its line terminator.
pub enum Line {
    /// Its 1-based number and its bytes (at most [`LINE_BYTES_MAX`]).
    Text(usize, Vec<u8>),
    /// A line over [`LINE_BYTES_MAX`], skipped.
    TooLong {
        /// Its 1-based number.
        number: usize,
        /// Its length, bytes.
        bytes: u64,
    },
}

/// The input's lines, each read with a bounded buffer.
pub struct Lines<'a> {
    reader: BufReader<Box<dyn Read + 'a>>,
    origin: String,
    number: usize,
}

impl<'a> Lines<'a> {
    /// Lines of `source` (named `origin` in errors), read `capacity` bytes
    /// at a time.
    pub fn new(source: Box<dyn Read + 'a>, origin: String, capacity: usize) -> Self {
        Self {
            reader: BufReader::with_capacity(capacity, source),
            origin,
            number: 0,
        }
    }

    /// Whether the next line needs a read from the source (which may block).
    pub fn is_drained(&self) -> bool {
        self.reader.buffer().is_empty()
    }

    /// The next line, or `None` at the end of the input. A line longer than
    /// [`LINE_BYTES_MAX`] is consumed chunk by chunk and not kept.
    pub fn next_line(&mut self) -> Result<Option<Line>> {
        let mut text = Vec::new();
        let mut bytes: u64 = 0;
        let mut too_long = false;
        let mut read_any = false;
        loop {
            let chunk = match self.reader.fill_buf() {
                Ok(chunk) => chunk,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(Error::InputRead {
                        origin: self.origin.clone(),
                        source,
                    })
                }
            };
            if chunk.is_empty() {
                break;
            }
            read_any = true;
            let newline = chunk.iter().position(|&b| b == b'\n');
            let part = chunk.get(..newline.unwrap_or(chunk.len())).unwrap_or(&[]);
            bytes += part.len() as u64;
            if !too_long && text.len() + part.len() > LINE_BYTES_MAX {
                too_long = true;
                text = Vec::new();
            } else if !too_long {
                text.extend_from_slice(part);
            }
            let used = newline.map_or(chunk.len(), |i| i + 1);
            self.reader.consume(used);
            if newline.is_some() {
                break;
            }
        }
        if !read_any {
            return Ok(None);
        }
        self.number += 1;
        if too_long {
            return Ok(Some(Line::TooLong {
                number: self.number,
                bytes,
            }));
        }
        if text.last() == Some(&b'\r') {
            text.pop();
        }
        if self.number == 1 && text.starts_with(b"\xEF\xBB\xBF") {
            text.drain(..3);
        }
        Ok(Some(Line::Text(self.number, text)))
    }
}

/// What [`hold_document`] found.
pub enum Held {
    /// The whole input is one JSON object starting on this line.
    Document(usize, Vec<u8>),
    /// The lines read so far, to be sent one by one.
    Lines(Vec<Line>),
}

/// After a first line that is not JSON on its own: the whole input as one
/// document when it fits in [`LINE_BYTES_MAX`] and is one JSON object;
/// else the lines read so far.
pub fn hold_document(lines: &mut Lines<'_>, number: usize, text: Vec<u8>) -> Result<Held> {
    let mut held_bytes = text.len();
    let mut held = vec![Line::Text(number, text)];
    while let Some(line) = lines.next_line()? {
        let fits = match &line {
            Line::Text(_, text) => {
                held_bytes = held_bytes.saturating_add(text.len() + 1);
                held_bytes <= LINE_BYTES_MAX
            }
            Line::TooLong { .. } => false,
        };
        held.push(line);
        if !fits {
            return Ok(Held::Lines(held));
        }
    }
    let mut document = Vec::with_capacity(held_bytes + 1);
    for line in &held {
        if let Line::Text(_, text) = line {
            document.extend_from_slice(text);
            document.push(b'\n');
        }
    }
    if is_json_object(&document) {
        Ok(Held::Document(number, document))
    } else {
        Ok(Held::Lines(held))
    }
}
