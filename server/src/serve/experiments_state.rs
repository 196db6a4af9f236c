//! The experiments' counts across restarts: `state_dir/experiments.bin`,
//! every named arm's id, experiment and variation keys, and its counts
//! summed over the workers (the metrics board, `crate::metrics`). Written
//! with the state file at every interval and once more after every worker
//! has stopped; read at start, before the experiments are resolved, so
//! that an experiment keeps its arm ids (the restored decision log's
//! decisions carry them) and its counts go on.
//!
//! The file is a state file (`cx_domain::store::snapshot`: atomic,
//! versioned, checksummed) with one section, `EXPRMNT1`:
//!
//! | field | bytes |
//! | --- | --- |
//! | arms | u32 |
//! | per arm: id | u32 |
//! | experiment key, variation key | u32 length, then UTF-8 bytes (each at most 4 KiB) |
//! | assigned, decided, impressions, clicks, conversions | u64 each |
//! | revenue | f64 (finite) |
//!
//! A file that cannot be read is refused whole, as the state file is: the
//! start stops, or with `fresh_state` the file is moved aside.

use crate::config::ServerConfig;
use crate::error::Error;
use crate::metrics::Metrics;
use cx_domain::store::snapshot::{
    put_u32, put_u64, read_state, write_state, Section, SectionReader,
};
use cx_engine::systems::resources::experiments::{ArmCounts, ArmRegistry, ARMS_MAX};
use std::path::{Path, PathBuf};

/// The file's name in `state_dir`.
pub const EXPERIMENTS_FILE: &str = "experiments.bin";
/// Its one section's tag.
pub const TAG: [u8; 8] = *b"EXPRMNT1";
/// Largest file read, bytes.
pub const FILE_BYTES_MAX: u64 = 64 << 20;
/// Longest key read, bytes.
pub const KEY_BYTES_MAX: usize = 4096;

/// The file's path, when the server keeps state.
pub fn path(config: &ServerConfig) -> Option<PathBuf> {
    config.state_dir.as_ref().map(|d| d.join(EXPERIMENTS_FILE))
}

/// Writes every named arm of `metrics` to `path` at `now_ns`; logs and
/// returns false on failure (the old file stays whole).
pub fn save(metrics: &Metrics, path: &Path, now_ns: u64) -> bool {
    let arms = metrics.experiment_arms();
    let section = Section {
        tag: TAG,
        bytes: encode(&arms),
    };
    match write_state(path, now_ns, &[section]) {
        Ok(_) => true,
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "experiment counts not saved");
            false
        }
    }
}

/// At start: restores the file (if any) into `arms` (the ids) and
/// `metrics` (the counts). Returns the arms restored.
pub fn restore(
    config: &ServerConfig,
    metrics: &Metrics,
    arms: &mut ArmRegistry,
) -> Result<usize, Error> {
    let Some(path) = path(config) else {
        return Ok(0);
    };
    if !path.exists() {
        return Ok(0);
    }
    let read = read_state(&path, FILE_BYTES_MAX).and_then(|file| {
        let bytes = file.section(&TAG).ok_or_else(|| cx_domain::Error::State {
            path: path.display().to_string(),
            reason: "no EXPRMNT1 section".into(),
        })?;
        decode(bytes)
    });
    let decoded = match read {
        Ok(decoded) => decoded,
        Err(e) if config.fresh_state => {
            let aside = path.with_extension("bin.refused");
            std::fs::rename(&path, &aside).map_err(|io| {
                Error::Config(format!("cannot move {} aside: {io}", path.display()))
            })?;
            tracing::warn!(error = %e, aside = %aside.display(), "experiment counts refused; starting fresh");
            return Ok(0);
        }
        Err(e) => {
            return Err(Error::Config(format!(
                "the experiments' state file {} was refused ({e}); nothing was restored. \
                 Start with --fresh-state to move it aside",
                path.display()
            )))
        }
    };
    for (id, experiment, variation, _) in &decoded {
        arms.restore(experiment, variation, *id)
            .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
    }
    for (id, experiment, variation, counts) in &decoded {
        metrics.restore_experiment_arm(*id, (experiment.clone(), variation.clone()), counts);
    }
    tracing::info!(path = %path.display(), arms = decoded.len(), "experiment counts restored");
    Ok(decoded.len())
}

type ArmRecord = (u16, String, String, ArmCounts);

fn encode(arms: &[ArmRecord]) -> Vec<u8> {
    let mut out = Vec::new();
    put_u32(&mut out, arms.len() as u32);
    for (id, experiment, variation, c) in arms {
        put_u32(&mut out, u32::from(*id));
        for key in [experiment, variation] {
            put_u32(&mut out, key.len() as u32);
            out.extend_from_slice(key.as_bytes());
        }
        for v in [
            c.assigned,
            c.decided,
            c.impressions,
            c.clicks,
            c.conversions,
        ] {
            put_u64(&mut out, v);
        }
        put_u64(&mut out, c.revenue.to_bits());
    }
    out
}

fn decode(bytes: &[u8]) -> cx_domain::Result<Vec<ArmRecord>> {
    let mut r = SectionReader::new(bytes, "experiments");
    let n = r.u32("arms")? as usize;
    if n >= ARMS_MAX {
        return Err(r.bad(format!("{n} arms, at most {}", ARMS_MAX - 1)));
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let id = r.u32("arm id")?;
        let id = u16::try_from(id)
            .ok()
            .filter(|&id| id != 0 && usize::from(id) < ARMS_MAX)
            .ok_or_else(|| r.bad(format!("arm id {id} is 0 or at least {ARMS_MAX}")))?;
        let experiment = key(&mut r, "experiment key")?;
        let variation = key(&mut r, "variation key")?;
        let mut c = ArmCounts {
            assigned: r.u64("assigned")?,
            decided: r.u64("decided")?,
            impressions: r.u64("impressions")?,
            clicks: r.u64("clicks")?,
            conversions: r.u64("conversions")?,
            revenue: r.f64("revenue")?,
        };
        if c.clicks > c.impressions {
            return Err(r.bad(format!(
                "arm {id}: {} clicks, {} impressions",
                c.clicks, c.impressions
            )));
        }
        c.revenue = c.revenue.max(0.0);
        out.push((id, experiment, variation, c));
    }
    r.finish()?;
    Ok(out)
}

fn key(r: &mut SectionReader<'_>, what: &str) -> cx_domain::Result<String> {
    let len = r.u32(what)? as usize;
    if len > KEY_BYTES_MAX {
        return Err(r.bad(format!("{what} of {len} bytes, at most {KEY_BYTES_MAX}")));
    }
    let bytes = r.bytes(len, what)?;
    String::from_utf8(bytes.to_vec()).map_err(|_| r.bad(format!("{what} is not UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arms() -> Vec<ArmRecord> {
        let c = ArmCounts {
            assigned: 10,
            decided: 9,
            impressions: 8,
            clicks: 2,
            conversions: 1,
            revenue: 2.5,
        };
        vec![
            (1, "e".into(), "0".into(), c),
            (7, "f".into(), "ctl".into(), c),
        ]
    }

    #[test]
    fn arms_round_trip_and_damage_is_refused() {
        let bytes = encode(&arms());
        assert_eq!(decode(&bytes).unwrap(), arms());
        for cut in [0, 3, 10, bytes.len() - 1] {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut more = bytes.clone();
        more.push(0);
        assert!(decode(&more).is_err(), "trailing bytes");
        let mut zero = bytes.clone();
        zero[4..8].copy_from_slice(&0u32.to_le_bytes());
        assert!(decode(&zero).is_err(), "arm id 0");
        let mut nan = bytes;
        let at = nan.len() - 8;
        nan[at..].copy_from_slice(&f64::NAN.to_bits().to_le_bytes());
        assert!(decode(&nan).is_err(), "revenue NaN");
    }
}
