//! The state file a server keeps (`--state-dir`): one worker writes its
//! engine's state (its own stores, or those every worker shares, and the
//! shared decision log) and the feature store's snapshot (`features.bin`,
//! [`crate::serve::features`]) every interval; when its loop ends, the
//! state file once more (the server writes the feature snapshot a last
//! time once every worker has stopped).
//! A failed write is logged and counted; the previous file stays whole
//! (the write is atomic), and the next interval tries again.

use cx_engine::featurestore::FeatureBackend;
use cx_engine::Engine;
use std::path::PathBuf;

/// Writes the state file every `interval_ns` of wall-clock time.
#[derive(Debug)]
pub struct StateSaver {
    path: PathBuf,
    interval_ns: u64,
    last_ns: u64,
    /// Writes that failed.
    pub failures: u64,
    /// Writes that succeeded.
    pub saves: u64,
    /// The feature store and its snapshot file, written with the state.
    features: Option<(FeatureBackend, PathBuf)>,
    /// The metrics' experiment counts and their file, written with the
    /// state.
    experiments: Option<(crate::metrics::Metrics, PathBuf)>,
}

impl StateSaver {
    /// A saver writing `path` every `interval_ns`, counting from `now_ns`.
    pub fn new(path: PathBuf, interval_ns: u64, now_ns: u64) -> Self {
        Self {
            path,
            interval_ns,
            last_ns: now_ns,
            failures: 0,
            saves: 0,
            features: None,
            experiments: None,
        }
    }

    /// Also writes the experiments' counts in `metrics` to `path` at every
    /// save (`crate::serve::experiments_state`).
    pub fn with_experiments(mut self, metrics: crate::metrics::Metrics, path: PathBuf) -> Self {
        self.experiments = Some((metrics, path));
        self
    }

    /// Also writes `backend`'s snapshot to `path` at every save.
    pub fn with_features(mut self, backend: FeatureBackend, path: PathBuf) -> Self {
        self.features = Some((backend, path));
        self
    }

    /// Writes the state file if the interval has passed since the last.
    pub fn save_if_due(&mut self, engine: &Engine, now_ns: u64) {
        if now_ns.saturating_sub(self.last_ns) >= self.interval_ns {
            self.save(engine, now_ns);
        }
    }

    /// Writes the state file (and the feature snapshot) now.
    pub fn save(&mut self, engine: &Engine, now_ns: u64) {
        self.write(engine, now_ns, true);
    }

    /// The worker's last write, when its loop ends: the state file only.
    /// The feature store is shared by every worker, so the server writes
    /// its snapshot once all of them have stopped (`Server::wait`).
    pub fn save_last(&mut self, engine: &Engine, now_ns: u64) {
        self.write(engine, now_ns, false);
    }

    fn write(&mut self, engine: &Engine, now_ns: u64, features: bool) {
        self.last_ns = now_ns;
        let started = std::time::Instant::now();
        match engine.save_state(&self.path, now_ns) {
            Ok(info) => {
                self.saves += 1;
                tracing::debug!(
                    path = %self.path.display(),
                    bytes = info.bytes,
                    decisions = info.decisions,
                    frequency_entries = info.frequency_entries,
                    ms = started.elapsed().as_millis() as u64,
                    "state saved"
                );
            }
            Err(e) => {
                self.failures += 1;
                tracing::error!(path = %self.path.display(), error = %e, "state not saved");
            }
        }
        if let Some((metrics, path)) = &self.experiments {
            if !crate::serve::experiments_state::save(metrics, path, now_ns) {
                self.failures += 1;
            }
        }
        if let Some((backend, path)) = self.features.as_ref().filter(|_| features) {
            if !crate::serve::features::save(backend, path) {
                self.failures += 1;
            }
        }
    }
}
