//! Working hours: the stretches of a working day during which the
//! working-hours clock runs.

use std::fmt;

/// Seconds in a civil day; also the only end written as `24:00`.
pub const DAY: u32 = 24 * 3600;

/// One stretch of the day, `[start, end)` in seconds after midnight, civil
/// time in the calendar's zone. `end` may be [`DAY`] (24:00).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Interval {
    pub start: u32,
    pub end: u32,
}

impl Interval {
    /// Parses `HH:MM-HH:MM` (seconds optional, en dash or `~` also accepted,
    /// since people copy these from Chinese documents).
    pub fn parse(s: &str) -> Result<Interval, String> {
        let (a, b) = s
            .split_once(['-', '–', '~', '～'])
            .ok_or_else(|| format!("`{s}` is not a time range; write it like 09:00-18:00"))?;
        let start = parse_time(a.trim()).ok_or_else(|| bad_time(a.trim()))?;
        let end = parse_time(b.trim()).ok_or_else(|| bad_time(b.trim()))?;
        if start == DAY {
            return Err(format!(
                "`{s}` starts at 24:00; a range must start before midnight"
            ));
        }
        if end <= start {
            return Err(format!(
                "`{s}` ends before it starts; ranges cannot cross midnight, split them at 24:00"
            ));
        }
        Ok(Interval { start, end })
    }

    pub fn len_secs(self) -> u32 {
        self.end - self.start
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", hhmm(self.start), hhmm(self.end))
    }
}

fn hhmm(secs: u32) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if s == 0 {
        format!("{h:02}:{m:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

fn bad_time(s: &str) -> String {
    format!("`{s}` is not a time of day; write HH:MM (00:00 to 24:00)")
}

/// `HH:MM` or `HH:MM:SS`, 24-hour clock; `24:00` is the end of the day.
fn parse_time(s: &str) -> Option<u32> {
    let mut parts = s.split(':');
    let mut field = |max: u32| -> Option<u32> {
        let p = parts.next()?;
        if p.len() != 2 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        p.parse().ok().filter(|&v| v <= max)
    };
    let h = field(24)?;
    let m = field(59)?;
    let sec = match parts.next() {
        None => 0,
        Some(p) if p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit()) => {
            p.parse::<u32>().ok().filter(|&v| v <= 59)?
        }
        Some(_) => return None,
    };
    if parts.next().is_some() {
        return None;
    }
    let t = h * 3600 + m * 60 + sec;
    (t <= DAY).then_some(t)
}

/// The intervals of a working day, sorted and disjoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkingHours {
    intervals: Vec<Interval>,
}

impl Default for WorkingHours {
    /// 09:00–18:00, the company's office hours.
    fn default() -> WorkingHours {
        WorkingHours {
            intervals: vec![Interval {
                start: 9 * 3600,
                end: 18 * 3600,
            }],
        }
    }
}

impl WorkingHours {
    /// Sorts the intervals and merges touching ones; rejects an empty list
    /// (the clock would never run, and a deadline would never fall due) and
    /// overlaps (almost certainly a typo, and they would count twice).
    pub fn new(mut intervals: Vec<Interval>) -> Result<WorkingHours, String> {
        if intervals.is_empty() {
            return Err("working hours must have at least one range, e.g. 09:00-18:00".into());
        }
        intervals.sort();
        let mut merged: Vec<Interval> = Vec::with_capacity(intervals.len());
        for iv in intervals {
            match merged.last_mut() {
                Some(last) if iv.start < last.end => {
                    return Err(format!("working hours {last} and {iv} overlap"));
                }
                Some(last) if iv.start == last.end => last.end = iv.end,
                _ => merged.push(iv),
            }
        }
        Ok(WorkingHours { intervals: merged })
    }

    /// Parses ranges like `["09:00-12:00", "13:30-18:00"]`.
    pub fn parse<S: AsRef<str>>(ranges: &[S]) -> Result<WorkingHours, String> {
        let intervals = ranges
            .iter()
            .map(|r| Interval::parse(r.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        WorkingHours::new(intervals)
    }

    /// The whole day, 00:00–24:00: the working-days clock.
    pub fn whole_day() -> WorkingHours {
        WorkingHours {
            intervals: vec![Interval { start: 0, end: DAY }],
        }
    }

    pub fn intervals(&self) -> &[Interval] {
        &self.intervals
    }

    /// Counted seconds in one working day.
    pub fn secs_per_day(&self) -> u32 {
        self.intervals.iter().map(|i| i.len_secs()).sum()
    }
}

impl fmt::Display for WorkingHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, iv) in self.intervals.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{iv}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ranges() {
        let h = WorkingHours::parse(&["13:30-18:00", "09:00 – 12:00"]).unwrap();
        assert_eq!(h.to_string(), "09:00-12:00, 13:30-18:00");
        assert_eq!(h.secs_per_day(), (3 * 60 + 4 * 60 + 30) * 60);
        let h = WorkingHours::parse(&["00:00-24:00"]).unwrap();
        assert_eq!(h, WorkingHours::whole_day());
        assert_eq!(
            WorkingHours::parse(&["08:00:30-09:15:05"])
                .unwrap()
                .to_string(),
            "08:00:30-09:15:05"
        );
        assert_eq!(WorkingHours::default().to_string(), "09:00-18:00");
    }

    #[test]
    fn merges_touching_ranges() {
        let h = WorkingHours::parse(&["12:00-18:00", "09:00-12:00"]).unwrap();
        assert_eq!(h.to_string(), "09:00-18:00");
    }

    #[test]
    fn rejects_bad_ranges() {
        for (bad, why) in [
            (&["9:00-18:00"][..], "not a time of day"),
            (&["09:00"], "not a time range"),
            (&["18:00-09:00"], "ends before it starts"),
            (&["09:00-09:00"], "ends before it starts"),
            (&["24:00-24:00"], "starts at 24:00"),
            (&["09:00-24:01"], "not a time of day"),
            (&["09:60-10:00"], "not a time of day"),
            (&["09:00-12:00", "11:00-13:00"], "overlap"),
            (&[], "at least one range"),
        ] {
            let e = WorkingHours::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }
}
