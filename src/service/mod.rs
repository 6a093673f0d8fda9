//! Running as a service: the daemon loop of `okrsync run` ([`run_daemon`]: server,
//! scheduler, signals, bounded shutdown) and systemd's readiness, reload, stop and
//! watchdog protocol ([`notify`]).

mod daemon;
pub mod notify;

pub use daemon::run_daemon;
