//! Experiments' metrics and the document `GET /admin/experiments` answers
//! (`docs/EXPERIMENTS.md`, "Serving"):
//!
//! - `cx_experiment_assigned_total{experiment,variation}`, `_decided_total`,
//!   `_impressions_total`, `_clicks_total`, `_conversions_total` and
//!   `_revenue_total`: what each arm counted, summed over the workers
//!   (assignments and decisions by the worker that decided, outcomes by
//!   the worker whose feedback joined them);
//! - `cx_experiment_srm_p_value{experiment}`, and per treatment
//!   `cx_experiment_sequential_p_value{experiment,variation}` (always valid)
//!   and `cx_experiment_chance_to_beat_control{experiment,variation}`: the
//!   statistics as of the last look.
//!
//! A look ([`ExperimentMetrics::report`]) happens at every `GET
//! /admin/experiments` and every scrape of `/metrics`; the mSPRT keeps its
//! running minimum across looks, so however often anyone looks, its error
//! rate holds. The board holds the live experiments (set by the server at
//! start and at each reload), every arm's name and counts by arm id (ids
//! are never reused, so counts of a removed experiment stay its own), and
//! each live treatment's monitor. Series are made when an arm is first
//! named: at most [`ARMS_MAX`] per family.

use cx_engine::systems::resources::experiments::{ArmCounts, ARMS_MAX};
use cx_experiments::stats::report::{report, ExperimentReport, Looks, VariantInput};
use cx_experiments::stats::sequential::SequentialConfig;
use cx_experiments::stats::VariantCounts;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, PoisonError};

type Labels = Vec<(&'static str, String)>;
type Real = Gauge<f64, AtomicU64>;
type RealCounter = Counter<f64, AtomicU64>;

/// A live experiment as the board shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveExperiment {
    /// Its key.
    pub key: String,
    /// Its configured split, per variation.
    pub weights: Vec<f64>,
    /// Per variation: arm id, variation key, and the bundle version serving it.
    pub arms: Vec<(u16, String, String)>,
}

#[derive(Debug, Default)]
struct Board {
    live: Vec<LiveExperiment>,
    /// By arm id: (experiment key, variation key), once named.
    names: Vec<Option<(String, String)>>,
    /// By arm id, summed over the workers.
    counts: Vec<ArmCounts>,
    /// By experiment key: its treatments' monitors.
    looks: BTreeMap<String, Looks>,
}

/// The experiments' series and board.
#[derive(Debug)]
pub(super) struct ExperimentMetrics {
    assigned: Family<Labels, Counter>,
    decided: Family<Labels, Counter>,
    impressions: Family<Labels, Counter>,
    clicks: Family<Labels, Counter>,
    conversions: Family<Labels, Counter>,
    revenue: Family<Labels, RealCounter>,
    srm_p_value: Family<Labels, Real>,
    sequential_p_value: Family<Labels, Real>,
    chance_to_beat_control: Family<Labels, Real>,
    board: Mutex<Board>,
}

fn family<M>(registry: &mut Registry, name: &str, help: &str) -> Family<Labels, M>
where
    M: prometheus_client::metrics::TypedMetric
        + prometheus_client::encoding::EncodeMetric
        + Clone
        + Default
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let family = Family::<Labels, M>::default();
    registry.register(name, help, family.clone());
    family
}

impl ExperimentMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        Self {
            assigned: family(registry, "cx_experiment_assigned", "Requests assigned to each experiment arm (decided for real), over the workers"),
            decided: family(registry, "cx_experiment_decided", "Decisions that chose an offer, per experiment arm"),
            impressions: family(registry, "cx_experiment_impressions", "Impressions joined to each experiment arm's decisions"),
            clicks: family(registry, "cx_experiment_clicks", "Clicks joined to each experiment arm's decisions"),
            conversions: family(registry, "cx_experiment_conversions", "Conversions joined to each experiment arm's decisions"),
            revenue: family(registry, "cx_experiment_revenue", "Conversion value joined to each experiment arm's decisions"),
            srm_p_value: family(registry, "cx_experiment_srm_p_value", "Sample-ratio-mismatch chi-square p-value of each live experiment's assignments against its weights, at the last look (flagged under 0.001)"),
            sequential_p_value: family(registry, "cx_experiment_sequential_p_value", "Always-valid mSPRT p-value of each treatment's CTR against the control, the smallest over every look"),
            chance_to_beat_control: family(registry, "cx_experiment_chance_to_beat_control", "Bayesian chance that each treatment's CTR beats the control's, at the last look"),
            board: Mutex::new(Board::default()),
        }
    }

    fn board(&self) -> std::sync::MutexGuard<'_, Board> {
        self.board.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes `live` the live experiments: names their arms (and makes
    /// their series), keeps the monitors of experiments still live, and
    /// starts new ones.
    pub(super) fn set_live(&self, live: Vec<LiveExperiment>) {
        let mut board = self.board();
        for e in &live {
            for (id, variation, _) in &e.arms {
                let id = usize::from(*id);
                if id >= ARMS_MAX {
                    continue;
                }
                if board.names.len() <= id {
                    board.names.resize(id + 1, None);
                    board.counts.resize(id + 1, ArmCounts::default());
                }
                let name = (e.key.clone(), variation.clone());
                let labels = labels(&name);
                board.names[id] = Some(name);
                for f in [
                    &self.assigned,
                    &self.decided,
                    &self.impressions,
                    &self.clicks,
                    &self.conversions,
                ] {
                    let _made = f.get_or_create(&labels);
                }
                let _made = self.revenue.get_or_create(&labels);
            }
        }
        let keep: BTreeMap<String, Looks> = live
            .iter()
            .map(|e| {
                let treatments = e.arms.len().saturating_sub(1);
                let mut looks = board.looks.remove(&e.key).unwrap_or_else(|| {
                    Looks::new(treatments, SequentialConfig::default())
                        .expect("the default sequential config is valid")
                });
                // A variation added to a kept experiment gets a monitor.
                looks.grow_to(treatments);
                (e.key.clone(), looks)
            })
            .collect();
        board.looks = keep;
        board.live = live;
    }

    /// Adds one worker's counts since its last publish, by arm id.
    pub(super) fn add(&self, id: u16, delta: &ArmCounts) {
        let mut board = self.board();
        let i = usize::from(id);
        let Some(Some(name)) = board.names.get(i) else {
            return;
        };
        let labels = labels(name);
        board.counts[i].add(delta);
        drop(board);
        self.assigned.get_or_create(&labels).inc_by(delta.assigned);
        self.decided.get_or_create(&labels).inc_by(delta.decided);
        self.impressions
            .get_or_create(&labels)
            .inc_by(delta.impressions);
        self.clicks.get_or_create(&labels).inc_by(delta.clicks);
        self.conversions
            .get_or_create(&labels)
            .inc_by(delta.conversions);
        if delta.revenue > 0.0 && delta.revenue.is_finite() {
            self.revenue.get_or_create(&labels).inc_by(delta.revenue);
        }
    }

    /// Every named arm with its counts: `(id, experiment key, variation
    /// key, counts)`, by id (what the experiments' state file keeps).
    pub(super) fn arms(&self) -> Vec<(u16, String, String, ArmCounts)> {
        let board = self.board();
        board
            .names
            .iter()
            .zip(&board.counts)
            .enumerate()
            .filter_map(|(id, (name, counts))| {
                let (e, v) = name.as_ref()?;
                Some((u16::try_from(id).ok()?, e.clone(), v.clone(), *counts))
            })
            .collect()
    }

    /// Puts back what an earlier run counted for arm `id`, named
    /// `(experiment, variation)` (before any worker publishes).
    pub(super) fn restore(&self, id: u16, name: (String, String), counts: ArmCounts) {
        let i = usize::from(id);
        if i >= ARMS_MAX {
            return;
        }
        let mut board = self.board();
        if board.names.len() <= i {
            board.names.resize(i + 1, None);
            board.counts.resize(i + 1, ArmCounts::default());
        }
        board.names[i] = Some(name);
        board.counts[i] = ArmCounts::default();
        drop(board);
        // Counted as a worker's publish: the series carry it too.
        self.add(id, &counts);
    }

    /// One look: every live experiment's report, and the statistics'
    /// gauges set from it.
    pub(super) fn report(&self) -> Vec<(LiveExperiment, ExperimentReport)> {
        let mut board = self.board();
        let Board {
            live,
            counts,
            looks,
            ..
        } = &mut *board;
        let mut out = Vec::with_capacity(live.len());
        for e in live.iter() {
            let variants: Vec<VariantInput> = e
                .arms
                .iter()
                .map(|(id, key, _)| {
                    let c = counts.get(usize::from(*id)).copied().unwrap_or_default();
                    VariantInput {
                        key: key.clone(),
                        assigned: c.assigned,
                        counts: VariantCounts {
                            impressions: c.impressions,
                            clicks: c.clicks,
                            conversions: c.conversions,
                            revenue: c.revenue,
                        },
                    }
                })
                .collect();
            let Some(looks) = looks.get_mut(&e.key) else {
                continue;
            };
            let r = report(&e.key, &variants, &e.weights, looks);
            self.set_gauges(&r);
            out.push((e.clone(), r));
        }
        out
    }

    fn set_gauges(&self, r: &ExperimentReport) {
        let experiment = vec![("experiment", r.key.clone())];
        if let Some(srm) = &r.srm {
            self.srm_p_value.get_or_create(&experiment).set(srm.p_value);
        }
        for v in &r.variants {
            let Some(c) = &v.vs_control else { continue };
            let labels = labels(&(r.key.clone(), v.key.clone()));
            self.sequential_p_value
                .get_or_create(&labels)
                .set(c.sequential_p_value);
            if let Some(p) = c.chance_to_beat_control {
                self.chance_to_beat_control.get_or_create(&labels).set(p);
            }
        }
    }

    /// The document `GET /admin/experiments` answers (one look).
    pub(super) fn json(&self) -> String {
        let experiments: Vec<serde_json::Value> = self
            .report()
            .into_iter()
            .map(|(live, report)| {
                let mut value = serde_json::to_value(&report).unwrap_or_default();
                if let Some(variants) = value.get_mut("variants").and_then(|v| v.as_array_mut()) {
                    for (v, (id, _, version)) in variants.iter_mut().zip(&live.arms) {
                        v["arm"] = (*id).into();
                        v["version"] = version.clone().into();
                    }
                }
                value["weights"] = live.weights.clone().into();
                value
            })
            .collect();
        serde_json::json!({ "experiments": experiments }).to_string()
    }
}

fn labels((experiment, variation): &(String, String)) -> Labels {
    vec![
        ("experiment", experiment.clone()),
        ("variation", variation.clone()),
    ]
}
