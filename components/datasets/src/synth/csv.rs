//! The CSV form of [`SynthRow`]s, which the trainer reads.
//!
//! Layout: one header line ([`CSV_HEADER`]), then one line per row, `\n`
//! terminated, one column per field in [`CSV_COLUMNS`] order. Booleans are
//! `0`/`1`; list fields (`segments`, `categories`) are joined with `|` (empty
//! list: empty field); floats use Rust's shortest round-trip form, so
//! parsing a line gives back the identical row. No value ever needs quoting:
//! text fields are refused on write if they hold `,`, `|`, `"` or a line
//! break, and the parser does not interpret quotes.

use super::{Os, SynthRow};
use crate::error::{Error, Result};
use std::fmt::Write as _;
use std::io::{BufRead, Read, Write};

/// The columns, in order.
pub const CSV_COLUMNS: [&str; 19] = [
    "user_id",
    "segments",
    "device_type",
    "os",
    "conn_type",
    "country",
    "region",
    "site_or_app_id",
    "is_app",
    "domain",
    "categories",
    "width",
    "height",
    "position",
    "bid_floor",
    "ts_unix",
    "offer_id",
    "click",
    "p_true",
];

/// The header line, without its `\n`: [`CSV_COLUMNS`] joined with `,`.
pub const CSV_HEADER: &str = "user_id,segments,device_type,os,conn_type,country,region,\
site_or_app_id,is_app,domain,categories,width,height,position,bid_floor,ts_unix,offer_id,click,p_true";

/// Longest line [`read_csv`] accepts, in bytes.
pub const CSV_LINE_BYTES_MAX: usize = 64 * 1024;

/// Writes rows as CSV: the header on creation, then one line per row.
/// Wrap an unbuffered writer in a `BufWriter`; each line is one `write_all`.
#[derive(Debug)]
pub struct CsvWriter<W: Write> {
    writer: W,
    /// 1-based number of the last line written (the header is line 1).
    line: u64,
    buf: String,
}

impl<W: Write> CsvWriter<W> {
    /// A writer that has written the header line.
    pub fn new(mut writer: W) -> Result<Self> {
        writer
            .write_all(CSV_HEADER.as_bytes())
            .and_then(|()| writer.write_all(b"\n"))
            .map_err(|source| Error::SynthCsvIo { line: 1, source })?;
        Ok(Self {
            writer,
            line: 1,
            buf: String::new(),
        })
    }

    /// Writes one row. A text field that holds a separator is refused with
    /// [`Error::SynthCsv`] naming the column, and nothing is written.
    pub fn write_row(&mut self, row: &SynthRow) -> Result<()> {
        let line = self.line + 1;
        self.buf.clear();
        format_row(row, line, &mut self.buf)?;
        self.writer
            .write_all(self.buf.as_bytes())
            .map_err(|source| Error::SynthCsvIo { line, source })?;
        self.line = line;
        Ok(())
    }

    /// Flushes and returns the underlying writer.
    pub fn into_inner(mut self) -> Result<W> {
        self.writer.flush().map_err(|source| Error::SynthCsvIo {
            line: self.line,
            source,
        })?;
        Ok(self.writer)
    }
}

/// Writes the header and `rows` to `writer`, and flushes it.
pub fn write_csv<W: Write>(rows: &[SynthRow], writer: W) -> Result<()> {
    let mut csv = CsvWriter::new(writer)?;
    for row in rows {
        csv.write_row(row)?;
    }
    csv.into_inner().map(drop)
}

/// Refuses text that would break the layout.
fn check_text(text: &str, column: &'static str, line: u64) -> Result<()> {
    match text
        .chars()
        .find(|c| matches!(c, ',' | '|' | '"' | '\n' | '\r'))
    {
        None => Ok(()),
        Some(c) => Err(Error::SynthCsv {
            line,
            column,
            reason: format!("value {text:?} holds {c:?}, which the CSV layout reserves"),
        }),
    }
}

fn format_row(row: &SynthRow, line: u64, out: &mut String) -> Result<()> {
    for (text, column) in [
        (&row.country, "country"),
        (&row.region, "region"),
        (&row.site_or_app_id, "site_or_app_id"),
        (&row.domain, "domain"),
    ] {
        check_text(text, column, line)?;
    }
    for category in &row.categories {
        check_text(category, "categories", line)?;
    }
    let segments = join(row.segments.iter());
    let categories = join(row.categories.iter());
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "{},{segments},{},{},{},{},{},{},{},{},{categories},{},{},{},{},{},{},{},{}",
        row.user_id,
        row.device_type,
        row.os,
        row.conn_type,
        row.country,
        row.region,
        row.site_or_app_id,
        u8::from(row.is_app),
        row.domain,
        row.width,
        row.height,
        row.position,
        row.bid_floor,
        row.ts_unix,
        row.offer_id,
        u8::from(row.click),
        row.p_true,
    );
    Ok(())
}

fn join<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> String {
    let mut out = String::new();
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push('|');
        }
        let _ = write!(out, "{item}");
    }
    out
}

/// The error for `column` of `line`.
fn bad(line: u64, column: &'static str, reason: impl Into<String>) -> Error {
    Error::SynthCsv {
        line,
        column,
        reason: reason.into(),
    }
}

/// Parses one field.
fn num<T: std::str::FromStr>(text: &str, column: &'static str, line: u64) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    text.parse()
        .map_err(|e| bad(line, column, format!("cannot parse {text:?}: {e}")))
}

fn flag(text: &str, column: &'static str, line: u64) -> Result<bool> {
    match text {
        "0" => Ok(false),
        "1" => Ok(true),
        _ => Err(bad(line, column, format!("{text:?} is not 0 or 1"))),
    }
}

fn list<T>(text: &str, parse: impl FnMut(&str) -> Result<T>) -> Result<Vec<T>> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split('|').map(parse).collect()
}

fn real(text: &str, column: &'static str, line: u64, min: f64, max: f64) -> Result<f64> {
    let value: f64 = num(text, column, line)?;
    if value.is_finite() && (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(bad(
            line,
            column,
            format!("{value} is outside [{min}, {max}]"),
        ))
    }
}

/// Parses one data line (without its line break) written by [`CsvWriter`].
/// `line` is its 1-based line number, for the error, which names the column.
pub fn parse_csv_row(text: &str, line: u64) -> Result<SynthRow> {
    let fields: Vec<&str> = text.split(',').collect();
    if fields.len() != CSV_COLUMNS.len() {
        return Err(bad(
            line,
            CSV_COLUMNS[fields.len().min(CSV_COLUMNS.len() - 1)],
            format!(
                "line has {} columns, expected {}",
                fields.len(),
                CSV_COLUMNS.len()
            ),
        ));
    }
    let f = |i: usize| (fields[i], CSV_COLUMNS[i], line);
    let text_field = |i: usize| -> Result<String> {
        let (t, c, l) = f(i);
        check_text(t, c, l).map(|()| t.to_string())
    };
    let os = Os::parse(fields[3])
        .ok_or_else(|| bad(line, "os", format!("unknown os {:?}", fields[3])))?;
    Ok(SynthRow {
        user_id: num(fields[0], "user_id", line)?,
        segments: list(fields[1], |s| num(s, "segments", line))?,
        device_type: num(fields[2], "device_type", line)?,
        os,
        conn_type: num(fields[4], "conn_type", line)?,
        country: text_field(5)?,
        region: text_field(6)?,
        site_or_app_id: text_field(7)?,
        is_app: flag(fields[8], "is_app", line)?,
        domain: text_field(9)?,
        categories: list(fields[10], |s| Ok(s.to_string()))?,
        width: num(fields[11], "width", line)?,
        height: num(fields[12], "height", line)?,
        position: num(fields[13], "position", line)?,
        bid_floor: real(fields[14], "bid_floor", line, 0.0, f64::MAX)?,
        ts_unix: num(fields[15], "ts_unix", line)?,
        offer_id: num(fields[16], "offer_id", line)?,
        click: flag(fields[17], "click", line)?,
        p_true: real(fields[18], "p_true", line, 0.0, 1.0)? as f32,
    })
}

/// Reads one line of at most [`CSV_LINE_BYTES_MAX`] bytes, without its line
/// break; `None` at the end of the input.
fn read_line(reader: &mut impl BufRead, line: u64, buf: &mut Vec<u8>) -> Result<Option<String>> {
    buf.clear();
    let limit = CSV_LINE_BYTES_MAX as u64 + 1;
    (&mut *reader)
        .take(limit)
        .read_until(b'\n', buf)
        .map_err(|source| Error::SynthCsvIo { line, source })?;
    if buf.is_empty() {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    } else if buf.len() > CSV_LINE_BYTES_MAX {
        return Err(Error::LimitExceeded {
            what: format!("synthetic CSV line {line} length in bytes"),
            value: buf.len(),
            limit: CSV_LINE_BYTES_MAX,
        });
    }
    String::from_utf8(std::mem::take(buf))
        .map(Some)
        .map_err(|_| bad(line, CSV_COLUMNS[0], "line is not UTF-8"))
}

/// Reads a CSV click log written by [`write_csv`]: checks the header, then
/// parses at most `rows_max` rows (more is [`Error::LimitExceeded`]).
pub fn read_csv<R: BufRead>(mut reader: R, rows_max: usize) -> Result<Vec<SynthRow>> {
    let mut buf = Vec::new();
    let header = read_line(&mut reader, 1, &mut buf)?.unwrap_or_default();
    if header != CSV_HEADER {
        let found: Vec<&str> = header.split(',').collect();
        let at = (0..CSV_COLUMNS.len())
            .find(|&i| found.get(i) != Some(&CSV_COLUMNS[i]))
            .unwrap_or(CSV_COLUMNS.len() - 1);
        return Err(bad(
            1,
            CSV_COLUMNS[at],
            format!("header is {header:?}, expected {CSV_HEADER:?}"),
        ));
    }
    let mut rows = Vec::new();
    let mut line = 1u64;
    loop {
        line += 1;
        let Some(text) = read_line(&mut reader, line, &mut buf)? else {
            return Ok(rows);
        };
        if rows.len() == rows_max {
            return Err(Error::LimitExceeded {
                what: "rows in synthetic CSV".into(),
                value: rows.len() + 1,
                limit: rows_max,
            });
        }
        rows.push(parse_csv_row(&text, line)?);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_the_columns_joined() {
        assert_eq!(CSV_HEADER, CSV_COLUMNS.join(","));
    }
}
