//! Cutting lines out of large reads with bounded memory.

use std::fs::File;
use std::io::{self, BufRead};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use super::TailLine;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// What a read asks for when the buffer is small, i.e. the first read after
/// the end of the file was reached. A quiet log is polled every 200 ms:
/// asking for the full read buffer each time kept it (256 KiB, zeroed, so
/// resident) for every log a daemon tails, though the polls find nothing.
pub(super) const IDLE_READ: usize = 16 << 10;

/// Bytes read but not yet cut into lines, and the position of the reader.
///
/// Holds at most one unfinished line (at most `max_line_bytes`) plus one
/// read, so its capacity stays below `max_line_bytes + 2 × read_buffer`
/// however long a line is: a longer line is passed over, not kept.
#[derive(Debug, Default)]
pub(super) struct LineBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// File offset of `buf[start]`.
    at: u64,
    /// The byte after the last line delivered.
    pub offset: u64,
    /// The number of the last line delivered.
    pub line: u64,
    /// Passing over an over-long line that starts at `offset`.
    skipping: bool,
}

impl LineBuf {
    pub fn reset(&mut self, offset: u64, line: u64) {
        self.start = 0;
        self.end = 0;
        self.at = offset;
        self.offset = offset;
        self.line = line;
        self.skipping = false;
    }

    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// One `pread` after the buffered bytes. Returns the bytes read, the
    /// bytes asked for, and the file position read at.
    pub fn fill(&mut self, file: &File, chunk: usize) -> io::Result<(usize, usize, u64)> {
        self.make_room(chunk);
        let pos = self.at + (self.end - self.start) as u64;
        let want = self.buf.len() - self.end;
        loop {
            match file.read_at(&mut self.buf[self.end..], pos) {
                Ok(n) => {
                    self.end += n;
                    return Ok((n, want, pos));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// At the end of the file with nothing buffered: gives back a buffer
    /// grown for a backlog (the next read asks for [`IDLE_READ`] first).
    pub fn rest(&mut self) {
        if self.start == self.end && self.buf.len() > IDLE_READ {
            self.buf = Vec::new();
            self.start = 0;
            self.end = 0;
        }
    }

    /// Forgets the last `n` bytes read.
    pub fn unfill(&mut self, n: usize) {
        self.end -= n;
    }

    fn make_room(&mut self, chunk: usize) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.buf.len() - self.end >= chunk {
            return;
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < chunk {
            let need = self.end + chunk;
            // Exact: the doubling of `resize` would break the bound.
            self.buf.reserve_exact(need - self.buf.len());
            self.buf.resize(need, 0);
        }
    }

    /// Cuts complete lines out of the buffer until `budget` bytes were
    /// cut; returns the bytes cut (bytes of an over-long line passed over
    /// count too).
    pub fn split(
        &mut self,
        file: &Arc<Path>,
        max: usize,
        budget: usize,
        out: &mut Vec<TailLine>,
    ) -> usize {
        let mut cut = 0;
        while cut < budget {
            let data = &self.buf[self.start..self.end];
            let Some(i) = find_newline(data) else {
                if self.skipping || data.len() > max {
                    self.skipping = true;
                    self.at += data.len() as u64;
                    self.start = self.end;
                    cut += data.len();
                }
                break;
            };
            cut += i + 1;
            let nl = self.at + i as u64;
            let n = self.line + 1;
            let text = if self.skipping || i > max {
                Err(too_long(n, nl - self.offset, max))
            } else {
                decode(&data[..i], self.offset == 0, n, file)
            };
            out.push(TailLine {
                file: file.clone(),
                line: n,
                text,
            });
            self.line = n;
            self.skipping = false;
            self.start += i + 1;
            self.at = nl + 1;
            self.offset = self.at;
        }
        cut
    }

    /// Delivers an unterminated last line of a file that will not grow.
    pub fn finish(&mut self, file: &Arc<Path>, max: usize, out: &mut Vec<TailLine>) {
        let data = &self.buf[self.start..self.end];
        let end = self.at + data.len() as u64;
        if !self.skipping && data.is_empty() {
            return;
        }
        let n = self.line + 1;
        let len = end - self.offset;
        let text = if self.skipping {
            Err(too_long(n, len, max))
        } else {
            decode(data, self.offset == 0, n, file)
        };
        out.push(TailLine {
            file: file.clone(),
            line: n,
            text,
        });
        self.line = n;
        self.skipping = false;
        self.start = self.end;
        self.at = end;
        self.offset = end;
    }
}

/// The first `\n`, with the standard library's word-at-a-time search.
fn find_newline(data: &[u8]) -> Option<usize> {
    let mut rest = data;
    let n = rest.skip_until(b'\n').unwrap_or(0);
    (n > 0 && data[n - 1] == b'\n').then(|| n - 1)
}

fn decode(line: &[u8], file_start: bool, n: u64, file: &Path) -> Result<String, String> {
    let mut b = line;
    if let [head @ .., b'\r'] = b {
        b = head;
    }
    if file_start && b.starts_with(BOM) {
        b = &b[BOM.len()..];
    }
    // Every byte of a log is validated here; the lines are mostly Chinese,
    // where the standard library's check (fast only on ASCII) was a third
    // of the tailer thread's time. The standard check, on a bad line only,
    // says where it goes wrong.
    match simdutf8::basic::from_utf8(b) {
        Ok(s) => Ok(s.to_owned()),
        Err(_) => Err(format!(
            "line {n} of {} is not valid UTF-8 (bad byte at byte {} of the line)",
            file.display(),
            std::str::from_utf8(b).err().map_or(0, |e| e.valid_up_to()) + 1
        )),
    }
}

fn too_long(n: u64, len: u64, max: usize) -> String {
    format!("line {n} is {len} bytes, over the {} limit", human(max))
}

fn human(bytes: usize) -> String {
    const KIB: usize = 1 << 10;
    const MIB: usize = 1 << 20;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes}-byte")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newline_search_and_sizes() {
        assert_eq!(find_newline(b"abc"), None);
        assert_eq!(find_newline(b""), None);
        assert_eq!(find_newline(b"ab\ncd\n"), Some(2));
        assert_eq!(find_newline(b"\n"), Some(0));
        assert_eq!(human(1 << 20), "1 MiB");
        assert_eq!(human(64 << 10), "64 KiB");
        assert_eq!(human(100), "100-byte");
    }

    #[test]
    fn lines_are_decoded_as_utf8_and_a_bad_byte_is_placed() {
        let f = Path::new("/var/log/a.jsonl");
        let line = "{\"text\":\"孕妇可以吃吗？\"}".as_bytes();
        assert_eq!(decode(line, false, 1, f).unwrap().as_bytes(), line);
        // A BOM on the file's first line and a CR before the newline go.
        let mut first = b"\xef\xbb\xbf".to_vec();
        first.extend_from_slice(line);
        first.push(b'\r');
        assert_eq!(decode(&first, true, 1, f).unwrap().as_bytes(), line);
        // 问 cut after its first byte (GBK or a torn write), at byte 10.
        let mut bad = "{\"text\":\"".as_bytes().to_vec();
        bad.push("问".as_bytes()[0]);
        bad.extend_from_slice(b"x\"}");
        assert_eq!(
            decode(&bad, false, 7, f).unwrap_err(),
            "line 7 of /var/log/a.jsonl is not valid UTF-8 (bad byte at byte 10 of the line)"
        );
    }
}
