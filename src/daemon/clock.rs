//! Wall-clock time for the daemon, and a manual clock for tests.
//!
//! Deadlines are wall-clock instants (due at 10:00 Beijing time), but tokio
//! sleeps on the monotonic clock. [`SystemClock::sleep_until`] therefore
//! sleeps at most [`MAX_SLEEP`] at a time and the caller re-reads the wall
//! clock: a deadline still fires at its instant, and a wall-clock jump (NTP
//! step, suspend) is noticed within a minute instead of being slept through.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::Notify;

/// Longest single sleep before the wall clock is read again.
pub const MAX_SLEEP: Duration = Duration::from_secs(60);

pub type Sleep<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

pub trait Clock: Debug + Send + Sync {
    fn now(&self) -> Timestamp;
    /// Returns at `t` or earlier (the caller checks the time again).
    fn sleep_until(&self, t: Timestamp) -> Sleep<'_>;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }

    fn sleep_until(&self, t: Timestamp) -> Sleep<'_> {
        let wait = t.duration_since(Timestamp::now());
        let wait = Duration::try_from(wait)
            .unwrap_or(Duration::ZERO)
            .min(MAX_SLEEP);
        Box::pin(tokio::time::sleep(wait))
    }
}

/// A clock that moves only when told to; sleepers wake when it passes
/// their instant.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<Timestamp>>,
    moved: Arc<Notify>,
}

impl ManualClock {
    pub fn new(start: Timestamp) -> ManualClock {
        ManualClock {
            now: Arc::new(Mutex::new(start)),
            moved: Arc::new(Notify::new()),
        }
    }

    pub fn advance(&self, by: SignedDuration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
        drop(now);
        self.moved.notify_waiters();
    }

    pub fn set(&self, t: Timestamp) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = t;
        self.moved.notify_waiters();
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sleep_until(&self, t: Timestamp) -> Sleep<'_> {
        Box::pin(async move {
            loop {
                let moved = self.moved.notified();
                if self.now() >= t {
                    return;
                }
                moved.await;
            }
        })
    }
}
