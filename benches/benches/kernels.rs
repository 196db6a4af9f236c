//! Kernel throughput: scalar reference against the SIMD kernel, at the two
//! benchmark shapes, T = 8, batches 1, 16, 64 and 256, single-threaded.
//!
//! Run: `cargo bench -p cx-benches --bench kernels`. Criterion reports time
//! per batch and samples per second; µs per sample is time / batch.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use cx_backends::{CoLaNetProvider, ScalarBackend, SimdBackend, Trace};
use cx_benches::{dense_inputs, snntorch_style_model, KERNEL_SHAPES};
use cx_components::Readout;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

const STEPS: u32 = 8;
const BATCHES: [usize; 4] = [1, 16, 64, 256];

fn bench_backend<P: CoLaNetProvider>(c: &mut Criterion, label: &str) {
    for shape in KERNEL_SHAPES {
        let model = Arc::new(snntorch_style_model(shape, STEPS, 7));
        let mut group = c.benchmark_group(format!("kernel/{shape}/T{STEPS}"));
        group
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2))
            .sample_size(20);
        for batch in BATCHES {
            let x = dense_inputs(shape.inputs, batch, 11);
            let mut backend = P::init(model.clone(), batch).expect("init");
            let mut out = Readout::with_capacity(batch, shape.outputs);
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_function(BenchmarkId::new(label, batch), |b| {
                b.iter(|| {
                    backend
                        .infer(black_box(&x), batch, &mut out)
                        .expect("infer")
                })
            });
        }
        group.finish();
    }
}

/// Prints the hidden layer's firing rate on the benchmark inputs, so the
/// report can show the workload fires at a realistic rate.
fn report_firing_rates() {
    for shape in KERNEL_SHAPES {
        let model = Arc::new(snntorch_style_model(shape, STEPS, 7));
        let x = dense_inputs(shape.inputs, 64, 11);
        let mut backend = SimdBackend::init(model, 64).expect("init");
        let mut out = Readout::with_capacity(64, shape.outputs);
        let mut trace = Trace::default();
        backend
            .infer_traced(&x, 64, &mut out, &mut trace)
            .expect("infer");
        for (l, layer) in trace.layers.iter().enumerate() {
            let spikes: Vec<u8> = layer.spk.iter().flatten().flatten().copied().collect();
            let rate = spikes.iter().map(|&s| s as f64).sum::<f64>() / spikes.len() as f64;
            eprintln!("firing rate {shape} layer {}: {:.3}", l + 1, rate);
        }
    }
}

fn kernels(c: &mut Criterion) {
    report_firing_rates();
    bench_backend::<SimdBackend>(c, "simd");
    bench_backend::<ScalarBackend>(c, "scalar");
}

criterion_group!(benches, kernels);
criterion_main!(benches);
