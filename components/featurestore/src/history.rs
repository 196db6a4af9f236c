//! Point-in-time features for training: replays a click log through a
//! store, in time order, so that each row reads only what happened before
//! it, as Feast's historical retrieval does.
//!
//! For every row (a user key, a time, whether it was clicked), in order of
//! time:
//! 1. the user's features are read at the row's time, exactly as serving
//!    reads them (TTL, defaults, computed features);
//! 2. the caller gets that read for the row;
//! 3. the row is then applied as feedback: an impression, and a click if
//!    it was clicked, through the definitions' update rules
//!    ([`crate::UpdateRule`]), written at the row's time, as the engine's
//!    feedback hook writes them online.
//!
//! **Ties.** Rows with equal timestamps see none of each other: the whole
//! group is read before any of it is applied, so a row never sees its own
//! label, nor that of a row logged in the same second (the file order of
//! a tie carries no meaning). Within a group, rows are handed to the
//! caller in file order.
//!
//! [`Visibility::ThroughOwnRow`] applies each row *before* reading it: the
//! row's own click is in its features. That is label leakage, and exists
//! only to measure what leakage does (a test shows it inflates AUC); no
//! command uses it.
//!
//! Rows without a user (key 0) read the defaults and update nothing.
//! Memory: one store sized for the log's distinct users (at most
//! [`crate::ENTITIES_MAX`]; beyond that, least recently written users are
//! evicted as the store's policy says, and counted).

use crate::defs::{Definitions, FeatureId, FeedbackEvent, UpdateRule};
use crate::error::Result;
use crate::row::FeatureValues;
use crate::store::{FeaturePut, FeatureStore, StoreConfig, ENTITIES_MAX};
use std::collections::HashSet;
use std::sync::Arc;

const NS: u64 = 1_000_000_000;

/// What a row may see of the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Visibility {
    /// Only rows with an earlier timestamp: what serving could have known.
    StrictlyBefore,
    /// Also the row itself (its own click): leakage, for measuring it.
    ThroughOwnRow,
}

/// One row of the log, as the replay needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoggedRow {
    /// The user's key (0: no user).
    pub user: u64,
    /// Unix seconds.
    pub time_s: i64,
    /// Whether the row was clicked.
    pub clicked: bool,
}

/// What the replay did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Rows replayed.
    pub rows: u64,
    /// Rows without a user.
    pub no_user: u64,
    /// Distinct users.
    pub users: u64,
    /// Values written.
    pub written: u64,
    /// Puts the store refused (an f32 sum that is not finite).
    pub refused: u64,
    /// Rows whose time is before 1970 or too far ahead to be kept in
    /// nanoseconds: read and updated at time 0.
    pub times_clamped: u64,
}

/// Replays `rows` through a store of `definitions` (see the
/// [module docs](self)), calling `on_row(index, values)` once per row
/// with the features it reads. Fails only when the store cannot be built
/// for `definitions`.
pub fn replay<F>(
    definitions: Arc<Definitions>,
    rows: &[LoggedRow],
    visibility: Visibility,
    mut on_row: F,
) -> Result<ReplayReport>
where
    F: FnMut(usize, &FeatureValues),
{
    let users: HashSet<u64> = rows.iter().map(|r| r.user).filter(|&u| u != 0).collect();
    let mut report = ReplayReport {
        users: users.len() as u64,
        ..ReplayReport::default()
    };
    let config = StoreConfig {
        // A fifth more than needed keeps set overflows rare (StoreConfig).
        entities: (users.len() + users.len() / 5 + 64).min(ENTITIES_MAX),
        bytes_max: crate::STORE_BYTES_MAX,
        ..StoreConfig::default()
    };
    let mut replayer = Replayer::new(definitions, config)?;
    let order = time_order(rows);
    let mut start = 0;
    while start < order.len() {
        let time_s = rows[order[start]].time_s;
        let end = start
            + order[start..]
                .iter()
                .take_while(|&&i| rows[i].time_s == time_s)
                .count();
        let group = &order[start..end];
        for &i in group {
            let row = rows[i];
            if visibility == Visibility::ThroughOwnRow {
                replayer.apply(row, &mut report);
            }
            replayer.read(row, &mut report);
            on_row(i, &replayer.values);
        }
        if visibility == Visibility::StrictlyBefore {
            for &i in group {
                replayer.apply(rows[i], &mut report);
            }
        }
        start = end;
    }
    report.rows = rows.len() as u64;
    report.no_user = rows.iter().filter(|r| r.user == 0).count() as u64;
    Ok(report)
}

/// Row indices by time, ties in file order.
fn time_order(rows: &[LoggedRow]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|&i| rows[i].time_s);
    order
}

/// The store and the buffers of a replay.
struct Replayer {
    store: FeatureStore,
    values: FeatureValues,
    rules: Box<[(FeatureId, UpdateRule)]>,
    batch: Vec<FeaturePut>,
}

impl Replayer {
    fn new(definitions: Arc<Definitions>, config: StoreConfig) -> Result<Self> {
        let rules: Box<[_]> = definitions.update_rules().collect();
        Ok(Self {
            store: FeatureStore::new(definitions.clone(), config)?,
            values: FeatureValues::new(definitions),
            batch: Vec::with_capacity(rules.len()),
            rules,
        })
    }

    fn time_ns(row: LoggedRow, report: &mut ReplayReport) -> u64 {
        match u64::try_from(row.time_s)
            .ok()
            .and_then(|s| s.checked_mul(NS))
        {
            Some(ns) => ns,
            None => {
                report.times_clamped += 1;
                0
            }
        }
    }

    /// The row's user's features, before the row. The buffer was made
    /// for the store's own definitions, which the store does not refuse;
    /// were it to, the row reads the defaults.
    fn read(&mut self, row: LoggedRow, report: &mut ReplayReport) {
        let now_ns = Self::time_ns(row, report);
        if row.user == 0 || self.store.read(row.user, now_ns, &mut self.values).is_err() {
            self.values.set_defaults(now_ns);
        }
    }

    /// The row as feedback: an impression, and a click if clicked.
    fn apply(&mut self, row: LoggedRow, report: &mut ReplayReport) {
        if row.user == 0 {
            return;
        }
        let now_ns = Self::time_ns(row, report);
        // The rules read the values as they are before this row.
        if self.store.read(row.user, now_ns, &mut self.values).is_err() {
            report.refused += 1;
            return;
        }
        self.batch.clear();
        for &(feature, rule) in self.rules.iter() {
            let fires = match rule.on_event {
                FeedbackEvent::Impression => true,
                FeedbackEvent::Click => row.clicked,
                FeedbackEvent::Conversion => false,
            };
            let Some(current) = self.values.value(feature) else {
                continue;
            };
            if fires {
                self.batch.push(FeaturePut {
                    entity: row.user,
                    feature,
                    value: rule.next(current, 0.0, now_ns as i64 / NS as i64),
                    time_ns: now_ns,
                });
            }
        }
        if self.batch.is_empty() {
            return;
        }
        match self.store.put(&self.batch, now_ns) {
            Ok(outcome) => report.written += outcome.written,
            Err(_) => report.refused += 1,
        }
    }
}
