//! `cx experiment report`: every live experiment's per-variant counts and
//! tests (`cx_experiments::stats::report`), from a live server's admin port
//! (`GET /admin/experiments`) or from a decision journal
//! (`cx serve --journal-dir`; `docs/EXPERIMENTS.md`, "Reports").
//!
//! From a journal, a decision's arm is its line's `_experiment`, and its
//! outcomes are the observations joined to it by decision key, as
//! `cx decisions export` joins them. The journal records decisions that
//! chose an offer, so `assigned` counts those (the server's own report
//! counts every assigned request). The sequential test is read once every
//! `--look-every` decisions of the experiment, in journal order, with the
//! outcomes known now: the always-valid p-value is the smallest over those
//! looks. Without `--experiments`, variations are ordered by key (the
//! control is the smallest) and there is no SRM check, since the configured
//! split is unknown.

use super::decisions::{bad_line, journal_streams, open, read_observations, Outcome};
use super::features::health::{fetch, print_json};
use super::Streams;
use crate::error::{Error, Result};
use crate::repository::experiments::{read_definitions, Definition};
use clap::Args;
use cx_domain::feedback::id_key;
use cx_evaluation::DsjsonReader;
use cx_experiments::stats::report::{report, ExperimentReport, Looks, VariantInput};
use cx_experiments::stats::sequential::SequentialConfig;
use cx_experiments::stats::VariantCounts;
use std::collections::{BTreeMap, HashMap};
use std::io::BufReader;
use std::path::PathBuf;

/// The admin path a live report is read from.
const PATH: &str = crate::metrics::admin::EXPERIMENTS_PATH;

/// Arguments of `cx experiment report`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["addr", "journal"])))]
pub struct ReportArgs {
    /// A live server's admin address (`admin_listen`): its report now.
    #[arg(long, value_name = "HOST:PORT")]
    pub addr: Option<String>,
    /// A decision journal's directory (`cx serve --journal-dir`).
    #[arg(long, value_name = "DIR")]
    pub journal: Option<PathBuf>,
    /// With --journal: the experiments file the server ran with, for the
    /// variations' order and the configured split (the SRM check).
    #[arg(long, value_name = "FILE", requires = "journal")]
    pub experiments: Option<PathBuf>,
    /// With --journal: read the sequential test every N decisions of an
    /// experiment.
    #[arg(long, value_name = "N", default_value_t = 1000, requires = "journal",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub look_every: u64,
    /// Print the document indented over several lines.
    #[arg(long)]
    pub pretty: bool,
    /// With --addr: limit on connecting and on the answer, milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout_ms: u64,
}

/// Runs the command: `{"experiments": [report, ...]}` on stdout.
pub fn run(args: &ReportArgs, streams: &mut Streams<'_>) -> Result<()> {
    if let Some(addr) = &args.addr {
        let (status, body) = fetch(addr, PATH, args.timeout_ms, "cx experiment report")?;
        if status != 200 {
            return Err(Error::Config(format!(
                "cx experiment report: server {addr}: {PATH} answered {status} (is this its \
                 admin port?)"
            )));
        }
        return print_json(&body, args.pretty, streams);
    }
    let journal = args
        .journal
        .as_ref()
        .expect("clap requires --addr or --journal");
    let definitions = match &args.experiments {
        Some(path) => read_definitions(path)?,
        None => Vec::new(),
    };
    let document = from_journal(journal, &definitions, args.look_every, streams)?;
    super::write_json(streams.stdout, &document, args.pretty)
}

/// One experiment's decisions as read so far, by variation key.
#[derive(Default)]
struct Tally {
    variants: BTreeMap<String, VariantInput>,
    decisions: u64,
    /// Sequential monitors, once the variations are known.
    looks: Option<Looks>,
}

fn from_journal(
    dir: &std::path::Path,
    definitions: &[Definition],
    look_every: u64,
    streams: &mut Streams<'_>,
) -> Result<serde_json::Value> {
    let (interactions, observations) = journal_streams(dir)?;
    let mut counts = super::decisions::ExportReport::default();
    let mut outcomes: HashMap<u64, Outcome> = HashMap::new();
    for (_, path) in &observations {
        read_observations(path, &mut outcomes, &mut counts, streams.stderr)?;
    }
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    let mut outside = 0u64;
    for (_, path) in &interactions {
        let mut reader = DsjsonReader::new(BufReader::new(open(path)?));
        loop {
            let event = match reader.next_event() {
                Ok(Some((_, event))) => event,
                Ok(None) => break,
                Err(e @ cx_evaluation::Error::Read { .. }) => {
                    return Err(Error::Mismatch(format!("{}: {e}", path.display())))
                }
                Err(e) => {
                    let line = Some(reader.line());
                    bad_line(streams.stderr, path, line, &e.to_string(), &mut counts)?;
                    continue;
                }
            };
            let Some(arm) = event.experiment else {
                outside += 1;
                continue;
            };
            let outcome = outcomes.get(&id_key(&event.event_id)).copied();
            let tally = tallies.entry(arm.key.clone()).or_default();
            add(tally, &arm.variation, outcome.unwrap_or_default());
            if tally.decisions.is_multiple_of(look_every) {
                look(&arm.key, tally, definitions);
            }
        }
    }
    let experiments: Vec<serde_json::Value> = tallies
        .iter_mut()
        .map(|(key, tally)| {
            let (r, weights) = look(key, tally, definitions);
            let mut value = serde_json::to_value(&r).unwrap_or_default();
            value["weights"] = weights.map_or(serde_json::Value::Null, Into::into);
            value
        })
        .collect();
    Ok(serde_json::json!({
        "source": "journal",
        "experiments": experiments,
        "decisions_outside_experiments": outside,
        "bad_lines": counts.bad_lines,
    }))
}

fn add(tally: &mut Tally, variation: &str, outcome: Outcome) {
    let v = tally
        .variants
        .entry(variation.to_owned())
        .or_insert_with(|| VariantInput {
            key: variation.to_owned(),
            assigned: 0,
            counts: VariantCounts::default(),
        });
    v.assigned += 1;
    v.counts.impressions += u64::from(outcome.impressions.min(1));
    v.counts.clicks += u64::from(outcome.clicks.min(1));
    v.counts.conversions += u64::from(outcome.conversions);
    v.counts.revenue += outcome.conversion_value;
    tally.decisions += 1;
}

/// Reads experiment `key`'s tests at its counts so far; returns the report
/// and the configured split, when the definitions give it.
fn look(
    key: &str,
    tally: &mut Tally,
    definitions: &[Definition],
) -> (ExperimentReport, Option<Vec<f64>>) {
    let definition = definitions.iter().find(|d| d.experiment.key() == key);
    let (variants, weights): (Vec<VariantInput>, Option<Vec<f64>>) = match definition {
        Some(d) => {
            let e = &d.experiment;
            let variants = (0..e.variation_count())
                .map(|v| {
                    let k = e.variation_key(v);
                    tally.variants.get(&k).cloned().unwrap_or(VariantInput {
                        key: k,
                        assigned: 0,
                        counts: VariantCounts::default(),
                    })
                })
                .collect();
            (variants, Some(e.split()))
        }
        None => (tally.variants.values().cloned().collect(), None),
    };
    let treatments = variants.len().saturating_sub(1);
    let looks = tally.looks.get_or_insert_with(|| {
        Looks::new(treatments, SequentialConfig::default()).expect("the default config is valid")
    });
    // Variations first seen after the first look get monitors from then on.
    looks.grow_to(treatments);
    let no_split = vec![1.0; variants.len()];
    let r = report(key, &variants, weights.as_ref().unwrap_or(&no_split), looks);
    let r = match weights {
        Some(_) => r,
        None => ExperimentReport { srm: None, ..r },
    };
    (r, weights)
}
