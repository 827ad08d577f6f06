//! Tests of the core actor: files, logs, deadlines, restarts, failed commits.
//!
//! Every test drives the core with explicit instants (a manual clock) and
//! looks at the database the way `complyd status` would.

use super::*;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use rusqlite::Connection;

use crate::calendar::Calendar;

#[path = "core_tests_logs.rs"]
mod logs;

#[path = "core_tests_faults.rs"]
mod faults;

#[path = "core_tests_pending.rs"]
mod pending;

/// The shipped rules, loaded once.
fn rules() -> Arc<RuleSet> {
    static RULES: OnceLock<Arc<RuleSet>> = OnceLock::new();
    RULES
        .get_or_init(|| {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
            Arc::new(crate::rules::load(&dir).expect("shipped rules load"))
        })
        .clone()
}

/// The environment `complyd replay` builds without a config file.
fn env() -> Env {
    Env {
        calendar: Calendar::default(),
        lists: rules().lists.clone(),
    }
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

const LATENESS: SignedDuration = SignedDuration::from_mins(5);

fn open_core(db: &Path, limits: Limits) -> Core {
    Core::new(rules(), env(), Store::open(db).unwrap(), LATENESS, limits).unwrap()
}

fn count(core: &Core, sql: &str) -> i64 {
    core.store()
        .conn()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

/// (rule, subject, status, fingerprint) of every violation.
type Row = (String, String, String, String);

fn violations(core: &Core) -> Vec<Row> {
    let mut st = core
        .store()
        .conn()
        .prepare("SELECT rule, subject, status, fingerprint FROM violations ORDER BY id")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn status_of(core: &Core, rule: &str, subject: &str) -> Vec<String> {
    violations(core)
        .into_iter()
        .filter(|v| v.0 == rule && v.1 == subject)
        .map(|v| v.2)
        .collect()
}

/// Outbox rows per kind: (violation, retraction).
fn outbox(core: &Core) -> (i64, i64) {
    (
        count(core, "SELECT COUNT(*) FROM outbox WHERE kind = 'violation'"),
        count(
            core,
            "SELECT COUNT(*) FROM outbox WHERE kind = 'retraction'",
        ),
    )
}

/// Memory holds exactly the obligations the database holds.
fn assert_memory_matches_disk(core: &Core) {
    // The base table and the journal's changes (store/journal.rs).
    let on_disk: Vec<(String, String)> =
        crate::daemon::store::journal::obligations(core.store().conn())
            .unwrap()
            .0
            .into_iter()
            .map(|(rule, key, _, _)| (rule, key))
            .collect();
    assert_eq!(core.store().obligation_count(), on_disk.len());
    for (rule, key) in &on_disk {
        assert!(
            core.store().has_obligation(rule, key),
            "{rule}/{key} not in memory"
        );
    }
    let held = core.store().held_count().unwrap() + core.held_unstored();
    assert_eq!(core.held(), held, "held events: stored + past the cursor");
}

fn set_mtime(path: &Path, secs: u64) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(std::time::UNIX_EPOCH + Duration::from_secs(secs))
        .unwrap();
}

/// Holds the write lock of `db` until dropped (rolled back on close).
fn lock(db: &Path) -> Connection {
    let c = Connection::open(db).unwrap();
    c.execute_batch("BEGIN EXCLUSIVE").unwrap();
    c
}

const CLAIMS: &str = "第一行\n本品可以根治高血压，100%有效\n";

#[test]
fn dropped_file_claims_are_recorded_once_and_follow_edits() {
    let dir = tempfile::tempdir().unwrap();
    let mut core = open_core(&dir.path().join("state/complyd.db"), Limits::default());
    let file = dir.path().join("a.txt");
    std::fs::write(&file, CLAIMS).unwrap();
    set_mtime(&file, 1_000);
    let now = ts("2026-03-02T02:00:00Z");

    let out = core.check_file(&file, now).unwrap();
    assert_eq!(
        out,
        FileOutcome::Checked {
            findings: 2,
            new: 2
        }
    );
    let subject = file.display().to_string();
    let first = violations(&core);
    let rules: BTreeSet<&str> = first.iter().map(|v| v.0.as_str()).collect();
    assert_eq!(
        rules,
        BTreeSet::from(["disease-treatment", "guaranteed-efficacy"])
    );
    assert!(first.iter().all(|v| v.1 == subject && v.2 == "open"));
    assert_eq!(outbox(&core), (2, 0));
    // The record names the place and carries an excerpt for the mail.
    let data: String = core
        .store()
        .conn()
        .query_row(
            "SELECT r.data FROM violations v JOIN violation_records r ON r.id = v.id WHERE v.rule = 'disease-treatment'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let rec: Record = serde_json::from_str(&data).unwrap();
    assert_eq!(rec.location, vec![format!("{subject}:2:5")]);
    assert_eq!(
        rec.excerpt.as_deref(),
        Some("第一行 本品可以根治高血压，100%有效 ")
    );

    // Same size and mtime: not even read.
    assert_eq!(core.check_file(&file, now).unwrap(), FileOutcome::Unchanged);
    // Touched: new mtime, same bytes.
    set_mtime(&file, 2_000);
    assert_eq!(core.check_file(&file, now).unwrap(), FileOutcome::Unchanged);
    assert_eq!(
        core.store().file(&file).unwrap().unwrap().mtime_ns,
        2_000_000_000_000
    );
    // And after the touch the new mtime is what counts as unchanged.
    assert_eq!(core.check_file(&file, now).unwrap(), FileOutcome::Unchanged);
    assert_eq!(violations(&core), first);
    assert_eq!(outbox(&core), (2, 0));

    // A paragraph added above: the claims move but keep their identity.
    std::fs::write(&file, format!("新加的一段介绍\n\n{CLAIMS}")).unwrap();
    set_mtime(&file, 3_000);
    let out = core.check_file(&file, now).unwrap();
    assert_eq!(
        out,
        FileOutcome::Checked {
            findings: 2,
            new: 0
        }
    );
    assert_eq!(violations(&core), first);
    assert_eq!(outbox(&core), (2, 0));

    // One claim removed: its violation is fixed, the other stays open.
    std::fs::write(&file, "新加的一段介绍\n本品100%有效\n").unwrap();
    set_mtime(&file, 4_000);
    let out = core.check_file(&file, now).unwrap();
    assert_eq!(
        out,
        FileOutcome::Checked {
            findings: 1,
            new: 0
        }
    );
    assert_eq!(status_of(&core, "disease-treatment", &subject), ["fixed"]);
    assert_eq!(status_of(&core, "guaranteed-efficacy", &subject), ["open"]);
    assert_eq!(outbox(&core), (2, 0));

    // Unreadable this time (grown past the limit): the open violation is
    // not taken as fixed.
    std::fs::write(&file, "x".repeat(2048)).unwrap();
    set_mtime(&file, 4_500);
    let small = Limits {
        max_file_bytes: 1024,
        ..Limits::default()
    };
    let mut tight = open_core(&dir.path().join("state/complyd.db"), small);
    tight.check_file(&file, now).unwrap();
    assert_eq!(status_of(&tight, "guaranteed-efficacy", &subject), ["open"]);
    drop(tight);

    // The removed claim comes back: open again, and mailed as reopened.
    std::fs::write(&file, format!("新加的一段介绍\n\n{CLAIMS}")).unwrap();
    set_mtime(&file, 5_000);
    let out = core.check_file(&file, now).unwrap();
    assert_eq!(
        out,
        FileOutcome::Checked {
            findings: 2,
            new: 1
        }
    );
    assert_eq!(status_of(&core, "disease-treatment", &subject), ["open"]);
    assert_eq!(
        count(&core, "SELECT COUNT(*) FROM outbox WHERE kind = 'reopened'"),
        1
    );

    // Deleted: forgotten as a file, its violations stay.
    std::fs::remove_file(&file).unwrap();
    assert_eq!(core.check_file(&file, now).unwrap(), FileOutcome::Gone);
    assert!(core.store().file(&file).unwrap().is_none());
    assert_eq!(violations(&core).len(), 3, "two claims and one not-checked");
}

#[test]
fn unreadable_inputs_become_not_checked_records_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        max_file_bytes: 1024,
        ..Limits::default()
    };
    let mut core = open_core(&dir.path().join("c.db"), limits);
    let now = ts("2026-03-02T02:00:00Z");
    let not_checked = |core: &Core, p: &Path| -> Vec<String> {
        let mut st = core
            .store()
            .conn()
            .prepare("SELECT r.data FROM violations v JOIN violation_records r ON r.id = v.id WHERE v.rule = 'not-checked' AND v.subject = ?1")
            .unwrap();
        st.query_map([p.display().to_string()], |r| r.get::<_, String>(0))
            .unwrap()
            .map(|d| {
                serde_json::from_str::<Record>(&d.unwrap())
                    .unwrap()
                    .detail_en
                    .unwrap()
            })
            .collect()
    };

    let binary = dir.path().join("b.txt");
    std::fs::write(&binary, "\0\u{1}\u{2}\0 根治 \0").unwrap();
    assert_eq!(
        core.check_file(&binary, now).unwrap(),
        FileOutcome::Checked {
            findings: 1,
            new: 1
        }
    );
    assert!(not_checked(&core, &binary)[0].starts_with("binary file"));
    // Said in Chinese to people, the English kept for English mail.
    let data: String = core
        .store()
        .conn()
        .query_row(
            "SELECT r.data FROM violations v JOIN violation_records r ON r.id = v.id
             WHERE v.subject = ?1",
            [binary.display().to_string()],
            |r| r.get(0),
        )
        .unwrap();
    let rec: Record = serde_json::from_str(&data).unwrap();
    assert_eq!(rec.message, "未检查：二进制文件（前 8 KiB 含 NUL 字节）");
    assert_eq!(
        rec.message_en.as_deref(),
        Some("Not checked: binary file (NUL bytes in the first 8 KiB)")
    );

    let big = dir.path().join("big.txt");
    std::fs::write(&big, "根治".repeat(1000)).unwrap();
    assert_eq!(
        core.check_file(&big, now).unwrap(),
        FileOutcome::Checked {
            findings: 1,
            new: 1
        }
    );
    assert_eq!(
        not_checked(&core, &big),
        ["file is 6000 bytes, over the 1024-byte limit"]
    );

    let sub = dir.path().join("folder");
    std::fs::create_dir(&sub).unwrap();
    assert_eq!(
        core.check_file(&sub, now).unwrap(),
        FileOutcome::Checked {
            findings: 1,
            new: 1
        }
    );
    assert_eq!(
        not_checked(&core, &sub),
        ["cannot read: not a regular file"]
    );
    assert_eq!(core.check_file(&sub, now).unwrap(), FileOutcome::Unchanged);

    let gone = dir.path().join("gone.txt");
    std::fs::write(&gone, CLAIMS).unwrap();
    std::fs::remove_file(&gone).unwrap();
    assert_eq!(core.check_file(&gone, now).unwrap(), FileOutcome::Gone);

    assert_eq!(count(&core, "SELECT COUNT(*) FROM violations"), 3);
    assert_eq!(outbox(&core), (3, 0));
}

#[test]
fn a_file_too_big_to_check_stays_one_violation_as_it_grows() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        max_file_bytes: 1024,
        ..Limits::default()
    };
    let mut core = open_core(&dir.path().join("c.db"), limits);
    let big = dir.path().join("big.txt");
    let now = ts("2026-03-02T02:00:00Z");
    std::fs::write(&big, "x".repeat(2000)).unwrap();
    set_mtime(&big, 1_000);
    core.check_file(&big, now).unwrap();
    std::fs::write(&big, "x".repeat(3000)).unwrap();
    set_mtime(&big, 2_000);
    assert_eq!(
        core.check_file(&big, now).unwrap(),
        FileOutcome::Checked {
            findings: 1,
            new: 0
        }
    );
    let subject = big.display().to_string();
    assert_eq!(status_of(&core, "not-checked", &subject), ["open"]);
    assert_eq!(outbox(&core), (1, 0));
}

#[test]
fn a_failed_file_commit_leaves_nothing_and_the_retry_counts_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let mut core = open_core(&db, Limits::default());
    core.store()
        .set_busy_timeout(Duration::from_millis(20))
        .unwrap();
    let file = dir.path().join("a.txt");
    std::fs::write(&file, CLAIMS).unwrap();
    let now = ts("2026-03-02T02:00:00Z");

    let held = lock(&db);
    assert!(core.check_file(&file, now).is_err());
    assert_eq!(count(&core, "SELECT COUNT(*) FROM violations"), 0);
    assert!(core.store().file(&file).unwrap().is_none());
    drop(held);

    assert_eq!(
        core.check_file(&file, now).unwrap(),
        FileOutcome::Checked {
            findings: 2,
            new: 2
        }
    );
    assert_eq!(outbox(&core), (2, 0));
    assert_eq!(core.check_file(&file, now).unwrap(), FileOutcome::Unchanged);
}

#[test]
fn reopening_a_database_is_idempotent_and_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("deep/state/c.db");
    let file = dir.path().join("a.txt");
    std::fs::write(&file, CLAIMS).unwrap();
    {
        let mut core = open_core(&db, Limits::default());
        core.check_file(&file, ts("2026-03-02T02:00:00Z")).unwrap();
    }
    for _ in 0..2 {
        let core = open_core(&db, Limits::default());
        assert_eq!(count(&core, "PRAGMA user_version"), 10);
        assert_eq!(count(&core, "SELECT COUNT(*) FROM violations"), 2);
        assert_eq!(count(&core, "SELECT COUNT(*) FROM files"), 1);
    }
    Connection::open(&db)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    match Store::open(&db) {
        Err(StoreError::TooNew { found, known, .. }) => assert_eq!((found, known), (99, 10)),
        other => panic!("expected TooNew, got {other:?}"),
    }
}

#[test]
fn a_problem_of_the_watched_folders_is_stored_once_per_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let now = ts("2026-03-02T02:00:00Z");
    let loop_ = "/drop/loop: symlink loop: leads back to /drop (not followed)";
    let mut core = open_core(&db, Limits::default());
    assert!(core.record_problem("watch", loop_, now).unwrap());
    // A poll or a walk after a reload finds it again.
    assert!(!core.record_problem("watch", loop_, now).unwrap());
    assert!(
        core.record_problem(
            "watch",
            "/drop/p: not a regular file (a FIFO); not checked",
            now
        )
        .unwrap()
    );
    let q = "SELECT COUNT(*) FROM errors WHERE source = 'watch'";
    assert_eq!(count(&core, q), 2);
    drop(core);
    let mut core = open_core(&db, Limits::default());
    assert!(core.record_problem("watch", loop_, now).unwrap());
    assert_eq!(count(&core, q), 3, "said again after a restart");
}

#[test]
fn a_cursor_saved_under_a_relative_spelling_is_taken_over_by_the_absolute_path() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let rel = "examples/logs/activity.jsonl";
    let abs = std::fs::canonicalize(rel).unwrap().display().to_string();
    {
        let s = Store::open(&db).unwrap();
        s.conn()
            .execute_batch(&format!(
                "INSERT INTO sources (key, kind, cursor, lines) VALUES ('{rel}', 'log', '{{}}', 17),
                     ('./{rel}', 'log', '{{}}', 5)"
            ))
            .unwrap();
    }
    let s = Store::open(&db).unwrap();
    let rows: Vec<(String, i64)> = s
        .conn()
        .prepare("SELECT key, lines FROM sources ORDER BY key")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows, [(abs, 17)], "the spelling read furthest stays");
}

#[test]
fn a_file_checked_under_a_relative_path_is_not_checked_again_under_the_absolute_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let rel = "examples/drop/sample.srt";
    {
        let s = Store::open(&db).unwrap();
        s.conn()
            .execute(
                "INSERT INTO files (path, size, mtime_ns, sha256, checked_at, findings)
                 VALUES (?1, 1, 1, 'x', 1, 0)",
                [rel],
            )
            .unwrap();
    }
    let s = Store::open(&db).unwrap();
    let abs = std::fs::canonicalize(rel).unwrap();
    assert!(s.file(&abs).unwrap().is_some());
}
