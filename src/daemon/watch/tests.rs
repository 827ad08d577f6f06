//! Real inotify (and one PollWatcher) on temp folders. Timing assertions
//! are one-sided with generous limits: "exactly one Ready within 5 s and
//! none in the next 600 ms", never an exact count after a fixed sleep.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};

use super::stabilize::{Raw, Stabilizer};
use super::*;

const LONG: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(600);

fn opts(stable_ms: u64) -> WatchOptions {
    WatchOptions {
        stable_for: Duration::from_millis(stable_ms),
        poll: None,
    }
}

async fn start(root: &Path, opts: WatchOptions) -> (Watcher, mpsc::Receiver<WatchEvent>) {
    let (tx, rx) = mpsc::channel(64);
    let mut w = Watcher::start(vec![WatchRoot::new(root)], opts, tx).unwrap();
    w.watching().await;
    (w, rx)
}

/// Events until `want` matches one, or panics after `within` listing them.
async fn until(
    rx: &mut mpsc::Receiver<WatchEvent>,
    within: Duration,
    want: impl Fn(&WatchEvent) -> bool,
) -> Vec<WatchEvent> {
    let end = Instant::now() + within;
    let mut seen = Vec::new();
    loop {
        match timeout(end.saturating_duration_since(Instant::now()), rx.recv()).await {
            Ok(Some(ev)) => {
                let done = want(&ev);
                seen.push(ev);
                if done {
                    return seen;
                }
            }
            Ok(None) => panic!("channel closed; seen {seen:?}"),
            Err(_) => panic!("timed out after {within:?}; seen {seen:?}"),
        }
    }
}

/// Everything that arrives during `dur`.
async fn drain(rx: &mut mpsc::Receiver<WatchEvent>, dur: Duration) -> Vec<WatchEvent> {
    let end = Instant::now() + dur;
    let mut seen = Vec::new();
    while let Ok(Some(ev)) = timeout(end.saturating_duration_since(Instant::now()), rx.recv()).await
    {
        seen.push(ev);
    }
    seen
}

fn ready(p: &Path) -> impl Fn(&WatchEvent) -> bool + '_ {
    move |ev| *ev == WatchEvent::Ready(p.to_path_buf())
}

fn count_ready(evs: &[WatchEvent], p: &Path) -> usize {
    evs.iter().filter(|e| ready(p)(e)).count()
}

fn abs(dir: &tempfile::TempDir) -> PathBuf {
    fs::canonicalize(dir.path()).unwrap()
}

async fn write_chunks(file: &mut fs::File, chunks: usize, pause: Duration) {
    for i in 0..chunks {
        writeln!(file, "第{i}段：本品不能代替药物").unwrap();
        file.flush().unwrap();
        tokio::time::sleep(pause).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_write_is_ready_once_after_it_settles() {
    let dir = tempfile::tempdir().unwrap();
    let root = abs(&dir);
    let (w, mut rx) = start(&root, opts(500)).await;
    assert!(!w.is_polling());
    let path = root.join("draft.txt");
    // Kept open, so only the stability timer can make it ready.
    let mut file = fs::File::create(&path).unwrap();
    write_chunks(&mut file, 6, Duration::from_millis(40)).await;
    let last_write = Instant::now();
    let mut evs = until(&mut rx, LONG, ready(&path)).await;
    assert!(
        last_write.elapsed() >= Duration::from_millis(450),
        "ready too early"
    );
    evs.extend(drain(&mut rx, QUIET).await);
    assert_eq!(count_ready(&evs, &path), 1, "{evs:?}");
    drop(file);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_write_is_ready_before_stable_for() {
    let dir = tempfile::tempdir().unwrap();
    let root = abs(&dir);
    let (_w, mut rx) = start(&root, opts(5000)).await;
    let path = root.join("a.post.json");
    let t0 = Instant::now();
    fs::write(&path, r#"{"title":"根治失眠"}"#).unwrap();
    until(&mut rx, LONG, ready(&path)).await;
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_after_a_close_write_end_in_a_final_ready() {
    let dir = tempfile::tempdir().unwrap();
    let root = abs(&dir);
    let (_w, mut rx) = start(&root, opts(300)).await;
    let path = root.join("script.md");
    let mut a = fs::File::create(&path).unwrap();
    write_chunks(&mut a, 2, Duration::from_millis(20)).await;
    // Another writer opens and closes: CLOSE_WRITE while `a` still writes.
    drop(fs::OpenOptions::new().append(true).open(&path).unwrap());
    until(&mut rx, LONG, ready(&path)).await;
    write_chunks(&mut a, 3, Duration::from_millis(20)).await;
    let last_write = Instant::now();
    until(&mut rx, LONG, ready(&path)).await;
    assert!(last_write.elapsed() >= Duration::from_millis(250));
    drop(a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_and_folders_moved_in_are_ready() {
    let outside = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = abs(&dir);
    let src = abs(&outside);
    fs::write(
        src.join("moved.srt"),
        "1\n00:00:01,000 --> 00:00:02,000\n第一\n",
    )
    .unwrap();
    fs::create_dir_all(src.join("batch/sub")).unwrap();
    fs::write(src.join("batch/one.txt"), "一").unwrap();
    fs::write(src.join("batch/sub/two.txt"), "二").unwrap();
    let (_w, mut rx) = start(&root, opts(200)).await;

    fs::rename(src.join("moved.srt"), root.join("moved.srt")).unwrap();
    until(&mut rx, LONG, ready(&root.join("moved.srt"))).await;

    fs::rename(src.join("batch"), root.join("batch")).unwrap();
    let mut evs = Vec::new();
    for f in ["batch/one.txt", "batch/sub/two.txt"] {
        let p = root.join(f);
        if count_ready(&evs, &p) == 0 {
            evs.extend(until(&mut rx, LONG, ready(&p)).await);
        }
    }
    // The moved-in folder is watched too.
    let later = root.join("batch/sub/three.txt");
    fs::write(&later, "三").unwrap();
    until(&mut rx, LONG, ready(&later)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_subfolders_are_watched() {
    let dir = tempfile::tempdir().unwrap();
    let root = abs(&dir);
    let (_w, mut rx) = start(&root, opts(200)).await;
    // Written at once, likely before notify has added the new watches.
    fs::create_dir_all(root.join("a/b")).unwrap();
    let first = root.join("a/b/first.txt");
    fs::write(&first, "包治百病").unwrap();
    until(&mut rx, LONG, ready(&first)).await;
    let second = root.join("a/b/second.vtt");
    fs::write(&second, "WEBVTT\n").unwrap();
    until(&mut rx, LONG, ready(&second)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn excluded_files_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let root = abs(&dir);
    let (_w, mut rx) = start(&root, opts(200)).await;
    fs::write(root.join("~$a.docx"), "owner").unwrap();
    fs::write(root.join(".~lock.a.docx#"), "lock").unwrap();
    fs::write(root.join("a.docx.tmp"), "temp").unwrap();
    let good = root.join("a.docx");
    fs::write(&good, "doc").unwrap();
    let mut evs = until(&mut rx, LONG, ready(&good)).await;
    evs.extend(drain(&mut rx, QUIET).await);
    fs::remove_file(root.join("~$a.docx")).unwrap();
    evs.extend(drain(&mut rx, QUIET).await);
    assert_eq!(evs, vec![WatchEvent::Ready(good)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let root = abs(&dir);
    let (_w, mut rx) = start(&root, opts(200)).await;
    let path = root.join("gone.txt");
    fs::write(&path, "x").unwrap();
    until(&mut rx, LONG, ready(&path)).await;
    fs::remove_file(&path).unwrap();
    until(&mut rx, LONG, |e| *e == WatchEvent::Removed(path.clone())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_before_ready_is_only_removed() {
    let dir = tempfile::tempdir().unwrap();
    let root = abs(&dir);
    let (_w, mut rx) = start(&root, opts(400)).await;
    let path = root.join("brief.txt");
    let mut f = fs::File::create(&path).unwrap();
    write_chunks(&mut f, 1, Duration::ZERO).await;
    fs::remove_file(&path).unwrap();
    drop(f);
    let mut evs = until(&mut rx, LONG, |e| *e == WatchEvent::Removed(path.clone())).await;
    evs.extend(drain(&mut rx, Duration::from_millis(800)).await);
    assert!(
        evs.iter()
            .all(|e| matches!(e, WatchEvent::Removed(p) if *p == path)),
        "{evs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_sees_writes_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let root = abs(&dir);
    let o = WatchOptions {
        stable_for: Duration::from_millis(500),
        poll: Some(Duration::from_millis(100)),
    };
    let (w, mut rx) = start(&root, o).await;
    assert!(w.is_polling());
    let path = root.join("share.txt");
    let mut f = fs::File::create(&path).unwrap();
    write_chunks(&mut f, 4, Duration::from_millis(40)).await;
    drop(f);
    let mut evs = until(&mut rx, LONG, ready(&path)).await;
    evs.extend(drain(&mut rx, QUIET).await);
    assert_eq!(count_ready(&evs, &path), 1, "{evs:?}");
    fs::remove_file(&path).unwrap();
    until(&mut rx, LONG, |e| *e == WatchEvent::Removed(path.clone())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overflow_asks_for_a_rescan() {
    let dir = tempfile::tempdir().unwrap();
    let filter = Arc::new(Filter::new(&[WatchRoot::new(dir.path())]).unwrap());
    let (tx, mut rx) = mpsc::channel(8);
    let (raw_tx, raw_rx) = mpsc::channel(8);
    let stabilizer = Stabilizer::new(filter, Duration::from_millis(100), tx, Box::new(|| {}));
    tokio::spawn(stabilizer.run(raw_rx));
    let overflow =
        notify::Event::new(notify::EventKind::Other).set_flag(notify::event::Flag::Rescan);
    raw_tx.send(Raw::Notify(Ok(overflow))).await.unwrap();
    let err = notify::Error::generic("boom").add_path(dir.path().join("x"));
    raw_tx.send(Raw::Notify(Err(err))).await.unwrap();
    until(&mut rx, LONG, |e| *e == WatchEvent::Rescan).await;
    until(&mut rx, LONG, |e| {
        matches!(e, WatchEvent::Error { path: Some(_), .. })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_out_of_inotify_watches_switches_to_polling() {
    let dir = tempfile::tempdir().unwrap();
    let root = abs(&dir);
    let (w, mut rx) = start(&root, opts(200)).await;
    assert!(!w.is_polling());
    let limit = || Raw::Notify(Err(notify::Error::new(notify::ErrorKind::MaxFilesWatch)));
    w.inject(limit()).await;
    w.inject(limit()).await;
    let mut evs = until(&mut rx, LONG, |e| *e == WatchEvent::Rescan).await;
    let end = Instant::now() + LONG;
    while !w.is_polling() && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(w.is_polling());
    // inotify is gone: only the poll (every 2 s) can see this file.
    let path = root.join("after.txt");
    fs::write(&path, "x").unwrap();
    evs.extend(until(&mut rx, Duration::from_secs(10), ready(&path)).await);
    let errors = evs
        .iter()
        .filter(|e| matches!(e, WatchEvent::Error { message, .. } if message.contains("polling")))
        .count();
    assert_eq!(errors, 1, "{evs:?}");
}

#[test]
fn inotify_limits_trigger_the_fallback() {
    assert!(is_inotify_limit(&notify::Error::new(
        notify::ErrorKind::MaxFilesWatch
    )));
    assert!(is_inotify_limit(&notify::Error::io(
        std::io::Error::from_raw_os_error(24)
    )));
    assert!(!is_inotify_limit(&notify::Error::path_not_found()));
}

#[test]
fn walk_reports_bad_entries_and_yields_the_rest() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
    let dir = tempfile::tempdir().unwrap();
    let root = abs(&dir);
    fs::create_dir_all(root.join("a/b")).unwrap();
    fs::write(root.join("top.txt"), "一二").unwrap();
    fs::write(root.join("a/b/deep.srt"), "三").unwrap();
    fs::write(root.join("~$x.docx"), "owner").unwrap();
    fs::create_dir(root.join(".git")).unwrap();
    fs::write(root.join(".git/HEAD"), "ref").unwrap();
    symlink(&root, root.join("a/loop")).unwrap();
    symlink(root.join("nowhere"), root.join("dangling.txt")).unwrap();
    let fifo = root.join("pipe.txt");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo");
    let _sock = std::os::unix::net::UnixListener::bind(root.join("sock")).unwrap();
    let locked = root.join("locked");
    fs::create_dir(&locked).unwrap();
    fs::write(locked.join("secret.txt"), "x").unwrap();
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
    // Root reads mode-000 folders anyway; /proc/self belongs to the euid.
    let as_root = fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);

    let roots = vec![WatchRoot::new(&root)];
    let filter = Filter::new(&roots).unwrap();
    let mut files = Vec::new();
    let mut errors = Vec::new();
    walk(&roots, &filter, &mut |r| match r {
        Ok(seen) => files.push(seen),
        Err(WatchEvent::Error { path, message }) => errors.push((path.unwrap(), message)),
        Err(other) => panic!("{other:?}"),
    });
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).unwrap();

    let mut names: Vec<_> = files
        .iter()
        .map(|f| f.path.strip_prefix(&root).unwrap().to_path_buf())
        .collect();
    names.sort();
    let mut expected = vec![PathBuf::from("a/b/deep.srt"), PathBuf::from("top.txt")];
    if as_root {
        expected.push(PathBuf::from("locked/secret.txt"));
    }
    expected.sort();
    assert_eq!(names, expected);
    let top = files.iter().find(|f| f.path.ends_with("top.txt")).unwrap();
    assert_eq!(top.size, "一二".len() as u64);
    assert!(top.mtime_ns > 1_600_000_000 * 1_000_000_000);

    let error_for = |name: &str| {
        errors
            .iter()
            .find(|(p, _)| *p == root.join(name))
            .map(|(_, m)| m.as_str())
            .unwrap_or_else(|| panic!("no error for {name}: {errors:?}"))
    };
    assert!(error_for("a/loop").contains("loop"));
    assert!(error_for("dangling.txt").contains("dangling"));
    assert!(error_for("pipe.txt").contains("FIFO"));
    assert!(error_for("sock").contains("socket"));
    if !as_root {
        assert!(error_for("locked").contains("cannot read"));
    }
    let expected_errors = if as_root { 4 } else { 5 };
    assert_eq!(errors.len(), expected_errors, "{errors:?}");
}

/// Eight large roots while writers keep saving files: the watches are
/// added while the events of those files are taken. (Set up on the
/// caller's thread, with nobody taking events until it returned, this
/// stalled for good: notify's thread delivers events between two roots and
/// waited for room in a full channel.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setting_up_large_busy_roots_does_not_stall() {
    use std::sync::atomic::{AtomicBool, Ordering};
    const FOLDERS: usize = 1500;
    let dirs: Vec<tempfile::TempDir> = (0..8).map(|_| tempfile::tempdir().unwrap()).collect();
    let roots: Vec<PathBuf> = dirs.iter().map(abs).collect();
    for r in &roots {
        for i in 0..FOLDERS {
            fs::create_dir(r.join(format!("d{i}"))).unwrap();
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = roots
        .iter()
        .map(|r| {
            let (r, stop) = (r.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                // At most 20 000 files each: the clean-up stays short.
                while !stop.load(Ordering::SeqCst) && n < 20_000 {
                    fs::write(r.join(format!("d{}/f{n}.txt", n % FOLDERS)), "x").unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let (tx, mut rx) = mpsc::channel(64);
    let started = Instant::now();
    let mut w = Watcher::start(roots.iter().map(WatchRoot::new).collect(), opts(200), tx).unwrap();
    // `start` returns before the set-up (12,000 folders while 8 writers
    // fill them: over a second here) is done. Asked of the set-up itself,
    // not of a clock: a loaded machine made a time limit fail.
    let pending = w.set_up.as_mut().is_some_and(|rx| {
        matches!(
            rx.try_recv(),
            Err(tokio::sync::oneshot::error::TryRecvError::Empty)
        )
    });
    assert!(pending, "start waited for the set-up");
    let mut during = 0;
    let set_up = timeout(Duration::from_secs(60), async {
        let watching = w.watching();
        tokio::pin!(watching);
        loop {
            tokio::select! {
                () = &mut watching => break,
                Some(_) = rx.recv() => during += 1,
            }
        }
    })
    .await;
    let took = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let written: usize = writers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(
        set_up.is_ok(),
        "the set-up stalled ({written} files written, {during} events)"
    );
    eprintln!("set up in {took:?}; {written} files written, {during} events meanwhile");
    // Watched: a file saved in the last root now is seen.
    let last = roots[7].join(format!("d{}/after.txt", FOLDERS - 1));
    fs::write(&last, "x").unwrap();
    // Behind the writers' events still queued: on a loaded machine (the
    // test suite runs in parallel on 2 cores) that takes a while.
    until(&mut rx, Duration::from_secs(90), ready(&last)).await;
}
