//! The model repository: a directory of deployable bundles, each a model
//! with its catalog, its fallback scorer and optional decision settings,
//! that `cx serve --repository` serves and swaps whole (`docs/REPOSITORY.md`).
//!
//! ```text
//! DIR/
//!   NAME/                      a bundle: [A-Za-z0-9][A-Za-z0-9._-]*, at most 64 bytes
//!     ACTIVE                   optional: the version served (one line)
//!     HISTORY                  optional: versions served before, oldest first
//!     VERSION/                 same rule as NAME
//!       model.safetensors      required: the spiking model
//!       catalog.toml           required: its catalog
//!       fallback.safetensors   optional: its logistic baseline (`cx train --baseline`)
//!       decide.toml            optional: a [decide] table over the server's
//! ```
//!
//! This module owns the layout: names and their checks, which version is
//! active (ACTIVE, else the highest version), reading a bundle's files
//! under their limits, and (in [`active`]) changing ACTIVE and HISTORY
//! atomically. It checks what it reads as far as the files go (names,
//! sizes, TOML, the catalog); whether the model fits the catalog and the
//! engine is the engine's to say, when the bundle is loaded.

pub mod active;
pub mod experiments;

use crate::error::Error;
use cx_engine::domain::catalog::Catalog;
use cx_engine::systems::DecideConfig;
use figment::providers::{Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The model file of a version.
pub const MODEL_FILE: &str = "model.safetensors";
/// The catalog file of a version.
pub const CATALOG_FILE: &str = "catalog.toml";
/// The fallback scorer of a version (optional).
pub const FALLBACK_FILE: &str = "fallback.safetensors";
/// The decision settings of a version (optional).
pub const DECIDE_FILE: &str = "decide.toml";
/// The file naming a bundle's active version.
pub const ACTIVE_FILE: &str = "ACTIVE";
/// The file listing the versions a bundle served before.
pub const HISTORY_FILE: &str = "HISTORY";

/// Longest bundle name or version, bytes.
pub const NAME_BYTES_MAX: usize = 64;
/// Most bundles, and most versions of one bundle, a listing reads.
pub const ENTRIES_MAX: usize = 1024;
/// Largest `decide.toml`, bytes.
pub const DECIDE_BYTES_MAX: u64 = 64 << 10;

/// Checks a bundle name or version: 1 to [`NAME_BYTES_MAX`] bytes of ASCII
/// letters, digits, `.`, `_` and `-`, starting with a letter or digit (so
/// never `.`, `..`, a hidden file or a path). `what` names it in the error.
pub fn check_name(what: &str, name: &str) -> Result<(), Error> {
    let fail = |reason: &str| Err(Error::Repository(format!("{what} {name:?} {reason}")));
    if name.is_empty() || name.len() > NAME_BYTES_MAX {
        return fail(&format!("must be 1 to {NAME_BYTES_MAX} bytes long"));
    }
    if !name.as_bytes()[0].is_ascii_alphanumeric() {
        return fail("must start with an ASCII letter or digit");
    }
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
    if !name.bytes().all(allowed) {
        return fail("may hold only ASCII letters, digits, '.', '_' and '-'");
    }
    Ok(())
}

/// Orders versions: dot-separated parts compared in turn, numbers as
/// numbers, other parts as text (numbers first), so `2 < 10` and
/// `1.9 < 1.10`.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let key = |part: &str| match part.parse::<u128>() {
        Ok(n) if part.bytes().all(|b| b.is_ascii_digit()) => (0, n),
        _ => (1, 0),
    };
    let mut left = a.split('.');
    let mut right = b.split('.');
    loop {
        match (left.next(), right.next()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let order = key(x).cmp(&key(y)).then_with(|| x.cmp(y));
                if order != Ordering::Equal {
                    return order;
                }
            }
        }
    }
}

/// A repository directory.
#[derive(Clone, Debug)]
pub struct Repository {
    root: PathBuf,
}

/// One version's files, read and checked as files (see the module docs).
#[derive(Clone, Debug)]
pub struct LoadedBundle {
    /// The bundle's name.
    pub name: String,
    /// The version.
    pub version: String,
    /// The model file's bytes.
    pub model: Arc<[u8]>,
    /// The catalog, parsed and validated.
    pub catalog: Catalog,
    /// The fallback file's bytes, if the version has one.
    pub fallback: Option<Arc<[u8]>>,
    /// The decision settings: the server's, with the version's
    /// `decide.toml` over them, if it has one.
    pub decide: Option<DecideConfig>,
}

/// `decide.toml`: a `[decide]` table and nothing else.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecideFile {
    decide: DecideConfig,
}

impl Repository {
    /// The repository at `root`, which must be a directory.
    pub fn open(root: &Path) -> Result<Self, Error> {
        if !root.is_dir() {
            return Err(Error::Repository(format!(
                "{} is not a directory",
                root.display()
            )));
        }
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    /// Its directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A bundle's directory; fails for a bad name or a missing bundle.
    pub fn bundle_dir(&self, name: &str) -> Result<PathBuf, Error> {
        check_name("bundle", name)?;
        let dir = self.root.join(name);
        if !dir.is_dir() {
            return Err(Error::Repository(format!(
                "bundle {name:?} is not in repository {} (no directory {})",
                self.root.display(),
                dir.display()
            )));
        }
        Ok(dir)
    }

    /// The bundles, sorted by name (entries whose names break the rule are
    /// skipped).
    pub fn bundles(&self) -> Result<Vec<String>, Error> {
        list_dirs(&self.root)
    }

    /// The bundle to serve when none is named: the only one there is.
    pub fn only_bundle(&self) -> Result<String, Error> {
        let mut names = self.bundles()?;
        match names.len() {
            1 => Ok(names.remove(0)),
            0 => Err(Error::Repository(format!(
                "repository {} holds no bundle (a directory NAME/VERSION/)",
                self.root.display()
            ))),
            _ => Err(Error::Repository(format!(
                "repository {} holds several bundles ({}); name one with --bundle",
                self.root.display(),
                names.join(", ")
            ))),
        }
    }

    /// A bundle's versions, lowest first ([`compare_versions`]).
    pub fn versions(&self, name: &str) -> Result<Vec<String>, Error> {
        let mut versions = list_dirs(&self.bundle_dir(name)?)?;
        versions.sort_by(|a, b| compare_versions(a, b));
        Ok(versions)
    }

    /// The version a bundle serves: the one its ACTIVE file names, which
    /// must exist, else its highest version.
    pub fn active_version(&self, name: &str) -> Result<String, Error> {
        if let Some(version) = active::read_active(&self.bundle_dir(name)?)? {
            self.version_dir(name, &version)?;
            return Ok(version);
        }
        self.versions(name)?.pop().ok_or_else(|| {
            Error::Repository(format!(
                "bundle {name:?} has no version (a directory {name}/VERSION/)"
            ))
        })
    }

    /// A version's directory; fails for a bad name or a missing version.
    pub fn version_dir(&self, name: &str, version: &str) -> Result<PathBuf, Error> {
        check_name("version", version)?;
        let dir = self.bundle_dir(name)?.join(version);
        if !dir.is_dir() {
            return Err(Error::Repository(format!(
                "bundle {name:?} has no version {version:?} (no directory {})",
                dir.display()
            )));
        }
        Ok(dir)
    }

    /// Reads the active version of bundle `name`, its decision settings
    /// over `base` ([`Self::load`]).
    pub fn load_active(&self, name: &str, base: &DecideConfig) -> Result<LoadedBundle, Error> {
        let version = self.active_version(name)?;
        self.load(name, &version, base)
    }

    /// Reads one version's files: the model (at most the model format's
    /// size limit), the catalog (parsed and validated), the fallback and
    /// `decide.toml` when present (its `[decide]` keys over `base`,
    /// unknown keys refused).
    pub fn load(
        &self,
        name: &str,
        version: &str,
        base: &DecideConfig,
    ) -> Result<LoadedBundle, Error> {
        let dir = self.version_dir(name, version)?;
        let at = |file: &str| dir.join(file);
        let model = read_file(&at(MODEL_FILE), cx_engine::model::limits::FILE_BYTES_MAX)?;
        let catalog_path = at(CATALOG_FILE);
        if !catalog_path.is_file() {
            return Err(missing(&catalog_path));
        }
        let catalog =
            cx_engine::load_catalog(Some(&catalog_path)).map_err(|source| Error::Engine {
                what: format!("catalog {}", catalog_path.display()),
                source,
            })?;
        let fallback_path = at(FALLBACK_FILE);
        let fallback = match fallback_path.exists() {
            true => Some(read_file(
                &fallback_path,
                cx_engine::model::limits::FILE_BYTES_MAX,
            )?),
            false => None,
        };
        let decide_path = at(DECIDE_FILE);
        let decide = match decide_path.exists() {
            true => Some(read_decide(&decide_path, base)?),
            false => None,
        };
        Ok(LoadedBundle {
            name: name.to_string(),
            version: version.to_string(),
            model,
            catalog,
            fallback,
            decide,
        })
    }
}

fn missing(path: &Path) -> Error {
    Error::Repository(format!("{} is missing", path.display()))
}

/// The subdirectories of `dir` whose names pass [`check_name`], sorted;
/// at most [`ENTRIES_MAX`].
fn list_dirs(dir: &Path) -> Result<Vec<String>, Error> {
    let fail = |source| Error::File {
        path: dir.display().to_string(),
        source,
    };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(fail)? {
        let entry = entry.map_err(fail)?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if check_name("entry", &name).is_err() || !entry.path().is_dir() {
            continue;
        }
        if names.len() == ENTRIES_MAX {
            return Err(Error::Repository(format!(
                "{} holds more than {ENTRIES_MAX} entries",
                dir.display()
            )));
        }
        names.push(name);
    }
    names.sort();
    Ok(names)
}

/// A file's bytes, refusing a missing file and one over `limit` bytes.
pub(crate) fn read_file(path: &Path, limit: u64) -> Result<Arc<[u8]>, Error> {
    let fail = |source| Error::File {
        path: path.display().to_string(),
        source,
    };
    if !path.is_file() {
        return Err(missing(path));
    }
    let len = std::fs::metadata(path).map_err(fail)?.len();
    if len > limit {
        return Err(Error::Repository(format!(
            "{} is {len} bytes, more than the limit of {limit}",
            path.display()
        )));
    }
    Ok(std::fs::read(path).map_err(fail)?.into())
}

/// `decide.toml`'s `[decide]` over `base`, validated.
fn read_decide(path: &Path, base: &DecideConfig) -> Result<DecideConfig, Error> {
    let bytes = read_file(path, DECIDE_BYTES_MAX)?;
    let bad = |reason: String| Error::Repository(format!("{}: {reason}", path.display()));
    let text = std::str::from_utf8(&bytes).map_err(|_| bad("is not UTF-8".into()))?;
    let merged: DecideFile = Figment::from(Serialized::defaults(DecideFile {
        decide: base.clone(),
    }))
    .merge(Toml::string(text))
    .extract()
    .map_err(|e| bad(e.to_string()))?;
    merged.decide.validate().map_err(|e| bad(e.to_string()))?;
    Ok(merged.decide)
}

#[cfg(test)]
mod tests;
