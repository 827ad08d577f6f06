//! Where to start: the file a saved cursor names, found again after a
//! rotation while the daemon was down, or the copy of a truncated log.

use std::path::PathBuf;
use std::sync::Arc;

use super::siblings::{self, Opened};
use super::tailer::Start;
use super::{Batch, Cursor, TailNote, Tailer};

impl Tailer {
    /// Opens the file to read first: the one the saved cursor names, or the
    /// live file.
    pub(super) fn attach(&mut self, out: &mut Batch) {
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
            let seen = o.size().and_then(|size| {
                let head_ok = match &saved.fingerprint {
                    Some(fp) => fp.matches(&o.file)?,
                    None => true,
                };
                Ok((size, head_ok))
            });
            let (size, head_ok) = match seen {
                Ok(s) => s,
                Err(e) => {
                    // Not knowing is no reason to take it for another file.
                    self.saved = Some(saved);
                    return self.error(out, format!("cannot read: {e}"));
                }
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
    pub(super) fn find_saved(
        &self,
        saved: &Cursor,
        live: Option<&Opened>,
    ) -> Option<(PathBuf, Opened, bool)> {
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
    pub(super) fn recover_copy(&mut self, live: Opened, at: Start, out: &mut Batch) {
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
}
