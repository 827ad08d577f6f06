//! Obligations and facts written as one row per input instead of one row
//! each.
//!
//! Nearly every deadline obligation outlives the input that opened it (a
//! question asked at night waits for the morning's reply), so it was
//! written as a row by one commit and deleted by a later one: on the
//! ingestion bench 65k row inserts and deletes per 200k events, the
//! largest share of the rows a commit wrote. Now an input's obligation
//! changes are appended as ONE row of `obligation_log` (the journal), read
//! after the `obligations` table (the base) at start; once the journal
//! holds many more entries than there are open obligations, a commit folds
//! it: the base is rewritten from memory and the journal emptied, in the
//! same transaction. Facts only ever grow until pruned: an input's facts
//! go into one `fact_batches` row, pruned whole once its newest fact is
//! past the retention.
//!
//! Entries are framed as held.rs frames events (daemon/frame.rs): a tag
//! byte, then each string as a little-endian u32 length and its bytes.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension};

use crate::daemon::frame::{self, Reader, put_str};
use crate::engine::{Fact, Obligation};

const PUT: u8 = b'P';
const DEL: u8 = b'D';
const FACT: u8 = b'F';

/// The journal is folded into the base once it holds this many entries
/// and more than [`FOLD_RATIO`] times the open obligations: a fold writes
/// every open obligation once, so folding more often than that would
/// write more rows than the journal saves.
pub(super) const FOLD_AT: usize = 50_000;
pub(super) const FOLD_RATIO: usize = 4;

/// One change, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Entry<'a> {
    /// An obligation as it now is: its wake (ms) and rows.rs's form.
    Put {
        rule: &'a str,
        key: &'a str,
        wake: i64,
        data: &'a [u8],
    },
    /// An obligation discharged or forgotten.
    Del { rule: &'a str, key: &'a str },
    /// A fact (rows.rs's form).
    Fact {
        rule: &'a str,
        key: &'a str,
        data: &'a [u8],
    },
}

/// Appends entries to a blob.
#[derive(Debug, Default)]
pub(super) struct Writer {
    buf: Vec<u8>,
    count: usize,
}

impl Writer {
    fn head(&mut self, tag: u8, rule: &str, key: &str) {
        self.count += 1;
        self.buf.push(tag);
        put_str(&mut self.buf, rule);
        put_str(&mut self.buf, key);
    }

    /// A value written by `write` straight into the blob, after its length.
    fn value(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        write(&mut self.buf);
        let n = (self.buf.len() - at - 4) as u32;
        self.buf[at..at + 4].copy_from_slice(&n.to_le_bytes());
    }

    pub fn put(&mut self, rule: &str, key: &str, wake: i64, write: impl FnOnce(&mut Vec<u8>)) {
        self.head(PUT, rule, key);
        self.buf.extend_from_slice(&wake.to_le_bytes());
        self.value(write);
    }

    pub fn del(&mut self, rule: &str, key: &str) {
        self.head(DEL, rule, key);
    }

    pub fn fact(&mut self, rule: &str, key: &str, write: impl FnOnce(&mut Vec<u8>)) {
        self.head(FACT, rule, key);
        self.value(write);
    }

    #[cfg(test)]
    pub fn push(&mut self, e: &Entry<'_>) {
        match *e {
            Entry::Put {
                rule,
                key,
                wake,
                data,
            } => self.put(rule, key, wake, |buf| buf.extend_from_slice(data)),
            Entry::Del { rule, key } => self.del(rule, key),
            Entry::Fact { rule, key, data } => {
                self.fact(rule, key, |buf| buf.extend_from_slice(data))
            }
        }
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn blob(&self) -> &[u8] {
        &self.buf
    }
}

/// The entries of a blob, in the order written; an error where it is cut
/// short or corrupt (the rest of the blob is then ignored).
pub(super) fn decode(blob: &[u8]) -> Vec<Result<Entry<'_>, String>> {
    frame::records(blob, ("a journal row", "entries"), |r: &mut Reader<'_>| {
        let tag = r.u8()?;
        let (rule, key) = (r.str()?, r.str()?);
        Some(match tag {
            PUT => Entry::Put {
                rule,
                key,
                wake: r.i64()?,
                data: r.bytes()?,
            },
            DEL => Entry::Del { rule, key },
            FACT => Entry::Fact {
                rule,
                key,
                data: r.bytes()?,
            },
            _ => return None,
        })
    })
}

/// An obligation as stored: rule, key, wake (ms), and the obligation (or
/// why it could not be read back).
pub type ObligationRecord = (String, String, i64, Result<Obligation, String>);

/// The open obligations as the database holds them: the base table, then
/// the journal's entries in order (a later entry for a key replaces an
/// earlier one). Also the number of journal entries read, and what was
/// corrupt. Reads a database from before the journal (no such table) too:
/// `complyd status` does not upgrade the database it reads.
pub(crate) fn obligations(
    conn: &Connection,
) -> rusqlite::Result<(Vec<ObligationRecord>, usize, Vec<String>)> {
    // The key is internal (fields joined by control characters): escaped.
    let unreadable =
        |rule: &str, key: &str| format!("the open obligation {rule} {key:?} cannot be read");
    let mut st = conn.prepare("SELECT rule, key, wake, data FROM obligations")?;
    let base: Vec<(String, String, i64, String)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    // In the order first seen, so that the result does not depend on
    // hashing; a later entry for a key replaces its state in place.
    type State = Option<(i64, Result<Obligation, String>)>;
    let mut rows: Vec<(String, String, State)> = Vec::with_capacity(base.len());
    let mut index: HashMap<(String, String), usize> = HashMap::new();
    let mut set = |rule: &str, key: &str, now: State| {
        let k = (rule.to_string(), key.to_string());
        match index.get(&k) {
            Some(&i) => rows[i].2 = now,
            None => {
                index.insert(k, rows.len());
                rows.push((rule.to_string(), key.to_string(), now));
            }
        }
    };
    for (rule, key, wake, data) in &base {
        let o =
            super::rows::obligation_from_json(rule, key, data).ok_or_else(|| unreadable(rule, key));
        set(rule, key, Some((*wake, o)));
    }
    let (mut entries, mut corrupt) = (0, Vec::new());
    if has_table(conn, "obligation_log")? {
        for (id, blob) in &blobs(conn, "obligation_log")? {
            for e in decode(blob) {
                match e {
                    Ok(Entry::Put {
                        rule,
                        key,
                        wake,
                        data,
                    }) => {
                        let o = super::rows::decode_obligation(rule, key, data)
                            .ok_or_else(|| unreadable(rule, key));
                        set(rule, key, Some((wake, o)));
                    }
                    Ok(Entry::Del { rule, key }) => set(rule, key, None),
                    Ok(Entry::Fact { .. }) => continue,
                    Err(e) => {
                        corrupt.push(format!("obligation_log row {id}: {e}"));
                        continue;
                    }
                }
                entries += 1;
            }
        }
    }
    let out = rows
        .into_iter()
        .filter_map(|(rule, key, now)| now.map(|(wake, o)| (rule, key, wake, o)))
        .collect();
    Ok((out, entries, corrupt))
}

/// A journal table's rows, oldest first: (id, blob).
fn blobs(conn: &Connection, table: &str) -> rusqlite::Result<Vec<(i64, Vec<u8>)>> {
    let mut st = conn.prepare(&format!("SELECT id, data FROM {table} ORDER BY id"))?;
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
}

/// A fact with its rule and key.
pub(super) type FactRecord = (String, String, Fact);

/// The facts of `fact_batches`, oldest first, and what was corrupt. A fact
/// of a type no longer known is left out (it cannot match any rule).
pub(super) fn facts(conn: &Connection) -> rusqlite::Result<(Vec<FactRecord>, Vec<String>)> {
    let (mut out, mut corrupt) = (Vec::new(), Vec::new());
    for (id, blob) in &blobs(conn, "fact_batches")? {
        for e in decode(blob) {
            match e {
                Ok(Entry::Fact { rule, key, data }) => match super::rows::decode_fact(data) {
                    Ok(Some(f)) => out.push((rule.to_string(), key.to_string(), f)),
                    Ok(None) => {}
                    Err(e) => corrupt.push(format!("fact_batches row {id}: {e}")),
                },
                Ok(_) => {}
                Err(e) => corrupt.push(format!("fact_batches row {id}: {e}")),
            }
        }
    }
    Ok((out, corrupt))
}

fn has_table(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1",
        [name],
        |_| Ok(()),
    )
    .optional()
    .map(|r| r.is_some())
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use jiff::Timestamp;

    use super::super::{Store, Writes};
    use super::*;
    use crate::engine::{Fact, Obligation, State};
    use crate::event::{Evidence, parse_line};

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn ob(rule: &str, key: &str, due: &str) -> Obligation {
        Obligation {
            rule: rule.into(),
            key: key.into(),
            subject: format!("主题 {key}"),
            started: ts("2026-03-02T01:00:00Z"),
            due: ts(due),
            wake: ts(due),
            evidence: vec![Evidence {
                path: Arc::from(Path::new("/var/log/a.jsonl")),
                line: 7,
            }],
            fired: false,
        }
    }

    fn fact(at: &str, thread: &str) -> Fact {
        let line = format!(
            r#"{{"ts":"{at}","type":"message.received","thread":"{thread}","account":"ks","channel":"dm","complexity":"general","text":"问"}}"#
        );
        let evidence = Evidence {
            path: Arc::from(Path::new("/var/log/a.jsonl")),
            line: 1,
        };
        Fact::of(&parse_line(&line, evidence).unwrap())
    }

    /// Every obligation the store holds in memory, sorted.
    fn memory(s: &Store) -> Vec<Obligation> {
        let mut v: Vec<Obligation> = s.mem.all_obligations().cloned().collect();
        v.sort_by(|a, b| (&a.rule, &a.key).cmp(&(&b.rule, &b.key)));
        v
    }

    fn rows(s: &Store, table: &str) -> i64 {
        s.conn()
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }

    const NOW: &str = "2026-03-02T02:00:00Z";

    #[test]
    fn obligations_come_back_from_the_journal_and_from_a_fold() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("j.db");
        let mut s = Store::open(&db).unwrap();
        s.put_obligation(ob("r1", "a", "2026-03-02T03:00:00Z"));
        s.put_obligation(ob("r1", "b", "2026-03-02T04:00:00Z"));
        s.commit(Writes::default(), ts(NOW)).unwrap();
        s.remove_obligation("r1", "a");
        let mut b = ob("r1", "b", "2026-03-02T05:00:00Z");
        b.fired = true;
        s.put_obligation(b);
        s.put_obligation(ob("r2", "c", "2026-03-03T00:00:00Z"));
        // Opened and discharged between two commits: never written.
        s.put_obligation(ob("r2", "gone", "2026-03-03T00:00:00Z"));
        s.remove_obligation("r2", "gone");
        s.commit(Writes::default(), ts(NOW)).unwrap();
        let want = memory(&s);
        assert_eq!(want.len(), 2);
        assert_eq!(
            (rows(&s, "obligations"), rows(&s, "obligation_log")),
            (0, 2)
        );
        let (read, entries, corrupt) = obligations(s.conn()).unwrap();
        assert_eq!((read.len(), entries, corrupt.len()), (2, 5, 0));
        drop(s);
        let mut s = Store::open(&db).unwrap();
        assert_eq!(memory(&s), want, "the journal read back");
        assert_eq!(s.journal_entries, 5);

        // Folded once the journal holds FOLD_RATIO × 3 open entries (and
        // `fold_at`): the open obligations become the base, the journal
        // empties.
        s.fold_at = 6;
        s.put_obligation(ob("r3", "d", "2026-03-04T00:00:00Z"));
        s.commit(Writes::default(), ts(NOW)).unwrap();
        for i in 0..6 {
            assert_eq!(rows(&s, "obligations"), 0, "folded too soon ({i})");
            let mut b = ob("r1", "b", "2026-03-02T05:00:00Z");
            b.wake = ts("2026-03-02T06:00:00Z") + jiff::SignedDuration::from_mins(i);
            s.put_obligation(b);
            s.commit(Writes::default(), ts(NOW)).unwrap();
        }
        let want = memory(&s);
        assert_eq!(
            (rows(&s, "obligations"), rows(&s, "obligation_log")),
            (3, 0)
        );
        assert_eq!(s.journal_entries, 0);
        // And journalled on top of the base again: a base row discharged.
        s.remove_obligation("r3", "d");
        s.commit(Writes::default(), ts(NOW)).unwrap();
        let after = memory(&s);
        assert_eq!(after.len(), 2);
        drop(s);
        let s = Store::open(&db).unwrap();
        assert_eq!(memory(&s), after);
        assert_ne!(want, after);
    }

    #[test]
    fn a_fold_is_not_done_for_fewer_entries_than_open_obligations_justify() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("j.db")).unwrap();
        s.fold_at = 1;
        for i in 0..10 {
            s.put_obligation(ob("r", &i.to_string(), "2026-03-05T00:00:00Z"));
        }
        // 10 entries, 10 open: a fold would rewrite all of them.
        s.commit(Writes::default(), ts(NOW)).unwrap();
        assert_eq!(
            (rows(&s, "obligations"), rows(&s, "obligation_log")),
            (0, 1)
        );
        for round in 0..3 {
            for i in 0..10 {
                let mut o = ob("r", &i.to_string(), "2026-03-05T00:00:00Z");
                o.wake = ts("2026-03-06T00:00:00Z") + jiff::SignedDuration::from_hours(round);
                s.put_obligation(o);
            }
            s.commit(Writes::default(), ts(NOW)).unwrap();
        }
        // 40 entries ≥ 4 × 10 open: folded.
        assert_eq!(
            (rows(&s, "obligations"), rows(&s, "obligation_log")),
            (10, 0)
        );
    }

    #[test]
    fn rows_written_before_the_journal_are_read_first_and_changed_by_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("j.db");
        let mut s = Store::open(&db).unwrap();
        s.put_obligation(ob("r", "old", "2026-03-05T00:00:00Z"));
        s.put_obligation(ob("r", "kept", "2026-03-05T00:00:00Z"));
        s.add_fact("p", "k", fact("2026-03-01T00:00:00Z", "t1"));
        s.commit(Writes::default(), ts(NOW)).unwrap();
        // As a v9 database held them: rows of `obligations` and `facts`.
        let (read, _, _) = obligations(s.conn()).unwrap();
        s.conn()
            .execute_batch("DELETE FROM obligation_log; DELETE FROM fact_batches;")
            .unwrap();
        for (rule, key, wake, o) in &read {
            s.conn()
                .execute(
                    "INSERT INTO obligations (rule, key, wake, data) VALUES (?1, ?2, ?3, ?4)",
                    rusqlite::params![
                        rule,
                        key,
                        wake,
                        super::super::rows::obligation_json(o.as_ref().unwrap())
                    ],
                )
                .unwrap();
        }
        let fact_data = r#"{"kind":"message.received","ts":"2026-03-01T00:00:00Z","fields":{"ts":"2026-03-01T00:00:00Z","type":"message.received","thread":"t1","account":"ks","channel":"dm","complexity":"general","text":"问"},"evidence":{"path":"/var/log/a.jsonl","line":1}}"#;
        s.conn()
            .execute(
                "INSERT INTO facts (rule, key, ts, data) VALUES ('p', 'k', ?1, ?2)",
                rusqlite::params![ts("2026-03-01T00:00:00Z").as_millisecond(), fact_data],
            )
            .unwrap();
        drop(s);
        let mut s = Store::open(&db).unwrap();
        assert_eq!(memory(&s).len(), 2);
        assert_eq!(s.facts("p", "k").len(), 1);
        // A base row discharged through the journal; a fact added after.
        s.remove_obligation("r", "old");
        s.add_fact("p", "k", fact("2026-03-02T00:00:00Z", "t2"));
        s.commit(Writes::default(), ts(NOW)).unwrap();
        drop(s);
        let s = Store::open(&db).unwrap();
        let keys: Vec<String> = memory(&s).into_iter().map(|o| o.key).collect();
        assert_eq!(keys, ["kept"]);
        let facts = s.facts("p", "k");
        assert_eq!(facts.len(), 2, "the old row first, then the batch");
        assert!(facts[0].ts < facts[1].ts);
    }

    #[test]
    fn fact_batches_are_pruned_once_their_newest_fact_is_past_the_retention() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("j.db");
        let mut s = Store::open(&db).unwrap();
        s.add_fact("p", "k", fact("2026-01-01T00:00:00Z", "t1"));
        s.add_fact("p", "k", fact("2026-01-02T00:00:00Z", "t2"));
        s.commit(Writes::default(), ts("2026-01-03T00:00:00Z"))
            .unwrap();
        s.add_fact("p", "k", fact("2026-03-01T00:00:00Z", "t3"));
        s.commit(Writes::default(), ts("2026-03-02T00:00:00Z"))
            .unwrap();
        assert_eq!(rows(&s, "fact_batches"), 2);
        // 90 days after 2 January, not yet after 1 March.
        s.commit(Writes::default(), ts("2026-04-05T00:00:00Z"))
            .unwrap();
        assert_eq!(rows(&s, "fact_batches"), 1);
        drop(s);
        let s = Store::open(&db).unwrap();
        assert_eq!(s.facts("p", "k").len(), 1);
    }

    #[test]
    fn entries_decode_as_written() {
        let mut w = Writer::default();
        let put = Entry::Put {
            rule: "reply-general-1h",
            key: "th-1",
            wake: -5,
            data: "{\"subject\":\"问\"}".as_bytes(),
        };
        let del = Entry::Del { rule: "r", key: "" };
        let fact = Entry::Fact {
            rule: "publish",
            key: "p-1",
            data: b"",
        };
        for e in [&put, &del, &fact] {
            w.push(e);
        }
        assert_eq!(w.len(), 3);
        let got: Vec<_> = decode(w.blob()).into_iter().map(Result::unwrap).collect();
        assert_eq!(got, vec![put, del, fact]);
    }

    #[test]
    fn a_cut_blob_keeps_what_is_whole_and_says_so() {
        let mut w = Writer::default();
        w.push(&Entry::Del {
            rule: "a",
            key: "b",
        });
        w.push(&Entry::Del {
            rule: "c",
            key: "d",
        });
        let blob = &w.blob()[..w.blob().len() - 1];
        let got = decode(blob);
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0],
            Ok(Entry::Del {
                rule: "a",
                key: "b"
            })
        );
        assert!(got[1].as_ref().unwrap_err().contains("after 1 entries"));
        // An unknown tag is corrupt too, not skipped silently.
        assert!(decode(&[b'X', 0, 0, 0, 0, 0, 0, 0, 0])[0].is_err());
    }
}
