//! Reloads: re-reading what the server serves (the model file and its
//! fallback, or the active version of a repository bundle: model, catalog,
//! fallback and decision settings together), checking it as every worker
//! will, and ordering every worker to swap it in at its next tick.
//!
//! [`Reloader`] is shared by the signal loop (SIGHUP, through
//! [`super::Server::reload`]) and the admin endpoint (`POST
//! /admin/reload`); it runs one reload at a time. A reload that fails at
//! any step changes nothing: the workers keep serving what they serve, the
//! failure is counted under its reason in `cx_model_reloads_total` and
//! logged.

use super::setup::{build_engine, report_catalog_fit, report_train_serve_skew, Served};
use super::{Control, Reload};
use crate::config::ServerConfig;
use crate::error::{render_chain, Error};
use crate::metrics::{Metrics, ReloadHook, ReloadResult};
use cx_domain::store::SharedStores;
use cx_engine::systems::resources::ArmRegistry;
use cx_engine::{Error as EngineError, ModelInfo};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, TryLockError};

/// What a reload ordered.
#[derive(Clone, Debug)]
pub struct ReloadDone {
    /// The model the workers swap in.
    pub model: ModelInfo,
    /// The repository bundle, as (name, version), when serving from one.
    pub bundle: Option<(String, String)>,
}

/// Checks and orders reloads; see the [module docs](self).
pub struct Reloader {
    config: ServerConfig,
    control: Arc<Control>,
    metrics: Metrics,
    /// The stores the workers share: a new catalog's offers are registered
    /// with their budget bank before any worker swaps.
    shared: Option<SharedStores>,
    /// The bundle serving (name, version); one reload at a time.
    serving: Mutex<Option<(String, String)>>,
    /// The feature store the workers share: the probe engine is built
    /// with it, so a bundle whose decision settings name features the
    /// store's definitions lack is refused before any worker swaps.
    features: Option<cx_engine::featurestore::FeatureBackend>,
    /// Experiment arm ids, kept for the process's life: an experiment a
    /// reload keeps keeps its ids (and its counts).
    arms: Mutex<ArmRegistry>,
}

/// A reload that cannot serve: how it is counted, and why.
struct Refused {
    result: ReloadResult,
    error: Box<Error>,
}

impl Reloader {
    /// A reloader for a server started with `config`, serving `bundle`.
    pub(super) fn new(
        config: ServerConfig,
        control: Arc<Control>,
        metrics: Metrics,
        shared: Option<SharedStores>,
        bundle: Option<(String, String)>,
        arms: ArmRegistry,
    ) -> Self {
        Self {
            config,
            control,
            metrics,
            shared,
            serving: Mutex::new(bundle),
            features: None,
            arms: Mutex::new(arms),
        }
    }

    /// The same, checking reloads against the workers' feature store.
    pub(super) fn with_features(
        mut self,
        features: Option<cx_engine::featurestore::FeatureBackend>,
    ) -> Self {
        self.features = features;
        self
    }

    /// Reloads, waiting for a reload in progress to finish first.
    pub fn reload(&self) -> Result<ReloadDone, Error> {
        let mut serving = self
            .serving
            .lock()
            .map_err(|_| Error::Config("reload: the reload lock is poisoned".into()))?;
        self.reload_locked(&mut serving)
    }

    /// The admin endpoint's hook: a reload, unless one is in progress
    /// (then it says so and does nothing); JSON either way.
    pub fn admin_hook(self: &Arc<Self>) -> ReloadHook {
        let reloader = Arc::clone(self);
        Arc::new(move || {
            let mut serving = match reloader.serving.try_lock() {
                Ok(serving) => serving,
                Err(TryLockError::WouldBlock) => {
                    return Err(answer("busy", None, "a reload is in progress"));
                }
                Err(TryLockError::Poisoned(_)) => {
                    return Err(answer("error", None, "the reload lock is poisoned"));
                }
            };
            let previous = serving.clone();
            match reloader.reload_locked(&mut serving) {
                Ok(done) => Ok(serde_json::json!({
                    "result": "ok",
                    "bundle": done.bundle.as_ref().map(|(n, v)| serde_json::json!({"name": n, "version": v})),
                    "model": {"name": done.model.name, "version": done.model.version, "id": done.model.id},
                    "previous_bundle": previous.map(|(n, v)| serde_json::json!({"name": n, "version": v})),
                })
                .to_string()),
                Err(e) => Err(answer("refused", serving.as_ref(), &render_chain(&e))),
            }
        })
    }

    fn reload_locked(&self, serving: &mut Option<(String, String)>) -> Result<ReloadDone, Error> {
        let outcome = self.check();
        let result = match &outcome {
            Ok(_) => ReloadResult::Ok,
            Err(refused) => refused.result,
        };
        self.metrics.model_reloaded(result);
        let (served, model) = match outcome {
            Ok(ok) => ok,
            Err(refused) => {
                tracing::error!(
                    result = result.label(),
                    error = %render_chain(&refused.error),
                    serving = ?serving,
                    "reload refused; the running bundle keeps serving"
                );
                return Err(*refused.error);
            }
        };
        let mut slot = self
            .control
            .reload
            .lock()
            .map_err(|_| Error::Config("reload: the control lock is poisoned".into()))?;
        let generation = self.control.reload_generation.load(Ordering::Acquire) + 1;
        *slot = Some(Arc::new(Reload {
            bundle: served.to_bundle(),
            experiments: served.experiments.clone(),
        }));
        self.control
            .reload_generation
            .store(generation, Ordering::Release);
        let (name, version) = served.label(&model);
        self.metrics.set_model_info(&name, &version, &model.id);
        self.metrics.set_experiments(served.live.clone());
        tracing::info!(
            model = %model.id,
            name = %name,
            version = %version,
            previous = ?serving,
            "reload ordered: every worker swaps it in at its next tick"
        );
        serving.clone_from(&served.bundle);
        Ok(ReloadDone {
            model,
            bundle: served.bundle,
        })
    }

    /// Reads and checks a reload: what to serve and its model's
    /// description, or why it cannot serve.
    fn check(&self) -> Result<(Served, ModelInfo), Refused> {
        let loaded = match self.arms.lock() {
            Ok(mut arms) => Served::load(&self.config, &mut arms),
            Err(_) => Err(Error::Config(
                "reload: the arm registry lock is poisoned".into(),
            )),
        };
        let served = loaded.map_err(|error| {
            let result = match &error {
                // Only a repository bundle's catalog gets here as an
                // engine error: it did not parse or validate.
                Error::Engine { .. } => ReloadResult::InvalidCatalog,
                Error::ModelRead { .. }
                | Error::Config(_)
                | Error::Repository(_)
                | Error::File { .. } => ReloadResult::ReadError,
                _ => ReloadResult::InvalidModel,
            };
            Refused {
                result,
                error: Box::new(error),
            }
        })?;
        let engine_error = |result, source| Refused {
            result,
            error: Box::new(Error::Engine {
                what: "model reload".into(),
                source,
            }),
        };
        cx_model::SnnModel::from_bytes(&served.model)
            .map_err(|e| engine_error(ReloadResult::InvalidModel, e.into()))?;
        let features = self.features.clone();
        let probe =
            build_engine(&self.config, &served, None, features, None).map_err(|e| match e {
                Error::Engine { source, .. } => {
                    let result = match &source {
                        EngineError::Load { .. } => ReloadResult::ReadError,
                        // The model itself parsed above, so a model error here is
                        // the fallback's.
                        EngineError::Model(_) => ReloadResult::InvalidFallback,
                        _ => ReloadResult::Incompatible,
                    };
                    engine_error(result, source)
                }
                error => Refused {
                    result: ReloadResult::Incompatible,
                    error: Box::new(error),
                },
            })?;
        if let (Some(stores), Some(catalog)) = (&self.shared, &served.catalog) {
            // Every worker will register this catalog with the bank they
            // share; a bank without room refuses it here, before any swap.
            stores
                .bank()
                .register(catalog.ids(), catalog.daily_budgets())
                .map_err(|e| engine_error(ReloadResult::Incompatible, e.into()))?;
        }
        report_catalog_fit(probe.catalog_fit(), probe.model(), &self.metrics);
        report_train_serve_skew(probe.train_serve_skew(), probe.model());
        let model = probe.model().clone();
        Ok((served, model))
    }
}

/// A refusal's JSON body.
fn answer(result: &str, serving: Option<&(String, String)>, error: &str) -> String {
    serde_json::json!({
        "result": result,
        "error": error,
        "serving": serving.map(|(n, v)| serde_json::json!({"name": n, "version": v})),
    })
    .to_string()
}
