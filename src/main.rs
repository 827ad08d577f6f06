// mimalloc: replay and the daemon allocate many short-lived maps per event
// (parsed JSON lines); with it replay runs ~1.3× faster than with glibc malloc
// (BENCHMARKS.md). Built without transparent huge pages (Cargo.toml): with
// them every touched 2 MiB of heap counted whole in the daemon's RSS.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    return_freed_memory_at_once();
    complyd::cli::main()
}

/// `mi_option_purge_delay` in mimalloc.h's `mi_option_t` (v2 and v3); the
/// sys crate does not export the constant.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// mimalloc gives freed memory back to the OS only `purge_delay` (1 s) after
/// it was freed, and only when some thread next calls into the allocator
/// after that. An idle daemon does not, so it kept every page its start-up
/// had freed (8 MiB of its idle RSS; BENCHMARKS.md, "Idle RSS"). With 0 the
/// free that empties a range gives it back; replay and ingestion showed no
/// difference in speed.
#[allow(unsafe_code)]
fn return_freed_memory_at_once() {
    // SAFETY: stores an integer in mimalloc's option table. Not thread-safe,
    // so it runs first in `main`, before any thread is started.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
}
