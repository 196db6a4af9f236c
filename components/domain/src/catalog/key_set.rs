//! [`KeySet`]: a small sorted set of 64-bit keys (hashes, packed sizes)
//! that a request carries, inline up to `N` keys and on the heap beyond.
//!
//! What an impression allows ([`ImpRules`](super::ImpRules)) holds a few
//! such sets (`bcat` keys, video MIME types, banner sizes). Most requests
//! list only a handful of items, so the keys sit in a fixed array inside
//! the request and building or moving one allocates nothing; a request
//! that lists more than `N` spills them into a `Vec`, allocated once for
//! that request. Lookups are a binary search over the sorted keys, so a
//! long list costs `log n` per offer, not `n`.

/// A sorted, duplicate-free set of `u64` keys: inline up to `N`, else on
/// the heap, so that a request carrying a few keys allocates nothing and
/// one carrying many still looks each up by binary search.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeySet<const N: usize> {
    inline: [u64; N],
    len: usize,
    /// Every key, sorted, when there are more than `N`; empty otherwise.
    spilled: Vec<u64>,
}

impl<const N: usize> Default for KeySet<N> {
    fn default() -> Self {
        Self {
            inline: [0; N],
            len: 0,
            spilled: Vec::new(),
        }
    }
}

impl<const N: usize> KeySet<N> {
    /// The set of `keys` (any order; repeats are kept once).
    pub fn from_keys(keys: impl IntoIterator<Item = u64>) -> Self {
        let mut set = Self::default();
        for key in keys {
            set.push(key);
        }
        set.seal();
        set
    }

    /// Appends a key (unsorted until [`Self::seal`]).
    fn push(&mut self, key: u64) {
        if !self.spilled.is_empty() {
            self.spilled.push(key);
        } else if self.len < N {
            self.inline[self.len] = key;
            self.len += 1;
        } else {
            self.spilled.reserve(N * 2);
            self.spilled.extend_from_slice(&self.inline[..self.len]);
            self.spilled.push(key);
            self.len = 0;
        }
    }

    /// Sorts the keys and drops repeats.
    fn seal(&mut self) {
        if self.spilled.is_empty() {
            let keys = &mut self.inline[..self.len];
            keys.sort_unstable();
            let mut kept = 0;
            for j in 0..keys.len() {
                if kept == 0 || keys[j] != keys[kept - 1] {
                    keys[kept] = keys[j];
                    kept += 1;
                }
            }
            self.len = kept;
        } else {
            self.spilled.sort_unstable();
            self.spilled.dedup();
        }
    }

    /// The keys, ascending.
    pub fn as_slice(&self) -> &[u64] {
        if self.spilled.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.spilled
        }
    }

    /// Whether the set holds `key` (a binary search; allocates nothing).
    pub fn contains(&self, key: u64) -> bool {
        self.as_slice().binary_search(&key).is_ok()
    }

    /// Whether the set holds any of `keys`.
    pub fn contains_any(&self, keys: &[u64]) -> bool {
        !self.is_empty() && keys.iter().any(|&k| self.contains(k))
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }

    /// Whether the keys spilled onto the heap (more than `N`).
    pub fn spilled(&self) -> bool {
        !self.spilled.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_sorted_and_kept_once_inline_or_spilled() {
        let small = KeySet::<4>::from_keys([9, 3, 9, 1]);
        assert_eq!(small.as_slice(), [1, 3, 9]);
        assert!(!small.spilled());
        assert!(small.contains(3) && !small.contains(4));
        let big = KeySet::<4>::from_keys([7, 5, 3, 1, 5, 2, 8]);
        assert!(big.spilled());
        assert_eq!(big.as_slice(), [1, 2, 3, 5, 7, 8]);
        assert_eq!(big.len(), 6);
        assert!(big.contains(8) && !big.contains(4));
        assert!(big.contains_any(&[4, 7]) && !big.contains_any(&[4, 6]));
        let empty = KeySet::<4>::from_keys([]);
        assert!(empty.is_empty() && !empty.contains(0) && !empty.contains_any(&[0]));
        assert_eq!(empty, KeySet::default());
        // Exactly N keys stay inline.
        assert!(!KeySet::<4>::from_keys([4, 3, 2, 1]).spilled());
    }
}
