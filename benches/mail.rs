//! The notifications issue's performance target, measured end to end:
//! "10,000 violations in one burst reach the server as digests within one
//! digest window, with one SMTP connection reused (pooling); memory flat."
//!
//! ```text
//! cargo bench --bench mail -- [--violations 10000] [--recipients 2] [--dir DIR]
//! ```
//!
//! * A real SMTP server: aiosmtpd (tests/fixtures/smtp/server.py, the one
//!   the tests start) on a free port, with `--no-maildir`: it accepts each
//!   message, parses its headers, and appends one line per envelope
//!   recipient to `received.log` (with the Message-ID and the size), and
//!   one per TCP connection to
//!   `connections.log`; it does not store the bodies (their disk writes
//!   would be the server's cost, not complyd's).
//! * The daemon in-process (`daemon::run::start`, a 2-worker runtime as
//!   `complyd run` builds) on a ManualClock, the shipped rules, one route
//!   `{to: [content], delivery: 30m}` whose group has `--recipients`
//!   addresses, SMTP without TLS to the server.
//! * The burst: a log of N customer messages at 10:00 that nobody answers
//!   is read; the clock moves to 11:06, when the one-hour reply deadlines
//!   (plus the 5-minute lateness) have all passed: N violations and N
//!   outbox rows in one tick. They wait for the window ending 11:30.
//! * Delivery: the clock moves to 11:30; the figure is the wall time until
//!   the server has logged every recipient copy of every digest
//!   (⌈N / 500⌉ messages × recipients), then every outbox row is checked to
//!   be marked sent with a Message-ID the server received.
//! * Memory: VmRSS of this process (the daemon is in it) before the burst,
//!   after it is committed, and after delivery; the peak (VmHWM, reset
//!   through /proc/self/clear_refs when the window ends) during delivery.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use complyd::daemon::clock::ManualClock;
use complyd::daemon::run::{self, RunOptions};
use rusqlite::{Connection, OpenFlags};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// CPU seconds of this process (all threads).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    f.iter().sum::<u64>() as f64 / 100.0
}

fn count(db: &Connection, sql: &str) -> i64 {
    db.prepare_cached(sql)
        .and_then(|mut st| st.query_row([], |r| r.get(0)))
        .unwrap_or(-1)
}

fn wait_for(db: &Connection, sql: &str, limit: Duration, ok: impl Fn(i64) -> bool) -> i64 {
    let t0 = Instant::now();
    loop {
        let v = count(db, sql);
        if ok(v) {
            return v;
        }
        assert!(t0.elapsed() < limit, "timed out on `{sql}` (last {v})");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// aiosmtpd, stopped when dropped.
struct Server {
    child: Child,
    root: PathBuf,
}

impl Server {
    fn start(root: &Path, port: u16) -> Server {
        std::fs::create_dir_all(root).expect("server folder");
        let mut child = Command::new("python3")
            .arg(manifest().join("tests/fixtures/smtp/server.py"))
            .args(["--port", &port.to_string(), "--no-maildir", "--maildir"])
            .arg(root.join("maildir"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 (run `bash scripts/test.sh` once: it installs aiosmtpd)");
        let stdout = child.stdout.take().expect("stdout");
        let line = std::io::BufReader::new(stdout).lines().next();
        assert!(
            matches!(&line, Some(Ok(l)) if l == "READY"),
            "the SMTP server did not start ({line:?}); it needs python3 with aiosmtpd \
             (`bash scripts/test.sh` installs it)"
        );
        Server {
            child,
            root: root.to_path_buf(),
        }
    }

    fn lines(&self, name: &str) -> Vec<String> {
        std::fs::read_to_string(self.root.join(name))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// How many lines `received.log` has (one per recipient copy),
    /// without reading it all on every poll.
    fn copies(&self) -> usize {
        std::fs::read(self.root.join("received.log"))
            .map(|b| b.iter().filter(|&&c| c == b'\n').count())
            .unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(base: &Path, violations: usize, recipients: usize) {
    let root = base.join(format!("mail-{violations}"));
    for d in ["logs", "drop"] {
        std::fs::create_dir_all(root.join(d)).expect("folder");
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let server = Server::start(&root.join("smtp"), port);
    let group: Vec<String> = (0..recipients)
        .map(|i| format!("content{i}@example.test"))
        .collect();
    let yaml = format!(
        "rules: {}\nstate: state\nlogs: [logs/*.jsonl]\n\
         mail:\n  from: complyd@example.test\n  to: [supervision@example.test]\n\
         \x20 groups:\n    content: [{}]\n  routes:\n    - {{to: [content], delivery: 30m}}\n\
         \x20 smtp: {{host: 127.0.0.1, port: {port}, security: none, timeout: 60s}}\n",
        manifest().join("rules").display(),
        group.join(", ")
    );
    let cfg_path = root.join("complyd.yaml");
    std::fs::write(&cfg_path, yaml).expect("configuration");
    let config = complyd::config::load(&cfg_path).unwrap_or_else(|e| panic!("{}", e.render(false)));
    let rules = complyd::rules::load(&manifest().join("rules")).unwrap_or_else(|e| panic!("{e}"));
    let mut opts = RunOptions::new(config, Some(cfg_path), manifest().join("rules"));
    opts.tail_interval = Duration::from_millis(20);
    let clock = ManualClock::new("2026-03-02T10:00:00+08:00".parse().expect("time"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    // N customer messages at 10:00 that nobody answers.
    let mut log = String::with_capacity(violations * 200);
    for i in 0..violations {
        log.push_str(&format!(
            r#"{{"ts":"2026-03-02T10:00:00+08:00","type":"message.received","thread":"t{i}","account":"ks-service","channel":"comment","complexity":"general","text":"怎么吃？"}}"#
        ));
        log.push('\n');
    }
    let h = rt
        .block_on(run::start(opts.clone(), rules, Arc::new(clock.clone())))
        .unwrap_or_else(|e| panic!("start: {e}"));
    std::fs::write(root.join("logs/activity.jsonl"), log).expect("log");
    let db = Connection::open_with_flags(
        opts.config.daemon.database(),
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .expect("database");
    let long = Duration::from_secs(3600);
    wait_for(
        &db,
        "SELECT COALESCE(SUM(lines), 0) FROM sources",
        long,
        |n| n == violations as i64,
    );
    rt.block_on(h.barrier());
    let rss_before = status_kib("VmRSS:");

    // The burst: every deadline has passed.
    let t0 = Instant::now();
    clock.set("2026-03-02T11:06:00+08:00".parse().expect("time"));
    wait_for(&db, "SELECT COUNT(*) FROM outbox", long, |n| {
        n == violations as i64
    });
    let burst = t0.elapsed().as_secs_f64();
    rt.block_on(h.barrier());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(server.copies(), 0, "nothing before the window ends");
    let rss_burst = status_kib("VmRSS:");

    // The window ends: every digest to every recipient.
    let messages = violations.div_ceil(500);
    let want = messages * recipients;
    // Reset VmHWM (Linux: 5 > clear_refs), so the peak below is the
    // delivery's own.
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    clock.set("2026-03-02T11:30:00+08:00".parse().expect("time"));
    let mut first_copy = None;
    loop {
        let n = server.copies();
        if n > 0 && first_copy.is_none() {
            first_copy = Some(t0.elapsed().as_secs_f64());
        }
        if n >= want {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(1800),
            "not delivered within a window: {n} of {want} copies"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let delivered = t0.elapsed().as_secs_f64();
    let first_copy = first_copy.unwrap_or(delivered);
    let cpu = cpu_seconds() - cpu0;
    wait_for(
        &db,
        "SELECT COUNT(*) FROM outbox WHERE sent_at IS NOT NULL",
        Duration::from_secs(60),
        |n| n == violations as i64,
    );
    let rss_after = status_kib("VmRSS:");
    let hwm = status_kib("VmHWM:");
    rt.block_on(h.shutdown()).expect("shutdown");

    // Every row went out in a message the server received, to everyone.
    let mut per_message: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut bytes = 0u64;
    for l in server.lines("received.log") {
        let mut f = l.split('\t');
        let (rcpt, id) = (f.next().expect("RCPT"), f.next().expect("Message-ID"));
        bytes += f.next().and_then(|b| b.parse::<u64>().ok()).unwrap_or(0);
        per_message
            .entry(id.to_string())
            .or_default()
            .insert(rcpt.to_string());
    }
    let mut st = db
        .prepare("SELECT DISTINCT message_id FROM outbox")
        .expect("query");
    let sent: BTreeSet<String> = st
        .query_map([], |r| r.get(0))
        .and_then(|r| r.collect())
        .expect("message ids");
    let everyone: BTreeSet<String> = group.iter().cloned().collect();
    assert_eq!(
        sent,
        per_message.keys().cloned().collect(),
        "the Message-IDs recorded are the ones the server received"
    );
    assert!(per_message.values().all(|r| *r == everyone));
    assert_eq!(server.copies(), want, "no copy twice");
    let connections = server.lines("connections.log").len();
    let rows_per_message = count(
        &db,
        "SELECT MAX(n) FROM (SELECT COUNT(*) AS n FROM outbox GROUP BY message_id)",
    );
    println!(
        "mail: {violations} violations in one burst (committed {burst:.2} s after the clock passed \
         their deadlines), one 30m digest route to {recipients} recipients: the window ends → \
         {messages} digests (≤ {rows_per_message} violations each, {:.2} MB on average) × \
         {recipients} = {want} recipient copies accepted by the server in {delivered:.2} s (the first after \
         {first_copy:.2} s), over {connections} SMTP connection(s); process CPU \
         during delivery {cpu:.2} s; VmRSS before the burst {:.1} MiB, after it {:.1} MiB, after \
         delivery {:.1} MiB; peak (VmHWM) {} {:.1} MiB",
        bytes as f64 / want as f64 / 1e6,
        mib(rss_before),
        mib(rss_burst),
        mib(rss_after),
        if reset {
            "during delivery"
        } else {
            "of the whole run (clear_refs not available)"
        },
        mib(hwm),
    );
}

#[allow(unsafe_code)]
fn main() {
    // As the binary does (src/alloc.rs). SAFETY: first in `main`, no other
    // thread started yet.
    unsafe { complyd::alloc::return_freed_memory_at_once() };
    let (mut violations, mut recipients) = (10_000usize, 2usize);
    let mut dir = std::env::temp_dir();
    let mut args = std::env::args().skip(1);
    let num = |v: Option<String>, name: &str| -> usize {
        v.and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} N"))
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--violations" => violations = num(args.next(), "--violations"),
            "--recipients" => recipients = num(args.next(), "--recipients"),
            "--dir" => dir = PathBuf::from(args.next().expect("--dir DIR")),
            _ => {} // cargo passes --bench
        }
    }
    let base = dir.join(format!("complyd-mail-bench-{}", std::process::id()));
    std::fs::create_dir_all(&base).expect("temp folder");
    run(&base, violations, recipients);
    if std::env::var_os("KEEP").is_some() {
        eprintln!("kept {}", base.display());
    } else {
        let _ = std::fs::remove_dir_all(&base);
    }
}
