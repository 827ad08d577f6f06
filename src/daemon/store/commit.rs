//! One input's writes in one transaction: obligations, facts, violations
//! and their mail, the checked file, the log cursor, the reorder window.

use rusqlite::{OptionalExtension, params};

use super::*;

impl Store {
    pub(super) fn try_commit(
        &mut self,
        w: &Writes,
        now: Timestamp,
    ) -> Result<Committed, StoreError> {
        let path = self.path.clone();
        let sq = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let now_ms = millis(now);
        let tx = self.conn.transaction().map_err(sq)?;
        let mut out = Committed::default();
        let journal_entries = write_obligations(
            &tx,
            &self.mem,
            &self.dirty,
            &self.on_disk,
            (self.journal_entries, self.fold_at),
        )
        .map_err(sq)?;
        {
            if !self.new_facts.is_empty() {
                let mut batch = journal::Writer::default();
                let mut newest = i64::MIN;
                for (rule, key, fact) in &self.new_facts {
                    batch.fact(rule, key, |buf| rows::encode_fact(fact, buf));
                    newest = newest.max(millis(fact.ts));
                }
                tx.prepare_cached("INSERT INTO fact_batches (newest, data) VALUES (?1, ?2)")
                    .and_then(|mut st| st.execute(params![newest, batch.blob()]))
                    .map_err(sq)?;
            }
            let mut ins = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO violations (fingerprint, rule, severity, subject, data, created, updated, texts)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7)",
                )
                .map_err(sq)?;
            let mut mail = tx
                .prepare_cached(
                    // A follow-up (reopened, retraction) goes where the
                    // first mail went, in its route's language.
                    "INSERT INTO outbox (violation, kind, created, next_attempt, recipients, route)
                     SELECT ?1, ?2, ?3, ?3, COALESCE(
                         (SELECT recipients FROM outbox WHERE violation = ?1 ORDER BY id LIMIT 1), '[]'),
                         (SELECT route FROM outbox WHERE violation = ?1 ORDER BY id LIMIT 1)
                     WHERE ?2 = 'violation' OR EXISTS (SELECT 1 FROM outbox WHERE violation = ?1)",
                )
                .map_err(sq)?;
            let mut first = tx
                .prepare_cached(
                    "INSERT INTO outbox (violation, kind, created, next_attempt)
                     VALUES (?1, 'violation', ?2, ?2)",
                )
                .map_err(sq)?;
            let mut routed = tx
                .prepare_cached(
                    "INSERT INTO outbox (violation, kind, created, next_attempt, recipients, route, digest)
                     VALUES (?1, 'violation', ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(sq)?;
            for r in &w.records {
                let texts = self.texts.id(&tx, r).map_err(sq)?;
                let n = ins
                    .execute(params![
                        r.fingerprint,
                        r.rule,
                        r.severity.as_str(),
                        r.subject,
                        r.stored_json(),
                        now_ms,
                        texts
                    ])
                    .map_err(sq)?;
                if n == 1
                    && let Some(waiver) = &r.waiver
                {
                    // Accepted on purpose: stored, counted for the waiver,
                    // not mailed.
                    tx.execute(
                        "UPDATE violations SET status = 'waived', note = ?2 WHERE id = ?1",
                        params![tx.last_insert_rowid(), waiver.note],
                    )
                    .map_err(sq)?;
                    tx.execute(
                        "INSERT INTO waiver_uses (key, uses, last_used) VALUES (?1, 1, ?2)
                         ON CONFLICT (key) DO UPDATE SET uses = uses + 1, last_used = ?2",
                        params![waiver.key, now_ms],
                    )
                    .map_err(sq)?;
                } else if n == 1 {
                    // Queued in the same transaction as the violation: a
                    // crash either loses both or keeps both.
                    let id = tx.last_insert_rowid();
                    match &r.dispatch {
                        None => {
                            // A new violation has no earlier mail to follow.
                            first.execute(params![id, now_ms]).map_err(sq)?;
                        }
                        Some(ds) => {
                            for d in ds {
                                let to = serde_json::to_string(&d.to).unwrap_or_default();
                                routed
                                    .execute(params![
                                        id,
                                        now_ms,
                                        millis(d.send_at),
                                        to,
                                        d.route.map(|r| r as i64),
                                        d.send_at > now
                                    ])
                                    .map_err(sq)?;
                            }
                        }
                    }
                    out.new.push(r.fingerprint.clone());
                } else {
                    // Seen again (a re-saved file): a fixed one is back,
                    // and supervisors hear of it (a mail of its own kind, so
                    // its Message-ID differs from the first report's).
                    let reopened: Option<i64> = tx
                        .prepare_cached(
                            "UPDATE violations SET status = 'open', updated = ?3
                             WHERE subject = ?1 AND fingerprint = ?2 AND status = 'fixed'
                             RETURNING id",
                        )
                        .and_then(|mut st| {
                            st.query_row(params![r.subject, r.fingerprint, now_ms], |row| {
                                row.get(0)
                            })
                            .optional()
                        })
                        .map_err(sq)?;
                    if let Some(id) = reopened {
                        mail.execute(params![id, "reopened", now_ms]).map_err(sq)?;
                        out.new.push(r.fingerprint.clone());
                    }
                }
            }
            for l in &w.late {
                let status = if l.retracted { "retracted" } else { "late" };
                let changed: Option<i64> = tx
                    .prepare_cached(
                        // A late discharge keeps an acknowledgement; a
                        // retraction ends the violation whatever its state.
                        "UPDATE violations SET late_at = ?4, updated = ?5,
                             status = CASE WHEN ?3 = 'late' AND status = 'acked' THEN 'acked' ELSE ?3 END
                         WHERE subject = ?1 AND fingerprint = ?2 AND status IN ('open', 'acked')
                         RETURNING id",
                    )
                    .and_then(|mut st| {
                        st.query_row(
                            params![l.subject, l.fingerprint, status, l.at, now_ms],
                            |r| r.get(0),
                        )
                        .optional()
                    })
                    .map_err(sq)?;
                if let Some(id) = changed
                    && l.retracted
                {
                    mail.execute(params![id, "retraction", now_ms])
                        .map_err(sq)?;
                }
            }
        }
        if let Some((path, fps)) = &w.file_fingerprints {
            let p = path.display().to_string();
            let mut st = tx
                .prepare_cached(
                    "SELECT id, fingerprint FROM violations WHERE subject = ?1 AND status IN ('open', 'acked')",
                )
                .map_err(sq)?;
            let rows: Vec<(i64, String)> = st
                .query_map([&p], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|rows| rows.collect())
                .map_err(sq)?;
            for (id, fp) in rows {
                if !fps.contains(&fp) {
                    tx.execute(
                        "UPDATE violations SET status = 'fixed', updated = ?2 WHERE id = ?1",
                        params![id, now_ms],
                    )
                    .map_err(sq)?;
                }
            }
        }
        if let Some(f) = &w.file {
            tx.execute(
                "INSERT OR REPLACE INTO files (path, size, mtime_ns, sha256, checked_at, findings, rules)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    f.path.display().to_string(),
                    f.size as i64,
                    f.mtime_ns,
                    f.sha256,
                    now_ms,
                    f.findings as i64,
                    f.rules
                ],
            )
            .map_err(sq)?;
        }
        if let Some(p) = &w.removed_file {
            // The watcher reports a removed folder by its path: everything
            // below it goes too.
            let p = p.display().to_string();
            tx.execute(
                "DELETE FROM files WHERE path = ?1 OR substr(path, 1, length(?1) + 1) = ?1 || '/'",
                [&p],
            )
            .map_err(sq)?;
        }
        for (key, lines) in &w.waiting {
            tx.execute(
                "INSERT INTO sources (key, kind, last_read, waiting) VALUES (?1, 'log', ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET last_read = ?2, waiting = waiting + ?3",
                params![key, now_ms, *lines as i64],
            )
            .map_err(sq)?;
        }
        for (key, cursor, lines) in &w.cursors {
            tx.execute(
                "INSERT INTO sources (key, kind, cursor, last_read, lines) VALUES (?1, 'log', ?2, ?3, ?4)
                 ON CONFLICT (key) DO UPDATE SET cursor = ?2, last_read = ?3, lines = lines + ?4,
                     waiting = MAX(waiting - ?4, 0)",
                params![key, cursor, now_ms, *lines as i64],
            )
            .map_err(sq)?;
        }
        // Dropped first: a window rewritten after the wall clock went back
        // is stored under the id of a batch it replaces.
        for id in &w.held_drop {
            tx.prepare_cached("DELETE FROM held_batches WHERE id = ?1")
                .and_then(|mut st| st.execute([*id as i64]))
                .map_err(sq)?;
        }
        for (id, blob) in &w.held_batches {
            tx.prepare_cached("INSERT INTO held_batches (id, data) VALUES (?1, ?2)")
                .and_then(|mut st| st.execute(params![*id as i64, blob.as_slice()]))
                .map_err(sq)?;
        }
        if let Some(h) = w.horizon {
            tx.prepare_cached("INSERT OR REPLACE INTO meta (k, v) VALUES ('held_horizon', ?1)")
                .and_then(|mut st| st.execute([h.to_string()]))
                .map_err(sq)?;
        }
        for (source, message) in &w.errors {
            tx.execute(
                "INSERT INTO errors (at, source, message) VALUES (?1, ?2, ?3)",
                params![now_ms, source, message],
            )
            .map_err(sq)?;
        }
        if !w.errors.is_empty() {
            tx.execute(
                "DELETE FROM errors WHERE id <= (SELECT MAX(id) FROM errors) - 1000",
                [],
            )
            .map_err(sq)?;
        }
        if w.started {
            tx.execute(
                "INSERT OR REPLACE INTO meta (k, v) VALUES ('engine_started', ?1)",
                [now.to_string()],
            )
            .map_err(sq)?;
        }
        // Facts past their retention no longer count; drop them hourly.
        if self
            .last_prune
            .is_none_or(|t| now.duration_since(t).as_secs() > 3600)
        {
            let horizon = now - crate::engine::FACT_RETENTION;
            tx.execute("DELETE FROM facts WHERE ts < ?1", [millis(horizon)])
                .map_err(sq)?;
            tx.execute(
                "DELETE FROM fact_batches WHERE newest < ?1",
                [millis(horizon)],
            )
            .map_err(sq)?;
            self.last_prune = Some(now);
        }
        tx.commit().map_err(sq)?;
        self.journal_entries = journal_entries;
        Ok(out)
    }
}

/// The obligations this input changed, as one journal row; or, once the
/// journal has grown well past the open obligations, every open obligation
/// as the new base and the journal emptied (journal.rs). Returns the
/// journal's entries after it.
fn write_obligations(
    tx: &rusqlite::Transaction<'_>,
    mem: &MemoryState,
    dirty: &keys::KeySet,
    on_disk: &keys::KeySet,
    (entries, fold_at): (usize, usize),
) -> rusqlite::Result<usize> {
    if dirty.is_empty() {
        return Ok(entries);
    }
    let open = mem.obligation_count();
    if entries + dirty.len() >= fold_at.max(journal::FOLD_RATIO * open) {
        tx.execute_batch("DELETE FROM obligation_log; DELETE FROM obligations;")?;
        let mut put = tx.prepare_cached(
            "INSERT INTO obligations (rule, key, wake, data) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for o in mem.all_obligations() {
            put.execute(params![
                o.rule,
                o.key,
                millis(o.wake),
                rows::obligation_json(o)
            ])?;
        }
        return Ok(0);
    }
    let mut w = journal::Writer::default();
    for (rule, key) in dirty.iter() {
        match mem.obligation_ref(rule, key) {
            Some(o) => w.put(rule, key, millis(o.wake), |buf| {
                rows::encode_obligation(o, buf)
            }),
            None if on_disk.contains(rule, key) => w.del(rule, key),
            // Never written: nothing to undo.
            None => {}
        }
    }
    if !w.is_empty() {
        tx.prepare_cached("INSERT INTO obligation_log (data) VALUES (?1)")?
            .execute([w.blob()])?;
    }
    Ok(entries + w.len())
}
