//! Replay throughput: a generated log of activity events through all the
//! shipped packs (content rules on reply and caption text included).
//!
//! ```text
//! cargo bench --bench replay -- [--events N] [--runs R] [--parse]
//! ```
//!
//! Generates N events (default 1,000,000) spread over 2026 — questions and
//! replies (some late, some never answered), complaints, submissions,
//! reviews and publications, logins, password changes, appraisals — writes
//! them to a temporary JSON Lines file, and times `complyd::replay::replay`
//! end to end (reading, parsing, the reorder window, every rule). Prints
//! events/s (median of R runs), peak resident memory and the obligations
//! still held at the end.
//!
//! `--parse` times only `parse_line` on the same lines (median of R passes),
//! each event dropped at once, and then with a copy of each made and dropped
//! as a remembered fact is (ns/line).

use std::path::{Path, PathBuf};
use std::time::Instant;

use complyd::engine::Env;

#[path = "common/activity_log.rs"]
mod activity_log;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[allow(unsafe_code)]
fn main() {
    // As the binary does (src/alloc.rs). SAFETY: first in `main`, no other
    // thread started yet.
    unsafe { complyd::alloc::return_freed_memory_at_once() };
    let mut events = 1_000_000usize;
    let mut runs = 3usize;
    let mut parse_only = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--events" => {
                events = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--events N")
            }
            "--runs" => runs = args.next().and_then(|v| v.parse().ok()).expect("--runs N"),
            "--parse" => parse_only = true,
            _ => {} // cargo passes --bench
        }
    }
    let dir = std::env::temp_dir().join(format!("complyd-replay-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let log: PathBuf = dir.join("activity.jsonl");
    activity_log::generate(&log, events).expect("write the generated log");
    let bytes = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    if parse_only {
        parse_lines(&log, runs);
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    let rules_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let rules = complyd::rules::load(&rules_dir).unwrap_or_else(|e| panic!("{e}"));
    let env = Env {
        calendar: complyd::calendar::Calendar::default(),
        lists: rules.lists.clone(),
    };
    let now: jiff::Timestamp = "2027-01-31T00:00:00+08:00".parse().unwrap();
    let rss_before = peak_rss_kib();
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let start = Instant::now();
        let out = complyd::replay::replay(
            &rules,
            &env,
            std::slice::from_ref(&log),
            now,
            complyd::replay::DEFAULT_ALLOWED_LATENESS,
            &mut |r| {
                std::hint::black_box(r);
            },
        );
        times.push(start.elapsed().as_secs_f64());
        last = Some(out);
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let out = last.expect("at least one run");
    println!(
        "replay: {} events ({:.1} MB) through {} rules in {:.2} s (median of {runs}; min {:.2}) = {:.0} events/s",
        out.events,
        bytes as f64 / 1e6,
        rules.rules.len(),
        median,
        times[0],
        out.events as f64 / median
    );
    println!(
        "violations {}, malformed {}, too late {}, obligations held at the end {}, peak RSS {} MiB (before replay {} MiB)",
        out.violations,
        out.malformed.len(),
        out.too_late,
        out.open_obligations,
        peak_rss_kib() / 1024,
        rss_before / 1024
    );
    if std::env::var_os("KEEP_LOG").is_some() {
        eprintln!("log kept at {}", log.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// `parse_line` alone on every line of `log`, each event dropped at once
/// as the engine does; then again with a copy of each (as `engine::Fact::of`
/// makes) dropped too: ns per line, median of `runs`.
fn parse_lines(log: &Path, runs: usize) {
    let text = std::fs::read_to_string(log).expect("read the log");
    let lines: Vec<&str> = text.lines().collect();
    let evidence = complyd::event::evidence("activity.jsonl", 1);
    let pass = |copy: bool| {
        let start = Instant::now();
        for l in &lines {
            let ev = complyd::event::parse_line(l, evidence.clone()).expect("a valid line");
            if copy {
                drop(std::hint::black_box(ev.clone()));
            }
            drop(std::hint::black_box(ev));
        }
        start.elapsed().as_secs_f64() * 1e9 / lines.len() as f64
    };
    let (mut parse, mut copied) = (Vec::new(), Vec::new());
    for _ in 0..runs.max(1) {
        parse.push(pass(false));
        copied.push(pass(true));
    }
    parse.sort_by(f64::total_cmp);
    copied.sort_by(f64::total_cmp);
    let (p, c) = (parse[parse.len() / 2], copied[copied.len() / 2]);
    println!(
        "parse_line: {} lines, {p:.0} ns/line parsed and dropped (median of {runs}); with a copy made and dropped {c:.0} ns (+{:.0})",
        lines.len(),
        c - p
    );
}
