//! The decide logic as a pure function: hard rules, the blend and its
//! explanation, ranking, pricing and `commit`, checked on small catalogs
//! built in code, without a World.

use cx_domain::catalog::{Catalog, Channels, FrequencyCap, ImpRules, OfferSpec};
use cx_domain::pipeline::{ChosenOffer, Decision, NoBidCause, ScoreSource, Ticket};
use cx_domain::store::{
    BudgetLedger, FrequencyConfig, FrequencyStore, PosteriorConfig, Posteriors,
};
use cx_features::{DeviceType, RequestContext};
use cx_systems::logic::{
    bid_price, commit, decide, CommitRefusals, DecideInputs, ExploreScratch, NS_PER_S,
};
use cx_systems::{DecideConfig, Exploration, ObjectiveWeights};
use proptest::prelude::*;

/// Index of each factor in `ChosenOffer::factors` (`FACTOR_KINDS` order).
const SEGMENT: usize = 0;
const BEHAVIOR: usize = 1;
const CONTEXT: usize = 2;
const MODEL: usize = 3;
const BUSINESS: usize = 4;
const EXPLORATION: usize = 5;

/// 2023-11-14T22:13:20Z, in unix ns.
const NOW_NS: u64 = 1_700_000_000 * NS_PER_S;

/// A request every offer from [`offer`] serves: a phone on a 300x250 site
/// placement in the USA, in segment `s1`, on an `IAB1-2` page, no floor.
fn ctx() -> RequestContext {
    RequestContext {
        user_id: "user-1".into(),
        user_segments: vec!["s1".into(), "s9".into()],
        device_type: DeviceType::Phone,
        country: "USA".into(),
        is_app: false,
        categories: vec!["IAB1-2".into()],
        placement_width: 300,
        placement_height: 250,
        bid_floor: 0.0,
        timestamp: (NOW_NS / NS_PER_S) as i64,
        ..RequestContext::default()
    }
}

/// An untargeted offer worth bidding on: with `p = 0.5` its value is
/// `1000 * 0.5 * 0.1 * 20 = 1000` CPM, so the bid is its `max_bid_cpm` (5).
fn offer(id: u64) -> OfferSpec {
    let mut o = OfferSpec::new(id);
    o.conversion_rate = 0.1;
    o.revenue = 20.0;
    o.max_bid_cpm = 5.0;
    o
}

/// A config whose score is exactly the click probability: click weight 1,
/// every other weight and bonus 0, and no exploration.
fn click_only() -> DecideConfig {
    DecideConfig {
        top_k: 3,
        weights: ObjectiveWeights {
            click: 1.0,
            conversion: 0.0,
            revenue: 0.0,
            lifetime_value: 0.0,
            engagement: 0.0,
            retention: 0.0,
        },
        segment_bonus: 0.0,
        context_bonus: 0.0,
        fatigue_weight: 0.0,
        boost_weight: 0.0,
        exploration: Exploration::None,
        ..DecideConfig::default()
    }
}

/// Everything `decide` reads, owned.
struct Fixture {
    ctx: RequestContext,
    blocked: Vec<String>,
    imp: ImpRules,
    probabilities: Vec<f32>,
    source: ScoreSource,
    columns: Vec<Option<u32>>,
    catalog: Catalog,
    frequency: FrequencyStore,
    budget: BudgetLedger,
    posteriors: Posteriors,
    config: DecideConfig,
    user_hash: u64,
    ticket: Ticket,
    seed: u64,
    now_ns: u64,
}

impl Fixture {
    /// Offer `i` scored by model column `i` with probability `probabilities[i]`.
    fn new(offers: Vec<OfferSpec>, probabilities: Vec<f32>) -> Self {
        let catalog = Catalog::from_offers(offers).expect("valid test catalog");
        let budgets: Vec<Option<f64>> = (0..catalog.len())
            .map(|i| catalog.daily_budget(i))
            .collect();
        Self {
            ctx: ctx(),
            blocked: Vec::new(),
            imp: ImpRules::default(),
            columns: (0..catalog.len() as u32).map(Some).collect(),
            probabilities,
            source: ScoreSource::Model,
            budget: BudgetLedger::new(&budgets).expect("valid budgets"),
            frequency: FrequencyStore::new(FrequencyConfig { capacity: 64 }).unwrap(),
            posteriors: Posteriors::new(catalog.ids(), PosteriorConfig { half_life_s: 0.0 })
                .expect("valid posteriors"),
            catalog,
            config: click_only(),
            user_hash: 42,
            ticket: Ticket(7),
            seed: 2024,
            now_ns: NOW_NS,
        }
    }

    fn inputs(&self) -> DecideInputs<'_, FrequencyStore, BudgetLedger> {
        DecideInputs {
            ctx: &self.ctx,
            blocked_domains: &self.blocked,
            imp: &self.imp,
            probabilities: &self.probabilities,
            source: self.source,
            columns: &self.columns,
            catalog: &self.catalog,
            frequency: &self.frequency,
            budget: &self.budget,
            posteriors: &self.posteriors,
            config: &self.config,
            user_hash: self.user_hash,
            ticket: self.ticket,
            seed: self.seed,
            now_ns: self.now_ns,
            stored: None,
        }
    }

    fn decide(&self) -> Decision {
        let mut out = Decision::default();
        out.reset(self.ticket, false);
        decide(&self.inputs(), &mut ExploreScratch::default(), &mut out);
        out
    }

    /// Commits a copy of `decision`; in process nothing may be withdrawn.
    fn commit(&mut self, decision: &Decision) {
        let mut committed = *decision;
        let refusals = commit(
            &mut committed,
            &self.catalog,
            &self.config,
            &mut self.frequency,
            &mut self.budget,
            self.user_hash,
            self.now_ns,
        );
        assert_eq!(
            refusals,
            CommitRefusals::default(),
            "decide checked the winner"
        );
        assert_eq!(&committed, decision, "nothing withdrawn in process");
    }

    /// Decides and commits, as the decide system does; returns the decision.
    fn decide_and_commit(&mut self) -> Decision {
        let d = self.decide();
        self.commit(&d);
        d
    }

    /// The window (ns) the pipeline counts offer `i`'s impressions in.
    fn window_ns(&self, i: usize) -> u64 {
        u64::from(
            self.catalog
                .frequency_cap(i)
                .map_or(self.config.fatigue_window_s, |c| c.window_s),
        ) * NS_PER_S
    }

    /// The user's impressions of offer `i` now.
    fn seen(&self, i: usize) -> u32 {
        self.frequency.count(
            self.user_hash,
            self.catalog.ids()[i],
            self.now_ns,
            self.window_ns(i),
        )
    }
}

fn ids(d: &Decision) -> Vec<u64> {
    d.offers().iter().map(|o| o.offer_id).collect()
}

fn excluded(d: &Decision, cause: NoBidCause) -> u16 {
    d.excluded[cause.index()]
}

fn total_excluded(d: &Decision) -> u32 {
    d.excluded.iter().map(|&n| u32::from(n)).sum()
}

fn the_offer(d: &Decision, id: u64) -> ChosenOffer {
    *d.offers()
        .iter()
        .find(|o| o.offer_id == id)
        .unwrap_or_else(|| panic!("offer {id} not chosen: {d:?}"))
}

fn close(got: f64, want: f64, what: &str) {
    let tol = 1e-6 * want.abs().max(1.0);
    assert!((got - want).abs() <= tol, "{what}: got {got}, want {want}");
}

// ---------------------------------------------------------------- the blend

#[test]
fn model_prediction_is_the_weighted_objective_blend() {
    let mut o = offer(10);
    o.conversion_rate = 0.2;
    o.revenue = 30.0;
    o.lifetime_value = 150.0;
    o.engagement = 0.6;
    o.retention = 0.3;
    o.max_bid_cpm = 50.0;
    let mut f = Fixture::new(vec![o], vec![0.35]);
    f.config = DecideConfig {
        weights: ObjectiveWeights {
            click: 1.5,
            conversion: 0.7,
            revenue: 0.4,
            lifetime_value: 0.3,
            engagement: 0.2,
            retention: 0.9,
        },
        revenue_scale: 12.0,
        ltv_scale: 80.0,
        ..DecideConfig::default()
    };
    let d = f.decide();
    assert_eq!(d.eligible, 1);
    assert_eq!(d.no_bid, None);
    let chosen = the_offer(&d, 10);

    // Computed independently, in f64, from the documented terms.
    let (p, cvr) = (0.35_f64, f64::from(0.2_f32));
    let w = [1.5, 0.7, 0.4, 0.3, 0.2, 0.9_f64];
    let terms = [
        p,
        p * cvr,
        p * cvr * 30.0 / 12.0,
        p * cvr * 150.0 / 80.0,
        p * f64::from(0.6_f32),
        p * f64::from(0.3_f32),
    ];
    let mut blend = 0.0;
    for k in 0..6 {
        let want = f64::from(w[k] as f32) * terms[k];
        close(
            f64::from(chosen.objectives[k]),
            want,
            &format!("objective {k}"),
        );
        blend += want;
    }
    close(f64::from(chosen.factors[MODEL]), blend, "ModelPrediction");
    assert_eq!(
        chosen.objectives.iter().sum::<f32>(),
        chosen.factors[MODEL],
        "the objective terms sum to the ModelPrediction factor"
    );
    assert_eq!(
        chosen.factors.iter().sum::<f32>(),
        chosen.score,
        "the score is the sum of the factors, in order"
    );
    assert_eq!(chosen.p_click, 0.35);
    assert_eq!(chosen.catalog_index, 0);
}

#[test]
fn every_chosen_offer_scores_the_sum_of_its_factors() {
    let mut offers: Vec<OfferSpec> = (1..=5).map(offer).collect();
    offers[0].segments = vec!["s1".into()];
    offers[1].categories = vec!["IAB1".into()];
    offers[2].boost = -0.7;
    offers[3].lifetime_value = 400.0;
    offers[4].engagement = 1.0;
    let mut f = Fixture::new(offers, vec![0.9, 0.3, 0.5, 0.12, 0.77]);
    f.config = DecideConfig {
        top_k: 5,
        ..DecideConfig::default()
    };
    // Some fatigue on offer 3 (index 2).
    for _ in 0..4 {
        let w = f.window_ns(2);
        f.frequency.record(f.user_hash, 3, f.now_ns, w);
    }
    let d = f.decide();
    assert_eq!(d.offers().len(), 5);
    for o in d.offers() {
        assert_eq!(
            o.factors.iter().sum::<f32>(),
            o.score,
            "offer {}",
            o.offer_id
        );
        assert_eq!(o.objectives.iter().sum::<f32>(), o.factors[MODEL]);
        let sum = o.explanation().map(|x| x.contribution).sum::<f32>();
        assert_eq!(sum, o.score);
    }
    assert!(the_offer(&d, 3).factors[BEHAVIOR] < 0.0);
}

#[test]
fn segment_and_context_bonuses_appear_exactly_when_targeted() {
    let mut offers: Vec<OfferSpec> = (1..=6).map(offer).collect();
    offers[0].segments = vec!["s1".into()]; // the user's
    offers[1].segments = vec!["s2".into()]; // not the user's
    offers[2].categories = vec!["IAB1".into()]; // covers the page's IAB1-2
    offers[3].categories = vec!["IAB11".into()]; // does not
    offers[4].segments = vec!["s0".into(), "s9".into()];
    offers[4].categories = vec!["IAB1-2".into()];
    // offers[5]: no targeting at all.
    let mut f = Fixture::new(offers, vec![0.5; 6]);
    f.config.top_k = 6;
    f.config.segment_bonus = 0.03;
    f.config.context_bonus = 0.05;
    let d = f.decide();
    assert_eq!(d.offers().len(), 6);
    let want = [
        (1, 0.03, 0.0),
        (2, 0.0, 0.0),
        (3, 0.0, 0.05),
        (4, 0.0, 0.0),
        (5, 0.03, 0.05),
        (6, 0.0, 0.0),
    ];
    for (id, segment, context) in want {
        let o = the_offer(&d, id);
        assert_eq!(o.factors[SEGMENT], segment, "offer {id} segment bonus");
        assert_eq!(o.factors[CONTEXT], context, "offer {id} context bonus");
    }
    // The bonuses move the ranking: equal p, so the doubly targeted offer
    // leads, then the context match, then the segment match.
    assert_eq!(&ids(&d)[..3], &[5, 3, 1]);
}

#[test]
fn business_rule_factor_is_boost_weight_times_boost() {
    let mut offers: Vec<OfferSpec> = (1..=3).map(offer).collect();
    offers[0].boost = 0.5;
    offers[1].boost = -0.75;
    offers[2].boost = 0.0;
    let mut f = Fixture::new(offers, vec![0.5; 3]);
    f.config.boost_weight = 0.04;
    let d = f.decide();
    assert_eq!(the_offer(&d, 1).factors[BUSINESS], 0.04 * 0.5);
    assert_eq!(the_offer(&d, 2).factors[BUSINESS], 0.04 * -0.75);
    assert_eq!(the_offer(&d, 3).factors[BUSINESS], 0.0);
    assert_eq!(ids(&d), [1, 3, 2], "the boost reorders equal p");
}

#[test]
fn fatigue_counts_the_users_impressions_and_saturates() {
    let mut f = Fixture::new(vec![offer(1)], vec![0.5]);
    f.config.fatigue_weight = 0.2;
    f.config.fatigue_impressions = 4;
    let fresh = f.decide();
    assert_eq!(the_offer(&fresh, 1).factors[BEHAVIOR], 0.0);
    for seen in 1..=6u32 {
        f.decide_and_commit();
        assert_eq!(f.seen(0), seen);
        let o = the_offer(&f.decide(), 1);
        let want = -0.2 * (seen as f32 / 4.0).min(1.0);
        assert_eq!(o.factors[BEHAVIOR], want, "after {seen} impressions");
    }
    // An unknown user has no history, so no fatigue.
    f.user_hash = 0;
    assert_eq!(the_offer(&f.decide(), 1).factors[BEHAVIOR], 0.0);
    // The fatigue window (no cap here) ends, and the history with it.
    f.user_hash = 42;
    f.now_ns += u64::from(f.config.fatigue_window_s) * NS_PER_S;
    assert_eq!(the_offer(&f.decide(), 1).factors[BEHAVIOR], 0.0);
}

#[test]
fn the_thompson_bonus_is_the_blend_at_the_drawn_rate_less_the_blend_at_p() {
    let offers: Vec<OfferSpec> = (1..=4).map(offer).collect();
    let probabilities = vec![0.5, 0.05, 0.2, 0.9];
    let mut f = Fixture::new(offers, probabilities.clone());
    f.config.top_k = 4;
    f.config.weights.conversion = 0.5;
    f.config.exploration = Exploration::Thompson;
    let (mut below, mut above) = (0, 0);
    for ticket in 0..300 {
        f.ticket = Ticket(ticket);
        let d = f.decide();
        assert_eq!(d.offers().len(), 4);
        for o in d.offers() {
            let p = probabilities[o.catalog_index as usize];
            let bonus = o.factors[EXPLORATION];
            let model = o.factors[MODEL];
            // blend(x) = model * x / p here, so bonus = model * (ratio - 1)
            // with the drawn ratio in [0, 1 / p]: the blend at min(1, p r).
            let ratio = bonus / model + 1.0;
            assert!(ratio >= -1e-5, "ratio {ratio}");
            assert!(p * ratio <= 1.0 + 1e-5, "p r = {}", p * ratio);
            assert_eq!(o.factors.iter().sum::<f32>(), o.score);
            below += usize::from(ratio < 1.0);
            above += usize::from(ratio > 1.0);
        }
        assert!(d.propensity > 0.0 && d.propensity <= 1.0);
    }
    assert!(
        below > 200 && above > 200,
        "draws on both sides: {below} {above}"
    );
    f.config.exploration = Exploration::None;
    for ticket in 0..50 {
        f.ticket = Ticket(ticket);
        let d = f.decide();
        assert_eq!(d.propensity, 1.0);
        for o in d.offers() {
            assert_eq!(o.factors[EXPLORATION], 0.0);
        }
    }
}

// ---------------------------------------------------------------- ranking

#[test]
fn top_k_is_best_first_with_ties_in_catalog_order() {
    let offers: Vec<OfferSpec> = (1..=5).map(offer).collect();
    let mut f = Fixture::new(offers, vec![0.2, 0.6, 0.4, 0.6, 0.1]);
    let d = f.decide();
    assert_eq!(ids(&d), [2, 4, 3], "ties (2 and 4) keep catalog order");
    assert_eq!(
        d.eligible, 5,
        "eligible counts every offer, not just the top k"
    );
    assert_eq!(total_excluded(&d), 0);
    let scores: Vec<f32> = d.offers().iter().map(|o| o.score).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");

    f.config.top_k = 1;
    let d = f.decide();
    assert_eq!(ids(&d), [2]);
    assert_eq!(d.eligible, 5);

    f.config.top_k = 8;
    let d = f.decide();
    assert_eq!(ids(&d), [2, 4, 3, 1, 5], "fewer offers than k: all of them");

    // Equal scores throughout: catalog order.
    f.probabilities = vec![0.3; 5];
    assert_eq!(ids(&f.decide()), [1, 2, 3, 4, 5]);
}

#[test]
fn the_top_offer_is_priced_and_carries_its_index() {
    let mut offers: Vec<OfferSpec> = (1..=3).map(offer).collect();
    offers[2].max_bid_cpm = 9.0;
    let mut f = Fixture::new(offers, vec![0.1, 0.2, 0.3]);
    f.config.bid_shading = 0.25;
    let d = f.decide();
    let top = d.offers()[0];
    assert_eq!(top.offer_id, 3);
    assert_eq!(top.catalog_index, 2);
    assert_eq!(top.p_click, 0.3);
    // value = 1000 * 0.3 * 0.1 * 20 = 600; bid = 0.25 * 600 = 150, capped at 9.
    assert_eq!(top.bid_cpm, 9.0);
    // offer 1: value = 1000 * 0.1 * 0.1 * 20 = 200 -> 0.25 * 200 = 50 -> cap 5.
    assert_eq!(the_offer(&d, 1).bid_cpm, 5.0);
}

// ---------------------------------------------------------------- hard rules

/// Offer 1 serves the request; offer 2 is changed by `restrict`. Returns
/// the decision, after checking that offer 2 alone was excluded, by `cause`.
fn excluded_by(restrict: impl FnOnce(&mut OfferSpec), cause: NoBidCause) -> Decision {
    let mut blocked = offer(2);
    restrict(&mut blocked);
    let f = Fixture::new(vec![offer(1), blocked], vec![0.5, 0.9]);
    let d = f.decide();
    assert_eq!(ids(&d), [1], "offer 2 is excluded by {cause}");
    assert_eq!(d.eligible, 1);
    assert_eq!(excluded(&d, cause), 1, "{cause}: {:?}", d.excluded);
    assert_eq!(total_excluded(&d), 1, "only {cause}: {:?}", d.excluded);
    assert_eq!(d.no_bid, None);
    d
}

#[test]
fn device_type_excludes() {
    excluded_by(
        |o| o.device_types = vec![DeviceType::PersonalComputer, DeviceType::Tablet],
        NoBidCause::DeviceType,
    );
}

#[test]
fn country_excludes() {
    excluded_by(|o| o.countries = vec!["GBR".into()], NoBidCause::Country);
}

#[test]
fn placement_size_excludes() {
    excluded_by(|o| o.sizes = vec![(728, 90)], NoBidCause::PlacementSize);
}

#[test]
fn channel_excludes() {
    excluded_by(|o| o.channels = Channels::App, NoBidCause::Channel);
}

#[test]
fn targeting_that_matches_does_not_exclude() {
    let mut o = offer(2);
    o.device_types = vec![DeviceType::Phone];
    o.countries = vec!["USA".into()];
    o.sizes = vec![(300, 250)];
    o.channels = Channels::Site;
    let f = Fixture::new(vec![offer(1), o], vec![0.5, 0.9]);
    let d = f.decide();
    assert_eq!(ids(&d), [2, 1]);
    assert_eq!(total_excluded(&d), 0);
}

#[test]
fn an_offer_without_a_model_column_is_not_scored() {
    let mut f = Fixture::new(vec![offer(1), offer(2), offer(3)], vec![0.5, 0.9]);
    f.columns = vec![Some(0), None, Some(7)]; // column 7 is past the row
    let d = f.decide();
    assert_eq!(ids(&d), [1]);
    assert_eq!(excluded(&d, NoBidCause::NotScored), 2);
    assert_eq!(total_excluded(&d), 2);
    // A columns slice shorter than the catalog leaves the rest unscored.
    f.columns = vec![Some(1)];
    let d = f.decide();
    assert_eq!(ids(&d), [1]);
    assert_eq!(the_offer(&d, 1).p_click, 0.9, "read from column 1");
    assert_eq!(excluded(&d, NoBidCause::NotScored), 2);
}

#[test]
fn value_or_cap_below_the_floor_excludes() {
    let mut cheap = offer(2); // value 1000 * 0.001 * 0.1 * 20 = 2 CPM
    cheap.max_bid_cpm = 100.0;
    let mut capped = offer(3); // value 1000 CPM, but bids at most 2.5
    capped.max_bid_cpm = 2.5;
    let mut rich = offer(1);
    rich.max_bid_cpm = 1000.0;
    let mut f = Fixture::new(vec![rich, cheap, capped], vec![0.5, 0.001, 0.5]);
    f.ctx.bid_floor = 3.0;
    let d = f.decide();
    assert_eq!(ids(&d), [1]);
    assert_eq!(excluded(&d, NoBidCause::BelowFloor), 2);
    assert_eq!(total_excluded(&d), 2);
    // floor + shading * (value - floor) = 3 + 0.5 * (1000 - 3)
    close(d.offers()[0].bid_cpm, 3.0 + 0.5 * 997.0, "shaded bid");
    // Without the floor every offer bids, each at most its cap.
    f.ctx.bid_floor = 0.0;
    let d = f.decide();
    assert_eq!(d.eligible, 3);
    close(the_offer(&d, 2).bid_cpm, 1.0, "0.5 * value 2");
    assert_eq!(the_offer(&d, 3).bid_cpm, 2.5);
}

#[test]
fn an_offer_worth_nothing_is_not_bid() {
    let mut free = offer(2);
    free.revenue = 0.0;
    let f = Fixture::new(vec![offer(1), free], vec![0.5, 0.9]);
    let d = f.decide();
    assert_eq!(ids(&d), [1]);
    assert_eq!(excluded(&d, NoBidCause::BelowFloor), 1);
}

#[test]
fn the_frequency_cap_excludes_after_n_impressions() {
    let mut capped = offer(2);
    capped.frequency_cap = Some(FrequencyCap {
        impressions: 3,
        window_s: 3600,
    });
    let mut f = Fixture::new(vec![offer(1), capped], vec![0.5, 0.9]);
    for n in 0..3 {
        let d = f.decide_and_commit();
        assert_eq!(ids(&d)[0], 2, "impression {n} is still allowed");
        assert_eq!(f.seen(1), n + 1);
    }
    let d = f.decide();
    assert_eq!(ids(&d), [1], "capped after 3");
    assert_eq!(excluded(&d, NoBidCause::FrequencyCapped), 1);
    assert_eq!(total_excluded(&d), 1);
    // Another user is not capped.
    f.user_hash = 43;
    assert_eq!(ids(&f.decide())[0], 2);
    // Nor is this user once the cap's window has passed.
    f.user_hash = 42;
    f.now_ns += 3600 * NS_PER_S - 1;
    assert_eq!(ids(&f.decide()), [1], "one ns before the window ends");
    f.now_ns += 1;
    assert_eq!(ids(&f.decide())[0], 2, "the window has ended");
}

#[test]
fn an_unknown_user_is_never_capped() {
    let mut capped = offer(2);
    capped.frequency_cap = Some(FrequencyCap {
        impressions: 1,
        window_s: 3600,
    });
    let mut f = Fixture::new(vec![offer(1), capped], vec![0.5, 0.9]);
    f.user_hash = 0;
    let before = f.frequency.clone();
    for _ in 0..5 {
        assert_eq!(ids(&f.decide_and_commit())[0], 2);
    }
    assert_eq!(
        f.frequency, before,
        "nothing is recorded for an unknown user"
    );
    // Even with impressions recorded under hash 0, decide ignores them.
    for _ in 0..5 {
        f.frequency.record(0, 2, f.now_ns, 3600 * NS_PER_S);
    }
    let d = f.decide();
    assert_eq!(ids(&d)[0], 2);
    assert_eq!(excluded(&d, NoBidCause::FrequencyCapped), 0);
    assert_eq!(the_offer(&d, 2).factors[BEHAVIOR], 0.0);
}

#[test]
fn a_budget_smaller_than_the_bid_excludes() {
    // Both bid 5 CPM, so one impression costs 0.005.
    let mut poor = offer(2);
    poor.daily_budget = Some(0.004);
    let mut one_shot = offer(3);
    one_shot.daily_budget = Some(0.005);
    let mut f = Fixture::new(vec![offer(1), poor, one_shot], vec![0.5, 0.9, 0.8]);
    let d = f.decide();
    assert_eq!(ids(&d), [3, 1]);
    assert_eq!(excluded(&d, NoBidCause::BudgetExhausted), 1);
    // Offer 3 wins once and spends its whole budget...
    f.commit(&d);
    assert_eq!(f.budget.remaining(2, f.now_ns), Some(0.0));
    let d = f.decide();
    assert_eq!(ids(&d), [1]);
    assert_eq!(excluded(&d, NoBidCause::BudgetExhausted), 2);
    // ...until the next UTC day.
    f.now_ns += 86_400 * NS_PER_S;
    assert_eq!(ids(&f.decide()), [3, 1]);
}

#[test]
fn failed_scoring_excludes_every_offer() {
    let offers: Vec<OfferSpec> = (1..=4).map(offer).collect();
    let mut f = Fixture::new(offers, vec![0.5; 4]);
    for source in [ScoreSource::Failed, ScoreSource::None] {
        f.source = source;
        let d = f.decide();
        assert!(d.offers().is_empty(), "{source:?}");
        assert_eq!(d.eligible, 0);
        assert_eq!(excluded(&d, NoBidCause::ScoringFailed), 4, "{source:?}");
        assert_eq!(total_excluded(&d), 4);
        assert_eq!(d.no_bid, Some(NoBidCause::ScoringFailed));
        assert_eq!(d.source, source);
    }
    for source in [
        ScoreSource::Model,
        ScoreSource::Cache,
        ScoreSource::Fallback,
    ] {
        f.source = source;
        let d = f.decide();
        assert_eq!(d.offers().len(), 3, "{source:?} scores");
        assert_eq!(d.source, source);
    }
}

#[test]
fn no_bid_names_the_commonest_cause() {
    let mut offers: Vec<OfferSpec> = (1..=5).map(offer).collect();
    offers[0].countries = vec!["GBR".into()];
    offers[1].countries = vec!["DEU".into()];
    offers[2].device_types = vec![DeviceType::ConnectedTv];
    offers[3].countries = vec!["FRA".into()];
    offers[4].channels = Channels::App;
    let f = Fixture::new(offers, vec![0.5; 5]);
    let d = f.decide();
    assert!(d.offers().is_empty());
    assert_eq!(d.eligible, 0);
    assert_eq!(excluded(&d, NoBidCause::Country), 3);
    assert_eq!(excluded(&d, NoBidCause::DeviceType), 1);
    assert_eq!(excluded(&d, NoBidCause::Channel), 1);
    assert_eq!(d.no_bid, Some(NoBidCause::Country));

    // A tie goes to the cause listed first in NoBidCause::ALL.
    let mut offers: Vec<OfferSpec> = (1..=2).map(offer).collect();
    offers[0].channels = Channels::App;
    offers[1].device_types = vec![DeviceType::Tablet];
    let d = Fixture::new(offers, vec![0.5; 2]).decide();
    assert_eq!(d.no_bid, Some(NoBidCause::DeviceType));
}

#[test]
fn an_empty_catalog_gives_no_offers() {
    match Catalog::from_offers(Vec::new()) {
        // The catalog refuses to be empty, so `decide` never sees one.
        Err(_) => {}
        Ok(catalog) => {
            let f = Fixture {
                catalog,
                columns: Vec::new(),
                ..Fixture::new(vec![offer(1)], vec![0.5])
            };
            assert_eq!(f.decide().no_bid, Some(NoBidCause::NoOffers));
        }
    }
}

// ---------------------------------------------------------------- pricing

#[test]
fn the_bid_is_the_shaded_value_between_floor_and_cap() {
    assert_eq!(bid_price(10.0, 2.0, 100.0, 0.5), Some(6.0));
    assert_eq!(bid_price(10.0, 2.0, 100.0, 0.0), Some(2.0), "no shading up");
    assert_eq!(
        bid_price(10.0, 2.0, 100.0, 1.0),
        Some(10.0),
        "the full value"
    );
    assert_eq!(bid_price(10.0, 2.0, 5.0, 1.0), Some(5.0), "capped");
    assert_eq!(
        bid_price(2.0, 2.0, 5.0, 0.5),
        Some(2.0),
        "value at the floor"
    );
    assert_eq!(
        bid_price(10.0, 2.0, 2.0, 0.5),
        Some(2.0),
        "cap at the floor"
    );
    assert_eq!(bid_price(10.0, 0.0, 100.0, 0.3), Some(3.0), "no floor");
}

#[test]
fn no_bid_below_the_floor() {
    assert_eq!(bid_price(1.9, 2.0, 100.0, 0.5), None, "value below floor");
    assert_eq!(bid_price(10.0, 2.0, 1.5, 0.5), None, "cap below floor");
    assert_eq!(bid_price(0.0, 0.0, 100.0, 0.5), None, "a zero bid");
    assert_eq!(bid_price(10.0, 0.0, 100.0, 0.0), None, "shaded to zero");
    assert_eq!(bid_price(-1.0, 0.0, 100.0, 0.5), None, "negative value");
    assert_eq!(bid_price(10.0, 0.0, 0.0, 0.5), None, "zero cap");
    assert_eq!(bid_price(10.0, 0.0, -1.0, 0.5), None, "negative cap");
    assert_eq!(bid_price(10.0, 0.0, f64::NAN, 0.5), None, "NaN cap");
}

#[test]
fn a_floor_that_is_not_finite_and_positive_is_no_floor() {
    let unfloored = bid_price(10.0, 0.0, 100.0, 0.5);
    assert_eq!(unfloored, Some(5.0));
    for floor in [f64::NAN, -3.0, -0.0, f64::INFINITY, f64::NEG_INFINITY] {
        assert_eq!(
            bid_price(10.0, floor, 100.0, 0.5),
            unfloored,
            "floor {floor}"
        );
    }
}

#[test]
fn a_value_that_is_not_finite_is_no_bid() {
    for value in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        assert_eq!(bid_price(value, 1.0, 100.0, 0.5), None, "value {value}");
        assert_eq!(bid_price(value, 0.0, 100.0, 0.5), None, "value {value}");
    }
}

#[test]
fn shading_is_clamped_to_the_unit_interval() {
    assert_eq!(
        bid_price(10.0, 2.0, 100.0, 1.5),
        bid_price(10.0, 2.0, 100.0, 1.0)
    );
    assert_eq!(bid_price(10.0, 2.0, 100.0, 7.0), Some(10.0));
    assert_eq!(bid_price(10.0, 2.0, 100.0, -0.5), Some(2.0));
    assert_eq!(bid_price(10.0, 2.0, 100.0, f64::NEG_INFINITY), Some(2.0));
    assert_eq!(bid_price(10.0, 2.0, 100.0, f64::INFINITY), Some(10.0));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn a_bid_lies_between_the_floor_and_the_cap(
        value in -1e4f64..1e6,
        floor in -100f64..1e3,
        max_bid in -100f64..1e3,
        shading in -0.5f64..1.5,
    ) {
        let effective_floor = floor.max(0.0);
        match bid_price(value, floor, max_bid, shading) {
            Some(b) => {
                prop_assert!(b > 0.0, "bid {b}");
                prop_assert!(b >= floor, "bid {b} below floor {floor}");
                prop_assert!(b <= max_bid.max(floor), "bid {b} above cap {max_bid}");
                prop_assert!(b <= value * (1.0 + 1e-12), "bid {b} above value {value}");
            }
            None => {
                // No bid only when one of the documented reasons holds.
                let shaded = effective_floor
                    + shading.clamp(0.0, 1.0) * (value - effective_floor);
                prop_assert!(
                    value < effective_floor
                        || max_bid < effective_floor
                        || shaded.min(max_bid) <= 0.0,
                    "no bid for value {value} floor {floor} cap {max_bid} shading {shading}"
                );
            }
        }
    }

    #[test]
    fn a_positive_floor_below_value_and_cap_always_bids(
        floor in 0.01f64..100.0,
        above in 0f64..1e4,
        cap_above in 0f64..1e3,
        shading in 0f64..=1.0,
    ) {
        let b = bid_price(floor + above, floor, floor + cap_above, shading);
        prop_assert!(b.is_some());
        let b = b.unwrap();
        prop_assert!(b >= floor && b <= floor + cap_above);
    }
}

// ---------------------------------------------------------------- commit

/// Three eligible offers, each with a budget, ranked 3, 2, 1.
fn three_ranked() -> Fixture {
    let offers: Vec<OfferSpec> = (1..=3)
        .map(|id| {
            let mut o = offer(id);
            o.daily_budget = Some(100.0);
            o
        })
        .collect();
    Fixture::new(offers, vec![0.3, 0.6, 0.9])
}

#[test]
fn commit_charges_only_the_top_offer() {
    let mut f = three_ranked();
    let d = f.decide();
    assert_eq!(ids(&d), [3, 2, 1]);
    let top = d.offers()[0];
    assert_eq!(top.bid_cpm, 5.0);
    f.commit(&d);
    assert_eq!(f.seen(2), 1, "one impression for the top offer");
    assert_eq!(f.seen(1), 0);
    assert_eq!(f.seen(0), 0);
    assert_eq!(f.budget.spent_micros(2, f.now_ns), 5_000, "bid_cpm / 1000");
    assert_eq!(f.budget.spent_micros(1, f.now_ns), 0);
    assert_eq!(f.budget.spent_micros(0, f.now_ns), 0);
    assert_eq!(f.frequency.stats().records, 1);
    f.commit(&d);
    assert_eq!(f.seen(2), 2);
    assert_eq!(f.budget.spent_micros(2, f.now_ns), 10_000);
}

#[test]
fn commit_for_an_unknown_user_spends_budget_only() {
    let mut f = three_ranked();
    f.user_hash = 0;
    let freq_before = f.frequency.clone();
    let d = f.decide_and_commit();
    assert_eq!(f.frequency, freq_before);
    assert_eq!(f.budget.spent_micros(2, f.now_ns), 5_000);
    assert!(!d.offers().is_empty());
}

#[test]
fn a_simulated_decision_changes_nothing() {
    let mut f = three_ranked();
    let (freq_before, budget_before) = (f.frequency.clone(), f.budget.clone());
    let mut d = Decision::default();
    d.reset(Ticket(9), true);
    decide(&f.inputs(), &mut ExploreScratch::default(), &mut d);
    assert!(d.simulated, "decide keeps the simulation flag");
    assert_eq!(d.ticket, Ticket(9), "decide keeps the ticket");
    assert_eq!(
        ids(&d),
        [3, 2, 1],
        "a simulated decision is the same decision"
    );
    f.commit(&d);
    assert_eq!(f.frequency, freq_before);
    assert_eq!(f.budget, budget_before);
}

#[test]
fn an_empty_decision_changes_nothing() {
    let mut f = three_ranked();
    f.source = ScoreSource::Failed;
    let (freq_before, budget_before) = (f.frequency.clone(), f.budget.clone());
    let d = f.decide();
    assert!(d.offers().is_empty());
    f.commit(&d);
    f.commit(&Decision::default());
    assert_eq!(f.frequency, freq_before);
    assert_eq!(f.budget, budget_before);
}

// ---------------------------------------------------------------- determinism

fn busy_fixture() -> Fixture {
    let mut offers: Vec<OfferSpec> = (1..=6).map(offer).collect();
    offers[0].segments = vec!["s1".into()];
    offers[1].categories = vec!["IAB1".into()];
    offers[2].boost = 0.3;
    offers[3].countries = vec!["GBR".into()];
    offers[4].frequency_cap = Some(FrequencyCap {
        impressions: 2,
        window_s: 60,
    });
    offers[5].lifetime_value = 90.0;
    let mut f = Fixture::new(offers, vec![0.4, 0.35, 0.5, 0.9, 0.45, 0.41]);
    f.config = DecideConfig {
        top_k: 6,
        ..DecideConfig::default()
    };
    f
}

#[test]
fn decide_is_deterministic() {
    let mut f = busy_fixture();
    let first = f.decide();
    assert_eq!(first.offers().len(), 5, "all but the GBR offer");
    assert_eq!(first, f.decide());
    // An output left dirty by another request gives the same decision.
    let mut reused = Decision::default();
    reused.reset(f.ticket, false);
    f.ticket = Ticket(8);
    decide(&f.inputs(), &mut ExploreScratch::default(), &mut reused);
    f.ticket = first.ticket;
    decide(&f.inputs(), &mut ExploreScratch::default(), &mut reused);
    assert_eq!(reused, first);
    // A different ticket changes only the exploration draws.
    f.ticket = Ticket(8);
    let other = f.decide();
    assert_eq!(other.offers().len(), 5);
    let mut draws_differ = false;
    for o in other.offers() {
        let same = the_offer(&first, o.offer_id);
        assert_eq!(o.factors[..EXPLORATION], same.factors[..EXPLORATION]);
        draws_differ |= o.factors[EXPLORATION] != same.factors[EXPLORATION];
    }
    assert!(draws_differ);
}

#[test]
fn decide_changes_no_state() {
    let mut f = busy_fixture();
    // Give the stores some state first.
    for _ in 0..3 {
        f.decide_and_commit();
    }
    let (freq_before, budget_before) = (f.frequency.clone(), f.budget.clone());
    for ticket in 0..20 {
        f.ticket = Ticket(ticket);
        let _ = f.decide();
    }
    assert_eq!(f.frequency, freq_before);
    assert_eq!(f.budget, budget_before);
}

#[test]
fn thompson_draws_follow_the_seed_and_the_ticket_only() {
    let mut f = busy_fixture();
    f.config.exploration = Exploration::Thompson;
    let bonuses = |f: &Fixture| -> Vec<f32> {
        f.decide()
            .offers()
            .iter()
            .map(|o| o.factors[EXPLORATION])
            .collect()
    };
    let first = bonuses(&f);
    assert_eq!(first, bonuses(&f), "same seed and ticket, same draws");
    f.seed += 1;
    assert_ne!(first, bonuses(&f), "another seed");
    f.seed -= 1;
    f.ticket = Ticket(f.ticket.0 + 1);
    assert_ne!(first, bonuses(&f), "another ticket");
}

#[test]
fn a_blocked_advertiser_is_not_eligible_and_the_next_offer_wins() {
    let mut blocked_offer = offer(1);
    blocked_offer.adomain = vec!["shop.example".into(), "other.example".into()];
    let mut kept = offer(2);
    kept.adomain = vec!["fine.example".into()];
    let mut f = Fixture::new(vec![blocked_offer, kept], vec![0.9, 0.2]);
    assert_eq!(ids(&f.decide())[0], 1, "unblocked, the better offer wins");
    f.blocked = vec!["other.example".into()];
    let d = f.decide();
    assert_eq!(ids(&d), [2], "the blocked advertiser's offer is out");
    assert_eq!(excluded(&d, NoBidCause::BlockedAdvertiser), 1);
    f.blocked = vec!["fine.example".into(), "shop.example".into()];
    let d = f.decide();
    assert!(d.offers().is_empty());
    assert_eq!(d.no_bid, Some(NoBidCause::BlockedAdvertiser));
    // Domains match exactly: a suffix or another case is not blocked.
    f.blocked = vec!["example".into(), "SHOP.EXAMPLE".into()];
    assert_eq!(ids(&f.decide())[0], 1);
}

/// Commits `d` as the decide system does, after another worker may have
/// changed the stores since `decide` read them.
fn commit_after_others(f: &mut Fixture, d: &mut Decision) -> CommitRefusals {
    commit(
        d,
        &f.catalog,
        &f.config,
        &mut f.frequency,
        &mut f.budget,
        f.user_hash,
        f.now_ns,
    )
}

#[test]
fn a_cap_reached_by_another_worker_withdraws_the_winner_and_commits_the_next() {
    let mut offers: Vec<OfferSpec> = (1..=3).map(offer).collect();
    offers[2].frequency_cap = Some(FrequencyCap {
        impressions: 2,
        window_s: 3600,
    });
    let mut f = Fixture::new(offers, vec![0.3, 0.6, 0.9]);
    f.frequency.record(f.user_hash, 3, f.now_ns, f.window_ns(2));
    let mut d = f.decide();
    assert_eq!(ids(&d), [3, 2, 1], "one impression of 2 left for offer 3");
    // Another worker shows offer 3 to the same user meanwhile.
    f.frequency.record(f.user_hash, 3, f.now_ns, f.window_ns(2));
    let refusals = commit_after_others(&mut f, &mut d);
    assert_eq!(
        refusals,
        CommitRefusals {
            budget: 0,
            frequency: 1
        }
    );
    assert_eq!(ids(&d), [2, 1], "withdrawn, the others move up");
    assert_eq!(excluded(&d, NoBidCause::FrequencyCapped), 1);
    assert_eq!(f.seen(2), 2, "the cap holds");
    assert_eq!(f.seen(1), 1, "the next offer is the one shown and counted");
    assert_eq!(
        f.budget.spent_micros(2, f.now_ns),
        0,
        "the withdrawn offer's spend undone"
    );
    assert_eq!(f.budget.spent_micros(1, f.now_ns), 5_000);
}

#[test]
fn a_budget_spent_by_another_worker_withdraws_the_winner() {
    let mut offers: Vec<OfferSpec> = (1..=3).map(offer).collect();
    offers[2].daily_budget = Some(0.005); // one bid of 5 CPM
    offers[1].daily_budget = Some(0.005);
    let mut f = Fixture::new(offers, vec![0.3, 0.6, 0.9]);
    let mut d = f.decide();
    assert_eq!(ids(&d), [3, 2, 1]);
    // Other workers spend both budgets meanwhile.
    f.budget.spend(2, 0.005, f.now_ns).expect("within budget");
    f.budget.spend(1, 0.005, f.now_ns).expect("within budget");
    let refusals = commit_after_others(&mut f, &mut d);
    assert_eq!(refusals.budget, 2);
    assert_eq!(ids(&d), [1]);
    assert_eq!(excluded(&d, NoBidCause::BudgetExhausted), 2);
    assert_eq!(f.seen(2), 0, "a withdrawn offer records no impression");
    assert_eq!(f.seen(1), 0);
    assert_eq!(f.seen(0), 1);
    // With nothing left to show, the decision is a no-bid with its cause.
    let mut only = offer(1);
    only.daily_budget = Some(0.005);
    let mut f = Fixture::new(vec![only], vec![0.9]);
    let mut d = f.decide();
    assert_eq!(ids(&d), [1]);
    f.budget.spend(0, 0.005, f.now_ns).expect("within budget");
    assert_eq!(commit_after_others(&mut f, &mut d).budget, 1);
    assert!(d.offers().is_empty());
    assert_eq!(d.no_bid, Some(NoBidCause::BudgetExhausted));
    assert_eq!(f.seen(0), 0);
}
