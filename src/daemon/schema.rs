//! The database's schema: migrations applied in order at start, SQLite's
//! `user_version` counting those done; a database from a newer complyd is
//! refused.

use rusqlite::Connection;

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
];

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
        let tx = conn.transaction().map_err(Migrate::Sql)?;
        tx.execute_batch(sql).map_err(Migrate::Sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)
            .map_err(Migrate::Sql)?;
        tx.commit().map_err(Migrate::Sql)?;
    }
    Ok(())
}
