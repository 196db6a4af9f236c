//! The exploration policies through the decide logic, without a World:
//! factors that still add up to the score under every policy, propensities
//! in `(0, 1]`, epsilon-greedy's exact propensity, and Thompson sampling
//! learning from feedback fed through the posterior store.

use cx_domain::catalog::{Catalog, ImpRules, OfferSpec};
use cx_domain::pipeline::{Decision, ScoreSource, Ticket};
use cx_domain::store::{
    mix64, BudgetLedger, FrequencyConfig, FrequencyStore, PosteriorConfig, Posteriors,
};
use cx_features::{DeviceType, RequestContext};
use cx_systems::logic::{decide, DecideInputs, ExploreScratch, NS_PER_S};
use cx_systems::{DecideConfig, Exploration};
use proptest::prelude::*;

const EXPLORATION: usize = 5;
const MODEL: usize = 3;
const NOW_NS: u64 = 1_700_000_000 * NS_PER_S;

/// An untargeted offer every request can get, with a small boost so that
/// scores differ by more than the model term.
fn offer(id: u64, boost: f32) -> OfferSpec {
    let mut o = OfferSpec::new(id);
    o.conversion_rate = 0.1;
    o.revenue = 20.0;
    o.max_bid_cpm = 5.0;
    o.boost = boost;
    o
}

/// Everything `decide` reads, owned; the user unknown (no caps).
struct World {
    ctx: RequestContext,
    imp: ImpRules,
    probabilities: Vec<f32>,
    columns: Vec<Option<u32>>,
    catalog: Catalog,
    frequency: FrequencyStore,
    budget: BudgetLedger,
    posteriors: Posteriors,
    config: DecideConfig,
    seed: u64,
}

impl World {
    fn new(offers: Vec<OfferSpec>, probabilities: Vec<f32>, config: DecideConfig) -> Self {
        let catalog = Catalog::from_offers(offers).expect("valid test catalog");
        Self {
            ctx: RequestContext {
                device_type: DeviceType::Phone,
                country: "USA".into(),
                placement_width: 300,
                placement_height: 250,
                timestamp: (NOW_NS / NS_PER_S) as i64,
                ..RequestContext::default()
            },
            imp: ImpRules::default(),
            columns: (0..catalog.len() as u32).map(Some).collect(),
            probabilities,
            budget: BudgetLedger::new(&vec![None; catalog.len()]).expect("budgets"),
            frequency: FrequencyStore::new(FrequencyConfig { capacity: 64 }).expect("store"),
            posteriors: Posteriors::new(catalog.ids(), PosteriorConfig { half_life_s: 0.0 })
                .expect("posteriors"),
            catalog,
            config,
            seed: 11,
        }
    }

    fn decide(&self, ticket: u64, now_ns: u64) -> Decision {
        let inputs = DecideInputs {
            ctx: &self.ctx,
            blocked_domains: &[],
            imp: &self.imp,
            probabilities: &self.probabilities,
            source: ScoreSource::Model,
            columns: &self.columns,
            catalog: &self.catalog,
            frequency: &self.frequency,
            budget: &self.budget,
            posteriors: &self.posteriors,
            config: &self.config,
            user_hash: 0,
            ticket: Ticket(ticket),
            seed: self.seed,
            now_ns,
            stored: None,
        };
        let mut out = Decision::default();
        out.reset(Ticket(ticket), false);
        decide(&inputs, &mut ExploreScratch::default(), &mut out);
        out
    }
}

fn config(exploration: Exploration) -> DecideConfig {
    DecideConfig {
        top_k: 4,
        exploration,
        ..DecideConfig::default()
    }
}

/// A click with probability `rate`, fixed by `key`.
fn clicked(key: u64, rate: f64) -> bool {
    ((mix64(key) >> 11) as f64 / (1u64 << 53) as f64) < rate
}

fn policy() -> impl Strategy<Value = Exploration> {
    prop_oneof![
        Just(Exploration::Thompson),
        Just(Exploration::EpsilonGreedy),
        Just(Exploration::None),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn factors_sum_to_the_score_and_propensities_are_probabilities(
        exploration in policy(),
        epsilon in 0.0f32..=1.0,
        p in prop::collection::vec(0.0f32..=1.0, 1..7),
        boosts in prop::collection::vec(-1.0f32..=1.0, 7),
        seen in prop::collection::vec((0usize..7, 0.0f32..=1.0, any::<bool>()), 0..60),
        half_life_s in prop_oneof![Just(0.0), 1.0f64..1e5],
        prior in 1.0f64..1e4,
        samples in 1usize..64,
        ticket in any::<u64>(),
    ) {
        let offers = (0..p.len()).map(|i| offer(i as u64 + 1, boosts[i])).collect();
        let mut config = config(exploration);
        config.epsilon = epsilon;
        config.thompson_prior_impressions = prior;
        config.propensity_samples = samples;
        let mut w = World::new(offers, p.clone(), config);
        w.posteriors = Posteriors::new(w.catalog.ids(), PosteriorConfig { half_life_s })
            .expect("posteriors");
        for (k, &(i, p_model, click)) in seen.iter().enumerate() {
            let i = i % p.len();
            let at = NOW_NS - 3600 * NS_PER_S + k as u64 * NS_PER_S;
            w.posteriors.observe_impression(i, p_model, at);
            if click {
                w.posteriors.observe_click(i, at);
            }
        }
        let d = w.decide(ticket, NOW_NS);
        prop_assert!(d.propensity > 0.0 && d.propensity <= 1.0, "{}", d.propensity);
        if exploration == Exploration::None || d.offers().len() <= 1 {
            prop_assert_eq!(d.propensity, 1.0);
        }
        for (rank, o) in d.offers().iter().enumerate() {
            prop_assert_eq!(o.factors.iter().sum::<f32>(), o.score);
            prop_assert!(o.score.is_finite());
            if exploration == Exploration::None {
                prop_assert_eq!(o.factors[EXPLORATION], 0.0);
            }
            if rank > 0 {
                prop_assert!(d.offers()[rank - 1].score >= o.score, "best first");
            }
        }
        // Deciding again from the same state gives the same decision.
        prop_assert_eq!(w.decide(ticket, NOW_NS), d);
    }
}

#[test]
fn epsilon_greedy_picks_uniformly_with_its_exact_propensity() {
    let offers = (1..=4).map(|id| offer(id, 0.0)).collect();
    let mut config = config(Exploration::EpsilonGreedy);
    config.epsilon = 0.2;
    let w = World::new(offers, vec![0.1, 0.2, 0.3, 0.4], config);
    let (eps, k) = (0.2f32, 4.0f32);
    let n = 20_000;
    let mut tops = [0usize; 4];
    for ticket in 0..n {
        let d = w.decide(ticket, NOW_NS);
        let top = d.offers()[0];
        tops[top.catalog_index as usize] += 1;
        if top.catalog_index == 3 {
            assert_eq!(d.propensity, 1.0 - eps + eps / k);
            assert_eq!(top.factors[EXPLORATION], 0.0);
        } else {
            assert_eq!(d.propensity, eps / k);
            // Lifted above the greedy top (offer 4) by its bonus alone.
            let greedy = d
                .offers()
                .iter()
                .find(|o| o.catalog_index == 3)
                .expect("kept");
            assert!(top.score > greedy.score);
            assert!(top.factors[EXPLORATION] > 0.0);
        }
    }
    // Each other offer is the top with probability eps / K = 5%.
    for &count in &tops[..3] {
        let share = count as f64 / n as f64;
        assert!((share - 0.05).abs() < 0.006, "{tops:?}");
    }
}

#[test]
fn the_posterior_ratio_converges_to_observed_over_expected_clicks() {
    // The model says 5%; the offer is clicked 15% of the time.
    let (p_model, rate) = (0.05f32, 0.15);
    let mut w = World::new(
        vec![offer(1, 0.0)],
        vec![p_model],
        config(Exploration::Thompson),
    );
    let mut gaps = Vec::new();
    let (mut shown, mut clicks) = (0u64, 0u64);
    for n in [100u64, 1_000, 10_000] {
        while shown < n {
            w.posteriors.observe_impression(0, p_model, NOW_NS);
            if clicked(shown, rate) {
                w.posteriors.observe_click(0, NOW_NS);
                clicks += 1;
            }
            shown += 1;
        }
        let (alpha, beta, m) = w.posteriors.posterior(0, NOW_NS).beta(100.0, p_model);
        let posterior_ratio = alpha / (alpha + beta) / m;
        let observed_ratio = clicks as f64 / (shown as f64 * f64::from(p_model));
        gaps.push((posterior_ratio - observed_ratio).abs() / observed_ratio);
        // What the decisions draw: the ratio that multiplies p, on average.
        let mean_draw = (0..2_000)
            .map(|t| {
                let o = w.decide(t, NOW_NS).offers()[0];
                f64::from(o.factors[EXPLORATION] / o.factors[MODEL]) + 1.0
            })
            .sum::<f64>()
            / 2_000.0;
        assert!(
            (mean_draw / posterior_ratio - 1.0).abs() < 0.03,
            "n {n}: drawn {mean_draw}, posterior {posterior_ratio}"
        );
    }
    assert!(gaps[0] > gaps[1] && gaps[1] > gaps[2], "{gaps:?}");
    assert!(gaps[2] < 0.02, "{gaps:?}");
}

#[test]
fn thompson_sends_most_impressions_to_the_offer_clicked_twice_as_often() {
    // The model scores both offers alike; offer 2 is clicked twice as often.
    let p_model = 0.05f32;
    let rates = [0.05, 0.10];
    let offers = vec![offer(1, 0.0), offer(2, 0.0)];
    let mut w = World::new(offers, vec![p_model; 2], config(Exploration::Thompson));
    let n = 4_000u64;
    let mut late_picks = [0u64; 2];
    for ticket in 0..n {
        let now = NOW_NS + ticket * NS_PER_S;
        let d = w.decide(ticket, now);
        let i = d.offers()[0].catalog_index as usize;
        w.posteriors.observe_impression(i, p_model, now);
        if clicked(ticket ^ 0xc11c, rates[i]) {
            w.posteriors.observe_click(i, now);
        }
        if ticket >= n - 1_000 {
            late_picks[i] += 1;
        }
    }
    // After 3000 impressions, at least 80% of the next 1000 go to offer 2.
    assert!(late_picks[1] >= 800, "{late_picks:?}");
}

#[test]
fn thompson_inverse_propensities_average_to_one_over_how_often_each_offer_is_picked() {
    // Four offers the model scores close together, no feedback yet. The
    // share of decisions whose top is offer j is j's probability q_j under
    // the policy; a decision that picked j counts N replica rounds (the
    // same draw as the pick's, from streams of their own) until j wins
    // one, and N is geometric with mean 1 / q_j: the inverse propensity,
    // averaged over the decisions that picked j, is 1 / q_j.
    let offers = (1..=4).map(|id| offer(id, 0.0)).collect();
    let w = World::new(
        offers,
        vec![0.06, 0.065, 0.07, 0.075],
        config(Exploration::Thompson),
    );
    let n = 20_000;
    let mut picks = [0u64; 4];
    let mut inverse_sums = [0.0f64; 4];
    for ticket in 0..n {
        let d = w.decide(ticket, NOW_NS);
        let j = d.offers()[0].catalog_index as usize;
        picks[j] += 1;
        inverse_sums[j] += 1.0 / f64::from(d.propensity);
    }
    for j in 0..4 {
        let share = picks[j] as f64 / n as f64;
        let mean_inverse = inverse_sums[j] / picks[j] as f64;
        // Sampling noise: about 1.5% on the share, 2% on the mean (N's
        // standard deviation is sqrt(1 - q) / q, over 3,000+ picks).
        let ratio = mean_inverse * share;
        assert!(
            share > 0.1 && (ratio - 1.0).abs() < 0.08,
            "offer {j}: picked {share}, mean inverse propensity {mean_inverse}; {picks:?}"
        );
    }
}
