//! The catch-up walk: every matching regular file of the watched roots with
//! its size and mtime, so the caller re-checks only what changed while the
//! daemon was down.

use std::fs::{FileType, Metadata};
use std::io;
use std::path::Path;
use std::time::UNIX_EPOCH;

use walkdir::WalkDir;

use super::filter::absolute;
use super::{FileSeen, Filter, WatchEvent, WatchRoot};

/// Walks every root (symlinks followed) and hands each accepted regular file
/// to `out`, or an `Err(WatchEvent::Error)` naming the path for an
/// unreadable folder, a symlink loop, a dangling symlink, a FIFO, socket or
/// device (never opened), or any other walk error. Excluded folders are not
/// entered. A root nested inside another is walked once, under its own rules.
pub fn walk(
    roots: &[WatchRoot],
    filter: &Filter,
    out: &mut dyn FnMut(Result<FileSeen, WatchEvent>),
) {
    for root in roots {
        walk_tree(&absolute(&root.path), filter, out);
    }
}

/// Walks one folder (a root, or a folder that appeared inside one).
pub(super) fn walk_tree(
    start: &Path,
    filter: &Filter,
    out: &mut dyn FnMut(Result<FileSeen, WatchEvent>),
) {
    let entries = WalkDir::new(start)
        .follow_links(true)
        .into_iter()
        .filter_entry(|e| {
            e.depth() == 0
                || !(filter.excluded_entry(e.path())
                    || (e.file_type().is_dir() && filter.is_root(e.path())))
        });
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                out(Err(walk_error(start, &err)));
                continue;
            }
        };
        let ft = entry.file_type();
        if ft.is_dir() {
            continue;
        }
        if entry.depth() == 0 {
            out(Err(error(start, "watched root is not a folder")));
            continue;
        }
        if !filter.includes_entry(entry.path()) {
            continue;
        }
        if !ft.is_file() {
            out(Err(error(entry.path(), &not_regular(ft))));
            continue;
        }
        match entry.metadata() {
            Ok(meta) => out(Ok(FileSeen {
                path: entry.into_path(),
                size: meta.len(),
                mtime_ns: mtime_ns(&meta),
            })),
            // Deleted between the directory read and the stat: not an error,
            // its removal is reported by the watcher.
            Err(err) if err.io_error().map(io::Error::kind) == Some(io::ErrorKind::NotFound) => {}
            Err(err) => out(Err(walk_error(start, &err))),
        }
    }
}

fn error(path: &Path, message: &str) -> WatchEvent {
    WatchEvent::Error {
        path: Some(path.to_path_buf()),
        message: message.to_string(),
    }
}

fn walk_error(start: &Path, err: &walkdir::Error) -> WatchEvent {
    let path = err.path().unwrap_or(start);
    let message = if let Some(ancestor) = err.loop_ancestor() {
        format!(
            "symlink loop: leads back to {} (not followed)",
            ancestor.display()
        )
    } else if let Some(io) = err.io_error() {
        // With links followed, a dangling symlink shows up as "not found".
        if io.kind() == io::ErrorKind::NotFound && path.symlink_metadata().is_ok() {
            "dangling symbolic link".to_string()
        } else {
            format!("cannot read: {io}")
        }
    } else {
        err.to_string()
    };
    WatchEvent::Error {
        path: Some(path.to_path_buf()),
        message,
    }
}

/// Why a non-regular file is not checked; reading a FIFO would block.
pub(super) fn not_regular(ft: FileType) -> String {
    use std::os::unix::fs::FileTypeExt;
    let what = if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_block_device() || ft.is_char_device() {
        "a device"
    } else {
        "a special file"
    };
    format!("not a regular file ({what}); not checked")
}

/// Nanoseconds since the Unix epoch, negative before it; 0 when the file
/// system keeps no mtime.
pub(super) fn mtime_ns(meta: &Metadata) -> i128 {
    match meta.modified() {
        Ok(t) => match t.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_nanos() as i128,
            Err(e) => -(e.duration().as_nanos() as i128),
        },
        Err(_) => 0,
    }
}
