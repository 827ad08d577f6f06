//! A scratch deployment of the real binary, shared by the process tests
//! (daemon_process.rs, full_disk.rs): rules, drop folder, logs, state, mail
//! and configuration in a temporary folder; `complyd run --config …` as a
//! process whose stderr goes to a file the assertions read; its state read
//! from the SQLite database (read-only, beside the running daemon: the
//! database is in WAL mode).
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

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_complyd");

/// The packs the process tests run with: the reply deadlines and the
/// content claims (checked in files and in the text of logged replies).
/// The staleness packs are left out: they start their clocks at the first
/// event and fire every week up to now, which says nothing more here.
pub(crate) const PACKS: &[&str] = &[
    "replies.yaml",
    "claims.yaml",
    "lists.yaml",
    "diseases.txt",
    "products.txt",
];

/// A scratch deployment: rules, drop folder, logs, state, mail, config.
pub(crate) struct Site {
    pub(crate) dir: tempfile::TempDir,
}

impl Site {
    pub(crate) fn new() -> Site {
        Site::with_state(None)
    }

    /// `state`: where the state lives, when not under the site.
    pub(crate) fn with_state(state: Option<&Path>) -> Site {
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

    pub(crate) fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    pub(crate) fn config(&self) -> PathBuf {
        self.path("complyd.yaml")
    }

    pub(crate) fn db_path(&self) -> PathBuf {
        let cfg = fs::read_to_string(self.config()).unwrap();
        let state = cfg
            .lines()
            .find_map(|l| l.strip_prefix("state: "))
            .unwrap()
            .trim_matches('"');
        Path::new(state).join("complyd.db")
    }

    pub(crate) fn stderr_path(&self) -> PathBuf {
        self.path("complyd.stderr")
    }

    /// What every daemon started so far wrote to stderr.
    pub(crate) fn log(&self) -> String {
        fs::read_to_string(self.stderr_path()).unwrap_or_default()
    }

    /// Starts `complyd run`, stderr appended to the site's log file.
    pub(crate) fn spawn(&self) -> Daemon {
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
    pub(crate) fn db(&self) -> Option<Connection> {
        let c =
            Connection::open_with_flags(self.db_path(), OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
        c.busy_timeout(Duration::from_secs(2)).ok()?;
        Some(c)
    }

    /// One integer; -1 while the database or the table is not there.
    pub(crate) fn int(&self, query: &str) -> i64 {
        self.db()
            .and_then(|c| c.query_row(query, [], |r| r.get(0)).ok())
            .unwrap_or(-1)
    }

    /// Polls `query` until `ok` holds.
    pub(crate) fn wait_for(&self, query: &str, timeout: Duration, ok: impl Fn(i64) -> bool) -> i64 {
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
    pub(crate) fn wait_log(&self, needle: &str, n: usize, timeout: Duration) {
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
    pub(crate) fn violations(&self) -> Vec<(String, String, String, serde_json::Value)> {
        let c = self.db().unwrap();
        let mut st = c
            .prepare(
                "SELECT v.rule, v.subject, v.status, r.data FROM violations v
                 JOIN violation_records r ON r.id = v.id ORDER BY v.id",
            )
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

pub(crate) fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A running `complyd run`.
pub(crate) struct Daemon {
    child: Child,
}

impl Daemon {
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} {} failed", self.pid());
    }

    /// SIGKILL, and reap.
    pub(crate) fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub(crate) fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits for the exit, up to `timeout`.
    pub(crate) fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
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
    pub(crate) fn terminate(mut self, within: Duration) -> Duration {
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
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn from_env() -> Rng {
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

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// In `lo..hi`.
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
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
pub(crate) fn activity_log(n: usize) -> (String, usize) {
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
pub(crate) fn draft(i: usize, version: u32) -> String {
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

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Runs a `complyd` command; its stdout's JSON lines.
pub(crate) fn json_lines(args: &[&str], path: &Path) -> Vec<serde_json::Value> {
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

pub(crate) fn s(v: &serde_json::Value, k: &str) -> String {
    v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string()
}

/// Counts of each key (a multiset), so a duplicate shows as a 2.
pub(crate) fn multiset<K: Ord>(keys: impl IntoIterator<Item = K>) -> BTreeMap<K, usize> {
    let mut m = BTreeMap::new();
    for k in keys {
        *m.entry(k).or_insert(0) += 1;
    }
    m
}

/// Where two multisets differ, for the failure message.
pub(crate) fn diff<K: Ord + std::fmt::Debug>(
    a: &BTreeMap<K, usize>,
    b: &BTreeMap<K, usize>,
) -> String {
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

/// Feeds the site as creators and the service desk would, on two threads:
/// the writer appends `log_text` to logs/activity.jsonl in pieces that cut
/// lines (and characters) anywhere; the dropper saves `files` drafts, some
/// of them twice.
pub(crate) fn feed(
    site: &Site,
    rng: &mut Rng,
    log_text: &str,
    files: usize,
) -> [std::thread::JoinHandle<()>; 2] {
    let log_path = site.path("logs/activity.jsonl");
    let drop = site.path("drop");
    let writer = {
        let bytes = log_text.as_bytes().to_vec();
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
            for i in 0..files {
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
    [writer, dropper]
}

/// What [`settle_and_compare`] saw.
#[derive(Debug)]
pub(crate) struct Settled {
    pub(crate) quiet_after: Duration,
    pub(crate) stop_took: Duration,
    pub(crate) violations: usize,
    pub(crate) retractions: i64,
    pub(crate) mails: usize,
}

/// Waits until the running daemon `d` has read the activity log's `lines`
/// lines (`bad_lines` of them malformed), checked the `files` drafts with
/// their final content and delivered its outbox; stops it with SIGTERM; and
/// checks that everything happened exactly once: each line counted once,
/// the log's violations equal to `replay`'s, the files' to `scan`'s, one
/// mail per outbox row marked sent.
pub(crate) fn settle_and_compare(
    site: &Site,
    d: Daemon,
    lines: usize,
    bad_lines: usize,
    files: usize,
) -> Settled {
    let started = Instant::now();
    let log_path = site.path("logs/activity.jsonl");
    let drop = site.path("drop");
    let t = Duration::from_secs(40);
    site.wait_for("SELECT COALESCE(SUM(lines), 0) FROM sources", t, |n| {
        n >= lines as i64
    });
    let q_files = format!(
        "SELECT COUNT(*) FROM files WHERE path LIKE '{}/%'",
        drop.display()
    );
    site.wait_for(&q_files, t, |n| n == files as i64);
    // Every file checked with its final content.
    let start = Instant::now();
    loop {
        let c = site.db().unwrap();
        let stale: Vec<String> = (0..files)
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
    let quiet_after = started.elapsed();
    let stop_took = d.terminate(Duration::from_secs(5));
    let now = Timestamp::now();

    // (b) Each line evaluated exactly once: the lines counted equal the
    // lines written (a cursor read again would count them twice), one
    // error row per bad line, nothing left in the reorder window.
    assert_eq!(
        site.int("SELECT COALESCE(SUM(lines), 0) FROM sources"),
        lines as i64
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
    assert!(expected.len() >= files);
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
    Settled {
        quiet_after,
        stop_took,
        violations: violations.len(),
        retractions,
        mails: mails.len(),
    }
}

/// A `message.received` line `days` ago (Beijing midday), on `thread`.
pub(crate) fn received(thread: &str, days: i64) -> String {
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
pub(crate) fn still_works(site: &Site, name: &str) {
    fs::write(site.path("drop").join(name), "本品可以根治高血压。\n").unwrap();
    site.wait_for(
        &format!("SELECT COUNT(*) FROM violations WHERE subject LIKE '%/{name}'"),
        Duration::from_secs(30),
        |n| n >= 1,
    );
}
