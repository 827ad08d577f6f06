//! Following every file that matches a set of paths and globs.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use globset::{Glob, GlobBuilder, GlobMatcher};

use super::siblings::{is_compressed, is_rotated_name};
use super::{Batch, Cursor, Fingerprint, TailLimits, TailNote, Tailer};

/// Each tailer gets at least this much of a `read` budget, so that many
/// quiet files do not starve a busy one.
const MIN_SHARE: usize = 64 << 10;

#[derive(Debug)]
enum Pattern {
    Plain(PathBuf),
    Glob {
        whole: GlobMatcher,
        /// The leading directories without wildcards, then one matcher (or
        /// literal name) per remaining component.
        root: PathBuf,
        parts: Vec<Part>,
    },
}

#[derive(Debug)]
enum Part {
    Literal(String),
    Glob(GlobMatcher),
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '[', '{'])
}

fn matcher(pattern: &str) -> Result<GlobMatcher, globset::Error> {
    Ok(GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()?
        .compile_matcher())
}

impl Pattern {
    fn parse(text: &str) -> Result<Pattern, globset::Error> {
        if !has_wildcard(text) {
            return Ok(Pattern::Plain(PathBuf::from(text)));
        }
        let whole = matcher(text)?;
        let mut root = PathBuf::new();
        let mut parts = Vec::new();
        for c in Path::new(text).components() {
            let s = c.as_os_str().to_string_lossy();
            match c {
                Component::Normal(_) if has_wildcard(&s) => {
                    parts.push(Part::Glob(Glob::new(&s)?.compile_matcher()));
                }
                _ if parts.is_empty() => root.push(c.as_os_str()),
                _ => parts.push(Part::Literal(s.into_owned())),
            }
        }
        Ok(Pattern::Glob { whole, root, parts })
    }

    fn matches(&self, key: &str) -> bool {
        match self {
            Pattern::Plain(p) => p.as_os_str() == key,
            Pattern::Glob { whole, .. } => whole.is_match(key),
        }
    }

    /// The regular files the glob matches now (one `read_dir` per
    /// directory level).
    fn expand(&self, out: &mut Vec<PathBuf>) {
        let Pattern::Glob { root, parts, .. } = self else {
            return;
        };
        let root = if root.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            root.clone()
        };
        let mut level = vec![root];
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            let mut found = Vec::new();
            for dir in &level {
                match part {
                    Part::Literal(name) => found.push(dir.join(name)),
                    Part::Glob(m) => {
                        let Ok(entries) = std::fs::read_dir(dir) else {
                            continue;
                        };
                        found.extend(
                            entries
                                .filter_map(Result::ok)
                                .filter(|e| m.is_match(e.file_name()))
                                .map(|e| e.path()),
                        );
                    }
                }
            }
            found.retain(|p| match std::fs::metadata(p) {
                Ok(m) if last => m.is_file(),
                Ok(m) => m.is_dir(),
                Err(_) => false,
            });
            level = found;
        }
        out.extend(level);
    }
}

/// Follows several patterns — plain paths or globs such as
/// `/var/log/ks/*.jsonl` — each matching live file with its own [`Tailer`],
/// keyed by its path.
///
/// Globs are expanded again at most once per scan interval (default 1 s).
/// A match that is a rotated generation of a followed file is not followed
/// on its own: compressed files, `X.<digits>` names, names like a rotated
/// sibling of a matched or followed file (`X.1`, `X-20261126`,
/// `stem-20261126.ext`), and files that are the one a followed cursor names
/// (same inode, or same first line: a copytruncate copy).
#[derive(Debug)]
pub struct LogSet {
    patterns: Vec<Pattern>,
    tailers: BTreeMap<String, Tailer>,
    saved: HashMap<String, Cursor>,
    /// Glob matches judged rotated generations, with the inode they had.
    ignored: HashMap<PathBuf, (u64, u64)>,
    limits: TailLimits,
    scan_every: Duration,
    last_scan: Option<Instant>,
    /// Problems with the patterns themselves, told once.
    pending: Vec<(String, TailNote)>,
}

impl LogSet {
    pub fn new(
        patterns: Vec<String>,
        saved: HashMap<String, Cursor>,
        limits: TailLimits,
    ) -> LogSet {
        let mut set = LogSet {
            patterns: Vec::new(),
            tailers: BTreeMap::new(),
            saved,
            ignored: HashMap::new(),
            limits,
            scan_every: Duration::from_secs(1),
            last_scan: None,
            pending: Vec::new(),
        };
        for text in patterns {
            match Pattern::parse(&text) {
                Ok(p) => set.patterns.push(p),
                Err(e) => set.pending.push((
                    text.clone(),
                    TailNote::Error {
                        path: PathBuf::from(&text),
                        message: format!("invalid glob: {e}"),
                    },
                )),
            }
        }
        let plain: Vec<String> = set
            .patterns
            .iter()
            .filter_map(|p| match p {
                Pattern::Plain(p) => Some(p.to_string_lossy().into_owned()),
                Pattern::Glob { .. } => None,
            })
            .collect();
        // A file followed before the restart may be missing right now
        // (rotated, not yet recreated); its rotated file still has to be
        // finished, so its tailer exists before any glob matches it.
        let resumed: Vec<String> = set
            .saved
            .keys()
            .filter(|k| set.patterns.iter().any(|p| p.matches(k)))
            .cloned()
            .collect();
        for key in plain.into_iter().chain(resumed) {
            set.follow(key);
        }
        set
    }

    /// How often globs are expanded again.
    pub fn set_scan_interval(&mut self, every: Duration) {
        self.scan_every = every;
    }

    pub fn keys(&self) -> Vec<String> {
        self.tailers.keys().cloned().collect()
    }

    /// Reads every followed file, about `max_bytes` in all; only the
    /// batches with lines or notes.
    pub fn read(&mut self, max_bytes: usize) -> Vec<(String, Batch)> {
        if self
            .last_scan
            .is_none_or(|t| t.elapsed() >= self.scan_every)
        {
            self.rescan();
        }
        let mut out: Vec<(String, Batch)> = self
            .pending
            .drain(..)
            .map(|(key, note)| {
                let batch = Batch {
                    lines: Vec::new(),
                    notes: vec![note],
                    cursor: Cursor::default(),
                };
                (key, batch)
            })
            .collect();
        let share = (max_bytes / self.tailers.len().max(1))
            .max(MIN_SHARE)
            .min(max_bytes.max(1));
        for (key, tailer) in &mut self.tailers {
            let batch = tailer.read(share);
            if !batch.is_empty() {
                out.push((key.clone(), batch));
            }
        }
        out
    }

    /// Expands the globs now and follows new matches.
    pub fn rescan(&mut self) {
        self.last_scan = Some(Instant::now());
        let mut found = Vec::new();
        for p in &self.patterns {
            p.expand(&mut found);
        }
        found.sort();
        found.dedup();
        let mut names: HashMap<PathBuf, HashSet<String>> = HashMap::new();
        for p in found
            .iter()
            .map(PathBuf::as_path)
            .chain(self.tailers.keys().map(Path::new))
        {
            if let (Some(dir), Some(name)) = (p.parent(), p.file_name()) {
                names
                    .entry(dir.to_path_buf())
                    .or_default()
                    .insert(name.to_string_lossy().into_owned());
            }
        }
        for path in found {
            let key = path.to_string_lossy().into_owned();
            if self.tailers.contains_key(&key) {
                continue;
            }
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            let id = (meta.dev(), meta.ino());
            if self.ignored.get(&path) == Some(&id) {
                continue;
            }
            if self.is_rotated(&path, id, &names) {
                self.ignored.insert(path, id);
            } else {
                self.ignored.remove(&path);
                self.follow(key);
            }
        }
    }

    fn is_rotated(
        &self,
        path: &Path,
        (dev, ino): (u64, u64),
        names: &HashMap<PathBuf, HashSet<String>>,
    ) -> bool {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let numbered = name
            .rsplit_once('.')
            .is_some_and(|(_, ext)| !ext.is_empty() && ext.bytes().all(|b| b.is_ascii_digit()));
        if is_compressed(&name) || numbered {
            return true;
        }
        let siblings = path.parent().and_then(|d| names.get(d));
        if siblings.is_some_and(|s| s.iter().any(|of| is_rotated_name(&name, of))) {
            return true;
        }
        let cursors: Vec<Cursor> = self.tailers.values().map(Tailer::cursor).collect();
        if cursors.iter().any(|c| c.dev == dev && c.ino == ino) {
            return true;
        }
        if !cursors.iter().any(|c| c.fingerprint.is_some()) {
            return false;
        }
        let fp = std::fs::File::open(path)
            .ok()
            .and_then(|f| Fingerprint::of_file(&f).ok().flatten());
        fp.is_some_and(|fp| cursors.iter().any(|c| c.fingerprint == Some(fp)))
    }

    fn follow(&mut self, key: String) {
        if self.tailers.contains_key(&key) {
            return;
        }
        let saved = self.saved.remove(&key);
        let tailer = Tailer::new(PathBuf::from(&key), saved, self.limits);
        self.tailers.insert(key, tailer);
    }
}
