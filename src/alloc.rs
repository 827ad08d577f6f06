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
/// instead of 24.5. While a log is busy the daemon keeps freed memory for a
/// while instead ([`busy`]).
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

/// The purge delay while the daemon is busy: memory freed is kept for
/// reuse this long (× mimalloc's `arena_purge_mult`, 10) instead of being
/// given back at once and faulted in again by the next allocation.
const BUSY_PURGE_DELAY_MS: std::ffi::c_long = 100;

/// While a large batch is being worked through, freed memory is kept for
/// reuse: with it given back at once ([`return_freed_memory_at_once`]) the
/// ingestion bench's core thread spent ~18 % of its time in page faults,
/// `madvise` and preparing fresh pages, as each batch's events, records
/// and rows were freed and the next batch's allocated anew.
/// [`idle`] returns to giving memory back at once.
pub fn busy() {
    set_purge_delay(BUSY_PURGE_DELAY_MS);
}

/// Gives back the memory kept while busy and every page the calling thread
/// freed ([`give_back_freed_pages`]), then returns to giving freed memory
/// back at once.
pub fn idle() {
    // Forced while the delay is still set: with a delay of 0 mimalloc no
    // longer looks at ranges scheduled for a later purge.
    give_back_freed_pages();
    set_purge_delay(0);
}

#[allow(unsafe_code)]
fn set_purge_delay(ms: std::ffi::c_long) {
    // SAFETY: stores an integer in mimalloc's option table while other
    // threads may read it. The table's entries are plain `long`s that
    // mimalloc itself initialises lazily from whichever thread reads one
    // first; an aligned word is written and read whole on every target
    // complyd is built for, and either value is a valid delay: a thread
    // reading the old one purges a range sooner or later, nothing else.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, ms) };
}

#[cfg(test)]
mod tests {
    #[test]
    #[allow(unsafe_code)]
    fn busy_keeps_freed_memory_and_idle_gives_it_back_at_once() {
        // SAFETY: reads an integer from mimalloc's option table.
        let delay = || unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        super::busy();
        assert_eq!(delay(), super::BUSY_PURGE_DELAY_MS);
        super::idle();
        assert_eq!(delay(), 0);
    }
}
