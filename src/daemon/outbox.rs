//! The outbox: messages queued in the violation's transaction (see
//! `Store::commit`), fetched by the mailer when due, and the result of
//! each delivery attempt. A second `impl Store` block: the store owns the
//! connection, this file the outbox's queries.

use jiff::Timestamp;
use rusqlite::params;
use serde::{Deserialize, Serialize};

use super::record::Record;
use super::store::{Store, StoreError, millis};

/// A message waiting in the outbox.
#[derive(Debug, Clone)]
pub struct OutboxItem {
    pub id: i64,
    /// `violation`, `retraction`, `reopened` or `reminder`.
    pub kind: String,
    pub attempts: u32,
    pub record: Record,
    /// Addresses; empty: the configured `mail.to`.
    pub to: Vec<String>,
    /// The route that queued it, and whether it waits for a digest.
    pub route: Option<i64>,
    pub digest: bool,
    /// A digest row's window (its end, ms): rows of one window, route and
    /// recipients are one message, rows of two windows never are.
    pub window: Option<i64>,
    /// Recipients the server already accepted it for: a retry goes to the
    /// others only.
    pub delivered: Vec<String>,
    /// Recipients rejected for good, with the server's answer.
    pub rejected: Vec<(String, String)>,
    /// A follow-up (retraction, reopening, reminder): the Message-ID of
    /// the message that carried the violation, if one was sent.
    pub thread: Option<String>,
}

impl OutboxItem {
    /// A row as first queued, to `mail.to`, at once.
    pub fn new(id: i64, kind: &str, record: Record) -> OutboxItem {
        OutboxItem {
            id,
            kind: kind.into(),
            attempts: 0,
            record,
            to: Vec::new(),
            route: None,
            digest: false,
            window: None,
            delivered: Vec::new(),
            rejected: Vec::new(),
            thread: None,
        }
    }

    /// Every address it is for: its own, or `fallback` (`mail.to`).
    pub fn recipients<'a>(&'a self, fallback: &'a [String]) -> &'a [String] {
        if self.to.is_empty() {
            fallback
        } else {
            &self.to
        }
    }

    /// The addresses still to be tried: neither accepted nor rejected yet.
    pub fn remaining(&self, fallback: &[String]) -> Vec<String> {
        self.recipients(fallback)
            .iter()
            .filter(|a| !self.delivered.contains(a) && !self.rejected.iter().any(|(r, _)| r == *a))
            .cloned()
            .collect()
    }
}

/// What one delivery attempt left behind, for every row the message
/// carried. The lists are the rows' whole state, not the attempt's news.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxUpdate {
    pub ids: Vec<i64>,
    /// The Message-ID of the message tried. Once a row has reached anyone
    /// its Message-ID stays: replies thread to it, and a retry for the
    /// other recipients is recognisably the same message.
    pub message_id: Option<String>,
    pub delivered: Vec<String>,
    pub rejected: Vec<(String, String)>,
    /// Recipients are left for later: try again at this instant. `None`:
    /// nobody is left — sent when it reached anyone, else failed for good.
    pub retry: Option<Timestamp>,
    /// Shown by `complyd status`: why it waits, or who rejected it.
    pub error: Option<String>,
}

/// The outbox's counts, for `complyd status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    pub pending: u64,
    pub failed: u64,
    pub sent: u64,
}

/// How the mailer stands, for `complyd status` (kept in `meta`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailerState {
    /// `unreachable`, `auth` or `sender`.
    pub paused: String,
    pub reason: String,
    pub since: Timestamp,
    pub next_try: Timestamp,
}

/// Whether outbox row `$t` carried its violation to anyone: its message
/// reached a recipient (rows sent before schema v5 have no `delivered`).
macro_rules! carried {
    ($t:literal) => {
        concat!(
            "(",
            $t,
            ".message_id IS NOT NULL AND (",
            $t,
            ".sent_at IS NOT NULL OR ",
            $t,
            ".delivered != '[]'))"
        )
    };
}

/// The key of the mailer's state in `meta`.
pub const MAILER_STATE: &str = "mailer";

impl Store {
    /// Messages due for a (first or retried) delivery attempt, at most
    /// `limit`, oldest due first: the mailer pages through a burst. Empty
    /// only when nothing is due.
    ///
    /// What happened since a row was queued counts: a violation waived,
    /// resolved, fixed or retracted before its (digest) mail went out is
    /// not mailed (the row is cancelled); nor is a retraction of a report
    /// never sent. Only the page is looked at, so a page costs the same
    /// however many rows wait (a long outage).
    pub fn outbox_due(&self, now: Timestamp, limit: usize) -> Result<Vec<OutboxItem>, StoreError> {
        // A follow-up threads to the first message that carried the
        // violation to anyone (not to one that was never sent).
        let mut st = self
            .conn
            .prepare_cached(concat!(
                "SELECT o.id, o.kind, o.attempts, r.data, o.recipients, o.route, o.digest,
                        o.window_end, o.delivered, o.rejected,
                        CASE WHEN o.kind = 'violation' THEN NULL ELSE
                            (SELECT t.message_id FROM outbox t WHERE t.violation = o.violation
                             AND t.kind = 'violation' AND ",
                carried!("t"),
                " ORDER BY t.id LIMIT 1) END,
                        v.status IN ('waived', 'resolved', 'fixed', 'retracted'),
                        v.late_at
                 FROM outbox o JOIN violations v ON v.id = o.violation
                      JOIN violation_records r ON r.id = o.violation
                 WHERE o.sent_at IS NULL AND o.failed = 0 AND o.next_attempt <= ?1
                 ORDER BY o.next_attempt, o.id LIMIT ?2"
            ))
            .map_err(self.sq())?;
        loop {
            let rows = st
                .query_map(params![millis(now), limit as i64], |r| {
                    Ok(DueRow {
                        id: r.get(0)?,
                        kind: r.get(1)?,
                        attempts: r.get(2)?,
                        data: r.get(3)?,
                        to: r.get(4)?,
                        route: r.get(5)?,
                        digest: r.get(6)?,
                        window: r.get(7)?,
                        delivered: r.get(8)?,
                        rejected: r.get(9)?,
                        thread: r.get(10)?,
                        ended: r.get(11)?,
                        late: r.get(12)?,
                    })
                })
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(self.sq())?;
            if rows.is_empty() {
                return Ok(Vec::new());
            }
            let mut keep = Vec::new();
            let mut settle: Vec<(i64, i64, String)> = Vec::new();
            for row in rows {
                if row.kind != "retraction" && row.ended {
                    settle.push((
                        row.id,
                        2,
                        "cancelled: the violation is no longer open".into(),
                    ));
                } else if row.kind == "retraction" && row.thread.is_none() {
                    settle.push((row.id, 2, "cancelled: the report was never sent".into()));
                } else {
                    match serde_json::from_str::<Record>(&row.data) {
                        Ok(mut record) => {
                            // Done late before the mail went (a log caught
                            // up on): the mail says so rather than "not
                            // done as of …".
                            if let Some(late) = &row.late {
                                done_late(&mut record, late);
                            }
                            keep.push(row.item(record))
                        }
                        // Never silently stuck: failed, and shown.
                        Err(e) => settle.push((
                            row.id,
                            1,
                            format!("the stored violation cannot be read: {e}"),
                        )),
                    }
                }
            }
            if !settle.is_empty() {
                let tx = self.conn.unchecked_transaction().map_err(self.sq())?;
                for (id, failed, why) in &settle {
                    tx.execute(
                        "UPDATE outbox SET failed = ?2, last_error = ?3 WHERE id = ?1",
                        params![id, failed, why],
                    )
                    .map_err(self.sq())?;
                }
                tx.commit().map_err(self.sq())?;
            }
            // Every row of a page settled: the next page (or nothing).
            if !keep.is_empty() {
                return Ok(keep);
            }
        }
    }

    /// When the next retry is due, if any message waits for one.
    pub fn outbox_next_attempt(&self) -> Result<Option<Timestamp>, StoreError> {
        let ms: Option<i64> = self
            .conn
            .query_row(
                "SELECT MIN(next_attempt) FROM outbox WHERE sent_at IS NULL AND failed = 0",
                [],
                |r| r.get(0),
            )
            .map_err(self.sq())?;
        Ok(ms.and_then(|m| Timestamp::from_millisecond(m).ok()))
    }

    /// Records delivery attempts: each update's rows, all of them in ONE
    /// transaction (a digest's 500 rows are one write, not 500).
    pub fn outbox_results(
        &self,
        updates: &[OutboxUpdate],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let sq = self.sq();
        // The store's only user is the core actor; `unchecked` because
        // the connection is shared, not borrowed mutably, here.
        let tx = self.conn.unchecked_transaction().map_err(&sq)?;
        {
            let mut st = tx
                .prepare_cached(
                    "UPDATE outbox SET attempts = attempts + 1, delivered = ?2, rejected = ?3,
                         message_id = CASE WHEN delivered = '[]' THEN COALESCE(?4, message_id)
                                           ELSE message_id END,
                         next_attempt = COALESCE(?5, next_attempt),
                         sent_at = CASE WHEN ?5 IS NULL AND ?2 != '[]' THEN ?6 END,
                         failed = CASE WHEN ?5 IS NULL AND ?2 = '[]' THEN 1 ELSE 0 END,
                         last_error = ?7
                     WHERE id = ?1",
                )
                .map_err(&sq)?;
            for u in updates {
                let delivered = serde_json::to_string(&u.delivered).unwrap_or_default();
                let rejected = serde_json::to_string(&u.rejected).unwrap_or_default();
                for id in &u.ids {
                    st.execute(params![
                        id,
                        delivered,
                        rejected,
                        u.message_id,
                        u.retry.map(millis),
                        millis(now),
                        u.error
                    ])
                    .map_err(&sq)?;
                }
            }
        }
        tx.commit().map_err(&sq)
    }

    /// Keeps the mailer's state (`None`: delivering normally) for
    /// `complyd status`.
    pub fn set_mailer_state(&self, state: Option<&MailerState>) -> Result<(), StoreError> {
        match state {
            Some(s) => self.conn.execute(
                "INSERT OR REPLACE INTO meta (k, v) VALUES (?1, ?2)",
                params![MAILER_STATE, serde_json::to_string(s).unwrap_or_default()],
            ),
            None => self
                .conn
                .execute("DELETE FROM meta WHERE k = ?1", [MAILER_STATE]),
        }
        .map(|_| ())
        .map_err(self.sq())
    }

    pub fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
        self.conn
            .query_row(
                "SELECT COALESCE(SUM(sent_at IS NULL AND failed = 0), 0),
                        COALESCE(SUM(failed = 1), 0), COALESCE(SUM(sent_at IS NOT NULL), 0) FROM outbox",
                [],
                |r| {
                    Ok(OutboxCounts {
                        pending: r.get::<_, i64>(0)? as u64,
                        failed: r.get::<_, i64>(1)? as u64,
                        sent: r.get::<_, i64>(2)? as u64,
                    })
                },
            )
            .map_err(self.sq())
    }
}

/// A due row as read, before its violation is parsed.
fn done_late(r: &mut Record, late: &str) {
    let zh = format!("已于{late}完成（迟于期限）");
    let en = format!("done late, at {late}");
    r.detail = Some(match r.detail.take() {
        Some(d) => format!("{d}；{zh}"),
        None => zh,
    });
    r.detail_en = Some(match r.detail_en.take() {
        Some(d) => format!("{d}; {en}"),
        None => en,
    });
}

struct DueRow {
    id: i64,
    kind: String,
    attempts: u32,
    data: String,
    to: String,
    route: Option<i64>,
    digest: bool,
    window: Option<i64>,
    delivered: String,
    rejected: String,
    thread: Option<String>,
    /// The violation is waived, resolved, fixed or retracted.
    ended: bool,
    /// When it was done after all, late (a deadline, a lapse).
    late: Option<String>,
}

impl DueRow {
    fn item(self, record: Record) -> OutboxItem {
        OutboxItem {
            id: self.id,
            kind: self.kind,
            attempts: self.attempts,
            record,
            to: json(self.to),
            route: self.route,
            digest: self.digest,
            window: self.window,
            delivered: json(self.delivered),
            rejected: json(self.rejected),
            thread: self.thread,
        }
    }
}

/// A JSON column; a value that does not parse reads as empty.
fn json<T: serde::de::DeserializeOwned + Default>(s: String) -> T {
    serde_json::from_str(&s).unwrap_or_default()
}

impl Store {
    /// Queues a reminder for each violation still standing `days` working
    /// days after it was recorded (once per violation, to the recipients
    /// of its first message; a violation never mailed gets none). Returns
    /// how many were queued.
    pub fn remind(
        &mut self,
        calendar: &crate::calendar::Calendar,
        days: u32,
        now: Timestamp,
    ) -> Result<usize, StoreError> {
        let span = std::time::Duration::from_secs(u64::from(days) * 86_400);
        let path = self.path.clone();
        let sq = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sq)?;
        // N working days are at least N calendar days: a cheap prefilter.
        let candidates: Vec<(i64, i64)> = {
            let mut st = tx
                .prepare_cached(
                    "SELECT id, created FROM violations
                     WHERE status IN ('open', 'acked', 'late') AND reminded IS NULL
                       AND created <= ?1
                       AND EXISTS (SELECT 1 FROM outbox WHERE violation = violations.id)",
                )
                .map_err(sq)?;
            st.query_map([millis(now) - span.as_millis() as i64], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .and_then(|rows| rows.collect())
            .map_err(sq)?
        };
        let mut queued = 0;
        for (id, created) in candidates {
            let Ok(created) = Timestamp::from_millisecond(created) else {
                continue;
            };
            let due = calendar.add(created, span, crate::calendar::Clock::WorkingDays);
            if now < due {
                continue;
            }
            tx.execute(
                "INSERT INTO outbox (violation, kind, created, next_attempt, recipients, route)
                 SELECT ?1, 'reminder', ?2, ?2, recipients, route FROM outbox
                 WHERE violation = ?1 ORDER BY id LIMIT 1",
                params![id, millis(now)],
            )
            .map_err(sq)?;
            tx.execute(
                "UPDATE violations SET reminded = ?2 WHERE id = ?1",
                params![id, millis(now)],
            )
            .map_err(sq)?;
            queued += 1;
        }
        tx.commit().map_err(sq)?;
        Ok(queued)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    const RECORD: &str = r#"{"fingerprint":"fp1","rule":"r","severity":"low","message":"m",
        "subject":"s","location":[],"at":"2026-03-02T10:00:00+08:00"}"#;

    fn store(dir: &std::path::Path) -> Store {
        let s = Store::open(&dir.join("c.db")).unwrap();
        s.conn
            .execute(
                "INSERT INTO violations (id, fingerprint, rule, severity, subject, data, created, updated)
                 VALUES (1, 'fp1', 'r', 'low', 's', ?1, 0, 0)",
                [RECORD],
            )
            .unwrap();
        s
    }

    fn row(s: &Store, sql: &str) -> (Option<i64>, i64, Option<String>, Option<String>, i64) {
        s.conn
            .query_row(
                &format!(
                    "SELECT sent_at, failed, message_id, last_error, next_attempt FROM outbox {sql}"
                ),
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .unwrap()
    }

    fn update(id: i64) -> OutboxUpdate {
        OutboxUpdate {
            ids: vec![id],
            message_id: Some("<m1@complyd>".into()),
            delivered: Vec::new(),
            rejected: Vec::new(),
            retry: None,
            error: None,
        }
    }

    #[test]
    fn a_digest_row_keeps_its_window_when_a_retry_moves_it() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        s.conn
            .execute(
                "INSERT INTO outbox (id, violation, kind, created, next_attempt, digest)
                 VALUES (7, 1, 'violation', 100, 1800000, 1)",
                [],
            )
            .unwrap();
        let mut u = update(7);
        u.retry = Some(ts("2026-03-02T10:00:00Z"));
        u.error = Some("451".into());
        s.outbox_results(&[u], ts("2026-03-02T09:00:00Z")).unwrap();
        let window: i64 = s
            .conn
            .query_row("SELECT window_end FROM outbox WHERE id = 7", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(window, 1_800_000);
        let (sent, failed, mid, err, next) = row(&s, "WHERE id = 7");
        assert_eq!((sent, failed, err.as_deref()), (None, 0, Some("451")));
        assert_eq!(next, ts("2026-03-02T10:00:00Z").as_millisecond());
        // Reached nobody yet: the next attempt's Message-ID replaces it.
        assert_eq!(mid.as_deref(), Some("<m1@complyd>"));
    }

    #[test]
    fn a_row_is_sent_when_it_reached_anyone_and_failed_when_it_reached_nobody() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        for id in [1, 2] {
            s.conn
                .execute(
                    "INSERT INTO outbox (id, violation, kind, created, next_attempt)
                     VALUES (?1, 1, 'violation', 0, 0)",
                    [id],
                )
                .unwrap();
        }
        let now = ts("2026-03-02T02:00:00Z");
        let mut partly = update(1);
        partly.delivered = vec!["a@x.test".into()];
        partly.rejected = vec![("b@x.test".into(), "550 no such user".into())];
        partly.error = Some("not accepted for b@x.test: 550 no such user".into());
        let mut nobody = update(2);
        nobody.rejected = vec![("b@x.test".into(), "550 no such user".into())];
        s.outbox_results(&[partly, nobody], now).unwrap();
        let (sent, failed, _, err, _) = row(&s, "WHERE id = 1");
        assert_eq!((sent, failed), (Some(now.as_millisecond()), 0));
        assert!(err.unwrap().contains("b@x.test"));
        assert_eq!(row(&s, "WHERE id = 2").1, 1, "failed for good");
        // Once it reached someone its Message-ID stays (replies thread to it).
        let mut again = update(1);
        again.message_id = Some("<other@complyd>".into());
        again.delivered = vec!["a@x.test".into(), "c@x.test".into()];
        s.outbox_results(&[again], now).unwrap();
        assert_eq!(row(&s, "WHERE id = 1").2.as_deref(), Some("<m1@complyd>"));
        assert_eq!(s.outbox_counts().unwrap().failed, 1);
    }

    #[test]
    fn a_follow_up_threads_to_the_message_that_carried_the_violation() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        s.conn
            .execute_batch(
                "INSERT INTO outbox (id, violation, kind, created, next_attempt, message_id, failed)
                 VALUES (1, 1, 'violation', 0, 0, '<never@complyd>', 1);
                 INSERT INTO outbox (id, violation, kind, created, next_attempt, message_id, sent_at, delivered)
                 VALUES (2, 1, 'violation', 0, 0, '<digest.ab@complyd>', 5, '[\"a@x.test\"]');
                 INSERT INTO outbox (id, violation, kind, created, next_attempt)
                 VALUES (3, 1, 'reminder', 0, 0);",
            )
            .unwrap();
        let due = s.outbox_due(ts("2026-03-02T02:00:00Z"), 10).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].kind, "reminder");
        assert_eq!(due[0].thread.as_deref(), Some("<digest.ab@complyd>"));
    }

    #[test]
    fn a_violation_done_late_before_its_mail_went_says_so_in_the_mail() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        s.conn
            .execute_batch(
                "UPDATE violations SET status = 'late', late_at = '2026-03-04 09:30' WHERE id = 1;
                 INSERT INTO outbox (violation, kind, created, next_attempt) VALUES (1, 'violation', 0, 1);",
            )
            .unwrap();
        let due = s.outbox_due(ts("2026-03-02T02:00:00Z"), 10).unwrap();
        assert_eq!(
            due[0].record.detail.as_deref(),
            Some("已于2026-03-04 09:30完成（迟于期限）")
        );
        assert_eq!(
            due[0].record.detail_en.as_deref(),
            Some("done late, at 2026-03-04 09:30")
        );
    }

    #[test]
    fn a_page_of_cancelled_rows_does_not_hide_the_rows_due_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        s.conn
            .execute_batch(&format!(
                "INSERT INTO violations (id, fingerprint, rule, severity, subject, status, data, created, updated)
                 VALUES (2, 'fp2', 'r', 'low', 's', 'resolved', '{RECORD}', 0, 0);
                 INSERT INTO violations (id, fingerprint, rule, severity, subject, data, created, updated)
                 VALUES (3, 'fp3', 'r', 'low', 's', 'not json', 0, 0);
                 INSERT INTO outbox (id, violation, kind, created, next_attempt) VALUES (1, 2, 'violation', 0, 1);
                 INSERT INTO outbox (id, violation, kind, created, next_attempt) VALUES (2, 2, 'violation', 0, 2);
                 INSERT INTO outbox (id, violation, kind, created, next_attempt) VALUES (3, 1, 'retraction', 0, 3);
                 INSERT INTO outbox (id, violation, kind, created, next_attempt) VALUES (4, 3, 'violation', 0, 4);
                 INSERT INTO outbox (id, violation, kind, created, next_attempt) VALUES (5, 1, 'violation', 0, 5);"
            ))
            .unwrap();
        // Pages of two: the first two rows are cancelled, the next two are
        // a retraction never preceded by a report and an unreadable
        // violation; the row after them is what comes back.
        let due = s.outbox_due(ts("2026-03-02T02:00:00Z"), 2).unwrap();
        assert_eq!(due.iter().map(|i| i.id).collect::<Vec<_>>(), [5]);
        let states: Vec<(i64, String)> = s
            .conn
            .prepare("SELECT failed, last_error FROM outbox WHERE id < 5 ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(states[0].0, 2);
        assert_eq!(states[1].0, 2);
        assert_eq!(
            states[2],
            (2, "cancelled: the report was never sent".into())
        );
        assert_eq!(states[3].0, 1, "unreadable: failed, not stuck");
        assert!(states[3].1.contains("cannot be read"), "{states:?}");
    }

    #[test]
    fn rows_from_before_schema_5_get_their_window_and_message_id() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("c.db");
        {
            let c = rusqlite::Connection::open(&db).unwrap();
            for m in &crate::daemon::schema::MIGRATIONS[..4] {
                c.execute_batch(m).unwrap();
            }
            c.pragma_update(None, "user_version", 4).unwrap();
            c.execute(
                "INSERT INTO violations (id, fingerprint, rule, severity, subject, data, created, updated)
                 VALUES (1, 'fp1', 'r', 'low', 's', ?1, 0, 0)",
                [RECORD],
            )
            .unwrap();
            c.execute_batch(
                "INSERT INTO outbox (id, violation, kind, created, next_attempt, sent_at, route)
                 VALUES (1, 1, 'violation', 0, 0, 10, 1);
                 INSERT INTO outbox (id, violation, kind, created, next_attempt, digest)
                 VALUES (2, 1, 'violation', 50, 1800000, 1);
                 INSERT INTO outbox (id, violation, kind, created, next_attempt, digest, attempts)
                 VALUES (3, 1, 'violation', 60, 99999999, 1, 2);",
            )
            .unwrap();
        }
        let s = Store::open(&db).unwrap();
        let get =
            |sql: &str| -> Option<String> { s.conn.query_row(sql, [], |r| r.get(0)).unwrap() };
        assert_eq!(
            get("SELECT message_id FROM outbox WHERE id = 1").as_deref(),
            Some("<fp1.violation.r1@complyd>")
        );
        assert_eq!(get("SELECT message_id FROM outbox WHERE id = 2"), None);
        assert_eq!(
            get("SELECT CAST(window_end AS TEXT) FROM outbox WHERE id = 2").as_deref(),
            Some("1800000")
        );
        assert_eq!(
            get("SELECT CAST(window_end AS TEXT) FROM outbox WHERE id = 3").as_deref(),
            Some("60"),
            "tried already: a window of its own"
        );
    }
}
