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

use std::collections::{HashMap, HashSet};

use daachorse::{CharwiseDoubleArrayAhoCorasick, CharwiseDoubleArrayAhoCorasickBuilder, MatchKind};
use regex_syntax::hir::Hir;

use crate::normalize::{Folder, folder};

mod regexes;
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

    pub fn slot_count(&self) -> u32 {
        self.slots
    }

    pub fn build(self) -> Matcher {
        self.build_with(None)
    }

    /// Builds, with the root skip forced on or off (`None`: by automaton size).
    /// Tests use it to check that both paths find the same hits.
    pub fn build_with(self, root_skip: Option<bool>) -> Matcher {
        let mut patterns: Vec<(String, u32)> = self.index.into_iter().collect();
        patterns.sort_unstable_by_key(|&(_, id)| id);
        let ac = if patterns.is_empty() {
            None
        } else {
            // Patterns are de-duplicated after folding above, which is the only
            // way daachorse's builder can fail here besides exceeding its
            // capacity (~2^31 states), far beyond any dictionary we accept.
            let mut ac = CharwiseDoubleArrayAhoCorasickBuilder::new()
                .match_kind(MatchKind::Standard)
                .build_with_values(patterns.iter().map(|(p, id)| (p.as_str(), *id)))
                .expect("automaton over de-duplicated non-empty patterns");
            if root_skip.unwrap_or(ac.heap_bytes() <= ROOT_SKIP_MAX_BYTES) {
                ac.cache_depths().expect("depths of a standard automaton");
            }
            Some(ac)
        };
        let mut slot_start = Vec::with_capacity(self.pattern_slots.len() + 1);
        let mut slot_data = Vec::new();
        for s in &self.pattern_slots {
            slot_start.push(slot_data.len() as u32);
            slot_data.extend_from_slice(s);
        }
        slot_start.push(slot_data.len() as u32);

        let regexes = Regexes::build(self.regexes);
        let max_bytes = patterns.iter().map(|(p, _)| p.len()).max().unwrap_or(1);
        // Keyed by folded byte position: must outlast the longest phrase.
        let ring = (max_bytes + 1).next_power_of_two();
        let alphabet: HashSet<char> = patterns.iter().flat_map(|(p, _)| p.chars()).collect();
        let f = folder();
        // Small automata: a bitset of the characters that begin a phrase
        // lets the scan skip the others while no match is under way.
        let starts = ac
            .as_ref()
            .filter(|a| root_skip.unwrap_or(a.heap_bytes() <= ROOT_SKIP_MAX_BYTES))
            .map(|_| {
                let first: HashSet<char> = patterns
                    .iter()
                    .filter_map(|(p, _)| p.chars().next())
                    .collect();
                let mut bits = vec![0u64; 0x10000 / 64].into_boxed_slice();
                for cp in 0..0x10000u32 {
                    if let Some(nc) = char::from_u32(cp).and_then(|c| f.fold(c))
                        && first.contains(&nc)
                    {
                        bits[(cp >> 6) as usize] |= 1 << (cp & 63);
                    }
                }
                bits
            });
        let table = (0..0x10000u32)
            .map(|cp| char::from_u32(cp).map_or(SLOW, |c| entry(f, &alphabet, c)))
            .collect();
        Matcher {
            ac,
            starts,
            table,
            alphabet,
            phrase_count: patterns.len(),
            slot_start,
            slot_data,
            ring,
            regexes,
            slots: self.slots,
        }
    }
}

/// Automata up to this size track whether they are at the root (their
/// depth table then stays in cache); bigger ones pay more for the lookup
/// than skipping saves.
const ROOT_SKIP_MAX_BYTES: usize = 1 << 20;

/// `Matcher::table` entries that are not a folded character.
const SKIP: u16 = 0;
const IDLE: u16 = 0xFFFE;
const SLOW: u16 = 0xFFFF;

/// The table entry of a character: its folded form, SKIP (interference),
/// IDLE (its folded form is in no phrase) or SLOW (look it up each time:
/// astral characters and folded forms).
fn entry(f: &Folder, alphabet: &HashSet<char>, c: char) -> u16 {
    match f.fold(c) {
        None => SKIP,
        Some(nc) if !alphabet.contains(&nc) => IDLE,
        Some(nc) if (nc as u32) < 0xFFFE && (c as u32) < 0x10000 => nc as u32 as u16,
        Some(_) => SLOW,
    }
}

/// The compiled matcher; immutable and shared between threads.
pub struct Matcher {
    ac: Option<CharwiseDoubleArrayAhoCorasick<u32>>,
    phrase_count: usize,
    slot_start: Vec<u32>,
    slot_data: Vec<SlotId>,
    ring: usize,
    /// Per BMP code point, folding and relevance in one small lookup: the
    /// folded character, or SKIP (interference), IDLE (its folded form is in
    /// no phrase, so no match runs across it) or SLOW (see `entry`).
    table: Box<[u16]>,
    /// For small automata: bit per BMP code point, set when its folded form
    /// begins some phrase.
    starts: Option<Box<[u64]>>,
    /// The characters that occur in some folded phrase.
    alphabet: HashSet<char>,
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

    /// Heap size of the phrase automaton in bytes.
    pub fn automaton_bytes(&self) -> usize {
        self.ac.as_ref().map_or(0, |a| a.heap_bytes())
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
    pub fn scan_phrases(&self, text: &str, mut emit: impl FnMut(u32, usize, usize)) {
        let Some(ac) = &self.ac else { return };
        let mask = self.ring - 1;
        // Original byte offset of the folded character starting at each
        // folded byte position (mod the ring size): a match's start is
        // looked up directly.
        // Phrases rarely exceed 64 bytes: keep the ring on the stack then.
        let mut stack = [0usize; 64];
        let mut heap = Vec::new();
        let ring: &mut [usize] = if self.ring <= stack.len() {
            &mut stack[..self.ring]
        } else {
            heap.resize(self.ring, 0);
            &mut heap
        };
        let mut stepper = ac.find_overlapping_stepper();
        let mut pos = 0usize;
        // Only tracked when `starts` is set (small automata, see `build`).
        let mut at_root = self.starts.is_some();
        for (i, c) in text.char_indices() {
            let cp = c as u32;
            if at_root
                && cp < 0x10000
                && let Some(starts) = &self.starts
                && starts[(cp >> 6) as usize] >> (cp & 63) & 1 == 0
            {
                // From the root, a character that begins no phrase leads
                // back to the root.
                continue;
            }
            let e = if cp < 0x10000 {
                self.table[cp as usize]
            } else {
                SLOW
            };
            let nc = match e {
                SKIP => continue,
                IDLE => {
                    // No phrase contains this character, so every partial
                    // match ends here: start afresh rather than step.
                    if pos != 0 {
                        stepper = ac.find_overlapping_stepper();
                        pos = 0;
                        at_root = self.starts.is_some();
                    }
                    continue;
                }
                SLOW => match folder().fold(c) {
                    None => continue,
                    Some(nc) if self.alphabet.contains(&nc) => nc,
                    Some(_) => {
                        if pos != 0 {
                            stepper = ac.find_overlapping_stepper();
                            pos = 0;
                        }
                        continue;
                    }
                },
                // Entries other than the markers are valid BMP scalars.
                folded => char::from_u32(u32::from(folded)).unwrap_or(c),
            };
            ring[pos & mask] = i;
            pos += nc.len_utf8();
            stepper.consume(nc);
            if self.starts.is_some() {
                at_root = stepper.depth() == Some(0);
            }
            for m in stepper.matches() {
                emit(m.value(), ring[m.start() & mask], i + c.len_utf8());
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
