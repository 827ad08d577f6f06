//! Plain text and Markdown, plus the line bookkeeping shared with subtitles.
//!
//! Markdown is deliberately not rendered: stripping `**` or link syntax would
//! shift every column after it, and reviewers jump to findings by position.

use super::TextUnit;

/// The whole file is one unit so a phrase broken across a soft line wrap is
/// still seen by matchers that tolerate newlines.
pub(crate) fn extract(text: &str) -> Vec<TextUnit> {
    if text.is_empty() {
        return Vec::new();
    }
    vec![TextUnit {
        text: text.to_owned(),
        line: 1,
        column: 1,
        field: None,
        cue: None,
        columns: None,
    }]
}

/// Source lines paired with their 1-based numbers, terminators removed.
///
/// Only '\n' ends a line, so a "\r\n" file numbers exactly like an editor
/// shows it; the stray '\r' is dropped so it never leaks into unit text.
pub(crate) fn numbered_lines(text: &str) -> impl Iterator<Item = (u32, &str)> {
    text.split('\n').enumerate().map(|(i, line)| {
        let number = u32::try_from(i + 1).unwrap_or(u32::MAX);
        (number, line.strip_suffix('\r').unwrap_or(line))
    })
}

/// Position (1-based line, 1-based char column) of `byte_offset` in `text`.
#[cfg(test)]
pub(crate) fn position_of(text: &str, byte_offset: usize) -> (u32, u32) {
    let before = &text[..byte_offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line as u32, column as u32)
}

/// Test oracle: the text found in `source` at the unit's position, read
/// line by line exactly as the `TextUnit` contract describes.
#[cfg(test)]
pub(crate) fn text_at(source: &str, unit: &TextUnit) -> Option<String> {
    let lines: Vec<&str> = numbered_lines(source).map(|(_, l)| l).collect();
    let mut out = Vec::new();
    for (i, want) in unit.text.split('\n').enumerate() {
        let line = lines.get(unit.line as usize - 1 + i)?;
        let skip = if i == 0 { unit.column as usize - 1 } else { 0 };
        let got: String = line.chars().skip(skip).take(want.chars().count()).collect();
        out.push(got);
    }
    Some(out.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_text_is_one_unit() {
        let src = "# 新品上市\n\n**根治**高血压，100%有效。\r\n";
        let units = extract(src);
        assert_eq!(units.len(), 1);
        assert_eq!(units[0].text, src);
        assert_eq!((units[0].line, units[0].column), (1, 1));
        assert_eq!(units[0].field, None);
        assert_eq!(units[0].cue, None);
    }

    #[test]
    fn empty_text_has_no_units() {
        assert!(extract("").is_empty());
    }

    #[test]
    fn numbered_lines_handles_crlf_and_lf() {
        let lines: Vec<_> = numbered_lines("a\r\nb\nc").collect();
        assert_eq!(lines, vec![(1, "a"), (2, "b"), (3, "c")]);
    }

    #[test]
    fn position_counts_chars_not_bytes() {
        let src = "第一行\n保健品根治";
        let off = src.find("根治").unwrap();
        assert_eq!(position_of(src, off), (2, 4));
    }

    #[test]
    fn oracle_reads_back_multiline_units() {
        let unit = TextUnit {
            text: "根治\n有效".into(),
            line: 2,
            column: 3,
            field: None,
            cue: None,
            columns: None,
        };
        assert_eq!(
            text_at("x\n可以根治\r\n有效率", &unit).as_deref(),
            Some("根治\n有效")
        );
    }
}
