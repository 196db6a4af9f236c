//! The server's Prometheus metrics, and ([`admin`]) the admin HTTP endpoint
//! that exposes them (`GET /metrics`) next to a health probe
//! (`GET /healthz`).
//!
//! # What this module owns
//!
//! - [`Metrics`]: the process's one metric registry and a typed method per
//!   thing the server counts. Every worker thread holds a clone (an `Arc`);
//!   recording never allocates and never takes a registry-wide lock.
//! - [`admin`]: the admin HTTP endpoint on its own thread ([`AdminServer`])
//!   and the serving/draining flag `/healthz` reports ([`Health`]).
//!
//! # Metrics: trade-offs
//!
//! - **Cost.** Counters and the gauge are one atomic add each. A histogram
//!   observation takes a short lock inside `prometheus_client`: batch-level
//!   quantities are recorded once per batch or tick
//!   ([`Metrics::observe_inference_seconds`], [`Metrics::observe_batch_size`]),
//!   counts are passed in bulk (`add_*(n)`), and only
//!   [`Metrics::observe_decision_seconds`] is per request.
//! - **Fixed label sets.** `cx_errors_total{code}` and
//!   `cx_model_reloads_total{result}` are resolved to one counter per label
//!   value at construction, so recording is an array lookup, cardinality is
//!   bounded (ten codes, five reload results) and every series is exposed from the
//!   first scrape with 0 (so `rate()` sees the first increment).
//! - **Bad input.** A negative or non-finite inference time is dropped: one
//!   NaN would make the histogram's sum NaN for the life of the process.
//! - **Format.** [`Metrics::render`] writes OpenMetrics text, the only text
//!   format `prometheus_client` produces ([`METRICS_CONTENT_TYPE`]): a
//!   counter family's `# TYPE` line names it without `_total`
//!   (`# TYPE ml_predictions counter`), its sample carries the suffix
//!   (`ml_predictions_total 7`), and the text ends with `# EOF`. Prometheus
//!   scrapes this format natively.
//!
pub mod admin;
mod experiments;
mod features;
mod feedback;
mod http;
mod monitor;

pub use admin::{
    AdminHooks, AdminLimits, AdminServer, FeaturesHook, Health, MetricsError, ReloadHook,
};
pub use experiments::LiveExperiment;
pub use http::NOTICE_RESULTS;

use cx_wire::protocol::ErrorCode;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};
use std::sync::Arc;

/// The `Content-Type` of [`Metrics::render`]'s text (OpenMetrics 1.0).
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bound of the smallest bucket of the duration histograms
/// (`ml_inference_duration_seconds`, `cx_decision_duration_seconds`): 1 µs.
pub const INFERENCE_BUCKET_MIN_SECONDS: f64 = 1e-6;

/// Number of finite buckets of the duration histograms: each doubles the
/// previous one, so the largest is 2^20 µs, about 1.05 s.
pub const INFERENCE_BUCKET_COUNT: u16 = 21;

/// Number of finite `cx_batch_size` buckets: 1, 2, 4, .., 1024 requests.
pub const BATCH_SIZE_BUCKET_COUNT: u16 = 11;

/// Every metric the server exposes. Shared by all worker threads; cheap to
/// clone (an `Arc` inside); `Send + Sync`.
#[derive(Clone, Debug)]
pub struct Metrics {
    inner: Arc<Inner>,
}

/// The registry and a handle to each metric in it (the handles share their
/// values with the registry's copies).
#[derive(Debug)]
struct Inner {
    registry: Registry,
    inference_seconds: Histogram,
    decision_seconds: Histogram,
    predictions: Counter,
    cache_hits: Counter,
    cache_misses: Counter,
    connections_active: Gauge,
    connections: Counter,
    connections_refused: Counter,
    frames_received: Counter,
    frames_sent: Counter,
    /// One counter per code, in [`ErrorCode::ALL`] order.
    errors: Vec<(ErrorCode, Counter)>,
    overloaded: Counter,
    batch_size: Histogram,
    timeouts: Counter,
    frame_timeouts: Counter,
    source_refusals: Counter,
    output_budget_spent: Counter,
    output_buffered: Gauge,
    input_budget_spent: Counter,
    input_large: Gauge,
    /// `cx_model_info{name,version,id}`: 1 for the model serving.
    model_info: Family<Vec<(&'static str, String)>, Gauge>,
    catalog_unscored: Gauge,
    /// One counter per [`ReloadResult`], in [`ReloadResult::ALL`] order.
    reloads: [Counter; ReloadResult::COUNT],
    swap_failures: Counter,
    http: http::HttpMetrics,
    feedback: feedback::FeedbackMetrics,
    features: features::FeatureMetrics,
    monitor: monitor::MonitorMetrics,
    experiments: experiments::ExperimentMetrics,
}

/// How one model reload ended: the `result` label of
/// `cx_model_reloads_total`. A reload is counted once, by the server
/// handle that checked it, whatever the number of workers.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, strum::EnumCount, strum::VariantArray, strum::IntoStaticStr,
)]
#[strum(serialize_all = "snake_case")]
pub enum ReloadResult {
    /// Checked and ordered to every worker.
    Ok,
    /// The model or fallback file could not be read (missing, no
    /// permission, over the size limit).
    ReadError,
    /// The model file is not a valid model (header, tensors, shapes,
    /// non-finite weights, metadata).
    InvalidModel,
    /// The model is valid, its fallback scorer is not.
    InvalidFallback,
    /// Both files are valid but do not fit the running server (feature
    /// schema, catalog, backend).
    Incompatible,
    /// A repository bundle's catalog is not a valid catalog (TOML, a
    /// field out of range, a repeated offer id).
    InvalidCatalog,
}

impl ReloadResult {
    /// Number of results.
    pub const COUNT: usize = <Self as strum::EnumCount>::COUNT;

    /// Every result, in declaration order.
    pub const ALL: [ReloadResult; Self::COUNT] =
        match <Self as strum::VariantArray>::VARIANTS.first_chunk() {
            Some(all) => *all,
            None => panic!("VARIANTS holds every result"),
        };

    /// The `result` label.
    pub fn label(self) -> &'static str {
        self.into()
    }
}

/// A label set of one `name="value"` pair.
type Label = [(&'static str, &'static str); 1];

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry holding every metric, all at zero.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let inner = Inner {
            inference_seconds: register_seconds(
                &mut registry,
                "ml_inference_duration",
                "Wall time of one model inference batch in the engine (the backend chain)",
            ),
            decision_seconds: register_seconds(
                &mut registry,
                "cx_decision_duration",
                "Per request, from its submission to the engine to its decision reaching the connection",
            ),
            predictions: counter(
                &mut registry,
                "ml_predictions",
                "Predictions made by the model",
            ),
            cache_hits: counter(&mut registry, "ml_cache_hits", "Decision cache hits"),
            cache_misses: counter(&mut registry, "ml_cache_misses", "Decision cache misses"),
            connections_active: gauge(
                &mut registry,
                "cx_connections_active",
                "Client connections open now",
            ),
            connections: counter(
                &mut registry,
                "cx_connections",
                "Client connections accepted",
            ),
            connections_refused: counter(
                &mut registry,
                "cx_connections_refused",
                "Client connections refused (over the connection limit or shutting down)",
            ),
            frames_received: counter(
                &mut registry,
                "cx_frames_received",
                "Protocol frames received",
            ),
            frames_sent: counter(&mut registry, "cx_frames_sent", "Protocol frames sent"),
            errors: register_errors(&mut registry),
            overloaded: counter(
                &mut registry,
                "cx_overloaded",
                "Requests refused because the engine had no capacity",
            ),
            batch_size: register_batch_size(&mut registry),
            timeouts: counter(
                &mut registry,
                "cx_connection_timeouts",
                "Client connections closed for being idle or too slow, or for a frame that took too long",
            ),
            frame_timeouts: counter(
                &mut registry,
                "cx_frame_timeouts",
                "Client connections closed because a frame took longer than frame_timeout_ms from its first byte to its last",
            ),
            output_budget_spent: counter(
                &mut registry,
                "cx_output_budget_spent",
                "Times the buffered output over all workers reached output_budget_bytes (reading then stops for connections with output waiting)",
            ),
            output_buffered: gauge(
                &mut registry,
                "cx_output_buffered_bytes",
                "Answers written but not yet sent to their clients, over all workers, in bytes",
            ),
            input_budget_spent: counter(
                &mut registry,
                "cx_input_budget_spent",
                "Large frames (over the 64 KiB a read buffer keeps) that found input_budget_bytes reserved by others and waited their turn",
            ),
            input_large: gauge(
                &mut registry,
                "cx_input_large_bytes",
                "Bytes reserved by large frames now arriving (beyond the 64 KiB each read buffer keeps), over all workers",
            ),
            source_refusals: counter(
                &mut registry,
                "cx_connections_refused_source",
                "Client connections refused because their source address held connections_per_source_max already (also in cx_connections_refused)",
            ),
            reloads: register_reloads(&mut registry),
            catalog_unscored: gauge(
                &mut registry,
                "cx_catalog_unscored_offers",
                "Catalog offers the model serving has no output column for (0 when model and catalog match)",
            ),
            model_info: {
                let family = Family::default();
                registry.register(
                    "cx_model_info",
                    "The model serving: 1 for its name, version and id (the SHA-256 of its file)",
                    family.clone(),
                );
                family
            },
            swap_failures: counter(
                &mut registry,
                "cx_model_swap_failures",
                "Workers that could not stage a reload the server had checked (the old model keeps serving there)",
            ),
            http: http::HttpMetrics::register(&mut registry),
            feedback: feedback::FeedbackMetrics::register(&mut registry),
            features: features::FeatureMetrics::register(&mut registry),
            monitor: monitor::MonitorMetrics::register(&mut registry),
            experiments: experiments::ExperimentMetrics::register(&mut registry),
            registry,
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Adds one HTTP connection's counts (answers, no-bids, deadlines,
    /// notices).
    pub fn add_http(&self, counts: &crate::http::HttpCounts) {
        self.inner.http.add(counts);
    }

    /// Keeps worker `worker`'s model monitoring report (for `GET
    /// /admin/monitor`) and sets the `cx_monitor_*` gauges from every
    /// worker's last one.
    pub fn publish_monitor(
        &self,
        worker: usize,
        report: cx_engine::systems::monitor::MonitorReport,
    ) {
        self.inner.monitor.publish(worker, report);
    }

    /// The document `GET /admin/monitor` answers: every worker's last
    /// model monitoring report.
    pub fn monitor_json(&self) -> String {
        self.inner.monitor.json()
    }

    /// Publishes the feature store's health: adds the reads and writes
    /// counted between `before` (the report last published, `None` at the
    /// first) and `now`, and sets the ages, warnings and store gauges
    /// (`cx_feature_*`).
    pub fn publish_feature_health(
        &self,
        before: Option<&cx_engine::featurestore::HealthReport>,
        now: &cx_engine::featurestore::HealthReport,
        stats_before: &cx_engine::featurestore::StoreStats,
        stats: &cx_engine::featurestore::StoreStats,
    ) {
        self.inner
            .features
            .publish_health(before, now, stats_before, stats);
    }

    /// Adds what feedback did to the feature store since an engine's
    /// counts were `before` (`cx_feature_feedback_updates_total`).
    pub fn add_feature_feedback(
        &self,
        before: &cx_engine::feature_store::FeatureFeedbackCounts,
        now: &cx_engine::feature_store::FeatureFeedbackCounts,
    ) {
        self.inner.features.add_feedback(before, now);
    }

    /// Counts a `put_features` answer (`cx_feature_put_items_total`,
    /// `cx_feature_put_refused_total`).
    pub fn add_put_features(&self, ack: &cx_wire::protocol::PutFeaturesAck) {
        self.inner.features.add_put(ack);
    }

    /// Adds what an engine did with feedback events since its counts were
    /// `before` (`cx_feedback_events_total`, `cx_feedback_refused_total`).
    pub fn add_feedback(
        &self,
        before: &cx_engine::feedback::FeedbackCounts,
        now: &cx_engine::feedback::FeedbackCounts,
    ) {
        self.inner.feedback.add(before, now);
    }

    /// Sets the `cx_decision_log_*` gauges from the shared log's stats.
    pub fn set_decision_log(&self, stats: &cx_domain::store::LogStats) {
        self.inner.feedback.set_log(stats);
    }

    /// Counts binary requests answered `timeout` (their deadline passed)
    /// and shed at admission for their deadline.
    pub fn add_deadline(&self, expired: u64, shed: u64) {
        self.inner.http.add_deadline(expired, shed);
    }

    /// Records the wall time of one model inference batch, in seconds.
    /// Negative and non-finite values are ignored.
    pub fn observe_inference_seconds(&self, seconds: f64) {
        if seconds.is_finite() && seconds >= 0.0 {
            self.inner.inference_seconds.observe(seconds);
        }
    }

    /// Records one request's time from submission to decision, in
    /// seconds. Negative and non-finite values are ignored.
    pub fn observe_decision_seconds(&self, seconds: f64) {
        if seconds.is_finite() && seconds >= 0.0 {
            self.inner.decision_seconds.observe(seconds);
        }
    }

    /// Counts `n` predictions made by the model.
    pub fn add_predictions(&self, n: u64) {
        self.inner.predictions.inc_by(n);
    }

    /// Counts decision cache hits and misses.
    pub fn add_cache(&self, hits: u64, misses: u64) {
        self.inner.cache_hits.inc_by(hits);
        self.inner.cache_misses.inc_by(misses);
    }

    /// Counts an accepted client connection, now open.
    pub fn connection_opened(&self) {
        self.inner.connections.inc();
        self.inner.connections_active.inc();
    }

    /// Records that an open client connection (one counted by
    /// [`Metrics::connection_opened`]) closed.
    pub fn connection_closed(&self) {
        self.inner.connections_active.dec();
    }

    /// Counts a client connection refused at accept (it is not counted as
    /// opened).
    pub fn connection_refused(&self) {
        self.inner.connections_refused.inc();
    }

    /// Counts `n` protocol frames received.
    pub fn add_frames_received(&self, n: u64) {
        self.inner.frames_received.inc_by(n);
    }

    /// Counts `n` protocol frames sent.
    pub fn add_frames_sent(&self, n: u64) {
        self.inner.frames_sent.inc_by(n);
    }

    /// Counts `n` error frames sent with `code`.
    pub fn add_errors(&self, code: ErrorCode, n: u64) {
        let found = self.inner.errors.iter().find(|(c, _)| *c == code);
        if let Some((_, counter)) = found {
            counter.inc_by(n);
        }
    }

    /// Counts `n` requests refused because the engine had no capacity.
    pub fn add_overloaded(&self, n: u64) {
        self.inner.overloaded.inc_by(n);
    }

    /// Records the number of requests one engine tick handled.
    pub fn observe_batch_size(&self, n: u64) {
        // Exact up to 2^53, far beyond any batch.
        self.inner.batch_size.observe(n as f64);
    }

    /// Counts `n` client connections closed for being idle or too slow.
    pub fn add_timeouts(&self, n: u64) {
        self.inner.timeouts.inc_by(n);
    }

    /// Counts a connection closed for a frame that took too long.
    pub fn frame_timed_out(&self) {
        self.inner.frame_timeouts.inc();
    }

    /// Counts a time the output budget was reached.
    pub fn output_budget_spent(&self) {
        self.inner.output_budget_spent.inc();
    }

    /// Shows `name`, `version` and `id` as the model serving, in place of
    /// the one before.
    pub fn set_model_info(&self, name: &str, version: &str, id: &str) {
        let family = &self.inner.model_info;
        family.clear();
        let labels = vec![
            ("name", name.to_string()),
            ("version", version.to_string()),
            ("id", id.to_string()),
        ];
        family.get_or_create(&labels).set(1);
    }

    /// Sets how many catalog offers the model serving has no column for.
    pub fn set_catalog_unscored(&self, offers: usize) {
        set_count(&self.inner.catalog_unscored, offers);
    }

    /// Counts a time the input budget was reached.
    pub fn input_budget_spent(&self) {
        self.inner.input_budget_spent.inc();
    }

    /// Sets the bytes reserved by large frames over all workers.
    pub fn set_input_large(&self, bytes: usize) {
        set_count(&self.inner.input_large, bytes);
    }

    /// Sets the output buffered over all workers, in bytes.
    pub fn set_output_buffered(&self, bytes: usize) {
        set_count(&self.inner.output_buffered, bytes);
    }

    /// Counts a connection refused for its source address's limit.
    pub fn source_limit_refused(&self) {
        self.inner.source_refusals.inc();
    }

    /// Counts one model reload, by how it ended.
    pub fn model_reloaded(&self, result: ReloadResult) {
        self.inner.reloads[result as usize].inc();
    }

    /// Makes `live` the experiments `/admin/experiments` and the
    /// `cx_experiment_*` series show (at start and at each reload).
    pub fn set_experiments(&self, live: Vec<LiveExperiment>) {
        self.inner.experiments.set_live(live);
    }

    /// Adds a worker's counts of arm `id` since its last publish.
    pub fn add_arm_counts(&self, id: u16, delta: &cx_engine::systems::resources::ArmCounts) {
        self.inner.experiments.add(id, delta);
    }

    /// Every named experiment arm with its counts over the workers:
    /// `(id, experiment key, variation key, counts)`.
    pub fn experiment_arms(
        &self,
    ) -> Vec<(
        u16,
        String,
        String,
        cx_engine::systems::resources::ArmCounts,
    )> {
        self.inner.experiments.arms()
    }

    /// Puts back what an earlier run of the server counted for arm `id`
    /// (the experiments' state file, at start).
    pub fn restore_experiment_arm(
        &self,
        id: u16,
        name: (String, String),
        counts: &cx_engine::systems::resources::ArmCounts,
    ) {
        self.inner.experiments.restore(id, name, *counts);
    }

    /// The document `GET /admin/experiments` answers: every live
    /// experiment's report (a look: the sequential tests read once more).
    pub fn experiments_json(&self) -> String {
        self.inner.experiments.json()
    }

    /// Counts a worker that failed to stage a reload the server had
    /// already checked.
    pub fn model_swap_failed(&self) {
        self.inner.swap_failures.inc();
    }

    /// Every metric as OpenMetrics text ([`METRICS_CONTENT_TYPE`]), ending
    /// with `# EOF`.
    pub fn render(&self) -> String {
        // A scrape is a look: the experiments' statistics are read anew.
        self.inner.experiments.report();
        let mut text = String::with_capacity(8 * 1024);
        // Writing to a `String` cannot fail; an encoder error would be a bug
        // in `prometheus_client`, so log it and serve what was written.
        if let Err(err) = encode(&mut text, &self.inner.registry) {
            tracing::error!(%err, "cannot encode the metrics");
        }
        text
    }
}

/// Registers an unlabelled counter named `name` (exposed as `name_total`).
fn counter(registry: &mut Registry, name: &str, help: &str) -> Counter {
    let metric = Counter::default();
    registry.register(name, help, metric.clone());
    metric
}

/// Registers an unlabelled gauge.
fn gauge(registry: &mut Registry, name: &str, help: &str) -> Gauge {
    let metric = Gauge::default();
    registry.register(name, help, metric.clone());
    metric
}

/// Registers a histogram of seconds named `name` (exposed as
/// `name_seconds`): 1 µs .. ~1.05 s, doubling.
fn register_seconds(registry: &mut Registry, name: &str, help: &str) -> Histogram {
    let buckets = exponential_buckets(INFERENCE_BUCKET_MIN_SECONDS, 2.0, INFERENCE_BUCKET_COUNT);
    let metric = Histogram::new(buckets);
    registry.register_with_unit(name, help, Unit::Seconds, metric.clone());
    metric
}

/// Registers `cx_batch_size`: 1, 2, 4, .., 1024 requests.
fn register_batch_size(registry: &mut Registry) -> Histogram {
    let metric = Histogram::new(exponential_buckets(1.0, 2.0, BATCH_SIZE_BUCKET_COUNT));
    registry.register(
        "cx_batch_size",
        "Requests handled per engine tick",
        metric.clone(),
    );
    metric
}

/// Sets `gauge` to a count or a size (saturating at `i64::MAX`, far
/// beyond any here).
fn set_count(gauge: &Gauge, value: usize) {
    gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
}

/// Registers `cx_errors_total{code}` and resolves one counter per code.
fn register_errors(registry: &mut Registry) -> Vec<(ErrorCode, Counter)> {
    let family = Family::<Label, Counter>::default();
    registry.register(
        "cx_errors",
        "Error frames sent, by error code",
        family.clone(),
    );
    ErrorCode::ALL
        .into_iter()
        .map(|code| (code, family.get_or_create_owned(&[("code", code.label())])))
        .collect()
}

/// Registers `cx_model_reloads_total{result}`; returns one counter per
/// [`ReloadResult`], in order.
fn register_reloads(registry: &mut Registry) -> [Counter; ReloadResult::COUNT] {
    let family = Family::<Label, Counter>::default();
    registry.register(
        "cx_model_reloads",
        "Model reload attempts, by result",
        family.clone(),
    );
    ReloadResult::ALL.map(|result| family.get_or_create_owned(&[("result", result.label())]))
}
