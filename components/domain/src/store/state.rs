//! The sections of a state file ([`super::snapshot`]) for budgets and
//! frequency counts: how each store's state is laid out as bytes, keyed
//! by offer id so that it survives a catalog in another order. The
//! decision log writes its own section ([`super::DecisionLog::write_state`]).
//!
//! Every reader checks the whole section (its length against its count,
//! every number) and returns plain records; the caller applies them to a
//! new store only once every section of the file has been read.

use super::frequency::FrequencyRecord;
use super::snapshot::{put_u32, put_u64, SectionReader};
use crate::error::Result;

/// The budgets section's tag.
pub const BUDGETS: [u8; 8] = *b"budgets1";
/// The frequency section's tag.
pub const FREQUENCY: [u8; 8] = *b"freqcap1";
/// The decision log section's tag.
pub const DECISIONS: [u8; 8] = *b"declog01";
/// The posteriors section's tag.
pub const POSTERIORS: [u8; 8] = *b"posters1";
/// The creative variants' counts section's tag.
pub const VARIANTS: [u8; 8] = *b"variant1";
/// The win rates section's tag.
pub const WIN_RATES: [u8; 8] = *b"winrate1";

const BUDGET_RECORD_BYTES: usize = 8 + 4 + 8;
const POSTERIOR_RECORD_BYTES: usize = 8 * 5;
const FREQUENCY_RECORD_BYTES: usize = 8 + 8 + 4 + 4 + 8 + 8 + 8;

/// One offer's spend: its id, the UTC day (days since the epoch) and the
/// micros spent (granted, in a bank) that day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpendRecord {
    /// The offer id.
    pub offer_id: u64,
    /// The day the spend belongs to.
    pub day: u32,
    /// Micros spent that day.
    pub micros: u64,
}

/// Writes the budgets section: `each` calls its argument once per offer.
pub fn write_budgets(out: &mut Vec<u8>, each: impl FnOnce(&mut dyn FnMut(SpendRecord))) {
    let count_at = out.len();
    put_u64(out, 0);
    let mut n = 0u64;
    each(&mut |r: SpendRecord| {
        n += 1;
        put_u64(out, r.offer_id);
        put_u32(out, r.day);
        put_u64(out, r.micros);
    });
    out[count_at..count_at + 8].copy_from_slice(&n.to_le_bytes());
}

/// Reads a budgets section whole.
pub fn read_budgets(bytes: &[u8]) -> Result<Vec<SpendRecord>> {
    let mut r = SectionReader::new(bytes, "budgets section");
    let n = counted(&mut r, bytes.len(), BUDGET_RECORD_BYTES)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(SpendRecord {
            offer_id: r.u64("offer_id")?,
            day: r.u32("day")?,
            micros: r.u64("micros")?,
        });
    }
    r.finish()?;
    Ok(out)
}

/// Writes the frequency section: `each` calls its argument once per entry.
pub fn write_frequency(out: &mut Vec<u8>, each: impl FnOnce(&mut dyn FnMut(FrequencyRecord))) {
    let count_at = out.len();
    put_u64(out, 0);
    let mut n = 0u64;
    each(&mut |r: FrequencyRecord| {
        n += 1;
        put_u64(out, r.user_hash);
        put_u64(out, r.offer);
        put_u32(out, r.count);
        put_u32(out, u32::from(r.capped));
        put_u64(out, r.window_start_ns);
        put_u64(out, r.window_ns);
        put_u64(out, r.last_ns);
    });
    out[count_at..count_at + 8].copy_from_slice(&n.to_le_bytes());
}

/// Reads a frequency section whole.
pub fn read_frequency(bytes: &[u8]) -> Result<Vec<FrequencyRecord>> {
    let mut r = SectionReader::new(bytes, "frequency section");
    let n = counted(&mut r, bytes.len(), FREQUENCY_RECORD_BYTES)?;
    let mut out = Vec::with_capacity(n);
    for k in 0..n {
        let record = FrequencyRecord {
            user_hash: r.u64("user_hash")?,
            offer: r.u64("offer")?,
            count: r.u32("count")?,
            capped: match r.u32("capped")? {
                0 => false,
                1 => true,
                other => return Err(r.bad(format!("entry {k}: capped is {other}, not 0 or 1"))),
            },
            window_start_ns: r.u64("window_start_ns")?,
            window_ns: r.u64("window_ns")?,
            last_ns: r.u64("last_ns")?,
        };
        if record.count == 0 {
            return Err(r.bad(format!("entry {k}: a count of 0")));
        }
        out.push(record);
    }
    r.finish()?;
    Ok(out)
}

/// One offer's posterior counts, undecayed, and when they were last
/// decayed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PosteriorRecord {
    /// The offer id.
    pub offer_id: u64,
    /// Discounted impressions.
    pub impressions: f64,
    /// Discounted clicks.
    pub clicks: f64,
    /// Discounted expected clicks (the model's).
    pub expected_clicks: f64,
    /// When they were last decayed, ns.
    pub updated_ns: u64,
}

/// Writes the posteriors section: `each` calls its argument once per arm.
pub fn write_posteriors(out: &mut Vec<u8>, each: impl FnOnce(&mut dyn FnMut(PosteriorRecord))) {
    let count_at = out.len();
    put_u64(out, 0);
    let mut n = 0u64;
    each(&mut |r: PosteriorRecord| {
        n += 1;
        put_u64(out, r.offer_id);
        put_u64(out, r.impressions.to_bits());
        put_u64(out, r.clicks.to_bits());
        put_u64(out, r.expected_clicks.to_bits());
        put_u64(out, r.updated_ns);
    });
    out[count_at..count_at + 8].copy_from_slice(&n.to_le_bytes());
}

/// Reads a posteriors section whole; counts must be finite.
pub fn read_posteriors(bytes: &[u8]) -> Result<Vec<PosteriorRecord>> {
    let mut r = SectionReader::new(bytes, "posteriors section");
    let n = counted(&mut r, bytes.len(), POSTERIOR_RECORD_BYTES)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(PosteriorRecord {
            offer_id: r.u64("offer_id")?,
            impressions: r.f64("impressions")?,
            clicks: r.f64("clicks")?,
            expected_clicks: r.f64("expected_clicks")?,
            updated_ns: r.u64("updated_ns")?,
        });
    }
    r.finish()?;
    Ok(out)
}

/// Reads a section's record count and checks it fills the section.
fn counted(r: &mut SectionReader<'_>, len: usize, record_bytes: usize) -> Result<usize> {
    let n = r.u64("the count")?;
    let body = (len.saturating_sub(8)) as u64;
    if n.checked_mul(record_bytes as u64) != Some(body) {
        return Err(r.bad(format!("{n} records do not fill {body} bytes")));
    }
    Ok(n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_round_trip_and_refuse_bad_bytes() {
        let spends = [
            SpendRecord {
                offer_id: 1000,
                day: 20_000,
                micros: 5,
            },
            SpendRecord {
                offer_id: 1001,
                day: 20_001,
                micros: 0,
            },
        ];
        let mut out = Vec::new();
        write_budgets(&mut out, |f| spends.iter().for_each(|&s| f(s)));
        assert_eq!(read_budgets(&out).expect("reads"), spends);
        assert!(read_budgets(&out[..out.len() - 1]).is_err(), "truncated");

        let entry = FrequencyRecord {
            user_hash: 9,
            offer: 1000,
            count: 2,
            capped: true,
            window_start_ns: 1,
            window_ns: 10,
            last_ns: 5,
        };
        let mut out = Vec::new();
        write_frequency(&mut out, |f| f(entry));
        assert_eq!(read_frequency(&out).expect("reads"), vec![entry]);
        let mut bad = out.clone();
        bad[8 + 16 + 4] = 7; // capped = 7
        assert!(read_frequency(&bad).is_err());
        let mut zero = out;
        zero[8 + 16..8 + 20].copy_from_slice(&0u32.to_le_bytes());
        assert!(read_frequency(&zero).is_err(), "a count of 0");
    }
}
