//! The calendar's settings as an operator writes them:
//!
//! ```yaml
//! time_zone: Asia/Shanghai          # IANA name; default Asia/Shanghai
//! working_hours: [09:00-12:00, 13:30-18:00]   # default [09:00-18:00]
//! holidays: holidays.yaml           # default: the shipped data/holidays.yaml
//! ```
//!
//! [`CalendarSpec`] is meant to be embedded as a section of the daemon's
//! configuration file; it keeps source locations so that every mistake is
//! reported at its line.

use std::path::Path;

use jiff::tz::TimeZone;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{Calendar, DEFAULT_TIME_ZONE, Holidays, Interval, WorkingHours};
use crate::diag::{Code, Diagnostic, Pos};
use crate::rules::yaml;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarSpec {
    #[serde(default)]
    pub time_zone: Option<Spanned<String>>,
    #[serde(default)]
    pub working_hours: Option<Spanned<Vec<Spanned<String>>>>,
    /// A holiday file replacing the shipped one; relative to the file the
    /// spec was read from.
    #[serde(default)]
    pub holidays: Option<Spanned<String>>,
}

impl CalendarSpec {
    /// Parses a file that holds only calendar settings.
    pub fn parse(path: &Path, src: &str) -> Result<CalendarSpec, Vec<Diagnostic>> {
        yaml::parse_all(path, src)
    }

    /// Builds the calendar, reporting every problem found. `path` is the
    /// file the spec came from: diagnostics point into it, and a relative
    /// holiday file is found beside it.
    pub fn build(&self, path: &Path) -> Result<Calendar, Vec<Diagnostic>> {
        let mut diags = Vec::new();
        let err = |s: Pos, msg: String| Diagnostic::new(path, s, Code::InvalidValue, msg);

        let tz = match &self.time_zone {
            None => Some(TimeZone::get(DEFAULT_TIME_ZONE).expect("bundled tzdb")),
            Some(name) => match TimeZone::get(&name.value) {
                Ok(tz) => Some(tz),
                Err(_) => {
                    diags.push(err(
                        pos(name),
                        format!(
                            "unknown time zone `{}`; use an IANA name such as {DEFAULT_TIME_ZONE}",
                            name.value
                        ),
                    ));
                    None
                }
            },
        };

        let hours = match &self.working_hours {
            None => Some(WorkingHours::default()),
            Some(list) => {
                let mut intervals = Vec::new();
                for r in &list.value {
                    match Interval::parse(&r.value) {
                        Ok(iv) => intervals.push(iv),
                        Err(e) => diags.push(err(pos(r), e)),
                    }
                }
                if intervals.len() < list.value.len() {
                    None
                } else {
                    WorkingHours::new(intervals)
                        .map_err(|e| diags.push(err(pos(list), e)))
                        .ok()
                }
            }
        };

        let holidays = match &self.holidays {
            None => Some(Holidays::builtin()),
            Some(file) => {
                let base = path.parent().unwrap_or(Path::new(""));
                Holidays::load(&base.join(&file.value))
                    .map_err(|d| diags.extend(d))
                    .ok()
            }
        };

        match (tz, hours, holidays) {
            (Some(tz), Some(hours), Some(holidays)) if diags.is_empty() => {
                Ok(Calendar::new(tz, hours, holidays))
            }
            _ => Err(diags),
        }
    }
}

fn pos<T>(s: &Spanned<T>) -> Pos {
    Pos::from(&s.referenced)
}

/// Reads a calendar settings file and builds the calendar.
pub fn load(path: &Path) -> Result<Calendar, Vec<Diagnostic>> {
    let src = std::fs::read_to_string(path).map_err(|e| {
        vec![Diagnostic::new(
            path,
            Pos::FILE,
            Code::Unreadable,
            format!("cannot read the calendar settings: {e}"),
        )]
    })?;
    CalendarSpec::parse(path, &src)?.build(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn build(src: &str) -> Result<Calendar, Vec<String>> {
        let path = PathBuf::from("cal.yaml");
        CalendarSpec::parse(&path, src)
            .and_then(|s| s.build(&path))
            .map_err(|d| d.iter().map(Diagnostic::header).collect())
    }

    #[test]
    fn defaults() {
        let c = build("{}").unwrap();
        assert_eq!(c.time_zone().iana_name(), Some("Asia/Shanghai"));
        assert_eq!(c.working_hours().to_string(), "09:00-18:00");
        assert!(c.holidays().covers(2026));
    }

    #[test]
    fn custom_settings() {
        let c =
            build("time_zone: Asia/Urumqi\nworking_hours: [09:00-12:00, 13:30-18:00]\n").unwrap();
        assert_eq!(c.time_zone().iana_name(), Some("Asia/Urumqi"));
        assert_eq!(c.working_hours().intervals().len(), 2);
    }

    #[test]
    fn every_mistake_at_its_line() {
        let e = build(
            "time_zone: Asia/Shangai\nworking_hours:\n  - 09:00-12:00\n  - 13:30-1800\nholidays: nope.yaml\n",
        )
        .unwrap_err();
        assert_eq!(e.len(), 3, "{e:#?}");
        assert!(
            e[0].starts_with("cal.yaml:1:12: error[invalid-value]: unknown time zone"),
            "{}",
            e[0]
        );
        assert!(
            e[1].starts_with("cal.yaml:4:5: error[invalid-value]: `1800` is not a time"),
            "{}",
            e[1]
        );
        assert!(e[2].starts_with("nope.yaml: error[unreadable]"), "{}", e[2]);
        let e = build("working_hours: [09:00-12:00, 11:00-13:00]\n").unwrap_err();
        assert!(
            e[0].starts_with("cal.yaml:1:16: error[invalid-value]") && e[0].contains("overlap"),
            "{e:#?}"
        );
        let e = build("working_hour: []\n").unwrap_err();
        assert!(e[0].contains("error[unknown-key]"), "{e:#?}");
    }

    #[test]
    fn operator_holiday_file_replaces_the_shipped_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("h.yaml"),
            "years:\n  2027:\n    notice: 国务院办公厅关于2027年部分节假日安排的通知\n    url: u\n    \
             holidays:\n      - name: 元旦\n        off: [2027-01-01]\n",
        )
        .unwrap();
        let cfg = dir.path().join("cal.yaml");
        std::fs::write(&cfg, "holidays: h.yaml\n").unwrap();
        let c = load(&cfg).unwrap();
        assert!(c.holidays().covers(2027) && !c.holidays().covers(2026));
        assert!(!c.is_working_day(jiff::civil::date(2027, 1, 1)));
        assert!(c.is_working_day(jiff::civil::date(2026, 10, 1)));
    }
}
