//! Waivers: violations the compliance staff accepted on purpose, with a
//! reason, who decided, and until when. They live in `waivers.yaml` in the
//! rules directory (reviewed in version control like the rules) or are
//! added with `complyd violations waive` (kept in the database).
//!
//! ```yaml
//! waivers:
//!   - rule: absolute-terms
//!     fingerprint: 0241f2e56d02026c96724ebf850e64d8   # one violation, by content digest
//!     reason: 已取得“国家级”认证文件，法务确认可用
//!     by: wang.fang
//!     expires: 2026-12-31                              # through that day, calendar time zone
//!   - rule: mobile-number
//!     path: "**/客服话术/**"                            # a scope: files matching a glob
//!     reason: 客服话术模板中的号码为公司热线
//!     by: li.na
//! ```
//!
//! A waiver names a rule (or `*`) and exactly one of `fingerprint`, `path`
//! (a glob over the violation's file) or `subject` (a thread, account,
//! post). A waived violation is stored with status `waived` and not mailed.

use std::path::Path;

use jiff::Timestamp;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::diag::{Code, Diagnostic, Pos};

/// The file in the rules directory that holds waivers.
pub const WAIVERS_FILE: &str = "waivers.yaml";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    waivers: Vec<Spanned<RawWaiver>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWaiver {
    rule: Spanned<String>,
    #[serde(default)]
    fingerprint: Option<String>,
    #[serde(default)]
    path: Option<Spanned<String>>,
    #[serde(default)]
    subject: Option<String>,
    reason: String,
    by: String,
    #[serde(default)]
    expires: Option<Spanned<String>>,
}

/// What a waiver applies to.
#[derive(Debug, Clone)]
pub enum Scope {
    Fingerprint(String),
    Path(String, globset::GlobMatcher),
    Subject(String),
}

#[derive(Debug, Clone)]
pub struct Waiver {
    /// A rule id, or `*` for every rule.
    pub rule: String,
    pub scope: Scope,
    pub reason: String,
    pub by: String,
    /// The first instant it no longer applies.
    pub expires: Option<Timestamp>,
    /// Where it is defined: `rules/waivers.yaml:3` or `database #7`.
    pub origin: String,
}

impl Waiver {
    /// Builds a waiver; `expires` is a date (`2026-12-31`, through the end
    /// of that day in `tz`) or an RFC 3339 instant.
    pub fn new(
        rule: &str,
        scope: (&str, &str),
        reason: &str,
        by: &str,
        expires: Option<&str>,
        tz: &jiff::tz::TimeZone,
        origin: String,
    ) -> Result<Waiver, String> {
        let scope = match scope {
            ("fingerprint", v) => Scope::Fingerprint(v.to_string()),
            ("subject", v) => Scope::Subject(v.to_string()),
            ("path", v) => {
                // Violations carry absolute paths, but people write the part
                // they know (`drop/*.txt`): a glob not starting at `/` may
                // match at any depth. `*` stays within one folder, as in the
                // watch globs; `**` crosses folders.
                let full = match v.starts_with('/') || v.starts_with("**") {
                    true => v.to_string(),
                    false => format!("**/{v}"),
                };
                let m = globset::GlobBuilder::new(&full)
                    .literal_separator(true)
                    .build()
                    .map_err(|e| format!("invalid glob `{v}`: {e}"))?
                    .compile_matcher();
                Scope::Path(v.to_string(), m)
            }
            (k, _) => return Err(format!("unknown waiver scope `{k}`")),
        };
        let expires = expires.map(|e| parse_expiry(e, tz)).transpose()?;
        if reason.trim().is_empty() || by.trim().is_empty() {
            return Err("a waiver needs a reason and who decided it (`by`)".into());
        }
        Ok(Waiver {
            rule: rule.to_string(),
            scope,
            reason: reason.to_string(),
            by: by.to_string(),
            expires,
            origin,
        })
    }

    /// Whether it applies to a violation of `rule` with `fingerprint`, about
    /// `subject`, found in `paths`, at `now`.
    pub fn matches(
        &self,
        rule: &str,
        fingerprint: &str,
        subject: &str,
        paths: &[&str],
        now: Timestamp,
    ) -> bool {
        if self.expires.is_some_and(|e| now >= e) {
            return false;
        }
        if self.rule != "*" && self.rule != rule {
            return false;
        }
        match &self.scope {
            Scope::Fingerprint(f) => f == fingerprint,
            Scope::Subject(s) => s == subject,
            Scope::Path(_, m) => paths.iter().any(|p| m.is_match(p)),
        }
    }

    pub fn scope_text(&self) -> String {
        match &self.scope {
            Scope::Fingerprint(f) => format!("fingerprint {f}"),
            Scope::Subject(s) => format!("subject {s}"),
            Scope::Path(p, _) => format!("path {p}"),
        }
    }

    /// A stable key for counting uses, whatever the reason's wording.
    pub fn key(&self) -> String {
        format!("{}|{}", self.rule, self.scope_text())
    }
}

/// `2026-12-31` → the start of 2027-01-01 in `tz`; or an RFC 3339 instant.
pub fn parse_expiry(s: &str, tz: &jiff::tz::TimeZone) -> Result<Timestamp, String> {
    if let Ok(t) = s.parse::<Timestamp>() {
        return Ok(t);
    }
    let date: jiff::civil::Date = s.parse().map_err(|_| {
        format!(
            "`{s}` is not a date (2026-12-31) or a time with offset (2026-12-31T18:00:00+08:00)"
        )
    })?;
    date.tomorrow()
        .and_then(|d| tz.to_timestamp(d.to_datetime(jiff::civil::Time::midnight())))
        .map_err(|e| format!("`{s}`: {e}"))
}

/// Parses `waivers.yaml`, reporting every problem at its line. `rule_ids`
/// are the rules that exist: a waiver of an unknown rule is an error (a
/// typo would otherwise waive nothing, silently).
pub fn parse(
    path: &Path,
    src: &str,
    rule_ids: &dyn Fn(&str) -> bool,
    tz: &jiff::tz::TimeZone,
) -> Result<Vec<Waiver>, Vec<Diagnostic>> {
    let raw: RawFile = super::yaml::parse_all(path, src)?;
    let mut out = Vec::new();
    let mut diags = Vec::new();
    for w in raw.waivers {
        let pos = Pos::from(&w.referenced);
        let w = w.value;
        let err = |p: Pos, m: String| Diagnostic::new(path, p, Code::InvalidValue, m);
        if w.rule.value != "*" && !rule_ids(&w.rule.value) {
            diags.push(err(
                Pos::from(&w.rule.referenced),
                format!("no rule `{}` (use a rule id, or `*`)", w.rule.value),
            ));
            continue;
        }
        let scopes: Vec<(&str, &str)> = [
            w.fingerprint.as_deref().map(|v| ("fingerprint", v)),
            w.path.as_ref().map(|v| ("path", v.value.as_str())),
            w.subject.as_deref().map(|v| ("subject", v)),
        ]
        .into_iter()
        .flatten()
        .collect();
        if scopes.len() != 1 {
            diags.push(err(
                pos,
                "a waiver needs exactly one of `fingerprint`, `path` or `subject`".into(),
            ));
            continue;
        }
        let origin = format!("{}:{}", path.display(), pos.line);
        let expires = w.expires.as_ref().map(|e| e.value.as_str());
        match Waiver::new(
            &w.rule.value,
            scopes[0],
            &w.reason,
            &w.by,
            expires,
            tz,
            origin,
        ) {
            Ok(v) => out.push(v),
            Err(m) => {
                let at = match (&w.expires, &w.path) {
                    (Some(e), _) if m.contains(&e.value) => Pos::from(&e.referenced),
                    (_, Some(p)) if m.contains("glob") => Pos::from(&p.referenced),
                    _ => pos,
                };
                diags.push(err(at, m));
            }
        }
    }
    if diags.is_empty() {
        Ok(out)
    } else {
        Err(diags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tz() -> jiff::tz::TimeZone {
        jiff::tz::TimeZone::get("Asia/Shanghai").unwrap()
    }

    #[test]
    fn parses_scopes_and_reports_each_problem_at_its_line() {
        let src = "waivers:\n  - rule: absolute-terms\n    fingerprint: abc\n    reason: ok\n    by: wang\n    expires: 2026-12-31\n\
                   \x20 - rule: nosuch\n    subject: t1\n    reason: r\n    by: b\n\
                   \x20 - rule: '*'\n    reason: r\n    by: b\n\
                   \x20 - rule: mobile-number\n    path: '**/热线/**'\n    reason: r\n    by: b\n    expires: soon\n";
        let ids = |id: &str| id == "absolute-terms" || id == "mobile-number";
        let err = parse(Path::new("waivers.yaml"), src, &ids, &tz()).unwrap_err();
        let lines: Vec<u32> = err.iter().map(|d| d.pos.line).collect();
        assert_eq!(lines, [7, 11, 18], "{err:?}");

        let ok = "waivers:\n  - rule: absolute-terms\n    fingerprint: abc\n    reason: ok\n    by: wang\n    expires: 2026-12-31\n\
                  \x20 - rule: '*'\n    path: '**/热线/**'\n    reason: r\n    by: b\n";
        let w = parse(Path::new("waivers.yaml"), ok, &ids, &tz()).unwrap();
        let before: Timestamp = "2026-12-31T23:59:00+08:00".parse().unwrap();
        let after: Timestamp = "2027-01-01T00:00:00+08:00".parse().unwrap();
        assert!(w[0].matches("absolute-terms", "abc", "x", &[], before));
        assert!(
            !w[0].matches("absolute-terms", "abc", "x", &[], after),
            "expired"
        );
        assert!(!w[0].matches("disease-treatment", "abc", "x", &[], before));
        assert!(w[1].matches("any", "f", "s", &["drop/客服/热线/a.txt"], after));
        assert!(!w[1].matches("any", "f", "s", &["drop/a.txt"], after));
        assert_eq!(w[0].origin, "waivers.yaml:2");
    }

    /// From a new user's trial: `drop/*.txt` never matched, because stored
    /// paths are absolute; and `*` crossed folders, unlike a watch glob.
    #[test]
    fn a_path_glob_matches_the_part_of_the_path_people_write() {
        let w = |glob: &str| {
            Waiver::new("*", ("path", glob), "r", "b", None, &tz(), String::new()).unwrap()
        };
        let now = Timestamp::now();
        let hit = |w: &Waiver, p: &str| w.matches("r", "f", "s", &[p], now);
        let a = "/srv/drop/2026/a.txt";
        assert!(hit(&w("2026/*.txt"), a));
        assert!(hit(&w("drop/**/*.txt"), a));
        assert!(hit(&w("*.txt"), a));
        assert!(hit(&w("/srv/drop/2026/a.txt"), a));
        assert!(hit(&w("**/a.txt"), a));
        assert!(!hit(&w("drop/*.txt"), a), "* stays within one folder");
        assert!(!hit(&w("/drop/**"), a), "a glob from / is anchored");
        assert!(!hit(&w("rop/2026/a.txt"), a), "whole folder names only");
    }
}
