//! One pass over a text finds every phrase and regex of every rule.
//!
//! All literal phrases of all rules are folded (see [`crate::normalize`]) and
//! compiled into a single character-wise double-array Aho–Corasick automaton;
//! all regexes into one multi-pattern regex (see [`regexes`]). Rules never see the automaton: each
//! group of phrases a rule declares (its hits, its exceptions, its triggers …)
//! is a *slot*, and a scan reports `(slot, original span)` pairs. A phrase
//! shared by several slots is stored once and reported for each.
//!
//! Folding is fused with matching: the text is decoded one character at a
//! time, folded, and fed to the automaton's stepper, while a small ring
//! remembers where each folded character came from. No folded copy of the
//! text is built, and every hit maps back to the exact original bytes —
//! including interference characters inside it (`根 @ 治`).

use std::collections::HashMap;

use regex_syntax::hir::Hir;

use crate::normalize::{Folder, folder};

mod automaton;
mod regexes;
use automaton::{Automaton, RESET, State};
use regexes::Regexes;

/// Identifies one group of phrases/regexes declared by a rule.
pub type SlotId = u32;

/// A match in the original text: byte offsets of its first and past its last
/// character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hit {
    pub slot: SlotId,
    pub start: usize,
    pub end: usize,
}

/// Why a phrase or regex cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternError {
    /// The phrase consists only of interference characters (spaces,
    /// punctuation, symbols), which matching skips.
    EmptyAfterFolding,
    /// The regex engine rejected the pattern; its own message.
    Regex(String),
    /// The regex matches the empty string, which would flag every text.
    RegexMatchesEmpty,
    /// The phrase folds to a single letter or digit (`C++` → `c`), which
    /// would match that letter everywhere.
    SingleLetter(String),
}

impl std::fmt::Display for PatternError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PatternError::EmptyAfterFolding => f.write_str(
                "the phrase has only spaces, punctuation or symbols, which matching skips; \
                 use a regex to match them",
            ),
            PatternError::Regex(m) => write!(f, "invalid regex: {m}"),
            PatternError::RegexMatchesEmpty => {
                f.write_str("the regex matches empty text, so it would flag every document")
            }
            PatternError::SingleLetter(folded) => write!(
                f,
                "the phrase folds to the single character `{folded}` (punctuation and symbols \
                 are skipped), which would match it everywhere; use a regex such as `\\bc\\+\\+`"
            ),
        }
    }
}

#[derive(Debug, Default)]
pub struct MatcherBuilder {
    index: HashMap<String, u32>,
    pattern_slots: Vec<Vec<SlotId>>,
    regexes: Vec<(Hir, SlotId)>,
    slots: u32,
}

impl MatcherBuilder {
    pub fn new() -> MatcherBuilder {
        MatcherBuilder::default()
    }

    pub fn new_slot(&mut self) -> SlotId {
        self.slots += 1;
        self.slots - 1
    }

    pub fn add_phrase(&mut self, slot: SlotId, phrase: &str) -> Result<(), PatternError> {
        let folded = folder().fold_phrase(phrase);
        if folded.is_empty() {
            return Err(PatternError::EmptyAfterFolding);
        }
        if folded.len() == 1 && folded.as_bytes()[0].is_ascii_alphanumeric() {
            return Err(PatternError::SingleLetter(folded));
        }
        let next = self.pattern_slots.len() as u32;
        let id = *self.index.entry(folded).or_insert(next);
        if id == next {
            self.pattern_slots.push(Vec::new());
        }
        let slots = &mut self.pattern_slots[id as usize];
        if !slots.contains(&slot) {
            slots.push(slot);
        }
        Ok(())
    }

    /// Adds a regex. It runs over the text folded for width and
    /// Traditional/Simplified (not for interference characters), case-insensitively;
    /// the pattern's own non-ASCII characters are folded the same way.
    pub fn add_regex(&mut self, slot: SlotId, pattern: &str) -> Result<(), PatternError> {
        let hir = regexes::check(&regexes::fold_pattern(pattern))?;
        self.regexes.push((hir, slot));
        Ok(())
    }

    /// Whether a valid `pattern` uses a Unicode word boundary (`\b`, `\B`,
    /// `\<`, `\>`): Chinese characters are word characters to it, so it
    /// never holds between `号` and `6` in `卡号6222…` — rule authors mean
    /// `(?-u:\b)` (docs/rules.md). Measured: `\b\d{16}\b` finds none of
    /// 600 card numbers after 卡号 in 7 MB of Chinese text, the ASCII
    /// boundary all 600.
    pub fn unicode_word_boundary(pattern: &str) -> bool {
        regexes::check(&regexes::fold_pattern(pattern))
            .is_ok_and(|h| regexes::has_unicode_word_look(&h))
    }

    pub fn slot_count(&self) -> u32 {
        self.slots
    }

    pub fn build(self) -> Matcher {
        self.build_with(None)
    }

    /// Builds, with the automaton's branch-free step forced on or off
    /// (`None`: by automaton size). Tests use it to check that both steps
    /// find the same hits.
    pub fn build_with(self, select: Option<bool>) -> Matcher {
        let mut patterns: Vec<(String, u32)> = self.index.into_iter().collect();
        patterns.sort_unstable_by_key(|&(_, id)| id);
        let ac = (!patterns.is_empty())
            .then(|| Automaton::build(patterns.iter().map(|(p, id)| (p.as_str(), *id)), select));
        let mut slot_start = Vec::with_capacity(self.pattern_slots.len() + 1);
        let mut slot_data = Vec::new();
        for s in &self.pattern_slots {
            slot_start.push(slot_data.len() as u32);
            slot_data.extend_from_slice(s);
        }
        slot_start.push(slot_data.len() as u32);

        let regexes = Regexes::build(self.regexes);
        let max_chars = patterns
            .iter()
            .map(|(p, _)| p.chars().count())
            .max()
            .unwrap_or(1);
        // Keyed by folded character count: must outlast the longest phrase.
        let ring = (max_chars + 1).next_power_of_two();
        let f = folder();
        let table = match &ac {
            Some(ac) => (0..0x10000u32)
                .map(|cp| char::from_u32(cp).map_or(SLOW, |c| entry(f, ac, c)))
                .collect(),
            None => Box::default(),
        };
        Matcher {
            ac,
            table,
            phrase_count: patterns.len(),
            slot_start,
            slot_data,
            ring,
            regexes,
            slots: self.slots,
        }
    }
}

/// `Matcher::table` entry of the characters looked up each time (codes
/// beyond 16 bits). The others are automaton codes, RESET or KEEP.
const SLOW: u16 = 0xFFFE;
/// The class of a character matching skips (interference): the scan passes
/// over it without touching the automaton. A branch, unlike RESET: in real
/// text punctuation and spaces come in rhythms the predictor learns (every
/// 5 or 7 characters in a poem), and a select would lengthen the chain of
/// dependent operations from one character to the next (measured: 10k
/// phrases 448 -> 524 MB/s with the branch).
const KEEP: u32 = 0xFFFF;

/// What the scan feeds the automaton for a character: KEEP (interference,
/// skipped), its folded form's code, or RESET (its folded form is in no
/// phrase, so no match runs across it).
#[inline(always)]
fn class(f: &Folder, ac: &Automaton, c: char) -> u32 {
    match f.fold(c) {
        None => KEEP,
        Some(nc) => ac.code(nc).unwrap_or(RESET),
    }
}

/// The table entry of a BMP character: its class, or SLOW for codes that do
/// not fit in 16 bits (an alphabet of more than 65,533 characters).
fn entry(f: &Folder, ac: &Automaton, c: char) -> u16 {
    u16::try_from(class(f, ac, c)).unwrap_or(SLOW)
}

/// The compiled matcher; immutable and shared between threads.
pub struct Matcher {
    ac: Option<Automaton>,
    phrase_count: usize,
    slot_start: Vec<u32>,
    slot_data: Vec<SlotId>,
    ring: usize,
    /// Per BMP code point, folding and the automaton's alphabet in one
    /// lookup: what `class` gives, or SLOW (see `entry`). Astral characters
    /// are looked up each time.
    table: Box<[u16]>,
    regexes: Option<Regexes>,
    slots: u32,
}

impl std::fmt::Debug for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Matcher")
            .field("phrases", &self.phrase_count)
            .field("regexes", &self.regexes.as_ref().map_or(0, Regexes::len))
            .field("slots", &self.slots)
            .finish_non_exhaustive()
    }
}

impl Matcher {
    pub fn slot_count(&self) -> u32 {
        self.slots
    }

    pub fn phrase_count(&self) -> usize {
        self.phrase_count
    }

    /// Heap size of the phrase automaton in bytes, its alphabet (the fold
    /// table) included.
    pub fn automaton_bytes(&self) -> usize {
        self.ac
            .as_ref()
            .map_or(0, |a| a.heap_bytes() + size_of_val(&*self.table))
    }

    /// Gives back the regexes' working memory (their lazy DFAs' states and
    /// sets), which the next scan makes anew: for an idle daemon.
    pub fn release_caches(&self) {
        if let Some(r) = &self.regexes {
            r.release_cache();
        }
    }

    #[inline]
    fn slots_of(&self, pattern: u32) -> &[SlotId] {
        let a = self.slot_start[pattern as usize] as usize;
        let b = self.slot_start[pattern as usize + 1] as usize;
        &self.slot_data[a..b]
    }

    /// Appends every hit in `text` to `out`: every phrase occurrence,
    /// overlapping ones included, and every regex match.
    pub fn scan(&self, text: &str, out: &mut Vec<Hit>) {
        self.scan_phrases(text, |pattern, start, end| {
            for &slot in self.slots_of(pattern) {
                out.push(Hit { slot, start, end });
            }
        });
        if let Some(r) = &self.regexes {
            r.scan(text, out);
        }
    }

    /// Calls `emit(pattern, start, end)` for every phrase occurrence, with
    /// byte offsets in the original text. Also used by the benchmark, which
    /// counts matches without materialising them.
    #[inline]
    pub fn scan_phrases(&self, text: &str, emit: impl FnMut(u32, usize, usize)) {
        let Some(ac) = &self.ac else { return };
        if ac.selects() {
            self.scan_with::<true>(ac, text, emit);
        } else {
            self.scan_with::<false>(ac, text, emit);
        }
    }

    /// The scan, with the automaton's branch-free step (`SELECT`) or its
    /// predicted one, which tells characters in no phrase apart first.
    #[inline(always)]
    fn scan_with<const SELECT: bool>(
        &self,
        ac: &Automaton,
        text: &str,
        mut emit: impl FnMut(u32, usize, usize),
    ) {
        let mask = self.ring - 1;
        // Original byte offset of each character fed to the automaton, by
        // their count (mod the ring size): a match's start is looked up
        // directly from its length.
        // Phrases rarely exceed 63 characters: keep the ring on the stack then.
        let mut stack = [0usize; 64];
        let mut heap = Vec::new();
        let ring: &mut [usize] = if self.ring <= stack.len() {
            &mut stack[..self.ring]
        } else {
            heap.resize(self.ring, 0);
            &mut heap
        };
        let mut state = State::ROOT;
        let mut n = 0usize;
        for (i, c) in text.char_indices() {
            let cp = c as u32;
            let mut code = if cp < 0x10000 {
                u32::from(self.table[cp as usize])
            } else {
                u32::from(SLOW)
            };
            if code == u32::from(SLOW) {
                code = class(folder(), ac, c);
            }
            if code == KEEP {
                continue;
            }
            if !SELECT && code == RESET {
                state = State::ROOT;
                continue;
            }
            ring[n & mask] = i;
            n += 1;
            state = if SELECT {
                ac.next(state, code)
            } else {
                ac.next_predicted(state, code)
            };
            if state.has_output() {
                let end = i + c.len_utf8();
                ac.for_each_output(state, |value, len| {
                    emit(value, ring[(n - len as usize) & mask], end);
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(phrases: &[&str]) -> Matcher {
        let mut b = MatcherBuilder::new();
        let s = b.new_slot();
        for p in phrases {
            b.add_phrase(s, p).unwrap();
        }
        b.build()
    }

    fn spans<'t>(m: &Matcher, text: &'t str) -> Vec<&'t str> {
        let mut out = Vec::new();
        m.scan(text, &mut out);
        out.sort();
        out.iter().map(|h| &text[h.start..h.end]).collect()
    }

    #[test]
    fn finds_disguised_phrases_with_original_spans() {
        let m = matcher(&["根治", "100%有效"]);
        assert_eq!(spans(&m, "可根 治高血压"), ["根 治"]);
        assert_eq!(spans(&m, "根@治"), ["根@治"]);
        assert_eq!(spans(&m, "保证１００ ％ 有 效！"), ["１００ ％ 有 效"]);
        assert_eq!(spans(&m, "100%有效"), ["100%有效"]);
        assert_eq!(spans(&m, "根治療"), ["根治"]);
        assert_eq!(spans(&m, "根\u{200B}治"), ["根\u{200B}治"]);
    }

    #[test]
    fn characters_outside_every_phrase_break_matches() {
        let m = matcher(&["根治", "治疗"]);
        assert!(spans(&m, "根x治").is_empty());
        assert!(spans(&m, "根很治").is_empty());
        assert_eq!(spans(&m, "根治，很好，根治疗"), ["根治", "根治", "治疗"]);
        // Astral characters take the slow path both as text and as phrase.
        let m = matcher(&["𠀀治"]);
        assert_eq!(spans(&m, "𠀀 治 𠀁𠀀治"), ["𠀀 治", "𠀀治"]);
    }

    #[test]
    fn reports_every_overlapping_hit() {
        let m = matcher(&["我的", "我的世界", "世界"]);
        let mut hits = Vec::new();
        m.scan("我的世界", &mut hits);
        assert_eq!(hits.len(), 3);
        assert_eq!(spans(&m, "我的世界"), ["我的", "我的世界", "世界"]);
    }

    #[test]
    fn traditional_text_meets_simplified_phrase_and_back() {
        let m = matcher(&["治疗", "療效"]);
        assert_eq!(spans(&m, "治療和疗效"), ["治療", "疗效"]);
    }

    #[test]
    fn shared_phrase_reports_each_slot() {
        let mut b = MatcherBuilder::new();
        let a = b.new_slot();
        let c = b.new_slot();
        b.add_phrase(a, "最佳").unwrap();
        b.add_phrase(c, "最 佳").unwrap();
        let m = b.build();
        let mut hits = Vec::new();
        m.scan("最佳", &mut hits);
        hits.sort();
        assert_eq!(
            hits,
            [
                Hit {
                    slot: a,
                    start: 0,
                    end: 6
                },
                Hit {
                    slot: c,
                    start: 0,
                    end: 6
                }
            ]
        );
    }

    #[test]
    fn a_unicode_word_boundary_is_told_from_an_ascii_one() {
        for p in [r"\b\d{16}\b", r"x\B", r"(a|\bb)+", r"\b{start}卡"] {
            assert!(MatcherBuilder::unicode_word_boundary(p), "{p}");
        }
        for p in [r"(?-u:\b)\d{16}(?-u:\b)", r"\d+", "(abc", r"\\b"] {
            assert!(!MatcherBuilder::unicode_word_boundary(p), "{p}");
        }
    }

    #[test]
    fn rejects_empty_phrases_and_bad_regexes() {
        let mut b = MatcherBuilder::new();
        let s = b.new_slot();
        assert_eq!(
            b.add_phrase(s, " ，！"),
            Err(PatternError::EmptyAfterFolding)
        );
        assert!(
            matches!(b.add_regex(s, "(abc"), Err(PatternError::Regex(m)) if m.contains("unclosed"))
        );
        assert_eq!(b.add_regex(s, "a*"), Err(PatternError::RegexMatchesEmpty));
    }

    #[test]
    fn regexes_see_width_and_script_folding() {
        let mut b = MatcherBuilder::new();
        let s = b.new_slot();
        b.add_regex(s, r"有效率\s*\d+%").unwrap();
        b.add_regex(s, "治療").unwrap();
        let m = b.build();
        assert_eq!(spans(&m, "有效率 ９８％，治疗"), ["有效率 ９８％", "治疗"]);
    }
}
