//! Diagnostics that point into the user's file.
//!
//! Rule authors are compliance staff, not programmers: every problem is
//! reported as `path:line:col: error[code]: message`, followed by the source
//! line and a caret under the offending text, and a run reports every
//! problem it can find rather than stopping at the first.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Stable error codes; documented in docs/rules.md. Kebab-case words rather
/// than numbers, because the people reading them do not have a table at hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    YamlSyntax,
    YamlLimits,
    UnknownKey,
    DuplicateKey,
    MissingKey,
    WrongType,
    UnknownKind,
    InvalidValue,
    InvalidRegex,
    DuplicateId,
    PhraseFile,
    EmptyPhrases,
    Unreadable,
    ExampleFailed,
    TemplateSyntax,
    TemplateUnknown,
    TemplateUndefined,
    TemplateRender,
    TemplateUnsafe,
    TemplateUnknownFile,
    /// Warnings: a watched folder or log that does not exist (yet).
    MissingPath,
    /// Warning: no holiday data for the current or the next year.
    NoHolidays,
    /// Warning: a regex with a Unicode word boundary (`\b`).
    UnicodeBoundary,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::YamlSyntax => "yaml-syntax",
            Code::YamlLimits => "yaml-limits",
            Code::UnknownKey => "unknown-key",
            Code::DuplicateKey => "duplicate-key",
            Code::MissingKey => "missing-key",
            Code::WrongType => "wrong-type",
            Code::UnknownKind => "unknown-kind",
            Code::InvalidValue => "invalid-value",
            Code::InvalidRegex => "invalid-regex",
            Code::DuplicateId => "duplicate-id",
            Code::PhraseFile => "phrase-file",
            Code::EmptyPhrases => "empty-phrases",
            Code::Unreadable => "unreadable",
            Code::ExampleFailed => "example-failed",
            Code::TemplateSyntax => "template-syntax",
            Code::TemplateUnknown => "template-unknown",
            Code::TemplateUndefined => "template-undefined",
            Code::TemplateRender => "template-render",
            Code::TemplateUnsafe => "template-unsafe",
            Code::TemplateUnknownFile => "template-unknown-file",
            Code::MissingPath => "missing-path",
            Code::NoHolidays => "no-holidays",
            Code::UnicodeBoundary => "unicode-boundary",
        }
    }
}

/// A position in a source file: 1-based line, 1-based column in characters,
/// and the length in characters of the stretch to underline (at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
    pub width: u32,
}

impl Pos {
    pub fn new(line: u32, column: u32, width: u32) -> Pos {
        Pos {
            line,
            column,
            width,
        }
    }

    /// A position with no location (whole file).
    pub const FILE: Pos = Pos {
        line: 0,
        column: 0,
        width: 0,
    };
}

impl From<&serde_saphyr::Location> for Pos {
    fn from(l: &serde_saphyr::Location) -> Pos {
        Pos {
            line: l.line() as u32,
            column: l.column() as u32,
            width: l.span().len() as u32,
        }
    }
}

/// An error stops the command (exit 78); a warning is printed and the
/// command goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Level {
    #[default]
    Error,
    Warning,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub level: Level,
    pub path: PathBuf,
    pub pos: Pos,
    pub code: Code,
    pub message: String,
    /// Extra lines printed after the snippet (`= note: …`).
    pub notes: Vec<String>,
}

/// A path as diagnostics show it: relative to the working folder when it
/// lies inside it (as the user most likely wrote it), else as it is.
/// Configured paths are absolute since logs are known by their absolute
/// path.
fn shown(path: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(|p| p.display().to_string()))
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| path.display().to_string())
}

impl Diagnostic {
    pub fn new(path: &Path, pos: Pos, code: Code, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            level: Level::Error,
            path: path.to_path_buf(),
            pos,
            code,
            message: message.into(),
            notes: Vec::new(),
        }
    }

    /// A problem that does not stop the command.
    pub fn warning(path: &Path, pos: Pos, code: Code, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            level: Level::Warning,
            ..Diagnostic::new(path, pos, code, message)
        }
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }

    /// The one-line header: `path:line:col: error[code]: message`.
    pub fn header(&self) -> String {
        let path = shown(&self.path);
        let level = self.level.as_str();
        if self.pos.line == 0 {
            format!("{path}: {level}[{}]: {}", self.code.as_str(), self.message)
        } else {
            format!(
                "{path}:{}:{}: {level}[{}]: {}",
                self.pos.line,
                self.pos.column,
                self.code.as_str(),
                self.message
            )
        }
    }

    /// Renders the header, the source line with a caret, and the notes.
    /// `source` is the file's text when it could be read.
    pub fn render(&self, source: Option<&str>, color: bool) -> String {
        let (red, blue, bold, reset) = match (color, self.level) {
            (true, Level::Error) => ("\x1b[1;31m", "\x1b[1;34m", "\x1b[1m", "\x1b[0m"),
            (true, Level::Warning) => ("\x1b[1;33m", "\x1b[1;34m", "\x1b[1m", "\x1b[0m"),
            (false, _) => ("", "", "", ""),
        };
        let mut out = String::new();
        let path = shown(&self.path);
        let loc = if self.pos.line == 0 {
            path.clone()
        } else {
            format!("{path}:{}:{}", self.pos.line, self.pos.column)
        };
        let _ = writeln!(
            out,
            "{bold}{loc}: {red}{}[{}]{reset}{bold}: {}{reset}",
            self.level.as_str(),
            self.code.as_str(),
            self.message
        );
        if let Some(text) = source.and_then(|s| line_of(s, self.pos.line)) {
            let num = self.pos.line.to_string();
            let pad = " ".repeat(num.len());
            let text = text.trim_end_matches('\r');
            // East Asian characters take two terminal cells; pad to match so the
            // caret lands under the right character.
            let before_cells: String = text
                .chars()
                .take(self.pos.column.saturating_sub(1) as usize)
                .map(|c| match c {
                    '\t' => "\t",
                    c if is_wide(c) => "  ",
                    _ => " ",
                })
                .collect();
            let width: usize = text
                .chars()
                .skip(self.pos.column.saturating_sub(1) as usize)
                .take(self.pos.width.max(1) as usize)
                .map(|c| if is_wide(c) { 2 } else { 1 })
                .sum::<usize>()
                .max(1);
            let _ = writeln!(out, "{blue}{pad} |{reset}");
            let _ = writeln!(out, "{blue}{num} |{reset} {text}");
            let _ = writeln!(
                out,
                "{blue}{pad} |{reset} {before_cells}{red}{}{reset}",
                "^".repeat(width)
            );
        }
        for note in &self.notes {
            let _ = writeln!(out, "  = note: {note}");
        }
        out
    }
}

fn line_of(source: &str, line: u32) -> Option<&str> {
    if line == 0 {
        return None;
    }
    source.split('\n').nth(line as usize - 1)
}

/// Whether a character takes two cells in a terminal (CJK and full-width).
pub fn is_wide(c: char) -> bool {
    matches!(c as u32,
        0x1100..=0x115F | 0x2E80..=0x303E | 0x3041..=0x33FF | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF | 0xA000..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6 | 0x1F300..=0x1F64F
        | 0x1F900..=0x1F9FF | 0x20000..=0x3FFFD)
}

/// Renders `diags`, each with the snippet of its line read from its file
/// (warnings, which come without the sources a load kept for errors).
pub fn render_reading_files(diags: &[Diagnostic], color: bool) -> String {
    diags
        .iter()
        .map(|d| {
            let src = (d.pos.line > 0)
                .then(|| std::fs::read_to_string(&d.path).ok())
                .flatten();
            d.render(src.as_deref(), color)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_header_snippet_and_caret() {
        let d = Diagnostic::new(
            Path::new("rules/a.yaml"),
            Pos::new(2, 9, 2),
            Code::InvalidValue,
            "bad",
        );
        let src = "rules:\n  - id: 中文\n";
        let out = d.render(Some(src), false);
        assert_eq!(
            out,
            "rules/a.yaml:2:9: error[invalid-value]: bad\n  |\n2 |   - id: 中文\n  |         ^^^^\n"
        );
    }

    #[test]
    fn file_level_diagnostic_has_no_snippet() {
        let d = Diagnostic::new(Path::new("x.yaml"), Pos::FILE, Code::Unreadable, "gone");
        assert_eq!(d.render(None, false), "x.yaml: error[unreadable]: gone\n");
    }
}
