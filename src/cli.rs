//! Command-line interface. Exit codes: 0 clean, 1 findings (or failed
//! examples), 2 usage error, 78 (EX_CONFIG) invalid rules.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::extract::Limits;
use crate::finding::{Format, write_human, write_json};
use crate::rules::{self, RuleSet};
use crate::scan::{ScanOptions, ScanSummary, collect_files, scan};

pub const EXIT_FINDINGS: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_CONFIG: u8 = 78;

/// Environment variable naming the rules directory.
pub const RULES_ENV: &str = "COMPLYD_RULES";
/// Where an installed complyd keeps its rules.
pub const INSTALLED_RULES: &str = "/etc/complyd/rules";

#[derive(Debug, Parser)]
#[command(
    name = "complyd",
    version,
    about = "Compliance checker for health-product content and customer service"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Colour output: auto (when writing to a terminal), always, never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LangArg {
    Zh,
    En,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatArg {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check files and folders against the rules.
    Scan {
        /// Rules directory (default: $COMPLYD_RULES, /etc/complyd/rules, ./rules).
        #[arg(long, value_name = "DIR")]
        rules: Option<PathBuf>,
        /// Output format: human (compiler-style lines) or json (one object per line).
        #[arg(long, value_enum, default_value_t = FormatArg::Human)]
        format: FormatArg,
        /// Files larger than this are reported as not checked: bytes, or
        /// with K, M, G (1024s) or KB, MB, GB (1000s), e.g. 20MiB.
        #[arg(long, value_name = "SIZE", default_value = "20MiB", value_parser = crate::extract::parse_size)]
        max_file_size: u64,
        /// Also check hidden files and folders (names starting with '.').
        #[arg(long)]
        hidden: bool,
        /// The name findings give standard input (`-`); its extension
        /// chooses the format, as a file's does (default: plain text).
        #[arg(long, value_name = "NAME", default_value = "<stdin>")]
        stdin_name: PathBuf,
        /// Files or folders to check; `-` reads standard input.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Evaluate activity logs as the daemon would, with the clock at --now.
    Replay {
        /// Rules directory (default: $COMPLYD_RULES, /etc/complyd/rules, ./rules).
        #[arg(long, value_name = "DIR")]
        rules: Option<PathBuf>,
        /// Configuration file (its `calendar:` section: time zone, working hours, holidays).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// The replayed clock: an RFC 3339 time with offset, e.g. 2026-03-02T18:00:00+08:00.
        #[arg(long, value_name = "RFC3339")]
        now: String,
        /// Output format: human or json (one object per line).
        #[arg(long, value_enum, default_value_t = FormatArg::Human)]
        format: FormatArg,
        /// How far out of timestamp order an event may be written and still be
        /// evaluated in order (e.g. 5m, 1h).
        #[arg(long, value_name = "DURATION", default_value = "5m")]
        allowed_lateness: String,
        /// Activity logs (JSON Lines).
        #[arg(required = true, value_name = "LOG")]
        logs: Vec<PathBuf>,
    },
    /// Run the daemon: watch the folders, tail the logs, fire deadlines, mail violations.
    /// Without --config it runs on the shipped examples (state and mail under ./var).
    Run {
        /// Configuration file (see examples/complyd.yaml).
        #[arg(long, value_name = "FILE", env = "COMPLYD_CONFIG")]
        config: Option<PathBuf>,
        /// Rules directory (default: the configuration's `rules:`, $COMPLYD_RULES, /etc/complyd/rules, ./rules).
        #[arg(long, value_name = "DIR")]
        rules: Option<PathBuf>,
        /// One pass (folders, logs to their end, due deadlines, mail), then exit.
        #[arg(long)]
        once: bool,
    },
    /// Validate the configuration and the rules (exit 0, or 78 with every error).
    Check {
        #[arg(long, value_name = "FILE", env = "COMPLYD_CONFIG")]
        config: Option<PathBuf>,
        #[arg(long, value_name = "DIR")]
        rules: Option<PathBuf>,
    },
    /// Show the daemon's state: sources, open obligations, outbox, recent errors.
    Status {
        #[arg(long, value_name = "FILE", env = "COMPLYD_CONFIG")]
        config: Option<PathBuf>,
    },
    /// List, inspect, acknowledge, resolve and waive stored violations.
    Violations {
        #[arg(long, value_name = "FILE", env = "COMPLYD_CONFIG", global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: ViolationsCommand,
    },
    /// List the mail queued and sent, and send again messages that failed for good.
    Outbox {
        #[arg(long, value_name = "FILE", env = "COMPLYD_CONFIG", global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: OutboxCommand,
    },
    /// Write the built-in mail templates to DIR, to edit them there; then set
    /// `mail.templates: DIR` in the configuration (see docs/mail.md).
    Templates {
        /// Only this language's files, in DIR/zh or DIR/en (default: both).
        #[arg(long, value_enum)]
        language: Option<LangArg>,
        /// Overwrite files that exist (otherwise nothing is written).
        #[arg(long)]
        force: bool,
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// Work with rule packs.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum ViolationsCommand {
    /// One line per violation, newest first.
    List {
        /// Only this status.
        #[arg(long, value_parser = ["open", "acked", "resolved", "waived", "fixed", "late", "retracted"])]
        status: Option<String>,
        #[arg(long)]
        rule: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Everything stored about one violation (#id or fingerprint).
    Show { violation: String },
    /// Acknowledge: seen, being handled.
    Ack {
        violation: String,
        #[arg(long)]
        by: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// Resolve: handled.
    Resolve {
        violation: String,
        #[arg(long)]
        by: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// Waive one violation (and its fingerprint from now on), or a scope:
    /// --rule with --path GLOB or --subject.
    Waive {
        /// #id or fingerprint of a stored violation.
        violation: Option<String>,
        /// With --path or --subject: the rule (or `*`).
        #[arg(long)]
        rule: Option<String>,
        #[arg(long, conflicts_with_all = ["violation", "subject"])]
        path: Option<String>,
        #[arg(long, conflicts_with_all = ["violation", "path"])]
        subject: Option<String>,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        by: String,
        /// Last day it applies (2026-12-31) or an RFC 3339 instant.
        #[arg(long)]
        expires: Option<String>,
    },
    /// Every waiver with its use count; unused and expired ones are marked.
    Waivers {
        /// Rules directory holding waivers.yaml (default: as for `run`).
        #[arg(long, value_name = "DIR")]
        rules: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// One line per message (a digest's rows together), newest first.
    List {
        /// Only messages that failed for good or were rejected for some recipients.
        #[arg(long)]
        failed: bool,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Queue messages that failed for good again (e.g. after fixing an address); a running
    /// daemon sends them within 10 s.
    Retry {
        /// Message ids as `complyd outbox list` shows them (#12 or 12); a digest goes whole.
        #[arg(value_name = "ID", required_unless_present = "all_failed")]
        ids: Vec<String>,
        /// Every message that failed for good or was rejected for some recipients.
        #[arg(long, conflicts_with = "ids")]
        all_failed: bool,
        /// Send to these addresses instead of the message's own recipients.
        #[arg(long, value_name = "ADDRESS")]
        to: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
enum RulesCommand {
    /// Report every error in every rule file.
    Validate {
        /// Rules directory or file (default: $COMPLYD_RULES, /etc/complyd/rules, ./rules).
        dir: Option<PathBuf>,
    },
    /// Run every rule's examples (texts to flag, texts to pass).
    Test {
        /// Rules directory or file (default: $COMPLYD_RULES, /etc/complyd/rules, ./rules).
        dir: Option<PathBuf>,
    },
}

/// The rules directory: `--rules`, then $COMPLYD_RULES, then the install
/// location, then ./rules.
pub fn rules_dir(explicit: Option<PathBuf>) -> PathBuf {
    if let Some(p) = explicit {
        return p;
    }
    if let Some(p) = std::env::var_os(RULES_ENV).filter(|v| !v.is_empty()) {
        return PathBuf::from(p);
    }
    let installed = Path::new(INSTALLED_RULES);
    if installed.is_dir() {
        return installed.to_path_buf();
    }
    PathBuf::from("rules")
}

fn use_color(choice: ColorChoice, stream_is_terminal: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => stream_is_terminal && std::env::var_os("NO_COLOR").is_none(),
    }
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    let err_color = use_color(cli.color, std::io::stderr().is_terminal());
    let out_color = use_color(cli.color, std::io::stdout().is_terminal());
    match cli.command {
        Command::Scan {
            rules,
            format,
            max_file_size,
            hidden,
            stdin_name,
            paths,
        } => {
            let Some(set) = load_rules(&rules_dir(rules), err_color) else {
                return ExitCode::from(EXIT_CONFIG);
            };
            let format = match format {
                FormatArg::Human => Format::Human,
                FormatArg::Json => Format::Json,
            };
            let opts = ScanOptions {
                limits: Limits {
                    max_file_bytes: max_file_size,
                    ..Limits::default()
                },
                hidden,
                stdin_name,
            };
            run_scan(&set, &paths, &opts, format, out_color)
        }
        Command::Replay {
            rules,
            config,
            now,
            format,
            allowed_lateness,
            logs,
        } => {
            let lateness = match rules::cond::parse_duration(&allowed_lateness)
                .map_err(|e| e.to_string())
                .and_then(crate::replay::check_lateness)
            {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("error: --allowed-lateness: {e}");
                    return ExitCode::from(EXIT_USAGE);
                }
            };
            let now = match now.parse::<jiff::Timestamp>() {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("error: --now {now:?} is not an RFC 3339 time with offset: {e}");
                    return ExitCode::from(EXIT_USAGE);
                }
            };
            let Some(set) = load_rules(&rules_dir(rules), err_color) else {
                return ExitCode::from(EXIT_CONFIG);
            };
            let calendar = match config.as_deref().map(crate::config::load) {
                None => crate::calendar::Calendar::default(),
                Some(Ok(c)) => c.calendar,
                Some(Err(e)) => {
                    eprint!("{}", e.render_as(err_color, "the configuration"));
                    return ExitCode::from(EXIT_CONFIG);
                }
            };
            run_replay(&set, calendar, &logs, now, lateness, format)
        }
        Command::Run {
            config,
            rules,
            once,
        } => crate::daemon::cmd::run(config, rules, once, err_color),
        Command::Check { config, rules } => {
            crate::daemon::cmd::check(config.as_deref(), rules, err_color)
        }
        Command::Status { config } => crate::daemon::cmd::status(config.as_deref(), err_color),
        Command::Violations { config, command } => {
            crate::daemon::cmd::violations(config.as_deref(), command, err_color)
        }
        Command::Outbox { config, command } => {
            crate::daemon::cmd::outbox(config.as_deref(), command, err_color)
        }
        Command::Templates {
            language,
            force,
            dir,
        } => {
            use crate::daemon::mail::Lang;
            let lang = language.map(|l| match l {
                LangArg::Zh => Lang::Zh,
                LangArg::En => Lang::En,
            });
            match crate::daemon::mail::export_templates(&dir, lang, force) {
                Ok(files) => {
                    for f in &files {
                        println!("wrote {}", f.display());
                    }
                    println!(
                        "edit them, then set `mail.templates: {}` and run `complyd check`",
                        dir.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Rules {
            command: RulesCommand::Validate { dir },
        } => {
            let dir = rules_dir(dir);
            match load_rules(&dir, err_color) {
                Some(set) => {
                    eprint!("{}", set.render_warnings(err_color));
                    eprintln!(
                        "{}: {} rule{} in {} pack{}, all valid",
                        dir.display(),
                        set.rules.len(),
                        if set.rules.len() == 1 { "" } else { "s" },
                        set.files.len(),
                        if set.files.len() == 1 { "" } else { "s" }
                    );
                    ExitCode::SUCCESS
                }
                None => ExitCode::from(EXIT_CONFIG),
            }
        }
        Command::Rules {
            command: RulesCommand::Test { dir },
        } => {
            let Some(set) = load_rules(&rules_dir(dir), err_color) else {
                return ExitCode::from(EXIT_CONFIG);
            };
            let report = crate::ruletest::run(&set);
            let mut err = std::io::stderr().lock();
            for f in &report.failures {
                let src = std::fs::read_to_string(&f.path).ok();
                let _ = write!(err, "{}", f.render(src.as_deref(), err_color));
            }
            let _ = writeln!(
                err,
                "{} rules, {} examples: {} passed, {} failed",
                report.rules,
                report.examples,
                report.examples - report.failures.len(),
                report.failures.len()
            );
            if report.failures.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_FINDINGS)
            }
        }
    }
}

fn load_rules(dir: &Path, color: bool) -> Option<RuleSet> {
    match rules::load(dir) {
        Ok(set) => Some(set),
        Err(e) => {
            eprint!("{}", e.render(color));
            if !dir.exists() {
                // Most often a creator running scan outside the checkout.
                eprintln!(
                    "hint: the rules are looked for in --rules DIR, then ${RULES_ENV}, then \
                     {INSTALLED_RULES}, then ./rules; none of them was there (tried {})",
                    dir.display()
                );
            }
            None
        }
    }
}

fn run_scan(
    set: &RuleSet,
    paths: &[PathBuf],
    opts: &ScanOptions,
    format: Format,
    color: bool,
) -> ExitCode {
    let mut summary = ScanSummary::default();
    // A path that is not there is reported, and the others are still
    // checked (as ripgrep does); the exit code says so at the end.
    let (files, missing) = collect_files(paths, opts, &mut summary);
    for msg in &missing {
        eprintln!("error: {msg}");
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut write_failed = false;
    scan(set, &files, opts, &mut summary, &mut |f| {
        let r = match format {
            Format::Human => write_human(&mut out, f, color),
            Format::Json => write_json(&mut out, f),
        };
        write_failed |= r.is_err();
    });
    let _ = out.flush();
    drop(out);
    eprintln!("{}", summary.render());
    if write_failed {
        eprintln!("error: could not write all findings to standard output");
        return ExitCode::from(EXIT_USAGE);
    }
    if !missing.is_empty() {
        return ExitCode::from(EXIT_USAGE);
    }
    if summary.findings > 0 {
        ExitCode::from(EXIT_FINDINGS)
    } else {
        ExitCode::SUCCESS
    }
}

fn run_replay(
    set: &RuleSet,
    calendar: crate::calendar::Calendar,
    logs: &[PathBuf],
    now: jiff::Timestamp,
    lateness: jiff::SignedDuration,
    format: FormatArg,
) -> ExitCode {
    // A folder stands for the logs in it (*.jsonl, *.ndjson, *.json, *.log).
    let mut files = Vec::new();
    for log in logs {
        if log.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(log)
                .into_iter()
                .flatten()
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.is_file()
                        && p.extension().is_some_and(|e| {
                            ["jsonl", "ndjson", "json", "log"].iter().any(|x| e == *x)
                        })
                })
                .collect();
            inside.sort();
            if inside.is_empty() {
                eprintln!(
                    "error: {}: no log files (*.jsonl, *.ndjson, *.json, *.log) in this folder",
                    log.display()
                );
                return ExitCode::from(EXIT_USAGE);
            }
            files.extend(inside);
        } else if log.exists() {
            files.push(log.clone());
        } else {
            eprintln!("error: {}: no such file", log.display());
            return ExitCode::from(EXIT_USAGE);
        }
    }
    let logs = &files[..];
    let env = crate::engine::Env {
        calendar,
        lists: set.lists.clone(),
    };
    for w in env.calendar.warnings(now) {
        eprintln!("warning: {w}");
    }
    // Printed in time order at the end: a deadline's violation is final
    // only once its late discharge or the wait for one is over, up to 30
    // days of log later than the events around it.
    let mut found: Vec<crate::replay::Reported> = Vec::new();
    let outcome = crate::replay::replay(set, &env, logs, now, lateness, &mut |r| found.push(r));
    found.sort_by_key(|r| r.instant);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut write_failed = false;
    for r in &found {
        let result = match format {
            FormatArg::Human => crate::replay::write_human(&mut out, r),
            FormatArg::Json => serde_json::to_writer(&mut out, r)
                .map_err(std::io::Error::other)
                .and_then(|()| writeln!(out)),
        };
        write_failed |= result.is_err();
    }
    let _ = out.flush();
    drop(out);
    for m in &outcome.malformed {
        eprintln!("{m}");
    }
    for (path, why) in &outcome.unreadable {
        eprintln!("{}: cannot read: {why}", path.display());
    }
    eprintln!(
        "{} events replayed ({} malformed line{}, {} after --now skipped, {} too late to reorder, {} withdrawn as logged late); {} violation{}",
        outcome.events,
        outcome.malformed.len(),
        if outcome.malformed.len() == 1 {
            ""
        } else {
            "s"
        },
        outcome.future_events,
        outcome.too_late,
        outcome.retracted,
        outcome.violations,
        if outcome.violations == 1 { "" } else { "s" }
    );
    if write_failed {
        eprintln!("error: could not write all violations to standard output");
        return ExitCode::from(EXIT_USAGE);
    }
    // Unread input is never a clean bill: like `scan`'s not-checked files,
    // malformed lines and unreadable logs make the run report findings.
    if outcome.violations == 0 && outcome.malformed.is_empty() && outcome.unreadable.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FINDINGS)
    }
}
