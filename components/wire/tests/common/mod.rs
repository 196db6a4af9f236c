//! Paths shared by the wire crate's integration tests: the committed
//! fixtures, and the optional `../shared` data.
#![allow(dead_code)]

use std::path::PathBuf;

/// Path of a committed fixture.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures")).join(name)
}

/// A file under `../shared/data` (relative to the workspace root), or `None`
/// with a message saying the test is skipped.
pub fn shared(rel: &str) -> Option<PathBuf> {
    let path =
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data")).join(rel);
    if path.exists() {
        Some(path)
    } else {
        eprintln!(
            "skipping: {} is absent (../shared is not laid out here)",
            path.display()
        );
        None
    }
}
