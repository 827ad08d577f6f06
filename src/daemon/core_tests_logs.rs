//! Log lines through the core: the reorder window, deadlines at due +
//! lateness, late and retracted discharges, parity with `replay`, restarts
//! and failed commits.

use super::*;

const KEY: &str = "activity";

fn line(file: &Path, n: u64, text: &str) -> LogLine {
    LogLine {
        file: Arc::from(file),
        line: n,
        text: Ok(text.to_string()),
    }
}

fn cursor(n: u64) -> String {
    format!("{{\"line\":{n}}}")
}

/// Drives a core the way the daemon does: before each input, ticks at every
/// deadline that falls due. Optionally restarts the core, or makes one input
/// fail once under a held write lock, before the `n`-th input.
struct Run {
    core: Core,
    db: PathBuf,
    step: usize,
    restart_at: Option<usize>,
    fail_at: Option<usize>,
    /// Whether the input at `fail_at` did fail under the lock.
    failed: bool,
    /// Every line fed, and when the last was: what a restart's tailer reads
    /// again from the committed cursor.
    fed: Vec<LogLine>,
    last_now: Option<Timestamp>,
    /// Inputs that wrote nothing (so could not fail under the lock).
    quiet: usize,
}

impl Run {
    fn new(db: &Path) -> Run {
        Run {
            core: open_core(db, Limits::default()),
            db: db.to_path_buf(),
            step: 0,
            restart_at: None,
            fail_at: None,
            failed: false,
            fed: Vec::new(),
            last_now: None,
            quiet: 0,
        }
    }

    fn input(&mut self, f: &dyn Fn(&mut Core) -> Result<usize, StoreError>) -> usize {
        self.step += 1;
        if self.restart_at == Some(self.step) {
            let held = self.core.held();
            let stored = self.core.store().held_count().unwrap();
            assert!(stored <= held, "{stored} stored, {held} held");
            self.core = open_core(&self.db, Limits::default());
            assert_eq!(self.core.held(), stored, "stored events restored");
            assert_memory_matches_disk(&self.core);
            // The tailer reads again what is past the committed cursor.
            let read: u64 = self
                .core
                .store()
                .conn()
                .query_row("SELECT cursor FROM sources WHERE key = ?1", [KEY], |r| {
                    r.get::<_, String>(0)
                })
                .ok()
                .and_then(|c| serde_json::from_str::<serde_json::Value>(&c).ok())
                .and_then(|c| c["line"].as_u64())
                .unwrap_or(0);
            let again: Vec<LogLine> = self.fed.iter().filter(|l| l.line > read).cloned().collect();
            if let (Some(last), Some(now)) = (again.last(), self.last_now) {
                let n = last.line;
                self.core.log_lines(KEY, &again, &cursor(n), now).unwrap();
            }
            assert_eq!(self.core.held(), held, "held events restored");
        }
        if self.fail_at == Some(self.step) {
            self.core
                .store()
                .set_busy_timeout(Duration::from_millis(1))
                .unwrap();
            let before = (violations(&self.core), outbox(&self.core));
            let changes = self.core.store().conn().total_changes();
            let lock = lock(&self.db);
            let failed = f(&mut self.core);
            drop(lock);
            self.core
                .store()
                .set_busy_timeout(Duration::from_secs(5))
                .unwrap();
            if let Ok(n) = failed {
                // Nothing to write (events held past the cursor): no
                // transaction, so the lock is not needed.
                assert_eq!(
                    self.core.store().conn().total_changes(),
                    changes,
                    "an input that did not need the lock wrote nothing"
                );
                self.quiet += 1;
                return n;
            }
            self.failed = true;
            assert_eq!((violations(&self.core), outbox(&self.core)), before);
            assert_memory_matches_disk(&self.core);
        }
        f(&mut self.core).unwrap()
    }

    fn run_until(&mut self, t: Timestamp) -> usize {
        let mut n = 0;
        for _ in 0..10_000 {
            match self.core.next_deadline() {
                Some(d) if d <= t => n += self.input(&|c: &mut Core| c.tick(d)),
                _ => return n,
            }
        }
        panic!("next_deadline does not move past {t}");
    }

    fn feed(&mut self, l: LogLine, now: Timestamp) -> usize {
        self.run_until(now);
        let n = l.line;
        let new =
            self.input(&|c: &mut Core| c.log_lines(KEY, std::slice::from_ref(&l), &cursor(n), now));
        self.fed.push(l);
        self.last_now = Some(now);
        new
    }
}

/// The sample activity log, each line delivered a minute after its stamp
/// (and never before the previous one).
fn sample() -> (PathBuf, Vec<(LogLine, Timestamp)>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/logs/activity.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut now = ts("2026-03-02T00:00:00Z");
    let lines = text
        .lines()
        .enumerate()
        .map(|(i, t)| {
            if let Ok(ev) = parse_line(
                t,
                Evidence {
                    path: Arc::from(path.as_path()),
                    line: 1,
                },
            ) {
                now = now.max(ev.ts + SignedDuration::from_mins(1));
            }
            (line(&path, i as u64 + 1, t), now)
        })
        .collect();
    (path, lines)
}

const END: &str = "2026-03-16T18:00:00+08:00";

/// Everything a run leaves in the database that must not depend on how
/// the run was interrupted.
type Outcome = (
    Vec<Row>,
    (i64, i64),
    Vec<(String, String, String)>,
    i64,
    (String, i64),
);

fn outcome(core: &Core) -> Outcome {
    let mut v = violations(core);
    v.sort();
    let conn = core.store().conn();
    let mut obligations: Vec<(String, String, String)> =
        crate::daemon::store::journal::obligations(conn)
            .unwrap()
            .0
            .into_iter()
            .map(|(rule, key, _, o)| (rule, key, format!("{o:?}")))
            .collect();
    obligations.sort();
    let source = conn
        .query_row(
            "SELECT cursor, lines FROM sources WHERE key = ?1",
            [KEY],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    (
        v,
        outbox(core),
        obligations,
        core.store().held_count().unwrap() as i64,
        source,
    )
}

/// The outcome, the number of inputs, whether the input at `fail_at`
/// failed, and how many inputs wrote nothing.
fn run_sample(restart_at: Option<usize>, fail_at: Option<usize>) -> (Outcome, usize, bool, usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut run = Run::new(&dir.path().join("c.db"));
    run.restart_at = restart_at;
    run.fail_at = fail_at;
    let (_, lines) = sample();
    for (l, now) in lines {
        run.feed(l, now);
    }
    run.run_until(ts(END));
    run.input(&|c: &mut Core| c.tick(ts(END)));
    let (steps, failed) = (run.step, run.failed);
    let out = outcome(&run.core);
    let fps: BTreeSet<&String> = out.0.iter().map(|v| &v.3).collect();
    assert_eq!(fps.len(), out.0.len(), "fingerprints unique");
    (out, steps, failed, run.quiet)
}

/// (rule, subject, late?) of what replay reports, and of the daemon's
/// violations that stand.
fn replay_view(log: &Path, now: Timestamp) -> Vec<(String, String, bool)> {
    let mut got = Vec::new();
    crate::replay::replay(
        &rules(),
        &env(),
        &[log.to_path_buf()],
        now,
        LATENESS,
        &mut |r| {
            got.push((r.rule, r.subject, r.late.is_some()));
        },
    );
    got.sort();
    got
}

fn daemon_view(core: &Core) -> Vec<(String, String, bool)> {
    let mut got: Vec<_> = violations(core)
        .into_iter()
        .filter(|v| v.2 != "retracted")
        .map(|v| (v.0, v.1, v.2 == "late"))
        .collect();
    got.sort();
    got
}

const RECEIVED: &str = r#""type":"message.received","account":"ks-service","channel":"comment","complexity":"general","text":"这个怎么吃？""#;

fn received(thread: &str, at: &str) -> String {
    format!(r#"{{"ts":"{at}",{RECEIVED},"thread":"{thread}"}}"#)
}

fn replied(thread: &str, at: &str) -> String {
    format!(
        r#"{{"ts":"{at}","type":"message.replied","thread":"{thread}","by":"li.na","text":"您好，饭后服用。"}}"#
    )
}

#[test]
fn deadlines_fire_at_due_plus_lateness_and_late_replies_are_marked() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("activity.jsonl");
    let mut run = Run::new(&dir.path().join("c.db"));
    let t = |hm: &str| ts(&format!("2026-03-02T{hm}+08:00"));
    // (text, delivered): t1 is answered in time but logged after its
    // deadline fired; t2 late, logged within the window; t3 late.
    let script = [
        (received("t1", "2026-03-02T10:30:00+08:00"), t("10:30:10")),
        (received("t2", "2026-03-02T10:40:00+08:00"), t("10:40:10")),
        (received("t3", "2026-03-02T10:50:00+08:00"), t("10:50:10")),
        (replied("t2", "2026-03-02T11:42:00+08:00"), t("11:42:00")),
        (replied("t1", "2026-03-02T11:29:00+08:00"), t("11:50:00")),
        (replied("t3", "2026-03-02T12:10:00+08:00"), t("12:10:00")),
    ];
    let text: String = script.iter().map(|(l, _)| format!("{l}\n")).collect();
    std::fs::write(&log, text).unwrap();
    let lines: Vec<LogLine> = script
        .iter()
        .enumerate()
        .map(|(i, (l, _))| line(&log, i as u64 + 1, l))
        .collect();

    // Held in the window until its stamp + lateness.
    assert_eq!(run.feed(lines[0].clone(), script[0].1), 0);
    assert_eq!(run.core.held(), 1);
    assert_eq!(run.core.next_deadline(), Some(t("10:35:00")));
    run.feed(lines[1].clone(), script[1].1);
    run.feed(lines[2].clone(), script[2].1);
    run.run_until(t("11:00:00"));
    assert_eq!(run.core.held(), 0);
    assert_eq!(run.core.store().held_count().unwrap() as i64, 0);

    // t1 is due at 11:30: it fires strictly after due + lateness.
    let fire = t("11:35:00") + SignedDuration::from_millis(1);
    assert_eq!(run.core.next_deadline(), Some(fire));
    assert_eq!(run.core.tick(t("11:35:00")).unwrap(), 0);
    assert_eq!(count(&run.core, "SELECT COUNT(*) FROM violations"), 0);
    assert_eq!(run.core.tick(fire).unwrap(), 1);
    assert_eq!(status_of(&run.core, "reply-general-1h", "t1"), ["open"]);
    let data: String = run
        .core
        .store()
        .conn()
        .query_row("SELECT data FROM violation_records", [], |r| r.get(0))
        .unwrap();
    let record: Record = serde_json::from_str(&data).unwrap();
    assert!(record.detail.unwrap().contains("工作小时"));
    assert!(
        record.detail_en.unwrap().contains("working hour"),
        "for English mail"
    );
    assert_eq!(outbox(&run.core), (1, 0));
    assert_eq!(run.core.tick(fire).unwrap(), 0);

    // t2's reply (11:42, due 11:40) arrives before its deadline fires.
    run.feed(lines[3].clone(), script[3].1);
    run.run_until(t("11:47:00"));
    assert_eq!(status_of(&run.core, "reply-general-1h", "t2"), ["late"]);

    // t1's reply was stamped 11:29, before its due instant: retracted.
    run.feed(lines[4].clone(), script[4].1);
    assert_eq!(
        status_of(&run.core, "reply-general-1h", "t1"),
        ["retracted"]
    );
    assert_eq!(outbox(&run.core), (2, 1));

    run.feed(lines[5].clone(), script[5].1);
    let end = t("18:00:00");
    run.run_until(end);
    run.core.tick(end).unwrap();
    assert_eq!(status_of(&run.core, "reply-general-1h", "t3"), ["late"]);
    assert_eq!(outbox(&run.core), (3, 1));
    assert_eq!(daemon_view(&run.core), replay_view(&log, end));
}

#[test]
fn a_reported_lapse_waits_for_its_renewal_without_a_wake_and_the_daemon_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("activity.jsonl");
    let mut run = Run::new(&dir.path().join("c.db"));
    let changed = |account: &str, at: &str| {
        format!(
            r#"{{"ts":"{at}","type":"account.password_changed","account":"{account}","by":"zhao.min"}}"#
        )
    };
    let script = [
        (
            changed("ks-main", "2026-01-05T10:00:00+08:00"),
            ts("2026-01-05T02:01:00Z"),
        ),
        (
            changed("ks-service", "2026-01-05T10:00:00+08:00"),
            ts("2026-01-05T02:01:00Z"),
        ),
        // ks-main: due 2026-04-05, changed in September, long after the
        // 30 days a late change is marked for.
        (
            changed("ks-main", "2026-09-02T10:00:00+08:00"),
            ts("2026-09-02T02:01:00Z"),
        ),
    ];
    let text: String = script.iter().map(|(l, _)| format!("{l}\n")).collect();
    std::fs::write(&log, text).unwrap();
    for (i, (l, at)) in script.iter().enumerate() {
        run.feed(line(&log, i as u64 + 1, l), *at);
    }
    // The daemon's next wake is a real instant (it used to add the
    // lateness to "never" and panic).
    let end = ts("2026-10-01T00:00:00Z");
    run.run_until(end);
    run.core.tick(end).unwrap();
    assert!(run.core.next_deadline().is_some_and(|d| d > end));
    // One lapse each, however many periods it lasted.
    assert_eq!(status_of(&run.core, "password-age", "ks-main"), ["open"]);
    assert_eq!(status_of(&run.core, "password-age", "ks-service"), ["open"]);
    assert_eq!(daemon_view(&run.core), replay_view(&log, end));
}

#[test]
fn the_sample_log_gives_what_replay_reports() {
    let dir = tempfile::tempdir().unwrap();
    let mut run = Run::new(&dir.path().join("c.db"));
    let (path, lines) = sample();
    for (l, now) in lines {
        run.feed(l, now);
    }
    run.run_until(ts(END));
    run.core.tick(ts(END)).unwrap();
    let got = daemon_view(&run.core);
    assert_eq!(got, replay_view(&path, ts(END)));
    assert!(got.contains(&("reply-general-1h".into(), "c-1001".into(), true)));
    assert_eq!(
        count(&run.core, "SELECT COUNT(*) FROM violations"),
        outbox(&run.core).0
    );
}

#[test]
fn a_restart_at_any_point_loses_and_repeats_nothing() {
    let (whole, steps, _, _) = run_sample(None, None);
    assert!(!whole.0.is_empty());
    for k in 1..=steps {
        let (got, _, _, _) = run_sample(Some(k), None);
        assert_eq!(got, whole, "restarted before input {k}");
    }
}

#[test]
fn a_failed_commit_at_any_point_is_retried_to_the_same_result() {
    let (whole, steps, _, _) = run_sample(None, None);
    let (mut failed, mut quiet) = (0, 0);
    for k in 1..=steps {
        let (got, _, did_fail, q) = run_sample(None, Some(k));
        assert_eq!(got, whole, "input {k} failed once");
        failed += usize::from(did_fail);
        quiet += q;
    }
    // Every input writes (its cursor or what it read, a fired deadline) —
    // or is a tick that changed nothing and wrote nothing at all.
    assert_eq!(failed + quiet, steps);
    assert!(failed > steps / 2, "{failed} failed, {quiet} quiet");
}

#[test]
fn a_tick_that_fails_to_commit_fires_its_deadline_once_on_retry() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let log = dir.path().join("a.jsonl");
    let mut core = open_core(&db, Limits::default());
    core.store()
        .set_busy_timeout(Duration::from_millis(1))
        .unwrap();
    let now = ts("2026-03-02T10:30:10+08:00");
    let msg = line(&log, 1, &received("t1", "2026-03-02T10:30:00+08:00"));
    core.log_lines(KEY, &[msg], &cursor(1), now).unwrap();
    core.tick(ts("2026-03-02T10:40:00+08:00")).unwrap();
    let fire = core.next_deadline().unwrap();
    let open = core.store().obligation_count();

    let held = lock(&db);
    assert!(core.tick(fire).is_err());
    assert_memory_matches_disk(&core);
    assert_eq!(core.store().obligation_count(), open);
    assert_eq!(core.next_deadline(), Some(fire));
    drop(held);

    assert_eq!(core.tick(fire).unwrap(), 1);
    assert_eq!(core.tick(fire).unwrap(), 0);
    assert_eq!(outbox(&core), (1, 0));
    assert_memory_matches_disk(&core);
}

#[test]
fn bad_lines_are_recorded_and_the_rest_still_counts() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.jsonl");
    let mut core = open_core(&dir.path().join("c.db"), Limits::default());
    let published = r#"{"ts":"2026-03-02T10:15:00+08:00","type":"content.published","content":"p1","account":"ks-main","by":"zhao.min","sha256":"9f","hashtags":["养生"],"text":"本品可根治失眠"}"#;
    let bad = |n: u64, why: &str| LogLine {
        file: Arc::from(log.as_path()),
        line: n,
        text: Err(why.to_string()),
    };
    let lines = vec![
        // A byte order mark before the first line, as `replay` accepts.
        line(
            &log,
            1,
            &format!("\u{feff}{}", received("t1", "2026-03-02T10:00:00+08:00")),
        ),
        bad(2, "line longer than 1048576 bytes"),
        bad(3, "not valid UTF-8"),
        line(&log, 4, "this line is not JSON"),
        line(&log, 5, "   \r"),
        line(&log, 6, published),
    ];
    let now = ts("2026-03-02T10:20:00+08:00");
    core.log_lines(KEY, &lines, &cursor(6), now).unwrap();
    let mut st = core
        .store()
        .conn()
        .prepare("SELECT source, message FROM errors ORDER BY id")
        .unwrap();
    let errors: Vec<(String, String)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    drop(st);
    let shown = log.display();
    let messages: Vec<&str> = errors.iter().map(|e| e.1.as_str()).collect();
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert!(errors.iter().all(|e| e.0 == KEY));
    assert_eq!(
        messages[0],
        format!("{shown}:2: line longer than 1048576 bytes")
    );
    assert_eq!(messages[1], format!("{shown}:3: not valid UTF-8"));
    assert!(messages[2].starts_with(&format!("{shown}:4: malformed event")));
    assert_eq!(core.malformed, 3);
    let source: (String, i64) = core
        .store()
        .conn()
        .query_row(
            "SELECT cursor, lines FROM sources WHERE key = ?1",
            [KEY],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(source, (cursor(6), 6));
    // The good lines count: the message opened its deadline, the
    // publication's claim is a violation once the window lets it go.
    core.tick(ts("2026-03-02T10:21:00+08:00")).unwrap();
    assert!(core.store().has_obligation("reply-general-1h", "t1"));
    assert_eq!(status_of(&core, "disease-treatment", "p1"), ["open"]);
    // A claim in an event's text carries its rule's suggestion, as one in
    // a file does.
    let data: String = core
        .store()
        .conn()
        .query_row(
            "SELECT r.data FROM violations v JOIN violation_records r ON r.id = v.id WHERE v.rule = 'disease-treatment'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let record: Record = serde_json::from_str(&data).unwrap();
    assert!(
        record
            .suggestion
            .as_deref()
            .is_some_and(|s| s.contains("删除")),
        "{data}"
    );
}

#[test]
fn lines_from_two_logs_interleave_through_the_window() {
    // A reply written to another log up to the lateness after a later
    // event still discharges in time.
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
    let mut core = open_core(&dir.path().join("c.db"), Limits::default());
    let t = |hm: &str| ts(&format!("2026-03-02T{hm}+08:00"));
    let msg = line(&a, 1, &received("t1", "2026-03-02T10:30:00+08:00"));
    core.log_lines("a", &[msg], &cursor(1), t("10:30:00"))
        .unwrap();
    let other = line(&a, 2, &received("t9", "2026-03-02T11:31:00+08:00"));
    core.log_lines("a", &[other], &cursor(2), t("11:31:00"))
        .unwrap();
    let reply = line(&b, 1, &replied("t1", "2026-03-02T11:30:00+08:00"));
    core.log_lines("b", &[reply], &cursor(1), t("11:34:00"))
        .unwrap();
    core.tick(t("12:00:00")).unwrap();
    assert!(status_of(&core, "reply-general-1h", "t1").is_empty());
    assert_eq!(count(&core, "SELECT COUNT(*) FROM sources"), 2);
}

#[test]
fn a_held_row_that_no_longer_parses_does_not_block_new_ones() {
    // Say an upgrade made an event type unknown: the row is skipped, and
    // its id must not be handed out again.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let log = dir.path().join("a.jsonl");
    drop(open_core(&db, Limits::default()));
    Connection::open(&db)
        .unwrap()
        .execute(
            "INSERT INTO held_events (id, file, line, ts, event) VALUES (1, 'old.jsonl', 1, 0, ?1)",
            [r#"{"ts":"2026-03-02T10:00:00+08:00","type":"retired.kind"}"#],
        )
        .unwrap();
    let mut core = open_core(&db, Limits::default());
    assert_eq!(core.held(), 0);
    let msg = line(&log, 1, &received("t1", "2026-03-02T10:30:00+08:00"));
    let now = ts("2026-03-02T10:30:10+08:00");
    core.log_lines(KEY, &[msg], &cursor(1), now).unwrap();
    assert_eq!(core.held(), 1);
}

/// Catching up on an old log in several batches: the engine's time follows
/// the events read, so the reply in the next batch still discharges the
/// question in time — no violation, no retraction mail.
#[test]
fn a_backlog_read_in_batches_is_judged_as_replay_judges_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut core = open_core(&dir.path().join("c.db"), Limits::default());
    let log = dir.path().join("activity.jsonl");
    let q = line(
        &log,
        1,
        r#"{"ts":"2026-03-02T10:00:00+08:00","type":"message.received","thread":"b1","account":"ks-service","channel":"dm","complexity":"general","text":"在吗"}"#,
    );
    let a = line(
        &log,
        2,
        r#"{"ts":"2026-03-02T10:30:00+08:00","type":"message.replied","thread":"b1","by":"li.na","text":"您好"}"#,
    );
    // Read months later, the question and the answer in two batches.
    let now = ts("2026-11-26T12:00:00+08:00");
    core.log_batch(KEY, &[q], &cursor(1), false, now).unwrap();
    core.log_batch(KEY, &[a], &cursor(2), true, now).unwrap();
    assert_eq!(
        count(
            &core,
            "SELECT COUNT(*) FROM violations WHERE rule LIKE 'reply-%'"
        ),
        0
    );
    assert_eq!(
        count(
            &core,
            "SELECT COUNT(*) FROM outbox o JOIN violations v ON v.id = o.violation WHERE v.rule LIKE 'reply-%'"
        ),
        0
    );
}

/// One input's held events are one stored batch; a restart after some of
/// them left the window holds exactly the others, and the batch is gone
/// once the last one is released. A wall clock set back releases nothing
/// twice.
#[test]
fn a_partly_released_batch_restores_only_what_is_still_held() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let log = dir.path().join("a.jsonl");
    let t = |hm: &str| ts(&format!("2026-03-02T{hm}+08:00"));
    let mut core = open_core(&db, Limits::default());
    // The log's first batch commits its cursor at once (pending.rs).
    core.log_lines(KEY, &[line(&log, 0, "")], &cursor(0), t("09:00:00"))
        .unwrap();
    let lines: Vec<LogLine> = ["10:00:00", "10:02:00", "10:04:00"]
        .iter()
        .enumerate()
        .map(|(i, at)| {
            let thread = format!("p{i}");
            line(
                &log,
                i as u64 + 1,
                &received(&thread, &format!("2026-03-02T{at}+08:00")),
            )
        })
        .collect();
    core.log_lines(KEY, &lines, &cursor(3), t("10:04:10"))
        .unwrap();
    assert_eq!(core.held(), 3);
    // All held: not stored, the cursor not moved (the log holds them).
    assert_eq!(count(&core, "SELECT COUNT(*) FROM held_batches"), 0);
    assert_eq!(count(&core, "SELECT lines FROM sources"), 1);
    // 10:08:00 − 5 min: the first two leave the window; the cursor moves
    // past all three and the third is stored.
    core.tick(t("10:08:00")).unwrap();
    assert_eq!(core.held(), 1);
    assert_eq!(core.store().held_count().unwrap(), 1);
    assert_eq!(count(&core, "SELECT lines FROM sources"), 4);
    let blob: Vec<u8> = core
        .store()
        .conn()
        .query_row("SELECT data FROM held_batches", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        held::decode(&blob).len(),
        1,
        "only the one still held is stored"
    );
    let asked = |core: &Core| {
        ["p0", "p1", "p2"]
            .iter()
            .filter(|k| core.store().has_obligation("reply-general-1h", k))
            .count()
    };
    assert_eq!(asked(&core), 2);
    let obligations = core.store().obligation_count();

    // Restart: only the third is held again, and the clock set back an
    // hour does not bring the released ones back.
    drop(core);
    let mut core = open_core(&db, Limits::default());
    assert_eq!(core.held(), 1);
    core.tick(t("09:00:00")).unwrap();
    assert_eq!(core.store().obligation_count(), obligations);
    core.tick(t("10:10:00")).unwrap();
    assert_eq!(core.held(), 0);
    assert_eq!(asked(&core), 3, "each question once");
    assert_eq!(count(&core, "SELECT COUNT(*) FROM held_batches"), 0);
    drop(core);
    let core = open_core(&db, Limits::default());
    assert_eq!(core.held(), 0);
    assert_memory_matches_disk_for_logs(&core);
}

/// A database of an earlier version held one row per event: they are
/// converted at start and evaluated once.
#[test]
fn held_rows_of_an_earlier_version_are_evaluated_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    drop(open_core(&db, Limits::default()));
    Connection::open(&db)
        .unwrap()
        .execute(
            "INSERT INTO held_events (id, file, line, ts, event) VALUES (41, 'old.jsonl', 7, 0, ?1)",
            [received("legacy", "2026-03-02T10:00:00+08:00")],
        )
        .unwrap();
    let core = open_core(&db, Limits::default());
    assert_eq!(core.held(), 1);
    assert_eq!(count(&core, "SELECT COUNT(*) FROM held_events"), 0);
    drop(core);
    let mut core = open_core(&db, Limits::default());
    assert_eq!(core.held(), 1, "converted once, not lost");
    core.tick(ts("2026-03-02T10:06:00+08:00")).unwrap();
    assert_eq!(core.held(), 0);
    assert!(core.store().has_obligation("reply-general-1h", "legacy"));
    // New ids start after the converted one.
    let log = dir.path().join("a.jsonl");
    let msg = line(&log, 1, &received("t2", "2026-03-02T10:30:00+08:00"));
    core.log_lines(KEY, &[msg], &cursor(1), ts("2026-03-02T10:30:10+08:00"))
        .unwrap();
    core.persist_held(ts("2026-03-02T10:30:10+08:00")).unwrap();
    assert_eq!(count(&core, "SELECT MIN(id) FROM held_batches"), 42);
}

fn assert_memory_matches_disk_for_logs(core: &Core) {
    assert_eq!(
        core.store().held_count().unwrap() + core.held_unstored(),
        core.held()
    );
}

/// A wall clock stepped a year forward by mistake and then set right: the
/// step forward fires what it fires, but afterwards new events are held and
/// judged at their own time again — before, the window stayed off and every
/// new question was overdue at once until real time caught up.
#[test]
fn after_the_wall_clock_is_set_back_events_are_held_and_judged_at_their_time() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let log = dir.path().join("a.jsonl");
    let t = |hm: &str| ts(&format!("2026-03-02T{hm}+08:00"));
    let at = |hm: &str| format!("2026-03-02T{hm}+08:00");
    let mut core = open_core(&db, Limits::default());
    let l = |n: u64, text: String| line(&log, n, &text);
    // Held across the jumps: logged at 10:00:30, still in the window.
    core.log_lines(
        KEY,
        &[l(1, received("a", &at("10:00:00")))],
        &cursor(1),
        t("10:00:30"),
    )
    .unwrap();
    core.log_lines(
        KEY,
        &[l(2, received("b", &at("10:01:00")))],
        &cursor(2),
        t("10:01:30"),
    )
    .unwrap();
    assert_eq!(core.held(), 2);

    // Set back to 10:02 before the mistake: nothing was released yet.
    core.tick(t("10:02:00") + SignedDuration::from_hours(24 * 365))
        .unwrap_or_else(|_| panic!("tick"));
    // The step forward releases a and b and fires their deadlines (and
    // a year of staleness rules).
    let fired = count(&core, "SELECT COUNT(*) FROM violations");
    assert_eq!(status_of(&core, "reply-general-1h", "a"), ["open"]);
    assert_eq!(status_of(&core, "reply-general-1h", "b"), ["open"]);
    assert_eq!(core.held(), 0);
    core.log_lines(
        KEY,
        &[l(3, received("c", &at("10:02:30")))],
        &cursor(3),
        t("10:02:40"),
    )
    .unwrap();
    assert_eq!(core.held(), 1, "c waits in the window");
    assert_eq!(core.store().held_count().unwrap(), 1);

    // A restart keeps c held, once.
    drop(core);
    let mut core = open_core(&db, Limits::default());
    assert_eq!(core.held(), 1);
    core.log_lines(
        KEY,
        &[l(4, replied("c", &at("10:20:00")))],
        &cursor(4),
        t("10:20:05"),
    )
    .unwrap();
    core.tick(t("12:00:00")).unwrap();
    assert_eq!(
        count(&core, "SELECT COUNT(*) FROM violations"),
        fired,
        "c was answered within the hour: no violation for it"
    );
    assert!(!core.store().has_obligation("reply-general-1h", "c"));
    assert_eq!(core.held(), 0);
    drop(core);
    let core = open_core(&db, Limits::default());
    assert_eq!(core.held(), 0);
    assert_memory_matches_disk_for_logs(&core);
}

/// From review: the input that notices the clock went back may release at
/// once every event it brought (older than the new horizon). The stored
/// window must then hold nothing — not a batch written before the releases,
/// left on disk and judged again after a second correction and a restart.
#[test]
fn a_batch_released_by_the_input_that_set_the_clock_back_is_not_left_stored() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let log = dir.path().join("a.jsonl");
    let t = |hm: &str| ts(&format!("2026-03-02T{hm}+08:00"));
    let at = |hm: &str| format!("2026-03-02T{hm}+08:00");
    let mut core = open_core(&db, Limits::default());
    let l = |n: u64, text: String| line(&log, n, &text);
    core.tick(t("09:30:00") + SignedDuration::from_hours(24 * 365))
        .unwrap_or_else(|_| panic!("tick"));
    // Set right: x (10:00) is older than now − lateness (10:15): released at once.
    core.log_lines(
        KEY,
        &[l(1, received("x", &at("10:00:00")))],
        &cursor(1),
        t("10:20:00"),
    )
    .unwrap();
    assert_eq!(core.held(), 0);
    core.log_lines(
        KEY,
        &[l(2, replied("x", &at("10:05:00")))],
        &cursor(2),
        t("10:21:00"),
    )
    .unwrap();
    assert_eq!(count(&core, "SELECT COUNT(*) FROM held_batches"), 0);
    // A second correction, 80 minutes back, then a restart.
    core.tick(t("09:00:00")).unwrap();
    drop(core);
    let mut core = open_core(&db, Limits::default());
    assert_eq!(core.held(), 0);
    core.tick(t("09:01:00")).unwrap();
    core.tick(t("12:30:00")).unwrap();
    assert!(
        status_of(&core, "reply-general-1h", "x").is_empty(),
        "x was answered in 5 minutes: judged once, no violation"
    );
}
