//! The allocator settings of the `complyd` binary, shared with the benches
//! so that what they measure is what the binary does.
//!
//! The binary (and each bench) declares mimalloc as its global allocator:
//! replay and the daemon allocate many short-lived values per event, and
//! with it replay runs ~1.3× faster than with glibc malloc (BENCHMARKS.md).
//! It is built without transparent huge pages (Cargo.toml): with them every
//! touched 2 MiB of heap counted whole in the daemon's RSS.

/// `mi_option_purge_delay` in mimalloc.h's `mi_option_t` (v2 and v3); the
/// sys crate does not export the constant.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// mimalloc gives freed memory back to the OS only `purge_delay` after it
/// was freed, and only when the thread that freed it next calls into the
/// allocator. An idle daemon does not, so it kept every page its start-up
/// had freed (8 MiB of its idle RSS; BENCHMARKS.md, "Idle RSS"). With 0 the
/// free that empties a range gives it back. Measured cost: ~3 % of the
/// ingestion rate at 1 M events (121k vs 125k events per core-second), up
/// to ~10 % in short runs; giving memory back from an idle hook instead
/// (`mi_collect` when a thread parks) left the idle daemon at 27.5 MiB
/// instead of 24.5.
///
/// # Safety
///
/// Call it first in `main`, before any other thread exists: mimalloc's
/// option table is written without synchronisation.
#[allow(unsafe_code)]
pub unsafe fn return_freed_memory_at_once() {
    // SAFETY: stores an integer in mimalloc's option table; the caller
    // guarantees no other thread exists yet.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
}

/// Gives back to the OS, now, the memory that the calling thread freed:
/// mimalloc otherwise purges a page left empty at that thread's next
/// allocation, which an idle thread does not make (see
/// [`return_freed_memory_at_once`]). For a thread about to idle after
/// freeing much (the core, giving back the rules' regex caches). Forced:
/// the normal collection left the freed caches resident (measured: the
/// idle daemon's RssAnon 13.1 MiB with it, 10.7 forced).
#[allow(unsafe_code)]
pub fn give_back_freed_pages() {
    // SAFETY: a plain call into mimalloc, callable from any thread at any
    // time; it collects the calling thread's heap and purges the arenas'
    // free ranges. Without mimalloc as the global allocator (the lib's
    // tests) it finds nothing to collect.
    unsafe { libmimalloc_sys::mi_collect(true) };
}
