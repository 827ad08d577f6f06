//! Deadlines around real dates of the 2025–2026 holiday data: the cases the
//! issue names (a question on Friday evening, on the eve of the Spring
//! Festival, on a 调休 Saturday, across National Day, on a holiday).

use std::time::Duration;

use super::Clock;
use super::testkit::*;

#[test]
fn friday_evening_question_is_due_monday() {
    let c = cal();
    // 2026-03-06 is an ordinary Friday.
    assert_eq!(
        due(&c, "2026-03-06 17:30", H, Clock::WorkingHours),
        "2026-03-09 Mon 09:30"
    );
    // 2026-04-03: Monday 04-06 is 清明节, so Tuesday.
    assert_eq!(
        due(&c, "2026-04-03 17:30", H, Clock::WorkingHours),
        "2026-04-07 Tue 09:30"
    );
}

#[test]
fn eve_of_the_spring_festival_2026() {
    let c = cal();
    // The break is 02-15 (Sun) to 02-23 (Mon); the Saturday before it,
    // 02-14, is a 调休 working day: the last one before the festival.
    assert_eq!(
        due(&c, "2026-02-14 17:30", H, Clock::WorkingHours),
        "2026-02-24 Tue 09:30"
    );
    // 02-13 is a Friday: the answer is due on the make-up Saturday.
    assert_eq!(
        due(&c, "2026-02-13 17:30", H, Clock::WorkingHours),
        "2026-02-14 Sat 09:30"
    );
    // 除夕 (02-16) itself is a day off.
    assert_eq!(
        due(&c, "2026-02-16 10:00", H, Clock::WorkingHours),
        "2026-02-24 Tue 10:00"
    );
    assert_eq!(
        due(&c, "2026-02-14 12:00", 24 * H, Clock::WorkingDays),
        "2026-02-24 Tue 12:00"
    );
}

#[test]
fn make_up_saturday_counts() {
    let c = cal();
    // 2026-02-28 is a 调休 Saturday after the Spring Festival.
    assert!(
        c.is_working_day(
            at("2026-02-28 00:00")
                .to_zoned_datetime(c.time_zone().clone())
                .date()
        )
    );
    assert_eq!(
        due(&c, "2026-02-28 10:00", H, Clock::WorkingHours),
        "2026-02-28 Sat 11:00"
    );
    assert_eq!(
        due(&c, "2026-02-27 17:30", H, Clock::WorkingHours),
        "2026-02-28 Sat 09:30"
    );
    // An ordinary Saturday does not.
    assert_eq!(
        due(&c, "2026-03-07 10:00", H, Clock::WorkingHours),
        "2026-03-09 Mon 10:00"
    );
}

#[test]
fn working_days_across_national_day() {
    let c = cal();
    // 2026: 10-01..07 off, 10-10 (Sat) a make-up day.
    assert_eq!(
        due(&c, "2026-09-30 10:00", 24 * H, Clock::WorkingDays),
        "2026-10-08 Thu 10:00"
    );
    assert_eq!(
        due(&c, "2026-10-09 10:00", 24 * H, Clock::WorkingDays),
        "2026-10-10 Sat 10:00"
    );
    // 2025: 10-01..08 off.
    assert_eq!(
        due(&c, "2025-09-30 10:00", 24 * H, Clock::WorkingDays),
        "2025-10-09 Thu 10:00"
    );
    // Working hours over the same break: 9 hours = one full day.
    assert_eq!(
        due(&c, "2026-09-30 10:00", 9 * H, Clock::WorkingHours),
        "2026-10-08 Thu 10:00"
    );
}

#[test]
fn start_on_a_holiday() {
    let c = cal();
    let s = at("2026-10-03 15:00");
    assert_eq!(
        show(&c, c.next_counted(s, Clock::WorkingDays)),
        "2026-10-08 Thu 00:00"
    );
    assert_eq!(
        show(&c, c.next_counted(s, Clock::WorkingHours)),
        "2026-10-08 Thu 09:00"
    );
    assert_eq!(c.next_counted(s, Clock::Wall), s);
    // The whole of 10-08 counts: due at its end, Friday 00:00.
    assert_eq!(
        due(&c, "2026-10-03 15:00", 24 * H, Clock::WorkingDays),
        "2026-10-09 Fri 00:00"
    );
    assert_eq!(
        due(&c, "2026-10-03 15:00", H, Clock::WorkingHours),
        "2026-10-08 Thu 10:00"
    );
    assert_eq!(
        c.counted_between(s, at("2026-10-07 23:59"), Clock::WorkingDays),
        Duration::ZERO
    );
}
