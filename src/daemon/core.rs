//! The core actor's work: each input (a file that stopped changing, lines
//! read from a log, the clock passing a deadline) is evaluated by the same
//! pure functions `scan` and `replay` use, then committed with its
//! violations, outbox rows and cursor in one transaction.
//!
//! Events wait in the reorder window until the wall clock minus the allowed
//! lateness passes them, and deadlines fire at due + lateness, so a reply
//! written to another log a little late still counts as in time.

use std::path::Path;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use sha2::{Digest, Sha256};

use super::held::{self, BatchWriter, Batches};
use super::record::{self, Record};
use super::store::{FileRow, LateMark, Store, StoreError, Writes};
use crate::check::check_document;
use crate::engine::{self, Effect, Env, Input, State};
use crate::event::{Event, Evidence, parse_line};
use crate::extract::{Extracted, Limits, extract_bytes};
use crate::finding::Finding;
use crate::rules::RuleSet;
use crate::window::ReorderWindow;

/// Stands for every log while the tailer's first pass is running.
const STARTING: &str = "\u{0}starting";

/// The pseudo-rule of configuration errors found by a reload.
pub const CONFIG_ERROR: &str = "config-error";

/// A line handed over by the log tailer (its text, or why it has none).
pub use super::tail::TailLine as LogLine;

/// What checking a file did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileOutcome {
    /// Same size and mtime, or same content, as when last checked.
    Unchanged,
    Checked {
        findings: usize,
        new: usize,
    },
    /// Deleted before it could be read.
    Gone,
}

#[derive(Debug)]
pub struct Core {
    rules: Arc<RuleSet>,
    env: Env,
    store: Store,
    lateness: SignedDuration,
    limits: Limits,
    window: ReorderWindow,
    /// The stored batches of held events (held.rs).
    batches: Batches,
    /// Events up to here have left the window; it never goes back.
    horizon: Option<Timestamp>,
    /// The horizon as committed.
    saved_horizon: Option<Timestamp>,
    /// Log batches whose events are all held in memory only (pending.rs).
    pending: pending::Pending,
    /// Stored batches found empty at start, deleted by the next commit.
    drained: Vec<u64>,
    /// A commit failed and so did restoring the window after it: the window
    /// may hold that input's events and miss those it released.
    window_stale: bool,
    /// The engine's clock: never runs backwards.
    clock: Option<Timestamp>,
    /// Logs still being caught up on (a batch that did not reach the end),
    /// with the wall time of their last batch.
    /// and the newest event time read from each (not after the wall clock).
    /// The key `STARTING` stands for every log until the tailer's first
    /// pass has read them all.
    behind: std::collections::HashMap<String, (Timestamp, Option<Timestamp>)>,
    /// Routes and the default recipients; `None`: everything at once to
    /// the mailer's `mail.to`.
    routing: Option<(super::route::Routing, Vec<String>)>,
    /// Working days after which a violation still open is mailed again.
    remind_after: Option<u32>,
    /// Lines that failed to parse since the last `take_malformed`.
    pub malformed: u64,
    /// Problems stored by [`Core::record_problem`] since start.
    problems: std::collections::HashSet<String>,
}

impl Core {
    /// Builds the core and restores the reorder window from the store.
    pub fn new(
        rules: Arc<RuleSet>,
        env: Env,
        store: Store,
        lateness: SignedDuration,
        limits: Limits,
    ) -> Result<Core, StoreError> {
        let mut store = store;
        let restored = store.restore_window()?;
        // Lines that waited past a cursor are read again from it.
        store.forget_waiting()?;
        let pending = pending::Pending::with_cursors(store.cursors()?.into_iter().map(|(k, _)| k));
        Ok(Core {
            rules,
            env,
            store,
            lateness,
            limits,
            window: restored.window,
            batches: restored.batches,
            horizon: restored.horizon,
            saved_horizon: restored.horizon,
            pending,
            drained: restored.drained,
            window_stale: false,
            clock: None,
            behind: std::collections::HashMap::new(),
            routing: None,
            remind_after: None,
            malformed: 0,
            problems: std::collections::HashSet::new(),
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn rules(&self) -> &Arc<RuleSet> {
        &self.rules
    }

    /// Swaps in new rules and environment (already validated).
    pub fn reload(&mut self, rules: Arc<RuleSet>, env: Env) {
        self.rules = rules;
        self.env = env;
    }

    /// When the core next has work without input: the earliest due instant
    /// plus the lateness (plus 1 ms: a discharge exactly at the due instant
    /// is on time), or when the oldest held event leaves the window.
    /// The tailer is about to read the logs from their cursors: until it
    /// says it has read them all ([`Core::logs_read`]), or for a minute,
    /// deadlines wait for what the logs hold.
    pub fn logs_starting(&mut self, now: Timestamp) {
        self.behind.insert(STARTING.into(), (now, None));
    }

    pub fn logs_read(&mut self) {
        self.behind.remove(STARTING);
    }

    pub fn next_deadline(&self) -> Option<Timestamp> {
        // Saturating: an instant near the end of time must not panic here.
        let later = |t: Timestamp, by: SignedDuration| t.checked_add(by).unwrap_or(Timestamp::MAX);
        let held = self.window.oldest().map(|t| later(t, self.lateness));
        if let Some(last) = self.behind.values().map(|b| b.0).max() {
            // Catching up: the next batch moves the rules' time; wake for
            // held events, or when the wait for the batch ends.
            let give_up = later(last, SignedDuration::from_mins(1));
            return Some(held.map_or(give_up, |h| h.min(give_up)));
        }
        let due = self
            .store
            .next_wake_time()
            .map(|w| later(w, self.lateness + SignedDuration::from_millis(1)));
        match (due, held) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// After a failed commit whose clean-up failed too, the state in memory
    /// is rebuilt from disk before anything is evaluated against it.
    fn fresh(&mut self) -> Result<(), StoreError> {
        self.store.refresh()?;
        if self.window_stale {
            self.restore_window()?;
            self.window_stale = false;
        }
        Ok(())
    }

    /// Checks a file unless it is the same as when last checked.
    pub fn check_file(&mut self, path: &Path, now: Timestamp) -> Result<FileOutcome, StoreError> {
        self.fresh()?;
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.file_removed(path, now)?;
                return Ok(FileOutcome::Gone);
            }
            Err(e) => {
                let reason = format!("cannot read: {}", crate::rules::compile::io_reason(&e));
                return self.commit_file(
                    path,
                    &[Finding::not_checked(path.into(), &reason)],
                    None,
                    now,
                );
            }
        };
        let size = meta.len();
        let mtime_ns = mtime_ns(&meta);
        // Checked before, with the same rules: a changed size or mtime is
        // the only reason to look again.
        let known = self
            .store
            .file(path)?
            .filter(|k| k.rules == self.rules.digest);
        if known
            .as_ref()
            .is_some_and(|k| k.size == size && k.mtime_ns == mtime_ns)
        {
            return Ok(FileOutcome::Unchanged);
        }
        let (findings, sha, doc_units) = if !meta.is_file() {
            let f = Finding::not_checked(path.into(), "cannot read: not a regular file");
            (vec![f], format!("special:{size}:{mtime_ns}"), None)
        } else if size > self.limits.max_file_bytes {
            // Not read at all: a 2 GB file costs a stat, not a read.
            let r = format!(
                "file is {size} bytes, over the {}-byte limit",
                self.limits.max_file_bytes
            );
            (
                vec![Finding::not_checked(path.into(), &r)],
                format!("size:{size}:{mtime_ns}"),
                None,
            )
        } else {
            let bytes = match read_bounded(path, self.limits.max_file_bytes) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    self.file_removed(path, now)?;
                    return Ok(FileOutcome::Gone);
                }
                Err(e) => {
                    let reason = format!("cannot read: {}", crate::rules::compile::io_reason(&e));
                    let f = Finding::not_checked(path.into(), &reason);
                    return self.commit_file(path, &[f], None, now);
                }
            };
            let sha = hex(&Sha256::digest(&bytes));
            if known.as_ref().is_some_and(|k| k.sha256 == sha) {
                // Touched, not changed: remember the new mtime only.
                let row = FileRow {
                    path: path.to_path_buf(),
                    size,
                    mtime_ns,
                    sha256: sha,
                    findings: known.map_or(0, |k| k.findings),
                    rules: self.rules.digest.clone(),
                };
                self.store.commit(
                    Writes {
                        file: Some(row),
                        ..Writes::default()
                    },
                    now,
                )?;
                return Ok(FileOutcome::Unchanged);
            }
            match extract_bytes(path, &bytes, &self.limits) {
                Extracted::Checked(doc) => {
                    let f = check_document(&self.rules, path, &doc);
                    (f, sha, Some(doc.units))
                }
                Extracted::NotChecked { reason } => {
                    (vec![Finding::not_checked(path.into(), &reason)], sha, None)
                }
            }
        };
        let row = FileRow {
            path: path.to_path_buf(),
            size,
            mtime_ns,
            sha256: sha,
            findings: findings.len(),
            rules: self.rules.digest.clone(),
        };
        let units = doc_units.unwrap_or_default();
        let text_of = |f: &Finding| {
            units
                .iter()
                .filter(|u| u.field == f.field && u.cue == f.cue && u.line <= f.line)
                .find(|u| u.text.get(f.byte_start..f.byte_end) == Some(f.matched.as_str()))
                .and_then(|u| record::excerpt(&u.text, f.byte_start, f.byte_end, 30))
        };
        let at = engine::local_time(&self.env.calendar, now);
        let records = record::from_findings(&findings, &text_of, &at);
        self.commit_records(path, records, Some(row), now)
    }

    fn commit_file(
        &mut self,
        path: &Path,
        findings: &[Finding],
        row: Option<FileRow>,
        now: Timestamp,
    ) -> Result<FileOutcome, StoreError> {
        let at = engine::local_time(&self.env.calendar, now);
        let records = record::from_findings(findings, &|_| None, &at);
        self.commit_records(path, records, row, now)
    }

    fn commit_records(
        &mut self,
        path: &Path,
        mut records: Vec<Record>,
        row: Option<FileRow>,
        now: Timestamp,
    ) -> Result<FileOutcome, StoreError> {
        self.waive(&mut records, now);
        let findings = records.len();
        // Only a file that was read and checked can show a violation gone;
        // one that could not be checked this time says nothing about them.
        let checked = !records
            .iter()
            .any(|r| r.rule == crate::finding::NOT_CHECKED);
        let fps = records.iter().map(|r| r.fingerprint.clone()).collect();
        let done = self.store.commit(
            Writes {
                records,
                file: row,
                file_fingerprints: checked.then(|| (path.to_path_buf(), fps)),
                ..Writes::default()
            },
            now,
        )?;
        Ok(FileOutcome::Checked {
            findings,
            new: done.new.len(),
        })
    }

    /// A watched file was deleted: forget it (its violations stay).
    pub fn file_removed(&mut self, path: &Path, now: Timestamp) -> Result<(), StoreError> {
        self.fresh()?;
        self.store.commit(
            Writes {
                removed_file: Some(path.to_path_buf()),
                ..Writes::default()
            },
            now,
        )?;
        Ok(())
    }

    /// Mail routes (from the configuration; set again on reload).
    pub fn set_routing(&mut self, routing: super::route::Routing, fallback: Vec<String>) {
        self.routing = Some((routing, fallback));
    }

    pub fn set_reminders(&mut self, working_days: Option<u32>) {
        self.remind_after = working_days;
    }

    pub fn reminders(&self) -> Option<u32> {
        self.remind_after
    }

    /// Queues reminders for violations still open after the configured
    /// number of working days; returns how many.
    pub fn remind(&mut self, now: Timestamp) -> Result<usize, StoreError> {
        match self.remind_after {
            Some(days) => self.store.remind(&self.env.calendar, days, now),
            None => Ok(0),
        }
    }

    /// Marks records that a waiver in force accepts: those in waivers.yaml
    /// first, then those added with `complyd violations waive`.
    fn waive(&self, records: &mut [Record], now: Timestamp) {
        if records.is_empty() {
            return;
        }
        let db = self.store.db_waivers(now).unwrap_or_else(|e| {
            tracing::warn!("cannot read the waivers: {e}");
            Vec::new()
        });
        let tz = self.env.calendar.time_zone();
        for r in records {
            r.apply_waivers(&self.rules.waivers, now);
            if r.waiver.is_none() {
                r.apply_waivers(&db, now);
            }
            if let Some((routing, fallback)) = &self.routing {
                r.dispatch = Some(routing.dispatch(r, fallback, now, tz));
            }
        }
    }

    /// Commits an input that evaluated log events; `own`: the pending
    /// batch it read, which its retry reads again if this fails.
    fn commit(
        &mut self,
        mut w: Writes,
        now: Timestamp,
        own: Option<u64>,
    ) -> Result<usize, StoreError> {
        self.waive(&mut w.records, now);
        w.held_drop.append(&mut self.drained);
        let horizon = w.horizon;
        match self.store.commit(w, now) {
            Ok(c) => {
                self.settled();
                if horizon.is_some() {
                    self.saved_horizon = horizon;
                }
                Ok(c.new.len())
            }
            Err(e) => {
                // The store reloaded its state from disk; the window would
                // now disagree with it, so rebuild it from disk too — before
                // the next input if that fails now. The commit's error is
                // the one worth reporting.
                self.unsettle(own);
                self.window_stale = true;
                match self.restore_window() {
                    Ok(()) => self.window_stale = false,
                    Err(r) => tracing::error!("cannot restore the reorder window: {r}"),
                }
                Err(e)
            }
        }
    }

    /// A reload succeeded: the configuration errors raised before are
    /// fixed (so `violations list` and reminders stop showing them).
    pub fn config_fixed(&mut self, now: Timestamp) -> Result<usize, StoreError> {
        self.store
            .conn()
            .execute(
                "UPDATE violations SET status = 'fixed', updated = ?2
                 WHERE rule = ?1 AND status IN ('open', 'acked')",
                rusqlite::params![CONFIG_ERROR, now.as_millisecond()],
            )
            .map_err(self.store.sq())
    }

    /// A reload found errors: raised like a violation, so it reaches the
    /// rule administrators by mail, once per distinct set of errors.
    pub fn config_error(&mut self, diagnostics: &str, now: Timestamp) -> Result<usize, StoreError> {
        self.fresh()?;
        let first = diagnostics.lines().next().unwrap_or_default().to_string();
        let record = Record {
            fingerprint: hex(&Sha256::digest(diagnostics.as_bytes()))[..32].to_string(),
            rule: CONFIG_ERROR.into(),
            severity: crate::finding::Severity::High,
            message: "规则或配置文件有错误，重新加载未生效，仍在使用原有规则".into(),
            message_en: Some(
                "The rules or the configuration have errors: the reload did not take effect and the previous rules keep running"
                    .into(),
            ),
            clause: Vec::new(),
            tags: vec![CONFIG_ERROR.into()],
            suggestion: Some("按详情修改后运行 complyd check，再重新加载".into()),
            suggestion_en: Some(
                "Fix what the detail says, run complyd check, then reload".into(),
            ),
            subject: "rules".into(),
            location: vec![first],
            at: engine::local_time(&self.env.calendar, now),
            due: None,
            matched: None,
            excerpt: None,
            detail: Some(diagnostics.to_string()),
            detail_en: None,
            cue: None,
            field: None,
            waiver: None,
            dispatch: None,
        };
        let mut record = record;
        if let Some((routing, fallback)) = &self.routing {
            let tz = self.env.calendar.time_zone();
            record.dispatch = Some(routing.dispatch(&record, fallback, now, tz));
        }
        let done = self.store.commit(
            Writes {
                records: vec![record],
                errors: vec![("reload".into(), diagnostics.to_string())],
                ..Writes::default()
            },
            now,
        )?;
        Ok(done.new.len())
    }

    /// A problem a source found outside any input — the folder watcher's
    /// symlink loops, FIFOs, dangling links, unreadable folders — stored for
    /// `complyd status`. The same message is stored once per start (a poll
    /// or a walk after a reload finds it again). Returns whether it was new.
    pub fn record_problem(
        &mut self,
        source: &str,
        message: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        if self.problems.contains(message) {
            return Ok(false);
        }
        self.fresh()?;
        self.store.commit(
            Writes {
                errors: vec![(source.to_string(), message.to_string())],
                ..Writes::default()
            },
            now,
        )?;
        if self.problems.len() < 10_000 {
            self.problems.insert(message.to_string());
        }
        Ok(true)
    }
}

/// Modification time in nanoseconds since the epoch.
pub fn mtime_ns(meta: &std::fs::Metadata) -> i64 {
    use std::os::unix::fs::MetadataExt;
    meta.mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(meta.mtime_nsec())
}

fn read_bounded(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(max.saturating_add(1))
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Paths the catch-up pass should check: those whose size or mtime differ
/// from the database.
pub fn changed_since(store: &Store, path: &Path, size: u64, mtime_ns: i64) -> bool {
    !matches!(store.file(path), Ok(Some(k)) if k.size == size && k.mtime_ns == mtime_ns)
}

mod logs;
mod pending;

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
