//! Matcher throughput benchmark; see BENCHMARKS.md (`bash benches/run.sh`).
fn main() {
    eprintln!("benchmark not written yet");
}
