//! Probe (issue 13, goal 6, last point): the SIMD kernel's input projection
//! (`cx_backends::simd::project`, the tile loop) against the `gemm` crate
//! (0.18, one thread) on a 256x512 layer, batches 1 and 64, dense inputs;
//! interleaved per repeat, median of 9. Not part of the workspace:
//! `cd benches/onnx/gemm_probe && cargo run --release` (its own target/).

use cx_backends::simd::kernels::column_lists_len;
use cx_backends::simd::{project, Block, PackedLayer, SimdTier};
use cx_model::{LifLayer, ResetMechanism};
use std::time::Instant;

fn main() {
    let (d, h) = (256usize, 512usize);
    let mut s = 0x2545F4914F6CDD1Du64;
    let mut rnd = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 24) as f32
    };
    let bound = 1.0 / (d as f32).sqrt();
    let w: Vec<f32> = (0..d * h)
        .map(|_| 3.0 * (2.0 * rnd() - 1.0) * bound)
        .collect();
    let b: Vec<f32> = (0..h).map(|_| (2.0 * rnd() - 1.0) * bound).collect();
    let layer = LifLayer::new(
        d,
        h,
        w.clone(),
        b.clone(),
        0.9,
        1.0,
        ResetMechanism::Subtract,
    );
    let tier = SimdTier::detect();
    let packed = PackedLayer::pack(&layer, cx_backends::simd::kernels::PROJECT_TILE_VECTORS);
    // W^T, [d][h] row-major, for gemm
    let mut wt = vec![0f32; d * h];
    for hh in 0..h {
        for dd in 0..d {
            wt[dd * h + hh] = w[hh * d + dd];
        }
    }
    let reps = 9;
    println!("tier {tier:?}");
    for &batch in &[1usize, 64] {
        let x: Vec<f32> = (0..batch * d).map(|_| 2.0 * rnd() - 0.5).collect();
        let mut cur = vec![Block::ZERO; batch * h / 16];
        let mut cols = vec![0u32; column_lists_len(batch, d)];
        let mut dst = vec![0f32; batch * h];
        let calls = (200_000 / batch).max(200);
        let mut tile = Vec::new();
        let mut gm = Vec::new();
        for _ in 0..reps {
            let t0 = Instant::now();
            for _ in 0..calls {
                project(tier, &packed, std::hint::black_box(&x), &mut cur, &mut cols);
            }
            tile.push(t0.elapsed().as_secs_f64() * 1e6 / (calls * batch) as f64);
            let t0 = Instant::now();
            for _ in 0..calls {
                for r in 0..batch {
                    dst[r * h..(r + 1) * h].copy_from_slice(&b);
                }
                unsafe {
                    gemm::gemm(
                        batch,
                        h,
                        d,
                        dst.as_mut_ptr(),
                        1,
                        h as isize,
                        true,
                        std::hint::black_box(x.as_ptr()),
                        1,
                        d as isize,
                        wt.as_ptr(),
                        1,
                        h as isize,
                        1.0f32,
                        1.0f32,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    );
                }
            }
            gm.push(t0.elapsed().as_secs_f64() * 1e6 / (calls * batch) as f64);
        }
        // agreement
        let mut maxerr = 0f32;
        for r in 0..batch {
            for hh in 0..h {
                let a = cur[r * h / 16 + hh / 16].0[hh % 16];
                maxerr = maxerr.max((a - dst[r * h + hh]).abs());
            }
        }
        let med = |v: &mut Vec<f64>| {
            v.sort_by(|a, b| a.partial_cmp(b).unwrap());
            (v[v.len() / 2], v[0], v[v.len() - 1])
        };
        let (tm, tmin, tmax) = med(&mut tile);
        let (gmd, gmin, gmax) = med(&mut gm);
        println!(
            "batch {batch}: tile loop {tm:.3} [{tmin:.3}-{tmax:.3}] us/sample, gemm crate {gmd:.3} [{gmin:.3}-{gmax:.3}] us/sample, gemm/tile {:.2}, max |diff| {maxerr:.2e}, tile G madds/s {:.1}, gemm G madds/s {:.1}",
            gmd / tm,
            (d * h) as f64 / tm / 1e3,
            (d * h) as f64 / gmd / 1e3
        );
    }
}
