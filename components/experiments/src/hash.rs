//! GrowthBook's hashing: FNV-1a (32-bit) over a string's UTF-16 code units,
//! and the two hash versions that turn a seed and a hash value into a
//! bucket in `[0, 1)`.
//!
//! - Version 1 (GrowthBook's original, slightly biased): `fnv(value + seed)
//!   % 1000 / 1000`.
//! - Version 2 (unbiased): `fnv(decimal(fnv(seed + value))) % 10000 /
//!   10000`, where `decimal` is the inner hash written in base 10.
//!
//! GrowthBook's reference SDK (JavaScript) hashes `charCodeAt`, that is
//! UTF-16 code units, so this module does the same: a string with
//! characters outside the Basic Multilingual Plane hashes as its surrogate
//! pairs. Every function here works on borrowed strings and allocates
//! nothing: concatenations are iterator chains, and the inner hash of
//! version 2 is written into a stack buffer.

/// FNV-1a's 32-bit offset basis.
const FNV_OFFSET: u32 = 0x811c_9dc5;
/// FNV-1a's 32-bit prime (2^24 + 2^8 + 0x93).
const FNV_PRIME: u32 = 0x0100_0193;

/// The hash versions GrowthBook defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashVersion {
    /// `fnv(value + seed) % 1000 / 1000`: three decimals, slightly biased.
    V1,
    /// `fnv(decimal(fnv(seed + value))) % 10000 / 10000`: four decimals.
    V2,
}

impl HashVersion {
    /// The version for GrowthBook's number, or `None` for one it does not
    /// define (GrowthBook then puts nobody in the experiment).
    pub fn from_number(version: i64) -> Option<Self> {
        match version {
            1 => Some(Self::V1),
            2 => Some(Self::V2),
            _ => None,
        }
    }
}

/// FNV-1a (32-bit) over the concatenation of `parts`, each taken as its
/// UTF-16 code units, the way JavaScript's `charCodeAt` sees a string.
pub fn fnv1a32(parts: &[&str]) -> u32 {
    parts
        .iter()
        .flat_map(|part| part.encode_utf16())
        .fold(FNV_OFFSET, fnv_step)
}

/// One FNV-1a step: XOR in a code unit, multiply by the prime (mod 2^32).
fn fnv_step(hash: u32, unit: u16) -> u32 {
    (hash ^ u32::from(unit)).wrapping_mul(FNV_PRIME)
}

/// GrowthBook's `hash(seed, value, version)`: the bucket in `[0, 1)`.
pub fn hash(seed: &str, value: &str, version: HashVersion) -> f64 {
    match version {
        HashVersion::V1 => f64::from(fnv1a32(&[value, seed]) % 1000) / 1000.0,
        HashVersion::V2 => {
            let mut digits = [0u8; 10];
            let inner = decimal(fnv1a32(&[seed, value]), &mut digits);
            f64::from(fnv1a32(&[inner]) % 10_000) / 10_000.0
        }
    }
}

/// `hash` with GrowthBook's version number: `None` for an unknown version.
pub fn hash_versioned(seed: &str, value: &str, version: i64) -> Option<f64> {
    HashVersion::from_number(version).map(|v| hash(seed, value, v))
}

/// `n` in base 10, written into `buf` (a `u32` has at most 10 digits).
fn decimal(mut n: u32, buf: &mut [u8; 10]) -> &str {
    let mut start = buf.len();
    loop {
        start -= 1;
        // n % 10 < 10, so the cast cannot truncate.
        buf[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    std::str::from_utf8(&buf[start..]).unwrap_or("0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a32_matches_the_published_test_vectors() {
        // From the FNV reference (Fowler, Noll, Vo): ASCII strings hash the
        // same as bytes or as UTF-16 units.
        assert_eq!(fnv1a32(&[""]), 0x811c_9dc5);
        assert_eq!(fnv1a32(&["a"]), 0xe40c_292c);
        assert_eq!(fnv1a32(&["foobar"]), 0xbf9c_f968);
        assert_eq!(fnv1a32(&["foo", "bar"]), 0xbf9c_f968);
    }

    #[test]
    fn non_ascii_hashes_utf16_units_not_bytes() {
        // U+00E9 is one UTF-16 unit (0x00E9) but two UTF-8 bytes.
        let by_unit = fnv_step(FNV_OFFSET, 0x00e9);
        assert_eq!(fnv1a32(&["\u{e9}"]), by_unit);
        // U+1F600 is a surrogate pair.
        let pair = fnv_step(fnv_step(FNV_OFFSET, 0xd83d), 0xde00);
        assert_eq!(fnv1a32(&["\u{1f600}"]), pair);
    }

    #[test]
    fn decimal_writes_every_width() {
        let mut buf = [0u8; 10];
        assert_eq!(decimal(0, &mut buf), "0");
        assert_eq!(decimal(7, &mut buf), "7");
        assert_eq!(decimal(1_234_567, &mut buf), "1234567");
        assert_eq!(decimal(u32::MAX, &mut buf), u32::MAX.to_string());
    }

    #[test]
    fn unknown_versions_hash_to_none() {
        assert_eq!(hash_versioned("a", "b", 0), None);
        assert_eq!(hash_versioned("a", "b", 3), None);
        assert!(hash_versioned("a", "b", 2).is_some());
    }
}
