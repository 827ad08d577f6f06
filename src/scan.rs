//! `complyd scan`: walk files and folders, check each file, report findings.

use std::path::{Path, PathBuf};

use crate::check::check_document;
use crate::extract::{Extracted, Limits, extract_bytes, extract_path};
use crate::finding::Finding;
use crate::rules::RuleSet;

#[derive(Debug, Clone)]
pub struct ScanOptions {
    pub limits: Limits,
    /// Include hidden files and folders (names starting with '.').
    pub hidden: bool,
    /// What standard input (the path `-`) is called in findings; its
    /// extension chooses the format.
    pub stdin_name: PathBuf,
}

/// The path that stands for standard input.
pub const STDIN: &str = "-";

/// Totals printed after a scan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanSummary {
    pub files_checked: usize,
    pub files_not_checked: usize,
    pub hidden_skipped: usize,
    pub findings: usize,
    /// Findings per severity: critical, high, medium, low.
    pub by_severity: [usize; 4],
}

impl ScanSummary {
    pub fn render(&self) -> String {
        let mut s = format!(
            "{} file{} checked, {} not checked; {} finding{}",
            self.files_checked,
            plural(self.files_checked),
            self.files_not_checked,
            self.findings,
            plural(self.findings)
        );
        if self.findings > 0 {
            let [c, h, m, l] = self.by_severity;
            s.push_str(&format!(" ({c} critical, {h} high, {m} medium, {l} low)"));
        }
        if self.hidden_skipped > 0 {
            s.push_str(&format!(
                "; {} hidden entr{} skipped (use --hidden to include)",
                self.hidden_skipped,
                if self.hidden_skipped == 1 { "y" } else { "ies" }
            ));
        }
        s
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            limits: Limits::default(),
            hidden: false,
            stdin_name: PathBuf::from("<stdin>"),
        }
    }
}

/// Lists the files under `paths` in a stable order, and the paths that are
/// not there (one message each). `-` (standard input) is kept as it is.
pub fn collect_files(
    paths: &[PathBuf],
    opts: &ScanOptions,
    summary: &mut ScanSummary,
) -> (Vec<PathBuf>, Vec<String>) {
    let mut files = Vec::new();
    let mut missing = Vec::new();
    for p in paths {
        if p.as_os_str() == STDIN {
            // Standard input can be read once.
            if !files.iter().any(|f: &PathBuf| f.as_os_str() == STDIN) {
                files.push(p.clone());
            }
            continue;
        }
        if !p.exists() {
            missing.push(format!("{}: no such file or directory", p.display()));
            continue;
        }
        if p.is_file() {
            files.push(p.clone());
            continue;
        }
        let hidden = &mut summary.hidden_skipped;
        let walker = walkdir::WalkDir::new(p)
            .follow_links(true)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| {
                // Hidden folders (.git, editor state) are not descended into,
                // but they are counted and the count is reported.
                let skip = e.depth() > 0
                    && !opts.hidden
                    && e.file_name().to_string_lossy().starts_with('.');
                *hidden += usize::from(skip);
                !skip
            });
        for entry in walker {
            match entry {
                Ok(e) if e.file_type().is_file() => files.push(e.into_path()),
                Ok(_) => {}
                // An unreadable folder is reported as a file that was not checked.
                Err(e) => files.push(e.path().map_or_else(|| p.clone(), Path::to_path_buf)),
            }
        }
    }
    (files, missing)
}

/// Checks one file: its findings, or one "not checked" finding with the reason.
pub fn check_file(rules: &RuleSet, path: &Path, limits: &Limits) -> Vec<Finding> {
    findings(rules, path, extract_path(path, limits))
}

fn findings(rules: &RuleSet, path: &Path, extracted: Extracted) -> Vec<Finding> {
    match extracted {
        Extracted::Checked(doc) => check_document(rules, path, &doc),
        Extracted::NotChecked { reason } => vec![Finding::not_checked(path.to_path_buf(), &reason)],
    }
}

/// Checks standard input as a file called `name`.
fn check_stdin(rules: &RuleSet, name: &Path, limits: &Limits) -> Vec<Finding> {
    use std::io::Read;
    let mut bytes = Vec::new();
    // One byte past the limit tells that it is too big.
    let read = std::io::stdin()
        .lock()
        .take(limits.max_file_bytes.saturating_add(1))
        .read_to_end(&mut bytes);
    let extracted = match read {
        Err(e) => Extracted::NotChecked {
            reason: format!("cannot read: {}", crate::rules::compile::io_reason(&e)),
        },
        // Its size is not known: only that it is past the limit.
        Ok(_) if bytes.len() as u64 > limits.max_file_bytes => Extracted::NotChecked {
            reason: format!("file is over the {}-byte limit", limits.max_file_bytes),
        },
        Ok(_) => extract_bytes(name, &bytes, limits),
    };
    findings(rules, name, extracted)
}

/// Checks every file, handing each finding to `sink` as soon as its file is done.
pub fn scan(
    rules: &RuleSet,
    files: &[PathBuf],
    opts: &ScanOptions,
    summary: &mut ScanSummary,
    sink: &mut dyn FnMut(&Finding),
) {
    for path in files {
        let findings = if path.as_os_str() == STDIN {
            check_stdin(rules, &opts.stdin_name, &opts.limits)
        } else {
            check_file(rules, path, &opts.limits)
        };
        if findings
            .iter()
            .any(|f| f.rule == crate::finding::NOT_CHECKED)
        {
            summary.files_not_checked += 1;
        } else {
            summary.files_checked += 1;
        }
        for f in &findings {
            summary.findings += 1;
            summary.by_severity[f.severity as usize] += 1;
            sink(f);
        }
    }
}
