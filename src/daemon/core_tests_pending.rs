//! Log batches whose events are all held are not stored: their log's
//! cursor waits, and a crash reads them again (core/pending.rs).

use super::*;

fn received(thread: &str, at: &str) -> String {
    format!(
        r#"{{"ts":"2026-03-02T{at}+08:00","type":"message.received","account":"ks-service","channel":"comment","complexity":"general","text":"这个怎么吃？","thread":"{thread}"}}"#
    )
}

fn line(file: &Path, n: u64, text: &str) -> LogLine {
    LogLine {
        file: Arc::from(file),
        line: n,
        text: Ok(text.to_string()),
    }
}

fn t(hm: &str) -> Timestamp {
    ts(&format!("2026-03-02T{hm}+08:00"))
}

fn cursor_of(core: &Core, key: &str) -> Option<String> {
    core.store()
        .conn()
        .query_row("SELECT cursor FROM sources WHERE key = ?1", [key], |r| {
            r.get(0)
        })
        .ok()
}

/// A log's first batch has its cursor committed at once (pending.rs
/// `moved`: without a cursor a restart would start at the live file): a
/// blank line 0 stands for the lines read before.
fn prime(core: &mut Core, key: &str, log: &Path, now: Timestamp) {
    core.log_lines(key, &[line(log, 0, "")], "{\"line\":0}", now)
        .unwrap();
    assert!(cursor_of(core, key).is_some());
}

fn asked(core: &Core, threads: &[&str]) -> usize {
    threads
        .iter()
        .filter(|k| core.store().has_obligation("reply-general-1h", k))
        .count()
}

#[test]
fn a_crash_reads_a_held_batch_again_and_judges_each_event_once() {
    let dir = tempfile::tempdir().unwrap();
    let (db, log) = (dir.path().join("c.db"), dir.path().join("a.jsonl"));
    let mut core = open_core(&db, Limits::default());
    let lines = [
        line(&log, 1, &received("p1", "10:00:00")),
        line(&log, 2, &received("p2", "10:01:00")),
    ];
    // The engine's first input starts it (a write of its own).
    core.tick(t("09:00:00")).unwrap();
    prime(&mut core, "a", &log, t("09:00:00"));
    let changes = core.store().conn().total_changes();
    core.log_lines("a", &lines, "{\"line\":2}", t("10:01:10"))
        .unwrap();
    assert_eq!(core.held(), 2);
    // Only counted as read (and the horizon): no cursor, nothing stored.
    assert!(core.store().conn().total_changes() <= changes + 2);
    assert_eq!(cursor_of(&core, "a").as_deref(), Some("{\"line\":0}"));
    assert_eq!(count(&core, "SELECT waiting FROM sources"), 2);
    assert_eq!(count(&core, "SELECT COUNT(*) FROM held_batches"), 0);

    // Killed: the tailer starts again from the cursor and reads both again.
    drop(core);
    let mut core = open_core(&db, Limits::default());
    assert_eq!(core.held(), 0);
    assert_eq!(count(&core, "SELECT waiting FROM sources"), 0);
    core.log_lines("a", &lines, "{\"line\":2}", t("10:01:20"))
        .unwrap();
    assert_eq!(core.held(), 2);
    assert_eq!(count(&core, "SELECT waiting FROM sources"), 2);
    core.tick(t("10:07:00")).unwrap();
    assert_eq!((core.held(), asked(&core, &["p1", "p2"])), (0, 2));
    assert_eq!(cursor_of(&core, "a").as_deref(), Some("{\"line\":2}"));
    assert_eq!(count(&core, "SELECT lines FROM sources"), 3);
    assert_eq!(count(&core, "SELECT waiting FROM sources"), 0);
    assert_eq!(count(&core, "SELECT COUNT(*) FROM held_batches"), 0);
}

/// Out of order within the lateness: the later batch's event leaves the
/// window first. The cursor moves past both batches, so the earlier one's
/// event, still held, is stored — a crash then restores it once.
#[test]
fn an_earlier_batch_still_held_is_stored_when_the_cursor_moves_past_it() {
    let dir = tempfile::tempdir().unwrap();
    let (db, log) = (dir.path().join("c.db"), dir.path().join("a.jsonl"));
    let mut core = open_core(&db, Limits::default());
    prime(&mut core, "a", &log, t("10:00:00"));
    core.log_lines(
        "a",
        &[line(&log, 1, &received("late", "10:04:00"))],
        "{\"line\":1}",
        t("10:04:10"),
    )
    .unwrap();
    core.log_lines(
        "a",
        &[line(&log, 2, &received("early", "10:01:00"))],
        "{\"line\":2}",
        t("10:04:20"),
    )
    .unwrap();
    assert_eq!(count(&core, "SELECT COUNT(*) FROM held_batches"), 0);
    // 10:07 − 5 min: "early" leaves, "late" stays.
    core.tick(t("10:07:00")).unwrap();
    assert_eq!(core.held(), 1);
    assert_eq!(core.held_unstored(), 0);
    assert_eq!(core.store().held_count().unwrap(), 1);
    assert_eq!(cursor_of(&core, "a").as_deref(), Some("{\"line\":2}"));

    drop(core);
    let mut core = open_core(&db, Limits::default());
    assert_eq!(core.held(), 1, "restored from the stored batch");
    core.tick(t("10:10:00")).unwrap();
    assert_eq!(asked(&core, &["early", "late"]), 2);
    assert_eq!(count(&core, "SELECT COUNT(*) FROM held_batches"), 0);
}

/// Another log's events leaving the window do not move this log's cursor.
#[test]
fn each_log_keeps_its_own_cursor_back() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let (a, b) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
    let mut core = open_core(&db, Limits::default());
    prime(&mut core, "a", &a, t("09:00:00"));
    prime(&mut core, "b", &b, t("09:00:00"));
    core.log_lines(
        "a",
        &[line(&a, 1, &received("a1", "10:00:00"))],
        "{\"line\":1}",
        t("10:00:10"),
    )
    .unwrap();
    core.log_lines(
        "b",
        &[line(&b, 1, &received("b1", "10:04:00"))],
        "{\"line\":1}",
        t("10:04:10"),
    )
    .unwrap();
    core.tick(t("10:06:00")).unwrap();
    assert_eq!(cursor_of(&core, "a").as_deref(), Some("{\"line\":1}"));
    assert_eq!(
        cursor_of(&core, "b").as_deref(),
        Some("{\"line\":0}"),
        "b1 is still held"
    );
    assert_eq!(
        count(&core, "SELECT waiting FROM sources WHERE key = 'b'"),
        1
    );
    assert_eq!(core.held_unstored(), 1);
    assert_eq!(count(&core, "SELECT COUNT(*) FROM held_batches"), 0);
}

/// Stopping stores what is held and moves the cursors: the next start does
/// not need the log (it may be rotated away meanwhile).
#[test]
fn stopping_stores_the_held_events_and_their_cursors() {
    let dir = tempfile::tempdir().unwrap();
    let (db, log) = (dir.path().join("c.db"), dir.path().join("a.jsonl"));
    let mut core = open_core(&db, Limits::default());
    prime(&mut core, "a", &log, t("10:00:00"));
    core.log_lines(
        "a",
        &[line(&log, 1, &received("p1", "10:00:00"))],
        "{\"line\":1}",
        t("10:00:10"),
    )
    .unwrap();
    assert_eq!(core.held_unstored(), 1);
    assert_eq!(core.persist_held(t("10:00:20")).unwrap(), 0);
    assert_eq!(core.held_unstored(), 0);
    assert_eq!(cursor_of(&core, "a").as_deref(), Some("{\"line\":1}"));
    drop(core);
    let mut core = open_core(&db, Limits::default());
    assert_eq!(core.held(), 1);
    core.tick(t("10:06:00")).unwrap();
    assert_eq!(asked(&core, &["p1"]), 1);
}

/// A malformed line is reported once: its batch commits at once (its
/// error with the cursor past it), so a crash does not read it again.
#[test]
fn a_batch_with_a_malformed_line_commits_its_error_and_cursor_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (db, log) = (dir.path().join("c.db"), dir.path().join("a.jsonl"));
    let mut core = open_core(&db, Limits::default());
    let lines = [
        line(&log, 1, &received("p1", "10:00:00")),
        line(&log, 2, "{not json"),
    ];
    core.log_lines("a", &lines, "{\"line\":2}", t("10:00:10"))
        .unwrap();
    assert_eq!(count(&core, "SELECT COUNT(*) FROM errors"), 1);
    assert_eq!(cursor_of(&core, "a").as_deref(), Some("{\"line\":2}"));
    assert_eq!(core.store().held_count().unwrap(), 1, "p1 stored");
    drop(core);
    let core = open_core(&db, Limits::default());
    assert_eq!(core.held(), 1);
}

/// Reads a log, rotates it as logrotate `create` does (the old file kept
/// as `a.jsonl.1`, or compressed away at once: `keep` false), reads on, and
/// crashes before the window releases anything; then restarts the way the
/// daemon does, from the committed cursors. Returns the core after it (and
/// the folder, removed when dropped).
fn crash_after_rotation(keep: bool) -> (Core, tempfile::TempDir) {
    use crate::daemon::tail::{Cursor, LogSet, TailLimits};
    use std::collections::HashMap;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let log = dir.path().join("a.jsonl");
    let key = log.display().to_string();
    let two = format!(
        "{}\n{}\n",
        received("p1", "10:00:00"),
        received("p2", "10:00:01")
    );
    std::fs::write(&log, two).unwrap();
    let mut core = open_core(&db, Limits::default());
    core.tick(t("09:00:00")).unwrap();
    let feed = |core: &mut Core, set: &mut LogSet, now: Timestamp| {
        for _ in 0..5 {
            for (k, b) in set.read(1 << 20) {
                let cursor = serde_json::to_string(&b.cursor).unwrap();
                core.log_lines(&k, &b.lines, &cursor, now).unwrap();
            }
        }
    };
    let mut set = LogSet::new(vec![key.clone()], HashMap::new(), TailLimits::default());
    feed(&mut core, &mut set, t("10:00:10"));
    assert_eq!(core.held(), 2);
    let rotated = dir.path().join("a.jsonl.1");
    std::fs::rename(&log, &rotated).unwrap();
    std::fs::write(&log, format!("{}\n", received("p3", "10:01:00"))).unwrap();
    if !keep {
        let old = std::fs::read(&rotated).unwrap();
        std::fs::write(dir.path().join("a.jsonl.1.gz"), old).unwrap(); // stands for gzip
        std::fs::remove_file(&rotated).unwrap();
    }
    feed(&mut core, &mut set, t("10:01:10"));
    assert_eq!(core.held(), 3, "the running daemon read everything");

    drop((core, set)); // killed
    let mut core = open_core(&db, Limits::default());
    let saved: HashMap<String, Cursor> = core
        .store()
        .cursors()
        .unwrap()
        .into_iter()
        .map(|(k, j)| (k, serde_json::from_str(&j).unwrap()))
        .collect();
    let mut set = LogSet::new(vec![key], saved, TailLimits::default());
    feed(&mut core, &mut set, t("10:02:00"));
    core.tick(t("10:10:00")).unwrap();
    (core, dir)
}

/// Compressed at once (no `delaycompress`): a restart cannot find the old
/// file. The first batch read from the new file moved the cursor past the
/// old one's waiting batches and stored them (a review found them lost).
#[test]
fn a_crash_after_a_compressing_rotation_loses_no_waiting_line() {
    let (core, _dir) = crash_after_rotation(false);
    assert_eq!(asked(&core, &["p1", "p2", "p3"]), 3, "each question once");
}

/// `delaycompress`, and a log read for the first time: with no committed
/// cursor a restart starts at the live file, so a log's first batch
/// commits its cursor at once (a review found the rotated lines lost,
/// silently).
#[test]
fn a_crash_after_a_rotation_loses_no_waiting_line_of_a_new_log() {
    let (core, _dir) = crash_after_rotation(true);
    assert_eq!(asked(&core, &["p1", "p2", "p3"]), 3, "each question once");
}

fn replied(thread: &str, at: &str) -> String {
    format!(
        r#"{{"ts":"2026-03-02T{at}+08:00","type":"message.replied","thread":"{thread}","by":"li.na","text":"您好，饭后服用。"}}"#
    )
}

/// A question waiting past its log's cursor (not stored) and its reply in
/// another log, stored because that log's cursor had to move. A crash, and
/// a restart after the lateness passed: until the tailer has read the logs
/// again the window releases nothing, so the reply is not judged before
/// the question (a review found a false "no reply" violation).
#[test]
fn after_a_crash_a_stored_reply_waits_for_its_question_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let (q, r) = (dir.path().join("q.jsonl"), dir.path().join("r.jsonl"));
    let mut core = open_core(&db, Limits::default());
    core.tick(t("09:00:00")).unwrap();
    prime(&mut core, "q", &q, t("09:00:00"));
    prime(&mut core, "r", &r, t("09:00:00"));
    let question = [line(&q, 1, &received("x1", "10:00:00"))];
    core.log_lines("q", &question, "{\"line\":1}", t("10:00:05"))
        .unwrap();
    // The reply's batch carries a malformed line: its cursor moves now and
    // the reply, still held, is stored.
    core.log_lines(
        "r",
        &[
            line(&r, 1, &replied("x1", "10:02:00")),
            line(&r, 2, "{not json"),
        ],
        "{\"line\":2}",
        t("10:02:05"),
    )
    .unwrap();
    assert_eq!(core.held(), 2);
    assert_eq!(core.held_unstored(), 1, "the question is not stored");
    drop(core); // crash

    // Restarted 20 minutes later; the core's first deadline (the stored
    // reply's) comes before the tailer's first batch.
    // As the daemon starts: the tailer's first pass is announced, and
    // until it has read every log the window releases nothing.
    let mut core = open_core(&db, Limits::default());
    core.logs_starting(t("10:20:00"));
    core.tick(t("10:20:00")).unwrap();
    assert_eq!(core.held(), 1, "the stored reply waits for the logs");
    core.log_batch("q", &question, "{\"line\":1}", true, t("10:20:01"))
        .unwrap();
    core.logs_read();
    core.tick(t("11:30:00")).unwrap();
    let v = count(
        &core,
        "SELECT COUNT(*) FROM violations WHERE rule = 'reply-general-1h'",
    );
    assert_eq!(v, 0, "answered at 10:02, yet reported unanswered");
}
