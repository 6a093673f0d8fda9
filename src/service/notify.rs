//! A small `sd_notify(3)` client: tells systemd (`Type=notify`) that the daemon is ready,
//! reloading or stopping, pings the watchdog (`WatchdogSec=`) and sets the status line
//! `systemctl status` shows. Without `$NOTIFY_SOCKET` (a terminal, a container, tests)
//! every call is a no-op that returns `Ok(false)`.
//!
//! The protocol is one datagram of `KEY=VALUE` lines sent to the Unix socket named by
//! `$NOTIFY_SOCKET`: a path, or an abstract socket when it starts with `@`. Sends block
//! for at most [`SEND_TIMEOUT`], like libsystemd's blocking `sendmsg`, so calling them
//! from async code is fine.
//!
//! The unit must allow the sender: `NotifyAccess=main` accepts messages from the main
//! process only, which is `okrsync run` itself.

use std::ffi::OsStr;
use std::io;
use std::time::Duration;

/// How long one notification may wait for room in the socket's queue.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(2);

/// Sends `state` (newline-separated `KEY=VALUE` assignments) to `$NOTIFY_SOCKET`.
/// `Ok(false)` when the variable is unset or empty (not running under systemd),
/// `Ok(true)` once the datagram was sent.
pub fn notify(state: &str) -> io::Result<bool> {
    notify_with(std::env::var_os("NOTIFY_SOCKET").as_deref(), state)
}

/// [`notify`] with the socket address given rather than read from the environment.
fn notify_with(socket: Option<&OsStr>, state: &str) -> io::Result<bool> {
    match socket {
        Some(s) if !s.is_empty() => notify_to(s, state).map(|()| true),
        _ => Ok(false),
    }
}

/// `READY=1`: startup is finished (migrations done, listener bound). Also sent after a
/// reload, which ends the `reloading` state.
pub fn ready() -> io::Result<bool> {
    notify("READY=1")
}

/// `STOPPING=1`: shutdown has begun.
pub fn stopping() -> io::Result<bool> {
    notify("STOPPING=1")
}

/// `RELOADING=1`: a reload (SIGHUP) has begun; send [`ready`] when it is over, whether
/// the new configuration was taken or rejected.
///
/// systemd 253+ also wants `MONOTONIC_USEC=<CLOCK_MONOTONIC in µs>` with it, for
/// `Type=notify-reload`. Reading `CLOCK_MONOTONIC` as an absolute value needs
/// `clock_gettime` (unsafe, or a new dependency) and `/proc/uptime` is `CLOCK_BOOTTIME`,
/// so it is left out: our unit is `Type=notify` with `ExecReload=`, where systemd does
/// not need it.
pub fn reloading() -> io::Result<bool> {
    notify("RELOADING=1")
}

/// `WATCHDOG=1`: the daemon is alive. Send it every [`watchdog_interval`].
pub fn watchdog_ping() -> io::Result<bool> {
    notify("WATCHDOG=1")
}

/// `STATUS=<text>`: a one-line status for `systemctl status`.
pub fn status(text: &str) -> io::Result<bool> {
    notify(&status_message(text))
}

/// A newline would start another assignment, so it becomes a space.
fn status_message(text: &str) -> String {
    format!("STATUS={}", text.replace(['\n', '\r'], " "))
}

/// Sends one datagram to `socket`: an absolute path, or `@name` for an abstract socket.
pub fn notify_to(socket: impl AsRef<OsStr>, state: &str) -> io::Result<()> {
    sys::send(socket.as_ref(), state.as_bytes())
}

/// How often to send [`watchdog_ping`]: half of `$WATCHDOG_USEC`, the usual margin. `None`
/// when the watchdog is off or meant for another process (`$WATCHDOG_PID`).
pub fn watchdog_interval() -> Option<Duration> {
    let usec = std::env::var("WATCHDOG_USEC").ok();
    let pid = std::env::var("WATCHDOG_PID").ok();
    parse_watchdog(usec.as_deref(), pid.as_deref(), std::process::id())
}

/// The ping period from `WATCHDOG_USEC` and `WATCHDOG_PID` (see [`watchdog_interval`]).
/// A timeout that is missing, zero or not a number, or a `WATCHDOG_PID` other than
/// `my_pid` (including one that is not a number), means no watchdog.
pub fn parse_watchdog(usec: Option<&str>, pid: Option<&str>, my_pid: u32) -> Option<Duration> {
    if let Some(pid) = pid {
        if pid.trim().parse::<u32>().ok() != Some(my_pid) {
            return None;
        }
    }
    let usec = usec?.trim().parse::<u64>().ok().filter(|&u| u > 0)?;
    // Never zero: a zero period would make a timer loop spin (or panic).
    Some(Duration::from_micros((usec / 2).max(1)))
}

#[cfg(unix)]
mod sys {
    use std::ffi::OsStr;
    use std::io;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::UnixDatagram;
    use std::path::Path;

    pub(super) fn send(socket: &OsStr, msg: &[u8]) -> io::Result<()> {
        let sock = UnixDatagram::unbound()?;
        sock.set_write_timeout(Some(super::SEND_TIMEOUT))?;
        let bytes = socket.as_bytes();
        let sent = if let Some(name) = bytes.strip_prefix(b"@") {
            send_abstract(&sock, name, msg)?
        } else if bytes.starts_with(b"/") {
            sock.send_to(msg, Path::new(socket))?
        } else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "NOTIFY_SOCKET must be an absolute path or start with '@', found {:?}",
                    socket
                ),
            ));
        };
        if sent != msg.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("sent {sent} of {} bytes to NOTIFY_SOCKET", msg.len()),
            ));
        }
        Ok(())
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn send_abstract(sock: &UnixDatagram, name: &[u8], msg: &[u8]) -> io::Result<usize> {
        #[cfg(target_os = "android")]
        use std::os::android::net::SocketAddrExt;
        #[cfg(target_os = "linux")]
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
        sock.send_to_addr(msg, &addr)
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn send_abstract(_: &UnixDatagram, _: &[u8], _: &[u8]) -> io::Result<usize> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "abstract sockets ('@' in NOTIFY_SOCKET) exist on Linux only",
        ))
    }
}

#[cfg(not(unix))]
mod sys {
    use std::ffi::OsStr;
    use std::io;

    pub(super) fn send(_: &OsStr, _: &[u8]) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "sd_notify needs Unix sockets",
        ))
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    /// A bound socket standing in for systemd, and its address.
    fn listener() -> (tempfile::TempDir, UnixDatagram, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify.sock");
        let sock = UnixDatagram::bind(&path).expect("bind");
        sock.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        (dir, sock, path)
    }

    fn receive(sock: &UnixDatagram) -> String {
        let mut buf = [0u8; 4096];
        let n = sock.recv(&mut buf).expect("a datagram");
        String::from_utf8(buf[..n].to_vec()).expect("utf-8")
    }

    #[test]
    fn sends_the_exact_datagram_to_a_path() {
        let (_dir, sock, path) = listener();
        notify_to(&path, "READY=1").expect("sent");
        assert_eq!(receive(&sock), "READY=1");
        notify_to(&path, "STATUS=syncing jira\nWATCHDOG=1").expect("sent");
        assert_eq!(receive(&sock), "STATUS=syncing jira\nWATCHDOG=1");
    }

    #[test]
    fn notify_with_a_socket_reports_that_it_sent() {
        let (_dir, sock, path) = listener();
        let sent = notify_with(Some(path.as_os_str()), "STOPPING=1").expect("sent");
        assert!(sent);
        assert_eq!(receive(&sock), "STOPPING=1");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn sends_to_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("okrsync-notify-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            .expect("abstract name");
        let sock = UnixDatagram::bind_addr(&addr).expect("bind abstract");
        sock.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        notify_to(format!("@{name}"), "RELOADING=1").expect("sent");
        assert_eq!(receive(&sock), "RELOADING=1");
    }

    #[test]
    fn without_a_socket_nothing_is_sent() {
        assert!(!notify_with(None, "READY=1").expect("no-op"));
        assert!(!notify_with(Some(OsStr::new("")), "READY=1").expect("no-op"));
    }

    #[test]
    fn a_relative_or_missing_socket_is_an_error() {
        let err = notify_to("run/notify", "READY=1").expect_err("relative");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(notify_to(dir.path().join("absent.sock"), "READY=1").is_err());
    }

    #[test]
    fn status_stays_one_line() {
        assert_eq!(status_message("2 sources\nok"), "STATUS=2 sources ok");
        assert_eq!(status_message("ready"), "STATUS=ready");
    }

    #[test]
    fn watchdog_period_is_half_the_timeout() {
        assert_eq!(
            parse_watchdog(Some("60000000"), None, 42),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_watchdog(Some("60000000"), Some("42"), 42),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_watchdog(Some("1"), None, 42),
            Some(Duration::from_micros(1))
        );
    }

    #[test]
    fn watchdog_is_off_when_unset_invalid_or_for_another_process() {
        assert_eq!(parse_watchdog(None, None, 42), None);
        assert_eq!(parse_watchdog(Some("0"), None, 42), None);
        assert_eq!(parse_watchdog(Some("soon"), None, 42), None);
        assert_eq!(parse_watchdog(Some("-5"), None, 42), None);
        assert_eq!(parse_watchdog(Some("60000000"), Some("7"), 42), None);
        assert_eq!(parse_watchdog(Some("60000000"), Some("x"), 42), None);
        assert_eq!(parse_watchdog(None, Some("42"), 42), None);
    }
}
