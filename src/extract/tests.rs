//! Format dispatch, limits and the shipped sample fixtures.

use std::path::{Path, PathBuf};

use encoding_rs::GBK;
use proptest::prelude::*;

use super::docx::tests::{SAMPLE_BODY, SAMPLE_HEADER, build_docx};
use super::*;

fn checked(e: Extracted) -> Document {
    match e {
        Extracted::Checked(doc) => doc,
        Extracted::NotChecked { reason } => panic!("not checked: {reason}"),
    }
}

fn reason(e: Extracted) -> String {
    match e {
        Extracted::Checked(doc) => panic!("unexpectedly checked: {doc:?}"),
        Extracted::NotChecked { reason } => reason,
    }
}

fn bytes_of(name: &str, bytes: &[u8]) -> Extracted {
    extract_bytes(Path::new(name), bytes, &Limits::default())
}

#[test]
fn format_by_name_is_case_insensitive() {
    let cases = [
        ("a/b/Post.POST.JSON", Format::Kind(DocKind::PostJson)),
        ("x.json", Format::Unknown),
        ("notes.TXT", Format::Kind(DocKind::Text)),
        ("notes.text", Format::Kind(DocKind::Text)),
        ("README.Md", Format::Kind(DocKind::Markdown)),
        ("a.markdown", Format::Kind(DocKind::Markdown)),
        ("clip.SRT", Format::Kind(DocKind::Srt)),
        ("clip.vtt", Format::Kind(DocKind::Vtt)),
        ("brief.DOCX", Format::Kind(DocKind::Docx)),
        ("Makefile", Format::Unknown),
        ("ad.PDF", Format::Unsupported(".pdf".into())),
        ("ad.mp4", Format::Unsupported(".mp4".into())),
    ];
    for (name, want) in cases {
        assert_eq!(format_for(Path::new(name)), want, "{name}");
    }
}

#[test]
fn unsupported_formats_are_named() {
    assert_eq!(
        reason(bytes_of("ad.pdf", b"%PDF-1.7")),
        "unsupported format: .pdf"
    );
    assert_eq!(reason(bytes_of("old.DOC", b"")), "unsupported format: .doc");
}

#[test]
fn binary_detection() {
    let mut bytes = b"GIF89a".to_vec();
    bytes.extend_from_slice(&[0, 1, 2, 0]);
    for name in ["blob", "draft.txt", "x.md", "c.srt", "unknown.dat"] {
        assert_eq!(
            reason(bytes_of(name, &bytes)),
            "binary file (NUL bytes in the first 8 KiB)",
            "{name}"
        );
    }
    // A NUL beyond the sniff window does not make a text file binary.
    let mut late = "根治".repeat(3000).into_bytes();
    late.push(0);
    assert_eq!(checked(bytes_of("late.txt", &late)).kind, DocKind::Text);
}

#[test]
fn unknown_extension_text_is_checked_as_text() {
    let doc = checked(bytes_of("script.rst", "根治高血压".as_bytes()));
    assert_eq!(doc.kind, DocKind::Text);
    assert_eq!(doc.units[0].text, "根治高血压");
}

#[test]
fn utf16le_text_with_bom_is_not_binary() {
    let mut bytes = vec![0xFF, 0xFE];
    bytes.extend("包治百病\n".encode_utf16().flat_map(u16::to_le_bytes));
    let doc = checked(bytes_of("a.txt", &bytes));
    assert_eq!(doc.encoding, "UTF-16LE");
    assert_eq!(doc.units[0].text, "包治百病\n");
}

#[test]
fn utf8_bom_srt() {
    let src = "\u{FEFF}1\r\n00:00:01,000 --> 00:00:02,000\r\n根治\r\n";
    let doc = checked(bytes_of("a.srt", src.as_bytes()));
    assert_eq!(doc.encoding, "UTF-8 (BOM)");
    assert_eq!(doc.units[0].text, "根治");
    assert_eq!(doc.units[0].line, 3);
    assert_eq!(doc.units[0].cue.as_deref(), Some("00:00:01,000"));
}

#[test]
fn gbk_markdown() {
    let (bytes, _, _) = GBK.encode("# 标题\n本品根治高血压，100%有效。\n");
    let doc = checked(bytes_of("a.md", &bytes));
    assert_eq!(doc.kind, DocKind::Markdown);
    assert_eq!(doc.encoding, "GB18030");
    assert!(!doc.had_replacements);
    assert!(doc.units[0].text.contains("根治高血压"));
}

#[test]
fn docx_via_bytes() {
    let doc = checked(bytes_of("x.docx", &build_docx(SAMPLE_BODY, SAMPLE_HEADER)));
    assert_eq!((doc.kind, doc.encoding), (DocKind::Docx, "docx"));
    assert!(doc.units[0].text.contains("根治高血压"));
}

#[test]
fn post_json_errors_become_not_checked() {
    let r = reason(bytes_of("a.post.json", b"{\"title\": }"));
    assert!(r.starts_with("invalid JSON at line 1, column 11: "), "{r}");
}

#[test]
fn oversize_bytes() {
    let limits = Limits {
        max_file_bytes: 4,
        ..Limits::default()
    };
    let r = reason(extract_bytes(Path::new("a.txt"), b"12345", &limits));
    assert_eq!(r, "file is 5 bytes, over the 4-byte limit");
}

#[test]
fn oversize_file_via_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.txt");
    std::fs::write(&path, "根治".repeat(100)).unwrap();
    let limits = Limits {
        max_file_bytes: 100,
        ..Limits::default()
    };
    assert_eq!(
        reason(extract_path(&path, &limits)),
        "file is 600 bytes, over the 100-byte limit"
    );
}

#[test]
fn path_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.txt");
    assert_eq!(
        reason(extract_path(&missing, &Limits::default())),
        "cannot read: file not found"
    );
    assert_eq!(
        reason(extract_path(dir.path(), &Limits::default())),
        "cannot read: not a regular file"
    );
    // Unsupported names are refused without touching the disk.
    assert_eq!(
        reason(extract_path(
            &dir.path().join("gone.mp4"),
            &Limits::default()
        )),
        "unsupported format: .mp4"
    );
}

#[cfg(unix)]
#[test]
fn permission_denied() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret.txt");
    std::fs::write(&path, "根治").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
    // root ignores file modes; the check is only meaningful otherwise.
    if std::fs::read(&path).is_err() {
        assert_eq!(
            reason(extract_path(&path, &Limits::default())),
            "cannot read: permission denied"
        );
    }
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/drop")
}

const SAMPLE_SRT: &str = "1\r\n00:00:01,000 --> 00:00:04,000\r\n各位观众朋友们，今天给大家推荐一款降压神器\r\n\r\n\
2\r\n00:00:04,500 --> 00:00:08,200\r\n坚持服用一个疗程，根治高血压\r\n100%有效，无任何副作用\r\n\r\n\
3\r\n00:00:08,500 --> 00:00:11,000\r\n国家级专家推荐，永不复发！\r\n";

const SAMPLE_VTT: &str = "WEBVTT - 护肝片直播切片\nKind: captions\nLanguage: zh-Hant\n\n\
NOTE 以下字幕由剪辑软件导出\n\n\
STYLE\n::cue { color: #ffeb3b }\n\n\
cue-1\n00:00.000 --> 00:03.500 align:center line:90%\n本產品專門治療脂肪肝\n\n\
cue-2\n00:03.500 --> 00:07.000\n<v 主播>服用三天，肝功能恢復正常，<b>保證有效</b>\n\n\
00:00:07.000 --> 00:00:10.000 position:50%\n藥到病除，無效退款！\n";

const SAMPLE_POST: &str = r#"{
  "platform": "xiaohongshu",
  "title": "降压神器｜我爸吃了三个月血压就正常了",
  "caption": "这款纳豆红曲胶囊真的绝了！\n坚持服用，根治高血压，100%有效，还能替代降压药～",
  "hashtags": ["养生", "降压神器", "根治高血压", "中老年保健"],
  "likes": 1024
}
"#;

const SAMPLE_TXT: &str = "【新品上市】深海鱼油软胶囊\n\n\
本品采用纯天然原料，可根治高血脂、高血压，100%有效。\n\
服用一周即可见效，无任何副作用，孕妇儿童均可放心食用。\n\
全国销量第一，国家级专家推荐，药到病除！\n";

/// The samples in examples/drop are generated here, so that their exact
/// bytes (CRLF, GBK, a real .docx) are reviewed as code. Set
/// COMPLYD_WRITE_FIXTURES=1 to rewrite them after changing a sample.
#[test]
fn fixtures_are_current() {
    let dir = fixtures_dir();
    let write = std::env::var_os("COMPLYD_WRITE_FIXTURES").is_some();
    let put = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        if write {
            std::fs::write(&path, bytes).unwrap();
        } else {
            let on_disk = std::fs::read(&path).unwrap();
            assert!(
                on_disk == bytes,
                "{} is stale: rerun with COMPLYD_WRITE_FIXTURES=1",
                path.display()
            );
        }
    };
    put("sample.srt", SAMPLE_SRT.as_bytes());
    put("sample.vtt", SAMPLE_VTT.as_bytes());
    put("sample.post.json", SAMPLE_POST.as_bytes());
    let (gbk, _, unmappable) = GBK.encode(SAMPLE_TXT);
    assert!(!unmappable);
    put("sample.txt", &gbk);
    put("sample.docx", &build_docx(SAMPLE_BODY, SAMPLE_HEADER));
}

#[test]
fn fixtures_extract_as_documented() {
    let dir = fixtures_dir();
    let load = |name: &str| checked(extract_path(&dir.join(name), &Limits::default()));

    let srt = load("sample.srt");
    assert_eq!(srt.units.len(), 3);
    assert_eq!(
        srt.units[1].text,
        "坚持服用一个疗程，根治高血压\n100%有效，无任何副作用"
    );
    assert_eq!(
        (srt.units[1].line, srt.units[1].cue.as_deref()),
        (7, Some("00:00:04,500"))
    );

    let vtt = load("sample.vtt");
    let cues: Vec<_> = vtt
        .units
        .iter()
        .map(|u| u.cue.as_deref().unwrap())
        .collect();
    assert_eq!(cues, ["00:00.000", "00:03.500", "00:00:07.000"]);
    assert_eq!(
        (vtt.units[0].text.as_str(), vtt.units[0].line),
        ("本產品專門治療脂肪肝", 12)
    );

    let post = load("sample.post.json");
    let caption = &post.units[1];
    assert_eq!(caption.field.as_deref(), Some("caption"));
    assert!(caption.text.contains("\n坚持服用，根治高血压"));
    assert_eq!((caption.line, caption.column), (4, 15));
    assert_eq!(post.units[4].field.as_deref(), Some("hashtags[2]"));

    let txt = load("sample.txt");
    assert_eq!((txt.encoding, txt.had_replacements), ("GB18030", false));
    assert_eq!(txt.units[0].text, SAMPLE_TXT);

    let docx = load("sample.docx");
    assert_eq!(docx.units[0].field.as_deref(), Some("body"));
    assert!(docx.units[0].text.starts_with("本品可根治高血压\n"));
    assert!(docx.units[0].text.contains("專門治療失眠"));
}

proptest! {
    #[test]
    fn never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..256),
        ext in prop::sample::select(vec!["txt", "md", "srt", "vtt", "docx", "post.json", "bin"]),
    ) {
        let _ = extract_bytes(Path::new(&format!("f.{ext}")), &bytes, &Limits::default());
    }
}

#[test]
fn sizes_are_read_as_people_write_them() {
    use super::parse_size;
    assert_eq!(parse_size("20971520"), Ok(20 << 20));
    assert_eq!(parse_size("20MiB"), Ok(20 << 20));
    assert_eq!(parse_size("20 M"), Ok(20 << 20));
    assert_eq!(parse_size("512k"), Ok(512 << 10));
    assert_eq!(parse_size("1.5G"), Ok(3 << 29));
    assert_eq!(parse_size("10MB"), Ok(10_000_000));
    assert!(parse_size("20 MiBs").unwrap_err().contains("20MiB"));
    assert!(parse_size("MiB").is_err());
    assert!(parse_size("0").is_err());
    assert!(parse_size("-1").is_err());
}
