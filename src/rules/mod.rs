//! Rule packs: YAML files in a rules directory, compiled into one [`RuleSet`].
//!
//! The format is documented in docs/rules.md. Loading reports every problem
//! of every file (see [`LoadError`]); a rule set is only built when there is
//! none.

pub mod compile;
pub mod cond;
pub mod kinds;
pub mod spec;
pub mod validators;
pub mod waivers;
pub mod yaml;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::diag::{Code, Diagnostic, Pos};
use crate::finding::Severity;
use crate::matcher::Matcher;
pub use kinds::CompiledCheck;

/// What every rule declares besides its check.
#[derive(Debug, Clone)]
pub struct RuleMeta {
    pub id: String,
    pub pack: String,
    pub severity: Severity,
    pub message: String,
    pub message_en: Option<String>,
    pub clause: Vec<String>,
    pub tags: Vec<String>,
    pub suggestion: Option<String>,
    pub suggestion_en: Option<String>,
    /// Where the rule is defined (its `id`).
    pub path: PathBuf,
    pub pos: Pos,
}

/// An example of a rule, with where it is written.
#[derive(Debug, Clone)]
pub struct Example {
    pub input: ExampleInput,
    pub pos: Pos,
}

#[derive(Debug, Clone)]
pub enum ExampleInput {
    Text(String),
    /// Log lines (JSON) and the virtual clock at the end.
    Events {
        lines: Vec<String>,
        now: String,
    },
}

#[derive(Debug)]
pub struct Rule {
    pub meta: RuleMeta,
    pub check: CompiledCheck,
    /// Texts the rule must flag / must let pass.
    pub flag: Vec<Example>,
    pub pass: Vec<Example>,
}

/// All rules of all packs, with the one matcher they share.
#[derive(Debug)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
    pub matcher: Matcher,
    /// The pack files loaded, in order.
    pub files: Vec<PathBuf>,
    /// Named lists from lists.yaml (empty when there is none).
    pub lists: cond::Lists,
    /// Waivers from waivers.yaml (empty when there is none).
    pub waivers: Vec<waivers::Waiver>,
    /// A digest of every file read (packs, lists, phrase files, waivers):
    /// the daemon re-checks files last checked under other rules.
    pub digest: String,
    /// What loads but is probably not what the author meant.
    pub warnings: Vec<Diagnostic>,
}

impl RuleSet {
    /// The warnings, each with its snippet (`complyd check`, `rules validate`).
    pub fn render_warnings(&self, color: bool) -> String {
        crate::diag::render_reading_files(&self.warnings, color)
    }
}

/// Every problem found while loading, with the sources to show snippets.
#[derive(Debug)]
pub struct LoadError {
    pub diagnostics: Vec<Diagnostic>,
    pub sources: HashMap<PathBuf, String>,
}

impl LoadError {
    pub fn render(&self, color: bool) -> String {
        self.render_as(color, "rule files")
    }

    /// Renders, naming what was loaded in the last line ("rule files").
    pub fn render_as(&self, color: bool, what: &str) -> String {
        let mut out = String::new();
        for d in &self.diagnostics {
            out.push_str(&d.render(self.sources.get(&d.path).map(String::as_str), color));
        }
        let n = self.diagnostics.len();
        out.push_str(&format!(
            "{n} error{} in {what}\n",
            if n == 1 { "" } else { "s" }
        ));
        out
    }
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render(false))
    }
}

impl std::error::Error for LoadError {}

/// Rule pack files of a directory (`*.yaml`, `*.yml`, sorted by name), or
/// the file itself when `path` is a file.
pub fn pack_files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path)? {
        let p = entry?.path();
        let is_yaml = p.extension().is_some_and(|e| e == "yaml" || e == "yml");
        let reserved = p
            .file_name()
            .is_some_and(|n| n == cond::LISTS_FILE || n == waivers::WAIVERS_FILE);
        if is_yaml && !reserved && p.is_file() {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

/// Loads and compiles every pack under `path` (a directory or one file).
pub fn load(path: &Path) -> Result<RuleSet, LoadError> {
    let mut acc = compile::Loading::default();
    let unreadable = |p: &Path, msg: String| Diagnostic::new(p, Pos::FILE, Code::Unreadable, msg);
    let files = match pack_files(path) {
        Ok(f) => f,
        Err(e) => {
            let msg = format!(
                "cannot read the rules directory: {}",
                compile::io_reason(&e)
            );
            return Err(LoadError {
                diagnostics: vec![unreadable(path, msg)],
                sources: acc.sources,
            });
        }
    };
    if files.is_empty() {
        let msg = "no rule packs (*.yaml) found here".to_string();
        acc.diags.push(unreadable(path, msg));
    }
    // Named lists first: conditions in the packs refer to them.
    let lists_path = if path.is_dir() {
        path.join(cond::LISTS_FILE)
    } else {
        path.with_file_name(cond::LISTS_FILE)
    };
    if let Ok(src) = std::fs::read_to_string(&lists_path) {
        match cond::Lists::parse(&lists_path, &src) {
            Ok(l) => acc.lists = l,
            Err(d) => acc.diags.push(d),
        }
        acc.sources.insert(lists_path, src);
    }
    for file in &files {
        let src = match std::fs::read(file).map(String::from_utf8) {
            Ok(Ok(s)) => s,
            Ok(Err(_)) => {
                let msg = "not valid UTF-8; save rule files as UTF-8".to_string();
                acc.diags.push(unreadable(file, msg));
                continue;
            }
            Err(e) => {
                let msg = format!("cannot read: {}", compile::io_reason(&e));
                acc.diags.push(unreadable(file, msg));
                continue;
            }
        };
        compile::compile_pack(file, &src, &mut acc);
        acc.sources.insert(file.clone(), src);
    }
    check_unique_ids(&acc.ids, &mut acc.diags);
    // Waivers last: they must name rules that exist.
    let waivers_path = if path.is_dir() {
        path.join(waivers::WAIVERS_FILE)
    } else {
        path.with_file_name(waivers::WAIVERS_FILE)
    };
    let mut waivers = Vec::new();
    if let Ok(src) = std::fs::read_to_string(&waivers_path) {
        let ids: std::collections::HashSet<&str> =
            acc.ids.iter().map(|(id, _, _)| id.as_str()).collect();
        let tz = jiff::tz::TimeZone::get(crate::calendar::DEFAULT_TIME_ZONE)
            .unwrap_or(jiff::tz::TimeZone::UTC);
        match waivers::parse(&waivers_path, &src, &|id| ids.contains(id), &tz) {
            Ok(w) => waivers = w,
            Err(d) => acc.diags.extend(d),
        }
        acc.sources.insert(waivers_path, src);
    }
    if !acc.diags.is_empty() {
        // Files in load order, then by position: the order people read them.
        let order: HashMap<&PathBuf, usize> =
            files.iter().enumerate().map(|(i, f)| (f, i)).collect();
        acc.diags.sort_by_key(|d| {
            let file = order.get(&d.path).copied().unwrap_or(usize::MAX);
            (file, d.path.clone(), d.pos.line, d.pos.column)
        });
        return Err(LoadError {
            diagnostics: acc.diags,
            sources: acc.sources,
        });
    }
    let digest = {
        use sha2::Digest;
        let mut sources: Vec<_> = acc.sources.iter().collect();
        sources.sort();
        let mut h = sha2::Sha256::new();
        for (p, src) in sources {
            h.update(p.to_string_lossy().as_bytes());
            h.update([0]);
            h.update(src.as_bytes());
            h.update([0]);
        }
        h.finalize()
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    Ok(RuleSet {
        digest,
        rules: acc.rules,
        matcher: acc.builder.build(),
        files,
        lists: acc.lists,
        waivers,
        warnings: acc.warnings,
    })
}

fn check_unique_ids(ids: &[(String, PathBuf, Pos)], diags: &mut Vec<Diagnostic>) {
    let mut seen: HashMap<&str, (&PathBuf, Pos)> = HashMap::new();
    for (id, path, pos) in ids {
        if let Some((first_path, first)) = seen.get(id.as_str()) {
            diags.push(
                Diagnostic::new(
                    path,
                    *pos,
                    Code::DuplicateId,
                    format!("rule id `{id}` is already used"),
                )
                .with_note(format!(
                    "first defined at {}:{}:{}",
                    first_path.display(),
                    first.line,
                    first.column
                )),
            );
        } else {
            seen.insert(id, (path, *pos));
        }
    }
}
