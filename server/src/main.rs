//! `cx`: the CampaignExpress command line. Parses arguments, runs the
//! command from the `cx_server` library, and prints any error to stderr
//! with a non-zero exit status.

use clap::Parser;
use cx_server::cli::{execute, Cli, Streams};
use std::io::Write;
use std::process::ExitCode;

/// mimalloc: the server decodes each request into owned strings, which
/// mimalloc's per-thread free lists serve cheaper than glibc's malloc: one
/// worker's capacity was 1.14x as high in an A/B run (docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let message = cx_server::error::render_chain(err.as_ref());
            // If stderr is gone too there is nobody left to tell.
            let _ = writeln!(std::io::stderr().lock(), "cx: error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    // Stderr stays unlocked: the server's threads log to it (tracing), and
    // a lock held here for the whole command would block them.
    let mut streams = Streams {
        stdin: &mut stdin.lock(),
        stdout: &mut stdout.lock(),
        stderr: &mut std::io::stderr(),
    };
    execute(cli, &mut streams)?;
    Ok(())
}
