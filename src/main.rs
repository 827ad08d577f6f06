fn main() -> std::process::ExitCode {
    complyd::cli::main()
}
