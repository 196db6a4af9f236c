//! `[feedback]`: the decision log and the join's windows
//! (`docs/FEEDBACK.md`).

use crate::error::{Error, Result};
use cx_domain::feedback::FeedbackWindows;
use cx_domain::store::{LogConfig, LOG_ENTRIES_MAX};
use serde::{Deserialize, Serialize};

const NS_PER_S: u64 = 1_000_000_000;
/// Longest window of any event kind, s (a year).
pub const WINDOW_S_MAX: u64 = 366 * 86_400;

/// `[feedback]`: how many decisions are logged for feedback to join, and
/// how long after its decision each kind of event may come.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeedbackSection {
    /// Decisions the log holds (over a server's workers), about 100 bytes
    /// each; a full set evicts its oldest. Default 65536.
    pub decisions_max: usize,
    /// Event ids remembered for de-duplication. Default 65536.
    pub event_ids_max: usize,
    /// Events held for a decision not logged yet. Default 4096.
    pub held_events_max: usize,
    /// A win or loss notice must come within this, s; a bid unanswered by
    /// then is settled as lost. Default 300.
    pub win_window_s: u64,
    /// An impression (billing notice) within this, s. Default 900.
    pub impression_window_s: u64,
    /// A click within this, s. Default 3600.
    pub click_window_s: u64,
    /// A conversion within this, s. Default 604800 (7 days).
    pub conversion_window_s: u64,
    /// An event whose decision is not logged yet is held this long, ms.
    /// Default 5000.
    pub backward_window_ms: u64,
}

impl Default for FeedbackSection {
    fn default() -> Self {
        let log = LogConfig::default();
        let w = log.windows;
        Self {
            decisions_max: log.capacity,
            event_ids_max: log.event_ids,
            held_events_max: log.held_max,
            win_window_s: w.win_ns / NS_PER_S,
            impression_window_s: w.impression_ns / NS_PER_S,
            click_window_s: w.click_ns / NS_PER_S,
            conversion_window_s: w.conversion_ns / NS_PER_S,
            backward_window_ms: w.backward_ns / 1_000_000,
        }
    }
}

impl FeedbackSection {
    /// The decision log's config; fails naming the key out of range.
    pub fn log_config(&self) -> Result<LogConfig> {
        for (key, n) in [
            ("decisions_max", self.decisions_max),
            ("event_ids_max", self.event_ids_max),
        ] {
            if !(1..=LOG_ENTRIES_MAX).contains(&n) {
                return Err(Error::Config(format!(
                    "`feedback.{key}` is {n}, not in 1..={LOG_ENTRIES_MAX}"
                )));
            }
        }
        if self.held_events_max > LOG_ENTRIES_MAX {
            return Err(Error::Config(format!(
                "`feedback.held_events_max` is {}, more than {LOG_ENTRIES_MAX}",
                self.held_events_max
            )));
        }
        let mut windows = [0u64; 4];
        for (out, (key, s)) in windows.iter_mut().zip([
            ("win_window_s", self.win_window_s),
            ("impression_window_s", self.impression_window_s),
            ("click_window_s", self.click_window_s),
            ("conversion_window_s", self.conversion_window_s),
        ]) {
            if !(1..=WINDOW_S_MAX).contains(&s) {
                return Err(Error::Config(format!(
                    "`feedback.{key}` is {s}, not in 1..={WINDOW_S_MAX}"
                )));
            }
            *out = s * NS_PER_S;
        }
        if self.backward_window_ms > WINDOW_S_MAX * 1000 {
            return Err(Error::Config(format!(
                "`feedback.backward_window_ms` is {}, more than {}",
                self.backward_window_ms,
                WINDOW_S_MAX * 1000
            )));
        }
        let [win_ns, impression_ns, click_ns, conversion_ns] = windows;
        Ok(LogConfig {
            capacity: self.decisions_max,
            event_ids: self.event_ids_max,
            held_max: self.held_events_max,
            windows: FeedbackWindows {
                win_ns,
                impression_ns,
                click_ns,
                conversion_ns,
                backward_ns: self.backward_window_ms * 1_000_000,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_the_logs_defaults() {
        assert_eq!(
            FeedbackSection::default().log_config().expect("valid"),
            LogConfig::default()
        );
    }

    #[test]
    fn out_of_range_keys_are_named() {
        let cases = [
            (
                FeedbackSection {
                    decisions_max: 0,
                    ..FeedbackSection::default()
                },
                "decisions_max",
            ),
            (
                FeedbackSection {
                    click_window_s: 0,
                    ..FeedbackSection::default()
                },
                "click_window_s",
            ),
            (
                FeedbackSection {
                    conversion_window_s: WINDOW_S_MAX + 1,
                    ..FeedbackSection::default()
                },
                "conversion_window_s",
            ),
        ];
        for (section, key) in cases {
            let err = section.log_config().expect_err(key).to_string();
            assert!(err.contains(key), "{err}");
        }
    }
}
