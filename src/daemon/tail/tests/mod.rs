use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::*;

mod lines;
mod logset;
mod rotation;

pub(super) fn append(path: &Path, bytes: &[u8]) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(bytes).unwrap();
}

/// (file name, line, text or reason).
pub(super) type Got = (String, u64, Result<String, String>);

pub(super) fn numbered(from: u32, to: u32) -> String {
    (from..to).map(|i| format!("{{\"n\":{i}}}\n")).collect()
}

/// Reads until nothing is new: (file name, line, text or error), notes, cursor.
pub(super) fn drain(t: &mut Tailer, max_bytes: usize) -> (Vec<Got>, Vec<TailNote>, Cursor) {
    let mut lines = Vec::new();
    let mut notes = Vec::new();
    loop {
        let b = t.read(max_bytes);
        let empty = b.is_empty();
        for l in b.lines {
            let name = l.file.file_name().unwrap().to_string_lossy().into_owned();
            lines.push((name, l.line, l.text));
        }
        notes.extend(b.notes);
        if empty {
            return (lines, notes, b.cursor);
        }
    }
}

pub(super) fn texts(lines: &[Got]) -> Vec<String> {
    lines.iter().map(|(_, _, t)| t.clone().unwrap()).collect()
}

pub(super) fn ns(lines: &[Got]) -> Vec<u32> {
    lines
        .iter()
        .map(|(_, _, t)| {
            let v: serde_json::Value = serde_json::from_str(t.as_ref().unwrap()).unwrap();
            v["n"].as_u64().unwrap() as u32
        })
        .collect()
}

pub(super) fn where_(lines: &[Got]) -> Vec<String> {
    lines.iter().map(|(f, n, _)| format!("{f}:{n}")).collect()
}

pub(super) fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("activity.jsonl");
    (dir, path)
}

/// What logrotate's copytruncate does: copy, then truncate in place.
pub(super) fn copytruncate(path: &Path, copy: &Path) {
    std::fs::copy(path, copy).unwrap();
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(0)
        .unwrap();
}
