//! TEMPORARY stand-in until the extraction module lands (same interface).
use std::path::Path;

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_file_bytes: u64,
    pub max_docx_uncompressed: u64,
    pub max_docx_entries: usize,
}
impl Default for Limits {
    fn default() -> Self {
        Limits { max_file_bytes: 20 << 20, max_docx_uncompressed: 64 << 20, max_docx_entries: 2000 }
    }
}
#[derive(Debug, Clone, PartialEq)]
pub struct TextUnit {
    pub text: String,
    pub line: u32,
    pub column: u32,
    pub field: Option<String>,
    pub cue: Option<String>,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocKind { Text, Markdown, Srt, Vtt, Docx, PostJson }
#[derive(Debug, Clone)]
pub struct Document {
    pub kind: DocKind,
    pub units: Vec<TextUnit>,
    pub encoding: &'static str,
    pub had_replacements: bool,
}
#[derive(Debug, Clone)]
pub enum Extracted { Checked(Document), NotChecked { reason: String } }

pub fn extract_path(path: &Path, limits: &Limits) -> Extracted {
    match std::fs::read(path) {
        Ok(b) => extract_bytes(path, &b, limits),
        Err(e) => Extracted::NotChecked { reason: format!("cannot read: {e}") },
    }
}
pub fn extract_bytes(_path: &Path, bytes: &[u8], _limits: &Limits) -> Extracted {
    match std::str::from_utf8(bytes) {
        Ok(s) => Extracted::Checked(Document { kind: DocKind::Text, units: vec![TextUnit { text: s.to_string(), line: 1, column: 1, field: None, cue: None }], encoding: "UTF-8", had_replacements: false }),
        Err(_) => Extracted::NotChecked { reason: "not UTF-8".into() },
    }
}
