//! Model life cycle: the fallback scorer catches invalid model output, and
//! a hot swap takes effect at a tick boundary.

mod common;

use common::{contexts, decide_all, T0_NS};
use cx_domain::pipeline::{Decision, ScoreSource};
use cx_engine::{Engine, FallbackSource, ModelSource, DEFAULT_BASELINE_BYTES, DEFAULT_MODEL_BYTES};
use cx_model::SnnModel;
use std::sync::Arc;

/// The default model with `edit` applied to its output layer
/// (`weight`, `bias`), as file bytes.
fn edited_default(edit: impl Fn(&mut Vec<f32>, &mut Vec<f32>)) -> Arc<[u8]> {
    let model = SnnModel::from_bytes(DEFAULT_MODEL_BYTES).expect("bundled model");
    let mut layers = model.layers().to_vec();
    let last = layers.last_mut().expect("layers");
    edit(&mut last.weight, &mut last.bias);
    SnnModel::new(layers, model.steps(), model.meta().clone())
        .expect("still a valid model")
        .to_bytes()
        .into()
}

/// Output weights so large that the output membranes overflow to infinity:
/// a finite, loadable file whose every readout fails validation.
fn overflowing_model() -> Arc<[u8]> {
    edited_default(|weight, bias| {
        weight.fill(3.0e38);
        bias.fill(3.0e38);
    })
}

#[test]
fn invalid_model_output_goes_to_the_fallback_scorer_never_to_a_decision() {
    let mut engine = Engine::builder()
        .model(ModelSource::Bytes(overflowing_model()))
        .fallback(FallbackSource::Bytes(DEFAULT_BASELINE_BYTES.into()))
        .build()
        .expect("the file itself is valid");
    let ctxs = contexts(40, 1);
    let decisions = decide_all(&mut engine, &ctxs, T0_NS);
    assert_eq!(decisions.len(), ctxs.len());
    for d in &decisions {
        assert_eq!(d.source, ScoreSource::Fallback);
        for o in d.offers() {
            assert!(o.p_click.is_finite() && (0.0..=1.0).contains(&o.p_click));
        }
    }
    assert!(decisions.iter().any(|d| !d.offers().is_empty()));
    let stats = engine.stats();
    assert_eq!(stats.pipeline.fallback_rows, ctxs.len() as u64);
    assert_eq!(stats.pipeline.inferred_rows, 0);
    assert!(stats.pipeline.failed_batches > 0);
    assert!(
        stats.backends.iter().all(|b| b.failures > 0),
        "{:?}",
        stats.backends
    );
    assert_eq!(
        stats.cache.inserts, 0,
        "fallback scores are never cached as model output"
    );
}

#[test]
fn without_a_fallback_invalid_output_becomes_a_no_offer_decision() {
    let mut engine = Engine::builder()
        .model(ModelSource::Bytes(overflowing_model()))
        .fallback(FallbackSource::None)
        .build()
        .expect("engine");
    let decisions = decide_all(&mut engine, &contexts(10, 2), T0_NS);
    for d in &decisions {
        assert_eq!(d.source, ScoreSource::Failed);
        assert!(d.offers().is_empty());
        assert_eq!(d.no_bid.map(|c| c.label()), Some("scoring_failed"));
    }
    assert_eq!(engine.stats().pipeline.failed_rows, 10);
}

#[test]
fn a_swapped_model_serves_from_the_next_tick_and_the_cache_starts_over() {
    let mut engine = Engine::builder().build().expect("engine");
    let old_id = engine.model().id.clone();
    let ctxs = contexts(20, 3);
    let before = decide_all(&mut engine, &ctxs, T0_NS);
    // The same requests again: served from the cache.
    let cached = decide_all(&mut engine, &ctxs, T0_NS + 1);
    assert!(cached.iter().all(|d| d.source == ScoreSource::Cache));

    // A different but valid model: every output bias shifted.
    let shifted = edited_default(|_, bias| bias.iter_mut().for_each(|b| *b += 0.5));
    let info = engine
        .swap_model(
            ModelSource::Bytes(shifted),
            FallbackSource::Bytes(DEFAULT_BASELINE_BYTES.into()),
        )
        .expect("valid model");
    assert_ne!(info.id, old_id);
    assert_eq!(engine.model().id, old_id, "staged, not yet serving");
    let after = decide_all(&mut engine, &ctxs, T0_NS + 2);
    assert_eq!(engine.model().id, info.id, "applied at the tick boundary");
    assert!(
        after.iter().all(|d| d.source == ScoreSource::Model),
        "no decision of the old model is served from the cache"
    );
    let p = |ds: &[Decision]| -> Vec<f32> {
        ds.iter()
            .flat_map(|d| d.offers().iter().map(|o| o.p_click))
            .collect()
    };
    assert_ne!(p(&before), p(&after), "the new model scores differently");
}

#[test]
fn a_model_that_does_not_fit_is_refused_and_the_old_one_keeps_serving() {
    let mut engine = Engine::builder().build().expect("engine");
    let old_id = engine.model().id.clone();
    // A "fallback" file that is a spiking model, not a logistic baseline.
    let err = engine
        .swap_model(
            ModelSource::Bundled,
            FallbackSource::Bytes(overflowing_model()),
        )
        .unwrap_err();
    assert!(err.to_string().contains("fallback"), "{err}");
    let decisions = decide_all(&mut engine, &contexts(5, 4), T0_NS);
    assert_eq!(decisions.len(), 5);
    assert!(decisions.iter().all(|d| d.source == ScoreSource::Model));
    assert_eq!(engine.model().id, old_id);
}
