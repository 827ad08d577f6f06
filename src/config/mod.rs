//! The configuration file (`complyd.yaml`): the calendar, and what the
//! daemon watches, where it keeps its state and how it mails.
//!
//! ```yaml
//! rules: /etc/complyd/rules        # default: $COMPLYD_RULES, /etc/complyd/rules, ./rules
//! state: /var/lib/complyd          # SQLite database and the default mail folder
//! watch:                           # content drop folders, recursive
//!   - path: /srv/drop
//!     include: ["**/*.docx", "**/*.srt", "**/*.txt", "**/*.post.json"]   # default: everything
//!     exclude: ["archive/**"]      # added to the editor temp files always left out
//! logs: [/var/log/ks/*.jsonl]      # activity logs: paths or globs
//! stable_for: 1s                   # a file is checked once unchanged this long
//! poll: 5s                         # poll instead of inotify (network shares)
//! allowed_lateness: 5m             # reorder window for events written late
//! max_file_size: 20MiB             # larger files are reported not checked (bytes, K/M/G, KB/MB/GB)
//! mail:
//!   dir: /var/lib/complyd/mail     # .eml files, when no SMTP server is configured
//!   from: complyd@example.com
//!   to: [supervision@example.com]
//!   smtp:                          # deliver by SMTP instead of writing .eml files
//!     host: smtp.example.com
//!     port: 587                    # default: 587 starttls, 465 tls, 25 none
//!     security: starttls           # starttls (required) | tls (implicit) | none
//!     username: complyd
//!     password_file: /etc/complyd/smtp-password   # or password_credential: <name>
//!     ca_file: /etc/complyd/ca.pem # extra trusted root (private CA)
//!     timeout: 30s
//!     hello_name: complyd.example.com
//! calendar:
//!   time_zone: Asia/Shanghai
//!   working_hours: [09:00-12:00, 13:30-18:00]
//!   holidays: holidays.yaml        # relative to this file
//! ```
//!
//! Relative paths are read from the configuration file's folder. Errors are
//! reported like rule-file errors (`path:line:col: error[code]`), all of
//! them, and make the commands exit with 78.
//!
//! Without a configuration file the daemon runs on the shipped examples
//! (examples/drop, examples/logs, ./rules, state and mail under ./var), so
//! that a new user's first `complyd run` shows what it does.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::SignedDuration;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::calendar::{Calendar, CalendarSpec};
use crate::diag::{Code, Diagnostic, Pos};
use crate::rules::LoadError;

mod mail;
pub mod paths;

use mail::RawMail;
pub use mail::{DEFAULT_SMTP_TIMEOUT, MailConfig, Secret, SmtpConfig, SmtpSecurity};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    calendar: Option<CalendarSpec>,
    #[serde(default)]
    rules: Option<Spanned<String>>,
    #[serde(default)]
    state: Option<Spanned<String>>,
    #[serde(default)]
    watch: Vec<RawWatch>,
    #[serde(default)]
    logs: Vec<Spanned<String>>,
    #[serde(default)]
    stable_for: Option<Spanned<String>>,
    #[serde(default)]
    poll: Option<Spanned<String>>,
    #[serde(default)]
    allowed_lateness: Option<Spanned<String>>,
    #[serde(default)]
    max_file_size: Option<Spanned<String>>,
    #[serde(default)]
    mail: Option<RawMail>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWatch {
    path: Spanned<String>,
    #[serde(default)]
    include: Vec<Spanned<String>>,
    #[serde(default)]
    exclude: Vec<Spanned<String>>,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub calendar: Calendar,
    pub daemon: DaemonConfig,
    /// What loads but is probably wrong (folders and logs that do not
    /// exist), found when the file was read; see [`Config::warnings`].
    pub path_warnings: Vec<Diagnostic>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            calendar: Calendar::default(),
            daemon: DaemonConfig::first_run(&paths::base_of(Path::new("./complyd.yaml"))),
            path_warnings: Vec::new(),
        }
    }
}

impl Config {
    /// Every warning: the paths' (as loaded) and the holiday data's for
    /// the year of `now` and the next.
    pub fn warnings(&self, now: jiff::Timestamp) -> Vec<Diagnostic> {
        let mut w = self.path_warnings.clone();
        w.extend(paths::holidays(&self.calendar, now));
        w
    }

    /// The warnings as `complyd check` prints them, with snippets (the
    /// file read again: the configuration does not keep its text).
    /// What the configuration names from the rules — the rule ids and tags
    /// of mail routes — must be in them (checked once both are loaded: at
    /// start, by `complyd check`, on reload).
    pub fn check_with_rules(&self, rules: &crate::rules::RuleSet) -> Result<(), LoadError> {
        let diagnostics = self.daemon.mail.routing.unknown_names(rules);
        if diagnostics.is_empty() {
            return Ok(());
        }
        let sources = diagnostics
            .iter()
            .filter_map(|d| Some((d.path.clone(), std::fs::read_to_string(&d.path).ok()?)))
            .collect();
        Err(LoadError {
            diagnostics,
            sources,
        })
    }

    pub fn render_warnings(&self, now: jiff::Timestamp, color: bool) -> String {
        crate::diag::render_reading_files(&self.warnings(now), color)
    }
}

/// A watched content folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchDir {
    pub path: PathBuf,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

/// What the daemon watches and where it keeps its state.
#[derive(Debug, Clone, PartialEq)]
pub struct DaemonConfig {
    /// `None`: the documented lookup (`--rules`, $COMPLYD_RULES, …).
    pub rules: Option<PathBuf>,
    pub state_dir: PathBuf,
    pub watch: Vec<WatchDir>,
    pub logs: Vec<String>,
    pub stable_for: Duration,
    pub poll: Option<Duration>,
    pub allowed_lateness: SignedDuration,
    pub max_file_bytes: u64,
    pub mail: MailConfig,
}

pub const DEFAULT_FROM: &str = "complyd@localhost";
pub const DEFAULT_TO: &str = "supervision@localhost";

impl DaemonConfig {
    /// The defaults without a configuration file: the shipped examples,
    /// relative to `base` (the working directory).
    pub fn first_run(base: &Path) -> DaemonConfig {
        let mut c = DaemonConfig::empty(base.join("var"));
        c.watch.push(WatchDir {
            path: base.join("examples/drop"),
            include: Vec::new(),
            exclude: Vec::new(),
        });
        c.logs
            .push(base.join("examples/logs/*.jsonl").display().to_string());
        c.show_files_relative();
        c
    }

    /// Mail names a file relative to the watched folder it is in.
    fn show_files_relative(&mut self) {
        let roots = self.watch.iter().map(|w| w.path.clone()).collect();
        self.mail.templates.set_watch_roots(roots);
    }

    /// Defaults with a configuration file: nothing watched until named.
    pub fn empty(state_dir: PathBuf) -> DaemonConfig {
        DaemonConfig {
            rules: None,
            mail: MailConfig {
                dir: state_dir.join("mail"),
                from: DEFAULT_FROM.into(),
                to: vec![DEFAULT_TO.into()],
                smtp: None,
                routing: Default::default(),
                remind_after: None,
                templates: Default::default(),
            },
            state_dir,
            watch: Vec::new(),
            logs: Vec::new(),
            stable_for: Duration::from_secs(1),
            poll: None,
            allowed_lateness: crate::replay::DEFAULT_ALLOWED_LATENESS,
            max_file_bytes: crate::extract::Limits::default().max_file_bytes,
        }
    }

    /// The SQLite database.
    pub fn database(&self) -> PathBuf {
        self.state_dir.join("complyd.db")
    }
}

/// Without `state:`: systemd's StateDirectory= (`$STATE_DIRECTORY`, the
/// first of its folders) under the unit, else `var` beside the file.
fn default_state_dir(base: &Path) -> impl FnOnce() -> PathBuf + '_ {
    move || match std::env::var_os("STATE_DIRECTORY").filter(|v| !v.is_empty()) {
        Some(v) => std::env::split_paths(&v)
            .next()
            .unwrap_or_else(|| base.join("var")),
        None => base.join("var"),
    }
}

/// Reads and validates a configuration file.
pub fn load(path: &Path) -> Result<Config, LoadError> {
    let fail = |diagnostics: Vec<Diagnostic>, src: Option<String>| LoadError {
        diagnostics,
        sources: src
            .map(|s| HashMap::from([(path.to_path_buf(), s)]))
            .unwrap_or_default(),
    };
    let src = std::fs::read_to_string(path).map_err(|e| {
        let msg = format!("cannot read: {}", crate::rules::compile::io_reason(&e));
        fail(
            vec![Diagnostic::new(path, Pos::FILE, Code::Unreadable, msg)],
            None,
        )
    })?;
    // Misshapen entries are reported and left out, and what remains is
    // checked too: every error of the file in one run.
    let (raw, mut diags) = crate::rules::yaml::parse_recovering::<RawConfig>(path, &src);
    let Some(raw) = raw else {
        return Err(fail(diags, Some(mask_passwords(&src))));
    };
    let calendar = match &raw.calendar {
        Some(spec) => spec.build(path).unwrap_or_else(|d| {
            diags.extend(d);
            Calendar::default()
        }),
        None => Calendar::default(),
    };
    let mut sources = HashMap::new();
    let daemon = daemon_section(path, &raw, &mut diags, &mut sources);
    if diags.is_empty() {
        let path_warnings = missing_paths(path, &raw);
        Ok(Config {
            calendar,
            daemon,
            path_warnings,
        })
    } else {
        // A `password:` key is refused; its value must not be printed in
        // the diagnostic's snippet either.
        let src = match raw.mail.as_ref().and_then(RawMail::password_span) {
            Some(span) => mask(&src, span),
            None => src,
        };
        // Also where the parse did not keep it (a duplicate key, an entry
        // left out as misshapen): diagnostics are mailed on a reload.
        let src = mask_passwords(&src);
        diags.sort_by(|a, b| {
            (&a.path, a.pos.line, a.pos.column).cmp(&(&b.path, b.pos.line, b.pos.column))
        });
        let mut err = fail(diags, Some(src));
        err.sources.extend(sources);
        Err(err)
    }
}

/// Watched folders and logs named in the file that do not exist.
fn missing_paths(path: &Path, raw: &RawConfig) -> Vec<Diagnostic> {
    let base = &paths::base_of(path);
    let mut w = Vec::new();
    for d in &raw.watch {
        let dir = paths::tidy(&base.join(&d.path.value));
        w.extend(paths::watch_dir(path, Pos::from(&d.path.referenced), &dir));
    }
    for l in &raw.logs {
        let pattern = paths::tidy(&base.join(&l.value)).display().to_string();
        w.extend(paths::log(path, Pos::from(&l.referenced), &pattern));
    }
    w
}

/// `src` with the value of every `password:` key replaced by `*`s, found
/// by text (block or flow style), whatever the parse made of it.
fn mask_passwords(src: &str) -> String {
    const KEY: &str = "password:";
    let mut out = String::with_capacity(src.len());
    for (i, line) in src.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let mut rest = line;
        while let Some(at) = rest.find(KEY) {
            let before = rest[..at].chars().next_back();
            let (head, tail) = rest.split_at(at + KEY.len());
            out.push_str(head);
            if !before.is_none_or(|c| matches!(c, ' ' | '{' | ',' | '-')) {
                rest = tail;
                continue;
            }
            // The value: up to the end of the line, or of a flow entry.
            let end = tail.find([',', '}', '\r']).unwrap_or(tail.len());
            let (value, after) = tail.split_at(end);
            let lead = value.len() - value.trim_start().len();
            out.push_str(&value[..lead]);
            out.extend(value[lead..].chars().map(|_| '*'));
            rest = after;
        }
        out.push_str(rest);
    }
    out
}

/// `src` with the characters of `span` replaced by `*` (line breaks kept).
fn mask(src: &str, span: serde_saphyr::Span) -> String {
    let (start, len) = (span.offset() as usize, span.len().max(1) as usize);
    src.chars()
        .enumerate()
        .map(|(i, c)| {
            if (start..start + len).contains(&i) && c != '\n' && c != '\r' {
                '*'
            } else {
                c
            }
        })
        .collect()
}

fn daemon_section(
    path: &Path,
    raw: &RawConfig,
    diags: &mut Vec<Diagnostic>,
    sources: &mut HashMap<PathBuf, String>,
) -> DaemonConfig {
    let base = &paths::base_of(path);
    let resolve = |s: &str| paths::tidy(&base.join(s));
    let mut invalid = |s: &Spanned<String>, msg: String| {
        diags.push(Diagnostic::new(
            path,
            Pos::from(&s.referenced),
            Code::InvalidValue,
            msg,
        ));
    };
    let state_dir = raw
        .state
        .as_ref()
        .map_or_else(default_state_dir(base), |s| resolve(&s.value));
    let mut c = DaemonConfig::empty(state_dir);
    c.rules = raw.rules.as_ref().map(|s| resolve(&s.value));
    for w in &raw.watch {
        for g in w.include.iter().chain(&w.exclude) {
            if let Err(e) = globset::Glob::new(&g.value) {
                invalid(g, format!("invalid glob `{}`: {e}", g.value));
            }
        }
        c.watch.push(WatchDir {
            path: resolve(&w.path.value),
            include: w.include.iter().map(|s| s.value.clone()).collect(),
            exclude: w.exclude.iter().map(|s| s.value.clone()).collect(),
        });
    }
    for l in &raw.logs {
        if let Err(e) = globset::Glob::new(&l.value) {
            invalid(l, format!("invalid glob `{}`: {e}", l.value));
        }
        c.logs.push(resolve(&l.value).display().to_string());
    }
    let mut duration = |s: &Option<Spanned<String>>| -> Option<Duration> {
        let s = s.as_ref()?;
        crate::rules::cond::parse_duration(&s.value)
            .map_err(|e| invalid(s, e))
            .ok()
    };
    if let Some(d) = duration(&raw.stable_for) {
        c.stable_for = d;
    }
    c.poll = duration(&raw.poll);
    if let Some(s) = &raw.allowed_lateness
        && let Some(d) = duration(&raw.allowed_lateness)
    {
        match crate::replay::check_lateness(d) {
            Ok(d) => c.allowed_lateness = d,
            Err(e) => invalid(s, e),
        }
    }
    if let Some(n) = &raw.max_file_size {
        match crate::extract::parse_size(&n.value) {
            Ok(n) => c.max_file_bytes = n,
            Err(e) => invalid(n, e),
        }
    }
    if let Some(m) = &raw.mail {
        mail::section(path, base, m, &mut c.mail, diags, sources);
    }
    c.show_files_relative();
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_calendar_section_and_reports_errors_at_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("ok.yaml");
        std::fs::write(
            &ok,
            "calendar:\n  working_hours: [09:00-12:00, 13:30-18:00]\n",
        )
        .unwrap();
        let cfg = load(&ok).unwrap();
        assert_eq!(cfg.calendar.working_hours().intervals().len(), 2);

        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, "calendar:\n  time_zone: Mars/Olympus\nmial: {}\n").unwrap();
        let err = load(&bad).unwrap_err();
        // Both: the misshapen key, and what is wrong in the rest.
        let at: Vec<(u32, Code)> = err
            .diagnostics
            .iter()
            .map(|d| (d.pos.line, d.code))
            .collect();
        assert_eq!(
            at,
            [(2, Code::InvalidValue), (3, Code::UnknownKey)],
            "{err}"
        );
    }

    #[test]
    fn the_daemon_section_resolves_paths_and_reports_every_bad_value() {
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("complyd.yaml");
        std::fs::write(
            &ok,
            "state: st\nwatch:\n  - path: drop\n    exclude: [\"archive/**\"]\nlogs: [logs/*.jsonl]\n\
             stable_for: 2s\nallowed_lateness: 1m\nmail: {to: [a@example.com]}\n",
        )
        .unwrap();
        let d = load(&ok).unwrap().daemon;
        assert_eq!(d.state_dir, dir.path().join("st"));
        assert_eq!(d.database(), dir.path().join("st/complyd.db"));
        assert_eq!(d.watch[0].path, dir.path().join("drop"));
        assert_eq!(
            d.logs,
            [dir.path().join("logs/*.jsonl").display().to_string()]
        );
        assert_eq!(d.stable_for, Duration::from_secs(2));
        assert_eq!(d.allowed_lateness, SignedDuration::from_mins(1));
        assert_eq!(d.mail.dir, dir.path().join("st/mail"));
        assert_eq!(d.mail.to, ["a@example.com"]);

        let bad = dir.path().join("bad.yaml");
        std::fs::write(
            &bad,
            "watch:\n  - path: d\n    include: [\"a[\"]\nstable_for: soon\nmail:\n  to: [not-an-address]\n",
        )
        .unwrap();
        let err = load(&bad).unwrap_err();
        let lines: Vec<u32> = err.diagnostics.iter().map(|d| d.pos.line).collect();
        assert_eq!(lines, [3, 4, 6], "{err}");
        assert!(err.diagnostics.iter().all(|d| d.code == Code::InvalidValue));
    }

    /// Misshapen keys (unknown, wrong type) and bad values, in several
    /// sections: all of them in one run, in file order.
    #[test]
    fn every_error_of_a_configuration_is_reported_in_one_run() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.yaml");
        std::fs::write(
            &bad,
            "watch:\n  - path: d\n    includ: [\"*.txt\"]\n  - path: e\n    exclude: [\"a[\"]\n\
             stable_for: soon\npoll: [1s]\nlogz: [x.jsonl]\nmail:\n  to: [not-an-address]\n\
             \x20 smtp:\n    host: h\n    prot: 25\n",
        )
        .unwrap();
        let err = load(&bad).unwrap_err();
        let mut got: Vec<(u32, Code)> = err
            .diagnostics
            .iter()
            .map(|d| (d.pos.line, d.code))
            .collect();
        got.sort_by_key(|g| g.0);
        assert_eq!(
            got,
            [
                (3, Code::UnknownKey),
                (5, Code::InvalidValue),
                (6, Code::InvalidValue),
                (7, Code::WrongType),
                (8, Code::UnknownKey),
                (10, Code::InvalidValue),
                (13, Code::UnknownKey),
            ],
            "{err}"
        );
    }

    /// Every `password:` value is masked in the snippets, also one the
    /// parse did not keep (a duplicate key: a review found the second one
    /// printed as written).
    #[test]
    fn no_password_is_shown_in_a_diagnostic() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.yaml");
        std::fs::write(
            &bad,
            "mail:\n  smtp:\n    host: h\n    password: first-secret\n    password: second-secret\n",
        )
        .unwrap();
        let text = load(&bad)
            .unwrap_err()
            .render_as(false, "the configuration");
        assert!(!text.contains("secret"), "{text}");
        assert!(text.contains("duplicate key"), "{text}");
        assert_eq!(
            mask_passwords(
                "a: {password: x y, b: 1}\r\npassword:\n  - password: z\nmy_password: k\n"
            ),
            "a: {password: ***, b: 1}\r\npassword:\n  - password: *\nmy_password: k\n"
        );
    }

    #[test]
    fn max_file_size_is_bytes_or_a_size_with_its_unit() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.yaml");
        let size = |v: &str| {
            std::fs::write(&f, format!("max_file_size: {v}\n")).unwrap();
            load(&f).map(|c| c.daemon.max_file_bytes)
        };
        assert_eq!(size("20971520").unwrap(), 20 << 20);
        assert_eq!(size("5MiB").unwrap(), 5 << 20);
        assert_eq!(size("\"512 K\"").unwrap(), 512 << 10);
        let err = size("lots").unwrap_err();
        assert_eq!(err.diagnostics[0].code, Code::InvalidValue, "{err}");
        assert_eq!(err.diagnostics[0].pos.line, 1);
        assert!(err.diagnostics[0].message.contains("20MiB"), "{err}");
    }

    #[test]
    fn an_allowed_lateness_past_a_week_is_refused_at_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.yaml");
        std::fs::write(&f, "stable_for: 1s\nallowed_lateness: 100000000w\n").unwrap();
        let err = load(&f).unwrap_err();
        assert_eq!(err.diagnostics[0].pos.line, 2, "{err}");
        assert!(err.diagnostics[0].message.contains("7d"), "{err}");
        std::fs::write(&f, "allowed_lateness: 2d\n").unwrap();
        assert_eq!(
            load(&f).unwrap().daemon.allowed_lateness,
            SignedDuration::from_hours(48)
        );
    }
}

#[cfg(test)]
mod recovery {
    use super::*;

    /// A forgotten `-` under `watch:` is one mistake, reported once.
    #[test]
    fn a_forgotten_dash_is_one_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.yaml");
        std::fs::write(
            &p,
            "watch:\n  path: d\n  include: [\"*.txt\"]\n  exclude: [\"*.tmp\"]\n",
        )
        .unwrap();
        let err = load(&p).unwrap_err();
        assert_eq!(err.diagnostics.len(), 1, "{err}");
    }
}
