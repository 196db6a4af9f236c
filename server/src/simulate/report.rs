//! The JSON `cx simulate --json` writes: one object, every key in a fixed
//! order and nothing measured from the wall clock, so the same seed gives
//! the same bytes.

use super::auction::Auction;
use super::ope::OpeReport;
use super::oracle::{CREATIVE_BEST, CREATIVE_RATES};
use super::policy::{ratio, Point, PolicyRun, SettlementMode, Tally};
use super::{Run, Spec, SHIFT_LOGIT};
use cx_domain::feedback::{EventKind, EventRefusal};
use serde::Serialize;
use std::collections::BTreeMap;

/// The whole report.
#[derive(Debug, Serialize)]
pub struct Report {
    /// What the run was asked to do (its fields, in their order; the
    /// model and catalog paths are given below as resolved).
    #[serde(flatten)]
    pub spec: Spec,
    /// The model.
    pub model: String,
    /// Its id (SHA-256).
    pub model_id: String,
    /// The catalog.
    pub catalog: String,
    /// How the engines rank.
    pub ranking: &'static str,
    /// What the oracle is.
    pub oracle: &'static str,
    /// The oracle's mean true click probability per request.
    pub oracle_mean_p: f64,
    /// Requests the targeting admitted no offer for.
    pub oracle_no_offer: u64,
    /// The auction.
    pub auction: AuctionReport,
    /// Per policy.
    pub policies: BTreeMap<&'static str, PolicyReport>,
    /// The largest spend over its daily budget of any offer on any day,
    /// over every policy (must be <= 0); null when no offer has a budget.
    pub budget_overspend: Option<f64>,
    /// Impressions past a frequency cap, over every policy (must be 0).
    pub cap_violations: u64,
    /// The `shift` scenario's change and each policy's response.
    pub shift: Option<ShiftReport>,
    /// The `creative` scenario's variants and how each policy's engine
    /// chose among them.
    pub creative: Option<CreativeReport>,
    /// The `calibrated` scenario's hidden factor per offer id: its true
    /// click probability over the model's.
    pub calibration_factors: Option<BTreeMap<u64, f64>>,
    /// Greedy's value estimated from thompson's log, and its truth (not
    /// under `creative`).
    pub ope: Option<OpeReport>,
}

/// The auction's parameters.
#[derive(Debug, Serialize)]
pub struct AuctionReport {
    /// The competing bid's median over the floor.
    pub median_over_floor: f64,
    /// Its log-sd.
    pub log_sd: f64,
    /// The price a win pays.
    pub clearing: &'static str,
}

/// One policy.
#[derive(Debug, Serialize)]
pub struct PolicyReport {
    /// Its `[decide] exploration`.
    pub exploration: &'static str,
    /// Decisions.
    pub decisions: u64,
    /// Decisions that chose an offer.
    pub offered: u64,
    /// Decisions that chose none.
    pub no_offer: u64,
    /// Auctions won (impressions).
    pub impressions: u64,
    /// Clicks.
    pub clicks: u64,
    /// Conversions.
    pub conversions: u64,
    /// Clicks per impression.
    pub ctr: f64,
    /// Mean true click probability of the offers chosen.
    pub expected_ctr: f64,
    /// Sum over decisions of the oracle's minus the chosen offer's true
    /// click probability.
    pub cumulative_regret: f64,
    /// Regret per decision that chose an offer.
    pub regret_per_decision: f64,
    /// Regret per decision in each quarter of the run.
    pub regret_per_decision_by_quarter: [f64; 4],
    /// How cumulative regret grows over the run's second half: the slope
    /// of its logarithm against the logarithm of decisions (least squares
    /// over the series' points there). 1: linear; below 1: sublinear (0.5
    /// for a square root); null without two points with regret.
    pub regret_growth_exponent: Option<f64>,
    /// Spend, currency units.
    pub spend: f64,
    /// This policy's largest spend over budget (offer, day).
    pub budget_overspend: Option<f64>,
    /// Its impressions past a cap.
    pub cap_violations: u64,
    /// Users the engine's frequency store forgot while their windows were
    /// live (a set full: by design; their counts restart), which lets
    /// impressions past a cap through.
    pub frequency_evictions: u64,
    /// Offers excluded by a frequency cap, summed over decisions.
    pub excluded_by_frequency_cap: u64,
    /// Offers excluded for an exhausted budget, summed over decisions.
    pub excluded_by_budget: u64,
    /// What the engine did with the events.
    pub feedback: FeedbackReport,
    /// Share of the offered decisions per offer id.
    pub offer_share: BTreeMap<u64, f64>,
    /// Every `decisions / 200` decisions.
    pub series: Vec<Point>,
}

/// The engine's feedback counts.
#[derive(Debug, Serialize)]
pub struct FeedbackReport {
    /// Applied, by kind.
    pub applied: BTreeMap<&'static str, u64>,
    /// Refused, by reason (only reasons with events).
    pub refused: BTreeMap<&'static str, u64>,
    /// Held at the end.
    pub held: u64,
}

/// The `shift` scenario.
#[derive(Debug, Serialize)]
pub struct ShiftReport {
    /// The offer whose appeal fell.
    pub offer_id: u64,
    /// The decision from which it fell.
    pub at_decision: u64,
    /// What was added to its true logit.
    pub logit_shift: f64,
    /// Per policy.
    pub policies: BTreeMap<&'static str, ShiftPolicy>,
}

/// One policy's response to the shift.
#[derive(Debug, Serialize)]
pub struct ShiftPolicy {
    /// Its share of the shifted offer among its offered decisions, per
    /// quarter (the shift comes at the start of the third).
    pub offer_share_by_quarter: [f64; 4],
    /// Regret per decision per quarter.
    pub regret_per_decision_by_quarter: [f64; 4],
}

/// Impressions of the creative offer per window when judging whether most
/// of them go to its best variant.
pub const CREATIVE_WINDOW: usize = 200;

/// The `creative` scenario.
#[derive(Debug, Serialize)]
pub struct CreativeReport {
    /// The offer with variants.
    pub offer_id: u64,
    /// Each variant's true click probability as a multiple of the offer's
    /// own creative's (variant 0), capped at 1.
    pub variant_click_rates: [f64; 3],
    /// The variant clicked most.
    pub best_variant: u8,
    /// The window `majority_after_impressions` judges by.
    pub window_impressions: usize,
    /// Per policy (each engine chooses variants by Thompson sampling on
    /// their own clicks, whatever its offer policy).
    pub policies: BTreeMap<&'static str, CreativePolicy>,
}

/// One policy's impressions of the creative offer.
#[derive(Debug, Serialize)]
pub struct CreativePolicy {
    /// Impressions of the offer.
    pub impressions: u64,
    /// Per variant.
    pub impressions_by_variant: [u64; 3],
    /// The best variant's share of the offer's impressions per quarter.
    pub best_share_by_quarter: [f64; 4],
    /// The best variant's share in the last full window.
    pub best_share_last_window: f64,
    /// The offer's impressions before every later full window of
    /// `window_impressions` gave most (over half) to the best variant;
    /// null when the last full window did not, or there was none.
    pub majority_after_impressions: Option<u64>,
}

/// One policy's [`CreativePolicy`] from its impressions' `(quarter,
/// variant)`s in order, judged in windows of `window` impressions.
pub fn creative_policy(shown: &[(u8, u8)], window: usize) -> CreativePolicy {
    let mut by_variant = [0u64; 3];
    let mut quarter = [(0u64, 0u64); 4];
    for &(q, v) in shown {
        if let Some(n) = by_variant.get_mut(usize::from(v)) {
            *n += 1;
        }
        let q = &mut quarter[usize::from(q).min(3)];
        q.0 += u64::from(v == CREATIVE_BEST);
        q.1 += 1;
    }
    let shares: Vec<f64> = shown
        .chunks_exact(window.max(1))
        .map(|w| {
            let best = w.iter().filter(|&&(_, v)| v == CREATIVE_BEST).count();
            best as f64 / w.len() as f64
        })
        .collect();
    // The first window from which every window gives most to the best.
    let from = shares.iter().rposition(|&s| s <= 0.5).map_or(0, |w| w + 1);
    CreativePolicy {
        impressions: shown.len() as u64,
        impressions_by_variant: by_variant,
        best_share_by_quarter: quarter.map(|(best, all)| ratio(best as f64, all as f64)),
        best_share_last_window: shares.last().copied().unwrap_or(0.0),
        majority_after_impressions: (from < shares.len()).then_some((from * window) as u64),
    }
}

/// The report of `run`.
pub fn report(run: &Run, model: String, catalog: String) -> Report {
    let spec = &run.spec;
    let policies: BTreeMap<_, _> = run
        .policies
        .iter()
        .map(|p| (p.name, policy_report(p, run)))
        .collect();
    let budget_overspend = policies
        .values()
        .filter_map(|p| p.budget_overspend)
        .reduce(f64::max);
    let shift = run.shifted_offer.map(|offer_id| ShiftReport {
        offer_id,
        at_decision: spec.decisions / 2,
        logit_shift: SHIFT_LOGIT,
        policies: run
            .policies
            .iter()
            .map(|p| {
                (
                    p.name,
                    ShiftPolicy {
                        offer_share_by_quarter: p
                            .quarters
                            .map(|q| ratio(q.shifted_offer_chosen as f64, q.offered as f64)),
                        regret_per_decision_by_quarter: p.quarters.map(regret_per),
                    },
                )
            })
            .collect(),
    });
    let Auction {
        median_over_floor,
        log_sd,
    } = run.auction;
    Report {
        spec: spec.clone(),
        model,
        model_id: run.model_id.clone(),
        catalog,
        ranking: "click probability alone: objective weights click 1 and the others 0; \
                  segment, context, fatigue and boost terms 0; top_k 8",
        oracle: "the offer with the highest true click probability among those the \
                 catalog's targeting admits (device, country, size, channel); not limited \
                 by frequency caps, budgets or floors",
        oracle_mean_p: ratio(run.oracle_p_sum, spec.decisions as f64),
        oracle_no_offer: run.oracle_empty,
        auction: AuctionReport {
            median_over_floor,
            log_sd,
            clearing: match spec.settlement {
                SettlementMode::Auction => "second price: max(competing bid, floor)",
                SettlementMode::Direct => "none: direct settlement charges the bid when decided",
            },
        },
        cap_violations: policies.values().map(|p| p.cap_violations).sum(),
        budget_overspend,
        policies,
        shift,
        creative: run.creative_offer.map(|offer_id| CreativeReport {
            offer_id,
            variant_click_rates: CREATIVE_RATES,
            best_variant: CREATIVE_BEST,
            window_impressions: CREATIVE_WINDOW,
            policies: run
                .policies
                .iter()
                .map(|p| (p.name, creative_policy(&p.variants_shown, CREATIVE_WINDOW)))
                .collect(),
        }),
        calibration_factors: run
            .calibration
            .as_ref()
            .map(|factors| factors.iter().copied().collect()),
        ope: run.ope.clone(),
    }
}

/// The least-squares slope of `ln(cumulative_regret)` against
/// `ln(decisions)` over the series' second half.
pub fn growth_exponent(series: &[Point]) -> Option<f64> {
    let last = series.last()?.decisions;
    let points: Vec<(f64, f64)> = series
        .iter()
        .filter(|p| p.decisions * 2 >= last && p.cumulative_regret > 0.0 && p.decisions > 0)
        .map(|p| ((p.decisions as f64).ln(), p.cumulative_regret.ln()))
        .collect();
    if points.len() < 2 {
        return None;
    }
    let n = points.len() as f64;
    let (mx, my) = points
        .iter()
        .fold((0.0, 0.0), |(x, y), p| (x + p.0 / n, y + p.1 / n));
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

fn regret_per(t: Tally) -> f64 {
    ratio(t.regret, t.offered as f64)
}

fn policy_report(p: &PolicyRun, run: &Run) -> PolicyReport {
    let t = p.total;
    let counts = p.engine.feedback_counts();
    let catalog = &run.catalog;
    PolicyReport {
        exploration: match p.name {
            "greedy" => "none",
            "random" => "epsilon_greedy, epsilon 1",
            _ => "thompson",
        },
        decisions: t.decisions,
        offered: t.offered,
        no_offer: t.decisions - t.offered,
        impressions: t.impressions,
        clicks: t.clicks,
        conversions: p.conversions,
        ctr: ratio(t.clicks as f64, t.impressions as f64),
        expected_ctr: ratio(t.p_true_sum, t.offered as f64),
        cumulative_regret: t.regret,
        regret_per_decision: regret_per(t),
        regret_per_decision_by_quarter: p.quarters.map(regret_per),
        regret_growth_exponent: growth_exponent(&p.series),
        spend: p.spend,
        budget_overspend: p.budget_overspend(catalog),
        cap_violations: p.cap_violations,
        frequency_evictions: p.engine.stats().frequency_evictions,
        excluded_by_frequency_cap: p.excluded_by_cap,
        excluded_by_budget: p.excluded_by_budget,
        feedback: FeedbackReport {
            applied: EventKind::ALL
                .iter()
                .map(|&k| (k.label(), counts.applied(k)))
                .collect(),
            refused: EventRefusal::ALL
                .iter()
                .map(|&r| (r.label(), counts.refused(r)))
                .filter(|&(_, n)| n > 0)
                .collect(),
            held: counts.held,
        },
        offer_share: catalog
            .ids()
            .iter()
            .zip(&p.chosen_by_offer)
            .map(|(&id, &n)| (id, ratio(n as f64, t.offered as f64)))
            .collect(),
        series: p.series.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(regret: impl Fn(f64) -> f64) -> Vec<Point> {
        (1..=200u64)
            .map(|k| Point {
                decisions: k * 5000,
                cumulative_regret: regret(k as f64 * 5000.0),
                ctr: 0.0,
                expected_ctr: 0.0,
            })
            .collect()
    }

    #[test]
    fn the_growth_exponent_tells_linear_from_square_root_from_log() {
        let linear = growth_exponent(&series(|t| 0.05 * t)).unwrap();
        let root = growth_exponent(&series(|t| 3.0 * t.sqrt())).unwrap();
        let log = growth_exponent(&series(|t| 100.0 * t.ln())).unwrap();
        assert!((linear - 1.0).abs() < 1e-9, "{linear}");
        assert!((root - 0.5).abs() < 1e-9, "{root}");
        assert!(log > 0.0 && log < 0.1, "{log}");
        assert_eq!(growth_exponent(&series(|_| 0.0)), None);
        assert_eq!(growth_exponent(&[]), None);
    }

    #[test]
    fn the_majority_holds_from_the_first_window_after_the_last_that_failed() {
        let window =
            |best: usize| (0..1000).map(move |i| (0u8, if i < best { CREATIVE_BEST } else { 0 }));
        // Windows with 400, 700, 500 (not over half), 600 and 900 best.
        let shown: Vec<(u8, u8)> = [400, 700, 500, 600, 900]
            .into_iter()
            .flat_map(window)
            .chain([(3u8, 2u8); 10])
            .collect();
        let p = creative_policy(&shown, 1000);
        assert_eq!(p.impressions, 5010);
        assert_eq!(p.impressions_by_variant, [1900, 3100, 10]);
        assert_eq!(p.majority_after_impressions, Some(3000));
        assert_eq!(p.best_share_last_window, 0.9);
        assert_eq!(p.best_share_by_quarter[0], 0.62);
        assert_eq!(p.best_share_by_quarter[3], 0.0);
        let failing: Vec<(u8, u8)> = [900, 300].into_iter().flat_map(window).collect();
        assert_eq!(
            creative_policy(&failing, 1000).majority_after_impressions,
            None
        );
        assert_eq!(creative_policy(&[], 1000).majority_after_impressions, None);
        let always: Vec<(u8, u8)> = [600, 800].into_iter().flat_map(window).collect();
        assert_eq!(
            creative_policy(&always, 1000).majority_after_impressions,
            Some(0)
        );
    }
}
