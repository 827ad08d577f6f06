//! The daemon's performance targets, measured from outside the daemon (files
//! written, the SQLite state read with a separate read-only connection).
//!
//! ```text
//! cargo bench --bench daemon -- [--only latency,ingest,rss,startup]
//!     [--drafts 200] [--events 1000000] [--backlog 100000] [--files 100000]
//!     [--changed 100] [--dir DIR]
//! ```
//!
//! * `latency`: `daemon::run::start` (SystemClock, 2 tokio workers as
//!   `complyd run`) on an empty drop folder; each of N 10 KB drafts holding a
//!   prohibited claim is written and closed (CLOSE_WRITE makes it ready at
//!   once, whatever `stable_for` is), then the violations table is polled
//!   every ~0.1 ms until the draft's first violation is committed.
//! * `ingest`: a generated log of N events (the `replay` bench's generator).
//!   *Live*: appended in chunks of about 1 MB while a ManualClock follows the
//!   log's timestamps, as the wall clock follows a live log; events/s until
//!   `sources.lines` reaches the line count, wall and per CPU-second of the
//!   core thread. *Backlog*: the daemon started on the first `--backlog`
//!   events already written, the clock after their end (a restart after
//!   downtime). Each beside `replay` on the same log (no SQLite).
//! * `rss`: the `complyd` binary, `complyd run --config` on a copy of
//!   `examples/` (the shipped packs), VmRSS and VmHWM once idle.
//! * `startup`: N small files in 100 folders; the daemon checks them all at
//!   start; stopped, M of them changed, started again: time until the M are
//!   re-checked, and only they (`files.checked_at`).
//!
//! Temporary folders go under `--dir` (default: the system temp folder) and
//! are removed at the end.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use complyd::config::{Config, DaemonConfig, WatchDir};
use complyd::daemon::clock::{Clock, ManualClock, SystemClock};
use complyd::daemon::run::{self, Handle, RunOptions};
use complyd::engine::Env;
use rusqlite::{Connection, OpenFlags};

#[path = "common/activity_log.rs"]
mod activity_log;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn rules() -> complyd::rules::RuleSet {
    complyd::rules::load(&manifest().join("rules")).unwrap_or_else(|e| panic!("{e}"))
}

/// The runtime `complyd run` builds.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn options(state: &Path, watch: Option<&Path>, logs: Option<&Path>) -> RunOptions {
    let mut d = DaemonConfig::empty(state.to_path_buf());
    if let Some(w) = watch {
        d.watch.push(WatchDir {
            path: w.to_path_buf(),
            include: Vec::new(),
            exclude: Vec::new(),
        });
    }
    if let Some(l) = logs {
        d.logs.push(l.join("*.jsonl").display().to_string());
    }
    let config = Config {
        daemon: d,
        ..Config::default()
    };
    RunOptions::new(config, None, manifest().join("rules"))
}

fn start(rt: &tokio::runtime::Runtime, opts: &RunOptions, clock: Arc<dyn Clock>) -> Handle {
    rt.block_on(run::start(opts.clone(), rules(), clock))
        .unwrap_or_else(|e| panic!("start: {e}"))
}

fn stop(rt: &tokio::runtime::Runtime, h: Handle) {
    rt.block_on(h.shutdown())
        .unwrap_or_else(|e| panic!("shutdown: {e}"));
}

/// A read-only connection beside the daemon's (WAL: it never blocks it).
fn reader(opts: &RunOptions) -> Connection {
    Connection::open_with_flags(
        opts.config.daemon.database(),
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .expect("open the database read-only")
}

fn count(db: &Connection, sql: &str) -> i64 {
    db.prepare_cached(sql)
        .and_then(|mut st| st.query_row([], |r| r.get(0)))
        .unwrap_or(-1)
}

/// Polls `sql` (one integer) every `every` until `ok`; panics after `limit`.
fn wait_for(
    db: &Connection,
    sql: &str,
    every: Duration,
    limit: Duration,
    ok: impl Fn(i64) -> bool,
) -> i64 {
    let t0 = Instant::now();
    loop {
        let v = count(db, sql);
        if ok(v) {
            return v;
        }
        assert!(t0.elapsed() < limit, "timed out on `{sql}` (last {v})");
        std::thread::sleep(every);
    }
}

/// CPU seconds of this process's threads: (named `complyd-core`, all the
/// daemon's — every thread but the bench's own main thread, which writes the
/// log, polls the database and runs `replay`).
fn cpu_seconds() -> (f64, f64) {
    let (mut core, mut all) = (0u64, 0u64);
    let main = std::process::id().to_string();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return (0.0, 0.0);
    };
    for t in tasks.flatten() {
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        // Fields after the command name: state is field 3, utime 14, stime 15.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<u64> = rest
            .split_whitespace()
            .skip(11)
            .take(2)
            .filter_map(|v| v.parse().ok())
            .collect();
        let ticks: u64 = f.iter().sum();
        if t.file_name().to_str() != Some(main.as_str()) {
            all += ticks;
        }
        if comm.trim() == "complyd-core" {
            core += ticks;
        }
    }
    // USER_HZ is 100 on Linux.
    (core as f64 / 100.0, all as f64 / 100.0)
}

fn status_kib(pid: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    // Nearest rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

// ---------------------------------------------------------------- latency

/// About 10 KB of an ordinary script with one prohibited claim in it.
fn draft(i: usize) -> String {
    let filler = "今天给大家分享一下春季养生的小知识，早睡早起，适量运动，饮食清淡。";
    let mut s = format!("第{i}稿 直播脚本\n");
    while s.len() < 5_000 {
        s.push_str(filler);
        s.push('\n');
    }
    s.push_str("本品可以根治高血压，坚持服用三个月。\n");
    while s.len() < 10_240 - filler.len() {
        s.push_str(filler);
        s.push('\n');
    }
    s
}

fn latency(base: &Path, drafts: usize) {
    let root = base.join("latency");
    let drop_dir = root.join("drop");
    std::fs::create_dir_all(&drop_dir).expect("drop folder");
    let opts = options(&root.join("state"), Some(&drop_dir), None);
    let rt = runtime();
    let h = start(&rt, &opts, Arc::new(SystemClock));
    let db = reader(&opts);
    // One warm-up draft (first extraction, first page faults), not counted.
    let mut lat = Vec::with_capacity(drafts);
    let bytes = draft(0).len();
    for i in 0..=drafts {
        let path = drop_dir.join(format!("draft-{i:04}.txt"));
        let subject = path.display().to_string();
        let mut f = std::fs::File::create(&path).expect("create a draft");
        f.write_all(draft(i).as_bytes()).expect("write a draft");
        // Timed from just before the close: this thread may be preempted
        // right after it by the daemon's threads on 2 cores.
        let t0 = Instant::now();
        drop(f);
        let mut st = db
            .prepare_cached("SELECT COUNT(*) FROM violations WHERE subject = ?1")
            .expect("prepare");
        loop {
            let n: i64 = st.query_row([&subject], |r| r.get(0)).unwrap_or(0);
            if n > 0 {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "{subject}: no violation"
            );
            std::thread::sleep(Duration::from_micros(100));
        }
        let ms = t0.elapsed().as_secs_f64() * 1000.0;
        if i > 0 {
            lat.push(ms);
        }
        // Drafts arrive one at a time: let the mailer write this one's mail.
        std::thread::sleep(Duration::from_millis(30));
    }
    stop(&rt, h);
    lat.sort_by(f64::total_cmp);
    let mean = lat.iter().sum::<f64>() / lat.len() as f64;
    println!(
        "latency: {drafts} drafts of {bytes} bytes, close → violation committed (ms): \
         p50 {:.2}  p95 {:.2}  p99 {:.2}  max {:.2}  (min {:.2}, mean {:.2}; poll every ~0.1 ms)",
        percentile(&lat, 50.0),
        percentile(&lat, 95.0),
        percentile(&lat, 99.0),
        lat[lat.len() - 1],
        lat[0],
        mean,
    );
}

// ---------------------------------------------------------------- ingest

/// The timestamp a generated line starts with (`{"ts":"…+08:00",…`).
fn line_ts(line: &[u8]) -> jiff::Timestamp {
    std::str::from_utf8(&line[7..32])
        .ok()
        .and_then(|s| s.parse().ok())
        .expect("a generated line starts with its timestamp")
}

fn ingest(base: &Path, events: usize, backlog: usize) {
    let root = base.join("ingest");
    std::fs::create_dir_all(&root).expect("folder");
    let all = root.join("all.jsonl");
    activity_log::generate(&all, events).expect("write the generated log");
    let text = std::fs::read(&all).expect("read the log back");
    let lines: Vec<&[u8]> = text.split_inclusive(|&b| b == b'\n').collect();
    let total = lines.len();
    let rules = rules();
    let env = Env {
        calendar: complyd::calendar::Calendar::default(),
        lists: rules.lists.clone(),
    };
    let lateness = complyd::replay::DEFAULT_ALLOWED_LATENESS;
    let end: jiff::Timestamp = "2027-01-31T00:00:00+08:00".parse().unwrap();
    let replay = |log: &Path| {
        let t0 = Instant::now();
        let out = complyd::replay::replay(
            &rules,
            &env,
            &[log.to_path_buf()],
            end,
            lateness,
            &mut |r| {
                std::hint::black_box(r);
            },
        );
        (out, t0.elapsed().as_secs_f64())
    };

    // Live: the log is appended in chunks of about 1 MB (one read batch),
    // and the clock follows it as it would a live log: after a chunk is
    // committed (its events held in the reorder window, as fresh events
    // are), the clock moves to its last timestamp + 90 s (the generator's
    // largest logging delay), which releases and evaluates them.
    {
        let logs = root.join("live");
        std::fs::create_dir_all(&logs).expect("logs folder");
        let mut opts = options(&root.join("state-live"), None, Some(&logs));
        // What is measured is tail + evaluate + commit: every violation's
        // outbox row is committed, but delivery waits for an SMTP server that
        // is not there (the mailer pauses after one try). Writing 150k .eml
        // files instead costs more than the core thread (ext4 allocating
        // inodes in one folder); the mail bench measures delivery.
        opts.config.daemon.mail.smtp = Some(complyd::config::SmtpConfig::new(
            "127.0.0.1",
            9,
            complyd::config::SmtpSecurity::None,
        ));
        // The tailer would otherwise sleep 200 ms after every chunk.
        opts.tail_interval = Duration::from_millis(1);
        let first = line_ts(lines[0]);
        let clock = ManualClock::new(first - jiff::SignedDuration::from_mins(1));
        let rt = runtime();
        let mut log = std::fs::File::create(logs.join("activity.jsonl")).expect("log");
        let (core0, all0) = cpu_seconds();
        let t0 = Instant::now();
        let h = start(&rt, &opts, Arc::new(clock.clone()));
        let db = reader(&opts);
        let (mut i, mut done, mut max_ts, mut chunks) = (0, 0i64, first, 0);
        while i < total {
            let mut chunk = Vec::with_capacity(1 << 20);
            while i < total && chunk.len() + lines[i].len() <= 1_000_000 {
                chunk.extend_from_slice(lines[i]);
                max_ts = max_ts.max(line_ts(lines[i]));
                i += 1;
                done += 1;
            }
            log.write_all(&chunk).expect("append");
            chunks += 1;
            // Read: its lines are counted as waiting past the cursor (the
            // events are held in the window) until they are released.
            wait_for(
                &db,
                "SELECT COALESCE(SUM(lines + waiting), 0) FROM sources",
                Duration::from_micros(500),
                Duration::from_secs(120),
                |n| n >= done,
            );
            clock.set(max_ts + jiff::SignedDuration::from_secs(90));
        }
        rt.block_on(h.barrier());
        let secs = t0.elapsed().as_secs_f64();
        let (core1, all1) = cpu_seconds();
        // Then to the replay's `now`, so both fire the same deadlines.
        clock.set(end);
        rt.block_on(h.barrier());
        std::thread::sleep(Duration::from_millis(200));
        rt.block_on(h.barrier());
        let violations = count(&db, "SELECT COUNT(*) FROM violations");
        let late = count(
            &db,
            "SELECT COUNT(*) FROM violations WHERE status <> 'open'",
        );
        stop(&rt, h);
        let (out, rsecs) = replay(&logs.join("activity.jsonl"));
        println!(
            "ingest, live ({chunks} chunks of ≤ 1 MB, clock following the log): {total} events \
             ({:.1} MB) in {secs:.2} s = {:.0} events/s wall; core thread {:.2} CPU-s = {:.0} \
             events per core-second; daemon's threads {:.2} CPU-s = {:.0} events per CPU-second; \
             violations {violations} ({late} not open) vs replay's {}",
            text.len() as f64 / 1e6,
            total as f64 / secs,
            core1 - core0,
            total as f64 / (core1 - core0),
            all1 - all0,
            total as f64 / (all1 - all0),
            out.violations,
        );
        println!(
            "ingest, replay (no SQLite, one thread) on the same log: {} events in {rsecs:.2} s = \
             {:.0} events/s; daemon live ÷ replay = {:.2} (wall), {:.2} (core thread)",
            out.events,
            out.events as f64 / rsecs,
            rsecs / secs,
            rsecs / (core1 - core0),
        );
    }

    // Backlog: the daemon started on a log already written, with the clock
    // after its end (a restart after downtime), as `run --once` reads it.
    if backlog > 0 {
        let n = backlog.min(total);
        let logs = root.join("backlog");
        std::fs::create_dir_all(&logs).expect("logs folder");
        let log = logs.join("activity.jsonl");
        std::fs::write(&log, lines[..n].concat()).expect("write the backlog");
        let opts = options(&root.join("state-backlog"), None, Some(&logs));
        let rt = runtime();
        let (core0, _) = cpu_seconds();
        let t0 = Instant::now();
        let h = start(&rt, &opts, Arc::new(ManualClock::new(end)));
        let db = reader(&opts);
        wait_for(
            &db,
            "SELECT COALESCE(SUM(lines), 0) FROM sources",
            Duration::from_millis(5),
            Duration::from_secs(1800),
            |v| v >= n as i64,
        );
        let secs = t0.elapsed().as_secs_f64();
        let (core1, _) = cpu_seconds();
        // The deadlines up to the clock fire right after the last batch:
        // count once the number stops moving.
        let mut violations = count(&db, "SELECT COUNT(*) FROM violations");
        loop {
            std::thread::sleep(Duration::from_millis(300));
            let again = count(&db, "SELECT COUNT(*) FROM violations");
            if again == violations {
                break;
            }
            violations = again;
        }
        let mailed = count(&db, "SELECT COUNT(*) FROM outbox WHERE sent_at IS NOT NULL");
        stop(&rt, h);
        let (out, rsecs) = replay(&log);
        println!(
            "ingest, backlog (daemon started on {n} events already written, clock after their end): \
             {secs:.2} s = {:.0} events/s wall, core thread {:.2} CPU-s; {violations} violations \
             stored ({mailed} mailed meanwhile) vs replay's {} ({:.0} events/s)",
            n as f64 / secs,
            core1 - core0,
            out.violations,
            out.events as f64 / rsecs,
        );
    }
}

// ---------------------------------------------------------------- rss

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create folder");
    for e in std::fs::read_dir(from).expect("read folder").flatten() {
        let ft = e.file_type().expect("file type");
        if ft.is_dir() {
            copy_tree(&e.path(), &to.join(e.file_name()));
        } else if ft.is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
        }
    }
}

fn rss(base: &Path) {
    let root = base.join("rss");
    copy_tree(&manifest().join("examples"), &root.join("examples"));
    copy_tree(&manifest().join("rules"), &root.join("rules"));
    let config = root.join("examples/complyd.yaml");
    let log_lines = std::fs::read_to_string(root.join("examples/logs/activity.jsonl"))
        .expect("sample log")
        .lines()
        .count() as i64;
    let drops = std::fs::read_dir(root.join("examples/drop"))
        .expect("drop")
        .count() as i64;
    let stderr = std::fs::File::create(root.join("complyd.log")).expect("log file");
    let t0 = Instant::now();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_complyd"))
        .args(["run", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("spawn complyd");
    let pid = child.id().to_string();
    let db_path = root.join("var/complyd.db");
    while !db_path.exists() {
        assert!(t0.elapsed() < Duration::from_secs(30), "no database");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    let db = Connection::open_with_flags(&db_path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open the database");
    let limit = Duration::from_secs(60);
    let every = Duration::from_millis(50);
    wait_for(&db, "SELECT COUNT(*) FROM files", every, limit, |n| {
        n >= drops
    });
    wait_for(
        &db,
        "SELECT COALESCE(SUM(lines), 0) FROM sources",
        every,
        limit,
        |n| n >= log_lines,
    );
    wait_for(
        &db,
        "SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL AND failed = 0",
        every,
        limit,
        |n| n == 0,
    );
    let busy = t0.elapsed().as_secs_f64();
    let hwm_busy = status_kib(&pid, "VmHWM:");
    // Idle: nothing new for a while (the tailer polls, the core sleeps).
    std::thread::sleep(Duration::from_secs(5));
    let (rss, hwm, anon, file, threads) = (
        status_kib(&pid, "VmRSS:"),
        status_kib(&pid, "VmHWM:"),
        status_kib(&pid, "RssAnon:"),
        status_kib(&pid, "RssFile:"),
        status_kib(&pid, "Threads:"),
    );
    let violations = count(&db, "SELECT COUNT(*) FROM violations");
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status();
    let status = child.wait().expect("wait for complyd");
    let mib = |k: u64| k as f64 / 1024.0;
    println!(
        "rss: complyd run on examples/ ({drops} files, {log_lines} log lines, {violations} violations) \
         done in {busy:.2} s; idle 5 s later: VmRSS {:.1} MiB (anon {:.1}, file {:.1}), \
         VmHWM {:.1} MiB ({:.1} when first idle), {threads} threads; exit {status}",
        mib(rss),
        mib(anon),
        mib(file),
        mib(hwm),
        mib(hwm_busy),
    );
}

// ---------------------------------------------------------------- startup

fn small_file(i: usize, edit: bool) -> String {
    let mut s = format!("第{i}条字幕：春季养生，早睡早起，适量运动。编号 {i:06}\n");
    if i.is_multiple_of(100) {
        s.push_str("本品保证有效，根治失眠！\n");
    }
    if edit {
        s.push_str("（已修改）\n");
    }
    s
}

fn startup(base: &Path, files: usize, changed: usize) {
    let root = base.join("startup");
    let drop_dir = root.join("drop");
    let folders = 100;
    for i in 0..files {
        let dir = drop_dir.join(format!("d{:03}", i % folders));
        if i < folders {
            std::fs::create_dir_all(&dir).expect("folder");
        }
        std::fs::write(dir.join(format!("f{i:06}.txt")), small_file(i, false)).expect("write");
    }
    let opts = options(&root.join("state"), Some(&drop_dir), None);
    let rt = runtime();

    let t0 = Instant::now();
    let h = start(&rt, &opts, Arc::new(SystemClock));
    let db = reader(&opts);
    wait_for(
        &db,
        "SELECT COUNT(*) FROM files",
        Duration::from_millis(20),
        Duration::from_secs(1800),
        |n| n >= files as i64,
    );
    let first = t0.elapsed().as_secs_f64();
    let violations = count(&db, "SELECT COUNT(*) FROM violations");
    stop(&rt, h);

    // Change `changed` files spread over the walk's order, the last one
    // included: the daemon's catch-up walks in the same order, so when the
    // last changed file is re-checked the whole walk has been handled.
    let roots = vec![complyd::daemon::watch::WatchRoot {
        path: drop_dir.clone(),
        include: Vec::new(),
        exclude: Vec::new(),
    }];
    let filter = complyd::daemon::watch::Filter::new(&roots).expect("filter");
    let mut order = Vec::new();
    complyd::daemon::watch::walk(&roots, &filter, &mut |r| {
        if let Ok(seen) = r {
            order.push(seen.path);
        }
    });
    assert_eq!(order.len(), files);
    let step = files / changed;
    let picked: Vec<PathBuf> = (1..=changed)
        .map(|k| order[k * step - 1 + (files - changed * step)].clone())
        .collect();
    assert_eq!(picked.last(), order.last());
    for p in &picked {
        let i: usize = p
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s[1..].parse().ok())
            .expect("file number");
        std::fs::write(p, small_file(i, true)).expect("change a file");
    }
    let restart_ms = jiff::Timestamp::now().as_millisecond();
    let rechecked = format!("SELECT COUNT(*) FROM files WHERE checked_at >= {restart_ms}");

    let t0 = Instant::now();
    let h = start(&rt, &opts, Arc::new(SystemClock));
    wait_for(
        &db,
        &rechecked,
        Duration::from_millis(1),
        Duration::from_secs(600),
        |n| n >= changed as i64,
    );
    let second = t0.elapsed().as_secs_f64();
    // Nothing else is re-checked afterwards.
    rt.block_on(h.barrier());
    std::thread::sleep(Duration::from_secs(1));
    rt.block_on(h.barrier());
    let n = count(&db, &rechecked);
    let mut st = db
        .prepare(&format!(
            "SELECT path FROM files WHERE checked_at >= {restart_ms}"
        ))
        .expect("prepare");
    let got: std::collections::BTreeSet<String> = st
        .query_map([], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .expect("query");
    let want: std::collections::BTreeSet<String> =
        picked.iter().map(|p| p.display().to_string()).collect();
    stop(&rt, h);
    assert_eq!(n, changed as i64, "re-checked files");
    assert_eq!(got, want, "exactly the changed files are re-checked");
    println!(
        "startup: {files} files in {folders} folders ({violations} violations): first start checks \
         all in {first:.2} s ({:.0} files/s); after changing {changed}, the restart re-checks exactly \
         those {changed} in {second:.2} s (catch-up walk of all {files} included)",
        files as f64 / first,
    );
}

#[allow(unsafe_code)]
fn main() {
    // As the binary does (src/alloc.rs). SAFETY: first in `main`, no other
    // thread started yet.
    unsafe { complyd::alloc::return_freed_memory_at_once() };
    let mut only: Vec<String> = ["latency", "ingest", "rss", "startup"]
        .map(String::from)
        .to_vec();
    let (mut drafts, mut events, mut files, mut changed) = (200usize, 1_000_000usize, 100_000, 100);
    let mut backlog = 100_000usize;
    let mut dir = std::env::temp_dir();
    let mut args = std::env::args().skip(1);
    let num = |v: Option<String>, name: &str| -> usize {
        v.and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} N"))
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--only" => {
                only = args
                    .next()
                    .expect("--only a,b")
                    .split(',')
                    .map(String::from)
                    .collect()
            }
            "--drafts" => drafts = num(args.next(), "--drafts"),
            "--events" => events = num(args.next(), "--events"),
            "--backlog" => backlog = num(args.next(), "--backlog"),
            "--files" => files = num(args.next(), "--files"),
            "--changed" => changed = num(args.next(), "--changed"),
            "--dir" => dir = PathBuf::from(args.next().expect("--dir DIR")),
            _ => {} // cargo passes --bench
        }
    }
    let base = dir.join(format!("complyd-daemon-bench-{}", std::process::id()));
    std::fs::create_dir_all(&base).expect("temp folder");
    for what in &only {
        match what.as_str() {
            "latency" => latency(&base, drafts),
            "ingest" => ingest(&base, events, backlog),
            "rss" => rss(&base),
            "startup" => startup(&base, files, changed),
            other => panic!("unknown measurement {other}"),
        }
    }
    if std::env::var_os("KEEP").is_some() {
        eprintln!("kept {}", base.display());
    } else {
        let _ = std::fs::remove_dir_all(&base);
    }
}
