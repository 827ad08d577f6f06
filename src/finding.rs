//! What a check reports, and how it is printed.

use std::io::{self, Write};
use std::path::PathBuf;

use serde::Serialize;

/// How bad a finding is. The Chinese tiers used by the compliance department:
/// `critical` = 禁用 (must not be published), `high` and `medium` = 敏感
/// (needs review before publishing), `low` = 提示 (for information; e.g.
/// routed to customer service).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
}

impl Severity {
    pub const NAMES: &'static [&'static str] = &["critical", "high", "medium", "low"];

    pub fn parse(s: &str) -> Option<Severity> {
        match s {
            "critical" => Some(Severity::Critical),
            "high" => Some(Severity::High),
            "medium" => Some(Severity::Medium),
            "low" => Some(Severity::Low),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
        }
    }

    /// The compliance department's tier name.
    pub fn tier(self) -> &'static str {
        match self {
            Severity::Critical => "禁用",
            Severity::High | Severity::Medium => "敏感",
            Severity::Low => "提示",
        }
    }
}

/// One finding in one file. Lines and columns are 1-based and count
/// characters; `end_column` is exclusive (the column just after the match).
/// Byte offsets index the decoded text of the unit the match is in (the whole
/// file for plain text and Markdown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub rule: String,
    pub severity: Severity,
    pub tier: &'static str,
    pub path: PathBuf,
    pub line: u32,
    pub column: u32,
    pub end_line: u32,
    pub end_column: u32,
    pub byte_start: usize,
    pub byte_end: usize,
    pub matched: String,
    pub message: String,
    /// The rule's English message, for English mail (not part of the
    /// scan output).
    #[serde(skip)]
    pub message_en: Option<String>,
    pub clause: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cue: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding: Option<&'static str>,
}

/// The pseudo-rule of files that could not be checked.
pub const NOT_CHECKED: &str = "not-checked";

impl Finding {
    /// A file that could not be checked: reported, never skipped in silence.
    pub fn not_checked(path: PathBuf, reason: &str) -> Finding {
        Finding {
            rule: NOT_CHECKED.to_string(),
            severity: Severity::Medium,
            tier: Severity::Medium.tier(),
            path,
            line: 0,
            column: 0,
            end_line: 0,
            end_column: 0,
            byte_start: 0,
            byte_end: 0,
            matched: String::new(),
            message: format!("未检查：{reason}"),
            message_en: Some(format!("Not checked: {reason}")),
            clause: Vec::new(),
            suggestion: None,
            detail: Some(reason.to_string()),
            tags: vec!["not-checked".to_string()],
            field: None,
            cue: None,
            encoding: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
}

/// Writes findings compiler-style:
/// `path:line:col  severity  rule-id  message  «matched»  → suggestion`.
pub fn write_human(out: &mut dyn Write, f: &Finding, color: bool) -> io::Result<()> {
    let (sev_color, dim, bold, reset) = if color {
        let c = match f.severity {
            Severity::Critical => "\x1b[1;31m",
            Severity::High => "\x1b[31m",
            Severity::Medium => "\x1b[33m",
            Severity::Low => "\x1b[36m",
        };
        (c, "\x1b[2m", "\x1b[1m", "\x1b[0m")
    } else {
        ("", "", "", "")
    };
    let loc = if f.line == 0 {
        f.path.display().to_string()
    } else {
        format!("{}:{}:{}", f.path.display(), f.line, f.column)
    };
    write!(
        out,
        "{bold}{loc}{reset}  {sev_color}{}{reset}  {}  {}",
        f.severity.as_str(),
        f.rule,
        f.message
    )?;
    if !f.matched.is_empty() {
        write!(out, "  «{}»", f.matched.replace(['\n', '\r'], " "))?;
    }
    if let Some(cue) = &f.cue {
        write!(out, "  {dim}[cue {cue}]{reset}")?;
    }
    if let Some(field) = &f.field {
        write!(out, "  {dim}[{field}]{reset}")?;
    }
    if let Some(enc) = f.encoding {
        write!(out, "  {dim}[decoded as {enc}]{reset}")?;
    }
    if let Some(detail) = f.detail.as_ref().filter(|_| f.rule != NOT_CHECKED) {
        write!(out, "  {dim}({detail}){reset}")?;
    }
    if let Some(s) = &f.suggestion {
        write!(out, "  → {s}")?;
    }
    writeln!(out)
}

pub fn write_json(out: &mut dyn Write, f: &Finding) -> io::Result<()> {
    serde_json::to_writer(&mut *out, f)?;
    writeln!(out)
}
