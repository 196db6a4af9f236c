//! `cx monitor --addr HOST:PORT`: fetches `GET /admin/monitor` from a live
//! server's admin port (through `cx features health`'s fetch) and prints
//! every worker's model monitoring report as one JSON document
//! (`docs/MONITORING.md`).

use super::features::health::{fetch, print_json};
use super::Streams;
use crate::error::{Error, Result};
use clap::Args;

/// The path asked for.
const PATH: &str = crate::metrics::admin::MONITOR_PATH;

/// Arguments of `cx monitor`.
#[derive(Debug, Args)]
pub struct MonitorArgs {
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

/// Runs the command: `{"workers": [report, ...]}` on stdout, each report
/// with its status (`ok`, `alarm`, `warming up`, `no reference`,
/// `disabled`), PSI per feature, calibration figures and the alarms up.
pub fn monitor(args: &MonitorArgs, streams: &mut Streams<'_>) -> Result<()> {
    let (status, body) = fetch(&args.addr, PATH, args.timeout_ms, "cx monitor")?;
    if status != 200 {
        return Err(Error::Config(format!(
            "cx monitor: server {}: {PATH} answered {status} (is this its admin port?)",
            args.addr
        )));
    }
    print_json(&body, args.pretty, streams).map_err(|e| match e {
        Error::Config(what) => Error::Config(format!("cx monitor: server {}: {what}", args.addr)),
        other => other,
    })
}
