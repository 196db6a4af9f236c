//! The off-policy estimators: IPS, SNIPS and doubly robust, each with a
//! confidence interval; the effective sample size; and the logging
//! policy's own (on-policy) value.
//!
//! Each event `i` gives the reward `r_i` of the action `a_i` the logging
//! policy took with probability `μ_i`, the target policy's probability
//! `π_i(a)` of every candidate action, and, for doubly robust, a reward
//! model `r̂_i(a)`. With the importance weight `w_i = π_i(a_i) / μ_i`:
//!
//! ```text
//! IPS    = mean(w_i r_i)
//! SNIPS  = Σ w_i r_i / Σ w_i
//! DR     = mean(d_i),  d_i = Σ_a π_i(a) r̂_i(a) + w_i (r_i − r̂_i(a_i))
//! ESS    = (Σ w_i)² / Σ w_i²
//! logging policy = mean(r_i)
//! ```
//!
//! **Intervals** are normal approximations: `value ± z · SE`, with `z` the
//! two-sided normal quantile of the level and `SE` from the sample
//! variance (`n − 1` denominator) of the per-event terms; for SNIPS, a
//! ratio of means, the delta method: `SE² = (s²_y − 2 V s_wy + V² s²_w) /
//! (n · mean(w)²)` with `y_i = w_i r_i` and `V` = SNIPS. The moments are
//! accumulated in one pass (Welford's updates), so a log of any length is
//! evaluated in constant memory. The intervals are not clipped to the
//! reward range.

use crate::error::{Error, Result};
use serde::Serialize;

/// The confidence level used unless another is asked for.
pub const LEVEL_DEFAULT: f64 = 0.95;

/// How far a target distribution may sum from 1.
pub const TARGET_SUM_TOLERANCE: f64 = 1e-6;

/// One logged event as the estimators see it.
#[derive(Clone, Copy, Debug)]
pub struct Observation<'a> {
    /// The reward observed for the action taken (finite).
    pub reward: f64,
    /// The action taken: an index into [`Self::target`].
    pub chosen: usize,
    /// The logging policy's probability of the action taken, in `(0, 1]`.
    pub logging_probability: f64,
    /// The target policy's probability of each candidate action: each in
    /// `[0, 1]`, summing to 1.
    pub target: &'a [f64],
    /// The reward model `r̂(x, a)` for each candidate action (finite), for
    /// doubly robust; give it for every event or for none.
    pub reward_model: Option<&'a [f64]>,
}

/// An estimate and its confidence interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Estimate {
    /// The point estimate.
    pub value: f64,
    /// Its standard error.
    pub std_error: f64,
    /// The interval's lower end, `value - z * std_error`.
    pub lower: f64,
    /// The interval's upper end, `value + z * std_error`.
    pub upper: f64,
}

impl Estimate {
    fn new(value: f64, variance: f64, z: f64) -> Self {
        let std_error = variance.max(0.0).sqrt();
        Self {
            value,
            std_error,
            lower: value - z * std_error,
            upper: value + z * std_error,
        }
    }

    /// Whether `x` lies in the interval (ends included).
    pub fn covers(&self, x: f64) -> bool {
        self.lower <= x && x <= self.upper
    }
}

/// What [`Evaluator::finish`] reports.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// Events evaluated.
    pub events: u64,
    /// The intervals' confidence level.
    pub level: f64,
    /// Inverse propensity scoring.
    pub ips: Estimate,
    /// Self-normalised IPS.
    pub snips: Estimate,
    /// Doubly robust, when a reward model was given.
    pub dr: Option<Estimate>,
    /// The logging policy's own value: the mean reward in the log.
    pub logging_policy: Estimate,
    /// `(Σ w)² / Σ w²`: how many on-policy events the weighted log is worth.
    pub effective_sample_size: f64,
    /// Mean importance weight (1 in expectation when the target's support
    /// is inside the logging policy's).
    pub weight_mean: f64,
    /// Largest importance weight.
    pub weight_max: f64,
    /// Smallest reward in the log.
    pub reward_min: f64,
    /// Largest reward in the log.
    pub reward_max: f64,
}

/// Running mean and sum of squared deviations (Welford).
#[derive(Clone, Copy, Debug, Default)]
struct Moments {
    mean: f64,
    m2: f64,
}

impl Moments {
    /// Adds `x` as the `n`-th value (`n` from 1).
    fn add(&mut self, x: f64, n: f64) -> f64 {
        let delta = x - self.mean;
        self.mean += delta / n;
        self.m2 += delta * (x - self.mean);
        delta
    }

    /// The sample variance of `n` values.
    fn variance(&self, n: f64) -> f64 {
        self.m2 / (n - 1.0)
    }
}

/// Accumulates observations and computes every estimate in one pass.
#[derive(Clone, Debug)]
pub struct Evaluator {
    level: f64,
    z: f64,
    events: u64,
    weight: Moments,
    weighted_reward: Moments,
    /// Co-moment of the weight and the weighted reward.
    weight_reward_m2: f64,
    weight_square_sum: f64,
    weight_sum: f64,
    weight_max: f64,
    doubly_robust: Moments,
    reward: Moments,
    reward_min: f64,
    reward_max: f64,
    /// Whether the events carry a reward model (set by the first).
    with_reward_model: Option<bool>,
}

impl Evaluator {
    /// An evaluator whose intervals have confidence `level`, in `(0, 1)`.
    pub fn new(level: f64) -> Result<Self> {
        let z = cx_experiments::stats::z_for(level).map_err(|_| Error::Parameter {
            name: "level",
            value: level,
            expected: "between 0 and 1 (e.g. 0.95)",
        })?;
        Ok(Self {
            level,
            z,
            events: 0,
            weight: Moments::default(),
            weighted_reward: Moments::default(),
            weight_reward_m2: 0.0,
            weight_square_sum: 0.0,
            weight_sum: 0.0,
            weight_max: 0.0,
            doubly_robust: Moments::default(),
            reward: Moments::default(),
            reward_min: f64::INFINITY,
            reward_max: f64::NEG_INFINITY,
            with_reward_model: None,
        })
    }

    /// Events added so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Adds one event. A bad observation is refused with an error naming
    /// it and its field, and changes nothing.
    pub fn add(&mut self, obs: &Observation<'_>) -> Result<()> {
        let event = self.events;
        let bad = |field: &'static str, reason: String| Error::Observation {
            event,
            field,
            reason,
        };
        if !obs.reward.is_finite() {
            return Err(bad("reward", format!("is {}, not finite", obs.reward)));
        }
        let mu = obs.logging_probability;
        if !(mu > 0.0 && mu <= 1.0) {
            return Err(bad(
                "logging_probability",
                format!("is {mu}, outside (0, 1]"),
            ));
        }
        let k = obs.target.len();
        if obs.chosen >= k {
            return Err(bad(
                "chosen",
                format!("is {}, but the target lists {k} actions", obs.chosen),
            ));
        }
        let mut mass = 0.0;
        for &p in obs.target {
            if !(0.0..=1.0).contains(&p) {
                return Err(bad("target", format!("holds {p}, outside [0, 1]")));
            }
            mass += p;
        }
        if mass == 0.0 {
            return Err(bad(
                "target",
                "puts no probability on any logged action".into(),
            ));
        }
        if (mass - 1.0).abs() > TARGET_SUM_TOLERANCE {
            return Err(bad(
                "target",
                format!("sums to {mass}, not 1 (within {TARGET_SUM_TOLERANCE})"),
            ));
        }
        let with_model = obs.reward_model.is_some();
        if self
            .with_reward_model
            .is_some_and(|first| first != with_model)
        {
            return Err(bad(
                "reward_model",
                "is given for some events and not others".into(),
            ));
        }
        if let Some(model) = obs.reward_model {
            if model.len() != k {
                return Err(bad(
                    "reward_model",
                    format!("lists {} actions, the target {k}", model.len()),
                ));
            }
            if let Some(r) = model.iter().find(|r| !r.is_finite()) {
                return Err(bad("reward_model", format!("holds {r}, not finite")));
            }
        }

        self.with_reward_model = Some(with_model);
        self.events += 1;
        let n = self.events as f64;
        let w = obs.target[obs.chosen] / mu;
        let y = w * obs.reward;
        // Co-moment update: uses the weight's deviation from the old mean
        // and the weighted reward's from the new one.
        let weight_delta = self.weight.add(w, n);
        self.weighted_reward.add(y, n);
        self.weight_reward_m2 += weight_delta * (y - self.weighted_reward.mean);
        self.weight_sum += w;
        self.weight_square_sum += w * w;
        self.weight_max = self.weight_max.max(w);
        if let Some(model) = obs.reward_model {
            let direct: f64 = obs.target.iter().zip(model).map(|(p, r)| p * r).sum();
            let d = direct + w * (obs.reward - model[obs.chosen]);
            self.doubly_robust.add(d, n);
        }
        self.reward.add(obs.reward, n);
        self.reward_min = self.reward_min.min(obs.reward);
        self.reward_max = self.reward_max.max(obs.reward);
        Ok(())
    }

    /// Every estimate over the events added.
    pub fn finish(&self) -> Result<Report> {
        let events = self.events;
        if events == 0 {
            return Err(Error::EmptyLog);
        }
        if events < 2 {
            return Err(Error::TooFewEvents { events });
        }
        if self.weight_sum == 0.0 {
            return Err(Error::NoOverlap { events });
        }
        let n = events as f64;
        let z = self.z;
        let ips = Estimate::new(
            self.weighted_reward.mean,
            self.weighted_reward.variance(n) / n,
            z,
        );
        let snips_value = self.weighted_reward.mean / self.weight.mean;
        let covariance = self.weight_reward_m2 / (n - 1.0);
        let snips_variance = (self.weighted_reward.variance(n) - 2.0 * snips_value * covariance
            + snips_value * snips_value * self.weight.variance(n))
            / (n * self.weight.mean * self.weight.mean);
        let snips = Estimate::new(snips_value, snips_variance, z);
        let dr = (self.with_reward_model == Some(true)).then(|| {
            Estimate::new(
                self.doubly_robust.mean,
                self.doubly_robust.variance(n) / n,
                z,
            )
        });
        let logging_policy = Estimate::new(self.reward.mean, self.reward.variance(n) / n, z);
        Ok(Report {
            events,
            level: self.level,
            ips,
            snips,
            dr,
            logging_policy,
            effective_sample_size: self.weight_sum * self.weight_sum / self.weight_square_sum,
            weight_mean: self.weight.mean,
            weight_max: self.weight_max,
            reward_min: self.reward_min,
            reward_max: self.reward_max,
        })
    }
}
