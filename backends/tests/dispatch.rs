//! The dispatcher's fallback, validation and quarantine behaviour, and
//! backend selection by name and by `CX_BACKEND`.
//!
//! The failing backend here is a test double that wraps the real scalar
//! kernel and can be told to fail; it stands in for a flaky accelerator so
//! the dispatcher's bookkeeping can be checked deterministically.

mod common;

use common::fixture;
use cx_backends::{
    BackendError, BackendKind, CoLaNetProvider, Dispatcher, FallbackPolicy, ScalarBackend,
    SparseRows,
};
use cx_model::{Readout, SnnModel};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

const HEALTHY: u8 = 0;
const ERRORS: u8 = 1;
const NAN_OUTPUT: u8 = 2;
const BAD_PROBABILITY: u8 = 3;

struct Flaky {
    inner: ScalarBackend,
    mode: Arc<AtomicU8>,
    name: &'static str,
}

impl CoLaNetProvider for Flaky {
    fn infer(&mut self, x: &[f32], batch: usize, out: &mut Readout) -> Result<(), BackendError> {
        self.inner.infer(x, batch, out)?;
        self.misbehave(out)
    }

    fn infer_sparse(
        &mut self,
        rows: &SparseRows<'_>,
        out: &mut Readout,
    ) -> Result<(), BackendError> {
        self.inner.infer_sparse(rows, out)?;
        self.misbehave(out)
    }

    fn device_name(&self) -> &str {
        self.name
    }

    fn model(&self) -> &Arc<SnnModel> {
        self.inner.model()
    }
}

impl Flaky {
    fn new(model: Arc<SnnModel>, batch_max: usize) -> Result<Self, BackendError> {
        Ok(Self {
            inner: ScalarBackend::new(model, batch_max)?,
            mode: Arc::new(AtomicU8::new(HEALTHY)),
            name: "flaky",
        })
    }

    /// Fails as the current mode says, after a real pass filled `out`.
    fn misbehave(&self, out: &mut Readout) -> Result<(), BackendError> {
        match self.mode.load(Ordering::SeqCst) {
            ERRORS => Err(BackendError::Unavailable {
                backend: self.name.into(),
                reason: "device lost".into(),
            }),
            NAN_OUTPUT => {
                out.mem_last[0] = f32::NAN;
                Ok(())
            }
            BAD_PROBABILITY => {
                out.probability[0] = 1.5;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

fn model() -> Arc<SnnModel> {
    Arc::new(SnnModel::load(fixture("snntorch_net_small.safetensors")).unwrap())
}

/// A chain of [flaky primary, flaky secondary, healthy last].
fn chain(policy: FallbackPolicy) -> (Dispatcher<Flaky>, Arc<AtomicU8>, Arc<AtomicU8>) {
    let m = model();
    let mut first = Flaky::new(m.clone(), 8).unwrap();
    first.name = "primary";
    let mut second = Flaky::new(m.clone(), 8).unwrap();
    second.name = "secondary";
    let mut last = Flaky::new(m, 8).unwrap();
    last.name = "last";
    let (a, b) = (first.mode.clone(), second.mode.clone());
    (
        Dispatcher::from_providers(vec![first, second, last], policy),
        a,
        b,
    )
}

fn input(batch: usize) -> Vec<f32> {
    (0..batch * 13).map(|i| (i % 7) as f32 * 0.3).collect()
}

#[test]
fn healthy_primary_serves_every_batch() {
    let (mut d, _, _) = chain(FallbackPolicy::default());
    let mut out = Readout::with_capacity(8, 5);
    for t in 0..5 {
        assert_eq!(d.infer(&input(4), 4, &mut out, t).unwrap(), 0);
    }
    let stats = d.stats();
    assert_eq!(stats[0].batches_ok, 5);
    assert_eq!(stats[0].fallbacks, 0);
    assert_eq!(stats[1].batches_ok + stats[2].batches_ok, 0);
}

#[test]
fn errors_and_invalid_outputs_fall_back_and_are_counted() {
    let (mut d, primary, secondary) = chain(FallbackPolicy {
        failures_to_quarantine: 100,
        quarantine_ns: 1,
    });
    let mut out = Readout::with_capacity(8, 5);
    for (mode, what) in [
        (ERRORS, "error"),
        (NAN_OUTPUT, "NaN"),
        (BAD_PROBABILITY, "p > 1"),
    ] {
        primary.store(mode, Ordering::SeqCst);
        assert_eq!(
            d.infer(&input(2), 2, &mut out, 0).unwrap(),
            1,
            "{what}: secondary serves"
        );
        assert!(
            out.mem_last[..10].iter().all(|m| m.is_finite()),
            "{what}: served output is valid"
        );
        assert!(out.probability[..10]
            .iter()
            .all(|p| (0.0..=1.0).contains(p)));
    }
    secondary.store(ERRORS, Ordering::SeqCst);
    assert_eq!(
        d.infer(&input(2), 2, &mut out, 0).unwrap(),
        2,
        "falls through to the last"
    );
    let stats = d.stats();
    assert_eq!((stats[0].failures, stats[0].fallbacks), (4, 4));
    assert_eq!((stats[1].batches_ok, stats[1].failures), (3, 1));
    assert_eq!(stats[2].batches_ok, 1);
}

#[test]
fn sparse_batches_fall_back_like_dense_ones() {
    let (mut d, primary, _) = chain(FallbackPolicy {
        failures_to_quarantine: 100,
        quarantine_ns: 1,
    });
    let mut out = Readout::with_capacity(8, 5);
    let rows = SparseRows {
        starts: &[0, 2, 3],
        columns: &[0, 7, 12],
        values: &[0.5, -1.0, 2.0],
    };
    assert_eq!(d.infer_sparse(&rows, &mut out, 0).unwrap(), 0);
    let healthy = out.probability[..2 * 5].to_vec();
    primary.store(NAN_OUTPUT, Ordering::SeqCst);
    assert_eq!(
        d.infer_sparse(&rows, &mut out, 0).unwrap(),
        1,
        "served by the secondary"
    );
    assert_eq!(&out.probability[..2 * 5], &healthy[..]);
    assert_eq!(d.stats()[0].failures, 1);
}

#[test]
fn a_backend_that_keeps_failing_is_quarantined_then_retried() {
    let policy = FallbackPolicy {
        failures_to_quarantine: 3,
        quarantine_ns: 1_000,
    };
    let (mut d, primary, _) = chain(policy);
    let mut out = Readout::with_capacity(8, 5);
    primary.store(ERRORS, Ordering::SeqCst);
    for t in 0..3 {
        assert_eq!(d.infer(&input(1), 1, &mut out, t).unwrap(), 1);
    }
    assert_eq!(d.stats()[0].quarantines, 1);
    primary.store(HEALTHY, Ordering::SeqCst);
    // Out of rotation until t = 2 + 1000, even though it would now succeed.
    assert_eq!(d.infer(&input(1), 1, &mut out, 500).unwrap(), 1);
    assert_eq!(d.stats()[0].skipped, 1);
    assert_eq!(d.stats()[0].failures, 3, "a skipped batch is not a failure");
    assert_eq!(
        d.infer(&input(1), 1, &mut out, 1_002).unwrap(),
        0,
        "back in rotation"
    );
}

#[test]
fn caller_errors_are_returned_without_falling_back() {
    let (mut d, _, _) = chain(FallbackPolicy::default());
    let mut out = Readout::with_capacity(8, 5);
    let err = d.infer(&input(2)[..20], 2, &mut out, 0).unwrap_err();
    assert!(
        matches!(
            err,
            BackendError::InputShape {
                len: 20,
                batch: 2,
                inputs: 13
            }
        ),
        "{err}"
    );
    let err = d.infer(&input(9), 9, &mut out, 0).unwrap_err();
    assert!(
        matches!(
            err,
            BackendError::BatchTooLarge {
                batch: 9,
                batch_max: 8
            }
        ),
        "{err}"
    );
    let mut x = input(2);
    x[15] = f32::NAN;
    let err = d.infer(&x, 2, &mut out, 0).unwrap_err();
    assert!(
        matches!(
            err,
            BackendError::NonFiniteInput {
                sample: 1,
                feature: 2,
                ..
            }
        ),
        "{err}"
    );
    assert!(d
        .stats()
        .iter()
        .all(|s| s.failures == 0 && s.fallbacks == 0));
}

#[test]
fn all_backends_failing_is_a_typed_error_naming_the_last_failure() {
    let m = model();
    let only = Flaky::new(m, 4).unwrap();
    only.mode.store(NAN_OUTPUT, Ordering::SeqCst);
    let mut d = Dispatcher::from_providers(vec![only], FallbackPolicy::default());
    let mut out = Readout::with_capacity(4, 5);
    let err = d.infer(&input(1), 1, &mut out, 0).unwrap_err();
    assert!(matches!(err, BackendError::AllFailed { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("mem_last of sample 0, column 0 is NaN"),
        "{err}"
    );
}

#[test]
fn backend_kinds_parse_and_build_the_expected_chains() {
    assert_eq!(
        "scalar".parse::<BackendKind>().unwrap(),
        BackendKind::Scalar
    );
    assert_eq!(" SIMD ".parse::<BackendKind>().unwrap(), BackendKind::Simd);
    assert_eq!("auto".parse::<BackendKind>().unwrap(), BackendKind::Auto);
    let err = "groq".parse::<BackendKind>().unwrap_err();
    assert!(err.to_string().contains("unknown backend `groq`"), "{err}");
    let d = Dispatcher::new(model(), BackendKind::Auto, 4, FallbackPolicy::default()).unwrap();
    let names: Vec<&str> = d.providers().map(|p| p.device_name()).collect();
    assert_eq!(names.len(), 2);
    assert!(names[0].starts_with("cpu-simd"), "{names:?}");
    assert_eq!(names[1], "cpu-scalar", "scalar is always the last resort");
    let d = Dispatcher::new(model(), BackendKind::Scalar, 4, FallbackPolicy::default()).unwrap();
    assert_eq!(d.providers().count(), 1);
}

#[test]
fn backend_env_variable_selects_the_kind() {
    // The only test in this binary that touches the variable.
    std::env::set_var(cx_backends::BACKEND_ENV, "scalar");
    assert_eq!(BackendKind::from_env().unwrap(), Some(BackendKind::Scalar));
    std::env::set_var(cx_backends::BACKEND_ENV, "tpu");
    assert!(matches!(
        BackendKind::from_env(),
        Err(BackendError::UnknownBackend { .. })
    ));
    std::env::remove_var(cx_backends::BACKEND_ENV);
    assert_eq!(BackendKind::from_env().unwrap(), None);
}
