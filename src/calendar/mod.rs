//! Working-time calendar: when deadlines fall due on the clocks the
//! regulation uses ("within 1 working hour", "within 5 working days").
//!
//! A [`Calendar`] holds a time zone (Asia/Shanghai by default), the working
//! hours of a working day (09:00–18:00 by default; several ranges allowed,
//! e.g. 09:00–12:00 and 13:30–18:00 around a lunch break) and the holiday
//! data ([`Holidays`], shipped as `data/holidays.yaml`). All arithmetic is
//! pure: it depends on nothing but the calendar and its arguments.
//!
//! # Clocks
//!
//! Each [`Clock`] says which instants *count*:
//!
//! * [`Clock::Wall`]: every instant (plain elapsed time).
//! * [`Clock::WorkingHours`]: instants inside a working-hours range of a
//!   working day.
//! * [`Clock::WorkingDays`]: every instant of a working day, all 24 hours,
//!   midnight to midnight.
//!
//! A date is a **working day** when it is Monday to Friday and not listed as a
//! holiday day off, or when it is listed as a 调休 make-up working day
//! (a Saturday or Sunday). Dates of years missing from the data are plain
//! weeks; [`Calendar::warnings`] says when the current or next year is missing.
//!
//! # Exact semantics at the boundaries
//!
//! * Ranges are half-open, `[09:00, 18:00)`: 09:00 sharp counts, 18:00 sharp
//!   does not. Working days are `[00:00, next 00:00)` in the calendar's zone.
//! * [`Calendar::next_counted`]`(t)` is `t` itself when `t` counts, else the
//!   start of the next counted range: a question at 18:00 sharp, or on Sunday,
//!   or during the Spring Festival, starts counting at 09:00 of the next
//!   working day (00:00 on the working-days clock).
//! * [`Calendar::add`]`(start, d)` is the **earliest** instant `t ≥ start` at
//!   which `d` of counted time has elapsed since `start`. So a budget used up
//!   exactly at closing time falls due at 18:00 that day, not at 09:00 the
//!   next: 17:00 + 1 working hour = 18:00. A question on Friday 17:30 with 1
//!   working hour is due Monday 09:30 (30 minutes on Friday, 30 on Monday),
//!   or Tuesday 09:30 when Monday is a holiday. `add(start, 0) == start`.
//!   Whether a reply exactly at the due instant is on time is the caller's
//!   rule (the deadline rule says it is); `add` returns the exact instant.
//! * [`Calendar::counted_between`]`(a, b)` is the counted time in `[a, b)`,
//!   zero when `b ≤ a`; it inverts `add`: `counted_between(s, add(s, d)) == d`.
//! * `add` is monotone in both arguments and additive:
//!   `add(add(s, a), b) == add(s, a + b)` (tested as properties).
//! * "N working days" is N × 24 h on the working-days clock: started at
//!   Wednesday 15:00, 2 working days fall due Friday 15:00; started on
//!   Saturday, they fall due at Tuesday 24:00 (= Wednesday 00:00). In a zone
//!   with daylight saving time a day counts its real length (23 or 25 hours);
//!   Asia/Shanghai has had none since 1991.
//! * Results saturate at [`jiff::Timestamp::MAX`] (year 9999) instead of
//!   failing: a due instant that far away never falls due.

mod arith;
pub mod config;
mod holiday_file;
pub mod holidays;
pub mod hours;
#[cfg(test)]
mod scenarios;
#[cfg(test)]
mod testkit;

use std::fmt;
use std::str::FromStr;

use jiff::civil::{Date, DateTime};
use jiff::tz::{Offset, TimeZone};
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;

pub use config::CalendarSpec;
pub use holidays::{CoverageWarning, Holidays, Special, YearSource};
pub use hours::{Interval, WorkingHours};

/// The zone the company works in.
pub const DEFAULT_TIME_ZONE: &str = "Asia/Shanghai";

/// Which instants a duration counts. Written `wall`, `working-hours` and
/// `working-days` in rule files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Clock {
    Wall,
    WorkingHours,
    WorkingDays,
}

impl Clock {
    pub const ALL: [Clock; 3] = [Clock::Wall, Clock::WorkingHours, Clock::WorkingDays];

    pub fn as_str(self) -> &'static str {
        match self {
            Clock::Wall => "wall",
            Clock::WorkingHours => "working-hours",
            Clock::WorkingDays => "working-days",
        }
    }
}

impl fmt::Display for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Clock {
    type Err = String;

    fn from_str(s: &str) -> Result<Clock, String> {
        Clock::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                format!("unknown clock `{s}`; expected wall, working-hours or working-days")
            })
    }
}

/// Time zone, working hours and holidays.
#[derive(Debug, Clone)]
pub struct Calendar {
    tz: TimeZone,
    hours: WorkingHours,
    holidays: Holidays,
    /// The working-days clock's "hours": the whole day.
    whole_day: WorkingHours,
    /// The zone's offset from the instant it no longer changes (China's
    /// since 1991, UTC's always), with three days' margin: instants after
    /// it are turned into civil times and back by that offset alone. A
    /// deadline on a counted clock turned ~5 civil times into instants
    /// through the zone's rules (~250 instructions each); the result is the
    /// same (see [`fixed_offset`]), zones with DST keep the rules.
    fixed: Option<(Timestamp, Offset)>,
}

impl Default for Calendar {
    /// Asia/Shanghai, 09:00–18:00, the shipped holidays.
    fn default() -> Calendar {
        // jiff falls back to its bundled tzdb when the system has none, so
        // this zone always resolves.
        let tz = TimeZone::get(DEFAULT_TIME_ZONE).expect("the bundled tzdb has Asia/Shanghai");
        Calendar::new(tz, WorkingHours::default(), Holidays::builtin())
    }
}

impl Calendar {
    pub fn new(tz: TimeZone, hours: WorkingHours, holidays: Holidays) -> Calendar {
        Calendar {
            fixed: fixed_offset(&tz),
            tz,
            hours,
            holidays,
            whole_day: WorkingHours::whole_day(),
        }
    }

    /// The same calendar going through the zone's rules for every instant.
    #[cfg(test)]
    fn without_fixed_offset(mut self) -> Calendar {
        self.fixed = None;
        self
    }

    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }

    pub fn working_hours(&self) -> &WorkingHours {
        &self.hours
    }

    pub fn holidays(&self) -> &Holidays {
        &self.holidays
    }

    /// Monday–Friday and not a holiday, or a 调休 make-up working day.
    pub fn is_working_day(&self, date: Date) -> bool {
        self.holidays.is_working_day(date)
    }

    /// The civil date of `t` in the calendar's zone.
    pub fn date_of(&self, t: Timestamp) -> Date {
        self.datetime_of(t).date()
    }

    /// The civil time of `t` in the calendar's zone.
    pub fn datetime_of(&self, t: Timestamp) -> DateTime {
        match self.fixed {
            Some((from, offset)) if t > from => offset.to_datetime(t),
            _ => self.tz.to_datetime(t),
        }
    }

    /// The instant of `dt` in the calendar's zone; a civil time in a DST
    /// gap moves forward ("compatible"), as people's clocks do.
    fn to_timestamp(&self, dt: DateTime) -> Option<Timestamp> {
        if let Some((from, offset)) = self.fixed
            && let Ok(t) = offset.to_timestamp(dt)
            && t > from
        {
            return Some(t);
        }
        self.tz.to_timestamp(dt).ok()
    }

    /// Warnings to log when the holiday data lacks the current or the next
    /// year (relative to `now` in the calendar's zone).
    pub fn warnings(&self, now: Timestamp) -> Vec<CoverageWarning> {
        self.holidays.coverage_warnings(self.date_of(now))
    }
}

/// From when on (exclusive) `tz`'s offset never changes, plus three days,
/// and that offset. Three days, because a civil time `dt` whose instant by
/// that offset is past it cannot have another instant by an earlier offset
/// (offsets differ by less than 52 h): it is neither in a gap nor in a fold,
/// and the zone's rules give that same instant.
fn fixed_offset(tz: &TimeZone) -> Option<(Timestamp, Offset)> {
    let last = tz.preceding(Timestamp::MAX).next().map(|t| t.timestamp());
    let from = last.unwrap_or(Timestamp::MIN);
    if tz.following(from).next().is_some() {
        return None;
    }
    let from = from.checked_add(SignedDuration::from_hours(72)).ok()?;
    Some((from, tz.to_offset(from)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_names() {
        for c in Clock::ALL {
            assert_eq!(c.as_str().parse::<Clock>(), Ok(c));
            let yaml: Clock = serde_saphyr::from_str(c.as_str()).unwrap();
            assert_eq!(yaml, c);
        }
        assert!(
            "working_hours"
                .parse::<Clock>()
                .unwrap_err()
                .contains("working-hours")
        );
    }

    /// Machines without /usr/share/zoneinfo (minimal CI images) fall back to
    /// the bundled copy, so the default zone must be in it.
    #[test]
    fn bundled_tzdb_has_the_default_zone() {
        let bundled = jiff::tz::TimeZoneDatabase::bundled();
        let tz = bundled.get(DEFAULT_TIME_ZONE).unwrap();
        let t: Timestamp = "2026-07-01T00:00:00Z".parse().unwrap();
        assert_eq!(tz.to_offset(t).seconds(), 8 * 3600);
    }

    /// Zones without DST (now or ever), that gave it up (Istanbul 2016,
    /// São Paulo 2019), and that keep it, with a lunch break.
    fn fast_and_slow(zone: &str) -> (Calendar, Calendar) {
        let tz = TimeZone::get(zone).unwrap();
        let hours = WorkingHours::parse(&["09:00-12:00", "13:30-18:00"]).unwrap();
        let fast = Calendar::new(tz, hours, Holidays::builtin());
        let slow = fast.clone().without_fixed_offset();
        (fast, slow)
    }

    const ZONES: [&str; 6] = [
        "Asia/Shanghai",
        "UTC",
        "Europe/Istanbul",
        "America/Sao_Paulo",
        "America/New_York",
        "Australia/Lord_Howe",
    ];

    #[test]
    fn only_zones_that_no_longer_change_offset_skip_their_rules() {
        let t: Timestamp = "2026-03-02T00:00:00Z".parse().unwrap();
        let uses_offset = |z: &str| fast_and_slow(z).0.fixed.is_some_and(|(from, _)| from < t);
        let fixed: Vec<&str> = ZONES.into_iter().filter(|z| uses_offset(z)).collect();
        // The shipped zone does; zones with DST do not (nor, as their tzdb
        // entries list them, those that gave it up: they keep their rules).
        assert!(
            fixed.contains(&"Asia/Shanghai") && fixed.contains(&"UTC"),
            "{fixed:?}"
        );
        assert!(!fixed.contains(&"America/New_York"), "{fixed:?}");
        assert!(!fixed.contains(&"Australia/Lord_Howe"), "{fixed:?}");
    }

    /// Every quarter hour of civil time from four days before the last
    /// change of offset to four days after the margin (Shanghai's: the end
    /// of DST in 1991, an hour that happened twice).
    #[test]
    fn civil_times_around_the_last_change_are_read_by_the_zones_rules() {
        for zone in ZONES {
            let (fast, slow) = fast_and_slow(zone);
            let Some((from, _)) = fast.fixed else {
                continue;
            };
            let Ok(first) = from.checked_sub(SignedDuration::from_hours(7 * 24)) else {
                continue;
            };
            let mut dt = slow.tz.to_datetime(first);
            for _ in 0..11 * 24 * 4 {
                assert_eq!(fast.to_timestamp(dt), slow.to_timestamp(dt), "{zone} {dt}");
                dt = dt.checked_add(SignedDuration::from_mins(15)).unwrap();
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2_000))]

        /// Due instants, next counted instants and dates are the same
        /// through the offset as through the zone's rules, in each zone,
        /// from 1900 to 2100 (half of the starts around the zone's last
        /// change of offset, where the margin matters).
        #[test]
        fn the_fixed_offset_gives_what_the_zones_rules_give(
            zone in 0usize..ZONES.len(),
            near_last in proptest::bool::ANY,
            secs in -2_208_988_800i64..4_102_444_800,
            around in -10 * 86_400i64..10 * 86_400,
            minutes in 1u64..20 * 24 * 60,
            clock in proptest::sample::select(Clock::ALL.to_vec()),
        ) {
            let (fast, slow) = fast_and_slow(ZONES[zone]);
            let start = match (near_last, fast.fixed) {
                (true, Some((from, _)))
                    if (-2_208_988_800..4_102_444_800).contains(&from.as_second()) =>
                {
                    from.as_second() + around
                }
                _ => secs,
            };
            let start = Timestamp::from_second(start).unwrap();
            let d = std::time::Duration::from_secs(minutes * 60);
            proptest::prop_assert_eq!(fast.add(start, d, clock), slow.add(start, d, clock));
            proptest::prop_assert_eq!(
                fast.next_counted(start, clock),
                slow.next_counted(start, clock)
            );
            proptest::prop_assert_eq!(fast.datetime_of(start), slow.datetime_of(start));
        }
    }

    #[test]
    fn dates_are_taken_in_the_calendar_zone() {
        let c = Calendar::default();
        // 16:30 UTC on Friday is 00:30 Saturday in Shanghai.
        let t: Timestamp = "2026-03-06T16:30:00Z".parse().unwrap();
        assert_eq!(c.date_of(t), jiff::civil::date(2026, 3, 7));
        assert_eq!(
            c.next_counted(t, Clock::WorkingHours).to_string(),
            "2026-03-09T01:00:00Z"
        );
    }
}
