//! WAL checkpoints on a thread of their own.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses its
//! threshold, so the core actor — the one writer — would copy the WAL back
//! into the database and fsync it in the middle of its inputs (a sixth of
//! its time while a log backlog is read). A checkpointer with its own
//! connection does that beside it: PASSIVE checkpoints never block the
//! writer, and the writer restarts the WAL from its beginning once a
//! checkpoint has caught up.
//!
//! While the writer commits with short pauses only (a backlog being read),
//! a PASSIVE checkpoint never quite catches up — the writer has appended
//! more by the time it ends — so the WAL never restarts and grows by
//! everything written (113 MB for a 66 MB log, and never given back). The
//! writer's own automatic checkpoint therefore stays on as a backstop past
//! [`WAL_LIMIT`] ([`writer_backstop`]): by then the checkpointer has copied
//! nearly all of it, so the writer's checkpoint is short, and it lets the
//! WAL restart.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::Connection;

/// How often the WAL is copied back. While a backlog is ingested the WAL
/// grows by a few MB in this time; idle, a checkpoint of nothing is a read
/// of the WAL index.
const EVERY: Duration = Duration::from_millis(500);

/// How large the WAL may grow before the writer checkpoints it itself; a
/// restarted WAL file is cut back to this size.
pub const WAL_LIMIT: u64 = 64 << 20;

/// The writer's settings beside a checkpointer: its automatic checkpoint
/// only past `limit` bytes of WAL, and the WAL file cut back to `limit`
/// when it restarts.
pub fn writer_backstop(conn: &Connection, limit: u64) -> rusqlite::Result<()> {
    let page: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    conn.pragma_update(None, "wal_autocheckpoint", limit as i64 / page.max(512))?;
    conn.pragma_update(None, "journal_size_limit", limit as i64)?;
    Ok(())
}

/// Stops its thread when dropped.
#[derive(Debug)]
pub struct Checkpointer {
    _stop: mpsc::Sender<()>,
}

impl Checkpointer {
    /// Starts checkpointing `db`; the caller leaves its own automatic
    /// checkpoints as a backstop only ([`writer_backstop`]) when this
    /// succeeded.
    pub fn start(db: &Path) -> Result<Checkpointer, String> {
        let conn = Connection::open(db).map_err(|e| e.to_string())?;
        let (stop, rx) = mpsc::channel::<()>();
        let db = db.to_path_buf();
        std::thread::Builder::new()
            .name("complyd-wal".into())
            .spawn(move || {
                let mut failing = false;
                // Ends when the store (the sender) is dropped.
                while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(EVERY) {
                    let r = conn
                        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(0));
                    match r {
                        Err(e) if !failing => {
                            // Logged once per outage, not every half second.
                            tracing::warn!("{}: WAL checkpoint failed: {e}", db.display());
                            failing = true;
                        }
                        Err(_) => {}
                        Ok(_) => failing = false,
                    }
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(Checkpointer { _stop: stop })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer committing with short pauses, as while a backlog is read:
    /// the WAL stays near the limit instead of growing by everything
    /// written.
    #[test]
    fn the_wal_of_a_busy_writer_stays_bounded() {
        const LIMIT: u64 = 2 << 20;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("c.db");
        let conn = Connection::open(&db).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, data BLOB NOT NULL)")
            .unwrap();
        let _ck = Checkpointer::start(&db).unwrap();
        writer_backstop(&conn, LIMIT).unwrap();
        let wal = dir.path().join("c.db-wal");
        let blob = vec![7u8; 64 << 10];
        let mut biggest = 0;
        // 96 MB over about three seconds (six checkpoints).
        for i in 0..1536 {
            conn.execute(
                "INSERT OR REPLACE INTO t (id, data) VALUES (?1, ?2)",
                rusqlite::params![i % 64, blob],
            )
            .unwrap();
            biggest = biggest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
            std::thread::sleep(Duration::from_millis(2));
        }
        assert!(
            biggest < 3 * LIMIT,
            "the WAL grew to {biggest} bytes (limit {LIMIT})"
        );
    }
}
