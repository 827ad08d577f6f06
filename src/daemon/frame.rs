//! The binary framing of what the daemon stores as blobs: held log batches
//! (held.rs) and the obligations' and facts' journal (store/journal.rs,
//! store/rows.rs). Integers little-endian, strings and byte runs as a u32
//! length then the bytes; a blob is a run of records, read until it ends
//! or is found cut short.

use std::path::Path;

pub fn put_u32(buf: &mut Vec<u8>, n: u32) {
    buf.extend_from_slice(&n.to_le_bytes());
}

/// Bytes (a string's, a path's): length, then the bytes.
pub fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    put_u32(buf, b.len() as u32);
    buf.extend_from_slice(b);
}

pub fn put_str(buf: &mut Vec<u8>, s: &str) {
    put_bytes(buf, s.as_bytes());
}

pub fn put_path(buf: &mut Vec<u8>, p: &Path) {
    use std::os::unix::ffi::OsStrExt;
    put_bytes(buf, p.as_os_str().as_bytes());
}

/// Reads what the `put_*` functions wrote; `None` where it is cut short.
#[derive(Debug)]
pub struct Reader<'a>(pub &'a [u8]);

impl<'a> Reader<'a> {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (a, b) = self.0.split_at_checked(n)?;
        self.0 = b;
        Some(a)
    }

    pub fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    pub fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    pub fn i32(&mut self) -> Option<i32> {
        Some(i32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    pub fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    pub fn i64(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    /// `n` bytes announced before they are read (a held event's path may
    /// be announced as "the previous one's" instead).
    pub fn bytes_of(&mut self, n: u32) -> Option<&'a [u8]> {
        self.take(n as usize)
    }

    pub fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()?;
        self.bytes_of(n)
    }

    pub fn str(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.bytes()?).ok()
    }

    pub fn path(&mut self) -> Option<&'a Path> {
        use std::os::unix::ffi::OsStrExt;
        Some(Path::new(std::ffi::OsStr::from_bytes(self.bytes()?)))
    }
}

/// Every record of `blob`, read by `one`, in order; where one cannot be
/// read, an error saying how many came before it (`what` names the blob
/// and its records), and the rest of the blob is left.
pub fn records<'a, T>(
    blob: &'a [u8],
    what: (&str, &str),
    mut one: impl FnMut(&mut Reader<'a>) -> Option<T>,
) -> Vec<Result<T, String>> {
    let mut out = Vec::new();
    let mut r = Reader(blob);
    while !r.is_empty() {
        match one(&mut r) {
            Some(t) => out.push(Ok(t)),
            None => {
                out.push(Err(format!(
                    "{} is corrupt after {} {}",
                    what.0,
                    out.len(),
                    what.1
                )));
                break;
            }
        }
    }
    out
}
