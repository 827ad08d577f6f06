//! Persistence of the reorder window: the events that were read but not
//! yet evaluated, so that a restart evaluates them exactly once.
//!
//! A live event is held for the allowed lateness (minutes), so it is always
//! held across inputs; writing one row per event and deleting it again on
//! release cost more than evaluating the event. Instead the events of one
//! input that are still held after it are written as ONE row (a batch: their
//! raw lines, as read), and the row is deleted when its last event has been
//! released.
//!
//! Which events of a batch were already released is not written down: the
//! window releases events in timestamp order up to a horizon that never
//! goes back, and the horizon is committed with every input, so after any
//! commit the window holds exactly the stored events later than it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use jiff::Timestamp;
use rusqlite::{OptionalExtension, params};

use super::frame;
use super::store::{Store, StoreError};
use crate::event::{Evidence, parse_line};
use crate::window::ReorderWindow;

/// One held event as stored: its id, where it was read, and the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldLine<'a> {
    pub id: u64,
    pub file: &'a Path,
    pub line: u32,
    pub text: &'a str,
}

/// Appends events to a batch's blob: per event the id and line number,
/// the file (or a marker meaning "the previous event's file"), and the text.
#[derive(Debug, Default)]
pub struct BatchWriter {
    buf: Vec<u8>,
    last_file: Option<Arc<Path>>,
    first: Option<u64>,
    count: usize,
}

const SAME_FILE: u32 = u32::MAX;

impl BatchWriter {
    /// A writer for about `bytes` of lines (a batch of 1 MB read must not
    /// be copied over and over while its blob grows).
    pub fn with_capacity(bytes: usize) -> BatchWriter {
        BatchWriter::with_buffer(Vec::new(), bytes)
    }

    /// As [`BatchWriter::with_capacity`], writing into `buf` (emptied): a
    /// buffer used before has its pages already (pending.rs recycles them).
    pub fn with_buffer(mut buf: Vec<u8>, bytes: usize) -> BatchWriter {
        buf.clear();
        buf.reserve(bytes);
        BatchWriter {
            buf,
            ..BatchWriter::default()
        }
    }

    pub fn push(&mut self, id: u64, file: &Arc<Path>, line: u32, text: &str) {
        self.first.get_or_insert(id);
        self.count += 1;
        self.buf.extend_from_slice(&id.to_le_bytes());
        self.buf.extend_from_slice(&line.to_le_bytes());
        if self.last_file.as_ref() == Some(file) {
            frame::put_u32(&mut self.buf, SAME_FILE);
        } else {
            frame::put_path(&mut self.buf, file);
            self.last_file = Some(file.clone());
        }
        frame::put_str(&mut self.buf, text);
    }

    /// The batch's row id (its first event's id), its blob and event count.
    pub fn finish(self) -> Option<(u64, Vec<u8>, usize)> {
        Some((self.first?, self.buf, self.count))
    }
}

/// The events of a blob, in the order written; an error where it is cut
/// short or corrupt (the rest of the blob is then ignored).
pub fn decode(blob: &[u8]) -> Vec<Result<HeldLine<'_>, String>> {
    use std::os::unix::ffi::OsStrExt;
    let mut file: Option<&Path> = None;
    frame::records(blob, ("a held batch", "events"), |r| {
        let id = r.u64()?;
        let line = r.u32()?;
        let plen = r.u32()?;
        if plen != SAME_FILE {
            file = Some(Path::new(std::ffi::OsStr::from_bytes(r.bytes_of(plen)?)));
        }
        let text = r.str()?;
        Some(HeldLine {
            id,
            file: file?,
            line,
            text,
        })
    })
}

/// The window as restored from the database, and what it needs to go on.
#[derive(Debug)]
pub struct Restored {
    pub window: ReorderWindow,
    pub batches: Batches,
    pub horizon: Option<Timestamp>,
    /// Batches whose every event was released (or no longer parses): to be
    /// deleted by the next commit.
    pub drained: Vec<u64>,
}

/// Stored batches by first id: (last id, events of it still held).
#[derive(Debug, Default)]
pub struct Batches(BTreeMap<u64, (u64, usize)>);

impl Batches {
    pub fn add(&mut self, first: u64, last: u64, held: usize) {
        self.0.insert(first, (last, held));
    }

    /// An event left the window: returns its batch's id if that was the
    /// batch's last held event.
    pub fn release(&mut self, id: u64) -> Option<u64> {
        let (&first, entry) = self.0.range_mut(..=id).next_back()?;
        if id > entry.0 {
            return None;
        }
        entry.1 = entry.1.saturating_sub(1);
        if entry.1 == 0 {
            self.0.remove(&first);
            return Some(first);
        }
        None
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Forgets every batch; returns their ids (rows to delete).
    pub fn clear(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.0).into_keys().collect()
    }
}

/// Every event the window holds, as one batch: (first id, last id, blob,
/// count). Stored in place of all earlier batches when the horizon had to
/// go back (core.rs), so that what is stored past the new horizon is again
/// exactly what is held. Lines are written back from the parsed fields.
pub fn rewrite(window: &ReorderWindow) -> Option<(u64, u64, Vec<u8>, usize)> {
    let mut held: Vec<(u64, &crate::event::Event)> = window.ids().collect();
    // By id: a batch is found by its id range (`Batches::release`).
    held.sort_unstable_by_key(|(id, _)| *id);
    let last = held.last()?.0;
    let mut batch = BatchWriter::default();
    for (id, ev) in held {
        let text = serde_json::to_string(&ev.fields).unwrap_or_default();
        batch.push(id, &ev.evidence.path, ev.evidence.line, &text);
    }
    let (first, blob, count) = batch.finish()?;
    Some((first, last, blob, count))
}

impl Store {
    /// Rebuilds the reorder window from the stored batches.
    pub fn restore_window(&mut self) -> Result<Restored, StoreError> {
        self.convert_held_rows()?;
        self.load_window()
    }

    fn load_window(&self) -> Result<Restored, StoreError> {
        let horizon = self.held_horizon()?;
        let rows: Vec<(i64, Vec<u8>)> = {
            let mut st = self
                .conn()
                .prepare("SELECT id, data FROM held_batches ORDER BY id")
                .map_err(self.sq())?;
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|rows| rows.collect())
                .map_err(self.sq())?
        };
        let mut max_id = 0;
        let mut events = Vec::new();
        let mut batches = Batches::default();
        let mut drained = Vec::new();
        for (first, blob) in &rows {
            let first = *first as u64;
            let mut held = 0;
            let mut last = first;
            for h in decode(blob) {
                let h = match h {
                    Ok(h) => h,
                    Err(e) => {
                        tracing::warn!("{}: {e}; the rest of it is lost", self.path().display());
                        break;
                    }
                };
                max_id = max_id.max(h.id);
                last = last.max(h.id);
                let evidence = Evidence {
                    path: Arc::from(h.file),
                    line: h.line,
                };
                match parse_line(h.text, evidence.clone()) {
                    Ok(ev) if horizon.is_none_or(|t| ev.ts > t) => {
                        held += 1;
                        events.push((h.id, ev));
                    }
                    Ok(_) => {}
                    // Say an upgrade made an event type unknown.
                    Err(e) => tracing::warn!("held event {evidence}: {e}; not evaluated"),
                }
            }
            if held == 0 {
                drained.push(first);
            } else {
                batches.add(first, last, held);
            }
            max_id = max_id.max(first);
        }
        // New ids start past every stored one, parsed or not.
        let mut window = ReorderWindow::starting_at(max_id + 1);
        for (id, ev) in events {
            window.push_with_id(id, ev);
        }
        Ok(Restored {
            window,
            batches,
            horizon,
            drained,
        })
    }

    fn held_horizon(&self) -> Result<Option<Timestamp>, StoreError> {
        let v: Option<String> = self
            .conn()
            .query_row("SELECT v FROM meta WHERE k = 'held_horizon'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(self.sq())?;
        Ok(v.and_then(|v| v.parse().ok()))
    }

    /// Databases of schema ≤ 4 held one row per event: they become one
    /// batch (their horizon was never stored, so all of them are held).
    fn convert_held_rows(&mut self) -> Result<(), StoreError> {
        let rows: Vec<(i64, String, u32, String)> = {
            let mut st = self
                .conn()
                .prepare("SELECT id, file, line, event FROM held_events ORDER BY id")
                .map_err(self.sq())?;
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .and_then(|rows| rows.collect())
                .map_err(self.sq())?
        };
        if rows.is_empty() {
            return Ok(());
        }
        let mut b = BatchWriter::default();
        for (id, file, line, event) in &rows {
            b.push(*id as u64, &Arc::from(Path::new(file)), *line, event);
        }
        let Some((first, blob, _)) = b.finish() else {
            return Ok(());
        };
        let path = self.path().to_path_buf();
        let sq = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn_mut().transaction().map_err(sq)?;
        tx.execute(
            "INSERT INTO held_batches (id, data) VALUES (?1, ?2)",
            params![first as i64, blob],
        )
        .map_err(sq)?;
        tx.execute("DELETE FROM held_events", []).map_err(sq)?;
        // An older version never stored a horizon; should batches of this
        // version exist too, theirs must stay (dropping it would release
        // their events again).
        tx.execute(
            "DELETE FROM meta WHERE k = 'held_horizon'
             AND (SELECT COUNT(*) FROM held_batches) = 1",
            [],
        )
        .map_err(sq)?;
        tx.commit().map_err(sq)
    }

    /// Events on disk that a restart would hold.
    pub fn held_count(&self) -> Result<usize, StoreError> {
        let legacy: i64 = self
            .conn()
            .query_row("SELECT COUNT(*) FROM held_events", [], |r| r.get(0))
            .map_err(self.sq())?;
        Ok(self.load_window()?.window.len() + legacy as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_decodes_as_written() {
        let a: Arc<Path> = Arc::from(Path::new("/var/log/a.jsonl"));
        let b: Arc<Path> = Arc::from(Path::new("/var/log/a.jsonl.1"));
        let mut w = BatchWriter::default();
        w.push(7, &a, 1, r#"{"ts":"x"}"#);
        w.push(8, &a, 2, "");
        w.push(9, &b, 3, "第三行\t含制表符");
        let (first, blob, n) = w.finish().unwrap();
        assert_eq!((first, n), (7, 3));
        let got: Vec<_> = decode(&blob).into_iter().map(Result::unwrap).collect();
        assert_eq!(got[0].file, Path::new("/var/log/a.jsonl"));
        assert_eq!(got[1].file, Path::new("/var/log/a.jsonl"));
        assert_eq!((got[1].id, got[1].line, got[1].text), (8, 2, ""));
        assert_eq!(got[2].file, Path::new("/var/log/a.jsonl.1"));
        assert_eq!(got[2].text, "第三行\t含制表符");
    }

    #[test]
    fn a_cut_blob_keeps_what_is_whole_and_says_so() {
        let a: Arc<Path> = Arc::from(Path::new("a"));
        let mut w = BatchWriter::default();
        w.push(1, &a, 1, "one");
        w.push(2, &a, 2, "two");
        let (_, blob, _) = w.finish().unwrap();
        let got = decode(&blob[..blob.len() - 1]);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].as_ref().unwrap().text, "one");
        assert!(got[1].is_err());
    }

    #[test]
    fn a_batch_is_drained_by_its_last_event() {
        let mut b = Batches::default();
        b.add(1, 5, 2);
        b.add(10, 12, 1);
        assert_eq!(b.release(3), None);
        assert_eq!(
            b.release(7),
            None,
            "between batches: released in its own input"
        );
        assert_eq!(b.release(11), Some(10));
        assert_eq!(b.release(5), Some(1));
        assert!(b.is_empty());
    }
}
