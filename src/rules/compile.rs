//! Raw specs → validated rules (the `LowArgs → HiArgs` step).
//!
//! Each pack file is parsed in two steps: the header with the rules kept
//! opaque, then each rule on its own, so that one broken rule does not hide
//! the errors of the others. Semantic checks (ids, severities, regexes,
//! phrase files) run on everything that parsed, and all problems are
//! collected rather than returned at the first.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_saphyr::Spanned;

use super::cond::Lists;
use super::spec::{RawExample, RawPackHeader, RawRule, RawTerms};
use super::yaml;
use super::{Example, ExampleInput, Rule, RuleMeta};
use crate::diag::{Code, Diagnostic, Pos};
use crate::finding::Severity;
use crate::matcher::{MatcherBuilder, PatternError, SlotId};

/// Phrase files larger than this are refused (a 100k-entry list is ~1.5 MB).
const MAX_PHRASE_FILE: u64 = 64 << 20;

/// Compilation context handed to rule kinds.
#[derive(Debug)]
pub struct Cx<'a> {
    pub builder: &'a mut MatcherBuilder,
    pub diags: &'a mut Vec<Diagnostic>,
    /// Sources of files read (rule files and phrase files), for snippets.
    pub sources: &'a mut HashMap<PathBuf, String>,
    pub path: &'a Path,
    /// The pack's exception slot, applied to every `phrases` rule.
    pub pack_exceptions: Option<SlotId>,
    /// Named lists (lists.yaml), for conditions that refer to them.
    pub lists: &'a Lists,
    /// What loads but is probably not what the author meant.
    pub warnings: &'a mut Vec<Diagnostic>,
}

impl Cx<'_> {
    pub fn error(&mut self, pos: Pos, code: Code, message: impl Into<String>) {
        self.diags
            .push(Diagnostic::new(self.path, pos, code, message));
    }

    /// Compiles a group of phrases/regexes into a new slot. `what` names the
    /// group in messages; `at` is where an empty group is reported. Returns
    /// `None` when the group has errors (reported) or is empty.
    pub fn terms(&mut self, t: &RawTerms, what: &str, at: Pos) -> Option<SlotId> {
        let slot = self.builder.new_slot();
        let mut ok = true;
        let mut count = 0usize;
        for term in &t.terms {
            match self.builder.add_phrase(slot, &term.value) {
                Ok(()) => count += 1,
                Err(e) => {
                    ok = false;
                    self.error(pos_of(term), Code::InvalidValue, e.to_string());
                }
            }
        }
        for file in &t.files {
            match self.phrase_file(slot, file) {
                Some(n) => count += n,
                None => ok = false,
            }
        }
        for re in &t.regex {
            match self.builder.add_regex(slot, &re.value) {
                Ok(()) => {
                    count += 1;
                    if MatcherBuilder::unicode_word_boundary(&re.value) {
                        self.warnings.push(Diagnostic::warning(
                            self.path,
                            pos_of(re),
                            Code::UnicodeBoundary,
                            "`\\b` is a Unicode word boundary: Chinese characters count as word \
                             characters, so it does not hold between 号 and 6 in 卡号6222… and the \
                             number is not found; write `(?-u:\\b)` (docs/rules.md)",
                        ));
                    }
                }
                Err(e) => {
                    ok = false;
                    let code = match e {
                        PatternError::Regex(_) => Code::InvalidRegex,
                        _ => Code::InvalidValue,
                    };
                    self.error(pos_of(re), code, e.to_string());
                }
            }
        }
        if ok && count == 0 {
            self.error(
                at,
                Code::EmptyPhrases,
                format!(
                    "{what}: no phrases or regexes to look for (add `terms:`, `files:` or `regex:`)"
                ),
            );
            return None;
        }
        ok.then_some(slot)
    }

    /// Reads a phrase file (one phrase per line, `#` comments); returns the
    /// number of phrases, or `None` after reporting a problem.
    fn phrase_file(&mut self, slot: SlotId, file: &Spanned<String>) -> Option<usize> {
        let rel = Path::new(&file.value);
        let full = self.path.parent().unwrap_or(Path::new(".")).join(rel);
        let at = pos_of(file);
        let bytes = match std::fs::metadata(&full) {
            Ok(m) if m.len() > MAX_PHRASE_FILE => {
                self.error(
                    at,
                    Code::PhraseFile,
                    format!(
                        "phrase file {} is {} bytes, over the {MAX_PHRASE_FILE}-byte limit",
                        full.display(),
                        m.len()
                    ),
                );
                return None;
            }
            Ok(_) => std::fs::read(&full),
            Err(e) => Err(e),
        };
        let text = match bytes.map(String::from_utf8) {
            Ok(Ok(t)) => t,
            Ok(Err(_)) => {
                self.error(
                    at,
                    Code::PhraseFile,
                    format!(
                        "phrase file {} is not valid UTF-8; save it as UTF-8",
                        full.display()
                    ),
                );
                return None;
            }
            Err(e) => {
                self.error(
                    at,
                    Code::PhraseFile,
                    format!(
                        "cannot read phrase file {}: {}",
                        full.display(),
                        io_reason(&e)
                    ),
                );
                return None;
            }
        };
        let mut count = 0;
        let mut ok = true;
        for (n, line) in text.lines().enumerate() {
            let phrase = line.trim();
            if phrase.is_empty() || phrase.starts_with('#') {
                continue;
            }
            match self.builder.add_phrase(slot, phrase) {
                Ok(()) => count += 1,
                Err(e) => {
                    ok = false;
                    let col = line
                        .find(phrase)
                        .map_or(1, |b| line[..b].chars().count() + 1);
                    self.diags.push(Diagnostic::new(
                        &full,
                        Pos::new(n as u32 + 1, col as u32, phrase.chars().count() as u32),
                        Code::InvalidValue,
                        e.to_string(),
                    ));
                }
            }
        }
        if ok && count == 0 {
            self.error(
                at,
                Code::EmptyPhrases,
                format!("phrase file {} holds no phrases", full.display()),
            );
            return None;
        }
        self.sources.insert(full, text);
        ok.then_some(count)
    }
}

pub fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    }
}

pub fn pos_of<T>(s: &Spanned<T>) -> Pos {
    Pos::from(&s.referenced)
}

/// What loading accumulates across all pack files.
#[derive(Debug, Default)]
pub struct Loading {
    pub builder: MatcherBuilder,
    pub diags: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
    /// Sources of files read (rule files and phrase files), for snippets.
    pub sources: HashMap<PathBuf, String>,
    pub rules: Vec<Rule>,
    /// Every parsed rule's id and place, also of rules with other errors.
    pub ids: Vec<(String, PathBuf, Pos)>,
    pub lists: Lists,
}

/// Parses and compiles one pack file.
pub fn compile_pack(path: &Path, src: &str, acc: &mut Loading) {
    let header: RawPackHeader = match yaml::parse_all(path, src) {
        Ok(h) => h,
        Err(d) => {
            acc.diags.extend(d);
            return;
        }
    };
    let pack_name = header.pack.as_ref().map_or_else(
        || {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        },
        |p| p.value.clone(),
    );
    let mut cx = Cx {
        builder: &mut acc.builder,
        diags: &mut acc.diags,
        sources: &mut acc.sources,
        path,
        pack_exceptions: None,
        lists: &acc.lists,
        warnings: &mut acc.warnings,
    };
    if let Some(ex) = &header.exceptions {
        cx.pack_exceptions = cx.terms(&ex.value, "pack exceptions", pos_of(ex));
    }
    for raw in parse_rules(path, src, &header, cx.diags) {
        acc.ids
            .push((raw.id.value.clone(), path.to_path_buf(), pos_of(&raw.id)));
        if let Some(rule) = compile_rule(&mut cx, &pack_name, raw) {
            acc.rules.push(rule);
        }
    }
}

/// Parses each rule of a pack separately (see the module docs). Falls back to
/// one parse of the whole file when the rules are not in block style.
fn parse_rules(
    path: &Path,
    src: &str,
    header: &RawPackHeader,
    diags: &mut Vec<Diagnostic>,
) -> Vec<RawRule> {
    let lines: Vec<usize> = line_starts(src);
    let mut out = Vec::new();
    let block_style = header.rules.iter().all(|r| {
        let l = &r.referenced;
        let (Some(off), line) = (l.span().byte_offset(), l.line() as usize) else {
            return false;
        };
        line >= 1 && line <= lines.len() && {
            let start = lines[line - 1];
            src[start..off as usize]
                .chars()
                .all(|c| c == ' ' || c == '-')
        }
    });
    if !block_style {
        // Flow-style rule lists: parsed whole (each misshapen entry is
        // still reported, see `yaml::parse_all`).
        #[derive(serde::Deserialize)]
        struct Flow {
            #[serde(default)]
            rules: Vec<RawRule>,
        }
        match yaml::parse_all::<Flow>(path, src) {
            Ok(f) => return f.rules,
            Err(d) => {
                diags.extend(d);
                return Vec::new();
            }
        }
    }
    for r in &header.rules {
        let line = r.referenced.line() as usize;
        let col = r.referenced.column() as usize;
        let off = r.referenced.span().byte_offset().unwrap_or(0) as usize;
        let end = rule_end(src, &lines, line, col);
        // Keep line and column numbers identical to the original file.
        let mut sub = "\n".repeat(line - 1);
        sub.push_str(&" ".repeat(col - 1));
        sub.push_str(&src[off..end]);
        match yaml::parse_all::<RawRule>(path, &sub) {
            Ok(rule) => out.push(rule),
            Err(ds) => {
                for mut d in ds {
                    // serde notices a missing key at the end of the
                    // mapping; the rule's first line is the better place.
                    if d.code == Code::MissingKey {
                        d.pos = Pos::new(line as u32, col as u32, 1);
                    }
                    diags.push(d);
                }
            }
        }
    }
    out
}

fn line_starts(src: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(src.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

/// Byte offset where the rule starting at (line, col) ends: at the first later
/// line with content indented less than the rule's keys.
fn rule_end(src: &str, lines: &[usize], line: usize, col: usize) -> usize {
    for &start in lines.iter().skip(line) {
        let text = src[start..].split('\n').next().unwrap_or("");
        let trimmed = text.trim_start_matches(' ');
        if trimmed.trim().is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if text.len() - trimmed.len() < col - 1 {
            return start;
        }
    }
    src.len()
}

fn compile_rule(cx: &mut Cx<'_>, pack: &str, raw: RawRule) -> Option<Rule> {
    let mut ok = true;
    let id = raw.id.value.clone();
    if !is_kebab(&id) {
        ok = false;
        cx.error(
            pos_of(&raw.id),
            Code::InvalidValue,
            format!("rule id `{id}` must be kebab-case: lowercase letters, digits and single hyphens (e.g. `absolute-terms`)"),
        );
    }
    let severity = Severity::parse(&raw.severity.value);
    if severity.is_none() {
        ok = false;
        cx.error(
            pos_of(&raw.severity),
            Code::InvalidValue,
            format!(
                "unknown severity `{}`; expected one of: {}",
                raw.severity.value,
                Severity::NAMES.join(", ")
            ),
        );
    }
    if raw.message.value.trim().is_empty() {
        ok = false;
        cx.error(
            pos_of(&raw.message),
            Code::InvalidValue,
            "`message` is empty",
        );
    }
    let clause_pos = pos_of(&raw.clause);
    let clause = raw.clause.value.into_vec();
    if clause.iter().all(|c| c.trim().is_empty()) {
        ok = false;
        cx.error(
            clause_pos,
            Code::InvalidValue,
            "`clause` is empty: name the regulation clause or law article",
        );
    }
    let check_pos = pos_of(&raw.check);
    let check = raw.check.value.compile(cx, check_pos);
    let (flag, pass) = raw.examples.map_or((vec![], vec![]), |e| (e.flag, e.pass));
    let example = |s: Spanned<RawExample>| Example {
        pos: pos_of(&s),
        input: match s.value {
            RawExample::Text(t) => ExampleInput::Text(t),
            RawExample::Events(e) => ExampleInput::Events {
                lines: e.events.iter().map(|v| v.to_string()).collect(),
                now: e.now,
            },
        },
    };
    Some(Rule {
        meta: RuleMeta {
            id,
            pack: pack.to_string(),
            severity: severity?,
            message: raw.message.value,
            message_en: raw.message_en,
            clause,
            tags: raw.tags.into_iter().map(|t| t.value).collect(),
            suggestion: raw.suggestion,
            suggestion_en: raw.suggestion_en,
            path: cx.path.to_path_buf(),
            pos: pos_of(&raw.id),
        },
        check: check.filter(|_| ok)?,
        flag: flag.into_iter().map(example).collect(),
        pass: pass.into_iter().map(example).collect(),
    })
}

fn is_kebab(s: &str) -> bool {
    !s.is_empty()
        && s.split('-').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kebab_ids() {
        assert!(is_kebab("absolute-terms"));
        assert!(is_kebab("art9-1"));
        assert!(!is_kebab("Absolute"));
        assert!(!is_kebab("a--b"));
        assert!(!is_kebab("-a"));
        assert!(!is_kebab("a_b"));
        assert!(!is_kebab(""));
    }

    #[test]
    fn rule_end_stops_at_dedent() {
        let src = "rules:\n  - id: a\n    x: 1\n\n    # c\n  - id: b\nother: 1\n";
        let lines = line_starts(src);
        let end = rule_end(src, &lines, 2, 5);
        assert_eq!(&src[end..], "  - id: b\nother: 1\n");
        let end = rule_end(src, &lines, 6, 5);
        assert_eq!(&src[end..], "other: 1\n");
    }

    /// `\b` loads (it is a valid regex) with a warning at its line.
    #[test]
    fn a_unicode_word_boundary_is_a_warning_at_its_regex() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("p.yaml"),
            "rules:\n  - id: card\n    severity: high\n    message: 卡号\n    clause: \"5.3\"\n    \
             check:\n      phrases:\n        regex: ['\\b\\d{16}\\b', '(?-u:\\b)\\d{18}(?-u:\\b)']\n",
        )
        .unwrap();
        let set = crate::rules::load(dir.path()).unwrap();
        let at: Vec<(u32, u32, Code)> = set
            .warnings
            .iter()
            .map(|d| (d.pos.line, d.pos.column, d.code))
            .collect();
        assert_eq!(at, [(8, 17, Code::UnicodeBoundary)]);
        assert!(
            set.render_warnings(false)
                .contains("warning[unicode-boundary]")
        );
    }
}
