//! An event's `ts`, read without jiff's general parser when it has the one
//! form logs write (`2026-03-02T09:30:00+08:00`, `…:00.123Z`).
//!
//! jiff's parser accepts every RFC 3339 / RFC 9557 / Temporal form (`t` or
//! a space for `T`, `,` fractions, offsets with seconds, bracketed zones):
//! ~4.5 % of the daemon's core thread while a log was ingested, for lines
//! that nearly always write `YYYY-MM-DDTHH:MM:SS[.f](Z|±HH:MM)`. That form
//! is read here and its instant computed with integer arithmetic; anything
//! else, or anything odd about it (a leap second, an invalid date, `-00:00`,
//! an instant out of jiff's range), goes to jiff, so what is accepted, its
//! value and every error are jiff's (property tests below compare the two).

use jiff::Timestamp;

/// `s.parse::<Timestamp>()`, faster for the common form.
pub(crate) fn parse(s: &str) -> Result<Timestamp, jiff::Error> {
    match common(s.as_bytes()) {
        Some(t) => Ok(t),
        None => s.parse(),
    }
}

/// The instant of `YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|±HH:MM)`; `None` for any
/// other text, and for any of the form's values left to jiff to judge.
fn common(b: &[u8]) -> Option<Timestamp> {
    let (head, rest) = b.split_first_chunk::<19>()?;
    // Fixed places: digits and separators checked at once, each digit's
    // value read without bounds checks.
    let mut digits = [0i64; 19];
    for (i, (&c, d)) in head.iter().zip(&mut digits).enumerate() {
        let want = match i {
            4 | 7 => b'-',
            10 => b'T',
            13 | 16 => b':',
            _ => {
                *d = i64::from(c.wrapping_sub(b'0'));
                if *d > 9 {
                    return None;
                }
                continue;
            }
        };
        if c != want {
            return None;
        }
    }
    let two = |i: usize| digits[i] * 10 + digits[i + 1];
    let year = two(0) * 100 + two(2);
    let (month, day) = (two(5), two(8));
    let (hour, minute, second) = (two(11), two(14), two(17));
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        // 60 (a leap second) jiff reads as 59: left to it.
        || second > 59
    {
        return None;
    }
    let (nanos, rest) = match rest.split_first() {
        Some((b'.', frac)) => fraction(frac)?,
        _ => (0, rest),
    };
    let offset = match rest {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let d = |c: &u8| c.is_ascii_digit().then(|| i64::from(c - b'0'));
            let (h, m) = (d(h1)? * 10 + d(h2)?, d(m1)? * 10 + d(m2)?);
            // `-00:00` (an unknown local offset in RFC 3339) is jiff's to judge.
            if h > 23 || m > 59 || (*sign == b'-' && h == 0 && m == 0) {
                return None;
            }
            let secs = h * 3600 + m * 60;
            if *sign == b'-' { -secs } else { secs }
        }
        _ => return None,
    };
    let secs =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Timestamp::new(secs, nanos).ok()
}

/// The nanoseconds of 1 to 9 digits after the `.`, and what follows them.
fn fraction(b: &[u8]) -> Option<(i32, &[u8])> {
    let n = b.iter().take(10).take_while(|c| c.is_ascii_digit()).count();
    if n == 0 || n > 9 {
        return None;
    }
    let mut nanos = 0i32;
    for c in &b[..n] {
        nanos = nanos * 10 + i32::from(c - b'0');
    }
    Some((nanos * 10i32.pow(9 - n as u32), &b[n..]))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`, valid for every year read here).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What the event parser did before: jiff alone.
    fn jiff(s: &str) -> Result<Timestamp, String> {
        s.parse::<Timestamp>().map_err(|e| e.to_string())
    }

    fn same_as_jiff(s: &str) -> Result<(), TestCaseError> {
        let ours = parse(s).map_err(|e| e.to_string());
        prop_assert_eq!(&ours, &jiff(s), "{:?}", s);
        if let Some(t) = common(s.as_bytes()) {
            prop_assert_eq!(Ok(t), jiff(s), "{:?}", s);
        }
        Ok(())
    }

    #[test]
    fn the_forms_logs_write_take_the_fast_path_with_jiffs_value() {
        for s in [
            "2026-03-02T09:30:00+08:00",
            "2026-03-02T01:30:00Z",
            "2026-03-02T09:30:00.5-05:30",
            "2026-03-02T09:30:00.123456789+14:00",
            "2024-02-29T23:59:59+00:00",
            "2000-02-29T00:00:00Z",
            "1970-01-01T00:00:00Z",
            "1969-12-31T23:59:59.999999999Z",
            "0001-01-01T00:00:00Z",
            "0000-01-01T00:00:00Z",
            "0000-01-01T00:00:00+08:00",
            "9999-12-30T22:00:00Z",
        ] {
            assert_eq!(common(s.as_bytes()), Some(jiff(s).unwrap()), "{s}");
        }
    }

    #[test]
    fn odd_forms_go_to_jiff_and_keep_its_answer() {
        for s in [
            "2026-03-02t09:30:00+08:00",
            "2026-03-02 09:30:00+08:00",
            "2026-03-02T09:30:60Z",
            "2026-03-02T09:30:00,5Z",
            "2026-03-02T09:30:00.Z",
            "2026-03-02T09:30:00.1234567891Z",
            "2026-03-02T09:30:00-00:00",
            "2026-03-02T09:30:00+0800",
            "2026-03-02T09:30:00+08",
            "2026-03-02T09:30:00+08:00:00",
            "2026-03-02T09:30:00+08:00[Asia/Shanghai]",
            "2026-03-02T09:30:00z",
            "2026-03-02T09:30+08:00",
            "2025-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2100-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "9999-12-31T23:59:59Z",
            "2026-03-02T24:00:00Z",
            "2026-03-02T09:30:00+24:00",
            "+002026-03-02T09:30:00Z",
            "2026-03-02",
            "",
        ] {
            assert!(common(s.as_bytes()).is_none(), "{s}");
            same_as_jiff(s).unwrap();
        }
    }

    /// Texts near the common form: each part in and just out of its range,
    /// the separators and the offset's forms varied, junk appended.
    fn near() -> impl Strategy<Value = String> {
        let sep = prop::sample::select(vec!["T", "T", "T", "t", " ", "_"]);
        let frac = prop::option::of("[0-9]{0,11}");
        let offset = prop_oneof![
            Just("Z".to_string()),
            Just("z".to_string()),
            (
                prop::sample::select(vec!["+", "-", "−"]),
                0u32..27,
                0u32..62,
                prop::sample::select(vec![":", "", ":00"])
            )
                .prop_map(|(s, h, m, tail)| match tail {
                    ":" => format!("{s}{h:02}:{m:02}"),
                    "" => format!("{s}{h:02}{m:02}"),
                    _ => format!("{s}{h:02}:{m:02}:00"),
                }),
            Just(String::new()),
        ];
        let junk = prop::sample::select(vec!["", "", "", " ", "[UTC]", "x", "0"]);
        (
            // Centuries and month ends often: leap days are where dates err.
            (
                prop_oneof![0i64..=10_000, (0i64..=100).prop_map(|c| c * 100)],
                0u32..14,
                prop_oneof![0u32..33, 28u32..32],
            ),
            (0u32..26, 0u32..62, 0u32..62),
            sep,
            frac,
            offset,
            junk,
        )
            .prop_map(|((y, mo, d), (h, mi, s), sep, frac, off, junk)| {
                let frac = frac.map_or(String::new(), |f| format!(".{f}"));
                format!("{y:04}-{mo:02}-{d:02}{sep}{h:02}:{mi:02}:{s:02}{frac}{off}{junk}")
            })
    }

    /// Seconds of instants from 0001-01-02 (a year of four digits at every
    /// offset) to jiff's last, one in two around the end of a February of a
    /// century (leap or not, the place a calendar gets wrong).
    fn instants() -> impl Strategy<Value = i64> {
        let feb28 = |c: i16| {
            let dt = jiff::civil::date(c * 100, 2, 28).at(0, 0, 0, 0);
            let utc = jiff::tz::TimeZone::UTC;
            utc.to_timestamp(dt).unwrap().as_second()
        };
        prop_oneof![
            -62_135_510_400i64..=Timestamp::MAX.as_second(),
            (1i16..=99, -86_400i64..3 * 86_400).prop_map(move |(c, s)| feb28(c) + s),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        #[test]
        fn texts_near_the_form_read_as_jiff_reads_them(s in near()) {
            same_as_jiff(&s)?;
        }

        /// Valid instants written in the common form, over jiff's whole
        /// range and every offset: all on the fast path, all equal to jiff's.
        #[test]
        fn every_instant_written_in_the_form_is_read_exactly(
            secs in instants(),
            nanos in 0i32..1_000_000_000,
            digits in 0usize..=9,
            offset_min in -(23 * 60 + 59)..=(23 * 60 + 59i32),
        ) {
            let t = Timestamp::new(secs, 0).unwrap();
            let off = jiff::tz::Offset::from_seconds(offset_min * 60).unwrap();
            let dt = off.to_datetime(t);
            prop_assume!((1..=9999).contains(&dt.year()));
            let frac = match digits {
                0 => String::new(),
                n => format!(".{:0>9}", nanos)[..=n].to_string(),
            };
            let off = match offset_min {
                0 => "Z".to_string(),
                m => format!("{}{:02}:{:02}", if m < 0 { '-' } else { '+' }, m.abs() / 60, m.abs() % 60),
            };
            let s = format!("{}{frac}{off}", dt.strftime("%Y-%m-%dT%H:%M:%S"));
            same_as_jiff(&s)?;
            prop_assert!(common(s.as_bytes()).is_some(), "{}", s);
        }

        #[test]
        fn any_text_reads_as_jiff_reads_it(s in "\\PC{0,40}") {
            same_as_jiff(&s)?;
        }

        /// The common form with one byte replaced by any ASCII byte.
        #[test]
        fn one_byte_changed_reads_as_jiff_reads_it(
            at in 0usize..28,
            byte in 0u8..128,
        ) {
            let mut b = b"2026-03-02T09:30:00.25+08:00".to_vec();
            b[at] = byte;
            same_as_jiff(std::str::from_utf8(&b).unwrap())?;
        }
    }
}
