//! Word .docx: text of the main document, headers, footers, notes and
//! comments, one unit per part.
//!
//! A .docx is attacker-shaped input (anyone can upload one), so the archive
//! is read with an entry cap and a decompression budget that ignores the
//! sizes the zip headers claim.

use std::io::{Cursor, Read};

use quick_xml::Reader;
use quick_xml::events::Event;

use super::{Limits, TextUnit, decode};

/// Extracts every text-bearing part; Err is the NotChecked reason.
/// The bool is true when some part needed replacement characters.
pub(crate) fn extract(bytes: &[u8], limits: &Limits) -> Result<(Vec<TextUnit>, bool), String> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| format!(".docx is not a valid zip archive: {e}"))?;
    if archive.len() > limits.max_docx_entries {
        return Err(format!(
            ".docx has {} entries, over the {}-entry limit",
            archive.len(),
            limits.max_docx_entries
        ));
    }
    let mut parts: Vec<(PartKey, String)> = archive
        .file_names()
        .filter_map(Result::ok)
        .filter_map(|name| part_key(&name).map(|key| (key, name.into_owned())))
        .collect();
    parts.sort();
    if parts.first().is_none_or(|(key, _)| key.rank != 0) {
        return Err(".docx has no word/document.xml (not a Word document?)".to_owned());
    }

    let mut budget = limits.max_docx_uncompressed;
    let mut units = Vec::new();
    let mut had_replacements = false;
    for (key, name) in parts {
        let xml = read_part(&mut archive, &name, &mut budget, limits)?;
        let (xml, _, bad) = decode(&xml);
        had_replacements |= bad;
        let text = part_text(&xml)
            .map_err(|e| format!(".docx part {name} is not well-formed XML: {e}"))?;
        if text.trim().is_empty() {
            continue;
        }
        units.push(TextUnit {
            text,
            line: 1,
            column: 1,
            field: Some(key.label),
            cue: None,
            columns: None,
        });
    }
    Ok((units, had_replacements))
}

/// Sort key giving a stable, reader-friendly order: body, headers, footers,
/// footnotes, endnotes, comments; numbered parts numerically (header2
/// before header10).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct PartKey {
    rank: u8,
    number: u32,
    label: String,
}

fn part_key(name: &str) -> Option<PartKey> {
    let lower = name.to_ascii_lowercase();
    let stem = lower.strip_prefix("word/")?.strip_suffix(".xml")?;
    let fixed = |rank, label: &str| {
        Some(PartKey {
            rank,
            number: 0,
            label: label.to_owned(),
        })
    };
    match stem {
        "document" => return fixed(0, "body"),
        "footnotes" => return fixed(3, "footnotes"),
        "endnotes" => return fixed(4, "endnotes"),
        "comments" => return fixed(5, "comments"),
        _ => {}
    }
    for (rank, prefix) in [(1, "header"), (2, "footer")] {
        if let Some(digits) = stem.strip_prefix(prefix)
            && !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
        {
            return Some(PartKey {
                rank,
                number: digits.parse().unwrap_or(u32::MAX),
                label: stem.to_owned(),
            });
        }
    }
    None
}

/// Inflates one entry within the remaining budget. The header's declared
/// size is only used to fail early; the `take` is what actually bounds work,
/// since a forged header can claim anything.
fn read_part(
    archive: &mut zip::ZipArchive<Cursor<&[u8]>>,
    name: &str,
    budget: &mut u64,
    limits: &Limits,
) -> Result<Vec<u8>, String> {
    let bomb = || {
        format!(
            ".docx expands past {} bytes (zip bomb?)",
            limits.max_docx_uncompressed
        )
    };
    let entry = archive
        .by_name(name)
        .map_err(|e| format!(".docx part {name} cannot be read: {e}"))?;
    if entry.size() > *budget {
        return Err(bomb());
    }
    match read_within_budget(entry, budget) {
        Ok(Some(out)) => Ok(out),
        Ok(None) => Err(bomb()),
        Err(e) => Err(format!(".docx part {name} cannot be read: {e}")),
    }
}

/// Reads all of `reader` if it fits in `budget` (which is then reduced),
/// or returns None after reading at most one byte past it.
fn read_within_budget(reader: impl Read, budget: &mut u64) -> std::io::Result<Option<Vec<u8>>> {
    let mut out = Vec::new();
    reader
        .take(budget.saturating_add(1))
        .read_to_end(&mut out)?;
    let used = out.len() as u64;
    if used > *budget {
        return Ok(None);
    }
    *budget -= used;
    Ok(Some(out))
}

/// Flattens WordprocessingML to text: runs joined, one '\n' per paragraph.
///
/// Elements are matched by local name so documents using a prefix other
/// than `w:` (some generators do) still work.
fn part_text(xml: &str) -> Result<String, String> {
    let mut reader = Reader::from_str(xml);
    let mut out = String::new();
    // Depth counters rather than flags: these elements can nest (runs inside
    // text boxes inside runs).
    let mut in_text = 0u32;
    let mut in_run = 0u32;
    // Deleted/moved-away revisions and the VML fallback copy of text boxes
    // would otherwise report text that is not (or not twice) in the document.
    let mut hidden = 0u32;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("{e} (at byte {})", reader.error_position()))?;
        match event {
            Event::Eof => break,
            Event::Start(e) => match e.local_name().as_ref() {
                "t" => in_text += 1,
                "r" => in_run += 1,
                "del" | "moveFrom" | "Fallback" => hidden += 1,
                // `<w:br></w:br>` is legal, if unusual; a paragraph start is
                // not a character, its end is.
                "p" => {}
                other => push_char_element(&mut out, other, in_run, hidden),
            },
            Event::Empty(e) => match e.local_name().as_ref() {
                // `<w:p/>` is an empty paragraph: still a line.
                "p" if hidden == 0 => out.push('\n'),
                other => push_char_element(&mut out, other, in_run, hidden),
            },
            Event::End(e) => match e.local_name().as_ref() {
                "t" => in_text = in_text.saturating_sub(1),
                "r" => in_run = in_run.saturating_sub(1),
                "del" | "moveFrom" | "Fallback" => hidden = hidden.saturating_sub(1),
                "p" if hidden == 0 => out.push('\n'),
                _ => {}
            },
            Event::Text(t) if in_text > 0 && hidden == 0 => out.push_str(&t.xml10_content()),
            Event::CData(t) if in_text > 0 && hidden == 0 => out.push_str(&t.xml10_content()),
            Event::GeneralRef(r) if in_text > 0 && hidden == 0 => {
                let resolved = r.resolve_char_ref().map_err(|e| e.to_string())?;
                match resolved.or_else(|| predefined_entity(&r.xml10_content())) {
                    Some(c) => out.push(c),
                    // Undeclared entity: Word never writes these; keep the
                    // source form so nothing silently disappears.
                    None => {
                        out.push('&');
                        out.push_str(&r.xml10_content());
                        out.push(';');
                    }
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Elements that stand for characters. `w:tab` also appears in paragraph
/// properties as a tab-stop definition, hence the in-run check.
fn push_char_element(out: &mut String, local: &str, in_run: u32, hidden: u32) {
    if hidden > 0 {
        return;
    }
    match local {
        "tab" if in_run > 0 => out.push('\t'),
        "br" | "cr" if in_run > 0 => out.push('\n'),
        "noBreakHyphen" if in_run > 0 => out.push('-'),
        _ => {}
    }
}

fn predefined_entity(name: &str) -> Option<char> {
    Some(match name {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "apos" => '\'',
        "quot" => '"',
        _ => return None,
    })
}

#[cfg(test)]
pub(crate) mod tests;
