//! Measures one core's peak rate of 16-lane f32 fused multiply-adds, the
//! bound the kernel's input projection is compared against in
//! docs/BENCHMARKS.md. The measurement is `cx_benches::fma_peak` (twelve
//! independent accumulators, executed like the SIMD kernel's tier on this CPU); this prints the
//! median of 7 runs.
//!
//! `cargo run --release -p cx-benches --example fma_peak`

use cx_benches::fma_peak::measure_fma_peak;

/// Timed runs.
const RUNS: usize = 7;
/// Loop iterations per run (about 0.1 s each on the reference machine).
const ITERATIONS: u64 = 50_000_000;

fn main() {
    println!("FMA peak: {}", measure_fma_peak(RUNS, ITERATIONS).summary());
}
