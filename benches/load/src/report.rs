//! The result of one run ([`LoadReport`]) as it is written to JSON and
//! printed for people.
//!
//! Flat, plain values (counts, rates, percentiles in ns), so that a report
//! round-trips through JSON exactly and earlier runs can be read back for
//! comparison; the histograms themselves are not kept.

use crate::config::Wire;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Latency percentiles of one histogram, ns (all 0 when it is empty).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Values recorded.
    pub count: u64,
    /// The smallest.
    pub min_ns: u64,
    /// The mean, rounded to the ns.
    pub mean_ns: u64,
    /// The median.
    pub p50_ns: u64,
    /// The 90th percentile.
    pub p90_ns: u64,
    /// The 99th percentile.
    pub p99_ns: u64,
    /// The 99.9th percentile.
    pub p999_ns: u64,
    /// The largest.
    pub max_ns: u64,
}

impl Percentiles {
    /// The percentiles of `histogram`.
    pub fn of(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self::default();
        }
        Self {
            count: histogram.len(),
            min_ns: histogram.min(),
            mean_ns: histogram.mean().round() as u64,
            p50_ns: histogram.value_at_quantile(0.5),
            p90_ns: histogram.value_at_quantile(0.9),
            p99_ns: histogram.value_at_quantile(0.99),
            p999_ns: histogram.value_at_quantile(0.999),
            max_ns: histogram.max(),
        }
    }

    /// The percentiles the sweep plots, in order, with their labels:
    /// p50, p90, p99, p99.9, ns.
    pub fn plotted(&self) -> [(&'static str, u64); 4] {
        [
            ("p50", self.p50_ns),
            ("p90", self.p90_ns),
            ("p99", self.p99_ns),
            ("p99.9", self.p999_ns),
        ]
    }

    /// `p50 / p90 / p99 / p99.9 / max` in µs, for people.
    pub fn summary_us(&self) -> String {
        let us = |ns: u64| ns as f64 / 1000.0;
        format!(
            "p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1} µs",
            us(self.p50_ns),
            us(self.p90_ns),
            us(self.p99_ns),
            us(self.p999_ns),
            us(self.max_ns)
        )
    }
}

/// What one run offered and measured. Counts are of the requests due in
/// the measured window; `sent == ok + overloaded + Σ errors_by_code +
/// unanswered` and `scheduled == sent + unsent`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoadReport {
    /// The server's address.
    pub addr: String,
    /// How requests were carried: `binary` or `http` (reports written
    /// before HTTP read as `binary`).
    #[serde(default)]
    pub wire: Wire,
    /// The request mix: `synth`, `echo` or the replayed file.
    pub mix: String,
    /// Distinct requests cycled through.
    pub pool: usize,
    /// Connections.
    pub connections: usize,
    /// Most requests in flight per connection (after the server's cap).
    pub depth: usize,
    /// Whether decisions were asked for in simulation mode.
    pub simulate: bool,
    /// Whether binary answers were asked for as `bid_response` frames
    /// (`--bid-response`).
    #[serde(default)]
    pub bid_response: bool,
    /// The rate offered, requests per second.
    pub offered_rate_per_s: f64,
    /// Answers to measured requests per second, over the window or until
    /// the last of them arrived, whichever is longer (rounded to 0.001, so
    /// that it reads back from JSON exactly).
    pub achieved_rate_per_s: f64,
    /// The measured window, seconds.
    pub duration_s: f64,
    /// The warm-up before it, seconds (not counted).
    pub warmup_s: f64,
    /// Wall time from the first send to the end of the drain, seconds.
    pub elapsed_s: f64,
    /// Requests due in the window.
    pub scheduled: u64,
    /// Of those, requests sent.
    pub sent: u64,
    /// Answered with a decision (with the echo mix: with the echoed
    /// `pong`; over HTTP: a `200` bid or a `204` no-bid).
    pub ok: u64,
    /// Of `ok`, the HTTP no-bids (`204`); 0 over the binary protocol, whose
    /// decisions are not told apart here.
    #[serde(default)]
    pub no_bids: u64,
    /// Answered with `overloaded`.
    pub overloaded: u64,
    /// Answered with any other error, by code label (`timeout`,
    /// `shutting_down`, ..., over HTTP the status: `http_400`,
    /// `http_503`, ..., and `invalid_response` for an answer the client
    /// could not read).
    pub errors_by_code: BTreeMap<String, u64>,
    /// Sent but not answered by the end of the drain (or before the
    /// connection broke).
    pub unanswered: u64,
    /// Due but never sent: the connection had `depth` requests in flight
    /// until the end of the drain, or it broke.
    pub unsent: u64,
    /// Answers that named no request of this run (not in other counts).
    pub unattributed: u64,
    /// Latency of the decisions (accepted requests), intended send time
    /// to arrival.
    pub latency_ok: Percentiles,
    /// Latency of every answer, errors included.
    pub latency_all: Percentiles,
    /// How late the generator sent each measured request after its
    /// intended time (a large lag: the generator, or the depth, held it).
    pub send_lag: Percentiles,
    /// Why connections broke, if any did (at most one line each).
    pub connection_errors: Vec<String>,
}

impl LoadReport {
    /// Errors of every kind, `overloaded` included.
    pub fn errors(&self) -> u64 {
        self.overloaded + self.errors_by_code.values().sum::<u64>()
    }

    /// Whether the generator kept its schedule well enough for this run to
    /// say something about the server: its send lag at p99 at most
    /// `limit_us` (the latency SLO the run is judged by). A run that fails
    /// this measured the generator, not the server: its latencies count
    /// from when requests were due, so the generator's own stalls are in
    /// them.
    pub fn generator_kept_up(&self, limit_us: f64) -> bool {
        self.send_lag.p99_ns as f64 <= limit_us * 1000.0
    }

    /// Requests that did not get a decision: errors, unanswered, unsent.
    pub fn failed(&self) -> u64 {
        self.errors() + self.unanswered + self.unsent
    }

    /// A few lines for people: rates, counts, latencies.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "offered {:.0}/s  achieved {:.0}/s  over {:.1} s  ({} connections, depth {}, mix {}, {})",
            self.offered_rate_per_s,
            self.achieved_rate_per_s,
            self.duration_s,
            self.connections,
            self.depth,
            self.mix,
            if self.bid_response {
                "binary, bid_response answers"
            } else if self.wire == Wire::Http {
                "http"
            } else {
                "binary"
            }
        );
        let ok = match self.wire {
            Wire::Binary => self.ok.to_string(),
            Wire::Http => format!(
                "{} (bids {}, no-bids {})",
                self.ok,
                self.ok - self.no_bids,
                self.no_bids
            ),
        };
        let _ = writeln!(
            out,
            "scheduled {}  sent {}  ok {ok}  overloaded {}  other errors {}  unanswered {}  unsent {}",
            self.scheduled,
            self.sent,
            self.overloaded,
            self.errors() - self.overloaded,
            self.unanswered,
            self.unsent
        );
        for (code, n) in &self.errors_by_code {
            let _ = writeln!(out, "  error {code}: {n}");
        }
        let _ = writeln!(out, "latency ok   {}", self.latency_ok.summary_us());
        let _ = writeln!(out, "latency all  {}", self.latency_all.summary_us());
        let _ = writeln!(out, "send lag     {}", self.send_lag.summary_us());
        for e in &self.connection_errors {
            let _ = writeln!(out, "connection error: {e}");
        }
        out
    }
}

/// Writes `value` as pretty JSON to `path` (named by `option` in errors),
/// creating the file's folder if needed.
pub fn write_json<T: Serialize>(
    path: &std::path::Path,
    option: &'static str,
    value: &T,
) -> crate::error::Result<()> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| crate::error::Error::File {
        option,
        path: path.display().to_string(),
        op: "write it",
        source: std::io::Error::other(e),
    })?;
    text.push('\n');
    write_text(path, option, &text)
}

/// Writes `text` to `path` (named by `option` in errors), creating the
/// file's folder if needed.
pub fn write_text(
    path: &std::path::Path,
    option: &'static str,
    text: &str,
) -> crate::error::Result<()> {
    let file_error = |op, source| crate::error::Error::File {
        option,
        path: path.display().to_string(),
        op,
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| file_error("create its folder", e))?;
    }
    std::fs::write(path, text).map_err(|e| file_error("write it", e))
}

/// `value` rounded to 3 decimals: short in JSON, and read back exactly.
pub(crate) fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}
