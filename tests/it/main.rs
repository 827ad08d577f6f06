//! Integration tests (one binary; see Cargo.toml).

mod calendar;
mod cli;
mod daemon;
mod daemon_process;
mod diagnostics;
mod full_disk;
mod mail_templates;
mod props;
mod replay;
mod shipped_rules;
mod site;
mod smtp;
mod systemd;
mod tail;
