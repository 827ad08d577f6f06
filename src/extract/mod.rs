//! Turns files on disk into [`TextUnit`]s the matcher can scan.
//!
//! Every entry point returns [`Extracted`] rather than `Result`: a file we
//! cannot read is a finding in itself ("not checked"), not an error that
//! should abort a scan of thousands of files.

mod docx;
mod encoding;
mod post;
mod subtitles;
mod text;

use std::io::Read;
use std::path::Path;

pub use encoding::decode;

/// Limits against hostile input.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest file read at all; default 20 MiB.
    pub max_file_bytes: u64,
    /// Total bytes a .docx may inflate to across the parts we read; default 64 MiB.
    pub max_docx_uncompressed: u64,
    /// Most entries a .docx archive may list; default 2000.
    pub max_docx_entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_file_bytes: 20 * 1024 * 1024,
            max_docx_uncompressed: 64 * 1024 * 1024,
            max_docx_entries: 2000,
        }
    }
}

/// A size as people write it: `20971520`, `20MiB`, `20 MiB`, `512K`,
/// `1.5G`. K, M, G, KiB, MiB, GiB count in 1024s (as ripgrep's
/// `--max-filesize` does); KB, MB, GB in 1000s.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = (&t[..split], t[split..].trim());
    let scale: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => {
            return Err(format!(
                "`{s}` is not a size: write bytes, or a number with K, M, G (1024s) or KB, MB, GB \
                 (1000s), e.g. 20MiB"
            ));
        }
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size: it needs a number, e.g. 20MiB"))?;
    let bytes = n * scale as f64;
    if !(bytes.is_finite() && bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(format!("`{s}` is not a usable size (at least 1 byte)"));
    }
    Ok(bytes as u64)
}

/// One stretch of text checked as a unit; matches never span two units.
#[derive(Debug, Clone, PartialEq)]
pub struct TextUnit {
    pub text: String,
    /// 1-based line in the source where `text` starts; each '\n' inside `text` advances to the next source line.
    pub line: u32,
    /// 1-based column, counted in characters, of the first char of `text` on that line (later lines start at column 1).
    pub column: u32,
    /// For *.post.json: the field ("title", "caption", "hashtags[2]"). For .docx: the part ("body", "header1", "footer1", "footnotes", "comments"). None for plain text and subtitles.
    pub field: Option<String>,
    /// For .srt/.vtt: the cue start time exactly as written in the file, e.g. "00:01:02,500".
    pub cue: Option<String>,
    /// Source line and column of each character of `text`, plus one for
    /// the end, when the text is not verbatim: unescaped JSON strings (where
    /// `\n` takes two columns and `\u6839` six), WebVTT cues without their
    /// tags and with entities decoded. `None`: text is verbatim.
    pub columns: Option<Vec<(u32, u32)>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocKind {
    Text,
    Markdown,
    Srt,
    Vtt,
    Docx,
    PostJson,
}

#[derive(Debug, Clone)]
pub struct Document {
    pub kind: DocKind,
    pub units: Vec<TextUnit>,
    /// Encoding that was used to decode: "UTF-8", "UTF-8 (BOM)", "UTF-16LE", "UTF-16BE", "GB18030" (report GBK detections as "GB18030"), or "docx" for .docx.
    pub encoding: &'static str,
    /// True when decoding produced U+FFFD replacement characters.
    pub had_replacements: bool,
}

#[derive(Debug, Clone)]
pub enum Extracted {
    Checked(Document),
    NotChecked { reason: String },
}

impl Extracted {
    fn not_checked(reason: impl Into<String>) -> Self {
        Self::NotChecked {
            reason: reason.into(),
        }
    }
}

/// Extensions we know carry no extractable text (or a format we do not
/// parse), so saying so by name is more useful than "binary file".
const UNSUPPORTED_EXTENSIONS: &[&str] = &[
    "mp4", "mov", "avi", "mkv", "jpg", "jpeg", "png", "gif", "webp", "bmp", "mp3", "wav", "m4a",
    "zip", "gz", "7z", "rar", "pdf", "doc", "xls", "xlsx", "ppt", "pptx", "exe",
];

/// How far into a file we look for NUL bytes; the same window git uses.
const BINARY_SNIFF_BYTES: usize = 8 * 1024;

/// What the file name says the content is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Format {
    Kind(DocKind),
    /// Unrecognised extension: sniffed as text unless it looks binary.
    Unknown,
    Unsupported(String),
}

fn format_for(path: &Path) -> Format {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    if name.ends_with(".post.json") {
        return Format::Kind(DocKind::PostJson);
    }
    let Some((_, ext)) = name.rsplit_once('.') else {
        return Format::Unknown;
    };
    match ext {
        "txt" | "text" => Format::Kind(DocKind::Text),
        "md" | "markdown" => Format::Kind(DocKind::Markdown),
        "srt" => Format::Kind(DocKind::Srt),
        "vtt" => Format::Kind(DocKind::Vtt),
        "docx" => Format::Kind(DocKind::Docx),
        _ if UNSUPPORTED_EXTENSIONS.contains(&ext) => Format::Unsupported(format!(".{ext}")),
        _ => Format::Unknown,
    }
}

/// Reads and extracts; never panics; every failure becomes NotChecked with a human reason in English.
pub fn extract_path(path: &Path, limits: &Limits) -> Extracted {
    // Decide on the name first so a 2 GB video is rejected without a read.
    if let Format::Unsupported(ext) = format_for(path) {
        return Extracted::not_checked(format!("unsupported format: {ext}"));
    }
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return Extracted::not_checked(format!("cannot read: {}", io_reason(&e))),
    };
    if !meta.is_file() {
        return Extracted::not_checked("cannot read: not a regular file");
    }
    if let Some(reason) = over_size(meta.len(), limits) {
        return Extracted::not_checked(reason);
    }
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return Extracted::not_checked(format!("cannot read: {}", io_reason(&e))),
    };
    // The file may grow between stat and read; the extra byte lets the
    // size check in extract_bytes notice that instead of reading forever.
    let mut bytes = Vec::new();
    if let Err(e) = file
        .take(limits.max_file_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
    {
        return Extracted::not_checked(format!("cannot read: {}", io_reason(&e)));
    }
    extract_bytes(path, &bytes, limits)
}

/// Same from bytes already read; `path` only chooses the format by name.
pub fn extract_bytes(path: &Path, bytes: &[u8], limits: &Limits) -> Extracted {
    if let Some(reason) = over_size(bytes.len() as u64, limits) {
        return Extracted::not_checked(reason);
    }
    let kind = match format_for(path) {
        Format::Unsupported(ext) => {
            return Extracted::not_checked(format!("unsupported format: {ext}"));
        }
        Format::Kind(kind) => kind,
        Format::Unknown => DocKind::Text,
    };
    let result = if kind == DocKind::Docx {
        // A zip is full of NULs and has no text encoding of its own.
        docx::extract(bytes, limits).map(|(units, bad)| (units, "docx", bad))
    } else if looks_binary(bytes) {
        Err("binary file (NUL bytes in the first 8 KiB)".to_owned())
    } else {
        let (text, encoding, bad) = decode(bytes);
        let units = match kind {
            DocKind::Srt => Ok(subtitles::extract_srt(&text)),
            DocKind::Vtt => Ok(subtitles::extract_vtt(&text)),
            DocKind::PostJson => post::extract(&text),
            DocKind::Text | DocKind::Markdown | DocKind::Docx => Ok(text::extract(&text)),
        };
        units.map(|units| (units, encoding, bad))
    };
    match result {
        Ok((units, encoding, had_replacements)) => Extracted::Checked(Document {
            kind,
            units,
            encoding,
            had_replacements,
        }),
        Err(reason) => Extracted::not_checked(reason),
    }
}

fn over_size(len: u64, limits: &Limits) -> Option<String> {
    (len > limits.max_file_bytes).then(|| {
        format!(
            "file is {len} bytes, over the {}-byte limit",
            limits.max_file_bytes
        )
    })
}

/// UTF-16 text is full of NULs, so a UTF-16 BOM vouches for the file.
fn looks_binary(bytes: &[u8]) -> bool {
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return false;
    }
    bytes[..bytes.len().min(BINARY_SNIFF_BYTES)].contains(&0)
}

/// io::Error's Display adds "(os error 13)" and capitalises; reasons are
/// shown to marketing staff, so keep them short and plain.
fn io_reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::NotFound => "file not found".to_owned(),
        ErrorKind::PermissionDenied => "permission denied".to_owned(),
        ErrorKind::IsADirectory => "is a directory".to_owned(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
pub(crate) mod tests;
