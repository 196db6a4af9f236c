//! `cx simulate`: the closed loop between the engine and the synthetic
//! world, whose true click probabilities are known (`docs/FEEDBACK.md`,
//! "Proof that it learns").
//!
//! This module owns the loop: it draws each request from the generator,
//! has one engine per policy (`thompson`, `greedy`, `random`) decide it,
//! draws what the world does with each decision (an auction, a click from
//! the true click probability of the offer chosen, a conversion), sends the
//! events back through `Engine::feedback` on a simulated clock, and tallies
//! regret against the oracle, click rates, spend against budgets and
//! impressions against caps. Submodules: [`auction`] (the synthetic
//! auction), [`oracle`] (the catalog-to-world map and the oracle),
//! [`policy`] (one policy's engine and ledgers), [`ope`] (off-policy
//! evaluation of greedy from thompson's log), [`report`] (the JSON) and
//! [`plot`] (the SVG figures).

pub mod ab;
pub mod auction;
pub mod calibrated;
pub mod ope;
pub mod oracle;
pub mod plot;
pub mod policy;
pub mod report;

use crate::error::{Error, Result};
use auction::{standard_normal, Auction};
use cx_datasets::synth::{RowTruth, SynthConfig, SynthRow};
use cx_datasets::Generator;
use cx_decision::{Decision, TOP_K_MAX};
use cx_domain::catalog::Catalog;
use cx_domain::pipeline::Request;
use cx_domain::store::Settlement;
use cx_engine::systems::{Exploration, ObjectiveWeights};
use cx_engine::{Engine, EngineConfig, ModelSource};
use oracle::{best_offer, OfferMap, Truth, CREATIVE_RATES};
use policy::{Draws, PolicyRun, SettlementMode};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::io::Write;
use std::path::PathBuf;

/// Entries of each engine's frequency store unless asked otherwise.
pub const FREQUENCY_CAPACITY: usize = 1 << 22;
/// The most `--frequency-capacity` takes.
pub const FREQUENCY_CAPACITY_MAX: usize = 1 << 24;
/// Requests each engine decides per tick.
pub const BATCH: usize = 32;
/// Most decisions one run makes.
pub const DECISIONS_MAX: u64 = 100_000_000;
/// Largest `--seed`: each seed reads its own `2^32` rows of the world.
pub const SEED_MAX: u64 = (1 << 24) - 2;
/// The `shift` scenario: what is added to the shifted offer's true logit
/// at half time (its click odds fall to `e^-2`, about 0.14 times).
pub const SHIFT_LOGIT: f64 = -2.0;
/// Requests the `shift` and `creative` scenarios look at to pick the offer
/// they change.
const SHIFT_PROBE_ROWS: u64 = 20_000;

/// The scenarios.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// A stationary world.
    Default,
    /// At half time the offer the oracle picks most often loses appeal
    /// (its logit falls by 2).
    Shift,
    /// The offer the oracle picks most often gets two more creative
    /// variants, and variant 1 is clicked twice as often as the offer's
    /// own creative (variant 0) and variant 2 (`oracle::CREATIVE_RATES`).
    Creative,
    /// A world the offer policy can learn: the catalog's first
    /// [`CALIBRATED_OFFERS`] offers, each clicked with the model's own
    /// probability for the request times a hidden factor per offer
    /// ([`calibration_factors`]); no frequency caps, budgets or floors.
    Calibrated,
}

/// Offers of the `calibrated` scenario's catalog: every one the targeting
/// admits fits in one decision's ranked offers, so the model's probability
/// of each is known.
pub const CALIBRATED_OFFERS: usize = TOP_K_MAX;

/// The `calibrated` scenario's hidden factors, one per offer: `2^z` for
/// `z` evenly spaced from -1 to 1 (0.5 to 2), in an order drawn from
/// `seed`.
pub fn calibration_factors(offers: usize, seed: u64) -> Vec<f64> {
    use rand::seq::SliceRandom;
    let step = 2.0 / offers.saturating_sub(1).max(1) as f64;
    let mut factors: Vec<f64> = (0..offers)
        .map(|k| 2f64.powf(-1.0 + step * k as f64))
        .collect();
    factors.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0xCA11_B4A7_E000_0001));
    factors
}

/// How a run changes the catalog it loads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CatalogEdit {
    /// As it is.
    None,
    /// The `creative` scenario's variants added to this offer id.
    Variants(u64),
    /// The `calibrated` scenario's: the first [`CALIBRATED_OFFERS`]
    /// offers, without frequency caps or daily budgets.
    Calibrated,
}

/// What a run is asked to do (the report repeats it).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Spec {
    /// Decisions per policy.
    pub decisions: u64,
    /// The scenario.
    pub scenario: Scenario,
    /// The run's seed: which rows, the world's draws, the engines' seeds.
    pub seed: u64,
    /// The synthetic world's seed (the bundled model's is 2024).
    pub world_seed: u64,
    /// How bids settle.
    pub settlement: SettlementMode,
    /// Simulated time per decision, ms.
    pub ms_per_decision: u64,
    /// The posteriors' half-life, simulated seconds.
    pub half_life_s: f64,
    /// Multiplies every offer's daily budget.
    pub budget_scale: f64,
    /// Thompson's posterior re-draws behind each propensity.
    pub propensity_samples: usize,
    /// Thompson's share of uniform choices (`[decide]
    /// thompson_uniform_share`).
    pub thompson_uniform_share: f32,
    /// Entries of each engine's frequency store.
    pub frequency_capacity: usize,
    /// Whether the engines learn their bid shading from the notices
    /// (`[decide] learned_shading`); off, every engine bids by the static
    /// rule, so an offer's bid (and chance to win) on a request is the same
    /// whichever policy chose it, which the off-policy truth assumes.
    pub learned_shading: bool,
    /// The model [default: the bundled one].
    #[serde(skip)]
    pub model: Option<PathBuf>,
    /// The catalog [default: the bundled one].
    #[serde(skip)]
    pub catalog: Option<PathBuf>,
}

impl Spec {
    /// Refuses what cannot run, naming the option.
    pub fn check(&self) -> Result<()> {
        let bad = |what: String| Err(Error::Mismatch(what));
        if self.decisions < 2 || self.decisions > DECISIONS_MAX {
            return bad(format!(
                "--decisions {} is outside 2..={DECISIONS_MAX}",
                self.decisions
            ));
        }
        if self.seed > SEED_MAX {
            return bad(format!("--seed {} is more than {SEED_MAX}", self.seed));
        }
        if self.ms_per_decision == 0 || self.ms_per_decision > 86_400_000 {
            return bad(format!(
                "--ms-per-decision {} is outside 1..=86400000",
                self.ms_per_decision
            ));
        }
        if !(self.half_life_s >= 0.0 && self.half_life_s <= 315_360_000.0) {
            return bad(format!(
                "--half-life-s {} is outside 0..=315360000 (0: no discounting)",
                self.half_life_s
            ));
        }
        if !(1..=cx_engine::systems::config::PROPENSITY_SAMPLES_MAX)
            .contains(&self.propensity_samples)
        {
            return bad(format!(
                "--propensity-samples {} is outside 1..={}",
                self.propensity_samples,
                cx_engine::systems::config::PROPENSITY_SAMPLES_MAX
            ));
        }
        if !(0.0..1.0).contains(&self.thompson_uniform_share) {
            return bad(format!(
                "--thompson-uniform-share {} is outside [0, 1)",
                self.thompson_uniform_share
            ));
        }
        if !(1..=FREQUENCY_CAPACITY_MAX).contains(&self.frequency_capacity) {
            return bad(format!(
                "--frequency-capacity {} is outside 1..={FREQUENCY_CAPACITY_MAX}",
                self.frequency_capacity
            ));
        }
        if !(self.budget_scale > 0.0 && self.budget_scale <= 1e6) {
            return bad(format!(
                "--budget-scale {} is outside (0, 1e6]",
                self.budget_scale
            ));
        }
        Ok(())
    }
}

/// The policies, in the order each request is settled (greedy before
/// thompson: thompson's off-policy target is greedy's choice).
pub const POLICIES: [(&str, Exploration, f32); 3] = [
    ("greedy", Exploration::None, 0.0),
    ("random", Exploration::EpsilonGreedy, 1.0),
    ("thompson", Exploration::Thompson, 0.0),
];

/// Everything a run produced.
pub struct Run {
    /// The spec it ran.
    pub spec: Spec,
    /// The policies' runs, in [`POLICIES`] order.
    pub policies: Vec<PolicyRun>,
    /// The catalog.
    pub catalog: Catalog,
    /// The model's id.
    pub model_id: String,
    /// The shifted offer's catalog id, under `shift`.
    pub shifted_offer: Option<u64>,
    /// The offer with creative variants, under `creative`.
    pub creative_offer: Option<u64>,
    /// Under `calibrated`: each catalog offer's id and hidden factor.
    pub calibration: Option<Vec<(u64, f64)>>,
    /// Off-policy evaluation of greedy from thompson's log.
    pub ope: Option<ope::OpeReport>,
    /// Requests the catalog's targeting admitted no offer for.
    pub oracle_empty: u64,
    /// Sum of the oracle's true click probability.
    pub oracle_p_sum: f64,
    /// The auction.
    pub auction: Auction,
}

/// The catalog of `path` (or the bundled one), each daily budget times
/// `scale`, and changed as `edit` says.
pub fn load_catalog(
    path: Option<&std::path::Path>,
    scale: f64,
    edit: CatalogEdit,
) -> Result<Catalog> {
    let mut text = match path {
        None => cx_engine::DEFAULT_CATALOG_TOML.to_string(),
        Some(path) => std::fs::read_to_string(path).map_err(|source| Error::File {
            path: path.display().to_string(),
            source,
        })?,
    };
    let shown = path.map_or("the bundled catalog".into(), |p| p.display().to_string());
    if scale != 1.0 || edit != CatalogEdit::None {
        let mut table: toml::Table = text
            .parse()
            .map_err(|e| Error::Mismatch(format!("catalog {shown}: {e}")))?;
        if let Some(toml::Value::Array(offers)) = table.get_mut("offer") {
            for budget in offers.iter_mut().filter_map(|o| o.get_mut("daily_budget")) {
                let amount = budget.as_float().or(budget.as_integer().map(|i| i as f64));
                if let Some(amount) = amount {
                    *budget = toml::Value::Float(amount * scale);
                }
            }
            match edit {
                CatalogEdit::None => {}
                CatalogEdit::Variants(id) => add_variants(offers, id)
                    .map_err(|e| Error::Mismatch(format!("catalog {shown}: {e}")))?,
                CatalogEdit::Calibrated => {
                    offers.truncate(CALIBRATED_OFFERS);
                    for offer in offers.iter_mut().filter_map(toml::Value::as_table_mut) {
                        offer.remove("frequency_cap");
                        offer.remove("daily_budget");
                    }
                }
            }
        }
        text = table.to_string();
    }
    Catalog::from_toml_str(&text).map_err(|source| Error::Engine {
        what: format!("cannot use catalog {shown}"),
        source: source.into(),
    })
}

/// Adds the `creative` scenario's variants 1 and 2 to offer `id` (which
/// must have its own creative and no variants yet).
fn add_variants(offers: &mut [toml::Value], id: u64) -> std::result::Result<(), String> {
    let offer = offers
        .iter_mut()
        .find(|o| o.get("id").and_then(toml::Value::as_integer) == Some(id as i64))
        .ok_or_else(|| format!("no offer {id} to give variants to"))?;
    if offer.get("variants").is_some() {
        return Err(format!("offer {id} has variants already"));
    }
    let variants = (1..CREATIVE_RATES.len())
        .map(|v| {
            let mut t = toml::Table::new();
            t.insert("creative_id".into(), format!("cx-{id}-sim-{v}").into());
            t.insert("title".into(), format!("Simulated variant {v}").into());
            toml::Value::Table(t)
        })
        .collect();
    let table = offer
        .as_table_mut()
        .ok_or_else(|| format!("offer {id} is not a table"))?;
    table.insert("variants".into(), toml::Value::Array(variants));
    Ok(())
}

/// The engine config of one policy: ranking by click probability alone.
/// Ranks by the click probability alone: the other objectives and every
/// bonus off, so that what a policy learns of clicks is what it acts on.
pub fn clicks_only(decide: &mut cx_engine::systems::DecideConfig) {
    decide.weights = ObjectiveWeights {
        click: 1.0,
        conversion: 0.0,
        revenue: 0.0,
        lifetime_value: 0.0,
        engagement: 0.0,
        retention: 0.0,
    };
    decide.segment_bonus = 0.0;
    decide.context_bonus = 0.0;
    decide.fatigue_weight = 0.0;
    decide.boost_weight = 0.0;
}

fn engine_config(spec: &Spec, exploration: Exploration, epsilon: f32) -> EngineConfig {
    let mut config = EngineConfig {
        seed: spec.seed,
        ..EngineConfig::default()
    };
    let decide = &mut config.decide;
    decide.top_k = TOP_K_MAX;
    clicks_only(decide);
    decide.exploration = exploration;
    decide.epsilon = epsilon;
    decide.posterior_half_life_s = spec.half_life_s;
    decide.propensity_samples = spec.propensity_samples;
    decide.thompson_uniform_share = spec.thompson_uniform_share;
    decide.learned_shading = spec.learned_shading;
    // The store is bounded and forgets counts when it must make room (by
    // design, `FrequencyStore`); the cap check counts the impressions past
    // a cap that follow. See `--frequency-capacity`.
    config.frequency.capacity = spec.frequency_capacity;
    config
}

fn build_engine(spec: &Spec, catalog: &Catalog, policy: usize) -> Result<Engine> {
    let (_, exploration, epsilon) = POLICIES[policy];
    let mut builder = Engine::builder()
        .config(engine_config(spec, exploration, epsilon))
        .catalog(catalog.clone());
    if let Some(path) = &spec.model {
        super::cli::load_model(Some(path))?;
        builder = builder.model(ModelSource::Path(path.clone()));
    }
    builder.build().map_err(|source| Error::Engine {
        what: "cannot set up the engine".into(),
        source,
    })
}

/// The world offer the oracle picks most often in the first requests.
fn most_picked_offer(
    generator: &Generator,
    catalog: &Catalog,
    offers: &OfferMap,
    first_row: u64,
    rows: u64,
) -> Option<usize> {
    let mut picks = vec![0u64; offers.len()];
    for i in 0..rows {
        let (row, truth) = generator.row_with_truth(first_row + i);
        let truth = Truth::of(&truth);
        if let Some((best, _)) = best_offer(catalog, offers, &row.to_context(), &truth) {
            picks[best] += 1;
        }
    }
    let best = (0..picks.len()).max_by_key(|&i| (picks[i], std::cmp::Reverse(i)))?;
    (picks[best] > 0).then(|| offers.world_index(best))
}

/// Refuses a DSJSON log under the `creative` scenario (`wanted`: one was
/// asked for).
pub fn check_dsjson(scenario: Scenario, wanted: bool) -> Result<()> {
    if scenario == Scenario::Creative && wanted {
        return Err(Error::Mismatch(
            "--dsjson is not written under --scenario creative: its log is for off-policy \
             evaluation of the offer policy, and there the reward also depends on the creative \
             variant each engine chose, which a logged action does not name"
                .into(),
        ));
    }
    Ok(())
}

/// Runs `spec`, writing thompson's log as DSJSON to `dsjson` if given.
pub fn run(spec: Spec, dsjson: Option<&mut dyn Write>) -> Result<Run> {
    spec.check()?;
    check_dsjson(spec.scenario, dsjson.is_some())?;
    let generator = Generator::new(SynthConfig::default(), spec.world_seed)
        .map_err(|e| Error::Mismatch(format!("synthetic world: {e}")))?;
    let plain = load_catalog(
        spec.catalog.as_deref(),
        spec.budget_scale,
        match spec.scenario {
            Scenario::Calibrated => CatalogEdit::Calibrated,
            _ => CatalogEdit::None,
        },
    )?;
    let offers = OfferMap::new(&plain, &generator)?;
    let first_row = (spec.seed + 1) << 32;
    // The offer a scenario changes: the oracle's most frequent pick.
    let watched = match spec.scenario {
        Scenario::Shift | Scenario::Creative => most_picked_offer(
            &generator,
            &plain,
            &offers,
            first_row,
            spec.decisions.min(SHIFT_PROBE_ROWS),
        ),
        Scenario::Default | Scenario::Calibrated => None,
    };
    let shifted = watched.filter(|_| spec.scenario == Scenario::Shift);
    let variant_offer = watched.filter(|_| spec.scenario == Scenario::Creative);
    let catalog = match variant_offer {
        Some(w) => {
            let id = generator.offers()[w].id;
            load_catalog(
                spec.catalog.as_deref(),
                spec.budget_scale,
                CatalogEdit::Variants(id),
            )?
        }
        None => plain,
    };
    let mut runs = (0..POLICIES.len())
        .map(|p| {
            Ok(PolicyRun::new(
                POLICIES[p].0,
                build_engine(&spec, &catalog, p)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let model_id = runs[0].engine.model().id.clone();
    let zero_floors = spec.scenario == Scenario::Calibrated;
    let mut calibration = match spec.scenario {
        Scenario::Calibrated => Some(calibrated::Calibration::new(
            build_engine(&spec, &catalog, 0)?,
            &catalog,
            &offers,
            &generator,
            spec.seed,
        )),
        _ => None,
    };
    let shift_at = spec.decisions / 2;
    let auction = Auction::default();
    // Off-policy evaluation is of the offer policy: under `creative` the
    // reward also depends on the variant each engine chose, which the
    // logged action does not name, so it is not run there.
    let mut ope = match spec.scenario {
        Scenario::Creative => None,
        _ => Some(ope::OpeLog::new(
            cx_evaluation::LEVEL_DEFAULT,
            dsjson,
            model_id.clone(),
        )?),
    };
    let mut draws_rng = ChaCha8Rng::seed_from_u64(spec.seed ^ 0x5EED_D4A5_0000_0001);
    let every = (spec.decisions / 200).max(1);
    let step_ns = spec.ms_per_decision * 1_000_000;
    let start_ns = generator.config().start_unix as u64 * 1_000_000_000;
    let (mut oracle_empty, mut oracle_p_sum) = (0u64, 0.0f64);
    let mut batch: Vec<(SynthRow, RowTruth)> = Vec::with_capacity(BATCH);
    let mut decisions: Vec<Vec<Decision>> = vec![Vec::with_capacity(BATCH); runs.len()];
    let mut next = 0u64;
    while next < spec.decisions {
        let n = (spec.decisions - next).min(BATCH as u64);
        let now_ns = start_ns + next * step_ns;
        batch.clear();
        batch.extend((0..n).map(|j| generator.row_with_truth(first_row + next + j)));
        for (run, decided) in runs.iter_mut().zip(decisions.iter_mut()) {
            let settlement = spec.settlement;
            decide_batch(
                &mut run.engine,
                &batch,
                settlement,
                zero_floors,
                now_ns,
                decided,
            )?;
        }
        if let Some(c) = calibration.as_mut() {
            c.probe(&batch, &offers, now_ns)?;
        }
        for (j, (row, row_truth)) in batch.iter().enumerate() {
            let index = next + j as u64;
            let truth = Truth {
                row: row_truth,
                shifted: shifted.filter(|_| index >= shift_at),
                logit_shift: SHIFT_LOGIT,
                variant_offer,
                calibrated: calibration.as_ref().map(|c| c.truth(j)),
            };
            let mut ctx = row.to_context();
            if zero_floors {
                ctx.bid_floor = 0.0;
            }
            let oracle = best_offer(&catalog, &offers, &ctx, &truth);
            oracle_empty += u64::from(oracle.is_none());
            let oracle_p = oracle.map_or(0.0, |(_, p)| p);
            oracle_p_sum += oracle_p;
            let u1: f64 = draws_rng.random();
            let request = policy::Request {
                index,
                user_id: row.user_id,
                floor_cpm: ctx.bid_floor,
                truth,
                oracle_p,
                draws: Draws {
                    competing_z: standard_normal(1.0 - u1, draws_rng.random()),
                    click_u: draws_rng.random(),
                    conversion_u: draws_rng.random(),
                },
                quarter: (index * 4 / spec.decisions) as usize,
                watched: shifted.or(variant_offer),
            };
            let mut greedy_choice = None;
            for (p, run) in runs.iter_mut().enumerate() {
                let decision = &decisions[p][j];
                let outcome = run.settle(
                    decision,
                    &request,
                    &offers,
                    &auction,
                    spec.settlement,
                    now_ns,
                );
                match POLICIES[p].1 {
                    Exploration::None => greedy_choice = decision.offers().first().copied(),
                    Exploration::Thompson => {
                        if let (Some((_, clicked)), Some(ope)) = (outcome, ope.as_mut()) {
                            ope.add(
                                decision,
                                run.engine.decision_id(decision.ticket),
                                &ctx,
                                now_ns,
                                clicked,
                                greedy_choice.as_ref(),
                                &truth,
                                &offers,
                                &auction,
                                spec.settlement,
                            )?;
                        }
                    }
                    Exploration::EpsilonGreedy => {}
                }
                if (index + 1).is_multiple_of(every) || index + 1 == spec.decisions {
                    run.mark(index + 1);
                }
            }
        }
        for run in &mut runs {
            run.send_events(now_ns);
        }
        next += n;
    }
    let ope = match ope {
        Some(ope) => ope.finish()?,
        None => None,
    };
    Ok(Run {
        shifted_offer: shifted.map(|w| generator.offers()[w].id),
        creative_offer: variant_offer.map(|w| generator.offers()[w].id),
        calibration: calibration.map(|c| c.by_offer),
        spec,
        policies: runs,
        catalog,
        model_id,
        ope,
        oracle_empty,
        oracle_p_sum,
        auction,
    })
}

/// Submits the batch's requests to `engine`, ticks at `now_ns` until they
/// are decided, and leaves the decisions in `out` in request order.
fn decide_batch(
    engine: &mut Engine,
    batch: &[(SynthRow, RowTruth)],
    settlement: SettlementMode,
    zero_floors: bool,
    now_ns: u64,
    out: &mut Vec<Decision>,
) -> Result<()> {
    let failed = |source| Error::Engine {
        what: "cannot decide a simulated request".into(),
        source,
    };
    let mut first = None;
    for (row, _) in batch {
        let mut ctx = row.to_context();
        if zero_floors {
            ctx.bid_floor = 0.0;
        }
        let ticket = engine
            .submit_request(Request {
                ctx,
                settlement: match settlement {
                    SettlementMode::Auction => Settlement::Auction,
                    SettlementMode::Direct => Settlement::Direct,
                },
                ..Request::default()
            })
            .map_err(failed)?;
        first.get_or_insert(ticket.0);
    }
    engine.run_until_decided(now_ns);
    out.clear();
    out.extend(engine.drain());
    out.sort_by_key(|d| d.ticket.0);
    let first = first.unwrap_or(0);
    if out.len() != batch.len()
        || out
            .iter()
            .enumerate()
            .any(|(i, d)| d.ticket.0 != first + i as u64)
    {
        return Err(Error::Mismatch(format!(
            "the engine decided {} of {} simulated requests",
            out.len(),
            batch.len()
        )));
    }
    Ok(())
}
