//! Which version of a bundle is active, and the versions it served before:
//! the bundle's `ACTIVE` file (one line, a version) and `HISTORY` file
//! (one version a line, oldest first, at most [`HISTORY_MAX`]).
//!
//! Both are replaced whole and atomically: written to a temporary file in
//! the bundle's directory, flushed to disk (`fsync`), renamed over the old
//! one, and the directory flushed, so a crash leaves either the old file
//! or the new one, never a torn one. `activate` writes HISTORY before
//! ACTIVE; a crash between the two leaves the active version at the end
//! of the history, which `rollback` skips. Two operators changing the same
//! bundle at once are not serialised: the last rename wins.

use super::{check_name, Repository, ACTIVE_FILE, HISTORY_FILE, NAME_BYTES_MAX};
use crate::error::Error;
use std::io::Write;
use std::path::Path;

/// Versions kept in HISTORY; older ones are dropped.
pub const HISTORY_MAX: usize = 32;

/// The version a bundle's ACTIVE file names, if it has one; a file that
/// is not one valid version (a line, blank space around it allowed) is an
/// error naming it.
pub fn read_active(bundle_dir: &Path) -> Result<Option<String>, Error> {
    let path = bundle_dir.join(ACTIVE_FILE);
    let Some(text) = read_small(&path, NAME_BYTES_MAX as u64 + 64)? else {
        return Ok(None);
    };
    let version = text.trim();
    check_name("version", version)
        .map_err(|e| Error::Repository(format!("{}: {e}", path.display())))?;
    Ok(Some(version.to_string()))
}

/// The versions a bundle served before, oldest first.
pub fn read_history(bundle_dir: &Path) -> Result<Vec<String>, Error> {
    let path = bundle_dir.join(HISTORY_FILE);
    let limit = ((NAME_BYTES_MAX + 2) * HISTORY_MAX * 2) as u64;
    let Some(text) = read_small(&path, limit)? else {
        return Ok(Vec::new());
    };
    let mut versions = Vec::new();
    for (n, line) in text.lines().map(str::trim).enumerate() {
        if line.is_empty() {
            continue;
        }
        check_name("version", line)
            .map_err(|e| Error::Repository(format!("{} line {}: {e}", path.display(), n + 1)))?;
        versions.push(line.to_string());
    }
    Ok(versions)
}

/// What a change of the active version did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Activation {
    /// The version active before.
    pub from: String,
    /// The version active now.
    pub to: String,
}

impl Repository {
    /// Makes `version` (which must exist) the active version of bundle
    /// `name`, recording the one active before in HISTORY. A running
    /// server serves it after its next reload.
    pub fn activate(&self, name: &str, version: &str) -> Result<Activation, Error> {
        let dir = self.bundle_dir(name)?;
        self.version_dir(name, version)?;
        let from = self.active_version(name)?;
        if from != version {
            let mut history = read_history(&dir)?;
            history.push(from.clone());
            let drop = history.len().saturating_sub(HISTORY_MAX);
            write_lines(&dir, HISTORY_FILE, &history[drop..])?;
        }
        write_lines(&dir, ACTIVE_FILE, &[version.to_string()])?;
        Ok(Activation {
            from,
            to: version.to_string(),
        })
    }

    /// Makes the version active before the current one active again: the
    /// last entry of HISTORY that is not the current version and still
    /// exists, taken off the history. Fails, changing nothing, when there
    /// is none.
    pub fn rollback(&self, name: &str) -> Result<Activation, Error> {
        let dir = self.bundle_dir(name)?;
        let from = self.active_version(name)?;
        let mut history = read_history(&dir)?;
        while let Some(previous) = history.pop() {
            if previous == from || self.version_dir(name, &previous).is_err() {
                continue;
            }
            write_lines(&dir, HISTORY_FILE, &history)?;
            write_lines(&dir, ACTIVE_FILE, std::slice::from_ref(&previous))?;
            return Ok(Activation { from, to: previous });
        }
        Err(Error::Repository(format!(
            "bundle {name:?}: no earlier version to roll back to ({} records none other than {from:?} \
             that still exists)",
            dir.join(HISTORY_FILE).display()
        )))
    }
}

/// A small text file's contents, `None` if it does not exist; one over
/// `limit` bytes or not UTF-8 is an error.
fn read_small(path: &Path, limit: u64) -> Result<Option<String>, Error> {
    let fail = |source| Error::File {
        path: path.display().to_string(),
        source,
    };
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(fail(e)),
    };
    if meta.len() > limit {
        return Err(Error::Repository(format!(
            "{} is {} bytes, more than the limit of {limit}",
            path.display(),
            meta.len()
        )));
    }
    let bytes = std::fs::read(path).map_err(fail)?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| Error::Repository(format!("{} is not UTF-8", path.display())))
}

/// Replaces `dir/file` with `lines` atomically (see the module docs).
fn write_lines(dir: &Path, file: &str, lines: &[String]) -> Result<(), Error> {
    let path = dir.join(file);
    let tmp = dir.join(format!(".{file}.tmp-{}", std::process::id()));
    let fail = |p: &Path| {
        let p = p.display().to_string();
        move |source| Error::File { path: p, source }
    };
    let mut text = String::new();
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(&tmp)(e));
    }
    if let Err(e) = std::fs::rename(&tmp, &path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(&path)(e));
    }
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(fail(dir))
}
