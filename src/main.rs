// mimalloc, and how it is set up: src/alloc.rs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    complyd::alloc::return_freed_memory_at_once();
    complyd::cli::main()
}
