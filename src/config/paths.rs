//! Warnings about a configuration that loads but probably does not do what
//! was meant: a watched folder or a log that does not exist (a typo, a
//! mount missing), and holiday data missing for this or next year. The
//! daemon runs all the same — a folder or log that appears later is picked
//! up — but `complyd check`, `run` and `status` say so.

use std::path::{Component, Path, PathBuf};

use globset::GlobBuilder;
use jiff::Timestamp;

use crate::diag::{Code, Diagnostic, Pos};

/// A watched folder that is not a folder.
pub(super) fn watch_dir(config: &Path, pos: Pos, dir: &Path) -> Option<Diagnostic> {
    let why = match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => return None,
        Ok(_) => "is not a folder",
        Err(_) => "does not exist",
    };
    Some(
        Diagnostic::warning(
            config,
            pos,
            Code::MissingPath,
            format!("watched folder {} {why}", dir.display()),
        )
        .with_note("nothing is checked there until it exists"),
    )
}

/// A log path that does not exist, or a glob no file matches.
pub(super) fn log(config: &Path, pos: Pos, pattern: &str) -> Option<Diagnostic> {
    let warn = |message: String| {
        Some(
            Diagnostic::warning(config, pos, Code::MissingPath, message)
                .with_note("the daemon starts reading a log when it appears"),
        )
    };
    if !pattern.contains(['*', '?', '[', '{']) {
        return match Path::new(pattern).is_file() {
            true => None,
            false => warn(format!("log {pattern} does not exist")),
        };
    }
    // The leading folders without wildcards, then a bounded walk.
    let path = Path::new(pattern);
    let mut root = PathBuf::new();
    let mut depth = 0usize;
    let mut deep = false;
    for c in path.components() {
        let s = c.as_os_str().to_string_lossy();
        if depth == 0 && !s.contains(['*', '?', '[', '{']) {
            root.push(c);
        } else {
            depth += 1;
            deep |= s == "**";
        }
    }
    if !root.is_dir() {
        return warn(format!(
            "no file matches log pattern {pattern}: folder {} does not exist",
            root.display()
        ));
    }
    let Ok(glob) = GlobBuilder::new(pattern).literal_separator(true).build() else {
        return None; // reported as an error already
    };
    let glob = glob.compile_matcher();
    let max_depth = if deep { 16 } else { depth };
    let mut budget = 100_000usize;
    if any_match(&root, 1, max_depth, &mut budget, &|p| glob.is_match(p)) || budget == 0 {
        return None;
    }
    warn(format!("no file matches log pattern {pattern} (yet)"))
}

fn any_match(
    dir: &Path,
    depth: usize,
    max: usize,
    budget: &mut usize,
    is_match: &dyn Fn(&Path) -> bool,
) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    for e in entries.flatten() {
        if *budget == 0 {
            return false;
        }
        *budget -= 1;
        let p = e.path();
        let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
        if !is_dir && is_match(&p) {
            return true;
        }
        if is_dir && depth < max && any_match(&p, depth + 1, max, budget, is_match) {
            return true;
        }
    }
    false
}

/// The holiday data's warnings for the year of `now` and the next.
pub fn holidays(calendar: &crate::calendar::Calendar, now: Timestamp) -> Vec<Diagnostic> {
    calendar
        .warnings(now)
        .into_iter()
        .map(|w| Diagnostic::warning(&w.origin, Pos::FILE, Code::NoHolidays, w.message()))
        .collect()
}

/// `.` components removed, so that messages show the path as written.
/// The folder paths in a configuration are relative to: the file's own,
/// made absolute (symlinks and `..` resolved). A log is known by its path:
/// `./examples/logs/a.jsonl`, `examples/logs/a.jsonl` and the same from
/// another working folder must be one log, or its lines are read — and
/// their violations mailed — once per spelling.
pub(super) fn base_of(config: &Path) -> PathBuf {
    let base = config
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::canonicalize(base)
        .or_else(|_| std::path::absolute(base))
        .unwrap_or_else(|_| base.to_path_buf())
}

/// Without `.` components, and `..` taken back lexically where it follows
/// a name (the base is already canonical: `examples/../var` is `var`).
pub(super) fn tidy(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    #[test]
    fn tidy_drops_dots_and_takes_dotdot_back() {
        assert_eq!(tidy(Path::new("/a/b/./../var")), PathBuf::from("/a/var"));
        assert_eq!(tidy(Path::new("../x")), PathBuf::from("../x"));
        assert_eq!(tidy(Path::new("/a/./b")), PathBuf::from("/a/b"));
    }

    use super::*;

    #[test]
    fn missing_folders_and_logs_and_globs_matching_nothing_are_warned_about() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("complyd.yaml");
        let pos = Pos::new(3, 11, 4);
        std::fs::create_dir_all(dir.path().join("logs/2026")).unwrap();
        std::fs::write(dir.path().join("logs/2026/a.jsonl"), "").unwrap();
        assert!(watch_dir(&cfg, pos, &dir.path().join("logs")).is_none());
        let w = watch_dir(&cfg, pos, &dir.path().join("drpo")).unwrap();
        assert!(
            w.header()
                .contains(":3:11: warning[missing-path]: watched folder"),
            "{}",
            w.header()
        );
        assert!(
            w.header().ends_with("drpo does not exist"),
            "{}",
            w.header()
        );
        let p = |s: &str| dir.path().join(s).display().to_string();
        assert!(log(&cfg, pos, &p("logs/2026/a.jsonl")).is_none());
        assert!(log(&cfg, pos, &p("logs/*/*.jsonl")).is_none());
        assert!(log(&cfg, pos, &p("logs/**/*.jsonl")).is_none());
        let w = log(&cfg, pos, &p("logs/*.jsonl")).unwrap();
        assert!(w.message.contains("no file matches"), "{}", w.message);
        let w = log(&cfg, pos, &p("lgos/*.jsonl")).unwrap();
        assert!(w.message.contains("lgos does not exist"), "{}", w.message);
        let w = log(&cfg, pos, &p("logs/b.jsonl")).unwrap();
        assert!(
            w.message.ends_with("b.jsonl does not exist"),
            "{}",
            w.message
        );
    }
}
