//! SubRip (.srt) and WebVTT (.vtt) cues.
//!
//! Subtitle files in the wild are hand-edited and exported by a dozen
//! tools, so parsing is lenient: anything that is not clearly structure
//! (index, timing, VTT header/NOTE/STYLE/REGION) is treated as text to check.
//! SRT cue text is kept verbatim. WebVTT cue text loses its markup — voice
//! and class spans (`<v 主持人>`, `<c.yellow>`), inline timestamps
//! (`<00:01.000>`) — and has its character references decoded (`&amp;`), as
//! a player shows it; each character keeps its place in the file
//! (`TextUnit::columns`), so findings still point into the file.

use super::TextUnit;
use super::text::numbered_lines;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    Srt,
    Vtt,
}

pub(crate) fn extract_srt(text: &str) -> Vec<TextUnit> {
    extract(text, Flavor::Srt)
}

pub(crate) fn extract_vtt(text: &str) -> Vec<TextUnit> {
    extract(text, Flavor::Vtt)
}

fn extract(text: &str, flavor: Flavor) -> Vec<TextUnit> {
    let mut units = Vec::new();
    let mut last_cue: Option<String> = None;
    for block in blocks(text) {
        // Index/identifier lines are optional, so the timing line may be
        // first or second; never later, or a cue text containing "-->"
        // would be mistaken for timing.
        let timing = block
            .iter()
            .take(2)
            .enumerate()
            .find_map(|(i, (_, line))| cue_start(line).map(|start| (i, start)));
        let (text_lines, cue) = match timing {
            Some((i, start)) => {
                last_cue = Some(start.to_owned());
                (&block[i + 1..], last_cue.clone())
            }
            None if is_structural(&block, flavor) => continue,
            // Text after a blank line inside a cue (common in hand-edited
            // SRT) still reaches the screen with the previous cue, so it is
            // checked and attributed to that cue rather than dropped.
            None => (&block[..], last_cue.clone()),
        };
        let Some(&(line, _)) = text_lines.first() else {
            continue;
        };
        if flavor == Flavor::Vtt
            && let Some((text, columns)) = vtt_shown(text_lines)
        {
            let Some(&(line, column)) = columns.first() else {
                continue;
            };
            if !text.trim().is_empty() {
                units.push(TextUnit {
                    text,
                    line,
                    column,
                    field: None,
                    cue,
                    columns: Some(columns),
                });
            }
            continue;
        }
        let joined: Vec<&str> = text_lines.iter().map(|&(_, l)| l).collect();
        units.push(TextUnit {
            text: joined.join("\n"),
            line,
            column: 1,
            field: None,
            cue,
            columns: None,
        });
    }
    units
}

/// A WebVTT cue's text as shown: tags removed, character references
/// decoded, with the line and column of each character (and of the end).
/// `None` when the cue has neither (its text is verbatim).
fn vtt_shown(lines: &[(u32, &str)]) -> Option<(String, Vec<(u32, u32)>)> {
    if !lines.iter().any(|(_, l)| l.contains(['<', '&'])) {
        return None;
    }
    let mut text = String::new();
    let mut cols = Vec::new();
    for (i, &(line, src)) in lines.iter().enumerate() {
        let chars: Vec<char> = src.chars().collect();
        let mut at = 0;
        while at < chars.len() {
            let column = at as u32 + 1;
            match chars[at] {
                // A tag (`<v`, `</c>`, `<i>`, `<00:01.000>`) runs to its `>`.
                // Anything else with `<` is left as text: when in doubt,
                // check more rather than hide words from the rules.
                '<' if chars
                    .get(at + 1)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '/')
                    && let Some(len) = chars[at..].iter().position(|&c| c == '>') =>
                {
                    at += len + 1;
                }
                '&' if let Some((c, len)) = reference(&chars[at..]) => {
                    if let Some(c) = c {
                        text.push(c);
                        cols.push((line, column));
                    }
                    at += len;
                }
                c => {
                    text.push(c);
                    cols.push((line, column));
                    at += 1;
                }
            }
        }
        let end = (line, chars.len() as u32 + 1);
        if i + 1 < lines.len() {
            text.push('\n');
        }
        cols.push(end);
    }
    // Markup before the first character: the unit starts where text does.
    Some((text, cols))
}

/// A character reference at the start of `s` (`&amp;`, `&#26681;`,
/// `&#x6839;`): the character (none for the invisible direction marks) and
/// how many source characters it takes.
fn reference(s: &[char]) -> Option<(Option<char>, usize)> {
    let end = s.iter().take(12).position(|&c| c == ';')?;
    let name: String = s[1..end].iter().collect();
    let c = match name.as_str() {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "nbsp" => Some('\u{a0}'),
        "lrm" | "rlm" => None,
        n => {
            let code = match n.strip_prefix("#x").or_else(|| n.strip_prefix("#X")) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => n.strip_prefix('#')?.parse().ok()?,
            };
            Some(char::from_u32(code)?)
        }
    };
    Some((c, end + 1))
}

/// Runs of non-blank lines; whitespace-only lines separate blocks too,
/// because editors leave trailing spaces that are invisible to authors.
fn blocks(text: &str) -> Vec<Vec<(u32, &str)>> {
    let mut blocks = Vec::new();
    let mut current = Vec::new();
    for (number, line) in numbered_lines(text) {
        if line.trim().is_empty() {
            if !current.is_empty() {
                blocks.push(std::mem::take(&mut current));
            }
        } else {
            current.push((number, line));
        }
    }
    if !current.is_empty() {
        blocks.push(current);
    }
    blocks
}

/// Blocks without timing that carry no on-screen text.
fn is_structural(block: &[(u32, &str)], flavor: Flavor) -> bool {
    let first = block[0].1.trim_start_matches('\u{FEFF}');
    // A lone number is an index whose timing line was lost; checking "12"
    // for prohibited phrases is pointless.
    if block.len() == 1 && first.trim().chars().all(|c| c.is_ascii_digit()) {
        return true;
    }
    flavor == Flavor::Vtt
        && ["WEBVTT", "NOTE", "STYLE", "REGION"]
            .iter()
            .any(|kw| starts_with_keyword(first, kw))
}

/// `kw` followed by end of line or whitespace, as the WebVTT spec requires
/// ("NOTEBOOK" is not a NOTE).
fn starts_with_keyword(line: &str, kw: &str) -> bool {
    line.strip_prefix(kw)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
}

/// The start time of a timing line, exactly as written, or None if `line`
/// is not one. Accepts both "00:01:02,500" (SRT) and "01:02.500" (VTT), and
/// ignores VTT cue settings after the end time.
fn cue_start(line: &str) -> Option<&str> {
    let (start, rest) = line.split_once("-->")?;
    let start = start.trim();
    let end = rest.split_whitespace().next()?;
    (is_timestamp(start) && is_timestamp(end)).then_some(start)
}

fn is_timestamp(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_digit())
        && s.contains(':')
        && s.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ':' | ',' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::text::text_at;
    use proptest::prelude::*;

    fn unit(text: &str, line: u32, cue: Option<&str>) -> TextUnit {
        TextUnit {
            text: text.into(),
            line,
            column: 1,
            field: None,
            cue: cue.map(Into::into),
            columns: None,
        }
    }

    #[test]
    fn srt_with_crlf() {
        let src = "1\r\n00:00:01,000 --> 00:00:03,500\r\n本品根治高血压\r\n三天见效\r\n\r\n\
                   2\r\n00:01:02,500 --> 00:01:05,000\r\n100%有效\r\n";
        assert_eq!(
            extract_srt(src),
            vec![
                unit("本品根治高血压\n三天见效", 3, Some("00:00:01,000")),
                unit("100%有效", 8, Some("00:01:02,500")),
            ]
        );
    }

    #[test]
    fn srt_missing_index_and_extra_blank_lines() {
        let src = "\n\n00:00:01,000 --> 00:00:02,000\n第一句\n\n\n\n\
                   7\n00:00:03,000 --> 00:00:04,000\n第二句\n";
        assert_eq!(
            extract_srt(src),
            vec![
                unit("第一句", 4, Some("00:00:01,000")),
                unit("第二句", 10, Some("00:00:03,000")),
            ]
        );
    }

    #[test]
    fn srt_text_after_blank_line_stays_with_previous_cue() {
        let src = "1\n00:00:01,000 --> 00:00:02,000\n第一句\n\n续写：根治\n\n2\n";
        assert_eq!(
            extract_srt(src),
            vec![
                unit("第一句", 3, Some("00:00:01,000")),
                unit("续写：根治", 5, Some("00:00:01,000")),
            ]
        );
    }

    #[test]
    fn srt_cue_without_text_is_skipped() {
        let src = "1\n00:00:01,000 --> 00:00:02,000\n\n2\n00:00:03,000 --> 00:00:04,000\n有效\n";
        assert_eq!(
            extract_srt(src),
            vec![unit("有效", 6, Some("00:00:03,000"))]
        );
    }

    #[test]
    fn arrow_inside_text_is_not_timing() {
        let src = "1\n00:00:01,000 --> 00:00:02,000\n服用前 --> 服用后\n";
        assert_eq!(
            extract_srt(src),
            vec![unit("服用前 --> 服用后", 3, Some("00:00:01,000"))]
        );
    }

    #[test]
    fn vtt_header_notes_and_settings() {
        let src = "WEBVTT - 保健品广告\nKind: captions\n\n\
                   NOTE 审核备注：这里不算字幕\n\n\
                   STYLE\n::cue { color: yellow }\n\n\
                   intro\n00:01.000 --> 00:04.000 align:start position:10%\n<v 主持人>根治失眠\n\n\
                   00:00:05.250 --> 00:00:07.000\n永不复发\n";
        let units = extract_vtt(src);
        assert_eq!(units.len(), 2);
        assert_eq!(
            (units[0].text.as_str(), units[0].line, units[0].column),
            ("根治失眠", 11, 8)
        );
        assert_eq!(units[1], unit("永不复发", 14, Some("00:00:05.250")));
    }

    #[test]
    fn vtt_markup_is_stripped_and_references_decoded_keeping_positions() {
        let src = "WEBVTT\n\n00:01.000 --> 00:04.000\n\
                   <v.loud 主持人><c.yellow>根治</c>失眠 &amp; <00:02.000>焦虑\n\
                   <i>三天&#x89c1;效</i>&lrm;\n";
        let units = extract_vtt(src);
        assert_eq!(units.len(), 1);
        let u = &units[0];
        assert_eq!(u.text, "根治失眠 & 焦虑\n三天见效");
        let cols = u.columns.as_ref().unwrap();
        assert_eq!(cols.len(), u.text.chars().count() + 1);
        let lines: Vec<&str> = src.lines().collect();
        // Every character shown is at its place in the file (decoded ones at
        // their `&`).
        for (c, &(line, col)) in u.text.chars().zip(cols.iter()) {
            let at = lines[line as usize - 1].chars().nth(col as usize - 1);
            match c {
                '\n' => assert_eq!(at, None),
                '&' | '见' => assert_eq!(at, Some('&')),
                c => assert_eq!(at, Some(c), "{c} at {line}:{col}"),
            }
        }
        assert_eq!(cols[0], (4, 23));
        assert_eq!(
            *cols.last().unwrap(),
            (5, lines[4].chars().count() as u32 + 1)
        );
        // What a finding reports: the match's place in the file.
        let rules = crate::rules::load(std::path::Path::new("rules")).unwrap();
        let f = crate::check::check_units(&rules, std::path::Path::new("a.vtt"), &units, None);
        let cure = f.iter().find(|f| f.matched == "根治").expect("根治 found");
        // The span ends where the next shown character starts (after `</c>`).
        assert_eq!((cure.line, cure.column, cure.end_column), (4, 23, 29));
        assert_eq!(cure.matched, "根治");
    }

    #[test]
    fn a_lone_angle_bracket_or_ampersand_is_text() {
        let src = "WEBVTT\n\n00:01.000 --> 00:04.000\n1 < 2 & 3 > 0\n";
        assert_eq!(extract_vtt(src)[0].text, "1 < 2 & 3 > 0");
        let src = "WEBVTT\n\n00:01.000 --> 00:04.000\n<c></c>\n";
        assert!(extract_vtt(src).is_empty());
    }

    #[test]
    fn vtt_keyword_needs_word_boundary() {
        let src = "WEBVTT\n\nNOTEBOOK 根治\n";
        assert_eq!(extract_vtt(src), vec![unit("NOTEBOOK 根治", 3, None)]);
    }

    #[test]
    fn srt_keeps_note_like_text() {
        let src = "NOTE 根治\n";
        assert_eq!(extract_srt(src), vec![unit("NOTE 根治", 1, None)]);
    }

    #[test]
    fn timestamps() {
        assert_eq!(
            cue_start("00:00:01,000 --> 00:00:02,000"),
            Some("00:00:01,000")
        );
        assert_eq!(cue_start("01.000-->02.000"), None);
        assert_eq!(cue_start("a --> b"), None);
        assert_eq!(cue_start("00:01.000 -->"), None);
    }

    fn cue_line() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            Just("   ".to_owned()),
            Just("12".to_owned()),
            Just("00:00:01,000 --> 00:00:02,000".to_owned()),
            Just("00:01.000 --> 00:02.000 line:0".to_owned()),
            "[根治有效高血压a-z ]{1,8}",
        ]
    }

    proptest! {
        /// Whatever the layout, each unit's text is found verbatim at its
        /// reported position.
        #[test]
        fn positions_point_at_text(
            lines in proptest::collection::vec(cue_line(), 0..20),
            crlf in any::<bool>(),
        ) {
            let src = lines.join(if crlf { "\r\n" } else { "\n" });
            for units in [extract_srt(&src), extract_vtt(&src)] {
                for u in units {
                    prop_assert_eq!(text_at(&src, &u), Some(u.text.clone()));
                }
            }
        }
    }
}
