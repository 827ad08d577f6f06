//! `complyd violations list|show|ack|resolve|waive|waivers`: the lifecycle
//! of stored violations, for supervisors and compliance staff.
//!
//! These commands write the daemon's database from another process. SQLite
//! in WAL mode serialises the writes (each command is one short
//! transaction; the daemon waits on its busy timeout), and the daemon reads
//! waivers from the database for every new violation, so a waiver applies
//! from the next input on, without a reload.

use std::fmt::Write as _;

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};

use super::record::Record;
use super::store::millis;
use crate::rules::waivers::Waiver;

/// Statuses a person can set.
pub const ACK: &str = "acked";
pub const RESOLVED: &str = "resolved";

fn when(ms: i64, tz: &jiff::tz::TimeZone) -> String {
    Timestamp::from_millisecond(ms)
        .map(|t| tz.to_datetime(t).strftime("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

/// One line per violation, newest first.
pub fn list(
    conn: &Connection,
    status: Option<&str>,
    rule: Option<&str>,
    limit: usize,
    tz: &jiff::tz::TimeZone,
) -> rusqlite::Result<String> {
    const WHERE: &str =
        "FROM violations WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR rule = ?2)";
    let total: i64 = conn.query_row(
        &format!("SELECT COUNT(*) {WHERE}"),
        params![status, rule],
        |r| r.get(0),
    )?;
    let mut st = conn.prepare(&format!(
        "SELECT id, status, severity, rule, subject, created, fingerprint,
                CASE WHEN json_valid(data) AND json_type(data, '$.at') = 'text'
                     THEN json_extract(data, '$.at') END {WHERE}
         ORDER BY id DESC LIMIT ?3"
    ))?;
    let rows = st.query_map(params![status, rule, limit as i64], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, i64>(5)?,
            r.get::<_, String>(6)?,
            r.get::<_, Option<String>>(7)?,
        ))
    })?;
    let mut out = String::new();
    let mut shown = 0;
    for row in rows {
        let (id, status, sev, rule, subject, created, fp, at) = row?;
        // When it happened (a deadline's due instant, the event's time, when
        // the file was checked), as `show` says under `at:`; the time it was
        // recorded only for a row that lacks it.
        let at = at.unwrap_or_else(|| when(created, tz));
        let _ = writeln!(out, "#{id}  {status}  {sev}  {rule}  {subject}  {at}  {fp}");
        shown += 1;
    }
    if total == 0 {
        // Said, so that an empty answer is not taken for a failed command.
        out.push_str("no violation matches\n");
    }
    super::status::more_not_shown(&mut out, total, shown, " (--limit N shows more)");
    Ok(out)
}

/// Finds a violation by `#id`, id, or fingerprint (or a unique prefix of one).
pub fn find(conn: &Connection, which: &str) -> Result<(i64, String), String> {
    let which = which.trim_start_matches('#');
    if let Ok(id) = which.parse::<i64>() {
        let fp: Option<String> = conn
            .query_row(
                "SELECT fingerprint FROM violations WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| e.to_string())?;
        if let Some(fp) = fp {
            return Ok((id, fp));
        }
    }
    let mut st = conn
        .prepare("SELECT id, fingerprint FROM violations WHERE fingerprint LIKE ?1 || '%' LIMIT 2")
        .map_err(|e| e.to_string())?;
    let rows: Vec<(i64, String)> = st
        .query_map([which], |r| Ok((r.get(0)?, r.get(1)?)))
        .and_then(|r| r.collect())
        .map_err(|e| e.to_string())?;
    match rows.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(format!(
            "no violation `{which}` (give #id or a fingerprint)"
        )),
        _ => Err(format!(
            "`{which}` matches several fingerprints; give more of it"
        )),
    }
}

/// Everything stored about one violation.
pub fn show(conn: &Connection, which: &str, tz: &jiff::tz::TimeZone) -> Result<String, String> {
    let (id, _) = find(conn, which)?;
    let (status, note, data, created, updated, late): (
        String,
        Option<String>,
        String,
        i64,
        i64,
        Option<String>,
    ) = conn
        .query_row(
            "SELECT v.status, v.note, r.data, v.created, v.updated, v.late_at
             FROM violations v JOIN violation_records r ON r.id = v.id WHERE v.id = ?1",
            [id],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            },
        )
        .map_err(|e| e.to_string())?;
    let r: Record = serde_json::from_str(&data).map_err(|e| e.to_string())?;
    let mut out = String::new();
    let _ = writeln!(out, "#{id}  {}  {}  {}", r.rule, r.severity.tier(), status);
    let _ = writeln!(out, "message:     {}", r.message);
    if !r.clause.is_empty() {
        let _ = writeln!(out, "clause:      {}", r.clause.join("; "));
    }
    let _ = writeln!(out, "subject:     {}", r.subject);
    let _ = writeln!(out, "where:       {}", r.location.join(", "));
    for (k, v) in [
        ("cue", &r.cue),
        ("field", &r.field),
        ("matched", &r.matched),
        ("excerpt", &r.excerpt),
        ("due", &r.due),
        ("detail", &r.detail),
        ("suggestion", &r.suggestion),
    ] {
        if let Some(v) = v {
            let _ = writeln!(out, "{:<12} {v}", format!("{k}:"));
        }
    }
    let _ = writeln!(out, "at:          {}", r.at);
    if let Some(l) = late {
        let _ = writeln!(out, "discharged:  {l}");
    }
    if let Some(n) = note {
        let _ = writeln!(out, "note:        {n}");
    }
    let _ = writeln!(
        out,
        "recorded:    {} (updated {})",
        when(created, tz),
        when(updated, tz)
    );
    let _ = writeln!(out, "fingerprint: {}", r.fingerprint);
    Ok(out)
}

/// Acknowledges or resolves a violation, noting who and why.
pub fn set_status(
    conn: &Connection,
    which: &str,
    status: &str,
    by: &str,
    note: Option<&str>,
    now: Timestamp,
) -> Result<i64, String> {
    let (id, _) = find(conn, which)?;
    let note = match note {
        Some(n) => format!("{status} by {by}: {n}"),
        None => format!("{status} by {by}"),
    };
    // Only a violation that stands can be acknowledged or resolved: a
    // waived, retracted or fixed one says so instead of being overwritten.
    // Earlier notes stay (an audit trail), the newest last.
    let changed = conn
        .execute(
            "UPDATE violations SET status = ?2, updated = ?4,
                 note = CASE WHEN note IS NULL OR note = '' THEN ?3 ELSE note || char(10) || ?3 END
             WHERE id = ?1 AND status IN ('open', 'acked', 'late')",
            params![id, status, note, millis(now)],
        )
        .map_err(|e| e.to_string())?;
    if changed == 0 {
        let current: String = conn
            .query_row("SELECT status FROM violations WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .map_err(|e| e.to_string())?;
        return Err(format!(
            "#{id} is {current}; only an open, acknowledged or late violation can be {status}"
        ));
    }
    Ok(id)
}

/// What a new waiver covers.
#[derive(Debug, Clone)]
pub enum WaiveTarget {
    /// One stored violation (by #id or fingerprint): waived now, and its
    /// fingerprint from now on.
    Violation(String),
    /// A scope: every violation of `rule` (or `*`) in files matching a glob,
    /// or about a subject.
    Path {
        rule: String,
        glob: String,
    },
    Subject {
        rule: String,
        subject: String,
    },
}

/// Adds a waiver (validated like one in waivers.yaml); returns its id and
/// how many open or acknowledged violations it waived at once (a scope
/// covers those already found too, not only later ones).
pub fn waive(
    conn: &Connection,
    target: &WaiveTarget,
    reason: &str,
    by: &str,
    expires: Option<&str>,
    tz: &jiff::tz::TimeZone,
    now: Timestamp,
) -> Result<(i64, usize), String> {
    let (rule, scope, value, violation) = match target {
        WaiveTarget::Violation(which) => {
            let (id, fp) = find(conn, which)?;
            let rule: String = conn
                .query_row("SELECT rule FROM violations WHERE id = ?1", [id], |r| {
                    r.get(0)
                })
                .map_err(|e| e.to_string())?;
            (rule, "fingerprint", fp, Some(id))
        }
        WaiveTarget::Path { rule, glob } => (rule.clone(), "path", glob.clone(), None),
        WaiveTarget::Subject { rule, subject } => (rule.clone(), "subject", subject.clone(), None),
    };
    let w = Waiver::new(
        &rule,
        (scope, &value),
        reason,
        by,
        expires,
        tz,
        String::new(),
    )?;
    if w.expires.is_some_and(|e| e <= now) {
        // Said as the user wrote it: a day given is in force through that
        // day, so it is stored as the next midnight.
        return Err(format!(
            "--expires {} is already past: a waiver must end in the future",
            expires.unwrap_or_default()
        ));
    }
    let tx = conn.unchecked_transaction().map_err(|e| e.to_string())?;
    tx.execute(
        "INSERT INTO waivers (rule, scope, value, reason, by, expires, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![rule, scope, value, reason, by, w.expires.map(millis), millis(now)],
    )
    .map_err(|e| e.to_string())?;
    let wid = tx.last_insert_rowid();
    let note = format!("{reason}（{by}，database waiver #{wid}）");
    let covered: Vec<i64> = match violation {
        Some(id) => vec![id],
        None => {
            let mut st = tx
                .prepare(
                    "SELECT v.id, r.data FROM violations v JOIN violation_records r ON r.id = v.id
                     WHERE v.status IN ('open', 'acked') AND (v.rule = ?1 OR ?1 = '*')",
                )
                .map_err(|e| e.to_string())?;
            let rows: Vec<(i64, String)> = st
                .query_map([&rule], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|rows| rows.collect())
                .map_err(|e| e.to_string())?;
            rows.into_iter()
                .filter(|(_, data)| {
                    serde_json::from_str::<Record>(data).is_ok_and(|r| {
                        w.matches(&r.rule, &r.fingerprint, &r.subject, &r.paths(), now)
                    })
                })
                .map(|(id, _)| id)
                .collect()
        }
    };
    for &id in &covered {
        tx.execute(
            "UPDATE violations SET status = 'waived', note = ?2, updated = ?3 WHERE id = ?1",
            params![id, note, millis(now)],
        )
        .map_err(|e| e.to_string())?;
        tx.execute(
            "INSERT INTO waiver_uses (key, uses, last_used) VALUES (?1, 1, ?2)
             ON CONFLICT (key) DO UPDATE SET uses = uses + 1, last_used = ?2",
            params![w.key(), millis(now)],
        )
        .map_err(|e| e.to_string())?;
    }
    tx.commit().map_err(|e| e.to_string())?;
    Ok((wid, covered.len()))
}

/// Every waiver (the file's and the database's) with its use count;
/// unused and expired ones are marked, so they can be cleaned up.
pub fn waivers(
    conn: &Connection,
    from_file: &[Waiver],
    now: Timestamp,
    tz: &jiff::tz::TimeZone,
) -> Result<String, String> {
    let mut all: Vec<Waiver> = from_file.to_vec();
    all.extend(super::store::load_waivers(conn, None).map_err(|e| e.to_string())?);
    let mut out = String::new();
    if all.is_empty() {
        out.push_str("no waivers\n");
    }
    for w in &all {
        let uses: i64 = conn
            .query_row(
                "SELECT uses FROM waiver_uses WHERE key = ?1",
                [w.key()],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| e.to_string())?
            .unwrap_or(0);
        let mut flags = Vec::new();
        if uses == 0 {
            flags.push("UNUSED".to_string());
        }
        if let Some(e) = w.expires {
            if now >= e {
                flags.push("EXPIRED".to_string());
            } else {
                // `--expires 2026-12-31` runs through that day: said so,
                // not as the midnight after it.
                let end = tz.to_datetime(e);
                flags.push(if end.time() == jiff::civil::Time::midnight() {
                    let day = end.date().yesterday().unwrap_or(end.date());
                    format!("in force through {}", day.strftime("%Y-%m-%d"))
                } else {
                    format!("expires {}", end.strftime("%Y-%m-%d %H:%M"))
                });
            }
        }
        let _ = writeln!(
            out,
            "{}  {}  {}  used {uses}×  {}  — {} ({})",
            w.origin,
            w.rule,
            w.scope_text(),
            flags.join(", "),
            w.reason,
            w.by
        );
    }
    Ok(out)
}
