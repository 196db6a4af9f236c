//! Experiments served live: each request is scored by the model of the
//! arm GrowthBook's hashing puts it in, decisions carry the arm, feedback
//! is counted per arm, and a bad definition changes nothing.

mod common;

use common::{contexts, T0_NS};
use cx_domain::feedback::{Event, EventKind};
use cx_domain::pipeline::Decision;
use cx_engine::experiments::{ArmDef, ArmSource, ExperimentDef};
use cx_engine::{Engine, EngineConfig, FallbackSource, ModelSource, DEFAULT_MODEL_BYTES};
use cx_experiments::Experiment;
use cx_features::RequestContext;
use cx_model::SnnModel;
use cx_systems::Exploration;
use std::sync::Arc;

/// The bundled model with its output biases shifted by offer: a model
/// that ranks the offers differently, with the same offers and inputs.
fn other_model() -> Arc<[u8]> {
    let model = SnnModel::from_bytes(DEFAULT_MODEL_BYTES).expect("bundled model");
    let mut layers = model.layers().to_vec();
    let last = layers.last_mut().expect("layers");
    for (o, b) in last.bias.iter_mut().enumerate() {
        *b += if o == 3 { 0.5 } else { -0.2 };
    }
    SnnModel::new(layers, model.steps(), model.meta().clone())
        .expect("still a valid model")
        .to_bytes()
        .into()
}

/// The bundled model with its offer ids renumbered: it scores other offers.
fn foreign_model() -> Arc<[u8]> {
    let model = SnnModel::from_bytes(DEFAULT_MODEL_BYTES).expect("bundled model");
    let mut meta = model.meta().clone();
    meta.offer_ids.iter_mut().for_each(|id| *id += 100);
    SnnModel::new(model.layers().to_vec(), model.steps(), meta)
        .expect("a valid model")
        .to_bytes()
        .into()
}

fn engine(model: ModelSource) -> Engine {
    let mut config = EngineConfig::default();
    config.decide.exploration = Exploration::None;
    Engine::builder()
        .model(model)
        .fallback(FallbackSource::None)
        .config(config)
        .build()
        .expect("engine")
}

const SPLIT: &str = r#"{"key": "ranker-v2", "variations": ["control", "v2"], "hashVersion": 2}"#;

fn split() -> Experiment {
    Experiment::from_json(SPLIT).expect("experiment")
}

/// The split with arm 1 on the default model and arm 2 on `model`.
fn defs(model: Arc<[u8]>) -> Vec<ExperimentDef> {
    vec![ExperimentDef {
        experiment: split(),
        arms: vec![
            ArmDef { id: 1, model: None },
            ArmDef {
                id: 2,
                model: Some(ArmSource {
                    model: ModelSource::Bytes(model),
                    fallback: FallbackSource::None,
                }),
            },
        ],
    }]
}

/// Requests from users `user-0`, `user-1`, ...
fn requests(n: usize) -> Vec<RequestContext> {
    let mut ctxs = contexts(n, 7);
    for (u, ctx) in ctxs.iter_mut().enumerate() {
        ctx.user_id = format!("user-{u}");
    }
    ctxs
}

/// Decides every request (simulated or not), in order.
fn decide(engine: &mut Engine, ctxs: &[RequestContext], simulated: bool) -> Vec<Decision> {
    for ctx in ctxs {
        match simulated {
            true => engine.submit_simulated(ctx.clone()),
            false => engine.submit(ctx.clone()),
        }
        .expect("room");
    }
    engine.run_until_decided(T0_NS);
    let mut out: Vec<Decision> = engine.drain().collect();
    out.sort_by_key(|d| d.ticket);
    out
}

/// What a decision chose, by offer: id and click probability.
fn chosen(d: &Decision) -> Vec<(u64, u32)> {
    d.offers()
        .iter()
        .map(|o| (o.offer_id, o.p_click.to_bits()))
        .collect()
}

/// `ctxs` decided (simulated) by an engine serving the bundled model
/// alone and by one serving the other model alone; and an engine serving
/// both in the split, not yet run.
fn alone_and_both(ctxs: &[RequestContext]) -> (Engine, Vec<Decision>, Vec<Decision>) {
    let by_default = decide(&mut engine(ModelSource::Bundled), ctxs, true);
    let by_other = decide(&mut engine(ModelSource::Bytes(other_model())), ctxs, true);
    let mut both = engine(ModelSource::Bundled);
    both.set_experiments(&defs(other_model()))
        .expect("experiments");
    (both, by_default, by_other)
}

#[test]
fn each_request_is_decided_by_the_model_of_its_arm() {
    let ctxs = requests(400);
    let (mut both, by_default, by_other) = alone_and_both(&ctxs);
    let served = decide(&mut both, &ctxs, true);
    let exp = split();
    let mut per_arm = [0usize; 3];
    let mut differ = 0;
    for (i, d) in served.iter().enumerate() {
        let variation = exp.assign(&ctxs[i].user_id).variation_id;
        assert_eq!(usize::from(d.arm), variation + 1, "request {i}");
        per_arm[usize::from(d.arm)] += 1;
        let alone = if variation == 0 {
            &by_default
        } else {
            &by_other
        };
        assert_eq!(chosen(d), chosen(&alone[i]), "request {i}, arm {}", d.arm);
        differ += usize::from(chosen(&by_default[i]) != chosen(&by_other[i]));
    }
    // The two models disagree often, so the check above tells them apart.
    assert!(differ > 100, "the models chose alike in all but {differ}");
    assert!(per_arm[1] > 150 && per_arm[2] > 150, "{per_arm:?}");
    // The report names the arms and their models; simulated requests count
    // for nothing.
    let report = both.experiment_report();
    assert_eq!(report.len(), 1);
    assert_eq!(report[0].key, "ranker-v2");
    assert_eq!(report[0].weights, vec![0.5, 0.5]);
    let arms = &report[0].arms;
    let id = |bytes: &[u8]| cx_model::ModelId::of_bytes(bytes).to_string();
    assert_eq!(arms[0].model_id, id(DEFAULT_MODEL_BYTES));
    assert_eq!(arms[1].model_id, id(&other_model()));
    assert_eq!((arms[0].key.as_str(), arms[1].key.as_str()), ("0", "1"));
    assert!(arms.iter().all(|a| a.assigned == 0));
}

#[test]
fn cached_scores_stay_with_the_model_that_made_them() {
    // One context from many users: rows alike in both arms (the bundled
    // schema reads no user id), so only the model in the key keeps one
    // arm's cached scores from the other.
    let one = contexts(1, 11).remove(0);
    let ctxs: Vec<RequestContext> = (0..200)
        .map(|u| RequestContext {
            user_id: format!("user-{u}"),
            ..one.clone()
        })
        .collect();
    let (mut both, by_default, by_other) = alone_and_both(&ctxs);
    // Twice for real: the second time from the cache.
    decide(&mut both, &ctxs, false);
    let again = decide(&mut both, &ctxs, false);
    assert_eq!(both.counts().cache_hits, 200);
    let mut compared = [0; 3];
    for (i, d) in again.iter().enumerate() {
        let alone = if d.arm == 1 { &by_default } else { &by_other };
        for o in d.offers() {
            let same = alone[i].offers().iter().find(|a| a.offer_id == o.offer_id);
            if let Some(same) = same {
                assert_eq!(o.p_click, same.p_click, "request {i}, offer {}", o.offer_id);
                compared[usize::from(d.arm)] += 1;
            }
        }
    }
    assert!(compared[1] > 50 && compared[2] > 50, "{compared:?}");
}

#[test]
fn feedback_is_counted_for_the_arm_of_its_decision() {
    let ctxs = requests(300);
    let mut both = engine(ModelSource::Bundled);
    both.set_experiments(&defs(other_model()))
        .expect("experiments");
    let decided = decide(&mut both, &ctxs, false);
    let mut expected = [(0u64, 0u64, 0u64); 3];
    for (i, d) in decided.iter().enumerate() {
        expected[usize::from(d.arm)].0 += 1;
        if d.offers().is_empty() {
            continue;
        }
        let key = both.decision_key(d.ticket);
        let mut events = vec![Event::new(EventKind::Impression, key)];
        expected[usize::from(d.arm)].1 += 1;
        if i % 3 == 0 {
            events.push(Event::new(EventKind::Click, key));
            expected[usize::from(d.arm)].2 += 1;
        }
        both.feedback(&events, T0_NS + 1).expect("a small batch");
    }
    let report = both.experiment_report();
    for arm in &report[0].arms {
        let (assigned, impressions, clicks) = expected[usize::from(arm.arm)];
        assert_eq!(
            (arm.assigned, arm.impressions, arm.clicks),
            (assigned, impressions, clicks),
            "arm {}",
            arm.arm
        );
        assert_eq!(arm.decided, impressions);
    }
    assert!(report[0].arms.iter().all(|a| a.clicks > 10));
}

#[test]
fn a_bad_arm_changes_nothing_and_an_empty_list_ends_the_experiments() {
    let ctxs = requests(100);
    let mut both = engine(ModelSource::Bundled);
    both.set_experiments(&defs(other_model()))
        .expect("experiments");
    both.tick(T0_NS);
    let err = both
        .set_experiments(&defs(foreign_model()))
        .expect_err("a model of other offers");
    assert!(err.to_string().contains("same offers"), "{err}");
    // Arm ids must be unique.
    let mut twice = defs(other_model());
    twice[0].arms[1].id = 1;
    let err = both.set_experiments(&twice).expect_err("arm 1 twice");
    assert!(err.to_string().contains("arm id 1"), "{err}");
    // Still the first experiment.
    let decided = decide(&mut both, &ctxs, true);
    assert!(decided.iter().all(|d| d.arm == 1 || d.arm == 2));
    both.set_experiments(&[]).expect("no experiments");
    let decided = decide(&mut both, &ctxs, true);
    assert!(decided.iter().all(|d| d.arm == 0));
    assert!(both.experiment_report().is_empty());
}

#[test]
fn a_model_swap_keeps_the_experiments_and_their_counts() {
    let ctxs = requests(100);
    let mut both = engine(ModelSource::Bundled);
    both.set_experiments(&defs(other_model()))
        .expect("experiments");
    decide(&mut both, &ctxs, false);
    both.swap_model(ModelSource::Bundled, FallbackSource::None)
        .expect("the same model again");
    let decided = decide(&mut both, &ctxs, false);
    assert!(decided.iter().all(|d| d.arm == 1 || d.arm == 2));
    let assigned: u64 = both.experiment_report()[0]
        .arms
        .iter()
        .map(|a| a.assigned)
        .sum();
    assert_eq!(assigned, 200);
    // A new default model that scores other offers would strand the arm's.
    let err = both
        .swap_model(ModelSource::Bytes(foreign_model()), FallbackSource::None)
        .expect_err("the arm's model no longer fits");
    assert!(err.to_string().contains("same offers"), "{err}");
}

#[test]
fn requests_held_for_a_fuller_batch_follow_the_experiments_a_reload_leaves() {
    // Four requests ingested per tick, batches of 16, no waiting limit in
    // sight: the first tick's rows wait in the infer queue for more.
    let mut config = EngineConfig::default();
    config.decide.exploration = Exploration::None;
    config.batch.ingest_max = 4;
    config.batch.batch_max = 16;
    config.batch.wait_us_max = 1_000_000;
    let mut engine = Engine::builder()
        .fallback(FallbackSource::None)
        .config(config)
        .build()
        .expect("engine");
    engine
        .set_experiments(&defs(other_model()))
        .expect("experiments");
    let ctxs = requests(8);
    for ctx in &ctxs {
        engine.submit_simulated(ctx.clone()).expect("room");
    }
    engine.tick(T0_NS);
    assert_eq!(engine.drain().count(), 0, "held for a fuller batch");
    // The arm model goes away while they wait; they are decided by the
    // default model, in no experiment.
    engine.set_experiments(&[]).expect("no experiments");
    engine.run_until_decided(T0_NS);
    let decided: Vec<Decision> = engine.drain().collect();
    assert_eq!(decided.len(), 8);
    assert!(decided.iter().all(|d| d.arm == 0), "{decided:?}");
    let mut alone = engine_alone();
    let by_default = decide(&mut alone, &ctxs, true);
    let mut decided = decided;
    decided.sort_by_key(|d| d.ticket);
    for (d, a) in decided.iter().zip(&by_default) {
        assert_eq!(chosen(d), chosen(a));
    }
}

fn engine_alone() -> Engine {
    engine(ModelSource::Bundled)
}
