//! `sd_notify(3)` for `Type=notify`: readiness, reload, stop, status and the
//! watchdog, sent as datagrams to `$NOTIFY_SOCKET`.
//!
//! The sending is done here over [`UnixDatagram`] rather than through
//! `sd_notify::notify`, because that function only reads the socket from the
//! environment (tests cannot set it: the crate forbids `unsafe`, and
//! `std::env::set_var` is unsafe) and does not handle abstract sockets
//! (`@name`). The `sd-notify` crate is still used for one thing std cannot do
//! safely: reading `CLOCK_MONOTONIC` for `MONOTONIC_USEC=`.
//!
//! Every method returns an error instead of panicking; without a socket
//! (not started by systemd, or `Type=` other than notify) they do nothing.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::PathBuf;
use std::time::Duration;

/// Where notifications go: a socket file, or an abstract-namespace name
/// (`NOTIFY_SOCKET=@name`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Path(PathBuf),
    Abstract(Vec<u8>),
}

impl Target {
    fn parse(socket: PathBuf) -> Self {
        use std::os::unix::ffi::OsStrExt;
        match socket.as_os_str().as_bytes() {
            [b'@', name @ ..] => Target::Abstract(name.to_vec()),
            _ => Target::Path(socket),
        }
    }

    fn addr(&self) -> io::Result<SocketAddr> {
        match self {
            Target::Path(path) => SocketAddr::from_pathname(path),
            #[cfg(any(target_os = "linux", target_os = "android"))]
            Target::Abstract(name) => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(name)
            }
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            Target::Abstract(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "abstract notify sockets exist only on Linux",
            )),
        }
    }
}

/// A handle to the service manager's notification socket.
///
/// Cheap to clone; each message opens an unbound datagram socket, so the
/// handle may be shared between tasks without locking.
#[derive(Debug, Clone)]
pub struct Notifier {
    target: Option<Target>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// From the environment systemd sets: `NOTIFY_SOCKET`, and
    /// `WATCHDOG_USEC` (honoured only when `WATCHDOG_PID` is unset or is this
    /// process). Without `NOTIFY_SOCKET` every message is a no-op.
    ///
    /// The variables are left in the environment (removing them is unsafe);
    /// `WATCHDOG_PID` keeps children from taking over the watchdog, and
    /// `NotifyAccess=main` makes systemd ignore their messages.
    pub fn from_env() -> Self {
        let socket = std::env::var_os("NOTIFY_SOCKET")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from);
        let watchdog = parse_watchdog(
            std::env::var("WATCHDOG_USEC").ok().as_deref(),
            std::env::var("WATCHDOG_PID").ok().as_deref(),
            std::process::id(),
        );
        Self::new(socket, watchdog)
    }

    /// An explicit socket (`@name` for the abstract namespace) and watchdog
    /// timeout (the full `WatchdogSec=`); `None` disables either.
    pub fn new(socket: Option<PathBuf>, watchdog: Option<Duration>) -> Self {
        Notifier {
            target: socket.map(Target::parse),
            watchdog: watchdog.filter(|d| !d.is_zero()),
        }
    }

    /// Whether there is a socket to send to.
    pub fn is_enabled(&self) -> bool {
        self.target.is_some()
    }

    /// `READY=1`: start-up (or a reload) is complete.
    pub fn ready(&self) -> io::Result<()> {
        self.send("READY=1\n")
    }

    /// `RELOADING=1` with `MONOTONIC_USEC=` (the `CLOCK_MONOTONIC` time,
    /// which `Type=notify-reload` on systemd ≥ 253 requires). Send
    /// [`ready`](Self::ready) when the reload is done.
    ///
    /// If the clock cannot be read, `RELOADING=1` goes alone: enough for
    /// `Type=notify` (systemd 252 here), better than not announcing the
    /// reload at all.
    pub fn reloading(&self) -> io::Result<()> {
        match sd_notify::NotifyState::monotonic_usec_now() {
            Ok(now) => self.send(&format!("RELOADING=1\n{now}\n")),
            Err(_) => self.send("RELOADING=1\n"),
        }
    }

    /// `STOPPING=1`: shutdown has begun.
    pub fn stopping(&self) -> io::Result<()> {
        self.send("STOPPING=1\n")
    }

    /// `STATUS=…`, shown by `systemctl status`. Line breaks would start a new
    /// assignment, so they become spaces.
    pub fn status(&self, text: &str) -> io::Result<()> {
        let text = text.replace(['\n', '\r'], " ");
        self.send(&format!("STATUS={text}\n"))
    }

    /// `WATCHDOG=1`: the keep-alive ping. Sent even when no watchdog is
    /// configured (systemd ignores it then).
    pub fn watchdog(&self) -> io::Result<()> {
        self.send("WATCHDOG=1\n")
    }

    /// How often to call [`watchdog`](Self::watchdog): half the timeout, as
    /// `sd_watchdog_enabled(3)` recommends; `None` when there is no watchdog.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.map(|d| d / 2)
    }

    /// Sends one datagram of newline-separated `KEY=VALUE` assignments.
    pub fn send(&self, message: &str) -> io::Result<()> {
        let Some(target) = &self.target else {
            return Ok(());
        };
        let addr = target.addr()?;
        let socket = UnixDatagram::unbound()?;
        let sent = socket.send_to_addr(message.as_bytes(), &addr)?;
        if sent == message.len() {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("notify socket took {sent} of {} bytes", message.len()),
            ))
        }
    }
}

/// `WATCHDOG_USEC` in microseconds, if set, positive, and meant for `pid`.
fn parse_watchdog(usec: Option<&str>, watchdog_pid: Option<&str>, pid: u32) -> Option<Duration> {
    if let Some(target) = watchdog_pid
        && target.trim().parse::<u32>().ok() != Some(pid)
    {
        return None;
    }
    let usec: u64 = usec?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recv(socket: &UnixDatagram) -> String {
        let mut buf = [0u8; 512];
        let n = socket.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    fn listener() -> (tempfile::TempDir, PathBuf, UnixDatagram) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        (dir, path, socket)
    }

    #[test]
    fn messages_arrive_on_a_socket_file() {
        let (_dir, path, socket) = listener();
        let n = Notifier::new(Some(path), Some(Duration::from_secs(60)));
        assert!(n.is_enabled());

        n.ready().unwrap();
        assert_eq!(recv(&socket), "READY=1\n");

        n.status("watching 3 folders\nREADY=1").unwrap();
        assert_eq!(recv(&socket), "STATUS=watching 3 folders READY=1\n");

        n.watchdog().unwrap();
        assert_eq!(recv(&socket), "WATCHDOG=1\n");

        n.stopping().unwrap();
        assert_eq!(recv(&socket), "STOPPING=1\n");

        assert_eq!(n.watchdog_interval(), Some(Duration::from_secs(30)));
    }

    #[test]
    fn reloading_carries_a_monotonic_timestamp() {
        let (_dir, path, socket) = listener();
        let n = Notifier::new(Some(path), None);
        let mut stamps = Vec::new();
        for _ in 0..2 {
            n.reloading().unwrap();
            let msg = recv(&socket);
            let mut lines = msg.lines();
            assert_eq!(lines.next(), Some("RELOADING=1"), "{msg:?}");
            let usec = lines
                .next()
                .and_then(|l| l.strip_prefix("MONOTONIC_USEC="))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("no MONOTONIC_USEC in {msg:?}"));
            assert_eq!(lines.next(), None);
            stamps.push(usec);
        }
        assert!(stamps[0] > 0 && stamps[0] <= stamps[1], "{stamps:?}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn abstract_socket_names_are_supported() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("complyd-test-notify-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let socket = UnixDatagram::bind_addr(&addr).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let n = Notifier::new(Some(PathBuf::from(format!("@{name}"))), None);
        n.ready().unwrap();
        assert_eq!(recv(&socket), "READY=1\n");
    }

    #[test]
    fn without_a_socket_everything_is_a_no_op() {
        let n = Notifier::new(None, None);
        assert!(!n.is_enabled());
        n.ready().unwrap();
        n.reloading().unwrap();
        n.status("x").unwrap();
        n.watchdog().unwrap();
        n.stopping().unwrap();
        assert_eq!(n.watchdog_interval(), None);
    }

    #[test]
    fn a_missing_socket_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let n = Notifier::new(Some(dir.path().join("gone")), None);
        assert!(n.ready().is_err());
        let too_long = PathBuf::from(format!("/{}", "x".repeat(200)));
        assert!(Notifier::new(Some(too_long), None).ready().is_err());
    }

    #[test]
    fn watchdog_environment() {
        let d = Duration::from_micros;
        assert_eq!(
            parse_watchdog(Some("30000000"), None, 7),
            Some(d(30_000_000))
        );
        assert_eq!(
            parse_watchdog(Some("30000000"), Some("7"), 7),
            Some(d(30_000_000))
        );
        assert_eq!(parse_watchdog(Some("30000000"), Some("8"), 7), None);
        assert_eq!(parse_watchdog(Some("30000000"), Some("x"), 7), None);
        assert_eq!(parse_watchdog(Some("0"), None, 7), None);
        assert_eq!(parse_watchdog(Some("soon"), None, 7), None);
        assert_eq!(parse_watchdog(None, Some("7"), 7), None);
        let n = Notifier::new(None, Some(d(30_000_000)));
        assert_eq!(n.watchdog_interval(), Some(Duration::from_secs(15)));
        assert_eq!(
            Notifier::new(None, Some(Duration::ZERO)).watchdog_interval(),
            None
        );
    }
}
