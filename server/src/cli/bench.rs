//! `cx bench ...`: runs the benchmark tool `cx-bench` (built from the
//! `cx-benches` crate, which may depend on every other crate while this one
//! may not depend on it) with the same arguments, the way cargo runs its
//! external subcommands. It is looked for next to the `cx` executable, then
//! on `PATH`.

use crate::error::{Error, Result};
use clap::Args;
use std::ffi::OsString;
use std::path::PathBuf;

/// The benchmark tool's executable name.
pub const BENCH_EXE: &str = "cx-bench";

/// Arguments of `cx bench`: passed to `cx-bench` as they are.
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct BenchArgs {
    /// `kernel`, `engine`, `load`, `stall` or `all`, and their options (`cx bench
    /// --help` lists them).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    pub args: Vec<OsString>,
}

/// Where `cx-bench` is: next to the running executable, else `PATH`.
pub fn find_bench_exe() -> Option<PathBuf> {
    let name = format!("{BENCH_EXE}{}", std::env::consts::EXE_SUFFIX);
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(&name)))
        .filter(|p| p.is_file());
    beside.or_else(|| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(&name))
                .find(|p| p.is_file())
        })
    })
}

/// Runs `cx-bench` with `args.args`, waiting for it; its exit status
/// becomes an error when it is not zero.
pub fn bench(args: &BenchArgs) -> Result<()> {
    let exe = find_bench_exe().ok_or_else(|| {
        Error::Config(format!(
            "`{BENCH_EXE}` was not found next to `cx` or on PATH; build it with \
             `cargo build --release -p cx-benches` (or run `cargo run --release -p cx-benches --bin {BENCH_EXE} -- ...`)"
        ))
    })?;
    let status = std::process::Command::new(&exe)
        .args(&args.args)
        .status()
        .map_err(|source| Error::File {
            path: exe.display().to_string(),
            source,
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "{} exited with {status}",
            exe.display()
        )))
    }
}
