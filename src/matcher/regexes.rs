//! The regexes of all rules, compiled once into one multi-pattern regex.
//!
//! Each rule regex reports what it would report on its own: its
//! leftmost-first, non-overlapping matches, in order (`find_iter`). A
//! leftmost-first search of all patterns at once finds the leftmost position
//! where *some* pattern matches and the pattern with priority there (the
//! first one that matches at that position). Patterns after it in the list
//! can match at the same position too, so they are tried there one by one,
//! anchored. Visiting every such position in order gives each pattern its
//! own `find_iter`, from one compiled automaton instead of one per regex plus
//! a `RegexSet` that held every regex a second time (BENCHMARKS.md, "Idle
//! RSS").

use std::borrow::Cow;
use std::sync::Mutex;

use regex_automata::nfa::thompson::WhichCaptures;
use regex_automata::util::syntax;
use regex_automata::{Anchored, Input, PatternID, meta};
use regex_syntax::hir::{Class, ClassUnicode, ClassUnicodeRange, Hir, HirKind};

use super::{Hit, PatternError, SlotId};
use crate::normalize::{Folder, folder};

/// Size limits for user-written regexes, so a rule file cannot exhaust memory.
const REGEX_SIZE_LIMIT: usize = 2 << 20;
const REGEX_DFA_LIMIT: usize = 4 << 20;
/// The combined regex's lazy-DFA cache cap, at least (see `Regexes::build`).
const DFA_CACHE_MIN: usize = 16 << 20;

/// What `{gap}` stands for in a rule regex: one character that is neither a
/// letter or digit (`\w`) nor sentence punctuation, i.e. a space, punctuation
/// mark, symbol, emoji or invisible character, from the blocks where those
/// live in Chinese and English text (docs/rules.md lists them). Unicode `\w`
/// alone would do, but its complement is ~800 ranges that the regex engine
/// turns into a large automaton for every occurrence; this is ~100.
pub(super) const GAP: &str = r"[\x00-\x{36F}\x{2000}-\x{33FF}\x{4DC0}-\x{4DFF}\x{E000}-\x{F8FF}\x{FE10}-\x{FFFF}\x{1F000}-\x{1FBFF}\x{E0000}-\x{10FFFF}--[\w，。！？；,!?;]]";

/// Replaces each `{gap}` (not `\{gap}`) with [`GAP`].
pub(super) fn expand_gap(p: &str) -> Cow<'_, str> {
    const NAME: &str = "{gap}";
    if !p.contains(NAME) {
        return Cow::Borrowed(p);
    }
    let mut out = String::with_capacity(p.len() + 4 * GAP.len());
    let mut rest = p;
    while let Some(i) = rest.find(NAME) {
        let escapes = rest[..i].bytes().rev().take_while(|&b| b == b'\\').count();
        out.push_str(&rest[..i]);
        out.push_str(if escapes % 2 == 0 { GAP } else { NAME });
        rest = &rest[i + NAME.len()..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

fn syntax_config() -> syntax::Config {
    syntax::Config::new().case_insensitive(true)
}

/// Parses and checks one pattern (already folded, see [`fold_pattern`]).
pub(super) fn check(pattern: &str) -> Result<Hir, PatternError> {
    let hir = syntax::parse_with(pattern, &syntax_config())
        .map_err(|e| PatternError::Regex(syntax_message(&e.to_string())))?;
    // Built alone, as the `regex` crate builds a `Regex` (same limits, so
    // the same patterns are refused), then dropped: only the combined
    // regex is kept.
    let alone = meta::Builder::new()
        .configure(
            meta::Config::new()
                .nfa_size_limit(Some(REGEX_SIZE_LIMIT))
                .hybrid_cache_capacity(REGEX_DFA_LIMIT)
                .dfa_size_limit(Some(REGEX_DFA_LIMIT)),
        )
        .build_from_hir(&hir)
        .map_err(|e| PatternError::Regex(build_message(&e)))?;
    if alone.is_match("") {
        return Err(PatternError::RegexMatchesEmpty);
    }
    Ok(hir)
}

/// The regex crate's syntax errors are a multi-line rendering with its own
/// caret; keep the last line, which states the problem.
fn syntax_message(s: &str) -> String {
    s.lines()
        .rev()
        .find(|l| l.starts_with("error:"))
        .map(|l| l.trim_start_matches("error:").trim().to_string())
        .unwrap_or_else(|| s.trim().to_string())
}

fn build_message(e: &meta::BuildError) -> String {
    if let Some(limit) = e.size_limit() {
        format!("the compiled regex exceeds the {limit}-byte limit; simplify it")
    } else if let Some(syntax) = e.syntax_error() {
        syntax_message(&syntax.to_string())
    } else {
        e.to_string()
    }
}

/// Expands `{gap}` and folds the pattern's own non-ASCII characters as the
/// text is folded.
pub(super) fn fold_pattern(p: &str) -> String {
    let f = folder();
    expand_gap(p).chars().map(|c| fold_view(f, c)).collect()
}

/// The view regexes see: ASCII as is (case is handled by the regex flag),
/// everything else folded for width and Traditional→Simplified.
#[inline(always)]
fn fold_view(f: &Folder, c: char) -> char {
    if c.is_ascii() { c } else { f.fold_keep(c) }
}

/// Sorted, disjoint ranges of characters.
type CharRanges = Box<[(char, char)]>;

/// All regexes, compiled; pattern `i` is the `i`-th regex added.
pub(super) struct Regexes {
    re: meta::Regex,
    /// The search's working memory (the lazy DFAs' states, and sets as long
    /// as the automata: ~2.5 MiB after the first check of the examples, up
    /// to the cap after much varied text), made on first use and given back
    /// by [`Regexes::release_cache`]. A scan that finds it in use by another
    /// thread uses the regex's own per-thread caches instead.
    cache: Mutex<Option<meta::Cache>>,
    slots: Vec<SlotId>,
    /// Per pattern: the characters a match can begin with (sorted ranges),
    /// or `None` when not known. Spares most anchored tries.
    firsts: Vec<Option<CharRanges>>,
}

impl Regexes {
    pub(super) fn build(patterns: Vec<(Hir, SlotId)>) -> Option<Regexes> {
        if patterns.is_empty() {
            return None;
        }
        let firsts = patterns.iter().map(|(h, _)| first_chars(h)).collect();
        let (hirs, slots): (Vec<Hir>, Vec<SlotId>) = patterns.into_iter().unzip();
        let build = |cache_capacity: usize| {
            meta::Builder::new()
                .configure(
                    meta::Config::new()
                        // Each pattern passed the size limit alone in
                        // `check`; together they are no bigger than the sum.
                        .nfa_size_limit(None)
                        .hybrid_cache_capacity(cache_capacity)
                        // Only where a match is, never its groups.
                        .which_captures(WhichCaptures::Implicit),
                )
                .build_many_from_hir(&hirs)
                // Every pattern built alone in `check`; the only further way
                // to fail is more than 2^31 NFA states, far beyond the limits.
                .expect("patterns that each built alone build together")
        };
        // The lazy DFA's cache holds sets as long as the automaton, plus the
        // DFA states made so far. Too small, and the DFA thrashes or is not
        // used at all: searches fall to the PikeVM, ~300x slower. The shipped
        // rules (3 MiB) run at full speed from 8 MiB; a larger rule set gets
        // a larger cap. The cache grows only as states are made (~2 MiB after
        // the examples, ~13 MiB after 13 MB of varied text).
        let mut re = build(DFA_CACHE_MIN);
        let want = re.memory_usage() * 4;
        if want > DFA_CACHE_MIN {
            re = build(want);
        }
        Some(Regexes {
            re,
            cache: Mutex::new(None),
            slots,
            firsts,
        })
    }

    pub(super) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Gives back the search's working memory; the next scan makes it anew.
    pub(super) fn release_cache(&self) {
        let taken = self.cache.try_lock().ok().and_then(|mut c| c.take());
        drop(taken);
    }

    /// Appends every match of every pattern, with offsets in `text`.
    pub(super) fn scan(&self, text: &str, out: &mut Vec<Hit>) {
        match self.cache.try_lock() {
            Ok(mut held) => {
                let cache = held.get_or_insert_with(|| self.re.create_cache());
                self.scan_with(text, out, |input| self.re.search_with(cache, input));
            }
            Err(_) => self.scan_with(text, out, |input| self.re.search(input)),
        }
    }

    fn scan_with(
        &self,
        text: &str,
        out: &mut Vec<Hit>,
        mut search: impl FnMut(&Input<'_>) -> Option<regex_automata::Match>,
    ) {
        let view = RegexView::new(text);
        let hay = view.text();
        // Per pattern: where its next match may start (after its last one).
        let mut next = vec![0usize; self.slots.len()];
        let mut emit = |p: usize, start: usize, end: usize, next: &mut [usize], width: usize| {
            if start == end {
                // Skipped like an empty match in `find_iter`, which then
                // looks again one character further on.
                next[p] = start + width;
            } else {
                out.push(Hit {
                    slot: self.slots[p],
                    start: view.original(start),
                    end: view.original(end),
                });
                next[p] = end;
            }
        };
        let mut at = 0;
        while let Some(m) = search(&Input::new(hay).range(at..)) {
            let s = m.start();
            let Some(c) = hay[s..].chars().next() else {
                break; // an empty match at the very end
            };
            let width = c.len_utf8();
            let q = m.pattern().as_usize();
            // Patterns before `q` do not match at `s`: `q` had priority.
            if s >= next[q] {
                emit(q, s, m.end(), &mut next, width);
            }
            for p in q + 1..self.slots.len() {
                if s < next[p] || !may_begin(self.firsts[p].as_deref(), c) {
                    continue;
                }
                let input = Input::new(hay)
                    .range(s..)
                    .anchored(Anchored::Pattern(PatternID::new_unchecked(p)));
                if let Some(m) = search(&input) {
                    emit(p, s, m.end(), &mut next, width);
                }
            }
            at = s + width;
        }
    }
}

fn may_begin(firsts: Option<&[(char, char)]>, c: char) -> bool {
    firsts.is_none_or(|r| {
        r.binary_search_by(|&(a, b)| {
            if b < c {
                std::cmp::Ordering::Less
            } else if a > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
    })
}

/// The characters a match of `hir` can begin with, or `None` when any can
/// (or the match can be empty).
/// Whether `hir` looks for a Unicode word boundary anywhere.
pub(super) fn has_unicode_word_look(hir: &Hir) -> bool {
    use regex_syntax::hir::Look;
    match hir.kind() {
        HirKind::Look(l) => matches!(
            l,
            Look::WordUnicode
                | Look::WordUnicodeNegate
                | Look::WordStartUnicode
                | Look::WordEndUnicode
                | Look::WordStartHalfUnicode
                | Look::WordEndHalfUnicode
        ),
        HirKind::Repetition(r) => has_unicode_word_look(&r.sub),
        HirKind::Capture(c) => has_unicode_word_look(&c.sub),
        HirKind::Concat(v) | HirKind::Alternation(v) => v.iter().any(has_unicode_word_look),
        HirKind::Empty | HirKind::Literal(_) | HirKind::Class(_) => false,
    }
}

fn first_chars(hir: &Hir) -> Option<CharRanges> {
    match first(hir)? {
        (_, true) => None,
        (class, false) => Some(
            class
                .ranges()
                .iter()
                .map(|r| (r.start(), r.end()))
                .collect(),
        ),
    }
}

/// What a match of `hir` can begin with, and whether it can be empty;
/// `None` when not known. Look-around assertions consume nothing, so they
/// are passed over (which can only widen the answer).
fn first(hir: &Hir) -> Option<(ClassUnicode, bool)> {
    Some(match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => (ClassUnicode::empty(), true),
        HirKind::Literal(lit) => {
            let c = std::str::from_utf8(&lit.0).ok()?.chars().next()?;
            (ClassUnicode::new([ClassUnicodeRange::new(c, c)]), false)
        }
        HirKind::Class(Class::Unicode(c)) => (c.clone(), false),
        HirKind::Class(Class::Bytes(c)) => (c.to_unicode_class()?, false),
        HirKind::Repetition(r) => {
            let (c, empty) = first(&r.sub)?;
            (c, empty || r.min == 0)
        }
        HirKind::Capture(c) => first(&c.sub)?,
        HirKind::Concat(items) => {
            let mut acc = ClassUnicode::empty();
            for h in items {
                let (c, empty) = first(h)?;
                acc.union(&c);
                if !empty {
                    return Some((acc, false));
                }
            }
            (acc, true)
        }
        HirKind::Alternation(items) => {
            let mut acc = ClassUnicode::empty();
            let mut any_empty = false;
            for h in items {
                let (c, empty) = first(h)?;
                acc.union(&c);
                any_empty |= empty;
            }
            (acc, any_empty)
        }
    })
}

/// The text as regexes see it, with a map back to original byte offsets when
/// folding changed any byte length (full-width forms become one byte).
struct RegexView<'a> {
    original: &'a str,
    folded: Option<(String, Vec<u32>)>,
}

impl<'a> RegexView<'a> {
    fn new(text: &'a str) -> RegexView<'a> {
        let f = folder();
        let first_change = text.char_indices().find(|&(_, c)| fold_view(f, c) != c);
        let Some((from, _)) = first_change else {
            return RegexView {
                original: text,
                folded: None,
            };
        };
        let mut folded = String::with_capacity(text.len());
        let mut map = Vec::with_capacity(text.len() + 1);
        folded.push_str(&text[..from]);
        map.extend(0..from as u32);
        // Characters folding keeps as they are (most of a Chinese text
        // around its full-width punctuation) are copied a run at a time, not
        // pushed one by one: this view is made for every event text.
        let mut kept = from;
        for (i, c) in text[from..].char_indices() {
            let i = from + i;
            let nc = fold_view(f, c);
            map.extend(std::iter::repeat_n(i as u32, nc.len_utf8()));
            if nc != c {
                folded.push_str(&text[kept..i]);
                folded.push(nc);
                kept = i + c.len_utf8();
            }
        }
        folded.push_str(&text[kept..]);
        map.push(text.len() as u32);
        RegexView {
            original: text,
            folded: Some((folded, map)),
        }
    }

    fn text(&self) -> &str {
        self.folded.as_ref().map_or(self.original, |(s, _)| s)
    }

    fn original(&self, folded_offset: usize) -> usize {
        match &self.folded {
            None => folded_offset,
            Some((_, map)) => map[folded_offset] as usize,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::{Hit, MatcherBuilder};

    /// Patterns that overlap, share starting positions, differ in priority,
    /// match empty text in some places (but not in ""), look around, and
    /// repeat the negated-`\w` gap of the shipped claims.
    const PATTERNS: &[&str] = &[
        "ab",
        "a",
        "abc|a",
        "b+",
        "aa",
        "(?-u:\\b)ab(?-u:\\b)",
        "^a",
        "c$",
        "(?-u:\\b)x*",
        "最(好|佳)",
        "最好[^\\w，。！？；,!?;]{0,3}的",
        "好的",
        "[一二三\\d]+[^\\w，。！？；,!?;]{0,3}天",
        "\\d{1,3}%",
        "(?i)AB",
        "b|",
        "最{gap}{0,3}好",
        "\\{gap}",
    ];

    /// Every pattern alone with the `regex` crate, as the matcher ran them
    /// before they were combined. (Texts here have no characters that
    /// folding changes, so offsets agree.)
    fn oracle(patterns: &[&str], text: &str) -> Vec<Hit> {
        let mut out = Vec::new();
        for (slot, p) in patterns.iter().enumerate() {
            let re = regex::RegexBuilder::new(&super::fold_pattern(p))
                .case_insensitive(true)
                .build()
                .unwrap();
            for m in re.find_iter(text).filter(|m| !m.is_empty()) {
                out.push(Hit {
                    slot: slot as u32,
                    start: m.start(),
                    end: m.end(),
                });
            }
        }
        out.sort();
        out
    }

    fn combined(patterns: &[&str], text: &str) -> Vec<Hit> {
        let mut b = MatcherBuilder::new();
        let mut used = Vec::new();
        for p in patterns {
            let slot = b.new_slot();
            if b.add_regex(slot, p).is_ok() {
                used.push(slot);
            }
        }
        let mut out = Vec::new();
        b.build().scan(text, &mut out);
        out.sort();
        out
    }

    fn accepted() -> Vec<&'static str> {
        PATTERNS
            .iter()
            .copied()
            .filter(|p| MatcherBuilder::new().add_regex(0, p).is_ok())
            .collect()
    }

    /// The view as it was built before runs were copied whole: one
    /// character at a time after the first that folding changes (before
    /// it, and without one, offsets are the same in both texts).
    fn view_char_by_char(text: &str) -> (String, Vec<u32>) {
        let f = crate::normalize::folder();
        let first = text
            .char_indices()
            .find(|&(_, c)| super::fold_view(f, c) != c);
        let Some((from, _)) = first else {
            return (text.to_string(), (0..=text.len() as u32).collect());
        };
        let mut folded = text[..from].to_string();
        let mut map: Vec<u32> = (0..from as u32).collect();
        for (i, c) in text[from..].char_indices() {
            let nc = super::fold_view(f, c);
            folded.push(nc);
            for _ in 0..nc.len_utf8() {
                map.push((from + i) as u32);
            }
        }
        map.push(text.len() as u32);
        (folded, map)
    }

    proptest! {
        /// Texts that mix what folding keeps and what it changes (full-width
        /// forms and punctuation, capitals, the ideographic space, emoji).
        #[test]
        fn the_view_is_the_text_folded_character_by_character(
            text in "[a-zA-Z0-9 养生最好，。！？：（）Ａ-Ｚａ-ｚ０-９　\u{1F600}é\\PC]{0,24}",
        ) {
            let view = super::RegexView::new(&text);
            let (folded, map) = view_char_by_char(&text);
            prop_assert_eq!(view.text(), folded.as_str());
            for (at, &orig) in map.iter().enumerate() {
                prop_assert_eq!(view.original(at), orig as usize);
            }
        }
    }

    #[test]
    fn gap_expands_unless_escaped() {
        assert_eq!(
            super::expand_gap("a{gap}{0,3}b"),
            format!("a{}{{0,3}}b", super::GAP)
        );
        assert_eq!(super::expand_gap(r"a\{gap}"), r"a\{gap}");
        assert_eq!(
            super::expand_gap(r"a\\{gap}"),
            format!(r"a\\{}", super::GAP)
        );
        assert_eq!(super::expand_gap("abc"), "abc");
    }

    /// `{gap}` is the complement of Unicode `\w` and the sentence
    /// punctuation, within the blocks docs/rules.md lists; outside them it
    /// matches nothing.
    #[test]
    fn gap_is_the_old_class_within_its_blocks() {
        use regex_syntax::hir::{Class, ClassUnicode, HirKind};
        let class =
            |p: &str| match regex_automata::util::syntax::parse_with(p, &super::syntax_config())
                .unwrap()
                .into_kind()
            {
                HirKind::Class(Class::Unicode(c)) => c,
                other => panic!("{other:?}"),
            };
        let old = class(r"[^\w，。！？；,!?;]");
        let gap = class(super::GAP);
        let blocks = class(
            r"[\x00-\x{36F}\x{2000}-\x{33FF}\x{4DC0}-\x{4DFF}\x{E000}-\x{F8FF}\x{FE10}-\x{FFFF}\x{1F000}-\x{1FBFF}\x{E0000}-\x{10FFFF}]",
        );
        let mut within = old.clone();
        within.intersect(&blocks);
        assert_eq!(gap, within);
        let mut outside: ClassUnicode = gap.clone();
        outside.difference(&blocks);
        assert!(outside.ranges().is_empty());
        // What writers put between words to disguise them.
        let re = regex::Regex::new(&format!("^{}$", super::GAP)).unwrap();
        for c in [
            ' ', '@', '*', '·', '～', '\u{200B}', '\u{FEFF}', '😀', '★', '→', '①', '\u{E000}',
        ] {
            assert!(re.is_match(&c.to_string()), "{c:?}");
        }
        for c in ['a', '7', '好', '，', '。', ',', '!', '?', ';', '\u{200D}'] {
            assert!(!re.is_match(&c.to_string()), "{c:?}");
        }
    }

    #[test]
    fn gap_examples_from_the_docs() {
        let ps = ["最佳{gap}{0,3}(食用|服用)"];
        for (text, hits) in [
            ("最佳 食用", 1),
            ("最佳～食用", 1),
            ("最佳的食用", 0),
            ("最佳。食用", 0),
        ] {
            assert_eq!(combined(&ps, text).len(), hits, "«{text}»");
        }
    }

    #[test]
    fn refuses_only_what_matches_empty_text() {
        assert_eq!(accepted().len(), PATTERNS.len() - 1, "only `b|` is refused");
    }

    #[test]
    fn combined_regex_finds_what_each_finds_alone_examples() {
        let ps = accepted();
        for text in [
            "",
            "abcab aab",
            "xx ab, abc",
            "最好的 最 好 的,最佳",
            "一二 天 3天 12% 1234%",
            "ABab aB",
            "cab c",
        ] {
            assert_eq!(combined(&ps, text), oracle(&ps, text), "«{text}»");
        }
    }

    /// The cache given back is made anew; a scan finding it in use by
    /// another thread uses the regex's own caches. Same hits every time.
    #[test]
    fn the_same_hits_after_releasing_the_cache_and_while_it_is_in_use() {
        let ps = accepted();
        let text = "xx ab, abc 最好的 最 好 的,最佳 一二 天 3天 12% ABab";
        let mut b = MatcherBuilder::new();
        for p in &ps {
            let slot = b.new_slot();
            b.add_regex(slot, p).unwrap();
        }
        let m = b.build();
        let scan = || {
            let mut out = Vec::new();
            m.scan(text, &mut out);
            out.sort();
            out
        };
        let first = scan();
        assert_eq!(first, oracle(&ps, text));
        let regexes = m.regexes.as_ref().unwrap();
        assert!(regexes.cache.lock().unwrap().is_some());
        m.release_caches();
        assert!(regexes.cache.lock().unwrap().is_none());
        assert_eq!(scan(), first);
        let held = regexes.cache.lock().unwrap();
        assert_eq!(scan(), first);
        drop(held);
    }

    proptest! {
        #[test]
        fn combined_regex_finds_what_each_finds_alone(
            chars in proptest::collection::vec(proptest::sample::select(vec![
                'a', 'b', 'c', 'x', 'A', 'B', ' ', '最', '好', '佳', '的', '一', '1', '2', '%',
                '天', '!', ',', '@', '{', '\\', '😀', '\u{200B}', 'ä',
            ]), 0..40),
            pick in proptest::collection::vec(any::<bool>(), PATTERNS.len()),
        ) {
            let text: String = chars.into_iter().collect();
            let ps: Vec<&str> = accepted()
                .into_iter()
                .zip(pick)
                .filter_map(|(p, keep)| keep.then_some(p))
                .collect();
            prop_assert_eq!(combined(&ps, &text), oracle(&ps, &text), "{:?} «{}»", ps, text);
        }
    }
}
