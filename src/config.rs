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
//! max_file_size: 20971520          # bytes; larger files are reported not checked
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
    max_file_size: Option<u64>,
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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMail {
    #[serde(default)]
    dir: Option<Spanned<String>>,
    #[serde(default)]
    from: Option<Spanned<String>>,
    #[serde(default)]
    to: Vec<Spanned<String>>,
    #[serde(default)]
    smtp: Option<RawSmtp>,
    #[serde(default)]
    groups: std::collections::BTreeMap<String, Vec<Spanned<String>>>,
    #[serde(default)]
    routes: Vec<crate::daemon::route::RawRoute>,
    #[serde(default)]
    config_errors: Vec<Spanned<String>>,
    #[serde(default)]
    remind_after: Option<Spanned<u32>>,
    #[serde(default)]
    language: Option<Spanned<String>>,
    #[serde(default)]
    templates: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSmtp {
    host: Spanned<String>,
    #[serde(default)]
    port: Option<Spanned<u16>>,
    #[serde(default)]
    security: Option<Spanned<String>>,
    #[serde(default)]
    username: Option<Spanned<String>>,
    #[serde(default)]
    password_file: Option<Spanned<String>>,
    #[serde(default)]
    password_credential: Option<Spanned<String>>,
    /// Refused with its own message (and masked in the diagnostic's
    /// snippet): the password never lives in the YAML.
    #[serde(default)]
    password: Option<Spanned<serde::de::IgnoredAny>>,
    #[serde(default)]
    ca_file: Option<Spanned<String>>,
    #[serde(default)]
    timeout: Option<Spanned<String>>,
    #[serde(default)]
    hello_name: Option<Spanned<String>>,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub calendar: Calendar,
    pub daemon: DaemonConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            calendar: Calendar::default(),
            daemon: DaemonConfig::first_run(Path::new(".")),
        }
    }
}

/// A watched content folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchDir {
    pub path: PathBuf,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

/// Where violation mail goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailConfig {
    /// The folder .eml files are written to (the file transport).
    pub dir: PathBuf,
    pub from: String,
    pub to: Vec<String>,
    /// Deliver by SMTP instead of writing files.
    pub smtp: Option<SmtpConfig>,
    /// Recipient groups and routes; without routes everything goes to `to`.
    pub routing: crate::daemon::route::Routing,
    /// A reminder for a violation still open this many working days after
    /// it was reported.
    pub remind_after: Option<u32>,
    /// The mail's language (`mail.language`, each route's `language`) and
    /// templates (built-in, or from `mail.templates`), compiled and checked.
    pub templates: crate::daemon::mail::Templates,
}

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain connection, then STARTTLS — required: a server that does not
    /// offer it is an error, never a fallback to plain text.
    StartTls,
    /// TLS from the first byte (SMTPS, port 465).
    Tls,
    /// No encryption (a relay on localhost).
    None,
}

impl SmtpSecurity {
    pub fn as_str(self) -> &'static str {
        match self {
            SmtpSecurity::StartTls => "starttls",
            SmtpSecurity::Tls => "tls",
            SmtpSecurity::None => "none",
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            SmtpSecurity::StartTls => 587,
            SmtpSecurity::Tls => 465,
            SmtpSecurity::None => 25,
        }
    }
}

/// A secret read from a file: `Debug` prints `***`, and there is no
/// `Display`, so it cannot end up in a log line or an error by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Secret {
        Secret(s)
    }

    /// The secret itself, for the one place that needs it (AUTH).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// The `mail.smtp` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    /// With `password`: AUTH (PLAIN or LOGIN, as the server offers).
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// An extra trusted root, PEM (a private CA or a self-signed server);
    /// the system roots stay trusted.
    pub ca_file: Option<PathBuf>,
    pub ca_pem: Option<Vec<u8>>,
    pub timeout: Duration,
    /// The EHLO name; default: this machine's host name.
    pub hello_name: Option<String>,
}

impl SmtpConfig {
    /// A plain connection to `host:port`, no AUTH, default timeout.
    pub fn new(host: impl Into<String>, port: u16, security: SmtpSecurity) -> SmtpConfig {
        SmtpConfig {
            host: host.into(),
            port,
            security,
            username: None,
            password: None,
            ca_file: None,
            ca_pem: None,
            timeout: DEFAULT_SMTP_TIMEOUT,
            hello_name: None,
        }
    }
}

pub const DEFAULT_SMTP_TIMEOUT: Duration = Duration::from_secs(30);

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
        c
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
    let raw: RawConfig =
        crate::rules::yaml::parse(path, &src).map_err(|d| fail(vec![d], Some(src.clone())))?;
    let mut diags = Vec::new();
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
        Ok(Config { calendar, daemon })
    } else {
        // A `password:` key is refused; its value must not be printed in
        // the diagnostic's snippet either.
        let src = match raw
            .mail
            .as_ref()
            .and_then(|m| m.smtp.as_ref()?.password.as_ref())
        {
            Some(p) => mask(&src, p.referenced.span()),
            None => src,
        };
        let mut err = fail(diags, Some(src));
        err.sources.extend(sources);
        Err(err)
    }
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

/// Reads a password file: the first line, without its line break (an
/// editor's trailing newline is not part of the password).
fn read_password(p: &Path) -> Result<Secret, String> {
    let s = std::fs::read_to_string(p).map_err(|e| {
        format!(
            "cannot read the password file {}: {}",
            p.display(),
            crate::rules::compile::io_reason(&e)
        )
    })?;
    let s = s.lines().next().unwrap_or_default();
    if s.is_empty() {
        return Err(format!("the password file {} is empty", p.display()));
    }
    Ok(Secret(s.to_string()))
}

fn smtp_section(
    path: &Path,
    base: &Path,
    s: &RawSmtp,
    diags: &mut Vec<Diagnostic>,
) -> Option<SmtpConfig> {
    let before = diags.len();
    let mut invalid = |pos: &serde_saphyr::Location, msg: String| {
        diags.push(Diagnostic::new(
            path,
            Pos::from(pos),
            Code::InvalidValue,
            msg,
        ));
    };
    let host = s.host.value.trim().to_string();
    if host.is_empty() {
        invalid(&s.host.referenced, "`host` is empty".into());
    }
    let security = match s.security.as_ref() {
        None => SmtpSecurity::StartTls,
        Some(v) => match v.value.as_str() {
            "starttls" => SmtpSecurity::StartTls,
            "tls" => SmtpSecurity::Tls,
            "none" => SmtpSecurity::None,
            other => {
                invalid(
                    &v.referenced,
                    format!("unknown security `{other}`: write starttls, tls or none"),
                );
                SmtpSecurity::StartTls
            }
        },
    };
    let port = match &s.port {
        Some(p) if p.value == 0 => {
            invalid(&p.referenced, "port 0 is not a port".into());
            0
        }
        Some(p) => p.value,
        None => security.default_port(),
    };
    if let Some(p) = &s.password {
        invalid(
            &p.referenced,
            "the SMTP password may not be written in the configuration: put it in a file \
             readable only by complyd and name that file with `password_file` (or, under \
             systemd, use LoadCredential= and `password_credential`)"
                .into(),
        );
    }
    let password = match (&s.password_file, &s.password_credential) {
        (Some(_), Some(c)) => {
            invalid(
                &c.referenced,
                "`password_file` and `password_credential` both given: name one".into(),
            );
            None
        }
        (Some(f), None) => read_password(&base.join(&f.value))
            .map_err(|e| invalid(&f.referenced, e))
            .ok(),
        (None, Some(c)) => {
            let name = &c.value;
            if name.is_empty() || name.contains('/') || name == "." || name == ".." {
                invalid(&c.referenced, format!("`{name}` is not a credential name"));
                None
            } else {
                match std::env::var_os("CREDENTIALS_DIRECTORY") {
                    Some(dir) => read_password(&Path::new(&dir).join(name))
                        .map_err(|e| invalid(&c.referenced, e))
                        .ok(),
                    None => {
                        invalid(
                            &c.referenced,
                            format!(
                                "`password_credential: {name}` needs $CREDENTIALS_DIRECTORY, which \
                                 systemd sets for a unit with LoadCredential={name}:<file>"
                            ),
                        );
                        None
                    }
                }
            }
        }
        (None, None) => None,
    };
    let username = s.username.as_ref().map(|u| u.value.clone());
    match (
        &s.username,
        s.password_file.as_ref().or(s.password_credential.as_ref()),
    ) {
        (Some(u), None) if s.password.is_none() => invalid(
            &u.referenced,
            "`username` without a password: add `password_file` or `password_credential`".into(),
        ),
        (None, Some(p)) => invalid(
            &p.referenced,
            "a password without `username`: add the user name to log in with".into(),
        ),
        _ => {}
    }
    let (ca_file, ca_pem) = match &s.ca_file {
        Some(f) => {
            let p = base.join(&f.value);
            match std::fs::read(&p) {
                Ok(pem)
                    if String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") =>
                {
                    (Some(p), Some(pem))
                }
                Ok(_) => {
                    invalid(
                        &f.referenced,
                        format!("{}: no PEM certificate in it", p.display()),
                    );
                    (None, None)
                }
                Err(e) => {
                    invalid(
                        &f.referenced,
                        format!(
                            "cannot read {}: {}",
                            p.display(),
                            crate::rules::compile::io_reason(&e)
                        ),
                    );
                    (None, None)
                }
            }
        }
        None => (None, None),
    };
    let timeout = match &s.timeout {
        Some(t) => match crate::rules::cond::parse_duration(&t.value) {
            Ok(d) if d.is_zero() => {
                invalid(&t.referenced, "the timeout must be longer than 0".into());
                DEFAULT_SMTP_TIMEOUT
            }
            Ok(d) => d,
            Err(e) => {
                invalid(&t.referenced, e);
                DEFAULT_SMTP_TIMEOUT
            }
        },
        None => DEFAULT_SMTP_TIMEOUT,
    };
    let hello_name = s.hello_name.as_ref().map(|h| {
        if h.value.is_empty()
            || h.value
                .contains(|c: char| c.is_whitespace() || c.is_control())
        {
            invalid(&h.referenced, format!("`{}` is not a host name", h.value));
        }
        h.value.clone()
    });
    (diags.len() == before).then_some(SmtpConfig {
        host,
        port,
        security,
        username,
        password,
        ca_file,
        ca_pem,
        timeout,
        hello_name,
    })
}

fn daemon_section(
    path: &Path,
    raw: &RawConfig,
    diags: &mut Vec<Diagnostic>,
    sources: &mut HashMap<PathBuf, String>,
) -> DaemonConfig {
    let base = path.parent().unwrap_or(Path::new("."));
    let resolve = |s: &str| base.join(s);
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
    if let Some(d) = duration(&raw.allowed_lateness) {
        c.allowed_lateness = SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX);
    }
    if let Some(n) = raw.max_file_size {
        c.max_file_bytes = n;
    }
    if let Some(m) = &raw.mail {
        if let Some(d) = &m.dir {
            c.mail.dir = resolve(&d.value);
        }
        let mut address = |s: &Spanned<String>| {
            if s.value.parse::<lettre::Address>().is_err() {
                diags.push(Diagnostic::new(
                    path,
                    Pos::from(&s.referenced),
                    Code::InvalidValue,
                    format!("`{}` is not an email address", s.value),
                ));
            }
            s.value.clone()
        };
        if let Some(f) = &m.from {
            c.mail.from = address(f);
        }
        if !m.to.is_empty() {
            c.mail.to = m.to.iter().map(&mut address).collect();
        }
        let groups = m
            .groups
            .iter()
            .map(|(name, list)| (name.clone(), list.iter().map(&mut address).collect()))
            .collect();
        if let Some(s) = &m.smtp {
            c.mail.smtp = smtp_section(path, base, s, diags);
        }
        c.mail.routing =
            crate::daemon::route::build(path, groups, &m.routes, &m.config_errors, diags);
        if let Some(n) = &m.remind_after {
            if n.value == 0 {
                diags.push(Diagnostic::new(
                    path,
                    Pos::from(&n.referenced),
                    Code::InvalidValue,
                    "remind_after counts working days: 1 or more",
                ));
            }
            c.mail.remind_after = Some(n.value);
        }
        c.mail.templates = mail_templates(path, base, m, &c.mail.routing, diags, sources);
    }
    c
}

/// `mail.language`, the routes' languages and `mail.templates`, compiled
/// and checked against sample mails.
fn mail_templates(
    path: &Path,
    base: &Path,
    m: &RawMail,
    routing: &crate::daemon::route::Routing,
    diags: &mut Vec<Diagnostic>,
    sources: &mut HashMap<PathBuf, String>,
) -> crate::daemon::mail::Templates {
    use crate::daemon::mail::{self, Lang};
    let language = match &m.language {
        Some(l) => Lang::parse(&l.value).unwrap_or_else(|| {
            diags.push(Diagnostic::new(
                path,
                Pos::from(&l.referenced),
                Code::InvalidValue,
                format!("unknown language `{}`: write zh or en", l.value),
            ));
            Lang::default()
        }),
        None => Lang::default(),
    };
    let settings = mail::Settings {
        config: path,
        language,
        routes: routing.routes.iter().map(|r| r.language).collect(),
        dir: m
            .templates
            .as_ref()
            .map(|d| (base.join(&d.value), Pos::from(&d.referenced))),
    };
    mail::load_templates(settings, diags, sources)
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
        assert_eq!(err.diagnostics[0].code, Code::UnknownKey, "{err}");
        assert_eq!(err.diagnostics[0].pos.line, 3);
    }

    #[test]
    fn routes_name_existing_groups_severities_and_deliveries() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.yaml");
        std::fs::write(
            &bad,
            "mail:\n  groups:\n    supervision: [a@example.com]\n  routes:\n    - to: [supervison]\n    - {severity: [fatal], to: [supervision], delivery: hourly}\n  config_errors: [admins]\n",
        )
        .unwrap();
        let err = load(&bad).unwrap_err();
        let at: Vec<(u32, &str)> = err
            .diagnostics
            .iter()
            .map(|d| (d.pos.line, d.message.as_str()))
            .collect();
        assert_eq!(at.len(), 4, "{err}");
        assert!(
            at[0].0 == 5 && at[0].1.contains("no group `supervison`"),
            "{err}"
        );
        assert!(
            at.iter().any(|(l, m)| *l == 6 && m.contains("`fatal`")),
            "{err}"
        );
        assert!(
            at.iter().any(|(l, m)| *l == 6 && m.contains("`hourly`")),
            "{err}"
        );
        assert!(
            at.iter()
                .any(|(l, m)| *l == 7 && m.contains("no group `admins`")),
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

    #[test]
    fn the_smtp_section_reads_the_password_from_a_file_and_never_from_the_yaml() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw"), "s3cret-pw\n").unwrap();
        let ok = dir.path().join("ok.yaml");
        std::fs::write(
            &ok,
            "mail:\n  smtp:\n    host: smtp.example.com\n    username: complyd\n    password_file: pw\n",
        )
        .unwrap();
        let s = load(&ok).unwrap().daemon.mail.smtp.unwrap();
        assert_eq!((s.port, s.security), (587, SmtpSecurity::StartTls));
        assert_eq!(s.timeout, DEFAULT_SMTP_TIMEOUT);
        assert_eq!(s.password.as_ref().unwrap().expose(), "s3cret-pw");
        assert!(!format!("{s:?}").contains("s3cret"));

        let tls = dir.path().join("tls.yaml");
        std::fs::write(&tls, "mail: {smtp: {host: h, security: tls}}\n").unwrap();
        assert_eq!(load(&tls).unwrap().daemon.mail.smtp.unwrap().port, 465);

        // A password in the YAML: an error that names password_file, and
        // the value is masked in the rendered snippet.
        let bad = dir.path().join("bad.yaml");
        std::fs::write(
            &bad,
            "mail:\n  smtp:\n    host: h\n    username: u\n    password: hunter2-secret\n    security: ssl\n    port: 0\n    timeout: soon\n",
        )
        .unwrap();
        let err = load(&bad).unwrap_err();
        let lines: Vec<u32> = err.diagnostics.iter().map(|d| d.pos.line).collect();
        assert_eq!(lines, [6, 7, 5, 8], "{err}");
        let text = err.render_as(false, "the configuration");
        assert!(text.contains("password_file"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");

        let both = dir.path().join("both.yaml");
        std::fs::write(
            &both,
            "mail: {smtp: {host: h, username: u, password_file: pw, password_credential: smtp}}\n\
             # unknown keys are refused\n",
        )
        .unwrap();
        assert!(load(&both).is_err());
        let unknown = dir.path().join("unknown.yaml");
        std::fs::write(&unknown, "mail: {smtp: {host: h, passwd: x}}\n").unwrap();
        assert_eq!(
            load(&unknown).unwrap_err().diagnostics[0].code,
            Code::UnknownKey
        );
        let missing = dir.path().join("missing.yaml");
        std::fs::write(
            &missing,
            "mail: {smtp: {host: h, username: u, password_file: nope}}\n",
        )
        .unwrap();
        let err = load(&missing).unwrap_err();
        assert!(
            err.to_string().contains("cannot read the password file"),
            "{err}"
        );
    }

    #[test]
    fn mail_language_and_templates_are_read_and_checked_with_the_configuration() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("tpl/en")).unwrap();
        std::fs::write(dir.path().join("tpl/en/subject.txt"), "{{ v.rule }}\n").unwrap();
        let ok = dir.path().join("ok.yaml");
        std::fs::write(
            &ok,
            "mail:\n  language: en\n  templates: tpl\n  groups: {a: [a@example.com]}\n  \
             routes:\n    - {to: [a], language: zh}\n",
        )
        .unwrap();
        let m = load(&ok).unwrap().daemon.mail;
        assert_eq!(m.templates.language(), crate::daemon::mail::Lang::En);
        assert_eq!(m.templates.dir(), Some(dir.path().join("tpl")));
        assert_eq!(
            m.routing.routes[0].language,
            Some(crate::daemon::mail::Lang::Zh)
        );

        let bad = dir.path().join("bad.yaml");
        std::fs::write(
            &bad,
            "mail:\n  language: fr\n  groups: {a: [a@example.com]}\n  routes:\n    - {to: [a], language: de}\n  templates: nowhere\n",
        )
        .unwrap();
        let err = load(&bad).unwrap_err();
        let at: Vec<(u32, Code)> = err
            .diagnostics
            .iter()
            .map(|d| (d.pos.line, d.code))
            .collect();
        assert_eq!(
            at,
            [
                (5, Code::InvalidValue),
                (2, Code::InvalidValue),
                (6, Code::Unreadable)
            ],
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("unknown language `fr`: write zh or en"),
            "{err}"
        );
    }
}
