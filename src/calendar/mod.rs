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

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
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
            tz,
            hours,
            holidays,
            whole_day: WorkingHours::whole_day(),
        }
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
        self.tz.to_datetime(t).date()
    }

    /// Warnings to log when the holiday data lacks the current or the next
    /// year (relative to `now` in the calendar's zone).
    pub fn warnings(&self, now: Timestamp) -> Vec<CoverageWarning> {
        self.holidays.coverage_warnings(self.date_of(now))
    }
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
