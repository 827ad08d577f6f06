//! Include/exclude globs per watched root.
//!
//! Patterns are relative to their root. A pattern without a `/` matches a
//! name at any depth (`*.tmp` also hits `drafts/a.tmp`), one with a `/` is
//! anchored at the root (`drafts/**/*.docx`). `*` never crosses a `/`.
//! A path is tested together with each of its ancestor folders, so an
//! excluded folder (`.git`) hides everything below it and an included
//! folder (`drafts`) brings in everything below it.

use std::path::{Path, PathBuf};

use globset::{Candidate, GlobBuilder, GlobSet, GlobSetBuilder};

use super::WatchRoot;

#[derive(Debug)]
struct CompiledRoot {
    path: PathBuf,
    /// `None`: every file is included.
    include: Option<GlobSet>,
    exclude: GlobSet,
}

/// The compiled include/exclude globs of every watched root.
#[derive(Debug)]
pub struct Filter {
    roots: Vec<CompiledRoot>,
}

/// Makes `path` absolute without touching the file system, so that paths
/// from notify, from the walk and from callers compare equal.
pub(super) fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn compile(root: &Path, patterns: &[String]) -> Result<GlobSet, String> {
    let mut set = GlobSetBuilder::new();
    for pat in patterns {
        let trimmed = pat.trim_start_matches('/');
        let anchored = if trimmed.contains('/') {
            trimmed.to_string()
        } else {
            format!("**/{trimmed}")
        };
        let glob = GlobBuilder::new(&anchored)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| format!("{}: bad glob `{pat}`: {}", root.display(), e.kind()))?;
        set.add(glob);
    }
    set.build()
        .map_err(|e| format!("{}: bad glob set: {e}", root.display()))
}

impl Filter {
    /// Compiles every root's globs; the error names the root and the bad glob.
    pub fn new(roots: &[WatchRoot]) -> Result<Filter, String> {
        let mut compiled = Vec::with_capacity(roots.len());
        for r in roots {
            let path = absolute(&r.path);
            let include = if r.include.is_empty() {
                None
            } else {
                Some(compile(&path, &r.include)?)
            };
            let exclude = compile(&path, &r.exclude)?;
            compiled.push(CompiledRoot {
                path,
                include,
                exclude,
            });
        }
        // Longest root first, so the innermost of nested roots decides.
        compiled.sort_by(|a, b| {
            b.path
                .components()
                .count()
                .cmp(&a.path.components().count())
        });
        Ok(Filter { roots: compiled })
    }

    /// The innermost root holding `path`, with `path` relative to it.
    fn locate<'p>(&self, path: &'p Path) -> Option<(&CompiledRoot, &'p Path)> {
        self.roots
            .iter()
            .find_map(|r| path.strip_prefix(&r.path).ok().map(|rel| (r, rel)))
    }

    /// Whether a file at `path` is to be checked: under a root, included and
    /// not excluded (nor inside an excluded folder).
    pub fn accepts(&self, path: &Path) -> bool {
        match self.locate(path) {
            Some((root, rel)) if !rel.as_os_str().is_empty() => {
                included(root, rel) && !rel.ancestors().any(|a| excluded_here(root, a))
            }
            _ => false,
        }
    }

    /// Whether `path` is outside every root, or it or one of its folders is
    /// excluded. Used for paths that may be folders, which include globs
    /// written for files would not match.
    pub fn excludes(&self, path: &Path) -> bool {
        match self.locate(path) {
            Some((root, rel)) => rel.ancestors().any(|a| excluded_here(root, a)),
            None => true,
        }
    }

    /// Whether `path` is one of the watched roots.
    pub(super) fn is_root(&self, path: &Path) -> bool {
        self.roots.iter().any(|r| r.path == path)
    }

    /// For the walk, which prunes excluded folders on the way down and so
    /// only needs to test the entry itself.
    pub(super) fn excluded_entry(&self, path: &Path) -> bool {
        match self.locate(path) {
            Some((root, rel)) => excluded_here(root, rel),
            None => true,
        }
    }

    /// For the walk, once `excluded_entry` has let the entry through.
    pub(super) fn includes_entry(&self, path: &Path) -> bool {
        match self.locate(path) {
            Some((root, rel)) if !rel.as_os_str().is_empty() => included(root, rel),
            _ => false,
        }
    }
}

fn excluded_here(root: &CompiledRoot, rel: &Path) -> bool {
    !rel.as_os_str().is_empty() && root.exclude.is_match_candidate(&Candidate::new(rel))
}

fn included(root: &CompiledRoot, rel: &Path) -> bool {
    match &root.include {
        None => true,
        Some(set) => rel
            .ancestors()
            .filter(|a| !a.as_os_str().is_empty())
            .any(|a| set.is_match_candidate(&Candidate::new(a))),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{DEFAULT_EXCLUDE, WatchRoot};
    use super::*;

    fn root(path: &str, include: &[&str], exclude: &[&str]) -> WatchRoot {
        WatchRoot {
            path: PathBuf::from(path),
            include: include.iter().map(|s| s.to_string()).collect(),
            exclude: exclude.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn default_excludes_editor_temp_and_hidden_files() {
        let f = Filter::new(&[WatchRoot::new("/drop")]).unwrap();
        for p in [
            "/drop/~$a.docx",
            "/drop/sub/~$报告.docx",
            "/drop/.~lock.a.docx#",
            "/drop/a.txt.swp",
            "/drop/x/a.tmp",
            "/drop/.hidden",
            "/drop/.git/objects/ab",
            "/drop/a.txt~",
        ] {
            assert!(!f.accepts(Path::new(p)), "{p} accepted");
        }
        for p in [
            "/drop/a.docx",
            "/drop/sub/b.post.json",
            "/drop/x.y/字幕.srt",
        ] {
            assert!(f.accepts(Path::new(p)), "{p} refused");
        }
        assert!(!f.accepts(Path::new("/elsewhere/a.docx")));
        assert!(!f.accepts(Path::new("/drop")));
        assert!(DEFAULT_EXCLUDE.contains(&".*"));
    }

    #[test]
    fn include_anchored_and_nested_roots() {
        let f = Filter::new(&[
            root("/drop", &["*.docx", "scripts/**"], &[]),
            root("/drop/inner", &[], &["*.bak"]),
        ])
        .unwrap();
        assert!(f.accepts(Path::new("/drop/a/b.docx")));
        assert!(f.accepts(Path::new("/drop/scripts/x/y.txt")));
        assert!(!f.accepts(Path::new("/drop/a/scripts/y.txt")));
        assert!(!f.accepts(Path::new("/drop/a.txt")));
        // The inner root's own rules apply inside it.
        assert!(f.accepts(Path::new("/drop/inner/a.txt")));
        assert!(!f.accepts(Path::new("/drop/inner/a.bak")));
        assert!(!f.excludes(Path::new("/drop/somedir")));
    }

    #[test]
    fn bad_glob_is_named() {
        let err = Filter::new(&[root("/drop", &["a[b"], &[])]).unwrap_err();
        assert!(err.contains("a[b"), "{err}");
    }
}
