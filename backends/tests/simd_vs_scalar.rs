//! Property tests: the SIMD kernel, on every tier this CPU has, equals the
//! scalar reference on random models and batches, including widths that
//! are not a multiple of the lane width, batch 1 and an empty batch. The
//! kernels keep the same order of floating-point operations, so spikes and
//! membranes must be identical.

#[macro_use]
mod common;

use common::{run_traced, Kernel};
use cx_backends::simd::{self, Block};
use cx_backends::{scalar, SimdTier};
use cx_model::{LifLayer, ModelMeta, ResetMechanism, SnnModel};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::sync::Arc;

fn reset_strategy() -> impl Strategy<Value = ResetMechanism> {
    prop_oneof![
        Just(ResetMechanism::Subtract),
        Just(ResetMechanism::Zero),
        Just(ResetMechanism::None)
    ]
}

fn values(len: usize, scale: f32) -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec(-scale..scale, len)
}

/// A layer with random weights; beta and threshold either shared or per neuron,
/// graded spikes either 1 or another value.
fn layer_strategy(inputs: usize, outputs: usize) -> impl Strategy<Value = LifLayer> {
    let scale = 3.0 / (inputs as f32).sqrt();
    (
        values(inputs * outputs, scale),
        values(outputs, 0.5),
        prop::collection::vec(0.0f32..=1.0, outputs),
        prop::collection::vec(0.2f32..2.0, outputs),
        any::<bool>(),
        reset_strategy(),
        prop_oneof![Just(1.0f32), 0.25f32..2.0],
    )
        .prop_map(
            move |(weight, bias, beta, threshold, shared, reset, graded)| LifLayer {
                inputs,
                outputs,
                weight,
                bias,
                beta: if shared { vec![beta[0]; outputs] } else { beta },
                threshold: if shared {
                    vec![threshold[0]; outputs]
                } else {
                    threshold
                },
                reset,
                graded_spikes_factor: graded,
            },
        )
}

fn model_strategy() -> impl Strategy<Value = SnnModel> {
    (prop::collection::vec(1usize..70, 2..=4), 1u32..12)
        .prop_flat_map(|(widths, steps)| {
            let layers: Vec<_> = widths
                .windows(2)
                .map(|w| layer_strategy(w[0], w[1]))
                .collect();
            (layers, Just(steps))
        })
        .prop_map(|(layers, steps)| {
            let outputs = layers.last().unwrap().outputs;
            SnnModel::new(layers, steps, ModelMeta::defaults(outputs)).expect("valid random model")
        })
}

/// Features in [-1, 2), with about a third exactly zero (the sparse path).
fn batch_strategy(inputs: usize) -> impl Strategy<Value = (usize, Vec<f32>)> {
    prop_oneof![Just(0usize), Just(1usize), 2usize..11, 17usize..40].prop_flat_map(move |batch| {
        let feature = prop_oneof![1 => Just(0.0f32), 2 => -1.0f32..2.0];
        (Just(batch), prop::collection::vec(feature, batch * inputs))
    })
}

/// Runs `check` on `cases` inputs drawn from `strategy`, failing with the
/// minimal input proptest finds.
fn run_cases<S: Strategy>(
    cases: u32,
    strategy: S,
    check: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let mut runner = TestRunner::new(Config::with_cases(cases));
    if let Err(e) = runner.run(&strategy, check) {
        panic!("{e}");
    }
}

fn forward_equals_scalar(tier: SimdTier) {
    let strategy = model_strategy().prop_flat_map(|m| {
        let inputs = m.inputs();
        (Just(m), batch_strategy(inputs))
    });
    run_cases(64, strategy, |(model, (batch, x))| {
        let model = Arc::new(model);
        let (out_s, trace_s) = run_traced(Kernel::Scalar, &model, &x, batch);
        let (out_v, trace_v) = run_traced(Kernel::Simd(tier), &model, &x, batch);
        prop_assert_eq!(out_s.batch(), batch);
        prop_assert_eq!(out_v.batch(), batch);
        let n = batch * model.outputs();
        prop_assert_eq!(&out_s.spike_count[..n], &out_v.spike_count[..n]);
        prop_assert_eq!(&out_s.mem_last[..n], &out_v.mem_last[..n]);
        prop_assert_eq!(&out_s.probability[..n], &out_v.probability[..n]);
        prop_assert_eq!(trace_s, trace_v);
        Ok(())
    });
}

fn blocked_projection_equals_scalar_linear(tier: SimdTier) {
    let strategy = (1usize..40, 1usize..90, 0usize..11, any::<u64>());
    run_cases(64, strategy, |(inputs, outputs, batch, seed)| {
        let mut rng = seed;
        let mut next = || {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((rng >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        };
        let weight: Vec<f32> = (0..inputs * outputs).map(|_| next()).collect();
        let bias: Vec<f32> = (0..outputs).map(|_| next()).collect();
        let x: Vec<f32> = (0..batch * inputs)
            .map(|i| if i % 3 == 0 { 0.0 } else { next() })
            .collect();
        let layer = LifLayer::new(
            inputs,
            outputs,
            weight,
            bias,
            0.9,
            1.0,
            ResetMechanism::Subtract,
        );
        let packed = simd::PackedLayer::pack(&layer, simd::kernels::PROJECT_TILE_VECTORS);
        let mut cur = vec![Block::ZERO; batch * packed.vectors()];
        let mut cols = vec![0; simd::kernels::column_lists_len(batch, inputs)];
        simd::project(tier, &packed, &x, &mut cur, &mut cols);
        let mut expect = vec![0.0; outputs];
        for b in 0..batch {
            scalar::linear(&layer, &x[b * inputs..(b + 1) * inputs], &mut expect);
            let row: Vec<f32> = cur[b * packed.vectors()..(b + 1) * packed.vectors()]
                .iter()
                .flat_map(|v| v.0)
                .take(outputs)
                .collect();
            prop_assert_eq!(&row, &expect, "row {}", b);
        }
        Ok(())
    });
}

fn empty_batch_writes_nothing_and_reports_zero_rows(tier: SimdTier) {
    let layer = LifLayer::new(
        3,
        2,
        vec![0.5; 6],
        vec![0.0; 2],
        0.9,
        1.0,
        ResetMechanism::Subtract,
    );
    let model = Arc::new(SnnModel::new(vec![layer], 4, ModelMeta::defaults(2)).unwrap());
    for kernel in [Kernel::Scalar, Kernel::Simd(tier)] {
        let (out, trace) = run_traced(kernel, &model, &[], 0);
        assert_eq!(out.batch(), 0, "{kernel:?}");
        assert!(trace.layers.is_empty(), "{kernel:?}: no steps recorded");
        assert!(
            out.spike_count.iter().all(|&c| c == 0),
            "{kernel:?}: buffers untouched"
        );
    }
}

fn push_fired_lists_every_set_lane_for_every_mask(tier: SimdTier) {
    for bits in 0u32..=0xffff {
        let mut fast = vec![u32::MAX; 64];
        let mut table = vec![u32::MAX; 64];
        let n_fast = simd::push_fired(tier, 32, bits, &mut fast, 3);
        let n_table = simd::push_fired_table(32, bits, &mut table, 3);
        assert_eq!(n_fast, n_table, "count for {bits:#x}");
        assert_eq!(n_fast, 3 + bits.count_ones() as usize);
        assert_eq!(fast[3..n_fast], table[3..n_table], "lanes for {bits:#x}");
        let expect: Vec<u32> = (0..16)
            .filter(|l| bits & (1 << l) != 0)
            .map(|l| (32 + l) << simd::kernels::ROW_SHIFT)
            .collect();
        assert_eq!(fast[3..n_fast], expect[..], "lanes for {bits:#x}");
        assert_eq!(&fast[..3], &[u32::MAX; 3], "nothing before `count` written");
    }
}

per_tier! {
    forward_equals_scalar => forward_equals_scalar,
    blocked_projection_equals_scalar_linear => blocked_projection_equals_scalar_linear,
    empty_batch_writes_nothing_and_reports_zero_rows => empty_batch_writes_nothing_and_reports_zero_rows,
    push_fired_lists_every_set_lane_for_every_mask => push_fired_lists_every_set_lane_for_every_mask,
}

#[test]
fn this_cpu_runs_the_tier_detection_picks() {
    let tier = SimdTier::detect();
    assert!(tier.is_supported(), "{tier}");
    assert!(
        SimdTier::Portable.is_supported(),
        "every CPU has the portable tier"
    );
    let supported: Vec<SimdTier> = SimdTier::supported().collect();
    assert_eq!(
        supported[0], tier,
        "detection picks the widest supported tier"
    );
    println!("tiers supported here: {supported:?}");
}
