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
    /// For English mail, as `message_en`.
    #[serde(skip)]
    pub suggestion_en: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The detail in English (for English mail; in the JSON output for
    /// tools that read why a file was not checked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail_en: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cue: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding: Option<&'static str>,
}

/// A reader's reason why a file was not checked, in Chinese (the readers
/// give it in English: it is also what the logs and English mail say). A
/// reason not known here keeps its English after a Chinese lead.
pub fn reason_zh(reason: &str) -> String {
    if let Some(ext) = reason.strip_prefix("unsupported format: ") {
        return format!("不支持的格式：{ext}");
    }
    if let Some(why) = reason.strip_prefix("cannot read: ") {
        let why = match why {
            "no such file" | "file not found" => "文件不存在",
            "permission denied" => "没有读取权限",
            "not a regular file" => "不是普通文件",
            other => other,
        };
        return format!("无法读取：{why}");
    }
    if let Some(rest) = reason.strip_prefix("file is ")
        && let Some((size, limit)) = rest.split_once(" bytes, over the ")
        && let Some(limit) = limit.strip_suffix("-byte limit")
    {
        return format!("文件 {size} 字节，超过 {limit} 字节的上限");
    }
    if let Some(limit) = reason
        .strip_prefix("file is over the ")
        .and_then(|r| r.strip_suffix("-byte limit"))
    {
        return format!("文件超过 {limit} 字节的上限");
    }
    if reason == "binary file (NUL bytes in the first 8 KiB)" {
        return "二进制文件（前 8 KiB 含 NUL 字节）".to_string();
    }
    if reason.starts_with(".docx") {
        return format!("Word 文档无法读取（{reason}）");
    }
    if reason.starts_with("post.json") || reason.starts_with('"') {
        return format!("帖子元数据格式有误（{reason}）");
    }
    format!("无法检查（{reason}）")
}

/// The pseudo-rule of files that could not be checked.
pub const NOT_CHECKED: &str = "not-checked";

impl Finding {
    /// A file that could not be checked: reported, never skipped in silence.
    /// `reason` is the English one the readers give; the finding says it
    /// in Chinese, and keeps the English for English mail.
    pub fn not_checked(path: PathBuf, reason: &str) -> Finding {
        let zh = reason_zh(reason);
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
            message: format!("未检查：{zh}"),
            message_en: Some(format!("Not checked: {reason}")),
            clause: Vec::new(),
            suggestion: None,
            suggestion_en: None,
            detail: Some(zh),
            detail_en: Some(reason.to_string()),
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

#[cfg(test)]
mod reason_tests {
    use super::reason_zh;

    #[test]
    fn reasons_a_file_was_not_checked_read_in_chinese() {
        assert_eq!(reason_zh("unsupported format: .pdf"), "不支持的格式：.pdf");
        assert_eq!(
            reason_zh("cannot read: permission denied"),
            "无法读取：没有读取权限"
        );
        assert_eq!(
            reason_zh("cannot read: not a regular file"),
            "无法读取：不是普通文件"
        );
        assert_eq!(
            reason_zh("file is 4200 bytes, over the 1024-byte limit"),
            "文件 4200 字节，超过 1024 字节的上限"
        );
        assert_eq!(
            reason_zh("file is over the 1024-byte limit"),
            "文件超过 1024 字节的上限"
        );
        assert_eq!(
            reason_zh("binary file (NUL bytes in the first 8 KiB)"),
            "二进制文件（前 8 KiB 含 NUL 字节）"
        );
        assert!(reason_zh(".docx has no word/document.xml").starts_with("Word 文档无法读取"));
        assert!(reason_zh("something new").starts_with("无法检查"));
    }
}
