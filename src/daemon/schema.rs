//! The database's schema: migrations applied in order at start, SQLite's
//! `user_version` counting those done; a database from a newer complyd is
//! refused.

use rusqlite::{Connection, OptionalExtension};

/// Schema migrations, applied in order; `user_version` counts those done.
pub(super) const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE obligations (
    rule TEXT NOT NULL, key TEXT NOT NULL, wake INTEGER NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (rule, key)) WITHOUT ROWID;
CREATE TABLE facts (
    id INTEGER PRIMARY KEY, rule TEXT NOT NULL, key TEXT NOT NULL, ts INTEGER NOT NULL,
    data TEXT NOT NULL);
CREATE INDEX facts_ts ON facts (ts);
CREATE TABLE violations (
    id INTEGER PRIMARY KEY, fingerprint TEXT NOT NULL UNIQUE, rule TEXT NOT NULL,
    severity TEXT NOT NULL, subject TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'open',
    late_at TEXT, data TEXT NOT NULL, created INTEGER NOT NULL, updated INTEGER NOT NULL);
CREATE INDEX violations_subject ON violations (subject);
CREATE TABLE files (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL, checked_at INTEGER NOT NULL, findings INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE sources (
    key TEXT PRIMARY KEY, kind TEXT NOT NULL, cursor TEXT, last_read INTEGER,
    lines INTEGER NOT NULL DEFAULT 0, last_error TEXT) WITHOUT ROWID;
CREATE TABLE held_events (
    id INTEGER PRIMARY KEY, file TEXT NOT NULL, line INTEGER NOT NULL, ts INTEGER NOT NULL,
    event TEXT NOT NULL);
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY, violation INTEGER REFERENCES violations (id), kind TEXT NOT NULL,
    created INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt INTEGER NOT NULL,
    sent_at INTEGER, last_error TEXT, failed INTEGER NOT NULL DEFAULT 0, payload TEXT);
CREATE INDEX outbox_pending ON outbox (next_attempt) WHERE sent_at IS NULL AND failed = 0;
CREATE TABLE errors (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, source TEXT NOT NULL,
    message TEXT NOT NULL);
"#,
    r#"
ALTER TABLE violations ADD COLUMN note TEXT;
ALTER TABLE files ADD COLUMN rules TEXT NOT NULL DEFAULT '';
CREATE TABLE waivers (
    id INTEGER PRIMARY KEY, rule TEXT NOT NULL, scope TEXT NOT NULL, value TEXT NOT NULL,
    reason TEXT NOT NULL, by TEXT NOT NULL, expires INTEGER, created INTEGER NOT NULL);
CREATE TABLE waiver_uses (
    key TEXT PRIMARY KEY, uses INTEGER NOT NULL, last_used INTEGER NOT NULL) WITHOUT ROWID;
"#,
    r#"
ALTER TABLE outbox ADD COLUMN recipients TEXT NOT NULL DEFAULT '[]';
ALTER TABLE outbox ADD COLUMN route INTEGER;
ALTER TABLE outbox ADD COLUMN digest INTEGER NOT NULL DEFAULT 0;
"#,
    r#"
ALTER TABLE violations ADD COLUMN reminded INTEGER;
"#,
    // v5: what a delivery did, recipient by recipient, and which message
    // carried each row (see outbox.rs).
    r#"
ALTER TABLE outbox ADD COLUMN window_end INTEGER;
ALTER TABLE outbox ADD COLUMN message_id TEXT;
ALTER TABLE outbox ADD COLUMN delivered TEXT NOT NULL DEFAULT '[]';
ALTER TABLE outbox ADD COLUMN rejected TEXT NOT NULL DEFAULT '[]';
CREATE INDEX outbox_violation ON outbox (violation);
-- A digest row is queued with next_attempt = the end of its window; a
-- retry moves next_attempt, so the window is kept in a column of its own.
CREATE TRIGGER outbox_window AFTER INSERT ON outbox WHEN NEW.digest = 1
BEGIN UPDATE outbox SET window_end = NEW.next_attempt WHERE id = NEW.id; END;
-- Rows queued before v5: a digest row not yet tried still has its window
-- in next_attempt; one already tried is a window of its own.
UPDATE outbox SET window_end = CASE WHEN attempts = 0 THEN next_attempt ELSE created END
 WHERE digest = 1;
-- Single messages sent before v5 carried the Message-ID derived from the
-- fingerprint (mail::message_key); a digest's cannot be known.
UPDATE outbox SET message_id = '<' || (SELECT fingerprint FROM violations WHERE id = outbox.violation)
    || '.' || kind || CASE WHEN kind = 'reopened' THEN '.' || id ELSE '' END
    || CASE WHEN route > 0 THEN '.r' || route ELSE '' END || '@complyd>'
 WHERE sent_at IS NOT NULL AND digest = 0;
"#,
    // v6: the reorder window, one row per input's held events (held.rs);
    // held_events stays for the rows of older versions, converted at start.
    r#"
CREATE TABLE held_batches (id INTEGER PRIMARY KEY, data BLOB NOT NULL);
"#,
    // v7: violations found by (subject, fingerprint) instead of a UNIQUE
    // fingerprint. A fingerprint is a hash, so a new violation landed on a
    // random page of its index: with 150k violations a commit of 900 new
    // ones rewrote ~1000 index pages into the WAL (150 without it). Keyed
    // by subject first (a thread, an account, a file), new entries cluster,
    // and the one index also serves the subject look-ups the old second
    // index was for. A fingerprint already names its subject, so the pair is
    // unique exactly when the fingerprint is. SQLite cannot drop a column
    // constraint: the table is rebuilt (foreign keys off meanwhile, see
    // `migrate`).
    r#"
CREATE TABLE violations_v7 (
    id INTEGER PRIMARY KEY, fingerprint TEXT NOT NULL, rule TEXT NOT NULL,
    severity TEXT NOT NULL, subject TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'open',
    late_at TEXT, data TEXT NOT NULL, created INTEGER NOT NULL, updated INTEGER NOT NULL,
    note TEXT, reminded INTEGER);
INSERT INTO violations_v7 (id, fingerprint, rule, severity, subject, status, late_at, data,
    created, updated, note, reminded)
  SELECT id, fingerprint, rule, severity, subject, status, late_at, data,
    created, updated, note, reminded FROM violations;
DROP TABLE violations;
ALTER TABLE violations_v7 RENAME TO violations;
CREATE UNIQUE INDEX violations_subject ON violations (subject, fingerprint);
"#,
    // v8: a rule's texts kept once (store/texts.rs); `data` keeps only what
    // is neither a column nor the texts (what it does keep wins over the
    // texts). The view gives every row's full record JSON: rows written
    // before v8 carry everything in `data` and no texts, and patching them
    // with their own columns changes nothing.
    r#"
CREATE TABLE rule_texts (id INTEGER PRIMARY KEY, data TEXT NOT NULL UNIQUE);
ALTER TABLE violations ADD COLUMN texts INTEGER REFERENCES rule_texts (id);
CREATE VIEW violation_records AS
SELECT v.id AS id,
       CASE WHEN json_valid(v.data) THEN
           json_patch(json_patch(COALESCE(t.data, '{}'), v.data),
                      json_object('fingerprint', v.fingerprint, 'rule', v.rule,
                                  'severity', v.severity, 'subject', v.subject))
       -- A damaged row reads as it is (the reader reports it), and never
       -- fails the query that reads the others.
       ELSE v.data END AS data
  FROM violations v LEFT JOIN rule_texts t ON t.id = v.texts;
"#,
    // v9: lines read past a log's cursor whose events are all held in
    // memory (core/pending.rs): shown by `status`, read again after a crash.
    r#"
ALTER TABLE sources ADD COLUMN waiting INTEGER NOT NULL DEFAULT 0;
"#,
    // v10: obligations' changes and facts written as one row per input
    // (store/journal.rs); the rows of `obligations` and `facts` written
    // before are read first and stay until folded or pruned.
    r#"
CREATE TABLE obligation_log (id INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE fact_batches (id INTEGER PRIMARY KEY, newest INTEGER NOT NULL, data BLOB NOT NULL);
CREATE INDEX fact_batches_newest ON fact_batches (newest);
"#,
];

/// Migrations that rebuild a table other tables refer to: SQLite's
/// procedure for that runs with foreign key enforcement off (a DROP TABLE
/// would otherwise delete-check every referring row), and checks the
/// references once the new table is in place. Since v8 the view
/// `violation_records` reads `violations`: a later rebuild of that table
/// must drop the view first and create it again after (SQLite refuses to
/// rename a table under a view that names it).
const REBUILDS: &[usize] = &[6];

#[derive(Debug)]
pub(super) enum Migrate {
    Sql(rusqlite::Error),
    TooNew(i64),
}

pub(super) fn migrate(conn: &mut Connection) -> Result<(), Migrate> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(Migrate::Sql)?;
    if version as usize > MIGRATIONS.len() {
        return Err(Migrate::TooNew(version));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let rebuild = REBUILDS.contains(&i);
        if rebuild {
            // Only outside a transaction does this pragma take effect.
            conn.pragma_update(None, "foreign_keys", "OFF")
                .map_err(Migrate::Sql)?;
        }
        let done = apply(conn, i, sql, rebuild);
        if rebuild {
            conn.pragma_update(None, "foreign_keys", "ON")
                .map_err(Migrate::Sql)?;
        }
        done?;
    }
    Ok(())
}

fn apply(conn: &mut Connection, i: usize, sql: &str, rebuild: bool) -> Result<(), Migrate> {
    // Taken for writing at once, and the version read again inside: a
    // command and a starting daemon may both find the database old, and
    // the second must not apply the step again.
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(Migrate::Sql)?;
    let now: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(Migrate::Sql)?;
    if now as usize > i {
        return Ok(());
    }
    tx.execute_batch(sql).map_err(Migrate::Sql)?;
    if rebuild {
        let broken: Option<String> = tx
            .query_row("PRAGMA foreign_key_check", [], |r| r.get(0))
            .optional()
            .map_err(Migrate::Sql)?;
        if let Some(table) = broken {
            // Rolled back when `tx` drops: the old schema stays.
            return Err(Migrate::Sql(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY),
                Some(format!(
                    "cannot upgrade the state: a row of `{table}` refers to a violation that \
                     is not there (the database is left as it was); `sqlite3 <database> \
                     'PRAGMA foreign_key_check'` lists such rows — delete them after a backup, \
                     then start complyd again"
                )),
            )));
        }
    }
    tx.pragma_update(None, "user_version", (i + 1) as i64)
        .map_err(Migrate::Sql)?;
    tx.commit().map_err(Migrate::Sql)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v6_database() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        for sql in &MIGRATIONS[..6] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 6).unwrap();
        conn.execute_batch(
            "INSERT INTO violations (id, fingerprint, rule, severity, subject, status, data,
                 created, updated, note, reminded)
             VALUES (7, 'ab12', 'reply-deadline', 'high', 'th-1', 'acked', '{}', 1, 2, 'seen', 3),
                    (9, 'cd34', 'reply-deadline', 'high', 'th-2', 'open', '{}', 1, 1, NULL, NULL);
             INSERT INTO outbox (violation, kind, created, next_attempt) VALUES (7, 'violation', 1, 1);",
        )
        .unwrap();
        conn
    }

    #[test]
    fn v7_keeps_every_violation_and_its_mail_and_keys_them_by_subject() {
        let mut conn = v6_database();
        migrate(&mut conn).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v as usize, MIGRATIONS.len());
        let row: (String, String, String, i64) = conn
            .query_row(
                "SELECT fingerprint, status, note, reminded FROM violations WHERE id = 7",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!(row, ("ab12".into(), "acked".into(), "seen".into(), 3));
        let fk: bool = conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert!(fk, "foreign keys enforced again after the rebuild");
        // The outbox still refers to the violation, and the reference holds.
        let insert = |id: i64| {
            conn.execute(
                "INSERT INTO outbox (violation, kind, created, next_attempt) VALUES (?1, 'x', 1, 1)",
                [id],
            )
        };
        assert!(insert(9).is_ok());
        assert!(insert(12345).is_err(), "a mail of no violation is refused");
        // Unique per (subject, fingerprint) — which a fingerprint determines.
        let dup = conn.execute(
            "INSERT INTO violations (fingerprint, rule, severity, subject, data, created, updated)
             VALUES ('ab12', 'r', 'high', 'th-1', '{}', 1, 1)",
            [],
        );
        assert!(dup.is_err());
        let plan: String = conn
            .query_row(
                "EXPLAIN QUERY PLAN SELECT id FROM violations WHERE subject = 'th-1' AND fingerprint = 'ab12'",
                [],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("violations_subject"), "{plan}");
    }

    #[test]
    fn v8_reads_a_v7_record_through_the_view_as_it_was_written() {
        let mut conn = v6_database();
        conn.pragma_update(None, "foreign_keys", "OFF").unwrap();
        conn.execute_batch(MIGRATIONS[6]).unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        conn.pragma_update(None, "user_version", 7).unwrap();
        let full = r#"{"fingerprint":"ef56","rule":"r","severity":"low","message":"信息",
            "clause":["5.3"],"subject":"th-3","location":["a.jsonl:3"],"at":"2026-03-02 10:30"}"#;
        conn.execute(
            "INSERT INTO violations (id, fingerprint, rule, severity, subject, data, created, updated)
             VALUES (11, 'ef56', 'r', 'low', 'th-3', ?1, 1, 1)",
            [full],
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let data: String = conn
            .query_row(
                "SELECT data FROM violation_records WHERE id = 11",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let as_json = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
        assert_eq!(as_json(&data), as_json(full));
    }

    #[test]
    fn a_step_another_process_applied_meanwhile_is_not_applied_again() {
        // The version was read before the other process upgraded: the step
        // finds it done inside its own write transaction.
        let mut conn = v6_database();
        migrate(&mut conn).unwrap();
        let last = MIGRATIONS.len() - 1;
        apply(&mut conn, last, MIGRATIONS[last], false).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v as usize, MIGRATIONS.len());
    }

    #[test]
    fn a_dangling_mail_row_stops_the_rebuild_and_leaves_v6_as_it_was() {
        let mut conn = v6_database();
        conn.pragma_update(None, "foreign_keys", "OFF").unwrap();
        conn.execute(
            "INSERT INTO outbox (violation, kind, created, next_attempt) VALUES (999, 'violation', 1, 1)",
            [],
        )
        .unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        assert!(migrate(&mut conn).is_err());
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, 6);
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM violations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2);
    }
}
