//! The prefetch hint of [`FeatureStore::read_many`](super::FeatureStore::read_many):
//! asks the processor to start loading a line into cache, without waiting
//! for it.
//!
//! A plain load does the same job only as far as the processor's
//! out-of-order window reaches: each load must retire, and a batch's
//! lookups are long enough that only a few fit in the window at once. A
//! prefetch retires at once, so every line of a batch can be in flight
//! together. Elsewhere than x86_64, a plain load stands in.
#![allow(unsafe_code)] // one SSE prefetch instruction; see its SAFETY comment.

use super::Line;

/// Starts loading `line` into every cache level; returns at once.
#[inline]
pub(crate) fn prefetch(line: &Line) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: `_mm_prefetch` needs SSE, part of the x86_64 baseline
        // that every build for this target enables; a prefetch is a hint
        // that cannot fault and changes no memory, and the address comes
        // from a live reference.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(line).cast()) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        std::hint::black_box(line.0[0]);
    }
}
