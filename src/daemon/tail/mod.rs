//! Following activity logs: JSON lines appended by other programs and
//! rotated by logrotate. The tailer only cuts lines and says where each came
//! from (file and line number); the core parses them.
//!
//! # Guarantees
//!
//! A [`Batch`] carries the lines read and the [`Cursor`] after them; the
//! caller commits that cursor in the same transaction as the effects of the
//! lines, and a tailer created from a committed cursor delivers exactly the
//! lines after it — none twice, none skipped — also when the log was rotated
//! while the daemon was down: the file the cursor names is found again among
//! the siblings of the path by inode or by [`Fingerprint`] (its first line),
//! finished from the saved offset, and then the live file is read from 0.
//!
//! * A line is delivered once its newline is there. The last line of a file
//!   that was rotated away is delivered without one, once the writer has
//!   moved to the new file (the new file is not empty) or when the file is
//!   a copytruncate copy, which never grows.
//! * Rotation by rename (logrotate `create`) shows as a new inode at the
//!   path: the old file is read to its end through the open descriptor
//!   (wherever it was renamed to, even if deleted), then the new one.
//! * Rotation by copytruncate shows as the same inode getting shorter than
//!   what was read, or starting with another first line. The rest of the old
//!   content is read from the copy (the sibling with the same first line).
//! * Over-long lines (above [`TailLimits::max_line_bytes`]) and lines that
//!   are not UTF-8 become error items with their file and line number; an
//!   over-long line is passed over without being kept in memory.
//! * `\r` before `\n` and a UTF-8 BOM at the start of a file are stripped.
//!
//! # What can still be lost
//!
//! * copytruncate: lines appended after logrotate copied the file and
//!   before it truncated it exist in no file — no reader can recover them.
//!   Lines the tailer had not read yet when the file was truncated are
//!   recovered from the copy only while the copy is uncompressed and beside
//!   the log; when it was compressed (`compress` without `delaycompress`) or
//!   removed already, they are reported as [`TailNote::Lost`].
//! * Two rotations between two reads (or while the daemon is down) skip the
//!   generation in the middle: only the file the cursor names and the live
//!   file are read.
//! * Rotated generations are looked for only in the directory of the path
//!   (not logrotate's `olddir`).

mod cursor;
mod lines;
mod logset;
mod siblings;
#[cfg(test)]
mod tests;

use std::fmt;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use cursor::{Cursor, Fingerprint};
pub use logset::LogSet;

use lines::LineBuf;
use siblings::Opened;

/// Memory bounds of a tailer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TailLimits {
    /// Longer lines are reported and skipped (newline not counted).
    pub max_line_bytes: usize,
    /// Bytes asked of the kernel per read.
    pub read_buffer: usize,
}

impl Default for TailLimits {
    fn default() -> Self {
        TailLimits {
            max_line_bytes: 1 << 20,
            read_buffer: 256 << 10,
        }
    }
}

/// What one [`Tailer::read`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub lines: Vec<TailLine>,
    pub notes: Vec<TailNote>,
    /// The cursor after these lines — what the caller commits with them.
    pub cursor: Cursor,
}

impl Batch {
    /// No line and no note (the cursor may still have moved, e.g. from a
    /// drained rotated file to the start of the live one).
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty() && self.notes.is_empty()
    }
}

/// One line of a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailLine {
    /// The file the line was read from: the live path, or the rotated file
    /// holding it now.
    pub file: Arc<Path>,
    /// 1-based, in `file`.
    pub line: u64,
    /// The text without its line end, or why there is none.
    pub text: Result<String, String>,
}

/// Something about a followed path worth a log line or `complyd status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TailNote {
    Missing(PathBuf),
    Appeared(PathBuf),
    Rotated { from: PathBuf, to: PathBuf },
    Truncated { path: PathBuf, at: u64 },
    Lost { path: PathBuf, reason: String },
    Error { path: PathBuf, message: String },
}

impl fmt::Display for TailNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TailNote::Missing(p) => write!(f, "{}: missing; waiting for it to appear", p.display()),
            TailNote::Appeared(p) => write!(f, "{}: appeared; following it", p.display()),
            TailNote::Rotated { from, to } => {
                write!(f, "{}: rotated; finishing {}", from.display(), to.display())
            }
            TailNote::Truncated { path, at } => {
                write!(
                    f,
                    "{}: truncated after byte {at} had been read",
                    path.display()
                )
            }
            TailNote::Lost { path, reason } => {
                write!(f, "{}: lines may be lost: {reason}", path.display())
            }
            TailNote::Error { path, message } => write!(f, "{}: {message}", path.display()),
        }
    }
}

/// The file being read.
#[derive(Debug)]
struct Source {
    f: Opened,
    name: Arc<Path>,
    /// Still the file at the followed path.
    live: bool,
    /// May still be appended to (a renamed file whose writer has not moved
    /// on); a copytruncate copy never is.
    may_grow: bool,
}

/// Where to start reading a file.
#[derive(Debug, Clone, Copy)]
struct Start {
    offset: u64,
    line: u64,
    fp: Option<Fingerprint>,
}

impl Start {
    const ZERO: Start = Start {
        offset: 0,
        line: 0,
        fp: None,
    };

    fn of(c: &Cursor) -> Start {
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
    path: PathBuf,
    live_name: Arc<Path>,
    limits: TailLimits,
    /// The cursor given to `new`, until its file is found (or given up on).
    saved: Option<Cursor>,
    src: Option<Source>,
    /// The new file at the path, once `src` was rotated away.
    next: Option<Opened>,
    fp: Option<Fingerprint>,
    lines: LineBuf,
    missing_told: bool,
    last_error: Option<String>,
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

    /// Opens the file to read first: the one the saved cursor names, or the
    /// live file.
    fn attach(&mut self, out: &mut Batch) {
        let live = match Opened::open_if_exists(&self.path) {
            Ok(o) => o,
            Err(e) => return self.error(out, format!("cannot open: {e}")),
        };
        let Some(saved) = self.saved.take() else {
            match live {
                Some(o) => {
                    self.appeared(out);
                    self.start_live(o);
                }
                None => self.missing(out),
            }
            return;
        };
        let start = Start::of(&saved);
        if let Some(o) = live {
            let size = o.size().unwrap_or(0);
            let head_ok = match &saved.fingerprint {
                Some(fp) => fp.matches(&o.file).unwrap_or(false),
                None => true,
            };
            // The same file, also when the device number changed (a
            // reboot) or it was moved here: same inode, or same first line.
            let same = o.same(saved.dev, saved.ino) || saved.fingerprint.is_some();
            if same && head_ok && size >= saved.offset {
                self.appeared(out);
                return self.start(o, self.live_name.clone(), true, true, start);
            }
            if o.same(saved.dev, saved.ino) {
                // Truncated in place while we were down: copytruncate.
                out.notes.push(TailNote::Truncated {
                    path: self.path.clone(),
                    at: saved.offset,
                });
                return self.recover_copy(o, start, out);
            }
            // Rotated by rename while we were down.
            match self.find_saved(&saved, Some(&o)) {
                Some((p, f, may_grow)) => {
                    out.notes.push(TailNote::Rotated {
                        from: self.path.clone(),
                        to: p.clone(),
                    });
                    self.start(f, Arc::from(p), false, may_grow, start);
                    self.next = Some(o);
                }
                None => {
                    if saved.offset > 0 {
                        out.notes.push(TailNote::Lost {
                            path: self.path.clone(),
                            reason: format!(
                                "the file read up to byte {} (line {}) is no longer at the path nor \
                                 beside it uncompressed; its lines after that were not read",
                                saved.offset, saved.line
                            ),
                        });
                    }
                    self.start_live(o);
                }
            }
        } else if let Some((p, f, may_grow)) = self.find_saved(&saved, None) {
            out.notes.push(TailNote::Rotated {
                from: self.path.clone(),
                to: p.clone(),
            });
            self.start(f, Arc::from(p), false, may_grow, start);
            self.missing(out);
        } else {
            self.saved = Some(saved);
            self.missing(out);
        }
    }

    /// The rotated sibling the saved cursor names: by inode, else by first
    /// line (a copytruncate copy, or a device number that changed). The
    /// flag says whether it may still grow.
    fn find_saved(&self, saved: &Cursor, live: Option<&Opened>) -> Option<(PathBuf, Opened, bool)> {
        if let Some(p) = siblings::find_by_inode(&self.path, saved.dev, saved.ino)
            && let Ok(f) = Opened::open(&p)
            && f.same(saved.dev, saved.ino)
            && saved
                .fingerprint
                .is_none_or(|fp| fp.matches(&f.file).unwrap_or(false))
        {
            return Some((p, f, true));
        }
        let fp = saved.fingerprint.as_ref()?;
        let exclude: Vec<(u64, u64)> = live.map(|o| (o.dev, o.ino)).into_iter().collect();
        let (p, f) = siblings::find_by_fingerprint(&self.path, fp, &exclude)?;
        let size = f.size().ok()?;
        (size >= saved.offset).then_some((p, f, false))
    }

    /// After a truncation of the live file `live`: read the rest from the
    /// copy, else restart the live file at 0 and say what is lost.
    fn recover_copy(&mut self, live: Opened, at: Start, out: &mut Batch) {
        let copy = at
            .fp
            .and_then(|fp| siblings::find_by_fingerprint(&self.path, &fp, &[(live.dev, live.ino)]));
        match copy {
            Some((p, f)) => {
                out.notes.push(TailNote::Rotated {
                    from: self.path.clone(),
                    to: p.clone(),
                });
                self.start(f, Arc::from(p), false, false, at);
                self.next = Some(live);
            }
            None => {
                if at.offset > 0 || at.fp.is_some() {
                    out.notes.push(TailNote::Lost {
                        path: self.path.clone(),
                        reason: format!(
                            "truncated after byte {} was read, and no uncompressed copy starting \
                             with the same first line is beside it (compressed or removed \
                             already?); lines written after that byte are lost",
                            at.offset
                        ),
                    });
                }
                self.start_live(live);
            }
        }
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
                return Pumped::Eof;
            }
            let (n, want, pos) = match self.lines.fill(&src.f.file, self.limits.read_buffer) {
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

    fn start_live(&mut self, o: Opened) {
        self.start(o, self.live_name.clone(), true, true, Start::ZERO);
    }

    fn start(&mut self, f: Opened, name: Arc<Path>, live: bool, may_grow: bool, at: Start) {
        self.src = Some(Source {
            f,
            name,
            live,
            may_grow,
        });
        self.fp = at.fp;
        self.lines.reset(at.offset, at.line);
    }

    fn missing(&mut self, out: &mut Batch) {
        if !self.missing_told {
            self.missing_told = true;
            out.notes.push(TailNote::Missing(self.path.clone()));
        }
    }

    fn appeared(&mut self, out: &mut Batch) {
        if self.missing_told {
            self.missing_told = false;
            out.notes.push(TailNote::Appeared(self.path.clone()));
        }
    }

    /// Reports an I/O problem once until it changes or reading succeeds.
    fn error(&mut self, out: &mut Batch, message: String) {
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
