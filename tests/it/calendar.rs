//! The working-time calendar against an independent oracle and as
//! properties.
//!
//! The oracle is the PyPI package chinesecalendar (module chinese_calendar),
//! maintained apart from the crates.io data our holidays.yaml was seeded from;
//! scripts/test.sh installs it. Without it these tests fail rather than skip:
//! a silently skipped oracle is how a wrong holiday ships.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::LazyLock;
use std::time::Duration;

use complyd::calendar::{Calendar, Clock, Holidays, WorkingHours};
use jiff::civil::{Date, Time, date};
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;

const ORACLE: &str = r#"
import datetime, sys
try:
    import chinese_calendar
except ImportError as e:
    sys.exit(f"cannot import chinese_calendar: {e}")
print(getattr(chinese_calendar, "__version__", "?"))
d = datetime.date(2025, 1, 1)
while d.year < 2027:
    w, h = chinese_calendar.is_workday(d), chinese_calendar.is_holiday(d)
    if w == h:
        sys.exit(f"chinese_calendar says {d} is both or neither a workday and a holiday")
    print(d.isoformat(), int(w))
    d += datetime.timedelta(days=1)
"#;

/// The oracle's verdict for every date of 2025–2026, and its version.
static ORACLE_DAYS: LazyLock<(String, BTreeMap<Date, bool>)> = LazyLock::new(|| {
    let hint = "run scripts/test.sh, which installs the calendar oracle \
                (python3 -m pip install chinesecalendar)";
    let out = Command::new("python3")
        .args(["-c", ORACLE])
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e}): {hint}"));
    assert!(
        out.status.success(),
        "the chinesecalendar oracle failed: {}\n{hint}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let version = lines.next().unwrap_or("?").to_string();
    let days = lines
        .map(|l| {
            let (d, w) = l.split_once(' ').unwrap();
            (d.parse().unwrap(), w == "1")
        })
        .collect();
    (version, days)
});

#[test]
fn working_days_agree_with_chinesecalendar_for_2025_and_2026() {
    let (version, oracle) = &*ORACLE_DAYS;
    assert_eq!(oracle.len(), 730, "oracle chinesecalendar {version}");
    let cal = Calendar::default();
    let disagreements: Vec<String> = oracle
        .iter()
        .filter(|&(&d, &w)| cal.is_working_day(d) != w)
        .map(|(d, w)| {
            format!(
                "{d} ({:?}): chinesecalendar {version} says {}, data/holidays.yaml says {:?}",
                d.weekday(),
                if *w { "workday" } else { "day off" },
                cal.holidays().special(*d)
            )
        })
        .collect();
    assert!(disagreements.is_empty(), "{disagreements:#?}");
}

#[test]
fn shipped_data_covers_2025_and_2026_and_warns_for_2027() {
    let cal = Calendar::default();
    let now: Timestamp = "2026-12-01T10:00:00+08:00".parse().unwrap();
    let warnings = cal.warnings(now);
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].year, 2027);
    assert!(
        cal.warnings("2025-12-01T10:00:00+08:00".parse().unwrap())
            .is_empty()
    );
    // The shipped file parses on its own, as an operator's copy would.
    let h = Holidays::load(std::path::Path::new("data/holidays.yaml")).unwrap();
    assert_eq!(&h, cal.holidays());
}

fn lunch() -> Calendar {
    let c = Calendar::default();
    let hours = WorkingHours::parse(&["09:00-12:00", "13:30-18:00"]).unwrap();
    Calendar::new(c.time_zone().clone(), hours, Holidays::builtin())
}

static CALENDARS: LazyLock<[Calendar; 2]> = LazyLock::new(|| [Calendar::default(), lunch()]);

fn civil(cal: &Calendar, d: Date, secs: u32) -> Timestamp {
    let t = Time::midnight()
        .checked_add(SignedDuration::from_secs(secs.into()))
        .unwrap();
    cal.time_zone().to_timestamp(d.to_datetime(t)).unwrap()
}

/// An instant in 2025–2026 (a week short of its end, so that naive counting
/// stays inside the oracle's years), often exactly on a range edge, where
/// the off-by-one mistakes live.
fn instant() -> impl Strategy<Value = (u32, u32, u32)> {
    let secs = prop_oneof![
        0u32..86_400,
        prop::sample::select(vec![0, 9 * 3600, 12 * 3600, 13 * 3600 + 1800, 18 * 3600]),
    ];
    let nanos = prop_oneof![Just(0u32), 0u32..1_000_000_000];
    (0u32..720, secs, nanos)
}

fn at(cal: &Calendar, (day, secs, nanos): (u32, u32, u32)) -> Timestamp {
    let d = date(2025, 1, 1)
        .checked_add(jiff::Span::new().days(i64::from(day)))
        .unwrap();
    civil(cal, d, secs) + SignedDuration::from_nanos(nanos.into())
}

/// Up to 300 hours, often whole minutes or hours.
fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (0u64..300).prop_map(|h| Duration::from_secs(h * 3600)),
        (0u64..300 * 60).prop_map(|m| Duration::from_secs(m * 60)),
        (0u64..300 * 3600, 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
    ]
}

fn clock() -> impl Strategy<Value = Clock> {
    prop::sample::select(Clock::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn add_is_monotone_in_start(c in 0usize..2, a in instant(), b in instant(), d in duration(), k in clock()) {
        let cal = &CALENDARS[c];
        let (a, b) = (at(cal, a), at(cal, b));
        let (a, b) = (a.min(b), a.max(b));
        prop_assert!(cal.add(a, d, k) <= cal.add(b, d, k));
    }

    #[test]
    fn add_is_monotone_in_duration(c in 0usize..2, s in instant(), d1 in duration(), d2 in duration(), k in clock()) {
        let cal = &CALENDARS[c];
        let s = at(cal, s);
        let (d1, d2) = (d1.min(d2), d1.max(d2));
        prop_assert!(cal.add(s, d1, k) <= cal.add(s, d2, k));
    }

    #[test]
    fn add_is_additive(c in 0usize..2, s in instant(), a in duration(), b in duration(), k in clock()) {
        let cal = &CALENDARS[c];
        let s = at(cal, s);
        prop_assert_eq!(cal.add(cal.add(s, a, k), b, k), cal.add(s, a + b, k));
    }

    #[test]
    fn counted_between_inverts_add(c in 0usize..2, s in instant(), d in duration(), k in clock()) {
        let cal = &CALENDARS[c];
        let s = at(cal, s);
        let due = cal.add(s, d, k);
        prop_assert!(due >= s);
        prop_assert_eq!(cal.counted_between(s, due, k), d);
        // And the due instant is the earliest such: one nanosecond before, d
        // has not yet elapsed.
        if !d.is_zero() {
            let before = due - SignedDuration::from_nanos(1);
            prop_assert!(cal.counted_between(s, before, k) < d);
        }
    }

    #[test]
    fn next_counted_is_the_first_counted_instant(c in 0usize..2, t in instant(), k in clock()) {
        let cal = &CALENDARS[c];
        let t = at(cal, t);
        let n = cal.next_counted(t, k);
        prop_assert!(n >= t);
        prop_assert_eq!(cal.counted_between(t, n, k), Duration::ZERO);
        let second = Duration::from_secs(1);
        prop_assert_eq!(cal.counted_between(n, n + SignedDuration::from_secs(1), k), second);
        // A deadline started outside counted time is one started at n.
        prop_assert_eq!(cal.add(t, second, k), cal.add(n, second, k));
    }

    /// Counting minute by minute with the oracle's working days and the
    /// civil time of day: no use of the calendar's own holiday data or range
    /// arithmetic.
    #[test]
    fn counted_between_matches_naive_minute_counting(
        c in 0usize..2,
        day in 0u32..720,
        from in 0u32..1440,
        len in 0u32..(6 * 1440),
        k in prop::sample::select(vec![Clock::WorkingHours, Clock::WorkingDays]),
    ) {
        let cal = &CALENDARS[c];
        let oracle = &ORACLE_DAYS.1;
        let start = at(cal, (day, from * 60, 0));
        let mut expected = 0u64;
        for m in 0..len {
            let t = start + SignedDuration::from_mins(m.into());
            let dt = cal.time_zone().to_datetime(t);
            let minute_of_day = u32::from(dt.hour() as u8) * 60 + u32::from(dt.minute() as u8);
            let in_hours = match k {
                Clock::WorkingDays => true,
                _ => cal.working_hours().intervals().iter().any(|iv| {
                    iv.start <= minute_of_day * 60 && minute_of_day * 60 < iv.end
                }),
            };
            if oracle[&dt.date()] && in_hours {
                expected += 60;
            }
        }
        let end = start + SignedDuration::from_mins(len.into());
        prop_assert_eq!(cal.counted_between(start, end, k), Duration::from_secs(expected));
    }
}
