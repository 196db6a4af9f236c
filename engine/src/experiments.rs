//! Experiments served live: several models at once, each request scored by
//! the model of the experiment arm it is assigned to, and what each arm
//! was counted (`docs/EXPERIMENTS.md`, "Serving").
//!
//! [`Engine::set_experiments`] loads and checks the arms' models now and
//! stages them with the experiments' routes, applied at the next tick with
//! any staged model swap (all or nothing). An arm's model must score the
//! default model's offers in the same columns: the catalog mapping, the
//! cache's width and the decision rules stay one. Arm ids come from an
//! [`ArmRegistry`](cx_systems::resources::ArmRegistry), so that a reload
//! that keeps an experiment keeps its ids, and its counts go on.
//!
//! [`Engine::experiment_report`] gives what each live arm counted: requests
//! assigned and decided by the deciding engine, impressions, clicks and
//! conversions by the engine that applied their feedback (a server sums its
//! workers'; `docs/SERVER.md`).

use crate::builder::{load_serving, FallbackSource, ModelSource};
use crate::engine::{Engine, Staged};
use crate::error::{Error, Result};
use cx_domain::feedback::EventKind;
use cx_domain::store::Effect;
pub use cx_experiments::Experiment;
use cx_systems::resources::{
    ArmCounts, ArmRoute, ExperimentCounts, ExperimentRoutes, LiveExperiment, Schema, Scoring,
};
use cx_systems::ExperimentParts;
use serde::Serialize;

/// One experiment to serve.
#[derive(Clone, Debug)]
pub struct ExperimentDef {
    /// Its GrowthBook definition.
    pub experiment: Experiment,
    /// One arm per variation, in order.
    pub arms: Vec<ArmDef>,
}

/// One variation of an experiment to serve.
#[derive(Clone, Debug)]
pub struct ArmDef {
    /// Its arm id, non-zero and unique (from an
    /// [`ArmRegistry`](cx_systems::resources::ArmRegistry)).
    pub id: u16,
    /// The model that scores its requests (`None`: the default model).
    pub model: Option<ArmSource>,
}

/// Where an arm's model comes from.
#[derive(Clone, Debug)]
pub struct ArmSource {
    /// The model.
    pub model: ModelSource,
    /// Its fallback scorer.
    pub fallback: FallbackSource,
}

/// What one arm of a live experiment counted.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ArmReport {
    /// The arm id.
    pub arm: u16,
    /// The variation's index.
    pub variation: usize,
    /// Its key (`meta[i].key`, or the index).
    pub key: String,
    /// The id of the model that scores it (the default model's for an arm
    /// without a model of its own).
    pub model_id: String,
    /// Requests assigned to it.
    pub assigned: u64,
    /// Decisions that chose an offer.
    pub decided: u64,
    /// Impressions joined to its decisions.
    pub impressions: u64,
    /// Clicks.
    pub clicks: u64,
    /// Conversions.
    pub conversions: u64,
    /// The conversions' value.
    pub revenue: f64,
}

/// One live experiment and its arms' counts.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ExperimentReport {
    /// The experiment's key.
    pub key: String,
    /// Its configured split: each variation's share of the users in it
    /// (its bucket range's width over the coverage).
    pub weights: Vec<f64>,
    /// Its arms, by variation.
    pub arms: Vec<ArmReport>,
}

impl Engine {
    /// Serves `experiments` from the next tick, in order (a request is in
    /// the first experiment that takes it), in place of the live ones; an
    /// empty list ends every experiment. Each arm's model is loaded and
    /// checked now: it must read this engine's feature schema and score
    /// the default model's offers column for column. Any error changes
    /// nothing.
    pub fn set_experiments(&mut self, experiments: &[ExperimentDef]) -> Result<()> {
        let parts = self.load_experiments(experiments)?;
        match self.staged.as_mut() {
            Some(staged) => {
                staged
                    .model
                    .set_experiments(&self.world, parts.clone(), self.backend)?;
                staged.experiments = Some(parts);
            }
            None => {
                let serving = self.world.resource::<Scoring>().serving.clone();
                let bundle = cx_systems::BundleParts {
                    experiments: Some(parts.clone()),
                    ..Default::default()
                };
                let model = cx_systems::stage_bundle(&self.world, serving, self.backend, bundle)?;
                self.staged = Some(Staged {
                    model,
                    info: self.model.clone(),
                    fit: self.fit.clone(),
                    skew: self.skew.clone(),
                    decide: None,
                    monitor: None,
                    experiments: Some(parts),
                });
            }
        }
        Ok(())
    }

    /// Loads every arm's model and numbers the scoring slots.
    pub(crate) fn load_experiments(
        &self,
        experiments: &[ExperimentDef],
    ) -> Result<ExperimentParts> {
        let schema_id = self.world.resource::<Schema>().0.id().to_owned();
        let mut parts = ExperimentParts::default();
        for def in experiments {
            let mut routes = Vec::with_capacity(def.arms.len());
            for arm in &def.arms {
                let slot = match &arm.model {
                    None => 0,
                    Some(source) => {
                        let (serving, info, schema) =
                            load_serving(&source.model, &source.fallback)?;
                        if schema.id() != schema_id {
                            return Err(Error::Config(format!(
                                "experiment `{}` arm {}: model `{}` reads feature schema {}, this \
                                 engine extracts {schema_id}",
                                def.experiment.key(),
                                arm.id,
                                info.name,
                                schema.id()
                            )));
                        }
                        parts.models.push(serving);
                        parts.models.len()
                    }
                };
                routes.push(ArmRoute {
                    id: arm.id,
                    slot: u16::try_from(slot).unwrap_or(u16::MAX),
                });
            }
            parts.live.push(LiveExperiment {
                experiment: def.experiment.clone(),
                routes,
            });
        }
        Ok(parts)
    }

    /// The live experiments and what each arm counted.
    pub fn experiment_report(&self) -> Vec<ExperimentReport> {
        let routes = self.world.resource::<ExperimentRoutes>();
        let counts = self.world.resource::<ExperimentCounts>();
        let scoring = self.world.resource::<Scoring>();
        routes
            .experiments()
            .iter()
            .map(|live| report(live, counts, scoring))
            .collect()
    }

    /// Every arm's counts by arm id (index 0: requests in no experiment
    /// while one was live), including arms of experiments since removed.
    pub fn experiment_counts(&self) -> &[ArmCounts] {
        self.world.resource::<ExperimentCounts>().all()
    }

    /// Counts a joined event for the arm of its decision.
    pub(crate) fn count_arm_outcome(&mut self, effect: &Effect) {
        let mut counts = self.world.resource_mut::<ExperimentCounts>();
        let Some(arm) = counts.arm_mut(effect.decision.arm) else {
            return;
        };
        arm.impressions += u64::from(effect.impression);
        arm.clicks += u64::from(effect.click);
        if effect.kind == Some(EventKind::Conversion) {
            arm.conversions += 1;
            arm.revenue += effect.conversion_value;
        }
    }
}

fn report(live: &LiveExperiment, counts: &ExperimentCounts, scoring: &Scoring) -> ExperimentReport {
    let e = &live.experiment;
    let arms = live
        .routes
        .iter()
        .enumerate()
        .map(|(v, route)| {
            let c = counts.arm(route.id);
            ArmReport {
                arm: route.id,
                variation: v,
                key: e.variation_key(v),
                model_id: scoring.slot(route.slot).id.to_string(),
                assigned: c.assigned,
                decided: c.decided,
                impressions: c.impressions,
                clicks: c.clicks,
                conversions: c.conversions,
                revenue: c.revenue,
            }
        })
        .collect();
    ExperimentReport {
        key: e.key().to_owned(),
        weights: e.split(),
        arms,
    }
}
