//! Property tests: a sparse batch (each row's non-zeros) gives exactly the
//! readout of its dense rows, on the scalar backend and the SIMD backend
//! on every tier this CPU has, for random models with
//! ragged widths, batch 0, batch 1 and larger batches, rows with no
//! non-zero at all, and with the dispatcher's checks and fallback.

mod common;

use common::{fixture, Kernel};
use cx_backends::{
    BackendError, BackendKind, CoLaNetProvider, Dispatcher, FallbackPolicy, SimdTier, SparseRows,
};
use cx_model::{LifLayer, ModelMeta, Readout, ResetMechanism, SnnModel};
use proptest::prelude::*;
use std::sync::Arc;

/// The CSR form of a dense `[batch][inputs]` block: non-zeros only.
fn to_csr(x: &[f32], inputs: usize) -> (Vec<u32>, Vec<u32>, Vec<f32>) {
    let mut starts = vec![0u32];
    let (mut columns, mut values) = (Vec::new(), Vec::new());
    for row in x.chunks(inputs.max(1)) {
        for (c, &v) in row.iter().enumerate().filter(|(_, v)| **v != 0.0) {
            columns.push(c as u32);
            values.push(v);
        }
        starts.push(columns.len() as u32);
    }
    (starts, columns, values)
}

fn model_strategy() -> impl Strategy<Value = SnnModel> {
    (
        prop::collection::vec(1usize..70, 2..=3),
        1u32..10,
        any::<u64>(),
    )
        .prop_map(|(widths, steps, seed)| {
            let mut rng = seed;
            let mut next = move |scale: f32| {
                rng = rng
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((rng >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
            };
            let layers: Vec<LifLayer> = widths
                .windows(2)
                .map(|w| {
                    let scale = 3.0 / (w[0] as f32).sqrt();
                    let weight = (0..w[0] * w[1]).map(|_| next(scale)).collect();
                    let bias = (0..w[1]).map(|_| next(0.5)).collect();
                    LifLayer::new(
                        w[0],
                        w[1],
                        weight,
                        bias,
                        0.85,
                        0.7,
                        ResetMechanism::Subtract,
                    )
                })
                .collect();
            let outputs = layers.last().unwrap().outputs;
            SnnModel::new(layers, steps, ModelMeta::defaults(outputs)).expect("valid")
        })
}

/// Batches 0, 1, 2-10 and 17-39 of rows that are mostly zero; some rows all zero.
fn batch_strategy(inputs: usize) -> impl Strategy<Value = (usize, Vec<f32>)> {
    prop_oneof![Just(0usize), Just(1usize), 2usize..11, 17usize..40].prop_flat_map(move |batch| {
        let feature = prop_oneof![4 => Just(0.0f32), 1 => -1.0f32..2.0];
        (Just(batch), prop::collection::vec(feature, batch * inputs))
    })
}

fn run(
    kernel: Kernel,
    model: &Arc<SnnModel>,
    batch: usize,
    sparse: Option<&SparseRows<'_>>,
    x: &[f32],
) -> Readout {
    let mut backend = kernel.backend(model, 40);
    let mut out = Readout::with_capacity(40, model.outputs());
    match sparse {
        Some(rows) => backend.infer_sparse(rows, &mut out).unwrap(),
        None => backend.infer(x, batch, &mut out).unwrap(),
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn sparse_batches_give_the_dense_readout_on_every_backend(
        (model, (batch, x)) in model_strategy().prop_flat_map(|m| {
            let inputs = m.inputs();
            (Just(m), batch_strategy(inputs))
        })
    ) {
        let model = Arc::new(model);
        let (starts, columns, values) = to_csr(&x, model.inputs());
        let rows = SparseRows { starts: &starts, columns: &columns, values: &values };
        prop_assert_eq!(rows.batch(), batch);
        let dense = run(Kernel::Scalar, &model, batch, None, &x);
        let n = batch * model.outputs();
        let kernels = std::iter::once(Kernel::Scalar).chain(SimdTier::supported().map(Kernel::Simd));
        for kernel in kernels {
            let out = run(kernel, &model, batch, Some(&rows), &x);
            let name = format!("{kernel:?}, sparse");
            prop_assert_eq!(out.batch(), batch, "{}", name);
            prop_assert_eq!(&out.spike_count[..n], &dense.spike_count[..n], "{}", name);
            prop_assert_eq!(&out.mem_last[..n], &dense.mem_last[..n], "{}", name);
            prop_assert_eq!(&out.probability[..n], &dense.probability[..n], "{}", name);
        }
    }
}

#[test]
fn the_dispatcher_checks_sparse_input_before_any_backend_runs() {
    let model = Arc::new(SnnModel::load(fixture("snntorch_net_small.safetensors")).unwrap());
    let mut d = Dispatcher::new(
        model.clone(),
        BackendKind::Auto,
        4,
        FallbackPolicy::default(),
    )
    .unwrap();
    let mut out = Readout::with_capacity(4, model.outputs());
    let unsorted = SparseRows {
        starts: &[0, 2],
        columns: &[3, 1],
        values: &[1.0, 1.0],
    };
    let err = d.infer_sparse(&unsorted, &mut out, 0).unwrap_err();
    assert!(matches!(err, BackendError::SparseInput { .. }), "{err}");
    let too_many = SparseRows {
        starts: &[0, 0, 0, 0, 0, 0],
        columns: &[],
        values: &[],
    };
    assert!(matches!(
        d.infer_sparse(&too_many, &mut out, 0).unwrap_err(),
        BackendError::BatchTooLarge {
            batch: 5,
            batch_max: 4
        }
    ));
    let nan = SparseRows {
        starts: &[0, 1],
        columns: &[2],
        values: &[f32::NAN],
    };
    assert!(matches!(
        d.infer_sparse(&nan, &mut out, 0).unwrap_err(),
        BackendError::NonFiniteInput {
            sample: 0,
            feature: 2,
            ..
        }
    ));
    // Caller errors are not backend failures: nothing fell back.
    assert!(d
        .stats()
        .iter()
        .all(|s| s.failures == 0 && s.fallbacks == 0));
    let ok = SparseRows {
        starts: &[0, 2],
        columns: &[1, 3],
        values: &[0.5, 1.0],
    };
    assert_eq!(
        d.infer_sparse(&ok, &mut out, 0).unwrap(),
        0,
        "SIMD served it"
    );
    assert_eq!(out.batch(), 1);
}
