//! `complyd status`: what the daemon's database says — sources and when
//! each was last read, open obligations, the outbox, recent errors. Read
//! only, through WAL, so it never blocks the running daemon.

use std::fmt::Write as _;
use std::path::Path;

use jiff::Timestamp;
use rusqlite::{Connection, OpenFlags, OptionalExtension};

fn when(ms: Option<i64>, tz: &jiff::tz::TimeZone) -> String {
    ms.and_then(|m| Timestamp::from_millisecond(m).ok())
        .map(|t| tz.to_datetime(t).strftime("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "never".into())
}

/// Says how many rows a list left out, so that a cut list is never read as
/// the whole of it.
pub(crate) fn more_not_shown(out: &mut String, total: i64, shown: usize, hint: &str) {
    let rest = total - shown as i64;
    if rest > 0 {
        let _ = writeln!(out, "  … {rest} more not shown{hint}");
    }
}

/// A route that mails digests, as `status` names it: its index (as stored
/// with the outbox rows) and `to supervision · daily 09:00`.
pub type DigestRoute = (usize, String);

/// The digest routes of a configuration.
pub fn digest_routes(routing: &super::route::Routing) -> Vec<DigestRoute> {
    routing
        .routes
        .iter()
        .enumerate()
        .filter(|(_, r)| r.delivery != super::route::Delivery::Immediate)
        .map(|(i, r)| {
            (
                i,
                format!("to {} · {}", r.to.join(", "), r.delivery.describe()),
            )
        })
        .collect()
}

/// The report, as text.
pub fn report(
    db: &Path,
    tz: &jiff::tz::TimeZone,
    routes: &[DigestRoute],
) -> Result<String, String> {
    if !db.exists() {
        return Err(format!(
            "{}: no state database (has `complyd run` been started with this configuration?)",
            db.display()
        ));
    }
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("{}: {e}", db.display()))?;
    let q = |e: rusqlite::Error| format!("{}: {e}", db.display());
    let mut out = String::new();
    let _ = writeln!(out, "state: {}", db.display());

    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(q)?;
    let _ = writeln!(out, "\nsources:");
    let mut st = conn
        .prepare(
            // A database the running daemon has not upgraded yet (a new
            // binary installed, not yet restarted) has no `waiting` (v9).
            if version >= 9 {
                "SELECT key, last_read, lines, waiting FROM sources ORDER BY key"
            } else {
                "SELECT key, last_read, lines, 0 FROM sources ORDER BY key"
            },
        )
        .map_err(q)?;
    let rows: Vec<(String, Option<i64>, i64, i64)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .and_then(|r| r.collect())
        .map_err(q)?;
    if rows.is_empty() {
        let _ = writeln!(out, "  (no log read yet)");
    }
    for (key, last, lines, waiting) in rows {
        // Lines whose events all wait in the reorder window are not saved
        // as read: a restart reads them again.
        let waiting = if waiting > 0 {
            format!(" (and {waiting} more waiting in the reorder window)")
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "  log {key}: {lines} lines{waiting}, last read {}",
            when(last, tz)
        );
    }
    let (files, last_file): (i64, Option<i64>) = conn
        .query_row("SELECT COUNT(*), MAX(checked_at) FROM files", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .map_err(q)?;
    let _ = writeln!(
        out,
        "  folders: {files} files checked, last at {}",
        when(last_file, tz)
    );

    // The base table and the journal's changes (store/journal.rs).
    let (mut rows, _, _) = super::store::journal::obligations(&conn).map_err(q)?;
    let open = rows.len() as i64;
    let _ = writeln!(out, "\nopen obligations: {open}");
    rows.sort_by(|a, b| (a.2, &a.0, &a.1).cmp(&(b.2, &b.0, &b.1)));
    rows.truncate(10);
    let shown = rows.len();
    for (rule, key, wake, o) in rows {
        // The key is internal (fields joined by control characters, a
        // fired deadline's own suffix): people read the subject.
        let (subject, fired, due) = match &o {
            Ok(o) => (o.subject.as_str(), o.fired, Some(o.due.as_millisecond())),
            Err(_) => (key.as_str(), false, None),
        };
        let at = when(Some(wake), tz);
        let dormant = wake >= crate::engine::NEVER.as_millisecond();
        let _ = match fired {
            true if dormant => writeln!(
                out,
                "  {rule}  {subject}  overdue since {} (reported); waits for its renewal",
                when(due, tz)
            ),
            true => writeln!(
                out,
                "  {rule}  {subject}  overdue (reported); a late discharge is marked until {at}"
            ),
            false => writeln!(out, "  {rule}  {subject}  due {at}"),
        };
    }
    more_not_shown(&mut out, open, shown, "");

    let mut st = conn
        .prepare("SELECT status, COUNT(*) FROM violations GROUP BY status ORDER BY status")
        .map_err(q)?;
    let rows: Vec<(String, i64)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .and_then(|r| r.collect())
        .map_err(q)?;
    // Said in words: "late" alone reads like "still overdue".
    let summary: Vec<String> = rows
        .iter()
        .map(|(s, n)| {
            let what = match s.as_str() {
                "late" => "late (done after the deadline)",
                "retracted" => "retracted (done in time, logged late)",
                "fixed" => "fixed (no longer found)",
                "acked" => "acknowledged",
                other => other,
            };
            format!("{n} {what}")
        })
        .collect();
    let _ = writeln!(
        out,
        "\nviolations: {}",
        if summary.is_empty() {
            "none".to_string()
        } else {
            summary.join(", ")
        }
    );

    let (pending, failed, sent, cancelled): (i64, i64, i64, i64) = conn
        .query_row(
            "SELECT COALESCE(SUM(sent_at IS NULL AND failed = 0), 0), COALESCE(SUM(failed = 1), 0),
                    COALESCE(SUM(sent_at IS NOT NULL), 0), COALESCE(SUM(failed = 2), 0) FROM outbox",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .map_err(q)?;
    let _ = writeln!(
        out,
        "\noutbox: {pending} waiting, {sent} sent, {failed} failed for good, {cancelled} cancelled"
    );
    // Written by an older complyd (the daemon upgrades it at start): no
    // per-recipient results or pause yet.
    if version >= 5 {
        outbox_v5(&conn, &mut out, tz).map_err(q)?;
        digests(&conn, &mut out, tz, routes, Timestamp::now()).map_err(q)?;
    }
    const RETRYING: &str = "FROM outbox WHERE last_error IS NOT NULL AND sent_at IS NULL \
                            AND last_error NOT LIKE 'not accepted for %'";
    let retrying: i64 = conn
        .query_row(&format!("SELECT COUNT(*) {RETRYING}"), [], |r| r.get(0))
        .map_err(q)?;
    let mut st = conn
        .prepare(&format!(
            "SELECT id, attempts, last_error {RETRYING} ORDER BY id DESC LIMIT 5"
        ))
        .map_err(q)?;
    let rows: Vec<(i64, i64, String)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .and_then(|r| r.collect())
        .map_err(q)?;
    let shown = rows.len();
    for (id, attempts, err) in rows {
        let _ = writeln!(
            out,
            "  message {id}: {attempts} attempts, last error: {err}"
        );
    }
    more_not_shown(&mut out, retrying, shown, " (complyd outbox list)");

    let errors: i64 = conn
        .query_row("SELECT COUNT(*) FROM errors", [], |r| r.get(0))
        .map_err(q)?;
    let mut st = conn
        .prepare("SELECT at, source, message FROM errors ORDER BY id DESC LIMIT 10")
        .map_err(q)?;
    let rows: Vec<(i64, String, String)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .and_then(|r| r.collect())
        .map_err(q)?;
    let _ = writeln!(
        out,
        "\nrecent errors: {}",
        if rows.is_empty() { "none" } else { "" }
    );
    let shown = rows.len();
    for (at, source, msg) in rows {
        let first = msg.lines().next().unwrap_or_default();
        // A log's messages start with the file and line already.
        if first.starts_with(&format!("{source}:")) {
            let _ = writeln!(out, "  {}  {first}", when(Some(at), tz));
        } else {
            let _ = writeln!(out, "  {}  {source}: {first}", when(Some(at), tz));
        }
    }
    more_not_shown(&mut out, errors, shown, "");
    Ok(out)
}

/// Each digest waiting to go out: when, and how many violations it holds;
/// a digest route with nothing waiting says so (schema v5).
fn digests(
    conn: &Connection,
    out: &mut String,
    tz: &jiff::tz::TimeZone,
    routes: &[DigestRoute],
    now: Timestamp,
) -> rusqlite::Result<()> {
    let mut st = conn.prepare(
        "SELECT route, MIN(next_attempt), COUNT(*) FROM outbox
         WHERE digest = 1 AND kind = 'violation' AND sent_at IS NULL AND failed = 0
         GROUP BY route, window_end ORDER BY MIN(next_attempt), route",
    )?;
    let rows: Vec<(Option<i64>, i64, i64)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .and_then(|r| r.collect())?;
    if rows.is_empty() && routes.is_empty() {
        return Ok(());
    }
    let _ = writeln!(
        out,
        "
digests:"
    );
    let name = |route: Option<i64>| -> String {
        let i = route.and_then(|r| usize::try_from(r).ok());
        match routes.iter().find(|(n, _)| Some(*n) == i) {
            Some((n, what)) => format!("route {} ({what})", n + 1),
            None => match i {
                Some(n) => format!("route {}", n + 1),
                None => "the default route".into(),
            },
        }
    };
    for (route, at, n) in &rows {
        let late = if *at < now.as_millisecond() {
            " (due: sent as soon as the daemon runs and the server answers)"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  {}: {n} violation{} waiting, goes out {}{late}",
            name(*route),
            if *n == 1 { "" } else { "s" },
            when(Some(*at), tz)
        );
    }
    for (i, _) in routes {
        let queued = rows
            .iter()
            .any(|(r, _, _)| r.and_then(|r| usize::try_from(r).ok()) == Some(*i));
        if !queued {
            let _ = writeln!(out, "  {}: nothing waiting", name(i64::try_from(*i).ok()));
        }
    }
    Ok(())
}

/// The mailer's pause and the recipients refused for good (schema v5).
fn outbox_v5(conn: &Connection, out: &mut String, tz: &jiff::tz::TimeZone) -> rusqlite::Result<()> {
    // The mailer's pause, as it recorded it (only while it lasts).
    let paused: Option<String> = conn
        .query_row(
            "SELECT v FROM meta WHERE k = ?1",
            [super::outbox::MAILER_STATE],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(state) =
        paused.and_then(|v| serde_json::from_str::<super::outbox::MailerState>(&v).ok())
    {
        let what = match state.paused.as_str() {
            "auth" => "PAUSED: the server refuses our login (fix mail.smtp, then restart)",
            "sender" => {
                "PAUSED: the server refuses our sender address (fix mail.from, then restart)"
            }
            _ => "PAUSED: the server cannot be reached",
        };
        let _ = writeln!(
            out,
            "  {what} since {}, next try {}: {}",
            when(Some(state.since.as_millisecond()), tz),
            when(Some(state.next_try.as_millisecond()), tz),
            state.reason
        );
    }
    // Messages a recipient refused for good: sent to the others (or to
    // nobody: failed). `complyd outbox retry` sends them again.
    const REJECTED: &str = "FROM outbox WHERE rejected != '[]' \
                            GROUP BY COALESCE(message_id, 'row ' || id), rejected";
    let messages: i64 = conn.query_row(
        &format!("SELECT COUNT(*) FROM (SELECT 1 {REJECTED})"),
        [],
        |r| r.get(0),
    )?;
    let mut st = conn.prepare(&format!(
        "SELECT MIN(id), COUNT(*), MAX(sent_at IS NOT NULL), rejected {REJECTED}
         ORDER BY MIN(id) DESC LIMIT 5"
    ))?;
    let rows: Vec<(i64, i64, bool, String)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .and_then(|r| r.collect())?;
    let shown = rows.len();
    for (id, n, sent, rejected) in rows {
        let rejected: Vec<(String, String)> = serde_json::from_str(&rejected).unwrap_or_default();
        let digest = if n > 1 {
            format!(" (a digest of {n})")
        } else {
            String::new()
        };
        for (address, why) in rejected {
            let _ = writeln!(
                out,
                "  message #{id}{digest}: REJECTED for {address}{}: {why}",
                if sent { ", sent to the others" } else { "" }
            );
        }
    }
    more_not_shown(out, messages, shown, " (complyd outbox list --failed)");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn obligations_are_shown_by_subject_and_a_fired_deadline_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("c.db");
        drop(crate::daemon::store::Store::open(&db).unwrap());
        let conn = Connection::open(&db).unwrap();
        let row = |key: &str, subject: &str, fired: bool| {
            let data = serde_json::json!({
                "subject": subject, "started": "2026-03-02T02:00:00Z",
                "due": "2026-03-02T03:00:00Z", "wake": "2026-04-01T03:00:00Z",
                "evidence": [], "fired": fired,
            });
            conn.execute(
                "INSERT INTO obligations (rule, key, wake, data) VALUES ('reply-general-1h', ?1, ?2, ?3)",
                rusqlite::params![key, 1_775_012_400_000i64, data.to_string()],
            )
            .unwrap();
        };
        row("c-9\u{1e}late", "c-9", true);
        row("ks\u{1f}a", "ks/a", false);
        // A staleness lapse reported, waiting for its renewal.
        let data = serde_json::json!({
            "subject": "ks-main", "started": "2026-01-05T02:00:00Z",
            "due": "2026-04-05T02:00:00Z", "wake": crate::engine::NEVER,
            "evidence": [], "fired": true,
        });
        conn.execute(
            "INSERT INTO obligations (rule, key, wake, data) VALUES ('password-age', 'ks-main', ?1, ?2)",
            rusqlite::params![crate::engine::NEVER.as_millisecond(), data.to_string()],
        )
        .unwrap();
        let text = report(&db, &jiff::tz::TimeZone::UTC, &[]).unwrap();
        assert!(
            text.contains(
                "password-age  ks-main  overdue since 2026-04-05 02:00:00 (reported); waits for its renewal"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "reply-general-1h  c-9  overdue (reported); a late discharge is marked until"
            ),
            "{text}"
        );
        assert!(text.contains("reply-general-1h  ks/a  due "), "{text}");
        assert!(
            !text.contains('\u{1e}') && !text.contains('\u{1f}'),
            "{text}"
        );
    }

    /// Lines waiting in the reorder window are shown; a database the
    /// daemon has not upgraded yet (v8, no `waiting`) still reads.
    #[test]
    fn sources_show_waiting_lines_and_an_older_database_reads() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("c.db");
        drop(crate::daemon::store::Store::open(&db).unwrap());
        let conn = Connection::open(&db).unwrap();
        conn.execute(
            "INSERT INTO sources (key, kind, lines, waiting, last_read) VALUES ('/l/a.jsonl', 'log', 17, 3, 0)",
            [],
        )
        .unwrap();
        let text = report(&db, &jiff::tz::TimeZone::UTC, &[]).unwrap();
        assert!(
            text.contains("log /l/a.jsonl: 17 lines (and 3 more waiting in the reorder window)"),
            "{text}"
        );
        conn.execute_batch("ALTER TABLE sources DROP COLUMN waiting; PRAGMA user_version = 8")
            .unwrap();
        let text = report(&db, &jiff::tz::TimeZone::UTC, &[]).unwrap();
        assert!(
            text.contains("log /l/a.jsonl: 17 lines, last read"),
            "{text}"
        );
    }
}
