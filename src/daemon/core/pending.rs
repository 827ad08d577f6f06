//! Log batches whose events are all still held are not written down.
//!
//! A live event waits in the reorder window for the allowed lateness, so
//! storing each input's held events (held.rs) and deleting them again on
//! release was most of what the database wrote while a log was ingested
//! (71 % of the WAL's pages). The log itself already holds those lines: a
//! batch whose events are all held leaves its log's cursor where it was,
//! and a crash reads the batch again. The invariant, after every commit and
//! for every log: each line before its committed cursor was evaluated (its
//! effects committed) or is stored in a held batch; each line after it is
//! held in memory only, or not read yet — so none was evaluated.
//!
//! So the cursor must move past a batch in the same commit that evaluates
//! one of its events. Then the batch's events still held, and those of the
//! log's earlier batches, are stored as held batches are (held.rs): what is
//! released later is told from what is still held by the committed horizon.
//! The same happens when a batch has something else to commit (a malformed
//! line's error), when the window is rewritten after the clock went back,
//! when a batch comes from another file than the ones waiting (a rotation:
//! by a restart the old file may be compressed or gone), for a log's first
//! batch (without a committed cursor a restart starts at the live file),
//! and when the daemon stops — so a log rotated away or deleted while the
//! daemon is down loses nothing; only a crash relies on reading the log
//! again, and only from the file the cursor names. After a restart the
//! window releases nothing until the logs are read again (logs.rs), so a
//! stored event is not judged before an earlier one read again.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::*;

/// A batch of lines read from a log whose cursor is not committed yet.
#[derive(Debug)]
pub(super) struct PendingBatch {
    cursor: String,
    /// The file and offset its cursor names (device, inode, offset).
    at: Option<(u64, u64, u64)>,
    /// Lines it read (counted for the source when its cursor is committed).
    lines: u64,
    /// Its events' ids, first and last; `None`: it has none.
    ids: Option<(u64, u64)>,
    /// Its events as read, in held.rs's format: stored if it must be.
    blob: Arc<Vec<u8>>,
    /// Its events' times, by id from the first: which are still held.
    stamps: Vec<Timestamp>,
    /// Its events still in the window.
    held: usize,
}

/// The batches waiting, per log in reading order.
#[derive(Debug, Default)]
pub(super) struct Pending {
    logs: HashMap<String, BTreeMap<u64, PendingBatch>>,
    /// First event id → (last event id, log, sequence number).
    ids: BTreeMap<u64, (u64, String, u64)>,
    /// Per log, the last batch whose cursor the input being evaluated must
    /// commit.
    cut: HashMap<String, u64>,
    next: u64,
    /// Taken by the input being committed: waiting again if it fails.
    settling: Vec<(String, u64, PendingBatch)>,
    /// Logs with a committed cursor.
    cursored: HashSet<String>,
    /// Blobs of settled batches, for the next batches to write into: a
    /// fresh megabyte per batch was page faults on every write and a
    /// purge on every free (the allocator returns freed memory at once).
    spare: Vec<Vec<u8>>,
}

/// Blobs kept for reuse while logs are read (given back when idle).
const SPARE: usize = 2;

/// The file and offset a tailer's cursor names; `None` for a cursor that
/// names none (or is not a tailer's, as in tests).
fn file_at(cursor: &str) -> Option<(u64, u64, u64)> {
    #[derive(serde::Deserialize)]
    struct At {
        #[serde(default)]
        dev: u64,
        #[serde(default)]
        ino: u64,
        #[serde(default)]
        offset: u64,
    }
    let a: At = serde_json::from_str(cursor).ok()?;
    (a.dev != 0 || a.ino != 0).then_some((a.dev, a.ino, a.offset))
}

impl Pending {
    /// Knowing the logs that have a committed cursor.
    pub(super) fn with_cursors(keys: impl IntoIterator<Item = String>) -> Pending {
        Pending {
            cursored: keys.into_iter().collect(),
            ..Pending::default()
        }
    }

    /// Whether `b` was read from another file than the log's batches
    /// waiting before it (rotated, or truncated: copytruncate), or the log
    /// has no committed cursor yet. Then those lines must not depend on the
    /// log being found again: a restart looks for the file the committed
    /// cursor names (a rotated one may be compressed or gone by then), and
    /// without one it starts at the live file.
    fn moved(&self, key: &str, b: &PendingBatch) -> bool {
        if !self.cursored.contains(key) {
            return true;
        }
        let last = self
            .logs
            .get(key)
            .and_then(|l| l.last_key_value())
            .and_then(|(_, w)| w.at);
        match (last, b.at) {
            (Some((d0, i0, o0)), Some((d1, i1, o1))) => (d0, i0) != (d1, i1) || o1 < o0,
            _ => false,
        }
    }

    fn add(&mut self, key: &str, b: PendingBatch, settle: bool) -> u64 {
        let seq = self.next;
        self.next += 1;
        if let Some((first, last)) = b.ids {
            self.ids.insert(first, (last, key.to_string(), seq));
        }
        if settle {
            self.cut.insert(key.to_string(), seq);
        }
        self.logs.entry(key.to_string()).or_default().insert(seq, b);
        seq
    }

    /// The event `id` left the window: its batch's cursor must be committed.
    fn release(&mut self, id: u64) {
        let Some((_, (last, key, seq))) = self.ids.range(..=id).next_back() else {
            return;
        };
        if id > *last {
            return;
        }
        if let Some(b) = self.logs.get_mut(key).and_then(|l| l.get_mut(seq)) {
            b.held = b.held.saturating_sub(1);
        }
        let cut = self.cut.entry(key.clone()).or_insert(*seq);
        *cut = (*cut).max(*seq);
    }

    /// Every waiting batch must be committed by this input.
    fn cut_all(&mut self) {
        for (key, batches) in &self.logs {
            if let Some((&seq, _)) = batches.last_key_value() {
                self.cut.insert(key.clone(), seq);
            }
        }
    }

    /// Moves the batches up to each log's cut into `settling`; returns
    /// where they start there.
    fn take_cut(&mut self) -> usize {
        let from = self.settling.len();
        for (key, cut) in std::mem::take(&mut self.cut) {
            let Some(batches) = self.logs.get_mut(&key) else {
                continue;
            };
            let rest = batches.split_off(&(cut + 1));
            let done = std::mem::replace(batches, rest);
            if batches.is_empty() {
                self.logs.remove(&key);
            }
            for (seq, b) in done {
                if let Some((first, _)) = b.ids {
                    self.ids.remove(&first);
                }
                self.settling.push((key.clone(), seq, b));
            }
        }
        self.settling[from..].sort_by_key(|(_, seq, _)| *seq);
        from
    }

    /// A commit failed: what it took waits again, except the batch `drop`
    /// (the input's own, which is read again when the input is retried).
    fn unsettle(&mut self, drop: Option<u64>) {
        for (key, seq, b) in std::mem::take(&mut self.settling) {
            if Some(seq) != drop {
                if let Some((first, last)) = b.ids {
                    self.ids.insert(first, (last, key.clone(), seq));
                }
                self.logs.entry(key).or_default().insert(seq, b);
            }
        }
        self.cut.clear();
        if let Some(seq) = drop {
            for (key, batches) in &mut self.logs {
                if let Some(b) = batches.remove(&seq) {
                    if let Some((first, _)) = b.ids {
                        self.ids.remove(&first);
                    }
                    let key = key.clone();
                    if batches.is_empty() {
                        self.logs.remove(&key);
                    }
                    break;
                }
            }
        }
    }
}

fn ids_len(events: &Option<(u64, u64, Vec<u8>)>) -> usize {
    events
        .as_ref()
        .map_or(0, |(first, last, _)| (last - first + 1) as usize)
}

/// The entries of `blob` whose events `window` still holds.
fn still_held(blob: &[u8], first: u64, stamps: &[Timestamp], window: &ReorderWindow) -> Vec<u8> {
    let mut out = BatchWriter::default();
    for h in held::decode(blob).into_iter().flatten() {
        let held = usize::try_from(h.id - first)
            .ok()
            .and_then(|i| stamps.get(i))
            .is_some_and(|&ts| window.contains(ts, h.id));
        if held {
            out.push(h.id, &Arc::from(h.file), h.line, h.text);
        }
    }
    out.finish().map(|(_, blob, _)| blob).unwrap_or_default()
}

impl Core {
    /// Held events whose lines are past their log's committed cursor (not
    /// stored).
    pub fn held_unstored(&self) -> usize {
        self.pending
            .logs
            .values()
            .flat_map(|l| l.values())
            .map(|b| b.held)
            .sum()
    }

    /// A batch just read, its events pushed to the window as `ids`; `blob`
    /// holds them as read. `settle`: its cursor must be committed by this
    /// input whatever the window does.
    pub(super) fn pend(
        &mut self,
        key: &str,
        cursor: &str,
        lines: u64,
        events: Option<(u64, u64, Vec<u8>)>,
        stamps: Vec<Timestamp>,
        settle: bool,
    ) -> u64 {
        debug_assert_eq!(
            ids_len(&events),
            stamps.len(),
            "a batch's events have consecutive ids"
        );
        let (ids, blob) = match events {
            Some((first, last, blob)) => (Some((first, last)), blob),
            None => (None, Vec::new()),
        };
        let held = stamps.len();
        let b = PendingBatch {
            at: file_at(cursor),
            cursor: cursor.to_string(),
            lines,
            ids,
            blob: Arc::new(blob),
            held,
            stamps,
        };
        let moved = self.pending.moved(key, &b);
        self.pending.add(key, b, settle || held == 0 || moved)
    }

    /// Whether the batch `seq` read from `key` still waits.
    pub(super) fn is_waiting(&self, key: &str, seq: u64) -> bool {
        self.pending
            .logs
            .get(key)
            .is_some_and(|l| l.contains_key(&seq))
    }

    pub(super) fn release_pending(&mut self, id: u64) {
        self.pending.release(id);
    }

    /// Adds to `w` the cursors this input must commit, and stores the held
    /// events of their batches (`spill`; not after the window was rewritten
    /// with them).
    pub(super) fn settle(&mut self, w: &mut Writes, all: bool, spill: bool) {
        if all {
            self.pending.cut_all();
        }
        let from = self.pending.take_cut();
        for (key, _, b) in &self.pending.settling[from..] {
            if spill
                && b.held > 0
                && let Some((first, last)) = b.ids
            {
                // Only what is still held: a batch of a busy log is mostly
                // released when its cursor must move.
                let blob = if b.held == b.stamps.len() {
                    b.blob.clone()
                } else {
                    Arc::new(still_held(&b.blob, first, &b.stamps, &self.window))
                };
                w.held_batches.push((first, blob));
                self.batches.add(first, last, b.held);
            }
            match w.cursors.iter_mut().find(|c| c.0 == *key) {
                Some(c) => {
                    c.1.clone_from(&b.cursor);
                    c.2 += b.lines;
                }
                None => w.cursors.push((key.clone(), b.cursor.clone(), b.lines)),
            }
        }
    }

    /// The input's commit succeeded.
    pub(super) fn settled(&mut self) {
        for (key, _, b) in self.pending.settling.drain(..) {
            if !self.pending.cursored.contains(&key) {
                self.pending.cursored.insert(key);
            }
            if self.pending.spare.len() < SPARE
                && let Ok(blob) = Arc::try_unwrap(b.blob)
                && blob.capacity() > 0
            {
                self.pending.spare.push(blob);
            }
        }
    }

    /// A buffer for the next batch's blob.
    pub(super) fn spare_buffer(&mut self) -> Vec<u8> {
        self.pending.spare.pop().unwrap_or_default()
    }

    /// Idle: the buffers kept for the next batches are given back.
    pub fn release_buffers(&mut self) {
        self.pending.spare = Vec::new();
    }

    /// The input's commit failed: the batches it was to settle wait again
    /// (`drop`: the input's own batch, read again by the retry).
    pub(super) fn unsettle(&mut self, drop: Option<u64>) {
        self.pending.unsettle(drop);
    }

    /// After the window was restored from the database: the waiting
    /// batches' events are held again — all of them, as no committed input
    /// evaluated any (ids kept, so their batches still know them).
    pub(super) fn hold_pending_again(&mut self) {
        for b in self.pending.logs.values_mut().flat_map(|l| l.values_mut()) {
            b.held = 0;
            for h in held::decode(&b.blob).into_iter().flatten() {
                let evidence = Evidence {
                    path: Arc::from(h.file),
                    line: h.line,
                };
                if let Ok(ev) = parse_line(h.text, evidence) {
                    self.window.push_with_id(h.id, ev);
                    b.held += 1;
                }
            }
        }
    }

    /// Stores the events of every waiting batch and commits their logs'
    /// cursors: when stopping, so that nothing held depends on the logs
    /// being there at the next start.
    pub fn persist_held(&mut self, now: Timestamp) -> Result<usize, StoreError> {
        if self.pending.logs.is_empty() {
            return Ok(0);
        }
        self.fresh()?;
        let mut w = Writes::default();
        self.settle(&mut w, true, true);
        self.commit(w, now, None)
    }
}
