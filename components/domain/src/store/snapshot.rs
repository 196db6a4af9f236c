//! State files: the stores' state written atomically to one file and read
//! back whole, or refused.
//!
//! # Format (version 1, little-endian)
//!
//! | part | bytes | content |
//! | --- | --- | --- |
//! | magic | 8 | `CXSTATE1` |
//! | version | 4 | `1` |
//! | sections | 4 | `n` |
//! | written at | 8 | unix ns |
//! | per section | `16 + len` | a tag (8 ASCII bytes), `len` (u64), `len` bytes |
//! | checksum | 8 | xxh3-64 of every byte before it |
//!
//! What a section holds is its store's business ([`Section`]); this module
//! only frames, checks and moves bytes.
//!
//! # Rules
//!
//! - **Atomic.** Written to a temporary file beside the target, flushed to
//!   disk (`fsync`), renamed over the target, and the directory synced: a
//!   crash leaves the old file or the new one, never a mix.
//! - **Refused, never half-loaded.** [`read_state`] checks the length, the
//!   magic (not a state file, or another program's), the version, the
//!   checksum over the whole file (corrupt or truncated) and every
//!   section's framing before it returns anything; a store then rebuilds
//!   itself from its section into a new value, and the caller swaps it in
//!   only when every section has been read.
//! - **Bounded.** A file larger than the caller's limit is refused before it
//!   is read.

use crate::error::{Error, Result};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use xxhash_rust::xxh3::xxh3_64;

/// The first 8 bytes of every state file.
pub const MAGIC: &[u8; 8] = b"CXSTATE1";
/// The format version written and read.
pub const STATE_VERSION: u32 = 1;
/// Most sections one file may hold.
pub const SECTIONS_MAX: usize = 64;
const HEADER_BYTES: usize = 24;
const SECTION_HEAD_BYTES: usize = 16;
const CHECKSUM_BYTES: usize = 8;

/// One section: a tag naming what it holds, and its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    /// Eight ASCII bytes, such as `b"budgets1"`.
    pub tag: [u8; 8],
    /// The store's encoding of its state.
    pub bytes: Vec<u8>,
}

/// A state file as read: when it was written and its sections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateFile {
    /// When it was written, unix ns.
    pub written_unix_ns: u64,
    /// Its sections, in file order.
    pub sections: Vec<Section>,
}

impl StateFile {
    /// The section tagged `tag`, if any.
    pub fn section(&self, tag: &[u8; 8]) -> Option<&[u8]> {
        self.sections
            .iter()
            .find(|s| &s.tag == tag)
            .map(|s| s.bytes.as_slice())
    }
}

fn refused(path: &Path, reason: impl Into<String>) -> Error {
    Error::State {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

fn io(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes `sections` to `path` atomically (see the [module docs](self)).
/// Returns the file's size in bytes.
pub fn write_state(path: &Path, written_unix_ns: u64, sections: &[Section]) -> Result<u64> {
    if sections.len() > SECTIONS_MAX {
        return Err(refused(
            path,
            format!("{} sections, more than {SECTIONS_MAX}", sections.len()),
        ));
    }
    let body: usize = sections
        .iter()
        .map(|s| SECTION_HEAD_BYTES + s.bytes.len())
        .sum();
    let mut bytes = Vec::with_capacity(HEADER_BYTES + body + CHECKSUM_BYTES);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&STATE_VERSION.to_le_bytes());
    bytes.extend_from_slice(&(sections.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&written_unix_ns.to_le_bytes());
    for s in sections {
        bytes.extend_from_slice(&s.tag);
        bytes.extend_from_slice(&(s.bytes.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&s.bytes);
    }
    let checksum = xxh3_64(&bytes);
    bytes.extend_from_slice(&checksum.to_le_bytes());
    write_atomic(path, &bytes)?;
    Ok(bytes.len() as u64)
}

/// Writes `bytes` to `path` through a synced temporary file and a rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temporary_path(path);
    let result = (|| {
        let mut file = File::create(&tmp).map_err(|e| io(&tmp, e))?;
        file.write_all(bytes).map_err(|e| io(&tmp, e))?;
        file.sync_all().map_err(|e| io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| io(path, e))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // The rename is durable once the directory is.
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| io(dir, e))?;
        }
        Ok(())
    })();
    if result.is_err() {
        // Best effort: a temporary file left behind is overwritten by the
        // next write and never read.
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Reads and checks the state file at `path`, refusing one larger than
/// `bytes_max` (see the [module docs](self) for the checks, in order).
pub fn read_state(path: &Path, bytes_max: u64) -> Result<StateFile> {
    let file = File::open(path).map_err(|e| io(path, e))?;
    let len = file.metadata().map_err(|e| io(path, e))?.len();
    if len > bytes_max {
        return Err(refused(
            path,
            format!("{len} bytes, more than the limit of {bytes_max}"),
        ));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(bytes_max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| io(path, e))?;
    parse(&bytes).map_err(|reason| refused(path, reason))
}

/// Checks and splits a whole state file.
fn parse(bytes: &[u8]) -> std::result::Result<StateFile, String> {
    if bytes.len() < HEADER_BYTES + CHECKSUM_BYTES {
        return Err(format!("{} bytes: too short for a state file", bytes.len()));
    }
    if &bytes[..8] != MAGIC {
        return Err("not a CampaignExpress state file (bad magic)".into());
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().unwrap_or_default());
    if version != STATE_VERSION {
        return Err(format!(
            "format version {version}; this build reads version {STATE_VERSION}"
        ));
    }
    let (body, tail) = bytes.split_at(bytes.len() - CHECKSUM_BYTES);
    let stored = u64::from_le_bytes(tail.try_into().unwrap_or_default());
    if xxh3_64(body) != stored {
        return Err("checksum mismatch: the file is corrupt or truncated".into());
    }
    let count = u32::from_le_bytes(body[12..16].try_into().unwrap_or_default()) as usize;
    if count > SECTIONS_MAX {
        return Err(format!("{count} sections, more than {SECTIONS_MAX}"));
    }
    let written_unix_ns = u64::from_le_bytes(body[16..24].try_into().unwrap_or_default());
    let mut at = HEADER_BYTES;
    let mut sections = Vec::with_capacity(count);
    for i in 0..count {
        let head = body
            .get(at..at + SECTION_HEAD_BYTES)
            .ok_or_else(|| format!("section {i}: its header runs past the end"))?;
        let mut tag = [0u8; 8];
        tag.copy_from_slice(&head[..8]);
        let len = u64::from_le_bytes(head[8..16].try_into().unwrap_or_default());
        let start = at + SECTION_HEAD_BYTES;
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| start.checked_add(len))
            .filter(|&end| end <= body.len())
            .ok_or_else(|| format!("section {i}: {len} bytes run past the end"))?;
        sections.push(Section {
            tag,
            bytes: body[start..end].to_vec(),
        });
        at = end;
    }
    if at != body.len() {
        return Err(format!("{} bytes after the last section", body.len() - at));
    }
    Ok(StateFile {
        written_unix_ns,
        sections,
    })
}

/// A cursor over a section's bytes, for stores decoding their own: every
/// read is bounds-checked and names what it was reading.
pub struct SectionReader<'a> {
    bytes: &'a [u8],
    at: usize,
    section: &'static str,
}

impl<'a> SectionReader<'a> {
    /// A reader over `bytes` of the section named `section` (for errors).
    pub fn new(bytes: &'a [u8], section: &'static str) -> Self {
        Self {
            bytes,
            at: 0,
            section,
        }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        let out = self
            .bytes
            .get(self.at..self.at.saturating_add(n))
            .ok_or_else(|| Error::State {
                path: self.section.into(),
                reason: format!("{what} at byte {} runs past the section's end", self.at),
            })?;
        self.at += n;
        Ok(out)
    }

    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        self.take(n, what)
    }

    /// The next u64.
    pub fn u64(&mut self, what: &str) -> Result<u64> {
        let b = self.take(8, what)?;
        Ok(u64::from_le_bytes(b.try_into().unwrap_or_default()))
    }

    /// The next u32.
    pub fn u32(&mut self, what: &str) -> Result<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes(b.try_into().unwrap_or_default()))
    }

    /// The next f64, refused unless finite.
    pub fn f64(&mut self, what: &str) -> Result<f64> {
        let v = f64::from_bits(self.u64(what)?);
        if v.is_finite() {
            Ok(v)
        } else {
            Err(self.bad(format!("{what} is not finite")))
        }
    }

    /// An error about this section.
    pub fn bad(&self, reason: String) -> Error {
        Error::State {
            path: self.section.into(),
            reason,
        }
    }

    /// Whether every byte was read.
    pub fn is_done(&self) -> bool {
        self.at == self.bytes.len()
    }

    /// Refuses trailing bytes.
    pub fn finish(&self) -> Result<()> {
        if self.is_done() {
            Ok(())
        } else {
            Err(self.bad(format!(
                "{} bytes left after its last record",
                self.bytes.len() - self.at
            )))
        }
    }
}

/// Appends little-endian values to a section being written.
pub fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Appends a little-endian u32.
pub fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sections() -> Vec<Section> {
        vec![
            Section {
                tag: *b"budgets1",
                bytes: vec![1, 2, 3],
            },
            Section {
                tag: *b"empty___",
                bytes: vec![],
            },
        ]
    }

    #[test]
    fn a_state_file_round_trips_and_replaces_the_old_one_whole() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state.bin");
        let bytes = write_state(&path, 42, &sections()).expect("written");
        let read = read_state(&path, 1 << 20).expect("read");
        assert_eq!(read.written_unix_ns, 42);
        assert_eq!(read.sections, sections());
        assert_eq!(read.section(b"budgets1"), Some(&[1u8, 2, 3][..]));
        assert_eq!(std::fs::metadata(&path).expect("file").len(), bytes);
        write_state(&path, 43, &sections()[..1]).expect("rewritten");
        assert_eq!(read_state(&path, 1 << 20).expect("read").sections.len(), 1);
        assert!(!dir.path().join("state.bin.tmp").exists());
    }

    #[test]
    fn every_corruption_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state.bin");
        write_state(&path, 1, &sections()).expect("written");
        let good = std::fs::read(&path).expect("bytes");
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("too short", good[..10].to_vec()),
            ("magic", [b"XXSTATE1", &good[8..]].concat()),
            ("version", {
                let mut b = good.clone();
                b[8] = 9;
                b
            }),
            ("checksum", {
                let mut b = good.clone();
                b[30] ^= 1;
                b
            }),
            ("checksum", good[..good.len() - 1].to_vec()),
        ];
        for (why, bytes) in cases {
            std::fs::write(&path, &bytes).expect("write");
            let err = read_state(&path, 1 << 20).expect_err(why).to_string();
            assert!(err.contains(why), "{why}: {err}");
        }
        std::fs::write(&path, &good).expect("write");
        let err = read_state(&path, 8).expect_err("limit").to_string();
        assert!(err.contains("limit"), "{err}");
    }

    #[test]
    fn section_framing_is_checked_even_under_a_valid_checksum() {
        // A section length past the end, with a checksum that matches.
        let mut body = Vec::new();
        body.extend_from_slice(MAGIC);
        body.extend_from_slice(&STATE_VERSION.to_le_bytes());
        body.extend_from_slice(&1u32.to_le_bytes());
        body.extend_from_slice(&0u64.to_le_bytes());
        body.extend_from_slice(b"budgets1");
        body.extend_from_slice(&u64::MAX.to_le_bytes());
        let checksum = xxh3_64(&body);
        body.extend_from_slice(&checksum.to_le_bytes());
        let err = parse(&body).expect_err("refused");
        assert!(err.contains("past the end"), "{err}");
    }
}
