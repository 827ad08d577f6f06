//! The mailer task: asks the core actor for due outbox rows (a page at a
//! time), groups digests, builds and delivers each message, and reports
//! each message's result back to the core actor (which owns the store) as
//! one write for all the rows it carried.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::{Notify, mpsc, oneshot, watch};

use super::clock::Clock;
use super::mail;
use super::outbox::{MailerState, OutboxItem, OutboxUpdate};
use super::run::Msg;
use super::smtp::{self, Blocked};
use crate::config::MailConfig;

/// Due rows fetched at a time (and the most violations in one digest).
pub const PAGE: usize = 500;

/// The mailer task. Delivers what is due; a message that failed for a
/// while is retried when its backoff ends (the task sleeps until the
/// earliest retry, on the daemon's clock). When no message can get
/// through — the server cannot be reached, or it refuses our login — the
/// whole queue pauses with its own growing backoff (an outage of any
/// length costs one connection attempt per pause, not one per message; a login
/// refused is logged once, and nothing is failed for it), and resumes by
/// itself. When idle it looks at the outbox every `poll` too, so rows
/// queued again by `complyd outbox retry` (another process) go out
/// within that time.
pub(super) async fn mailer(
    transport: smtp::Transport,
    cfg: MailConfig,
    tx: mpsc::Sender<Msg>,
    mut stop: watch::Receiver<bool>,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
    poll: Duration,
) {
    // Why the queue waits, and how many pauses in a row.
    let mut paused: Option<(Blocked, MailerState)> = None;
    let mut pauses = 0u32;
    // A previous run's pause no longer holds.
    if tx.send(Msg::MailerState(None)).await.is_err() {
        return;
    }
    'run: loop {
        if let Some((kind, state)) = &paused {
            let (kind, until) = (*kind, state.next_try);
            while clock.now() < until {
                tokio::select! {
                    _ = stop.changed() => break 'run,
                    _ = clock.sleep_until(until) => {}
                }
            }
            // The server is asked first (connect, TLS, login): while it is
            // still down the queue is not read — after a long outage that
            // is a page of messages read and built for every try. A refused
            // sender shows only when a message is sent.
            if kind != Blocked::Sender
                && let Err((reason, kind)) = transport.probe().await
            {
                let state = pause(kind, reason, &mut paused, &mut pauses, &transport, &*clock);
                if tx.send(Msg::MailerState(Some(state))).await.is_err() {
                    break 'run;
                }
                continue 'run;
            }
        }
        let (otx, orx) = oneshot::channel();
        if tx.send(Msg::OutboxDue(otx)).await.is_err() {
            break;
        }
        let (items, next) = orx.await.unwrap_or_default();
        let idle = items.is_empty();
        // The server answered the probe and nothing is due (the queue was
        // cancelled meanwhile): the pause is over, not shown any longer.
        if idle && paused.is_some() {
            paused = None;
            pauses = 0;
            tracing::info!("{}: mail goes through again", transport.describe());
            if tx.send(Msg::MailerState(None)).await.is_err() {
                break;
            }
        }
        for batch in group_digests(items) {
            // Finish the message in hand even when asked to stop.
            let (update, blocked) = deliver(&transport, &cfg, &batch, clock.now()).await;
            if tx.send(Msg::OutboxResults(vec![update])).await.is_err() {
                break 'run;
            }
            match blocked {
                Some((kind, reason)) => {
                    let state = pause(kind, reason, &mut paused, &mut pauses, &transport, &*clock);
                    if tx.send(Msg::MailerState(Some(state))).await.is_err() {
                        break 'run;
                    }
                    continue 'run;
                }
                None => {
                    if paused.take().is_some() {
                        pauses = 0;
                        tracing::info!("{}: mail goes through again", transport.describe());
                        if tx.send(Msg::MailerState(None)).await.is_err() {
                            break 'run;
                        }
                    }
                }
            }
            if *stop.borrow() {
                break 'run;
            }
        }
        if *stop.borrow() {
            break;
        }
        if idle {
            transport.close_idle().await;
            tokio::select! {
                _ = stop.changed() => break,
                _ = wake.notified() => {}
                _ = async {
                    match next {
                        Some(t) => clock.sleep_until(t).await,
                        None => std::future::pending::<()>().await,
                    }
                } => {}
                _ = tokio::time::sleep(poll) => {}
            }
        }
    }
    transport.shutdown().await;
}

/// The queue pauses (again) for `kind`: `paused` and the number of
/// pauses in a row updated, logged; returns the state to record.
fn pause(
    kind: Blocked,
    reason: String,
    paused: &mut Option<(Blocked, MailerState)>,
    pauses: &mut u32,
    transport: &smtp::Transport,
    clock: &dyn Clock,
) -> MailerState {
    let now = clock.now();
    let before = paused.take().filter(|(k, _)| *k == kind);
    let same = before.is_some();
    *pauses = if same { *pauses + 1 } else { 1 };
    let wait = match kind {
        Blocked::Unreachable => backoff(0, *pauses - 1),
        Blocked::Auth | Blocked::Sender => auth_backoff(*pauses - 1),
    };
    let state = MailerState {
        paused: kind.as_str().into(),
        since: before.map_or(now, |(_, s)| s.since),
        reason,
        next_try: now + wait,
    };
    log_pause(kind, &state, same, transport);
    *paused = Some((kind, state.clone()));
    state
}

/// A pause is logged when it starts (an error naming what to fix, for a
/// login refused); the following attempts that fail the same way only at
/// debug level.
fn log_pause(kind: Blocked, state: &MailerState, again: bool, transport: &smtp::Transport) {
    let next = state.next_try;
    match (kind, again) {
        (Blocked::Auth, false) => tracing::error!(
            "{}: the server refuses our login — {}. This is the configuration \
             (mail.smtp username, password_file or password_credential, security), not the \
             messages: mail is paused, nothing is failed or lost, and it is tried again with a \
             growing pause (next at {next}). Fix it and restart complyd.",
            transport.describe(),
            state.reason
        ),
        (Blocked::Sender, false) => tracing::error!(
            "{}: the server refuses our sender address — {}. This is the configuration \
             (mail.from), not the messages: mail is paused, nothing is failed or lost, and it is \
             tried again with a growing pause (next at {next}). Fix it and restart complyd.",
            transport.describe(),
            state.reason
        ),
        // The reason already names the server (`smtp host:port: …`).
        (Blocked::Unreachable, false) => {
            tracing::warn!("{}; mail is paused and tried again at {next}", state.reason)
        }
        (_, true) => tracing::debug!("still paused: {}; next try at {next}", state.reason),
    }
}

/// Rows waiting for the same digest — same route, same window, same
/// recipients, at the same point of their delivery — go out as one
/// message; every other row alone. Two windows of a route are never one
/// message, even when both are due (after an outage). At most [`PAGE`]
/// per digest, so a burst makes several readable messages rather than
/// one huge one.
pub fn group_digests(items: Vec<OutboxItem>) -> Vec<Vec<OutboxItem>> {
    type Key = (
        Option<i64>,
        Option<i64>,
        Vec<String>,
        Vec<String>,
        Vec<(String, String)>,
    );
    let mut out: Vec<Vec<OutboxItem>> = Vec::new();
    let mut open: HashMap<Key, usize> = HashMap::new();
    for item in items {
        if !(item.digest && item.kind == "violation") {
            out.push(vec![item]);
            continue;
        }
        let key = (
            item.route,
            item.window,
            item.to.clone(),
            item.delivered.clone(),
            item.rejected.clone(),
        );
        match open.get(&key) {
            Some(&i) if out[i].len() < PAGE => out[i].push(item),
            _ => {
                open.insert(key, out.len());
                out.push(vec![item]);
            }
        }
    }
    out
}

/// What a message is, for the log.
fn label(batch: &[OutboxItem]) -> String {
    match batch {
        [one] => format!(
            "mail #{} ({} of {})",
            one.id, one.kind, one.record.fingerprint
        ),
        [first, ..] => format!(
            "digest of {} violations (mail #{}…, route {})",
            batch.len(),
            first.id,
            first.route.unwrap_or(0)
        ),
        [] => "nothing".into(),
    }
}

/// Builds and sends one message (a single row or a digest) to the
/// recipients it has not reached yet; the new state of its rows, and
/// whether the whole queue has to wait (with why).
pub(super) async fn deliver(
    transport: &smtp::Transport,
    cfg: &MailConfig,
    batch: &[OutboxItem],
    now: Timestamp,
) -> (OutboxUpdate, Option<(Blocked, String)>) {
    let mut update = OutboxUpdate {
        ids: batch.iter().map(|i| i.id).collect(),
        message_id: None,
        delivered: Vec::new(),
        rejected: Vec::new(),
        retry: None,
        error: None,
    };
    let Some(first) = batch.first() else {
        return (update, None);
    };
    update.delivered = first.delivered.clone();
    update.rejected = first.rejected.clone();
    let to = first.remaining(&cfg.to);
    if to.is_empty() {
        if update.delivered.is_empty() && update.rejected.is_empty() {
            update.error = Some("no recipients (mail.to and the route are empty)".into());
        }
        return (update, None);
    }
    let built = if batch.len() == 1 {
        mail::build(cfg, first).map(|m| (m, first.clone()))
    } else {
        mail::build_digest(cfg, batch).map(|(m, id)| {
            // Named by the digest for the file transport.
            let mut named = first.clone();
            named.record.fingerprint = id;
            named.kind = "digest".into();
            named.route = None;
            (m, named)
        })
    };
    let report = match built {
        Ok((msg, named)) => {
            // The Message-ID as sent (the store keeps the first one that
            // reached anyone).
            update.message_id = msg.headers().get_raw("Message-ID").map(str::to_string);
            transport.send(&named, &msg, &to).await
        }
        // Cannot be built (a bad address in the configuration): nobody
        // can be sent it.
        Err(e) => smtp::Report {
            rejected: to.iter().map(|a| (a.clone(), e.reason.clone())).collect(),
            ..smtp::Report::default()
        },
    };
    let what = label(batch);
    for (a, why) in &report.rejected {
        tracing::error!("{what} not accepted for {a}, for good: {why}");
    }
    update.delivered.extend(report.accepted.iter().cloned());
    update.rejected.extend(report.rejected.iter().cloned());
    if !report.rejected.is_empty() && !update.delivered.is_empty() {
        tracing::info!("{what} went to {}", update.delivered.join(", "));
    }
    if !report.deferred.is_empty() {
        let retry = now + backoff(first.id, first.attempts);
        let why = report.reason.clone().unwrap_or_default();
        if report.blocked.is_none() {
            tracing::warn!(
                "{what}: {why}; retrying {} after {retry}",
                report.deferred.join(", ")
            );
        }
        update.retry = Some(retry);
        update.error = Some(why);
    } else if !update.rejected.is_empty() {
        update.error = Some(rejected_text(&update.rejected));
    }
    let blocked = report
        .blocked
        .map(|b| (b, report.reason.unwrap_or_default()));
    (update, blocked)
}

/// `not accepted for a@x: 550 …; b@y: …`, as `status` shows it.
pub fn rejected_text(rejected: &[(String, String)]) -> String {
    let list: Vec<String> = rejected
        .iter()
        .map(|(a, why)| format!("{a}: {why}"))
        .collect();
    format!("not accepted for {}", list.join("; "))
}

/// Exponential backoff with jitter, capped at an hour: 10 s, 20 s, 40 s …
fn backoff(id: i64, attempts: u32) -> SignedDuration {
    let base = 10i64.saturating_mul(1i64 << attempts.min(9)).min(3600);
    // Deterministic jitter (±25 %) from the message id and attempt.
    let h = (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(attempts);
    let jitter = (h % 51) as i64 - 25;
    SignedDuration::from_secs(base + base * jitter / 100)
}

/// The pause after a refused login: 5 min, 10, 20, 40, then hourly. Long,
/// because only a fix of the account or the configuration helps, and a
/// server may lock an account that keeps failing.
fn auth_backoff(pauses: u32) -> SignedDuration {
    SignedDuration::from_mins(5i64.saturating_mul(1i64 << pauses.min(4)).min(60))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::record::Record;

    fn row(id: i64, route: i64, window: i64) -> OutboxItem {
        let record: Record = serde_json::from_str(&format!(
            r#"{{"fingerprint":"f{id}","rule":"r","severity":"low","message":"m","subject":"s",
                "location":[],"at":"2026-03-02T10:00:00+08:00"}}"#
        ))
        .unwrap();
        let mut item = OutboxItem::new(id, "violation", record);
        item.route = Some(route);
        item.digest = true;
        item.window = Some(window);
        item.to = vec!["a@example.com".into()];
        item
    }

    #[test]
    fn two_windows_of_a_route_are_two_messages() {
        let items = vec![
            row(1, 0, 100),
            row(2, 0, 200),
            row(3, 0, 100),
            row(4, 1, 100),
        ];
        let ids: Vec<Vec<i64>> = group_digests(items)
            .iter()
            .map(|b| b.iter().map(|i| i.id).collect())
            .collect();
        assert_eq!(ids, vec![vec![1, 3], vec![2], vec![4]]);
    }

    #[test]
    fn rows_at_different_points_of_delivery_are_not_merged() {
        let mut a = row(1, 0, 100);
        a.delivered = vec!["a@example.com".into()];
        let b = row(2, 0, 100);
        assert_eq!(group_digests(vec![a, b]).len(), 2);
    }

    #[test]
    fn a_digest_holds_at_most_a_page() {
        let items: Vec<OutboxItem> = (0..(PAGE as i64 + 1)).map(|i| row(i, 0, 100)).collect();
        let sizes: Vec<usize> = group_digests(items).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![PAGE, 1]);
    }

    #[test]
    fn a_refused_login_pauses_long() {
        assert_eq!(auth_backoff(0), SignedDuration::from_mins(5));
        assert_eq!(auth_backoff(3), SignedDuration::from_mins(40));
        assert_eq!(auth_backoff(30), SignedDuration::from_mins(60));
    }
}
