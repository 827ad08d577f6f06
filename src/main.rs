// mimalloc: replay and the daemon allocate many short-lived maps per event
// (parsed JSON lines); with it replay runs ~1.3× faster than with glibc malloc
// (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    complyd::cli::main()
}
