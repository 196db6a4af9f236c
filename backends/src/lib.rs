//! Kernels and backends that run a CoLaNet spiking network on a batch.
//!
//! - [`scalar`]: the reference kernel, straight from snnTorch's equations.
//! - [`simd`]: the SIMD kernel: blocked input projection, vectorised LIF
//!   update, event-driven later layers, caller-provided workspace; compiled
//!   once per instruction-set tier (AVX-512F, AVX2+FMA, portable) and
//!   dispatched on the tier the CPU has ([`simd::SimdTier`]).
//! - [`provider`]: the [`CoLaNetProvider`] trait and its CPU implementations.
//! - [`dispatch`]: the closed [`Backend`] enum, [`BackendKind`] parsing
//!   (`CX_BACKEND`), and the falling-back [`Dispatcher`].
//! - [`sparse`]: batches given as each row's non-zeros ([`SparseRows`]),
//!   which every backend runs with the dense path's exact results.
//! - [`trace`]: optional per-step recording, free when unused.
//!
//! Training (whose forward pass is the scalar reference) is `cx-train`'s.
//! `docs/BACKENDS.md` says how to add a backend.

pub mod dispatch;
pub mod error;
pub mod provider;
pub mod scalar;
pub mod simd;
pub mod sparse;
pub mod trace;

pub use dispatch::{
    Backend, BackendKind, BackendStats, ConcreteKind, Dispatcher, FallbackPolicy, BACKEND_ENV,
};
pub use error::BackendError;
pub use provider::{CoLaNetProvider, ScalarBackend, SimdBackend, BATCH_MAX_LIMIT};
pub use simd::{SimdTier, SIMD_TIER_ENV};
pub use sparse::SparseRows;
pub use trace::{NoTrace, Trace, TraceSink};
