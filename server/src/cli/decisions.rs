//! `cx decisions export --journal DIR --out FILE`: the joined log of a
//! decision journal (`cx_engine::journal`) as DSJSON, for Vowpal Wabbit,
//! Personalizer, the Open Bandit Pipeline or `cx ope` (`docs/FEEDBACK.md`,
//! "Logged data out"). This module owns the join and its report.
//!
//! The engine's own join already decided which events count (windows,
//! duplicates, unknown decisions): the journal's observations are the
//! effects it applied. Export is a left outer join of the interactions on
//! the decision key: a decision's reward is its clicks (1 if any) or its
//! conversions' value; one with no observation gets the default reward,
//! 0. A decision younger than the reward's window may still hear back, so
//! it is left out and counted as open.

use super::Streams;
use crate::error::{Error, Result};
use clap::{Args, Subcommand, ValueEnum};
use cx_domain::feedback::id_key;
use cx_engine::journal::{journal_files, INTERACTIONS, OBSERVATIONS};
use cx_evaluation::{DsjsonReader, DsjsonWriter};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// The `cx decisions` commands.
#[derive(Debug, Subcommand)]
pub enum DecisionsCommand {
    /// Join a decision journal's decisions with the feedback applied to
    /// them and write the result as DSJSON (docs/OPE.md), one decision per
    /// line; print a JSON report of what was joined.
    Export(ExportArgs),
}

/// What a decision's reward is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reward {
    /// 1 when it was clicked, else 0.
    Click,
    /// The value of its conversions, else 0.
    Conversion,
}

impl Reward {
    /// The engine's default join window for this reward, s (`[feedback]`
    /// `click_window_s`, `conversion_window_s`).
    fn window_s(self) -> u64 {
        let windows = cx_engine::config_feedback::FeedbackSection::default();
        match self {
            Self::Click => windows.click_window_s,
            Self::Conversion => windows.conversion_window_s,
        }
    }
}

/// Arguments of `cx decisions export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The journal's directory (`cx serve --journal-dir`).
    #[arg(long, value_name = "DIR")]
    pub journal: PathBuf,
    /// Write the DSJSON here.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// The reward: `click` (1 or 0) or `conversion` (the conversions'
    /// value); `_label_cost` is minus it.
    #[arg(long, value_enum, default_value = "click")]
    pub reward: Reward,
    /// Leave out decisions made less than this long before --as-of-ms,
    /// whose outcome may still come, s [default: the reward's join window
    /// in the engine's defaults: 3600 for click, 604800 for conversion].
    #[arg(long, value_name = "S")]
    pub window_s: Option<u64>,
    /// The export's time, unix ms [default: now].
    #[arg(long, value_name = "MS")]
    pub as_of_ms: Option<u64>,
}

/// What export reads of an observation line (`cx_engine::journal::Observation`).
#[derive(Debug, Deserialize)]
struct ObservationLine {
    decision_key: String,
    kind: String,
    impression: bool,
    click: bool,
    conversion_value: f64,
}

/// A decision's outcome so far.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Outcome {
    /// Impressions counted.
    pub impressions: u32,
    /// Clicks counted.
    pub clicks: u32,
    /// Conversions counted.
    pub conversions: u32,
    /// Their value.
    pub conversion_value: f64,
}

/// What the export did.
#[derive(Debug, Default, Serialize)]
pub struct ExportReport {
    /// The reward written.
    pub reward: Option<Reward>,
    /// Interactions read.
    pub interactions: u64,
    /// Written to the output.
    pub exported: u64,
    /// Of those, with a reward other than 0.
    pub rewarded: u64,
    /// Left out: younger than the window.
    pub open: u64,
    /// Observations read.
    pub observations: u64,
    /// Decisions observed that no interaction names (their interaction
    /// was dropped, rotated away, or is in another journal).
    pub observed_without_interaction: u64,
    /// Lines that could not be read, skipped (each printed to stderr).
    pub bad_lines: u64,
}

/// Runs `cx decisions ...`.
pub fn execute(command: &DecisionsCommand, streams: &mut Streams<'_>) -> Result<()> {
    match command {
        DecisionsCommand::Export(args) => export(args, streams),
    }
}

fn export(args: &ExportArgs, streams: &mut Streams<'_>) -> Result<()> {
    let as_of_ns = match args.as_of_ms {
        Some(ms) => ms.saturating_mul(1_000_000),
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    };
    let window_ns = args
        .window_s
        .unwrap_or_else(|| args.reward.window_s())
        .saturating_mul(1_000_000_000);
    let (interactions, observations) = journal_streams(&args.journal)?;
    let mut report = ExportReport {
        reward: Some(args.reward),
        ..ExportReport::default()
    };
    let mut outcomes = HashMap::new();
    for (_, path) in &observations {
        read_observations(path, &mut outcomes, &mut report, streams.stderr)?;
    }
    let out = std::fs::File::create(&args.out).map_err(|source| Error::File {
        path: args.out.display().to_string(),
        source,
    })?;
    let mut writer = DsjsonWriter::new(std::io::BufWriter::new(out));
    let mut named = 0u64;
    for (_, path) in &interactions {
        let input = open(path)?;
        let mut reader = DsjsonReader::new(BufReader::new(input));
        loop {
            let (line, mut event) = match reader.next_event() {
                Ok(Some(event)) => event,
                Ok(None) => break,
                Err(e @ cx_evaluation::Error::Read { .. }) => {
                    return Err(Error::Mismatch(format!("{}: {e}", path.display())))
                }
                Err(e) => {
                    let line = Some(reader.line());
                    bad_line(streams.stderr, path, line, &e.to_string(), &mut report)?;
                    continue;
                }
            };
            report.interactions += 1;
            let outcome = outcomes.get(&id_key(&event.event_id)).copied();
            named += u64::from(outcome.is_some());
            if event.timestamp_unix_ns.saturating_add(window_ns) > as_of_ns {
                report.open += 1;
                continue;
            }
            let outcome = outcome.unwrap_or_default();
            event.reward = match args.reward {
                Reward::Click => f64::from(u8::from(outcome.clicks > 0)),
                Reward::Conversion => outcome.conversion_value,
            };
            report.rewarded += u64::from(event.reward != 0.0);
            writer
                .write(&event)
                .map_err(|e| Error::Mismatch(format!("{} line {line}: {e}", path.display())))?;
            report.exported += 1;
        }
    }
    writer.finish().map_err(|source| Error::File {
        path: args.out.display().to_string(),
        source,
    })?;
    report.observed_without_interaction = (outcomes.len() as u64).saturating_sub(named);
    super::write_json(streams.stdout, &report, false)
}

/// One stream's files, oldest first: (index, path).
pub(super) type JournalFiles = Vec<(u64, PathBuf)>;

/// A journal's files, oldest first: its interactions and its
/// observations. A directory without interactions is not a journal.
pub(super) fn journal_streams(dir: &Path) -> Result<(JournalFiles, JournalFiles)> {
    let files = |name| {
        journal_files(dir, name).map_err(|source| Error::File {
            path: dir.display().to_string(),
            source,
        })
    };
    let (interactions, observations) = (files(INTERACTIONS)?, files(OBSERVATIONS)?);
    if interactions.is_empty() {
        return Err(Error::Mismatch(format!(
            "{}: no interactions-NNNNNN.dsjson files: not a decision journal \
             (cx serve --journal-dir)",
            dir.display()
        )));
    }
    Ok((interactions, observations))
}

pub(super) fn open(path: &Path) -> Result<std::fs::File> {
    std::fs::File::open(path).map_err(|source| Error::File {
        path: path.display().to_string(),
        source,
    })
}

/// Adds `path`'s observations to `outcomes`.
pub(super) fn read_observations(
    path: &Path,
    outcomes: &mut HashMap<u64, Outcome>,
    report: &mut ExportReport,
    stderr: &mut dyn Write,
) -> Result<()> {
    let reader = BufReader::new(open(path)?);
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|source| Error::File {
            path: path.display().to_string(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed = serde_json::from_str::<ObservationLine>(&line)
            .map_err(|e| e.to_string())
            .and_then(|o| match u64::from_str_radix(&o.decision_key, 16) {
                Ok(key) => Ok((key, o)),
                Err(e) => Err(format!("decision_key {:?}: {e}", o.decision_key)),
            });
        match parsed {
            Ok((key, o)) => {
                report.observations += 1;
                let outcome = outcomes.entry(key).or_default();
                outcome.impressions += u32::from(o.impression);
                outcome.clicks += u32::from(o.click);
                outcome.conversions += u32::from(o.kind == "conversion");
                if o.conversion_value.is_finite() {
                    outcome.conversion_value += o.conversion_value;
                }
            }
            Err(e) => bad_line(stderr, path, Some(i + 1), &e, report)?,
        }
    }
    Ok(())
}

pub(super) fn bad_line(
    stderr: &mut dyn Write,
    path: &Path,
    line: Option<usize>,
    error: &str,
    report: &mut ExportReport,
) -> Result<()> {
    report.bad_lines += 1;
    let value =
        serde_json::json!({"file": path.display().to_string(), "line": line, "error": error});
    writeln!(stderr, "{value}").map_err(Error::Output)
}
