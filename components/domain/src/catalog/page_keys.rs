//! [`PageCategoryKeys`]: a request's page categories hashed once, for
//! matching them against every offer's categories
//! ([`Catalog::category_match_keys`]).

use cx_features::RequestContext;

use super::limits;
#[cfg(doc)]
use super::{category_covers, item_hash, Catalog};

/// Most keys a [`PageCategoryKeys`] holds. A request with more (page
/// categories of many `-` parts) is matched by strings instead.
pub const PAGE_CATEGORY_KEYS_MAX: usize = 64;

/// A request's page categories as [`Catalog::category_match_keys`] reads
/// them, taken once per request: the [`item_hash`] of every prefix of each
/// of the first [`limits::CONTEXT_ITEMS_MAX`] page categories that ends
/// where a `-` starts or at the category's end (`IAB1-2` gives `IAB1` and
/// `IAB1-2`). An offer category covers a page category exactly when it
/// equals one of that category's prefixes ([`category_covers`]); prefixes
/// longer than [`limits::CATEGORY_BYTES_MAX`] cannot and are skipped.
///
/// A fixed array on the stack, not a `Vec`: the decide stage takes one per
/// request and must not allocate.
pub struct PageCategoryKeys<'a> {
    pub(super) ctx: &'a RequestContext,
    hashes: [u64; PAGE_CATEGORY_KEYS_MAX],
    len: usize,
    /// More prefixes than [`PAGE_CATEGORY_KEYS_MAX`]: match by strings.
    pub(super) overflowed: bool,
}

impl<'a> PageCategoryKeys<'a> {
    /// The keys of `ctx`'s page categories.
    pub fn of(ctx: &'a RequestContext) -> Self {
        let mut keys = Self {
            ctx,
            hashes: [0; PAGE_CATEGORY_KEYS_MAX],
            len: 0,
            overflowed: false,
        };
        for page in ctx.categories.iter().take(limits::CONTEXT_ITEMS_MAX) {
            let bytes = page.as_bytes();
            let ends = bytes
                .iter()
                .enumerate()
                .filter(|&(_, &b)| b == b'-')
                .map(|(j, _)| j)
                .chain(std::iter::once(bytes.len()));
            for end in ends.take_while(|&end| end <= limits::CATEGORY_BYTES_MAX) {
                if end > 0 {
                    keys.push(xxhash_rust::xxh3::xxh3_64(&bytes[..end]));
                }
            }
        }
        keys
    }

    fn push(&mut self, hash: u64) {
        match self.hashes.get_mut(self.len) {
            Some(slot) => {
                *slot = hash;
                self.len += 1;
            }
            None => self.overflowed = true,
        }
    }

    /// The prefix hashes, in page order; incomplete when
    /// [`Self::overflowed`].
    pub fn as_slice(&self) -> &[u64] {
        &self.hashes[..self.len]
    }

    /// Whether the request had more prefixes than [`PAGE_CATEGORY_KEYS_MAX`]
    /// (matching then compares strings).
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }
}
