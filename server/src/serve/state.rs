//! The state file at start: restored into the first worker's engine
//! (whose stores, when shared, are every worker's) before any worker
//! decides, refused whole when it cannot be read, or moved aside when the
//! operator asked to start fresh.

use crate::config::ServerConfig;
use crate::error::Error;
use crate::worker::StateSaver;
use cx_engine::Engine;
use std::path::PathBuf;

/// Largest state file read at start, bytes.
pub const STATE_BYTES_MAX: u64 = 16 << 30;
/// The state file's name in `state_dir`.
pub const STATE_FILE: &str = "state.bin";

/// What happened to state at start, for the start line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateStart {
    /// No `state_dir`: state lives in memory only.
    MemoryOnly,
    /// No state file yet: starting empty, saving from now on.
    Empty,
    /// Restored from the state file.
    Restored {
        /// Decisions, offers and frequency entries restored.
        decisions: u64,
        /// Offers whose spend came back.
        offers: u64,
        /// Frequency entries.
        frequency_entries: u64,
    },
    /// The state file was refused and moved aside (`fresh_state`).
    Fresh {
        /// Why it was refused.
        reason: String,
    },
}

impl StateStart {
    /// The start line's `state` value.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Self::MemoryOnly => serde_json::json!({"mode": "memory_only"}),
            Self::Empty => serde_json::json!({"mode": "empty"}),
            Self::Restored {
                decisions,
                offers,
                frequency_entries,
            } => serde_json::json!({
                "mode": "restored",
                "decisions": decisions,
                "offers": offers,
                "frequency_entries": frequency_entries,
            }),
            Self::Fresh { reason } => serde_json::json!({"mode": "fresh", "refused": reason}),
        }
    }
}

/// Restores `config.state_dir`'s state file into `engine` at `now_ns`,
/// and returns the saver that keeps it from now on. A refused file stops
/// the start, unless `fresh_state` is set.
pub fn restore(
    config: &ServerConfig,
    engine: &mut Engine,
    now_ns: u64,
) -> Result<(StateStart, Option<StateSaver>), Error> {
    let Some(dir) = &config.state_dir else {
        tracing::warn!("no --state-dir: budgets, caps and the decision log live in memory only");
        return Ok((StateStart::MemoryOnly, None));
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Config(format!("state_dir {}: {e}", dir.display())))?;
    let path: PathBuf = dir.join(STATE_FILE);
    let interval_ns = config.state_interval_s.saturating_mul(1_000_000_000);
    let saver = StateSaver::new(path.clone(), interval_ns, now_ns);
    if !path.exists() {
        return Ok((StateStart::Empty, Some(saver)));
    }
    match engine.restore_state_file(&path, STATE_BYTES_MAX, now_ns) {
        Ok(info) => {
            tracing::info!(
                path = %path.display(),
                decisions = info.decisions,
                offers = info.offers,
                frequency_entries = info.frequency_entries,
                dropped = info.dropped,
                "state restored"
            );
            let start = StateStart::Restored {
                decisions: info.decisions,
                offers: info.offers,
                frequency_entries: info.frequency_entries,
            };
            Ok((start, Some(saver)))
        }
        Err(e) if config.fresh_state => {
            let aside = dir.join(format!("{STATE_FILE}.refused"));
            std::fs::rename(&path, &aside).map_err(|io| {
                Error::Config(format!("cannot move {} aside: {io}", path.display()))
            })?;
            tracing::warn!(error = %e, aside = %aside.display(), "state refused; starting fresh");
            Ok((
                StateStart::Fresh {
                    reason: e.to_string(),
                },
                Some(saver),
            ))
        }
        Err(e) => Err(Error::Config(format!(
            "the state file {} was refused ({e}); nothing was restored. Start with \
             --fresh-state to move it aside and start with empty state",
            path.display()
        ))),
    }
}
