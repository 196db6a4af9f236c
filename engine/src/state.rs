//! State that survives restarts: an engine's budgets, frequency counts,
//! click posteriors, creative variants' counts, win rates and decision log
//! written to one state file (`cx_domain::store::snapshot`:
//! atomic, versioned, checksummed) and restored from it whole or not at
//! all.
//!
//! What is saved is what the engine holds: its own stores, or the stores
//! it shares with a server's other engines (then one engine saves and
//! restores for all of them). Budgets are saved by offer id as spent per
//! day; in a shared bank, what was leased to workers counts as spent, so a
//! restart never spends an allowance twice. A restored decision log keeps
//! its open bids' reservations, which their notices or the sweep settle as
//! before the restart.

use crate::engine::Engine;
use crate::error::{Error, Result};
use bevy_ecs::prelude::Mut;
use cx_domain::catalog::Catalog;
use cx_domain::store::snapshot::{read_state, write_state, Section, StateFile};
use cx_domain::store::state::{self, PosteriorRecord, SpendRecord};
use cx_domain::store::{
    BudgetBackend, BudgetLedger, DecisionLog, FrequencyBackend, FrequencyRecord, FrequencyStore,
    PosteriorBackend, VariantBackend, WinRateBackend, WinRates,
};
use cx_systems::resources::DecisionLogging;
use std::path::Path;
use std::sync::Arc;

/// What a save or a restore moved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateInfo {
    /// Bytes of the state file.
    pub bytes: u64,
    /// Offers whose spend was saved or restored.
    pub offers: u64,
    /// Frequency entries.
    pub frequency_entries: u64,
    /// Logged decisions.
    pub decisions: u64,
    /// Offers with posterior counts.
    pub posterior_arms: u64,
    /// Restored records dropped: offers not in the catalog, frequency
    /// entries that found no room.
    pub dropped: u64,
}

impl Engine {
    /// The engine's state as a state file's sections.
    pub fn state_sections(&self) -> (Vec<Section>, StateInfo) {
        let mut info = StateInfo::default();
        let mut budgets = Vec::new();
        let catalog = self.world.resource::<Catalog>();
        state::write_budgets(&mut budgets, |f| {
            match self.world.resource::<BudgetBackend>() {
                BudgetBackend::InProcess(ledger) => {
                    for (i, &offer_id) in catalog.ids().iter().enumerate() {
                        if let Some((day, micros)) = ledger.spend_record(i) {
                            info.offers += 1;
                            f(SpendRecord {
                                offer_id,
                                day,
                                micros,
                            });
                        }
                    }
                }
                BudgetBackend::Leased(leased) => {
                    leased.bank().for_each_spend(|offer_id, day, micros| {
                        info.offers += 1;
                        f(SpendRecord {
                            offer_id,
                            day,
                            micros,
                        });
                    })
                }
            }
        });
        let mut frequency = Vec::new();
        state::write_frequency(&mut frequency, |f| {
            let mut count = |r: FrequencyRecord| {
                info.frequency_entries += 1;
                f(r);
            };
            match self.world.resource::<FrequencyBackend>() {
                FrequencyBackend::InProcess(s) => s.for_each_entry(&mut count),
                FrequencyBackend::Shared(s) => s.for_each_entry(&mut count),
            }
        });
        let mut posteriors = Vec::new();
        state::write_posteriors(&mut posteriors, |f| {
            self.world.resource::<PosteriorBackend>().for_each_arm(
                |offer_id, impressions, clicks, expected_clicks, updated_ns| {
                    info.posterior_arms += 1;
                    f(PosteriorRecord {
                        offer_id,
                        impressions,
                        clicks,
                        expected_clicks,
                        updated_ns,
                    });
                },
            )
        });
        let mut decisions = Vec::new();
        self.decision_log().write_state(&mut decisions);
        info.decisions = u64::from_le_bytes(decisions[..8].try_into().unwrap_or_default());
        let sections = vec![
            Section {
                tag: state::BUDGETS,
                bytes: budgets,
            },
            Section {
                tag: state::FREQUENCY,
                bytes: frequency,
            },
            Section {
                tag: state::DECISIONS,
                bytes: decisions,
            },
            Section {
                tag: state::POSTERIORS,
                bytes: posteriors,
            },
            Section {
                tag: state::VARIANTS,
                bytes: {
                    let mut bytes = Vec::new();
                    self.world
                        .resource::<VariantBackend>()
                        .read_source(|v| v.write_state(&mut bytes));
                    bytes
                },
            },
            Section {
                tag: state::WIN_RATES,
                bytes: {
                    let mut bytes = Vec::new();
                    self.world
                        .resource::<WinRateBackend>()
                        .write_state(&mut bytes);
                    bytes
                },
            },
        ];
        (sections, info)
    }

    /// Writes the engine's state to `path` atomically, stamped
    /// `now_unix_ns`.
    pub fn save_state(&self, path: &Path, now_unix_ns: u64) -> Result<StateInfo> {
        let (sections, mut info) = self.state_sections();
        info.bytes = write_state(path, now_unix_ns, &sections)?;
        Ok(info)
    }

    /// Restores the state file at `path` (at most `bytes_max` bytes) at
    /// host time `now_ns`; see [`Self::restore_state`].
    pub fn restore_state_file(
        &mut self,
        path: &Path,
        bytes_max: u64,
        now_ns: u64,
    ) -> Result<StateInfo> {
        let file = read_state(path, bytes_max)?;
        let mut info = self.restore_state(&file, now_ns)?;
        info.bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        Ok(info)
    }

    /// Restores `file`: every section is read and checked first, and only
    /// then applied, so a refused file changes nothing. The engine's own
    /// stores are replaced by new ones filled from the file; stores it
    /// shares with other engines are filled in place (restore into one
    /// engine of a server, before any decides). A file without one of the
    /// sections is refused.
    pub fn restore_state(&mut self, file: &StateFile, now_ns: u64) -> Result<StateInfo> {
        let section = |tag: &[u8; 8]| {
            file.section(tag).ok_or_else(|| {
                Error::Config(format!(
                    "state file: no {} section",
                    String::from_utf8_lossy(tag)
                ))
            })
        };
        let spends = state::read_budgets(section(&state::BUDGETS)?)?;
        let entries = state::read_frequency(section(&state::FREQUENCY)?)?;
        let decisions = DecisionLog::read_state(section(&state::DECISIONS)?)?;
        // A log of the engine's own is replaced by a new one; one other
        // engines hold is refilled in place. Made before anything changes.
        let own_log = match Arc::strong_count(self.decision_log()) {
            1 => Some(Arc::new(DecisionLog::new(
                self.config().feedback.log_config()?,
            )?)),
            _ => None,
        };
        let arms = state::read_posteriors(section(&state::POSTERIORS)?)?;
        let mut variants = self
            .world
            .resource::<VariantBackend>()
            .read_source(|v| v.clone());
        let (_, variants_dropped) = variants.restore_state(section(&state::VARIANTS)?)?;
        let win_rates = WinRates::read_state(section(&state::WIN_RATES)?)?;
        let mut info = StateInfo {
            decisions: decisions.len() as u64,
            ..StateInfo::default()
        };
        // Everything is read: apply.
        self.restore_budgets(&spends, now_ns, &mut info)?;
        self.restore_frequency(&entries, &mut info)?;
        self.world
            .resource_mut::<VariantBackend>()
            .replace(|_| Ok(variants))?;
        self.world
            .resource_mut::<WinRateBackend>()
            .restore(&win_rates)?;
        info.dropped += variants_dropped;
        let (restored, dropped) = self
            .world
            .resource_mut::<PosteriorBackend>()
            .restore_arms(&arms);
        info.posterior_arms = restored;
        info.dropped += dropped;
        if let Some(log) = own_log {
            self.world.resource_mut::<DecisionLogging>().set_log(log);
        }
        info.dropped += self.decision_log().restore_records(&decisions, now_ns);
        Ok(info)
    }

    fn restore_budgets(
        &mut self,
        spends: &[SpendRecord],
        now_ns: u64,
        info: &mut StateInfo,
    ) -> Result<()> {
        self.world
            .resource_scope(|world, mut budget: Mut<BudgetBackend>| {
                let catalog = world.resource::<Catalog>();
                match &mut *budget {
                    BudgetBackend::InProcess(ledger) => {
                        let mut fresh = BudgetLedger::new(catalog.daily_budgets())?;
                        for s in spends {
                            match catalog.index_of(s.offer_id) {
                                Some(i) => {
                                    fresh.restore_spend(i, s.day, s.micros);
                                    info.offers += 1;
                                }
                                None => info.dropped += 1,
                            }
                        }
                        *ledger = fresh;
                    }
                    BudgetBackend::Leased(leased) => {
                        for s in spends {
                            let bank = leased.bank();
                            if bank.restore_spend(s.offer_id, s.day, s.micros, now_ns) {
                                info.offers += 1;
                            } else {
                                info.dropped += 1;
                            }
                        }
                    }
                }
                Ok::<_, cx_domain::Error>(())
            })
            .map_err(Into::into)
    }

    fn restore_frequency(
        &mut self,
        entries: &[FrequencyRecord],
        info: &mut StateInfo,
    ) -> Result<()> {
        let config = self.config().frequency_config();
        let mut frequency = self.world.resource_mut::<FrequencyBackend>();
        let mut put = |restored: bool| {
            if restored {
                info.frequency_entries += 1;
            } else {
                info.dropped += 1;
            }
        };
        match &mut *frequency {
            FrequencyBackend::InProcess(store) => {
                let mut fresh = FrequencyStore::new(config)?;
                for e in entries {
                    put(fresh.restore_entry(e));
                }
                *store = fresh;
            }
            FrequencyBackend::Shared(shared) => {
                for e in entries {
                    put(shared.restore_entry(e));
                }
            }
        }
        Ok(())
    }
}
