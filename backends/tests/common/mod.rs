//! Helpers shared by the backend integration tests: fixture paths, running
//! a kernel with a full trace, and [`per_tier!`], which instantiates a
//! check once per SIMD tier.
#![allow(dead_code)]

use cx_backends::{Backend, ScalarBackend, SimdBackend, SimdTier, Trace};
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

/// A kernel to run: the scalar reference, or the SIMD kernel on one tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// The scalar reference.
    Scalar,
    /// The SIMD kernel on this tier.
    Simd(SimdTier),
}

impl Kernel {
    /// The backend, set up for `model` and batches of `batch_max`.
    pub fn backend(self, model: &Arc<SnnModel>, batch_max: usize) -> Backend {
        match self {
            Kernel::Scalar => {
                Backend::Scalar(ScalarBackend::new(model.clone(), batch_max).expect("scalar"))
            }
            Kernel::Simd(tier) => Backend::Simd(
                SimdBackend::with_tier(model.clone(), batch_max, tier).expect("supported tier"),
            ),
        }
    }
}

/// Runs `x` through `kernel` with a full trace.
pub fn run_traced(
    kernel: Kernel,
    model: &Arc<SnnModel>,
    x: &[f32],
    batch: usize,
) -> (Readout, Trace) {
    let mut backend = kernel.backend(model, batch.max(1));
    let mut out = Readout::with_capacity(batch.max(1), model.outputs());
    let mut trace = Trace::default();
    backend
        .infer_traced(x, batch, &mut out, &mut trace)
        .expect("infer");
    (out, trace)
}

/// Runs `check(tier)`, or says why not when this CPU lacks the tier (the
/// test then passes: there is nothing here to run it on).
pub fn on_tier(tier: SimdTier, check: impl FnOnce(SimdTier)) {
    if tier.is_supported() {
        check(tier);
    } else {
        println!(
            "skipping the {tier} tier: this CPU lacks {}",
            tier.features()
        );
    }
}

/// `per_tier!(name => check, ...)` defines the tests `avx512::name`,
/// `avx2::name` and `portable::name`, each calling `check(tier)` through
/// [`on_tier`], so that every tier this CPU has is tested by name and every
/// tier it lacks is reported as skipped.
#[allow(unused_macros)]
macro_rules! per_tier {
    ($($name:ident => $check:ident),* $(,)?) => {
        mod avx512 {
            $(#[test]
            fn $name() {
                crate::common::on_tier(cx_backends::SimdTier::Avx512, super::$check);
            })*
        }
        mod avx2 {
            $(#[test]
            fn $name() {
                crate::common::on_tier(cx_backends::SimdTier::Avx2Fma, super::$check);
            })*
        }
        mod portable {
            $(#[test]
            fn $name() {
                crate::common::on_tier(cx_backends::SimdTier::Portable, super::$check);
            })*
        }
    };
}
