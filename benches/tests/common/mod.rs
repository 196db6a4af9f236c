//! Helpers the `cx-bench` integration tests share: scratch folders and
//! running the built binary.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A folder of its own for one test's files, emptied first.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cx-bench-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

/// Runs the built `cx-bench` with `args`: (success, stdout, stderr).
pub fn cx_bench(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_cx-bench"))
        .args(args)
        .output()
        .expect("cx-bench runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A scratch path as a command-line argument.
pub fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 scratch path")
}
