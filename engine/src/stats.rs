//! A snapshot of what an engine has done: counters of every outcome and
//! latency percentiles of every stage, serialisable as JSON.

use crate::engine::{Engine, EngineParts};
use cx_domain::pipeline::NoBidCause;
use cx_domain::store::{CacheBackend, CacheStats, FrequencyBackend, FrequencyCaps, ScoreCache};
use cx_systems::resources::{Counters, Latencies, Scoring};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;

/// The model an engine serves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ModelInfo {
    /// Where it was loaded from.
    pub source: String,
    /// `cx.name`.
    pub name: String,
    /// `cx.version`.
    pub version: String,
    /// SHA-256 of the file.
    pub id: String,
    /// Output columns (offers it scores).
    pub outputs: usize,
    /// Time steps T.
    pub steps: u32,
    /// Whether a fallback scorer is loaded.
    pub fallback: bool,
}

/// Latency percentiles of one stage, ns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StageLatency {
    /// The stage.
    pub stage: &'static str,
    /// Samples recorded.
    pub count: u64,
    /// Median.
    pub p50_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// Largest.
    pub max_ns: u64,
}

impl StageLatency {
    /// Percentiles of `h` under the name `stage`.
    pub fn of(stage: &'static str, h: &Histogram<u64>) -> Self {
        Self {
            stage,
            count: h.len(),
            p50_ns: h.value_at_quantile(0.5),
            p99_ns: h.value_at_quantile(0.99),
            p999_ns: h.value_at_quantile(0.999),
            max_ns: h.max(),
        }
    }
}

/// Backend-chain counters, per backend.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BackendCounters {
    /// The backend's device name.
    pub device: String,
    /// Batches it served.
    pub batches_ok: u64,
    /// Batches it failed.
    pub failures: u64,
    /// Times it was quarantined.
    pub quarantines: u64,
}

/// Everything [`Engine::stats`] reports.
#[derive(Clone, Debug, Serialize)]
pub struct EngineStats {
    /// The model being served.
    pub model: ModelInfo,
    /// The backend chain's configured kind.
    pub backend: String,
    /// Ticks run.
    pub ticks: u64,
    /// Requests accepted by `submit`.
    pub submitted: u64,
    /// Requests refused as overloaded.
    pub overloaded: u64,
    /// Requests submitted and not yet polled.
    pub in_flight: usize,
    /// The pipeline's counters.
    pub pipeline: Counters,
    /// No-offer decisions by cause label.
    pub no_offer_by_cause: BTreeMap<&'static str, u64>,
    /// The decision cache.
    pub cache: CacheStats,
    /// Frequency-store evictions of live entries.
    pub frequency_evictions: u64,
    /// The backend chain.
    pub backends: Vec<BackendCounters>,
    /// Per-request latency of each stage and in total, then per inference
    /// batch (`inference_batch`), then per tick (`tick`).
    pub latency: Vec<StageLatency>,
}

impl EngineStats {
    pub(crate) fn collect(engine: &Engine) -> Self {
        let EngineParts {
            world,
            port,
            tick_ns,
            ticks,
            backend,
            model,
        } = engine.parts();
        let counters = world.resource::<Counters>().clone();
        let no_offer_by_cause = NoBidCause::ALL
            .iter()
            .map(|c| (c.label(), counters.no_offer_by_cause[c.index()]))
            .filter(|&(_, n)| n > 0)
            .collect();
        let mut latency: Vec<StageLatency> = world
            .resource::<Latencies>()
            .named()
            .map(|(stage, h)| StageLatency::of(stage, h))
            .collect();
        let batches = &world.resource::<Latencies>().inference_batch;
        latency.push(StageLatency::of("inference_batch", batches));
        latency.push(StageLatency::of("tick", tick_ns));
        let (submitted, overloaded) = port.counts();
        Self {
            model: model.clone(),
            backend: backend.to_string(),
            ticks,
            submitted,
            overloaded,
            in_flight: port.in_flight(),
            pipeline: counters,
            no_offer_by_cause,
            cache: world.resource::<CacheBackend>().stats(),
            frequency_evictions: world.resource::<FrequencyBackend>().stats().evictions,
            backends: world
                .resource::<Scoring>()
                .dispatcher
                .stats()
                .into_iter()
                .map(|s| BackendCounters {
                    device: s.device,
                    batches_ok: s.batches_ok,
                    failures: s.failures,
                    quarantines: s.quarantines,
                })
                .collect(),
            latency,
        }
    }

    /// The latency of `stage` (`"total"`, `"tick"`, `"infer"`, ...).
    pub fn latency_of(&self, stage: &str) -> Option<&StageLatency> {
        self.latency.iter().find(|l| l.stage == stage)
    }
}
