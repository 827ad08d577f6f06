//! The daemon's state on a file system that fills up: a tmpfs of its own,
//! filled while drafts and log lines keep arriving, then freed. The tests
//! run as root (the test machines and CI do); where the tmpfs cannot be
//! mounted the test fails saying so — it is never skipped.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::site::*;

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={size}"))
            .arg("complyd-test")
            .arg(dir.path())
            .output();
        let why = match out {
            Ok(o) if o.status.success() => return Tmpfs { dir },
            Ok(o) => format!(
                "{}: {}",
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) => e.to_string(),
        };
        panic!(
            "cannot mount a {size} tmpfs on {} for the full-disk test ({why}); \
             the tests must run as root, as they do on the test machines and in CI",
            dir.path().display()
        );
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the file system to the last page; returns the bytes written.
    fn fill(&self) -> u64 {
        let mut f = fs::File::create(self.path().join("filler")).unwrap();
        let chunk = vec![0u8; 64 << 10];
        let mut written = 0u64;
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => panic!("filling the tmpfs: {e}"),
            }
        }
        written
    }

    fn free(&self) {
        fs::remove_file(self.path().join("filler")).unwrap();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily: a daemon a failing test left behind may still use it.
        let _ = Command::new("umount").arg("-l").arg(self.path()).status();
    }
}

/// The state's file system is full while drafts and log lines keep coming:
/// commits fail with "database or disk is full", the daemon says so naming
/// the database, keeps running and retrying; once space is freed it resumes
/// by itself, and in the end every line was evaluated once and every
/// violation recorded once — as `replay` and `scan` find them — and
/// `complyd status` tells what happened.
#[test]
fn a_full_state_file_system_pauses_the_daemon_and_loses_and_repeats_nothing() {
    const LINES: usize = 3000;
    const FILES: usize = 40;
    let tmpfs = Tmpfs::mount("64m");
    let site = Site::with_state(Some(&tmpfs.path().join("state")));
    let mut rng = Rng::from_env();
    let (log_text, bad_lines) = activity_log(LINES);
    let t = Duration::from_secs(40);
    let mut d = site.spawn();
    site.wait_log(" INFO started", 1, t);

    // Full in the middle of the work: once the first lines are in.
    let [writer, dropper] = feed(&site, &mut rng, &log_text, FILES);
    site.wait_for("SELECT COALESCE(SUM(lines), 0) FROM sources", t, |n| n > 0);
    let filled = tmpfs.fill();
    let db = site.db_path();
    let full = format!(
        "cannot write the state: {}: database or disk is full; retrying in",
        db.display()
    );
    site.wait_log(&full, 2, t);
    writer.join().unwrap();
    dropper.join().unwrap();
    assert!(d.running(), "the daemon stopped:\n{}", site.log());
    // `complyd status` still reads the state.
    let status = || {
        let out = Command::new(BIN)
            .args(["status", "--config"])
            .arg(site.config())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "status: {}\n{text}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    status();
    let stuck = site.int("SELECT COALESCE(SUM(lines), 0) FROM sources");
    assert!(stuck < LINES as i64, "nothing was held up: {stuck} lines");

    tmpfs.free();
    let got = settle_and_compare(&site, d, LINES, bad_lines, FILES);
    let text = status();
    assert!(
        text.contains("state: the state could not be written from")
            && text.contains("database or disk is full"),
        "{text}"
    );
    let log = site.log();
    assert!(!log.contains("panicked"), "{log}");
    eprintln!(
        "filled with {filled} bytes; {} failed commit(s) logged; {stuck} of {LINES} lines in \
         while full; quiet {:?} after the space was freed; {} violations, {} mails",
        log.matches(&full).count(),
        got.quiet_after,
        got.violations,
        got.mails,
    );
}

/// SIGTERM while the state's file system is full: the daemon cannot commit
/// the input in hand, so it leaves it — and every later one — for the next
/// start, and exits 0 at once instead of retrying until systemd kills it.
/// The next start, with space again, evaluates everything exactly once.
#[test]
fn sigterm_while_the_state_file_system_is_full_exits_at_once_and_nothing_is_lost() {
    const LINES: usize = 3000;
    const FILES: usize = 40;
    let tmpfs = Tmpfs::mount("64m");
    let site = Site::with_state(Some(&tmpfs.path().join("state")));
    let mut rng = Rng::from_env();
    let (log_text, bad_lines) = activity_log(LINES);
    let t = Duration::from_secs(40);
    let d = site.spawn();
    site.wait_log(" INFO started", 1, t);
    let [writer, dropper] = feed(&site, &mut rng, &log_text, FILES);
    site.wait_for("SELECT COALESCE(SUM(lines), 0) FROM sources", t, |n| n > 0);
    tmpfs.fill();
    let full = format!(
        "cannot write the state: {}: database or disk is full; retrying in",
        site.db_path().display()
    );
    site.wait_log(&full, 2, t);
    writer.join().unwrap();
    dropper.join().unwrap();
    let took = d.terminate(Duration::from_secs(5));

    tmpfs.free();
    let d = site.spawn();
    site.wait_log(" INFO started", 2, t);
    let got = settle_and_compare(&site, d, LINES, bad_lines, FILES);
    let log = site.log();
    assert!(!log.contains("panicked"), "{log}");
    eprintln!(
        "SIGTERM while full took {took:?}; after the restart quiet in {:?}; {} violations",
        got.quiet_after, got.violations
    );
}
