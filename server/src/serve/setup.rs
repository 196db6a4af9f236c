//! What `Server::start` and a reload check build before any worker runs:
//! the event loop chosen, what is served ([`Served`]: the model bytes, or a
//! repository bundle), the engines and their shared stores, the listening
//! sockets, and the reports of how the model fits the catalog and the
//! serving paths (train/serve skew). Free functions over the config; nothing here runs per request.

use super::{Error, IoMode, Metrics, ServerConfig, LISTEN_BACKLOG};
use crate::metrics::LiveExperiment;
use crate::repository::{experiments, Repository};
use cx_domain::catalog::Catalog;
use cx_domain::store::{
    PosteriorConfig, PosteriorHub, Posteriors, SharedStores, VariantHub, VariantStats,
};
use cx_engine::experiments::ExperimentDef;
use cx_engine::systems::resources::ArmRegistry;
use cx_engine::systems::DecideConfig;
use cx_engine::{Bundle, Engine, FallbackSource, ModelInfo, ModelSource};
use socket2::{Domain, Protocol, Socket, Type};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

#[cfg(target_os = "linux")]
pub(super) fn probe_uring() -> Result<(), Error> {
    crate::uring::probe()
}

#[cfg(not(target_os = "linux"))]
pub(super) fn probe_uring() -> Result<(), Error> {
    Err(Error::EventLoop {
        io: "uring",
        what: "io_uring exists only on Linux".into(),
        source: std::io::ErrorKind::Unsupported.into(),
    })
}

/// `auto` becomes `uring` when the kernel offers what the loop needs, else
/// `epoll`; `uring` fails without it.
pub(super) fn resolve_io(io: IoMode) -> Result<IoMode, Error> {
    match io {
        IoMode::Epoll => Ok(IoMode::Epoll),
        IoMode::Uring => probe_uring().map(|()| IoMode::Uring),
        IoMode::Auto => match probe_uring() {
            Ok(()) => Ok(IoMode::Uring),
            Err(e) => {
                tracing::warn!(reason = %crate::error::render_chain(&e), "io_uring unavailable; using epoll");
                Ok(IoMode::Epoll)
            }
        },
    }
}

pub(super) fn fallback_source(config: &ServerConfig) -> FallbackSource {
    match (&config.fallback, &config.model) {
        (Some(path), _) => FallbackSource::Path(path.clone()),
        (None, None) => FallbackSource::Bytes(Arc::from(cx_engine::DEFAULT_BASELINE_BYTES)),
        (None, Some(_)) => FallbackSource::None,
    }
}

/// Warns, loudly, when the model and the catalog overlap only partly, and
/// shows how many catalog offers have no model column
/// (`cx_catalog_unscored_offers`). `engine.catalog_overlap = "refuse"`
/// refuses such a model instead, before this is reached.
pub(super) fn report_catalog_fit(
    fit: &cx_engine::CatalogFit,
    model: &ModelInfo,
    metrics: &Metrics,
) {
    metrics.set_catalog_unscored(fit.unscored_offers.len());
    if !fit.is_full() {
        tracing::warn!(
            model = %model.name,
            unscored_offers = ?fit.unscored_offers,
            unused_columns = ?fit.unused_columns,
            "the model and the catalog overlap only partly: these catalog offers have no model \
             column and these model columns no catalog offer (engine.catalog_overlap = \"refuse\" \
             refuses such a model)"
        );
    }
}

/// Warns when the model was trained on context fields a serving path never
/// fills (`cx.training_inputs`, `docs/DATASETS.md`, "Train/serve skew"),
/// naming the dataset columns, the fields and the paths. Returns the
/// columns (empty when clean). `engine.train_serve_skew = "refuse"` refuses
/// such a model instead, before this is reached.
pub(super) fn report_train_serve_skew(
    skew: &cx_engine::TrainServeSkew,
    model: &ModelInfo,
) -> Vec<String> {
    if skew.is_clean() {
        return Vec::new();
    }
    let columns = skew.columns();
    for field in &skew.fields {
        tracing::warn!(
            model = %model.name,
            field = field.field,
            columns = ?field.columns,
            training_rows = field.rows,
            paths = ?field.paths,
            "train/serve skew: the model was trained on these columns, which these serving \
             paths never fill (engine.train_serve_skew = \"refuse\" refuses such a model)"
        );
    }
    columns
}

/// Connection slots per worker: twice its even share of `connections_max`
/// (at most all of it). The kernel spreads accepted connections over the
/// workers' listeners by a hash, so shares are uneven; the slack lets the
/// server reach `connections_max`, which the shared [`ConnectionLimiter`]
/// enforces over all workers, before any one worker is full.
pub(super) fn worker_slots(connections_max: usize, workers: usize) -> usize {
    connections_max
        .div_ceil(workers)
        .saturating_mul(2)
        .min(connections_max)
}

pub(super) fn read_model(path: Option<&std::path::Path>) -> Result<Arc<[u8]>, Error> {
    let Some(path) = path else {
        return Ok(Arc::from(cx_engine::DEFAULT_MODEL_BYTES));
    };
    let read = |source| Error::ModelRead {
        path: path.display().to_string(),
        source,
    };
    let limit = cx_model::limits::FILE_BYTES_MAX;
    let len = std::fs::metadata(path).map_err(read)?.len();
    if len > limit {
        return Err(Error::Config(format!(
            "model {} is {len} bytes, more than the limit of {limit}",
            path.display()
        )));
    }
    Ok(std::fs::read(path).map_err(read)?.into())
}

/// With several workers, the frequency counts and budgets they share
/// (`docs/SERVER.md`, "Business rules across workers"); one worker keeps
/// its own.
pub(super) fn shared_stores(
    config: &ServerConfig,
    served: &Served,
    workers: usize,
) -> Result<Option<SharedStores>, Error> {
    if workers < 2 {
        return Ok(None);
    }
    let engine_error = |source| Error::Engine {
        what: "cannot set up the stores the workers share".into(),
        source,
    };
    let catalog = match &served.catalog {
        Some(catalog) => catalog.clone(),
        None => cx_engine::load_catalog(config.catalog.as_deref()).map_err(engine_error)?,
    };
    let stores = SharedStores::new(
        &catalog,
        config.engine.frequency_config(),
        config.engine.lease_config(),
    )
    .map_err(|e| engine_error(e.into()))?;
    // One click posterior and one count per creative variant for all
    // workers (and one win-rate store, in `SharedStores`): feedback taken
    // by any worker teaches every engine.
    let decide = served.decide.as_ref().unwrap_or(&config.engine.decide);
    let posteriors = Posteriors::new(
        catalog.ids(),
        PosteriorConfig {
            half_life_s: decide.posterior_half_life_s,
        },
    )
    .map_err(|e| engine_error(e.into()))?;
    let variants = VariantStats::new(&catalog, decide.posterior_half_life_s);
    Ok(Some(
        stores
            .share_posteriors(Arc::new(PosteriorHub::new(posteriors)))
            .share_variants(Arc::new(VariantHub::new(variants))),
    ))
}

/// The experiments as the metrics show them: keys, weights, and per
/// variation its arm id, key and version.
fn live_experiments(
    definitions: &[experiments::Definition],
    resolved: &[ExperimentDef],
) -> Vec<LiveExperiment> {
    definitions
        .iter()
        .zip(resolved)
        .map(|(d, r)| {
            let e = &d.experiment;
            LiveExperiment {
                key: e.key().to_owned(),
                weights: e.split(),
                arms: r
                    .arms
                    .iter()
                    .enumerate()
                    .map(|(v, a)| (a.id, e.variation_key(v), d.versions[v].clone()))
                    .collect(),
            }
        })
        .collect()
}

/// What the engines serve: the config's model, fallback and catalog
/// files, or the active version of a repository bundle.
#[derive(Clone)]
pub(super) struct Served {
    /// The model file's bytes.
    pub model: Arc<[u8]>,
    /// The fallback scorer.
    pub fallback: FallbackSource,
    /// The bundle's catalog; `None`: the config's (`catalog`, or bundled).
    pub catalog: Option<Catalog>,
    /// The bundle's decision settings; `None`: the config's.
    pub decide: Option<DecideConfig>,
    /// The bundle's name and version, when served from a repository.
    pub bundle: Option<(String, String)>,
    /// The experiments to serve (`experiments`), resolved.
    pub experiments: Vec<ExperimentDef>,
    /// The same, as the metrics show them.
    pub live: Vec<LiveExperiment>,
}

impl Served {
    /// What the config names: its files, or its repository's bundle and
    /// experiments (read afresh: a reload calls this too; arm ids from
    /// `arms`).
    pub fn load(config: &ServerConfig, arms: &mut ArmRegistry) -> Result<Self, Error> {
        let Some(root) = &config.repository else {
            return Ok(Self {
                model: read_model(config.model.as_deref())?,
                fallback: fallback_source(config),
                catalog: None,
                decide: None,
                bundle: None,
                experiments: Vec::new(),
                live: Vec::new(),
            });
        };
        let repository = Repository::open(root)?;
        let name = match &config.bundle {
            Some(name) => name.clone(),
            None => repository.only_bundle()?,
        };
        let loaded = repository.load_active(&name, &config.engine.decide)?;
        let (experiments, live) = match &config.experiments {
            None => (Vec::new(), Vec::new()),
            Some(path) => {
                let definitions = experiments::read_definitions(path)?;
                let base = &config.engine.decide;
                let resolved =
                    experiments::resolve(&repository, &loaded, base, &definitions, arms)?;
                let live = live_experiments(&definitions, &resolved);
                (resolved, live)
            }
        };
        Ok(Self {
            model: loaded.model,
            fallback: loaded
                .fallback
                .map_or(FallbackSource::None, FallbackSource::Bytes),
            catalog: Some(loaded.catalog),
            decide: loaded.decide,
            bundle: Some((loaded.name, loaded.version)),
            experiments,
            live,
        })
    }

    /// The name and version `cx_model_info` shows: the bundle's, else
    /// the model's own.
    pub fn label(&self, model: &ModelInfo) -> (String, String) {
        self.bundle
            .clone()
            .unwrap_or_else(|| (model.name.clone(), model.version.clone()))
    }

    /// The bundle the engines swap in at a reload.
    pub fn to_bundle(&self) -> Bundle {
        Bundle {
            model: ModelSource::Bytes(self.model.clone()),
            fallback: self.fallback.clone(),
            catalog: self.catalog.clone(),
            decide: self.decide.clone(),
        }
    }
}

pub(super) fn build_engine(
    config: &ServerConfig,
    served: &Served,
    shared: Option<SharedStores>,
    features: Option<cx_engine::featurestore::FeatureBackend>,
    journal: Option<&cx_engine::journal::Journal>,
) -> Result<Engine, Error> {
    let mut engine_config = config.engine.clone();
    if let Some(decide) = &served.decide {
        engine_config.decide = decide.clone();
    }
    let mut builder = Engine::builder()
        .model(ModelSource::Bytes(served.model.clone()))
        .fallback(served.fallback.clone())
        .config(engine_config);
    if let Some(stores) = shared {
        builder = builder.shared_stores(stores);
    }
    if let Some(store) = features {
        builder = builder.feature_store(store);
    }
    if let Some(journal) = journal {
        builder = builder.journal(journal.clone());
    }
    let experiments = &served.experiments;
    match (&served.catalog, &config.catalog) {
        (Some(catalog), _) => builder = builder.catalog(catalog.clone()),
        (None, Some(path)) => builder = builder.catalog_path(path),
        (None, None) => {}
    }
    let model = match (&served.bundle, &config.model) {
        (Some((name, version)), _) => format!("{name}/{version}/{}", crate::repository::MODEL_FILE),
        (None, Some(path)) => path.display().to_string(),
        (None, None) => cx_engine::DEFAULT_MODEL_NAME.to_string(),
    };
    let mut engine = builder.build().map_err(|source| Error::Engine {
        what: format!("cannot set up the engine with model {model}"),
        source,
    })?;
    if !experiments.is_empty() {
        engine
            .set_experiments(experiments)
            .map_err(|source| Error::Engine {
                what: format!("cannot serve the experiments beside model {model}"),
                source,
            })?;
    }
    Ok(engine)
}

/// One listening socket per worker on the same address (`SO_REUSEPORT`
/// when there are several); the first fixes the port when `addr` asks for 0.
pub(super) fn bind_listeners(addr: SocketAddr, workers: usize) -> Result<Vec<TcpListener>, Error> {
    let mut listeners = Vec::with_capacity(workers);
    let mut addr = addr;
    for _ in 0..workers {
        let listener = bind_one(addr, workers > 1)?;
        if let Ok(bound) = listener.local_addr() {
            addr = bound;
        }
        listeners.push(listener);
    }
    Ok(listeners)
}

pub(super) fn bind_one(addr: SocketAddr, reuse_port: bool) -> Result<TcpListener, Error> {
    let fail = |op, source| Error::Socket {
        op,
        addr: addr.to_string(),
        source,
    };
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .map_err(|e| fail("create a socket for", e))?;
    socket
        .set_reuse_address(true)
        .map_err(|e| fail("set SO_REUSEADDR on", e))?;
    if reuse_port {
        socket
            .set_reuse_port(true)
            .map_err(|e| fail("set SO_REUSEPORT on", e))?;
    }
    socket.bind(&addr.into()).map_err(|e| fail("bind", e))?;
    socket
        .listen(LISTEN_BACKLOG)
        .map_err(|e| fail("listen on", e))?;
    Ok(socket.into())
}
