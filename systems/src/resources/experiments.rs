//! Experiments served live: which model scores each request, and what each
//! experiment arm was counted.
//!
//! - [`ExperimentRoutes`] holds the live experiments, in order, each
//!   GrowthBook definition with one [`ArmRoute`] per variation: the arm's
//!   id (stable across reloads; the decision log records it) and the
//!   scoring slot whose model serves it (0: the default model). The
//!   features system assigns each request ([`ExperimentRoutes::assign`])
//!   and records the result in its [`Arm`] component.
//! - [`ExperimentCounts`] holds per arm id what was counted: assignments,
//!   decisions, and the impressions, clicks and conversions that feedback
//!   joined to its decisions.
//!
//! Layout: the counts are one flat `Vec` indexed by arm id, so counting is
//! one index; ids are small (below [`ARMS_MAX`]) and dense because the
//! [`ArmRegistry`] hands them out in order. The routes are a short `Vec`
//! scanned in order per request: a handful of experiments at most.

use crate::error::{Error, Result};
use bevy_ecs::prelude::{Component, Resource};
use cx_experiments::{AttrValue, Attributes, Experiment, RunOptions};
use cx_features::RequestContext;
use std::collections::BTreeMap;

/// Arm ids run from 1 to `ARMS_MAX - 1` (0 is "in no experiment").
pub const ARMS_MAX: usize = 4096;
/// Most experiments live at once.
pub const EXPERIMENTS_MAX: usize = 64;
/// Most models serving experiment arms beside the default model.
pub const ARM_MODELS_MAX: usize = 16;

/// Which experiment arm a request was assigned to, and the scoring slot
/// whose model scores it. The default (`id` 0, `slot` 0): in no
/// experiment, scored by the default model.
#[derive(Component, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Arm {
    /// The arm's id (0: none).
    pub id: u16,
    /// The scoring slot: 0 for the default model, `k` for
    /// [`crate::resources::Scoring::arms`]`[k - 1]`.
    pub slot: u16,
}

/// One variation of a live experiment: its arm id and scoring slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArmRoute {
    /// The arm id.
    pub id: u16,
    /// The scoring slot (0: the default model).
    pub slot: u16,
}

/// A live experiment: its definition and one route per variation.
#[derive(Clone, Debug)]
pub struct LiveExperiment {
    /// The GrowthBook definition, parsed.
    pub experiment: Experiment,
    /// Per variation, in order.
    pub routes: Vec<ArmRoute>,
}

/// The live experiments, in order: a request is in the first whose
/// assignment puts it in ([`Self::assign`]).
#[derive(Resource, Clone, Debug, Default)]
pub struct ExperimentRoutes {
    experiments: Vec<LiveExperiment>,
    /// Per arm, in route order: what [`Self::arm`] finds.
    arms: Vec<ArmInfo>,
}

/// An arm of a live experiment, found by id ([`ExperimentRoutes::arm`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArmInfo {
    /// Its route.
    pub route: ArmRoute,
    /// The experiment's index among the live ones.
    pub experiment: usize,
    /// The variation's index.
    pub variation: usize,
    /// The experiment's key.
    pub experiment_key: String,
    /// The variation's key (`meta[i].key`, or its index).
    pub variation_key: String,
}

impl ExperimentRoutes {
    /// Routes for `experiments`, checked: at most [`EXPERIMENTS_MAX`], one
    /// route per variation, arm ids non-zero, below [`ARMS_MAX`] and
    /// unique, slots at most `slots_max`.
    pub fn new(experiments: Vec<LiveExperiment>, slots_max: usize) -> Result<Self> {
        if experiments.len() > EXPERIMENTS_MAX {
            return Err(config(format!(
                "{} experiments; at most {EXPERIMENTS_MAX} may be live",
                experiments.len()
            )));
        }
        let mut seen = vec![false; ARMS_MAX];
        let mut arms = Vec::new();
        for (e, live) in experiments.iter().enumerate() {
            let key = live.experiment.key();
            if live.routes.len() != live.experiment.variation_count() {
                return Err(config(format!(
                    "experiment `{key}`: {} arms for {} variations",
                    live.routes.len(),
                    live.experiment.variation_count()
                )));
            }
            for (variation, route) in live.routes.iter().enumerate() {
                arms.push(ArmInfo {
                    route: *route,
                    experiment: e,
                    variation,
                    experiment_key: key.to_owned(),
                    variation_key: live.experiment.variation_key(variation),
                });
                let id = usize::from(route.id);
                if id == 0 || id >= ARMS_MAX || std::mem::replace(&mut seen[id], true) {
                    return Err(config(format!(
                        "experiment `{key}`: arm id {id} is 0, at least {ARMS_MAX}, or used twice"
                    )));
                }
                if usize::from(route.slot) > slots_max {
                    return Err(config(format!(
                        "experiment `{key}`: arm {id} is scored by slot {}, and there are {slots_max}",
                        route.slot
                    )));
                }
            }
        }
        Ok(Self { experiments, arms })
    }

    /// The live arm `id`, if any (a short scan; allocation-free).
    pub fn arm(&self, id: u16) -> Option<&ArmInfo> {
        if id == 0 {
            return None;
        }
        self.arms.iter().find(|a| a.route.id == id)
    }

    /// The live experiments.
    pub fn experiments(&self) -> &[LiveExperiment] {
        &self.experiments
    }

    /// Whether any experiment is live.
    pub fn is_empty(&self) -> bool {
        self.experiments.is_empty()
    }

    /// The arm of the request `ctx`: the variation of the first experiment
    /// that puts it in, or the default when none does. Allocation-free.
    pub fn assign(&self, ctx: &RequestContext) -> Arm {
        let attrs = RequestAttributes(ctx);
        let options = RunOptions::default();
        for live in &self.experiments {
            let a = live.experiment.assign_with(&attrs, &options);
            if a.in_experiment {
                let route = live.routes[a.variation_id];
                return Arm {
                    id: route.id,
                    slot: route.slot,
                };
            }
        }
        Arm::default()
    }
}

/// A request's attributes as GrowthBook's `hashAttribute` and filters
/// read them: `id` and `user_id` (the user id), `country`, `region`,
/// `site_id`, `domain`, `is_app` and `device_type` (the OpenRTB code).
/// Empty strings and an unknown device type count as missing.
pub struct RequestAttributes<'a>(pub &'a RequestContext);

impl Attributes for RequestAttributes<'_> {
    fn attribute(&self, name: &str) -> Option<AttrValue<'_>> {
        let ctx = self.0;
        let text = match name {
            "id" | "user_id" => ctx.user_id.as_str(),
            "country" => ctx.country.as_str(),
            "region" => ctx.region.as_str(),
            "site_id" => ctx.site_id.as_str(),
            "domain" => ctx.domain.as_str(),
            "is_app" => return Some(AttrValue::Bool(ctx.is_app)),
            "device_type" => {
                let code = ctx.device_type.openrtb()?;
                return Some(AttrValue::Number(f64::from(code)));
            }
            _ => return None,
        };
        (!text.is_empty()).then_some(AttrValue::Str(text))
    }
}

/// What one arm was counted.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ArmCounts {
    /// Requests assigned to it (decided for real, not simulated).
    pub assigned: u64,
    /// Of those, decisions that chose an offer.
    pub decided: u64,
    /// Impressions of its decisions (joined feedback).
    pub impressions: u64,
    /// Clicks.
    pub clicks: u64,
    /// Conversions.
    pub conversions: u64,
    /// The conversions' value.
    pub revenue: f64,
}

impl ArmCounts {
    /// What was counted since `before` (earlier counts of the same arm).
    pub fn since(&self, before: &Self) -> Self {
        Self {
            assigned: self.assigned.saturating_sub(before.assigned),
            decided: self.decided.saturating_sub(before.decided),
            impressions: self.impressions.saturating_sub(before.impressions),
            clicks: self.clicks.saturating_sub(before.clicks),
            conversions: self.conversions.saturating_sub(before.conversions),
            revenue: (self.revenue - before.revenue).max(0.0),
        }
    }

    /// Adds `other` (another worker's counts of the same arm).
    pub fn add(&mut self, other: &Self) {
        self.assigned += other.assigned;
        self.decided += other.decided;
        self.impressions += other.impressions;
        self.clicks += other.clicks;
        self.conversions += other.conversions;
        self.revenue += other.revenue;
    }
}

/// What the engine counted per arm id (index 0: requests in no
/// experiment). Grows to the largest id routed; never shrinks, so feedback
/// for a decision made before a reload still counts for its arm.
#[derive(Resource, Clone, Debug, Default)]
pub struct ExperimentCounts {
    arms: Vec<ArmCounts>,
}

impl ExperimentCounts {
    /// Makes room for every arm `routes` names (at most [`ARMS_MAX`]).
    pub fn reserve_for(&mut self, routes: &ExperimentRoutes) {
        let max = routes
            .experiments
            .iter()
            .flat_map(|e| e.routes.iter())
            .map(|r| usize::from(r.id))
            .max()
            .unwrap_or(0);
        if self.arms.len() <= max {
            self.arms.resize(max + 1, ArmCounts::default());
        }
    }

    /// The counts of arm `id`, for updating; `None` for an id never routed.
    pub fn arm_mut(&mut self, id: u16) -> Option<&mut ArmCounts> {
        self.arms.get_mut(usize::from(id))
    }

    /// The counts of arm `id` (zero for an id never routed).
    pub fn arm(&self, id: u16) -> ArmCounts {
        self.arms.get(usize::from(id)).copied().unwrap_or_default()
    }

    /// Every arm's counts, by id.
    pub fn all(&self) -> &[ArmCounts] {
        &self.arms
    }
}

/// Hands out arm ids: one per (experiment key, variation key), the same
/// id whenever the pair comes back (a reload that keeps an experiment
/// keeps its ids, so its counts go on), in order from 1.
#[derive(Clone, Debug, Default)]
pub struct ArmRegistry {
    ids: BTreeMap<(String, String), u16>,
    /// The largest id given out or restored.
    last: u16,
}

impl ArmRegistry {
    /// The id of variation `variation_key` of experiment `experiment_key`,
    /// given out now when new. Fails past [`ARMS_MAX`] ids.
    pub fn id(&mut self, experiment_key: &str, variation_key: &str) -> Result<u16> {
        let key = (experiment_key.to_owned(), variation_key.to_owned());
        if let Some(&id) = self.ids.get(&key) {
            return Ok(id);
        }
        let next = usize::from(self.last) + 1;
        if next >= ARMS_MAX {
            return Err(config(format!(
                "experiment `{experiment_key}`: more than {} arms in this process's life",
                ARMS_MAX - 1
            )));
        }
        let id = u16::try_from(next).expect("ARMS_MAX fits a u16");
        self.ids.insert(key, id);
        self.last = id;
        Ok(id)
    }

    /// Gives variation `variation_key` of `experiment_key` the id `id`, as
    /// an earlier run of the process did (its decisions in a restored
    /// decision log carry it). Refused when the id is 0 or past
    /// [`ARMS_MAX`], or when the id or the pair already has another.
    pub fn restore(&mut self, experiment_key: &str, variation_key: &str, id: u16) -> Result<()> {
        let key = (experiment_key.to_owned(), variation_key.to_owned());
        let taken = self.ids.iter().any(|(k, &v)| v == id && *k != key);
        let other = self.ids.get(&key).is_some_and(|&v| v != id);
        if id == 0 || usize::from(id) >= ARMS_MAX || taken || other {
            return Err(config(format!(
                "experiment `{experiment_key}` variation `{variation_key}`: arm id {id} is 0, \
                 at least {ARMS_MAX}, or taken"
            )));
        }
        self.ids.insert(key, id);
        self.last = self.last.max(id);
        Ok(())
    }

    /// Every arm given out: `(experiment key, variation key, id)`.
    pub fn arms(&self) -> impl Iterator<Item = (&str, &str, u16)> {
        self.ids
            .iter()
            .map(|((e, v), &id)| (e.as_str(), v.as_str(), id))
    }
}

fn config(reason: String) -> Error {
    Error::Config {
        field: "experiments",
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn experiment(json: &str) -> Experiment {
        Experiment::from_json(json).unwrap()
    }

    fn routes(exp: &Experiment, ids: &[u16]) -> LiveExperiment {
        LiveExperiment {
            experiment: exp.clone(),
            routes: ids
                .iter()
                .enumerate()
                .map(|(v, &id)| ArmRoute { id, slot: v as u16 })
                .collect(),
        }
    }

    #[test]
    fn a_request_gets_the_arm_of_its_growthbook_variation() {
        let exp = experiment(r#"{"key": "e", "variations": [0, 1], "hashVersion": 2}"#);
        let live = ExperimentRoutes::new(vec![routes(&exp, &[1, 2])], 1).unwrap();
        let (mut seen, mut ctx) = ([0; 3], RequestContext::default());
        for u in 0..1000 {
            ctx.user_id = format!("user-{u}");
            let arm = live.assign(&ctx);
            let expected = exp.assign(&ctx.user_id).variation_id;
            assert_eq!(usize::from(arm.slot), expected);
            assert_eq!(usize::from(arm.id), expected + 1);
            seen[usize::from(arm.id)] += 1;
        }
        assert_eq!(seen[0], 0);
        assert!(seen[1] > 400 && seen[2] > 400, "{seen:?}");
        // No user id: GrowthBook puts nobody in.
        ctx.user_id.clear();
        assert_eq!(live.assign(&ctx), Arm::default());
    }

    #[test]
    fn the_first_experiment_that_takes_a_request_decides() {
        let half = experiment(r#"{"key": "a", "variations": [0, 1], "coverage": 0.5}"#);
        let all = experiment(r#"{"key": "b", "variations": [0, 1]}"#);
        let live =
            ExperimentRoutes::new(vec![routes(&half, &[1, 2]), routes(&all, &[3, 4])], 1).unwrap();
        let mut ctx = RequestContext::default();
        let mut by_b = 0;
        for u in 0..400 {
            ctx.user_id = format!("{u}");
            let arm = live.assign(&ctx);
            if half.assign(&ctx.user_id).in_experiment {
                assert!(arm.id == 1 || arm.id == 2);
            } else {
                assert!(arm.id == 3 || arm.id == 4);
                by_b += 1;
            }
        }
        assert!(by_b > 100, "{by_b}");
    }

    #[test]
    fn bad_routes_are_refused_by_name() {
        let exp = experiment(r#"{"key": "e", "variations": [0, 1]}"#);
        for (ids, slots_max) in [(&[1u16][..], 1), (&[0, 1], 1), (&[1, 1], 1), (&[1, 2], 0)] {
            let err = ExperimentRoutes::new(vec![routes(&exp, ids)], slots_max).unwrap_err();
            assert!(err.to_string().contains("experiment `e`"), "{err}");
        }
        let twice = vec![routes(&exp, &[1, 2]), routes(&exp, &[2, 3])];
        assert!(ExperimentRoutes::new(twice, 1).is_err());
    }

    #[test]
    fn the_registry_keeps_an_arm_id_for_life() {
        let mut r = ArmRegistry::default();
        assert_eq!(r.id("e", "0").unwrap(), 1);
        assert_eq!(r.id("e", "1").unwrap(), 2);
        assert_eq!(r.id("f", "0").unwrap(), 3);
        assert_eq!(r.id("e", "1").unwrap(), 2);
        assert_eq!(r.arms().count(), 3);
    }

    #[test]
    fn restored_ids_stay_and_new_ones_come_after_them() {
        let mut r = ArmRegistry::default();
        r.restore("e", "0", 7).unwrap();
        r.restore("e", "0", 7).unwrap();
        assert!(r.restore("f", "0", 7).is_err(), "id 7 is e/0's");
        assert!(r.restore("e", "0", 8).is_err(), "e/0 is 7");
        assert!(r.restore("g", "0", 0).is_err());
        assert_eq!(r.id("e", "0").unwrap(), 7);
        assert_eq!(r.id("e", "1").unwrap(), 8);
    }

    #[test]
    fn counts_grow_to_the_routed_ids_and_keep_what_they_counted() {
        let exp = experiment(r#"{"key": "e", "variations": [0, 1]}"#);
        let mut counts = ExperimentCounts::default();
        counts.reserve_for(&ExperimentRoutes::new(vec![routes(&exp, &[5, 6])], 1).unwrap());
        counts.arm_mut(6).unwrap().clicks += 2;
        assert!(counts.arm_mut(7).is_none());
        counts.reserve_for(&ExperimentRoutes::default());
        assert_eq!(counts.arm(6).clicks, 2);
        assert_eq!(counts.all().len(), 7);
    }
}
