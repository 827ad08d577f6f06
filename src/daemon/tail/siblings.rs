//! Finding a followed file again among its rotated siblings.
//!
//! Rotated generations stay in the directory of the live file (logrotate
//! without `olddir`) and share the start of its name: `activity.jsonl.1`,
//! `activity.jsonl-20261126`, `activity-20261126.jsonl` (dateext with
//! `extension`). Compressed generations are never opened: their bytes are
//! not the lines, and a tailer must not read them.

use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::cursor::Fingerprint;

const COMPRESSED: &[&str] = &[
    "gz", "bz2", "xz", "zst", "zstd", "lz4", "lzma", "lz", "lzo", "z", "zip", "br", "7z", "sz",
];

/// An open file with its identity, taken from the open descriptor so that a
/// rename between `open` and `stat` cannot mix two files up.
#[derive(Debug)]
pub(super) struct Opened {
    pub file: File,
    pub dev: u64,
    pub ino: u64,
}

impl Opened {
    pub fn open(path: &Path) -> io::Result<Opened> {
        let file = File::open(path)?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(io::Error::other("not a regular file"));
        }
        Ok(Opened {
            dev: meta.dev(),
            ino: meta.ino(),
            file,
        })
    }

    /// Opens `path`, `None` when it does not exist.
    pub fn open_if_exists(path: &Path) -> io::Result<Option<Opened>> {
        match Opened::open(path) {
            Ok(o) => Ok(Some(o)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn size(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    pub fn same(&self, dev: u64, ino: u64) -> bool {
        self.dev == dev && self.ino == ino
    }
}

pub(super) fn is_compressed(name: &str) -> bool {
    name.rsplit_once('.')
        .is_some_and(|(_, ext)| COMPRESSED.iter().any(|c| c.eq_ignore_ascii_case(ext)))
}

fn stem(name: &str) -> &str {
    match name.split_once('.') {
        Some((s, _)) if !s.is_empty() => s,
        _ => name,
    }
}

/// Regular, uncompressed files beside `live` whose names start like its.
fn candidates(live: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (live.parent(), live.file_name().and_then(|n| n.to_str())) else {
        return Vec::new();
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let stem = stem(name);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n != name && n.starts_with(stem) && !is_compressed(n))
        })
        .map(|e| e.path())
        .collect();
    // The newest generation first (`.1` before `.2`), the likeliest match.
    out.sort();
    out
}

/// The sibling of `live` that is the file with this inode, when it still
/// has a name there.
pub(super) fn find_by_inode(live: &Path, dev: u64, ino: u64) -> Option<PathBuf> {
    candidates(live).into_iter().find(|p| {
        std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file() && m.dev() == dev && m.ino() == ino)
    })
}

/// The sibling of `live` that starts like `fp` and is none of the files
/// in `exclude` (the live file itself), opened.
pub(super) fn find_by_fingerprint(
    live: &Path,
    fp: &Fingerprint,
    exclude: &[(u64, u64)],
) -> Option<(PathBuf, Opened)> {
    candidates(live).into_iter().find_map(|p| {
        let o = Opened::open(&p).ok()?;
        if exclude.iter().any(|&(d, i)| o.same(d, i)) {
            return None;
        }
        fp.matches(&o.file).ok()?.then_some((p, o))
    })
}

/// Whether `name` looks like a rotated generation of the file named `of`:
/// `of.1`, `of-20261126`, `of.2.gz`, or `stem-20261126.ext` for `stem.ext`.
pub(super) fn is_rotated_name(name: &str, of: &str) -> bool {
    if name == of {
        return false;
    }
    let name = match name.rsplit_once('.') {
        Some((base, _)) if is_compressed(name) => base,
        _ => name,
    };
    if let Some(rest) = name.strip_prefix(of)
        && generation_suffix(rest)
    {
        return true;
    }
    if let Some((of_stem, of_ext)) = of.rsplit_once('.')
        && let Some(rest) = name.strip_prefix(of_stem)
        && let Some(mid) = rest.strip_suffix(of_ext)
        && let Some(mid) = mid.strip_suffix('.')
    {
        return generation_suffix(mid);
    }
    false
}

/// `.1`, `-20261126`, `_2026-11-26-1764115200`: a separator, then digits
/// (dates may carry more separators).
fn generation_suffix(rest: &str) -> bool {
    let mut chars = rest.chars();
    matches!(chars.next(), Some('.' | '-' | '_'))
        && rest.len() > 1
        && rest[1..].starts_with(|c: char| c.is_ascii_digit())
        && rest[1..]
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_names() {
        for n in [
            "activity.jsonl.1",
            "activity.jsonl.12.gz",
            "activity.jsonl-20261126",
            "activity.jsonl-20261126.xz",
            "activity-20261126.jsonl",
            "activity-20261126.jsonl.gz",
        ] {
            assert!(is_rotated_name(n, "activity.jsonl"), "{n}");
        }
        for n in [
            "activity.jsonl",
            "activity-errors.jsonl",
            "activity.jsonl.bak",
            "other.jsonl.1",
            "activity.jsonl2",
        ] {
            assert!(!is_rotated_name(n, "activity.jsonl"), "{n}");
        }
        assert!(
            is_compressed("a.jsonl.1.gz") && is_compressed("a.ZST") && !is_compressed("a.jsonl")
        );
    }
}
