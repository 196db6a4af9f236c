//! The loopback floor beside the load part: sockperf's TCP round trip on
//! this machine at the half-load rate, its server and client pinned to the
//! cores the decision server and the generator use. No server measured
//! here answers faster than this machine's loopback, so a server's median
//! near the floor's is as good as the machine allows, and a floor that
//! moved between runs tells the machine from the code.
//!
//! Runs only where `sockperf` is installed (the Debian package
//! `sockperf`); without it the summary says so and nothing fails.

use serde::{Deserialize, Serialize};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Bytes per sockperf message, about a small request frame.
const MESSAGE_BYTES: u32 = 64;
/// sockperf answers every this many messages (and times those).
const REPLY_EVERY: u32 = 10;
/// How long the sockperf server gets to start listening.
const SERVER_START: Duration = Duration::from_millis(300);

/// What sockperf measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoopbackFloor {
    /// The client's command line.
    pub command: String,
    /// Messages offered per second.
    pub rate_per_s: f64,
    /// Round-trip p50, µs.
    pub p50_us: f64,
    /// Round-trip p99, µs.
    pub p99_us: f64,
    /// Round-trip p99.9, µs.
    pub p999_us: f64,
}

/// Where `program` is on the `PATH`, if it is.
fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// `sockperf args...`, pinned to `core` with `taskset` when both are there.
fn sockperf(core: Option<usize>, args: &[String]) -> Command {
    match core.filter(|_| on_path("taskset")) {
        Some(core) => {
            let mut command = Command::new("taskset");
            command
                .args(["-c", &core.to_string(), "sockperf"])
                .args(args);
            command
        }
        None => {
            let mut command = Command::new("sockperf");
            command.args(args);
            command
        }
    }
}

/// A free loopback port (taken, then released for sockperf).
fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| format!("no loopback port for sockperf: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("no loopback port for sockperf: {e}"))
}

/// `percentile P = V` from sockperf's output, µs.
fn percentile(output: &str, p: &str) -> Option<f64> {
    output.lines().find_map(|line| {
        let rest = line.split("percentile ").nth(1)?;
        let (label, value) = rest.split_once('=')?;
        (label.trim() == p).then(|| value.trim().parse().ok())?
    })
}

/// Measures the floor at `rate_per_s` for `duration_s` (whole seconds, at
/// least 1), the server on `server_core` and the client on
/// `client_core`; `Ok(None)` when sockperf is not installed.
pub(crate) fn measure_floor(
    rate_per_s: f64,
    duration_s: f64,
    server_core: Option<usize>,
    client_core: Option<usize>,
) -> Result<Option<LoopbackFloor>, String> {
    if !on_path("sockperf") {
        return Ok(None);
    }
    let port = free_port()?.to_string();
    let server_args: Vec<String> = ["server", "--tcp", "-i", "127.0.0.1", "-p", &port]
        .map(String::from)
        .into();
    let mut server = sockperf(server_core, &server_args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("sockperf server did not start: {e}"))?;
    std::thread::sleep(SERVER_START);
    let seconds = (duration_s.round() as u64).max(1).to_string();
    let rate = format!("{:.0}", rate_per_s.max(1.0));
    let client_args: Vec<String> = [
        "under-load",
        "--tcp",
        "-i",
        "127.0.0.1",
        "-p",
        &port,
        "--mps",
        &rate,
        "-m",
        &MESSAGE_BYTES.to_string(),
        "--reply-every",
        &REPLY_EVERY.to_string(),
        "-t",
        &seconds,
    ]
    .map(String::from)
    .into();
    let ran = sockperf(client_core, &client_args).output();
    let _ = server.kill();
    let _ = server.wait();
    let ran = ran.map_err(|e| format!("sockperf under-load did not run: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&ran.stdout),
        String::from_utf8_lossy(&ran.stderr)
    );
    let read = |p| {
        percentile(&text, p).ok_or_else(|| {
            let tail: String = text.lines().rev().take(3).collect::<Vec<_>>().join(" / ");
            format!(
                "sockperf printed no percentile {p} (exit {}): {tail}",
                ran.status
            )
        })
    };
    Ok(Some(LoopbackFloor {
        command: format!("sockperf {}", client_args.join(" ")),
        rate_per_s: rate_per_s.max(1.0).round(),
        p50_us: read("50.000")?,
        p99_us: read("99.000")?,
        p999_us: read("99.900")?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_read_from_sockperf_lines() {
        let out = "sockperf: ---> percentile 99.900 =   2411.010\n\
                   sockperf: ---> percentile 99.000 = 1462.576\n\
                   sockperf: ---> percentile 50.000 =   18.191\n";
        assert_eq!(percentile(out, "50.000"), Some(18.191));
        assert_eq!(percentile(out, "99.000"), Some(1462.576));
        assert_eq!(percentile(out, "99.900"), Some(2411.01));
        assert_eq!(percentile(out, "25.000"), None);
        assert_eq!(percentile("percentile 50.000 = x", "50.000"), None);
    }
}
