//! Wiring: sources → core actor → store and mailer, with reload and
//! shutdown in the style of mini-redis (a shutdown signal every task
//! watches, and a drain before exit).
//!
//! ```text
//!  watcher (notify) ──► Ready/Removed/Rescan ─┐
//!  catch-up walk ─────► File ─────────────────┤
//!  tailer (LogSet) ───► Log{lines, cursor} ───┼─► core actor (own thread) ─► SQLite
//!  SIGHUP / rules dir ► Reload ───────────────┤      timer: next deadline      │ outbox
//!  mailer ◄──── OutboxDue / OutboxResult ─────┘                                ▼
//!                                                    .eml folder or SMTP server (smtp.rs)
//! ```

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::{Notify, mpsc, oneshot, watch};

use super::clock::Clock;
use super::core::{Core, FileOutcome, LogLine};
use super::mailer::{PAGE, deliver, group_digests, mailer};
use super::outbox::{MailerState, OutboxItem, OutboxUpdate};
use super::store::{Store, StoreError};
use super::{smtp, tail, watch as fswatch};
use crate::config::{Config, DaemonConfig};
use crate::engine::Env;
use crate::extract::Limits;
use crate::rules::RuleSet;

mod core_loop;
use core_loop::core_loop;

/// What the daemon runs with; `config_path` and `rules_dir` are re-read on
/// reload.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub config: Config,
    pub config_path: Option<PathBuf>,
    pub rules_dir: PathBuf,
    /// How long shutdown may take before in-flight work is abandoned
    /// (below systemd's TimeoutStopSec).
    pub shutdown_deadline: Duration,
    /// How often the tailer looks for new lines when nothing woke it.
    pub tail_interval: Duration,
    /// systemd's notify socket (watchdog pings come from the core actor).
    pub notifier: super::sdnotify::Notifier,
    /// `rules_dir` came from `--rules` (it then wins over the
    /// configuration's `rules:` on reload too).
    pub rules_from_cli: bool,
    /// How often an idle mailer looks at the outbox for rows queued by
    /// another process (`complyd outbox retry`).
    pub mail_poll: Duration,
}

impl RunOptions {
    pub fn new(config: Config, config_path: Option<PathBuf>, rules_dir: PathBuf) -> RunOptions {
        RunOptions {
            config,
            config_path,
            rules_dir,
            shutdown_deadline: Duration::from_secs(20),
            tail_interval: Duration::from_millis(200),
            notifier: super::sdnotify::Notifier::new(None, None),
            rules_from_cli: false,
            mail_poll: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Other(String),
}

/// Messages to the core actor.
#[derive(Debug)]
pub enum Msg {
    File(PathBuf),
    Removed(PathBuf),
    Log {
        key: String,
        lines: Vec<LogLine>,
        cursor: String,
        /// The batch reached the end of the log (not catching up).
        at_end: bool,
    },
    Reload(Option<oneshot::Sender<Result<(), String>>>),
    /// Due messages, and when the next retry falls due.
    OutboxDue(oneshot::Sender<(Vec<OutboxItem>, Option<Timestamp>)>),
    /// What delivery attempts did (one per message: all its rows).
    OutboxResults(Vec<OutboxUpdate>),
    /// The mailer paused the queue (`None`: delivering again).
    MailerState(Option<MailerState>),
    /// A problem the folder watcher or the catch-up walk found (a symlink
    /// loop, a FIFO, a dangling link, an unreadable folder): "path: why".
    Problem(String),
    /// The tailer's first pass reached the end of every log.
    LogsRead,
    /// Sent by tests to wait until everything before it was handled.
    Barrier(oneshot::Sender<()>),
}

/// A running daemon (in-process: tests and `complyd run`).
#[derive(Debug)]
pub struct Handle {
    pub tx: mpsc::Sender<Msg>,
    shutdown: watch::Sender<bool>,
    /// Stops the core actor once the sources and the mailer are done.
    core_stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    core: Option<std::thread::JoinHandle<Result<(), RunError>>>,
    pub polling: bool,
}

impl Handle {
    /// Asks every task to stop, waits for the drain.
    pub async fn shutdown(mut self) -> Result<(), RunError> {
        let _ = self.shutdown.send(true);
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
        let _ = self.core_stop.send(true);
        match self.core.take() {
            Some(core) => tokio::task::spawn_blocking(move || core.join())
                .await
                .map_err(|e| RunError::Other(e.to_string()))?
                .map_err(|_| RunError::Other("the core actor panicked".into()))?,
            None => Ok(()),
        }
    }

    /// Waits until every message sent before this call was handled.
    pub async fn barrier(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Barrier(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    pub async fn reload(&self) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Msg::Reload(Some(tx)))
            .await
            .map_err(|_| "the daemon has stopped".to_string())?;
        rx.await.map_err(|_| "the daemon has stopped".to_string())?
    }
}

impl Drop for Handle {
    /// A handle dropped without `shutdown` (a failing test) still stops the
    /// tasks, so the runtime can end.
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        let _ = self.core_stop.send(true);
    }
}

/// Loads rules and configuration as a reload does.
pub fn load_all(opts: &RunOptions) -> Result<(Config, RuleSet), String> {
    let config = match &opts.config_path {
        Some(p) => crate::config::load(p).map_err(|e| e.render_as(false, "the configuration"))?,
        None => Config::default(),
    };
    // The same precedence as at start: --rules, then the configuration's
    // `rules:`, then the lookup.
    let dir = match (&opts.rules_from_cli, &config.daemon.rules) {
        (true, _) | (false, None) => opts.rules_dir.clone(),
        (false, Some(r)) => r.clone(),
    };
    let rules = crate::rules::load(&dir).map_err(|e| e.render(false))?;
    config
        .check_with_rules(&rules)
        .map_err(|e| e.render_as(false, "the configuration"))?;
    Ok((config, rules))
}

fn limits(d: &DaemonConfig) -> Limits {
    Limits {
        max_file_bytes: d.max_file_bytes,
        ..Limits::default()
    }
}

/// The core on the configured database, and the logs' saved cursors.
/// Until the tailer has read every log once, deadlines wait for them.
fn open_core(
    opts: &RunOptions,
    rules: RuleSet,
    now: Timestamp,
) -> Result<(Core, HashMap<String, tail::Cursor>), RunError> {
    let d = &opts.config.daemon;
    let env = Env {
        calendar: opts.config.calendar.clone(),
        lists: rules.lists.clone(),
    };
    let store = Store::open(&d.database())?;
    let cursors = store
        .cursors()?
        .into_iter()
        .filter_map(|(k, json)| Some((k, serde_json::from_str(&json).ok()?)))
        .collect();
    let mut core = Core::new(Arc::new(rules), env, store, d.allowed_lateness, limits(d))?;
    core.set_routing(d.mail.routing.clone(), d.mail.to.clone());
    core.set_reminders(d.mail.remind_after);
    if !d.logs.is_empty() {
        core.logs_starting(now);
    }
    Ok((core, cursors))
}

/// Starts the daemon's tasks on the current tokio runtime.
pub async fn start(
    opts: RunOptions,
    rules: RuleSet,
    clock: Arc<dyn Clock>,
) -> Result<Handle, RunError> {
    let d = opts.config.daemon.clone();
    let (core, cursors) = open_core(&opts, rules, clock.now())?;
    let (tx, rx) = mpsc::channel::<Msg>(64);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (core_stop, core_stop_rx) = watch::channel(false);
    let mail_wake = Arc::new(Notify::new());
    // After a reload the watched folders are walked again: files checked
    // under the old rules are checked under the new ones.
    let rewalk = Arc::new(Notify::new());
    let mut tasks = Vec::new();

    // The core actor on its own thread: SQLite calls block, and a long
    // catch-up must not starve the sources' tasks.
    let core_thread = {
        let clock = clock.clone();
        let opts = opts.clone();
        let mail_wake = mail_wake.clone();
        let rewalk = rewalk.clone();
        let stops = Stops {
            core: core_stop_rx,
            shutdown: shutdown_rx.clone(),
        };
        std::thread::Builder::new()
            .name("complyd-core".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                    .map_err(|e| RunError::Other(e.to_string()))?;
                rt.block_on(core_loop(core, rx, stops, clock, opts, mail_wake, rewalk))
            })
            .map_err(|e| RunError::Other(e.to_string()))?
    };

    // Folder watching, then the catch-up walk (watch first, so nothing
    // saved during the walk is missed).
    let roots: Vec<fswatch::WatchRoot> = d
        .watch
        .iter()
        .map(|w| fswatch::WatchRoot::configured(&w.path, &w.include, &w.exclude))
        .collect();
    let mut polling = false;
    if !roots.is_empty() {
        let filter = fswatch::Filter::new(&roots).map_err(RunError::Config)?;
        let (wtx, mut wrx) = mpsc::channel(256);
        let watcher = fswatch::Watcher::start(
            roots.clone(),
            fswatch::WatchOptions {
                stable_for: d.stable_for,
                poll: d.poll,
            },
            wtx,
        )
        .map_err(RunError::Other)?;
        polling = watcher.is_polling();
        let tx2 = tx.clone();
        let mut stop = shutdown_rx.clone();
        let roots2 = roots.clone();
        let filter = Arc::new(filter);
        let rewalk = rewalk.clone();
        tasks.push(tokio::spawn(async move {
            let mut watcher = watcher;
            // The watches are added on a thread of their own (seconds on a
            // large tree); files saved meanwhile are handled as they come,
            // since the set-up waits for its events to be taken. The walk
            // starts once they are in place, so nothing saved during it is
            // missed; a Rescan until then is covered by that walk.
            {
                let watching = watcher.watching();
                tokio::pin!(watching);
                loop {
                    tokio::select! {
                        () = &mut watching => break,
                        _ = stop.changed() => return,
                        ev = wrx.recv() => {
                            let Some(ev) = ev else { return };
                            if let Some(msg) = watch_msg(ev)
                                && tx2.send(msg).await.is_err()
                            {
                                return;
                            }
                        }
                    }
                }
            }
            catch_up(&roots2, &filter, &tx2, &stop).await;
            loop {
                tokio::select! {
                    _ = stop.changed() => break,
                    _ = rewalk.notified() => {
                        catch_up(&roots2, &filter, &tx2, &stop).await;
                    }
                    ev = wrx.recv() => {
                        let Some(ev) = ev else { break };
                        let Some(msg) = watch_msg(ev) else {
                            tracing::warn!("watch events were lost (queue overflow); walking the folders again");
                            catch_up(&roots2, &filter, &tx2, &stop).await;
                            continue;
                        };
                        if tx2.send(msg).await.is_err() { break; }
                    }
                }
            }
        }));
    }

    // Log tailing on a blocking thread (plain reads), feeding the core
    // through the bounded channel: a busy core slows the reader down.
    if !d.logs.is_empty() {
        let tx2 = tx.clone();
        let stop = shutdown_rx.clone();
        let patterns = d.logs.clone();
        let interval = opts.tail_interval;
        tasks.push(tokio::task::spawn_blocking(move || {
            let mut set = tail::LogSet::new(patterns, cursors, tail::TailLimits::default());
            let mut first_pass = true;
            while !*stop.borrow() {
                let batches = set.read(1 << 20);
                if batches.is_empty() && first_pass {
                    first_pass = false;
                    if tx2.blocking_send(Msg::LogsRead).is_err() {
                        return;
                    }
                }
                if batches.is_empty() {
                    std::thread::sleep(interval);
                    continue;
                }
                for (key, batch) in batches {
                    for note in &batch.notes {
                        tracing::info!("{key}: {note}");
                    }
                    let lines = batch.lines;
                    let cursor = serde_json::to_string(&batch.cursor).unwrap_or_default();
                    let at_end = at_end(&key, &batch.cursor);
                    if tx2
                        .blocking_send(Msg::Log {
                            key,
                            lines,
                            cursor,
                            at_end,
                        })
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }));
    }

    // The mailer: asks the core for due messages, delivers them one after
    // the other (over one SMTP connection), reports each result back.
    let transport = smtp::Transport::new(&d.mail).map_err(RunError::Config)?;
    tracing::info!("mail goes to {}", transport.describe());
    {
        let tx2 = tx.clone();
        let stop = shutdown_rx.clone();
        let cfg = d.mail.clone();
        let clock = clock.clone();
        let wake = mail_wake.clone();
        let poll = opts.mail_poll;
        tasks.push(tokio::spawn(async move {
            mailer(transport, cfg, tx2, stop, clock, wake, poll).await;
        }));
    }

    Ok(Handle {
        tx,
        shutdown: shutdown_tx,
        core_stop,
        tasks,
        core: Some(core_thread),
        polling,
    })
}

/// Whether a batch ended at the end of the live file at `key` (a batch
/// from a rotated copy, or one that stopped at the size limit, did not).
fn at_end(key: &str, cursor: &tail::Cursor) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(key).map_or(true, |m| m.ino() == cursor.ino && m.len() <= cursor.offset)
}

async fn catch_up(
    roots: &[fswatch::WatchRoot],
    filter: &Arc<fswatch::Filter>,
    tx: &mpsc::Sender<Msg>,
    stop: &watch::Receiver<bool>,
) {
    let roots = roots.to_vec();
    let filter = filter.clone();
    let (ftx, mut frx) = mpsc::channel(1024);
    let walker = tokio::task::spawn_blocking(move || {
        fswatch::walk(&roots, &filter, &mut |r| {
            let _ = ftx.blocking_send(r);
        });
    });
    while let Some(r) = frx.recv().await {
        match r {
            Ok(seen) => {
                // Stopping: the next start's walk checks the rest.
                if *stop.borrow() || tx.send(Msg::File(seen.path)).await.is_err() {
                    break;
                }
            }
            Err(fswatch::WatchEvent::Error { path, message }) => {
                if tx.send(problem(path, message)).await.is_err() {
                    break;
                }
            }
            Err(_) => {}
        }
    }
    let _ = walker.await;
}

/// The core's message for a watcher event; `None` for a Rescan.
fn watch_msg(ev: fswatch::WatchEvent) -> Option<Msg> {
    match ev {
        fswatch::WatchEvent::Ready(p) => Some(Msg::File(p)),
        fswatch::WatchEvent::Removed(p) => Some(Msg::Removed(p)),
        fswatch::WatchEvent::Rescan => None,
        fswatch::WatchEvent::Error { path, message } => Some(problem(path, message)),
    }
}

/// Logs a problem of the watched folders; the message stores it too.
fn problem(path: Option<PathBuf>, message: String) -> Msg {
    let text = match path {
        Some(p) => format!("{}: {message}", p.display()),
        None => message,
    };
    tracing::warn!("{text}");
    Msg::Problem(text)
}

/// The core actor's stop signals.
struct Stops {
    /// Set once the sources and the mailer are done: the actor exits when
    /// it has handled what they sent.
    core: watch::Receiver<bool>,
    /// Set when shutdown begins: a write that fails is no longer retried.
    shutdown: watch::Receiver<bool>,
}

/// Runs store operations until they succeed, and remembers the failures.
struct Retry {
    notifier: super::sdnotify::Notifier,
    shutdown: watch::Receiver<bool>,
    clock: Arc<dyn Clock>,
    /// Writes failing since: (first failure, attempts, first error).
    failing: Option<(Timestamp, u64, String)>,
    /// A period of failures that ended, for the `errors` table.
    ended: Option<String>,
}

impl Retry {
    fn new(
        notifier: super::sdnotify::Notifier,
        shutdown: watch::Receiver<bool>,
        clock: Arc<dyn Clock>,
    ) -> Retry {
        Retry {
            notifier,
            shutdown,
            clock,
            failing: None,
            ended: None,
        }
    }

    /// Runs `f` until it succeeds, backing off from 100 ms to 30 s and
    /// logging each failure: a full or read-only state directory stops
    /// progress, not the daemon. Once the daemon is stopping a failure is
    /// final (`None`): nothing was committed, and the next start does the
    /// work again — waiting for the disk instead would hold the stop until
    /// systemd kills the daemon.
    async fn run<T>(&mut self, mut f: impl FnMut() -> Result<T, StoreError>) -> Option<T> {
        let mut shutdown = self.shutdown.clone();
        let mut wait = Duration::from_millis(100);
        loop {
            let e = match f() {
                Ok(v) => {
                    if let Some((since, n, first)) = self.failing.take() {
                        let utc = |t: Timestamp| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string();
                        self.ended = Some(format!(
                            "the state could not be written from {} until {} ({n} failed attempt(s)): {first}",
                            utc(since),
                            utc(self.clock.now())
                        ));
                    }
                    return Some(v);
                }
                Err(e) => e,
            };
            self.failing
                .get_or_insert_with(|| (self.clock.now(), 0, e.to_string()))
                .1 += 1;
            if *shutdown.borrow() {
                tracing::error!(
                    "cannot write the state: {e}; stopping, so this input is left for the next start"
                );
                return None;
            }
            tracing::error!("cannot write the state: {e}; retrying in {wait:?}");
            // Alive and retrying (a full disk): systemd must not kill and
            // restart it for that.
            let _ = self.notifier.watchdog();
            let _ = self
                .notifier
                .status(&format!("cannot write the state: {e}; retrying"));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                // One last attempt at once, then give up.
                _ = shutdown.changed() => {}
            }
            wait = (wait * 2).min(Duration::from_secs(30));
        }
    }
}

/// `complyd run --once`: one pass of what the daemon does — check the
/// folders (files unchanged since the last pass are skipped), read the logs
/// to their end, fire what fell due by `now`, deliver the outbox — then
/// stop. Same core, same database as the daemon.
pub fn run_once(opts: &RunOptions, rules: RuleSet, now: Timestamp) -> Result<String, RunError> {
    let d = &opts.config.daemon;
    let (mut core, cursors) = open_core(opts, rules, now)?;
    let (mut checked, mut new) = (0usize, 0usize);
    let roots: Vec<fswatch::WatchRoot> = d
        .watch
        .iter()
        .map(|w| fswatch::WatchRoot::configured(&w.path, &w.include, &w.exclude))
        .collect();
    let filter = fswatch::Filter::new(&roots).map_err(RunError::Config)?;
    let (mut files, mut problems) = (Vec::new(), Vec::new());
    fswatch::walk(&roots, &filter, &mut |r| match r {
        Ok(seen) => files.push(seen.path),
        Err(fswatch::WatchEvent::Error { path, message }) => problems.push(problem(path, message)),
        Err(_) => {}
    });
    for p in problems {
        if let Msg::Problem(text) = p {
            core.record_problem("watch", &text, now)?;
        }
    }
    for f in files {
        if let FileOutcome::Checked { new: n, .. } = core.check_file(&f, now)? {
            checked += 1;
            new += n;
        }
    }
    let mut set = tail::LogSet::new(d.logs.clone(), cursors, tail::TailLimits::default());
    let mut lines_read = 0usize;
    loop {
        let batches = set.read(1 << 20);
        if batches.is_empty() {
            break;
        }
        for (key, batch) in batches {
            for note in &batch.notes {
                tracing::info!("{key}: {note}");
            }
            lines_read += batch.lines.len();
            let lines = batch.lines;
            let cursor = serde_json::to_string(&batch.cursor).unwrap_or_default();
            let at_end = at_end(&key, &batch.cursor);
            new += core.log_batch(&key, &lines, &cursor, at_end, now)?;
        }
    }
    core.logs_read();
    new += core.tick(now)?;
    core.persist_held(now)?;
    core.remind(now)?;
    // Deliver the outbox on a runtime of its own (lettre's SMTP transport
    // is async); an unreachable server ends the pass, the rest waits.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| RunError::Other(e.to_string()))?;
    let (mailed, waiting, target) = rt.block_on(async {
        let transport = smtp::Transport::new(&d.mail).map_err(RunError::Config)?;
        let mut mailed = 0usize;
        let mut blocked = None;
        'pass: loop {
            let items = core.store().outbox_due(now, PAGE)?;
            if items.is_empty() {
                break;
            }
            for batch in group_digests(items) {
                let (update, down) = deliver(&transport, &d.mail, &batch, now).await;
                mailed += usize::from(update.delivered.len() > batch[0].delivered.len());
                core.store().outbox_results(&[update], now)?;
                if let Some((_, reason)) = down {
                    blocked = Some(reason);
                    break 'pass;
                }
            }
        }
        transport.shutdown().await;
        let waiting = match blocked {
            Some(reason) => {
                let n = core.store().outbox_counts()?.pending;
                format!(" (no mail got through: {reason}; {n} message(s) wait for the next run)")
            }
            None => String::new(),
        };
        Ok::<_, RunError>((mailed, waiting, transport.describe()))
    })?;
    Ok(format!(
        "{checked} file(s) checked, {lines_read} log line(s) read, {new} new violation(s), {mailed} mail(s) delivered to {target}{waiting}; {} event(s) held in the reorder window; state in {}",
        core.held(),
        d.database().display()
    ))
}
