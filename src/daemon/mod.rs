//! `complyd run`: the daemon — the async shell around the pure cores.
//!
//! Sources (watched folders, tailed logs, the timer) feed one core actor
//! that owns the rules and the SQLite store; each input is evaluated by the
//! same functions `scan` and `replay` call and committed in one transaction
//! together with its outbox rows and source offsets; a sender task delivers
//! the outbox.

pub mod checkpoint;
pub mod clock;
pub mod cmd;
pub mod core;
pub mod frame;
pub mod held;
pub mod logging;
pub mod mail;
pub mod mailer;
pub mod outbox;
pub mod outbox_cli;
pub mod record;
pub mod reload;
pub mod route;
pub mod run;
mod schema;
pub mod sdnotify;
pub mod smtp;
pub mod status;
pub mod store;
pub mod tail;
pub mod violations;
pub mod watch;
