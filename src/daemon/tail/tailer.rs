//! One followed path: the state machine across rotations.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::lines::{IDLE_READ, LineBuf};
use super::siblings::{self, Opened};
use super::{Batch, Cursor, Fingerprint, TailLimits, TailNote};

/// The file being read.
#[derive(Debug)]
pub(super) struct Source {
    pub(super) f: Opened,
    pub(super) name: Arc<Path>,
    /// Still the file at the followed path.
    pub(super) live: bool,
    /// May still be appended to (a renamed file whose writer has not moved
    /// on); a copytruncate copy never is.
    pub(super) may_grow: bool,
}

/// Where to start reading a file.
#[derive(Debug, Clone, Copy)]
pub(super) struct Start {
    pub(super) offset: u64,
    pub(super) line: u64,
    pub(super) fp: Option<Fingerprint>,
}

impl Start {
    const ZERO: Start = Start {
        offset: 0,
        line: 0,
        fp: None,
    };

    pub(super) fn of(c: &Cursor) -> Start {
        Start {
            offset: c.offset,
            line: c.line,
            fp: c.fingerprint,
        }
    }
}

enum Pumped {
    Budget,
    Eof,
    Restarted,
}

/// Follows one path across rotations. See the module documentation.
#[derive(Debug)]
pub struct Tailer {
    pub(super) path: PathBuf,
    pub(super) live_name: Arc<Path>,
    pub(super) limits: TailLimits,
    /// The cursor given to `new`, until its file is found (or given up on).
    pub(super) saved: Option<Cursor>,
    pub(super) src: Option<Source>,
    /// The new file at the path, once `src` was rotated away.
    pub(super) next: Option<Opened>,
    pub(super) fp: Option<Fingerprint>,
    pub(super) lines: LineBuf,
    pub(super) missing_told: bool,
    pub(super) last_error: Option<String>,
}

impl Tailer {
    pub fn new(path: PathBuf, saved: Option<Cursor>, limits: TailLimits) -> Tailer {
        let limits = TailLimits {
            max_line_bytes: limits.max_line_bytes.max(1),
            // Below a few KiB the syscall count, not the copy, dominates.
            read_buffer: limits.read_buffer.max(4096),
        };
        Tailer {
            live_name: Arc::from(path.as_path()),
            path,
            limits,
            saved: saved.filter(|c| !c.is_unset()),
            src: None,
            next: None,
            fp: None,
            lines: LineBuf::default(),
            missing_told: false,
            last_error: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The position after the last line delivered.
    pub fn cursor(&self) -> Cursor {
        match &self.src {
            Some(s) => Cursor {
                dev: s.f.dev,
                ino: s.f.ino,
                offset: self.lines.offset,
                line: self.lines.line,
                fingerprint: self.fp,
            },
            None => self.saved.clone().unwrap_or_default(),
        }
    }

    /// Capacity of the line buffer, for tests of the memory bound.
    pub fn buffer_capacity(&self) -> usize {
        self.lines.capacity()
    }

    /// Reads what is new, up to about `max_bytes`; never blocks on the
    /// writer (an empty batch when nothing is new).
    pub fn read(&mut self, max_bytes: usize) -> Batch {
        let mut out = Batch {
            lines: Vec::new(),
            notes: Vec::new(),
            cursor: Cursor::default(),
        };
        if self.src.is_none() {
            self.attach(&mut out);
        }
        if self.src.is_some() {
            self.follow(&mut out);
            self.drain(&mut out, max_bytes.max(1));
        }
        out.cursor = self.cursor();
        out
    }

    /// Notices that the live file was renamed away or deleted, and finds
    /// the file that replaced it.
    fn follow(&mut self, out: &mut Batch) {
        let Some(src) = self.src.as_mut() else { return };
        if src.live {
            match std::fs::metadata(&self.path) {
                Ok(m) if src.f.same(m.dev(), m.ino()) => return,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    let msg = format!("cannot stat: {e}");
                    return self.error(out, msg);
                }
            }
            src.live = false;
            if let Some(p) = siblings::find_by_inode(&self.path, src.f.dev, src.f.ino) {
                out.notes.push(TailNote::Rotated {
                    from: self.path.clone(),
                    to: p.clone(),
                });
                src.name = Arc::from(p);
            }
        }
        if self.next.is_some() {
            return;
        }
        match Opened::open_if_exists(&self.path) {
            Ok(Some(o)) if o.same(src.f.dev, src.f.ino) => {
                // Renamed back, or a stale stat.
                src.live = true;
                src.name = self.live_name.clone();
            }
            Ok(Some(o)) => {
                self.next = Some(o);
                self.appeared(out);
            }
            Ok(None) => self.missing(out),
            Err(e) => self.error(out, format!("cannot open: {e}")),
        }
    }

    fn drain(&mut self, out: &mut Batch, max_bytes: usize) {
        let mut budget = max_bytes;
        loop {
            let Some(src) = self.src.as_ref() else { return };
            // Looked at before reading the old file to its end: a writer that
            // reopens writes to the new file only after its last write to
            // the old one, so once the new file has bytes the old is final.
            let moved_on = !src.live
                && (!src.may_grow
                    || self
                        .next
                        .as_ref()
                        .is_some_and(|n| n.size().is_ok_and(|s| s > 0)));
            match self.pump(out, &mut budget) {
                Pumped::Budget => return,
                Pumped::Restarted => {}
                Pumped::Eof => {
                    if !moved_on {
                        return;
                    }
                    let Some(next) = self.next.take() else {
                        return;
                    };
                    if let Some(src) = &self.src {
                        self.lines
                            .finish(&src.name, self.limits.max_line_bytes, &mut out.lines);
                    }
                    self.start_live(next);
                }
            }
        }
    }

    /// Reads and cuts lines until the budget is spent or the file ends.
    ///
    /// The budget counts the bytes of the lines cut (over-long ones too), so
    /// a batch ends where it should even when one read brought more; the
    /// rest stays buffered for the next call. It never ends a batch that is
    /// still empty, which would look like "nothing new" to the caller.
    fn pump(&mut self, out: &mut Batch, budget: &mut usize) -> Pumped {
        let mut at_eof = false;
        // A small first read while the buffer is small (a quiet file's poll),
        // the full read buffer once a read comes back full.
        let mut chunk = if self.lines.capacity() >= self.limits.read_buffer {
            self.limits.read_buffer
        } else {
            IDLE_READ.min(self.limits.read_buffer)
        };
        loop {
            let Some(src) = self.src.as_ref() else {
                return Pumped::Eof;
            };
            // At least 1: an over-long line being passed over must keep being
            // discarded while the batch waits for its first line.
            let cut = self.lines.split(
                &src.name,
                self.limits.max_line_bytes,
                (*budget).max(1),
                &mut out.lines,
            );
            *budget = budget.saturating_sub(cut);
            if *budget == 0 && !out.is_empty() {
                return Pumped::Budget;
            }
            if at_eof {
                self.lines.rest();
                return Pumped::Eof;
            }
            let (n, want, pos) = match self.lines.fill(&src.f.file, chunk) {
                Ok(r) => r,
                Err(e) => {
                    self.error(out, format!("cannot read: {e}"));
                    return Pumped::Eof;
                }
            };
            if src.live {
                match truncated(&src.f, self.fp.as_ref(), pos, n) {
                    Ok(false) => {}
                    Ok(true) => {
                        // What was just read may be the new content past our
                        // offset: drop it and take the rest from the copy.
                        self.lines.unfill(n);
                        self.on_truncated(out);
                        return Pumped::Restarted;
                    }
                    Err(e) => {
                        self.lines.unfill(n);
                        self.error(out, format!("cannot stat: {e}"));
                        return Pumped::Eof;
                    }
                }
            }
            if self.fp.is_none() && n > 0 {
                self.fp = Fingerprint::of_file(&src.f.file).ok().flatten();
            }
            if n > 0 {
                self.last_error = None;
            }
            // A short read is the end of the file for now: saves the syscall
            // that would return 0.
            at_eof = n < want;
            chunk = self.limits.read_buffer;
        }
    }

    fn on_truncated(&mut self, out: &mut Batch) {
        let Some(src) = self.src.take() else { return };
        out.notes.push(TailNote::Truncated {
            path: self.path.clone(),
            at: self.lines.offset,
        });
        let at = Start {
            offset: self.lines.offset,
            line: self.lines.line,
            fp: self.fp,
        };
        self.recover_copy(src.f, at, out);
    }

    pub(super) fn start_live(&mut self, o: Opened) {
        self.start(o, self.live_name.clone(), true, true, Start::ZERO);
    }

    pub(super) fn start(
        &mut self,
        f: Opened,
        name: Arc<Path>,
        live: bool,
        may_grow: bool,
        at: Start,
    ) {
        self.src = Some(Source {
            f,
            name,
            live,
            may_grow,
        });
        self.fp = at.fp;
        self.lines.reset(at.offset, at.line);
    }

    pub(super) fn missing(&mut self, out: &mut Batch) {
        if !self.missing_told {
            self.missing_told = true;
            out.notes.push(TailNote::Missing(self.path.clone()));
        }
    }

    pub(super) fn appeared(&mut self, out: &mut Batch) {
        if self.missing_told {
            self.missing_told = false;
            out.notes.push(TailNote::Appeared(self.path.clone()));
        }
    }

    /// Reports an I/O problem once until it changes or reading succeeds.
    pub(super) fn error(&mut self, out: &mut Batch, message: String) {
        if self.last_error.as_deref() != Some(&message) {
            out.notes.push(TailNote::Error {
                path: self.path.clone(),
                message: message.clone(),
            });
            self.last_error = Some(message);
        }
    }
}

/// Whether the live file lost bytes we had read (`pos` + `n`), or starts
/// with another first line than the one we fingerprinted.
fn truncated(f: &Opened, fp: Option<&Fingerprint>, pos: u64, n: usize) -> io::Result<bool> {
    if f.size()? < pos + n as u64 {
        return Ok(true);
    }
    match fp {
        Some(fp) if n > 0 => Ok(!fp.matches(&f.file)?),
        _ => Ok(false),
    }
}
