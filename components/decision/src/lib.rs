//! The engine's answer for one request: the chosen offers, each with its
//! score, bid and the explanation that adds up to the score, or the cause
//! of a no-bid; and the [`Ticket`] that matches it to its submission.
//!
//! Plain data with no ECS: the wire protocol encodes it and clients decode
//! it without the engine. The `ecs` feature derives bevy_ecs `Component`
//! for [`Decision`] and [`Ticket`], for the crate that keeps them on request
//! entities (`cx-domain`).
//!
//! Fixed size and `Copy`: a decision holds at most [`TOP_K_MAX`] offers in an
//! inline array, and each offer's explanation is one `f32` per
//! [`FactorKind`], so emitting a decision never allocates.

use std::fmt;

/// The engine's handle for one submitted request: unique and increasing
/// within one engine, so decisions can be matched to submissions.
#[cfg_attr(feature = "ecs", derive(bevy_ecs::component::Component))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket(pub u64);

/// Most offers one decision may rank (`top_k` is at most this).
pub const TOP_K_MAX: usize = 8;

/// The explanation categories, in the order [`ChosenOffer::factors`] stores
/// them. A chosen offer's score is exactly the sum of its factors, added in
/// this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum FactorKind {
    /// The offer targets a segment the user belongs to.
    SegmentMembership,
    /// The user's own history with the offer (fatigue from recent impressions).
    BehavioralSignal,
    /// The offer's categories match the page's or app's categories.
    ContextualRelevance,
    /// The model's click probability, weighted through the objective blend.
    ModelPrediction,
    /// A business rule's adjustment: the catalog's boost for the offer.
    BusinessRule,
    /// The exploration bonus: a seeded random term that lets lower-ranked
    /// offers be tried.
    ExplorationBonus,
}

/// Every factor kind, in storage order.
pub const FACTOR_KINDS: [FactorKind; 6] = [
    FactorKind::SegmentMembership,
    FactorKind::BehavioralSignal,
    FactorKind::ContextualRelevance,
    FactorKind::ModelPrediction,
    FactorKind::BusinessRule,
    FactorKind::ExplorationBonus,
];

impl FactorKind {
    /// The kind's name, as in the seed design (`ModelPrediction`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::SegmentMembership => "SegmentMembership",
            Self::BehavioralSignal => "BehavioralSignal",
            Self::ContextualRelevance => "ContextualRelevance",
            Self::ModelPrediction => "ModelPrediction",
            Self::BusinessRule => "BusinessRule",
            Self::ExplorationBonus => "ExplorationBonus",
        }
    }
}

impl fmt::Display for FactorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One factor of an explanation.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Factor {
    /// The category.
    pub kind: FactorKind,
    /// What it adds to the score (may be negative).
    pub contribution: f32,
}

/// The objectives of the multi-objective blend, in the order
/// [`ChosenOffer::objectives`] stores their terms. Their terms sum to the
/// [`FactorKind::ModelPrediction`] factor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Objective {
    /// The click itself: `p`.
    Click,
    /// A conversion: `p * conversion_rate`.
    Conversion,
    /// Revenue: `p * conversion_rate * revenue / revenue_scale`.
    Revenue,
    /// Lifetime value: `p * conversion_rate * lifetime_value / ltv_scale`.
    LifetimeValue,
    /// Engagement: `p * engagement`.
    Engagement,
    /// Retention: `p * retention`.
    Retention,
}

/// Every objective, in storage order.
pub const OBJECTIVES: [Objective; 6] = [
    Objective::Click,
    Objective::Conversion,
    Objective::Revenue,
    Objective::LifetimeValue,
    Objective::Engagement,
    Objective::Retention,
];

impl Objective {
    /// The objective's snake_case name, as in config files.
    pub fn name(self) -> &'static str {
        match self {
            Self::Click => "click",
            Self::Conversion => "conversion",
            Self::Revenue => "revenue",
            Self::LifetimeValue => "lifetime_value",
            Self::Engagement => "engagement",
            Self::Retention => "retention",
        }
    }
}

/// Where a request's click probabilities came from. The discriminant is
/// the wire code (`docs/PROTOCOL.md`).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    strum::VariantArray,
    strum::FromRepr,
)]
#[repr(u8)]
pub enum ScoreSource {
    /// Not scored yet.
    #[default]
    None = 0,
    /// The decision cache (an earlier model output for the same features).
    Cache = 1,
    /// The spiking network, this tick.
    Model = 2,
    /// The fallback scorer (the logistic baseline), because the model's
    /// output was invalid or inference failed.
    Fallback = 3,
    /// Nothing usable: inference failed and no fallback scorer was available.
    Failed = 4,
}

/// Why an offer was not chosen, or why a request got no offer at all. The
/// order is the index order of per-cause counters (new causes go last, so
/// wire codes stay stable).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    strum::EnumCount,
    strum::VariantArray,
    strum::IntoStaticStr,
)]
#[strum(serialize_all = "snake_case")]
pub enum NoBidCause {
    /// The catalog has no offers.
    NoOffers,
    /// The model has no output column for the offer.
    NotScored,
    /// The request could not be scored (see [`ScoreSource::Failed`]).
    ScoringFailed,
    /// The offer excludes the request's device type.
    DeviceType,
    /// The offer excludes the request's country.
    Country,
    /// The offer excludes the placement size.
    PlacementSize,
    /// The offer excludes the channel (site or app).
    Channel,
    /// The user has reached the offer's frequency cap.
    FrequencyCapped,
    /// The offer's daily budget cannot pay for this impression.
    BudgetExhausted,
    /// The offer's value is below the request's bid floor.
    BelowFloor,
    /// The request blocks the offer's advertiser domain (OpenRTB `badv`).
    BlockedAdvertiser,
    /// The offer has no creative for any kind of ad the impression offers,
    /// or none that fits it (sizes, video types and lengths, native assets).
    NoCreative,
    /// The request blocks one of the offer's content categories (OpenRTB `bcat`).
    BlockedCategory,
    /// The impression blocks one of the offer's creative attributes
    /// (OpenRTB `battr`) on every kind its creative could serve there.
    BlockedAttribute,
}

impl NoBidCause {
    /// Number of causes.
    pub const COUNT: usize = <Self as strum::EnumCount>::COUNT;

    /// Every cause, in index order.
    pub const ALL: [NoBidCause; Self::COUNT] =
        match <Self as strum::VariantArray>::VARIANTS.first_chunk() {
            Some(all) => *all,
            None => panic!("VARIANTS holds every cause"),
        };

    /// Index into per-cause counters.
    pub fn index(self) -> usize {
        self as usize
    }

    /// snake_case label.
    pub fn label(self) -> &'static str {
        self.into()
    }
}

impl fmt::Display for NoBidCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// One offer a decision chose, with its explanation.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ChosenOffer {
    /// The catalog's offer id.
    pub offer_id: u64,
    /// The offer's index in the catalog.
    pub catalog_index: u32,
    /// The blended score the ranking used: the sum of [`Self::factors`].
    pub score: f32,
    /// The calibrated click probability the score used.
    pub p_click: f32,
    /// The bid price, CPM in currency units: never below the request's floor.
    pub bid_cpm: f64,
    /// Contribution of each [`FactorKind`], in [`FACTOR_KINDS`] order.
    pub factors: [f32; 6],
    /// Term of each [`Objective`], in [`OBJECTIVES`] order; they sum to the
    /// `ModelPrediction` factor.
    pub objectives: [f32; 6],
}

impl ChosenOffer {
    /// The explanation: every factor with its kind.
    pub fn explanation(&self) -> impl Iterator<Item = Factor> + '_ {
        FACTOR_KINDS
            .iter()
            .zip(&self.factors)
            .map(|(&kind, &contribution)| Factor { kind, contribution })
    }
}

/// The engine's answer for one request: up to `top_k` offers, best first,
/// or none with the cause.
///
/// The offers live in a fixed array (no allocation per request); entries
/// past the chosen ones are leftovers, never read, and not compared by
/// `==`.
#[cfg_attr(feature = "ecs", derive(bevy_ecs::component::Component))]
#[derive(Clone, Copy, Debug, Default)]
pub struct Decision {
    /// The request's ticket.
    pub ticket: Ticket,
    offers: [ChosenOffer; TOP_K_MAX],
    len: u8,
    /// Why nothing was chosen: the cause that excluded the most offers.
    /// `None` when at least one offer was chosen.
    pub no_bid: Option<NoBidCause>,
    /// Where the click probabilities came from.
    pub source: ScoreSource,
    /// Decided in simulation mode: no state was changed.
    pub simulated: bool,
    /// How many offers each [`NoBidCause`] excluded, by [`NoBidCause::index`].
    pub excluded: [u16; NoBidCause::COUNT],
    /// How many offers passed every rule.
    pub eligible: u16,
    /// The probability that the exploration policy picks the top offer it
    /// picked, in `(0, 1]` (`docs/DECISIONS.md`, "Propensity"): exact under
    /// `none` and `epsilon_greedy`, a Monte-Carlo estimate under
    /// `thompson`; 1 when nothing was chosen. 0 until decided. A withdrawal
    /// ([`Self::withdraw_first`]) leaves it as decided. Not on the wire.
    pub propensity: f32,
    /// The creative variant of the first offer (0: the offer's own
    /// creative), chosen by Thompson sampling among the offer's variants
    /// when it has several (`cx_domain::catalog::variants`). Not on the
    /// binary wire; an OpenRTB bid carries the variant's creative id.
    pub variant: u8,
    /// The experiment arm the request was assigned to (0: in no
    /// experiment; `docs/EXPERIMENTS.md`): its model scored the request.
    /// Not on the binary wire.
    pub arm: u16,
}

impl Decision {
    /// The chosen offers, best first.
    pub fn offers(&self) -> &[ChosenOffer] {
        &self.offers[..usize::from(self.len)]
    }

    /// Clears the decision for `ticket`, keeping the storage. Only the
    /// header is written, not the array of offers (most of the struct).
    pub fn reset(&mut self, ticket: Ticket, simulated: bool) {
        let Self {
            ticket: t,
            offers: _,
            len,
            no_bid,
            source,
            simulated: s,
            excluded,
            eligible,
            propensity,
            variant,
            arm,
        } = self;
        *t = ticket;
        *len = 0;
        *no_bid = None;
        *source = ScoreSource::default();
        *s = simulated;
        *excluded = [0; NoBidCause::COUNT];
        *eligible = 0;
        *propensity = 0.0;
        *variant = 0;
        *arm = 0;
    }

    /// Moves `offer` to the top of the list (an exploration policy's pick;
    /// its score must be the best): taken out of the list if it is there
    /// (by catalog index), else the last kept offer drops out when `k` are
    /// kept already.
    pub fn promote(&mut self, offer: ChosenOffer, k: usize) {
        let k = k.clamp(1, TOP_K_MAX);
        let len = usize::from(self.len);
        let end = match self.offers[..len]
            .iter()
            .position(|o| o.catalog_index == offer.catalog_index)
        {
            Some(at) => at + 1,
            None => (len + 1).min(k),
        };
        self.offers.copy_within(0..end - 1, 1);
        self.offers[0] = offer;
        self.len = self.len.max(end as u8);
    }

    /// Offers `offer` to a top-`k` list kept best first (`k` at most
    /// [`TOP_K_MAX`]): inserted at its rank if it beats the last one kept.
    /// Ties keep the earlier offer first, so the order is deterministic.
    pub fn consider(&mut self, offer: ChosenOffer, k: usize) {
        let k = k.min(TOP_K_MAX);
        let len = usize::from(self.len);
        let rank = self.offers[..len]
            .iter()
            .position(|kept| offer.score > kept.score)
            .unwrap_or(len);
        if rank >= k {
            return;
        }
        let end = (len + 1).min(k);
        self.offers.copy_within(rank..end - 1, rank + 1);
        self.offers[rank] = offer;
        self.len = end as u8;
    }

    /// Withdraws the best offer, counted as excluded by `cause`: the
    /// others move up a rank, and [`Self::no_bid`] is settled again. For a
    /// commit that finds the winner's cap or budget taken by another
    /// worker since it was decided. No-op when nothing was chosen.
    pub fn withdraw_first(&mut self, cause: NoBidCause) {
        let len = usize::from(self.len);
        if len == 0 {
            return;
        }
        self.offers.copy_within(1..len, 0);
        self.len -= 1;
        // A variant belongs to the offer withdrawn.
        self.variant = 0;
        self.eligible = self.eligible.saturating_sub(1);
        self.exclude(cause);
        self.settle();
    }

    /// Sets the first offer's bid (a price shaded after ranking: the
    /// ranking used the score, never the price). Nothing without offers.
    pub fn reprice_first(&mut self, bid_cpm: f64) {
        if self.len > 0 {
            self.offers[0].bid_cpm = bid_cpm;
        }
    }

    /// Counts one offer excluded by `cause`.
    pub fn exclude(&mut self, cause: NoBidCause) {
        let n = &mut self.excluded[cause.index()];
        *n = n.saturating_add(1);
    }

    /// Sets [`Self::no_bid`] from the exclusion counts when nothing was
    /// chosen: the cause with the most exclusions, the first in
    /// [`NoBidCause::ALL`] on a tie, or `NoOffers` when nothing was excluded.
    pub fn settle(&mut self) {
        if self.len > 0 {
            self.no_bid = None;
            return;
        }
        let mut best = (NoBidCause::NoOffers, 0u16);
        for cause in NoBidCause::ALL {
            let n = self.excluded[cause.index()];
            if n > best.1 {
                best = (cause, n);
            }
        }
        self.no_bid = Some(best.0);
    }
}

impl PartialEq for Decision {
    /// Equal when everything read through the API is: the chosen offers
    /// compare as a slice, so leftovers past them do not count.
    fn eq(&self, other: &Self) -> bool {
        let Self {
            ticket,
            offers: _,
            len: _,
            no_bid,
            source,
            simulated,
            excluded,
            eligible,
            propensity,
            variant,
            arm,
        } = self;
        *ticket == other.ticket
            && self.offers() == other.offers()
            && *no_bid == other.no_bid
            && *source == other.source
            && *simulated == other.simulated
            && *excluded == other.excluded
            && *eligible == other.eligible
            && propensity.to_bits() == other.propensity.to_bits()
            && *variant == other.variant
            && *arm == other.arm
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(id: u64, score: f32) -> ChosenOffer {
        ChosenOffer {
            offer_id: id,
            score,
            ..ChosenOffer::default()
        }
    }

    #[test]
    fn consider_keeps_the_best_k_in_order_and_ties_first_come() {
        let mut d = Decision::default();
        for (id, score) in [(1, 0.5), (2, 0.9), (3, 0.1), (4, 0.9), (5, 0.7)] {
            d.consider(offer(id, score), 3);
        }
        let ids: Vec<u64> = d.offers().iter().map(|o| o.offer_id).collect();
        assert_eq!(ids, [2, 4, 5]);
        let mut one = Decision::default();
        for (id, score) in [(1, 0.5), (2, 0.4), (3, 0.6)] {
            one.consider(offer(id, score), 1);
        }
        assert_eq!(one.offers().len(), 1);
        assert_eq!(one.offers()[0].offer_id, 3);
        let mut none = Decision::default();
        none.consider(offer(1, 1.0), 0);
        assert!(none.offers().is_empty());
        let mut capped = Decision::default();
        for id in 0..20 {
            capped.consider(offer(id, id as f32), 99);
        }
        assert_eq!(capped.offers().len(), TOP_K_MAX);
        assert_eq!(capped.offers()[0].offer_id, 19);
    }

    #[test]
    fn settle_names_the_commonest_exclusion() {
        let mut d = Decision::default();
        d.settle();
        assert_eq!(d.no_bid, Some(NoBidCause::NoOffers));
        d.exclude(NoBidCause::BelowFloor);
        d.exclude(NoBidCause::Country);
        d.exclude(NoBidCause::BelowFloor);
        d.settle();
        assert_eq!(d.no_bid, Some(NoBidCause::BelowFloor));
        d.consider(offer(1, 0.2), 1);
        d.settle();
        assert_eq!(d.no_bid, None);
    }

    #[test]
    fn a_reset_decision_equals_a_fresh_one_whatever_it_held() {
        let mut used = Decision::default();
        for id in 0..5 {
            used.consider(offer(id, id as f32), 3);
        }
        used.exclude(NoBidCause::BelowFloor);
        used.eligible = 5;
        used.source = ScoreSource::Model;
        used.settle();
        let ticket = Ticket(7);
        used.reset(ticket, true);
        let fresh = Decision {
            ticket,
            simulated: true,
            ..Decision::default()
        };
        assert!(used.offers().is_empty());
        assert_eq!(used, fresh, "leftover offers past len are not compared");
        // The chosen offers are compared.
        used.consider(offer(1, 0.5), 3);
        assert_ne!(used, fresh);
        let mut other = fresh;
        other.consider(offer(2, 0.5), 3);
        assert_ne!(used, other);
    }

    #[test]
    fn promote_puts_the_pick_first_and_keeps_the_rest_in_order() {
        let ranked = |ids: &[u64], k: usize| {
            let mut d = Decision::default();
            for &id in ids {
                let mut o = offer(id, 1.0 / id as f32);
                o.catalog_index = id as u32;
                d.consider(o, k);
            }
            d
        };
        let ids_of = |d: &Decision| d.offers().iter().map(|o| o.offer_id).collect::<Vec<_>>();
        let mut pick = offer(3, 9.0);
        pick.catalog_index = 3;
        // In the list: moved up, nothing lost.
        let mut d = ranked(&[1, 2, 3, 4], 4);
        d.promote(pick, 4);
        assert_eq!(ids_of(&d), [3, 1, 2, 4]);
        assert_eq!(d.offers()[0].score, 9.0);
        // Not in the list: the last kept drops out.
        let mut d = ranked(&[1, 2], 2);
        d.promote(pick, 2);
        assert_eq!(ids_of(&d), [3, 1]);
        // Room left: the list grows.
        let mut d = ranked(&[1], 3);
        d.promote(pick, 3);
        assert_eq!(ids_of(&d), [3, 1]);
        // Already first: only its entry changes.
        let mut d = ranked(&[3, 4], 3);
        d.promote(pick, 3);
        assert_eq!(ids_of(&d), [3, 4]);
        let mut empty = Decision::default();
        empty.promote(pick, 1);
        assert_eq!(ids_of(&empty), [3]);
    }

    #[test]
    fn causes_index_their_own_slot() {
        for (i, cause) in NoBidCause::ALL.iter().enumerate() {
            assert_eq!(cause.index(), i);
        }
    }
}
