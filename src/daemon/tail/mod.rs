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
mod resume;
mod siblings;
mod tailer;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use cursor::{Cursor, Fingerprint};
pub use logset::LogSet;
pub use tailer::Tailer;

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
