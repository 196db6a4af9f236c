//! Measures one core's peak rate of 16-lane f32 fused multiply-adds with
//! `wide::f32x16`, the bound the kernel's input projection is compared
//! against in docs/BENCHMARKS.md. Twelve independent accumulators cover the
//! FMA latency on both FMA ports; the median of several runs is reported.
//!
//! `cargo run --release -p cx-benches --example fma_peak`

use std::hint::black_box;
use std::time::Instant;
use wide::f32x16;

const ACCUMULATORS: usize = 12;
const ITERATIONS: u64 = 50_000_000;
const RUNS: usize = 7;

fn run_once() -> f64 {
    let mut acc = [f32x16::ZERO; ACCUMULATORS];
    let a = black_box(f32x16::splat(0.999_999));
    let b = black_box(f32x16::splat(1e-7));
    let start = Instant::now();
    for _ in 0..ITERATIONS {
        for slot in acc.iter_mut() {
            *slot = slot.mul_add(a, b);
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    black_box(acc);
    (ITERATIONS * ACCUMULATORS as u64) as f64 / seconds
}

fn main() {
    let mut rates: Vec<f64> = (0..RUNS).map(|_| run_once()).collect();
    rates.sort_by(f64::total_cmp);
    let median = rates[RUNS / 2];
    println!(
        "f32x16 FMA: median {:.2} G/s (min {:.2}, max {:.2}) over {RUNS} runs = {:.0} GFLOP/s = {:.1} G multiply-adds/s",
        median / 1e9,
        rates[0] / 1e9,
        rates[RUNS - 1] / 1e9,
        median * 32.0 / 1e9,
        median * 16.0 / 1e9
    );
}
