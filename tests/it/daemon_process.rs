//! The daemon as a process: the real binary (`complyd run --config …`),
//! killed with SIGKILL in the middle of its work and restarted, fed bad
//! input, signalled with SIGHUP and SIGTERM (the deployment: site.rs).

use std::fs;
use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::site::*;

#[test]
fn sigkill_at_random_moments_loses_and_repeats_nothing() {
    const LINES: usize = 3000;
    const FILES: usize = 40;
    let test_start = Instant::now();
    let mut site = Site::new();
    if std::env::var_os("COMPLYD_TEST_KEEP").is_some() {
        eprintln!("keeping {}", site.dir.path().display());
        site.dir.disable_cleanup(true);
    }
    let mut rng = Rng::from_env();
    let (log_text, bad_lines) = activity_log(LINES);
    let [writer, dropper] = feed(&site, &mut rng, &log_text, FILES);

    // Kill the daemon at random moments while both write.
    let kills = rng.range(6, 11);
    let mut kill_times = Vec::new();
    for i in 0..kills {
        let spawned = Instant::now();
        let mut d = site.spawn();
        // Killed while it works, not while it loads its rules (which takes
        // a few hundred milliseconds in a debug build).
        site.wait_log(" INFO started", i as usize + 1, Duration::from_secs(20));
        let up = spawned.elapsed();
        let wait = Duration::from_millis(rng.range(100, 900));
        std::thread::sleep(wait);
        assert!(d.running(), "the daemon exited by itself:\n{}", site.log());
        d.kill();
        kill_times.push((up + wait).as_millis());
    }
    writer.join().unwrap();
    dropper.join().unwrap();
    let killed_at = test_start.elapsed();

    // The last start runs until everything is in and quiet.
    let d = site.spawn();
    site.wait_log(" INFO started", kills as usize + 1, Duration::from_secs(40));
    let got = settle_and_compare(&site, d, LINES, bad_lines, FILES);

    let log = site.log();
    assert_eq!(
        log.matches(" INFO started").count(),
        kills as usize + 1,
        "{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
    eprintln!(
        "{kills} kills after {kill_times:?} ms; writing done at {killed_at:?}, then quiet after {:?}, \
         SIGTERM took {:?}; {} violations ({} retracted), {} mails; total {:?}",
        got.quiet_after,
        got.stop_took,
        got.violations,
        got.retractions,
        got.mails,
        test_start.elapsed()
    );
}

#[test]
fn bad_input_is_logged_and_reported_and_the_daemon_keeps_running() {
    let site = Site::new();
    let drop = site.path("drop");
    let mut d = site.spawn();
    let t = Duration::from_secs(30);
    site.wait_log(" INFO started", 1, t);

    // A file deleted right after it was written, before stable_for: the
    // watcher's close event makes it ready at once, so the core finds it
    // gone — or the watcher does, and reports its removal.
    let gone = drop.join("gone.txt");
    fs::write(&gone, "根治失眠\n").unwrap();
    fs::remove_file(&gone).unwrap();
    let start = Instant::now();
    while !site.log().contains(&format!(
        "{}: deleted before it could be checked",
        gone.display()
    )) && !site.log().contains(&format!("{}: removed", gone.display()))
    {
        assert!(start.elapsed() < t, "no word of gone.txt:\n{}", site.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    still_works(&site, "after-gone.txt");
    assert_eq!(
        site.int("SELECT COUNT(*) FROM files WHERE path LIKE '%/gone.txt'"),
        0
    );

    // A symlink loop inside the drop folder: reported, not followed.
    std::os::unix::fs::symlink(&drop, drop.join("loop")).unwrap();
    site.wait_log("symlink loop", 1, t);
    still_works(&site, "after-loop.txt");

    // Unreadable input. As root, mode 000 does not stop a read, so: a FIFO
    // (opening it would block the daemon for ever) and a dangling symlink
    // (its target deleted).
    let fifo = drop.join("pipe.txt");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    site.wait_log("not a regular file (a FIFO)", 1, t);
    let target = site.path("target.txt");
    fs::write(&target, "根治\n").unwrap();
    std::os::unix::fs::symlink(&target, drop.join("dangling.txt")).unwrap();
    fs::remove_file(&target).unwrap();
    still_works(&site, "after-unreadable.txt");

    // A 2 GB sparse file: reported not checked, over the size limit, found
    // from its size alone (it is never read: this takes no time).
    let big = drop.join("big.txt");
    let started = Instant::now();
    fs::File::create(&big).unwrap().set_len(2 << 30).unwrap();
    site.wait_for(
        "SELECT COUNT(*) FROM violations WHERE rule = 'not-checked' AND subject LIKE '%/big.txt' \
         AND data LIKE '%over the 20971520-byte limit%'",
        t,
        |n| n == 1,
    );
    let big_took = started.elapsed();
    assert!(big_took < Duration::from_secs(10), "{big_took:?}");

    // A log line of 10 MB between two good ones: an error naming file:line,
    // the others evaluated.
    let log = site.path("logs/activity.jsonl");
    let mut f = fs::File::create(&log).unwrap();
    writeln!(f, "{}", received("before-huge", 3)).unwrap();
    let huge = format!("{{\"text\":\"{}\"}}", "长".repeat((10 << 20) / 3));
    writeln!(f, "{huge}").unwrap();
    writeln!(f, "{}", received("after-huge", 3)).unwrap();
    std::mem::drop(f);
    site.wait_for("SELECT COALESCE(SUM(lines), 0) FROM sources", t, |n| n == 3);
    let c = site.db().unwrap();
    let err: String = c
        .query_row(
            "SELECT message FROM errors WHERE source LIKE '%activity.jsonl'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        err.starts_with(&format!("{}:2: ", log.display())) && err.contains("bytes, over the"),
        "{err}"
    );
    site.wait_for(
        "SELECT COUNT(*) FROM violations WHERE rule = 'reply-general-1h' \
         AND subject IN ('before-huge', 'after-huge')",
        t,
        |n| n == 2,
    );
    assert!(site.log().contains(&format!("{}:2: ", log.display())));

    // The state cannot be written: a second connection holds the write
    // lock for 8 s (longer than the daemon's 5 s busy timeout). The input
    // waits, the daemon says why and retries, and nothing is lost.
    let before = site.log().matches("cannot write the state").count();
    let locker = Connection::open(site.db_path()).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    fs::write(drop.join("while-locked.txt"), "保证100%有效\n").unwrap();
    site.wait_log("cannot write the state", before + 1, t);
    std::thread::sleep(Duration::from_secs(3));
    locker.execute_batch("COMMIT").unwrap();
    std::mem::drop(locker);
    site.wait_for(
        "SELECT COUNT(*) FROM violations WHERE subject LIKE '%/while-locked.txt'",
        Duration::from_secs(40),
        |n| n >= 1,
    );
    let log_text = site.log();
    assert!(log_text.contains("retrying in"), "{log_text}");

    assert!(d.running(), "the daemon stopped:\n{log_text}");
    still_works(&site, "at-the-end.txt");
    d.terminate(Duration::from_secs(5));
}

#[test]
fn sighup_reloads_a_bad_reload_keeps_running_and_sigterm_stops_a_busy_daemon() {
    let site = Site::new();
    let t = Duration::from_secs(30);
    // A large log to be busy with: 200 000 lines (about 40 MB).
    let line = received("busy", 3);
    let mut f =
        std::io::BufWriter::new(fs::File::create(site.path("logs/activity.jsonl")).unwrap());
    for _ in 0..200_000 {
        writeln!(f, "{line}").unwrap();
    }
    drop(f);
    let mut d = site.spawn();
    site.wait_log(" INFO started", 1, t);

    // SIGHUP reloads.
    d.signal("HUP");
    site.wait_log("reloaded", 1, t);

    // A broken rule file: the reload fails, the daemon keeps the old rules,
    // logs the diagnostics and records a config-error violation.
    fs::write(
        site.path("rules/broken.yaml"),
        "rules:\n  - id: x\n    severity: fatal\n",
    )
    .unwrap();
    d.signal("HUP");
    site.wait_log("reload failed", 1, t);
    assert!(
        site.log().contains("broken.yaml:2:5: error[missing-key]"),
        "{}",
        site.log()
    );
    site.wait_for(
        "SELECT COUNT(*) FROM violations WHERE rule = 'config-error'",
        t,
        |n| n >= 1,
    );
    assert!(d.running());
    still_works(&site, "after-bad-reload.txt");

    // SIGTERM while a large log is being read: exit 0 within 5 s.
    site.wait_for("SELECT COALESCE(SUM(lines), 0) FROM sources", t, |n| {
        n == 200_000
    });
    let mut f = std::io::BufWriter::new(
        fs::OpenOptions::new()
            .append(true)
            .open(site.path("logs/activity.jsonl"))
            .unwrap(),
    );
    for _ in 0..300_000 {
        writeln!(f, "{line}").unwrap();
    }
    drop(f);
    let read = site.wait_for("SELECT COALESCE(SUM(lines), 0) FROM sources", t, |n| {
        n > 200_000
    });
    let took = d.terminate(Duration::from_secs(5));
    let after = site.int("SELECT COALESCE(SUM(lines), 0) FROM sources");
    eprintln!("SIGTERM after {read} lines read took {took:?} (stopped at {after})");
    assert!(site.log().contains("stopping"));
    // What was left unread is read by the next start, each line once
    // (with the rules fixed: a start with broken rules exits with 78).
    fs::remove_file(site.path("rules/broken.yaml")).unwrap();
    let d = site.spawn();
    site.wait_for(
        "SELECT COALESCE(SUM(lines), 0) FROM sources",
        Duration::from_secs(60),
        |n| n >= 500_000,
    );
    d.terminate(Duration::from_secs(5));
    assert_eq!(
        site.int("SELECT COALESCE(SUM(lines), 0) FROM sources"),
        500_000
    );
}
