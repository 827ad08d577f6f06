//! The `mail:` section of the configuration: addresses, the SMTP server
//! and its password (from a file or a systemd credential, never from the
//! YAML), groups and routes, reminders, the language and the templates.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::diag::{Code, Diagnostic, Pos};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMail {
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

impl RawMail {
    /// Where a refused `password:` value is, to mask it in snippets.
    pub(super) fn password_span(&self) -> Option<serde_saphyr::Span> {
        Some(self.smtp.as_ref()?.password.as_ref()?.referenced.span())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSmtp {
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

/// Reads `mail:` into `c` (which holds the defaults).
pub(super) fn section(
    path: &Path,
    base: &Path,
    m: &RawMail,
    c: &mut MailConfig,
    diags: &mut Vec<Diagnostic>,
    sources: &mut HashMap<PathBuf, String>,
) {
    if let Some(d) = &m.dir {
        c.dir = base.join(&d.value);
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
        c.from = address(f);
    }
    if !m.to.is_empty() {
        c.to = m.to.iter().map(&mut address).collect();
    }
    let groups = m
        .groups
        .iter()
        .map(|(name, list)| (name.clone(), list.iter().map(&mut address).collect()))
        .collect();
    if let Some(s) = &m.smtp {
        c.smtp = smtp_section(path, base, s, diags);
    }
    c.routing = crate::daemon::route::build(path, groups, &m.routes, &m.config_errors, diags);
    if let Some(n) = &m.remind_after {
        if n.value == 0 {
            diags.push(Diagnostic::new(
                path,
                Pos::from(&n.referenced),
                Code::InvalidValue,
                "remind_after counts working days: 1 or more",
            ));
        }
        c.remind_after = Some(n.value);
    }
    c.templates = templates(path, base, m, &c.routing, diags, sources);
}

/// `mail.language`, the routes' languages and `mail.templates`, compiled
/// and checked against sample mails.
fn templates(
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
    use super::super::load;
    use super::*;

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
        assert_eq!(lines, [5, 6, 7, 8], "in file order: {err}");
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
                (2, Code::InvalidValue),
                (5, Code::InvalidValue),
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
