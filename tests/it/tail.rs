//! The tailer against the real logrotate (Debian package; scripts/test.sh
//! installs it): a writer appends numbered lines while logrotate rotates the
//! log by rename (`create`) and by `copytruncate`, and a tailer reading at
//! the same time — dropped once and re-created from its saved cursor across
//! a rotation, as a restarted daemon would — must deliver every line once,
//! in order.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use complyd::daemon::tail::{Cursor, TailLimits, TailNote, Tailer};

/// Every line is 256 bytes, a divisor of the page size, so that no write
/// straddles a page and a concurrent copy (copytruncate) never sees half
/// a line.
const LINE: usize = 256;

fn logrotate() -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join("logrotate"))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!(
            "logrotate is not installed; these tests run the real one. \
             Install it (apt-get install logrotate) or run scripts/test.sh, which does."
        )
    })
}

fn line(n: u64) -> Vec<u8> {
    let head =
        format!("{{\"ts\":\"2026-11-26T10:00:00+08:00\",\"type\":\"message\",\"n\":{n},\"pad\":\"");
    let mut l = head.into_bytes();
    l.resize(LINE - 3, b'x');
    l.extend_from_slice(b"\"}\n");
    l
}

fn number(text: &str) -> u64 {
    let v: serde_json::Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text:?}"));
    v["n"].as_u64().unwrap()
}

/// Appends lines 0, 1, … with O_APPEND until told to stop, and returns how
/// many; with `reopen`, before each line checks whether the path is a new
/// file and moves to it (what a logger that cooperates with `create` does).
fn writer(path: PathBuf, reopen: bool, stop: Arc<AtomicBool>) -> thread::JoinHandle<u64> {
    thread::spawn(move || {
        let open = |p: &Path| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .unwrap()
        };
        let mut f = open(&path);
        let mut n = 0;
        while !stop.load(Ordering::SeqCst) {
            if reopen
                && let Ok(m) = fs::metadata(&path)
                && m.ino() != f.metadata().unwrap().ino()
            {
                f = open(&path);
            }
            f.write_all(&line(n)).unwrap();
            n += 1;
            if n % 20 == 0 {
                thread::sleep(Duration::from_micros(500));
            }
        }
        n
    })
}

const RUN: u8 = 0;
const GO_DOWN: u8 = 1;
const DOWN: u8 = 2;
const GO_UP: u8 = 3;

struct Got {
    numbers: Vec<u64>,
    notes: Vec<TailNote>,
    restarted_in: Option<PathBuf>,
}

/// Reads until the writer is done and nothing more comes; obeys `ctl` to
/// go down (drop the tailer, keep only its last cursor) and come back.
fn tailer(path: PathBuf, ctl: Arc<AtomicU8>, done: Arc<AtomicBool>) -> thread::JoinHandle<Got> {
    thread::spawn(move || {
        let limits = TailLimits::default();
        let mut t = Some(Tailer::new(path.clone(), None, limits));
        let mut cursor: Option<Cursor> = None;
        let mut got = Got {
            numbers: Vec::new(),
            notes: Vec::new(),
            restarted_in: None,
        };
        let mut idle = 0;
        let mut up_again = false;
        loop {
            match ctl.load(Ordering::SeqCst) {
                GO_DOWN => {
                    t = None;
                    ctl.store(DOWN, Ordering::SeqCst);
                    continue;
                }
                DOWN => {
                    thread::sleep(Duration::from_millis(1));
                    continue;
                }
                GO_UP => {
                    t = Some(Tailer::new(path.clone(), cursor.clone(), limits));
                    up_again = true;
                    ctl.store(RUN, Ordering::SeqCst);
                }
                _ => {}
            }
            let Some(tail) = t.as_mut() else { continue };
            let b = tail.read(256 << 10);
            if up_again && let Some(l) = b.lines.first() {
                got.restarted_in = Some(l.file.to_path_buf());
                up_again = false;
            }
            for l in &b.lines {
                let text = l
                    .text
                    .as_ref()
                    .unwrap_or_else(|e| panic!("{}:{}: {e}", l.file.display(), l.line));
                got.numbers.push(number(text));
            }
            got.notes.extend(b.notes.iter().cloned());
            cursor = Some(b.cursor.clone());
            if b.is_empty() {
                if done.load(Ordering::SeqCst) {
                    idle += 1;
                    if idle > 50 {
                        return got;
                    }
                }
                thread::sleep(Duration::from_millis(1));
            } else {
                idle = 0;
            }
        }
    })
}

struct Scenario {
    /// Directives of the log's block in the logrotate config.
    directives: &'static str,
    reopen: bool,
    rotations: usize,
    spacing: Duration,
    /// The tailer is down during this rotation (0-based).
    down_during: usize,
}

struct Outcome {
    dir: tempfile::TempDir,
    got: Got,
    /// Lines written.
    total: u64,
}

fn run(s: Scenario) -> Outcome {
    let logrotate = logrotate();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("activity.jsonl");
    let conf = dir.path().join("logrotate.conf");
    let state = dir.path().join("logrotate.state");
    fs::write(
        &conf,
        format!("{} {{\n{}\n}}\n", log.display(), s.directives),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&conf, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&log, b"").unwrap();

    let ctl = Arc::new(AtomicU8::new(RUN));
    let done = Arc::new(AtomicBool::new(false));
    let reader = tailer(log.clone(), ctl.clone(), done.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(log.clone(), s.reopen, stop.clone());
    for r in 0..s.rotations {
        thread::sleep(s.spacing);
        let down = r == s.down_during;
        if down {
            ctl.store(GO_DOWN, Ordering::SeqCst);
            let t0 = Instant::now();
            while ctl.load(Ordering::SeqCst) != DOWN {
                assert!(
                    t0.elapsed() < Duration::from_secs(10),
                    "tailer did not go down"
                );
                thread::sleep(Duration::from_millis(1));
            }
        }
        let out = Command::new(&logrotate)
            .arg("-s")
            .arg(&state)
            .arg("-f")
            .arg(&conf)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "logrotate failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        if down {
            // Lines keep coming while the daemon is down.
            thread::sleep(s.spacing / 2);
            ctl.store(GO_UP, Ordering::SeqCst);
        }
    }
    // Lines after the last rotation too: the writer moves to the new file.
    thread::sleep(s.spacing);
    stop.store(true, Ordering::SeqCst);
    let total = w.join().unwrap();
    done.store(true, Ordering::SeqCst);
    let got = reader.join().unwrap();
    Outcome { dir, got, total }
}

/// Numbers in the uncompressed files of the directory: what a reader could
/// have found on disk.
fn on_disk(dir: &Path) -> Vec<u64> {
    let mut all = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("activity.jsonl") {
            continue;
        }
        let bytes = if name.ends_with(".gz") {
            let out = Command::new("gzip").arg("-dc").arg(&p).output().unwrap();
            assert!(out.status.success());
            out.stdout
        } else {
            fs::read(&p).unwrap()
        };
        for l in String::from_utf8(bytes).unwrap().lines() {
            all.push(number(l));
        }
    }
    all.sort_unstable();
    all
}

fn assert_in_order_once(numbers: &[u64]) {
    for w in numbers.windows(2) {
        assert!(w[0] < w[1], "{} then {}: twice or out of order", w[0], w[1]);
    }
}

#[test]
fn logrotate_create_by_rename_loses_nothing() {
    let o = run(Scenario {
        directives: "rotate 100\ncreate\ncompress\ndelaycompress\nmissingok",
        reopen: true,
        rotations: 5,
        spacing: Duration::from_millis(150),
        down_during: 2,
    });
    assert_in_order_once(&o.got.numbers);
    assert_eq!(o.got.numbers, (0..o.total).collect::<Vec<_>>());
    assert_eq!(on_disk(o.dir.path()), o.got.numbers);
    let rotated = o
        .got
        .notes
        .iter()
        .filter(|n| matches!(n, TailNote::Rotated { .. }))
        .count();
    assert_eq!(rotated, 5, "{:?}", o.got.notes);
    // Older generations were compressed meanwhile and never read.
    assert!(o.dir.path().join("activity.jsonl.3.gz").exists());
    assert!(
        !o.got
            .notes
            .iter()
            .any(|n| matches!(n, TailNote::Lost { .. } | TailNote::Error { .. }))
    );
    // The restarted tailer began in the rotated file the cursor named.
    let first = o.got.restarted_in.expect("lines after the restart");
    assert!(
        first.to_string_lossy().ends_with("activity.jsonl.1"),
        "{}",
        first.display()
    );
}

#[test]
fn logrotate_create_with_dateext() {
    let o = run(Scenario {
        directives: "rotate 100\ncreate\ndateext\ndateformat -%Y%m%d-%s\nmissingok",
        reopen: true,
        rotations: 3,
        // dateext names are unique per second.
        spacing: Duration::from_millis(1100),
        down_during: 1,
    });
    assert_eq!(o.got.numbers, (0..o.total).collect::<Vec<_>>());
    let first = o.got.restarted_in.expect("lines after the restart");
    assert!(
        first.to_string_lossy().contains("activity.jsonl-20"),
        "{}",
        first.display()
    );
}

#[test]
fn logrotate_copytruncate_loses_only_what_no_file_holds() {
    let o = run(Scenario {
        directives: "rotate 100\ncopytruncate\nnocompress\nmissingok",
        reopen: false,
        rotations: 5,
        spacing: Duration::from_millis(150),
        down_during: 2,
    });
    assert_in_order_once(&o.got.numbers);
    // Lines written between logrotate's copy and its truncate are in no
    // file; every line that is in a file must have come, once.
    let disk = on_disk(o.dir.path());
    let got: std::collections::HashSet<u64> = o.got.numbers.iter().copied().collect();
    let missed: Vec<u64> = disk.iter().copied().filter(|n| !got.contains(n)).collect();
    assert!(missed.is_empty(), "on disk but not delivered: {missed:?}");
    let disk: std::collections::HashSet<u64> = disk.into_iter().collect();
    let unrecoverable = (0..o.total)
        .filter(|n| !got.contains(n) && !disk.contains(n))
        .count();
    eprintln!(
        "copytruncate: {unrecoverable} of {} lines were written between copy and truncate",
        o.total
    );
    let truncations = o
        .got
        .notes
        .iter()
        .filter(|n| matches!(n, TailNote::Truncated { .. }))
        .count();
    assert_eq!(truncations, 5, "{:?}", o.got.notes);
}

/// Read throughput on a 1 GB log of 200-byte lines (from the page cache):
/// `cargo test --release --test it tail::throughput -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement: run it in release mode"]
fn throughput() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("activity.jsonl");
    let mut l = br#"{"ts":"2026-11-26T10:00:00+08:00","type":"message","account":"ks-1024","user":"u-77","text":""#.to_vec();
    l.resize(197, b'x');
    l.extend_from_slice(b"\"}\n");
    let block: Vec<u8> = l.iter().copied().cycle().take(l.len() * 5000).collect();
    let mut f = std::io::BufWriter::new(fs::File::create(&log).unwrap());
    let mut written = 0u64;
    while written < 1_000_000_000 {
        f.write_all(&block).unwrap();
        written += block.len() as u64;
    }
    f.flush().unwrap();
    drop(f);
    let lines_expected = written / l.len() as u64;

    let mut t = Tailer::new(log, None, TailLimits::default());
    let t0 = Instant::now();
    let mut lines = 0u64;
    let mut bytes = 0u64;
    loop {
        let b = t.read(4 << 20);
        if b.is_empty() {
            break;
        }
        for l in &b.lines {
            bytes += l.text.as_ref().map_or(0, |s| s.len() as u64);
        }
        lines += b.lines.len() as u64;
    }
    let secs = t0.elapsed().as_secs_f64();
    assert_eq!(lines, lines_expected);
    eprintln!(
        "read {lines} lines ({:.0} MB of text) in {secs:.2} s: {:.0} lines/s, {:.0} MB/s",
        bytes as f64 / 1e6,
        lines as f64 / secs,
        written as f64 / 1e6 / secs
    );
}
