//! Failed commits whose clean-up fails too: the mirror or the window may
//! then differ from disk, and nothing may be evaluated against them until
//! they are rebuilt.
//!
//! The failures are real SQLite errors caused from another connection: a
//! held write lock makes the commit fail (busy), a table renamed away
//! makes the reload after it fail ("no such table").

use super::*;

fn received(thread: &str, at: &str) -> String {
    format!(
        r#"{{"ts":"{at}","type":"message.received","account":"ks-service","channel":"comment","complexity":"general","text":"这个怎么吃？","thread":"{thread}"}}"#
    )
}

fn line(file: &Path, n: u64, text: &str) -> LogLine {
    LogLine {
        file: Arc::from(file),
        line: n,
        text: Ok(text.to_string()),
    }
}

/// Another connection: renames `table` away and, with `lock`, holds the
/// write lock until dropped.
fn break_db(db: &Path, table: &str, lock: bool) -> Connection {
    let c = Connection::open(db).unwrap();
    c.execute_batch(&format!("ALTER TABLE {table} RENAME TO {table}_away"))
        .unwrap();
    if lock {
        c.execute_batch("BEGIN EXCLUSIVE").unwrap();
    }
    c
}

fn mend_db(c: Connection, table: &str) {
    if !c.is_autocommit() {
        c.execute_batch("ROLLBACK").unwrap();
    }
    c.execute_batch(&format!("ALTER TABLE {table}_away RENAME TO {table}"))
        .unwrap();
}

/// A deadline fires, the commit fails and so does the reload: memory says
/// "fired" while disk has no violation. Before anything else is evaluated
/// the store reloads, so the retry fires it — once.
#[test]
fn a_deadline_whose_commit_and_reload_failed_fires_once_when_the_state_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let log = dir.path().join("a.jsonl");
    let mut core = open_core(&db, Limits::default());
    core.store()
        .set_busy_timeout(Duration::from_millis(1))
        .unwrap();
    let msg = line(&log, 1, &received("t1", "2026-03-02T10:30:00+08:00"));
    core.log_lines("a", &[msg], "{}", ts("2026-03-02T10:30:10+08:00"))
        .unwrap();
    core.tick(ts("2026-03-02T10:40:00+08:00")).unwrap();
    let fire = core.next_deadline().unwrap();
    let obligation = |core: &Core| {
        crate::daemon::store::journal::obligations(core.store().conn())
            .unwrap()
            .0
            .iter()
            .filter(|(rule, _, _, o)| {
                rule == "reply-general-1h" && o.as_ref().is_ok_and(|o| o.fired)
            })
            .count() as i64
    };
    assert_eq!(obligation(&core), 0);

    // Commit: busy; reload: no `facts` table.
    let other = break_db(&db, "facts", true);
    assert!(core.tick(fire).is_err());
    assert!(core.store().is_stale());
    other.execute_batch("COMMIT").unwrap();
    // Unlocked, but still unreadable: nothing is evaluated, nothing written.
    let err = core.tick(fire).unwrap_err();
    assert!(err.to_string().contains("no such table"), "{err}");
    assert_eq!(count(&core, "SELECT COUNT(*) FROM violations"), 0);
    assert_eq!(obligation(&core), 0, "a fired mark without its violation");

    mend_db(other, "facts");
    assert_eq!(core.tick(fire).unwrap(), 1, "the deadline fires on retry");
    assert!(!core.store().is_stale());
    assert_eq!(core.tick(fire).unwrap(), 0);
    assert_eq!(outbox(&core), (1, 0));
    assert_eq!(obligation(&core), 1);
    assert_memory_matches_disk(&core);
}

/// A log input releases an event held by an earlier input and holds its
/// own; the commit fails and so does rebuilding the window. The retry must
/// neither hold the input's events twice nor lose the released one.
#[test]
fn a_log_input_whose_commit_and_window_restore_failed_is_evaluated_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let log = dir.path().join("a.jsonl");
    let mut core = open_core(&db, Limits::default());
    core.store()
        .set_busy_timeout(Duration::from_millis(1))
        .unwrap();
    let t = |hm: &str| ts(&format!("2026-03-02T{hm}+08:00"));
    let first = line(&log, 1, &received("t1", "2026-03-02T10:00:00+08:00"));
    core.log_lines("a", &[first], "{\"line\":1}", t("10:00:10"))
        .unwrap();
    assert_eq!(core.held(), 1);
    let second = [line(&log, 2, &received("t2", "2026-03-02T10:05:30+08:00"))];
    // At 10:06 the window lets t1 go (its obligation is the first write).
    let other = break_db(&db, "held_batches", true);
    assert!(
        core.log_lines("a", &second, "{\"line\":2}", t("10:06:00"))
            .is_err()
    );
    other.execute_batch("COMMIT").unwrap();
    assert!(
        core.log_lines("a", &second, "{\"line\":2}", t("10:06:00"))
            .is_err(),
        "the window cannot be rebuilt yet"
    );
    mend_db(other, "held_batches");

    core.log_lines("a", &second, "{\"line\":2}", t("10:06:00"))
        .unwrap();
    assert_eq!(core.held(), 1, "t2 held once");
    // t2 waits past the cursor, which moved past t1 only.
    assert_eq!(core.held_unstored(), 1);
    assert_eq!(core.store().held_count().unwrap(), 0);
    assert_eq!(count(&core, "SELECT lines FROM sources"), 1);
    assert!(
        core.store().has_obligation("reply-general-1h", "t1"),
        "t1 released once"
    );
    core.tick(t("10:11:00")).unwrap();
    assert_eq!(core.held(), 0);
    assert!(core.store().has_obligation("reply-general-1h", "t2"));
    assert_eq!(
        count(&core, "SELECT lines FROM sources WHERE key = 'a'"),
        2,
        "each line counted once"
    );
    assert_memory_matches_disk(&core);
}
