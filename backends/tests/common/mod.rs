//! Helpers shared by the backend integration tests.
#![allow(dead_code)]

use cx_backends::{Backend, ConcreteKind, Trace};
use cx_model::{Readout, SnnModel};
use std::path::PathBuf;
use std::sync::Arc;

/// A committed fixture file.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A file under `../shared/data`, or `None` (with a message) when it is absent.
pub fn shared(rel: &str) -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data")
        .join(rel);
    if path.exists() {
        Some(path)
    } else {
        eprintln!(
            "skipping: {} is absent (../shared not laid out here)",
            path.display()
        );
        None
    }
}

/// Runs `x` through one backend kind with a full trace.
pub fn run_traced(
    kind: ConcreteKind,
    model: &Arc<SnnModel>,
    x: &[f32],
    batch: usize,
) -> (Readout, Trace) {
    let mut backend = Backend::init_kind(kind, model.clone(), batch.max(1)).expect("init");
    let mut out = Readout::with_capacity(batch.max(1), model.outputs());
    let mut trace = Trace::default();
    backend
        .infer_traced(x, batch, &mut out, &mut trace)
        .expect("infer");
    (out, trace)
}
