//! `cx experiment simulate`: experiments run live through the engine on
//! the synthetic world, whose ground truth says which arm is better
//! (`docs/EXPERIMENTS.md`, "Live proof").
//!
//! Each run is one engine serving one experiment of two arms, control and
//! treatment, each scored by its own model: the bundled model, or the
//! bundled model with Gaussian noise added to its weights (`noise` times
//! each layer's root-mean-square weight: a truly worse model). Requests
//! come from the synthetic generator, each given a user id of its own (the
//! unit of assignment: the tests and the SRM check assume independent
//! units, which a user's repeated requests are not), assigned by
//! GrowthBook hashing (the experiment's `seed` is the run's, so every run
//! splits users afresh). Every decision that chose an offer is shown: an
//! impression event, and a click drawn from the generator's true click
//! probability of the offer shown. Both go back to the engine, which
//! counts them per arm ([`cx_engine::Engine::experiment_report`]).
//!
//! Every `look_every` impressions the run reads its tests as a dashboard
//! would: the mSPRT (the running minimum of its p-value), and the z-test
//! as if it were valid at every look (the naive peeking a sequential test
//! exists to guard against). The truth of each arm is the mean true click
//! probability of the offers it showed.
//!
//! The world is the `calibrated` scenario's catalog (its first 8 offers,
//! no frequency caps, budgets or floors), clicks only in the blend and no
//! exploration, so that the arms differ by their models alone; the two
//! arms share the engine's other state, as they would in production.

use super::auction::standard_normal;
use super::{load_catalog, CatalogEdit};
use crate::error::{Error, Result};
use cx_datasets::{Generator, SynthConfig};
use cx_domain::feedback::{Event, EventKind};
use cx_domain::pipeline::{Decision, Request};
use cx_engine::experiments::{ArmDef, ArmSource, ExperimentDef};
use cx_engine::systems::Exploration;
use cx_engine::{Engine, EngineConfig, FallbackSource, ModelSource};
use cx_experiments::stats::fixed::z_test;
use cx_experiments::stats::report::{report, Looks, VariantInput};
use cx_experiments::stats::sequential::SequentialConfig;
use cx_experiments::stats::srm::srm;
use cx_experiments::stats::VariantCounts;
use cx_experiments::Experiment;
use cx_model::SnnModel;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::fmt::Write as _;
use std::sync::Arc;

/// Requests per tick.
const BATCH: usize = 256;

/// What to simulate.
#[derive(Clone, Debug, Serialize)]
pub struct AbSpec {
    /// Runs, each with its own seed (`seed`, `seed + 1`, ...).
    pub seeds: u64,
    /// The first run's seed.
    pub seed: u64,
    /// Requests per run.
    pub requests: u64,
    /// Impressions (both arms) between looks.
    pub look_every: u64,
    /// The control's model: the bundled one with this much noise (0: as it is).
    pub control_noise: f64,
    /// The treatment's.
    pub treatment_noise: f64,
    /// The control's share of the users as the experiment assigns them.
    pub assigned_control_share: f64,
    /// The control's share the analysis expects (the configured split the
    /// SRM check compares against).
    pub configured_control_share: f64,
    /// The tests' significance level.
    pub alpha: f64,
    /// The synthetic world's seed.
    pub world_seed: u64,
}

/// One run's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct AbRun {
    /// Its seed.
    pub seed: u64,
    /// Per arm (control, treatment): users assigned.
    pub assigned: [u64; 2],
    /// Impressions.
    pub impressions: [u64; 2],
    /// Clicks.
    pub clicks: [u64; 2],
    /// The mean true click probability of the offers shown.
    pub true_ctr: [f64; 2],
    /// Impressions (both arms) at the mSPRT's first rejection, if any.
    pub sequential_rejected_at: Option<u64>,
    /// Whether the treatment's observed CTR was the higher one then.
    pub sequential_says_treatment: Option<bool>,
    /// Whether the z-test was below alpha at any look.
    pub naive_peeking_rejected: bool,
    /// Whether the z-test was below alpha at the last look only.
    pub final_z_rejected: bool,
    /// The SRM check against the configured split flagged the assignments.
    pub srm_flagged: bool,
    /// Looks read.
    pub looks: u64,
}

/// A set of runs, summed up.
#[derive(Clone, Debug, Serialize)]
pub struct AbSummary {
    /// What was run.
    pub spec: AbSpec,
    /// Model ids: control, treatment.
    pub models: [String; 2],
    /// Runs in which the treatment's true CTR was higher than the control's.
    pub treatment_truly_better: u64,
    /// The mean true CTR per arm over the runs.
    pub true_ctr_mean: [f64; 2],
    /// Share of runs the mSPRT rejected in.
    pub sequential_rejection_rate: f64,
    /// Of those, the share that named the arm the truth favours.
    pub sequential_right_direction_rate: Option<f64>,
    /// Impressions (both arms) at the first rejection: median, 10th and
    /// 90th percentile over the rejecting runs.
    pub impressions_to_detect: Option<[u64; 3]>,
    /// Share of runs the z-test rejected in at some look (peeking).
    pub naive_peeking_rejection_rate: f64,
    /// Share of runs the z-test rejected in read once, at the end.
    pub final_z_rejection_rate: f64,
    /// Share of runs whose assignments the SRM check flagged.
    pub srm_flag_rate: f64,
    /// Every run.
    pub runs: Vec<AbRun>,
}

impl AbSpec {
    /// Checks every setting.
    pub fn check(&self) -> Result<()> {
        let bad = |what: &str, why: String| Err(Error::Config(format!("{what}: {why}")));
        if !(1..=10_000).contains(&self.seeds) {
            return bad("--seeds", format!("{} is not in 1..=10000", self.seeds));
        }
        if !(1..=100_000_000).contains(&self.requests) {
            return bad(
                "--requests",
                format!("{} is not in 1..=100000000", self.requests),
            );
        }
        if self.look_every == 0 {
            return bad("--look-every", "must be at least 1".into());
        }
        for (what, noise) in [
            ("--control-noise", self.control_noise),
            ("--treatment-noise", self.treatment_noise),
        ] {
            if !(noise.is_finite() && (0.0..=10.0).contains(&noise)) {
                return bad(what, format!("{noise} is not in [0, 10]"));
            }
        }
        for (what, share) in [
            ("--assigned-control-share", self.assigned_control_share),
            ("--configured-control-share", self.configured_control_share),
        ] {
            if !(share > 0.0 && share < 1.0) {
                return bad(what, format!("{share} is not in (0, 1)"));
            }
        }
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            return bad("--alpha", format!("{} is not in (0, 1)", self.alpha));
        }
        Ok(())
    }
}

/// Runs every seed and sums them up.
pub fn simulate(spec: AbSpec, mut progress: impl FnMut(u64)) -> Result<AbSummary> {
    spec.check()?;
    let generator = Generator::new(SynthConfig::default(), spec.world_seed)
        .map_err(|e| Error::Mismatch(format!("synthetic world: {e}")))?;
    let catalog = load_catalog(None, 1.0, CatalogEdit::Calibrated)?;
    let offers = super::oracle::OfferMap::new(&catalog, &generator)?;
    let models = [
        model(spec.control_noise, spec.seed ^ 0xC0),
        model(spec.treatment_noise, spec.seed ^ 0x7E),
    ];
    let mut ids = [String::new(), String::new()];
    let mut runs = Vec::with_capacity(spec.seeds as usize);
    for seed in spec.seed..spec.seed + spec.seeds {
        let mut engine = engine(&catalog, &models, &spec, seed)?;
        runs.push(run_one(&mut engine, &generator, &offers, &spec, seed)?);
        // Live (and reported) from the first tick on.
        for (arm, report) in engine.experiment_report()[0].arms.iter().enumerate() {
            ids[arm].clone_from(&report.model_id);
        }
        progress(seed - spec.seed + 1);
    }
    Ok(summarize(spec, ids, runs))
}

/// The bundled model with `noise` (`None` at 0: the default model itself).
fn model(noise: f64, seed: u64) -> Option<Arc<[u8]>> {
    if noise == 0.0 {
        return None;
    }
    let model = SnnModel::from_bytes(cx_engine::DEFAULT_MODEL_BYTES).expect("the bundled model");
    let mut layers = model.layers().to_vec();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for layer in &mut layers {
        let n = layer.weight.len().max(1) as f64;
        let rms = (layer
            .weight
            .iter()
            .map(|&w| f64::from(w).powi(2))
            .sum::<f64>()
            / n)
            .sqrt();
        for w in &mut layer.weight {
            let z = standard_normal(1.0 - rng.random::<f64>(), rng.random());
            *w += (noise * rms * z) as f32;
        }
    }
    let noisy = SnnModel::new(layers, model.steps(), model.meta().clone())
        .expect("noise keeps the shapes and finite weights");
    Some(noisy.to_bytes().into())
}

fn engine(
    catalog: &cx_domain::catalog::Catalog,
    models: &[Option<Arc<[u8]>>; 2],
    spec: &AbSpec,
    seed: u64,
) -> Result<Engine> {
    let mut config = EngineConfig {
        seed,
        ..EngineConfig::default()
    };
    config.decide.exploration = Exploration::None;
    super::clicks_only(&mut config.decide);
    let failed = |source| Error::Engine {
        what: "cannot set up the experiment's engine".into(),
        source,
    };
    let mut engine = Engine::builder()
        .catalog(catalog.clone())
        .config(config)
        .build()
        .map_err(failed)?;
    let share = spec.assigned_control_share;
    let experiment = Experiment::from_value(&serde_json::json!({
        "key": "ab",
        "variations": ["control", "treatment"],
        "weights": [share, 1.0 - share],
        "hashVersion": 2,
        "seed": format!("run-{seed}"),
    }))
    .map_err(|e| Error::Config(format!("experiment: {e}")))?;
    let arms = models
        .iter()
        .enumerate()
        .map(|(i, bytes)| ArmDef {
            id: i as u16 + 1,
            model: bytes.as_ref().map(|b| ArmSource {
                model: ModelSource::Bytes(b.clone()),
                fallback: FallbackSource::Auto,
            }),
        })
        .collect();
    engine
        .set_experiments(&[ExperimentDef { experiment, arms }])
        .map_err(failed)?;
    Ok(engine)
}

/// What one run has counted so far, per arm.
#[derive(Default)]
struct Counts {
    impressions: [u64; 2],
    clicks: [u64; 2],
    true_p: [f64; 2],
}

fn run_one(
    engine: &mut Engine,
    generator: &Generator,
    offers: &super::oracle::OfferMap,
    spec: &AbSpec,
    seed: u64,
) -> Result<AbRun> {
    let first_row = (seed + 1) << 32;
    let start_ns = generator.config().start_unix as u64 * 1_000_000_000;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xAB_0000_0001);
    let mut looks = Looks::new(
        1,
        SequentialConfig {
            alpha: spec.alpha,
            ..SequentialConfig::default()
        },
    )
    .map_err(|e| Error::Config(format!("--alpha: {e}")))?;
    let mut counts = Counts::default();
    let mut out = AbRun {
        seed,
        assigned: [0; 2],
        impressions: [0; 2],
        clicks: [0; 2],
        true_ctr: [0.0; 2],
        sequential_rejected_at: None,
        sequential_says_treatment: None,
        naive_peeking_rejected: false,
        final_z_rejected: false,
        srm_flagged: false,
        looks: 0,
    };
    let mut next_look = spec.look_every;
    let mut decided: Vec<Decision> = Vec::with_capacity(BATCH);
    let mut truths = Vec::with_capacity(BATCH);
    let mut events = Vec::with_capacity(2 * BATCH);
    let mut next = 0u64;
    while next < spec.requests {
        let n = (spec.requests - next).min(BATCH as u64);
        let now_ns = start_ns + next * 1_000_000;
        truths.clear();
        for j in 0..n {
            let (row, truth) = generator.row_with_truth(first_row + next + j);
            let mut ctx = row.to_context();
            ctx.bid_floor = 0.0;
            // Each request is a user of its own: the unit of assignment,
            // so that assignments and outcomes are independent draws.
            ctx.user_id.clear();
            write!(ctx.user_id, "{seed}:{}", next + j).expect("writing to a String");
            engine
                .submit_request(Request::from(ctx))
                .map_err(|source| Error::Engine {
                    what: "cannot submit a simulated request".into(),
                    source,
                })?;
            truths.push(truth);
        }
        engine.run_until_decided(now_ns);
        decided.clear();
        decided.extend(engine.drain());
        decided.sort_by_key(|d| d.ticket.0);
        events.clear();
        for (d, truth) in decided.iter().zip(&truths) {
            let (Some(top), Some(arm)) = (d.offers().first(), arm_of(d)) else {
                continue;
            };
            let world = offers.world_index(top.catalog_index as usize);
            let p = f64::from(truth.p_true(world).unwrap_or(0.0));
            let key = engine.decision_key(d.ticket);
            counts.impressions[arm] += 1;
            counts.true_p[arm] += p;
            events.push(Event::new(EventKind::Impression, key));
            if rng.random::<f64>() < p {
                counts.clicks[arm] += 1;
                events.push(Event::new(EventKind::Click, key));
            }
        }
        engine
            .feedback(&events, now_ns)
            .map_err(|e| Error::Mismatch(format!("feedback refused: {e}")))?;
        next += n;
        while counts.impressions.iter().sum::<u64>() >= next_look {
            look(engine, spec, &mut looks, &mut out);
            next_look += spec.look_every;
        }
    }
    look(engine, spec, &mut looks, &mut out);
    let arms = &engine.experiment_report()[0].arms;
    for (a, arm) in arms.iter().enumerate().take(2) {
        // The engine's own counts are the ones the tests read; the run's
        // tally of what it sent must agree with them.
        if arm.impressions != counts.impressions[a] || arm.clicks != counts.clicks[a] {
            return Err(Error::Mismatch(format!(
                "arm {a}: the engine counted {} impressions and {} clicks, the run sent {} and {}",
                arm.impressions, arm.clicks, counts.impressions[a], counts.clicks[a]
            )));
        }
        out.assigned[a] = arm.assigned;
        out.impressions[a] = counts.impressions[a];
        out.clicks[a] = counts.clicks[a];
        out.true_ctr[a] = counts.true_p[a] / counts.impressions[a].max(1) as f64;
    }
    let control = VariantCounts::clicks(out.impressions[0], out.clicks[0]);
    let treatment = VariantCounts::clicks(out.impressions[1], out.clicks[1]);
    out.final_z_rejected = z_test(&control, &treatment).is_ok_and(|z| z.p_value < spec.alpha);
    let configured = [
        spec.configured_control_share,
        1.0 - spec.configured_control_share,
    ];
    out.srm_flagged = srm(&out.assigned, &configured).is_ok_and(|s| s.flagged);
    Ok(out)
}

/// Arm index (0 control, 1 treatment) of a decision.
fn arm_of(d: &Decision) -> Option<usize> {
    match d.arm {
        1 => Some(0),
        2 => Some(1),
        _ => None,
    }
}

/// Reads the tests at the engine's counts now.
fn look(engine: &Engine, spec: &AbSpec, looks: &mut Looks, out: &mut AbRun) {
    let arms = &engine.experiment_report()[0].arms;
    let variants: Vec<VariantInput> = arms
        .iter()
        .map(|a| VariantInput {
            key: a.key.clone(),
            assigned: a.assigned,
            counts: VariantCounts::clicks(a.impressions, a.clicks),
        })
        .collect();
    let configured = [
        spec.configured_control_share,
        1.0 - spec.configured_control_share,
    ];
    let r = report("ab", &variants, &configured, looks);
    let Some(vs) = r.variants.get(1).and_then(|v| v.vs_control.as_ref()) else {
        return;
    };
    out.looks = vs.looks;
    if vs.sequential_rejected && out.sequential_rejected_at.is_none() {
        out.sequential_rejected_at = Some(arms[0].impressions + arms[1].impressions);
        out.sequential_says_treatment = vs.sequential.map(|m| m.difference > 0.0);
    }
    if vs.z_test.is_some_and(|z| z.p_value < spec.alpha) {
        out.naive_peeking_rejected = true;
    }
}

fn summarize(spec: AbSpec, models: [String; 2], runs: Vec<AbRun>) -> AbSummary {
    let n = runs.len().max(1) as f64;
    let rate = |f: &dyn Fn(&AbRun) -> bool| runs.iter().filter(|r| f(r)).count() as f64 / n;
    let truly_better = |r: &AbRun| r.true_ctr[1] > r.true_ctr[0];
    let rejecting: Vec<&AbRun> = runs
        .iter()
        .filter(|r| r.sequential_rejected_at.is_some())
        .collect();
    let right = rejecting
        .iter()
        .filter(|r| r.sequential_says_treatment == Some(truly_better(r)))
        .count();
    let mut at: Vec<u64> = rejecting
        .iter()
        .filter_map(|r| r.sequential_rejected_at)
        .collect();
    at.sort_unstable();
    let pick = |q: f64| at[((at.len() - 1) as f64 * q).round() as usize];
    AbSummary {
        models,
        treatment_truly_better: runs.iter().filter(|r| truly_better(r)).count() as u64,
        true_ctr_mean: [0, 1].map(|a| runs.iter().map(|r| r.true_ctr[a]).sum::<f64>() / n),
        sequential_rejection_rate: rate(&|r| r.sequential_rejected_at.is_some()),
        sequential_right_direction_rate: (!rejecting.is_empty())
            .then(|| right as f64 / rejecting.len() as f64),
        impressions_to_detect: (!at.is_empty()).then(|| [pick(0.5), pick(0.1), pick(0.9)]),
        naive_peeking_rejection_rate: rate(&|r| r.naive_peeking_rejected),
        final_z_rejection_rate: rate(&|r| r.final_z_rejected),
        srm_flag_rate: rate(&|r| r.srm_flagged),
        spec,
        runs,
    }
}
