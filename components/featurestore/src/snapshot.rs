//! Snapshots: a store's entities written to a file and read back.
//!
//! # Format (version 1, little-endian)
//!
//! | part | bytes | content |
//! | --- | --- | --- |
//! | magic | 8 | `CXFSTORE` |
//! | version | 4 | `1` |
//! | reserved | 4 | 0 |
//! | schema id | 16 | the definitions' id, ASCII hex |
//! | features | 4 | stored features `F` |
//! | entity bytes | 4 | `8 + 12 F` |
//! | entities | `n (8 + 12 F)` | per entity: key (u64), `F` time stamps (u32: unix seconds + 1, 0 = none), `F` values (u64 bits) |
//! | count | 8 | `n` |
//! | checksum | 8 | xxh3-64 of every byte before it |
//!
//! Health counters and the stores' statistics are not kept.
//!
//! # Rules
//!
//! - **Atomic.** The file is written to a temporary file beside it,
//!   flushed to disk (`fsync`), renamed over the target and the directory
//!   synced: a crash leaves the old snapshot or the new one, never a mix.
//! - **Refused, never half-loaded.** Restoring checks, in order: the
//!   length, the magic (not a snapshot), the version, the checksum over the
//!   whole file (corrupt or truncated), the schema id (another definitions
//!   file), the shape (features and entity bytes), the count against the
//!   length, then every entity (a non-zero key, values that fit their
//!   features' types). Only then is the new store handed back; the store a
//!   host is serving from is never touched, whatever fails.
//! - **Bounded.** A snapshot of more entities than the store being
//!   restored into can hold is refused.
//!
//! A shared store is written shard by shard, each under its lock: the file
//! is a consistent copy of each shard, not one instant of the whole store.

use crate::defs::{Definitions, FeatureId, Value};
use crate::error::{Error, Result};
use crate::shared::SharedFeatureStore;
use crate::store::{FeatureStore, PutOutcome, StoreConfig, ENTITIES_MAX};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use xxhash_rust::xxh3::Xxh3;

/// The first 8 bytes of every snapshot.
pub const MAGIC: &[u8; 8] = b"CXFSTORE";
/// The format version written and read.
pub const SNAPSHOT_VERSION: u32 = 1;
const HEADER: usize = 40;
const TRAILER: usize = 16;

/// What a snapshot or a restore moved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// Entities written or restored.
    pub entities: u64,
    /// Bytes of the file.
    pub bytes: u64,
    /// Entities pushed out while restoring (sets that overflowed in a
    /// store of another size).
    pub evicted: u64,
}

/// Writes `store` to `path` atomically.
pub fn write_store(store: &FeatureStore, path: &Path) -> Result<SnapshotInfo> {
    write_atomic(path, store.definitions(), |w| {
        let mut result = Ok(());
        store.for_each_entity(|key, values| {
            if result.is_ok() {
                result = w.entity(key, values);
            }
        });
        result
    })
}

/// Writes a shared store to `path` atomically, shard by shard.
pub fn write_shared(store: &SharedFeatureStore, path: &Path) -> Result<SnapshotInfo> {
    write_atomic(path, store.definitions(), |w| {
        store.each_shard(|shard| {
            let mut result = Ok(());
            shard.for_each_entity(|key, values| {
                if result.is_ok() {
                    result = w.entity(key, values);
                }
            });
            result
        })
    })
}

/// A new store of `config` for `defs`, filled from the snapshot at `path`.
pub fn read_store(
    defs: Arc<Definitions>,
    config: StoreConfig,
    path: &Path,
) -> Result<(FeatureStore, SnapshotInfo)> {
    let mut store = FeatureStore::new(Arc::clone(&defs), config)?;
    let capacity = store.stats().capacity as u64;
    let mut out = PutOutcome::default();
    let info = read_entities(&defs, path, capacity, |key, values| {
        store.restore_entity(key, values, &mut out);
    })?;
    Ok((
        store,
        SnapshotInfo {
            evicted: out.evicted,
            ..info
        },
    ))
}

/// A new shared store of `config` for `defs`, filled from `path`.
pub fn read_shared(
    defs: Arc<Definitions>,
    config: StoreConfig,
    path: &Path,
) -> Result<(SharedFeatureStore, SnapshotInfo)> {
    let store = SharedFeatureStore::new(Arc::clone(&defs), config)?;
    let capacity = store.stats().capacity as u64;
    let mut out = PutOutcome::default();
    let info = read_entities(&defs, path, capacity, |key, values| {
        store.shard(key).restore_entity(key, values, &mut out);
    })?;
    Ok((
        store,
        SnapshotInfo {
            evicted: out.evicted,
            ..info
        },
    ))
}

struct Writer {
    out: BufWriter<File>,
    hasher: Xxh3,
    entities: u64,
    path: PathBuf,
}

impl Writer {
    fn bytes(&mut self, b: &[u8]) -> Result<()> {
        self.hasher.update(b);
        self.out.write_all(b).map_err(|e| io(&self.path, e))
    }

    fn entity(&mut self, key: u64, values: &mut dyn Iterator<Item = (u32, u64)>) -> Result<()> {
        let mut times = [0u32; crate::defs::STORED_FEATURES_MAX];
        let mut bits = [0u64; crate::defs::STORED_FEATURES_MAX];
        let mut n = 0;
        for (t, v) in values.take(crate::defs::STORED_FEATURES_MAX) {
            times[n] = t;
            bits[n] = v;
            n += 1;
        }
        self.bytes(&key.to_le_bytes())?;
        for t in &times[..n] {
            self.bytes(&t.to_le_bytes())?;
        }
        for v in &bits[..n] {
            self.bytes(&v.to_le_bytes())?;
        }
        self.entities += 1;
        Ok(())
    }
}

fn io(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source,
    }
}

fn header(defs: &Definitions) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
    h[16..32].copy_from_slice(defs.id().as_bytes());
    let features = defs.stored().len() as u32;
    h[32..36].copy_from_slice(&features.to_le_bytes());
    h[36..40].copy_from_slice(&(8 + 12 * features).to_le_bytes());
    h
}

/// Writes header, `body`'s entities and trailer to a temporary file, then
/// syncs and renames it over `path`.
fn write_atomic(
    path: &Path,
    defs: &Definitions,
    body: impl FnOnce(&mut Writer) -> Result<()>,
) -> Result<SnapshotInfo> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp.{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let result = write_file(&tmp, defs, body).and_then(|info| {
        std::fs::rename(&tmp, path).map_err(|e| io(path, e))?;
        sync_dir(path);
        Ok(info)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn write_file(
    tmp: &Path,
    defs: &Definitions,
    body: impl FnOnce(&mut Writer) -> Result<()>,
) -> Result<SnapshotInfo> {
    let file = File::create(tmp).map_err(|e| io(tmp, e))?;
    let mut w = Writer {
        out: BufWriter::with_capacity(1 << 16, file),
        hasher: Xxh3::new(),
        entities: 0,
        path: tmp.to_owned(),
    };
    w.bytes(&header(defs))?;
    body(&mut w)?;
    let count = w.entities;
    w.bytes(&count.to_le_bytes())?;
    let checksum = w.hasher.digest();
    w.out
        .write_all(&checksum.to_le_bytes())
        .map_err(|e| io(tmp, e))?;
    let file = w.out.into_inner().map_err(|e| io(tmp, e.into_error()))?;
    file.sync_all().map_err(|e| io(tmp, e))?;
    let bytes = (HEADER + TRAILER) as u64 + count * (8 + 12 * defs.stored().len() as u64);
    Ok(SnapshotInfo {
        entities: count,
        bytes,
        evicted: 0,
    })
}

/// Makes the rename durable; a directory that cannot be opened or synced
/// (some file systems) leaves the rename as durable as the OS makes it.
fn sync_dir(path: &Path) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Checks the snapshot at `path` against `defs` (see the module docs, in
/// that order) and hands each entity to `f`; returns what it read.
fn read_entities(
    defs: &Definitions,
    path: &Path,
    capacity: u64,
    mut f: impl FnMut(u64, &[(u32, u64)]),
) -> Result<SnapshotInfo> {
    let refuse = |reason: String| Error::Snapshot {
        path: path.display().to_string(),
        reason,
    };
    let len = std::fs::metadata(path).map_err(|e| io(path, e))?.len();
    let features = defs.stored().len();
    let entity_bytes = 8 + 12 * features as u64;
    let len_max = (HEADER + TRAILER) as u64 + ENTITIES_MAX as u64 * entity_bytes;
    if len < (HEADER + TRAILER) as u64 || len > len_max {
        return Err(refuse(format!(
            "{len} bytes: truncated, or not a snapshot for these definitions (expected {} to {len_max})",
            HEADER + TRAILER
        )));
    }
    let mut h = [0u8; HEADER];
    let mut r = BufReader::with_capacity(1 << 16, File::open(path).map_err(|e| io(path, e))?);
    r.read_exact(&mut h).map_err(|e| io(path, e))?;
    if &h[..8] != MAGIC {
        return Err(refuse("not a feature store snapshot (bad magic)".into()));
    }
    let version = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
    if version != SNAPSHOT_VERSION {
        return Err(refuse(format!(
            "format version {version}, this build reads version {SNAPSHOT_VERSION}"
        )));
    }
    verify_checksum(path, len).map_err(&refuse)?;
    check_header(&h, defs).map_err(&refuse)?;
    let body = len - (HEADER + TRAILER) as u64;
    if !body.is_multiple_of(entity_bytes) {
        return Err(refuse(format!(
            "its {body} bytes of entities are not a whole number of {entity_bytes}-byte entities"
        )));
    }
    let n = body / entity_bytes;
    if n > capacity {
        return Err(refuse(format!(
            "it holds {n} entities, the store has room for {capacity}"
        )));
    }
    let mut values = vec![(0u32, 0u64); features];
    let mut buf = vec![0u8; entity_bytes as usize];
    for i in 0..n {
        r.read_exact(&mut buf).map_err(|e| io(path, e))?;
        let key = decode_entity(defs, &buf, &mut values)
            .map_err(|why| refuse(format!("entity #{i}: {why}")))?;
        f(key, &values);
    }
    let mut trailer = [0u8; TRAILER];
    r.read_exact(&mut trailer).map_err(|e| io(path, e))?;
    let count = u64::from_le_bytes(trailer[..8].try_into().unwrap_or_default());
    if count != n {
        return Err(refuse(format!(
            "its trailer counts {count} entities, the file holds {n}"
        )));
    }
    Ok(SnapshotInfo {
        entities: n,
        bytes: len,
        evicted: 0,
    })
}

/// Hashes the whole file but its last 8 bytes and compares.
fn verify_checksum(path: &Path, len: u64) -> Result<(), String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let mut r = BufReader::with_capacity(1 << 16, file);
    let mut hasher = Xxh3::new();
    let mut left = len - 8;
    let mut buf = vec![0u8; 1 << 16];
    while left > 0 {
        let want = left.min(buf.len() as u64) as usize;
        r.read_exact(&mut buf[..want]).map_err(|e| e.to_string())?;
        hasher.update(&buf[..want]);
        left -= want as u64;
    }
    let mut stored = [0u8; 8];
    r.read_exact(&mut stored).map_err(|e| e.to_string())?;
    if u64::from_le_bytes(stored) != hasher.digest() {
        return Err("checksum mismatch: the file is corrupt or truncated".into());
    }
    Ok(())
}

fn check_header(h: &[u8; HEADER], defs: &Definitions) -> Result<(), String> {
    let id = String::from_utf8_lossy(&h[16..32]);
    if id != defs.id() {
        return Err(format!(
            "written for feature definitions {id}, these definitions are {}",
            defs.id()
        ));
    }
    let features = u32::from_le_bytes([h[32], h[33], h[34], h[35]]) as usize;
    let entity_bytes = u32::from_le_bytes([h[36], h[37], h[38], h[39]]);
    if features != defs.stored().len() || entity_bytes as usize != 8 + 12 * features {
        return Err(format!(
            "{features} features of {entity_bytes} bytes per entity, these definitions have {}",
            defs.stored().len()
        ));
    }
    Ok(())
}

/// One entity's key and (time, bits) per feature, each value checked
/// against its feature's type.
fn decode_entity(defs: &Definitions, buf: &[u8], values: &mut [(u32, u64)]) -> Result<u64, String> {
    let word = |at: usize, n: usize| -> u64 {
        buf[at..at + n]
            .iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
    };
    let key = word(0, 8);
    if key == 0 {
        return Err("key 0".into());
    }
    let features = values.len();
    for (f, slot) in values.iter_mut().enumerate() {
        let t = word(8 + 4 * f, 4) as u32;
        let bits = word(8 + 4 * features + 8 * f, 8);
        if t != 0 {
            let id = FeatureId(f as u16);
            let value = defs.value_type(id).map(|ty| Value::from_bits(ty, bits));
            let fits = value.is_some_and(|v| defs.check_value(f, v).is_ok() && v.to_bits() == bits);
            if !fits {
                return Err(format!(
                    "feature '{}' has a value its type cannot hold",
                    defs.name(id)
                ));
            }
        }
        *slot = (t, if t == 0 { 0 } else { bits });
    }
    Ok(key)
}
