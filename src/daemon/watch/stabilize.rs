//! Turns notify's raw events into `Ready`/`Removed`/`Rescan`/`Error`.
//!
//! Every event is reconciled against the file system (a stat) rather than
//! trusted by kind: editors save by rename, delete-and-recreate or truncate,
//! and by the time an event is handled the path may already hold something
//! else. A changed file waits in `pending` with the size and mtime last seen
//! and a deadline; one timer sleeps until the earliest deadline.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fs::Metadata;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::EventKind;
use notify::event::{AccessKind, AccessMode, ModifyKind, RemoveKind, RenameMode};
use tokio::sync::mpsc::{Receiver, Sender};
use tokio::time::Instant;

use super::walk::{mtime_ns, not_regular, walk_tree};
use super::{Filter, WatchEvent};

/// What the notify callback thread and the start-up code hand to the task.
#[derive(Debug)]
pub(super) enum Raw {
    Notify(notify::Result<notify::Event>),
    /// Already translated, e.g. a root that could not be watched.
    Emit(WatchEvent),
}

/// The receiver is gone: nobody listens, the task ends.
struct Closed;

#[derive(Debug)]
struct Pending {
    size: u64,
    mtime_ns: i128,
    deadline: Instant,
}

/// What a folder scan found: size and mtime per file, `None` for a path
/// already reported as an error.
type Snapshot = HashMap<PathBuf, Option<(u64, i128)>>;

/// A folder that appeared, to be scanned once more (see `scan_folder`).
struct Recheck {
    at: Instant,
    dir: PathBuf,
    seen: Snapshot,
}

/// Why a path is being reconciled; decides how much work an event is worth.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cause {
    /// Created or moved in: a folder is walked, a special file reported.
    Appeared,
    /// Content or metadata changed.
    Changed,
    /// Deleted or moved away; `maybe_dir` when notify cannot tell.
    Gone { maybe_dir: bool },
}

pub(super) struct Stabilizer {
    filter: Arc<Filter>,
    stable_for: Duration,
    pending: HashMap<PathBuf, Pending>,
    /// Deadlines in order; each pending path appears exactly once.
    queue: BTreeSet<(Instant, PathBuf)>,
    /// In deadline order, as every recheck waits the same `stable_for`.
    rechecks: VecDeque<Recheck>,
    /// Switches to polling when inotify runs out of watches; taken on use.
    on_limit: Option<Box<dyn FnOnce() + Send + Sync>>,
    tx: Sender<WatchEvent>,
}

impl Stabilizer {
    pub(super) fn new(
        filter: Arc<Filter>,
        stable_for: Duration,
        tx: Sender<WatchEvent>,
        on_limit: Box<dyn FnOnce() + Send + Sync>,
    ) -> Self {
        Stabilizer {
            filter,
            stable_for,
            pending: HashMap::new(),
            queue: BTreeSet::new(),
            rechecks: VecDeque::new(),
            on_limit: Some(on_limit),
            tx,
        }
    }

    pub(super) async fn run(mut self, mut raw: Receiver<Raw>) {
        let _ = self.run_inner(&mut raw).await;
    }

    async fn run_inner(&mut self, raw: &mut Receiver<Raw>) -> Result<(), Closed> {
        loop {
            // Fire what is due before taking more input, so a steady stream
            // of events for some files cannot starve the others' timers.
            self.fire_due().await?;
            let next = match (self.queue.first(), self.rechecks.front()) {
                (Some((a, _)), Some(r)) => Some((*a).min(r.at)),
                (a, r) => a.map(|(a, _)| *a).or(r.map(|r| r.at)),
            };
            let far = Instant::now() + Duration::from_secs(3600);
            tokio::select! {
                msg = raw.recv() => match msg {
                    Some(Raw::Notify(Ok(event))) => self.on_event(event).await?,
                    Some(Raw::Notify(Err(err))) => self.on_error(err).await?,
                    Some(Raw::Emit(ev)) => self.send(ev).await?,
                    None => return Ok(()),
                },
                () = tokio::time::sleep_until(next.unwrap_or(far)), if next.is_some() => {}
            }
        }
    }

    async fn send(&self, ev: WatchEvent) -> Result<(), Closed> {
        self.tx.send(ev).await.map_err(|_| Closed)
    }

    async fn on_error(&mut self, err: notify::Error) -> Result<(), Closed> {
        let path = err.paths.first().cloned();
        if !matches!(err.kind, notify::ErrorKind::MaxFilesWatch) {
            let message = format!("watcher: {err}");
            return self.send(WatchEvent::Error { path, message }).await;
        }
        // Taken on first use: the inotify watcher being replaced may report
        // the limit again.
        let Some(switch) = self.on_limit.take() else {
            return Ok(());
        };
        switch();
        let message = format!(
            "inotify watch limit reached: polling every {} s from now on \
             (raise fs.inotify.max_user_watches)",
            super::FALLBACK_POLL_INTERVAL.as_secs()
        );
        self.send(WatchEvent::Error { path, message }).await?;
        // Changes between the limit and the first poll have no events.
        self.send(WatchEvent::Rescan).await
    }

    async fn on_event(&mut self, event: notify::Event) -> Result<(), Closed> {
        if event.need_rescan() {
            self.send(WatchEvent::Rescan).await?;
        }
        let cause = match event.kind {
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => {
                for path in event.paths {
                    self.closed_after_write(path).await?;
                }
                return Ok(());
            }
            // Opens and reads, including the caller's own reads of a ready
            // file, change nothing.
            EventKind::Access(_) => return Ok(()),
            // inotify also sends the From and To halves on their own.
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => return Ok(()),
            EventKind::Modify(ModifyKind::Name(RenameMode::From)) => {
                Cause::Gone { maybe_dir: true }
            }
            EventKind::Remove(RemoveKind::File) => Cause::Gone { maybe_dir: false },
            EventKind::Remove(_) => Cause::Gone { maybe_dir: true },
            EventKind::Create(_) | EventKind::Modify(ModifyKind::Name(_)) => Cause::Appeared,
            EventKind::Modify(_) => Cause::Changed,
            EventKind::Any | EventKind::Other => Cause::Appeared,
        };
        for path in event.paths {
            self.reconcile(path, cause).await?;
        }
        Ok(())
    }

    async fn reconcile(&mut self, path: PathBuf, cause: Cause) -> Result<(), Closed> {
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => {
                if self.filter.accepts(&path) {
                    self.touch(path, &meta);
                }
                Ok(())
            }
            Ok(meta) if meta.is_dir() => {
                // notify watches a new folder only after its creation event
                // is handled, so files written into it meanwhile are found
                // here; a folder moved in gets no events for its files at all.
                if cause == Cause::Appeared && !self.filter.excludes(&path) {
                    // A link back to a folder above it: walked from the link,
                    // the loop is not seen, and every file above would be
                    // checked a second time under the link's path.
                    if let Some(ancestor) = loops_back(&path) {
                        let message = format!(
                            "symlink loop: leads back to {} (not followed)",
                            ancestor.display()
                        );
                        return self.send(error(path, message)).await;
                    }
                    let seen = self.scan_folder(&path, None).await?;
                    self.rechecks.push_back(Recheck {
                        at: Instant::now() + self.stable_for,
                        dir: path,
                        seen,
                    });
                }
                Ok(())
            }
            Ok(meta) => {
                if cause == Cause::Appeared && self.filter.accepts(&path) {
                    let message = not_regular(meta.file_type());
                    self.send(error(path, message)).await?;
                }
                Ok(())
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => match cause {
                Cause::Gone { maybe_dir } => self.gone(path, maybe_dir).await,
                // A symbolic link to nothing, as the catch-up walk says.
                Cause::Appeared
                    if self.filter.accepts(&path)
                        && path.symlink_metadata().is_ok_and(|m| m.is_symlink()) =>
                {
                    self.send(error(path, "dangling symbolic link".into()))
                        .await
                }
                // Gone again before we looked: the removal has its own
                // event, which reports it.
                Cause::Appeared | Cause::Changed => Ok(()),
            },
            Err(err) => self.send(error(path, format!("cannot stat: {err}"))).await,
        }
    }

    /// Pends every file of a folder that appeared. notify adds watches
    /// for a new folder (and the folders already inside it) only after its
    /// creation event has been handed over, so a file written meanwhile has
    /// no event and this scan may run too early to see it: the folder is
    /// scanned a second time after `stable_for`, pending only what is new
    /// or changed since the first scan.
    async fn scan_folder(
        &mut self,
        dir: &Path,
        before: Option<Snapshot>,
    ) -> Result<Snapshot, Closed> {
        let mut found = Vec::new();
        walk_tree(dir, &self.filter, &mut |r| found.push(r));
        let mut seen = Snapshot::with_capacity(found.len());
        for r in found {
            match r {
                Ok(f) => {
                    let now = Some((f.size, f.mtime_ns));
                    if before.as_ref().is_none_or(|b| b.get(&f.path) != Some(&now)) {
                        let deadline = Instant::now() + self.stable_for;
                        self.set_pending(f.path.clone(), f.size, f.mtime_ns, deadline);
                    }
                    seen.insert(f.path, now);
                }
                Err(ev) => {
                    if let WatchEvent::Error { path: Some(p), .. } = &ev {
                        if before.as_ref().is_some_and(|b| b.get(p) == Some(&None)) {
                            continue;
                        }
                        seen.insert(p.clone(), None);
                    }
                    self.send(ev).await?;
                }
            }
        }
        Ok(seen)
    }

    async fn closed_after_write(&mut self, path: PathBuf) -> Result<(), Closed> {
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() && self.filter.accepts(&path) => {
                // Ready at once; later writes make it pending again and end
                // in another Ready, which the caller de-duplicates by digest.
                self.unpend(&path);
                self.send(WatchEvent::Ready(path)).await
            }
            // Deleted or renamed before we looked: that has its own event.
            Ok(_) => Ok(()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(err) => self.send(error(path, format!("cannot stat: {err}"))).await,
        }
    }

    async fn gone(&mut self, path: PathBuf, maybe_dir: bool) -> Result<(), Closed> {
        let mut was_pending = self.unpend(&path);
        if maybe_dir {
            let below: Vec<PathBuf> = self
                .pending
                .keys()
                .filter(|p| p.starts_with(&path))
                .cloned()
                .collect();
            for p in below {
                was_pending |= self.unpend(&p);
            }
        }
        let report = was_pending
            || self.filter.accepts(&path)
            || (maybe_dir && !self.filter.excludes(&path));
        if report {
            self.send(WatchEvent::Removed(path.clone())).await?;
        }
        if self.filter.is_root(&path) {
            let message = "watched folder was removed or moved away; restart once it is back";
            self.send(error(path, message.to_string())).await?;
        }
        Ok(())
    }

    fn touch(&mut self, path: PathBuf, meta: &Metadata) {
        let deadline = Instant::now() + self.stable_for;
        self.set_pending(path, meta.len(), mtime_ns(meta), deadline);
    }

    fn set_pending(&mut self, path: PathBuf, size: u64, mtime_ns: i128, deadline: Instant) {
        if let Some(old) = self.pending.get(&path) {
            self.queue.remove(&(old.deadline, path.clone()));
        }
        self.queue.insert((deadline, path.clone()));
        self.pending.insert(
            path,
            Pending {
                size,
                mtime_ns,
                deadline,
            },
        );
    }

    fn unpend(&mut self, path: &Path) -> bool {
        match self.pending.remove(path) {
            Some(old) => {
                self.queue.remove(&(old.deadline, path.to_path_buf()));
                true
            }
            None => false,
        }
    }

    async fn fire_due(&mut self) -> Result<(), Closed> {
        let now = Instant::now();
        while self.rechecks.front().is_some_and(|r| r.at <= now) {
            let Some(r) = self.rechecks.pop_front() else {
                break;
            };
            // Gone or replaced since: its removal has its own event.
            if std::fs::metadata(&r.dir).is_ok_and(|m| m.is_dir()) {
                self.scan_folder(&r.dir, Some(r.seen)).await?;
            }
        }
        while let Some((deadline, _)) = self.queue.first() {
            if *deadline > now {
                break;
            }
            let Some((_, path)) = self.queue.pop_first() else {
                break;
            };
            let Some(seen) = self.pending.remove(&path) else {
                continue;
            };
            match std::fs::metadata(&path) {
                Ok(meta) if meta.is_file() => {
                    if meta.len() == seen.size && mtime_ns(&meta) == seen.mtime_ns {
                        self.send(WatchEvent::Ready(path)).await?;
                    } else {
                        // Still changing without events (e.g. polling missed
                        // a write in the same second): wait a full period.
                        self.touch(path, &meta);
                    }
                }
                // Deleted (or replaced by a folder) before it settled: its
                // removal event reports it, nothing else to say.
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => {
                    self.send(error(path, format!("cannot stat: {err}")))
                        .await?
                }
            }
        }
        Ok(())
    }
}

/// The folder a symbolic link at `path` leads back to, when that folder
/// contains the link (as the catch-up walk's loop check finds it).
fn loops_back(path: &Path) -> Option<PathBuf> {
    if !path.symlink_metadata().ok()?.is_symlink() {
        return None;
    }
    let target = std::fs::canonicalize(path).ok()?;
    let parent = std::fs::canonicalize(path.parent()?).ok()?;
    parent.starts_with(&target).then_some(target)
}

fn error(path: PathBuf, message: String) -> WatchEvent {
    WatchEvent::Error {
        path: Some(path),
        message,
    }
}
