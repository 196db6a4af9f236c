//! The scalar backend and the SIMD backend on every tier this CPU has
//! allocate nothing per call once built: every buffer is sized when the
//! backend is created. Counted with `allocation-counter`, whose
//! global allocator tallies the allocations made inside `measure`.

#[macro_use]
mod common;

use common::{fixture, Kernel};
use cx_backends::{CoLaNetProvider, SimdTier};
use cx_model::{Readout, SnnModel};
use std::sync::Arc;

fn assert_no_allocation_per_call(kernel: Kernel) {
    let name = format!("{kernel:?}");
    let model = Arc::new(SnnModel::load(fixture("snntorch_net_small.safetensors")).unwrap());
    let batch_max = 37;
    let mut backend = kernel.backend(&model, batch_max);
    let mut out = Readout::with_capacity(batch_max, model.outputs());
    let x: Vec<f32> = (0..batch_max * model.inputs())
        .map(|i| (i % 11) as f32 * 0.2 - 0.4)
        .collect();
    backend.infer(&x, batch_max, &mut out).unwrap(); // warm-up
    let mut spikes = 0u64;
    let info = allocation_counter::measure(|| {
        for batch in [batch_max, 1, 0, 8, 17, batch_max] {
            for _ in 0..50 {
                backend
                    .infer(&x[..batch * model.inputs()], batch, &mut out)
                    .unwrap();
                spikes += out.spike_count[..batch * model.outputs()]
                    .iter()
                    .map(|&c| c as u64)
                    .sum::<u64>();
            }
        }
    });
    assert_eq!(info.count_total, 0, "{name} allocated during inference");
    assert!(spikes > 0, "{name}: the runs did real work");
}

fn simd_backend_allocates_nothing_per_call(tier: SimdTier) {
    assert_no_allocation_per_call(Kernel::Simd(tier));
}

per_tier! {
    simd_backend_allocates_nothing_per_call => simd_backend_allocates_nothing_per_call,
}

#[test]
fn scalar_backend_allocates_nothing_per_call() {
    assert_no_allocation_per_call(Kernel::Scalar);
}

#[test]
fn the_counter_sees_an_allocation() {
    let info = allocation_counter::measure(|| {
        std::hint::black_box(vec![1u8; 64]);
    });
    assert_eq!(
        info.count_total, 1,
        "the measurement works, so zero above means zero"
    );
}
