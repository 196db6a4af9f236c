//! The peak rate of 16-lane f32 fused multiply-adds on one core: the bound
//! the kernel's dense input projection is compared against
//! (docs/BENCHMARKS.md, "Where the time goes, and how far it is from its
//! bound").
//!
//! Twelve independent accumulators of 16 lanes cover the FMA latency on
//! both FMA ports. A 16-lane FMA is executed the way the SIMD kernel's
//! tier on this CPU executes it (`cx_backends::SimdTier`, chosen at run
//! time): one 512-bit FMA on AVX-512F, two 256-bit FMAs on AVX2+FMA, else
//! sixteen `f32::mul_add`s left to the compiler.

// This module opts in to `unsafe_code` (denied in the workspace): calling a
// `#[target_feature]` function is unsafe. Each call is made only after the
// CPU was checked, at run time, to have the features the function enables.
#![allow(unsafe_code)]

use crate::spread::Spread;
use serde::{Deserialize, Serialize};
use std::hint::black_box;
use std::time::Instant;

/// Lanes of one vector FMA, as in the kernel's `f32x16`.
pub const FMA_LANES: usize = 16;

/// Independent accumulators, enough to hide the FMA latency on two ports.
pub const FMA_ACCUMULATORS: usize = 12;

/// How a 16-lane FMA is executed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FmaPath {
    /// One 512-bit `vfmadd` (the AVX-512 tier).
    Avx512,
    /// Two 256-bit `vfmadd`s (the AVX2+FMA tier).
    Avx2Fma,
    /// Sixteen `f32::mul_add`s, vectorised as the compiler sees fit.
    Portable,
}

impl FmaPath {
    /// The path the SIMD kernel takes on this CPU: its tier
    /// ([`cx_backends::SimdTier::from_env_or_detect`], so `CX_SIMD_TIER`
    /// caps both alike); the detected tier when that variable is invalid.
    pub fn detect() -> Self {
        let tier = cx_backends::SimdTier::from_env_or_detect()
            .unwrap_or_else(|_| cx_backends::SimdTier::detect());
        match tier {
            cx_backends::SimdTier::Avx512 => Self::Avx512,
            cx_backends::SimdTier::Avx2Fma => Self::Avx2Fma,
            cx_backends::SimdTier::Portable => Self::Portable,
        }
    }

    /// Whether the running CPU has the features this path needs.
    pub fn is_available(&self) -> bool {
        match self {
            Self::Avx512 => cpu_has_avx512f(),
            Self::Avx2Fma => cpu_has_avx2_fma(),
            Self::Portable => true,
        }
    }
}

/// Whether the CPU has AVX-512F (checked at run time).
fn cpu_has_avx512f() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether the CPU has AVX2 and FMA (checked at run time).
fn cpu_has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

impl std::fmt::Display for FmaPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Avx512 => "one 512-bit FMA (avx512f)",
            Self::Avx2Fma => "two 256-bit FMAs (avx2+fma)",
            Self::Portable => "16 x f32::mul_add (portable)",
        })
    }
}

/// One core's measured FMA peak.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FmaPeak {
    /// How each 16-lane FMA ran.
    pub path: FmaPath,
    /// Timed runs.
    pub runs: usize,
    /// Loop iterations per run (each does [`FMA_ACCUMULATORS`] vector FMAs).
    pub iterations: u64,
    /// 16-lane FMAs per second over the runs.
    pub vector_fmas_per_s: Spread,
    /// Median single-lane multiply-adds per second (16 per vector FMA).
    pub madds_per_s: f64,
    /// Median GFLOP/s (a multiply-add is 2 FLOPs).
    pub gflop_per_s: f64,
}

impl FmaPeak {
    /// The peak from runs of `iterations` iterations on `path` that
    /// measured `rates` (16-lane FMAs per second; see [`measure_fma_rate`]),
    /// for callers that interleave the runs with other measurements.
    pub fn from_rates(
        path: FmaPath,
        iterations: u64,
        rates: impl IntoIterator<Item = f64>,
    ) -> Self {
        let rates: Vec<f64> = rates.into_iter().collect();
        let vector_fmas_per_s = Spread::of(rates.iter().copied());
        Self {
            path,
            runs: rates.len(),
            iterations,
            vector_fmas_per_s,
            madds_per_s: vector_fmas_per_s.median * FMA_LANES as f64,
            gflop_per_s: vector_fmas_per_s.median * 2.0 * FMA_LANES as f64 / 1e9,
        }
    }

    /// One line: median G vector FMAs/s with the range, G multiply-adds/s
    /// and GFLOP/s.
    pub fn summary(&self) -> String {
        let g = |x: f64| x / 1e9;
        format!(
            "{:.2} G f32x16 FMA/s [{:.2}-{:.2}] over {} runs = {:.1} G multiply-adds/s = {:.0} GFLOP/s ({})",
            g(self.vector_fmas_per_s.median),
            g(self.vector_fmas_per_s.min),
            g(self.vector_fmas_per_s.max),
            self.runs,
            g(self.madds_per_s),
            self.gflop_per_s,
            self.path
        )
    }
}

/// Measures the peak over `runs` runs of `iterations` loop iterations each
/// (at least one of each). On the reference machine 50 million iterations
/// take about 0.1 s.
pub fn measure_fma_peak(runs: usize, iterations: u64) -> FmaPeak {
    let path = FmaPath::detect();
    let rates = (0..runs.max(1)).map(|_| measure_fma_rate(path, iterations));
    FmaPeak::from_rates(path, iterations, rates)
}

/// One timed run of `iterations` (at least one) loop iterations on `path`:
/// 16-lane FMAs per second. A path the CPU lacks runs the portable loop.
pub fn measure_fma_rate(path: FmaPath, iterations: u64) -> f64 {
    let iterations = iterations.max(1);
    let start = Instant::now();
    match path {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the guard checked at run time that the CPU has avx512f,
        // the one feature `x86::fma_avx512` enables.
        FmaPath::Avx512 if cpu_has_avx512f() => unsafe { x86::fma_avx512(iterations) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the guard checked at run time that the CPU has avx2 and
        // fma, the features `x86::fma_avx2` enables.
        FmaPath::Avx2Fma if cpu_has_avx2_fma() => unsafe { x86::fma_avx2(iterations) },
        _ => fma_portable(iterations),
    }
    let seconds = start.elapsed().as_secs_f64().max(1e-12);
    (iterations * FMA_ACCUMULATORS as u64) as f64 / seconds
}

/// The loop in plain Rust: 16 `f32::mul_add`s per accumulator.
fn fma_portable(iterations: u64) {
    let mut acc = [[0.0_f32; FMA_LANES]; FMA_ACCUMULATORS];
    let a = black_box([0.999_999_f32; FMA_LANES]);
    let b = black_box([1e-7_f32; FMA_LANES]);
    for _ in 0..iterations {
        for slot in acc.iter_mut() {
            for (lane, (x, y)) in slot.iter_mut().zip(a.iter().zip(&b)) {
                *lane = lane.mul_add(*x, *y);
            }
        }
    }
    black_box(acc);
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! The loop in x86 intrinsics, 512-bit and 256-bit.

    use super::FMA_ACCUMULATORS;
    use std::arch::x86_64::{
        _mm256_fmadd_ps, _mm256_set1_ps, _mm256_setzero_ps, _mm512_fmadd_ps, _mm512_set1_ps,
        _mm512_setzero_ps,
    };
    use std::hint::black_box;

    /// `iterations` x [`FMA_ACCUMULATORS`] 512-bit FMAs.
    #[target_feature(enable = "avx512f")]
    pub(super) fn fma_avx512(iterations: u64) {
        let mut acc = [_mm512_setzero_ps(); FMA_ACCUMULATORS];
        let a = black_box(_mm512_set1_ps(0.999_999));
        let b = black_box(_mm512_set1_ps(1e-7));
        for _ in 0..iterations {
            for slot in acc.iter_mut() {
                *slot = _mm512_fmadd_ps(*slot, a, b);
            }
        }
        black_box(acc);
    }

    /// `iterations` x [`FMA_ACCUMULATORS`] pairs of 256-bit FMAs.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn fma_avx2(iterations: u64) {
        let mut acc = [[_mm256_setzero_ps(); 2]; FMA_ACCUMULATORS];
        let a = black_box(_mm256_set1_ps(0.999_999));
        let b = black_box(_mm256_set1_ps(1e-7));
        for _ in 0..iterations {
            for pair in acc.iter_mut() {
                for half in pair.iter_mut() {
                    *half = _mm256_fmadd_ps(*half, a, b);
                }
            }
        }
        black_box(acc);
    }
}

#[cfg(test)]
mod tests {
    use super::{measure_fma_peak, FmaPath};

    #[test]
    fn every_path_runs() {
        let peak = measure_fma_peak(2, 10_000);
        assert_eq!(peak.runs, 2);
        assert!(peak.vector_fmas_per_s.min > 0.0);
        assert!(peak.madds_per_s > 0.0 && peak.gflop_per_s > 0.0);
        for path in [FmaPath::detect(), FmaPath::Portable] {
            assert!(super::measure_fma_rate(path, 1_000) > 0.0);
        }
    }
}
