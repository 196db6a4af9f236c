//! The load's options ([`LoadConfig`]), their defaults and bounds, and
//! their checks, each error naming the command-line option at fault.
//!
//! A plain struct of plain values: it is built by the `cx-bench` binary
//! from flags, or by code (the sweep, `cx-bench all`), and checked
//! once by [`LoadConfig::validate`] before anything connects.

use crate::error::{Error, Result};
use cx_wire::protocol::limits;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Most connections (`--connections`): each has a receiver thread.
pub const CONNECTIONS_MAX: usize = 1024;

/// Most requests in flight per connection (`--depth`): the protocol's
/// in-flight limit.
pub const DEPTH_MAX: usize = limits::IN_FLIGHT_MAX;

/// Highest offered rate (`--rate`), requests per second over all
/// connections.
pub const RATE_PER_S_MAX: f64 = 10_000_000.0;

/// Longest measured window (`--duration-s`), seconds.
pub const DURATION_S_MAX: f64 = 3600.0;

/// Longest warm-up (`--warmup-s`), seconds.
pub const WARMUP_S_MAX: f64 = 600.0;

/// Longest drain after the window (`--drain-s`), seconds.
pub const DRAIN_S_MAX: f64 = 600.0;

/// Most distinct requests cycled through (`--pool`): about 130 MB of
/// synthetic contexts.
pub const POOL_MAX: usize = 1 << 18;

/// Largest OpenRTB file read (`--mix FILE`), bytes.
pub const MIX_FILE_BYTES_MAX: u64 = 1 << 30;

/// Most requests in flight per HTTP connection: the HTTP bidder reads no
/// further request on a connection until its oldest is answered
/// (`IN_FLIGHT_MAX` in `server/src/http/limits.rs`), so a deeper pipeline
/// would only wait in the socket buffers, where a full one blocks the
/// sender's writes and with them every connection's schedule. `--depth` is
/// capped to it with `--http`, as the binary protocol's `hello_ack` caps it.
pub const HTTP_DEPTH_MAX: usize = 64;

/// How requests are carried to the server (`--http`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Wire {
    /// The binary protocol (`docs/PROTOCOL.md`) to `cx serve --listen`:
    /// a hello, then `score_context`, `score_openrtb` or `pong` frames,
    /// answered by request id.
    #[default]
    Binary,
    /// HTTP/1.1 to the OpenRTB bidder (`cx serve --http-listen`): each
    /// request a `POST /openrtb2/bid` with the BidRequest as its JSON body,
    /// on keep-alive connections, pipelined; answers come back in request
    /// order. `200` (a bid) and `204` (a no-bid) are answers, any other
    /// status an error. Needs an OpenRTB mix (`--mix FILE`).
    Http,
}

impl fmt::Display for Wire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Binary => "binary",
            Self::Http => "http",
        })
    }
}

/// Where the requests come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mix {
    /// The synthetic generator (`cx_datasets::synth`), sent as
    /// `score_context`.
    Synth,
    /// `pong` frames, for the bare event loop of `cx serve --echo` (the
    /// benchmark baseline): the echo server sends every byte back, so each
    /// frame returns as an answer (a `pong`, counted as ok). No hello is
    /// exchanged (the echo server would only echo it). A file named `echo`
    /// is given as `./echo`.
    Echo,
    /// OpenRTB BidRequests replayed from a JSONL file (plain documents or
    /// `{"request": ...}` wrappers, or one pretty-printed document), sent
    /// as `score_openrtb`.
    OpenRtb(PathBuf),
}

impl FromStr for Mix {
    type Err = Error;

    /// `synth`, `echo`, or the path of a JSONL file (never empty).
    fn from_str(text: &str) -> Result<Self> {
        match text {
            "synth" => Ok(Self::Synth),
            "echo" => Ok(Self::Echo),
            "" => Err(Error::option(
                "--mix",
                "\"\"",
                "must be `synth`, `echo` or a JSONL file",
            )),
            path => Ok(Self::OpenRtb(PathBuf::from(path))),
        }
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Synth => f.write_str("synth"),
            Self::Echo => f.write_str("echo"),
            Self::OpenRtb(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Everything one load run is configured with. Field names follow the
/// `cx-bench load` flags (`rate_per_s` is `--rate`, `duration_s` is
/// `--duration-s`, ...).
#[derive(Clone, Debug, PartialEq)]
pub struct LoadConfig {
    /// The server's address, `HOST:PORT` (`--addr`): its binary protocol
    /// listener, or with [`Wire::Http`] its HTTP bidder.
    pub addr: String,
    /// How requests are carried (`--http`).
    pub wire: Wire,
    /// Offered rate over all connections, requests per second (`--rate`).
    pub rate_per_s: f64,
    /// The measured window, seconds (`--duration-s`).
    pub duration_s: f64,
    /// Load offered before the window and not counted, seconds
    /// (`--warmup-s`).
    pub warmup_s: f64,
    /// After the window, how long the backlog may still be sent and
    /// answers awaited, seconds (`--drain-s`).
    pub drain_s: f64,
    /// Connections, each with its share of the schedule (`--connections`).
    pub connections: usize,
    /// Most requests in flight per connection (`--depth`); also capped by
    /// the server's `hello_ack`, or over HTTP by [`HTTP_DEPTH_MAX`].
    pub depth: usize,
    /// Where the requests come from (`--mix`).
    pub mix: Mix,
    /// The synthetic generator's seed (`--seed`).
    pub seed: u64,
    /// Distinct requests cycled through: synthetic rows generated, or the
    /// first requests of the file (`--pool`); unused by the echo mix.
    pub pool: usize,
    /// Ask for every decision in simulation mode: no budget, frequency cap
    /// or cache entry is spent (`--simulate`; binary protocol only: over
    /// HTTP a request asks for it with `"test": 1`).
    pub simulate: bool,
    /// Binary protocol with an OpenRTB mix: ask for every answer as a
    /// `bid_response` frame, the OpenRTB BidResponse as JSON (with the
    /// decisions behind it), which the HTTP bidder builds for every answer
    /// too (`--bid-response`). The binary wire then does the bidder's work
    /// but for HTTP itself, which tells HTTP's own cost from the
    /// BidResponse's.
    pub bid_response: bool,
    /// Print a progress line on stderr once a second.
    pub progress: bool,
}

impl Default for LoadConfig {
    fn default() -> Self {
        Self {
            addr: "127.0.0.1:7070".into(),
            wire: Wire::Binary,
            rate_per_s: 10_000.0,
            duration_s: 10.0,
            warmup_s: 1.0,
            drain_s: 2.0,
            connections: 4,
            // See the full plan of `all` for why the protocol's limit.
            depth: DEPTH_MAX,
            mix: Mix::Synth,
            seed: 1,
            pool: 65_536,
            simulate: false,
            bid_response: false,
            progress: false,
        }
    }
}

impl LoadConfig {
    /// Checks every option against its bounds; the error names the first
    /// option at fault.
    pub fn validate(&self) -> Result<()> {
        if self.addr.trim().is_empty() {
            return Err(Error::option("--addr", "\"\"", "must be HOST:PORT"));
        }
        check_rate("--rate", self.rate_per_s)?;
        check_seconds("--duration-s", self.duration_s, DURATION_S_MAX, false)?;
        check_seconds("--warmup-s", self.warmup_s, WARMUP_S_MAX, true)?;
        check_seconds("--drain-s", self.drain_s, DRAIN_S_MAX, true)?;
        check_count("--connections", self.connections, CONNECTIONS_MAX)?;
        check_count("--depth", self.depth, DEPTH_MAX)?;
        check_count("--pool", self.pool, POOL_MAX)?;
        if self.bid_response && (self.wire == Wire::Http || !matches!(self.mix, Mix::OpenRtb(_))) {
            return Err(Error::option(
                "--bid-response",
                "with --http or without --mix FILE",
                "asks the binary protocol's score_openrtb for a BidResponse: give an OpenRTB \
                 JSONL file, without --http (whose answers are BidResponses already)",
            ));
        }
        if self.wire == Wire::Http {
            if !matches!(self.mix, Mix::OpenRtb(_)) {
                return Err(Error::option(
                    "--mix",
                    &self.mix,
                    "--http sends OpenRTB bid requests: give a JSONL file of them",
                ));
            }
            if self.simulate {
                return Err(Error::option(
                    "--simulate",
                    "with --http",
                    "the HTTP bidder has no simulation flag; \
                     put \"test\": 1 in the requests instead",
                ));
            }
        }
        Ok(())
    }

    /// The warm-up, ns.
    pub fn warmup_ns(&self) -> u64 {
        seconds_to_ns(self.warmup_s)
    }

    /// The measured window, ns.
    pub fn window_ns(&self) -> u64 {
        seconds_to_ns(self.duration_s)
    }

    /// The drain, ns.
    pub fn drain_ns(&self) -> u64 {
        seconds_to_ns(self.drain_s)
    }
}

/// `seconds` (finite, non-negative, bounded by the checks) in ns.
pub(crate) fn seconds_to_ns(seconds: f64) -> u64 {
    (seconds.max(0.0) * 1e9).round() as u64
}

/// A rate: finite, above 0, at most [`RATE_PER_S_MAX`].
pub fn check_rate(option: &'static str, rate_per_s: f64) -> Result<()> {
    if !rate_per_s.is_finite() || rate_per_s <= 0.0 {
        return Err(Error::option(
            option,
            rate_per_s,
            "must be a number of requests per second above 0",
        ));
    }
    if rate_per_s > RATE_PER_S_MAX {
        return Err(Error::option(
            option,
            rate_per_s,
            format!("must be at most {RATE_PER_S_MAX} requests per second"),
        ));
    }
    Ok(())
}

/// A duration: finite, at most `max`, above 0 (or at least 0 when
/// `zero_ok`).
pub(crate) fn check_seconds(
    option: &'static str,
    seconds: f64,
    max: f64,
    zero_ok: bool,
) -> Result<()> {
    let low_ok = if zero_ok {
        seconds >= 0.0
    } else {
        seconds > 0.0
    };
    if !seconds.is_finite() || !low_ok || seconds > max {
        let low = if zero_ok { "from 0" } else { "above 0" };
        return Err(Error::option(
            option,
            seconds,
            format!("must be a number of seconds {low} and at most {max}"),
        ));
    }
    Ok(())
}

/// A count from 1 to `max`.
pub fn check_count(option: &'static str, value: usize, max: usize) -> Result<()> {
    if value == 0 || value > max {
        return Err(Error::option(
            option,
            value,
            format!("must be from 1 to {max}"),
        ));
    }
    Ok(())
}
