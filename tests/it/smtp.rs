//! Mail through a real SMTP server. Each test starts its own aiosmtpd
//! (tests/fixtures/smtp/server.py: STARTTLS, AUTH and fault injection)
//! on a free port, runs the daemon in-process on a manual clock (a retry
//! falls due when the test moves the clock past its backoff), and reads
//! what the server stored. Received messages are checked by Python's
//! `email` package (tests/fixtures/smtp/check_message.py), an independent
//! MIME and RFC 2047 reader.
//!
//! Never skipped: without python3, aiosmtpd or openssl the tests fail and
//! say to run scripts/test.sh, which installs them.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use complyd::daemon::clock::ManualClock;
use complyd::daemon::run::{self, Handle, RunOptions};
use jiff::{SignedDuration, Timestamp};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smtp")
}

/// Fails (never skips) when the test peers are missing.
fn require_peers() {
    let ok = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "the SMTP tests need python3 with aiosmtpd 1.4.6 (a real SMTP server); \
         run `bash scripts/test.sh`, which installs them"
    );
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A self-signed certificate for 127.0.0.1 and localhost: (cert, key).
fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        // A server certificate, not a CA: rustls refuses a CA certificate
        // as the server's own (CaUsedAsEndEntity), and `req -x509` makes
        // CA:TRUE by default.
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap_or_else(|e| {
            panic!("openssl: {e}; run `bash scripts/test.sh`, which installs openssl")
        });
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

/// aiosmtpd, stopped when dropped.
pub(crate) struct Server {
    child: Child,
    root: PathBuf,
}

impl Server {
    /// Starts the server on `port`, storing into `root/maildir`, and waits
    /// until it accepts connections.
    pub(crate) fn start(root: &Path, port: u16, args: &[&str]) -> Server {
        require_peers();
        std::fs::create_dir_all(root).unwrap();
        let mut child = Command::new("python3")
            .arg(fixtures().join("server.py"))
            .arg("--port")
            .arg(port.to_string())
            .arg("--maildir")
            .arg(root.join("maildir"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(l) if l == "READY" => {}
            other => {
                let _ = child.kill();
                panic!("the SMTP server did not start: {other:?}");
            }
        }
        Server {
            child,
            root: root.to_path_buf(),
        }
    }

    /// The raw messages received, as stored.
    fn messages(&self) -> Vec<Vec<u8>> {
        let Ok(rd) = std::fs::read_dir(self.root.join("maildir/new")) else {
            return Vec::new();
        };
        rd.map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect()
    }

    pub(crate) fn message_files(&self) -> Vec<PathBuf> {
        let Ok(rd) = std::fs::read_dir(self.root.join("maildir/new")) else {
            return Vec::new();
        };
        rd.map(|e| e.unwrap().path()).collect()
    }

    /// (recipient, Message-ID) of every copy the server accepted.
    fn received(&self) -> Vec<(String, String)> {
        std::fs::read_to_string(self.root.join("received.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let mut f = l.split('\t');
                let (a, b) = (f.next().unwrap(), f.next().unwrap());
                (a.to_string(), b.to_string())
            })
            .collect()
    }

    /// TCP connections the server saw.
    fn connections(&self) -> usize {
        std::fs::read_to_string(self.root.join("connections.log"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    /// How many times each Message-ID arrived.
    fn per_message_id(&self) -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for raw in self.messages() {
            let text = String::from_utf8_lossy(&raw);
            let id = text
                .lines()
                .take_while(|l| !l.is_empty())
                .find_map(|l| l.strip_prefix("Message-ID: "))
                .unwrap_or_else(|| panic!("no Message-ID in {text}"))
                .trim()
                .to_string();
            *m.entry(id).or_insert(0) += 1;
        }
        m
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the Python checker on a received message; panics on any finding.
pub(crate) fn check(file: &Path) -> serde_json::Value {
    let out = Command::new("python3")
        .arg(fixtures().join("check_message.py"))
        .arg(file)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "check_message.py: {e}\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(
        out.status.success(),
        "{}: {}",
        file.display(),
        serde_json::to_string_pretty(&v["errors"]).unwrap()
    );
    v
}

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// A daemon's folders and its configuration file, with `smtp` as the
/// `mail.smtp` section (YAML, indented under it).
pub(crate) struct Setup {
    dir: tempfile::TempDir,
    opts: RunOptions,
    clock: ManualClock,
}

impl Setup {
    fn new(smtp: &str) -> Setup {
        Setup::with_mail(smtp, "to: [supervision@example.test]\n", &[])
    }

    /// `mail` is the rest of the `mail:` section (YAML, indented under it);
    /// `files` are written beside the configuration before it is loaded.
    pub(crate) fn with_mail(smtp: &str, mail: &str, files: &[(&str, &str)]) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
        std::fs::create_dir_all(root.join("rules")).unwrap();
        for e in std::fs::read_dir(&rules).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_file() {
                std::fs::copy(e.path(), root.join("rules").join(e.file_name())).unwrap();
            }
        }
        std::fs::create_dir_all(root.join("drop")).unwrap();
        std::fs::create_dir_all(root.join("logs")).unwrap();
        for (name, text) in files {
            let p = root.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let yaml = format!(
            "rules: rules\nstate: state\nwatch: [{{path: drop}}]\nlogs: [logs/*.jsonl]\n\
             mail:\n  from: complyd@example.test\n{}  smtp:\n{}",
            mail.lines().map(|l| format!("  {l}\n")).collect::<String>(),
            smtp.lines()
                .map(|l| format!("    {l}\n"))
                .collect::<String>()
        );
        let path = root.join("complyd.yaml");
        std::fs::write(&path, yaml).unwrap();
        let mut config =
            complyd::config::load(&path).unwrap_or_else(|e| panic!("{}", e.render(false)));
        config.daemon.stable_for = Duration::from_millis(200);
        let mut opts = RunOptions::new(config, Some(path), root.join("rules"));
        opts.tail_interval = Duration::from_millis(50);
        // Rows queued again by `complyd outbox retry` are noticed this fast.
        opts.mail_poll = Duration::from_millis(200);
        Setup {
            dir,
            opts,
            clock: ManualClock::new(t("2026-03-02T10:00:00+08:00")),
        }
    }

    pub(crate) fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    pub(crate) async fn start(&self) -> Handle {
        let rules = complyd::rules::load(&self.opts.rules_dir).unwrap();
        run::start(self.opts.clone(), rules, Arc::new(self.clock.clone()))
            .await
            .unwrap()
    }

    pub(crate) fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.opts.config.daemon.database()).unwrap()
    }

    fn int(&self, query: &str) -> i64 {
        self.db().query_row(query, [], |r| r.get(0)).unwrap_or(-1)
    }

    /// Polls `query` (one integer) until `ok` holds, for up to 30 s.
    pub(crate) async fn wait_for(&self, query: &str, ok: impl Fn(i64) -> bool) -> i64 {
        let start = Instant::now();
        loop {
            let v = self.int(query);
            if ok(v) {
                return v;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "timed out waiting for `{query}` (last value {v}); outbox: {:?}",
                self.outbox()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// (attempts, sent, failed, last_error) per outbox row.
    fn outbox(&self) -> Vec<(i64, bool, bool, Option<String>)> {
        let db = self.db();
        let mut st = db
            .prepare(
                "SELECT attempts, sent_at IS NOT NULL, failed, last_error FROM outbox ORDER BY id",
            )
            .unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn status(&self) -> String {
        complyd::daemon::status::report(
            &self.opts.config.daemon.database(),
            &jiff::tz::TimeZone::get("Asia/Shanghai").unwrap(),
            &[],
        )
        .unwrap()
    }

    /// Moves the clock on until every message is sent or failed (each
    /// step passes any backoff), for up to 30 s.
    async fn advance_until_settled(&self) {
        let start = Instant::now();
        while self.int("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL AND failed = 0") != 0 {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "outbox not settled: {:?}",
                self.outbox()
            );
            self.clock.advance(SignedDuration::from_hours(2));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

const DRAFT: &str = "本品可以根治高血压，100%有效。\n";

/// (a) The Chinese subject is RFC 2047 encoded and decodes back; the MIME
/// structure and every header pass a strict reader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chinese_subject_and_mime_structure_survive_a_real_server() {
    let port = free_port();
    let s = Setup::new(&format!("host: 127.0.0.1\nport: {port}\nsecurity: none\n"));
    let server = Server::start(&s.path("smtp"), port, &[]);
    let h = s.start().await;
    std::fs::write(s.path("drop/草稿.txt"), DRAFT).unwrap();
    let n = s
        .wait_for("SELECT COUNT(*) FROM violations", |n| n >= 2)
        .await;
    s.wait_for(
        "SELECT COUNT(*) FROM outbox WHERE sent_at IS NOT NULL",
        |v| v == n,
    )
    .await;
    h.shutdown().await.unwrap();

    let db = s.db();
    let mut st = db
        .prepare("SELECT v.fingerprint, r.data FROM violations v JOIN violation_records r ON r.id = v.id")
        .unwrap();
    let expected: HashMap<String, serde_json::Value> = st
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .unwrap()
        .map(|r| {
            let (fp, data) = r.unwrap();
            (fp, serde_json::from_str(&data).unwrap())
        })
        .collect();
    let files = server.message_files();
    assert_eq!(files.len() as i64, n);
    for f in files {
        let m = check(&f);
        let id = m["message_id"].as_str().unwrap();
        let fp = id
            .trim_matches(['<', '>'])
            .strip_suffix(".violation@complyd")
            .unwrap_or_else(|| panic!("{id}"));
        let record = &expected[fp];
        let subject = m["subject"].as_str().unwrap();
        let message: String = record["message"]
            .as_str()
            .unwrap()
            .chars()
            .take(30)
            .collect();
        assert!(subject.starts_with("【合规告警】"), "{subject}");
        assert!(subject.contains(&message), "{subject} / {message}");
        assert!(subject.contains("草稿.txt"), "{subject}");
        let raw = m["raw_subject"].as_str().unwrap();
        assert!(raw.is_ascii() && raw.contains("=?utf-8?"), "{raw}");
        let plain = m["plain"].as_str().unwrap();
        assert!(
            plain.contains(record["message"].as_str().unwrap()),
            "{plain}"
        );
        assert!(plain.contains(fp), "{plain}");
        assert!(m["html"].as_str().unwrap().contains("<mark>"), "{m}");
    }
}

/// (b) STARTTLS (required) against a self-signed server trusted through
/// `ca_file`, AUTH with the password from `password_file`: delivered. The
/// wrong password is a 535: a configuration problem, not the messages' —
/// the queue pauses (one login attempt per long pause, nothing failed for
/// good, `status` says why, the password appears nowhere), and once the
/// account is fixed every message arrives, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_and_auth_deliver_and_a_wrong_password_pauses_the_queue() {
    let port = free_port();
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(certs.path());
    let server_pw = certs.path().join("server-password");
    std::fs::write(&server_pw, "s3cret-Pw!\n").unwrap();
    let good = certs.path().join("good");
    std::fs::write(&good, "s3cret-Pw!\n").unwrap();
    let bad = certs.path().join("bad");
    std::fs::write(&bad, "wr0ng-Pw!\n").unwrap();
    let server = Server::start(
        &certs.path().join("smtp"),
        port,
        &[
            "--tls",
            cert.to_str().unwrap(),
            key.to_str().unwrap(),
            "--auth",
            &format!("alice:{}", server_pw.display()),
        ],
    );
    let section = |pw: &Path| {
        format!(
            "host: 127.0.0.1\nport: {port}\nsecurity: starttls\nusername: alice\n\
             password_file: {}\nca_file: {}\ntimeout: 10s\nhello_name: complyd.test\n",
            pw.display(),
            cert.display()
        )
    };

    let s = Setup::new(&section(&good));
    assert!(!format!("{:?}", s.opts).contains("s3cret"));
    let h = s.start().await;
    std::fs::write(s.path("drop/a.txt"), DRAFT).unwrap();
    let n = s
        .wait_for("SELECT COUNT(*) FROM violations", |n| n >= 1)
        .await;
    s.wait_for(
        "SELECT COUNT(*) FROM outbox WHERE sent_at IS NOT NULL",
        |v| v == n,
    )
    .await;
    h.shutdown().await.unwrap();
    assert_eq!(server.messages().len() as i64, n);
    assert_eq!(server.connections(), 1, "one connection for {n} messages");

    let s = Setup::new(&section(&bad));
    let h = s.start().await;
    std::fs::write(s.path("drop/b.txt"), DRAFT).unwrap();
    let n2 = s
        .wait_for("SELECT COUNT(*) FROM violations", |n| n >= 1)
        .await;
    s.wait_for("SELECT COUNT(*) FROM meta WHERE k = 'mailer'", |v| v == 1)
        .await;
    // Paused, not failing message after message: a day later (the
    // pauses grow to an hour) at most a few dozen login attempts, and not
    // one message failed.
    for _ in 0..6 {
        s.clock.advance(SignedDuration::from_hours(4));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    h.barrier().await;
    assert_eq!(s.int("SELECT COUNT(*) FROM outbox WHERE failed != 0"), 0);
    assert_eq!(
        s.int("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL"),
        n2
    );
    let tried = s.int("SELECT COALESCE(SUM(attempts), 0) FROM outbox");
    assert!((1..=30).contains(&tried), "{tried} attempts while refused");
    let status = s.status();
    assert!(
        status.contains("PAUSED: the server refuses our login"),
        "{status}"
    );
    assert!(status.contains("535"), "{status}");
    assert!(status.contains(&format!("{n2} waiting")), "{status}");
    assert!(!status.contains("wr0ng"), "{status}");
    for (_, _, _, err) in s.outbox() {
        let err = err.unwrap_or_default();
        assert!(!err.contains("wr0ng"), "{err}");
    }
    assert_eq!(server.messages().len() as i64, n, "nothing more arrived");

    // The account is fixed on the server's side: the next try logs in and
    // the queue goes out, each message once; the pause is over.
    std::fs::write(&server_pw, "wr0ng-Pw!\n").unwrap();
    s.advance_until_settled().await;
    s.wait_for("SELECT COUNT(*) FROM meta WHERE k = 'mailer'", |v| v == 0)
        .await;
    h.shutdown().await.unwrap();
    assert_eq!(
        s.int("SELECT COUNT(*) FROM outbox WHERE sent_at IS NOT NULL"),
        n2
    );
    let per_id = server.per_message_id();
    assert_eq!(per_id.len() as i64, n + n2, "{per_id:?}");
    assert!(per_id.values().all(|&c| c == 1), "{per_id:?}");
    assert!(!s.status().contains("PAUSED"));
}

/// The server refuses our sender address (553 at MAIL FROM): that is the
/// configuration, not the messages — the queue pauses, nothing is failed,
/// and once the server takes the sender every message goes out once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_sender_pauses_the_queue_instead_of_failing_every_message() {
    let port = free_port();
    let s = Setup::new(&format!("host: 127.0.0.1\nport: {port}\nsecurity: none\n"));
    // The first three MAIL commands are refused, then accepted (the
    // administrator fixed the server's sender policy).
    let server = Server::start(
        &s.path("smtp"),
        port,
        &[
            "--fail-mail",
            "553 5.7.1 Sender address rejected: not owned by user",
            "--fail-count",
            "3",
        ],
    );
    let h = s.start().await;
    std::fs::write(s.path("drop/a.txt"), DRAFT).unwrap();
    let n = s
        .wait_for("SELECT COUNT(*) FROM violations", |n| n >= 1)
        .await;
    s.wait_for("SELECT COUNT(*) FROM meta WHERE k = 'mailer'", |v| v == 1)
        .await;
    h.barrier().await;
    assert_eq!(s.int("SELECT COUNT(*) FROM outbox WHERE failed != 0"), 0);
    let status = s.status();
    assert!(
        status.contains("PAUSED: the server refuses our sender address"),
        "{status}"
    );
    assert!(status.contains("553"), "{status}");
    s.advance_until_settled().await;
    s.wait_for("SELECT COUNT(*) FROM meta WHERE k = 'mailer'", |v| v == 0)
        .await;
    h.shutdown().await.unwrap();
    assert_eq!(
        s.int("SELECT COUNT(*) FROM outbox WHERE sent_at IS NOT NULL"),
        n
    );
    let per_id = server.per_message_id();
    assert_eq!(per_id.len() as i64, n, "{per_id:?}");
    assert!(per_id.values().all(|&c| c == 1), "{per_id:?}");
}

/// A server whose certificate is not trusted: the TLS handshake fails,
/// which is temporary (retried), never a delivery in plain text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_retried_not_bypassed() {
    let port = free_port();
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(certs.path());
    let server = Server::start(
        &certs.path().join("smtp"),
        port,
        &["--tls", cert.to_str().unwrap(), key.to_str().unwrap()],
    );
    let s = Setup::new(&format!(
        "host: 127.0.0.1\nport: {port}\nsecurity: starttls\n"
    ));
    let h = s.start().await;
    std::fs::write(s.path("drop/a.txt"), DRAFT).unwrap();
    s.wait_for("SELECT COUNT(*) FROM outbox WHERE attempts > 0", |v| v >= 1)
        .await;
    h.shutdown().await.unwrap();
    let rows = s.outbox();
    assert!(rows.iter().all(|r| !r.1 && !r.2), "{rows:?}");
    let err = rows.iter().find_map(|r| r.3.clone()).unwrap();
    assert!(
        err.to_lowercase().contains("tls") || err.contains("certificate"),
        "{err}"
    );
    assert!(server.messages().is_empty());
}

/// (c) 451 on RCPT for the first attempts, then the server recovers:
/// each message arrives exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_failures_are_retried_and_delivered_exactly_once() {
    let port = free_port();
    let s = Setup::new(&format!("host: 127.0.0.1\nport: {port}\nsecurity: none\n"));
    let server = Server::start(
        &s.path("smtp"),
        port,
        &[
            "--fail-rcpt",
            "451 4.3.0 Try again later",
            "--fail-count",
            "3",
        ],
    );
    let h = s.start().await;
    std::fs::write(s.path("drop/a.txt"), DRAFT).unwrap();
    let n = s
        .wait_for("SELECT COUNT(*) FROM violations", |n| n >= 1)
        .await;
    s.wait_for(
        "SELECT COUNT(*) FROM outbox WHERE last_error LIKE '%451%'",
        |v| v >= 1,
    )
    .await;
    s.advance_until_settled().await;
    h.shutdown().await.unwrap();
    let rows = s.outbox();
    assert!(rows.iter().all(|r| r.1 && !r.2), "{rows:?}");
    assert!(rows.iter().map(|r| r.0).sum::<i64>() > n, "{rows:?}");
    let per_id = server.per_message_id();
    assert_eq!(per_id.len() as i64, n, "{per_id:?}");
    assert!(per_id.values().all(|&c| c == 1), "{per_id:?}");
}

/// (d) The server is down while a burst of violations is queued; the
/// queue pauses (one attempt per pause, not one per message), and once the
/// server is up everything arrives, once, over one connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_loses_nothing_and_the_burst_uses_one_connection() {
    const N: usize = 300;
    let port = free_port();
    let s = Setup::new(&format!(
        "host: 127.0.0.1\nport: {port}\nsecurity: none\ntimeout: 5s\n"
    ));
    let h = s.start().await;
    let mut log = String::new();
    for i in 0..N {
        log.push_str(&format!(
            r#"{{"ts":"2026-03-02T10:00:00+08:00","type":"message.received","thread":"t{i}","account":"ks-service","channel":"comment","complexity":"general","text":"怎么吃？"}}"#
        ));
        log.push('\n');
    }
    std::fs::write(s.path("logs/activity.jsonl"), log).unwrap();
    s.wait_for(
        "SELECT COALESCE(SUM(lines + waiting), 0) FROM sources",
        |n| n == N as i64,
    )
    .await;
    // The replies are late: N violations, N messages queued, server down.
    s.clock.set(t("2026-03-02T11:06:00+08:00"));
    s.wait_for("SELECT COUNT(*) FROM outbox", |n| n == N as i64)
        .await;
    s.wait_for("SELECT COALESCE(SUM(attempts), 0) FROM outbox", |n| n >= 1)
        .await;
    // A longer outage: a few more pauses, each ending with a connection
    // attempt (a probe) that finds the server still down — the queue is not
    // read again, and no message counts another attempt.
    for _ in 0..3 {
        s.clock.advance(SignedDuration::from_hours(1));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    h.barrier().await;
    let tried = s.int("SELECT COALESCE(SUM(attempts), 0) FROM outbox");
    assert_eq!(tried, 1, "{tried} attempts while down");
    assert_eq!(
        s.int("SELECT COUNT(*) FROM outbox WHERE sent_at IS NOT NULL OR failed = 1"),
        0
    );
    let err = s.outbox().into_iter().find_map(|r| r.3).unwrap();
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");

    let server = Server::start(&s.path("smtp"), port, &[]);
    s.advance_until_settled().await;
    h.shutdown().await.unwrap();
    assert_eq!(
        s.int("SELECT COUNT(*) FROM outbox WHERE sent_at IS NOT NULL"),
        N as i64
    );
    let per_id = server.per_message_id();
    assert_eq!(per_id.len(), N, "every message arrived");
    assert!(per_id.values().all(|&c| c == 1), "none twice: {per_id:?}");
    assert_eq!(server.connections(), 1, "the burst reused one connection");
}

/// (e) A 5xx answer (554 on DATA) is permanent: marked failed, not
/// retried, shown by `complyd status`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_rejection_is_not_retried_and_shows_in_status() {
    let port = free_port();
    let s = Setup::new(&format!("host: 127.0.0.1\nport: {port}\nsecurity: none\n"));
    let server = Server::start(
        &s.path("smtp"),
        port,
        &["--fail-data", "554 5.7.1 Rejected by policy"],
    );
    let h = s.start().await;
    std::fs::write(s.path("drop/a.txt"), DRAFT).unwrap();
    let n = s
        .wait_for("SELECT COUNT(*) FROM violations", |n| n >= 1)
        .await;
    s.wait_for("SELECT COUNT(*) FROM outbox WHERE failed = 1", |v| v == n)
        .await;
    s.clock.advance(SignedDuration::from_hours(24));
    tokio::time::sleep(Duration::from_millis(500)).await;
    h.barrier().await;
    h.shutdown().await.unwrap();
    for (attempts, sent, failed, err) in s.outbox() {
        assert_eq!((attempts, sent, failed), (1, false, true));
        let err = err.unwrap();
        assert!(
            err.contains("554") && err.contains("Rejected by policy"),
            "{err}"
        );
    }
    let status = s.status();
    assert!(
        status.contains(&format!("0 waiting, 0 sent, {n} failed for good")),
        "{status}"
    );
    assert!(status.contains("Rejected by policy"), "{status}");
    assert!(server.messages().is_empty());
}

/// (f) `<script>` and CRLF header injections in a dropped file's text and
/// in a log event arrive escaped in the HTML part, with no injected header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_markup_and_headers_arrive_escaped() {
    let port = free_port();
    let s = Setup::new(&format!("host: 127.0.0.1\nport: {port}\nsecurity: none\n"));
    let server = Server::start(&s.path("smtp"), port, &[]);
    let h = s.start().await;
    std::fs::write(
        s.path("drop/x\r\nBcc: evil@example.test.txt"),
        "<script>alert('x')</script>本品可以根治高血压\r\nBcc: evil@example.test\r\nX-Injected: 1\r\n",
    )
    .unwrap();
    std::fs::write(
        s.path("logs/activity.jsonl"),
        concat!(
            r#"{"ts":"2026-03-02T10:00:00+08:00","type":"message.received","thread":"t1\r\nBcc: evil@example.test\r\nX-Injected: 1","account":"ks-service<script>alert(1)</script>","channel":"comment","complexity":"general","text":"<script>alert(2)</script>\r\nBcc: evil@example.test"}"#,
            "\n"
        ),
    )
    .unwrap();
    s.wait_for(
        "SELECT COALESCE(SUM(lines + waiting), 0) FROM sources",
        |n| n == 1,
    )
    .await;
    s.clock.set(t("2026-03-02T11:06:00+08:00"));
    let n = s
        .wait_for(
            "SELECT COUNT(*) FROM violations WHERE rule = 'reply-general-1h'",
            |n| n == 1,
        )
        .await;
    assert_eq!(n, 1);
    let total = s
        .wait_for("SELECT COUNT(*) FROM violations", |n| n >= 2)
        .await;
    s.wait_for(
        "SELECT COUNT(*) FROM outbox WHERE sent_at IS NOT NULL",
        |v| v == total,
    )
    .await;
    h.shutdown().await.unwrap();
    let files = server.message_files();
    assert_eq!(files.len() as i64, total);
    let mut saw_script = false;
    for f in files {
        let m = check(&f);
        let headers: Vec<&str> = m["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap())
            .collect();
        assert!(
            !headers
                .iter()
                .any(|h| h.eq_ignore_ascii_case("bcc") || h.eq_ignore_ascii_case("x-injected")),
            "{headers:?}"
        );
        let html = m["html"].as_str().unwrap();
        assert!(!html.contains("<script"), "{html}");
        // The excerpt may start inside the tag; what is shown is escaped.
        saw_script |= html.contains("script&gt;");
        let raw = std::fs::read(&f).unwrap();
        let head = String::from_utf8_lossy(&raw);
        let head = head.split("\r\n\r\n").next().unwrap();
        assert!(
            !head
                .lines()
                .any(|l| l.starts_with("Bcc:") || l.starts_with("X-Injected:")),
            "{head}"
        );
    }
    assert!(saw_script, "the script text is shown, escaped");
}

/// A server that accepts the connection and then stops answering (DATA
/// not answered for 10 s, timeout 2 s): the attempt times out, the mailer
/// is not stuck, the message is retried on a fresh connection and arrives
/// once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stops_answering_times_out_and_is_retried() {
    let port = free_port();
    let s = Setup::new(&format!(
        "host: 127.0.0.1\nport: {port}\nsecurity: none\ntimeout: 2s\n"
    ));
    let server = Server::start(
        &s.path("smtp"),
        port,
        &["--delay-data", "10", "--fail-count", "1"],
    );
    let h = s.start().await;
    std::fs::write(s.path("drop/a.txt"), DRAFT).unwrap();
    let n = s
        .wait_for("SELECT COUNT(*) FROM violations", |n| n >= 1)
        .await;
    s.wait_for(
        "SELECT COUNT(*) FROM outbox WHERE last_error LIKE '%timeout%'",
        |v| v == 1,
    )
    .await;
    s.advance_until_settled().await;
    h.shutdown().await.unwrap();
    let rows = s.outbox();
    assert!(rows.iter().all(|r| r.1), "{rows:?}");
    let per_id = server.per_message_id();
    assert_eq!(per_id.len() as i64, n, "{per_id:?}");
    assert!(per_id.values().all(|&c| c == 1), "{per_id:?}");
    assert!(
        server.connections() >= 2,
        "a fresh connection after the timeout"
    );
}

/// `complyd …` against this daemon's configuration, run while it runs.
async fn cli(s: &Setup, args: &[&str]) -> (i32, String, String) {
    let config = s.path("complyd.yaml");
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || {
        assert_cmd::Command::cargo_bin("complyd")
            .unwrap()
            .env_remove("COMPLYD_CONFIG")
            .arg("outbox")
            .args(&args)
            .arg("--config")
            .arg(config)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// One recipient's address is refused for good (550 at RCPT): the others
/// still get every message, once; the refused address is recorded and
/// shown by `complyd status` and `complyd outbox list --failed`; after the
/// address is corrected, `complyd outbox retry --all-failed --to` — run
/// while the daemon runs — sends the messages to it, and to nobody twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recipient_refused_for_good_does_not_stop_the_others_and_can_be_sent_again() {
    let port = free_port();
    let s = Setup::with_mail(
        &format!("host: 127.0.0.1\nport: {port}\nsecurity: none\n"),
        "to: [lead@example.test, typo@example.test, jiandu@example.test]\n",
        &[],
    );
    let server = Server::start(
        &s.path("smtp"),
        port,
        &["--reject-rcpt", "typo@example.test"],
    );
    let h = s.start().await;
    std::fs::write(s.path("drop/a.txt"), DRAFT).unwrap();
    let n = s
        .wait_for("SELECT COUNT(*) FROM violations", |n| n >= 2)
        .await;
    s.wait_for(
        "SELECT COUNT(*) FROM outbox WHERE sent_at IS NOT NULL",
        |v| v == n,
    )
    .await;
    h.barrier().await;
    for (attempts, sent, failed, err) in s.outbox() {
        assert_eq!((attempts, sent, failed), (1, true, false));
        let err = err.unwrap();
        assert!(
            err.contains("typo@example.test") && err.contains("550"),
            "{err}"
        );
    }
    let copies = server.received();
    assert_eq!(copies.len() as i64, 2 * n, "{copies:?}");
    let per_id = server.per_message_id();
    assert_eq!(per_id.len() as i64, n);
    for id in per_id.keys() {
        let to: Vec<&str> = copies
            .iter()
            .filter(|(_, m)| m == id)
            .map(|(a, _)| a.as_str())
            .collect();
        assert_eq!(to, ["lead@example.test", "jiandu@example.test"], "{id}");
    }
    let status = s.status();
    assert!(
        status.contains("REJECTED for typo@example.test, sent to the others")
            && status.contains("550"),
        "{status}"
    );
    assert!(
        status.contains(&format!("{n} sent, 0 failed for good")),
        "{status}"
    );

    // The list shows them; a sent message cannot be "retried"; bad input
    // is a usage error (exit 2) and changes nothing.
    let (code, out, err) = cli(&s, &["list", "--failed"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.matches("rejected for typo@example.test").count() as i64,
        n,
        "{out}"
    );
    let first = s.int("SELECT MIN(id) FROM outbox");
    let (code, _, err) = cli(
        &s,
        &["retry", &format!("#{first}"), "--to", "not an address"],
    )
    .await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not an email address"), "{err}");
    let (code, _, err) = cli(&s, &["retry", "#99999"]).await;
    assert_eq!((code, err.trim()), (2, "error: no message #99999"));
    let (code, _, err) = cli(&s, &["retry"]).await;
    assert_eq!(code, 2, "{err}");
    assert_eq!(
        s.int("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL"),
        0
    );

    // Corrected: sent again to that address only, while the daemon runs.
    let (code, out, err) = cli(
        &s,
        &["retry", "--all-failed", "--to", "jiandu-fixed@example.test"],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("queued again: {n} outbox row(s)")),
        "{out}"
    );
    let start = Instant::now();
    while server.received().len() < 3 * n as usize {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "not sent again: {:?}",
            s.outbox()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.wait_for(
        "SELECT COUNT(*) FROM outbox WHERE sent_at IS NOT NULL AND rejected = '[]'",
        |v| v == n,
    )
    .await;
    h.shutdown().await.unwrap();
    let copies = server.received();
    assert_eq!(
        copies.len() as i64,
        3 * n,
        "nobody got it twice: {copies:?}"
    );
    for id in per_id.keys() {
        let to: Vec<&str> = copies
            .iter()
            .filter(|(_, m)| m == id)
            .map(|(a, _)| a.as_str())
            .collect();
        assert_eq!(
            to,
            [
                "lead@example.test",
                "jiandu@example.test",
                "jiandu-fixed@example.test"
            ],
            "the same message (Message-ID) to the corrected address"
        );
    }
    // Nothing left to send again: exit 0, and it says so.
    let (code, out, _) = cli(&s, &["retry", "--all-failed"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("nothing to send again"), "{out}");
    let (code, _, err) = cli(&s, &["retry", &format!("{first}")]).await;
    assert_eq!(code, 2);
    assert!(err.contains("was sent to every recipient"), "{err}");
}

/// A digest route's two windows, both overdue when the server comes back
/// after an outage, go out as two messages — each window its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_overdue_windows_of_a_route_are_two_messages() {
    let port = free_port();
    let s = Setup::with_mail(
        &format!("host: 127.0.0.1\nport: {port}\nsecurity: none\ntimeout: 5s\n"),
        "to: [supervision@example.test]\ngroups:\n  content: [content@example.test]\n\
         routes:\n  - {to: [content], delivery: 30m}\n",
        &[],
    );
    let h = s.start().await;
    // 10:00: the window that ends at 10:30.
    std::fs::write(s.path("drop/a.txt"), DRAFT).unwrap();
    let na = s
        .wait_for("SELECT COUNT(*) FROM violations", |n| n >= 2)
        .await;
    // 10:31: due, the server is down; another file, in the next window.
    s.clock.set(t("2026-03-02T10:31:00+08:00"));
    s.wait_for("SELECT COALESCE(SUM(attempts), 0) FROM outbox", |n| n >= 1)
        .await;
    std::fs::write(s.path("drop/b.txt"), DRAFT).unwrap();
    let n = s
        .wait_for("SELECT COUNT(*) FROM violations", |n| n >= 2 * na)
        .await;
    s.wait_for("SELECT COUNT(*) FROM outbox", |v| v == n).await;
    assert_eq!(
        s.int("SELECT COUNT(DISTINCT window_end) FROM outbox"),
        2,
        "two windows"
    );
    // 11:01: both windows due when the server is back.
    let server = Server::start(&s.path("smtp"), port, &[]);
    s.clock.set(t("2026-03-02T11:01:00+08:00"));
    s.advance_until_settled().await;
    h.shutdown().await.unwrap();
    let per_id = server.per_message_id();
    assert_eq!(per_id.len(), 2, "one message per window: {per_id:?}");
    assert!(per_id.values().all(|&c| c == 1), "{per_id:?}");
    for file in ["a.txt", "b.txt"] {
        let ids = s.int(&format!(
            "SELECT COUNT(DISTINCT o.message_id) FROM outbox o JOIN violations v
             ON v.id = o.violation WHERE v.subject LIKE '%/{file}' AND o.sent_at IS NOT NULL"
        ));
        assert_eq!(ids, 1, "{file}: its window's message");
    }
    assert_eq!(s.int("SELECT COUNT(DISTINCT message_id) FROM outbox"), 2);
    for id in per_id.keys() {
        assert!(id.starts_with("<digest."), "{id}");
    }
}
