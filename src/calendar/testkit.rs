//! Helpers for the calendar's unit tests: civil times in Asia/Shanghai in,
//! readable civil times out.

use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::DateTime;

use super::{Calendar, Clock, Holidays, WorkingHours};

pub(crate) fn cal() -> Calendar {
    Calendar::default()
}

pub(crate) fn lunch() -> Calendar {
    let c = cal();
    let hours = WorkingHours::parse(&["09:00-12:00", "13:30-18:00"]).unwrap();
    Calendar::new(c.time_zone().clone(), hours, Holidays::builtin())
}

/// Civil time in Asia/Shanghai, `YYYY-MM-DD HH:MM`.
pub(crate) fn at(s: &str) -> Timestamp {
    let dt: DateTime = s.parse().unwrap();
    cal().time_zone().to_timestamp(dt).unwrap()
}

pub(crate) fn show(c: &Calendar, t: Timestamp) -> String {
    c.time_zone()
        .to_datetime(t)
        .strftime("%F %a %H:%M")
        .to_string()
}

pub(crate) const H: Duration = Duration::from_secs(3600);
pub(crate) const MIN: Duration = Duration::from_secs(60);

/// Asserts add(start, d) and that counted_between inverts it.
pub(crate) fn due(c: &Calendar, start: &str, d: Duration, clock: Clock) -> String {
    let s = at(start);
    let t = c.add(s, d, clock);
    assert_eq!(
        c.counted_between(s, t, clock),
        d,
        "{start} + {d:?} on {clock}"
    );
    show(c, t)
}
