//! The daemon's commands: `run`, `check`, `status`, `violations`, `outbox`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use super::clock::SystemClock;
use super::run::{self, RunOptions};
use super::sdnotify::Notifier;
use crate::cli::{EXIT_CONFIG, EXIT_USAGE, OutboxCommand, ViolationsCommand, rules_dir};
use crate::config::Config;
use crate::rules::RuleSet;

/// The configuration (or the first-run defaults); diagnostics printed on
/// failure.
fn load_config(config: Option<&Path>, color: bool) -> Result<Config, ExitCode> {
    match config {
        Some(p) => crate::config::load(p).map_err(|e| {
            eprint!("{}", e.render_as(color, "the configuration"));
            ExitCode::from(EXIT_CONFIG)
        }),
        None => Ok(Config::default()),
    }
}

/// Configuration and rules, validated; diagnostics printed on failure.
fn load(
    config: Option<&Path>,
    rules: Option<PathBuf>,
    color: bool,
) -> Result<(Config, PathBuf, RuleSet), ExitCode> {
    let cfg = load_config(config, color)?;
    // --rules, then the configuration's `rules:`, then the usual lookup.
    let dir = match (rules, &cfg.daemon.rules) {
        (Some(r), _) => r,
        (None, Some(r)) => r.clone(),
        (None, None) => rules_dir(None),
    };
    let set = crate::rules::load(&dir).map_err(|e| {
        eprint!("{}", e.render(color));
        ExitCode::from(EXIT_CONFIG)
    })?;
    cfg.check_with_rules(&set).map_err(|e| {
        eprint!("{}", e.render_as(color, "the configuration"));
        ExitCode::from(EXIT_CONFIG)
    })?;
    Ok((cfg, dir, set))
}

/// Rules whose texts English mail would show in Chinese, when some mail
/// goes out in English.
fn english_gaps(cfg: &Config, set: &RuleSet) -> Vec<String> {
    if !cfg.daemon.mail.templates.uses_english() {
        return Vec::new();
    }
    let list = |ids: Vec<&str>| {
        let n = ids.len();
        let mut shown = ids.into_iter().take(8).collect::<Vec<_>>().join(", ");
        if n > 8 {
            shown.push_str(&format!(" … {} more", n - 8));
        }
        shown
    };
    let mut out = Vec::new();
    let no_message: Vec<&str> = set
        .rules
        .iter()
        .filter(|r| r.meta.message_en.is_none())
        .map(|r| r.meta.id.as_str())
        .collect();
    if !no_message.is_empty() {
        out.push(format!(
            "English mail is configured, but {} rule(s) have no message_en and are mailed with \
             their Chinese message: {}",
            no_message.len(),
            list(no_message)
        ));
    }
    let no_suggestion: Vec<&str> = set
        .rules
        .iter()
        .filter(|r| r.meta.suggestion.is_some() && r.meta.suggestion_en.is_none())
        .map(|r| r.meta.id.as_str())
        .collect();
    if !no_suggestion.is_empty() {
        out.push(format!(
            "English mail is configured, but {} rule(s) have a suggestion without \
             suggestion_en: {}",
            no_suggestion.len(),
            list(no_suggestion)
        ));
    }
    out
}

/// `complyd check`: validates the configuration and the rules (what
/// systemd's ExecReload runs before signalling the daemon).
pub fn check(config: Option<&Path>, rules: Option<PathBuf>, color: bool) -> ExitCode {
    match load(config, rules, color) {
        Ok((cfg, dir, set)) => {
            // Warnings do not fail the check (exit 0): the daemon runs so.
            let warnings = cfg.warnings(jiff::Timestamp::now());
            eprint!("{}", cfg.render_warnings(jiff::Timestamp::now(), color));
            eprint!("{}", set.render_warnings(color));
            let english = english_gaps(&cfg, &set);
            for w in &english {
                eprintln!("warning: {w}");
            }
            if !warnings.is_empty() || !english.is_empty() || !set.warnings.is_empty() {
                let n = warnings.len() + english.len() + set.warnings.len();
                eprintln!("{n} warning{}", if n == 1 { "" } else { "s" });
            }
            let t = &cfg.daemon.mail.templates;
            let templates = match t.dir() {
                Some(d) => format!("templates from {} (checked)", d.display()),
                None => "built-in templates".into(),
            };
            eprintln!(
                "configuration valid; {}: {} rules; watching {} folder(s) and {} log pattern(s); state in {}; mail in {}, {templates}",
                dir.display(),
                set.rules.len(),
                cfg.daemon.watch.len(),
                cfg.daemon.logs.len(),
                cfg.daemon.state_dir.display(),
                t.language().as_str(),
            );
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

/// `complyd status`.
pub fn status(config: Option<&Path>, color: bool) -> ExitCode {
    let cfg = match load_config(config, color) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let routes = super::status::digest_routes(&cfg.daemon.mail.routing);
    match super::status::report(&cfg.daemon.database(), cfg.calendar.time_zone(), &routes) {
        Ok(s) => {
            print!("{s}");
            let warnings = cfg.warnings(jiff::Timestamp::now());
            if !warnings.is_empty() {
                println!("\nwarnings (complyd check shows them in full):");
                for w in warnings {
                    println!("  {}", w.header());
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// The daemon's database, for a command that writes it beside the
/// running daemon (it waits up to 10 s for the daemon's transaction).
fn open_db(cfg: &Config) -> Result<rusqlite::Connection, ExitCode> {
    let db = cfg.daemon.database();
    if !db.exists() {
        eprintln!(
            "error: {}: no state database (has `complyd run` been started with this configuration?)",
            db.display()
        );
        return Err(ExitCode::from(EXIT_USAGE));
    }
    let mut conn = rusqlite::Connection::open(&db).map_err(|e| {
        eprintln!("error: {}: {e}", db.display());
        ExitCode::FAILURE
    })?;
    let _ = conn.busy_timeout(std::time::Duration::from_secs(10));
    // A database last written by an older complyd is upgraded here as the
    // daemon would at its start: the commands read the current schema.
    let _ = conn.pragma_update(None, "foreign_keys", "ON");
    let version = |c: &rusqlite::Connection| -> i64 {
        c.query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap_or(0)
    };
    let before = version(&conn);
    super::store::upgrade(&mut conn, &db).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::FAILURE
    })?;
    let after = version(&conn);
    if after != before {
        // Said, because an older complyd cannot open it any more.
        eprintln!(
            "note: {}: upgraded from schema {before} to {after} (as the daemon does at start)",
            db.display()
        );
    }
    Ok(conn)
}

/// Prints a command's output (exit 0) or its error (exit 2).
fn finish(result: Result<String, String>) -> ExitCode {
    match result {
        Ok(s) => {
            print!("{s}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// `complyd outbox …`.
pub fn outbox(config: Option<&Path>, command: OutboxCommand, color: bool) -> ExitCode {
    use super::outbox_cli as o;
    let cfg = match load_config(config, color) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let conn = match open_db(&cfg) {
        Ok(c) => c,
        Err(code) => return code,
    };
    finish(match command {
        OutboxCommand::List { failed, limit } => {
            o::list(&conn, failed, limit, cfg.calendar.time_zone())
        }
        OutboxCommand::Retry {
            ids,
            all_failed,
            to,
        } => {
            let which = if all_failed {
                o::Which::AllFailed
            } else {
                o::Which::Ids(ids)
            };
            o::retry(&conn, &which, &to)
        }
    })
}

/// `complyd violations …`.
pub fn violations(config: Option<&Path>, command: ViolationsCommand, color: bool) -> ExitCode {
    use super::violations as v;
    let cfg = match load_config(config, color) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let conn = match open_db(&cfg) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let tz = cfg.calendar.time_zone().clone();
    let now = jiff::Timestamp::now();
    let result: Result<String, String> = match command {
        ViolationsCommand::List {
            status,
            rule,
            limit,
        } => v::list(&conn, status.as_deref(), rule.as_deref(), limit, &tz)
            .map_err(|e| e.to_string()),
        ViolationsCommand::Show { violation } => v::show(&conn, &violation, &tz),
        ViolationsCommand::Ack {
            violation,
            by,
            note,
        } => v::set_status(&conn, &violation, v::ACK, &by, note.as_deref(), now)
            .map(|id| format!("#{id} acknowledged\n")),
        ViolationsCommand::Resolve {
            violation,
            by,
            note,
        } => v::set_status(&conn, &violation, v::RESOLVED, &by, note.as_deref(), now)
            .map(|id| format!("#{id} resolved\n")),
        ViolationsCommand::Waive {
            violation,
            rule,
            path,
            subject,
            reason,
            by,
            expires,
        } => {
            let target = match (violation, rule, path, subject) {
                (Some(which), None, None, None) => Ok(v::WaiveTarget::Violation(which)),
                (None, Some(rule), Some(glob), None) => Ok(v::WaiveTarget::Path { rule, glob }),
                (None, Some(rule), None, Some(subject)) => {
                    Ok(v::WaiveTarget::Subject { rule, subject })
                }
                _ => Err(
                    "give a violation (#id or fingerprint), or --rule with --path or --subject"
                        .to_string(),
                ),
            };
            // A scope names its rule: one the rules do not have would
            // waive nothing, silently (waivers.yaml refuses it too).
            let rule =
                match &target {
                    Ok(
                        v::WaiveTarget::Path { rule, .. } | v::WaiveTarget::Subject { rule, .. },
                    ) if rule != "*" => Some(rule.clone()),
                    _ => None,
                };
            if let Some(rule) = rule {
                let dir = cfg.daemon.rules.clone().unwrap_or_else(|| rules_dir(None));
                match crate::rules::load(&dir) {
                    Ok(set) if set.rules.iter().any(|r| r.meta.id == rule) => {}
                    Ok(_) => {
                        return finish(Err(format!(
                            "no rule `{rule}` in {}: a waiver of it would waive nothing",
                            dir.display()
                        )));
                    }
                    Err(e) => {
                        eprint!("{}", e.render(color));
                        return ExitCode::from(EXIT_CONFIG);
                    }
                }
            }
            target
                .and_then(|t| v::waive(&conn, &t, &reason, &by, expires.as_deref(), &tz, now))
                .map(|(id, n)| match n {
                    0 => format!("waiver #{id} added\n"),
                    n => format!(
                        "waiver #{id} added; {n} violation(s) found before it are waived now \
                         (their queued mail is not sent)\n"
                    ),
                })
        }
        ViolationsCommand::Waivers { rules } => {
            let dir = rules
                .or(cfg.daemon.rules.clone())
                .unwrap_or_else(|| rules_dir(None));
            match crate::rules::load(&dir) {
                Ok(set) => v::waivers(&conn, &set.waivers, now, &tz),
                Err(e) => {
                    eprint!("{}", e.render(color));
                    return ExitCode::from(EXIT_CONFIG);
                }
            }
        }
    };
    finish(result)
}

/// `complyd run`: the daemon, or with `--once` one catch-up pass.
pub fn run(config: Option<PathBuf>, rules: Option<PathBuf>, once: bool, color: bool) -> ExitCode {
    super::logging::init(None);
    let rules_from_cli = rules.is_some();
    let (cfg, dir, set) = match load(config.as_deref(), rules, color) {
        Ok(v) => v,
        Err(code) => return code,
    };
    super::logging::set_time_zone(cfg.calendar.time_zone());
    // Logged at start, and again by each reload (daemon::run).
    for w in cfg
        .warnings(jiff::Timestamp::now())
        .iter()
        .chain(&set.warnings)
    {
        tracing::warn!("{}", w.header());
    }
    let mut opts = RunOptions::new(cfg, config, dir);
    opts.rules_from_cli = rules_from_cli;
    opts.notifier = Notifier::from_env();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        // Threads for blocking work (file reads, the core's join) are not
        // kept waiting 10 s after each use: an idle daemon holds none.
        .thread_keep_alive(std::time::Duration::from_secs(1))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if once {
        return match run::run_once(&opts, set, jiff::Timestamp::now()) {
            Ok(summary) => {
                eprintln!("{summary}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    rt.block_on(daemon(opts, set))
}

async fn daemon(opts: RunOptions, set: RuleSet) -> ExitCode {
    use tokio::signal::unix::{SignalKind, signal};
    let notifier = opts.notifier.clone();
    let deadline = opts.shutdown_deadline;
    let watched = reload_paths(&opts);
    let handle = match run::start(opts, set, Arc::new(SystemClock)).await {
        Ok(h) => h,
        Err(e) => {
            tracing::error!("cannot start: {e}");
            return match e {
                run::RunError::Config(_) => ExitCode::from(EXIT_CONFIG),
                _ => ExitCode::FAILURE,
            };
        }
    };
    let (Ok(mut hup), Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::hangup()),
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return ExitCode::FAILURE;
    };
    // Edits to the rules or the configuration reload like SIGHUP does.
    let (ctx, mut changed) = tokio::sync::mpsc::channel::<()>(1);
    let _rules_watcher = super::reload::watch(&watched, ctx);
    tracing::info!(
        "started{}",
        if handle.polling {
            " (polling the folders)"
        } else {
            ""
        }
    );
    let _ = notifier.ready();
    let _ = notifier.status("running");
    loop {
        tokio::select! {
            _ = hup.recv() => {}
            Some(()) = changed.recv() => {}
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
        let _ = notifier.reloading();
        match handle.reload().await {
            Ok(()) => {
                let _ = notifier.status("running; rules reloaded");
            }
            Err(_) => {
                let _ = notifier.status("running with the previous rules: the reload found errors");
            }
        }
        let _ = notifier.ready();
    }
    tracing::info!("stopping");
    let _ = notifier.stopping();
    match tokio::time::timeout(deadline, handle.shutdown()).await {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            tracing::error!("shutdown: {e}");
            ExitCode::FAILURE
        }
        Err(_) => {
            tracing::error!("shutdown took longer than {deadline:?}; exiting");
            ExitCode::FAILURE
        }
    }
}

/// The files whose edits trigger a reload: the rules folder and the
/// configuration file.
fn reload_paths(opts: &RunOptions) -> Vec<PathBuf> {
    let mut v = vec![opts.rules_dir.clone()];
    v.extend(opts.config_path.clone());
    // Edited templates reload (and are checked) like an edited configuration.
    v.extend(opts.config.daemon.mail.templates.dir());
    v
}
