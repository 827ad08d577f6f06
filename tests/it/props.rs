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

fn build_skip(skip: bool) -> complyd::matcher::Matcher {
    let mut b = MatcherBuilder::new();
    let s = b.new_slot();
    for p in PHRASES.iter().chain(["治疗效", "疗效", "效"].iter()) {
        b.add_phrase(s, p).unwrap();
    }
    b.build_with(Some(skip))
}

static SKIPPING: LazyLock<complyd::matcher::Matcher> = LazyLock::new(|| build_skip(true));
static STEPPING: LazyLock<complyd::matcher::Matcher> = LazyLock::new(|| build_skip(false));
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

    /// Skipping non-starting characters at the root (small automata) finds
    /// exactly what stepping every character finds.
    #[test]
    fn root_skip_changes_no_hit(text in any_text()) {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        SKIPPING.scan(&text, &mut a);
        STEPPING.scan(&text, &mut b);
        a.sort();
        b.sort();
        prop_assert_eq!(a, b);
    }
}
