//! The saved position of a tailer and the identity of a log file.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};

use serde::{Deserialize, Serialize};

/// How many leading bytes of a file identify it.
pub const FINGERPRINT_BYTES: usize = 256;

/// Identifies a file by its beginning, which rotation never changes (a
/// renamed file keeps it; a copy made by copytruncate starts with it), while
/// the inode does not survive a copy and may be reused after a delete.
///
/// It covers the first line including its newline, or the first 256 bytes
/// when the first line is longer: two files match when their first `len`
/// bytes hash the same. Activity lines start with a timestamp, so two
/// different logs practically never share them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Bytes hashed (≤ 256).
    pub len: u32,
    /// 64-bit FNV-1a of those bytes.
    pub hash: u64,
}

impl Fingerprint {
    /// The fingerprint of a file starting with `head`, once `head` holds a
    /// whole first line or 256 bytes; `None` while the first line is still
    /// being written.
    pub fn of_head(head: &[u8]) -> Option<Fingerprint> {
        let head = &head[..head.len().min(FINGERPRINT_BYTES)];
        let len = match head.iter().position(|&b| b == b'\n') {
            Some(i) => i + 1,
            None if head.len() == FINGERPRINT_BYTES => FINGERPRINT_BYTES,
            None => return None,
        };
        Some(Fingerprint {
            len: len as u32,
            hash: fnv1a(&head[..len]),
        })
    }

    /// Reads the head of `file` (one `pread`).
    pub fn of_file(file: &File) -> io::Result<Option<Fingerprint>> {
        let mut head = [0u8; FINGERPRINT_BYTES];
        let n = read_full_at(file, &mut head, 0)?;
        Ok(Fingerprint::of_head(&head[..n]))
    }

    /// Whether `file` starts with the bytes this fingerprint describes.
    pub fn matches(&self, file: &File) -> io::Result<bool> {
        let mut head = [0u8; FINGERPRINT_BYTES];
        let want = (self.len as usize).min(FINGERPRINT_BYTES);
        let n = read_full_at(file, &mut head[..want], 0)?;
        Ok(n == want && fnv1a(&head[..want]) == self.hash)
    }
}

/// `pread` until `buf` is full or the file ends.
pub(super) fn read_full_at(file: &File, buf: &mut [u8], at: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], at + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Where reading of one followed path stands: the file (device, inode and
/// fingerprint, so that it can be found again after a rename) and the
/// position after the last line delivered. The store saves it as JSON in the
/// same transaction as the effects of those lines.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub dev: u64,
    pub ino: u64,
    /// The byte after the last line delivered.
    pub offset: u64,
    /// Lines delivered so far in this file (the number of the last one).
    pub line: u64,
    /// Of the file's first line, once it is complete.
    #[serde(default)]
    pub fingerprint: Option<Fingerprint>,
}

impl Cursor {
    /// A cursor that names no file: start the path from its beginning.
    pub fn is_unset(&self) -> bool {
        self.dev == 0 && self.ino == 0
    }

    /// Whether the cursor describes the file `meta` belongs to (by inode).
    pub fn same_inode(&self, meta: &std::fs::Metadata) -> bool {
        self.dev == meta.dev() && self.ino == meta.ino()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_needs_a_whole_first_line_or_256_bytes() {
        assert_eq!(Fingerprint::of_head(b"{\"a\":1}"), None);
        let fp = Fingerprint::of_head(b"{\"a\":1}\n{\"b\"").unwrap();
        assert_eq!(fp.len, 8);
        assert_eq!(Fingerprint::of_head(b"{\"a\":1}\nzzz"), Some(fp));
        let long = vec![b'x'; 300];
        assert_eq!(Fingerprint::of_head(&long).unwrap().len, 256);
    }

    #[test]
    fn cursor_round_trips_through_json() {
        let c = Cursor {
            dev: 2049,
            ino: u64::MAX - 1,
            offset: 12345,
            line: 17,
            fingerprint: Some(Fingerprint {
                len: 200,
                hash: u64::MAX,
            }),
        };
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<Cursor>(&json).unwrap(), c);
    }
}
