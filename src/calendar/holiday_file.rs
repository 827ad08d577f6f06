//! The holiday file (`data/holidays.yaml`, or an operator's file of the
//! same shape): parsing and checks.
//!
//! The file is organised as the State Council's notices are (one block per
//! year, one entry per numbered paragraph), so that an operator can copy each
//! December's notice into it line by line and a reviewer can check it against
//! the notice. Every problem is reported at its line, all of them at once.

use std::collections::BTreeMap;
use std::path::Path;

use jiff::civil::Date;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::holidays::{Holidays, Mark, YearSource, is_weekend};
use crate::diag::{Code, Diagnostic, Pos};
use crate::rules::yaml;

/// The shipped file; an operator's file replaces it as a whole.
pub const BUILTIN_SOURCE: &str = include_str!("../../data/holidays.yaml");
/// The name diagnostics use for the shipped file.
pub const BUILTIN_PATH: &str = "data/holidays.yaml";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    years: BTreeMap<i32, Spanned<RawYear>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawYear {
    notice: Spanned<String>,
    #[serde(default)]
    issued: Option<Spanned<String>>,
    url: Spanned<String>,
    #[serde(default)]
    holidays: Vec<Spanned<RawHoliday>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHoliday {
    name: Spanned<String>,
    #[serde(default)]
    off: Vec<Spanned<String>>,
    #[serde(default)]
    work: Vec<Spanned<String>>,
}

impl Holidays {
    /// The shipped data (2025–2026).
    pub fn builtin() -> Holidays {
        Holidays::parse(Path::new(BUILTIN_PATH), BUILTIN_SOURCE)
            .unwrap_or_else(|d| panic!("the shipped holiday data is invalid: {}", d[0].header()))
    }

    /// Reads an operator's file.
    pub fn load(path: &Path) -> Result<Holidays, Vec<Diagnostic>> {
        let src = std::fs::read_to_string(path).map_err(|e| {
            vec![Diagnostic::new(
                path,
                Pos::FILE,
                Code::Unreadable,
                format!("cannot read the holiday file: {e}"),
            )]
        })?;
        Holidays::parse(path, &src)
    }

    /// Parses and checks a holiday file, reporting every problem found.
    pub fn parse(path: &Path, src: &str) -> Result<Holidays, Vec<Diagnostic>> {
        let raw: RawFile = yaml::parse_all(path, src)?;
        let mut out = Holidays {
            origin: path.to_path_buf(),
            ..Holidays::none()
        };
        let mut diags = Vec::new();
        let mut err = |pos: Pos, msg: String| {
            diags.push(Diagnostic::new(path, pos, Code::InvalidValue, msg));
        };
        // Where each date was first listed, to point at both places of a duplicate.
        let mut first_seen: BTreeMap<Date, u32> = BTreeMap::new();
        for (&year, block) in &raw.years {
            let Some(year16) = i16::try_from(year)
                .ok()
                .filter(|y| (1949..=9998).contains(y))
            else {
                err(
                    pos(block),
                    format!("`{year}` is not a plausible year for holiday data"),
                );
                continue;
            };
            let block = &block.value;
            let issued = block
                .issued
                .as_ref()
                .and_then(|s| match parse_date(&s.value) {
                    Some(d) => Some(d),
                    None => {
                        err(pos(s), not_a_date(&s.value));
                        None
                    }
                });
            for holiday in &block.holidays {
                let h = &holiday.value;
                if h.off.is_empty() && h.work.is_empty() {
                    err(
                        pos(holiday),
                        format!(
                            "`{}` lists no dates: give `off:` and/or `work:`",
                            h.name.value
                        ),
                    );
                    continue;
                }
                out.names.push(h.name.value.clone());
                let name = out.names.len() - 1;
                let lists = [(&h.off, Mark::Off(name)), (&h.work, Mark::Work(name))];
                for (list, mark) in lists {
                    for day in list {
                        let Some(date) = parse_date(&day.value) else {
                            err(pos(day), not_a_date(&day.value));
                            continue;
                        };
                        if date.year() != year16 {
                            err(
                                pos(day),
                                format!("{date} is filed under {year}; move it to its own year"),
                            );
                            continue;
                        }
                        if matches!(mark, Mark::Work(_)) && !is_weekend(date) {
                            err(
                                pos(day),
                                format!(
                                    "{date} is a {:?}, a working day anyway; `work:` lists the \
                                     weekend days that become working days (调休上班)",
                                    date.weekday()
                                ),
                            );
                            continue;
                        }
                        if let Some(line) = first_seen.get(&date) {
                            err(
                                pos(day),
                                format!("{date} is listed twice (first at line {line})"),
                            );
                            continue;
                        }
                        first_seen.insert(date, pos(day).line);
                        out.days.insert(date, mark);
                    }
                }
            }
            out.years.insert(
                year16,
                YearSource {
                    year: year16,
                    notice: block.notice.value.clone(),
                    issued,
                    url: block.url.value.clone(),
                },
            );
        }
        if diags.is_empty() {
            Ok(out)
        } else {
            Err(diags)
        }
    }
}

fn pos<T>(s: &Spanned<T>) -> Pos {
    Pos::from(&s.referenced)
}

/// Only the strict `YYYY-MM-DD` form: other forms jiff accepts (with a time,
/// or a week date) would be a typo in this file.
fn parse_date(s: &str) -> Option<Date> {
    let b = s.as_bytes();
    let shape_ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape_ok {
        return None;
    }
    s.parse().ok()
}

fn not_a_date(s: &str) -> String {
    format!("`{s}` is not a date; write YYYY-MM-DD, e.g. 2026-02-14")
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn errors(src: &str) -> Vec<String> {
        Holidays::parse(Path::new("h.yaml"), src)
            .unwrap_err()
            .iter()
            .map(Diagnostic::header)
            .collect()
    }

    const HEAD: &str = "years:\n  2027:\n    notice: n\n    url: u\n    holidays:\n";

    #[test]
    fn bad_dates_point_at_their_line() {
        let src = format!(
            "{HEAD}      - name: 春节\n        off: [2027-02-30, 2028-01-01]\n        work: [2027-02-08]\n"
        );
        let e = errors(&src);
        assert_eq!(e.len(), 3, "{e:#?}");
        assert!(e[0].starts_with("h.yaml:7:15: error[invalid-value]: `2027-02-30` is not a date"));
        assert!(
            e[1].starts_with("h.yaml:7:27: error[invalid-value]: 2028-01-01 is filed under 2027")
        );
        assert!(
            e[2].contains("8:16") && e[2].contains("a working day anyway"),
            "{}",
            e[2]
        );
    }

    #[test]
    fn duplicates_and_empty_entries() {
        let src = format!(
            "{HEAD}      - name: a\n        off: [2027-02-06]\n      - name: b\n        work: \
             [2027-02-06]\n      - name: c\n"
        );
        let e = errors(&src);
        assert_eq!(e.len(), 2, "{e:#?}");
        assert!(e[0].contains("listed twice (first at line 7)"), "{}", e[0]);
        assert!(e[1].contains("`c` lists no dates"), "{}", e[1]);
    }

    #[test]
    fn shape_errors_come_from_the_yaml_layer() {
        let e = errors("years:\n  2027:\n    notice: n\n    url: u\n    holiday: []\n");
        assert!(e[0].starts_with("h.yaml:5:5: error[unknown-key]"), "{e:#?}");
        let e = errors("years:\n  2027:\n    url: u\n");
        assert!(
            e[0].contains("error[missing-key]") && e[0].contains("notice"),
            "{e:#?}"
        );
    }

    #[test]
    fn strict_dates() {
        assert_eq!(parse_date("2026-02-14"), Some(date(2026, 2, 14)));
        for bad in [
            "2026-2-14",
            "20260214",
            "2026-02-14T00:00",
            "2026-W07-6",
            "",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }
}
