//! The pure core for content: one document in, findings out.
//!
//! `check_document` scans each text unit once with the shared matcher,
//! groups the hits by slot, lets every rule decide where it fires, and maps
//! each flag back to a line and column of the user's file.

use std::path::Path;

use crate::extract::{Document, TextUnit};
use crate::finding::Finding;
use crate::matcher::{Hit, SlotId};
use crate::rules::{CompiledCheck, Rule, RuleSet};

/// A hit located in one text unit of a document (byte offsets in the unit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnitHit {
    pub unit: u32,
    pub start: u32,
    pub end: u32,
}

/// A rule's verdict: fire at this hit, with an optional explanation.
#[derive(Debug, Clone)]
pub struct Flag {
    pub at: UnitHit,
    /// Why, in Chinese and in English.
    pub detail: Option<(String, String)>,
}

/// All hits of one document, sorted by slot, then by position. Two
/// parallel vectors rather than one vector per slot: a short text with a
/// few hits costs no allocation per slot of the rule set.
#[derive(Debug)]
pub struct DocHits<'a> {
    units: &'a [TextUnit],
    slots: Vec<SlotId>,
    hits: Vec<UnitHit>,
}

impl<'a> DocHits<'a> {
    pub fn hits(&self, slot: SlotId) -> &[UnitHit] {
        let a = self.slots.partition_point(|&s| s < slot);
        let b = a + self.slots[a..].partition_point(|&s| s == slot);
        &self.hits[a..b]
    }

    /// Whether some hit of `slot` covers `h` entirely (same unit, starts at or
    /// before it, ends at or after it).
    pub fn covered(&self, slot: SlotId, h: UnitHit) -> bool {
        self.hits(slot)
            .iter()
            .take_while(|e| (e.unit, e.start) <= (h.unit, h.start))
            .any(|e| e.unit == h.unit && e.end >= h.end)
    }

    pub fn text(&self, h: UnitHit) -> &'a str {
        &self.units[h.unit as usize].text[h.start as usize..h.end as usize]
    }
}

/// Scans every unit of a document and groups the hits by slot.
pub fn collect_hits<'a>(rules: &RuleSet, units: &'a [TextUnit]) -> DocHits<'a> {
    let mut all: Vec<(SlotId, UnitHit)> = Vec::new();
    let mut raw: Vec<Hit> = Vec::new();
    for (u, unit) in units.iter().enumerate() {
        raw.clear();
        rules.matcher.scan(&unit.text, &mut raw);
        all.extend(raw.iter().map(|h| {
            let at = UnitHit {
                unit: u as u32,
                start: h.start as u32,
                end: h.end as u32,
            };
            (h.slot, at)
        }));
    }
    all.sort_unstable();
    all.dedup();
    let (slots, hits) = all.into_iter().unzip();
    DocHits { units, slots, hits }
}

/// Evaluates every content rule on a document.
pub fn check_document(rules: &RuleSet, path: &Path, doc: &Document) -> Vec<Finding> {
    let encoding = (doc.encoding != "UTF-8").then_some(doc.encoding);
    check_units(rules, path, &doc.units, encoding)
}

/// Evaluates every content rule on the units of one document.
pub fn check_units(
    rules: &RuleSet,
    path: &Path,
    units: &[TextUnit],
    encoding: Option<&'static str>,
) -> Vec<Finding> {
    check_units_by(rules, path, units, encoding, &|_| true)
}

/// [`check_units`] with only the content rules `which` selects: an event's
/// text is judged by some rules only (a customer's words by the
/// customer-abuse ones), and a finding of another, made and dropped, cost
/// its copies of the rule's texts.
pub fn check_units_by(
    rules: &RuleSet,
    path: &Path,
    units: &[TextUnit],
    encoding: Option<&'static str>,
    which: &dyn Fn(&Rule) -> bool,
) -> Vec<Finding> {
    let hits = collect_hits(rules, units);
    let mut findings = Vec::new();
    if hits.hits.is_empty() {
        // Every finding is at a hit (a flag carries one), so with none
        // there is nothing to ask the rules — most replies and captions.
        return findings;
    }
    for rule in rules.rules.iter().filter(|r| which(r)) {
        let CompiledCheck::Content(check) = &rule.check else {
            continue;
        };
        check.evaluate(&hits, &mut |flag: Flag| {
            let unit = &units[flag.at.unit as usize];
            let (line, column) = locate(unit, flag.at.start as usize);
            let (end_line, end_column) = locate(unit, flag.at.end as usize);
            findings.push(Finding {
                rule: rule.meta.id.clone(),
                severity: rule.meta.severity,
                tier: rule.meta.severity.tier(),
                path: path.to_path_buf(),
                line,
                column,
                end_line,
                end_column,
                byte_start: flag.at.start as usize,
                byte_end: flag.at.end as usize,
                matched: hits.text(flag.at).to_string(),
                message: rule.meta.message.clone(),
                message_en: rule.meta.message_en.clone(),
                clause: rule.meta.clause.clone(),
                suggestion: rule.meta.suggestion.clone(),
                suggestion_en: rule.meta.suggestion_en.clone(),
                detail_en: flag.detail.as_ref().map(|d| d.1.clone()),
                detail: flag.detail.map(|d| d.0),
                tags: rule.meta.tags.clone(),
                field: unit.field.clone(),
                cue: unit.cue.clone(),
                encoding,
            });
        });
    }
    findings.sort_by(|a, b| {
        (a.line, a.column, a.severity, &a.rule).cmp(&(b.line, b.column, b.severity, &b.rule))
    });
    findings
}

/// Line and column (1-based, in characters) of byte `offset` of a unit.
fn locate(unit: &TextUnit, offset: usize) -> (u32, u32) {
    let before = &unit.text[..offset];
    if let Some(cols) = &unit.columns {
        return cols[before.chars().count()];
    }
    let newlines = before.bytes().filter(|&b| b == b'\n').count() as u32;
    match before.rfind('\n') {
        Some(nl) => (
            unit.line + newlines,
            before[nl + 1..].chars().count() as u32 + 1,
        ),
        None => (unit.line, unit.column + before.chars().count() as u32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(text: &str, line: u32, column: u32) -> TextUnit {
        TextUnit {
            text: text.to_string(),
            line,
            column,
            field: None,
            cue: None,
            columns: None,
        }
    }

    #[test]
    fn details_of_content_rules_come_in_chinese_and_english() {
        let rules = crate::rules::load(Path::new("rules")).unwrap();
        let doc = Document {
            kind: crate::extract::DocKind::Text,
            units: vec![unit("点击链接下单", 1, 1)],
            encoding: "UTF-8",
            had_replacements: false,
        };
        let f = check_document(&rules, Path::new("a.txt"), &doc);
        let f = f
            .iter()
            .find(|f| f.rule == "health-food-disclaimer")
            .expect("the disclaimer is missing");
        let (zh, en) = (
            f.detail.as_deref().unwrap(),
            f.detail_en.as_deref().unwrap(),
        );
        assert!(
            zh.starts_with("缺少：") && en.starts_with("missing: "),
            "{zh} / {en}"
        );
        assert!(f.suggestion_en.is_some());
    }

    #[test]
    fn locates_in_characters_across_lines() {
        let u = unit("第一行\n根治高血压", 3, 5);
        assert_eq!(locate(&u, 0), (3, 5));
        assert_eq!(locate(&u, 3), (3, 6));
        let second = "第一行\n".len();
        assert_eq!(locate(&u, second), (4, 1));
        assert_eq!(locate(&u, second + "根治".len()), (4, 3));
    }
}
