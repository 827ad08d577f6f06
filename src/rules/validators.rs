//! Validators for `phrases` rules (`validate: luhn`): a second look at each
//! hit's original text, so that a regex for "18 digits" only flags numbers
//! that really are resident ID numbers.
//!
//! Every validator first keeps only the digits of the matched text (ASCII or
//! full-width; spaces, hyphens and other separators are dropped, and the ID
//! check character `X` is kept), then checks the digits alone.

/// A validator: `true` when the matched text is the real thing.
pub type Validator = fn(&str) -> bool;

/// Every validator, by the name rules use.
pub const VALIDATORS: &[(&str, Validator)] =
    &[("luhn", luhn), ("cn-id", cn_id), ("cn-mobile", cn_mobile)];

/// The names accepted by `validate:`, for messages.
pub fn names() -> Vec<&'static str> {
    VALIDATORS.iter().map(|&(n, _)| n).collect()
}

pub fn by_name(name: &str) -> Option<Validator> {
    VALIDATORS
        .iter()
        .find(|&&(n, _)| n == name)
        .map(|&(_, v)| v)
}

/// The digits of `text` (ASCII or full-width), as values 0–9; `X`/`x`
/// (also full-width) becomes 10 when `allow_x`.
fn digits(text: &str, allow_x: bool) -> Vec<u8> {
    text.chars()
        .filter_map(|c| match c {
            '0'..='9' => Some(c as u8 - b'0'),
            '０'..='９' => Some((c as u32 - '０' as u32) as u8),
            'X' | 'x' | 'Ｘ' | 'ｘ' if allow_x => Some(10),
            _ => None,
        })
        .collect()
}

/// A bank card number: 13–19 digits passing the Luhn check, starting with
/// 3–6 (the ISO/IEC 7812 major industry identifiers of travel, banking and
/// payment cards: UnionPay 62…, Visa 4…, Mastercard 5…, JCB/Amex 3…), and
/// not all the same digit (6666 6666 6666 6666 passes Luhn but is no card).
pub fn luhn(text: &str) -> bool {
    let d = digits(text, false);
    if !(13..=19).contains(&d.len()) || !(3..=6).contains(&d[0]) || d.iter().all(|&x| x == d[0]) {
        return false;
    }
    luhn_sum(&d).is_multiple_of(10)
}

fn luhn_sum(d: &[u8]) -> u32 {
    d.iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            let x = u32::from(x);
            if i % 2 == 1 {
                let y = x * 2;
                if y > 9 { y - 9 } else { y }
            } else {
                x
            }
        })
        .sum()
}

/// An 18-character resident ID number (GB 11643-1999): a plausible region
/// code, a real birth date, and the ISO 7064 MOD 11-2 check character.
pub fn cn_id(text: &str) -> bool {
    let d = digits(text, true);
    if d.len() != 18 || d[..17].contains(&10) {
        return false;
    }
    // Province codes: 11–15, 21–23, 31–37, 41–46, 50–54, 61–65, and 71/81/82/83.
    let province = d[0] * 10 + d[1];
    let province_ok = matches!(province, 11..=15 | 21..=23 | 31..=37 | 41..=46 | 50..=54 | 61..=65 | 71 | 81..=83);
    let num = |r: std::ops::Range<usize>| d[r].iter().fold(0u32, |a, &x| a * 10 + u32::from(x));
    let (year, month, day) = (num(6..10), num(10..12), num(12..14));
    province_ok && valid_date(year, month, day) && id_check(&d[..17]) == d[17]
}

/// The MOD 11-2 check character of the first 17 digits (10 stands for X).
pub fn id_check(first17: &[u8]) -> u8 {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let s: u32 = first17.iter().zip(W).map(|(&x, w)| u32::from(x) * w).sum();
    ((12 - s % 11) % 11) as u8
}

fn valid_date(year: u32, month: u32, day: u32) -> bool {
    if !(1900..=2099).contains(&year) || !(1..=12).contains(&month) || day == 0 {
        return false;
    }
    let leap = (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
    let days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    day <= days
}

/// A mainland mobile number: 11 digits starting 13–19, optionally after the
/// country code 86 / 0086.
pub fn cn_mobile(text: &str) -> bool {
    let d = digits(text, false);
    let d = match d.len() {
        11 => &d[..],
        13 if d.starts_with(&[8, 6]) => &d[2..],
        15 if d.starts_with(&[0, 0, 8, 6]) => &d[4..],
        _ => return false,
    };
    d[0] == 1 && (3..=9).contains(&d[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to_text(d: &[u8]) -> String {
        d.iter()
            .map(|&x| if x == 10 { 'X' } else { (b'0' + x) as char })
            .collect()
    }

    /// An ID number with the right check character, built from 17 digits.
    fn make_id(first17: &str) -> String {
        let d = digits(first17, false);
        assert_eq!(d.len(), 17);
        let mut all = d.clone();
        all.push(id_check(&d));
        to_text(&all)
    }

    /// A card number: `prefix` plus the Luhn check digit.
    fn make_card(prefix: &str) -> String {
        let mut d = digits(prefix, false);
        d.push(0);
        let s = luhn_sum(&d);
        let last = d.len() - 1;
        d[last] = ((10 - s % 10) % 10) as u8;
        to_text(&d)
    }

    #[test]
    fn id_check_character_follows_gb11643() {
        // The standard's own worked example (GB 11643-1999 annex).
        assert_eq!(id_check(&digits("11010519491231002", false)), 10);
        assert!(cn_id("11010519491231002X"));
        assert!(cn_id("11010519491231002x"));
        assert!(!cn_id("110105194912310021"));
    }

    #[test]
    fn generated_ids_pass_and_their_neighbours_fail() {
        for first17 in [
            "44030419850713123",
            "31011520000229456",
            "51010819771101789",
            "65010220101231000",
        ] {
            let id = make_id(first17);
            assert!(cn_id(&id), "{id}");
            // Spaced, hyphenated and full-width forms are the same number.
            let spaced = format!("{} {} {}", &id[..6], &id[6..14], &id[14..]);
            assert!(cn_id(&spaced), "{spaced}");
            let wide: String = id
                .chars()
                .map(|c| char::from_u32(c as u32 + 0xFEE0).unwrap())
                .collect();
            assert!(cn_id(&wide), "{wide}");
            // Any other check character fails.
            let body = &id[..17];
            for c in "0123456789X".chars() {
                let other = format!("{body}{c}");
                assert_eq!(cn_id(&other), other == id, "{other}");
            }
        }
    }

    #[test]
    fn ids_need_a_real_date_and_region() {
        // Right check characters, impossible contents.
        assert!(!cn_id(&make_id("44030419850231123"))); // 31 February
        assert!(!cn_id(&make_id("31011519000229456"))); // 1900 was no leap year
        assert!(!cn_id(&make_id("44030418001301123"))); // month 13
        assert!(!cn_id(&make_id("99030419850713123"))); // no province 99
        assert!(!cn_id(&make_id("00000000000000000")));
        assert!(!cn_id("4403041985071312"));
        assert!(!cn_id("12345678901234567890"));
    }

    #[test]
    fn luhn_accepts_generated_cards_only() {
        for prefix in ["622202123456789012", "621700123456789", "453201511283036"] {
            let card = make_card(prefix);
            assert!(luhn(&card), "{card}");
            let grouped: Vec<&str> = card
                .as_bytes()
                .chunks(4)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect();
            assert!(luhn(&grouped.join(" ")));
            assert!(luhn(&grouped.join("-")));
            // Changing one digit breaks the check.
            let mut d = digits(&card, false);
            d[3] = (d[3] + 1) % 10;
            assert!(!luhn(&to_text(&d)));
        }
        // Well-known test numbers.
        assert!(luhn("4111 1111 1111 1111"));
        assert!(luhn("5500 0000 0000 0004"));
        assert!(!luhn("4111 1111 1111 1112"));
        assert!(!luhn("0000 0000 0000 0000"));
        assert!(!luhn("79927398713")); // valid Luhn but too short for a card
        assert!(!luhn("12345678901234567890"));
        // Luhn-valid, but no bank or payment card starts with 9 or 7.
        let other = make_card("911671090798592");
        assert!(luhn_sum(&digits(&other, false)).is_multiple_of(10));
        assert!(!luhn(&other));
        assert!(!luhn("6666 6666 6666 6666"));
    }

    #[test]
    fn mobiles() {
        assert!(cn_mobile("13812345678"));
        assert!(cn_mobile("138 1234 5678"));
        assert!(cn_mobile("138-1234-5678"));
        assert!(cn_mobile("１３８１２３４５６７８"));
        assert!(cn_mobile("+86 138 1234 5678"));
        assert!(cn_mobile("0086 19912345678"));
        assert!(!cn_mobile("12812345678"));
        assert!(!cn_mobile("23812345678"));
        assert!(!cn_mobile("1381234567"));
        assert!(!cn_mobile("138123456789"));
        assert!(!cn_mobile("010-12345678"));
    }

    #[test]
    fn names_resolve() {
        assert_eq!(names(), ["luhn", "cn-id", "cn-mobile"]);
        assert!(by_name("luhn").is_some());
        assert!(by_name("iban").is_none());
    }
}
