//! `cx features load --addr HOST:PORT FILE` and `cx features health
//! --addr HOST:PORT`: the online feature store of a live server.
//!
//! `load` reads a JSONL or CSV file of (user, feature, value) rows, types
//! each value with the feature definitions (the bundled ones, or
//! `--definitions`, which should be the server's), sends them in batched
//! `put_features` messages and prints, as JSON lines, every bad line and
//! every item the server refused with its line number, each batch's
//! counts, and the totals. It mirrors `cx feedback` ([`super::feedback`],
//! whose connection and output helpers it uses): a bad line is reported
//! and skipped, the run goes on. `health` ([`health`]) fetches the
//! server's `GET /admin/features/health` from its admin port.

use super::feedback::{connect, link_error, write_json, BadLine, READ_CHUNK_BYTES};
use super::input::origin;
use super::lines::{is_blank, Line, Lines, LINE_BYTES_MAX};
use super::Streams;
use crate::client::Client;
use crate::error::{Error, Result};
use clap::{Args, Subcommand, ValueEnum};
use cx_engine::featurestore::{Definitions, ValueType};
use cx_wire::protocol::limits::{self, FEATURE_NAME_BYTES_MAX, STRING_BYTES_MAX};
use cx_wire::protocol::{FeatureItem, PutFeaturesAck, PUT_FEATURES_REFUSALS};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

pub mod health;
pub mod parse;
pub use parse::{parse_csv_line, parse_json_line, OwnedItem};

/// Default and largest `--batch`: the protocol's limit per message.
pub const BATCH_MAX: u32 = limits::PUT_FEATURES_ITEMS_MAX as u32;

/// The `cx features` commands.
#[derive(Debug, Subcommand)]
pub enum FeaturesCommand {
    /// Write feature values (JSONL or CSV) into a live server's feature
    /// store in batched put_features messages, and print what became of
    /// each line as JSON.
    #[command(after_long_help = LOAD_HELP)]
    Load(LoadArgs),
    /// Print a live server's feature store health (per feature: fresh,
    /// stale and missing reads, writes, age p50/p99, warnings) as JSON,
    /// from its admin port.
    Health(health::HealthArgs),
}

/// The input's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum InputFormat {
    /// One JSON object per line.
    Jsonl,
    /// A header line `user_id,feature,value` (and optionally `,ts_ns`),
    /// then one row per line.
    Csv,
}

/// Arguments of `cx features load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// The decision server's binary protocol address.
    #[arg(long, value_name = "HOST:PORT")]
    pub addr: String,
    /// The values: a file, or `-` for stdin.
    #[arg(value_name = "FILE")]
    pub input: PathBuf,
    /// The input's format [default: from the extension: .csv is CSV,
    /// anything else JSONL].
    #[arg(long, value_enum)]
    pub format: Option<InputFormat>,
    /// The feature definitions that type the values (the server's file)
    /// [default: the bundled models/features.toml].
    #[arg(long, value_name = "FILE")]
    pub definitions: Option<PathBuf>,
    /// Most items per put_features message (1 to 2048).
    #[arg(
        long,
        value_name = "N",
        default_value_t = BATCH_MAX,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(BATCH_MAX))
    )]
    pub batch: u32,
    /// Limit on connecting and on each wait for the server, milliseconds;
    /// 0: wait forever.
    #[arg(long, value_name = "MS", default_value_t = super::feedback::TIMEOUT_MS_DEFAULT)]
    pub timeout_ms: u64,
}

const LOAD_HELP: &str = "\
INPUT
  JSONL (docs/FEATURES.md, \"Loading into a live server\"), one item per line:
    {\"user_id\": \"u1\", \"feature\": \"clicks_30d\", \"value\": 3, \"ts_ns\": 1704261600000000000}
  or CSV with a header line naming user_id, feature, value and optionally
  ts_ns, in any order; no quoting (a field with a comma or a quote is a bad
  line):
    user_id,feature,value,ts_ns
    u1,age_band,25-34,0
  user_id (required): the user as requests name it, at most 256 bytes.
  feature (required): a stored feature of the definitions, at most 64 bytes.
  value (required), typed by the feature's definition: f32 a finite number,
  i64 an integer, bool true or false (CSV also 1 or 0), timestamp unix
  seconds, category one of the feature's labels.
  ts_ns: when the value was observed, unix ns; 0 or absent: when the server
  reads it. A value older than the one the server holds is ignored
  (outdated).
  Blank lines are skipped. A line that is not such an item (bad JSON or CSV,
  an unknown field or feature, a computed feature, a value of the wrong
  type, a non-finite number, a line over 1114112 bytes) is reported with its
  number and skipped.

BATCHES
  Items are sent in put_features messages of up to --batch items (at most
  2048, the protocol's limit), one at a time on one connection, in input
  order. The server writes the items that fit its definitions and refuses
  the others one by one (no_user, unknown_feature, computed_feature,
  wrong_type, bad_value, store_off, store_refused); a refused item is
  reported with its line number.

OUTPUT
  One JSON object per line on stdout: for each bad line or refused item
    {\"line\": N, \"error\": \"... naming the field or the server's reason ...\"}
  for each batch
    {\"batch\": I, \"first_line\": A, \"last_line\": B, \"items\": E,
     \"written\": X, \"outdated\": Y, \"refused\": Z, \"refused_by_reason\": {\"unknown_feature\": 1}}
  and last
    {\"total\": {\"batches\": ..., \"items\": ..., \"written\": ..., \"outdated\": ...,
               \"refused\": ..., \"refused_by_reason\": {...}, \"bad_lines\": ...}}

EXIT STATUS
  0 when the input was read to its end and every batch answered, whatever
  the answers and bad lines; non-zero, with a message on stderr, for a bad
  option or definitions file, an unreadable input or CSV header, or a
  connection that fails, times out (--timeout-ms) or refuses a message.

EXAMPLE
  cx features load --addr 127.0.0.1:7070 users.jsonl
  cx features health --addr 127.0.0.1:9464";

/// Runs a `cx features` command.
pub fn execute(command: &FeaturesCommand, streams: &mut Streams<'_>) -> Result<()> {
    match command {
        FeaturesCommand::Load(args) => load(args, streams),
        FeaturesCommand::Health(args) => health::health(args, streams),
    }
}

/// What became of items: one batch's, or the run's.
#[derive(Debug, Default, Serialize)]
struct Counts {
    items: u64,
    written: u64,
    outdated: u64,
    refused: u64,
    /// Only the reasons with items.
    refused_by_reason: BTreeMap<&'static str, u64>,
}

impl Counts {
    fn add(&mut self, items: usize, ack: &PutFeaturesAck) {
        self.items += items as u64;
        self.written += u64::from(ack.written);
        self.outdated += u64::from(ack.outdated);
        self.refused += u64::from(ack.refused());
        for (i, &n) in ack.refused_by_reason().iter().enumerate() {
            if n > 0 {
                let label = PUT_FEATURES_REFUSALS.get(i).copied().unwrap_or("other");
                *self.refused_by_reason.entry(label).or_default() += u64::from(n);
            }
        }
    }
}

#[derive(Serialize)]
struct BatchLine<'a> {
    batch: u64,
    first_line: usize,
    last_line: usize,
    #[serde(flatten)]
    counts: &'a Counts,
}

#[derive(Default, Serialize)]
struct Total {
    batches: u64,
    #[serde(flatten)]
    counts: Counts,
    bad_lines: u64,
}

/// `cx features load`: connects and says hello (failing before any input
/// is read if the server cannot be reached), then sends the input's items
/// in batches and prints what became of them.
pub fn load(args: &LoadArgs, streams: &mut Streams<'_>) -> Result<()> {
    let defs = match &args.definitions {
        Some(path) => Definitions::load(path),
        None => Definitions::from_toml_str(crate::serve::features::BUNDLED_DEFINITIONS_TOML),
    }
    .map_err(|e| Error::Config(format!("--definitions: {e}")))?;
    let format = args.format.unwrap_or_else(|| {
        let csv = args.input.extension().is_some_and(|e| e == "csv");
        if csv {
            InputFormat::Csv
        } else {
            InputFormat::Jsonl
        }
    });
    let mut client = connect(&args.addr, args.timeout_ms).map_err(|e| link_error(&args.addr, e))?;
    client.hello().map_err(|e| link_error(&args.addr, e))?;
    let input_origin = origin(&args.input);
    let source = super::input::open_source(&args.input, &mut *streams.stdin)?;
    let mut lines = Lines::new(source, input_origin.clone(), READ_CHUNK_BYTES);
    let mut run = Run {
        client,
        addr: &args.addr,
        batch_max: args.batch as usize,
        pending: Vec::with_capacity(args.batch as usize),
        total: Total::default(),
        out: BufWriter::new(&mut *streams.stdout),
    };
    let mut header: Option<parse::CsvHeader> = None;
    while let Some(line) = lines.next_line()? {
        let (number, text) = match line {
            Line::Text(_, text) if is_blank(&text) => continue,
            Line::Text(number, text) => (number, text),
            Line::TooLong { number, bytes } => {
                let message =
                    format!("line is {bytes} bytes, more than the limit of {LINE_BYTES_MAX}");
                run.bad_line(number, &message)?;
                continue;
            }
        };
        let parsed = match (format, &header) {
            (InputFormat::Jsonl, _) => parse_json_line(&defs, &text),
            (InputFormat::Csv, Some(h)) => parse_csv_line(&defs, h, &text),
            (InputFormat::Csv, None) => {
                let h = parse::CsvHeader::parse(&text).map_err(|reason| Error::BadInput {
                    origin: input_origin.clone(),
                    reason: format!("line {number}: the CSV header: {reason}"),
                })?;
                header = Some(h);
                continue;
            }
        };
        match parsed {
            Ok(item) => run.push(number, item)?,
            Err(message) => run.bad_line(number, &message)?,
        }
    }
    run.send()?;
    let Run { total, mut out, .. } = run;
    write_json(&mut out, &serde_json::json!({ "total": total }))?;
    out.flush().map_err(Error::Output)
}

/// The items read and not yet sent (with their line numbers), and what
/// was printed so far.
struct Run<'a, 'o> {
    client: Client,
    addr: &'a str,
    batch_max: usize,
    pending: Vec<(usize, OwnedItem)>,
    total: Total,
    out: BufWriter<&'o mut dyn Write>,
}

impl Run<'_, '_> {
    fn push(&mut self, number: usize, item: OwnedItem) -> Result<()> {
        self.pending.push((number, item));
        if self.pending.len() >= self.batch_max {
            self.send()?;
        }
        Ok(())
    }

    fn bad_line(&mut self, line: usize, error: &str) -> Result<()> {
        self.total.bad_lines += 1;
        write_json(&mut self.out, &BadLine { line, error })
    }

    /// Sends the pending items as one `put_features` message (nothing
    /// when there are none), waits for its ack, prints each refused item
    /// with its line, then the batch's counts.
    fn send(&mut self) -> Result<()> {
        let (Some(first), Some(last)) = (self.pending.first(), self.pending.last()) else {
            return Ok(());
        };
        let lines = (first.0, last.0);
        let items: Vec<FeatureItem<'_>> = self.pending.iter().map(|(_, i)| i.borrowed()).collect();
        let ack = self
            .client
            .put_features(&items)
            .map_err(|e| link_error(self.addr, e))?;
        if ack.results.len() != items.len() {
            return Err(link_error(
                self.addr,
                crate::client::ClientError::Unexpected {
                    what: format!(
                        "a put_features_ack with {} results for {} items",
                        ack.results.len(),
                        items.len()
                    ),
                },
            ));
        }
        for ((line, item), &code) in self.pending.iter().zip(&ack.results) {
            if code != 0 {
                let error = format!(
                    "refused by the server: {} (user_id {:?}, feature {:?}, {} value)",
                    PutFeaturesAck::label(code),
                    item.user_id,
                    item.feature,
                    item.borrowed().value.type_label()
                );
                write_json(
                    &mut self.out,
                    &BadLine {
                        line: *line,
                        error: &error,
                    },
                )?;
            }
        }
        let mut counts = Counts::default();
        counts.add(items.len(), &ack);
        self.total.counts.add(items.len(), &ack);
        self.total.batches += 1;
        let line = BatchLine {
            batch: self.total.batches,
            first_line: lines.0,
            last_line: lines.1,
            counts: &counts,
        };
        write_json(&mut self.out, &line)?;
        self.out.flush().map_err(Error::Output)?;
        self.pending.clear();
        Ok(())
    }
}

/// The limits an input item is held to, for the help test.
const _: () = assert!(STRING_BYTES_MAX == 256 && FEATURE_NAME_BYTES_MAX == 64);

/// The definitions' name of a value type, as errors say it.
fn type_name(t: ValueType) -> &'static str {
    match t {
        ValueType::F32 => "f32",
        ValueType::I64 => "i64",
        ValueType::Bool => "bool",
        ValueType::Timestamp => "timestamp",
        ValueType::Category => "category",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_text_states_the_real_limits() {
        assert!(LOAD_HELP.contains(&format!("over {LINE_BYTES_MAX} bytes")));
        assert!(LOAD_HELP.contains(&format!("at most\n  {BATCH_MAX}, the protocol's limit")));
        for reason in PUT_FEATURES_REFUSALS {
            assert!(LOAD_HELP.contains(reason), "{reason}");
        }
    }
}
