//! Property tests of folding + matching: offsets always land on character
//! boundaries of the original, and disguises never hide a hit.

use std::collections::HashMap;
use std::sync::LazyLock;

use complyd::matcher::{Hit, MatcherBuilder};
use proptest::prelude::*;

const PHRASES: &[&str] = &[
    "根治",
    "100%有效",
    "治疗",
    "最佳",
    "无副作用",
    "降血压",
    "vip",
];
const INTERFERENCE: &[char] = &[
    ' ', '@', '·', '_', '*', '%', '\u{200B}', '\u{3000}', '，', '！', '-', '\n', '\t', '\u{FE0F}',
    '😀', '#', '/', '、',
];

/// Simplified → one Traditional form, from the shipped OpenCC table.
fn to_traditional() -> HashMap<char, Vec<char>> {
    let data = std::fs::read_to_string("data/opencc-t2s-chars.txt").unwrap();
    let mut m: HashMap<char, Vec<char>> = HashMap::new();
    for line in data.lines().filter(|l| !l.starts_with('#')) {
        let mut it = line.chars();
        if let (Some(t), Some('\t'), Some(s)) = (it.next(), it.next(), it.next()) {
            m.entry(s).or_default().push(t);
        }
    }
    m
}

fn matcher() -> complyd::matcher::Matcher {
    let mut b = MatcherBuilder::new();
    let s = b.new_slot();
    for p in PHRASES {
        b.add_phrase(s, p).unwrap();
    }
    b.build()
}

/// Phrases that overlap, nest and end inside one another, an astral one
/// among them, for the comparison with the reference.
const NESTED: &[&str] = &["治疗效", "疗效", "效", "有效", "根治疗", "𠀀治", "100"];

fn nested(select: bool) -> complyd::matcher::Matcher {
    let mut b = MatcherBuilder::new();
    let s = b.new_slot();
    for p in PHRASES.iter().chain(NESTED) {
        b.add_phrase(s, p).unwrap();
    }
    b.build_with(Some(select))
}

/// The reference: fold the text character by character (dropping what
/// matching skips), then compare every phrase at every position.
fn naive_hits(text: &str) -> Vec<Hit> {
    let f = complyd::normalize::folder();
    let folded: Vec<(char, usize, usize)> = text
        .char_indices()
        .filter_map(|(i, c)| f.fold(c).map(|nc| (nc, i, i + c.len_utf8())))
        .collect();
    let mut out = Vec::new();
    for p in PHRASES.iter().chain(NESTED) {
        let p: Vec<char> = f.fold_phrase(p).chars().collect();
        for w in folded.windows(p.len()) {
            if w.iter().map(|&(c, _, _)| c).eq(p.iter().copied()) {
                out.push(Hit {
                    slot: 0,
                    start: w[0].1,
                    end: w[p.len() - 1].2,
                });
            }
        }
    }
    out.sort();
    out
}

/// The same phrases with each kind of automaton step (by default small
/// automata select, large ones branch).
static SELECTING: LazyLock<complyd::matcher::Matcher> = LazyLock::new(|| nested(true));
static BRANCHING: LazyLock<complyd::matcher::Matcher> = LazyLock::new(|| nested(false));
static MATCHER: LazyLock<complyd::matcher::Matcher> = LazyLock::new(matcher);
static TRADITIONAL: LazyLock<HashMap<char, Vec<char>>> = LazyLock::new(to_traditional);

fn hits(text: &str) -> Vec<Hit> {
    let mut out = Vec::new();
    MATCHER.scan(text, &mut out);
    out
}

fn any_text() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "根", "治", "疗", "療", "最", "佳", "１", "0", "0", "%", "％", "有", "效", "無", "副",
        "作", "用", "降", "血", "压", "壓", " ", "@", "\u{200B}", "，", "Ｖ", "i", "P", "a", "\n",
        "😀", "e\u{301}", "𠀀",
    ]);
    prop::collection::vec(pieces, 0..40).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn offsets_are_char_boundaries_of_the_original(text in any_text()) {
        for h in hits(&text) {
            prop_assert!(h.start < h.end && h.end <= text.len());
            prop_assert!(text.is_char_boundary(h.start) && text.is_char_boundary(h.end));
            // A hit starts and ends on a character that matching does not skip.
            let first = text[h.start..].chars().next().unwrap();
            let last = text[..h.end].chars().next_back().unwrap();
            let f = complyd::normalize::folder();
            prop_assert!(f.fold(first).is_some() && f.fold(last).is_some());
        }
    }

    #[test]
    fn interference_never_hides_a_hit(
        which in 0..PHRASES.len(),
        prefix in "[a-z一二三]{0,4}",
        inserts in prop::collection::vec((0usize..16, prop::sample::select(INTERFERENCE)), 0..6),
    ) {
        let phrase = PHRASES[which];
        let mut chars: Vec<String> = phrase.chars().map(String::from).collect();
        for (pos, c) in inserts {
            let i = pos % (chars.len().saturating_sub(1)).max(1);
            chars[i].push(c);
        }
        let text = format!("{prefix}{}", chars.concat());
        let found = hits(&text);
        let expected = complyd::normalize::folder().fold_phrase(phrase);
        prop_assert!(
            found.iter().any(|h| complyd::normalize::folder().fold_phrase(&text[h.start..h.end]) == expected),
            "{text:?} lost {phrase}: {found:?}"
        );
    }

    #[test]
    fn traditional_spelling_never_hides_a_hit(which in 0..PHRASES.len(), pick in any::<usize>()) {
        let t = &*TRADITIONAL;
        let phrase = PHRASES[which];
        let text: String = phrase
            .chars()
            .map(|c| t.get(&c).map_or(c, |alts| alts[pick % alts.len()]))
            .collect();
        let found = hits(&text);
        prop_assert!(
            found.iter().any(|h| h.start == 0 && h.end == text.len()),
            "{text:?} ({phrase}) not found: {found:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The automaton, the fold table and the offset ring together find
    /// exactly what naive search over the folded text finds, every
    /// overlapping hit with its original span, with either kind of step.
    #[test]
    fn matches_naive_search_over_folded_text(text in any_text()) {
        let expected = naive_hits(&text);
        for m in [&*SELECTING, &*BRANCHING] {
            let mut found = Vec::new();
            m.scan(&text, &mut found);
            found.sort();
            prop_assert_eq!(&found, &expected);
        }
    }
}
