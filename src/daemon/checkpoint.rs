//! WAL checkpoints on a thread of their own.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses its
//! threshold, so the core actor — the one writer — would copy the WAL back
//! into the database and fsync it in the middle of its inputs (a sixth of
//! its time while a log backlog is read). A checkpointer with its own
//! connection does that beside it: PASSIVE checkpoints never block the
//! writer, and the writer restarts the WAL from its beginning once a
//! checkpoint has caught up.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::Connection;

/// How often the WAL is copied back. While a backlog is ingested the WAL
/// grows by a few MB in this time; idle, a checkpoint of nothing is a read
/// of the WAL index.
const EVERY: Duration = Duration::from_millis(500);

/// Stops its thread when dropped.
#[derive(Debug)]
pub struct Checkpointer {
    _stop: mpsc::Sender<()>,
}

impl Checkpointer {
    /// Starts checkpointing `db`; the caller turns its own automatic
    /// checkpoints off only when this succeeded.
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
