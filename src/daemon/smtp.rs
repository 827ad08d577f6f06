//! Where the mailer hands a message: the `.eml` folder (the default) or an
//! SMTP server (`mail.smtp`).
//!
//! SMTP goes through lettre's client, one connection kept open between
//! messages: a burst of messages is sent one after the other over the
//! same connection (checked with NOOP before each reuse, reopened when the
//! server closed it, closed after a minute idle). STARTTLS is required
//! when configured — a server that does not offer it is an error, never a
//! silent fallback to plain text. The transaction is driven command by
//! command (MAIL, one RCPT per recipient, DATA) rather than through
//! lettre's all-or-nothing `send`, so that each recipient has its own
//! outcome: one rejected address does not stop the message for the others.
//!
//! Outcomes, recipient by recipient:
//! - 250 to RCPT and to the data: accepted (sent);
//! - a 5xx answer to RCPT: rejected for good, the others still get it;
//!   a 5xx to MAIL, DATA or the data: every recipient rejected for good;
//! - a 4xx answer: that recipient (or, at MAIL/DATA, every one) is tried
//!   again with backoff;
//! - the whole queue waits ([`Blocked`]) when no message can get through:
//!   the server cannot be reached or spoken to (connection refused, a
//!   timeout, a TLS failure, a dropped connection, 421), or it refuses our
//!   login (530, 534, 535, 538: a configuration problem, not a property of
//!   the message — failing every message tried meanwhile would lose them).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::{Address, Message};

use super::mail;
use super::outbox::OutboxItem;
use crate::config::{MailConfig, Secret, SmtpConfig, SmtpSecurity};

/// How long an idle connection is kept open between bursts.
const IDLE: Duration = Duration::from_secs(60);

/// Why no message can get through at the moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocked {
    /// The server cannot be reached or spoken to.
    Unreachable,
    /// The server refuses our login (or demands one, or TLS first).
    Auth,
    /// The server refuses our sender address (`mail.from`) for good: every
    /// message would be refused the same way until it is fixed.
    Sender,
}

impl Blocked {
    pub fn as_str(self) -> &'static str {
        match self {
            Blocked::Unreachable => "unreachable",
            Blocked::Auth => "auth",
            Blocked::Sender => "sender",
        }
    }
}

/// What one attempt did with each recipient.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// The server took the message for these (250 after the data).
    pub accepted: Vec<String>,
    /// Refused for good, with the server's answer.
    pub rejected: Vec<(String, String)>,
    /// To be tried again.
    pub deferred: Vec<String>,
    /// Why some were deferred.
    pub reason: Option<String>,
    /// Set when the whole queue has to wait.
    pub blocked: Option<Blocked>,
}

impl Report {
    fn deferred(to: &[String], reason: String, blocked: Option<Blocked>) -> Report {
        Report {
            deferred: to.to_vec(),
            reason: Some(reason),
            blocked,
            ..Report::default()
        }
    }
}

/// The mail transport.
#[derive(Debug)]
pub enum Transport {
    /// Write `.eml` files to this folder.
    Dir(PathBuf),
    /// Send to an SMTP server.
    Smtp(Box<Smtp>),
}

/// An open connection and when it was last used.
struct Open {
    conn: AsyncSmtpConnection,
    used: Instant,
}

/// An SMTP server and the one connection to it.
pub struct Smtp {
    /// The connection kept between messages; taken out while a message
    /// is sent, so one abandoned in the middle of a command (a timeout)
    /// is dropped, never reused.
    open: tokio::sync::Mutex<Option<Open>>,
    host: String,
    port: u16,
    security: SmtpSecurity,
    tls: Option<TlsParameters>,
    hello: ClientId,
    credentials: Option<Credentials>,
    /// The longest one message may take, connecting included.
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
    /// The transport `cfg` names.
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

    /// Delivers one message to `to` (the envelope; the headers name
    /// everyone it is for). A recipient counts as accepted only once it
    /// is written (file) or the server took it (SMTP: 250 after DATA).
    pub async fn send(&self, item: &OutboxItem, msg: &Message, to: &[String]) -> Report {
        match self {
            Transport::Dir(dir) => match mail::deliver_to_dir(dir, item, msg) {
                Ok(_) => Report {
                    accepted: to.to_vec(),
                    ..Report::default()
                },
                Err(e) => Report::deferred(to, e.reason, None),
            },
            Transport::Smtp(s) => s.send(msg, to).await,
        }
    }

    /// Whether the server can be reached and takes our login (connect,
    /// TLS, AUTH), without sending anything; the connection is kept for
    /// the next message. A folder always can.
    pub async fn probe(&self) -> Result<(), (String, Blocked)> {
        let Transport::Smtp(s) = self else {
            return Ok(());
        };
        let mut slot = s.open.lock().await;
        let taken = slot.take();
        match tokio::time::timeout(s.timeout, s.ready(taken)).await {
            Ok(Ok(conn)) => {
                *slot = Some(Open {
                    conn,
                    used: Instant::now(),
                });
                Ok(())
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err((
                format!(
                    "smtp {}: no answer within {:?} (timeout)",
                    s.server, s.timeout
                ),
                Blocked::Unreachable,
            )),
        }
    }

    /// Closes the connection (QUIT).
    pub async fn shutdown(&self) {
        if let Transport::Smtp(s) = self
            && let Some(mut open) = s.open.lock().await.take()
        {
            let _ = open.conn.quit().await;
        }
    }

    /// Closes the connection once it has been idle for a minute.
    pub async fn close_idle(&self) {
        if let Transport::Smtp(s) = self {
            let mut slot = s.open.lock().await;
            if slot.as_ref().is_some_and(|o| o.used.elapsed() >= IDLE)
                && let Some(mut open) = slot.take()
            {
                let _ = open.conn.quit().await;
            }
        }
    }
}

/// How a server's answer (or the lack of one) counts.
enum Class {
    Permanent,
    Temporary,
    Blocked(Blocked),
}

impl Smtp {
    fn new(cfg: &SmtpConfig) -> Result<Smtp, String> {
        let server = format!("{}:{} ({})", cfg.host, cfg.port, cfg.security.as_str());
        let tls = match cfg.security {
            SmtpSecurity::None => None,
            SmtpSecurity::StartTls | SmtpSecurity::Tls => Some(tls_parameters(cfg)?),
        };
        let credentials = match (&cfg.username, &cfg.password) {
            (Some(user), Some(password)) => Some(Credentials::new(
                user.clone(),
                password.expose().to_string(),
            )),
            _ => None,
        };
        Ok(Smtp {
            open: tokio::sync::Mutex::new(None),
            host: cfg.host.clone(),
            port: cfg.port,
            security: cfg.security,
            tls,
            hello: cfg
                .hello_name
                .clone()
                .map(ClientId::Domain)
                .unwrap_or_default(),
            credentials,
            timeout: cfg.timeout,
            server,
            password: cfg.password.clone(),
        })
    }

    async fn send(&self, msg: &Message, to: &[String]) -> Report {
        let mut slot = self.open.lock().await;
        let raw = msg.formatted();
        let from = msg.envelope().from().cloned();
        let taken = slot.take();
        match tokio::time::timeout(self.timeout, self.transaction(taken, from, &raw, to)).await {
            Ok((report, open)) => {
                *slot = open;
                report
            }
            // The connection may be in the middle of a command: it was
            // dropped with the attempt; the next message opens a new one.
            Err(_) => Report::deferred(
                to,
                format!(
                    "smtp {}: no answer within {:?} (timeout)",
                    self.server, self.timeout
                ),
                Some(Blocked::Unreachable),
            ),
        }
    }

    /// One SMTP transaction; the connection comes back when it can be
    /// used again.
    async fn transaction(
        &self,
        open: Option<Open>,
        from: Option<Address>,
        raw: &[u8],
        to: &[String],
    ) -> (Report, Option<Open>) {
        let from_text = from
            .as_ref()
            .map_or_else(|| "<>".to_string(), |a| a.to_string());
        let mut conn = match self.ready(open).await {
            Ok(c) => c,
            Err((reason, blocked)) => return (Report::deferred(to, reason, Some(blocked)), None),
        };
        let mut report = Report::default();
        let mut rcpts = Vec::new();
        for a in to {
            match a.parse::<Address>() {
                Ok(addr) => rcpts.push((a.clone(), addr)),
                Err(e) => report
                    .rejected
                    .push((a.clone(), format!("not an email address: {e}"))),
            }
        }
        let keep = |conn: AsyncSmtpConnection| {
            (!conn.has_broken()).then(|| Open {
                conn,
                used: Instant::now(),
            })
        };
        if rcpts.is_empty() {
            return (report, keep(conn));
        }
        let all: Vec<String> = rcpts.iter().map(|(a, _)| a.clone()).collect();
        let mut params = Vec::new();
        if !raw.is_ascii() {
            if !conn.server_info().supports_feature(Extension::EightBitMime) {
                let why = format!(
                    "smtp {}: the server does not take 8-bit mail (no 8BITMIME)",
                    self.server
                );
                report
                    .rejected
                    .extend(all.into_iter().map(|a| (a, why.clone())));
                return (report, keep(conn));
            }
            params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        if rcpts.iter().any(|(a, _)| !a.is_ascii()) {
            params.push(MailParameter::SmtpUtfEight);
        }
        if let Err(e) = conn.command(Mail::new(from, params)).await {
            if let (Class::Permanent, reason) = self.classify(&e) {
                // The sender refused for good concerns every message, not
                // this one: the queue waits for the configuration.
                report.deferred.extend(all);
                report.reason = Some(format!("{reason} (the sender address {from_text})"));
                report.blocked = Some(Blocked::Sender);
                conn.abort().await;
                return (report, None);
            }
            return self.whole(report, &all, &e, conn).await;
        }
        let mut accepted = Vec::new();
        for (i, (a, addr)) in rcpts.iter().enumerate() {
            match conn.command(Rcpt::new(addr.clone(), Vec::new())).await {
                Ok(_) => accepted.push(a.clone()),
                Err(e) => {
                    let (class, reason) = self.classify(&e);
                    match class {
                        Class::Permanent => report.rejected.push((a.clone(), reason)),
                        Class::Temporary => {
                            report.deferred.push(a.clone());
                            report.reason = Some(reason);
                        }
                        Class::Blocked(b) => {
                            // Nothing is sent on this connection: every
                            // recipient not yet refused waits.
                            report.deferred.extend(accepted);
                            report
                                .deferred
                                .extend(rcpts[i..].iter().map(|(a, _)| a.clone()));
                            report.reason = Some(reason);
                            report.blocked = Some(b);
                            conn.abort().await;
                            return (report, None);
                        }
                    }
                }
            }
        }
        if accepted.is_empty() {
            // Nobody to send to: end the transaction, keep the connection.
            if conn.command(Rset).await.is_err() {
                conn.abort().await;
                return (report, None);
            }
            return (report, keep(conn));
        }
        let sent = match conn.command(Data).await {
            Ok(_) => conn.message(raw).await,
            Err(e) => Err(e),
        };
        match sent {
            Ok(_) => {
                report.accepted = accepted;
                (report, keep(conn))
            }
            Err(e) => self.whole(report, &accepted, &e, conn).await,
        }
    }

    /// An answer that concerns every recipient in `to` (MAIL, DATA, the
    /// data itself).
    async fn whole(
        &self,
        mut report: Report,
        to: &[String],
        e: &lettre::transport::smtp::Error,
        mut conn: AsyncSmtpConnection,
    ) -> (Report, Option<Open>) {
        let (class, reason) = self.classify(e);
        match class {
            Class::Permanent => report
                .rejected
                .extend(to.iter().map(|a| (a.clone(), reason.clone()))),
            Class::Temporary | Class::Blocked(_) => {
                report.deferred.extend(to.iter().cloned());
                report.reason = Some(reason);
            }
        }
        if let Class::Blocked(b) = class {
            report.blocked = Some(b);
            conn.abort().await;
            return (report, None);
        }
        // The server may still think a transaction is open.
        if conn.command(Rset).await.is_err() {
            conn.abort().await;
            return (report, None);
        }
        (
            report,
            Some(Open {
                conn,
                used: Instant::now(),
            }),
        )
    }

    /// The kept connection if it still answers, or a new one: connected,
    /// encrypted as configured, logged in.
    async fn ready(&self, open: Option<Open>) -> Result<AsyncSmtpConnection, (String, Blocked)> {
        if let Some(mut o) = open {
            if o.used.elapsed() < IDLE && o.conn.test_connected().await {
                return Ok(o.conn);
            }
            o.conn.abort().await;
        }
        let down = |e: lettre::transport::smtp::Error| {
            (
                self.scrub(format!("smtp {}: {e}", self.server)),
                Blocked::Unreachable,
            )
        };
        let wrapper = match self.security {
            SmtpSecurity::Tls => self.tls.clone(),
            _ => None,
        };
        let mut conn = AsyncSmtpConnection::connect_tokio1(
            (self.host.as_str(), self.port),
            Some(self.timeout),
            &self.hello,
            wrapper,
            None,
        )
        .await
        .map_err(down)?;
        if let (SmtpSecurity::StartTls, Some(tls)) = (self.security, &self.tls) {
            conn.starttls(tls.clone(), &self.hello)
                .await
                .map_err(down)?;
        }
        if let Some(c) = &self.credentials
            && let Err(e) = conn.auth(DEFAULT_MECHANISMS, c).await
        {
            conn.abort().await;
            let reason = self.scrub(format!("smtp {}: authentication failed: {e}", self.server));
            // 454: the server's authentication is down for now; anything
            // else (535 wrong password, no mechanism in common) is ours.
            let blocked = if e.is_transient() || !(e.is_permanent() || e.is_client()) {
                Blocked::Unreachable
            } else {
                Blocked::Auth
            };
            return Err((reason, blocked));
        }
        Ok(conn)
    }

    fn classify(&self, e: &lettre::transport::smtp::Error) -> (Class, String) {
        let reason = self.scrub(format!("smtp {}: {e}", self.server));
        let class = match e.status().map(u16::from) {
            // Authentication required or failed, TLS required first: no
            // message gets through until the configuration is fixed.
            Some(530 | 534 | 535 | 538) => Class::Blocked(Blocked::Auth),
            // The server is closing the connection.
            Some(421) => Class::Blocked(Blocked::Unreachable),
            Some(c) if c >= 500 => Class::Permanent,
            Some(_) => Class::Temporary,
            // No answer: the connection dropped, a network or TLS error.
            None => Class::Blocked(Blocked::Unreachable),
        };
        (class, reason)
    }

    fn scrub(&self, mut reason: String) -> String {
        if let Some(p) = self.password.as_ref().filter(|p| !p.expose().is_empty()) {
            reason = reason.replace(p.expose(), "***");
        }
        reason
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

    fn mail_config(s: SmtpConfig) -> MailConfig {
        MailConfig {
            dir: PathBuf::from("x"),
            from: "a@example.com".into(),
            to: vec!["b@example.com".into()],
            smtp: Some(s),
            routing: Default::default(),
            remind_after: None,
            templates: Default::default(),
        }
    }

    #[tokio::test]
    async fn debug_never_shows_the_password() {
        let mut s = SmtpConfig::new("127.0.0.1", 2525, SmtpSecurity::None);
        s.username = Some("alice".into());
        s.password = Some(Secret::new("s3cret-pw".into()));
        let cfg = mail_config(s);
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
        let cfg = mail_config(s);
        let t = Transport::new(&cfg).unwrap();
        let msg = Message::builder()
            .from("a@example.com".parse().unwrap())
            .to("b@example.com".parse().unwrap())
            .subject("x")
            .body(String::from("x"))
            .unwrap();
        let item = OutboxItem::new(1, "violation", serde_json::from_str(RECORD).unwrap());
        let to = vec!["b@example.com".to_string()];
        let r = t.send(&item, &msg, &to).await;
        assert_eq!(r.blocked, Some(Blocked::Unreachable), "{r:?}");
        assert_eq!((r.deferred, r.accepted), (to, Vec::new()));
        let reason = r.reason.unwrap();
        assert!(reason.contains(&format!("127.0.0.1:{port}")), "{reason}");
    }

    const RECORD: &str = r#"{"fingerprint":"f","rule":"r","severity":"low","message":"m",
        "clause":[],"tags":[],"suggestion":null,"subject":"s","location":[],"at":"2026-03-02T10:00:00+08:00",
        "due":null,"matched":null,"excerpt":null,"detail":null,"cue":null,"field":null}"#;
}
