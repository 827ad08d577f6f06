//! Watching the content drop folders.
//!
//! Creators save drafts, scripts, subtitles, .docx and `*.post.json` into
//! drop folders; the daemon checks each file once it has stopped changing.
//!
//! ```text
//!  notify (inotify, or PollWatcher for network shares / when inotify fails)
//!     │ callback thread: blocking_send (backpressure; a full kernel queue
//!     ▼                  then overflows, which is reported as Rescan)
//!  Stabilizer task: stat each event's path, keep pending {size, mtime,
//!     │            deadline}, sleep until the earliest deadline
//!     ▼
//!  WatchEvent: Ready · Removed · Rescan · Error  ──► caller (digest, SQLite)
//! ```
//!
//! At start-up the caller runs [`walk`] (the catch-up walk) and compares
//! each file's size and mtime with its store; on [`WatchEvent::Rescan`] it
//! runs it again.

mod filter;
mod stabilize;
mod walk;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify::{RecursiveMode, Watcher as _};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use filter::Filter;
pub use walk::walk;

use filter::absolute;
use stabilize::{Raw, Stabilizer};

/// Editor lock and temporary files and hidden files or folders, which are
/// never content: Word's owner files (`~$a.docx`), LibreOffice locks,
/// vim swap files, generic temp and backup files, dot-files.
pub const DEFAULT_EXCLUDE: &[&str] = &["~$*", ".~lock.*#", "*.swp", "*.tmp", "*~", ".*"];

/// Poll interval when inotify cannot be used and none was configured.
pub const FALLBACK_POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Events queued between notify's thread and the stabilizer; when full,
/// notify's thread waits and the kernel queue absorbs the rest.
const RAW_CAPACITY: usize = 4096;

/// A watched folder with its globs, relative to `path` (see [`Filter`]).
/// An empty `include` takes every file; an empty `exclude` excludes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchRoot {
    pub path: PathBuf,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

impl WatchRoot {
    /// Every file except [`DEFAULT_EXCLUDE`].
    pub fn new(path: impl Into<PathBuf>) -> WatchRoot {
        WatchRoot {
            path: path.into(),
            include: Vec::new(),
            exclude: DEFAULT_EXCLUDE.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// A folder as configured: its globs, and the editor lock, temporary
    /// and hidden files always left out besides.
    pub fn configured(path: &Path, include: &[String], exclude: &[String]) -> WatchRoot {
        let mut root = WatchRoot::new(path);
        root.include = include.to_vec();
        root.exclude.extend(exclude.iter().cloned());
        root
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchOptions {
    /// How long size and mtime must stay unchanged before a file is ready
    /// (unless its writer closes it first).
    pub stable_for: Duration,
    /// `Some`: always poll at this interval (network shares, where inotify
    /// sees only local changes).
    pub poll: Option<Duration>,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            stable_for: Duration::from_secs(1),
            poll: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum WatchEvent {
    /// The file stopped changing (or its writer closed it). May come again
    /// for the same content; de-duplicate by digest.
    Ready(PathBuf),
    /// The path is gone. It may name a folder (deleted or moved away), so
    /// forget every stored path equal to or below it; it may also name a
    /// path that was never reported ready.
    Removed(PathBuf),
    /// Events were lost (kernel queue overflow): run the catch-up walk.
    Rescan,
    Error {
        path: Option<PathBuf>,
        message: String,
    },
}

/// A file found by the catch-up walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSeen {
    pub path: PathBuf,
    pub size: u64,
    /// Nanoseconds since the Unix epoch.
    pub mtime_ns: i128,
}

/// A running watch; stops when dropped.
pub struct Watcher {
    slot: Arc<Slot>,
    task: JoinHandle<()>,
    /// Answered once the set-up thread has added the watches.
    set_up: Option<tokio::sync::oneshot::Receiver<()>>,
    #[cfg(test)]
    raw_tx: mpsc::Sender<Raw>,
}

/// The notify watcher, swapped for a PollWatcher when inotify runs out of
/// watches while running.
struct Slot {
    backend: Mutex<Option<Backend>>,
    polling: AtomicBool,
    stopped: AtomicBool,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("polling", &self.is_polling())
            .finish_non_exhaustive()
    }
}

impl Watcher {
    /// Starts watching `roots` recursively; events go to `tx` (waiting when
    /// it is full). Must be called inside a tokio runtime. Returns at once:
    /// the watches (one inotify watch per folder) are added on a thread of
    /// their own, which takes seconds on a large tree — see
    /// [`Watcher::watching`]. Fails only on a bad glob; a root that cannot
    /// be watched is reported as an `Error` event and the others are watched.
    pub fn start(
        roots: Vec<WatchRoot>,
        opts: WatchOptions,
        tx: mpsc::Sender<WatchEvent>,
    ) -> Result<Watcher, String> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| "Watcher::start must be called inside a tokio runtime".to_string())?;
        let filter = Arc::new(Filter::new(&roots)?);
        let paths: Vec<PathBuf> = roots.iter().map(|r| absolute(&r.path)).collect();
        let (raw_tx, raw_rx) = mpsc::channel(RAW_CAPACITY);
        let slot = Arc::new(Slot {
            backend: Mutex::new(None),
            polling: AtomicBool::new(opts.poll.is_some()),
            stopped: AtomicBool::new(false),
        });
        let on_limit = {
            let (slot, paths, raw_tx) = (Arc::clone(&slot), paths.clone(), raw_tx.clone());
            Box::new(move || switch_to_polling(slot, paths, raw_tx))
        };
        let stabilizer = Stabilizer::new(filter, opts.stable_for, tx, on_limit);
        let task = runtime.spawn(stabilizer.run(raw_rx));
        // Not on the caller's thread: notify's inotify thread adds the
        // watches of one root after the other and delivers events between
        // them; those events wait for the caller to take them, so a caller
        // waiting here for the set-up would wait for ever (several roots,
        // busy writers). PollWatcher reports scan errors on the thread that
        // calls watch(), and blocking_send panics on a runtime thread.
        let (done, set_up) = tokio::sync::oneshot::channel();
        let setup = {
            let (slot, raw_tx) = (Arc::clone(&slot), raw_tx.clone());
            move || {
                let (backend, polling) = build_backend(&paths, opts.poll, &raw_tx);
                if let Ok(mut b) = slot.backend.lock() {
                    // Unless stopped meanwhile, or inotify already ran out
                    // of watches and the switch installed a PollWatcher.
                    if b.is_none() && !slot.stopped.load(Ordering::SeqCst) {
                        *b = Some(backend);
                        slot.polling.store(polling, Ordering::SeqCst);
                    }
                }
                let _ = done.send(());
            }
        };
        if let Err(e) = std::thread::Builder::new()
            .name("complyd-watch-setup".to_string())
            .spawn(setup)
        {
            task.abort();
            return Err(format!("cannot start the folder watcher: {e}"));
        }
        Ok(Watcher {
            slot,
            task,
            set_up: Some(set_up),
            #[cfg(test)]
            raw_tx,
        })
    }

    /// Waits until the watches are in place: a change after this is seen.
    /// Events come meanwhile (files saved during the set-up); the caller
    /// must keep taking them, or the set-up waits for it.
    pub async fn watching(&mut self) {
        if let Some(rx) = self.set_up.take()
            && rx.await.is_err()
        {
            tracing::error!("the folder watcher's set-up failed; the folders are not watched");
        }
    }

    /// Whether the folders are polled rather than watched with inotify.
    pub fn is_polling(&self) -> bool {
        self.slot.polling.load(Ordering::SeqCst)
    }

    /// Feeds the stabilizer as notify would.
    #[cfg(test)]
    async fn inject(&self, raw: Raw) {
        let _ = self.raw_tx.send(raw).await;
    }

    /// Stops watching; the same as dropping.
    pub fn stop(self) {}
}

impl Drop for Watcher {
    fn drop(&mut self) {
        // Abort first: dropping the task's receiver releases a notify thread
        // waiting in blocking_send, so it can see its shutdown message.
        self.task.abort();
        if let Ok(mut b) = self.slot.backend.lock() {
            self.slot.stopped.store(true, Ordering::SeqCst);
            b.take();
        }
    }
}

type Backend = Box<dyn notify::Watcher + Send>;

fn handler(raw_tx: &mpsc::Sender<Raw>) -> impl notify::EventHandler {
    let raw_tx = raw_tx.clone();
    move |res: notify::Result<notify::Event>| {
        // Err only when the watcher is being stopped.
        let _ = raw_tx.blocking_send(Raw::Notify(res));
    }
}

fn build_backend(
    roots: &[PathBuf],
    poll: Option<Duration>,
    raw_tx: &mpsc::Sender<Raw>,
) -> (Backend, bool) {
    if let Some(interval) = poll {
        return (poll_backend(roots, interval, raw_tx), true);
    }
    let reason = match notify::RecommendedWatcher::new(handler(raw_tx), notify::Config::default()) {
        Ok(mut w) => match watch_all(&mut w, roots, raw_tx) {
            Ok(()) => return (Box::new(w), false),
            Err(e) => e,
        },
        Err(e) => e,
    };
    tracing::warn!(
        error = %reason,
        interval = ?FALLBACK_POLL_INTERVAL,
        "cannot watch the drop folders with inotify; polling instead"
    );
    (poll_backend(roots, FALLBACK_POLL_INTERVAL, raw_tx), true)
}

/// Adds every root; `Err` only for the failures polling avoids (inotify
/// limits), anything else is reported for its root and skipped.
fn watch_all(
    w: &mut dyn notify::Watcher,
    roots: &[PathBuf],
    raw_tx: &mpsc::Sender<Raw>,
) -> Result<(), notify::Error> {
    for root in roots {
        match w.watch(root, RecursiveMode::Recursive) {
            Ok(()) => {}
            Err(e) if is_inotify_limit(&e) => return Err(e),
            Err(e) => report(raw_tx, root, format!("cannot watch: {e}")),
        }
    }
    Ok(())
}

fn poll_backend(roots: &[PathBuf], interval: Duration, raw_tx: &mpsc::Sender<Raw>) -> Backend {
    let config = notify::Config::default().with_poll_interval(interval);
    // PollWatcher::new cannot fail; watch() reports problems through the
    // handler, which turns them into Error events.
    let mut w = match notify::PollWatcher::new(handler(raw_tx), config) {
        Ok(w) => w,
        Err(e) => {
            report(raw_tx, Path::new("/"), format!("cannot start polling: {e}"));
            return Box::new(notify::NullWatcher);
        }
    };
    for root in roots {
        if let Err(e) = w.watch(root, RecursiveMode::Recursive) {
            report(raw_tx, root, format!("cannot poll: {e}"));
        }
    }
    Box::new(w)
}

/// Replaces inotify by polling, on its own thread: building a PollWatcher
/// walks every root, and its errors go through blocking_send.
fn switch_to_polling(slot: Arc<Slot>, roots: Vec<PathBuf>, raw_tx: mpsc::Sender<Raw>) {
    let spawned = std::thread::Builder::new()
        .name("complyd-watch-fallback".to_string())
        .spawn(move || {
            let poll = poll_backend(&roots, FALLBACK_POLL_INTERVAL, &raw_tx);
            if let Ok(mut b) = slot.backend.lock() {
                // Drops the inotify watcher, unless stopped meanwhile.
                if !slot.stopped.load(Ordering::SeqCst) {
                    *b = Some(poll);
                    slot.polling.store(true, Ordering::SeqCst);
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the switch to polling");
    }
}

fn report(raw_tx: &mpsc::Sender<Raw>, path: &Path, message: String) {
    let ev = WatchEvent::Error {
        path: Some(path.to_path_buf()),
        message,
    };
    let _ = raw_tx.blocking_send(Raw::Emit(ev));
}

/// The inotify limits: watches per user (ENOSPC, which notify maps to
/// MaxFilesWatch) and instances per user (EMFILE).
fn is_inotify_limit(e: &notify::Error) -> bool {
    const ENOSPC: i32 = 28;
    const EMFILE: i32 = 24;
    match &e.kind {
        notify::ErrorKind::MaxFilesWatch => true,
        notify::ErrorKind::Io(io) => matches!(io.raw_os_error(), Some(ENOSPC | EMFILE)),
        _ => false,
    }
}
