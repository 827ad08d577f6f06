//! Character folding shared by rule phrases and scanned text.
//!
//! Matching is done on a *folded* view of the text: full-width forms become
//! ASCII, letters lose case, Traditional characters become Simplified (one
//! character at a time, OpenCC table), and interference characters —
//! whitespace, punctuation, most symbols, zero-width and combining marks —
//! are skipped, so `根 治`, `根@治` and `根治` are the same phrase. Every
//! mapping is one character to at most one character, which is what lets the
//! matcher map each hit back to the exact span of the original text.
//!
//! Chinese numerals are never turned into digits: `一百` and `100` stay
//! different, because rewriting numbers changes meaning (第一次 is not 第1次
//! in every rule author's mind) and would make exceptions unpredictable.

use std::sync::OnceLock;

/// Marks a table entry whose character is skipped when matching phrases.
const SKIP: u32 = 1 << 31;

/// Folding table for the Basic Multilingual Plane plus a sorted list for the
/// rest; built once, read-only afterwards.
#[derive(Debug)]
pub struct Folder {
    bmp: Box<[u32]>,
    astral_t2s: Vec<(char, char)>,
}

static FOLDER: OnceLock<Folder> = OnceLock::new();

/// The process-wide folder (building it takes about a millisecond).
pub fn folder() -> &'static Folder {
    FOLDER.get_or_init(Folder::build)
}

const T2S_DATA: &str = include_str!("../data/opencc-t2s-chars.txt");

impl Folder {
    fn build() -> Folder {
        let mut t2s_bmp: Vec<(char, char)> = Vec::new();
        let mut astral_t2s = Vec::new();
        for line in T2S_DATA.lines() {
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let mut it = line.chars();
            let (Some(t), Some('\t'), Some(s)) = (it.next(), it.next(), it.next()) else {
                continue;
            };
            if (t as u32) < 0x10000 {
                t2s_bmp.push((t, s));
            } else {
                astral_t2s.push((t, s));
            }
        }
        astral_t2s.sort_unstable();
        let mut bmp = vec![0u32; 0x10000].into_boxed_slice();
        for (cp, slot) in bmp.iter_mut().enumerate() {
            if let Some(c) = char::from_u32(cp as u32) {
                *slot = fold_slow(c, None);
            }
        }
        for (t, s) in t2s_bmp {
            let entry = bmp[t as usize];
            // Only fold characters the other steps left alone; T→S applies to Han.
            if entry & SKIP == 0 {
                bmp[t as usize] = s as u32;
            }
        }
        Folder { bmp, astral_t2s }
    }

    /// Folds one character. `None` means the character is interference and
    /// is skipped when matching phrases.
    #[inline(always)]
    pub fn fold(&self, c: char) -> Option<char> {
        let e = self.entry(c);
        if e & SKIP != 0 {
            None
        } else {
            // The table only ever stores valid scalar values.
            char::from_u32(e)
        }
    }

    /// Folds one character but keeps interference characters (folded for
    /// width and case); used for the text that regular expressions see.
    #[inline(always)]
    pub fn fold_keep(&self, c: char) -> char {
        char::from_u32(self.entry(c) & !SKIP).unwrap_or(c)
    }

    #[inline(always)]
    fn entry(&self, c: char) -> u32 {
        let cp = c as u32;
        if cp < 0x10000 {
            self.bmp[cp as usize]
        } else {
            let t2s = self
                .astral_t2s
                .binary_search_by_key(&c, |&(t, _)| t)
                .ok()
                .map(|i| self.astral_t2s[i].1);
            fold_slow(c, t2s)
        }
    }

    /// Folds a whole phrase, dropping interference characters.
    pub fn fold_phrase(&self, s: &str) -> String {
        s.chars().filter_map(|c| self.fold(c)).collect()
    }

    /// Folds a string character for character (no character is dropped).
    pub fn fold_keep_str(&self, s: &str) -> String {
        s.chars().map(|c| self.fold_keep(c)).collect()
    }
}

/// Folding without the table: width, case, interference. `t2s` is the
/// Traditional→Simplified result for astral characters, if any.
fn fold_slow(c: char, t2s: Option<char>) -> u32 {
    let c = fold_width(c);
    if is_interference(c) {
        return SKIP | c as u32;
    }
    if let Some(s) = t2s {
        return s as u32;
    }
    if c.is_ascii() {
        return c.to_ascii_lowercase() as u32;
    }
    if c.is_uppercase() {
        let mut lower = c.to_lowercase();
        if let (Some(l), None) = (lower.next(), lower.next()) {
            return l as u32;
        }
    }
    c as u32
}

/// Full-width ASCII variants and the ideographic space become their ASCII
/// forms; the full-width currency signs their ordinary ones.
fn fold_width(c: char) -> char {
    match c as u32 {
        0xFF01..=0xFF5E => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        0x3000 => ' ',
        0xFFE0 => '¢',
        0xFFE1 => '£',
        0xFFE5 => '¥',
        0xFFE6 => '₩',
        _ => c,
    }
}

/// Characters that carry no meaning inside a phrase and are used to break
/// phrases up: whitespace, punctuation, symbols, zero-width and combining
/// marks, emoji. Letters, digits, Han, kana and currency signs are kept
/// (currency signs carry meaning: `¥` marks a price).
pub fn is_interference(c: char) -> bool {
    if c.is_ascii() {
        return !(c.is_ascii_alphanumeric() || c == '$');
    }
    if c.is_whitespace() || c.is_control() {
        return true;
    }
    matches!(c as u32,
        0x00A1..=0x00A2 | 0x00A6..=0x00BF // Latin-1 punctuation and symbols (not £ ¤ ¥)
        | 0x00D7 | 0x00F7
        | 0x0300..=0x036F                 // combining diacritics
        | 0x2000..=0x206F                 // general punctuation, zero-width, bidi controls
        | 0x2100..=0x214F                 // letterlike symbols (™ ℃ …)
        | 0x2190..=0x23FF                 // arrows, mathematical operators, technical
        | 0x2400..=0x243F
        | 0x2500..=0x27FF                 // box drawing, shapes, misc symbols, dingbats
        | 0x2900..=0x2BFF
        | 0x2E00..=0x2E7F                 // supplemental punctuation
        | 0x3000..=0x3004 | 0x3008..=0x3020 | 0x3030 | 0x303D..=0x303F // CJK punctuation (not 々 〆 〇)
        | 0x30FB                          // katakana middle dot
        | 0xFE00..=0xFE0F                 // variation selectors
        | 0xFE10..=0xFE1F | 0xFE30..=0xFE6F // vertical, compatibility and small forms
        | 0xFEFF                          // byte order mark / zero-width no-break space
        | 0xFF5F..=0xFF65                 // half-width CJK punctuation
        | 0xFFE2..=0xFFE4 | 0xFFE8..=0xFFEE
        | 0xFFF0..=0xFFFF
        | 0x1F000..=0x1FAFF               // emoji and pictographs
        | 0xE0000..=0xE007F | 0xE0100..=0xE01EF // tags, variation selectors supplement
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_width_case_and_traditional() {
        let f = folder();
        assert_eq!(f.fold_phrase("１００ ％ 有 效"), "100有效");
        assert_eq!(f.fold_phrase("100%有效"), "100有效");
        assert_eq!(f.fold_phrase("根@治"), "根治");
        assert_eq!(f.fold_phrase("根\u{200B}治"), "根治");
        assert_eq!(f.fold_phrase("治療"), "治疗");
        assert_eq!(f.fold_phrase("ＶＩＰ"), "vip");
        assert_eq!(f.fold_phrase("根·治_*"), "根治");
        assert_eq!(f.fold_phrase("發髮"), "发发");
    }

    #[test]
    fn never_turns_numerals_into_digits() {
        let f = folder();
        assert_eq!(f.fold_phrase("一百〇一"), "一百〇一");
        assert_eq!(f.fold_phrase("①"), "①");
    }

    #[test]
    fn keeps_currency_signs() {
        let f = folder();
        assert_eq!(f.fold_phrase("￥99"), "¥99");
        assert_eq!(f.fold_keep_str("价格：￥９９"), "价格:¥99");
    }

    #[test]
    fn fold_keep_maps_one_to_one() {
        let f = folder();
        let s = "根 治，ＡＢ";
        assert_eq!(f.fold_keep_str(s).chars().count(), s.chars().count());
    }

    #[test]
    fn astral_characters_fold() {
        let f = folder();
        // An emoji is interference; an astral Han character is kept.
        assert_eq!(f.fold('😀'), None);
        assert_eq!(f.fold('𠀀'), Some('𠀀'));
    }
}
