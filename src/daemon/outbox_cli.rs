//! `complyd outbox list|retry`: the messages queued for mail, and sending
//! again those that failed for good — after fixing a wrong address, a
//! policy the server applied, a bad sender.
//!
//! Like `complyd violations`, these write the daemon's database from
//! another process, in one short transaction (WAL; the daemon waits on its
//! busy timeout). A row queued again is due at once; the running daemon's
//! mailer looks at the outbox at least every `RunOptions::mail_poll`
//! (10 s) while idle, so it goes out within that time — or with the rest
//! of the queue once a pause (server unreachable, login refused) ends, or
//! at the next start when no daemon runs.

use std::fmt::Write as _;

use jiff::Timestamp;
use rusqlite::{Connection, params};

/// A row that can be sent again: failed for good, or sent with some
/// recipients refusing it.
const RETRYABLE: &str = "(failed = 1 OR (sent_at IS NOT NULL AND rejected != '[]'))";

fn when(ms: i64, tz: &jiff::tz::TimeZone) -> String {
    Timestamp::from_millisecond(ms)
        .map(|t| tz.to_datetime(t).strftime("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

/// One entry per message (a digest's rows together), newest first; with
/// `failed`, only those `retry` can send again.
pub fn list(
    conn: &Connection,
    failed: bool,
    limit: usize,
    tz: &jiff::tz::TimeZone,
) -> Result<String, String> {
    let messages = format!(
        "FROM (SELECT *, CASE WHEN failed = 1 THEN 'failed' WHEN failed = 2 THEN 'cancelled'
                              WHEN sent_at IS NOT NULL THEN 'sent' ELSE 'waiting' END AS state
               FROM outbox WHERE ?1 = 0 OR {RETRYABLE}) o
         JOIN violations v ON v.id = o.violation
         GROUP BY COALESCE(o.message_id, 'row ' || o.id), o.state, o.rejected"
    );
    let total: i64 = conn
        .query_row(
            &format!("SELECT COUNT(*) FROM (SELECT 1 {messages})"),
            [failed],
            |r| r.get(0),
        )
        .map_err(|e| e.to_string())?;
    let sql = format!(
        "SELECT MIN(o.id), COUNT(*), o.kind, MIN(o.violation), MIN(v.rule), o.recipients,
                MAX(o.attempts), MIN(o.created), o.state, o.rejected, MAX(o.last_error)
         {messages} ORDER BY MIN(o.id) DESC LIMIT ?2"
    );
    type Row = (
        i64,
        i64,
        String,
        i64,
        String,
        String,
        i64,
        i64,
        String,
        String,
        Option<String>,
    );
    let mut st = conn.prepare(&sql).map_err(|e| e.to_string())?;
    let rows: Vec<Row> = st
        .query_map(params![failed, limit as i64], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
                r.get(9)?,
                r.get(10)?,
            ))
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| e.to_string())?;
    let mut out = String::new();
    let shown = rows.len();
    if rows.is_empty() {
        out.push_str(if failed {
            "no message failed for good\n"
        } else {
            "the outbox is empty\n"
        });
    }
    for (id, n, kind, violation, rule, to, attempts, created, state, rejected, error) in rows {
        let what = if n > 1 {
            format!("digest of {n} violations ({rule}, …)")
        } else {
            // Kinds read as what the message is: a report, a reopening …
            let what = match kind.as_str() {
                "violation" => "report",
                "config-error" => "configuration error",
                other => other,
            };
            format!("{what} of violation #{violation} ({rule})")
        };
        let to: Vec<String> = serde_json::from_str(&to).unwrap_or_default();
        let to = if to.is_empty() {
            "mail.to".to_string()
        } else {
            to.join(", ")
        };
        let _ = writeln!(
            out,
            "#{id}  {state}  {what}  to {to}  {attempts} attempt(s)  queued {}",
            when(created, tz)
        );
        let rejected: Vec<(String, String)> = serde_json::from_str(&rejected).unwrap_or_default();
        for (address, why) in &rejected {
            let _ = writeln!(out, "      rejected for {address}: {why}");
        }
        if let Some(e) = error.filter(|_| rejected.is_empty() && state != "sent") {
            let _ = writeln!(out, "      last error: {e}");
        }
    }
    super::status::more_not_shown(&mut out, total, shown, " (--limit N shows more)");
    Ok(out)
}

/// What `retry` sends again.
#[derive(Debug, Clone)]
pub enum Which {
    /// These messages (`#12` or `12`, as `list` shows them; a digest's
    /// every row goes with it).
    Ids(Vec<String>),
    /// Every message that failed for good or was refused by a recipient.
    AllFailed,
}

/// Queues messages that failed for good again, due at once: to the
/// recipients that did not get them (the configured `mail.to` as it is
/// now, for a message without a route), or to `to` instead. All or
/// nothing: an id that cannot be sent again changes nothing.
pub fn retry(conn: &Connection, which: &Which, to: &[String]) -> Result<String, String> {
    for a in to {
        a.parse::<lettre::Address>()
            .map_err(|e| format!("--to {a:?}: not an email address: {e}"))?;
    }
    let q = |e: rusqlite::Error| e.to_string();
    let tx = conn.unchecked_transaction().map_err(q)?;
    // A violation no longer standing is not mailed (the daemon would
    // cancel the row); a retraction always is.
    let standing =
        "(o.kind = 'retraction' OR EXISTS (SELECT 1 FROM violations v WHERE v.id = o.violation
                     AND v.status IN ('open', 'acked', 'late')))";
    let mut ids: Vec<i64> = Vec::new();
    let mut skipped = 0i64;
    match which {
        Which::AllFailed => {
            let mut st = tx
                .prepare(&format!(
                    "SELECT o.id, {standing} FROM outbox o WHERE {RETRYABLE} ORDER BY o.id"
                ))
                .map_err(q)?;
            let rows: Vec<(i64, bool)> = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|rows| rows.collect())
                .map_err(q)?;
            for (id, ok) in rows {
                if ok {
                    ids.push(id);
                } else {
                    skipped += 1;
                }
            }
        }
        Which::Ids(given) => {
            let mut bad = Vec::new();
            for g in given {
                let Ok(id) = g.trim_start_matches('#').parse::<i64>() else {
                    bad.push(format!(
                        "`{g}` is not a message id (see `complyd outbox list`)"
                    ));
                    continue;
                };
                let row: Option<(String, bool, bool)> = tx
                    .query_row(
                        &format!(
                            "SELECT CASE WHEN failed = 2 THEN 'was cancelled (its violation is no longer open)'
                                         WHEN failed = 0 AND sent_at IS NULL THEN 'is still waiting'
                                         WHEN failed = 0 AND rejected = '[]' THEN 'was sent to every recipient'
                                         ELSE '' END, {RETRYABLE}, {standing}
                             FROM outbox o WHERE id = ?1"
                        ),
                        [id],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .map(Some)
                    .or_else(|e| match e {
                        rusqlite::Error::QueryReturnedNoRows => Ok(None),
                        e => Err(e),
                    })
                    .map_err(q)?;
                match row {
                    None => bad.push(format!("no message #{id}")),
                    Some((why, false, _)) => bad.push(format!("#{id} {why}; nothing to send again")),
                    Some((_, true, false)) => bad.push(format!(
                        "#{id}: its violation is no longer open (waived, resolved, fixed or retracted)"
                    )),
                    Some((_, true, true)) => {
                        // The other rows of the same message (a digest).
                        let mut st = tx
                            .prepare_cached(&format!(
                                "SELECT id FROM outbox o WHERE id = ?1 OR (message_id IS NOT NULL
                                 AND message_id = (SELECT message_id FROM outbox WHERE id = ?1)
                                 AND {RETRYABLE} AND {standing})"
                            ))
                            .map_err(q)?;
                        let rows: Vec<i64> = st
                            .query_map([id], |r| r.get(0))
                            .and_then(|rows| rows.collect())
                            .map_err(q)?;
                        ids.extend(rows);
                    }
                }
            }
            if !bad.is_empty() {
                return Err(bad.join("\n"));
            }
            ids.sort_unstable();
            ids.dedup();
        }
    }
    if ids.is_empty() {
        return Ok(match skipped {
            0 => "no message failed for good; nothing to send again\n".into(),
            n => format!(
                "nothing to send again: {n} failed message(s) belong to violations no longer open\n"
            ),
        });
    }
    let recipients = (!to.is_empty()).then(|| serde_json::to_string(to).unwrap_or_default());
    {
        // Due at once on any clock: `created` is in the past of the clock
        // that queued it. Recipients that already got it keep it (no
        // copy twice); the Message-ID stays the one they saw.
        let mut st = tx
            .prepare(
                "UPDATE outbox SET failed = 0, sent_at = NULL, attempts = 0, last_error = NULL,
                     rejected = '[]', next_attempt = created, recipients = COALESCE(?2, recipients)
                 WHERE id = ?1",
            )
            .map_err(q)?;
        for id in &ids {
            st.execute(params![id, recipients]).map_err(q)?;
        }
    }
    tx.commit().map_err(q)?;
    let shown: Vec<String> = ids.iter().take(10).map(|i| format!("#{i}")).collect();
    let mut out = format!(
        "queued again: {} outbox row(s) ({}{}){}\n",
        ids.len(),
        shown.join(", "),
        if ids.len() > 10 { ", …" } else { "" },
        if to.is_empty() {
            String::new()
        } else {
            format!(" to {}", to.join(", "))
        }
    );
    if skipped > 0 {
        let _ = writeln!(out, "left out: {skipped} whose violation is no longer open");
    }
    out.push_str(
        "a running daemon sends them within 10 s (unless its mail is paused: see `complyd status`); \
         otherwise the next `complyd run`\n",
    );
    Ok(out)
}
