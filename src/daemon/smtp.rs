//! Where the mailer hands a message: the `.eml` folder (the default) or an
//! SMTP server (`mail.smtp`).
//!
//! SMTP goes through lettre's pooled async transport with a pool of ONE
//! connection: a burst of messages is sent one after the other over the
//! same connection (checked with NOOP before each reuse, reopened when the
//! server closed it). STARTTLS is required when configured — a server that
//! does not offer it is an error, never a silent fallback to plain text.
//!
//! Errors are classified for the outbox:
//! - a 5xx answer (any command: AUTH 535, MAIL, RCPT, DATA) is permanent:
//!   the message is marked failed and not retried;
//! - a 4xx answer is temporary: this message is retried with backoff;
//! - anything else — connection refused, a timeout, a TLS handshake
//!   failure, a dropped connection — means the server is unreachable:
//!   the message is retried and the mailer pauses the whole queue.
//!
//! A message counts as sent only once the server answered 250 to its DATA.

use std::path::PathBuf;
use std::time::Duration;

use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::mail::{self, SendError};
use super::outbox::OutboxItem;
use crate::config::{MailConfig, Secret, SmtpConfig, SmtpSecurity};

/// How long an idle connection is kept open between bursts.
const IDLE: Duration = Duration::from_secs(60);

/// The mail transport.
#[derive(Debug)]
pub enum Transport {
    /// Write `.eml` files to this folder.
    Dir(PathBuf),
    /// Send to an SMTP server.
    Smtp(Box<Smtp>),
}

/// An SMTP server and its one pooled connection.
pub struct Smtp {
    /// Replaced by a fresh pool after a timeout, so a connection left in
    /// the middle of a command is never reused.
    inner: std::sync::Mutex<AsyncSmtpTransport<Tokio1Executor>>,
    builder: lettre::transport::smtp::AsyncSmtpTransportBuilder,
    /// The longest one message may take, connecting included (lettre's
    /// own timeout covers only the TCP connect).
    timeout: Duration,
    /// `host:port (security)`, for logs and the run summary.
    server: String,
    /// Scrubbed from every error text, whatever a server echoes.
    password: Option<Secret>,
}

impl std::fmt::Debug for Smtp {
    /// Names the server; the password shows as `***`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smtp")
            .field("server", &self.server)
            .field("password", &self.password)
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// The transport `cfg` names. Must be called inside a tokio runtime
    /// (the SMTP pool starts its housekeeping task).
    pub fn new(cfg: &MailConfig) -> Result<Transport, String> {
        match &cfg.smtp {
            None => Ok(Transport::Dir(cfg.dir.clone())),
            Some(s) => Ok(Transport::Smtp(Box::new(Smtp::new(s)?))),
        }
    }

    /// Where messages go: the folder, or `smtp host:port (security)`.
    pub fn describe(&self) -> String {
        match self {
            Transport::Dir(d) => d.display().to_string(),
            Transport::Smtp(s) => format!("smtp {}", s.server),
        }
    }

    /// Delivers one message. `Ok` only once it is written (file) or the
    /// server accepted it (SMTP: 250 after DATA).
    pub async fn send(&self, item: &OutboxItem, msg: &Message) -> Result<(), SendError> {
        match self {
            Transport::Dir(dir) => mail::deliver_to_dir(dir, item, msg).map(|_| ()),
            Transport::Smtp(s) => {
                let raw = msg.formatted();
                let inner = s.transport();
                let result =
                    tokio::time::timeout(s.timeout, inner.send_raw(msg.envelope(), &raw)).await;
                // The pool takes the connection back in a task of its own;
                // let it run before the next message asks for one, so the
                // burst keeps using the same connection.
                tokio::task::yield_now().await;
                match result {
                    Ok(r) => r.map(|_| ()).map_err(|e| s.classify(&e)),
                    Err(_) => {
                        // The connection may be in the middle of a command:
                        // start over with a new pool.
                        *s.inner.lock().unwrap_or_else(|e| e.into_inner()) =
                            s.builder.clone().build();
                        Err(SendError {
                            reason: format!(
                                "smtp {}: no answer within {:?} (timeout)",
                                s.server, s.timeout
                            ),
                            permanent: false,
                            unreachable: true,
                        })
                    }
                }
            }
        }
    }

    /// Closes the pooled connection (QUIT).
    pub async fn shutdown(&self) {
        if let Transport::Smtp(s) = self {
            s.transport().shutdown().await;
        }
    }
}

impl Smtp {
    fn transport(&self) -> AsyncSmtpTransport<Tokio1Executor> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn new(cfg: &SmtpConfig) -> Result<Smtp, String> {
        let server = format!("{}:{} ({})", cfg.host, cfg.port, cfg.security.as_str());
        let tls = match cfg.security {
            SmtpSecurity::None => Tls::None,
            SmtpSecurity::StartTls => Tls::Required(tls_parameters(cfg)?),
            SmtpSecurity::Tls => Tls::Wrapper(tls_parameters(cfg)?),
        };
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(cfg.host.as_str())
            .port(cfg.port)
            .tls(tls)
            .timeout(Some(cfg.timeout))
            .pool_config(PoolConfig::new().max_size(1).min_idle(0).idle_timeout(IDLE));
        if let Some(h) = &cfg.hello_name {
            b = b.hello_name(ClientId::Domain(h.clone()));
        }
        if let (Some(user), Some(password)) = (&cfg.username, &cfg.password) {
            b = b.credentials(Credentials::new(
                user.clone(),
                password.expose().to_string(),
            ));
        }
        Ok(Smtp {
            inner: std::sync::Mutex::new(b.clone().build()),
            builder: b,
            timeout: cfg.timeout,
            server,
            password: cfg.password.clone(),
        })
    }

    fn classify(&self, e: &lettre::transport::smtp::Error) -> SendError {
        let mut reason = format!("smtp {}: {e}", self.server);
        if let Some(p) = &self.password {
            reason = reason.replace(p.expose(), "***");
        }
        SendError {
            reason,
            permanent: e.is_permanent(),
            unreachable: !e.is_permanent() && !e.is_transient(),
        }
    }
}

fn tls_parameters(cfg: &SmtpConfig) -> Result<TlsParameters, String> {
    let mut b = TlsParameters::builder(cfg.host.clone());
    if let Some(pem) = &cfg.ca_pem {
        let name = cfg
            .ca_file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let cert = Certificate::from_pem(pem).map_err(|e| format!("ca_file {name}: {e}"))?;
        b = b.add_root_certificate(cert);
    }
    b.build_rustls()
        .map_err(|e| format!("smtp {}: TLS setup: {e}", cfg.host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn debug_never_shows_the_password() {
        let mut s = SmtpConfig::new("127.0.0.1", 2525, SmtpSecurity::None);
        s.username = Some("alice".into());
        s.password = Some(Secret::new("s3cret-pw".into()));
        let cfg = MailConfig {
            dir: PathBuf::from("x"),
            from: "a@example.com".into(),
            to: vec!["b@example.com".into()],
            smtp: Some(s),
            routing: Default::default(),
            remind_after: None,
        };
        let t = Transport::new(&cfg).unwrap();
        for text in [format!("{t:?}"), format!("{t:#?}"), format!("{cfg:?}")] {
            assert!(!text.contains("s3cret-pw"), "{text}");
        }
        assert!(format!("{cfg:?}").contains("***"));
        assert_eq!(t.describe(), "smtp 127.0.0.1:2525 (none)");
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable_and_temporary() {
        // A port nobody listens on: bind, note it, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut s = SmtpConfig::new("127.0.0.1", port, SmtpSecurity::None);
        s.timeout = Duration::from_secs(5);
        let cfg = MailConfig {
            dir: PathBuf::from("x"),
            from: "a@example.com".into(),
            to: vec!["b@example.com".into()],
            smtp: Some(s),
            routing: Default::default(),
            remind_after: None,
        };
        let t = Transport::new(&cfg).unwrap();
        let msg = Message::builder()
            .from("a@example.com".parse().unwrap())
            .to("b@example.com".parse().unwrap())
            .subject("x")
            .body(String::from("x"))
            .unwrap();
        let item = OutboxItem {
            id: 1,
            kind: "violation".into(),
            attempts: 0,
            record: serde_json::from_str(RECORD).unwrap(),
            to: Vec::new(),
            route: None,
            digest: false,
        };
        let e = t.send(&item, &msg).await.unwrap_err();
        assert!(!e.permanent && e.unreachable, "{e:?}");
        assert!(e.reason.contains(&format!("127.0.0.1:{port}")), "{e:?}");
    }

    const RECORD: &str = r#"{"fingerprint":"f","rule":"r","severity":"low","message":"m",
        "clause":[],"tags":[],"suggestion":null,"subject":"s","location":[],"at":"2026-03-02T10:00:00+08:00",
        "due":null,"matched":null,"excerpt":null,"detail":null,"cue":null,"field":null}"#;
}
