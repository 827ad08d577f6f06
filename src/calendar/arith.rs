//! Deadline arithmetic on the three clocks. Semantics: see the module docs
//! of [`super`].
//!
//! Every counted clock is "these ranges of each working day": working hours
//! for `working-hours`, 00:00–24:00 for `working-days`. So one walk over the
//! days, turning each range into instants in the calendar's zone, serves
//! both, and the instants come from the zone's rules (not from adding hours
//! to midnight), which keeps the arithmetic right in zones with DST too.

use std::time::Duration;

use jiff::civil::{Date, Time};
use jiff::{SignedDuration, Timestamp};

use super::hours::{DAY, WorkingHours};
use super::{Calendar, Clock};

impl Calendar {
    /// The daily ranges of a counted clock; `None` for the wall clock.
    fn hours_of(&self, clock: Clock) -> Option<&WorkingHours> {
        match clock {
            Clock::Wall => None,
            Clock::WorkingHours => Some(&self.hours),
            Clock::WorkingDays => Some(&self.whole_day),
        }
    }

    /// `secs` after the start of `date` on the civil clock, as an instant;
    /// `None` past the end of jiff's range (year 9999).
    fn instant(&self, date: Date, secs: u32) -> Option<Timestamp> {
        let dt = if secs >= DAY {
            date.tomorrow().ok()?.to_datetime(Time::midnight())
        } else {
            let t = Time::new(
                (secs / 3600) as i8,
                (secs / 60 % 60) as i8,
                (secs % 60) as i8,
                0,
            )
            .ok()?;
            date.to_datetime(t)
        };
        // A range edge inside a DST gap moves forward to the first instant
        // that exists ("compatible"), as people's clocks do.
        self.to_timestamp(dt)
    }

    /// The counted ranges of `date`, as half-open instant ranges in order;
    /// none unless it is a working day.
    fn ranges<'a>(
        &'a self,
        date: Date,
        hours: &'a WorkingHours,
    ) -> impl Iterator<Item = (Timestamp, Timestamp)> + 'a {
        let working = self.is_working_day(date);
        hours
            .intervals()
            .iter()
            .filter(move |_| working)
            .filter_map(move |iv| {
                let a = self.instant(date, iv.start)?;
                let b = self.instant(date, iv.end)?;
                (a < b).then_some((a, b))
            })
    }

    /// `t` if `t` counts on `clock`, else the start of the next counted range.
    pub fn next_counted(&self, t: Timestamp, clock: Clock) -> Timestamp {
        let Some(hours) = self.hours_of(clock) else {
            return t;
        };
        let mut date = self.date_of(t);
        loop {
            if let Some((a, _)) = self.ranges(date, hours).find(|&(_, b)| b > t) {
                return a.max(t);
            }
            let Ok(next) = date.tomorrow() else {
                return Timestamp::MAX;
            };
            date = next;
        }
    }

    /// The earliest instant at which `d` of counted time has elapsed since
    /// `start`: the due instant of a deadline of `d` on `clock`.
    pub fn add(&self, start: Timestamp, d: Duration, clock: Clock) -> Timestamp {
        // Counted time never runs faster than wall time, so a sum past the
        // end of time is the end of time on every clock.
        let Ok(wall_due) = start.checked_add(d) else {
            return Timestamp::MAX;
        };
        let Some(hours) = self.hours_of(clock) else {
            return wall_due;
        };
        if d.is_zero() {
            // Not next_counted(start): additivity needs add(due, 0) == due
            // when due is a closing instant such as 18:00.
            return start;
        }
        let Ok(mut left) = SignedDuration::try_from(d) else {
            return Timestamp::MAX;
        };
        let mut date = self.date_of(start);
        loop {
            for (a, b) in self.ranges(date, hours) {
                if b <= start {
                    continue;
                }
                let a = a.max(start);
                let available = a.duration_until(b);
                if left <= available {
                    return a.checked_add(left).unwrap_or(Timestamp::MAX);
                }
                left -= available;
            }
            let Ok(next) = date.tomorrow() else {
                return Timestamp::MAX;
            };
            date = next;
        }
    }

    /// Counted time in `[a, b)`; zero when `b ≤ a`. Reports how late a
    /// reply was in the clock's own terms.
    pub fn counted_between(&self, a: Timestamp, b: Timestamp, clock: Clock) -> Duration {
        if b <= a {
            return Duration::ZERO;
        }
        let Some(hours) = self.hours_of(clock) else {
            return a.duration_until(b).unsigned_abs();
        };
        let mut total = SignedDuration::ZERO;
        let (mut date, last) = (self.date_of(a), self.date_of(b));
        while date <= last {
            for (x, y) in self.ranges(date, hours) {
                let (lo, hi) = (x.max(a), y.min(b));
                if lo < hi {
                    total += lo.duration_until(hi);
                }
            }
            let Ok(next) = date.tomorrow() else {
                break;
            };
            date = next;
        }
        total.unsigned_abs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::testkit::*;

    #[test]
    fn starts_at_opening_and_closing_instants() {
        let c = cal();
        assert_eq!(
            due(&c, "2026-03-04 09:00", H, Clock::WorkingHours),
            "2026-03-04 Wed 10:00"
        );
        assert_eq!(
            due(&c, "2026-03-04 18:00", H, Clock::WorkingHours),
            "2026-03-05 Thu 10:00"
        );
        assert_eq!(
            due(&c, "2026-03-04 08:59", H, Clock::WorkingHours),
            "2026-03-04 Wed 10:00"
        );
        // A budget used up exactly at closing falls due at closing.
        assert_eq!(
            due(&c, "2026-03-04 17:00", H, Clock::WorkingHours),
            "2026-03-04 Wed 18:00"
        );
        assert_eq!(
            show(
                &c,
                c.next_counted(at("2026-03-04 18:00"), Clock::WorkingHours)
            ),
            "2026-03-05 Thu 09:00"
        );
        assert_eq!(
            show(
                &c,
                c.next_counted(at("2026-03-04 09:00"), Clock::WorkingHours)
            ),
            "2026-03-04 Wed 09:00"
        );
        assert_eq!(
            c.next_counted(at("2026-03-04 17:59"), Clock::WorkingHours),
            at("2026-03-04 17:59")
        );
        let s = at("2026-03-04 18:00");
        assert_eq!(c.add(s, Duration::ZERO, Clock::WorkingHours), s);
    }

    #[test]
    fn lunch_break_does_not_count() {
        let c = lunch();
        assert_eq!(
            due(&c, "2026-03-04 11:30", H, Clock::WorkingHours),
            "2026-03-04 Wed 14:00"
        );
        assert_eq!(
            due(&c, "2026-03-04 12:00", H, Clock::WorkingHours),
            "2026-03-04 Wed 14:30"
        );
        assert_eq!(
            due(&c, "2026-03-04 12:45", H, Clock::WorkingHours),
            "2026-03-04 Wed 14:30"
        );
        assert_eq!(
            due(&c, "2026-03-04 11:00", H, Clock::WorkingHours),
            "2026-03-04 Wed 12:00"
        );
        // 7.5 counted hours a day: 8 hours from 09:00 end at 09:30 the next day.
        assert_eq!(
            due(&c, "2026-03-04 09:00", 8 * H, Clock::WorkingHours),
            "2026-03-05 Thu 09:30"
        );
        assert_eq!(
            show(
                &c,
                c.next_counted(at("2026-03-04 12:10"), Clock::WorkingHours)
            ),
            "2026-03-04 Wed 13:30"
        );
        assert_eq!(
            c.counted_between(
                at("2026-03-04 11:50"),
                at("2026-03-04 13:40"),
                Clock::WorkingHours
            ),
            20 * MIN
        );
    }

    #[test]
    fn working_days_keep_the_time_of_day() {
        let c = cal();
        assert_eq!(
            due(&c, "2026-03-04 15:00", 48 * H, Clock::WorkingDays),
            "2026-03-06 Fri 15:00"
        );
        assert_eq!(
            due(&c, "2026-03-05 15:00", 48 * H, Clock::WorkingDays),
            "2026-03-09 Mon 15:00"
        );
        // From a Saturday: Monday and Tuesday, due at Tuesday's end.
        assert_eq!(
            due(&c, "2026-03-07 15:00", 48 * H, Clock::WorkingDays),
            "2026-03-11 Wed 00:00"
        );
    }

    #[test]
    fn wall_clock_is_elapsed_time() {
        let c = cal();
        assert_eq!(
            due(&c, "2026-02-16 10:00", 24 * H, Clock::Wall),
            "2026-02-17 Tue 10:00"
        );
        assert_eq!(
            c.counted_between(at("2026-02-17 10:00"), at("2026-02-16 10:00"), Clock::Wall),
            Duration::ZERO
        );
    }

    #[test]
    fn far_future_saturates() {
        let c = cal();
        let s = at("9999-12-30 10:00");
        assert_eq!(c.add(s, 100 * H, Clock::WorkingHours), Timestamp::MAX);
        assert_eq!(c.add(s, Duration::MAX, Clock::Wall), Timestamp::MAX);
        assert_eq!(
            c.add(at("2026-01-01 00:00"), Duration::MAX, Clock::WorkingDays),
            Timestamp::MAX
        );
    }

    #[test]
    fn lateness_in_working_hours() {
        let c = cal();
        // Due Monday 09:30, answered Monday 11:00: 90 working minutes late,
        // though 3 days of wall time passed since Friday.
        let due = at("2026-03-09 09:30");
        assert_eq!(
            c.counted_between(due, at("2026-03-09 11:00"), Clock::WorkingHours),
            90 * MIN
        );
        assert_eq!(
            c.counted_between(
                at("2026-03-06 17:30"),
                at("2026-03-09 11:00"),
                Clock::WorkingHours
            ),
            150 * MIN
        );
    }
}
