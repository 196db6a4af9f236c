//! Deciding one request: hard rules, the multi-objective blend, the
//! explanation factors, top-k and the bid price. `docs/DECISIONS.md` states
//! the same rules as formulas.
//!
//! [`decide`] reads state (frequency counts, budgets) and changes nothing;
//! [`commit`] spends the winner's frequency-cap impression and budget. The
//! split is what makes simulation mode exact: a simulated request runs
//! `decide` only.

use super::explore::{ExploreScratch, Explorer};
use super::stored::{BehaviorInputs, SegmentTable, StoreSegments};
use super::NS_PER_S;
use crate::config::DecideConfig;
use cx_domain::catalog::{self, Catalog, ImpRules, Ineligible, PageCategoryKeys, Unshowable};
use cx_domain::pipeline::{ChosenOffer, Decision, NoBidCause, ScoreSource, Ticket};
use cx_domain::store::{Budgets, FrequencyCaps, Posteriors, UserEntries};
use cx_features::RequestContext;
use cx_featurestore::FeatureValues;

/// Everything [`decide`] reads for one request. The stores are any
/// [`FrequencyCaps`] and [`Budgets`] backends.
pub struct DecideInputs<'a, F, B> {
    /// The request.
    pub ctx: &'a RequestContext,
    /// Advertiser domains the request blocks (OpenRTB `badv`).
    pub blocked_domains: &'a [String],
    /// What the impression allows (kinds and what a creative must fit,
    /// `battr`, `bcat`); [`ImpRules::default`] allows every offer.
    pub imp: &'a ImpRules,
    /// Calibrated click probability per model output column.
    pub probabilities: &'a [f32],
    /// Where the probabilities came from; [`ScoreSource::Failed`] (or
    /// [`ScoreSource::None`]) means there are none.
    pub source: ScoreSource,
    /// Per catalog offer, its model output column (`None`: the model does
    /// not score it).
    pub columns: &'a [Option<u32>],
    /// The offers.
    pub catalog: &'a Catalog,
    /// Per-user impression counts.
    pub frequency: &'a F,
    /// Per-offer daily spend.
    pub budget: &'a B,
    /// What has been learned of each offer's click rate (Thompson sampling).
    pub posteriors: &'a Posteriors,
    /// Weights and rules.
    pub config: &'a DecideConfig,
    /// The user's hash (0: unknown user, so no caps and no fatigue).
    pub user_hash: u64,
    /// The request's ticket, for the exploration draws.
    pub ticket: Ticket,
    /// The engine's seed, for the exploration draws.
    pub seed: u64,
    /// Host time, unix ns.
    pub now_ns: u64,
    /// The user's stored features, when the pipeline has a feature store
    /// and read them for this request's user (`None`: decided as without
    /// a store).
    pub stored: Option<StoredUser<'a>>,
}

/// A user's stored features and what decisions precompute from the
/// store's definitions (`logic::stored`).
#[derive(Clone, Copy)]
pub struct StoredUser<'a> {
    /// The user's features at the request's time.
    pub values: &'a FeatureValues,
    /// The stored segments' hashes.
    pub segments: &'a SegmentTable,
    /// The behaviour features of BehavioralSignal.
    pub behavior: &'a BehaviorInputs,
}

/// Decides one request into `out` (reset first). Reads state, changes none.
/// The exploration policy (`logic/explore.rs`) sets each eligible offer's
/// ExplorationBonus as it is scored, may move its pick to the top, and
/// sets the propensity; `scratch` is its working space (one per caller,
/// reused across decisions).
pub fn decide<F: FrequencyCaps, B: Budgets>(
    inputs: &DecideInputs<'_, F, B>,
    scratch: &mut ExploreScratch,
    out: &mut Decision,
) {
    out.reset(out.ticket, out.simulated);
    let keys = RequestKeys::of(inputs);
    let mut explorer = Explorer::new(
        inputs.config,
        inputs.posteriors,
        inputs.seed,
        inputs.ticket,
        inputs.now_ns,
        scratch,
    );
    out.source = inputs.source;
    let scored = matches!(
        inputs.source,
        ScoreSource::Model | ScoreSource::Cache | ScoreSource::Fallback
    );
    for i in 0..inputs.catalog.len() {
        if !scored {
            out.exclude(NoBidCause::ScoringFailed);
            continue;
        }
        match consider_offer(inputs, &keys, i) {
            Ok(mut offer) => {
                explorer.explore(&mut offer);
                out.eligible = out.eligible.saturating_add(1);
                out.consider(offer, inputs.config.top_k);
            }
            Err(cause) => out.exclude(cause),
        }
    }
    explorer.finish(out);
    out.settle();
}

/// One offer through the rules, in order: model column, eligibility,
/// blocked advertiser, whether the impression can show it (blocked
/// category, no creative, blocked attribute), frequency cap, floor, budget;
/// then its score and explanation.
fn consider_offer<F: FrequencyCaps, B: Budgets>(
    inputs: &DecideInputs<'_, F, B>,
    keys: &RequestKeys<'_>,
    i: usize,
) -> Result<ChosenOffer, NoBidCause> {
    let catalog = inputs.catalog;
    let config = inputs.config;
    let column = inputs.columns.get(i).copied().flatten();
    let p = column
        .and_then(|c| inputs.probabilities.get(c as usize))
        .copied()
        .ok_or(NoBidCause::NotScored)?;
    catalog
        .check_eligibility(i, inputs.ctx)
        .map_err(ineligible_cause)?;
    if blocks_advertiser(inputs.blocked_domains, catalog.adomain(i)) {
        return Err(NoBidCause::BlockedAdvertiser);
    }
    catalog
        .check_showable(i, inputs.imp)
        .map_err(unshowable_cause)?;
    let seen = impressions_seen(inputs, keys.user.as_ref(), i);
    if let Some(cap) = catalog.frequency_cap(i) {
        if inputs.user_hash != 0 && seen >= cap.impressions {
            return Err(NoBidCause::FrequencyCapped);
        }
    }
    let objectives = catalog.objectives();
    let cvr = objectives.conversion_rate[i];
    let value_cpm = 1000.0 * f64::from(p) * f64::from(cvr) * f64::from(objectives.revenue[i]);
    let max_bid = f64::from(catalog.max_bid_cpm()[i]);
    let bid_cpm = bid_price(value_cpm, inputs.ctx.bid_floor, max_bid, config.bid_shading)
        .ok_or(NoBidCause::BelowFloor)?;
    if !inputs.budget.can_spend(i, bid_cpm / 1000.0, inputs.now_ns) {
        return Err(NoBidCause::BudgetExhausted);
    }
    Ok(score_offer(inputs, keys, i, p, seen, bid_cpm))
}

/// What every offer's rules read of the request, taken once per request.
struct RequestKeys<'a> {
    segments: SegmentHashes,
    categories: PageCategoryKeys<'a>,
    /// The user's frequency entries (`None`: unknown user).
    user: Option<UserEntries>,
    /// The user's stored segments (`None`: no stored features).
    stored_segments: Option<StoreSegments>,
    /// How stored behaviour scales ModelPrediction into BehavioralSignal
    /// (`None`: no stored features, or every behaviour term off).
    behavior_scale: Option<f32>,
}

impl<'a> RequestKeys<'a> {
    fn of<F: FrequencyCaps, B: Budgets>(inputs: &DecideInputs<'a, F, B>) -> Self {
        Self {
            segments: SegmentHashes::of(inputs.ctx),
            categories: PageCategoryKeys::of(inputs.ctx),
            user: (inputs.user_hash != 0).then(|| inputs.frequency.user_entries(inputs.user_hash)),
            stored_segments: inputs.stored.map(|u| u.segments.segments_of(u.values)),
            behavior_scale: inputs.stored.and_then(|u| u.behavior.scale(u.values)),
        }
    }
}

/// The request's segments hashed once ([`catalog::item_hash`]), for every
/// offer's segment match: the first `CONTEXT_ITEMS_MAX` segments, skipping
/// over-long ones, as [`Catalog::segment_match`] reads them.
struct SegmentHashes {
    hashes: [u64; catalog::limits::CONTEXT_ITEMS_MAX],
    len: usize,
}

impl SegmentHashes {
    fn of(ctx: &RequestContext) -> Self {
        let mut out = Self {
            hashes: [0; catalog::limits::CONTEXT_ITEMS_MAX],
            len: 0,
        };
        let usable = ctx
            .user_segments
            .iter()
            .take(catalog::limits::CONTEXT_ITEMS_MAX)
            .filter(|s| s.len() <= catalog::limits::SEGMENT_BYTES_MAX);
        for segment in usable {
            out.hashes[out.len] = catalog::item_hash(segment);
            out.len += 1;
        }
        out
    }

    fn as_slice(&self) -> &[u64] {
        &self.hashes[..self.len]
    }
}

/// The blend and the explanation of an eligible offer, its
/// ExplorationBonus 0 (the policy sets it: [`Explorer::explore`]).
fn score_offer<F: FrequencyCaps, B: Budgets>(
    inputs: &DecideInputs<'_, F, B>,
    keys: &RequestKeys<'_>,
    i: usize,
    p: f32,
    seen: u32,
    bid_cpm: f64,
) -> ChosenOffer {
    let catalog = inputs.catalog;
    let config = inputs.config;
    let o = catalog.objectives();
    let cvr = o.conversion_rate[i];
    let values = [
        p,
        p * cvr,
        p * cvr * o.revenue[i] / config.revenue_scale,
        p * cvr * o.lifetime_value[i] / config.ltv_scale,
        p * o.engagement[i],
        p * o.retention[i],
    ];
    let mut objectives = [0.0f32; 6];
    for ((term, w), v) in objectives
        .iter_mut()
        .zip(config.weights.as_array())
        .zip(values)
    {
        *term = w * v;
    }
    let model_prediction: f32 = objectives.iter().sum();
    let fatigue = (seen as f32 / config.fatigue_impressions as f32).min(1.0);
    // `0 - x`, not `-x`: no fatigue is +0, not -0 (which JSON would show).
    let mut behavior = 0.0 - config.fatigue_weight * fatigue;
    if let Some(scale) = keys.behavior_scale {
        behavior += model_prediction * scale;
    }
    let segment_match = catalog.segment_match_hashes(i, keys.segments.as_slice())
        || keys
            .stored_segments
            .as_ref()
            .is_some_and(|s| catalog.segment_match_hashes(i, s.as_slice()));
    let offer_id = catalog.ids()[i];
    // In FACTOR_KINDS order.
    let factors = [
        flag(segment_match, config.segment_bonus),
        behavior,
        flag(
            catalog.category_match_keys(i, &keys.categories),
            config.context_bonus,
        ),
        model_prediction,
        config.boost_weight * catalog.boost()[i],
        0.0,
    ];
    ChosenOffer {
        offer_id,
        catalog_index: i as u32,
        score: factors.iter().sum(),
        p_click: p,
        bid_cpm,
        factors,
        objectives,
    }
}

/// Whether any of an offer's advertiser domains is blocked. Exact,
/// case-sensitive matches, as OpenRTB's `badv` lists domains.
fn blocks_advertiser(blocked: &[String], adomain: &[String]) -> bool {
    !blocked.is_empty() && adomain.iter().any(|d| blocked.contains(d))
}

fn flag(on: bool, bonus: f32) -> f32 {
    if on {
        bonus
    } else {
        0.0
    }
}

/// The user's impressions of offer `i` (counted by its id) in its window (0 for an unknown
/// user, or one with no entries: `user` is `None`).
fn impressions_seen<F: FrequencyCaps, B: Budgets>(
    inputs: &DecideInputs<'_, F, B>,
    user: Option<&UserEntries>,
    i: usize,
) -> u32 {
    match user {
        Some(user) if !user.is_empty() => {
            let window_ns = window_s(inputs.catalog, inputs.config, i) * NS_PER_S;
            user.count(inputs.catalog.ids()[i], inputs.now_ns, window_ns)
        }
        _ => 0,
    }
}

/// The counting window of offer `i`: its frequency cap's, else the fatigue window.
pub(crate) fn window_s(catalog: &Catalog, config: &DecideConfig, i: usize) -> u64 {
    catalog
        .frequency_cap(i)
        .map_or(config.fatigue_window_s, |cap| cap.window_s)
        .into()
}

fn ineligible_cause(why: Ineligible) -> NoBidCause {
    match why {
        Ineligible::DeviceType => NoBidCause::DeviceType,
        Ineligible::Country => NoBidCause::Country,
        Ineligible::PlacementSize => NoBidCause::PlacementSize,
        Ineligible::Channel => NoBidCause::Channel,
    }
}

fn unshowable_cause(why: Unshowable) -> NoBidCause {
    match why {
        Unshowable::BlockedCategory => NoBidCause::BlockedCategory,
        Unshowable::NoCreative => NoBidCause::NoCreative,
        Unshowable::BlockedAttribute => NoBidCause::BlockedAttribute,
    }
}

/// The bid, CPM: `floor + shading * (value - floor)`, capped at `max_bid`.
/// `None` (no bid) when the value or the cap is below the floor, or the bid
/// would not be positive. A floor that is not finite and positive counts as
/// no floor. The result is never below the floor.
pub fn bid_price(value_cpm: f64, floor_cpm: f64, max_bid_cpm: f64, shading: f64) -> Option<f64> {
    let floor = if floor_cpm.is_finite() && floor_cpm > 0.0 {
        floor_cpm
    } else {
        0.0
    };
    if !value_cpm.is_finite() || value_cpm < floor || max_bid_cpm.is_nan() || max_bid_cpm < floor {
        return None;
    }
    let bid = (floor + shading.clamp(0.0, 1.0) * (value_cpm - floor)).min(max_bid_cpm);
    (bid > 0.0).then_some(bid.max(floor))
}

/// What [`commit`] could not charge: offers withdrawn from the decision
/// because their budget or the user's cap was taken since `decide` looked
/// (only possible with stores shared across workers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommitRefusals {
    /// Withdrawn: the budget could not pay the bid.
    pub budget: u32,
    /// Withdrawn: the user had reached the offer's frequency cap.
    pub frequency: u32,
}

/// Spends the decision's first offer: the bid (`bid_cpm / 1000`) against
/// the offer's daily budget, and one impression against the user's
/// frequency count, checked against the offer's cap in the same step. Only
/// the top offer is charged: it is the one bid or shown; the others are
/// alternatives. Does nothing for a simulated or empty decision.
///
/// Both charges hold or neither does. When one is refused (a store shared
/// across workers changed since [`decide`] read it), the offer is withdrawn
/// from the decision ([`Decision::withdraw_first`], with the cause) and the
/// next one is tried, so a decision never shows an offer past its cap or
/// budget. In process nothing runs between decide and commit, so nothing
/// is ever withdrawn there.
pub fn commit<F: FrequencyCaps, B: Budgets>(
    decision: &mut Decision,
    catalog: &Catalog,
    config: &DecideConfig,
    frequency: &mut F,
    budget: &mut B,
    user_hash: u64,
    now_ns: u64,
) -> CommitRefusals {
    let mut refusals = CommitRefusals::default();
    if decision.simulated {
        return refusals;
    }
    while let Some(top) = decision.offers().first().copied() {
        let i = top.catalog_index as usize;
        let amount = top.bid_cpm / 1000.0;
        if budget.spend(i, amount, now_ns).is_err() {
            refusals.budget += 1;
            decision.withdraw_first(NoBidCause::BudgetExhausted);
            continue;
        }
        if user_hash != 0 {
            let window_ns = window_s(catalog, config, i) * NS_PER_S;
            let cap = catalog.frequency_cap(i).map(|cap| cap.impressions);
            let offer_id = catalog.ids()[i];
            if !frequency.record_within(user_hash, offer_id, cap, now_ns, window_ns) {
                budget.refund(i, amount, now_ns);
                refusals.frequency += 1;
                decision.withdraw_first(NoBidCause::FrequencyCapped);
                continue;
            }
        }
        break;
    }
    refusals
}
