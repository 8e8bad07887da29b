//! systemd's notify protocol (sd_notify(3)) without unsafe code: datagrams
//! to `$NOTIFY_SOCKET` (a path, or `@name` for an abstract socket).
//!
//! `Type=notify` units learn from these messages when driftd is ready
//! (`READY=1`), what it is doing (`STATUS=`), that its main loop is alive
//! (`WATCHDOG=1`), and when it reloads or stops. Without `NOTIFY_SOCKET`
//! every call is a no-op.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("NOTIFY_SOCKET={socket}: {source}")]
    Send {
        socket: String,
        #[source]
        source: std::io::Error,
    },
    #[error("NOTIFY_SOCKET={0}: not an absolute path or an @abstract name")]
    BadAddress(String),
}

/// A connection to the service manager, or nothing outside systemd.
#[derive(Debug, Default)]
pub struct Notifier {
    target: Option<Target>,
    watchdog: Option<Duration>,
}

#[derive(Debug)]
struct Target {
    name: String,
    addr: SocketAddr,
    socket: UnixDatagram,
}

impl Notifier {
    /// From `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` (a watchdog
    /// meant for another process is ignored).
    pub fn from_env() -> Result<Notifier, NotifyError> {
        let socket = std::env::var("NOTIFY_SOCKET").ok();
        let usec = std::env::var("WATCHDOG_USEC").ok();
        let pid = std::env::var("WATCHDOG_PID").ok();
        Notifier::new(socket.as_deref(), usec.as_deref(), pid.as_deref())
    }

    fn new(
        socket: Option<&str>,
        watchdog_usec: Option<&str>,
        watchdog_pid: Option<&str>,
    ) -> Result<Notifier, NotifyError> {
        let Some(name) = socket.filter(|s| !s.is_empty()) else {
            return Ok(Notifier::default());
        };
        let addr = parse_address(name)?;
        let socket = UnixDatagram::unbound().map_err(|source| NotifyError::Send {
            socket: name.to_string(),
            source,
        })?;
        let for_us = watchdog_pid
            .map(|p| p.trim().parse::<u32>().ok() == Some(std::process::id()))
            .unwrap_or(true);
        let watchdog = watchdog_usec
            .and_then(|u| u.trim().parse::<u64>().ok())
            .filter(|&u| u > 0 && for_us)
            .map(Duration::from_micros);
        Ok(Notifier {
            target: Some(Target {
                name: name.to_string(),
                addr,
                socket,
            }),
            watchdog,
        })
    }

    pub fn enabled(&self) -> bool {
        self.target.is_some()
    }

    /// How often to ping: half the manager's watchdog timeout, as
    /// sd_watchdog_enabled(3) recommends.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.filter(|_| self.enabled()).map(|w| w / 2)
    }

    /// Sends one message (newline-separated `KEY=value` lines).
    pub fn send(&self, message: &str) -> Result<(), NotifyError> {
        let Some(t) = &self.target else {
            return Ok(());
        };
        t.socket
            .send_to_addr(message.as_bytes(), &t.addr)
            .map(|_| ())
            .map_err(|source| NotifyError::Send {
                socket: t.name.clone(),
                source,
            })
    }

    pub fn ready(&self, status: &str) -> Result<(), NotifyError> {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)))
    }

    pub fn status(&self, status: &str) -> Result<(), NotifyError> {
        self.send(&format!("STATUS={}", one_line(status)))
    }

    pub fn watchdog(&self) -> Result<(), NotifyError> {
        self.send("WATCHDOG=1")
    }

    pub fn reloading(&self) -> Result<(), NotifyError> {
        self.send("RELOADING=1\nSTATUS=reloading the policy")
    }

    pub fn stopping(&self) -> Result<(), NotifyError> {
        self.send("STOPPING=1\nSTATUS=stopping")
    }
}

/// A newline would start a new `KEY=value` assignment.
fn one_line(s: &str) -> String {
    s.replace('\n', " ")
}

fn parse_address(name: &str) -> Result<SocketAddr, NotifyError> {
    let bad = || NotifyError::BadAddress(name.to_string());
    if let Some(abstract_name) = name.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        SocketAddr::from_abstract_name(abstract_name.as_bytes()).map_err(|_| bad())
    } else if name.starts_with('/') {
        SocketAddr::from_pathname(name).map_err(|_| bad())
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receive(sock: &UnixDatagram) -> String {
        let mut buf = [0u8; 4096];
        let n = sock.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn nothing_happens_without_a_socket() {
        let n = Notifier::new(None, Some("1000000"), None).unwrap();
        assert!(!n.enabled());
        assert_eq!(n.watchdog_interval(), None);
        n.ready("x").unwrap();
    }

    #[test]
    fn sends_to_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let server = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::new(Some(path.to_str().unwrap()), Some("4000000"), None).unwrap();
        assert_eq!(n.watchdog_interval(), Some(Duration::from_secs(2)));
        n.ready("live version 3\naccuracy 0.9").unwrap();
        assert_eq!(
            receive(&server),
            "READY=1\nSTATUS=live version 3 accuracy 0.9"
        );
        n.watchdog().unwrap();
        assert_eq!(receive(&server), "WATCHDOG=1");
    }

    #[test]
    fn sends_to_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("driftd-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let server = UnixDatagram::bind_addr(&addr).unwrap();
        let n = Notifier::new(Some(&format!("@{name}")), None, None).unwrap();
        n.stopping().unwrap();
        assert_eq!(receive(&server), "STOPPING=1\nSTATUS=stopping");
    }

    #[test]
    fn a_watchdog_for_another_process_is_ignored() {
        let n = Notifier::new(Some("/run/x.sock"), Some("1000"), Some("1")).unwrap();
        assert_eq!(n.watchdog_interval(), None);
    }

    #[test]
    fn a_relative_socket_name_is_an_error() {
        assert!(matches!(
            Notifier::new(Some("relative"), None, None),
            Err(NotifyError::BadAddress(_))
        ));
    }
}
