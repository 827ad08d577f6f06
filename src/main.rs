// mimalloc, and how it is set up: src/alloc.rs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[allow(unsafe_code)]
fn main() -> std::process::ExitCode {
    // SAFETY: first in `main`, no other thread started yet.
    unsafe { complyd::alloc::return_freed_memory_at_once() };
    complyd::cli::main()
}
