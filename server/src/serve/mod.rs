//! The TCP server behind `cx serve`: binds the protocol port, starts one
//! worker thread per configured core, each with its own event loop
//! (io_uring, or epoll as the fallback) and its own [`Engine`] built from
//! the same model bytes, and the admin HTTP endpoint. [`Server`] is the
//! handle: its address, shutdown, model reload ([`Reloader`]), and `wait`.
//!
//! # Threads and sharing
//!
//! Workers share nothing on the request path. Each binds its own listening
//! socket to the same address with `SO_REUSEPORT`, so the kernel spreads
//! connections across them, and each connection stays on its worker for
//! life. The model file is read once and its bytes (an `Arc`) handed to
//! every engine; each engine parses its own weights, so a worker never
//! waits on another. What they do share is [`Control`] (shutdown and
//! reload orders, read at [`HOUSEKEEPING_INTERVAL`]) and the [`Metrics`]
//! registry (atomics), and through their engines the stores that must be
//! one for the whole server: with several workers the frequency counts,
//! budgets and click posteriors, and always the decision log and the
//! online feature store ([`features`]: one `SharedFeatureStore`, 64
//! shards behind their own locks, that every engine reads its requests'
//! users from and any connection's `put_features` writes).
//!
//! # Shutdown
//!
//! [`Server::shutdown`] sets a flag; at its next housekeeping each worker
//! stops accepting, tells every connection to answer new requests
//! `shutting_down`, keeps serving what is in flight, and closes each
//! connection once its answers are sent. It exits when none is left, or
//! after `shutdown_timeout_ms` (closing what remains, logged).

pub mod experiments_state;
pub mod features;
mod reload;
mod setup;
pub mod state;
pub use reload::{ReloadDone, Reloader};
use setup::{
    bind_listeners, build_engine, report_catalog_fit, report_train_serve_skew, resolve_io,
    shared_stores, worker_slots, Served,
};

use crate::budget::{ByteReservations, SharedBudget};
use crate::config::{IoMode, ServerConfig};
use crate::error::Error;
use crate::http::HttpSettings;
use crate::metrics::{AdminHooks, AdminLimits, AdminServer, Health, Metrics};
use crate::sources::ConnectionLimiter;
use crate::worker::{Shared, Worker, WorkerLimits};
use cx_domain::store::DecisionLog;
use cx_engine::openrtb::BidIds;
use cx_engine::{Bundle, ModelInfo};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often a worker checks for shutdown, reload and timeouts.
pub const HOUSEKEEPING_INTERVAL: Duration = Duration::from_millis(20);

/// The listen backlog.
pub const LISTEN_BACKLOG: i32 = 1024;

/// Host time for engine ticks: unix ns.
pub fn unix_now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Why a worker's loop returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoopExit {
    /// Shutdown finished: every connection was answered and closed.
    Drained,
    /// Shutdown timed out with connections still open; they were closed.
    TimedOut,
}

/// A reload order: the bundle every worker swaps in (a model and its
/// fallback, with the catalog and decision settings of a repository
/// bundle).
struct Reload {
    bundle: Bundle,
    /// The experiments served with it (none: none live).
    experiments: Vec<cx_engine::experiments::ExperimentDef>,
}

/// Orders from the server handle to its workers.
#[derive(Default)]
pub struct Control {
    shutdown: AtomicBool,
    shutdown_timeout_ms: AtomicU64,
    reload_generation: AtomicU64,
    reload: Mutex<Option<Arc<Reload>>>,
    /// Worker loops not yet running; the last to start marks `health`
    /// ready (`/readyz`).
    loops_pending: AtomicUsize,
    health: Health,
}

impl Control {
    /// A worker's view: when to look next, and what it has applied. A
    /// loop asks for it once, as it starts running: the last worker's
    /// marks the server ready.
    pub fn watch(&self) -> Watch {
        let before = self
            .loops_pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        if before == Ok(1) {
            self.health.set_ready();
        }
        Watch {
            next_due: Instant::now(),
            reload_seen: self.reload_generation.load(Ordering::Acquire),
            deadline: None,
        }
    }

    fn shutdown_requested(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }

    fn latest_reload(&self) -> Option<Arc<Reload>> {
        self.reload.lock().ok().and_then(|r| r.clone())
    }
}

/// One worker's housekeeping state (see [`Control::watch`]).
pub struct Watch {
    next_due: Instant,
    reload_seen: u64,
    deadline: Option<Instant>,
}

impl Watch {
    /// Whether housekeeping is due at `now` (then schedules the next).
    pub fn due(&mut self, now: Instant) -> bool {
        if now < self.next_due {
            return false;
        }
        self.next_due = now + HOUSEKEEPING_INTERVAL;
        true
    }

    /// Publishes counts, applies a new reload order, starts draining on a
    /// shutdown order. Returns an exit when the shutdown deadline passed.
    pub fn housekeeping(&mut self, worker: &mut Worker, control: &Control) -> Option<LoopExit> {
        worker.publish_counts();
        worker.maintain_stores();
        let generation = control.reload_generation.load(Ordering::Acquire);
        if generation != self.reload_seen {
            self.reload_seen = generation;
            if let Some(order) = control.latest_reload() {
                match worker.reload(order.bundle.clone(), &order.experiments) {
                    Ok(info) => tracing::info!(model = %info.id, "model staged for the next tick"),
                    Err(e) => {
                        tracing::error!(error = %e, "model reload failed; serving the old model")
                    }
                }
            }
        }
        if control.shutdown_requested() && !worker.is_draining() {
            worker.shutdown();
            let ms = control.shutdown_timeout_ms.load(Ordering::Acquire);
            self.deadline = Some(Instant::now() + Duration::from_millis(ms));
        }
        match self.deadline {
            Some(deadline) if Instant::now() >= deadline => {
                tracing::warn!(
                    connections = worker.open_connections(),
                    "shutdown timed out; closing the remaining connections"
                );
                Some(LoopExit::TimedOut)
            }
            _ => None,
        }
    }
}

/// One worker's listening sockets: the binary protocol's, and the HTTP
/// bidder's when it runs.
#[derive(Debug)]
pub struct Listeners {
    /// The binary protocol.
    pub binary: TcpListener,
    /// The OpenRTB HTTP bidder.
    pub http: Option<TcpListener>,
}

/// A running server. See the [module docs](self).
pub struct Server {
    local_addr: SocketAddr,
    http_addr: Option<SocketAddr>,
    admin: Option<AdminServer>,
    io: IoMode,
    control: Arc<Control>,
    health: Health,
    metrics: Metrics,
    workers: Vec<JoinHandle<Result<LoopExit, Error>>>,
    model: ModelInfo,
    /// Dataset columns the model was trained on that a serving path never fills.
    skew_columns: Vec<String>,
    /// The repository bundle served at start: name and version.
    bundle: Option<(String, String)>,
    reloader: Arc<Reloader>,
    output: Arc<SharedBudget>,
    /// What happened to the state file at start.
    state: state::StateStart,
    /// The feature store at start.
    features: features::FeatureStart,
    /// Where the experiments' counts are kept (`state_dir`), written a
    /// last time once every worker has stopped.
    experiments_file: Option<std::path::PathBuf>,
}

impl Server {
    /// Loads the model and catalog, binds, and starts the workers and the
    /// admin endpoint. Fails (starting nothing) on any bad setting, an
    /// address in use, or `io = "uring"` without io_uring.
    pub fn start(config: ServerConfig) -> Result<Server, Error> {
        config.validate()?;
        let io = resolve_io(config.io)?;
        let workers = config.worker_count();
        let metrics = Metrics::new();
        // Arm ids and counts of an earlier run first, so that the
        // experiments resolved now keep theirs.
        let mut arms = cx_engine::systems::resources::ArmRegistry::default();
        experiments_state::restore(&config, &metrics, &mut arms)?;
        let served = Served::load(&config, &mut arms)?;
        let health = Health::new();
        let control = Arc::new(Control {
            loops_pending: AtomicUsize::new(workers),
            health: health.clone(),
            ..Control::default()
        });
        control
            .shutdown_timeout_ms
            .store(config.shutdown_timeout_ms, Ordering::Release);
        let slots = worker_slots(config.connections_max, workers);
        let limits = WorkerLimits {
            connections_max: slots,
            idle_timeout_ns: config.idle_timeout_ms.saturating_mul(1_000_000),
            slow_client_timeout_ns: config.slow_client_timeout_ms.saturating_mul(1_000_000),
            frame_timeout_ns: config.frame_timeout_ms.saturating_mul(1_000_000),
            deadline_default_ms: config.deadline_default_ms,
            deadline_margin_ms: config.deadline_margin_ms,
        };
        let http = Arc::new(HttpSettings {
            bid_path: config.http_bid_path.clone(),
        });
        // One decision log for all workers, since feedback for a decision
        // (a notice for a bid) reaches whichever worker the exchange's
        // connection landed on.
        let decision_log = config
            .engine
            .feedback
            .log_config()
            .and_then(|c| DecisionLog::new(c).map_err(cx_engine::Error::from))
            .map(Arc::new)
            .map_err(|e| Error::Config(format!("[engine.feedback]: {e}")))?;
        // Validated: at least 1, at most CONNECTIONS_LIMIT (2^20).
        let per_source = config
            .connections_per_source_max
            .min(config.connections_max);
        let per_source = u32::try_from(per_source).unwrap_or(u32::MAX);
        let connections = Arc::new(ConnectionLimiter::new(per_source, config.connections_max));
        let output = Arc::new(SharedBudget::new(config.output_budget_bytes, workers));
        let input = Arc::new(ByteReservations::new(config.input_budget_bytes));
        let shared = shared_stores(&config, &served, workers)?;
        // One feature store for all workers (restored from state_dir
        // before any engine holds it).
        let (feature_store, feature_start) = features::build(&config)?;
        // One decision journal for all workers, if asked for.
        let journal = match &config.journal_dir {
            Some(dir) => Some(
                cx_engine::journal::Journal::start(cx_engine::journal::JournalConfig::in_dir(dir))
                    .map_err(|e| Error::Config(format!("journal_dir {}: {e}", dir.display())))?,
            ),
            None => None,
        };
        let mut engines = Vec::with_capacity(workers);
        for _ in 0..workers {
            let store = feature_store.clone();
            let engine = build_engine(&config, &served, shared.clone(), store, journal.as_ref())?;
            engines.push(engine);
        }
        let model = engines
            .first()
            .map(|e| e.model().clone())
            .ok_or_else(|| Error::Config("workers: none to start".into()))?;
        let (name, version) = served.label(&model);
        metrics.set_model_info(&name, &version, &model.id);
        metrics.set_experiments(served.live.clone());
        let reloader = Arc::new(
            Reloader::new(
                config.clone(),
                control.clone(),
                metrics.clone(),
                shared.clone(),
                served.bundle.clone(),
                arms,
            )
            .with_features(feature_store.clone()),
        );
        let mut skew_columns = Vec::new();
        if let Some(engine) = engines.first() {
            report_catalog_fit(engine.catalog_fit(), &model, &metrics);
            skew_columns = report_train_serve_skew(engine.train_serve_skew(), &model);
        }
        let listeners = bind_listeners(config.listen, workers)?;
        let local_addr = listeners
            .first()
            .and_then(|l| l.local_addr().ok())
            .unwrap_or(config.listen);
        let mut http_listeners: Vec<Option<TcpListener>> = match config.http_listen {
            Some(addr) => bind_listeners(addr, workers)?
                .into_iter()
                .map(Some)
                .collect(),
            None => (0..workers).map(|_| None).collect(),
        };
        let http_addr = http_listeners
            .first()
            .and_then(Option::as_ref)
            .and_then(|l| l.local_addr().ok());
        let admin = match config.admin_listen {
            Some(addr) => Some(
                AdminServer::spawn_with_hooks(
                    addr,
                    metrics.clone(),
                    health.clone(),
                    AdminLimits::default(),
                    AdminHooks {
                        reload: Some(reloader.admin_hook()),
                        features_health: feature_store.clone().map(|store| {
                            Arc::new(move || features::health_json(&store).to_string())
                                as crate::metrics::FeaturesHook
                        }),
                    },
                )
                .map_err(Error::Admin)?,
            ),
            None => None,
        };
        let notice_base = match (&config.engine.openrtb.notice_base_url, http_addr) {
            (base, Some(addr)) if base.is_empty() => Some(format!("http://{addr}")),
            _ => None,
        };
        let mut handles = Vec::with_capacity(workers);
        let mut state_start = state::StateStart::MemoryOnly;
        for (index, (binary, mut engine)) in listeners.into_iter().zip(engines).enumerate() {
            // Ids unique over nodes, workers and starts (BidIds); one
            // decision log for all.
            engine.set_bid_ids(BidIds::starting_now(config.node_id, index as u32));
            engine.set_decision_log(decision_log.clone());
            if let Some(base) = &notice_base {
                engine
                    .set_notice_base_url(base)
                    .map_err(|source| Error::Engine {
                        what: format!("notice URLs under {base}"),
                        source,
                    })?;
            }
            let listener = Listeners {
                binary,
                http: http_listeners.get_mut(index).and_then(Option::take),
            };
            let shared = Shared {
                index,
                connections: connections.clone(),
                output: output.clone(),
                input: input.clone(),
                http: http.clone(),
            };
            // The first worker restores and keeps the state file: its
            // engine holds the stores every worker shares (or the only
            // engine's own), and the shared decision log.
            let saver = if index == 0 {
                let (start, saver) = state::restore(&config, &mut engine, unix_now_ns())?;
                state_start = start;
                let saver = saver.map(|saver| match experiments_state::path(&config) {
                    Some(path) => saver.with_experiments(metrics.clone(), path),
                    None => saver,
                });
                match (saver, &feature_store, features::snapshot_path(&config)) {
                    (Some(saver), Some(store), Some(path)) => {
                        Some(saver.with_features(store.clone(), path))
                    }
                    (saver, _, _) => saver,
                }
            } else {
                None
            };
            let mut worker = Worker::new(engine, metrics.clone(), limits, shared);
            if let (0, Some(store)) = (index, &feature_store) {
                worker.watch_feature_health(store.clone());
            }
            if let Some(saver) = saver {
                worker.set_state_saver(saver);
            }
            worker.set_echo(config.echo);
            worker.set_busy_poll(config.busy_poll);
            let control = control.clone();
            let ring_entries = config.uring_entries;
            let handle = std::thread::Builder::new()
                .name(format!("cx-worker-{index}"))
                .spawn(move || run_worker(io, listener, worker, &control, slots, ring_entries))
                .map_err(|e| Error::Worker {
                    worker: index,
                    what: format!("cannot start its thread: {e}"),
                })?;
            handles.push(handle);
        }
        tracing::info!(
            addr = %local_addr,
            admin = ?admin.as_ref().map(AdminServer::local_addr),
            http = ?http_addr,
            io = io.label(),
            workers,
            echo = config.echo,
            model = %model.id,
            bundle = ?served.bundle,
            train_serve_skew = ?skew_columns,
            "serving"
        );
        Ok(Server {
            local_addr,
            http_addr,
            admin,
            io,
            control,
            health,
            metrics,
            workers: handles,
            model,
            skew_columns,
            bundle: served.bundle,
            reloader,
            output,
            state: state_start,
            features: feature_start,
            experiments_file: experiments_state::path(&config),
        })
    }

    /// What happened to the state file at start.
    pub fn state_start(&self) -> &state::StateStart {
        &self.state
    }

    /// The feature store at start: off, or its store and what happened
    /// to its snapshot.
    pub fn feature_start(&self) -> &features::FeatureStart {
        &self.features
    }

    /// Answers written but not yet sent to their clients, over all
    /// workers, in bytes, as the workers last published it (once per loop
    /// turn).
    pub fn output_buffered_bytes(&self) -> usize {
        self.output.total()
    }

    /// The protocol address (the real port when the config asked for 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The HTTP bidder's address (the real port when the config asked for
    /// 0), if it runs.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// The admin endpoint's address, if it runs.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(AdminServer::local_addr)
    }

    /// The event loop the workers run (`uring` or `epoll`, never `auto`).
    pub fn io(&self) -> IoMode {
        self.io
    }

    /// The model served at start.
    pub fn model(&self) -> &ModelInfo {
        &self.model
    }

    /// Dataset columns the model served at start was trained on that a
    /// serving path never fills (`docs/DATASETS.md`, "Train/serve skew");
    /// empty when there are none or the model records no training inputs.
    pub fn train_serve_skew(&self) -> &[String] {
        &self.skew_columns
    }

    /// The repository bundle served at start, as (name, version), when
    /// serving from a repository.
    pub fn bundle(&self) -> Option<&(String, String)> {
        self.bundle.as_ref()
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Starts a graceful shutdown (see the [module docs](self)); returns at
    /// once. `/healthz` answers `draining` from now on.
    pub fn shutdown(&self) {
        self.health.set_draining();
        self.control.shutdown.store(true, Ordering::Release);
    }

    /// Re-reads what the config serves (the model file and fallback, or
    /// the repository bundle's active version), checks it against
    /// everything a worker will check (by building a probe engine), and
    /// orders every worker to serve it from its next tick. A reload that
    /// fails changes nothing. Either way it is counted once in
    /// `cx_model_reloads_total{result}`. See [`Reloader`].
    pub fn reload(&self) -> Result<ModelInfo, Error> {
        self.reloader.reload().map(|done| done.model)
    }

    /// Waits for every worker to finish (after [`Self::shutdown`]), writes
    /// the feature store's snapshot a last time (with `state_dir`), then
    /// stops the admin endpoint. Returns the first worker error.
    pub fn wait(mut self) -> Result<(), Error> {
        let mut result = Ok(());
        for (index, handle) in self.workers.drain(..).enumerate() {
            let outcome = handle.join().map_err(|_| Error::Worker {
                worker: index,
                what: "panicked".into(),
            });
            match outcome.and_then(|r| r) {
                Ok(exit) => tracing::info!(worker = index, ?exit, "worker stopped"),
                Err(e) => {
                    tracing::error!(worker = index, error = %e, "worker failed");
                    if result.is_ok() {
                        result = Err(e);
                    }
                }
            }
        }
        // Every worker has stopped: nothing writes the feature store any
        // more, so this snapshot holds every value taken; and every worker
        // published its last experiment counts.
        self.features.save_final();
        if let Some(path) = &self.experiments_file {
            experiments_state::save(&self.metrics, path, unix_now_ns());
        }
        if let Some(admin) = self.admin.take() {
            admin.stop();
        }
        result
    }
}

// Only the io_uring loop, on Linux, has a ring to size.
#[cfg_attr(not(target_os = "linux"), allow(unused_variables))]
fn run_worker(
    io: IoMode,
    listener: Listeners,
    worker: Worker,
    control: &Control,
    connections_max: usize,
    ring_entries: u32,
) -> Result<LoopExit, Error> {
    match io {
        #[cfg(target_os = "linux")]
        IoMode::Uring => {
            crate::uring::run(listener, worker, control, connections_max, ring_entries)
        }
        _ => crate::epoll::run(listener, worker, control, connections_max),
    }
}
