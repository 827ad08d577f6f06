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
