//! The details the temporal kinds write into a violation, in Chinese and in
//! English. Supervisors read them on a phone: Chinese counts with its
//! measure words (`5个工作日`, `90天`, `2个工作小时`) and puts no space
//! between Chinese and a number; English mail gets its own sentence rather
//! than a translation of the Chinese one word by word.

use std::time::Duration;

use crate::calendar::Clock;
use crate::event::{label_en, label_zh};

/// A detail in both languages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detail {
    pub zh: String,
    pub en: String,
}

/// A duration on a clock, as a deadline or a period is stated:
/// `5个工作日` / `5 working days`.
pub fn span(d: Duration, clock: Clock) -> Detail {
    let s = d.as_secs();
    let (days, hours, minutes) = (s / 86_400, s / 3600, s / 60);
    let whole_days = s.is_multiple_of(86_400);
    let whole_hours = s.is_multiple_of(3600);
    let (zh, en) = match clock {
        Clock::Wall if whole_days => (format!("{days}天"), plural(days, "day")),
        Clock::Wall if whole_hours => (format!("{hours}小时"), plural(hours, "hour")),
        Clock::Wall => (format!("{minutes}分钟"), plural(minutes, "minute")),
        // A working-hours day is 24 working hours, not a working day:
        // state it in hours so nobody reads it as one.
        Clock::WorkingHours if whole_hours => {
            (format!("{hours}个工作小时"), plural(hours, "working hour"))
        }
        Clock::WorkingHours => (
            format!("工作时间{minutes}分钟"),
            plural(minutes, "working minute"),
        ),
        Clock::WorkingDays if whole_days => {
            (format!("{days}个工作日"), plural(days, "working day"))
        }
        Clock::WorkingDays if whole_hours => (
            format!("工作日{hours}小时"),
            format!("{} of working days", plural(hours, "hour")),
        ),
        Clock::WorkingDays => (
            format!("工作日{minutes}分钟"),
            format!("{} of working days", plural(minutes, "minute")),
        ),
    };
    Detail { zh, en }
}

fn plural(n: u64, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// A deadline that passed: `回复应在1个工作小时内完成，截至2026-03-02
/// 10:30仍未完成`.
pub fn deadline(stop_kind: &str, within: &Detail, due: &str) -> Detail {
    DeadlineWords::new(stop_kind, within).at(due)
}

/// [`deadline`]'s words around the due time, written once per rule: every
/// violation of a deadline rule says the same but for its due time, and
/// formatting the rest each time was ~2,000 instructions a violation.
#[derive(Debug, Clone)]
pub struct DeadlineWords {
    zh: (String, &'static str),
    en: String,
}

impl DeadlineWords {
    pub fn new(stop_kind: &str, within: &Detail) -> DeadlineWords {
        DeadlineWords {
            zh: (
                format!("{}应在{}内完成，截至", label_zh(stop_kind), within.zh),
                "仍未完成",
            ),
            en: format!(
                "{} due within {}; not done by ",
                capitalized(label_en(stop_kind)),
                within.en
            ),
        }
    }

    pub fn at(&self, due: &str) -> Detail {
        let mut zh = String::with_capacity(self.zh.0.len() + due.len() + self.zh.1.len());
        zh.push_str(&self.zh.0);
        zh.push_str(due);
        zh.push_str(self.zh.1);
        let mut en = String::with_capacity(self.en.len() + due.len());
        en.push_str(&self.en);
        en.push_str(due);
        Detail { zh, en }
    }
}

/// A periodic event overdue. `since` is the last one's time, or when
/// watching started when `seen` is false (a roster member never seen).
pub fn stale(kind: &str, seen: bool, since: &str, period: &Detail) -> Detail {
    if seen {
        Detail {
            zh: format!("最近一次{}是在{since}，已超过{}", label_zh(kind), period.zh),
            en: format!(
                "Last {} at {since}, more than {} ago",
                label_en(kind),
                period.en
            ),
        }
    } else {
        Detail {
            zh: format!("自{since}起没有{}记录，已超过{}", label_zh(kind), period.zh),
            en: format!(
                "No {} since {since}, more than {}",
                label_en(kind),
                period.en
            ),
        }
    }
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: u64 = 3600;
    const D: u64 = 86_400;

    fn zh(s: u64, c: Clock) -> String {
        span(Duration::from_secs(s), c).zh
    }

    fn en(s: u64, c: Clock) -> String {
        span(Duration::from_secs(s), c).en
    }

    #[test]
    fn spans_use_chinese_measure_words_without_spaces() {
        assert_eq!(zh(5 * D, Clock::WorkingDays), "5个工作日");
        assert_eq!(zh(90 * D, Clock::Wall), "90天");
        assert_eq!(zh(2 * H, Clock::Wall), "2小时");
        assert_eq!(zh(30 * 60, Clock::Wall), "30分钟");
        assert_eq!(zh(2 * H, Clock::WorkingHours), "2个工作小时");
        assert_eq!(zh(D, Clock::WorkingHours), "24个工作小时");
        assert_eq!(zh(30 * 60, Clock::WorkingHours), "工作时间30分钟");
        assert_eq!(zh(12 * H, Clock::WorkingDays), "工作日12小时");
    }

    #[test]
    fn spans_in_english_count_singular_and_plural() {
        assert_eq!(en(D, Clock::WorkingDays), "1 working day");
        assert_eq!(en(5 * D, Clock::WorkingDays), "5 working days");
        assert_eq!(en(H, Clock::WorkingHours), "1 working hour");
        assert_eq!(en(90 * D, Clock::Wall), "90 days");
        assert_eq!(en(12 * H, Clock::WorkingDays), "12 hours of working days");
    }

    #[test]
    fn a_deadline_reads_as_one_sentence_in_each_language() {
        let within = span(Duration::from_secs(5 * D), Clock::WorkingDays);
        let d = deadline("appraisal.feedback_held", &within, "2026-03-09 18:00");
        assert_eq!(
            d.zh,
            "绩效反馈面谈应在5个工作日内完成，截至2026-03-09 18:00仍未完成"
        );
        assert_eq!(
            d.en,
            "Feedback interview due within 5 working days; not done by 2026-03-09 18:00"
        );
    }

    #[test]
    fn staleness_names_the_last_time_or_the_start_of_watching() {
        let period = span(Duration::from_secs(90 * D), Clock::Wall);
        let d = stale(
            "account.password_changed",
            true,
            "2026-01-02 10:00",
            &period,
        );
        assert_eq!(d.zh, "最近一次更换密码是在2026-01-02 10:00，已超过90天");
        assert_eq!(
            d.en,
            "Last password change at 2026-01-02 10:00, more than 90 days ago"
        );
        let d = stale(
            "account.password_changed",
            false,
            "2026-01-02 10:00",
            &period,
        );
        assert_eq!(d.zh, "自2026-01-02 10:00起没有更换密码记录，已超过90天");
        assert_eq!(
            d.en,
            "No password change since 2026-01-02 10:00, more than 90 days"
        );
    }
}
