use std::io::{Cursor, Write};
use std::time::{Duration, Instant};

use zip::CompressionMethod;
use zip::write::SimpleFileOptions;

use super::*;

const W_NS: &str = "http://schemas.openxmlformats.org/wordprocessingml/2006/main";
const R_NS: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";

/// Zips `entries` (name, bytes) with deflate, as Word does.
pub(crate) fn zip_entries(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    for (name, data) in entries {
        zip.start_file(*name, options).unwrap();
        zip.write_all(data).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// A minimal package Word opens: content types, package and document
/// relationships, a body (wrapped in `w:body` with a section referencing the
/// header) and one header part.
pub(crate) fn build_docx(body_xml: &str, header_xml: &str) -> Vec<u8> {
    let content_types = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/><Override PartName="/word/header1.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.header+xml"/></Types>"#;
    let root_rels = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>"#;
    let doc_rels = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/header" Target="header1.xml"/></Relationships>"#;
    let document = format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:document xmlns:w="{W_NS}" xmlns:r="{R_NS}"><w:body>{body_xml}<w:sectPr><w:headerReference w:type="default" r:id="rId1"/><w:pgSz w:w="11906" w:h="16838"/><w:pgMar w:top="1440" w:right="1800" w:bottom="1440" w:left="1800" w:header="851" w:footer="992" w:gutter="0"/></w:sectPr></w:body></w:document>"#
    );
    let header = format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:hdr xmlns:w="{W_NS}" xmlns:r="{R_NS}">{header_xml}</w:hdr>"#
    );
    zip_entries(&[
        ("[Content_Types].xml", content_types.as_bytes()),
        ("_rels/.rels", root_rels.as_bytes()),
        ("word/document.xml", document.as_bytes()),
        ("word/_rels/document.xml.rels", doc_rels.as_bytes()),
        ("word/header1.xml", header.as_bytes()),
    ])
}

/// Body used by the tests and the sample fixture: a phrase split across
/// runs (as Word does after spell-check or formatting), a table, tabs,
/// breaks, a tracked deletion, a field instruction and an entity.
pub(crate) const SAMPLE_BODY: &str = concat!(
    r#"<w:p><w:pPr><w:tabs><w:tab w:val="left" w:pos="720"/></w:tabs></w:pPr>"#,
    r#"<w:r><w:t xml:space="preserve">本品可</w:t></w:r><w:r><w:rPr><w:b/></w:rPr><w:t>根</w:t></w:r><w:r><w:t>治</w:t></w:r><w:r><w:t>高血压</w:t></w:r></w:p>"#,
    r#"<w:tbl><w:tblPr><w:tblW w:w="0" w:type="auto"/></w:tblPr><w:tblGrid><w:gridCol w:w="2000"/><w:gridCol w:w="2000"/></w:tblGrid><w:tr><w:tc><w:p><w:r><w:t>疗效</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>100%有效</w:t></w:r></w:p></w:tc></w:tr></w:tbl>"#,
    r#"<w:p><w:r><w:t>价格</w:t><w:tab/><w:t>&lt;99元&gt; &amp; 包邮&#x21;</w:t><w:br/><w:t>第二行</w:t></w:r>"#,
    r#"<w:del w:id="1" w:author="审核"><w:r><w:delText>已删除的根治</w:delText></w:r></w:del>"#,
    r#"<w:r><w:fldChar w:fldCharType="begin"/></w:r><w:r><w:instrText xml:space="preserve"> HYPERLINK "http://x" </w:instrText></w:r><w:r><w:fldChar w:fldCharType="end"/></w:r></w:p>"#,
    r#"<w:p/>"#,
    r#"<w:p><w:r><w:t>專門治療失眠</w:t></w:r></w:p>"#,
);

pub(crate) const SAMPLE_HEADER: &str = r#"<w:p><w:r><w:t>国家认证</w:t></w:r><w:r><w:t xml:space="preserve"> 永不复发</w:t></w:r></w:p>"#;

const SAMPLE_BODY_TEXT: &str =
    "本品可根治高血压\n疗效\n100%有效\n价格\t<99元> & 包邮!\n第二行\n\n專門治療失眠\n";

#[test]
fn extracts_body_and_header() {
    let bytes = build_docx(SAMPLE_BODY, SAMPLE_HEADER);
    let (units, bad) = extract(&bytes, &Limits::default()).unwrap();
    assert!(!bad);
    assert_eq!(units.len(), 2);
    assert_eq!(units[0].text, SAMPLE_BODY_TEXT);
    assert_eq!(units[0].field.as_deref(), Some("body"));
    assert_eq!((units[0].line, units[0].column), (1, 1));
    assert_eq!(units[1].text, "国家认证 永不复发\n");
    assert_eq!(units[1].field.as_deref(), Some("header1"));
}

#[test]
fn part_order_is_deterministic() {
    let part = |root: &str, text: &str| {
        format!(r#"<w:{root} xmlns:w="{W_NS}"><w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:{root}>"#)
    };
    let doc = format!(
        r#"<w:document xmlns:w="{W_NS}"><w:body><w:p><w:r><w:t>正文</w:t></w:r></w:p></w:body></w:document>"#
    );
    let (h10, h2, f1) = (
        part("hdr", "页眉10"),
        part("hdr", "页眉2"),
        part("ftr", "页脚"),
    );
    let (cm, fn_, en) = (
        part("comments", "批注"),
        part("footnotes", "脚注"),
        part("endnotes", "尾注"),
    );
    let empty = part("hdr", "");
    let bytes = zip_entries(&[
        ("word/comments.xml", cm.as_bytes()),
        ("word/header10.xml", h10.as_bytes()),
        ("word/footer1.xml", f1.as_bytes()),
        ("word/footnotes.xml", fn_.as_bytes()),
        ("word/header2.xml", h2.as_bytes()),
        ("word/header3.xml", empty.as_bytes()),
        ("word/endnotes.xml", en.as_bytes()),
        ("word/document.xml", doc.as_bytes()),
        ("word/styles.xml", b"<w:styles/>"),
        ("word/headerX.xml", b"not even xml <"),
    ]);
    let (units, _) = extract(&bytes, &Limits::default()).unwrap();
    let fields: Vec<_> = units.iter().map(|u| u.field.as_deref().unwrap()).collect();
    assert_eq!(
        fields,
        [
            "body",
            "header2",
            "header10",
            "footer1",
            "footnotes",
            "endnotes",
            "comments"
        ]
    );
}

#[test]
fn not_a_zip() {
    let err = extract(b"PK\x03\x04 truncated garbage", &Limits::default()).unwrap_err();
    assert!(
        err.starts_with(".docx is not a valid zip archive: "),
        "{err}"
    );
}

#[test]
fn zip_without_document() {
    let bytes = zip_entries(&[("hello.txt", b"hi")]);
    let err = extract(&bytes, &Limits::default()).unwrap_err();
    assert_eq!(err, ".docx has no word/document.xml (not a Word document?)");
}

#[test]
fn malformed_xml() {
    let bytes = zip_entries(&[("word/document.xml", b"<w:document><w:body></w:document>")]);
    let err = extract(&bytes, &Limits::default()).unwrap_err();
    assert!(
        err.starts_with(".docx part word/document.xml is not well-formed XML: "),
        "{err}"
    );
}

#[test]
fn too_many_entries() {
    let names: Vec<String> = (0..20).map(|i| format!("word/media/{i}.bin")).collect();
    let mut entries: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b""[..])).collect();
    entries.push(("word/document.xml", b"<w:document/>"));
    let limits = Limits {
        max_docx_entries: 10,
        ..Limits::default()
    };
    let err = extract(&zip_entries(&entries), &limits).unwrap_err();
    assert_eq!(err, ".docx has 21 entries, over the 10-entry limit");
}

/// 100 MB of zeros deflates to ~100 KB: well under the file-size limit,
/// far over the expansion budget.
fn bomb() -> Vec<u8> {
    let zeros = vec![0u8; 100_000_000];
    zip_entries(&[("word/document.xml", &zeros)])
}

#[test]
fn zip_bomb_is_refused_quickly() {
    let bytes = bomb();
    assert!(bytes.len() < 1_000_000);
    let started = Instant::now();
    let err = extract(&bytes, &Limits::default()).unwrap_err();
    assert_eq!(err, ".docx expands past 67108864 bytes (zip bomb?)");
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// Rewrites every uncompressed-size field (local header and central
/// directory) to `size`, the way a hostile archive would understate it.
fn forge_uncompressed_size(bytes: &mut [u8], size: u32) {
    let mut i = 0;
    while i + 30 <= bytes.len() {
        match bytes[i..i + 4] {
            [0x50, 0x4b, 0x03, 0x04] => bytes[i + 22..i + 26].copy_from_slice(&size.to_le_bytes()),
            [0x50, 0x4b, 0x01, 0x02] if i + 46 <= bytes.len() => {
                bytes[i + 24..i + 28].copy_from_slice(&size.to_le_bytes());
            }
            _ => {}
        }
        i += 1;
    }
}

#[test]
fn lying_header_does_not_bypass_budget() {
    let mut bytes = bomb();
    forge_uncompressed_size(&mut bytes, 1000);
    let limits = Limits {
        max_docx_uncompressed: 1_000_000,
        ..Limits::default()
    };
    let started = Instant::now();
    // zip notices the lie itself today ("larger than its declared
    // uncompressed size"); the budget is the backstop if that ever changes.
    // Either way: a refusal, never 100 MB of text.
    let err = extract(&bytes, &limits).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        err.contains("zip bomb")
            || err.contains("cannot be read")
            || err.contains("not well-formed"),
        "{err}"
    );
}

#[test]
fn budget_bounds_an_endless_reader() {
    let mut budget = 1000;
    assert!(
        read_within_budget(std::io::repeat(0), &mut budget)
            .unwrap()
            .is_none()
    );
    let mut budget = 10;
    let got = read_within_budget(&b"0123456789"[..], &mut budget).unwrap();
    assert_eq!((got.as_deref(), budget), (Some(&b"0123456789"[..]), 0));
}

#[test]
fn budget_is_shared_across_parts() {
    let filler = format!(
        r#"<w:hdr xmlns:w="{W_NS}"><w:p><w:r><w:t>{}</w:t></w:r></w:p></w:hdr>"#,
        "根".repeat(400)
    );
    let doc = format!(r#"<w:document xmlns:w="{W_NS}"/>"#);
    let bytes = zip_entries(&[
        ("word/document.xml", doc.as_bytes()),
        ("word/header1.xml", filler.as_bytes()),
        ("word/header2.xml", filler.as_bytes()),
    ]);
    let limits = Limits {
        max_docx_uncompressed: (filler.len() + doc.len() + 10) as u64,
        ..Limits::default()
    };
    let err = extract(&bytes, &limits).unwrap_err();
    assert!(err.contains("zip bomb"), "{err}");
}

#[test]
fn text_box_fallback_and_moves_are_not_duplicated() {
    let body = concat!(
        r#"<w:p><w:r><mc:AlternateContent xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006">"#,
        r#"<mc:Choice Requires="wps"><w:drawing><w:txbxContent><w:p><w:r><w:t>框内根治</w:t></w:r></w:p></w:txbxContent></w:drawing></mc:Choice>"#,
        r#"<mc:Fallback><w:pict><w:txbxContent><w:p><w:r><w:t>框内根治</w:t></w:r></w:p></w:txbxContent></w:pict></mc:Fallback>"#,
        r#"</mc:AlternateContent></w:r>"#,
        r#"<w:moveFrom w:id="2"><w:r><w:t>挪走的</w:t></w:r></w:moveFrom><w:r><w:t>尾</w:t></w:r></w:p>"#,
    );
    assert_eq!(part_text(body).unwrap(), "框内根治\n尾\n");
}

#[test]
fn cdata_and_unknown_entities() {
    let xml = "<w:p><w:r><w:t><![CDATA[<根治>]]>&nbsp;&#26681;</w:t></w:r></w:p>";
    assert_eq!(part_text(xml).unwrap(), "<根治>&nbsp;根\n");
}
