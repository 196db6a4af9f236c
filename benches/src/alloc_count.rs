//! [`CountingAllocator`]: a global allocator that counts heap allocations,
//! so a benchmark can report allocations per request in steady state.
//!
//! A library cannot install a global allocator for the program that links
//! it, so the program does, in its crate root:
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOCATOR: cx_benches::alloc_count::CountingAllocator =
//!     cx_benches::alloc_count::CountingAllocator;
//! ```
//!
//! The counters live in this module, not in the allocator value, so the
//! library reads them wherever the allocator was installed. Each thread
//! has its own counts ([`CountingAllocator::thread_counts`]): a measurement
//! on one thread is not disturbed by other threads (a test harness runs
//! tests side by side). [`CountingAllocator::is_installed`] tells whether
//! the program installed it: otherwise every count stays zero, which must
//! not be read as "allocates nothing".
//!
//! Counted: every `alloc`, `alloc_zeroed` and `realloc` (a `realloc` may
//! move the block, and is the growth a no-allocation claim rules out).
//! Freeing is not counted.

// This module opts in to `unsafe_code` (denied in the workspace): a global
// allocator is an `unsafe impl GlobalAlloc`. Every method only counts, then
// forwards its arguments unchanged to mimalloc, the allocator `cx` itself
// installs, so the servers `cx-bench all` runs in process allocate as the
// real one does.
#![allow(unsafe_code)]

use mimalloc::MiMalloc;
use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::hint::black_box;

/// Heap allocations counted on one thread, since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AllocCounts {
    /// Calls to `alloc`, `alloc_zeroed` and `realloc`.
    pub allocations: u64,
    /// Bytes those calls asked for (a `realloc` counts its new size).
    pub allocated_bytes: u64,
}

impl AllocCounts {
    /// The counts made between `earlier` and `self` (the same thread's).
    pub fn since(self, earlier: Self) -> Self {
        Self {
            allocations: self.allocations.wrapping_sub(earlier.allocations),
            allocated_bytes: self.allocated_bytes.wrapping_sub(earlier.allocated_bytes),
        }
    }
}

thread_local! {
    // `const` initialisers and no destructor: reading them never allocates
    // and never fails, even while the thread is being torn down.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    static ALLOCATED_BYTES: Cell<u64> = const { Cell::new(0) };
}

/// mimalloc, counting each allocation on the calling thread.
/// Install it with `#[global_allocator]` in the program (see the module
/// documentation).
#[derive(Clone, Copy, Debug, Default)]
pub struct CountingAllocator;

impl CountingAllocator {
    /// The calling thread's counts so far (zeros if not installed).
    pub fn thread_counts() -> AllocCounts {
        AllocCounts {
            allocations: ALLOCATIONS.try_with(Cell::get).unwrap_or(0),
            allocated_bytes: ALLOCATED_BYTES.try_with(Cell::get).unwrap_or(0),
        }
    }

    /// Whether this allocator is the program's global allocator: makes one
    /// deliberate allocation and checks that it was counted.
    pub fn is_installed() -> bool {
        let before = Self::thread_counts();
        drop(black_box(Box::new(black_box(0_u64))));
        Self::thread_counts().allocations > before.allocations
    }
}

/// Counts one allocation of `bytes` on the calling thread.
fn count(bytes: usize) {
    // `try_with` fails only after the thread's locals are destroyed, and
    // these have no destructor; an uncounted allocation then is harmless.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get().wrapping_add(1)));
    let _ = ALLOCATED_BYTES.try_with(|n| n.set(n.get().wrapping_add(bytes as u64)));
}

// SAFETY: every method forwards its arguments unchanged to `MiMalloc`, which
// upholds `GlobalAlloc`'s contract; counting touches only this thread's
// `Cell`s, never allocates, and cannot unwind.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: the caller's `layout` contract (non-zero size) is passed on as is.
        unsafe { MiMalloc.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { MiMalloc.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `MiMalloc` (every allocation above
        // forwards to it) with this `layout`, as the caller guarantees.
        unsafe { MiMalloc.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: `ptr` came from `MiMalloc` with `layout`, and `new_size`
        // meets `realloc`'s contract, as the caller guarantees.
        unsafe { MiMalloc.realloc(ptr, layout, new_size) }
    }
}

#[cfg(test)]
mod tests {
    use super::{AllocCounts, CountingAllocator};

    #[test]
    fn not_installed_in_this_test_binary() {
        assert!(!CountingAllocator::is_installed());
        assert_eq!(CountingAllocator::thread_counts(), AllocCounts::default());
    }

    #[test]
    fn since_subtracts() {
        let a = AllocCounts {
            allocations: 5,
            allocated_bytes: 100,
        };
        let b = AllocCounts {
            allocations: 7,
            allocated_bytes: 164,
        };
        assert_eq!(
            b.since(a),
            AllocCounts {
                allocations: 2,
                allocated_bytes: 64
            }
        );
    }
}
