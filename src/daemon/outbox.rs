//! The outbox: messages queued in the violation's transaction (see
//! `Store::commit`), fetched by the mailer when due, and the result of
//! each delivery attempt. A second `impl Store` block: the store owns the
//! connection, this file the outbox's queries.

use jiff::Timestamp;
use rusqlite::params;

use super::record::Record;
use super::store::{Store, StoreError, millis};

/// A message waiting in the outbox.
#[derive(Debug, Clone)]
pub struct OutboxItem {
    pub id: i64,
    /// `violation`, `retraction` or `reopened`.
    pub kind: String,
    pub attempts: u32,
    pub record: Record,
    /// Addresses; empty: the configured `mail.to`.
    pub to: Vec<String>,
    /// The route that queued it, and whether it waits for a digest.
    pub route: Option<i64>,
    pub digest: bool,
}

/// The outbox's counts, for `complyd status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    pub pending: u64,
    pub failed: u64,
    pub sent: u64,
}

impl Store {
    /// Messages due for a (first or retried) delivery attempt.
    pub fn outbox_due(&self, now: Timestamp, limit: usize) -> Result<Vec<OutboxItem>, StoreError> {
        // What happened since a row was queued counts: a violation waived,
        // resolved, fixed or retracted before its (digest) mail went out
        // is not mailed; a retraction of a report never sent is dropped.
        self.conn
            .execute_batch(
                "UPDATE outbox SET failed = 2, last_error = 'cancelled: the violation is no longer open'
                 WHERE sent_at IS NULL AND failed = 0 AND kind != 'retraction'
                   AND violation IN (SELECT id FROM violations
                                     WHERE status IN ('waived', 'resolved', 'fixed', 'retracted'));
                 UPDATE outbox SET failed = 2, last_error = 'cancelled: the report was never sent'
                 WHERE sent_at IS NULL AND failed = 0 AND kind = 'retraction'
                   AND NOT EXISTS (SELECT 1 FROM outbox o2 WHERE o2.violation = outbox.violation
                                   AND o2.kind = 'violation' AND o2.sent_at IS NOT NULL);",
            )
            .map_err(self.sq())?;
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT o.id, o.kind, o.attempts, v.data, o.recipients, o.route, o.digest
                 FROM outbox o JOIN violations v ON v.id = o.violation
                 WHERE o.sent_at IS NULL AND o.failed = 0 AND o.next_attempt <= ?1
                 ORDER BY o.next_attempt, o.id LIMIT ?2",
            )
            .map_err(self.sq())?;
        type Row = (i64, String, u32, String, String, Option<i64>, bool);
        let rows: Vec<Row> = st
            .query_map(params![millis(now), limit as i64], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            })
            .and_then(|rows| rows.collect())
            .map_err(self.sq())?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, kind, attempts, data, to, route, digest)| {
                let record = serde_json::from_str(&data).ok()?;
                Some(OutboxItem {
                    id,
                    kind,
                    attempts,
                    record,
                    to: serde_json::from_str(&to).unwrap_or_default(),
                    route,
                    digest,
                })
            })
            .collect())
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

    /// Records a delivery: `Ok` sent; `Err((reason, None))` failed for good;
    /// `Err((reason, Some(t)))` retry at `t`.
    pub fn outbox_result(
        &mut self,
        id: i64,
        result: Result<(), (String, Option<Timestamp>)>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let sq = self.sq();
        match result {
            Ok(()) => self.conn.execute(
                "UPDATE outbox SET sent_at = ?2, attempts = attempts + 1, last_error = NULL WHERE id = ?1",
                params![id, millis(now)],
            ),
            Err((reason, Some(retry))) => self.conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt = ?2, last_error = ?3 WHERE id = ?1",
                params![id, millis(retry), reason],
            ),
            Err((reason, None)) => self.conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, failed = 1, last_error = ?2 WHERE id = ?1",
                params![id, reason],
            ),
        }
        .map(|_| ())
        .map_err(sq)
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
                "INSERT INTO outbox (violation, kind, created, next_attempt, recipients)
                 SELECT ?1, 'reminder', ?2, ?2, recipients FROM outbox
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
