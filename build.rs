//! Link settings of the `complyd` binary.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        // Relative relocations packed (DT_RELR, glibc 2.36+, i.e. Debian
        // 12): the dynamic loader read 390 KB of `.rela.dyn` at every start,
        // resident for good in the daemon's file-backed RSS; packed, they
        // take 5 KB (BENCHMARKS.md, "Idle RSS").
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
