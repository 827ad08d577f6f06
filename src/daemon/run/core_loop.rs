//! The core actor's loop: inputs one at a time from the channel, deadlines
//! on the daemon's clock, reminders hourly, the watchdog, and a stop that
//! drains what the sources already sent.

use super::*;

/// The actor: one input at a time, each one transaction; between inputs it
/// sleeps until the next deadline. A failed commit (disk full, read-only
/// state) is retried with backoff; the daemon keeps running. Stopping, a
/// write that fails leaves its input — and every later file and log batch —
/// for the next start.
/// How long the core waits for input before giving back working memory.
const RELEASE_AFTER: Duration = Duration::from_secs(1);

/// A log batch of this many lines means a log is busy (or being caught up
/// on): freed memory is then kept for reuse until the daemon idles
/// (alloc.rs). A few lines now and then leave the idle daemon as small as
/// ever.
const BUSY_BATCH: usize = 1000;

pub(super) async fn core_loop(
    mut core: Core,
    mut rx: mpsc::Receiver<Msg>,
    stops: Stops,
    clock: Arc<dyn Clock>,
    opts: RunOptions,
    mail_wake: Arc<Notify>,
    rewalk: Arc<Notify>,
) -> Result<(), RunError> {
    let mut opts = opts;
    let Stops {
        core: mut stop,
        shutdown,
    } = stops;
    let mut retry = Retry::new(opts.notifier.clone(), shutdown, clock.clone());
    // An input was left uncommitted while stopping: no later one may move
    // a cursor or a file's row past it.
    let mut left = false;
    let ping = opts.notifier.watchdog_interval();
    let mut watchdog = tokio::time::interval(ping.unwrap_or(Duration::from_secs(3600)));
    let mut last_ping = std::time::Instant::now();
    let mut skipped = 0usize;
    // Reminders are looked for at start and then hourly, on the daemon's
    // clock (they are due by working days, not to the minute).
    let mut next_remind = Some(clock.now());
    // Files or log lines were checked (or the rules replaced) since the
    // regexes' working memory was last given back.
    let mut warm = false;
    loop {
        // The state could be written again after a while: said where
        // `complyd status` shows it.
        if let Some(text) = retry.ended.take() {
            retry
                .run(|| core.record_problem("state", &text, clock.now()))
                .await;
        }
        // While inputs keep coming (a catch-up keeps the channel full) the
        // watchdog branch below is never chosen: ping here too.
        if ping.is_some_and(|p| last_ping.elapsed() >= p) {
            let _ = opts.notifier.watchdog();
            last_ping = std::time::Instant::now();
        }
        if core.reminders().is_none() {
            next_remind = None;
        } else if next_remind.is_none() {
            next_remind = Some(clock.now());
        }
        if let Some(t) = next_remind
            && clock.now() >= t
        {
            let n = retry.run(|| core.remind(clock.now())).await;
            if let Some(n) = n.filter(|&n| n > 0) {
                tracing::info!("{n} reminder(s) queued for violations still open");
                mail_wake.notify_one();
            }
            next_remind = Some(clock.now() + SignedDuration::from_hours(1));
        }
        let deadline = match (core.next_deadline(), next_remind) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let msg = tokio::select! {
            biased;
            m = rx.recv() => match m { Some(m) => m, None => break },
            _ = stop.changed(), if !*stop.borrow() => continue,
            // Stopping: the sources have stopped; what they sent is handled
            // (the branch above is polled first), then the actor exits.
            _ = std::future::ready(()), if *stop.borrow() && rx.is_empty() => break,
            _ = watchdog.tick(), if ping.is_some() => {
                let _ = opts.notifier.watchdog();
                last_ping = std::time::Instant::now();
                continue;
            }
            _ = async {
                match deadline {
                    Some(t) => clock.sleep_until(t).await,
                    None => std::future::pending::<()>().await,
                }
            } => {
                let now = clock.now();
                if deadline.is_some_and(|t| now >= t) {
                    let n = retry.run(|| core.tick(clock.now())).await;
                    if n.is_some_and(|n| n > 0) {
                        mail_wake.notify_one();
                    }
                }
                continue;
            }
            // Idle: the regexes' lazy DFAs give back their states and sets
            // (2.4 MiB after the examples, up to the cache cap, 16 MiB, after
            // much varied text), and the pages they held go back to the OS;
            // the next scan makes them anew, ~1 ms more than a warm scan.
            // Real time, like the runtime's blocking threads, which exit 1 s
            // after their last use.
            _ = tokio::time::sleep(RELEASE_AFTER), if warm => {
                core.rules().matcher.release_caches();
                core.release_buffers();
                crate::alloc::idle();
                warm = false;
                continue;
            }
        };
        warm |= matches!(msg, Msg::File(_) | Msg::Log { .. } | Msg::Reload(_));
        match msg {
            // Likewise files (a walk of 100k files may be queued): the
            // next start's catch-up finds them changed and checks them.
            Msg::File(_) if *stop.borrow() || left => {
                skipped += 1;
            }
            Msg::File(path) => {
                let out = retry.run(|| core.check_file(&path, clock.now())).await;
                let Some(out) = out else {
                    left = true;
                    continue;
                };
                match out {
                    FileOutcome::Checked { findings, new } => {
                        tracing::info!(
                            "{}: checked, {findings} finding(s), {new} new",
                            path.display()
                        );
                        if new > 0 {
                            mail_wake.notify_one();
                        }
                    }
                    FileOutcome::Gone => {
                        tracing::info!("{}: deleted before it could be checked", path.display());
                    }
                    FileOutcome::Unchanged => {}
                }
            }
            Msg::Removed(path) => {
                tracing::info!("{}: removed", path.display());
                let done = retry.run(|| core.file_removed(&path, clock.now())).await;
                left |= done.is_none();
            }
            // Stopping: batches still queued (up to the channel's 64, each
            // up to 1 MiB of a log being caught up on) are left for the next
            // start, which reads them again from the last committed cursor.
            // Every later batch is skipped too, so no cursor moves past a
            // batch that was not evaluated.
            Msg::Log { .. } if *stop.borrow() || left => {
                skipped += 1;
            }
            Msg::Log {
                key,
                lines,
                cursor,
                at_end,
            } => {
                if lines.len() >= BUSY_BATCH {
                    crate::alloc::busy();
                }
                let n = retry
                    .run(|| core.log_batch(&key, &lines, &cursor, at_end, clock.now()))
                    .await;
                left |= n.is_none();
                if n.is_some_and(|n| n > 0) {
                    mail_wake.notify_one();
                }
            }
            Msg::Reload(reply) => {
                let result = load_all(&opts);
                let answer = match result {
                    Ok((mut config, rules)) => {
                        let env = Env {
                            calendar: config.calendar.clone(),
                            lists: rules.lists.clone(),
                        };
                        tracing::info!("reloaded: {} rules", rules.rules.len());
                        // As at start (cmd.rs): missing folders, logs,
                        // holidays, regexes with a Unicode `\b`.
                        for w in config.warnings(clock.now()).iter().chain(&rules.warnings) {
                            tracing::warn!("{}", w.header());
                        }
                        let changed = rules.digest != core.rules().digest;
                        core.reload(Arc::new(rules), env);
                        // Retried (and logged) as any write is.
                        let _ = retry.run(|| core.config_fixed(clock.now())).await;
                        // Routes apply from the next violation, templates
                        // and languages from the next message; the mail
                        // transport itself is kept until a restart.
                        config
                            .daemon
                            .mail
                            .templates
                            .take_over(&opts.config.daemon.mail.templates);
                        core.set_routing(
                            config.daemon.mail.routing.clone(),
                            config.daemon.mail.to.clone(),
                        );
                        core.set_reminders(config.daemon.mail.remind_after);
                        super::super::logging::set_time_zone(config.calendar.time_zone());
                        opts.config = config;
                        if changed {
                            rewalk.notify_one();
                        }
                        Ok(())
                    }
                    Err(diags) => {
                        tracing::error!("reload failed; the previous rules keep running:\n{diags}");
                        let n = retry.run(|| core.config_error(&diags, clock.now())).await;
                        if n.is_some_and(|n| n > 0) {
                            mail_wake.notify_one();
                        }
                        Err(diags)
                    }
                };
                if let Some(r) = reply {
                    let _ = r.send(answer);
                }
            }
            Msg::OutboxDue(reply) => {
                let items = core
                    .store()
                    .outbox_due(clock.now(), PAGE)
                    .unwrap_or_default();
                let next = core.store().outbox_next_attempt().unwrap_or_default();
                let _ = reply.send((items, next));
            }
            Msg::OutboxResults(updates) => {
                let done = retry
                    .run(|| core.store().outbox_results(&updates, clock.now()))
                    .await;
                if done.is_none() {
                    tracing::warn!(
                        "the results of {} delivery attempt(s) could not be recorded; \
                         a message delivered may be delivered again after the restart",
                        updates.len()
                    );
                }
            }
            Msg::MailerState(state) => {
                retry
                    .run(|| core.store().set_mailer_state(state.as_ref()))
                    .await;
            }
            Msg::Problem(text) => {
                retry
                    .run(|| core.record_problem("watch", &text, clock.now()))
                    .await;
            }
            Msg::LogsRead => core.logs_read(),
            Msg::Barrier(reply) => {
                let _ = reply.send(());
            }
        }
    }
    // What the window holds is stored, so that the next start does not
    // depend on reading the logs again (one may be rotated away meanwhile).
    if retry.run(|| core.persist_held(clock.now())).await.is_none() {
        tracing::warn!("the held events could not be stored; the next start reads them again");
    }
    if skipped > 0 {
        tracing::info!("{skipped} batch(es) of log lines left unread; the next start reads them");
    }
    Ok(())
}
