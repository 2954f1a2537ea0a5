//! glibc `malloc` settings for a relay that allocates and frees the same buffer sizes all
//! day. The reverse-invoke link allocates a zeroed body per multiplexer frame; with glibc's
//! defaults the freed top of a thread's heap is returned to the kernel and faulted in again
//! at the next frame (page faults and page clearing were ~5 % of a link's CPU). A fixed trim
//! threshold keeps up to that much free memory per arena instead.
//!
//! `mallopt` has no safe wrapper, so this is the one `unsafe` block of the program; it lives
//! in the binary so the library can forbid unsafe code. Linux with glibc only: elsewhere (or
//! with another C library) the allocator keeps its defaults.

#![cfg_attr(not(all(target_os = "linux", target_env = "gnu")), allow(dead_code))]

/// Free memory a `malloc` arena keeps rather than returning it to the kernel.
pub const TRIM_THRESHOLD: usize = 4 << 20;

/// Allocations from this size up get pages of their own (`mmap`). Setting the trim
/// threshold fixes glibc's otherwise self-adjusting mmap threshold at its 128 KiB start, so
/// relay buffers grown to a large `-B`/`-Q` bound would be mapped and unmapped each time;
/// 1 MiB keeps them in the heap.
pub const MMAP_THRESHOLD: usize = 1 << 20;

/// Applies the settings (glibc only; a no-op elsewhere); call once at start, before threads
/// are created.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let int = |v: usize| libc::c_int::try_from(v).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt only changes allocator parameters; no pointer is passed.
        unsafe {
            libc::mallopt(libc::M_TRIM_THRESHOLD, int(TRIM_THRESHOLD));
            libc::mallopt(libc::M_MMAP_THRESHOLD, int(MMAP_THRESHOLD));
        }
    }
}
