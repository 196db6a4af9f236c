//! The decision journal: the logged data a data scientist trains and
//! evaluates on elsewhere (`docs/FEEDBACK.md`, "Logged data out").
//!
//! Two streams, as Microsoft's learning loop keeps them, joined later by
//! `cx decisions export`:
//! - **interactions**: each real decision that chose an offer, as a DSJSON
//!   line (`docs/OPE.md`) with the request, the ranked offers, the
//!   propensity and reward 0 (not known yet);
//! - **observations**: each feedback effect the engine's join applied
//!   (impression, click, conversion value), one JSON line each, keyed by
//!   the decision's key.
//!
//! # Layout and bounds
//!
//! The engine's systems never write a file. A decision's interaction is
//! copied into a pooled record (`clone_from`, so the request's strings
//! reuse the record's buffers; what allocates is a list item, a segment
//! or a category, beyond those the record last held: about one per
//! decision in `engine/tests/no_alloc.rs`) and pushed on a bounded queue; one writer thread per journal serializes and
//! appends. A full queue drops the record and counts it (`dropped`), so
//! the journal can never slow decisions down. Files rotate at
//! `file_bytes_max`, and only the newest `files_max` of each stream are
//! kept. A journal is shared by a server's engines (clones share it); the
//! thread stops, draining the queue, when the last clone is dropped.

use crate::error::{Error, Result};
use bevy_ecs::prelude::Res;
use crossbeam::queue::ArrayQueue;
use cx_domain::store::Effect;
use cx_evaluation::{ArmJson, DsjsonWriter, LoggedEvent};
use cx_features::RequestContext;
use cx_systems::resources::{DecisionLogging, ExperimentRoutes, Scoring, TickClock};
use cx_systems::systems::DecidedRequests;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

/// Interactions file names: `interactions-NNNNNN.dsjson`.
pub const INTERACTIONS: (&str, &str) = ("interactions", "dsjson");
/// Observations file names: `observations-NNNNNN.jsonl`.
pub const OBSERVATIONS: (&str, &str) = ("observations", "jsonl");

/// Where and how much a journal writes.
#[derive(Clone, Debug, PartialEq)]
pub struct JournalConfig {
    /// The directory (created if missing).
    pub dir: PathBuf,
    /// A file is closed and the next begun past this many bytes (at least
    /// 4096).
    pub file_bytes_max: u64,
    /// Newest files kept per stream (at least 1); older ones are deleted.
    pub files_max: u32,
    /// Records waiting for the writer at most (1 to 1,048,576); a record
    /// past it is dropped and counted.
    pub queue_max: usize,
}

impl JournalConfig {
    /// A journal in `dir` with the default bounds: files of 256 MiB, 8 of
    /// each stream, 16,384 records queued.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            file_bytes_max: 256 << 20,
            files_max: 8,
            queue_max: 1 << 14,
        }
    }

    fn validate(&self) -> Result<()> {
        let bad = |reason: String| Err(Error::Config(format!("journal: {reason}")));
        if self.file_bytes_max < 4096 {
            return bad(format!(
                "file_bytes_max {} is under 4096",
                self.file_bytes_max
            ));
        }
        if self.files_max == 0 {
            return bad("files_max is 0".into());
        }
        if !(1..=1 << 20).contains(&self.queue_max) {
            return bad(format!(
                "queue_max {} is outside 1..=1048576",
                self.queue_max
            ));
        }
        Ok(())
    }
}

/// One decision as the journal records it.
#[derive(Clone, Debug, Default)]
pub struct Interaction {
    /// The decision id (`EventId`).
    pub decision_id: String,
    /// When it was decided, unix ns.
    pub decided_ns: u64,
    /// The key of the model that scored it.
    pub model_key: u64,
    /// The experiment's key (empty outside experiments).
    pub experiment: String,
    /// The variation's key (empty outside experiments).
    pub variation: String,
    /// The request.
    pub context: RequestContext,
    /// The ranked offers, the chosen one first.
    pub offers: Vec<u64>,
    /// The policy's probability of the chosen offer.
    pub propensity: f64,
}

/// One applied feedback effect as the journal records it.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Observation {
    /// The decision's key (`cx_domain::feedback::id_key` of its id), as 16
    /// hex digits.
    #[serde(serialize_with = "hex")]
    pub decision_key: u64,
    /// The event's kind (`lost`: a win window closed unanswered).
    pub kind: &'static str,
    /// It counted an impression.
    pub impression: bool,
    /// It counted a click.
    pub click: bool,
    /// A conversion's value (0 for other kinds).
    pub conversion_value: f64,
    /// When it was applied, unix ns.
    pub ts_ns: u64,
}

fn hex<S: serde::Serializer>(key: &u64, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{key:016x}"))
}

impl Observation {
    /// The observation of `effect`, applied at `now_ns`.
    pub fn of(effect: &Effect, now_ns: u64) -> Self {
        Self {
            decision_key: effect.decision.key,
            kind: effect.kind.map_or("lost", |k| k.label()),
            impression: effect.impression,
            click: effect.click,
            conversion_value: effect.conversion_value,
            ts_ns: now_ns,
        }
    }
}

enum Record {
    Interaction(Box<Interaction>),
    Observation(Observation),
}

/// What a journal has done since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JournalStats {
    /// Interactions written.
    pub interactions: u64,
    /// Observations written.
    pub observations: u64,
    /// Records dropped: the queue was full.
    pub dropped: u64,
    /// Records lost to a failed write (the error is logged once per file).
    pub write_errors: u64,
}

#[derive(Default)]
struct Counters {
    interactions: AtomicU64,
    observations: AtomicU64,
    dropped: AtomicU64,
    write_errors: AtomicU64,
}

struct Shared {
    records: ArrayQueue<Record>,
    spares: ArrayQueue<Box<Interaction>>,
    counters: Counters,
    stop: AtomicBool,
}

/// Stops and joins the writer when the last journal handle goes.
struct Writer {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

/// A decision journal; clones share it. See the [module docs](self).
#[derive(Clone, bevy_ecs::prelude::Resource)]
pub struct Journal {
    shared: Arc<Shared>,
    /// Held for its `Drop`: the last handle stops and joins the writer.
    _writer: Arc<Writer>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Journal {
    /// Opens the journal's files in `config.dir` (after any files already
    /// there: nothing is overwritten) and starts its writer thread.
    pub fn start(config: JournalConfig) -> Result<Self> {
        config.validate()?;
        let interactions = Rotating::open(&config, INTERACTIONS)?;
        let observations = Rotating::open(&config, OBSERVATIONS)?;
        let spares = ArrayQueue::new(config.queue_max);
        for _ in 0..config.queue_max {
            let _ = spares.push(Box::new(Interaction {
                offers: Vec::with_capacity(cx_decision::TOP_K_MAX),
                ..Interaction::default()
            }));
        }
        let shared = Arc::new(Shared {
            records: ArrayQueue::new(config.queue_max),
            spares,
            counters: Counters::default(),
            stop: AtomicBool::new(false),
        });
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("cx-journal".into())
                .spawn(move || write_loop(&shared, interactions, observations))
                .map_err(|e| Error::Config(format!("journal: cannot start its writer: {e}")))?
        };
        let writer = Arc::new(Writer {
            shared: shared.clone(),
            thread: Mutex::new(Some(thread)),
        });
        Ok(Self {
            shared,
            _writer: writer,
        })
    }

    /// Records a decision: `fill` sets a pooled record (reuse its buffers).
    /// Returns false, counting it, when the queue is full.
    pub fn record_interaction(&self, fill: impl FnOnce(&mut Interaction)) -> bool {
        let Some(mut record) = self.shared.spares.pop() else {
            self.shared.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        };
        fill(&mut record);
        self.push(Record::Interaction(record))
    }

    /// Records an applied feedback effect; false, counting it, when the
    /// queue is full.
    pub fn record_observation(&self, observation: Observation) -> bool {
        self.push(Record::Observation(observation))
    }

    fn push(&self, record: Record) -> bool {
        match self.shared.records.push(record) {
            Ok(()) => true,
            Err(record) => {
                if let Record::Interaction(spare) = record {
                    let _ = self.shared.spares.push(spare);
                }
                self.shared.counters.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// The counts so far.
    pub fn stats(&self) -> JournalStats {
        let c = &self.shared.counters;
        JournalStats {
            interactions: c.interactions.load(Ordering::Relaxed),
            observations: c.observations.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            write_errors: c.write_errors.load(Ordering::Relaxed),
        }
    }
}

/// After the decide stage, before respond (when a [`Journal`] resource is
/// installed): records each real decision that chose an offer.
pub fn record_decisions(
    journal: Option<Res<Journal>>,
    decided: DecidedRequests,
    logging: Res<DecisionLogging>,
    clock: Res<TickClock>,
    scoring: Res<Scoring>,
    experiments: Res<ExperimentRoutes>,
) {
    let Some(journal) = journal else {
        return;
    };
    for (request, decision) in decided.iter() {
        if request.simulate || decision.offers().is_empty() {
            continue;
        }
        journal.record_interaction(|r| {
            r.decision_id.clear();
            logging.write_id(decision.ticket, &mut r.decision_id);
            r.decided_ns = clock.now_ns;
            let arm = experiments.arm(decision.arm);
            let slot = arm.map_or(0, |a| a.route.slot);
            r.model_key = scoring.slot(slot).id.as_u64();
            r.experiment.clear();
            r.variation.clear();
            if let Some(arm) = arm {
                r.experiment.push_str(&arm.experiment_key);
                r.variation.push_str(&arm.variation_key);
            }
            r.context.clone_from(&request.ctx);
            r.offers.clear();
            r.offers
                .extend(decision.offers().iter().map(|o| o.offer_id));
            r.propensity = f64::from(decision.propensity);
        });
    }
}

/// The writer thread: drains the queue, flushes when it runs dry, and
/// stops once asked and drained.
fn write_loop(shared: &Shared, mut interactions: Rotating, mut observations: Rotating) {
    let mut line = Vec::with_capacity(4096);
    let counters = &shared.counters;
    loop {
        let mut wrote = false;
        while let Some(record) = shared.records.pop() {
            wrote = true;
            line.clear();
            let (file, counter) = match record {
                Record::Interaction(i) => {
                    let ok = DsjsonWriter::new(&mut line)
                        .write(&logged_event(&i))
                        .is_ok();
                    let _ = shared.spares.push(i);
                    if !ok {
                        counters.write_errors.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    (&mut interactions, &counters.interactions)
                }
                Record::Observation(o) => {
                    let _ = serde_json::to_writer(&mut line, &o);
                    line.push(b'\n');
                    (&mut observations, &counters.observations)
                }
            };
            match file.append(&line) {
                Ok(()) => counter.fetch_add(1, Ordering::Relaxed),
                Err(()) => counters.write_errors.fetch_add(1, Ordering::Relaxed),
            };
        }
        if !wrote {
            interactions.flush();
            observations.flush();
            if shared.stop.load(Ordering::Acquire) && shared.records.is_empty() {
                return;
            }
            std::thread::park_timeout(std::time::Duration::from_millis(2));
        }
    }
}

/// The DSJSON event of an interaction: reward 0, the chosen offer first
/// at its propensity, the others sharing the rest evenly.
fn logged_event(i: &Interaction) -> LoggedEvent {
    let k = i.offers.len().max(1);
    let p = i.propensity.clamp(f64::MIN_POSITIVE, 1.0);
    let mut probabilities = vec![(1.0 - p) / (k - 1).max(1) as f64; k];
    probabilities[0] = if k == 1 { 1.0 } else { p };
    LoggedEvent {
        event_id: i.decision_id.clone(),
        timestamp_unix_ns: i.decided_ns,
        model_id: Some(format!("{:016x}", i.model_key)),
        context: i.context.clone(),
        offers: i.offers.clone(),
        chosen: 0,
        probabilities,
        reward: 0.0,
        experiment: (!i.experiment.is_empty()).then(|| ArmJson {
            key: i.experiment.clone(),
            variation: i.variation.clone(),
        }),
    }
}

/// One stream's files: `STEM-NNNNNN.EXT`, numbered on from the highest
/// already in the directory.
struct Rotating {
    dir: PathBuf,
    name: (&'static str, &'static str),
    file: Option<BufWriter<File>>,
    bytes: u64,
    index: u64,
    file_bytes_max: u64,
    files_max: u64,
    /// The last write error, logged once per file.
    failed: bool,
}

impl Rotating {
    fn open(config: &JournalConfig, name: (&'static str, &'static str)) -> Result<Self> {
        let failed = |e: std::io::Error| {
            Error::Config(format!("journal: cannot use {}: {e}", config.dir.display()))
        };
        std::fs::create_dir_all(&config.dir).map_err(failed)?;
        let last = journal_files(&config.dir, name)
            .map_err(failed)?
            .last()
            .map_or(0, |(i, _)| *i);
        let mut rotating = Self {
            dir: config.dir.clone(),
            name,
            file: None,
            bytes: 0,
            index: last,
            file_bytes_max: config.file_bytes_max,
            files_max: u64::from(config.files_max),
            failed: false,
        };
        rotating.next_file().map_err(failed)?;
        Ok(rotating)
    }

    fn next_file(&mut self) -> std::io::Result<()> {
        if let Some(mut file) = self.file.take() {
            file.flush()?;
        }
        self.index += 1;
        let path = file_path(&self.dir, self.name, self.index);
        self.file = Some(BufWriter::new(
            File::options().create_new(true).append(true).open(path)?,
        ));
        self.bytes = 0;
        self.failed = false;
        for (i, path) in journal_files(&self.dir, self.name)? {
            if i + self.files_max <= self.index {
                std::fs::remove_file(path)?;
            }
        }
        Ok(())
    }

    fn append(&mut self, line: &[u8]) -> std::result::Result<(), ()> {
        let result = (|| {
            if self.bytes > 0 && self.bytes + line.len() as u64 > self.file_bytes_max {
                self.next_file()?;
            }
            match self.file.as_mut() {
                Some(file) => file.write_all(line),
                None => Err(std::io::Error::other("no file open")),
            }
        })();
        match result {
            Ok(()) => {
                self.bytes += line.len() as u64;
                Ok(())
            }
            Err(e) => {
                if !self.failed {
                    tracing::warn!(dir = %self.dir.display(), error = %e, "journal: a write failed");
                    self.failed = true;
                }
                Err(())
            }
        }
    }

    fn flush(&mut self) {
        if let Some(file) = self.file.as_mut() {
            let _ = file.flush();
        }
    }
}

fn file_path(dir: &Path, (stem, ext): (&str, &str), index: u64) -> PathBuf {
    dir.join(format!("{stem}-{index:06}.{ext}"))
}

/// A stream's files in `dir`, oldest first, with their numbers.
pub fn journal_files(
    dir: &Path,
    (stem, ext): (&str, &str),
) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let number = name
            .strip_prefix(stem)
            .and_then(|n| n.strip_prefix('-'))
            .and_then(|n| n.strip_suffix(ext))
            .and_then(|n| n.strip_suffix('.'))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(i) = number {
            files.push((i, path));
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observation(key: u64) -> Observation {
        Observation {
            decision_key: key,
            kind: "click",
            impression: true,
            click: true,
            conversion_value: 0.0,
            ts_ns: key,
        }
    }

    #[test]
    fn files_rotate_at_their_size_keep_the_newest_and_number_on_after_a_restart() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = JournalConfig {
            file_bytes_max: 4096,
            files_max: 2,
            queue_max: 64,
            ..JournalConfig::in_dir(dir.path())
        };
        let journal = Journal::start(config.clone()).expect("started");
        for key in 0..300 {
            while !journal.record_observation(observation(key)) {
                std::thread::yield_now();
            }
        }
        drop(journal);
        let files = journal_files(dir.path(), OBSERVATIONS).expect("listed");
        assert_eq!(files.len(), 2, "{files:?}");
        let last = files[1].0;
        assert!(last > 2, "rotated: {files:?}");
        let mut keys = Vec::new();
        for (_, path) in &files {
            let text = std::fs::read_to_string(path).expect("read");
            assert!(text.len() <= 4096, "{} bytes", text.len());
            for line in text.lines() {
                let v: serde_json::Value = serde_json::from_str(line).expect("JSON");
                let key = u64::from_str_radix(v["decision_key"].as_str().unwrap(), 16).unwrap();
                keys.push(key);
            }
        }
        assert_eq!(
            keys.last(),
            Some(&299),
            "the newest lines are kept, in order"
        );
        assert!(keys.windows(2).all(|w| w[1] == w[0] + 1));
        // A restart begins after the highest file, overwriting nothing.
        let again = Journal::start(config).expect("restarted");
        drop(again);
        let files = journal_files(dir.path(), OBSERVATIONS).expect("listed");
        assert_eq!(files.last().map(|f| f.0), Some(last + 1));
    }

    #[test]
    fn bounds_out_of_range_are_refused_by_name() {
        let dir = tempfile::tempdir().expect("temp dir");
        for (config, field) in [
            (
                JournalConfig {
                    file_bytes_max: 10,
                    ..JournalConfig::in_dir(dir.path())
                },
                "file_bytes_max",
            ),
            (
                JournalConfig {
                    files_max: 0,
                    ..JournalConfig::in_dir(dir.path())
                },
                "files_max",
            ),
            (
                JournalConfig {
                    queue_max: 0,
                    ..JournalConfig::in_dir(dir.path())
                },
                "queue_max",
            ),
        ] {
            let error = Journal::start(config).expect_err("refused").to_string();
            assert!(error.contains(field), "{error}");
        }
    }
}
