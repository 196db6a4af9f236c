//! Dispatch at the engine boundary: the closed [`Backend`] enum, the
//! [`BackendKind`] a config or `CX_BACKEND` names, and the [`Dispatcher`]
//! that falls back down a chain of backends when one fails.
//!
//! Dispatch happens once per batch, never per element: the enum's `match`
//! selects a kernel, and the kernel's hot loops are monomorphic.

use crate::error::{BackendError, Result};
use crate::provider::{validate_readout, CoLaNetProvider, ScalarBackend, SimdBackend};
use crate::sparse::SparseRows;
use crate::trace::TraceSink;
use cx_model::{Readout, SnnModel};
use std::str::FromStr;
use std::sync::Arc;

/// The environment variable that picks a backend: `scalar`, `simd` or `auto`.
pub const BACKEND_ENV: &str = "CX_BACKEND";

/// A backend choice, as named in config, on the command line or in `CX_BACKEND`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BackendKind {
    /// The scalar reference kernel.
    Scalar,
    /// The `wide` SIMD kernel, falling back to scalar.
    Simd,
    /// The fastest backend compiled in and available (today: SIMD), falling back to scalar.
    #[default]
    Auto,
}

impl FromStr for BackendKind {
    type Err = BackendError;

    fn from_str(name: &str) -> Result<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "scalar" => Ok(Self::Scalar),
            "simd" => Ok(Self::Simd),
            "auto" | "" => Ok(Self::Auto),
            _ => Err(BackendError::UnknownBackend { name: name.into() }),
        }
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Scalar => "scalar",
            Self::Simd => "simd",
            Self::Auto => "auto",
        })
    }
}

impl BackendKind {
    /// The kind named by `CX_BACKEND`, or `None` when it is unset.
    pub fn from_env() -> Result<Option<Self>> {
        match std::env::var(BACKEND_ENV) {
            Ok(name) => name.parse().map(Some),
            Err(_) => Ok(None),
        }
    }

    /// The chain this kind runs: the preferred backend first, scalar last.
    pub fn chain(self) -> &'static [ConcreteKind] {
        match self {
            Self::Scalar => &[ConcreteKind::Scalar],
            Self::Simd | Self::Auto => &[ConcreteKind::Simd, ConcreteKind::Scalar],
        }
    }
}

/// One real backend (no `auto`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConcreteKind {
    /// [`ScalarBackend`].
    Scalar,
    /// [`SimdBackend`].
    Simd,
}

/// Every backend compiled into this build; the closed set the engine dispatches over.
#[derive(Clone, Debug)]
pub enum Backend {
    /// The scalar reference.
    Scalar(ScalarBackend),
    /// The SIMD kernel.
    Simd(SimdBackend),
}

impl Backend {
    /// Initialises the backend `kind` for `model`.
    pub fn init_kind(kind: ConcreteKind, model: Arc<SnnModel>, batch_max: usize) -> Result<Self> {
        Ok(match kind {
            ConcreteKind::Scalar => Self::Scalar(ScalarBackend::new(model, batch_max)?),
            ConcreteKind::Simd => Self::Simd(SimdBackend::new(model, batch_max)?),
        })
    }

    /// Like `infer`, recording every layer's spikes and membranes into `trace`.
    pub fn infer_traced<S: TraceSink>(
        &mut self,
        x: &[f32],
        batch: usize,
        out: &mut Readout,
        trace: &mut S,
    ) -> Result<()> {
        match self {
            Self::Scalar(b) => b.infer_traced(x, batch, out, trace),
            Self::Simd(b) => b.infer_traced(x, batch, out, trace),
        }
    }
}

impl CoLaNetProvider for Backend {
    fn infer(&mut self, x: &[f32], batch: usize, out: &mut Readout) -> Result<()> {
        match self {
            Self::Scalar(b) => b.infer(x, batch, out),
            Self::Simd(b) => b.infer(x, batch, out),
        }
    }

    fn infer_sparse(&mut self, rows: &SparseRows<'_>, out: &mut Readout) -> Result<()> {
        match self {
            Self::Scalar(b) => b.infer_sparse(rows, out),
            Self::Simd(b) => b.infer_sparse(rows, out),
        }
    }

    fn device_name(&self) -> &str {
        match self {
            Self::Scalar(b) => b.device_name(),
            Self::Simd(b) => b.device_name(),
        }
    }

    fn model(&self) -> &Arc<SnnModel> {
        match self {
            Self::Scalar(b) => b.model(),
            Self::Simd(b) => b.model(),
        }
    }
}

/// When a failing backend is taken out of rotation, and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FallbackPolicy {
    /// Consecutive failures after which a backend is quarantined.
    pub failures_to_quarantine: u32,
    /// How long a quarantine lasts, in nanoseconds of the caller's clock.
    pub quarantine_ns: u64,
}

impl Default for FallbackPolicy {
    fn default() -> Self {
        Self {
            failures_to_quarantine: 3,
            quarantine_ns: 5_000_000_000,
        }
    }
}

/// Counters for one backend in a dispatcher's chain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BackendStats {
    /// The backend's device name.
    pub device: String,
    /// Batches it served.
    pub batches_ok: u64,
    /// Batches it failed (error or invalid output).
    pub failures: u64,
    /// Failures after which the next backend in the chain took the batch.
    pub fallbacks: u64,
    /// Times it was taken out of rotation.
    pub quarantines: u64,
    /// Batches it skipped while out of rotation or unavailable.
    pub skipped: u64,
}

#[derive(Clone, Debug)]
struct Slot<P> {
    provider: P,
    failures_consecutive: u32,
    quarantined_until_ns: u64,
    stats: BackendStats,
}

/// Runs each batch on the first healthy backend of a chain, validating its
/// output, and falls back to the next one (finally the always-available
/// scalar reference) on an error or an invalid readout.
///
/// Time is the caller's (`now_ns`), so a host that passes a simulated clock
/// gets deterministic behaviour.
#[derive(Clone, Debug)]
pub struct Dispatcher<P: CoLaNetProvider = Backend> {
    slots: Vec<Slot<P>>,
    policy: FallbackPolicy,
}

impl Dispatcher<Backend> {
    /// The chain for `kind`, every backend initialised for `model` and `batch_max`.
    pub fn new(
        model: Arc<SnnModel>,
        kind: BackendKind,
        batch_max: usize,
        policy: FallbackPolicy,
    ) -> Result<Self> {
        let providers = kind
            .chain()
            .iter()
            .map(|&k| Backend::init_kind(k, model.clone(), batch_max))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self::from_providers(providers, policy))
    }
}

impl<P: CoLaNetProvider> Dispatcher<P> {
    /// A dispatcher over `providers`, preferred first; the last one is never skipped.
    /// Panics on an empty list, which is a programming error.
    pub fn from_providers(providers: Vec<P>, policy: FallbackPolicy) -> Self {
        assert!(
            !providers.is_empty(),
            "a dispatcher needs at least one backend"
        );
        let slots = providers
            .into_iter()
            .map(|provider| Slot {
                stats: BackendStats {
                    device: provider.device_name().to_string(),
                    ..Default::default()
                },
                provider,
                failures_consecutive: 0,
                quarantined_until_ns: 0,
            })
            .collect();
        Self { slots, policy }
    }

    /// Runs a batch. Returns the index in the chain of the backend that
    /// served it. Errors in the caller's input are returned at once (no
    /// backend would do better); backend failures fall back down the chain.
    pub fn infer(
        &mut self,
        x: &[f32],
        batch: usize,
        out: &mut Readout,
        now_ns: u64,
    ) -> Result<usize> {
        self.run(out, now_ns, |provider, out| provider.infer(x, batch, out))
    }

    /// [`infer`](Self::infer) for a sparse batch
    /// ([`CoLaNetProvider::infer_sparse`]), with the same validation and
    /// fallback.
    pub fn infer_sparse(
        &mut self,
        rows: &SparseRows<'_>,
        out: &mut Readout,
        now_ns: u64,
    ) -> Result<usize> {
        self.run(out, now_ns, |provider, out| {
            provider.infer_sparse(rows, out)
        })
    }

    /// Runs `pass` down the chain until a backend's readout validates.
    fn run(
        &mut self,
        out: &mut Readout,
        now_ns: u64,
        mut pass: impl FnMut(&mut P, &mut Readout) -> Result<()>,
    ) -> Result<usize> {
        let last = self.slots.len() - 1;
        let mut last_err = None;
        for (i, slot) in self.slots.iter_mut().enumerate() {
            let resting = now_ns < slot.quarantined_until_ns;
            if i < last && resting {
                slot.stats.skipped += 1;
                continue;
            }
            let steps = slot.provider.model().steps();
            let result = pass(&mut slot.provider, out)
                .and_then(|()| validate_readout(&slot.stats.device, steps, out));
            match result {
                Ok(()) => {
                    slot.failures_consecutive = 0;
                    slot.stats.batches_ok += 1;
                    return Ok(i);
                }
                Err(e) if e.is_caller_error() => return Err(e),
                Err(e) => {
                    record_failure(slot, &self.policy, now_ns, i < last);
                    last_err = Some(e);
                }
            }
        }
        Err(BackendError::AllFailed {
            last: Box::new(last_err.unwrap_or_else(|| BackendError::Unavailable {
                backend: "all".into(),
                reason: "no backend in the chain could run".into(),
            })),
        })
    }

    /// Counters, one entry per backend in chain order.
    pub fn stats(&self) -> Vec<BackendStats> {
        self.slots.iter().map(|s| s.stats.clone()).collect()
    }

    /// The backends, in chain order.
    pub fn providers(&self) -> impl Iterator<Item = &P> {
        self.slots.iter().map(|s| &s.provider)
    }

    /// The model the chain runs.
    pub fn model(&self) -> &Arc<SnnModel> {
        self.slots[0].provider.model()
    }
}

fn record_failure<P>(slot: &mut Slot<P>, policy: &FallbackPolicy, now_ns: u64, has_next: bool) {
    slot.stats.failures += 1;
    if has_next {
        slot.stats.fallbacks += 1;
    }
    slot.failures_consecutive += 1;
    if slot.failures_consecutive >= policy.failures_to_quarantine {
        slot.failures_consecutive = 0;
        slot.quarantined_until_ns = now_ns.saturating_add(policy.quarantine_ns);
        slot.stats.quarantines += 1;
    }
}
