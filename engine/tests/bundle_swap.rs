//! Swapping a whole bundle (model, fallback, catalog, decision settings)
//! with `Engine::swap_bundle`: all or nothing, and daily budgets and
//! frequency counts carry over by offer id, so a swap never re-opens a
//! spent budget or a reached cap, whatever order the new catalog lists its
//! offers in.

mod common;

use common::{contexts, decide_all, T0_NS};
use cx_domain::catalog::{Catalog, FrequencyCap, OfferSpec};
use cx_domain::pipeline::Decision;
use cx_domain::store::{BudgetBackend, Budgets, SharedStores};
use cx_engine::{Bundle, Engine, EngineConfig, FallbackSource, ModelSource};
use cx_features::RequestContext;

/// The bundled model's offers.
const IDS: std::ops::RangeInclusive<u64> = 1000..=1015;

/// A bid is 1.0 CPM (the cap), so each win spends 0.001: three wins each.
const BUDGET: f64 = 0.003;

fn offer(id: u64) -> OfferSpec {
    OfferSpec {
        conversion_rate: 0.5,
        revenue: 10.0,
        daily_budget: Some(BUDGET),
        ..OfferSpec::new(id)
    }
}

fn catalog(ids: impl IntoIterator<Item = u64>, edit: impl Fn(&mut OfferSpec)) -> Catalog {
    let offers = ids
        .into_iter()
        .map(|id| {
            let mut o = offer(id);
            edit(&mut o);
            o
        })
        .collect();
    Catalog::from_offers(offers).expect("a valid catalog")
}

/// Requests with no floor (every offer can bid its cap).
fn requests(n: usize, seed: u64) -> Vec<RequestContext> {
    contexts(n, seed)
        .into_iter()
        .map(|c| RequestContext {
            bid_floor: 0.0,
            ..c
        })
        .collect()
}

fn winners(decisions: &[Decision]) -> Vec<u64> {
    decisions
        .iter()
        .filter_map(|d| d.offers().first().map(|o| o.offer_id))
        .collect()
}

/// Spend today per offer id, in micros, as the engine's budget store sees it.
fn spent_by_id(engine: &Engine, now_ns: u64) -> Vec<(u64, u64)> {
    let budget = engine.world().resource::<BudgetBackend>();
    let mut out: Vec<(u64, u64)> = engine
        .catalog()
        .ids()
        .iter()
        .enumerate()
        .map(|(i, &id)| (id, (budget.spent(i, now_ns) * 1e6).round() as u64))
        .collect();
    out.sort_unstable();
    out
}

/// The bundled model with `catalog`.
fn bundle(catalog: Catalog) -> Bundle {
    Bundle {
        catalog: Some(catalog),
        ..Bundle::model(ModelSource::Bundled, FallbackSource::Auto)
    }
}

/// Decides batches until no request wins an offer (every budget spent).
fn spend_everything(engine: &mut Engine, now_ns: u64) {
    for round in 0..40 {
        let won = winners(&decide_all(engine, &requests(64, 100 + round), now_ns));
        if won.is_empty() {
            return;
        }
    }
    panic!("budgets of {BUDGET} should run out within 40 rounds of 64 requests");
}

#[test]
fn a_swapped_catalog_keeps_every_spent_budget_by_offer_id() {
    let mut engine = Engine::builder()
        .catalog(catalog(IDS, |_| {}))
        .build()
        .expect("engine");
    spend_everything(&mut engine, T0_NS);
    let spent = spent_by_id(&engine, T0_NS);
    assert!(spent.iter().all(|&(_, s)| s == 3_000), "{spent:?}");

    // The same offers listed backwards, and one new offer: only the new one
    // may win (it has no model column, so it is never scored by the model;
    // what matters is that the old offers stay closed).
    let reversed = catalog(IDS.rev(), |_| {});
    engine
        .swap_bundle(bundle(reversed))
        .expect("a valid bundle");
    let after = decide_all(&mut engine, &requests(64, 7), T0_NS + 1);
    assert_eq!(engine.catalog().ids()[0], 1015, "the new catalog serves");
    assert_eq!(
        winners(&after),
        Vec::<u64>::new(),
        "no spent budget re-opens after the swap"
    );
    assert_eq!(spent_by_id(&engine, T0_NS + 1), spent);

    // A raised budget gives each offer exactly the difference.
    let raised = catalog(IDS, |o| o.daily_budget = Some(2.0 * BUDGET));
    engine.swap_bundle(bundle(raised)).expect("a valid bundle");
    spend_everything(&mut engine, T0_NS + 2);
    let spent = spent_by_id(&engine, T0_NS + 2);
    assert!(spent.iter().all(|&(_, s)| s == 6_000), "{spent:?}");
}

#[test]
fn frequency_counts_follow_the_offer_id_through_a_reordered_catalog() {
    let capped = |o: &mut OfferSpec| {
        o.daily_budget = None;
        o.frequency_cap = Some(FrequencyCap {
            impressions: 1,
            window_s: 86_400,
        });
    };
    // Offers 1000..=1007 can show; 1008..=1015 target a country no
    // request comes from.
    let first = catalog(IDS, |o| {
        capped(o);
        if o.id >= 1008 {
            o.countries = vec!["ZZZ".into()];
        }
    });
    let mut engine = Engine::builder().catalog(first).build().expect("engine");
    let one_user = |n, seed| -> Vec<RequestContext> {
        requests(n, seed)
            .into_iter()
            .map(|c| RequestContext {
                user_id: "u-1".into(),
                ..c
            })
            .collect()
    };
    let mut shown = winners(&decide_all(&mut engine, &one_user(32, 1), T0_NS));
    shown.sort_unstable();
    assert_eq!(shown, (1000..=1007).collect::<Vec<_>>(), "each once");

    // The showable offers move to the other half of the list.
    let second = catalog((1008..=1015).chain(1000..=1007), |o| {
        capped(o);
        if o.id >= 1008 {
            o.countries = vec!["ZZZ".into()];
        }
    });
    engine.swap_bundle(bundle(second)).expect("a valid bundle");
    let after = decide_all(&mut engine, &one_user(32, 2), T0_NS + 1);
    assert_eq!(
        winners(&after),
        Vec::<u64>::new(),
        "the user reached every cap before the swap"
    );
}

#[test]
fn a_bundle_that_fails_changes_nothing() {
    let mut engine = Engine::builder()
        .catalog(catalog(IDS, |_| {}))
        .build()
        .expect("engine");
    let model = engine.model().id.clone();
    spend_everything(&mut engine, T0_NS);
    let spent = spent_by_id(&engine, T0_NS);

    // A good catalog with a model file that is not one.
    let bad_model = Bundle {
        model: ModelSource::Bytes(b"not a model".as_slice().into()),
        ..bundle(catalog(IDS.rev(), |_| {}))
    };
    assert!(engine.swap_bundle(bad_model).is_err());
    // A good model with a catalog it scores no offer of.
    let disjoint = bundle(catalog(1..=4, |_| {}));
    let err = engine.swap_bundle(disjoint).expect_err("nothing scored");
    assert!(
        err.to_string().contains("none of them in the catalog"),
        "{err}"
    );
    // Decision settings out of range.
    let mut decide = EngineConfig::default().decide;
    decide.top_k = 0;
    let bad_decide = Bundle {
        decide: Some(decide),
        ..bundle(catalog(IDS.rev(), |_| {}))
    };
    assert!(engine.swap_bundle(bad_decide).is_err());

    let after = decide_all(&mut engine, &requests(16, 9), T0_NS + 1);
    assert_eq!(after.len(), 16, "still serving");
    assert_eq!(engine.model().id, model);
    assert_eq!(engine.catalog().ids()[0], 1000, "the old catalog serves");
    assert_eq!(spent_by_id(&engine, T0_NS + 1), spent);
}

#[test]
fn workers_sharing_a_bank_keep_budgets_by_id_while_one_has_swapped() {
    let first = catalog(IDS, |_| {});
    let config = EngineConfig::default();
    let stores = SharedStores::new(&first, config.frequency_config(), config.lease_config())
        .expect("stores");
    let build = |c: &Catalog| {
        Engine::builder()
            .catalog(c.clone())
            .shared_stores(stores.clone())
            .build()
            .expect("engine")
    };
    let mut a = build(&first);
    let mut b = build(&first);
    spend_everything(&mut a, T0_NS);
    spend_everything(&mut b, T0_NS);
    let bank = stores.bank();
    let granted: Vec<u64> = (0..16)
        .map(|slot| bank.granted_micros(slot, T0_NS))
        .collect();
    assert!(granted.iter().all(|&g| g == 3_000), "{granted:?}");

    // Worker a swaps to the reversed catalog; b still runs the old one.
    a.swap_bundle(bundle(catalog(IDS.rev(), |_| {})))
        .expect("a valid bundle");
    assert!(winners(&decide_all(&mut a, &requests(64, 3), T0_NS + 1)).is_empty());
    assert!(winners(&decide_all(&mut b, &requests(64, 4), T0_NS + 1)).is_empty());
    let after: Vec<u64> = (0..16)
        .map(|slot| bank.granted_micros(slot, T0_NS))
        .collect();
    assert_eq!(after, granted, "nothing granted twice, nothing re-opened");
    assert_eq!(bank.offers(), 16, "the same ids keep their slots");
}
