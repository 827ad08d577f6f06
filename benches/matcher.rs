//! Matcher throughput benchmark; see BENCHMARKS.md (`bash benches/run.sh`).
//!
//! Times the full phrase path of `complyd::matcher::Matcher::scan_phrases`
//! (fold every character — width, case, Traditional→Simplified, skip
//! interference — run the automaton, map every overlapping match back to
//! byte offsets in the original text) over a corpus held in memory and split
//! into chunks at line boundaries, on one thread.
//!
//! ```text
//! cargo bench --bench matcher -- --corpus FILE --dict FILE [--dict FILE …]
//!     [--runs N] [--chunk BYTES] [--no-analysis]
//! ```
//!
//! Without arguments it uses the inputs `benches/run.sh` left in
//! `target/bench-data`, or says how to make them. Dictionaries have one
//! phrase per line. For each dictionary it prints a
//! human summary on stderr and one tab-separated `RESULT` line on stdout:
//!
//! ```text
//! RESULT complyd <dict> <phrases read> <distinct folded> <rejected>
//!        <build s> <automaton bytes> <matches> <MB/s> <corpus bytes> <chunks>
//!        <exact> <folded> <across>
//! ```
//!
//! Build and scan times are medians of `--runs` runs (default 5); MB/s uses
//! 1 MB = 10^6 bytes. The match-kind split (`exact`: the original span is
//! literally a dictionary line; `across`: the span contains characters the
//! matcher skips, such as spaces, punctuation or a line break; `folded`: the
//! rest, which only match after width/case/Traditional→Simplified folding) is
//! computed in a separate untimed pass, so it can be set beside the counts of
//! literal matchers (hyperscan all matches ≈ `exact`).

use std::collections::HashSet;
use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

use complyd::matcher::{Matcher, MatcherBuilder};
use complyd::normalize::folder;

const DEFAULT_CHUNK: usize = 64 * 1024;
const DEFAULT_RUNS: usize = 5;

struct Args {
    corpus: String,
    dicts: Vec<String>,
    runs: usize,
    chunk: usize,
    analysis: bool,
}

fn usage() -> String {
    "usage: cargo bench --bench matcher -- --corpus FILE --dict FILE [--dict FILE ...] \
     [--runs N] [--chunk BYTES] [--no-analysis]"
        .to_string()
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut args = Args {
        corpus: String::new(),
        dicts: Vec::new(),
        runs: DEFAULT_RUNS,
        chunk: DEFAULT_CHUNK,
        analysis: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            // cargo passes `--bench` to harness = false targets.
            "--bench" => {}
            "--corpus" => args.corpus = value("--corpus")?,
            "--dict" => args.dicts.push(value("--dict")?),
            "--runs" => {
                args.runs = value("--runs")?
                    .parse()
                    .map_err(|e| format!("--runs: {e}"))?
            }
            "--chunk" => {
                args.chunk = value("--chunk")?
                    .parse()
                    .map_err(|e| format!("--chunk: {e}"))?
            }
            "--no-analysis" => args.analysis = false,
            "-h" | "--help" => return Err(usage()),
            other => return Err(format!("unknown argument {other:?}\n{}", usage())),
        }
    }
    if args.corpus.is_empty() && args.dicts.is_empty() {
        // Plain `cargo bench`: use the inputs of the last `benches/run.sh`, if any.
        let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
        let corpus = data.join("corpus.txt");
        if !corpus.exists() {
            return Ok(None);
        }
        args.corpus = corpus.display().to_string();
        for size in ["1k", "10k", "100k"] {
            let d = data.join(format!("dict-{size}.txt"));
            if d.exists() {
                args.dicts.push(d.display().to_string());
            }
        }
    }
    if args.corpus.is_empty() || args.dicts.is_empty() {
        return Err(usage());
    }
    args.runs = args.runs.max(1);
    args.chunk = args.chunk.max(1);
    Ok(Some(args))
}

/// Splits `text` into pieces of about `size` bytes, each ending with a line
/// break (the last one may not): a piece ends at the last `\n` at or before
/// `size` bytes, or at the first one after if the line is longer.
fn chunks(text: &str, size: usize) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    while start < bytes.len() {
        let limit = (start + size).min(bytes.len());
        let end = if limit == bytes.len() {
            limit
        } else {
            match bytes[start..limit].iter().rposition(|&b| b == b'\n') {
                Some(p) => start + p + 1,
                None => bytes[limit..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(bytes.len(), |p| limit + p + 1),
            }
        };
        out.push(&text[start..end]);
        start = end;
    }
    out
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

struct Built {
    matcher: Matcher,
    rejected: usize,
}

fn build(phrases: &[&str]) -> Built {
    let mut b = MatcherBuilder::new();
    let slot = b.new_slot();
    let mut rejected = 0;
    for p in phrases {
        if b.add_phrase(slot, p).is_err() {
            rejected += 1;
        }
    }
    Built {
        matcher: b.build(),
        rejected,
    }
}

/// One timed pass: every match of every chunk, offsets folded into a
/// checksum so that the offset mapping cannot be optimised away.
fn scan_all(m: &Matcher, pieces: &[&str]) -> (u64, usize) {
    let mut count = 0u64;
    let mut check = 0usize;
    for piece in pieces {
        m.scan_phrases(black_box(piece), |id, start, end| {
            count += 1;
            check = check.wrapping_add(start ^ end ^ id as usize);
        });
    }
    (count, check)
}

/// Untimed: classifies every match by what it took to find it.
fn analyse(m: &Matcher, pieces: &[&str], raw: &HashSet<&str>) -> (u64, u64, u64) {
    let f = folder();
    let (mut exact, mut folded, mut across) = (0u64, 0u64, 0u64);
    for piece in pieces {
        m.scan_phrases(piece, |_, start, end| {
            let span = &piece[start..end];
            if raw.contains(span) {
                exact += 1;
            } else if span.chars().any(|c| f.fold(c).is_none()) {
                across += 1;
            } else {
                folded += 1;
            }
        });
    }
    (exact, folded, across)
}

fn run(args: &Args) -> Result<(), String> {
    let corpus = std::fs::read_to_string(&args.corpus)
        .map_err(|e| format!("reading corpus {}: {e}", args.corpus))?;
    let pieces = chunks(&corpus, args.chunk);
    assert_eq!(pieces.iter().map(|p| p.len()).sum::<usize>(), corpus.len());
    assert!(
        pieces[..pieces.len().saturating_sub(1)]
            .iter()
            .all(|p| p.ends_with('\n'))
    );
    let mb = corpus.len() as f64 / 1e6;
    eprintln!(
        "corpus {}: {:.1} MB, {} chunks of ~{} bytes; {} runs; one thread",
        args.corpus,
        mb,
        pieces.len(),
        args.chunk,
        args.runs
    );
    for dict in &args.dicts {
        let text =
            std::fs::read_to_string(dict).map_err(|e| format!("reading dictionary {dict}: {e}"))?;
        let phrases: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();

        let mut build_times = Vec::with_capacity(args.runs);
        let mut built = None;
        for _ in 0..args.runs {
            drop(built.take());
            let t = Instant::now();
            let b = build(black_box(&phrases));
            build_times.push(t.elapsed().as_secs_f64());
            built = Some(b);
        }
        let Built { matcher, rejected } = built.expect("at least one run");
        let build_s = median(&mut build_times);

        // Warm-up pass (page faults, caches), then the timed runs.
        let (matches, check) = scan_all(&matcher, &pieces);
        let mut scan_times = Vec::with_capacity(args.runs);
        for _ in 0..args.runs {
            let t = Instant::now();
            let r = scan_all(&matcher, &pieces);
            scan_times.push(t.elapsed().as_secs_f64());
            if r != (matches, check) {
                return Err(format!(
                    "{dict}: runs disagree: {r:?} vs {:?}",
                    (matches, check)
                ));
            }
        }
        let spread = {
            let lo = scan_times.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = scan_times.iter().copied().fold(0.0, f64::max);
            (lo, hi)
        };
        let scan_s = median(&mut scan_times);
        let mbps = mb / scan_s;

        let (exact, folded, across) = if args.analysis {
            let raw: HashSet<&str> = phrases.iter().copied().collect();
            analyse(&matcher, &pieces, &raw)
        } else {
            (0, 0, 0)
        };

        eprintln!(
            "complyd  {dict}: {} phrases ({} distinct after folding, {rejected} rejected), \
             build {build_s:.3} s, automaton {:.2} MB, {matches} matches \
             (exact {exact}, folded {folded}, across skipped chars {across}), \
             scan {scan_s:.3} s (min {:.3}, max {:.3}) = {mbps:.1} MB/s",
            phrases.len(),
            matcher.phrase_count(),
            matcher.automaton_bytes() as f64 / 1e6,
            spread.0,
            spread.1,
        );
        println!(
            "RESULT\tcomplyd\t{dict}\t{}\t{}\t{rejected}\t{build_s:.4}\t{}\t{matches}\t{mbps:.2}\t{}\t{}\t{exact}\t{folded}\t{across}",
            phrases.len(),
            matcher.phrase_count(),
            matcher.automaton_bytes(),
            corpus.len(),
            pieces.len(),
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let result = parse_args().and_then(|a| match a {
        Some(a) => run(&a),
        None => {
            eprintln!(
                "no benchmark inputs in target/bench-data: run `bash benches/run.sh` \
                 (downloads them and runs every tool; see BENCHMARKS.md)"
            );
            Ok(())
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
