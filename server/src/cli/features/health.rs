//! `cx features health --addr HOST:PORT`: fetches `GET
//! /admin/features/health` from a live server's admin port (plain
//! HTTP/1.1, one request, `Connection: close`, an answer of at most
//! [`ANSWER_BYTES_MAX`]) and prints the JSON document.

use super::super::Streams;
use crate::error::{Error, Result};
use clap::Args;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Largest answer read, bytes.
pub const ANSWER_BYTES_MAX: u64 = 4 << 20;

/// The path asked for.
const PATH: &str = crate::metrics::admin::FEATURES_HEALTH_PATH;

/// Arguments of `cx features health`.
#[derive(Debug, Args)]
pub struct HealthArgs {
    /// The server's admin address (`admin_listen`, where /metrics is).
    #[arg(long, value_name = "HOST:PORT")]
    pub addr: String,
    /// Print the document indented over several lines.
    #[arg(long)]
    pub pretty: bool,
    /// Limit on connecting and on the answer, milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout_ms: u64,
}

/// Runs the command: one JSON document on stdout (per feature: fresh,
/// stale and missing reads, writes, age p50/p99 in seconds, stale share
/// and warning; the features with warnings; the store's size).
pub fn health(args: &HealthArgs, streams: &mut Streams<'_>) -> Result<()> {
    let fail =
        |what: String| Error::Config(format!("cx features health: server {}: {what}", args.addr));
    let (status, body) = fetch(&args.addr, PATH, args.timeout_ms, "cx features health")?;
    match status {
        200 => {}
        404 => {
            return Err(fail(format!(
                "{PATH} is 404: the server runs without a feature store (features.enabled = \
                 false), or this is not its admin port"
            )))
        }
        other => return Err(fail(format!("{PATH} answered {other}"))),
    }
    print_json(&body, args.pretty, streams).map_err(|e| match e {
        Error::Config(what) => fail(what),
        other => other,
    })
}

/// Prints the JSON document `body` on one line, or indented with `pretty`.
/// An answer that is not JSON is an `Error::Config` saying so.
pub fn print_json(body: &[u8], pretty: bool, streams: &mut Streams<'_>) -> Result<()> {
    let doc: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| Error::Config(format!("the answer is not JSON: {e}")))?;
    let text = if pretty {
        serde_json::to_string_pretty(&doc)
    } else {
        serde_json::to_string(&doc)
    }
    .map_err(|e| Error::Output(e.into()))?;
    writeln!(streams.stdout, "{text}").map_err(Error::Output)
}

/// `GET path` from the admin endpoint at `addr` (plain HTTP/1.1, one
/// request, `Connection: close`, an answer of at most
/// [`ANSWER_BYTES_MAX`]): its status and body. Errors name `command` and
/// the server.
pub fn fetch(
    addr_text: &str,
    path: &str,
    timeout_ms: u64,
    command: &str,
) -> Result<(u16, Vec<u8>)> {
    let fail = |what: String| Error::Config(format!("{command}: server {addr_text}: {what}"));
    let timeout = Duration::from_millis(timeout_ms);
    let addr = addr_text
        .to_socket_addrs()
        .map_err(|e| fail(format!("not an address: {e}")))?
        .next()
        .ok_or_else(|| fail("resolves to no address".into()))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| fail(format!("cannot connect: {e}")))?;
    let io = |e: std::io::Error| fail(e.to_string());
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr_text}\r\nConnection: close\r\nAccept: application/json\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).map_err(io)?;
    let mut answer = Vec::new();
    stream
        .take(ANSWER_BYTES_MAX + 1)
        .read_to_end(&mut answer)
        .map_err(io)?;
    if answer.len() as u64 > ANSWER_BYTES_MAX {
        return Err(fail(format!("the answer is over {ANSWER_BYTES_MAX} bytes")));
    }
    let (status, body) = split_answer(&answer).ok_or_else(|| fail("not an HTTP answer".into()))?;
    Ok((status, body.to_vec()))
}

/// The status code and body of an HTTP/1.1 answer without chunked
/// encoding (the admin endpoint sends a `Content-Length`).
fn split_answer(answer: &[u8]) -> Option<(u16, &[u8])> {
    let head_end = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(answer.get(..head_end)?).ok()?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, answer.get(head_end + 4..)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_split_into_status_and_body() {
        let (status, body) =
            split_answer(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}").unwrap();
        assert_eq!((status, body), (200, &b"{}"[..]));
        assert_eq!(
            split_answer(b"HTTP/1.1 404 Not Found\r\n\r\n").unwrap().0,
            404
        );
        assert!(split_answer(b"garbage").is_none());
    }
}
