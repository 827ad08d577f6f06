//! Statutory holidays and 调休 make-up working days: which dates are special,
//! which years the data covers, and warnings when a year is missing. The
//! file they come from is read in [`super::holiday_file`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use jiff::civil::{Date, Weekday};

pub use super::holiday_file::{BUILTIN_PATH, BUILTIN_SOURCE};

/// What the data says about one date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special<'a> {
    /// A day off of the named holiday (weekend days inside the break too).
    Off(&'a str),
    /// A 调休 make-up working day, owed to the named holiday.
    Work(&'a str),
}

/// The notice a year's data was copied from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YearSource {
    pub year: i16,
    pub notice: String,
    pub issued: Option<Date>,
    pub url: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mark {
    Off(usize),
    Work(usize),
}

/// The holiday calendar: special dates and the years they cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holidays {
    /// Where the data came from, for warnings that tell the operator what to edit.
    pub(super) origin: PathBuf,
    pub(super) days: BTreeMap<Date, Mark>,
    pub(super) names: Vec<String>,
    pub(super) years: BTreeMap<i16, YearSource>,
}

/// A year whose holidays are unknown, so its statutory holidays would count as
/// working days and its make-up Saturdays as weekends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoverageWarning {
    pub year: i16,
    /// True for the current year, false for the next one.
    pub current: bool,
    pub origin: PathBuf,
}

impl CoverageWarning {
    /// The warning without the file's name.
    pub fn message(&self) -> String {
        let which = if self.current {
            "the current"
        } else {
            "the next"
        };
        format!(
            "no holidays for {} ({which} year): until they are added, its statutory \
             holidays count as working days and its 调休 make-up days as weekends; add the \
             State Council's notice (国务院办公厅关于{}年部分节假日安排的通知) to the holidays \
             file that the configuration's `calendar.holidays` names (the built-in one cannot \
             be edited: copy data/holidays.yaml from complyd's source, extend it, name the copy)",
            self.year, self.year
        )
    }
}

impl fmt::Display for CoverageWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.origin.display(), self.message())
    }
}

impl Holidays {
    /// No holidays at all: plain Monday–Friday weeks.
    pub fn none() -> Holidays {
        Holidays {
            origin: PathBuf::from("(no holiday data)"),
            days: BTreeMap::new(),
            names: Vec::new(),
            years: BTreeMap::new(),
        }
    }

    /// What the data says about `date`, if anything.
    pub fn special(&self, date: Date) -> Option<Special<'_>> {
        self.days.get(&date).map(|m| match *m {
            Mark::Off(i) => Special::Off(&self.names[i]),
            Mark::Work(i) => Special::Work(&self.names[i]),
        })
    }

    /// A weekday that is not a holiday, or a make-up working day.
    pub fn is_working_day(&self, date: Date) -> bool {
        match self.days.get(&date) {
            Some(Mark::Off(_)) => false,
            Some(Mark::Work(_)) => true,
            None => !is_weekend(date),
        }
    }

    /// The years the data covers, with their notices.
    pub fn years(&self) -> impl Iterator<Item = &YearSource> {
        self.years.values()
    }

    pub fn covers(&self, year: i16) -> bool {
        self.years.contains_key(&year)
    }

    pub fn origin(&self) -> &Path {
        &self.origin
    }

    /// Warnings for the current and the next year of `today` when the data
    /// lacks them. The next year matters from the first day of the current
    /// one, because deadlines near New Year cross into it and because the
    /// notice is usually out by December.
    pub fn coverage_warnings(&self, today: Date) -> Vec<CoverageWarning> {
        let year = today.year();
        [(year, true), (year.saturating_add(1), false)]
            .into_iter()
            .filter(|&(y, _)| !self.covers(y))
            .map(|(year, current)| CoverageWarning {
                year,
                current,
                origin: self.origin.clone(),
            })
            .collect()
    }
}

pub(super) fn is_weekend(date: Date) -> bool {
    matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn builtin_covers_2025_and_2026_with_notices() {
        let h = Holidays::builtin();
        let years: Vec<i16> = h.years().map(|y| y.year).collect();
        assert_eq!(years, [2025, 2026]);
        for y in h.years() {
            assert!(
                y.notice.contains(&format!("{}年部分节假日安排", y.year)),
                "{y:?}"
            );
            assert!(y.url.starts_with("https://www.gov.cn/"), "{y:?}");
        }
        assert_eq!(h.special(date(2026, 2, 17)), Some(Special::Off("春节")));
        assert_eq!(h.special(date(2026, 2, 14)), Some(Special::Work("春节")));
        assert_eq!(h.special(date(2026, 3, 2)), None);
    }

    #[test]
    fn working_days() {
        let h = Holidays::builtin();
        assert!(h.is_working_day(date(2026, 3, 2))); // Monday
        assert!(!h.is_working_day(date(2026, 3, 7))); // Saturday
        assert!(!h.is_working_day(date(2026, 10, 1))); // 国庆节, Thursday
        assert!(h.is_working_day(date(2026, 10, 10))); // 调休 Saturday
        assert!(!h.is_working_day(date(2026, 4, 4))); // Saturday inside 清明节
        // Outside the data: plain weeks.
        assert!(h.is_working_day(date(2027, 1, 1)));
    }

    #[test]
    fn coverage_warnings_name_missing_years() {
        let h = Holidays::builtin();
        assert!(h.coverage_warnings(date(2025, 6, 1)).is_empty());
        let w = h.coverage_warnings(date(2026, 12, 1));
        assert_eq!(w.len(), 1);
        assert_eq!((w[0].year, w[0].current), (2027, false));
        assert!(w[0].to_string().contains("data/holidays.yaml"), "{}", w[0]);
        let w = h.coverage_warnings(date(2027, 1, 5));
        assert_eq!(w.iter().map(|w| w.year).collect::<Vec<_>>(), [2027, 2028]);
        assert!(w[0].current);
    }
}
