//! The mailer task: asks the core actor for due outbox rows, groups
//! digests, builds and delivers each message, reports every result back
//! to the core actor (which owns the store).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::{Notify, mpsc, oneshot, watch};

use super::clock::Clock;
use super::outbox::OutboxItem;
use super::run::Msg;
use super::{mail, smtp};
use crate::config::MailConfig;

/// The mailer task. Delivers what is due; a message that failed for a
/// while is retried when its backoff ends (the task sleeps until the
/// earliest retry, on the daemon's clock). When the server cannot be
/// reached at all, the whole queue pauses with its own growing backoff —
/// an outage of any length costs one attempt per pause, not one per
/// message — and resumes by itself.
pub(super) async fn mailer(
    transport: smtp::Transport,
    cfg: MailConfig,
    tx: mpsc::Sender<Msg>,
    mut stop: watch::Receiver<bool>,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
) {
    // Consecutive attempts that found the server unreachable.
    let mut outage = 0u32;
    'run: loop {
        if outage > 0 {
            let until = clock.now() + backoff(0, outage - 1);
            while clock.now() < until {
                tokio::select! {
                    _ = stop.changed() => break 'run,
                    _ = clock.sleep_until(until) => {}
                }
            }
        }
        let (otx, orx) = oneshot::channel();
        if tx.send(Msg::OutboxDue(otx)).await.is_err() {
            break;
        }
        let (items, next) = orx.await.unwrap_or_default();
        let idle = items.is_empty();
        for batch in group_digests(items) {
            // Finish the message in hand even when asked to stop.
            let (result, unreachable) = deliver(&transport, &cfg, &batch, clock.now()).await;
            outage = if unreachable { outage + 1 } else { 0 };
            for item in &batch {
                if tx
                    .send(Msg::OutboxResult {
                        id: item.id,
                        result: result.clone(),
                    })
                    .await
                    .is_err()
                {
                    break 'run;
                }
            }
            if *stop.borrow() {
                break 'run;
            }
            if unreachable {
                continue 'run;
            }
        }
        if *stop.borrow() {
            break;
        }
        if idle {
            tokio::select! {
                _ = stop.changed() => break,
                _ = wake.notified() => {}
                _ = async {
                    match next {
                        Some(t) => clock.sleep_until(t).await,
                        None => std::future::pending::<()>().await,
                    }
                } => {}
                _ = tokio::time::sleep(Duration::from_secs(30)) => {}
            }
        }
    }
    transport.shutdown().await;
}

/// Rows waiting for the same digest (same route and recipients) go out
/// as one message; every other row alone. At most 500 per digest, so a
/// burst makes several readable messages rather than one huge one.
pub fn group_digests(items: Vec<OutboxItem>) -> Vec<Vec<OutboxItem>> {
    let mut out: Vec<Vec<OutboxItem>> = Vec::new();
    let mut open: HashMap<(Option<i64>, Vec<String>), usize> = HashMap::new();
    for item in items {
        if !(item.digest && item.kind == "violation") {
            out.push(vec![item]);
            continue;
        }
        let key = (item.route, item.to.clone());
        match open.get(&key) {
            Some(&i) if out[i].len() < 500 => out[i].push(item),
            _ => {
                open.insert(key, out.len());
                out.push(vec![item]);
            }
        }
    }
    out
}

/// Builds and sends one message (a single violation or a digest); the
/// outbox result for its rows, and whether the server was unreachable.
pub(super) async fn deliver(
    transport: &smtp::Transport,
    cfg: &MailConfig,
    batch: &[OutboxItem],
    now: Timestamp,
) -> (Result<(), (String, Option<Timestamp>)>, bool) {
    let Some(item) = batch.first() else {
        return (Ok(()), false);
    };
    let sent = if batch.len() == 1 {
        match mail::build(cfg, item) {
            Ok(m) => transport.send(item, &m).await,
            Err(e) => Err(e),
        }
    } else {
        match mail::build_digest(cfg, batch) {
            Ok((m, id)) => {
                // Named by the digest for the file transport.
                let mut named = item.clone();
                named.record.fingerprint = id;
                named.kind = "digest".into();
                named.route = None;
                transport.send(&named, &m).await
            }
            Err(e) => Err(e),
        }
    };
    match sent {
        Ok(()) => (Ok(()), false),
        Err(e) => {
            let fp = &item.record.fingerprint;
            if e.permanent {
                tracing::error!("mail for violation {fp} failed for good: {}", e.reason);
                (Err((e.reason, None)), false)
            } else {
                let retry = now + backoff(item.id, item.attempts);
                tracing::warn!(
                    "mail for violation {fp}: {}; retrying after {}",
                    e.reason,
                    retry
                );
                (Err((e.reason, Some(retry))), e.unreachable)
            }
        }
    }
}

/// Exponential backoff with jitter, capped at an hour: 10 s, 20 s, 40 s …
fn backoff(id: i64, attempts: u32) -> SignedDuration {
    let base = 10i64.saturating_mul(1i64 << attempts.min(9)).min(3600);
    // Deterministic jitter (±25 %) from the message id and attempt.
    let h = (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(attempts);
    let jitter = (h % 51) as i64 - 25;
    SignedDuration::from_secs(base + base * jitter / 100)
}
