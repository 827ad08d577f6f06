//! The configuration file (`complyd.yaml`). Today it holds the calendar;
//! the daemon's sections (watched folders, logs, state, mail) join it.
//!
//! ```yaml
//! calendar:
//!   time_zone: Asia/Shanghai
//!   working_hours: [09:00-12:00, 13:30-18:00]
//!   holidays: holidays.yaml        # relative to this file
//! ```
//!
//! Errors are reported like rule-file errors (`path:line:col: error[code]`),
//! all of them, and make the commands exit with 78.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use crate::calendar::{Calendar, CalendarSpec};
use crate::diag::{Code, Diagnostic, Pos};
use crate::rules::LoadError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    calendar: Option<CalendarSpec>,
}

/// The validated configuration.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub calendar: Calendar,
}

/// Reads and validates a configuration file.
pub fn load(path: &Path) -> Result<Config, LoadError> {
    let fail = |diagnostics: Vec<Diagnostic>, src: Option<String>| LoadError {
        diagnostics,
        sources: src
            .map(|s| HashMap::from([(path.to_path_buf(), s)]))
            .unwrap_or_default(),
    };
    let src = std::fs::read_to_string(path).map_err(|e| {
        let msg = format!("cannot read: {}", crate::rules::compile::io_reason(&e));
        fail(
            vec![Diagnostic::new(path, Pos::FILE, Code::Unreadable, msg)],
            None,
        )
    })?;
    let raw: RawConfig =
        crate::rules::yaml::parse(path, &src).map_err(|d| fail(vec![d], Some(src.clone())))?;
    let calendar = match raw.calendar {
        Some(spec) => spec.build(path).map_err(|d| fail(d, Some(src.clone())))?,
        None => Calendar::default(),
    };
    Ok(Config { calendar })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_calendar_section_and_reports_errors_at_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("ok.yaml");
        std::fs::write(
            &ok,
            "calendar:\n  working_hours: [09:00-12:00, 13:30-18:00]\n",
        )
        .unwrap();
        let cfg = load(&ok).unwrap();
        assert_eq!(cfg.calendar.working_hours().intervals().len(), 2);

        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, "calendar:\n  time_zone: Mars/Olympus\nmail: {}\n").unwrap();
        let err = load(&bad).unwrap_err();
        assert_eq!(err.diagnostics[0].code, Code::UnknownKey, "{err}");
        assert_eq!(err.diagnostics[0].pos.line, 3);
    }
}
