//! The pipeline's tunables, as serde types with documented defaults. The
//! engine reads them from TOML and environment overrides; each section is
//! also an ECS resource its systems read.

use crate::error::{Error, Result};
use bevy_ecs::prelude::Resource;
use cx_domain::pipeline::TOP_K_MAX;
use serde::{Deserialize, Serialize};

/// Most rows one inference batch may hold (the backends' own limit).
pub const BATCH_MAX_LIMIT: usize = cx_backends::BATCH_MAX_LIMIT;

/// Most requests one tick may take from the ingress.
pub const INGEST_MAX_LIMIT: usize = 1 << 16;

/// How rows that missed the cache are grouped into inference batches: a
/// Nagle-style policy. Every tick runs full batches of `batch_max` rows; a
/// last, partial batch runs at once when the ingress is drained (nothing is
/// queued behind it) or its oldest row has waited `wait_us_max`, and is
/// held for the next tick otherwise.
#[derive(Resource, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchPolicy {
    /// Rows per inference batch. Default 8: in `docs/BENCHMARKS.md`,
    /// throughput stops rising beyond it while tick latency keeps growing
    /// with the batch, and 8 is the largest batch whose p99 tick stayed under
    /// 100 µs.
    pub batch_max: usize,
    /// Longest a partial batch is held while more requests are queued, µs.
    /// Default 500, the seed design's value.
    pub wait_us_max: u64,
    /// Most requests one tick takes from the ingress; the rest wait for the
    /// next tick. Bounds the work, and so the latency, of one tick. Default 1024.
    pub ingest_max: usize,
}

impl Default for BatchPolicy {
    fn default() -> Self {
        Self {
            batch_max: 8,
            wait_us_max: 500,
            ingest_max: 1024,
        }
    }
}

impl BatchPolicy {
    /// Checks every field against its limit.
    pub fn validate(&self) -> Result<()> {
        in_range("batch.batch_max", self.batch_max, 1, BATCH_MAX_LIMIT)?;
        in_range("batch.ingest_max", self.ingest_max, 1, INGEST_MAX_LIMIT)?;
        in_range(
            "batch.wait_us_max",
            self.wait_us_max as usize,
            0,
            10_000_000,
        )
    }
}

/// Weights of the multi-objective blend: each multiplies one
/// [`Objective`](cx_domain::pipeline::Objective) term.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObjectiveWeights {
    /// Weight of `p`.
    pub click: f32,
    /// Weight of `p * conversion_rate`.
    pub conversion: f32,
    /// Weight of `p * conversion_rate * revenue / revenue_scale`.
    pub revenue: f32,
    /// Weight of `p * conversion_rate * lifetime_value / ltv_scale`.
    pub lifetime_value: f32,
    /// Weight of `p * engagement`.
    pub engagement: f32,
    /// Weight of `p * retention`.
    pub retention: f32,
}

impl Default for ObjectiveWeights {
    fn default() -> Self {
        Self {
            click: 1.0,
            conversion: 0.5,
            revenue: 0.5,
            lifetime_value: 0.25,
            engagement: 0.1,
            retention: 0.1,
        }
    }
}

impl ObjectiveWeights {
    /// The weights in [`OBJECTIVES`](cx_domain::pipeline::OBJECTIVES) order.
    pub fn as_array(&self) -> [f32; 6] {
        [
            self.click,
            self.conversion,
            self.revenue,
            self.lifetime_value,
            self.engagement,
            self.retention,
        ]
    }
}

/// How the decide system scores, filters, ranks and prices offers.
/// `docs/DECISIONS.md` gives the formulas.
#[derive(Resource, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DecideConfig {
    /// Offers per decision, 1..=8. Default 3.
    pub top_k: usize,
    /// The objective blend's weights.
    pub weights: ObjectiveWeights,
    /// Currency amount that counts as 1 in the revenue term. Default 10.
    pub revenue_scale: f32,
    /// Currency amount that counts as 1 in the lifetime-value term. Default 100.
    pub ltv_scale: f32,
    /// Added when the offer targets one of the user's segments. Default 0.01.
    pub segment_bonus: f32,
    /// Added when the offer's categories match the page's. Default 0.01.
    pub context_bonus: f32,
    /// Fatigue: subtracted, times `min(1, seen / fatigue_impressions)`, where
    /// `seen` is the user's impressions of the offer in the window. Default 0.02.
    pub fatigue_weight: f32,
    /// Impressions at which fatigue is full. Default 10.
    pub fatigue_impressions: u32,
    /// Window, seconds, in which impressions are counted for fatigue for an
    /// offer without a frequency cap; an offer with a cap counts in its cap's
    /// window (the store keeps one window per user and offer). Default 86400.
    pub fatigue_window_s: u32,
    /// Multiplies the catalog's per-offer `boost` (in `[-1, 1]`). Default 0.02.
    pub boost_weight: f32,
    /// With a feature store: the feature read as the user's recency
    /// (days since the event, or a boolean "recent"), in BehavioralSignal
    /// (`docs/DECISIONS.md`); `""` turns the term off. Default
    /// `days_since_purchase`.
    pub behavior_recency_feature: String,
    /// Weight of the recency term: BehavioralSignal gains
    /// `ModelPrediction * weight * recency`, recency in `[0, 1]`. Default 0.1.
    pub behavior_recency_weight: f32,
    /// Days after which a numeric recency feature's term halves, in
    /// `(0, 36500]`. Default 30.
    pub behavior_recency_half_life_days: f32,
    /// With a feature store: the feature read as the user's response ratio
    /// (a click-through or conversion rate); `""` turns the term off.
    /// Default `ctr_30d`.
    pub behavior_ratio_feature: String,
    /// Weight of the ratio term: BehavioralSignal gains
    /// `ModelPrediction * weight * lift`, lift in `[-1, 1]`. Default 0.1.
    pub behavior_ratio_weight: f32,
    /// The ratio at which the lift is 0 (finite, above 0). Default 0.02,
    /// the bundled `ctr_30d`'s prior mean.
    pub behavior_ratio_reference: f32,
    /// The exploration policy (`docs/DECISIONS.md`, "Exploration").
    /// Default `thompson`.
    pub exploration: Exploration,
    /// Under `epsilon_greedy`: the probability, in `[0, 1]`, that the top
    /// offer is a uniform choice among the eligible ones. Default 0.05.
    pub epsilon: f32,
    /// Under `thompson`: how many impressions the model's prediction is
    /// worth as the prior of an offer's click rate, in `[1, 1e9]`.
    /// Default 100.
    pub thompson_prior_impressions: f64,
    /// Under `thompson`: the share of decisions, in `[0, 1)`, whose top
    /// offer is a uniform choice among the eligible ones instead of the
    /// posterior draws' best (lifted to the top by its bonus, as under
    /// `epsilon_greedy`). Every eligible offer then has a probability of
    /// at least this over their number, so off-policy estimates of any
    /// target policy have support (`docs/DECISIONS.md`, "Propensity"), at
    /// a regret that grows by this share of uniform choice's. Default 0.
    pub thompson_uniform_share: f32,
    /// Half-life of an observation in the posteriors, seconds; 0: no
    /// discounting. In `[0, 315360000]` (ten years). Default 86400.
    pub posterior_half_life_s: f64,
    /// Under `thompson`: the most replica rounds behind a decision's
    /// propensity (the rounds stop at the first the chosen offer wins; its
    /// propensity is one over their number), `1..=PROPENSITY_SAMPLES_MAX`.
    /// Bounds the cost of an unlikely pick; an offer picked with
    /// probability under about its inverse gets a propensity too high.
    /// Default 1024.
    pub propensity_samples: usize,
    /// Bid shading in `[0, 1]`: the bid is `floor + shading * (value - floor)`,
    /// capped at the offer's `max_bid_cpm`. Default 0.5.
    pub bid_shading: f64,
    /// Learn win rates against bid price per placement from win and loss
    /// notices, and price an auction bid to maximise the expected surplus
    /// once a placement has enough bids (`docs/DECISIONS.md`, "Learned bid
    /// shading"); until then, and when false, the static rule above.
    /// Default true.
    pub learned_shading: bool,
    /// Under learned shading: the share of auction bids priced at a random
    /// price bucket between the floor and the value instead, so the curve
    /// sees prices it would not otherwise try; in `[0, 1]`. Default 0.05.
    pub price_exploration: f64,
}

impl Default for DecideConfig {
    fn default() -> Self {
        Self {
            top_k: 3,
            weights: ObjectiveWeights::default(),
            revenue_scale: 10.0,
            ltv_scale: 100.0,
            segment_bonus: 0.01,
            context_bonus: 0.01,
            fatigue_weight: 0.02,
            fatigue_impressions: 10,
            fatigue_window_s: 86_400,
            boost_weight: 0.02,
            behavior_recency_feature: "days_since_purchase".into(),
            behavior_recency_weight: 0.1,
            behavior_recency_half_life_days: 30.0,
            behavior_ratio_feature: "ctr_30d".into(),
            behavior_ratio_weight: 0.1,
            behavior_ratio_reference: 0.02,
            exploration: Exploration::Thompson,
            epsilon: 0.05,
            thompson_prior_impressions: 100.0,
            thompson_uniform_share: 0.0,
            posterior_half_life_s: 86_400.0,
            propensity_samples: 1024,
            bid_shading: 0.5,
            learned_shading: true,
            price_exploration: 0.05,
        }
    }
}

/// Largest weight or bonus accepted; keeps every score finite.
pub const WEIGHT_MAX: f32 = 1e6;

/// Most replica rounds behind one propensity.
pub const PROPENSITY_SAMPLES_MAX: usize = 65_536;

/// How the decide step explores (`docs/DECISIONS.md`, "Exploration").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Exploration {
    /// Thompson sampling on each offer's click-rate posterior, with the
    /// model as the prior: the ExplorationBonus is the blend at the drawn
    /// click rate less the blend at the model's.
    #[default]
    Thompson,
    /// With probability `epsilon` the top offer is a uniform choice among
    /// the eligible ones, lifted to the top by its ExplorationBonus.
    EpsilonGreedy,
    /// No exploration: the ExplorationBonus is 0.
    None,
}

impl Exploration {
    /// The config's name of the policy.
    pub fn name(self) -> &'static str {
        match self {
            Self::Thompson => "thompson",
            Self::EpsilonGreedy => "epsilon_greedy",
            Self::None => "none",
        }
    }
}

impl DecideConfig {
    /// Checks every field: weights finite and in `[0, WEIGHT_MAX]`, scales
    /// positive, `top_k` in `1..=TOP_K_MAX`, shading and `epsilon` in
    /// `[0, 1]`, the exploration settings in their ranges.
    pub fn validate(&self) -> Result<()> {
        in_range("decide.top_k", self.top_k, 1, TOP_K_MAX)?;
        let w = &self.weights;
        let weights = [
            ("decide.weights.click", w.click),
            ("decide.weights.conversion", w.conversion),
            ("decide.weights.revenue", w.revenue),
            ("decide.weights.lifetime_value", w.lifetime_value),
            ("decide.weights.engagement", w.engagement),
            ("decide.weights.retention", w.retention),
            ("decide.segment_bonus", self.segment_bonus),
            ("decide.context_bonus", self.context_bonus),
            ("decide.fatigue_weight", self.fatigue_weight),
            ("decide.boost_weight", self.boost_weight),
            (
                "decide.behavior_recency_weight",
                self.behavior_recency_weight,
            ),
            ("decide.behavior_ratio_weight", self.behavior_ratio_weight),
        ];
        for (field, value) in weights {
            if !(0.0..=WEIGHT_MAX).contains(&value) {
                return Err(Error::Config {
                    field,
                    reason: format!("{value} is not in [0, {WEIGHT_MAX}]"),
                });
            }
        }
        for (field, value) in [
            ("decide.revenue_scale", self.revenue_scale),
            ("decide.ltv_scale", self.ltv_scale),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return Err(Error::Config {
                    field,
                    reason: format!("{value} must be finite and positive"),
                });
            }
        }
        let half_life = self.behavior_recency_half_life_days;
        if !(half_life > 0.0 && half_life <= 36_500.0) {
            return Err(Error::Config {
                field: "decide.behavior_recency_half_life_days",
                reason: format!("{half_life} is not in (0, 36500]"),
            });
        }
        let reference = self.behavior_ratio_reference;
        if !(reference.is_finite() && reference > 0.0) {
            return Err(Error::Config {
                field: "decide.behavior_ratio_reference",
                reason: format!("{reference} must be finite and positive"),
            });
        }
        if !(0.0..=1.0).contains(&self.epsilon) {
            return Err(Error::Config {
                field: "decide.epsilon",
                reason: format!("{} is not in [0, 1]", self.epsilon),
            });
        }
        if !(1.0..=1e9).contains(&self.thompson_prior_impressions) {
            return Err(Error::Config {
                field: "decide.thompson_prior_impressions",
                reason: format!("{} is not in [1, 1e9]", self.thompson_prior_impressions),
            });
        }
        if !(0.0..1.0).contains(&self.thompson_uniform_share) {
            return Err(Error::Config {
                field: "decide.thompson_uniform_share",
                reason: format!("{} is not in [0, 1)", self.thompson_uniform_share),
            });
        }
        let half_life_max = cx_domain::store::posteriors::HALF_LIFE_S_MAX;
        if !(0.0..=half_life_max).contains(&self.posterior_half_life_s) {
            return Err(Error::Config {
                field: "decide.posterior_half_life_s",
                reason: format!(
                    "{} is not in [0, {half_life_max}]",
                    self.posterior_half_life_s
                ),
            });
        }
        in_range(
            "decide.propensity_samples",
            self.propensity_samples,
            1,
            PROPENSITY_SAMPLES_MAX,
        )?;
        if !(0.0..=1.0).contains(&self.bid_shading) {
            return Err(Error::Config {
                field: "decide.bid_shading",
                reason: format!("{} is not in [0, 1]", self.bid_shading),
            });
        }
        if !(0.0..=1.0).contains(&self.price_exploration) {
            return Err(Error::Config {
                field: "decide.price_exploration",
                reason: format!("{} is not in [0, 1]", self.price_exploration),
            });
        }
        in_range(
            "decide.fatigue_impressions",
            self.fatigue_impressions as usize,
            1,
            1 << 20,
        )?;
        in_range(
            "decide.fatigue_window_s",
            self.fatigue_window_s as usize,
            1,
            366 * 86_400,
        )
    }
}

fn in_range(field: &'static str, value: usize, min: usize, max: usize) -> Result<()> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(Error::Config {
            field,
            reason: format!("{value} is not in {min}..={max}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        BatchPolicy::default().validate().unwrap();
        DecideConfig::default().validate().unwrap();
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases: Vec<(DecideConfig, &str)> = vec![
            (
                DecideConfig {
                    top_k: 0,
                    ..Default::default()
                },
                "decide.top_k",
            ),
            (
                DecideConfig {
                    top_k: TOP_K_MAX + 1,
                    ..Default::default()
                },
                "decide.top_k",
            ),
            (
                DecideConfig {
                    weights: ObjectiveWeights {
                        revenue: f32::NAN,
                        ..Default::default()
                    },
                    ..Default::default()
                },
                "decide.weights.revenue",
            ),
            (
                DecideConfig {
                    epsilon: 1.5,
                    ..Default::default()
                },
                "decide.epsilon",
            ),
            (
                DecideConfig {
                    thompson_prior_impressions: 0.5,
                    ..Default::default()
                },
                "decide.thompson_prior_impressions",
            ),
            (
                DecideConfig {
                    thompson_uniform_share: 1.0,
                    ..Default::default()
                },
                "decide.thompson_uniform_share",
            ),
            (
                DecideConfig {
                    posterior_half_life_s: f64::NAN,
                    ..Default::default()
                },
                "decide.posterior_half_life_s",
            ),
            (
                DecideConfig {
                    propensity_samples: 0,
                    ..Default::default()
                },
                "decide.propensity_samples",
            ),
            (
                DecideConfig {
                    ltv_scale: 0.0,
                    ..Default::default()
                },
                "decide.ltv_scale",
            ),
            (
                DecideConfig {
                    behavior_recency_half_life_days: 0.0,
                    ..Default::default()
                },
                "decide.behavior_recency_half_life_days",
            ),
            (
                DecideConfig {
                    behavior_ratio_reference: f32::NAN,
                    ..Default::default()
                },
                "decide.behavior_ratio_reference",
            ),
            (
                DecideConfig {
                    behavior_ratio_weight: -1.0,
                    ..Default::default()
                },
                "decide.behavior_ratio_weight",
            ),
            (
                DecideConfig {
                    bid_shading: 1.5,
                    ..Default::default()
                },
                "decide.bid_shading",
            ),
        ];
        for (config, field) in cases {
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(field), "{err} should name {field}");
        }
        let err = BatchPolicy {
            batch_max: 0,
            ..Default::default()
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(err.contains("batch.batch_max"), "{err}");
    }
}
