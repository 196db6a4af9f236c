//! Kernel throughput: scalar reference against the SIMD kernel, at the two
//! benchmark shapes, T = 8, batches 1, 16, 64 and 256, single-threaded.
//! The workloads are `cx_benches::kernel_bench`'s (shared with
//! `cx-bench kernel` and the `kernel_report` example).
//!
//! Run: `cargo bench -p cx-benches --bench kernels`. Criterion reports time
//! per batch and samples per second; µs per sample is time / batch.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use cx_backends::{BackendError, CoLaNetProvider, ScalarBackend, SimdBackend};
use cx_benches::kernel_bench::{
    firing_rates, kernel_model, KernelRunner, KERNEL_BATCHES, KERNEL_STEPS,
};
use cx_benches::KERNEL_SHAPES;
use cx_model::SnnModel;
use std::sync::Arc;
use std::time::Duration;

fn bench_backend<P: CoLaNetProvider>(
    c: &mut Criterion,
    label: &str,
    new: impl Fn(Arc<SnnModel>, usize) -> Result<P, BackendError>,
) {
    for shape in KERNEL_SHAPES {
        let model = kernel_model(shape);
        let mut group = c.benchmark_group(format!("kernel/{shape}/T{KERNEL_STEPS}"));
        group
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2))
            .sample_size(20);
        for batch in KERNEL_BATCHES {
            let backend = new(model.clone(), batch).expect("init");
            let mut runner = KernelRunner::new(backend, shape, batch);
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_function(BenchmarkId::new(label, batch), |b| {
                b.iter(|| runner.run().expect("infer"))
            });
        }
        group.finish();
    }
}

/// Prints the layers' firing rates on the benchmark inputs, so the report
/// can show the workload fires at a realistic rate.
fn report_firing_rates() {
    for shape in KERNEL_SHAPES {
        let rates = firing_rates(shape).expect("infer");
        for (l, rate) in rates.layer_rates.iter().enumerate() {
            eprintln!("firing rate {shape} layer {}: {rate:.3}", l + 1);
        }
    }
}

fn kernels(c: &mut Criterion) {
    report_firing_rates();
    bench_backend(c, "simd", SimdBackend::new);
    bench_backend(c, "scalar", ScalarBackend::new);
}

criterion_group!(benches, kernels);
criterion_main!(benches);
