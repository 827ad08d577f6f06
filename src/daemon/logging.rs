//! The daemon's log output: the journal (with priorities and structured
//! fields) when systemd connected stderr to it, readable lines on stderr
//! otherwise.

use std::io::IsTerminal;
use std::sync::Once;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;

static INIT: Once = Once::new();

/// Installs the global tracing subscriber; later calls do nothing.
///
/// The filter is `RUST_LOG` when it is set and valid, else `verbosity`
/// (an `EnvFilter` directive such as `debug` or `complyd=debug,info`), else
/// `info`. Under systemd (`JOURNAL_STREAM` names stderr) events go to
/// journald as native entries (`PRIORITY` from the level, fields as
/// `F_<NAME>`, `SYSLOG_IDENTIFIER=complyd`); if journald cannot be reached
/// they go to stderr without timestamps (the journal adds its own).
/// Never panics.
pub fn init(verbosity: Option<&str>) {
    INIT.call_once(|| install(verbosity));
}

fn install(verbosity: Option<&str>) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(verbosity.unwrap_or("info")))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let journal_stream = std::env::var("JOURNAL_STREAM").ok();
    let under_journal = stderr_is_journal(journal_stream.as_deref(), stderr_dev_ino());

    let mut journald_error = None;
    if under_journal {
        match tracing_journald::layer() {
            Ok(layer) => {
                let layer = layer
                    .with_syslog_identifier("complyd".to_owned())
                    .with_priority_mappings(priorities());
                let subscriber = tracing_subscriber::registry().with(filter).with(layer);
                // Err only if another subscriber was installed first.
                let _ = tracing::subscriber::set_global_default(subscriber);
                return;
            }
            Err(e) => journald_error = Some(e),
        }
    }

    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_timer(LocalTime)
        .with_target(false)
        .with_ansi(!under_journal && std::io::stderr().is_terminal());
    let installed = if under_journal {
        let subscriber = tracing_subscriber::registry()
            .with(filter)
            .with(fmt.without_time());
        tracing::subscriber::set_global_default(subscriber).is_ok()
    } else {
        let subscriber = tracing_subscriber::registry().with(filter).with(fmt);
        tracing::subscriber::set_global_default(subscriber).is_ok()
    };
    if installed && let Some(e) = journald_error {
        tracing::warn!("journald unreachable ({e}); logging to stderr");
    }
}

/// The time zone log lines are stamped in: the calendar's, once the
/// configuration is read (the commands show times in it too), else the
/// system's.
static TIME_ZONE: std::sync::RwLock<Option<jiff::tz::TimeZone>> = std::sync::RwLock::new(None);

/// Stamps log lines in `tz` from now on (at start and on each reload).
pub fn set_time_zone(tz: &jiff::tz::TimeZone) {
    if let Ok(mut z) = TIME_ZONE.write() {
        *z = Some(tz.clone());
    }
}

/// Local time with its offset (`2026-03-02T10:30:00.123+08:00`): a log
/// line and `complyd status` name the same instant the same way, where
/// UTC stamps read eight hours off.
struct LocalTime;

impl tracing_subscriber::fmt::time::FormatTime for LocalTime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        let tz = TIME_ZONE
            .read()
            .ok()
            .and_then(|z| z.clone())
            .unwrap_or_else(jiff::tz::TimeZone::system);
        let now = jiff::Timestamp::now();
        let off = tz.to_offset(now).seconds();
        let (sign, off) = if off < 0 { ('-', -off) } else { ('+', off) };
        write!(
            w,
            "{}{sign}{:02}:{:02}",
            tz.to_datetime(now).strftime("%Y-%m-%dT%H:%M:%S%.3f"),
            off / 3600,
            off % 3600 / 60
        )
    }
}

/// journald priorities for tracing levels: INFO is informational (6), not
/// tracing-journald's default notice (5), so `journalctl -p notice` shows
/// only warnings and errors.
fn priorities() -> tracing_journald::PriorityMappings {
    use tracing_journald::Priority;
    tracing_journald::PriorityMappings {
        error: Priority::Error,
        warn: Priority::Warning,
        info: Priority::Informational,
        debug: Priority::Debug,
        trace: Priority::Debug,
    }
}

/// Device and inode of whatever fd 2 is, by `fstat` on a duplicate of it.
fn stderr_dev_ino() -> Option<(u64, u64)> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let fd = std::io::stderr().as_fd().try_clone_to_owned().ok()?;
    let meta = std::fs::File::from(fd).metadata().ok()?;
    Some((meta.dev(), meta.ino()))
}

/// Whether stderr is the journal stream systemd connected: `JOURNAL_STREAM`
/// is `<device>:<inode>` (decimal) of that stream, and it must still be fd 2
/// (a shell started from the unit, or a redirection, inherits the variable
/// but not the stream).
pub fn stderr_is_journal(journal_stream: Option<&str>, stderr_dev_ino: Option<(u64, u64)>) -> bool {
    let (Some(stream), Some(actual)) = (journal_stream, stderr_dev_ino) else {
        return false;
    };
    let Some((dev, ino)) = stream.trim().split_once(':') else {
        return false;
    };
    match (dev.parse::<u64>(), ino.parse::<u64>()) {
        (Ok(dev), Ok(ino)) => (dev, ino) == actual,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_are_stamped_in_the_calendars_zone_with_its_offset() {
        use tracing_subscriber::fmt::time::FormatTime;
        set_time_zone(&jiff::tz::TimeZone::fixed(jiff::tz::offset(8)));
        let mut s = String::new();
        LocalTime
            .format_time(&mut tracing_subscriber::fmt::format::Writer::new(&mut s))
            .unwrap();
        // 2026-03-02T10:30:00.123+08:00
        assert_eq!(s.len(), 29, "{s}");
        assert!(s.ends_with("+08:00") && s.as_bytes()[10] == b'T', "{s}");
        let t: jiff::Timestamp = s.parse().unwrap();
        assert!(jiff::Timestamp::now().duration_since(t).abs().as_secs() < 5);
    }

    #[test]
    fn journal_stream_must_name_stderr() {
        assert!(stderr_is_journal(Some("8:12345"), Some((8, 12345))));
        assert!(stderr_is_journal(Some(" 0:98765\n"), Some((0, 98765))));
        // Inherited variable, stderr redirected elsewhere.
        assert!(!stderr_is_journal(Some("8:12345"), Some((8, 12346))));
        assert!(!stderr_is_journal(Some("9:12345"), Some((8, 12345))));
        // Not under systemd, or stderr closed.
        assert!(!stderr_is_journal(None, Some((8, 12345))));
        assert!(!stderr_is_journal(Some("8:12345"), None));
        // Malformed.
        for bad in [
            "",
            "8",
            "8:",
            ":12345",
            "8:12345:1",
            "a:b",
            "-8:12345",
            "8;12345",
        ] {
            assert!(!stderr_is_journal(Some(bad), Some((8, 12345))), "{bad:?}");
        }
    }

    #[test]
    fn stderr_has_a_device_and_inode() {
        // Whatever the test harness connected it to, fstat works on it.
        assert!(stderr_dev_ino().is_some());
    }

    #[test]
    fn init_twice_is_harmless() {
        init(Some("warn"));
        init(Some("not a == valid filter"));
        init(None);
        tracing::debug!("filtered out");
    }
}
