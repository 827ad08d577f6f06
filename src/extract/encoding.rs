//! Byte-to-text decoding for files that carry no reliable charset label.
//!
//! Chinese marketing drafts arrive from Windows machines as GBK as often as
//! UTF-8, so guessing is unavoidable; the order below prefers certainty (BOM,
//! valid UTF-8) over statistics (chardetng).

use chardetng::{EncodingDetector, Iso2022JpDetection, Utf8Detection};
use encoding_rs::{Encoding, GB18030, GBK, UTF_8, UTF_16BE, UTF_16LE};

/// chardetng's accuracy plateaus long before this; feeding more only costs time.
const DETECT_SAMPLE_BYTES: usize = 64 * 1024;

/// Decode bytes to text: BOM sniff, else strict UTF-8, else chardetng with a
/// `.cn` bias. Returns (text without BOM, encoding name, had_replacements).
pub fn decode(bytes: &[u8]) -> (String, &'static str, bool) {
    if let Some((enc, bom_len)) = Encoding::for_bom(bytes) {
        let (text, had_replacements) = enc.decode_without_bom_handling(&bytes[bom_len..]);
        let name = if enc == UTF_8 {
            "UTF-8 (BOM)"
        } else {
            display_name(enc)
        };
        return (text.into_owned(), name, had_replacements);
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => return (text.to_owned(), "UTF-8", false),
        // Only the final character is cut off (a file truncated by a
        // byte-limited export): still UTF-8. chardetng would rule UTF-8
        // out and decode the whole file as mojibake.
        Err(e) if e.error_len().is_none() => {
            return (String::from_utf8_lossy(bytes).into_owned(), "UTF-8", true);
        }
        Err(_) => {}
    }
    let enc = detect(bytes);
    let (text, had_replacements) = enc.decode_without_bom_handling(bytes);
    (text.into_owned(), display_name(enc), had_replacements)
}

fn detect(bytes: &[u8]) -> &'static Encoding {
    let sample = &bytes[..bytes.len().min(DETECT_SAMPLE_BYTES)];
    let mut detector = EncodingDetector::new(Iso2022JpDetection::Deny);
    detector.feed(sample, sample.len() == bytes.len());
    let guess = detector.guess(Some(b"cn"), Utf8Detection::Allow);
    // GB18030 is a strict superset of GBK and decodes the four-byte
    // sequences GBK tools still emit for rare hanzi; the GBK decoder in
    // encoding_rs is already GB18030-capable, but naming it so keeps reports
    // from implying a narrower charset than was actually applied.
    if guess == GBK { GB18030 } else { guess }
}

fn display_name(enc: &'static Encoding) -> &'static str {
    if enc == UTF_8 {
        "UTF-8"
    } else if enc == UTF_16LE {
        "UTF-16LE"
    } else if enc == UTF_16BE {
        "UTF-16BE"
    } else if enc == GB18030 || enc == GBK {
        "GB18030"
    } else {
        enc.name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SAMPLE: &str = "本产品可根治高血压，100%有效，无任何副作用！";

    #[test]
    fn plain_utf8() {
        let (text, enc, bad) = decode(SAMPLE.as_bytes());
        assert_eq!((text.as_str(), enc, bad), (SAMPLE, "UTF-8", false));
    }

    #[test]
    fn utf8_bom_is_stripped() {
        let mut bytes = vec![0xEF, 0xBB, 0xBF];
        bytes.extend_from_slice(SAMPLE.as_bytes());
        let (text, enc, bad) = decode(&bytes);
        assert_eq!((text.as_str(), enc, bad), (SAMPLE, "UTF-8 (BOM)", false));
    }

    #[test]
    fn utf16le_with_bom() {
        let mut bytes = vec![0xFF, 0xFE];
        bytes.extend(SAMPLE.encode_utf16().flat_map(u16::to_le_bytes));
        let (text, enc, bad) = decode(&bytes);
        assert_eq!((text.as_str(), enc, bad), (SAMPLE, "UTF-16LE", false));
    }

    #[test]
    fn utf16be_with_bom() {
        let mut bytes = vec![0xFE, 0xFF];
        bytes.extend(SAMPLE.encode_utf16().flat_map(u16::to_be_bytes));
        let (text, enc, bad) = decode(&bytes);
        assert_eq!((text.as_str(), enc, bad), (SAMPLE, "UTF-16BE", false));
    }

    #[test]
    fn gbk_is_reported_as_gb18030() {
        let (bytes, _, unmappable) = GBK.encode(SAMPLE);
        assert!(!unmappable);
        let (text, enc, bad) = decode(&bytes);
        assert_eq!((text.as_str(), enc, bad), (SAMPLE, "GB18030", false));
    }

    #[test]
    fn gbk_traditional_text() {
        // Traditional characters exist in GBK too; detection must still
        // land on the GB family with the .cn hint, not on Big5.
        let s = "本品專門治療高血壓，服用三天即可痊癒，保證有效。";
        let (bytes, _, unmappable) = GBK.encode(s);
        assert!(!unmappable);
        let (text, enc, _) = decode(&bytes);
        assert_eq!((text.as_str(), enc), (s, "GB18030"));
    }

    #[test]
    fn truncated_utf8_reports_replacements() {
        let mut bytes = SAMPLE.as_bytes().to_vec();
        bytes.extend_from_slice(&"根".as_bytes()[..2]);
        let (text, enc, bad) = decode(&bytes);
        assert_eq!((enc, bad), ("UTF-8", true));
        assert_eq!(text, format!("{SAMPLE}\u{FFFD}"));
    }

    #[test]
    fn detection_only_samples_the_start() {
        // Valid UTF-8 for the whole detection window, then one stray GBK
        // byte pair: chardetng sees only UTF-8, so the file decodes as UTF-8
        // with a replacement instead of being re-read as GB18030.
        let mut bytes = SAMPLE.repeat(2000).into_bytes();
        assert!(bytes.len() > DETECT_SAMPLE_BYTES);
        bytes.extend_from_slice(&[0xB8, 0xF9, b'!']);
        let (text, enc, bad) = decode(&bytes);
        assert_eq!((enc, bad), ("UTF-8", true));
        assert!(text.starts_with(SAMPLE));
        assert!(text.ends_with("\u{FFFD}!"));
    }

    #[test]
    fn empty_input() {
        assert_eq!(decode(b""), (String::new(), "UTF-8", false));
    }

    proptest! {
        #[test]
        fn never_panics_and_keeps_valid_utf8(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let (text, enc, bad) = decode(&bytes);
            if enc == "UTF-8" && !bad {
                prop_assert_eq!(text.as_bytes(), &bytes[..]);
            }
        }
    }
}
