//! The store's big tables (key lines and records), allocated on huge
//! pages where the kernel allows.
//!
//! A lookup touches a key line and a record at random places in tables of
//! tens of megabytes. On 4 KiB pages nearly every such touch also misses
//! the TLB, and the page walk is a memory wait of its own before the line
//! itself is even requested (a prefetch waits for it too). On 2 MiB pages
//! the whole table needs a few dozen TLB entries. On Linux the tables are
//! marked `MADV_HUGEPAGE` before their first write, which gets huge pages
//! from transparent huge pages in its `madvise` mode (the usual default)
//! as well as in `always`; where the kernel refuses, or elsewhere than
//! Linux, they stay on normal pages and only the speed differs.
//! [`StoreStats::huge_page_bytes`](super::StoreStats::huge_page_bytes)
//! says how much was marked.
#![allow(unsafe_code)] // one madvise(2) call (FFI); see its SAFETY comment.

use super::Line;

/// Huge page size the advice is aligned to (x86_64 and most aarch64).
const HUGE_PAGE_BYTES: usize = 2 << 20;

/// A table of `len` zeroed lines, and how many of its bytes were marked
/// for huge pages (whole 2 MiB pages inside the table; 0 for a small
/// table or where the kernel refused).
pub(crate) fn zeroed_lines(len: usize) -> (Box<[Line]>, u64) {
    let mut table: Vec<Line> = Vec::with_capacity(len);
    let bytes = len * std::mem::size_of::<Line>();
    let marked = advise_huge(table.as_ptr() as usize, bytes);
    table.resize(len, Line::default());
    (table.into_boxed_slice(), marked as u64)
}

/// Marks the whole huge pages inside `[addr, addr + bytes)`, memory this
/// process allocated and has not yet written, `MADV_HUGEPAGE`. Returns the
/// bytes marked.
#[cfg(target_os = "linux")]
fn advise_huge(addr: usize, bytes: usize) -> usize {
    let start = addr.next_multiple_of(HUGE_PAGE_BYTES);
    let end = (addr + bytes) / HUGE_PAGE_BYTES * HUGE_PAGE_BYTES;
    if end <= start {
        return 0;
    }
    // SAFETY: `[start, end)` is page-aligned and lies inside an allocation
    // of `bytes` bytes from `addr` that the caller owns; MADV_HUGEPAGE
    // reads and writes none of it and only changes how the kernel backs
    // the range. A failure (a kernel without transparent huge pages)
    // changes nothing, and is reported as 0 bytes marked.
    let rc = unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
    if rc == 0 {
        end - start
    } else {
        0
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge(_addr: usize, _bytes: usize) -> usize {
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_is_zeroed_and_marks_no_more_than_its_bytes() {
        for len in [0, 1, 1000, 100_000] {
            let (table, marked) = zeroed_lines(len);
            assert_eq!(table.len(), len);
            assert!(table.iter().all(|l| *l == Line::default()));
            assert!(
                marked <= (len * 64) as u64,
                "{marked} bytes marked of {}",
                len * 64
            );
            assert_eq!(marked % HUGE_PAGE_BYTES as u64, 0);
        }
        // A table smaller than one huge page has no whole huge page in it.
        assert_eq!(zeroed_lines(1000).1, 0);
    }
}
