//! Safe YAML parsing for rule files, and YAML errors as diagnostics.
//!
//! Rule files come from people, and may come from anywhere: parsing runs under
//! explicit budgets (alias expansion, nesting, node count) so that a
//! billion-laughs file is an error in microseconds, and duplicate keys are
//! errors rather than silently resolved.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde_saphyr::{Budget, DuplicateKeyPolicy, Error, Options, options::AliasLimits};

use crate::diag::{Code, Diagnostic, Pos};

/// Budgets sized for rule files: big phrase lists belong in `files:`, so a
/// pack stays small.
pub fn options() -> Options {
    let mut budget = Budget::default();
    budget.max_nodes = 200_000;
    budget.max_depth = 32;
    budget.max_aliases = 2_000;
    budget.max_anchors = 2_000;
    budget.max_events = 1_000_000;
    budget.max_total_scalar_bytes = 32 << 20;
    let mut opts = Options::default();
    opts.budget = Some(budget);
    let mut alias = AliasLimits::default();
    alias.max_total_replayed_events = 20_000;
    alias.max_replay_stack_depth = 16;
    alias.max_alias_expansions_per_anchor = 1_000;
    opts.alias_limits = alias;
    opts.duplicate_keys = DuplicateKeyPolicy::Error;
    opts.with_snippet = false;
    opts
}

pub fn parse<T: DeserializeOwned>(path: &Path, src: &str) -> Result<T, Diagnostic> {
    serde_saphyr::from_str_with_options(src, options()).map_err(|e| to_diagnostic(path, &e))
}

/// Parses `src` as `T` and reports every misshapen key, not only the first
/// (serde stops at the first). After an unknown key, a value of the wrong
/// type or a duplicate key, the entry holding it — its line from the key
/// (or the list item's `-`) and the lines indented under it — is blanked
/// out, positions kept, and the file parsed again. A syntax error or the
/// safety limits end the search; once something was blanked, so does a
/// missing required key or a syntax error, unreported (it may be one that
/// was blanked out).
pub fn parse_all<T: DeserializeOwned>(path: &Path, src: &str) -> Result<T, Vec<Diagnostic>> {
    match parse_recovering(path, src) {
        (Some(v), d) if d.is_empty() => Ok(v),
        (_, d) => Err(d),
    }
}

/// As [`parse_all`], and the value read once the misshapen entries were
/// blanked out (if it then reads), so that what is in it can be checked
/// in the same run.
pub fn parse_recovering<T: DeserializeOwned>(
    path: &Path,
    src: &str,
) -> (Option<T>, Vec<Diagnostic>) {
    const ROUNDS: usize = 50;
    let mut text = std::borrow::Cow::Borrowed(src);
    let mut diags: Vec<Diagnostic> = Vec::new();
    let mut blanked: Vec<(usize, usize)> = Vec::new();
    for _ in 0..ROUNDS {
        let d = match parse::<T>(path, &text) {
            Ok(v) => return (Some(v), diags),
            Err(d) => d,
        };
        let recoverable = matches!(
            d.code,
            Code::UnknownKey
                | Code::UnknownKind
                | Code::WrongType
                | Code::InvalidValue
                | Code::DuplicateKey
        );
        // Once something was blanked, a missing key or a syntax error (an
        // empty document) may be its doing, and so may an error in an entry
        // that held a blanked one (`check:` left empty): the search ends
        // there, unreported. So it does where blanking removed nothing.
        let line = owner(&text, d.pos.line as usize, d.pos.column as usize, d.code);
        if !blanked.is_empty() {
            let around = entry(&text, line).map_or((line, line), |(a, b, _)| (a, b));
            let caused = blanked.iter().any(|&(a, b)| a <= around.1 && around.0 <= b);
            if !recoverable || caused {
                break;
            }
        }
        diags.push(d);
        if !recoverable {
            break;
        }
        match blank_entry(text.to_mut(), line) {
            Some(lines) => blanked.push(lines),
            None => break,
        }
    }
    (None, diags)
}

/// The lines (1-based, inclusive) of the entry that starts on `line`, and
/// the byte offset of its first character: its line, and the following
/// lines indented further (or empty). `None` for an empty line.
fn entry(text: &str, line: usize) -> Option<(usize, usize, usize)> {
    let starts: Vec<usize> = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let start = *starts.get(line.checked_sub(1)?)?;
    let line_of = |at: usize| &text[at..text[at..].find('\n').map_or(text.len(), |e| at + e)];
    let first = line_of(start);
    if first.trim().is_empty() {
        return None;
    }
    let indent = first.len() - first.trim_start_matches(' ').len();
    // A key whose value is below it may hold a block list at its own
    // indentation (`key:` then `- item` lines).
    let key = first.trim_end().ends_with(':') && !first.trim_start().starts_with("- ");
    let mut last = line;
    for (i, &next) in starts.iter().enumerate().skip(line) {
        let l = line_of(next);
        let trimmed = l.trim_start_matches(' ');
        let at = l.len() - trimmed.len();
        let list_item = key && at == indent && trimmed.starts_with("- ");
        if !trimmed.trim().is_empty() && at <= indent && !list_item {
            break;
        }
        last = i + 1;
    }
    Some((line, last, start + indent))
}

/// The line of the entry an error at (`line`, `col`) belongs to: its own,
/// except for a value of the wrong shape that starts its line — a block
/// list or mapping where a text or a number goes, or a mapping where a
/// list goes (a forgotten `-`): that is the value of the key above, and
/// the whole of it is one mistake.
fn owner(text: &str, line: usize, col: usize, code: Code) -> usize {
    let lines: Vec<&str> = text.split('\n').collect();
    let Some(l) = line.checked_sub(1).and_then(|i| lines.get(i)) else {
        return line;
    };
    let indent = l.len() - l.trim_start_matches(' ').len();
    let item = l.trim_start().starts_with("- ");
    // Where the error points: the start of the line, or of its first
    // list item (serde reports a list by its first item).
    let starts_line = col == indent + 1 || (item && col == indent + 3);
    if code != Code::WrongType || !starts_line {
        return line;
    }
    // Only the block's first line: an error further down is its own item.
    for p in (1..line).rev() {
        let above = lines[p - 1];
        let t = above.trim_start_matches(' ');
        if t.trim().is_empty() || t.starts_with('#') {
            continue;
        }
        let pi = above.len() - t.len();
        // A key with its value on the lines below; a block list may sit
        // at the key's own indentation.
        let key = t.trim_end().ends_with(':');
        if key && (pi < indent || (pi == indent && item)) {
            return p;
        }
        break;
    }
    line
}

/// Blanks the entry that starts on `line` (see [`entry`]): its lines
/// become empty, line breaks kept, so the lines after it keep their
/// numbers (and no block scalar before it takes them for its own).
/// Returns the lines blanked.
fn blank_entry(text: &mut String, line: usize) -> Option<(usize, usize)> {
    let (first, last, _) = entry(text, line)?;
    let starts: Vec<usize> = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let from = starts[first - 1];
    let end = starts.get(last).map_or(text.len(), |next| next - 1);
    let blank: String = text[from..end]
        .chars()
        .filter(|&c| c == '\n' || c == '\r')
        .collect();
    text.replace_range(from..end, &blank);
    Some((first, last))
}

/// Turns a YAML error into a diagnostic with a stable code and a message
/// written for rule authors.
pub fn to_diagnostic(path: &Path, err: &Error) -> Diagnostic {
    // Report at the use site of an alias, but classify by the original error.
    let pos = err.location().map_or(Pos::FILE, |l| Pos::from(&l));
    let mut err = err;
    while let Error::AliasError { error, .. } | Error::WithSnippet { error, .. } = err {
        err = error;
    }
    let (code, message) = match err {
        Error::DuplicateMappingKey { key, .. } => (
            Code::DuplicateKey,
            match key {
                Some(k) => format!("duplicate key `{k}`: each key may appear only once here"),
                None => "duplicate key: each key may appear only once here".to_string(),
            },
        ),
        Error::SerdeUnknownField {
            field, expected, ..
        } => (
            Code::UnknownKey,
            unknown(&format!("key `{field}`"), field, expected),
        ),
        Error::SerdeUnknownVariant {
            variant, expected, ..
        } => (
            Code::UnknownKind,
            unknown(&format!("rule kind `{variant}`"), variant, expected),
        ),
        Error::SerdeMissingField { field, .. } => {
            (Code::MissingKey, format!("missing required key `{field}`"))
        }
        Error::ExpectedMappingEndAfterEnumVariantValue { .. } => (
            Code::InvalidValue,
            "`check:` must hold exactly one rule kind".to_string(),
        ),
        Error::SerdeInvalidType {
            unexpected,
            expected,
            ..
        }
        | Error::SerdeInvalidValue {
            unexpected,
            expected,
            ..
        } => (
            Code::WrongType,
            format!("expected {expected}, found {unexpected}"),
        ),
        Error::Budget { .. }
        | Error::AliasReplayLimitExceeded { .. }
        | Error::AliasExpansionLimitExceeded { .. }
        | Error::AliasReplayStackDepthExceeded { .. }
        | Error::AliasReplayCounterOverflow { .. } => (
            Code::YamlLimits,
            format!(
                "the file exceeds the safety limits for rule files ({}): anchors and aliases \
                 expand too far, the nesting is too deep, or it is too large; put long phrase \
                 lists in `files:`",
                strip_location(&err.to_string())
            ),
        ),
        Error::Unexpected { expected, .. } => (Code::WrongType, expected_shape(expected)),
        Error::InvalidScalar { .. }
        | Error::NullIntoString { .. }
        | Error::SerdeInvalidLength { .. } => (
            Code::WrongType,
            plain_types(&strip_location(&err.to_string())),
        ),
        other => (Code::YamlSyntax, strip_location(&other.to_string())),
    };
    Diagnostic::new(path, pos, code, message)
}

/// Rust's type names (`invalid u32`) in words people who edit YAML use.
fn plain_types(msg: &str) -> String {
    let ty = msg.strip_prefix("invalid ").unwrap_or("");
    let what = match ty {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number such as 3",
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number",
        "f32" | "f64" => "a number",
        "bool" => "true or false",
        _ => return msg.to_string(),
    };
    format!("expected {what} here")
}

/// Says what shape was expected in words rule authors use.
fn expected_shape(expected: &str) -> String {
    let what = match expected {
        "sequence start" => "a list (`[a, b]`, or one `- item` per line)",
        "mapping start" => "a mapping (`key: value` lines)",
        "string scalar" => "a text value",
        other => other,
    };
    format!("expected {what} here")
}

fn unknown(what: &str, got: &str, expected: &[&str]) -> String {
    let mut msg = format!("unknown {what}; expected one of: {}", expected.join(", "));
    if let Some(best) = expected
        .iter()
        .map(|e| (edit_distance(got, e), e))
        .filter(|&(d, _)| d <= 2)
        .min()
    {
        msg.push_str(&format!(" (did you mean `{}`?)", best.1));
    }
    msg
}

fn strip_location(s: &str) -> String {
    let s = s.strip_prefix("error: ").unwrap_or(s);
    let s = s.lines().next().unwrap_or(s);
    // "line 2 column 3: msg" (with snippet) or "msg at line 2, column 3".
    let s = match s.split_once(": ") {
        Some((head, rest)) if head.starts_with("line ") => rest,
        _ => s,
    };
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s.to_string(),
    }
}

/// Levenshtein distance in characters, for "did you mean" suggestions.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {

    #[test]
    fn rust_type_names_become_plain_words() {
        assert_eq!(
            plain_types("invalid u32"),
            "expected a whole number such as 3 here"
        );
        assert_eq!(plain_types("invalid bool"), "expected true or false here");
        assert_eq!(plain_types("something else"), "something else");
    }

    use super::*;
    use std::collections::BTreeMap;
    use std::time::{Duration, Instant};

    #[test]
    fn alias_bomb_fails_fast() {
        let mut src = String::from("a: &a [x,x,x,x,x,x,x,x,x]\n");
        for (prev, name) in ["a", "b", "c", "d", "e", "f", "g", "h"]
            .iter()
            .zip(["b", "c", "d", "e", "f", "g", "h", "i"])
        {
            let refs = vec![format!("*{prev}"); 9].join(",");
            src.push_str(&format!("{name}: &{name} [{refs}]\n"));
        }
        let t = Instant::now();
        let err = parse::<BTreeMap<String, serde::de::IgnoredAny>>(Path::new("bomb.yaml"), &src)
            .unwrap_err();
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
        assert_eq!(err.code, Code::YamlLimits, "{err:?}");
    }

    #[test]
    fn deep_nesting_fails() {
        let src = format!("a: {}{}\n", "[".repeat(10_000), "]".repeat(10_000));
        let err = parse::<BTreeMap<String, serde::de::IgnoredAny>>(Path::new("deep.yaml"), &src)
            .unwrap_err();
        assert!(
            matches!(err.code, Code::YamlLimits | Code::YamlSyntax),
            "{err:?}"
        );
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Shape {
        name: String,
        #[serde(default)]
        count: Option<u32>,
        #[serde(default)]
        items: Vec<Item>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        path: String,
        #[serde(default)]
        deep: Option<u32>,
    }

    #[test]
    fn every_misshapen_key_is_reported_in_one_run() {
        let src = "name: a\ncuont: 3\ncount: x\nitems:\n  - path: p\n    deep: [1]\n  - path: q\n    dep: 2\n  - path: r\nextra:\n  nested: 1\n";
        let got = parse_all::<Shape>(Path::new("c.yaml"), src).unwrap_err();
        let at: Vec<(u32, Code)> = got.iter().map(|d| (d.pos.line, d.code)).collect();
        assert_eq!(
            at,
            [
                (2, Code::UnknownKey),
                (3, Code::WrongType),
                (6, Code::WrongType),
                (8, Code::UnknownKey),
                (10, Code::UnknownKey),
            ],
            "{got:#?}"
        );
        assert!(
            got[0].message.contains("did you mean `count`"),
            "{}",
            got[0].message
        );
    }

    #[test]
    fn a_missing_key_is_reported_unless_blanking_may_have_caused_it() {
        let missing = parse_all::<Shape>(Path::new("c.yaml"), "count: 1\n").unwrap_err();
        assert_eq!(missing.len(), 1);
        assert_eq!(missing[0].code, Code::MissingKey);
        // `name: [x]` blanked out leaves `name` missing: not reported twice.
        let blanked = parse_all::<Shape>(Path::new("c.yaml"), "name: [x]\n").unwrap_err();
        assert_eq!(blanked.len(), 1, "{blanked:#?}");
        assert_eq!(blanked[0].code, Code::WrongType);
        // The list left empty by blanking its one item is not an error.
        let emptied = parse_all::<Shape>(Path::new("c.yaml"), "name: a\nitems:\n  - path: [x]\n")
            .unwrap_err();
        assert_eq!(emptied.len(), 1, "{emptied:#?}");
        assert_eq!(emptied[0].pos.line, 3);
        let ok = parse_all::<Shape>(Path::new("c.yaml"), "name: a\ncount: 2\n").unwrap();
        assert_eq!(ok.count, Some(2));
    }

    #[test]
    fn suggests_close_keys() {
        assert_eq!(edit_distance("chek", "check"), 1);
        assert!(unknown("key `chek`", "chek", &["id", "check"]).contains("did you mean `check`"));
    }
}

#[cfg(test)]
mod recovery {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct S {
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        count: Option<u32>,
    }

    /// One value of the wrong shape (a block list or mapping where a number
    /// goes) is one mistake: blanking only its first item reports the next
    /// item, and the next, as new errors.
    #[test]
    fn a_wrong_block_value_is_one_error() {
        for src in [
            "count:\n  - 1\n  - 2\n  - 3\n",
            "count:\n- 1\n- 2\n",
            "count:\n  a: 1\n  b: 2\n",
        ] {
            let (_, d) = parse_recovering::<S>(Path::new("c.yaml"), src);
            assert_eq!(d.len(), 1, "{src:?}: {d:#?}");
        }
    }

    /// Blanked lines are spaces: after a block scalar they are more
    /// indented than it, so they become part of its value.
    #[test]
    fn blanking_does_not_change_a_block_scalar_before_it() {
        let (v, d) = parse_recovering::<S>(
            Path::new("c.yaml"),
            "name: >\n  folded\n  text\ncount: [x]\n",
        );
        assert_eq!(d.len(), 1);
        assert_eq!(v.unwrap().name.as_deref(), Some("folded text\n"));
    }
}
