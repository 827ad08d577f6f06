//! The daemon's state in SQLite: open obligations, facts, violations with
//! their fingerprints, checked files, log cursors, the reorder window, the
//! outbox and recent errors.
//!
//! One [`Store`] owns the connection (the core actor owns the store). The
//! engine's working state is a [`MemoryState`] mirror loaded at start: the
//! engine reads it at memory speed, and [`Store::commit`] writes what the
//! input changed, together with the input's violations, outbox rows and
//! source cursor, in ONE transaction. If that transaction fails (disk full,
//! read-only directory) the mirror is reloaded from the database, so memory
//! never runs ahead of disk and the caller can retry the same input later.
//! If the reload fails too, the store is stale: it refuses to commit until a
//! reload succeeds ([`Store::refresh`]), so nothing evaluated against the
//! undone state is ever written.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension};

use super::record::Record;
use super::schema::{MIGRATIONS, Migrate, migrate};
// The outbox's queries live in outbox.rs; its types are used by that name.
pub use super::outbox::{OutboxCounts, OutboxItem};
use crate::engine::{Fact, MemoryState, Obligation, State};

mod commit;
pub(super) mod journal;
mod keys;
mod rows;
mod texts;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("{path}: cannot create the state folder: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A commit was asked of a stale mirror (see [`Store::refresh`]): the
    /// input must be evaluated again.
    #[error(
        "{path}: the state in memory could not be reloaded after a failed write; the input is evaluated again"
    )]
    Stale { path: PathBuf },
    #[error(
        "{path}: the database was written by a newer complyd (schema {found}, this one knows {known})"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: usize,
    },
}

/// Brings the schema up to date (done by the daemon at start, and by a
/// command that finds the database of an older complyd).
pub(super) fn upgrade(conn: &mut Connection, db: &Path) -> Result<(), StoreError> {
    migrate(conn).map_err(|e| match e {
        Migrate::Sql(source) => StoreError::Sqlite {
            path: db.to_path_buf(),
            source,
        },
        Migrate::TooNew(found) => StoreError::TooNew {
            path: db.to_path_buf(),
            found,
            known: MIGRATIONS.len(),
        },
    })
}

/// Logs were once known by their path as the configuration spelled it
/// relative to the working folder (`./examples/logs/a.jsonl`); they are
/// now known by their absolute path. A cursor saved under a relative
/// spelling is taken over by the absolute one (from the same working
/// folder, as a restart runs), so the log is not read — and mailed — again.
fn adopt_relative_log_keys(conn: &Connection) -> rusqlite::Result<()> {
    let rows: Vec<(String, i64)> = conn
        .prepare("SELECT key, lines FROM sources WHERE kind = 'log' AND key NOT LIKE '/%'")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (key, lines) in rows {
        let Ok(abs) = std::fs::canonicalize(&key) else {
            continue;
        };
        let abs = abs.display().to_string();
        let there: Option<i64> = conn
            .query_row("SELECT lines FROM sources WHERE key = ?1", [&abs], |r| {
                r.get(0)
            })
            .optional()?;
        // Two spellings both read it: the one further along stays.
        match there {
            Some(n) if n >= lines => {
                conn.execute("DELETE FROM sources WHERE key = ?1", [&key])?;
            }
            Some(_) => {
                conn.execute("DELETE FROM sources WHERE key = ?1", [&abs])?;
                conn.execute("UPDATE sources SET key = ?2 WHERE key = ?1", [&key, &abs])?;
            }
            None => {
                conn.execute("UPDATE sources SET key = ?2 WHERE key = ?1", [&key, &abs])?;
            }
        }
    }
    // Files checked under a relative path likewise, so that the catch-up
    // pass does not check (and report) them again under the absolute one.
    let files: Vec<String> = conn
        .prepare("SELECT path FROM files WHERE path NOT LIKE '/%'")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for path in files {
        if let Ok(abs) = std::fs::canonicalize(&path) {
            conn.execute(
                "UPDATE OR IGNORE files SET path = ?2 WHERE path = ?1",
                [&path, &abs.display().to_string()],
            )?;
        }
    }
    Ok(())
}

/// A file as last checked, for the catch-up pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRow {
    pub path: PathBuf,
    pub size: u64,
    pub mtime_ns: i64,
    pub sha256: String,
    pub findings: usize,
    /// The digest of the rules it was checked with.
    pub rules: String,
}

/// A late discharge of a reported deadline.
#[derive(Debug, Clone)]
pub struct LateMark {
    pub fingerprint: String,
    /// The violation's subject: violations are found by subject first.
    pub subject: String,
    /// Local time of the discharge.
    pub at: String,
    /// Discharged in time; only logged after the reorder window had passed.
    pub retracted: bool,
}

/// Everything one input changes besides the engine's state.
#[derive(Debug, Default)]
pub struct Writes {
    pub records: Vec<Record>,
    pub late: Vec<LateMark>,
    pub file: Option<FileRow>,
    /// A checked file's fingerprints: violations of that file not among
    /// them are marked fixed.
    pub file_fingerprints: Option<(PathBuf, Vec<String>)>,
    pub removed_file: Option<PathBuf>,
    /// (source key, cursor JSON, lines read).
    pub cursors: Vec<(String, String, u64)>,
    /// (source key, lines): read, held in memory past the cursor.
    pub waiting: Vec<(String, u64)>,
    /// Held events to store: (first id, blob), held.rs's batches.
    pub held_batches: Vec<(u64, Arc<Vec<u8>>)>,
    /// Batches whose last held event was released.
    pub held_drop: Vec<u64>,
    /// The window's release horizon after this input, when it moved.
    pub horizon: Option<Timestamp>,
    /// (source, message): shown by `complyd status`.
    pub errors: Vec<(String, String)>,
    /// The engine's `start` ran on this state.
    pub started: bool,
}

impl Writes {
    /// Whether it writes nothing (a moved horizon alone is no reason to).
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
            && self.late.is_empty()
            && self.file.is_none()
            && self.file_fingerprints.is_none()
            && self.removed_file.is_none()
            && self.cursors.is_empty()
            && self.waiting.is_empty()
            && self.held_batches.is_empty()
            && self.held_drop.is_empty()
            && self.errors.is_empty()
            && !self.started
    }
}

/// What a commit did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Committed {
    /// Fingerprints of violations that were new (and queued for mail).
    pub new: Vec<String>,
}

pub(crate) fn millis(t: Timestamp) -> i64 {
    t.as_millisecond()
}

/// The database and the engine's mirrored state.
#[derive(Debug)]
pub struct Store {
    pub(super) conn: Connection,
    pub(super) path: PathBuf,
    mem: MemoryState,
    dirty: keys::KeySet,
    /// Obligations that have a row: one created and discharged between two
    /// commits (a question answered in the same batch) never gets one.
    on_disk: keys::KeySet,
    /// Facts added since the last commit: (rule, key, fact).
    new_facts: Vec<(String, String, Fact)>,
    /// Entries in the obligations' journal since its last fold.
    journal_entries: usize,
    /// Fold the journal from this many entries (journal.rs; tests fold
    /// sooner).
    fold_at: usize,
    started: bool,
    last_prune: Option<Timestamp>,
    /// A commit failed and so did the reload after it: the mirror may hold
    /// the undone input's changes.
    stale: bool,
    texts: texts::TextsCache,
    /// Declared last: dropped after the connection.
    _checkpointer: Option<super::checkpoint::Checkpointer>,
}

impl Store {
    /// Opens (creating) the database under `state_dir`, migrates it, and
    /// loads the engine's state.
    pub fn open(db: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let sq = |source| StoreError::Sqlite {
            path: db.to_path_buf(),
            source,
        };
        let mut conn = Connection::open(db).map_err(sq)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(sq)?;
        // WAL: readers (`complyd status`) never block the daemon; NORMAL
        // sync is durable across a process crash (SIGKILL), which is the
        // failure the tests exercise; a power cut may lose the last commits
        // but never corrupts.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sq)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sq)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(sq)?;
        // 8 MB of page cache instead of 2: a log batch's transaction touches
        // more pages than 2 MB hold, and spilling them costs WAL writes.
        conn.pragma_update(None, "cache_size", -8000).map_err(sq)?;
        upgrade(&mut conn, db)?;
        adopt_relative_log_keys(&conn).map_err(sq)?;
        // Checkpoints on their own thread (checkpoint.rs), the writer's
        // only as a backstop; where that cannot start, SQLite's own
        // automatic ones stay on.
        let checkpointer = match super::checkpoint::Checkpointer::start(db) {
            Ok(c) => {
                super::checkpoint::writer_backstop(&conn, super::checkpoint::WAL_LIMIT)
                    .map_err(sq)?;
                Some(c)
            }
            Err(e) => {
                tracing::warn!("{}: checkpoints stay in the writer: {e}", db.display());
                None
            }
        };
        let mut store = Store {
            conn,
            path: db.to_path_buf(),
            mem: MemoryState::default(),
            dirty: keys::KeySet::default(),
            on_disk: keys::KeySet::default(),
            new_facts: Vec::new(),
            journal_entries: 0,
            fold_at: journal::FOLD_AT,
            started: false,
            last_prune: None,
            stale: false,
            texts: Default::default(),
            _checkpointer: checkpointer,
        };
        store.reload()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How long a write waits for another writer's lock (5 s by default).
    pub fn set_busy_timeout(&self, d: std::time::Duration) -> Result<(), StoreError> {
        self.conn.busy_timeout(d).map_err(self.sq())
    }

    pub(super) fn sq(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |source| StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// (rule, key, data) rows of a query.
    fn keyed_rows(&self, sql: &str) -> Result<Vec<(String, String, String)>, StoreError> {
        let mut st = self.conn.prepare(sql).map_err(self.sq())?;
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .and_then(|rows| rows.collect())
            .map_err(self.sq())
    }

    /// Rebuilds the mirror from the database (at start, and after a failed
    /// commit so that memory matches disk again).
    pub fn reload(&mut self) -> Result<(), StoreError> {
        self.texts.clear();
        let mut mem = MemoryState::default();
        let (obligations, entries, mut corrupt) =
            journal::obligations(&self.conn).map_err(self.sq())?;
        let mut on_disk = keys::KeySet::default();
        for (rule, key, _, o) in obligations {
            on_disk.insert(&rule, &key);
            match o {
                Ok(o) => mem.put_obligation(o),
                Err(e) => corrupt.push(e),
            }
        }
        // Rows from before the journal first (they are older).
        for (rule, key, data) in self.keyed_rows("SELECT rule, key, data FROM facts ORDER BY id")? {
            if let Some(f) = rows::fact_from_json(&data) {
                mem.add_fact(&rule, &key, f);
            }
        }
        let (batched, bad) = journal::facts(&self.conn).map_err(self.sq())?;
        for (rule, key, f) in batched {
            mem.add_fact(&rule, &key, f);
        }
        corrupt.extend(bad);
        for c in corrupt {
            tracing::error!("{}: {c}; it is left out", self.path.display());
        }
        self.journal_entries = entries;
        self.started = self
            .conn
            .query_row("SELECT v FROM meta WHERE k = 'engine_started'", [], |r| {
                r.get::<_, String>(0)
            })
            .optional()
            .map_err(self.sq())?
            .is_some();
        self.mem = mem;
        self.on_disk = on_disk;
        self.dirty.clear();
        self.new_facts.clear();
        self.stale = false;
        Ok(())
    }

    /// Reloads the mirror if a failed commit left it stale. Call before
    /// evaluating an input: until it succeeds, nothing can be committed.
    pub fn refresh(&mut self) -> Result<(), StoreError> {
        if self.stale { self.reload() } else { Ok(()) }
    }

    /// Whether the engine changed obligations or facts since the last commit.
    pub fn has_changes(&self) -> bool {
        !self.dirty.is_empty() || !self.new_facts.is_empty()
    }

    /// Whether the mirror may differ from the database.
    pub fn is_stale(&self) -> bool {
        self.stale
    }

    /// Whether the engine's `start` has run on this state.
    pub fn started(&self) -> bool {
        self.started
    }

    /// Writes the input's changes in one transaction. On failure the mirror
    /// is reloaded from disk (the input's state changes are undone).
    pub fn commit(&mut self, w: Writes, now: Timestamp) -> Result<Committed, StoreError> {
        if self.stale {
            // Evaluated against state that was never committed: its effects
            // cannot be trusted. Reload, and let the caller evaluate again.
            self.reload()?;
            return Err(StoreError::Stale {
                path: self.path.clone(),
            });
        }
        match self.try_commit(&w, now) {
            Ok(c) => {
                for (rule, key) in self.dirty.iter() {
                    if self.mem.has_obligation(rule, key) {
                        self.on_disk.insert(rule, key);
                    } else {
                        self.on_disk.remove(rule, key);
                    }
                }
                self.dirty.clear();
                self.new_facts.clear();
                if w.started {
                    self.started = true;
                }
                Ok(c)
            }
            Err(e) => {
                // Memory must not run ahead of disk. If even reading fails,
                // the store stays stale until a reload succeeds.
                if let Err(r) = self.reload() {
                    tracing::error!("cannot reload the state after a failed write: {r}");
                    self.stale = true;
                }
                Err(e)
            }
        }
    }

    /// The file as last checked.
    pub fn file(&self, path: &Path) -> Result<Option<FileRow>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT size, mtime_ns, sha256, findings, rules FROM files WHERE path = ?1",
            )
            .and_then(|mut st| {
                st.query_row([path.display().to_string()], |r| {
                    Ok(FileRow {
                        path: path.to_path_buf(),
                        size: r.get::<_, i64>(0)? as u64,
                        mtime_ns: r.get(1)?,
                        sha256: r.get(2)?,
                        findings: r.get::<_, i64>(3)? as usize,
                        rules: r.get(4)?,
                    })
                })
                .optional()
            })
            .map_err(self.sq())
    }

    /// Saved cursors of the logs, by source key.
    pub fn cursors(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT key, cursor FROM sources WHERE kind = 'log' AND cursor IS NOT NULL")
            .map_err(self.sq())?;
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(self.sq())
    }

    /// Lines counted as read past their log's cursor are read again.
    pub fn forget_waiting(&self) -> Result<(), StoreError> {
        self.conn
            .execute("UPDATE sources SET waiting = 0 WHERE waiting != 0", [])
            .map(drop)
            .map_err(self.sq())
    }

    /// Waivers added with `complyd violations waive`, still in force at `now`.
    pub fn db_waivers(
        &self,
        now: Timestamp,
    ) -> Result<Vec<crate::rules::waivers::Waiver>, StoreError> {
        load_waivers(&self.conn, Some(now)).map_err(self.sq())
    }

    /// For the held events' batches (held.rs), outside an input's commit.
    pub(super) fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// The connection, for the outbox and the `violations` commands, which
    /// run on the same actor.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }
}

impl State for Store {
    fn obligation(&self, rule: &str, key: &str) -> Option<Obligation> {
        self.mem.obligation(rule, key)
    }
    fn has_obligation(&self, rule: &str, key: &str) -> bool {
        self.mem.has_obligation(rule, key)
    }
    fn wake_of(&self, rule: &str, key: &str) -> Option<Timestamp> {
        self.mem.wake_of(rule, key)
    }
    fn put_obligation(&mut self, ob: Obligation) {
        self.dirty.insert(&ob.rule, &ob.key);
        self.mem.put_obligation(ob);
    }
    fn remove_obligation(&mut self, rule: &str, key: &str) -> Option<Obligation> {
        let o = self.mem.remove_obligation(rule, key);
        if o.is_some() {
            self.dirty.insert(rule, key);
        }
        o
    }
    fn next_wake(&self) -> Option<Obligation> {
        self.mem.next_wake()
    }
    fn next_wake_time(&self) -> Option<Timestamp> {
        self.mem.next_wake_time()
    }
    fn facts(&self, rule: &str, key: &str) -> Vec<Fact> {
        self.mem.facts(rule, key)
    }
    fn add_fact(&mut self, rule: &str, key: &str, fact: Fact) {
        self.new_facts
            .push((rule.to_string(), key.to_string(), fact.clone()));
        self.mem.add_fact(rule, key, fact);
    }
    fn obligation_count(&self) -> usize {
        self.mem.obligation_count()
    }
}

/// Waivers added with `complyd violations waive` (those in force at `at`,
/// or all); a row that no longer validates is left out.
pub fn load_waivers(
    conn: &Connection,
    at: Option<Timestamp>,
) -> rusqlite::Result<Vec<crate::rules::waivers::Waiver>> {
    let mut st = conn.prepare_cached(
        "SELECT id, rule, scope, value, reason, by, expires FROM waivers
         WHERE ?1 IS NULL OR expires IS NULL OR expires > ?1 ORDER BY id",
    )?;
    type Row = (i64, String, String, String, String, String, Option<i64>);
    let rows: Vec<Row> = st
        .query_map([at.map(millis)], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })?
        .collect::<Result<_, _>>()?;
    // Expiry is stored as an instant: no time zone is needed to read it.
    let utc = jiff::tz::TimeZone::UTC;
    Ok(rows
        .into_iter()
        .filter_map(|(id, rule, scope, value, reason, by, expires)| {
            let exp = expires
                .and_then(|m| Timestamp::from_millisecond(m).ok())
                .map(|t| t.to_string());
            crate::rules::waivers::Waiver::new(
                &rule,
                (&scope, &value),
                &reason,
                &by,
                exp.as_deref(),
                &utc,
                format!("database waiver #{id}"),
            )
            .ok()
        })
        .collect())
}
