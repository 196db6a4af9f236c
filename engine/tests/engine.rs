//! The engine end to end: submit, tick, poll, on the bundled model and catalog.

mod common;

use common::{contexts, decide_all, MS, T0_NS};
use cx_domain::pipeline::{Decision, NoBidCause, ScoreSource, FACTOR_KINDS};
use cx_engine::{Engine, EngineConfig, Error, FallbackSource, ModelSource};
use cx_features::RequestContext;

#[test]
fn every_request_gets_one_explained_decision() {
    let mut engine = Engine::builder().seed(3).build().expect("engine");
    let ctxs = contexts(300, 1);
    let decisions = decide_all(&mut engine, &ctxs, T0_NS);
    assert_eq!(decisions.len(), ctxs.len());
    assert_eq!(engine.in_flight(), 0);
    let mut with_offers = 0;
    for (d, ctx) in decisions.iter().zip(&ctxs) {
        assert_eq!(
            d.source,
            ScoreSource::Model,
            "first sight of each row is the model's"
        );
        let offers = d.offers();
        assert!(offers.len() <= engine.config().decide.top_k);
        assert_eq!(offers.is_empty(), d.no_bid.is_some());
        for pair in offers.windows(2) {
            assert!(pair[0].score >= pair[1].score, "best first");
        }
        for o in offers {
            let sum: f32 = o.factors.iter().sum();
            assert!((sum - o.score).abs() <= 1e-6, "{sum} vs {}", o.score);
            let model: f32 = o.objectives.iter().sum();
            let i = FACTOR_KINDS
                .iter()
                .position(|k| k.name() == "ModelPrediction")
                .unwrap();
            assert!((model - o.factors[i]).abs() <= 1e-6);
            assert!((0.0..=1.0).contains(&o.p_click));
            assert!(
                o.bid_cpm >= ctx.bid_floor,
                "bid {} under floor {}",
                o.bid_cpm,
                ctx.bid_floor
            );
        }
        with_offers += usize::from(!offers.is_empty());
    }
    assert!(
        with_offers > ctxs.len() / 2,
        "only {with_offers} requests got an offer"
    );
    let stats = engine.stats();
    assert_eq!(stats.pipeline.decided, ctxs.len() as u64);
    assert_eq!(stats.pipeline.inferred_rows, ctxs.len() as u64);
    assert_eq!(stats.latency_of("total").unwrap().count, ctxs.len() as u64);
}

#[test]
fn same_seed_and_clock_give_the_same_decisions_and_the_seed_matters() {
    let ctxs = contexts(120, 2);
    let run = |seed| {
        let mut engine = Engine::builder().seed(seed).build().expect("engine");
        decide_all(&mut engine, &ctxs, T0_NS)
    };
    let a = run(5);
    assert_eq!(a, run(5));
    let b = run(6);
    assert_ne!(a, b, "the exploration draw depends on the seed");
}

#[test]
fn overload_is_an_explicit_error_and_loses_nothing_accepted() {
    let config = EngineConfig {
        in_flight_max: 8,
        ..EngineConfig::default()
    };
    let mut engine = Engine::builder().config(config).build().expect("engine");
    let ctxs = contexts(10, 3);
    let mut tickets = Vec::new();
    for ctx in &ctxs[..8] {
        tickets.push(engine.submit(ctx.clone()).expect("room"));
    }
    let err = engine.submit(ctxs[8].clone()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Overloaded {
                in_flight: 8,
                capacity: 8
            }
        ),
        "{err}"
    );
    engine.tick(T0_NS);
    // Decided but not polled: still in flight, still refused.
    assert!(engine.submit(ctxs[9].clone()).is_err());
    let polled: Vec<_> = engine.drain().map(|d| d.ticket).collect();
    assert_eq!(polled, tickets);
    assert!(
        engine.submit(ctxs[9].clone()).is_ok(),
        "room again after polling"
    );
    assert_eq!(engine.stats().overloaded, 2);
}

#[test]
fn the_cache_serves_repeats_until_the_hour_ends_or_the_model_changes() {
    // No exploration: the two decisions then rank the same offers, and
    // their probabilities can be compared offer for offer.
    let mut config = EngineConfig::default();
    config.decide.exploration = cx_engine::systems::Exploration::None;
    let mut engine = Engine::builder().config(config).build().expect("engine");
    let mut ctx = contexts(1, 4).remove(0);
    // A request stamped 10 minutes into an hour, decided at that time.
    let hour_s = (T0_NS / 1_000_000_000) as i64;
    ctx.timestamp = hour_s + 600;
    let at = |s: i64| (s as u64) * 1_000_000_000;
    let first = decide_all(&mut engine, &[ctx.clone()], at(hour_s + 600));
    let again = decide_all(&mut engine, &[ctx.clone()], at(hour_s + 601));
    assert_eq!(first[0].source, ScoreSource::Model);
    assert_eq!(again[0].source, ScoreSource::Cache);
    let p = |d: &Decision| {
        d.offers()
            .iter()
            .map(|o| (o.offer_id, o.p_click))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        p(&first[0]),
        p(&again[0]),
        "a hit serves the same probabilities"
    );
    // Past the end of the request's hour the row's time features are stale.
    let late = decide_all(&mut engine, &[ctx.clone()], at(hour_s + 3600));
    assert_ne!(late[0].source, ScoreSource::Cache);
    let stats = engine.stats();
    assert_eq!(stats.cache.hits, 1);
    assert!(stats.cache.uncacheable >= 1, "{:?}", stats.cache);
}

#[test]
fn a_bad_model_file_leaves_the_running_model_serving() {
    let mut engine = Engine::builder().build().expect("engine");
    let id = engine.model().id.clone();
    let err = engine
        .swap_model(
            ModelSource::Path("/nonexistent/model.safetensors".into()),
            FallbackSource::None,
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/model.safetensors"),
        "{err}"
    );
    let garbage = ModelSource::Bytes(b"not a model".to_vec().into());
    assert!(engine.swap_model(garbage, FallbackSource::None).is_err());
    let d = decide_all(&mut engine, &contexts(5, 5), T0_NS);
    assert_eq!(d.len(), 5);
    assert_eq!(engine.model().id, id);
}

#[test]
fn simulation_decides_alike_and_spends_nothing() {
    let ctxs = contexts(50, 6);
    let mut real = Engine::builder().seed(1).build().expect("engine");
    let mut sim = Engine::builder().seed(1).build().expect("engine");
    for ctx in &ctxs {
        real.submit(ctx.clone()).unwrap();
        sim.submit_simulated(ctx.clone()).unwrap();
    }
    real.run_until_decided(T0_NS);
    sim.run_until_decided(T0_NS);
    let r: Vec<Decision> = real.drain().collect();
    let s: Vec<Decision> = sim.drain().collect();
    for (a, b) in r.iter().zip(&s) {
        assert!(b.simulated && !a.simulated);
    }
    assert_eq!(s[0].offers(), r[0].offers(), "same state, same decision");
    assert_eq!(
        sim.stats().cache.inserts,
        0,
        "simulation writes no cache entries"
    );
    assert!(real.stats().cache.inserts > 0);
    // Repeating a simulated request never changes its decision: nothing is spent.
    let repeat = |engine: &mut Engine| {
        engine.submit_simulated(ctxs[0].clone()).unwrap();
        engine.run_until_decided(T0_NS + MS);
        engine.poll().unwrap()
    };
    let once = repeat(&mut sim);
    for _ in 0..20 {
        let d = repeat(&mut sim);
        assert_eq!(d.offers().len(), once.offers().len());
        for (x, y) in d.offers().iter().zip(once.offers()) {
            assert_eq!(
                (x.offer_id, x.bid_cpm, x.factors[1]),
                (y.offer_id, y.bid_cpm, y.factors[1])
            );
        }
    }
}

#[test]
fn a_user_shown_an_offer_repeatedly_is_capped_or_fatigued() {
    let mut engine = Engine::builder().seed(2).build().expect("engine");
    let mut ctx = contexts(1, 7).remove(0);
    ctx.user_id = "repeat-user".into();
    let mut shown = std::collections::HashMap::<u64, u32>::new();
    let mut fatigue_seen = false;
    for i in 0..60 {
        let d = decide_all(&mut engine, &[ctx.clone()], T0_NS + i * MS);
        if let Some(top) = d[0].offers().first() {
            *shown.entry(top.offer_id).or_default() += 1;
            fatigue_seen |= top.factors[1] < 0.0;
        }
    }
    assert!(
        fatigue_seen,
        "repeat impressions must show up as a BehavioralSignal penalty"
    );
    let catalog = engine.catalog();
    for (&offer, &n) in &shown {
        let i = catalog.index_of(offer).unwrap();
        if let Some(cap) = catalog.frequency_cap(i) {
            assert!(
                n <= cap.impressions,
                "offer {offer} shown {n} times, cap {}",
                cap.impressions
            );
        }
    }
}

#[test]
fn requests_nothing_fits_get_a_cause() {
    let mut engine = Engine::builder().build().expect("engine");
    let mut ctx = contexts(1, 8).remove(0);
    ctx.bid_floor = 900.0; // above every offer's max bid
    let d = decide_all(&mut engine, &[ctx], T0_NS);
    assert!(d[0].offers().is_empty());
    assert_eq!(d[0].no_bid, Some(NoBidCause::BelowFloor));
}

#[test]
fn served_probabilities_equal_the_dense_evaluation_path_bit_for_bit() {
    use cx_engine::backends::{BackendKind, Dispatcher, FallbackPolicy};
    use cx_features::FeatureNorm;
    use cx_model::Readout;
    use std::sync::Arc;

    let mut engine = Engine::builder().build().expect("engine");
    let mut ctxs = contexts(64, 9);
    // A fixed time, so the dense rows below see the same time features.
    for ctx in &mut ctxs {
        ctx.timestamp = (T0_NS / 1_000_000_000) as i64;
    }
    let decisions = decide_all(&mut engine, &ctxs, T0_NS);

    // The path `cx eval` and the trainer use: dense rows, normalised, through the dispatcher.
    let model = Arc::new(cx_engine::default_model().expect("model"));
    // The schema the model reads (v2: without a store, every user's defaults).
    let schema = cx_engine::model_schema::schema_of(model.meta()).expect("schema");
    let norm = FeatureNorm::from_json(&model.meta().extra["cx.feature_norm"]).expect("norm");
    let mut x = vec![0.0f32; ctxs.len() * schema.width()];
    for (ctx, row) in ctxs.iter().zip(x.chunks_exact_mut(schema.width())) {
        schema.extract(ctx, row).expect("extract");
        norm.apply(row).expect("norm");
    }
    let mut dispatcher = Dispatcher::new(
        model.clone(),
        BackendKind::Scalar,
        64,
        FallbackPolicy::default(),
    )
    .unwrap();
    let mut out = Readout::with_capacity(64, model.outputs());
    dispatcher
        .infer(&x, ctxs.len(), &mut out, 0)
        .expect("dense scalar");

    let mut compared = 0;
    for (b, d) in decisions.iter().enumerate() {
        for o in d.offers() {
            let column = model
                .meta()
                .offer_ids
                .iter()
                .position(|&id| id == o.offer_id)
                .unwrap();
            assert_eq!(
                o.p_click,
                out.probability_row(b)[column],
                "request {b}, offer {}",
                o.offer_id
            );
            compared += 1;
        }
    }
    assert!(compared > 64, "compared {compared} probabilities");
}

#[test]
fn decided_requests_hand_their_contexts_back_up_to_the_in_flight_limit() {
    let config = EngineConfig {
        in_flight_max: 8,
        ..EngineConfig::default()
    };
    let mut engine = Engine::builder().config(config).build().expect("engine");
    assert_eq!(
        engine.spare_context(),
        RequestContext::default(),
        "none spare before anything is decided"
    );
    let ctxs = contexts(8, 5);
    let mut spares = Vec::new();
    for round in 0..3 {
        for ctx in &ctxs {
            engine.submit(ctx.clone()).expect("room");
        }
        engine.tick(T0_NS + round * MS);
        assert_eq!(engine.drain().count(), ctxs.len());
        // Each context comes back with its values (the timestamp as the
        // engine filled it in) and its storage; then none is left.
        spares.clear();
        spares.extend((0..ctxs.len()).map(|_| engine.spare_context()));
        for (spare, ctx) in spares.iter().zip(&ctxs) {
            let as_sent = RequestContext {
                timestamp: ctx.timestamp,
                ..spare.clone()
            };
            assert_eq!(&as_sent, ctx, "round {round}");
            assert!(spare.user_id.capacity() >= ctx.user_id.len());
        }
        assert_eq!(
            engine.spare_context().user_id,
            "",
            "at most one per request"
        );
    }
    // A host that never takes them: the spares stop at the limit.
    for round in 3..6 {
        for ctx in &ctxs {
            engine.submit(ctx.clone()).expect("room");
        }
        engine.tick(T0_NS + round * MS);
        assert_eq!(engine.drain().count(), ctxs.len());
    }
    assert!(ctxs.iter().all(|c| !c.user_id.is_empty()));
    let kept = std::iter::from_fn(|| Some(engine.spare_context()))
        .take_while(|c| !c.user_id.is_empty())
        .take(100)
        .count();
    assert_eq!(kept, 8, "24 decided, the in-flight limit kept");
}
