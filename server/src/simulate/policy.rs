//! One policy's run in `cx simulate`: its engine, the outcomes drawn for
//! its decisions, the events sent back, and what it earned and cost.
//!
//! For each decision it draws what the synthetic world does (the auction,
//! the click from the true click probability of the offer chosen, the
//! conversion from the catalog's conversion rate), turns it into feedback
//! events for the engine, and keeps its own ledgers of what those events
//! imply: spend per offer and day (against the catalog's daily budgets) and
//! impressions per user and offer in the cap's window (against the
//! frequency caps), counted the way the engine's stores count them.

use super::auction::{Auction, Outcome};
use super::oracle::{OfferMap, Truth};
use cx_decision::{Decision, NoBidCause};
use cx_domain::catalog::Catalog;
use cx_domain::feedback::{Event, EventKind};
use cx_domain::store::budget::day_of;
use cx_engine::Engine;
use std::collections::HashMap;

/// OpenRTB loss reason 102: lost to a higher bid.
pub const LOSS_TO_HIGHER_BID: u32 = 102;

/// How the simulated bids settle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SettlementMode {
    /// OpenRTB auction: budget reserved at the bid, a win charges the
    /// clearing price, a loss gives it back.
    Auction,
    /// The decision is the placement: charged at the bid when decided.
    Direct,
}

/// The world's draws for one request, shared by every policy (common
/// random numbers: each policy meets the same competitor and the same
/// click and conversion uniforms on the same request).
#[derive(Clone, Copy, Debug)]
pub struct Draws {
    /// The standard normal behind the competing bid.
    pub competing_z: f64,
    /// The click happens when this uniform is below the true probability.
    pub click_u: f64,
    /// The conversion (after a click) when this is below the rate.
    pub conversion_u: f64,
}

/// One request as the policies see it, with its truth.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// Its index in the run, from 0.
    pub index: u64,
    /// The user (for the cap ledger).
    pub user_id: u64,
    /// The floor, CPM.
    pub floor_cpm: f64,
    /// The true click probabilities.
    pub truth: Truth<'a>,
    /// The oracle's true click probability (0 when no offer is admitted).
    pub oracle_p: f64,
    /// The world's draws.
    pub draws: Draws,
    /// The quarter of the run it falls in, 0..4.
    pub quarter: usize,
    /// The world offer the scenario changes (before and after the change;
    /// under `creative`, the one with variants).
    pub watched: Option<usize>,
}

/// Totals over a stretch of decisions.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct Tally {
    /// Decisions made.
    pub decisions: u64,
    /// Decisions that chose an offer.
    pub offered: u64,
    /// Sum of the oracle's minus the chosen offer's true click probability.
    pub regret: f64,
    /// Sum of the chosen offers' true click probabilities.
    pub p_true_sum: f64,
    /// Auctions won (every offered decision under direct settlement).
    pub impressions: u64,
    /// Clicks drawn.
    pub clicks: u64,
    /// Decisions that chose the scenario's shifted offer.
    pub shifted_offer_chosen: u64,
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        self.decisions += other.decisions;
        self.offered += other.offered;
        self.regret += other.regret;
        self.p_true_sum += other.p_true_sum;
        self.impressions += other.impressions;
        self.clicks += other.clicks;
        self.shifted_offer_chosen += other.shifted_offer_chosen;
    }
}

/// One point of the time series.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Point {
    /// Decisions so far.
    pub decisions: u64,
    /// Cumulative regret so far.
    pub cumulative_regret: f64,
    /// Clicks per impression in the interval since the last point.
    pub ctr: f64,
    /// Mean true click probability of the offers chosen in the interval.
    pub expected_ctr: f64,
}

/// One policy's engine and ledgers.
pub struct PolicyRun {
    /// The policy's name (`thompson`, `greedy`, `random`).
    pub name: &'static str,
    /// Its engine.
    pub engine: Engine,
    /// Over the whole run.
    pub total: Tally,
    /// Per quarter of the run.
    pub quarters: [Tally; 4],
    /// Since the last series point.
    interval: Tally,
    /// The series.
    pub series: Vec<Point>,
    /// Wins, conversions and their value, spend.
    pub conversions: u64,
    /// Spend in currency units.
    pub spend: f64,
    /// Offers excluded by a frequency cap, summed over decisions.
    pub excluded_by_cap: u64,
    /// Offers excluded for an exhausted budget, summed over decisions.
    pub excluded_by_budget: u64,
    /// Decisions per chosen catalog offer.
    pub chosen_by_offer: Vec<u64>,
    /// Spend per (catalog offer, day).
    spend_by_offer_day: HashMap<(usize, u32), f64>,
    /// (user, catalog offer) -> (window start, impressions in it).
    cap_windows: HashMap<(u64, usize), (u64, u32)>,
    /// Impressions past a cap.
    pub cap_violations: u64,
    /// Events waiting for the next feedback call.
    pub events: Vec<Event>,
    /// Under `creative`: the variant of each impression of the offer with
    /// variants, in order, with the quarter it fell in.
    pub variants_shown: Vec<(u8, u8)>,
}

impl PolicyRun {
    /// A run of `engine` under `name`.
    pub fn new(name: &'static str, engine: Engine) -> Self {
        let offers = engine.catalog().len();
        Self {
            name,
            engine,
            total: Tally::default(),
            quarters: [Tally::default(); 4],
            interval: Tally::default(),
            series: Vec::new(),
            conversions: 0,
            spend: 0.0,
            excluded_by_cap: 0,
            excluded_by_budget: 0,
            chosen_by_offer: vec![0; offers],
            spend_by_offer_day: HashMap::new(),
            cap_windows: HashMap::new(),
            cap_violations: 0,
            events: Vec::new(),
            variants_shown: Vec::new(),
        }
    }

    /// Draws the outcome of `decision` for `request`, queues its events and
    /// books it. Returns the catalog index chosen and whether it was
    /// clicked, or `None` when nothing was chosen.
    #[allow(clippy::too_many_arguments)]
    pub fn settle(
        &mut self,
        decision: &Decision,
        request: &Request<'_>,
        offers: &OfferMap,
        auction: &Auction,
        settlement: SettlementMode,
        now_ns: u64,
    ) -> Option<(usize, bool)> {
        let mut tally = Tally {
            decisions: 1,
            ..Tally::default()
        };
        self.excluded_by_cap += u64::from(decision.excluded[NoBidCause::FrequencyCapped.index()]);
        self.excluded_by_budget +=
            u64::from(decision.excluded[NoBidCause::BudgetExhausted.index()]);
        let result = decision.offers().first().map(|chosen| {
            let catalog_index = chosen.catalog_index as usize;
            let world_index = offers.world_index(catalog_index);
            let p_true = request.truth.p_shown(world_index, decision.variant);
            tally.offered = 1;
            tally.regret = (request.oracle_p - p_true).max(0.0);
            tally.p_true_sum = p_true;
            tally.shifted_offer_chosen = u64::from(request.watched == Some(world_index));
            self.chosen_by_offer[catalog_index] += 1;
            let key = self.engine.decision_key(decision.ticket);
            let event = |kind| Event {
                offer_id: chosen.offer_id,
                ..Event::new(kind, key)
            };
            let price_cpm = match settlement {
                SettlementMode::Direct => Some(chosen.bid_cpm),
                SettlementMode::Auction => {
                    let competing =
                        auction.competing_bid(request.floor_cpm, request.draws.competing_z);
                    match auction.settle(chosen.bid_cpm, competing, request.floor_cpm) {
                        Outcome::Won { clearing_cpm } => {
                            self.events.push(Event {
                                amount: clearing_cpm,
                                ..event(EventKind::Win)
                            });
                            Some(clearing_cpm)
                        }
                        Outcome::Lost => {
                            self.events.push(Event {
                                loss_code: LOSS_TO_HIGHER_BID,
                                ..event(EventKind::Loss)
                            });
                            None
                        }
                    }
                }
            };
            let Some(price_cpm) = price_cpm else {
                return (catalog_index, false);
            };
            tally.impressions = 1;
            if request.truth.variant_offer == Some(world_index) {
                self.variants_shown
                    .push((request.quarter as u8, decision.variant));
            }
            self.book_impression(request.user_id, catalog_index, price_cpm, now_ns);
            self.events.push(event(EventKind::Impression));
            let clicked = request.draws.click_u < p_true;
            if clicked {
                tally.clicks = 1;
                self.events.push(event(EventKind::Click));
                let objectives = self.engine.catalog().objectives();
                let rate = f64::from(objectives.conversion_rate[catalog_index]);
                if request.draws.conversion_u < rate {
                    self.conversions += 1;
                    self.events.push(Event {
                        amount: f64::from(objectives.revenue[catalog_index]),
                        ..event(EventKind::Conversion)
                    });
                }
            }
            (catalog_index, clicked)
        });
        self.total.add(&tally);
        self.quarters[request.quarter].add(&tally);
        self.interval.add(&tally);
        result
    }

    /// Books an impression's spend and counts it against its cap window
    /// (a window opens at the first impression after the last one ended,
    /// as the engine's frequency store counts).
    fn book_impression(&mut self, user: u64, offer: usize, price_cpm: f64, now_ns: u64) {
        let cost = price_cpm / 1000.0;
        self.spend += cost;
        *self
            .spend_by_offer_day
            .entry((offer, day_of(now_ns)))
            .or_insert(0.0) += cost;
        let Some(cap) = self.engine.catalog().frequency_cap(offer) else {
            return;
        };
        let window_ns = u64::from(cap.window_s) * 1_000_000_000;
        let entry = self.cap_windows.entry((user, offer)).or_insert((now_ns, 0));
        if now_ns.saturating_sub(entry.0) >= window_ns {
            *entry = (now_ns, 0);
        }
        entry.1 += 1;
        if entry.1 > cap.impressions {
            self.cap_violations += 1;
        }
    }

    /// Sends the queued events at `now_ns`, in batches the engine takes.
    pub fn send_events(&mut self, now_ns: u64) {
        for batch in self.events.chunks(cx_domain::feedback::EVENT_BATCH_MAX) {
            // A batch within the limit is never refused whole; refusals of
            // single events are counted by the engine and reported.
            let _ = self.engine.feedback(batch, now_ns);
        }
        self.events.clear();
    }

    /// Closes the series interval at `decisions` decisions.
    pub fn mark(&mut self, decisions: u64) {
        let i = self.interval;
        self.series.push(Point {
            decisions,
            cumulative_regret: self.total.regret,
            ctr: ratio(i.clicks as f64, i.impressions as f64),
            expected_ctr: ratio(i.p_true_sum, i.offered as f64),
        });
        self.interval = Tally::default();
    }

    /// The largest spend over budget of any offer on any day (negative:
    /// every offer stayed under), over the offers with a daily budget;
    /// `None` when no offer has one.
    pub fn budget_overspend(&self, catalog: &Catalog) -> Option<f64> {
        (0..catalog.len())
            .filter_map(|offer| catalog.daily_budget(offer).map(|budget| (offer, budget)))
            .map(|(offer, budget)| {
                let days = self
                    .spend_by_offer_day
                    .iter()
                    .filter(|((o, _), _)| *o == offer)
                    .map(|(_, &spend)| spend);
                days.fold(0.0f64, f64::max) - budget
            })
            .reduce(f64::max)
    }
}

/// `a / b`, 0 when `b` is 0.
pub fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}
