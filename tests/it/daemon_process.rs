//! The daemon as a process: the real binary (`complyd run --config …`),
//! killed with SIGKILL in the middle of its work and restarted, fed bad
//! input, signalled with SIGHUP and SIGTERM. Its stderr goes to a file the
//! assertions read; its state is read from the SQLite database (read-only,
//! beside the running daemon: the database is in WAL mode).
//!
//! Everything waits by polling with generous timeouts, never by sleeping
//! and hoping; the waits fail with what they last saw.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use rusqlite::{Connection, OpenFlags};
use sha2::{Digest, Sha256};

const BIN: &str = env!("CARGO_BIN_EXE_complyd");

/// The packs the process tests run with: the reply deadlines and the
/// content claims (checked in files and in the text of logged replies).
/// The staleness packs are left out: they start their clocks at the first
/// event and fire every week up to now, which says nothing more here.
const PACKS: &[&str] = &[
    "replies.yaml",
    "claims.yaml",
    "lists.yaml",
    "diseases.txt",
    "products.txt",
];

/// A scratch deployment: rules, drop folder, logs, state, mail, config.
struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new() -> Site {
        Site::with_state(None)
    }

    /// `state`: where the state lives, when not under the site.
    fn with_state(state: Option<&Path>) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let rules = root.join("rules");
        fs::create_dir_all(&rules).unwrap();
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
        for p in PACKS {
            fs::copy(shipped.join(p), rules.join(p)).unwrap();
        }
        for d in ["drop", "logs", "mail"] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        let state = state.map_or_else(|| root.join("state"), Path::to_path_buf);
        let q = |p: &Path| format!("\"{}\"", p.display());
        fs::write(
            root.join("complyd.yaml"),
            format!(
                "rules: {}\nstate: {}\nwatch:\n  - path: {}\nlogs: [{}]\nstable_for: 1s\n\
                 allowed_lateness: 5m\nmail:\n  dir: {}\n",
                q(&rules),
                q(&state),
                q(&root.join("drop")),
                q(&root.join("logs/*.jsonl")),
                q(&root.join("mail")),
            ),
        )
        .unwrap();
        Site { dir }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn config(&self) -> PathBuf {
        self.path("complyd.yaml")
    }

    fn db_path(&self) -> PathBuf {
        let cfg = fs::read_to_string(self.config()).unwrap();
        let state = cfg
            .lines()
            .find_map(|l| l.strip_prefix("state: "))
            .unwrap()
            .trim_matches('"');
        Path::new(state).join("complyd.db")
    }

    fn stderr_path(&self) -> PathBuf {
        self.path("complyd.stderr")
    }

    /// What every daemon started so far wrote to stderr.
    fn log(&self) -> String {
        fs::read_to_string(self.stderr_path()).unwrap_or_default()
    }

    /// Starts `complyd run`, stderr appended to the site's log file.
    fn spawn(&self) -> Daemon {
        let err = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.stderr_path())
            .unwrap();
        let child = Command::new(BIN)
            .args(["run", "--config"])
            .arg(self.config())
            .env_remove("RUST_LOG")
            .env_remove("JOURNAL_STREAM")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("COMPLYD_RULES")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap();
        Daemon { child }
    }

    /// The database, read-only; `None` while it cannot be opened.
    fn db(&self) -> Option<Connection> {
        let c =
            Connection::open_with_flags(self.db_path(), OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
        c.busy_timeout(Duration::from_secs(2)).ok()?;
        Some(c)
    }

    /// One integer; -1 while the database or the table is not there.
    fn int(&self, query: &str) -> i64 {
        self.db()
            .and_then(|c| c.query_row(query, [], |r| r.get(0)).ok())
            .unwrap_or(-1)
    }

    /// Polls `query` until `ok` holds.
    fn wait_for(&self, query: &str, timeout: Duration, ok: impl Fn(i64) -> bool) -> i64 {
        let start = Instant::now();
        loop {
            let v = self.int(query);
            if ok(v) {
                return v;
            }
            assert!(
                start.elapsed() < timeout,
                "timed out after {timeout:?} waiting for `{query}` (last value {v}); daemon log:\n{}",
                tail(&self.log(), 40)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Polls the stderr log until it contains `needle` `n` times.
    fn wait_log(&self, needle: &str, n: usize, timeout: Duration) {
        let start = Instant::now();
        loop {
            let log = self.log();
            if log.matches(needle).count() >= n {
                return;
            }
            assert!(
                start.elapsed() < timeout,
                "timed out after {timeout:?} waiting for {n}× {needle:?} in the daemon log:\n{}",
                tail(&log, 40)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The violations: (rule, subject, status, record JSON).
    fn violations(&self) -> Vec<(String, String, String, serde_json::Value)> {
        let c = self.db().unwrap();
        let mut st = c
            .prepare("SELECT rule, subject, status, data FROM violations ORDER BY id")
            .unwrap();
        st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })
        .unwrap()
        .map(|r| {
            let (a, b, c, d) = r.unwrap();
            (a, b, c, serde_json::from_str(&d).unwrap())
        })
        .collect()
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A running `complyd run`.
struct Daemon {
    child: Child,
}

impl Daemon {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} {} failed", self.pid());
    }

    /// SIGKILL, and reap.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits for the exit, up to `timeout`.
    fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return Some(s);
            }
            if start.elapsed() > timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM; asserts exit status 0 within `within`. Returns how long.
    fn terminate(mut self, within: Duration) -> Duration {
        let start = Instant::now();
        self.signal("TERM");
        let status = self.wait(within);
        let took = start.elapsed();
        match status {
            Some(s) => assert!(s.success(), "SIGTERM: exit status {s}"),
            None => {
                let _ = self.child.kill();
                panic!("SIGTERM: still running after {within:?}");
            }
        }
        took
    }
}

impl Drop for Daemon {
    /// A failing test leaves no daemon behind.
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A small deterministic generator (xorshift64*), seeded per run; the seed
/// is printed so a failure can be replayed with COMPLYD_TEST_SEED.
struct Rng(u64);

impl Rng {
    fn from_env() -> Rng {
        let seed = std::env::var("COMPLYD_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            })
            | 1;
        eprintln!("COMPLYD_TEST_SEED={seed}");
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// In `lo..hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

/// The activity log: `n` lines, timestamps two minutes apart from midnight
/// (Beijing) 20 days ago: long past, so every deadline is long due and
/// nothing waits in the reorder window, but within the 30 days a reported
/// deadline waits for its late reply (`engine::LATE_RETENTION`). Older
/// timestamps show a known limit: the daemon reads a backlog in batches and
/// ticks its clock to the wall clock after each, so a deadline reported in
/// one batch and more than 30 days overdue is forgotten before the reply in
/// the next batch is read (replay, reading in one pass, marks it late). Threads receive general and complex questions; some
/// are answered within minutes (in time, unless the question came outside
/// working hours), some hours later (late), some never; some replies make
/// claims (根治, 保证有效), which are content violations of the log; every
/// 500th line is not JSON. Returns the text and the number of bad lines.
fn activity_log(n: usize) -> (String, usize) {
    const DAY: i64 = 86_400;
    const BEIJING: i64 = 8 * 3600;
    let day = (Timestamp::now().as_second() + BEIJING).div_euclid(DAY) - 20;
    let base = Timestamp::from_second(day * DAY - BEIJING).unwrap();
    let mut out = String::new();
    let mut bad = 0;
    for k in 0..n {
        let ts = base + SignedDuration::from_mins(2 * k as i64);
        let j = k / 3;
        if k % 500 == 499 {
            out.push_str(&format!("not json, line {}\n", k + 1));
            bad += 1;
            continue;
        }
        let line = match k % 3 {
            0 => serde_json::json!({
                "ts": ts.to_string(), "type": "message.received", "thread": format!("t{j}"),
                "account": "ks-service", "channel": "comment", "complexity": "general",
                "text": "这个一天吃几粒？",
            }),
            1 if j % 2 == 0 => serde_json::json!({
                "ts": ts.to_string(), "type": "message.replied", "thread": format!("t{j}"),
                "by": "li.na",
                "text": if j % 7 == 0 { "您好，本品可以根治失眠。" } else { "您好，每日两粒。" },
            }),
            1 => serde_json::json!({
                "ts": ts.to_string(), "type": "message.received", "thread": format!("x{j}"),
                "account": "ks-service", "channel": "dm", "complexity": "complex",
                "text": "能和降压药一起吃吗？",
            }),
            _ if j >= 30 && j % 3 == 0 => serde_json::json!({
                "ts": ts.to_string(), "type": "message.replied", "thread": format!("t{}", j - 30),
                "by": "zhou.jie",
                "text": if j % 11 == 0 { "回复晚了，保证有效！" } else { "回复晚了，抱歉。" },
            }),
            _ => serde_json::json!({
                "ts": ts.to_string(), "type": "account.login", "account": "ks-service",
                "by": "li.na",
            }),
        };
        out.push_str(&line.to_string());
        out.push('\n');
    }
    (out, bad)
}

/// A draft with claims; version 2 of some files says something else.
fn draft(i: usize, version: u32) -> String {
    const CLAIMS: &[&str] = &[
        "本品可以根治高血压",
        "保证100%有效",
        "全网销量第一",
        "央视推荐的神药",
        "三天见效，无副作用",
    ];
    let a = CLAIMS[i % CLAIMS.len()];
    let b = CLAIMS[(i + version as usize) % CLAIMS.len()];
    format!("第{i}号草稿（第{version}版）\n{a}。\n欢迎选购。{b}！\n")
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Runs a `complyd` command; its stdout's JSON lines.
fn json_lines(args: &[&str], path: &Path) -> Vec<serde_json::Value> {
    let out = Command::new(BIN)
        .args(args)
        .arg(path)
        .env_remove("COMPLYD_RULES")
        .output()
        .unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "complyd {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn s(v: &serde_json::Value, k: &str) -> String {
    v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string()
}

/// Counts of each key (a multiset), so a duplicate shows as a 2.
fn multiset<K: Ord>(keys: impl IntoIterator<Item = K>) -> BTreeMap<K, usize> {
    let mut m = BTreeMap::new();
    for k in keys {
        *m.entry(k).or_insert(0) += 1;
    }
    m
}

/// Where two multisets differ, for the failure message.
fn diff<K: Ord + std::fmt::Debug>(a: &BTreeMap<K, usize>, b: &BTreeMap<K, usize>) -> String {
    let mut out = String::new();
    for (k, n) in a {
        let m = b.get(k).copied().unwrap_or(0);
        if *n != m {
            out.push_str(&format!("  {k:?}: daemon {n}, expected {m}\n"));
        }
    }
    for (k, m) in b {
        if !a.contains_key(k) {
            out.push_str(&format!("  {k:?}: daemon 0, expected {m}\n"));
        }
    }
    out
}

#[test]
fn sigkill_at_random_moments_loses_and_repeats_nothing() {
    const LINES: usize = 3000;
    const FILES: usize = 40;
    let test_start = Instant::now();
    let mut site = Site::new();
    if std::env::var_os("COMPLYD_TEST_KEEP").is_some() {
        eprintln!("keeping {}", site.dir.path().display());
        site.dir.disable_cleanup(true);
    }
    let mut rng = Rng::from_env();
    let (log_text, bad_lines) = activity_log(LINES);
    let log_path = site.path("logs/activity.jsonl");
    let drop = site.path("drop");

    // The writer appends the log in pieces that cut lines (and characters)
    // anywhere; the dropper saves drafts, some of them twice.
    let writer = {
        let bytes = log_text.clone().into_bytes();
        let path = log_path.clone();
        let mut rng = Rng(rng.next() | 1);
        std::thread::spawn(move || {
            let mut f = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .unwrap();
            let mut at = 0;
            while at < bytes.len() {
                let n = (rng.range(1000, 7000) as usize).min(bytes.len() - at);
                f.write_all(&bytes[at..at + n]).unwrap();
                at += n;
                std::thread::sleep(Duration::from_millis(rng.range(10, 40)));
            }
        })
    };
    let dropper = {
        let drop = drop.clone();
        let mut rng = Rng(rng.next() | 1);
        std::thread::spawn(move || {
            for i in 0..FILES {
                let p = drop.join(format!("draft-{i:02}.txt"));
                fs::write(&p, draft(i, 1)).unwrap();
                if i % 5 == 0 {
                    // Saved again later with other claims (the earlier
                    // version's violations that are gone become fixed).
                    let p2 = p.clone();
                    let later = i;
                    std::thread::sleep(Duration::from_millis(rng.range(50, 150)));
                    fs::write(&p2, draft(later, 2)).unwrap();
                }
                std::thread::sleep(Duration::from_millis(rng.range(40, 160)));
            }
        })
    };

    // Kill the daemon at random moments while both write.
    let kills = rng.range(6, 11);
    let mut kill_times = Vec::new();
    for i in 0..kills {
        let spawned = Instant::now();
        let mut d = site.spawn();
        // Killed while it works, not while it loads its rules (which takes
        // a few hundred milliseconds in a debug build).
        site.wait_log(" INFO started", i as usize + 1, Duration::from_secs(20));
        let up = spawned.elapsed();
        let wait = Duration::from_millis(rng.range(100, 900));
        std::thread::sleep(wait);
        assert!(d.running(), "the daemon exited by itself:\n{}", site.log());
        d.kill();
        kill_times.push((up + wait).as_millis());
    }
    writer.join().unwrap();
    dropper.join().unwrap();
    let killed_at = test_start.elapsed();

    // The last start runs until everything is in and quiet.
    let d = site.spawn();
    let t = Duration::from_secs(40);
    site.wait_log(" INFO started", kills as usize + 1, t);
    site.wait_for("SELECT COALESCE(SUM(lines), 0) FROM sources", t, |n| {
        n >= LINES as i64
    });
    let q_files = format!(
        "SELECT COUNT(*) FROM files WHERE path LIKE '{}/%'",
        drop.display()
    );
    site.wait_for(&q_files, t, |n| n == FILES as i64);
    // Every file checked with its final content.
    let start = Instant::now();
    loop {
        let c = site.db().unwrap();
        let stale: Vec<String> = (0..FILES)
            .filter_map(|i| {
                let p = drop.join(format!("draft-{i:02}.txt"));
                let want = sha256_hex(&fs::read(&p).unwrap());
                let got: Option<String> = c
                    .query_row(
                        "SELECT sha256 FROM files WHERE path = ?1",
                        [p.display().to_string()],
                        |r| r.get(0),
                    )
                    .ok();
                (got.as_deref() != Some(want.as_str())).then(|| p.display().to_string())
            })
            .collect();
        if stale.is_empty() {
            break;
        }
        assert!(
            start.elapsed() < t,
            "files without a row of their current content: {stale:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Quiet: the outbox is delivered and the violations stop changing.
    let mut last = (-2, -2);
    let start = Instant::now();
    loop {
        let now = (
            site.int("SELECT COUNT(*) FROM violations"),
            // Waiting rows; a row cancelled because its violation was
            // retracted before the mail went out (failed = 2) is settled.
            site.int("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL AND failed = 0"),
        );
        if now == last && now.1 == 0 {
            break;
        }
        last = now;
        assert!(start.elapsed() < t, "not quiet: {now:?}");
        std::thread::sleep(Duration::from_millis(700));
    }
    let quiet_at = test_start.elapsed();
    let stop_took = d.terminate(Duration::from_secs(5));
    let now = Timestamp::now();

    // (b) Each line evaluated exactly once: the lines counted equal the
    // lines written (a cursor read again would count them twice), one
    // error row per bad line, nothing left in the reorder window.
    assert_eq!(
        site.int("SELECT COALESCE(SUM(lines), 0) FROM sources"),
        LINES as i64
    );
    assert_eq!(
        site.int("SELECT COUNT(*) FROM errors WHERE message LIKE '%malformed%'"),
        bad_lines as i64,
        "one error row per malformed line"
    );
    assert_eq!(site.int("SELECT COUNT(*) FROM held_batches"), 0);

    // (a) The log's violations are replay's, none twice. A reply logged in
    // time but read in a later batch than its question (the wall clock had
    // passed the deadline meanwhile) raises the violation and then retracts
    // it; replay, reading in order, never raises it: compare without the
    // retracted ones.
    let violations = site.violations();
    let drop_prefix = format!("{}/", drop.display());
    let from_log = multiset(
        violations
            .iter()
            .filter(|(_, subject, status, _)| {
                !subject.starts_with(&drop_prefix) && status != "retracted"
            })
            .map(|(rule, subject, status, data)| {
                (
                    rule.clone(),
                    subject.clone(),
                    s(data, "matched"),
                    s(data, "due"),
                    status == "late",
                )
            }),
    );
    let replayed = json_lines(
        &[
            "replay",
            "--rules",
            site.path("rules").to_str().unwrap(),
            "--format",
            "json",
            "--now",
            &now.to_string(),
        ],
        &log_path,
    );
    let expected = multiset(replayed.iter().map(|v| {
        (
            s(v, "rule"),
            s(v, "subject"),
            s(v, "matched"),
            s(v, "due"),
            v.get("late").is_some(),
        )
    }));
    assert!(
        expected.len() > 100,
        "the log should raise many violations: {expected:?}"
    );
    assert!(
        expected.keys().any(|k| k.0 == "disease-treatment"),
        "content violations from the log"
    );
    assert!(
        from_log == expected,
        "the daemon's log violations differ from replay's:\n{}",
        diff(&from_log, &expected)
    );

    // The files' open violations are scan's, none twice.
    let from_files = multiset(
        violations
            .iter()
            .filter(|(_, subject, status, _)| {
                subject.starts_with(&drop_prefix) && status != "fixed"
            })
            .map(|(rule, subject, _, data)| (rule.clone(), subject.clone(), s(data, "matched"))),
    );
    let scanned = json_lines(
        &[
            "scan",
            "--rules",
            site.path("rules").to_str().unwrap(),
            "--format",
            "json",
        ],
        &drop,
    );
    let expected = multiset(
        scanned
            .iter()
            .map(|v| (s(v, "rule"), s(v, "path"), s(v, "matched"))),
    );
    assert!(expected.len() >= FILES);
    assert!(
        from_files == expected,
        "the daemon's file violations differ from scan's:\n{}",
        diff(&from_files, &expected)
    );

    // (d) One mail per outbox row marked sent, none unsent, nothing half
    // written.
    let c = site.db().unwrap();
    let unsent: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL AND failed != 2",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(unsent, 0);
    let mut st = c
        .prepare(
            "SELECT v.fingerprint || '.' || o.kind
                    || CASE WHEN o.kind = 'reopened' THEN '.' || o.id ELSE '' END || '.eml' FROM outbox o
             JOIN violations v ON v.id = o.violation WHERE o.sent_at IS NOT NULL",
        )
        .unwrap();
    let sent: Vec<String> = st
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut mails: Vec<String> = fs::read_dir(site.path("mail"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    mails.sort();
    let sent = multiset(sent);
    assert!(
        sent.values().all(|&n| n == 1),
        "a message queued twice: {sent:?}"
    );
    assert_eq!(
        mails,
        sent.keys().cloned().collect::<Vec<_>>(),
        "mail folder vs sent outbox rows"
    );
    let outbox_rows: i64 = c
        .query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0))
        .unwrap();
    let violation_rows = violations.len() as i64;
    let retractions = violations.iter().filter(|v| v.2 == "retracted").count() as i64;
    assert_eq!(
        outbox_rows,
        violation_rows + retractions,
        "one mail per violation and one per retraction"
    );

    let log = site.log();
    assert_eq!(
        log.matches(" INFO started").count(),
        kills as usize + 1,
        "{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
    eprintln!(
        "{kills} kills after {kill_times:?} ms; writing done at {killed_at:?}, quiet at {quiet_at:?}, \
         SIGTERM took {stop_took:?}; {} violations ({retractions} retracted), {} mails; total {:?}",
        violations.len(),
        mails.len(),
        test_start.elapsed()
    );
}

/// A `message.received` line `days` ago (Beijing midday), on `thread`.
fn received(thread: &str, days: i64) -> String {
    let ts = Timestamp::now() - SignedDuration::from_hours(24 * days);
    serde_json::json!({
        "ts": ts.to_string(), "type": "message.received", "thread": thread,
        "account": "ks-service", "channel": "comment", "complexity": "general",
        "text": "怎么吃？",
    })
    .to_string()
}

/// Drops `name` with a claim and waits for its violation: the daemon still
/// works.
fn still_works(site: &Site, name: &str) {
    fs::write(site.path("drop").join(name), "本品可以根治高血压。\n").unwrap();
    site.wait_for(
        &format!("SELECT COUNT(*) FROM violations WHERE subject LIKE '%/{name}'"),
        Duration::from_secs(30),
        |n| n >= 1,
    );
}

#[test]
fn bad_input_is_logged_and_reported_and_the_daemon_keeps_running() {
    let site = Site::new();
    let drop = site.path("drop");
    let mut d = site.spawn();
    let t = Duration::from_secs(30);
    site.wait_log(" INFO started", 1, t);

    // A file deleted right after it was written, before stable_for: the
    // watcher's close event makes it ready at once, so the core finds it
    // gone — or the watcher does, and reports its removal.
    let gone = drop.join("gone.txt");
    fs::write(&gone, "根治失眠\n").unwrap();
    fs::remove_file(&gone).unwrap();
    let start = Instant::now();
    while !site.log().contains(&format!(
        "{}: deleted before it could be checked",
        gone.display()
    )) && !site.log().contains(&format!("{}: removed", gone.display()))
    {
        assert!(start.elapsed() < t, "no word of gone.txt:\n{}", site.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    still_works(&site, "after-gone.txt");
    assert_eq!(
        site.int("SELECT COUNT(*) FROM files WHERE path LIKE '%/gone.txt'"),
        0
    );

    // A symlink loop inside the drop folder: reported, not followed.
    std::os::unix::fs::symlink(&drop, drop.join("loop")).unwrap();
    site.wait_log("symlink loop", 1, t);
    still_works(&site, "after-loop.txt");

    // Unreadable input. As root, mode 000 does not stop a read, so: a FIFO
    // (opening it would block the daemon for ever) and a dangling symlink
    // (its target deleted).
    let fifo = drop.join("pipe.txt");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    site.wait_log("not a regular file (a FIFO)", 1, t);
    let target = site.path("target.txt");
    fs::write(&target, "根治\n").unwrap();
    std::os::unix::fs::symlink(&target, drop.join("dangling.txt")).unwrap();
    fs::remove_file(&target).unwrap();
    still_works(&site, "after-unreadable.txt");

    // A 2 GB sparse file: reported not checked, over the size limit, found
    // from its size alone (it is never read: this takes no time).
    let big = drop.join("big.txt");
    let started = Instant::now();
    fs::File::create(&big).unwrap().set_len(2 << 30).unwrap();
    site.wait_for(
        "SELECT COUNT(*) FROM violations WHERE rule = 'not-checked' AND subject LIKE '%/big.txt' \
         AND data LIKE '%over the 20971520-byte limit%'",
        t,
        |n| n == 1,
    );
    let big_took = started.elapsed();
    assert!(big_took < Duration::from_secs(10), "{big_took:?}");

    // A log line of 10 MB between two good ones: an error naming file:line,
    // the others evaluated.
    let log = site.path("logs/activity.jsonl");
    let mut f = fs::File::create(&log).unwrap();
    writeln!(f, "{}", received("before-huge", 3)).unwrap();
    let huge = format!("{{\"text\":\"{}\"}}", "长".repeat((10 << 20) / 3));
    writeln!(f, "{huge}").unwrap();
    writeln!(f, "{}", received("after-huge", 3)).unwrap();
    std::mem::drop(f);
    site.wait_for("SELECT COALESCE(SUM(lines), 0) FROM sources", t, |n| n == 3);
    let c = site.db().unwrap();
    let err: String = c
        .query_row(
            "SELECT message FROM errors WHERE source LIKE '%activity.jsonl'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        err.starts_with(&format!("{}:2: ", log.display())) && err.contains("bytes, over the"),
        "{err}"
    );
    site.wait_for(
        "SELECT COUNT(*) FROM violations WHERE rule = 'reply-general-1h' \
         AND subject IN ('before-huge', 'after-huge')",
        t,
        |n| n == 2,
    );
    assert!(site.log().contains(&format!("{}:2: ", log.display())));

    // The state cannot be written: a second connection holds the write
    // lock for 8 s (longer than the daemon's 5 s busy timeout). The input
    // waits, the daemon says why and retries, and nothing is lost.
    let before = site.log().matches("cannot write the state").count();
    let locker = Connection::open(site.db_path()).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    fs::write(drop.join("while-locked.txt"), "保证100%有效\n").unwrap();
    site.wait_log("cannot write the state", before + 1, t);
    std::thread::sleep(Duration::from_secs(3));
    locker.execute_batch("COMMIT").unwrap();
    std::mem::drop(locker);
    site.wait_for(
        "SELECT COUNT(*) FROM violations WHERE subject LIKE '%/while-locked.txt'",
        Duration::from_secs(40),
        |n| n >= 1,
    );
    let log_text = site.log();
    assert!(log_text.contains("retrying in"), "{log_text}");

    assert!(d.running(), "the daemon stopped:\n{log_text}");
    still_works(&site, "at-the-end.txt");
    d.terminate(Duration::from_secs(5));
}

#[test]
fn sighup_reloads_a_bad_reload_keeps_running_and_sigterm_stops_a_busy_daemon() {
    let site = Site::new();
    let t = Duration::from_secs(30);
    // A large log to be busy with: 200 000 lines (about 40 MB).
    let line = received("busy", 3);
    let mut f =
        std::io::BufWriter::new(fs::File::create(site.path("logs/activity.jsonl")).unwrap());
    for _ in 0..200_000 {
        writeln!(f, "{line}").unwrap();
    }
    drop(f);
    let mut d = site.spawn();
    site.wait_log(" INFO started", 1, t);

    // SIGHUP reloads.
    d.signal("HUP");
    site.wait_log("reloaded", 1, t);

    // A broken rule file: the reload fails, the daemon keeps the old rules,
    // logs the diagnostics and records a config-error violation.
    fs::write(
        site.path("rules/broken.yaml"),
        "rules:\n  - id: x\n    severity: fatal\n",
    )
    .unwrap();
    d.signal("HUP");
    site.wait_log("reload failed", 1, t);
    assert!(
        site.log().contains("broken.yaml:2:5: error[missing-key]"),
        "{}",
        site.log()
    );
    site.wait_for(
        "SELECT COUNT(*) FROM violations WHERE rule = 'config-error'",
        t,
        |n| n >= 1,
    );
    assert!(d.running());
    still_works(&site, "after-bad-reload.txt");

    // SIGTERM while a large log is being read: exit 0 within 5 s.
    site.wait_for("SELECT COALESCE(SUM(lines), 0) FROM sources", t, |n| {
        n == 200_000
    });
    let mut f = std::io::BufWriter::new(
        fs::OpenOptions::new()
            .append(true)
            .open(site.path("logs/activity.jsonl"))
            .unwrap(),
    );
    for _ in 0..300_000 {
        writeln!(f, "{line}").unwrap();
    }
    drop(f);
    let read = site.wait_for("SELECT COALESCE(SUM(lines), 0) FROM sources", t, |n| {
        n > 200_000
    });
    let took = d.terminate(Duration::from_secs(5));
    let after = site.int("SELECT COALESCE(SUM(lines), 0) FROM sources");
    eprintln!("SIGTERM after {read} lines read took {took:?} (stopped at {after})");
    assert!(site.log().contains("stopping"));
    // What was left unread is read by the next start, each line once
    // (with the rules fixed: a start with broken rules exits with 78).
    fs::remove_file(site.path("rules/broken.yaml")).unwrap();
    let d = site.spawn();
    site.wait_for(
        "SELECT COALESCE(SUM(lines), 0) FROM sources",
        Duration::from_secs(60),
        |n| n >= 500_000,
    );
    d.terminate(Duration::from_secs(5));
    assert_eq!(
        site.int("SELECT COALESCE(SUM(lines), 0) FROM sources"),
        500_000
    );
}
